//! Writing a model directory in the runtime's format: `model.safetensors` (TransformerLens names
//! and shapes, f32), `config.json` (HookedTransformerConfig fields), `congruity.json` (the
//! sidecar: residual labels, input encoding, output decoding, provenance) and `compile.json`
//! (where every variable of the interpretation was placed).
//!
//! The directory is written under a temporary name beside the destination and renamed into
//! place, so an interrupted run never leaves a half-written model.

use std::path::Path;

use serde_json::{Value as Json, json};

use super::error::CompileError;
use super::weights::{Mat, Weights};
use super::{Compiled, Provenance};
use crate::artifact::tl::{self, BlockParam};
use crate::artifact::{self, F32Tensor, InputSpec, OutputSpec, Sidecar, safetensors_bytes};

/// One named f32 tensor of a model, before it is encoded (the writer encodes it for safetensors;
/// the chain runner hands it to the runtime in memory).
pub struct NamedF32 {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

fn tensor(name: String, shape: Vec<usize>, values: impl IntoIterator<Item = f64>) -> NamedF32 {
    NamedF32 {
        name,
        shape,
        data: values.into_iter().map(|x| x as f32).collect(),
    }
}

fn mat(name: String, m: &Mat) -> NamedF32 {
    tensor(name, vec![m.rows, m.cols], m.data.iter().copied())
}

/// The TransformerLens tensors of a compiled model, by name, in the order they are written.
pub fn transformer_lens_tensors(w: &Weights) -> Vec<NamedF32> {
    let mut out = vec![
        mat(tl::EMBED_W_E.into(), &w.w_e),
        mat(tl::POS_EMBED_W_POS.into(), &w.w_pos),
    ];
    let (h, dm, dh) = (w.n_heads, w.d_model, w.d_head);
    for (l, layer) in w.layers.iter().enumerate() {
        let heads = |f: &dyn Fn(&super::weights::Head) -> &[f64]| -> Vec<f64> {
            layer.heads.iter().flat_map(|hd| f(hd).to_vec()).collect()
        };
        for p in BlockParam::ATTN_MLP {
            let name = tl::block(l, p);
            out.push(match p {
                BlockParam::WQ => tensor(name, vec![h, dm, dh], heads(&|hd| &hd.w_q.data)),
                BlockParam::WK => tensor(name, vec![h, dm, dh], heads(&|hd| &hd.w_k.data)),
                BlockParam::WV => tensor(name, vec![h, dm, dh], heads(&|hd| &hd.w_v.data)),
                BlockParam::WO => tensor(name, vec![h, dh, dm], heads(&|hd| &hd.w_o.data)),
                BlockParam::BQ => tensor(name, vec![h, dh], heads(&|hd| &hd.b_q)),
                BlockParam::BK => tensor(name, vec![h, dh], heads(&|hd| &hd.b_k)),
                BlockParam::BV => tensor(name, vec![h, dh], heads(&|hd| &hd.b_v)),
                BlockParam::BO => tensor(name, vec![dm], layer.b_o.iter().copied()),
                BlockParam::WIn => mat(name, &layer.w_in),
                BlockParam::BIn => tensor(name, vec![w.d_mlp], layer.b_in.iter().copied()),
                BlockParam::WOut => mat(name, &layer.w_out),
                BlockParam::BOut => tensor(name, vec![dm], layer.b_out.iter().copied()),
                // Compiled MLPs are not gated (ATTN_MLP does not list it).
                BlockParam::WGate => continue,
            });
        }
    }
    out.push(mat(tl::UNEMBED_W_U.into(), &w.w_u));
    out.push(tensor(
        tl::UNEMBED_B_U.into(),
        vec![w.d_vocab_out],
        w.b_u.iter().copied(),
    ));
    out
}

fn encoded(tensors: Vec<NamedF32>) -> Vec<(String, F32Tensor)> {
    tensors
        .into_iter()
        .map(|t| (t.name, F32Tensor::new(t.shape, t.data)))
        .collect()
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

/// The sidecar of a compiled model: its encodings (exact values kept), residual labels and
/// provenance.
pub fn sidecar(
    labels: &[String],
    input: &InputSpec,
    output: &OutputSpec,
    provenance: &Provenance,
) -> Sidecar {
    Sidecar {
        residual_labels: labels.to_vec(),
        provenance: serde_json::to_value(provenance).unwrap_or(Json::Null),
        ..Sidecar::new(input.clone(), output.clone())
    }
}

/// Everything that goes into one model directory.
pub struct ModelFiles<'a> {
    pub weights: &'a Weights,
    pub residual_labels: &'a [String],
    pub input: &'a InputSpec,
    pub output: &'a OutputSpec,
    pub provenance: &'a Provenance,
    /// `compile.json`: placement of variables, families applied, figures.
    pub report: Json,
    /// Extra f32 tensors written to `basis.safetensors` when non-empty (e.g. the labelled
    /// feature directions of a rotated residual stream).
    pub basis: Vec<(String, Mat)>,
}

pub(crate) fn json_bytes(v: &impl serde::Serialize) -> Vec<u8> {
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

/// Writes a model directory atomically (see [`crate::files::replace_dir`]).
pub fn write_model_dir(files: &ModelFiles, dir: &Path) -> Result<(), CompileError> {
    replace_dir_atomically(dir, |tmp| {
        let bytes = safetensors_bytes(&encoded(transformer_lens_tensors(files.weights)))
            .map_err(|e| CompileError::write(tmp.join(artifact::MODEL_FILE), e))?;
        let put = |name: &str, bytes: &[u8]| {
            std::fs::write(tmp.join(name), bytes)
                .map_err(|e| CompileError::write(dir.join(name), e))
        };
        put(artifact::MODEL_FILE, &bytes)?;
        let model_name = format!("congruity-{}", files.provenance.program);
        put(
            artifact::CONFIG_FILE,
            &json_bytes(&config_json(files.weights, &model_name)),
        )?;
        let sidecar = sidecar(
            files.residual_labels,
            files.input,
            files.output,
            files.provenance,
        );
        put(artifact::SIDECAR_FILE, &json_bytes(&sidecar))?;
        put(artifact::COMPILE_REPORT_FILE, &json_bytes(&files.report))?;
        if !files.basis.is_empty() {
            let basis = files.basis.iter().map(|(n, m)| mat(n.clone(), m)).collect();
            let bytes = safetensors_bytes(&encoded(basis))
                .map_err(|e| CompileError::write(tmp.join(artifact::BASIS_FILE), e))?;
            put(artifact::BASIS_FILE, &bytes)?;
        }
        Ok(())
    })
}

impl Compiled {
    /// The sidecar its model directory holds (the same one, in memory).
    pub fn sidecar(&self) -> Sidecar {
        sidecar(
            &self.residual_labels,
            &self.input,
            &self.output,
            &self.provenance,
        )
    }

    /// Writes the model directory (atomically).
    pub fn write(&self, dir: &Path) -> Result<(), CompileError> {
        write_model_dir(
            &ModelFiles {
                weights: &self.weights,
                residual_labels: &self.residual_labels,
                input: &self.input,
                output: &self.output,
                provenance: &self.provenance,
                report: self.report_json(),
                basis: Vec::new(),
            },
            dir,
        )
    }
}
