//! A task's bounded domain: enumeration in a fixed order, its size, seeded sampling, and reading
//! an input from text.
//!
//! Order: lengths 1..=max_len; within a length, lexicographic in vocabulary order (the IR's
//! sorted vocabulary), i.e. an odometer whose last position turns fastest; inputs outside the
//! task's `where` restriction are skipped.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ast::Span;
use super::diag::{ErrorKind, LangError, SourceFile, did_you_mean};
use super::eval::{EvalError, NodeValue, eval_graph, vocab_text};
use super::ir::{Task, Value};

/// Whether `input` (already of the right length and vocabulary) satisfies the restriction.
pub fn satisfies_restriction(task: &Task, input: &[Value]) -> Result<bool, EvalError> {
    let Some((graph, out)) = &task.restriction else {
        return Ok(true);
    };
    let values = eval_graph(graph, input)?;
    match values.get(out.0) {
        Some(NodeValue::Seq(flags)) => Ok(flags.iter().all(|v| *v == Value::Bool(true))),
        _ => Err(EvalError::Malformed(
            "the task's `where` is not a sequence".to_string(),
        )),
    }
}

/// Every input of the domain, in the fixed order.
pub fn inputs(task: &Task) -> Domain<'_> {
    Domain {
        task,
        len: 1,
        digits: vec![0],
        done: task.vocab.is_empty() || task.max_len == 0,
    }
}

/// The iterator of [`inputs`]. Yields an error (and stops) if the restriction cannot be
/// evaluated on some input.
pub struct Domain<'a> {
    task: &'a Task,
    len: usize,
    digits: Vec<usize>,
    done: bool,
}

impl Domain<'_> {
    /// Advances the odometer; false when every length is exhausted.
    fn advance(&mut self) -> bool {
        let base = self.task.vocab.len();
        for d in self.digits.iter_mut().rev() {
            *d += 1;
            if *d < base {
                return true;
            }
            *d = 0;
        }
        self.len += 1;
        if self.len > self.task.max_len {
            return false;
        }
        self.digits = vec![0; self.len];
        true
    }
}

impl Iterator for Domain<'_> {
    type Item = Result<Vec<Value>, EvalError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let input: Vec<Value> = self
                .digits
                .iter()
                .map(|d| self.task.vocab[*d].clone())
                .collect();
            self.done = !self.advance();
            match satisfies_restriction(self.task, &input) {
                Ok(true) => return Some(Ok(input)),
                Ok(false) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Σ |vocab|^n for n in 1..=max_len: the domain's size without restriction, an upper bound with
/// one. `None` when it exceeds `u128`.
pub fn upper_bound(task: &Task) -> Option<u128> {
    let v = task.vocab.len() as u128;
    let mut total: u128 = 0;
    let mut pow: u128 = 1;
    for _ in 0..task.max_len {
        pow = pow.checked_mul(v)?;
        total = total.checked_add(pow)?;
    }
    Some(total)
}

/// How many inputs a domain holds, as far as it can be known cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainSize {
    Exact(u128),
    /// Restricted, and too large to count by enumeration within the limit given.
    AtMost(u128),
    /// Beyond `u128`.
    Huge,
}

/// The domain's size: closed form without a restriction; with one, counted by enumeration when
/// the unrestricted domain holds at most `enumerate_up_to` inputs, else an upper bound.
pub fn size(task: &Task, enumerate_up_to: u128) -> Result<DomainSize, EvalError> {
    let Some(bound) = upper_bound(task) else {
        return Ok(DomainSize::Huge);
    };
    if task.restriction.is_none() {
        return Ok(DomainSize::Exact(bound));
    }
    if bound > enumerate_up_to {
        return Ok(DomainSize::AtMost(bound));
    }
    let mut n: u128 = 0;
    for input in inputs(task) {
        input?;
        n += 1;
    }
    Ok(DomainSize::Exact(n))
}

/// How many draws one sample may take before the restriction is judged too strict to sample.
pub const MAX_TRIES_PER_SAMPLE: usize = 100_000;

/// `n` inputs drawn from the domain with a seeded ChaCha8 generator: the length uniformly from
/// 1..=max_len, then each token uniformly from the vocabulary, redrawn until the restriction holds.
/// Inputs may repeat. The same task, `n` and seed always give the same inputs.
pub fn sample(task: &Task, n: usize, seed: u64) -> Result<Vec<Vec<Value>>, EvalError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    if task.vocab.is_empty() || task.max_len == 0 {
        return Err(EvalError::Malformed(format!(
            "task `{}` has an empty domain",
            task.name
        )));
    }
    for _ in 0..n {
        let mut found = None;
        for _ in 0..MAX_TRIES_PER_SAMPLE {
            let len = rng.random_range(1..=task.max_len);
            let input: Vec<Value> = (0..len)
                .map(|_| task.vocab[rng.random_range(0..task.vocab.len())].clone())
                .collect();
            if satisfies_restriction(task, &input)? {
                found = Some(input);
                break;
            }
        }
        match found {
            Some(i) => out.push(i),
            None => {
                return Err(EvalError::Malformed(format!(
                    "the `where` of task `{}` rejected {MAX_TRIES_PER_SAMPLE} random inputs in a row; enumerate its \
                     domain instead of sampling it",
                    task.name
                )));
            }
        }
    }
    Ok(out)
}

/// Reads a whitespace-separated input such as `a b c` (quoted tokens like `"("` also work) into
/// tokens of the task, checking the vocabulary, the length and the restriction. Errors point into
/// the input text, named `source` (the CLI names its flag).
pub fn parse_input(task: &Task, text: &str, source: &str) -> Result<Vec<Value>, LangError> {
    let src = SourceFile::new(source, text);
    let mut out = Vec::new();
    let mut spans = Vec::new();
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
        }
        let word = &text[start..i.min(text.len())];
        let span = Span::new(start, i.min(text.len()));
        match token(task, word) {
            Some(v) => {
                out.push(v);
                spans.push(span);
            }
            None => {
                let texts: Vec<String> = task.vocab.iter().map(token_text).collect();
                let mut e = LangError::at(
                    ErrorKind::Input,
                    &src,
                    span,
                    format!("`{word}` is not a token of task `{}`", task.name),
                    "not in the vocabulary",
                );
                e = match did_you_mean(word, texts.iter().map(|s| s.as_str())) {
                    Some(s) => e.with_help(format!(
                        "did you mean `{s}`? the vocabulary is {{{}}}",
                        vocab_text(task)
                    )),
                    None => e.with_help(format!(
                        "the vocabulary of `{}` is {{{}}}",
                        task.name,
                        vocab_text(task)
                    )),
                };
                return Err(e);
            }
        }
    }
    if out.is_empty() {
        return Err(LangError::at(
            ErrorKind::Input,
            &src,
            Span::new(0, text.len()),
            format!(
                "the input is empty; task `{}` takes 1 to {} tokens",
                task.name, task.max_len
            ),
            "no tokens",
        )
        .with_help("separate tokens with spaces: \"a b c\""));
    }
    if out.len() > task.max_len {
        let extra = spans[task.max_len].start;
        return Err(LangError::at(
            ErrorKind::Input,
            &src,
            Span::new(extra, text.trim_end().len()),
            format!(
                "the input has {} tokens; task `{}` takes at most {}",
                out.len(),
                task.name,
                task.max_len
            ),
            "beyond max_len",
        ));
    }
    if let Some((graph, root)) = &task.restriction {
        let values = eval_graph(graph, &out).map_err(|e| {
            LangError::at(
                ErrorKind::Eval,
                &src,
                Span::new(0, text.len()),
                e.to_string(),
                "while checking `where`",
            )
        })?;
        if let Some(NodeValue::Seq(flags)) = values.get(root.0)
            && let Some(p) = flags.iter().position(|v| *v != Value::Bool(true))
        {
            return Err(LangError::at(
                ErrorKind::Input,
                &src,
                spans[p],
                format!("the input is outside the domain of task `{}`", task.name),
                format!("the task's `where` is {} here", flags[p]),
            )
            .with_help("the task restricts its inputs with `where`; see its definition"));
        }
    }
    Ok(out)
}

/// An input as it is typed on the command line: its tokens separated by spaces (`0 3 3 7`).
pub fn input_text(input: &[Value]) -> String {
    input.iter().map(token_text).collect::<Vec<_>>().join(" ")
}

/// How a token is typed on the command line: symbols bare, numbers in decimal.
pub fn token_text(v: &Value) -> String {
    match v {
        Value::Sym(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn token(task: &Task, word: &str) -> Option<Value> {
    // The surface form first (`1` is the number, `"1"` the symbol), then the bare text.
    task.vocab
        .iter()
        .find(|v| v.to_string() == word)
        .or_else(|| {
            task.vocab
                .iter()
                .find(|v| matches!(v, Value::Sym(s) if &**s == word))
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::check_str;

    fn task(src: &str) -> Task {
        let spec = check_str("t.interp", src).unwrap_or_else(|r| panic!("{}", r.render_plain()));
        (**spec.tasks.values().next().unwrap()).clone()
    }

    #[test]
    fn enumerates_in_order() {
        let t = task("task t { vocab {b, a} max_len 2 }");
        let all: Vec<String> = inputs(&t)
            .map(|i| {
                i.unwrap()
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join("")
            })
            .collect();
        assert_eq!(all, ["a", "b", "aa", "ab", "ba", "bb"]);
        assert_eq!(size(&t, 1000), Ok(DomainSize::Exact(6)));
        assert_eq!(upper_bound(&t), Some(6));
    }

    #[test]
    fn restriction_filters_and_counts() {
        let t = task(
            "task s { vocab {1..=3} max_len 3 where map(|c| c == 1, selector_width(select(tokens, tokens, ==))) }",
        );
        let all: Vec<Vec<Value>> = inputs(&t).map(|i| i.unwrap()).collect();
        // 3 + 3*2 + 3*2*1 sequences of distinct tokens.
        assert_eq!(all.len(), 15);
        assert!(all.iter().all(|i| satisfies_restriction(&t, i).unwrap()));
        assert_eq!(size(&t, 1000), Ok(DomainSize::Exact(15)));
        assert_eq!(size(&t, 10), Ok(DomainSize::AtMost(39)));
    }

    #[test]
    fn huge_domains_do_not_overflow() {
        let t = task("task h { vocab {0..=9999} max_len 64 }");
        assert_eq!(upper_bound(&t), None);
        assert_eq!(size(&t, 1000), Ok(DomainSize::Huge));
    }

    #[test]
    fn sampling_is_seeded_and_in_domain() {
        let t = task(
            "task s { vocab {1..=5} max_len 5 where map(|c| c == 1, selector_width(select(tokens, tokens, ==))) }",
        );
        let a = sample(&t, 50, 7).unwrap();
        assert_eq!(a, sample(&t, 50, 7).unwrap());
        assert_ne!(a, sample(&t, 50, 8).unwrap());
        assert!(
            a.iter()
                .all(|i| satisfies_restriction(&t, i).unwrap() && !i.is_empty() && i.len() <= 5)
        );
    }

    #[test]
    fn parse_input_names_the_bad_token() {
        let t = task("task p { vocab {\"(\", \")\", a, 3} max_len 3 }");
        assert_eq!(
            parse_input(&t, "( a 3", "input").unwrap(),
            vec![Value::sym("("), Value::sym("a"), Value::int(3)]
        );
        assert_eq!(
            parse_input(&t, "\"(\" )", "input").unwrap(),
            vec![Value::sym("("), Value::sym(")")]
        );
        let e = parse_input(&t, "a q", "input").unwrap_err();
        assert!(e.message.contains("`q`"));
        assert_eq!(e.labels[0].span, Span::new(2, 3));
        assert!(e.help.unwrap().contains("\"(\", \")\", a"));
        assert!(parse_input(&t, "   ", "input").is_err());
        assert!(parse_input(&t, "a a a a", "input").is_err());
    }
}
