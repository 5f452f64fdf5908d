//! Representation-similarity measures as named, parameterised objects.
//!
//! Every measure compares two matrices `x` [n, dx] and `y` [n, dy] whose rows are the same `n`
//! inputs. All arithmetic is f64 and every factorisation is faer's (see [`linalg`]). A measure is
//! named by a string that states all of its parameters and parses back to the same value
//! ([`Measure`]): `ridge-r2:alphas=0.1,1,10;test=0.1;seed=0`, `cka:linear`, `cka:debiased`,
//! `procrustes:angular`, `procrustes:euclidean`, `cca:mean`, `svcca:var=0.99`.
//!
//! Definitions (all on column-centred data `Xc`, `Yc`):
//! - `ridge-r2`: ridge regression with intercept from `x` to `y`, penalty chosen by efficient
//!   leave-one-out CV exactly as scikit-learn's `RidgeCV(alphas, fit_intercept=True)` (criterion:
//!   mean squared LOO error over all targets jointly; first alpha wins ties), refit on the training
//!   rows and scored on held-out rows as `sqrt(max(R², 0))` with R² averaged uniformly over targets.
//!   Asymmetric. See [`ridge`].
//! - `cka:linear`: `‖XcᵀYc‖²_F / (‖XcᵀXc‖_F ‖YcᵀYc‖_F)` (Gretton's biased HSIC).
//! - `cka:debiased`: the same ratio with Song et al.'s unbiased HSIC estimator.
//! - `procrustes:angular`: `arccos(‖XcᵀYc‖_* / (‖Xc‖_F ‖Yc‖_F))`, a distance.
//! - `procrustes:euclidean`: `sqrt(‖Xc‖²_F + ‖Yc‖²_F − 2‖XcᵀYc‖_*)`, a distance.
//! - `cca:mean`: mean canonical correlation.
//! - `svcca:var=v`: keep the leading singular directions of each side explaining a fraction `v`
//!   of its variance, then `cca:mean`.
//!
//! Degenerate columns — variance below [`DEGENERATE_VARIANCE_RATIO`] of the largest column's, the
//! rounding noise f32 models leak into exact constants — are left out of ridge targets and of both
//! sides of CKA and CCA, and every [`Score`] lists them ([`screen`]).

pub mod cca;
pub mod cka;
pub mod io;
pub mod linalg;
pub mod measure;
pub mod procrustes;
pub mod report;
pub mod ridge;
pub mod screen;

use faer::MatRef;

/// Seeded standard-normal test data, `n` rows by `d` columns.
#[cfg(test)]
pub(crate) fn random_matrix(n: usize, d: usize, seed: u64) -> faer::Mat<f64> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    faer::Mat::from_fn(n, d, |_, _| StandardNormal.sample(&mut rng))
}

pub use measure::{Measure, MeasureNameError, MeasureValue, Orientation, PreparedSource, Score};
pub use ridge::{HeldOutSplit, RidgeCv, RidgeCvFit, RidgeR2, RidgeR2Result};
pub use screen::{DEGENERATE_VARIANCE_RATIO, Screening};

/// Which argument of a measure an error is about: `x` is the source (first argument, the
/// predictor for ridge), `y` the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    X,
    Y,
}

impl std::fmt::Display for Operand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operand::X => "x",
            Operand::Y => "y",
        })
    }
}

/// Errors of the similarity stage. Each names the measure and the operand concerned.
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
pub enum SimilarityError {
    #[error(
        "{measure}: x has {x_rows} rows but y has {y_rows}; both must hold the same inputs, row by row"
    )]
    #[diagnostic(code(congruity::similarity::row_mismatch))]
    RowMismatch {
        measure: String,
        x_rows: usize,
        y_rows: usize,
    },
    #[error("{measure}: needs at least {min} rows (inputs), got {n}")]
    #[diagnostic(code(congruity::similarity::too_few_rows))]
    TooFewRows {
        measure: String,
        n: usize,
        min: usize,
    },
    #[error("{measure}: {operand} has no columns (features)")]
    #[diagnostic(code(congruity::similarity::no_features))]
    NoFeatures { measure: String, operand: Operand },
    #[error(
        "{measure}: {operand}[{row}, {col}] is {value}; NaN and infinite values are not allowed"
    )]
    #[diagnostic(code(congruity::similarity::non_finite))]
    NonFinite {
        measure: String,
        operand: Operand,
        row: usize,
        col: usize,
        value: f64,
    },
    #[error(
        "{measure}: {operand} has zero variance (every row is the same after centring), so the measure is undefined"
    )]
    #[diagnostic(code(congruity::similarity::zero_variance))]
    ZeroVariance { measure: String, operand: Operand },
    #[error(
        "{measure}: the largest magnitude in {operand} is {max_abs:e}; values must lie within 1e-30 ..= 1e30 in magnitude (the measures square and multiply sums of squares, which overflow or underflow f64 outside it)"
    )]
    #[diagnostic(
        code(congruity::similarity::scale),
        help("rescale the representation, e.g. divide it by its largest absolute value")
    )]
    Scale {
        measure: String,
        operand: Operand,
        max_abs: f64,
    },
    #[error(
        "{measure}: {operand} is constant up to rounding: after centring its norm is {ratio:e} of its norm, below 1e-12, so the measure would describe rounding noise"
    )]
    #[diagnostic(code(congruity::similarity::zero_variance))]
    NearConstant {
        measure: String,
        operand: Operand,
        ratio: f64,
    },
    #[error("{measure}: {reason}")]
    #[diagnostic(code(congruity::similarity::degenerate))]
    Degenerate { measure: String, reason: String },
    #[error("ridge-r2 held-out split: {reason}")]
    #[diagnostic(code(congruity::similarity::bad_split))]
    BadSplit { reason: String },
    #[error("{measure}: {operation} did not converge")]
    #[diagnostic(code(congruity::similarity::no_convergence))]
    NoConvergence {
        measure: String,
        operation: &'static str,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    BadName(#[from] MeasureNameError),
}

/// The magnitudes an operand's values may have (see [`SimilarityError::Scale`]).
const MAX_MAGNITUDE: f64 = 1e30;
const MIN_MAGNITUDE: f64 = 1e-30;
/// Below this ratio of centred to raw Frobenius norm an operand is constant up to rounding (f64
/// centring leaves residues around 1e-16 of the norm).
const MIN_CENTRED_RATIO: f64 = 1e-12;

/// `Σ f(v)` over eight interleaved accumulators, which the compiler keeps in one vector register.
fn lane_sum(values: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = values.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|v| f(*v)).sum();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += f(*v);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// Checks one operand: at least one column, only finite values of a magnitude f64 arithmetic
/// handles, and not constant up to rounding.
pub(crate) fn check_operand(
    measure: &str,
    operand: Operand,
    m: MatRef<'_, f64>,
) -> Result<(), SimilarityError> {
    if m.ncols() == 0 {
        return Err(SimilarityError::NoFeatures {
            measure: measure.to_owned(),
            operand,
        });
    }
    let mut max_abs = 0.0f64;
    for (col, column) in linalg::columns(m).enumerate() {
        // All finite is the common case: test it with a vectorisable reduction, and look for
        // the offending row only when it fails.
        if !column.iter().fold(true, |ok, v| ok & v.is_finite()) {
            let (row, &value) = column
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite())
                .expect("a non-finite value");
            return Err(SimilarityError::NonFinite {
                measure: measure.to_owned(),
                operand,
                row,
                col,
                value,
            });
        }
        let mut lanes = [0.0f64; 8];
        let chunks = column.chunks_exact(8);
        for v in chunks.remainder() {
            max_abs = max_abs.max(v.abs());
        }
        for chunk in chunks {
            for (lane, v) in lanes.iter_mut().zip(chunk) {
                *lane = if v.abs() > *lane { v.abs() } else { *lane };
            }
        }
        max_abs = lanes.iter().fold(max_abs, |m, v| m.max(*v));
    }
    if max_abs == 0.0 {
        // All zeros: each measure reports its own zero-variance error.
        return Ok(());
    }
    if !(MIN_MAGNITUDE..=MAX_MAGNITUDE).contains(&max_abs) {
        return Err(SimilarityError::Scale {
            measure: measure.to_owned(),
            operand,
            max_abs,
        });
    }
    // Scaled by the largest magnitude so the squares cannot overflow. Only compared with a
    // threshold, so the sums run in independent lanes (vectorised) and a reciprocal stands in
    // for a division per element.
    let scale = 1.0 / max_abs;
    let (mut raw, mut centred) = (0.0f64, 0.0f64);
    for column in linalg::columns(m) {
        let mean = lane_sum(&column, |v| v) / m.nrows().max(1) as f64;
        raw += lane_sum(&column, |v| (v * scale) * (v * scale));
        centred += lane_sum(&column, |v| ((v - mean) * scale) * ((v - mean) * scale));
    }
    let ratio = (centred / raw).sqrt();
    if ratio > 0.0 && ratio < MIN_CENTRED_RATIO {
        return Err(SimilarityError::NearConstant {
            measure: measure.to_owned(),
            operand,
            ratio,
        });
    }
    Ok(())
}

/// Checks a target `y` scored against a source prepared on `x_rows` rows: the same rows (inputs),
/// at least one column, only finite values.
pub(crate) fn check_target(
    measure: &str,
    x_rows: usize,
    y: MatRef<'_, f64>,
) -> Result<(), SimilarityError> {
    if y.nrows() != x_rows {
        return Err(SimilarityError::RowMismatch {
            measure: measure.to_owned(),
            x_rows,
            y_rows: y.nrows(),
        });
    }
    check_operand(measure, Operand::Y, y)
}

/// Checks that `x` and `y` describe the same `n >= min_rows` inputs.
pub(crate) fn check_pair(
    measure: &str,
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    min_rows: usize,
) -> Result<(), SimilarityError> {
    if x.nrows() != y.nrows() {
        return Err(SimilarityError::RowMismatch {
            measure: measure.to_owned(),
            x_rows: x.nrows(),
            y_rows: y.nrows(),
        });
    }
    check_rows(measure, x.nrows(), min_rows)?;
    check_operand(measure, Operand::X, x)?;
    check_operand(measure, Operand::Y, y)
}

pub(crate) fn check_rows(measure: &str, n: usize, min: usize) -> Result<(), SimilarityError> {
    if n < min {
        return Err(SimilarityError::TooFewRows {
            measure: measure.to_owned(),
            n,
            min,
        });
    }
    Ok(())
}
