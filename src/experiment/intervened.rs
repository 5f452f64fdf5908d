//! Intervened implementations (the paper's intervention test): a model whose circuit sites for
//! one variable — `n` of them at a time — are interchange-patched from a corrupted input.
//!
//! An intervened model directory holds its base model's files unchanged and
//! `intervention.json`: the circuit (and variable), the patched sites, and one corrupted input
//! per input length, drawn from the task's domain. On every input of length `n` the sites take
//! their activations on the corrupted input of length `n`. `congruity sample --family
//! intervened` writes such directories; `congruity compare` runs them patched (as `--models` or
//! `--pool` members). Everything else refuses them: run unpatched, they would silently be their
//! base model.

use std::collections::BTreeMap;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::ExperimentError;
use super::circuit::{declared_sites, restricted_to, spec_name};
use super::sampled::choose_sites;
use crate::compile::check::domain;
use crate::equivalence::derive_seed;
use crate::lang::domain::token_text;
use crate::lang::ir::{Circuit, HookRef, Task, Value};
use crate::model::Site;

pub use crate::artifact::INTERVENTION_FILE;
const FORMAT: &str = "congruity-intervened/1";

/// What an intervened implementation patches, as written in `intervention.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intervention {
    pub format: String,
    pub circuit: String,
    /// The interpretation the circuit is about.
    pub program: String,
    /// The variable whose sites are patched (all of the circuit's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// Patched sites, as circuits name them (`blocks.0.attn.hook_z[1]`).
    pub sites: Vec<String>,
    /// The corrupted input of each length, as typed (`b a c`).
    pub corrupted: BTreeMap<usize, String>,
    /// The seed the sites and the corrupted inputs were drawn with.
    pub seed: u64,
}

impl Intervention {
    /// Draws implementation `index`'s intervention: `heads` of the sites of `variable` (or of the
    /// whole circuit) chosen from `seed`, and for every length of `task`'s domain one corrupted
    /// input of that length drawn from the domain (stream `[1, index, length]` of `seed`).
    pub fn draw(
        circuit: &Circuit,
        variable: Option<&str>,
        heads: Option<usize>,
        task: &Task,
        seed: u64,
        index: usize,
    ) -> Result<Self, ExperimentError> {
        let c = restricted_to(circuit, variable)?;
        if heads == Some(0) {
            return Err(ExperimentError::Circuit {
                circuit: circuit.name.clone(),
                reason: "patching 0 sites changes nothing; ask for at least 1".into(),
            });
        }
        let sites = choose_sites(declared_sites(&c)?, heads, derive_seed(seed, &[0]), index);
        let dom = domain(task, derive_seed(seed, &[2])).map_err(|e| ExperimentError::Circuit {
            circuit: circuit.name.clone(),
            reason: format!("drawing corrupted inputs from `{}`: {e}", task.name),
        })?;
        let mut by_length: BTreeMap<usize, Vec<&Vec<Value>>> = BTreeMap::new();
        for input in &dom.inputs {
            by_length.entry(input.len()).or_default().push(input);
        }
        let corrupted = by_length
            .into_iter()
            .map(|(n, inputs)| {
                let mut rng =
                    ChaCha8Rng::seed_from_u64(derive_seed(seed, &[1, index as u64, n as u64]));
                let pick = inputs[rng.random_range(0..inputs.len())];
                (n, text(pick))
            })
            .collect();
        Ok(Intervention {
            format: FORMAT.into(),
            circuit: circuit.name.clone(),
            program: circuit.program.clone(),
            variable: variable.map(str::to_owned),
            sites: sites.iter().map(spec_name).collect(),
            corrupted,
            seed,
        })
    }

    /// The intervention of the model in `dir`, if it is an intervened one.
    pub fn read(dir: &Path) -> Result<Option<Self>, ExperimentError> {
        let file = dir.join(INTERVENTION_FILE);
        if !file.is_file() {
            return Ok(None);
        }
        let bad = |reason: String| ExperimentError::ModelDir {
            dir: dir.to_path_buf(),
            reason: format!("{INTERVENTION_FILE}: {reason}"),
        };
        let text = std::fs::read_to_string(&file).map_err(|e| bad(e.to_string()))?;
        let i: Intervention = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if i.format != FORMAT {
            return Err(bad(format!("format `{}` is not `{FORMAT}`", i.format)));
        }
        i.parsed_sites().map_err(bad)?;
        Ok(Some(i))
    }

    /// The patched sites.
    pub fn parsed_sites(&self) -> Result<Vec<Site>, String> {
        self.sites
            .iter()
            .map(|s| parse_site(s).ok_or_else(|| format!("`{s}` is not a hook point")))
            .collect()
    }

    /// The corrupted input for each of `inputs` (the one of its length).
    pub fn corrupted_for(&self, inputs: &[Vec<Value>]) -> Result<Vec<Vec<Value>>, String> {
        inputs
            .iter()
            .map(|x| {
                self.corrupted
                    .get(&x.len())
                    .map(|t| t.split_whitespace().map(Value::sym).collect())
                    .ok_or_else(|| {
                        format!(
                            "it has no corrupted input of length {} (lengths: {})",
                            x.len(),
                            self.corrupted
                                .keys()
                                .map(|k| k.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })
            })
            .collect()
    }
}

fn text(input: &[Value]) -> String {
    input.iter().map(token_text).collect::<Vec<_>>().join(" ")
}

/// `blocks.0.attn.hook_z[1]` → the site (hook and head).
fn parse_site(s: &str) -> Option<Site> {
    let (hook, head) = match s.strip_suffix(']').and_then(|t| t.split_once('[')) {
        Some((hook, head)) => (hook, Some(head.parse().ok()?)),
        None => (s, None),
    };
    crate::intervene::iia::declared_site(&HookRef {
        hook: hook.to_owned(),
        head,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_names_read_back() {
        for name in [
            "blocks.0.attn.hook_z[1]",
            "blocks.2.hook_mlp_out",
            "blocks.1.hook_resid_post",
        ] {
            let site = parse_site(name).unwrap();
            assert_eq!(spec_name(&site), name);
        }
        assert!(parse_site("blocks.0.attn.hook_z[x]").is_none());
        assert!(parse_site("nowhere").is_none());
    }
}
