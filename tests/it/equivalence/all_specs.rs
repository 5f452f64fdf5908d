//! The estimator's verdicts on every interpretation of `specs/` that compiles: its plain compiled
//! model and five of its sampled implementations, each passed as a model under test, are members
//! of its pool (membership not rejected), closer to it than to every rival interpretation of the
//! same task that computes a different function, and so congruent with it when every rival does.
//! The rivals are the other interpretations of the same task in scope of a spec file (a file's own
//! and its imports'); each interpretation is judged in the file where it has the most.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use congruity::compile::sample::{Family, sample_one};
use congruity::compile::{CompileOptions, compile_checked};
use congruity::equivalence::Verdict;
use congruity::equivalence::model_test::ModelTestKind;
use congruity::experiment::compare::{CompareSettings, compare};
use congruity::lang::eval::eval_program;
use congruity::lang::ir::{Program, Spec};

/// An interpretation, the file it is judged in and its rivals there.
struct Case {
    file: PathBuf,
    name: String,
    rivals: Vec<String>,
}

fn spec_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    congruity::cli::check::collect_specs(&root).expect("specs/ lists")
}

/// Same task: same name, defined in the same file.
fn same_task(a: &Program, b: &Program) -> bool {
    a.task.name == b.task.name
        && a.task.source.as_ref().map(|s| s.file.clone())
            == b.task.source.as_ref().map(|s| s.file.clone())
}

fn cases() -> Vec<Case> {
    // Keyed by where the interpretation is defined, so a file that imports it does not add it
    // twice.
    let mut best: BTreeMap<(PathBuf, String), Case> = BTreeMap::new();
    for file in spec_files() {
        let spec = congruity::lang::load(&file).expect("bundled specs check");
        for (name, p) in &spec.programs {
            let home = p
                .source
                .as_ref()
                .map(|s| (*s.file).clone())
                .unwrap_or_default();
            let rivals: Vec<String> = spec
                .programs
                .iter()
                .filter(|(n, q)| *n != name && same_task(p, q))
                .map(|(n, _)| n.clone())
                .collect();
            let key = (home, name.clone());
            if best.get(&key).is_none_or(|c| c.rivals.len() < rivals.len()) {
                best.insert(
                    key,
                    Case {
                        file: file.clone(),
                        name: name.clone(),
                        rivals,
                    },
                );
            }
        }
    }
    best.into_values().collect()
}

/// Whether `a` and `b` differ on some input of the task's domain (every input when the domain
/// has at most 200,000, else the compiler's seeded sample).
fn differ(a: &Program, b: &Program) -> bool {
    let domain = congruity::compile::check::domain(&a.task, 0).expect("domain");
    domain.inputs.iter().any(|i| {
        let out = |p: &Program| eval_program(p, i).ok().map(|t| t.output().to_vec());
        out(a) != out(b)
    })
}

/// Writes the plain compiled model of `program` and five sampled implementations (a seed the
/// comparison's pools do not use) under `dir`; `None` when it does not compile.
fn models(spec: &Spec, program: &str, dir: &Path) -> Option<Vec<PathBuf>> {
    let (compiled, _) =
        compile_checked(&spec.programs[program], &CompileOptions::default(), 0).ok()?;
    let plain = dir.join("plain");
    compiled.write(&plain).expect("writes the compiled model");
    let mut out = vec![plain];
    for i in 0..5 {
        let s = sample_one(&compiled, &Family::ALL, 90_210, i).expect("samples");
        let d = dir.join(format!("sample{i}"));
        s.write(&compiled, &d).expect("writes the sample");
        out.push(d);
    }
    Some(out)
}

#[test]
fn every_compiled_interpretation_is_judged_congruent_with_itself_and_apart_from_different_rivals() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut judged, mut with_rival, mut skipped) = (0, 0, Vec::new());
    for (k, case) in cases().into_iter().enumerate() {
        let spec = congruity::lang::load(&case.file).unwrap();
        let dir = tmp.path().join(format!("{k:03}-{}", case.name));
        let Some(dirs) = models(&spec, &case.name, &dir) else {
            skipped.push(case.name.clone());
            continue;
        };
        // Rivals that compile, as the comparison samples them.
        let rivals: Vec<String> = case
            .rivals
            .iter()
            .filter(|r| compile_checked(&spec.programs[*r], &CompileOptions::default(), 0).is_ok())
            .cloned()
            .collect();
        let mut interpretations = vec![case.name.clone()];
        interpretations.extend(rivals.iter().cloned());
        let report = compare(
            &case.file,
            &CompareSettings {
                interpretations,
                models: dirs.clone(),
                samples: 6,
                seed: 11,
                inputs: 80,
                bootstraps: 1,
                draws: 60,
                ..CompareSettings::default()
            },
        )
        .unwrap_or_else(|e| panic!("{}: {:?}", case.name, miette::Report::new(e)));
        let different: Vec<&String> = rivals
            .iter()
            .filter(|r| differ(&spec.programs[&case.name], &spec.programs[*r]))
            .collect();
        for d in &dirs {
            let model = d.file_name().unwrap().to_string_lossy().into_owned();
            let test = |kind: ModelTestKind, other: Option<&String>| {
                report
                    .model_tests
                    .iter()
                    .find(|t| {
                        t.kind == kind
                            && t.model == model
                            && t.own == case.name
                            && t.other.as_ref() == other
                    })
                    .unwrap_or_else(|| panic!("{}: no {kind:?} test of {model}", case.name))
            };
            let member = test(ModelTestKind::Membership, None);
            assert_eq!(
                member.summary.verdict,
                Verdict::NotDistinguished,
                "{} ({}): {model} is rejected from its own pool: {}",
                case.name,
                case.file.display(),
                member.summary.why()
            );
            for rival in &different {
                let closer = test(ModelTestKind::Closer, Some(*rival));
                assert_eq!(
                    closer.summary.verdict,
                    Verdict::Distinguishable,
                    "{} ({}): {model} is not told apart from the rival {rival}: win rate {}, {}",
                    case.name,
                    case.file.display(),
                    closer.summary.win_rate,
                    closer.summary.why()
                );
            }
            if !rivals.is_empty() && different.len() == rivals.len() {
                let verdict = report
                    .model_verdicts
                    .iter()
                    .find(|v| v.model == model && v.interpretation == case.name)
                    .unwrap();
                assert!(verdict.congruent, "{}: {model}: {verdict:?}", case.name);
            }
        }
        judged += 1;
        with_rival += usize::from(!different.is_empty());
    }
    // The bundled tree: every tracr and toy interpretation and the alternatives.
    assert!(
        judged >= 25,
        "only {judged} interpretations judged (skipped: {skipped:?})"
    );
    assert!(
        with_rival >= 1,
        "no interpretation has a rival computing another function"
    );
}
