//! The activations a run kept, by hook point.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Tensor;

use super::error::ModelError;
use super::hooks::HookPoint;
use super::io::{WrittenFile, write_safetensors};

/// Hook activations of one run, in forward order. Holds only the hooks that were asked for.
#[derive(Clone, Debug, Default)]
pub struct ActivationCache {
    entries: BTreeMap<HookPoint, Tensor>,
}

impl ActivationCache {
    pub fn get(&self, hook: &HookPoint) -> Option<&Tensor> {
        self.entries.get(hook)
    }

    /// Looks a hook up by its TransformerLens name.
    pub fn get_by_name(&self, name: &str) -> Result<Option<&Tensor>, ModelError> {
        let hook: HookPoint = name.parse()?;
        Ok(self.entries.get(&hook))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&HookPoint, &Tensor)> {
        self.entries.iter()
    }

    pub fn hooks(&self) -> impl Iterator<Item = &HookPoint> {
        self.entries.keys()
    }

    /// Removes and returns one activation.
    pub fn take(&mut self, hook: &HookPoint) -> Option<Tensor> {
        self.entries.remove(hook)
    }

    pub(crate) fn insert(&mut self, hook: HookPoint, value: Tensor) {
        self.entries.insert(hook, value);
    }

    /// Writes the cache to a safetensors file under TransformerLens names, plus `extra`
    /// tensors (e.g. `logits`), atomically.
    pub fn save(&self, path: &Path, extra: &[(&str, &Tensor)]) -> Result<WrittenFile, ModelError> {
        let mut all: Vec<(String, &Tensor)> =
            extra.iter().map(|(n, t)| (n.to_string(), *t)).collect();
        for (hook, t) in &self.entries {
            let name = hook.to_string();
            if extra.iter().any(|(n, _)| *n == name) {
                return Err(ModelError::Write {
                    path: path.to_path_buf(),
                    reason: format!("two tensors are named `{name}`"),
                });
            }
            all.push((name, t));
        }
        write_safetensors(path, all)
    }
}
