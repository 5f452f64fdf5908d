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

/// What an unknown name's help lists when no candidate is close.
#[derive(Clone, Copy)]
enum Listing<'a> {
    /// Nothing more.
    Nothing,
    /// The candidates after `noun:` (`tasks in scope: a, b`); `when_none` if there are none.
    All {
        noun: &'a str,
        when_none: Option<&'a str>,
    },
}

/// The checker's one did-you-mean: the help line for an unknown `name`. What the name is
/// instead when the caller knows (`instead`: "`x` is a pipeline; ..."), else the closest of the
/// `candidates`, else what `listing` says.
fn unknown_help(
    name: &str,
    instead: Option<String>,
    candidates: &[&str],
    listing: Listing<'_>,
) -> Option<String> {
    if instead.is_some() {
        return instead;
    }
    if let Some(s) = did_you_mean(name, candidates.iter().copied()) {
        return Some(format!("did you mean `{s}`?"));
    }
    match listing {
        Listing::Nothing => None,
        Listing::All { when_none, .. } if candidates.is_empty() => when_none.map(str::to_string),
        Listing::All { noun, .. } => Some(format!("{noun}: {}", candidates.join(", "))),
    }
}

/// `e` with `help` when there is one.
fn with_help(e: LangError, help: Option<String>) -> LangError {
    match help {
        Some(h) => e.with_help(h),
        None => e,
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
}

mod declarations;
mod graph;
mod lambda;
mod pipeline;
mod proofs;
mod task;
mod values;

#[cfg(test)]
mod tests;

use graph::*;
use proofs::*;
use values::*;
