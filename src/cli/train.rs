//! `congruity train FILE [--program NAME] [--circuit C] --seed S --out DIR [--steps N]
//! [--threads T]`: trains a small model to implement an interpretation on a circuit by strict
//! interchange-intervention training, then measures it as `congruity test` would (accuracy on the
//! whole domain, IIA of the circuit) and writes it in the runtime's format. The model is accepted
//! as an implementation only when both reach their thresholds; the figures and the verdict are in
//! its sidecar either way, and an unaccepted model exits 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use super::compile::{check_out_dir, load_target, provenance, spec_inputs};
use crate::artifact::{CONFIG_FILE, MODEL_FILE, SIDECAR_FILE, Sidecar};
use crate::compile::{CompileOptions, compile_checked};
use crate::harness::{Iia, domain_behaviour, interchange_accuracy};
use crate::lang::ir::{Program, Spec};
use crate::model::{LoadedModel, ModelFormat};
use crate::progress::Progress;
use crate::train::{Correspondence, TrainOptions, Trained, train};

/// The training record written beside the model.
pub const TRAIN_REPORT_FILE: &str = "train.json";

/// Interchange pairs per variable of the acceptance measurement (`congruity iia`'s default).
const ACCEPT_PAIRS: usize = 400;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The spec file
    pub file: PathBuf,
    /// The interpretation to train (default: the file's only one)
    #[arg(long, value_name = "NAME")]
    pub program: Option<String>,
    /// The circuit to train on (default: the compiled layout)
    #[arg(long, value_name = "C")]
    pub circuit: Option<String>,
    /// Seed of the initial weights, the batches, the architecture draw and the measurement
    #[arg(long, value_name = "S")]
    pub seed: u64,
    /// Output model directory
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The most optimiser steps (training stops once accuracy and IIA hold)
    #[arg(long, value_name = "N", default_value_t = TrainOptions::default().steps)]
    pub steps: usize,
    /// Worker threads (default: one per core); a run is reproducible for a seed and thread count
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,
    /// Inputs per loss term per step
    #[arg(long, value_name = "B", default_value_t = TrainOptions::default().batch)]
    pub batch: usize,
    /// AdamW learning rate
    #[arg(long, value_name = "LR", default_value_t = TrainOptions::default().learning_rate)]
    pub lr: f64,
    /// Draw layers, heads and widths from the seed (the paper's random-architecture setting)
    #[arg(long)]
    pub random_architecture: bool,
    /// Weight of the interchange-intervention loss (the behaviour loss weighs 1)
    #[arg(long, value_name = "W", default_value_t = TrainOptions::default().loss_weights.interchange)]
    pub iit_weight: f64,
    /// Weight of the strict loss (unaligned components resampled, output unchanged)
    #[arg(long, value_name = "W", default_value_t = TrainOptions::default().loss_weights.strict)]
    pub strict_weight: f64,
    /// Accuracy on the domain a model needs to be accepted
    #[arg(long, value_name = "A", default_value_t = TrainOptions::default().min_accuracy)]
    pub min_accuracy: f64,
    /// IIA on the circuit a model needs to be accepted
    #[arg(long, value_name = "I", default_value_t = TrainOptions::default().min_iia)]
    pub min_iia: f64,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TrainCliError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Train(#[from] crate::train::TrainError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Compile(#[from] crate::compile::CompileError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    File(#[from] crate::files::FileError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error("{0}")]
    #[diagnostic(code(congruity::train::usage))]
    Usage(String),
    #[error("measuring the trained model: {0}")]
    #[diagnostic(code(congruity::train::measure))]
    Measure(String),
}

pub fn run(args: Args) -> ExitCode {
    let (spec, name) = match load_target(&args.file, args.program.as_deref()) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let go = || -> Result<bool, TrainCliError> {
        match args.threads {
            Some(t) if t > 0 => rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .map_err(|e| TrainCliError::Usage(format!("cannot start {t} threads: {e}")))?
                .install(|| execute(&args, &spec, &name)),
            Some(_) => Err(TrainCliError::Usage("--threads must be at least 1".into())),
            None => execute(&args, &spec, &name),
        }
    };
    match go() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            ExitCode::FAILURE
        }
    }
}

/// Trains, measures and writes; `Ok(accepted)`.
fn execute(args: &Args, spec: &Spec, name: &str) -> Result<bool, TrainCliError> {
    check_out_dir(&args.out, &spec_inputs(spec, &args.file))?;
    let program = spec.programs.get(name).ok_or_else(|| {
        TrainCliError::Usage(format!(
            "`{name}` is a pipeline; train its stages one by one (--program STAGE)"
        ))
    })?;
    for (what, x) in [
        ("--min-accuracy", args.min_accuracy),
        ("--min-iia", args.min_iia),
    ] {
        if !(0.0..=1.0).contains(&x) {
            return Err(TrainCliError::Usage(format!(
                "{what} must be in [0, 1], not {x}"
            )));
        }
    }
    let (compiled, corr) = prepare(
        spec,
        &args.file,
        program,
        args.seed,
        args.circuit.as_deref(),
    )?;
    let opts = TrainOptions {
        seed: args.seed,
        steps: args.steps,
        batch: args.batch,
        learning_rate: args.lr,
        min_accuracy: args.min_accuracy,
        min_iia: args.min_iia,
        random_architecture: args.random_architecture,
        loss_weights: crate::train::LossWeights {
            interchange: args.iit_weight,
            strict: args.strict_weight,
            ..Default::default()
        },
        ..TrainOptions::default()
    };
    eprintln!(
        "training `{}` on {} (seed {}, at most {} steps)",
        program.name, corr.name, args.seed, args.steps
    );
    let job = Job {
        file: &args.file,
        program,
        compiled: &compiled,
        corr: &corr,
    };
    let member = train_member(&job, &opts, &args.out, &Progress::shown("training"), None)?;
    crate::files::replace_dir(&args.out, |tmp| write_member(tmp, &member))?;
    print_member(&member, &args.out);
    if !member.accepted {
        eprintln!(
            "error: the model is not accepted as an implementation of `{}` (written with \"accepted\": false); train longer (--steps) or with another seed",
            program.name
        );
    }
    Ok(member.accepted)
}

/// `program` compiled with `seed` (its encodings are the trained model's), and what to train
/// it on: the circuit named by `--circuit` (checked to belong to `program`), or the compiled
/// layout.
pub(crate) fn prepare(
    spec: &Spec,
    file: &Path,
    program: &Program,
    seed: u64,
    circuit: Option<&str>,
) -> Result<(crate::compile::Compiled, Correspondence), TrainCliError> {
    let (compiled, _) = compile_checked(program, &CompileOptions::default(), seed)?;
    let Some(c) = circuit else {
        let corr = Correspondence::compiled_layout(program, &compiled)?;
        return Ok((compiled, corr));
    };
    let circuit = spec.circuits.get(c).ok_or_else(|| {
        let names: Vec<&str> = spec.circuits.keys().map(String::as_str).collect();
        TrainCliError::Usage(format!(
            "`{}` has no circuit `{c}`; its circuits: {}",
            file.display(),
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        ))
    })?;
    if circuit.program != program.name {
        return Err(TrainCliError::Usage(format!(
            "circuit `{c}` is for `{}`, not `{}`",
            circuit.program, program.name
        )));
    }
    Ok((compiled, Correspondence::from_circuit(circuit)?))
}

/// What one trained model is trained to implement.
pub(crate) struct Job<'a> {
    pub file: &'a Path,
    pub program: &'a Program,
    pub compiled: &'a crate::compile::Compiled,
    pub corr: &'a Correspondence,
}

/// A trained, measured model with its sidecar and training record, ready to write.
pub(crate) struct Member {
    pub trained: Trained,
    pub measured: Measured,
    pub accepted: bool,
    pub sidecar: Sidecar,
    pub record: serde_json::Value,
}

/// Trains with `opts`, then measures the model as `congruity test` would (`dir` only names it
/// in messages). `sample` is the pool provenance (`{"base_seed", "index", "attempt"}`), if any.
pub(crate) fn train_member(
    job: &Job<'_>,
    opts: &TrainOptions,
    dir: &Path,
    progress: &Progress,
    sample: Option<serde_json::Value>,
) -> Result<Member, TrainCliError> {
    let (program, compiled, corr) = (job.program, job.compiled, job.corr);
    let trained = train(program, compiled, corr, opts, progress)?;
    let sidecar = Sidecar::new(compiled.input.clone(), compiled.output.clone());
    let loaded = LoadedModel {
        transformer: trained.model.clone(),
        sidecar: Some(sidecar.clone()),
        format: ModelFormat::TransformerLens,
        dir: dir.to_path_buf(),
    };
    let measured = measure(&loaded, program, &trained, opts.seed)?;
    let accepted = measured.accuracy >= opts.min_accuracy && measured.iia >= opts.min_iia;
    let mut prov = serde_json::to_value(provenance(job.file, &program.name, Some(opts.seed))?)
        .unwrap_or_default();
    if let Some(p) = prov.as_object_mut() {
        p.insert("family".into(), json!(["trained"]));
        if let Some(s) = sample {
            p.insert("sample".into(), s);
        }
        p.insert(
            "training".into(),
            json!({
                "method": "siit",
                "circuit": corr.name,
                "architecture": trained.architecture,
                "steps": trained.report.steps,
                "accuracy": measured.accuracy,
                "accuracy_inputs": measured.inputs,
                "iia": measured.iia,
                "iia_pairs": measured.pairs,
                "min_accuracy": opts.min_accuracy,
                "min_iia": opts.min_iia,
                "accepted": accepted,
            }),
        );
    }
    let sidecar = Sidecar {
        provenance: prov,
        ..sidecar
    };
    let record = json!({
        "options": opts,
        "correspondence": corr,
        "circuit_block": corr.block_text(&program.name),
        "architecture": trained.architecture,
        "report": trained.report,
        "measured": {
            "accuracy": measured.accuracy,
            "coverage": measured.coverage,
            "iia": measured.iia,
            "per_variable": measured.per_variable,
        },
    });
    Ok(Member {
        trained,
        measured,
        accepted,
        sidecar,
        record,
    })
}

/// The summary lines of a trained model.
pub(crate) fn print_member(m: &Member, dir: &Path) {
    let (t, ms) = (&m.trained, &m.measured);
    println!(
        "trained `{}` ({}) in {} steps, {:.1} s -> {}",
        m.sidecar.provenance["program"].as_str().unwrap_or("?"),
        t.architecture.describe(),
        t.report.steps,
        t.report.seconds,
        dir.display()
    );
    let min = &m.sidecar.provenance["training"];
    let (min_acc, min_iia) = (
        min["min_accuracy"].as_f64().unwrap_or(1.0),
        min["min_iia"].as_f64().unwrap_or(1.0),
    );
    println!(
        "  accuracy {:.4} on {} ({})",
        ms.accuracy,
        ms.coverage,
        threshold(ms.accuracy, min_acc)
    );
    println!(
        "  iia({}) {:.4} on {} interchanges ({})",
        t.correspondence.name,
        ms.iia,
        ms.pairs,
        threshold(ms.iia, min_iia)
    );
    for (v, r) in &ms.per_variable {
        println!("    {v}: {r:.4}");
    }
}

fn threshold(x: f64, min: f64) -> String {
    if x >= min {
        format!(">= {min}")
    } else {
        format!("below {min}")
    }
}

/// The acceptance figures, measured as `congruity test` measures `accuracy` and `iia`.
pub(crate) struct Measured {
    pub accuracy: f64,
    pub inputs: usize,
    pub coverage: String,
    pub iia: f64,
    pub pairs: usize,
    pub per_variable: Vec<(String, f64)>,
}

fn measure(
    loaded: &LoadedModel,
    program: &Program,
    trained: &Trained,
    seed: u64,
) -> Result<Measured, TrainCliError> {
    let b = domain_behaviour(loaded, program, seed).map_err(TrainCliError::Measure)?;
    let circuit = trained.correspondence.to_circuit(&program.name);
    let iia: Iia = interchange_accuracy(loaded, program, &circuit, ACCEPT_PAIRS, seed)
        .map_err(TrainCliError::Measure)?;
    let rate = |c: usize, t: usize| if t == 0 { 0.0 } else { c as f64 / t as f64 };
    Ok(Measured {
        accuracy: rate(b.correct, b.total),
        inputs: b.total,
        coverage: b.domain.describe(),
        iia: rate(iia.correct, iia.total),
        pairs: iia.total,
        per_variable: iia
            .variables
            .iter()
            .map(|v| (v.variable.clone(), rate(v.correct, v.total)))
            .collect(),
    })
}

/// Writes a member's files into `dir` (weights, config, sidecar, training record); callers put
/// `dir` in place atomically.
pub(crate) fn write_member(dir: &Path, m: &Member) -> Result<(), TrainCliError> {
    let t = &m.trained.model;
    std::fs::create_dir_all(dir).map_err(|e| {
        TrainCliError::Model(crate::model::ModelError::Write {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })
    })?;
    m.sidecar.validate(t.config(), &dir.join(SIDECAR_FILE))?;
    crate::model::io::write_safetensors(&dir.join(MODEL_FILE), t.weights().named())?;
    crate::model::io::write_json(&dir.join(CONFIG_FILE), &t.config().to_tl_json())?;
    crate::model::io::write_json(&dir.join(SIDECAR_FILE), &m.sidecar)?;
    crate::model::io::write_json(&dir.join(TRAIN_REPORT_FILE), &m.record)?;
    Ok(())
}
