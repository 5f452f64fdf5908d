//! The harness: `congruity test` as a library. It runs every `check` and `prove` block of the
//! specs it is given and reports one verdict per expectation — pass, fail (with the input that
//! shows it, where there is one), unknown or error (with why; never a pass) — each with its
//! figure, interval and seed.
//!
//! ```text
//! specs ─▶ units (checks, proofs; --filter, --shard) ─▶ validate (models exist and load, circuit
//!        sites fit them, measures parse) ─▶ run (in parallel, --jobs) ─▶ SuiteReport ─▶ text /
//!        JSON / JUnit / snapshot
//! ```
//!
//! Everything that can be found wrong before running — a spec with errors, a missing model
//! directory, a circuit site the model lacks, an unknown measure — is an error with its file,
//! line and column before anything runs, and no report is written. What a check then finds is a
//! verdict.
//!
//! From a research repository's tests:
//!
//! ```
//! use congruity::harness::{Status, TestOptions, run_check};
//!
//! let spec = congruity::Spec::load("specs/circuits/tracr_hist.interp").map_err(|r| r.render_plain())?;
//! let opts = TestOptions::default(); // compiled models cached under target/congruity
//! let report = run_check(&spec, "compiled_hist_model", &opts)?;
//! assert!(report.passed(), "{}", report.snapshot());
//! let iia = &report.expectations[1];
//! assert_eq!((iia.expectation.as_str(), iia.status), ("iia(tracr_hist_layout) >= 0.95", Status::Pass));
//! assert_eq!(iia.figure.as_ref().map(|f| f.value), Some(1.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! and `insta::assert_snapshot!(report.snapshot())` keeps the verdicts and figures (rounded to
//! [`SNAPSHOT_DIGITS`] decimals) under review.

mod behaviour;
mod checks;
mod estimate;
mod junit;
mod models;
mod plots;
mod report;
mod run;
mod text;
pub mod trained;

use std::path::{Path, PathBuf};

pub use behaviour::{
    Behaviour, Iia, VariableIia, behaviour as domain_behaviour, iia as interchange_accuracy,
};
pub use junit::junit;
pub use models::{DEFAULT_CACHE_DIR, compiled_dir, dir_hashes, model_name};
pub use report::{
    CheckReport, CheckSettings, Counterexample, ExpectationResult, FORMAT, Figure, FileHash,
    MergeError, ModelInfo, SNAPSHOT_DIGITS, Shard, Status, SuiteReport, Summary, UnitKind, merge,
    tool_version, worst,
};
pub use run::{Outcome, Plan, SpecEntry, Unit, UnitWhat, plan, run_check, run_paths, run_plan};
pub use text::closing_line;

use crate::lang::{LangError, Report};

/// How a run goes.
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// Only units whose `SPEC::NAME` id (e.g. `specs/tracr/reverse.interp::tracr_reverse_model`)
    /// contains this text, or matches it as a glob when it has `*`, `?` or `[`.
    pub filter: Option<String>,
    /// Threads (0: one per core).
    pub jobs: usize,
    /// Overrides every seed of every check (recorded in the report).
    pub seed: Option<u64>,
    /// Run only this part of the units.
    pub shard: Option<Shard>,
    /// Where compiled models are cached.
    pub cache_dir: PathBuf,
    /// Progress on stderr.
    pub progress: bool,
    /// z3's time limit per sequence length, overriding the specs' `timeout` (default: theirs, else
    /// 60 s).
    pub prove_timeout: Option<f64>,
    /// Interchange pairs per circuit variable for `iia`.
    pub iia_pairs: usize,
    /// Common inputs of comparisons and `similarity`.
    pub inputs: usize,
    /// Implementations sampled per interpretation when a check does not say (`samples`).
    pub samples: usize,
    pub bootstraps: usize,
    pub draws: usize,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            filter: None,
            jobs: 0,
            seed: None,
            shard: None,
            cache_dir: PathBuf::from(DEFAULT_CACHE_DIR),
            progress: false,
            prove_timeout: None,
            iia_pairs: 400,
            inputs: 200,
            samples: 10,
            bootstraps: 10,
            draws: 100,
        }
    }
}

/// Why a run could not start. Problems of the inputs carry their file, line and column.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum HarnessError {
    /// Specs with errors, models that are missing or do not fit their checks: one diagnostic each.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Report),
    #[error("no .interp files under `{}`", path.display())]
    #[diagnostic(code(congruity::test::no_specs))]
    NoSpecs { path: PathBuf },
    #[error("no check or proof of the specs matches --filter `{filter}`")]
    #[diagnostic(
        code(congruity::test::filter),
        help(
            "the filter is matched against `SPEC::NAME` (e.g. `specs/tracr/reverse.interp::tracr_reverse_model`), as a glob when it holds * ? [ or {{"
        )
    )]
    NothingMatches { filter: String },
    #[error("`{name}` is not a check of the spec; its checks: {available}")]
    #[diagnostic(code(congruity::test::unknown_check))]
    UnknownCheck { name: String, available: String },
    #[error("cannot write {}: {reason}", path.display())]
    #[diagnostic(code(congruity::test::output))]
    Output { path: PathBuf, reason: String },
    #[error("cannot start {jobs} worker threads: {reason}")]
    #[diagnostic(code(congruity::test::threads))]
    Threads { jobs: usize, reason: String },
}

impl HarnessError {
    /// The diagnostics of an [`Invalid`](HarnessError::Invalid) run, else none.
    pub fn diagnostics(&self) -> &[LangError] {
        match self {
            HarnessError::Invalid(r) => &r.errors,
            _ => &[],
        }
    }
}

/// Runs every check and proof of the spec files under `paths` (files, or directories searched
/// for `*.interp`).
///
/// ```
/// use congruity::harness::{TestOptions, test};
///
/// let suite = test(&["specs/circuits/tracr_count_less_freq.interp"], &TestOptions::default())?;
/// assert_eq!(suite.exit_code(), 0, "{}", suite.to_text());
/// assert_eq!((suite.summary.checks, suite.summary.proofs), (1, 1));
/// print!("{}", suite.to_text()); // what `congruity test` prints
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn test(paths: &[impl AsRef<Path>], opts: &TestOptions) -> Result<SuiteReport, HarnessError> {
    let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
    run_paths(&paths, opts)
}
