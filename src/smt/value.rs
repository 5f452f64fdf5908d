//! Symbolic values: one language [`Value`] at one sequence position, as z3 terms.
//!
//! A value of the language is one of four kinds (none, boolean, number, symbol). A symbolic value
//! carries, for every kind that can occur there, an indicator (`is[kind]`) and a payload term:
//! booleans as `Bool`, numbers as `Int` while they are provably integral and `Real` otherwise
//! (exact rationals either way), symbols as `Int` codes whose order is the string order of the
//! symbols. Kinds that cannot occur are absent, so a sequence of plain integers costs one `Int`
//! term and no indicators. Exactly one indicator is true under the input constraints; a payload
//! whose indicator is false is unconstrained garbage and is never looked at.

use std::collections::BTreeMap;
use std::sync::Arc;

use num_rational::Rational64;
use z3::Model;
use z3::ast::{Bool, Int, Real};

use crate::lang::ir::Value;

use super::SmtError;

/// The four kinds of language values, in [`Value`]'s variant order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    None = 0,
    Bool = 1,
    Num = 2,
    Sym = 3,
}

pub(crate) const KINDS: [Kind; 4] = [Kind::None, Kind::Bool, Kind::Num, Kind::Sym];

impl Kind {
    pub(crate) fn of(v: &Value) -> Kind {
        match v {
            Value::None => Kind::None,
            Value::Bool(_) => Kind::Bool,
            Value::Num(_) => Kind::Num,
            Value::Sym(_) => Kind::Sym,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::None => "none",
            Kind::Bool => "boolean",
            Kind::Num => "number",
            Kind::Sym => "symbol",
        }
    }
}

/// The symbols of one proof, numbered in string order so that `<` on codes is `<` on symbols.
#[derive(Clone, Debug, Default)]
pub(crate) struct SymTable {
    codes: BTreeMap<Arc<str>, i64>,
    names: Vec<Arc<str>>,
}

impl SymTable {
    pub(crate) fn new(symbols: impl IntoIterator<Item = Arc<str>>) -> SymTable {
        let sorted: std::collections::BTreeSet<Arc<str>> = symbols.into_iter().collect();
        let names: Vec<Arc<str>> = sorted.into_iter().collect();
        let codes = names
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as i64))
            .collect();
        SymTable { codes, names }
    }

    pub(crate) fn code(&self, s: &str) -> Result<i64, SmtError> {
        self.codes.get(s).copied().ok_or_else(|| {
            SmtError::Internal(format!("symbol {s:?} missing from the symbol table"))
        })
    }

    pub(crate) fn name(&self, code: i64) -> Option<&Arc<str>> {
        usize::try_from(code).ok().and_then(|i| self.names.get(i))
    }
}

/// A number term: `Int` while provably integral, `Real` otherwise.
#[derive(Clone, Debug)]
pub(crate) enum Num {
    Int(Int),
    Real(Real),
}

impl Num {
    pub(crate) fn int(i: i64) -> Num {
        Num::Int(Int::from_i64(i))
    }

    pub(crate) fn constant(r: &Rational64) -> Num {
        if r.is_integer() {
            Num::int(r.to_integer())
        } else {
            Num::Real(real_const(r))
        }
    }

    pub(crate) fn real(&self) -> Real {
        match self {
            Num::Int(i) => i.to_real(),
            Num::Real(r) => r.clone(),
        }
    }

    /// Both operands as `Int` when both are, else both as `Real`.
    fn unify(&self, other: &Num) -> Result<(Int, Int), (Real, Real)> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Ok((a.clone(), b.clone())),
            _ => Err((self.real(), other.real())),
        }
    }

    pub(crate) fn add(&self, o: &Num) -> Num {
        match self.unify(o) {
            Ok((a, b)) => Num::Int(Int::add(&[a, b])),
            Err((a, b)) => Num::Real(Real::add(&[a, b])),
        }
    }

    pub(crate) fn sub(&self, o: &Num) -> Num {
        match self.unify(o) {
            Ok((a, b)) => Num::Int(Int::sub(&[a, b])),
            Err((a, b)) => Num::Real(Real::sub(&[a, b])),
        }
    }

    pub(crate) fn mul(&self, o: &Num) -> Num {
        match self.unify(o) {
            Ok((a, b)) => Num::Int(Int::mul(&[a, b])),
            Err((a, b)) => Num::Real(Real::mul(&[a, b])),
        }
    }

    /// Exact division; the caller guards the divisor against zero.
    pub(crate) fn div(&self, o: &Num) -> Num {
        Num::Real(self.real().div(o.real()))
    }

    pub(crate) fn neg(&self) -> Num {
        match self {
            Num::Int(a) => Num::Int(a.unary_minus()),
            Num::Real(a) => Num::Real(a.unary_minus()),
        }
    }

    pub(crate) fn eq(&self, o: &Num) -> Bool {
        match self.unify(o) {
            Ok((a, b)) => a.eq(&b),
            Err((a, b)) => a.eq(&b),
        }
    }

    pub(crate) fn lt(&self, o: &Num) -> Bool {
        match self.unify(o) {
            Ok((a, b)) => a.lt(&b),
            Err((a, b)) => a.lt(&b),
        }
    }

    pub(crate) fn le(&self, o: &Num) -> Bool {
        match self.unify(o) {
            Ok((a, b)) => a.le(&b),
            Err((a, b)) => a.le(&b),
        }
    }

    pub(crate) fn is_zero(&self) -> Bool {
        match self {
            Num::Int(a) => a.eq(Int::from_i64(0)),
            Num::Real(a) => a.eq(real_const(&Rational64::from_integer(0))),
        }
    }

    /// Whether the number is an integer (always, for `Int` terms).
    pub(crate) fn is_integral(&self) -> Bool {
        match self {
            Num::Int(_) => Bool::from_bool(true),
            Num::Real(r) => r.is_int(),
        }
    }

    /// The integer part, meaningful where [`Num::is_integral`] holds.
    pub(crate) fn as_int(&self) -> Int {
        match self {
            Num::Int(a) => a.clone(),
            Num::Real(r) => r.to_int(),
        }
    }

    pub(crate) fn ite(c: &Bool, a: &Num, b: &Num) -> Num {
        match a.unify(b) {
            Ok((x, y)) => Num::Int(c.ite(&x, &y)),
            Err((x, y)) => Num::Real(c.ite(&x, &y)),
        }
    }

    pub(crate) fn decode(&self, model: &Model) -> Result<Rational64, SmtError> {
        match self {
            Num::Int(a) => {
                let v = model
                    .eval(a, true)
                    .and_then(|v| v.as_i64())
                    .ok_or_else(|| SmtError::Decode(format!("integer {a} has no small value")))?;
                Ok(Rational64::from_integer(v))
            }
            Num::Real(r) => {
                let v = model
                    .eval(r, true)
                    .ok_or_else(|| SmtError::Decode(format!("{r}")))?;
                let (n, d) = v
                    .as_rational()
                    .ok_or_else(|| SmtError::Decode(format!("real {v} has no small value")))?;
                if d == 0 {
                    return Err(SmtError::Decode(format!("real {v} has a zero denominator")));
                }
                Ok(Rational64::new(n, d))
            }
        }
    }
}

/// `Real::from_rational` needs `Z3_mk_real_int64`, which z3 4.8.12 lacks; numerals go by text.
pub(crate) fn real_const(r: &Rational64) -> Real {
    Real::from_rational_str(&r.numer().to_string(), &r.denom().to_string())
        .expect("a rational numeral in decimal is always valid z3 syntax")
}

pub(crate) fn tt() -> Bool {
    Bool::from_bool(true)
}

pub(crate) fn ff() -> Bool {
    Bool::from_bool(false)
}

/// Conjunction, folding literal `true` / `false` so that statically decided conditions stay
/// recognisable (`as_bool`) without a call to the simplifier.
pub(crate) fn and(xs: &[Bool]) -> Bool {
    fold_literals(xs, true, Bool::and)
}

/// Negation, folding literals like [`and`].
pub(crate) fn not(x: &Bool) -> Bool {
    match x.as_bool() {
        Some(b) => Bool::from_bool(!b),
        None => x.not(),
    }
}

/// Disjunction, folding literal `true` / `false` like [`and`].
pub(crate) fn or(xs: &[Bool]) -> Bool {
    fold_literals(xs, false, Bool::or)
}

/// `and` (`unit` true) or `or` (`unit` false): literals equal to `unit` drop out, the other
/// literal decides the whole, and `combine` joins what is left when that is two terms or more.
fn fold_literals(xs: &[Bool], unit: bool, combine: impl Fn(&[Bool]) -> Bool) -> Bool {
    let mut keep = Vec::with_capacity(xs.len());
    for x in xs {
        match x.as_bool() {
            Some(b) if b == unit => {}
            Some(_) => return Bool::from_bool(!unit),
            None => keep.push(x.clone()),
        }
    }
    match keep.as_slice() {
        [] => Bool::from_bool(unit),
        [one] => one.clone(),
        _ => combine(&keep),
    }
}

/// One symbolic language value. See the module documentation.
#[derive(Clone, Debug)]
pub(crate) struct SVal {
    /// Indicator per kind; `None` where the kind cannot occur.
    pub is: [Option<Bool>; 4],
    pub b: Option<Bool>,
    pub n: Option<Num>,
    pub s: Option<Int>,
}

impl SVal {
    fn single(kind: Kind) -> [Option<Bool>; 4] {
        let mut is = [None, None, None, None];
        is[kind as usize] = Some(tt());
        is
    }

    pub(crate) fn none() -> SVal {
        SVal {
            is: Self::single(Kind::None),
            b: None,
            n: None,
            s: None,
        }
    }

    pub(crate) fn boolean(b: Bool) -> SVal {
        SVal {
            is: Self::single(Kind::Bool),
            b: Some(b),
            n: None,
            s: None,
        }
    }

    pub(crate) fn num(n: Num) -> SVal {
        SVal {
            is: Self::single(Kind::Num),
            b: None,
            n: Some(n),
            s: None,
        }
    }

    pub(crate) fn sym(code: Int) -> SVal {
        SVal {
            is: Self::single(Kind::Sym),
            b: None,
            n: None,
            s: Some(code),
        }
    }

    pub(crate) fn constant(v: &Value, syms: &SymTable) -> Result<SVal, SmtError> {
        Ok(match v {
            Value::None => SVal::none(),
            Value::Bool(b) => SVal::boolean(Bool::from_bool(*b)),
            Value::Num(r) => SVal::num(Num::constant(r)),
            Value::Sym(s) => SVal::sym(Int::from_i64(syms.code(s)?)),
        })
    }

    /// The indicator of `kind` (constant false where it cannot occur).
    pub(crate) fn is(&self, kind: Kind) -> Bool {
        self.is[kind as usize].clone().unwrap_or_else(ff)
    }

    pub(crate) fn may_be(&self, kind: Kind) -> bool {
        self.is[kind as usize].is_some()
    }

    /// Whether this value is exactly of one kind, statically.
    pub(crate) fn only(&self, kind: Kind) -> bool {
        KINDS.iter().all(|&k| (k == kind) == self.may_be(k))
    }

    /// `if c then a else b`, component by component.
    pub(crate) fn ite(c: &Bool, a: &SVal, b: &SVal) -> SVal {
        let mut is: [Option<Bool>; 4] = [None, None, None, None];
        for k in KINDS {
            let i = k as usize;
            is[i] = match (&a.is[i], &b.is[i]) {
                (None, None) => None,
                _ => Some(c.ite(&a.is(k), &b.is(k))),
            };
        }
        let b_ = match (&a.b, &b.b) {
            (Some(x), Some(y)) => Some(c.ite(x, y)),
            (x, y) => x.clone().or_else(|| y.clone()),
        };
        let n = match (&a.n, &b.n) {
            (Some(x), Some(y)) => Some(Num::ite(c, x, y)),
            (x, y) => x.clone().or_else(|| y.clone()),
        };
        let s = match (&a.s, &b.s) {
            (Some(x), Some(y)) => Some(c.ite(x, y)),
            (x, y) => x.clone().or_else(|| y.clone()),
        };
        SVal { is, b: b_, n, s }
    }

    /// Identity of values (same kind and same content), never an error: what "the outputs are
    /// equal" means. Numbers compare exactly (an `Int` 1 equals a `Real` 1).
    pub(crate) fn same(&self, o: &SVal) -> Bool {
        let mut cases = Vec::new();
        for k in KINDS {
            if !(self.may_be(k) && o.may_be(k)) {
                continue;
            }
            let both = and(&[self.is(k), o.is(k)]);
            let payload = match k {
                Kind::None => tt(),
                Kind::Bool => payload(&self.b).iff(payload(&o.b)),
                Kind::Num => self.num_payload().eq(&o.num_payload()),
                Kind::Sym => self.sym_payload().eq(o.sym_payload()),
            };
            cases.push(and(&[both, payload]));
        }
        or(&cases)
    }

    /// Whether both are the very same terms (z3 shares equal terms, so this is a pointer-level
    /// check that needs no solver and cannot be interrupted).
    pub(crate) fn identical(&self, o: &SVal) -> bool {
        let nums = match (&self.n, &o.n) {
            (Some(Num::Int(a)), Some(Num::Int(b))) => a == b,
            (Some(Num::Real(a)), Some(Num::Real(b))) => a == b,
            (None, None) => true,
            _ => false,
        };
        self.is == o.is && self.b == o.b && nums && self.s == o.s
    }

    pub(crate) fn bool_payload(&self) -> Bool {
        payload(&self.b)
    }

    pub(crate) fn num_payload(&self) -> Num {
        self.n.clone().unwrap_or_else(|| Num::int(0))
    }

    pub(crate) fn sym_payload(&self) -> Int {
        self.s.clone().unwrap_or_else(|| Int::from_i64(-1))
    }

    /// The value this term takes in a model.
    pub(crate) fn decode(&self, model: &Model, syms: &SymTable) -> Result<Value, SmtError> {
        let truth = |b: &Bool| -> Result<bool, SmtError> {
            model
                .eval(b, true)
                .and_then(|v| v.as_bool())
                .ok_or_else(|| SmtError::Decode(format!("boolean {b} has no value")))
        };
        for k in KINDS {
            let Some(ind) = &self.is[k as usize] else {
                continue;
            };
            if !truth(ind)? {
                continue;
            }
            return Ok(match k {
                Kind::None => Value::None,
                Kind::Bool => Value::Bool(truth(&self.bool_payload())?),
                Kind::Num => Value::Num(self.num_payload().decode(model)?),
                Kind::Sym => {
                    let code = model
                        .eval(&self.sym_payload(), true)
                        .and_then(|v| v.as_i64())
                        .ok_or_else(|| SmtError::Decode("symbol code has no value".into()))?;
                    let name = syms.name(code).ok_or_else(|| {
                        SmtError::Decode(format!("symbol code {code} names no symbol"))
                    })?;
                    Value::Sym(name.clone())
                }
            });
        }
        Err(SmtError::Decode(
            "a value of no kind (no indicator is true)".into(),
        ))
    }
}

fn payload(b: &Option<Bool>) -> Bool {
    b.clone().unwrap_or_else(ff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use z3::{SatResult, Solver};

    #[test]
    fn symbol_codes_follow_string_order() {
        let t = SymTable::new(["b", "a", "(", "b"].map(Arc::from));
        assert!(t.code("(").unwrap() < t.code("a").unwrap());
        assert!(t.code("a").unwrap() < t.code("b").unwrap());
        assert_eq!(t.name(t.code("b").unwrap()).map(|s| &**s), Some("b"));
        assert!(t.code("zz").is_err());
    }

    #[test]
    fn ite_of_mixed_kinds_decodes_both_ways() {
        let syms = SymTable::new([Arc::from("x")]);
        let c = Bool::new_const("c");
        let a = SVal::constant(&Value::sym("x"), &syms).unwrap();
        let b = SVal::constant(&Value::Num(Rational64::new(1, 3)), &syms).unwrap();
        let v = SVal::ite(&c, &a, &b);
        for (cv, want) in [
            (true, Value::sym("x")),
            (false, Value::Num(Rational64::new(1, 3))),
        ] {
            let s = Solver::new();
            s.assert(c.iff(Bool::from_bool(cv)));
            assert_eq!(s.check(), SatResult::Sat);
            let m = s.get_model().unwrap();
            assert_eq!(v.decode(&m, &syms).unwrap(), want);
        }
    }

    #[test]
    fn same_compares_int_and_real_exactly() {
        let syms = SymTable::default();
        let one_int = SVal::num(Num::int(1));
        let one_real = SVal::num(Num::Real(real_const(&Rational64::new(2, 2))));
        let half = SVal::num(Num::Real(real_const(&Rational64::new(1, 2))));
        let s = Solver::new();
        s.assert(one_int.same(&one_real).not());
        assert_eq!(s.check(), SatResult::Unsat);
        let s = Solver::new();
        s.assert(one_int.same(&half));
        assert_eq!(s.check(), SatResult::Unsat);
        assert!(
            SVal::constant(&Value::None, &syms)
                .unwrap()
                .only(Kind::None)
        );
    }
}
