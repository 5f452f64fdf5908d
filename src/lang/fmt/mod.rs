//! The canonical pretty-printer behind `congruity fmt`.
//!
//! Layout: one item per paragraph (consecutive imports, pipelines and proofs may stay together),
//! one field or statement per line, two-space indents, names and field words padded so the values
//! of a group of lines start in one column (a group ends at a blank line), single spaces around
//! operators, no redundant parentheses. Blank lines between statements are kept (at most one).
//!
//! Comments survive: a comment on its own line belongs to the item or statement below it; one at
//! the end of a line belongs to what ends on that line; one inside a construct moves above it.
//! [`format_source`] re-parses its own output and refuses to return text whose syntax tree or
//! comments differ from the input's, so a formatter bug can never change a program.

use std::collections::HashMap;

use super::ast::*;
use super::diag::{ErrorKind, LangError, SourceFile};
use super::parse::{Comment, comments, parse_file};

mod exprs;
mod printer;

use exprs::*;
use printer::*;

/// Formats a whole source text, keeping its comments. Fails on syntax errors.
pub fn format_source(name: &str, text: &str) -> Result<String, LangError> {
    let source = SourceFile::new(name, text);
    let ast = parse_file(&source)?;
    let cs = comments(text);
    let attached = attach(&ast, text, &cs);
    let out = Printer::new(Some(text), attached).file(&ast);
    // Never hand back text that means something else.
    let again = parse_file(&SourceFile::new(name, out.as_str())).map_err(|e| {
        LangError::internal(format!(
            "the formatted text of `{name}` does not parse: {}",
            e.message
        ))
    })?;
    if again.without_spans() != ast.without_spans() {
        return Err(LangError::internal(format!(
            "formatting `{name}` would change its syntax tree"
        )));
    }
    let kept: Vec<String> = comments(&out).into_iter().map(|c| c.text).collect();
    let had: Vec<String> = cs.into_iter().map(|c| c.text).collect();
    if kept.len() != had.len() {
        return Err(LangError::new(
            ErrorKind::Internal,
            format!("internal error: formatting `{name}` would lose comments"),
        ));
    }
    Ok(out)
}

/// How `fmt` prints one field of a check, without its field word: `iia(c) >= 0.95` for an
/// `expect`, `compiled(I, seed 3)` for a `model`.
pub fn check_field_text(f: &CheckField) -> String {
    printer::check_field(f).1
}

/// Prints a syntax tree (no comments, no source layout to preserve).
pub fn format_file(file: &File) -> String {
    Printer::new(None, Attached::default()).file(file)
}

// ---------------------------------------------------------------------------------------------
// Comment attachment

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Anchor {
    Item(usize),
    Member(usize, usize),
}

#[derive(Default)]
struct Attached {
    /// Comments printed above an anchor; the span is kept for those written above it in the
    /// source (blank lines between them are kept), not for those moved out of it.
    leading: HashMap<Anchor, Vec<(String, Option<Span>)>>,
    /// Where each anchor's leading comments begin in the source (for blank-line detection).
    leading_start: HashMap<Anchor, usize>,
    trailing: HashMap<Anchor, String>,
    /// `task t {  # here`
    header: HashMap<usize, String>,
    /// Comments after the last member of a block, before its `}`.
    dangling: HashMap<usize, Vec<String>>,
    file_end: Vec<String>,
}

fn members(item: &Item) -> Option<Vec<Span>> {
    Some(match item {
        Item::Task(t) => t.fields.iter().map(|f| f.span()).collect(),
        Item::Interpretation(i) => i.stmts.iter().map(|s| s.span()).collect(),
        Item::Circuit(c) => c.entries.iter().map(|e| e.span).collect(),
        Item::Check(c) => c.fields.iter().map(|f| f.span()).collect(),
        Item::Import(_) | Item::Pipeline(_) | Item::Prove(_) => return None,
    })
}

fn same_line(text: &str, from: usize, to: usize) -> bool {
    !text[from.min(to)..to.max(from)].contains('\n')
}

fn attach(file: &File, text: &str, cs: &[Comment]) -> Attached {
    let mut a = Attached::default();
    let lead = |a: &mut Attached, anchor: Anchor, c: &Comment| {
        a.leading
            .entry(anchor)
            .or_default()
            .push((c.text.clone(), Some(c.span)));
        a.leading_start.entry(anchor).or_insert(c.span.start);
    };
    // Comments inside a construct move above it; they keep no position.
    let inner = |a: &mut Attached, anchor: Anchor, c: &Comment| {
        a.leading
            .entry(anchor)
            .or_default()
            .push((c.text.clone(), None));
    };
    for c in cs {
        let pos = c.span.start;
        let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
        let own_line = text[line_start..pos].trim().is_empty();
        let item = file
            .items
            .iter()
            .position(|it| it.span().start <= pos && pos < it.span().end);
        let Some(i) = item else {
            if own_line {
                match file.items.iter().position(|it| it.span().start > pos) {
                    Some(j) => lead(&mut a, Anchor::Item(j), c),
                    None => a.file_end.push(c.text.clone()),
                }
            } else {
                let prev = file.items.iter().rposition(|it| it.span().end <= pos);
                match prev {
                    Some(j) if !a.trailing.contains_key(&Anchor::Item(j)) => {
                        a.trailing.insert(Anchor::Item(j), c.text.clone());
                    }
                    _ => match file.items.iter().position(|it| it.span().start > pos) {
                        Some(j) => lead(&mut a, Anchor::Item(j), c),
                        None => a.file_end.push(c.text.clone()),
                    },
                }
            }
            continue;
        };
        let Some(ms) = members(&file.items[i]) else {
            // Inside a one-line item: move the comment above it.
            inner(&mut a, Anchor::Item(i), c);
            continue;
        };
        if let Some(m) = ms.iter().position(|s| s.start <= pos && pos < s.end) {
            inner(&mut a, Anchor::Member(i, m), c);
            continue;
        }
        let next = ms.iter().position(|s| s.start > pos);
        if own_line {
            match next {
                Some(m) => lead(&mut a, Anchor::Member(i, m), c),
                None => a.dangling.entry(i).or_default().push(c.text.clone()),
            }
            continue;
        }
        let prev = ms.iter().rposition(|s| s.end <= pos);
        match prev {
            Some(m)
                if same_line(text, ms[m].end, pos)
                    && !a.trailing.contains_key(&Anchor::Member(i, m)) =>
            {
                a.trailing.insert(Anchor::Member(i, m), c.text.clone());
            }
            None if !a.header.contains_key(&i) => {
                a.header.insert(i, c.text.clone());
            }
            _ => match next {
                Some(m) => lead(&mut a, Anchor::Member(i, m), c),
                None => a.dangling.entry(i).or_default().push(c.text.clone()),
            },
        }
    }
    a
}

#[cfg(test)]
mod tests;
