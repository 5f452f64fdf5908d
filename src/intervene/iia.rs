//! Interchange-intervention accuracy (IIA) of a circuit alignment.
//!
//! An [`Alignment`] maps each high-level variable of an interpretation to the model sites that
//! are claimed to compute it. For a pair (base, source) and a set of variables, the model runs
//! on the base with those variables' sites patched from the source run; the high-level model
//! (supplied by the caller as a [`Counterfactual`], because the evaluator lives in the language
//! stage) says what the output should then be. IIA is the fraction of pairs whose decoded
//! output equals the counterfactual output at every answer position.

use std::collections::{BTreeMap, BTreeSet};

use candle_core::{D, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{InterveneError, Site, patch_from_source};
use crate::compile::lower::OpBlock;
use crate::compile::{Compiled, OpPlacement};
use crate::lang::ir::NodeId;
use crate::model::{
    AttnHook, BlockHook, HookPoint, ModelError, OutputValue, RunOptions, Sidecar, TokenBatch,
    Transformer,
};

/// High-level variable name → the sites that implement it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alignment {
    pub variables: BTreeMap<String, Vec<Site>>,
}

impl Alignment {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, variable: &str, sites: Vec<Site>) -> Self {
        self.variables.insert(variable.to_string(), sites);
        self
    }

    /// A spec's circuit, site for site as declared (`output` keeps its name).
    pub fn from_circuit(circuit: &crate::lang::ir::Circuit) -> Result<Self, InterveneError> {
        let mut out = Alignment::new();
        for site in &circuit.sites {
            let sites = site
                .hooks
                .iter()
                .map(|h| {
                    declared_site(h).ok_or_else(|| InterveneError::Circuit {
                        circuit: circuit.name.clone(),
                        reason: format!("`{}` is not a hook point", h.hook),
                    })
                })
                .collect::<Result<_, _>>()?;
            out.variables.insert(site.variable.clone(), sites);
        }
        Ok(out)
    }
}

/// The site a circuit's hook reference names (`None`: not a hook point; the checker has
/// already refused such a name in a spec).
pub fn declared_site(h: &crate::lang::ir::HookRef) -> Option<Site> {
    let site = Site::hook(h.hook.parse().ok()?);
    Some(match h.head {
        Some(head) => site.with_head(head),
        None => site,
    })
}

/// Where `placement` puts the computation of `node`: its heads' `hook_z[h]` and its MLPs'
/// `hook_mlp_out`.
pub fn node_sites(c: &Compiled, placement: &[OpPlacement], node: NodeId) -> Vec<Site> {
    let mut out = Vec::new();
    for (op, plan_op) in c.plan.ops.iter().enumerate() {
        let Some(p) = placement.get(op) else { continue };
        if !plan_op.block.nodes().contains(&node) {
            continue;
        }
        let site = match (&plan_op.block, p.head) {
            (OpBlock::Head(_), Some(head)) => {
                Site::hook(HookPoint::attn(p.layer, AttnHook::Z)).with_head(head)
            }
            (OpBlock::Mlp(_), _) => Site::hook(HookPoint::Block {
                layer: p.layer,
                hook: BlockHook::MlpOut,
            }),
            _ => continue,
        };
        if !out.contains(&site) {
            out.push(site);
        }
    }
    out
}

/// A site as a circuit writes it: `blocks.1.attn.hook_z[0]`, `blocks.0.hook_mlp_out`.
pub fn spec_name(s: &Site) -> String {
    match s.head {
        Some(h) => format!("{}[{h}]", s.hook),
        None => s.hook.to_string(),
    }
}

/// One variable of an interpretation and the sites that carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlignedVariable {
    /// The interpretation's name for it (`output` for the output).
    pub variable: String,
    #[serde(skip)]
    pub node: NodeId,
    #[serde(serialize_with = "spec_names")]
    pub sites: Vec<Site>,
}

fn spec_names<S: serde::Serializer>(sites: &[Site], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(sites.iter().map(spec_name))
}

/// The compiled layout of `program`: every named variable (and the output) the compiler put in
/// a head or an MLP, with its sites, in program order.
pub fn layout_variables(program: &crate::lang::ir::Program, c: &Compiled) -> Vec<AlignedVariable> {
    let mut out = Vec::new();
    for (i, node) in program.graph.nodes.iter().enumerate() {
        let id = NodeId(i);
        let variable = if id == program.output {
            "output".to_owned()
        } else {
            match &node.name {
                Some(n) => n.clone(),
                None => continue,
            }
        };
        let sites = node_sites(c, &c.placement, id);
        if !sites.is_empty() {
            out.push(AlignedVariable {
                variable,
                node: id,
                sites,
            });
        }
    }
    out
}

/// `variables` as a spec's circuit block `name` for `program`.
pub fn circuit_block(name: &str, program: &str, variables: &[AlignedVariable]) -> String {
    let lines: Vec<String> = variables
        .iter()
        .map(|v| {
            let sites: Vec<String> = v.sites.iter().map(spec_name).collect();
            format!("  {} -> {}", v.variable, sites.join(", "))
        })
        .collect();
    format!(
        "circuit {name} for {program} {{\n{}\n}}\n",
        lines.join("\n")
    )
}

/// One interchange experiment: run `base` with `variables` set to their values on `source`.
/// Token ids are exactly what the model reads (BOS included when the model uses one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchangePair {
    pub base: Vec<u32>,
    pub source: Vec<u32>,
    pub variables: Vec<String>,
}

/// The high-level model's answer to an interchange: the output it produces on `pair.base`
/// when `pair.variables` take their values from `pair.source`, one value per answer position.
pub trait Counterfactual {
    fn expected(&self, pair: &InterchangePair) -> Result<Vec<OutputValue>, String>;
}

impl<F> Counterfactual for F
where
    F: Fn(&InterchangePair) -> Result<Vec<OutputValue>, String>,
{
    fn expected(&self, pair: &InterchangePair) -> Result<Vec<OutputValue>, String> {
        self(pair)
    }
}

/// How model outputs are read for comparison.
#[derive(Clone, Debug)]
pub struct Readout {
    /// Decoding (and the BOS position to skip) from the model's sidecar; without one, the
    /// answer at each position is the argmax output index as a JSON number.
    pub sidecar: Option<Sidecar>,
    /// Absolute tolerance for numerical outputs.
    pub tolerance: f64,
}

impl Readout {
    pub fn new(sidecar: Option<&Sidecar>) -> Self {
        Readout {
            sidecar: sidecar.cloned(),
            tolerance: 1e-3,
        }
    }

    fn read(&self, logits: &Tensor) -> Result<Vec<Vec<OutputValue>>, ModelError> {
        match &self.sidecar {
            Some(s) => s.decode(logits),
            None => {
                let idx: Vec<Vec<u32>> = logits
                    .argmax(D::Minus1)
                    .and_then(|t| t.to_vec2())
                    .map_err(|e| ModelError::Decode(e.to_string()))?;
                Ok(idx
                    .into_iter()
                    .map(|r| {
                        r.into_iter()
                            .map(|i| OutputValue::Symbol(json!(i)))
                            .collect()
                    })
                    .collect())
            }
        }
    }
}

/// Correct / total counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    pub correct: usize,
    pub total: usize,
}

impl Score {
    pub fn rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// The result of an IIA evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IiaReport {
    /// Fraction of pairs whose whole answer matches the counterfactual (the IIA).
    pub accuracy: f64,
    pub pairs: Score,
    /// Fraction of answer positions that match.
    pub positions: Score,
    /// Pair-level score per intervened variable set (joined with `+`).
    pub per_variables: BTreeMap<String, Score>,
    /// Whether each pair (in input order) matched.
    pub pair_correct: Vec<bool>,
}

/// Pairs with the same variables and lengths run as one batch.
const MAX_BATCH: usize = 256;

/// Interchange-intervention accuracy of `alignment` on `pairs`, with the counterfactual outputs
/// from `expected`. Deterministic: groups are processed in a fixed order.
pub fn interchange_intervention_accuracy(
    model: &Transformer,
    readout: &Readout,
    alignment: &Alignment,
    pairs: &[InterchangePair],
    expected: &dyn Counterfactual,
) -> Result<IiaReport, InterveneError> {
    // Every aligned site must exist in the model: a circuit naming a layer or head the model
    // lacks is an error with the model's shape, not a patch that silently does nothing.
    for sites in alignment.variables.values() {
        for site in sites {
            model.check_site(site)?;
        }
    }
    // Validate and group.
    let mut groups: BTreeMap<(Vec<String>, usize), Vec<usize>> = BTreeMap::new();
    for (i, pair) in pairs.iter().enumerate() {
        if pair.base.len() != pair.source.len() {
            return Err(InterveneError::Pair {
                pair: i,
                reason: format!(
                    "base has {} tokens, source has {}; position-wise patching needs equal lengths",
                    pair.base.len(),
                    pair.source.len()
                ),
            });
        }
        if pair.variables.is_empty() {
            return Err(InterveneError::Pair {
                pair: i,
                reason: "no variables to intervene on".into(),
            });
        }
        for v in &pair.variables {
            if !alignment.variables.contains_key(v) {
                return Err(InterveneError::UnknownVariable {
                    pair: i,
                    variable: v.clone(),
                    known: alignment
                        .variables
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let vars: BTreeSet<String> = pair.variables.iter().cloned().collect();
        groups
            .entry((vars.into_iter().collect(), pair.base.len()))
            .or_default()
            .push(i);
    }

    let mut pair_correct = vec![false; pairs.len()];
    let mut positions = Score::default();
    let mut per_variables: BTreeMap<String, Score> = BTreeMap::new();
    for ((vars, _), members) in &groups {
        let variables = vars.join("+");
        let sites: Vec<Site> = vars
            .iter()
            .flat_map(|v| alignment.variables[v].iter().cloned())
            .collect();
        for chunk in members.chunks(MAX_BATCH) {
            let base_rows: Vec<Vec<u32>> = chunk.iter().map(|&i| pairs[i].base.clone()).collect();
            let source_rows: Vec<Vec<u32>> =
                chunk.iter().map(|&i| pairs[i].source.clone()).collect();
            let base = TokenBatch::new(&base_rows)?;
            let source = TokenBatch::new(&source_rows)?;
            let (ivs, _) = patch_from_source(model, &source, &sites)?;
            let logits = model.forward(&base, &RunOptions::intervene(&ivs))?.logits;
            let got = readout.read(&logits)?;
            for (row, &i) in chunk.iter().enumerate() {
                let want = expected
                    .expected(&pairs[i])
                    .map_err(|reason| InterveneError::Oracle { pair: i, reason })?;
                let have = &got[row];
                if want.len() != have.len() {
                    return Err(InterveneError::Pair {
                        pair: i,
                        reason: format!(
                            "the counterfactual has {} answer positions, the model's output has {}",
                            want.len(),
                            have.len()
                        ),
                    });
                }
                let matched = have
                    .iter()
                    .zip(&want)
                    .filter(|(h, w)| h.matches(w, readout.tolerance))
                    .count();
                positions.correct += matched;
                positions.total += want.len();
                pair_correct[i] = matched == want.len();
                let s = per_variables.entry(variables.clone()).or_default();
                s.total += 1;
                s.correct += usize::from(pair_correct[i]);
            }
        }
    }
    let pairs_score = Score {
        correct: pair_correct.iter().filter(|c| **c).count(),
        total: pairs.len(),
    };
    Ok(IiaReport {
        accuracy: pairs_score.rate(),
        pairs: pairs_score,
        positions,
        per_variables,
        pair_correct,
    })
}
