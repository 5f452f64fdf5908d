//! The graph builder: an interpretation's (or a restriction's) sequence expressions as a typed
//! graph, with bindings, cycles, encodings and primitive calls.

use super::*;

/// A `let` of an interpretation.
#[derive(Clone, Copy)]
pub(super) struct Let<'a> {
    name: &'a Ident,
    expr: &'a SeqExpr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum VarState {
    Pending,
    Built(NodeId),
    /// Failed or part of a cycle: uses stay quiet.
    Broken,
}

/// Facts about selector nodes that value-set inference needs.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SelInfo {
    /// Every query position selects at least one key, on every input.
    pub(super) nonempty: bool,
}

pub(super) struct GraphBuilder<'c> {
    pub(super) ck: &'c mut Checker,
    pub(super) f: &'c ParsedFile,
    pub(super) task_name: String,
    pub(super) vocab: Vec<Value>,
    pub(super) max_len: usize,
    pub(super) graph: Graph,
    pub(super) sel: HashMap<NodeId, SelInfo>,
    pub(super) tokens: Option<NodeId>,
    pub(super) indices: Option<NodeId>,
    pub(super) vars: HashMap<String, VarState>,
}

/// What an argument position of a primitive wants.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    Seq,
    Selector,
}

impl<'c> GraphBuilder<'c> {
    pub(super) fn new(ck: &'c mut Checker, f: &'c ParsedFile, task: &Task) -> GraphBuilder<'c> {
        GraphBuilder {
            ck,
            f,
            task_name: task.name.clone(),
            vocab: task.vocab.clone(),
            max_len: task.max_len,
            graph: Graph::default(),
            sel: HashMap::new(),
            tokens: None,
            indices: None,
            vars: HashMap::new(),
        }
    }

    pub(super) fn err(&mut self, e: LangError) {
        self.ck.err(e);
    }

    pub(super) fn at(
        &self,
        kind: ErrorKind,
        span: Span,
        msg: impl Into<String>,
        label: impl Into<String>,
    ) -> LangError {
        LangError::at(kind, &self.f.source, span, msg, label)
    }

    pub(super) fn push(
        &mut self,
        name: Option<String>,
        op: Op,
        ty: NodeType,
        span: Span,
    ) -> NodeId {
        let id = NodeId(self.graph.nodes.len());
        self.graph.nodes.push(Node {
            name,
            op,
            ty,
            source: source_ref(self.f, span),
        });
        id
    }

    pub(super) fn values(&self, id: NodeId) -> Option<&ValueSet> {
        match &self.graph.node(id).ty {
            NodeType::Seq { values, .. } => Some(values),
            NodeType::Selector => None,
        }
    }

    pub(super) fn encoding(&self, id: NodeId) -> Option<Encoding> {
        match &self.graph.node(id).ty {
            NodeType::Seq { encoding, .. } => Some(*encoding),
            NodeType::Selector => None,
        }
    }

    pub(super) fn describe(&self, id: NodeId) -> String {
        match &self.graph.node(id).name {
            Some(n) => format!("`{n}`"),
            None => "this expression".to_string(),
        }
    }

    pub(super) fn builtin(&mut self, which: &str) -> NodeId {
        let (slot, op, values) = if which == "tokens" {
            (
                self.tokens,
                Op::Tokens,
                self.vocab.iter().cloned().collect::<ValueSet>(),
            )
        } else {
            (
                self.indices,
                Op::Indices,
                (0..self.max_len as i64)
                    .map(Value::int)
                    .collect::<ValueSet>(),
            )
        };
        if let Some(id) = slot {
            return id;
        }
        let ty = NodeType::Seq {
            encoding: Encoding::Categorical,
            values,
        };
        let id = self.push(Some(which.to_string()), op, ty, Span::default());
        self.graph.nodes[id.0].source = None;
        if which == "tokens" {
            self.tokens = Some(id);
        } else {
            self.indices = Some(id);
        }
        id
    }

    /// The `let`s and `output`s of an interpretation; a redefined built-in or a variable
    /// defined twice is reported (and the second definition dropped).
    fn statements<'a>(
        &mut self,
        i: &'a ast::InterpDef,
    ) -> (Vec<Let<'a>>, Vec<(&'a SeqExpr, Span)>) {
        let mut lets: Vec<Let<'a>> = Vec::new();
        let mut outputs: Vec<(&SeqExpr, Span)> = Vec::new();
        let mut first_def: HashMap<&str, Span> = HashMap::new();
        for s in &i.stmts {
            match s {
                Stmt::Let { name, expr, .. } => {
                    if BUILTIN_SEQS.contains(&name.name.as_str()) {
                        let e = self
                            .at(
                                ErrorKind::Reserved,
                                name.span,
                                format!("`{}` is built in and cannot be redefined", name.name),
                                "reserved name",
                            )
                            .with_help("pick another name for this variable");
                        self.err(e);
                        continue;
                    }
                    if let Some(first) = first_def.get(name.name.as_str()) {
                        let e = self
                            .at(
                                ErrorKind::Duplicate,
                                name.span,
                                format!(
                                    "variable `{}` is defined twice in `{}`",
                                    name.name, i.name.name
                                ),
                                "defined again here",
                            )
                            .with_label(*first, "first defined here")
                            .with_help("every variable is defined once; rename one of them");
                        self.err(e);
                        self.vars.insert(name.name.clone(), VarState::Broken);
                        continue;
                    }
                    first_def.insert(&name.name, name.span);
                    lets.push(Let { name, expr });
                }
                Stmt::Output { expr, span } => outputs.push((expr, *span)),
            }
        }
        (lets, outputs)
    }

    /// Exactly one `output`.
    fn check_outputs(&mut self, i: &ast::InterpDef, outputs: &[(&SeqExpr, Span)]) {
        match outputs {
            [] => {
                let e = self
                    .at(
                        ErrorKind::MissingOutput,
                        i.name.span,
                        format!("interpretation `{}` has no `output`", i.name.name),
                        "no output statement in this interpretation",
                    )
                    .with_help(
                        "add `output <expression>`: the sequence the interpretation computes",
                    );
                self.err(e);
            }
            [_] => {}
            [(_, first), rest @ ..] => {
                for (_, span) in rest {
                    let e = self
                        .at(
                            ErrorKind::MultipleOutputs,
                            Span::new(span.start, span.start + "output".len()),
                            format!(
                                "interpretation `{}` has more than one `output`",
                                i.name.name
                            ),
                            "second output",
                        )
                        .with_label(
                            Span::new(first.start, first.start + "output".len()),
                            "first output",
                        )
                        .with_help("an interpretation computes exactly one output sequence");
                    self.err(e);
                }
            }
        }
    }

    /// The definitions in dependency order, and which are on a cycle (each cycle reported
    /// once). Iterative, so long chains cannot exhaust the stack.
    fn dependency_order(&mut self, lets: &[Let<'_>]) -> (Vec<usize>, Vec<bool>) {
        let index: HashMap<&str, usize> = lets
            .iter()
            .enumerate()
            .map(|(k, l)| (l.name.name.as_str(), k))
            .collect();
        let deps: Vec<Vec<(usize, Span)>> = lets
            .iter()
            .map(|l| {
                let mut refs = Vec::new();
                collect_refs(l.expr, &mut refs);
                refs.into_iter()
                    .filter_map(|r| index.get(r.name.as_str()).map(|k| (*k, r.span)))
                    .collect()
            })
            .collect();
        let mut color = vec![0u8; lets.len()]; // 0 new, 1 on the stack, 2 done
        let mut order = Vec::with_capacity(lets.len());
        let mut in_cycle = vec![false; lets.len()];
        for start in 0..lets.len() {
            if color[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            color[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&(dep, ref_span)) = deps[node].get(*next) {
                    *next += 1;
                    match color[dep] {
                        0 => {
                            color[dep] = 1;
                            stack.push((dep, 0));
                        }
                        1 => {
                            let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                            let cycle: Vec<usize> = stack[from..].iter().map(|(n, _)| *n).collect();
                            if cycle.iter().all(|c| !in_cycle[*c]) {
                                self.cycle_error(lets, &cycle, ref_span);
                            }
                            for c in cycle {
                                in_cycle[c] = true;
                            }
                        }
                        _ => {}
                    }
                } else {
                    color[node] = 2;
                    order.push(node);
                    stack.pop();
                }
            }
        }
        (order, in_cycle)
    }

    /// Builds an interpretation's statements; returns the output node.
    pub(super) fn interpretation(&mut self, i: &ast::InterpDef) -> Option<NodeId> {
        let (lets, outputs) = self.statements(i);
        self.check_outputs(i, &outputs);
        for Let { name, .. } in &lets {
            self.vars
                .entry(name.name.clone())
                .or_insert(VarState::Pending);
        }
        let (order, in_cycle) = self.dependency_order(&lets);
        for k in &order {
            let name = lets[*k].name;
            if in_cycle[*k] {
                self.vars.insert(name.name.clone(), VarState::Broken);
            }
        }
        for k in order {
            if in_cycle[k] {
                continue;
            }
            let Let { name, expr } = lets[k];
            let state = match self.seq_expr(expr, None) {
                Some(id) => VarState::Built(self.bind(id, &name.name, expr.span)),
                None => VarState::Broken,
            };
            self.vars.insert(name.name.clone(), state);
        }
        let (expr, _) = outputs.first()?;
        let out = self.seq_expr(expr, None)?;
        match self.graph.node(out).ty {
            NodeType::Selector => {
                let e = self
                    .at(
                        ErrorKind::ArgKind,
                        expr.span,
                        "the output must be a sequence, not a selector",
                        "this is a selector",
                    )
                    .with_help("aggregate it (`aggregate(sel, tokens)`) or count it (`selector_width(sel)`)");
                self.err(e);
                None
            }
            NodeType::Seq { .. } => {
                if self.graph.node(out).name.is_none() {
                    self.graph.nodes[out.0].name = Some("output".to_string());
                }
                Some(out)
            }
        }
    }

    /// Names the node a `let` produced. A plain alias (`y = x`) gets a copy of `x`'s node so that
    /// every variable has a node of its own name.
    pub(super) fn bind(&mut self, id: NodeId, name: &str, span: Span) -> NodeId {
        if self.graph.node(id).name.is_none() {
            self.graph.nodes[id.0].name = Some(name.to_string());
            return id;
        }
        let mut copy = self.graph.node(id).clone();
        copy.name = Some(name.to_string());
        copy.source = source_ref(self.f, span);
        let new = NodeId(self.graph.nodes.len());
        if let Some(info) = self.sel.get(&id).copied() {
            self.sel.insert(new, info);
        }
        self.graph.nodes.push(copy);
        new
    }

    pub(super) fn cycle_error(&mut self, lets: &[Let<'_>], cycle: &[usize], closing: Span) {
        let names: Vec<String> = cycle.iter().map(|k| lets[*k].name.name.clone()).collect();
        let first = lets[cycle[0]].name;
        let path = format!("{} -> {}", names.join(" -> "), names[0]);
        let msg = if names.len() == 1 {
            format!("`{}` is defined in terms of itself", names[0])
        } else {
            format!(
                "`{}` is defined in terms of itself, through {}",
                names[0],
                join_quoted(&names[1..])
            )
        };
        let mut e = self.at(ErrorKind::Cycle, first.span, msg, format!("cycle: {path}"));
        e = e.with_label(closing, format!("`{}` is used here", names[0]));
        for k in &cycle[1..] {
            e = e.with_label(lets[*k].name.span, "part of the cycle");
        }
        e = e.with_help("a variable can only use variables that do not depend on it");
        self.err(e);
    }

    // --- sequence expressions ----------------------------------------------------------------

    /// Builds a sequence-level expression. `enc` is an encoding annotation that applies to the
    /// node this expression computes.
    pub(super) fn seq_expr(
        &mut self,
        e: &SeqExpr,
        enc: Option<(EncodingKw, Span)>,
    ) -> Option<NodeId> {
        match &e.kind {
            SeqExprKind::Var(name) => {
                let id = self.var(name)?;
                if let Some((kw, span)) = enc {
                    self.annotate_existing(id, kw, span, e.span);
                }
                Some(id)
            }
            SeqExprKind::Encoded(kw, inner) => {
                if let Some((outer, span)) = enc
                    && outer != *kw
                {
                    let er = self.at(
                        ErrorKind::Encoding,
                        span,
                        "conflicting encodings: an expression is either numerical or categorical",
                        "both annotations apply here",
                    );
                    self.err(er);
                    return None;
                }
                let span = Span::new(e.span.start, inner.span.start.max(e.span.start));
                self.seq_expr(inner, Some((*kw, span)))
            }
            SeqExprKind::Not(inner) => {
                let a = self.selector_operand(inner, "not")?;
                self.no_encoding(enc, e.span)?;
                let nonempty = matches!(
                    &self.graph.node(a).op,
                    Op::Select {
                        pred: Predicate::Cmp(Comparison::False),
                        ..
                    }
                );
                let id = self.push(None, Op::SelectNot(a), NodeType::Selector, e.span);
                self.sel.insert(id, SelInfo { nonempty });
                Some(id)
            }
            SeqExprKind::And(l, r) | SeqExprKind::Or(l, r) => {
                let and = matches!(e.kind, SeqExprKind::And(..));
                let word = if and { "and" } else { "or" };
                let a = self.selector_operand(l, word);
                let b = self.selector_operand(r, word);
                let (a, b) = (a?, b?);
                self.no_encoding(enc, e.span)?;
                let (na, nb) = (
                    self.sel.get(&a).is_some_and(|s| s.nonempty),
                    self.sel.get(&b).is_some_and(|s| s.nonempty),
                );
                let (op, nonempty) = if and {
                    (Op::SelectAnd(a, b), false)
                } else {
                    (Op::SelectOr(a, b), na || nb)
                };
                let id = self.push(None, op, NodeType::Selector, e.span);
                self.sel.insert(id, SelInfo { nonempty });
                Some(id)
            }
            SeqExprKind::Call { func, args } => self.call(e, func, args, enc),
        }
    }

    pub(super) fn no_encoding(
        &mut self,
        enc: Option<(EncodingKw, Span)>,
        span: Span,
    ) -> Option<()> {
        if let Some((kw, at)) = enc {
            let word = if kw == EncodingKw::Numerical {
                "numerical"
            } else {
                "categorical"
            };
            let e = self
                .at(
                    ErrorKind::Encoding,
                    at,
                    format!("`{word}` applies to sequences; selectors have no encoding"),
                    "encoding of a selector",
                )
                .with_label(span, "this is a selector");
            self.err(e);
            return None;
        }
        Some(())
    }

    /// `numerical x` where `x` already exists: fine when it agrees, an error otherwise.
    pub(super) fn annotate_existing(&mut self, id: NodeId, kw: EncodingKw, at: Span, span: Span) {
        let want = if kw == EncodingKw::Numerical {
            Encoding::Numerical
        } else {
            Encoding::Categorical
        };
        match self.encoding(id) {
            None => {
                let e = self.at(
                    ErrorKind::Encoding,
                    at,
                    "selectors have no encoding",
                    "encoding of a selector",
                );
                self.err(e);
            }
            Some(have) if have != want => {
                let what = self.describe(id);
                let e = self
                    .at(
                        ErrorKind::Encoding,
                        at,
                        format!("{what} is {}, so it cannot be used as {}", enc_word(have), enc_word(want)),
                        "encoding differs from the variable's",
                    )
                    .with_label(span, format!("{} sequence", enc_word(have)))
                    .with_help("put the encoding on the expression that computes the value: `x = numerical map(...)`");
                self.err(e);
            }
            Some(_) => {}
        }
    }

    pub(super) fn var(&mut self, name: &Ident) -> Option<NodeId> {
        if BUILTIN_SEQS.contains(&name.name.as_str()) {
            return Some(self.builtin(&name.name));
        }
        match self.vars.get(&name.name) {
            Some(VarState::Built(id)) => return Some(*id),
            Some(VarState::Broken) => return None,
            Some(VarState::Pending) => {
                // Only reachable through a cycle, which is reported separately.
                return None;
            }
            None => {}
        }
        let mut e = self.at(
            ErrorKind::UnknownName,
            name.span,
            format!("unknown name `{}`", name.name),
            "not a variable of this interpretation",
        );
        let mut candidates: Vec<&str> = self.vars.keys().map(|s| s.as_str()).collect();
        candidates.extend(BUILTIN_SEQS);
        candidates.sort();
        let instead = PRIMITIVES
            .iter()
            .find(|(p, _)| *p == name.name)
            .map(|(_, sig)| format!("`{}` is a primitive; call it: `{sig}`", name.name));
        // A token is only suggested when no variable is close (`a` near `aa` is a typo).
        let help = unknown_help(&name.name, instead, &candidates, Listing::Nothing)
            .or_else(|| {
                self.vocab.contains(&Value::sym(&name.name)).then(|| {
                    format!(
                        "`{}` is a token; a constant sequence is written `full({})`",
                        name.name, name.name
                    )
                })
            })
            .unwrap_or_else(|| format!("variables in scope: {}", candidates.join(", ")));
        e = e.with_help(help);
        self.err(e);
        None
    }

    pub(super) fn selector_operand(&mut self, e: &SeqExpr, op: &str) -> Option<NodeId> {
        let id = self.seq_expr(e, None)?;
        if matches!(self.graph.node(id).ty, NodeType::Selector) {
            return Some(id);
        }
        let what = self.describe(id);
        let er = self
            .at(
                ErrorKind::ArgKind,
                e.span,
                format!("`{op}` combines selectors, but {what} is a sequence"),
                "a sequence, not a selector",
            )
            .with_help(format!(
                "to combine boolean sequences elementwise, use `map2(|a, b| a {op} b, x, y)`"
            ));
        self.err(er);
        None
    }

    pub(super) fn seq_operand(
        &mut self,
        arg: &Arg,
        func: &str,
        what: &str,
        want: Want,
    ) -> Option<NodeId> {
        let wanted = if want == Want::Seq {
            "a sequence"
        } else {
            "a selector"
        };
        let span = arg.span();
        // What the argument is instead, and how to write what is wanted.
        let (is, help) = match arg {
            Arg::Seq(e) => {
                let id = self.seq_expr(e, None)?;
                let is_sel = matches!(self.graph.node(id).ty, NodeType::Selector);
                if is_sel == (want == Want::Selector) {
                    return Some(id);
                }
                let desc = self.describe(id);
                if is_sel {
                    (
                        format!("but {desc} is a selector"),
                        Some(format!(
                            "a selector becomes a sequence through `aggregate({}, values)` or `selector_width(...)`",
                            trim_desc(&desc)
                        )),
                    )
                } else {
                    (
                        format!("but {desc} is a sequence"),
                        Some(
                            "a selector is made with `select(keys, queries, predicate)`"
                                .to_string(),
                        ),
                    )
                }
            }
            Arg::Value(_) => {
                let text = &self.f.source.text[span.start..span.end];
                (
                    "not a constant".to_string(),
                    Some(format!("a constant sequence is written `full({text})`")),
                )
            }
            Arg::Lambda(_) => ("not a lambda".to_string(), None),
            Arg::Cmp(op, _) => (format!("not the comparison `{}`", op.as_str()), None),
        };
        let mut er = self.at(
            ErrorKind::ArgKind,
            span,
            format!("the {what} of `{func}` must be {wanted}, {is}"),
            format!("expected {wanted}"),
        );
        if let Some(help) = help {
            er = er.with_help(help);
        }
        self.err(er);
        None
    }

    /// A primitive call: its arity, argument kinds and encodings checked, then its node.
    /// One function (~140 lines): one arm per primitive, each with its own argument rules.
    pub(super) fn call(
        &mut self,
        e: &SeqExpr,
        func: &Ident,
        args: &[Arg],
        enc: Option<(EncodingKw, Span)>,
    ) -> Option<NodeId> {
        let Some((_, sig)) = PRIMITIVES.iter().find(|(p, _)| *p == func.name) else {
            let mut er = self.at(
                ErrorKind::UnknownPrimitive,
                func.span,
                format!("unknown primitive `{}`", func.name),
                "not a primitive",
            );
            let names: Vec<&str> = PRIMITIVES.iter().map(|p| p.0).collect();
            let instead = if SCALAR_FUNCTIONS.iter().any(|s| s.0 == func.name) {
                Some(format!(
                    "`{}` works on single values; use it inside a lambda: `map(|x| {}(x, ...), s)`",
                    func.name, func.name
                ))
            } else {
                self.vars
                    .contains_key(&func.name)
                    .then(|| format!("`{}` is a variable, not something to call", func.name))
            };
            let listing = Listing::All {
                noun: "primitives",
                when_none: None,
            };
            er = with_help(er, unknown_help(&func.name, instead, &names, listing));
            self.err(er);
            return None;
        };
        if args.len() != sig_arity_count(sig) {
            let er = arity_error(&self.f.source, e.span, &func.name, sig, args.len(), "given");
            self.err(er);
            return None;
        }
        let encoding = match enc {
            Some((EncodingKw::Numerical, _)) => Encoding::Numerical,
            _ => Encoding::Categorical,
        };
        match func.name.as_str() {
            "map" => {
                let lambda = self.lambda_arg(&args[0], "map", 1);
                let arg = self.seq_operand(&args[1], "map", "second argument", Want::Seq);
                let (lambda, arg) = (lambda?, arg?);
                let (ir_lambda, ast_lambda) = lambda;
                let values = self.map_values(&ir_lambda, ast_lambda, &[arg])?;
                self.numeric_check(encoding, &values, enc, e.span)?;
                Some(self.push(
                    None,
                    Op::Map { f: ir_lambda, arg },
                    NodeType::Seq { encoding, values },
                    e.span,
                ))
            }
            "map2" => {
                let lambda = self.lambda_arg(&args[0], "map2", 2);
                let a = self.seq_operand(&args[1], "map2", "second argument", Want::Seq);
                let b = self.seq_operand(&args[2], "map2", "third argument", Want::Seq);
                let (lambda, a, b) = (lambda?, a?, b?);
                let (ir_lambda, ast_lambda) = lambda;
                let values = self.map_values(&ir_lambda, ast_lambda, &[a, b])?;
                self.numeric_check(encoding, &values, enc, e.span)?;
                Some(self.push(
                    None,
                    Op::Map2 { f: ir_lambda, a, b },
                    NodeType::Seq { encoding, values },
                    e.span,
                ))
            }
            "select" => {
                let keys = self.seq_operand(&args[0], "select", "keys (first argument)", Want::Seq);
                let queries =
                    self.seq_operand(&args[1], "select", "queries (second argument)", Want::Seq);
                let pred = self.predicate(&args[2]);
                let (keys, queries, pred) = (keys?, queries?, pred?);
                self.no_encoding(enc, e.span)?;
                let nonempty = self.check_select(keys, queries, &pred, &args[2])?;
                let ir_pred = pred.0;
                let id = self.push(
                    None,
                    Op::Select {
                        keys,
                        queries,
                        pred: ir_pred,
                    },
                    NodeType::Selector,
                    e.span,
                );
                self.sel.insert(id, SelInfo { nonempty });
                Some(id)
            }
            "selector_width" => {
                let s = self.seq_operand(&args[0], "selector_width", "argument", Want::Selector)?;
                let values: ValueSet = (0..=self.max_len as i64).map(Value::int).collect();
                Some(self.push(
                    None,
                    Op::SelectorWidth(s),
                    NodeType::Seq { encoding, values },
                    e.span,
                ))
            }
            "aggregate" => {
                let s = self.seq_operand(
                    &args[0],
                    "aggregate",
                    "selector (first argument)",
                    Want::Selector,
                );
                let v =
                    self.seq_operand(&args[1], "aggregate", "values (second argument)", Want::Seq);
                let (s, v) = (s?, v?);
                let values = self.aggregate_values(s, v, encoding, &args[1], e.span)?;
                Some(self.push(
                    None,
                    Op::Aggregate {
                        selector: s,
                        values: v,
                    },
                    NodeType::Seq { encoding, values },
                    e.span,
                ))
            }
            _ => {
                // full(value)
                let v = self.constant_arg(&args[0])?;
                let values: ValueSet = [v.clone()].into_iter().collect();
                self.numeric_check(encoding, &values, enc, e.span)?;
                Some(self.push(
                    None,
                    Op::Full(v),
                    NodeType::Seq { encoding, values },
                    e.span,
                ))
            }
        }
    }
}
