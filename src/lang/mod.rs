//! The spec language: grammar, AST, checker, exact evaluator, formatter.
