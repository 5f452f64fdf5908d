//! Reading a pair of representations from safetensors: `x` [n, dx] and `y` [n, dy] (f64 or f32),
//! optionally `train_idx` / `test_idx` (1-D integer tensors) naming the ridge held-out split.

use std::path::{Path, PathBuf};

use faer::Mat;
use safetensors::{Dtype, SafeTensors};

use super::SimilarityError;
use super::ridge::HeldOutSplit;

/// Errors reading a similarity input file; each names the file and, where relevant, the tensor.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InputError {
    #[error("cannot read {path}")]
    #[diagnostic(code(congruity::similarity::io))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid safetensors file: {reason}")]
    #[diagnostic(code(congruity::similarity::format))]
    Format { path: PathBuf, reason: String },
    #[error("{path}: tensor `{tensor}` is missing (present: {present})")]
    #[diagnostic(
        code(congruity::similarity::missing_tensor),
        help(
            "the file must hold `x` [n, dx] and `y` [n, dy], and optionally `train_idx` and `test_idx`"
        )
    )]
    Missing {
        path: PathBuf,
        tensor: String,
        present: String,
    },
    #[error("{path}: tensor `{tensor}` {problem}")]
    #[diagnostic(code(congruity::similarity::bad_tensor))]
    BadTensor {
        path: PathBuf,
        tensor: String,
        problem: String,
    },
    #[error("{path}: {source}")]
    #[diagnostic(code(congruity::similarity::bad_split))]
    Split {
        path: PathBuf,
        source: SimilarityError,
    },
}

/// The contents of a similarity input file.
#[derive(Debug, Clone)]
pub struct PairInput {
    pub x: Mat<f64>,
    pub y: Mat<f64>,
    /// The held-out split stored in the file, if any.
    pub split: Option<HeldOutSplit>,
}

/// Reads and validates a similarity input file.
pub fn read_pair(path: &Path) -> Result<PairInput, InputError> {
    let bytes = std::fs::read(path).map_err(|source| InputError::Read {
        path: path.to_owned(),
        source,
    })?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| InputError::Format {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let mut names: Vec<&str> = st.names();
    names.sort_unstable();
    let present = names.join(", ");
    let x = read_matrix(path, &st, "x", &present)?;
    let y = read_matrix(path, &st, "y", &present)?;
    if x.nrows() != y.nrows() {
        return Err(InputError::BadTensor {
            path: path.to_owned(),
            tensor: "y".into(),
            problem: format!(
                "has {} rows but `x` has {}; both must hold the same inputs row by row",
                y.nrows(),
                x.nrows()
            ),
        });
    }
    let has = |n: &str| names.contains(&n);
    let split = match (has("train_idx"), has("test_idx")) {
        (false, false) => None,
        (true, true) => {
            let train = read_indices(path, &st, "train_idx")?;
            let test = read_indices(path, &st, "test_idx")?;
            Some(
                HeldOutSplit::new(train, test, x.nrows()).map_err(|source| InputError::Split {
                    path: path.to_owned(),
                    source,
                })?,
            )
        }
        (true, false) | (false, true) => {
            let missing = if has("train_idx") {
                "test_idx"
            } else {
                "train_idx"
            };
            return Err(InputError::Missing {
                path: path.to_owned(),
                tensor: format!("{missing} (train_idx and test_idx come together)"),
                present,
            });
        }
    };
    Ok(PairInput { x, y, split })
}

fn read_matrix(
    path: &Path,
    st: &SafeTensors<'_>,
    name: &str,
    present: &str,
) -> Result<Mat<f64>, InputError> {
    let bad = |problem: String| InputError::BadTensor {
        path: path.to_owned(),
        tensor: name.to_owned(),
        problem,
    };
    let view = st.tensor(name).map_err(|_| InputError::Missing {
        path: path.to_owned(),
        tensor: name.to_owned(),
        present: present.to_owned(),
    })?;
    let shape = view.shape();
    let [n, d] = shape else {
        return Err(bad(format!(
            "has shape {shape:?}; expected 2 dimensions [inputs, features]"
        )));
    };
    let (n, d) = (*n, *d);
    let values: Vec<f64> = match view.dtype() {
        Dtype::F64 => view
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunks_exact(8)")))
            .collect(),
        Dtype::F32 => view
            .data()
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("chunks_exact(4)"))))
            .collect(),
        other => return Err(bad(format!("has dtype {other:?}; expected F64 or F32"))),
    };
    if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
        return Err(bad(format!(
            "has a non-finite value {} at [{}, {}]",
            values[pos],
            pos / d.max(1),
            pos % d.max(1)
        )));
    }
    // safetensors is row-major.
    Ok(Mat::from_fn(n, d, |i, j| values[i * d + j]))
}

fn read_indices(path: &Path, st: &SafeTensors<'_>, name: &str) -> Result<Vec<usize>, InputError> {
    let bad = |problem: String| InputError::BadTensor {
        path: path.to_owned(),
        tensor: name.to_owned(),
        problem,
    };
    let view = st
        .tensor(name)
        .map_err(|e| bad(format!("cannot be read: {e}")))?;
    if view.shape().len() != 1 {
        return Err(bad(format!(
            "has shape {:?}; expected 1 dimension (row indices)",
            view.shape()
        )));
    }
    let data = view.data();
    let signed: Vec<i128> = match view.dtype() {
        Dtype::I64 => little_endian(data, |b| i64::from_le_bytes(b).into()),
        Dtype::U64 => little_endian(data, |b| u64::from_le_bytes(b).into()),
        Dtype::I32 => little_endian(data, |b| i32::from_le_bytes(b).into()),
        Dtype::U32 => little_endian(data, |b| u32::from_le_bytes(b).into()),
        other => {
            return Err(bad(format!(
                "has dtype {other:?}; expected an integer type (I64, I32, U64, U32)"
            )));
        }
    };
    signed
        .into_iter()
        .map(|v| {
            usize::try_from(v).map_err(|_| bad(format!("holds {v}, which is not a row index")))
        })
        .collect()
}

/// Integers of `W` little-endian bytes each (safetensors' layout), widened by `read`.
fn little_endian<const W: usize>(data: &[u8], read: impl Fn([u8; W]) -> i128) -> Vec<i128> {
    data.chunks_exact(W)
        .map(|c| read(c.try_into().expect("chunks_exact gives W bytes")))
        .collect()
}
