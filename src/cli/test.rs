//! `congruity test [PATH...]`: runs every `check` and `prove` block of the specs under PATH
//! (default `specs/`). Exit status: 0 every hypothesis holds, 1 one is false, 2 one could not be
//! decided or could not run, or the input is bad (a spec with errors, a missing model, a circuit
//! site the model lacks, an unwritable report path), in which case nothing is written.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::files::check_output_file;
use crate::harness::{
    self, DEFAULT_CACHE_DIR, HarnessError, Plan, Shard, Status, SuiteReport, TestOptions, junit,
};
use crate::lang::ir::ModelRef;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each expectation prints one line: PASS, FAIL (with the figure and the input that \
shows it), UNKNOWN (the evidence does not decide: never a pass) or ERROR (it could not run), then the \
counts. Exit status: 0 all hold, 1 a hypothesis is false, 2 one is undecided or could not run, or \
the specs, models or output paths are bad (then nothing runs and nothing is written)."
)]
pub struct Args {
    /// Spec files, or directories searched for `*.interp` (default: specs/)
    pub paths: Vec<PathBuf>,
    /// Only units whose `SPEC::NAME` contains this text (or matches it, as a glob with * ? [ ])
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    /// Worker threads (default: one per core)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub jobs: usize,
    /// No progress, and only what did not pass (and the counts) on stdout
    #[arg(long)]
    pub quiet: bool,
    /// Override every seed of every check (recorded in the report)
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Print the JSON report on stdout instead of the text
    #[arg(long)]
    pub json: bool,
    /// Write the JSON report to this file (atomically)
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Write a JUnit XML report to this file (atomically)
    #[arg(long, value_name = "FILE.xml")]
    pub junit: Option<PathBuf>,
    /// Write the selectivity / transfer heatmaps and win-rate histograms of every check that
    /// runs the estimator into this directory, as SVG
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Run only shard K of N (1-based) of the units, for job arrays; `congruity report merge`
    /// combines the shards' reports
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Where compiled models are cached
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CACHE_DIR)]
    pub cache_dir: PathBuf,
    /// z3's time limit per sequence length, in seconds (overrides the specs' `timeout`)
    #[arg(long, value_name = "S")]
    pub timeout: Option<f64>,
}

fn eprint_harness_error(e: &HarnessError) {
    if e.diagnostics().is_empty() {
        eprintln!("{:?}", miette::Report::new(clone_error(e)));
    } else {
        for d in e.diagnostics() {
            super::check::eprint_error(d);
        }
        eprintln!(
            "error: {} problem(s) in the specs and their models; nothing was run and no report was written",
            e.diagnostics().len()
        );
    }
}

/// `HarnessError` is not `Clone`; the miette report takes ownership of a re-built one.
fn clone_error(e: &HarnessError) -> HarnessError {
    match e {
        HarnessError::NoSpecs { path } => HarnessError::NoSpecs { path: path.clone() },
        HarnessError::NothingMatches { filter } => HarnessError::NothingMatches {
            filter: filter.clone(),
        },
        HarnessError::UnknownCheck { name, available } => HarnessError::UnknownCheck {
            name: name.clone(),
            available: available.clone(),
        },
        HarnessError::Output { path, reason } => HarnessError::Output {
            path: path.clone(),
            reason: reason.clone(),
        },
        HarnessError::Threads { jobs, reason } => HarnessError::Threads {
            jobs: *jobs,
            reason: reason.clone(),
        },
        HarnessError::Invalid(r) => HarnessError::Invalid(r.clone()),
    }
}

/// Every file and model directory the run reads: what an output must never replace.
fn inputs(plan: &Plan) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in &plan.specs {
        out.extend(e.spec.source_files());
        out.push(e.path.clone());
        let base = e.path.parent().unwrap_or(Path::new("."));
        for c in e.spec.checks.values() {
            if let Some(ModelRef::Dir(d)) = &c.model {
                out.push(base.join(d));
            }
        }
    }
    out
}

/// Refuses, before anything runs, an output that would replace an input or cannot be written.
pub(crate) fn check_writable(out: &Path, inputs: &[PathBuf]) -> Result<(), HarnessError> {
    let refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let bad = |reason: String| HarnessError::Output {
        path: out.to_path_buf(),
        reason,
    };
    check_output_file(out, &refs).map_err(|e| bad(e.to_string()))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        // A missing directory is made (as `--out` directories are); one that cannot be is the
        // error, e.g. a path through a regular file.
        std::fs::create_dir_all(&parent).map_err(|e| {
            bad(format!(
                "its directory {} cannot be made: {e}",
                parent.display()
            ))
        })?;
    }
    // Probe with a file of our own: permissions, read-only mounts and full disks show here,
    // before the run rather than after it.
    let probe = parent.join(format!(".congruity-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| {
        bad(format!(
            "its directory {} is not writable: {e}",
            parent.display()
        ))
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn check_plots_dir(dir: &Path, inputs: &[PathBuf]) -> Result<(), HarnessError> {
    let bad = |reason: String| HarnessError::Output {
        path: dir.to_path_buf(),
        reason,
    };
    let target = crate::files::resolve(dir);
    for i in inputs {
        let inp = crate::files::resolve(i);
        if inp == target || inp.starts_with(&target) {
            return Err(bad(format!("it is or holds the input {}", i.display())));
        }
    }
    if dir.exists() && !dir.is_dir() {
        return Err(bad("it exists and is not a directory".into()));
    }
    Ok(())
}

fn colour_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `--quiet`: only what did not pass, and the counts of everything.
fn quiet_text(r: &SuiteReport, colour: bool) -> String {
    let mut failing = r.clone();
    failing.units.retain(|u| u.status() != Status::Pass);
    for u in &mut failing.units {
        u.expectations.retain(|e| e.status != Status::Pass);
    }
    // The summary is the whole run's.
    failing.to_text_with(colour)
}

pub fn run(args: Args) -> ExitCode {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("specs")]
    } else {
        args.paths.clone()
    };
    if let Some(t) = args.timeout
        && !(t.is_finite() && t > 0.0)
    {
        eprintln!("error: --timeout must be a positive number of seconds, got {t}");
        return ExitCode::from(2);
    }
    let opts = TestOptions {
        filter: args.filter.clone(),
        jobs: args.jobs,
        seed: args.seed,
        shard: args.shard,
        cache_dir: args.cache_dir.clone(),
        progress: !args.quiet && std::io::stderr().is_terminal(),
        prove_timeout: args.timeout,
        ..TestOptions::default()
    };
    let started = std::time::Instant::now();
    let result = (|| {
        let plan = harness::plan(&paths, &opts)?;
        let ins = inputs(&plan);
        for out in [&args.report, &args.junit].into_iter().flatten() {
            check_writable(out, &ins)?;
        }
        if let Some(d) = &args.plots {
            check_plots_dir(d, &ins)?;
        }
        harness::run_plan(&plan, &opts, args.plots.is_some())
    })();
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            eprint_harness_error(&e);
            return ExitCode::from(2);
        }
    };
    let report = &outcome.report;
    // Files first, each whole or not at all; then what the terminal shows.
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut write_failed = false;
    if let Some(p) = &args.report {
        files.push((p.clone(), report.to_json().into_bytes()));
    }
    if let Some(p) = &args.junit {
        match junit(report) {
            Ok(x) => files.push((p.clone(), x.into_bytes())),
            Err(e) => {
                eprintln!("error: cannot write the JUnit report: {e}");
                write_failed = true;
            }
        }
    }
    if let Some(d) = &args.plots {
        if let Err(e) = std::fs::create_dir_all(d) {
            eprintln!("error: cannot create {}: {e}", d.display());
            write_failed = true;
        }
        for (name, svg) in &outcome.figures {
            files.push((d.join(name), svg.clone().into_bytes()));
        }
    }
    for (path, bytes) in &files {
        if let Err(e) = crate::files::write_file(path, bytes) {
            eprintln!("error: {e}");
            write_failed = true;
        }
    }
    if args.json {
        print!("{}", report.to_json());
    } else if args.quiet {
        print!("{}", quiet_text(report, colour_wanted()));
    } else {
        print!("{}", report.to_text_with(colour_wanted()));
    }
    if !args.quiet && !args.json && std::io::stderr().is_terminal() {
        eprintln!("finished in {:.1} s", started.elapsed().as_secs_f64());
    }
    if write_failed {
        return ExitCode::from(2);
    }
    ExitCode::from(report.exit_code())
}
