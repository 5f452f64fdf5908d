//! Ground truth for the z3 tests: every goal decided by enumerating the domain with the exact
//! evaluator.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use congruity::lang::domain;
use congruity::lang::eval::{
    EvalError, NodeValue, Trace, check_input, eval_pipeline, eval_program,
};
use congruity::lang::ir::{NodeId, Program, ProofGoal, Spec, Task, Value};
use congruity::smt::{ProofReport, Verdict};

/// What enumeration says about a goal.
#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    Holds,
    /// A failing input (two for `sufficient`), the first one found in domain order.
    Fails(Vec<Vec<Value>>),
}

pub fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("specs")
}

/// Every `.interp` under `dir`, sorted.
pub fn spec_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable specs dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "interp") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn variable(p: &Program, name: &str) -> NodeId {
    if name == "output" {
        p.output
    } else {
        p.graph.by_name(name).expect("checked variable")
    }
}

/// The inputs of a task's domain, if it has at most `limit` (restriction applied).
pub fn domain_inputs(task: &Task, limit: u128) -> Option<Vec<Vec<Value>>> {
    if domain::upper_bound(task)? > limit {
        return None;
    }
    Some(
        domain::inputs(task)
            .map(|i| i.expect("restriction evaluates"))
            .collect(),
    )
}

enum Run {
    Trace(Trace),
    Output(Vec<Value>),
}

fn run(spec: &Spec, name: &str, input: &[Value]) -> Result<Run, EvalError> {
    if let Some(p) = spec.programs.get(name) {
        return eval_program(p, input).map(Run::Trace);
    }
    let pl = spec.pipelines.get(name).expect("program or pipeline");
    let first = spec.programs.get(&pl.stages[0].program).expect("stage");
    check_input(&first.task, input)?;
    eval_pipeline(spec, pl, input).map(|t| Run::Output(t.output().to_vec()))
}

fn output(r: &Run) -> &[Value] {
    match r {
        Run::Trace(t) => t.output(),
        Run::Output(o) => o,
    }
}

fn subject_task<'a>(spec: &'a Spec, name: &str) -> &'a Task {
    if let Some(p) = spec.programs.get(name) {
        return &p.task;
    }
    let pl = &spec.pipelines[name];
    &spec.programs[&pl.stages[0].program].task
}

/// Decides `goal` by enumeration, or `None` when the domain has more than `limit` inputs.
pub fn enumerate(spec: &Spec, goal: &ProofGoal, limit: u128) -> Option<Truth> {
    let first = match goal {
        ProofGoal::Implements { program, .. } | ProofGoal::WellFormed { program } => {
            program.clone()
        }
        ProofGoal::Equivalent { a, .. } | ProofGoal::Aligned { a, .. } => a.clone(),
        ProofGoal::Sufficient { circuit } => spec.circuits[circuit].program.clone(),
    };
    let inputs = domain_inputs(subject_task(spec, &first), limit)?;
    let pair = |a: &str, b: &str| -> Option<Truth> {
        for x in &inputs {
            match (run(spec, a, x), run(spec, b, x)) {
                (Ok(ra), Ok(rb)) if output(&ra) == output(&rb) => {}
                _ => return Some(Truth::Fails(vec![x.clone()])),
            }
        }
        Some(Truth::Holds)
    };
    match goal {
        ProofGoal::WellFormed { program } => {
            for x in &inputs {
                if run(spec, program, x).is_err() {
                    return Some(Truth::Fails(vec![x.clone()]));
                }
            }
            Some(Truth::Holds)
        }
        ProofGoal::Implements { program, reference } => pair(program, reference),
        ProofGoal::Equivalent { a, b } => pair(a, b),
        ProofGoal::Aligned { a, b, pairs } => {
            let (pa, pb) = (&spec.programs[a], &spec.programs[b]);
            for x in &inputs {
                let (Ok(ta), Ok(tb)) = (eval_program(pa, x), eval_program(pb, x)) else {
                    return Some(Truth::Fails(vec![x.clone()]));
                };
                for (u, v) in pairs {
                    if ta.node(variable(pa, u)) != tb.node(variable(pb, v)) {
                        return Some(Truth::Fails(vec![x.clone()]));
                    }
                }
            }
            Some(Truth::Holds)
        }
        ProofGoal::Sufficient { circuit } => {
            let c = &spec.circuits[circuit];
            let p = &spec.programs[&c.program];
            // Inputs grouped by length and by the values of the circuit's variables.
            let mut seen: HashMap<(usize, String), (Vec<Value>, Vec<Value>)> = HashMap::new();
            for x in &inputs {
                let Ok(t) = eval_program(p, x) else {
                    return Some(Truth::Fails(vec![x.clone(), x.clone()]));
                };
                // `NodeValue` is not `Hash`; its debug text is a faithful key.
                let key: Vec<&NodeValue> = c
                    .sites
                    .iter()
                    .map(|s| t.node(s.node).expect("node"))
                    .collect();
                let key = format!("{key:?}");
                let out = t.output().to_vec();
                match seen.get(&(x.len(), key.clone())) {
                    Some((y, out_y)) if *out_y != out => {
                        return Some(Truth::Fails(vec![y.clone(), x.clone()]));
                    }
                    Some(_) => {}
                    None => {
                        seen.insert((x.len(), key), (x.clone(), out));
                    }
                }
            }
            Some(Truth::Holds)
        }
    }
}

/// Checks a z3 report against enumeration; `Err` says how they disagree.
pub fn agrees(report: &ProofReport, truth: &Truth) -> Result<(), String> {
    match (&report.verdict, truth) {
        (Verdict::Proved, Truth::Holds) => Ok(()),
        (Verdict::Refuted { counterexample }, Truth::Fails(_)) => {
            if counterexample.differences.is_empty() && counterexample.errors.is_empty() {
                Err("refuted without a difference or an error".into())
            } else {
                Ok(())
            }
        }
        (v, t) => Err(format!("z3 says {v:?}, enumeration says {t:?}")),
    }
}

/// Every goal one can form from a spec: its own proofs, well-formedness of every interpretation
/// and pipeline, equivalence of every pair of interpretations of one task, alignment of the
/// variables two such interpretations both name, and sufficiency of every circuit.
pub fn goals(spec: &Spec) -> Vec<(String, ProofGoal)> {
    let mut out: Vec<(String, ProofGoal)> = spec
        .proofs
        .iter()
        .map(|p| (p.name.clone(), p.goal.clone()))
        .collect();
    for name in spec.programs.keys().chain(spec.pipelines.keys()) {
        out.push((
            format!("wf_{name}"),
            ProofGoal::WellFormed {
                program: name.clone(),
            },
        ));
    }
    let progs: Vec<&Program> = spec.programs.values().collect();
    for (i, a) in progs.iter().enumerate() {
        for b in &progs[i + 1..] {
            if a.task.name != b.task.name {
                continue;
            }
            out.push((
                format!("eq_{}_{}", a.name, b.name),
                ProofGoal::Equivalent {
                    a: a.name.clone(),
                    b: b.name.clone(),
                },
            ));
            out.push((
                format!("impl_{}_{}", b.name, a.name),
                ProofGoal::Implements {
                    program: b.name.clone(),
                    reference: a.name.clone(),
                },
            ));
            let shared: Vec<(String, String)> = a
                .graph
                .nodes
                .iter()
                .filter_map(|n| n.name.clone())
                .filter(|n| n != "output" && b.graph.by_name(n).is_some())
                .map(|n| (n.clone(), n))
                .collect();
            if !shared.is_empty() {
                out.push((
                    format!("al_{}_{}", a.name, b.name),
                    ProofGoal::Aligned {
                        a: a.name.clone(),
                        b: b.name.clone(),
                        pairs: shared,
                    },
                ));
            }
        }
    }
    for c in spec.circuits.keys() {
        out.push((
            format!("suff_{c}"),
            ProofGoal::Sufficient { circuit: c.clone() },
        ));
    }
    out
}

/// Whether, evaluated up to some categorical aggregate without failing before it, `p` selects
/// two positions holding different values there (what tracr silently garbles).
pub fn garbles(p: &Program, input: &[Value]) -> bool {
    use congruity::lang::eval::eval_graph;
    use congruity::lang::ir::{Encoding, Graph, NodeType, Op};
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
        let Ok(vals) = eval_graph(&prefix, input) else {
            return false;
        };
        let (NodeValue::Selector(m), NodeValue::Seq(vs)) = (&vals[selector.0], &vals[values.0])
        else {
            return false;
        };
        for q in 0..m.n {
            let sel: Vec<usize> = (0..m.n).filter(|k| m.get(q, *k)).collect();
            if sel.iter().any(|&k| vs[k] != vs[sel[0]]) {
                return true;
            }
        }
    }
    false
}
