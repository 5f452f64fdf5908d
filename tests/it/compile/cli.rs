//! `congruity compile` / `congruity sample` end to end: the directories they write load in
//! `congruity run`, which prints the interpretation's output; bad requests are errors, not panics.

use crate::support::compile as compile_support;

use std::path::Path;

use compile_support::{arg, cli_fails, congruity, ok, read_json};

/// `congruity compile SPEC --program PROGRAM --out OUT`, expected to succeed.
fn compile(spec: &str, program: &str, out: &Path) -> String {
    ok(&["compile", spec, "--program", program, "--out", arg(out)])
}

/// `congruity run --model MODEL --input INPUT [EXTRA...]`, expected to succeed.
fn run_input(model: &Path, input: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "--model", arg(model), "--input", input];
    args.extend_from_slice(extra);
    ok(&args)
}

#[test]
fn compile_then_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rev");
    compile("specs/tracr/reverse.interp", "tracr_reverse", &out);
    for f in [
        "model.safetensors",
        "config.json",
        "congruity.json",
        "compile.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let r = run_input(&out, "a b c c", &[]);
    assert_eq!(r.trim(), "c c b a");
    let sidecar = read_json(&out.join("congruity.json"));
    assert_eq!(sidecar["format"], "congruity-model/2");
    assert_eq!(
        sidecar["input"]["tokens"],
        serde_json::json!(["BOS", "a", "b", "c"])
    );
    assert_eq!(sidecar["provenance"]["program"], "tracr_reverse");
    assert_eq!(
        sidecar["provenance"]["spec_sha256"].as_str().unwrap().len(),
        64
    );
    assert!(
        sidecar["residual_labels"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("length:3"))
    );
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["attention_dir"], "bidirectional");
    assert_eq!(config["normalization_type"], serde_json::Value::Null);
    // Same command, same bytes.
    let again = tmp.path().join("rev2");
    compile("specs/tracr/reverse.interp", "tracr_reverse", &again);
    for f in ["model.safetensors", "config.json", "compile.json"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn sample_then_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("s");
    ok(&[
        "sample",
        "specs/tracr/sort.interp",
        "--program",
        "tracr_sort",
        "--count",
        "4",
        "--seed",
        "7",
        "--out",
        arg(&out),
        "--family",
        "rotation",
        "--family",
        "noise-width",
    ]);
    for i in 0..4 {
        let dir = out.join(format!("{i:04}"));
        let r = run_input(&dir, "3 1 2 1", &[]);
        assert_eq!(r.trim(), "1 1 2 3");
        let sc = read_json(&dir.join("congruity.json"));
        assert_eq!(
            sc["provenance"]["family"],
            serde_json::json!(["noise-width", "rotation"])
        );
        assert_eq!(sc["provenance"]["sample"]["index"], serde_json::json!(i));
        assert!(dir.join("basis.safetensors").is_file());
    }
}

#[test]
fn numerical_outputs_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fp");
    compile("specs/tracr/frac_prevs.interp", "tracr_frac_prevs", &out);
    let r = run_input(&out, "x w x w", &["--json"]);
    let v: serde_json::Value = serde_json::from_str(r.trim()).unwrap();
    let got: Vec<f64> = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    for (g, w) in got.iter().zip([1.0, 0.5, 2.0 / 3.0, 0.5]) {
        assert!((g - w).abs() < 1e-5, "{got:?}");
    }
    // The sidecar keeps every value the output can take exactly, beside its float.
    let sidecar = read_json(&out.join("congruity.json"));
    let exact = sidecar["output"]["exact"].as_array().unwrap();
    let floats = sidecar["output"]["values"].as_array().unwrap();
    assert_eq!(exact.len(), floats.len());
    assert!(exact.contains(&serde_json::json!("2/3")), "{exact:?}");
    for (e, f) in exact.iter().zip(floats) {
        let e = e.as_str().unwrap();
        let (p, q) = e.split_once('/').unwrap_or((e, "1"));
        let x = p.parse::<f64>().unwrap() / q.parse::<f64>().unwrap();
        assert!(
            (x - f.as_f64().unwrap()).abs() <= 1e-15 * x.abs().max(1.0),
            "{e}"
        );
    }
}

#[test]
fn errors_are_reported_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let err = cli_fails(&[
        "compile",
        "specs/tracr/reverse.interp",
        "--program",
        "nope",
        "--out",
        arg(&out),
    ]);
    assert!(
        err.contains("no interpretation or pipeline named `nope`") && err.contains("tracr_reverse"),
        "{err}"
    );
    assert!(!out.exists());
    cli_fails(&[
        "compile",
        "specs/does_not_exist.interp",
        "--program",
        "x",
        "--out",
        arg(&out),
    ]);
    // An unknown family is rejected by the argument parser (a usage error), before the command.
    let o = congruity(&[
        "sample",
        "specs/tracr/reverse.interp",
        "--program",
        "tracr_reverse",
        "--count",
        "1",
        "--seed",
        "1",
        "--out",
        arg(&out),
        "--family",
        "spin",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown family `spin`"));
}

#[test]
fn ambiguous_categorical_aggregate_is_a_compile_error_with_an_input() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("bad.interp");
    std::fs::write(
        &spec,
        "task t {\n  vocab {a, b}\n  max_len 3\n}\n\
         interpretation first_a for t {\n  same = select(tokens, tokens, ==)\n  output aggregate(same, indices)\n}\n",
    )
    .unwrap();
    let out = tmp.path().join("m");
    let err = cli_fails(&[
        "compile",
        arg(&spec),
        "--program",
        "first_a",
        "--out",
        arg(&out),
    ]);
    assert!(
        err.contains("selects more than one position on input [a a]"),
        "{err}"
    );
    assert!(err.contains("holding 0, 1"), "{err}");
    assert!(!out.exists(), "no half-written model");
}

#[test]
fn pipelines_compile_and_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    compile("specs/toy/pipelines.interp", "algo_1", &out);
    assert!(out.join("pipeline.json").is_file());
    let s = tmp.path().join("ps");
    ok(&[
        "sample",
        "specs/toy/pipelines.interp",
        "--program",
        "algo_1",
        "--count",
        "2",
        "--seed",
        "3",
        "--out",
        arg(&s),
    ]);
    let m = read_json(&s.join("0001/pipeline.json"));
    assert_eq!(m["provenance"]["sample"]["index"], 1);
    let stage = m["stages"][1]["dir"].as_str().unwrap();
    run_input(&s.join("0001").join(stage), "3 1 2", &[]);
}

/// `compile` and `sample` take the file's only interpretation when `--program` is not given (as
/// `eval` does); a file of several says which to choose, and writes nothing.
#[test]
fn the_only_interpretation_needs_no_program_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rev");
    let said = ok(&["compile", "specs/tracr/reverse.interp", "--out", arg(&out)]);
    assert!(said.contains("compiled `tracr_reverse`"), "{said}");
    assert_eq!(run_input(&out, "a b c", &[]).trim(), "c b a");
    let pool = tmp.path().join("pool");
    let said = ok(&[
        "sample",
        "specs/tracr/reverse.interp",
        "--count",
        "2",
        "--seed",
        "1",
        "--out",
        arg(&pool),
    ]);
    assert!(said.contains("of `tracr_reverse`"), "{said}");
    assert!(pool.join("0001").join("congruity.json").is_file());

    let several = tmp.path().join("several");
    let err = cli_fails(&[
        "compile",
        "specs/toy/pipelines.interp",
        "--out",
        arg(&several),
    ]);
    assert!(
        err.contains("defines 6 runnable items; choose one with --program")
            && err.contains("--program algo_1 | --program algo_2"),
        "{err}"
    );
    assert!(!several.exists());
}
