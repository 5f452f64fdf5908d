//! The vocabulary of stage 3: residual directions by meaning, and the per-operation blocks
//! (attention heads, MLP unit groups, embedding writes) written against them.
//!
//! Blocks never see column numbers: they read and write typed directions ([`Dir`]); the layout
//! (stage 2 of the output, see `layout.rs`) turns directions into columns at assembly. That keeps
//! every block testable on its own and lets the sampler re-place blocks freely.

use num_rational::Rational64;

use crate::lang::ir::{Lambda, NodeId, Value};

/// A residual-stream direction, by meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    /// 1 at every position (tracr's `one`).
    One,
    /// 1 at the BOS position only (`tokens:BOS`).
    Bos,
    /// Categorical node value `i` (index into the node's sorted non-`none` values).
    Val(NodeId, usize),
    /// A numerical node's single direction.
    Num(NodeId),
    /// A selector width's attention output `1/(w+1)`, read only by its decoding MLP.
    SwAux(NodeId),
}

/// A sparse vector over directions.
pub type Sparse = Vec<(Dir, f64)>;

/// One attention head, in the residual basis. Scores are `q·k` with `W_Q` multiplied by the
/// softmax coldness at assembly; `qk[j]` is (W_Q column j, W_K column j), `ov[j]` is (W_V column
/// j, W_O row j).
#[derive(Clone, Debug, PartialEq)]
pub struct HeadBlock {
    /// The aggregate or selector-width node this head computes.
    pub node: NodeId,
    pub kind: HeadKind,
    pub qk: Vec<(Sparse, Sparse)>,
    pub ov: Vec<(Sparse, Sparse)>,
    /// The nodes the head reads (query/key leaves, aggregated values).
    pub reads: Vec<NodeId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadKind {
    CategoricalAggregate,
    NumericalAggregate,
    SelectorWidth,
}

impl HeadBlock {
    pub fn d_head(&self) -> usize {
        self.qk.len().max(self.ov.len()).max(1)
    }
}

/// One MLP hidden unit: `relu(input · x) * output` (no bias: constants come from `Dir::One`).
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    pub input: Sparse,
    pub output: Sparse,
}

/// What an MLP group reads.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceKind {
    /// A categorical node's one-hot block (all-zero = `none`).
    Categorical { values: Vec<Value>, has_none: bool },
    /// A single direction holding one of finitely many numbers.
    Numerical {
        dir: Dir,
        points: Vec<Rational64>,
        /// What the direction holds at the BOS position, where every unit must stay silent.
        bos: BosValue,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BosValue {
    /// Zero (numerical nodes are zero at BOS by construction).
    Zero,
    /// Somewhere in `[lo, hi]` (a selector width's attention output).
    Within(Rational64, Rational64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    pub node: NodeId,
    pub kind: SourceKind,
}

/// How a group target's value follows from the group's sources.
#[derive(Clone, Debug, PartialEq)]
pub enum Recipe {
    Source(usize),
    Apply(Lambda, Vec<Recipe>),
    /// Decodes a selector-width attention output `x = 1/(w+1)` into `w`.
    Width(usize),
    /// The pair of two sources' values (a compiler-made product sequence, see `selector.rs`).
    Pair(usize, usize),
}

/// A node an MLP group computes.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub node: NodeId,
    pub recipe: Recipe,
    /// Whether the group writes it to the residual stream (fused intermediates are not).
    pub materialized: bool,
}

/// A set of nodes computed by one set of MLP hidden units from at most two sources (maps fused
/// along chains share the units).
#[derive(Clone, Debug, PartialEq)]
pub struct MlpGroup {
    pub sources: Vec<Source>,
    pub targets: Vec<Target>,
    pub units: Vec<Unit>,
    /// Which construction produced the units (for reports).
    pub strategy: &'static str,
}

/// How an input-only node is written by the embeddings.
#[derive(Clone, Debug, PartialEq)]
pub enum EmbedFn {
    /// The same value at every non-BOS position.
    Const(Value),
    /// A function of the token: value per vocabulary index.
    Token(Vec<Value>),
    /// A function of the position: value per index `0..max_len`.
    Index(Vec<Value>),
}
