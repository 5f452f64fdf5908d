//! Scalar semantics: comparisons, checked rational arithmetic, booleans, and the lambda-body
//! evaluator every `map`, `select` predicate and compiled lookup table uses.

use super::*;

fn num(r: Rational64) -> Value {
    Value::Num(r)
}

fn type_err(op: &'static str, expected: &'static str, found: &[Value]) -> ScalarError {
    ScalarError::new(ScalarErrorKind::Type {
        op,
        expected,
        found: found.to_vec(),
    })
}

pub fn binop_str(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::And => "and",
        BinOp::Or => "or",
    }
}

pub fn comparison_str(c: Comparison) -> &'static str {
    match c {
        Comparison::Eq => "==",
        Comparison::Ne => "!=",
        Comparison::Lt => "<",
        Comparison::Le => "<=",
        Comparison::Gt => ">",
        Comparison::Ge => ">=",
        Comparison::True => "true",
        Comparison::False => "false",
    }
}

/// `==` / `!=`: values of the same kind, or `none` against anything (`x == none` is how a
/// program asks whether an aggregate found nothing).
fn equal(op: &'static str, a: &Value, b: &Value) -> Result<bool, ScalarError> {
    let comparable = matches!(
        (a, b),
        (Value::None, _)
            | (_, Value::None)
            | (Value::Bool(_), Value::Bool(_))
            | (Value::Num(_), Value::Num(_))
            | (Value::Sym(_), Value::Sym(_))
    );
    if comparable {
        Ok(a == b)
    } else {
        Err(type_err(
            op,
            "two values of the same kind",
            &[a.clone(), b.clone()],
        ))
    }
}

/// `< <= > >=`, `min`, `max`: two numbers (numeric order) or two symbols (string order).
fn order(op: &'static str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, ScalarError> {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => Ok(x.cmp(y)),
        (Value::Sym(x), Value::Sym(y)) => Ok(x.cmp(y)),
        _ => Err(type_err(
            op,
            "two numbers or two symbols",
            &[a.clone(), b.clone()],
        )),
    }
}

/// `pred(key, query)` for a comparison predicate, with the scalar operators' typing.
pub fn compare(c: Comparison, key: &Value, query: &Value) -> Result<bool, ScalarError> {
    use std::cmp::Ordering::*;
    let op = comparison_str(c);
    Ok(match c {
        Comparison::True => true,
        Comparison::False => false,
        Comparison::Eq => equal(op, key, query)?,
        Comparison::Ne => !equal(op, key, query)?,
        Comparison::Lt => order(op, key, query)? == Less,
        Comparison::Le => order(op, key, query)? != Greater,
        Comparison::Gt => order(op, key, query)? == Greater,
        Comparison::Ge => order(op, key, query)? != Less,
    })
}

fn arith(op: BinOp, a: &Value, b: &Value) -> Result<Value, ScalarError> {
    let s = binop_str(op);
    let (Value::Num(x), Value::Num(y)) = (a, b) else {
        return Err(type_err(s, "two numbers", &[a.clone(), b.clone()]));
    };
    let overflow = || ScalarError::new(ScalarErrorKind::Overflow { op: s });
    match op {
        BinOp::Add => x.checked_add(y).map(num).ok_or_else(overflow),
        BinOp::Sub => x.checked_sub(y).map(num).ok_or_else(overflow),
        BinOp::Mul => x.checked_mul(y).map(num).ok_or_else(overflow),
        BinOp::Div => {
            if y.is_zero() {
                return Err(ScalarError::new(ScalarErrorKind::DivisionByZero { op: s }));
            }
            x.checked_div(y).map(num).ok_or_else(overflow)
        }
        BinOp::Mod => {
            if !x.is_integer() || !y.is_integer() {
                return Err(type_err(s, "two integers", &[a.clone(), b.clone()]));
            }
            let (p, q) = (x.to_integer(), y.to_integer());
            if q == 0 {
                return Err(ScalarError::new(ScalarErrorKind::DivisionByZero { op: s }));
            }
            p.checked_rem_euclid(q).map(Value::int).ok_or_else(overflow)
        }
        _ => Err(ScalarError::new(ScalarErrorKind::Type {
            op: s,
            expected: "numbers",
            found: vec![],
        })),
    }
}

fn truth(op: &'static str, v: &Value) -> Result<bool, ScalarError> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(type_err(op, "a boolean", std::slice::from_ref(v))),
    }
}

/// Evaluates a lambda body with `args` as its parameters. This is the function the compiler
/// tabulates into MLP lookup tables.
pub fn eval_expr(expr: &Expr, args: &[Value]) -> Result<Value, EvalError> {
    eval_scalar(expr, args).map_err(|error| EvalError::Scalar {
        node: "lambda".to_string(),
        position: 0,
        error,
    })
}

/// [`eval_expr`] with the failing sub-expression's path, for diagnostics.
pub fn eval_scalar(expr: &Expr, args: &[Value]) -> Result<Value, ScalarError> {
    match expr {
        Expr::Const(v) => Ok(v.clone()),
        Expr::Param(i) => args.get(*i).cloned().ok_or_else(|| {
            ScalarError::new(ScalarErrorKind::MissingParam {
                index: *i,
                given: args.len(),
            })
        }),
        Expr::Unary(op, e) => {
            let v = eval_scalar(e, args).map_err(|e| e.within(0))?;
            match op {
                UnOp::Not => Ok(Value::Bool(!truth("not", &v)?)),
                UnOp::Neg => match &v {
                    Value::Num(r) => r
                        .numer()
                        .checked_neg()
                        .map(|n| Value::Num(Rational64::new_raw(n, *r.denom())))
                        .ok_or_else(|| ScalarError::new(ScalarErrorKind::Overflow { op: "-" })),
                    _ => Err(type_err("-", "a number", std::slice::from_ref(&v))),
                },
            }
        }
        Expr::Binary(op, a, b) => {
            let x = eval_scalar(a, args).map_err(|e| e.within(0))?;
            // `and` / `or` short-circuit, so `x != 0 and 1 / x > 2` is safe.
            match op {
                BinOp::And => {
                    if !truth("and", &x)? {
                        return Ok(Value::Bool(false));
                    }
                    let y = eval_scalar(b, args).map_err(|e| e.within(1))?;
                    return Ok(Value::Bool(truth("and", &y)?));
                }
                BinOp::Or => {
                    if truth("or", &x)? {
                        return Ok(Value::Bool(true));
                    }
                    let y = eval_scalar(b, args).map_err(|e| e.within(1))?;
                    return Ok(Value::Bool(truth("or", &y)?));
                }
                _ => {}
            }
            let y = eval_scalar(b, args).map_err(|e| e.within(1))?;
            use std::cmp::Ordering::*;
            let s = binop_str(*op);
            Ok(match op {
                BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                    arith(*op, &x, &y)?
                }
                BinOp::Eq => Value::Bool(equal(s, &x, &y)?),
                BinOp::Ne => Value::Bool(!equal(s, &x, &y)?),
                BinOp::Lt => Value::Bool(order(s, &x, &y)? == Less),
                BinOp::Le => Value::Bool(order(s, &x, &y)? != Greater),
                BinOp::Gt => Value::Bool(order(s, &x, &y)? == Greater),
                BinOp::Ge => Value::Bool(order(s, &x, &y)? != Less),
                BinOp::And | BinOp::Or => unreachable_bool(),
            })
        }
        Expr::If(c, t, e) => {
            let cv = eval_scalar(c, args).map_err(|e| e.within(0))?;
            if truth("if", &cv)? {
                eval_scalar(t, args).map_err(|e| e.within(1))
            } else {
                eval_scalar(e, args).map_err(|e| e.within(2))
            }
        }
        Expr::Call(f, fargs) => {
            let mut vals = Vec::with_capacity(fargs.len());
            for (i, a) in fargs.iter().enumerate() {
                vals.push(eval_scalar(a, args).map_err(|e| e.within(i))?);
            }
            match (f, vals.as_slice()) {
                (Builtin::Min, [a, b]) => {
                    Ok(if order("min", a, b)? == std::cmp::Ordering::Greater {
                        b.clone()
                    } else {
                        a.clone()
                    })
                }
                (Builtin::Max, [a, b]) => Ok(if order("max", a, b)? == std::cmp::Ordering::Less {
                    b.clone()
                } else {
                    a.clone()
                }),
                (Builtin::Abs, [Value::Num(r)]) => {
                    if r.is_negative() {
                        r.numer()
                            .checked_neg()
                            .map(|n| Value::Num(Rational64::new_raw(n, *r.denom())))
                            .ok_or_else(|| {
                                ScalarError::new(ScalarErrorKind::Overflow { op: "abs" })
                            })
                    } else {
                        Ok(Value::Num(*r))
                    }
                }
                (Builtin::Abs, [v]) => Err(type_err("abs", "a number", std::slice::from_ref(v))),
                (f, _) => Err(type_err(
                    match f {
                        Builtin::Min => "min",
                        Builtin::Max => "max",
                        Builtin::Abs => "abs",
                    },
                    "its arguments (min and max take 2, abs takes 1)",
                    &vals,
                )),
            }
        }
    }
}

// `and` / `or` return before the match above; kept total without a panic.
fn unreachable_bool() -> Value {
    Value::Bool(false)
}
