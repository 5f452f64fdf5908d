//! The runtime: CLI, errors, HuggingFace, TransformerLens parity, reference values, tracr.

mod cli;
mod errors;
mod hf;
mod parity;
mod reference;
mod sweep;
mod tracr;
