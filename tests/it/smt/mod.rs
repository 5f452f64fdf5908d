//! z3 proofs: CLI, agreement with enumeration, proofs, property tests, scale.

mod cli;
mod enumeration;
mod proofs;
mod proptests;
mod scale;
