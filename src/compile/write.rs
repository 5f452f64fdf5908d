//! Writing a model directory in the runtime's format: `model.safetensors` (TransformerLens names
//! and shapes, f32), `config.json` (HookedTransformerConfig fields), `congruity.json` (the
//! sidecar: residual labels, input encoding, output decoding, provenance) and `compile.json`
//! (where every variable of the interpretation was placed).
//!
//! The directory is written under a temporary name beside the destination and renamed into
//! place, so an interrupted run never leaves a half-written model.

use std::path::Path;

use safetensors::Dtype;
use serde_json::{Value as Json, json};

use super::error::CompileError;
use super::scalar::to_f64;
use super::weights::{Mat, Weights};
use super::{IoSpec, OutputSpec, Provenance, value_json};

/// The sidecar's `format` value.
pub const SIDECAR_FORMAT: &str = "congruity-model/1";

/// An f32 tensor encoded for safetensors (little-endian bytes). The runtime's writer
/// (`model::io::write_safetensors`) encodes with it too: this stage comes first, so it owns the
/// one encoder both use.
pub struct F32Tensor {
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl F32Tensor {
    pub fn new(shape: Vec<usize>, values: impl IntoIterator<Item = f32>) -> Self {
        let values = values.into_iter();
        let mut data = Vec::with_capacity(values.size_hint().0 * 4);
        for x in values {
            data.extend_from_slice(&x.to_le_bytes());
        }
        F32Tensor { shape, data }
    }
}

impl safetensors::View for &F32Tensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// The safetensors file of named f32 tensors, as bytes.
pub fn safetensors_bytes(
    tensors: &[(String, F32Tensor)],
) -> Result<Vec<u8>, safetensors::SafeTensorError> {
    safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None)
}

fn tensor(shape: Vec<usize>, values: impl IntoIterator<Item = f64>) -> F32Tensor {
    F32Tensor::new(shape, values.into_iter().map(|x| x as f32))
}

fn mat(m: &Mat) -> F32Tensor {
    tensor(vec![m.rows, m.cols], m.data.iter().copied())
}

/// The TransformerLens tensors of a model, by name.
fn tensors(w: &Weights) -> Vec<(String, F32Tensor)> {
    let mut out = vec![
        ("embed.W_E".to_string(), mat(&w.w_e)),
        ("pos_embed.W_pos".to_string(), mat(&w.w_pos)),
    ];
    for (l, layer) in w.layers.iter().enumerate() {
        let p = |n: &str| format!("blocks.{l}.{n}");
        let (h, dm, dh) = (w.n_heads, w.d_model, w.d_head);
        let stack = |f: &dyn Fn(&super::weights::Head) -> &Mat, rows: usize, cols: usize| {
            tensor(
                vec![h, rows, cols],
                layer.heads.iter().flat_map(|hd| f(hd).data.clone()),
            )
        };
        let bias = |f: &dyn Fn(&super::weights::Head) -> &Vec<f64>| {
            tensor(vec![h, dh], layer.heads.iter().flat_map(|hd| f(hd).clone()))
        };
        out.push((p("attn.W_Q"), stack(&|hd| &hd.w_q, dm, dh)));
        out.push((p("attn.W_K"), stack(&|hd| &hd.w_k, dm, dh)));
        out.push((p("attn.W_V"), stack(&|hd| &hd.w_v, dm, dh)));
        out.push((p("attn.W_O"), stack(&|hd| &hd.w_o, dh, dm)));
        out.push((p("attn.b_Q"), bias(&|hd| &hd.b_q)));
        out.push((p("attn.b_K"), bias(&|hd| &hd.b_k)));
        out.push((p("attn.b_V"), bias(&|hd| &hd.b_v)));
        out.push((p("attn.b_O"), tensor(vec![dm], layer.b_o.iter().copied())));
        out.push((p("mlp.W_in"), mat(&layer.w_in)));
        out.push((
            p("mlp.b_in"),
            tensor(vec![w.d_mlp], layer.b_in.iter().copied()),
        ));
        out.push((p("mlp.W_out"), mat(&layer.w_out)));
        out.push((
            p("mlp.b_out"),
            tensor(vec![dm], layer.b_out.iter().copied()),
        ));
    }
    out.push(("unembed.W_U".to_string(), mat(&w.w_u)));
    out.push((
        "unembed.b_U".to_string(),
        tensor(vec![w.d_vocab_out], w.b_u.iter().copied()),
    ));
    out
}

/// `config.json`: HookedTransformerConfig fields.
pub fn config_json(w: &Weights, model_name: &str) -> Json {
    json!({
        "model_name": model_name,
        "n_layers": w.n_layers(),
        "d_model": w.d_model,
        "n_ctx": w.n_ctx,
        "d_head": w.d_head,
        "n_heads": w.n_heads,
        "d_mlp": w.d_mlp,
        "d_vocab": w.d_vocab,
        "d_vocab_out": w.d_vocab_out,
        "act_fn": "relu",
        "normalization_type": null,
        "attention_dir": "bidirectional",
        "positional_embedding_type": "standard",
        // Scores are q·k as compiled (the coldness is in W_Q): no 1/sqrt(d_head).
        "use_attn_scale": false,
        "attn_only": false,
    })
}

/// `congruity.json`.
pub fn sidecar_json(labels: &[String], io: &IoSpec, provenance: &Provenance) -> Json {
    let output = match &io.output {
        OutputSpec::Categorical { decoding } => json!({
            "encoding": "categorical",
            "decoding": decoding.iter().map(value_json).collect::<Vec<_>>(),
        }),
        OutputSpec::Numerical { values } => json!({
            "encoding": "numerical",
            "values": values.iter().map(|r| to_f64(*r)).collect::<Vec<_>>(),
        }),
    };
    json!({
        "format": SIDECAR_FORMAT,
        "residual_labels": labels,
        "input": {"bos": io.bos, "tokens": io.tokens},
        "output": output,
        "provenance": provenance,
    })
}

/// Everything that goes into one model directory.
pub struct ModelFiles<'a> {
    pub weights: &'a Weights,
    pub residual_labels: &'a [String],
    pub io: &'a IoSpec,
    pub provenance: &'a Provenance,
    /// `compile.json`: placement of variables, families applied, figures.
    pub report: Json,
    /// Extra f32 tensors written to `basis.safetensors` when non-empty (e.g. the labelled
    /// feature directions of a rotated residual stream).
    pub basis: Vec<(String, Mat)>,
}

pub(crate) fn json_bytes(v: &Json) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s.into_bytes()
}

/// Builds a directory with `fill` and moves it to `dir` as a whole (see
/// [`crate::files::replace_dir`]).
pub(crate) fn replace_dir_atomically(
    dir: &Path,
    fill: impl FnOnce(&Path) -> Result<(), CompileError>,
) -> Result<(), CompileError> {
    crate::files::replace_dir(dir, fill)
}

/// Writes a model directory atomically (see [`replace_dir_atomically`]).
pub fn write_model_dir(files: &ModelFiles, dir: &Path) -> Result<(), CompileError> {
    replace_dir_atomically(dir, |tmp| {
        let bytes = safetensors_bytes(&tensors(files.weights))
            .map_err(|e| CompileError::write(tmp.join("model.safetensors"), e))?;
        let put = |name: &str, bytes: &[u8]| {
            std::fs::write(tmp.join(name), bytes)
                .map_err(|e| CompileError::write(dir.join(name), e))
        };
        put("model.safetensors", &bytes)?;
        let model_name = format!("congruity-{}", files.provenance.program);
        put(
            "config.json",
            &json_bytes(&config_json(files.weights, &model_name)),
        )?;
        put(
            "congruity.json",
            &json_bytes(&sidecar_json(
                files.residual_labels,
                files.io,
                files.provenance,
            )),
        )?;
        put("compile.json", &json_bytes(&files.report))?;
        if !files.basis.is_empty() {
            let bt: Vec<(String, F32Tensor)> = files
                .basis
                .iter()
                .map(|(n, m)| (n.clone(), mat(m)))
                .collect();
            let bytes = safetensors_bytes(&bt)
                .map_err(|e| CompileError::write(tmp.join("basis.safetensors"), e))?;
            put("basis.safetensors", &bytes)?;
        }
        Ok(())
    })
}
