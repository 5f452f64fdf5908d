//! The tensors of a HuggingFace checkpoint: one file or the shards an index names, memory-mapped
//! and read one tensor at a time, with the memory a load needs checked from the headers first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{Device, Tensor};
use serde_json::Value;

use crate::model::error::{ComputeContext, ModelError};
use crate::model::io::read_json;

/// The index file of a sharded checkpoint.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// The checkpoint's files, memory-mapped, and where each tensor is: tensors are read (and
/// converted to f32) one at a time as the converter takes them, so a model loads in about twice
/// its f32 size whatever its stored dtype.
pub(super) struct Checkpoint {
    pub(super) origin: PathBuf,
    files: Vec<(PathBuf, MmapedSafetensors)>,
    /// Name -> (index into `files`, shape).
    pub(super) tensors: BTreeMap<String, (usize, Vec<usize>)>,
}

impl Checkpoint {
    fn file_of(&self, name: &str) -> Option<&PathBuf> {
        self.tensors.get(name).map(|(i, _)| &self.files[*i].0)
    }
}

pub(super) fn read_checkpoint(dir: &Path, extra_bytes: u64) -> Result<Checkpoint, ModelError> {
    let index = dir.join(INDEX_FILE);
    let files: Vec<PathBuf> = if index.is_file() {
        let v: Value = read_json(&index)?;
        let map = v
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| ModelError::InvalidConfig {
                path: index.clone(),
                field: "weight_map".into(),
                reason: "missing or not an object of tensor name -> shard file".into(),
            })?;
        let mut shards = BTreeSet::new();
        for (name, file) in map {
            let f = file
                .as_str()
                .filter(|f| !f.contains('/') && !f.contains('\\') && f.ends_with(".safetensors"));
            let Some(f) = f else {
                return Err(ModelError::InvalidConfig {
                    path: index.clone(),
                    field: format!("weight_map.{name}"),
                    reason: format!("`{file}` is not a .safetensors file name in this directory"),
                });
            };
            shards.insert(f.to_string());
        }
        let mut out = Vec::new();
        for f in shards {
            let p = dir.join(&f);
            if !p.is_file() {
                let first = map
                    .iter()
                    .find(|(_, v)| v.as_str() == Some(f.as_str()))
                    .map_or(String::new(), |(k, _)| k.clone());
                return Err(ModelError::InvalidConfig {
                    path: index.clone(),
                    field: format!("weight_map.{first}"),
                    reason: format!(
                        "names the shard {f}, which is missing from {}",
                        dir.display()
                    ),
                });
            }
            out.push(p);
        }
        check_memory(dir, &out, extra_bytes)?;
        // Every tensor the index lists must be in the shard it names (checked after reading).
        let mut ck = read_files(dir, &out)?;
        for (name, file) in map {
            let want = dir.join(file.as_str().unwrap_or_default());
            match ck.file_of(name) {
                Some(got) if *got == want => {}
                Some(got) => {
                    return Err(ModelError::InvalidConfig {
                        path: index.clone(),
                        field: format!("weight_map.{name}"),
                        reason: format!(
                            "the tensor is in {}, not in {}",
                            got.display(),
                            want.display()
                        ),
                    });
                }
                None => {
                    return Err(ModelError::MissingTensor {
                        path: want,
                        name: name.clone(),
                        hint: format!(" ({INDEX_FILE} lists it there)"),
                    });
                }
            }
        }
        ck.origin = index;
        return Ok(ck);
    } else {
        vec![dir.join("model.safetensors")]
    };
    check_memory(dir, &files, extra_bytes)?;
    read_files(dir, &files)
}

/// The number of stored parameters of the checkpoint in `dir` (every tensor of its files, tied
/// weights once — what transformers' `num_parameters()` counts), from the headers alone.
pub fn stored_parameters(dir: &Path) -> Result<u64, ModelError> {
    let index = dir.join(INDEX_FILE);
    let files: Vec<PathBuf> = if index.is_file() {
        let v: Value = read_json(&index)?;
        let shards: BTreeSet<String> = v
            .get("weight_map")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(_, f)| f.as_str().map(str::to_string))
            .collect();
        shards.into_iter().map(|f| dir.join(f)).collect()
    } else {
        vec![dir.join("model.safetensors")]
    };
    let mut total = 0u64;
    for f in files {
        total = total.saturating_add(header_elements(&f)?);
    }
    Ok(total)
}

/// Elements of every tensor a safetensors file declares, from its header alone.
fn header_elements(path: &Path) -> Result<u64, ModelError> {
    use std::io::Read;
    let bad = |reason: String| ModelError::Safetensors {
        path: path.to_path_buf(),
        reason,
    };
    let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|e| bad(format!("cannot read the header length: {e}")))?;
    let len = u64::from_le_bytes(len);
    let size = f.metadata().map_err(|e| ModelError::io(path, e))?.len();
    if len > size.saturating_sub(8) || len > 100 << 20 {
        return Err(bad(format!(
            "header length {len} does not fit the file ({size} bytes)"
        )));
    }
    let mut header = vec![0u8; len as usize];
    f.read_exact(&mut header)
        .map_err(|e| bad(format!("cannot read the header: {e}")))?;
    let v: Value =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header is not JSON: {e}")))?;
    let mut total: u64 = 0;
    for (name, t) in v.as_object().into_iter().flatten() {
        if name == "__metadata__" {
            continue;
        }
        let n = t
            .get("shape")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .map(|d| d.as_u64().unwrap_or(0))
                    .fold(1u64, u64::saturating_mul)
            })
            .unwrap_or(0);
        total = total.saturating_add(n);
    }
    Ok(total)
}

/// Refuses, before anything is allocated, a checkpoint whose weights (about 11 bytes each while
/// loading) and rotary tables would not fit in the memory available.
fn check_memory(dir: &Path, files: &[PathBuf], extra_bytes: u64) -> Result<(), ModelError> {
    let mut elements: u64 = 0;
    for f in files {
        if f.is_file() {
            elements = elements.saturating_add(header_elements(f)?);
        }
    }
    // Measured on a Pythia-160M-shaped checkpoint (benches/hf.rs): the peak resident set of a
    // load is about 2.7 times the f32 size of the weights (converted copies, runtime weights and
    // the mapped file), i.e. about 11 bytes per weight.
    let needed = elements.saturating_mul(11).saturating_add(extra_bytes);
    if let Some(available) = crate::model::available_memory()
        && needed > available
    {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        return Err(ModelError::UnknownFormat {
            dir: dir.to_path_buf(),
            reason: format!(
                "loading it needs about {:.1} GiB ({elements} weights at about 11 bytes each while loading, plus {:.1} GiB of rotary tables for its context length), and {:.1} GiB are available",
                gib(needed),
                gib(extra_bytes),
                gib(available)
            ),
        });
    }
    Ok(())
}

fn read_files(dir: &Path, files: &[PathBuf]) -> Result<Checkpoint, ModelError> {
    let mut maps = Vec::with_capacity(files.len());
    let mut tensors: BTreeMap<String, (usize, Vec<usize>)> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        // SAFETY: the mapping is read-only; a file changed by another process while it is
        // mapped could change what is read, as with any reader of a file being rewritten.
        #[allow(unsafe_code)]
        let st = unsafe { MmapedSafetensors::new(f) }.map_err(|e| ModelError::Safetensors {
            path: f.clone(),
            reason: e.to_string(),
        })?;
        for (name, view) in st.tensors() {
            if let Some((first, _)) = tensors.get(&name) {
                return Err(ModelError::UnknownFormat {
                    dir: dir.to_path_buf(),
                    reason: format!(
                        "tensor `{name}` is in both {} and {}",
                        files[*first].display(),
                        f.display()
                    ),
                });
            }
            tensors.insert(name, (i, view.shape().to_vec()));
        }
        maps.push((f.clone(), st));
    }
    Ok(Checkpoint {
        origin: files.first().cloned().unwrap_or_else(|| dir.to_path_buf()),
        files: maps,
        tensors,
    })
}

/// Takes tensors out of a checkpoint by name (with an optional prefix), checking shapes, and
/// reports whatever is left over: a tensor nobody reads means config and checkpoint disagree.
pub(super) struct Reader<'a> {
    pub(super) ck: &'a Checkpoint,
    prefix: String,
    used: BTreeSet<String>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(ck: &'a Checkpoint, prefixes: &[&str], probe: &str) -> Self {
        let prefix = prefixes
            .iter()
            .find(|p| ck.tensors.contains_key(&format!("{p}{probe}")))
            .copied()
            .unwrap_or(prefixes[0])
            .to_string();
        Reader {
            ck,
            prefix,
            used: BTreeSet::new(),
        }
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.ck
            .file_of(name)
            .cloned()
            .unwrap_or_else(|| self.ck.origin.clone())
    }

    /// `name` (without the prefix) with the given shape, as a CPU tensor.
    pub(super) fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let full = format!("{}{name}", self.prefix);
        self.take_full(&full, shape)
    }

    pub(super) fn take_full(&mut self, full: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let (file, found) = self
            .ck
            .tensors
            .get(full)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.path_of(full),
                name: full.to_string(),
                hint: String::new(),
            })?;
        if found != shape {
            return Err(ModelError::WrongShape {
                path: self.path_of(full),
                name: full.to_string(),
                expected: shape.to_vec(),
                found: found.clone(),
            });
        }
        let st = &self.ck.files[*file].1;
        let dtype = st
            .get(full)
            .map(|v| v.dtype())
            .map_err(|e| ModelError::Safetensors {
                path: self.path_of(full),
                reason: e.to_string(),
            })?;
        if !matches!(
            dtype,
            safetensors::Dtype::F32
                | safetensors::Dtype::F16
                | safetensors::Dtype::BF16
                | safetensors::Dtype::F64
        ) {
            return Err(ModelError::WrongDtype {
                path: self.path_of(full),
                name: full.to_string(),
                dtype: format!("{dtype:?}"),
            });
        }
        self.used.insert(full.to_string());
        st.load(full, &Device::Cpu)
            .and_then(|t| t.to_dtype(candle_core::DType::F32))
            .ctx(&format!("reading `{full}`"))
    }

    /// Fails on any tensor not read, except buffers transformers saves that carry no weights.
    pub(super) fn finish(&self, buffers: &[&str]) -> Result<(), ModelError> {
        for name in self.ck.tensors.keys() {
            if !self.used.contains(name) && !buffers.iter().any(|b| name.ends_with(b)) {
                return Err(ModelError::UnexpectedTensor {
                    path: self.path_of(name),
                    name: name.clone(),
                    reason: "no parameter of this architecture and config reads it".into(),
                });
            }
        }
        Ok(())
    }
}
