//! The experiment driver: from a spec and model directories to representations and a whole
//! comparison, on top of the statistical core ([`crate::equivalence`]).
//!
//! - [`inputs`]: the rows every representation is on (a task's domain, enumerated or drawn);
//! - [`extract`]: representations from a model run (hooks, pooling, BOS policy);
//! - [`chain`]: pipelines of stage models run in sequence, with patching across stages;
//! - [`sampled`]: implementation sources of compiled samples, pools on disk and models;
//! - [`compare`]: `congruity compare` — plan → pools → selectivity → model tests → transfer →
//!   intervention, and its report;
//! - [`plot`]: the report's heatmaps as SVG.

pub mod chain;
pub mod circuit;
pub mod compare;
pub mod extract;
pub mod inputs;
pub mod intervened;
pub mod plot;
pub mod sampled;

use std::path::PathBuf;

use crate::compile::CompileError;
use crate::equivalence::EquivalenceError;
use crate::lang::domain::{input_text, token_text};
use crate::lang::eval::EvalError;
use crate::lang::ir::Value;
use crate::model::ModelError;

/// Why a stage of a chain could not read an input or answer it.
#[derive(Debug, thiserror::Error)]
pub enum StageProblem {
    #[error("a token is outside the model's vocabulary: `{token}` is not in {{{}}}", vocab.join(", "))]
    OutsideVocabulary {
        token: String,
        /// The model's tokens, BOS left out.
        vocab: Vec<String>,
    },
    #[error(
        "the previous stage's output {} (mapped to {}) is not a token of this stage",
        token_text(output),
        token_text(mapped)
    )]
    NotAToken { output: Value, mapped: Value },
    #[error(transparent)]
    Model(ModelError),
}

/// Errors of the experiment driver: loading the spec, settings that cannot run, inputs, pools,
/// chains and representation extraction. Errors of the stages it drives (compiling, running a
/// model, the statistics) are kept whole inside.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ExperimentError {
    // --- the spec and the settings of a comparison -------------------------------------------
    #[error("cannot load {}", path.display())]
    #[diagnostic(code(congruity::compare::spec))]
    Spec {
        path: PathBuf,
        #[source]
        #[diagnostic_source]
        source: crate::lang::Report,
    },

    /// The evaluator refused an input of target `target` (it is outside some stage's domain).
    #[error("`{target}`: {reason}")]
    #[diagnostic(code(congruity::compare::reference))]
    Reference {
        target: String,
        input: Vec<Value>,
        reason: Box<EvalError>,
    },
    #[error("the number of samples per interpretation must be at least 1")]
    #[diagnostic(code(congruity::compare::settings))]
    NoSamples,
    #[error(
        "{samples} samples per interpretation are too few: the selectivity matrix draws three distinct implementations of one interpretation (a, b and c on its diagonal); use at least 3"
    )]
    #[diagnostic(code(congruity::compare::settings))]
    TooFewSamples { samples: usize },
    #[error("`{name}` is listed twice among the interpretations to compare")]
    #[diagnostic(code(congruity::compare::settings))]
    DuplicateTarget { name: String },
    #[error(
        "a pool is given for `{name}`, which is not compared (compared: {}); add it to --interpretations",
        if compared.is_empty() { "none".to_string() } else { compared.join(", ") }
    )]
    #[diagnostic(code(congruity::compare::settings))]
    GivenNotCompared { name: String, compared: Vec<String> },
    #[error("`{name}` is not a circuit of the spec (circuits: {})", known.join(", "))]
    #[diagnostic(code(congruity::compare::settings))]
    UnknownCircuit { name: String, known: Vec<String> },
    #[error(
        "circuit `{circuit}` is about `{program}`, which no compared interpretation or pipeline runs; compare `{program}` too"
    )]
    #[diagnostic(code(congruity::compare::settings))]
    CircuitNotCompared { circuit: String, program: String },
    #[error("`{name}` is not a task of the spec (tasks: {})", known.join(", "))]
    #[diagnostic(code(congruity::compare::settings))]
    UnknownTask { name: String, known: Vec<String> },
    #[error(
        "with only models to compare, say which task's domain the inputs come from (tasks: {})",
        known.join(", ")
    )]
    #[diagnostic(code(congruity::compare::settings))]
    TaskNeeded { known: Vec<String> },
    #[error("the spec has no task")]
    #[diagnostic(code(congruity::compare::settings))]
    NoTask,
    #[error("nothing to compare: no interpretation, pipeline or model was given")]
    #[diagnostic(code(congruity::compare::settings))]
    NothingToCompare,

    // --- inputs ------------------------------------------------------------------------------
    #[error("task `{task}`: the input set must hold at least one input")]
    #[diagnostic(code(congruity::equivalence::inputs))]
    NoInputs { task: String },
    #[error("task `{task}`: {reason}")]
    #[diagnostic(code(congruity::equivalence::inputs))]
    Domain {
        task: String,
        reason: Box<EvalError>,
    },
    #[error(
        "task `{task}`: after {rounds} rounds of {n} draws only {found} inputs were accepted by every implementation ({})",
        last_rejection.as_ref().map_or_else(|| "none rejected".to_string(), |e| format!("last rejection: {e}"))
    )]
    #[diagnostic(
        code(congruity::equivalence::inputs_rejected),
        help("the compared interpretations or pipelines may have (nearly) disjoint domains")
    )]
    TooFewAccepted {
        task: String,
        rounds: u64,
        n: usize,
        found: usize,
        /// Why the last rejected draw was rejected.
        last_rejection: Option<Box<ExperimentError>>,
    },
    #[error(
        "corrupted partner of input {input} ({}): {reason}",
        input_text(values)
    )]
    #[diagnostic(code(congruity::equivalence::corrupted))]
    CorruptedRestriction {
        input: usize,
        values: Vec<Value>,
        reason: Box<EvalError>,
    },
    #[error(
        "corrupted partner of input {input} ({}): no input of the same length accepted after {tries} draws ({})",
        input_text(values),
        last_rejection.as_ref().map_or_else(|| "no draw accepted".to_string(), |e| e.to_string())
    )]
    #[diagnostic(code(congruity::equivalence::corrupted))]
    NoCorruptedPartner {
        input: usize,
        values: Vec<Value>,
        tries: usize,
        last_rejection: Option<Box<ExperimentError>>,
    },

    // --- pools of implementations ------------------------------------------------------------
    #[error("`{name}` is neither an interpretation nor a pipeline of the spec (known: {known})")]
    #[diagnostic(code(congruity::equivalence::unknown_target))]
    UnknownTarget { name: String, known: String },
    #[error("compiling `{program}` failed")]
    #[diagnostic(code(congruity::equivalence::compile))]
    Compile {
        program: String,
        #[source]
        source: Box<CompileError>,
    },
    #[error("circuit `{circuit}`: {reason}")]
    #[diagnostic(code(congruity::equivalence::circuit))]
    Circuit { circuit: String, reason: String },
    /// A declared site the model lacks; the model error names the site and the model's shape.
    #[error("circuit `{circuit}` on {model}: {problem}")]
    #[diagnostic(code(congruity::equivalence::circuit_site))]
    CircuitSite {
        circuit: String,
        /// The model: a directory, or `pool[index]` for a sampled implementation.
        model: String,
        problem: Box<crate::model::ModelError>,
    },
    #[error("model directory {}: {reason}", dir.display())]
    #[diagnostic(code(congruity::equivalence::model_dir))]
    ModelDir { dir: PathBuf, reason: String },
    #[error("sampling stage `{program}` failed")]
    #[diagnostic(code(congruity::equivalence::sample))]
    Sample {
        program: String,
        #[source]
        source: Box<CompileError>,
    },
    #[error("keeping a sampled implementation in {}", dir.display())]
    #[diagnostic(code(congruity::equivalence::keep))]
    KeepSample {
        dir: PathBuf,
        #[source]
        source: Box<CompileError>,
    },
    #[error("stage `{program}`: the compiled weights do not make a runtime model")]
    #[diagnostic(code(congruity::equivalence::stage_model))]
    StageModel {
        program: String,
        #[source]
        source: Box<ModelError>,
    },
    #[error("model directory {}", dir.display())]
    #[diagnostic(code(congruity::equivalence::model_dir))]
    InModelDir {
        dir: PathBuf,
        #[source]
        source: Box<ExperimentError>,
    },
    #[error("{} has no congruity.json: without it the inputs cannot be encoded", dir.display())]
    #[diagnostic(code(congruity::equivalence::model_dir))]
    NoSidecar { dir: PathBuf },

    // --- chains of stage models --------------------------------------------------------------
    #[error("stage {stage} (`{program}`): {source}")]
    #[diagnostic(code(congruity::equivalence::stage))]
    Stage {
        stage: usize,
        program: String,
        #[source]
        source: Box<ExperimentError>,
    },
    #[error(
        "stage {stage} (`{program}`), input {input} (`{}`): {problem}",
        input_text(values)
    )]
    #[diagnostic(code(congruity::equivalence::stage_input))]
    StageInput {
        stage: usize,
        program: String,
        input: usize,
        /// What this stage read on that input.
        values: Vec<Value>,
        problem: Box<StageProblem>,
    },
    #[error(
        "stage {stage} (`{program}`) is not an implementation of its interpretation: on input {input} (`{}`) it outputs `{}`, the interpretation gives `{}`",
        input_text(values),
        input_text(got),
        input_text(want)
    )]
    #[diagnostic(code(congruity::equivalence::wrong_output))]
    WrongOutput {
        stage: usize,
        program: String,
        input: usize,
        values: Vec<Value>,
        got: Vec<Value>,
        want: Vec<Value>,
    },
    #[error("{}: {reason}", path.display())]
    #[diagnostic(
        code(congruity::equivalence::pipeline_dir),
        help(
            "a pipeline directory is what `congruity compile` / `sample` write for a pipeline: pipeline.json (format congruity-pipeline/1) and one model directory per stage"
        )
    )]
    PipelineDir { path: PathBuf, reason: String },
    #[error("a chain needs at least one stage")]
    #[diagnostic(code(congruity::equivalence::chain))]
    NoStages,
    #[error("cannot patch stage {stage} of a {stages}-stage chain")]
    #[diagnostic(code(congruity::equivalence::chain))]
    PatchStage { stage: usize, stages: usize },
    #[error("no reference outputs for stage {stage}")]
    #[diagnostic(code(congruity::equivalence::chain))]
    NoReference { stage: usize },

    // --- representations from model runs -----------------------------------------------------
    #[error(transparent)]
    #[diagnostic(transparent)]
    Model(Box<ModelError>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Equivalence(Box<EquivalenceError>),
    #[error("hook `{hook}`: {reason}")]
    #[diagnostic(code(congruity::equivalence::hook))]
    Hook { hook: String, reason: String },
    #[error("input {input}: {reason}")]
    #[diagnostic(code(congruity::equivalence::input))]
    Input { input: usize, reason: String },
    #[error(
        "patching: {sources} source rows for {inputs} inputs; each input needs its own corrupted input"
    )]
    #[diagnostic(code(congruity::equivalence::patch))]
    PatchRows { sources: usize, inputs: usize },
    #[error("patching: {hook} was not produced by the corrupted run")]
    #[diagnostic(code(congruity::equivalence::patch))]
    PatchHookMissing { hook: String },
}

// The stages' errors are boxed so an `ExperimentError` stays small (it travels through every
// `Result` of the driver).
impl From<ModelError> for ExperimentError {
    fn from(e: ModelError) -> Self {
        ExperimentError::Model(Box::new(e))
    }
}

impl From<EquivalenceError> for ExperimentError {
    fn from(e: EquivalenceError) -> Self {
        ExperimentError::Equivalence(Box::new(e))
    }
}
