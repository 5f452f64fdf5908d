//! The language: CLI, diagnostics (snapshots), property tests, tracr's programs.

mod cli;
mod diagnostics;
mod proptests;
mod tracr_fixtures;
