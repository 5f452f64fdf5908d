//! The interpretive-equivalence estimate: determinism, the estimator, end-to-end runs.

mod all_specs;
mod determinism;
mod e2e_cli;
mod e2e_intervention;
mod e2e_pipeline;
mod e2e_reverse;
mod estimator;
mod given;
mod intervened;
