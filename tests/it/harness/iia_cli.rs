//! `congruity iia`: the figure `expect iia(C)` reports, from the command line.

use std::process::Command;

use super::{root, stderr, stdout, test};

fn iia(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_congruity"))
        .current_dir(root())
        .arg("iia")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_iia_command_gives_the_checks_figure_and_names_a_failing_interchange() {
    let out = iia(&[
        "specs/circuits/tracr_reverse.interp",
        "--model",
        "tests/fixtures/tracr/reverse",
        "--circuit",
        "tracr_reverse_layout",
        "--seed",
        "1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["iia"], 1.0);
    assert_eq!(v["total"], 1600);
    // The same figure as the bundled check that runs this circuit on this model with seed 1.
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let run = test(
        &[
            "specs/circuits/tracr_reverse.interp",
            "--filter",
            "tracr_model_layout",
            "--quiet",
            "--report",
            report.to_str().unwrap(),
        ],
        cache.path(),
    );
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let fig = &r["units"][0]["expectations"][1]["figure"];
    assert_eq!(fig["value"], v["iia"]);
    assert_eq!(fig["n"], v["total"]);

    // A circuit that names the wrong site: low, with the interchange that shows it.
    let out = iia(&[
        "tests/specs/false/wrong_circuit.interp",
        "--model",
        "tests/fixtures/tracr/reverse",
        "--circuit",
        "output_in_the_mlp",
        "--pairs",
        "50",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("iia(output_in_the_mlp) = 0."), "{text}");
    assert!(text.contains("first wrong: \""), "{text}");
    // An unknown circuit is an error listing the spec's circuits.
    let out = iia(&[
        "specs/circuits/tracr_reverse.interp",
        "--model",
        "tests/fixtures/tracr/reverse",
        "--circuit",
        "nope",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("tracr_reverse_compiled"),
        "{}",
        stderr(&out)
    );
}
