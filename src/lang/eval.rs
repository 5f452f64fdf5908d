//! The exact reference evaluator: the semantics every compiled model and proof is held to.
//!
//! No floats anywhere: numbers are `i64` rationals with checked arithmetic, so an overflow is an
//! [`EvalError`], never a wrong answer or a panic. [`eval_program`] returns a [`Trace`] holding
//! every node's value (per-position values or a selector matrix), so later stages can read
//! intermediate variables, not just the output.

use std::fmt;

use num_rational::Rational64;
use num_traits::{CheckedAdd, CheckedDiv, CheckedMul, CheckedSub, Signed, Zero};

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
// Scalars

fn num(r: Rational64) -> Value {
    Value::Num(r)
}

fn type_err(op: &'static str, expected: &'static str, found: &[Value]) -> ScalarError {
    ScalarError::new(ScalarErrorKind::Type {
        op,
        expected,
        found: found.to_vec(),
    })
}

pub fn binop_str(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::And => "and",
        BinOp::Or => "or",
    }
}

pub fn comparison_str(c: Comparison) -> &'static str {
    match c {
        Comparison::Eq => "==",
        Comparison::Ne => "!=",
        Comparison::Lt => "<",
        Comparison::Le => "<=",
        Comparison::Gt => ">",
        Comparison::Ge => ">=",
        Comparison::True => "true",
        Comparison::False => "false",
    }
}

/// `==` / `!=`: values of the same kind, or `none` against anything (`x == none` is how a
/// program asks whether an aggregate found nothing).
fn equal(op: &'static str, a: &Value, b: &Value) -> Result<bool, ScalarError> {
    let comparable = matches!(
        (a, b),
        (Value::None, _)
            | (_, Value::None)
            | (Value::Bool(_), Value::Bool(_))
            | (Value::Num(_), Value::Num(_))
            | (Value::Sym(_), Value::Sym(_))
    );
    if comparable {
        Ok(a == b)
    } else {
        Err(type_err(
            op,
            "two values of the same kind",
            &[a.clone(), b.clone()],
        ))
    }
}

/// `< <= > >=`, `min`, `max`: two numbers (numeric order) or two symbols (string order).
fn order(op: &'static str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, ScalarError> {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => Ok(x.cmp(y)),
        (Value::Sym(x), Value::Sym(y)) => Ok(x.cmp(y)),
        _ => Err(type_err(
            op,
            "two numbers or two symbols",
            &[a.clone(), b.clone()],
        )),
    }
}

/// `pred(key, query)` for a comparison predicate, with the scalar operators' typing.
pub fn compare(c: Comparison, key: &Value, query: &Value) -> Result<bool, ScalarError> {
    use std::cmp::Ordering::*;
    let op = comparison_str(c);
    Ok(match c {
        Comparison::True => true,
        Comparison::False => false,
        Comparison::Eq => equal(op, key, query)?,
        Comparison::Ne => !equal(op, key, query)?,
        Comparison::Lt => order(op, key, query)? == Less,
        Comparison::Le => order(op, key, query)? != Greater,
        Comparison::Gt => order(op, key, query)? == Greater,
        Comparison::Ge => order(op, key, query)? != Less,
    })
}

fn arith(op: BinOp, a: &Value, b: &Value) -> Result<Value, ScalarError> {
    let s = binop_str(op);
    let (Value::Num(x), Value::Num(y)) = (a, b) else {
        return Err(type_err(s, "two numbers", &[a.clone(), b.clone()]));
    };
    let overflow = || ScalarError::new(ScalarErrorKind::Overflow { op: s });
    match op {
        BinOp::Add => x.checked_add(y).map(num).ok_or_else(overflow),
        BinOp::Sub => x.checked_sub(y).map(num).ok_or_else(overflow),
        BinOp::Mul => x.checked_mul(y).map(num).ok_or_else(overflow),
        BinOp::Div => {
            if y.is_zero() {
                return Err(ScalarError::new(ScalarErrorKind::DivisionByZero { op: s }));
            }
            x.checked_div(y).map(num).ok_or_else(overflow)
        }
        BinOp::Mod => {
            if !x.is_integer() || !y.is_integer() {
                return Err(type_err(s, "two integers", &[a.clone(), b.clone()]));
            }
            let (p, q) = (x.to_integer(), y.to_integer());
            if q == 0 {
                return Err(ScalarError::new(ScalarErrorKind::DivisionByZero { op: s }));
            }
            p.checked_rem_euclid(q).map(Value::int).ok_or_else(overflow)
        }
        _ => Err(ScalarError::new(ScalarErrorKind::Type {
            op: s,
            expected: "numbers",
            found: vec![],
        })),
    }
}

fn truth(op: &'static str, v: &Value) -> Result<bool, ScalarError> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(type_err(op, "a boolean", std::slice::from_ref(v))),
    }
}

/// Evaluates a lambda body with `args` as its parameters. This is the function the compiler
/// tabulates into MLP lookup tables.
pub fn eval_expr(expr: &Expr, args: &[Value]) -> Result<Value, EvalError> {
    eval_scalar(expr, args).map_err(|error| EvalError::Scalar {
        node: "lambda".to_string(),
        position: 0,
        error,
    })
}

/// [`eval_expr`] with the failing sub-expression's path, for diagnostics.
pub fn eval_scalar(expr: &Expr, args: &[Value]) -> Result<Value, ScalarError> {
    match expr {
        Expr::Const(v) => Ok(v.clone()),
        Expr::Param(i) => args.get(*i).cloned().ok_or_else(|| {
            ScalarError::new(ScalarErrorKind::MissingParam {
                index: *i,
                given: args.len(),
            })
        }),
        Expr::Unary(op, e) => {
            let v = eval_scalar(e, args).map_err(|e| e.within(0))?;
            match op {
                UnOp::Not => Ok(Value::Bool(!truth("not", &v)?)),
                UnOp::Neg => match &v {
                    Value::Num(r) => r
                        .numer()
                        .checked_neg()
                        .map(|n| Value::Num(Rational64::new_raw(n, *r.denom())))
                        .ok_or_else(|| ScalarError::new(ScalarErrorKind::Overflow { op: "-" })),
                    _ => Err(type_err("-", "a number", std::slice::from_ref(&v))),
                },
            }
        }
        Expr::Binary(op, a, b) => {
            let x = eval_scalar(a, args).map_err(|e| e.within(0))?;
            // `and` / `or` short-circuit, so `x != 0 and 1 / x > 2` is safe.
            match op {
                BinOp::And => {
                    if !truth("and", &x)? {
                        return Ok(Value::Bool(false));
                    }
                    let y = eval_scalar(b, args).map_err(|e| e.within(1))?;
                    return Ok(Value::Bool(truth("and", &y)?));
                }
                BinOp::Or => {
                    if truth("or", &x)? {
                        return Ok(Value::Bool(true));
                    }
                    let y = eval_scalar(b, args).map_err(|e| e.within(1))?;
                    return Ok(Value::Bool(truth("or", &y)?));
                }
                _ => {}
            }
            let y = eval_scalar(b, args).map_err(|e| e.within(1))?;
            use std::cmp::Ordering::*;
            let s = binop_str(*op);
            Ok(match op {
                BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                    arith(*op, &x, &y)?
                }
                BinOp::Eq => Value::Bool(equal(s, &x, &y)?),
                BinOp::Ne => Value::Bool(!equal(s, &x, &y)?),
                BinOp::Lt => Value::Bool(order(s, &x, &y)? == Less),
                BinOp::Le => Value::Bool(order(s, &x, &y)? != Greater),
                BinOp::Gt => Value::Bool(order(s, &x, &y)? == Greater),
                BinOp::Ge => Value::Bool(order(s, &x, &y)? != Less),
                BinOp::And | BinOp::Or => unreachable_bool(),
            })
        }
        Expr::If(c, t, e) => {
            let cv = eval_scalar(c, args).map_err(|e| e.within(0))?;
            if truth("if", &cv)? {
                eval_scalar(t, args).map_err(|e| e.within(1))
            } else {
                eval_scalar(e, args).map_err(|e| e.within(2))
            }
        }
        Expr::Call(f, fargs) => {
            let mut vals = Vec::with_capacity(fargs.len());
            for (i, a) in fargs.iter().enumerate() {
                vals.push(eval_scalar(a, args).map_err(|e| e.within(i))?);
            }
            match (f, vals.as_slice()) {
                (Builtin::Min, [a, b]) => {
                    Ok(if order("min", a, b)? == std::cmp::Ordering::Greater {
                        b.clone()
                    } else {
                        a.clone()
                    })
                }
                (Builtin::Max, [a, b]) => Ok(if order("max", a, b)? == std::cmp::Ordering::Less {
                    b.clone()
                } else {
                    a.clone()
                }),
                (Builtin::Abs, [Value::Num(r)]) => {
                    if r.is_negative() {
                        r.numer()
                            .checked_neg()
                            .map(|n| Value::Num(Rational64::new_raw(n, *r.denom())))
                            .ok_or_else(|| {
                                ScalarError::new(ScalarErrorKind::Overflow { op: "abs" })
                            })
                    } else {
                        Ok(Value::Num(*r))
                    }
                }
                (Builtin::Abs, [v]) => Err(type_err("abs", "a number", std::slice::from_ref(v))),
                (f, _) => Err(type_err(
                    match f {
                        Builtin::Min => "min",
                        Builtin::Max => "max",
                        Builtin::Abs => "abs",
                    },
                    "its arguments (min and max take 2, abs takes 1)",
                    &vals,
                )),
            }
        }
    }
}

// `and` / `or` return before the match above; kept total without a panic.
fn unreachable_bool() -> Value {
    Value::Bool(false)
}

// ---------------------------------------------------------------------------------------------
// Printing values

/// A value as program output: integers as integers, other rationals as exact decimals when they
/// have a finite expansion (`0.25`) and as fractions otherwise (`1/3`), symbols as their text,
/// booleans as `true`/`false`, and `none`.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Num(r) if !r.is_integer() => {
            decimal(r).unwrap_or_else(|| format!("{}/{}", r.numer(), r.denom()))
        }
        Value::Sym(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// The exact decimal expansion of `r`, when it is finite and fits in 128 bits.
fn decimal(r: &Rational64) -> Option<String> {
    let (n, mut d) = (i128::from(*r.numer()), i128::from(*r.denom()));
    let (mut twos, mut fives) = (0u32, 0u32);
    while d % 2 == 0 {
        d /= 2;
        twos += 1;
    }
    while d % 5 == 0 {
        d /= 5;
        fives += 1;
    }
    if d != 1 {
        return None;
    }
    let digits = twos.max(fives);
    // n / (2^a 5^b) = n * 2^(k-a) * 5^(k-b) / 10^k
    let scale = 2i128
        .checked_pow(digits - twos)?
        .checked_mul(5i128.checked_pow(digits - fives)?)?;
    let scaled = n.checked_mul(scale)?;
    let ten = 10i128.checked_pow(digits)?;
    let (int, frac) = (scaled / ten, (scaled % ten).abs());
    let sign = if scaled < 0 && int == 0 { "-" } else { "" };
    Some(format!(
        "{sign}{int}.{frac:0width$}",
        width = digits as usize
    ))
}

/// A value as JSON: integers as JSON integers, other rationals as the nearest `f64`, symbols as
/// strings, booleans as booleans, `none` as null.
pub fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::None => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Num(r) if r.is_integer() => serde_json::Value::from(r.to_integer()),
        Value::Num(r) => serde_json::Number::from_f64(*r.numer() as f64 / *r.denom() as f64)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Sym(s) => serde_json::Value::String(s.to_string()),
    }
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
    let n = input.len();
    let mut values: Vec<NodeValue> = Vec::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        let id = NodeId(i);
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
mod tests {
    use super::*;
    use crate::lang::ir::Spec;

    fn r(n: i64, d: i64) -> Value {
        Value::Num(Rational64::new(n, d))
    }

    fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
        Expr::Binary(op, Box::new(a), Box::new(b))
    }

    fn c(v: Value) -> Expr {
        Expr::Const(v)
    }

    #[test]
    fn exact_rational_arithmetic() {
        let e = bin(BinOp::Div, c(Value::int(1)), c(Value::int(3)));
        assert_eq!(eval_expr(&e, &[]), Ok(r(1, 3)));
        let e = bin(BinOp::Add, c(r(1, 3)), c(r(1, 6)));
        assert_eq!(eval_expr(&e, &[]), Ok(r(1, 2)));
        let e = bin(BinOp::Mod, c(Value::int(-7)), c(Value::int(3)));
        assert_eq!(eval_expr(&e, &[]), Ok(Value::int(2)));
        let e = bin(BinOp::Mod, c(Value::int(7)), c(Value::int(-3)));
        assert_eq!(eval_expr(&e, &[]), Ok(Value::int(1)));
    }

    #[test]
    fn overflow_and_division_by_zero_are_errors() {
        let e = bin(BinOp::Mul, c(Value::int(i64::MAX)), c(Value::int(2)));
        let err = eval_scalar(&e, &[]).unwrap_err();
        assert!(matches!(err.kind, ScalarErrorKind::Overflow { .. }));
        let e = bin(
            BinOp::Div,
            c(Value::int(1)),
            bin(BinOp::Sub, c(Value::int(2)), c(Value::int(2))),
        );
        let err = eval_scalar(&e, &[]).unwrap_err();
        assert!(matches!(err.kind, ScalarErrorKind::DivisionByZero { .. }));
        let neg = Expr::Unary(UnOp::Neg, Box::new(c(Value::int(i64::MIN))));
        assert!(eval_scalar(&neg, &[]).is_err());
        let abs = Expr::Call(Builtin::Abs, vec![c(Value::int(i64::MIN))]);
        assert!(eval_scalar(&abs, &[]).is_err());
    }

    #[test]
    fn type_errors_name_the_values_and_the_place() {
        // if p0 then 1 else (p0 + 1): the failing `+` is at path [2].
        let e = Expr::If(
            Box::new(bin(BinOp::Eq, Expr::Param(0), c(Value::sym("a")))),
            Box::new(c(Value::int(1))),
            Box::new(bin(BinOp::Add, Expr::Param(0), c(Value::int(1)))),
        );
        assert_eq!(eval_scalar(&e, &[Value::sym("a")]), Ok(Value::int(1)));
        let err = eval_scalar(&e, &[Value::sym("b")]).unwrap_err();
        assert_eq!(err.path, vec![2]);
        assert_eq!(
            err.to_string(),
            "`+` needs two numbers, found b (a symbol) and 1 (a number)"
        );
    }

    #[test]
    fn equality_with_none_and_ordering_of_symbols() {
        let eq = bin(BinOp::Eq, Expr::Param(0), c(Value::None));
        assert_eq!(eval_expr(&eq, &[Value::int(3)]), Ok(Value::Bool(false)));
        assert_eq!(eval_expr(&eq, &[Value::None]), Ok(Value::Bool(true)));
        let lt = bin(BinOp::Lt, c(Value::sym("a")), c(Value::sym("b")));
        assert_eq!(eval_expr(&lt, &[]), Ok(Value::Bool(true)));
        let bad = bin(BinOp::Eq, c(Value::sym("a")), c(Value::int(1)));
        assert!(eval_expr(&bad, &[]).is_err());
        let bad = bin(BinOp::Lt, c(Value::None), c(Value::int(1)));
        assert!(eval_expr(&bad, &[]).is_err());
    }

    #[test]
    fn and_or_short_circuit() {
        let div0 = bin(
            BinOp::Gt,
            bin(BinOp::Div, c(Value::int(1)), Expr::Param(0)),
            c(Value::int(0)),
        );
        let guarded = bin(
            BinOp::And,
            bin(BinOp::Ne, Expr::Param(0), c(Value::int(0))),
            div0,
        );
        assert_eq!(
            eval_expr(&guarded, &[Value::int(0)]),
            Ok(Value::Bool(false))
        );
        assert_eq!(eval_expr(&guarded, &[Value::int(2)]), Ok(Value::Bool(true)));
    }

    #[test]
    fn adapters() {
        let clamp = Adapter::Clamp { lo: 0, hi: 10 };
        assert_eq!(clamp.apply(&Value::int(12)), Value::int(10));
        assert_eq!(clamp.apply(&Value::int(-3)), Value::int(0));
        let m = Adapter::Modulo { lo: 0, n: 11 };
        assert_eq!(m.apply(&Value::int(12)), Value::int(1));
        assert_eq!(m.apply(&Value::int(-1)), Value::int(10));
        let m = Adapter::Modulo {
            lo: i64::MIN,
            n: i64::MAX,
        };
        // (i64::MAX - i64::MIN) = 2^64 - 1 overflows i64; mod 2^63 - 1 it is 1.
        assert_eq!(m.apply(&Value::int(i64::MAX)), Value::int(i64::MIN + 1));
        assert_eq!(m.apply(&Value::int(i64::MIN)), Value::int(i64::MIN));
    }

    fn spec(src: &str) -> Spec {
        crate::lang::check_str("t.interp", src).unwrap_or_else(|r| panic!("{}", r.render_plain()))
    }

    fn syms(s: &str) -> Vec<Value> {
        s.split_whitespace().map(Value::sym).collect()
    }

    #[test]
    fn reverse_with_intermediate_values() {
        let sp = spec(
            "task reverse { vocab {a, b, c} max_len 4 }
interpretation r for reverse {
  length = selector_width(select(tokens, tokens, true))
  opp    = map2(|n, i| n - i - 1, length, indices)
  flip   = select(indices, opp, ==)
  output   aggregate(flip, tokens)
}",
        );
        let p = &sp.programs["r"];
        let t = eval_program(p, &syms("a b c")).unwrap();
        assert_eq!(t.output(), syms("c b a").as_slice());
        assert_eq!(
            t.var(p, "length"),
            Some(&NodeValue::Seq(vec![Value::int(3); 3]))
        );
        let Some(NodeValue::Selector(m)) = t.var(p, "flip") else {
            panic!()
        };
        assert!(m.get(0, 2) && !m.get(0, 0));
        assert!(matches!(
            eval_program(p, &[]),
            Err(EvalError::EmptyInput { .. })
        ));
        assert!(matches!(
            eval_program(p, &syms("a b c a b")),
            Err(EvalError::TooLong { .. })
        ));
        assert!(matches!(
            eval_program(p, &syms("a z")),
            Err(EvalError::NotInVocab { position: 1, .. })
        ));
    }

    #[test]
    fn ambiguous_categorical_aggregate_is_an_error() {
        let sp = spec(
            "task t { vocab {a, b} max_len 3 }
interpretation i for t { output aggregate(select(tokens, tokens, ==), indices) }",
        );
        let p = &sp.programs["i"];
        assert_eq!(
            eval_output(p, &syms("a b")).unwrap(),
            vec![Value::int(0), Value::int(1)]
        );
        let err = eval_output(p, &syms("a b a")).unwrap_err();
        assert_eq!(
            err,
            EvalError::AmbiguousAggregate {
                node: "output".into(),
                query: 0,
                selected: vec![0, 2]
            }
        );
    }

    #[test]
    fn numerical_aggregate_is_an_exact_mean() {
        let sp = spec(
            "task f { vocab {w, x} max_len 6 }
interpretation frac for f {
  bools = numerical map(|t| if t == x then 1 else 0, tokens)
  output numerical aggregate(select(indices, indices, <=), bools)
}",
        );
        let out = eval_output(&sp.programs["frac"], &syms("x w w x")).unwrap();
        assert_eq!(out, vec![r(1, 1), r(1, 2), r(1, 3), r(1, 2)]);
    }

    #[test]
    fn pipelines_apply_adapters_between_stages() {
        let sp = spec(
            "task a { vocab {0..=3} max_len 3 }
task b { vocab {0..=3} max_len 3 }
interpretation inc for a { output map(|x| x + 1, tokens) }
interpretation dbl for b { output map(|x| x * 2, tokens) }
pipeline p = inc |> dbl via modulo",
        );
        let ints = |v: &[i64]| v.iter().map(|i| Value::int(*i)).collect::<Vec<_>>();
        let t = eval_pipeline(&sp, &sp.pipelines["p"], &ints(&[0, 3, 2])).unwrap();
        assert_eq!(t.stage_inputs[1], ints(&[1, 0, 3]));
        assert_eq!(t.output(), ints(&[2, 0, 6]).as_slice());
    }

    #[test]
    fn output_text_and_json() {
        assert_eq!(value_text(&r(1, 4)), "0.25");
        assert_eq!(value_text(&r(-1, 8)), "-0.125");
        assert_eq!(value_text(&r(-5, 2)), "-2.5");
        assert_eq!(value_text(&r(1, 3)), "1/3");
        assert_eq!(value_text(&Value::int(-7)), "-7");
        assert_eq!(value_text(&Value::sym("(")), "(");
        assert_eq!(value_text(&Value::None), "none");
        assert_eq!(value_json(&r(1, 4)), serde_json::json!(0.25));
        assert_eq!(value_json(&Value::int(3)), serde_json::json!(3));
        assert_eq!(value_json(&Value::None), serde_json::Value::Null);
        assert_eq!(value_json(&Value::sym("a")), serde_json::json!("a"));
    }
}
