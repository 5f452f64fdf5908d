//! `congruity compile` / `congruity sample` end to end: the directories they write load in
//! `congruity run`, which prints the interpretation's output; bad requests are errors, not panics.

mod compile_support;

use std::process::Command;

use compile_support::root;

fn congruity(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_congruity"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn compile_then_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rev");
    let o = congruity(&[
        "compile",
        "specs/tracr/reverse.interp",
        "--program",
        "tracr_reverse",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "model.safetensors",
        "config.json",
        "congruity.json",
        "compile.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let r = congruity(&[
        "run",
        "--model",
        out.to_str().unwrap(),
        "--input",
        "a b c c",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(stdout(&r), "c c b a");
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("congruity.json")).unwrap())
            .unwrap();
    assert_eq!(sidecar["format"], "congruity-model/1");
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
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["attention_dir"], "bidirectional");
    assert_eq!(config["normalization_type"], serde_json::Value::Null);
    // Same command, same bytes.
    let again = tmp.path().join("rev2");
    assert!(
        congruity(&[
            "compile",
            "specs/tracr/reverse.interp",
            "--program",
            "tracr_reverse",
            "--out",
            again.to_str().unwrap()
        ])
        .status
        .success()
    );
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
    let o = congruity(&[
        "sample",
        "specs/tracr/sort.interp",
        "--program",
        "tracr_sort",
        "--count",
        "4",
        "--seed",
        "7",
        "--out",
        out.to_str().unwrap(),
        "--family",
        "rotation",
        "--family",
        "noise-width",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for i in 0..4 {
        let dir = out.join(format!("{i:04}"));
        let r = congruity(&[
            "run",
            "--model",
            dir.to_str().unwrap(),
            "--input",
            "3 1 2 1",
        ]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        assert_eq!(stdout(&r), "1 1 2 3");
        let sc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("congruity.json")).unwrap())
                .unwrap();
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
    assert!(
        congruity(&[
            "compile",
            "specs/tracr/frac_prevs.interp",
            "--program",
            "tracr_frac_prevs",
            "--out",
            out.to_str().unwrap()
        ])
        .status
        .success()
    );
    let r = congruity(&[
        "run",
        "--model",
        out.to_str().unwrap(),
        "--input",
        "x w x w",
        "--json",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout(&r)).unwrap();
    let got: Vec<f64> = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    for (g, w) in got.iter().zip([1.0, 0.5, 2.0 / 3.0, 0.5]) {
        assert!((g - w).abs() < 1e-5, "{got:?}");
    }
}

#[test]
fn errors_are_reported_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let o = congruity(&[
        "compile",
        "specs/tracr/reverse.interp",
        "--program",
        "nope",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no interpretation or pipeline named `nope`") && err.contains("tracr_reverse"),
        "{err}"
    );
    assert!(!out.exists());
    let o = congruity(&[
        "compile",
        "specs/does_not_exist.interp",
        "--program",
        "x",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
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
        out.to_str().unwrap(),
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
    let o = congruity(&[
        "compile",
        spec.to_str().unwrap(),
        "--program",
        "first_a",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    // miette wraps long messages: compare with the line breaks and frame characters removed.
    let err: String = String::from_utf8_lossy(&o.stderr)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
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
    let o = congruity(&[
        "compile",
        "specs/toy/pipelines.interp",
        "--program",
        "algo_1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("pipeline.json").is_file());
    let s = tmp.path().join("ps");
    let o = congruity(&[
        "sample",
        "specs/toy/pipelines.interp",
        "--program",
        "algo_1",
        "--count",
        "2",
        "--seed",
        "3",
        "--out",
        s.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.join("0001/pipeline.json")).unwrap())
            .unwrap();
    assert_eq!(m["provenance"]["sample"]["index"], 1);
    let stage = m["stages"][1]["dir"].as_str().unwrap();
    let r = congruity(&[
        "run",
        "--model",
        s.join("0001").join(stage).to_str().unwrap(),
        "--input",
        "3 1 2",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}
