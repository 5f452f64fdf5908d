//! HuggingFace checkpoints — GPT-2 (`GPT2LMHeadModel`), GPT-NeoX / Pythia (`GPTNeoXForCausalLM`)
//! and Llama (`LlamaForCausalLM`) — loaded into the runtime under TransformerLens names and
//! semantics, the way TransformerLens' own weight converters map them: per-head `W_Q/W_K/W_V`
//! `[heads, d_model, d_head]`, `W_O` `[heads, d_head, d_model]`, `W_in/W_out` `[in, out]`. Every
//! hook then means what it means in TransformerLens, so circuits and results transfer.
//!
//! The layout is read from `config.json` (`model_type`, `architectures`); anything the runtime
//! would compute differently (another architecture, rope scaling, sliding windows, cross
//! attention, ...) is refused with the field and value named — never a silently wrong forward.
//! Weights come from `model.safetensors` or from the shards `model.safetensors.index.json` names,
//! in f32, f16 or bf16 (computed in f32).
//!
//! Grouped-query attention (Llama `num_key_value_heads` < `num_attention_heads`) is kept as it
//! is, as in TransformerLens: `W_K` / `W_V` have one slice per key/value head, `hook_k` /
//! `hook_v` hold the key/value heads (patching selects one of them), and query head `j` reads
//! key/value head `j / (heads / kv)`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde_json::Value;

use super::config::{ActFn, ModelConfig, Normalization, Positional, Rotary};
use super::error::{ComputeContext, ModelError};
use candle_core::safetensors::MmapedSafetensors;

use super::io::{HostTensor, NamedTensors, read_json};
use super::transformer::Transformer;
use super::weights::Weights;

/// The index file of a sharded checkpoint.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// The architectures this module loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HfArchitecture {
    Gpt2,
    GptNeoX,
    Llama,
}

impl HfArchitecture {
    pub fn name(self) -> &'static str {
        match self {
            HfArchitecture::Gpt2 => "GPT2LMHeadModel",
            HfArchitecture::GptNeoX => "GPTNeoXForCausalLM",
            HfArchitecture::Llama => "LlamaForCausalLM",
        }
    }
}

/// Whether a parsed `config.json` is a HuggingFace config (it names a `model_type` or
/// `architectures` and has none of TransformerLens' own size fields).
pub fn is_hf_config(v: &Value) -> bool {
    (v.get("model_type").is_some() || v.get("architectures").is_some())
        && v.get("d_model").is_none()
        && v.get("n_layers").is_none()
}

/// Whether `dir` looks like a HuggingFace checkpoint directory.
pub fn is_hf_dir(dir: &Path) -> bool {
    let config = dir.join("config.json");
    config.is_file()
        && read_json::<Value>(&config).is_ok_and(|v| is_hf_config(&v))
        && (dir.join("model.safetensors").is_file() || dir.join(INDEX_FILE).is_file())
}

/// A HuggingFace checkpoint, loaded: the runtime model and what it was.
#[derive(Clone, Debug)]
pub struct HfModel {
    pub transformer: Transformer,
    pub architecture: HfArchitecture,
    /// The checkpoint's stored dtype (`dtype` or `torch_dtype` in config.json), e.g. `bfloat16`.
    pub stored_dtype: Option<String>,
}

/// Loads the HuggingFace checkpoint in `dir` onto `device`.
pub fn load_hf(dir: &Path, device: &Device) -> Result<HfModel, ModelError> {
    let config_path = dir.join("config.json");
    let raw: Value = read_json(&config_path)?;
    let c = Cfg {
        v: &raw,
        path: &config_path,
    };
    let arch = architecture(&c)?;
    // Rotary tables are [n_ctx, d_head] sin and cos in f32; counted before anything is read.
    let n_ctx = ["n_positions", "max_position_embeddings"]
        .iter()
        .find_map(|f| c.opt_usize(f).ok().flatten())
        .unwrap_or(0) as u64;
    let d_head = c.opt_usize("head_dim")?.unwrap_or_else(|| {
        let d = ["n_embd", "hidden_size"]
            .iter()
            .find_map(|f| c.opt_usize(f).ok().flatten());
        let h = ["n_head", "num_attention_heads"]
            .iter()
            .find_map(|f| c.opt_usize(f).ok().flatten());
        d.zip(h).map_or(0, |(d, h)| d / h.max(1))
    }) as u64;
    let tensors = read_checkpoint(dir, n_ctx.saturating_mul(d_head).saturating_mul(8))?;
    let (config, named) = match arch {
        HfArchitecture::Gpt2 => gpt2(&c, &tensors)?,
        HfArchitecture::GptNeoX => neox(&c, &tensors)?,
        HfArchitecture::Llama => llama(&c, &tensors)?,
    };
    let named = NamedTensors::from_host(&tensors.origin, named);
    let weights = Weights::from_named(&config, &named, device)?;
    let transformer = Transformer::new(config, weights)?;
    residual_self_check(&transformer, dir)?;
    let stored_dtype = ["dtype", "torch_dtype"]
        .iter()
        .find_map(|k| raw.get(*k).and_then(Value::as_str))
        .map(str::to_string);
    Ok(HfModel {
        transformer,
        architecture: arch,
        stored_dtype,
    })
}

/// The residual identities on a short probe input: `resid_pre + attn_out = resid_mid` and
/// `resid_mid + mlp_out = resid_post` (parallel blocks: `resid_pre + attn_out + mlp_out =
/// resid_post`), and each block's `resid_post` is the next one's `resid_pre`. A converter that
/// put a weight in the wrong place can still produce plausible logits; it cannot keep these
/// while mislabelling what the hooks hold. One forward of four tokens: cheap enough to run always.
pub fn residual_self_check(t: &Transformer, dir: &Path) -> Result<(), ModelError> {
    use super::hooks::{BlockHook, HookPoint, HookSelection};
    use super::transformer::{RunOptions, TokenBatch};
    let cfg = t.config();
    let len = cfg.n_ctx.clamp(1, 4);
    let probe: Vec<u32> = (0..len)
        .map(|i| ((i * 7 + 1) % cfg.d_vocab) as u32)
        .collect();
    let parallel = cfg.parallel_attn_mlp;
    let mut points = Vec::new();
    for l in 0..cfg.n_layers {
        for h in [
            BlockHook::ResidPre,
            BlockHook::AttnOut,
            BlockHook::ResidPost,
        ] {
            points.push(HookPoint::block(l, h));
        }
        if !cfg.attn_only {
            points.push(HookPoint::block(l, BlockHook::MlpOut));
            if !parallel {
                points.push(HookPoint::block(l, BlockHook::ResidMid));
            }
        }
    }
    let out = t.forward(
        &TokenBatch::single(probe)?,
        &RunOptions::cache(HookSelection::only(points)),
    )?;
    let get = |l: usize, h: BlockHook| -> Result<Vec<f32>, ModelError> {
        let point = HookPoint::block(l, h);
        out.cache
            .get(&point)
            .ok_or_else(|| ModelError::Decode(format!("self-check: {point} was not cached")))?
            .flatten_all()
            .and_then(|x| x.to_vec1::<f32>())
            .ctx("reading the self-check's activations")
    };
    let fail = |what: String| ModelError::UnknownFormat {
        dir: dir.to_path_buf(),
        reason: format!(
            "the loaded model fails its residual self-check: {what}; the checkpoint's weights do not map onto the hooks as this loader assumes"
        ),
    };
    let check = |what: &str, sum: &[f32], want: &[f32]| -> Result<(), ModelError> {
        let scale = want.iter().fold(1.0f32, |m, x| m.max(x.abs()));
        let err = sum
            .iter()
            .zip(want)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        if err > 1e-3 * scale || err.is_nan() {
            return Err(fail(format!("{what} is off by {err:e} (scale {scale:e})")));
        }
        Ok(())
    };
    let add = |a: &[f32], b: &[f32]| -> Vec<f32> { a.iter().zip(b).map(|(x, y)| x + y).collect() };
    for l in 0..cfg.n_layers {
        let pre = get(l, BlockHook::ResidPre)?;
        let attn = get(l, BlockHook::AttnOut)?;
        let post = get(l, BlockHook::ResidPost)?;
        let after_attn = add(&pre, &attn);
        if cfg.attn_only {
            check(
                &format!("layer {l}: resid_pre + attn_out = resid_post"),
                &after_attn,
                &post,
            )?;
        } else if parallel {
            let mlp = get(l, BlockHook::MlpOut)?;
            check(
                &format!("layer {l}: resid_pre + attn_out + mlp_out = resid_post"),
                &add(&after_attn, &mlp),
                &post,
            )?;
        } else {
            let mid = get(l, BlockHook::ResidMid)?;
            let mlp = get(l, BlockHook::MlpOut)?;
            check(
                &format!("layer {l}: resid_pre + attn_out = resid_mid"),
                &after_attn,
                &mid,
            )?;
            check(
                &format!("layer {l}: resid_mid + mlp_out = resid_post"),
                &add(&mid, &mlp),
                &post,
            )?;
        }
        if l + 1 < cfg.n_layers {
            check(
                &format!(
                    "blocks.{l}.hook_resid_post = blocks.{}.hook_resid_pre",
                    l + 1
                ),
                &post,
                &get(l + 1, BlockHook::ResidPre)?,
            )?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// config.json

/// `config.json` with typed accessors whose errors name the file and field.
struct Cfg<'a> {
    v: &'a Value,
    path: &'a Path,
}

impl Cfg<'_> {
    fn bad(&self, field: &str, reason: impl Into<String>) -> ModelError {
        ModelError::InvalidConfig {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.v.get(field).filter(|v| !v.is_null())
    }

    fn usize(&self, field: &str) -> Result<usize, ModelError> {
        self.opt_usize(field)?
            .ok_or_else(|| self.bad(field, "missing (a positive integer)"))
    }

    fn opt_usize(&self, field: &str) -> Result<Option<usize>, ModelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 && n <= 1 << 40 => Ok(Some(n as usize)),
                _ => Err(self.bad(field, format!("`{v}` is not a positive integer"))),
            },
        }
    }

    fn f64_or(&self, field: &str, default: f64) -> Result<f64, ModelError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| self.bad(field, format!("`{v}` is not a finite number"))),
        }
    }

    fn bool_or(&self, field: &str, default: bool) -> Result<bool, ModelError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.bad(field, format!("`{v}` is not a boolean"))),
        }
    }

    fn str_or<'b>(&'b self, field: &str, default: &'b str) -> Result<&'b str, ModelError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .as_str()
                .ok_or_else(|| self.bad(field, format!("`{v}` is not a string"))),
        }
    }

    /// Fields that change the forward in ways the runtime does not compute: refused unless
    /// absent, null or equal to the harmless value.
    fn refuse_unless(&self, field: &str, harmless: &[Value], why: &str) -> Result<(), ModelError> {
        match self.get(field) {
            Some(v) if !harmless.contains(v) => Err(self.bad(field, format!("`{v}`: {why}"))),
            _ => Ok(()),
        }
    }

    /// `rope_theta` at the top level (older) or inside `rope_parameters` (transformers 5).
    fn rope(&self, key: &str, legacy: &[&str], default: f64) -> Result<f64, ModelError> {
        if let Some(p) = self.get("rope_parameters")
            && let Some(v) = p.get(key).filter(|v| !v.is_null())
        {
            return v
                .as_f64()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| {
                    self.bad(
                        &format!("rope_parameters.{key}"),
                        format!("`{v}` is not a positive number"),
                    )
                });
        }
        for f in legacy {
            if self.get(f).is_some() {
                let x = self.f64_or(f, default)?;
                if x <= 0.0 {
                    return Err(self.bad(f, format!("`{x}` is not positive")));
                }
                return Ok(x);
            }
        }
        Ok(default)
    }

    /// Rope scaling (`rope_scaling`, or `rope_parameters.rope_type` other than `default`) changes
    /// the frequencies in ways the runtime does not reproduce.
    fn refuse_rope_scaling(&self) -> Result<(), ModelError> {
        self.refuse_unless(
            "rope_scaling",
            &[],
            "rope scaling is not implemented (only plain rotary embeddings)",
        )?;
        if let Some(p) = self.get("rope_parameters")
            && let Some(t) = p.get("rope_type").and_then(Value::as_str)
            && t != "default"
        {
            return Err(self.bad(
                "rope_parameters.rope_type",
                format!("`{t}`: only the default rotary embedding is implemented"),
            ));
        }
        Ok(())
    }

    fn act(&self, field: &str, default: &str) -> Result<ActFn, ModelError> {
        let name = self.str_or(field, default)?;
        let act = match name {
            "gelu_new" => ActFn::GeluNew,
            "gelu" => ActFn::Gelu,
            "gelu_fast" => ActFn::GeluFast,
            "gelu_pytorch_tanh" => ActFn::GeluPytorchTanh,
            "relu" => ActFn::Relu,
            "silu" | "swish" => ActFn::Silu,
            other => {
                return Err(self.bad(
                    field,
                    format!("`{other}` is not a supported activation (gelu_new, gelu, gelu_fast, gelu_pytorch_tanh, relu, silu)"),
                ));
            }
        };
        Ok(act)
    }
}

fn architecture(c: &Cfg<'_>) -> Result<HfArchitecture, ModelError> {
    let from_type = match c.get("model_type").and_then(Value::as_str) {
        Some("gpt2") => Some(HfArchitecture::Gpt2),
        Some("gpt_neox") => Some(HfArchitecture::GptNeoX),
        Some("llama") => Some(HfArchitecture::Llama),
        Some(other) => {
            return Err(c.bad(
                "model_type",
                format!(
                    "`{other}` is not a supported HuggingFace architecture (gpt2, gpt_neox, llama)"
                ),
            ));
        }
        None => None,
    };
    // The first listed architecture decides (transformers instantiates that class).
    if let Some(a) = c
        .get("architectures")
        .and_then(Value::as_array)
        .and_then(|l| l.first())
    {
        let known = match a.as_str() {
            Some("GPT2LMHeadModel") => HfArchitecture::Gpt2,
            Some("GPTNeoXForCausalLM") => HfArchitecture::GptNeoX,
            Some("LlamaForCausalLM") => HfArchitecture::Llama,
            _ => {
                return Err(c.bad(
                    "architectures",
                    format!("`{a}` is not one of GPT2LMHeadModel, GPTNeoXForCausalLM, LlamaForCausalLM (a causal LM head is needed)"),
                ));
            }
        };
        if from_type.is_some_and(|t| t != known) {
            return Err(c.bad(
                "architectures",
                format!(
                    "`{a}` does not match model_type `{}`",
                    from_type.map_or("", |t| t.name())
                ),
            ));
        }
        return Ok(known);
    }
    from_type.ok_or_else(|| c.bad("model_type", "missing (gpt2, gpt_neox or llama)"))
}

// ---------------------------------------------------------------------------------------------
// Tensors

/// The checkpoint's files, memory-mapped, and where each tensor is: tensors are read (and
/// converted to f32) one at a time as the converter takes them, so a model loads in about twice
/// its f32 size whatever its stored dtype.
struct Checkpoint {
    origin: PathBuf,
    files: Vec<(PathBuf, MmapedSafetensors)>,
    /// Name -> (index into `files`, shape).
    tensors: BTreeMap<String, (usize, Vec<usize>)>,
}

impl Checkpoint {
    fn file_of(&self, name: &str) -> Option<&PathBuf> {
        self.tensors.get(name).map(|(i, _)| &self.files[*i].0)
    }
}

fn read_checkpoint(dir: &Path, extra_bytes: u64) -> Result<Checkpoint, ModelError> {
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

/// Bytes of memory this process may still take (`MemAvailable`), when the system says.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
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
    if let Some(available) = available_memory()
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
struct Reader<'a> {
    ck: &'a Checkpoint,
    prefix: String,
    used: BTreeSet<String>,
}

impl<'a> Reader<'a> {
    fn new(ck: &'a Checkpoint, prefixes: &[&str], probe: &str) -> Self {
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
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let full = format!("{}{name}", self.prefix);
        self.take_full(&full, shape)
    }

    fn take_full(&mut self, full: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
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

    fn has(&self, name: &str) -> bool {
        self.ck
            .tensors
            .contains_key(&format!("{}{name}", self.prefix))
    }

    /// Fails on any tensor not read, except buffers transformers saves that carry no weights.
    fn finish(&self, buffers: &[&str]) -> Result<(), ModelError> {
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

type Named = Vec<(String, HostTensor)>;

fn host(t: &Tensor) -> Result<HostTensor, ModelError> {
    let shape = t.dims().to_vec();
    let data = t
        .flatten_all()
        .and_then(|f| f.to_vec1::<f32>())
        .ctx("converting a HuggingFace weight")?;
    Ok(HostTensor { shape, data })
}

fn push(out: &mut Named, name: String, t: &Tensor) -> Result<(), ModelError> {
    out.push((name, host(t)?));
    Ok(())
}

fn zeros(shape: &[usize]) -> HostTensor {
    HostTensor {
        shape: shape.to_vec(),
        data: vec![0.0; shape.iter().product()],
    }
}

/// `[n*e, d]` (nn.Linear, output rows grouped by head) → `[n, d, e]`.
fn linear_heads(w: &Tensor, n: usize, e: usize, d: usize) -> candle_core::Result<Tensor> {
    w.reshape((n, e, d))?.transpose(1, 2)?.contiguous()
}

/// `[d, n*e]` (nn.Linear `o_proj`, input columns grouped by head) → `[n, e, d]`.
fn linear_out_heads(w: &Tensor, n: usize, e: usize, d: usize) -> candle_core::Result<Tensor> {
    w.t()?.contiguous()?.reshape((n, e, d))
}

/// `unembed.W_U` [d, vocab] from the head `name` ([vocab, d]; transformers saves it even when
/// tied, or drops it, in which case `tied` is the input embedding), and a zero `unembed.b_U`.
fn unembed(
    r: &mut Reader<'_>,
    out: &mut Named,
    name: &str,
    tied: Option<Tensor>,
    vocab: usize,
    d: usize,
) -> Result<(), ModelError> {
    let head = match (r.ck.tensors.contains_key(name), tied) {
        (true, _) => r.take_full(name, &[vocab, d])?,
        (false, Some(embedding)) => embedding,
        (false, None) => {
            return Err(ModelError::MissingTensor {
                path: r.ck.origin.clone(),
                name: name.to_string(),
                hint: " (tie_word_embeddings is false)".into(),
            });
        }
    };
    let w_u = head.t().ctx(&format!("transposing `{name}`"))?;
    push(out, "unembed.W_U".into(), &w_u)?;
    out.push(("unembed.b_U".into(), zeros(&[vocab])));
    Ok(())
}

/// `input_layernorm` → `ln1` and `post_attention_layernorm` → `ln2` (GPT-NeoX and Llama).
fn block_norms(
    r: &mut Reader<'_>,
    out: &mut Named,
    hf: &str,
    tl: &str,
    d: usize,
    bias: bool,
) -> Result<(), ModelError> {
    norm_weights(
        r,
        out,
        &format!("{hf}.input_layernorm"),
        &format!("{tl}.ln1"),
        d,
        bias,
    )?;
    norm_weights(
        r,
        out,
        &format!("{hf}.post_attention_layernorm"),
        &format!("{tl}.ln2"),
        d,
        bias,
    )
}

fn norm_weights(
    r: &mut Reader<'_>,
    out: &mut Named,
    hf: &str,
    tl: &str,
    d: usize,
    bias: bool,
) -> Result<(), ModelError> {
    let w = r.take(&format!("{hf}.weight"), &[d])?;
    push(out, format!("{tl}.w"), &w)?;
    if bias {
        let b = r.take(&format!("{hf}.bias"), &[d])?;
        push(out, format!("{tl}.b"), &b)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GPT-2

fn gpt2(c: &Cfg<'_>, ck: &Checkpoint) -> Result<(ModelConfig, Named), ModelError> {
    let n_layers = c.usize("n_layer")?;
    let d = c.usize("n_embd")?;
    let h = c.usize("n_head")?;
    if d % h != 0 {
        return Err(c.bad("n_head", format!("{h} does not divide n_embd {d}")));
    }
    let e = d / h;
    let m = c.opt_usize("n_inner")?.unwrap_or(4 * d);
    let vocab = c.usize("vocab_size")?;
    let n_ctx = c.usize("n_positions")?;
    c.refuse_unless(
        "add_cross_attention",
        &[Value::Bool(false)],
        "cross attention is not implemented",
    )?;
    let mut cfg = ModelConfig::simple(n_layers, d, h, m, vocab, n_ctx);
    cfg.act_fn = Some(c.act("activation_function", "gelu_new")?);
    cfg.eps = c.f64_or("layer_norm_epsilon", 1e-5)?;
    cfg.use_attn_scale = c.bool_or("scale_attn_weights", true)?;
    cfg.scale_attn_by_inverse_layer_idx = c.bool_or("scale_attn_by_inverse_layer_idx", false)?;
    let tied = c.bool_or("tie_word_embeddings", true)?;

    let mut r = Reader::new(ck, &["transformer.", ""], "wte.weight");
    let mut out = Named::new();
    let wte = r.take("wte.weight", &[vocab, d])?;
    push(&mut out, "embed.W_E".into(), &wte)?;
    let wpe = r.take("wpe.weight", &[n_ctx, d])?;
    push(&mut out, "pos_embed.W_pos".into(), &wpe)?;
    let ctx = |what: &str| format!("rearranging GPT-2 {what}");
    for l in 0..n_layers {
        let p = format!("h.{l}");
        let tl = format!("blocks.{l}");
        norm_weights(
            &mut r,
            &mut out,
            &format!("{p}.ln_1"),
            &format!("{tl}.ln1"),
            d,
            true,
        )?;
        norm_weights(
            &mut r,
            &mut out,
            &format!("{p}.ln_2"),
            &format!("{tl}.ln2"),
            d,
            true,
        )?;
        // Conv1D: [in, out]; the out columns are [q | k | v], head-major inside each.
        let w = r.take(&format!("{p}.attn.c_attn.weight"), &[d, 3 * d])?;
        let b = r.take(&format!("{p}.attn.c_attn.bias"), &[3 * d])?;
        for (k, name) in ["Q", "K", "V"].iter().enumerate() {
            let wk = w
                .narrow(1, k * d, d)
                .and_then(|x| x.reshape((d, h, e)))
                .and_then(|x| x.transpose(0, 1))
                .and_then(|x| x.contiguous())
                .ctx(&ctx("c_attn"))?;
            push(&mut out, format!("{tl}.attn.W_{name}"), &wk)?;
            let bk = b
                .narrow(0, k * d, d)
                .and_then(|x| x.reshape((h, e)))
                .ctx(&ctx("c_attn"))?;
            push(&mut out, format!("{tl}.attn.b_{name}"), &bk)?;
        }
        let wo = r.take(&format!("{p}.attn.c_proj.weight"), &[d, d])?;
        let wo = wo.reshape((h, e, d)).ctx(&ctx("c_proj"))?;
        push(&mut out, format!("{tl}.attn.W_O"), &wo)?;
        let bo = r.take(&format!("{p}.attn.c_proj.bias"), &[d])?;
        push(&mut out, format!("{tl}.attn.b_O"), &bo)?;
        let w_in = r.take(&format!("{p}.mlp.c_fc.weight"), &[d, m])?;
        push(&mut out, format!("{tl}.mlp.W_in"), &w_in)?;
        let b_in = r.take(&format!("{p}.mlp.c_fc.bias"), &[m])?;
        push(&mut out, format!("{tl}.mlp.b_in"), &b_in)?;
        let w_out = r.take(&format!("{p}.mlp.c_proj.weight"), &[m, d])?;
        push(&mut out, format!("{tl}.mlp.W_out"), &w_out)?;
        let b_out = r.take(&format!("{p}.mlp.c_proj.bias"), &[d])?;
        push(&mut out, format!("{tl}.mlp.b_out"), &b_out)?;
    }
    norm_weights(&mut r, &mut out, "ln_f", "ln_final", d, true)?;
    // The head: `lm_head.weight` [vocab, d] when untied (or saved anyway), else the embedding.
    unembed(
        &mut r,
        &mut out,
        "lm_head.weight",
        tied.then_some(wte),
        vocab,
        d,
    )?;
    r.finish(&["attn.bias", "attn.masked_bias"])?;
    Ok((cfg, out))
}

// ---------------------------------------------------------------------------------------------
// GPT-NeoX (Pythia)

fn neox(c: &Cfg<'_>, ck: &Checkpoint) -> Result<(ModelConfig, Named), ModelError> {
    let n_layers = c.usize("num_hidden_layers")?;
    let d = c.usize("hidden_size")?;
    let h = c.usize("num_attention_heads")?;
    if d % h != 0 {
        return Err(c.bad(
            "num_attention_heads",
            format!("{h} does not divide hidden_size {d}"),
        ));
    }
    let e = d / h;
    let m = c.usize("intermediate_size")?;
    let vocab = c.usize("vocab_size")?;
    let n_ctx = c.usize("max_position_embeddings")?;
    c.refuse_rope_scaling()?;
    c.refuse_unless(
        "use_qk_norm",
        &[Value::Bool(false)],
        "q/k normalisation is not implemented",
    )?;
    let pct = match c
        .get("rope_parameters")
        .and_then(|p| p.get("partial_rotary_factor"))
    {
        Some(v) if !v.is_null() => v.as_f64().ok_or_else(|| {
            c.bad(
                "rope_parameters.partial_rotary_factor",
                format!("`{v}` is not a number"),
            )
        })?,
        _ => c.f64_or("rotary_pct", 1.0)?,
    };
    if !(pct > 0.0 && pct <= 1.0) {
        return Err(c.bad("rotary_pct", format!("{pct} is not in (0, 1]")));
    }
    let rotary_dim = (e as f64 * pct) as usize;
    let base = c.rope("rope_theta", &["rotary_emb_base", "rope_theta"], 10_000.0)?;
    let bias = c.bool_or("attention_bias", true)?;
    let mut cfg = ModelConfig::simple(n_layers, d, h, m, vocab, n_ctx);
    cfg.act_fn = Some(c.act("hidden_act", "gelu")?);
    cfg.eps = c.f64_or("layer_norm_eps", 1e-5)?;
    cfg.parallel_attn_mlp = c.bool_or("use_parallel_residual", true)?;
    cfg.positional = Positional::Rotary(Rotary {
        dim: rotary_dim,
        base,
        adjacent_pairs: false,
        scaling_factor: 1.0,
    });
    let tied = c.bool_or("tie_word_embeddings", false)?;

    let mut r = Reader::new(ck, &["gpt_neox.", ""], "embed_in.weight");
    let mut out = Named::new();
    let w_e = r.take("embed_in.weight", &[vocab, d])?;
    push(&mut out, "embed.W_E".into(), &w_e)?;
    let ctx = |what: &str| format!("rearranging GPT-NeoX {what}");
    for l in 0..n_layers {
        let p = format!("layers.{l}");
        let tl = format!("blocks.{l}");
        block_norms(&mut r, &mut out, &p, &tl, d, true)?;
        // query_key_value [3d, d]: output rows laid out (head, q|k|v, d_head).
        let w = r.take(
            &format!("{p}.attention.query_key_value.weight"),
            &[3 * d, d],
        )?;
        let w = w.reshape((h, 3, e, d)).ctx(&ctx("query_key_value"))?;
        let b = if bias {
            Some(
                r.take(&format!("{p}.attention.query_key_value.bias"), &[3 * d])?
                    .reshape((h, 3, e))
                    .ctx(&ctx("query_key_value"))?,
            )
        } else {
            None
        };
        for (k, name) in ["Q", "K", "V"].iter().enumerate() {
            let wk = w
                .narrow(1, k, 1)
                .and_then(|x| x.squeeze(1))
                .and_then(|x| x.transpose(1, 2))
                .and_then(|x| x.contiguous())
                .ctx(&ctx("query_key_value"))?;
            push(&mut out, format!("{tl}.attn.W_{name}"), &wk)?;
            match &b {
                Some(b) => {
                    let bk = b
                        .narrow(1, k, 1)
                        .and_then(|x| x.squeeze(1))
                        .ctx(&ctx("bias"))?;
                    push(&mut out, format!("{tl}.attn.b_{name}"), &bk)?;
                }
                None => out.push((format!("{tl}.attn.b_{name}"), zeros(&[h, e]))),
            }
        }
        let wo = r.take(&format!("{p}.attention.dense.weight"), &[d, d])?;
        push(
            &mut out,
            format!("{tl}.attn.W_O"),
            &linear_out_heads(&wo, h, e, d).ctx(&ctx("dense"))?,
        )?;
        if bias {
            let bo = r.take(&format!("{p}.attention.dense.bias"), &[d])?;
            push(&mut out, format!("{tl}.attn.b_O"), &bo)?;
        } else {
            out.push((format!("{tl}.attn.b_O"), zeros(&[d])));
        }
        let w_in = r.take(&format!("{p}.mlp.dense_h_to_4h.weight"), &[m, d])?;
        push(
            &mut out,
            format!("{tl}.mlp.W_in"),
            &w_in.t().ctx(&ctx("dense_h_to_4h"))?,
        )?;
        let b_in = r.take(&format!("{p}.mlp.dense_h_to_4h.bias"), &[m])?;
        push(&mut out, format!("{tl}.mlp.b_in"), &b_in)?;
        let w_out = r.take(&format!("{p}.mlp.dense_4h_to_h.weight"), &[d, m])?;
        push(
            &mut out,
            format!("{tl}.mlp.W_out"),
            &w_out.t().ctx(&ctx("dense_4h_to_h"))?,
        )?;
        let b_out = r.take(&format!("{p}.mlp.dense_4h_to_h.bias"), &[d])?;
        push(&mut out, format!("{tl}.mlp.b_out"), &b_out)?;
    }
    norm_weights(&mut r, &mut out, "final_layer_norm", "ln_final", d, true)?;
    unembed(
        &mut r,
        &mut out,
        "embed_out.weight",
        tied.then_some(w_e),
        vocab,
        d,
    )?;
    r.finish(&[
        "attention.bias",
        "attention.masked_bias",
        "rotary_emb.inv_freq",
    ])?;
    Ok((cfg, out))
}

// ---------------------------------------------------------------------------------------------
// Llama

fn llama(c: &Cfg<'_>, ck: &Checkpoint) -> Result<(ModelConfig, Named), ModelError> {
    let n_layers = c.usize("num_hidden_layers")?;
    let d = c.usize("hidden_size")?;
    let h = c.usize("num_attention_heads")?;
    let kv = c.opt_usize("num_key_value_heads")?.unwrap_or(h);
    if h % kv != 0 {
        return Err(c.bad(
            "num_key_value_heads",
            format!("{kv} does not divide num_attention_heads {h}"),
        ));
    }
    let e = match c.opt_usize("head_dim")? {
        Some(e) => e,
        None if d % h == 0 => d / h,
        None => {
            return Err(c.bad(
                "num_attention_heads",
                format!("{h} does not divide hidden_size {d}"),
            ));
        }
    };
    let m = c.usize("intermediate_size")?;
    let vocab = c.usize("vocab_size")?;
    let n_ctx = c.usize("max_position_embeddings")?;
    c.refuse_rope_scaling()?;
    c.refuse_unless(
        "pretraining_tp",
        &[Value::from(1)],
        "tensor-parallel slicing is not implemented",
    )?;
    c.refuse_unless(
        "sliding_window",
        &[],
        "sliding-window attention is not implemented",
    )?;
    let attn_bias = c.bool_or("attention_bias", false)?;
    let mlp_bias = c.bool_or("mlp_bias", false)?;
    let base = c.rope("rope_theta", &["rope_theta"], 10_000.0)?;
    let mut cfg = ModelConfig::simple(n_layers, d, h, m, vocab, n_ctx);
    cfg.n_key_value_heads = (kv != h).then_some(kv);
    cfg.d_head = e;
    cfg.attn_scale = (e as f64).sqrt();
    cfg.act_fn = Some(c.act("hidden_act", "silu")?);
    cfg.eps = c.f64_or("rms_norm_eps", 1e-6)?;
    cfg.normalization = Normalization::Rms;
    cfg.final_rms = true;
    cfg.gated_mlp = true;
    cfg.positional = Positional::Rotary(Rotary {
        dim: e,
        base,
        adjacent_pairs: false,
        scaling_factor: 1.0,
    });
    let tied = c.bool_or("tie_word_embeddings", false)?;

    let mut r = Reader::new(ck, &["model.", ""], "embed_tokens.weight");
    let mut out = Named::new();
    let w_e = r.take("embed_tokens.weight", &[vocab, d])?;
    push(&mut out, "embed.W_E".into(), &w_e)?;
    let ctx = |what: &str| format!("rearranging Llama {what}");
    for l in 0..n_layers {
        let p = format!("layers.{l}");
        let tl = format!("blocks.{l}");
        block_norms(&mut r, &mut out, &p, &tl, d, false)?;
        for (proj, name, heads) in [("q_proj", "Q", h), ("k_proj", "K", kv), ("v_proj", "V", kv)] {
            // TransformerLens' names for grouped key/value weights (`_W_K`, ...).
            let g = if name != "Q" && cfg.n_key_value_heads.is_some() {
                "_"
            } else {
                ""
            };
            let w = r.take(&format!("{p}.self_attn.{proj}.weight"), &[heads * e, d])?;
            let w = linear_heads(&w, heads, e, d).ctx(&ctx(proj))?;
            push(&mut out, format!("{tl}.attn.{g}W_{name}"), &w)?;
            if attn_bias {
                let b = r.take(&format!("{p}.self_attn.{proj}.bias"), &[heads * e])?;
                let b = b.reshape((heads, e)).ctx(&ctx(proj))?;
                push(&mut out, format!("{tl}.attn.{g}b_{name}"), &b)?;
            } else {
                out.push((format!("{tl}.attn.{g}b_{name}"), zeros(&[heads, e])));
            }
        }
        let wo = r.take(&format!("{p}.self_attn.o_proj.weight"), &[d, h * e])?;
        push(
            &mut out,
            format!("{tl}.attn.W_O"),
            &linear_out_heads(&wo, h, e, d).ctx(&ctx("o_proj"))?,
        )?;
        if attn_bias {
            let bo = r.take(&format!("{p}.self_attn.o_proj.bias"), &[d])?;
            push(&mut out, format!("{tl}.attn.b_O"), &bo)?;
        } else {
            out.push((format!("{tl}.attn.b_O"), zeros(&[d])));
        }
        for (proj, name, shape) in [
            ("gate_proj", "W_gate", [m, d]),
            ("up_proj", "W_in", [m, d]),
            ("down_proj", "W_out", [d, m]),
        ] {
            let w = r.take(&format!("{p}.mlp.{proj}.weight"), &shape)?;
            push(
                &mut out,
                format!("{tl}.mlp.{name}"),
                &w.t().ctx(&ctx(proj))?,
            )?;
        }
        for (proj, name, len) in [("up_proj", "b_in", m), ("down_proj", "b_out", d)] {
            if mlp_bias {
                let b = r.take(&format!("{p}.mlp.{proj}.bias"), &[len])?;
                push(&mut out, format!("{tl}.mlp.{name}"), &b)?;
            } else {
                out.push((format!("{tl}.mlp.{name}"), zeros(&[len])));
            }
        }
        if mlp_bias && r.has(&format!("{p}.mlp.gate_proj.bias")) {
            return Err(ModelError::UnexpectedTensor {
                path: ck.origin.clone(),
                name: format!("{}{p}.mlp.gate_proj.bias", r.prefix),
                reason: "a bias on the gate projection is not implemented".into(),
            });
        }
    }
    norm_weights(&mut r, &mut out, "norm", "ln_final", d, false)?;
    unembed(
        &mut r,
        &mut out,
        "lm_head.weight",
        tied.then_some(w_e),
        vocab,
        d,
    )?;
    r.finish(&["rotary_emb.inv_freq"])?;
    Ok((cfg, out))
}
