//! Stage 4 — layer allocation from the dependency graph.
//!
//! Time runs over sub-layers: attention of layer `l` is `2l`, its MLP `2l + 1`; the embeddings are
//! at `-1`. An operation runs at the earliest sub-layer of its kind after everything it reads
//! (ASAP, longest path); the number of layers is what the latest operation needs. The latest
//! feasible sub-layer of each operation (ALAP) bounds the *slack* the sampler may use to move it.

use super::lower::Plan;

/// When each operation runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub n_layers: usize,
    /// The chosen sub-layer of each op.
    pub time: Vec<i64>,
    pub asap: Vec<i64>,
    pub alap: Vec<i64>,
}

fn parity_ok(t: i64, attention: bool) -> bool {
    t.rem_euclid(2) == if attention { 0 } else { 1 }
}

/// The ops in an order where every op comes after its dependencies (fusion can give a group a
/// dependency created after it, so creation order is not enough).
pub fn topo_order(plan: &Plan) -> Vec<usize> {
    let n = plan.ops.len();
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    fn visit(i: usize, plan: &Plan, done: &mut [bool], order: &mut Vec<usize>) {
        if done[i] {
            return;
        }
        done[i] = true;
        for d in &plan.ops[i].deps {
            visit(*d, plan, done, order);
        }
        order.push(i);
    }
    for i in 0..n {
        visit(i, plan, &mut done, &mut order);
    }
    order
}

/// Earliest sub-layer of each op.
pub fn asap(plan: &Plan) -> Vec<i64> {
    let mut t = vec![0i64; plan.ops.len()];
    for i in topo_order(plan) {
        let op = &plan.ops[i];
        let after = op.deps.iter().map(|d| t[*d]).max().unwrap_or(-1);
        let mut x = after + 1;
        if !parity_ok(x, op.block.is_attention()) {
            x += 1;
        }
        t[i] = x;
    }
    t
}

/// Latest sub-layer of each op when the model has `n_layers` layers.
pub fn alap(plan: &Plan, n_layers: usize) -> Vec<i64> {
    let last = 2 * n_layers as i64 - 1;
    let mut t = vec![0i64; plan.ops.len()];
    for i in topo_order(plan).into_iter().rev() {
        let attention = plan.ops[i].block.is_attention();
        let before = plan
            .ops
            .iter()
            .enumerate()
            .filter(|(_, op)| op.deps.contains(&i))
            .map(|(j, _)| t[j])
            .min()
            .map(|x| x - 1)
            .unwrap_or(last);
        let mut x = before;
        if !parity_ok(x, attention) {
            x -= 1;
        }
        t[i] = x;
    }
    t
}

/// ASAP placement in the fewest layers (plus `extra_layers` empty ones at the end, which give
/// the sampler slack).
pub fn schedule(plan: &Plan, extra_layers: usize) -> Schedule {
    let asap = asap(plan);
    let last = asap.iter().copied().max().unwrap_or(-1);
    let n_layers = (((last + 2) / 2).max(1) as usize) + extra_layers;
    let alap = alap(plan, n_layers);
    Schedule {
        n_layers,
        time: asap.clone(),
        asap,
        alap,
    }
}

/// Whether `time` respects every dependency and sub-layer kind.
pub fn is_valid(plan: &Plan, time: &[i64], n_layers: usize) -> bool {
    plan.ops.iter().enumerate().all(|(i, op)| {
        parity_ok(time[i], op.block.is_attention())
            && time[i] >= 0
            && time[i] < 2 * n_layers as i64
            && op.deps.iter().all(|d| time[*d] < time[i])
    })
}
