//! congruity: checked, repeatable mechanistic interpretations.
//!
//! Data flows one way, one module per stage:
//!
//! ```text
//! lang (parse, check, eval) ─▶ compile ─▶ model ─▶ intervene ─▶ similarity ─▶ equivalence
//!                          └─▶ smt
//! ```
//!
//! A stage never imports a later one; `cli` sits on top of all of them. `hooks` (hook-point
//! names), `files` (bounded reads of regular files, outputs that never replace inputs) and
//! `progress` (stderr progress bars) are shared vocabularies below every stage.

pub mod cli;
pub mod compile;
pub mod equivalence;
pub mod files;
pub mod hooks;
pub mod intervene;
pub mod lang;
pub mod model;
pub mod progress;
pub mod similarity;
pub mod smt;
