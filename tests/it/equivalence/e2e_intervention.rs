//! The intervention test end to end on tracr's reverse: the circuit `tracr_reverse_layout`
//! (specs/circuits/tracr_reverse.interp) is located in every sampled implementation (placement
//! and head order move its heads), its heads are interchange-patched with activations of
//! seeded corrupted inputs of the same length, and the patched implementations are compared with
//! the clean ones through the fits to another pool.

use std::path::Path;
use std::sync::Arc;

use congruity::compile::sample::Family;
use congruity::experiment::ExperimentError;
use congruity::experiment::chain::{ChainPatch, StageModel, run_chain, to_transformer};
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
    let circuit = &spec.circuits["tracr_reverse_layout"];
    let plan = PatchPlan::new(&target, circuit, None, 9, Arc::new(corrupted.clone())).unwrap();
    let mut head_sets = std::collections::BTreeSet::new();
    for index in 0..4 {
        let chain = target.sample_chain(&Family::ALL, 21, index).unwrap();
        let c = &target.stages[0].compiled;
        let sites = plan.sites(c, &chain[0].placement, index);
        // `length` and `output` are each computed by one head (opp_idx and opp_idx-1 are MLPs).
        assert_eq!(sites.len(), 2, "{sites:?}");
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
        circuit: Some("tracr_reverse_layout".into()),
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
    // One test per target pool, every implementation patched at two heads.
    assert_eq!(a.intervention.len(), 2);
    for r in &a.intervention {
        assert_eq!(r.result.draws, 20);
        assert!(r.patched_heads.iter().all(|h| h.len() == 2));
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
            .contains("intervention: circuit `tracr_reverse_layout`")
    );
}
