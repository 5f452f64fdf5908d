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
//! then [`write`](mod@write) (model directory in the runtime's format), [`check`](mod@check) (domain check of
//! categorical aggregates against the reference evaluator), [`sample`] (function-preserving
//! families) and [`pipeline`] (stage models chained).
//!
//! `compile` imports only `lang` and the shared model artifact ([`crate::artifact`]: the sidecar
//! it writes is the one the runtime reads); running a compiled model is the runtime's job (tests
//! and the CLI use `model`), though [`weights::Weights::forward`] gives a small reference forward
//! pass.

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

use num_traits::Float;
use serde::Serialize;
use std::path::Path;

pub use assemble::OpPlacement;
pub use error::CompileError;
pub use layout::Layout;
pub use lower::{LowerOptions, Plan};
pub use schedule::Schedule;
pub use weights::Weights;

use crate::artifact::sidecar::{first_max, nearest};
use crate::artifact::{self, InputSpec, OutputSpec};
use crate::lang::ir::{Program, Value};
use scalar::{as_number, token_text};
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

impl Provenance {
    /// `program` of the spec file `file` (its path and SHA-256), compiled or trained with `seed`.
    pub fn of_spec(file: &Path, program: &str, seed: Option<u64>) -> Result<Self, CompileError> {
        use sha2::{Digest, Sha256};
        let bytes = crate::files::read_bytes(file, crate::files::MAX_SPEC_BYTES, "a spec file")
            .map_err(|e| CompileError::Read {
                path: file.to_path_buf(),
                reason: e.to_string(),
            })?;
        let digest = Sha256::digest(&bytes);
        Ok(Provenance {
            spec: Some(file.display().to_string()),
            spec_sha256: Some(digest.iter().map(|b| format!("{b:02x}")).collect()),
            program: program.to_string(),
            seed,
            family: Vec::new(),
            sample: None,
        })
    }
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
    /// How inputs become token ids (id 0 is BOS, then `plan.vocab` in order) and how the
    /// output is read off the logits: what the model directory's sidecar says.
    pub input: InputSpec,
    pub output: OutputSpec,
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

    /// Token ids for an input (BOS prepended); `None` if a value is not in the vocabulary.
    pub fn encode(&self, input: &[Value]) -> Option<Vec<usize>> {
        std::iter::once(Some(0))
            .chain(
                input
                    .iter()
                    .map(|v| self.plan.vocab.binary_search(v).ok().map(|i| i + 1)),
            )
            .collect()
    }

    /// The value of one position's logits, read as the runtime reads it (first maximal row, or
    /// the exact value nearest the single output) but as a language value.
    pub fn decode<T: Float>(&self, logits: &[T]) -> Value {
        match &self.output {
            OutputSpec::Categorical { decoding } => first_max(logits)
                .and_then(|i| decoding.get(i))
                .map_or(Value::None, artifact::value::from_json),
            OutputSpec::Numerical { values, exact } => {
                let x = logits.first().and_then(|x| x.to_f64()).unwrap_or(f64::NAN);
                nearest(values, x)
                    .and_then(|i| exact.get(i))
                    .map_or(Value::None, |e| Value::Num(e.0))
            }
        }
    }

    /// Runs the reference forward pass in precision `T` and decodes positions `1..=n`.
    pub fn run<T: Float>(&self, input: &[Value]) -> Option<Vec<Value>> {
        let ids = self.encode(input)?;
        let trace = self.weights.forward::<T>(&ids, false);
        Some(trace.logits[1..].iter().map(|l| self.decode(l)).collect())
    }
}

fn bos_name(vocab: &[Value]) -> String {
    let mut name = "BOS".to_string();
    while vocab.iter().any(|v| token_text(v) == name) {
        name = format!("<{name}>");
    }
    name
}

/// The input/output encodings of a compiled program: BOS (a name no token uses) then the
/// vocabulary; the output's values exactly (a categorical `none` row last where it can occur).
pub fn encodings(plan: &Plan) -> Result<(InputSpec, OutputSpec), CompileError> {
    let bos = bos_name(&plan.vocab);
    let tokens = std::iter::once(bos.clone())
        .chain(plan.vocab.iter().map(token_text))
        .collect();
    let output = match plan.info.seq(plan.output) {
        Some(SeqInfo::Categorical { values, has_none }) => OutputSpec::Categorical {
            decoding: values
                .iter()
                .chain(has_none.then_some(&Value::None))
                .map(artifact::value::to_json)
                .collect(),
        },
        Some(SeqInfo::Numerical { points }) => OutputSpec::numerical_exact(points.iter().copied()),
        None => {
            return Err(CompileError::internal(
                &plan.program,
                "the output is not a sequence",
            ));
        }
    };
    Ok((
        InputSpec {
            bos: Some(bos),
            tokens,
        },
        output,
    ))
}

/// Compiles one checked interpretation (stages 1–5). The domain check of categorical aggregates
/// is separate ([`check::check_aggregates`]) because it needs the reference evaluator.
pub fn compile_program(program: &Program, opts: &CompileOptions) -> Result<Compiled, CompileError> {
    let info = values::infer(program)?;
    let plan = lower::lower(program, &info, opts.lower)?;
    let (input, output) = encodings(&plan)?;
    let layout = Layout::build(&plan, input.bos.as_deref().unwrap_or_default());
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
        input,
        output,
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
