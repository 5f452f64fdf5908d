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

/// Fields that change the forward pass in ways congruity does not implement: they must be
/// false (or absent).
const MUST_BE_FALSE: &[(&str, &str)] = &[
    (
        "use_local_attn",
        "local (windowed) attention is not implemented",
    ),
    (
        "use_normalization_before_and_after",
        "post-sublayer normalization is not implemented",
    ),
    ("use_qk_norm", "query/key normalization is not implemented"),
    (
        "post_embedding_ln",
        "a LayerNorm after the embedding is not implemented",
    ),
    (
        "use_NTK_by_parts_rope",
        "NTK-by-parts rotary scaling is not implemented",
    ),
    ("use_yarn_rope", "YaRN rotary scaling is not implemented"),
    (
        "use_dynamic_ntk_rope",
        "dynamic NTK rotary scaling is not implemented",
    ),
    ("use_attention_sinks", "attention sinks are not implemented"),
    (
        "use_logn_attn",
        "log-n attention scaling is not implemented",
    ),
    ("load_in_4bit", "4-bit quantized weights are not supported"),
];

/// Fields that must be null (or absent).
const MUST_BE_NULL: &[(&str, &str)] = &[
    ("num_experts", "mixture-of-experts MLPs are not implemented"),
    ("clip_qkv", "clipping q/k/v is not implemented"),
];

/// `original_architecture` values whose blocks TransformerLens wires differently.
const REFUSED_ARCHITECTURES: &[&str] =
    &["OlmoeForCausalLM", "Olmo2ForCausalLM", "Olmo3ForCausalLM"];

const FLOAT_DTYPES: &[&str] = &[
    "torch.float32",
    "torch.float64",
    "torch.float16",
    "torch.bfloat16",
    "float32",
    "float64",
    "float16",
    "bfloat16",
];

/// Typed access to the JSON object with errors that name `config.json` and the field.
struct Fields<'a> {
    path: &'a Path,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// Refuses what TransformerLens supports and this runtime does not: flags that must stay
    /// false or unset, refused architectures, non-float dtypes.
    fn refuse_unsupported(&self) -> Result<(), ModelError> {
        for (field, reason) in MUST_BE_FALSE {
            if self.bool(field, false)? {
                return Err(self.unsupported(field, &Value::Bool(true), *reason));
            }
        }
        for (field, reason) in MUST_BE_NULL {
            if let Some(v) = self.get(field) {
                return Err(self.unsupported(field, v, *reason));
            }
        }
        if let Some(arch) = self.string("original_architecture")?
            && REFUSED_ARCHITECTURES.contains(&arch)
        {
            return Err(self.unsupported(
            "original_architecture",
            &json!(arch),
            "TransformerLens applies OLMo-specific normalization placement, which is not implemented",
        ));
        }
        if let Some(dtype) = self.string("dtype")?
            && !FLOAT_DTYPES.contains(&dtype)
        {
            return Err(self.unsupported(
                "dtype",
                &json!(dtype),
                "only floating-point models are supported",
            ));
        }
        Ok(())
    }

    /// `n_heads` (derived from d_model / d_head when unset) and `n_key_value_heads`.
    fn heads(&self, d_model: usize, d_head: usize) -> Result<(usize, Option<usize>), ModelError> {
        let n_heads = match self.optional_positive("n_heads")? {
            Some(h) => h,
            None => {
                if !d_model.is_multiple_of(d_head) {
                    return Err(self.invalid(
                        "n_heads",
                        "unset, and d_model is not a multiple of d_head to derive it",
                    ));
                }
                d_model / d_head
            }
        };
        let n_key_value_heads = self.optional_positive("n_key_value_heads")?;
        if let Some(kv) = n_key_value_heads {
            if n_heads % kv != 0 {
                return Err(self.invalid(
                    "n_key_value_heads",
                    format!("{kv} does not divide n_heads {n_heads}"),
                ));
            }
            for (flag, name) in [
                ("use_split_qkv_input", "split q/k/v inputs"),
                ("use_attn_in", "hook_attn_in"),
            ] {
                if self.bool(flag, false)? {
                    return Err(self.invalid(
                        "n_key_value_heads",
                        format!("grouped-query attention with {name} ({flag}) is not implemented"),
                    ));
                }
            }
        }
        Ok((n_heads, n_key_value_heads))
    }

    /// `d_mlp` and `act_fn`, both required unless the model is attention-only.
    fn mlp(&self, attn_only: bool) -> Result<(Option<usize>, Option<ActFn>), ModelError> {
        Ok(if attn_only {
            (None, None)
        } else {
            let d_mlp = self
                .optional_positive("d_mlp")?
                .ok_or_else(|| self.invalid("d_mlp", "missing; required unless attn_only"))?;
            let name = self
                .string("act_fn")?
                .ok_or_else(|| self.invalid("act_fn", "missing; required unless attn_only"))?;
            let act = ActFn::ALL
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, a)| *a)
                .ok_or_else(|| {
                    let names: Vec<&str> = ActFn::ALL.iter().map(|(n, _)| *n).collect();
                    self.unsupported(
                        "act_fn",
                        &json!(name),
                        format!("supported activations: {}", names.join(", ")),
                    )
                })?;
            (Some(d_mlp), Some(act))
        })
    }

    /// `normalization_type`.
    fn normalization(&self) -> Result<Normalization, ModelError> {
        Ok(match self.map.get("normalization_type") {
            // Absent means TL's default "LN"; explicit null means no normalization.
            None => Normalization::LayerNorm,
            Some(Value::Null) => Normalization::None,
            Some(Value::String(s)) => match s.as_str() {
                "LN" => Normalization::LayerNorm,
                "LNPre" => Normalization::LayerNormPre,
                "RMS" => Normalization::Rms,
                "RMSPre" => Normalization::RmsPre,
                _ => {
                    return Err(self.unsupported(
                        "normalization_type",
                        &json!(s),
                        "supported: LN, LNPre, RMS, RMSPre, null",
                    ));
                }
            },
            Some(v) => {
                return Err(self.invalid(
                    "normalization_type",
                    format!("expected a string or null, found {v}"),
                ));
            }
        })
    }

    /// `positional_embedding_type` and, for rotary embeddings, their parameters.
    fn positional(&self, d_head: usize) -> Result<Positional, ModelError> {
        let pos_name = self
            .string("positional_embedding_type")?
            .unwrap_or("standard");
        Ok(match pos_name {
            "standard" => Positional::Standard,
            "shortformer" => Positional::Shortformer,
            "rotary" => {
                let dim = self.optional_positive("rotary_dim")?.unwrap_or(d_head);
                if dim > d_head || dim % 2 != 0 {
                    return Err(self.invalid(
                        "rotary_dim",
                        format!("must be even and at most d_head = {d_head}, found {dim}"),
                    ));
                }
                let base = self.float("rotary_base", 10000.0)?;
                if base <= 0.0 {
                    return Err(
                        self.invalid("rotary_base", format!("must be positive, found {base}"))
                    );
                }
                let scaling_factor = self.float("rotary_scaling_factor", 1.0)?;
                if scaling_factor <= 0.0 {
                    return Err(self.invalid(
                        "rotary_scaling_factor",
                        format!("must be positive, found {scaling_factor}"),
                    ));
                }
                Positional::Rotary(Rotary {
                    dim,
                    base,
                    adjacent_pairs: self.bool("rotary_adjacent_pairs", false)?,
                    scaling_factor,
                })
            }
            other => {
                return Err(self.unsupported(
                    "positional_embedding_type",
                    &json!(other),
                    "supported: standard, shortformer, rotary",
                ));
            }
        })
    }

    /// `attention_dir`.
    fn attention_dir(&self) -> Result<AttentionDir, ModelError> {
        Ok(match self.string("attention_dir")?.unwrap_or("causal") {
            "causal" => AttentionDir::Causal,
            "bidirectional" => AttentionDir::Bidirectional,
            other => {
                return Err(self.unsupported(
                    "attention_dir",
                    &json!(other),
                    "supported: causal, bidirectional",
                ));
            }
        })
    }

    /// `use_attn_scale` and the divisor of attention scores (√d_head unless `attn_scale` is set).
    fn attn_scale(&self, d_head: usize) -> Result<(bool, f64), ModelError> {
        let use_attn_scale = self.bool("use_attn_scale", true)?;
        let scale = if use_attn_scale {
            let s = self.float("attn_scale", -1.0)?;
            if s == -1.0 {
                (d_head as f64).sqrt()
            } else if s > 0.0 {
                s
            } else {
                return Err(self.invalid("attn_scale", format!("must be positive, found {s}")));
            }
        } else {
            1.0
        };
        Ok((use_attn_scale, scale))
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn invalid(&self, field: &str, reason: impl Into<String>) -> ModelError {
        ModelError::InvalidConfig {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    fn unsupported(&self, field: &str, value: &Value, reason: impl Into<String>) -> ModelError {
        ModelError::UnsupportedConfig {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// An integer field; `missing_as` is used when absent, null, or equal to TL's `-1` "unset".
    fn int(&self, field: &str, missing_as: Option<i64>) -> Result<Option<i64>, ModelError> {
        match self.get(field) {
            None => Ok(missing_as),
            Some(v) => {
                // A float is taken only where it is an integer f64 holds exactly: `1e30` or
                // 2^63 would otherwise saturate into a size nothing can allocate.
                const EXACT: f64 = (1u64 << 53) as f64;
                let n = v
                    .as_i64()
                    .or_else(|| {
                        v.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() <= EXACT)
                            .map(|f| f as i64)
                    })
                    .ok_or_else(|| {
                        self.invalid(
                            field,
                            format!("expected an integer below 2^53, found {}", clip(v)),
                        )
                    })?;
                if n == -1 { Ok(missing_as) } else { Ok(Some(n)) }
            }
        }
    }

    fn required_positive(&self, field: &str) -> Result<usize, ModelError> {
        let n = self
            .int(field, None)?
            .ok_or_else(|| self.invalid(field, "missing (required)"))?;
        positive(self, field, n)
    }

    fn optional_positive(&self, field: &str) -> Result<Option<usize>, ModelError> {
        self.int(field, None)?
            .map(|n| positive(self, field, n))
            .transpose()
    }

    fn float(&self, field: &str, default: f64) -> Result<f64, ModelError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| self.invalid(field, format!("expected a finite number, found {v}"))),
        }
    }

    fn bool(&self, field: &str, default: bool) -> Result<bool, ModelError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.invalid(field, format!("expected true or false, found {v}"))),
        }
    }

    fn string(&self, field: &str) -> Result<Option<&'a str>, ModelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.invalid(field, format!("expected a string, found {v}"))),
        }
    }
}

/// A JSON value as shown in an error: a 1M-digit number is not echoed whole.
fn clip(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!(
            "{}… ({} characters)",
            s.chars().take(40).collect::<String>(),
            s.chars().count()
        )
    } else {
        s
    }
}

fn positive(f: &Fields<'_>, field: &str, n: i64) -> Result<usize, ModelError> {
    if n <= 0 {
        Err(f.invalid(field, format!("must be a positive integer, found {n}")))
    } else {
        usize::try_from(n).map_err(|_| f.invalid(field, format!("{n} is too large")))
    }
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

    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        Self::from_json(&read_json(path)?, path)
    }

    /// Validates a parsed `config.json`; `path` is only used in error messages.
    pub fn from_json(value: &Value, path: &Path) -> Result<Self, ModelError> {
        let map = value.as_object().ok_or_else(|| ModelError::InvalidConfig {
            path: path.to_path_buf(),
            field: "<root>".into(),
            reason: "expected a JSON object".into(),
        })?;
        let f = Fields { path, map };

        f.refuse_unsupported()?;

        let n_layers = f.required_positive("n_layers")?;
        let d_model = f.required_positive("d_model")?;
        let d_head = f.required_positive("d_head")?;
        let (n_heads, n_key_value_heads) = f.heads(d_model, d_head)?;
        let d_vocab = f.required_positive("d_vocab")?;
        let d_vocab_out = f.optional_positive("d_vocab_out")?.unwrap_or(d_vocab);
        let n_ctx = f.required_positive("n_ctx")?;
        let attn_only = f.bool("attn_only", false)?;

        let (d_mlp, act_fn) = f.mlp(attn_only)?;

        let normalization = f.normalization()?;

        let positional = f.positional(d_head)?;

        let attention_dir = f.attention_dir()?;

        let (use_attn_scale, attn_scale) = f.attn_scale(d_head)?;

        let eps = f.float("eps", 1e-5)?;
        if eps < 0.0 {
            return Err(f.invalid("eps", format!("must be non-negative, found {eps}")));
        }
        let cap = |field: &str| -> Result<Option<f64>, ModelError> {
            let c = f.float(field, -1.0)?;
            Ok((c > 0.0).then_some(c))
        };
        let gated_mlp = f.bool("gated_mlp", false)?;
        let parallel_attn_mlp = f.bool("parallel_attn_mlp", false)?;
        if attn_only && parallel_attn_mlp {
            return Err(f.invalid(
                "parallel_attn_mlp",
                "cannot be true for an attn_only model (there is no MLP)",
            ));
        }

        Ok(ModelConfig {
            n_layers,
            d_model,
            n_heads,
            n_key_value_heads,
            d_head,
            d_mlp,
            d_vocab,
            d_vocab_out,
            n_ctx,
            act_fn,
            normalization,
            final_rms: f.bool("final_rms", false)?,
            positional,
            attention_dir,
            attn_only,
            attn_scale,
            use_attn_scale,
            scale_attn_by_inverse_layer_idx: f.bool("scale_attn_by_inverse_layer_idx", false)?,
            eps,
            attn_scores_soft_cap: cap("attn_scores_soft_cap")?,
            output_logits_soft_cap: cap("output_logits_soft_cap")?,
            parallel_attn_mlp,
            gated_mlp,
            use_attn_result: f.bool("use_attn_result", false)?,
            use_split_qkv_input: f.bool("use_split_qkv_input", false)?,
            use_attn_in: f.bool("use_attn_in", false)?,
            use_hook_mlp_in: f.bool("use_hook_mlp_in", false)?,
            use_hook_tokens: f.bool("use_hook_tokens", false)?,
        })
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
mod tests {
    use super::*;

    fn fixture_config() -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/transformer_lens/ln_relu_2l/config.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn parse(v: &Value) -> Result<ModelConfig, ModelError> {
        ModelConfig::from_json(v, Path::new("config.json"))
    }

    #[test]
    fn parses_the_transformer_lens_fixture() {
        let c = parse(&fixture_config()).unwrap();
        assert_eq!(c.n_layers, 2);
        assert_eq!(c.d_model, 64);
        assert_eq!(c.n_heads, 4);
        assert_eq!(c.d_head, 16);
        assert_eq!(c.d_mlp, Some(256));
        assert_eq!(c.d_vocab_out, 23);
        assert_eq!(c.act_fn, Some(ActFn::Relu));
        assert_eq!(c.normalization, Normalization::LayerNorm);
        assert_eq!(c.positional, Positional::Standard);
        assert_eq!(c.attention_dir, AttentionDir::Causal);
        assert_eq!(c.attn_scale, 4.0);
    }

    #[test]
    fn refuses_unknown_activation_naming_field_and_value() {
        let mut v = fixture_config();
        v["act_fn"] = json!("xielu");
        let msg = parse(&v).unwrap_err().to_string();
        assert!(msg.contains("act_fn") && msg.contains("xielu"), "{msg}");
    }

    #[test]
    fn refuses_unimplemented_features() {
        for (field, value) in [
            ("positional_embedding_type", json!("alibi")),
            ("normalization_type", json!("LayerNorm")),
            ("attention_dir", json!("sideways")),
            ("n_key_value_heads", json!(3)),
            ("use_local_attn", json!(true)),
            ("original_architecture", json!("Olmo2ForCausalLM")),
            ("dtype", json!("torch.int8")),
        ] {
            let mut v = fixture_config();
            v[field] = value.clone();
            let msg = parse(&v).unwrap_err().to_string();
            assert!(msg.contains(field), "{field}: {msg}");
            assert!(msg.contains(&value.to_string()), "{field}: {msg}");
        }
    }

    #[test]
    fn ignores_irrelevant_and_unknown_fields() {
        let mut v = fixture_config();
        v["seed"] = json!(99);
        v["some_future_field"] = json!({"x": 1});
        v["tokenizer_name"] = json!("gpt2");
        assert_eq!(parse(&v).unwrap(), parse(&fixture_config()).unwrap());
    }

    #[test]
    fn defaults_follow_hooked_transformer_config() {
        let v = json!({"n_layers": 1, "d_model": 8, "d_head": 4, "d_vocab": 5, "n_ctx": 6,
                       "d_mlp": 16, "act_fn": "gelu", "positional_embedding_type": "rotary",
                       "attn_scale": -1.0, "d_vocab_out": -1});
        let c = parse(&v).unwrap();
        assert_eq!(c.n_heads, 2);
        assert_eq!(c.d_vocab_out, 5);
        assert_eq!(c.normalization, Normalization::LayerNorm);
        assert_eq!(c.attn_scale, 2.0);
        match c.positional {
            Positional::Rotary(r) => {
                assert_eq!(r.dim, 4);
                assert!(!r.adjacent_pairs);
                assert_eq!(r.base, 10000.0);
            }
            p => panic!("expected rotary, got {p:?}"),
        }
        assert_eq!(c.layer_attn_scale(0), 2.0);
    }

    #[test]
    fn round_trips_through_tl_json() {
        let c = parse(&fixture_config()).unwrap();
        assert_eq!(parse(&c.to_tl_json()).unwrap(), c);
        let mut r = c.clone();
        r.positional = Positional::Rotary(Rotary {
            dim: 8,
            base: 500.0,
            adjacent_pairs: true,
            scaling_factor: 2.0,
        });
        r.normalization = Normalization::None;
        r.attn_only = true;
        r.d_mlp = None;
        r.act_fn = None;
        assert_eq!(parse(&r.to_tl_json()).unwrap(), r);
    }

    #[test]
    fn missing_required_field_is_named() {
        let mut v = fixture_config();
        v.as_object_mut().unwrap().remove("d_model");
        let msg = parse(&v).unwrap_err().to_string();
        assert!(msg.contains("d_model"), "{msg}");
    }
}
