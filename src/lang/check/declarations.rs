//! Interpretations, circuits and checks: lookups of what they name, and their expectations.

use super::*;

/// The ablations `faithful` and `minimal` name (the harness implements each).
pub const ABLATIONS: [&str; 3] = ["zero", "mean", "resample"];

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

    /// An interpretation or a pipeline by name (what `compare`, `congruent` and
    /// `distinguishable` may name), or an error.
    fn lookup_target(&mut self, f: &ParsedFile, name: &Ident, context: &str) -> bool {
        self.spec.pipelines.contains_key(&name.name)
            || self.lookup_program(f, name, context).is_some()
    }

    pub(super) fn check(&mut self, f: &ParsedFile, c: &ast::CheckDef) {
        let name = c.name.name.clone();
        let before = self.errors.len();
        let mut model = None;
        let mut model_source = None;
        let mut compare = Vec::new();
        let mut samples = None;
        let mut family = ImplementationFamily::Compiled;
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
                ast::CheckField::Model { model: m, span } => {
                    model = self.model_ref(f, m);
                    model_source = source_ref(f, *span);
                }
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
                        if self.lookup_target(f, n, "`compare`") {
                            compare.push(n.name.clone());
                        }
                    }
                }
                ast::CheckField::Samples {
                    value, family: fam, ..
                } => {
                    match value.text.parse::<u64>() {
                        Ok(n) if n >= 3 => samples = Some(n),
                        _ => self.err(LangError::at(
                            ErrorKind::Check,
                            &f.source,
                            value.span,
                            format!("`samples {}` is out of range", value.text),
                            "expected a count from 3 to 2^64-1 (a selectivity cell draws three distinct implementations)",
                        )),
                    }
                    match fam.as_ref().map(|i| (i.name.as_str(), i.span)) {
                        None | Some(("compiled", _)) => {}
                        Some(("trained", _)) => family = ImplementationFamily::Trained,
                        Some((other, span)) => self.err(LangError::at(
                            ErrorKind::Check,
                            &f.source,
                            span,
                            format!("`{other}` is not a family of implementations"),
                            "expected `compiled` or `trained`",
                        )),
                    }
                }
                ast::CheckField::Seed { value, .. } => {
                    if let Some(n) = self.seed_value(f, value) {
                        seed = Some(n);
                    }
                }
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
                    if let Some(e) = self.expectation(f, goal, args, bound.as_ref(), *span) {
                        expectations.push(Expect {
                            text: crate::lang::fmt::check_field_text(field),
                            goal: e,
                            source: source_ref(f, *span),
                        });
                    }
                }
            }
        }
        if self.errors.len() == before {
            self.check_consistency(f, c, model.is_some(), &compare, &expectations);
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
                model_source,
                compare,
                samples,
                family,
                seed,
                epsilon,
                expectations,
                source: source_ref(f, c.span),
            },
        );
    }

    /// A seed literal, or an error when it does not fit 64 bits.
    fn seed_value(&mut self, f: &ParsedFile, n: &ast::NumLit) -> Option<u64> {
        let v = n.text.parse::<u64>().ok();
        if v.is_none() {
            self.err(LangError::at(
                ErrorKind::Check,
                &f.source,
                n.span,
                format!("seed `{}` does not fit 64 bits", n.text),
                "expected a seed from 0 to 2^64-1",
            ));
        }
        v
    }

    /// `model "dir"` or `model compiled(I[, seed S])`.
    fn model_ref(&mut self, f: &ParsedFile, m: &ast::ModelAst) -> Option<ModelRef> {
        match m {
            ast::ModelAst::Dir(path) => {
                if path.value.trim().is_empty() {
                    self.err(LangError::at(
                        ErrorKind::Check,
                        &f.source,
                        path.span,
                        "the model directory is empty",
                        "expected a directory relative to this file",
                    ));
                    return None;
                }
                Some(ModelRef::Dir(PathBuf::from(&path.value)))
            }
            ast::ModelAst::Compiled { program, seed } => {
                let seed = match seed {
                    None => None,
                    Some(s) => Some(self.seed_value(f, s)?),
                };
                self.lookup_program(f, program, "`compiled`")?;
                Some(ModelRef::Compiled {
                    program: program.name.clone(),
                    seed,
                })
            }
        }
    }

    /// What the expectations of one check need of each other: a model for the model
    /// expectations, and interpretations to compare `congruent` with.
    fn check_consistency(
        &mut self,
        f: &ParsedFile,
        c: &ast::CheckDef,
        has_model: bool,
        compare: &[String],
        expectations: &[Expect],
    ) {
        let name = &c.name.name;
        let expect_spans: Vec<Span> = c
            .fields
            .iter()
            .filter_map(|fl| match fl {
                ast::CheckField::Expect { span, .. } => Some(*span),
                _ => None,
            })
            .collect();
        if expectations.is_empty() {
            self.err(
                LangError::at(
                    ErrorKind::Check,
                    &f.source,
                    c.name.span,
                    format!("check `{name}` expects nothing"),
                    "no `expect` in this check",
                )
                .with_help("add what must hold, e.g. `expect implements(I)` or `expect iia(circuit) >= 0.95`"),
            );
            return;
        }
        // Every interpretation a comparison expectation names is compared.
        let mut compared: Vec<&str> = compare.iter().map(String::as_str).collect();
        for e in expectations {
            match &e.goal {
                Expectation::Congruent(a) => compared.push(a),
                Expectation::Distinguishable(a, b) | Expectation::Indistinguishable(a, b) => {
                    compared.push(a);
                    compared.push(b);
                }
                _ => {}
            }
        }
        compared.sort_unstable();
        compared.dedup();
        for (e, span) in expectations.iter().zip(&expect_spans) {
            let needs_model = !matches!(
                e.goal,
                Expectation::Distinguishable(..) | Expectation::Indistinguishable(..)
            );
            if needs_model && !has_model {
                self.err(
                    LangError::at(
                        ErrorKind::Check,
                        &f.source,
                        *span,
                        format!("`expect {}` needs a model, and check `{name}` names none", e.text),
                        "tests a model",
                    )
                    .with_help("add `model \"DIR\"` (relative to this file) or `model compiled(INTERPRETATION)`"),
                );
            }
            if let Expectation::Congruent(a) = &e.goal
                && compared.len() < 2
            {
                self.err(
                    LangError::at(
                        ErrorKind::Check,
                        &f.source,
                        *span,
                        format!("`congruent({a})` has nothing to be congruent against"),
                        "the model is compared with no alternative",
                    )
                    .with_help(format!("name the alternatives: `compare {a} vs OTHER`")),
                );
            }
        }
    }

    pub(super) fn expectation(
        &mut self,
        f: &ParsedFile,
        goal: &Ident,
        args: &[Ident],
        bound: Option<&ast::BoundAst>,
        span: Span,
    ) -> Option<Expectation> {
        // (goal, signature, bound: the figure's range when it takes one)
        type Goal = (&'static str, &'static str, Option<(f64, f64)>);
        const GOALS: &[Goal] = &[
            ("implements", "implements(interpretation)", None),
            (
                "accuracy",
                "accuracy(interpretation) >= 0.99",
                Some((0.0, 1.0)),
            ),
            ("congruent", "congruent(interpretation)", None),
            (
                "distinguishable",
                "distinguishable(interpretation, interpretation)",
                None,
            ),
            (
                "indistinguishable",
                "indistinguishable(interpretation, interpretation)",
                None,
            ),
            ("iia", "iia(circuit) >= 0.95", Some((0.0, 1.0))),
            (
                "faithful",
                "faithful(circuit, ablation) >= 0.99",
                Some((0.0, 1.0)),
            ),
            (
                "minimal",
                "minimal(circuit, ablation) >= 0.01",
                Some((-1.0, 1.0)),
            ),
            (
                "similarity",
                "similarity(measure, interpretation) >= 0.9",
                Some((f64::NEG_INFINITY, f64::INFINITY)),
            ),
        ];
        let Some(&(_, sig, range)) = GOALS.iter().find(|(g, _, _)| *g == goal.name) else {
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
        // The ablation of `faithful` and `minimal` may be left out (resample).
        let optional_last = matches!(goal.name.as_str(), "faithful" | "minimal");
        let arity_ok = args.len() == sig_arity_count(sig)
            || (optional_last && args.len() + 1 == sig_arity_count(sig));
        if !arity_ok {
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
        match goal.name.as_str() {
            "faithful" | "minimal" => {
                if !self.lookup_circuit(f, &args[0], &format!("`{}`", goal.name)) {
                    return None;
                }
                let ablation = match args.get(1) {
                    None => "resample".to_string(),
                    Some(a) if ABLATIONS.contains(&a.name.as_str()) => a.name.clone(),
                    Some(a) => {
                        self.err(LangError::at(
                            ErrorKind::Check,
                            &f.source,
                            a.span,
                            format!("`{}` is not an ablation", a.name),
                            "expected zero, mean or resample",
                        ));
                        return None;
                    }
                };
                let bound = self.expect_bound(f, goal, sig, range, bound, span)??;
                let circuit = args[0].name.clone();
                return Some(if goal.name == "faithful" {
                    Expectation::Faithful {
                        circuit,
                        ablation,
                        bound,
                    }
                } else {
                    Expectation::Minimal {
                        circuit,
                        ablation,
                        bound,
                    }
                });
            }
            "iia" => {
                if !self.lookup_circuit(f, &args[0], "`iia`") {
                    return None;
                }
                let bound = self.expect_bound(f, goal, sig, range, bound, span)?;
                return Some(Expectation::Iia {
                    circuit: args[0].name.clone(),
                    bound: bound?,
                });
            }
            "similarity" => {
                let measure = &args[0];
                self.lookup_program(f, &args[1], "`similarity`")?;
                if !measure
                    .name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                {
                    self.err(LangError::at(
                        ErrorKind::Check,
                        &f.source,
                        measure.span,
                        format!("`{}` is not a similarity measure", measure.name),
                        "expected a measure such as ridge-r2 or cka:linear",
                    ));
                    return None;
                }
                let bound = self.expect_bound(f, goal, sig, range, bound, span)?;
                return Some(Expectation::Similarity {
                    measure: measure.name.clone(),
                    program: args[1].name.clone(),
                    bound: bound?,
                });
            }
            _ => {}
        }
        let mut ok = true;
        for a in args {
            let context = format!("`{}`", goal.name);
            ok &= match goal.name.as_str() {
                "implements" | "accuracy" => self.lookup_program(f, a, &context).is_some(),
                _ => self.lookup_target(f, a, &context),
            };
        }
        if !ok {
            return None;
        }
        if args.len() == 2 && args[0].name == args[1].name {
            self.err(LangError::at(
                ErrorKind::Check,
                &f.source,
                args[1].span,
                format!("`{}` compares `{}` with itself", goal.name, args[0].name),
                "the same interpretation twice",
            ));
            return None;
        }
        let bound = self.expect_bound(f, goal, sig, range, bound, span)?;
        let name = |i: usize| args[i].name.clone();
        Some(match goal.name.as_str() {
            "accuracy" => Expectation::Accuracy {
                program: name(0),
                bound: bound?,
            },
            "congruent" => Expectation::Congruent(name(0)),
            "distinguishable" => Expectation::Distinguishable(name(0), name(1)),
            "indistinguishable" => Expectation::Indistinguishable(name(0), name(1)),
            _ => Expectation::Implements(name(0)),
        })
    }

    /// The bound an expectation takes (`Some(None)`: it takes none and has none), or an error.
    fn expect_bound(
        &mut self,
        f: &ParsedFile,
        goal: &Ident,
        sig: &str,
        range: Option<(f64, f64)>,
        bound: Option<&ast::BoundAst>,
        span: Span,
    ) -> Option<Option<Bound>> {
        Some(match (range, bound) {
            (None, None) => None,
            (None, Some(b)) => {
                let n = match b {
                    ast::BoundAst::Cmp(_, n) => n,
                    ast::BoundAst::Approx { value, .. } => value,
                };
                self.err(LangError::at(
                    ErrorKind::Check,
                    &f.source,
                    n.span,
                    format!("`{}` is true or false; it takes no bound", goal.name),
                    "unexpected bound",
                ));
                return None;
            }
            (Some(_), None) => {
                self.err(
                    LangError::at(
                        ErrorKind::Check,
                        &f.source,
                        span,
                        format!("`{}` needs a bound", goal.name),
                        "compare it with a number",
                    )
                    .with_help(format!("write `expect {sig}`")),
                );
                return None;
            }
            (Some(r), Some(b)) => Some(self.bound(f, &goal.name, b, r)?),
        })
    }

    /// A bound `op x` or `~= x +- t` whose numbers lie in `range` (`==` / `!=` refused).
    fn bound(
        &mut self,
        f: &ParsedFile,
        goal: &str,
        b: &ast::BoundAst,
        (lo, hi): (f64, f64),
    ) -> Option<Bound> {
        let number = |this: &mut Self, n: &ast::NumLit| -> Option<f64> {
            let v = parse_number(&n.text)
                .ok()
                .map(|r| *r.numer() as f64 / *r.denom() as f64);
            match v {
                Some(v) if v >= lo && v <= hi => Some(v),
                _ => {
                    let what = if lo == 0.0 && hi == 1.0 {
                        format!("`{goal}` is a fraction between 0 and 1, not {}", n.text)
                    } else {
                        format!("`{}` is not a number the bound can use", n.text)
                    };
                    this.err(LangError::at(
                        ErrorKind::Check,
                        &f.source,
                        n.span,
                        what,
                        if lo == 0.0 && hi == 1.0 {
                            "expected a number from 0 to 1"
                        } else {
                            "expected a number"
                        },
                    ));
                    None
                }
            }
        };
        match b {
            ast::BoundAst::Cmp(op, n) => {
                if matches!(op, ast::CmpOp::Eq | ast::CmpOp::Ne) {
                    self.err(
                        LangError::at(
                            ErrorKind::Check,
                            &f.source,
                            n.span,
                            format!(
                                "`{goal}` is a measured figure; `{}` on it is never meant",
                                op.as_str()
                            ),
                            "exact comparison of a figure",
                        )
                        .with_help(format!("state a tolerance: `~= {} +- 0.01`", n.text)),
                    );
                    return None;
                }
                let value = number(self, n)?;
                Some(Bound::Cmp {
                    cmp: cmp_to_ir(*op),
                    value,
                })
            }
            ast::BoundAst::Approx { value, tolerance } => {
                let v = number(self, value)?;
                let t = parse_number(&tolerance.text)
                    .ok()
                    .map(|r| *r.numer() as f64 / *r.denom() as f64);
                let Some(t) = t.filter(|t| *t >= 0.0 && t.is_finite()) else {
                    self.err(LangError::at(
                        ErrorKind::Check,
                        &f.source,
                        tolerance.span,
                        format!("the tolerance `{}` is not a number >= 0", tolerance.text),
                        "expected a tolerance",
                    ));
                    return None;
                };
                Some(Bound::Approx {
                    value: v,
                    tolerance: t,
                })
            }
        }
    }
}
