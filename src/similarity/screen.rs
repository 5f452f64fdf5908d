//! Degenerate columns: features that are constant up to rounding.
//!
//! A model computed in f32 leaks rounding noise into coordinates that are exactly constant in
//! exact arithmetic (a compiled residual stream has many: unused subspaces, the `one` direction).
//! Their variance is 1e-13 … 1e-10 where an informative column's is near 1. As a ridge target
//! such a column cannot be predicted from anything, so its held-out R² is a huge negative number
//! that swamps the uniform average; in CCA, whitening blows the noise up to unit variance. So a
//! column whose variance is below [`DEGENERATE_VARIANCE_RATIO`] times the largest column variance
//! of its matrix is removed from ridge targets and from both sides of CKA and CCA, and every score
//! says which columns went ([`Screening`]). The largest column itself is never removed, so a
//! matrix with any variance keeps at least one column; one with none is an error of the measure.
//!
//! scikit-learn does not do this: on such a target `RidgeCV` + `r2_score` gives the swamped
//! average (see `tests/fixtures/similarity/degenerate/notes.md`).

use faer::{Mat, MatRef};
use serde::Serialize;

use super::{Operand, SimilarityError};

/// The relative tolerance: a column is degenerate when its variance is below this fraction of
/// the largest column variance of the same matrix. 1e-8 in variance is 1e-4 in standard
/// deviation, a hundred times f32's precision on the largest column, so rounding noise falls
/// below it and any feature a model uses stays above.
pub const DEGENERATE_VARIANCE_RATIO: f64 = 1e-8;

/// Which columns of one operand were removed as degenerate.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Screening {
    /// The relative variance tolerance applied ([`DEGENERATE_VARIANCE_RATIO`]).
    pub tolerance: f64,
    /// Indices of the removed columns, ascending.
    pub removed: Vec<usize>,
}

impl Screening {
    /// Nothing removed, under the standard tolerance.
    pub fn none() -> Self {
        Screening {
            tolerance: DEGENERATE_VARIANCE_RATIO,
            removed: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
    }
}

/// Population variance of every column (two passes: mean, then squared deviations).
fn column_variances(m: MatRef<'_, f64>) -> Vec<f64> {
    let n = m.nrows().max(1) as f64;
    super::linalg::columns(m)
        .map(|column| {
            let mean = column.iter().sum::<f64>() / n;
            column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n
        })
        .collect()
}

/// The degenerate columns of `m` under `tolerance` (none when no column varies at all: the
/// measure's own zero-variance error covers that case).
pub fn degenerate_columns(m: MatRef<'_, f64>, tolerance: f64) -> Vec<usize> {
    degenerate_of(&column_variances(m), tolerance)
}

fn degenerate_of(vars: &[f64], tolerance: f64) -> Vec<usize> {
    let largest = vars.iter().copied().fold(0.0f64, f64::max);
    if largest <= 0.0 {
        return Vec::new();
    }
    vars.iter()
        .enumerate()
        .filter(|(_, v)| **v < tolerance * largest)
        .map(|(c, _)| c)
        .collect()
}

/// Which columns of `m` are degenerate, and `m` without them (`None` when none is removed, so the
/// caller keeps using `m` itself). A matrix with no column that varies has no informative column:
/// an error naming the measure and operand, never a score.
pub(crate) fn screen(
    measure: &str,
    operand: Operand,
    m: MatRef<'_, f64>,
) -> Result<(Option<Mat<f64>>, Screening), SimilarityError> {
    let vars = column_variances(m);
    if vars.iter().all(|v| *v <= 0.0) {
        return Err(SimilarityError::ZeroVariance {
            measure: measure.to_owned(),
            operand,
        });
    }
    let removed = degenerate_of(&vars, DEGENERATE_VARIANCE_RATIO);
    let trimmed = (!removed.is_empty()).then(|| without_columns(m, &removed));
    Ok((
        trimmed,
        Screening {
            tolerance: DEGENERATE_VARIANCE_RATIO,
            removed,
        },
    ))
}

/// `m` without the columns in `removed` (ascending).
pub(crate) fn without_columns(m: MatRef<'_, f64>, removed: &[usize]) -> Mat<f64> {
    let kept: Vec<usize> = (0..m.ncols())
        .filter(|c| removed.binary_search(c).is_err())
        .collect();
    Mat::from_fn(m.nrows(), kept.len(), |r, k| m[(r, kept[k])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaked_constants_are_found_and_real_features_kept() {
        let base = crate::similarity::random_matrix(50, 4, 3);
        // Columns 1 and 3 become constants with f32-sized noise; 0 and 2 stay standard normal,
        // one of them scaled down to 1e-3 (variance 1e-6 of the largest: informative).
        let m = Mat::from_fn(50, 4, |r, c| match c {
            0 => base[(r, 0)],
            1 => 1.0 + 1e-6 * base[(r, 1)],
            2 => 1e-3 * base[(r, 2)],
            _ => 3e-7 * base[(r, 3)],
        });
        assert_eq!(
            degenerate_columns(m.as_ref(), DEGENERATE_VARIANCE_RATIO),
            [1, 3]
        );
        let kept = without_columns(m.as_ref(), &[1, 3]);
        assert_eq!(kept.ncols(), 2);
        assert_eq!(kept[(7, 1)], m[(7, 2)]);
        // Nothing varies: nothing is called degenerate (the measure reports zero variance).
        let flat = Mat::from_fn(10, 3, |_, c| c as f64);
        assert!(degenerate_columns(flat.as_ref(), DEGENERATE_VARIANCE_RATIO).is_empty());
        assert!(matches!(
            screen("ridge-r2", Operand::Y, flat.as_ref()),
            Err(SimilarityError::ZeroVariance { .. })
        ));
        let (trimmed, screening) = screen("cka:linear", Operand::X, m.as_ref()).unwrap();
        assert_eq!(screening.removed, [1, 3]);
        assert_eq!(trimmed.unwrap().ncols(), 2);
    }
}
