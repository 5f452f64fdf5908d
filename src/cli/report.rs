//! `congruity report merge A.json B.json ... --out ALL.json [--junit ALL.xml]`: combines the JSON
//! reports of the shards of one `congruity test --shard K/N` run into the report the unsharded
//! run writes, byte for byte. Exit status: that of the merged run (0, 1 or 2), or 2 when the
//! reports cannot be merged.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::harness::{SuiteReport, junit, merge};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Merge the JSON reports of shards 1/N ... N/N of one run
    Merge(MergeArgs),
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The shards' JSON reports (`congruity test --shard K/N --report FILE`)
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// The merged JSON report (written atomically)
    #[arg(long, value_name = "ALL.json")]
    pub out: PathBuf,
    /// Also write the merged run as JUnit XML
    #[arg(long, value_name = "ALL.xml")]
    pub junit: Option<PathBuf>,
}

/// The largest report read (a report is text, its size grows with the checks, not the models).
const MAX_REPORT_BYTES: u64 = 256 << 20;

fn read(path: &Path) -> Result<SuiteReport, String> {
    let text = crate::files::read_text(path, MAX_REPORT_BYTES, "a test report")
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not a congruity test report: {e} (line {}, column {})",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

pub fn run(args: Args) -> ExitCode {
    match args.command {
        ReportCommand::Merge(m) => merge_cmd(m),
    }
}

fn merge_cmd(args: MergeArgs) -> ExitCode {
    let mut reports = Vec::new();
    for p in &args.reports {
        match read(p) {
            Ok(r) => reports.push((p.display().to_string(), r)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let merged = match merge(&reports) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            return ExitCode::from(2);
        }
    };
    for out in std::iter::once(&args.out).chain(args.junit.as_ref()) {
        if let Err(e) = super::test::check_writable(out, &args.reports) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let junit_text = match args.junit.as_ref().map(|_| junit(&merged)).transpose() {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: cannot write the JUnit report: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = crate::files::write_file(&args.out, merged.to_json().as_bytes()) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if let (Some(p), Some(x)) = (&args.junit, junit_text)
        && let Err(e) = crate::files::write_file(p, x.as_bytes())
    {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    print!("{}", crate::harness::closing_line(&merged));
    ExitCode::from(merged.exit_code())
}
