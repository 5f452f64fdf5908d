//! The tests a comparison runs, each on the pools it needs: the selectivity matrix between
//! interpretations, every model against every interpretation, the transfer matrix between all
//! pools, and the intervention test of a circuit.

use std::sync::Arc;

use super::plan::Plan;
use super::{CompareSettings, InterventionReport, ModelVerdict, Notes, materialise, progress};
use crate::equivalence::intervention::{InterventionConfig, intervention_test};
use crate::equivalence::model_test::{ModelTestResult, closer_test, membership_test};
use crate::equivalence::point::{PointTestConfig, SelectivityConfig, SelectivityMatrix, Verdict};
use crate::equivalence::selectivity_matrix;
use crate::equivalence::source::{ImplementationSource, derive_seed};
use crate::equivalence::transfer::{TransferConfig, TransferMatrix, transfer_matrix};
use crate::experiment::ExperimentError;
use crate::experiment::sampled::{PatchPlan, SampledSource};
use crate::lang::ir::Value;

/// The selectivity matrix between the sampled pools (none without them).
pub(super) fn selectivity(
    interps: &[&dyn ImplementationSource],
    point: &PointTestConfig,
    s: &CompareSettings,
    notes: &Notes,
) -> Result<Option<SelectivityMatrix>, ExperimentError> {
    if interps.is_empty() {
        return Ok(None);
    }
    notes.say("selectivity matrix");
    Ok(Some(selectivity_matrix(
        interps,
        &SelectivityConfig {
            point: point.clone(),
            replicates: s.bootstraps,
        },
    )?))
}

/// Every model pool against every interpretation: membership, and closer than each alternative.
pub(super) fn model_tests(
    models: &[&dyn ImplementationSource],
    interps: &[&dyn ImplementationSource],
    point: &PointTestConfig,
    s: &CompareSettings,
    notes: &Notes,
) -> Result<(Vec<ModelTestResult>, Vec<ModelVerdict>), ExperimentError> {
    let mut tests = Vec::new();
    let mut verdicts = Vec::new();
    if !models.is_empty() && !interps.is_empty() {
        notes.say("model tests");
    }
    for (mi, m) in models.iter().enumerate() {
        for (gi, g) in interps.iter().enumerate() {
            let cfg = |kind: u64, other: u64| PointTestConfig {
                seed: derive_seed(s.seed, &[4, mi as u64, gi as u64, kind, other]),
                progress: progress(s.progress, &format!("{} vs {}", m.label(), g.label())),
                ..point.clone()
            };
            let membership = membership_test(*m, *g, &cfg(0, 0))?;
            let mut distinguishable_from = Vec::new();
            let mut all_closer = true;
            for (oi, o) in interps.iter().enumerate() {
                if oi == gi {
                    continue;
                }
                let r = closer_test(*m, *g, *o, &cfg(1, oi as u64))?;
                if r.summary.verdict == Verdict::Distinguishable {
                    distinguishable_from.push(o.label().to_owned());
                } else {
                    all_closer = false;
                }
                tests.push(r);
            }
            let rejected = membership.summary.verdict == Verdict::Distinguishable;
            verdicts.push(ModelVerdict {
                model: m.label().to_owned(),
                interpretation: g.label().to_owned(),
                congruent: all_closer && !rejected && interps.len() > 1,
                distinguishable_from,
                membership_rejected: rejected,
            });
            tests.push(membership);
        }
    }
    Ok((tests, verdicts))
}

/// The transfer matrix between every pool.
pub(super) fn transfer(
    all: &[&dyn ImplementationSource],
    seed: u64,
    s: &CompareSettings,
    notes: &Notes,
) -> Result<TransferMatrix, ExperimentError> {
    notes.say("transfer matrix");
    Ok(transfer_matrix(
        all,
        &TransferConfig {
            measure: s.measure.clone(),
            max_pairs: s.draws,
            seed,
            bootstrap: 1000,
            confidence: s.confidence,
            progress: progress(s.progress, "transfer fits"),
        },
    )?)
}

/// The intervention test of the plan's circuit, for every target that runs its interpretation,
/// against every pool.
pub(super) fn intervention(
    plan: &Plan,
    sampled: &[SampledSource],
    all: &[&dyn ImplementationSource],
    s: &CompareSettings,
) -> Result<Vec<InterventionReport>, ExperimentError> {
    let mut out = Vec::new();
    let Some(cp) = &plan.circuit else {
        return Ok(out);
    };
    for &oi in &cp.owners {
        let clean = &sampled[oi];
        let target = clean.target().clone();
        let accept = |input: &[Value]| -> Result<(), ExperimentError> {
            target.reference(&plan.spec, input).map(|_| ())
        };
        let corrupted = Arc::new(plan.inputs.corrupted(
            &plan.task,
            plan.seeds.corrupted,
            accept,
        )?);
        let patch = PatchPlan::new(
            &target,
            &cp.circuit,
            s.patch_heads,
            plan.seeds.patched_heads,
            corrupted,
        )?;
        let patched = clean.patched(patch);
        materialise(&[&patched], s.progress, "patched implementations")?;
        let heads: Vec<Vec<String>> = (0..patched.count())
            .map(|i| {
                patched.patched_sites(i).map(|sites| {
                    sites
                        .iter()
                        .map(|st| match st.head {
                            Some(h) => format!("{}[{h}]", st.hook),
                            None => st.hook.to_string(),
                        })
                        .collect()
                })
            })
            .collect::<Result<_, _>>()?;
        for (ti, t) in all.iter().enumerate() {
            let result = intervention_test(
                clean,
                &patched,
                *t,
                &InterventionConfig {
                    measure: s.measure.clone(),
                    draws: s.draws,
                    seed: derive_seed(s.seed, &[8, oi as u64, ti as u64]),
                    confidence: s.confidence,
                    progress: progress(s.progress, &format!("intervention vs {}", t.label())),
                },
            )?;
            out.push(InterventionReport {
                circuit: cp.name.clone(),
                patched_heads: heads.clone(),
                result,
            });
        }
    }
    Ok(out)
}
