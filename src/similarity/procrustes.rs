//! Orthogonal Procrustes distances on column-centred data (Williams et al.'s shape metrics
//! without whitening). With `ν = ‖XcᵀYc‖_*` (nuclear norm, the best alignment over rotations):
//! `procrustes:angular = arccos(ν / (‖Xc‖_F ‖Yc‖_F))` and
//! `procrustes:euclidean = sqrt(‖Xc‖²_F + ‖Yc‖²_F − 2ν)`, the residual norm after the best
//! rotation. Both are distances (0 for identical shapes); `dx` and `dy` may differ.

use faer::{Mat, MatRef};

use super::linalg;
use super::{Operand, SimilarityError, check_operand, check_rows, check_target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcrustesKind {
    Angular,
    Euclidean,
}

impl ProcrustesKind {
    pub fn name(self) -> &'static str {
        match self {
            ProcrustesKind::Angular => "procrustes:angular",
            ProcrustesKind::Euclidean => "procrustes:euclidean",
        }
    }
}

/// One side of a Procrustes comparison, centred once.
pub struct PreparedProcrustes {
    kind: ProcrustesKind,
    xc: Mat<f64>,
    norm_sq: f64,
}

impl PreparedProcrustes {
    pub fn new(kind: ProcrustesKind, x: MatRef<'_, f64>) -> Result<Self, SimilarityError> {
        check_rows(kind.name(), x.nrows(), 2)?;
        check_operand(kind.name(), Operand::X, x)?;
        let (xc, _) = linalg::center(x);
        let norm_sq = linalg::frobenius_sq(xc.as_ref());
        if kind == ProcrustesKind::Angular && norm_sq == 0.0 {
            return Err(zero_variance(kind, Operand::X));
        }
        Ok(Self { kind, xc, norm_sq })
    }

    pub fn score(&self, y: MatRef<'_, f64>) -> Result<f64, SimilarityError> {
        let name = self.kind.name();
        check_target(name, self.xc.nrows(), y)?;
        let (yc, _) = linalg::center(y);
        let y_norm_sq = linalg::frobenius_sq(yc.as_ref());
        let cross = linalg::mul_tn(self.xc.as_ref(), yc.as_ref());
        let nuclear: f64 = linalg::singular_values(cross.as_ref())
            .map_err(|_| SimilarityError::NoConvergence {
                measure: name.to_owned(),
                operation: "SVD of XcᵀYc",
            })?
            .iter()
            .sum();
        Ok(match self.kind {
            ProcrustesKind::Angular => {
                if y_norm_sq == 0.0 {
                    return Err(zero_variance(self.kind, Operand::Y));
                }
                // Rounding can push the cosine a hair past 1 for identical shapes.
                let cos = nuclear / (self.norm_sq.sqrt() * y_norm_sq.sqrt());
                cos.clamp(-1.0, 1.0).acos()
            }
            // A zero-variance side is fine here: the distance is the other side's norm.
            ProcrustesKind::Euclidean => (self.norm_sq + y_norm_sq - 2.0 * nuclear).max(0.0).sqrt(),
        })
    }
}

fn zero_variance(kind: ProcrustesKind, operand: Operand) -> SimilarityError {
    SimilarityError::ZeroVariance {
        measure: kind.name().to_owned(),
        operand,
    }
}

/// Procrustes distance between `x` and `y`.
pub fn procrustes(
    kind: ProcrustesKind,
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
) -> Result<f64, SimilarityError> {
    super::check_pair(kind.name(), x, y, 2)?;
    PreparedProcrustes::new(kind, x)?.score(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::similarity::random_matrix as random;

    #[test]
    fn rotated_copy_is_at_distance_zero() {
        let x = random(30, 3, 1);
        // A rotation in the (0, 1) plane and a shift.
        let (c, s) = (0.6f64, 0.8f64);
        let y = Mat::from_fn(30, 3, |i, j| match j {
            0 => c * x[(i, 0)] - s * x[(i, 1)] + 5.0,
            1 => s * x[(i, 0)] + c * x[(i, 1)],
            _ => x[(i, 2)],
        });
        for kind in [ProcrustesKind::Angular, ProcrustesKind::Euclidean] {
            let d = procrustes(kind, x.as_ref(), y.as_ref()).unwrap();
            assert!(d.abs() < 1e-6, "{kind:?}: {d}");
        }
    }

    #[test]
    fn symmetric_and_positive_for_different_shapes() {
        let x = random(25, 4, 2);
        let y = random(25, 6, 3);
        for kind in [ProcrustesKind::Angular, ProcrustesKind::Euclidean] {
            let a = procrustes(kind, x.as_ref(), y.as_ref()).unwrap();
            let b = procrustes(kind, y.as_ref(), x.as_ref()).unwrap();
            assert!(a > 0.1);
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn zero_variance_angular_is_an_error_euclidean_is_the_other_norm() {
        let x = Mat::from_fn(10, 2, |_, _| 1.0);
        let y = random(10, 2, 4);
        assert!(procrustes(ProcrustesKind::Angular, x.as_ref(), y.as_ref()).is_err());
        let d = procrustes(ProcrustesKind::Euclidean, x.as_ref(), y.as_ref()).unwrap();
        let (yc, _) = linalg::center(y.as_ref());
        assert!((d - linalg::frobenius_sq(yc.as_ref()).sqrt()).abs() < 1e-12);
    }
}
