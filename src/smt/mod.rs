//! z3 proofs on the bounded input domain: implements, equivalent, aligned, sufficient, well-formed.
//!
//! Each goal is checked one sequence length at a time (1..=max_len): the programs are unrolled
//! into z3 terms exactly ([`encode`], [`expr`]), the negation of the goal is asked for a model,
//! and a model is a counterexample that the exact evaluator replays before it is reported.

mod encode;
mod expr;
mod goal;
mod symbols;
mod value;

use thiserror::Error;

/// Why a goal could not be encoded or a model not be read back.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SmtError {
    /// The goal names something the spec does not have (or the wrong kind of thing).
    #[error("{0}")]
    Spec(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("could not read z3's model: {0}")]
    Decode(String),
    #[error("internal error in the z3 encoding: {0}")]
    Internal(String),
}

#[cfg(test)]
pub(crate) mod testutil;
