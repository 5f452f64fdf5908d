//! Circuit faithfulness and minimality: ablate everything outside a circuit's sites and measure
//! what survives (the central score of circuit benchmarks such as MIB and ACDC).
//!
//! A model's *components* are its attention heads (`blocks.l.attn.hook_z[h]`) and its MLPs
//! (`blocks.l.hook_mlp_out`). A circuit keeps a component when one of its sites is that head
//! (any per-head attention hook of that layer and head, or the head-less hook: all heads), the
//! layer's `hook_attn_out` (all its heads), or one of the layer's MLP hooks; residual-stream
//! sites name states, not components, and keep none. Every component not kept is ablated, all at
//! once:
//!
//! - `zero`: its output set to zero;
//! - `mean`: its mean output over the inputs of the same length (per position and head);
//! - `resample`: its output on another input of the same length (row i takes the clean run of
//!   input j ≠ i, j drawn from the seed: one corrupted input per row, so the ablated components
//!   see a coherent other input).
//!
//! Faithfulness is the fraction of inputs whose decoded output (every answer position) with the
//! complement ablated equals the full model's. For categorical outputs the normalised
//! logit-difference recovery is reported too: with `LD` the mean over answer positions of the
//! full model's answer logit minus the largest other logit, `(LD_circuit − LD_empty) /
//! (LD_full − LD_empty)`, where `empty` ablates every component.
//!
//! Minimality: for each site of the circuit, the faithfulness lost when that site's components
//! are ablated too. A site whose removal changes nothing is redundant.

use std::collections::{BTreeMap, BTreeSet};

use candle_core::{D, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::InterveneError;
use crate::model::{
    Action, AttnHook, BlockHook, HookPoint, HookSelection, Intervention, ModelError, OutputValue,
    RunOptions, Sidecar, Site, TokenBatch, Transformer,
};

/// How components outside a circuit are removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ablation {
    Zero,
    Mean,
    Resample,
}

impl Ablation {
    pub const ALL: [Ablation; 3] = [Ablation::Zero, Ablation::Mean, Ablation::Resample];

    pub fn name(self) -> &'static str {
        match self {
            Ablation::Zero => "zero",
            Ablation::Mean => "mean",
            Ablation::Resample => "resample",
        }
    }
}

impl std::str::FromStr for Ablation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ablation::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("`{s}` is not an ablation (zero, mean, resample)"))
    }
}

/// A model component: one attention head or one MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Component {
    Head { layer: usize, head: usize },
    Mlp { layer: usize },
}

impl Component {
    /// The site its output is ablated at.
    pub fn site(self) -> Site {
        match self {
            Component::Head { layer, head } => {
                Site::hook(HookPoint::attn(layer, AttnHook::Z)).with_head(head)
            }
            Component::Mlp { layer } => Site::hook(HookPoint::block(layer, BlockHook::MlpOut)),
        }
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Component::Head { layer, head } => write!(f, "blocks.{layer}.attn.hook_z[{head}]"),
            Component::Mlp { layer } => write!(f, "blocks.{layer}.hook_mlp_out"),
        }
    }
}

/// Every component of `model`: each layer's heads, then its MLP (attention-only models have none).
pub fn components(model: &Transformer) -> Vec<Component> {
    let cfg = model.config();
    let mut out = Vec::new();
    for layer in 0..cfg.n_layers {
        out.extend((0..cfg.n_heads).map(|head| Component::Head { layer, head }));
        if model
            .check_site(&Site::hook(HookPoint::block(layer, BlockHook::MlpOut)))
            .is_ok()
        {
            out.push(Component::Mlp { layer });
        }
    }
    out
}

/// The components a site keeps (see the module documentation).
pub fn kept_by(site: &Site, model: &Transformer) -> Vec<Component> {
    let n_heads = model.config().n_heads;
    let HookPoint::Block { layer, hook } = site.hook else {
        return Vec::new();
    };
    let heads = |head: Option<usize>| -> Vec<Component> {
        match head {
            Some(h) => vec![Component::Head { layer, head: h }],
            None => (0..n_heads)
                .map(|h| Component::Head { layer, head: h })
                .collect(),
        }
    };
    match hook {
        BlockHook::Attn(_)
        | BlockHook::AttnIn
        | BlockHook::QInput
        | BlockHook::KInput
        | BlockHook::VInput => heads(site.head),
        BlockHook::AttnOut => heads(None),
        BlockHook::MlpIn | BlockHook::MlpOut | BlockHook::Mlp(_) => vec![Component::Mlp { layer }],
        _ => Vec::new(),
    }
}

/// The result of ablating everything outside a set of kept components.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Faithfulness {
    pub ablation: Ablation,
    /// Inputs whose decoded output equals the full model's, and all inputs.
    pub agree: usize,
    /// Inputs (zero, mean) or (input, partner) pairs (resample) counted.
    pub total: usize,
    /// Normalised logit-difference recovery (categorical outputs).
    pub recovery: Option<f64>,
    /// The components ablated.
    pub ablated: Vec<String>,
    /// The first input (token ids, BOS included) whose output changed.
    pub first_changed: Option<Vec<u32>>,
}

impl Faithfulness {
    pub fn score(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.agree as f64 / self.total as f64
        }
    }
}

/// One length group's batch and what the unablated model does on it.
struct Group {
    rows: Vec<usize>,
    batch: TokenBatch,
    full: Vec<Vec<OutputValue>>,
    /// The full model's argmax at every position (the answers `LD` is measured on).
    answers: Vec<Vec<u32>>,
    full_ld: Option<Vec<f64>>,
    /// Clean activations of every component site (for mean ablation).
    clean: BTreeMap<HookPoint, Tensor>,
    /// The clean runs of the resample partners, one per round (row i → another input of its
    /// length, drawn anew each round); empty for a lone row.
    resampled: Vec<BTreeMap<HookPoint, Tensor>>,
}

fn decode(sc: &Sidecar, logits: &Tensor) -> Result<Vec<Vec<OutputValue>>, InterveneError> {
    Ok(sc.decode(logits)?)
}

/// Per row: mean over answer positions (after the sidecar's prefix) of `logit[answer] − max
/// other`, for the given answers (argmax rows of the full model).
fn logit_diffs(
    logits: &Tensor,
    answers: &[Vec<u32>],
    prefix: usize,
) -> Result<Vec<f64>, ModelError> {
    let l: Vec<Vec<Vec<f32>>> = logits
        .to_dtype(candle_core::DType::F32)
        .and_then(|t| t.to_vec3())
        .map_err(|e| ModelError::Decode(format!("reading logits: {e}")))?;
    Ok(l.iter()
        .zip(answers)
        .map(|(row, ans)| {
            let positions = &row[prefix.min(row.len())..];
            let n = positions.len().max(1) as f64;
            positions
                .iter()
                .zip(&ans[prefix.min(ans.len())..])
                .map(|(p, &a)| {
                    let other = p
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| *k != a as usize)
                        .map(|(_, v)| *v)
                        .fold(f32::NEG_INFINITY, f32::max);
                    f64::from(p[a as usize] - other)
                })
                .sum::<f64>()
                / n
        })
        .collect())
}

/// What an ablated run gives: each row's decoded output, and (categorical outputs) its logit
/// difference.
struct AblatedRun {
    outputs: Vec<Vec<OutputValue>>,
    logit_diffs: Option<Vec<f64>>,
}

/// Ablates `ablated` on `group`.
fn ablated_run(
    model: &Transformer,
    sc: &Sidecar,
    group: &Group,
    ablated: &[Component],
    ablation: Ablation,
    round: usize,
) -> Result<AblatedRun, InterveneError> {
    let answers = &group.answers;
    let ivs: Vec<Intervention> = ablated
        .iter()
        .map(|c| {
            let site = c.site();
            let action = match ablation {
                Ablation::Zero => Action::Zero,
                Ablation::Mean => Action::Mean(crate::model::batch_mean(&group.clean[&site.hook])?),
                Ablation::Resample => Action::Replace(
                    group
                        .resampled
                        .get(round)
                        .and_then(|r| r.get(&site.hook))
                        .cloned()
                        .ok_or_else(|| ModelError::AbsentHook {
                            hook: site.hook.to_string(),
                            reason: "not produced by the resample run".into(),
                        })?,
                ),
            };
            Ok(Intervention::new(site, action))
        })
        .collect::<Result<_, InterveneError>>()?;
    let logits = model
        .forward(&group.batch, &RunOptions::intervene(&ivs))?
        .logits;
    let outputs = decode(sc, &logits)?;
    let logit_diffs = match group.full_ld {
        Some(_) => Some(logit_diffs(&logits, answers, sc.prefix_len())?),
        None => None,
    };
    Ok(AblatedRun {
        outputs,
        logit_diffs,
    })
}

/// Faithfulness of keeping `kept` (everything else ablated) on the inputs `rows` (token ids, BOS
/// included; grouped by length internally), with `seed` choosing resample partners.
pub struct FaithfulnessRun<'a> {
    model: &'a Transformer,
    sidecar: &'a Sidecar,
    groups: Vec<Group>,
    all: Vec<Component>,
}

impl<'a> FaithfulnessRun<'a> {
    /// Runs the full model once per length group, and the resample partners once per round, so
    /// that many circuits can be scored on the same inputs. Resample ablation is an average over
    /// (input, partner) pairs: `rounds` partners per input make it a tighter estimate on a small
    /// domain.
    pub fn new(
        model: &'a Transformer,
        sidecar: &'a Sidecar,
        rows: &[Vec<u32>],
        seed: u64,
        rounds: usize,
    ) -> Result<Self, InterveneError> {
        let rounds = rounds.max(1);
        let all = components(model);
        let hooks: BTreeSet<HookPoint> = all.iter().map(|c| c.site().hook).collect();
        let categorical = matches!(
            sidecar.output,
            crate::artifact::OutputSpec::Categorical { .. }
        );
        let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, r) in rows.iter().enumerate() {
            by_len.entry(r.len()).or_default().push(i);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut groups = Vec::new();
        for (_, members) in by_len {
            let ids: Vec<Vec<u32>> = members.iter().map(|&i| rows[i].clone()).collect();
            let batch = TokenBatch::new(&ids)?;
            let run = model.forward(
                &batch,
                &RunOptions::cache(HookSelection::Only(hooks.clone())),
            )?;
            let full = decode(sidecar, &run.logits)?;
            let answers = argmax_rows(&run.logits)?;
            let full_ld = if categorical {
                Some(logit_diffs(&run.logits, &answers, sidecar.prefix_len())?)
            } else {
                None
            };
            // Row i's partner: another row of the same length (none for a lone row), drawn anew
            // in each round.
            let mut resampled = Vec::new();
            if members.len() >= 2 {
                for _ in 0..rounds {
                    let partners: Vec<Vec<u32>> = (0..members.len())
                        .map(|i| {
                            let j = rng.random_range(0..members.len() - 1);
                            ids[if j >= i { j + 1 } else { j }].clone()
                        })
                        .collect();
                    let pb = TokenBatch::new(&partners)?;
                    let pr = model
                        .forward(&pb, &RunOptions::cache(HookSelection::Only(hooks.clone())))?;
                    resampled.push(cache_map(&pr.cache));
                }
            }
            groups.push(Group {
                rows: members,
                batch,
                full,
                answers,
                full_ld,
                clean: cache_map(&run.cache),
                resampled,
            });
        }
        Ok(FaithfulnessRun {
            model,
            sidecar,
            groups,
            all,
        })
    }

    pub fn components(&self) -> &[Component] {
        &self.all
    }

    /// Faithfulness with every component outside `kept` ablated by `ablation`. Under resample
    /// ablation every (input, partner) pair of every round counts once, and inputs alone of
    /// their length (no partner) are left out.
    pub fn score(
        &self,
        kept: &BTreeSet<Component>,
        ablation: Ablation,
    ) -> Result<Faithfulness, InterveneError> {
        let ablated: Vec<Component> = self
            .all
            .iter()
            .copied()
            .filter(|c| !kept.contains(c))
            .collect();
        let (mut agree, mut total) = (0, 0);
        let mut first_changed: Option<(usize, Vec<u32>)> = None;
        let (mut ld_c, mut ld_e, mut ld_f, mut n_ld) = (0.0, 0.0, 0.0, 0usize);
        for g in &self.groups {
            let rounds = match ablation {
                Ablation::Resample => g.resampled.len(),
                _ => 1,
            };
            for round in 0..rounds {
                let AblatedRun {
                    outputs: out,
                    logit_diffs: ld,
                } = ablated_run(self.model, self.sidecar, g, &ablated, ablation, round)?;
                for (k, (o, f)) in out.iter().zip(&g.full).enumerate() {
                    total += 1;
                    let same =
                        o.len() == f.len() && o.iter().zip(f).all(|(a, b)| a.matches(b, 1e-3));
                    if same {
                        agree += 1;
                    } else {
                        let row = g.rows[k];
                        if first_changed.as_ref().is_none_or(|(r, _)| row < *r) {
                            first_changed = Some((row, g.batch.row(k).to_vec()));
                        }
                    }
                }
                if let (Some(ld), Some(full)) = (ld, &g.full_ld) {
                    let empty =
                        ablated_run(self.model, self.sidecar, g, &self.all, ablation, round)?
                            .logit_diffs
                            .unwrap_or_default();
                    for k in 0..ld.len() {
                        ld_c += ld[k];
                        ld_e += empty[k];
                        ld_f += full[k];
                    }
                    n_ld += ld.len();
                }
            }
        }
        let recovery =
            (n_ld > 0 && (ld_f - ld_e).abs() > 1e-12).then(|| (ld_c - ld_e) / (ld_f - ld_e));
        Ok(Faithfulness {
            ablation,
            agree,
            total,
            recovery,
            ablated: ablated.iter().map(|c| c.to_string()).collect(),
            first_changed: first_changed.map(|(_, r)| r),
        })
    }
}

fn cache_map(c: &crate::model::ActivationCache) -> BTreeMap<HookPoint, Tensor> {
    c.iter().map(|(h, t)| (*h, t.clone())).collect()
}

fn argmax_rows(logits: &Tensor) -> Result<Vec<Vec<u32>>, ModelError> {
    logits
        .argmax(D::Minus1)
        .and_then(|t| t.to_vec2::<u32>())
        .map_err(|e| ModelError::Decode(format!("reading logits: {e}")))
}
