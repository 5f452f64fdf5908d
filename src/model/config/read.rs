//! Reading `config.json`: every field the forward pass depends on, checked, with the policy of
//! the module documentation (implemented exactly, or refused naming the field).

use std::path::Path;

use serde_json::{Map, Value, json};

use super::*;

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
}
