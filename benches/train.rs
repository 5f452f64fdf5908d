//! Training benchmark.
//!
//! - `siit/step_sum_with_next`: one strict interchange-intervention training step at the toy size
//!   (2 layers × 1 head, d_model 64, d_mlp 128, batch 256) on `sum_with_next` of the toy
//!   experiment (vocab 0..=10, up to 10 tokens, four aligned variables that cover every head and
//!   MLP, so no strict term): the behaviour term, one shared source run, an interchange term per
//!   variable, backward, gradient clipping and AdamW, over the default four input lengths of 64
//!   inputs each. Steps per second = 1 / the time.
//! - `siit/step_sum_with_next_one_length`: the same step as it was before those defaults, one
//!   length of 256 inputs and no clipping (fewer, larger passes).

use std::path::Path;

use congruity::compile::{CompileOptions, compile_checked};
use congruity::train::{Correspondence, Session, TrainOptions};
use criterion::Criterion;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/toy/sum_with_next.interp");
    let spec = congruity::lang::load(&path).unwrap();
    let program = &spec.programs["sum_with_next"];
    let (compiled, _) = compile_checked(program, &CompileOptions::default(), 0).unwrap();
    let corr = Correspondence::compiled_layout(program, &compiled).unwrap();
    let opts = TrainOptions {
        seed: 1,
        ..TrainOptions::default()
    };
    let one_length = TrainOptions {
        lengths_per_step: 1,
        clip_norm: None,
        ..opts.clone()
    };
    let mut g = c.benchmark_group("siit");
    g.sample_size(20);
    for (name, opts) in [
        ("step_sum_with_next", &opts),
        ("step_sum_with_next_one_length", &one_length),
    ] {
        let mut session = Session::new(program, &compiled, &corr, opts).unwrap();
        let arch = session.architecture();
        assert_eq!((arch.n_layers, arch.d_model, opts.batch), (2, 64, 256));
        g.bench_function(name, |b| b.iter(|| session.step().unwrap()));
    }
    g.finish();
    c.final_summary();
}
