//! Text in, for checkpoints that ship a HuggingFace `tokenizer.json`: encoded with the
//! `tokenizers` crate, HuggingFace's own implementation, so ids are exactly what transformers
//! would feed the model.

use std::path::{Path, PathBuf};

use super::error::ModelError;

/// The tokenizer file of a HuggingFace checkpoint directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// A checkpoint's tokenizer.
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl TextTokenizer {
    /// Reads `dir/tokenizer.json`.
    pub fn from_dir(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join(TOKENIZER_FILE);
        if !path.is_file() {
            return Err(ModelError::Tokenizer {
                path,
                reason: "missing: this model directory has no tokenizer".into(),
            });
        }
        let inner = tokenizers::Tokenizer::from_file(&path).map_err(|e| ModelError::Tokenizer {
            path: path.clone(),
            reason: format!("cannot be read: {e}"),
        })?;
        Ok(Self { inner, path })
    }

    /// Token ids of `text`, with the special tokens the tokenizer adds (e.g. Llama's BOS), as
    /// transformers' `tokenizer(text)` gives them.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| ModelError::Tokenizer {
                path: self.path.clone(),
                reason: format!("cannot encode {text:?}: {e}"),
            })?;
        if enc.get_ids().is_empty() {
            return Err(ModelError::Tokenizer {
                path: self.path.clone(),
                reason: format!("{text:?} encodes to no tokens"),
            });
        }
        Ok(enc.get_ids().to_vec())
    }

    /// The text of one token id (special tokens included).
    pub fn decode_one(&self, id: u32) -> Result<String, ModelError> {
        self.inner
            .decode(&[id], false)
            .map_err(|e| ModelError::Tokenizer {
                path: self.path.clone(),
                reason: format!("cannot decode token {id}: {e}"),
            })
    }
}
