//! Tasks: vocabularies, lengths, restrictions, token literals.

use super::*;

impl Checker {
    /// A `task` block: vocabulary, lengths, restriction. One function (~135 lines): one section
    /// per field, in the order the block declares them.
    pub(super) fn task(&mut self, f: &ParsedFile, t: &ast::TaskDef) {
        let name = t.name.name.clone();
        let before = self.errors.len();
        let mut vocab_field: Option<(&Vec<ast::VocabItem>, Span)> = None;
        let mut max_len_field: Option<(&ast::NumLit, Span)> = None;
        let mut where_field: Option<(&SeqExpr, Span)> = None;
        for field in &t.fields {
            let (word, span, first) = match field {
                ast::TaskField::Vocab { items, span } => {
                    ("vocab", *span, keep_first(&mut vocab_field, items, *span))
                }
                ast::TaskField::MaxLen { value, span } => (
                    "max_len",
                    *span,
                    keep_first(&mut max_len_field, value, *span),
                ),
                ast::TaskField::Where { expr, span } => {
                    ("where", *span, keep_first(&mut where_field, expr, *span))
                }
            };
            if let Some(first) = first {
                self.err(
                    LangError::at(
                        ErrorKind::TaskField,
                        &f.source,
                        span,
                        format!("task `{name}` has `{word}` twice"),
                        "repeated here",
                    )
                    .with_label(first, "first given here"),
                );
            }
        }
        let vocab = match vocab_field {
            None => {
                self.err(
                    LangError::at(
                        ErrorKind::TaskField,
                        &f.source,
                        t.name.span,
                        format!("task `{name}` has no vocabulary"),
                        "this task needs a `vocab`",
                    )
                    .with_help("add `vocab {a, b, c}` (or a range such as `vocab {0..=9}`)"),
                );
                None
            }
            Some((items, span)) => self.vocab(f, &name, items, span),
        };
        let max_len = match max_len_field {
            None => {
                self.err(
                    LangError::at(
                        ErrorKind::TaskField,
                        &f.source,
                        t.name.span,
                        format!("task `{name}` has no `max_len`"),
                        "this task needs a `max_len`",
                    )
                    .with_help("add `max_len 5`: the longest input of the task's domain"),
                );
                None
            }
            Some((lit, _)) => match lit.text.parse::<usize>() {
                Ok(n) if (1..=MAX_LEN_LIMIT).contains(&n) => Some(n),
                _ => {
                    self.err(
                        LangError::at(
                            ErrorKind::MaxLen,
                            &f.source,
                            lit.span,
                            format!("`max_len {}` is out of range", lit.text),
                            format!("expected a length from 1 to {MAX_LEN_LIMIT}"),
                        )
                        .with_help(format!(
                            "the bounded domain holds every input of length 1..=max_len; congruity accepts \
                             max_len up to {MAX_LEN_LIMIT}"
                        )),
                    );
                    None
                }
            },
        };
        let (Some(vocab), Some(max_len)) = (vocab, max_len) else {
            self.broken.insert((Namespace::Task, name));
            return;
        };
        let mut task = Task {
            name: name.clone(),
            vocab,
            max_len,
            restriction: None,
            source: source_ref(f, t.span),
        };
        if let Some((expr, span)) = where_field {
            let mut b = GraphBuilder::new(self, f, &task);
            let root = b.seq_expr(expr, None);
            let graph = std::mem::take(&mut b.graph);
            if let Some(root) = root {
                match &graph.node(root).ty {
                    NodeType::Seq { values, .. }
                        if values.iter().all(|v| matches!(v, Value::Bool(_))) && !values.is_empty() =>
                    {
                        task.restriction = Some((graph, root));
                    }
                    NodeType::Seq { values, .. } => self.err(
                        LangError::at(
                            ErrorKind::Type,
                            &f.source,
                            expr.span,
                            "a task's `where` must be a boolean sequence",
                            format!("this can be {}", value_set_text(values)),
                        )
                        .with_label(span, "the domain restriction")
                        .with_help("an input is in the domain when `where` is true at every position"),
                    ),
                    NodeType::Selector => self.err(
                        LangError::at(
                            ErrorKind::ArgKind,
                            &f.source,
                            expr.span,
                            "a task's `where` must be a boolean sequence, not a selector",
                            "this is a selector",
                        )
                        .with_help("e.g. `where map(|w| w == 1, selector_width(select(tokens, tokens, ==)))`"),
                    ),
                }
            }
        }
        if self.errors.len() > before {
            self.broken.insert((Namespace::Task, name));
            return;
        }
        self.spec.tasks.insert(name, Arc::new(task));
    }

    pub(super) fn token_value(
        &mut self,
        f: &ParsedFile,
        t: &ast::TokenLit,
        what: &str,
    ) -> Option<Value> {
        match t {
            ast::TokenLit::Int(n) => match parse_int(&n.text) {
                Some(i) => Some(Value::int(i)),
                None => {
                    self.err(LangError::at(
                        ErrorKind::Literal,
                        &f.source,
                        n.span,
                        format!("`{}` does not fit a 64-bit integer", n.text),
                        "too large",
                    ));
                    None
                }
            },
            ast::TokenLit::Str(s) => Some(Value::sym(&s.value)),
            ast::TokenLit::Sym(i) => Some(Value::sym(&i.name)),
            ast::TokenLit::None(span) => {
                if what == "table" {
                    Some(Value::None)
                } else {
                    self.err(
                        LangError::at(
                            ErrorKind::Vocab,
                            &f.source,
                            *span,
                            "`none` cannot be a token",
                            "not a token",
                        )
                        .with_help("`none` is what an empty aggregate gives; a vocabulary holds real tokens"),
                    );
                    None
                }
            }
        }
    }

    pub(super) fn vocab(
        &mut self,
        f: &ParsedFile,
        task: &str,
        items: &[ast::VocabItem],
        span: Span,
    ) -> Option<Vec<Value>> {
        let before = self.errors.len();
        let mut seen: BTreeMap<Value, Span> = BTreeMap::new();
        let mut add = |ck: &mut Checker, v: Value, at: Span| {
            if let Some(first) = seen.get(&v) {
                ck.err(
                    LangError::at(
                        ErrorKind::Vocab,
                        &f.source,
                        at,
                        format!("token {v} appears twice in the vocabulary of `{task}`"),
                        "repeated here",
                    )
                    .with_label(*first, "first listed here"),
                );
            } else {
                seen.insert(v, at);
            }
        };
        for item in items {
            match item {
                ast::VocabItem::Token(t) => {
                    if let Some(v) = self.token_value(f, t, "vocab") {
                        add(self, v, t.span());
                    }
                }
                ast::VocabItem::Range {
                    lo,
                    hi,
                    inclusive,
                    span,
                } => {
                    let (Some(a), Some(b)) = (parse_int(&lo.text), parse_int(&hi.text)) else {
                        self.err(LangError::at(
                            ErrorKind::Literal,
                            &f.source,
                            *span,
                            "a range bound does not fit a 64-bit integer",
                            "too large",
                        ));
                        continue;
                    };
                    let last = if *inclusive {
                        Some(b)
                    } else {
                        b.checked_sub(1)
                    };
                    let count = last.map_or(0, |l| (i128::from(l) - i128::from(a) + 1).max(0));
                    if count == 0 {
                        self.err(
                            LangError::at(
                                ErrorKind::Vocab,
                                &f.source,
                                *span,
                                format!(
                                    "the range `{}` is empty",
                                    &f.source.text[span.start..span.end]
                                ),
                                "no tokens in this range",
                            )
                            .with_help("`lo..=hi` includes hi, `lo..hi` stops before it"),
                        );
                        continue;
                    }
                    if count > MAX_VOCAB as i128 {
                        self.err(LangError::at(
                            ErrorKind::Vocab,
                            &f.source,
                            *span,
                            format!("the range holds {count} tokens; a vocabulary may hold at most {MAX_VOCAB}"),
                            "too many tokens",
                        ));
                        continue;
                    }
                    for i in 0..count {
                        add(self, Value::int(a + i as i64), *span);
                    }
                }
            }
        }
        if seen.is_empty() && self.errors.len() == before {
            self.err(
                LangError::at(
                    ErrorKind::Vocab,
                    &f.source,
                    span,
                    format!("the vocabulary of `{task}` is empty"),
                    "no tokens",
                )
                .with_help("list the tokens: `vocab {a, b, c}`"),
            );
        }
        if seen.len() > MAX_VOCAB {
            self.err(LangError::at(
                ErrorKind::Vocab,
                &f.source,
                span,
                format!(
                    "the vocabulary holds {} tokens; at most {MAX_VOCAB} are allowed",
                    seen.len()
                ),
                "too many tokens",
            ));
        }
        if self.errors.len() > before {
            return None;
        }
        // BTreeMap keys come out sorted: the IR's vocabulary order.
        Some(seen.into_keys().collect())
    }

    pub(super) fn lookup_task(
        &mut self,
        f: &ParsedFile,
        name: &Ident,
        context: &str,
    ) -> Option<Arc<Task>> {
        if let Some(t) = self.spec.tasks.get(&name.name) {
            return Some(t.clone());
        }
        if self.is_broken(Namespace::Task, &name.name) {
            return None;
        }
        let mut e = LangError::at(
            ErrorKind::UnknownTask,
            &f.source,
            name.span,
            format!("unknown task `{}`", name.name),
            format!("{context} names a task that is not defined"),
        );
        let known: Vec<&str> = self.spec.tasks.keys().map(|s| s.as_str()).collect();
        let help = unknown_help(
            &name.name,
            None,
            &known,
            Listing::All {
                noun: "tasks in scope",
                when_none: Some(
                    "no task is defined in this file or its imports; define one with `task name { ... }`",
                ),
            },
        );
        e = with_help(e, help);
        self.err(e);
        None
    }
}
