//! Random small programs over a tiny vocabulary: every z3 verdict (well-formedness, equivalence,
//! alignment, sufficiency, pipelines) agrees with enumerating the whole domain with the evaluator.
//!
//! Programs are grown from a byte genome (so proptest can shrink them): maps and map2s with
//! random lambdas (arithmetic, `/` and `%` that can divide by zero, comparisons, `if`, `min`,
//! `max`, `abs`, constants of every kind), selects with comparisons or lambda predicates,
//! selector and/or/not, selector widths, categorical and numerical aggregates. Type errors and
//! ambiguous aggregates are allowed on purpose: they are evaluation errors z3 must find too.

use crate::support::smt as smt_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use congruity::lang::ir::*;
use congruity::smt::{self, ProveOptions, Verdict, goal_text};
use num_rational::Rational64;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use smt_support::{agrees, enumerate};

const CASES: u32 = 520;
const SEED: u64 = 0x5e7_2025;

/// Reads the genome cyclically.
struct Genome<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Genome<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.bytes[self.at % self.bytes.len()];
        self.at += 1;
        b
    }

    fn pick(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }
}

/// How the vocabulary looks.
#[derive(Clone, Copy, Debug)]
enum Vocab {
    Ints,
    Syms,
    Mixed,
}

impl Vocab {
    fn tokens(self) -> Vec<Value> {
        let mut v = match self {
            Vocab::Ints => vec![Value::int(0), Value::int(1), Value::int(2)],
            Vocab::Syms => vec![Value::sym("a"), Value::sym("b")],
            Vocab::Mixed => vec![Value::int(0), Value::int(1), Value::sym("a")],
        };
        v.sort();
        v
    }
}

fn constant(g: &mut Genome<'_>) -> Value {
    match g.pick(10) {
        0..=3 => Value::int(g.pick(3) as i64),
        4 => Value::int(-1),
        5 => Value::Num(Rational64::new(1, 2)),
        6 => Value::sym(if g.pick(2) == 0 { "a" } else { "b" }),
        7 => Value::Bool(g.pick(2) == 0),
        8 => Value::None,
        _ => Value::int(1),
    }
}

fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    Expr::Binary(op, Box::new(a), Box::new(b))
}

/// What a sequence holds, as far as the generator tracks it (to keep most programs well-typed;
/// some lambdas are left untyped on purpose).
#[derive(Clone, Copy, Debug, PartialEq)]
enum K {
    Num,
    Sym,
    Bool,
    /// Several kinds, or unknown.
    Any,
}

/// A random expression, mostly of kind `want` given the parameters' kinds; one in eight is
/// generated without regard to kinds (type errors are part of what z3 must find).
fn typed(g: &mut Genome<'_>, params: &[K], want: K, depth: usize) -> Expr {
    if g.pick(8) == 0 {
        return expr(g, params.len(), depth);
    }
    let of_kind: Vec<usize> = (0..params.len()).filter(|i| params[*i] == want).collect();
    if depth == 0 || g.pick(4) == 0 {
        if !of_kind.is_empty() && g.pick(3) != 0 {
            return Expr::Param(of_kind[g.pick(of_kind.len())]);
        }
        return Expr::Const(match want {
            K::Num => Value::int(g.pick(4) as i64 - 1),
            K::Sym => Value::sym(if g.pick(2) == 0 { "a" } else { "b" }),
            K::Bool => Value::Bool(g.pick(2) == 0),
            K::Any => constant(g),
        });
    }
    let d = depth - 1;
    match want {
        K::Num => match g.pick(10) {
            k @ 0..=2 => bin(
                [BinOp::Add, BinOp::Sub, BinOp::Mul][k],
                typed(g, params, K::Num, d),
                typed(g, params, K::Num, d),
            ),
            k @ 3..=4 => {
                // Mostly a non-zero constant divisor; sometimes one that can be zero.
                let den = if g.pick(3) == 0 {
                    typed(g, params, K::Num, d)
                } else {
                    Expr::Const(Value::int(2 + g.pick(2) as i64))
                };
                bin(
                    [BinOp::Div, BinOp::Mod][k - 3],
                    typed(g, params, K::Num, d),
                    den,
                )
            }
            5 | 6 => if_then_else(g, params, K::Num, d),
            7 => min_max(g, params, K::Num, d),
            8 => Expr::Call(Builtin::Abs, vec![typed(g, params, K::Num, d)]),
            _ => Expr::Unary(UnOp::Neg, Box::new(typed(g, params, K::Num, d))),
        },
        K::Sym => match g.pick(3) {
            0 => if_then_else(g, params, K::Sym, d),
            1 => min_max(g, params, K::Sym, d),
            _ => typed(g, params, K::Sym, 0),
        },
        K::Bool | K::Any => match g.pick(6) {
            0 => bin(
                [BinOp::And, BinOp::Or][g.pick(2)],
                typed(g, params, K::Bool, d),
                typed(g, params, K::Bool, d),
            ),
            1 => Expr::Unary(UnOp::Not, Box::new(typed(g, params, K::Bool, d))),
            // Symbols: the first four comparisons only.
            2 => bin(
                COMPARE[g.pick(4)],
                typed(g, params, K::Sym, d),
                typed(g, params, K::Sym, d),
            ),
            _ => bin(
                COMPARE[g.pick(6)],
                typed(g, params, K::Num, d),
                typed(g, params, K::Num, d),
            ),
        },
    }
}

/// `if <bool> then <kind> else <kind>`.
fn if_then_else(g: &mut Genome<'_>, params: &[K], kind: K, depth: usize) -> Expr {
    Expr::If(
        Box::new(typed(g, params, K::Bool, depth)),
        Box::new(typed(g, params, kind, depth)),
        Box::new(typed(g, params, kind, depth)),
    )
}

/// `min` or `max` of two expressions of `kind`.
fn min_max(g: &mut Genome<'_>, params: &[K], kind: K, depth: usize) -> Expr {
    Expr::Call(
        [Builtin::Min, Builtin::Max][g.pick(2)],
        vec![typed(g, params, kind, depth), typed(g, params, kind, depth)],
    )
}

/// A random expression over `arity` parameters, without regard to kinds.
fn expr(g: &mut Genome<'_>, arity: usize, depth: usize) -> Expr {
    if depth == 0 || g.pick(4) == 0 {
        return if g.pick(3) == 0 {
            Expr::Const(constant(g))
        } else {
            Expr::Param(g.pick(arity))
        };
    }
    let d = depth - 1;
    match g.pick(16) {
        k @ 0..=4 => {
            let ops = [BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div, BinOp::Mod];
            bin(ops[k], expr(g, arity, d), expr(g, arity, d))
        }
        5..=8 => cmp(g, arity, d),
        9 => bin(
            if g.pick(2) == 0 {
                BinOp::And
            } else {
                BinOp::Or
            },
            cmp(g, arity, d),
            cmp(g, arity, d),
        ),
        10 => Expr::Unary(UnOp::Not, Box::new(cmp(g, arity, d))),
        11 => Expr::Unary(UnOp::Neg, Box::new(expr(g, arity, d))),
        12 | 13 => Expr::If(
            Box::new(cmp(g, arity, d)),
            Box::new(expr(g, arity, d)),
            Box::new(expr(g, arity, d)),
        ),
        14 => Expr::Call(
            [Builtin::Min, Builtin::Max][g.pick(2)],
            vec![expr(g, arity, d), expr(g, arity, d)],
        ),
        _ => Expr::Call(Builtin::Abs, vec![expr(g, arity, d)]),
    }
}

/// The comparison operators, in the order the generators index them.
const COMPARE: [BinOp; 6] = [
    BinOp::Eq,
    BinOp::Ne,
    BinOp::Lt,
    BinOp::Le,
    BinOp::Gt,
    BinOp::Ge,
];

fn cmp(g: &mut Genome<'_>, arity: usize, depth: usize) -> Expr {
    let op = COMPARE[g.pick(COMPARE.len())];
    bin(
        op,
        expr(g, arity, depth.min(1)),
        expr(g, arity, depth.min(1)),
    )
}

fn lam(arity: usize, body: Expr) -> Lambda {
    Lambda {
        params: (0..arity).map(|i| format!("p{i}")).collect(),
        body,
    }
}

const CMPS: [Comparison; 8] = [
    Comparison::Eq,
    Comparison::Ne,
    Comparison::Lt,
    Comparison::Le,
    Comparison::Gt,
    Comparison::Ge,
    Comparison::True,
    Comparison::False,
];

/// The comparison that is true exactly where `c` is false (and fails where `c` fails).
fn negated(c: Comparison) -> Comparison {
    match c {
        Comparison::Eq => Comparison::Ne,
        Comparison::Ne => Comparison::Eq,
        Comparison::Lt => Comparison::Ge,
        Comparison::Le => Comparison::Gt,
        Comparison::Gt => Comparison::Le,
        Comparison::Ge => Comparison::Lt,
        Comparison::True => Comparison::False,
        Comparison::False => Comparison::True,
    }
}

struct Builder {
    graph: Graph,
    seqs: Vec<NodeId>,
    sels: Vec<NodeId>,
    /// Per node: the kind it holds and whether it can be `none` (sequences only).
    kinds: Vec<(K, bool)>,
}

impl Builder {
    fn new(tokens: K) -> Builder {
        let mut b = Builder {
            graph: Graph::default(),
            seqs: vec![],
            sels: vec![],
            kinds: vec![],
        };
        let t = b.push(Op::Tokens, seq(Encoding::Categorical), None);
        b.kinds[t.0] = (tokens, false);
        let i = b.push(Op::Indices, seq(Encoding::Categorical), None);
        b.kinds[i.0] = (K::Num, false);
        b.seqs = vec![t, i];
        b
    }

    fn kind(&self, id: NodeId) -> (K, bool) {
        self.kinds[id.0]
    }

    /// Records what the newest node holds.
    fn set(&mut self, id: NodeId, k: K, none: bool) -> NodeId {
        self.kinds[id.0] = (k, none);
        id
    }

    fn push(&mut self, op: Op, ty: NodeType, name: Option<String>) -> NodeId {
        let is_sel = ty == NodeType::Selector;
        self.kinds.push((K::Any, true));
        self.graph.nodes.push(Node {
            name,
            op,
            ty,
            source: None,
        });
        let id = NodeId(self.graph.nodes.len() - 1);
        if is_sel {
            self.sels.push(id)
        } else {
            self.seqs.push(id)
        }
        id
    }
}

fn seq(e: Encoding) -> NodeType {
    NodeType::Seq {
        encoding: e,
        values: ValueSet::new(),
    }
}

/// Grows a program from the genome. `rewrite` builds an equivalent program by different means
/// (negated comparisons under `not`, swapped map2 arguments, doubled selector operands), so that
/// equivalence and alignment also get proofs, not only refutations. Step `k`'s node is named
/// `v{k}` in both versions.
fn program(g: &mut Genome<'_>, tokens: K, rewrite: bool) -> Graph {
    let mut b = Builder::new(tokens);
    let steps = 2 + g.pick(5);
    for k in 0..steps {
        let name = Some(format!("v{k}"));
        let s = |g: &mut Genome<'_>, b: &Builder| b.seqs[g.pick(b.seqs.len())];
        let choice = g.pick(11);
        let choice = if b.sels.is_empty() && (4..=8).contains(&choice) {
            2
        } else {
            choice
        };
        let out_kind = [K::Num, K::Num, K::Sym, K::Bool][g.pick(4)];
        match choice {
            0 | 1 => {
                let arg = s(g, &b);
                let (ka, na) = b.kind(arg);
                let f = lam(1, typed(g, &[ka], out_kind, 2));
                let id = b.push(Op::Map { f, arg }, seq(Encoding::Categorical), name);
                b.set(id, out_kind, na);
            }
            2 | 3 => {
                let (x, y) = (s(g, &b), s(g, &b));
                let ((kx, nx), (ky, ny)) = (b.kind(x), b.kind(y));
                let body = typed(g, &[kx, ky], out_kind, 2);
                let id = if rewrite {
                    // map2(|p, q| e(p, q), x, y) == map2(|q, p| e(p, q), y, x).
                    let swapped = swap_params(&body);
                    b.push(
                        Op::Map2 {
                            f: lam(2, swapped),
                            a: y,
                            b: x,
                        },
                        seq(Encoding::Categorical),
                        name,
                    )
                } else {
                    b.push(
                        Op::Map2 {
                            f: lam(2, body),
                            a: x,
                            b: y,
                        },
                        seq(Encoding::Categorical),
                        name,
                    )
                };
                b.set(id, out_kind, nx || ny);
            }
            4 => {
                let sel = b.sels[g.pick(b.sels.len())];
                let id = b.push(Op::SelectorWidth(sel), seq(Encoding::Categorical), name);
                b.set(id, K::Num, false);
            }
            5 | 6 => {
                let sel = b.sels[g.pick(b.sels.len())];
                let vals = s(g, &b);
                let (kv, _) = b.kind(vals);
                let id = b.push(
                    Op::Aggregate {
                        selector: sel,
                        values: vals,
                    },
                    seq(Encoding::Categorical),
                    name,
                );
                b.set(id, kv, true);
            }
            7 => {
                let sel = b.sels[g.pick(b.sels.len())];
                // Numbers to average, mostly.
                let nums: Vec<NodeId> = b
                    .seqs
                    .iter()
                    .copied()
                    .filter(|n| b.kind(*n) == (K::Num, false))
                    .collect();
                let vals = if nums.is_empty() || g.pick(6) == 0 {
                    s(g, &b)
                } else {
                    nums[g.pick(nums.len())]
                };
                let id = b.push(
                    Op::Aggregate {
                        selector: sel,
                        values: vals,
                    },
                    seq(Encoding::Numerical),
                    name,
                );
                b.set(id, K::Num, false);
            }
            8 => {
                let x = b.sels[g.pick(b.sels.len())];
                let y = b.sels[g.pick(b.sels.len())];
                match g.pick(3) {
                    0 if rewrite => {
                        // x and y == not(not x or not y)
                        let nx = b.push(Op::SelectNot(x), NodeType::Selector, None);
                        let ny = b.push(Op::SelectNot(y), NodeType::Selector, None);
                        let o = b.push(Op::SelectOr(nx, ny), NodeType::Selector, None);
                        b.push(Op::SelectNot(o), NodeType::Selector, name);
                    }
                    0 => {
                        b.push(Op::SelectAnd(x, y), NodeType::Selector, name);
                    }
                    1 => {
                        let (x, y) = if rewrite { (y, x) } else { (x, y) };
                        b.push(Op::SelectOr(x, y), NodeType::Selector, name);
                    }
                    _ => {
                        b.push(Op::SelectNot(x), NodeType::Selector, name);
                    }
                }
            }
            9 => {
                let (k, q) = (s(g, &b), s(g, &b));
                let params = [b.kind(k).0, b.kind(q).0];
                let body = typed(g, &params, K::Bool, 2);
                b.push(
                    Op::Select {
                        keys: k,
                        queries: q,
                        pred: Predicate::Lambda(lam(2, body)),
                    },
                    NodeType::Selector,
                    name,
                );
            }
            _ => {
                // Keys and queries of one kind, mostly (comparisons across kinds fail).
                let k = s(g, &b);
                let same: Vec<NodeId> = b
                    .seqs
                    .iter()
                    .copied()
                    .filter(|n| b.kind(*n) == b.kind(k))
                    .collect();
                let q = if g.pick(6) == 0 {
                    s(g, &b)
                } else {
                    same[g.pick(same.len())]
                };
                let c = CMPS[g.pick(CMPS.len())];
                if rewrite {
                    let inner = b.push(
                        Op::Select {
                            keys: k,
                            queries: q,
                            pred: Predicate::Cmp(negated(c)),
                        },
                        NodeType::Selector,
                        None,
                    );
                    b.push(Op::SelectNot(inner), NodeType::Selector, name);
                } else {
                    b.push(
                        Op::Select {
                            keys: k,
                            queries: q,
                            pred: Predicate::Cmp(c),
                        },
                        NodeType::Selector,
                        name,
                    );
                }
            }
        }
    }
    // The output: the last sequence made (a fresh map of the tokens if there is none).
    let last = *b.seqs.last().expect("tokens and indices");
    let out = if last.0 <= 1 {
        b.push(
            Op::Map {
                f: lam(1, Expr::Param(0)),
                arg: NodeId(0),
            },
            seq(Encoding::Categorical),
            None,
        )
    } else {
        last
    };
    b.graph.nodes[out.0].name = Some("output".into());
    b.graph
}

fn swap_params(e: &Expr) -> Expr {
    match e {
        Expr::Param(i) => Expr::Param(1 - i),
        Expr::Const(v) => Expr::Const(v.clone()),
        Expr::Unary(o, a) => Expr::Unary(*o, Box::new(swap_params(a))),
        Expr::Binary(o, a, b) => bin(*o, swap_params(a), swap_params(b)),
        Expr::If(c, a, b) => Expr::If(
            Box::new(swap_params(c)),
            Box::new(swap_params(a)),
            Box::new(swap_params(b)),
        ),
        Expr::Call(f, args) => Expr::Call(*f, args.iter().map(swap_params).collect()),
    }
}

fn restriction(kind: usize, vocab: &[Value]) -> Option<(Graph, NodeId)> {
    let mut b = Builder::new(K::Any);
    let out = match kind {
        // Every token differs from the smallest token of the vocabulary.
        1 => b.push(
            Op::Map {
                f: lam(
                    1,
                    bin(BinOp::Ne, Expr::Param(0), Expr::Const(vocab[0].clone())),
                ),
                arg: NodeId(0),
            },
            seq(Encoding::Categorical),
            None,
        ),
        // All tokens distinct.
        2 => {
            let eq = b.push(
                Op::Select {
                    keys: NodeId(0),
                    queries: NodeId(0),
                    pred: Predicate::Cmp(Comparison::Eq),
                },
                NodeType::Selector,
                None,
            );
            let w = b.push(Op::SelectorWidth(eq), seq(Encoding::Categorical), None);
            b.push(
                Op::Map {
                    f: lam(
                        1,
                        bin(BinOp::Eq, Expr::Param(0), Expr::Const(Value::int(1))),
                    ),
                    arg: w,
                },
                seq(Encoding::Categorical),
                None,
            )
        }
        _ => return None,
    };
    Some((b.graph, out))
}

fn output_of(g: &Graph) -> NodeId {
    g.by_name("output").expect("named output")
}

#[derive(Debug, Clone)]
struct Case {
    vocab: usize,
    max_len: usize,
    restrict: usize,
    goal: usize,
    mutate: bool,
    genome: Vec<u8>,
    extra: Vec<u8>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0..3usize,
        3..=4usize,
        0..6usize,
        0..6usize,
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 24..64),
        prop::collection::vec(any::<u8>(), 8..16),
    )
        .prop_map(
            |(vocab, max_len, restrict, goal, mutate, genome, extra)| Case {
                vocab,
                max_len,
                // Restrictions in a third of the cases.
                restrict: if restrict >= 4 { restrict - 3 } else { 0 },
                goal,
                mutate,
                genome,
                extra,
            },
        )
}

/// Builds the spec and the goal of a case.
fn build(c: &Case) -> (Spec, ProofGoal) {
    let vocab = [Vocab::Ints, Vocab::Syms, Vocab::Mixed][c.vocab];
    let tokens = vocab.tokens();
    let task = Arc::new(Task {
        name: "t".into(),
        vocab: tokens.clone(),
        max_len: c.max_len,
        // A restriction that fails to evaluate is a broken spec (the domain enumerator stops);
        // on the mixed vocabulary `==` between tokens would, so it gets none.
        restriction: if matches!(vocab, Vocab::Mixed) {
            None
        } else {
            restriction(c.restrict, &tokens)
        },
        source: None,
    });
    let tk = [K::Num, K::Sym, K::Any][c.vocab];
    let p = program(
        &mut Genome {
            bytes: &c.genome,
            at: 0,
        },
        tk,
        false,
    );
    // The second program: the same genome rewritten, or (mutated) a slightly different genome.
    let mut genome_q = c.genome.clone();
    if c.mutate {
        let i = c.extra[0] as usize % genome_q.len();
        genome_q[i] = genome_q[i].wrapping_add(1 + c.extra[1] % 7);
    }
    let q = program(
        &mut Genome {
            bytes: &genome_q,
            at: 0,
        },
        tk,
        true,
    );
    let mk = |name: &str, graph: Graph| Program {
        name: name.into(),
        task: task.clone(),
        output: output_of(&graph),
        graph,
        source: None,
    };
    let (pp, qq) = (mk("p", p), mk("q", q));
    let mut spec = Spec::default();
    spec.tasks.insert("t".into(), task.clone());
    let goal = match c.goal {
        0 => ProofGoal::WellFormed {
            program: "p".into(),
        },
        1 | 2 => ProofGoal::Equivalent {
            a: "p".into(),
            b: "q".into(),
        },
        3 => {
            // Variables named in both programs, a few of them.
            let names: Vec<String> = pp
                .graph
                .nodes
                .iter()
                .filter_map(|n| n.name.clone())
                .filter(|n| qq.graph.by_name(n).is_some())
                .collect();
            let k = 1 + c.extra[2] as usize % names.len().max(1);
            let pairs: Vec<(String, String)> =
                names.into_iter().take(k).map(|n| (n.clone(), n)).collect();
            ProofGoal::Aligned {
                a: "p".into(),
                b: "q".into(),
                pairs,
            }
        }
        4 => {
            // A circuit over a random subset of p's named variables.
            let mut sites = Vec::new();
            for (i, n) in pp.graph.nodes.iter().enumerate() {
                if let Some(name) = &n.name
                    && c.extra[3 + i % 5] >> (i % 8) & 1 == 1
                {
                    sites.push(CircuitSite {
                        variable: name.clone(),
                        node: NodeId(i),
                        hooks: vec![],
                    });
                }
            }
            spec.circuits.insert(
                "c".into(),
                Circuit {
                    name: "c".into(),
                    program: "p".into(),
                    sites,
                    source: None,
                },
            );
            ProofGoal::Sufficient {
                circuit: "c".into(),
            }
        }
        _ => {
            // p |> q as a pipeline: well-formed (adapters, the second stage's domain) or
            // equivalent to q |> p.
            let adapter = match vocab {
                Vocab::Ints => Some(Adapter::Clamp { lo: 0, hi: 2 }),
                Vocab::Syms => Some(Adapter::Table(BTreeMap::from([
                    (Value::None, Value::sym("a")),
                    (Value::Bool(true), Value::sym("b")),
                ]))),
                Vocab::Mixed => Some(Adapter::Modulo { lo: 0, n: 2 }),
            };
            for (name, a, b) in [("pq", "p", "q"), ("qp", "q", "p")] {
                spec.pipelines.insert(
                    name.into(),
                    Pipeline {
                        name: name.into(),
                        stages: vec![
                            PipelineStage {
                                program: a.into(),
                                adapter: None,
                            },
                            PipelineStage {
                                program: b.into(),
                                adapter: adapter.clone(),
                            },
                        ],
                        source: None,
                    },
                );
            }
            if c.extra[4].is_multiple_of(2) {
                ProofGoal::WellFormed {
                    program: "pq".into(),
                }
            } else {
                ProofGoal::Equivalent {
                    a: "pq".into(),
                    b: "qp".into(),
                }
            }
        }
    };
    spec.programs.insert("p".into(), pp);
    spec.programs.insert("q".into(), qq);
    (spec, goal)
}

#[test]
fn z3_agrees_with_enumeration_on_random_programs() {
    let config = Config {
        cases: CASES,
        rng_seed: RngSeed::Fixed(SEED),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let (proved, refuted, ran) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let result = runner.run(&case(), |c| {
        let (spec, goal) = build(&c);
        let truth = enumerate(&spec, &goal, 10_000).expect("tiny domain");
        let opts = ProveOptions {
            timeout: Some(Duration::from_secs(60)),
            parallel: false,
            max_len: None,
        };
        let report = smt::prove(&spec, "random", &goal, &opts);
        ran.fetch_add(1, Ordering::Relaxed);
        match report.verdict {
            Verdict::Proved => proved.fetch_add(1, Ordering::Relaxed),
            Verdict::Refuted { .. } => refuted.fetch_add(1, Ordering::Relaxed),
            Verdict::Unknown { .. } => 0,
        };
        if let Err(e) = agrees(&report, &truth) {
            return Err(TestCaseError::fail(format!(
                "{}: {e}\nspec programs: {:#?}",
                goal_text(&goal),
                spec.programs
            )));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (p, r, n) = (proved.into_inner(), refuted.into_inner(), ran.into_inner());
    eprintln!("{n} random programs: {p} proved, {r} refuted, all as enumeration says");
    assert!(n >= 500, "only {n} cases ran");
    // Both directions are exercised: proofs (no counterexample in the domain) and refutations.
    assert!(p >= 100, "only {p} proofs");
    assert!(r >= 100, "only {r} refutations");
}
