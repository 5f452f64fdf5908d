//! AST → checked IR: name resolution, kinds, encodings, lambda typing against value sets, value-set
//! inference, cycles, pipelines, circuits, checks and proofs.
//!
//! The checker keeps going after an error wherever the rest of the file still makes sense, so one
//! run reports every independent mistake. A definition that failed is remembered as broken, and
//! uses of it stay quiet instead of cascading.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use num_rational::Rational64;
use num_traits::{CheckedAdd, CheckedDiv};

use super::ast::{self, Arg, EncodingKw, ExprKind, Ident, Item, SeqExpr, SeqExprKind, Span, Stmt};
use super::diag::{ErrorKind, LangError, Report, SourceFile, did_you_mean, join_words};
use super::eval::{ScalarError, ScalarErrorKind, compare, eval_scalar};
use super::hooks;
use super::ir::*;

/// The longest `max_len` accepted: domains and value sets stay enumerable.
pub const MAX_LEN_LIMIT: usize = 64;
/// The most tokens a vocabulary may hold.
pub const MAX_VOCAB: usize = 10_000;
/// The most values one sequence's value set may hold.
pub const MAX_VALUE_SET: usize = 100_000;
/// The most lambda evaluations spent inferring or type-checking one node.
pub const MAX_EVALS: usize = 4_000_000;

/// The primitives of the sequence language and their parameters, for messages.
const PRIMITIVES: &[(&str, &str)] = &[
    ("map", "map(|x| ..., s)"),
    ("map2", "map2(|x, y| ..., s1, s2)"),
    ("select", "select(keys, queries, predicate)"),
    ("aggregate", "aggregate(selector, s)"),
    ("selector_width", "selector_width(selector)"),
    ("full", "full(value)"),
];
/// The functions of lambda bodies and their signatures, for messages.
const SCALAR_FUNCTIONS: &[(&str, Builtin, &str)] = &[
    ("min", Builtin::Min, "min(a, b)"),
    ("max", Builtin::Max, "max(a, b)"),
    ("abs", Builtin::Abs, "abs(a)"),
];
const BUILTIN_SEQS: &[&str] = &["tokens", "indices"];

/// One parsed file ready for checking.
#[derive(Clone, Debug)]
pub struct ParsedFile {
    pub source: SourceFile,
    /// The path used in [`SourceRef`]s.
    pub path: Arc<PathBuf>,
    pub ast: ast::File,
}

/// Checks files given in dependency order (each file after the files it imports); the last is
/// the root. Tasks, interpretations, pipelines and circuits of every file are in scope; checks
/// and proofs are taken from the root only.
pub fn check_files(files: &[ParsedFile]) -> Result<Spec, Report> {
    let mut ck = Checker::default();
    for (i, f) in files.iter().enumerate() {
        ck.file(f, i + 1 == files.len());
    }
    if ck.errors.is_empty() {
        Ok(ck.spec)
    } else {
        Err(Report::new(ck.errors))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Namespace {
    Task,
    /// Interpretations and pipelines: both can be run by name.
    Program,
    Circuit,
    Check,
    Proof,
}

impl Namespace {
    fn word(self) -> &'static str {
        match self {
            Namespace::Task => "task",
            Namespace::Program => "interpretation or pipeline",
            Namespace::Circuit => "circuit",
            Namespace::Check => "check",
            Namespace::Proof => "proof",
        }
    }
}

#[derive(Clone, Debug)]
struct DefSite {
    file: SourceFile,
    span: Span,
}

#[derive(Default)]
struct Checker {
    spec: Spec,
    errors: Vec<LangError>,
    defs: HashMap<(Namespace, String), DefSite>,
    /// Defined but failed to check: references to these stay quiet.
    broken: HashSet<(Namespace, String)>,
}

fn source_ref(f: &ParsedFile, span: Span) -> Option<SourceRef> {
    Some(SourceRef {
        file: f.path.clone(),
        start: span.start,
        end: span.end,
    })
}

/// Parses an integer or decimal literal (optionally negative) into an exact rational.
pub fn parse_number(text: &str) -> Result<Rational64, String> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((a, b)) => (a, b),
        None => (body, ""),
    };
    let too_big = || format!("`{text}` does not fit an exact 64-bit rational");
    let mut numer: i64 = 0;
    for c in int_part.chars().chain(frac_part.chars()) {
        let d = c
            .to_digit(10)
            .ok_or_else(|| format!("`{text}` is not a number"))?;
        numer = numer
            .checked_mul(10)
            .and_then(|n| n.checked_add(i64::from(d)))
            .ok_or_else(too_big)?;
    }
    let mut denom: i64 = 1;
    for _ in 0..frac_part.len() {
        denom = denom.checked_mul(10).ok_or_else(too_big)?;
    }
    if neg {
        numer = -numer;
    }
    Ok(Rational64::new(numer, denom))
}

fn parse_int(text: &str) -> Option<i64> {
    text.parse::<i64>().ok()
}

fn value_set_text(vs: &ValueSet) -> String {
    const SHOWN: usize = 12;
    let mut parts: Vec<String> = vs.iter().take(SHOWN).map(|v| v.to_string()).collect();
    if vs.len() > SHOWN {
        parts.push(format!("... ({} values)", vs.len()));
    }
    format!("{{{}}}", parts.join(", "))
}

/// Keeps the first of a field given several times; a repeat returns where the first was given.
fn keep_first<T>(slot: &mut Option<(T, Span)>, value: T, span: Span) -> Option<Span> {
    match slot {
        Some((_, first)) => Some(*first),
        None => {
            *slot = Some((value, span));
            None
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

impl Checker {
    fn err(&mut self, e: LangError) {
        self.errors.push(e);
    }

    fn is_broken(&self, ns: Namespace, name: &str) -> bool {
        self.broken.contains(&(ns, name.to_string()))
    }

    /// Registers a definition; reports a duplicate and returns false when the name is taken.
    fn define(&mut self, ns: Namespace, f: &ParsedFile, name: &Ident) -> bool {
        let key = (ns, name.name.clone());
        if let Some(prev) = self.defs.get(&key).cloned() {
            let mut e = LangError::at(
                ErrorKind::Duplicate,
                &f.source,
                name.span,
                format!("{} `{}` is defined twice", ns.word(), name.name),
                "defined again here",
            );
            if prev.file.name == f.source.name {
                e = e.with_label(prev.span, "first defined here");
            } else {
                let (line, col) = prev.file.line_col(prev.span.start);
                e = e.with_help(format!(
                    "the first definition is at {}:{line}:{col}",
                    prev.file.name
                ));
            }
            self.err(e);
            return false;
        }
        self.defs.insert(
            key,
            DefSite {
                file: f.source.clone(),
                span: name.span,
            },
        );
        true
    }

    fn file(&mut self, f: &ParsedFile, root: bool) {
        // Names first, so items may refer to items written later in the file. Checks and proofs
        // count in the root file only.
        let mut defined: Vec<&Item> = Vec::new();
        for item in &f.ast.items {
            let keep = match item {
                Item::Import(_) => false,
                Item::Task(t) => self.define(Namespace::Task, f, &t.name),
                Item::Interpretation(i) => self.define(Namespace::Program, f, &i.name),
                Item::Pipeline(p) => self.define(Namespace::Program, f, &p.name),
                Item::Circuit(c) => self.define(Namespace::Circuit, f, &c.name),
                Item::Check(c) => root && self.define(Namespace::Check, f, &c.name),
                Item::Prove(_) => root,
            };
            if keep {
                defined.push(item);
            }
        }
        // Then kind by kind, each after the kinds it refers to (a stable sort keeps the file's
        // order within a kind).
        defined.sort_by_key(|item| match item {
            Item::Import(_) | Item::Task(_) => 0,
            Item::Interpretation(_) => 1,
            Item::Pipeline(_) => 2,
            Item::Circuit(_) => 3,
            Item::Check(_) => 4,
            Item::Prove(_) => 5,
        });
        for item in defined {
            match item {
                Item::Import(_) => {}
                Item::Task(t) => self.task(f, t),
                Item::Interpretation(i) => self.interpretation(f, i),
                Item::Pipeline(p) => self.pipeline(f, p),
                Item::Circuit(c) => self.circuit(f, c),
                Item::Check(c) => self.check(f, c),
                Item::Prove(p) => self.proof(f, p),
            }
        }
    }

    // --- tasks -------------------------------------------------------------------------------

    fn task(&mut self, f: &ParsedFile, t: &ast::TaskDef) {
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

    fn token_value(&mut self, f: &ParsedFile, t: &ast::TokenLit, what: &str) -> Option<Value> {
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

    fn vocab(
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

    fn lookup_task(&mut self, f: &ParsedFile, name: &Ident, context: &str) -> Option<Arc<Task>> {
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
        e = match did_you_mean(&name.name, known.iter().copied()) {
            Some(s) => e.with_help(format!("did you mean `{s}`?")),
            None if known.is_empty() => {
                e.with_help("no task is defined in this file or its imports; define one with `task name { ... }`")
            }
            None => e.with_help(format!("tasks in scope: {}", known.join(", "))),
        };
        self.err(e);
        None
    }

    // --- interpretations ---------------------------------------------------------------------

    fn interpretation(&mut self, f: &ParsedFile, i: &ast::InterpDef) {
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
    fn lookup_program(&mut self, f: &ParsedFile, name: &Ident, context: &str) -> Option<&Program> {
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
        if self.spec.pipelines.contains_key(&name.name) {
            e = e.with_help(format!(
                "`{}` is a pipeline; {context} needs an interpretation",
                name.name
            ));
        } else if let Some(t) = self.spec.tasks.get(&name.name) {
            let of_task: Vec<&str> = self
                .spec
                .programs
                .values()
                .filter(|p| Arc::ptr_eq(&p.task, t))
                .map(|p| p.name.as_str())
                .collect();
            e = e.with_help(if of_task.is_empty() {
                format!("`{}` is a task, not an interpretation", name.name)
            } else {
                format!(
                    "`{}` is a task; name one of its interpretations: {}",
                    name.name,
                    of_task.join(", ")
                )
            });
        } else {
            let known: Vec<&str> = self.spec.programs.keys().map(|s| s.as_str()).collect();
            if let Some(s) = did_you_mean(&name.name, known.iter().copied()) {
                e = e.with_help(format!("did you mean `{s}`?"));
            }
        }
        self.err(e);
        None
    }

    /// What `implements`, `equivalent` and `well_formed` may name: an interpretation, or a
    /// pipeline (its domain is its first stage's).
    fn lookup_subject(
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

    // --- pipelines ---------------------------------------------------------------------------

    fn pipeline(&mut self, f: &ParsedFile, p: &ast::PipelineDef) {
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

    fn adapter(
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

    // --- circuits ----------------------------------------------------------------------------

    fn circuit(&mut self, f: &ParsedFile, c: &ast::CircuitDef) {
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

    fn lookup_circuit(&mut self, f: &ParsedFile, name: &Ident, context: &str) -> bool {
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
        if let Some(s) = did_you_mean(&name.name, known.iter().copied()) {
            e = e.with_help(format!("did you mean `{s}`?"));
        } else if self.spec.programs.contains_key(&name.name) {
            e = e.with_help(format!(
                "`{}` is an interpretation; define `circuit c for {} {{ ... }}`",
                name.name, name.name
            ));
        }
        self.err(e);
        false
    }

    // --- checks ------------------------------------------------------------------------------

    fn check(&mut self, f: &ParsedFile, c: &ast::CheckDef) {
        let name = c.name.name.clone();
        let before = self.errors.len();
        let mut model = None;
        let mut compare = Vec::new();
        let mut samples = None;
        let mut seed = None;
        let mut expectations = Vec::new();
        let mut firsts: HashMap<&'static str, Span> = HashMap::new();
        for field in &c.fields {
            let word = match field {
                ast::CheckField::Model { .. } => "model",
                ast::CheckField::Compare { .. } => "compare",
                ast::CheckField::Samples { .. } => "samples",
                ast::CheckField::Seed { .. } => "seed",
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
                expectations,
                source: source_ref(f, c.span),
            },
        );
    }

    fn expectation(
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
            e = match did_you_mean(&goal.name, names.iter().copied()) {
                Some(s) => e.with_help(format!("did you mean `{s}`?")),
                None => e.with_help(format!("expectations: {}", names.join(", "))),
            };
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

    // --- proofs ------------------------------------------------------------------------------

    fn proof(&mut self, f: &ParsedFile, p: &ast::ProveDef) {
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
            e = match did_you_mean(goal_name, names.iter().copied()) {
                Some(s) => e.with_help(format!("did you mean `{s}`?")),
                None => e.with_help(format!("goals: {}", names.join(", "))),
            };
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
        let goal = match goal_name {
            "sufficient" => {
                if !self.lookup_circuit(f, &lead[0], "`sufficient`") {
                    return;
                }
                ProofGoal::Sufficient {
                    circuit: lead[0].name.clone(),
                }
            }
            "well_formed" => {
                if self.lookup_subject(f, &lead[0], "`well_formed`").is_none() {
                    return;
                }
                ProofGoal::WellFormed {
                    program: lead[0].name.clone(),
                }
            }
            "implements" | "equivalent" => {
                let context = format!("`{goal_name}`");
                let a = self.lookup_subject(f, &lead[0], &context);
                let b = self.lookup_subject(f, &lead[1], &context);
                let (Some(a), Some(b)) = (a, b) else { return };
                if a.task.name != b.task.name {
                    self.err(different_tasks(f, goal_name, &lead, &a, &b));
                    return;
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
            _ => {
                let a = self.lookup_program(f, &lead[0], "`aligned`").cloned();
                let b = self.lookup_program(f, &lead[1], "`aligned`").cloned();
                let (Some(a), Some(b)) = (a, b) else { return };
                if a.task.name != b.task.name {
                    let (sa, sb) = (ProofSubject::of(&a), ProofSubject::of(&b));
                    self.err(different_tasks(f, goal_name, &lead, &sa, &sb));
                    return;
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
                ProofGoal::Aligned {
                    a: a.name.clone(),
                    b: b.name.clone(),
                    pairs,
                }
            }
        };
        let timeout_secs = match &p.timeout {
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
        };
        let name = match &p.name {
            Some(n) => n.name.clone(),
            None => {
                let mut parts = vec![goal_name.to_string()];
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
        };
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
}

/// How many arguments a signature takes, in words; a last parameter `...` means "or more".
fn sig_arity(sig: &str) -> String {
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
fn arity_error(
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
struct ProofSubject {
    name: String,
    task: Arc<Task>,
}

impl ProofSubject {
    fn of(p: &Program) -> ProofSubject {
        ProofSubject {
            name: p.name.clone(),
            task: p.task.clone(),
        }
    }
}

/// A goal comparing two programs on one domain, given programs of different tasks.
fn different_tasks(
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
fn unknown_variable(f: &ParsedFile, prog: &Program, var: &Ident, list_all: bool) -> LangError {
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
    match did_you_mean(&var.name, vars.iter().copied()) {
        Some(s) => e.with_help(format!("did you mean `{s}`?")),
        None if list_all => e.with_help(format!("its variables: {}, output", vars.join(", "))),
        None => e,
    }
}

fn cmp_to_ir(op: ast::CmpOp) -> Comparison {
    match op {
        ast::CmpOp::Eq => Comparison::Eq,
        ast::CmpOp::Ne => Comparison::Ne,
        ast::CmpOp::Lt => Comparison::Lt,
        ast::CmpOp::Le => Comparison::Le,
        ast::CmpOp::Gt => Comparison::Gt,
        ast::CmpOp::Ge => Comparison::Ge,
    }
}

// =============================================================================================
// Sequence graphs: interpretations and task restrictions.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VarState {
    Pending,
    Built(NodeId),
    /// Failed or part of a cycle: uses stay quiet.
    Broken,
}

/// Facts about selector nodes that value-set inference needs.
#[derive(Clone, Copy, Debug, Default)]
struct SelInfo {
    /// Every query position selects at least one key, on every input.
    nonempty: bool,
}

struct GraphBuilder<'c> {
    ck: &'c mut Checker,
    f: &'c ParsedFile,
    task_name: String,
    vocab: Vec<Value>,
    max_len: usize,
    graph: Graph,
    sel: HashMap<NodeId, SelInfo>,
    tokens: Option<NodeId>,
    indices: Option<NodeId>,
    vars: HashMap<String, VarState>,
}

/// What an argument position of a primitive wants.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Seq,
    Selector,
}

impl<'c> GraphBuilder<'c> {
    fn new(ck: &'c mut Checker, f: &'c ParsedFile, task: &Task) -> GraphBuilder<'c> {
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

    fn err(&mut self, e: LangError) {
        self.ck.err(e);
    }

    fn at(
        &self,
        kind: ErrorKind,
        span: Span,
        msg: impl Into<String>,
        label: impl Into<String>,
    ) -> LangError {
        LangError::at(kind, &self.f.source, span, msg, label)
    }

    fn push(&mut self, name: Option<String>, op: Op, ty: NodeType, span: Span) -> NodeId {
        let id = NodeId(self.graph.nodes.len());
        self.graph.nodes.push(Node {
            name,
            op,
            ty,
            source: source_ref(self.f, span),
        });
        id
    }

    fn values(&self, id: NodeId) -> Option<&ValueSet> {
        match &self.graph.node(id).ty {
            NodeType::Seq { values, .. } => Some(values),
            NodeType::Selector => None,
        }
    }

    fn encoding(&self, id: NodeId) -> Option<Encoding> {
        match &self.graph.node(id).ty {
            NodeType::Seq { encoding, .. } => Some(*encoding),
            NodeType::Selector => None,
        }
    }

    fn describe(&self, id: NodeId) -> String {
        match &self.graph.node(id).name {
            Some(n) => format!("`{n}`"),
            None => "this expression".to_string(),
        }
    }

    fn builtin(&mut self, which: &str) -> NodeId {
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

    /// Builds an interpretation's statements; returns the output node.
    fn interpretation(&mut self, i: &ast::InterpDef) -> Option<NodeId> {
        let mut lets: Vec<(&Ident, &SeqExpr, Span)> = Vec::new();
        let mut outputs: Vec<(&SeqExpr, Span)> = Vec::new();
        let mut first_def: HashMap<&str, Span> = HashMap::new();
        for s in &i.stmts {
            match s {
                Stmt::Let { name, expr, span } => {
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
                    lets.push((name, expr, *span));
                }
                Stmt::Output { expr, span } => outputs.push((expr, *span)),
            }
        }
        match outputs.as_slice() {
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
        for (name, _, _) in &lets {
            self.vars
                .entry(name.name.clone())
                .or_insert(VarState::Pending);
        }
        // Order the definitions by dependency (iteratively, so long chains cannot exhaust the
        // stack) and report every cycle once.
        let index: HashMap<&str, usize> = lets
            .iter()
            .enumerate()
            .map(|(k, (n, _, _))| (n.name.as_str(), k))
            .collect();
        let deps: Vec<Vec<(usize, Span)>> = lets
            .iter()
            .map(|(_, e, _)| {
                let mut refs = Vec::new();
                collect_refs(e, &mut refs);
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
                                self.cycle_error(&lets, &cycle, ref_span);
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
        for k in &order {
            let (name, _, _) = lets[*k];
            if in_cycle[*k] {
                self.vars.insert(name.name.clone(), VarState::Broken);
            }
        }
        for k in order {
            if in_cycle[k] {
                continue;
            }
            let (name, expr, _) = lets[k];
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
    fn bind(&mut self, id: NodeId, name: &str, span: Span) -> NodeId {
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

    fn cycle_error(&mut self, lets: &[(&Ident, &SeqExpr, Span)], cycle: &[usize], closing: Span) {
        let names: Vec<String> = cycle.iter().map(|k| lets[*k].0.name.clone()).collect();
        let first = &lets[cycle[0]].0;
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
            e = e.with_label(lets[*k].0.span, "part of the cycle");
        }
        e = e.with_help("a variable can only use variables that do not depend on it");
        self.err(e);
    }

    // --- sequence expressions ----------------------------------------------------------------

    /// Builds a sequence-level expression. `enc` is an encoding annotation that applies to the
    /// node this expression computes.
    fn seq_expr(&mut self, e: &SeqExpr, enc: Option<(EncodingKw, Span)>) -> Option<NodeId> {
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

    fn no_encoding(&mut self, enc: Option<(EncodingKw, Span)>, span: Span) -> Option<()> {
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
    fn annotate_existing(&mut self, id: NodeId, kw: EncodingKw, at: Span, span: Span) {
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

    fn var(&mut self, name: &Ident) -> Option<NodeId> {
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
        if let Some((_, sig)) = PRIMITIVES.iter().find(|(p, _)| *p == name.name) {
            e = e.with_help(format!("`{}` is a primitive; call it: `{sig}`", name.name));
        } else if let Some(s) = did_you_mean(&name.name, candidates.iter().copied()) {
            e = e.with_help(format!("did you mean `{s}`?"));
        } else if self.vocab.contains(&Value::sym(&name.name)) {
            e = e.with_help(format!(
                "`{}` is a token; a constant sequence is written `full({})`",
                name.name, name.name
            ));
        } else {
            e = e.with_help(format!("variables in scope: {}", candidates.join(", ")));
        }
        self.err(e);
        None
    }

    fn selector_operand(&mut self, e: &SeqExpr, op: &str) -> Option<NodeId> {
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

    fn seq_operand(&mut self, arg: &Arg, func: &str, what: &str, want: Want) -> Option<NodeId> {
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

    fn call(
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
            er = if SCALAR_FUNCTIONS.iter().any(|s| s.0 == func.name) {
                er.with_help(format!(
                    "`{}` works on single values; use it inside a lambda: `map(|x| {}(x, ...), s)`",
                    func.name, func.name
                ))
            } else if self.vars.contains_key(&func.name) {
                er.with_help(format!(
                    "`{}` is a variable, not something to call",
                    func.name
                ))
            } else if let Some(s) = did_you_mean(&func.name, names.iter().copied()) {
                er.with_help(format!("did you mean `{s}`?"))
            } else {
                er.with_help(format!("primitives: {}", names.join(", ")))
            };
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

    fn constant_arg(&mut self, arg: &Arg) -> Option<Value> {
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
    fn numeric_check(
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

    fn lambda_arg<'a>(
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

    fn predicate<'a>(&mut self, arg: &'a Arg) -> Option<(Predicate, Option<&'a ast::Lambda>)> {
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

    fn lambda(&mut self, l: &ast::Lambda) -> Option<Lambda> {
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
    /// unresolved name before giving up.
    fn lower(&mut self, e: &ast::Expr, params: &[Ident]) -> Option<Expr> {
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
                er = if let Some(s) = did_you_mean(&n.name, candidates.iter().map(|s| s.as_str())) {
                    er.with_help(format!("did you mean `{s}`?"))
                } else if self.vars.contains_key(&n.name) || BUILTIN_SEQS.contains(&n.name.as_str())
                {
                    er.with_help(format!(
                        "`{}` is a sequence; a lambda sees single values: pass it as an argument, e.g. `map2(|x, y| ..., s, {})`",
                        n.name, n.name
                    ))
                } else {
                    er.with_help(format!(
                        "a lambda body sees its parameters ({}) and the tokens of task `{}`; quote other symbols: \"{}\"",
                        if pnames.is_empty() { "none".to_string() } else { join_words(&pnames, "and") },
                        self.task_name,
                        n.name
                    ))
                };
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
                    er = if PRIMITIVES.iter().any(|p| p.0 == other) {
                        er.with_help(format!(
                            "`{other}` works on whole sequences; a lambda body works on single values ({})",
                            names.join(", ")
                        ))
                    } else if let Some(s) = did_you_mean(other, names.iter().copied()) {
                        er.with_help(format!("did you mean `{s}`?"))
                    } else {
                        let sigs: Vec<&str> = SCALAR_FUNCTIONS.iter().map(|s| s.2).collect();
                        er.with_help(format!("functions in lambda bodies: {}", sigs.join(", ")))
                    };
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
    fn lambda_error(
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

    // --- value sets ---------------------------------------------------------------------------

    /// The image of a map / map2 lambda over its arguments' value sets (`none` maps to `none`
    /// without evaluating the lambda, as in tracr).
    fn map_values(&mut self, f: &Lambda, l: &ast::Lambda, args: &[NodeId]) -> Option<ValueSet> {
        let sets: Vec<Vec<Value>> = args
            .iter()
            .map(|a| {
                self.values(*a)
                    .map(|v| v.iter().cloned().collect())
                    .unwrap_or_default()
            })
            .collect();
        let total: usize = sets.iter().map(|s| s.len().max(1)).product();
        let desc = format!("`{}`", if args.len() == 1 { "map" } else { "map2" });
        if total > MAX_EVALS {
            let e = self
                .at(
                    ErrorKind::ValueSetTooLarge,
                    l.span,
                    format!("{desc} would need {total} evaluations to infer its value set (limit {MAX_EVALS})"),
                    "too many argument combinations",
                )
                .with_help("reduce the value sets of the arguments");
            self.err(e);
            return None;
        }
        let mut out = ValueSet::new();
        let mut combo = vec![0usize; sets.len()];
        if sets.iter().any(|s| s.is_empty()) {
            return Some(out);
        }
        loop {
            let vals: Vec<Value> = combo
                .iter()
                .zip(&sets)
                .map(|(i, s)| s[*i].clone())
                .collect();
            if vals.contains(&Value::None) {
                out.insert(Value::None);
            } else {
                match eval_scalar(&f.body, &vals) {
                    Ok(v) => {
                        out.insert(v);
                    }
                    Err(err) => {
                        let named: Vec<(Value, String)> = vals
                            .iter()
                            .cloned()
                            .zip(l.params.iter().map(|p| p.name.clone()))
                            .collect();
                        self.lambda_error(l, &err, &named, &desc);
                        return None;
                    }
                }
            }
            if out.len() > MAX_VALUE_SET {
                let e = self.at(
                    ErrorKind::ValueSetTooLarge,
                    l.span,
                    format!("the value set of this {desc} exceeds {MAX_VALUE_SET} values"),
                    "too many distinct values",
                );
                self.err(e);
                return None;
            }
            // Odometer over the argument sets.
            let mut k = combo.len();
            loop {
                if k == 0 {
                    return Some(out);
                }
                k -= 1;
                combo[k] += 1;
                if combo[k] < sets[k].len() {
                    break;
                }
                combo[k] = 0;
            }
        }
    }

    /// Type-checks a select predicate on every (key, query) value pair and works out whether the
    /// selector provably selects something for every query.
    fn check_select(
        &mut self,
        keys: NodeId,
        queries: NodeId,
        pred: &(Predicate, Option<&ast::Lambda>),
        arg: &Arg,
    ) -> Option<bool> {
        let ks: Vec<Value> = self
            .values(keys)
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default();
        let qs: Vec<Value> = self
            .values(queries)
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default();
        if ks.len().saturating_mul(qs.len()) > MAX_EVALS {
            let e = self.at(
                ErrorKind::ValueSetTooLarge,
                arg.span(),
                format!(
                    "checking this predicate needs {} evaluations (limit {MAX_EVALS})",
                    ks.len() * qs.len()
                ),
                "too many key/query combinations",
            );
            self.err(e);
            return None;
        }
        let eval = |k: &Value, q: &Value| -> Result<Value, ScalarError> {
            match &pred.0 {
                Predicate::Cmp(c) => compare(*c, k, q).map(Value::Bool),
                Predicate::Lambda(l) => eval_scalar(&l.body, &[k.clone(), q.clone()]),
            }
        };
        let mut all_true = true;
        for k in &ks {
            for q in &qs {
                let r = eval(k, q);
                // `none` enters value sets from aggregates that may select nothing; comparing it is
                // left to evaluation, where it only matters if it happens.
                if *k == Value::None || *q == Value::None {
                    all_true &= matches!(r, Ok(Value::Bool(true)));
                    continue;
                }
                match r {
                    Ok(Value::Bool(b)) => all_true &= b,
                    Ok(other) => {
                        let span = pred.1.map_or(arg.span(), |l| l.body.span);
                        let e = self
                            .at(
                                ErrorKind::Type,
                                span,
                                format!("a select predicate must give true or false, but this one gives {other}"),
                                format!("gives {other} for key {k}, query {q}"),
                            )
                            .with_help("compare the key and the query: `|k, q| k < q`");
                        self.err(e);
                        return None;
                    }
                    Err(err) => {
                        match pred.1 {
                            Some(l) => {
                                let named = vec![
                                    (k.clone(), l.params[0].name.clone()),
                                    (q.clone(), l.params[1].name.clone()),
                                ];
                                self.lambda_error(l, &err, &named, "`select`");
                            }
                            None => {
                                let (kd, qd) = (self.describe(keys), self.describe(queries));
                                let e = self
                                    .at(
                                        ErrorKind::Type,
                                        arg.span(),
                                        format!(
                                            "`select` cannot compare its keys with its queries: {}",
                                            err.kind
                                        ),
                                        format!("keys {kd} can be {k}, queries {qd} can be {q}"),
                                    )
                                    .with_help(
                                        "keys and queries must hold values of the same kind",
                                    );
                                self.err(e);
                            }
                        }
                        return None;
                    }
                }
            }
        }
        // Reflexive on one node: position q selects k = q itself.
        let reflexive = keys == queries
            && ks
                .iter()
                .all(|v| matches!(eval(v, v), Ok(Value::Bool(true))));
        Some((all_true && !ks.is_empty()) || reflexive)
    }

    fn aggregate_values(
        &mut self,
        sel: NodeId,
        vals: NodeId,
        encoding: Encoding,
        arg: &Arg,
        span: Span,
    ) -> Option<ValueSet> {
        let values = self.values(vals).cloned()?;
        let have = self.encoding(vals).unwrap_or(Encoding::Categorical);
        let what = self.describe(vals);
        if encoding == Encoding::Categorical && have == Encoding::Numerical {
            let e = self
                .at(
                    ErrorKind::Encoding,
                    span,
                    format!("categorical aggregate of the numerical sequence {what}"),
                    "categorical aggregate",
                )
                .with_label(arg.span(), "numerical sequence")
                .with_help(
                    "averaging a numerical sequence needs `numerical aggregate(...)`; to move a single value \
                     categorically, compute the values as categorical",
                );
            self.err(e);
            return None;
        }
        if encoding == Encoding::Numerical && have == Encoding::Categorical {
            let e = self
                .at(
                    ErrorKind::Encoding,
                    span,
                    format!("numerical aggregate of the categorical sequence {what}"),
                    "numerical aggregate",
                )
                .with_label(arg.span(), "categorical sequence")
                .with_help("declare the values numerical where they are computed: `x = numerical map(...)`");
            self.err(e);
            return None;
        }
        if encoding == Encoding::Categorical {
            let mut out = values;
            if !self.sel.get(&sel).is_some_and(|s| s.nonempty) {
                out.insert(Value::None);
            }
            return Some(out);
        }
        let bad: ValueSet = values
            .iter()
            .filter(|v| !matches!(v, Value::Num(_)))
            .cloned()
            .collect();
        if !bad.is_empty() {
            let e = self
                .at(
                    ErrorKind::Type,
                    arg.span(),
                    format!(
                        "a numerical aggregate averages numbers, but {what} can be {}",
                        value_set_text(&bad)
                    ),
                    "not numeric",
                )
                .with_help("map the values to numbers first");
            self.err(e);
            return None;
        }
        match mean_values(&values, self.max_len) {
            Ok(m) => Some(m),
            Err(msg) => {
                let e = self.at(
                    ErrorKind::ValueSetTooLarge,
                    span,
                    msg,
                    "value set too large",
                );
                self.err(e);
                None
            }
        }
    }
}

fn enc_word(e: Encoding) -> &'static str {
    match e {
        Encoding::Numerical => "numerical",
        Encoding::Categorical => "categorical",
    }
}

fn trim_desc(d: &str) -> String {
    d.trim_matches('`').to_string()
}

fn join_quoted(names: &[String]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    join_words(&q, "and")
}

fn sig_arity_count(sig: &str) -> usize {
    sig_params(sig).len()
}

/// The parameters between a signature's outer parentheses: `map2(|x, y| ..., s1, s2)` has three
/// (the commas of a lambda's parameter list, between its bars, do not count).
fn sig_params(sig: &str) -> Vec<&str> {
    let inner = sig
        .split_once('(')
        .and_then(|(_, r)| r.rsplit_once(')'))
        .map_or("", |(a, _)| a);
    if inner.trim().is_empty() {
        return Vec::new();
    }
    let (mut in_bars, mut parens, mut start) = (false, 0i32, 0);
    let mut params = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '|' => in_bars = !in_bars,
            '(' => parens += 1,
            ')' => parens -= 1,
            ',' if !in_bars && parens == 0 => {
                params.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    params.push(&inner[start..]);
    params
}

/// Every mean of a multiset of 1..=max_len values drawn from `values`, plus 0 (nothing selected).
/// Sums are built one element at a time, so the work grows with the number of distinct sums, not
/// with the number of multisets.
fn mean_values(values: &ValueSet, max_len: usize) -> Result<ValueSet, String> {
    let nums: Vec<Rational64> = values
        .iter()
        .filter_map(|v| {
            if let Value::Num(r) = v {
                Some(*r)
            } else {
                None
            }
        })
        .collect();
    let too_many = || format!("the numerical aggregate can take more than {MAX_VALUE_SET} values");
    let mut out = ValueSet::new();
    out.insert(Value::int(0));
    let mut sums: BTreeSet<Rational64> = nums.iter().copied().collect();
    for k in 1..=max_len {
        let count = Rational64::from_integer(k as i64);
        for s in &sums {
            let m = s
                .checked_div(&count)
                .ok_or("arithmetic overflow while averaging")?;
            out.insert(Value::Num(m));
        }
        if out.len() > MAX_VALUE_SET {
            return Err(too_many());
        }
        if k == max_len {
            break;
        }
        let mut next = BTreeSet::new();
        for s in &sums {
            for v in &nums {
                next.insert(
                    s.checked_add(v)
                        .ok_or("arithmetic overflow while averaging")?,
                );
            }
            if next.len() > MAX_VALUE_SET * 4 {
                return Err(too_many());
            }
        }
        sums = next;
    }
    Ok(out)
}

/// Names used as sequence variables in an expression (not inside lambdas, not `full`'s constant).
fn collect_refs<'a>(e: &'a SeqExpr, out: &mut Vec<&'a Ident>) {
    match &e.kind {
        SeqExprKind::Var(i) => out.push(i),
        SeqExprKind::Or(a, b) | SeqExprKind::And(a, b) => {
            collect_refs(a, out);
            collect_refs(b, out);
        }
        SeqExprKind::Not(a) | SeqExprKind::Encoded(_, a) => collect_refs(a, out),
        SeqExprKind::Call { func, args } => {
            if func.name == "full" {
                return;
            }
            for a in args {
                if let Arg::Seq(s) = a {
                    collect_refs(s, out);
                }
            }
        }
    }
}

/// The sub-expression at `path` (see [`ScalarError::path`]); the deepest one that exists.
fn subexpr<'a>(e: &'a ast::Expr, path: &[usize]) -> &'a ast::Expr {
    let Some((first, rest)) = path.split_first() else {
        return e;
    };
    let child = match (&e.kind, first) {
        (ExprKind::If(c, _, _), 0) => Some(&**c),
        (ExprKind::If(_, t, _), 1) => Some(&**t),
        (ExprKind::If(_, _, x), 2) => Some(&**x),
        (
            ExprKind::Or(a, _)
            | ExprKind::And(a, _)
            | ExprKind::Cmp(_, a, _)
            | ExprKind::Arith(_, a, _),
            0,
        ) => Some(&**a),
        (
            ExprKind::Or(_, b)
            | ExprKind::And(_, b)
            | ExprKind::Cmp(_, _, b)
            | ExprKind::Arith(_, _, b),
            1,
        ) => Some(&**b),
        (ExprKind::Not(a) | ExprKind::Neg(a), 0) => Some(&**a),
        (ExprKind::Call { args, .. }, i) => args.get(*i),
        _ => None,
    };
    match child {
        Some(c) => subexpr(c, rest),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::parse::parse_str;

    pub(crate) fn check_src(src: &str) -> Result<Spec, Report> {
        let ast = parse_str("t.interp", src).map_err(Report::single)?;
        let file = ParsedFile {
            source: SourceFile::new("t.interp", src),
            path: Arc::new(PathBuf::from("t.interp")),
            ast,
        };
        check_files(&[file])
    }

    fn ok(src: &str) -> Spec {
        match check_src(src) {
            Ok(s) => s,
            Err(r) => panic!("{}", r.render_plain()),
        }
    }

    fn errs(src: &str) -> Vec<LangError> {
        match check_src(src) {
            Ok(_) => panic!("expected errors"),
            Err(r) => r.errors,
        }
    }

    fn kinds(src: &str) -> Vec<ErrorKind> {
        errs(src).into_iter().map(|e| e.kind).collect()
    }

    const TASK: &str = "task reverse { vocab {a, b, c} max_len 4 }\n";

    fn seq_values(p: &Program, name: &str) -> ValueSet {
        let id = p.variable(name).expect("variable");
        match &p.graph.node(id).ty {
            NodeType::Seq { values, .. } => values.clone(),
            NodeType::Selector => panic!("selector"),
        }
    }

    fn ints(r: std::ops::RangeInclusive<i64>) -> ValueSet {
        r.map(Value::int).collect()
    }

    #[test]
    fn proofs_may_name_pipelines_except_where_variables_are_named() {
        let base = "task s { vocab {0..=2} max_len 3 }
task u { vocab {0..=2} max_len 3 }
interpretation id for s { output map(|x| x, tokens) }
interpretation inc for s { output map(|x| x + 1, tokens) }
interpretation other for u { output map(|x| x, tokens) }
pipeline p = inc |> id via clamp
";
        let spec = ok(&format!(
            "{base}prove well_formed(p)\nprove equivalent(p, id)\nprove implements(id, p)\n"
        ));
        let goals: Vec<&ProofGoal> = spec.proofs.iter().map(|p| &p.goal).collect();
        assert_eq!(
            goals,
            [
                &ProofGoal::WellFormed {
                    program: "p".into()
                },
                &ProofGoal::Equivalent {
                    a: "p".into(),
                    b: "id".into()
                },
                &ProofGoal::Implements {
                    program: "id".into(),
                    reference: "p".into()
                },
            ]
        );
        // A pipeline's domain is its first stage's: `p` is for task `s`, not `u`.
        let e = errs(&format!("{base}prove equivalent(p, other)\n"));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].message
                .contains("`p` is for task `s` and `other` for task `u`"),
            "{}",
            e[0].message
        );
        // `aligned` names variables, which only an interpretation has.
        let e = errs(&format!("{base}prove aligned(p, id, y = y)\n"));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].help
                .as_deref()
                .unwrap_or("")
                .contains("`p` is a pipeline"),
            "{:?}",
            e[0]
        );
    }

    #[test]
    fn reverse_value_sets_follow_tracr() {
        let spec = ok(&format!(
            "{TASK}interpretation by_length for reverse {{
  length = selector_width(select(tokens, tokens, true))
  opp    = map2(|n, i| n - i - 1, length, indices)
  flip   = select(indices, opp, ==)
  output   aggregate(flip, tokens)
}}"
        ));
        let p = &spec.programs["by_length"];
        assert_eq!(seq_values(p, "length"), ints(0..=4));
        assert_eq!(seq_values(p, "opp"), ints(-4..=3));
        let mut out: ValueSet = ["a", "b", "c"].iter().map(|s| Value::sym(s)).collect();
        out.insert(Value::None);
        assert_eq!(seq_values(p, "output"), out);
        // Topological order: every operand before its user.
        for (i, n) in p.graph.nodes.iter().enumerate() {
            assert!(n.op.operands().iter().all(|o| o.0 < i));
        }
    }

    #[test]
    fn provably_nonempty_selectors_drop_none() {
        let spec = ok(&format!(
            "{TASK}interpretation i for reverse {{
  a = aggregate(select(tokens, tokens, ==), tokens)
  b = aggregate(select(indices, indices, <=), tokens)
  c = aggregate(select(indices, indices, <), tokens)
  output aggregate(select(tokens, indices, |k, q| true) or select(tokens, tokens, false), tokens)
}}"
        ));
        let p = &spec.programs["i"];
        assert!(!seq_values(p, "a").contains(&Value::None));
        assert!(!seq_values(p, "b").contains(&Value::None));
        assert!(seq_values(p, "c").contains(&Value::None));
        assert!(!seq_values(p, "output").contains(&Value::None));
    }

    #[test]
    fn numerical_mean_value_set() {
        let spec = ok("task f { vocab {w, x} max_len 3 }
interpretation frac for f {
  bools = numerical map(|t| if t == x then 1 else 0, tokens)
  output numerical aggregate(select(indices, indices, <=), bools)
}");
        let p = &spec.programs["frac"];
        let want: ValueSet = [(0, 1), (1, 1), (1, 2), (1, 3), (2, 3)]
            .iter()
            .map(|(n, d)| Value::Num(Rational64::new(*n, *d)))
            .collect();
        assert_eq!(seq_values(p, "output"), want);
    }

    #[test]
    fn out_of_order_definitions_and_aliases() {
        let spec = ok(&format!(
            "{TASK}interpretation i for reverse {{
  output y
  y = x
  x = map(|t| t == a, tokens)
}}"
        ));
        let p = &spec.programs["i"];
        assert!(p.graph.by_name("x").is_some());
        assert_eq!(p.graph.by_name("y"), Some(p.output));
    }

    #[test]
    fn cycles_are_reported_once_with_the_path() {
        let es = errs(&format!(
            "{TASK}interpretation i for reverse {{
  a = map(|x| x, b)
  b = map(|x| x, c)
  c = map(|x| x, a)
  d = map(|x| x, d)
  output a
}}"
        ));
        let cycles: Vec<&LangError> = es.iter().filter(|e| e.kind == ErrorKind::Cycle).collect();
        assert_eq!(cycles.len(), 2, "{es:#?}");
        assert!(
            cycles[0].labels[0]
                .text
                .as_deref()
                .unwrap()
                .contains("a -> b -> c -> a")
        );
    }

    #[test]
    fn several_errors_in_one_pass() {
        let ks = kinds(&format!(
            "{TASK}interpretation i for reverse {{
  a = map(|x| x + 1, tokens)
  b = mapp(|x| x, tokens)
  c = select(tokens, tokens)
  output nope
}}"
        ));
        assert_eq!(
            ks,
            vec![
                ErrorKind::Type,
                ErrorKind::UnknownPrimitive,
                ErrorKind::Arity,
                ErrorKind::UnknownName
            ]
        );
    }

    #[test]
    fn encodings_are_checked() {
        let ks = kinds(&format!(
            "{TASK}interpretation i for reverse {{
  n = numerical map(|t| if t == a then 1 else 0, tokens)
  c = aggregate(select(indices, indices, ==), n)
  d = numerical aggregate(select(indices, indices, ==), tokens)
  e = numerical map(|t| t == a, tokens)
  output tokens
}}"
        ));
        assert_eq!(
            ks,
            vec![
                ErrorKind::Encoding,
                ErrorKind::Encoding,
                ErrorKind::Encoding
            ]
        );
    }

    #[test]
    fn lambda_type_errors_point_at_the_operator() {
        let es = errs(&format!(
            "{TASK}interpretation i for reverse {{ output map(|t| if t == a then 1 else t * 2, tokens) }}"
        ));
        assert_eq!(es.len(), 1);
        assert_eq!(es[0].kind, ErrorKind::Type);
        assert!(
            es[0].labels[0].text.as_deref().unwrap().contains("t = b"),
            "{:?}",
            es[0].labels
        );
        let src = &es[0].file.as_ref().unwrap().text;
        let sp = es[0].labels[0].span;
        assert_eq!(&src[sp.start..sp.end], "t * 2");
    }

    #[test]
    fn select_kinds_must_match() {
        let es = errs(&format!(
            "{TASK}interpretation i for reverse {{ output selector_width(select(tokens, indices, ==)) }}"
        ));
        assert_eq!(es[0].kind, ErrorKind::Type);
    }

    #[test]
    fn task_problems() {
        for (src, want) in [
            ("task t { vocab {} max_len 3 }", ErrorKind::Vocab),
            ("task t { vocab {a, b, a} max_len 3 }", ErrorKind::Vocab),
            ("task t { vocab {a} max_len 0 }", ErrorKind::MaxLen),
            ("task t { vocab {a} max_len 100000 }", ErrorKind::MaxLen),
            ("task t { vocab {a} }", ErrorKind::TaskField),
            ("task t { vocab {3..1} max_len 2 }", ErrorKind::Vocab),
        ] {
            assert_eq!(kinds(src), vec![want], "{src}");
        }
        let spec = ok("task t { vocab {0..3, 5} max_len 2 }");
        assert_eq!(
            spec.tasks["t"].vocab,
            vec![Value::int(0), Value::int(1), Value::int(2), Value::int(5)]
        );
    }

    #[test]
    fn restriction_must_be_boolean() {
        ok(
            "task s { vocab {1..=3} max_len 3 where map(|c| c == 1, selector_width(select(tokens, tokens, ==))) }",
        );
        assert_eq!(
            kinds("task s { vocab {1..=3} max_len 3 where tokens }"),
            vec![ErrorKind::Type]
        );
    }

    #[test]
    fn pipelines_need_fitting_values() {
        let base = "task a { vocab {0..=3} max_len 3 }
task b { vocab {0..=3} max_len 3 }
interpretation inc for a { output map(|x| x + 1, tokens) }
interpretation id for b { output map(|x| x, tokens) }
";
        let es = errs(&format!("{base}pipeline p = inc |> id"));
        assert_eq!(es[0].kind, ErrorKind::Pipeline);
        assert!(es[0].message.contains("{4}"), "{}", es[0].message);
        let spec = ok(&format!(
            "{base}pipeline p = inc |> id via clamp\npipeline q = inc |> id via modulo\npipeline r = inc |> id via table {{ 4 -> 0 }}"
        ));
        assert_eq!(
            spec.pipelines["p"].stages[1].adapter,
            Some(Adapter::Clamp { lo: 0, hi: 3 })
        );
        assert_eq!(
            spec.pipelines["q"].stages[1].adapter,
            Some(Adapter::Modulo { lo: 0, n: 4 })
        );
        assert_eq!(
            kinds(&format!(
                "{base}pipeline p = inc |> id via table {{ 4 -> 9 }}"
            )),
            vec![ErrorKind::Pipeline]
        );
    }

    #[test]
    fn circuits_checks_and_proofs() {
        let base = format!(
            "{TASK}interpretation i for reverse {{
  length = selector_width(select(tokens, tokens, true))
  output aggregate(select(indices, map2(|n, i| n - i - 1, length, indices), ==), tokens)
}}
interpretation j for reverse {{
  len = selector_width(select(tokens, tokens, true))
  output aggregate(select(indices, map2(|n, i| n - i - 1, len, indices), ==), tokens)
}}
"
        );
        let spec = ok(&format!(
            "{base}circuit c for i {{
  length -> blocks.0.attn.hook_z[0], blocks.0.hook_mlp_out
  output -> blocks.3.attn.hook_pattern[1]
}}
check m {{ model \"models/x\" compare i vs j samples 3 seed 7 expect congruent(i) expect iia(c) >= 0.95 }}
prove equivalent(i, j)
prove al: aligned(i, j, length = len) timeout 2.5
prove sufficient(c)"
        ));
        assert_eq!(
            spec.circuits["c"].sites[0].node,
            spec.programs["i"].graph.by_name("length").unwrap()
        );
        assert_eq!(spec.proofs[0].name, "equivalent_i_j");
        assert_eq!(spec.proofs[1].timeout_secs, Some(2.5));
        assert_eq!(spec.checks["m"].expectations.len(), 2);
        for (tail, want) in [
            (
                "circuit c for i { length -> blocks.0.mlp }",
                ErrorKind::Hook,
            ),
            (
                "circuit c for i { length -> blocks.0.hook_mlp_out[0] }",
                ErrorKind::Hook,
            ),
            (
                "circuit c for i { nope -> hook_embed }",
                ErrorKind::UnknownName,
            ),
            ("prove equivalent(i)", ErrorKind::Arity),
            (
                "prove equivalent(i, j)\nprove equivalent(i, j)",
                ErrorKind::Duplicate,
            ),
            ("check m { expect iia(i) }", ErrorKind::UnknownName),
        ] {
            assert_eq!(kinds(&format!("{base}{tail}")), vec![want], "{tail}");
        }
    }

    #[test]
    fn missing_and_multiple_outputs() {
        assert_eq!(
            kinds(&format!(
                "{TASK}interpretation i for reverse {{ x = tokens }}"
            )),
            vec![ErrorKind::MissingOutput]
        );
        assert_eq!(
            kinds(&format!(
                "{TASK}interpretation i for reverse {{ output tokens\n output indices }}"
            )),
            vec![ErrorKind::MultipleOutputs]
        );
    }

    #[test]
    fn number_literals_are_exact() {
        assert_eq!(parse_number("0.25"), Ok(Rational64::new(1, 4)));
        assert_eq!(parse_number("-3"), Ok(Rational64::from_integer(-3)));
        assert!(parse_number("99999999999999999999").is_err());
        assert!(parse_number("0.00000000000000000001").is_err());
    }

    #[test]
    fn signatures_count_arguments() {
        assert_eq!(sig_arity_count("map2(|x, y| ..., s1, s2)"), 3);
        assert_eq!(sig_arity_count("full(value)"), 1);
        assert_eq!(sig_arity_count("select(keys, queries, predicate)"), 3);
        assert_eq!(sig_arity("full(value)"), "1 argument");
        assert_eq!(
            sig_arity("aligned(interpretation, interpretation, x = y, ...)"),
            "3 or more arguments"
        );
    }
}
