//! Import of tracr-compiled models (haiku parameters + `meta.json` + `residual_labels.json`)
//! into the TransformerLens layout.
//!
//! tracr's compiled transformer is a TransformerLens model with: no normalization, relu MLPs,
//! standard (learned) positions, attention scaled by sqrt(key_size), bidirectional attention
//! unless compiled causal, and no unembedding bias. Its haiku attention weights are
//! `[D, H*key_size]` with head h in columns `h*key_size..(h+1)*key_size`; they are split into
//! TransformerLens' `[H, D, key_size]`. The input is `[BOS] + tokens`, and the answer is read
//! at every position after BOS: argmax over output rows (categorical) or the single output
//! value (numerical).

use std::path::Path;

use candle_core::Device;
use serde_json::{Value, json};

use super::config::{AttentionDir, ModelConfig, Normalization};
use super::error::ModelError;
use super::io::{HostTensor, NamedTensors, read_json};
use super::sidecar::{InputSpec, OutputSpec, Sidecar};
use super::transformer::Transformer;
use super::weights::Weights;
use crate::artifact::tl::{self, BlockParam};

/// The tracr model shape, from `meta.json:model`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracrShape {
    pub num_layers: usize,
    pub num_heads: usize,
    pub key_size: usize,
    pub mlp_hidden_size: usize,
    pub residual_width: usize,
    pub n_positions: usize,
    pub input_vocab_size: usize,
    pub output_width: usize,
}

fn meta_err(path: &Path, field: &str, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidConfig {
        path: path.to_path_buf(),
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn meta_usize(meta: &Value, path: &Path, field: &str) -> Result<usize, ModelError> {
    meta["model"][field]
        .as_u64()
        .filter(|&n| n > 0)
        .map(|n| n as usize)
        .ok_or_else(|| {
            meta_err(
                path,
                &format!("model.{field}"),
                "missing or not a positive integer",
            )
        })
}

/// A JSON key or value as a token symbol: strings as they are, other values in JSON form.
fn symbol(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Loads a tracr fixture directory into a runtime model and its sidecar.
pub fn load_tracr(dir: &Path, device: &Device) -> Result<(Transformer, Sidecar), ModelError> {
    let meta_path = dir.join("meta.json");
    let meta: Value = read_json(&meta_path)?;
    let mp = meta_path.as_path();

    let shape = read_shape(&meta, mp)?;
    let causal = meta["causal"].as_bool().unwrap_or(false);

    // The sizes that tables below are allocated by are checked against the weights first.
    let weights_path = dir.join("weights.safetensors");
    let haiku = NamedTensors::read(&weights_path)?;
    check_sizes(&haiku, &shape, mp, &weights_path)?;

    let tokens = input_tokens(&meta, mp, &shape)?;
    let bos = meta["compiler_bos"].as_str().map(str::to_string);

    let output = output_spec(&meta, mp, &shape)?;

    let residual_labels: Vec<String> = read_json(&dir.join("residual_labels.json"))?;

    let config = tracr_config(&shape, causal);
    let named = to_transformer_lens(&haiku, &shape)?;
    let weights = Weights::from_named(&config, &named, device)?;
    let transformer = Transformer::new(config, weights)?;

    let sidecar = Sidecar {
        residual_labels,
        provenance: provenance(&meta),
        ..Sidecar::new(InputSpec { bos, tokens }, output)
    };
    sidecar.validate(transformer.config(), &meta_path)?;
    Ok((transformer, sidecar))
}

/// The sizes `meta.json` states, and the model options this runtime refuses (layer norm,
/// activations other than relu).
fn read_shape(meta: &Value, mp: &Path) -> Result<TracrShape, ModelError> {
    let shape = TracrShape {
        num_layers: meta_usize(meta, mp, "num_layers")?,
        num_heads: meta_usize(meta, mp, "num_heads")?,
        key_size: meta_usize(meta, mp, "key_size")?,
        mlp_hidden_size: meta_usize(meta, mp, "mlp_hidden_size")?,
        residual_width: meta_usize(meta, mp, "residual_width")?,
        n_positions: meta_usize(meta, mp, "n_positions")?,
        input_vocab_size: meta_usize(meta, mp, "input_vocab_size")?,
        output_width: meta_usize(meta, mp, "output_width")?,
    };
    if meta["model"]["layer_norm"].as_bool().unwrap_or(false) {
        return Err(ModelError::UnsupportedConfig {
            path: mp.to_path_buf(),
            field: "model.layer_norm".into(),
            value: "true".into(),
            reason: "tracr models compiled with layer norm are not supported".into(),
        });
    }
    if let Some(act) = meta["model"]["activation"].as_str()
        && act != "relu"
    {
        return Err(ModelError::UnsupportedConfig {
            path: mp.to_path_buf(),
            field: "model.activation".into(),
            value: json!(act).to_string(),
            reason: "tracr MLPs are relu".into(),
        });
    }
    Ok(shape)
}

/// Checks every size the tables are allocated by against the weights actually held.
fn check_sizes(
    haiku: &NamedTensors,
    shape: &TracrShape,
    mp: &Path,
    weights_path: &Path,
) -> Result<(), ModelError> {
    let heads_width = shape.num_heads.checked_mul(shape.key_size).ok_or_else(|| {
        meta_err(
            mp,
            "model.num_heads",
            format!(
                "num_heads × key_size ({} × {}) overflows",
                shape.num_heads, shape.key_size
            ),
        )
    })?;
    for (tensor, axis, field, value) in [
        (
            "token_embed/embeddings",
            0,
            "input_vocab_size",
            shape.input_vocab_size,
        ),
        (
            "token_embed/embeddings",
            1,
            "residual_width",
            shape.residual_width,
        ),
        ("pos_embed/embeddings", 0, "n_positions", shape.n_positions),
        ("unembed/w", 1, "output_width", shape.output_width),
        (
            "transformer/layer_0/attn/query/w",
            1,
            "num_heads × key_size",
            heads_width,
        ),
    ] {
        let held = haiku.shape(tensor).and_then(|s| s.get(axis).copied());
        if held != Some(value) {
            return Err(meta_err(
                mp,
                &format!("model.{field}"),
                match held {
                    Some(n) => format!(
                        "is {value}, but `{tensor}` in {} has {n} along axis {axis}",
                        weights_path.display()
                    ),
                    None => format!(
                        "is {value}, but {} has no `{tensor}` with an axis {axis}",
                        weights_path.display()
                    ),
                },
            ));
        }
    }
    Ok(())
}

/// The input vocabulary, id → symbol: from `input_encoding_keys_typed` when present (keeps
/// integer tokens as integers), else `input_encoding`.
fn input_tokens(meta: &Value, mp: &Path, shape: &TracrShape) -> Result<Vec<String>, ModelError> {
    let mut tokens: Vec<Option<String>> = vec![None; shape.input_vocab_size];
    let pairs: Vec<(String, u64)> = match meta["input_encoding_keys_typed"].as_array() {
        Some(list) => list
            .iter()
            .map(
                |pair| match (pair.get(0), pair.get(1).and_then(Value::as_u64)) {
                    (Some(k), Some(id)) => Ok((symbol(k), id)),
                    _ => Err(meta_err(
                        mp,
                        "input_encoding_keys_typed",
                        "expected [token, id] pairs",
                    )),
                },
            )
            .collect::<Result<_, _>>()?,
        None => meta["input_encoding"]
            .as_object()
            .ok_or_else(|| meta_err(mp, "input_encoding", "missing or not an object"))?
            .iter()
            .map(|(k, v)| {
                v.as_u64().map(|id| (k.clone(), id)).ok_or_else(|| {
                    meta_err(
                        mp,
                        "input_encoding",
                        format!("id of `{k}` is not an integer"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    for (tok, id) in pairs {
        let slot = tokens
            .get_mut(id as usize)
            .ok_or_else(|| meta_err(mp, "input_encoding", format!("id {id} ≥ input_vocab_size")))?;
        *slot = Some(tok);
    }
    tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.ok_or_else(|| meta_err(mp, "input_encoding", format!("no token has id {i}")))
        })
        .collect::<Result<_, _>>()
}

/// How the output is read: `output_decoding` rows for a categorical output.
fn output_spec(meta: &Value, mp: &Path, shape: &TracrShape) -> Result<OutputSpec, ModelError> {
    Ok(match meta["output_encoding"].as_str() {
        Some("categorical") => {
            let table = meta["output_decoding"].as_object().ok_or_else(|| {
                meta_err(mp, "output_decoding", "missing for a categorical output")
            })?;
            let mut decoding = vec![Value::Null; shape.output_width];
            for (k, v) in table {
                let i: usize = k
                    .parse()
                    .ok()
                    .filter(|&i| i < shape.output_width)
                    .ok_or_else(|| {
                        meta_err(
                            mp,
                            "output_decoding",
                            format!("key `{k}` is not an output row"),
                        )
                    })?;
                decoding[i] = v.clone();
            }
            OutputSpec::Categorical { decoding }
        }
        Some("numerical") => OutputSpec::numerical(),
        other => {
            return Err(ModelError::UnsupportedConfig {
                path: mp.to_path_buf(),
                field: "output_encoding".into(),
                value: json!(other).to_string(),
                reason: "expected categorical or numerical".into(),
            });
        }
    })
}

/// What the sidecar records of where a tracr model came from.
fn provenance(meta: &Value) -> Value {
    let mut provenance = serde_json::Map::new();
    provenance.insert("family".into(), json!("tracr"));
    for key in [
        "program",
        "tracr_call",
        "versions",
        "vocab",
        "max_seq_len",
        "output_label",
    ] {
        if let Some(v) = meta.get(key) {
            provenance.insert(key.into(), v.clone());
        }
    }
    Value::Object(provenance)
}

/// The TransformerLens config equivalent to a tracr model.
pub fn tracr_config(s: &TracrShape, causal: bool) -> ModelConfig {
    ModelConfig {
        d_head: s.key_size,
        d_vocab_out: s.output_width,
        normalization: Normalization::None,
        attention_dir: if causal {
            AttentionDir::Causal
        } else {
            AttentionDir::Bidirectional
        },
        attn_scale: (s.key_size as f64).sqrt(),
        ..ModelConfig::simple(
            s.num_layers,
            s.residual_width,
            s.num_heads,
            s.mlp_hidden_size,
            s.input_vocab_size,
            s.n_positions,
        )
    }
}

/// `t`'s data under a new shape of the same size.
fn reshaped(t: &HostTensor, shape: Vec<usize>) -> HostTensor {
    HostTensor {
        shape,
        data: t.data.clone(),
    }
}

/// Renames and reshapes haiku parameters into TransformerLens parameters.
fn to_transformer_lens(haiku: &NamedTensors, s: &TracrShape) -> Result<NamedTensors, ModelError> {
    let (d, h, ks, m) = (s.residual_width, s.num_heads, s.key_size, s.mlp_hidden_size);
    let mut out: Vec<(String, HostTensor)> = Vec::new();
    let get =
        |name: &str, shape: &[usize]| haiku.get(name, Some(shape), " (tracr haiku parameter)");

    out.push((
        tl::EMBED_W_E.into(),
        get("token_embed/embeddings", &[s.input_vocab_size, d])?.clone(),
    ));
    out.push((
        tl::POS_EMBED_W_POS.into(),
        get("pos_embed/embeddings", &[s.n_positions, d])?.clone(),
    ));
    for l in 0..s.num_layers {
        let hk = format!("transformer/layer_{l}");
        for (proj, (wp, bp)) in [
            ("query", (BlockParam::WQ, BlockParam::BQ)),
            ("key", (BlockParam::WK, BlockParam::BK)),
            ("value", (BlockParam::WV, BlockParam::BV)),
        ] {
            let w = get(&format!("{hk}/attn/{proj}/w"), &[d, h * ks])?;
            // [D, H*ks] -> [H, D, ks]
            let mut data = vec![0f32; h * d * ks];
            for row in 0..d {
                for head in 0..h {
                    for e in 0..ks {
                        data[(head * d + row) * ks + e] = w.data[row * h * ks + head * ks + e];
                    }
                }
            }
            out.push((
                tl::block(l, wp),
                HostTensor {
                    shape: vec![h, d, ks],
                    data,
                },
            ));
            let b = get(&format!("{hk}/attn/{proj}/b"), &[h * ks])?;
            out.push((tl::block(l, bp), reshaped(b, vec![h, ks])));
        }
        // [H*ks, D] is already head-major: reshape to [H, ks, D].
        let w_o = get(&format!("{hk}/attn/linear/w"), &[h * ks, d])?;
        out.push((tl::block(l, BlockParam::WO), reshaped(w_o, vec![h, ks, d])));
        // The rest has the same layout in both: only the name changes.
        for (tl_name, haiku_name, shape) in [
            (BlockParam::BO, "attn/linear/b", vec![d]),
            (BlockParam::WIn, "mlp/linear_1/w", vec![d, m]),
            (BlockParam::BIn, "mlp/linear_1/b", vec![m]),
            (BlockParam::WOut, "mlp/linear_2/w", vec![m, d]),
            (BlockParam::BOut, "mlp/linear_2/b", vec![d]),
        ] {
            out.push((
                tl::block(l, tl_name),
                get(&format!("{hk}/{haiku_name}"), &shape)?.clone(),
            ));
        }
    }
    out.push((
        tl::UNEMBED_W_U.into(),
        get("unembed/w", &[d, s.output_width])?.clone(),
    ));
    out.push((
        tl::UNEMBED_B_U.into(),
        HostTensor {
            shape: vec![s.output_width],
            data: vec![0.0; s.output_width],
        },
    ));
    Ok(NamedTensors::from_host(&haiku.path, out))
}
