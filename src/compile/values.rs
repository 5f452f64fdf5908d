//! Stage 1 — value sets: what each sequence node can hold, in the form the layout needs.
//!
//! The checker already inferred every node's value set (tracr-style, an over-approximation). This
//! stage turns them into layout facts: a categorical node gets one direction per value *other
//! than* `none` (an all-zero block means `none`, which is what an attention head reads from BOS
//! when nothing is selected); a numerical node gets one direction and a finite set of points (the
//! MLPs that read it interpolate between these points exactly).

use num_rational::Rational64;

use super::error::CompileError;
use super::scalar::{as_number, token_text};
use crate::lang::ir::{Encoding, NodeId, NodeType, Op, Program, Value};

/// A sequence node's layout facts.
#[derive(Clone, Debug, PartialEq)]
pub enum SeqInfo {
    Categorical {
        /// Sorted, without `none`; value `i` lives on direction `name:values[i]`.
        values: Vec<Value>,
        /// Whether the node can be `none` (then encoded as the all-zero block).
        has_none: bool,
    },
    Numerical {
        /// Sorted, distinct.
        points: Vec<Rational64>,
    },
}

impl SeqInfo {
    pub fn encoding(&self) -> Encoding {
        match self {
            SeqInfo::Categorical { .. } => Encoding::Categorical,
            SeqInfo::Numerical { .. } => Encoding::Numerical,
        }
    }

    pub fn value_index(&self, v: &Value) -> Option<usize> {
        match self {
            SeqInfo::Categorical { values, .. } => values.binary_search(v).ok(),
            SeqInfo::Numerical { .. } => None,
        }
    }
}

/// Stage-1 result: per node, its layout facts (`None` for selectors) and a printable label.
#[derive(Clone, Debug)]
pub struct ValueInfo {
    pub seqs: Vec<Option<SeqInfo>>,
    pub labels: Vec<String>,
}

impl ValueInfo {
    pub fn seq(&self, id: NodeId) -> Option<&SeqInfo> {
        self.seqs.get(id.0).and_then(|s| s.as_ref())
    }
}

/// The residual label prefix of a node: its variable name, `tokens` / `indices` for the inputs,
/// or `<op>_<id>` for an unnamed intermediate.
pub fn node_label(program: &Program, id: NodeId) -> String {
    let node = program.graph.node(id);
    match (&node.op, &node.name) {
        (Op::Tokens, _) => "tokens".into(),
        (Op::Indices, _) => "indices".into(),
        (_, Some(n)) => n.clone(),
        (op, None) => {
            let kind = match op {
                Op::Tokens | Op::Indices => unreachable!(),
                Op::Full(_) => "full",
                Op::Map { .. } => "map",
                Op::Map2 { .. } => "map2",
                Op::Select { .. } | Op::SelectAnd(..) | Op::SelectOr(..) | Op::SelectNot(..) => {
                    "select"
                }
                Op::SelectorWidth(_) => "selector_width",
                Op::Aggregate { .. } => "aggregate",
            };
            format!("{kind}_{}", id.0)
        }
    }
}

/// Stage 1: layout facts for every node of `program`.
pub fn infer(program: &Program) -> Result<ValueInfo, CompileError> {
    let mut seqs = Vec::with_capacity(program.graph.nodes.len());
    let mut labels = Vec::with_capacity(program.graph.nodes.len());
    for (i, node) in program.graph.nodes.iter().enumerate() {
        let id = NodeId(i);
        let label = node_label(program, id);
        let info = match &node.ty {
            NodeType::Selector => None,
            NodeType::Seq {
                encoding: Encoding::Categorical,
                values,
            } => Some(SeqInfo::Categorical {
                values: values
                    .iter()
                    .filter(|v| **v != Value::None)
                    .cloned()
                    .collect(),
                has_none: values.contains(&Value::None),
            }),
            NodeType::Seq {
                encoding: Encoding::Numerical,
                values,
            } => {
                let mut points = Vec::with_capacity(values.len());
                for v in values {
                    match as_number(v) {
                        Some(r) => points.push(r),
                        None => {
                            return Err(CompileError::Values {
                                program: program.name.clone(),
                                node: label,
                                reason: format!(
                                    "a numerical sequence must hold numbers, but its value set contains `{}`",
                                    token_text(v)
                                ),
                            });
                        }
                    }
                }
                points.sort();
                points.dedup();
                Some(SeqInfo::Numerical { points })
            }
        };
        seqs.push(info);
        labels.push(label);
    }
    Ok(ValueInfo { seqs, labels })
}

/// The points of a selector width's attention output, `1/(w+1)` for each width `w`, sorted.
pub fn selector_width_points(widths: &SeqInfo) -> Vec<Rational64> {
    let ws: Vec<Rational64> = match widths {
        SeqInfo::Categorical { values, .. } => values.iter().filter_map(as_number).collect(),
        SeqInfo::Numerical { points } => points.clone(),
    };
    let mut pts: Vec<Rational64> = ws
        .into_iter()
        .filter(|w| *w >= Rational64::from_integer(0))
        .map(|w| (w + 1).recip())
        .collect();
    pts.sort();
    pts.dedup();
    pts
}
