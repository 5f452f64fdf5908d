//! `congruity similarity FILE.safetensors [--measure NAME]... [--json]`
//! `congruity similarity X Y [--x-key K] [--y-key K] [--measure NAME]... [--json]`

use std::path::PathBuf;
use std::process::ExitCode;

use crate::similarity::Measure;
use crate::similarity::io::{ARRAY_FORMATS, InputError, read_pair, read_two};
use crate::similarity::measure::VALID_FORMS;
use crate::similarity::report::compare_pair;

/// Representation similarity between `x` [n, dx] and `y` [n, dy]: both in one safetensors file,
/// or each in its own file (safetensors, .npy or .npz).
#[derive(Debug, clap::Args)]
#[command(after_help = format!(
    "Measures: {VALID_FORMS}.\nWithout --measure every measure is computed with its defaults. \
     ridge-r2 runs in both directions on the file's train_idx/test_idx when present, else on a \
     split drawn from its seed.\nTwo files ({ARRAY_FORMATS}): each gives one array, by --x-key / \
     --y-key or the file's only array; [n, d] arrays have n rows, arrays of 3 or more dimensions \
     (activations [batch, pos, ...] from `congruity run --cache`) one row per (batch, position)."
))]
pub struct Args {
    /// One safetensors file holding `x` [n, dx] and `y` [n, dy] (f64 or f32), optionally
    /// `train_idx` / `test_idx` (integer row indices) for ridge's held-out split; or, with Y,
    /// the file of x alone
    #[arg(value_name = "FILE|X")]
    pub file: PathBuf,
    /// The file of y (two-file form)
    #[arg(value_name = "Y")]
    pub y: Option<PathBuf>,
    /// The array of X to read (default: its only array)
    #[arg(long, value_name = "K", requires = "y")]
    pub x_key: Option<String>,
    /// The array of Y to read (default: its only array)
    #[arg(long, value_name = "K", requires = "y")]
    pub y_key: Option<String>,
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
    let (input, sources, what) = match &args.y {
        None => (
            read_pair(&args.file).map_err(miette::Report::new)?,
            None,
            args.file.display().to_string(),
        ),
        Some(y) => {
            let (input, sources) = read_two(
                (&args.file, args.x_key.as_deref()),
                (y, args.y_key.as_deref()),
            )
            .map_err(in_flag_words)?;
            let what = format!("{} with {}", sources[0], sources[1]);
            (input, Some(sources), what)
        }
    };
    let report = compare_pair(&input, &measures)
        .map_err(|e| miette::Report::new(e).wrap_err(format!("while comparing {what}")))?;
    if args.json {
        let mut json = report.to_json();
        if let (Some([x, y]), Some(obj)) = (&sources, json.as_object_mut()) {
            obj.insert("x_source".into(), serde_json::json!(x.to_string()));
            obj.insert("y_source".into(), serde_json::json!(y.to_string()));
        }
        let mut text = serde_json::to_string_pretty(&json)
            .map_err(|e| miette::miette!("cannot serialise the report: {e}"))?;
        text.push('\n');
        Ok(text)
    } else {
        let mut text = String::new();
        if let Some([x, y]) = &sources {
            text.push_str(&format!("x: {x}\ny: {y}\n"));
        }
        text.push_str(&report.to_text());
        Ok(text)
    }
}

/// A read error, the key to give said with this command's flags.
fn in_flag_words(mut e: InputError) -> miette::Report {
    if let InputError::WhichArray { help, .. } = &mut e {
        *help = Some("name it with --x-key / --y-key".into());
    }
    miette::Report::new(e)
}
