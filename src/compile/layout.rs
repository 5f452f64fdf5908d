//! Stage 2 of the output — the residual layout: one column per direction the blocks use, in a
//! fixed, readable order (`one`, `tokens:BOS`, then every written node's block in program order),
//! each with its label (`tokens:a`, `indices:2`, `length:3`, `frac` for a numerical node,
//! `length_selector_width_attn_output` for a selector width's scratch direction, as tracr names it).

use std::collections::HashMap;

use super::blocks::Dir;
use super::lower::{OpBlock, Plan};
use super::scalar::token_text;
use super::values::SeqInfo;
use crate::lang::ir::NodeId;

#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub dirs: Vec<Dir>,
    pub labels: Vec<String>,
    index: HashMap<Dir, usize>,
}

impl Layout {
    pub fn build(plan: &Plan, bos_name: &str) -> Layout {
        let mut dirs = vec![Dir::One, Dir::Bos];
        let mut labels = vec!["one".to_string(), format!("tokens:{bos_name}")];
        let sw: Vec<NodeId> = plan
            .ops
            .iter()
            .filter_map(|op| match &op.block {
                OpBlock::Head(h) if h.kind == super::blocks::HeadKind::SelectorWidth => {
                    Some(h.node)
                }
                _ => None,
            })
            .collect();
        for (i, seq) in plan.info.seqs.iter().enumerate() {
            let id = NodeId(i);
            let label = &plan.info.labels[i];
            if plan.materialized[i] {
                match seq {
                    Some(SeqInfo::Categorical { values, .. }) => {
                        for (j, v) in values.iter().enumerate() {
                            dirs.push(Dir::Val(id, j));
                            labels.push(format!("{label}:{}", token_text(v)));
                        }
                    }
                    Some(SeqInfo::Numerical { .. }) => {
                        dirs.push(Dir::Num(id));
                        labels.push(label.clone());
                    }
                    None => {}
                }
            }
            if sw.contains(&id) {
                dirs.push(Dir::SwAux(id));
                labels.push(format!("{label}_selector_width_attn_output"));
            }
        }
        let index = dirs.iter().enumerate().map(|(i, d)| (*d, i)).collect();
        Layout {
            dirs,
            labels,
            index,
        }
    }

    pub fn col(&self, d: Dir) -> Option<usize> {
        self.index.get(&d).copied()
    }

    pub fn width(&self) -> usize {
        self.dirs.len()
    }
}
