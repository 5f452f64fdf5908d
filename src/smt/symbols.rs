//! Every symbol a goal can meet, so that all of them get codes in one table.

use std::sync::Arc;

use crate::lang::ir::{Adapter, Expr, Graph, NodeType, Op, Predicate, Value};

pub(crate) fn value(v: &Value, out: &mut Vec<Arc<str>>) {
    if let Value::Sym(s) = v {
        out.push(s.clone());
    }
}

fn expr(e: &Expr, out: &mut Vec<Arc<str>>) {
    match e {
        Expr::Const(v) => value(v, out),
        Expr::Param(_) => {}
        Expr::Unary(_, a) => expr(a, out),
        Expr::Binary(_, a, b) => {
            expr(a, out);
            expr(b, out);
        }
        Expr::If(c, a, b) => {
            expr(c, out);
            expr(a, out);
            expr(b, out);
        }
        Expr::Call(_, args) => args.iter().for_each(|a| expr(a, out)),
    }
}

pub(crate) fn graph(g: &Graph, out: &mut Vec<Arc<str>>) {
    for node in &g.nodes {
        if let NodeType::Seq { values, .. } = &node.ty {
            values.iter().for_each(|v| value(v, out));
        }
        match &node.op {
            Op::Full(v) => value(v, out),
            Op::Map { f, .. } | Op::Map2 { f, .. } => expr(&f.body, out),
            Op::Select {
                pred: Predicate::Lambda(f),
                ..
            } => expr(&f.body, out),
            _ => {}
        }
    }
}

pub(crate) fn adapter(a: &Adapter, out: &mut Vec<Arc<str>>) {
    if let Adapter::Table(rows) = a {
        for (k, v) in rows {
            value(k, out);
            value(v, out);
        }
    }
}
