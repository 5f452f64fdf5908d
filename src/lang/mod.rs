//! The spec language: grammar, AST, checker, exact evaluator, formatter.

pub mod ir;
