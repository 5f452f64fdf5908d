//! `congruity eval FILE [--program NAME] --input "a b c" [--json]`: run the exact reference
//! evaluator on one input.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::check::{eprint_error, eprint_report};
use crate::lang::eval::{EvalError, eval_output, eval_pipeline, value_json, value_text};
use crate::lang::ir::{Program, Value};
use crate::lang::{self, ErrorKind, LangError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The spec file.
    pub file: PathBuf,
    /// The interpretation or pipeline to run; may be left out when the file defines exactly one.
    #[arg(long)]
    pub program: Option<String>,
    /// The input tokens, separated by spaces (quote symbols such as "(" if you like).
    #[arg(long)]
    pub input: String,
    /// Print `{"output": [...]}` instead of the tokens.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> ExitCode {
    match eval(&args) {
        Ok(output) => {
            if args.json {
                let json = serde_json::json!({ "output": output.iter().map(value_json).collect::<Vec<_>>() });
                println!("{json}");
            } else {
                println!(
                    "{}",
                    output.iter().map(value_text).collect::<Vec<_>>().join(" ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(Failure::Report(r)) => {
            eprint_report(&r);
            ExitCode::FAILURE
        }
        Err(Failure::Error(e)) => {
            eprint_error(&e);
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Report(lang::Report),
    Error(LangError),
}

fn eval(args: &Args) -> Result<Vec<Value>, Failure> {
    let loaded = lang::load_all(&args.file).map_err(Failure::Report)?;
    let spec = &loaded.spec;
    let name = match &args.program {
        Some(n) => n.clone(),
        None => super::compile::default_program(&loaded, &args.file).map_err(Failure::Error)?,
    };
    if let Some(program) = spec.programs.get(&name) {
        let input = lang::domain::parse_input(&program.task, &args.input, "--input")
            .map_err(Failure::Error)?;
        return eval_output(program, &input)
            .map_err(|e| Failure::Error(eval_error(&loaded, program, &name, e)));
    }
    if let Some(pipeline) = spec.pipelines.get(&name) {
        let Some(first) = pipeline
            .stages
            .first()
            .and_then(|s| spec.programs.get(&s.program))
        else {
            return Err(Failure::Error(LangError::internal(format!(
                "pipeline `{name}` has no stages"
            ))));
        };
        let input = lang::domain::parse_input(&first.task, &args.input, "--input")
            .map_err(Failure::Error)?;
        return eval_pipeline(spec, pipeline, &input)
            .map(|t| t.output().to_vec())
            .map_err(|e| {
                let stage = match &e {
                    EvalError::Stage { program, .. } => spec.programs.get(program),
                    _ => None,
                };
                Failure::Error(match stage {
                    Some(p) => eval_error(&loaded, p, &name, e),
                    None => {
                        LangError::new(ErrorKind::Eval, format!("evaluating `{name}` failed: {e}"))
                    }
                })
            });
    }
    let mut known: Vec<&str> = spec
        .programs
        .keys()
        .chain(spec.pipelines.keys())
        .map(|s| s.as_str())
        .collect();
    known.sort();
    let mut e = LangError::new(
        ErrorKind::UnknownName,
        format!(
            "`{}` defines no interpretation or pipeline named `{name}`",
            args.file.display()
        ),
    );
    e = match lang::diag::did_you_mean(&name, known.iter().copied()) {
        Some(s) => e.with_help(format!("did you mean `{s}`?")),
        None => e.with_help(format!("available: {}", known.join(", "))),
    };
    Err(Failure::Error(e))
}

/// An evaluation error, pointing at the variable that failed when it is known.
fn eval_error(loaded: &lang::Loaded, program: &Program, name: &str, e: EvalError) -> LangError {
    let message = format!("evaluating `{name}` failed: {e}");
    let inner = match &e {
        EvalError::Stage { error, .. } => error.as_ref(),
        other => other,
    };
    let node = match inner {
        EvalError::Scalar { node, .. }
        | EvalError::AmbiguousAggregate { node, .. }
        | EvalError::NonNumericAggregate { node, .. }
        | EvalError::NonBoolPredicate { node, .. }
        | EvalError::Overflow { node } => Some(node.as_str()),
        _ => None,
    };
    let source = node
        .and_then(|n| {
            if n == "output" {
                Some(program.output)
            } else {
                program.graph.by_name(n)
            }
        })
        .and_then(|id| program.graph.node(id).source.clone());
    let file = source
        .as_ref()
        .and_then(|s| loaded.files.iter().find(|f| f.path == s.file));
    match (source, file) {
        (Some(s), Some(f)) => LangError::at(
            ErrorKind::Eval,
            &f.source,
            lang::ast::Span::new(s.start, s.end),
            message,
            "evaluation failed here",
        ),
        _ => LangError::new(ErrorKind::Eval, message),
    }
}
