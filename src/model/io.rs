//! Reading and writing safetensors files with errors that name the file and tensor.
//!
//! Writes go to a temporary file in the destination directory and are renamed into place, so
//! an interrupted run never leaves a half-written output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use safetensors::SafeTensors;

use super::error::{ComputeContext, ModelError};
use crate::artifact::tensors::{float_values, int_values};
use crate::artifact::{F32Tensor, safetensors_bytes};

/// A tensor read from disk, converted to f32 on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn to_device(&self, device: &Device) -> Result<Tensor, ModelError> {
        Tensor::from_vec(self.data.clone(), self.shape.as_slice(), device)
            .ctx("moving a weight to the device")
    }
}

/// One entry of a safetensors file: f32 data, or the reason it could not be converted.
#[derive(Clone, Debug)]
enum Entry {
    Float(HostTensor),
    NotFloat { dtype: String, shape: Vec<usize> },
}

/// Every tensor of one safetensors file, by name.
#[derive(Clone, Debug)]
pub struct NamedTensors {
    pub path: PathBuf,
    entries: BTreeMap<String, Entry>,
}

/// Parses safetensors bytes; `path` names the file in the error.
fn deserialize<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, ModelError> {
    SafeTensors::deserialize(bytes).map_err(|e| ModelError::Safetensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Reads and parses a JSON file into `T`, with errors naming the file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ModelError> {
    let text = crate::files::read_text(path, crate::files::MAX_JSON_BYTES, "a JSON file")?;
    serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.to_path_buf(),
        source,
    })
}

impl NamedTensors {
    /// Reads and validates a whole safetensors file. Truncated or corrupt files (bad header
    /// length, bad JSON, offsets past the end) are reported as such.
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let bytes = crate::files::read_bytes(path, u64::MAX, "a safetensors file")?;
        Self::from_bytes(path, &bytes)
    }

    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, ModelError> {
        let st = deserialize(path, bytes)?;
        let mut entries = BTreeMap::new();
        for (name, view) in st.iter() {
            let shape = view.shape().to_vec();
            let entry = match float_values(view.dtype(), view.data()) {
                Some(data) => Entry::Float(HostTensor { shape, data }),
                None => Entry::NotFloat {
                    dtype: format!("{:?}", view.dtype()),
                    shape,
                },
            };
            entries.insert(name.to_string(), entry);
        }
        Ok(NamedTensors {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// Builds a set from in-memory tensors (used by importers); `origin` names them in errors.
    pub fn from_host(
        origin: &Path,
        tensors: impl IntoIterator<Item = (String, HostTensor)>,
    ) -> Self {
        NamedTensors {
            path: origin.to_path_buf(),
            entries: tensors
                .into_iter()
                .map(|(n, t)| (n, Entry::Float(t)))
                .collect(),
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| match e {
            Entry::Float(t) => t.shape.as_slice(),
            Entry::NotFloat { shape, .. } => shape.as_slice(),
        })
    }

    /// The tensor `name` as f32, with its shape checked when `expected` is given.
    pub fn get(
        &self,
        name: &str,
        expected: Option<&[usize]>,
        hint: &str,
    ) -> Result<&HostTensor, ModelError> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
                hint: hint.to_string(),
            })?;
        let t = match entry {
            Entry::Float(t) => t,
            Entry::NotFloat { dtype, .. } => {
                return Err(ModelError::WrongDtype {
                    path: self.path.clone(),
                    name: name.to_string(),
                    dtype: dtype.clone(),
                });
            }
        };
        if let Some(expected) = expected
            && t.shape != expected
        {
            return Err(ModelError::WrongShape {
                path: self.path.clone(),
                name: name.to_string(),
                expected: expected.to_vec(),
                found: t.shape.clone(),
            });
        }
        Ok(t)
    }
}

/// Reads every tensor of a safetensors file onto `device` as f32 (floats and integers; other
/// dtypes are an error naming the tensor).
pub fn read_safetensors(
    path: &Path,
    device: &Device,
) -> Result<BTreeMap<String, Tensor>, ModelError> {
    let bytes = crate::files::read_bytes(path, u64::MAX, "a safetensors file")?;
    let st = deserialize(path, &bytes)?;
    let mut out = BTreeMap::new();
    for (name, view) in st.iter() {
        let data = float_values(view.dtype(), view.data())
            .or_else(|| int_values(view.dtype(), view.data()))
            .ok_or_else(|| ModelError::WrongDtype {
                path: path.to_path_buf(),
                name: name.to_string(),
                dtype: format!("{:?}", view.dtype()),
            })?;
        let t = HostTensor {
            shape: view.shape().to_vec(),
            data,
        };
        out.insert(name.to_string(), t.to_device(device)?);
    }
    Ok(out)
}

/// Writes f32 tensors to `path` atomically (temporary sibling file, then rename).
pub fn write_safetensors<'a>(
    path: &Path,
    tensors: impl IntoIterator<Item = (String, &'a Tensor)>,
) -> Result<WrittenFile, ModelError> {
    let mut prepared: Vec<(String, F32Tensor)> = Vec::new();
    let mut written = Vec::new();
    for (name, t) in tensors {
        written.push(WrittenTensor {
            name: name.clone(),
            shape: t.dims().to_vec(),
        });
        let flat = t
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .ctx(&format!("copying `{name}` to the host"))?;
        prepared.push((name, F32Tensor::new(t.dims().to_vec(), flat)));
    }
    let bytes = safetensors_bytes(&prepared).map_err(|e| ModelError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    write_atomically(path, &bytes)?;
    Ok(WrittenFile {
        tensors: written,
        bytes: bytes.len() as u64,
    })
}

/// What [`write_safetensors`] wrote: every tensor's name and shape (f32), and the file's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub tensors: Vec<WrittenTensor>,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenTensor {
    pub name: String,
    pub shape: Vec<usize>,
}

impl std::fmt::Display for WrittenFile {
    /// `3 tensors (f32), 1234 bytes:` then one `  name [d0, d1]` line per tensor.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.tensors.len();
        write!(
            f,
            "{n} tensor{} (f32), {} bytes:",
            if n == 1 { "" } else { "s" },
            self.bytes
        )?;
        for t in &self.tensors {
            let dims: Vec<String> = t.shape.iter().map(ToString::to_string).collect();
            write!(f, "\n  {} [{}]", t.name, dims.join(", "))?;
        }
        Ok(())
    }
}

/// Writes `value` as pretty-printed JSON to `path`, atomically.
pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), ModelError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| ModelError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    write_atomically(path, text.as_bytes())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    Ok(crate::files::write_file(path, bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let a = Tensor::arange(0f32, 6.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        let b = Tensor::new(&[f32::NEG_INFINITY, 1.5], &Device::Cpu).unwrap();
        write_safetensors(&path, [("a".to_string(), &a), ("b.c".to_string(), &b)]).unwrap();
        let back = read_safetensors(&path, &Device::Cpu).unwrap();
        assert_eq!(
            back["a"].to_vec2::<f32>().unwrap(),
            a.to_vec2::<f32>().unwrap()
        );
        assert_eq!(
            back["b.c"].to_vec1::<f32>().unwrap(),
            vec![f32::NEG_INFINITY, 1.5]
        );
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
