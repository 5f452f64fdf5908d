//! The transformer runtime on candle-core: TransformerLens checkpoints, hook points, tracr import.
//!
//! - [`config::ModelConfig`]: the forward-relevant part of `HookedTransformerConfig`.
//! - [`weights::Weights`]: parameters under TransformerLens names and shapes.
//! - [`Transformer::forward`]: `run_with_cache` / `run_with_hooks` in one call, keeping only
//!   the hooks asked for ([`HookSelection`]) and applying [`Intervention`]s.
//! - [`load`]: a model directory in either format (TransformerLens or tracr), with its
//!   [`sidecar::Sidecar`] (vocabulary, output decoding, residual labels).
//!
//! Computation is f32. The device is the CPU unless the `cuda` feature is built and asked for.

pub mod cache;
pub mod config;
pub mod error;
pub mod hf;
pub mod hooks;
pub mod intervention;
pub mod io;
pub mod sidecar;
pub mod text;
pub mod tracr;
pub mod transformer;
pub mod weights;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

pub use cache::ActivationCache;
pub use config::ModelConfig;
pub use error::ModelError;
pub use hooks::{AttnHook, BlockHook, HookPoint, HookSelection, MlpHook, NormHook, expand_globs};
pub use intervention::{Action, Intervention, Site};
pub use sidecar::{OutputValue, Sidecar};
pub use transformer::{RunOptions, RunOutput, TokenBatch, Transformer};
pub use weights::Weights;

use error::ComputeContext;
use io::NamedTensors;

/// The device to compute on: CPU, or CUDA device 0 when `cuda` is true (needs the `cuda`
/// cargo feature).
pub fn device(cuda: bool) -> Result<Device, ModelError> {
    if !cuda {
        return Ok(Device::Cpu);
    }
    #[cfg(feature = "cuda")]
    {
        Device::new_cuda(0)
            .map_err(|e| ModelError::Device(format!("cannot open CUDA device 0: {e}")))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(ModelError::Device(
            "this build has no CUDA support; rebuild with `--features cuda`".into(),
        ))
    }
}

/// The on-disk layout a model was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFormat {
    /// `model.safetensors` + `config.json` (+ optional `congruity.json`).
    TransformerLens,
    /// `weights.safetensors` + `residual_labels.json` + `meta.json`.
    Tracr,
    /// A HuggingFace checkpoint: `config.json` with a `model_type` + `model.safetensors` (or
    /// shards and `model.safetensors.index.json`).
    HuggingFace(hf::HfArchitecture),
}

/// A model directory, loaded.
#[derive(Clone, Debug)]
pub struct LoadedModel {
    pub transformer: Transformer,
    /// Vocabulary and output decoding, when the directory provides them.
    pub sidecar: Option<Sidecar>,
    pub format: ModelFormat,
    pub dir: PathBuf,
}

impl LoadedModel {
    fn sidecar(&self) -> Result<&Sidecar, ModelError> {
        self.sidecar.as_ref().ok_or_else(|| {
            ModelError::Decode(format!(
                "{} has no vocabulary: add a {} sidecar (see model::sidecar)",
                self.dir.display(),
                sidecar::SIDECAR_FILE
            ))
        })
    }

    /// Token ids of whitespace-separated input symbols, with BOS when the model uses one.
    pub fn encode_input(&self, input: &str) -> Result<Vec<u32>, ModelError> {
        let symbols: Vec<&str> = input.split_whitespace().collect();
        self.sidecar()?.encode(&symbols)
    }

    /// Runs the model on symbol sequences of equal length and decodes the answers.
    pub fn run_symbols<S: AsRef<str>>(
        &self,
        inputs: &[Vec<S>],
    ) -> Result<Vec<Vec<OutputValue>>, ModelError> {
        let sc = self.sidecar()?;
        let rows = inputs
            .iter()
            .map(|r| sc.encode(r))
            .collect::<Result<Vec<_>, _>>()?;
        let tokens = TokenBatch::new(&rows)?;
        let out = self.transformer.forward(&tokens, &RunOptions::default())?;
        sc.decode(&out.logits)
    }

    /// Decodes logits with the sidecar's output decoding.
    pub fn decode(&self, logits: &Tensor) -> Result<Vec<Vec<OutputValue>>, ModelError> {
        self.sidecar()?.decode(logits)
    }
}

/// `dir/congruity.json` checked against the model, when the directory has one.
fn optional_sidecar(dir: &Path, t: &Transformer) -> Result<Option<Sidecar>, ModelError> {
    let path = dir.join(sidecar::SIDECAR_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let s = Sidecar::read(&path)?;
    s.validate(t.config(), &path)?;
    Ok(Some(s))
}

/// Keeps freed activation buffers in the process instead of returning them to the system.
///
/// A forward pass allocates and frees tensors of megabytes (a batch's activations); glibc serves
/// each from fresh `mmap`ed pages above its 128 KiB default threshold, so every pass pays a page
/// fault and a page clearing per 4 KiB — a fifth of a toy-size forward's time. Raising the
/// thresholds (to glibc's largest mmap threshold, 32 MiB, and a 512 MiB trim threshold) lets the
/// heap reuse them. Process-wide and idempotent; the CLI calls it at start, and a library user may.
/// No effect on other C libraries.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; any value is accepted or refused (its
        // return value), and no memory is touched.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
        }
    }
}

/// Bytes of memory this process may still take (`MemAvailable`), when the system says.
pub(crate) fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Detects the format of `dir` and loads it onto `device`.
pub fn load(dir: &Path, device: &Device) -> Result<LoadedModel, ModelError> {
    if dir.join(crate::artifact::INTERVENTION_FILE).is_file() {
        return Err(ModelError::Intervened {
            dir: dir.to_path_buf(),
        });
    }
    load_base(dir, device)
}

/// [`load`] of an intervened implementation's directory: its base model, without the
/// intervention (which only `compare` applies).
pub fn load_base(dir: &Path, device: &Device) -> Result<LoadedModel, ModelError> {
    if !dir.is_dir() {
        return Err(ModelError::UnknownFormat {
            dir: dir.to_path_buf(),
            reason: "no such directory".into(),
        });
    }
    let has = |f: &str| dir.join(f).is_file();
    // Once one file of a layout is there, the others of that layout must be too.
    let require = |layout: &str, files: &[&str]| match files.iter().find(|f| !has(f)) {
        Some(f) => Err(ModelError::UnknownFormat {
            dir: dir.to_path_buf(),
            reason: format!("a {layout} model directory needs {f}"),
        }),
        None => Ok(()),
    };
    let hf_config = has("config.json")
        .then(|| io::read_json::<serde_json::Value>(&dir.join("config.json")).ok())
        .flatten()
        .filter(hf::is_hf_config);
    if let Some(raw) = hf_config {
        let m = hf::load_hf_with_config(dir, &raw, device)?;
        let sidecar = optional_sidecar(dir, &m.transformer)?;
        return Ok(LoadedModel {
            transformer: m.transformer,
            sidecar,
            format: ModelFormat::HuggingFace(m.architecture),
            dir: dir.to_path_buf(),
        });
    }
    if has("model.safetensors") || has("config.json") {
        require("TransformerLens", &["model.safetensors", "config.json"])?;
        let config_path = dir.join("config.json");
        let config = ModelConfig::from_file(&config_path)?;
        let named = NamedTensors::read(&dir.join("model.safetensors"))?;
        config.check_against(&named, &config_path)?;
        let weights = Weights::from_named(&config, &named, device)?;
        let transformer = Transformer::new(config, weights)?;
        let sidecar = optional_sidecar(dir, &transformer)?;
        return Ok(LoadedModel {
            transformer,
            sidecar,
            format: ModelFormat::TransformerLens,
            dir: dir.to_path_buf(),
        });
    }
    if has("weights.safetensors") || has("meta.json") {
        require(
            "tracr",
            &["weights.safetensors", "residual_labels.json", "meta.json"],
        )?;
        let (transformer, sidecar) = tracr::load_tracr(dir, device)?;
        return Ok(LoadedModel {
            transformer,
            sidecar: Some(sidecar),
            format: ModelFormat::Tracr,
            dir: dir.to_path_buf(),
        });
    }
    Err(ModelError::UnknownFormat {
        dir: dir.to_path_buf(),
        reason: "found neither model.safetensors + config.json nor weights.safetensors + meta.json"
            .into(),
    })
}

/// Writes a model directory in the TransformerLens format (`model.safetensors`, `config.json`,
/// and `congruity.json` when a sidecar is given), each file written atomically.
pub fn save(
    dir: &Path,
    transformer: &Transformer,
    sidecar: Option<&Sidecar>,
) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::Write {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    if let Some(s) = sidecar {
        s.validate(transformer.config(), &dir.join(sidecar::SIDECAR_FILE))?;
    }
    io::write_safetensors(
        &dir.join("model.safetensors"),
        transformer.weights().named(),
    )?;
    io::write_json(&dir.join("config.json"), &transformer.config().to_tl_json())?;
    if let Some(s) = sidecar {
        io::write_json(&dir.join(sidecar::SIDECAR_FILE), s)?;
    }
    Ok(())
}

/// Mean over the batch axis of a `[batch, ...]` activation (for mean ablation).
pub fn batch_mean(x: &Tensor) -> Result<Tensor, ModelError> {
    x.mean(0).ctx("averaging over the batch")
}
