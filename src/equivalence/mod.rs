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
//!
//! This is the statistical core; the experiment driver that produces representations from
//! specs, compiled samples and model directories and runs whole comparisons is
//! [`crate::experiment`].

pub mod intervention;
pub mod model_test;
pub mod point;
pub mod representation;
pub mod source;
pub mod stats;
pub mod synthetic;
pub mod transfer;

pub use intervention::{InterventionConfig, InterventionResult, intervention_test};
pub use point::{
    Effect, Epsilon, EpsilonRule, MIN_EPSILON, Outcome, PointTestConfig, PointTestResult,
    SelectivityCell, SelectivityConfig, SelectivityMatrix, Verdict, point_test, selectivity_matrix,
};
pub use representation::{
    ActivationArray, InputsId, Normalisation, Pooling, Representation, accumulated_residual,
    pipeline, pool,
};
pub use source::{
    DegenerateColumns, ImplRef, ImplementationSource, RemovedColumns, RepresentationSet,
    derive_seed,
};
pub use stats::{Interval, IntervalMethod, OneSidedTest, Proportion, Spread};
pub use transfer::{TransferCell, TransferConfig, TransferMatrix, transfer_matrix};

use std::sync::Arc;

use crate::similarity::SimilarityError;

/// Errors of the equivalence stage (the statistical core): bad representations, sources that
/// fail or are too small, fits that fail, bad configurations.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
pub enum EquivalenceError {
    #[error("implementation source `{label}` failed on index {index}")]
    #[diagnostic(code(congruity::equivalence::source))]
    Source {
        label: String,
        index: usize,
        #[source]
        source: Box<EquivalenceError>,
    },
    /// An error of the stage that produced an implementation (compiling, running a model,
    /// extracting a representation), kept whole.
    #[error(transparent)]
    #[diagnostic(code(congruity::equivalence::implementation))]
    Implementation(Arc<dyn std::error::Error + Send + Sync>),
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

    #[error("activation array: shape {shape:?} holds {expected} values but {got} were given")]
    #[diagnostic(code(congruity::equivalence::activation_shape))]
    DataLength {
        shape: [usize; 3],
        expected: usize,
        got: usize,
    },
    #[error("{what}: {value} at {location} (NaN and infinite values are not allowed)")]
    #[diagnostic(code(congruity::equivalence::non_finite))]
    NonFinite {
        what: String,
        location: String,
        value: f64,
    },
    #[error("{what} is empty ({reason})")]
    #[diagnostic(code(congruity::equivalence::empty))]
    Empty { what: String, reason: String },
    #[error(
        "layer {layer}: shape {got:?} does not match layer 0's batch and positions {expected:?}"
    )]
    #[diagnostic(code(congruity::equivalence::layer_shape))]
    LayerShape {
        layer: usize,
        expected: [usize; 2],
        got: [usize; 3],
    },
    #[error("pooling {pooling}: {reason}")]
    #[diagnostic(code(congruity::equivalence::pooling))]
    Pooling { pooling: String, reason: String },
    #[error(
        "cannot combine representations row by row: part {part} is on inputs `{got}` ({got_rows} rows), part 0 on `{expected}` ({expected_rows} rows)"
    )]
    #[diagnostic(code(congruity::equivalence::not_row_aligned))]
    NotRowAligned {
        part: usize,
        expected: InputsId,
        expected_rows: usize,
        got: InputsId,
        got_rows: usize,
    },
}

impl EquivalenceError {
    /// `src` holds fewer than the `needed` implementations a test draws (`why`: what for).
    /// An error of another stage, met while producing an implementation.
    pub fn implementation(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        EquivalenceError::Implementation(Arc::new(e))
    }

    /// Index `index` of source `label`, which holds `count` implementations.
    pub fn out_of_range(label: &str, index: usize, count: usize) -> Self {
        EquivalenceError::IndexOutOfRange {
            label: label.to_owned(),
            index,
            count,
        }
    }

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
