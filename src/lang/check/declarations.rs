//! Interpretations, circuits and checks: lookups of what they name, and their expectations.

use super::*;

impl Checker {
    pub(super) fn interpretation(&mut self, f: &ParsedFile, i: &ast::InterpDef) {
        let name = i.name.name.clone();
        let Some(task) = self.lookup_task(f, &i.task, &format!("interpretation `{name}`")) else {
            self.broken.insert((Namespace::Program, name));
            return;
        };
        let before = self.errors.len();
        let mut b = GraphBuilder::new(self, f, &task);
        let output = b.interpretation(i);
        let graph = std::mem::take(&mut b.graph);
        if self.errors.len() > before {
            self.broken.insert((Namespace::Program, name));
            return;
        }
        let Some(output) = output else {
            self.broken.insert((Namespace::Program, name));
            return;
        };
        self.spec.programs.insert(
            name.clone(),
            Program {
                name,
                task,
                graph,
                output,
                source: source_ref(f, i.span),
            },
        );
    }

    /// An interpretation by name, or a quiet `None` when it is broken, or an error.
    pub(super) fn lookup_program(
        &mut self,
        f: &ParsedFile,
        name: &Ident,
        context: &str,
    ) -> Option<&Program> {
        if self.spec.programs.contains_key(&name.name) {
            return self.spec.programs.get(&name.name);
        }
        if self.is_broken(Namespace::Program, &name.name) {
            return None;
        }
        let mut e = LangError::at(
            ErrorKind::UnknownName,
            &f.source,
            name.span,
            format!("unknown interpretation `{}`", name.name),
            format!("{context} names an interpretation that is not defined"),
        );
        let instead = if self.spec.pipelines.contains_key(&name.name) {
            Some(format!(
                "`{}` is a pipeline; {context} needs an interpretation",
                name.name
            ))
        } else if let Some(t) = self.spec.tasks.get(&name.name) {
            let of_task: Vec<&str> = self
                .spec
                .programs
                .values()
                .filter(|p| Arc::ptr_eq(&p.task, t))
                .map(|p| p.name.as_str())
                .collect();
            Some(if of_task.is_empty() {
                format!("`{}` is a task, not an interpretation", name.name)
            } else {
                format!(
                    "`{}` is a task; name one of its interpretations: {}",
                    name.name,
                    of_task.join(", ")
                )
            })
        } else {
            None
        };
        let known: Vec<&str> = self.spec.programs.keys().map(|s| s.as_str()).collect();
        e = with_help(
            e,
            unknown_help(&name.name, instead, &known, Listing::Nothing),
        );
        self.err(e);
        None
    }

    /// What `implements`, `equivalent` and `well_formed` may name: an interpretation, or a
    /// pipeline (its domain is its first stage's).
    pub(super) fn lookup_subject(
        &mut self,
        f: &ParsedFile,
        name: &Ident,
        context: &str,
    ) -> Option<ProofSubject> {
        if let Some(pl) = self.spec.pipelines.get(&name.name) {
            let first = pl.stages.first()?;
            let task = self.spec.programs.get(&first.program)?.task.clone();
            return Some(ProofSubject {
                name: name.name.clone(),
                task,
            });
        }
        self.lookup_program(f, name, context).map(ProofSubject::of)
    }

    pub(super) fn circuit(&mut self, f: &ParsedFile, c: &ast::CircuitDef) {
        let name = c.name.name.clone();
        let before = self.errors.len();
        let context = format!("circuit `{name}`");
        // Hook names are checked even when the interpretation is missing or broken.
        let prog = self.lookup_program(f, &c.program, &context).cloned();
        let mut sites = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for entry in &c.entries {
            let var = &entry.var;
            let mut hooks_ir = Vec::new();
            for h in &entry.hooks {
                let head = match &h.head {
                    None => None,
                    Some(n) => match n.text.parse::<usize>() {
                        Ok(v) => Some(v),
                        Err(_) => {
                            self.err(LangError::at(
                                ErrorKind::Literal,
                                &f.source,
                                n.span,
                                format!("head index `{}` is too large", n.text),
                                "too large",
                            ));
                            continue;
                        }
                    },
                };
                if let Err(problem) = hooks::validate(&h.name, head.is_some()) {
                    let name_end = h.span.start + h.name.len();
                    // A valid hook with a head it cannot have: point at the `[h]`.
                    let on_head = head.is_some() && hooks::validate(&h.name, false).is_ok();
                    let span = if on_head {
                        Span::new(name_end, h.span.end)
                    } else {
                        Span::new(h.span.start, name_end)
                    };
                    let mut e = LangError::at(
                        ErrorKind::Hook,
                        &f.source,
                        span,
                        problem.message,
                        problem.label,
                    );
                    if on_head {
                        e = e.with_label(Span::new(h.span.start, name_end), "this hook");
                    }
                    if let Some(help) = problem.help {
                        e = e.with_help(help);
                    }
                    self.err(e);
                    continue;
                }
                hooks_ir.push(HookRef {
                    hook: h.name.clone(),
                    head,
                });
            }
            if let Some(first) = seen.get(&var.name) {
                self.err(
                    LangError::at(
                        ErrorKind::Duplicate,
                        &f.source,
                        var.span,
                        format!("circuit `{name}` lists `{}` twice", var.name),
                        "listed again here",
                    )
                    .with_label(*first, "first listed here")
                    .with_help(
                        "list all of a variable's hooks in one entry: `x -> hook_a, hook_b`",
                    ),
                );
                continue;
            }
            seen.insert(var.name.clone(), var.span);
            let Some(prog) = &prog else { continue };
            let Some(node) = prog.variable(&var.name) else {
                self.err(unknown_variable(f, prog, var, true));
                continue;
            };
            sites.push(CircuitSite {
                variable: var.name.clone(),
                node,
                hooks: hooks_ir,
            });
        }
        let Some(prog) = prog else {
            self.broken.insert((Namespace::Circuit, name));
            return;
        };
        if self.errors.len() > before {
            self.broken.insert((Namespace::Circuit, name));
            return;
        }
        self.spec.circuits.insert(
            name.clone(),
            Circuit {
                name,
                program: prog.name.clone(),
                sites,
                source: source_ref(f, c.span),
            },
        );
    }

    pub(super) fn lookup_circuit(&mut self, f: &ParsedFile, name: &Ident, context: &str) -> bool {
        if self.spec.circuits.contains_key(&name.name) {
            return true;
        }
        if self.is_broken(Namespace::Circuit, &name.name) {
            return false;
        }
        let known: Vec<&str> = self.spec.circuits.keys().map(|s| s.as_str()).collect();
        let mut e = LangError::at(
            ErrorKind::UnknownName,
            &f.source,
            name.span,
            format!("unknown circuit `{}`", name.name),
            format!("{context} needs a circuit"),
        );
        let instead = self.spec.programs.contains_key(&name.name).then(|| {
            format!(
                "`{}` is an interpretation; define `circuit c for {} {{ ... }}`",
                name.name, name.name
            )
        });
        e = with_help(
            e,
            unknown_help(&name.name, instead, &known, Listing::Nothing),
        );
        self.err(e);
        false
    }

    // --- checks ------------------------------------------------------------------------------

    pub(super) fn check(&mut self, f: &ParsedFile, c: &ast::CheckDef) {
        let name = c.name.name.clone();
        let before = self.errors.len();
        let mut model = None;
        let mut compare = Vec::new();
        let mut samples = None;
        let mut seed = None;
        let mut epsilon = None;
        let mut expectations = Vec::new();
        let mut firsts: HashMap<&'static str, Span> = HashMap::new();
        for field in &c.fields {
            let word = match field {
                ast::CheckField::Model { .. } => "model",
                ast::CheckField::Compare { .. } => "compare",
                ast::CheckField::Samples { .. } => "samples",
                ast::CheckField::Seed { .. } => "seed",
                ast::CheckField::Epsilon { .. } => "epsilon",
                ast::CheckField::Expect { .. } => "expect",
            };
            if word != "expect" {
                if let Some(first) = firsts.get(word) {
                    self.err(
                        LangError::at(
                            ErrorKind::Check,
                            &f.source,
                            field.span(),
                            format!("check `{name}` has `{word}` twice"),
                            "repeated here",
                        )
                        .with_label(*first, "first given here"),
                    );
                    continue;
                }
                firsts.insert(word, field.span());
            }
            match field {
                ast::CheckField::Model { path, .. } => model = Some(PathBuf::from(&path.value)),
                ast::CheckField::Compare { names, .. } => {
                    let mut seen = HashSet::new();
                    for n in names {
                        if !seen.insert(n.name.clone()) {
                            self.err(LangError::at(
                                ErrorKind::Check,
                                &f.source,
                                n.span,
                                format!("`{}` is compared with itself", n.name),
                                "listed twice",
                            ));
                            continue;
                        }
                        if self.lookup_program(f, n, "`compare`").is_some() {
                            compare.push(n.name.clone());
                        }
                    }
                }
                ast::CheckField::Samples { value, .. } => match value.text.parse::<u64>() {
                    Ok(n) if n >= 1 => samples = Some(n),
                    _ => self.err(LangError::at(
                        ErrorKind::Check,
                        &f.source,
                        value.span,
                        format!("`samples {}` is out of range", value.text),
                        "expected a count from 1 to 2^64-1",
                    )),
                },
                ast::CheckField::Seed { value, .. } => match value.text.parse::<u64>() {
                    Ok(n) => seed = Some(n),
                    Err(_) => self.err(LangError::at(
                        ErrorKind::Check,
                        &f.source,
                        value.span,
                        format!("seed `{}` does not fit 64 bits", value.text),
                        "expected a seed from 0 to 2^64-1",
                    )),
                },
                ast::CheckField::Epsilon { value, .. } => match value.text.parse::<f64>() {
                    Ok(e) if e.is_finite() && e >= 0.0 => epsilon = Some(e),
                    _ => self.err(LangError::at(
                        ErrorKind::Check,
                        &f.source,
                        value.span,
                        format!("`epsilon {}` is out of range", value.text),
                        "expected a finite number >= 0",
                    )),
                },
                ast::CheckField::Expect {
                    goal,
                    args,
                    bound,
                    span,
                } => {
                    if let Some(e) = self.expectation(f, goal, args, bound, *span) {
                        expectations.push(e);
                    }
                }
            }
        }
        if self.errors.len() > before {
            self.broken.insert((Namespace::Check, name));
            return;
        }
        self.spec.checks.insert(
            name.clone(),
            Check {
                name,
                model,
                compare,
                samples,
                seed,
                epsilon,
                expectations,
                source: source_ref(f, c.span),
            },
        );
    }

    pub(super) fn expectation(
        &mut self,
        f: &ParsedFile,
        goal: &Ident,
        args: &[Ident],
        bound: &Option<(ast::CmpOp, ast::NumLit)>,
        span: Span,
    ) -> Option<Expectation> {
        const GOALS: &[(&str, &str)] = &[
            ("congruent", "congruent(interpretation)"),
            (
                "distinguishable",
                "distinguishable(interpretation, interpretation)",
            ),
            ("iia", "iia(circuit) >= 0.9"),
            ("implements", "implements(interpretation)"),
        ];
        let Some((_, sig)) = GOALS.iter().find(|(g, _)| *g == goal.name) else {
            let mut e = LangError::at(
                ErrorKind::Check,
                &f.source,
                goal.span,
                format!("unknown expectation `{}`", goal.name),
                "not an expectation",
            );
            let names: Vec<&str> = GOALS.iter().map(|g| g.0).collect();
            let listing = Listing::All {
                noun: "expectations",
                when_none: None,
            };
            e = with_help(e, unknown_help(&goal.name, None, &names, listing));
            self.err(e);
            return None;
        };
        if args.len() != sig_arity_count(sig) {
            self.err(arity_error(
                &f.source,
                span,
                &goal.name,
                sig,
                args.len(),
                "here",
            ));
            return None;
        }
        if goal.name == "iia" {
            if !self.lookup_circuit(f, &args[0], "`iia`") {
                return None;
            }
            let Some((op, n)) = bound else {
                self.err(
                    LangError::at(
                        ErrorKind::Check,
                        &f.source,
                        span,
                        "`iia` needs a bound",
                        "compare it with a number",
                    )
                    .with_help(format!("write `expect iia({}) >= 0.9`", args[0].name)),
                );
                return None;
            };
            let value = match parse_number(&n.text) {
                Ok(r) if *r.numer() >= 0 && r.numer() <= r.denom() => {
                    *r.numer() as f64 / *r.denom() as f64
                }
                _ => {
                    self.err(LangError::at(
                        ErrorKind::Check,
                        &f.source,
                        n.span,
                        format!(
                            "an interchange-intervention accuracy is between 0 and 1, not {}",
                            n.text
                        ),
                        "expected a number from 0 to 1",
                    ));
                    return None;
                }
            };
            return Some(Expectation::Iia {
                circuit: args[0].name.clone(),
                cmp: cmp_to_ir(*op),
                bound: value,
            });
        }
        if let Some((_, n)) = bound {
            self.err(LangError::at(
                ErrorKind::Check,
                &f.source,
                n.span,
                format!("`{}` is true or false; only `iia` takes a bound", goal.name),
                "unexpected bound",
            ));
            return None;
        }
        let mut ok = true;
        for a in args {
            ok &= self
                .lookup_program(f, a, &format!("`{}`", goal.name))
                .is_some();
        }
        if !ok {
            return None;
        }
        Some(match goal.name.as_str() {
            "congruent" => Expectation::Congruent(args[0].name.clone()),
            "distinguishable" => {
                Expectation::Distinguishable(args[0].name.clone(), args[1].name.clone())
            }
            _ => Expectation::Implements(args[0].name.clone()),
        })
    }
}
