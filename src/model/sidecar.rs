//! Reading `congruity.json` (its form is defined in [`crate::artifact::sidecar`]): checks against
//! the model it describes, encoding of input symbols, decoding of logits into answers.

use std::path::Path;

use candle_core::Tensor;
use num_rational::Rational64;
use serde_json::Value;

use super::config::ModelConfig;
use super::error::{ComputeContext, ModelError};
pub use crate::artifact::sidecar::{
    ExactNumber, InputSpec, OutputSpec, SIDECAR_FILE, SIDECAR_FORMAT, Sidecar,
};
use crate::artifact::sidecar::{first_max, nearest};

/// One decoded output value.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputValue {
    /// A categorical value (JSON string or number, as in the decoding table).
    Symbol(Value),
    /// A numerical output.
    Number(f64),
    /// A numerical output snapped to one of the exact values the sidecar lists.
    Exact(Rational64),
}

impl OutputValue {
    /// The value as JSON: symbols as they are, numbers as JSON numbers.
    pub fn to_json(&self) -> Value {
        match self {
            OutputValue::Symbol(v) => v.clone(),
            OutputValue::Number(x) => {
                serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number)
            }
            OutputValue::Exact(r) => serde_json::Number::from_f64(ExactNumber(*r).to_f64())
                .map_or(Value::Null, Value::Number),
        }
    }

    /// Equality, with an absolute tolerance for numbers (a categorical value equal to a number
    /// counts as that number, so `3` matches `Number(3.0)`).
    pub fn matches(&self, other: &OutputValue, tolerance: f64) -> bool {
        let as_num = |v: &OutputValue| match v {
            OutputValue::Number(x) => Some(*x),
            OutputValue::Exact(r) => Some(ExactNumber(*r).to_f64()),
            OutputValue::Symbol(v) => v.as_f64(),
        };
        match (self, other) {
            (OutputValue::Symbol(a), OutputValue::Symbol(b)) => a == b,
            _ => match (as_num(self), as_num(other)) {
                (Some(a), Some(b)) => (a - b).abs() <= tolerance,
                _ => false,
            },
        }
    }

    /// Reads an expected value from JSON (numbers stay symbols; `matches` compares them
    /// numerically against numerical outputs).
    pub fn from_json(v: Value) -> Self {
        OutputValue::Symbol(v)
    }
}

impl std::fmt::Display for OutputValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputValue::Symbol(Value::String(s)) => f.write_str(s),
            OutputValue::Symbol(v) => match crate::artifact::value::tagged_symbol(v) {
                Some(s) => f.write_str(s),
                None => write!(f, "{v}"),
            },
            OutputValue::Number(x) => write!(f, "{x}"),
            // As the float, so printed answers read the same whether or not exact values are known.
            OutputValue::Exact(r) => write!(f, "{}", ExactNumber(*r).to_f64()),
        }
    }
}

impl Sidecar {
    /// Reads and checks `congruity.json` (either format version; an older one is upgraded in
    /// memory, so whatever is written back is the current format).
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let text = crate::files::read_text(path, crate::files::MAX_JSON_BYTES, "a sidecar")?;
        let mut s: Sidecar = serde_json::from_str(&text).map_err(|e| ModelError::Sidecar {
            path: path.to_path_buf(),
            reason: format!("not a valid congruity sidecar: {e}"),
        })?;
        s.check_format().map_err(|reason| ModelError::Sidecar {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        })?;
        s.format = SIDECAR_FORMAT.into();
        Ok(s)
    }

    /// Checks the sidecar against the model it describes.
    pub fn validate(&self, cfg: &ModelConfig, path: &Path) -> Result<(), ModelError> {
        let err = |reason: String| ModelError::Sidecar {
            path: path.to_path_buf(),
            reason,
        };
        if self.input.tokens.len() != cfg.d_vocab {
            return Err(err(format!(
                "input.tokens has {} entries, but the model has d_vocab = {}",
                self.input.tokens.len(),
                cfg.d_vocab
            )));
        }
        for (i, t) in self.input.tokens.iter().enumerate() {
            if self.input.tokens[..i].contains(t) {
                return Err(err(format!("input.tokens lists `{t}` twice")));
            }
        }
        if let Some(bos) = &self.input.bos
            && !self.input.tokens.contains(bos)
        {
            return Err(err(format!("input.bos `{bos}` is not in input.tokens")));
        }
        match &self.output {
            OutputSpec::Categorical { decoding } if decoding.len() != cfg.d_vocab_out => {
                return Err(err(format!(
                    "output.decoding has {} entries, but the model has d_vocab_out = {}",
                    decoding.len(),
                    cfg.d_vocab_out
                )));
            }
            OutputSpec::Numerical { .. } if cfg.d_vocab_out != 1 => {
                return Err(err(format!(
                    "a numerical output needs d_vocab_out = 1, the model has {}",
                    cfg.d_vocab_out
                )));
            }
            _ => {}
        }
        if !self.residual_labels.is_empty() && self.residual_labels.len() != cfg.d_model {
            return Err(err(format!(
                "residual_labels has {} entries, but the model has d_model = {}",
                self.residual_labels.len(),
                cfg.d_model
            )));
        }
        Ok(())
    }

    /// Token ids for input symbols, with BOS prepended when the model uses one.
    pub fn encode<S: AsRef<str>>(&self, symbols: &[S]) -> Result<Vec<u32>, ModelError> {
        let lookup = |s: &str| -> Result<u32, ModelError> {
            self.input
                .tokens
                .iter()
                .position(|t| t == s)
                .map(|i| i as u32)
                .ok_or_else(|| ModelError::UnknownToken {
                    token: s.to_string(),
                    vocab: format!("{{{}}}", self.input.tokens.join(", ")),
                })
        };
        let mut ids = Vec::with_capacity(symbols.len() + 1);
        if let Some(bos) = &self.input.bos {
            ids.push(lookup(bos)?);
        }
        for s in symbols {
            ids.push(lookup(s.as_ref())?);
        }
        Ok(ids)
    }

    /// Number of leading positions that are not part of the answer (the BOS position).
    pub fn prefix_len(&self) -> usize {
        usize::from(self.input.bos.is_some())
    }

    /// Decodes logits `[batch, pos, d_vocab_out]` into one answer per batch row, the BOS
    /// position dropped.
    pub fn decode(&self, logits: &Tensor) -> Result<Vec<Vec<OutputValue>>, ModelError> {
        let (_, p, _) = logits.dims3().map_err(|e| {
            ModelError::Decode(format!("logits must be [batch, pos, d_vocab_out]: {e}"))
        })?;
        let skip = self.prefix_len().min(p);
        let rows: Vec<Vec<Vec<f32>>> = logits
            .narrow(1, skip, p - skip)
            .and_then(|t| t.to_dtype(candle_core::DType::F32))
            .and_then(|t| t.to_vec3())
            .ctx("decoding outputs")?;
        rows.iter()
            .map(|row| row.iter().map(|l| self.decode_position(l)).collect())
            .collect()
    }

    /// Decodes one position's logits: the first maximal row of a categorical output, or the
    /// first logit of a numerical one, snapped to the nearest exact value when the sidecar lists
    /// them.
    pub fn decode_position(&self, logits: &[f32]) -> Result<OutputValue, ModelError> {
        match &self.output {
            OutputSpec::Categorical { decoding } => {
                let i = first_max(logits)
                    .ok_or_else(|| ModelError::Decode("a position has no logits".into()))?;
                decoding
                    .get(i)
                    .cloned()
                    .map(OutputValue::Symbol)
                    .ok_or_else(|| ModelError::Decode(format!("output row {i} has no decoding")))
            }
            OutputSpec::Numerical { values, exact } => {
                let x = *logits
                    .first()
                    .ok_or_else(|| ModelError::Decode("a position has no logits".into()))?;
                Ok(match nearest(values, f64::from(x)) {
                    Some(i) if !exact.is_empty() => OutputValue::Exact(exact[i].0),
                    Some(i) => OutputValue::Number(values[i]),
                    None => OutputValue::Number(f32_to_f64_shortest(x)),
                })
            }
        }
    }
}

/// The f64 whose shortest decimal form equals the f32's shortest form (0.33333334, not
/// 0.3333333432674408), so printed numerical outputs read as the model computed them.
fn f32_to_f64_shortest(x: f32) -> f64 {
    format!("{x}").parse().unwrap_or(x as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use serde_json::json;

    fn sidecar(output: OutputSpec) -> Sidecar {
        Sidecar {
            provenance: json!({"family": "test"}),
            ..Sidecar::new(
                InputSpec {
                    bos: Some("BOS".into()),
                    tokens: vec!["BOS".into(), "a".into(), "b".into()],
                },
                output,
            )
        }
    }

    #[test]
    fn encodes_with_bos_and_names_unknown_tokens() {
        let s = sidecar(OutputSpec::numerical());
        assert_eq!(s.encode(&["b", "a"]).unwrap(), vec![0, 2, 1]);
        let msg = s.encode(&["c"]).unwrap_err().to_string();
        assert!(msg.contains("`c`") && msg.contains("{BOS, a, b}"), "{msg}");
    }

    #[test]
    fn decodes_categorical_and_numerical() {
        let logits = Tensor::new(&[[[9f32, 0.], [0., 1.], [2., 1.]]], &Device::Cpu).unwrap();
        let s = sidecar(OutputSpec::Categorical {
            decoding: vec![json!("x"), json!(3)],
        });
        let out = s.decode(&logits).unwrap();
        assert_eq!(
            out,
            vec![vec![
                OutputValue::Symbol(json!(3)),
                OutputValue::Symbol(json!("x"))
            ]]
        );
        let logits = Tensor::new(&[[[9f32], [1.0 / 3.0], [0.5]]], &Device::Cpu).unwrap();
        let out = sidecar(OutputSpec::numerical()).decode(&logits).unwrap();
        assert_eq!(out[0][0].to_string(), "0.33333334");
        assert_eq!(out[0][1].to_json(), json!(0.5));

        // With the exact value set known, float noise snaps to the nearest exact value.
        let exact = OutputSpec::numerical_exact((0..4).map(|i| Rational64::new(i, 3)));
        let logits = Tensor::new(&[[[9f32], [0.6666667], [0.02]]], &Device::Cpu).unwrap();
        let out = sidecar(exact).decode(&logits).unwrap();
        assert_eq!(out[0][0], OutputValue::Exact(Rational64::new(2, 3)));
        assert_eq!(out[0][0].to_json(), json!(2.0 / 3.0));
        assert_eq!(out[0][0].to_string(), "0.6666666666666666");
        assert_eq!(out[0][1], OutputValue::Exact(Rational64::from_integer(0)));
        assert_eq!(out[0][1].to_json(), json!(0.0));
    }

    #[test]
    fn json_form_is_the_documented_one() {
        let s = sidecar(OutputSpec::Categorical {
            decoding: vec![json!("a"), json!(1)],
        });
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["output"],
            json!({"encoding": "categorical", "decoding": ["a", 1]})
        );
        assert_eq!(v["input"]["bos"], json!("BOS"));
        let back: Sidecar = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        let num: Sidecar = serde_json::from_value(json!({
            "format": SIDECAR_FORMAT,
            "input": {"bos": null, "tokens": ["0", "1"]},
            "output": {"encoding": "numerical"}
        }))
        .unwrap();
        assert_eq!(num.output, OutputSpec::numerical());
        assert_eq!(num.encode(&["1"]).unwrap(), vec![1]);
    }

    #[test]
    fn validation_against_the_config() {
        let cfg = ModelConfig::simple(1, 4, 1, 8, 3, 5);
        let p = Path::new("congruity.json");
        let ok = sidecar(OutputSpec::Categorical {
            decoding: vec![json!("a"), json!("b"), json!("c")],
        });
        ok.validate(&cfg, p).unwrap();
        let msg = sidecar(OutputSpec::numerical())
            .validate(&cfg, p)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("d_vocab_out = 1"), "{msg}");
        let mut bad = ok.clone();
        bad.input.bos = Some("CLS".into());
        assert!(bad.validate(&cfg, p).is_err());
        let mut bad = ok.clone();
        bad.residual_labels = vec!["x".into()];
        assert!(
            bad.validate(&cfg, p)
                .unwrap_err()
                .to_string()
                .contains("d_model = 4")
        );
    }

    #[test]
    fn output_value_matching() {
        let n = OutputValue::Number(2.0004);
        assert!(n.matches(&OutputValue::Symbol(json!(2)), 1e-3));
        assert!(!n.matches(&OutputValue::Symbol(json!(2)), 1e-5));
        assert!(OutputValue::Symbol(json!("a")).matches(&OutputValue::Symbol(json!("a")), 0.0));
        assert!(!OutputValue::Symbol(json!("a")).matches(&OutputValue::Number(0.0), 1.0));
    }
}
