//! Expressions in canonical form, parenthesised only where precedence needs it.

use super::*;

// Sequence expressions: `or` 1, `and` 2, `not` 3, encoded 4, names and calls 5.
pub(super) fn seq_level(e: &SeqExpr) -> u8 {
    match e.kind {
        SeqExprKind::Or(..) => 1,
        SeqExprKind::And(..) => 2,
        SeqExprKind::Not(..) => 3,
        SeqExprKind::Encoded(..) => 4,
        SeqExprKind::Var(_) | SeqExprKind::Call { .. } => 5,
    }
}

/// Prints `e` where the grammar needs at least `min` (parenthesised otherwise).
pub(super) fn seq(e: &SeqExpr, min: u8) -> String {
    let s = match &e.kind {
        // `and` binds tighter, but `a or (b and c)` reads better with the parentheses.
        SeqExprKind::Or(a, b) => format!(
            "{} or {}",
            seq(a, or_operand(a, 1)),
            seq(b, or_operand(b, 2))
        ),
        SeqExprKind::And(a, b) => format!("{} and {}", seq(a, 2), seq(b, 3)),
        SeqExprKind::Not(a) => format!("not {}", seq(a, 3)),
        SeqExprKind::Encoded(kw, a) => {
            let w = match kw {
                EncodingKw::Numerical => "numerical",
                EncodingKw::Categorical => "categorical",
            };
            format!("{w} {}", seq(a, 5))
        }
        SeqExprKind::Var(i) => i.name.clone(),
        SeqExprKind::Call { func, args } => {
            let args: Vec<String> = args.iter().map(arg).collect();
            format!("{}({})", func.name, args.join(", "))
        }
    };
    if seq_level(e) < min {
        format!("({s})")
    } else {
        s
    }
}

pub(super) fn or_operand(e: &SeqExpr, min: u8) -> u8 {
    if matches!(e.kind, SeqExprKind::And(..)) {
        3
    } else {
        min
    }
}

pub(super) fn arg(a: &Arg) -> String {
    match a {
        Arg::Lambda(l) => lambda(l),
        Arg::Cmp(op, _) => op.as_str().to_string(),
        Arg::Value(v) => match v {
            ValueLit::Bool(b, _) => b.to_string(),
            ValueLit::None(_) => "none".to_string(),
            ValueLit::Str(s) => quote(&s.value),
            ValueLit::Num(n) => n.text.clone(),
        },
        Arg::Seq(e) => seq(e, 1),
    }
}

pub(super) fn lambda(l: &Lambda) -> String {
    let params: Vec<&str> = l.params.iter().map(|p| p.name.as_str()).collect();
    format!("|{}| {}", params.join(", "), expr(&l.body, 0))
}

// Scalar expressions: if 0, or 1, and 2, not 3, comparison 4, + - 5, * / % 6, unary minus 7,
// literals, names, calls 8.
pub(super) fn expr_level(e: &Expr) -> u8 {
    match e.kind {
        ExprKind::If(..) => 0,
        ExprKind::Or(..) => 1,
        ExprKind::And(..) => 2,
        ExprKind::Not(..) => 3,
        ExprKind::Cmp(..) => 4,
        ExprKind::Arith(ArithOp::Add | ArithOp::Sub, ..) => 5,
        ExprKind::Arith(..) => 6,
        ExprKind::Neg(..) => 7,
        _ => 8,
    }
}

pub(super) fn expr(e: &Expr, min: u8) -> String {
    let s = match &e.kind {
        // A condition or a `then` branch that is itself an `if` reads better in parentheses.
        ExprKind::If(c, t, x) => {
            format!("if {} then {} else {}", expr(c, 1), expr(t, 1), expr(x, 0))
        }
        ExprKind::Or(a, b) => format!(
            "{} or {}",
            expr(
                a,
                if matches!(a.kind, ExprKind::And(..)) {
                    3
                } else {
                    1
                }
            ),
            expr(
                b,
                if matches!(b.kind, ExprKind::And(..)) {
                    3
                } else {
                    2
                }
            )
        ),
        ExprKind::And(a, b) => format!("{} and {}", expr(a, 2), expr(b, 3)),
        ExprKind::Not(a) => format!("not {}", expr(a, 3)),
        ExprKind::Cmp(op, a, b) => format!("{} {} {}", expr(a, 5), op.as_str(), expr(b, 5)),
        ExprKind::Arith(op, a, b) => {
            let (l, r) = if matches!(op, ArithOp::Add | ArithOp::Sub) {
                (5, 6)
            } else {
                (6, 7)
            };
            format!("{} {} {}", expr(a, l), op.as_str(), expr(b, r))
        }
        ExprKind::Neg(a) => {
            let inner = expr(a, 7);
            // `- -x`, not `--x`.
            if inner.starts_with('-') {
                format!("- {inner}")
            } else {
                format!("-{inner}")
            }
        }
        ExprKind::Num(n) => n.text.clone(),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::None => "none".to_string(),
        ExprKind::Str(s) => quote(s),
        ExprKind::Name(i) => i.name.clone(),
        ExprKind::Call { func, args } => {
            let args: Vec<String> = args.iter().map(|a| expr(a, 0)).collect();
            format!("{}({})", func.name, args.join(", "))
        }
    };
    if expr_level(e) < min {
        format!("({s})")
    } else {
        s
    }
}
