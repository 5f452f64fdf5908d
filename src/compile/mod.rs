//! Interpretation → transformer weights, and the sampler of function-preserving implementations.
//!
//! Stages, each in its own module and testable alone:
//!
//! 1. [`values`] — value sets from the checked IR → layout facts per node;
//! 2. [`lower`] — per-operation blocks ([`blocks`]): attention heads for aggregates and selector
//!    widths ([`selector`] turns selector expressions into one score), exact lookup MLPs for
//!    maps ([`mlp`]), embedding writes for input-only nodes; map chains fused;
//! 3. [`layout`] — the typed residual basis and its labels;
//! 4. [`schedule`] — layers from the dependency graph (ASAP, with ALAP slack);
//! 5. [`assemble`] — dense TransformerLens matrices ([`weights`]);
//!
//! then [`write`] (model directory in the runtime's format), [`check`] (domain check of
//! categorical aggregates against the reference evaluator), [`sample`] (function-preserving
//! families) and [`pipeline`] (stage models chained).
//!
//! `compile` imports only `lang`; running a compiled model is the runtime's job (tests and the
//! CLI use `model`), though [`weights::Weights::forward`] gives a small reference forward pass.

pub mod assemble;
pub mod blocks;
pub mod check;
pub mod error;
pub mod layout;
pub mod lower;
pub mod mlp;
pub mod pipeline;
pub mod report;
pub mod sample;
pub mod scalar;
pub mod schedule;
pub mod selector;
pub mod values;
pub mod weights;
pub mod write;

use num_rational::Rational64;
use num_traits::Float;
use serde::Serialize;

pub use assemble::OpPlacement;
pub use error::CompileError;
pub use layout::Layout;
pub use lower::{LowerOptions, Plan};
pub use schedule::Schedule;
pub use weights::Weights;

use crate::lang::ir::{Program, Value};
use scalar::{as_number, to_f64, token_text};
use values::SeqInfo;

/// Knobs of a compilation; the defaults are what `congruity compile` uses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompileOptions {
    pub lower: LowerOptions,
    /// Softmax coldness (the score of a selected key); `None` picks one from the context length
    /// such that attention leaks less than 1e-7 even at half the coldness.
    pub coldness: Option<f64>,
}

/// The default coldness for a context of `n_ctx` positions: with the BOS key half a score unit
/// below a selected key, leakage is below `n_ctx · e^{-C/4} = 1e-7` at coldness `C/2`, so the
/// sampler's sharpness family may halve it.
pub fn default_coldness(n_ctx: usize) -> f64 {
    4.0 * ((n_ctx as f64).ln() + 1e7f64.ln())
}

/// How the output is read off the logits.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputSpec {
    /// Argmax over output rows; row `i` means `decoding[i]` (`none` included where possible).
    Categorical { decoding: Vec<Value> },
    /// The single output row, snapped to the nearest of `values`.
    Numerical { values: Vec<Rational64> },
}

/// The input and output encodings of a compiled model.
#[derive(Clone, Debug, PartialEq)]
pub struct IoSpec {
    pub bos: String,
    /// Token text per id; id 0 is BOS, then the vocabulary in order.
    pub tokens: Vec<String>,
    pub vocab: Vec<Value>,
    pub output: OutputSpec,
}

impl IoSpec {
    /// Token ids for an input (BOS prepended); `None` if a value is not in the vocabulary.
    pub fn encode(&self, input: &[Value]) -> Option<Vec<usize>> {
        std::iter::once(Some(0))
            .chain(
                input
                    .iter()
                    .map(|v| self.vocab.binary_search(v).ok().map(|i| i + 1)),
            )
            .collect()
    }

    /// The value of one position's logits.
    pub fn decode<T: Float>(&self, logits: &[T]) -> Value {
        match &self.output {
            OutputSpec::Categorical { decoding } => {
                let mut best = 0;
                for (i, x) in logits.iter().enumerate() {
                    if *x > logits[best] {
                        best = i;
                    }
                }
                decoding.get(best).cloned().unwrap_or(Value::None)
            }
            OutputSpec::Numerical { values } => {
                let x = logits.first().and_then(|x| x.to_f64()).unwrap_or(f64::NAN);
                values
                    .iter()
                    .min_by(|a, b| (to_f64(**a) - x).abs().total_cmp(&(to_f64(**b) - x).abs()))
                    .map(|r| Value::Num(*r))
                    .unwrap_or(Value::None)
            }
        }
    }
}

/// Where a model came from (written into the sidecar).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Provenance {
    pub spec: Option<String>,
    pub spec_sha256: Option<String>,
    pub program: String,
    pub seed: Option<u64>,
    pub family: Vec<String>,
    /// For sampled implementations: the sampler's seed and this item's index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<SampleOrigin>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SampleOrigin {
    pub base_seed: u64,
    pub index: u64,
}

/// The size figures of a model (what the tracr comparison table reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shape {
    pub n_layers: usize,
    pub d_model: usize,
    /// Hidden units actually used by the widest MLP layer (the file has at least 1).
    pub d_mlp: usize,
    pub n_heads: usize,
    pub d_head: usize,
}

/// A compiled interpretation: its plan, where everything went, and the dense weights.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub plan: Plan,
    pub layout: Layout,
    pub schedule: Schedule,
    pub coldness: f64,
    pub weights: Weights,
    pub placement: Vec<OpPlacement>,
    pub io: IoSpec,
    pub residual_labels: Vec<String>,
    pub provenance: Provenance,
}

impl Shape {
    /// The figures of `w`, counting only the MLP units that write something.
    pub fn of(w: &Weights) -> Shape {
        Shape {
            n_layers: w.n_layers(),
            d_model: w.d_model,
            d_mlp: w
                .layers
                .iter()
                .map(|l| l.used_units().len())
                .max()
                .unwrap_or(0),
            n_heads: w.n_heads,
            d_head: w.d_head,
        }
    }
}

impl Compiled {
    pub fn shape(&self) -> Shape {
        Shape::of(&self.weights)
    }

    /// Runs the reference forward pass in precision `T` and decodes positions `1..=n`.
    pub fn run<T: Float>(&self, input: &[Value]) -> Option<Vec<Value>> {
        let ids = self.io.encode(input)?;
        let trace = self.weights.forward::<T>(&ids, false);
        Some(
            trace.logits[1..]
                .iter()
                .map(|l| self.io.decode(l))
                .collect(),
        )
    }
}

fn bos_name(vocab: &[Value]) -> String {
    let mut name = "BOS".to_string();
    while vocab.iter().any(|v| token_text(v) == name) {
        name = format!("<{name}>");
    }
    name
}

/// The input/output encodings of a compiled program.
pub fn io_spec(plan: &Plan) -> Result<IoSpec, CompileError> {
    let bos = bos_name(&plan.vocab);
    let tokens = std::iter::once(bos.clone())
        .chain(plan.vocab.iter().map(token_text))
        .collect();
    let output = match plan.info.seq(plan.output) {
        Some(SeqInfo::Categorical { values, has_none }) => OutputSpec::Categorical {
            decoding: values
                .iter()
                .cloned()
                .chain(has_none.then_some(Value::None))
                .collect(),
        },
        Some(SeqInfo::Numerical { points }) => OutputSpec::Numerical {
            values: points.clone(),
        },
        None => {
            return Err(CompileError::internal(
                &plan.program,
                "the output is not a sequence",
            ));
        }
    };
    Ok(IoSpec {
        bos,
        tokens,
        vocab: plan.vocab.clone(),
        output,
    })
}

/// Compiles one checked interpretation (stages 1–5). The domain check of categorical aggregates
/// is separate ([`check::check_aggregates`]) because it needs the reference evaluator.
pub fn compile_program(program: &Program, opts: &CompileOptions) -> Result<Compiled, CompileError> {
    let info = values::infer(program)?;
    let plan = lower::lower(program, &info, opts.lower)?;
    let io = io_spec(&plan)?;
    let layout = Layout::build(&plan, &io.bos);
    let schedule = schedule::schedule(&plan, 0);
    let coldness = opts
        .coldness
        .unwrap_or_else(|| default_coldness(plan.max_len + 1));
    let (weights, placement) = assemble::assemble(&plan, &layout, &schedule, coldness)?;
    let residual_labels = layout.labels.clone();
    Ok(Compiled {
        plan,
        layout,
        schedule,
        coldness,
        weights,
        placement,
        io,
        residual_labels,
        provenance: Provenance {
            program: program.name.clone(),
            ..Provenance::default()
        },
    })
}

/// Checks `program` on its domain ([`check::check_aggregates`]: `seed` draws the sample when
/// the domain has more than 200,000 inputs), then compiles it.
pub fn compile_checked(
    program: &Program,
    opts: &CompileOptions,
    seed: u64,
) -> Result<(Compiled, check::CheckReport), CompileError> {
    let domain = check::domain(&program.task, seed)?;
    let report = check::check_aggregates(program, &domain)?;
    let compiled = compile_program(program, opts)?;
    Ok((compiled, report))
}

/// Whether a decoded model output equals the evaluator's value (numbers compared exactly; booleans
/// of numerical outputs as 0 / 1).
pub fn same_value(model: &Value, reference: &Value) -> bool {
    model == reference
        || matches!((as_number(model), as_number(reference)), (Some(a), Some(b)) if a == b)
}

/// [`same_value`] at every position of an output sequence (of equal length).
pub fn same_values(model: &[Value], reference: &[Value]) -> bool {
    model.len() == reference.len() && model.iter().zip(reference).all(|(m, r)| same_value(m, r))
}

#[cfg(test)]
mod tests;
