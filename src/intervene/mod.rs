//! Interventions on a running model: activation patching, ablations, interchange-intervention
//! accuracy.
//!
//! The intervention data types ([`Site`], [`Action`], [`Intervention`]) are defined in
//! `model::intervention` (the forward pass applies them) and re-exported here. This module
//! builds actions from model runs — source activations for patching, reference-batch means for
//! mean ablation — and scores circuit alignments by interchange-intervention accuracy
//! ([`iia`]), and sweeps one site at a time over a hook family ([`sweep`]).

pub mod faithful;
pub mod iia;
pub mod sweep;

use std::collections::BTreeSet;

use candle_core::Tensor;
use thiserror::Error;

pub use crate::model::intervention::{Action, Intervention, Site};
use crate::model::{
    ActivationCache, HookPoint, HookSelection, ModelError, RunOptions, TokenBatch, Transformer,
};
pub use faithful::{Ablation, Component, Faithfulness, FaithfulnessRun, components, kept_by};
pub use iia::{
    Alignment, Counterfactual, IiaReport, InterchangePair, Readout,
    interchange_intervention_accuracy,
};
pub use sweep::{Metric, SweepKind, SweepResult, parse_family, sweep};

/// Errors of the intervention stage.
#[derive(Debug, Error, miette::Diagnostic)]
pub enum InterveneError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Model(#[from] ModelError),

    #[error(
        "the base batch has {base} rows but the source batch has {source_rows}; patching pairs row i with row i"
    )]
    #[diagnostic(code(congruity::intervene::batch_mismatch))]
    BatchMismatch { base: usize, source_rows: usize },

    #[error(
        "the base sequences have {base} tokens but the source sequences have {source_len}; position-wise patching needs equal lengths"
    )]
    #[diagnostic(code(congruity::intervene::length_mismatch))]
    LengthMismatch { base: usize, source_len: usize },

    #[error("pair {pair}: variable `{variable}` is not in the alignment (known: {known})")]
    #[diagnostic(code(congruity::intervene::unknown_variable))]
    UnknownVariable {
        pair: usize,
        variable: String,
        known: String,
    },

    #[error("pair {pair}: {reason}")]
    #[diagnostic(code(congruity::intervene::pair))]
    Pair { pair: usize, reason: String },

    #[error("circuit `{circuit}`: {reason}")]
    #[diagnostic(code(congruity::intervene::circuit))]
    Circuit { circuit: String, reason: String },

    #[error("the counterfactual oracle failed on pair {pair}: {reason}")]
    #[diagnostic(code(congruity::intervene::oracle))]
    Oracle { pair: usize, reason: String },
}

/// Runs `model` on `tokens` keeping exactly `hooks`.
pub fn activations(
    model: &Transformer,
    tokens: &TokenBatch,
    hooks: impl IntoIterator<Item = HookPoint>,
) -> Result<ActivationCache, InterveneError> {
    let sel = HookSelection::only(hooks);
    Ok(model.forward(tokens, &RunOptions::cache(sel))?.cache)
}

/// Interventions that patch each site with its value on `source` (interchange intervention):
/// row i of the source goes into row i of the base.
pub fn patch_from_source(
    model: &Transformer,
    source: &TokenBatch,
    sites: &[Site],
) -> Result<(Vec<Intervention>, Tensor), InterveneError> {
    let hooks: BTreeSet<HookPoint> = sites.iter().map(|s| s.hook).collect();
    let out = model.forward(source, &RunOptions::cache(HookSelection::Only(hooks)))?;
    let ivs = sites
        .iter()
        .map(|s| {
            let src = out
                .cache
                .get(&s.hook)
                .cloned()
                .ok_or_else(|| ModelError::AbsentHook {
                    hook: s.hook.to_string(),
                    reason: "not produced by the source run".into(),
                })?;
            Ok(Intervention::new(s.clone(), Action::Replace(src)))
        })
        .collect::<Result<Vec<_>, InterveneError>>()?;
    Ok((ivs, out.logits))
}

/// Mean ablation of `site`: its mean over the `reference` batch (per position and head).
pub fn mean_ablation(
    model: &Transformer,
    site: Site,
    reference: &TokenBatch,
) -> Result<Intervention, InterveneError> {
    let mut cache = activations(model, reference, [site.hook])?;
    let act = cache
        .take(&site.hook)
        .ok_or_else(|| ModelError::AbsentHook {
            hook: site.hook.to_string(),
            reason: "not produced by the reference run".into(),
        })?;
    Ok(Intervention::new(
        site,
        Action::Mean(crate::model::batch_mean(&act)?),
    ))
}

/// Zero ablation of `site`.
pub fn zero_ablation(site: Site) -> Intervention {
    Intervention::new(site, Action::Zero)
}

/// Resample ablation of `site` within the batch (see [`Action::Resample`]).
pub fn resample_ablation(site: Site, seed: u64) -> Intervention {
    Intervention::new(site, Action::Resample { seed })
}

/// Logits of an activation-patching experiment.
#[derive(Clone, Debug)]
pub struct PatchOutput {
    /// Base run, no intervention.
    pub base_logits: Tensor,
    /// Source run, no intervention.
    pub source_logits: Tensor,
    /// Base run with the sites patched from the source run.
    pub patched_logits: Tensor,
}

/// A base and a source batch of the same shape: row i of the source patches row i of the base,
/// position by position.
pub(crate) fn check_pair(base: &TokenBatch, source: &TokenBatch) -> Result<(), InterveneError> {
    if base.batch() != source.batch() {
        return Err(InterveneError::BatchMismatch {
            base: base.batch(),
            source_rows: source.batch(),
        });
    }
    if base.len() != source.len() {
        return Err(InterveneError::LengthMismatch {
            base: base.len(),
            source_len: source.len(),
        });
    }
    Ok(())
}

/// Activation patching: runs `source`, then `base` with every site replaced by its source
/// value (TransformerLens `run_with_hooks` semantics: downstream is recomputed).
pub fn patch(
    model: &Transformer,
    base: &TokenBatch,
    source: &TokenBatch,
    sites: &[Site],
) -> Result<PatchOutput, InterveneError> {
    check_pair(base, source)?;
    let (ivs, source_logits) = patch_from_source(model, source, sites)?;
    let patched_logits = model.forward(base, &RunOptions::intervene(&ivs))?.logits;
    let base_logits = model.forward(base, &RunOptions::default())?.logits;
    Ok(PatchOutput {
        base_logits,
        source_logits,
        patched_logits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttnHook, BlockHook, ModelConfig};
    use candle_core::Device;

    fn model() -> Transformer {
        Transformer::random(ModelConfig::simple(2, 8, 2, 16, 7, 6), 3, &Device::Cpu).unwrap()
    }

    fn vec3(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn patching_everything_at_a_residual_reproduces_the_source() {
        let m = model();
        let base = TokenBatch::new(&[vec![1, 2, 3], vec![4, 5, 6]]).unwrap();
        let source = TokenBatch::new(&[vec![6, 0, 1], vec![2, 2, 2]]).unwrap();
        let site = Site::hook(HookPoint::block(1, BlockHook::ResidPre));
        let out = patch(&m, &base, &source, &[site]).unwrap();
        let (p, s) = (vec3(&out.patched_logits), vec3(&out.source_logits));
        for (a, b) in p.iter().zip(&s) {
            assert!((a - b).abs() < 1e-5);
        }
        assert_ne!(vec3(&out.base_logits), s);
    }

    #[test]
    fn patching_a_late_position_leaves_earlier_positions_alone() {
        let m = model();
        let base = TokenBatch::new(&[vec![1, 2, 3]]).unwrap();
        let source = TokenBatch::new(&[vec![4, 5, 6]]).unwrap();
        let site = Site::hook(HookPoint::attn(0, AttnHook::Z)).with_positions(vec![2]);
        let out = patch(&m, &base, &source, &[site]).unwrap();
        let (p, b) = (vec3(&out.patched_logits), vec3(&out.base_logits));
        let v = 7;
        assert_eq!(
            p[..2 * v],
            b[..2 * v],
            "causal model: positions 0, 1 unchanged"
        );
        assert_ne!(p[2 * v..], b[2 * v..]);
    }

    #[test]
    fn interventions_compose_in_hook_order() {
        // Zeroing resid_pre of block 1 then patching it from the source: the later-listed
        // intervention at the same hook wins; an earlier hook's change is overwritten by a
        // full replacement downstream.
        let m = model();
        let base = TokenBatch::new(&[vec![1, 2, 3]]).unwrap();
        let source = TokenBatch::new(&[vec![4, 5, 6]]).unwrap();
        let hook = HookPoint::block(1, BlockHook::ResidPre);
        let (mut ivs, source_logits) = patch_from_source(&m, &source, &[Site::hook(hook)]).unwrap();
        ivs.insert(0, zero_ablation(Site::hook(HookPoint::Embed)));
        ivs.insert(1, zero_ablation(Site::hook(hook)));
        let out = m.forward(&base, &RunOptions::intervene(&ivs)).unwrap();
        for (a, b) in vec3(&out.logits).iter().zip(vec3(&source_logits)) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn mean_ablation_uses_the_reference_mean() {
        let m = model();
        let reference = TokenBatch::new(&[vec![1, 2], vec![3, 4], vec![5, 6]]).unwrap();
        let hook = HookPoint::block(0, BlockHook::AttnOut);
        let iv = mean_ablation(&m, Site::hook(hook), &reference).unwrap();
        let out = m
            .forward(
                &TokenBatch::new(&[vec![0, 0]]).unwrap(),
                &RunOptions {
                    cache: HookSelection::only([hook]),
                    interventions: std::slice::from_ref(&iv),
                },
            )
            .unwrap();
        let refs = activations(&m, &reference, [hook]).unwrap();
        let r = refs.get(&hook).unwrap().to_vec3::<f32>().unwrap();
        let got = out.cache.get(&hook).unwrap().to_vec3::<f32>().unwrap();
        for p in 0..2 {
            for k in 0..8 {
                let mean = (r[0][p][k] + r[1][p][k] + r[2][p][k]) / 3.0;
                assert!((got[0][p][k] - mean).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn hook_tokens_caches_ids_and_patching_it_runs_the_source() {
        let mut cfg = ModelConfig::simple(1, 8, 2, 16, 7, 6);
        cfg.use_hook_tokens = true;
        let m = Transformer::random(cfg, 5, &Device::Cpu).unwrap();
        let base = TokenBatch::new(&[vec![1, 2, 3]]).unwrap();
        let source = TokenBatch::new(&[vec![6, 5, 4]]).unwrap();
        let cache = activations(&m, &base, [HookPoint::Tokens]).unwrap();
        assert_eq!(
            vec3(cache.get(&HookPoint::Tokens).unwrap()),
            vec![1., 2., 3.]
        );
        let out = patch(
            &m,
            &base,
            &source,
            &[Site::hook(HookPoint::Tokens).with_positions(vec![0, 1, 2])],
        )
        .unwrap();
        assert_eq!(vec3(&out.patched_logits), vec3(&out.source_logits));
        // Zeroing token ids is allowed (id 0 exists); a mean of ids that is not an integer is not.
        let reference = TokenBatch::new(&[vec![1, 2, 3], vec![2, 2, 3]]).unwrap();
        let iv = mean_ablation(&m, Site::hook(HookPoint::Tokens), &reference).unwrap();
        let msg = m
            .forward(&base, &RunOptions::intervene(&[iv]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("1.5") && msg.contains("not a token id"),
            "{msg}"
        );
        // Without use_hook_tokens the hook does not exist.
        let plain = model();
        assert!(
            activations(&plain, &base, [HookPoint::Tokens])
                .unwrap_err()
                .to_string()
                .contains("use_hook_tokens")
        );
    }

    #[test]
    fn mismatched_batches_are_errors() {
        let m = model();
        let a = TokenBatch::new(&[vec![1, 2]]).unwrap();
        let b = TokenBatch::new(&[vec![1, 2, 3]]).unwrap();
        let c = TokenBatch::new(&[vec![1, 2], vec![1, 2]]).unwrap();
        let site = [Site::hook(HookPoint::Embed)];
        assert!(matches!(
            patch(&m, &a, &b, &site),
            Err(InterveneError::LengthMismatch { .. })
        ));
        assert!(matches!(
            patch(&m, &a, &c, &site),
            Err(InterveneError::BatchMismatch { .. })
        ));
        let absent = [Site::hook(HookPoint::block(5, BlockHook::ResidPre))];
        let msg = patch(&m, &a, &a, &absent).unwrap_err().to_string();
        assert!(
            msg.contains("blocks.5.hook_resid_pre") && msg.contains("2 layers"),
            "{msg}"
        );
    }
}
