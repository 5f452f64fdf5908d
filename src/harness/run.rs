//! The driver: specs → units → validated models → verdicts, in parallel, in a fixed order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::checks::{CheckJob, ReadyModel, run_check_job, run_proof};
use super::models::{dir_hashes, ensure_compiled, file_sha256, model_name};
use super::report::{CheckReport, FileHash, ModelInfo, SuiteReport};
use super::{HarnessError, TestOptions};
use crate::experiment::circuit::misfit;
use crate::lang::ast::Span;
use crate::lang::ir::{Check, Expectation, ModelRef, SourceRef, Spec};
use crate::lang::{self, ErrorKind, LangError, Report, SourceFile};
use crate::similarity::Measure;

/// One spec file of a run.
#[derive(Debug, Clone)]
pub struct SpecEntry {
    /// The path as the run names it (in reports).
    pub label: String,
    pub path: PathBuf,
    pub sha256: String,
    pub spec: Spec,
}

/// What a unit runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitWhat {
    /// A check, by name.
    Check(String),
    /// A proof, by position in the spec's `proofs`.
    Prove(usize),
}

/// A check or proof of the run.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Position among all units of the specs (before filter and shard).
    pub index: usize,
    /// Which spec (index into [`Plan::specs`]).
    pub spec: usize,
    pub what: UnitWhat,
    /// `SPEC::NAME`.
    pub id: String,
}

/// The specs of a run and the units it selected.
#[derive(Debug, Clone)]
pub struct Plan {
    pub specs: Vec<SpecEntry>,
    pub units: Vec<Unit>,
}

fn matches(filter: &str, id: &str, name: &str) -> bool {
    if filter.contains(['*', '?', '[', '{']) {
        match globset::Glob::new(filter) {
            Ok(g) => {
                let m = g.compile_matcher();
                m.is_match(id) || m.is_match(name)
            }
            Err(_) => id.contains(filter),
        }
    } else {
        id.contains(filter)
    }
}

fn entry(label: String, path: PathBuf, spec: Spec) -> SpecEntry {
    let sha256 = file_sha256(&path).unwrap_or_default();
    SpecEntry {
        label,
        path,
        sha256,
        spec,
    }
}

/// Loads the specs under `paths` and lists their units: per file (in path order), its checks by
/// name, then its proofs as written; then `--filter` and `--shard` select.
pub fn plan(paths: &[PathBuf], opts: &TestOptions) -> Result<Plan, HarnessError> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        match lang::collect_specs(p) {
            Ok(found) if found.is_empty() => return Err(HarnessError::NoSpecs { path: p.clone() }),
            Ok(found) => {
                for f in found {
                    if !files.contains(&f) {
                        files.push(f);
                    }
                }
            }
            Err(e) => problems.push(e),
        }
    }
    let mut specs = Vec::new();
    for f in &files {
        match lang::load(f) {
            Ok(spec) => specs.push(entry(f.display().to_string(), f.clone(), spec)),
            Err(report) => problems.extend(report.errors),
        }
    }
    if !problems.is_empty() {
        return Err(HarnessError::Invalid(Report::new(problems)));
    }
    let mut units = Vec::new();
    let mut index = 0;
    let mut matched = 0;
    for (si, e) in specs.iter().enumerate() {
        let mut push = |what: UnitWhat, name: &str| {
            let id = format!("{}::{name}", e.label);
            let selected = opts.filter.as_deref().is_none_or(|f| matches(f, &id, name));
            matched += usize::from(selected);
            if selected && opts.shard.is_none_or(|s| s.holds(index)) {
                units.push(Unit {
                    index,
                    spec: si,
                    what,
                    id,
                });
            }
            index += 1;
        };
        for name in e.spec.checks.keys() {
            push(UnitWhat::Check(name.clone()), name);
        }
        for (k, p) in e.spec.proofs.iter().enumerate() {
            push(UnitWhat::Prove(k), &p.name);
        }
    }
    // A filter that selects nothing is almost always a typo: a run that tested nothing must not
    // read as a pass. (A shard may be empty: N can exceed the number of units.)
    if let Some(f) = &opts.filter
        && matched == 0
    {
        return Err(HarnessError::NothingMatches { filter: f.clone() });
    }
    Ok(Plan { specs, units })
}

/// The source text a [`SourceRef`] points into, for a diagnostic there.
fn located(
    at: Option<&SourceRef>,
    message: String,
    label: &str,
    help: Option<String>,
) -> LangError {
    let mut e = match at.and_then(|r| {
        let text =
            crate::files::read_text(&r.file, crate::files::MAX_SPEC_BYTES, "a spec file").ok()?;
        Some((SourceFile::new(r.file.display().to_string(), text), r))
    }) {
        Some((file, r)) => LangError::at(
            ErrorKind::Check,
            &file,
            Span {
                start: r.start,
                end: r.end,
            },
            message,
            label,
        ),
        None => LangError::new(ErrorKind::Check, message),
    };
    if let Some(h) = help {
        e = e.with_help(h);
    }
    e
}

/// The models and compiled references of the checks to run, keyed by (spec, check).
#[derive(Default)]
struct Prepared {
    models: BTreeMap<(usize, String), ReadyModel>,
    references: BTreeMap<(usize, String), Vec<(String, PathBuf)>>,
}

fn full_message(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(&format!(": {t}"));
        }
        src = inner.source();
    }
    s
}

/// The seed a compiled model is built with: `--seed`, else the one `compiled(I, seed S)` gives,
/// else 0 (the compiler's seed only draws its domain check's sample on large domains).
fn compile_seed(opts: &TestOptions, seed: Option<u64>) -> u64 {
    opts.seed.or(seed).unwrap_or(0)
}

/// Resolves, compiles, loads and checks every model the selected checks use; every problem is a
/// diagnostic at the line that causes it.
fn prepare(
    plan: &Plan,
    opts: &TestOptions,
    say: &dyn Fn(String),
) -> Result<Prepared, HarnessError> {
    let mut out = Prepared::default();
    let mut problems: Vec<LangError> = Vec::new();
    let mut loaded: BTreeMap<PathBuf, (Arc<crate::model::LoadedModel>, Vec<FileHash>)> =
        BTreeMap::new();
    for u in &plan.units {
        let UnitWhat::Check(name) = &u.what else {
            continue;
        };
        let e = &plan.specs[u.spec];
        let check = &e.spec.checks[name];
        let base = e.path.parent().unwrap_or(Path::new("."));
        // Compiled references of `similarity`.
        let mut refs = Vec::new();
        for x in &check.expectations {
            if let Expectation::Similarity {
                measure, program, ..
            } = &x.goal
            {
                if let Err(err) = measure.parse::<Measure>() {
                    problems.push(located(
                        x.source.as_ref(),
                        format!("check `{name}`: {err}"),
                        "this measure",
                        None,
                    ));
                }
                if let Some(p) = e.spec.programs.get(program) {
                    say(format!("{}: compile {program}", u.id));
                    match ensure_compiled(&opts.cache_dir, p, compile_seed(opts, None)) {
                        Ok((dir, _)) => refs.push((program.clone(), dir)),
                        Err(err) => problems.push(located(
                            x.source.as_ref(),
                            format!(
                                "check `{name}`: `{program}` does not compile: {}",
                                full_message(&err)
                            ),
                            "compared with this interpretation",
                            None,
                        )),
                    }
                }
            }
        }
        out.references.insert((u.spec, name.clone()), refs);
        let Some(model) = &check.model else {
            continue;
        };
        let dir = match model {
            ModelRef::Dir(p) => {
                let dir = lang::normalize(&base.join(p));
                if !dir.is_dir() {
                    problems.push(located(
                        check.model_source.as_ref(),
                        format!(
                            "check `{name}`: the model directory {} does not exist",
                            dir.display()
                        ),
                        "this model",
                        Some(format!(
                            "the path is relative to {}; make the model first (`congruity compile ...`), or let the harness compile it: `model compiled(INTERPRETATION)`",
                            e.label
                        )),
                    ));
                    continue;
                }
                dir
            }
            ModelRef::Compiled { program, seed } => {
                let Some(p) = e.spec.programs.get(program) else {
                    continue;
                };
                say(format!("{}: compile {program}", u.id));
                match ensure_compiled(&opts.cache_dir, p, compile_seed(opts, *seed)) {
                    Ok((dir, _)) => dir,
                    Err(err) => {
                        problems.push(located(
                            check.model_source.as_ref(),
                            format!(
                                "check `{name}`: `{program}` does not compile: {}",
                                full_message(&err)
                            ),
                            "this model",
                            None,
                        ));
                        continue;
                    }
                }
            }
        };
        if !loaded.contains_key(&dir) {
            say(format!("{}: load {}", u.id, dir.display()));
            let m = match crate::model::load(&dir, &candle_core::Device::Cpu) {
                Ok(m) => m,
                Err(err) => {
                    problems.push(located(
                        check.model_source.as_ref(),
                        format!(
                            "check `{name}`: the model in {} does not load: {}",
                            dir.display(),
                            full_message(&err)
                        ),
                        "this model",
                        None,
                    ));
                    continue;
                }
            };
            let hashes = match dir_hashes(&dir) {
                Ok(h) => h,
                Err(err) => {
                    problems.push(located(
                        check.model_source.as_ref(),
                        format!("check `{name}`: cannot read {}: {err}", dir.display()),
                        "this model",
                        None,
                    ));
                    continue;
                }
            };
            loaded.insert(dir.clone(), (Arc::new(m), hashes));
        }
        let (m, hashes) = &loaded[&dir];
        problems.extend(fit_problems(&e.spec, check, m));
        out.models.insert(
            (u.spec, name.clone()),
            ReadyModel {
                info: ModelInfo {
                    name: model_name(model),
                    dir: dir.display().to_string(),
                    files: hashes.clone(),
                },
                dir: dir.clone(),
                loaded: m.clone(),
            },
        );
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(HarnessError::Invalid(Report::new(problems)))
    }
}

/// What of a check cannot work on its model: circuit sites it lacks, outputs it cannot decode.
fn fit_problems(spec: &Spec, check: &Check, m: &crate::model::LoadedModel) -> Vec<LangError> {
    let mut out = Vec::new();
    for x in &check.expectations {
        match &x.goal {
            Expectation::Iia { circuit, .. }
            | Expectation::Faithful { circuit, .. }
            | Expectation::Minimal { circuit, .. } => {
                let Some(c) = spec.circuits.get(circuit) else {
                    continue;
                };
                if let Some(reason) = misfit(c, &m.transformer) {
                    out.push(located(
                        x.source.as_ref(),
                        format!(
                            "check `{}`: circuit `{circuit}` does not fit the model in {}: {reason}",
                            check.name,
                            m.dir.display()
                        ),
                        "this circuit",
                        Some(format!(
                            "`congruity compile SPEC --out DIR --layout` prints where the compiler put each variable; `congruity inspect --model {}` lists the model's hooks",
                            m.dir.display()
                        )),
                    ));
                }
                if m.sidecar.is_none() {
                    out.push(no_sidecar(check, x.source.as_ref(), m));
                }
            }
            Expectation::Implements(_) | Expectation::Accuracy { .. } if m.sidecar.is_none() => {
                out.push(no_sidecar(check, x.source.as_ref(), m));
            }
            _ => {}
        }
    }
    out
}

fn no_sidecar(check: &Check, at: Option<&SourceRef>, m: &crate::model::LoadedModel) -> LangError {
    located(
        at,
        format!(
            "check `{}`: the model in {} has no congruity.json, so its outputs cannot be read as the task's values",
            check.name,
            m.dir.display()
        ),
        "needs decoded outputs",
        Some("a model congruity compiled, sampled or imported from tracr carries one; see model::sidecar for writing one by hand".into()),
    )
}

/// A run's report and, when asked for, its figures (file name, SVG).
pub struct Outcome {
    pub report: SuiteReport,
    pub figures: Vec<(String, String)>,
}

/// Validates and runs a plan.
pub fn run_plan(plan: &Plan, opts: &TestOptions, figures: bool) -> Result<Outcome, HarnessError> {
    let progress = if opts.progress {
        crate::progress::Progress::shown("congruity test")
    } else {
        crate::progress::Progress::hidden()
    };
    let bar = progress.bar(plan.units.len() as u64, "units");
    let prepared =
        prepare(plan, opts, &|m| bar.set_message(m)).inspect_err(|_| bar.finish_and_clear())?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .build()
        .map_err(|e| HarnessError::Threads {
            jobs: opts.jobs,
            reason: e.to_string(),
        })?;
    let results: Vec<(CheckReport, Vec<(String, String)>)> = pool.install(|| {
        plan.units
            .par_iter()
            .map(|u| {
                let e = &plan.specs[u.spec];
                let stage = |what: &str| bar.set_message(format!("{}: {what}", u.id));
                let out = match &u.what {
                    UnitWhat::Check(name) => {
                        let key = (u.spec, name.clone());
                        let job = CheckJob {
                            index: u.index,
                            label: &e.label,
                            path: &e.path,
                            spec: &e.spec,
                            check: &e.spec.checks[name],
                            model: prepared.models.get(&key).cloned(),
                            references: prepared.references.get(&key).cloned().unwrap_or_default(),
                        };
                        let (report, estimate) = run_check_job(&job, opts, &stage);
                        let figs = match (figures, estimate) {
                            (true, Some(r)) => {
                                super::plots::figures(&e.label, name, &r).unwrap_or_default()
                            }
                            _ => Vec::new(),
                        };
                        (report, figs)
                    }
                    UnitWhat::Prove(k) => {
                        stage("prove");
                        (
                            run_proof(u.index, &e.label, &e.spec, &e.spec.proofs[*k], opts),
                            Vec::new(),
                        )
                    }
                };
                bar.inc(1);
                out
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut units = Vec::new();
    let mut figs = Vec::new();
    for (r, f) in results {
        units.push(r);
        figs.extend(f);
    }
    let specs = plan
        .specs
        .iter()
        .map(|s| FileHash {
            path: s.label.clone(),
            sha256: s.sha256.clone(),
        })
        .collect();
    Ok(Outcome {
        report: SuiteReport::assemble(opts.seed, opts.filter.clone(), opts.shard, specs, units),
        figures: figs,
    })
}

/// Runs every check and proof of the specs under `paths`.
pub fn run_paths(paths: &[PathBuf], opts: &TestOptions) -> Result<SuiteReport, HarnessError> {
    let p = plan(paths, opts)?;
    Ok(run_plan(&p, opts, false)?.report)
}

/// Runs one check of a loaded spec (a research repository's `cargo test`). Its model directory
/// is relative to the file the check is written in; compiled models are cached in
/// `opts.cache_dir`.
pub fn run_check(spec: &Spec, name: &str, opts: &TestOptions) -> Result<CheckReport, HarnessError> {
    let Some(check) = spec.checks.get(name) else {
        let names: Vec<&str> = spec.checks.keys().map(String::as_str).collect();
        return Err(HarnessError::UnknownCheck {
            name: name.to_string(),
            available: if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            },
        });
    };
    let path = check
        .source
        .as_ref()
        .map(|s| s.file.as_ref().clone())
        .unwrap_or_default();
    let plan = Plan {
        specs: vec![entry(path.display().to_string(), path, spec.clone())],
        units: vec![Unit {
            index: 0,
            spec: 0,
            what: UnitWhat::Check(name.to_string()),
            id: name.to_string(),
        }],
    };
    let mut out = run_plan(&plan, opts, false)?;
    Ok(out.report.units.remove(0))
}
