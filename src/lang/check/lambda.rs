//! Lambda typing: constants, predicates, lambdas lowered to scalar expressions and checked on
//! their operands' value sets.

use super::*;

impl GraphBuilder<'_> {
    pub(super) fn constant_arg(&mut self, arg: &Arg) -> Option<Value> {
        match arg {
            Arg::Value(ast::ValueLit::Bool(b, _)) => Some(Value::Bool(*b)),
            Arg::Value(ast::ValueLit::None(_)) => Some(Value::None),
            Arg::Value(ast::ValueLit::Str(s)) => Some(Value::sym(&s.value)),
            Arg::Value(ast::ValueLit::Num(n)) => match parse_number(&n.text) {
                Ok(r) => Some(Value::Num(r)),
                Err(msg) => {
                    let e = self.at(ErrorKind::Literal, n.span, msg, "out of range");
                    self.err(e);
                    None
                }
            },
            Arg::Seq(SeqExpr {
                kind: SeqExprKind::Var(name),
                ..
            }) if self.vocab.contains(&Value::sym(&name.name)) => Some(Value::sym(&name.name)),
            other => {
                let span = other.span();
                let e = self
                    .at(
                        ErrorKind::ArgKind,
                        span,
                        "`full` takes a constant value",
                        "expected a constant such as 0, true, none, a token or \"text\"",
                    )
                    .with_help("bare names in `full` must be vocabulary tokens; quote other symbols: full(\"x\")");
                self.err(e);
                None
            }
        }
    }

    /// A numerical sequence must hold numbers only.
    pub(super) fn numeric_check(
        &mut self,
        encoding: Encoding,
        values: &ValueSet,
        enc: Option<(EncodingKw, Span)>,
        span: Span,
    ) -> Option<()> {
        if encoding != Encoding::Numerical {
            return Some(());
        }
        let bad: ValueSet = values
            .iter()
            .filter(|v| !matches!(v, Value::Num(_)))
            .cloned()
            .collect();
        if bad.is_empty() {
            return Some(());
        }
        let at = enc.map_or(span, |(_, s)| s);
        let e = self
            .at(
                ErrorKind::Encoding,
                span,
                format!(
                    "a numerical sequence holds numbers, but this one can be {}",
                    value_set_text(&bad)
                ),
                "not numeric",
            )
            .with_label(at, "declared numerical here")
            .with_help("give numbers instead (e.g. `if b then 1 else 0`), or drop `numerical`");
        self.err(e);
        None
    }

    pub(super) fn lambda_arg<'a>(
        &mut self,
        arg: &'a Arg,
        func: &str,
        arity: usize,
    ) -> Option<(Lambda, &'a ast::Lambda)> {
        let Arg::Lambda(l) = arg else {
            let sig = PRIMITIVES
                .iter()
                .find(|(p, _)| *p == func)
                .map_or("", |p| p.1);
            let e = self
                .at(
                    ErrorKind::ArgKind,
                    arg.span(),
                    format!("the first argument of `{func}` must be a lambda"),
                    "expected a lambda such as `|x| x + 1`",
                )
                .with_help(format!("write `{sig}`"));
            self.err(e);
            return None;
        };
        if l.params.len() != arity {
            let params = if arity == 1 { "|x|" } else { "|x, y|" };
            let e = self
                .at(
                    ErrorKind::LambdaArity,
                    Span::new(l.span.start, l.body.span.start.max(l.span.start)),
                    format!(
                        "the lambda of `{func}` takes {}, found {}",
                        plural(arity, "parameter", "parameters"),
                        l.params.len()
                    ),
                    format!("{} here", plural(l.params.len(), "parameter", "parameters")),
                )
                .with_help(format!(
                    "`{func}` calls its lambda with {}: write `{params} ...`",
                    plural(arity, "value", "values")
                ));
            self.err(e);
            return None;
        }
        let lowered = self.lambda(l)?;
        Some((lowered, l))
    }

    pub(super) fn predicate<'a>(
        &mut self,
        arg: &'a Arg,
    ) -> Option<(Predicate, Option<&'a ast::Lambda>)> {
        match arg {
            Arg::Cmp(op, _) => Some((Predicate::Cmp(cmp_to_ir(*op)), None)),
            Arg::Value(ast::ValueLit::Bool(b, _)) => Some((
                Predicate::Cmp(if *b {
                    Comparison::True
                } else {
                    Comparison::False
                }),
                None,
            )),
            Arg::Lambda(l) => {
                if l.params.len() != 2 {
                    let e = self
                        .at(
                            ErrorKind::LambdaArity,
                            Span::new(l.span.start, l.body.span.start.max(l.span.start)),
                            format!(
                                "a select predicate takes 2 parameters (key, query), found {}",
                                l.params.len()
                            ),
                            format!("{} here", plural(l.params.len(), "parameter", "parameters")),
                        )
                        .with_help("write `|key, query| ...`; the key comes first, as in tracr");
                    self.err(e);
                    return None;
                }
                Some((Predicate::Lambda(self.lambda(l)?), Some(l)))
            }
            other => {
                let e = self
                    .at(
                        ErrorKind::ArgKind,
                        other.span(),
                        "the predicate of `select` must be a comparison, `true`, `false` or a lambda `|key, query| ...`",
                        "not a predicate",
                    )
                    .with_help("e.g. `select(indices, indices, <=)` or `select(tokens, tokens, |k, q| k == q)`");
                self.err(e);
                None
            }
        }
    }

    // --- lambdas ----------------------------------------------------------------------------

    pub(super) fn lambda(&mut self, l: &ast::Lambda) -> Option<Lambda> {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for p in &l.params {
            if let Some(first) = seen.get(p.name.as_str()) {
                let e = self
                    .at(
                        ErrorKind::Duplicate,
                        p.span,
                        format!("the lambda has two parameters named `{}`", p.name),
                        "repeated parameter",
                    )
                    .with_label(*first, "first parameter");
                self.err(e);
                return None;
            }
            seen.insert(&p.name, p.span);
        }
        let body = self.lower(&l.body, &l.params)?;
        Some(Lambda {
            params: l.params.iter().map(|p| p.name.clone()).collect(),
            body,
        })
    }

    /// Resolves a lambda body: names become parameters or vocabulary symbols. Reports every
    /// unresolved name before giving up. One function (~140 lines): one arm per expression
    /// kind.
    pub(super) fn lower(&mut self, e: &ast::Expr, params: &[Ident]) -> Option<Expr> {
        let bin = |op: BinOp, a: Option<Expr>, b: Option<Expr>| {
            Some(Expr::Binary(op, Box::new(a?), Box::new(b?)))
        };
        match &e.kind {
            ExprKind::If(c, t, x) => {
                let (c, t, x) = (
                    self.lower(c, params),
                    self.lower(t, params),
                    self.lower(x, params),
                );
                Some(Expr::If(Box::new(c?), Box::new(t?), Box::new(x?)))
            }
            ExprKind::Or(a, b) => {
                let (a, b) = (self.lower(a, params), self.lower(b, params));
                bin(BinOp::Or, a, b)
            }
            ExprKind::And(a, b) => {
                let (a, b) = (self.lower(a, params), self.lower(b, params));
                bin(BinOp::And, a, b)
            }
            ExprKind::Cmp(op, a, b) => {
                let (a, b) = (self.lower(a, params), self.lower(b, params));
                let op = match op {
                    ast::CmpOp::Eq => BinOp::Eq,
                    ast::CmpOp::Ne => BinOp::Ne,
                    ast::CmpOp::Lt => BinOp::Lt,
                    ast::CmpOp::Le => BinOp::Le,
                    ast::CmpOp::Gt => BinOp::Gt,
                    ast::CmpOp::Ge => BinOp::Ge,
                };
                bin(op, a, b)
            }
            ExprKind::Arith(op, a, b) => {
                let (a, b) = (self.lower(a, params), self.lower(b, params));
                let op = match op {
                    ast::ArithOp::Add => BinOp::Add,
                    ast::ArithOp::Sub => BinOp::Sub,
                    ast::ArithOp::Mul => BinOp::Mul,
                    ast::ArithOp::Div => BinOp::Div,
                    ast::ArithOp::Mod => BinOp::Mod,
                };
                bin(op, a, b)
            }
            ExprKind::Not(a) => Some(Expr::Unary(UnOp::Not, Box::new(self.lower(a, params)?))),
            ExprKind::Neg(a) => Some(Expr::Unary(UnOp::Neg, Box::new(self.lower(a, params)?))),
            ExprKind::Num(n) => match parse_number(&n.text) {
                Ok(r) => Some(Expr::Const(Value::Num(r))),
                Err(msg) => {
                    let er = self.at(ErrorKind::Literal, n.span, msg, "out of range");
                    self.err(er);
                    None
                }
            },
            ExprKind::Bool(b) => Some(Expr::Const(Value::Bool(*b))),
            ExprKind::None => Some(Expr::Const(Value::None)),
            ExprKind::Str(s) => Some(Expr::Const(Value::sym(s))),
            ExprKind::Name(n) => {
                if let Some(i) = params.iter().rposition(|p| p.name == n.name) {
                    return Some(Expr::Param(i));
                }
                let sym = Value::sym(&n.name);
                if self.vocab.contains(&sym) {
                    return Some(Expr::Const(sym));
                }
                let mut er = self.at(
                    ErrorKind::UnknownName,
                    n.span,
                    format!("unknown name `{}` in a lambda", n.name),
                    "not a parameter or a token of the vocabulary",
                );
                let mut candidates: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
                candidates.extend(self.vocab.iter().filter_map(|v| match v {
                    Value::Sym(s) => Some(s.to_string()),
                    _ => None,
                }));
                let pnames: Vec<String> = params.iter().map(|p| format!("`{}`", p.name)).collect();
                let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
                let help = unknown_help(&n.name, None, &candidates, Listing::Nothing)
                    .or_else(|| {
                        (self.vars.contains_key(&n.name) || BUILTIN_SEQS.contains(&n.name.as_str()))
                            .then(|| format!(
                                "`{}` is a sequence; a lambda sees single values: pass it as an argument, e.g. `map2(|x, y| ..., s, {})`",
                                n.name, n.name
                            ))
                    })
                    .unwrap_or_else(|| format!(
                        "a lambda body sees its parameters ({}) and the tokens of task `{}`; quote other symbols: \"{}\"",
                        if pnames.is_empty() { "none".to_string() } else { join_words(&pnames, "and") },
                        self.task_name,
                        n.name
                    ));
                er = er.with_help(help);
                self.err(er);
                None
            }
            ExprKind::Call { func, args } => {
                let lowered: Vec<Option<Expr>> =
                    args.iter().map(|a| self.lower(a, params)).collect();
                let Some(&(_, builtin, sig)) = SCALAR_FUNCTIONS.iter().find(|s| s.0 == func.name)
                else {
                    let other = func.name.as_str();
                    let names: Vec<&str> = SCALAR_FUNCTIONS.iter().map(|s| s.0).collect();
                    let mut er = self.at(
                        ErrorKind::UnknownFunction,
                        func.span,
                        format!("unknown function `{other}`"),
                        "not a function",
                    );
                    let instead = PRIMITIVES.iter().any(|p| p.0 == other).then(|| {
                        format!(
                            "`{other}` works on whole sequences; a lambda body works on single values ({})",
                            names.join(", ")
                        )
                    });
                    let sigs: Vec<&str> = SCALAR_FUNCTIONS.iter().map(|s| s.2).collect();
                    let help = unknown_help(other, instead, &names, Listing::Nothing)
                        .unwrap_or_else(|| {
                            format!("functions in lambda bodies: {}", sigs.join(", "))
                        });
                    er = er.with_help(help);
                    self.err(er);
                    return None;
                };
                if args.len() != sig_arity_count(sig) {
                    let er =
                        arity_error(&self.f.source, e.span, &func.name, sig, args.len(), "given");
                    self.err(er);
                    return None;
                }
                let mut out = Vec::new();
                for a in lowered {
                    out.push(a?);
                }
                Some(Expr::Call(builtin, out))
            }
        }
    }

    /// Reports a lambda evaluation failure at the sub-expression that failed.
    pub(super) fn lambda_error(
        &mut self,
        l: &ast::Lambda,
        err: &ScalarError,
        args: &[(Value, String)],
        node_desc: &str,
    ) {
        let sub = subexpr(&l.body, &err.path);
        let with: Vec<String> = args.iter().map(|(v, p)| format!("{p} = {v}")).collect();
        let (kind, msg) = match &err.kind {
            ScalarErrorKind::Type { .. } => (
                ErrorKind::Type,
                format!("type error in the lambda of {node_desc}: {}", err.kind),
            ),
            ScalarErrorKind::DivisionByZero { .. } | ScalarErrorKind::Overflow { .. } => (
                ErrorKind::Arithmetic,
                format!(
                    "the lambda of {node_desc} fails on some values: {}",
                    err.kind
                ),
            ),
            ScalarErrorKind::MissingParam { .. } => {
                (ErrorKind::Internal, format!("internal error: {}", err.kind))
            }
        };
        let e = self
            .at(kind, sub.span, msg, format!("fails when {}", with.join(", ")))
            .with_help(
                "a lambda must work for every value its arguments can take (their value sets); guard the \
                 case with `if ... then ... else ...`",
            );
        self.err(e);
    }
}
