//! Every z3 verdict on the specs agrees with exhaustive enumeration by the evaluator, for every
//! goal one can form from each spec whose domain has at most 200,000 inputs.

use crate::support::smt as smt_support;

use std::collections::BTreeSet;
use std::time::Duration;

use congruity::lang;
use congruity::smt::{self, ProveOptions, Verdict, goal_text};
use smt_support::{Truth, agrees, enumerate, goals, spec_files, specs_dir};

const LIMIT: u128 = 200_000;

#[test]
fn z3_agrees_with_enumeration_on_every_spec() {
    let opts = ProveOptions {
        timeout: Some(Duration::from_secs(120)),
        parallel: true,
        max_len: None,
    };
    let mut done: BTreeSet<String> = BTreeSet::new();
    let (mut checked, mut refuted, mut skipped) = (0, 0, 0);
    let mut failures = Vec::new();
    for file in spec_files(&specs_dir()) {
        let spec = lang::load(&file).unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
        for (name, goal) in goals(&spec) {
            // The same goal over the same definitions recurs in every file that imports them.
            let key = format!("{} in {}", goal_text(&goal), fingerprint(&spec, &goal));
            if !done.insert(key) {
                continue;
            }
            let Some(truth) = enumerate(&spec, &goal, LIMIT) else {
                skipped += 1;
                continue;
            };
            let report = smt::prove(&spec, &name, &goal, &opts);
            checked += 1;
            if matches!(report.verdict, Verdict::Refuted { .. }) {
                refuted += 1;
            }
            if let Err(e) = agrees(&report, &truth) {
                failures.push(format!("{}: {}: {e}", file.display(), goal_text(&goal)));
            }
            if let (Verdict::Refuted { counterexample }, Truth::Fails(_)) =
                (&report.verdict, &truth)
            {
                assert!(
                    counterexample
                        .inputs
                        .iter()
                        .all(|x| x.len() == counterexample.length)
                );
            }
        }
    }
    // What tracr would garble: every interpretation of every small spec, against enumeration.
    let mut garble_checked = 0;
    let mut seen = BTreeSet::new();
    for file in spec_files(&specs_dir()) {
        let spec = lang::load(&file).unwrap();
        for (name, p) in &spec.programs {
            let key = format!("{name} {:?}", p.source.as_ref().map(|s| s.file.clone()));
            if !seen.insert(key) {
                continue;
            }
            let Some(inputs) = smt_support::domain_inputs(&p.task, LIMIT) else {
                continue;
            };
            let truth = inputs.iter().any(|x| smt_support::garbles(p, x));
            let report = smt::prove_no_garbling(&spec, name, &opts);
            garble_checked += 1;
            let agrees = match &report.verdict {
                Verdict::Proved => !truth,
                Verdict::Refuted { .. } => truth,
                Verdict::Unknown { .. } => false,
            };
            if !agrees {
                failures.push(format!("{}: no_garbled_aggregate({name}): z3 says {}, enumeration says garbled = {truth}", file.display(), report.text()));
            }
        }
    }
    eprintln!("{garble_checked} programs checked for garbled aggregates against enumeration");
    assert!(
        garble_checked >= 20,
        "only {garble_checked} programs checked for garbling"
    );
    eprintln!(
        "{checked} goals checked against enumeration ({refuted} refuted), {skipped} skipped (domain too large)"
    );
    assert!(
        failures.is_empty(),
        "z3 and enumeration disagree:\n{}",
        failures.join("\n")
    );
    assert!(checked >= 40, "only {checked} goals checked");
    assert!(
        refuted >= 1,
        "no goal was refuted: the comparison never exercised a counterexample"
    );
}

/// Where the programs a goal names are defined (imports bring the same definitions into many
/// files).
fn fingerprint(spec: &lang::ir::Spec, goal: &lang::ir::ProofGoal) -> String {
    use lang::ir::ProofGoal::*;
    let names: Vec<String> = match goal {
        Implements { program, reference } => vec![program.clone(), reference.clone()],
        Equivalent { a, b } | Aligned { a, b, .. } => vec![a.clone(), b.clone()],
        WellFormed { program } => vec![program.clone()],
        Sufficient { circuit } => vec![spec.circuits[circuit].program.clone(), circuit.clone()],
    };
    let files: Vec<String> = names
        .iter()
        .map(|n| {
            let src = spec
                .programs
                .get(n)
                .and_then(|p| p.source.clone())
                .or_else(|| spec.pipelines.get(n).and_then(|p| p.source.clone()))
                .or_else(|| spec.circuits.get(n).and_then(|c| c.source.clone()));
            src.map(|s| s.file.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    files.join(",")
}
