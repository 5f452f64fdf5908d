//! The task as training data: every input of the domain (or its seeded sample), encoded as the
//! compiled model reads it, with the evaluator's trace and the answer targets; batches of equal
//! length drawn from it by seed.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::TrainError;
use crate::artifact::OutputSpec;
use crate::artifact::value::to_json;
use crate::compile::Compiled;
use crate::lang::domain::input_text;
use crate::lang::eval::{Trace, eval_intervened, eval_program};
use crate::lang::ir::{NodeId, Program, Value};
use crate::model::TokenBatch;

/// What the model must output at one answer position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Target {
    /// The output row of a categorical value.
    Class(u32),
    /// A numerical output's value.
    Number(f32),
}

/// One input of the domain.
pub(crate) struct Example {
    pub tokens: Vec<u32>,
    pub trace: Trace,
    pub targets: Vec<Target>,
}

/// How answers become targets.
enum Coding {
    Categorical(Vec<serde_json::Value>),
    Numerical,
}

/// The domain, encoded, grouped by length.
pub(crate) struct TaskData {
    pub examples: Vec<Example>,
    /// Example indices of each length, shortest first.
    pub groups: Vec<Vec<usize>>,
    /// Cumulative draw weights of the groups (√size: short lengths, few inputs, still trained).
    cumulative: Vec<f64>,
    coding: Coding,
    /// Token positions before the first answer (the BOS).
    pub prefix: usize,
}

/// A batch ready for a loss: tokens, targets `[batch, answers]` and 0/1 weights (a row whose
/// counterfactual is undefined weighs nothing).
pub(crate) struct Batch {
    pub tokens: TokenBatch,
    pub targets: Tensor,
    pub weights: Tensor,
    /// Rows with weight.
    pub live: usize,
}

impl TaskData {
    pub fn new(
        program: &Program,
        compiled: &Compiled,
        inputs: Vec<Vec<Value>>,
    ) -> Result<Self, TrainError> {
        let coding = match &compiled.output {
            OutputSpec::Categorical { decoding } => Coding::Categorical(decoding.clone()),
            OutputSpec::Numerical { .. } => Coding::Numerical,
        };
        let mut data = TaskData {
            examples: Vec::with_capacity(inputs.len()),
            groups: Vec::new(),
            cumulative: Vec::new(),
            coding,
            prefix: 1,
        };
        let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for input in inputs {
            let fail = |reason: String| TrainError::Evaluation {
                program: program.name.clone(),
                input: input_text(&input),
                reason,
            };
            let trace = eval_program(program, &input).map_err(|e| fail(e.to_string()))?;
            let targets = data.targets(trace.output()).map_err(fail)?;
            let tokens = compiled
                .encode(&input)
                .ok_or_else(|| fail("a token is outside the compiled vocabulary".into()))?
                .into_iter()
                .map(|t| t as u32)
                .collect();
            by_len
                .entry(input.len())
                .or_default()
                .push(data.examples.len());
            data.examples.push(Example {
                tokens,
                trace,
                targets,
            });
        }
        if data.examples.is_empty() {
            return Err(TrainError::Setup(format!(
                "`{}` has no input to train on",
                program.name
            )));
        }
        data.groups = by_len.into_values().collect();
        let mut acc = 0.0;
        for g in &data.groups {
            acc += (g.len() as f64).sqrt();
            data.cumulative.push(acc);
        }
        Ok(data)
    }

    /// The targets of an answer, or why one of its values has no output row.
    pub fn targets(&self, values: &[Value]) -> Result<Vec<Target>, String> {
        values
            .iter()
            .map(|v| match &self.coding {
                Coding::Categorical(decoding) => {
                    let j = to_json(v);
                    decoding
                        .iter()
                        .position(|d| *d == j)
                        .map(|i| Target::Class(i as u32))
                        .ok_or_else(|| format!("the output value {j} has no output row"))
                }
                Coding::Numerical => match v {
                    Value::Num(r) => Ok(Target::Number(
                        (*r.numer() as f64 / *r.denom() as f64) as f32,
                    )),
                    other => Err(format!("the numerical output is {}", to_json(other))),
                },
            })
            .collect()
    }

    pub fn categorical(&self) -> bool {
        matches!(self.coding, Coding::Categorical(_))
    }

    /// The output on `base` with `node` set to its value on `source`, as targets; `None` when the
    /// evaluator fails on the intervened values or the answer has no output row.
    pub fn counterfactual(
        &self,
        program: &Program,
        node: NodeId,
        base: usize,
        source: usize,
    ) -> Option<Vec<Target>> {
        let value = self.examples[source].trace.node(node)?.clone();
        let base = &self.examples[base].trace;
        let overrides = BTreeMap::from([(node, value)]);
        let out = eval_intervened(program, &base.input, &overrides).ok()?;
        self.targets(out.output()).ok()
    }

    /// A length group, drawn with weight √size.
    pub fn draw_group(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.random::<f64>() * total;
        self.cumulative
            .iter()
            .position(|&c| x < c)
            .unwrap_or(self.groups.len() - 1)
    }

    /// `n` example indices of group `g`, drawn with replacement.
    pub fn draw(&self, g: usize, n: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
        let group = &self.groups[g];
        (0..n)
            .map(|_| group[rng.random_range(0..group.len())])
            .collect()
    }

    /// The tokens of `rows` (equal lengths) as a batch.
    pub fn tokens(&self, rows: &[usize]) -> Result<TokenBatch, TrainError> {
        let ids: Vec<Vec<u32>> = rows
            .iter()
            .map(|&i| self.examples[i].tokens.clone())
            .collect();
        Ok(TokenBatch::new(&ids)?)
    }

    /// A batch of `rows` with `targets` per row (`None`: the row does not count).
    pub fn batch(
        &self,
        rows: &[usize],
        targets: Vec<Option<Vec<Target>>>,
        device: &Device,
    ) -> Result<Batch, TrainError> {
        let tokens = self.tokens(rows)?;
        let n = self.examples[rows[0]].targets.len();
        let b = rows.len();
        let live = targets.iter().filter(|t| t.is_some()).count();
        let weights: Vec<f32> = targets
            .iter()
            .flat_map(|t| std::iter::repeat_n(if t.is_some() { 1.0 } else { 0.0 }, n))
            .collect();
        // One value per answer position (class ids are small, so exact in f32); a row that does
        // not count gets class 0 or the value 0.
        let cells = |pick: &dyn Fn(Target) -> Option<f32>| -> Vec<f32> {
            targets
                .iter()
                .flat_map(|t| {
                    (0..n).map(move |k| t.as_ref().and_then(|t| pick(t[k])).unwrap_or(0.0))
                })
                .collect()
        };
        let ctx = |e: candle_core::Error| TrainError::candle("building a batch", e);
        let t = if self.categorical() {
            let classes = cells(&|t| match t {
                Target::Class(c) => Some(c as f32),
                Target::Number(_) => None,
            });
            Tensor::from_vec(classes, (b, n), device)
                .and_then(|t| t.to_dtype(candle_core::DType::U32))
        } else {
            let values = cells(&|t| match t {
                Target::Number(x) => Some(x),
                Target::Class(_) => None,
            });
            Tensor::from_vec(values, (b, n), device)
        }
        .map_err(ctx)?;
        Ok(Batch {
            tokens,
            targets: t,
            weights: Tensor::from_vec(weights, (b, n), device).map_err(ctx)?,
            live,
        })
    }
}
