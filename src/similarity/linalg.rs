//! Thin wrappers over faer's dense kernels, always run with `Par::Seq`.
//!
//! Why sequential: a measure's value must be the same bytes whatever the rayon thread count
//! (DEVELOPERS.md). faer's parallel kernels partition work by the number of threads, which may
//! change the order of floating-point reductions. Parallelism lives one level up instead
//! (independent fits, alphas, draws), where it cannot change any single result.

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::{evd, matmul, svd};
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// Failure of an iterative factorisation (faer reports only non-convergence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoConvergence;

/// `a * b`.
pub fn mul(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut out = Mat::zeros(a.nrows(), b.ncols());
    matmul::matmul(out.as_mut(), Accum::Replace, a, b, 1.0, Par::Seq);
    out
}

/// `aᵀ * b`.
pub fn mul_tn(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    mul(a.transpose(), b)
}

/// Column means of `x`, summed in row order.
pub fn column_means(x: MatRef<'_, f64>) -> Vec<f64> {
    let n = x.nrows() as f64;
    (0..x.ncols())
        .map(|j| x.col(j).iter().sum::<f64>() / n)
        .collect()
}

/// `x` with its column means removed, and the means.
pub fn center(x: MatRef<'_, f64>) -> (Mat<f64>, Vec<f64>) {
    let means = column_means(x);
    let centered = Mat::from_fn(x.nrows(), x.ncols(), |i, j| x[(i, j)] - means[j]);
    (centered, means)
}

/// Rows of `x` picked by `rows`, in that order.
pub fn select_rows(x: MatRef<'_, f64>, rows: &[usize]) -> Mat<f64> {
    Mat::from_fn(rows.len(), x.ncols(), |i, j| x[(rows[i], j)])
}

/// Squared Frobenius norm, summed column by column.
pub fn frobenius_sq(x: MatRef<'_, f64>) -> f64 {
    (0..x.ncols())
        .map(|j| x.col(j).iter().map(|v| v * v).sum::<f64>())
        .sum()
}

/// Eigendecomposition of a symmetric matrix (lower triangle read): eigenvalues in nondecreasing
/// order and the matching orthonormal eigenvectors as columns.
pub fn symmetric_eigen(a: MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>), NoConvergence> {
    let n = a.nrows();
    let mut s = Diag::<f64>::zeros(n);
    let mut u = Mat::<f64>::zeros(n, n);
    let scratch = evd::self_adjoint_evd_scratch::<f64>(
        n,
        evd::ComputeEigenvectors::Yes,
        Par::Seq,
        Default::default(),
    );
    let mut buf = MemBuffer::new(scratch);
    evd::self_adjoint_evd(
        a,
        s.as_mut(),
        Some(u.as_mut()),
        Par::Seq,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .map_err(|_| NoConvergence)?;
    let values = s.column_vector().iter().copied().collect();
    Ok((values, u))
}

/// Singular values of `a` in nonincreasing order, writing the thin `U` into `u` when given (`V` is
/// never needed here: every caller wants a column-space basis or the values alone).
fn svd_into(a: MatRef<'_, f64>, u: Option<MatMut<'_, f64>>) -> Result<Vec<f64>, NoConvergence> {
    let (m, n) = a.shape();
    let mut s = Diag::<f64>::zeros(m.min(n));
    let u_vectors = if u.is_some() {
        svd::ComputeSvdVectors::Thin
    } else {
        svd::ComputeSvdVectors::No
    };
    let scratch = svd::svd_scratch::<f64>(
        m,
        n,
        u_vectors,
        svd::ComputeSvdVectors::No,
        Par::Seq,
        Default::default(),
    );
    let mut buf = MemBuffer::new(scratch);
    svd::svd(
        a,
        s.as_mut(),
        u,
        None,
        Par::Seq,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .map_err(|_| NoConvergence)?;
    Ok(s.column_vector().iter().copied().collect())
}

/// Thin SVD: `a = U diag(s) Vᵀ` with `min(m, n)` singular values in nonincreasing order.
/// Only `U` and `s` are returned: every caller here needs a column-space basis, not `V`.
pub fn thin_svd_u(a: MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>), NoConvergence> {
    let mut u = Mat::<f64>::zeros(a.nrows(), a.nrows().min(a.ncols()));
    let values = svd_into(a, Some(u.as_mut()))?;
    Ok((values, u))
}

/// Singular values in nonincreasing order.
pub fn singular_values(a: MatRef<'_, f64>) -> Result<Vec<f64>, NoConvergence> {
    svd_into(a, None)
}

/// Numerical rank of a matrix from its singular values, with numpy's `matrix_rank` tolerance
/// `s_max * max(m, n) * eps`.
pub fn numerical_rank(singular: &[f64], m: usize, n: usize) -> usize {
    let s_max = singular.first().copied().unwrap_or(0.0);
    let tol = s_max * (m.max(n) as f64) * f64::EPSILON;
    singular.iter().filter(|&&s| s > tol).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_reconstructs_symmetric_matrix() {
        let a = Mat::from_fn(4, 4, |i, j| 1.0 / (1.0 + i as f64 + j as f64));
        let (vals, vecs) = symmetric_eigen(a.as_ref()).expect("converges");
        assert!(vals.windows(2).all(|w| w[0] <= w[1]));
        let rebuilt = Mat::from_fn(4, 4, |i, j| {
            (0..4)
                .map(|k| vecs[(i, k)] * vals[k] * vecs[(j, k)])
                .sum::<f64>()
        });
        for i in 0..4 {
            for j in 0..4 {
                assert!((rebuilt[(i, j)] - a[(i, j)]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn rank_of_rank_one_matrix_is_one() {
        let a = Mat::from_fn(5, 3, |i, j| (i + 1) as f64 * (j + 2) as f64);
        let s = singular_values(a.as_ref()).expect("converges");
        assert_eq!(numerical_rank(&s, 5, 3), 1);
        let (s2, u) = thin_svd_u(a.as_ref()).expect("converges");
        assert_eq!(u.shape(), (5, 3));
        assert!((s2[0] - s[0]).abs() < 1e-12);
    }
}
