//! `congruity compare` as a library call: from a spec file and settings to a report holding the
//! selectivity matrix between interpretations (or pipelines), the tests of given models against
//! them, the transfer matrix between every pool, and optionally the intervention test.
//!
//! Every random choice comes from the one seed `S`, split into named streams with
//! [`derive_seed`] (all recorded in the report's `seeds`):
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
//! | `[8, t]` | intervention test against target pool `t` |
//!
//! The compiler's domain check uses `S` itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::chain::reference_outputs;
use super::extract::RepresentationSpec;
use super::inputs::{InputError, InputSet};
use super::intervention::{InterventionConfig, InterventionResult, intervention_test};
use super::model_test::{ModelTestResult, closer_test, membership_test};
use super::point::{PointTestConfig, SelectivityConfig, SelectivityMatrix, Verdict};
use super::sampled::{Compiler, ModelDirSource, PatchPlan, PoolError, SampledSource, Target};
use super::source::{ImplementationSource, derive_seed};
use super::stats::IntervalMethod;
use super::transfer::{TransferConfig, TransferMatrix, transfer_matrix};
use super::{EquivalenceError, selectivity_matrix};
use crate::compile::sample::Family;
use crate::lang::ir::Spec;
use crate::progress::Progress;
use crate::similarity::Measure;

/// Everything `congruity compare` can be asked.
#[derive(Debug, Clone)]
pub struct CompareSettings {
    /// Interpretations or pipelines to sample (empty: every pipeline of the spec, or every
    /// interpretation when it has no pipeline; none at all when only models are compared and
    /// `--interpretations` is not given).
    pub interpretations: Vec<String>,
    /// Model directories (each one pool: a model, or a directory of models).
    pub models: Vec<PathBuf>,
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
    /// Write every sampled implementation under this directory.
    pub keep_models: Option<PathBuf>,
    pub confidence: f64,
    pub interval: IntervalMethod,
    /// Show progress on stderr.
    pub progress: bool,
}

impl Default for CompareSettings {
    fn default() -> Self {
        Self {
            interpretations: Vec::new(),
            models: Vec::new(),
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
            keep_models: None,
            confidence: 0.95,
            interval: IntervalMethod::ClopperPearson,
            progress: false,
        }
    }
}

/// Errors of a comparison.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CompareError {
    #[error("cannot load {}", path.display())]
    #[diagnostic(code(congruity::compare::spec))]
    Spec {
        path: PathBuf,
        #[source]
        #[diagnostic_source]
        source: crate::lang::Report,
    },
    #[error("{0}")]
    #[diagnostic(code(congruity::compare::settings))]
    Settings(String),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Pool(Box<PoolError>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Inputs(Box<InputError>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Equivalence(Box<EquivalenceError>),
}

impl From<PoolError> for CompareError {
    fn from(e: PoolError) -> Self {
        CompareError::Pool(Box::new(e))
    }
}

impl From<InputError> for CompareError {
    fn from(e: InputError) -> Self {
        CompareError::Inputs(Box::new(e))
    }
}

impl From<EquivalenceError> for CompareError {
    fn from(e: EquivalenceError) -> Self {
        CompareError::Equivalence(Box::new(e))
    }
}

/// A spec file and its hash.
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
    /// Heads patched per implementation, e.g. `blocks.3.attn.hook_z[0]`.
    pub patched_heads: Vec<Vec<String>>,
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

/// A stable 64-bit hash of a name (first 8 bytes of its SHA-256).
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

fn note(show: bool, msg: &str) {
    if show {
        eprintln!("{msg}");
    }
}

/// Elapsed wall time since the start of the run, for progress notes (stderr only: timings never
/// enter the report).
fn since(start: std::time::Instant) -> String {
    format!("[{:.1}s]", start.elapsed().as_secs_f64())
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

fn default_targets(spec: &Spec) -> Vec<String> {
    if spec.pipelines.is_empty() {
        spec.programs.keys().cloned().collect()
    } else {
        spec.pipelines.keys().cloned().collect()
    }
}

/// Computes every representation of `pools` (in parallel, with a progress bar), so that failures
/// surface before any test and the tests only compute fits.
fn materialise(
    pools: &[&dyn ImplementationSource],
    show: bool,
    what: &str,
) -> Result<(), CompareError> {
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
                    message: e.0,
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

fn widths(pool: &dyn ImplementationSource) -> Result<[usize; 2], CompareError> {
    let mut lo = usize::MAX;
    let mut hi = 0;
    for i in 0..pool.count() {
        let r = pool
            .representation(i)
            .map_err(|e| EquivalenceError::Source {
                label: pool.label().to_owned(),
                index: i,
                message: e.0,
            })?;
        lo = lo.min(r.n_features());
        hi = hi.max(r.n_features());
    }
    Ok([if lo == usize::MAX { 0 } else { lo }, hi])
}

/// Runs a comparison.
pub fn compare(spec_path: &Path, s: &CompareSettings) -> Result<CompareReport, CompareError> {
    let show = s.progress;
    let start = std::time::Instant::now();
    if s.samples == 0 {
        return Err(CompareError::Settings(
            "--samples must be at least 1".into(),
        ));
    }
    let loaded = crate::lang::load_all(spec_path).map_err(|source| CompareError::Spec {
        path: spec_path.to_path_buf(),
        source,
    })?;
    let spec = loaded.spec;
    let files: Vec<SpecFile> = loaded
        .files
        .iter()
        .map(|f| SpecFile {
            path: f.source.name.to_string(),
            sha256: Sha256::digest(f.source.text.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        })
        .collect();

    let names: Vec<String> = if !s.interpretations.is_empty() {
        s.interpretations.clone()
    } else if s.models.is_empty() {
        default_targets(&spec)
    } else {
        Vec::new()
    };
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(CompareError::Settings(format!(
                "`{n}` is listed twice in --interpretations"
            )));
        }
    }
    note(
        show,
        &format!("{} compiling {} target(s)", since(start), names.len()),
    );
    if !names.is_empty() && s.samples < 3 {
        return Err(CompareError::Settings(format!(
            "--samples {} is too few: the selectivity matrix draws three distinct implementations of one interpretation (a, b and c on its diagonal); use at least 3",
            s.samples
        )));
    }
    let mut compiler = Compiler::new(s.seed);
    let targets: Vec<Arc<Target>> = names
        .iter()
        .map(|n| compiler.target(&spec, n).map(Arc::new))
        .collect::<Result<_, _>>()?;

    // The circuit of the intervention test, checked before any expensive work.
    let circuit = match &s.circuit {
        None => None,
        Some(cname) => {
            let circuit = spec.circuits.get(cname).ok_or_else(|| {
                CompareError::Settings(format!(
                    "--circuit `{cname}` is not a circuit of the spec (circuits: {})",
                    spec.circuits.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            let owners: Vec<usize> = targets
                .iter()
                .enumerate()
                .filter(|(_, t)| t.stages.iter().any(|st| st.program == circuit.program))
                .map(|(i, _)| i)
                .collect();
            if owners.is_empty() {
                return Err(CompareError::Settings(format!(
                    "circuit `{cname}` is about `{}`, which no compared interpretation or pipeline runs; add it to --interpretations",
                    circuit.program
                )));
            }
            Some((cname.clone(), circuit.clone(), owners))
        }
    };

    // The inputs: from the chosen task, accepted by every target.
    let task = match &s.task {
        Some(t) => spec.tasks.get(t).cloned().ok_or_else(|| {
            CompareError::Settings(format!(
                "--task `{t}` is not a task of the spec (tasks: {})",
                spec.tasks.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?,
        None => match targets.first() {
            Some(t) => t.task.clone(),
            None if spec.tasks.len() == 1 => spec
                .tasks
                .values()
                .next()
                .cloned()
                .ok_or_else(|| CompareError::Settings("the spec has no task".into()))?,
            None => {
                return Err(CompareError::Settings(format!(
                    "with only --models, say which task's domain the inputs come from with --task (tasks: {})",
                    spec.tasks.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        },
    };
    let seeds = Seeds {
        master: s.seed,
        inputs: derive_seed(s.seed, &[1]),
        selectivity: derive_seed(s.seed, &[3]),
        transfer: derive_seed(s.seed, &[5]),
        corrupted: derive_seed(s.seed, &[6]),
        patched_heads: derive_seed(s.seed, &[7]),
    };
    let accept = |input: &[crate::lang::ir::Value]| -> Result<(), String> {
        for t in &targets {
            t.reference(&spec, input)?;
        }
        Ok(())
    };
    let inputs = Arc::new(InputSet::sample(&task, s.inputs, seeds.inputs, accept)?);
    note(
        show,
        &format!(
            "{} {} inputs from task `{}` ({})",
            since(start),
            inputs.len(),
            task.name,
            inputs.id
        ),
    );

    // Pools.
    let mut sampled: Vec<SampledSource> = Vec::with_capacity(targets.len());
    for t in &targets {
        let traces: Vec<Vec<Vec<crate::lang::ir::Value>>> = inputs
            .inputs
            .iter()
            .map(|i| t.reference(&spec, i))
            .collect::<Result<_, _>>()
            .map_err(CompareError::Settings)?;
        let mut src = SampledSource::new(
            t.clone(),
            s.families.clone(),
            derive_seed(s.seed, &[2, name_hash(&t.name)]),
            s.samples,
            inputs.clone(),
            Arc::new(reference_outputs(&traces)),
            s.representation.clone(),
        );
        if let Some(dir) = &s.keep_models {
            src = src.keep_models(dir);
        }
        sampled.push(src);
    }
    let mut model_pools: Vec<ModelDirSource> = Vec::with_capacity(s.models.len());
    for dir in &s.models {
        let base = model_label(dir);
        let mut label = base.clone();
        let mut k = 2;
        while names.contains(&label) || model_pools.iter().any(|m| m.label() == label) {
            label = format!("{base}#{k}");
            k += 1;
        }
        model_pools.push(ModelDirSource::open(
            dir,
            label,
            inputs.clone(),
            s.representation.clone(),
        )?);
    }
    let interp_refs: Vec<&dyn ImplementationSource> = sampled
        .iter()
        .map(|p| p as &dyn ImplementationSource)
        .collect();
    let model_refs: Vec<&dyn ImplementationSource> = model_pools
        .iter()
        .map(|p| p as &dyn ImplementationSource)
        .collect();
    let all: Vec<&dyn ImplementationSource> =
        interp_refs.iter().chain(&model_refs).copied().collect();
    if all.is_empty() {
        return Err(CompareError::Settings(
            "nothing to compare: give --interpretations or --models".into(),
        ));
    }
    materialise(&all, show, "implementations")?;

    let point = PointTestConfig {
        measure: s.measure.clone(),
        draws: s.draws,
        seed: seeds.selectivity,
        confidence: s.confidence,
        interval: s.interval,
        progress: progress(show, "selectivity fits"),
    };
    let selectivity = if interp_refs.is_empty() {
        None
    } else {
        note(show, &format!("{} selectivity matrix", since(start)));
        Some(selectivity_matrix(
            &interp_refs,
            &SelectivityConfig {
                point: point.clone(),
                replicates: s.bootstraps,
            },
        )?)
    };

    // Models against interpretations.
    let mut model_tests = Vec::new();
    let mut model_verdicts = Vec::new();
    if !model_refs.is_empty() && !interp_refs.is_empty() {
        note(show, &format!("{} model tests", since(start)));
    }
    for (mi, m) in model_refs.iter().enumerate() {
        for (gi, g) in interp_refs.iter().enumerate() {
            let cfg = |kind: u64, other: u64| PointTestConfig {
                seed: derive_seed(s.seed, &[4, mi as u64, gi as u64, kind, other]),
                progress: progress(show, &format!("{} vs {}", m.label(), g.label())),
                ..point.clone()
            };
            let membership = membership_test(*m, *g, &cfg(0, 0))?;
            let mut distinguishable_from = Vec::new();
            let mut all_closer = true;
            for (oi, o) in interp_refs.iter().enumerate() {
                if oi == gi {
                    continue;
                }
                let r = closer_test(*m, *g, *o, &cfg(1, oi as u64))?;
                if r.summary.verdict == Verdict::Distinguishable {
                    distinguishable_from.push(o.label().to_owned());
                } else {
                    all_closer = false;
                }
                model_tests.push(r);
            }
            let rejected = membership.summary.verdict == Verdict::Distinguishable;
            model_verdicts.push(ModelVerdict {
                model: m.label().to_owned(),
                interpretation: g.label().to_owned(),
                congruent: all_closer && !rejected && interp_refs.len() > 1,
                distinguishable_from,
                membership_rejected: rejected,
            });
            model_tests.push(membership);
        }
    }

    note(show, &format!("{} transfer matrix", since(start)));
    let transfer = transfer_matrix(
        &all,
        &TransferConfig {
            measure: s.measure.clone(),
            max_pairs: s.draws,
            seed: seeds.transfer,
            bootstrap: 1000,
            confidence: s.confidence,
            progress: progress(show, "transfer fits"),
        },
    )?;

    let mut intervention = Vec::new();
    if let Some((cname, circuit, owners)) = &circuit {
        for &oi in owners {
            let clean = &sampled[oi];
            let target = clean.target().clone();
            let accept = |input: &[crate::lang::ir::Value]| -> Result<(), String> {
                target.reference(&spec, input).map(|_| ())
            };
            let corrupted = Arc::new(inputs.corrupted(&task, seeds.corrupted, accept)?);
            let plan = PatchPlan::new(
                &target,
                circuit,
                s.patch_heads,
                seeds.patched_heads,
                corrupted,
            )?;
            let patched = clean.patched(plan);
            materialise(&[&patched], show, "patched implementations")?;
            let heads: Vec<Vec<String>> = (0..patched.count())
                .map(|i| {
                    patched.patched_sites(i).map(|sites| {
                        sites
                            .iter()
                            .map(|st| match st.head {
                                Some(h) => format!("{}[{h}]", st.hook),
                                None => st.hook.to_string(),
                            })
                            .collect()
                    })
                })
                .collect::<Result<_, _>>()
                .map_err(|e| EquivalenceError::Source {
                    label: patched.label().to_owned(),
                    index: 0,
                    message: e.0,
                })?;
            for (ti, t) in all.iter().enumerate() {
                let result = intervention_test(
                    clean,
                    &patched,
                    *t,
                    &InterventionConfig {
                        measure: s.measure.clone(),
                        draws: s.draws,
                        seed: derive_seed(s.seed, &[8, oi as u64, ti as u64]),
                        confidence: s.confidence,
                        progress: progress(show, &format!("intervention vs {}", t.label())),
                    },
                )?;
                intervention.push(InterventionReport {
                    circuit: cname.clone(),
                    patched_heads: heads.clone(),
                    result,
                });
            }
        }
    }

    note(show, &format!("{} done", since(start)));
    let mut pools = Vec::new();
    for p in &sampled {
        let t = p.target();
        pools.push(PoolInfo {
            label: p.label().to_owned(),
            kind: if t.is_pipeline {
                "pipeline"
            } else {
                "interpretation"
            },
            count: p.count(),
            stages: t.stages.iter().map(|st| st.program.clone()).collect(),
            dirs: Vec::new(),
            seed: Some(derive_seed(s.seed, &[2, name_hash(&t.name)])),
            features: widths(p)?,
        });
    }
    for m in &model_pools {
        pools.push(PoolInfo {
            label: m.label().to_owned(),
            kind: "models",
            count: m.count(),
            stages: Vec::new(),
            dirs: m.dirs().iter().map(|d| d.display().to_string()).collect(),
            seed: None,
            features: widths(m)?,
        });
    }

    Ok(CompareReport {
        format: "congruity-compare/1",
        spec: files,
        settings: SettingsReport {
            samples: s.samples,
            measure: s.measure.to_string(),
            inputs: s.inputs,
            bootstraps: s.bootstraps,
            draws: s.draws,
            families: s.families.iter().map(|f| f.name().to_string()).collect(),
            representation: s.representation.describe(),
            confidence: s.confidence,
            interval: s.interval,
        },
        seeds,
        inputs: InputsReport {
            id: inputs.id.to_string(),
            task: task.name.clone(),
            count: inputs.len(),
            lengths: inputs.length_histogram(),
        },
        pools,
        selectivity,
        model_tests,
        model_verdicts,
        transfer,
        intervention,
    })
}

fn interval_name(m: IntervalMethod) -> &'static str {
    match m {
        IntervalMethod::Wilson => "Wilson",
        IntervalMethod::ClopperPearson => "Clopper–Pearson",
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Distinguishable => "distinguishable",
        Verdict::NotDistinguished => "not distinguished",
    }
}

impl CompareReport {
    /// The decisive interval of a win summary.
    fn decisive(&self, s: &super::point::WinSummary) -> super::stats::Interval {
        match self.settings.interval {
            IntervalMethod::Wilson => s.wilson,
            IntervalMethod::ClopperPearson => s.clopper_pearson,
        }
    }

    /// The report for people. Same report, same text.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let pct = self.settings.confidence * 100.0;
        let iv = interval_name(self.settings.interval);
        let _ = writeln!(
            o,
            "congruity compare: interpretive equivalence by sampled implementations"
        );
        if let Some(root) = self.spec.last() {
            let _ = writeln!(
                o,
                "spec            {} (sha256 {}; {} imported file(s))",
                root.path,
                &root.sha256[..16],
                self.spec.len() - 1
            );
        }
        let lengths = self
            .inputs
            .lengths
            .iter()
            .map(|(l, c)| format!("{l}:{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            o,
            "inputs          {} from task `{}` (length:count {lengths}); id {}",
            self.inputs.count, self.inputs.task, self.inputs.id
        );
        let _ = writeln!(o, "representation  {}", self.settings.representation);
        let _ = writeln!(o, "measure         {}", self.settings.measure);
        let _ = writeln!(
            o,
            "sampling        K = {} per interpretation; families {}; seed {}",
            self.settings.samples,
            if self.settings.families.is_empty() {
                "none (every implementation is the compiled model)".to_string()
            } else {
                self.settings.families.join(", ")
            },
            self.seeds.master
        );
        let _ = writeln!(
            o,
            "tests           {} bootstraps × {} draws per selectivity cell; {} draws per model / intervention test; {pct}% {iv} intervals",
            self.settings.bootstraps, self.settings.draws, self.settings.draws
        );
        let _ = writeln!(o);
        let w = self
            .pools
            .iter()
            .map(|p| p.label.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(o, "pools");
        for p in &self.pools {
            let what = if p.kind == "models" {
                p.dirs.join(", ")
            } else {
                p.stages.join(" |> ")
            };
            let _ = writeln!(
                o,
                "  {:w$}  {:14}  {:>3} impl.  features {}..{}  {what}",
                p.label, p.kind, p.count, p.features[0], p.features[1]
            );
        }
        if let Some(sel) = &self.selectivity {
            let _ = writeln!(o);
            o.push_str(&sel.to_text());
            let m = sel.labels.len();
            if m > 1 {
                let _ = writeln!(o);
                let _ = writeln!(
                    o,
                    "pairs (all bootstraps pooled; win rate [{pct}% {iv}] in each direction; mean gap = mean of fit(a→b) − fit(a→c))"
                );
                for i in 0..m {
                    for j in (i + 1)..m {
                        let (a, b) = (&sel.cells[i][j].pooled, &sel.cells[j][i].pooled);
                        let (ia, ib) = (self.decisive(a), self.decisive(b));
                        let both = a.verdict == Verdict::Distinguishable
                            && b.verdict == Verdict::Distinguishable;
                        let any = a.verdict == Verdict::Distinguishable
                            || b.verdict == Verdict::Distinguishable;
                        let word = if both {
                            "distinguishable (both directions)"
                        } else if any {
                            "distinguishable (one direction)"
                        } else {
                            "not distinguished"
                        };
                        let _ = writeln!(
                            o,
                            "  {:w$} vs {:w$}  {:.3} [{:.3}, {:.3}] / {:.3} [{:.3}, {:.3}]  mean gap {:.1e} / {:.1e}  {word}",
                            sel.labels[i],
                            sel.labels[j],
                            a.win_rate,
                            ia.lower,
                            ia.upper,
                            b.win_rate,
                            ib.lower,
                            ib.upper,
                            sel.cells[i][j].gap.mean,
                            sel.cells[j][i].gap.mean,
                        );
                    }
                }
            }
        }
        if !self.model_tests.is_empty() {
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "models against interpretations ({} draws each; win rate [{pct}% {iv}])",
                self.settings.draws
            );
            for t in &self.model_tests {
                let i = self.decisive(&t.summary);
                let line = match &t.other {
                    Some(other) => format!(
                        "  {} closer to {} than to {}: fit(m→b) > fit(m→c) in {:.3} [{:.3}, {:.3}] (1 − mean fit {:.2e} vs {:.2e}): {}",
                        t.model,
                        t.own,
                        other,
                        t.summary.win_rate,
                        i.lower,
                        i.upper,
                        1.0 - t.mean_own_fit,
                        1.0 - t.mean_other_fit,
                        verdict_word(t.summary.verdict)
                    ),
                    None => format!(
                        "  {} member of {}: fit(a→b) > fit(m→b) in {:.3} [{:.3}, {:.3}] (1 − mean fit {:.2e} vs {:.2e}): {}",
                        t.model,
                        t.own,
                        t.summary.win_rate,
                        i.lower,
                        i.upper,
                        1.0 - t.mean_own_fit,
                        1.0 - t.mean_other_fit,
                        match t.summary.verdict {
                            Verdict::Distinguishable =>
                                "rejected (distinguishable from the members)",
                            Verdict::NotDistinguished => "not rejected",
                        }
                    ),
                };
                let _ = writeln!(o, "{line}");
            }
            for v in &self.model_verdicts {
                let _ = writeln!(
                    o,
                    "  verdict: {} {} with {}{}",
                    v.model,
                    if v.congruent {
                        "congruent"
                    } else {
                        "NOT congruent"
                    },
                    v.interpretation,
                    if v.distinguishable_from.is_empty() {
                        " (distinguishable from no alternative)".to_string()
                    } else {
                        format!(
                            " (distinguishable from {})",
                            v.distinguishable_from.join(", ")
                        )
                    }
                );
            }
        }
        let _ = writeln!(o);
        o.push_str(&transfer_text(&self.transfer));
        for r in &self.intervention {
            let x = &r.result;
            let i = match self.settings.interval {
                IntervalMethod::Wilson => x.wilson,
                IntervalMethod::ClopperPearson => x.clopper_pearson,
            };
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "intervention: circuit `{}` patched in {} (heads of implementation 0: {})",
                r.circuit,
                x.clean,
                r.patched_heads
                    .first()
                    .map(|h| h.join(" "))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                o,
                "  targets {}: fit(r→t) > fit(r_patched→t) in {:.3} [{:.3}, {:.3}] (mean gap {:.1e}), {} ties; one-sided p = {:.3e} (exact), {:.3e} (z = {:.2}): {}",
                x.targets,
                x.win_rate,
                i.lower,
                i.upper,
                x.mean_gap,
                x.ties,
                x.test.p_exact,
                x.test.p_z,
                x.test.z,
                if x.significant {
                    "relies on what was patched"
                } else {
                    "no evidence it relies on what was patched"
                }
            );
        }
        o
    }

    /// The report as JSON: stable key order, same seed → same bytes.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the report: {e}\"}}"));
        s.push('\n');
        s
    }
}

/// The transfer matrix with five decimals (fits of exact implementations sit close to 1, where
/// three decimals hide the differences the tests act on).
pub fn transfer_text(t: &TransferMatrix) -> String {
    use std::fmt::Write;
    let w = t.labels.iter().map(|l| l.len()).max().unwrap_or(0).max(15);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "transfer: mean fit(row → column) ± sd over implementation pairs; measure {}",
        t.measure
    );
    let _ = write!(o, "{:w$}", "from \\ to");
    for l in &t.labels {
        let _ = write!(o, "  {l:>w$}");
    }
    let _ = writeln!(o);
    for (i, row) in t.cells.iter().enumerate() {
        let _ = write!(o, "{:w$}", t.labels[i]);
        for c in row {
            let e = match &c.fit {
                Some(s) => format!("{:.5}±{:.5}", s.mean, s.sd),
                None => "—".into(),
            };
            let _ = write!(o, "  {e:>w$}");
        }
        let _ = writeln!(o);
    }
    let near_one = t
        .cells
        .iter()
        .flatten()
        .any(|c| c.fit.is_some_and(|f| f.mean > 0.999));
    if near_one {
        let _ = writeln!(o, "1 − mean fit (the same cells, where fits crowd 1):");
        let _ = write!(o, "{:w$}", "from \\ to");
        for l in &t.labels {
            let _ = write!(o, "  {l:>w$}");
        }
        let _ = writeln!(o);
        for (i, row) in t.cells.iter().enumerate() {
            let _ = write!(o, "{:w$}", t.labels[i]);
            for c in row {
                let e = match &c.fit {
                    Some(s) => format!("{:.2e}", 1.0 - s.mean),
                    None => "—".into(),
                };
                let _ = write!(o, "  {e:>w$}");
            }
            let _ = writeln!(o);
        }
    }
    o
}
