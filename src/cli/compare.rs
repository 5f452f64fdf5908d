//! `congruity compare FILE [--interpretations A,B,...] [--models DIR...] --samples K --seed S
//! [--measure NAME] [--inputs N] [--bootstraps B] [--json]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::compile::sample::Family;
use crate::equivalence::point::Epsilon;
use crate::equivalence::representation::{Normalisation, Pooling};
use crate::equivalence::stats::IntervalMethod;
use crate::experiment::ExperimentError;
use crate::experiment::compare::{
    CompareReport, CompareSettings, compare, compare_representations,
};
use crate::experiment::extract::{BosPolicy, Layers, RepresentationSpec};
use crate::experiment::plot::{selectivity_svg, transfer_svg};
use crate::similarity::Measure;
use crate::similarity::measure::VALID_FORMS;

/// Interpretive equivalence: sample implementations of interpretations (or pipelines), run them on
/// common seeded inputs, and test whether their representations tell the interpretations apart.
#[derive(Debug, clap::Args)]
#[command(after_help = format!(
    "Prints the selectivity matrix between the interpretations (win rate of fit(a→b) > fit(a→c), \
     a, b from the row, c from the column, with {} intervals), the tests of every --models pool \
     against the interpretations, the transfer matrix (mean fit between every pair of pools) and, \
     with --circuit, the intervention test.\nMeasures: {VALID_FORMS}.\nFamilies: {}.",
    "Clopper–Pearson (default) or Wilson",
    Family::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
))]
pub struct Args {
    /// Spec file (its interpretations, pipelines, tasks and circuits); not with --representations
    #[arg(required_unless_present = "representations")]
    pub file: Option<PathBuf>,
    /// Compare pools of representations extracted elsewhere instead of sampling: a safetensors
    /// file of tensors named POOL/INDEX, each [n, d] on the same inputs
    #[arg(long, value_name = "FILE.safetensors", conflicts_with_all = ["file", "models", "interpretations", "circuit", "keep_models"])]
    pub representations: Option<PathBuf>,
    /// Interpretations or pipelines to sample, comma-separated (default: every pipeline of the
    /// spec, or every interpretation when it has none; none when --models is given alone)
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    pub interpretations: Vec<String>,
    /// Model directories to compare: each is one pool (a model, or a directory of models such as
    /// `congruity sample` writes)
    #[arg(long, num_args = 1.., value_name = "DIR")]
    pub models: Vec<PathBuf>,
    /// The implementations of interpretation NAME are the models of pool DIR (as `congruity
    /// sample --family trained` writes it) instead of sampled ones; NAME must be compared
    /// (repeatable)
    #[arg(long = "pool", value_name = "NAME=DIR", value_parser = parse_given, conflicts_with = "representations")]
    pub pools: Vec<(String, PathBuf)>,
    /// Implementations sampled per interpretation
    #[arg(long, value_name = "K", required_unless_present = "representations")]
    pub samples: Option<usize>,
    /// Seed of every random choice (inputs, sampling, draws, splits of the tests)
    #[arg(long, value_name = "S")]
    pub seed: u64,
    /// Similarity measure used as fit(x → y)
    #[arg(long, default_value = "ridge-r2", value_name = "NAME")]
    pub measure: String,
    /// Number of common inputs
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub inputs: usize,
    /// Replicates (bootstraps) of every selectivity cell
    #[arg(long, default_value_t = 10, value_name = "B")]
    pub bootstraps: usize,
    /// Draws per replicate, per model test and per intervention test; pairs per transfer cell
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub draws: usize,
    /// Sampler families, comma-separated, or `none` (default: all)
    #[arg(long, value_delimiter = ',', value_name = "F,...")]
    pub families: Vec<String>,
    /// Pooling over positions: `mean`, `last`, or `positions=0,2` (counted from the first token)
    #[arg(long, default_value = "mean", value_name = "P")]
    pub pooling: String,
    /// Whether BOS takes part in pooling (`exclude`: only the input's own tokens)
    #[arg(long, default_value = "exclude", value_name = "exclude|include")]
    pub bos: String,
    /// Layer-norm every pooled vector (no affine, eps 1e-5) before pooling
    #[arg(long)]
    pub layer_norm: bool,
    /// Read these hooks instead of the accumulated residual stream: TransformerLens names or
    /// globs (e.g. 'blocks.*.hook_resid_post'), repeatable, in the order given
    #[arg(long = "hooks", value_name = "GLOB")]
    pub hooks: Vec<String>,
    /// Task whose domain the inputs are drawn from (default: the first interpretation's)
    #[arg(long, value_name = "NAME")]
    pub task: Option<String>,
    /// Run the intervention test with this circuit of the spec
    #[arg(long, value_name = "NAME")]
    pub circuit: Option<String>,
    /// Patch this many of the circuit's heads (default: all)
    #[arg(long, value_name = "N", requires = "circuit")]
    pub patch_heads: Option<usize>,
    /// Patch only the sites of this variable of the circuit (the paper's intervened
    /// implementations: one variable's heads, n at a time)
    #[arg(long, value_name = "V", requires = "circuit")]
    pub variable: Option<String>,
    /// Also write every sampled implementation under DIR/<interpretation>/<index>
    #[arg(long, value_name = "DIR")]
    pub keep_models: Option<PathBuf>,
    /// Write the selectivity matrix as an SVG heatmap
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Write the transfer matrix as an SVG heatmap
    #[arg(long, value_name = "FILE")]
    pub transfer_svg: Option<PathBuf>,
    /// Interval deciding verdicts
    #[arg(
        long,
        default_value = "clopper-pearson",
        value_name = "clopper-pearson|wilson"
    )]
    pub interval: String,
    /// Confidence level of every interval
    #[arg(long, default_value_t = 0.95, value_name = "C")]
    pub confidence: f64,
    /// The mean fit gap every distinguishable / congruent verdict needs beside its interval:
    /// `data` (each test's ε is the range of its within-pool fits, at least 1e-4) or
    /// a number >= 0
    #[arg(long, default_value = "data", value_name = "data|E")]
    pub epsilon: String,
    /// Print one JSON object instead of text (same seed → same bytes)
    #[arg(long)]
    pub json: bool,
    /// No progress on stderr
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: Args) -> ExitCode {
    print_outcome(execute(&args))
}

/// A text report to stdout, or the error to stderr and a failing exit code (also `similarity`'s;
/// it would sit in `cli/mod.rs` if more subcommands took it up).
pub(super) fn print_outcome(outcome: Result<String, miette::Report>) -> ExitCode {
    match outcome {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}

/// A comparison error, settings said in the words of this command's flags.
fn in_flag_words(e: ExperimentError) -> miette::Report {
    let msg = match e {
        ExperimentError::NoSamples => "--samples must be at least 1".to_string(),
        ExperimentError::TooFewSamples { samples } => format!(
            "--samples {samples} is too few: the selectivity matrix draws three distinct implementations of one interpretation (a, b and c on its diagonal); use at least 3"
        ),
        ExperimentError::DuplicateTarget { name } => {
            format!("`{name}` is listed twice in --interpretations")
        }
        ExperimentError::UnknownCircuit { name, known } => format!(
            "--circuit `{name}` is not a circuit of the spec (circuits: {})",
            known.join(", ")
        ),
        ExperimentError::CircuitNotCompared { circuit, program } => format!(
            "circuit `{circuit}` is about `{program}`, which no compared interpretation or pipeline runs; add it to --interpretations"
        ),
        ExperimentError::UnknownTask { name, known } => format!(
            "--task `{name}` is not a task of the spec (tasks: {})",
            known.join(", ")
        ),
        ExperimentError::TaskNeeded { known } => format!(
            "with only --models, say which task's domain the inputs come from with --task (tasks: {})",
            known.join(", ")
        ),
        ExperimentError::NoTask => "the spec has no task".to_string(),
        ExperimentError::NothingToCompare => {
            "nothing to compare: give --interpretations or --models".to_string()
        }
        other => return miette::Report::new(other),
    };
    miette::miette!(code = "congruity::compare::settings", "{msg}")
}

fn bad(field: &str, reason: String) -> miette::Report {
    miette::miette!(code = "congruity::compare::argument", "{field}: {reason}")
}

fn parse_given(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!("`{s}` is not NAME=DIR")),
    }
}

fn parse_pooling(s: &str) -> Result<Pooling, miette::Report> {
    match s {
        "mean" => Ok(Pooling::Mean),
        "last" => Ok(Pooling::Last),
        _ => match s.strip_prefix("positions=") {
            Some(list) => {
                let ps = list
                    .split(',')
                    .map(|p| p.trim().parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad("--pooling", format!("`{s}`: {e}")))?;
                if ps.is_empty() {
                    return Err(bad("--pooling", "no position given".into()));
                }
                Ok(Pooling::Positions(ps))
            }
            None => Err(bad(
                "--pooling",
                format!("`{s}` is not one of mean, last, positions=I,J,..."),
            )),
        },
    }
}

fn settings(args: &Args) -> Result<CompareSettings, miette::Report> {
    let measure: Measure = args.measure.parse().map_err(miette::Report::new)?;
    let families = if args.families.is_empty() {
        Family::ALL.to_vec()
    } else if args.families.len() == 1 && args.families[0] == "none" {
        Vec::new()
    } else {
        args.families
            .iter()
            .map(|f| f.parse::<Family>().map_err(|e| bad("--families", e)))
            .collect::<Result<_, _>>()?
    };
    let bos = match args.bos.as_str() {
        "exclude" => BosPolicy::Exclude,
        "include" => BosPolicy::Include,
        other => {
            return Err(bad(
                "--bos",
                format!("`{other}` is not one of exclude, include"),
            ));
        }
    };
    let interval = match args.interval.as_str() {
        "clopper-pearson" => IntervalMethod::ClopperPearson,
        "wilson" => IntervalMethod::Wilson,
        other => {
            return Err(bad(
                "--interval",
                format!("`{other}` is not one of clopper-pearson, wilson"),
            ));
        }
    };
    if !(args.confidence > 0.0 && args.confidence < 1.0) {
        return Err(bad(
            "--confidence",
            format!("must lie strictly between 0 and 1, got {}", args.confidence),
        ));
    }
    let epsilon = match args.epsilon.as_str() {
        "data" => Epsilon::FromData,
        text => text
            .parse::<f64>()
            .ok()
            .and_then(|v| Epsilon::fixed(v).ok())
            .ok_or_else(|| {
                bad(
                    "--epsilon",
                    format!("`{text}` is neither `data` nor a finite number >= 0"),
                )
            })?,
    };
    for (flag, v) in [
        ("--inputs", args.inputs),
        ("--bootstraps", args.bootstraps),
        ("--draws", args.draws),
        ("--samples", args.samples.unwrap_or(1)),
    ] {
        if v == 0 {
            return Err(bad(flag, "must be at least 1".into()));
        }
    }
    Ok(CompareSettings {
        interpretations: args.interpretations.clone(),
        models: args.models.clone(),
        given: {
            let mut given = std::collections::BTreeMap::new();
            for (name, dir) in &args.pools {
                let pool = crate::experiment::sampled::GivenPool::open(dir)
                    .map_err(|e| bad("--pool", format!("`{name}={}`: {e}", dir.display())))?;
                if given.insert(name.clone(), pool).is_some() {
                    return Err(bad("--pool", format!("`{name}` is given twice")));
                }
            }
            given
        },
        samples: args.samples.unwrap_or(0),
        seed: args.seed,
        measure,
        inputs: args.inputs,
        bootstraps: args.bootstraps,
        draws: args.draws,
        families,
        representation: RepresentationSpec {
            layers: if args.hooks.is_empty() {
                Layers::AccumulatedResidual
            } else {
                Layers::Hooks(args.hooks.clone())
            },
            pooling: parse_pooling(&args.pooling)?,
            bos,
            norm: if args.layer_norm {
                Normalisation::LayerNorm { eps: 1e-5 }
            } else {
                Normalisation::None
            },
        },
        task: args.task.clone(),
        circuit: args.circuit.clone(),
        patch_heads: args.patch_heads,
        patch_variable: args.variable.clone(),
        keep_models: args.keep_models.clone(),
        // `compare` computes every run afresh; `congruity test` caches.
        cache_dir: None,
        confidence: args.confidence,
        interval,
        epsilon,
        progress: !args.quiet && !args.json,
    })
}

/// Writes `text` to `path` through a temporary file in the same directory.
fn write_atomically(path: &Path, text: &str) -> Result<(), miette::Report> {
    crate::files::write_file(path, text.as_bytes()).map_err(miette::Report::new)
}

/// The command line as typed (program name shortened to `congruity`), for figure captions.
fn command_line() -> String {
    let mut words: Vec<String> = std::env::args().collect();
    if let Some(first) = words.first_mut() {
        *first = "congruity".into();
    }
    words.join(" ")
}

fn figure_notes(report: &CompareReport) -> Vec<String> {
    vec![
        command_line(),
        format!(
            "measure {}; K = {}; {} inputs ({}); {} bootstraps × {} draws; seed {}",
            report.settings.measure,
            report.settings.samples,
            report.inputs.count,
            report.inputs.id,
            report.settings.bootstraps,
            report.settings.draws,
            report.seeds.master
        ),
        format!("representation: {}", report.settings.representation),
    ]
}

/// Refuses, before any work, outputs that would replace the spec, one of its imports or a model.
fn check_outputs(args: &Args) -> Result<(), miette::Report> {
    let mut inputs = match &args.file {
        Some(file) => match crate::lang::load(file) {
            Ok(spec) => super::compile::spec_inputs(&spec, file),
            Err(_) => vec![file.clone()],
        },
        None => Vec::new(),
    };
    inputs.extend(args.representations.iter().cloned());
    inputs.extend(args.models.iter().cloned());
    for path in [&args.svg, &args.transfer_svg].into_iter().flatten() {
        super::compile::check_out_file(path, &inputs).map_err(miette::Report::new)?;
    }
    if let Some(dir) = &args.keep_models {
        super::compile::check_out_dir(dir, &inputs).map_err(miette::Report::new)?;
        // Marked now, so that a later run may write into it again.
        std::fs::create_dir_all(dir)
            .and_then(|()| crate::files::write_marker(dir))
            .map_err(|e| {
                miette::miette!(
                    code = "congruity::compare::write",
                    "cannot write {}: {e}",
                    dir.display()
                )
            })?;
    }
    Ok(())
}

fn execute(args: &Args) -> Result<String, miette::Report> {
    let s = settings(args)?;
    check_outputs(args)?;
    let report = match (&args.representations, &args.file) {
        (Some(reps), _) => compare_representations(reps, &s).map_err(in_flag_words)?,
        (None, Some(file)) => compare(file, &s).map_err(in_flag_words)?,
        (None, None) => return Err(bad("FILE", "give a spec file or --representations".into())),
    };
    if let Some(path) = &args.svg {
        let sel = report.selectivity.as_ref().ok_or_else(|| {
            bad(
                "--svg",
                "there is no selectivity matrix (no interpretation was sampled)".into(),
            )
        })?;
        let svg = selectivity_svg(
            sel,
            "Selectivity: win rate of fit(a→b) > fit(a→c), mean ± sd over bootstraps (* distinguishable)",
            &figure_notes(&report),
        )
        .map_err(|e| bad("--svg", format!("drawing the heatmap: {e}")))?;
        write_atomically(path, &svg)?;
    }
    if let Some(path) = &args.transfer_svg {
        let svg = transfer_svg(
            &report.transfer,
            "Transfer: mean fit(row → column)",
            &figure_notes(&report),
        )
        .map_err(|e| bad("--transfer-svg", format!("drawing the heatmap: {e}")))?;
        write_atomically(path, &svg)?;
    }
    Ok(if args.json {
        report.to_json()
    } else {
        report.to_text()
    })
}
