//! `ModelConfig`: the part of TransformerLens' `HookedTransformerConfig` that decides the forward
//! pass, parsed from `config.json` (= `cfg.to_dict()`).
//!
//! Policy: a field that changes what the network computes is either implemented exactly as
//! TransformerLens computes it, or refused with an error naming the field and its value. Fields
//! that cannot change the function (`seed`, `init_range`, `device`, `tokenizer_name`, ...) and
//! fields we do not know are ignored, so newer TransformerLens versions still load. Defaults for
//! missing fields follow `HookedTransformerConfig`, so a hand-written or compiler-written
//! `config.json` may be short.
//!
//! `dtype` is accepted for every floating type, but congruity always computes in f32 (weights
//! are converted on load): parity is with the f32 TransformerLens forward.

use std::path::Path;

use serde_json::{Map, Value, json};

mod read;

use super::error::ModelError;
use super::io::{NamedTensors, read_json};

/// Normalization layer type (`normalization_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalization {
    /// `LN`: center, scale, then affine `w`, `b`.
    LayerNorm,
    /// `LNPre`: center and scale only (weights folded elsewhere).
    LayerNormPre,
    /// `RMS`: scale by the root mean square, then multiply by `w`.
    Rms,
    /// `RMSPre`: scale only.
    RmsPre,
    /// `null`: no normalization, no normalization hooks.
    None,
}

impl Normalization {
    /// The TransformerLens spelling (`None` is JSON null).
    pub fn tl_name(self) -> Option<&'static str> {
        match self {
            Normalization::LayerNorm => Some("LN"),
            Normalization::LayerNormPre => Some("LNPre"),
            Normalization::Rms => Some("RMS"),
            Normalization::RmsPre => Some("RMSPre"),
            Normalization::None => None,
        }
    }
}

/// MLP activation (`act_fn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActFn {
    Relu,
    /// Exact erf GELU (`torch.nn.functional.gelu`).
    Gelu,
    /// GPT-2's tanh approximation.
    GeluNew,
    /// Same tanh approximation, written differently in TransformerLens.
    GeluFast,
    /// `F.gelu(approximate="tanh")`.
    GeluPytorchTanh,
    Silu,
    /// `x * softmax(x)` over the hidden units.
    Solu,
    /// SoLU followed by a LayerNorm over the hidden units (`mlp.hook_mid`, `mlp.ln.*`).
    SoluLn,
}

impl ActFn {
    pub const ALL: [(&'static str, ActFn); 8] = [
        ("relu", ActFn::Relu),
        ("gelu", ActFn::Gelu),
        ("gelu_new", ActFn::GeluNew),
        ("gelu_fast", ActFn::GeluFast),
        ("gelu_pytorch_tanh", ActFn::GeluPytorchTanh),
        ("silu", ActFn::Silu),
        ("solu", ActFn::Solu),
        ("solu_ln", ActFn::SoluLn),
    ];

    pub fn tl_name(self) -> &'static str {
        ActFn::ALL
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(n, _)| *n)
            .unwrap_or("relu")
    }

    /// TransformerLens' `is_layer_norm_activation`: the act_fn name ends in `_ln`.
    pub fn has_layer_norm(self) -> bool {
        self == ActFn::SoluLn
    }
}

/// Rotary embedding parameters (TransformerLens `calculate_sin_cos_rotary`, default branch).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rotary {
    /// Number of leading dimensions of each head that are rotated.
    pub dim: usize,
    pub base: f64,
    /// GPT-J style (rotate adjacent pairs) when true; GPT-NeoX style (rotate halves) when false.
    pub adjacent_pairs: bool,
    /// Linear RoPE scaling: frequencies (periods) are multiplied by this factor.
    pub scaling_factor: f64,
}

/// Positional information (`positional_embedding_type`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Positional {
    /// `W_pos` added to the residual stream.
    Standard,
    /// `W_pos` added to the query and key inputs of every layer only, never to the residual.
    Shortformer,
    Rotary(Rotary),
}

/// `attention_dir`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionDir {
    Causal,
    Bidirectional,
}

/// The forward-pass-relevant configuration of a TransformerLens model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub n_layers: usize,
    pub d_model: usize,
    pub n_heads: usize,
    /// Grouped-query attention (`n_key_value_heads`): key/value heads, each shared by
    /// `n_heads / n_kv` query heads; `None` = one per query head. TransformerLens stores their
    /// weights as `_W_K`, `_W_V`, `_b_K`, `_b_V` ([n_kv, ...]) and `hook_k` / `hook_v` hold them.
    pub n_key_value_heads: Option<usize>,
    pub d_head: usize,
    /// `None` exactly when `attn_only`.
    pub d_mlp: Option<usize>,
    pub d_vocab: usize,
    pub d_vocab_out: usize,
    pub n_ctx: usize,
    /// `None` exactly when `attn_only`.
    pub act_fn: Option<ActFn>,
    pub normalization: Normalization,
    /// With LN / LNPre, use RMS (RMSPre) for `ln_final` instead.
    pub final_rms: bool,
    pub positional: Positional,
    pub attention_dir: AttentionDir,
    pub attn_only: bool,
    /// Divisor of the attention scores (1 when `use_attn_scale` is false), before the
    /// per-layer factor of `scale_attn_by_inverse_layer_idx`.
    pub attn_scale: f64,
    pub use_attn_scale: bool,
    pub scale_attn_by_inverse_layer_idx: bool,
    pub eps: f64,
    /// `attn_scores_soft_cap` when > 0.
    pub attn_scores_soft_cap: Option<f64>,
    /// `output_logits_soft_cap` when > 0.
    pub output_logits_soft_cap: Option<f64>,
    pub parallel_attn_mlp: bool,
    pub gated_mlp: bool,
    pub use_attn_result: bool,
    /// Per-head copies of the residual as q/k/v inputs (`hook_q_input`, ...).
    pub use_split_qkv_input: bool,
    /// Per-head copy of the residual as attention input (`hook_attn_in`).
    pub use_attn_in: bool,
    pub use_hook_mlp_in: bool,
    /// Whether `hook_tokens` exists.
    pub use_hook_tokens: bool,
}

impl ModelConfig {
    /// Checks the sizes that no tensor shape checks before memory is allocated for them:
    /// `n_layers` against the blocks `src` holds, and rotary tables (`n_ctx` × `rotary_dim`)
    /// against the memory available. `path` names the config in errors.
    pub fn check_against(&self, src: &NamedTensors, path: &Path) -> Result<(), ModelError> {
        let invalid = |field: &str, reason: String| ModelError::InvalidConfig {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason,
        };
        let blocks = src
            .names()
            .filter_map(|n| {
                n.strip_prefix("blocks.")?
                    .split('.')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .max()
            .map_or(0, |l| l + 1);
        if self.n_layers > blocks {
            return Err(invalid(
                "n_layers",
                format!(
                    "is {}, but {} holds {}",
                    self.n_layers,
                    src.path.display(),
                    match blocks {
                        0 => "no block".to_string(),
                        1 => "block 0 only".to_string(),
                        n => format!("blocks 0..{}", n - 1),
                    }
                ),
            ));
        }
        if let Positional::Rotary(r) = self.positional {
            let bytes = (self.n_ctx as u64)
                .saturating_mul(r.dim as u64)
                .saturating_mul(8);
            if let Some(available) = super::available_memory()
                && bytes > available
            {
                return Err(invalid(
                    "n_ctx",
                    format!(
                        "is {}: rotary tables of n_ctx × rotary_dim ({}) need {bytes} bytes, and {available} are available",
                        self.n_ctx, r.dim
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The divisor of layer `layer`'s attention scores.
    pub fn layer_attn_scale(&self, layer: usize) -> f64 {
        if self.scale_attn_by_inverse_layer_idx {
            self.attn_scale * (layer + 1) as f64
        } else {
            self.attn_scale
        }
    }

    /// Whether `W_pos` exists.
    /// Key/value heads: `n_key_value_heads`, or one per query head.
    pub fn n_kv_heads(&self) -> usize {
        self.n_key_value_heads.unwrap_or(self.n_heads)
    }

    pub fn has_pos_embed(&self) -> bool {
        matches!(
            self.positional,
            Positional::Standard | Positional::Shortformer
        )
    }

    /// The normalization used by `ln_final` (TL swaps in RMS when `final_rms`).
    pub fn final_normalization(&self) -> Normalization {
        match (self.normalization, self.final_rms) {
            (Normalization::LayerNorm, true) => Normalization::Rms,
            (Normalization::LayerNormPre, true) => Normalization::RmsPre,
            (n, _) => n,
        }
    }

    /// The normalization inside a `solu_ln` MLP: LN when the model uses LN, else LNPre.
    pub fn mlp_ln_normalization(&self) -> Normalization {
        if self.normalization == Normalization::LayerNorm {
            Normalization::LayerNorm
        } else {
            Normalization::LayerNormPre
        }
    }

    /// A `config.json` with the HookedTransformerConfig fields this config sets, readable by
    /// both congruity and `HookedTransformerConfig(**json)`.
    pub fn to_tl_json(&self) -> Value {
        let (pos_type, rotary) = match self.positional {
            Positional::Standard => ("standard", None),
            Positional::Shortformer => ("shortformer", None),
            Positional::Rotary(r) => ("rotary", Some(r)),
        };
        let mut m = Map::new();
        m.insert("n_layers".into(), json!(self.n_layers));
        m.insert("d_model".into(), json!(self.d_model));
        m.insert("n_heads".into(), json!(self.n_heads));
        if let Some(kv) = self.n_key_value_heads {
            m.insert("n_key_value_heads".into(), json!(kv));
        }
        m.insert("d_head".into(), json!(self.d_head));
        m.insert("d_mlp".into(), json!(self.d_mlp));
        m.insert("d_vocab".into(), json!(self.d_vocab));
        m.insert("d_vocab_out".into(), json!(self.d_vocab_out));
        m.insert("n_ctx".into(), json!(self.n_ctx));
        m.insert("act_fn".into(), json!(self.act_fn.map(ActFn::tl_name)));
        m.insert(
            "normalization_type".into(),
            json!(self.normalization.tl_name()),
        );
        m.insert("final_rms".into(), json!(self.final_rms));
        m.insert("positional_embedding_type".into(), json!(pos_type));
        if let Some(r) = rotary {
            m.insert("rotary_dim".into(), json!(r.dim));
            m.insert("rotary_base".into(), json!(r.base));
            m.insert("rotary_adjacent_pairs".into(), json!(r.adjacent_pairs));
            m.insert("rotary_scaling_factor".into(), json!(r.scaling_factor));
        }
        m.insert(
            "attention_dir".into(),
            json!(match self.attention_dir {
                AttentionDir::Causal => "causal",
                AttentionDir::Bidirectional => "bidirectional",
            }),
        );
        m.insert("attn_only".into(), json!(self.attn_only));
        m.insert("use_attn_scale".into(), json!(self.use_attn_scale));
        m.insert("attn_scale".into(), json!(self.attn_scale));
        m.insert(
            "scale_attn_by_inverse_layer_idx".into(),
            json!(self.scale_attn_by_inverse_layer_idx),
        );
        m.insert("eps".into(), json!(self.eps));
        m.insert(
            "attn_scores_soft_cap".into(),
            json!(self.attn_scores_soft_cap.unwrap_or(-1.0)),
        );
        m.insert(
            "output_logits_soft_cap".into(),
            json!(self.output_logits_soft_cap.unwrap_or(-1.0)),
        );
        m.insert("parallel_attn_mlp".into(), json!(self.parallel_attn_mlp));
        m.insert("gated_mlp".into(), json!(self.gated_mlp));
        m.insert("use_attn_result".into(), json!(self.use_attn_result));
        m.insert(
            "use_split_qkv_input".into(),
            json!(self.use_split_qkv_input),
        );
        m.insert("use_attn_in".into(), json!(self.use_attn_in));
        m.insert("use_hook_mlp_in".into(), json!(self.use_hook_mlp_in));
        m.insert("use_hook_tokens".into(), json!(self.use_hook_tokens));
        m.insert("dtype".into(), json!("torch.float32"));
        Value::Object(m)
    }

    /// A plain config: LN, relu, standard positions, causal, d_head = d_model / n_heads, no
    /// optional hooks. Tests and benches use it as is; importers (tracr) override what differs.
    pub fn simple(
        n_layers: usize,
        d_model: usize,
        n_heads: usize,
        d_mlp: usize,
        d_vocab: usize,
        n_ctx: usize,
    ) -> Self {
        let d_head = d_model / n_heads.max(1);
        ModelConfig {
            n_layers,
            d_model,
            n_heads,
            n_key_value_heads: None,
            d_head,
            d_mlp: Some(d_mlp),
            d_vocab,
            d_vocab_out: d_vocab,
            n_ctx,
            act_fn: Some(ActFn::Relu),
            normalization: Normalization::LayerNorm,
            final_rms: false,
            positional: Positional::Standard,
            attention_dir: AttentionDir::Causal,
            attn_only: false,
            attn_scale: (d_head as f64).sqrt(),
            use_attn_scale: true,
            scale_attn_by_inverse_layer_idx: false,
            eps: 1e-5,
            attn_scores_soft_cap: None,
            output_logits_soft_cap: None,
            parallel_attn_mlp: false,
            gated_mlp: false,
            use_attn_result: false,
            use_split_qkv_input: false,
            use_attn_in: false,
            use_hook_mlp_in: false,
            use_hook_tokens: false,
        }
    }
}

#[cfg(test)]
mod tests;
