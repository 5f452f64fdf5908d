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

// ---------------------------------------------------------------------------------------------
// Printing

struct Printer<'a> {
    src: Option<&'a str>,
    c: Attached,
    out: String,
}

/// One printed line of a block (member `m` of its item, with comments anchored at
/// `Anchor::Member(item, m)`): the part before the padded column and the part after.
struct Row {
    head: String,
    /// Separator placed after the padding (`= ` for statements, `` for fields).
    sep: &'static str,
    rest: String,
    /// The expression behind `rest`, for wrapping a line that is too long.
    expr: Option<SeqExpr>,
    /// The member's span in the source, for its comments and the blank lines around it.
    span: Span,
}

impl<'a> Printer<'a> {
    fn new(src: Option<&'a str>, c: Attached) -> Printer<'a> {
        Printer {
            src,
            c,
            out: String::new(),
        }
    }

    /// Whether the source has an empty line between byte `from` and byte `to`.
    fn blank_between(&self, from: usize, to: usize) -> bool {
        let Some(src) = self.src else { return false };
        if from >= to || to > src.len() {
            return false;
        }
        let region = &src[from..to];
        let pieces: Vec<&str> = region.split('\n').collect();
        pieces.len() > 2
            && pieces[1..pieces.len() - 1]
                .iter()
                .any(|p| p.trim().is_empty())
    }

    fn start_of(&self, anchor: Anchor, span: Span) -> usize {
        self.c
            .leading_start
            .get(&anchor)
            .copied()
            .map_or(span.start, |s| s.min(span.start))
    }

    fn leading(&mut self, anchor: Anchor, indent: &str, anchor_start: usize) {
        let Some(cs) = self.c.leading.get(&anchor).cloned() else {
            return;
        };
        let mut prev_end: Option<usize> = None;
        for (text, span) in &cs {
            if let (Some(p), Some(s)) = (prev_end, span)
                && self.blank_between(p, s.start)
            {
                self.out.push('\n');
            }
            self.out.push_str(indent);
            self.out.push_str(text);
            self.out.push('\n');
            prev_end = span.map(|s| s.end);
            if let Some(s) = span {
                let next_start = cs
                    .iter()
                    .skip_while(|(_, sp)| *sp != Some(*s))
                    .nth(1)
                    .map_or(Some(anchor_start), |(_, sp)| sp.map(|x| x.start));
                // A blank line between the last comment written above and the anchor itself.
                if next_start == Some(anchor_start) && self.blank_between(s.end, anchor_start) {
                    self.out.push('\n');
                }
            }
        }
    }

    fn trailing(&self, anchor: Anchor) -> String {
        self.c
            .trailing
            .get(&anchor)
            .map(|c| format!("  {c}"))
            .unwrap_or_default()
    }

    fn file(mut self, file: &File) -> String {
        let mut prev: Option<(&Item, usize)> = None;
        for (i, item) in file.items.iter().enumerate() {
            let anchor = Anchor::Item(i);
            if let Some((p, p_end)) = prev {
                let one_liners = matches!(
                    (p, item),
                    (Item::Import(_), Item::Import(_))
                        | (Item::Pipeline(_), Item::Pipeline(_))
                        | (Item::Prove(_), Item::Prove(_))
                );
                let start = self.start_of(anchor, item.span());
                if !one_liners || self.blank_between(p_end, start) {
                    self.out.push('\n');
                }
            }
            self.leading(anchor, "", item.span().start);
            self.item(i, item);
            let end = self.trailing_end(anchor, item.span().end);
            prev = Some((item, end));
        }
        if !self.c.file_end.is_empty() {
            if !file.items.is_empty() {
                self.out.push('\n');
            }
            for c in std::mem::take(&mut self.c.file_end) {
                self.out.push_str(&c);
                self.out.push('\n');
            }
        }
        self.out
    }

    /// The end of an anchor including its trailing comment.
    fn trailing_end(&self, anchor: Anchor, end: usize) -> usize {
        match (self.src, self.c.trailing.contains_key(&anchor)) {
            (Some(src), true) => src[end..].find('\n').map_or(src.len(), |n| end + n),
            _ => end,
        }
    }

    /// One item in canonical form. One function (~125 lines): one arm per item kind.
    fn item(&mut self, i: usize, item: &Item) {
        let anchor = Anchor::Item(i);
        match item {
            Item::Import(imp) => {
                let line = format!("import {}", quote(&imp.path.value));
                self.line("", &line, anchor);
            }
            Item::Pipeline(p) => {
                let stages: Vec<String> = p.stages.iter().map(stage).collect();
                let line = format!("pipeline {} = {}", p.name.name, stages.join(" |> "));
                if line.chars().count() <= WIDTH {
                    self.line("", &line, anchor);
                } else {
                    // One stage per line, tables filled row by row.
                    let mut lines = vec![format!("pipeline {} = {}", p.name.name, stages[0])];
                    for st in &p.stages[1..] {
                        lines.extend(stage_lines(st));
                    }
                    let last = lines.len() - 1;
                    for (j, l) in lines.iter().enumerate() {
                        if j == last {
                            self.line("", l, anchor);
                        } else {
                            self.out.push_str(l);
                            self.out.push('\n');
                        }
                    }
                }
            }
            Item::Prove(p) => {
                let line = prove(p);
                self.line("", &line, anchor);
            }
            Item::Task(t) => {
                let rows: Vec<Row> = t
                    .fields
                    .iter()
                    .map(|f| {
                        let (head, rest) = match f {
                            TaskField::Vocab { items, .. } => (
                                "vocab",
                                format!(
                                    "{{{}}}",
                                    items.iter().map(vocab_item).collect::<Vec<_>>().join(", ")
                                ),
                            ),
                            TaskField::MaxLen { value, .. } => ("max_len", value.text.clone()),
                            TaskField::Where { expr, .. } => ("where", seq(expr, 0)),
                        };
                        let expr = match f {
                            TaskField::Where { expr, .. } => Some(expr.clone()),
                            _ => None,
                        };
                        Row {
                            head: head.to_string(),
                            sep: "",
                            rest,
                            expr,
                            span: f.span(),
                        }
                    })
                    .collect();
                self.block(i, &format!("task {}", t.name.name), rows);
            }
            Item::Interpretation(it) => {
                let rows: Vec<Row> = it
                    .stmts
                    .iter()
                    .map(|s| {
                        let (head, sep, expr) = match s {
                            Stmt::Let { name, expr, .. } => (name.name.clone(), "= ", expr),
                            Stmt::Output { expr, .. } => ("output".to_string(), "", expr),
                        };
                        Row {
                            head,
                            sep,
                            rest: seq(expr, 0),
                            expr: Some(expr.clone()),
                            span: s.span(),
                        }
                    })
                    .collect();
                self.block(
                    i,
                    &format!("interpretation {} for {}", it.name.name, it.task.name),
                    rows,
                );
            }
            Item::Circuit(c) => {
                let rows: Vec<Row> = c
                    .entries
                    .iter()
                    .map(|e| Row {
                        head: e.var.name.clone(),
                        sep: "-> ",
                        rest: e.hooks.iter().map(hook).collect::<Vec<_>>().join(", "),
                        expr: None,
                        span: e.span,
                    })
                    .collect();
                self.block(
                    i,
                    &format!("circuit {} for {}", c.name.name, c.program.name),
                    rows,
                );
            }
            Item::Check(c) => {
                let rows: Vec<Row> = c
                    .fields
                    .iter()
                    .map(|f| {
                        let (head, rest) = check_field(f);
                        Row {
                            head: head.to_string(),
                            sep: "",
                            rest,
                            expr: None,
                            span: f.span(),
                        }
                    })
                    .collect();
                self.block(i, &format!("check {}", c.name.name), rows);
            }
        }
    }

    fn line(&mut self, indent: &str, text: &str, anchor: Anchor) {
        self.out.push_str(indent);
        self.out.push_str(text);
        self.out.push_str(&self.trailing(anchor));
        self.out.push('\n');
    }

    /// `header {`, the aligned rows, `}`.
    fn block(&mut self, i: usize, header: &str, rows: Vec<Row>) {
        let member = |m: usize| Anchor::Member(i, m);
        let item_anchor = Anchor::Item(i);
        let head_comment = self.c.header.get(&i).cloned();
        let dangling = self.c.dangling.get(&i).cloned().unwrap_or_default();
        if rows.is_empty() && head_comment.is_none() && dangling.is_empty() {
            let line = format!("{header} {{}}");
            self.line("", &line, item_anchor);
            return;
        }
        self.out.push_str(header);
        self.out.push_str(" {");
        if let Some(c) = head_comment {
            self.out.push_str("  ");
            self.out.push_str(&c);
        }
        self.out.push('\n');
        // A blank line before a row starts a new alignment group.
        let mut blank_before = vec![false; rows.len()];
        for m in 1..rows.len() {
            let prev_end = self.trailing_end(member(m - 1), rows[m - 1].span.end);
            let start = self.start_of(member(m), rows[m].span);
            blank_before[m] = self.blank_between(prev_end, start);
        }
        // Pad heads within each group of lines not separated by a blank line.
        let mut g = 0;
        while g < rows.len() {
            let mut end = g + 1;
            while end < rows.len() && !blank_before[end] {
                end += 1;
            }
            // Names and field words are padded to the group's longest; with `=` / `->` rows in
            // the group, a row without one (`output e`) starts its value where theirs start.
            let width = rows[g..end]
                .iter()
                .map(|r| r.head.chars().count())
                .max()
                .unwrap_or(0);
            let sep_width = rows[g..end]
                .iter()
                .map(|r| r.sep.trim_end().len())
                .max()
                .unwrap_or(0);
            let mut texts: Vec<Vec<String>> = Vec::new();
            for row in &rows[g..end] {
                let head = if !row.sep.is_empty() {
                    format!("{:<width$} {} ", row.head, row.sep.trim_end())
                } else if sep_width > 0 {
                    let w = width + 1 + sep_width;
                    format!("{:<w$} ", row.head)
                } else {
                    format!("{:<width$} ", row.head)
                };
                let col = 2 + head.chars().count();
                let mut lines = match &row.expr {
                    Some(e) => seq_lines(e, col),
                    None => vec![row.rest.clone()],
                };
                lines[0] = format!("  {head}{}", lines[0]);
                texts.push(lines);
            }
            // Trailing comments of a group start in one column.
            let comment_col = (g..end)
                .zip(&texts)
                .filter(|(m, _)| self.c.trailing.contains_key(&member(*m)))
                .map(|(_, t)| t.last().map_or(0, |l| l.chars().count()))
                .max()
                .unwrap_or(0)
                + 2;
            for (m, (row, lines)) in (g..end).zip(rows[g..end].iter().zip(texts)) {
                if m == g && blank_before[m] {
                    self.out.push('\n');
                }
                self.leading(member(m), "  ", row.span.start);
                let n = lines.len();
                for (j, l) in lines.into_iter().enumerate() {
                    self.out.push_str(&l);
                    if j + 1 == n
                        && let Some(c) = self.c.trailing.get(&member(m))
                    {
                        let pad = comment_col.saturating_sub(l.chars().count());
                        self.out.push_str(&" ".repeat(pad));
                        self.out.push_str(c);
                    }
                    self.out.push('\n');
                }
            }
            g = end;
        }
        for c in dangling {
            self.out.push_str("  ");
            self.out.push_str(&c);
            self.out.push('\n');
        }
        self.out.push('}');
        self.out.push_str(&self.trailing(item_anchor));
        self.out.push('\n');
    }
}

/// Lines longer than this are wrapped where the layout knows how (call arguments, pipelines).
pub const WIDTH: usize = 100;

/// A sequence expression starting at column `col`: one line if it fits, else a call's arguments
/// filled line by line under its opening parenthesis.
fn seq_lines(e: &SeqExpr, col: usize) -> Vec<String> {
    let one = seq(e, 0);
    if col + one.chars().count() <= WIDTH {
        return vec![one];
    }
    let (prefix, call) = match &e.kind {
        SeqExprKind::Encoded(kw, inner) if matches!(inner.kind, SeqExprKind::Call { .. }) => (
            if *kw == EncodingKw::Numerical {
                "numerical "
            } else {
                "categorical "
            },
            &**inner,
        ),
        SeqExprKind::Call { .. } => ("", e),
        _ => return vec![one],
    };
    let SeqExprKind::Call { func, args } = &call.kind else {
        return vec![one];
    };
    if args.is_empty() {
        return vec![one];
    }
    let open = format!("{prefix}{}(", func.name);
    let indent = col + open.chars().count();
    let mut lines = Vec::new();
    let mut cur = open;
    let mut cur_col = indent;
    for (k, a) in args.iter().enumerate() {
        let piece = format!("{}{}", arg(a), if k + 1 < args.len() { "," } else { ")" });
        let len = piece.chars().count();
        if k == 0 {
            cur.push_str(&piece);
            cur_col += len;
        } else if cur_col + 1 + len <= WIDTH {
            cur.push(' ');
            cur.push_str(&piece);
            cur_col += 1 + len;
        } else {
            lines.push(cur);
            cur = format!("{}{piece}", " ".repeat(indent));
            cur_col = indent + len;
        }
    }
    lines.push(cur);
    lines
}

/// `  |> name via ...` for a wrapped pipeline; a long table gets its rows filled under it.
fn stage_lines(s: &StageDef) -> Vec<String> {
    let one = format!("  |> {}", stage(s));
    if one.chars().count() <= WIDTH {
        return vec![one];
    }
    let Some(AdapterDef::Table { rows, .. }) = &s.adapter else {
        return vec![one];
    };
    let mut lines = vec![format!("  |> {} via table {{", s.name.name)];
    let indent = "       ";
    let mut cur = String::new();
    for (a, b) in rows {
        let piece = format!("{} -> {},", token_lit(a), token_lit(b));
        if !cur.is_empty() && indent.len() + cur.chars().count() + 1 + piece.chars().count() > WIDTH
        {
            lines.push(format!("{indent}{cur}"));
            cur.clear();
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&piece);
    }
    if !cur.is_empty() {
        lines.push(format!("{indent}{cur}"));
    }
    lines.push("     }".to_string());
    lines
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn token_lit(t: &TokenLit) -> String {
    match t {
        TokenLit::Int(n) => n.text.clone(),
        TokenLit::Str(s) => quote(&s.value),
        TokenLit::Sym(i) => i.name.clone(),
        TokenLit::None(_) => "none".to_string(),
    }
}

fn vocab_item(v: &VocabItem) -> String {
    match v {
        VocabItem::Range {
            lo, hi, inclusive, ..
        } => {
            format!(
                "{}{}{}",
                lo.text,
                if *inclusive { "..=" } else { ".." },
                hi.text
            )
        }
        VocabItem::Token(t) => token_lit(t),
    }
}

fn stage(s: &StageDef) -> String {
    match &s.adapter {
        None => s.name.name.clone(),
        Some(AdapterDef::Clamp(_)) => format!("{} via clamp", s.name.name),
        Some(AdapterDef::Modulo(_)) => format!("{} via modulo", s.name.name),
        Some(AdapterDef::Table { rows, .. }) if rows.is_empty() => {
            format!("{} via table {{}}", s.name.name)
        }
        Some(AdapterDef::Table { rows, .. }) => {
            let rows: Vec<String> = rows
                .iter()
                .map(|(a, b)| format!("{} -> {}", token_lit(a), token_lit(b)))
                .collect();
            format!("{} via table {{ {} }}", s.name.name, rows.join(", "))
        }
    }
}

fn hook(h: &HookRefAst) -> String {
    match &h.head {
        Some(n) => format!("{}[{}]", h.name, n.text),
        None => h.name.clone(),
    }
}

fn check_field(f: &CheckField) -> (&'static str, String) {
    match f {
        CheckField::Model { path, .. } => ("model", quote(&path.value)),
        CheckField::Compare { names, .. } => (
            "compare",
            names
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(" vs "),
        ),
        CheckField::Samples { value, .. } => ("samples", value.text.clone()),
        CheckField::Seed { value, .. } => ("seed", value.text.clone()),
        CheckField::Expect {
            goal, args, bound, ..
        } => {
            let args: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
            let mut s = format!("{}({})", goal.name, args.join(", "));
            if let Some((op, n)) = bound {
                s.push_str(&format!(" {} {}", op.as_str(), n.text));
            }
            ("expect", s)
        }
    }
}

fn prove(p: &ProveDef) -> String {
    let args: Vec<String> = p
        .args
        .iter()
        .map(|a| match a {
            ProofArg::Name(n) => n.name.clone(),
            ProofArg::Alias(x, y) => format!("{} = {}", x.name, y.name),
        })
        .collect();
    let mut s = String::from("prove ");
    if let Some(n) = &p.name {
        s.push_str(&n.name);
        s.push_str(": ");
    }
    s.push_str(&format!("{}({})", p.goal.name, args.join(", ")));
    if let Some(t) = &p.timeout {
        s.push_str(" timeout ");
        s.push_str(&t.text);
    }
    s
}

// Sequence expressions: `or` 1, `and` 2, `not` 3, encoded 4, names and calls 5.
fn seq_level(e: &SeqExpr) -> u8 {
    match e.kind {
        SeqExprKind::Or(..) => 1,
        SeqExprKind::And(..) => 2,
        SeqExprKind::Not(..) => 3,
        SeqExprKind::Encoded(..) => 4,
        SeqExprKind::Var(_) | SeqExprKind::Call { .. } => 5,
    }
}

/// Prints `e` where the grammar needs at least `min` (parenthesised otherwise).
fn seq(e: &SeqExpr, min: u8) -> String {
    let s = match &e.kind {
        // `and` binds tighter, but `a or (b and c)` reads better with the parentheses.
        SeqExprKind::Or(a, b) => format!(
            "{} or {}",
            seq(a, or_operand(a, 1)),
            seq(b, or_operand(b, 2))
        ),
        SeqExprKind::And(a, b) => format!("{} and {}", seq(a, 2), seq(b, 3)),
        SeqExprKind::Not(a) => format!("not {}", seq(a, 3)),
        SeqExprKind::Encoded(kw, a) => {
            let w = match kw {
                EncodingKw::Numerical => "numerical",
                EncodingKw::Categorical => "categorical",
            };
            format!("{w} {}", seq(a, 5))
        }
        SeqExprKind::Var(i) => i.name.clone(),
        SeqExprKind::Call { func, args } => {
            let args: Vec<String> = args.iter().map(arg).collect();
            format!("{}({})", func.name, args.join(", "))
        }
    };
    if seq_level(e) < min {
        format!("({s})")
    } else {
        s
    }
}

fn or_operand(e: &SeqExpr, min: u8) -> u8 {
    if matches!(e.kind, SeqExprKind::And(..)) {
        3
    } else {
        min
    }
}

fn arg(a: &Arg) -> String {
    match a {
        Arg::Lambda(l) => lambda(l),
        Arg::Cmp(op, _) => op.as_str().to_string(),
        Arg::Value(v) => match v {
            ValueLit::Bool(b, _) => b.to_string(),
            ValueLit::None(_) => "none".to_string(),
            ValueLit::Str(s) => quote(&s.value),
            ValueLit::Num(n) => n.text.clone(),
        },
        Arg::Seq(e) => seq(e, 1),
    }
}

fn lambda(l: &Lambda) -> String {
    let params: Vec<&str> = l.params.iter().map(|p| p.name.as_str()).collect();
    format!("|{}| {}", params.join(", "), expr(&l.body, 0))
}

// Scalar expressions: if 0, or 1, and 2, not 3, comparison 4, + - 5, * / % 6, unary minus 7,
// literals, names, calls 8.
fn expr_level(e: &Expr) -> u8 {
    match e.kind {
        ExprKind::If(..) => 0,
        ExprKind::Or(..) => 1,
        ExprKind::And(..) => 2,
        ExprKind::Not(..) => 3,
        ExprKind::Cmp(..) => 4,
        ExprKind::Arith(ArithOp::Add | ArithOp::Sub, ..) => 5,
        ExprKind::Arith(..) => 6,
        ExprKind::Neg(..) => 7,
        _ => 8,
    }
}

fn expr(e: &Expr, min: u8) -> String {
    let s = match &e.kind {
        // A condition or a `then` branch that is itself an `if` reads better in parentheses.
        ExprKind::If(c, t, x) => {
            format!("if {} then {} else {}", expr(c, 1), expr(t, 1), expr(x, 0))
        }
        ExprKind::Or(a, b) => format!(
            "{} or {}",
            expr(
                a,
                if matches!(a.kind, ExprKind::And(..)) {
                    3
                } else {
                    1
                }
            ),
            expr(
                b,
                if matches!(b.kind, ExprKind::And(..)) {
                    3
                } else {
                    2
                }
            )
        ),
        ExprKind::And(a, b) => format!("{} and {}", expr(a, 2), expr(b, 3)),
        ExprKind::Not(a) => format!("not {}", expr(a, 3)),
        ExprKind::Cmp(op, a, b) => format!("{} {} {}", expr(a, 5), op.as_str(), expr(b, 5)),
        ExprKind::Arith(op, a, b) => {
            let (l, r) = if matches!(op, ArithOp::Add | ArithOp::Sub) {
                (5, 6)
            } else {
                (6, 7)
            };
            format!("{} {} {}", expr(a, l), op.as_str(), expr(b, r))
        }
        ExprKind::Neg(a) => {
            let inner = expr(a, 7);
            // `- -x`, not `--x`.
            if inner.starts_with('-') {
                format!("- {inner}")
            } else {
                format!("-{inner}")
            }
        }
        ExprKind::Num(n) => n.text.clone(),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::None => "none".to_string(),
        ExprKind::Str(s) => quote(s),
        ExprKind::Name(i) => i.name.clone(),
        ExprKind::Call { func, args } => {
            let args: Vec<String> = args.iter().map(|a| expr(a, 0)).collect();
            format!("{}({})", func.name, args.join(", "))
        }
    };
    if expr_level(e) < min {
        format!("({s})")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(src: &str) -> String {
        format_source("t.interp", src).unwrap_or_else(|e| panic!("{}", e.render_plain()))
    }

    #[test]
    fn canonical_layout() {
        let src = "task   reverse{vocab{a,b,c} max_len   4}
interpretation by_length for reverse{length=selector_width(select(tokens,tokens,true))
opp=map2(|n,i|n-i-1,length,indices)
output aggregate(select(indices,opp,==),tokens)}
circuit c for by_length { length -> blocks.0.attn.hook_z[0],blocks.0.hook_mlp_out
 output -> blocks.3.attn.hook_z[0] }
check m { model \"models/reverse\" compare a vs b expect iia(c)>=0.95 }
prove equivalent(a,b)
prove x:aligned(a,b,l=n) timeout 3
";
        let want = "task reverse {
  vocab   {a, b, c}
  max_len 4
}

interpretation by_length for reverse {
  length = selector_width(select(tokens, tokens, true))
  opp    = map2(|n, i| n - i - 1, length, indices)
  output   aggregate(select(indices, opp, ==), tokens)
}

circuit c for by_length {
  length -> blocks.0.attn.hook_z[0], blocks.0.hook_mlp_out
  output -> blocks.3.attn.hook_z[0]
}

check m {
  model   \"models/reverse\"
  compare a vs b
  expect  iia(c) >= 0.95
}

prove equivalent(a, b)
prove x: aligned(a, b, l = n) timeout 3
";
        assert_eq!(fmt(src), want);
        assert_eq!(fmt(want), want);
    }

    #[test]
    fn keeps_comments_and_blank_lines() {
        let src = "# file header

task t {  # the task
  # the vocabulary
  vocab {a, b}   # two tokens
  max_len 3
  # dangling
}
# about i
interpretation i for t {
  x = map(|v|   # inside
     v == a, tokens)

  output x # the output
} # after i
# the end
";
        let want = "# file header

task t {  # the task
  # the vocabulary
  vocab   {a, b}  # two tokens
  max_len 3
  # dangling
}

# about i
interpretation i for t {
  # inside
  x = map(|v| v == a, tokens)

  output x  # the output
}  # after i

# the end
";
        let got = fmt(src);
        assert_eq!(got, want);
        assert_eq!(fmt(&got), got);
    }

    #[test]
    fn minimal_parentheses() {
        let src = "interpretation i for t { output map(|x| (-(x + 1)) * ((2)) - (-x) - (1 - 2) == (if x == 1 then (a) else (b)) and not (x < 2 or x > 3), tokens) or (not s and (u or v)) }";
        let got = fmt(src);
        assert!(got.contains(
            "map(|x| -(x + 1) * 2 - -x - (1 - 2) == (if x == 1 then a else b) and not (x < 2 or x > 3), tokens) or (not s and (u or v))"
        ), "{got}");
    }

    #[test]
    fn long_lines_wrap_and_comments_align() {
        let src = "interpretation i for t {
  shifter = map2(|x, y| if x % 2 == 0 then x else (if y % 2 == 0 then y - x else y - x - 1), indices, len) # wrap
  s = select(indices, indices, ==) # short
}
pipeline algo_3 = sort |> interleave_reverse via table { none -> 0 } |> check_all_equal via table { none -> 0, 11 -> 10, 12 -> 10, 13 -> 10, 14 -> 10, 15 -> 10, 16 -> 10, 17 -> 10 }
";
        let want = "interpretation i for t {
  shifter = map2(|x, y| if x % 2 == 0 then x else if y % 2 == 0 then y - x else y - x - 1, indices,
                 len)                     # wrap
  s       = select(indices, indices, ==)  # short
}

pipeline algo_3 = sort
  |> interleave_reverse via table { none -> 0 }
  |> check_all_equal via table {
       none -> 0, 11 -> 10, 12 -> 10, 13 -> 10, 14 -> 10, 15 -> 10, 16 -> 10, 17 -> 10,
     }
";
        let got = fmt(src);
        assert_eq!(got, want);
        assert_eq!(fmt(&got), got);
    }

    #[test]
    fn consecutive_one_liners_stay_together() {
        let src = "import \"a.interp\"\nimport \"b.interp\"\n\nimport \"c.interp\"\nprove well_formed(i)\nprove well_formed(j)\n";
        assert_eq!(
            fmt(src),
            "import \"a.interp\"\nimport \"b.interp\"\n\nimport \"c.interp\"\n\nprove well_formed(i)\nprove well_formed(j)\n"
        );
    }
}
