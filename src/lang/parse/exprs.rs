//! Sequence and scalar expressions: pairs → AST, with the nesting bound checked on the way down.

use pest::iterators::Pair;

use super::*;

impl Conv<'_> {
    // --- sequence expressions ------------------------------------------------------------

    pub(super) fn seq_expr(&self, p: Pair<'_, Rule>, depth: usize) -> PResult<SeqExpr> {
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

    pub(super) fn lambda(&self, p: Pair<'_, Rule>, depth: usize) -> PResult<Lambda> {
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

    /// A scalar expression. One function (~125 lines): one arm per grammar rule.
    pub(super) fn expr(&self, p: Pair<'_, Rule>, depth: usize) -> PResult<Expr> {
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
}
