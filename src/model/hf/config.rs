//! `config.json` of a HuggingFace checkpoint: typed accessors whose errors name the file and
//! field, and the architecture it declares.

use std::path::Path;

use serde_json::Value;

use super::HfArchitecture;
use crate::model::config::ActFn;
use crate::model::error::ModelError;

/// `config.json` with typed accessors whose errors name the file and field.
pub(super) struct Cfg<'a> {
    pub(super) v: &'a Value,
    pub(super) path: &'a Path,
}

impl Cfg<'_> {
    pub(super) fn bad(&self, field: &str, reason: impl Into<String>) -> ModelError {
        ModelError::InvalidConfig {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    pub(super) fn get(&self, field: &str) -> Option<&Value> {
        self.v.get(field).filter(|v| !v.is_null())
    }

    pub(super) fn usize(&self, field: &str) -> Result<usize, ModelError> {
        self.opt_usize(field)?
            .ok_or_else(|| self.bad(field, "missing (a positive integer)"))
    }

    pub(super) fn opt_usize(&self, field: &str) -> Result<Option<usize>, ModelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 && n <= 1 << 40 => Ok(Some(n as usize)),
                _ => Err(self.bad(field, format!("`{v}` is not a positive integer"))),
            },
        }
    }

    pub(super) fn f64_or(&self, field: &str, default: f64) -> Result<f64, ModelError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| self.bad(field, format!("`{v}` is not a finite number"))),
        }
    }

    pub(super) fn bool_or(&self, field: &str, default: bool) -> Result<bool, ModelError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.bad(field, format!("`{v}` is not a boolean"))),
        }
    }

    pub(super) fn str_or<'b>(
        &'b self,
        field: &str,
        default: &'b str,
    ) -> Result<&'b str, ModelError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .as_str()
                .ok_or_else(|| self.bad(field, format!("`{v}` is not a string"))),
        }
    }

    /// Fields that change the forward in ways the runtime does not compute: refused unless
    /// absent, null or equal to the harmless value.
    pub(super) fn refuse_unless(
        &self,
        field: &str,
        harmless: &[Value],
        why: &str,
    ) -> Result<(), ModelError> {
        match self.get(field) {
            Some(v) if !harmless.contains(v) => Err(self.bad(field, format!("`{v}`: {why}"))),
            _ => Ok(()),
        }
    }

    /// `rope_theta` at the top level (older) or inside `rope_parameters` (transformers 5).
    pub(super) fn rope(&self, key: &str, legacy: &[&str], default: f64) -> Result<f64, ModelError> {
        if let Some(p) = self.get("rope_parameters")
            && let Some(v) = p.get(key).filter(|v| !v.is_null())
        {
            return v
                .as_f64()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| {
                    self.bad(
                        &format!("rope_parameters.{key}"),
                        format!("`{v}` is not a positive number"),
                    )
                });
        }
        for f in legacy {
            if self.get(f).is_some() {
                let x = self.f64_or(f, default)?;
                if x <= 0.0 {
                    return Err(self.bad(f, format!("`{x}` is not positive")));
                }
                return Ok(x);
            }
        }
        Ok(default)
    }

    /// Rope scaling (`rope_scaling`, or `rope_parameters.rope_type` other than `default`) changes
    /// the frequencies in ways the runtime does not reproduce.
    pub(super) fn refuse_rope_scaling(&self) -> Result<(), ModelError> {
        self.refuse_unless(
            "rope_scaling",
            &[],
            "rope scaling is not implemented (only plain rotary embeddings)",
        )?;
        if let Some(p) = self.get("rope_parameters")
            && let Some(t) = p.get("rope_type").and_then(Value::as_str)
            && t != "default"
        {
            return Err(self.bad(
                "rope_parameters.rope_type",
                format!("`{t}`: only the default rotary embedding is implemented"),
            ));
        }
        Ok(())
    }

    pub(super) fn act(&self, field: &str, default: &str) -> Result<ActFn, ModelError> {
        let name = self.str_or(field, default)?;
        let act = match name {
            "gelu_new" => ActFn::GeluNew,
            "gelu" => ActFn::Gelu,
            "gelu_fast" => ActFn::GeluFast,
            "gelu_pytorch_tanh" => ActFn::GeluPytorchTanh,
            "relu" => ActFn::Relu,
            "silu" | "swish" => ActFn::Silu,
            other => {
                return Err(self.bad(
                    field,
                    format!("`{other}` is not a supported activation (gelu_new, gelu, gelu_fast, gelu_pytorch_tanh, relu, silu)"),
                ));
            }
        };
        Ok(act)
    }
}

pub(super) fn architecture(c: &Cfg<'_>) -> Result<HfArchitecture, ModelError> {
    let from_type = match c.get("model_type").and_then(Value::as_str) {
        Some("gpt2") => Some(HfArchitecture::Gpt2),
        Some("gpt_neox") => Some(HfArchitecture::GptNeoX),
        Some("llama") => Some(HfArchitecture::Llama),
        Some(other) => {
            return Err(c.bad(
                "model_type",
                format!(
                    "`{other}` is not a supported HuggingFace architecture (gpt2, gpt_neox, llama)"
                ),
            ));
        }
        None => None,
    };
    // The first listed architecture decides (transformers instantiates that class).
    if let Some(a) = c
        .get("architectures")
        .and_then(Value::as_array)
        .and_then(|l| l.first())
    {
        let known = match a.as_str() {
            Some("GPT2LMHeadModel") => HfArchitecture::Gpt2,
            Some("GPTNeoXForCausalLM") => HfArchitecture::GptNeoX,
            Some("LlamaForCausalLM") => HfArchitecture::Llama,
            _ => {
                return Err(c.bad(
                    "architectures",
                    format!("`{a}` is not one of GPT2LMHeadModel, GPTNeoXForCausalLM, LlamaForCausalLM (a causal LM head is needed)"),
                ));
            }
        };
        if from_type.is_some_and(|t| t != known) {
            return Err(c.bad(
                "architectures",
                format!(
                    "`{a}` does not match model_type `{}`",
                    from_type.map_or("", |t| t.name())
                ),
            ));
        }
        return Ok(known);
    }
    from_type.ok_or_else(|| c.bad("model_type", "missing (gpt2, gpt_neox or llama)"))
}
