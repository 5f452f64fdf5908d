//! Text → AST: runs the pest grammar and turns its pairs into [`ast`] nodes; turns pest's errors
//! into diagnostics that speak the language's words ("expected an expression", not "expected
//! unary").

use std::collections::BTreeSet;

use pest::Parser;
use pest::iterators::{Pair, Pairs};

use super::ast::*;
use super::diag::{ErrorKind, LangError, SourceFile, join_words};
use super::grammar::{Rule, SpecParser};

/// The hard keywords: the words of the grammar's `keyword` rule, which are never names. Field
/// words inside blocks (`vocab`, `where`, `clamp`, ...) are contextual and not listed.
pub const KEYWORDS: &[&str] = &[
    "task",
    "interpretation",
    "pipeline",
    "circuit",
    "check",
    "prove",
    "import",
    "for",
    "output",
    "if",
    "then",
    "else",
    "and",
    "or",
    "not",
    "true",
    "false",
    "none",
    "numerical",
    "categorical",
    "via",
];

/// The deepest expression nesting accepted. Every later stage walks expressions recursively; a
/// bound here keeps them all far from the stack limit whatever the input.
pub const MAX_NESTING: usize = 100;

type PResult<T> = Result<T, LangError>;

/// Parses a whole file.
pub fn parse_file(file: &SourceFile) -> PResult<File> {
    let text: &str = &file.text;
    let pairs = match SpecParser::parse(Rule::file, text) {
        Ok(p) => p,
        Err(_) => {
            // Detailed attempts make much better messages but cost time, so they are only turned
            // on once a parse has failed. The switch is process-wide and never turned off again,
            // which keeps every error message the same whatever other threads do.
            pest::set_error_detail(true);
            return Err(match SpecParser::parse(Rule::file, text) {
                Err(e) => syntax_error(file, &e),
                Ok(_) => LangError::internal("the parser failed once and succeeded on retry"),
            });
        }
    };
    let comment_spans = comments(text).into_iter().map(|c| c.span).collect();
    let conv = Conv {
        file,
        comment_spans,
    };
    let mut items = Vec::new();
    for pair in pairs {
        if pair.as_rule() != Rule::file {
            continue;
        }
        for item in pair.into_inner() {
            if item.as_rule() == Rule::EOI {
                continue;
            }
            items.push(conv.item(item)?);
        }
    }
    Ok(File { items })
}

/// Parses text given a display name for diagnostics.
pub fn parse_str(name: &str, text: &str) -> PResult<File> {
    parse_file(&SourceFile::new(name, text))
}

// ---------------------------------------------------------------------------------------------
// Pairs → AST

struct Conv<'a> {
    file: &'a SourceFile,
    /// Every comment, in order: spans are trimmed of trailing comments.
    comment_spans: Vec<Span>,
}

fn span_of(p: &Pair<'_, Rule>) -> Span {
    let s = p.as_span();
    Span::new(s.start(), s.end())
}

fn is_keyword_rule(r: Rule) -> bool {
    matches!(
        r,
        Rule::kw_import
            | Rule::kw_task
            | Rule::kw_interpretation
            | Rule::kw_for
            | Rule::kw_pipeline
            | Rule::kw_via
            | Rule::kw_circuit
            | Rule::kw_check
            | Rule::kw_prove
            | Rule::kw_if
            | Rule::kw_then
            | Rule::kw_else
            | Rule::kw_vocab
            | Rule::kw_max_len
            | Rule::kw_where
            | Rule::kw_table
            | Rule::kw_model
            | Rule::kw_compare
            | Rule::kw_vs
            | Rule::kw_samples
            | Rule::kw_seed
            | Rule::kw_expect
            | Rule::kw_timeout
    )
}

/// The children of a pair, without the keyword pairs the grammar leaves in.
struct Children<'i> {
    parent: Rule,
    it: std::iter::Peekable<Pairs<'i, Rule>>,
}

impl<'i> Children<'i> {
    fn of(p: Pair<'i, Rule>) -> Children<'i> {
        Children {
            parent: p.as_rule(),
            it: p.into_inner().peekable(),
        }
    }

    fn skip_keywords(&mut self) {
        while self.it.peek().is_some_and(|p| is_keyword_rule(p.as_rule())) {
            self.it.next();
        }
    }

    fn next(&mut self) -> PResult<Pair<'i, Rule>> {
        self.skip_keywords();
        self.it.next().ok_or_else(|| {
            LangError::internal(format!(
                "the grammar gave `{:?}` too few parts",
                self.parent
            ))
        })
    }

    fn peek_rule(&mut self) -> Option<Rule> {
        self.skip_keywords();
        self.it.peek().map(|p| p.as_rule())
    }

    fn next_if(&mut self, rule: Rule) -> Option<Pair<'i, Rule>> {
        if self.peek_rule() == Some(rule) {
            self.it.next()
        } else {
            None
        }
    }

    fn expect(&mut self, rule: Rule) -> PResult<Pair<'i, Rule>> {
        let p = self.next()?;
        if p.as_rule() == rule {
            Ok(p)
        } else {
            Err(unexpected_pair(&p, self.parent))
        }
    }
}

fn unexpected_pair(p: &Pair<'_, Rule>, parent: Rule) -> LangError {
    LangError::internal(format!(
        "unexpected `{:?}` inside `{:?}`",
        p.as_rule(),
        parent
    ))
}

fn ident(p: Pair<'_, Rule>) -> Ident {
    Ident {
        name: p.as_str().to_string(),
        span: span_of(&p),
    }
}

fn num(p: Pair<'_, Rule>) -> NumLit {
    NumLit {
        text: p.as_str().to_string(),
        span: span_of(&p),
    }
}

/// Removes the quotes and resolves the two escapes the grammar allows (`\\` and `\"`).
fn unescape(quoted: &str) -> String {
    let inner = quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(quoted);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn string(p: Pair<'_, Rule>) -> StrLit {
    StrLit {
        value: unescape(p.as_str()),
        span: span_of(&p),
    }
}

fn cmp_op(p: &Pair<'_, Rule>) -> PResult<CmpOp> {
    Ok(match p.as_str() {
        "==" => CmpOp::Eq,
        "!=" => CmpOp::Ne,
        "<" => CmpOp::Lt,
        "<=" => CmpOp::Le,
        ">" => CmpOp::Gt,
        ">=" => CmpOp::Ge,
        other => return Err(LangError::internal(format!("unknown comparison `{other}`"))),
    })
}

impl Conv<'_> {
    /// A pair's span without the whitespace and comments pest counts into rules that end in a
    /// repetition (`x = a  # note` would otherwise end after the comment).
    fn span(&self, p: &Pair<'_, Rule>) -> Span {
        let s = p.as_span();
        let text: &str = &self.file.text;
        let mut end = s.end();
        loop {
            let trimmed = text[s.start()..end].trim_end();
            end = s.start() + trimmed.len();
            let at = self.comment_spans.partition_point(|c| c.end < end);
            match self.comment_spans.get(at) {
                Some(c) if c.end == end && c.start >= s.start() => end = c.start,
                _ => break,
            }
        }
        Span::new(s.start(), end)
    }

    fn too_deep(&self, span: Span) -> LangError {
        LangError::at(
            ErrorKind::TooDeep,
            self.file,
            span,
            format!("expression nested more than {MAX_NESTING} levels deep"),
            "this expression is too deeply nested",
        )
        .with_help("name intermediate results with `name = ...` statements")
    }

    fn item(&self, p: Pair<'_, Rule>) -> PResult<Item> {
        let span = self.span(&p);
        Ok(match p.as_rule() {
            Rule::import => {
                let mut c = Children::of(p);
                Item::Import(Import {
                    path: string(c.expect(Rule::string)?),
                    span,
                })
            }
            Rule::task => Item::Task(self.task(p)?),
            Rule::interpretation => Item::Interpretation(self.interpretation(p)?),
            Rule::pipeline => Item::Pipeline(self.pipeline(p)?),
            Rule::circuit => Item::Circuit(self.circuit(p)?),
            Rule::check => Item::Check(self.check(p)?),
            Rule::prove => Item::Prove(self.prove(p)?),
            _ => return Err(unexpected_pair(&p, Rule::file)),
        })
    }

    fn task(&self, p: Pair<'_, Rule>) -> PResult<TaskDef> {
        let span = self.span(&p);
        let mut c = Children::of(p);
        let name = ident(c.expect(Rule::ident)?);
        let mut fields = Vec::new();
        while c.peek_rule().is_some() {
            let f = c.next()?;
            let fspan = self.span(&f);
            fields.push(match f.as_rule() {
                Rule::vocab => {
                    let mut items = Vec::new();
                    let mut vc = Children::of(f);
                    while vc.peek_rule().is_some() {
                        let it = vc.next()?;
                        items.push(match it.as_rule() {
                            Rule::int_range => {
                                let rspan = self.span(&it);
                                let mut rc = Children::of(it);
                                let lo = num(rc.expect(Rule::signed_int)?);
                                let op = rc.expect(Rule::range_op)?;
                                let hi = num(rc.expect(Rule::signed_int)?);
                                VocabItem::Range {
                                    lo,
                                    hi,
                                    inclusive: op.as_str() == "..=",
                                    span: rspan,
                                }
                            }
                            _ => VocabItem::Token(self.token_lit(it)?),
                        });
                    }
                    TaskField::Vocab { items, span: fspan }
                }
                Rule::max_len => {
                    let mut fc = Children::of(f);
                    TaskField::MaxLen {
                        value: num(fc.expect(Rule::int)?),
                        span: fspan,
                    }
                }
                Rule::domain => {
                    let mut fc = Children::of(f);
                    TaskField::Where {
                        expr: self.seq_expr(fc.expect(Rule::seq_expr)?, 0)?,
                        span: fspan,
                    }
                }
                _ => return Err(unexpected_pair(&f, Rule::task)),
            });
        }
        Ok(TaskDef { name, fields, span })
    }

    fn token_lit(&self, p: Pair<'_, Rule>) -> PResult<TokenLit> {
        Ok(match p.as_rule() {
            Rule::signed_int => TokenLit::Int(num(p)),
            Rule::string => TokenLit::Str(string(p)),
            Rule::none_lit => TokenLit::None(self.span(&p)),
            Rule::ident => TokenLit::Sym(ident(p)),
            _ => return Err(unexpected_pair(&p, Rule::vocab)),
        })
    }

    fn interpretation(&self, p: Pair<'_, Rule>) -> PResult<InterpDef> {
        let span = self.span(&p);
        let mut c = Children::of(p);
        let name = ident(c.expect(Rule::ident)?);
        let task = ident(c.expect(Rule::ident)?);
        let mut stmts = Vec::new();
        while c.peek_rule().is_some() {
            let s = c.next()?;
            let sspan = self.span(&s);
            stmts.push(match s.as_rule() {
                Rule::output_stmt => {
                    let mut sc = Children::of(s);
                    sc.expect(Rule::output_kw)?;
                    Stmt::Output {
                        expr: self.seq_expr(sc.expect(Rule::seq_expr)?, 0)?,
                        span: sspan,
                    }
                }
                Rule::let_stmt => {
                    let mut sc = Children::of(s);
                    let name = ident(sc.expect(Rule::ident)?);
                    Stmt::Let {
                        name,
                        expr: self.seq_expr(sc.expect(Rule::seq_expr)?, 0)?,
                        span: sspan,
                    }
                }
                _ => return Err(unexpected_pair(&s, Rule::interpretation)),
            });
        }
        Ok(InterpDef {
            name,
            task,
            stmts,
            span,
        })
    }

    // --- sequence expressions ------------------------------------------------------------

    fn seq_expr(&self, p: Pair<'_, Rule>, depth: usize) -> PResult<SeqExpr> {
        let span = self.span(&p);
        if depth > MAX_NESTING {
            return Err(self.too_deep(span));
        }
        match p.as_rule() {
            Rule::seq_expr => self.seq_chain(p, depth, Rule::seq_or_op, true),
            Rule::seq_and => self.seq_chain(p, depth, Rule::seq_and_op, false),
            Rule::seq_unary => {
                let mut nots = Vec::new();
                let mut c = Children::of(p);
                while let Some(n) = c.next_if(Rule::seq_not_op) {
                    nots.push(self.span(&n));
                }
                if depth + nots.len() > MAX_NESTING {
                    return Err(self.too_deep(span));
                }
                let mut e = self.seq_expr(c.expect(Rule::seq_atom)?, depth + nots.len() + 1)?;
                for n in nots.into_iter().rev() {
                    let s = Span::new(n.start, e.span.end);
                    e = SeqExpr {
                        kind: SeqExprKind::Not(Box::new(e)),
                        span: s,
                    };
                }
                Ok(e)
            }
            Rule::seq_atom => {
                let mut c = Children::of(p);
                let enc = c.next_if(Rule::encoding);
                let inner = c.next()?;
                let e = match inner.as_rule() {
                    Rule::call => self.call(inner, depth + 1)?,
                    Rule::ident => {
                        let id = ident(inner);
                        SeqExpr {
                            span: id.span,
                            kind: SeqExprKind::Var(id),
                        }
                    }
                    Rule::seq_expr => self.seq_expr(inner, depth + 1)?,
                    _ => return Err(unexpected_pair(&inner, Rule::seq_atom)),
                };
                Ok(match enc {
                    None => e,
                    Some(enc) => {
                        let kw = if enc.as_str() == "numerical" {
                            EncodingKw::Numerical
                        } else {
                            EncodingKw::Categorical
                        };
                        SeqExpr {
                            kind: SeqExprKind::Encoded(kw, Box::new(e)),
                            span,
                        }
                    }
                })
            }
            _ => Err(unexpected_pair(&p, Rule::seq_expr)),
        }
    }

    /// `a op b op c` → `((a op b) op c)`; every operator adds one level of nesting.
    fn seq_chain(&self, p: Pair<'_, Rule>, depth: usize, op: Rule, or: bool) -> PResult<SeqExpr> {
        let span = self.span(&p);
        let mut c = Children::of(p);
        let first = c.next()?;
        let mut operands = vec![first];
        while c.next_if(op).is_some() {
            operands.push(c.next()?);
        }
        if depth + operands.len() > MAX_NESTING {
            return Err(self.too_deep(span));
        }
        let mut it = operands.into_iter();
        let first = it
            .next()
            .ok_or_else(|| LangError::internal("empty chain"))?;
        let mut e = self.seq_expr(first, depth + 1)?;
        for (i, next) in it.enumerate() {
            let r = self.seq_expr(next, depth + 2 + i)?;
            let s = e.span.to(r.span);
            let kind = if or {
                SeqExprKind::Or(Box::new(e), Box::new(r))
            } else {
                SeqExprKind::And(Box::new(e), Box::new(r))
            };
            e = SeqExpr { kind, span: s };
        }
        Ok(e)
    }

    fn call(&self, p: Pair<'_, Rule>, depth: usize) -> PResult<SeqExpr> {
        let span = self.span(&p);
        let mut c = Children::of(p);
        let func = ident(c.expect(Rule::ident)?);
        let mut args = Vec::new();
        while c.peek_rule().is_some() {
            let a = c.expect(Rule::arg)?;
            let mut ac = Children::of(a);
            let inner = ac.next()?;
            args.push(match inner.as_rule() {
                Rule::lambda => Arg::Lambda(self.lambda(inner, depth + 1)?),
                Rule::cmp_op => Arg::Cmp(cmp_op(&inner)?, self.span(&inner)),
                Rule::value_lit => {
                    let mut vc = Children::of(inner);
                    let v = vc.next()?;
                    let vspan = self.span(&v);
                    Arg::Value(match v.as_rule() {
                        Rule::bool_lit => ValueLit::Bool(v.as_str() == "true", vspan),
                        Rule::none_lit => ValueLit::None(vspan),
                        Rule::string => ValueLit::Str(string(v)),
                        Rule::signed_number => ValueLit::Num(num(v)),
                        _ => return Err(unexpected_pair(&v, Rule::value_lit)),
                    })
                }
                Rule::seq_expr => Arg::Seq(self.seq_expr(inner, depth + 1)?),
                _ => return Err(unexpected_pair(&inner, Rule::arg)),
            });
        }
        Ok(SeqExpr {
            kind: SeqExprKind::Call { func, args },
            span,
        })
    }

    fn lambda(&self, p: Pair<'_, Rule>, depth: usize) -> PResult<Lambda> {
        let span = self.span(&p);
        let mut c = Children::of(p);
        let mut params = Vec::new();
        while let Some(i) = c.next_if(Rule::ident) {
            params.push(ident(i));
        }
        let body = self.expr(c.expect(Rule::expr)?, depth + 1)?;
        Ok(Lambda { params, body, span })
    }

    // --- scalar expressions --------------------------------------------------------------

    fn expr(&self, p: Pair<'_, Rule>, depth: usize) -> PResult<Expr> {
        let span = self.span(&p);
        if depth > MAX_NESTING {
            return Err(self.too_deep(span));
        }
        let rule = p.as_rule();
        match rule {
            Rule::expr => {
                let mut c = Children::of(p);
                self.expr(c.next()?, depth)
            }
            Rule::if_expr => {
                let mut c = Children::of(p);
                let a = self.expr(c.expect(Rule::expr)?, depth + 1)?;
                let b = self.expr(c.expect(Rule::expr)?, depth + 1)?;
                let e = self.expr(c.expect(Rule::expr)?, depth + 1)?;
                Ok(Expr {
                    kind: ExprKind::If(Box::new(a), Box::new(b), Box::new(e)),
                    span,
                })
            }
            Rule::or_expr | Rule::and_expr | Rule::add_expr | Rule::mul_expr => {
                let op_rule = match rule {
                    Rule::or_expr => Rule::or_op,
                    Rule::and_expr => Rule::and_op,
                    Rule::add_expr => Rule::add_op,
                    _ => Rule::mul_op,
                };
                let mut c = Children::of(p);
                let first = c.next()?;
                let mut rest = Vec::new();
                while let Some(op) = c.next_if(op_rule) {
                    rest.push((op.as_str().to_string(), c.next()?));
                }
                if depth + rest.len() > MAX_NESTING {
                    return Err(self.too_deep(span));
                }
                let mut e = self.expr(first, depth + 1)?;
                for (i, (op, next)) in rest.into_iter().enumerate() {
                    let r = self.expr(next, depth + 2 + i)?;
                    let s = e.span.to(r.span);
                    let (l, r) = (Box::new(e), Box::new(r));
                    let kind = match op.as_str() {
                        "or" => ExprKind::Or(l, r),
                        "and" => ExprKind::And(l, r),
                        "+" => ExprKind::Arith(ArithOp::Add, l, r),
                        "-" => ExprKind::Arith(ArithOp::Sub, l, r),
                        "*" => ExprKind::Arith(ArithOp::Mul, l, r),
                        "/" => ExprKind::Arith(ArithOp::Div, l, r),
                        "%" => ExprKind::Arith(ArithOp::Mod, l, r),
                        other => {
                            return Err(LangError::internal(format!("unknown operator `{other}`")));
                        }
                    };
                    e = Expr { kind, span: s };
                }
                Ok(e)
            }
            Rule::not_expr | Rule::unary => {
                let op_rule = if rule == Rule::not_expr {
                    Rule::not_op
                } else {
                    Rule::neg_op
                };
                let mut c = Children::of(p);
                let mut ops = Vec::new();
                while let Some(n) = c.next_if(op_rule) {
                    ops.push(self.span(&n));
                }
                if depth + ops.len() > MAX_NESTING {
                    return Err(self.too_deep(span));
                }
                let mut e = self.expr(c.next()?, depth + ops.len() + 1)?;
                for n in ops.into_iter().rev() {
                    let s = Span::new(n.start, e.span.end);
                    let b = Box::new(e);
                    let kind = if rule == Rule::not_expr {
                        ExprKind::Not(b)
                    } else {
                        ExprKind::Neg(b)
                    };
                    e = Expr { kind, span: s };
                }
                Ok(e)
            }
            Rule::cmp_expr => {
                let mut c = Children::of(p);
                let l = self.expr(c.next()?, depth + 1)?;
                match c.next_if(Rule::cmp_op) {
                    None => Ok(l),
                    Some(op) => {
                        let op = cmp_op(&op)?;
                        let r = self.expr(c.next()?, depth + 1)?;
                        Ok(Expr {
                            kind: ExprKind::Cmp(op, Box::new(l), Box::new(r)),
                            span,
                        })
                    }
                }
            }
            Rule::primary => {
                let mut c = Children::of(p);
                let inner = c.next()?;
                let ispan = self.span(&inner);
                let kind = match inner.as_rule() {
                    Rule::number => ExprKind::Num(num(inner)),
                    Rule::bool_lit => ExprKind::Bool(inner.as_str() == "true"),
                    Rule::none_lit => ExprKind::None,
                    Rule::string => ExprKind::Str(unescape(inner.as_str())),
                    Rule::ident => ExprKind::Name(ident(inner)),
                    Rule::fn_call => {
                        let mut fc = Children::of(inner);
                        let func = ident(fc.expect(Rule::ident)?);
                        let mut args = Vec::new();
                        while fc.peek_rule().is_some() {
                            args.push(self.expr(fc.expect(Rule::expr)?, depth + 1)?);
                        }
                        ExprKind::Call { func, args }
                    }
                    Rule::expr => return self.expr(inner, depth + 1),
                    _ => return Err(unexpected_pair(&inner, Rule::primary)),
                };
                Ok(Expr { kind, span: ispan })
            }
            _ => Err(unexpected_pair(&p, Rule::expr)),
        }
    }

    // --- other items -----------------------------------------------------------------------

    fn pipeline(&self, p: Pair<'_, Rule>) -> PResult<PipelineDef> {
        let span = self.span(&p);
        let mut c = Children::of(p);
        let name = ident(c.expect(Rule::ident)?);
        let mut stages = Vec::new();
        while c.peek_rule().is_some() {
            let s = c.expect(Rule::stage)?;
            let sspan = self.span(&s);
            let mut sc = Children::of(s);
            let sname = ident(sc.expect(Rule::ident)?);
            let adapter = match sc.next_if(Rule::adapter) {
                None => None,
                Some(a) => {
                    let mut ac = Children::of(a);
                    let k = ac.next()?;
                    let kspan = self.span(&k);
                    Some(match k.as_rule() {
                        Rule::clamp => AdapterDef::Clamp(kspan),
                        Rule::modulo => AdapterDef::Modulo(kspan),
                        Rule::table => {
                            let mut rows = Vec::new();
                            let mut tc = Children::of(k);
                            while tc.peek_rule().is_some() {
                                let row = tc.expect(Rule::table_row)?;
                                let mut rc = Children::of(row);
                                let from = self.token_lit(rc.next()?)?;
                                let to = self.token_lit(rc.next()?)?;
                                rows.push((from, to));
                            }
                            AdapterDef::Table { rows, span: kspan }
                        }
                        _ => return Err(unexpected_pair(&k, Rule::adapter)),
                    })
                }
            };
            stages.push(StageDef {
                name: sname,
                adapter,
                span: sspan,
            });
        }
        Ok(PipelineDef { name, stages, span })
    }

    fn circuit(&self, p: Pair<'_, Rule>) -> PResult<CircuitDef> {
        let span = self.span(&p);
        let mut c = Children::of(p);
        let name = ident(c.expect(Rule::ident)?);
        let program = ident(c.expect(Rule::ident)?);
        let mut entries = Vec::new();
        while c.peek_rule().is_some() {
            let e = c.expect(Rule::circuit_entry)?;
            let espan = self.span(&e);
            let mut ec = Children::of(e);
            let var_pair = ec.expect(Rule::circuit_var)?;
            let var_inner = Children::of(var_pair).next()?;
            let var = ident(var_inner);
            let mut hooks = Vec::new();
            while ec.peek_rule().is_some() {
                let h = ec.expect(Rule::hook_ref)?;
                let hspan = self.span(&h);
                let mut hc = Children::of(h);
                let hname = hc.expect(Rule::hook_name)?.as_str().to_string();
                let head = hc.next_if(Rule::int).map(num);
                hooks.push(HookRefAst {
                    name: hname,
                    head,
                    span: hspan,
                });
            }
            entries.push(CircuitEntry {
                var,
                hooks,
                span: espan,
            });
        }
        Ok(CircuitDef {
            name,
            program,
            entries,
            span,
        })
    }

    fn check(&self, p: Pair<'_, Rule>) -> PResult<CheckDef> {
        let span = self.span(&p);
        let mut c = Children::of(p);
        let name = ident(c.expect(Rule::ident)?);
        let mut fields = Vec::new();
        while c.peek_rule().is_some() {
            let f = c.next()?;
            let fspan = self.span(&f);
            let rule = f.as_rule();
            let mut fc = Children::of(f);
            fields.push(match rule {
                Rule::model_field => CheckField::Model {
                    path: string(fc.expect(Rule::string)?),
                    span: fspan,
                },
                Rule::compare_field => {
                    let mut names = Vec::new();
                    while fc.peek_rule().is_some() {
                        names.push(ident(fc.expect(Rule::ident)?));
                    }
                    CheckField::Compare { names, span: fspan }
                }
                Rule::samples_field => CheckField::Samples {
                    value: num(fc.expect(Rule::int)?),
                    span: fspan,
                },
                Rule::seed_field => CheckField::Seed {
                    value: num(fc.expect(Rule::int)?),
                    span: fspan,
                },
                Rule::expect_field => {
                    let goal = ident(fc.expect(Rule::ident)?);
                    let mut args = Vec::new();
                    while let Some(a) = fc.next_if(Rule::ident) {
                        args.push(ident(a));
                    }
                    let bound = match fc.next_if(Rule::cmp_op) {
                        None => None,
                        Some(op) => Some((cmp_op(&op)?, num(fc.expect(Rule::number)?))),
                    };
                    CheckField::Expect {
                        goal,
                        args,
                        bound,
                        span: fspan,
                    }
                }
                _ => return Err(unexpected_pair(&fc.next()?, Rule::check)),
            });
        }
        Ok(CheckDef { name, fields, span })
    }

    fn prove(&self, p: Pair<'_, Rule>) -> PResult<ProveDef> {
        let span = self.span(&p);
        let mut c = Children::of(p);
        let first = ident(c.expect(Rule::ident)?);
        let (name, goal) = match c.next_if(Rule::ident) {
            Some(g) => (Some(first), ident(g)),
            None => (None, first),
        };
        let mut args = Vec::new();
        while let Some(a) = c.next_if(Rule::proof_arg) {
            let mut ac = Children::of(a);
            let inner = ac.next()?;
            args.push(match inner.as_rule() {
                Rule::ident => ProofArg::Name(ident(inner)),
                Rule::alias => {
                    let mut al = Children::of(inner);
                    let x = ident(al.expect(Rule::ident)?);
                    let y = ident(al.expect(Rule::ident)?);
                    ProofArg::Alias(x, y)
                }
                _ => return Err(unexpected_pair(&inner, Rule::proof_arg)),
            });
        }
        let timeout = match c.next_if(Rule::prove_timeout) {
            None => None,
            Some(t) => Some(num(Children::of(t).expect(Rule::number)?)),
        };
        Ok(ProveDef {
            name,
            goal,
            args,
            timeout,
            span,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Lexical scan: comments and brackets, outside strings.

/// A `#` comment: its span runs from `#` to the end of the line (without the newline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub span: Span,
    /// The text from `#` on, trailing whitespace removed.
    pub text: String,
}

/// Every comment of a source text, in order. Strings are skipped (`"#"` is not a comment).
pub fn comments(text: &str) -> Vec<Comment> {
    let mut out = Vec::new();
    scan(text, |ev| {
        if let ScanEvent::Comment(span) = ev {
            out.push(Comment {
                span,
                text: text[span.start..span.end].trim_end().to_string(),
            });
        }
    });
    out
}

enum ScanEvent {
    Comment(Span),
    Open(char, usize),
    Close(char),
}

fn scan(text: &str, mut f: impl FnMut(ScanEvent)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                f(ScanEvent::Comment(Span::new(i, end)));
                i = end;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' && i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b @ (b'{' | b'(' | b'[') => {
                f(ScanEvent::Open(b as char, i));
                i += 1;
            }
            b @ (b'}' | b')' | b']') => {
                f(ScanEvent::Close(b as char));
                i += 1;
            }
            _ => i += 1,
        }
    }
}

/// The innermost bracket opened before `limit` and never closed, if any.
fn unclosed_bracket(text: &str, limit: usize) -> Option<(char, usize)> {
    let mut stack: Vec<(char, usize)> = Vec::new();
    scan(&text[..limit.min(text.len())], |ev| match ev {
        ScanEvent::Open(c, at) => stack.push((c, at)),
        ScanEvent::Close(c) => {
            let open = match c {
                '}' => '{',
                ')' => '(',
                _ => '[',
            };
            if let Some(pos) = stack.iter().rposition(|(o, _)| *o == open) {
                stack.truncate(pos);
            }
        }
        ScanEvent::Comment(_) => {}
    });
    stack.last().copied()
}

// ---------------------------------------------------------------------------------------------
// Syntax errors in the language's words.

const ITEM_WORDS: &[&str] = &[
    "task",
    "interpretation",
    "pipeline",
    "circuit",
    "check",
    "prove",
    "import",
];
const ITEM: &str =
    "an item (`task`, `interpretation`, `pipeline`, `circuit`, `check`, `prove` or `import`)";
const STATEMENT: &str = "a statement (`name = ...` or `output ...`)";
const EXPRESSION: &str = "an expression";
const SEQ_EXPRESSION: &str = "a sequence expression";

/// Words for the literal keywords pest reports as expected.
fn token_words(token: &str) -> Option<&'static str> {
    Some(match token {
        t if ITEM_WORDS.contains(&t) => ITEM,
        "for" => "`for`",
        "then" => "`then`",
        "else" => "`else`",
        "via" => "`via`",
        "vs" => "`vs`",
        "timeout" => "`timeout`",
        "output" => "`output`",
        _ => return None,
    })
}

/// What a grammar rule means to someone writing a spec; `None` for rules never worth naming.
fn rule_words(rule: Rule) -> Option<&'static str> {
    use Rule as R;
    Some(match rule {
        R::EOI => "end of file",
        R::import
        | R::task
        | R::interpretation
        | R::pipeline
        | R::circuit
        | R::check
        | R::prove
        | R::kw_import
        | R::kw_task
        | R::kw_interpretation
        | R::kw_pipeline
        | R::kw_circuit
        | R::kw_check
        | R::kw_prove => ITEM,
        R::ident => "a name",
        R::int | R::signed_int => "an integer",
        R::number | R::signed_number => "a number",
        R::string => "a quoted string",
        R::bool_lit => "`true` or `false`",
        R::none_lit => "`none`",
        R::vocab | R::kw_vocab | R::max_len | R::kw_max_len | R::domain | R::kw_where => {
            "a task field (`vocab`, `max_len` or `where`)"
        }
        R::int_range | R::range_op => "a range (`lo..=hi`)",
        R::output_stmt | R::let_stmt => STATEMENT,
        R::output_kw => "`output`",
        R::seq_expr
        | R::seq_and
        | R::seq_unary
        | R::seq_atom
        | R::call
        | R::seq_not_op
        | R::encoding => SEQ_EXPRESSION,
        R::seq_or_op | R::seq_and_op => "`and` / `or`",
        R::arg => "an argument",
        R::lambda => "a lambda (`|x| ...`)",
        R::cmp_op => "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
        R::value_lit => "a constant",
        R::expr
        | R::if_expr
        | R::or_expr
        | R::and_expr
        | R::not_expr
        | R::cmp_expr
        | R::add_expr
        | R::mul_expr
        | R::unary
        | R::primary
        | R::fn_call
        | R::neg_op
        | R::not_op
        | R::kw_if => EXPRESSION,
        R::or_op | R::and_op | R::add_op | R::mul_op => "an operator",
        R::kw_for => "`for`",
        R::kw_then => "`then`",
        R::kw_else => "`else`",
        R::stage => "a pipeline stage",
        R::adapter | R::kw_via => "`via`",
        R::clamp | R::modulo | R::table | R::kw_table => {
            "an adapter (`clamp`, `modulo` or `table { ... }`)"
        }
        R::table_row => "a table row (`value -> value`)",
        R::circuit_entry | R::circuit_var => "a circuit entry (`variable -> hook, ...`)",
        R::hook_ref | R::hook_name => "a hook name (e.g. `blocks.0.attn.hook_z[0]`)",
        R::model_field
        | R::kw_model
        | R::compare_field
        | R::kw_compare
        | R::samples_field
        | R::kw_samples
        | R::seed_field
        | R::kw_seed
        | R::expect_field
        | R::kw_expect => "a check field (`model`, `compare`, `samples`, `seed` or `expect`)",
        R::kw_vs => "`vs`",
        R::proof_arg | R::alias => "a proof argument",
        R::prove_timeout | R::kw_timeout => "`timeout`",
        _ => return None,
    })
}

/// Punctuation worth naming when the grammar expected it.
const PUNCTUATION: &[&str] = &[
    "{", "}", "(", ")", "[", "]", ",", "=", "->", "|>", "|", ":", "..=", "..",
];

/// What the text holds at `pos`, for "found ...".
fn found_at(text: &str, pos: usize) -> String {
    let rest = &text[pos.min(text.len())..];
    let Some(c) = rest.chars().next() else {
        return "end of file".to_string();
    };
    if c.is_ascii_alphanumeric() || c == '_' {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        return format!("`{word}`");
    }
    for p in ["|>", "->", "==", "!=", "<=", ">=", "..=", ".."] {
        if rest.starts_with(p) {
            return format!("`{p}`");
        }
    }
    match c {
        '\n' | '\r' => "end of line".to_string(),
        ' ' | '\t' => "a space".to_string(),
        '"' => "a quoted string".to_string(),
        c if c.is_control() => format!("character {:?}", c),
        c => format!("`{c}`"),
    }
}

fn syntax_error(file: &SourceFile, e: &pest::error::Error<Rule>) -> LangError {
    let text: &str = &file.text;
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let pos = pos.min(text.len());
    if let pest::error::ErrorVariant::CustomError { message } = &e.variant {
        // Only pest's own resource limits produce custom errors.
        return LangError::at(
            ErrorKind::TooDeep,
            file,
            Span::new(pos, pos),
            format!("the parser gave up: {message}"),
            "parsing stopped here",
        )
        .with_help("the file nests brackets or expressions too deeply");
    }
    let mut words: Vec<&'static str> = Vec::new();
    let mut push = |w: &'static str| {
        if !words.contains(&w) {
            words.push(w);
        }
    };
    let positives: Vec<Rule> = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        _ => Vec::new(),
    };
    // A name or `output` where a statement may start: say "a statement".
    let statement = positives.contains(&Rule::output_kw) && positives.contains(&Rule::ident);
    for r in &positives {
        match r {
            Rule::ident | Rule::output_kw if statement => push(STATEMENT),
            r => {
                if let Some(w) = rule_words(*r) {
                    push(w);
                }
            }
        }
    }
    let mut punct: BTreeSet<&'static str> = BTreeSet::new();
    if let Some(attempts) = e.parse_attempts() {
        for t in attempts.expected_tokens() {
            let s = t.to_string();
            if let Some(p) = PUNCTUATION.iter().find(|p| **p == s) {
                punct.insert(p);
            } else if s == "output" && statement {
                push(STATEMENT);
            } else if let Some(w) = token_words(&s) {
                push(w);
            }
        }
    }
    let expression = words
        .iter()
        .any(|w| *w == EXPRESSION || *w == SEQ_EXPRESSION);
    let mut expected: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    for t in PUNCTUATION {
        // `(` and `|` open expressions and lambdas: naming them beside "an expression" only adds noise.
        if punct.contains(t) && !(expression && matches!(*t, "(" | "|" | "-")) {
            expected.push(format!("`{t}`"));
        }
    }
    let found = found_at(text, pos);
    let at_eof = text[pos..].trim().is_empty();
    let expected_text = if expected.is_empty() {
        "something else".to_string()
    } else {
        join_words(&expected, "or")
    };

    // A block left open shows up either at the end of the file or where the next item begins.
    let next_item = ITEM_WORDS.iter().any(|w| found == format!("`{w}`"));
    let wants_close = expected.iter().any(|e| e == "`}`");
    if (at_eof || (next_item && wants_close))
        && let Some((open, at)) = unclosed_bracket(text, pos)
    {
        let close = match open {
            '{' => '}',
            '(' => ')',
            _ => ']',
        };
        let (line, _) = file.line_col(at);
        let what = if open == '{' { "block" } else { "bracket" };
        let (message, here) = if at_eof {
            (
                format!(
                    "unterminated {what}: the file ends before the `{close}` that closes this `{open}`"
                ),
                format!("expected {expected_text} here"),
            )
        } else {
            (
                format!(
                    "unterminated {what}: {found} begins a new item before the `{close}` that closes this `{open}`"
                ),
                format!("expected `{close}` before this"),
            )
        };
        return LangError::at(
            ErrorKind::Unterminated,
            file,
            Span::new(at, at + 1),
            message,
            format!("this `{open}` is never closed"),
        )
        .with_label(Span::new(pos, pos + found_len(text, pos)), here)
        .with_help(format!(
            "add `{close}` to close the {what} opened on line {line}"
        ));
    }
    let mut err = LangError::at(
        ErrorKind::Syntax,
        file,
        Span::new(pos, (pos + found_len(text, pos)).min(text.len())),
        format!("expected {expected_text}, found {found}"),
        format!("expected {}", first_words(&expected)),
    );
    if let Some(h) = syntax_help(text, pos) {
        err = err.with_help(h);
    }
    err
}

/// The label under the caret: the expectation, shortened when the list is long.
fn first_words(expected: &[String]) -> String {
    if expected.len() <= 3 {
        join_words(expected, "or")
    } else {
        format!("{} or ...", expected[..3].join(", "))
    }
}

fn found_len(text: &str, pos: usize) -> usize {
    let rest = &text[pos.min(text.len())..];
    match rest.chars().next() {
        None | Some('\n') | Some('\r') => 0,
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .count(),
        Some(c) => c.len_utf8(),
    }
}

/// Hints for common slips, judged from the text at the error.
fn syntax_help(text: &str, pos: usize) -> Option<String> {
    let rest = &text[pos.min(text.len())..];
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if KEYWORDS.contains(&word.as_str()) {
        let before = text[..pos.min(text.len())].trim_end();
        if before.ends_with('|')
            || before.ends_with(',')
            || before.ends_with('{')
            || before.ends_with('\n')
        {
            return Some(format!(
                "`{word}` is a keyword and cannot be used as a name"
            ));
        }
    }
    if rest.starts_with('=') && !rest.starts_with("==") {
        let before = text[..pos.min(text.len())].trim_end();
        if before.ends_with("output") {
            return Some(
                "the output statement has no `=`: write `output <expression>`".to_string(),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> File {
        match parse_str("t.interp", src) {
            Ok(f) => f,
            Err(e) => panic!("{}", e.render_plain()),
        }
    }

    fn parse_err(src: &str) -> LangError {
        match parse_str("t.interp", src) {
            Ok(f) => panic!("expected an error, parsed {f:?}"),
            Err(e) => e,
        }
    }

    /// `KEYWORDS` (used for hints here and by the property tests) must list exactly the words of
    /// the grammar's `keyword` rule.
    #[test]
    fn keywords_are_the_grammars() {
        let grammar = include_str!("../../grammar/congruity.pest");
        let start = grammar.find("keyword = @{").expect("a keyword rule");
        let rule = &grammar[start..];
        let rule = &rule[..rule.find('}').expect("the rule ends")];
        let words: Vec<&str> = rule.split('"').skip(1).step_by(2).collect();
        assert_eq!(words, KEYWORDS);
        for w in KEYWORDS {
            assert!(
                SpecParser::parse(Rule::ident, w).is_err(),
                "`{w}` parsed as a name"
            );
        }
    }

    const REVERSE: &str = r#"
task reverse {
  vocab   {a, b, c}
  max_len 4
}

interpretation by_length for reverse {
  length = selector_width(select(tokens, tokens, true))
  opp    = map2(|n, i| n - i - 1, length, indices)
  flip   = select(indices, opp, ==)
  output   aggregate(flip, tokens)
}
"#;

    #[test]
    fn parses_the_design_example() {
        let f = parse(REVERSE);
        assert_eq!(f.items.len(), 2);
        let Item::Interpretation(i) = &f.items[1] else {
            panic!()
        };
        assert_eq!(i.name.name, "by_length");
        assert_eq!(i.task.name, "reverse");
        assert_eq!(i.stmts.len(), 4);
        let Stmt::Let { expr, .. } = &i.stmts[1] else {
            panic!()
        };
        let SeqExprKind::Call { func, args } = &expr.kind else {
            panic!()
        };
        assert_eq!(func.name, "map2");
        let Arg::Lambda(l) = &args[0] else { panic!() };
        assert_eq!(l.params.len(), 2);
        // n - i - 1 is left-associative: (n - i) - 1
        let ExprKind::Arith(ArithOp::Sub, lhs, rhs) = &l.body.kind else {
            panic!()
        };
        assert!(matches!(lhs.kind, ExprKind::Arith(ArithOp::Sub, _, _)));
        assert!(matches!(&rhs.kind, ExprKind::Num(n) if n.text == "1"));
        let Stmt::Let { expr, .. } = &i.stmts[2] else {
            panic!()
        };
        let SeqExprKind::Call { args, .. } = &expr.kind else {
            panic!()
        };
        assert!(matches!(args[2], Arg::Cmp(CmpOp::Eq, _)));
    }

    #[test]
    fn words_are_matched_whole() {
        // `order`, `nothing`, `android`, `outputs` start with keywords but are names.
        let f = parse(
            "interpretation i for t {\n  order = tokens\n  nothing = map(|nothing| nothing, order)\n  android = order and nothing\n  outputs = tokens\n  output outputs\n}",
        );
        let Item::Interpretation(i) = &f.items[0] else {
            panic!()
        };
        assert_eq!(i.stmts.len(), 5);
        let Stmt::Let { expr, .. } = &i.stmts[1] else {
            panic!()
        };
        let SeqExprKind::Call { args, .. } = &expr.kind else {
            panic!()
        };
        let Arg::Lambda(l) = &args[0] else { panic!() };
        assert!(matches!(&l.body.kind, ExprKind::Name(n) if n.name == "nothing"));
        let Stmt::Let { expr, .. } = &i.stmts[2] else {
            panic!()
        };
        assert!(matches!(expr.kind, SeqExprKind::And(_, _)));
        assert!(
            matches!(&i.stmts[4], Stmt::Output { expr, .. } if matches!(&expr.kind, SeqExprKind::Var(v) if v.name == "outputs"))
        );
    }

    #[test]
    fn precedence_of_scalar_operators() {
        let f = parse(
            "interpretation i for t { output map(|x| not x + 1 * 2 == 3 and true or false, tokens) }",
        );
        let Item::Interpretation(i) = &f.items[0] else {
            panic!()
        };
        let Stmt::Output { expr, .. } = &i.stmts[0] else {
            panic!()
        };
        let SeqExprKind::Call { args, .. } = &expr.kind else {
            panic!()
        };
        let Arg::Lambda(l) = &args[0] else { panic!() };
        // ((not ((x + (1 * 2)) == 3)) and true) or false
        let ExprKind::Or(a, _) = &l.body.kind else {
            panic!("{:?}", l.body.kind)
        };
        let ExprKind::And(n, _) = &a.kind else {
            panic!()
        };
        let ExprKind::Not(c) = &n.kind else { panic!() };
        let ExprKind::Cmp(CmpOp::Eq, s, _) = &c.kind else {
            panic!()
        };
        let ExprKind::Arith(ArithOp::Add, _, m) = &s.kind else {
            panic!()
        };
        assert!(matches!(m.kind, ExprKind::Arith(ArithOp::Mul, _, _)));
    }

    #[test]
    fn parses_every_item_kind() {
        let f = parse(
            r#"
import "other.interp"
task t { vocab {0..=3, "(", none_ish, -2} max_len 3 where map(|x| x != "(", tokens) }
pipeline p = a |> b via clamp |> c via modulo |> d via table { 11 -> 0, none -> 0, }
circuit c for i {
  length -> blocks.0.attn.hook_z[0], blocks.0.hook_mlp_out
  output -> blocks.3.attn.hook_z[1]
}
check reverse_model {
  model "models/reverse"
  compare a vs b vs c
  samples 20
  seed 7
  expect congruent(a)
  expect iia(c) >= 0.95
}
prove equivalent(a, b)
prove al: aligned(a, b, length = n, opp) timeout 30
"#,
        );
        assert_eq!(f.items.len(), 7);
        let Item::Task(t) = &f.items[1] else { panic!() };
        let TaskField::Vocab { items, .. } = &t.fields[0] else {
            panic!()
        };
        assert!(matches!(
            &items[0],
            VocabItem::Range {
                inclusive: true,
                ..
            }
        ));
        assert!(matches!(&items[1], VocabItem::Token(TokenLit::Str(s)) if s.value == "("));
        assert!(matches!(&items[2], VocabItem::Token(TokenLit::Sym(s)) if s.name == "none_ish"));
        assert!(matches!(&items[3], VocabItem::Token(TokenLit::Int(n)) if n.text == "-2"));
        let Item::Pipeline(p) = &f.items[2] else {
            panic!()
        };
        assert_eq!(p.stages.len(), 4);
        assert!(
            matches!(&p.stages[3].adapter, Some(AdapterDef::Table { rows, .. }) if rows.len() == 2)
        );
        let Item::Circuit(c) = &f.items[3] else {
            panic!()
        };
        assert_eq!(c.entries[1].var.name, "output");
        assert_eq!(c.entries[0].hooks[0].name, "blocks.0.attn.hook_z");
        assert_eq!(
            c.entries[0].hooks[0].head.as_ref().map(|n| n.text.as_str()),
            Some("0")
        );
        let Item::Check(ch) = &f.items[4] else {
            panic!()
        };
        assert_eq!(ch.fields.len(), 6);
        let Item::Prove(pr) = &f.items[6] else {
            panic!()
        };
        assert_eq!(pr.name.as_ref().map(|n| n.name.as_str()), Some("al"));
        assert_eq!(pr.args.len(), 4);
        assert_eq!(pr.timeout.as_ref().map(|n| n.text.as_str()), Some("30"));
    }

    #[test]
    fn string_escapes_and_comments() {
        let src = "# head\ntask t { vocab {\"a\\\"#b\", \"\\\\\"} # tail\n max_len 2 }";
        let f = parse(src);
        let Item::Task(t) = &f.items[0] else { panic!() };
        let TaskField::Vocab { items, .. } = &t.fields[0] else {
            panic!()
        };
        assert!(matches!(&items[0], VocabItem::Token(TokenLit::Str(s)) if s.value == "a\"#b"));
        assert!(matches!(&items[1], VocabItem::Token(TokenLit::Str(s)) if s.value == "\\"));
        let cs = comments(src);
        assert_eq!(
            cs.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(),
            ["# head", "# tail"]
        );
    }

    #[test]
    fn errors_use_language_words() {
        let e = parse_err("interpretation i for t { x = map(|a| a + , tokens) output x }");
        assert_eq!(e.kind, ErrorKind::Syntax);
        assert!(e.message.contains("an expression"), "{}", e.message);
        assert!(!e.message.contains("unary"), "{}", e.message);
        assert_eq!(e.location().as_deref(), Some("t.interp:1:42"));
    }

    #[test]
    fn unterminated_block_points_at_the_brace() {
        let e = parse_err("task t {\n  vocab {a}\n  max_len 3\n");
        assert_eq!(e.kind, ErrorKind::Unterminated);
        assert_eq!(e.location().as_deref(), Some("t.interp:1:8"));
        assert!(e.help.as_deref().is_some_and(|h| h.contains("line 1")));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!(
            "interpretation i for t {{ output map(|x| {}x{}, tokens) }}",
            "(".repeat(5000),
            ")".repeat(5000)
        );
        let e = parse_err(&deep);
        assert_eq!(e.kind, ErrorKind::TooDeep, "{}", e.render_plain());
        let nots = format!(
            "interpretation i for t {{ output map(|x| {}x, tokens) }}",
            "not ".repeat(5000)
        );
        assert_eq!(parse_err(&nots).kind, ErrorKind::TooDeep);
        let chain = format!(
            "interpretation i for t {{ output map(|x| x{}, tokens) }}",
            " + 1".repeat(5000)
        );
        assert_eq!(parse_err(&chain).kind, ErrorKind::TooDeep);
    }
}
