//! Forward-pass benchmarks with a full activation cache.
//!
//! - `toy`: random 2 layers, d_model 64, 4 heads, d_mlp 256 (the paper's toy-model size),
//!   batch 1000 × seq 11.
//! - `gpt2_small_shape`: random 12 layers, d_model 768, 12 heads, d_mlp 3072, vocab 50257,
//!   batch 8 × seq 128.
//!
//! Throughput is reported in tokens/s (criterion "elements"). Peak memory: run the bench binary
//! with `CONGRUITY_BENCH_PEAK=<toy|gpt2>:<none|all>`; it does one forward pass and prints the
//! process's VmHWM (peak resident set) from /proc/self/status, with the weights-only peak for
//! reference. With `CONGRUITY_BENCH_CUDA` set (a build with `--features cuda`), the forward runs
//! on CUDA device 0 (`scripts/device-check`).

mod common;

use std::hint::black_box;

use common::vm_hwm_kib;

use candle_core::Device;
use congruity::model::config::ModelConfig;
use congruity::model::{HookSelection, RunOptions, TokenBatch, Transformer};
use criterion::{Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Setup {
    name: &'static str,
    config: ModelConfig,
    batch: usize,
    seq: usize,
}

fn setups() -> Vec<Setup> {
    let toy = ModelConfig::simple(2, 64, 4, 256, 32, 16);
    let mut gpt2 = ModelConfig::simple(12, 768, 12, 3072, 50257, 1024);
    gpt2.act_fn = Some(congruity::model::config::ActFn::GeluNew);
    vec![
        Setup {
            name: "toy",
            config: toy,
            batch: 1000,
            seq: 11,
        },
        Setup {
            name: "gpt2",
            config: gpt2,
            batch: 8,
            seq: 128,
        },
    ]
}

fn tokens(cfg: &ModelConfig, batch: usize, seq: usize) -> TokenBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let rows: Vec<Vec<u32>> = (0..batch)
        .map(|_| {
            (0..seq)
                .map(|_| rng.random_range(0..cfg.d_vocab as u32))
                .collect()
        })
        .collect();
    TokenBatch::new(&rows).expect("rectangular batch")
}

/// One forward pass in a fresh process, reporting peak memory.
fn peak(spec: &str) {
    let (name, cache) = spec.split_once(':').unwrap_or((spec, "all"));
    let setup = setups()
        .into_iter()
        .find(|s| s.name == name)
        .expect("CONGRUITY_BENCH_PEAK=<toy|gpt2>:<none|all>");
    let model = Transformer::random(setup.config.clone(), 0, &Device::Cpu).expect("random model");
    let toks = tokens(&setup.config, setup.batch, setup.seq);
    let after_weights = vm_hwm_kib();
    let sel = if cache == "none" {
        HookSelection::None
    } else {
        HookSelection::All
    };
    let start = std::time::Instant::now();
    let out = model
        .forward(&toks, &RunOptions::cache(sel))
        .expect("forward");
    let secs = start.elapsed().as_secs_f64();
    let cached_bytes: usize = out.cache.iter().map(|(_, t)| t.elem_count() * 4).sum();
    println!(
        "{name} cache={cache}: peak RSS {:.1} MiB (after building weights and tokens: {:.1} MiB); \
         {} hooks cached = {:.1} MiB; one forward {:.3} s = {:.0} tokens/s",
        vm_hwm_kib() as f64 / 1024.0,
        after_weights as f64 / 1024.0,
        out.cache.len(),
        cached_bytes as f64 / (1024.0 * 1024.0),
        secs,
        (setup.batch * setup.seq) as f64 / secs
    );
}

fn bench_device() -> Device {
    if std::env::var_os("CONGRUITY_BENCH_CUDA").is_some() {
        congruity::model::device(true).expect("CONGRUITY_BENCH_CUDA is set: CUDA device 0")
    } else {
        Device::Cpu
    }
}

fn benches(c: &mut Criterion) {
    let device = bench_device();
    for setup in setups() {
        let model = Transformer::random(setup.config.clone(), 0, &device).expect("random model");
        let toks = tokens(&setup.config, setup.batch, setup.seq);
        let mut group = c.benchmark_group(format!("forward_{}", setup.name));
        group.throughput(Throughput::Elements((setup.batch * setup.seq) as u64));
        group.sample_size(10);
        for (label, sel) in [
            ("full_cache", HookSelection::All),
            ("no_cache", HookSelection::None),
        ] {
            let opts = RunOptions::cache(sel);
            group.bench_function(label, |b| {
                b.iter(|| {
                    let out = black_box(model.forward(&toks, &opts).expect("forward"));
                    // A GPU forward is queued, not done, when it returns.
                    device.synchronize().expect("synchronize");
                    out
                })
            });
        }
        group.finish();
    }
}

fn main() {
    if std::env::var_os("CONGRUITY_DEFAULT_MALLOC").is_none() {
        congruity::model::tune_allocator();
    }
    if let Ok(spec) = std::env::var("CONGRUITY_BENCH_PEAK") {
        peak(&spec);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
