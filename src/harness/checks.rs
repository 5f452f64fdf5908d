//! One unit run: a check's expectations against its model and the estimator, or one proof.

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
use crate::experiment::sampled::ModelDirSource;
use crate::lang::eval::eval_output;
use crate::lang::ir::{Bound, Check, Comparison, Expectation, Proof, Spec};
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
    let settings = CompareSettings {
        interpretations: compared(job.check),
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
