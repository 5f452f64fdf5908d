//! The `check`, `eval` and `fmt` subcommands through the binary: exit codes, stdout, stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn congruity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_congruity"))
        .current_dir(root())
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("run congruity")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs congruity where it must fail with exit code 1; returns stderr.
fn failure(args: &[&str]) -> String {
    let o = congruity(args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "congruity {args:?}: {}",
        stdout(&o)
    );
    stderr(&o)
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("congruity-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn check_specs_is_clean() {
    let o = congruity(&["check", "specs/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("ok specs/tracr/reverse.interp (1 task, 1 interpretation)"),
        "{out}"
    );
    assert!(
        out.contains("ok specs/tracr/hist.interp (1 task, 1 interpretation)"),
        "{out}"
    );
    // One line per spec file.
    let files = congruity::cli::check::collect_specs(&root().join("specs")).unwrap();
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        files.len()
    );
}

#[test]
fn check_reports_errors_on_stderr_and_exits_1() {
    let d = temp_dir("check");
    let good = write(&d, "good.interp", "task t { vocab {a} max_len 2 }\n");
    let bad = write(
        &d,
        "bad.interp",
        "task t { vocab {a, b} max_len 3 }\ninterpretation i for t {\n  x = map(|v| v + 1, tokens)\n  output y\n}\n",
    );
    let o = congruity(&["check", &good, &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("ok "), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("bad.interp:3:15"), "{err}");
    assert!(err.contains("unknown name `y`"), "{err}");
    assert!(err.contains("1 of 2 file(s) have errors"), "{err}");
    let err = failure(&["check", d.join("nope.interp").to_str().unwrap()]);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn check_refuses_a_circuit_site_the_checked_model_lacks() {
    let d = temp_dir("check-model");
    let o = congruity(&[
        "compile",
        "specs/tracr/reverse.interp",
        "--out",
        d.join("models/rev").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let spec = |circuit: &str| {
        format!(
            "import \"{}\"\ncircuit bad for tracr_reverse {{\n  output -> blocks.9.attn.hook_z[7]\n}}\n\
             check m {{\n  model \"models/rev\"\n  expect iia({circuit}) >= 0.9\n}}\n",
            root().join("specs/circuits/tracr_reverse.interp").display()
        )
    };
    let bad = write(&d, "bad.interp", &spec("bad"));
    let err = failure(&["check", &bad]);
    assert!(err.contains("bad.interp:7:3"), "{err}");
    // The message as words, whatever the width the report was wrapped to.
    let words = err
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(words.contains("site `blocks.9.attn.hook_z[head 7]` does not exist in this model (2 layers × 1 head, d_model 34, d_mlp 20): the model has 2 layers"), "{err}");
    // The compiled layout fits; a model that does not exist yet is checked when the check runs.
    let good = write(&d, "good.interp", &spec("tracr_reverse_compiled"));
    let o = congruity(&["check", &good]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(d.join("models")).unwrap();
    let o = congruity(&["check", &bad]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn eval_prints_the_output_sequence() {
    let o = congruity(&["eval", "specs/tracr/reverse.interp", "--input", "a b c b"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "b c b a\n");
    let o = congruity(&[
        "eval",
        "specs/tracr/hist.interp",
        "--program",
        "tracr_hist",
        "--input",
        "x y x",
        "--json",
    ]);
    assert_eq!(stdout(&o), "{\"output\":[2,1,2]}\n");
}

#[test]
fn eval_prints_rationals_exactly_and_runs_pipelines() {
    let d = temp_dir("eval");
    let f = write(
        &d,
        "frac.interp",
        "task f { vocab {w, x} max_len 6 }
task g { vocab {0..=3} max_len 6 }
interpretation frac for f {
  bools = numerical map(|t| if t == x then 1 else 0, tokens)
  output numerical aggregate(select(indices, indices, <=), bools)
}
interpretation count for g { output selector_width(select(tokens, tokens, ==)) }
interpretation inc for g { output map(|v| v + 1, tokens) }
pipeline p = inc |> count via clamp
",
    );
    let o = congruity(&["eval", &f, "--program", "frac", "--input", "x w w"]);
    assert_eq!(stdout(&o), "1 0.5 1/3\n", "{}", stderr(&o));
    let o = congruity(&[
        "eval",
        &f,
        "--program",
        "frac",
        "--input",
        "x w w x",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["output"][2].as_f64(), Some(1.0 / 3.0));
    assert_eq!(v["output"][3], serde_json::json!(0.5));
    // 3 + 1 = 4 clamps to 3, so two tokens become 3.
    let o = congruity(&["eval", &f, "--program", "p", "--input", "0 2 3"]);
    assert_eq!(stdout(&o), "1 2 2\n", "{}", stderr(&o));
    // Several runnable items: --program is required.
    let err = failure(&["eval", &f, "--input", "x"]);
    assert!(err.contains("choose one with --program"), "{err}");
}

#[test]
fn eval_rejects_bad_input_naming_the_token() {
    let err = failure(&["eval", "specs/tracr/reverse.interp", "--input", "a z c"]);
    assert!(
        err.contains("`z` is not a token of task `reverse`"),
        "{err}"
    );
    assert!(err.contains("--input:1:3"), "{err}");
    assert!(err.contains("{a, b, c}"), "{err}");
    let err = failure(&["eval", "specs/tracr/reverse.interp", "--input", "a b c a b"]);
    assert!(err.contains("at most 4"), "{err}");
    let err = failure(&[
        "eval",
        "specs/tracr/reverse.interp",
        "--program",
        "nope",
        "--input",
        "a",
    ]);
    assert!(err.contains("tracr_reverse"), "{err}");
}

#[test]
fn fmt_rewrites_in_place_and_check_reports() {
    let d = temp_dir("fmt");
    let messy = "task t{vocab{a,b} max_len 3}  # t\ninterpretation i for t{x=map(|v|v==a,tokens)\noutput x}\n";
    let f = write(&d, "m.interp", messy);
    let o = congruity(&["fmt", "--check", &f]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains(&format!("would reformat {f}")),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        messy,
        "--check must not write"
    );
    let o = congruity(&["fmt", &f]);
    assert!(o.status.success(), "{}", stderr(&o));
    let formatted = std::fs::read_to_string(&f).unwrap();
    assert_eq!(
        formatted,
        "task t {\n  vocab   {a, b}\n  max_len 3\n}  # t\n\ninterpretation i for t {\n  x      = map(|v| v == a, tokens)\n  output   x\n}\n"
    );
    // No temporary files left behind; a second run changes nothing.
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    let o = congruity(&["fmt", "--check", d.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stdout(&o));
    // A file that does not parse is reported and left alone.
    let bad = write(&d, "bad.interp", "task t {\n");
    let err = failure(&["fmt", &bad]);
    assert!(err.contains("unterminated block"), "{err}");
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), "task t {\n");
}

#[test]
fn bundled_tracr_specs_are_canonical() {
    let o = congruity(&[
        "fmt",
        "--check",
        "specs/tracr/length.interp",
        "specs/tracr/reverse.interp",
        "specs/tracr/hist.interp",
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn eval_errors_point_at_the_failing_variable() {
    let d = temp_dir("evalerr");
    let f = write(
        &d,
        "amb.interp",
        "task t { vocab {a, b} max_len 3 }\ninterpretation i for t {\n  same = aggregate(select(tokens, tokens, ==), indices)\n  output same\n}\n",
    );
    let o = congruity(&["eval", &f, "--input", "a b"]);
    assert_eq!(stdout(&o), "0 1\n", "{}", stderr(&o));
    let err = failure(&["eval", &f, "--input", "a b a"]);
    assert!(
        err.contains("ambiguous categorical aggregate `same`"),
        "{err}"
    );
    assert!(err.contains("amb.interp:3:10"), "{err}");
}
