//! Pipelines: one compiled model per stage, run in sequence. Each stage's decoded output (argmax
//! for categorical outputs, the nearest exact value for numerical ones) goes through the next
//! stage's adapter and becomes that stage's input tokens.
//!
//! A pipeline *implementation* is a chain: one implementation of every stage. Sampled chain `i`
//! holds implementation `i` of each stage, and its representation is the concatenation of the
//! representations of *those* stage models on the *same* input as it flows through the chain —
//! the paper's reference code indexed stage implementations inconsistently across chains, which
//! this layout makes impossible.
//!
//! `compile` does not run models (that is the runtime's job, one layer up): chains run with
//! `experiment::chain::run_chain`, on pipeline directories or on stages compiled in memory.

use std::path::Path;

use serde_json::json;

use super::error::CompileError;
use super::sample::{Family, Sample, item_seed, sample_one};
use super::scalar::token_text;
use super::write::{json_bytes, replace_dir_atomically};
use super::{CompileOptions, Compiled, Provenance, check::CheckReport, compile_checked};
use crate::lang::ir::{Adapter, Spec};

/// One compiled stage.
#[derive(Clone, Debug)]
pub struct CompiledStage {
    pub program: String,
    /// Maps the previous stage's outputs into this stage's vocabulary.
    pub adapter: Option<Adapter>,
    pub compiled: Compiled,
    pub check: CheckReport,
}

#[derive(Clone, Debug)]
pub struct CompiledPipeline {
    pub name: String,
    pub stages: Vec<CompiledStage>,
}

/// The manifest of a pipeline directory.
pub const PIPELINE_FILE: &str = "pipeline.json";

/// The seed stage `k` of chain-sampled pipelines draws from: its own stream of the pool seed,
/// so stages never share draws (sampled, and trained, chains alike).
pub fn chain_stage_seed(base_seed: u64, k: usize) -> u64 {
    item_seed(base_seed, 1_000_000 + k as u64)
}

/// The directory name of stage `k` inside a pipeline directory.
pub fn stage_dir(k: usize, program: &str) -> String {
    format!("{k:02}-{program}")
}

/// Compiles every stage of pipeline `name` (each checked on its domain).
pub fn compile_pipeline(
    spec: &Spec,
    name: &str,
    opts: &CompileOptions,
    seed: u64,
) -> Result<CompiledPipeline, CompileError> {
    let p = spec
        .pipelines
        .get(name)
        .ok_or_else(|| CompileError::Pipeline {
            pipeline: name.to_string(),
            reason: "no such pipeline".into(),
        })?;
    let mut stages = Vec::with_capacity(p.stages.len());
    for st in &p.stages {
        let program = spec
            .programs
            .get(&st.program)
            .ok_or_else(|| CompileError::Pipeline {
                pipeline: name.to_string(),
                reason: format!(
                    "stage `{}` is not an interpretation of the spec",
                    st.program
                ),
            })?;
        let (compiled, check) = compile_checked(program, opts, seed)?;
        stages.push(CompiledStage {
            program: st.program.clone(),
            adapter: st.adapter.clone(),
            compiled,
            check,
        });
    }
    Ok(CompiledPipeline {
        name: name.to_string(),
        stages,
    })
}

fn adapter_json(a: &Option<Adapter>) -> serde_json::Value {
    match a {
        None => serde_json::Value::Null,
        Some(Adapter::Clamp { lo, hi }) => json!({"clamp": [lo, hi]}),
        Some(Adapter::Modulo { lo, n }) => json!({"modulo": {"lo": lo, "n": n}}),
        Some(Adapter::Table(t)) => json!({
            "table": t.iter().map(|(k, v)| [token_text(k), token_text(v)]).collect::<Vec<_>>()
        }),
    }
}

/// `pipeline.json`: the stages in order, their directories and adapters.
fn manifest(
    name: &str,
    stages: &[(String, Option<Adapter>)],
    provenance: &serde_json::Value,
) -> serde_json::Value {
    json!({
        "format": "congruity-pipeline/1",
        "pipeline": name,
        "stages": stages.iter().enumerate().map(|(k, (program, adapter))| json!({
            "program": program,
            "dir": stage_dir(k, program),
            "adapter": adapter_json(adapter),
        })).collect::<Vec<_>>(),
        "provenance": provenance,
    })
}

fn write_pipeline_dir(
    dir: &Path,
    manifest: &serde_json::Value,
    write_stage: &dyn Fn(usize, &Path) -> Result<(), CompileError>,
    n: usize,
    names: &[String],
) -> Result<(), CompileError> {
    // Stages are written into a temporary sibling, renamed into place when all are complete.
    replace_dir_atomically(dir, |tmp| {
        for (k, name) in names.iter().enumerate().take(n) {
            write_stage(k, &tmp.join(stage_dir(k, name)))?;
        }
        std::fs::write(tmp.join(PIPELINE_FILE), json_bytes(manifest))
            .map_err(|e| CompileError::write(dir.join(PIPELINE_FILE), e))
    })
}

impl CompiledPipeline {
    fn stage_list(&self) -> (Vec<(String, Option<Adapter>)>, Vec<String>) {
        let list: Vec<(String, Option<Adapter>)> = self
            .stages
            .iter()
            .map(|s| (s.program.clone(), s.adapter.clone()))
            .collect();
        let names = list.iter().map(|s| s.0.clone()).collect();
        (list, names)
    }

    /// The pipeline's `pipeline.json` with `provenance`, for a directory whose stage models are
    /// written by someone else (trained chains).
    pub fn manifest(&self, provenance: &serde_json::Value) -> serde_json::Value {
        manifest(&self.name, &self.stage_list().0, provenance)
    }

    /// Writes `dir/pipeline.json` and one model directory per stage.
    pub fn write(&self, dir: &Path, provenance: &Provenance) -> Result<(), CompileError> {
        let (list, names) = self.stage_list();
        let m = manifest(&self.name, &list, &json!(provenance));
        write_pipeline_dir(
            dir,
            &m,
            &|k, d| self.stages[k].compiled.write(d),
            self.stages.len(),
            &names,
        )
    }

    /// Chain `index` of a sampled pipeline: implementation `index` of every stage (each stage's
    /// own seed stream, so stages never share draws).
    pub fn sample_chain(
        &self,
        families: &[Family],
        base_seed: u64,
        index: u64,
    ) -> Result<Vec<Sample>, CompileError> {
        self.stages
            .iter()
            .enumerate()
            .map(|(k, s)| sample_one(&s.compiled, families, chain_stage_seed(base_seed, k), index))
            .collect()
    }

    /// Writes sampled chain `index` to `dir` (`pipeline.json` + one directory per stage).
    pub fn write_chain(
        &self,
        chain: &[Sample],
        dir: &Path,
        families: &[Family],
        base_seed: u64,
        index: u64,
    ) -> Result<(), CompileError> {
        let (list, names) = self.stage_list();
        let prov = json!({
            "pipeline": self.name,
            "family": families.iter().map(|f| f.name()).collect::<Vec<_>>(),
            "sample": {"base_seed": base_seed, "index": index},
            "stage_seeds": chain.iter().map(|s| s.seed).collect::<Vec<_>>(),
        });
        let m = manifest(&self.name, &list, &prov);
        write_pipeline_dir(
            dir,
            &m,
            &|k, d| chain[k].write(&self.stages[k].compiled, d),
            chain.len(),
            &names,
        )
    }
}
