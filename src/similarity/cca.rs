//! Canonical correlation analysis and SVCCA.
//!
//! The canonical correlations of `x` and `y` are the singular values of `UxᵀUy`, where `U` is an
//! orthonormal basis of a side's centred column space (left singular vectors of `Xc` up to its
//! numerical rank, numpy's `matrix_rank` tolerance). `cca:mean` is their mean over
//! `min(rank x, rank y)` components, which for full-rank data is the usual mean over
//! `min(dx, dy)`; directions without variance are left out rather than counted as correlation 0.
//! When `n − 1 <= min(dx, dy)` every correlation is 1: CCA needs more inputs than features.
//!
//! `svcca:var=v` first keeps, on each side, the `k` leading singular directions of the centred data
//! where `k` is the smallest count whose squared singular values reach a fraction `v` of the total
//! (Raghu et al.), then takes the mean canonical correlation of those directions.

use faer::{Mat, MatRef};

use super::linalg;
use super::screen::{Screening, screen};
use super::{Operand, SimilarityError, check_operand, check_rows, check_target};

/// How many leading directions of a side enter the correlation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Truncation {
    /// All directions with variance (`cca:mean`).
    Rank,
    /// The fewest leading directions explaining this fraction of the variance (`svcca`).
    Variance(f64),
}

/// One side's orthonormal basis, computed once.
pub struct PreparedCca {
    measure: String,
    truncation: Truncation,
    basis: Mat<f64>,
    n: usize,
    /// Degenerate columns of `x`, removed before the basis is taken (see [`super::screen`]).
    x_screening: Screening,
}

fn basis(
    measure: &str,
    m: MatRef<'_, f64>,
    truncation: Truncation,
    operand: Operand,
) -> Result<Mat<f64>, SimilarityError> {
    let (mc, _) = linalg::center(m);
    let (s, u) = linalg::thin_svd_u(mc.as_ref()).map_err(|_| SimilarityError::NoConvergence {
        measure: measure.to_owned(),
        operation: "SVD of the centred data",
    })?;
    let rank = linalg::numerical_rank(&s, mc.nrows(), mc.ncols());
    if rank == 0 {
        return Err(SimilarityError::ZeroVariance {
            measure: measure.to_owned(),
            operand,
        });
    }
    let keep = match truncation {
        Truncation::Rank => rank,
        Truncation::Variance(v) => {
            let total: f64 = s.iter().map(|x| x * x).sum();
            let mut cum = 0.0;
            let mut k = s.len();
            for (i, x) in s.iter().enumerate() {
                cum += x * x;
                if cum / total >= v {
                    k = i + 1;
                    break;
                }
            }
            k.min(rank)
        }
    };
    Ok(u.subcols(0, keep).to_owned())
}

impl PreparedCca {
    pub fn new(
        measure: &str,
        truncation: Truncation,
        x: MatRef<'_, f64>,
    ) -> Result<Self, SimilarityError> {
        check_rows(measure, x.nrows(), 2)?;
        check_operand(measure, Operand::X, x)?;
        let (trimmed, x_screening) = screen(measure, Operand::X, x)?;
        let kept = trimmed.as_ref().map_or(x, |t| t.as_ref());
        Ok(Self {
            measure: measure.to_owned(),
            truncation,
            basis: basis(measure, kept, truncation, Operand::X)?,
            n: x.nrows(),
            x_screening,
        })
    }

    /// Degenerate columns removed from `x`.
    pub fn x_screening(&self) -> &Screening {
        &self.x_screening
    }

    /// Canonical correlations, largest first.
    pub fn correlations(&self, y: MatRef<'_, f64>) -> Result<Vec<f64>, SimilarityError> {
        self.correlations_screened(y).map(|(rho, _)| rho)
    }

    /// Canonical correlations, and the degenerate columns removed from `y`.
    fn correlations_screened(
        &self,
        y: MatRef<'_, f64>,
    ) -> Result<(Vec<f64>, Screening), SimilarityError> {
        check_target(&self.measure, self.n, y)?;
        let (trimmed, y_screening) = screen(&self.measure, Operand::Y, y)?;
        let kept = trimmed.as_ref().map_or(y, |t| t.as_ref());
        let by = basis(&self.measure, kept, self.truncation, Operand::Y)?;
        let cross = linalg::mul_tn(self.basis.as_ref(), by.as_ref());
        let rho = linalg::singular_values(cross.as_ref()).map_err(|_| {
            SimilarityError::NoConvergence {
                measure: self.measure.clone(),
                operation: "SVD of UxᵀUy",
            }
        })?;
        // Rounding can give 1 + ε for perfectly correlated directions.
        Ok((
            rho.into_iter().map(|r| r.clamp(0.0, 1.0)).collect(),
            y_screening,
        ))
    }

    pub fn mean(&self, y: MatRef<'_, f64>) -> Result<f64, SimilarityError> {
        self.mean_screened(y).map(|(v, _)| v)
    }

    /// The mean correlation, and the degenerate columns removed from `y`.
    pub fn mean_screened(&self, y: MatRef<'_, f64>) -> Result<(f64, Screening), SimilarityError> {
        let (rho, screening) = self.correlations_screened(y)?;
        Ok((rho.iter().sum::<f64>() / rho.len() as f64, screening))
    }
}

/// `cca:mean` of `x` and `y`.
pub fn cca_mean(x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Result<f64, SimilarityError> {
    super::check_pair("cca:mean", x, y, 2)?;
    PreparedCca::new("cca:mean", Truncation::Rank, x)?.mean(y)
}

/// `svcca:var=v` of `x` and `y`.
pub fn svcca(var: f64, x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Result<f64, SimilarityError> {
    let name = format!("svcca:var={var}");
    super::check_pair(&name, x, y, 2)?;
    PreparedCca::new(&name, Truncation::Variance(var), x)?.mean(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::similarity::random_matrix as random;

    #[test]
    fn invertible_linear_map_gives_correlation_one() {
        let x = random(50, 4, 1);
        let a = random(4, 4, 2);
        let y = linalg::mul(x.as_ref(), a.as_ref());
        assert!((cca_mean(x.as_ref(), y.as_ref()).unwrap() - 1.0).abs() < 1e-10);
    }

    #[test]
    fn rank_deficient_side_uses_its_rank() {
        let x = random(40, 3, 3);
        // y = [x0, x0, noise] spans two directions, so only two correlations exist.
        let noise = random(40, 1, 4);
        let y = Mat::from_fn(40, 3, |i, j| if j < 2 { x[(i, 0)] } else { noise[(i, 0)] });
        let p = PreparedCca::new("cca:mean", Truncation::Rank, x.as_ref()).unwrap();
        let rho = p.correlations(y.as_ref()).unwrap();
        assert_eq!(rho.len(), 2);
        assert!((rho[0] - 1.0).abs() < 1e-10);
    }

    #[test]
    fn svcca_keeps_the_variance_fraction() {
        // Two strong directions and one faint one: 99% keeps two.
        let z = random(100, 3, 5);
        let x = Mat::from_fn(100, 3, |i, j| z[(i, j)] * [10.0, 8.0, 0.01][j]);
        let b = basis("svcca", x.as_ref(), Truncation::Variance(0.99), Operand::X).unwrap();
        assert_eq!(b.ncols(), 2);
        let b = basis("svcca", x.as_ref(), Truncation::Variance(1.0), Operand::X).unwrap();
        assert_eq!(b.ncols(), 3);
    }

    #[test]
    fn constant_side_is_an_error() {
        let x = Mat::from_fn(10, 2, |_, _| 3.0);
        let y = random(10, 2, 6);
        assert!(matches!(
            cca_mean(x.as_ref(), y.as_ref()),
            Err(SimilarityError::ZeroVariance { .. })
        ));
    }
}
