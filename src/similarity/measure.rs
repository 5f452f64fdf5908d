//! Measures by name: `FromStr` / `Display` round-trip with every parameter stated.

use std::fmt;
use std::str::FromStr;

use faer::MatRef;
use serde::Serialize;

use super::cca::{PreparedCca, Truncation};
use super::cka::{CkaKind, PreparedCka};
use super::procrustes::{PreparedProcrustes, ProcrustesKind};
use super::ridge::{
    DEFAULT_ALPHAS, DEFAULT_SEED, DEFAULT_TEST_FRACTION, HeldOutSplit, RidgePredictor, RidgeR2,
    RidgeR2Result,
};
use super::screen::Screening;
use super::{SimilarityError, check_pair};

/// Default variance fraction of `svcca`.
pub const DEFAULT_SVCCA_VAR: f64 = 0.99;

/// Every valid form, for error messages and `--help`.
pub const VALID_FORMS: &str = "ridge-r2[:alphas=A,B,...;test=F;seed=S] (defaults alphas=0.1,1,10;test=0.1;seed=0), \
cka:linear, cka:debiased, procrustes:angular, procrustes:euclidean, cca:mean, \
svcca[:var=V] (default var=0.99, 0 < V <= 1)";

/// A similarity measure with all of its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    RidgeR2(RidgeR2),
    Cka(CkaKind),
    Procrustes(ProcrustesKind),
    CcaMean,
    Svcca { var: f64 },
}

/// The paper's fit: ridge predictivity with its default penalties, split and seed.
impl Default for Measure {
    fn default() -> Self {
        Measure::RidgeR2(RidgeR2::default())
    }
}

/// Whether a larger value means more similar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Orientation {
    /// Larger is more similar (ridge, CKA, CCA).
    Similarity,
    /// Smaller is more similar (Procrustes distances).
    Distance,
}

/// A measure's value: one number, or the ridge fit with its chosen penalty.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MeasureValue {
    Scalar(f64),
    Ridge(RidgeR2Result),
}

impl MeasureValue {
    /// The headline number (`sqrt_r2_clamped` for ridge).
    pub fn value(&self) -> f64 {
        match self {
            MeasureValue::Scalar(v) => *v,
            MeasureValue::Ridge(r) => r.sqrt_r2_clamped,
        }
    }
}

/// A measure's value with the degenerate columns (constant up to rounding) it left out of each
/// side (see [`super::screen`]). Ridge screens its targets only; Procrustes screens nothing (its
/// distances weigh a column by its variance, so a leaked constant moves them by its tiny norm).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub value: MeasureValue,
    /// Columns of `x` left out.
    pub x_removed: Screening,
    /// Columns of `y` left out.
    pub y_removed: Screening,
}

impl Score {
    /// The headline number (see [`MeasureValue::value`]).
    pub fn value(&self) -> f64 {
        self.value.value()
    }
}

/// A bad measure name, with the list of valid forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("bad measure name `{name}`: {reason}")]
#[diagnostic(
    code(congruity::similarity::bad_measure_name),
    help("valid measures: {valid}")
)]
pub struct MeasureNameError {
    pub name: String,
    pub reason: String,
    pub valid: &'static str,
}

impl Measure {
    /// The measures a report shows when none is asked for, in report order.
    pub fn defaults() -> Vec<Measure> {
        vec![
            Measure::Cka(CkaKind::Linear),
            Measure::Cka(CkaKind::Debiased),
            Measure::Procrustes(ProcrustesKind::Angular),
            Measure::Procrustes(ProcrustesKind::Euclidean),
            Measure::CcaMean,
            Measure::Svcca {
                var: DEFAULT_SVCCA_VAR,
            },
            Measure::RidgeR2(RidgeR2::default()),
        ]
    }

    pub fn orientation(&self) -> Orientation {
        match self {
            Measure::Procrustes(_) => Orientation::Distance,
            _ => Orientation::Similarity,
        }
    }

    /// Whether `m(x, y) = m(y, x)`; ridge predictivity is not.
    pub fn is_symmetric(&self) -> bool {
        !matches!(self, Measure::RidgeR2(_))
    }

    /// The family part of the name (`ridge-r2`, `cka`, ...).
    pub fn family(&self) -> &'static str {
        match self {
            Measure::RidgeR2(_) => "ridge-r2",
            Measure::Cka(_) => "cka",
            Measure::Procrustes(_) => "procrustes",
            Measure::CcaMean => "cca",
            Measure::Svcca { .. } => "svcca",
        }
    }

    /// Computes the measure of `x` against `y` (for ridge: predicting `y` from `x` on the
    /// measure's seeded split).
    pub fn compute(
        &self,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
    ) -> Result<Score, SimilarityError> {
        if !matches!(self, Measure::RidgeR2(_)) {
            check_pair(&self.to_string(), x, y, 2)?;
        }
        self.prepare(x)?.score(y)
    }

    /// Does the per-`x` work once (centring, factorisation) so that many `y` can be scored.
    pub fn prepare(&self, x: MatRef<'_, f64>) -> Result<PreparedSource, SimilarityError> {
        self.prepare_with_split(x, None)
    }

    /// As [`Measure::prepare`], with an explicit held-out split for ridge (ignored by the others).
    pub fn prepare_with_split(
        &self,
        x: MatRef<'_, f64>,
        split: Option<&HeldOutSplit>,
    ) -> Result<PreparedSource, SimilarityError> {
        let inner = match self {
            Measure::RidgeR2(r) => Prepared::Ridge(Box::new(r.prepare(x, split)?)),
            Measure::Cka(k) => Prepared::Cka(PreparedCka::new(*k, x)?),
            Measure::Procrustes(k) => Prepared::Procrustes(PreparedProcrustes::new(*k, x)?),
            Measure::CcaMean => Prepared::Cca(PreparedCca::new("cca:mean", Truncation::Rank, x)?),
            Measure::Svcca { var } => Prepared::Cca(PreparedCca::new(
                &self.to_string(),
                Truncation::Variance(*var),
                x,
            )?),
        };
        Ok(PreparedSource {
            measure: self.to_string(),
            orientation: self.orientation(),
            inner,
        })
    }
}

enum Prepared {
    Ridge(Box<RidgePredictor>),
    Cka(PreparedCka),
    Procrustes(PreparedProcrustes),
    Cca(PreparedCca),
}

/// A measure with its source side `x` prepared; scores any target with the same rows.
pub struct PreparedSource {
    measure: String,
    orientation: Orientation,
    inner: Prepared,
}

impl PreparedSource {
    pub fn score(&self, y: MatRef<'_, f64>) -> Result<Score, SimilarityError> {
        let scalar = |(v, y_removed): (f64, Screening), x_removed: &Screening| Score {
            value: MeasureValue::Scalar(v),
            x_removed: x_removed.clone(),
            y_removed,
        };
        let v = match &self.inner {
            Prepared::Ridge(p) => {
                let r = p.score(y)?;
                Score {
                    y_removed: r.degenerate_targets.clone(),
                    value: MeasureValue::Ridge(r),
                    x_removed: Screening::none(),
                }
            }
            Prepared::Cka(p) => scalar(p.score_screened(y)?, p.x_screening()),
            Prepared::Procrustes(p) => Score {
                value: MeasureValue::Scalar(p.score(y)?),
                x_removed: Screening::none(),
                y_removed: Screening::none(),
            },
            Prepared::Cca(p) => scalar(p.mean_screened(y)?, p.x_screening()),
        };
        // The inputs are checked, so this is a last guard: a value that is not a number is an
        // error, never a result.
        if !v.value().is_finite() {
            return Err(SimilarityError::Degenerate {
                measure: self.measure.clone(),
                reason: format!("the result is {}, not a finite number", v.value()),
            });
        }
        Ok(v)
    }

    /// The value turned so that larger always means more similar (distances are negated).
    pub fn oriented_score(&self, y: MatRef<'_, f64>) -> Result<f64, SimilarityError> {
        let v = self.score(y)?.value();
        Ok(match self.orientation {
            Orientation::Similarity => v,
            Orientation::Distance => -v,
        })
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Measure::RidgeR2(r) => {
                let alphas: Vec<String> = r.alphas().iter().map(|a| a.to_string()).collect();
                write!(
                    f,
                    "ridge-r2:alphas={};test={};seed={}",
                    alphas.join(","),
                    r.test_fraction(),
                    r.seed()
                )
            }
            Measure::Cka(k) => f.write_str(k.name()),
            Measure::Procrustes(k) => f.write_str(k.name()),
            Measure::CcaMean => f.write_str("cca:mean"),
            Measure::Svcca { var } => write!(f, "svcca:var={var}"),
        }
    }
}

impl FromStr for Measure {
    type Err = MeasureNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| MeasureNameError {
            name: text.to_owned(),
            reason,
            valid: VALID_FORMS,
        };
        let trimmed = text.trim();
        let (family, rest) = match trimmed.split_once(':') {
            Some((f, r)) => (f, Some(r)),
            None => (trimmed, None),
        };
        match family {
            "ridge-r2" => {
                let params =
                    parse_params(rest.unwrap_or(""), &["alphas", "test", "seed"]).map_err(err)?;
                let mut alphas = DEFAULT_ALPHAS.to_vec();
                let mut test = DEFAULT_TEST_FRACTION;
                let mut seed = DEFAULT_SEED;
                for (key, value) in params {
                    match key {
                        "alphas" => {
                            alphas = value
                                .split(',')
                                .map(|a| parse_f64("alphas", a.trim()))
                                .collect::<Result<_, _>>()
                                .map_err(err)?;
                        }
                        "test" => test = parse_f64("test", value).map_err(err)?,
                        _ => {
                            seed = value.parse().map_err(|_| {
                                err(format!(
                                    "seed must be a non-negative integer below 2^64, got `{value}`"
                                ))
                            })?;
                        }
                    }
                }
                RidgeR2::new(alphas, test, seed)
                    .map(Measure::RidgeR2)
                    .map_err(err)
            }
            "cka" => match rest {
                Some("linear") => Ok(Measure::Cka(CkaKind::Linear)),
                Some("debiased") => Ok(Measure::Cka(CkaKind::Debiased)),
                Some(other) => Err(err(format!(
                    "unknown CKA estimator `{other}`; use cka:linear or cka:debiased"
                ))),
                None => Err(err("name the estimator: cka:linear or cka:debiased".into())),
            },
            "procrustes" => match rest {
                Some("angular") => Ok(Measure::Procrustes(ProcrustesKind::Angular)),
                Some("euclidean") => Ok(Measure::Procrustes(ProcrustesKind::Euclidean)),
                Some(other) => Err(err(format!(
                    "unknown Procrustes distance `{other}`; use procrustes:angular or procrustes:euclidean"
                ))),
                None => Err(err(
                    "name the distance: procrustes:angular or procrustes:euclidean".into(),
                )),
            },
            "cca" => match rest {
                Some("mean") => Ok(Measure::CcaMean),
                Some(other) => Err(err(format!("unknown CCA summary `{other}`; use cca:mean"))),
                None => Err(err("name the summary: cca:mean".into())),
            },
            "svcca" => {
                let params = parse_params(rest.unwrap_or(""), &["var"]).map_err(err)?;
                let mut var = DEFAULT_SVCCA_VAR;
                for (_, value) in params {
                    var = parse_f64("var", value).map_err(err)?;
                }
                if !(var > 0.0 && var <= 1.0) {
                    return Err(err(format!("var must satisfy 0 < var <= 1, got {var}")));
                }
                Ok(Measure::Svcca { var })
            }
            "" => Err(err("empty name".into())),
            other => Err(err(format!("unknown measure family `{other}`"))),
        }
    }
}

/// `key=value;key=value`, each key at most once and from `allowed`.
fn parse_params<'a>(
    text: &'a str,
    allowed: &[&'static str],
) -> Result<Vec<(&'static str, &'a str)>, String> {
    let mut out: Vec<(&'static str, &'a str)> = Vec::new();
    if text.trim().is_empty() {
        return Ok(out);
    }
    for part in text.split(';') {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("parameter `{part}` is not of the form key=value"))?;
        let key = key.trim();
        let known = allowed
            .iter()
            .find(|k| **k == key)
            .ok_or_else(|| format!("unknown parameter `{key}` (known: {})", allowed.join(", ")))?;
        if out.iter().any(|(k, _)| k == known) {
            return Err(format!("parameter `{key}` given twice"));
        }
        out.push((known, value.trim()));
    }
    Ok(out)
}

fn parse_f64(key: &str, value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{key} must be a finite number, got `{value}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_round_trip() {
        for name in [
            "ridge-r2:alphas=0.1,1,10;test=0.1;seed=7",
            "ridge-r2:alphas=0.5;test=0.25;seed=0",
            "cka:linear",
            "cka:debiased",
            "procrustes:angular",
            "procrustes:euclidean",
            "cca:mean",
            "svcca:var=0.99",
            "svcca:var=1",
        ] {
            let m: Measure = name.parse().unwrap();
            assert_eq!(m.to_string(), name);
            assert_eq!(m.to_string().parse::<Measure>().unwrap(), m);
        }
    }

    #[test]
    fn defaults_are_filled_in() {
        let m: Measure = "ridge-r2".parse().unwrap();
        assert_eq!(m.to_string(), "ridge-r2:alphas=0.1,1,10;test=0.1;seed=0");
        let m: Measure = "ridge-r2:seed=7".parse().unwrap();
        assert_eq!(m.to_string(), "ridge-r2:alphas=0.1,1,10;test=0.1;seed=7");
        let m: Measure = "svcca".parse().unwrap();
        assert_eq!(m.to_string(), "svcca:var=0.99");
        for m in Measure::defaults() {
            assert_eq!(m.to_string().parse::<Measure>().unwrap(), m);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_valid_ridge_or_svcca_name_round_trips(
            alphas in proptest::collection::vec(1e-6f64..1e6, 1..5),
            test in 0.01f64..0.99,
            seed in proptest::num::u64::ANY,
            var in 0.001f64..=1.0,
        ) {
            let ridge = Measure::RidgeR2(RidgeR2::new(alphas, test, seed).unwrap());
            let text = ridge.to_string();
            proptest::prop_assert_eq!(text.parse::<Measure>().unwrap(), ridge);
            let svcca = Measure::Svcca { var };
            proptest::prop_assert_eq!(svcca.to_string().parse::<Measure>().unwrap(), svcca);
        }
    }

    #[test]
    fn bad_names_are_rejected_with_the_valid_forms() {
        for (name, fragment) in [
            ("cka", "name the estimator"),
            ("cka:rbf", "unknown CKA estimator"),
            ("ridge-r2:alphas=0.1,-1", "alpha"),
            ("ridge-r2:alphas=", "alphas must be a finite number"),
            ("ridge-r2:test=1.5", "test must lie"),
            ("ridge-r2:seed=-3", "seed"),
            ("ridge-r2:seed=1;seed=2", "given twice"),
            ("ridge-r2:lambda=3", "unknown parameter"),
            ("svcca:var=0", "0 < var"),
            ("svcca:var=nan", "finite"),
            ("mystery", "unknown measure family"),
            ("", "empty"),
        ] {
            let e = name.parse::<Measure>().unwrap_err();
            assert!(e.reason.contains(fragment), "{name}: {}", e.reason);
            assert!(e.valid.contains("cka:debiased"));
        }
    }
}
