//! `congruity check PATH...`: parse and type-check spec files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::lang::{self, LangError, Report, ast};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Spec files, or directories searched recursively for `*.interp` files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let mut files = Vec::new();
    let mut failed = false;
    for p in &args.paths {
        match collect_specs(p) {
            Ok(found) if found.is_empty() => {
                eprint_error(&LangError::new(
                    lang::ErrorKind::Io,
                    format!("no .interp files under `{}`", p.display()),
                ));
                failed = true;
            }
            Ok(found) => files.extend(found),
            Err(e) => {
                eprint_error(&e);
                failed = true;
            }
        }
    }
    let mut bad = 0;
    for f in &files {
        match lang::load_all(f) {
            Ok(loaded) => {
                let problems = check_models(&loaded);
                if !problems.is_empty() {
                    for e in &problems {
                        eprint_error(e);
                    }
                    bad += 1;
                    continue;
                }
                let summary = loaded.root().map(|r| summary(&r.ast)).unwrap_or_default();
                println!("ok {} ({summary})", f.display());
            }
            Err(report) => {
                eprint_report(&report);
                bad += 1;
            }
        }
    }
    if bad > 0 {
        eprintln!("error: {bad} of {} file(s) have errors", files.len());
    }
    if failed || bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Checks every `expect iia(c)` of the root file's checks against the check's model when that
/// model exists (a model still to be made is checked when the check runs): a circuit site the
/// model lacks — a layer, a head, a hook — is an error at the expectation naming the site and the
/// model's shape, as is a model directory that does not load.
fn check_models(loaded: &lang::Loaded) -> Vec<LangError> {
    let mut out = Vec::new();
    let Some(root) = loaded.root() else {
        return out;
    };
    let base = root.path.parent().unwrap_or(Path::new("."));
    for item in &root.ast.items {
        let ast::Item::Check(c) = item else { continue };
        let Some((path, model_span)) = c.fields.iter().find_map(|f| match f {
            ast::CheckField::Model {
                model: ast::ModelAst::Dir(path),
                span,
            } => Some((&path.value, *span)),
            _ => None,
        }) else {
            continue;
        };
        let dir = base.join(path);
        if !dir.exists() {
            continue;
        }
        let model = match crate::model::load(&dir, &candle_core::Device::Cpu) {
            Ok(m) => m,
            Err(e) => {
                out.push(LangError::at(
                    lang::ErrorKind::Check,
                    &root.source,
                    model_span,
                    format!(
                        "check `{}`: the model in {} does not load: {e}",
                        c.name.name,
                        dir.display()
                    ),
                    "this model",
                ));
                continue;
            }
        };
        for field in &c.fields {
            let ast::CheckField::Expect {
                goal, args, span, ..
            } = field
            else {
                continue;
            };
            let Some(circuit) = args
                .first()
                .filter(|_| goal.name == "iia")
                .and_then(|a| loaded.spec.circuits.get(&a.name))
            else {
                continue;
            };
            if let Some(reason) = crate::experiment::circuit::misfit(circuit, &model.transformer) {
                out.push(
                    LangError::at(
                        lang::ErrorKind::Check,
                        &root.source,
                        *span,
                        format!(
                            "check `{}`: circuit `{}` does not fit the model in {}: {reason}",
                            c.name.name,
                            circuit.name,
                            dir.display()
                        ),
                        "this circuit",
                    )
                    .with_help(format!(
                        "`congruity compile SPEC --out DIR --layout` prints where the compiler put each variable; `congruity inspect --model {}` lists the model's hooks",
                        dir.display()
                    )),
                );
            }
        }
    }
    out
}

/// `1 task, 2 interpretations, 1 proof`: what a file defines itself (not its imports).
pub fn summary(file: &ast::File) -> String {
    let mut counts = [0usize; 6];
    for item in &file.items {
        let slot = match item {
            ast::Item::Import(_) => continue,
            ast::Item::Task(_) => 0,
            ast::Item::Interpretation(_) => 1,
            ast::Item::Pipeline(_) => 2,
            ast::Item::Circuit(_) => 3,
            ast::Item::Check(_) => 4,
            ast::Item::Prove(_) => 5,
        };
        counts[slot] += 1;
    }
    let words = [
        ("task", "tasks"),
        ("interpretation", "interpretations"),
        ("pipeline", "pipelines"),
        ("circuit", "circuits"),
        ("check", "checks"),
        ("proof", "proofs"),
    ];
    let parts: Vec<String> = counts
        .iter()
        .zip(words)
        .filter(|(n, _)| **n > 0)
        .map(|(n, (one, many))| format!("{n} {}", if *n == 1 { one } else { many }))
        .collect();
    if parts.is_empty() {
        "no items".to_string()
    } else {
        parts.join(", ")
    }
}

/// The spec files a path names (see [`lang::collect_specs`]).
pub use crate::lang::collect_specs;

pub(crate) fn eprint_error(e: &LangError) {
    eprintln!("{:?}", miette::Report::new(e.clone()));
}

pub(crate) fn eprint_report(r: &Report) {
    for e in &r.errors {
        eprint_error(e);
    }
}
