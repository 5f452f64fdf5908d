//! The checked, typed intermediate representation every later stage consumes.
//!
//! `lang::check` turns the AST into a [`Spec`]; `eval`, `compile` and `smt` read only this IR,
//! never the AST. An interpretation is a [`Program`]: a DAG of sequence and selector operations in
//! topological order (every operand id is smaller than the node's own id), each sequence node
//! annotated with its encoding and the exact set of values it can take on the task's bounded
//! domain. Lambdas are resolved: parameters are positional, symbols are constants.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use num_rational::Rational64;
use serde::Serialize;

/// A scalar value of the language. Numbers are exact rationals (integers have denominator 1).
///
/// The derived order (variant first, then content) is the canonical order of value sets; within
/// numbers it is numeric order and within symbols it is string order, which is also what `<`
/// means on values of the same kind.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// An empty categorical aggregate's result (tracr's `None`); maps of `None` stay `None`.
    None,
    Bool(bool),
    Num(Rational64),
    Sym(Arc<str>),
}

impl Value {
    pub fn int(i: i64) -> Value {
        Value::Num(Rational64::from_integer(i))
    }

    pub fn sym(s: &str) -> Value {
        Value::Sym(Arc::from(s))
    }

    /// The integer value, when this is a number with denominator 1.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Num(r) if r.is_integer() => Some(r.to_integer()),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// The surface syntax: `none`, `true`, `3`, `1/3`, `a`; symbols that are not identifiers are
    /// quoted (`"("`) so the text reads back as the same token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => f.write_str("none"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Num(r) if r.is_integer() => write!(f, "{}", r.to_integer()),
            Value::Num(r) => write!(f, "{}/{}", r.numer(), r.denom()),
            Value::Sym(s) => {
                let bare = s
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if bare {
                    f.write_str(s)
                } else {
                    write!(f, "{s:?}")
                }
            }
        }
    }
}

/// The exact set of values a sequence can hold at some position, on some input of the domain.
pub type ValueSet = BTreeSet<Value>;

/// How a sequence is laid out in a residual stream (tracr's encodings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// One direction per value (one-hot).
    Categorical,
    /// One direction whose magnitude is the (numeric) value.
    Numerical,
}

/// Index of a node in its [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct NodeId(pub usize);

/// Where a construct was written: file and byte range, for diagnostics in later stages.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SourceRef {
    pub file: Arc<PathBuf>,
    pub start: usize,
    pub end: usize,
}

/// The comparison predicates of `select` (tracr's `Comparison`), applied as `pred(key, query)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Comparison {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    True,
    False,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    /// Exact rational division; dividing by zero is an evaluation error.
    Div,
    /// Euclidean remainder on integers (result has the sign of the divisor's absolute value: >= 0).
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    Min,
    Max,
    Abs,
}

/// A resolved scalar expression, the body of a lambda.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expr {
    Const(Value),
    /// The lambda's parameter at this position.
    Param(usize),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Call(Builtin, Vec<Expr>),
}

/// `|p0, p1, ...| body`; `params` keeps the written names for printing and diagnostics.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lambda {
    pub params: Vec<String>,
    pub body: Expr,
}

/// A `select` predicate: a comparison or a two-argument lambda `|key, query| ...`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Predicate {
    Cmp(Comparison),
    Lambda(Lambda),
}

/// One RASP operation. Operands are earlier nodes of the same graph.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Tokens,
    Indices,
    /// A constant sequence (tracr's `Full`).
    Full(Value),
    Map {
        f: Lambda,
        arg: NodeId,
    },
    /// tracr's `SequenceMap`.
    Map2 {
        f: Lambda,
        a: NodeId,
        b: NodeId,
    },
    Select {
        keys: NodeId,
        queries: NodeId,
        pred: Predicate,
    },
    SelectAnd(NodeId, NodeId),
    SelectOr(NodeId, NodeId),
    SelectNot(NodeId),
    SelectorWidth(NodeId),
    /// Categorical: the single selected value (none when nothing is selected; selecting two
    /// positions is ill-formed). Numerical: the exact mean of the selected values (0 when empty).
    Aggregate {
        selector: NodeId,
        values: NodeId,
    },
}

impl Op {
    /// The nodes this operation reads, in operand order.
    pub fn operands(&self) -> Vec<NodeId> {
        match self {
            Op::Tokens | Op::Indices | Op::Full(_) => vec![],
            Op::Map { arg, .. } => vec![*arg],
            Op::Map2 { a, b, .. } => vec![*a, *b],
            Op::Select { keys, queries, .. } => vec![*keys, *queries],
            Op::SelectAnd(a, b) | Op::SelectOr(a, b) => vec![*a, *b],
            Op::SelectNot(a) | Op::SelectorWidth(a) => vec![*a],
            Op::Aggregate { selector, values } => vec![*selector, *values],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeType {
    Seq {
        encoding: Encoding,
        values: ValueSet,
    },
    Selector,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The variable name the spec gave it (`output` for the output), if any.
    pub name: Option<String>,
    pub op: Op,
    pub ty: NodeType,
    pub source: Option<SourceRef>,
}

/// A DAG of operations in topological order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Graph {
    pub nodes: Vec<Node>,
}

impl Graph {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// The node a variable name refers to.
    pub fn by_name(&self, name: &str) -> Option<NodeId> {
        self.nodes
            .iter()
            .position(|n| n.name.as_deref() == Some(name))
            .map(NodeId)
    }
}

/// A task: the bounded input domain, vocab^n for n in 1..=max_len, optionally restricted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub name: String,
    /// Sorted, distinct.
    pub vocab: Vec<Value>,
    pub max_len: usize,
    /// A boolean sequence over the input; an input is in the domain iff it is `true` at every
    /// position.
    pub restriction: Option<(Graph, NodeId)>,
    pub source: Option<SourceRef>,
}

/// A checked interpretation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub name: String,
    pub task: Arc<Task>,
    pub graph: Graph,
    pub output: NodeId,
    pub source: Option<SourceRef>,
}

impl Program {
    /// A content hash of everything the program computes: its graph, output and task (vocabulary,
    /// length, restriction), without where they were written. Two programs with the same
    /// fingerprint compile to the same weights; moving or re-commenting the spec keeps it.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        fn strip(g: &Graph) -> Graph {
            let mut g = g.clone();
            for n in &mut g.nodes {
                n.source = None;
            }
            g
        }
        let task = Task {
            name: self.task.name.clone(),
            vocab: self.task.vocab.clone(),
            max_len: self.task.max_len,
            restriction: self
                .task
                .restriction
                .as_ref()
                .map(|(g, out)| (strip(g), *out)),
            source: None,
        };
        let text = format!(
            "{:?}\n{:?}\n{:?}\n{:?}",
            self.name,
            task,
            strip(&self.graph),
            self.output
        );
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The node a variable name refers to; `output` is the output node, whatever its own name
    /// (an output that is a variable, `output x`, keeps the name `x`).
    pub fn variable(&self, name: &str) -> Option<NodeId> {
        if name == "output" {
            Some(self.output)
        } else {
            self.graph.by_name(name)
        }
    }
}

/// How a pipeline stage maps the previous stage's output values into its own vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// Integers below / above the vocabulary's integer range become its min / max.
    Clamp { lo: i64, hi: i64 },
    /// `lo + (v - lo) mod n` into the contiguous integer vocabulary lo..lo+n.
    Modulo { lo: i64, n: i64 },
    /// An explicit table; values already in the vocabulary and absent from the table pass through.
    Table(BTreeMap<Value, Value>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineStage {
    /// The interpretation run at this stage (a key of [`Spec::programs`]).
    pub program: String,
    /// Maps the previous stage's outputs into this stage's vocabulary; `None` for the first stage
    /// and where every previous output value already is a token of this stage.
    pub adapter: Option<Adapter>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipeline {
    pub name: String,
    pub stages: Vec<PipelineStage>,
    pub source: Option<SourceRef>,
}

/// A TransformerLens hook point, optionally one head of it (`blocks.1.attn.hook_z[0]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HookRef {
    pub hook: String,
    pub head: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitSite {
    /// The interpretation variable (`output` for the output).
    pub variable: String,
    pub node: NodeId,
    pub hooks: Vec<HookRef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Circuit {
    pub name: String,
    pub program: String,
    pub sites: Vec<CircuitSite>,
    pub source: Option<SourceRef>,
}

/// The bound a numeric expectation's figure is held to.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Bound {
    /// `>= 0.95`, `> x`, `<= x`, `< x` (`==` and `!=` are refused: a figure is compared with a
    /// tolerance, `~= x +- t`).
    Cmp { cmp: Comparison, value: f64 },
    /// `~= 0.93 +- 0.02`: the figure lies in `[value - tolerance, value + tolerance]`.
    Approx { value: f64, tolerance: f64 },
}

impl Bound {
    /// Whether `x` satisfies the bound.
    pub fn holds(&self, x: f64) -> bool {
        match *self {
            Bound::Cmp { cmp, value } => match cmp {
                Comparison::Ge => x >= value,
                Comparison::Gt => x > value,
                Comparison::Le => x <= value,
                Comparison::Lt => x < value,
                Comparison::Eq => x == value,
                Comparison::Ne => x != value,
                Comparison::True => true,
                Comparison::False => false,
            },
            Bound::Approx { value, tolerance } => (x - value).abs() <= tolerance,
        }
    }

    /// The interval of figures that satisfy the bound, `[lo, hi]` (open ends as infinities).
    pub fn range(&self) -> (f64, f64) {
        match *self {
            Bound::Cmp { cmp, value } => match cmp {
                Comparison::Ge | Comparison::Gt => (value, f64::INFINITY),
                Comparison::Le | Comparison::Lt => (f64::NEG_INFINITY, value),
                _ => (value, value),
            },
            Bound::Approx { value, tolerance } => (value - tolerance, value + tolerance),
        }
    }
}

/// One `expect` of a check.
#[derive(Clone, Debug, PartialEq)]
pub enum Expectation {
    /// `expect implements(I)`: the model's decoded outputs equal I's on the domain.
    Implements(String),
    /// `expect accuracy(I) >= 0.99`: the fraction of inputs whose decoded output equals I's.
    Accuracy { program: String, bound: Bound },
    /// `expect congruent(I)`: the model shares interpretation I rather than the compared ones.
    Congruent(String),
    /// `expect distinguishable(I1, I2)`: the estimator tells the two interpretations apart.
    Distinguishable(String, String),
    /// `expect indistinguishable(I1, I2)`: it does not, by more than the tolerance ε.
    Indistinguishable(String, String),
    /// `expect iia(circuit) >= 0.95`.
    Iia { circuit: String, bound: Bound },
    /// `expect faithful(C, resample) >= 0.99`: everything outside the circuit's sites ablated
    /// (`zero`, `mean` or `resample`, the default), the fraction of inputs whose output is the
    /// full model's.
    Faithful {
        circuit: String,
        ablation: String,
        bound: Bound,
    },
    /// `expect minimal(C) >= 0.01`: the smallest loss of faithfulness when one more site of the
    /// circuit is ablated.
    Minimal {
        circuit: String,
        ablation: String,
        bound: Bound,
    },
    /// `expect similarity(cka:linear, I) >= 0.9`: the model vs the compiled I. The measure is
    /// kept as written; the harness parses it.
    Similarity {
        measure: String,
        program: String,
        bound: Bound,
    },
}

/// An expectation with the text it was written as (canonical spacing) and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    pub goal: Expectation,
    /// `iia(tracr_reverse_compiled) >= 0.95`, as `fmt` prints it.
    pub text: String,
    pub source: Option<SourceRef>,
}

/// What a check runs its model expectations on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelRef {
    /// A model directory, relative to the spec file's directory as written.
    Dir(PathBuf),
    /// `compiled(I)` / `compiled(I, seed S)`: the harness compiles I (the seed is the compiler's
    /// domain-check seed).
    Compiled { program: String, seed: Option<u64> },
}

/// Where a check's implementations come from: `samples N family compiled` (the default:
/// compiled models varied by function-preserving maps) or `family trained` (trained by strict
/// interchange-intervention training on the compiled layout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImplementationFamily {
    #[default]
    Compiled,
    Trained,
}

impl ImplementationFamily {
    pub fn name(self) -> &'static str {
        match self {
            ImplementationFamily::Compiled => "compiled",
            ImplementationFamily::Trained => "trained",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub name: String,
    pub model: Option<ModelRef>,
    /// Where the `model` field is written (for errors about the model).
    pub model_source: Option<SourceRef>,
    pub compare: Vec<String>,
    pub samples: Option<u64>,
    pub family: ImplementationFamily,
    pub seed: Option<u64>,
    /// The fit gap every distinguishable / congruent verdict of the check needs besides its
    /// interval; `None`: derived from the data (see `equivalence::Epsilon`).
    pub epsilon: Option<f64>,
    pub expectations: Vec<Expect>,
    pub source: Option<SourceRef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofGoal {
    /// Outputs equal those of a reference interpretation on every input of the domain.
    Implements {
        program: String,
        reference: String,
    },
    Equivalent {
        a: String,
        b: String,
    },
    /// Named intermediate variables equal on every input: pairs of (variable in a, variable in b).
    Aligned {
        a: String,
        b: String,
        pairs: Vec<(String, String)>,
    },
    /// Inputs that agree on every variable the circuit names agree on the output.
    Sufficient {
        circuit: String,
    },
    /// Every categorical aggregate selects at most one position; no division by zero.
    WellFormed {
        program: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Proof {
    /// As written (`prove name: ...`), or derived from the goal (`equivalent_a_b`).
    pub name: String,
    pub goal: ProofGoal,
    pub timeout_secs: Option<f64>,
    pub source: Option<SourceRef>,
}

/// Everything a spec file (and its imports) declares, checked.
#[derive(Clone, Debug, Default)]
pub struct Spec {
    pub tasks: BTreeMap<String, Arc<Task>>,
    pub programs: BTreeMap<String, Program>,
    pub pipelines: BTreeMap<String, Pipeline>,
    pub circuits: BTreeMap<String, Circuit>,
    pub checks: BTreeMap<String, Check>,
    pub proofs: Vec<Proof>,
}

impl Spec {
    /// Loads and checks a spec file and its imports (see [`crate::lang::load`]).
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Spec, crate::lang::Report> {
        crate::lang::load(path)
    }

    /// Every file an item of the spec was written in (the root file and the imports that
    /// contribute items), sorted: what an output must never replace.
    pub fn source_files(&self) -> Vec<PathBuf> {
        let refs = self
            .tasks
            .values()
            .map(|t| &t.source)
            .chain(self.programs.values().map(|p| &p.source))
            .chain(self.pipelines.values().map(|p| &p.source))
            .chain(self.circuits.values().map(|c| &c.source))
            .chain(self.checks.values().map(|c| &c.source))
            .chain(self.proofs.iter().map(|p| &p.source));
        let files: std::collections::BTreeSet<PathBuf> =
            refs.flatten().map(|r| r.file.as_ref().clone()).collect();
        files.into_iter().collect()
    }
}
