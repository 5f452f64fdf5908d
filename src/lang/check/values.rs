//! Value-set inference: what `map`, `select` and `aggregate` can produce, and helpers for messages.

use super::*;

impl GraphBuilder<'_> {
    /// The image of a map / map2 lambda over its arguments' value sets (`none` maps to `none`
    /// without evaluating the lambda, as in tracr).
    pub(super) fn map_values(
        &mut self,
        f: &Lambda,
        l: &ast::Lambda,
        args: &[NodeId],
    ) -> Option<ValueSet> {
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
    pub(super) fn check_select(
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

    pub(super) fn aggregate_values(
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

pub(super) fn enc_word(e: Encoding) -> &'static str {
    match e {
        Encoding::Numerical => "numerical",
        Encoding::Categorical => "categorical",
    }
}

pub(super) fn trim_desc(d: &str) -> String {
    d.trim_matches('`').to_string()
}

pub(super) fn join_quoted(names: &[String]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    join_words(&q, "and")
}

pub(super) fn sig_arity_count(sig: &str) -> usize {
    sig_params(sig).len()
}

/// The parameters between a signature's outer parentheses: `map2(|x, y| ..., s1, s2)` has three
/// (the commas of a lambda's parameter list, between its bars, do not count).
pub(super) fn sig_params(sig: &str) -> Vec<&str> {
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
pub(super) fn mean_values(values: &ValueSet, max_len: usize) -> Result<ValueSet, String> {
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
pub(super) fn collect_refs<'a>(e: &'a SeqExpr, out: &mut Vec<&'a Ident>) {
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
pub(super) fn subexpr<'a>(e: &'a ast::Expr, path: &[usize]) -> &'a ast::Expr {
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
