//! `compile.json`: the map from the interpretation to the compiled model — which residual
//! directions hold each variable, which hooks compute it, and how each block was built. Circuits
//! and interventions on compiled models start here.

use serde_json::{Value as Json, json};

use super::Compiled;
use super::assemble::OpPlacement;
use super::blocks::{Dir, EmbedFn};
use super::lower::{OpBlock, Producer};
use crate::lang::ir::NodeId;

fn hooks_of(c: &Compiled, placement: &[OpPlacement], node: NodeId) -> Vec<Json> {
    let mut out = Vec::new();
    match c.plan.producer.get(node.0) {
        Some(Producer::Embedding) => {
            let hook = match c.plan.embeds.get(&node) {
                Some(EmbedFn::Index(_)) => "hook_pos_embed",
                _ => "hook_embed",
            };
            out.push(json!({"hook": hook}));
        }
        Some(Producer::Op(_)) => {
            for (i, op) in c.plan.ops.iter().enumerate() {
                if !op.block.nodes().contains(&node) {
                    continue;
                }
                let p = &placement[i];
                match &op.block {
                    OpBlock::Head(_) => out.push(
                        json!({"hook": format!("blocks.{}.attn.hook_z", p.layer), "head": p.head}),
                    ),
                    OpBlock::Mlp(_) => out.push(json!({
                        "hook": format!("blocks.{}.mlp.hook_post", p.layer),
                        "units": p.units,
                    })),
                }
            }
        }
        _ => {}
    }
    out
}

impl Compiled {
    /// `compile.json`: where every variable lives (residual directions, the hooks that compute
    /// it) and how each block was built.
    pub fn report_json(&self) -> Json {
        report_json(self)
    }
}

pub fn report_json(c: &Compiled) -> Json {
    report_with(c, &c.placement, &c.shape())
}

/// The report of an implementation of `c` whose ops sit at `placement` (a sampled one).
pub fn report_with(c: &Compiled, placement: &[OpPlacement], shape: &super::Shape) -> Json {
    let plan = &c.plan;
    let variables: Vec<Json> = (0..plan.info.seqs.len())
        .filter(|i| plan.info.seqs[*i].is_some() && plan.producer[*i] != Producer::Selector)
        .map(|i| {
            let id = NodeId(i);
            let residual: Vec<&String> = c
                .layout
                .dirs
                .iter()
                .zip(&c.layout.labels)
                .filter(|(d, _)| matches!(d, Dir::Val(n, _) | Dir::Num(n) if *n == id))
                .map(|(_, l)| l)
                .collect();
            json!({
                "name": plan.info.labels[i],
                "node": i,
                "encoding": plan.info.seqs[i].as_ref().map(|s| s.encoding()),
                "written_to_residual": plan.materialized[i],
                "residual": residual,
                "computed_by": hooks_of(c, placement, id),
            })
        })
        .collect();
    let ops: Vec<Json> = plan
        .ops
        .iter()
        .zip(placement)
        .map(|(op, p)| {
            let computes: Vec<&String> = op.block.nodes().iter().map(|n| &plan.info.labels[n.0]).collect();
            match &op.block {
                OpBlock::Head(h) => json!({
                    "kind": format!("{:?}", h.kind),
                    "computes": computes,
                    "layer": p.layer,
                    "head": p.head,
                    "qk_dims": h.qk.len(),
                    "ov_dims": h.ov.len(),
                }),
                OpBlock::Mlp(g) => json!({
                    "kind": "Mlp",
                    "computes": computes,
                    "layer": p.layer,
                    "units": p.units,
                    "strategy": g.strategy,
                    "sources": g.sources.iter().map(|s| &plan.info.labels[s.node.0]).collect::<Vec<_>>(),
                }),
            }
        })
        .collect();
    json!({
        "program": plan.program,
        "shape": shape,
        "softmax_coldness": c.coldness,
        "attention_scale": "scores are q·k (use_attn_scale = false); W_Q carries the coldness",
        "variables": variables,
        "ops": ops,
    })
}
