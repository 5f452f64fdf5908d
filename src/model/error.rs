//! The one error type of the model stage. Every variant names what was being read (file, tensor,
//! config field, token) and what was expected, so a researcher can fix the input without reading
//! the source.

use std::path::PathBuf;

use thiserror::Error;

/// Formats a shape the way PyTorch users read them: `[3, 12, 64]`.
pub(crate) fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// Everything that can go wrong while loading or running a model.
#[derive(Debug, Error, miette::Diagnostic)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    #[diagnostic(code(congruity::model::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    File(#[from] crate::files::FileError),

    #[error("cannot write {path}: {reason}")]
    #[diagnostic(code(congruity::model::write))]
    Write { path: PathBuf, reason: String },

    #[error("{path} is not valid JSON: {source}")]
    #[diagnostic(code(congruity::model::json))]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("{path} is not a readable safetensors file ({reason})")]
    #[diagnostic(
        code(congruity::model::safetensors),
        help("the file may be truncated or corrupt; re-export it with safetensors' save_file")
    )]
    Safetensors { path: PathBuf, reason: String },

    #[error("{path} has no tensor `{name}`{hint}")]
    #[diagnostic(code(congruity::model::missing_tensor))]
    MissingTensor {
        path: PathBuf,
        name: String,
        /// Extra context, e.g. which config field made the tensor necessary.
        hint: String,
    },

    #[error("{path}: tensor `{name}` has shape {found}, expected {expected}", found = fmt_shape(found), expected = fmt_shape(expected))]
    #[diagnostic(code(congruity::model::wrong_shape))]
    WrongShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    #[error(
        "{path}: tensor `{name}` has dtype {dtype}, expected a floating-point dtype (F16, BF16, F32, F64)"
    )]
    #[diagnostic(code(congruity::model::wrong_dtype))]
    WrongDtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },

    #[error("{path}: unexpected tensor `{name}`: {reason}")]
    #[diagnostic(
        code(congruity::model::unexpected_tensor),
        help("the checkpoint and config.json disagree; check the config fields named above")
    )]
    UnexpectedTensor {
        path: PathBuf,
        name: String,
        reason: String,
    },

    #[error("{path}: config field `{field}` = {value} is not supported: {reason}")]
    #[diagnostic(code(congruity::model::unsupported_config))]
    UnsupportedConfig {
        path: PathBuf,
        field: String,
        value: String,
        reason: String,
    },

    #[error("{path}: config field `{field}` is invalid: {reason}")]
    #[diagnostic(code(congruity::model::invalid_config))]
    InvalidConfig {
        path: PathBuf,
        field: String,
        reason: String,
    },

    #[error("{path}: {reason}")]
    #[diagnostic(code(congruity::model::sidecar))]
    Sidecar { path: PathBuf, reason: String },

    #[error("{dir} is not a model directory: {reason}")]
    #[diagnostic(
        code(congruity::model::unknown_format),
        help(
            "expected either model.safetensors + config.json (TransformerLens, optional congruity.json) \
             or weights.safetensors + residual_labels.json + meta.json (tracr)"
        )
    )]
    UnknownFormat { dir: PathBuf, reason: String },
    #[error(
        "{} is an intervened implementation (its {} patches sites from corrupted inputs): it runs patched only in `congruity compare` (--models or --pool); run its base model instead",
        dir.display(),
        crate::artifact::INTERVENTION_FILE
    )]
    #[diagnostic(code(congruity::model::intervened))]
    Intervened { dir: PathBuf },

    #[error(
        "token id {id} at batch {batch}, position {pos} is out of range: the model has d_vocab = {d_vocab}"
    )]
    #[diagnostic(code(congruity::model::token_out_of_range))]
    TokenOutOfRange {
        batch: usize,
        pos: usize,
        id: u64,
        d_vocab: usize,
    },

    #[error("sequence length {len} is longer than the model's context n_ctx = {n_ctx}")]
    #[diagnostic(code(congruity::model::sequence_too_long))]
    SequenceTooLong { len: usize, n_ctx: usize },

    #[error("invalid token batch: {0}")]
    #[diagnostic(code(congruity::model::tokens))]
    Tokens(String),

    #[error("unknown token `{token}` in the input; the model's vocabulary is {vocab}")]
    #[diagnostic(code(congruity::model::unknown_token))]
    UnknownToken { token: String, vocab: String },

    #[error("`{name}` is not a TransformerLens hook point name{hint}")]
    #[diagnostic(
        code(congruity::model::unknown_hook),
        help(
            "hook names look like `hook_embed`, `blocks.0.attn.hook_z`, `ln_final.hook_normalized`"
        )
    )]
    UnknownHook { name: String, hint: String },

    #[error("hook point `{hook}` does not exist in this model: {reason}")]
    #[diagnostic(code(congruity::model::absent_hook))]
    AbsentHook { hook: String, reason: String },

    #[error("site `{site}` does not exist in this model ({shape}): {reason}")]
    #[diagnostic(code(congruity::model::absent_site))]
    AbsentSite {
        site: String,
        /// The model's shape in words: layers, heads, widths.
        shape: String,
        reason: String,
    },

    #[error("hook pattern `{pattern}` {reason}")]
    #[diagnostic(code(congruity::model::hook_pattern))]
    HookPattern { pattern: String, reason: String },

    #[error("intervention at `{hook}`: {reason}")]
    #[diagnostic(code(congruity::model::intervention))]
    Intervention { hook: String, reason: String },

    #[error("the model cannot decode its output: {0}")]
    #[diagnostic(code(congruity::model::decode))]
    Decode(String),

    #[error("device: {0}")]
    #[diagnostic(code(congruity::model::device))]
    Device(String),

    #[error("{}: {reason}", path.display())]
    #[diagnostic(
        code(congruity::model::tokenizer),
        help(
            "text input needs the checkpoint's tokenizer.json (HuggingFace tokenizers); token ids work without one"
        )
    )]
    Tokenizer { path: PathBuf, reason: String },

    #[error("tensor computation failed while {context}: {source}")]
    #[diagnostic(code(congruity::model::compute))]
    Compute {
        context: String,
        #[source]
        source: candle_core::Error,
    },
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Adds a "while ..." context to candle errors, which otherwise only name the op.
pub(crate) trait ComputeContext<T> {
    fn ctx(self, context: &str) -> Result<T, ModelError>;
}

impl<T> ComputeContext<T> for Result<T, candle_core::Error> {
    fn ctx(self, context: &str) -> Result<T, ModelError> {
        self.map_err(|source| ModelError::Compute {
            context: context.to_string(),
            source,
        })
    }
}

impl From<crate::hooks::UnknownHook> for ModelError {
    fn from(e: crate::hooks::UnknownHook) -> Self {
        ModelError::UnknownHook {
            name: e.name,
            hint: e.hint,
        }
    }
}
