//! Unit tests of the whole compiler on hand-built IR programs, checked against the reference
//! evaluator on every input of the domain.

use std::collections::BTreeSet;
use std::sync::Arc;

use num_rational::Rational64;

use super::*;
use crate::lang::ir::*;

/// Builds IR programs with tracr-style value sets.
pub(crate) struct Builder {
    pub graph: Graph,
    pub task: Arc<Task>,
}

pub(crate) fn lam(n: usize, body: Expr) -> Lambda {
    Lambda {
        params: (0..n).map(|i| format!("p{i}")).collect(),
        body,
    }
}
pub(crate) fn p(i: usize) -> Expr {
    Expr::Param(i)
}
pub(crate) fn c(v: Value) -> Expr {
    Expr::Const(v)
}
pub(crate) fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    Expr::Binary(op, Box::new(a), Box::new(b))
}

impl Builder {
    pub fn new(vocab: Vec<Value>, max_len: usize) -> Builder {
        let mut vocab = vocab;
        vocab.sort();
        Builder {
            graph: Graph::default(),
            task: Arc::new(Task {
                name: "t".into(),
                vocab,
                max_len,
                restriction: None,
                source: None,
            }),
        }
    }

    fn values(&self, id: NodeId) -> ValueSet {
        match &self.graph.node(id).ty {
            NodeType::Seq { values, .. } => values.clone(),
            NodeType::Selector => panic!("selector"),
        }
    }

    fn push(&mut self, op: Op, ty: NodeType, name: Option<&str>) -> NodeId {
        self.graph.nodes.push(Node {
            name: name.map(String::from),
            op,
            ty,
            source: None,
        });
        NodeId(self.graph.nodes.len() - 1)
    }

    pub fn name(&mut self, id: NodeId, name: &str) -> NodeId {
        self.graph.nodes[id.0].name = Some(name.into());
        id
    }

    pub fn tokens(&mut self) -> NodeId {
        let values = self.task.vocab.iter().cloned().collect();
        self.push(
            Op::Tokens,
            NodeType::Seq {
                encoding: Encoding::Categorical,
                values,
            },
            None,
        )
    }

    pub fn indices(&mut self) -> NodeId {
        let values = (0..self.task.max_len as i64).map(Value::int).collect();
        self.push(
            Op::Indices,
            NodeType::Seq {
                encoding: Encoding::Categorical,
                values,
            },
            None,
        )
    }

    pub fn map(&mut self, f: Lambda, a: NodeId, enc: Encoding) -> NodeId {
        let values = self
            .values(a)
            .iter()
            .map(|v| scalar::apply(&f, std::slice::from_ref(v)).unwrap())
            .collect();
        self.push(
            Op::Map { f, arg: a },
            NodeType::Seq {
                encoding: enc,
                values,
            },
            None,
        )
    }

    pub fn map2(&mut self, f: Lambda, a: NodeId, b: NodeId, enc: Encoding) -> NodeId {
        let mut values = BTreeSet::new();
        for x in self.values(a) {
            for y in self.values(b) {
                values.insert(scalar::apply(&f, &[x.clone(), y.clone()]).unwrap());
            }
        }
        self.push(
            Op::Map2 { f, a, b },
            NodeType::Seq {
                encoding: enc,
                values,
            },
            None,
        )
    }

    pub fn select(&mut self, keys: NodeId, queries: NodeId, pred: Predicate) -> NodeId {
        self.push(
            Op::Select {
                keys,
                queries,
                pred,
            },
            NodeType::Selector,
            None,
        )
    }

    pub fn and(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.push(Op::SelectAnd(a, b), NodeType::Selector, None)
    }

    pub fn or(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.push(Op::SelectOr(a, b), NodeType::Selector, None)
    }

    pub fn not(&mut self, a: NodeId) -> NodeId {
        self.push(Op::SelectNot(a), NodeType::Selector, None)
    }

    pub fn width(&mut self, s: NodeId) -> NodeId {
        let values = (0..=self.task.max_len as i64).map(Value::int).collect();
        self.push(
            Op::SelectorWidth(s),
            NodeType::Seq {
                encoding: Encoding::Categorical,
                values,
            },
            None,
        )
    }

    pub fn aggregate(&mut self, s: NodeId, v: NodeId, enc: Encoding) -> NodeId {
        let base = self.values(v);
        let values = match enc {
            Encoding::Categorical => {
                let mut vs = base;
                vs.insert(Value::None);
                vs
            }
            Encoding::Numerical => {
                // Every mean of a multiset of at most max_len values, plus 0.
                let nums: Vec<Rational64> = base.iter().filter_map(scalar::as_number).collect();
                let mut sums: BTreeSet<(usize, Rational64)> =
                    BTreeSet::from([(0, Rational64::from_integer(0))]);
                for _ in 0..self.task.max_len {
                    let next: Vec<(usize, Rational64)> = sums
                        .iter()
                        .flat_map(|(n, s)| nums.iter().map(move |x| (n + 1, s + x)))
                        .collect();
                    sums.extend(next);
                }
                sums.into_iter()
                    .map(|(n, s)| {
                        if n == 0 {
                            Value::int(0)
                        } else {
                            Value::Num(s / Rational64::from_integer(n as i64))
                        }
                    })
                    .collect()
            }
        };
        self.push(
            Op::Aggregate {
                selector: s,
                values: v,
            },
            NodeType::Seq {
                encoding: enc,
                values,
            },
            None,
        )
    }

    pub fn program(self, output: NodeId) -> Program {
        let mut graph = self.graph;
        graph.nodes[output.0].name = Some("output".into());
        Program {
            name: "p".into(),
            task: self.task,
            graph,
            output,
            source: None,
        }
    }
}

/// The reference evaluator.
pub(crate) fn eval(program: &Program, input: &[Value]) -> Result<Vec<Value>, String> {
    crate::lang::eval::eval_output(program, input).map_err(|e| e.to_string())
}

/// Every input of the task's domain, in the language's order (builder tasks have no `where`).
pub(crate) fn all_inputs(task: &Task) -> Vec<Vec<Value>> {
    crate::lang::domain::inputs(task)
        .collect::<Result<_, _>>()
        .expect("no restriction to evaluate")
}

/// Compiles and checks the f32 reference forward against the evaluator on every input.
fn check_exhaustive(program: &Program, opts: &CompileOptions) -> Compiled {
    let compiled = compile_program(program, opts).expect("compiles");
    let mut checked = 0;
    for input in all_inputs(&program.task) {
        let Ok(want) = eval(program, &input) else {
            continue;
        };
        let got = compiled.run::<f32>(&input).expect("encodes");
        assert!(
            same_values(&got, &want),
            "input {input:?}: model {got:?}, evaluator {want:?}"
        );
        checked += 1;
    }
    assert!(checked > 0);
    compiled
}

fn syms(s: &[&str]) -> Vec<Value> {
    s.iter().map(|x| Value::sym(x)).collect()
}

/// tracr's `make_reverse` (two maps, as in tracr's lib).
pub(crate) fn reverse(vocab: &[&str], max_len: usize) -> Program {
    let mut b = Builder::new(syms(vocab), max_len);
    let t = b.tokens();
    let i = b.indices();
    let all = b.select(t, t, Predicate::Cmp(Comparison::True));
    let length = b.width(all);
    b.name(length, "length");
    let opp = b.map2(
        lam(2, bin(BinOp::Sub, p(0), p(1))),
        length,
        i,
        Encoding::Categorical,
    );
    b.name(opp, "opp_idx");
    let opp1 = b.map(
        lam(1, bin(BinOp::Sub, p(0), c(Value::int(1)))),
        opp,
        Encoding::Categorical,
    );
    b.name(opp1, "opp_idx_1");
    let flip = b.select(i, opp1, Predicate::Cmp(Comparison::Eq));
    let out = b.aggregate(flip, t, Encoding::Categorical);
    b.program(out)
}

#[test]
fn reverse_is_exact_and_smaller_than_tracr() {
    let compiled = check_exhaustive(&reverse(&["a", "b", "c"], 4), &CompileOptions::default());
    let s = compiled.shape();
    eprintln!("reverse: {s:?} {:?}", compiled.residual_labels);
    // tracr: 4 layers, d_model 35, d_mlp 20.
    assert!(s.n_layers < 4, "{s:?}");
    assert!(s.d_model <= 35 && s.d_mlp <= 20, "{s:?}");
}

#[test]
fn reverse_compiles_without_fusion_or_folding_too() {
    let opts = CompileOptions {
        lower: LowerOptions {
            fold_embeddings: false,
            fuse_maps: false,
        },
        coldness: None,
    };
    let compiled = check_exhaustive(&reverse(&["a", "b", "c"], 4), &opts);
    // Without fusion the two maps take one MLP layer each, as in tracr.
    assert_eq!(compiled.shape().n_layers, 4);
}

#[test]
fn hist_is_one_layer() {
    let mut b = Builder::new(syms(&["x", "y", "z"]), 5);
    let t = b.tokens();
    let same = b.select(t, t, Predicate::Cmp(Comparison::Eq));
    let hist = b.width(same);
    let compiled = check_exhaustive(&b.program(hist), &CompileOptions::default());
    let s = compiled.shape();
    assert_eq!(s.n_layers, 1);
    assert!(s.d_model <= 18 && s.d_mlp <= 12, "{s:?}");
}

#[test]
fn frac_prevs_is_numerical_and_needs_no_mlp() {
    let mut b = Builder::new(syms(&["a", "b", "x"]), 5);
    let t = b.tokens();
    let i = b.indices();
    let is_x = b.map(
        lam(
            1,
            Expr::If(
                Box::new(bin(BinOp::Eq, p(0), c(Value::sym("x")))),
                Box::new(c(Value::int(1))),
                Box::new(c(Value::int(0))),
            ),
        ),
        t,
        Encoding::Numerical,
    );
    let prevs = b.select(i, i, Predicate::Cmp(Comparison::Le));
    let frac = b.aggregate(prevs, is_x, Encoding::Numerical);
    let compiled = check_exhaustive(&b.program(frac), &CompileOptions::default());
    assert_eq!(compiled.shape().n_layers, 1);
    assert_eq!(compiled.shape().d_mlp, 0);
}

#[test]
fn sort_unique_and_combined_selectors() {
    // sort_unique(tokens, tokens) on numeric tokens.
    let mut b = Builder::new((1..=4).map(Value::int).collect(), 4);
    let t = b.tokens();
    let i = b.indices();
    let smaller = b.select(t, t, Predicate::Cmp(Comparison::Lt));
    let target = b.width(smaller);
    let sel = b.select(target, i, Predicate::Cmp(Comparison::Eq));
    let out = b.aggregate(sel, t, Encoding::Categorical);
    // Unique keys only: restrict to inputs without repeats by checking the evaluator errors out.
    let program = b.program(out);
    let compiled = compile_program(&program, &CompileOptions::default()).unwrap();
    for input in all_inputs(&program.task) {
        let distinct: BTreeSet<_> = input.iter().collect();
        if distinct.len() != input.len() {
            continue;
        }
        let want = eval(&program, &input).unwrap();
        assert_eq!(compiled.run::<f32>(&input).unwrap(), want, "{input:?}");
    }
    assert_eq!(compiled.shape().n_layers, 2);
}

#[test]
fn and_not_selectors_and_numerical_means() {
    // mean of tokens over earlier positions with a different token: and(<, not ==).
    let mut b = Builder::new((0..3).map(Value::int).collect(), 4);
    let t = b.tokens();
    let i = b.indices();
    let earlier = b.select(i, i, Predicate::Cmp(Comparison::Lt));
    let same = b.select(t, t, Predicate::Cmp(Comparison::Eq));
    let diff = b.not(same);
    let sel = b.and(earlier, diff);
    let tn = b.map(lam(1, p(0)), t, Encoding::Numerical);
    let mean = b.aggregate(sel, tn, Encoding::Numerical);
    let w = b.width(sel);
    let out = b.map2(
        lam(2, bin(BinOp::Add, p(0), p(1))),
        mean,
        w,
        Encoding::Numerical,
    );
    check_exhaustive(&b.program(out), &CompileOptions::default());
}

#[test]
fn or_selector_in_categorical_aggregate_and_none_values() {
    // Both outputs are compiled and checked on every input: the width of an `or` selector, and a
    // categorical aggregate over a value that is `none` at position 0.
    for output_width in [true, false] {
        // Pick the previous token (or the first one at position 0): or over different pairs.
        let mut b = Builder::new(syms(&["a", "b"]), 4);
        let t = b.tokens();
        let i = b.indices();
        let prev = b.select(
            i,
            i,
            Predicate::Lambda(lam(
                2,
                bin(BinOp::Eq, bin(BinOp::Add, p(0), c(Value::int(1))), p(1)),
            )),
        );
        let shifted = b.aggregate(prev, t, Encoding::Categorical); // none at position 0
        let is_b = b.map(
            lam(1, bin(BinOp::Eq, p(0), c(Value::sym("b")))),
            shifted,
            Encoding::Categorical,
        );
        // select keys where the previous token was b, or the key is position 0
        let sel_b = b.select(
            is_b,
            is_b,
            Predicate::Lambda(lam(2, bin(BinOp::Eq, p(0), c(Value::Bool(true))))),
        );
        let first = b.select(
            i,
            i,
            Predicate::Lambda(lam(2, bin(BinOp::Eq, p(0), c(Value::int(0))))),
        );
        let either = b.or(sel_b, first);
        let out = if output_width {
            b.width(either)
        } else {
            let last = b.select(
                i,
                i,
                Predicate::Lambda(lam(2, bin(BinOp::Eq, p(0), c(Value::int(0))))),
            );
            b.aggregate(last, is_b, Encoding::Categorical)
        };
        check_exhaustive(&b.program(out), &CompileOptions::default());
    }
}

#[test]
fn selector_width_of_an_or_over_two_pairs_uses_product_sequences() {
    // smaller or (equal and earlier): no single bilinear score gives selected keys equal weight,
    // so the compiler selects on (token, index) products.
    let mut b = Builder::new((1..=3).map(Value::int).collect(), 4);
    let t = b.tokens();
    let i = b.indices();
    let smaller = b.select(t, t, Predicate::Cmp(Comparison::Lt));
    let equal = b.select(t, t, Predicate::Cmp(Comparison::Eq));
    let earlier = b.select(i, i, Predicate::Cmp(Comparison::Lt));
    let tie = b.and(equal, earlier);
    let precedes = b.or(smaller, tie);
    let w = b.width(precedes);
    let compiled = check_exhaustive(&b.program(w), &CompileOptions::default());
    assert!(
        compiled
            .residual_labels
            .iter()
            .any(|l| l.starts_with("(tokens, indices):"))
    );
}

#[test]
fn ambiguity_check_reports_inputs_and_partial_coverage() {
    // Aggregating indices over equal tokens selects two positions holding different values.
    let mut b = Builder::new(syms(&["a", "b"]), 3);
    let t = b.tokens();
    let i = b.indices();
    let same = b.select(t, t, Predicate::Cmp(Comparison::Eq));
    let out = b.aggregate(same, i, Encoding::Categorical);
    let program = b.program(out);
    let full = check::domain(&program.task, 0).unwrap();
    assert!(full.exhaustive);
    let err = check::check_aggregates(&program, &full)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("on input [a a]") && err.contains("holding 0, 1") && !err.contains("partial"),
        "{err}"
    );
    let sampled = check::domain_with(&program.task, 5, 2, 50).unwrap();
    assert!(!sampled.exhaustive);
    let err = check::check_aggregates(&program, &sampled)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("partial check") && err.contains("seed 5"),
        "{err}"
    );
}

#[test]
fn selecting_several_positions_with_one_value_compiles() {
    // Equal tokens hold the same token: the head averages identical one-hots, which is exact,
    // though the evaluator rejects such inputs as ambiguous.
    let mut b = Builder::new(syms(&["a", "b"]), 3);
    let t = b.tokens();
    let same = b.select(t, t, Predicate::Cmp(Comparison::Eq));
    let out = b.aggregate(same, t, Encoding::Categorical);
    let program = b.program(out);
    let (compiled, report) = compile_checked(&program, &CompileOptions::default(), 0).unwrap();
    assert!(report.same_value_ambiguities > 0);
    assert_eq!(
        compiled.run::<f32>(&syms(&["a", "b", "a"])).unwrap(),
        syms(&["a", "b", "a"])
    );
}
