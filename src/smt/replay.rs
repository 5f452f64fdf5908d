//! Replays z3's counterexamples in the exact evaluator before they are reported: a refutation is
//! only ever what `lang::eval` computes, so an encoding slip can cost a verdict (`unknown`) but
//! never produce a false one.

use crate::lang::eval::{
    EvalError, NodeValue, SelectorMatrix, Trace, check_input, eval_graph, eval_pipeline,
    eval_program, value_text,
};
use crate::lang::ir::{Encoding, Graph, NodeType, Op, ProofGoal, Value};

use super::report::{Counterexample, Difference};
use super::resolve::{Resolved, Subject};

/// What one subject does on one input.
struct Outcome {
    output: Vec<Value>,
    /// Every node's value, for a single program (pipelines keep only their outputs).
    trace: Option<Trace>,
}

fn run(r: &Resolved<'_>, s: &Subject<'_>, input: &[Value]) -> Result<Outcome, EvalError> {
    match s.pipeline {
        Some(pl) => {
            check_input(s.task(), input)?;
            let t = eval_pipeline(r.spec, pl, input)?;
            Ok(Outcome {
                output: t.output().to_vec(),
                trace: None,
            })
        }
        None => {
            let t = eval_program(s.stages[0].0, input)?;
            Ok(Outcome {
                output: t.output().to_vec(),
                trace: Some(t),
            })
        }
    }
}

fn output_diffs(what: &str, a: &[Value], b: &[Value]) -> Vec<Difference> {
    let mut out = Vec::new();
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x != y {
            out.push(Difference {
                what: what.to_string(),
                position: i,
                left: value_text(x),
                right: value_text(y),
            });
        }
    }
    out
}

fn selected(m: &SelectorMatrix, q: usize) -> String {
    let ks: Vec<String> = (0..m.n)
        .filter(|k| m.get(q, *k))
        .map(|k| k.to_string())
        .collect();
    format!("selects {{{}}}", ks.join(", "))
}

fn node_diffs(what: &str, a: &NodeValue, b: &NodeValue) -> Vec<Difference> {
    match (a, b) {
        (NodeValue::Seq(x), NodeValue::Seq(y)) => output_diffs(what, x, y),
        (NodeValue::Selector(x), NodeValue::Selector(y)) => (0..x.n.min(y.n))
            .filter(|q| x.row(*q) != y.row(*q))
            .map(|q| Difference {
                what: what.to_string(),
                position: q,
                left: selected(x, q),
                right: selected(y, q),
            })
            .collect(),
        _ => vec![Difference {
            what: what.to_string(),
            position: 0,
            left: "a sequence".into(),
            right: "a selector".into(),
        }],
    }
}

/// The first categorical aggregate of the program that, evaluated up to it, selects two
/// positions holding different values on `input`.
fn garbled(s: &Subject<'_>, input: &[Value]) -> Result<String, String> {
    let p = s.stages[0].0;
    for (id, node) in p.graph.nodes.iter().enumerate() {
        let (
            Op::Aggregate { selector, values },
            NodeType::Seq {
                encoding: Encoding::Categorical,
                ..
            },
        ) = (&node.op, &node.ty)
        else {
            continue;
        };
        let prefix = Graph {
            nodes: p.graph.nodes[..id].to_vec(),
        };
        let vals = eval_graph(&prefix, input)
            .map_err(|e| format!("the program fails before any garbled aggregate: {e}"))?;
        let (Some(NodeValue::Selector(m)), Some(NodeValue::Seq(vs))) =
            (vals.get(selector.0), vals.get(values.0))
        else {
            return Err("malformed aggregate operands".into());
        };
        for q in 0..m.n {
            let sel: Vec<usize> = (0..m.n).filter(|k| m.get(q, *k)).collect();
            if sel.iter().any(|&k| vs[k] != vs[sel[0]]) {
                let name = node.name.clone().unwrap_or_else(|| format!("node {id}"));
                let held: Vec<String> = sel.iter().map(|&k| value_text(&vs[k])).collect();
                return Ok(format!(
                    "{}: categorical aggregate `{name}` at query position {q} selects positions {sel:?} holding {}",
                    s.name,
                    held.join(", ")
                ));
            }
        }
    }
    Err("no categorical aggregate selects two different values".into())
}

/// Confirms a counterexample with the evaluator, or says why it does not confirm.
pub(crate) fn replay(r: &Resolved<'_>, inputs: &[Vec<Value>]) -> Result<Counterexample, String> {
    if inputs.len() != r.copies() {
        return Err(format!(
            "expected {} input(s), got {}",
            r.copies(),
            inputs.len()
        ));
    }
    for input in inputs {
        for t in &r.tasks {
            check_input(t, input).map_err(|e| format!("the input is not in the domain: {e}"))?;
        }
    }
    let length = inputs[0].len();
    let mut cex = Counterexample {
        length,
        inputs: inputs.to_vec(),
        differences: Vec::new(),
        errors: Vec::new(),
    };
    // Runs a subject and records its failure, if any.
    let go = |s: &Subject<'_>, input: &[Value], errors: &mut Vec<String>| match run(r, s, input) {
        Ok(o) => Some(o),
        Err(e) => {
            errors.push(format!("{}: {e}", s.name));
            None
        }
    };
    match &r.goal {
        ProofGoal::WellFormed { .. } if r.garbling => {
            cex.errors.push(garbled(&r.subjects[0], &inputs[0])?);
        }
        ProofGoal::WellFormed { .. } => {
            go(&r.subjects[0], &inputs[0], &mut cex.errors);
        }
        ProofGoal::Implements { .. } | ProofGoal::Equivalent { .. } => {
            let a = go(&r.subjects[0], &inputs[0], &mut cex.errors);
            let b = go(&r.subjects[1], &inputs[0], &mut cex.errors);
            if let (Some(a), Some(b)) = (a, b) {
                cex.differences = output_diffs("output", &a.output, &b.output);
            }
        }
        ProofGoal::Aligned { .. } => {
            let a = go(&r.subjects[0], &inputs[0], &mut cex.errors);
            let b = go(&r.subjects[1], &inputs[0], &mut cex.errors);
            if let (Some(a), Some(b)) = (a, b) {
                let (Some(ta), Some(tb)) = (&a.trace, &b.trace) else {
                    return Err("aligned needs the traces of two interpretations".into());
                };
                for (x, y, what) in &r.pairs {
                    let (Some(va), Some(vb)) = (ta.node(*x), tb.node(*y)) else {
                        return Err(format!("the trace lacks `{what}`"));
                    };
                    cex.differences.extend(node_diffs(what, va, vb));
                }
            }
        }
        ProofGoal::Sufficient { .. } => {
            let s = &r.subjects[0];
            let a = go(s, &inputs[0], &mut cex.errors);
            let b = go(s, &inputs[1], &mut cex.errors);
            if let (Some(a), Some(b)) = (a, b) {
                let (Some(ta), Some(tb)) = (&a.trace, &b.trace) else {
                    return Err("sufficient needs the traces of an interpretation".into());
                };
                for (x, _, what) in &r.pairs {
                    let (Some(va), Some(vb)) = (ta.node(*x), tb.node(*x)) else {
                        return Err(format!("the trace lacks circuit variable `{what}`"));
                    };
                    if let Some(d) = node_diffs(what, va, vb).first() {
                        return Err(format!(
                            "the two inputs differ on circuit variable `{what}` at position {}: {} vs {}",
                            d.position, d.left, d.right
                        ));
                    }
                }
                cex.differences = output_diffs("output", &a.output, &b.output);
            }
        }
    }
    if cex.errors.is_empty() && cex.differences.is_empty() {
        return Err(match &r.goal {
            ProofGoal::WellFormed { .. } => "the evaluator ran it without an error".to_string(),
            _ => "the evaluator finds no difference and no error".to_string(),
        });
    }
    Ok(cex)
}
