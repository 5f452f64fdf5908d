//! The examples of tracr's `compiler/lib.py` (its docstrings, and its own `test_cases.py` where the
//! docstring's input lies outside the spec's vocabulary or length), run through `congruity eval` on
//! the specs in `specs/`, compared value by value: the text output exactly (rationals as exact
//! decimals or fractions), and the `--json` output value by value (kinds included).
//!
//! Examples whose input the spec's task does not admit are left out (e.g. make_reverse("Hello"),
//! pair_balance("a()b(c))") with vocabulary {(, ), a} and max_len 5). Inputs marked "tracr
//! evaluator" are not tracr examples: their expected outputs are what tracr's own `rasp.evaluate`
//! (tracr-pypi 1.0.0) returns for the same program - for the toy pipelines, for the InterpBench
//! programs chained with the same adapters - written down here.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// One expected output value, as the spec language has it.
#[derive(Clone, Copy, Debug)]
enum V {
    Int(i64),
    /// An exact rational p / q.
    Frac(i64, i64),
    Sym(&'static str),
    Bool(bool),
    None,
}

fn spec_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("specs")
        .join(rel)
}

/// `congruity eval SPEC --input INPUT [--program P]`.
fn eval_command(rel: &str, program: Option<&str>, input: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_congruity"));
    cmd.arg("eval")
        .arg(spec_path(rel))
        .arg("--input")
        .arg(input);
    if let Some(p) = program {
        cmd.arg("--program").arg(p);
    }
    cmd
}

/// Runs `congruity eval SPEC [--program P] --input INPUT [--json]`; returns stdout, or panics with
/// stderr when the command fails.
fn run(rel: &str, program: Option<&str>, input: &str, json: bool) -> String {
    let mut cmd = eval_command(rel, program, input);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("the congruity binary runs");
    assert!(
        out.status.success(),
        "congruity eval {} --input {input:?} exited with {}: {}",
        spec_path(rel).display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("eval prints UTF-8")
}

/// Runs an evaluation the spec must refuse (`why` says why); returns stderr.
fn refused(rel: &str, program: Option<&str>, input: &str, why: &str) -> String {
    let out = eval_command(rel, program, input)
        .output()
        .expect("the congruity binary runs");
    assert!(!out.status.success(), "{why}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `output` array of `congruity eval ... --json`.
fn eval_json(rel: &str, program: Option<&str>, input: &str) -> Vec<Value> {
    let stdout = run(rel, program, input, true);
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("eval --json printed no JSON ({e}): {stdout}"));
    match json.get("output") {
        Some(Value::Array(values)) => values.clone(),
        _ => panic!("eval --json printed no `output` array: {json}"),
    }
}

/// Whether a JSON value is the expected value. Rationals come back as JSON decimal numbers: the
/// nearest f64 to p / q is what both a correctly rounded decimal and `p as f64 / q as f64` give, so
/// the comparison is exact equality of f64, not a tolerance (the text output is compared exactly).
fn matches(got: &Value, want: V) -> bool {
    match want {
        V::Int(i) => got.as_i64() == Some(i),
        V::Frac(p, q) => got.as_f64() == Some(p as f64 / q as f64),
        V::Sym(s) => got.as_str() == Some(s),
        V::Bool(b) => got.as_bool() == Some(b),
        V::None => got.is_null(),
    }
}

/// Evaluates `input` with the spec's only interpretation (or `program`) and compares the text
/// output with `text` and the JSON output with `want`.
fn check_program(rel: &str, program: Option<&str>, input: &str, text: &str, want: &[V]) {
    let got_text = run(rel, program, input, false);
    assert_eq!(got_text.trim_end(), text, "{rel} on {input:?}: text output");
    let got = eval_json(rel, program, input);
    let ok = got.len() == want.len() && got.iter().zip(want).all(|(g, &w)| matches(g, w));
    assert!(ok, "{rel} on {input:?}: expected {want:?}, got {got:?}");
}

fn check(rel: &str, input: &str, text: &str, want: &[V]) {
    check_program(rel, None, input, text, want);
}

fn ints(xs: &[i64]) -> Vec<V> {
    xs.iter().map(|&x| V::Int(x)).collect()
}

fn syms(xs: &[&'static str]) -> Vec<V> {
    xs.iter().map(|&x| V::Sym(x)).collect()
}

#[test]
fn length_examples() {
    // test_cases.py length_categorical_{1,2,3} (the docstring's "abcdefg" is longer than 6).
    check("tracr/length.interp", "a b c", "3 3 3", &ints(&[3, 3, 3]));
    check("tracr/length.interp", "a d", "2 2", &ints(&[2, 2]));
    check("tracr/length.interp", "c", "1", &ints(&[1]));
}

#[test]
fn reverse_examples() {
    // test_cases.py reverse_2 and reverse_4 (the others use d, outside {a, b, c}).
    check(
        "tracr/reverse.interp",
        "a b c",
        "c b a",
        &syms(&["c", "b", "a"]),
    );
    check("tracr/reverse.interp", "c", "c", &syms(&["c"]));
}

#[test]
fn sort_unique_example() {
    // Docstring: sort([2, 4, 3, 1]) == [1, 2, 3, 4].
    check(
        "tracr/sort_unique.interp",
        "2 4 3 1",
        "1 2 3 4",
        &ints(&[1, 2, 3, 4]),
    );
}

#[test]
fn sort_unique_refuses_repeated_tokens() {
    // make_sort_unique "only supports unique keys": the task's `where` keeps such inputs out.
    let stderr = refused(
        "tracr/sort_unique.interp",
        None,
        "2 2 1",
        "a repeated token must be refused",
    );
    assert!(stderr.contains("outside the domain"), "{stderr}");
}

#[test]
fn sort_examples() {
    // Docstring (make_sort(tokens, tokens, 5, 1)).
    check(
        "tracr/sort.interp",
        "2 4 3 1",
        "1 2 3 4",
        &ints(&[1, 2, 3, 4]),
    );
    check(
        "tracr/sort.interp",
        "2 4 1 2",
        "1 2 2 4",
        &ints(&[1, 2, 2, 4]),
    );
}

#[test]
fn sort_freq_example() {
    // Docstring: sort([2, 4, 2, 1]) == [2, 2, 4, 1].
    check(
        "tracr/sort_freq.interp",
        "2 4 2 1",
        "2 2 4 1",
        &ints(&[2, 2, 4, 1]),
    );
}

#[test]
fn frac_prevs_example() {
    // tracr evaluator: make_frac_prevs(tokens == "x")("wxyxz") (the docstring counts "l" in
    // "hello", outside {w, x, y, z}).
    check(
        "tracr/frac_prevs.interp",
        "w x y x z",
        "0 0.5 1/3 0.5 0.4",
        &[
            V::Int(0),
            V::Frac(1, 2),
            V::Frac(1, 3),
            V::Frac(1, 2),
            V::Frac(2, 5),
        ],
    );
}

#[test]
fn pair_balance_examples() {
    // tracr evaluator: make_pair_balance(tokens, "(", ")") on "a()a(" and ")((" (the docstring's
    // "a()b(c))" has b, c and 8 tokens).
    check(
        "tracr/pair_balance.interp",
        "a ( ) a (",
        "0 0.5 0 0 0.2",
        &[
            V::Int(0),
            V::Frac(1, 2),
            V::Int(0),
            V::Int(0),
            V::Frac(1, 5),
        ],
    );
    check(
        "tracr/pair_balance.interp",
        ") ( (",
        "-1 0 1/3",
        &[V::Int(-1), V::Int(0), V::Frac(1, 3)],
    );
}

#[test]
fn shuffle_dyck_examples() {
    // tracr evaluator: make_shuffle_dyck(["()"]). tracr returns Python booleans (True, or 0.0 where
    // the last-position aggregate averages a False); the spec returns booleans.
    let t = "true true true true";
    check(
        "tracr/shuffle_dyck.interp",
        "( ( ) )",
        t,
        &[V::Bool(true); 4],
    );
    check(
        "tracr/shuffle_dyck.interp",
        ") (",
        "false false",
        &[V::Bool(false); 2],
    );
    let f = "false false false";
    check(
        "tracr/shuffle_dyck.interp",
        "( ( )",
        f,
        &[V::Bool(false); 3],
    );
}

#[test]
fn shuffle_dyck2_examples() {
    // Docstring: shuffle_dyck2("({)}") == [1, 1, 1, 1] (Python's True == 1); test_cases.py
    // shuffle_dyck2_3: "{}(" gives [0, 0, 0]. "(){)}" has 5 tokens, above max_len 4.
    let t = "true true true true";
    check(
        "tracr/shuffle_dyck2.interp",
        "( { ) }",
        t,
        &[V::Bool(true); 4],
    );
    let f = "false false false";
    check(
        "tracr/shuffle_dyck2.interp",
        "{ } (",
        f,
        &[V::Bool(false); 3],
    );
}

#[test]
fn detect_pattern_example() {
    // Docstring: detect_pattern(tokens, "abc")("abcabc") == [None, None, T, F, F, T].
    check(
        "tracr/detect_pattern.interp",
        "a b c a b c",
        "none none true false false true",
        &[
            V::None,
            V::None,
            V::Bool(true),
            V::Bool(false),
            V::Bool(false),
            V::Bool(true),
        ],
    );
}

#[test]
fn count_less_freq_examples() {
    // Docstring (n = 2).
    let spec = "tracr/count_less_freq.interp";
    check(spec, "a a a b b c", "3 3 3 3 3 3", &ints(&[3; 6]));
    check(spec, "a a c b b c", "6 6 6 6 6 6", &ints(&[6; 6]));
}

#[test]
fn count_examples() {
    // Docstring and test_cases.py make_count_3 (token "a").
    check(
        "tracr/count.interp",
        "a a a b b c",
        "3 3 3 3 3 3",
        &ints(&[3; 6]),
    );
    check("tracr/count.interp", "c a b c", "1 1 1 1", &ints(&[1; 4]));
    check("tracr/count.interp", "b b c", "0 0 0", &ints(&[0; 3]));
}

#[test]
fn alternatives_agree_on_the_examples() {
    let cba = syms(&["c", "b", "a"]);
    check(
        "alternatives/reverse_by_sorting.interp",
        "a b c",
        "c b a",
        &cba,
    );
    check(
        "alternatives/reverse_by_later_count.interp",
        "a b c",
        "c b a",
        &cba,
    );
    let sorted = ints(&[1, 2, 2, 4]);
    check(
        "alternatives/sort_by_counting.interp",
        "2 4 1 2",
        "1 2 2 4",
        &sorted,
    );
    check(
        "alternatives/sort_by_histogram.interp",
        "2 4 1 2",
        "1 2 2 4",
        &sorted,
    );
    let three = ints(&[3, 3, 3]);
    check(
        "alternatives/length_by_indices.interp",
        "a b c",
        "3 3 3",
        &three,
    );
    check(
        "alternatives/length_by_mean_index.interp",
        "a b c",
        "3 3 3",
        &three,
    );
    let hist = ints(&[2, 1, 2, 1]);
    check(
        "alternatives/hist_by_complement.interp",
        "x y x z",
        "2 1 2 1",
        &hist,
    );
}

#[test]
fn the_wrong_reverse_is_wrong() {
    // Off by one on purpose: position 0 reads past the end.
    let want = [V::None, V::Sym("b")];
    check("alternatives/reverse_wrong.interp", "a b", "none b", &want);
}

#[test]
fn toy_pipelines() {
    // tracr evaluator, on the InterpBench programs chained with the same adapters.
    let spec = "toy/pipelines.interp";
    let pi = "3 1 4 1 5 9 2 6 5";
    let algo_1 = ints(&[0, 1, 1, 1, 1, 0, 1, 3, 0]);
    check_program(spec, Some("algo_1"), pi, "0 1 1 1 1 0 1 3 0", &algo_1);
    let zeros = ints(&[0; 9]);
    let ones = ints(&[1; 9]);
    check_program(spec, Some("algo_2"), pi, "0 0 0 0 0 0 0 0 0", &zeros);
    check_program(spec, Some("algo_3"), pi, "0 0 0 0 0 0 0 0 0", &zeros);
    check_program(spec, Some("algo_4"), pi, "0 0 0 0 0 0 0 0 0", &zeros);
    check_program(spec, Some("algo_4"), "2 3 4 5", "1 1 1 1", &ints(&[1; 4]));
    check_program(spec, Some("algo_5"), pi, "1 1 1 1 1 1 1 1 1", &ones);
    check_program(spec, Some("algo_6"), pi, "1 1 1 1 1 1 1 1 1", &ones);
    // The clamp is load-bearing: sorted 9 10 sums to 19 20, both clamped to 10, so
    // check_all_equal says "all equal".
    check_program(spec, Some("algo_3"), "10 9", "1 1", &ints(&[1, 1]));
    // sort 9 10, incremented 9 11, clamped 9 10: not all equal.
    check_program(spec, Some("algo_2"), "10 9", "0 0", &ints(&[0, 0]));
}

#[test]
fn check_alternating_needs_two_tokens() {
    // On one token the source's Select raises ("key is None!"); the task's `where` keeps it out,
    // so the pipeline that feeds it a sorted single token fails with a domain error.
    let stderr = refused(
        "toy/pipelines.interp",
        Some("algo_4"),
        "3",
        "a single token must be refused",
    );
    assert!(stderr.contains("check_alternating"), "{stderr}");
}

#[test]
fn every_spec_checks_and_is_formatted() {
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    for args in [&["check"][..], &["fmt", "--check"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_congruity"))
            .args(args)
            .arg(&specs)
            .output()
            .expect("the congruity binary runs");
        assert!(
            out.status.success(),
            "congruity {} specs/ failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
