//! The intervention test end to end on tracr's reverse: the circuit `tracr_reverse_compiled`
//! (specs/circuits/tracr_reverse.interp, the compiled layout) is located in every sampled
//! implementation (placement and head order move its heads), its sites are interchange-patched
//! with activations of seeded corrupted inputs of the same length, and the patched
//! implementations are compared with the clean ones through the fits to another pool. A circuit
//! that is not the compiled layout is patched where it is declared, on sampled implementations
//! and on models under test alike.

use std::path::Path;
use std::sync::Arc;

use congruity::compile::sample::Family;
use congruity::experiment::ExperimentError;
use congruity::experiment::chain::{ChainPatch, StageModel, run_chain, to_transformer};
use congruity::experiment::circuit::CircuitMapping;
use congruity::experiment::compare::{CompareSettings, compare};
use congruity::experiment::extract::RepresentationSpec;
use congruity::experiment::inputs::InputSet;
use congruity::experiment::sampled::{Compiler, PatchPlan};
use congruity::lang::eval::eval_program;

fn spec_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/circuits/tracr_reverse.interp")
}

#[test]
fn patching_the_circuit_heads_moves_the_output_to_the_corrupted_input() {
    let spec = congruity::lang::load(spec_file()).unwrap();
    let mut compiler = Compiler::new(0);
    let target = Arc::new(compiler.target(&spec, "tracr_reverse").unwrap());
    let program = &spec.programs["tracr_reverse"];
    let inputs = InputSet::sample(&target.task, 40, 5, |_| Ok(())).unwrap();
    let corrupted = inputs
        .corrupted(&target.task, 6, |i| {
            eval_program(program, i)
                .map(|_| ())
                .map_err(|e| ExperimentError::Reference {
                    target: program.name.clone(),
                    input: i.to_vec(),
                    reason: Box::new(e),
                })
        })
        .unwrap();
    let circuit = &spec.circuits["tracr_reverse_compiled"];
    let plan = PatchPlan::new(&target, circuit, None, 9, Arc::new(corrupted.clone())).unwrap();
    assert_eq!(plan.mapping, CircuitMapping::Placement);
    // tracr's own layout (four layers) is not congruity's compiled layout: patched as declared.
    let tracr_layout = &spec.circuits["tracr_reverse_layout"];
    let declared = PatchPlan::new(&target, tracr_layout, None, 9, Arc::new(corrupted.clone()));
    assert_eq!(declared.unwrap().mapping, CircuitMapping::Declared);
    let mut head_sets = std::collections::BTreeSet::new();
    for index in 0..4 {
        let chain = target.sample_chain(&Family::ALL, 21, index).unwrap();
        let c = &target.stages[0].compiled;
        let sites = plan.sites(c, &chain[0].placement, index);
        // `length` and `output` are each computed by one head; the MLPs of length, opp_idx and
        // opp_idx-1 share one layer.
        assert_eq!(sites.len(), 3, "{sites:?}");
        head_sets.insert(format!("{sites:?}"));
        let stage = StageModel {
            program: "tracr_reverse".into(),
            transformer: to_transformer(&chain[0].weights, "m").unwrap(),
            sidecar: c.sidecar(),
            adapter: None,
            vocab: Some(c.plan.vocab.clone()),
        };
        let run = run_chain(
            std::slice::from_ref(&stage),
            &inputs.inputs,
            &RepresentationSpec::default(),
            None,
            Some(&ChainPatch {
                stage: 0,
                sites,
                corrupted: &corrupted,
            }),
        )
        .unwrap();
        // The length head reads only the length, which the corrupted input shares; the output
        // head brings the corrupted input's tokens: the patched model reverses the corrupted
        // input.
        for (i, bad) in corrupted.iter().enumerate() {
            let want = eval_program(program, bad).unwrap().output().to_vec();
            assert_eq!(run.outputs[0][i], want, "implementation {index}, input {i}");
        }
    }
    // Placement and head order moved the heads between implementations.
    assert!(head_sets.len() > 1, "{head_sets:?}");
    // Patching one head: one site.
    let one = PatchPlan::new(&target, circuit, Some(1), 9, Arc::new(corrupted)).unwrap();
    let chain = target.sample_chain(&Family::ALL, 21, 0).unwrap();
    assert_eq!(
        one.sites(&target.stages[0].compiled, &chain[0].placement, 0)
            .len(),
        1
    );
}

#[test]
fn intervention_report_is_deterministic_and_leaves_the_clean_inputs_alone() {
    let base = CompareSettings {
        interpretations: vec!["tracr_reverse".into(), "reverse_by_sorting".into()],
        samples: 3,
        seed: 4,
        inputs: 40,
        bootstraps: 1,
        draws: 20,
        ..CompareSettings::default()
    };
    let with = CompareSettings {
        circuit: Some("tracr_reverse_compiled".into()),
        ..base.clone()
    };
    let plain = compare(&spec_file(), &base).unwrap();
    let a = compare(&spec_file(), &with).unwrap();
    let b = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| compare(&spec_file(), &with).unwrap());
    assert_eq!(a.to_json(), b.to_json());
    // The corrupted inputs come from their own stream: the clean set and everything computed on
    // it are unchanged by asking for the intervention test.
    assert_eq!(plain.inputs.id, a.inputs.id);
    assert_eq!(
        serde_json::to_string(&plain.selectivity).unwrap(),
        serde_json::to_string(&a.selectivity).unwrap()
    );
    // One test per target pool, every implementation patched at two heads and one MLP.
    assert_eq!(a.intervention.len(), 2);
    for r in &a.intervention {
        assert_eq!(r.result.draws, 20);
        assert_eq!(r.mapping, CircuitMapping::Placement);
        assert!(r.patched_sites.iter().all(|h| h.len() == 3));
        // The patched representations differ from the clean ones.
        assert!(
            r.result
                .records
                .iter()
                .any(|d| d.fit_clean != d.fit_patched)
        );
    }
    assert!(
        a.to_text()
            .contains("intervention: circuit `tracr_reverse_compiled`")
    );
}

/// A spec beside the bundled reverse circuits with a wrong circuit (`output` at the head that
/// computes `length`) and one naming a layer and head the compiled model lacks.
fn wrong_circuits(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("wrong.interp");
    std::fs::write(
        &file,
        format!(
            "import \"{}\"\n\
             circuit wrong_output for tracr_reverse {{\n  output -> blocks.0.attn.hook_z[0]\n}}\n\
             circuit missing_site for tracr_reverse {{\n  output -> blocks.9.attn.hook_z[7]\n}}\n",
            spec_file().display()
        ),
    )
    .unwrap();
    file
}

/// The intervention result of `circuit` on the pool labelled `clean` against the target pool
/// `targets`.
fn intervention_of(
    spec: &Path,
    settings: &CompareSettings,
    circuit: &str,
    clean: &str,
    targets: &str,
) -> congruity::equivalence::InterventionResult {
    let report = compare(
        spec,
        &CompareSettings {
            circuit: Some(circuit.into()),
            ..settings.clone()
        },
    )
    .unwrap();
    report
        .intervention
        .iter()
        .find(|r| r.result.clean == clean && r.result.targets == targets)
        .unwrap_or_else(|| panic!("no intervention of {clean} against {targets}"))
        .result
        .clone()
}

#[test]
fn a_wrong_circuit_is_patched_where_declared_and_gets_a_weaker_result() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = wrong_circuits(tmp.path());
    let model = tmp.path().join("plain");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_congruity"))
        .args([
            "compile",
            &spec_file().display().to_string(),
            "--program",
            "tracr_reverse",
        ])
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let settings = CompareSettings {
        interpretations: vec!["tracr_reverse".into(), "reverse_by_sorting".into()],
        models: vec![model.clone()],
        samples: 4,
        seed: 3,
        inputs: 60,
        bootstraps: 1,
        draws: 60,
        ..CompareSettings::default()
    };
    // On sampled implementations and on the plain compiled model under test, against the
    // sorting pool: the right circuit moves the fits (every draw is a win), the wrong one —
    // the length head, which a same-length corrupted input leaves unchanged — much less.
    for clean in ["tracr_reverse", "plain"] {
        let right = intervention_of(
            &spec,
            &settings,
            "tracr_reverse_compiled",
            clean,
            "reverse_by_sorting",
        );
        let wrong = intervention_of(
            &spec,
            &settings,
            "wrong_output",
            clean,
            "reverse_by_sorting",
        );
        assert!(right.significant, "{clean}: {right:?}");
        assert!(
            !wrong.significant,
            "{clean}: wrong circuit significant: {wrong:?}"
        );
        assert!(
            right.win_rate > wrong.win_rate && right.mean_gap > 10.0 * wrong.mean_gap.max(0.0),
            "{clean}: right {} / {:e}, wrong {} / {:e}",
            right.win_rate,
            right.mean_gap,
            wrong.win_rate,
            wrong.mean_gap
        );
    }
    let report = compare(
        &spec,
        &CompareSettings {
            circuit: Some("wrong_output".into()),
            ..settings.clone()
        },
    )
    .unwrap();
    for r in &report.intervention {
        assert_eq!(r.mapping, CircuitMapping::Declared);
        assert!(
            r.patched_sites
                .iter()
                .all(|s| s == &["blocks.0.attn.hook_z[0]"]),
            "{:?}",
            r.patched_sites
        );
    }
    assert!(
        report
            .intervention
            .iter()
            .any(|r| r.result.clean == "plain")
    );

    // A site the model lacks: an error naming the site and the model's shape.
    let e = compare(
        &spec,
        &CompareSettings {
            circuit: Some("missing_site".into()),
            ..settings
        },
    )
    .unwrap_err();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    assert!(text.contains("blocks.9.attn.hook_z[head 7]"), "{text}");
    assert!(text.contains("2 layers × 1 head, d_model "), "{text}");
    assert!(text.contains("the model has 2 layers"), "{text}");
}
