//! The compiler's one error type. Every variant names the program (and node, file, tensor) it is
//! about and says what was expected, so a failed compile reads like a type error, not a panic.

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

use crate::lang::domain::{input_text, token_text};
use crate::lang::eval::EvalError;
use crate::lang::ir::Value;

#[derive(Debug, Error, Diagnostic)]
pub enum CompileError {
    /// An output that would replace an input or a directory congruity did not write.
    #[error(transparent)]
    #[diagnostic(transparent)]
    File(#[from] crate::files::FileError),

    /// A construct the compiler has no exact transformer block for.
    #[error("cannot compile `{program}`, node `{node}`: {reason}")]
    #[diagnostic(code(congruity::compile::unsupported))]
    Unsupported {
        program: String,
        node: String,
        reason: String,
        #[help]
        help: Option<String>,
    },

    /// A map (or a fused group of maps) with no exact MLP construction.
    #[error("cannot compile `{program}`, node `{node}`: {reason}")]
    #[diagnostic(code(congruity::compile::unsupported))]
    NoMlp {
        program: String,
        node: String,
        reason: Box<super::mlp::MlpError>,
    },

    /// A categorical aggregate whose selector picks two positions holding different values on
    /// some input of the domain: a transformer would average the two one-hot values, so the
    /// program has no exact compilation (tracr silently outputs garbage here).
    #[error(
        "`{program}`: categorical aggregate `{node}` selects more than one position on input [{}] \
         ({}){}",
        input_text(&found.input),
        ambiguity(found.query, &found.selected, found.values.as_deref()),
        found.sampled.as_ref().map(|d| format!("; found on {d}")).unwrap_or_default()
    )]
    #[diagnostic(
        code(congruity::compile::ambiguous_aggregate),
        help(
            "make the selector pick at most one position (e.g. break ties with `indices`), or make the \
             aggregate `numerical` if a mean is meant"
        )
    )]
    AmbiguousAggregate {
        program: String,
        node: String,
        found: Box<Ambiguity>,
    },

    /// The reference evaluator rejected an input of the domain (division by zero, ...): the
    /// interpretation is not a total function on its domain, so there is nothing exact to compile.
    #[error(
        "`{program}` fails on input [{}] of its domain: {reason}",
        input.as_deref().map_or_else(|| "(domain)".to_string(), input_text)
    )]
    #[diagnostic(code(congruity::compile::evaluation))]
    Evaluation {
        program: String,
        /// `None` when the domain itself could not be built.
        input: Option<Vec<Value>>,
        reason: Box<EvalError>,
    },

    /// A value set the compiler cannot lay out (non-numeric values in a numerical sequence, ...).
    #[error("`{program}`, node `{node}`: {reason}")]
    #[diagnostic(code(congruity::compile::values))]
    Values {
        program: String,
        node: String,
        reason: String,
    },

    #[error("no interpretation or pipeline named `{name}` in {file}; available: {available}")]
    #[diagnostic(code(congruity::compile::unknown_program))]
    UnknownProgram {
        name: String,
        file: String,
        available: String,
    },

    #[error("pipeline `{pipeline}`: {reason}")]
    #[diagnostic(code(congruity::compile::pipeline))]
    Pipeline { pipeline: String, reason: String },

    #[error("sampler: {reason}")]
    #[diagnostic(code(congruity::compile::sample))]
    Sample { reason: String },

    #[error("cannot write {path}: {reason}")]
    #[diagnostic(code(congruity::compile::write))]
    Write { path: PathBuf, reason: String },

    #[error("cannot read {path}: {reason}")]
    #[diagnostic(code(congruity::compile::read))]
    Read { path: PathBuf, reason: String },

    /// A broken invariant of the compiler itself; always a bug, reported instead of panicking.
    #[error("internal compiler error in `{program}`: {what}")]
    #[diagnostic(
        code(congruity::compile::internal),
        help("please report this with the spec file")
    )]
    Internal { program: String, what: String },
}

impl CompileError {
    pub(crate) fn internal(program: &str, what: impl Into<String>) -> CompileError {
        CompileError::Internal {
            program: program.to_string(),
            what: what.into(),
        }
    }

    pub(crate) fn write(path: impl Into<PathBuf>, reason: impl ToString) -> CompileError {
        CompileError::Write {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// `query position 2 selects positions [0, 1] holding a, b`.
fn ambiguity(query: usize, selected: &[usize], values: Option<&[Value]>) -> String {
    match values {
        Some(v) => format!(
            "query position {query} selects positions {selected:?} holding {}",
            v.iter().map(token_text).collect::<Vec<_>>().join(", ")
        ),
        None => format!("query position {query} selects positions {selected:?}"),
    }
}

/// Where a categorical aggregate selects several positions holding different values.
#[derive(Clone, Debug, PartialEq)]
pub struct Ambiguity {
    /// The input of the domain it happens on.
    pub input: Vec<Value>,
    /// The query position, and the key positions it selects.
    pub query: usize,
    pub selected: Vec<usize>,
    /// The values at the selected positions, when they could be computed.
    pub values: Option<Vec<Value>>,
    /// How the domain was covered when it was sampled, not enumerated (`None`: every input was
    /// checked).
    pub sampled: Option<String>,
}
