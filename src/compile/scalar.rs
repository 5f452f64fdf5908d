//! Scalar semantics the compiler needs to tabulate lambdas and predicates on finite value sets.
//!
//! The compiler builds lookup tables (MLPs) and attention patterns by evaluating each lambda on
//! every combination of its arguments' value sets, with the reference evaluator's own scalar
//! functions (`lang::eval`), so a table can never disagree with the semantics it implements.
//!
//! A failure here does not abort compilation: value sets are over-approximations, so a lambda may
//! fail on a combination no input reaches. Such cells become "don't care" (no write); whether a
//! reachable input fails is decided by the domain check against the reference evaluator.

use num_rational::Rational64;

use crate::lang::eval;
use crate::lang::ir::{Lambda, Predicate, Value};

/// `map` / `map2` semantics (the reference evaluator's): a `none` argument gives `none` without
/// evaluating the body.
pub fn apply(f: &Lambda, args: &[Value]) -> Result<Value, eval::ScalarError> {
    if args.contains(&Value::None) {
        return Ok(Value::None);
    }
    eval::eval_scalar(&f.body, args)
}

/// Whether `select(keys, queries, pred)` selects key value `key` for query value `query`, as the
/// reference evaluator decides it (`none == none` is true there).
pub fn holds(pred: &Predicate, key: &Value, query: &Value) -> Result<bool, eval::ScalarError> {
    match pred {
        Predicate::Cmp(c) => eval::compare(*c, key, query),
        Predicate::Lambda(l) => match eval::eval_scalar(&l.body, &[key.clone(), query.clone()])? {
            Value::Bool(b) => Ok(b),
            other => Err(eval::ScalarError {
                kind: eval::ScalarErrorKind::Type {
                    op: "select predicate",
                    expected: "a boolean",
                    found: vec![other],
                },
                path: vec![],
            }),
        },
    }
}

/// A value as a number: numbers themselves, booleans as 0 / 1 (tracr's numerical booleans).
pub fn as_number(v: &Value) -> Option<Rational64> {
    match v {
        Value::Num(r) => Some(*r),
        Value::Bool(b) => Some(Rational64::from_integer(i64::from(*b))),
        _ => None,
    }
}

/// The exact text of a value as a token or label (symbols raw, numbers as integers or `p/q`):
/// the same text the command line reads inputs in.
pub use crate::lang::domain::token_text;

pub fn to_f64(r: Rational64) -> f64 {
    *r.numer() as f64 / *r.denom() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::ir::{BinOp, Comparison, Expr};

    fn cmp(c: Comparison, key: &Value, query: &Value) -> Result<bool, eval::ScalarError> {
        holds(&Predicate::Cmp(c), key, query)
    }

    fn lam(body: Expr) -> Lambda {
        Lambda {
            params: vec!["a".into(), "b".into()],
            body,
        }
    }

    #[test]
    fn none_short_circuits_maps_and_equality_sees_none() {
        let f = lam(Expr::Binary(
            BinOp::Add,
            Box::new(Expr::Param(0)),
            Box::new(Expr::Param(1)),
        ));
        assert_eq!(
            apply(&f, &[Value::None, Value::int(1)]).unwrap(),
            Value::None
        );
        assert!(cmp(Comparison::Eq, &Value::None, &Value::None).unwrap());
        assert!(cmp(Comparison::True, &Value::None, &Value::int(1)).unwrap());
        assert!(cmp(Comparison::Lt, &Value::None, &Value::int(1)).is_err());
    }

    #[test]
    fn predicates_take_key_then_query() {
        assert!(cmp(Comparison::Lt, &Value::int(1), &Value::int(2)).unwrap());
        assert!(!cmp(Comparison::Lt, &Value::int(2), &Value::int(1)).unwrap());
    }
}
