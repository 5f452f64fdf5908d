//! Similarity measures at the paper's toy size (n = 1000 inputs, 704 = 11 layers × 64 features on
//! each side) and the point test end to end on synthetic pools.

use std::hint::black_box;

use congruity::equivalence::synthetic::{SyntheticFamily, gaussian_latent};
use congruity::equivalence::{InputsId, PointTestConfig, point_test};
use congruity::similarity::Measure;
use criterion::{Criterion, criterion_group, criterion_main};
use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const N: usize = 1000;
const D: usize = 704;

/// `x` Gaussian; `y = x W / sqrt(D) + noise`, so ridge has something to find.
fn data() -> (Mat<f64>, Mat<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut g = || -> f64 { StandardNormal.sample(&mut rng) };
    let x = Mat::from_fn(N, D, |_, _| g());
    let w = Mat::from_fn(D, D, |_, _| g() / (D as f64).sqrt());
    let mut y = &x * &w;
    for j in 0..D {
        for i in 0..N {
            y[(i, j)] += 0.5 * g();
        }
    }
    (x, y)
}

fn measures(c: &mut Criterion) {
    let (x, y) = data();
    let mut group = c.benchmark_group("n1000_d704");
    group.sample_size(10);
    for name in [
        "ridge-r2:alphas=0.1,1,10;test=0.1;seed=0",
        "cka:linear",
        "cka:debiased",
        "procrustes:angular",
        "procrustes:euclidean",
    ] {
        let m: Measure = name.parse().expect("valid measure name");
        group.bench_function(name, |b| {
            b.iter(|| black_box(m.compute(x.as_ref(), y.as_ref()).expect("measure runs")))
        });
    }
    group.finish();
}

fn point(c: &mut Criterion) {
    // Two pools of 6 implementations, 500 inputs × 64 features, 50 draws of ridge-r2 fits.
    let ids = InputsId("bench-500".into());
    let g1 = SyntheticFamily::new("f", gaussian_latent(&ids, 500, 8, 1), 64, 0.3, 6, 10);
    let g2 = SyntheticFamily::new("g", gaussian_latent(&ids, 500, 8, 2), 64, 0.3, 6, 11);
    let cfg = PointTestConfig {
        progress: Default::default(),
        draws: 50,
        seed: 0,
        ..PointTestConfig::default()
    };
    let mut group = c.benchmark_group("point_test");
    group.sample_size(10);
    group.bench_function("ridge-r2 n500 d64 K6 draws50", |b| {
        b.iter(|| black_box(point_test(&g1, &g2, &cfg).expect("point test runs")))
    });
    group.finish();
}

criterion_group!(benches, measures, point);
criterion_main!(benches);
