//! HuggingFace checkpoints — GPT-2 (`GPT2LMHeadModel`), GPT-NeoX / Pythia (`GPTNeoXForCausalLM`)
//! and Llama (`LlamaForCausalLM`) — loaded into the runtime under TransformerLens names and
//! semantics, the way TransformerLens' own weight converters map them: per-head `W_Q/W_K/W_V`
//! `[heads, d_model, d_head]`, `W_O` `[heads, d_head, d_model]`, `W_in/W_out` `[in, out]`. Every
//! hook then means what it means in TransformerLens, so circuits and results transfer.
//!
//! The layout is read from `config.json` (`model_type`, `architectures`); anything the runtime
//! would compute differently (another architecture, rope scaling, sliding windows, cross
//! attention, ...) is refused with the field and value named — never a silently wrong forward.
//! Weights come from `model.safetensors` or from the shards `model.safetensors.index.json` names,
//! in f32, f16 or bf16 (computed in f32).
//!
//! Grouped-query attention (Llama `num_key_value_heads` < `num_attention_heads`) is kept as it
//! is, as in TransformerLens: `W_K` / `W_V` have one slice per key/value head, `hook_k` /
//! `hook_v` hold the key/value heads (patching selects one of them), and query head `j` reads
//! key/value head `j / (heads / kv)`.

mod checkpoint;
mod config;
mod convert;

use std::path::Path;

use candle_core::Device;
use serde_json::Value;

use checkpoint::read_checkpoint;
pub use checkpoint::{INDEX_FILE, stored_parameters};
use config::{Cfg, architecture};

use super::error::{ComputeContext, ModelError};
use super::io::{NamedTensors, read_json};
use super::transformer::Transformer;
use super::weights::Weights;

/// The architectures this module loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HfArchitecture {
    Gpt2,
    GptNeoX,
    Llama,
}

impl HfArchitecture {
    pub fn name(self) -> &'static str {
        match self {
            HfArchitecture::Gpt2 => "GPT2LMHeadModel",
            HfArchitecture::GptNeoX => "GPTNeoXForCausalLM",
            HfArchitecture::Llama => "LlamaForCausalLM",
        }
    }
}

/// Whether a parsed `config.json` is a HuggingFace config (it names a `model_type` or
/// `architectures` and has none of TransformerLens' own size fields).
pub fn is_hf_config(v: &Value) -> bool {
    (v.get("model_type").is_some() || v.get("architectures").is_some())
        && v.get("d_model").is_none()
        && v.get("n_layers").is_none()
}

/// A HuggingFace checkpoint, loaded: the runtime model and what it was.
#[derive(Clone, Debug)]
pub struct HfModel {
    pub transformer: Transformer,
    pub architecture: HfArchitecture,
}

/// Loads the HuggingFace checkpoint in `dir` onto `device`.
pub fn load_hf(dir: &Path, device: &Device) -> Result<HfModel, ModelError> {
    let raw: Value = read_json(&dir.join("config.json"))?;
    load_hf_with_config(dir, &raw, device)
}

/// [`load_hf`] with `dir/config.json` already parsed (as `model::load` has it, to detect the
/// format).
pub fn load_hf_with_config(
    dir: &Path,
    raw: &Value,
    device: &Device,
) -> Result<HfModel, ModelError> {
    let config_path = dir.join("config.json");
    let c = Cfg {
        v: raw,
        path: &config_path,
    };
    let arch = architecture(&c)?;
    // Rotary tables are [n_ctx, d_head] sin and cos in f32; counted before anything is read.
    let n_ctx = ["n_positions", "max_position_embeddings"]
        .iter()
        .find_map(|f| c.opt_usize(f).ok().flatten())
        .unwrap_or(0) as u64;
    let d_head = c.opt_usize("head_dim")?.unwrap_or_else(|| {
        let d = ["n_embd", "hidden_size"]
            .iter()
            .find_map(|f| c.opt_usize(f).ok().flatten());
        let h = ["n_head", "num_attention_heads"]
            .iter()
            .find_map(|f| c.opt_usize(f).ok().flatten());
        d.zip(h).map_or(0, |(d, h)| d / h.max(1))
    }) as u64;
    let tensors = read_checkpoint(dir, n_ctx.saturating_mul(d_head).saturating_mul(8))?;
    let (config, named) = match arch {
        HfArchitecture::Gpt2 => convert::gpt2(&c, &tensors)?,
        HfArchitecture::GptNeoX => convert::neox(&c, &tensors)?,
        HfArchitecture::Llama => convert::llama(&c, &tensors)?,
    };
    let named = NamedTensors::from_host(&tensors.origin, named);
    let weights = Weights::from_named(&config, &named, device)?;
    let transformer = Transformer::new(config, weights)?;
    residual_self_check(&transformer, dir)?;
    Ok(HfModel {
        transformer,
        architecture: arch,
    })
}

/// The residual identities on a short probe input: `resid_pre + attn_out = resid_mid` and
/// `resid_mid + mlp_out = resid_post` (parallel blocks: `resid_pre + attn_out + mlp_out =
/// resid_post`), and each block's `resid_post` is the next one's `resid_pre`. A converter that
/// put a weight in the wrong place can still produce plausible logits; it cannot keep these
/// while mislabelling what the hooks hold. One forward of four tokens: cheap enough to run always.
pub fn residual_self_check(t: &Transformer, dir: &Path) -> Result<(), ModelError> {
    use super::hooks::{BlockHook, HookPoint, HookSelection};
    use super::transformer::{RunOptions, TokenBatch};
    let cfg = t.config();
    let len = cfg.n_ctx.clamp(1, 4);
    let probe: Vec<u32> = (0..len)
        .map(|i| ((i * 7 + 1) % cfg.d_vocab) as u32)
        .collect();
    let parallel = cfg.parallel_attn_mlp;
    let mut points = Vec::new();
    for l in 0..cfg.n_layers {
        for h in [
            BlockHook::ResidPre,
            BlockHook::AttnOut,
            BlockHook::ResidPost,
        ] {
            points.push(HookPoint::block(l, h));
        }
        if !cfg.attn_only {
            points.push(HookPoint::block(l, BlockHook::MlpOut));
            if !parallel {
                points.push(HookPoint::block(l, BlockHook::ResidMid));
            }
        }
    }
    let out = t.forward(
        &TokenBatch::single(probe)?,
        &RunOptions::cache(HookSelection::only(points)),
    )?;
    let get = |l: usize, h: BlockHook| -> Result<Vec<f32>, ModelError> {
        let point = HookPoint::block(l, h);
        out.cache
            .get(&point)
            .ok_or_else(|| ModelError::Decode(format!("self-check: {point} was not cached")))?
            .flatten_all()
            .and_then(|x| x.to_vec1::<f32>())
            .ctx("reading the self-check's activations")
    };
    let fail = |what: String| ModelError::UnknownFormat {
        dir: dir.to_path_buf(),
        reason: format!(
            "the loaded model fails its residual self-check: {what}; the checkpoint's weights do not map onto the hooks as this loader assumes"
        ),
    };
    let check = |what: &str, sum: &[f32], want: &[f32]| -> Result<(), ModelError> {
        let scale = want.iter().fold(1.0f32, |m, x| m.max(x.abs()));
        let err = sum
            .iter()
            .zip(want)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        if err > 1e-3 * scale || err.is_nan() {
            return Err(fail(format!("{what} is off by {err:e} (scale {scale:e})")));
        }
        Ok(())
    };
    let add = |a: &[f32], b: &[f32]| -> Vec<f32> { a.iter().zip(b).map(|(x, y)| x + y).collect() };
    for l in 0..cfg.n_layers {
        let pre = get(l, BlockHook::ResidPre)?;
        let attn = get(l, BlockHook::AttnOut)?;
        let post = get(l, BlockHook::ResidPost)?;
        let after_attn = add(&pre, &attn);
        if cfg.attn_only {
            check(
                &format!("layer {l}: resid_pre + attn_out = resid_post"),
                &after_attn,
                &post,
            )?;
        } else if parallel {
            let mlp = get(l, BlockHook::MlpOut)?;
            check(
                &format!("layer {l}: resid_pre + attn_out + mlp_out = resid_post"),
                &add(&after_attn, &mlp),
                &post,
            )?;
        } else {
            let mid = get(l, BlockHook::ResidMid)?;
            let mlp = get(l, BlockHook::MlpOut)?;
            check(
                &format!("layer {l}: resid_pre + attn_out = resid_mid"),
                &after_attn,
                &mid,
            )?;
            check(
                &format!("layer {l}: resid_mid + mlp_out = resid_post"),
                &add(&mid, &mlp),
                &post,
            )?;
        }
        if l + 1 < cfg.n_layers {
            check(
                &format!(
                    "blocks.{l}.hook_resid_post = blocks.{}.hook_resid_pre",
                    l + 1
                ),
                &post,
                &get(l + 1, BlockHook::ResidPre)?,
            )?;
        }
    }
    Ok(())
}
