//! The printer: items in canonical layout, comments where they were attached.

use super::*;

pub(super) struct Printer<'a> {
    src: Option<&'a str>,
    c: Attached,
    out: String,
}

/// One printed line of a block (member `m` of its item, with comments anchored at
/// `Anchor::Member(item, m)`): the part before the padded column and the part after.
pub(super) struct Row {
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
    pub(super) fn new(src: Option<&'a str>, c: Attached) -> Printer<'a> {
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

    pub(super) fn file(mut self, file: &File) -> String {
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
pub(super) fn seq_lines(e: &SeqExpr, col: usize) -> Vec<String> {
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
pub(super) fn stage_lines(s: &StageDef) -> Vec<String> {
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

pub(super) fn quote(s: &str) -> String {
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

pub(super) fn token_lit(t: &TokenLit) -> String {
    match t {
        TokenLit::Int(n) => n.text.clone(),
        TokenLit::Str(s) => quote(&s.value),
        TokenLit::Sym(i) => i.name.clone(),
        TokenLit::None(_) => "none".to_string(),
    }
}

pub(super) fn vocab_item(v: &VocabItem) -> String {
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

pub(super) fn stage(s: &StageDef) -> String {
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

pub(super) fn hook(h: &HookRefAst) -> String {
    match &h.head {
        Some(n) => format!("{}[{}]", h.name, n.text),
        None => h.name.clone(),
    }
}

pub(super) fn check_field(f: &CheckField) -> (&'static str, String) {
    match f {
        CheckField::Model { model, .. } => (
            "model",
            match model {
                ModelAst::Dir(path) => quote(&path.value),
                ModelAst::Compiled {
                    program,
                    seed: None,
                } => format!("compiled({})", program.name),
                ModelAst::Compiled {
                    program,
                    seed: Some(s),
                } => format!("compiled({}, seed {})", program.name, s.text),
            },
        ),
        CheckField::Compare { names, .. } => (
            "compare",
            names
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(" vs "),
        ),
        CheckField::Samples { value, family, .. } => (
            "samples",
            match family {
                Some(f) => format!("{} family {}", value.text, f.name),
                None => value.text.clone(),
            },
        ),
        CheckField::Seed { value, .. } => ("seed", value.text.clone()),
        CheckField::Epsilon { value, .. } => ("epsilon", value.text.clone()),
        CheckField::Expect {
            goal, args, bound, ..
        } => {
            let args: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
            let mut s = format!("{}({})", goal.name, args.join(", "));
            match bound {
                Some(BoundAst::Cmp(op, n)) => s.push_str(&format!(" {} {}", op.as_str(), n.text)),
                Some(BoundAst::Approx { value, tolerance }) => {
                    s.push_str(&format!(" ~= {} +- {}", value.text, tolerance.text));
                }
                None => {}
            }
            ("expect", s)
        }
    }
}

pub(super) fn prove(p: &ProveDef) -> String {
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
