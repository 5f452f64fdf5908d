//! `congruity similarity FILE.safetensors [--measure NAME]... [--json]`

use std::path::PathBuf;
use std::process::ExitCode;

use crate::similarity::Measure;
use crate::similarity::io::read_pair;
use crate::similarity::measure::VALID_FORMS;
use crate::similarity::report::compare_pair;

/// Representation similarity between `x` [n, dx] and `y` [n, dy] stored in one safetensors file.
#[derive(Debug, clap::Args)]
#[command(after_help = format!(
    "Measures: {VALID_FORMS}.\nWithout --measure every measure is computed with its defaults. \
     ridge-r2 runs in both directions on the file's train_idx/test_idx when present, else on a \
     split drawn from its seed."
))]
pub struct Args {
    /// safetensors file holding `x` [n, dx] and `y` [n, dy] (f64 or f32), optionally
    /// `train_idx` / `test_idx` (integer row indices) for ridge's held-out split
    pub file: PathBuf,
    /// A measure name, e.g. `cka:linear` or `ridge-r2:alphas=0.1,1,10;test=0.1;seed=7`
    /// (repeatable)
    #[arg(long = "measure", value_name = "NAME")]
    pub measures: Vec<String>,
    /// Print one JSON object keyed by measure instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> ExitCode {
    super::compare::print_outcome(execute(&args))
}

fn execute(args: &Args) -> Result<String, miette::Report> {
    let measures: Vec<Measure> = if args.measures.is_empty() {
        Measure::defaults()
    } else {
        args.measures
            .iter()
            .map(|m| m.parse::<Measure>())
            .collect::<Result<_, _>>()
            .map_err(miette::Report::new)?
    };
    let input = read_pair(&args.file).map_err(miette::Report::new)?;
    let report = compare_pair(&input, &measures).map_err(|e| {
        miette::Report::new(e).wrap_err(format!("while comparing {}", args.file.display()))
    })?;
    if args.json {
        let mut text = serde_json::to_string_pretty(&report.to_json())
            .map_err(|e| miette::miette!("cannot serialise the report: {e}"))?;
        text.push('\n');
        Ok(text)
    } else {
        Ok(report.to_text())
    }
}
