//! `congruity.json`: what a bare TransformerLens checkpoint does not say — how to turn symbols
//! into token ids, how to read an answer off the logits, what each residual direction means,
//! and where the model came from.
//!
//! The compiler writes it beside `model.safetensors` and `config.json`; the tracr importer
//! builds it from `meta.json`; anyone may write one for a hand-trained model. Format
//! (`format` is required and versioned):
//!
//! ```json
//! {
//!   "format": "congruity-model/2",
//!   "residual_labels": ["indices:0", "tokens:a", "one", ...],   // optional; d_model entries
//!   "input":  {"bos": "BOS", "tokens": ["BOS", "a", "b", "c"]},  // index = token id; bos may be null
//!   "output": {"encoding": "categorical", "decoding": ["a", "b", "1/3"]},  // index = output row
//!          // or {"encoding": "numerical", "values": [0.0, 0.3333333333333333], "exact": ["0", "1/3"]}
//!   "provenance": {"spec": "...", "program": "...", "seed": 0, "family": "..."}  // free-form
//! }
//! ```
//!
//! Encoding prepends `bos` (when not null) to the input symbols. Decoding takes, at every
//! position after the BOS position, the argmax output row (categorical: `decoding[row]`, read with
//! [`crate::artifact::value::from_json`]) or the single output value (numerical), snapped to the
//! nearest of `values` when they are listed and reported as the exact value beside it.
//!
//! `congruity-model/1` (before exact values) is the same without `exact`; it still loads, except
//! a numerical output that lists `values` without `exact` (only an older `congruity compile` wrote
//! those), which is refused with the command that regenerates it.

use num_rational::Rational64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The value of the `format` field this version writes.
pub const SIDECAR_FORMAT: &str = "congruity-model/2";
/// The previous format, still read.
pub const SIDECAR_FORMAT_V1: &str = "congruity-model/1";
/// The sidecar's file name inside a model directory.
pub const SIDECAR_FILE: &str = "congruity.json";

/// The sidecar formats this version reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SidecarVersion {
    V1,
    V2,
}

impl SidecarVersion {
    /// The version a `format` field names, if this version reads it.
    pub fn of(format: &str) -> Option<Self> {
        match format {
            SIDECAR_FORMAT => Some(SidecarVersion::V2),
            SIDECAR_FORMAT_V1 => Some(SidecarVersion::V1),
            _ => None,
        }
    }
}

/// How symbols become token ids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Symbol prepended to every input, if any.
    pub bos: Option<String>,
    /// Symbol of each token id (index = id); its length is `d_vocab`.
    pub tokens: Vec<String>,
}

/// An exact number of a numerical output, written `"p/q"` (or `"n"` for an integer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExactNumber(pub Rational64);

impl ExactNumber {
    /// The nearest f64 (the float written beside it).
    pub fn to_f64(self) -> f64 {
        *self.0.numer() as f64 / *self.0.denom() as f64
    }
}

impl std::fmt::Display for ExactNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_integer() {
            write!(f, "{}", self.0.numer())
        } else {
            write!(f, "{}/{}", self.0.numer(), self.0.denom())
        }
    }
}

impl Serialize for ExactNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ExactNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let parsed = match text.split_once('/') {
            Some(_) => super::value::parse_ratio(&text),
            None => text
                .trim()
                .parse::<i64>()
                .ok()
                .map(Rational64::from_integer),
        };
        parsed.map(ExactNumber).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not an exact number (an integer or \"p/q\" with q ≠ 0)"
            ))
        })
    }
}

/// How the logits become an answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "lowercase", deny_unknown_fields)]
pub enum OutputSpec {
    /// Argmax over output rows; `decoding[row]` is the value (artifact JSON, see
    /// [`crate::artifact::value`]).
    Categorical { decoding: Vec<Value> },
    /// The single output row is the value. When the writer knows the exact values the output can
    /// take (a compiled model does), `values` lists their nearest floats and `exact` the values
    /// themselves; the decoder reports the exact value nearest the output, so float noise in the
    /// residual stream never reaches the answer.
    Numerical {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        values: Vec<f64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exact: Vec<ExactNumber>,
    },
}

impl OutputSpec {
    /// A numerical output that snaps to these exact values.
    pub fn numerical_exact(values: impl IntoIterator<Item = Rational64>) -> Self {
        let exact: Vec<ExactNumber> = values.into_iter().map(ExactNumber).collect();
        OutputSpec::Numerical {
            values: exact.iter().map(|e| e.to_f64()).collect(),
            exact,
        }
    }

    /// A numerical output with no known value set.
    pub fn numerical() -> Self {
        OutputSpec::Numerical {
            values: vec![],
            exact: vec![],
        }
    }
}

/// The row a categorical output reads: the first maximal logit (`None` when there are none).
/// Both the runtime's decoder and the compiler's reference forward read rows with it, so a tie
/// decodes the same everywhere.
pub fn first_max<T: PartialOrd + Copy>(logits: &[T]) -> Option<usize> {
    logits
        .iter()
        .enumerate()
        .fold(None, |best: Option<(usize, T)>, (i, &x)| match best {
            Some((_, b)) if b >= x => best,
            _ => Some((i, x)),
        })
        .map(|(i, _)| i)
}

/// The index of the listed value nearest `x` (the first of equally near ones; `None` when no
/// values are listed). A numerical output is snapped with it.
pub fn nearest(values: &[f64], x: f64) -> Option<usize> {
    values
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| (*a - x).abs().total_cmp(&(*b - x).abs()))
        .map(|(i, _)| i)
}

/// The contents of `congruity.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    pub format: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub residual_labels: Vec<String>,
    pub input: InputSpec,
    pub output: OutputSpec,
    #[serde(default)]
    pub provenance: Value,
}

impl Sidecar {
    /// A sidecar in the current format.
    pub fn new(input: InputSpec, output: OutputSpec) -> Self {
        Sidecar {
            format: SIDECAR_FORMAT.into(),
            residual_labels: vec![],
            input,
            output,
            provenance: Value::Null,
        }
    }

    /// Checks what the format alone requires (the model's sizes are checked by the runtime):
    /// the version, and exact values that match the floats beside them.
    pub fn check_format(&self) -> Result<SidecarVersion, FormatError> {
        let version =
            SidecarVersion::of(&self.format).ok_or_else(|| FormatError::UnknownFormat {
                found: self.format.clone(),
            })?;
        if let OutputSpec::Numerical { values, exact } = &self.output {
            if version == SidecarVersion::V1 && !values.is_empty() {
                return Err(FormatError::GuessedValues);
            }
            if !exact.is_empty() && exact.len() != values.len() {
                return Err(FormatError::ExactCount {
                    exact: exact.len(),
                    values: values.len(),
                });
            }
            for (e, v) in exact.iter().zip(values) {
                // A few ulps: JSON readers need not parse the shortest form back to the same f64.
                let x = e.to_f64();
                if (x - v).abs() > 4.0 * f64::EPSILON * x.abs().max(f64::MIN_POSITIVE) {
                    return Err(FormatError::ExactMismatch {
                        exact: *e,
                        value: *v,
                    });
                }
            }
        }
        Ok(version)
    }
}

/// Why a sidecar's contents break its format.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FormatError {
    #[error(
        "field `format` is \"{found}\", expected \"{SIDECAR_FORMAT}\" (or the older \"{SIDECAR_FORMAT_V1}\")"
    )]
    UnknownFormat { found: String },
    #[error(
        "a \"{SIDECAR_FORMAT_V1}\" numerical output lists `values` without their exact forms, so \
         decoded outputs would be guessed; regenerate the directory with this version (`congruity \
         compile` or `congruity sample`)"
    )]
    GuessedValues,
    #[error("output.exact has {exact} entries, output.values {values}")]
    ExactCount { exact: usize, values: usize },
    #[error("output.exact `{exact}` is not the value beside it, {value}")]
    ExactMismatch { exact: ExactNumber, value: f64 },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn sidecar(output: OutputSpec) -> Sidecar {
        Sidecar::new(
            InputSpec {
                bos: Some("BOS".into()),
                tokens: vec!["BOS".into(), "a".into()],
            },
            output,
        )
    }

    #[test]
    fn json_form_is_the_documented_one() {
        let s = sidecar(OutputSpec::numerical_exact([
            Rational64::new(1, 3),
            Rational64::from_integer(2),
        ]));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["format"], json!("congruity-model/2"));
        assert_eq!(
            v["output"],
            json!({"encoding": "numerical", "values": [1.0 / 3.0, 2.0], "exact": ["1/3", "2"]})
        );
        let back: Sidecar = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.check_format(), Ok(SidecarVersion::V2));
    }

    #[test]
    fn old_format_loads_unless_its_values_would_be_guessed() {
        let mut s = sidecar(OutputSpec::numerical());
        s.format = SIDECAR_FORMAT_V1.into();
        assert_eq!(s.check_format(), Ok(SidecarVersion::V1));
        s.output = OutputSpec::Numerical {
            values: vec![0.5],
            exact: vec![],
        };
        let why = s.check_format().unwrap_err();
        assert_eq!(why, FormatError::GuessedValues);
        let text = why.to_string();
        assert!(
            text.contains("regenerate") && text.contains("congruity compile"),
            "{text}"
        );
        s.format = "congruity-model/9".into();
        assert_eq!(
            s.check_format(),
            Err(FormatError::UnknownFormat {
                found: "congruity-model/9".into()
            })
        );
    }

    #[test]
    fn mismatched_exact_values_are_refused() {
        let s = sidecar(OutputSpec::Numerical {
            values: vec![0.5],
            exact: vec![ExactNumber(Rational64::new(1, 3))],
        });
        assert_eq!(
            s.check_format(),
            Err(FormatError::ExactMismatch {
                exact: ExactNumber(Rational64::new(1, 3)),
                value: 0.5
            })
        );
        let bad = serde_json::from_value::<Sidecar>(json!({
            "format": SIDECAR_FORMAT, "input": {"bos": null, "tokens": ["0"]},
            "output": {"encoding": "numerical", "values": [0.5], "exact": ["1/x"]}
        }));
        assert!(bad.unwrap_err().to_string().contains("not an exact number"));
    }

    proptest! {
        /// Every exact value survives the JSON round trip exactly, numerical or categorical.
        #[test]
        fn round_trip_keeps_every_exact_value(
            ratios in prop::collection::vec((-1_000_000_000i64..1_000_000_000, 1i64..1_000_000_000), 0..12),
            // Any text, and texts that look like numbers ("1/2", " -3 / 4", "7").
            symbols in prop::collection::vec(
                prop_oneof!["\\PC{0,8}", "[ ]?-?[0-9]{1,3}[ ]?(/[ ]?-?[0-9]{1,3})?"],
                0..6,
            ),
        ) {
            use crate::artifact::value;
            use crate::lang::ir::Value as V;
            let rs: Vec<Rational64> = ratios.iter().map(|&(p, q)| Rational64::new(p, q)).collect();
            let num = sidecar(OutputSpec::numerical_exact(rs.clone()));
            let text = serde_json::to_string(&num).unwrap();
            let back: Sidecar = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back.check_format(), Ok(SidecarVersion::V2));
            let OutputSpec::Numerical { exact, .. } = &back.output else { panic!("numerical") };
            prop_assert_eq!(exact.iter().map(|e| e.0).collect::<Vec<_>>(), rs.clone());

            let values: Vec<V> = rs.iter().map(|r| V::Num(*r))
                .chain(symbols.iter().map(|s| V::sym(s)))
                .chain([V::None, V::Bool(true)])
                .collect();
            let cat = sidecar(OutputSpec::Categorical {
                decoding: values.iter().map(value::to_json).collect(),
            });
            let back: Sidecar = serde_json::from_str(&serde_json::to_string(&cat).unwrap()).unwrap();
            let OutputSpec::Categorical { decoding } = &back.output else { panic!("categorical") };
            prop_assert_eq!(decoding.iter().map(value::from_json).collect::<Vec<_>>(), values);
        }
    }
}
