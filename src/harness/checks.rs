//! One unit run: a check's expectations against its model and the estimator, or one proof.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::TestOptions;
use super::behaviour::{Behaviour, behaviour, iia};
use super::estimate::{self, Judged};
use super::report::{
    CheckReport, CheckSettings, Counterexample, ExpectationResult, Figure, ModelInfo, Status,
    UnitKind,
};
use crate::equivalence::ImplementationSource;
use crate::equivalence::point::Epsilon;
use crate::equivalence::{Proportion, derive_seed};
use crate::experiment::compare::{CompareReport, CompareSettings, compare};
use crate::experiment::extract::RepresentationSpec;
use crate::experiment::inputs::InputSet;
use crate::experiment::sampled::{GivenPool, ModelDirSource};
use crate::intervene::{Ablation, Component, FaithfulnessRun, kept_by};
use crate::lang::eval::eval_output;
use crate::lang::ir::{Bound, Check, Comparison, Expectation, ImplementationFamily, Proof, Spec};
use crate::model::LoadedModel;
use crate::similarity::Measure;
use crate::smt::{self, ProveOptions, Verdict};

/// The confidence of every interval the harness reports.
pub const CONFIDENCE: f64 = 0.95;

/// A check's model, resolved and loaded.
#[derive(Clone)]
pub struct ReadyModel {
    pub info: ModelInfo,
    pub dir: PathBuf,
    pub loaded: Arc<LoadedModel>,
}

/// What a check needs to run.
pub struct CheckJob<'a> {
    pub index: usize,
    /// The spec file as the run names it.
    pub label: &'a str,
    pub path: &'a Path,
    pub spec: &'a Spec,
    pub check: &'a Check,
    pub model: Option<ReadyModel>,
    /// Compiled models of the interpretations `similarity` compares with, by name.
    pub references: Vec<(String, PathBuf)>,
}

/// The seed a check runs with: the run's `--seed`, else the check's, else 0.
pub fn check_seed(check: &Check, opts: &TestOptions) -> u64 {
    opts.seed.or(check.seed).unwrap_or(0)
}

fn settings(check: &Check, opts: &TestOptions) -> CheckSettings {
    CheckSettings {
        samples: check.samples.map_or(opts.samples, |s| s as usize),
        family: match check.family {
            ImplementationFamily::Compiled => None,
            ImplementationFamily::Trained => Some(ImplementationFamily::Trained.name().into()),
        },
        inputs: opts.inputs,
        bootstraps: opts.bootstraps,
        draws: opts.draws,
        epsilon: match check.epsilon {
            None => "data".into(),
            Some(e) => format!("{e}"),
        },
        iia_pairs: opts.iia_pairs,
        confidence: CONFIDENCE,
    }
}

fn bound_text(b: &Bound) -> String {
    match *b {
        Bound::Cmp { cmp, value } => {
            let op = match cmp {
                Comparison::Ge => ">=",
                Comparison::Gt => ">",
                Comparison::Le => "<=",
                Comparison::Lt => "<",
                Comparison::Eq => "==",
                Comparison::Ne => "!=",
                Comparison::True | Comparison::False => "?",
            };
            format!("{op} {value}")
        }
        Bound::Approx { value, tolerance } => format!("≈ {value} ± {tolerance}"),
    }
}

fn negated(b: &Bound) -> String {
    match *b {
        Bound::Cmp { cmp, value } => {
            let op = match cmp {
                Comparison::Ge => "<",
                Comparison::Gt => "<=",
                Comparison::Le => ">",
                Comparison::Lt => ">=",
                _ => "vs",
            };
            format!("{op} {value}")
        }
        Bound::Approx { value, tolerance } => format!("outside {value} ± {tolerance}"),
    }
}

/// The verdict of a figure against its bound, and the text `0.983 [0.975, 0.990] >= 0.95`. A
/// figure estimated from draws (with an interval) passes a one-sided bound only when the whole
/// interval satisfies it and fails only when none of it does; in between the evidence does not
/// decide (`unknown`). A tolerance bound (`~=`) is a numeric snapshot and reads the point value.
fn decide(b: &Bound, value: f64, interval: Option<[f64; 2]>) -> (Status, String) {
    let holds = b.holds(value);
    let relation = if holds { bound_text(b) } else { negated(b) };
    let mut text = format!("{value:.3}");
    if let Some([lo, hi]) = interval {
        text.push_str(&format!(" [{lo:.3}, {hi:.3}]"));
    }
    text.push_str(&format!(" {relation}"));
    match (b, interval) {
        (Bound::Cmp { .. }, Some([lo, hi])) => {
            let (l, h) = (b.holds(lo), b.holds(hi));
            if l && h {
                (Status::Pass, text)
            } else if !l && !h {
                (Status::Fail, text)
            } else {
                (
                    Status::Unknown,
                    format!(
                        "{text}, but the 95% interval straddles {} (more draws would decide)",
                        bound_text(b)
                    ),
                )
            }
        }
        _ => (if holds { Status::Pass } else { Status::Fail }, text),
    }
}

fn result(expectation: &str, status: Status, summary: String) -> ExpectationResult {
    ExpectationResult {
        expectation: expectation.to_string(),
        status,
        summary,
        figure: None,
        details: Vec::new(),
        counterexample: None,
        seed: None,
    }
}

fn error(expectation: &str, why: String) -> ExpectationResult {
    result(expectation, Status::Error, why)
}

/// Counts as a figure: exact (whole domain) or with its Clopper–Pearson interval.
fn proportion_figure(name: &str, correct: usize, total: usize, exact: bool) -> Figure {
    let p = Proportion::new(correct, total);
    let ci = p.clopper_pearson(CONFIDENCE);
    Figure {
        name: name.to_string(),
        value: p.rate(),
        interval: if exact {
            None
        } else {
            Some([ci.lower, ci.upper])
        },
        confidence: if exact { None } else { Some(CONFIDENCE) },
        n: Some(total),
    }
}

/// Memoised per check: one run of the domain per interpretation.
struct Behaviours<'a> {
    model: &'a LoadedModel,
    seed: u64,
    runs: Vec<(String, Result<Behaviour, String>)>,
}

impl Behaviours<'_> {
    fn get(&mut self, spec: &Spec, program: &str) -> &Result<Behaviour, String> {
        if let Some(i) = self.runs.iter().position(|(p, _)| p == program) {
            return &self.runs[i].1;
        }
        let r = match spec.programs.get(program) {
            Some(p) => behaviour(self.model, p, self.seed),
            None => Err(format!("`{program}` is not an interpretation of the spec")),
        };
        self.runs.push((program.to_string(), r));
        &self.runs.last().expect("just pushed").1
    }
}

fn implements(text: &str, b: &Behaviour, program: &str) -> ExpectationResult {
    let status = if b.correct == b.total {
        Status::Pass
    } else {
        Status::Fail
    };
    let coverage = b.domain.describe();
    let summary = if status == Status::Pass {
        format!("outputs equal {program}'s on {coverage}")
    } else {
        format!(
            "{} of {} inputs differ from {program}'s outputs ({coverage})",
            b.total - b.correct,
            b.total
        )
    };
    let mut r = result(text, status, summary);
    r.figure = Some(proportion_figure(
        "accuracy",
        b.correct,
        b.total,
        b.domain.exhaustive,
    ));
    r.counterexample = b.first_wrong.clone();
    r.seed = b.domain.seed;
    r
}

fn accuracy(text: &str, b: &Behaviour, bound: &Bound) -> ExpectationResult {
    let fig = proportion_figure("accuracy", b.correct, b.total, b.domain.exhaustive);
    let (status, verdict) = decide(bound, fig.value, fig.interval);
    let mut summary = format!("accuracy = {verdict}");
    if status == Status::Fail
        && let Some(c) = &b.first_wrong
    {
        summary.push_str(&format!(", first wrong input {}", c.text()));
    }
    let mut r = result(text, status, summary);
    r.details.push(b.domain.describe());
    r.figure = Some(fig);
    r.counterexample = b.first_wrong.clone().filter(|_| status != Status::Pass);
    r.seed = b.domain.seed;
    r
}

/// What every expectation of one check shares.
struct Ctx<'a> {
    job: &'a CheckJob<'a>,
    seed: u64,
    opts: &'a TestOptions,
}

fn iia_result(
    text: &str,
    cx: &Ctx<'_>,
    model: &LoadedModel,
    circuit: &str,
    bound: &Bound,
) -> ExpectationResult {
    let (job, seed, opts) = (cx.job, cx.seed, cx.opts);
    let Some(c) = job.spec.circuits.get(circuit) else {
        return error(text, format!("`{circuit}` is not a circuit of the spec"));
    };
    let Some(program) = job.spec.programs.get(&c.program) else {
        return error(
            text,
            format!("`{}` is not an interpretation of the spec", c.program),
        );
    };
    let out = match iia(model, program, c, opts.iia_pairs, seed) {
        Ok(o) => o,
        Err(why) => return error(text, why),
    };
    if out.total == 0 {
        return result(
            text,
            Status::Unknown,
            "no interchange has a defined counterfactual".into(),
        );
    }
    let fig = proportion_figure("iia", out.correct, out.total, false);
    let (status, verdict) = decide(bound, fig.value, fig.interval);
    let mut summary = format!("iia = {verdict}, {} interchanges", out.total);
    if status == Status::Fail
        && let Some(cx) = &out.first_wrong
    {
        summary.push_str(&format!(", first wrong {}", cx.text()));
    }
    let mut r = result(text, status, summary);
    for v in &out.variables {
        let mut line = format!(
            "{}: {}/{} = {:.3}",
            v.variable,
            v.correct,
            v.total,
            if v.total == 0 {
                0.0
            } else {
                v.correct as f64 / v.total as f64
            }
        );
        if v.undefined > 0 {
            line.push_str(&format!(
                " ({} pairs left out: the interpretation is undefined under the interchange)",
                v.undefined
            ));
        }
        r.details.push(line);
    }
    r.details
        .push(format!("bases and sources from {}", out.coverage));
    r.figure = Some(fig);
    r.counterexample = out.first_wrong.filter(|_| status != Status::Pass);
    r.seed = Some(seed);
    r
}

fn similarity_result(
    text: &str,
    cx: &Ctx<'_>,
    model: &ReadyModel,
    measure: &str,
    program: &str,
    bound: &Bound,
) -> ExpectationResult {
    let (job, seed, opts) = (cx.job, cx.seed, cx.opts);
    let m: Measure = match measure.parse() {
        Ok(m) => m,
        Err(e) => return error(text, format!("{e}")),
    };
    let Some(p) = job.spec.programs.get(program) else {
        return error(
            text,
            format!("`{program}` is not an interpretation of the spec"),
        );
    };
    let Some((_, reference)) = job.references.iter().find(|(n, _)| n == program) else {
        return error(text, format!("`{program}` was not compiled"));
    };
    let input_seed = derive_seed(seed, &[3]);
    let inputs = match InputSet::sample(&p.task, opts.inputs, input_seed, |x| {
        eval_output(p, x)
            .map(|_| ())
            .map_err(|e| crate::experiment::ExperimentError::Input {
                input: 0,
                reason: e.to_string(),
            })
    }) {
        Ok(i) => Arc::new(i),
        Err(e) => return error(text, e.to_string()),
    };
    let rep = |dir: &Path, label: &str| {
        ModelDirSource::open(
            dir,
            label.to_string(),
            inputs.clone(),
            RepresentationSpec::default(),
        )
        .map_err(|e| e.to_string())
        .and_then(|s| s.representation(0).map_err(|e| e.to_string()))
    };
    let (x, y) = match (rep(&model.dir, "model"), rep(reference, program)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return error(text, e),
    };
    let score = match m.compute(x.matrix(), y.matrix()) {
        Ok(s) => s,
        Err(e) => return error(text, e.to_string()),
    };
    let value = score.value();
    let (status, verdict) = decide(bound, value, None);
    let mut r = result(
        text,
        status,
        format!("{measure} = {verdict} (model → compiled {program})"),
    );
    r.details.push(format!("measure: {m}"));
    r.details.push(format!(
        "{} inputs of {} drawn with seed {input_seed}; representation: {}",
        inputs.len(),
        p.task.name,
        RepresentationSpec::default().describe()
    ));
    if !score.x_removed.is_empty() || !score.y_removed.is_empty() {
        r.details.push(format!(
            "degenerate columns left out: {} of the model's, {} of the compiled model's",
            score.x_removed.removed.len(),
            score.y_removed.removed.len()
        ));
    }
    r.figure = Some(Figure {
        name: measure.to_string(),
        value,
        interval: None,
        confidence: None,
        n: Some(inputs.len()),
    });
    r.seed = Some(input_seed);
    r
}

/// The inputs of `program`'s domain as `model` reads them.
fn encoded_domain(
    model: &LoadedModel,
    program: &crate::lang::ir::Program,
    seed: u64,
) -> Result<(Vec<Vec<u32>>, crate::compile::check::Domain), String> {
    let sc = model
        .sidecar
        .as_ref()
        .ok_or("the model has no congruity.json")?;
    let dom = crate::compile::check::domain(&program.task, seed).map_err(|e| e.to_string())?;
    let rows = dom
        .inputs
        .iter()
        .map(|x| crate::experiment::chain::encode(sc, x).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, dom))
}

/// The symbols of a row of token ids (BOS dropped), as an input is written.
fn row_text(sc: &crate::model::Sidecar, row: &[u32]) -> String {
    row[sc.prefix_len().min(row.len())..]
        .iter()
        .map(|&i| {
            sc.input
                .tokens
                .get(i as usize)
                .cloned()
                .unwrap_or_else(|| i.to_string())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The components a circuit keeps on `model`, and each declared site's own (site text, kept).
fn circuit_components(
    c: &crate::lang::ir::Circuit,
    model: &LoadedModel,
) -> Result<Vec<(String, BTreeSet<Component>)>, String> {
    let sites = crate::experiment::circuit::declared_sites(c).map_err(|e| e.to_string())?;
    let mut out: Vec<(String, BTreeSet<Component>)> = Vec::new();
    for s in &sites {
        let name = crate::experiment::circuit::spec_name(s);
        if out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        out.push((name, kept_by(s, &model.transformer).into_iter().collect()));
    }
    Ok(out)
}

/// (Input, partner) pairs a resample ablation aims for, spread over rounds of partners.
const RESAMPLE_PAIRS: usize = 2000;

/// `faithful(C, ablation)` and `minimal(C, ablation)`.
fn circuit_score(
    text: &str,
    cx: &Ctx<'_>,
    model: &ReadyModel,
    circuit: &str,
    ablation: &str,
    bound: &Bound,
    minimal: bool,
) -> ExpectationResult {
    let (job, seed) = (cx.job, cx.seed);
    let Some(c) = job.spec.circuits.get(circuit) else {
        return error(text, format!("`{circuit}` is not a circuit of the spec"));
    };
    let Some(program) = job.spec.programs.get(&c.program) else {
        return error(
            text,
            format!("`{}` is not an interpretation of the spec", c.program),
        );
    };
    let ablation: Ablation = match ablation.parse() {
        Ok(a) => a,
        Err(e) => return error(text, e),
    };
    let m = &model.loaded;
    let Some(sc) = m.sidecar.as_ref() else {
        return error(text, "the model has no congruity.json".into());
    };
    let (rows, dom) = match encoded_domain(m, program, seed) {
        Ok(x) => x,
        Err(e) => return error(text, e),
    };
    let partner_seed = derive_seed(seed, &[4]);
    // Resample ablation averages over (input, partner) pairs: enough partners per input for
    // about RESAMPLE_PAIRS pairs in all.
    let rounds = RESAMPLE_PAIRS.div_ceil(rows.len().max(1)).clamp(1, 64);
    let run = match FaithfulnessRun::new(&m.transformer, sc, &rows, partner_seed, rounds) {
        Ok(r) => r,
        Err(e) => return error(text, e.to_string()),
    };
    let sites = match circuit_components(c, m) {
        Ok(s) => s,
        Err(e) => return error(text, e),
    };
    let kept: BTreeSet<Component> = sites.iter().flat_map(|(_, k)| k.iter().copied()).collect();
    let full = match run.score(&kept, ablation) {
        Ok(f) => f,
        Err(e) => return error(text, e.to_string()),
    };
    let sampled = !dom.exhaustive || ablation == Ablation::Resample;
    let fig = proportion_figure("faithful", full.agree, full.total, !sampled);
    let mut details = vec![format!(
        "{} ablation{} of {} of {} components outside the circuit ({}); inputs: {}",
        ablation.name(),
        if ablation == Ablation::Resample {
            format!(" ({rounds} partner(s) per input, {} pairs)", full.total)
        } else {
            String::new()
        },
        full.ablated.len(),
        run.components().len(),
        if full.ablated.is_empty() {
            "none: the circuit keeps every component".to_string()
        } else {
            full.ablated.join(", ")
        },
        dom.describe()
    )];
    if let Some(r) = full.recovery {
        details.push(format!("logit-difference recovery {r:.3}"));
    }
    if !minimal {
        let (status, verdict) = decide(bound, fig.value, fig.interval);
        let mut summary = format!("faithful ({} ablation) = {verdict}", ablation.name());
        if let Some(r) = full.recovery {
            summary.push_str(&format!(", logit-difference recovery {r:.3}"));
        }
        let mut r = result(text, status, summary);
        r.counterexample = full
            .first_changed
            .as_ref()
            .filter(|_| status != Status::Pass)
            .map(|row| Counterexample {
                input: row_text(sc, row),
                source: None,
                variable: None,
                got: "an output that differs".into(),
                want: "the full model's".into(),
            });
        if let Some(line) = sufficiency(cx, circuit) {
            details.push(line);
        }
        r.details = details;
        r.figure = Some(fig);
        r.seed = Some(partner_seed);
        return r;
    }
    // Minimality: each site ablated as well, in turn.
    let base = full.score();
    let mut drops: Vec<(String, f64)> = Vec::new();
    for (name, _) in &sites {
        let without: BTreeSet<Component> = sites
            .iter()
            .filter(|(n, _)| n != name)
            .flat_map(|(_, k)| k.iter().copied())
            .collect();
        match run.score(&without, ablation) {
            Ok(f) => drops.push((name.clone(), base - f.score())),
            Err(e) => return error(text, e.to_string()),
        }
    }
    let Some((weakest, min_drop)) = drops.iter().min_by(|a, b| a.1.total_cmp(&b.1)).cloned() else {
        return error(text, "the circuit has no site".into());
    };
    let (status, verdict) = decide(bound, min_drop, None);
    let redundant: Vec<&str> = drops
        .iter()
        .filter(|(_, d)| *d <= 0.0)
        .map(|(n, _)| n.as_str())
        .collect();
    let mut summary = format!("minimal = {verdict} (the drop without {weakest})");
    if !redundant.is_empty() {
        summary.push_str(&format!("; redundant: {}", redundant.join(", ")));
    }
    let mut r = result(text, status, summary);
    details.insert(0, format!("faithful with every site: {base:.3}"));
    for (n, d) in &drops {
        details.push(format!(
            "without {n}: faithful drops by {d:.3}{}",
            if *d <= 0.0 {
                " (redundant: its removal changes nothing)"
            } else {
                ""
            }
        ));
    }
    r.details = details;
    r.figure = Some(Figure {
        name: "minimal".into(),
        value: min_drop,
        interval: None,
        confidence: None,
        n: Some(full.total),
    });
    r.seed = Some(partner_seed);
    r
}

/// For a compiled model, what z3 says of the circuit on the interpretation (`sufficient(C)`),
/// beside what ablation says of it on the weights.
fn sufficiency(cx: &Ctx<'_>, circuit: &str) -> Option<String> {
    if !matches!(
        cx.job.check.model,
        Some(crate::lang::ir::ModelRef::Compiled { .. })
    ) {
        return None;
    }
    let goal = crate::lang::ir::ProofGoal::Sufficient {
        circuit: circuit.to_string(),
    };
    let opts = ProveOptions {
        timeout: Some(Duration::from_secs_f64(
            cx.opts.prove_timeout.unwrap_or(smt::DEFAULT_TIMEOUT_SECS),
        )),
        parallel: true,
        max_len: None,
    };
    let rep = smt::prove(cx.job.spec, &format!("sufficient_{circuit}"), &goal, &opts);
    Some(match &rep.verdict {
        Verdict::Proved => format!(
            "z3: sufficient({circuit}) is proved on the interpretation{} — its variables determine the output on every input; the faithfulness above is the compiled weights' side",
            rep.trivially
                .as_ref()
                .map(|t| format!(" (trivially: {t})"))
                .unwrap_or_default()
        ),
        Verdict::Refuted { counterexample } => format!(
            "z3: sufficient({circuit}) is refuted on the interpretation (length {}): the circuit's variables do not determine the output, whatever the weights do",
            counterexample.length
        ),
        Verdict::Unknown { reason } => format!("z3: sufficient({circuit}) is undecided: {reason}"),
    })
}

fn judged(text: &str, j: Judged, seed: u64) -> ExpectationResult {
    ExpectationResult {
        expectation: text.to_string(),
        status: j.status,
        summary: j.summary,
        figure: j.figure,
        details: j.details,
        counterexample: None,
        seed: Some(seed),
    }
}

/// The interpretations a check compares: its `compare` list, then those its expectations name.
pub fn compared(check: &Check) -> Vec<String> {
    let mut out: Vec<String> = check.compare.clone();
    for e in &check.expectations {
        let names: Vec<&String> = match &e.goal {
            Expectation::Congruent(a) => vec![a],
            Expectation::Distinguishable(a, b) | Expectation::Indistinguishable(a, b) => vec![a, b],
            _ => vec![],
        };
        for n in names {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
    }
    out
}

fn needs_estimate(check: &Check) -> bool {
    check.expectations.iter().any(|e| {
        matches!(
            e.goal,
            Expectation::Congruent(_)
                | Expectation::Distinguishable(..)
                | Expectation::Indistinguishable(..)
        )
    })
}

fn needs_model_tests(check: &Check) -> bool {
    check
        .expectations
        .iter()
        .any(|e| matches!(e.goal, Expectation::Congruent(_)))
}

fn comparison(
    job: &CheckJob<'_>,
    s: &CheckSettings,
    seed: u64,
    opts: &TestOptions,
) -> Result<CompareReport, String> {
    let given = match job.check.family {
        ImplementationFamily::Compiled => Default::default(),
        ImplementationFamily::Trained => trained_pools(job, s, seed, opts)?,
    };
    let settings = CompareSettings {
        interpretations: compared(job.check),
        given,
        models: match (&job.model, needs_model_tests(job.check)) {
            (Some(m), true) => vec![m.dir.clone()],
            _ => vec![],
        },
        samples: s.samples,
        seed,
        inputs: s.inputs,
        bootstraps: s.bootstraps,
        draws: s.draws,
        epsilon: match job.check.epsilon {
            None => Epsilon::FromData,
            Some(e) => Epsilon::Fixed(e),
        },
        confidence: CONFIDENCE,
        cache_dir: Some(opts.cache_dir.clone()),
        ..CompareSettings::default()
    };
    compare(job.path, &settings).map_err(|e| {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(inner) = src {
            s.push_str(&format!(": {inner}"));
            src = inner.source();
        }
        s
    })
}

/// The trained pool of every compared interpretation (`samples N family trained`), trained
/// now or read back from the cache.
fn trained_pools(
    job: &CheckJob<'_>,
    s: &CheckSettings,
    seed: u64,
    opts: &TestOptions,
) -> Result<std::collections::BTreeMap<String, GivenPool>, String> {
    let mut out = std::collections::BTreeMap::new();
    for name in compared(job.check) {
        let members = super::trained::trained_pool(
            &opts.cache_dir,
            job.path,
            job.spec,
            &name,
            seed,
            s.samples,
            &crate::progress::Progress::hidden(),
        )
        .map_err(|e| format!("training implementations of `{name}`: {e}"))?;
        let dir = members
            .first()
            .and_then(|m| m.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        out.insert(name, GivenPool { dir, members });
    }
    Ok(out)
}

/// Runs one check. `stage` is told what is being done (for progress).
pub fn run_check_job(
    job: &CheckJob<'_>,
    opts: &TestOptions,
    stage: &dyn Fn(&str),
) -> (CheckReport, Option<CompareReport>) {
    let check = job.check;
    let seed = check_seed(check, opts);
    let s = settings(check, opts);
    let estimate = if needs_estimate(check) {
        stage("sample, run, fit");
        Some(comparison(job, &s, seed, opts))
    } else {
        None
    };
    let mut behaviours = job.model.as_ref().map(|m| Behaviours {
        model: &m.loaded,
        seed,
        runs: Vec::new(),
    });
    let cx = Ctx { job, seed, opts };
    let mut results = Vec::new();
    for e in &check.expectations {
        let text = e.text.as_str();
        let r = match (&e.goal, &job.model, &mut behaviours) {
            (Expectation::Implements(p), Some(_), Some(b)) => {
                stage("run");
                match b.get(job.spec, p) {
                    Ok(run) => implements(text, run, p),
                    Err(why) => error(text, why.clone()),
                }
            }
            (Expectation::Accuracy { program, bound }, Some(_), Some(b)) => {
                stage("run");
                match b.get(job.spec, program) {
                    Ok(run) => accuracy(text, run, bound),
                    Err(why) => error(text, why.clone()),
                }
            }
            (Expectation::Iia { circuit, bound }, Some(m), _) => {
                stage("interchange");
                iia_result(text, &cx, &m.loaded, circuit, bound)
            }
            (
                Expectation::Similarity {
                    measure,
                    program,
                    bound,
                },
                Some(m),
                _,
            ) => {
                stage("fit");
                similarity_result(text, &cx, m, measure, program, bound)
            }
            (
                Expectation::Faithful {
                    circuit,
                    ablation,
                    bound,
                },
                Some(m),
                _,
            ) => {
                stage("ablate");
                circuit_score(text, &cx, m, circuit, ablation, bound, false)
            }
            (
                Expectation::Minimal {
                    circuit,
                    ablation,
                    bound,
                },
                Some(m),
                _,
            ) => {
                stage("ablate");
                circuit_score(text, &cx, m, circuit, ablation, bound, true)
            }
            (Expectation::Congruent(own), _, _) => match &estimate {
                Some(Ok(rep)) => judged(text, estimate::congruent(rep, own), seed),
                Some(Err(why)) => error(text, format!("the comparison failed: {why}")),
                None => error(text, "no comparison was run".into()),
            },
            (Expectation::Distinguishable(a, b), _, _)
            | (Expectation::Indistinguishable(a, b), _, _) => match &estimate {
                Some(Ok(rep)) => {
                    let apart = matches!(e.goal, Expectation::Distinguishable(..));
                    judged(text, estimate::pair(rep, a, b, apart), seed)
                }
                Some(Err(why)) => error(text, format!("the comparison failed: {why}")),
                None => error(text, "no comparison was run".into()),
            },
            _ => error(text, "this expectation needs the check's model".into()),
        };
        results.push(r);
    }
    let report = CheckReport {
        index: job.index,
        spec: job.label.to_string(),
        kind: UnitKind::Check,
        name: check.name.clone(),
        model: job.model.as_ref().map(|m| m.info.clone()),
        seed: Some(seed),
        settings: Some(s),
        expectations: results,
    };
    (report, estimate.and_then(Result::ok))
}

/// Runs one proof with z3 (in parallel over lengths).
pub fn run_proof(
    index: usize,
    label: &str,
    spec: &Spec,
    proof: &Proof,
    opts: &TestOptions,
) -> CheckReport {
    let secs = opts
        .prove_timeout
        .or(proof.timeout_secs)
        .unwrap_or(smt::DEFAULT_TIMEOUT_SECS);
    let popts = ProveOptions {
        timeout: Some(Duration::from_secs_f64(secs)),
        parallel: true,
        max_len: None,
    };
    let rep = smt::prove(spec, &proof.name, &proof.goal, &popts);
    let max_len = rep.lengths.last().map_or(0, |l| l.length);
    let (status, summary, counterexample, details) = match &rep.verdict {
        Verdict::Proved => {
            let mut s = format!("proved for every input of length 1..={max_len}");
            if let Some(why) = &rep.trivially {
                s.push_str(&format!(" (trivially: {why})"));
            }
            (Status::Pass, s, None, vec![])
        }
        Verdict::Unknown { reason } => (
            Status::Unknown,
            format!("undecided: {reason}"),
            None,
            vec![format!("z3's limit: {secs} s per length")],
        ),
        Verdict::Refuted { counterexample: c } => {
            let inputs: Vec<String> = c.inputs.iter().map(|i| smt::tokens(i)).collect();
            let first = c.differences.first();
            let cx = Counterexample {
                input: inputs.first().cloned().unwrap_or_default(),
                source: inputs.get(1).cloned(),
                variable: None,
                got: first.map(|d| d.left.clone()).unwrap_or_default(),
                want: first.map(|d| d.right.clone()).unwrap_or_default(),
            };
            let mut details: Vec<String> = c
                .differences
                .iter()
                .map(|d| format!("{} at {}: {} vs {}", d.what, d.position, d.left, d.right))
                .collect();
            details.extend(c.errors.iter().map(|e| format!("error: {e}")));
            (
                Status::Fail,
                format!(
                    "refuted at length {}: input {}",
                    c.length,
                    inputs
                        .iter()
                        .map(|i| format!("\"{i}\""))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
                Some(cx),
                details,
            )
        }
    };
    CheckReport {
        index,
        spec: label.to_string(),
        kind: UnitKind::Prove,
        name: proof.name.clone(),
        model: None,
        seed: None,
        settings: None,
        expectations: vec![ExpectationResult {
            expectation: rep.goal.clone(),
            status,
            summary,
            figure: None,
            details,
            counterexample,
            seed: None,
        }],
    }
}
