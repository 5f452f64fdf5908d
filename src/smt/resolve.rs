//! A proof goal resolved against a spec: what it is about (its subjects), the common domain and
//! the symbols involved.

use crate::lang::ir::{Adapter, NodeId, Pipeline, Program, ProofGoal, Spec, Task, Value};

use super::SmtError;
use super::value::SymTable;

/// What a goal is about: a program, or the stages of a pipeline.
#[derive(Clone, Debug)]
pub(crate) struct Subject<'a> {
    pub name: String,
    pub stages: Vec<(&'a Program, Option<&'a Adapter>)>,
    /// The pipeline, when the subject is one (the evaluator replays it as a whole).
    pub pipeline: Option<&'a Pipeline>,
}

impl<'a> Subject<'a> {
    pub(crate) fn resolve(spec: &'a Spec, name: &str) -> Result<Subject<'a>, SmtError> {
        if let Some(p) = spec.programs.get(name) {
            return Ok(Subject {
                name: name.to_string(),
                stages: vec![(p, None)],
                pipeline: None,
            });
        }
        if let Some(pl) = spec.pipelines.get(name) {
            let mut stages = Vec::with_capacity(pl.stages.len());
            for st in &pl.stages {
                let p = spec.programs.get(&st.program).ok_or_else(|| {
                    SmtError::Spec(format!(
                        "pipeline `{name}` names `{}`, which is no interpretation",
                        st.program
                    ))
                })?;
                stages.push((p, st.adapter.as_ref()));
            }
            if stages.is_empty() {
                return Err(SmtError::Spec(format!("pipeline `{name}` has no stages")));
            }
            return Ok(Subject {
                name: name.to_string(),
                stages,
                pipeline: Some(pl),
            });
        }
        Err(SmtError::Spec(format!(
            "`{name}` is neither an interpretation nor a pipeline"
        )))
    }

    pub(crate) fn task(&self) -> &'a Task {
        &self.stages[0].0.task
    }

    /// The program itself, where the goal needs named variables.
    pub(crate) fn program(&self) -> Result<&'a Program, SmtError> {
        match self.stages.as_slice() {
            [(p, _)] => Ok(p),
            _ => Err(SmtError::Unsupported(format!(
                "`{}` is a pipeline; variables can only be named in an interpretation",
                self.name
            ))),
        }
    }
}

/// A goal resolved against a spec: subjects, the common domain, and the symbols involved.
#[derive(Clone, Debug)]
pub(crate) struct Resolved<'a> {
    pub spec: &'a Spec,
    pub goal: ProofGoal,
    pub subjects: Vec<Subject<'a>>,
    /// The tasks whose domains the inputs must all lie in (those of the subjects' first stages).
    pub tasks: Vec<&'a Task>,
    /// Tokens common to every task's vocabulary, sorted.
    pub vocab: Vec<Value>,
    pub max_len: usize,
    /// Variable pairs compared by `aligned` (node in subject 0, node in subject 1) and their
    /// names; for `sufficient`, the circuit's nodes (in subject 0) twice.
    pub pairs: Vec<(NodeId, NodeId, String)>,
    pub syms: SymTable,
    /// With `WellFormed`: look only for what tracr gets silently wrong, a categorical aggregate
    /// selecting two positions that hold different values (see `crate::smt::prove_no_garbling`).
    pub garbling: bool,
}

impl<'a> Resolved<'a> {
    pub(crate) fn new(spec: &'a Spec, goal: &ProofGoal) -> Result<Resolved<'a>, SmtError> {
        let mut pairs = Vec::new();
        let subjects = match goal {
            ProofGoal::Implements { program, reference } => {
                vec![
                    Subject::resolve(spec, program)?,
                    Subject::resolve(spec, reference)?,
                ]
            }
            ProofGoal::Equivalent { a, b } => {
                vec![Subject::resolve(spec, a)?, Subject::resolve(spec, b)?]
            }
            ProofGoal::Aligned { a, b, pairs: names } => {
                let (sa, sb) = (Subject::resolve(spec, a)?, Subject::resolve(spec, b)?);
                let (pa, pb) = (sa.program()?, sb.program()?);
                for (x, y) in names {
                    let nx = variable(pa, x)?;
                    let ny = variable(pb, y)?;
                    pairs.push((nx, ny, format!("{x} = {y}")));
                }
                vec![sa, sb]
            }
            ProofGoal::Sufficient { circuit } => {
                let c = spec
                    .circuits
                    .get(circuit)
                    .ok_or_else(|| SmtError::Spec(format!("no circuit `{circuit}`")))?;
                let s = Subject::resolve(spec, &c.program)?;
                let p = s.program()?;
                for site in &c.sites {
                    if site.node.0 >= p.graph.nodes.len() {
                        return Err(SmtError::Spec(format!(
                            "circuit `{circuit}`: variable `{}` is not in `{}`",
                            site.variable, p.name
                        )));
                    }
                    pairs.push((site.node, site.node, site.variable.clone()));
                }
                vec![s]
            }
            ProofGoal::WellFormed { program } => vec![Subject::resolve(spec, program)?],
        };
        let mut tasks: Vec<&Task> = Vec::new();
        for s in &subjects {
            let t = s.task();
            if !tasks.iter().any(|u| std::ptr::eq(*u, t) || **u == *t) {
                tasks.push(t);
            }
        }
        let vocab: Vec<Value> = tasks[0]
            .vocab
            .iter()
            .filter(|v| tasks.iter().all(|t| t.vocab.contains(v)))
            .cloned()
            .collect();
        let max_len = tasks.iter().map(|t| t.max_len).min().unwrap_or(0);
        let mut symbols = Vec::new();
        for t in &tasks {
            collect_task_symbols(t, &mut symbols);
        }
        for s in &subjects {
            for (p, a) in &s.stages {
                collect_task_symbols(&p.task, &mut symbols);
                super::symbols::graph(&p.graph, &mut symbols);
                if let Some(a) = a {
                    super::symbols::adapter(a, &mut symbols);
                }
            }
        }
        Ok(Resolved {
            spec,
            goal: goal.clone(),
            subjects,
            tasks,
            vocab,
            max_len,
            pairs,
            syms: SymTable::new(symbols),
            garbling: false,
        })
    }

    /// How many input sequences a counterexample has.
    pub(crate) fn copies(&self) -> usize {
        if matches!(self.goal, ProofGoal::Sufficient { .. }) {
            2
        } else {
            1
        }
    }
}

/// A named variable of a program (`output` is the output).
pub(crate) fn variable(p: &Program, name: &str) -> Result<NodeId, SmtError> {
    if name == "output" {
        return Ok(p.output);
    }
    p.graph
        .by_name(name)
        .ok_or_else(|| SmtError::Spec(format!("`{}` has no variable `{name}`", p.name)))
}

fn collect_task_symbols(t: &Task, out: &mut Vec<std::sync::Arc<str>>) {
    for v in &t.vocab {
        super::symbols::value(v, out);
    }
    if let Some((g, _)) = &t.restriction {
        super::symbols::graph(g, out);
    }
}

/// Why `sufficient(circuit)` holds by construction, if it does: the circuit lists the output
/// itself, or every path from `tokens` to the output passes through one of its variables (then
/// the output is a function of the circuit's values — `indices` and constants are the same on
/// two inputs of one length). z3 still runs: an input on which the program fails refutes the
/// goal either way; this only says that a proof tells nothing about the computation.
pub(crate) fn trivially_sufficient(spec: &Spec, circuit: &str) -> Option<String> {
    let c = spec.circuits.get(circuit)?;
    let p = spec.programs.get(&c.program)?;
    if c.sites.iter().any(|s| s.node == p.output) {
        return Some(
            "the circuit lists `output`: inputs that agree on it agree on the output by \
             definition"
                .into(),
        );
    }
    let nodes = &p.graph.nodes;
    let in_circuit = |n: NodeId| c.sites.iter().any(|s| s.node == n);
    // Operands come before the nodes that read them, so one forward pass suffices.
    let mut reaches = vec![false; nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        reaches[i] = matches!(node.op, crate::lang::ir::Op::Tokens)
            || node
                .op
                .operands()
                .iter()
                .any(|m| reaches[m.0] && !in_circuit(*m));
    }
    if reaches.get(p.output.0).copied().unwrap_or(true) {
        return None;
    }
    let names: Vec<&str> = c.sites.iter().map(|s| s.variable.as_str()).collect();
    Some(format!(
        "every path from `tokens` to the output passes through {}: the output is a function of \
         the circuit's variables by construction",
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "task t {
  vocab   {a, b}
  max_len 3
}
interpretation p for t {
  same  = select(tokens, tokens, ==)
  hist  = selector_width(same)
  small = select(hist, hist, |k, q| k <= 1)
  output  selector_width(small)
}
interpretation q for t {
  same  = select(tokens, tokens, ==)
  hist  = selector_width(same)
  first = select(indices, indices, |k, q| k == 0)
  output  aggregate(first, tokens)
}
circuit lists_output for p {
  output -> blocks.1.hook_mlp_out
}
circuit cut for p {
  hist -> blocks.0.attn.hook_z[0]
}
circuit beside for q {
  hist -> blocks.0.attn.hook_z[0]
}
";

    #[test]
    fn sufficiency_by_construction_is_named() {
        let spec = crate::lang::check_str("t.interp", SPEC)
            .unwrap_or_else(|r| panic!("{}", r.render_plain()));
        let why = trivially_sufficient(&spec, "lists_output").expect("lists the output");
        assert!(why.contains("lists `output`"), "{why}");
        let why = trivially_sufficient(&spec, "cut").expect("hist cuts tokens from the output");
        assert!(why.contains("`hist`"), "{why}");
        // `q`'s output reads the tokens directly: `hist` is not a cut, and sufficiency is a real
        // claim (here a false one).
        assert_eq!(trivially_sufficient(&spec, "beside"), None);
        assert_eq!(trivially_sufficient(&spec, "no_such_circuit"), None);
    }

    #[test]
    fn a_trivial_proof_says_so_and_a_real_one_does_not() {
        let spec = crate::lang::check_str("t.interp", SPEC)
            .unwrap_or_else(|r| panic!("{}", r.render_plain()));
        let opts = crate::smt::ProveOptions::default();
        let goal = |c: &str| ProofGoal::Sufficient { circuit: c.into() };
        let cut = crate::smt::prove(&spec, "cut", &goal("cut"), &opts);
        assert_eq!(cut.verdict, crate::smt::Verdict::Proved);
        assert!(
            cut.text()
                .contains("\n    trivially: every path from `tokens`"),
            "{}",
            cut.text()
        );
        let beside = crate::smt::prove(&spec, "beside", &goal("beside"), &opts);
        assert!(
            matches!(beside.verdict, crate::smt::Verdict::Refuted { .. }),
            "{}",
            beside.text()
        );
        assert_eq!(beside.trivially, None);
    }
}
