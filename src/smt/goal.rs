//! Proof goals as satisfiability queries, one per sequence length: a model of the query is a
//! counterexample, `unsat` proves the goal at that length.

use std::time::{Duration, Instant};

use z3::ast::Bool;
use z3::{SatResult, Solver};

use crate::lang::ir::{Program, ProofGoal, Value};

use super::SmtError;
use super::encode::{Conditional, Run, restriction_holds, run_stages, token_vars};
pub(crate) use super::resolve::{Resolved, Subject};
use super::solver::{proven_lemmas, with_deadline};
use super::value::{and, not, or, tt};

/// The query for one length: satisfiable exactly when a counterexample of that length exists.
pub(crate) struct Query {
    pub formula: Bool,
    /// Token terms of each input copy.
    pub inputs: Vec<Vec<super::value::SVal>>,
    /// Lemmas to assert once their premises are proved valid.
    pub facts: Vec<Conditional>,
    /// Every way a program can fail to evaluate, described (for messages when a counterexample
    /// does not replay).
    pub claims: Vec<(String, Bool)>,
}

pub(crate) fn encode(r: &Resolved<'_>, n: usize) -> Result<Query, SmtError> {
    let mut inputs = Vec::new();
    let mut conds = Vec::new();
    let mut facts: Vec<Conditional> = Vec::new();
    for copy in 0..r.copies() {
        let prefix = if copy == 0 { "x" } else { "y" };
        let (toks, in_vocab) = token_vars(prefix, n, &r.vocab, &r.syms)?;
        conds.push(in_vocab);
        for t in &r.tasks {
            let (holds, lemmas) = restriction_holds(t, &toks, &r.syms)?;
            conds.push(holds);
            facts.extend(lemmas);
        }
        inputs.push(toks);
    }
    // Two interpretations on one input: sweep (prove intermediate nodes equal first).
    let swept = |facts: &mut Vec<Conditional>| -> Result<Option<(Run, Run)>, SmtError> {
        let (Ok(p), Ok(q)) = (r.subjects[0].program(), r.subjects[1].program()) else {
            return Ok(None);
        };
        let lemmas = proven_lemmas(facts);
        let (a, b) = super::sweep::swept_pair(r, p, q, &inputs[0], &and(&conds), &lemmas)?;
        facts.extend(a.facts.iter().cloned());
        facts.extend(b.facts.iter().cloned());
        Ok(Some((a, b)))
    };
    let pair = match &r.goal {
        ProofGoal::Implements { .. } | ProofGoal::Equivalent { .. } | ProofGoal::Aligned { .. } => {
            swept(&mut facts)?
        }
        _ => None,
    };
    let mut run = |s: &Subject<'_>, toks: &[super::value::SVal]| -> Result<Run, SmtError> {
        let run = run_stages(&s.stages, toks, &r.syms)?;
        facts.extend(run.facts.iter().cloned());
        Ok(run)
    };
    let mut claims = Vec::new();
    let cex = match &r.goal {
        ProofGoal::Implements { .. } | ProofGoal::Equivalent { .. } | ProofGoal::Aligned { .. } => {
            let (a, b) = match pair {
                Some(ab) => ab,
                None => (
                    run(&r.subjects[0], &inputs[0])?,
                    run(&r.subjects[1], &inputs[0])?,
                ),
            };
            claims_of(&r.subjects[0], &a, &mut claims);
            claims_of(&r.subjects[1], &b, &mut claims);
            let differ = if matches!(r.goal, ProofGoal::Aligned { .. }) {
                let per_pair: Vec<Bool> = r
                    .pairs
                    .iter()
                    .map(|(x, y, _)| {
                        let (vx, vy) = (&a.stages[0].nodes[x.0], &b.stages[0].nodes[y.0]);
                        // A selector never equals a sequence: every input is a counterexample.
                        vx.same(vy).map_or_else(|_| tt(), |same| not(&same))
                    })
                    .collect();
                or(&per_pair)
            } else {
                outputs_differ(&a, &b)
            };
            or(&[a.error, b.error, differ])
        }
        ProofGoal::Sufficient { .. } => {
            let a = run(&r.subjects[0], &inputs[0])?;
            let b = run(&r.subjects[0], &inputs[1])?;
            claims_of(&r.subjects[0], &a, &mut claims);
            claims_of(&r.subjects[0], &b, &mut claims);
            let mut agree = Vec::new();
            for (x, _, _) in &r.pairs {
                agree.push(a.stages[0].nodes[x.0].same(&b.stages[0].nodes[x.0])?);
            }
            let differ = outputs_differ(&a, &b);
            or(&[a.error, b.error, and(&[and(&agree), differ])])
        }
        ProofGoal::WellFormed { .. } if r.garbling => {
            let a = run(&r.subjects[0], &inputs[0])?;
            claims_of(&r.subjects[0], &a, &mut claims);
            garbled(r.subjects[0].program()?, &a)?
        }
        ProofGoal::WellFormed { .. } => {
            let a = run(&r.subjects[0], &inputs[0])?;
            claims_of(&r.subjects[0], &a, &mut claims);
            a.error
        }
    };
    conds.push(cex);
    Ok(Query {
        formula: and(&conds),
        inputs,
        facts,
        claims,
    })
}

/// Some output position where two runs disagree.
fn outputs_differ(a: &Run, b: &Run) -> Bool {
    let differ: Vec<Bool> = a
        .output
        .iter()
        .zip(&b.output)
        .map(|(x, y)| not(&x.same(y)))
        .collect();
    or(&differ)
}

/// Some categorical aggregate selects two positions holding different values, with no failure
/// in any node before it (the replay evaluates the program up to that aggregate).
fn garbled(p: &Program, run: &Run) -> Result<Bool, SmtError> {
    let u = &run.stages[0];
    let mut cases = Vec::new();
    for (id, node) in p.graph.nodes.iter().enumerate() {
        let crate::lang::ir::Op::Aggregate { selector, values } = &node.op else {
            continue;
        };
        if !matches!(
            node.ty,
            crate::lang::ir::NodeType::Seq {
                encoding: crate::lang::ir::Encoding::Categorical,
                ..
            }
        ) {
            continue;
        }
        let m = u.nodes[selector.0].sel()?;
        let vs = u.nodes[values.0].seq()?;
        let earlier: Vec<Bool> = u
            .errs
            .iter()
            .filter(|e| e.node.0 < id)
            .map(|e| e.err.cond.clone())
            .collect();
        let mut here = Vec::new();
        for row in m {
            for k1 in 0..row.len() {
                for k2 in k1 + 1..row.len() {
                    here.push(and(&[
                        row[k1].clone(),
                        row[k2].clone(),
                        not(&vs[k1].same(&vs[k2])),
                    ]));
                }
            }
        }
        cases.push(and(&[not(&or(&earlier)), or(&here)]));
    }
    Ok(or(&cases))
}

/// What each error condition of a run means, for messages: `subject: `node` (fault)`.
fn claims_of(subject: &Subject<'_>, run: &Run, out: &mut Vec<(String, Bool)>) {
    for (u, (prog, _)) in run.stages.iter().zip(&subject.stages) {
        for e in &u.errs {
            let node = prog
                .graph
                .nodes
                .get(e.node.0)
                .and_then(|n| n.name.clone())
                .unwrap_or_else(|| format!("node {}", e.node.0));
            out.push((
                format!("{}: `{node}` ({})", subject.name, e.err.fault),
                e.err.cond.clone(),
            ));
        }
    }
}

/// What z3 said at one length.
#[derive(Clone, Debug)]
pub(crate) enum Raw {
    Unsat,
    /// The input copies of a counterexample, and the evaluation failures z3's model claims.
    Sat(Vec<Vec<Value>>, Vec<String>),
    Unknown(String),
}

/// Encodes and solves the goal at length `n` in the current thread's z3 context.
pub(crate) fn solve_length(
    r: &Resolved<'_>,
    n: usize,
    timeout: Option<Duration>,
) -> (Raw, Duration) {
    let start = Instant::now();
    let raw = with_deadline(timeout, || -> Result<Raw, SmtError> {
        let q = encode(r, n)?;
        let solver = Solver::new();
        solver.assert(&q.formula);
        for lemma in proven_lemmas(&q.facts) {
            solver.assert(&lemma);
        }
        Ok(match solver.check() {
            SatResult::Unsat => Raw::Unsat,
            SatResult::Unknown => {
                let why = solver.get_reason_unknown().unwrap_or_default();
                // An interrupt from the watchdog reads "canceled".
                Raw::Unknown(match (why.as_str(), timeout) {
                    ("canceled" | "interrupted" | "timeout", Some(t)) => {
                        format!("timeout ({}s)", t.as_secs_f64())
                    }
                    ("", _) => "z3 gave no reason".into(),
                    _ => why,
                })
            }
            SatResult::Sat => {
                let m = solver
                    .get_model()
                    .ok_or_else(|| SmtError::Decode("z3 said sat but gave no model".into()))?;
                let mut copies = Vec::new();
                for toks in &q.inputs {
                    copies.push(
                        toks.iter()
                            .map(|t| t.decode(&m, &r.syms))
                            .collect::<Result<Vec<_>, _>>()?,
                    );
                }
                let mut claimed = Vec::new();
                for (what, cond) in &q.claims {
                    if m.eval(cond, true).and_then(|b| b.as_bool()) == Some(true)
                        && !claimed.contains(what)
                    {
                        claimed.push(what.clone());
                    }
                }
                Raw::Sat(copies, claimed)
            }
        })
    });
    let raw = raw.unwrap_or_else(|e| Raw::Unknown(e.to_string()));
    (raw, start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::ir::{BinOp, Comparison, Spec};
    use crate::smt::resolve::variable;
    use crate::smt::testutil::*;

    fn solve_all(spec: &Spec, goal: ProofGoal) -> Vec<Raw> {
        let r = Resolved::new(spec, &goal).unwrap();
        (1..=r.max_len)
            .map(|n| solve_length(&r, n, None).0)
            .collect()
    }

    #[test]
    fn reverse_is_well_formed_and_the_wrong_variant_differs() {
        let t = task("reverse", syms(&["a", "b", "c"]), 4);
        let spec = spec(vec![
            reverse("good", &t, 1),
            reverse("bad", &t, 0),
            reverse("good2", &t, 1),
        ]);
        for raw in solve_all(
            &spec,
            ProofGoal::WellFormed {
                program: "good".into(),
            },
        ) {
            assert!(matches!(raw, Raw::Unsat), "{raw:?}");
        }
        let eq = ProofGoal::Equivalent {
            a: "good".into(),
            b: "good2".into(),
        };
        assert!(solve_all(&spec, eq).iter().all(|r| matches!(r, Raw::Unsat)));
        let neq = ProofGoal::Equivalent {
            a: "good".into(),
            b: "bad".into(),
        };
        for raw in solve_all(&spec, neq) {
            let Raw::Sat(inputs, _) = raw else {
                panic!("expected a counterexample, got {raw:?}")
            };
            assert_eq!(inputs.len(), 1);
        }
        let al = ProofGoal::Aligned {
            a: "good".into(),
            b: "bad".into(),
            pairs: vec![("length".into(), "length".into())],
        };
        // `bad` is well-formed (the aggregate selects at most one position), so the lengths
        // align even though the outputs do not.
        assert!(solve_all(&spec, al).iter().all(|r| matches!(r, Raw::Unsat)));
    }

    #[test]
    fn ambiguous_aggregate_is_found() {
        let t = task("t", ints(0..=2), 3);
        let mut g = G::default();
        let tok = g.tokens();
        let sel = g.select(tok, tok, Comparison::Eq);
        let out = g.agg(sel, tok);
        let spec = spec(vec![g.program("dup", &t, out)]);
        let raws = solve_all(
            &spec,
            ProofGoal::WellFormed {
                program: "dup".into(),
            },
        );
        assert!(matches!(raws[0], Raw::Unsat));
        let Raw::Sat(inputs, _) = &raws[1] else {
            panic!("{:?}", raws[1])
        };
        assert_eq!(
            inputs[0][0], inputs[0][1],
            "only equal tokens make the selection ambiguous"
        );
        let _ = BinOp::Add;
    }

    fn circuit(spec: &mut Spec, program: &str, vars: &[&str]) {
        let p = &spec.programs[program];
        let sites = vars
            .iter()
            .map(|v| crate::lang::ir::CircuitSite {
                variable: v.to_string(),
                node: variable(p, v).unwrap(),
                hooks: vec![],
            })
            .collect();
        spec.circuits.insert(
            "c".into(),
            crate::lang::ir::Circuit {
                name: "c".into(),
                program: program.into(),
                sites,
                source: None,
            },
        );
    }

    #[test]
    fn sufficiency_needs_the_variables_that_carry_the_tokens() {
        let t = task("reverse", syms(&["a", "b"]), 3);
        let mut g = G::default();
        let tok = g.tokens();
        let copy = g.map(p(0), tok);
        g.name(copy, "copy");
        let i = g.indices();
        let all = g.select(tok, tok, Comparison::True);
        let len = g.width(all);
        g.name(len, "length");
        let opp = g.map2(bin(BinOp::Sub, bin(BinOp::Sub, p(0), p(1)), int(1)), len, i);
        g.name(opp, "opp");
        let flip = g.select(i, opp, Comparison::Eq);
        let out = g.agg(flip, copy);
        let mut spec = spec(vec![g.program("rev", &t, out)]);
        // `opp` is the same for every input of a length: it cannot determine the output.
        circuit(&mut spec, "rev", &["opp"]);
        let raws = solve_all(
            &spec,
            ProofGoal::Sufficient {
                circuit: "c".into(),
            },
        );
        let Raw::Sat(inputs, _) = &raws[0] else {
            panic!("{:?}", raws[0])
        };
        assert_eq!(inputs.len(), 2);
        assert_ne!(inputs[0], inputs[1]);
        // With the tokens' copy it does, at every length.
        circuit(&mut spec, "rev", &["opp", "copy"]);
        let raws = solve_all(
            &spec,
            ProofGoal::Sufficient {
                circuit: "c".into(),
            },
        );
        assert!(raws.iter().all(|r| matches!(r, Raw::Unsat)), "{raws:?}");
    }

    #[test]
    fn selector_algebra() {
        let t = task("hist", ints(0..=2), 4);
        let mut g = G::default();
        let tok = g.tokens();
        let eq = g.select(tok, tok, Comparison::Eq);
        let out = g.width(eq);
        let hist = g.program("hist", &t, out);
        // not(not(eq) or false) and true == eq
        let mut g = G::default();
        let tok = g.tokens();
        let eq = g.select(tok, tok, Comparison::Eq);
        let ne = g.not(eq);
        let none = g.select(tok, tok, Comparison::False);
        let either = g.or(ne, none);
        let back = g.not(either);
        let all = g.select(tok, tok, Comparison::True);
        let both = g.and(back, all);
        let out = g.width(both);
        let hist2 = g.program("hist2", &t, out);
        let spec = spec(vec![hist, hist2]);
        let goal = ProofGoal::Equivalent {
            a: "hist".into(),
            b: "hist2".into(),
        };
        assert!(
            solve_all(&spec, goal)
                .iter()
                .all(|r| matches!(r, Raw::Unsat))
        );
    }

    #[test]
    fn replay_rejects_what_is_not_a_counterexample() {
        let t = task("reverse", syms(&["a", "b", "c"]), 4);
        let spec = spec(vec![
            reverse("good", &t, 1),
            reverse("good2", &t, 1),
            reverse("bad", &t, 0),
        ]);
        let input = vec![Value::sym("a"), Value::sym("b")];
        let same = Resolved::new(
            &spec,
            &ProofGoal::Equivalent {
                a: "good".into(),
                b: "good2".into(),
            },
        )
        .unwrap();
        let why = super::super::replay::replay(&same, std::slice::from_ref(&input)).unwrap_err();
        assert!(why.contains("no difference"), "{why}");
        let wf = Resolved::new(
            &spec,
            &ProofGoal::WellFormed {
                program: "good".into(),
            },
        )
        .unwrap();
        assert!(super::super::replay::replay(&wf, std::slice::from_ref(&input)).is_err());
        // Outside the vocabulary: not an input of the domain at all.
        let out = vec![Value::sym("z")];
        let why = super::super::replay::replay(&same, &[out]).unwrap_err();
        assert!(why.contains("not in the domain"), "{why}");
        // A real one is confirmed, with the evaluator's values.
        let diff = Resolved::new(
            &spec,
            &ProofGoal::Equivalent {
                a: "good".into(),
                b: "bad".into(),
            },
        )
        .unwrap();
        let cex = super::super::replay::replay(&diff, &[input]).unwrap();
        assert_eq!(cex.differences[0].left, "b");
        assert_eq!(cex.differences[0].right, "none");
    }
}
