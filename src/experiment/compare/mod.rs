//! `congruity compare` as a library call: from a spec file and settings to a report holding the
//! selectivity matrix between interpretations (or pipelines), the tests of given models against
//! them, the transfer matrix between every pool, and optionally the intervention test.
//!
//! Every random choice comes from the one seed `S`, split into named streams with
//! [`derive_seed`](crate::equivalence::derive_seed) (all recorded in the report's `seeds`):
//!
//! | stream | what |
//! |---|---|
//! | `[1]` | the common inputs |
//! | `[2, h(name)]` | sampling the implementations of interpretation/pipeline `name` (`h` = first 8 bytes of its SHA-256), so every target has its own draws — pipelines that share a stage do *not* share its sampled models — and adding a target changes no other |
//! | `[3]` | selectivity matrix |
//! | `[4, i, j, kind]` | model tests of model pool `i` against interpretation pair/pool `j` |
//! | `[5]` | transfer matrix |
//! | `[6]` | corrupted inputs |
//! | `[7]` | which circuit heads are patched when fewer than all |
//! | `[8, o, t]` | intervention test of sampled pool `o` against target pool `t` |
//! | `[9, m, t]` | intervention test of model pool `m` (patched where the circuit declares) against target pool `t` |
//!
//! The compiler's domain check uses `S` itself.

//!
//! The driver ([`compare`]) runs the stages in order, each in its own file: `plan` (spec, targets,
//! circuit, task, seeds, inputs), `pools` (sampled interpretations and model directories),
//! `experiments` (selectivity, model tests, transfer, intervention); `render` writes the text
//! and JSON reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::extract::RepresentationSpec;
use crate::compile::sample::Family;
use crate::equivalence::EquivalenceError;
use crate::equivalence::intervention::InterventionResult;
use crate::equivalence::model_test::ModelTestResult;
use crate::equivalence::point::{Epsilon, PointTestConfig, SelectivityMatrix};
use crate::equivalence::source::ImplementationSource;
use crate::equivalence::stats::IntervalMethod;
use crate::equivalence::transfer::TransferMatrix;
use crate::experiment::ExperimentError;
use crate::experiment::circuit::CircuitMapping;
use crate::progress::Progress;
use crate::similarity::Measure;

mod experiments;
mod given;
mod plan;
mod pools;
mod render;

pub use given::{NamedPools, compare_representations, read_pools};
pub use render::transfer_text;

#[derive(Debug, Clone)]
pub struct CompareSettings {
    /// Interpretations or pipelines to sample (empty: every pipeline of the spec, or every
    /// interpretation when it has no pipeline; none at all when only models are compared and
    /// `--interpretations` is not given).
    pub interpretations: Vec<String>,
    /// Model directories (each one pool: a model, or a directory of models).
    pub models: Vec<PathBuf>,
    /// Interpretations whose implementations are the models of a pool directory (trained ones,
    /// say) instead of sampled: every name must be one of the compared targets.
    pub given: BTreeMap<String, crate::experiment::sampled::GivenPool>,
    /// Implementations sampled per interpretation.
    pub samples: usize,
    pub seed: u64,
    pub measure: Measure,
    /// Size of the common input set.
    pub inputs: usize,
    /// Replicates (bootstraps) of every selectivity cell.
    pub bootstraps: usize,
    /// Draws per replicate, per model test and per intervention test; pairs per transfer cell.
    pub draws: usize,
    pub families: Vec<Family>,
    pub representation: RepresentationSpec,
    /// The task whose domain the inputs come from (default: the first target's).
    pub task: Option<String>,
    /// Circuit for the intervention test, and how many of its heads to patch.
    pub circuit: Option<String>,
    pub patch_heads: Option<usize>,
    /// Patch only this variable's sites of the circuit.
    pub patch_variable: Option<String>,
    /// Write every sampled implementation under this directory.
    pub keep_models: Option<PathBuf>,
    /// Keep the sampled implementations' representations under `DIR/sampled/` between runs
    /// (see [`crate::experiment::sampled::SampledSource::cache_in`]).
    pub cache_dir: Option<PathBuf>,
    pub confidence: f64,
    pub interval: IntervalMethod,
    /// The fit gap every distinguishable / congruent verdict needs beside its interval.
    pub epsilon: Epsilon,
    /// Show progress on stderr.
    pub progress: bool,
}

impl Default for CompareSettings {
    fn default() -> Self {
        Self {
            interpretations: Vec::new(),
            models: Vec::new(),
            given: BTreeMap::new(),
            samples: 8,
            seed: 0,
            measure: Measure::default(),
            inputs: 200,
            bootstraps: 10,
            draws: 100,
            families: Family::ALL.to_vec(),
            representation: RepresentationSpec::default(),
            task: None,
            circuit: None,
            patch_heads: None,
            patch_variable: None,
            keep_models: None,
            cache_dir: None,
            confidence: 0.95,
            interval: IntervalMethod::ClopperPearson,
            epsilon: Epsilon::FromData,
            progress: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SpecFile {
    pub path: String,
    pub sha256: String,
}

/// One pool of implementations, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct PoolInfo {
    pub label: String,
    /// `interpretation`, `pipeline` or `models`.
    pub kind: &'static str,
    pub count: usize,
    /// Interpretations of the stages, in order (one for an interpretation).
    pub stages: Vec<String>,
    /// Model directories (model pools).
    pub dirs: Vec<String>,
    /// Sampling seed (sampled pools).
    pub seed: Option<u64>,
    /// Smallest and largest representation width over the pool.
    pub features: [usize; 2],
}

/// The seeds of every stream (see the module documentation).
#[derive(Debug, Clone, Serialize)]
pub struct Seeds {
    pub master: u64,
    pub inputs: u64,
    pub selectivity: u64,
    pub transfer: u64,
    pub corrupted: u64,
    pub patched_heads: u64,
}

impl Seeds {
    /// Every stream's seed, derived from the master seed.
    pub fn from_master(master: u64) -> Self {
        use crate::equivalence::source::derive_seed;
        Seeds {
            master,
            inputs: derive_seed(master, &[1]),
            selectivity: derive_seed(master, &[3]),
            transfer: derive_seed(master, &[5]),
            corrupted: derive_seed(master, &[6]),
            patched_heads: derive_seed(master, &[7]),
        }
    }
}

/// The settings as reported.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsReport {
    pub samples: usize,
    pub measure: String,
    pub inputs: usize,
    pub bootstraps: usize,
    pub draws: usize,
    pub families: Vec<String>,
    pub representation: String,
    pub confidence: f64,
    pub interval: IntervalMethod,
    /// `data` (each verdict's ε is the spread of its within-pool fits) or the value given.
    pub epsilon: String,
}

/// The common inputs, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct InputsReport {
    pub id: String,
    pub task: String,
    pub count: usize,
    /// `[length, how many]`.
    pub lengths: Vec<(usize, usize)>,
}

/// A model judged against one interpretation and its alternatives.
#[derive(Debug, Clone, Serialize)]
pub struct ModelVerdict {
    pub model: String,
    pub interpretation: String,
    /// Every closer test against an alternative is distinguishable, and membership is not.
    pub congruent: bool,
    /// Alternatives the model is distinguishable from (on this interpretation's side).
    pub distinguishable_from: Vec<String>,
    /// Whether the membership test rejected the model as an implementation of it.
    pub membership_rejected: bool,
}

/// The intervention test against one target pool.
#[derive(Debug, Clone, Serialize)]
pub struct InterventionReport {
    pub circuit: String,
    /// The one variable whose sites were patched (`--variable`); all of the circuit's when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// How the sites were found: through each implementation's placement record (the circuit
    /// is the compiled layout) or as declared.
    pub mapping: CircuitMapping,
    /// Sites patched per implementation, e.g. `blocks.3.attn.hook_z[0]`, `blocks.0.hook_mlp_out`.
    pub patched_sites: Vec<Vec<String>>,
    pub result: InterventionResult,
}

/// Everything a comparison found.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    pub format: &'static str,
    pub spec: Vec<SpecFile>,
    pub settings: SettingsReport,
    pub seeds: Seeds,
    pub inputs: InputsReport,
    pub pools: Vec<PoolInfo>,
    pub selectivity: Option<SelectivityMatrix>,
    pub model_tests: Vec<ModelTestResult>,
    pub model_verdicts: Vec<ModelVerdict>,
    pub transfer: TransferMatrix,
    pub intervention: Vec<InterventionReport>,
}

fn name_hash(name: &str) -> u64 {
    let d = Sha256::digest(name.as_bytes());
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

fn progress(show: bool, what: &str) -> Progress {
    if show {
        Progress::shown(what)
    } else {
        Progress::hidden()
    }
}

/// A model pool's label: the directory name, with its parent when the name alone says little
/// (`tracr_reverse/0000` rather than `0000`).
fn model_label(dir: &Path) -> String {
    let name = |p: &Path| p.file_name().map(|f| f.to_string_lossy().into_owned());
    match name(dir) {
        Some(n) if n.chars().all(|c| c.is_ascii_digit()) => match dir.parent().and_then(name) {
            Some(parent) => format!("{parent}/{n}"),
            None => n,
        },
        Some(n) => n,
        None => dir.display().to_string(),
    }
}

/// Computes every representation of `pools` (in parallel, with a progress bar), so that failures
/// surface before any test and the tests only compute fits.
fn materialise(
    pools: &[&dyn ImplementationSource],
    show: bool,
    what: &str,
) -> Result<(), ExperimentError> {
    let jobs: Vec<(usize, usize)> = pools
        .iter()
        .enumerate()
        .flat_map(|(p, s)| (0..s.count()).map(move |i| (p, i)))
        .collect();
    let pb = progress(show, what).bar(jobs.len() as u64, "models");
    let results: Vec<Result<(), EquivalenceError>> = jobs
        .par_iter()
        .map(|&(p, i)| {
            let r = pools[p]
                .representation(i)
                .map(|_| ())
                .map_err(|e| EquivalenceError::Source {
                    label: pools[p].label().to_owned(),
                    index: i,
                    source: Box::new(e),
                });
            pb.inc(1);
            r
        })
        .collect();
    pb.finish_and_clear();
    for r in results {
        r?;
    }
    Ok(())
}

fn widths(pool: &dyn ImplementationSource) -> Result<[usize; 2], ExperimentError> {
    let mut lo = usize::MAX;
    let mut hi = 0;
    for i in 0..pool.count() {
        let r = pool
            .representation(i)
            .map_err(|e| EquivalenceError::Source {
                label: pool.label().to_owned(),
                index: i,
                source: Box::new(e),
            })?;
        lo = lo.min(r.n_features());
        hi = hi.max(r.n_features());
    }
    Ok([if lo == usize::MAX { 0 } else { lo }, hi])
}

/// Progress notes on stderr, timed from the start of the run.
struct Notes {
    show: bool,
    start: std::time::Instant,
}

impl Notes {
    fn new(show: bool) -> Notes {
        Notes {
            show,
            start: std::time::Instant::now(),
        }
    }

    /// One note, with the wall time since the start (stderr only: timings never enter the
    /// report).
    fn say(&self, what: &str) {
        if self.show {
            eprintln!("[{:.1}s] {what}", self.start.elapsed().as_secs_f64());
        }
    }
}

/// Runs a comparison.
pub fn compare(spec_path: &Path, s: &CompareSettings) -> Result<CompareReport, ExperimentError> {
    let notes = Notes::new(s.progress);
    let plan = plan::Plan::new(spec_path, s, &notes)?;
    let pools = pools::Pools::build(&plan, s)?;
    let (interps, models, all) = pools.refs();
    if all.is_empty() {
        return Err(ExperimentError::NothingToCompare);
    }
    materialise(&all, s.progress, "implementations")?;

    let point = PointTestConfig {
        measure: s.measure.clone(),
        draws: s.draws,
        seed: plan.seeds.selectivity,
        confidence: s.confidence,
        interval: s.interval,
        epsilon: s.epsilon,
        progress: progress(s.progress, "selectivity fits"),
    };
    let selectivity = experiments::selectivity(&interps, &point, s, &notes)?;
    let (model_tests, model_verdicts) =
        experiments::model_tests(&models, &interps, &point, s, &notes)?;
    let transfer = experiments::transfer(&all, plan.seeds.transfer, s, &notes)?;
    let intervention = experiments::intervention(&plan, &pools.sampled, &pools.models, &all, s)?;
    notes.say("done");

    Ok(CompareReport {
        format: "congruity-compare/1",
        spec: plan.files.clone(),
        settings: plan::settings_report(s),
        seeds: plan.seeds.clone(),
        inputs: plan.inputs_report(),
        pools: pools.infos(s)?,
        selectivity,
        model_tests,
        model_verdicts,
        transfer,
        intervention,
    })
}
