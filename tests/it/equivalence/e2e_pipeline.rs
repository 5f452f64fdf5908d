//! A pipeline's implementation is one chain: its representation is the concatenation of *its own*
//! stage models' representations, stage 2 reading stage 1's decoded output (through the adapter)
//! on the very same input. Checked on a small two-stage pipeline with a clamp adapter.

use std::sync::Arc;

use congruity::compile::sample::Family;
use congruity::equivalence::{ImplementationSource, PointTestConfig, point_test};
use congruity::experiment::chain::{StageModel, reference_outputs, run_chain, to_transformer};
use congruity::experiment::extract::RepresentationSpec;
use congruity::experiment::inputs::InputSet;
use congruity::experiment::sampled::{Compiler, SampledSource};
use congruity::lang::ir::{Adapter, Value};

const SPEC: &str = "task small {\n  vocab   {0..=3}\n  max_len 4\n}\n\n\
interpretation inc for small {\n  output map(|x| x + 1, tokens)\n}\n\n\
interpretation hist for small {\n  output selector_width(select(tokens, tokens, ==))\n}\n\n\
pipeline inc_hist = inc |> hist via clamp\n";

#[test]
fn a_chain_is_its_own_stages_on_the_same_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.interp");
    std::fs::write(&file, SPEC).unwrap();
    let spec = congruity::lang::load(&file).unwrap();
    let mut compiler = Compiler::new(0);
    let target = Arc::new(compiler.target(&spec, "inc_hist").unwrap());
    assert!(target.is_pipeline);
    assert!(matches!(
        target.stages[1].adapter,
        Some(Adapter::Clamp { lo: 0, hi: 3 })
    ));
    let inputs = Arc::new(InputSet::sample(&target.task, 40, 3, |_| Ok(())).unwrap());
    // The clamp matters on these inputs: some token 3 becomes 4 after `inc`, then 3 again.
    assert!(inputs.inputs.iter().any(|i| i.contains(&Value::int(3))));
    let traces: Vec<_> = inputs
        .inputs
        .iter()
        .map(|i| target.reference(&spec, i).unwrap())
        .collect();
    let reference = reference_outputs(&traces);
    let families = Family::ALL.to_vec();
    let pool = SampledSource::new(
        target.clone(),
        families.clone(),
        17,
        3,
        inputs.clone(),
        Arc::new(reference.clone()),
        RepresentationSpec::default(),
    );
    let rep = pool.representation(0).unwrap();

    // Rebuild chain 0 by hand and run its stages one after the other.
    let stage_models = |index: usize| -> Vec<StageModel> {
        let chain = target.sample_chain(&families, 17, index).unwrap();
        target
            .stages
            .iter()
            .zip(&chain)
            .map(|(st, s)| StageModel {
                program: st.program.clone(),
                transformer: to_transformer(&s.weights, "m").unwrap(),
                sidecar: st.compiled.sidecar(),
                adapter: st.adapter.clone(),
                vocab: Some(st.compiled.plan.vocab.clone()),
            })
            .collect()
    };
    let spec_r = RepresentationSpec::default();
    let c0 = stage_models(0);
    let first = run_chain(&c0[..1], &inputs.inputs, &spec_r, None, None).unwrap();
    assert_eq!(first.outputs[0], reference[0]);
    let mid: Vec<Vec<Value>> = first.outputs[0]
        .iter()
        .map(|o| {
            o.iter()
                .map(|v| target.stages[1].adapter.as_ref().unwrap().apply(v))
                .collect()
        })
        .collect();
    let mut second_stage = c0[1].clone();
    second_stage.adapter = None;
    let second = run_chain(
        std::slice::from_ref(&second_stage),
        &mid,
        &spec_r,
        None,
        None,
    )
    .unwrap();
    assert_eq!(second.outputs[0], reference[1]);
    let w1 = first.features.ncols();
    let w2 = second.features.ncols();
    assert_eq!(rep.n_features(), w1 + w2);
    for i in 0..rep.n_inputs() {
        for j in 0..w1 {
            assert_eq!(rep.matrix()[(i, j)], first.features[(i, j)]);
        }
        for j in 0..w2 {
            assert_eq!(rep.matrix()[(i, w1 + j)], second.features[(i, j)]);
        }
    }

    // Chain 1's second stage is a different model: mixing it into chain 0 would change the
    // representation, so the chains are really kept apart.
    let mut other = stage_models(1)[1].clone();
    other.adapter = None;
    let mixed = run_chain(std::slice::from_ref(&other), &mid, &spec_r, None, None).unwrap();
    assert!(
        mixed.features.ncols() != w2
            || (0..w2).any(|j| mixed.features[(0, j)] != second.features[(0, j)])
    );

    // The pool works in a point test against itself (a, b, c all distinct).
    let r = point_test(
        &pool,
        &pool,
        &PointTestConfig {
            progress: Default::default(),
            draws: 10,
            ..PointTestConfig::default()
        },
    )
    .unwrap();
    assert_eq!(r.summary.draws, 10);
}
