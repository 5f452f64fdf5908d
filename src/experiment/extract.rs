//! Representations of a running model on a list of inputs: which hooks are read, how positions
//! are pooled, what happens to BOS, and the optional patching of some sites with activations of
//! corrupted inputs (the intervention test).
//!
//! Inputs may have different lengths. The compiled models attend bidirectionally and have no
//! padding mask, so padding would change their computation: inputs are grouped by length, each
//! group runs as one batch, and every input is pooled over its own positions. Rows come back in
//! the order of the input list, whatever the grouping.
//!
//! BOS: every model here reads a BOS token at position 0. Its residual is the same for every input
//! up to what attention writes there, so by default ([`BosPolicy::Exclude`]) it is left out:
//! `mean` averages the input's own tokens, `last` is its last token, and `positions=0,..` count
//! from its first token. [`BosPolicy::Include`] pools over BOS too (position 0 is BOS).
//!
//! Only the hooks a representation needs are cached (plus, for patching, the patched hooks on the
//! corrupted run).

use std::collections::{BTreeMap, BTreeSet};

use faer::Mat;
use serde::Serialize;

use crate::equivalence::EquivalenceError;
use crate::equivalence::representation::{ActivationArray, Normalisation, Pooling, pool};
use crate::experiment::ExperimentError;
use crate::model::{
    Action, BlockHook, HookPoint, HookSelection, Intervention, ModelError, RunOptions, Site,
    TokenBatch, Transformer,
};

/// Which activations make up the representation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layers {
    /// `blocks.0.hook_resid_pre` and every `blocks.{l}.hook_resid_post`, in order: the
    /// accumulated residual stream the paper concatenates (L + 1 vectors of `d_model`).
    AccumulatedResidual,
    /// Hooks by glob (the syntax of [`crate::model::expand_globs`]), in the order the patterns
    /// give them (per-head hooks are flattened over heads).
    Hooks(Vec<String>),
}

/// What happens to the BOS position when pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BosPolicy {
    /// Pool over the input's own tokens only.
    #[default]
    Exclude,
    /// Pool over BOS as well (it is position 0).
    Include,
}

/// How a model's activations become one row per input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepresentationSpec {
    pub layers: Layers,
    /// `Mean`, `Last` or `Positions`; per-input variants are built here from the input lengths.
    pub pooling: Pooling,
    pub bos: BosPolicy,
    pub norm: Normalisation,
}

impl Default for RepresentationSpec {
    fn default() -> Self {
        Self {
            layers: Layers::AccumulatedResidual,
            pooling: Pooling::Mean,
            bos: BosPolicy::Exclude,
            norm: Normalisation::None,
        }
    }
}

impl RepresentationSpec {
    /// A one-line description for reports, e.g.
    /// `accumulated residual (resid_pre 0 + resid_post 0..L-1), mean over tokens (BOS excluded)`.
    pub fn describe(&self) -> String {
        let layers = match &self.layers {
            Layers::AccumulatedResidual => {
                "accumulated residual (blocks.0.hook_resid_pre + every blocks.l.hook_resid_post)"
                    .to_string()
            }
            Layers::Hooks(h) => format!("hooks {}", h.join(", ")),
        };
        let bos = match self.bos {
            BosPolicy::Exclude => "BOS excluded",
            BosPolicy::Include => "BOS included as position 0",
        };
        let norm = match self.norm {
            Normalisation::None => String::new(),
            Normalisation::LayerNorm { eps } => {
                format!(", each vector layer-normed (no affine, eps {eps:e})")
            }
        };
        format!("{layers}; pooling {} ({bos}){norm}", self.pooling)
    }

    /// The hook points to read from `model`, in representation order.
    pub fn hooks(&self, model: &Transformer) -> Result<Vec<HookPoint>, ExperimentError> {
        match &self.layers {
            Layers::AccumulatedResidual => {
                let n = model.config().n_layers;
                let mut out = vec![HookPoint::block(0, BlockHook::ResidPre)];
                out.extend((0..n).map(|l| HookPoint::block(l, BlockHook::ResidPost)));
                Ok(out)
            }
            Layers::Hooks(patterns) => model.expand_hooks(patterns).map_err(|e| match e {
                ModelError::HookPattern { pattern, reason } => ExperimentError::Hook {
                    hook: pattern,
                    reason: format!(
                        "{reason} ({} layers, {} hook points)",
                        model.config().n_layers,
                        model.hook_points().len()
                    ),
                },
                ModelError::AbsentHook { hook, reason } => ExperimentError::Hook {
                    hook,
                    reason: format!("this model has no such hook point: {reason}"),
                },
                other => ExperimentError::from(other),
            }),
        }
    }
}

/// Sites to overwrite with their values on other inputs: row `i` of `source` (same length as
/// input `i`) supplies the activations patched into input `i`.
#[derive(Debug, Clone)]
pub struct Patch<'a> {
    pub sites: Vec<Site>,
    pub source: &'a [Vec<u32>],
}

/// A model's run on a list of inputs.
#[derive(Debug, Clone)]
pub struct ModelRun {
    /// One row per input, in input order.
    pub features: Mat<f64>,
    /// Per input, the logits of each of its own positions (BOS position dropped), f32.
    pub logits: Vec<Vec<Vec<f32>>>,
}

/// Indices of the inputs of each length, in increasing length (and input order within).
fn groups(ids: &[Vec<u32>]) -> BTreeMap<usize, Vec<usize>> {
    let mut g: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, row) in ids.iter().enumerate() {
        g.entry(row.len()).or_default().push(i);
    }
    g
}

/// `[b, p, rest...]` or `[b, h, q, k]` (pos axis 2) → row-major `[b, p, f]` f32.
fn per_position(
    hook: &HookPoint,
    t: &candle_core::Tensor,
) -> Result<ActivationArray, ExperimentError> {
    let ctx = |e: candle_core::Error| ExperimentError::Hook {
        hook: hook.to_string(),
        reason: format!("cannot read the activation: {e}"),
    };
    let pos = hook.axes().pos;
    let t = if pos == 1 {
        t.clone()
    } else {
        t.transpose(1, pos).map_err(ctx)?
    };
    let dims = t.dims().to_vec();
    if dims.len() < 2 {
        return Err(ExperimentError::Hook {
            hook: hook.to_string(),
            reason: format!("activation of shape {dims:?} has no position axis"),
        });
    }
    let (b, p) = (dims[0], dims[1]);
    let f: usize = dims[2..].iter().product();
    let v: Vec<f32> = t
        .contiguous()
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_dtype(candle_core::DType::F32))
        .and_then(|t| t.to_vec1())
        .map_err(ctx)?;
    Ok(ActivationArray::from_f32([b, p, f.max(1)], &v)?)
}

/// The pooling of one group, expressed on positions `skip..` of each row.
fn group_pooling(spec: &RepresentationSpec, skip: usize) -> Pooling {
    match &spec.pooling {
        Pooling::Positions(ps) => Pooling::Positions(ps.iter().map(|p| p + skip).collect()),
        other => other.clone(),
    }
}

/// Pools one group's activation over positions `skip..` (the input's own tokens when `skip`
/// is the BOS prefix).
fn pool_group(
    act: &ActivationArray,
    spec: &RepresentationSpec,
    skip: usize,
) -> Result<Mat<f64>, EquivalenceError> {
    match &spec.pooling {
        Pooling::Mean if skip > 0 => mean_from(act, skip, spec.norm),
        _ => pool(act, &group_pooling(spec, skip), spec.norm),
    }
}

/// Mean over positions `skip..p` of each row, each vector normalised first.
fn mean_from(
    act: &ActivationArray,
    skip: usize,
    norm: Normalisation,
) -> Result<Mat<f64>, EquivalenceError> {
    let [b, p, _] = act.shape();
    if skip >= p {
        return Err(EquivalenceError::Pooling {
            pooling: "mean".into(),
            reason: format!("the inputs have no token after the {skip} BOS position(s)"),
        });
    }
    let positions: Vec<usize> = (skip..p).collect();
    // Pool every token position separately, then average the blocks: the same numbers as a
    // direct mean, computed with the shared normalisation code.
    let stacked = pool(act, &Pooling::Positions(positions.clone()), norm)?;
    let width = stacked.ncols() / positions.len();
    let count = positions.len() as f64;
    Ok(Mat::from_fn(b, width, |i, j| {
        (0..positions.len())
            .map(|k| stacked[(i, k * width + j)])
            .sum::<f64>()
            / count
    }))
}

/// Runs `model` on `ids` (each row already starts with BOS when `prefix` is 1) and pools the
/// requested hooks. With `patch`, every site is replaced by its value on the source rows
/// (interchange intervention, downstream recomputed).
///
/// One function (~140 lines): checks, the corrupted run, the clean run and pooling share the
/// per-length grouping of the inputs, which splitting would have to pass around.
pub fn run_model(
    model: &Transformer,
    ids: &[Vec<u32>],
    prefix: usize,
    spec: &RepresentationSpec,
    patch: Option<&Patch<'_>>,
) -> Result<ModelRun, ExperimentError> {
    if ids.is_empty() {
        return Err(ExperimentError::Input {
            input: 0,
            reason: "no inputs to run".into(),
        });
    }
    if let Some(p) = patch {
        if p.source.len() != ids.len() {
            return Err(ExperimentError::PatchRows {
                sources: p.source.len(),
                inputs: ids.len(),
            });
        }
        for (i, (a, b)) in ids.iter().zip(p.source).enumerate() {
            if a.len() != b.len() {
                return Err(ExperimentError::Input {
                    input: i,
                    reason: format!(
                        "its corrupted input has {} tokens but it has {}; position-wise patching needs equal lengths",
                        b.len(),
                        a.len()
                    ),
                });
            }
        }
    }
    let hooks = spec.hooks(model)?;
    let skip = match spec.bos {
        BosPolicy::Exclude => prefix,
        BosPolicy::Include => 0,
    };
    let n = ids.len();
    let mut rows: Vec<Option<Vec<f64>>> = vec![None; n];
    let mut logits: Vec<Vec<Vec<f32>>> = vec![Vec::new(); n];
    let mut widths: Option<(usize, Vec<usize>)> = None;
    for (len, members) in groups(ids) {
        if len <= prefix {
            return Err(ExperimentError::Input {
                input: members[0],
                reason: "it has no token after BOS".into(),
            });
        }
        let group_ids: Vec<Vec<u32>> = members.iter().map(|&i| ids[i].clone()).collect();
        let tokens = TokenBatch::new(&group_ids)?;
        let interventions = match patch {
            None => Vec::new(),
            Some(p) => {
                let src_rows: Vec<Vec<u32>> =
                    members.iter().map(|&i| p.source[i].clone()).collect();
                let src = TokenBatch::new(&src_rows)?;
                let wanted: BTreeSet<HookPoint> = p.sites.iter().map(|s| s.hook).collect();
                let out = model.forward(&src, &RunOptions::cache(HookSelection::Only(wanted)))?;
                p.sites
                    .iter()
                    .map(|s| {
                        let t = out.cache.get(&s.hook).cloned().ok_or_else(|| {
                            ExperimentError::PatchHookMissing {
                                hook: s.hook.to_string(),
                            }
                        })?;
                        Ok(Intervention::new(s.clone(), Action::Replace(t)))
                    })
                    .collect::<Result<Vec<_>, ExperimentError>>()?
            }
        };
        let opts = RunOptions {
            cache: HookSelection::only(hooks.iter().copied()),
            interventions: &interventions,
        };
        let out = model.forward(&tokens, &opts)?;
        let mut parts = Vec::with_capacity(hooks.len());
        for h in &hooks {
            let t = out.cache.get(h).ok_or_else(|| ExperimentError::Hook {
                hook: h.to_string(),
                reason: "was not kept by the run".into(),
            })?;
            let act = per_position(h, t)?;
            parts.push(pool_group(&act, spec, skip).map_err(|e| match e {
                EquivalenceError::Pooling { pooling, reason } => EquivalenceError::Pooling {
                    pooling,
                    reason: format!("{reason} (inputs of length {})", len - prefix),
                },
                other => other,
            })?);
        }
        let part_widths: Vec<usize> = parts.iter().map(|m| m.ncols()).collect();
        match &widths {
            None => widths = Some((len, part_widths.clone())),
            Some((first_len, w)) if *w != part_widths => {
                let k = w
                    .iter()
                    .zip(&part_widths)
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                return Err(ExperimentError::Hook {
                    hook: hooks[k].to_string(),
                    reason: format!(
                        "gives {} features per input at length {} but {} at length {}; its width depends on the input length (e.g. a key axis), so inputs of different lengths cannot share one representation",
                        w[k],
                        first_len - prefix,
                        part_widths[k],
                        len - prefix
                    ),
                });
            }
            Some(_) => {}
        }
        let lg: Vec<Vec<Vec<f32>>> = out
            .logits
            .to_dtype(candle_core::DType::F32)
            .and_then(|t| t.to_vec3())
            .map_err(|e| ModelError::Compute {
                context: "reading logits".into(),
                source: e,
            })?;
        for (k, &i) in members.iter().enumerate() {
            let mut row = Vec::with_capacity(part_widths.iter().sum());
            for m in &parts {
                row.extend((0..m.ncols()).map(|j| m[(k, j)]));
            }
            rows[i] = Some(row);
            logits[i] = lg[k][prefix..].to_vec();
        }
    }
    let width = widths.map(|(_, w)| w.iter().sum()).unwrap_or(0);
    let rows: Vec<Vec<f64>> = rows.into_iter().map(|r| r.unwrap_or_default()).collect();
    Ok(ModelRun {
        features: Mat::from_fn(n, width, |i, j| rows[i][j]),
        logits,
    })
}
