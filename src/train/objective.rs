//! Strict interchange-intervention training (SIIT, as InterpBench trains its models): three loss
//! terms per step, each over batches of a few input lengths (one batch per length).
//!
//! - **behaviour**: the model's answer on the base is the interpretation's;
//! - **interchange**: with one variable's aligned sites patched from a source run, the answer is
//!   the interpretation's answer with that variable set to its value on the source (the exact
//!   evaluator's high-level intervention);
//! - **strict**: with every component no variable is aligned with patched from a source run,
//!   the answer is still the base's — the rest of the model must be causally inert.
//!
//! Gradients flow through the source run too: the patched activations must carry only what the
//! variable carries, and only the source run can teach the aligned components that (with the
//! source detached, an interchange on `length` that patches every component of a layer never
//! trains that layer to stop writing token identity, and does not converge).

use std::collections::BTreeSet;

use candle_core::{D, Tensor};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::TrainError;
use super::correspondence::Correspondence;
use super::data::{Batch, Target, TaskData};
use crate::lang::ir::Program;
use crate::model::{
    Action, ActivationCache, HookPoint, HookSelection, Intervention, RunOptions, Site, TokenBatch,
    Transformer,
};

/// How much each loss term counts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LossWeights {
    pub behaviour: f64,
    pub interchange: f64,
    pub strict: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        LossWeights {
            behaviour: 1.0,
            interchange: 1.0,
            strict: 1.0,
        }
    }
}

/// One step's loss: the weighted total (with its graph) and each term's value.
pub(crate) struct StepLoss {
    pub total: Tensor,
    pub behaviour: f32,
    pub interchange: Option<f32>,
    pub strict: Option<f32>,
}

pub(crate) struct Objective<'a> {
    pub program: &'a Program,
    pub data: TaskData,
    pub corr: &'a Correspondence,
    /// The components the strict term resamples.
    pub unaligned: Vec<Site>,
    pub batch: usize,
    pub weights: LossWeights,
    /// A numerical answer counts as right within this distance of the target.
    pub tolerance: f32,
}

/// The source run's activations at `sites`' hooks (the run stops after the last one).
fn source_cache(
    model: &Transformer,
    source: &TokenBatch,
    sites: &[Site],
) -> Result<ActivationCache, TrainError> {
    let hooks: BTreeSet<HookPoint> = sites.iter().map(|s| s.hook).collect();
    Ok(model.forward_hooks(source, &RunOptions::cache(HookSelection::Only(hooks)))?)
}

/// Interventions that put `donor`'s activations at `sites`.
fn replacements(donor: &ActivationCache, sites: &[Site]) -> Result<Vec<Intervention>, TrainError> {
    sites
        .iter()
        .map(|s| {
            let act = donor.get(&s.hook).ok_or_else(|| {
                TrainError::Setup(format!("the source run produced no {}", s.hook))
            })?;
            Ok(Intervention::new(s.clone(), Action::Replace(act.clone())))
        })
        .collect()
}

/// Interventions that put the source run's activations at `sites`.
fn patches(
    model: &Transformer,
    source: &TokenBatch,
    sites: &[Site],
) -> Result<Vec<Intervention>, TrainError> {
    replacements(&source_cache(model, source, sites)?, sites)
}

/// The batch-mean loss of `logits` `[batch, pos, out]` at the answer positions: cross-entropy
/// for a categorical output, squared error for a numerical one; rows of weight 0 do not count.
pub(crate) fn loss(
    logits: &Tensor,
    batch: &Batch,
    prefix: usize,
    categorical: bool,
) -> Result<Tensor, TrainError> {
    let ctx = |e| TrainError::candle("computing the loss", e);
    let (_, p, _) = logits.dims3().map_err(ctx)?;
    let n = p - prefix;
    let answers = logits.narrow(1, prefix, n).map_err(ctx)?;
    let per = if categorical {
        candle_nn::ops::log_softmax(&answers, D::Minus1)
            .and_then(|l| l.gather(&batch.targets.unsqueeze(2)?, 2))
            .and_then(|l| l.squeeze(2))
            .and_then(|l| l.neg())
            .map_err(ctx)?
    } else {
        answers
            .narrow(2, 0, 1)
            .and_then(|a| a.squeeze(2))
            .and_then(|a| a.sub(&batch.targets))
            .and_then(|a| a.sqr())
            .map_err(ctx)?
    };
    let count = (batch.live * n).max(1) as f64;
    per.mul(&batch.weights)
        .and_then(|l| l.sum_all())
        .and_then(|l| l / count)
        .map_err(ctx)
}

/// `total + w · term`, in the graph.
fn add_weighted(total: Tensor, term: &Tensor, w: f64) -> Result<Tensor, TrainError> {
    (term * w)
        .and_then(|t| total + t)
        .map_err(|e| TrainError::candle("adding the losses", e))
}

/// A loss term's values summed over the lengths of a step that had it.
#[derive(Clone, Copy, Default)]
struct Term {
    sum: f32,
    count: usize,
}

impl Term {
    fn of(x: Option<f32>) -> Self {
        x.map_or(Term::default(), |x| Term { sum: x, count: 1 })
    }

    fn plus(self, other: Term) -> Term {
        Term {
            sum: self.sum + other.sum,
            count: self.count + other.count,
        }
    }

    fn mean(self) -> Option<f32> {
        (self.count > 0).then(|| self.sum / self.count as f32)
    }
}

/// The terms of one length group, or their sum over a step's groups.
struct GroupLoss {
    total: Tensor,
    behaviour: f32,
    interchange: Term,
    strict: Term,
}

impl GroupLoss {
    fn plus(self, other: GroupLoss) -> Result<GroupLoss, TrainError> {
        Ok(GroupLoss {
            total: add_weighted(self.total, &other.total, 1.0)?,
            behaviour: self.behaviour + other.behaviour,
            interchange: self.interchange.plus(other.interchange),
            strict: self.strict.plus(other.strict),
        })
    }

    /// The step's loss: every term the mean over its `lengths` groups.
    fn mean(self, lengths: usize) -> Result<StepLoss, TrainError> {
        let total = (self.total / lengths as f64)
            .map_err(|e| TrainError::candle("averaging the losses", e))?;
        Ok(StepLoss {
            total,
            behaviour: self.behaviour / lengths as f32,
            interchange: self.interchange.mean(),
            strict: self.strict.mean(),
        })
    }
}

impl Objective<'_> {
    fn loss(&self, logits: &Tensor, batch: &Batch) -> Result<Tensor, TrainError> {
        loss(logits, batch, self.data.prefix, self.data.categorical())
    }

    /// The three terms on fresh batches of `lengths` input lengths drawn from `rng` (with
    /// replacement, √size-weighted), `batch / lengths` inputs each; every term is the mean of
    /// its per-length means. Several lengths per step keep one length's easy batch from driving
    /// a whole AdamW step: with one length per step, a task whose lengths differ in difficulty
    /// (sort) swings between them and its accuracy on the domain oscillates.
    pub fn step(
        &self,
        model: &Transformer,
        lengths: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<StepLoss, TrainError> {
        let lengths = lengths.max(1);
        let rows = (self.batch / lengths).max(1);
        let g = self.data.draw_group(rng);
        let mut sum = self.group_terms(model, g, rows, rng)?;
        for _ in 1..lengths {
            let g = self.data.draw_group(rng);
            sum = sum.plus(self.group_terms(model, g, rows, rng)?)?;
        }
        sum.mean(lengths)
    }

    /// The three terms on one base and one source batch of `rows` inputs of length group `g`.
    fn group_terms(
        &self,
        model: &Transformer,
        g: usize,
        rows: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<GroupLoss, TrainError> {
        let data = &self.data;
        let device = model.device();
        let scalar = |t: &Tensor| {
            t.to_scalar::<f32>()
                .map_err(|e| TrainError::candle("reading the loss", e))
        };
        // One base batch and one source batch serve every term: the source run is shared, so a
        // step costs 2 + (variables + 1) forward passes rather than twice that.
        let base = data.draw(g, rows, rng);
        let source = data.draw(g, rows, rng);
        let own = |rows: &[usize]| -> Vec<Option<Vec<Target>>> {
            rows.iter()
                .map(|&r| Some(data.examples[r].targets.clone()))
                .collect()
        };
        let batch = data.batch(&base, own(&base), device)?;
        let logits = model.forward(&batch.tokens, &RunOptions::default())?.logits;
        let behaviour = self.loss(&logits, &batch)?;
        let mut total = (&behaviour * self.weights.behaviour)
            .map_err(|e| TrainError::candle("weighting the loss", e))?;
        let all_sites: Vec<Site> = self
            .corr
            .variables
            .iter()
            .flat_map(|v| v.sites.iter().cloned())
            .chain(self.unaligned.iter().cloned())
            .collect();
        let donor = source_cache(model, &data.tokens(&source)?, &all_sites)?;

        // Every variable every step: one variable per step (InterpBench's choice) leaves each
        // variable's term to a fraction of the steps, and the terms pull against each other.
        let mut interchange_sum = 0f32;
        let mut interchange_terms = 0usize;
        let per_variable = self.weights.interchange / self.corr.variables.len() as f64;
        for variable in &self.corr.variables {
            let targets = base
                .iter()
                .zip(&source)
                .map(|(&b, &s)| data.counterfactual(self.program, variable.node, b, s))
                .collect();
            let batch = data.batch(&base, targets, device)?;
            if batch.live == 0 {
                continue;
            }
            let ivs = replacements(&donor, &variable.sites)?;
            let logits = model
                .forward(&batch.tokens, &RunOptions::intervene(&ivs))?
                .logits;
            let l = self.loss(&logits, &batch)?;
            total = add_weighted(total, &l, per_variable)?;
            interchange_sum += scalar(&l)?;
            interchange_terms += 1;
        }
        let interchange =
            (interchange_terms > 0).then(|| interchange_sum / interchange_terms as f32);

        let strict = if self.unaligned.is_empty() {
            None
        } else {
            let batch = data.batch(&base, own(&base), device)?;
            let ivs = replacements(&donor, &self.unaligned)?;
            let logits = model
                .forward(&batch.tokens, &RunOptions::intervene(&ivs))?
                .logits;
            let l = self.loss(&logits, &batch)?;
            total = add_weighted(total, &l, self.weights.strict)?;
            Some(scalar(&l)?)
        };
        Ok(GroupLoss {
            total,
            behaviour: scalar(&behaviour)?,
            interchange: Term::of(interchange),
            strict: Term::of(strict),
        })
    }

    /// Whether each row's whole answer in `logits` matches its targets.
    fn rows_correct(
        &self,
        logits: &Tensor,
        targets: &[Option<Vec<Target>>],
    ) -> Result<Vec<bool>, TrainError> {
        let l: Vec<Vec<Vec<f32>>> = logits
            .to_vec3()
            .map_err(|e| TrainError::candle("reading the logits", e))?;
        let prefix = self.data.prefix;
        Ok(l.iter()
            .zip(targets)
            .map(|(row, t)| {
                let Some(t) = t else { return false };
                row[prefix..].iter().zip(t).all(|(pos, want)| match want {
                    Target::Class(c) => first_max(pos) == Some(*c as usize),
                    Target::Number(x) => {
                        pos.first().is_some_and(|v| (v - x).abs() <= self.tolerance)
                    }
                })
            })
            .collect())
    }

    /// Accuracy on `eval.rows` and IIA on `eval.pairs`, without gradient.
    pub fn evaluate(&self, model: &Transformer, eval: &EvalSet) -> Result<Evaluation, TrainError> {
        let device = model.device();
        let mut correct = 0usize;
        let mut total = 0usize;
        for rows in &eval.rows {
            let targets: Vec<_> = rows
                .iter()
                .map(|&r| Some(self.data.examples[r].targets.clone()))
                .collect();
            let tokens = self.data.tokens(rows)?;
            let logits = model.forward(&tokens, &RunOptions::default())?.logits;
            let ok = self.rows_correct(&logits, &targets)?;
            correct += ok.iter().filter(|b| **b).count();
            total += ok.len();
        }
        let mut per_variable = Vec::new();
        let (mut iia_correct, mut iia_total) = (0usize, 0usize);
        for (vi, variable) in self.corr.variables.iter().enumerate() {
            let (mut c, mut t) = (0usize, 0usize);
            for chunk in eval.pairs.iter().filter(|p| p.variable == vi) {
                let batch = self
                    .data
                    .batch(&chunk.base, chunk.targets.clone(), device)?;
                let ivs = patches(model, &self.data.tokens(&chunk.source)?, &variable.sites)?;
                let logits = model
                    .forward(&batch.tokens, &RunOptions::intervene(&ivs))?
                    .logits;
                let ok = self.rows_correct(&logits, &chunk.targets)?;
                c += ok.iter().filter(|b| **b).count();
                t += chunk.targets.iter().filter(|x| x.is_some()).count();
            }
            per_variable.push((variable.variable.clone(), rate(c, t)));
            iia_correct += c;
            iia_total += t;
        }
        Ok(Evaluation {
            accuracy: rate(correct, total),
            iia: rate(iia_correct, iia_total),
            per_variable,
        })
    }
}

fn rate(c: usize, t: usize) -> f64 {
    if t == 0 { 1.0 } else { c as f64 / t as f64 }
}

/// The first index of the largest value (the runtime's decoding rule).
fn first_max(xs: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &x) in xs.iter().enumerate() {
        if best.is_none_or(|(_, b)| x > b) {
            best = Some((i, x));
        }
    }
    best.map(|(i, _)| i)
}

/// Accuracy and IIA measured during training.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub accuracy: f64,
    pub iia: f64,
    pub per_variable: Vec<(String, f64)>,
}

/// Interchange pairs of one variable and one length.
pub(crate) struct PairChunk {
    pub variable: usize,
    pub base: Vec<usize>,
    pub source: Vec<usize>,
    pub targets: Vec<Option<Vec<Target>>>,
}

/// What [`Objective::evaluate`] measures on: fixed for the whole run.
pub(crate) struct EvalSet {
    /// Example indices, one chunk per forward pass (equal lengths).
    pub rows: Vec<Vec<usize>>,
    pub pairs: Vec<PairChunk>,
}

/// Rows per evaluation pass.
const EVAL_CHUNK: usize = 1024;

impl EvalSet {
    /// Up to `max_rows` inputs (all of them when the domain is that small; the domain sample is
    /// already in random order) and `pairs` interchange pairs per variable, drawn from `rng`.
    pub fn new(
        objective: &Objective<'_>,
        max_rows: usize,
        pairs: usize,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let data = &objective.data;
        let mut rows = Vec::new();
        for group in &data.groups {
            let kept: Vec<usize> = group.iter().copied().filter(|&i| i < max_rows).collect();
            for chunk in kept.chunks(EVAL_CHUNK) {
                rows.push(chunk.to_vec());
            }
        }
        let mut out = Vec::new();
        for (vi, variable) in objective.corr.variables.iter().enumerate() {
            let mut by_group: Vec<(Vec<usize>, Vec<usize>)> =
                vec![(vec![], vec![]); data.groups.len()];
            for _ in 0..pairs {
                let g = data.draw_group(rng);
                let b = data.draw(g, 1, rng)[0];
                let s = data.draw(g, 1, rng)[0];
                by_group[g].0.push(b);
                by_group[g].1.push(s);
            }
            for (base, source) in by_group {
                if base.is_empty() {
                    continue;
                }
                let targets = base
                    .iter()
                    .zip(&source)
                    .map(|(&b, &s)| data.counterfactual(objective.program, variable.node, b, s))
                    .collect();
                out.push(PairChunk {
                    variable: vi,
                    base,
                    source,
                    targets,
                });
            }
        }
        EvalSet { rows, pairs: out }
    }
}
