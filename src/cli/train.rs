//! `congruity train FILE [--program NAME] [--circuit C] --seed S --out DIR [--steps N]
//! [--threads T]`: trains a small model to implement an interpretation on a circuit by strict
//! interchange-intervention training, then measures it as `congruity test` would (accuracy on the
//! whole domain, IIA of the circuit) and writes it in the runtime's format. The model is accepted
//! as an implementation only when both reach their thresholds; the figures and the verdict are in
//! its sidecar either way, and an unaccepted model exits 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::compile::{check_out_dir, load_target, spec_inputs};
use crate::harness::trained::{Job, Member, TrainedError, prepare, train_member, write_member};
use crate::lang::Spec;
use crate::progress::Progress;
use crate::train::TrainOptions;

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
    /// Inputs per loss term per step, over all its lengths
    #[arg(long, value_name = "B", default_value_t = TrainOptions::default().batch)]
    pub batch: usize,
    /// Input lengths per step, each with B / L of the inputs (drawn with replacement)
    #[arg(long, value_name = "L", default_value_t = TrainOptions::default().lengths_per_step)]
    pub lengths_per_step: usize,
    /// Scale each step's gradient down to this global L2 norm at most (0: no clipping)
    #[arg(long, value_name = "N", default_value_t = TrainOptions::default().clip_norm.unwrap_or(0.0))]
    pub clip_norm: f64,
    /// AdamW learning rate
    #[arg(long, value_name = "LR", default_value_t = TrainOptions::default().learning_rate)]
    pub lr: f64,
    /// Draw layers, heads and widths from the seed (the paper's random-architecture setting)
    #[arg(long)]
    pub random_architecture: bool,
    /// Draw where each variable is computed: the used layers spread at random over the model's
    /// layers (in order), heads permuted within each layer (the paper's random-correspondence
    /// setting; moves something only with spare layers or heads, e.g. with
    /// --random-architecture)
    #[arg(long)]
    pub random_correspondence: bool,
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

pub fn run(args: Args) -> ExitCode {
    let (spec, name) = match load_target(&args.file, args.program.as_deref()) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let go = || -> Result<bool, TrainedError> {
        match args.threads {
            Some(t) if t > 0 => rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .map_err(|e| TrainedError::Request(format!("cannot start {t} threads: {e}")))?
                .install(|| execute(&args, &spec, &name)),
            Some(_) => Err(TrainedError::Request("--threads must be at least 1".into())),
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
fn execute(args: &Args, spec: &Spec, name: &str) -> Result<bool, TrainedError> {
    check_out_dir(&args.out, &spec_inputs(spec, &args.file))?;
    let program = spec.programs.get(name).ok_or_else(|| {
        TrainedError::Request(format!(
            "`{name}` is a pipeline; train its stages one by one (--program STAGE)"
        ))
    })?;
    for (what, x) in [
        ("--min-accuracy", args.min_accuracy),
        ("--min-iia", args.min_iia),
    ] {
        if !(0.0..=1.0).contains(&x) {
            return Err(TrainedError::Request(format!(
                "{what} must be in [0, 1], not {x}"
            )));
        }
    }
    let clip_norm = clip_norm(args.clip_norm)?;
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
        lengths_per_step: args.lengths_per_step,
        clip_norm,
        learning_rate: args.lr,
        min_accuracy: args.min_accuracy,
        min_iia: args.min_iia,
        random_architecture: args.random_architecture,
        random_correspondence: args.random_correspondence,
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

/// `--clip-norm N` as the option: 0 is no clipping.
pub(crate) fn clip_norm(n: f64) -> Result<Option<f64>, TrainedError> {
    if !(n >= 0.0 && n.is_finite()) {
        return Err(TrainedError::Request(format!(
            "--clip-norm must be a finite norm of 0 (no clipping) or more, not {n}"
        )));
    }
    Ok((n > 0.0).then_some(n))
}

/// The summary line of a model kept from an earlier run (`kept` is where it is kept).
pub(crate) fn print_kept(kept: &Path, dir: &Path) {
    let sidecar = std::fs::read_to_string(kept.join(crate::artifact::SIDECAR_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .unwrap_or_default();
    let t = &sidecar["provenance"]["training"];
    println!(
        "kept `{}` ({} steps, accuracy {}, iia {}) -> {}",
        sidecar["provenance"]["program"].as_str().unwrap_or("?"),
        t["steps"],
        t["accuracy"],
        t["iia"],
        dir.display()
    );
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
