//! Helpers shared across the stages' tests.

pub mod compile;
pub mod runtime;
pub mod smt;
