//! Hand-built IR for unit tests (the parser lives on another branch; these stay independent).

use std::sync::Arc;

use crate::lang::ir::{
    BinOp, Comparison, Encoding, Expr, Graph, Lambda, Node, NodeId, NodeType, Op, Predicate,
    Program, Spec, Task, Value, ValueSet,
};

pub(crate) fn int(i: i64) -> Expr {
    Expr::Const(Value::int(i))
}

pub(crate) fn p(i: usize) -> Expr {
    Expr::Param(i)
}

pub(crate) fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    Expr::Binary(op, Box::new(a), Box::new(b))
}

pub(crate) fn lam(arity: usize, body: Expr) -> Lambda {
    Lambda {
        params: (0..arity).map(|i| format!("p{i}")).collect(),
        body,
    }
}

pub(crate) fn task(name: &str, vocab: Vec<Value>, max_len: usize) -> Arc<Task> {
    Arc::new(Task {
        name: name.into(),
        vocab,
        max_len,
        restriction: None,
        source: None,
    })
}

/// A graph under construction; value sets are left empty (the encoder does not read them).
#[derive(Default)]
pub(crate) struct G {
    pub graph: Graph,
}

impl G {
    fn push(&mut self, op: Op, ty: NodeType) -> NodeId {
        self.graph.nodes.push(Node {
            name: None,
            op,
            ty,
            source: None,
        });
        NodeId(self.graph.nodes.len() - 1)
    }

    fn seq(enc: Encoding) -> NodeType {
        NodeType::Seq {
            encoding: enc,
            values: ValueSet::new(),
        }
    }

    pub fn name(&mut self, id: NodeId, name: &str) -> NodeId {
        self.graph.nodes[id.0].name = Some(name.into());
        id
    }

    pub fn tokens(&mut self) -> NodeId {
        self.push(Op::Tokens, Self::seq(Encoding::Categorical))
    }

    pub fn indices(&mut self) -> NodeId {
        self.push(Op::Indices, Self::seq(Encoding::Categorical))
    }

    pub fn map(&mut self, body: Expr, arg: NodeId) -> NodeId {
        self.push(
            Op::Map {
                f: lam(1, body),
                arg,
            },
            Self::seq(Encoding::Categorical),
        )
    }

    pub fn map2(&mut self, body: Expr, a: NodeId, b: NodeId) -> NodeId {
        self.push(
            Op::Map2 {
                f: lam(2, body),
                a,
                b,
            },
            Self::seq(Encoding::Categorical),
        )
    }

    pub fn select(&mut self, keys: NodeId, queries: NodeId, c: Comparison) -> NodeId {
        self.push(
            Op::Select {
                keys,
                queries,
                pred: Predicate::Cmp(c),
            },
            NodeType::Selector,
        )
    }

    pub fn and(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.push(Op::SelectAnd(a, b), NodeType::Selector)
    }

    pub fn or(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.push(Op::SelectOr(a, b), NodeType::Selector)
    }

    pub fn not(&mut self, a: NodeId) -> NodeId {
        self.push(Op::SelectNot(a), NodeType::Selector)
    }

    pub fn width(&mut self, s: NodeId) -> NodeId {
        self.push(Op::SelectorWidth(s), Self::seq(Encoding::Categorical))
    }

    pub fn agg(&mut self, selector: NodeId, values: NodeId) -> NodeId {
        self.push(
            Op::Aggregate { selector, values },
            Self::seq(Encoding::Categorical),
        )
    }

    pub fn program(mut self, name: &str, task: &Arc<Task>, output: NodeId) -> Program {
        self.graph.nodes[output.0].name = Some("output".into());
        Program {
            name: name.into(),
            task: task.clone(),
            graph: self.graph,
            output,
            source: None,
        }
    }
}

/// `reverse` by length; `offset` is the constant subtracted in `opp = length - i - offset`
/// (1 is right, anything else is wrong).
pub(crate) fn reverse(name: &str, task: &Arc<Task>, offset: i64) -> Program {
    let mut g = G::default();
    let t = g.tokens();
    let i = g.indices();
    let all = g.select(t, t, Comparison::True);
    let len = g.width(all);
    g.name(len, "length");
    let opp = g.map2(
        bin(BinOp::Sub, bin(BinOp::Sub, p(0), p(1)), int(offset)),
        len,
        i,
    );
    g.name(opp, "opp");
    let flip = g.select(i, opp, Comparison::Eq);
    let out = g.agg(flip, t);
    g.program(name, task, out)
}

pub(crate) fn spec(programs: Vec<Program>) -> Spec {
    let mut s = Spec::default();
    for p in programs {
        s.tasks.insert(p.task.name.clone(), p.task.clone());
        s.programs.insert(p.name.clone(), p);
    }
    s
}

pub(crate) fn syms(vocab: &[&str]) -> Vec<Value> {
    vocab.iter().map(|s| Value::sym(s)).collect()
}

pub(crate) fn ints(r: std::ops::RangeInclusive<i64>) -> Vec<Value> {
    r.map(Value::int).collect()
}
