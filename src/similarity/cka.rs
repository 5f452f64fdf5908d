//! Centred kernel alignment with linear kernels, in feature space (cost `O(n d²)`, never an
//! `n × n` kernel).
//!
//! `cka:linear` uses Gretton's biased HSIC: `‖XcᵀYc‖²_F / (‖XcᵀXc‖_F ‖YcᵀYc‖_F)`.
//! `cka:debiased` replaces every HSIC by Song et al.'s unbiased estimator, written in feature
//! space as Kornblith et al. do: with `r_i = ‖xc_i‖²` and `S = Σ r_i`,
//! `HSIC_u · n(n−3) = ‖XcᵀYc‖² − n/(n−2) · r_xᵀ r_y + S_x S_y / ((n−1)(n−2))`, which is the
//! kernel-space estimator on `K = XXᵀ`, `L = YYᵀ` (it is invariant to centring).

use faer::{Mat, MatRef};

use super::linalg;
use super::screen::{Screening, screen};
use super::{Operand, SimilarityError, check_operand, check_rows, check_target};

/// The two CKA estimators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CkaKind {
    Linear,
    Debiased,
}

impl CkaKind {
    pub fn name(self) -> &'static str {
        match self {
            CkaKind::Linear => "cka:linear",
            CkaKind::Debiased => "cka:debiased",
        }
    }

    /// Rows needed: the unbiased estimator divides by `n − 3`.
    pub fn min_rows(self) -> usize {
        match self {
            CkaKind::Linear => 2,
            CkaKind::Debiased => 4,
        }
    }
}

/// One side of a CKA comparison, centred, with its self-similarity computed once.
pub struct PreparedCka {
    kind: CkaKind,
    /// Degenerate columns of `x`, removed before centring (see [`super::screen`]).
    x_screening: Screening,
    xc: Mat<f64>,
    row_sq: Vec<f64>,
    self_hsic: f64,
}

fn row_sq_norms(m: MatRef<'_, f64>) -> Vec<f64> {
    (0..m.nrows())
        .map(|i| (0..m.ncols()).map(|j| m[(i, j)] * m[(i, j)]).sum())
        .collect()
}

/// `HSIC · (normalisation)` between two centred sides given their cross term `‖AᵀB‖²`.
fn hsic(kind: CkaKind, cross: f64, ra: &[f64], rb: &[f64]) -> f64 {
    match kind {
        CkaKind::Linear => cross,
        CkaKind::Debiased => {
            let n = ra.len() as f64;
            let dot: f64 = ra.iter().zip(rb).map(|(a, b)| a * b).sum();
            let sa: f64 = ra.iter().sum();
            let sb: f64 = rb.iter().sum();
            cross - n / (n - 2.0) * dot + sa * sb / ((n - 1.0) * (n - 2.0))
        }
    }
}

impl PreparedCka {
    pub fn new(kind: CkaKind, x: MatRef<'_, f64>) -> Result<Self, SimilarityError> {
        check_rows(kind.name(), x.nrows(), kind.min_rows())?;
        check_operand(kind.name(), Operand::X, x)?;
        let (trimmed, x_screening) = screen(kind.name(), Operand::X, x)?;
        let (xc, _) = linalg::center(trimmed.as_ref().map_or(x, |t| t.as_ref()));
        let self_hsic = self_hsic(kind, xc.as_ref(), Operand::X)?;
        let row_sq = row_sq_norms(xc.as_ref());
        Ok(Self {
            kind,
            x_screening,
            xc,
            row_sq,
            self_hsic,
        })
    }

    /// Degenerate columns removed from `x`.
    pub fn x_screening(&self) -> &Screening {
        &self.x_screening
    }

    pub fn score(&self, y: MatRef<'_, f64>) -> Result<f64, SimilarityError> {
        self.score_screened(y).map(|(v, _)| v)
    }

    /// The score, and the degenerate columns removed from `y`.
    pub fn score_screened(&self, y: MatRef<'_, f64>) -> Result<(f64, Screening), SimilarityError> {
        let name = self.kind.name();
        check_target(name, self.xc.nrows(), y)?;
        let (trimmed, y_screening) = screen(name, Operand::Y, y)?;
        let (yc, _) = linalg::center(trimmed.as_ref().map_or(y, |t| t.as_ref()));
        let y_self = self_hsic(self.kind, yc.as_ref(), Operand::Y)?;
        let cross = linalg::frobenius_sq(linalg::mul_tn(self.xc.as_ref(), yc.as_ref()).as_ref());
        let ry = row_sq_norms(yc.as_ref());
        let xy = hsic(self.kind, cross, &self.row_sq, &ry);
        Ok((xy / (self.self_hsic * y_self).sqrt(), y_screening))
    }
}

fn self_hsic(kind: CkaKind, mc: MatRef<'_, f64>, operand: Operand) -> Result<f64, SimilarityError> {
    let gram = linalg::mul_tn(mc, mc);
    let r = row_sq_norms(mc);
    let h = hsic(kind, linalg::frobenius_sq(gram.as_ref()), &r, &r);
    if r.iter().all(|v| *v == 0.0) {
        return Err(SimilarityError::ZeroVariance {
            measure: kind.name().to_owned(),
            operand,
        });
    }
    // NaN fails this too, on purpose.
    if h.is_nan() || h <= 0.0 {
        return Err(SimilarityError::Degenerate {
            measure: kind.name().to_owned(),
            reason: format!(
                "the HSIC of {operand} with itself is {h:e}, not positive; the estimator is undefined \
                 (with cka:debiased this happens at very small n)"
            ),
        });
    }
    Ok(h)
}

/// CKA of `x` and `y`.
pub fn cka(kind: CkaKind, x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Result<f64, SimilarityError> {
    super::check_pair(kind.name(), x, y, kind.min_rows())?;
    PreparedCka::new(kind, x)?.score(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::similarity::random_matrix as random;

    /// Song et al.'s estimator written on the n × n kernels, as in the paper.
    fn kernel_space_unbiased(k: &Mat<f64>, l: &Mat<f64>) -> f64 {
        let n = k.nrows();
        let kt = Mat::from_fn(n, n, |i, j| if i == j { 0.0 } else { k[(i, j)] });
        let lt = Mat::from_fn(n, n, |i, j| if i == j { 0.0 } else { l[(i, j)] });
        let tr: f64 = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .map(|(i, j)| kt[(i, j)] * lt[(j, i)])
            .sum();
        let sk: f64 = kt.col_iter().map(|c| c.iter().sum::<f64>()).sum();
        let sl: f64 = lt.col_iter().map(|c| c.iter().sum::<f64>()).sum();
        let kl = linalg::mul(kt.as_ref(), lt.as_ref());
        let skl: f64 = kl.col_iter().map(|c| c.iter().sum::<f64>()).sum();
        let nf = n as f64;
        (tr + sk * sl / ((nf - 1.0) * (nf - 2.0)) - 2.0 / (nf - 2.0) * skl) / (nf * (nf - 3.0))
    }

    #[test]
    fn debiased_feature_space_equals_kernel_space() {
        let x = random(15, 4, 1);
        let y = random(15, 6, 2);
        let k = linalg::mul(x.as_ref(), x.as_ref().transpose());
        let l = linalg::mul(y.as_ref(), y.as_ref().transpose());
        let expected = kernel_space_unbiased(&k, &l)
            / (kernel_space_unbiased(&k, &k) * kernel_space_unbiased(&l, &l)).sqrt();
        let got = cka(CkaKind::Debiased, x.as_ref(), y.as_ref()).unwrap();
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn invariant_to_isotropic_scaling_and_orthogonal_maps() {
        let x = random(40, 5, 3);
        let y = random(40, 5, 4);
        let base = cka(CkaKind::Linear, x.as_ref(), y.as_ref()).unwrap();
        let scaled = Mat::from_fn(40, 5, |i, j| 3.0 * y[(i, j)] + 1.0);
        let swapped = Mat::from_fn(40, 5, |i, j| y[(i, 4 - j)]);
        for z in [scaled, swapped] {
            let v = cka(CkaKind::Linear, x.as_ref(), z.as_ref()).unwrap();
            assert!((v - base).abs() < 1e-12);
        }
        assert!((cka(CkaKind::Linear, x.as_ref(), x.as_ref()).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn zero_variance_and_tiny_n_are_errors() {
        let x = Mat::from_fn(10, 3, |_, _| 2.0);
        let y = random(10, 3, 5);
        assert!(matches!(
            cka(CkaKind::Linear, x.as_ref(), y.as_ref()),
            Err(SimilarityError::ZeroVariance {
                operand: Operand::X,
                ..
            })
        ));
        let x = random(3, 2, 6);
        let y = random(3, 2, 7);
        assert!(matches!(
            cka(CkaKind::Debiased, x.as_ref(), y.as_ref()),
            Err(SimilarityError::TooFewRows { min: 4, .. })
        ));
    }
}
