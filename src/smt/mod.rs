//! z3 proofs on the bounded input domain: implements, equivalent, aligned, sufficient, well-formed.
//!
//! Each goal is checked one sequence length at a time (1..=max_len, in parallel, one z3 context
//! per length): the programs are unrolled into z3 terms exactly (`encode`, `expr`), the negation
//! of the goal is asked for a model, and a model is a counterexample that the exact evaluator
//! (`lang::eval`) replays before it is reported. `unsat` at every length is `proved`; a timeout,
//! an unsupported construct or a counterexample the evaluator does not confirm is `unknown` with
//! the reason, never `proved`.
//!
//! Semantics, matching the evaluator:
//! - Values: numbers as `Int` terms while integral and `Real` otherwise (exact rationals),
//!   booleans as `Bool`, symbols as `Int` codes in string order, `none` as an indicator; a value
//!   that can be of several kinds carries one indicator per kind (`value`).
//! - Selectors are Boolean matrices, `selector_width` a sum of 0/1 terms, a categorical aggregate
//!   the selected value (two or more selected is an error condition), a numerical aggregate the
//!   exact mean, as `sum / c` under a case split on the count `c` (linear; 0 when empty).
//! - Lambdas are translated operation by operation; `/` and `%` by zero, `%` on non-integers and
//!   operands of the wrong kind are error conditions, guarded by the path the evaluator takes
//!   (`if` branches, short-circuit `and` / `or`, maps skip `none`).
//! - Errors count: a goal about values (implements, equivalent, aligned, sufficient) is refuted
//!   by an input on which a program fails to evaluate, because the claim is about values the
//!   program does not have there; `well_formed` is refuted by any failure.
//! - Domain: tokens in the (common) vocabulary, every task's `where` true at every position (a
//!   `where` that fails to evaluate puts the input outside the domain). Two programs of
//!   different tasks are compared on the intersection of their domains.
//! - Pipelines compose stage by stage through their adapters; a later stage's input outside its
//!   task's domain is an error, as in `eval_pipeline`.
//!
//! Not modelled: the evaluator's 64-bit overflow. z3 computes with unbounded rationals, so a
//! program that overflows i64 somewhere in its domain could be `proved` where the evaluator
//! errors (no spec comes near: values are bounded by the small vocabularies).
//!
//! Scaling devices, none of which can change a verdict: proven lemmas about counts over
//! transitive selectors (`encode::width_lemmas`, premises checked by z3 first), canonical strict
//! comparisons so complementary counts share their terms, and sweeping for two-program goals
//! (`sweep`: nodes the evaluator suggests equal are proved equal and then shared).
//!
//! Time limits: a watchdog interrupts the length's z3 context when `timeout` passes (z3 4.8.12's
//! own `timeout` parameter uses timer threads that deadlock when several contexts solve in
//! parallel); lemma premises and sweep pairs get deterministic resource limits (`rlimit`).

mod encode;
mod expr;
mod goal;
mod replay;
mod report;
mod resolve;
mod solver;
mod sweep;
mod symbols;
mod value;

use std::time::{Duration, Instant};

use rayon::prelude::*;
use thiserror::Error;

use crate::lang::ir::{ProofGoal, Spec};

pub use report::{
    Counterexample, Difference, LengthReport, LengthStatus, ProofReport, Verdict, sorted_json,
    tokens,
};

/// Why a goal could not be encoded or a model not be read back.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SmtError {
    /// The goal names something the spec does not have (or the wrong kind of thing).
    #[error("{0}")]
    Spec(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("could not read z3's model: {0}")]
    Decode(String),
    #[error("internal error in the z3 encoding: {0}")]
    Internal(String),
}

/// The z3 time limit per sequence length when neither the spec nor the caller gives one.
pub const DEFAULT_TIMEOUT_SECS: f64 = 60.0;

/// How to run proofs.
#[derive(Clone, Debug, Default)]
pub struct ProveOptions {
    /// z3's time limit for each sequence length (`None`: no limit).
    pub timeout: Option<Duration>,
    /// Solve the lengths in parallel (each rayon task gets its own z3 context).
    pub parallel: bool,
    /// Only lengths up to this (for experiments; `None`: the task's `max_len`).
    pub max_len: Option<usize>,
}

/// The goal as the spec would write it.
pub fn goal_text(goal: &ProofGoal) -> String {
    match goal {
        ProofGoal::Implements { program, reference } => {
            format!("implements({program}, {reference})")
        }
        ProofGoal::Equivalent { a, b } => format!("equivalent({a}, {b})"),
        ProofGoal::Aligned { a, b, pairs } => {
            let ps: Vec<String> = pairs.iter().map(|(x, y)| format!(", {x} = {y}")).collect();
            format!("aligned({a}, {b}{})", ps.concat())
        }
        ProofGoal::Sufficient { circuit } => format!("sufficient({circuit})"),
        ProofGoal::WellFormed { program } => format!("well_formed({program})"),
    }
}

/// Proves one goal against a spec.
pub fn prove(spec: &Spec, name: &str, goal: &ProofGoal, opts: &ProveOptions) -> ProofReport {
    prove_resolved(spec, name, goal, goal_text(goal), false, opts)
}

/// Proves that `program` never does what tracr gets silently wrong: a categorical aggregate
/// selecting two positions that hold different values (tracr averages their one-hot codes and
/// decodes garbage). Weaker than `well_formed`, which also rejects two selected positions that
/// hold the same value (tracr's average is then still right). A refutation names the input, the
/// aggregate, the query position and the values, as the evaluator computes them up to that
/// aggregate.
pub fn prove_no_garbling(spec: &Spec, program: &str, opts: &ProveOptions) -> ProofReport {
    let goal = ProofGoal::WellFormed {
        program: program.to_string(),
    };
    let text = format!("no_garbled_aggregate({program})");
    prove_resolved(spec, &text, &goal, text.clone(), true, opts)
}

fn prove_resolved(
    spec: &Spec,
    name: &str,
    goal: &ProofGoal,
    goal_text: String,
    garbling: bool,
    opts: &ProveOptions,
) -> ProofReport {
    let start = Instant::now();
    let mut report = ProofReport {
        name: name.to_string(),
        goal: goal_text,
        verdict: Verdict::Proved,
        trivially: None,
        lengths: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let resolved = match resolve::Resolved::new(spec, goal) {
        Ok(r) => resolve::Resolved { garbling, ..r },
        Err(e) => {
            report.verdict = Verdict::Unknown {
                reason: e.to_string(),
            };
            report.elapsed = start.elapsed();
            return report;
        }
    };
    let max_len = opts
        .max_len
        .map_or(resolved.max_len, |m| m.min(resolved.max_len));
    let solve = |n: usize| {
        // A fresh context per length: terms never cross threads, memory goes when it is done.
        z3::with_z3_config(&z3::Config::new(), || {
            goal::solve_length(&resolved, n, opts.timeout)
        })
    };
    let raws: Vec<(goal::Raw, Duration)> = if opts.parallel {
        (1..=max_len).into_par_iter().map(solve).collect()
    } else {
        (1..=max_len).map(solve).collect()
    };
    let mut refutation = None;
    let mut unknowns = Vec::new();
    for (i, (raw, elapsed)) in raws.into_iter().enumerate() {
        let n = i + 1;
        let status = match raw {
            goal::Raw::Unsat => LengthStatus::Proved,
            goal::Raw::Unknown(reason) => LengthStatus::Unknown { reason },
            goal::Raw::Sat(inputs, claims) => match replay::replay(&resolved, &inputs) {
                Ok(cex) => {
                    refutation.get_or_insert(cex);
                    LengthStatus::Refuted
                }
                Err(why) => {
                    let shown: Vec<String> = inputs.iter().map(|x| tokens(x)).collect();
                    let claimed = if claims.is_empty() {
                        String::new()
                    } else {
                        format!(" (z3's model claims: {})", claims.join("; "))
                    };
                    LengthStatus::Unknown {
                        reason: format!(
                            "z3's counterexample `{}` did not replay in the evaluator: {why}{claimed}",
                            shown.join(" / ")
                        ),
                    }
                }
            },
        };
        if let LengthStatus::Unknown { reason } = &status {
            unknowns.push(format!("length {n}: {reason}"));
        }
        report.lengths.push(LengthReport {
            length: n,
            status,
            elapsed,
        });
    }
    report.verdict = if let Some(counterexample) = refutation {
        Verdict::Refuted { counterexample }
    } else if !unknowns.is_empty() {
        Verdict::Unknown {
            reason: unknowns.join("; "),
        }
    } else if max_len == 0 {
        Verdict::Unknown {
            reason: "no sequence length to check (max_len is 0)".into(),
        }
    } else {
        Verdict::Proved
    };
    if let (Verdict::Proved, ProofGoal::Sufficient { circuit }) = (&report.verdict, goal) {
        report.trivially = resolve::trivially_sufficient(spec, circuit);
    }
    report.elapsed = start.elapsed();
    report
}

/// Proves every `prove` block of a spec, in order (optionally only the one named `only`).
pub fn prove_spec(spec: &Spec, only: Option<&str>, opts: &ProveOptions) -> Vec<ProofReport> {
    spec.proofs
        .iter()
        .filter(|p| only.is_none_or(|o| o == p.name))
        .map(|p| {
            let mut o = opts.clone();
            if let Some(t) = p.timeout_secs.filter(|_| opts.timeout.is_none()) {
                o.timeout = Some(Duration::from_secs_f64(t.max(0.001)));
            }
            prove(spec, &p.name, &p.goal, &o)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod testutil;
