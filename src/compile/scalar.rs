//! Scalar semantics the compiler needs to tabulate lambdas and predicates on finite value sets.
//!
//! The compiler builds lookup tables (MLPs) and attention patterns by evaluating each lambda on
//! every combination of its arguments' value sets. The rules follow the language contract
//! (LANG_BRIEF): maps of `none` are `none` without evaluating the body; `/` is exact and fails on
//! zero; `%` is the Euclidean remainder; `< <= > >=` compare numbers numerically and symbols as
//! strings; `== !=` compare any two values structurally.
//!
//! A failure here does not abort compilation: value sets are over-approximations, so a lambda may
//! fail on a combination no input reaches. Such cells become "don't care" (no write); whether a
//! reachable input fails is decided by the domain check against the reference evaluator.

use num_rational::Rational64;
use num_traits::{CheckedAdd, CheckedDiv, CheckedMul, CheckedSub, Signed, Zero};

use crate::lang::ir::{BinOp, Builtin, Comparison, Expr, Lambda, Predicate, UnOp, Value};

/// Why a lambda could not be evaluated on one combination of arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalarError(pub String);

type R = Result<Value, ScalarError>;

fn err<T>(msg: impl Into<String>) -> Result<T, ScalarError> {
    Err(ScalarError(msg.into()))
}

fn num(v: &Value, op: &str) -> Result<Rational64, ScalarError> {
    match v {
        Value::Num(r) => Ok(*r),
        other => err(format!("`{op}` needs numbers, found {other}")),
    }
}

fn boolean(v: &Value, op: &str) -> Result<bool, ScalarError> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => err(format!("`{op}` needs booleans, found {other}")),
    }
}

fn checked(r: Option<Rational64>, op: &str) -> Result<Rational64, ScalarError> {
    r.ok_or_else(|| ScalarError(format!("overflow in `{op}`")))
}

/// Numeric or string order; `None` when the two values are not comparable.
fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => Some(x.cmp(y)),
        (Value::Sym(x), Value::Sym(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn compare(op: BinOp, a: &Value, b: &Value) -> R {
    use std::cmp::Ordering::*;
    let name = match op {
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        _ => ">=",
    };
    let o = order(a, b)
        .ok_or_else(|| ScalarError(format!("cannot order {a} and {b} with `{name}`")))?;
    Ok(Value::Bool(match op {
        BinOp::Lt => o == Less,
        BinOp::Le => o != Greater,
        BinOp::Gt => o == Greater,
        _ => o != Less,
    }))
}

/// Evaluates a lambda body with positional arguments.
pub fn eval_expr(e: &Expr, args: &[Value]) -> R {
    match e {
        Expr::Const(v) => Ok(v.clone()),
        Expr::Param(i) => args
            .get(*i)
            .cloned()
            .ok_or_else(|| ScalarError(format!("lambda parameter {i} has no argument"))),
        Expr::Unary(UnOp::Neg, x) => Ok(Value::Num(-num(&eval_expr(x, args)?, "-")?)),
        Expr::Unary(UnOp::Not, x) => Ok(Value::Bool(!boolean(&eval_expr(x, args)?, "not")?)),
        Expr::Binary(op, a, b) => {
            let a = eval_expr(a, args)?;
            // `and` / `or` look at the right side only when needed, so guards such as
            // `x != 0 and 1 / x > 2` work.
            match op {
                BinOp::And => {
                    return if !boolean(&a, "and")? {
                        Ok(Value::Bool(false))
                    } else {
                        Ok(Value::Bool(boolean(&eval_expr(b, args)?, "and")?))
                    };
                }
                BinOp::Or => {
                    return if boolean(&a, "or")? {
                        Ok(Value::Bool(true))
                    } else {
                        Ok(Value::Bool(boolean(&eval_expr(b, args)?, "or")?))
                    };
                }
                _ => {}
            }
            let b = eval_expr(b, args)?;
            match op {
                BinOp::Add => Ok(Value::Num(checked(
                    num(&a, "+")?.checked_add(&num(&b, "+")?),
                    "+",
                )?)),
                BinOp::Sub => Ok(Value::Num(checked(
                    num(&a, "-")?.checked_sub(&num(&b, "-")?),
                    "-",
                )?)),
                BinOp::Mul => Ok(Value::Num(checked(
                    num(&a, "*")?.checked_mul(&num(&b, "*")?),
                    "*",
                )?)),
                BinOp::Div => {
                    let d = num(&b, "/")?;
                    if d.is_zero() {
                        return err("division by zero");
                    }
                    Ok(Value::Num(checked(num(&a, "/")?.checked_div(&d), "/")?))
                }
                BinOp::Mod => {
                    let (x, y) = (num(&a, "%")?, num(&b, "%")?);
                    if !x.is_integer() || !y.is_integer() {
                        return err(format!("`%` needs integers, found {a} and {b}"));
                    }
                    let (x, y) = (x.to_integer(), y.to_integer());
                    if y == 0 {
                        return err("remainder by zero");
                    }
                    Ok(Value::int(x.rem_euclid(y)))
                }
                BinOp::Eq => Ok(Value::Bool(a == b)),
                BinOp::Ne => Ok(Value::Bool(a != b)),
                BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => compare(*op, &a, &b),
                BinOp::And | BinOp::Or => unreachable!("handled above"),
            }
        }
        Expr::If(c, t, f) => {
            if boolean(&eval_expr(c, args)?, "if")? {
                eval_expr(t, args)
            } else {
                eval_expr(f, args)
            }
        }
        Expr::Call(b, xs) => {
            let vals: Vec<Value> = xs
                .iter()
                .map(|x| eval_expr(x, args))
                .collect::<Result<_, _>>()?;
            match (b, vals.as_slice()) {
                (Builtin::Abs, [x]) => Ok(Value::Num(num(x, "abs")?.abs())),
                (Builtin::Min | Builtin::Max, [x, y]) => {
                    let o = order(x, y)
                        .ok_or_else(|| ScalarError(format!("cannot order {x} and {y}")))?;
                    let x_first = (o != std::cmp::Ordering::Greater) == (*b == Builtin::Min);
                    Ok(if x_first { x.clone() } else { y.clone() })
                }
                _ => err(format!(
                    "builtin {b:?} called with {} arguments",
                    vals.len()
                )),
            }
        }
    }
}

/// `map` / `map2` semantics: a `none` argument gives `none` without evaluating the body.
pub fn apply(f: &Lambda, args: &[Value]) -> R {
    if args.iter().any(|a| *a == Value::None) {
        return Ok(Value::None);
    }
    eval_expr(&f.body, args)
}

/// Whether `select(keys, queries, pred)` selects key value `key` for query value `query`.
/// Comparisons with a `none` operand are false (`true` / `false` ignore the values).
pub fn holds(pred: &Predicate, key: &Value, query: &Value) -> Result<bool, ScalarError> {
    use std::cmp::Ordering::*;
    match pred {
        Predicate::Cmp(Comparison::True) => Ok(true),
        Predicate::Cmp(Comparison::False) => Ok(false),
        _ if *key == Value::None || *query == Value::None => Ok(false),
        Predicate::Cmp(c) => {
            let ord = || {
                order(key, query)
                    .ok_or_else(|| ScalarError(format!("cannot order {key} and {query}")))
            };
            Ok(match c {
                Comparison::Eq => key == query,
                Comparison::Ne => key != query,
                Comparison::Lt => ord()? == Less,
                Comparison::Le => ord()? != Greater,
                Comparison::Gt => ord()? == Greater,
                Comparison::Ge => ord()? != Less,
                Comparison::True | Comparison::False => unreachable!("handled above"),
            })
        }
        Predicate::Lambda(l) => match eval_expr(&l.body, &[key.clone(), query.clone()])? {
            Value::Bool(b) => Ok(b),
            other => err(format!(
                "a select predicate must give a boolean, found {other}"
            )),
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

/// The exact decimal text of a value as a token or label: symbols raw (no quotes), numbers as
/// integers or `p/q`.
pub fn token_text(v: &Value) -> String {
    match v {
        Value::Sym(s) => s.to_string(),
        other => other.to_string(),
    }
}

pub fn to_f64(r: Rational64) -> f64 {
    *r.numer() as f64 / *r.denom() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lam(body: Expr) -> Lambda {
        Lambda {
            params: vec!["a".into(), "b".into()],
            body,
        }
    }
    fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
        Expr::Binary(op, Box::new(a), Box::new(b))
    }

    #[test]
    fn arithmetic_is_exact_and_mod_is_euclidean() {
        let f = lam(bin(BinOp::Div, Expr::Param(0), Expr::Param(1)));
        assert_eq!(
            apply(&f, &[Value::int(1), Value::int(3)]).unwrap(),
            Value::Num(Rational64::new(1, 3))
        );
        assert!(apply(&f, &[Value::int(1), Value::int(0)]).is_err());
        let m = lam(bin(BinOp::Mod, Expr::Param(0), Expr::Param(1)));
        assert_eq!(
            apply(&m, &[Value::int(-7), Value::int(3)]).unwrap(),
            Value::int(2)
        );
        assert_eq!(
            apply(&m, &[Value::int(7), Value::int(-3)]).unwrap(),
            Value::int(1)
        );
    }

    #[test]
    fn none_short_circuits_maps_and_predicates() {
        let f = lam(bin(BinOp::Add, Expr::Param(0), Expr::Param(1)));
        assert_eq!(
            apply(&f, &[Value::None, Value::int(1)]).unwrap(),
            Value::None
        );
        assert!(!holds(&Predicate::Cmp(Comparison::Eq), &Value::None, &Value::None).unwrap());
        assert!(
            holds(
                &Predicate::Cmp(Comparison::True),
                &Value::None,
                &Value::int(1)
            )
            .unwrap()
        );
    }

    #[test]
    fn predicates_take_key_then_query() {
        // key < query
        assert!(
            holds(
                &Predicate::Cmp(Comparison::Lt),
                &Value::int(1),
                &Value::int(2)
            )
            .unwrap()
        );
        assert!(
            !holds(
                &Predicate::Cmp(Comparison::Lt),
                &Value::int(2),
                &Value::int(1)
            )
            .unwrap()
        );
        assert!(
            holds(
                &Predicate::Cmp(Comparison::Lt),
                &Value::sym("a"),
                &Value::sym("b")
            )
            .unwrap()
        );
    }

    #[test]
    fn guards_short_circuit() {
        // x != 0 and 1 / x > 0
        let body = bin(
            BinOp::And,
            bin(BinOp::Ne, Expr::Param(0), Expr::Const(Value::int(0))),
            bin(
                BinOp::Gt,
                bin(BinOp::Div, Expr::Const(Value::int(1)), Expr::Param(0)),
                Expr::Const(Value::int(0)),
            ),
        );
        assert_eq!(
            eval_expr(&body, &[Value::int(0)]).unwrap(),
            Value::Bool(false)
        );
    }
}
