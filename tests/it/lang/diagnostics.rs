//! Every kind of language error, rendered as plain text (ASCII, no colour, 100 columns) and
//! snapshot-tested: the message, `file:line:col`, the source line with its caret and label, and
//! the help line.

use congruity::lang::diag::render_plain;
use congruity::lang::{ErrorKind, check_str};

const TASK: &str = "task reverse {\n  vocab   {a, b, c}\n  max_len 4\n}\n\n";

/// Checks `src` as `spec.interp`; returns the error kinds and every error rendered.
fn diagnose(src: &str) -> (Vec<ErrorKind>, String) {
    match check_str("spec.interp", src) {
        Ok(_) => panic!("expected the spec to be rejected:\n{src}"),
        Err(report) => {
            let kinds = report.errors.iter().map(|e| e.kind).collect();
            let text = report
                .errors
                .iter()
                .map(|e| render_plain(e))
                .collect::<Vec<_>>()
                .join("\n");
            (kinds, text)
        }
    }
}

macro_rules! diagnostic {
    ($name:ident, [$($kind:ident),+], $src:expr) => {
        #[test]
        fn $name() {
            let (kinds, text) = diagnose(&$src);
            assert_eq!(kinds, vec![$(ErrorKind::$kind),+], "{text}");
            insta::assert_snapshot!(stringify!($name), text);
        }
    };
}

diagnostic!(
    unknown_name,
    [UnknownName],
    format!(
        "{TASK}interpretation by_length for reverse {{
  length = selector_width(select(tokens, tokens, true))
  opp    = map2(|n, i| n - i - 1, lenght, indices)
  output   aggregate(select(indices, opp, ==), tokens)
}}
"
    )
);

diagnostic!(
    wrong_arity,
    [Arity],
    format!(
        "{TASK}interpretation i for reverse {{
  flip = select(indices, indices)
  output aggregate(flip, tokens)
}}
"
    )
);

diagnostic!(
    lambda_arity,
    [LambdaArity],
    format!(
        "{TASK}interpretation i for reverse {{
  length = selector_width(select(tokens, tokens, true))
  opp    = map2(|n| n - 1, length, indices)
  output   aggregate(select(indices, opp, ==), tokens)
}}
"
    )
);

diagnostic!(
    select_lambda_arity,
    [LambdaArity],
    format!(
        "{TASK}interpretation i for reverse {{
  output selector_width(select(tokens, tokens, |k| k == a))
}}
"
    )
);

diagnostic!(
    categorical_aggregate_of_numerical,
    [Encoding],
    format!(
        "{TASK}interpretation i for reverse {{
  is_a   = numerical map(|t| if t == a then 1 else 0, tokens)
  output   aggregate(select(indices, indices, <=), is_a)
}}
"
    )
);

diagnostic!(
    numerical_aggregate_of_categorical,
    [Encoding],
    format!(
        "{TASK}interpretation i for reverse {{
  is_a   = map(|t| if t == a then 1 else 0, tokens)
  output   numerical aggregate(select(indices, indices, <=), is_a)
}}
"
    )
);

diagnostic!(
    numerical_sequence_of_booleans,
    [Encoding],
    format!(
        "{TASK}interpretation i for reverse {{
  is_a   = numerical map(|t| t == a, tokens)
  output   numerical aggregate(select(indices, indices, <=), is_a)
}}
"
    )
);

diagnostic!(
    cycle,
    [Cycle],
    format!(
        "{TASK}interpretation i for reverse {{
  a = map(|x| x, c)
  b = map(|x| x, a)
  c = map(|x| x, b)
  output a
}}
"
    )
);

diagnostic!(
    duplicate_variable,
    [Duplicate],
    format!(
        "{TASK}interpretation i for reverse {{
  flip = select(indices, indices, ==)
  flip = select(indices, indices, !=)
  output aggregate(flip, tokens)
}}
"
    )
);

diagnostic!(
    duplicate_interpretation,
    [Duplicate],
    format!(
        "{TASK}interpretation i for reverse {{ output tokens }}

interpretation i for reverse {{ output indices }}
"
    )
);

diagnostic!(
    missing_output,
    [MissingOutput],
    format!(
        "{TASK}interpretation i for reverse {{
  flip = select(indices, indices, ==)
  result = aggregate(flip, tokens)
}}
"
    )
);

diagnostic!(
    multiple_outputs,
    [MultipleOutputs],
    format!(
        "{TASK}interpretation i for reverse {{
  output tokens
  output indices
}}
"
    )
);

diagnostic!(
    bad_hook_name,
    [Hook, Hook],
    format!(
        "{TASK}interpretation i for reverse {{
  length = selector_width(select(tokens, tokens, true))
  output aggregate(select(indices, map2(|n, i| n - i - 1, length, indices), ==), tokens)
}}

circuit layout for i {{
  length -> blocks.0.attn[0], blocks.0.mlp
}}
"
    )
);

diagnostic!(
    head_index_on_non_head_hook,
    [Hook],
    format!(
        "{TASK}interpretation i for reverse {{ output tokens }}

circuit layout for i {{
  output -> blocks.3.hook_resid_post[0]
}}
"
    )
);

diagnostic!(
    unterminated_block,
    [Unterminated],
    "task reverse {\n  vocab   {a, b, c}\n  max_len 4\n\ninterpretation i for reverse {\n  output tokens\n}\n"
);

diagnostic!(
    unexpected_token,
    [Syntax],
    "task reverse {\n  vocab   {a, b, c}\n  max_len 4\n}\n\ninterpretation i for reverse {\n  output = tokens\n}\n"
);

diagnostic!(
    expected_expression,
    [Syntax],
    "interpretation i for reverse {\n  x = map(|t| t + , tokens)\n  output x\n}\n"
);

diagnostic!(
    unknown_task,
    [UnknownTask],
    format!(
        "{TASK}interpretation i for revers {{
  output tokens
}}
"
    )
);

diagnostic!(
    unknown_primitive,
    [UnknownPrimitive],
    format!(
        "{TASK}interpretation i for reverse {{
  n = selector_widht(select(tokens, tokens, true))
  output tokens
}}
"
    )
);

diagnostic!(
    type_error_in_lambda,
    [Type],
    format!(
        "{TASK}interpretation i for reverse {{
  next = map(|t| t + 1, tokens)
  output next
}}
"
    )
);

diagnostic!(
    select_compares_different_kinds,
    [Type],
    format!(
        "{TASK}interpretation i for reverse {{
  output aggregate(select(tokens, indices, ==), tokens)
}}
"
    )
);

diagnostic!(
    selector_where_sequence_expected,
    [ArgKind],
    format!(
        "{TASK}interpretation i for reverse {{
  flip = select(indices, indices, ==)
  output map(|x| x, flip)
}}
"
    )
);

diagnostic!(
    pipeline_values_do_not_fit,
    [Pipeline],
    "task sort { vocab {0..=10} max_len 10 }
task diff { vocab {0..=10} max_len 10 }

interpretation sort_tokens for sort { output map(|x| x, tokens) }
interpretation difference_to_next for diff {
  next   = aggregate(select(indices, indices, |k, q| k == q + 1), tokens)
  output   map2(|a, b| b - a, tokens, next)
}
interpretation count for diff { output selector_width(select(tokens, tokens, ==)) }

pipeline chained = sort_tokens |> difference_to_next |> count
"
);

diagnostic!(
    unknown_import,
    [Import],
    "import \"tasks/reverse.interp\"\n\ninterpretation i for reverse { output tokens }\n"
);

diagnostic!(
    duplicate_vocab_token,
    [Vocab],
    "task t {\n  vocab {a, b, \"a\"}\n  max_len 3\n}\n"
);

diagnostic!(
    max_len_out_of_range,
    [MaxLen],
    "task t {\n  vocab {a, b}\n  max_len 0\n}\n"
);

diagnostic!(
    unknown_expectation,
    [Check],
    format!(
        "{TASK}interpretation i for reverse {{ output tokens }}

check model_agrees {{
  model  \"models/reverse\"
  expect congruant(i)
}}
"
    )
);

diagnostic!(
    unknown_sample_family,
    [Check],
    format!(
        "{TASK}interpretation i for reverse {{ output tokens }}
interpretation j for reverse {{ output tokens }}

check same {{
  compare i vs j
  samples 5 family tuned
  expect indistinguishable(i, j)
}}
"
    )
);

diagnostic!(
    several_errors_in_one_file,
    [Type, UnknownPrimitive, UnknownName],
    format!(
        "{TASK}interpretation i for reverse {{
  a = map(|x| x * 2, tokens)
  b = mapp(|x| x, tokens)
  output c
}}
"
    )
);

#[test]
fn bad_input_token_for_eval() {
    let spec = check_str(
        "spec.interp",
        &format!("{TASK}interpretation i for reverse {{ output tokens }}\n"),
    )
    .unwrap();
    let err = congruity::lang::domain::parse_input(&spec.tasks["reverse"], "a b d c", "--input")
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Input);
    insta::assert_snapshot!("bad_input_token_for_eval", render_plain(&err));
}

#[test]
fn snapshots_render_without_colour_or_unicode() {
    let (_, text) = diagnose(&format!(
        "{TASK}interpretation i for reverse {{ output nope }}\n"
    ));
    assert!(text.is_ascii(), "{text}");
    assert!(!text.contains('\u{1b}'), "no ANSI escapes");
    assert!(text.contains("[spec.interp:6:39]"), "{text}");
}
