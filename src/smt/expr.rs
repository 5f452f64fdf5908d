//! Lambda bodies (`ir::Expr`) translated into z3 terms exactly.
//!
//! Every operation is translated by its definition, never by tabulating sample points. Whatever
//! makes the evaluator fail (division or `%` by zero, `%` on a non-integer, an operand of the wrong
//! kind) becomes an error condition, guarded by the path condition under which the evaluator
//! would reach that operation: `if` evaluates only the branch taken, `and` / `or` stop at the
//! first operand that decides them.

use z3::ast::{Bool, Int};

use crate::lang::ir::{BinOp, Builtin, Expr, Lambda, UnOp};

use super::SmtError;
use super::value::{Kind, Num, SVal, SymTable, and, not, or};

/// Why an evaluation can fail; kept with each error condition for the reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    DivByZero,
    ModByZero,
    ModNonInteger,
    Type(String),
    Ambiguous,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::DivByZero => f.write_str("division by zero"),
            Fault::ModByZero => f.write_str("`%` by zero"),
            Fault::ModNonInteger => f.write_str("`%` on a non-integer"),
            Fault::Type(what) => write!(f, "type error: {what}"),
            Fault::Ambiguous => f.write_str("ambiguous categorical aggregate"),
        }
    }
}

/// One way evaluation can fail: the condition (over the input variables) and why.
#[derive(Clone, Debug)]
pub(crate) struct ErrCond {
    pub cond: Bool,
    pub fault: Fault,
}

/// Translation state: the symbol table, the current path condition and the collected errors.
pub(crate) struct ExprCx<'a> {
    pub syms: &'a SymTable,
    pub guard: Bool,
    pub errs: Vec<ErrCond>,
}

impl<'a> ExprCx<'a> {
    pub(crate) fn new(syms: &'a SymTable, guard: Bool) -> ExprCx<'a> {
        ExprCx {
            syms,
            guard,
            errs: Vec::new(),
        }
    }

    /// Records that evaluation fails when `cond` holds (on the current path).
    pub(crate) fn fail_if(&mut self, cond: Bool, fault: Fault) {
        if cond.as_bool() == Some(false) {
            return;
        }
        let c = and(&[self.guard.clone(), cond]);
        if c.as_bool() != Some(false) {
            self.errs.push(ErrCond { cond: c, fault });
        }
    }

    /// Runs `f` with the path condition strengthened by `cond`.
    fn under<T>(&mut self, cond: Bool, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = self.guard.clone();
        self.guard = and(&[saved.clone(), cond]);
        let out = f(self);
        self.guard = saved;
        out
    }

    fn require(&mut self, v: &SVal, kind: Kind, op: &str) {
        if !v.only(kind) {
            self.fail_if(
                not(&v.is(kind)),
                Fault::Type(format!("{op} needs a {}", kind.name())),
            );
        }
    }

    pub(crate) fn num(&mut self, v: &SVal, op: &str) -> Num {
        self.require(v, Kind::Num, op);
        v.num_payload()
    }

    pub(crate) fn boolean(&mut self, v: &SVal, op: &str) -> Bool {
        self.require(v, Kind::Bool, op);
        v.bool_payload()
    }

    /// `lam(args)`.
    pub(crate) fn apply(&mut self, lam: &Lambda, args: &[SVal]) -> Result<SVal, SmtError> {
        if lam.params.len() != args.len() {
            return Err(SmtError::Internal(format!(
                "lambda with {} parameters applied to {} arguments",
                lam.params.len(),
                args.len()
            )));
        }
        self.expr(&lam.body, args)
    }

    pub(crate) fn expr(&mut self, e: &Expr, params: &[SVal]) -> Result<SVal, SmtError> {
        Ok(match e {
            Expr::Const(v) => SVal::constant(v, self.syms)?,
            Expr::Param(i) => params
                .get(*i)
                .cloned()
                .ok_or_else(|| SmtError::Internal(format!("lambda parameter {i} out of range")))?,
            Expr::Unary(UnOp::Neg, a) => {
                let a = self.expr(a, params)?;
                SVal::num(self.num(&a, "`-`").neg())
            }
            Expr::Unary(UnOp::Not, a) => {
                let a = self.expr(a, params)?;
                SVal::boolean(not(&self.boolean(&a, "`not`")))
            }
            Expr::Binary(BinOp::And, a, b) => {
                let a = self.expr(a, params)?;
                let a = self.boolean(&a, "`and`");
                let b = self.under(a.clone(), |cx| -> Result<Bool, SmtError> {
                    let b = cx.expr(b, params)?;
                    Ok(cx.boolean(&b, "`and`"))
                })?;
                SVal::boolean(and(&[a, b]))
            }
            Expr::Binary(BinOp::Or, a, b) => {
                let a = self.expr(a, params)?;
                let a = self.boolean(&a, "`or`");
                let b = self.under(not(&a), |cx| -> Result<Bool, SmtError> {
                    let b = cx.expr(b, params)?;
                    Ok(cx.boolean(&b, "`or`"))
                })?;
                SVal::boolean(or(&[a, b]))
            }
            Expr::Binary(op, a, b) => {
                let a = self.expr(a, params)?;
                let b = self.expr(b, params)?;
                self.binary(*op, &a, &b)?
            }
            Expr::If(c, a, b) => {
                let c = self.expr(c, params)?;
                let c = self.boolean(&c, "`if`");
                let a = self.under(c.clone(), |cx| cx.expr(a, params))?;
                let b = self.under(not(&c), |cx| cx.expr(b, params))?;
                SVal::ite(&c, &a, &b)
            }
            Expr::Call(f, args) => {
                let vals = args
                    .iter()
                    .map(|a| self.expr(a, params))
                    .collect::<Result<Vec<_>, _>>()?;
                self.call(*f, &vals)?
            }
        })
    }

    fn call(&mut self, f: Builtin, args: &[SVal]) -> Result<SVal, SmtError> {
        let name = match f {
            Builtin::Min => "`min`",
            Builtin::Max => "`max`",
            Builtin::Abs => "`abs`",
        };
        let want = if f == Builtin::Abs { 1 } else { 2 };
        if args.len() != want {
            return Err(SmtError::Internal(format!(
                "{name} with {} arguments",
                args.len()
            )));
        }
        if f == Builtin::Abs {
            let x = self.num(&args[0], name);
            return Ok(SVal::num(Num::ite(&Num::int(0).le(&x), &x, &x.neg())));
        }
        // `min` / `max` order two numbers or two symbols, like `<`.
        let (a, b) = (&args[0], &args[1]);
        let a_le_b = self.less(a, b, true, name);
        Ok(match f {
            Builtin::Min => SVal::ite(&a_le_b, a, b),
            _ => {
                let b_le_a = self.less(b, a, true, name);
                SVal::ite(&b_le_a, a, b)
            }
        })
    }

    /// A binary operator other than the short-circuiting `and` / `or`.
    pub(crate) fn binary(&mut self, op: BinOp, a: &SVal, b: &SVal) -> Result<SVal, SmtError> {
        let sym = |op: BinOp| match op {
            BinOp::Add => "`+`",
            BinOp::Sub => "`-`",
            BinOp::Mul => "`*`",
            BinOp::Div => "`/`",
            BinOp::Mod => "`%`",
            BinOp::Eq => "`==`",
            BinOp::Ne => "`!=`",
            BinOp::Lt => "`<`",
            BinOp::Le => "`<=`",
            BinOp::Gt => "`>`",
            BinOp::Ge => "`>=`",
            BinOp::And => "`and`",
            BinOp::Or => "`or`",
        };
        Ok(match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                let x = self.num(a, sym(op));
                let y = self.num(b, sym(op));
                SVal::num(match op {
                    BinOp::Add => x.add(&y),
                    BinOp::Sub => x.sub(&y),
                    BinOp::Mul => x.mul(&y),
                    BinOp::Div => {
                        self.fail_if(y.is_zero(), Fault::DivByZero);
                        x.div(&y)
                    }
                    _ => {
                        let integral = and(&[x.is_integral(), y.is_integral()]);
                        self.fail_if(not(&integral), Fault::ModNonInteger);
                        self.fail_if(y.is_zero(), Fault::ModByZero);
                        // SMT-LIB's `mod` is the Euclidean remainder, the language's `%`.
                        Num::Int(x.as_int().modulo(y.as_int()))
                    }
                })
            }
            BinOp::Eq => SVal::boolean(self.equal(a, b, sym(op))),
            BinOp::Ne => SVal::boolean(not(&self.equal(a, b, sym(op)))),
            BinOp::Lt => SVal::boolean(self.less(a, b, false, sym(op))),
            BinOp::Le => SVal::boolean(self.less(a, b, true, sym(op))),
            BinOp::Gt => SVal::boolean(self.less(b, a, false, sym(op))),
            BinOp::Ge => SVal::boolean(self.less(b, a, true, sym(op))),
            BinOp::And | BinOp::Or => {
                let x = self.boolean(a, sym(op));
                let y = self.boolean(b, sym(op));
                SVal::boolean(if op == BinOp::And {
                    and(&[x, y])
                } else {
                    or(&[x, y])
                })
            }
        })
    }

    /// `a == b` on two values of the same kind, or `none` against anything (the evaluator's
    /// rule); comparing, say, a number with a symbol is a type error.
    pub(crate) fn equal(&mut self, a: &SVal, b: &SVal, op: &str) -> Bool {
        let mut comparable = vec![a.is(Kind::None), b.is(Kind::None)];
        for k in [Kind::Bool, Kind::Num, Kind::Sym] {
            if a.may_be(k) && b.may_be(k) {
                comparable.push(and(&[a.is(k), b.is(k)]));
            }
        }
        self.fail_if(
            not(&or(&comparable)),
            Fault::Type(format!("{op} needs two values of the same kind (or none)")),
        );
        a.same(b)
    }

    /// `a < b` (or `<=`) on two numbers or two symbols; anything else is a type error.
    ///
    /// Only strict `<` atoms are ever built: `a <= b` is `not (b < a)` (equal wherever the
    /// comparison is defined). Complementary comparisons then share one atom, so that counts of
    /// complementary selectors are visibly complementary to the arithmetic solver (see
    /// `encode::count`).
    pub(crate) fn less(&mut self, a: &SVal, b: &SVal, or_equal: bool, op: &str) -> Bool {
        let mut comparable = Vec::new();
        for k in [Kind::Num, Kind::Sym] {
            if a.may_be(k) && b.may_be(k) {
                comparable.push(and(&[a.is(k), b.is(k)]));
            }
        }
        let ok = or(&comparable);
        if ok.as_bool() != Some(true) {
            self.fail_if(
                not(&ok),
                Fault::Type(format!("{op} needs two numbers or two symbols")),
            );
        }
        if or_equal {
            not(&strict_less(b, a))
        } else {
            strict_less(a, b)
        }
    }
}

/// `a < b` for two numbers or two symbols (false for anything else).
fn strict_less(a: &SVal, b: &SVal) -> Bool {
    let mut cases = Vec::new();
    if a.may_be(Kind::Num) && b.may_be(Kind::Num) {
        let both = and(&[a.is(Kind::Num), b.is(Kind::Num)]);
        cases.push(and(&[both, a.num_payload().lt(&b.num_payload())]));
    }
    if a.may_be(Kind::Sym) && b.may_be(Kind::Sym) {
        let both = and(&[a.is(Kind::Sym), b.is(Kind::Sym)]);
        let (x, y): (Int, Int) = (a.sym_payload(), b.sym_payload());
        cases.push(and(&[both, x.lt(&y)]));
    }
    or(&cases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::ir::Value;
    use crate::smt::value::tt;
    use num_rational::Rational64;
    use z3::ast::Ast;
    use z3::{SatResult, Solver};

    fn int(i: i64) -> Expr {
        Expr::Const(Value::int(i))
    }

    fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
        Expr::Binary(op, Box::new(a), Box::new(b))
    }

    fn p(i: usize) -> Expr {
        Expr::Param(i)
    }

    /// Evaluates `e` at concrete integer arguments through z3: the value, or the faults possible.
    fn run(e: &Expr, args: &[i64]) -> Result<Value, Vec<Fault>> {
        let syms = SymTable::default();
        let mut cx = ExprCx::new(&syms, tt());
        let params: Vec<SVal> = args.iter().map(|&a| SVal::num(Num::int(a))).collect();
        let v = cx.expr(e, &params).unwrap();
        let s = Solver::new();
        let faults: Vec<Fault> = cx
            .errs
            .iter()
            .filter(|e| {
                s.push();
                s.assert(&e.cond);
                let sat = s.check() == SatResult::Sat;
                s.pop(1);
                sat
            })
            .map(|e| e.fault.clone())
            .collect();
        if !faults.is_empty() {
            return Err(faults);
        }
        assert_eq!(s.check(), SatResult::Sat);
        Ok(v.decode(&s.get_model().unwrap(), &syms).unwrap())
    }

    #[test]
    fn arithmetic_is_exact() {
        let e = bin(BinOp::Div, bin(BinOp::Sub, p(0), p(1)), int(3));
        assert_eq!(run(&e, &[5, 1]), Ok(Value::Num(Rational64::new(4, 3))));
        // Euclidean remainder: -7 % 3 == 2, -7 % -3 == 2.
        assert_eq!(
            run(&bin(BinOp::Mod, p(0), p(1)), &[-7, 3]),
            Ok(Value::int(2))
        );
        assert_eq!(
            run(&bin(BinOp::Mod, p(0), p(1)), &[-7, -3]),
            Ok(Value::int(2))
        );
        let abs = Expr::Call(Builtin::Abs, vec![p(0)]);
        assert_eq!(run(&abs, &[-4]), Ok(Value::int(4)));
        let mn = Expr::Call(Builtin::Min, vec![p(0), p(1)]);
        assert_eq!(run(&mn, &[2, -1]), Ok(Value::int(-1)));
    }

    #[test]
    fn division_by_zero_only_on_the_branch_taken() {
        let div = bin(BinOp::Div, int(1), p(0));
        assert_eq!(run(&div, &[0]), Err(vec![Fault::DivByZero]));
        let guarded = Expr::If(
            Box::new(bin(BinOp::Eq, p(0), int(0))),
            Box::new(int(0)),
            Box::new(div.clone()),
        );
        assert_eq!(run(&guarded, &[0]), Ok(Value::int(0)));
        let short = bin(
            BinOp::And,
            bin(BinOp::Ne, p(0), int(0)),
            bin(BinOp::Lt, div, int(1)),
        );
        assert_eq!(run(&short, &[0]), Ok(Value::Bool(false)));
        assert_eq!(run(&short, &[2]), Ok(Value::Bool(true)));
    }

    #[test]
    fn mod_of_a_fraction_is_an_error() {
        let e = bin(BinOp::Mod, bin(BinOp::Div, p(0), int(2)), int(2));
        assert_eq!(run(&e, &[3]), Err(vec![Fault::ModNonInteger]));
        assert_eq!(run(&e, &[6]), Ok(Value::int(1)));
    }

    #[test]
    fn comparisons_of_kinds() {
        let syms = SymTable::new(["a", "b"].map(std::sync::Arc::from));
        let mut cx = ExprCx::new(&syms, tt());
        let a = SVal::constant(&Value::sym("a"), &syms).unwrap();
        let b = SVal::constant(&Value::sym("b"), &syms).unwrap();
        let one = SVal::num(Num::int(1));
        assert_eq!(cx.less(&a, &b, false, "<").simplify().as_bool(), Some(true));
        assert!(cx.errs.is_empty());
        cx.less(&a, &one, false, "<");
        assert_eq!(cx.errs.len(), 1);
        // `==` across kinds is a type error, except against `none`.
        cx.equal(&a, &SVal::none(), "==");
        assert_eq!(cx.errs.len(), 1);
        cx.equal(&a, &one, "==");
        assert_eq!(cx.errs.len(), 2);
    }
}
