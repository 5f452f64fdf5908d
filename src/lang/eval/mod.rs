//! The exact reference evaluator: the semantics every compiled model and proof is held to.
//!
//! No floats anywhere: numbers are `i64` rationals with checked arithmetic, so an overflow is an
//! [`EvalError`], never a wrong answer or a panic. [`eval_program`] returns a [`Trace`] holding
//! every node's value (per-position values or a selector matrix), so later stages can read
//! intermediate variables, not just the output.

use std::collections::BTreeMap;
use std::fmt;

use num_rational::Rational64;
use num_traits::{CheckedAdd, CheckedDiv, CheckedMul, CheckedSub, Signed, Zero};

mod display;
mod scalar;

pub use display::{value_json, value_text};
pub use scalar::{binop_str, compare, comparison_str, eval_expr, eval_scalar};

use super::ir::{
    Adapter, BinOp, Builtin, Comparison, Encoding, Expr, Graph, NodeId, NodeType, Op, Pipeline,
    Predicate, Program, Spec, Task, UnOp, Value,
};

// ---------------------------------------------------------------------------------------------
// Errors

/// What a scalar operation could not do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScalarErrorKind {
    /// An operator applied to values it does not accept, e.g. `a + 1`.
    #[error("`{op}` needs {expected}, found {}", describe_values(found))]
    Type {
        op: &'static str,
        expected: &'static str,
        found: Vec<Value>,
    },
    #[error("division by zero in `{op}`")]
    DivisionByZero { op: &'static str },
    #[error("arithmetic overflow in `{op}` (numbers are exact 64-bit rationals)")]
    Overflow { op: &'static str },
    /// A lambda body used a parameter the call did not supply (a checker bug if it happens).
    #[error("the lambda reads parameter {index} but was given {given} argument(s)")]
    MissingParam { index: usize, given: usize },
}

/// A scalar failure and where in the expression it happened: `path` holds child indices from the
/// root (If: 0 cond, 1 then, 2 else; Binary: 0 left, 1 right; Unary: 0; Call: argument index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalarError {
    pub kind: ScalarErrorKind,
    pub path: Vec<usize>,
}

impl fmt::Display for ScalarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for ScalarError {}

impl ScalarError {
    fn new(kind: ScalarErrorKind) -> ScalarError {
        ScalarError {
            kind,
            path: Vec::new(),
        }
    }

    /// Records that the failure happened in child `i` (paths are built while unwinding).
    fn within(mut self, i: usize) -> ScalarError {
        self.path.insert(0, i);
        self
    }
}

/// Why a program could not be evaluated on an input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("the input is empty; task `{task}` takes 1 to {max_len} tokens")]
    EmptyInput { task: String, max_len: usize },
    #[error("the input has {len} tokens; task `{task}` takes at most {max_len}")]
    TooLong {
        task: String,
        len: usize,
        max_len: usize,
    },
    #[error(
        "token {token} at position {position} is not in the vocabulary of task `{task}`: {{{vocab}}}"
    )]
    NotInVocab {
        task: String,
        position: usize,
        token: Value,
        vocab: String,
    },
    #[error(
        "the input is outside the domain of task `{task}`: its `where` is {value} at position {position}"
    )]
    OutsideDomain {
        task: String,
        position: usize,
        value: Value,
    },
    #[error("`{node}` at position {position}: {error}")]
    Scalar {
        node: String,
        position: usize,
        error: ScalarError,
    },
    #[error(
        "ambiguous categorical aggregate `{node}`: query position {query} selects positions {selected:?} \
         (a categorical aggregate may select at most one position)"
    )]
    AmbiguousAggregate {
        node: String,
        query: usize,
        selected: Vec<usize>,
    },
    #[error("numerical aggregate `{node}` averages numbers, but position {position} holds {value}")]
    NonNumericAggregate {
        node: String,
        position: usize,
        value: Value,
    },
    #[error(
        "the predicate of `{node}` must give true or false; it gave {value} for key {key}, query {query}"
    )]
    NonBoolPredicate {
        node: String,
        key: Value,
        query: Value,
        value: Value,
    },
    #[error("arithmetic overflow in `{node}` (numbers are exact 64-bit rationals)")]
    Overflow { node: String },
    #[error("stage {stage} (`{program}`) of pipeline `{pipeline}`: {error}")]
    Stage {
        pipeline: String,
        stage: usize,
        program: String,
        error: Box<EvalError>,
    },
    #[error("pipeline `{pipeline}` names `{program}`, which the spec does not define")]
    UnknownStage { pipeline: String, program: String },
    #[error(
        "the adapter before stage {stage} of `{pipeline}` maps {value} to {mapped}, which is not a token of that stage"
    )]
    AdapterMiss {
        pipeline: String,
        stage: usize,
        value: Value,
        mapped: Value,
    },
    /// The graph breaks the IR's invariants (an operand after its user, a selector where a
    /// sequence belongs): a bug in whoever built it.
    #[error("malformed program: {0}")]
    Malformed(String),
}

fn kind_word(v: &Value) -> &'static str {
    match v {
        Value::None => "none",
        Value::Bool(_) => "a boolean",
        Value::Num(_) => "a number",
        Value::Sym(_) => "a symbol",
    }
}

/// `a (a symbol) and 1 (a number)`.
pub fn describe_values(vs: &[Value]) -> String {
    let parts: Vec<String> = vs
        .iter()
        .map(|v| match v {
            Value::None => "none".to_string(),
            _ => format!("{} ({})", v, kind_word(v)),
        })
        .collect();
    parts.join(" and ")
}

// ---------------------------------------------------------------------------------------------
// Programs

/// An `n × n` selector matrix, row-major by query: `get(q, k)` is whether query position `q`
/// selects key position `k`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorMatrix {
    pub n: usize,
    bits: Vec<bool>,
}

impl SelectorMatrix {
    pub fn new(n: usize, f: impl Fn(usize, usize) -> bool) -> SelectorMatrix {
        let mut bits = Vec::with_capacity(n * n);
        for q in 0..n {
            for k in 0..n {
                bits.push(f(q, k));
            }
        }
        SelectorMatrix { n, bits }
    }

    pub fn get(&self, query: usize, key: usize) -> bool {
        query < self.n && key < self.n && self.bits[query * self.n + key]
    }

    /// The keys query `q` selects, as booleans.
    pub fn row(&self, query: usize) -> &[bool] {
        if query < self.n {
            &self.bits[query * self.n..(query + 1) * self.n]
        } else {
            &[]
        }
    }
}

/// The value of one node on one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeValue {
    Seq(Vec<Value>),
    Selector(SelectorMatrix),
}

/// Every node's value on one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub input: Vec<Value>,
    pub values: Vec<NodeValue>,
    pub output: NodeId,
}

impl Trace {
    pub fn node(&self, id: NodeId) -> Option<&NodeValue> {
        self.values.get(id.0)
    }

    pub fn seq(&self, id: NodeId) -> Option<&[Value]> {
        match self.values.get(id.0) {
            Some(NodeValue::Seq(v)) => Some(v),
            _ => None,
        }
    }

    pub fn selector(&self, id: NodeId) -> Option<&SelectorMatrix> {
        match self.values.get(id.0) {
            Some(NodeValue::Selector(m)) => Some(m),
            _ => None,
        }
    }

    /// The program's output sequence.
    pub fn output(&self) -> &[Value] {
        self.seq(self.output).unwrap_or(&[])
    }

    /// A named variable's value (`output` is the output).
    pub fn var(&self, program: &Program, name: &str) -> Option<&NodeValue> {
        program.variable(name).and_then(|id| self.node(id))
    }
}

/// The vocabulary as text for messages: `a, b, c`.
pub fn vocab_text(task: &Task) -> String {
    const SHOWN: usize = 20;
    let mut parts: Vec<String> = task
        .vocab
        .iter()
        .take(SHOWN)
        .map(|v| v.to_string())
        .collect();
    if task.vocab.len() > SHOWN {
        parts.push(format!("... ({} tokens)", task.vocab.len()));
    }
    parts.join(", ")
}

/// Checks that `input` is in the task's bounded domain: its length, its tokens and the `where`
/// restriction.
pub fn check_input(task: &Task, input: &[Value]) -> Result<(), EvalError> {
    if input.is_empty() {
        return Err(EvalError::EmptyInput {
            task: task.name.clone(),
            max_len: task.max_len,
        });
    }
    if input.len() > task.max_len {
        return Err(EvalError::TooLong {
            task: task.name.clone(),
            len: input.len(),
            max_len: task.max_len,
        });
    }
    for (position, t) in input.iter().enumerate() {
        if task.vocab.binary_search(t).is_err() {
            return Err(EvalError::NotInVocab {
                task: task.name.clone(),
                position,
                token: t.clone(),
                vocab: vocab_text(task),
            });
        }
    }
    if let Some((graph, out)) = &task.restriction {
        let values = eval_graph(graph, input)?;
        let Some(NodeValue::Seq(flags)) = values.get(out.0) else {
            return Err(EvalError::Malformed(
                "the task's `where` is not a sequence".to_string(),
            ));
        };
        if let Some((position, value)) = flags
            .iter()
            .enumerate()
            .find(|(_, v)| **v != Value::Bool(true))
        {
            return Err(EvalError::OutsideDomain {
                task: task.name.clone(),
                position,
                value: value.clone(),
            });
        }
    }
    Ok(())
}

/// Runs a checked program on an input of its task's domain.
pub fn eval_program(program: &Program, input: &[Value]) -> Result<Trace, EvalError> {
    check_input(&program.task, input)?;
    let values = eval_graph(&program.graph, input)?;
    if !matches!(values.get(program.output.0), Some(NodeValue::Seq(_))) {
        return Err(EvalError::Malformed(format!(
            "the output of `{}` is not a sequence",
            program.name
        )));
    }
    Ok(Trace {
        input: input.to_vec(),
        values,
        output: program.output,
    })
}

/// The output sequence only.
pub fn eval_output(program: &Program, input: &[Value]) -> Result<Vec<Value>, EvalError> {
    let mut trace = eval_program(program, input)?;
    match trace.values.swap_remove(program.output.0) {
        NodeValue::Seq(v) => Ok(v),
        NodeValue::Selector(_) => Err(EvalError::Malformed("the output is a selector".to_string())),
    }
}

fn node_label(graph: &Graph, id: NodeId) -> String {
    match graph.nodes.get(id.0).and_then(|n| n.name.clone()) {
        Some(name) => name,
        None => format!("node {}", id.0),
    }
}

/// Evaluates every node of a graph on `input`, without checking the input against a task.
///
/// One function (~140 lines) on purpose: one arm per IR operation, so the reference semantics
/// every other stage is checked against reads in one place.
pub fn eval_graph(graph: &Graph, input: &[Value]) -> Result<Vec<NodeValue>, EvalError> {
    eval_graph_with(graph, input, &BTreeMap::new())
}

/// Runs a checked program on `input` with some nodes held at given values (a high-level
/// intervention: each overridden node takes its value from `overrides` instead of computing it,
/// and everything downstream is computed from it). The input must be in the task's domain.
pub fn eval_intervened(
    program: &Program,
    input: &[Value],
    overrides: &BTreeMap<NodeId, NodeValue>,
) -> Result<Trace, EvalError> {
    check_input(&program.task, input)?;
    let values = eval_graph_with(&program.graph, input, overrides)?;
    Ok(Trace {
        input: input.to_vec(),
        values,
        output: program.output,
    })
}

/// [`eval_graph`] with the nodes of `overrides` set instead of computed. An override's shape must
/// match the node's (a sequence of the input's length, or a selector of that size).
pub fn eval_graph_with(
    graph: &Graph,
    input: &[Value],
    overrides: &BTreeMap<NodeId, NodeValue>,
) -> Result<Vec<NodeValue>, EvalError> {
    let n = input.len();
    let mut values: Vec<NodeValue> = Vec::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        let id = NodeId(i);
        if let Some(v) = overrides.get(&id) {
            let fits = match v {
                NodeValue::Seq(s) => s.len() == n,
                NodeValue::Selector(m) => m.n == n,
            };
            if !fits {
                return Err(EvalError::Malformed(format!(
                    "the value set for `{}` does not fit an input of length {n}",
                    node_label(graph, id)
                )));
            }
            values.push(v.clone());
            continue;
        }
        let scalar_err = |position: usize, error: ScalarError| EvalError::Scalar {
            node: node_label(graph, id),
            position,
            error,
        };
        let v = match &node.op {
            Op::Tokens => NodeValue::Seq(input.to_vec()),
            Op::Indices => NodeValue::Seq((0..n).map(|i| Value::int(i as i64)).collect()),
            Op::Full(v) => NodeValue::Seq(vec![v.clone(); n]),
            Op::Map { f, arg } => {
                let a = seq_operand(&values, i, *arg)?;
                let mut out = Vec::with_capacity(n);
                for (p, x) in a.iter().enumerate() {
                    out.push(if *x == Value::None {
                        Value::None
                    } else {
                        eval_scalar(&f.body, std::slice::from_ref(x))
                            .map_err(|e| scalar_err(p, e))?
                    });
                }
                NodeValue::Seq(out)
            }
            Op::Map2 { f, a, b } => {
                let (xa, xb) = (seq_operand(&values, i, *a)?, seq_operand(&values, i, *b)?);
                let mut out = Vec::with_capacity(n);
                for p in 0..n {
                    let (x, y) = (&xa[p], &xb[p]);
                    out.push(if *x == Value::None || *y == Value::None {
                        Value::None
                    } else {
                        eval_scalar(&f.body, &[x.clone(), y.clone()])
                            .map_err(|e| scalar_err(p, e))?
                    });
                }
                NodeValue::Seq(out)
            }
            Op::Select {
                keys,
                queries,
                pred,
            } => {
                let (ks, qs) = (
                    seq_operand(&values, i, *keys)?,
                    seq_operand(&values, i, *queries)?,
                );
                let mut bits = Vec::with_capacity(n * n);
                for (q, qv) in qs.iter().enumerate() {
                    for kv in ks {
                        let b = match pred {
                            Predicate::Cmp(c) => {
                                compare(*c, kv, qv).map_err(|e| scalar_err(q, e))?
                            }
                            Predicate::Lambda(l) => {
                                match eval_scalar(&l.body, &[kv.clone(), qv.clone()])
                                    .map_err(|e| scalar_err(q, e))?
                                {
                                    Value::Bool(b) => b,
                                    other => {
                                        return Err(EvalError::NonBoolPredicate {
                                            node: node_label(graph, id),
                                            key: kv.clone(),
                                            query: qv.clone(),
                                            value: other,
                                        });
                                    }
                                }
                            }
                        };
                        bits.push(b);
                    }
                }
                NodeValue::Selector(SelectorMatrix { n, bits })
            }
            Op::SelectAnd(a, b) => {
                let (x, y) = (
                    selector_operand(&values, i, *a)?,
                    selector_operand(&values, i, *b)?,
                );
                NodeValue::Selector(SelectorMatrix::new(n, |q, k| x.get(q, k) && y.get(q, k)))
            }
            Op::SelectOr(a, b) => {
                let (x, y) = (
                    selector_operand(&values, i, *a)?,
                    selector_operand(&values, i, *b)?,
                );
                NodeValue::Selector(SelectorMatrix::new(n, |q, k| x.get(q, k) || y.get(q, k)))
            }
            Op::SelectNot(a) => {
                let x = selector_operand(&values, i, *a)?;
                NodeValue::Selector(SelectorMatrix::new(n, |q, k| !x.get(q, k)))
            }
            Op::SelectorWidth(s) => {
                let m = selector_operand(&values, i, *s)?;
                NodeValue::Seq(
                    (0..n)
                        .map(|q| Value::int(m.row(q).iter().filter(|b| **b).count() as i64))
                        .collect(),
                )
            }
            Op::Aggregate {
                selector,
                values: vs,
            } => {
                let m = selector_operand(&values, i, *selector)?;
                let xs = seq_operand(&values, i, *vs)?;
                let numerical = matches!(
                    node.ty,
                    NodeType::Seq {
                        encoding: Encoding::Numerical,
                        ..
                    }
                );
                let mut out = Vec::with_capacity(n);
                for q in 0..n {
                    let selected: Vec<usize> = (0..n).filter(|k| m.get(q, *k)).collect();
                    out.push(if numerical {
                        mean(graph, id, xs, &selected)?
                    } else {
                        match selected.as_slice() {
                            [] => Value::None,
                            [k] => xs[*k].clone(),
                            _ => {
                                return Err(EvalError::AmbiguousAggregate {
                                    node: node_label(graph, id),
                                    query: q,
                                    selected,
                                });
                            }
                        }
                    });
                }
                NodeValue::Seq(out)
            }
        };
        values.push(v);
    }
    Ok(values)
}

/// The value of operand `op` of node `i`, which must come before it.
fn operand(values: &[NodeValue], i: usize, op: NodeId) -> Result<&NodeValue, EvalError> {
    if op.0 >= i {
        return Err(EvalError::Malformed(format!(
            "node {i} reads node {} that comes after it",
            op.0
        )));
    }
    Ok(&values[op.0])
}

fn seq_operand(values: &[NodeValue], i: usize, op: NodeId) -> Result<&[Value], EvalError> {
    match operand(values, i, op)? {
        NodeValue::Seq(v) => Ok(v.as_slice()),
        NodeValue::Selector(_) => Err(EvalError::Malformed(format!(
            "node {i} reads selector node {} as a sequence",
            op.0
        ))),
    }
}

fn selector_operand(
    values: &[NodeValue],
    i: usize,
    op: NodeId,
) -> Result<&SelectorMatrix, EvalError> {
    match operand(values, i, op)? {
        NodeValue::Selector(m) => Ok(m),
        NodeValue::Seq(_) => Err(EvalError::Malformed(format!(
            "node {i} reads sequence node {} as a selector",
            op.0
        ))),
    }
}

/// The exact mean of the selected values; 0 when nothing is selected.
fn mean(graph: &Graph, id: NodeId, xs: &[Value], selected: &[usize]) -> Result<Value, EvalError> {
    let overflow = || EvalError::Overflow {
        node: node_label(graph, id),
    };
    let mut sum = Rational64::zero();
    for &k in selected {
        match &xs[k] {
            Value::Num(r) => sum = sum.checked_add(r).ok_or_else(overflow)?,
            other => {
                return Err(EvalError::NonNumericAggregate {
                    node: node_label(graph, id),
                    position: k,
                    value: other.clone(),
                });
            }
        }
    }
    if selected.is_empty() {
        return Ok(Value::int(0));
    }
    let count = Rational64::from_integer(selected.len() as i64);
    sum.checked_div(&count).map(Value::Num).ok_or_else(overflow)
}

// ---------------------------------------------------------------------------------------------
// Pipelines

impl Adapter {
    /// Maps one value of the previous stage's output into this stage's vocabulary.
    pub fn apply(&self, v: &Value) -> Value {
        match (self, v) {
            (Adapter::Clamp { lo, hi }, Value::Num(r)) if r.is_integer() => {
                Value::int(r.to_integer().clamp(*lo, (*hi).max(*lo)))
            }
            (Adapter::Modulo { lo, n }, Value::Num(r)) if r.is_integer() && *n > 0 => {
                // (v - lo) mod n computed in i128 so no i64 value can overflow.
                let off = (i128::from(r.to_integer()) - i128::from(*lo)).rem_euclid(i128::from(*n));
                Value::int((i128::from(*lo) + off) as i64)
            }
            (Adapter::Table(t), v) => t.get(v).cloned().unwrap_or_else(|| v.clone()),
            _ => v.clone(),
        }
    }
}

/// Every stage's output, first to last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineTrace {
    /// `stage_inputs[i]` is what stage `i` read (after its adapter).
    pub stage_inputs: Vec<Vec<Value>>,
    pub stage_outputs: Vec<Vec<Value>>,
}

impl PipelineTrace {
    pub fn output(&self) -> &[Value] {
        self.stage_outputs
            .last()
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }
}

/// Runs a pipeline: stage 1 on the input, each later stage on the previous output after its
/// adapter.
pub fn eval_pipeline(
    spec: &Spec,
    pipeline: &Pipeline,
    input: &[Value],
) -> Result<PipelineTrace, EvalError> {
    let mut trace = PipelineTrace {
        stage_inputs: Vec::new(),
        stage_outputs: Vec::new(),
    };
    let mut current = input.to_vec();
    for (i, stage) in pipeline.stages.iter().enumerate() {
        let Some(program) = spec.programs.get(&stage.program) else {
            return Err(EvalError::UnknownStage {
                pipeline: pipeline.name.clone(),
                program: stage.program.clone(),
            });
        };
        if let Some(adapter) = &stage.adapter {
            let mut mapped = Vec::with_capacity(current.len());
            for v in &current {
                let m = adapter.apply(v);
                if program.task.vocab.binary_search(&m).is_err() {
                    return Err(EvalError::AdapterMiss {
                        pipeline: pipeline.name.clone(),
                        stage: i + 1,
                        value: v.clone(),
                        mapped: m,
                    });
                }
                mapped.push(m);
            }
            current = mapped;
        }
        let out = eval_output(program, &current).map_err(|e| EvalError::Stage {
            pipeline: pipeline.name.clone(),
            stage: i + 1,
            program: stage.program.clone(),
            error: Box::new(e),
        })?;
        trace
            .stage_inputs
            .push(std::mem::replace(&mut current, out.clone()));
        trace.stage_outputs.push(out);
    }
    Ok(trace)
}

#[cfg(test)]
mod tests;
