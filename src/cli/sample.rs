//! `congruity sample`: many function-preserving implementations of one interpretation.
//!
//! ```text
//! congruity sample FILE [--program NAME] --count K --seed S --out DIR [--family F...]
//! ```
//!
//! Writes `DIR/0000`, `DIR/0001`, ... (each loadable by `congruity run --model DIR/0003`), drawn
//! in parallel; item `i` uses a seed derived from `(S, i)`, so the output does not depend on the
//! thread count. Families: rotation, noise-width, placement, head-order, mlp-permutation,
//! rescale, overprovision, sharpness (default: all). For a pipeline, `DIR/000i` is chain `i`:
//! implementation `i` of every stage.
//!
//! `--family trained` (alone) trains each implementation instead (`congruity train` with a random
//! architecture): item `i` trains with a seed derived from `(S, i)` on the compiled layout or
//! `--circuit C`, and is kept only once accepted (accuracy and IIA at their thresholds); a
//! rejected draw is retried with the next attempt's seed, at most three times.
//! `--fixed-architecture` keeps the default shape for every item (only init and batches vary).

use std::path::PathBuf;
use std::process::ExitCode;

use super::compile::{Target, load_target, provenance, target};
use crate::compile::pipeline::compile_pipeline;
use crate::compile::sample::{Family, sample_to_dir_with_progress, write_pool};
use crate::compile::{CompileError, CompileOptions, compile_checked};
use crate::lang::Spec;
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The spec file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The interpretation (or pipeline) to sample implementations of; optional when the file
    /// defines only one.
    #[arg(long, value_name = "NAME")]
    pub program: Option<String>,

    /// How many implementations.
    #[arg(long, value_name = "K")]
    pub count: u64,

    /// The sampler's seed.
    #[arg(long, value_name = "S")]
    pub seed: u64,

    /// Output directory (implementations go to DIR/0000, DIR/0001, ...).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Families to draw from (repeatable; default all function-preserving ones), or `trained`
    /// alone.
    #[arg(long = "family", value_name = "F", value_parser = parse_family)]
    pub family: Vec<SampleFamily>,

    /// The circuit trained implementations realise (`--family trained`; default: the compiled
    /// layout).
    #[arg(long, value_name = "C")]
    pub circuit: Option<String>,

    /// The most optimiser steps per trained implementation.
    #[arg(long, value_name = "N", default_value_t = crate::train::TrainOptions::default().steps)]
    pub steps: usize,

    /// Train every implementation at the default architecture (the smallest that holds the
    /// circuit) instead of drawing one per implementation (`--family trained`).
    #[arg(long)]
    pub fixed_architecture: bool,
}

/// A family of `--family`: a function-preserving map of the compiled model, or training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleFamily {
    Compiled(Family),
    Trained,
}

fn parse_family(s: &str) -> Result<SampleFamily, String> {
    if s == "trained" {
        return Ok(SampleFamily::Trained);
    }
    s.parse().map(SampleFamily::Compiled)
}

pub fn run(args: Args) -> ExitCode {
    match load_target(&args.file, args.program.as_deref()) {
        Ok((spec, program)) => {
            if args.family.contains(&SampleFamily::Trained) {
                super::exit_code(trained::execute(&args, &spec, &program))
            } else {
                super::exit_code(execute(&args, &spec, &program))
            }
        }
        Err(code) => code,
    }
}

fn execute(args: &Args, spec: &Spec, program_name: &str) -> Result<(), CompileError> {
    super::compile::check_out_dir(&args.out, &super::compile::spec_inputs(spec, &args.file))?;
    let families: Vec<Family> = if args.family.is_empty() {
        Family::ALL.to_vec()
    } else {
        args.family
            .iter()
            .filter_map(|f| match f {
                SampleFamily::Compiled(f) => Some(*f),
                SampleFamily::Trained => None,
            })
            .collect()
    };
    if args.circuit.is_some() {
        return Err(CompileError::Sample {
            reason:
                "--circuit names what trained implementations realise; it needs --family trained"
                    .into(),
        });
    }
    if args.fixed_architecture {
        return Err(CompileError::Sample {
            reason:
                "--fixed-architecture is about trained implementations; it needs --family trained"
                    .into(),
        });
    }
    let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
    let opts = CompileOptions::default();
    let started = std::time::Instant::now();
    match target(spec, &args.file, program_name)? {
        Target::Interpretation(program) => {
            let (mut compiled, _) = compile_checked(program, &opts, args.seed)?;
            compiled.provenance = provenance(&args.file, program_name, None)?;
            let shapes = sample_to_dir_with_progress(
                &compiled,
                &families,
                args.seed,
                args.count,
                &args.out,
                &Progress::shown("sampling"),
            )?;
            let widest = shapes.iter().map(|s| s.d_model).max().unwrap_or(0);
            println!(
                "sampled {} implementation(s) of `{}` ({}) -> {}/0000.. in {:.2}s; d_model up to {}",
                args.count,
                program_name,
                names.join(", "),
                args.out.display(),
                started.elapsed().as_secs_f64(),
                widest
            );
        }
        Target::Pipeline => {
            let mut p = compile_pipeline(spec, program_name, &opts, args.seed)?;
            for st in p.stages.iter_mut() {
                st.compiled.provenance = provenance(&args.file, &st.program, None)?;
            }
            let pb = Progress::shown("sampling").bar(args.count, "chains");
            let about = serde_json::json!({
                "pipeline": program_name,
                "families": names,
                "base_seed": args.seed,
            });
            let written = write_pool(&args.out, args.count, about, &|i, dir| {
                let chain = p.sample_chain(&families, args.seed, i)?;
                p.write_chain(&chain, dir, &families, args.seed, i)?;
                pb.inc(1);
                Ok(())
            });
            pb.finish_and_clear();
            written?;
            println!(
                "sampled {} chain(s) of pipeline `{}` ({}) -> {}/0000.. in {:.2}s",
                args.count,
                program_name,
                names.join(", "),
                args.out.display(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// `--family trained`: a pool of trained, accepted implementations.
mod trained {
    use super::Args;
    use crate::cli::compile::{check_out_dir, spec_inputs};
    use crate::compile::sample::member_name;
    use crate::harness::trained::{
        Job, TrainedError, pool_file, pool_manifest, prepare, train_accepted, write_member,
    };
    use crate::lang::Spec;
    use crate::progress::Progress;
    use crate::train::TrainOptions;

    pub(super) fn execute(args: &Args, spec: &Spec, name: &str) -> Result<(), TrainedError> {
        if args.family.len() != 1 {
            return Err(TrainedError::Request(
                "`--family trained` trains implementations; it does not combine with the function-preserving families".into(),
            ));
        }
        check_out_dir(&args.out, &spec_inputs(spec, &args.file))?;
        let program = spec.programs.get(name).ok_or_else(|| {
            TrainedError::Request(format!(
                "`{name}` is a pipeline; sample trained implementations of its stages one by one (--program STAGE)"
            ))
        })?;
        let (compiled, corr) = prepare(
            spec,
            &args.file,
            program,
            args.seed,
            args.circuit.as_deref(),
        )?;
        let job = Job {
            file: &args.file,
            program,
            compiled: &compiled,
            corr: &corr,
        };
        let opts = TrainOptions {
            steps: args.steps,
            random_architecture: !args.fixed_architecture,
            ..TrainOptions::default()
        };
        let started = std::time::Instant::now();
        let progress = Progress::shown("training");
        crate::files::replace_dir(&args.out, |tmp| -> Result<(), TrainedError> {
            for index in 0..args.count {
                let shown = args.out.join(member_name(index));
                let rejected = |attempt: u64, why: &str| {
                    eprintln!(
                        "implementation {index}, draw {}: not accepted, {why}",
                        attempt + 1
                    );
                };
                let m =
                    train_accepted(&job, &opts, args.seed, index, &shown, &progress, &rejected)?;
                write_member(&tmp.join(member_name(index)), &m)?;
                crate::cli::train::print_member(&m, &shown);
            }
            let manifest = pool_manifest(
                &program.name,
                &corr.name,
                args.seed,
                args.count,
                args.fixed_architecture,
            );
            crate::model::io::write_json(&pool_file(tmp), &manifest)?;
            Ok(())
        })?;
        println!(
            "trained {} implementation(s) of `{}` on {} -> {}/0000.. in {:.1}s",
            args.count,
            program.name,
            corr.name,
            args.out.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}
