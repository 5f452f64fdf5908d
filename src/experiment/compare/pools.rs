//! The pools of implementations: one sampled pool per target, one pool per model directory.

use super::plan::Plan;
use super::{CompareSettings, PoolInfo, model_label, name_hash, widths};
use crate::equivalence::source::{ImplementationSource, derive_seed};
use crate::experiment::ExperimentError;
use crate::experiment::chain::reference_outputs;
use crate::experiment::sampled::{ModelDirSource, SampledSource};
use crate::lang::ir::Value;
use std::sync::Arc;

pub(super) struct Pools {
    pub sampled: Vec<SampledSource>,
    pub models: Vec<ModelDirSource>,
}

/// Pools by role: sampled interpretations, given models, and both (interpretations first).
type Refs<'a> = (
    Vec<&'a dyn ImplementationSource>,
    Vec<&'a dyn ImplementationSource>,
    Vec<&'a dyn ImplementationSource>,
);

impl Pools {
    pub fn build(plan: &Plan, s: &CompareSettings) -> Result<Pools, ExperimentError> {
        let mut sampled = Vec::with_capacity(plan.targets.len());
        for t in &plan.targets {
            if let Some(given) = s.given.get(&t.name) {
                let src = SampledSource::given(
                    t.clone(),
                    given,
                    plan.inputs.clone(),
                    s.representation.clone(),
                )?;
                if src.count() < 3 {
                    return Err(ExperimentError::ModelDir {
                        dir: given.dir.clone(),
                        reason: format!(
                            "holds {} implementation(s) of `{}`; a pool in the selectivity matrix needs at least 3",
                            src.count(),
                            t.name
                        ),
                    });
                }
                sampled.push(src);
                continue;
            }
            let traces: Vec<Vec<Vec<Value>>> = plan
                .inputs
                .inputs
                .iter()
                .map(|i| t.reference(&plan.spec, i))
                .collect::<Result<_, _>>()?;
            let mut src = SampledSource::new(
                t.clone(),
                s.families.clone(),
                sample_seed(s.seed, &t.name),
                s.samples,
                plan.inputs.clone(),
                Arc::new(reference_outputs(&traces)),
                s.representation.clone(),
            );
            if let Some(dir) = &s.keep_models {
                src = src.keep_models(dir);
            }
            if let Some(dir) = &s.cache_dir {
                src = src.cache_in(&dir.join("sampled"), &plan.spec);
            }
            sampled.push(src);
        }
        let mut models: Vec<ModelDirSource> = Vec::with_capacity(s.models.len());
        for dir in &s.models {
            // Labels are unique across targets and model pools.
            let base = model_label(dir);
            let mut label = base.clone();
            let mut k = 2;
            while plan.names.contains(&label) || models.iter().any(|m| m.label() == label) {
                label = format!("{base}#{k}");
                k += 1;
            }
            models.push(ModelDirSource::open(
                dir,
                label,
                plan.inputs.clone(),
                s.representation.clone(),
            )?);
        }
        Ok(Pools { sampled, models })
    }

    pub fn refs(&self) -> Refs<'_> {
        let interps: Vec<&dyn ImplementationSource> = self
            .sampled
            .iter()
            .map(|p| p as &dyn ImplementationSource)
            .collect();
        let models: Vec<&dyn ImplementationSource> = self
            .models
            .iter()
            .map(|p| p as &dyn ImplementationSource)
            .collect();
        let all = interps.iter().chain(&models).copied().collect();
        (interps, models, all)
    }

    /// Every pool, as reported.
    pub fn infos(&self, s: &CompareSettings) -> Result<Vec<PoolInfo>, ExperimentError> {
        let mut pools = Vec::new();
        for p in &self.sampled {
            let t = p.target();
            pools.push(PoolInfo {
                label: p.label().to_owned(),
                kind: if t.is_pipeline {
                    "pipeline"
                } else {
                    "interpretation"
                },
                count: p.count(),
                stages: t.stages.iter().map(|st| st.program.clone()).collect(),
                dirs: p
                    .given_dir()
                    .map(|d| vec![d.display().to_string()])
                    .unwrap_or_default(),
                seed: match p.given_dir() {
                    None => Some(sample_seed(s.seed, &t.name)),
                    Some(_) => None,
                },
                features: widths(p)?,
            });
        }
        for m in &self.models {
            pools.push(PoolInfo {
                label: m.label().to_owned(),
                kind: "models",
                count: m.count(),
                stages: Vec::new(),
                dirs: m.dirs().iter().map(|d| d.display().to_string()).collect(),
                seed: None,
                features: widths(m)?,
            });
        }
        Ok(pools)
    }
}

/// The seed that samples target `name`'s implementations (stream `[2, h(name)]`).
fn sample_seed(master: u64, name: &str) -> u64 {
    derive_seed(master, &[2, name_hash(name)])
}
