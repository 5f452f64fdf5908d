//! Reading a pair of representations: one safetensors file with `x` [n, dx] and `y` [n, dy] (f64
//! or f32) and optionally `train_idx` / `test_idx` (1-D integer tensors) naming the ridge held-out
//! split ([`read_pair`]); or two files, one array each ([`read_two`]): safetensors (a tensor by
//! key), numpy `.npy`, or `.npz` (an array by key).

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
    #[error(transparent)]
    #[diagnostic(transparent)]
    File(#[from] crate::files::FileError),
    #[error("{path} is not a valid safetensors file: {reason}")]
    #[diagnostic(code(congruity::similarity::format))]
    Format { path: PathBuf, reason: String },
    /// A file of several arrays, read without a key.
    #[error("{path} holds {} arrays ({}); say which to read", arrays.len(), arrays.join(", "))]
    #[diagnostic(code(congruity::similarity::which_array))]
    WhichArray {
        path: PathBuf,
        arrays: Vec<String>,
        /// How to choose (the CLI names its flags here).
        #[help]
        help: Option<String>,
    },
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

/// One side of a two-file comparison, as read: where it came from and its original shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArraySource {
    pub path: PathBuf,
    /// The tensor's name (safetensors, npz) or `None` for a `.npy` file.
    pub key: Option<String>,
    pub shape: Vec<usize>,
}

impl std::fmt::Display for ArraySource {
    /// `acts.safetensors:blocks.0.hook_resid_post [4, 5, 8]`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(k) = &self.key {
            write!(f, ":{k}")?;
        }
        let dims: Vec<String> = self.shape.iter().map(ToString::to_string).collect();
        write!(f, " [{}]", dims.join(", "))
    }
}

/// A representation read from its own file, as a matrix with one row per input (or token).
#[derive(Debug, Clone)]
pub struct ArrayInput {
    pub source: ArraySource,
    pub matrix: Mat<f64>,
}

/// The file formats [`read_array`] reads, by extension.
pub const ARRAY_FORMATS: &str = ".safetensors, .npy, .npz";

/// Reads one representation from `path`: a `.safetensors` or `.npz` file's array `key` (which may
/// be left out when the file holds exactly one array), or a `.npy` file's array. An array of shape
/// [n, d] has n rows; one of 3 or more dimensions (e.g. an activation [batch, pos, d_model] or
/// [batch, pos, heads, d_head] that `congruity run --cache` writes) has one row per (batch,
/// position) and the remaining dimensions flattened into features.
pub fn read_array(path: &Path, key: Option<&str>) -> Result<ArrayInput, InputError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let RawArray {
        name,
        shape,
        values,
    } = match ext.as_deref() {
        Some("safetensors") => read_safetensors_array(path, key)?,
        Some("npy") => {
            if let Some(k) = key {
                return Err(InputError::Format {
                    path: path.to_owned(),
                    reason: format!(
                        "a .npy file holds one unnamed array; drop the key `{k}` (keys name arrays of .safetensors and .npz files)"
                    ),
                });
            }
            let t = candle_core::Tensor::read_npy(path).map_err(|e| InputError::Format {
                path: path.to_owned(),
                reason: format!("not a readable .npy array: {e}"),
            })?;
            let (shape, values) = host_values(path, "(array)", &t)?;
            RawArray {
                name: None,
                shape,
                values,
            }
        }
        Some("npz") => {
            let arrays = candle_core::Tensor::read_npz(path).map_err(|e| InputError::Format {
                path: path.to_owned(),
                reason: format!("not a readable .npz archive: {e}"),
            })?;
            let mut names: Vec<String> = arrays.iter().map(|(n, _)| n.clone()).collect();
            names.sort();
            let chosen = choose_key(path, key, &names)?;
            let t = &arrays
                .iter()
                .find(|(n, _)| *n == chosen)
                .expect("choose_key returns a present name")
                .1;
            let (shape, values) = host_values(path, &chosen, t)?;
            RawArray {
                name: Some(chosen),
                shape,
                values,
            }
        }
        _ => {
            return Err(InputError::Format {
                path: path.to_owned(),
                reason: format!("unknown extension; expected one of {ARRAY_FORMATS}"),
            });
        }
    };
    let tensor = name.clone().unwrap_or_else(|| "(array)".to_string());
    let bad = |problem: String| InputError::BadTensor {
        path: path.to_owned(),
        tensor: tensor.clone(),
        problem,
    };
    let (n, d) = match shape.as_slice() {
        [] | [_] => {
            return Err(bad(format!(
                "has shape {shape:?}; expected [inputs, features] or [batch, positions, features...]"
            )));
        }
        [n, d] => (*n, *d),
        [b, p, rest @ ..] => (b * p, rest.iter().product()),
    };
    if n == 0 || d == 0 {
        return Err(bad(format!("has shape {shape:?}, which holds no values")));
    }
    if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
        return Err(bad(format!(
            "has a non-finite value {} at row {}, feature {}",
            values[pos],
            pos / d,
            pos % d
        )));
    }
    Ok(ArrayInput {
        source: ArraySource {
            path: path.to_owned(),
            key: name,
            shape,
        },
        // Row-major, as both formats store them.
        matrix: Mat::from_fn(n, d, |i, j| values[i * d + j]),
    })
}

/// `x` from one file and `y` from another (see [`read_array`]); their rows must be the same
/// inputs in the same order. No held-out split is stored: ridge draws one from its seed.
pub fn read_two(
    x: (&Path, Option<&str>),
    y: (&Path, Option<&str>),
) -> Result<(PairInput, [ArraySource; 2]), InputError> {
    let a = read_array(x.0, x.1)?;
    let b = read_array(y.0, y.1)?;
    if a.matrix.nrows() != b.matrix.nrows() {
        return Err(InputError::BadTensor {
            path: b.source.path.clone(),
            tensor: b.source.key.clone().unwrap_or_else(|| "(array)".into()),
            problem: format!(
                "gives {} rows but {} gives {}; both must hold the same inputs row by row",
                b.matrix.nrows(),
                a.source,
                a.matrix.nrows()
            ),
        });
    }
    Ok((
        PairInput {
            x: a.matrix,
            y: b.matrix,
            split: None,
        },
        [a.source, b.source],
    ))
}

/// The key to read: the one given (which must be present), or the only array of the file.
fn choose_key(path: &Path, key: Option<&str>, names: &[String]) -> Result<String, InputError> {
    let present = names.join(", ");
    match key {
        Some(k) if names.iter().any(|n| n == k) => Ok(k.to_string()),
        Some(k) => Err(InputError::Missing {
            path: path.to_owned(),
            tensor: k.to_string(),
            present,
        }),
        None => match names {
            [one] => Ok(one.clone()),
            _ => Err(InputError::WhichArray {
                path: path.to_owned(),
                arrays: names.to_vec(),
                help: None,
            }),
        },
    }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, InputError> {
    Ok(crate::files::read_bytes(
        path,
        u64::MAX,
        "a representation file",
    )?)
}

fn deserialize<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, InputError> {
    SafeTensors::deserialize(bytes).map_err(|e| InputError::Format {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// A tensor's values as f64 (safetensors is little-endian), or why its dtype is not a float.
fn float_values(view: &safetensors::tensor::TensorView<'_>) -> Result<Vec<f64>, String> {
    let data = view.data();
    Ok(match view.dtype() {
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunks_exact(8)")))
            .collect(),
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("chunks_exact(4)"))))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        other => {
            return Err(format!(
                "has dtype {other:?}; expected a float type (F64 or F32, or F16 / BF16)"
            ));
        }
    })
}

fn read_safetensors_array(path: &Path, key: Option<&str>) -> Result<RawArray, InputError> {
    let bytes = read_bytes(path)?;
    let st = deserialize(path, &bytes)?;
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let chosen = choose_key(path, key, &names)?;
    let view = st.tensor(&chosen).map_err(|e| InputError::Format {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let bad = |problem: String| InputError::BadTensor {
        path: path.to_owned(),
        tensor: chosen.clone(),
        problem,
    };
    let values = float_values(&view).map_err(bad)?;
    Ok(RawArray {
        name: Some(chosen),
        shape: view.shape().to_vec(),
        values,
    })
}

/// An array as a file holds it: its name (none for `.npy`), shape and row-major values.
struct RawArray {
    name: Option<String>,
    shape: Vec<usize>,
    values: Vec<f64>,
}

/// A candle tensor's shape and values as f64 (any float or integer dtype).
fn host_values(
    path: &Path,
    name: &str,
    t: &candle_core::Tensor,
) -> Result<(Vec<usize>, Vec<f64>), InputError> {
    let values = t
        .to_dtype(candle_core::DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .map_err(|e| InputError::BadTensor {
            path: path.to_owned(),
            tensor: name.to_owned(),
            problem: format!("cannot be read as numbers: {e}"),
        })?;
    Ok((t.dims().to_vec(), values))
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
    let bytes = read_bytes(path)?;
    let st = deserialize(path, &bytes)?;
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
    let values = float_values(&view).map_err(bad)?;
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
