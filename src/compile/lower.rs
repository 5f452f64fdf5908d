//! Stage 3 — lowering: every sequence node becomes an embedding write, an attention head or a
//! target of an MLP group; selectors are folded into the heads that use them.
//!
//! Decisions made here, each measurable in the shape table:
//!
//! * **Embedding folding.** A node that depends on the tokens only (or the positions only, or
//!   nothing) — `tokens`, `indices`, `full(v)` and maps of those — is written directly by the
//!   token (position) embedding: no MLP layer is spent on `map(|t| t == x, tokens)`.
//! * **Map fusion.** A map whose argument is computed by an MLP group is added to that group as
//!   another target when that saves a layer and costs no more hidden units than computing it on
//!   its own would: the group's units already separate the source values, so e.g. `opp - 1`
//!   after `length - indices`, or `-1 * hist` after a selector width's decoding, is free. Fused
//!   intermediates are written to the residual stream only when named, read elsewhere, or the
//!   output.
//! * **Shared MLP layers.** Groups placed at the same MLP sub-layer share it (their units are
//!   concatenated at assembly), so independent maps at the same depth cost one layer.

use std::collections::BTreeMap;

use num_rational::Rational64;

use super::blocks::{
    BosValue, Dir, EmbedFn, HeadBlock, HeadKind, MlpGroup, Recipe, Source, SourceKind, Target,
};
use super::error::CompileError;
use super::mlp::pair_value;
use super::mlp::{TargetSpec, build_units, product_cost};
use super::scalar::apply;
use super::selector::{
    Bilinear, ProductSide, Use, compile_product_selector, compile_selector, leaves,
};
use super::values::{SeqInfo, ValueInfo, selector_width_points};
use crate::lang::ir::{Lambda, NodeId, NodeType, Op, Program, Value};

/// Options that change the compiled architecture (all default on).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LowerOptions {
    pub fold_embeddings: bool,
    pub fuse_maps: bool,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions {
            fold_embeddings: true,
            fuse_maps: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum OpBlock {
    Head(HeadBlock),
    Mlp(MlpGroup),
}

impl OpBlock {
    pub fn is_attention(&self) -> bool {
        matches!(self, OpBlock::Head(_))
    }

    /// The nodes this block computes (heads: one; groups: every target).
    pub fn nodes(&self) -> Vec<NodeId> {
        match self {
            OpBlock::Head(h) => vec![h.node],
            OpBlock::Mlp(g) => g.targets.iter().map(|t| t.node).collect(),
        }
    }
}

/// One operation of the lowered program.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanOp {
    pub block: OpBlock,
    /// Operations whose outputs this one reads.
    pub deps: Vec<usize>,
}

/// Who writes a node to the residual stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Producer {
    Embedding,
    Op(usize),
    /// Selectors live only inside attention scores.
    Selector,
}

/// The lowered program: blocks in direction space, not yet placed in layers.
#[derive(Clone, Debug)]
pub struct Plan {
    pub program: String,
    pub vocab: Vec<Value>,
    pub max_len: usize,
    pub info: ValueInfo,
    pub embeds: BTreeMap<NodeId, EmbedFn>,
    pub ops: Vec<PlanOp>,
    pub producer: Vec<Producer>,
    pub materialized: Vec<bool>,
    pub output: NodeId,
}

fn next_even(t: i64) -> i64 {
    if (t + 1) % 2 == 0 { t + 1 } else { t + 2 }
}

fn next_odd(t: i64) -> i64 {
    if (t + 1).rem_euclid(2) == 1 {
        t + 1
    } else {
        t + 2
    }
}

struct Lowerer<'a> {
    program: &'a Program,
    /// Grows with the product sequences the compiler adds for composed selectors.
    info: ValueInfo,
    products: BTreeMap<(NodeId, NodeId), NodeId>,
    opts: LowerOptions,
    producer: Vec<Producer>,
    embeds: BTreeMap<NodeId, EmbedFn>,
    ops: Vec<PlanOp>,
    /// ASAP time of each op: attention sub-layer of layer l = 2l, MLP = 2l + 1.
    time: Vec<i64>,
    /// The group computing each map / selector-width node.
    group_of: BTreeMap<NodeId, usize>,
}

impl<'a> Lowerer<'a> {
    fn unsupported(
        &self,
        node: NodeId,
        reason: impl Into<String>,
        help: Option<String>,
    ) -> CompileError {
        CompileError::Unsupported {
            program: self.program.name.clone(),
            node: self.info.labels[node.0].clone(),
            reason: reason.into(),
            help,
        }
    }

    fn avail(&self, n: NodeId) -> i64 {
        match self.producer[n.0] {
            Producer::Embedding | Producer::Selector => -1,
            Producer::Op(i) => self.time[i],
        }
    }

    fn seq(&self, n: NodeId) -> Result<&SeqInfo, CompileError> {
        self.info.seq(n).ok_or_else(|| {
            CompileError::internal(
                &self.program.name,
                format!("node {} is not a sequence", n.0),
            )
        })
    }

    fn source_of(&self, n: NodeId) -> Result<Source, CompileError> {
        Ok(Source {
            node: n,
            kind: match self.seq(n)? {
                SeqInfo::Categorical { values, has_none } => SourceKind::Categorical {
                    values: values.clone(),
                    has_none: *has_none,
                },
                SeqInfo::Numerical { points } => SourceKind::Numerical {
                    dir: Dir::Num(n),
                    points: points.clone(),
                    bos: BosValue::Zero,
                },
            },
        })
    }

    fn deps_of(&self, nodes: impl IntoIterator<Item = NodeId>) -> Vec<usize> {
        let mut d: Vec<usize> = nodes
            .into_iter()
            .filter_map(|n| match self.producer[n.0] {
                Producer::Op(i) => Some(i),
                _ => None,
            })
            .collect();
        d.sort();
        d.dedup();
        d
    }

    fn push(&mut self, block: OpBlock, deps: Vec<usize>, time: i64) -> usize {
        self.ops.push(PlanOp { block, deps });
        self.time.push(time);
        self.ops.len() - 1
    }

    fn target_specs(&self, targets: &[Target]) -> Result<Vec<TargetSpec>, CompileError> {
        targets
            .iter()
            .map(|t| {
                Ok(TargetSpec {
                    node: t.node,
                    info: self.seq(t.node)?.clone(),
                    recipe: t.recipe.clone(),
                    materialized: t.materialized,
                })
            })
            .collect()
    }

    fn units_for(
        &self,
        node: NodeId,
        sources: &[Source],
        targets: &[Target],
    ) -> Result<MlpGroup, CompileError> {
        let specs = self.target_specs(targets)?;
        let (units, strategy) =
            build_units(sources, &specs).map_err(|reason| CompileError::NoMlp {
                program: self.program.name.clone(),
                node: self.info.labels[node.0].clone(),
                reason: Box::new(reason),
            })?;
        Ok(MlpGroup {
            sources: sources.to_vec(),
            targets: targets.to_vec(),
            units,
            strategy,
        })
    }

    /// Folds a map of input-only arguments into the embeddings, when possible.
    fn fold(&self, f: &Lambda, args: &[NodeId]) -> Option<EmbedFn> {
        let fns: Vec<&EmbedFn> = args
            .iter()
            .map(|a| self.embeds.get(a))
            .collect::<Option<_>>()?;
        let token = fns.iter().any(|e| matches!(e, EmbedFn::Token(_)));
        let index = fns.iter().any(|e| matches!(e, EmbedFn::Index(_)));
        let at = |e: &EmbedFn, i: usize| -> Value {
            match e {
                EmbedFn::Const(v) => v.clone(),
                EmbedFn::Token(vs) | EmbedFn::Index(vs) => vs[i].clone(),
            }
        };
        // A failing cell is a token/position whose inputs the evaluator rejects; the domain check
        // reports reachable ones, so it is written as `none` here.
        let eval = |i: usize| {
            apply(f, &fns.iter().map(|e| at(e, i)).collect::<Vec<_>>()).unwrap_or(Value::None)
        };
        match (token, index) {
            (true, true) => None,
            (true, false) => Some(EmbedFn::Token(
                (0..self.program.task.vocab.len()).map(eval).collect(),
            )),
            (false, true) => Some(EmbedFn::Index(
                (0..self.program.task.max_len).map(eval).collect(),
            )),
            (false, false) => Some(EmbedFn::Const(eval(0))),
        }
    }

    fn lower_map(&mut self, id: NodeId, f: &Lambda, args: &[NodeId]) -> Result<(), CompileError> {
        if self.opts.fold_embeddings
            && let Some(e) = self.fold(f, args)
        {
            self.embeds.insert(id, e);
            self.producer[id.0] = Producer::Embedding;
            return Ok(());
        }
        let mut distinct: Vec<NodeId> = args.to_vec();
        distinct.dedup();
        let sources: Vec<Source> = distinct
            .iter()
            .map(|a| self.source_of(*a))
            .collect::<Result<_, _>>()?;
        let recipe = Recipe::Apply(
            f.clone(),
            args.iter()
                .map(|a| Recipe::Source(distinct.iter().position(|d| d == a).unwrap_or(0)))
                .collect(),
        );
        let target = Target {
            node: id,
            recipe,
            materialized: true,
        };
        let standalone = self.units_for(id, &sources, std::slice::from_ref(&target));
        let t_alone = next_odd(args.iter().map(|a| self.avail(*a)).max().unwrap_or(-1));

        if self.opts.fuse_maps {
            let budget = product_cost(&sources).max(
                standalone
                    .as_ref()
                    .map(|g| g.units.len())
                    .unwrap_or(usize::MAX),
            );
            let mut groups: Vec<usize> = args
                .iter()
                .filter_map(|a| self.group_of.get(a).copied())
                .collect();
            groups.sort();
            groups.dedup();
            for g in groups {
                if let Some(fused) = self.try_fuse(id, f, args, g, budget)? {
                    let new_sources: Vec<NodeId> = fused.sources.iter().map(|s| s.node).collect();
                    let mut deps = self.ops[g].deps.clone();
                    deps.extend(self.deps_of(new_sources.iter().copied().filter(|n| *n != id)));
                    deps.retain(|d| *d != g);
                    deps.sort();
                    deps.dedup();
                    self.ops[g] = PlanOp {
                        block: OpBlock::Mlp(fused),
                        deps,
                    };
                    self.group_of.insert(id, g);
                    self.producer[id.0] = Producer::Op(g);
                    return Ok(());
                }
            }
        }
        let group = standalone?;
        let deps = self.deps_of(distinct.iter().copied());
        let op = self.push(OpBlock::Mlp(group), deps, t_alone);
        self.group_of.insert(id, op);
        self.producer[id.0] = Producer::Op(op);
        Ok(())
    }

    /// `id = f(args)` computed inside group `g` (which computes at least one of the args).
    fn try_fuse(
        &self,
        id: NodeId,
        f: &Lambda,
        args: &[NodeId],
        g: usize,
        budget: usize,
    ) -> Result<Option<MlpGroup>, CompileError> {
        let OpBlock::Mlp(group) = &self.ops[g].block else {
            return Ok(None);
        };
        let t_g = self.time[g];
        let mut sources = group.sources.clone();
        let mut arg_recipes = Vec::new();
        for a in args {
            if let Some(t) = group.targets.iter().find(|t| t.node == *a) {
                arg_recipes.push(t.recipe.clone());
                continue;
            }
            let pos = sources.iter().position(|s| {
                s.node == *a
                    && !matches!(
                        s.kind,
                        SourceKind::Numerical {
                            dir: Dir::SwAux(_),
                            ..
                        }
                    )
            });
            let idx = match pos {
                Some(i) => i,
                None => {
                    if self.avail(*a) >= t_g {
                        return Ok(None);
                    }
                    sources.push(self.source_of(*a)?);
                    sources.len() - 1
                }
            };
            arg_recipes.push(Recipe::Source(idx));
        }
        if sources.len() > 2 {
            return Ok(None);
        }
        let mut targets = group.targets.clone();
        targets.push(Target {
            node: id,
            recipe: Recipe::Apply(f.clone(), arg_recipes),
            materialized: true,
        });
        let specs = self.target_specs(&targets)?;
        let Ok((units, strategy)) = build_units(&sources, &specs) else {
            return Ok(None);
        };
        if units.len() > group.units.len() + budget {
            return Ok(None);
        }
        Ok(Some(MlpGroup {
            sources,
            targets,
            units,
            strategy,
        }))
    }

    /// The score of a head's selector: one bilinear form when the selector's leaves combine
    /// exactly; otherwise one truth table over product sequences built by an MLP first.
    fn head_selector(
        &mut self,
        id: NodeId,
        selector: NodeId,
        usage: Use,
        bos: Rational64,
    ) -> Result<Bilinear, CompileError> {
        match compile_selector(self.program, &self.info, selector, usage, bos) {
            Ok(bl) => Ok(bl),
            Err(e) if e.product => {
                let leaves = leaves(self.program, selector);
                let keys = self.product_side(id, leaves.iter().map(|l| l.0).collect())?;
                let queries = self.product_side(id, leaves.iter().map(|l| l.1).collect())?;
                Ok(compile_product_selector(
                    self.program,
                    selector,
                    &keys,
                    &queries,
                    bos,
                ))
            }
            Err(e) => Err(self.unsupported(id, e.reason, e.help)),
        }
    }

    /// The sequence standing for the joint values of `nodes` (one node: itself; two: a product
    /// sequence computed by an MLP, shared by every head that needs it).
    fn product_side(
        &mut self,
        head: NodeId,
        mut nodes: Vec<NodeId>,
    ) -> Result<ProductSide, CompileError> {
        nodes.sort();
        nodes.dedup();
        let cat = |lw: &Self, n: NodeId| -> Result<Vec<Value>, CompileError> {
            match lw.seq(n)? {
                SeqInfo::Categorical { values, has_none } => Ok(values
                    .iter()
                    .cloned()
                    .chain(has_none.then_some(Value::None))
                    .collect()),
                SeqInfo::Numerical { .. } => Err(lw.unsupported(
                    head,
                    format!(
                        "the select reads `{}`, which is numerical",
                        lw.info.labels[n.0]
                    ),
                    None,
                )),
            }
        };
        match nodes.as_slice() {
            [n] => {
                let has_none = matches!(self.seq(*n)?, SeqInfo::Categorical { has_none: true, .. });
                let rows = cat(self, *n)?.into_iter().map(|v| vec![v]).collect();
                Ok(ProductSide { node: *n, has_none, components: vec![*n], rows })
            }
            [a, b] => {
                let (va, vb) = (cat(self, *a)?, cat(self, *b)?);
                let mut pairs: Vec<(Value, Vec<Value>)> = va
                    .iter()
                    .flat_map(|x| vb.iter().map(move |y| (pair_value(x, y), vec![x.clone(), y.clone()])))
                    .collect();
                pairs.sort();
                let rows: Vec<Vec<Value>> = pairs.iter().map(|p| p.1.clone()).collect();
                if let Some(id) = self.products.get(&(*a, *b)) {
                    return Ok(ProductSide { node: *id, has_none: false, components: vec![*a, *b], rows });
                }
                let id = NodeId(self.info.seqs.len());
                self.info.seqs.push(Some(SeqInfo::Categorical {
                    values: pairs.into_iter().map(|p| p.0).collect(),
                    has_none: false,
                }));
                let label = format!("({}, {})", self.info.labels[a.0], self.info.labels[b.0]);
                self.info.labels.push(label);
                self.producer.push(Producer::Selector);
                let sources = vec![self.source_of(*a)?, self.source_of(*b)?];
                let target = Target { node: id, recipe: Recipe::Pair(0, 1), materialized: true };
                let group = self.units_for(id, &sources, &[target])?;
                let time = next_odd(self.avail(*a).max(self.avail(*b)));
                let deps = self.deps_of([*a, *b]);
                let op = self.push(OpBlock::Mlp(group), deps, time);
                self.producer[id.0] = Producer::Op(op);
                self.group_of.insert(id, op);
                self.products.insert((*a, *b), id);
                Ok(ProductSide { node: id, has_none: false, components: vec![*a, *b], rows })
            }
            _ => Err(self.unsupported(
                head,
                format!(
                    "the selector combines {} different key (or query) sequences; at most two are supported",
                    nodes.len()
                ),
                None,
            )),
        }
    }

    fn lower_aggregate(
        &mut self,
        id: NodeId,
        selector: NodeId,
        values: NodeId,
    ) -> Result<(), CompileError> {
        let (agg, src) = (self.seq(id)?, self.seq(values)?);
        let (usage, kind, ov) = match (agg, src) {
            (
                SeqInfo::Categorical { values: out, .. },
                SeqInfo::Categorical { values: vals, .. },
            ) => {
                let mut ov = Vec::new();
                for (i, v) in vals.iter().enumerate() {
                    let j = out.binary_search(v).map_err(|_| {
                        CompileError::internal(
                            &self.program.name,
                            format!(
                                "aggregate value {v} is missing from the value set of `{}`",
                                self.info.labels[id.0]
                            ),
                        )
                    })?;
                    ov.push((
                        vec![(Dir::Val(values, i), 1.0)],
                        vec![(Dir::Val(id, j), 1.0)],
                    ));
                }
                (
                    Use::CategoricalAggregate,
                    HeadKind::CategoricalAggregate,
                    ov,
                )
            }
            (SeqInfo::Numerical { .. }, SeqInfo::Numerical { .. }) => (
                Use::Uniform,
                HeadKind::NumericalAggregate,
                vec![(vec![(Dir::Num(values), 1.0)], vec![(Dir::Num(id), 1.0)])],
            ),
            _ => {
                return Err(self.unsupported(
                    id,
                    format!(
                        "the aggregate is {:?} but its values `{}` are {:?}; both must have the same encoding",
                        agg.encoding(),
                        self.info.labels[values.0],
                        src.encoding()
                    ),
                    None,
                ));
            }
        };
        let bl = self.head_selector(id, selector, usage, Rational64::new(1, 2))?;
        let mut reads = bl.reads.clone();
        reads.push(values);
        let time = next_even(reads.iter().map(|n| self.avail(*n)).max().unwrap_or(-1));
        let head = HeadBlock {
            node: id,
            kind,
            qk: bl.factor(),
            ov,
            reads: reads.clone(),
        };
        let deps = self.deps_of(reads);
        let op = self.push(OpBlock::Head(head), deps, time);
        self.producer[id.0] = Producer::Op(op);
        Ok(())
    }

    fn lower_selector_width(&mut self, id: NodeId, selector: NodeId) -> Result<(), CompileError> {
        let bl = self.head_selector(id, selector, Use::Uniform, Rational64::from_integer(1))?;
        let reads = bl.reads.clone();
        let time = next_even(reads.iter().map(|n| self.avail(*n)).max().unwrap_or(-1));
        let head = HeadBlock {
            node: id,
            kind: HeadKind::SelectorWidth,
            qk: bl.factor(),
            ov: vec![(vec![(Dir::Bos, 1.0)], vec![(Dir::SwAux(id), 1.0)])],
            reads: reads.clone(),
        };
        let deps = self.deps_of(reads);
        let head_op = self.push(OpBlock::Head(head), deps, time);
        let points = selector_width_points(self.seq(id)?);
        let lo = points
            .first()
            .copied()
            .unwrap_or_else(|| Rational64::from_integer(1));
        let source = Source {
            node: id,
            kind: SourceKind::Numerical {
                dir: Dir::SwAux(id),
                points,
                bos: BosValue::Within(lo, Rational64::from_integer(1)),
            },
        };
        let target = Target {
            node: id,
            recipe: Recipe::Width(0),
            materialized: true,
        };
        let group = self.units_for(id, &[source], &[target])?;
        let op = self.push(OpBlock::Mlp(group), vec![head_op], time + 1);
        self.group_of.insert(id, op);
        self.producer[id.0] = Producer::Op(op);
        Ok(())
    }
}

/// The nodes the output depends on (and `tokens`, the input): like tracr, variables that do not
/// reach the output are not compiled.
pub fn live_nodes(program: &Program) -> Vec<bool> {
    let n = program.graph.nodes.len();
    let mut live = vec![false; n];
    if program.output.0 < n {
        live[program.output.0] = true;
    }
    for i in (0..n).rev() {
        let node = &program.graph.nodes[i];
        if matches!(node.op, Op::Tokens) {
            live[i] = true;
        }
        if !live[i] {
            continue;
        }
        for o in node.op.operands() {
            live[o.0] = true;
        }
    }
    live
}

/// Stage 3: lowers `program` into blocks.
pub fn lower(
    program: &Program,
    info: &ValueInfo,
    opts: LowerOptions,
) -> Result<Plan, CompileError> {
    let n = program.graph.nodes.len();
    let mut lw = Lowerer {
        program,
        info: info.clone(),
        products: BTreeMap::new(),
        opts,
        producer: vec![Producer::Selector; n],
        embeds: BTreeMap::new(),
        ops: Vec::new(),
        time: Vec::new(),
        group_of: BTreeMap::new(),
    };
    let live = live_nodes(program);
    for (i, node) in program.graph.nodes.iter().enumerate() {
        let id = NodeId(i);
        if !live[i] {
            continue;
        }
        match &node.op {
            Op::Tokens => {
                lw.embeds
                    .insert(id, EmbedFn::Token(program.task.vocab.clone()));
                lw.producer[i] = Producer::Embedding;
            }
            Op::Indices => {
                lw.embeds.insert(
                    id,
                    EmbedFn::Index((0..program.task.max_len as i64).map(Value::int).collect()),
                );
                lw.producer[i] = Producer::Embedding;
            }
            Op::Full(v) => {
                lw.embeds.insert(id, EmbedFn::Const(v.clone()));
                lw.producer[i] = Producer::Embedding;
            }
            Op::Map { f, arg } => lw.lower_map(id, f, &[*arg])?,
            Op::Map2 { f, a, b } => lw.lower_map(id, f, &[*a, *b])?,
            Op::Select { .. } | Op::SelectAnd(..) | Op::SelectOr(..) | Op::SelectNot(..) => {}
            Op::SelectorWidth(s) => lw.lower_selector_width(id, *s)?,
            Op::Aggregate { selector, values } => lw.lower_aggregate(id, *selector, *values)?,
        }
    }

    // Materialize what is read by another block, named, or the output.
    let mut materialized = vec![false; lw.info.seqs.len()];
    for (i, node) in program.graph.nodes.iter().enumerate() {
        let seq = matches!(node.ty, NodeType::Seq { .. });
        materialized[i] = live[i]
            && seq
            && (node.name.is_some()
                || NodeId(i) == program.output
                || matches!(node.op, Op::Tokens));
    }
    for op in &lw.ops {
        match &op.block {
            OpBlock::Head(h) => h.reads.iter().for_each(|r| materialized[r.0] = true),
            OpBlock::Mlp(g) => g
                .sources
                .iter()
                .filter(|s| {
                    !matches!(
                        s.kind,
                        SourceKind::Numerical {
                            dir: Dir::SwAux(_),
                            ..
                        }
                    )
                })
                .for_each(|s| materialized[s.node.0] = true),
        }
    }
    if !matches!(program.graph.node(program.output).ty, NodeType::Seq { .. }) {
        return Err(lw.unsupported(
            program.output,
            "the output must be a sequence, not a selector",
            None,
        ));
    }

    // Rebuild each group's units now that we know which targets are written.
    let mut ops = std::mem::take(&mut lw.ops);
    for (i, op) in ops.iter_mut().enumerate() {
        if let OpBlock::Mlp(g) = &mut op.block {
            for t in g.targets.iter_mut() {
                t.materialized = materialized[t.node.0];
            }
            let node = g.targets.first().map(|t| t.node).unwrap_or(NodeId(0));
            let rebuilt = lw.units_for(node, &g.sources, &g.targets).map_err(|e| {
                CompileError::internal(
                    &program.name,
                    format!("group {i} no longer builds after materialization: {e}"),
                )
            })?;
            *g = rebuilt;
        }
    }

    Ok(Plan {
        program: program.name.clone(),
        vocab: program.task.vocab.clone(),
        max_len: program.task.max_len,
        info: lw.info.clone(),
        embeds: lw.embeds,
        ops,
        producer: lw.producer,
        materialized,
        output: program.output,
    })
}
