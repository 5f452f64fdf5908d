//! MLP blocks: exact lookup tables on finite value sets.
//!
//! A group computes its targets (one or more nodes, e.g. a map and the maps fused onto it) from
//! one or two sources. Several constructions are tried; each is checked *exactly* (in rational
//! arithmetic) on every combination of source values — including `none` (an all-zero block) and
//! the BOS position, where every unit must stay silent so BOS keeps the all-zero values that
//! empty selections read — and the valid one with the fewest hidden units wins:
//!
//! * `lookup`: one categorical source; one unit per distinct output (`relu(Σ e_x)` over the
//!   source values sharing that output), numerical outputs as signed linear read-outs.
//! * `interpolate`: one numerical source on finitely many points: the piecewise-linear function
//!   through the points (a constant unit plus one hinge `relu(x − p_k)` per slope change). Exact
//!   on the points, with one unit per point where tracr's discretising MLP uses two.
//! * `pairs`: two categorical sources: per value of one source, one unit per distinct output over
//!   the other (`relu(e_x + Σ e_y − 1)`); tracr's construction when every output differs.
//! * `separable`: two numerical-valued categorical sources whose outputs depend only on
//!   `x + y` or `x − y`: interpolation on that sum, with `none` killing every unit.
//! * `gated`: a categorical × a numerical source: one interpolation per categorical value.
//! * `additive`: two numerical sources whose outputs are `g(x) + h(y)` (e.g. a difference).

use std::collections::BTreeMap;

use num_rational::Rational64;
use num_traits::{Signed, Zero};

use super::blocks::{BosValue, Dir, Recipe, Source, SourceKind, Unit};
use super::scalar::{apply, as_number, to_f64};
use super::values::SeqInfo;
use crate::lang::eval::ScalarError;
use crate::lang::ir::{NodeId, Value};

/// Why an exact MLP construction does not apply, with what it was about.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum MlpError {
    #[error("an MLP group needs at least one source")]
    NoSources,
    #[error("an MLP here would read {0} sequences at once; at most two are supported")]
    TooManySources(usize),
    /// A recipe reads a source the group does not have.
    #[error("no source {0}")]
    MissingSource(usize),
    /// A selector-width recipe read something other than a nonzero number.
    #[error("selector width read {0:?}")]
    Width(Option<Value>),
    #[error("{0}")]
    Lambda(ScalarError),
    #[error("value {value} is outside the value set of node {node}")]
    OutsideValueSet { value: Value, node: usize },
    #[error("numerical node {node} got {value}")]
    NotANumber { node: usize, value: Value },
    /// The strategy needs sources of another kind.
    #[error("needs {0}")]
    SourceKinds(&'static str),
    #[error("non-numeric values")]
    NonNumeric,
    #[error("outputs do not depend on the sum alone")]
    NotSeparable,
    /// Verification: the units compute something else on this assignment of source values.
    #[error("wrong output on {0:?}")]
    WrongOutput(Vec<Value>),
    #[error("writes at the BOS position")]
    WritesAtBos,
    /// Every strategy failed; why each did.
    #[error("no exact MLP construction ({})", attempts.iter().map(|(n, e)| format!("{n}: {e}")).collect::<Vec<_>>().join("; "))]
    NoConstruction {
        attempts: Vec<(&'static str, MlpError)>,
    },
}

type Q = Rational64;
/// An exact sparse vector over directions.
type W = BTreeMap<Dir, Q>;

fn q(n: i64) -> Q {
    Q::from_integer(n)
}

/// A target as the unit builder sees it.
#[derive(Clone, Debug)]
pub struct TargetSpec {
    pub node: NodeId,
    pub info: SeqInfo,
    pub recipe: Recipe,
    pub materialized: bool,
}

/// An exact unit before conversion to f64.
#[derive(Clone, Debug, PartialEq)]
struct UnitQ {
    input: W,
    output: W,
}

fn add_into(acc: &mut W, w: &W, scale: Q) {
    for (d, x) in w {
        let e = acc.entry(*d).or_insert_with(Q::zero);
        *e += *x * scale;
        if e.is_zero() {
            acc.remove(d);
        }
    }
}

fn sub(a: &W, b: &W) -> W {
    let mut out = a.clone();
    add_into(&mut out, b, q(-1));
    out
}

fn scaled(a: &W, s: Q) -> W {
    let mut out = W::new();
    add_into(&mut out, a, s);
    out
}

/// Evaluates a recipe on one assignment of source values.
pub fn eval_recipe(r: &Recipe, assignment: &[Value]) -> Result<Value, MlpError> {
    match r {
        Recipe::Source(i) => assignment
            .get(*i)
            .cloned()
            .ok_or(MlpError::MissingSource(*i)),
        Recipe::Apply(f, args) => {
            let vals: Vec<Value> = args
                .iter()
                .map(|a| eval_recipe(a, assignment))
                .collect::<Result<_, _>>()?;
            apply(f, &vals).map_err(MlpError::Lambda)
        }
        Recipe::Pair(i, j) => match (assignment.get(*i), assignment.get(*j)) {
            (Some(a), Some(b)) => Ok(pair_value(a, b)),
            (None, _) => Err(MlpError::MissingSource(*i)),
            _ => Err(MlpError::MissingSource(*j)),
        },
        Recipe::Width(i) => match assignment.get(*i) {
            Some(Value::Num(x)) if !x.is_zero() => {
                let w = x.recip() - q(1);
                Ok(Value::Num(w))
            }
            other => Err(MlpError::Width(other.cloned())),
        },
    }
}

/// The value of a product sequence holding `a` and `b` (either may be `none`).
pub fn pair_value(a: &Value, b: &Value) -> Value {
    Value::sym(&format!("({a}, {b})"))
}

/// The values a source can take at non-BOS positions (`none` included where possible).
fn domain(s: &Source) -> Vec<Value> {
    match &s.kind {
        SourceKind::Categorical { values, has_none } => values
            .iter()
            .cloned()
            .chain(has_none.then_some(Value::None))
            .collect(),
        SourceKind::Numerical { points, .. } => points.iter().map(|p| Value::Num(*p)).collect(),
    }
}

/// Every tuple with one element of each set, the last set varying fastest.
fn cartesian<T: Clone>(sets: &[Vec<T>]) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = vec![vec![]];
    for set in sets {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                set.iter().map(move |x| {
                    let mut p = prefix.clone();
                    p.push(x.clone());
                    p
                })
            })
            .collect();
    }
    out
}

/// Every joint assignment of the sources.
fn assignments(sources: &[Source]) -> Vec<Vec<Value>> {
    cartesian(&sources.iter().map(domain).collect::<Vec<_>>())
}

/// What the targets should write for one assignment; `None` for a don't-care cell (a lambda
/// failing on a combination of over-approximated value sets).
fn expected(targets: &[TargetSpec], assignment: &[Value]) -> Result<Option<W>, MlpError> {
    let mut w = W::new();
    for t in targets.iter().filter(|t| t.materialized) {
        let v = match eval_recipe(&t.recipe, assignment) {
            Ok(v) => v,
            Err(_) => return Ok(None),
        };
        match &t.info {
            SeqInfo::Categorical { values, .. } => {
                if v != Value::None {
                    let i = values
                        .binary_search(&v)
                        .map_err(|_| MlpError::OutsideValueSet {
                            value: v.clone(),
                            node: t.node.0,
                        })?;
                    w.insert(Dir::Val(t.node, i), q(1));
                }
            }
            SeqInfo::Numerical { .. } => {
                let x = if v == Value::None {
                    Q::zero()
                } else {
                    as_number(&v).ok_or_else(|| MlpError::NotANumber {
                        node: t.node.0,
                        value: v.clone(),
                    })?
                };
                if !x.is_zero() {
                    w.insert(Dir::Num(t.node), x);
                }
            }
        }
    }
    Ok(Some(w))
}

/// A residual state for checking units: the sources' directions plus `one` and `bos`.
fn residual(sources: &[Source], assignment: Option<&[Value]>, bos_num: &[Q]) -> W {
    let mut r = W::new();
    r.insert(Dir::One, q(1));
    match assignment {
        None => {
            r.insert(Dir::Bos, q(1));
            for (s, x) in sources.iter().zip(bos_num) {
                if let SourceKind::Numerical { dir, .. } = &s.kind {
                    r.insert(*dir, *x);
                }
            }
        }
        Some(a) => {
            for (s, v) in sources.iter().zip(a) {
                match &s.kind {
                    SourceKind::Categorical { values, .. } => {
                        if let Ok(i) = values.binary_search(v) {
                            r.insert(Dir::Val(s.node, i), q(1));
                        }
                    }
                    SourceKind::Numerical { dir, .. } => {
                        if let Value::Num(x) = v {
                            r.insert(*dir, *x);
                        }
                    }
                }
            }
        }
    }
    r
}

fn run_units(units: &[UnitQ], r: &W) -> W {
    let mut out = W::new();
    for u in units {
        let pre: Q = u
            .input
            .iter()
            .map(|(d, w)| *w * r.get(d).copied().unwrap_or_else(Q::zero))
            .sum();
        if pre > Q::zero() {
            add_into(&mut out, &u.output, pre);
        }
    }
    out
}

/// Checks units exactly on every assignment and at BOS.
fn verify(sources: &[Source], targets: &[TargetSpec], units: &[UnitQ]) -> Result<(), MlpError> {
    for a in assignments(sources) {
        let Some(want) = expected(targets, &a)? else {
            continue;
        };
        let got = run_units(units, &residual(sources, Some(&a), &[]));
        if got != want {
            return Err(MlpError::WrongOutput(a));
        }
    }
    // BOS: every numerical source at each end of its BOS range (units are affine before the
    // relu, so silence at both ends means silence in between).
    let ranges: Vec<Vec<Q>> = sources
        .iter()
        .map(|s| match &s.kind {
            SourceKind::Numerical {
                bos: BosValue::Within(lo, hi),
                ..
            } => vec![*lo, *hi],
            _ => vec![Q::zero()],
        })
        .collect();
    for c in cartesian(&ranges) {
        let got = run_units(units, &residual(sources, None, &c));
        if !got.is_empty() {
            return Err(MlpError::WritesAtBos);
        }
    }
    Ok(())
}

/// Piecewise-linear interpolation through `(points[k], ys[k])`: the value at `points[0]` and
/// the slope change at each point `k < last` (the hinge `relu(x − points[k])`'s coefficient).
fn interpolate(points: &[Q], ys: &[W]) -> (W, Vec<(usize, W)>) {
    let c0 = ys.first().cloned().unwrap_or_default();
    let mut hinges = Vec::new();
    let mut prev_slope = W::new();
    for k in 0..points.len().saturating_sub(1) {
        let slope = scaled(
            &sub(&ys[k + 1], &ys[k]),
            (points[k + 1] - points[k]).recip(),
        );
        let change = sub(&slope, &prev_slope);
        if !change.is_empty() {
            hinges.push((k, change));
        }
        prev_slope = slope;
    }
    (c0, hinges)
}

fn max_abs(xs: impl Iterator<Item = Q>) -> Q {
    xs.map(|x| x.abs()).max().unwrap_or_else(Q::zero)
}

fn cat_values(s: &Source) -> Option<&[Value]> {
    match &s.kind {
        SourceKind::Categorical { values, .. } => Some(values),
        SourceKind::Numerical { .. } => None,
    }
}

/// The BOS range of a numerical source.
fn bos_max(s: &Source) -> Q {
    match &s.kind {
        SourceKind::Numerical {
            bos: BosValue::Within(lo, hi),
            ..
        } => lo.abs().max(hi.abs()),
        _ => Q::zero(),
    }
}

fn write_or_zero(targets: &[TargetSpec], a: &[Value]) -> Result<W, MlpError> {
    Ok(expected(targets, a)?.unwrap_or_default())
}

// ---- strategies ---------------------------------------------------------------------------

fn lookup(
    sources: &[Source],
    targets: &[TargetSpec],
    split_numeric: bool,
) -> Result<Vec<UnitQ>, MlpError> {
    let s = &sources[0];
    let values = cat_values(s).ok_or(MlpError::SourceKinds("categorical sources"))?;
    let mut groups: BTreeMap<W, W> = BTreeMap::new(); // output → input
    let mut numeric: BTreeMap<Dir, (W, W)> = BTreeMap::new(); // dir → (positive, negative) inputs
    for (i, v) in values.iter().enumerate() {
        let w = write_or_zero(targets, std::slice::from_ref(v))?;
        let (num, cat): (W, W) = if split_numeric {
            w.into_iter().partition(|(d, _)| matches!(d, Dir::Num(_)))
        } else {
            (W::new(), w)
        };
        if !cat.is_empty() {
            groups
                .entry(cat)
                .or_default()
                .insert(Dir::Val(s.node, i), q(1));
        }
        for (d, x) in num {
            let e = numeric.entry(d).or_default();
            if x > Q::zero() {
                e.0.insert(Dir::Val(s.node, i), x);
            } else {
                e.1.insert(Dir::Val(s.node, i), -x);
            }
        }
    }
    let mut units: Vec<UnitQ> = groups
        .into_iter()
        .map(|(output, input)| UnitQ { input, output })
        .collect();
    for (d, (pos, neg)) in numeric {
        if !pos.is_empty() {
            units.push(UnitQ {
                input: pos,
                output: W::from([(d, q(1))]),
            });
        }
        if !neg.is_empty() {
            units.push(UnitQ {
                input: neg,
                output: W::from([(d, q(-1))]),
            });
        }
    }
    Ok(units)
}

/// Interpolation units on one numerical direction; `gate` (a categorical direction) replaces the
/// BOS kill when given (the unit is silent unless the gate is 1).
fn interp_units(dir: Dir, points: &[Q], ys: &[W], bos_x: Q, gate: Option<Dir>) -> Vec<UnitQ> {
    let (c0, hinges) = interpolate(points, ys);
    let mut units = Vec::new();
    if !c0.is_empty() {
        let input = match gate {
            Some(g) => W::from([(g, q(1))]),
            None => W::from([(Dir::One, q(1)), (Dir::Bos, q(-2))]),
        };
        units.push(UnitQ { input, output: c0 });
    }
    let reach = max_abs(points.iter().copied()).max(bos_x) * q(2) + q(1);
    for (k, coef) in hinges {
        let p = points[k];
        let input = match gate {
            Some(g) => W::from([(dir, q(1)), (Dir::One, -p - reach), (g, reach)]),
            None => W::from([(dir, q(1)), (Dir::One, -p), (Dir::Bos, -reach)]),
        };
        units.push(UnitQ {
            input,
            output: coef,
        });
    }
    units
}

fn numerical_parts(s: &Source) -> Option<(Dir, &[Q])> {
    match &s.kind {
        SourceKind::Numerical { dir, points, .. } => Some((*dir, points)),
        SourceKind::Categorical { .. } => None,
    }
}

fn interpolate_one(sources: &[Source], targets: &[TargetSpec]) -> Result<Vec<UnitQ>, MlpError> {
    let (dir, points) =
        numerical_parts(&sources[0]).ok_or(MlpError::SourceKinds("numerical sources"))?;
    let ys: Vec<W> = points
        .iter()
        .map(|p| write_or_zero(targets, &[Value::Num(*p)]))
        .collect::<Result<_, _>>()?;
    Ok(interp_units(dir, points, &ys, bos_max(&sources[0]), None))
}

fn pairs(sources: &[Source], targets: &[TargetSpec], flip: bool) -> Result<Vec<UnitQ>, MlpError> {
    let (ix, iy) = if flip { (1, 0) } else { (0, 1) };
    let xs = domain(&sources[ix]);
    let ys = domain(&sources[iy]);
    let (nx, ny) = (sources[ix].node, sources[iy].node);
    let xvals = cat_values(&sources[ix]).ok_or(MlpError::SourceKinds("categorical sources"))?;
    let yvals = cat_values(&sources[iy]).ok_or(MlpError::SourceKinds("categorical sources"))?;
    // "absent" = 1 at a non-BOS position whose block is all zero (`none`).
    let absent = |node: NodeId, n: usize| -> W {
        let mut w = W::from([(Dir::One, q(1)), (Dir::Bos, q(-1))]);
        for i in 0..n {
            w.insert(Dir::Val(node, i), q(-1));
        }
        w
    };
    let mut units = Vec::new();
    for x in &xs {
        let mut groups: BTreeMap<W, Vec<&Value>> = BTreeMap::new();
        for y in &ys {
            let mut a = vec![Value::None, Value::None];
            a[ix] = x.clone();
            a[iy] = y.clone();
            let w = write_or_zero(targets, &a)?;
            if !w.is_empty() {
                groups.entry(w).or_default().push(y);
            }
        }
        for (output, group) in groups {
            // Fires (with value 1) exactly when x holds and y is in the group.
            let mut input = match xvals.binary_search(x) {
                Ok(i) => W::from([(Dir::Val(nx, i), q(1))]),
                Err(_) => absent(nx, xvals.len()),
            };
            add_into(&mut input, &W::from([(Dir::One, q(-1))]), q(1));
            for y in group {
                match yvals.binary_search(y) {
                    Ok(j) => add_into(&mut input, &W::from([(Dir::Val(ny, j), q(1))]), q(1)),
                    Err(_) => add_into(&mut input, &absent(ny, yvals.len()), q(1)),
                }
            }
            units.push(UnitQ { input, output });
        }
    }
    Ok(units)
}

fn separable(sources: &[Source], targets: &[TargetSpec], b: Q) -> Result<Vec<UnitQ>, MlpError> {
    let xs = cat_values(&sources[0]).ok_or(MlpError::SourceKinds("categorical sources"))?;
    let ys = cat_values(&sources[1]).ok_or(MlpError::SourceKinds("categorical sources"))?;
    let xn: Vec<Q> = xs
        .iter()
        .map(as_number)
        .collect::<Option<_>>()
        .ok_or(MlpError::NonNumeric)?;
    let yn: Vec<Q> = ys
        .iter()
        .map(as_number)
        .collect::<Option<_>>()
        .ok_or(MlpError::NonNumeric)?;
    let mut by_s: BTreeMap<Q, W> = BTreeMap::new();
    for (x, xv) in xs.iter().zip(&xn) {
        for (y, yv) in ys.iter().zip(&yn) {
            let Some(w) = expected(targets, &[x.clone(), y.clone()])? else {
                continue;
            };
            let s = *xv + b * *yv;
            match by_s.get(&s) {
                Some(prev) if *prev != w => {
                    return Err(MlpError::NotSeparable);
                }
                _ => {
                    by_s.insert(s, w);
                }
            }
        }
    }
    let points: Vec<Q> = by_s.keys().copied().collect();
    let outs: Vec<W> = by_s.into_values().collect();
    let (c0, hinges) = interpolate(&points, &outs);
    let (nx, ny) = (sources[0].node, sources[1].node);
    let k = max_abs(xn.iter().copied())
        + max_abs(yn.iter().map(|y| b * y))
        + max_abs(points.iter().copied())
        + q(1);
    let mut units = Vec::new();
    if !c0.is_empty() {
        let mut input = W::from([(Dir::One, q(-1))]);
        (0..xs.len()).for_each(|i| {
            input.insert(Dir::Val(nx, i), q(1));
        });
        (0..ys.len()).for_each(|j| {
            input.insert(Dir::Val(ny, j), q(1));
        });
        units.push(UnitQ { input, output: c0 });
    }
    for (kk, coef) in hinges {
        let p = points[kk];
        let mut input = W::from([(Dir::One, -p - k * q(2))]);
        for (i, xv) in xn.iter().enumerate() {
            input.insert(Dir::Val(nx, i), *xv + k);
        }
        for (j, yv) in yn.iter().enumerate() {
            input.insert(Dir::Val(ny, j), b * *yv + k);
        }
        units.push(UnitQ {
            input,
            output: coef,
        });
    }
    Ok(units)
}

fn gated(sources: &[Source], targets: &[TargetSpec]) -> Result<Vec<UnitQ>, MlpError> {
    let (ic, inum) = match (&sources[0].kind, &sources[1].kind) {
        (SourceKind::Categorical { .. }, SourceKind::Numerical { .. }) => (0, 1),
        (SourceKind::Numerical { .. }, SourceKind::Categorical { .. }) => (1, 0),
        _ => {
            return Err(MlpError::SourceKinds(
                "one categorical and one numerical source",
            ));
        }
    };
    let xs = cat_values(&sources[ic]).ok_or(MlpError::SourceKinds("categorical sources"))?;
    let (dir, points) =
        numerical_parts(&sources[inum]).ok_or(MlpError::SourceKinds("numerical sources"))?;
    let mut units = Vec::new();
    for (i, x) in xs.iter().enumerate() {
        let ys: Vec<W> = points
            .iter()
            .map(|p| {
                let mut a = vec![Value::None, Value::None];
                a[ic] = x.clone();
                a[inum] = Value::Num(*p);
                write_or_zero(targets, &a)
            })
            .collect::<Result<_, _>>()?;
        units.extend(interp_units(
            dir,
            points,
            &ys,
            bos_max(&sources[inum]),
            Some(Dir::Val(sources[ic].node, i)),
        ));
    }
    Ok(units)
}

fn additive(sources: &[Source], targets: &[TargetSpec]) -> Result<Vec<UnitQ>, MlpError> {
    let (dx, px) =
        numerical_parts(&sources[0]).ok_or(MlpError::SourceKinds("numerical sources"))?;
    let (dy, py) =
        numerical_parts(&sources[1]).ok_or(MlpError::SourceKinds("numerical sources"))?;
    let (x0, y0) = (Value::Num(px[0]), Value::Num(py[0]));
    let f = |x: &Value, y: &Value| write_or_zero(targets, &[x.clone(), y.clone()]);
    let base = f(&x0, &y0)?;
    let g: Vec<W> = px
        .iter()
        .map(|x| f(&Value::Num(*x), &y0))
        .collect::<Result<_, _>>()?;
    let h: Vec<W> = py
        .iter()
        .map(|y| Ok(sub(&f(&x0, &Value::Num(*y))?, &base)))
        .collect::<Result<_, MlpError>>()?;
    let mut units = interp_units(dx, px, &g, bos_max(&sources[0]), None);
    let hu = interp_units(dy, py, &h, bos_max(&sources[1]), None);
    // Merge the constant units (same input) of the two interpolations.
    for u in hu {
        if let Some(c) = units.iter_mut().find(|v| v.input == u.input) {
            let merged = {
                let mut o = c.output.clone();
                add_into(&mut o, &u.output, q(1));
                o
            };
            c.output = merged;
        } else {
            units.push(u);
        }
    }
    units.retain(|u| !u.output.is_empty());
    Ok(units)
}

/// Builds the cheapest exact set of units computing `targets` from `sources`.
pub fn build_units(
    sources: &[Source],
    targets: &[TargetSpec],
) -> Result<(Vec<Unit>, &'static str), MlpError> {
    type Strategy<'a> = (
        &'static str,
        Box<dyn Fn() -> Result<Vec<UnitQ>, MlpError> + 'a>,
    );
    let mut candidates: Vec<Strategy> = Vec::new();
    let kinds: Vec<bool> = sources
        .iter()
        .map(|s| matches!(s.kind, SourceKind::Categorical { .. }))
        .collect();
    match kinds.as_slice() {
        [] => return Err(MlpError::NoSources),
        [true] => {
            candidates.push(("lookup", Box::new(|| lookup(sources, targets, false))));
            candidates.push(("lookup", Box::new(|| lookup(sources, targets, true))));
        }
        [false] => candidates.push((
            "interpolate",
            Box::new(|| interpolate_one(sources, targets)),
        )),
        [true, true] => {
            candidates.push(("pairs", Box::new(|| pairs(sources, targets, false))));
            candidates.push(("pairs", Box::new(|| pairs(sources, targets, true))));
            candidates.push(("separable", Box::new(|| separable(sources, targets, q(1)))));
            candidates.push(("separable", Box::new(|| separable(sources, targets, q(-1)))));
        }
        [true, false] | [false, true] => {
            candidates.push(("gated", Box::new(|| gated(sources, targets))))
        }
        [false, false] => candidates.push(("additive", Box::new(|| additive(sources, targets)))),
        _ => {
            return Err(MlpError::TooManySources(sources.len()));
        }
    }
    let mut best: Option<(Vec<UnitQ>, &'static str)> = None;
    let mut attempts = Vec::new();
    for (name, build) in candidates {
        match build().and_then(|u| verify(sources, targets, &u).map(|()| u)) {
            Ok(u) => {
                if best.as_ref().is_none_or(|(b, _)| u.len() < b.len()) {
                    best = Some((u, name));
                }
            }
            Err(e) => attempts.push((name, e)),
        }
    }
    let (units, name) = best.ok_or(MlpError::NoConstruction { attempts })?;
    let conv = |w: &W| -> Vec<(Dir, f64)> { w.iter().map(|(d, x)| (*d, to_f64(*x))).collect() };
    Ok((
        units
            .iter()
            .map(|u| Unit {
                input: conv(&u.input),
                output: conv(&u.output),
            })
            .collect(),
        name,
    ))
}

/// A tracr-style unit count for a map computed on its own (the product of its argument set
/// sizes): the budget a fusion may spend.
pub fn product_cost(sources: &[Source]) -> usize {
    sources
        .iter()
        .map(|s| match &s.kind {
            SourceKind::Categorical { values, .. } => values.len().max(1),
            SourceKind::Numerical { points, .. } => points.len().max(1),
        })
        .product()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::ir::{BinOp, Expr, Lambda};

    fn cat(node: usize, values: Vec<Value>, has_none: bool) -> Source {
        Source {
            node: NodeId(node),
            kind: SourceKind::Categorical { values, has_none },
        }
    }
    fn ints(r: std::ops::Range<i64>) -> Vec<Value> {
        r.map(Value::int).collect()
    }
    fn lam2(op: BinOp) -> Lambda {
        Lambda {
            params: vec!["x".into(), "y".into()],
            body: Expr::Binary(op, Box::new(Expr::Param(0)), Box::new(Expr::Param(1))),
        }
    }
    fn target(node: usize, values: Vec<Value>, recipe: Recipe) -> TargetSpec {
        TargetSpec {
            node: NodeId(node),
            info: SeqInfo::Categorical {
                values,
                has_none: false,
            },
            recipe,
            materialized: true,
        }
    }

    #[test]
    fn a_difference_of_two_categoricals_is_separable() {
        let sources = vec![cat(0, ints(0..5), false), cat(1, ints(0..4), false)];
        let t = target(
            2,
            ints(-3..5),
            Recipe::Apply(lam2(BinOp::Sub), vec![Recipe::Source(0), Recipe::Source(1)]),
        );
        let (units, name) = build_units(&sources, &[t]).unwrap();
        assert_eq!(name, "separable");
        // 8 distinct differences: one constant unit + 7 hinges at most.
        assert!(units.len() <= 8, "{}", units.len());
    }

    #[test]
    fn pairs_handle_none_and_arbitrary_tables() {
        let sources = vec![
            cat(0, vec![Value::sym("a"), Value::sym("b")], true),
            cat(1, ints(0..3), false),
        ];
        let t = target(
            2,
            vec![Value::Bool(false), Value::Bool(true)],
            Recipe::Apply(lam2(BinOp::Eq), vec![Recipe::Source(0), Recipe::Source(1)]),
        );
        let (units, name) = build_units(&sources, &[t]).unwrap();
        assert_eq!(name, "pairs");
        assert!(units.len() <= 6);
    }

    #[test]
    fn selector_width_decoding_uses_one_unit_per_point() {
        let mut points: Vec<Q> = (0..6).map(|w| Q::new(1, w + 1)).collect();
        points.sort();
        let src = Source {
            node: NodeId(0),
            kind: SourceKind::Numerical {
                dir: Dir::SwAux(NodeId(0)),
                points,
                bos: BosValue::Within(Q::new(1, 6), q(1)),
            },
        };
        let t = TargetSpec {
            node: NodeId(0),
            info: SeqInfo::Categorical {
                values: ints(0..6),
                has_none: false,
            },
            recipe: Recipe::Width(0),
            materialized: true,
        };
        let (units, name) = build_units(&[src], &[t]).unwrap();
        assert_eq!(name, "interpolate");
        assert_eq!(units.len(), 6);
    }
}
