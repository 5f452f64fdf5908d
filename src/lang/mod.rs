//! The spec language: grammar, AST, checker, exact evaluator, formatter.

pub mod ast;
pub mod diag;
pub mod grammar;
pub mod ir;
pub mod parse;
