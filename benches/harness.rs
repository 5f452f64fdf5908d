//! Harness benchmarks (`congruity test` as a library).
//!
//! - `harness/warm/<check>`: one bundled check whose compiled model is already in the cache (the
//!   steady state of a repeated `congruity test`): load nothing new, run every expectation.
//! - `harness/cold/<check>`: the same check with an empty cache, so the model is compiled (with
//!   its domain check), written and loaded first.
//! - `harness/suite_circuits`: every check and proof of `specs/circuits/`, warm.

use std::path::Path;

use congruity::Spec;
use congruity::harness::{TestOptions, run_check, test};
use criterion::{BatchSize, Criterion};

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = Spec::load(root.join("specs/circuits/tracr_hist.interp")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let warm = TestOptions {
        cache_dir: cache.path().to_path_buf(),
        ..TestOptions::default()
    };
    // Fill the cache once.
    assert!(
        run_check(&spec, "compiled_hist_model", &warm)
            .unwrap()
            .passed()
    );
    let mut g = c.benchmark_group("harness");
    g.sample_size(10);
    g.bench_function("warm/compiled_hist_model", |b| {
        b.iter(|| run_check(&spec, "compiled_hist_model", &warm).unwrap())
    });
    g.bench_function("cold/compiled_hist_model", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let opts = TestOptions {
                    cache_dir: dir.path().to_path_buf(),
                    ..TestOptions::default()
                };
                (dir, opts)
            },
            |(_dir, opts)| run_check(&spec, "compiled_hist_model", &opts).unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("suite_circuits", |b| {
        b.iter(|| test(&[root.join("specs/circuits")], &warm).unwrap())
    });
    g.finish();
}
