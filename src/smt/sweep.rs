//! Equivalence by sweeping: before two programs' outputs are compared, intermediate nodes of the
//! second that the evaluator suggests equal a node of the first are proved equal, one at a time
//! in topological order, and then share the first's terms. Downstream of a proved pair the two
//! programs are then literally the same terms and z3 has nothing left to search; this is how
//! hardware equivalence checkers scale, and it turns `sort` against a differently built `sort`
//! from a search over orderings into a node-by-node argument.
//!
//! Soundness: a pair is used only after z3 proves, on every input of the domain on which neither
//! program has failed so far, that both nodes hold the same values; where a program has failed,
//! the goal is refuted by that failure whatever the substituted terms say.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use z3::SatResult;
use z3::ast::Bool;

use crate::lang::eval::{NodeValue, check_input, eval_program};
use crate::lang::ir::{NodeId, Program, Value};

use super::SmtError;
use super::encode::{NodeErr, NodeVal, Run, run_program_with};
use super::resolve::Resolved;
use super::value::{SVal, and, not, or};

/// How many domain inputs the evaluator runs to find candidate pairs.
const SAMPLES: usize = 48;
/// How many random draws may be rejected by the domain before sampling gives up.
const TRIES: usize = 4000;
/// z3's resource budget for proving one candidate pair (a few seconds of work at most; a pair it
/// cannot prove within it is simply not substituted). Deterministic, unlike a timeout.
const PAIR_RLIMIT: u32 = 10_000_000;

/// For each node of `q`, the first node of `p` with the same value on every sampled input of
/// length `n` on which both programs evaluate (none if no input could be sampled).
pub(crate) fn candidates(
    r: &Resolved<'_>,
    p: &Program,
    q: &Program,
    n: usize,
) -> Vec<Option<NodeId>> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0000 + n as u64);
    let mut traces = Vec::new();
    let mut tries = 0;
    while traces.len() < SAMPLES && tries < TRIES && !r.vocab.is_empty() {
        tries += 1;
        let input: Vec<Value> = (0..n)
            .map(|_| r.vocab[rng.random_range(0..r.vocab.len())].clone())
            .collect();
        if r.tasks.iter().any(|t| check_input(t, &input).is_err()) {
            continue;
        }
        if let (Ok(tp), Ok(tq)) = (eval_program(p, &input), eval_program(q, &input)) {
            traces.push((tp.values, tq.values));
        }
    }
    if traces.is_empty() {
        return vec![None; q.graph.nodes.len()];
    }
    let same = |a: usize, b: usize| traces.iter().all(|(tp, tq)| values_equal(&tp[a], &tq[b]));
    (0..q.graph.nodes.len())
        .map(|b| (0..p.graph.nodes.len()).find(|&a| same(a, b)).map(NodeId))
        .collect()
}

fn values_equal(a: &NodeValue, b: &NodeValue) -> bool {
    a == b
}

/// Unrolls `p`, then `q` with every candidate pair that z3 proves equal substituted.
pub(crate) fn swept_pair(
    r: &Resolved<'_>,
    p: &Program,
    q: &Program,
    tokens: &[SVal],
    domain: &Bool,
    lemmas: &[Bool],
) -> Result<(Run, Run), SmtError> {
    let n = tokens.len();
    let run_p = run_program_with(p, tokens, &r.syms, &mut |_, _, _| None)?;
    let cands = candidates(r, p, q, n);
    let solver = super::solver::limited_solver(PAIR_RLIMIT);
    solver.assert(domain);
    for l in lemmas
        .iter()
        .chain(&super::solver::proven_lemmas(&run_p.facts))
    {
        solver.assert(l);
    }
    let p_nodes = run_p.stages[0].nodes.clone();
    let p_error = run_p.error.clone();
    let mut hook = |id: NodeId, val: &NodeVal, errs: &[NodeErr]| -> Option<NodeVal> {
        let a = cands.get(id.0).copied().flatten()?;
        let pa = &p_nodes[a.0];
        if pa.identical(val) {
            return Some(pa.clone());
        }
        let differ = not(&pa.same(val).ok()?);
        if differ.as_bool() == Some(false) {
            return Some(pa.clone());
        }
        let q_error = or(&errs.iter().map(|e| e.err.cond.clone()).collect::<Vec<_>>());
        solver.push();
        solver.assert(and(&[not(&or(&[p_error.clone(), q_error])), differ]));
        let proved = solver.check() == SatResult::Unsat;
        solver.pop(1);
        proved.then(|| pa.clone())
    };
    let run_q = run_program_with(q, tokens, &r.syms, &mut hook)?;
    Ok((run_p, run_q))
}
