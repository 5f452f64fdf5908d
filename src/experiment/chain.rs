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

use super::extract::{Patch, RepresentationSpec, run_model};
use crate::artifact::value;
use crate::compile::weights::Weights as CompiledWeights;
use crate::compile::write::{config_json, transformer_lens_tensors};
use crate::experiment::{ExperimentError, StageProblem};
use crate::lang::domain::token_text;
use crate::lang::ir::{Adapter, Value};
use crate::model::OutputValue;
use crate::model::io::{HostTensor, NamedTensors};
use crate::model::{ModelConfig, ModelError, Sidecar, Site, Transformer, Weights};

/// A compiled or sampled model's weights as a runtime [`Transformer`], in memory: the same
/// tensors, names and `config.json` fields that `compile::write` puts on disk (a test checks that
/// both give identical logits), without the round trip through files.
pub fn to_transformer(w: &CompiledWeights, name: &str) -> Result<Transformer, ModelError> {
    let origin = Path::new("<in-memory compiled model>");
    let config = ModelConfig::from_json(&config_json(w, name), origin)?;
    let named: Vec<(String, HostTensor)> = transformer_lens_tensors(w)
        .into_iter()
        .map(|t| {
            (
                t.name,
                HostTensor {
                    shape: t.shape,
                    data: t.data,
                },
            )
        })
        .collect();
    let named = NamedTensors::from_host(origin, named);
    let weights = Weights::from_named(&config, &named, &candle_core::Device::Cpu)?;
    Transformer::new(config, weights)
}

/// Token ids of one input under a stage's sidecar (BOS prepended when it has one).
pub fn encode(sidecar: &Sidecar, input: &[Value]) -> Result<Vec<u32>, StageProblem> {
    let words: Vec<String> = input.iter().map(token_text).collect();
    sidecar.encode(&words).map_err(|e| {
        let ModelError::UnknownToken { token, .. } = e else {
            return StageProblem::Model(e);
        };
        let bos = sidecar.input.bos.as_deref();
        StageProblem::OutsideVocabulary {
            token,
            vocab: sidecar
                .input
                .tokens
                .iter()
                .filter(|t| Some(t.as_str()) != bos)
                .cloned()
                .collect(),
        }
    })
}

/// The values of one input's positions, from their logits (prefix positions already dropped):
/// the runtime's decoder, exact values as the sidecar lists them.
pub fn decode(sidecar: &Sidecar, logits: &[Vec<f32>]) -> Result<Vec<Value>, StageProblem> {
    logits
        .iter()
        .map(|l| {
            Ok(
                match sidecar.decode_position(l).map_err(StageProblem::Model)? {
                    OutputValue::Symbol(j) => value::from_json(&j),
                    OutputValue::Exact(r) => Value::Num(r),
                    // Unsnapped, the decoder gives the f32's shortest decimal form, which converts
                    // back to that very f32.
                    OutputValue::Number(x) => value::float_value(f64::from(x as f32)),
                },
            )
        })
        .collect()
}

/// One stage of a chain, ready to run.
#[derive(Debug, Clone)]
pub struct StageModel {
    /// The interpretation this stage implements (for messages and circuits).
    pub program: String,
    pub transformer: Transformer,
    /// How it reads values and writes answers: its model directory's sidecar, or (compiled in
    /// memory) the one its directory would hold.
    pub sidecar: Sidecar,
    /// Maps the previous stage's outputs into this stage's vocabulary (`None` for the first).
    pub adapter: Option<Adapter>,
    /// Tokens this stage reads (after the adapter); `None` when unknown (model directories).
    pub vocab: Option<Vec<Value>>,
}

impl StageModel {
    /// Stage `k` (0-based) could not take input `i` (`input`: what this stage read).
    fn input_error(
        &self,
        k: usize,
        i: usize,
        input: &[Value],
        problem: StageProblem,
    ) -> ExperimentError {
        ExperimentError::StageInput {
            stage: k + 1,
            program: self.program.clone(),
            input: i,
            values: input.to_vec(),
            problem: Box::new(problem),
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
) -> Result<Vec<Vec<Value>>, ExperimentError> {
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
                        let problem = StageProblem::NotAToken {
                            output: v.clone(),
                            mapped: m,
                        };
                        return Err(stage.input_error(k, i, input, problem));
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
) -> Result<Vec<Vec<u32>>, ExperimentError> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            encode(&stage.sidecar, input).map_err(|reason| stage.input_error(k, i, input, reason))
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
) -> Result<StageRun, ExperimentError> {
    let ids = encode_all(stage, k, inputs)?;
    let run = run_model(
        &stage.transformer,
        &ids,
        stage.sidecar.prefix_len(),
        spec,
        patch,
    )
    .map_err(|source| ExperimentError::Stage {
        stage: k + 1,
        program: stage.program.clone(),
        source: Box::new(source),
    })?;
    let outputs = run
        .logits
        .iter()
        .zip(inputs)
        .enumerate()
        .map(|(i, (logits, input))| {
            decode(&stage.sidecar, logits).map_err(|reason| stage.input_error(k, i, input, reason))
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
) -> Result<Vec<Vec<Value>>, ExperimentError> {
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
) -> Result<ChainRun, ExperimentError> {
    if stages.is_empty() {
        return Err(ExperimentError::NoStages);
    }
    if let Some(p) = patch
        && p.stage >= stages.len()
    {
        return Err(ExperimentError::PatchStage {
            stage: p.stage + 1,
            stages: stages.len(),
        });
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
            let want = reference
                .get(k)
                .ok_or_else(|| ExperimentError::NoReference { stage: k + 1 })?;
            for (i, (got, want)) in run.outputs.iter().zip(want).enumerate() {
                if !same_values(got, want) {
                    return Err(ExperimentError::WrongOutput {
                        stage: k + 1,
                        program: stage.program.clone(),
                        input: i,
                        values: inputs[i].clone(),
                        got: got.clone(),
                        want: want.clone(),
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
pub use crate::compile::pipeline::PIPELINE_FILE;
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
pub fn load_pipeline_dir(dir: &Path) -> Result<PipelineDir, ExperimentError> {
    let path = dir.join(PIPELINE_FILE);
    let bad = |reason: String| ExperimentError::PipelineDir {
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
            sidecar,
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
                serde_json::Value::String(s) => token_value(s),
                other => value::from_json(other),
            };
            table.insert(text(&pair[0]), text(&pair[1]));
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
            Err(_) => value::from_json(&serde_json::Value::String(s.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{CompileOptions, compile_checked};
    use crate::equivalence::representation::{Normalisation, Pooling};
    use crate::experiment::extract::{BosPolicy, Layers};
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
            sidecar: loaded.sidecar.unwrap(),
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
            sidecar: rev.sidecar(),
            adapter: Some(Adapter::Table(table)),
            vocab: Some(rev.plan.vocab.clone()),
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
    fn decoded_numerical_outputs_are_the_sidecars_exact_values() {
        // Denominators far beyond what a float-to-fraction guess could recover.
        let exact: Vec<_> = [(1, 3), (-2, 99_991), (5, 1_000_003), (12, 1)]
            .map(|(a, b)| num_rational::Rational64::new(a, b))
            .to_vec();
        let sidecar = Sidecar::new(
            crate::artifact::InputSpec {
                bos: None,
                tokens: vec!["0".into()],
            },
            crate::artifact::OutputSpec::numerical_exact(exact.clone()),
        );
        let logits: Vec<Vec<f32>> = exact
            .iter()
            .map(|r| vec![crate::artifact::ExactNumber(*r).to_f64() as f32 + 1e-9])
            .collect();
        let got = decode(&sidecar, &logits).unwrap();
        assert_eq!(got, exact.into_iter().map(Value::Num).collect::<Vec<_>>());
        // Without exact values a float is read as a float.
        let plain = Sidecar::new(
            sidecar.input.clone(),
            crate::artifact::OutputSpec::numerical(),
        );
        assert_eq!(
            decode(&plain, &[vec![0.25]]).unwrap(),
            vec![Value::Num(num_rational::Rational64::new(1, 4))]
        );
    }

    #[test]
    fn chain_checks_outputs_and_pools_each_input_over_its_own_tokens() {
        let (spec, c) = reverse();
        let program = &spec.programs["tracr_reverse"];
        let stage = StageModel {
            program: "tracr_reverse".into(),
            transformer: to_transformer(&c.weights, "m").unwrap(),
            sidecar: c.sidecar(),
            adapter: None,
            vocab: Some(c.plan.vocab.clone()),
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
            matches!(err, ExperimentError::WrongOutput { input: 2, .. }),
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
