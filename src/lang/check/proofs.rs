//! `prove` blocks, and the shared messages about arities, subjects and variables.

use super::*;

impl Checker {
    pub(super) fn proof(&mut self, f: &ParsedFile, p: &ast::ProveDef) {
        const GOALS: &[(&str, &str)] = &[
            ("implements", "implements(program, reference)"),
            ("equivalent", "equivalent(program, program)"),
            (
                "aligned",
                "aligned(interpretation, interpretation, x = y, ...)",
            ),
            ("sufficient", "sufficient(circuit)"),
            ("well_formed", "well_formed(program)"),
        ];
        let goal_name = p.goal.name.as_str();
        let Some((_, sig)) = GOALS.iter().find(|(g, _)| *g == goal_name) else {
            let names: Vec<&str> = GOALS.iter().map(|g| g.0).collect();
            let mut e = LangError::at(
                ErrorKind::Proof,
                &f.source,
                p.goal.span,
                format!("unknown proof goal `{goal_name}`"),
                "not a proof goal",
            );
            let listing = Listing::All {
                noun: "goals",
                when_none: None,
            };
            e = with_help(e, unknown_help(goal_name, None, &names, listing));
            self.err(e);
            return;
        };
        let before = self.errors.len();
        let names: Vec<Option<&Ident>> = p
            .args
            .iter()
            .map(|a| match a {
                ast::ProofArg::Name(i) => Some(i),
                ast::ProofArg::Alias(..) => None,
            })
            .collect();
        // The leading arguments that must be plain names.
        let plain = match goal_name {
            "implements" | "equivalent" | "aligned" => 2,
            _ => 1,
        };
        let exact = goal_name != "aligned";
        if p.args.len() < plain || (exact && p.args.len() != plain) {
            self.err(arity_error(
                &f.source,
                p.span,
                goal_name,
                sig,
                p.args.len(),
                "here",
            ));
            return;
        }
        let mut lead = Vec::new();
        for (a, n) in p.args.iter().zip(&names).take(plain) {
            match n {
                Some(i) => lead.push((*i).clone()),
                None => {
                    if let ast::ProofArg::Alias(x, y) = a {
                        self.err(
                            LangError::at(
                                ErrorKind::Proof,
                                &f.source,
                                x.span.to(y.span),
                                format!("`{goal_name}` takes names here, not a `x = y` pair"),
                                "expected a name",
                            )
                            .with_help(format!("write `{sig}`")),
                        );
                    }
                    return;
                }
            }
        }
        let Some(goal) = self.proof_goal(f, p, goal_name, &lead) else {
            return;
        };
        let timeout_secs = self.proof_timeout(f, p);
        let name = proof_name(p);
        let name_ident = Ident {
            name: name.clone(),
            span: p.name.as_ref().map_or(p.span, |n| n.span),
        };
        if !self.define(Namespace::Proof, f, &name_ident) {
            return;
        }
        if self.errors.len() > before {
            return;
        }
        self.spec.proofs.push(Proof {
            name,
            goal,
            timeout_secs,
            source: source_ref(f, p.span),
        });
    }

    /// What a checked `prove` block claims, once its leading names are resolved (`None` after
    /// reporting why not).
    fn proof_goal(
        &mut self,
        f: &ParsedFile,
        p: &ast::ProveDef,
        goal_name: &str,
        lead: &[Ident],
    ) -> Option<ProofGoal> {
        Some(match goal_name {
            "sufficient" => {
                if !self.lookup_circuit(f, &lead[0], "`sufficient`") {
                    return None;
                }
                ProofGoal::Sufficient {
                    circuit: lead[0].name.clone(),
                }
            }
            "well_formed" => {
                self.lookup_subject(f, &lead[0], "`well_formed`")?;
                ProofGoal::WellFormed {
                    program: lead[0].name.clone(),
                }
            }
            "implements" | "equivalent" => {
                let context = format!("`{goal_name}`");
                let a = self.lookup_subject(f, &lead[0], &context);
                let b = self.lookup_subject(f, &lead[1], &context);
                let (Some(a), Some(b)) = (a, b) else {
                    return None;
                };
                if a.task.name != b.task.name {
                    self.err(different_tasks(f, goal_name, lead, &a, &b));
                    return None;
                }
                if goal_name == "implements" {
                    ProofGoal::Implements {
                        program: a.name,
                        reference: b.name,
                    }
                } else {
                    ProofGoal::Equivalent {
                        a: a.name,
                        b: b.name,
                    }
                }
            }
            _ => return self.aligned_goal(f, p, lead),
        })
    }

    /// `aligned(a, b, x = y, ...)`: both interpretations on one task, each pair's variables
    /// defined.
    fn aligned_goal(
        &mut self,
        f: &ParsedFile,
        p: &ast::ProveDef,
        lead: &[Ident],
    ) -> Option<ProofGoal> {
        let goal_name = "aligned";
        let a = self.lookup_program(f, &lead[0], "`aligned`").cloned();
        let b = self.lookup_program(f, &lead[1], "`aligned`").cloned();
        let (Some(a), Some(b)) = (a, b) else {
            return None;
        };
        if a.task.name != b.task.name {
            let (sa, sb) = (ProofSubject::of(&a), ProofSubject::of(&b));
            self.err(different_tasks(f, goal_name, lead, &sa, &sb));
            return None;
        }
        let mut pairs = Vec::new();
        for arg in &p.args[2..] {
            let (x, y) = match arg {
                ast::ProofArg::Name(i) => (i, i),
                ast::ProofArg::Alias(x, y) => (x, y),
            };
            for (prog, v) in [(&a, x), (&b, y)] {
                if prog.variable(&v.name).is_none() {
                    self.err(unknown_variable(f, prog, v, false));
                }
            }
            pairs.push((x.name.clone(), y.name.clone()));
        }
        if pairs.is_empty() {
            self.err(
                LangError::at(
                    ErrorKind::Arity,
                    &f.source,
                    p.span,
                    "`aligned` needs at least one pair of variables",
                    "no variables to align",
                )
                .with_help(format!("write `aligned({}, {}, x = y)`", a.name, b.name)),
            );
        }
        Some(ProofGoal::Aligned {
            a: a.name.clone(),
            b: b.name.clone(),
            pairs,
        })
    }

    /// The `timeout` of a `prove` block in seconds (`None` when absent, or after reporting a
    /// bad one).
    fn proof_timeout(&mut self, f: &ParsedFile, p: &ast::ProveDef) -> Option<f64> {
        match &p.timeout {
            None => None,
            Some(t) => match parse_number(&t.text) {
                Ok(r) if *r.numer() > 0 => Some(*r.numer() as f64 / *r.denom() as f64),
                _ => {
                    self.err(LangError::at(
                        ErrorKind::Proof,
                        &f.source,
                        t.span,
                        format!("timeout `{}` must be a positive number of seconds", t.text),
                        "expected seconds > 0",
                    ));
                    None
                }
            },
        }
    }
}

/// A `prove` block's name: the one given, else the goal and its arguments (`aligned_a_b_x_y`).
fn proof_name(p: &ast::ProveDef) -> String {
    match &p.name {
        Some(n) => n.name.clone(),
        None => {
            let mut parts = vec![p.goal.name.clone()];
            for a in &p.args {
                match a {
                    ast::ProofArg::Name(i) => parts.push(i.name.clone()),
                    ast::ProofArg::Alias(x, y) => {
                        parts.push(x.name.clone());
                        parts.push(y.name.clone());
                    }
                }
            }
            parts.join("_")
        }
    }
}

/// How many arguments a signature takes, in words; a last parameter `...` means "or more".
pub(super) fn sig_arity(sig: &str) -> String {
    let params = sig_params(sig);
    match params.split_last() {
        Some((last, fixed)) if last.trim() == "..." => {
            format!("{} or more arguments", fixed.len())
        }
        _ => plural(params.len(), "argument", "arguments"),
    }
}

/// `what` called with `found` arguments where `sig` takes another number. `found_word` ends the
/// label under the caret ("3 arguments here").
pub(super) fn arity_error(
    file: &SourceFile,
    span: Span,
    what: &str,
    sig: &str,
    found: usize,
    found_word: &str,
) -> LangError {
    LangError::at(
        ErrorKind::Arity,
        file,
        span,
        format!("`{what}` takes {}, found {found}", sig_arity(sig)),
        format!("{} {found_word}", plural(found, "argument", "arguments")),
    )
    .with_help(format!("write `{sig}`"))
}

/// The subject of a proof goal: its name and the task whose domain it reads.
pub(super) struct ProofSubject {
    pub(super) name: String,
    pub(super) task: Arc<Task>,
}

impl ProofSubject {
    pub(super) fn of(p: &Program) -> ProofSubject {
        ProofSubject {
            name: p.name.clone(),
            task: p.task.clone(),
        }
    }
}

/// A goal comparing two programs on one domain, given programs of different tasks.
pub(super) fn different_tasks(
    f: &ParsedFile,
    goal_name: &str,
    lead: &[Ident],
    a: &ProofSubject,
    b: &ProofSubject,
) -> LangError {
    LangError::at(
        ErrorKind::Proof,
        &f.source,
        lead[1].span,
        format!(
            "`{goal_name}` compares programs on one domain, but `{}` is for task `{}` and `{}` \
             for task `{}`",
            a.name, a.task.name, b.name, b.task.name
        ),
        format!("for task `{}`", b.task.name),
    )
    .with_label(lead[0].span, format!("for task `{}`", a.task.name))
}

/// "interpretation `p` has no variable `v`", with a guess when a variable's name is close;
/// `list_all` names every variable when none is.
pub(super) fn unknown_variable(
    f: &ParsedFile,
    prog: &Program,
    var: &Ident,
    list_all: bool,
) -> LangError {
    let vars: Vec<&str> = prog
        .graph
        .nodes
        .iter()
        .filter_map(|n| n.name.as_deref())
        .collect();
    let e = LangError::at(
        ErrorKind::UnknownName,
        &f.source,
        var.span,
        format!(
            "interpretation `{}` has no variable `{}`",
            prog.name, var.name
        ),
        "not a variable of the interpretation",
    );
    let help = unknown_help(&var.name, None, &vars, Listing::Nothing)
        .or_else(|| list_all.then(|| format!("its variables: {}, output", vars.join(", "))));
    with_help(e, help)
}

pub(super) fn cmp_to_ir(op: ast::CmpOp) -> Comparison {
    match op {
        ast::CmpOp::Eq => Comparison::Eq,
        ast::CmpOp::Ne => Comparison::Ne,
        ast::CmpOp::Lt => Comparison::Lt,
        ast::CmpOp::Le => Comparison::Le,
        ast::CmpOp::Gt => Comparison::Gt,
        ast::CmpOp::Ge => Comparison::Ge,
    }
}
