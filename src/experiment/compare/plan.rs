//! What a comparison is about, settled before any expensive work: the spec and its hashes, the
//! targets (compiled), the circuit of the intervention test, the task, the seeds and the common
//! inputs.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{CompareSettings, InputsReport, Notes, Seeds, SettingsReport, SpecFile};
use crate::experiment::ExperimentError;
use crate::experiment::circuit::restricted_to;
use crate::experiment::inputs::InputSet;
use crate::experiment::sampled::{Compiler, Target};
use crate::lang::ir::{Circuit, Spec, Task, Value};

/// The circuit of the intervention test and the targets that run its interpretation.
pub(super) struct CircuitPlan {
    pub name: String,
    pub circuit: Circuit,
    /// Indices into [`Plan::targets`].
    pub owners: Vec<usize>,
}

pub(super) struct Plan {
    pub spec: Spec,
    pub files: Vec<SpecFile>,
    /// The interpretations and pipelines sampled, by name.
    pub names: Vec<String>,
    pub targets: Vec<Arc<Target>>,
    pub circuit: Option<CircuitPlan>,
    pub task: Arc<Task>,
    pub seeds: Seeds,
    pub inputs: Arc<InputSet>,
}

impl Plan {
    pub fn new(
        spec_path: &Path,
        s: &CompareSettings,
        notes: &Notes,
    ) -> Result<Plan, ExperimentError> {
        if s.samples == 0 {
            return Err(ExperimentError::NoSamples);
        }
        let loaded = crate::lang::load_all(spec_path).map_err(|source| ExperimentError::Spec {
            path: spec_path.to_path_buf(),
            source,
        })?;
        let spec = loaded.spec;
        let files: Vec<SpecFile> = loaded
            .files
            .iter()
            .map(|f| SpecFile {
                path: f.source.name.to_string(),
                sha256: Sha256::digest(f.source.text.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            })
            .collect();

        let names = target_names(&spec, s)?;
        if let Some(name) = s.given.keys().find(|g| !names.contains(g)) {
            return Err(ExperimentError::GivenNotCompared {
                name: name.clone(),
                compared: names.clone(),
            });
        }
        notes.say(&format!("compiling {} target(s)", names.len()));
        if !names.is_empty() && s.samples < 3 {
            return Err(ExperimentError::TooFewSamples { samples: s.samples });
        }
        let mut compiler = Compiler::new(s.seed);
        let targets: Vec<Arc<Target>> = names
            .iter()
            .map(|n| compiler.target(&spec, n).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let circuit = circuit_plan(
            &spec,
            &targets,
            s.circuit.as_deref(),
            s.patch_variable.as_deref(),
        )?;
        let task = input_task(&spec, &targets, s.task.as_deref())?;
        let seeds = Seeds::from_master(s.seed);
        // The inputs: from the chosen task, accepted by every target.
        let accept = |input: &[Value]| -> Result<(), ExperimentError> {
            for t in &targets {
                t.reference(&spec, input)?;
            }
            Ok(())
        };
        let inputs = Arc::new(InputSet::sample(&task, s.inputs, seeds.inputs, accept)?);
        notes.say(&format!(
            "{} inputs from task `{}` ({})",
            inputs.len(),
            task.name,
            inputs.id
        ));
        Ok(Plan {
            spec,
            files,
            names,
            targets,
            circuit,
            task,
            seeds,
            inputs,
        })
    }

    /// The common inputs, as reported.
    pub fn inputs_report(&self) -> InputsReport {
        InputsReport {
            id: self.inputs.id.to_string(),
            task: self.task.name.clone(),
            count: self.inputs.len(),
            lengths: self.inputs.length_histogram(),
        }
    }
}

/// The settings, as reported.
pub(super) fn settings_report(s: &CompareSettings) -> SettingsReport {
    SettingsReport {
        samples: s.samples,
        measure: s.measure.to_string(),
        inputs: s.inputs,
        bootstraps: s.bootstraps,
        draws: s.draws,
        families: s.families.iter().map(|f| f.name().to_string()).collect(),
        representation: s.representation.describe(),
        confidence: s.confidence,
        interval: s.interval,
        epsilon: s.epsilon.to_string(),
    }
}

/// The interpretations and pipelines to sample: as given; else every pipeline of the spec, or
/// every interpretation when it has none; none when only models are compared.
fn target_names(spec: &Spec, s: &CompareSettings) -> Result<Vec<String>, ExperimentError> {
    let names: Vec<String> = if !s.interpretations.is_empty() {
        s.interpretations.clone()
    } else if s.models.is_empty() {
        if spec.pipelines.is_empty() {
            spec.programs.keys().cloned().collect()
        } else {
            spec.pipelines.keys().cloned().collect()
        }
    } else {
        Vec::new()
    };
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(ExperimentError::DuplicateTarget { name: n.clone() });
        }
    }
    Ok(names)
}

fn circuit_plan(
    spec: &Spec,
    targets: &[Arc<Target>],
    name: Option<&str>,
    variable: Option<&str>,
) -> Result<Option<CircuitPlan>, ExperimentError> {
    let Some(name) = name else {
        return Ok(None);
    };
    let circuit = restricted_to(
        spec.circuits
            .get(name)
            .ok_or_else(|| ExperimentError::UnknownCircuit {
                name: name.to_string(),
                known: spec.circuits.keys().cloned().collect(),
            })?,
        variable,
    )?;
    let circuit = &circuit;
    let owners: Vec<usize> = targets
        .iter()
        .enumerate()
        .filter(|(_, t)| t.stages.iter().any(|st| st.program == circuit.program))
        .map(|(i, _)| i)
        .collect();
    if owners.is_empty() {
        return Err(ExperimentError::CircuitNotCompared {
            circuit: name.to_string(),
            program: circuit.program.clone(),
        });
    }
    Ok(Some(CircuitPlan {
        name: name.to_string(),
        circuit: circuit.clone(),
        owners,
    }))
}

/// The task whose domain the inputs come from: as given, else the first target's, else the
/// spec's only task.
fn input_task(
    spec: &Spec,
    targets: &[Arc<Target>],
    name: Option<&str>,
) -> Result<Arc<Task>, ExperimentError> {
    let known = || spec.tasks.keys().cloned().collect::<Vec<_>>();
    match name {
        Some(t) => spec
            .tasks
            .get(t)
            .cloned()
            .ok_or_else(|| ExperimentError::UnknownTask {
                name: t.to_string(),
                known: known(),
            }),
        None => match targets.first() {
            Some(t) => Ok(t.task.clone()),
            None if spec.tasks.len() == 1 => spec
                .tasks
                .values()
                .next()
                .cloned()
                .ok_or(ExperimentError::NoTask),
            None => Err(ExperimentError::TaskNeeded { known: known() }),
        },
    }
}
