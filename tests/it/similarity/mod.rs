//! Representation similarity: CLI and the scikit-learn / numpy fixtures.

mod cli;
mod degenerate;
mod fixtures;
