//! The domain check: a categorical aggregate compiles to one attention head that *averages* the
//! one-hot values of the positions it selects, so selecting two positions with different values
//! gives a blend no downstream block can read — tracr silently outputs garbage there. Before
//! compiling, every input of the bounded domain (or, beyond 200,000 inputs, a seeded sample of
//! 10,000) is run through the reference evaluator; a selection of two positions with different
//! values is a compile error carrying that input, and so is any other evaluation failure (the
//! interpretation must be a total function on its domain for "exact" to mean anything).

use rayon::prelude::*;
use serde::Serialize;

use super::error::{Ambiguity, CompileError};
use crate::lang::domain as lang_domain;
use crate::lang::eval::{EvalError, NodeValue, eval_graph, eval_program};
use crate::lang::ir::{Graph, NodeId, Op, Program, Task, Value};

/// Domains up to this many inputs are enumerated.
pub const EXHAUSTIVE_LIMIT: u128 = 200_000;
/// Larger domains are checked on this many seeded samples.
pub const SAMPLE_COUNT: usize = 10_000;

/// The inputs a check runs on.
#[derive(Clone, Debug)]
pub struct Domain {
    pub inputs: Vec<Vec<Value>>,
    /// Whether `inputs` is the whole domain.
    pub exhaustive: bool,
    /// `Σ |vocab|^n` for `n` in `1..=max_len`, before any `where` restriction (saturating).
    pub raw_size: u128,
    /// The seed of the sample (`None` when exhaustive).
    pub seed: Option<u64>,
}

impl Domain {
    /// How a report names the coverage: `all 1364 inputs` / `10000 inputs sampled with seed 7`.
    pub fn describe(&self) -> String {
        match self.seed {
            None => format!("all {} inputs of the domain", self.inputs.len()),
            Some(s) => format!(
                "{} inputs sampled with seed {s} from a domain of {} sequences (partial check)",
                self.inputs.len(),
                self.raw_size
            ),
        }
    }
}

pub fn raw_size(task: &Task) -> u128 {
    lang_domain::upper_bound(task).unwrap_or(u128::MAX)
}

/// Every input of the task's domain when it has at most [`EXHAUSTIVE_LIMIT`] sequences, else
/// [`SAMPLE_COUNT`] inputs drawn with `seed` (`lang::domain`'s enumeration and sampling).
pub fn domain(task: &Task, seed: u64) -> Result<Domain, CompileError> {
    domain_with(task, seed, EXHAUSTIVE_LIMIT, SAMPLE_COUNT)
}

pub fn domain_with(
    task: &Task,
    seed: u64,
    limit: u128,
    samples: usize,
) -> Result<Domain, CompileError> {
    let raw = raw_size(task);
    let err = |e: crate::lang::eval::EvalError| CompileError::Evaluation {
        program: task.name.clone(),
        input: None,
        reason: Box::new(e),
    };
    if raw <= limit {
        let inputs = lang_domain::inputs(task)
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        return Ok(Domain {
            inputs,
            exhaustive: true,
            raw_size: raw,
            seed: None,
        });
    }
    let inputs = lang_domain::sample(task, samples, seed).map_err(err)?;
    Ok(Domain {
        inputs,
        exhaustive: false,
        raw_size: raw,
        seed: Some(seed),
    })
}

/// What the check found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub inputs: usize,
    pub exhaustive: bool,
    /// Inputs where a categorical aggregate selects several positions that all hold the same
    /// value: the evaluator rejects them, the model outputs that value.
    pub same_value_ambiguities: usize,
}

pub use crate::lang::domain::input_text;

/// The values of `values` at `positions` when `node` (an aggregate) selects several of them.
fn selected_values(
    graph: &Graph,
    node: NodeId,
    input: &[Value],
    positions: &[usize],
) -> Option<Vec<Value>> {
    let Op::Aggregate { values, .. } = &graph.nodes.get(node.0)?.op else {
        return None;
    };
    let prefix = Graph {
        nodes: graph.nodes[..node.0].to_vec(),
    };
    let vals = eval_graph(&prefix, input).ok()?;
    match vals.get(values.0)? {
        NodeValue::Seq(v) => Some(
            positions
                .iter()
                .filter_map(|p| v.get(*p).cloned())
                .collect(),
        ),
        NodeValue::Selector(_) => None,
    }
}

enum Finding {
    SameValue,
    Failure(CompileError),
}

/// Runs the domain check of `program` on `domain`.
pub fn check_aggregates(program: &Program, domain: &Domain) -> Result<CheckReport, CompileError> {
    let sampled = (!domain.exhaustive).then(|| domain.describe());
    let findings: Vec<(usize, Finding)> = domain
        .inputs
        .par_iter()
        .enumerate()
        .filter_map(|(i, input)| {
            let err = eval_program(program, input).err()?;
            let finding = match err {
                EvalError::AmbiguousAggregate {
                    node,
                    query,
                    selected,
                } => {
                    let id = program.graph.by_name(&node).or_else(|| {
                        node.strip_prefix("node ")
                            .and_then(|n| n.parse().ok())
                            .map(NodeId)
                    });
                    let vals =
                        id.and_then(|id| selected_values(&program.graph, id, input, &selected));
                    match vals {
                        Some(v) if v.windows(2).all(|w| w[0] == w[1]) => Finding::SameValue,
                        values => Finding::Failure(CompileError::AmbiguousAggregate {
                            program: program.name.clone(),
                            node,
                            found: Box::new(Ambiguity {
                                input: input.clone(),
                                query,
                                selected,
                                values,
                                sampled: sampled.clone(),
                            }),
                        }),
                    }
                }
                other => Finding::Failure(CompileError::Evaluation {
                    program: program.name.clone(),
                    input: Some(input.clone()),
                    reason: Box::new(other),
                }),
            };
            Some((i, finding))
        })
        .collect();
    let mut report = CheckReport {
        inputs: domain.inputs.len(),
        exhaustive: domain.exhaustive,
        same_value_ambiguities: 0,
    };
    // The first failing input in domain order, whatever the thread count.
    for (_, f) in findings {
        match f {
            Finding::SameValue => report.same_value_ambiguities += 1,
            Finding::Failure(e) => return Err(e),
        }
    }
    Ok(report)
}
