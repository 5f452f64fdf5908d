//! The `congruity` command line. Each subcommand lives in its own file with an `Args` struct and a
//! `run` function returning the process exit code; this file only dispatches.

pub mod check;
pub mod compare;
pub mod compile;
pub mod eval;
pub mod fmt;
pub mod iia;
pub mod inspect;
pub mod patch;
pub mod prove;
pub mod report;
pub mod run;
pub mod sample;
pub mod similarity;
pub mod test;
pub mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "congruity",
    version,
    about = "Checked, repeatable mechanistic interpretations"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and type-check spec files (files or directories of *.interp).
    Check(check::Args),
    /// Rewrite spec files in the canonical layout (`--check`: only report which would change).
    Fmt(fmt::Args),
    /// Evaluate an interpretation or pipeline on one input with the exact reference evaluator.
    Eval(eval::Args),
    /// Compile an interpretation (or pipeline) into a transformer in the runtime's format.
    Compile(compile::Args),
    /// Sample function-preserving implementations of an interpretation (or pipeline).
    Sample(sample::Args),
    /// Run a model: save logits and hook activations, or decode the answer to an input.
    Run(run::Args),
    /// Describe a model directory: architecture, sizes, dtype, parameters, hook points.
    Inspect(inspect::Args),
    /// Activation patching: one hook (head, positions) from a source run into a base run.
    Patch(patch::Args),
    /// Interchange-intervention accuracy of a spec's circuit on a model
    Iia(iia::Args),
    /// Prove a spec's `prove` blocks with z3 (exit 0 proved, 1 refuted, 2 unknown).
    Prove(prove::Args),
    /// Interpretive equivalence: selectivity / transfer matrices of sampled implementations and models
    Compare(Box<compare::Args>),
    /// Representation similarity (ridge predictivity, CKA, Procrustes, CCA) between x and y
    Similarity(similarity::Args),
    /// Run every check and prove block of the specs (exit 0 all hold, 1 one is false, 2 one is
    /// undecided or could not run)
    Test(test::Args),
    /// Train a model to implement an interpretation on a circuit (strict interchange-intervention training)
    Train(train::Args),
    /// Work with test reports (merge the shards of a run)
    Report(report::Args),
}

/// A subcommand's exit code: success, or failure once the error's diagnostic is on stderr.
pub(crate) fn exit_code<E>(result: Result<(), E>) -> ExitCode
where
    E: miette::Diagnostic + Send + Sync + 'static,
{
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            ExitCode::FAILURE
        }
    }
}

/// Parses the process arguments and runs the chosen subcommand.
pub fn main() -> ExitCode {
    crate::model::tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Fmt(args) => fmt::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Compile(args) => compile::run(args),
        Command::Sample(args) => sample::run(args),
        Command::Run(args) => run::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Patch(args) => patch::run(args),
        Command::Iia(args) => iia::run(args),
        Command::Prove(args) => prove::run(args),
        Command::Compare(args) => compare::run(*args),
        Command::Similarity(args) => similarity::run(args),
        Command::Test(args) => test::run(args),
        Command::Train(args) => train::run(args),
        Command::Report(args) => report::run(args),
    }
}
