//! Ridge predictivity (`ridge-r2`), the linear "fit" of Sun & Toneva.
//!
//! [`RidgeCv`] reproduces scikit-learn 1.9's `RidgeCV(alphas, fit_intercept=True)` with `cv=None`
//! (its `_RidgeGCV`): `x` and `y` are centred on the training rows (so the intercept is not
//! penalised), the training design is factorised once, and every alpha and every target is solved
//! from that one factorisation. Like scikit-learn's `gcv_mode="auto"`, the Gram matrix `Xc Xcᵀ`
//! is factorised when `n <= p` (its eigendecomposition) and the covariance `XcᵀXc` when `n > p`;
//! there scikit-learn takes an SVD of `Xc`, and this module the tridiagonalisation
//! `XcᵀXc = Q T Qᵀ`, which gives the same smoother in exact arithmetic at a third of the cost:
//! no eigenvectors are formed, and each alpha is a banded solve with `T + αI`. Leave-one-out errors use the closed form with the intercept direction left
//! unpenalised (`looe_i = (y_i − ŷ_i) / (1 − h_ii − (1 − (H1)_i)/n)`), the criterion is the mean
//! squared LOO error over all rows and targets jointly, and the first alpha with the smallest
//! criterion wins (scikit-learn's strict `>` on the negated error).
//!
//! [`RidgeR2`] fits on the training rows and reports `sqrt(max(R², 0))` on held-out rows, with R²
//! as `sklearn.metrics.r2_score(multioutput="uniform_average")` (`force_finite=True`: a target
//! that is constant on the held-out rows scores 1 when predicted exactly and 0 otherwise). Two
//! deliberate differences: "constant" is decided on the values themselves, not on a
//! floating-point mean that may miss them by one ulp, and a held-out column equal up to rounding
//! (sum of squares below [`DEGENERATE_VARIANCE_RATIO`] of the largest held-out column's) counts
//! as constant, "exactly" meaning to that precision; either would otherwise make scikit-learn's
//! R² for that column a huge negative number. Target columns that are constant up to rounding on
//! all rows are left out before fitting ([`super::screen`]).

use faer::{Mat, MatRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use super::linalg::{self, NoConvergence, Tridiagonalization};
use super::screen::{DEGENERATE_VARIANCE_RATIO, Screening, screen};
use super::{Operand, SimilarityError, check_operand, check_rows, check_target};

const NAME: &str = "ridge-r2";

/// Smallest training set accepted: leave-one-out with a free intercept needs at least three rows
/// to leave one out and still have a spread to fit.
pub const MIN_TRAIN_ROWS: usize = 3;
/// Smallest held-out set accepted: R² is undefined on fewer than two rows.
pub const MIN_TEST_ROWS: usize = 2;

/// Default penalties, the paper's grid.
pub const DEFAULT_ALPHAS: [f64; 3] = [0.1, 1.0, 10.0];
/// Default held-out fraction.
pub const DEFAULT_TEST_FRACTION: f64 = 0.1;
/// Default seed of the held-out split.
pub const DEFAULT_SEED: u64 = 0;

/// Which matrix scikit-learn's `gcv_mode="auto"` would decompose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GcvMode {
    /// `Xc Xcᵀ` (n × n), chosen when `n <= p`.
    Gram,
    /// `XcᵀXc` (p × p), chosen when `n > p`.
    Cov,
}

/// Validated list of ridge penalties.
#[derive(Debug, Clone, PartialEq)]
pub struct RidgeCv {
    alphas: Vec<f64>,
}

impl RidgeCv {
    /// Penalties must be finite and strictly positive; order is kept because ties go to the first.
    pub fn new(alphas: Vec<f64>) -> Result<Self, String> {
        if alphas.is_empty() {
            return Err("alphas must name at least one penalty".into());
        }
        if let Some(bad) = alphas.iter().find(|a| !(a.is_finite() && **a > 0.0)) {
            return Err(format!(
                "every alpha must be a finite number > 0, got {bad}"
            ));
        }
        Ok(Self { alphas })
    }

    pub fn alphas(&self) -> &[f64] {
        &self.alphas
    }

    /// Factorises the training design once; the result serves every alpha and every target.
    pub fn factorise(&self, x: MatRef<'_, f64>) -> Result<RidgeCvFactor, SimilarityError> {
        RidgeCvFactor::new(self.alphas.clone(), x)
    }
}

enum Decomposition {
    /// `n > p`: `XcᵀXc = Q T Qᵀ` with `T` tridiagonal, so `(XcᵀXc + αI)⁻¹ = Q (T + αI)⁻¹ Qᵀ`
    /// and every alpha costs a tridiagonal solve instead of a dense one.
    Cov {
        tri: Tridiagonalization,
        /// `Xc Q` (n × p): the design in `T`'s coordinates.
        y: Mat<f64>,
        /// `(Yᵀ 1)ᵀ`, for the intercept correction of the leverages.
        y_t_one: Mat<f64>,
    },
    /// `n <= p`: the eigendecomposition `Xc Xcᵀ = Q Λ Qᵀ` (n × n).
    Gram {
        eigvals: Vec<f64>,
        q: Mat<f64>,
        /// Squared entries of `Q`, for leverages `Σ_k Q_ik² D_k`.
        q_sq: Mat<f64>,
        /// `Qᵀ 1`, for the intercept correction.
        q_t_one: Vec<f64>,
        /// Centred training design, for the primal coefficients `Xcᵀ c`.
        xc: Mat<f64>,
    },
}

/// One factorisation of a training design, ready to fit any targets for every alpha.
pub struct RidgeCvFactor {
    alphas: Vec<f64>,
    x_mean: Vec<f64>,
    n: usize,
    decomposition: Decomposition,
}

/// Result of the leave-one-out search and the refit at the chosen alpha.
#[derive(Debug, Clone)]
pub struct RidgeCvFit {
    pub chosen_alpha: f64,
    /// Mean squared leave-one-out error (all rows, all targets) for each alpha, in input order.
    pub loo_mse: Vec<f64>,
    /// Coefficients (p × targets).
    pub coef: Mat<f64>,
    /// Intercept per target.
    pub intercept: Vec<f64>,
    pub mode: GcvMode,
}

impl RidgeCvFit {
    /// Predictions `x coef + intercept` for rows of the original (uncentred) design.
    pub fn predict(&self, x: MatRef<'_, f64>) -> Mat<f64> {
        let mut out = linalg::mul(x, self.coef.as_ref());
        for j in 0..out.ncols() {
            for i in 0..out.nrows() {
                out[(i, j)] += self.intercept[j];
            }
        }
        out
    }
}

fn no_conv(operation: &'static str) -> impl Fn(NoConvergence) -> SimilarityError {
    move |_| SimilarityError::NoConvergence {
        measure: NAME.to_owned(),
        operation,
    }
}

/// The leave-one-out search's outcome before it is turned into coefficients: the weights `W`
/// at the chosen alpha (see [`RidgeCvFactor::loo_for_alpha`]), from which coefficients and
/// predictions (`project(x) · W + ȳ`) both follow.
struct ChosenWeights {
    best: usize,
    loo_mse: Vec<f64>,
    /// `Wᵀ` (targets × basis columns): the layout the banded solves vectorise over.
    wt: Mat<f64>,
    y_mean: Vec<f64>,
}

impl RidgeCvFactor {
    fn new(alphas: Vec<f64>, x: MatRef<'_, f64>) -> Result<Self, SimilarityError> {
        check_rows(NAME, x.nrows(), MIN_TRAIN_ROWS)?;
        check_operand(NAME, Operand::X, x)?;
        let (n, p) = x.shape();
        let (xc, x_mean) = linalg::center(x);
        // Only the lower triangles are formed: the factorisations read nothing else.
        let decomposition = if n <= p {
            let gram = linalg::crossprod_lower(xc.as_ref().transpose());
            let (eigvals, q) = linalg::symmetric_eigen(gram.as_ref())
                .map_err(no_conv("eigendecomposition of the Gram matrix"))?;
            let q_sq = linalg::from_columns(q.nrows(), q.ncols(), |k, out| {
                for (o, v) in out.iter_mut().zip(linalg::column(q.as_ref(), k).iter()) {
                    *o = v * v;
                }
            });
            let q_t_one = linalg::columns(q.as_ref())
                .map(|c| c.iter().sum::<f64>())
                .collect();
            Decomposition::Gram {
                eigvals,
                q,
                q_sq,
                q_t_one,
                xc,
            }
        } else {
            let tri =
                linalg::Tridiagonalization::new(linalg::crossprod_lower(xc.as_ref()).as_ref());
            let mut y = xc;
            tri.apply_right(y.as_mut());
            let y_t_one = Mat::from_fn(1, p, |_, k| linalg::column(y.as_ref(), k).iter().sum());
            Decomposition::Cov { tri, y, y_t_one }
        };
        Ok(Self {
            alphas,
            x_mean,
            n,
            decomposition,
        })
    }

    pub fn n_rows(&self) -> usize {
        self.n
    }

    pub fn mode(&self) -> GcvMode {
        match self.decomposition {
            Decomposition::Cov { .. } => GcvMode::Cov,
            Decomposition::Gram { .. } => GcvMode::Gram,
        }
    }

    /// The matrix the weights `W` multiply to give fitted values: `Y` or `Q`.
    fn basis(&self) -> MatRef<'_, f64> {
        match &self.decomposition {
            Decomposition::Cov { y, .. } => y.as_ref(),
            Decomposition::Gram { q, .. } => q.as_ref(),
        }
    }

    /// Rows of a design (uncentred, like the training one) in the coordinates the weights `W`
    /// act on: `(x − x̄) Q` in covariance mode, `(x − x̄) Xcᵀ Q` in Gram mode. Predictions are
    /// then `that · W + ȳ`, without forming the p × targets coefficients.
    fn project(&self, x: MatRef<'_, f64>) -> Mat<f64> {
        let centred = linalg::subtract_means(x, &self.x_mean);
        match &self.decomposition {
            Decomposition::Cov { tri, .. } => {
                let mut projected = centred;
                tri.apply_right(projected.as_mut());
                projected
            }
            Decomposition::Gram { q, xc, .. } => {
                let kernel = linalg::mul_blocked(centred.as_ref(), xc.as_ref().transpose());
                linalg::mul_blocked(kernel.as_ref(), q.as_ref())
            }
        }
    }

    /// Leave-one-out search over the alphas and refit at the chosen one, for all columns of `y`.
    pub fn fit(&self, y: MatRef<'_, f64>) -> Result<RidgeCvFit, SimilarityError> {
        let chosen = self.choose(y)?;
        let w = chosen.wt.as_ref().transpose();
        let coef = match &self.decomposition {
            Decomposition::Cov { tri, .. } => {
                let mut coef = w.to_owned();
                tri.apply_left(coef.as_mut());
                coef
            }
            Decomposition::Gram { q, xc, .. } => {
                let c = linalg::mul_blocked(q.as_ref(), w);
                linalg::mul_tn_blocked(xc.as_ref(), c.as_ref())
            }
        };
        let intercept = (0..coef.ncols())
            .map(|j| {
                let shift: f64 = (0..coef.nrows())
                    .map(|k| self.x_mean[k] * coef[(k, j)])
                    .sum();
                chosen.y_mean[j] - shift
            })
            .collect();
        Ok(RidgeCvFit {
            chosen_alpha: self.alphas[chosen.best],
            loo_mse: chosen.loo_mse,
            coef,
            intercept,
            mode: self.mode(),
        })
    }

    /// The leave-one-out criterion for every alpha and the weights at the chosen one.
    fn choose(&self, y: MatRef<'_, f64>) -> Result<ChosenWeights, SimilarityError> {
        check_target(NAME, self.n, y)?;
        let (yc, y_mean) = linalg::center(y);
        // (basisᵀ yc)ᵀ: the targets in the basis's coordinates, shared by every alpha.
        let bty_t = linalg::mul_tn_blocked(yc.as_ref(), self.basis());

        let per_alpha: Vec<Result<(f64, Mat<f64>), SimilarityError>> = self
            .alphas
            .par_iter()
            .map(|&alpha| self.loo_for_alpha(alpha, yc.as_ref(), bty_t.as_ref()))
            .collect();
        let mut loo_mse = Vec::with_capacity(self.alphas.len());
        let mut weights = Vec::with_capacity(self.alphas.len());
        for r in per_alpha {
            let (mse, w) = r?;
            loo_mse.push(mse);
            weights.push(w);
        }
        // scikit-learn keeps the first alpha unless a later one is strictly better.
        let mut best = 0;
        for (i, mse) in loo_mse.iter().enumerate().skip(1) {
            if *mse < loo_mse[best] {
                best = i;
            }
        }
        Ok(ChosenWeights {
            best,
            loo_mse,
            wt: weights.swap_remove(best),
            y_mean,
        })
    }

    /// Returns the criterion for one alpha and its weights `W` (`(T + αI)⁻¹ Yᵀyc` in
    /// covariance mode, `D ∘ Qᵀyc` in Gram mode; as `Wᵀ`, given `(basisᵀ yc)ᵀ`), from which
    /// fitted values (`basis · W`), coefficients and predictions follow.
    fn loo_for_alpha(
        &self,
        alpha: f64,
        yc: MatRef<'_, f64>,
        bty_t: MatRef<'_, f64>,
    ) -> Result<(f64, Mat<f64>), SimilarityError> {
        let n = self.n;
        let t = yc.ncols();
        let (wt, denom) = match &self.decomposition {
            Decomposition::Cov { tri, y, y_t_one } => {
                let shifted = tri
                    .shifted(alpha)
                    .ok_or_else(|| SimilarityError::Degenerate {
                        measure: NAME.to_owned(),
                        reason: format!(
                            "XᵀX + {alpha}·I is not positive definite in floating point"
                        ),
                    })?;
                // Leverages h = diag(Y (T+αI)⁻¹ Yᵀ); s = Y (T+αI)⁻¹ Yᵀ1, the smoother's response
                // to the constant vector, which the intercept leaves unpenalised (exactly zero
                // in exact arithmetic on centred data).
                let h = shifted.row_quadratic_forms(y.as_ref());
                let g = shifted.solve_transposed(y_t_one.as_ref());
                let s = linalg::mul(y.as_ref(), g.as_ref().transpose());
                // looe = (yc − Y W) / (1 − h − (1 − s)/n)
                let denom = h
                    .iter()
                    .zip(linalg::column(s.as_ref(), 0).iter())
                    .map(|(h, s)| 1.0 - h - (1.0 - s) / n as f64)
                    .collect::<Vec<f64>>();
                (shifted.solve_transposed(bty_t), denom)
            }
            Decomposition::Gram {
                eigvals,
                q,
                q_sq,
                q_t_one,
                ..
            } => {
                let d: Vec<f64> = eigvals.iter().map(|l| 1.0 / (l + alpha)).collect();
                let wt = linalg::from_columns(t, bty_t.ncols(), |k, out| {
                    for (o, b) in out.iter_mut().zip(linalg::column(bty_t, k).iter()) {
                        *o = d[k] * b;
                    }
                });
                // Per row: g = Σ_k Q_ik² D_k and s = Σ_k Q_ik (D ∘ Qᵀ1)_k, accumulated column
                // by column (the matrices are column-major).
                let (mut g, mut s) = (vec![0.0f64; n], vec![0.0f64; n]);
                for k in 0..d.len() {
                    let (dk, ek) = (d[k], d[k] * q_t_one[k]);
                    let (sq, col) = (
                        linalg::column(q_sq.as_ref(), k),
                        linalg::column(q.as_ref(), k),
                    );
                    for (((gi, si), sq), v) in g
                        .iter_mut()
                        .zip(s.iter_mut())
                        .zip(sq.iter())
                        .zip(col.iter())
                    {
                        *gi += sq * dk;
                        *si += v * ek;
                    }
                }
                // looe = c / (diag(G⁻¹) − (G⁻¹1)/n), with c = Q W = G⁻¹ yc.
                let denom = g.iter().zip(&s).map(|(g, s)| g - s / n as f64).collect();
                (wt, denom)
            }
        };
        check_leverage(&denom)?;
        let residual_of: fn(f64, f64) -> f64 = match self.decomposition {
            Decomposition::Cov { .. } => |y, f| y - f,
            Decomposition::Gram { .. } => |_, f| f,
        };
        // Σ over rows and targets of (looe)², one block of fitted columns at a time.
        let mse =
            linalg::mul_blocked_fold(self.basis(), wt.as_ref().transpose(), |start, fitted| {
                let mut sum = 0.0;
                for c in 0..fitted.ncols() {
                    let (y, f) = (linalg::column(yc, start + c), linalg::column(fitted, c));
                    for ((y, f), den) in y.iter().zip(f.iter()).zip(&denom) {
                        let e = residual_of(*y, *f) / den;
                        sum += e * e;
                    }
                }
                sum
            });
        let mse = mse / (n * t) as f64;
        if !mse.is_finite() {
            return Err(SimilarityError::Degenerate {
                measure: NAME.to_owned(),
                reason: format!("leave-one-out error for alpha={alpha} is not finite"),
            });
        }
        Ok((mse, wt))
    }
}

fn check_leverage(denom: &[f64]) -> Result<(), SimilarityError> {
    match denom.iter().position(|d| !(d.is_finite() && *d != 0.0)) {
        None => Ok(()),
        Some(row) => Err(SimilarityError::Degenerate {
            measure: NAME.to_owned(),
            reason: format!(
                "leave-one-out is undefined: training row {row} is fitted exactly whatever its own value (leverage 1)"
            ),
        }),
    }
}

/// R² averaged uniformly over the columns, with `r2_score`'s `force_finite` conventions for
/// columns that are constant on these rows (see the module docs).
pub fn r2_uniform_average(y_true: MatRef<'_, f64>, y_pred: MatRef<'_, f64>) -> f64 {
    let n = y_true.nrows() as f64;
    let t = y_true.ncols();
    let sums_of_squares: Vec<f64> = (0..t)
        .map(|j| {
            let col = y_true.col(j);
            let mean = col.iter().sum::<f64>() / n;
            col.iter().map(|v| (v - mean).powi(2)).sum()
        })
        .collect();
    // A column is constant on the held-out rows when its values are equal, or equal up to the
    // rounding a float model leaks (sum of squares below the degenerate tolerance of the largest
    // column's): otherwise one held-out column of 0 ± 1e-7 scores R² ≈ −1e7 and swamps the
    // average. Such a column scores 1 when predicted to the same precision, else 0.
    let largest = sums_of_squares.iter().copied().fold(0.0f64, f64::max);
    let rounding = DEGENERATE_VARIANCE_RATIO * largest;
    let mut total = 0.0;
    for (j, &denominator) in sums_of_squares.iter().enumerate() {
        let col = y_true.col(j);
        let numerator: f64 = (0..y_true.nrows())
            .map(|i| (col[i] - y_pred[(i, j)]).powi(2))
            .sum();
        let constant = col.iter().all(|v| *v == col[0]) || denominator < rounding;
        let score = if numerator == 0.0 {
            1.0
        } else if constant {
            if numerator < rounding { 1.0 } else { 0.0 }
        } else {
            1.0 - numerator / denominator
        };
        total += score;
    }
    total / t as f64
}

/// Row indices of a train / held-out split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldOutSplit {
    train: Vec<usize>,
    test: Vec<usize>,
}

impl HeldOutSplit {
    /// An explicit split of `n` rows: indices in range, no repeats, disjoint, large enough.
    /// Rows in neither set are left unused.
    pub fn new(train: Vec<usize>, test: Vec<usize>, n: usize) -> Result<Self, SimilarityError> {
        let bad = |reason: String| SimilarityError::BadSplit { reason };
        let mut owner: Vec<Option<&'static str>> = vec![None; n];
        for (set, name) in [(&train, "train"), (&test, "test")] {
            for &i in set.iter() {
                if i >= n {
                    return Err(bad(format!(
                        "{name} index {i} is out of range for {n} rows"
                    )));
                }
                if let Some(prev) = owner[i] {
                    return Err(bad(if prev == name {
                        format!("row {i} appears twice in {name}")
                    } else {
                        format!("row {i} is in both {prev} and {name}")
                    }));
                }
                owner[i] = Some(name);
            }
        }
        if train.len() < MIN_TRAIN_ROWS {
            return Err(bad(format!(
                "{} training rows; at least {MIN_TRAIN_ROWS} are needed for leave-one-out",
                train.len()
            )));
        }
        if test.len() < MIN_TEST_ROWS {
            return Err(bad(format!(
                "{} held-out rows; at least {MIN_TEST_ROWS} are needed for R²",
                test.len()
            )));
        }
        Ok(Self { train, test })
    }

    /// A random split of `n` rows with `ceil(test_fraction · n)` held-out rows, drawn from
    /// `ChaCha8Rng::seed_from_u64(seed)` by a Fisher–Yates shuffle; both sets sorted ascending.
    pub fn seeded(n: usize, test_fraction: f64, seed: u64) -> Result<Self, SimilarityError> {
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(SimilarityError::BadSplit {
                reason: format!(
                    "test fraction must lie strictly between 0 and 1, got {test_fraction}"
                ),
            });
        }
        let n_test = held_out_count(n, test_fraction);
        if n_test < MIN_TEST_ROWS || n - n_test.min(n) < MIN_TRAIN_ROWS {
            return Err(SimilarityError::BadSplit {
                reason: format!(
                    "{n} rows with test={test_fraction} give {n_test} held-out and {} training rows; \
                     at least {MIN_TEST_ROWS} held-out and {MIN_TRAIN_ROWS} training rows are needed",
                    n.saturating_sub(n_test)
                ),
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = rng.random_range(0..=i);
            order.swap(i, j);
        }
        let mut test = order[..n_test].to_vec();
        let mut train = order[n_test..].to_vec();
        test.sort_unstable();
        train.sort_unstable();
        Ok(Self { train, test })
    }

    pub fn train(&self) -> &[usize] {
        &self.train
    }

    pub fn test(&self) -> &[usize] {
        &self.test
    }

    /// Largest row index used plus one: the split fits any matrix with at least this many rows.
    fn min_rows(&self) -> usize {
        self.train
            .iter()
            .chain(&self.test)
            .max()
            .map_or(0, |m| m + 1)
    }
}

/// `ceil(fraction · n)`, except that a product within 1e-9 of an integer counts as that integer, so
/// representation error (`0.1 · 30 = 3.0000000000000004`) does not add a row.
fn held_out_count(n: usize, fraction: f64) -> usize {
    let exact = fraction * n as f64;
    let nearest = exact.round();
    if (exact - nearest).abs() < 1e-9 {
        nearest as usize
    } else {
        exact.ceil() as usize
    }
}

/// The `ridge-r2` measure: its penalties and how it draws a held-out split when none is given.
#[derive(Debug, Clone, PartialEq)]
pub struct RidgeR2 {
    cv: RidgeCv,
    test_fraction: f64,
    seed: u64,
}

impl Default for RidgeR2 {
    fn default() -> Self {
        Self {
            cv: RidgeCv {
                alphas: DEFAULT_ALPHAS.to_vec(),
            },
            test_fraction: DEFAULT_TEST_FRACTION,
            seed: DEFAULT_SEED,
        }
    }
}

/// Outcome of one `ridge-r2` evaluation `x → y`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RidgeR2Result {
    pub chosen_alpha: f64,
    pub r2_test_uniform_average: f64,
    pub sqrt_r2_clamped: f64,
    pub alphas: Vec<f64>,
    /// Mean squared leave-one-out error for each alpha, in the order of `alphas`.
    pub loo_mse: Vec<f64>,
    pub n_train: usize,
    pub n_test: usize,
    pub gcv_mode: GcvMode,
    /// Target columns left out as degenerate (constant up to rounding); R² averages the others.
    pub degenerate_targets: Screening,
}

impl RidgeR2 {
    pub fn new(alphas: Vec<f64>, test_fraction: f64, seed: u64) -> Result<Self, String> {
        let cv = RidgeCv::new(alphas)?;
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(format!(
                "test must lie strictly between 0 and 1, got {test_fraction}"
            ));
        }
        Ok(Self {
            cv,
            test_fraction,
            seed,
        })
    }

    pub fn alphas(&self) -> &[f64] {
        self.cv.alphas()
    }

    pub fn test_fraction(&self) -> f64 {
        self.test_fraction
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The split this measure uses on `n` rows when none is given.
    pub fn seeded_split(&self, n: usize) -> Result<HeldOutSplit, SimilarityError> {
        HeldOutSplit::seeded(n, self.test_fraction, self.seed)
    }

    /// `fit(x → y)` on the measure's own seeded split.
    pub fn evaluate(
        &self,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
    ) -> Result<RidgeR2Result, SimilarityError> {
        self.prepare(x, None)?.score(y)
    }

    /// `fit(x → y)` on an explicit split (for instance one stored beside the data).
    pub fn evaluate_with_split(
        &self,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        split: &HeldOutSplit,
    ) -> Result<RidgeR2Result, SimilarityError> {
        self.prepare(x, Some(split))?.score(y)
    }

    /// Factorises the training rows of `x` once, for scoring any number of targets.
    pub fn prepare(
        &self,
        x: MatRef<'_, f64>,
        split: Option<&HeldOutSplit>,
    ) -> Result<RidgePredictor, SimilarityError> {
        let split = match split {
            Some(s) => {
                if s.min_rows() > x.nrows() {
                    return Err(SimilarityError::BadSplit {
                        reason: format!(
                            "the split uses row {} but x has only {} rows",
                            s.min_rows() - 1,
                            x.nrows()
                        ),
                    });
                }
                s.clone()
            }
            None => self.seeded_split(x.nrows())?,
        };
        check_operand(NAME, Operand::X, x)?;
        let x_train = linalg::select_rows(x, split.train());
        let x_test = linalg::select_rows(x, split.test());
        let factor = self.cv.factorise(x_train.as_ref())?;
        let test_basis = factor.project(x_test.as_ref());
        Ok(RidgePredictor {
            factor,
            test_basis,
            n_rows: x.nrows(),
            split,
        })
    }
}

/// The training rows of one `x`, factorised, with its held-out rows: scores any target `y`.
pub struct RidgePredictor {
    factor: RidgeCvFactor,
    /// The held-out rows projected once ([`RidgeCvFactor::project`]), for every target.
    test_basis: Mat<f64>,
    n_rows: usize,
    split: HeldOutSplit,
}

impl RidgePredictor {
    pub fn split(&self) -> &HeldOutSplit {
        &self.split
    }

    /// `fit(x → y)`.
    pub fn score(&self, y: MatRef<'_, f64>) -> Result<RidgeR2Result, SimilarityError> {
        check_target(NAME, self.n_rows, y)?;
        let (trimmed, degenerate_targets) = screen(NAME, Operand::Y, y)?;
        let y = trimmed.as_ref().map_or(y, |t| t.as_ref());
        let y_train = linalg::select_rows(y, self.split.train());
        let y_test = linalg::select_rows(y, self.split.test());
        let chosen = self.factor.choose(y_train.as_ref())?;
        let mut predicted =
            linalg::mul_blocked(self.test_basis.as_ref(), chosen.wt.as_ref().transpose());
        for (j, mean) in chosen.y_mean.iter().enumerate() {
            predicted.col_mut(j).iter_mut().for_each(|v| *v += mean);
        }
        let r2 = r2_uniform_average(y_test.as_ref(), predicted.as_ref());
        Ok(RidgeR2Result {
            chosen_alpha: self.factor.alphas[chosen.best],
            r2_test_uniform_average: r2,
            sqrt_r2_clamped: r2.max(0.0).sqrt(),
            alphas: self.factor.alphas.clone(),
            loo_mse: chosen.loo_mse,
            n_train: self.split.train().len(),
            n_test: self.split.test().len(),
            gcv_mode: self.factor.mode(),
            degenerate_targets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::similarity::random_matrix as random;

    /// Brute-force leave-one-out: refit ridge with a free intercept on n − 1 rows by solving the
    /// normal equations with faer's LLT, for each left-out row.
    fn brute_force_loo_mse(x: MatRef<'_, f64>, y: MatRef<'_, f64>, alpha: f64) -> f64 {
        use faer::linalg::solvers::Solve;
        let n = x.nrows();
        let mut total = 0.0;
        for out in 0..n {
            let rows: Vec<usize> = (0..n).filter(|&i| i != out).collect();
            let xs = linalg::select_rows(x, &rows);
            let ys = linalg::select_rows(y, &rows);
            let (xc, xm) = linalg::center(xs.as_ref());
            let (yc, ym) = linalg::center(ys.as_ref());
            let mut a = linalg::mul_tn(xc.as_ref(), xc.as_ref());
            for k in 0..a.nrows() {
                a[(k, k)] += alpha;
            }
            let b = linalg::mul_tn(xc.as_ref(), yc.as_ref());
            let coef = a.llt(faer::Side::Lower).expect("spd").solve(&b);
            for j in 0..y.ncols() {
                let pred: f64 = ym[j]
                    + (0..x.ncols())
                        .map(|k| (x[(out, k)] - xm[k]) * coef[(k, j)])
                        .sum::<f64>();
                total += (y[(out, j)] - pred).powi(2);
            }
        }
        total / (n * y.ncols()) as f64
    }

    #[test]
    fn closed_form_loo_matches_brute_force_in_both_modes() {
        for (n, p) in [(25, 6), (8, 12), (10, 10)] {
            let x = random(n, p, 1);
            let y = random(n, 3, 2);
            let factor = RidgeCv::new(vec![0.1, 1.0, 10.0])
                .unwrap()
                .factorise(x.as_ref())
                .unwrap();
            assert_eq!(
                factor.mode(),
                if n <= p { GcvMode::Gram } else { GcvMode::Cov }
            );
            let fit = factor.fit(y.as_ref()).unwrap();
            for (i, alpha) in [0.1, 1.0, 10.0].into_iter().enumerate() {
                let brute = brute_force_loo_mse(x.as_ref(), y.as_ref(), alpha);
                let rel = (fit.loo_mse[i] - brute).abs() / brute;
                assert!(
                    rel < 1e-9,
                    "n={n} p={p} alpha={alpha}: {} vs {brute}",
                    fit.loo_mse[i]
                );
            }
        }
    }

    #[test]
    fn modes_agree_on_coefficients() {
        // Both modes (covariance for 30×5, Gram for 5×30) against the normal equations.
        use faer::linalg::solvers::Solve;
        for (n, p) in [(30, 5), (5, 30)] {
            let x = random(n, p, 3);
            let y = random(n, 2, 4);
            let fit = RidgeCv::new(vec![2.5])
                .unwrap()
                .factorise(x.as_ref())
                .unwrap()
                .fit(y.as_ref())
                .unwrap();
            let (xc, _) = linalg::center(x.as_ref());
            let (yc, _) = linalg::center(y.as_ref());
            let mut a = linalg::mul_tn(xc.as_ref(), xc.as_ref());
            for k in 0..p {
                a[(k, k)] += 2.5;
            }
            let coef = a
                .llt(faer::Side::Lower)
                .unwrap()
                .solve(linalg::mul_tn(xc.as_ref(), yc.as_ref()));
            for k in 0..p {
                for j in 0..2 {
                    assert!((coef[(k, j)] - fit.coef[(k, j)]).abs() < 1e-10);
                }
            }
        }
    }

    #[test]
    fn scores_are_the_same_bytes_on_one_thread_or_several() {
        // Wide enough for several column blocks in both modes (Cov: 300 > 200; Gram: 150 < 200).
        for (n, p) in [(300, 200), (150, 200)] {
            let x = random(n, p, 11);
            let y = random(n, 260, 12);
            let run = |threads| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("pool")
                    .install(|| RidgeR2::default().evaluate(x.as_ref(), y.as_ref()).unwrap())
            };
            let one = run(1);
            for threads in [2, 3] {
                let other = run(threads);
                assert_eq!(
                    one.r2_test_uniform_average.to_bits(),
                    other.r2_test_uniform_average.to_bits()
                );
                let bits =
                    |r: &RidgeR2Result| r.loo_mse.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&one), bits(&other), "n={n} p={p} threads={threads}");
            }
        }
    }

    #[test]
    fn perfect_linear_map_scores_near_one() {
        let x = random(200, 8, 5);
        let w = random(8, 4, 6);
        let y = linalg::mul(x.as_ref(), w.as_ref());
        let r = RidgeR2::default().evaluate(x.as_ref(), y.as_ref()).unwrap();
        assert!(r.sqrt_r2_clamped > 0.999, "{r:?}");
        assert_eq!(r.n_test, 20);
        assert_eq!(r.n_train, 180);
    }

    #[test]
    fn unrelated_data_scores_low_and_clamps() {
        let x = random(60, 20, 7);
        let y = random(60, 5, 8);
        let r = RidgeR2::default().evaluate(x.as_ref(), y.as_ref()).unwrap();
        assert!(r.r2_test_uniform_average < 0.3);
        assert_eq!(r.sqrt_r2_clamped, r.r2_test_uniform_average.max(0.0).sqrt());
    }

    #[test]
    fn seeded_split_is_reproducible_and_seed_dependent() {
        let a = HeldOutSplit::seeded(30, 0.1, 7).unwrap();
        let b = HeldOutSplit::seeded(30, 0.1, 7).unwrap();
        let c = HeldOutSplit::seeded(30, 0.1, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.test().len(), 3, "0.1 * 30 must give 3, not 4");
        assert_eq!(a.train().len(), 27);
        let mut all: Vec<usize> = a.train().iter().chain(a.test()).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..30).collect::<Vec<_>>());
    }

    proptest::proptest! {
        #[test]
        fn seeded_splits_partition_the_rows(n in 20usize..400, test in 0.05f64..0.5, seed: u64) {
            let s = HeldOutSplit::seeded(n, test, seed).unwrap();
            let mut all: Vec<usize> = s.train().iter().chain(s.test()).copied().collect();
            all.sort_unstable();
            proptest::prop_assert_eq!(all, (0..n).collect::<Vec<_>>());
            proptest::prop_assert_eq!(s.test().len(), held_out_count(n, test));
            proptest::prop_assert!(s.test().len() as f64 >= test * n as f64 - 1e-9);
        }
    }

    #[test]
    fn bad_splits_are_rejected_with_reasons() {
        let err = HeldOutSplit::new(vec![0, 1, 2], vec![2, 3], 5).unwrap_err();
        assert!(err.to_string().contains("both train and test"), "{err}");
        let err = HeldOutSplit::new(vec![0, 1, 2], vec![3, 9], 5).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        let err = HeldOutSplit::new(vec![0, 1], vec![3, 4], 5).unwrap_err();
        assert!(err.to_string().contains("training rows"), "{err}");
        assert!(
            HeldOutSplit::seeded(10, 0.1, 0).is_err(),
            "one held-out row is too few"
        );
    }

    #[test]
    fn r2_constant_columns_follow_force_finite() {
        let truth = Mat::from_fn(3, 2, |i, j| if j == 0 { 0.1 } else { i as f64 });
        let exact = truth.clone();
        assert_eq!(r2_uniform_average(truth.as_ref(), exact.as_ref()), 1.0);
        let off = Mat::from_fn(3, 2, |i, j| if j == 0 { 0.2 } else { i as f64 });
        // column 0 constant and mispredicted → 0; column 1 exact → 1.
        assert_eq!(r2_uniform_average(truth.as_ref(), off.as_ref()), 0.5);
        // A held-out column that is 0 up to f32 rounding is constant too: predicted to that
        // precision it scores 1, not 1 − 1e-14 / 1e-15.
        let leaky = Mat::from_fn(3, 2, |i, j| {
            if j == 0 {
                [1e-7, -2e-7, 0.0][i]
            } else {
                i as f64
            }
        });
        let near = Mat::from_fn(3, 2, |i, j| if j == 0 { 3e-8 } else { i as f64 + 1e-9 });
        assert_eq!(r2_uniform_average(leaky.as_ref(), near.as_ref()), 1.0);
        let wrong = Mat::from_fn(3, 2, |i, j| if j == 0 { 0.3 } else { i as f64 });
        assert_eq!(r2_uniform_average(leaky.as_ref(), wrong.as_ref()), 0.5);
    }

    #[test]
    fn non_finite_and_short_inputs_are_errors() {
        let mut x = random(40, 3, 9);
        let y = random(40, 2, 10);
        x[(5, 1)] = f64::NAN;
        let err = RidgeR2::default()
            .evaluate(x.as_ref(), y.as_ref())
            .unwrap_err();
        assert!(
            matches!(err, SimilarityError::NonFinite { row: 5, col: 1, .. }),
            "{err}"
        );
        let x = random(12, 3, 9);
        let y = random(13, 2, 10);
        assert!(RidgeR2::default().evaluate(x.as_ref(), y.as_ref()).is_err());
    }

    #[test]
    fn constant_design_predicts_the_training_mean() {
        let x = Mat::from_fn(50, 3, |_, _| 1.5);
        let y = random(50, 2, 11);
        let r = RidgeR2::default().evaluate(x.as_ref(), y.as_ref()).unwrap();
        assert!(r.r2_test_uniform_average <= 0.0);
        assert_eq!(r.sqrt_r2_clamped, 0.0);
    }
}
