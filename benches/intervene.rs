//! Intervention benchmarks.
//!
//! - `sweep/heads_by_position`: a full head × position patching sweep of `attn.hook_z` on the
//!   toy-size model (2 layers, d_model 64, 4 heads, d_mlp 256; batch 64 × seq 11): 88 patched runs,
//!   the source run computed once and its cache reused for every site.
//! - `sweep/naive_heads_by_position`: the same sites, each patched with `intervene::patch`, which
//!   re-runs the source (and the base) for every site — what a loop over single patches costs.

use std::hint::black_box;

use candle_core::Device;
use congruity::intervene::{Metric, SweepKind, parse_family, patch, sweep};
use congruity::model::{HookPoint, ModelConfig, Site, TokenBatch, Transformer};
use criterion::Criterion;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let cfg = ModelConfig::simple(2, 64, 4, 256, 50, 16);
    let model = Transformer::random(cfg.clone(), 7, &Device::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut rows = |n: usize| -> Vec<Vec<u32>> {
        (0..n)
            .map(|_| (0..11).map(|_| rng.random_range(0..50)).collect())
            .collect()
    };
    let base = TokenBatch::new(&rows(64)).unwrap();
    let source = TokenBatch::new(&rows(64)).unwrap();
    let metric = Metric::LogitDiff { a: 1, b: 2 };
    let family = parse_family("attn.hook_z").unwrap();
    let mut g = c.benchmark_group("sweep");
    g.sample_size(10);
    g.bench_function("heads_by_position", |b| {
        b.iter(|| {
            sweep(
                &model,
                None,
                black_box(&base),
                &source,
                family,
                SweepKind::HeadsByPosition,
                &metric,
            )
            .unwrap()
        })
    });
    g.bench_function("naive_heads_by_position", |b| {
        b.iter(|| {
            for l in 0..cfg.n_layers {
                for p in 0..11 {
                    for h in 0..cfg.n_heads {
                        let site = Site::hook(HookPoint::block(l, family))
                            .with_head(h)
                            .with_positions(vec![p]);
                        black_box(patch(&model, &base, &source, &[site]).unwrap());
                    }
                }
            }
        })
    });
    g.finish();
}
