//! The point test end to end on compiled implementations: sample → run → represent → fit.
//!
//! `reverse_k4_n64`: tracr's reverse by length against reverse by sorting, 4 sampled
//! implementations each (all families), 64 common inputs, accumulated residual mean-pooled,
//! ridge-r2, 20 draws. Compilation happens once, outside the timing; every iteration samples the
//! implementations afresh, runs them on the inputs, pools, and computes the fits.
//! `sort_one_impl_n64`: one implementation of the toy's `sort` stage (the widest model of the
//! toy experiment) sampled, run on 64 inputs and pooled.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use congruity::compile::sample::Family;
use congruity::equivalence::{ImplementationSource, PointTestConfig, point_test};
use congruity::experiment::chain::reference_outputs;
use congruity::experiment::extract::RepresentationSpec;
use congruity::experiment::inputs::InputSet;
use congruity::experiment::sampled::{Compiler, SampledSource, Target};
use congruity::lang::Spec;
use criterion::{Criterion, criterion_group, criterion_main};

fn spec(rel: &str) -> Spec {
    congruity::lang::load(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).expect("spec loads")
}

fn pool(
    spec: &Spec,
    target: &Arc<Target>,
    inputs: &Arc<InputSet>,
    k: usize,
    seed: u64,
) -> SampledSource {
    let traces: Vec<_> = inputs
        .inputs
        .iter()
        .map(|i| target.reference(spec, i).expect("input in the domain"))
        .collect();
    SampledSource::new(
        target.clone(),
        Family::ALL.to_vec(),
        seed,
        k,
        inputs.clone(),
        Arc::new(reference_outputs(&traces)),
        RepresentationSpec::default(),
    )
}

fn point_end_to_end(c: &mut Criterion) {
    let spec = spec("specs/alternatives/reverse_by_sorting.interp");
    let mut compiler = Compiler::new(0);
    let len = Arc::new(compiler.target(&spec, "tracr_reverse").expect("compiles"));
    let sort = Arc::new(
        compiler
            .target(&spec, "reverse_by_sorting")
            .expect("compiles"),
    );
    let inputs = Arc::new(InputSet::sample(&len.task, 64, 1, |_| Ok(())).expect("inputs"));
    let cfg = PointTestConfig {
        progress: Default::default(),
        draws: 20,
        seed: 3,
        ..PointTestConfig::default()
    };
    let mut group = c.benchmark_group("point_test_end_to_end");
    group.sample_size(10);
    group.bench_function("reverse_k4_n64", |b| {
        b.iter(|| {
            let g1 = pool(&spec, &len, &inputs, 4, 11);
            let g2 = pool(&spec, &sort, &inputs, 4, 12);
            black_box(point_test(&g1, &g2, &cfg).expect("point test runs"))
        })
    });
    group.finish();
}

fn one_sort_implementation(c: &mut Criterion) {
    let spec = spec("specs/toy/sort.interp");
    let mut compiler = Compiler::new(0);
    let sort = Arc::new(compiler.target(&spec, "sort").expect("compiles"));
    let inputs = Arc::new(InputSet::sample(&sort.task, 64, 1, |_| Ok(())).expect("inputs"));
    let mut group = c.benchmark_group("represent");
    group.sample_size(10);
    group.bench_function("sort_one_impl_n64", |b| {
        b.iter(|| {
            let p = pool(&spec, &sort, &inputs, 1, 5);
            black_box(p.representation(0).expect("runs"))
        })
    });
    group.finish();
}

criterion_group!(benches, point_end_to_end, one_sort_implementation);
criterion_main!(benches);
