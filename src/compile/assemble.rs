//! Stage 5 — assembly: blocks placed at their sub-layers become dense TransformerLens matrices.
//!
//! Heads placed in the same layer become that layer's heads (zero-padded to the widest layer and
//! to the largest head); MLP groups placed in the same layer share its hidden units. `W_Q`
//! carries the softmax coldness; `use_attn_scale` is false, so scores are `q·k` as built.

use serde::Serialize;

use super::blocks::{Dir, EmbedFn, HeadBlock, Sparse};
use super::error::CompileError;
use super::layout::Layout;
use super::lower::{OpBlock, Plan};
use super::scalar::as_number;
use super::scalar::to_f64;
use super::schedule::Schedule;
use super::values::SeqInfo;
use super::weights::{Head, Layer, Mat, Weights};
use crate::lang::ir::{NodeId, Value};

/// Where an operation ended up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpPlacement {
    pub layer: usize,
    /// `attn` or `mlp`.
    pub sublayer: &'static str,
    /// The head index (attention) or the hidden-unit range (MLP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<Vec<usize>>,
}

impl OpPlacement {
    /// The placeholder every op starts from before assembly records where it went.
    pub(crate) const UNPLACED: OpPlacement = OpPlacement {
        layer: 0,
        sublayer: "attn",
        head: None,
        units: None,
    };
}

fn col(layout: &Layout, plan: &Plan, d: Dir) -> Result<usize, CompileError> {
    layout.col(d).ok_or_else(|| {
        CompileError::internal(
            &plan.program,
            format!("direction {d:?} has no residual column"),
        )
    })
}

fn write_value(
    plan: &Plan,
    layout: &Layout,
    row: &mut [f64],
    node: NodeId,
    v: &Value,
) -> Result<(), CompileError> {
    match plan.info.seq(node) {
        Some(SeqInfo::Categorical { values, .. }) if *v != Value::None => {
            let i = values.binary_search(v).map_err(|_| {
                CompileError::internal(
                    &plan.program,
                    format!(
                        "embedding value {v} is outside the value set of `{}`",
                        plan.info.labels[node.0]
                    ),
                )
            })?;
            row[col(layout, plan, Dir::Val(node, i))?] += 1.0;
        }
        Some(SeqInfo::Categorical { .. }) => {}
        Some(SeqInfo::Numerical { .. }) => {
            if let Some(x) = as_number(v) {
                row[col(layout, plan, Dir::Num(node))?] += to_f64(x);
            }
        }
        None => {}
    }
    Ok(())
}

fn dense(
    layout: &Layout,
    plan: &Plan,
    s: &Sparse,
    scale: f64,
) -> Result<Vec<(usize, f64)>, CompileError> {
    s.iter()
        .map(|(d, w)| Ok((col(layout, plan, *d)?, *w * scale)))
        .collect()
}

/// The token and position embeddings: token 0 is BOS; every token writes the `one`
/// direction, BOS also its own; input-only nodes are written where they are known.
fn embeddings(plan: &Plan, layout: &Layout) -> Result<(Mat, Mat), CompileError> {
    let d_model = layout.width();
    let n_ctx = plan.max_len + 1;
    let d_vocab = plan.vocab.len() + 1;
    let mut w_e = Mat::zeros(d_vocab, d_model);
    let mut w_pos = Mat::zeros(n_ctx, d_model);
    let one = col(layout, plan, Dir::One)?;
    let bos = col(layout, plan, Dir::Bos)?;
    w_e.set(0, one, 1.0);
    w_e.set(0, bos, 1.0);
    for t in 1..d_vocab {
        w_e.set(t, one, 1.0);
    }
    for (node, f) in &plan.embeds {
        if !plan.materialized[node.0] {
            continue;
        }
        match f {
            EmbedFn::Const(v) => {
                for t in 1..d_vocab {
                    write_value(plan, layout, w_e.row_mut(t), *node, v)?;
                }
            }
            EmbedFn::Token(vs) => {
                for (i, v) in vs.iter().enumerate() {
                    write_value(plan, layout, w_e.row_mut(i + 1), *node, v)?;
                }
            }
            EmbedFn::Index(vs) => {
                for (i, v) in vs.iter().enumerate() {
                    write_value(plan, layout, w_pos.row_mut(i + 1), *node, v)?;
                }
            }
        }
    }
    Ok((w_e, w_pos))
}

/// The ops of each layer's attention and MLP sub-layers, by index into `plan.ops`.
type SubLayers = (Vec<Vec<usize>>, Vec<Vec<usize>>);

/// Which ops go where: the schedule's sub-layer `t` is layer `t / 2`'s attention (even) or MLP
/// (odd); blocks decide which.
fn sublayers(plan: &Plan, sched: &Schedule) -> Result<SubLayers, CompileError> {
    let n_layers = sched.n_layers;
    let mut heads_at: Vec<Vec<usize>> = vec![Vec::new(); n_layers];
    let mut mlps_at: Vec<Vec<usize>> = vec![Vec::new(); n_layers];
    for (i, op) in plan.ops.iter().enumerate() {
        let t = sched.time[i];
        if t < 0 || t >= 2 * n_layers as i64 {
            return Err(CompileError::internal(
                &plan.program,
                format!("op {i} placed at sub-layer {t}"),
            ));
        }
        let l = (t / 2) as usize;
        if op.block.is_attention() {
            heads_at[l].push(i);
        } else {
            mlps_at[l].push(i);
        }
    }
    Ok((heads_at, mlps_at))
}

/// Writes one attention block into head `w`: the query side carries the coldness.
fn write_head(
    w: &mut Head,
    h: &HeadBlock,
    plan: &Plan,
    layout: &Layout,
    coldness: f64,
) -> Result<(), CompileError> {
    for (j, (qc, kc)) in h.qk.iter().enumerate() {
        for (r, x) in dense(layout, plan, qc, coldness)? {
            w.w_q.add(r, j, x);
        }
        for (r, x) in dense(layout, plan, kc, 1.0)? {
            w.w_k.add(r, j, x);
        }
    }
    for (j, (vc, orow)) in h.ov.iter().enumerate() {
        for (r, x) in dense(layout, plan, vc, 1.0)? {
            w.w_v.add(r, j, x);
        }
        for (c, x) in dense(layout, plan, orow, 1.0)? {
            w.w_o.add(j, c, x);
        }
    }
    Ok(())
}

/// The unembedding: one logit per categorical value (a `none` row biased between absent and
/// present), or the single numerical direction.
fn unembedding(plan: &Plan, layout: &Layout) -> Result<(Mat, Vec<f64>), CompileError> {
    let d_model = layout.width();
    let out = plan.output;
    Ok(match plan.info.seq(out) {
        Some(SeqInfo::Categorical { values, has_none }) => {
            let n_out = values.len() + usize::from(*has_none);
            let mut w_u = Mat::zeros(d_model, n_out.max(1));
            for j in 0..values.len() {
                w_u.set(col(layout, plan, Dir::Val(out, j))?, j, 1.0);
            }
            let mut b_u = vec![0.0; n_out.max(1)];
            if *has_none {
                // `none` is the all-zero block: its logit sits between "absent" (0) and
                // "present" (1).
                b_u[values.len()] = 0.5;
            }
            (w_u, b_u)
        }
        Some(SeqInfo::Numerical { .. }) => {
            let mut w_u = Mat::zeros(d_model, 1);
            w_u.set(col(layout, plan, Dir::Num(out))?, 0, 1.0);
            (w_u, vec![0.0])
        }
        None => {
            return Err(CompileError::internal(
                &plan.program,
                "the output is not a sequence",
            ));
        }
    })
}

/// Assembles the plan at the sub-layers of `sched`.
pub fn assemble(
    plan: &Plan,
    layout: &Layout,
    sched: &Schedule,
    coldness: f64,
) -> Result<(Weights, Vec<OpPlacement>), CompileError> {
    let d_model = layout.width();
    let n_layers = sched.n_layers;
    let n_ctx = plan.max_len + 1;
    let d_vocab = plan.vocab.len() + 1;

    let (w_e, w_pos) = embeddings(plan, layout)?;

    let (heads_at, mlps_at) = sublayers(plan, sched)?;
    let n_heads = heads_at.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let d_head = plan
        .ops
        .iter()
        .filter_map(|op| match &op.block {
            OpBlock::Head(h) => Some(h.d_head()),
            OpBlock::Mlp(_) => None,
        })
        .max()
        .unwrap_or(1);
    let units_in = |ops: &Vec<usize>| -> usize {
        ops.iter()
            .map(|i| match &plan.ops[*i].block {
                OpBlock::Mlp(g) => g.units.len(),
                OpBlock::Head(_) => 0,
            })
            .sum()
    };
    let d_mlp = mlps_at.iter().map(units_in).max().unwrap_or(0).max(1);

    let mut placement = vec![OpPlacement::UNPLACED; plan.ops.len()];
    let mut layers = Vec::with_capacity(n_layers);
    for l in 0..n_layers {
        let mut heads: Vec<Head> = (0..n_heads).map(|_| Head::zeros(d_model, d_head)).collect();
        for (slot, &i) in heads_at[l].iter().enumerate() {
            let OpBlock::Head(h) = &plan.ops[i].block else {
                unreachable!("sorted by kind")
            };
            write_head(&mut heads[slot], h, plan, layout, coldness)?;
            placement[i] = OpPlacement {
                layer: l,
                sublayer: "attn",
                head: Some(slot),
                units: None,
            };
        }
        let mut w_in = Mat::zeros(d_model, d_mlp);
        let mut w_out = Mat::zeros(d_mlp, d_model);
        let mut next = 0;
        for &i in &mlps_at[l] {
            let OpBlock::Mlp(g) = &plan.ops[i].block else {
                unreachable!("sorted by kind")
            };
            let start = next;
            for u in &g.units {
                for (r, x) in dense(layout, plan, &u.input, 1.0)? {
                    w_in.add(r, next, x);
                }
                for (c, x) in dense(layout, plan, &u.output, 1.0)? {
                    w_out.add(next, c, x);
                }
                next += 1;
            }
            placement[i] = OpPlacement {
                layer: l,
                sublayer: "mlp",
                head: None,
                units: Some((start..next).collect()),
            };
        }
        layers.push(Layer {
            heads,
            b_o: vec![0.0; d_model],
            w_in,
            b_in: vec![0.0; d_mlp],
            w_out,
            b_out: vec![0.0; d_model],
        });
    }

    let (w_u, b_u) = unembedding(plan, layout)?;
    let d_vocab_out = w_u.cols;
    Ok((
        Weights {
            d_model,
            n_ctx,
            d_head,
            n_heads,
            d_mlp,
            d_vocab,
            d_vocab_out,
            w_e,
            w_pos,
            layers,
            w_u,
            b_u,
        },
        placement,
    ))
}
