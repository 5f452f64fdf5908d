//! The interpretive-equivalence estimate of Sun & Toneva (ICLR 2026), statistical core.
//!
//! Two interpretations are equivalent iff all their implementations are; since "all" cannot be
//! enumerated, implementations are sampled and their representations compared with a similarity
//! measure (`fit`, by default `ridge-r2`, see [`crate::similarity`]). This module is independent
//! of how representations are produced: anything implementing [`ImplementationSource`] can be
//! tested (the compiler's sampler, models loaded from disk, synthetic calibration families).
//!
//! - [`point_test`]: draws `a, b` from G1 and `c` from G2; a win is `fit(a→b) > fit(a→c)`; G1 and
//!   G2 are *distinguishable* when the 95% lower bound of the win rate exceeds 1/2.
//! - [`selectivity_matrix`]: the point test for every ordered pair of pools, repeated over
//!   seeded replicates (mean and spread reported) and pooled for the verdict.
//! - [`intervention_test`]: how often `fit(r→t) > fit(r_patched→t)` over implementations `t` of
//!   another interpretation, with exact binomial and z one-sided tests.
//! - [`transfer_matrix`]: mean fit between arbitrary pools (e.g. different models).
//!
//! Determinism: every draw comes from the recorded seed (ChaCha8, with per-cell and
//! per-replicate seeds from [`derive_seed`]); all draws are made before any fit is computed, and
//! fits are gathered in a fixed order, so results are identical whatever the rayon thread count.
//! Differences from the reference code: seeded splits and draws, Wilson / exact intervals instead
//! of Wald, and row alignment of every representation checked ([`InputsId`]).

pub mod chain;
pub mod compare;
pub mod extract;
pub mod inputs;
pub mod intervention;
pub mod model_test;
pub mod plot;
pub mod point;
pub mod representation;
pub mod sampled;
pub mod source;
pub mod stats;
pub mod synthetic;
pub mod transfer;

pub use intervention::{InterventionConfig, InterventionResult, intervention_test};
pub use point::{
    Outcome, PointTestConfig, PointTestResult, SelectivityCell, SelectivityConfig,
    SelectivityMatrix, Verdict, point_test, selectivity_matrix,
};
pub use representation::{
    ActivationArray, InputsId, Normalisation, Pooling, Representation, RepresentationError,
    accumulated_residual, pipeline, pool,
};
pub use source::{ImplRef, ImplementationSource, RepresentationSet, SourceError, derive_seed};
pub use stats::{Interval, IntervalMethod, OneSidedTest, Proportion, Spread};
pub use transfer::{TransferCell, TransferConfig, TransferMatrix, transfer_matrix};

use crate::similarity::SimilarityError;

/// Errors of the equivalence stage.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
pub enum EquivalenceError {
    #[error("implementation source `{label}` failed on index {index}: {message}")]
    #[diagnostic(code(congruity::equivalence::source))]
    Source {
        label: String,
        index: usize,
        message: String,
    },
    #[error(
        "implementation source `{label}`: index {index} is out of range ({count} implementations)"
    )]
    #[diagnostic(code(congruity::equivalence::index))]
    IndexOutOfRange {
        label: String,
        index: usize,
        count: usize,
    },
    #[error(
        "implementation source `{label}` has {count} implementations; {needed} are needed {why}"
    )]
    #[diagnostic(code(congruity::equivalence::too_few))]
    TooFewImplementations {
        label: String,
        count: usize,
        needed: usize,
        why: String,
    },
    #[error(
        "representations are not on the same inputs: {first} is on `{first_inputs}` ({first_rows} rows), {other} on `{other_inputs}` ({other_rows} rows)"
    )]
    #[diagnostic(code(congruity::equivalence::not_aligned))]
    NotAligned {
        first: String,
        first_inputs: String,
        first_rows: usize,
        other: String,
        other_inputs: String,
        other_rows: usize,
    },
    #[error("fit({from} → {to}) failed")]
    #[diagnostic(code(congruity::equivalence::fit))]
    Fit {
        from: String,
        to: String,
        #[source]
        source: SimilarityError,
    },
    #[error("configuration `{field}`: {reason}")]
    #[diagnostic(code(congruity::equivalence::config))]
    Config { field: &'static str, reason: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Representation(#[from] RepresentationError),
}

impl EquivalenceError {
    /// `src` holds fewer than the `needed` implementations a test draws (`why`: what for).
    pub(crate) fn too_few(src: &dyn ImplementationSource, needed: usize, why: &str) -> Self {
        EquivalenceError::TooFewImplementations {
            label: src.label().to_owned(),
            count: src.count(),
            needed,
            why: why.to_owned(),
        }
    }
}

/// A square matrix as text: `corner` above the row labels, then one right-aligned column per
/// label holding `entry(row, column)`; every column is at least `min_width` wide.
pub(crate) fn square_table(
    labels: &[String],
    corner: &str,
    min_width: usize,
    entry: impl Fn(usize, usize) -> String,
) -> String {
    let width = labels
        .iter()
        .map(|l| l.len())
        .max()
        .unwrap_or(0)
        .max(min_width);
    let mut out = format!("{corner:width$}");
    for l in labels {
        out.push_str(&format!("  {l:>width$}"));
    }
    out.push('\n');
    for (i, label) in labels.iter().enumerate() {
        out.push_str(&format!("{label:width$}"));
        for j in 0..labels.len() {
            out.push_str(&format!("  {:>width$}", entry(i, j)));
        }
        out.push('\n');
    }
    out
}

pub(crate) fn check_confidence(confidence: f64) -> Result<(), EquivalenceError> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(EquivalenceError::Config {
            field: "confidence",
            reason: format!("must lie strictly between 0 and 1, got {confidence}"),
        })
    }
}

pub(crate) fn check_positive(field: &'static str, value: usize) -> Result<(), EquivalenceError> {
    if value == 0 {
        Err(EquivalenceError::Config {
            field,
            reason: "must be at least 1".into(),
        })
    } else {
        Ok(())
    }
}
