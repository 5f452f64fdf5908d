//! Programs unrolled at one sequence length: every node's value at every position as z3 terms.
//!
//! Inputs are token variables constrained to the vocabulary (and the task's `where` restriction);
//! indices are constants. Selectors are Boolean matrices `M[q][k]`, `selector_width` is a sum,
//! a categorical aggregate is the selected value (with "two or more selected" as an error
//! condition), a numerical aggregate is the exact mean (a case split on the count keeps it linear:
//! `sum / c` for each count `c`). Pipelines compose stage by stage through their adapters.

use z3::ast::{Ast, Bool, Int, Real};

use crate::lang::ir::{
    Adapter, BinOp, Comparison, Encoding, Graph, NodeId, NodeType, Op, Predicate, Program, Task,
    Value,
};

use super::SmtError;
use super::expr::{ErrCond, ExprCx, Fault};
use super::value::{Kind, Num, SVal, SymTable, and, ff, not, or, real_const, tt};

/// One node's terms at one length.
#[derive(Clone, Debug)]
pub(crate) enum NodeVal {
    Seq(Vec<SVal>),
    /// `sel[q][k]`: whether query position `q` selects key position `k`.
    Sel(Vec<Vec<Bool>>),
}

impl NodeVal {
    pub(crate) fn seq(&self) -> Result<&[SVal], SmtError> {
        match self {
            NodeVal::Seq(v) => Ok(v),
            NodeVal::Sel(_) => Err(SmtError::Internal("a selector used as a sequence".into())),
        }
    }

    pub(crate) fn sel(&self) -> Result<&[Vec<Bool>], SmtError> {
        match self {
            NodeVal::Sel(m) => Ok(m),
            NodeVal::Seq(_) => Err(SmtError::Internal("a sequence used as a selector".into())),
        }
    }

    /// Whether both are built from the very same terms (see [`SVal::identical`]).
    pub(crate) fn identical(&self, other: &NodeVal) -> bool {
        match (self, other) {
            (NodeVal::Seq(a), NodeVal::Seq(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.identical(y))
            }
            (NodeVal::Sel(a), NodeVal::Sel(b)) => a == b,
            _ => false,
        }
    }

    /// Whether two unrollings of this node hold the same values everywhere.
    pub(crate) fn same(&self, other: &NodeVal) -> Result<Bool, SmtError> {
        Ok(match (self, other) {
            (NodeVal::Seq(a), NodeVal::Seq(b)) if a.len() == b.len() => {
                and(&a.iter().zip(b).map(|(x, y)| x.same(y)).collect::<Vec<_>>())
            }
            (NodeVal::Sel(a), NodeVal::Sel(b)) if a.len() == b.len() => {
                let mut eqs = Vec::new();
                for (ra, rb) in a.iter().zip(b) {
                    for (x, y) in ra.iter().zip(rb) {
                        eqs.push(x.iff(y));
                    }
                }
                and(&eqs)
            }
            _ => {
                return Err(SmtError::Internal(
                    "comparing nodes of different shapes".into(),
                ));
            }
        })
    }
}

/// Where an error condition comes from: a node of a graph, at a query position.
#[derive(Clone, Debug)]
pub(crate) struct NodeErr {
    pub node: NodeId,
    pub err: ErrCond,
}

/// A graph unrolled at one length.
#[derive(Clone, Debug)]
pub(crate) struct Unrolled {
    pub nodes: Vec<NodeVal>,
    pub errs: Vec<NodeErr>,
    /// Lemmas z3 would not find by itself, each valid where its premise is (see [`Conditional`]).
    pub facts: Vec<Conditional>,
}

/// Lemmas that hold whenever `premise` holds for every value of the input variables. The solver
/// asserts them only after proving the premise valid (a separate, small query), so they never
/// change a verdict; they spare z3 a case split it would otherwise make.
#[derive(Clone, Debug)]
pub(crate) struct Conditional {
    pub premise: Bool,
    pub lemmas: Vec<Bool>,
}

impl Unrolled {
    pub(crate) fn error(&self) -> Bool {
        or(&self
            .errs
            .iter()
            .map(|e| e.err.cond.clone())
            .collect::<Vec<_>>())
    }
}

/// Unrolls `graph` on the given token terms (their count is the length).
pub(crate) fn unroll(
    graph: &Graph,
    tokens: &[SVal],
    syms: &SymTable,
) -> Result<Unrolled, SmtError> {
    unroll_with(graph, tokens, syms, &mut |_, _, _| None)
}

/// Decides, after each node is unrolled, whether to replace its terms by equal ones (the node,
/// its terms, and the errors of every node so far).
pub(crate) type Hook<'h> = dyn FnMut(NodeId, &NodeVal, &[NodeErr]) -> Option<NodeVal> + 'h;

/// [`unroll`], letting `hook` substitute a node's terms by terms proved equal to them (see
/// `sweep`): later nodes are then built on the substitute.
///
/// One function (~130 lines): one arm per IR operation, mirroring `lang::eval::eval_graph`
/// so the two can be compared arm by arm.
pub(crate) fn unroll_with(
    graph: &Graph,
    tokens: &[SVal],
    syms: &SymTable,
    hook: &mut Hook<'_>,
) -> Result<Unrolled, SmtError> {
    let n = tokens.len();
    let mut nodes: Vec<NodeVal> = Vec::with_capacity(graph.nodes.len());
    let mut errs: Vec<NodeErr> = Vec::new();
    let mut facts: Vec<Conditional> = Vec::new();
    for (id, node) in graph.nodes.iter().enumerate() {
        let operand = |o: &NodeId| -> Result<&NodeVal, SmtError> {
            if o.0 >= id {
                return Err(SmtError::Internal(format!(
                    "node {id} uses node {} which is not earlier in the graph",
                    o.0
                )));
            }
            Ok(&nodes[o.0])
        };
        let mut cx = ExprCx::new(syms, tt());
        let val = match &node.op {
            Op::Tokens => NodeVal::Seq(tokens.to_vec()),
            Op::Indices => NodeVal::Seq((0..n).map(|i| SVal::num(Num::int(i as i64))).collect()),
            Op::Full(v) => {
                let c = SVal::constant(v, syms)?;
                NodeVal::Seq(vec![c; n])
            }
            Op::Map { f, arg } => {
                let xs = operand(arg)?.seq()?.to_vec();
                let mut out = Vec::with_capacity(n);
                for x in &xs {
                    out.push(lift(&mut cx, std::slice::from_ref(x), |cx, args| {
                        cx.apply(f, args)
                    })?);
                }
                NodeVal::Seq(out)
            }
            Op::Map2 { f, a, b } => {
                let xs = operand(a)?.seq()?.to_vec();
                let ys = operand(b)?.seq()?.to_vec();
                let mut out = Vec::with_capacity(n);
                for (x, y) in xs.iter().zip(&ys) {
                    out.push(lift(&mut cx, &[x.clone(), y.clone()], |cx, args| {
                        cx.apply(f, args)
                    })?);
                }
                NodeVal::Seq(out)
            }
            Op::Select {
                keys,
                queries,
                pred,
            } => {
                let ks = operand(keys)?.seq()?.to_vec();
                let qs = operand(queries)?.seq()?.to_vec();
                let mut m = Vec::with_capacity(n);
                for q in &qs {
                    let mut row = Vec::with_capacity(n);
                    for k in &ks {
                        row.push(predicate(&mut cx, pred, k, q)?);
                    }
                    m.push(row);
                }
                NodeVal::Sel(m)
            }
            Op::SelectAnd(a, b) | Op::SelectOr(a, b) => {
                let (ma, mb) = (operand(a)?.sel()?, operand(b)?.sel()?);
                let is_and = matches!(node.op, Op::SelectAnd(..));
                let m = ma
                    .iter()
                    .zip(mb)
                    .map(|(ra, rb)| {
                        ra.iter()
                            .zip(rb)
                            .map(|(x, y)| {
                                let xy = [x.clone(), y.clone()];
                                if is_and { and(&xy) } else { or(&xy) }
                            })
                            .collect()
                    })
                    .collect();
                NodeVal::Sel(m)
            }
            Op::SelectNot(a) => {
                let m = operand(a)?
                    .sel()?
                    .iter()
                    .map(|r| r.iter().map(not).collect());
                NodeVal::Sel(m.collect())
            }
            Op::SelectorWidth(s) => {
                let m = operand(s)?.sel()?;
                let widths: Vec<Int> = m.iter().map(|row| count(row)).collect();
                facts.extend(width_lemmas(m, &widths));
                facts.push(Conditional {
                    premise: tt(),
                    lemmas: count_bounds(m, &widths),
                });
                NodeVal::Seq(widths.into_iter().map(|w| SVal::num(Num::Int(w))).collect())
            }
            Op::Aggregate { selector, values } => {
                let m = operand(selector)?.sel()?.to_vec();
                let vs = operand(values)?.seq()?.to_vec();
                let encoding = match &node.ty {
                    NodeType::Seq { encoding, .. } => *encoding,
                    NodeType::Selector => {
                        return Err(SmtError::Internal(format!(
                            "aggregate node {id} typed as a selector"
                        )));
                    }
                };
                let mut out = Vec::with_capacity(n);
                for row in &m {
                    out.push(match encoding {
                        Encoding::Categorical => categorical(&mut cx, row, &vs),
                        Encoding::Numerical => numerical(&mut cx, row, &vs),
                    });
                }
                NodeVal::Seq(out)
            }
        };
        errs.extend(cx.errs.into_iter().map(|err| NodeErr {
            node: NodeId(id),
            err,
        }));
        let val = hook(NodeId(id), &val, &errs).unwrap_or(val);
        nodes.push(val);
    }
    Ok(Unrolled { nodes, errs, facts })
}

/// Applies `f` unless an argument is `none`, in which case the result is `none` and `f` is not
/// evaluated (tracr's semantics for maps).
fn lift(
    cx: &mut ExprCx<'_>,
    args: &[SVal],
    f: impl FnOnce(&mut ExprCx<'_>, &[SVal]) -> Result<SVal, SmtError>,
) -> Result<SVal, SmtError> {
    let nones: Vec<Bool> = args
        .iter()
        .filter(|a| a.may_be(Kind::None))
        .map(|a| a.is(Kind::None))
        .collect();
    if nones.is_empty() {
        return f(cx, args);
    }
    let any_none = or(&nones);
    let saved = cx.guard.clone();
    cx.guard = and(&[saved.clone(), not(&any_none)]);
    let v = f(cx, args);
    cx.guard = saved;
    Ok(SVal::ite(&any_none, &SVal::none(), &v?))
}

/// `pred(key, query)`.
fn predicate(
    cx: &mut ExprCx<'_>,
    pred: &Predicate,
    key: &SVal,
    query: &SVal,
) -> Result<Bool, SmtError> {
    let op = match pred {
        Predicate::Lambda(lam) => {
            let v = cx.apply(lam, &[key.clone(), query.clone()])?;
            return Ok(cx.boolean(&v, "a selector predicate"));
        }
        Predicate::Cmp(c) => match c {
            Comparison::True => return Ok(tt()),
            Comparison::False => return Ok(ff()),
            Comparison::Eq => BinOp::Eq,
            Comparison::Ne => BinOp::Ne,
            Comparison::Lt => BinOp::Lt,
            Comparison::Le => BinOp::Le,
            Comparison::Gt => BinOp::Gt,
            Comparison::Ge => BinOp::Ge,
        },
    };
    let v = cx.binary(op, key, query)?;
    Ok(v.bool_payload())
}

/// Lemmas about a `selector_width` over a selector `M` whose relation `R(k, q) = M[q][k]` is
/// transitive: then row `a` selects a subset of what row `b` selects whenever `R(a, b)`, so
/// `R(a, b) -> w[a] <= w[b]`, strictly when `R` is also irreflexive (`b` selects `a`, `a` does
/// not). Ranks and sorting rest on exactly this step, which z3 otherwise only finds by a case
/// split over every ordering of the tokens. The premises are checked by z3 before the lemmas are
/// used (see [`Conditional`]).
fn width_lemmas(m: &[Vec<Bool>], w: &[Int]) -> Vec<Conditional> {
    let n = m.len();
    if n < 2 || m.iter().any(|r| r.len() != n) {
        return Vec::new();
    }
    let mut trans = Vec::new();
    for a in 0..n {
        for b in 0..n {
            for k in 0..n {
                if a != b && b != k {
                    trans.push(and(&[m[a][k].clone(), m[b][a].clone()]).implies(&m[b][k]));
                }
            }
        }
    }
    let trans = and(&trans);
    let irrefl = and(&(0..n).map(|a| not(&m[a][a])).collect::<Vec<_>>());
    let mut weak = Vec::new();
    let mut strict = Vec::new();
    for a in 0..n {
        for b in 0..n {
            if a != b {
                weak.push(m[b][a].implies(w[a].le(&w[b])));
                strict.push(m[b][a].implies(w[a].lt(&w[b])));
            }
        }
    }
    vec![
        Conditional {
            premise: trans.clone(),
            lemmas: weak,
        },
        Conditional {
            premise: and(&[trans, irrefl]),
            lemmas: strict,
        },
    ]
}

/// Tautologies tying a count to its row: one selected entry makes it at least 1, two at least
/// 2. They let z3 read "exactly one token equals mine" (a uniqueness `where`) as disequalities
/// without reasoning about sums.
fn count_bounds(m: &[Vec<Bool>], w: &[Int]) -> Vec<Bool> {
    let mut out = Vec::new();
    for (row, wq) in m.iter().zip(w) {
        for (j, a) in row.iter().enumerate() {
            if a.as_bool() == Some(false) {
                continue;
            }
            out.push(a.implies(wq.ge(Int::from_i64(1))));
            for b in &row[j + 1..] {
                if b.as_bool() != Some(false) {
                    out.push(and(&[a.clone(), b.clone()]).implies(wq.ge(Int::from_i64(2))));
                }
            }
        }
    }
    out
}

/// The number of true entries, as an integer term.
fn count(row: &[Bool]) -> Int {
    let one = Int::from_i64(1);
    let zero = Int::from_i64(0);
    let terms: Vec<Int> = row
        .iter()
        .map(|b| match negated(b) {
            // [not p] as 1 - [p]: complementary counts then share their 0/1 terms.
            Some(p) => Int::sub(&[one.clone(), p.ite(&one, &zero)]),
            None => b.ite(&one, &zero),
        })
        .collect();
    if terms.is_empty() {
        zero
    } else {
        Int::add(&terms)
    }
}

/// `p` when `b` is the term `not p` (by the declaration's name, which unlike decl-kind numbers
/// does not depend on the z3 version the bindings were generated for).
fn negated(b: &Bool) -> Option<Bool> {
    if b.as_bool().is_some() || b.num_children() != 1 {
        return None;
    }
    if b.safe_decl().ok()?.name() != "not" {
        return None;
    }
    b.nth_child(0)?.as_bool()
}

/// The single selected value; `none` when nothing is selected; selecting two is an error.
fn categorical(cx: &mut ExprCx<'_>, row: &[Bool], vs: &[SVal]) -> SVal {
    if row.len() >= 2 {
        cx.fail_if(z3::ast::atleast(row, 2), Fault::Ambiguous);
    }
    let mut out = SVal::none();
    for (sel, v) in row.iter().zip(vs).rev() {
        out = SVal::ite(sel, v, &out);
    }
    out
}

/// The exact mean of the selected values; 0 when nothing is selected.
fn numerical(cx: &mut ExprCx<'_>, row: &[Bool], vs: &[SVal]) -> SVal {
    let zero = Num::int(0);
    let mut summands = Vec::with_capacity(row.len());
    for (sel, v) in row.iter().zip(vs) {
        let saved = cx.guard.clone();
        cx.guard = and(&[saved.clone(), sel.clone()]);
        let x = cx.num(v, "a numerical aggregate");
        cx.guard = saved;
        summands.push(Num::ite(sel, &x, &zero));
    }
    let sum = summands.iter().skip(1).fold(
        summands.first().cloned().unwrap_or(zero.clone()),
        |acc, x| acc.add(x),
    );
    let c = count(row);
    let sum_r: Real = sum.real();
    // Case split on the count so that the mean stays linear: sum / c for each possible c.
    let mut mean: Real = real_const(&num_rational::Rational64::from_integer(0));
    for k in (1..=row.len() as i64).rev() {
        let kth = sum_r.div(real_const(&num_rational::Rational64::from_integer(k)));
        mean = c.eq(Int::from_i64(k)).ite(&kth, &mean);
    }
    SVal::num(Num::Real(mean))
}

/// Token variables for one input copy at length `n`, and the vocabulary constraint.
pub(crate) fn token_vars(
    prefix: &str,
    n: usize,
    vocab: &[Value],
    syms: &SymTable,
) -> Result<(Vec<SVal>, Bool), SmtError> {
    if vocab.is_empty() {
        return Err(SmtError::Unsupported(
            "an empty vocabulary (the domain is empty)".into(),
        ));
    }
    let kinds: std::collections::BTreeSet<Kind> = vocab.iter().map(Kind::of).collect();
    let ints: Option<Vec<i64>> = vocab.iter().map(Value::as_int).collect();
    let mut toks = Vec::with_capacity(n);
    let mut cons = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("{prefix}{i}");
        if let Some(ints) = &ints {
            let x = Int::new_const(name);
            cons.push(int_in(&x, ints));
            toks.push(SVal::num(Num::Int(x)));
        } else if kinds.len() == 1 && kinds.contains(&Kind::Sym) {
            let codes = vocab
                .iter()
                .map(|v| match v {
                    Value::Sym(s) => syms.code(s),
                    _ => unreachable!("checked: all symbols"),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let x = Int::new_const(name);
            cons.push(int_in(&x, &codes));
            toks.push(SVal::sym(x));
        } else {
            // Mixed kinds or non-integral numbers: indicator and payload variables, and the
            // value must be one of the vocabulary's.
            let mut is: [Option<Bool>; 4] = [None, None, None, None];
            for k in &kinds {
                is[*k as usize] = Some(if kinds.len() == 1 {
                    tt()
                } else {
                    Bool::new_const(format!("{name}_is{}", *k as usize))
                });
            }
            let v = SVal {
                is,
                b: kinds
                    .contains(&Kind::Bool)
                    .then(|| Bool::new_const(format!("{name}_b"))),
                n: kinds
                    .contains(&Kind::Num)
                    .then(|| Num::Real(Real::new_const(format!("{name}_n")))),
                s: kinds
                    .contains(&Kind::Sym)
                    .then(|| Int::new_const(format!("{name}_s"))),
            };
            let mut alts = Vec::with_capacity(vocab.len());
            for t in vocab {
                alts.push(v.same(&SVal::constant(t, syms)?));
            }
            cons.push(or(&alts));
            // `same` looks only at the matching kind's indicator: the others must be off.
            let inds: Vec<Bool> = v.is.iter().flatten().cloned().collect();
            for (i, a) in inds.iter().enumerate() {
                for b in &inds[i + 1..] {
                    cons.push(and(&[a.clone(), b.clone()]).not());
                }
            }
            toks.push(v);
        }
    }
    Ok((toks, and(&cons)))
}

/// `x` is one of `vals`: a range constraint when they are contiguous.
fn int_in(x: &Int, vals: &[i64]) -> Bool {
    let mut sorted = vals.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
    if (hi - lo) as usize + 1 == sorted.len() {
        and(&[x.ge(Int::from_i64(lo)), x.le(Int::from_i64(hi))])
    } else {
        or(&sorted
            .iter()
            .map(|v| x.eq(Int::from_i64(*v)))
            .collect::<Vec<_>>())
    }
}

/// Whether tokens lie in a task's domain beyond the vocabulary: its `where` sequence evaluates
/// without error and is `true` at every position.
pub(crate) fn restriction_holds(
    task: &Task,
    tokens: &[SVal],
    syms: &SymTable,
) -> Result<(Bool, Vec<Conditional>), SmtError> {
    let Some((graph, out)) = &task.restriction else {
        return Ok((tt(), Vec::new()));
    };
    let u = unroll(graph, tokens, syms)?;
    let vals = u
        .nodes
        .get(out.0)
        .ok_or_else(|| SmtError::Internal("restriction output out of range".into()))?
        .seq()?;
    let mut conds = vec![not(&u.error())];
    for v in vals {
        conds.push(and(&[v.is(Kind::Bool), v.bool_payload()]));
    }
    Ok((and(&conds), u.facts))
}

/// Whether `v` is one of the vocabulary's tokens.
pub(crate) fn in_vocab(v: &SVal, vocab: &[Value], syms: &SymTable) -> Result<Bool, SmtError> {
    let mut alts = Vec::with_capacity(vocab.len());
    for t in vocab {
        alts.push(v.same(&SVal::constant(t, syms)?));
    }
    Ok(or(&alts))
}

/// A pipeline adapter applied to one value.
pub(crate) fn adapt(adapter: &Adapter, v: &SVal, syms: &SymTable) -> Result<SVal, SmtError> {
    Ok(match adapter {
        // Clamp and modulo act on integers; anything else passes through unchanged.
        Adapter::Clamp { lo, hi } => {
            if !v.may_be(Kind::Num) {
                return Ok(v.clone());
            }
            let x = v.num_payload();
            let (l, h) = (Num::int(*lo), Num::int((*hi).max(*lo)));
            let clamped = Num::ite(&x.lt(&l), &l, &Num::ite(&h.lt(&x), &h, &x));
            let applies = and(&[v.is(Kind::Num), x.is_integral()]);
            SVal::ite(&applies, &SVal::num(clamped), v)
        }
        Adapter::Modulo { lo, n } => {
            if !v.may_be(Kind::Num) || *n <= 0 {
                return Ok(v.clone());
            }
            let x = v.num_payload();
            let applies = and(&[v.is(Kind::Num), x.is_integral()]);
            let shifted = Int::sub(&[x.as_int(), Int::from_i64(*lo)]);
            let wrapped = Int::add(&[Int::from_i64(*lo), shifted.modulo(Int::from_i64(*n))]);
            SVal::ite(&applies, &SVal::num(Num::Int(wrapped)), v)
        }
        Adapter::Table(rows) => {
            let mut out = v.clone();
            for (from, to) in rows.iter().rev() {
                let f = SVal::constant(from, syms)?;
                let t = SVal::constant(to, syms)?;
                out = SVal::ite(&v.same(&f), &t, &out);
            }
            out
        }
    })
}

/// A program (or the stages of a pipeline) run on one input copy.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    /// One unrolling per stage.
    pub stages: Vec<Unrolled>,
    pub output: Vec<SVal>,
    /// Conditional lemmas of every stage (see [`Conditional`]).
    pub facts: Vec<Conditional>,
    /// Evaluation fails somewhere (any stage, any adapter, a stage input outside its domain).
    pub error: Bool,
}

/// Runs a chain of (program, adapter into it) stages on `tokens`.
pub(crate) fn run_stages(
    stages: &[(&Program, Option<&Adapter>)],
    tokens: &[SVal],
    syms: &SymTable,
) -> Result<Run, SmtError> {
    let mut input = tokens.to_vec();
    let mut unrolled = Vec::with_capacity(stages.len());
    let mut errors = Vec::new();
    let mut facts = Vec::new();
    for (i, (prog, adapter)) in stages.iter().enumerate() {
        if i > 0 {
            if let Some(a) = adapter {
                input = input
                    .iter()
                    .map(|v| adapt(a, v, syms))
                    .collect::<Result<_, _>>()?;
            }
            // A later stage's input must be in its task's domain, as the evaluator demands.
            let mut ok = vec![Bool::from_bool(input.len() <= prog.task.max_len)];
            for v in &input {
                ok.push(in_vocab(v, &prog.task.vocab, syms)?);
            }
            let (holds, lemmas) = restriction_holds(&prog.task, &input, syms)?;
            ok.push(holds);
            facts.extend(lemmas);
            errors.push(not(&and(&ok)));
        }
        let u = unroll(&prog.graph, &input, syms)?;
        errors.push(u.error());
        facts.extend(u.facts.iter().cloned());
        let out = u
            .nodes
            .get(prog.output.0)
            .ok_or_else(|| SmtError::Internal(format!("{}: output node out of range", prog.name)))?
            .seq()?
            .to_vec();
        unrolled.push(u);
        input = out;
    }
    Ok(Run {
        stages: unrolled,
        output: input,
        facts,
        error: or(&errors),
    })
}

/// One program run on `tokens` with a substitution hook (see [`unroll_with`]).
pub(crate) fn run_program_with(
    prog: &Program,
    tokens: &[SVal],
    syms: &SymTable,
    hook: &mut Hook<'_>,
) -> Result<Run, SmtError> {
    let u = unroll_with(&prog.graph, tokens, syms, hook)?;
    let output = u
        .nodes
        .get(prog.output.0)
        .ok_or_else(|| SmtError::Internal(format!("{}: output node out of range", prog.name)))?
        .seq()?
        .to_vec();
    Ok(Run {
        output,
        facts: u.facts.clone(),
        error: u.error(),
        stages: vec![u],
    })
}
