//! `congruity compile`: an interpretation (or a pipeline) → a model directory in the runtime's
//! format.
//!
//! ```text
//! congruity compile FILE [--program NAME] --out DIR [--seed S]
//! ```
//!
//! The interpretation is first checked on its bounded domain against the reference evaluator
//! (every input up to 200,000 of them, else 10,000 drawn with `--seed`, default 0): a categorical
//! aggregate that selects two positions holding different values is an error with that input.
//! A pipeline compiles to `DIR/pipeline.json` and one model directory per stage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::compile::pipeline::compile_pipeline;
use crate::compile::{CompileError, CompileOptions, Provenance, compile_checked};
use crate::lang::ir::Program;
use crate::lang::{self, ErrorKind, LangError, Spec, ast};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The spec file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The interpretation (or pipeline) to compile; optional when the file defines only one.
    #[arg(long, value_name = "NAME")]
    pub program: Option<String>,

    /// Output directory (written atomically; replaced if it exists).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Seed of the domain check's sample when the domain has more than 200,000 inputs.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,

    /// Also print where the compiler put every variable, as a `circuit` block named
    /// `<program>_compiled` (a circuit written against this layout is followed through each
    /// sampled implementation's placement record)
    #[arg(long)]
    pub layout: bool,
}

/// Loads a spec and names the item `--program` chose, or the file's only one; prints the
/// diagnostics on failure.
pub(crate) fn load_target(file: &Path, program: Option<&str>) -> Result<(Spec, String), ExitCode> {
    let loaded = lang::load_all(file).map_err(|report| {
        eprintln!("{:?}", miette::Report::new(report));
        ExitCode::FAILURE
    })?;
    let name = match program {
        Some(p) => p.to_string(),
        None => default_program(&loaded, file).map_err(|e| {
            eprintln!("{:?}", miette::Report::new(e));
            ExitCode::FAILURE
        })?,
    };
    Ok((loaded.spec, name))
}

/// What a command read its spec from: `file` and every file the spec's items came from.
pub(crate) fn spec_inputs(spec: &Spec, file: &Path) -> Vec<PathBuf> {
    let mut files = spec.source_files();
    files.push(file.to_path_buf());
    files
}

/// Refuses an `--out` directory that is, or holds, one of `inputs`, or that congruity did not
/// write.
pub(crate) fn check_out_dir(out: &Path, inputs: &[PathBuf]) -> Result<(), crate::files::FileError> {
    let refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    crate::files::check_output_dir(out, &refs)
}

/// Refuses an output file that is one of `inputs` or an existing file inside an input directory.
pub(crate) fn check_out_file(
    out: &Path,
    inputs: &[PathBuf],
) -> Result<(), crate::files::FileError> {
    let refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    crate::files::check_output_file(out, &refs)
}

/// The provenance of a model compiled from `file`.
pub(crate) fn provenance(
    file: &Path,
    program: &str,
    seed: Option<u64>,
) -> Result<Provenance, CompileError> {
    Provenance::of_spec(file, program, seed)
}

/// What `--program NAME` names in a spec.
pub(crate) enum Target<'a> {
    Interpretation(&'a Program),
    Pipeline,
}

/// Resolves `--program NAME`; an unknown name is an error listing the available ones.
pub(crate) fn target<'a>(
    spec: &'a Spec,
    file: &Path,
    name: &str,
) -> Result<Target<'a>, CompileError> {
    if let Some(program) = spec.programs.get(name) {
        Ok(Target::Interpretation(program))
    } else if spec.pipelines.contains_key(name) {
        Ok(Target::Pipeline)
    } else {
        Err(unknown(spec, file, name))
    }
}

fn unknown(spec: &Spec, file: &Path, name: &str) -> CompileError {
    let mut names: Vec<&str> = spec
        .programs
        .keys()
        .chain(spec.pipelines.keys())
        .map(String::as_str)
        .collect();
    names.sort();
    CompileError::UnknownProgram {
        name: name.to_string(),
        file: file.display().to_string(),
        available: if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        },
    }
}

pub fn run(args: Args) -> ExitCode {
    match load_target(&args.file, args.program.as_deref()) {
        Ok((spec, program)) => super::exit_code(execute(&args, &spec, &program)),
        Err(code) => code,
    }
}

fn execute(args: &Args, spec: &Spec, program_name: &str) -> Result<(), CompileError> {
    check_out_dir(&args.out, &spec_inputs(spec, &args.file))?;
    let seed = args.seed.unwrap_or(0);
    let prov = provenance(&args.file, program_name, args.seed)?;
    let opts = CompileOptions::default();
    match target(spec, &args.file, program_name)? {
        Target::Interpretation(program) => {
            let (mut compiled, check) = compile_checked(program, &opts, seed)?;
            compiled.provenance = prov;
            compiled.write(&args.out)?;
            let s = compiled.shape();
            println!(
                "compiled `{}`: {} layer(s), d_model {}, d_mlp {}, {} head(s) of size {} -> {} (domain check: {} {} input(s){})",
                program_name,
                s.n_layers,
                s.d_model,
                s.d_mlp,
                s.n_heads,
                s.d_head,
                args.out.display(),
                if check.exhaustive {
                    "all"
                } else {
                    "a seeded sample of"
                },
                check.inputs,
                if check.exhaustive { "" } else { ", partial" }
            );
            if args.layout {
                print!(
                    "{}",
                    crate::experiment::circuit::layout_circuit(
                        &format!("{program_name}_compiled"),
                        program,
                        &compiled
                    )
                );
            }
        }
        Target::Pipeline => {
            let mut p = compile_pipeline(spec, program_name, &opts, seed)?;
            for st in p.stages.iter_mut() {
                st.compiled.provenance = provenance(&args.file, &st.program, args.seed)?;
            }
            p.write(&args.out, &prov)?;
            for (k, st) in p.stages.iter().enumerate() {
                let s = st.compiled.shape();
                println!(
                    "stage {}: `{}`: {} layer(s), d_model {}, d_mlp {}",
                    k + 1,
                    st.program,
                    s.n_layers,
                    s.d_model,
                    s.d_mlp
                );
            }
            println!(
                "compiled pipeline `{}` -> {}",
                program_name,
                args.out.display()
            );
        }
    }
    Ok(())
}

/// The file's only interpretation (or only pipeline): what `eval`, `compile` and `sample` use
/// when `--program` is not given.
pub(crate) fn default_program(
    loaded: &lang::Loaded,
    file: &std::path::Path,
) -> Result<String, LangError> {
    let Some(root) = loaded.root() else {
        return Err(LangError::internal("no file was loaded"));
    };
    let mut interps = Vec::new();
    let mut pipelines = Vec::new();
    for item in &root.ast.items {
        match item {
            ast::Item::Interpretation(i) => interps.push(i.name.name.clone()),
            ast::Item::Pipeline(p) => pipelines.push(p.name.name.clone()),
            _ => {}
        }
    }
    match (interps.as_slice(), pipelines.as_slice()) {
        ([one], []) | ([], [one]) => Ok(one.clone()),
        ([], []) => Err(LangError::new(
            ErrorKind::UnknownName,
            format!("`{}` defines no interpretation or pipeline", file.display()),
        )),
        _ => {
            let all: Vec<String> = interps.iter().chain(&pipelines).cloned().collect();
            Err(LangError::new(
                ErrorKind::UnknownName,
                format!(
                    "`{}` defines {} runnable items; choose one with --program",
                    file.display(),
                    all.len()
                ),
            )
            .with_help(format!("--program {}", all.join(" | --program "))))
        }
    }
}
