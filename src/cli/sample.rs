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
//! Each item draws its architecture and where in it each variable is computed (random
//! correspondence); `--fixed-architecture` keeps the default shape and the circuit's own sites
//! for every item (only the initial weights and the batches vary).

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

    /// Keep each accepted trained model under DIR as soon as it is accepted, and reuse the ones
    /// kept there (keyed by everything they depend on), so an interrupted `--family trained` run
    /// resumes where it stopped
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// The most optimiser steps per trained implementation.
    #[arg(long, value_name = "N", default_value_t = crate::train::TrainOptions::default().steps)]
    pub steps: usize,

    /// Input lengths per training step (`--family trained`; see `congruity train`)
    #[arg(long, value_name = "L", default_value_t = crate::train::TrainOptions::default().lengths_per_step)]
    pub lengths_per_step: usize,

    /// Scale each training step's gradient down to this global L2 norm at most (0: no clipping;
    /// `--family trained`)
    #[arg(long, value_name = "N", default_value_t = crate::train::TrainOptions::default().clip_norm.unwrap_or(0.0))]
    pub clip_norm: f64,

    /// Train every implementation at the default architecture (the smallest that holds the
    /// circuit) and on the circuit's own sites, instead of drawing an architecture and a
    /// correspondence per implementation (`--family trained`).
    #[arg(long)]
    pub fixed_architecture: bool,

    /// The variable of --circuit whose sites intervened implementations patch (`--family
    /// intervened`; default: all of the circuit's)
    #[arg(long, value_name = "V")]
    pub variable: Option<String>,

    /// How many of those sites each intervened implementation patches, chosen per item from the
    /// seed (default: all)
    #[arg(long, value_name = "N")]
    pub patch_heads: Option<usize>,

    /// The implementations intervened implementations patch: the members of this pool, in turn
    /// (default: the compiled model)
    #[arg(long, value_name = "POOL")]
    pub from: Option<PathBuf>,
}

/// A family of `--family`: a function-preserving map of the compiled model, or training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleFamily {
    Compiled(Family),
    Trained,
    Intervened,
}

fn parse_family(s: &str) -> Result<SampleFamily, String> {
    match s {
        "trained" => Ok(SampleFamily::Trained),
        "intervened" => Ok(SampleFamily::Intervened),
        _ => s.parse().map(SampleFamily::Compiled),
    }
}

pub fn run(args: Args) -> ExitCode {
    match load_target(&args.file, args.program.as_deref()) {
        Ok((spec, program)) => {
            if args.family.contains(&SampleFamily::Trained) {
                super::exit_code(trained::execute(&args, &spec, &program))
            } else if args.family.contains(&SampleFamily::Intervened) {
                super::exit_code(intervened::execute(&args, &spec, &program))
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
                SampleFamily::Trained | SampleFamily::Intervened => None,
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
    if args.variable.is_some() || args.patch_heads.is_some() || args.from.is_some() {
        return Err(CompileError::Sample {
            reason: "--variable, --patch-heads and --from are about intervened implementations; they need --family intervened"
                .into(),
        });
    }
    if args.fixed_architecture || args.cache_dir.is_some() || !trained::default_training(args) {
        return Err(CompileError::Sample {
            reason:
                "--fixed-architecture, --cache-dir, --lengths-per-step and --clip-norm are about trained implementations; they need --family trained"
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
    use std::path::Path;

    use super::Args;
    use crate::cli::compile::{check_out_dir, spec_inputs};
    use crate::compile::sample::member_name;
    use crate::harness::trained::{
        Job, Kept, PipelineJobs, TrainedError, copy_member, pool_file, pool_manifest, prepare,
        train_accepted, write_member,
    };
    use crate::lang::Spec;
    use crate::progress::Progress;
    use crate::train::TrainOptions;

    /// Whether the training settings are all left at their defaults.
    pub(super) fn default_training(args: &Args) -> bool {
        let d = TrainOptions::default();
        args.lengths_per_step == d.lengths_per_step
            && crate::cli::train::clip_norm(args.clip_norm).ok() == Some(d.clip_norm)
    }

    pub(super) fn execute(args: &Args, spec: &Spec, name: &str) -> Result<(), TrainedError> {
        let clip_norm = crate::cli::train::clip_norm(args.clip_norm)?;
        if args.family.len() != 1 {
            return Err(TrainedError::Request(
                "`--family trained` trains implementations; it does not combine with the function-preserving families".into(),
            ));
        }
        check_out_dir(&args.out, &spec_inputs(spec, &args.file))?;
        let opts = TrainOptions {
            steps: args.steps,
            lengths_per_step: args.lengths_per_step,
            clip_norm,
            random_architecture: !args.fixed_architecture,
            random_correspondence: !args.fixed_architecture,
            ..TrainOptions::default()
        };
        let Some(program) = spec.programs.get(name) else {
            return execute_pipeline(args, spec, name, &opts);
        };
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
        let started = std::time::Instant::now();
        let progress = Progress::shown("training");
        let kept = args
            .cache_dir
            .as_ref()
            .map(|d| Kept::new(d, &job, &opts, args.seed));
        crate::files::replace_dir(&args.out, |tmp| -> Result<(), TrainedError> {
            for index in 0..args.count {
                let shown = args.out.join(member_name(index));
                let dest = tmp.join(member_name(index));
                put_member(
                    &job,
                    &opts,
                    kept.as_ref(),
                    args.seed,
                    index,
                    &shown,
                    &dest,
                    &progress,
                )?;
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

    /// Implementation `index` of a pool trained from `base_seed`, written to `dest` (trained
    /// now, or copied from the kept ones); `shown` names it in messages.
    #[allow(clippy::too_many_arguments)]
    fn put_member(
        job: &Job<'_>,
        opts: &TrainOptions,
        kept: Option<&Kept>,
        base_seed: u64,
        index: u64,
        shown: &Path,
        dest: &Path,
        progress: &Progress,
    ) -> Result<(), TrainedError> {
        let rejected = |attempt: u64, why: &str| {
            eprintln!(
                "{} implementation {index}, draw {}: not accepted, {why}",
                job.program.name,
                attempt + 1
            );
        };
        match kept {
            Some(kept) => {
                let from = kept.member(job, opts, index, progress, &rejected)?;
                copy_member(&from, dest)?;
                crate::cli::train::print_kept(&from, shown);
            }
            None => {
                let m = train_accepted(job, opts, base_seed, index, shown, progress, &rejected)?;
                write_member(dest, &m)?;
                crate::cli::train::print_member(&m, shown);
            }
        }
        Ok(())
    }

    /// A pool of trained chains of pipeline `name` ([`PipelineJobs`]).
    fn execute_pipeline(
        args: &Args,
        spec: &Spec,
        name: &str,
        opts: &TrainOptions,
    ) -> Result<(), TrainedError> {
        if args.circuit.is_some() {
            return Err(TrainedError::Request(format!(
                "`{name}` is a pipeline: each stage is trained on its compiled layout, and --circuit names one interpretation's circuit (sample a stage with --program STAGE --circuit C)"
            )));
        }
        let jobs = PipelineJobs::new(spec, &args.file, name, args.seed)?;
        let kept: Vec<Option<Kept>> = (0..jobs.stages())
            .map(|k| {
                let (job, seed, _) = jobs.stage(k);
                args.cache_dir
                    .as_ref()
                    .map(|d| Kept::new(d, &job, opts, seed))
            })
            .collect();
        let started = std::time::Instant::now();
        let progress = Progress::shown("training");
        crate::files::replace_dir(&args.out, |tmp| -> Result<(), TrainedError> {
            for index in 0..args.count {
                let shown = args.out.join(member_name(index));
                jobs.write_chain(index, &tmp.join(member_name(index)), &|k, dest| {
                    let (job, seed, sub) = jobs.stage(k);
                    put_member(
                        &job,
                        opts,
                        kept[k].as_ref(),
                        seed,
                        index,
                        &shown.join(sub),
                        dest,
                        &progress,
                    )
                })?;
            }
            let manifest = jobs.pool_manifest(args.count, args.fixed_architecture);
            crate::model::io::write_json(&pool_file(tmp), &manifest)?;
            Ok(())
        })?;
        println!(
            "trained {} chain(s) of pipeline `{name}` ({} stages) -> {}/0000.. in {:.1}s",
            args.count,
            jobs.stages(),
            args.out.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// `--family intervened`: implementations with one variable's circuit sites patched from a
/// corrupted input (see `experiment::intervened`).
mod intervened {
    use std::path::Path;

    use serde_json::json;

    use super::{Args, SampleFamily};
    use crate::cli::compile::{check_out_dir, spec_inputs};
    use crate::compile::sample::{POOL_FILE, POOL_FORMAT, member_name};
    use crate::compile::{CompileOptions, Provenance, compile_checked};
    use crate::experiment::circuit::check_sites;
    use crate::experiment::intervened::{INTERVENTION_FILE, Intervention};
    use crate::experiment::sampled::pool_members;
    use crate::lang::Spec;

    #[derive(Debug, thiserror::Error, miette::Diagnostic)]
    pub(super) enum IntervenedError {
        #[error(transparent)]
        #[diagnostic(transparent)]
        Experiment(#[from] crate::experiment::ExperimentError),
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
        #[diagnostic(code(congruity::sample::usage))]
        Usage(String),
        #[error("writing {}: {reason}", path.display())]
        #[diagnostic(code(congruity::sample::write))]
        Write {
            path: std::path::PathBuf,
            reason: String,
        },
    }

    pub(super) fn execute(args: &Args, spec: &Spec, name: &str) -> Result<(), IntervenedError> {
        let usage = |s: &str| Err(IntervenedError::Usage(s.into()));
        if args.family != [SampleFamily::Intervened] {
            return usage(
                "`--family intervened` patches implementations; it does not combine with other families",
            );
        }
        if args.fixed_architecture
            || args.cache_dir.is_some()
            || !super::trained::default_training(args)
        {
            return usage(
                "--fixed-architecture, --cache-dir, --lengths-per-step and --clip-norm are about trained implementations",
            );
        }
        check_out_dir(&args.out, &spec_inputs(spec, &args.file))?;
        let program = spec.programs.get(name).ok_or_else(|| {
            IntervenedError::Usage(format!(
                "`{name}` is a pipeline; sample intervened implementations of a stage (--program STAGE)"
            ))
        })?;
        let Some(cname) = args.circuit.as_deref() else {
            return usage("`--family intervened` needs --circuit C: whose sites are patched");
        };
        let circuit = spec.circuits.get(cname).ok_or_else(|| {
            IntervenedError::Usage(format!(
                "`{}` has no circuit `{cname}`; its circuits: {}",
                args.file.display(),
                spec.circuits.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        if circuit.program != program.name {
            return Err(IntervenedError::Usage(format!(
                "circuit `{cname}` is for `{}`, not `{}`",
                circuit.program, program.name
            )));
        }
        let bases = match &args.from {
            Some(pool) => Some(pool_members(pool)?),
            None => None,
        };
        let compiled = match bases {
            Some(_) => None,
            None => {
                let (mut c, _) = compile_checked(program, &CompileOptions::default(), args.seed)?;
                c.provenance = Provenance::of_spec(&args.file, &program.name, Some(args.seed))?;
                Some(c)
            }
        };
        let started = std::time::Instant::now();
        crate::files::replace_dir(&args.out, |tmp| -> Result<(), IntervenedError> {
            for index in 0..args.count as usize {
                let dir = tmp.join(member_name(index as u64));
                let base = match (&bases, &compiled) {
                    (Some(b), _) => {
                        let from = &b[index % b.len()];
                        copy_model(from, &dir)?;
                        from.display().to_string()
                    }
                    (None, Some(c)) => {
                        c.write(&dir)?;
                        format!("compiled `{}` (seed {})", program.name, args.seed)
                    }
                    (None, None) => unreachable!("a base is compiled when no pool is given"),
                };
                let i = Intervention::draw(
                    circuit,
                    args.variable.as_deref(),
                    args.patch_heads,
                    &program.task,
                    args.seed,
                    index,
                )?;
                let sites = i.parsed_sites().map_err(IntervenedError::Usage)?;
                let model = crate::model::load_base(&dir, &candle_core::Device::Cpu)?;
                check_sites(&i.circuit, &sites, &model.transformer, &base)?;
                crate::model::io::write_json(&dir.join(INTERVENTION_FILE), &i)?;
                println!(
                    "{}: {} patched in {base}; corrupted inputs {}",
                    args.out.join(member_name(index as u64)).display(),
                    i.sites.join(" "),
                    i.corrupted
                        .iter()
                        .map(|(n, t)| format!("{n}: `{t}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let manifest = json!({
                "format": POOL_FORMAT,
                "count": args.count,
                "members": (0..args.count).map(member_name).collect::<Vec<_>>(),
                "about": {
                    "interpretation": program.name,
                    "families": ["intervened"],
                    "circuit": cname,
                    "variable": args.variable,
                    "patch_heads": args.patch_heads,
                    "from": args.from.as_ref().map(|p| p.display().to_string()),
                    "base_seed": args.seed,
                },
            });
            crate::model::io::write_json(&tmp.join(POOL_FILE), &manifest)?;
            Ok(())
        })?;
        println!(
            "intervened {} implementation(s) of `{}` on {cname}{} -> {}/0000.. in {:.1}s",
            args.count,
            program.name,
            args.variable
                .as_ref()
                .map(|v| format!(" (variable `{v}`)"))
                .unwrap_or_default(),
            args.out.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// The files of the model directory `from` (not its sub-directories), into `to`.
    fn copy_model(from: &Path, to: &Path) -> Result<(), IntervenedError> {
        let write = |path: &Path, e: std::io::Error| IntervenedError::Write {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(to).map_err(|e| write(to, e))?;
        let entries = std::fs::read_dir(from).map_err(|e| write(from, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| write(from, e))?;
            let path = entry.path();
            if path.is_file() {
                if entry.file_name() == INTERVENTION_FILE {
                    return Err(IntervenedError::Usage(format!(
                        "{} is intervened already; intervene on clean models",
                        from.display()
                    )));
                }
                std::fs::copy(&path, to.join(entry.file_name()))
                    .map_err(|e| write(&to.join(entry.file_name()), e))?;
            }
        }
        Ok(())
    }
}
