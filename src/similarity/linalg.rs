//! Thin wrappers over faer's dense kernels, each kernel call run with `Par::Seq`.
//!
//! Why: a measure's value must be the same bytes whatever the rayon thread count
//! (DEVELOPERS.md). faer's parallel kernels partition work by the number of threads, which may
//! change the order of floating-point reductions. The large products ([`mul_blocked`],
//! [`crossprod_lower`]) are parallel instead over a partition fixed in advance — blocks of
//! [`COLUMN_BLOCK`] output columns, each one sequential product — so which thread computes a
//! block, and how many threads there are, cannot change any value. Elsewhere parallelism lives one
//! level up (independent fits, alphas, draws).

use std::borrow::Cow;

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::{evd, householder, matmul, svd};
use faer::{Accum, Conj, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Output columns per block of the parallel products. Fixed, never derived from the thread
/// count: that is what keeps their results identical on one thread or many.
pub const COLUMN_BLOCK: usize = 128;

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

/// Splits `out` into blocks of [`COLUMN_BLOCK`] columns, each with its first column's index.
fn column_blocks(out: MatMut<'_, f64>) -> Vec<(usize, MatMut<'_, f64>)> {
    let mut blocks = Vec::with_capacity(out.ncols().div_ceil(COLUMN_BLOCK));
    let mut rest = out;
    let mut start = 0;
    while rest.ncols() > 0 {
        let width = COLUMN_BLOCK.min(rest.ncols());
        let (block, tail) = rest.split_at_col_mut(width);
        blocks.push((start, block));
        rest = tail;
        start += width;
    }
    blocks
}

/// `a * b`, its output in fixed column blocks computed in parallel (see the module docs): the
/// same bytes whatever the number of threads.
pub fn mul_blocked(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut out = Mat::zeros(a.nrows(), b.ncols());
    column_blocks(out.as_mut())
        .into_par_iter()
        .for_each(|(start, block)| {
            let width = block.ncols();
            matmul::matmul(
                block,
                Accum::Replace,
                a,
                b.subcols(start, width),
                1.0,
                Par::Seq,
            );
        });
    out
}

/// `Σ_blocks f(start, block)` over the fixed column blocks of `a * b`, each block formed,
/// passed to `f` and dropped, so the whole product is never held; the block values are added
/// in block order, so the sum too is the same bytes whatever the number of threads.
pub fn mul_blocked_fold(
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    f: impl Fn(usize, MatRef<'_, f64>) -> f64 + Sync,
) -> f64 {
    let starts: Vec<usize> = (0..b.ncols()).step_by(COLUMN_BLOCK).collect();
    let parts: Vec<f64> = starts
        .par_iter()
        .map(|&start| {
            let width = COLUMN_BLOCK.min(b.ncols() - start);
            let mut block = Mat::zeros(a.nrows(), width);
            matmul::matmul(
                block.as_mut(),
                Accum::Replace,
                a,
                b.subcols(start, width),
                1.0,
                Par::Seq,
            );
            f(start, block.as_ref())
        })
        .collect();
    parts.iter().sum()
}

/// `aᵀ * b` as [`mul_blocked`].
pub fn mul_tn_blocked(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    mul_blocked(a.transpose(), b)
}

/// The lower triangle of `aᵀ a` (what [`symmetric_eigen`] reads), in fixed column blocks in
/// parallel. Each block computes only the rows at and below its first column, so the work is
/// about half of the full product; entries above the diagonal are left unspecified.
pub fn crossprod_lower(a: MatRef<'_, f64>) -> Mat<f64> {
    let p = a.ncols();
    let mut out = Mat::zeros(p, p);
    column_blocks(out.as_mut())
        .into_par_iter()
        .for_each(|(start, block)| {
            let width = block.ncols();
            let (_, below) = block.split_at_row_mut(start);
            matmul::matmul(
                below,
                Accum::Replace,
                a.subcols(start, p - start).transpose(),
                a.subcols(start, width),
                1.0,
                Par::Seq,
            );
        });
    out
}

/// The columns of `m` as slices: borrowed when stored contiguously (every matrix this crate
/// builds), copied otherwise. Slices let the elementwise passes vectorise and skip bounds checks.
pub fn columns<'a>(m: MatRef<'a, f64>) -> impl Iterator<Item = Cow<'a, [f64]>> {
    (0..m.ncols()).map(move |j| column(m, j))
}

/// Column `j` of `m` as a slice (see [`columns`]).
pub fn column<'a>(m: MatRef<'a, f64>, j: usize) -> Cow<'a, [f64]> {
    let col = m.col(j);
    match col.try_as_col_major() {
        Some(c) => Cow::Borrowed(c.as_slice()),
        None => Cow::Owned(col.iter().copied().collect()),
    }
}

/// An `nrows × ncols` matrix whose column `j` is written by `fill(j, column)`.
pub fn from_columns(nrows: usize, ncols: usize, fill: impl Fn(usize, &mut [f64])) -> Mat<f64> {
    let mut out = Mat::zeros(nrows, ncols);
    for j in 0..ncols {
        let column = out
            .col_mut(j)
            .try_as_col_major_mut()
            .expect("an owned matrix stores its columns contiguously");
        fill(j, column.as_slice_mut());
    }
    out
}

/// Column means of `x`, summed in row order.
pub fn column_means(x: MatRef<'_, f64>) -> Vec<f64> {
    let n = x.nrows() as f64;
    columns(x).map(|c| c.iter().sum::<f64>() / n).collect()
}

/// `x` with its column means removed, and the means.
pub fn center(x: MatRef<'_, f64>) -> (Mat<f64>, Vec<f64>) {
    let means = column_means(x);
    (subtract_means(x, &means), means)
}

/// `x` with `means[j]` taken from every entry of column `j`.
pub fn subtract_means(x: MatRef<'_, f64>, means: &[f64]) -> Mat<f64> {
    from_columns(x.nrows(), x.ncols(), |j, out| {
        for (o, v) in out.iter_mut().zip(column(x, j).iter()) {
            *o = v - means[j];
        }
    })
}

/// Rows of `x` picked by `rows`, in that order.
pub fn select_rows(x: MatRef<'_, f64>, rows: &[usize]) -> Mat<f64> {
    from_columns(rows.len(), x.ncols(), |j, out| {
        let col = column(x, j);
        for (o, &r) in out.iter_mut().zip(rows) {
            *o = col[r];
        }
    })
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

/// `A = Q T Qᵀ` for a symmetric `A` (lower triangle read): `T` symmetric tridiagonal, `Q`
/// orthogonal and kept as faer's blocked Householder reflectors, never formed. Cheaper than an
/// eigendecomposition (no eigenvectors, no back-transformation into a dense basis), and enough
/// wherever only `(A + αI)⁻¹` is needed: `Q (T + αI)⁻¹ Qᵀ`, with [`ShiftedTridiagonal`].
pub struct Tridiagonalization {
    /// Diagonal of `T`.
    diag: Vec<f64>,
    /// Subdiagonal of `T` (`T[k + 1, k]`), one shorter than the diagonal.
    offdiag: Vec<f64>,
    /// faer's in-place result: the reflectors below the subdiagonal.
    reflectors: Mat<f64>,
    /// The reflectors' block factors.
    factors: Mat<f64>,
}

impl Tridiagonalization {
    pub fn new(a: MatRef<'_, f64>) -> Self {
        let p = a.nrows();
        let mut reflectors = Mat::zeros(p, p);
        reflectors.copy_from_triangular_lower(a);
        let block = faer::linalg::qr::no_pivoting::factor::recommended_block_size::<f64>(p, p);
        let mut factors = Mat::zeros(block, p.saturating_sub(1));
        if p > 0 {
            let mut buf = MemBuffer::new(evd::tridiag::tridiag_in_place_scratch::<f64>(
                p,
                Par::Seq,
                Default::default(),
            ));
            evd::tridiag::tridiag_in_place(
                reflectors.as_mut(),
                factors.as_mut(),
                Par::Seq,
                MemStack::new(&mut buf),
                Default::default(),
            );
        }
        let diag = (0..p).map(|k| reflectors[(k, k)]).collect();
        let offdiag = (1..p).map(|k| reflectors[(k, k - 1)]).collect();
        Self {
            diag,
            offdiag,
            reflectors,
            factors,
        }
    }

    pub fn dim(&self) -> usize {
        self.diag.len()
    }

    fn scratch(&self, other_dim: usize) -> MemBuffer {
        let p = self.dim();
        MemBuffer::new(
            householder::apply_block_householder_sequence_on_the_right_in_place_scratch::<f64>(
                p.saturating_sub(1),
                self.factors.nrows(),
                other_dim,
            )
            .or(
                householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(
                    p.saturating_sub(1),
                    self.factors.nrows(),
                    other_dim,
                ),
            ),
        )
    }

    /// `m ← m Q` (`m` has `dim()` columns): rows of a design into `T`'s coordinates.
    pub fn apply_right(&self, m: MatMut<'_, f64>) {
        let p = self.dim();
        if p < 2 {
            return;
        }
        let mut buf = self.scratch(m.nrows());
        // Q acts on coordinates 1..p; coordinate 0 is left as it is.
        householder::apply_block_householder_sequence_on_the_right_in_place_with_conj(
            self.reflectors.as_ref().submatrix(1, 0, p - 1, p - 1),
            self.factors.as_ref(),
            Conj::No,
            m.subcols_mut(1, p - 1),
            Par::Seq,
            MemStack::new(&mut buf),
        );
    }

    /// `m ← Q m` (`m` has `dim()` rows): weights in `T`'s coordinates back to the original ones.
    pub fn apply_left(&self, m: MatMut<'_, f64>) {
        let p = self.dim();
        if p < 2 {
            return;
        }
        let mut buf = self.scratch(m.ncols());
        householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
            self.reflectors.as_ref().submatrix(1, 0, p - 1, p - 1),
            self.factors.as_ref(),
            Conj::No,
            m.subrows_mut(1, p - 1),
            Par::Seq,
            MemStack::new(&mut buf),
        );
    }

    /// `T + αI` factorised as `L D Lᵀ`, or `None` when it is not positive definite.
    pub fn shifted(&self, alpha: f64) -> Option<ShiftedTridiagonal> {
        let p = self.dim();
        let (mut d, mut l) = (Vec::with_capacity(p), Vec::with_capacity(p));
        for k in 0..p {
            let a = self.diag[k] + alpha;
            let (lk, dk) = if k == 0 {
                (0.0, a)
            } else {
                let lk = self.offdiag[k - 1] / d[k - 1];
                (lk, a - lk * self.offdiag[k - 1])
            };
            if !(dk.is_finite() && dk > 0.0) {
                return None;
            }
            l.push(lk);
            d.push(dk);
        }
        Some(ShiftedTridiagonal { d, l })
    }
}

/// `L D Lᵀ` of a symmetric positive definite tridiagonal matrix (`L` unit lower bidiagonal).
/// No pivoting is needed: for such matrices the factorisation is backward stable.
pub struct ShiftedTridiagonal {
    /// `D`.
    d: Vec<f64>,
    /// `L[k, k − 1]` at index `k` (index 0 unused).
    l: Vec<f64>,
}

impl ShiftedTridiagonal {
    /// `((T + αI)⁻¹ bᵀ)ᵀ` given `bᵀ` (one right-hand side per row): the forward, diagonal and
    /// backward sweeps run down the columns of `bᵀ`, so each step is one vector operation over
    /// all right-hand sides instead of a chain of dependent scalar ones.
    pub fn solve_transposed(&self, bt: MatRef<'_, f64>) -> Mat<f64> {
        let p = bt.ncols();
        let mut x = from_columns(bt.nrows(), p, |k, out| out.copy_from_slice(&column(bt, k)));
        // Two distinct columns of `x`: `from` read, `to` written.
        fn pair(x: &mut Mat<f64>, from: usize, to: usize) -> (&[f64], &mut [f64]) {
            let (lo, hi) = x.as_mut().split_at_col_mut(from.max(to));
            fn slice(c: faer::col::ColMut<'_, f64>) -> &mut [f64] {
                c.try_as_col_major_mut()
                    .expect("an owned matrix stores its columns contiguously")
                    .as_slice_mut()
            }
            let (low, high) = (slice(lo.col_mut(from.min(to))), slice(hi.col_mut(0)));
            if from < to { (low, high) } else { (high, low) }
        }
        for k in 1..p {
            let lk = self.l[k];
            let (prev, cur) = pair(&mut x, k - 1, k);
            for (c, q) in cur.iter_mut().zip(prev) {
                *c -= lk * q;
            }
        }
        for k in 0..p {
            let dk = self.d[k];
            let cur = x
                .col_mut(k)
                .try_as_col_major_mut()
                .expect("contiguous")
                .as_slice_mut();
            for c in cur {
                *c /= dk;
            }
        }
        for k in (0..p.saturating_sub(1)).rev() {
            let lk = self.l[k + 1];
            let (next, cur) = pair(&mut x, k + 1, k);
            for (c, q) in cur.iter_mut().zip(next) {
                *c -= lk * q;
            }
        }
        x
    }

    /// `yᵢ (T + αI)⁻¹ yᵢᵀ` for every row `yᵢ` of `y`: `Σ_k (L⁻¹yᵢ)_k² / D_k`, one forward sweep
    /// run over all rows at once (column by column, so it vectorises).
    pub fn row_quadratic_forms(&self, y: MatRef<'_, f64>) -> Vec<f64> {
        let n = y.nrows();
        let (mut out, mut prev, mut cur) = (vec![0.0f64; n], vec![0.0f64; n], vec![0.0f64; n]);
        for k in 0..self.d.len() {
            let yk = column(y, k);
            let (lk, inv_dk) = (self.l[k], 1.0 / self.d[k]);
            for (((c, p), v), o) in cur.iter_mut().zip(&prev).zip(yk.iter()).zip(&mut out) {
                *c = v - lk * p;
                *o += *c * *c * inv_dk;
            }
            std::mem::swap(&mut prev, &mut cur);
        }
        out
    }
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

    fn sample(n: usize, p: usize, seed: u64) -> Mat<f64> {
        Mat::from_fn(n, p, |i, j| {
            let h = (i as u64 * 0x9E37_79B9 + j as u64 * 0x85EB_CA6B + seed)
                .wrapping_mul(0x2545_F491_4F6C_DD1D);
            (h >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
    }

    fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(f)
    }

    #[test]
    fn blocked_products_match_the_plain_ones_and_ignore_the_thread_count() {
        // Sizes straddling COLUMN_BLOCK, so full and ragged blocks both occur.
        for (n, k, m) in [(3, 4, 5), (50, 130, 300), (17, 257, 129)] {
            let a = sample(n, k, 1);
            let b = sample(k, m, 2);
            let plain = mul(a.as_ref(), b.as_ref());
            let one = in_pool(1, || mul_blocked(a.as_ref(), b.as_ref()));
            let two = in_pool(2, || mul_blocked(a.as_ref(), b.as_ref()));
            let three = in_pool(3, || mul_blocked(a.as_ref(), b.as_ref()));
            assert!(
                one == two && two == three,
                "bytes differ across thread counts"
            );
            for j in 0..m {
                for i in 0..n {
                    assert!((one[(i, j)] - plain[(i, j)]).abs() < 1e-12);
                }
            }
            let full = mul_tn(b.as_ref(), b.as_ref());
            let lower1 = in_pool(1, || crossprod_lower(b.as_ref()));
            let lower2 = in_pool(2, || crossprod_lower(b.as_ref()));
            assert!(lower1 == lower2);
            for j in 0..m {
                for i in j..m {
                    assert!((lower1[(i, j)] - full[(i, j)]).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn eigen_reads_only_the_lower_triangle() {
        let b = sample(40, 9, 3);
        let full = mul_tn(b.as_ref(), b.as_ref());
        let mut lower = crossprod_lower(b.as_ref());
        for j in 0..9 {
            for i in 0..j {
                lower[(i, j)] = f64::NAN;
            }
        }
        let (vf, _) = symmetric_eigen(full.as_ref()).unwrap();
        let (vl, _) = symmetric_eigen(lower.as_ref()).unwrap();
        for (a, b) in vf.iter().zip(&vl) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
    }

    #[test]
    fn tridiagonalization_solves_shifted_systems() {
        // (A + αI)⁻¹ through Q (T + αI)⁻¹ Qᵀ against a dense solve, and the quadratic forms.
        use faer::linalg::solvers::Solve;
        for p in [1, 2, 5, 40, 130] {
            let b = sample(p + 7, p, 4);
            let a = mul_tn(b.as_ref(), b.as_ref());
            let tri = Tridiagonalization::new(crossprod_lower(b.as_ref()).as_ref());
            let alpha = 0.3;
            let shifted = tri.shifted(alpha).expect("positive definite");
            let rhs = sample(p, 3, 5);
            // Qᵀ rhs, solve, Q back.
            let mut qt_rhs = rhs.transpose().to_owned();
            tri.apply_right(qt_rhs.as_mut());
            let mut x = shifted
                .solve_transposed(qt_rhs.as_ref())
                .transpose()
                .to_owned();
            tri.apply_left(x.as_mut());
            let mut dense = a.clone();
            for k in 0..p {
                dense[(k, k)] += alpha;
            }
            let want = dense.llt(faer::Side::Lower).expect("spd").solve(&rhs);
            for j in 0..3 {
                for k in 0..p {
                    assert!((x[(k, j)] - want[(k, j)]).abs() < 1e-9, "p={p}");
                }
            }
            // Rows of B Q: yᵢ (T + αI)⁻¹ yᵢᵀ = bᵢ (A + αI)⁻¹ bᵢᵀ.
            let mut y = b.clone();
            tri.apply_right(y.as_mut());
            let forms = shifted.row_quadratic_forms(y.as_ref());
            let inv_bt = dense
                .llt(faer::Side::Lower)
                .unwrap()
                .solve(b.transpose().to_owned());
            for (i, f) in forms.iter().enumerate() {
                let direct: f64 = (0..p).map(|k| b[(i, k)] * inv_bt[(k, i)]).sum();
                assert!((f - direct).abs() < 1e-9, "p={p} row {i}: {f} vs {direct}");
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
