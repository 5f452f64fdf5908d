//! Syntax errors in the language's words: pest's expected rules become "an expression", "a
//! statement", with what was found and a hint where one helps.

use super::comments::unclosed_bracket;
use super::*;

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
        | R::epsilon_field
        | R::kw_epsilon
        | R::expect_field
        | R::kw_expect => {
            "a check field (`model`, `compare`, `samples`, `seed`, `epsilon` or `expect`)"
        }
        R::kw_family => {
            "`family` and where the implementations come from (`compiled` or `trained`)"
        }
        R::real => "a number (e.g. `0.001` or `1e-3`)",
        R::model_compiled | R::kw_compiled => "`compiled(interpretation)` or a quoted directory",
        R::expect_arg => "an argument (a name, or a measure such as `cka:linear`)",
        R::cmp_bound => "a bound (`>= 0.95`)",
        R::approx_bound => "a tolerance (`~= 0.93 +- 0.02`)",
        R::kw_vs => "`vs`",
        R::proof_arg | R::alias => "a proof argument",
        R::prove_timeout | R::kw_timeout => "`timeout`",
        _ => return None,
    })
}

/// Punctuation worth naming when the grammar expected it.
const PUNCTUATION: &[&str] = &[
    "{", "}", "(", ")", "[", "]", ",", "=", "->", "|>", "|", ":", "..=", "..", "~=", "+-",
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

/// A pest error in the language's words. One function (~125 lines): the cases (unclosed
/// bracket, keyword as a name, expected rules) are tried in order, the first that applies wins.
pub(super) fn syntax_error(file: &SourceFile, e: &pest::error::Error<Rule>) -> LangError {
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
