//! congruity's integration tests: one test crate, so that candle and z3 link once. A module per
//! stage, in pipeline order, and one support module.

mod support;

mod compile;
mod equivalence;
mod harness;
mod lang;
mod runtime;
mod similarity;
mod smt;

mod docs_figures;
mod fuzz;
mod readme;
mod reliability;
mod specs_examples;
