//! Loading and running a HuggingFace checkpoint: a Pythia-160M-shaped GPT-NeoX (12 layers,
//! d_model 768, 12 heads, d_mlp 3072, vocab 50304, partial rotary 0.25, parallel residual),
//! seeded random weights stored in f16 as transformers saves them, written once to a temporary
//! directory.
//!
//! - `hf_pythia160m/load`: `model::load` of the directory (memory-mapped, converted to f32).
//! - `hf_pythia160m/forward_4_hooks`: batch 8 × 128 with `blocks.{0,4,8,11}.hook_resid_post`
//!   cached, logits included.
//!
//! Peak memory: `CONGRUITY_BENCH_PEAK=1 cargo bench --bench hf` writes the checkpoint, then loads
//! and runs it once in a fresh process and prints VmHWM (peak resident set) after the load and
//! after the forward.

mod common;

use std::hint::black_box;
use std::path::Path;

use candle_core::Device;
use congruity::model::{self, HookSelection, RunOptions, TokenBatch};
use criterion::{Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, tensor::TensorView};

const VOCAB: usize = 50304;
const BATCH: usize = 8;
const SEQ: usize = 128;

/// The checkpoint's shape: Pythia-160M by default; `CONGRUITY_BENCH_SHAPE=pythia-1.4b` (peak
/// mode) writes a Pythia-1.4B-shaped one (24 layers, d_model 2048, 16 heads, d_mlp 8192; 2.8 GB
/// in f16) to show that it loads and runs on a 24 GiB machine.
#[derive(Clone, Copy)]
struct Shape {
    layers: usize,
    d: usize,
    heads: usize,
    mlp: usize,
}

fn shape() -> Shape {
    match std::env::var("CONGRUITY_BENCH_SHAPE").as_deref() {
        Ok("pythia-1.4b") => Shape {
            layers: 24,
            d: 2048,
            heads: 16,
            mlp: 8192,
        },
        _ => Shape {
            layers: 12,
            d: 768,
            heads: 12,
            mlp: 3072,
        },
    }
}

/// f16 values of magnitude 2^-6 .. 2^-5 with random signs and mantissas (seeded).
fn random_f16(n: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut bits = vec![0u16; n];
    rng.fill(bits.as_mut_slice());
    bits.iter()
        .flat_map(|b| ((b & 0x83FF) | (9 << 10)).to_le_bytes())
        .collect()
}

fn constant_f16(n: usize, value: f32) -> Vec<u8> {
    let one = half::f16::from_f32(value).to_le_bytes();
    (0..n).flat_map(|_| one).collect()
}

/// Writes the checkpoint (config.json + model.safetensors) into `dir`.
fn write_checkpoint(dir: &Path) {
    let Shape {
        layers,
        d,
        heads,
        mlp,
    } = shape();
    let mut rng = ChaCha8Rng::seed_from_u64(160);
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut random = |name: String, shape: Vec<usize>, rng: &mut ChaCha8Rng| {
        let n = shape.iter().product();
        tensors.push((name, shape, random_f16(n, rng)));
    };
    random("gpt_neox.embed_in.weight".into(), vec![VOCAB, d], &mut rng);
    for l in 0..layers {
        let p = format!("gpt_neox.layers.{l}");
        random(
            format!("{p}.attention.query_key_value.weight"),
            vec![3 * d, d],
            &mut rng,
        );
        random(format!("{p}.attention.dense.weight"), vec![d, d], &mut rng);
        random(
            format!("{p}.mlp.dense_h_to_4h.weight"),
            vec![mlp, d],
            &mut rng,
        );
        random(
            format!("{p}.mlp.dense_4h_to_h.weight"),
            vec![d, mlp],
            &mut rng,
        );
    }
    random("embed_out.weight".into(), vec![VOCAB, d], &mut rng);
    let mut fixed =
        |name: String, n: usize, v: f32| tensors.push((name, vec![n], constant_f16(n, v)));
    for l in 0..layers {
        let p = format!("gpt_neox.layers.{l}");
        for norm in ["input_layernorm", "post_attention_layernorm"] {
            fixed(format!("{p}.{norm}.weight"), d, 1.0);
            fixed(format!("{p}.{norm}.bias"), d, 0.0);
        }
        fixed(format!("{p}.attention.query_key_value.bias"), 3 * d, 0.0);
        fixed(format!("{p}.attention.dense.bias"), d, 0.0);
        fixed(format!("{p}.mlp.dense_h_to_4h.bias"), mlp, 0.0);
        fixed(format!("{p}.mlp.dense_4h_to_h.bias"), d, 0.0);
    }
    fixed("gpt_neox.final_layer_norm.weight".into(), d, 1.0);
    fixed("gpt_neox.final_layer_norm.bias".into(), d, 0.0);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F16, s.clone(), b).expect("view"),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).expect("write");
    let config = serde_json::json!({
        "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "dtype": "float16",
        "num_hidden_layers": layers, "hidden_size": d, "num_attention_heads": heads,
        "intermediate_size": mlp, "vocab_size": VOCAB, "max_position_embeddings": 2048,
        "hidden_act": "gelu", "layer_norm_eps": 1e-5, "use_parallel_residual": true,
        "tie_word_embeddings": false,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000, "partial_rotary_factor": 0.25},
    });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config");
}

fn tokens() -> TokenBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let rows: Vec<Vec<u32>> = (0..BATCH)
        .map(|_| {
            (0..SEQ)
                .map(|_| rng.random_range(0..VOCAB as u32))
                .collect()
        })
        .collect();
    TokenBatch::new(&rows).expect("rectangular batch")
}

/// Four hooks spread over the depth: `hook_resid_post` of layers 0, L/3, 2L/3 and L-1.
fn hooks(m: &model::Transformer) -> HookSelection {
    let l = m.config().n_layers;
    let names: Vec<String> = [0, l / 3, 2 * l / 3, l - 1]
        .iter()
        .map(|i| format!("blocks.{i}.hook_resid_post"))
        .collect();
    m.select_hooks(&names).expect("hooks")
}

fn vm_hwm_mib() -> f64 {
    common::vm_hwm_kib() as f64 / 1024.0
}

fn peak(dir: &Path) {
    let start = std::time::Instant::now();
    let m = model::load(dir, &Device::Cpu).expect("load");
    let load = start.elapsed().as_secs_f64();
    let after_load = vm_hwm_mib();
    let toks = tokens();
    let start = std::time::Instant::now();
    let out = m
        .transformer
        .forward(&toks, &RunOptions::cache(hooks(&m.transformer)))
        .expect("forward");
    let fwd = start.elapsed().as_secs_f64();
    println!(
        "{} layers, d_model {} ({} weights, f16 on disk, {:.0} MiB): load {load:.2} s, peak RSS after load {after_load:.0} MiB; \
         forward 8x128 with {} hooks {fwd:.2} s, peak RSS {:.0} MiB",
        m.transformer.config().n_layers,
        m.transformer.config().d_model,
        model::hf::stored_parameters(dir).unwrap_or(0),
        std::fs::metadata(dir.join("model.safetensors"))
            .map_or(0.0, |m| m.len() as f64 / 1048576.0),
        out.cache.len(),
        vm_hwm_mib()
    );
}

fn main() {
    if let Some(dir) = std::env::var_os("CONGRUITY_BENCH_PEAK_DIR") {
        peak(Path::new(&dir));
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    write_checkpoint(tmp.path());
    if std::env::var_os("CONGRUITY_BENCH_PEAK").is_some() {
        // Measured in a fresh process, so that writing the checkpoint does not count.
        let status = std::process::Command::new(std::env::current_exe().expect("own path"))
            .env("CONGRUITY_BENCH_PEAK_DIR", tmp.path())
            .status()
            .expect("re-run");
        assert!(status.success());
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("hf_pythia160m");
    group.sample_size(10);
    group.bench_function("load", |b| {
        b.iter(|| black_box(model::load(tmp.path(), &Device::Cpu).expect("load")))
    });
    let m = model::load(tmp.path(), &Device::Cpu).expect("load");
    let toks = tokens();
    let opts = RunOptions::cache(hooks(&m.transformer));
    group.throughput(Throughput::Elements((BATCH * SEQ) as u64));
    group.bench_function("forward_4_hooks", |b| {
        b.iter(|| black_box(m.transformer.forward(&toks, &opts).expect("forward")))
    });
    group.finish();
    c.final_summary();
}
