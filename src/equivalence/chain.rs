//! Running an implementation — one model, or a pipeline's chain of stage models — on the common
//! inputs, and turning the run into its representation.
//!
//! A chain runs every input through its stages in order: stage `k` reads the decoded output of
//! stage `k − 1` on *that very input*, after stage `k`'s adapter (the reference code of the paper
//! fed stages of different chains into each other; here a chain is one object and its stages only
//! ever see its own outputs). The chain's representation is its stages' representations side by
//! side, row-aligned on the common inputs.
//!
//! When the reference outputs of the interpretation are given, every stage's decoded output is
//! checked against them: a sampled implementation that does not compute its interpretation is an
//! error, not a data point.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use faer::Mat;

use super::extract::{ExtractError, Patch, RepresentationSpec, run_model};
use super::inputs::input_text;
use crate::compile::IoSpec;
use crate::compile::weights::Weights as CompiledWeights;
use crate::compile::write::config_json;
use crate::lang::domain::token_text;
use crate::lang::ir::{Adapter, Value};
use crate::model::io::{HostTensor, NamedTensors};
use crate::model::sidecar::{OutputSpec as SidecarOutput, OutputValue};
use crate::model::{ModelConfig, ModelError, Sidecar, Site, Transformer, Weights};

/// A compiled or sampled model's weights as a runtime [`Transformer`], in memory: the same
/// tensors, names and `config.json` fields that `compile::write` puts on disk (a test checks that
/// both give identical logits), without the round trip through files.
pub fn to_transformer(w: &CompiledWeights, name: &str) -> Result<Transformer, ModelError> {
    let origin = Path::new("<in-memory compiled model>");
    let config = ModelConfig::from_json(&config_json(w, name), origin)?;
    let t = |shape: Vec<usize>, data: &[f64]| HostTensor {
        shape,
        data: data.iter().map(|x| *x as f32).collect(),
    };
    let (h, dm, dh) = (w.n_heads, w.d_model, w.d_head);
    let mut named: Vec<(String, HostTensor)> = vec![
        (
            "embed.W_E".into(),
            t(vec![w.w_e.rows, w.w_e.cols], &w.w_e.data),
        ),
        (
            "pos_embed.W_pos".into(),
            t(vec![w.w_pos.rows, w.w_pos.cols], &w.w_pos.data),
        ),
    ];
    for (l, layer) in w.layers.iter().enumerate() {
        let p = |n: &str| format!("blocks.{l}.{n}");
        let stack = |f: &dyn Fn(&crate::compile::weights::Head) -> &[f64], shape: Vec<usize>| {
            let data: Vec<f64> = layer.heads.iter().flat_map(|hd| f(hd).to_vec()).collect();
            t(shape, &data)
        };
        named.push((p("attn.W_Q"), stack(&|hd| &hd.w_q.data, vec![h, dm, dh])));
        named.push((p("attn.W_K"), stack(&|hd| &hd.w_k.data, vec![h, dm, dh])));
        named.push((p("attn.W_V"), stack(&|hd| &hd.w_v.data, vec![h, dm, dh])));
        named.push((p("attn.W_O"), stack(&|hd| &hd.w_o.data, vec![h, dh, dm])));
        named.push((p("attn.b_Q"), stack(&|hd| &hd.b_q, vec![h, dh])));
        named.push((p("attn.b_K"), stack(&|hd| &hd.b_k, vec![h, dh])));
        named.push((p("attn.b_V"), stack(&|hd| &hd.b_v, vec![h, dh])));
        named.push((p("attn.b_O"), t(vec![dm], &layer.b_o)));
        named.push((
            p("mlp.W_in"),
            t(vec![layer.w_in.rows, layer.w_in.cols], &layer.w_in.data),
        ));
        named.push((p("mlp.b_in"), t(vec![w.d_mlp], &layer.b_in)));
        named.push((
            p("mlp.W_out"),
            t(vec![layer.w_out.rows, layer.w_out.cols], &layer.w_out.data),
        ));
        named.push((p("mlp.b_out"), t(vec![dm], &layer.b_out)));
    }
    named.push((
        "unembed.W_U".into(),
        t(vec![w.w_u.rows, w.w_u.cols], &w.w_u.data),
    ));
    named.push(("unembed.b_U".into(), t(vec![w.d_vocab_out], &w.b_u)));
    let named = NamedTensors::from_host(origin, named);
    let weights = Weights::from_named(&config, &named, &candle_core::Device::Cpu)?;
    Transformer::new(config, weights)
}

/// How a stage model reads values and writes answers.
#[derive(Debug, Clone)]
pub enum Codec {
    /// A compiled or sampled model: the compiler's own encodings.
    Compiled(IoSpec),
    /// A model directory: its `congruity.json`.
    Sidecar(Sidecar),
}

impl Codec {
    /// Leading positions that are not tokens of the input (BOS).
    pub fn prefix(&self) -> usize {
        match self {
            Codec::Compiled(_) => 1,
            Codec::Sidecar(s) => s.prefix_len(),
        }
    }

    pub fn encode(&self, input: &[Value]) -> Result<Vec<u32>, String> {
        match self {
            Codec::Compiled(io) => io
                .encode(input)
                .map(|ids| ids.into_iter().map(|i| i as u32).collect())
                .ok_or_else(|| {
                    format!(
                        "`{}` has a token outside the model's vocabulary {{{}}}",
                        input_text(input),
                        io.vocab
                            .iter()
                            .map(token_text)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
            Codec::Sidecar(s) => {
                let words: Vec<String> = input.iter().map(token_text).collect();
                s.encode(&words).map_err(|e| e.to_string())
            }
        }
    }

    /// The values of one input's positions, from their logits (prefix positions already dropped).
    pub fn decode(&self, logits: &[Vec<f32>]) -> Result<Vec<Value>, String> {
        match self {
            Codec::Compiled(io) => Ok(logits.iter().map(|l| io.decode(l)).collect()),
            Codec::Sidecar(s) => {
                // The runtime's decoder: argmax, or numerical outputs snapped to the sidecar's
                // exact values.
                let snapped =
                    matches!(&s.output, SidecarOutput::Numerical { values } if !values.is_empty());
                logits
                    .iter()
                    .map(|l| {
                        Ok(match s.decode_position(l).map_err(|e| e.to_string())? {
                            OutputValue::Symbol(j) => json_value(&j),
                            OutputValue::Number(x) if snapped => exact_value(x),
                            // Unsnapped, the decoder gives the f32's shortest decimal form, which
                            // converts back to that very f32.
                            OutputValue::Number(x) => float_value(f64::from(x as f32)),
                        })
                    })
                    .collect()
            }
        }
    }
}

/// A decoded sidecar value as a language value: integers and `p/q` strings as numbers, `null` as
/// `none`, booleans as booleans, other strings as symbols.
fn json_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::None,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::int(i),
            None => n.as_f64().map(float_value).unwrap_or(Value::None),
        },
        serde_json::Value::String(s) => {
            if let Some((a, b)) = s.split_once('/')
                && let (Ok(a), Ok(b)) = (a.trim().parse::<i64>(), b.trim().parse::<i64>())
                && b != 0
            {
                return Value::Num(num_rational::Rational64::new(a, b));
            }
            Value::sym(s)
        }
        other => Value::sym(&other.to_string()),
    }
}

/// A float as the nearest integer when it is within 1e-6 of one, else a rational with
/// denominator 10^6 (numerical model outputs are only compared, never computed with).
fn float_value(x: f64) -> Value {
    let r = x.round();
    if (x - r).abs() < 1e-6 && r.abs() < 9e15 {
        Value::int(r as i64)
    } else {
        Value::Num(num_rational::Rational64::new(
            (x * 1e6).round() as i64,
            1_000_000,
        ))
    }
}

/// A snapped numerical output as the exact rational it stands for. The sidecar lists the exact
/// values as floats (`compile::write` writes each rational's nearest f64), so the continued-
/// fraction convergent within 1e-9 of it is that rational: two fractions with denominators up to
/// 10^4 (far beyond any compiled value set) lie at least 1e-8 apart, so at most one is that close.
/// Other floats are read as [`float_value`] reads them.
fn exact_value(x: f64) -> Value {
    // Beyond 10^6 the float's own rounding error nears the 1e-9 the argument relies on.
    if !x.is_finite() || x.abs() > 1e6 {
        return float_value(x);
    }
    // Convergents p/q from (p₋₂/q₋₂, p₋₁/q₋₁) = (0/1, 1/0).
    let (mut p0, mut q0, mut p1, mut q1) = (0i64, 1i64, 1i64, 0i64);
    let mut rest = x;
    loop {
        let a = rest.floor();
        let next = (a as i64)
            .checked_mul(p1)
            .and_then(|p| p.checked_add(p0))
            .zip((a as i64).checked_mul(q1).and_then(|q| q.checked_add(q0)));
        let Some((p, q)) = next.filter(|(_, q)| *q <= 10_000) else {
            break;
        };
        if (p as f64 / q as f64 - x).abs() <= 1e-9 {
            return Value::Num(num_rational::Rational64::new(p, q));
        }
        let frac = rest - a;
        if frac == 0.0 {
            break;
        }
        rest = 1.0 / frac;
        (p0, q0, p1, q1) = (p1, q1, p, q);
    }
    float_value(x)
}

/// One stage of a chain, ready to run.
#[derive(Debug, Clone)]
pub struct StageModel {
    /// The interpretation this stage implements (for messages and circuits).
    pub program: String,
    pub transformer: Transformer,
    pub codec: Codec,
    /// Maps the previous stage's outputs into this stage's vocabulary (`None` for the first).
    pub adapter: Option<Adapter>,
    /// Tokens this stage reads (after the adapter); `None` when unknown (model directories).
    pub vocab: Option<Vec<Value>>,
}

impl StageModel {
    /// Stage `k` (0-based) could not take input `i` (`input`: what this stage read).
    fn input_error(&self, k: usize, i: usize, input: &[Value], reason: String) -> ChainError {
        ChainError::Input {
            stage: k + 1,
            program: self.program.clone(),
            input: i,
            text: input_text(input),
            reason,
        }
    }
}

/// Patching for a chain: at stage `stage`, `sites` get their values on the corrupted inputs
/// (which run through the earlier stages of the same chain first).
#[derive(Debug, Clone)]
pub struct ChainPatch<'a> {
    pub stage: usize,
    pub sites: Vec<Site>,
    pub corrupted: &'a [Vec<Value>],
}

/// Errors of a chain run.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ChainError {
    #[error("stage {stage} (`{program}`): {source}")]
    #[diagnostic(code(congruity::equivalence::stage))]
    Stage {
        stage: usize,
        program: String,
        #[source]
        source: Box<ExtractError>,
    },
    #[error("stage {stage} (`{program}`), input {input} (`{text}`): {reason}")]
    #[diagnostic(code(congruity::equivalence::stage_input))]
    Input {
        stage: usize,
        program: String,
        input: usize,
        text: String,
        reason: String,
    },
    #[error(
        "stage {stage} (`{program}`) is not an implementation of its interpretation: on input {input} (`{text}`) it outputs `{got}`, the interpretation gives `{want}`"
    )]
    #[diagnostic(code(congruity::equivalence::wrong_output))]
    WrongOutput {
        stage: usize,
        program: String,
        input: usize,
        text: String,
        got: String,
        want: String,
    },
    #[error("{}: {reason}", path.display())]
    #[diagnostic(
        code(congruity::equivalence::pipeline_dir),
        help(
            "a pipeline directory is what `congruity compile` / `sample` write for a pipeline: pipeline.json (format congruity-pipeline/1) and one model directory per stage"
        )
    )]
    PipelineDir { path: PathBuf, reason: String },
    #[error("{0}")]
    #[diagnostic(code(congruity::equivalence::chain))]
    Other(String),
}

/// A chain's run: the concatenated representation and each stage's decoded outputs.
#[derive(Debug, Clone)]
pub struct ChainRun {
    pub features: Mat<f64>,
    /// `outputs[k][i]`: stage `k`'s decoded output on input `i`.
    pub outputs: Vec<Vec<Vec<Value>>>,
}

/// Maps `values` through the stage's adapter and checks them against its vocabulary.
fn adapt(
    stage: &StageModel,
    k: usize,
    inputs: &[Vec<Value>],
) -> Result<Vec<Vec<Value>>, ChainError> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            input
                .iter()
                .map(|v| {
                    let m = stage
                        .adapter
                        .as_ref()
                        .map_or_else(|| v.clone(), |a| a.apply(v));
                    if let Some(vocab) = &stage.vocab
                        && vocab.binary_search(&m).is_err()
                    {
                        let reason = format!(
                            "the previous stage's output {} (mapped to {}) is not a token of this stage",
                            token_text(v),
                            token_text(&m)
                        );
                        return Err(stage.input_error(k, i, input, reason));
                    }
                    Ok(m)
                })
                .collect()
        })
        .collect()
}

fn encode_all(
    stage: &StageModel,
    k: usize,
    inputs: &[Vec<Value>],
) -> Result<Vec<Vec<u32>>, ChainError> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            stage
                .codec
                .encode(input)
                .map_err(|reason| stage.input_error(k, i, input, reason))
        })
        .collect()
}

/// One stage's run on what it reads: its representation and its decoded outputs.
struct StageRun {
    features: Mat<f64>,
    outputs: Vec<Vec<Value>>,
}

fn run_stage(
    stage: &StageModel,
    k: usize,
    inputs: &[Vec<Value>],
    spec: &RepresentationSpec,
    patch: Option<&Patch<'_>>,
) -> Result<StageRun, ChainError> {
    let ids = encode_all(stage, k, inputs)?;
    let run = run_model(&stage.transformer, &ids, stage.codec.prefix(), spec, patch).map_err(
        |source| ChainError::Stage {
            stage: k + 1,
            program: stage.program.clone(),
            source: Box::new(source),
        },
    )?;
    let outputs = run
        .logits
        .iter()
        .zip(inputs)
        .enumerate()
        .map(|(i, (logits, input))| {
            stage
                .codec
                .decode(logits)
                .map_err(|reason| stage.input_error(k, i, input, reason))
        })
        .collect::<Result<_, _>>()?;
    Ok(StageRun {
        features: run.features,
        outputs,
    })
}

/// Runs stages `0..stop` on `inputs` without patching and returns what stage `stop` reads.
fn inputs_of_stage(
    stages: &[StageModel],
    stop: usize,
    inputs: &[Vec<Value>],
    spec: &RepresentationSpec,
) -> Result<Vec<Vec<Value>>, ChainError> {
    let mut current = inputs.to_vec();
    for (k, stage) in stages.iter().enumerate().take(stop) {
        if k > 0 {
            current = adapt(stage, k, &current)?;
        }
        current = run_stage(stage, k, &current, spec, None)?.outputs;
    }
    if stop > 0 {
        current = adapt(&stages[stop], stop, &current)?;
    }
    Ok(current)
}

/// Runs a chain on `inputs`. With `reference` (`reference[k][i]`: stage `k`'s output on input
/// `i` under the interpretation), every stage's decoded output must match it; patched runs are
/// not checked (changing the outputs is what patching may do).
pub fn run_chain(
    stages: &[StageModel],
    inputs: &[Vec<Value>],
    spec: &RepresentationSpec,
    reference: Option<&[Vec<Vec<Value>>]>,
    patch: Option<&ChainPatch<'_>>,
) -> Result<ChainRun, ChainError> {
    if stages.is_empty() {
        return Err(ChainError::Other("a chain needs at least one stage".into()));
    }
    if let Some(p) = patch
        && p.stage >= stages.len()
    {
        return Err(ChainError::Other(format!(
            "cannot patch stage {} of a {}-stage chain",
            p.stage + 1,
            stages.len()
        )));
    }
    let corrupted_ids = match patch {
        Some(p) => {
            let reads = inputs_of_stage(stages, p.stage, p.corrupted, spec)?;
            Some(encode_all(&stages[p.stage], p.stage, &reads)?)
        }
        None => None,
    };
    let mut parts: Vec<Mat<f64>> = Vec::with_capacity(stages.len());
    let mut outputs = Vec::with_capacity(stages.len());
    let mut current = inputs.to_vec();
    for (k, stage) in stages.iter().enumerate() {
        if k > 0 {
            current = adapt(stage, k, &current)?;
        }
        let stage_patch = match (patch, &corrupted_ids) {
            (Some(p), Some(src)) if p.stage == k => Some(Patch {
                sites: p.sites.clone(),
                source: src,
            }),
            _ => None,
        };
        let run = run_stage(stage, k, &current, spec, stage_patch.as_ref())?;
        if patch.is_none()
            && let Some(reference) = reference
        {
            let want = reference.get(k).ok_or_else(|| {
                ChainError::Other(format!("no reference outputs for stage {}", k + 1))
            })?;
            for (i, (got, want)) in run.outputs.iter().zip(want).enumerate() {
                if !same_values(got, want) {
                    return Err(ChainError::WrongOutput {
                        stage: k + 1,
                        program: stage.program.clone(),
                        input: i,
                        text: input_text(&inputs[i]),
                        got: input_text(got),
                        want: input_text(want),
                    });
                }
            }
        }
        parts.push(run.features);
        outputs.push(run.outputs.clone());
        current = run.outputs;
    }
    let n = inputs.len();
    let width: usize = parts.iter().map(|m| m.ncols()).sum();
    let mut features = Mat::<f64>::zeros(n, width);
    let mut offset = 0;
    for m in &parts {
        features
            .as_mut()
            .subcols_mut(offset, m.ncols())
            .copy_from(m.as_ref());
        offset += m.ncols();
    }
    Ok(ChainRun { features, outputs })
}

fn same_values(got: &[Value], want: &[Value]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| crate::compile::same_value(g, w))
}

/// The reference outputs of every stage on every input: `[stage][input][position]`.
pub fn reference_outputs(traces: &[Vec<Vec<Value>>]) -> Vec<Vec<Vec<Value>>> {
    // traces[i][k] → out[k][i]
    let stages = traces.first().map_or(0, Vec::len);
    (0..stages)
        .map(|k| traces.iter().map(|t| t[k].clone()).collect())
        .collect()
}

/// Which heads of each layer a circuit names, for reports.
pub fn describe_sites(sites: &[Site]) -> String {
    let mut by_layer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in sites {
        by_layer
            .entry(s.hook.to_string())
            .or_default()
            .push(s.head.map_or("all".to_string(), |h| h.to_string()));
    }
    by_layer
        .iter()
        .map(|(h, heads)| format!("{h}[{}]", heads.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The manifest `congruity compile` and `congruity sample` write in a pipeline directory.
pub const PIPELINE_FILE: &str = "pipeline.json";
/// The value of its `format` field this version reads.
pub const PIPELINE_FORMAT: &str = "congruity-pipeline/1";

/// Whether `dir` is a pipeline directory (holds [`PIPELINE_FILE`]).
pub fn is_pipeline_dir(dir: &Path) -> bool {
    dir.join(PIPELINE_FILE).is_file()
}

/// A pipeline directory, loaded: its stages in order, ready for [`run_chain`].
#[derive(Debug, Clone)]
pub struct PipelineDir {
    /// The pipeline's name in its spec.
    pub name: String,
    pub stages: Vec<StageModel>,
    /// Each stage's model directory.
    pub stage_dirs: Vec<PathBuf>,
}

/// Reads `dir/pipeline.json` and loads every stage's model directory (each must have a
/// `congruity.json`, since stages pass decoded values to each other). Stages run on the CPU.
pub fn load_pipeline_dir(dir: &Path) -> Result<PipelineDir, ChainError> {
    let path = dir.join(PIPELINE_FILE);
    let bad = |reason: String| ChainError::PipelineDir {
        path: path.clone(),
        reason,
    };
    let text = crate::files::read_text(&path, crate::files::MAX_JSON_BYTES, "a pipeline manifest")
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("is not JSON: {e}")))?;
    match manifest.get("format").and_then(|f| f.as_str()) {
        Some(PIPELINE_FORMAT) => {}
        Some(other) => {
            return Err(bad(format!(
                "format `{other}` is not `{PIPELINE_FORMAT}`, the one this version reads"
            )));
        }
        None => return Err(bad(format!("has no `format` field (`{PIPELINE_FORMAT}`)"))),
    }
    let name = manifest
        .get("pipeline")
        .and_then(|n| n.as_str())
        .ok_or_else(|| bad("`pipeline` (the pipeline's name) is missing or not a string".into()))?
        .to_string();
    let list = manifest
        .get("stages")
        .and_then(|s| s.as_array())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("`stages` is missing, not a list, or empty".into()))?;
    let mut stages = Vec::with_capacity(list.len());
    let mut stage_dirs = Vec::with_capacity(list.len());
    for (k, entry) in list.iter().enumerate() {
        let field = |f: &str| {
            entry
                .get(f)
                .and_then(|v| v.as_str())
                .ok_or_else(|| bad(format!("stages[{k}].{f} is missing or not a string")))
        };
        let program = field("program")?.to_string();
        let sub = field("dir")?;
        if Path::new(sub).is_absolute() || sub.split(['/', '\\']).any(|c| c == "..") {
            return Err(bad(format!(
                "stages[{k}].dir `{sub}` must name a directory inside the pipeline directory"
            )));
        }
        let adapter = match entry.get("adapter") {
            None | Some(serde_json::Value::Null) => None,
            Some(a) => {
                Some(parse_adapter(a).map_err(|why| bad(format!("stages[{k}].adapter: {why}")))?)
            }
        };
        let stage_dir = dir.join(sub);
        let loaded = crate::model::load(&stage_dir, &candle_core::Device::Cpu).map_err(|e| {
            bad(format!(
                "stage {} (`{program}`) in {}: {e}",
                k + 1,
                stage_dir.display()
            ))
        })?;
        let sidecar = loaded.sidecar.ok_or_else(|| {
            bad(format!(
                "stage {} (`{program}`): {} has no congruity.json, so its answers cannot be passed on",
                k + 1,
                stage_dir.display()
            ))
        })?;
        stages.push(StageModel {
            program,
            transformer: loaded.transformer,
            codec: Codec::Sidecar(sidecar),
            adapter,
            vocab: None,
        });
        stage_dirs.push(stage_dir);
    }
    Ok(PipelineDir {
        name,
        stages,
        stage_dirs,
    })
}

/// An adapter as `pipeline.json` writes it: `{"clamp": [lo, hi]}`, `{"modulo": {"lo": l, "n":
/// n}}` or `{"table": [[from, to], ...]}` (tokens as text).
fn parse_adapter(v: &serde_json::Value) -> Result<Adapter, String> {
    let int = |v: Option<&serde_json::Value>, what: &str| {
        v.and_then(|x| x.as_i64())
            .ok_or_else(|| format!("`{what}` must be an integer"))
    };
    if let Some(c) = v.get("clamp") {
        let pair = c
            .as_array()
            .filter(|p| p.len() == 2)
            .ok_or("`clamp` must be [lo, hi]")?;
        return Ok(Adapter::Clamp {
            lo: int(pair.first(), "clamp[0]")?,
            hi: int(pair.get(1), "clamp[1]")?,
        });
    }
    if let Some(m) = v.get("modulo") {
        return Ok(Adapter::Modulo {
            lo: int(m.get("lo"), "modulo.lo")?,
            n: int(m.get("n"), "modulo.n")?,
        });
    }
    if let Some(t) = v.get("table") {
        let rows = t
            .as_array()
            .ok_or("`table` must be a list of [from, to] pairs")?;
        let mut table = BTreeMap::new();
        for (i, row) in rows.iter().enumerate() {
            let pair = row
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or_else(|| format!("table[{i}] must be [from, to]"))?;
            let text = |x: &serde_json::Value| match x {
                serde_json::Value::String(s) => Ok(token_value(s)),
                other => Ok(json_value(other)),
            };
            let from: Result<Value, String> = text(&pair[0]);
            let to: Result<Value, String> = text(&pair[1]);
            table.insert(from?, to?);
        }
        return Ok(Adapter::Table(table));
    }
    Err(format!("`{v}` is none of clamp, modulo, table"))
}

/// A token as text (how `pipeline.json` writes table entries) as the value a decoded stage
/// output has: integers and `p/q` as numbers, `true` / `false` as booleans, `none` as none, any
/// other text as a symbol.
pub fn token_value(s: &str) -> Value {
    match s {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "none" => Value::None,
        _ => match s.parse::<i64>() {
            Ok(i) => Value::int(i),
            Err(_) => json_value(&serde_json::Value::String(s.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{CompileOptions, compile_checked};
    use crate::equivalence::extract::{BosPolicy, Layers};
    use crate::equivalence::representation::{Normalisation, Pooling};
    use crate::model::{RunOptions, TokenBatch};

    fn spec_path(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    fn reverse() -> (crate::lang::Spec, crate::compile::Compiled) {
        let spec = crate::lang::load(spec_path("specs/tracr/reverse.interp")).unwrap();
        let (c, _) = compile_checked(
            &spec.programs["tracr_reverse"],
            &CompileOptions::default(),
            0,
        )
        .unwrap();
        (spec, c)
    }

    #[test]
    fn in_memory_model_equals_the_written_directory() {
        let (_, c) = reverse();
        let mem = to_transformer(&c.weights, "congruity-tracr_reverse").unwrap();
        let dir = std::env::temp_dir().join(format!("congruity-chain-{}", std::process::id()));
        c.write(&dir).unwrap();
        let disk = crate::model::load(&dir, &candle_core::Device::Cpu).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(mem.config(), disk.transformer.config());
        let tokens = TokenBatch::new(&[vec![0, 1, 2, 3, 1], vec![0, 3, 3, 2, 1]]).unwrap();
        let a = mem.forward(&tokens, &RunOptions::default()).unwrap().logits;
        let b = disk
            .transformer
            .forward(&tokens, &RunOptions::default())
            .unwrap()
            .logits;
        let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a, b);
    }

    /// A pipeline whose first stage is a model directory with a numerical output (a mean
    /// aggregate: fractions of the prefix) feeding a categorical stage: the f32 model computes
    /// 1/3 as 0.33333334, and only the sidecar's exact values make it the 1/3 the
    /// interpretation gives and the next stage's adapter knows.
    #[test]
    fn numerical_model_directory_outputs_reach_the_next_stage_exactly() {
        let spec = crate::lang::load(spec_path("specs/tracr/frac_prevs.interp")).unwrap();
        let frac = &spec.programs["tracr_frac_prevs"];
        let (c, _) = compile_checked(frac, &CompileOptions::default(), 0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        c.write(dir.path()).unwrap();
        let loaded = crate::model::load(dir.path(), &candle_core::Device::Cpu).unwrap();
        let first = StageModel {
            program: "tracr_frac_prevs".into(),
            transformer: loaded.transformer,
            codec: Codec::Sidecar(loaded.sidecar.unwrap()),
            adapter: None,
            vocab: None,
        };
        let (rev_spec, rev) = reverse();
        let v = |s: &str| Value::sym(s);
        // Every fraction a prefix of at most 4 tokens can have, by thirds of [0, 1].
        let table = (1..=4i64)
            .flat_map(|n| (0..=n).map(move |k| num_rational::Rational64::new(k, n)))
            .map(|r| {
                let third = (r * 3).to_integer();
                (Value::Num(r), v(["a", "b", "c", "c"][third as usize]))
            })
            .collect();
        let second = StageModel {
            program: "tracr_reverse".into(),
            transformer: to_transformer(&rev.weights, "m").unwrap(),
            codec: Codec::Compiled(rev.io.clone()),
            adapter: Some(Adapter::Table(table)),
            vocab: Some(rev.io.vocab.clone()),
        };
        let inputs = vec![
            vec![v("x"), v("w"), v("w")],
            vec![v("w"), v("x"), v("x"), v("y")],
            vec![v("x")],
            vec![v("z"), v("z"), v("x"), v("w")],
        ];
        let traces: Vec<Vec<Vec<Value>>> = inputs
            .iter()
            .map(|i| {
                let out = crate::lang::eval::eval_program(frac, i)
                    .unwrap()
                    .output()
                    .to_vec();
                let mapped: Vec<Value> = out
                    .iter()
                    .map(|x| second.adapter.as_ref().unwrap().apply(x))
                    .collect();
                let rev_out =
                    crate::lang::eval::eval_program(&rev_spec.programs["tracr_reverse"], &mapped)
                        .unwrap()
                        .output()
                        .to_vec();
                vec![out, rev_out]
            })
            .collect();
        let reference = reference_outputs(&traces);
        assert!(
            reference[0][0].contains(&Value::Num(num_rational::Rational64::new(1, 3))),
            "the inputs must produce a fraction that no f32 holds exactly"
        );
        let run = run_chain(
            &[first, second],
            &inputs,
            &RepresentationSpec::default(),
            Some(&reference),
            None,
        )
        .unwrap();
        assert_eq!(run.outputs, reference);
    }

    #[test]
    fn exact_values_recover_the_rationals_behind_floats() {
        let r = |a, b| Value::Num(num_rational::Rational64::new(a, b));
        for (a, b) in [
            (1, 3),
            (-2, 3),
            (5, 7),
            (0, 1),
            (12, 1),
            (3, 40),
            (-7, 4),
            (11, 30),
        ] {
            assert_eq!(exact_value(a as f64 / b as f64), r(a, b), "{a}/{b}");
        }
        // A float that is no simple rational is read as before.
        assert_eq!(exact_value(0.123456789123), float_value(0.123456789123));
    }

    #[test]
    fn chain_checks_outputs_and_pools_each_input_over_its_own_tokens() {
        let (spec, c) = reverse();
        let program = &spec.programs["tracr_reverse"];
        let stage = StageModel {
            program: "tracr_reverse".into(),
            transformer: to_transformer(&c.weights, "m").unwrap(),
            codec: Codec::Compiled(c.io.clone()),
            adapter: None,
            vocab: Some(c.io.vocab.clone()),
        };
        let v = |s: &str| Value::sym(s);
        let inputs = vec![
            vec![v("a"), v("b"), v("c")],
            vec![v("c")],
            vec![v("b"), v("a"), v("a"), v("c")],
            vec![v("c"), v("c"), v("a")],
        ];
        let reference: Vec<Vec<Vec<Value>>> = vec![
            inputs
                .iter()
                .map(|i| {
                    crate::lang::eval::eval_program(program, i)
                        .unwrap()
                        .output()
                        .to_vec()
                })
                .collect(),
        ];
        let spec_mean = RepresentationSpec::default();
        let run = run_chain(
            std::slice::from_ref(&stage),
            &inputs,
            &spec_mean,
            Some(&reference),
            None,
        )
        .unwrap();
        let layers = c.weights.n_layers() + 1;
        assert_eq!(run.features.ncols(), layers * c.weights.d_model);
        assert_eq!(run.outputs[0][0], vec![v("c"), v("b"), v("a")]);
        // Row order follows the inputs even though they ran in length groups: input 3 alone
        // gives the same row.
        let alone = run_chain(
            std::slice::from_ref(&stage),
            &inputs[3..],
            &spec_mean,
            None,
            None,
        )
        .unwrap();
        for j in 0..run.features.ncols() {
            assert_eq!(run.features[(3, j)], alone.features[(0, j)]);
        }
        // The mean excludes BOS: the one-token input's mean is its token position's vector.
        let at = RepresentationSpec {
            layers: Layers::AccumulatedResidual,
            pooling: Pooling::Positions(vec![0]),
            bos: BosPolicy::Exclude,
            norm: Normalisation::None,
        };
        let first =
            run_chain(std::slice::from_ref(&stage), &inputs[1..2], &at, None, None).unwrap();
        for j in 0..run.features.ncols() {
            assert!((run.features[(1, j)] - first.features[(0, j)]).abs() < 1e-12);
        }
        // A wrong reference is caught.
        let mut wrong = reference.clone();
        wrong[0][2][0] = v("a");
        let err = run_chain(
            std::slice::from_ref(&stage),
            &inputs,
            &spec_mean,
            Some(&wrong),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(err, ChainError::WrongOutput { input: 2, .. }),
            "{err}"
        );
        // Positions past an input's length are an error naming the length.
        let far = RepresentationSpec {
            pooling: Pooling::Positions(vec![3]),
            ..RepresentationSpec::default()
        };
        let err = run_chain(std::slice::from_ref(&stage), &inputs, &far, None, None).unwrap_err();
        assert!(err.to_string().contains("length 1"), "{err}");
    }
}
