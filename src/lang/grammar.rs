//! The pest parser generated from `grammar/congruity.pest`.

// pest_derive generates the `Rule` enum with one variant per grammar rule; the rule names follow
// the grammar's snake_case, and the generated docs are not ours to write.
#![allow(missing_docs)]

use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "../grammar/congruity.pest"]
pub struct SpecParser;
