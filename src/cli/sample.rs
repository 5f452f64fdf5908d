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

    /// Families to draw from (repeatable; default all).
    #[arg(long = "family", value_name = "F", value_parser = parse_family)]
    pub family: Vec<Family>,
}

fn parse_family(s: &str) -> Result<Family, String> {
    s.parse()
}

pub fn run(args: Args) -> ExitCode {
    match load_target(&args.file, args.program.as_deref()) {
        Ok((spec, program)) => super::exit_code(execute(&args, &spec, &program)),
        Err(code) => code,
    }
}

fn execute(args: &Args, spec: &Spec, program_name: &str) -> Result<(), CompileError> {
    super::compile::check_out_dir(&args.out, &super::compile::spec_inputs(spec, &args.file))?;
    let families: Vec<Family> = if args.family.is_empty() {
        Family::ALL.to_vec()
    } else {
        args.family.clone()
    };
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
