//! Pipelines: stages in order and the adapters between them.

use super::*;

impl Checker {
    /// A `pipeline` block: stages that exist, adapters that fit the next stage's vocabulary.
    /// One function (~125 lines): each stage is checked against the one before it.
    pub(super) fn pipeline(&mut self, f: &ParsedFile, p: &ast::PipelineDef) {
        let name = p.name.name.clone();
        let before = self.errors.len();
        let mut stages = Vec::new();
        let mut prev: Option<(String, ValueSet, usize)> = None;
        let mut ok = true;
        for (i, st) in p.stages.iter().enumerate() {
            let context = format!("stage {} of pipeline `{name}`", i + 1);
            let Some(prog) = self.lookup_program(f, &st.name, &context) else {
                ok = false;
                prev = None;
                continue;
            };
            let prog_name = prog.name.clone();
            let task = prog.task.clone();
            let out_values = match &prog.graph.node(prog.output).ty {
                NodeType::Seq { values, .. } => values.clone(),
                NodeType::Selector => ValueSet::new(),
            };
            let vocab: ValueSet = task.vocab.iter().cloned().collect();
            let mut adapter = None;
            match (&prev, &st.adapter) {
                (None, Some(a)) if i == 0 => {
                    self.err(
                        LangError::at(
                            ErrorKind::Pipeline,
                            &f.source,
                            a.span(),
                            "the first stage of a pipeline cannot have an adapter",
                            "nothing comes before this stage",
                        )
                        .with_help("the first stage reads the pipeline's input directly"),
                    );
                }
                (None, _) => {}
                (Some((prev_name, prev_values, prev_len)), a) => {
                    if task.max_len < *prev_len {
                        self.err(
                            LangError::at(
                                ErrorKind::Pipeline,
                                &f.source,
                                st.name.span,
                                format!(
                                    "stage `{prog_name}` takes inputs of length at most {}, but `{prev_name}` \
                                     gives outputs up to length {prev_len}",
                                    task.max_len
                                ),
                                "max_len too small",
                            )
                            .with_help(format!("raise `max_len` of task `{}` to at least {prev_len}", task.name)),
                        );
                    }
                    let ir_adapter = match a {
                        None => None,
                        Some(a) => self.adapter(f, a, &task, &vocab),
                    };
                    let image: ValueSet = prev_values
                        .iter()
                        .map(|v| {
                            ir_adapter
                                .as_ref()
                                .map_or_else(|| v.clone(), |ad| ad.apply(v))
                        })
                        .collect();
                    let outside: ValueSet = image.difference(&vocab).cloned().collect();
                    if !outside.is_empty() && (a.is_none() || ir_adapter.is_some()) {
                        let msg = match a {
                            None => format!(
                                "stage `{prog_name}` cannot read the output of `{prev_name}`: {} {} not in the \
                                 vocabulary of task `{}`",
                                value_set_text(&outside),
                                if outside.len() == 1 { "is" } else { "are" },
                                task.name
                            ),
                            Some(_) => format!(
                                "after the adapter, the output of `{prev_name}` can still be {}, outside the \
                                 vocabulary of task `{}`",
                                value_set_text(&outside),
                                task.name
                            ),
                        };
                        let span = a.as_ref().map_or(st.name.span, |a| a.span());
                        let vocab_text = value_set_text(&vocab);
                        self.err(
                            LangError::at(
                                ErrorKind::Pipeline,
                                &f.source,
                                span,
                                msg,
                                format!(
                                    "{} of `{prev_name}`'s output values {} outside this stage's vocabulary",
                                    outside.len(),
                                    if outside.len() == 1 { "is" } else { "are" }
                                ),
                            )
                            .with_help(format!(
                                "`{prog_name}` reads {vocab_text}; map the other values with an adapter: `{} via \
                                 clamp`, `via modulo`, or `via table {{ {} -> ... }}`",
                                st.name.name,
                                outside.iter().next().map(|v| v.to_string()).unwrap_or_default()
                            )),
                        );
                    }
                    adapter = ir_adapter;
                }
            }
            stages.push(PipelineStage {
                program: prog_name.clone(),
                adapter,
            });
            prev = Some((prog_name, out_values, task.max_len));
        }
        if !ok || self.errors.len() > before {
            self.broken.insert((Namespace::Program, name));
            return;
        }
        self.spec.pipelines.insert(
            name.clone(),
            Pipeline {
                name,
                stages,
                source: source_ref(f, p.span),
            },
        );
    }

    pub(super) fn adapter(
        &mut self,
        f: &ParsedFile,
        a: &ast::AdapterDef,
        task: &Task,
        vocab: &ValueSet,
    ) -> Option<Adapter> {
        let ints: Vec<i64> = task.vocab.iter().filter_map(|v| v.as_int()).collect();
        match a {
            ast::AdapterDef::Clamp(span) => {
                let (Some(lo), Some(hi)) = (ints.iter().min(), ints.iter().max()) else {
                    self.err(LangError::at(
                        ErrorKind::Pipeline,
                        &f.source,
                        *span,
                        format!(
                            "`clamp` needs integer tokens, and task `{}` has none",
                            task.name
                        ),
                        "nothing to clamp to",
                    ));
                    return None;
                };
                Some(Adapter::Clamp { lo: *lo, hi: *hi })
            }
            ast::AdapterDef::Modulo(span) => {
                let contiguous = !ints.is_empty()
                    && ints.len() == task.vocab.len()
                    && ints.windows(2).all(|w| w[0].checked_add(1) == Some(w[1]));
                if !contiguous {
                    self.err(
                        LangError::at(
                            ErrorKind::Pipeline,
                            &f.source,
                            *span,
                            format!(
                                "`modulo` needs a vocabulary of consecutive integers; task `{}` has {}",
                                task.name,
                                value_set_text(vocab)
                            ),
                            "cannot wrap around this vocabulary",
                        )
                        .with_help("use `via table { ... }` to map values one by one"),
                    );
                    return None;
                }
                Some(Adapter::Modulo {
                    lo: ints[0],
                    n: ints.len() as i64,
                })
            }
            ast::AdapterDef::Table { rows, .. } => {
                let before = self.errors.len();
                let mut table: BTreeMap<Value, Value> = BTreeMap::new();
                let mut first_span: BTreeMap<Value, Span> = BTreeMap::new();
                for (from, to) in rows {
                    let (Some(k), Some(v)) = (
                        self.token_value(f, from, "table"),
                        self.token_value(f, to, "table"),
                    ) else {
                        continue;
                    };
                    if !vocab.contains(&v) {
                        self.err(LangError::at(
                            ErrorKind::Pipeline,
                            &f.source,
                            to.span(),
                            format!(
                                "the table maps {k} to {v}, which is not a token of task `{}`",
                                task.name
                            ),
                            format!("expected one of {}", value_set_text(vocab)),
                        ));
                    }
                    if let Some(first) = first_span.get(&k) {
                        self.err(
                            LangError::at(
                                ErrorKind::Duplicate,
                                &f.source,
                                from.span(),
                                format!("the table maps {k} twice"),
                                "repeated here",
                            )
                            .with_label(*first, "first mapped here"),
                        );
                        continue;
                    }
                    first_span.insert(k.clone(), from.span());
                    table.insert(k, v);
                }
                if self.errors.len() > before {
                    None
                } else {
                    Some(Adapter::Table(table))
                }
            }
        }
    }
}
