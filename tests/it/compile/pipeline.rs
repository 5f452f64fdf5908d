//! Pipelines: every stage compiles, the stage models chained through their adapters (from the
//! pipeline directory on disk) equal the reference evaluator's pipeline semantics, and a sampled chain's representation is the
//! concatenation of *its own* stages' representations on the same input.

use crate::support::compile as compile_support;

use compile_support::root;
use congruity::compile::pipeline::{compile_pipeline, stage_dir};
use congruity::compile::sample::Family;
use congruity::compile::{CompileOptions, Provenance};
use congruity::experiment::chain::{load_pipeline_dir, reference_outputs, run_chain};
use congruity::experiment::extract::RepresentationSpec;
use congruity::lang;

/// A sampled chain's representation is the concatenation of its own stages' representations,
/// each on what that stage read as the input flowed through *this* chain.
#[test]
fn a_chain_representation_concatenates_its_own_stages() {
    let file = root().join("specs/toy/pipelines.interp");
    let spec = lang::load(&file).unwrap();
    let name = "algo_2";
    let p = compile_pipeline(&spec, name, &CompileOptions::default(), 0).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let families = [Family::Rotation, Family::NoiseWidth];
    for i in 0..2u64 {
        let chain = p.sample_chain(&families, 9, i).unwrap();
        p.write_chain(&chain, &tmp.path().join(format!("{i:04}")), &families, 9, i)
            .unwrap();
    }
    let load = |i: u64| load_pipeline_dir(&tmp.path().join(format!("{i:04}"))).unwrap();
    let x = lang::domain::sample(&spec.programs["sort"].task, 1, 3)
        .unwrap()
        .pop()
        .unwrap();
    let rep = RepresentationSpec::default();
    let inputs = vec![x];
    let chain0 = load(0);
    let run0 = run_chain(&chain0.stages, &inputs, &rep, None, None).unwrap();
    // Recompute chain 0's representation stage by stage from its own models.
    let mut expected: Vec<f64> = Vec::new();
    let mut read = inputs[0].clone();
    for (k, stage) in chain0.stages.iter().enumerate() {
        if let Some(a) = &stage.adapter {
            read = read.iter().map(|v| a.apply(v)).collect();
        }
        let mut alone = stage.clone();
        alone.adapter = None;
        let one = run_chain(
            std::slice::from_ref(&alone),
            std::slice::from_ref(&read),
            &rep,
            None,
            None,
        )
        .unwrap();
        expected.extend((0..one.features.ncols()).map(|j| one.features[(0, j)]));
        assert_eq!(one.outputs[0][0], run0.outputs[k][0], "stage {k}");
        read = one.outputs[0][0].clone();
    }
    let got: Vec<f64> = (0..run0.features.ncols())
        .map(|j| run0.features[(0, j)])
        .collect();
    assert_eq!(got, expected);
    // Chain 1 is made of different implementations: its representation differs.
    let run1 = run_chain(&load(1).stages, &inputs, &rep, None, None).unwrap();
    assert_eq!(run1.outputs.last(), run0.outputs.last());
    assert_ne!(
        (0..run1.features.ncols())
            .map(|j| run1.features[(0, j)])
            .collect::<Vec<_>>(),
        got
    );
    // Each stage directory records its chain index.
    for i in 0..2u64 {
        for (k, st) in p.stages.iter().enumerate() {
            let sc = compile_support::read_json(
                &tmp.path()
                    .join(format!("{i:04}"))
                    .join(stage_dir(k, &st.program))
                    .join("congruity.json"),
            );
            assert_eq!(sc["provenance"]["sample"]["index"], serde_json::json!(i));
        }
    }
}

/// The pipeline directory as written is a model artifact of its own: loaded back from disk
/// (`pipeline.json` + stage directories, decoding through each stage's `congruity.json`), every
/// pipeline's chain equals the evaluator at every stage on a seeded sample of its domain.
#[test]
fn every_pipeline_directory_runs_from_disk_as_the_evaluator_does() {
    let file = root().join("specs/toy/pipelines.interp");
    let spec = lang::load(&file).expect("pipelines.interp checks");
    let tmp = tempfile::tempdir().unwrap();
    for name in spec.pipelines.keys() {
        let p = compile_pipeline(&spec, name, &CompileOptions::default(), 3).unwrap();
        let dir = tmp.path().join(name);
        p.write(&dir, &Provenance::default()).unwrap();
        let loaded = load_pipeline_dir(&dir).unwrap();
        assert_eq!(&loaded.name, name);
        assert_eq!(loaded.stages.len(), p.stages.len());
        let first = &spec.programs[&p.stages[0].program].task;
        let mut inputs = Vec::new();
        let mut traces = Vec::new();
        for x in lang::domain::sample(first, 120, 11).unwrap() {
            if let Ok(t) = lang::eval::eval_pipeline(&spec, &spec.pipelines[name], &x) {
                traces.push(t.stage_outputs.clone());
                inputs.push(x);
            }
        }
        assert!(inputs.len() > 100, "{name}: only {} inputs", inputs.len());
        let reference = reference_outputs(&traces);
        // With the reference, any stage output that differs is an error naming stage and input.
        run_chain(
            &loaded.stages,
            &inputs,
            &RepresentationSpec::default(),
            Some(&reference),
            None,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn a_broken_pipeline_directory_is_refused_with_the_field_named() {
    use congruity::experiment::chain::load_pipeline_dir;
    let file = root().join("specs/toy/pipelines.interp");
    let spec = lang::load(&file).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    compile_pipeline(&spec, "algo_1", &CompileOptions::default(), 0)
        .unwrap()
        .write(&dir, &Provenance::default())
        .unwrap();
    let manifest = dir.join("pipeline.json");
    let good: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["format"] = "congruity-pipeline/9".into()),
            "congruity-pipeline/9",
        ),
        (
            Box::new(|v| v["stages"] = serde_json::json!([])),
            "`stages`",
        ),
        (
            Box::new(|v| v["stages"][0]["dir"] = "../elsewhere".into()),
            "stages[0].dir",
        ),
        (
            Box::new(|v| v["stages"][1]["dir"] = "missing".into()),
            "stage 2 (`difference_to_next`)",
        ),
        (
            Box::new(|v| v["stages"][1]["adapter"] = serde_json::json!({"wrap": 3})),
            "stages[1].adapter",
        ),
    ];
    for (edit, want) in cases {
        let mut v = good.clone();
        edit(&mut v);
        std::fs::write(&manifest, v.to_string()).unwrap();
        let err = load_pipeline_dir(&dir).unwrap_err().to_string();
        assert!(err.contains(want), "wanted `{want}` in: {err}");
        assert!(err.contains("pipeline.json"), "names the file: {err}");
    }
}
