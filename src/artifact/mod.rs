//! The model artifact: what a model directory holds, defined once. The compiler and the sampler
//! write it, the runtime reads it, the chain runner uses it in memory; none of them spells a file
//! name, a TransformerLens parameter name or the sidecar's JSON form on its own.
//!
//! A model directory:
//!
//! | file | contents |
//! |---|---|
//! | [`MODEL_FILE`] | the weights, f32, TransformerLens names ([`tl`]) and shapes |
//! | [`CONFIG_FILE`] | HookedTransformerConfig fields |
//! | [`SIDECAR_FILE`] | the [`Sidecar`]: tokens, output decoding (exact values kept), residual labels, provenance |
//! | [`COMPILE_REPORT_FILE`] | written by the compiler: where every variable was placed |
//! | [`BASIS_FILE`] | optional labelled feature directions |
//!
//! Values cross JSON through one codec ([`value`]), which keeps rationals exact (`"1/3"`).

pub mod sidecar;
pub mod tensors;
pub mod tl;
pub mod value;

pub use sidecar::{
    ExactNumber, FormatError, InputSpec, OutputSpec, SIDECAR_FILE, SIDECAR_FORMAT,
    SIDECAR_FORMAT_V1, Sidecar, SidecarVersion,
};
pub use tensors::{F32Tensor, safetensors_bytes};

/// The weights of a model directory.
pub const MODEL_FILE: &str = "model.safetensors";
/// Beside a model's files, it makes the directory an intervened implementation (see
/// `experiment::intervened`): the model with some sites patched from corrupted inputs.
pub const INTERVENTION_FILE: &str = "intervention.json";
/// The HookedTransformerConfig fields of a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// The compiler's placement report.
pub const COMPILE_REPORT_FILE: &str = "compile.json";
/// Labelled feature directions, when a sampler rotated the residual stream.
pub const BASIS_FILE: &str = "basis.safetensors";
