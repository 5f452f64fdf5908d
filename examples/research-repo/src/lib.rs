//! The research code would live here. The hypotheses about the models it studies live in
//! `specs/`, and `tests/hypotheses.rs` keeps them under test.
