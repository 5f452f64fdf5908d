//! Selectors as attention scores.
//!
//! A selector expression (`select`, `and`, `or`, `not`) becomes one bilinear score
//! `s(q, k) = x_q^T M x_k` over the residual stream, in units of the softmax coldness `C`:
//!
//! * a selected key scores 1 (so `C` after scaling),
//! * an unselected key scores at most 0,
//! * the BOS key scores `β` (½ for an aggregate: attended only when nothing is selected, so an
//!   empty selection reads BOS's all-zero value; 1 for a selector width: always attended with the
//!   same weight as a selected key, tracr's BOS trick).
//!
//! Leaves over the same (keys, queries) pair, however nested, fold into one truth table. Tables
//! over different pairs combine by arithmetic on scores: `a and b` = `a + b − 1` (selected
//! exactly when both are), `not a` = `1 − a` for an exact 0/1 score, `a or b` = `a + b` for exact
//! scores — selected keys then score 1 or 2, which is fine for a categorical aggregate (one key is
//! selected) but not for a mean or a width, which need equal weights: those are refused.
//!
//! Queries and keys that can be `none` have an all-zero block; a table's `none` row/column is
//! represented through the "not BOS" vector `one − bos`, so `not (k == q)` selects a `none` key
//! exactly like the evaluator does.

use std::collections::BTreeMap;

use num_rational::Rational64;
use num_traits::{One, Zero};

use super::blocks::{Dir, Sparse};
use super::scalar::holds;
use super::values::{SeqInfo, ValueInfo};
use crate::lang::ir::{NodeId, Op, Program, Value};

/// Why a selector has no single-head score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError {
    pub node: NodeId,
    pub reason: String,
    pub help: Option<String>,
    /// Whether selecting on product sequences (see [`ProductSide`]) would make it exact.
    pub product: bool,
}

/// A truth table of one (keys, queries) pair, indexed `[key][query]`; the last row / column is
/// `none` when that side can be `none`.
#[derive(Clone, Debug, PartialEq)]
struct Table {
    keys: NodeId,
    queries: NodeId,
    n_keys: usize,
    n_queries: usize,
    key_none: bool,
    query_none: bool,
    t: Vec<Vec<bool>>,
}

impl Table {
    fn map(&self, other: &Table, f: impl Fn(bool, bool) -> bool) -> Table {
        let mut out = self.clone();
        for (ro, (ra, rb)) in out.t.iter_mut().zip(self.t.iter().zip(&other.t)) {
            for (o, (a, b)) in ro.iter_mut().zip(ra.iter().zip(rb)) {
                *o = f(*a, *b);
            }
        }
        out
    }

    fn negate(&self) -> Table {
        let mut out = self.clone();
        out.t.iter_mut().flatten().for_each(|b| *b = !*b);
        out
    }
}

/// A score form: `Σ coeff·table + constant`.
#[derive(Clone, Debug)]
struct Form {
    terms: Vec<(i64, Table)>,
    constant: i64,
    /// The score is exactly 0 or 1 everywhere.
    exact: bool,
    /// Every selected key scores exactly 1 (needed for means and widths).
    uniform: bool,
}

impl Form {
    fn table(t: Table) -> Form {
        Form {
            terms: vec![(1, t)],
            constant: 0,
            exact: true,
            uniform: true,
        }
    }

    fn single_table(&self) -> Option<&Table> {
        match self.terms.as_slice() {
            [(1, t)] if self.constant == 0 => Some(t),
            _ => None,
        }
    }
}

/// The bilinear score of a selector, before scaling by the coldness.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bilinear {
    /// `M[(query dir, key dir)]`.
    pub m: BTreeMap<(Dir, Dir), Rational64>,
    /// The nodes whose blocks the score reads.
    pub reads: Vec<NodeId>,
}

impl Bilinear {
    fn add(&mut self, q: Dir, k: Dir, w: Rational64) {
        if w.is_zero() {
            return;
        }
        let e = self.m.entry((q, k)).or_insert_with(Rational64::zero);
        *e += w;
        if e.is_zero() {
            self.m.remove(&(q, k));
        }
    }

    /// Factors `M` into `rank` pairs of (W_Q column, W_K column), exactly over the rationals.
    pub fn factor(&self) -> Vec<(Sparse, Sparse)> {
        let rows: Vec<Dir> = dedup_sorted(self.m.keys().map(|(q, _)| *q));
        let cols: Vec<Dir> = dedup_sorted(self.m.keys().map(|(_, k)| *k));
        let dense: Vec<Vec<Rational64>> = rows
            .iter()
            .map(|q| {
                cols.iter()
                    .map(|k| {
                        self.m
                            .get(&(*q, *k))
                            .copied()
                            .unwrap_or_else(Rational64::zero)
                    })
                    .collect()
            })
            .collect();
        let (coef, basis) = row_basis(&dense);
        (0..basis.len())
            .map(|j| {
                let qcol: Sparse = rows
                    .iter()
                    .zip(&coef)
                    .filter(|(_, c)| !c[j].is_zero())
                    .map(|(d, c)| (*d, super::scalar::to_f64(c[j])))
                    .collect();
                let kcol: Sparse = cols
                    .iter()
                    .zip(&basis[j])
                    .filter(|(_, b)| !b.is_zero())
                    .map(|(d, b)| (*d, super::scalar::to_f64(*b)))
                    .collect();
                (qcol, kcol)
            })
            .collect()
    }
}

fn dedup_sorted(it: impl Iterator<Item = Dir>) -> Vec<Dir> {
    let mut v: Vec<Dir> = it.collect();
    v.sort();
    v.dedup();
    v
}

/// `rows = coef · basis` with `basis` a maximal independent subset of the rows.
fn row_basis(rows: &[Vec<Rational64>]) -> (Vec<Vec<Rational64>>, Vec<Vec<Rational64>>) {
    // Echelon rows with their expression in terms of the chosen basis rows.
    let mut echelon: Vec<(usize, Vec<Rational64>, Vec<Rational64>)> = Vec::new(); // (pivot, row, combo)
    let mut basis: Vec<Vec<Rational64>> = Vec::new();
    let mut coefs: Vec<Vec<Rational64>> = Vec::new(); // per input row, in terms of basis (grows)
    for row in rows {
        let mut r = row.clone();
        // r = original - Σ c_e · echelon_e ; track combination of basis rows.
        let mut combo: Vec<Rational64> = vec![Rational64::zero(); basis.len()];
        for (pivot, erow, ecombo) in &echelon {
            let f = r[*pivot] / erow[*pivot];
            if f.is_zero() {
                continue;
            }
            for (x, y) in r.iter_mut().zip(erow) {
                *x -= f * *y;
            }
            for (x, y) in combo.iter_mut().zip(ecombo) {
                *x += f * *y;
            }
        }
        match r.iter().position(|x| !x.is_zero()) {
            None => coefs.push(combo),
            Some(pivot) => {
                // New basis row = this original row; its echelon form r = original - combo·basis.
                let j = basis.len();
                basis.push(row.clone());
                for e in echelon.iter_mut() {
                    e.2.push(Rational64::zero());
                }
                for c in coefs.iter_mut() {
                    c.push(Rational64::zero());
                }
                let mut ecombo: Vec<Rational64> = combo.iter().map(|c| -*c).collect();
                ecombo.push(Rational64::one());
                echelon.push((pivot, r, ecombo));
                let mut own = vec![Rational64::zero(); j + 1];
                own[j] = Rational64::one();
                coefs.push(own);
            }
        }
    }
    let n = basis.len();
    for c in coefs.iter_mut() {
        c.resize(n, Rational64::zero());
    }
    (coefs, basis)
}

/// What the score is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    CategoricalAggregate,
    /// Numerical aggregates and selector widths: selected keys must have equal weights.
    Uniform,
}

/// Compiles the selector rooted at `sel` into a bilinear score with BOS weight `bos_score`.
pub fn compile_selector(
    program: &Program,
    info: &ValueInfo,
    sel: NodeId,
    usage: Use,
    bos_score: Rational64,
) -> Result<Bilinear, SelectorError> {
    let form = form_of(program, info, sel)?;
    if usage == Use::Uniform && !form.uniform {
        return Err(SelectorError {
            node: sel,
            reason: "`or` of selectors over different (keys, queries) pairs gives selected keys unequal \
                     attention weights, so a mean or a width over it is not exact"
                .into(),
            help: Some(
                "write the disjunction as one `select` with a lambda predicate over a combined key/query \
                 sequence (e.g. a map2 of the two sequences)"
                    .into(),
            ),
            product: true,
        });
    }
    let mut bl = Bilinear::default();
    let one = Rational64::one();
    // "not BOS" on both sides is one − bos.
    let nb = [(Dir::One, one), (Dir::Bos, -one)];
    for (coeff, t) in &form.terms {
        let c = Rational64::from_integer(*coeff);
        add_table(&mut bl, t, c, &nb);
        for n in [t.keys, t.queries] {
            if !bl.reads.contains(&n) {
                bl.reads.push(n);
            }
        }
    }
    let k0 = Rational64::from_integer(form.constant);
    for (qd, qw) in nb {
        for (kd, kw) in nb {
            bl.add(qd, kd, k0 * qw * kw);
        }
    }
    // The BOS key is attended by every query through `one` (also at the BOS query itself,
    // whose blocks are all zero, so it reads BOS).
    bl.add(Dir::One, Dir::Bos, bos_score);
    Ok(bl)
}

/// Adds `c · table` as a bilinear form: with a virtual `none` row/column where a side cannot be
/// `none`, `T(k,q) = A[k][q] + u[q] + v[k] + b` where `b`, `u`, `v` ride on "not BOS".
fn add_table(bl: &mut Bilinear, t: &Table, c: Rational64, nb: &[(Dir, Rational64); 2]) {
    let cell = |k: Option<usize>, q: Option<usize>| -> Rational64 {
        let ki = match k {
            Some(i) => i,
            None if t.key_none => t.n_keys,
            None => return Rational64::zero(),
        };
        let qi = match q {
            Some(i) => i,
            None if t.query_none => t.n_queries,
            None => return Rational64::zero(),
        };
        Rational64::from_integer(i64::from(t.t[ki][qi]))
    };
    let b = cell(None, None);
    let u: Vec<Rational64> = (0..t.n_queries).map(|q| cell(None, Some(q)) - b).collect();
    let v: Vec<Rational64> = (0..t.n_keys).map(|k| cell(Some(k), None) - b).collect();
    for (k, vk) in v.iter().enumerate() {
        for (q, uq) in u.iter().enumerate() {
            let a = cell(Some(k), Some(q)) - *uq - *vk - b;
            bl.add(Dir::Val(t.queries, q), Dir::Val(t.keys, k), c * a);
        }
    }
    for (q, uq) in u.iter().enumerate() {
        for (kd, kw) in nb {
            bl.add(Dir::Val(t.queries, q), *kd, c * *uq * *kw);
        }
    }
    for (k, vk) in v.iter().enumerate() {
        for (qd, qw) in nb {
            bl.add(*qd, Dir::Val(t.keys, k), c * *vk * *qw);
        }
    }
    for (qd, qw) in nb {
        for (kd, kw) in nb {
            bl.add(*qd, *kd, c * b * *qw * *kw);
        }
    }
}

fn categorical<'a>(
    program: &Program,
    info: &'a ValueInfo,
    sel: NodeId,
    n: NodeId,
    role: &str,
) -> Result<(&'a [Value], bool), SelectorError> {
    match info.seq(n) {
        Some(SeqInfo::Categorical { values, has_none }) => Ok((values, *has_none)),
        _ => Err(SelectorError {
            node: sel,
            reason: format!(
                "the {role} of a select must be categorical, but `{}` is numerical",
                info.labels[n.0]
            ),
            help: Some(format!(
                "compute a categorical copy first, e.g. `map(|x| x, {})`",
                program.graph.node(n).name.as_deref().unwrap_or("...")
            )),
            product: false,
        }),
    }
}

/// The score form of a selector. One function (~120 lines): one arm per selector operation.
fn form_of(program: &Program, info: &ValueInfo, sel: NodeId) -> Result<Form, SelectorError> {
    match &program.graph.node(sel).op {
        Op::Select {
            keys,
            queries,
            pred,
        } => {
            let (kv, kn) = categorical(program, info, sel, *keys, "keys")?;
            let (qv, qn) = categorical(program, info, sel, *queries, "queries")?;
            let kall: Vec<Value> = kv
                .iter()
                .cloned()
                .chain(kn.then_some(Value::None))
                .collect();
            let qall: Vec<Value> = qv
                .iter()
                .cloned()
                .chain(qn.then_some(Value::None))
                .collect();
            // A predicate failing on a combination of the over-approximated value sets is a
            // combination no input reaches (or the domain check reports it): don't care.
            let t = kall
                .iter()
                .map(|k| {
                    qall.iter()
                        .map(|q| holds(pred, k, q).unwrap_or(false))
                        .collect()
                })
                .collect();
            Ok(Form::table(Table {
                keys: *keys,
                queries: *queries,
                n_keys: kv.len(),
                n_queries: qv.len(),
                key_none: kn,
                query_none: qn,
                t,
            }))
        }
        Op::SelectNot(a) => {
            let f = form_of(program, info, *a)?;
            if let Some(t) = f.single_table() {
                return Ok(Form::table(t.negate()));
            }
            if !f.exact {
                return Err(SelectorError {
                    node: sel,
                    reason: "`not` of an `and`/`or` of selectors over different (keys, queries) pairs has \
                             no single-head score"
                        .into(),
                    help: Some("push the `not` inside (De Morgan) or select on one combined sequence".into()),
                    product: true,
                });
            }
            Ok(Form {
                terms: f.terms.iter().map(|(c, t)| (-c, t.clone())).collect(),
                constant: 1 - f.constant,
                exact: true,
                uniform: true,
            })
        }
        Op::SelectAnd(..) | Op::SelectOr(..) => {
            let is_and = matches!(program.graph.node(sel).op, Op::SelectAnd(..));
            let mut operands = Vec::new();
            flatten(program, sel, is_and, &mut operands);
            let mut forms: Vec<Form> = Vec::new();
            for o in operands {
                let f = form_of(program, info, o)?;
                // Merge with an earlier single table over the same pair.
                let merged = f.single_table().and_then(|t| {
                    forms.iter_mut().find_map(|g| {
                        let p = g
                            .single_table()
                            .filter(|p| p.keys == t.keys && p.queries == t.queries)?
                            .clone();
                        *g = Form::table(p.map(t, |a, b| if is_and { a && b } else { a || b }));
                        Some(())
                    })
                });
                if merged.is_none() {
                    forms.push(f);
                }
            }
            if forms.len() == 1
                && let Some(f) = forms.pop()
            {
                return Ok(f);
            }
            if !is_and && forms.iter().any(|f| !f.exact) {
                return Err(SelectorError {
                    node: sel,
                    reason: "`or` of an `and` over different (keys, queries) pairs has no single-head score".into(),
                    help: Some("select on one combined sequence instead".into()),
                    product: true,
                });
            }
            let n = forms.len() as i64;
            let uniform = is_and && forms.iter().all(|f| f.uniform);
            let mut terms = Vec::new();
            let mut constant = 0;
            for f in forms {
                terms.extend(f.terms);
                constant += f.constant;
            }
            if is_and {
                constant -= n - 1;
            }
            Ok(Form {
                terms,
                constant,
                exact: false,
                uniform,
            })
        }
        _ => Err(SelectorError {
            node: sel,
            reason: "expected a selector".into(),
            help: None,
            product: false,
        }),
    }
}

/// The (keys, queries) pairs of every `select` leaf under `sel`.
pub fn leaves(program: &Program, sel: NodeId) -> Vec<(NodeId, NodeId)> {
    match &program.graph.node(sel).op {
        Op::Select { keys, queries, .. } => vec![(*keys, *queries)],
        Op::SelectNot(a) => leaves(program, *a),
        Op::SelectAnd(a, b) | Op::SelectOr(a, b) => {
            let mut v = leaves(program, *a);
            v.extend(leaves(program, *b));
            v
        }
        _ => vec![],
    }
}

/// The truth of the selector tree for given key-side and query-side values of its leaves' nodes.
fn eval_tree(
    program: &Program,
    sel: NodeId,
    key: &BTreeMap<NodeId, Value>,
    query: &BTreeMap<NodeId, Value>,
) -> bool {
    match &program.graph.node(sel).op {
        Op::Select {
            keys,
            queries,
            pred,
        } => match (key.get(keys), query.get(queries)) {
            (Some(k), Some(q)) => holds(pred, k, q).unwrap_or(false),
            _ => false,
        },
        Op::SelectNot(a) => !eval_tree(program, *a, key, query),
        Op::SelectAnd(a, b) => {
            eval_tree(program, *a, key, query) && eval_tree(program, *b, key, query)
        }
        Op::SelectOr(a, b) => {
            eval_tree(program, *a, key, query) || eval_tree(program, *b, key, query)
        }
        _ => false,
    }
}

/// One side (keys or queries) of a selector compiled on a product sequence: the sequence the
/// head reads, and for each of its values (in order, `none` last when it can be `none`) the
/// values of the original nodes it stands for.
#[derive(Clone, Debug)]
pub struct ProductSide {
    pub node: NodeId,
    pub has_none: bool,
    pub components: Vec<NodeId>,
    /// Per value of `node` (then `none` if `has_none`): each component's value.
    pub rows: Vec<Vec<Value>>,
}

/// A selector over several (keys, queries) pairs as one truth table over product sequences
/// (`keys`, `queries`): exact for every combination of `and` / `or` / `not`, at the price of an
/// MLP that builds the products.
pub fn compile_product_selector(
    program: &Program,
    sel: NodeId,
    keys: &ProductSide,
    queries: &ProductSide,
    bos_score: Rational64,
) -> Bilinear {
    let side = |p: &ProductSide, row: &[Value]| -> BTreeMap<NodeId, Value> {
        p.components
            .iter()
            .copied()
            .zip(row.iter().cloned())
            .collect()
    };
    let t: Vec<Vec<bool>> = keys
        .rows
        .iter()
        .map(|kr| {
            queries
                .rows
                .iter()
                .map(|qr| eval_tree(program, sel, &side(keys, kr), &side(queries, qr)))
                .collect()
        })
        .collect();
    let table = Table {
        keys: keys.node,
        queries: queries.node,
        n_keys: keys.rows.len() - usize::from(keys.has_none),
        n_queries: queries.rows.len() - usize::from(queries.has_none),
        key_none: keys.has_none,
        query_none: queries.has_none,
        t,
    };
    let mut bl = Bilinear::default();
    let one = Rational64::one();
    let nb = [(Dir::One, one), (Dir::Bos, -one)];
    add_table(&mut bl, &table, one, &nb);
    bl.reads = if keys.node == queries.node {
        vec![keys.node]
    } else {
        vec![keys.node, queries.node]
    };
    bl.add(Dir::One, Dir::Bos, bos_score);
    bl
}

fn flatten(program: &Program, sel: NodeId, is_and: bool, out: &mut Vec<NodeId>) {
    match (&program.graph.node(sel).op, is_and) {
        (Op::SelectAnd(a, b), true) | (Op::SelectOr(a, b), false) => {
            flatten(program, *a, is_and, out);
            flatten(program, *b, is_and, out);
        }
        _ => out.push(sel),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i64) -> Rational64 {
        Rational64::from_integer(n)
    }

    #[test]
    fn row_basis_reconstructs_the_matrix() {
        let m = vec![
            vec![r(1), r(1), r(0)],
            vec![r(2), r(2), r(0)],
            vec![r(0), r(1), r(1)],
            vec![r(1), r(2), r(1)],
        ];
        let (coef, basis) = row_basis(&m);
        assert_eq!(basis.len(), 2);
        for (i, row) in m.iter().enumerate() {
            for (j, x) in row.iter().enumerate() {
                let y: Rational64 = (0..basis.len()).map(|b| coef[i][b] * basis[b][j]).sum();
                assert_eq!(*x, y, "cell {i},{j}");
            }
        }
    }
}
