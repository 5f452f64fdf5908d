//! `congruity prove FILE [--check NAME] [--timeout S] [--json]`: run a spec's `prove` blocks with
//! z3. Exit status: 0 all proved, 1 some refuted, 2 some unknown (and none refuted), 3 the spec
//! could not be loaded or `--check` names no proof.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::lang;
use crate::smt::{self, ProofReport, ProveOptions, Verdict};

pub use crate::smt::DEFAULT_TIMEOUT_SECS;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The spec file whose `prove` blocks to run (its imports' proofs are not run).
    pub file: PathBuf,
    /// Run only the proof with this name (`prove NAME: ...`, or the derived name such as
    /// `equivalent_a_b`).
    #[arg(long, value_name = "NAME")]
    pub check: Option<String>,
    /// z3's time limit for each sequence length, in seconds; overrides the spec's `timeout`
    /// (default: the spec's, else 60).
    #[arg(long, value_name = "S")]
    pub timeout: Option<f64>,
    /// Print JSON: sorted keys, no timings (the same spec gives the same bytes).
    #[arg(long)]
    pub json: bool,
    /// With --json: add wall-clock times under a separate top-level `timings` key.
    #[arg(long, requires = "json")]
    pub timings: bool,
    /// Text mode: print each proof's per-length results and times.
    #[arg(long)]
    pub lengths: bool,
    /// Solve the lengths one at a time instead of in parallel.
    #[arg(long)]
    pub sequential: bool,
}

pub fn run(args: Args) -> ExitCode {
    let spec = match lang::load(&args.file) {
        Ok(s) => s,
        Err(report) => {
            super::check::eprint_report(&report);
            return ExitCode::from(3);
        }
    };
    if let Some(name) = &args.check
        && !spec.proofs.iter().any(|p| &p.name == name)
    {
        let names: Vec<&str> = spec.proofs.iter().map(|p| p.name.as_str()).collect();
        let listed = if names.is_empty() {
            "(none)".to_string()
        } else {
            names.join(", ")
        };
        eprintln!(
            "error: `{}` has no proof named `{name}`; its proofs: {listed}",
            args.file.display()
        );
        return ExitCode::from(3);
    }
    if let Some(t) = args.timeout
        && !(t.is_finite() && t > 0.0)
    {
        eprintln!("error: --timeout must be a positive number of seconds, got {t}");
        return ExitCode::from(3);
    }
    let progress = std::io::stderr().is_terminal();
    let mut reports: Vec<ProofReport> = Vec::new();
    for proof in &spec.proofs {
        if args.check.as_ref().is_some_and(|c| c != &proof.name) {
            continue;
        }
        let secs = args
            .timeout
            .or(proof.timeout_secs)
            .unwrap_or(DEFAULT_TIMEOUT_SECS);
        let opts = ProveOptions {
            timeout: Some(Duration::from_secs_f64(secs)),
            parallel: !args.sequential,
            max_len: None,
        };
        if progress {
            eprintln!("proving {} ...", proof.name);
        }
        let report = smt::prove(&spec, &proof.name, &proof.goal, &opts);
        if !args.json {
            println!("{}", report.text());
            if args.lengths {
                print!("{}", report.length_table());
            }
        }
        reports.push(report);
    }
    let count = |w: &str| reports.iter().filter(|r| r.verdict.word() == w).count();
    let (proved, refuted, unknown) = (count("proved"), count("refuted"), count("unknown"));
    if args.json {
        let mut doc = serde_json::json!({
            "file": args.file.display().to_string(),
            "proofs": reports,
            "summary": { "proved": proved, "refuted": refuted, "unknown": unknown },
        });
        if args.timings {
            let t: serde_json::Map<String, serde_json::Value> = reports
                .iter()
                .map(|r| (r.name.clone(), r.timings()))
                .collect();
            doc["timings"] = serde_json::Value::Object(t);
        }
        let text = serde_json::to_string_pretty(&smt::sorted_json(&doc))
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        println!("{text}");
    } else {
        println!("{proved} proved, {refuted} refuted, {unknown} unknown");
    }
    exit_code(&reports)
}

/// 1 if anything is refuted, else 2 if anything is unknown, else 0.
pub fn exit_code(reports: &[ProofReport]) -> ExitCode {
    if reports
        .iter()
        .any(|r| matches!(r.verdict, Verdict::Refuted { .. }))
    {
        ExitCode::from(1)
    } else if reports
        .iter()
        .any(|r| matches!(r.verdict, Verdict::Unknown { .. }))
    {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
