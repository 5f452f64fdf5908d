//! Trained implementations: small TransformerLens models trained from a seeded random init to
//! realise an interpretation on a circuit correspondence, by strict interchange-intervention
//! training (see [`objective`]) with candle's autograd and candle-nn's AdamW.
//!
//! The stage sits after `intervene` (it patches sites as interventions do) and before the
//! estimator, which samples trained implementations. A run is deterministic for a seed and a
//! thread count: initial weights, architecture draw, batches and evaluation pairs each come from
//! their own stream of the seed.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use congruity::train::{Correspondence, TrainOptions, train};
//! let spec = congruity::lang::load("specs/tracr/reverse.interp")?;
//! let program = &spec.programs["tracr_reverse"];
//! let (compiled, _) = congruity::compile::compile_checked(program, &Default::default(), 0)?;
//! let corr = Correspondence::compiled_layout(program, &compiled)?;
//! let trained = train(program, &compiled, &corr, &TrainOptions::default(), &Default::default())?;
//! println!("accuracy {:.3}, IIA {:.3}", trained.report.accuracy, trained.report.iia);
//! # Ok(()) }
//! ```

pub mod architecture;
pub mod correspondence;
mod data;
pub mod objective;

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{Device, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use thiserror::Error;

pub use architecture::Architecture;
pub use correspondence::{AlignedVariable, Correspondence};
pub use objective::{Evaluation, LossWeights};

use crate::compile::Compiled;
use crate::compile::check::domain;
use crate::lang::ir::Program;
use crate::model::{ModelError, Transformer};
use crate::progress::Progress;
use data::TaskData;
use objective::{EvalSet, Objective};

#[derive(Debug, Error, miette::Diagnostic)]
pub enum TrainError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Model(#[from] ModelError),

    #[error("{context}: {source}")]
    #[diagnostic(code(congruity::train::compute))]
    Compute {
        context: String,
        source: candle_core::Error,
    },

    #[error("`{program}` cannot be evaluated on \"{input}\": {reason}")]
    #[diagnostic(code(congruity::train::evaluation))]
    Evaluation {
        program: String,
        input: String,
        reason: String,
    },

    #[error("circuit `{circuit}`: {reason}")]
    #[diagnostic(code(congruity::train::circuit))]
    Circuit { circuit: String, reason: String },

    #[error("{0}")]
    #[diagnostic(code(congruity::train::setup))]
    Setup(String),
}

impl TrainError {
    pub(crate) fn candle(context: &str, source: candle_core::Error) -> Self {
        TrainError::Compute {
            context: context.to_owned(),
            source,
        }
    }
}

/// The knobs of a training run; the defaults are `congruity train`'s.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainOptions {
    pub seed: u64,
    /// The most optimiser steps; training stops earlier once both thresholds hold.
    pub steps: usize,
    /// Inputs per loss term per step, over all its lengths.
    pub batch: usize,
    /// Input lengths per step, each with `batch / lengths_per_step` inputs.
    pub lengths_per_step: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// The global gradient norm is scaled down to this before each step, when set: one batch's
    /// outsized gradient (a length the model had not yet handled) otherwise undoes in a step
    /// what many steps built.
    pub clip_norm: Option<f64>,
    pub loss_weights: LossWeights,
    /// Steps between evaluations (and the convergence test).
    pub eval_every: usize,
    /// Accuracy on the domain a model must reach to be accepted.
    pub min_accuracy: f64,
    /// IIA on the correspondence a model must reach to be accepted.
    pub min_iia: f64,
    /// Interchange pairs per variable in each evaluation.
    pub eval_pairs: usize,
    /// Draw the architecture from the seed ([`Architecture::draw`]) instead of the default.
    pub random_architecture: bool,
    /// Draw where each variable is computed in that architecture
    /// ([`Correspondence::draw`]) instead of keeping the given sites.
    pub random_correspondence: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seed: 0,
            steps: 6000,
            batch: 256,
            lengths_per_step: 4,
            learning_rate: 2e-3,
            weight_decay: 0.0,
            clip_norm: Some(1.0),
            loss_weights: LossWeights::default(),
            eval_every: 100,
            min_accuracy: 0.99,
            min_iia: 0.95,
            eval_pairs: 256,
            random_architecture: false,
            random_correspondence: false,
        }
    }
}

/// Streams of the seed.
const STREAM_INIT: u64 = 1;
const STREAM_BATCHES: u64 = 2;
const STREAM_EVAL: u64 = 3;
const STREAM_ARCHITECTURE: u64 = 4;
const STREAM_SAMPLES: u64 = 5;
const STREAM_DATA: u64 = 6;
const STREAM_CORRESPONDENCE: u64 = 7;

/// The architecture `opts` asks for: drawn from the seed, or the default for `corr`.
fn architecture_for(
    compiled: &Compiled,
    corr: &Correspondence,
    opts: &TrainOptions,
) -> Architecture {
    if opts.random_architecture {
        Architecture::draw(compiled, corr, &mut stream(opts.seed, STREAM_ARCHITECTURE))
    } else {
        Architecture::default_for(compiled, corr)
    }
}

/// The `stream`-th random stream of `seed`.
fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// One evaluation during training.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalPoint {
    pub step: usize,
    /// The last step's losses.
    pub loss: StepLosses,
    pub accuracy: f64,
    pub iia: f64,
}

/// How a run went.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainReport {
    /// Optimiser steps taken.
    pub steps: usize,
    /// Whether both thresholds held at the last evaluation (training itself stops only once
    /// both are halfway from their threshold to 1).
    pub converged: bool,
    /// At the last evaluation (on the training code's own evaluation set).
    pub accuracy: f64,
    pub iia: f64,
    pub per_variable: Vec<(String, f64)>,
    pub history: Vec<EvalPoint>,
    /// Wall-clock seconds (not written to the model: the same run gives the same bytes).
    #[serde(skip)]
    pub seconds: f64,
}

/// A trained model with what it was trained to be.
pub struct Trained {
    pub model: Transformer,
    pub architecture: Architecture,
    pub correspondence: Correspondence,
    pub report: TrainReport,
}

/// Warm-up steps of the learning rate.
const WARMUP: usize = 100;

/// The inputs of the evaluation's accuracy (the whole domain when it is this small).
const EVAL_ROWS: usize = 10_000;

/// A training run in progress: the model's variables, the optimiser, the data and the batch
/// stream. [`train`] drives one to the end; a bench or a caller with its own schedule may call
/// [`step`](Self::step) and [`evaluate`](Self::evaluate) directly.
pub struct Session<'a> {
    objective: Objective<'a>,
    eval: EvalSet,
    init: Transformer,
    params: Params,
    optimiser: AdamW,
    rng: ChaCha8Rng,
    architecture: Architecture,
    schedule: Schedule,
    lengths_per_step: usize,
    clip_norm: Option<f64>,
    steps: usize,
}

/// The learning rate over a run: a linear warm-up, then a cosine decay to a tenth of the peak
/// at the last step allowed (sharp attention comparisons and exact lookups need the small steps
/// at the end; a constant rate leaves accuracy hovering just below 0.99).
#[derive(Clone, Copy, Debug)]
struct Schedule {
    peak: f64,
    warmup: usize,
    steps: usize,
}

impl Schedule {
    fn rate(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        let span = self.steps.saturating_sub(self.warmup).max(1) as f64;
        let t = ((step - self.warmup) as f64 / span).min(1.0);
        let floor = 0.1 * self.peak;
        floor + (self.peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// One step's loss terms (a term is absent when the step had none).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct StepLosses {
    pub total: f32,
    pub behaviour: f32,
    pub interchange: Option<f32>,
    pub strict: Option<f32>,
}

impl<'a> Session<'a> {
    /// Draws the architecture (or takes the default), initialises the weights and the
    /// optimiser, and encodes the task's domain.
    pub fn new(
        program: &'a Program,
        compiled: &Compiled,
        corr: &'a Correspondence,
        opts: &TrainOptions,
    ) -> Result<Self, TrainError> {
        Self::with_architecture(
            program,
            compiled,
            corr,
            architecture_for(compiled, corr, opts),
            opts,
        )
    }

    /// [`new`](Self::new) with the architecture given.
    pub fn with_architecture(
        program: &'a Program,
        compiled: &Compiled,
        corr: &'a Correspondence,
        architecture: Architecture,
        opts: &TrainOptions,
    ) -> Result<Self, TrainError> {
        if opts.batch == 0 || opts.eval_every == 0 || opts.lengths_per_step == 0 {
            return Err(TrainError::Setup(
                "the batch size, the lengths per step and the evaluation interval must be at least 1".into(),
            ));
        }
        if opts.lengths_per_step > opts.batch {
            return Err(TrainError::Setup(format!(
                "{} lengths per step leave no input for some of them in a batch of {}",
                opts.lengths_per_step, opts.batch
            )));
        }
        let init = architecture.init(derived_seed(opts.seed, STREAM_INIT), &Device::Cpu)?;
        for site in corr.variables.iter().flat_map(|v| &v.sites) {
            init.check_site(site)?;
        }
        // A domain too large to enumerate is sampled from its own stream, so the inputs trained
        // on are not the seeded sample `accuracy` is measured on (`domain(task, seed)`).
        let dom = domain(&program.task, derived_seed(opts.seed, STREAM_DATA))
            .map_err(|e| TrainError::Setup(e.to_string()))?;
        let objective = Objective {
            program,
            data: TaskData::new(program, compiled, dom.inputs)?,
            corr,
            unaligned: corr.unaligned_nodes(init.config()),
            batch: opts.batch,
            weights: opts.loss_weights,
            tolerance: numeric_tolerance(compiled),
        };
        let eval = EvalSet::new(
            &objective,
            EVAL_ROWS,
            opts.eval_pairs,
            &mut stream(opts.seed, STREAM_EVAL),
        );
        let params = Params::new(&init)?;
        let optimiser = AdamW::new(
            params.vars.clone(),
            ParamsAdamW {
                lr: opts.learning_rate,
                weight_decay: opts.weight_decay,
                ..ParamsAdamW::default()
            },
        )
        .map_err(|e| TrainError::candle("setting up AdamW", e))?;
        Ok(Session {
            objective,
            eval,
            init,
            params,
            optimiser,
            rng: stream(opts.seed, STREAM_BATCHES),
            architecture,
            schedule: Schedule {
                peak: opts.learning_rate,
                warmup: WARMUP.min(opts.steps / 10),
                steps: opts.steps,
            },
            lengths_per_step: opts.lengths_per_step,
            clip_norm: opts.clip_norm,
            steps: 0,
        })
    }

    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// One optimiser step on fresh batches.
    pub fn step(&mut self) -> Result<StepLosses, TrainError> {
        self.optimiser
            .set_learning_rate(self.schedule.rate(self.steps));
        let model = self.params.model(&self.init, Mode::Train)?;
        let loss = self
            .objective
            .step(&model, self.lengths_per_step, &mut self.rng)?;
        let mut grads = loss
            .total
            .backward()
            .map_err(|e| TrainError::candle("computing the gradients", e))?;
        if let Some(max) = self.clip_norm {
            clip(&mut grads, &self.params.vars, max)?;
        }
        self.optimiser
            .step(&grads)
            .map_err(|e| TrainError::candle("taking an optimiser step", e))?;
        self.steps += 1;
        Ok(StepLosses {
            total: loss
                .total
                .to_scalar::<f32>()
                .map_err(|e| TrainError::candle("reading the loss", e))?,
            behaviour: loss.behaviour,
            interchange: loss.interchange,
            strict: loss.strict,
        })
    }

    /// Accuracy and IIA of the current weights on the run's evaluation set.
    pub fn evaluate(&self) -> Result<Evaluation, TrainError> {
        let frozen = self.params.model(&self.init, Mode::Frozen)?;
        self.objective.evaluate(&frozen, &self.eval)
    }

    /// The current weights as a model of their own.
    pub fn model(&self) -> Result<Transformer, TrainError> {
        self.params.model(&self.init, Mode::Copy)
    }
}

/// Trains an implementation of `program` (compiled as `compiled`, whose encodings it shares) on
/// `corr`. Stops after `opts.steps` steps or at the first evaluation where accuracy and IIA
/// are halfway from their thresholds to 1; `report.converged` says whether the thresholds hold.
pub fn train(
    program: &Program,
    compiled: &Compiled,
    corr: &Correspondence,
    opts: &TrainOptions,
    progress: &Progress,
) -> Result<Trained, TrainError> {
    let started = Instant::now();
    let architecture = architecture_for(compiled, corr, opts);
    let drawn;
    let corr = if opts.random_correspondence {
        drawn = corr.draw(&architecture, &mut stream(opts.seed, STREAM_CORRESPONDENCE));
        &drawn
    } else {
        corr
    };
    let mut session = Session::with_architecture(program, compiled, corr, architecture, opts)?;
    let bar = progress.bar(opts.steps as u64, "steps");
    let mut history = Vec::new();
    let mut last = None;
    while session.steps() < opts.steps {
        let loss = session.step()?;
        let step = session.steps();
        bar.inc(1);
        if step % opts.eval_every == 0 || step == opts.steps {
            let ev = session.evaluate()?;
            let term = |x: Option<f32>| x.map_or("-".to_owned(), |x| format!("{x:.3}"));
            bar.set_message(format!(
                "loss {:.3}/{}/{} acc {:.3} iia {:.3}",
                loss.behaviour,
                term(loss.interchange),
                term(loss.strict),
                ev.accuracy,
                ev.iia
            ));
            history.push(EvalPoint {
                step,
                loss,
                accuracy: ev.accuracy,
                iia: ev.iia,
            });
            // Training stops halfway between the thresholds and 1, so that the acceptance
            // measurement (other interchange pairs) does not land just below a threshold.
            let done = ev.accuracy >= midway(opts.min_accuracy) && ev.iia >= midway(opts.min_iia);
            last = Some(ev);
            if done {
                break;
            }
        }
    }
    bar.finish_and_clear();
    let ev = last.unwrap_or(Evaluation {
        accuracy: 0.0,
        iia: 0.0,
        per_variable: Vec::new(),
    });
    Ok(Trained {
        model: session.model()?,
        architecture: session.architecture(),
        correspondence: corr.clone(),
        report: TrainReport {
            steps: session.steps(),
            converged: ev.accuracy >= opts.min_accuracy && ev.iia >= opts.min_iia,
            accuracy: ev.accuracy,
            iia: ev.iia,
            per_variable: ev.per_variable,
            history,
            seconds: started.elapsed().as_secs_f64(),
        },
    })
}

/// Scales the gradients of `vars` down so that their global L2 norm is at most `max`.
fn clip(
    grads: &mut candle_core::backprop::GradStore,
    vars: &[Var],
    max: f64,
) -> Result<(), TrainError> {
    let ctx = |e| TrainError::candle("clipping the gradients", e);
    let mut squares = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            let s = g.sqr().and_then(|s| s.sum_all()).map_err(ctx)?;
            squares += f64::from(s.to_scalar::<f32>().map_err(ctx)?);
        }
    }
    let norm = squares.sqrt();
    if norm <= max || !norm.is_finite() {
        return Ok(());
    }
    let scale = max / norm;
    for v in vars {
        if let Some(g) = grads.remove(v.as_tensor()) {
            grads.insert(v.as_tensor(), (g * scale).map_err(ctx)?);
        }
    }
    Ok(())
}

/// The training seed of attempt `attempt` at item `index` of a pool sampled with `base`: each
/// item (and each retry) its own stream, whatever the pool size.
pub fn sample_seed(base: u64, index: u64, attempt: u64) -> u64 {
    use rand::RngCore;
    let mut rng = stream(base, STREAM_SAMPLES);
    rng.set_word_pos(u128::from(index) * 64 + u128::from(attempt) * 2);
    rng.next_u64()
}

fn midway(threshold: f64) -> f64 {
    threshold + (1.0 - threshold) / 2.0
}

/// A seed for a non-`ChaCha8Rng` consumer of stream `k`.
fn derived_seed(seed: u64, k: u64) -> u64 {
    use rand::RngCore;
    stream(seed, k).next_u64()
}

/// Half the smallest gap between the exact values of a numerical output (a value nearer than
/// that decodes to the target), or 0.01 when the values are not listed.
fn numeric_tolerance(compiled: &Compiled) -> f32 {
    match &compiled.output {
        crate::artifact::OutputSpec::Numerical { values, .. } if values.len() > 1 => {
            let mut v = values.clone();
            v.sort_by(f64::total_cmp);
            let gap = v
                .windows(2)
                .map(|w| w[1] - w[0])
                .fold(f64::INFINITY, f64::min);
            (gap / 2.0) as f32
        }
        _ => 0.01,
    }
}

/// The model's parameters as optimiser variables, by TransformerLens name.
struct Params {
    vars: Vec<Var>,
    index: HashMap<String, usize>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The variables themselves: the forward pass records the graph.
    Train,
    /// Detached views: no graph, the fast attention core.
    Frozen,
    /// Copies, independent of later steps.
    Copy,
}

impl Params {
    fn new(model: &Transformer) -> Result<Self, TrainError> {
        let mut vars = Vec::new();
        let mut index = HashMap::new();
        for (name, t) in model.weights().named() {
            index.insert(name, vars.len());
            vars.push(Var::from_tensor(t).map_err(|e| TrainError::candle("making a variable", e))?);
        }
        Ok(Params { vars, index })
    }

    fn model(&self, like: &Transformer, mode: Mode) -> Result<Transformer, TrainError> {
        let weights = like.weights().map_params(|name, _| {
            let var = &self.vars[self.index[name]];
            match mode {
                Mode::Train => Ok(var.as_tensor().clone()),
                Mode::Frozen => Ok(var.as_tensor().detach()),
                Mode::Copy => var.as_tensor().detach().copy(),
            }
        })?;
        Ok(Transformer::new(like.config().clone(), weights)?)
    }
}

#[cfg(test)]
mod tests;
