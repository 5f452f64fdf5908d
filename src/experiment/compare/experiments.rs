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
use crate::experiment::circuit::{CircuitMapping, declared_sites, spec_name};
use crate::experiment::sampled::{
    ModelDirSource, ModelPatch, PatchPlan, SampledSource, choose_sites,
};
use crate::lang::ir::Value;
use crate::model::Site;

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

/// The intervention test of the plan's circuit against every pool: on every target that runs
/// its interpretation (sites found as [`PatchPlan`] decides) and on every model pool (sites as
/// declared, checked against each model).
pub(super) fn intervention(
    plan: &Plan,
    sampled: &[SampledSource],
    models: &[ModelDirSource],
    all: &[&dyn ImplementationSource],
    s: &CompareSettings,
) -> Result<Vec<InterventionReport>, ExperimentError> {
    let mut out = Vec::new();
    let Some(cp) = &plan.circuit else {
        return Ok(out);
    };
    let mut first_corrupted = None;
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
        first_corrupted.get_or_insert_with(|| corrupted.clone());
        let patch = PatchPlan::new(
            &target,
            &cp.circuit,
            s.patch_heads,
            plan.seeds.patched_heads,
            corrupted,
        )?;
        // Given implementations have no placement record: they are patched as declared.
        let mapping = match clean.given_dir() {
            Some(_) => CircuitMapping::Declared,
            None => patch.mapping,
        };
        let patched = clean.patched(patch);
        materialise(&[&patched], s.progress, "patched implementations")?;
        let sites: Vec<Vec<String>> = (0..patched.count())
            .map(|i| patched.patched_sites(i).map(|sites| site_names(&sites)))
            .collect::<Result<_, _>>()?;
        let seed = |ti: usize| derive_seed(s.seed, &[8, oi as u64, ti as u64]);
        out.extend(tests_against(
            &cp.name, clean, &patched, mapping, &sites, all, seed, s,
        )?);
    }
    let Some(corrupted) = first_corrupted else {
        return Ok(out);
    };
    // The models under test have no placement record: they are patched where the circuit says.
    let declared = declared_sites(&cp.circuit)?;
    let chosen =
        |i: usize| choose_sites(declared.clone(), s.patch_heads, plan.seeds.patched_heads, i);
    for (mi, m) in models.iter().enumerate() {
        // One choice of sites per pool when fewer than all are patched: index 0's.
        let patched = m.patched(ModelPatch {
            circuit: cp.name.clone(),
            program: cp.circuit.program.clone(),
            sites: chosen(0),
            corrupted: corrupted.clone(),
        });
        materialise(&[&patched], s.progress, "patched models")?;
        let sites = vec![site_names(&chosen(0)); m.count()];
        let seed = |ti: usize| derive_seed(s.seed, &[9, mi as u64, ti as u64]);
        out.extend(tests_against(
            &cp.name,
            m,
            &patched,
            CircuitMapping::Declared,
            &sites,
            all,
            seed,
            s,
        )?);
    }
    Ok(out)
}

fn site_names(sites: &[Site]) -> Vec<String> {
    sites.iter().map(spec_name).collect()
}

/// The intervention test of `clean` / `patched` against every pool that has a target to draw
/// (a pool of one model cannot be its own target: `t = k` is never drawn).
#[allow(clippy::too_many_arguments)]
fn tests_against(
    circuit: &str,
    clean: &dyn ImplementationSource,
    patched: &dyn ImplementationSource,
    mapping: CircuitMapping,
    sites: &[Vec<String>],
    all: &[&dyn ImplementationSource],
    seed: impl Fn(usize) -> u64,
    s: &CompareSettings,
) -> Result<Vec<InterventionReport>, ExperimentError> {
    let mut out = Vec::new();
    for (ti, t) in all.iter().enumerate() {
        if t.label() == clean.label() && t.count() < 2 {
            continue;
        }
        let result = intervention_test(
            clean,
            patched,
            *t,
            &InterventionConfig {
                measure: s.measure.clone(),
                draws: s.draws,
                seed: seed(ti),
                confidence: s.confidence,
                progress: progress(s.progress, &format!("intervention vs {}", t.label())),
            },
        )?;
        out.push(InterventionReport {
            circuit: circuit.to_owned(),
            variable: s.patch_variable.clone(),
            mapping,
            patched_sites: sites.to_vec(),
            result,
        });
    }
    Ok(out)
}
