//! What a forward pass takes and gives: token batches, run options (hooks to cache,
//! interventions), the outputs.

use super::*;

/// A rectangular batch of token ids, `[batch, pos]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBatch {
    ids: Vec<u32>,
    batch: usize,
    len: usize,
}

impl TokenBatch {
    /// Checks that there is at least one non-empty row and that all rows have one length.
    pub fn new(rows: &[Vec<u32>]) -> Result<Self, ModelError> {
        let first = rows
            .first()
            .ok_or_else(|| ModelError::Tokens("the batch is empty".into()))?;
        let len = first.len();
        if len == 0 {
            return Err(ModelError::Tokens("row 0 is empty".into()));
        }
        for (i, r) in rows.iter().enumerate() {
            if r.len() != len {
                return Err(ModelError::Tokens(format!(
                    "rows must all have the same length: row 0 has {len} tokens, row {i} has {}",
                    r.len()
                )));
            }
        }
        Ok(TokenBatch {
            ids: rows.iter().flatten().copied().collect(),
            batch: rows.len(),
            len,
        })
    }

    /// Like `new`, from ids as read from JSON (ids beyond u32 are reported, not truncated).
    pub fn from_u64_rows(rows: &[Vec<u64>]) -> Result<Self, ModelError> {
        let mut out = Vec::with_capacity(rows.len());
        for (b, r) in rows.iter().enumerate() {
            let mut row = Vec::with_capacity(r.len());
            for (p, &id) in r.iter().enumerate() {
                row.push(u32::try_from(id).map_err(|_| {
                    ModelError::Tokens(format!(
                        "token id {id} at batch {b}, position {p} is too large"
                    ))
                })?);
            }
            out.push(row);
        }
        Self::new(&out)
    }

    /// Reads a token file: JSON `{"tokens": [[id, ...], ...]}` (rows of equal length).
    pub fn from_json_file(path: &std::path::Path) -> Result<Self, ModelError> {
        let value: serde_json::Value = read_json(path)?;
        let bad = |reason: String| ModelError::Tokens(format!("{}: {reason}", path.display()));
        let rows = value
            .get("tokens")
            .and_then(|t| t.as_array())
            .ok_or_else(|| bad("expected an object with a `tokens` array of rows".into()))?;
        let mut out = Vec::with_capacity(rows.len());
        for (b, row) in rows.iter().enumerate() {
            let row = row
                .as_array()
                .ok_or_else(|| bad(format!("tokens[{b}] is not an array of token ids")))?;
            let ids = row
                .iter()
                .enumerate()
                .map(|(p, id)| {
                    id.as_u64().ok_or_else(|| {
                        bad(format!(
                            "tokens[{b}][{p}] = {id} is not a non-negative integer token id"
                        ))
                    })
                })
                .collect::<Result<Vec<u64>, _>>()?;
            out.push(ids);
        }
        Self::from_u64_rows(&out).map_err(|e| match e {
            ModelError::Tokens(m) => bad(m),
            other => other,
        })
    }

    pub fn single(row: Vec<u32>) -> Result<Self, ModelError> {
        Self::new(&[row])
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    pub fn row(&self, i: usize) -> &[u32] {
        &self.ids[i * self.len..(i + 1) * self.len]
    }

    pub fn rows(&self) -> Vec<Vec<u32>> {
        self.ids.chunks(self.len).map(<[u32]>::to_vec).collect()
    }
}

/// What a run keeps and changes.
#[derive(Clone, Debug, Default)]
pub struct RunOptions<'a> {
    /// Hooks to keep in the returned cache.
    pub cache: HookSelection,
    /// Interventions to apply (see `model::intervention` for the semantics).
    pub interventions: &'a [Intervention],
}

impl<'a> RunOptions<'a> {
    pub fn cache(cache: HookSelection) -> Self {
        RunOptions {
            cache,
            interventions: &[],
        }
    }

    pub fn intervene(interventions: &'a [Intervention]) -> Self {
        RunOptions {
            cache: HookSelection::None,
            interventions,
        }
    }
}

/// The result of a forward pass.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// `[batch, pos, d_vocab_out]`
    pub logits: Tensor,
    pub cache: ActivationCache,
}
