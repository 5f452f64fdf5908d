use super::*;
use crate::lang::ir::Spec;

fn r(n: i64, d: i64) -> Value {
    Value::Num(Rational64::new(n, d))
}

fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    Expr::Binary(op, Box::new(a), Box::new(b))
}

fn c(v: Value) -> Expr {
    Expr::Const(v)
}

#[test]
fn exact_rational_arithmetic() {
    let e = bin(BinOp::Div, c(Value::int(1)), c(Value::int(3)));
    assert_eq!(eval_expr(&e, &[]), Ok(r(1, 3)));
    let e = bin(BinOp::Add, c(r(1, 3)), c(r(1, 6)));
    assert_eq!(eval_expr(&e, &[]), Ok(r(1, 2)));
    let e = bin(BinOp::Mod, c(Value::int(-7)), c(Value::int(3)));
    assert_eq!(eval_expr(&e, &[]), Ok(Value::int(2)));
    let e = bin(BinOp::Mod, c(Value::int(7)), c(Value::int(-3)));
    assert_eq!(eval_expr(&e, &[]), Ok(Value::int(1)));
}

#[test]
fn overflow_and_division_by_zero_are_errors() {
    let e = bin(BinOp::Mul, c(Value::int(i64::MAX)), c(Value::int(2)));
    let err = eval_scalar(&e, &[]).unwrap_err();
    assert!(matches!(err.kind, ScalarErrorKind::Overflow { .. }));
    let e = bin(
        BinOp::Div,
        c(Value::int(1)),
        bin(BinOp::Sub, c(Value::int(2)), c(Value::int(2))),
    );
    let err = eval_scalar(&e, &[]).unwrap_err();
    assert!(matches!(err.kind, ScalarErrorKind::DivisionByZero { .. }));
    let neg = Expr::Unary(UnOp::Neg, Box::new(c(Value::int(i64::MIN))));
    assert!(eval_scalar(&neg, &[]).is_err());
    let abs = Expr::Call(Builtin::Abs, vec![c(Value::int(i64::MIN))]);
    assert!(eval_scalar(&abs, &[]).is_err());
}

#[test]
fn type_errors_name_the_values_and_the_place() {
    // if p0 then 1 else (p0 + 1): the failing `+` is at path [2].
    let e = Expr::If(
        Box::new(bin(BinOp::Eq, Expr::Param(0), c(Value::sym("a")))),
        Box::new(c(Value::int(1))),
        Box::new(bin(BinOp::Add, Expr::Param(0), c(Value::int(1)))),
    );
    assert_eq!(eval_scalar(&e, &[Value::sym("a")]), Ok(Value::int(1)));
    let err = eval_scalar(&e, &[Value::sym("b")]).unwrap_err();
    assert_eq!(err.path, vec![2]);
    assert_eq!(
        err.to_string(),
        "`+` needs two numbers, found b (a symbol) and 1 (a number)"
    );
}

#[test]
fn equality_with_none_and_ordering_of_symbols() {
    let eq = bin(BinOp::Eq, Expr::Param(0), c(Value::None));
    assert_eq!(eval_expr(&eq, &[Value::int(3)]), Ok(Value::Bool(false)));
    assert_eq!(eval_expr(&eq, &[Value::None]), Ok(Value::Bool(true)));
    let lt = bin(BinOp::Lt, c(Value::sym("a")), c(Value::sym("b")));
    assert_eq!(eval_expr(&lt, &[]), Ok(Value::Bool(true)));
    let bad = bin(BinOp::Eq, c(Value::sym("a")), c(Value::int(1)));
    assert!(eval_expr(&bad, &[]).is_err());
    let bad = bin(BinOp::Lt, c(Value::None), c(Value::int(1)));
    assert!(eval_expr(&bad, &[]).is_err());
}

#[test]
fn and_or_short_circuit() {
    let div0 = bin(
        BinOp::Gt,
        bin(BinOp::Div, c(Value::int(1)), Expr::Param(0)),
        c(Value::int(0)),
    );
    let guarded = bin(
        BinOp::And,
        bin(BinOp::Ne, Expr::Param(0), c(Value::int(0))),
        div0,
    );
    assert_eq!(
        eval_expr(&guarded, &[Value::int(0)]),
        Ok(Value::Bool(false))
    );
    assert_eq!(eval_expr(&guarded, &[Value::int(2)]), Ok(Value::Bool(true)));
}

#[test]
fn adapters() {
    let clamp = Adapter::Clamp { lo: 0, hi: 10 };
    assert_eq!(clamp.apply(&Value::int(12)), Value::int(10));
    assert_eq!(clamp.apply(&Value::int(-3)), Value::int(0));
    let m = Adapter::Modulo { lo: 0, n: 11 };
    assert_eq!(m.apply(&Value::int(12)), Value::int(1));
    assert_eq!(m.apply(&Value::int(-1)), Value::int(10));
    let m = Adapter::Modulo {
        lo: i64::MIN,
        n: i64::MAX,
    };
    // (i64::MAX - i64::MIN) = 2^64 - 1 overflows i64; mod 2^63 - 1 it is 1.
    assert_eq!(m.apply(&Value::int(i64::MAX)), Value::int(i64::MIN + 1));
    assert_eq!(m.apply(&Value::int(i64::MIN)), Value::int(i64::MIN));
}

fn spec(src: &str) -> Spec {
    crate::lang::check_str("t.interp", src).unwrap_or_else(|r| panic!("{}", r.render_plain()))
}

fn syms(s: &str) -> Vec<Value> {
    s.split_whitespace().map(Value::sym).collect()
}

#[test]
fn reverse_with_intermediate_values() {
    let sp = spec(
        "task reverse { vocab {a, b, c} max_len 4 }
interpretation r for reverse {
  length = selector_width(select(tokens, tokens, true))
  opp    = map2(|n, i| n - i - 1, length, indices)
  flip   = select(indices, opp, ==)
  output   aggregate(flip, tokens)
}",
    );
    let p = &sp.programs["r"];
    let t = eval_program(p, &syms("a b c")).unwrap();
    assert_eq!(t.output(), syms("c b a").as_slice());
    assert_eq!(
        t.var(p, "length"),
        Some(&NodeValue::Seq(vec![Value::int(3); 3]))
    );
    let Some(NodeValue::Selector(m)) = t.var(p, "flip") else {
        panic!()
    };
    assert!(m.get(0, 2) && !m.get(0, 0));
    assert!(matches!(
        eval_program(p, &[]),
        Err(EvalError::EmptyInput { .. })
    ));
    assert!(matches!(
        eval_program(p, &syms("a b c a b")),
        Err(EvalError::TooLong { .. })
    ));
    assert!(matches!(
        eval_program(p, &syms("a z")),
        Err(EvalError::NotInVocab { position: 1, .. })
    ));
}

#[test]
fn ambiguous_categorical_aggregate_is_an_error() {
    let sp = spec(
        "task t { vocab {a, b} max_len 3 }
interpretation i for t { output aggregate(select(tokens, tokens, ==), indices) }",
    );
    let p = &sp.programs["i"];
    assert_eq!(
        eval_output(p, &syms("a b")).unwrap(),
        vec![Value::int(0), Value::int(1)]
    );
    let err = eval_output(p, &syms("a b a")).unwrap_err();
    assert_eq!(
        err,
        EvalError::AmbiguousAggregate {
            node: "output".into(),
            query: 0,
            selected: vec![0, 2]
        }
    );
}

#[test]
fn numerical_aggregate_is_an_exact_mean() {
    let sp = spec(
        "task f { vocab {w, x} max_len 6 }
interpretation frac for f {
  bools = numerical map(|t| if t == x then 1 else 0, tokens)
  output numerical aggregate(select(indices, indices, <=), bools)
}",
    );
    let out = eval_output(&sp.programs["frac"], &syms("x w w x")).unwrap();
    assert_eq!(out, vec![r(1, 1), r(1, 2), r(1, 3), r(1, 2)]);
}

#[test]
fn pipelines_apply_adapters_between_stages() {
    let sp = spec(
        "task a { vocab {0..=3} max_len 3 }
task b { vocab {0..=3} max_len 3 }
interpretation inc for a { output map(|x| x + 1, tokens) }
interpretation dbl for b { output map(|x| x * 2, tokens) }
pipeline p = inc |> dbl via modulo",
    );
    let ints = |v: &[i64]| v.iter().map(|i| Value::int(*i)).collect::<Vec<_>>();
    let t = eval_pipeline(&sp, &sp.pipelines["p"], &ints(&[0, 3, 2])).unwrap();
    assert_eq!(t.stage_inputs[1], ints(&[1, 0, 3]));
    assert_eq!(t.output(), ints(&[2, 0, 6]).as_slice());
}

#[test]
fn output_text_and_json() {
    assert_eq!(value_text(&r(1, 4)), "0.25");
    assert_eq!(value_text(&r(-1, 8)), "-0.125");
    assert_eq!(value_text(&r(-5, 2)), "-2.5");
    assert_eq!(value_text(&r(1, 3)), "1/3");
    assert_eq!(value_text(&Value::int(-7)), "-7");
    assert_eq!(value_text(&Value::sym("(")), "(");
    assert_eq!(value_text(&Value::None), "none");
    assert_eq!(value_json(&r(1, 4)), serde_json::json!(0.25));
    assert_eq!(value_json(&Value::int(3)), serde_json::json!(3));
    assert_eq!(value_json(&Value::None), serde_json::Value::Null);
    assert_eq!(value_json(&Value::sym("a")), serde_json::json!("a"));
}
