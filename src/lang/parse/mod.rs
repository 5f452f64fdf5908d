//! Text → AST: runs the pest grammar and turns its pairs into [`ast`](super::ast) nodes; turns pest's errors
//! into diagnostics that speak the language's words ("expected an expression", not "expected
//! unary").
//!
//! Items are converted here, expressions in `exprs`; the lexical scan (comments, brackets) is
//! `comments` and the wording of syntax errors `errors`.

use std::collections::BTreeSet;

use pest::Parser;
use pest::iterators::{Pair, Pairs};

use super::ast::*;
use super::diag::{ErrorKind, LangError, SourceFile, join_words};
use super::grammar::{Rule, SpecParser};

mod comments;
mod errors;
mod exprs;

pub use comments::{Comment, comments};
use errors::syntax_error;

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
            | Rule::kw_compiled
            | Rule::kw_compare
            | Rule::kw_vs
            | Rule::kw_samples
            | Rule::kw_family
            | Rule::kw_seed
            | Rule::kw_epsilon
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
}

impl Conv<'_> {
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
                Rule::model_field => {
                    let m = fc.next()?;
                    let model = match m.as_rule() {
                        Rule::string => ModelAst::Dir(string(m)),
                        Rule::model_compiled => {
                            let mut mc = Children::of(m);
                            let program = ident(mc.expect(Rule::ident)?);
                            let seed = mc.next_if(Rule::int).map(num);
                            ModelAst::Compiled { program, seed }
                        }
                        _ => return Err(unexpected_pair(&m, Rule::model_field)),
                    };
                    CheckField::Model { model, span: fspan }
                }
                Rule::compare_field => {
                    let mut names = Vec::new();
                    while fc.peek_rule().is_some() {
                        names.push(ident(fc.expect(Rule::ident)?));
                    }
                    CheckField::Compare { names, span: fspan }
                }
                Rule::samples_field => {
                    let value = num(fc.expect(Rule::int)?);
                    // `family` is a keyword pair, skipped: an ident after the count is the family.
                    let family = fc.next_if(Rule::ident).map(ident);
                    CheckField::Samples {
                        value,
                        family,
                        span: fspan,
                    }
                }
                Rule::seed_field => CheckField::Seed {
                    value: num(fc.expect(Rule::int)?),
                    span: fspan,
                },
                Rule::epsilon_field => CheckField::Epsilon {
                    value: num(fc.expect(Rule::real)?),
                    span: fspan,
                },
                Rule::expect_field => {
                    let goal = ident(fc.expect(Rule::ident)?);
                    let mut args = Vec::new();
                    while let Some(a) = fc.next_if(Rule::expect_arg) {
                        args.push(ident(a));
                    }
                    let bound = if let Some(b) = fc.next_if(Rule::cmp_bound) {
                        let mut bc = Children::of(b);
                        let op = cmp_op(&bc.expect(Rule::cmp_op)?)?;
                        Some(BoundAst::Cmp(op, num(bc.expect(Rule::number)?)))
                    } else if let Some(b) = fc.next_if(Rule::approx_bound) {
                        let mut bc = Children::of(b);
                        let value = num(bc.expect(Rule::number)?);
                        let tolerance = num(bc.expect(Rule::number)?);
                        Some(BoundAst::Approx { value, tolerance })
                    } else {
                        None
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

#[cfg(test)]
mod tests;
