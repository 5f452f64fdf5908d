//! `congruity train`: a trained implementation of reverse is accepted, answers as the
//! interpretation does, and is used unchanged by `run` and `iia`; an unaccepted one says so.

use crate::support::runtime::{arg, cli_fails, congruity, ok, read_json};

#[test]
fn a_trained_reverse_is_accepted_and_runs_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("reverse");
    let spec = "specs/tracr/reverse.interp";
    let stdout = ok(&["train", spec, "--seed", "1", "--out", arg(&out)]);
    assert!(stdout.contains("accuracy 1.0000"), "{stdout}");
    let sidecar = read_json(&out.join("congruity.json"));
    let t = &sidecar["provenance"]["training"];
    assert_eq!(t["accepted"], true, "{sidecar}");
    assert!(t["accuracy"].as_f64().unwrap() >= 0.99, "{t}");
    assert!(t["iia"].as_f64().unwrap() >= 0.95, "{t}");
    assert_eq!(sidecar["provenance"]["family"][0], "trained");
    let answer = ok(&["run", "--model", arg(&out), "--input", "a b c"]);
    assert_eq!(answer.trim(), "c b a");
    // `iia` measures the written model as the trainer did (same seed, same pairs).
    let iia = ok(&[
        "iia",
        "specs/circuits/tracr_reverse.interp",
        "--model",
        arg(&out),
        "--circuit",
        "tracr_reverse_compiled",
        "--seed",
        "1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&iia).unwrap();
    assert_eq!(v["iia"], t["iia"], "{iia}");
}

#[test]
fn an_undertrained_model_is_written_but_not_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("short");
    let err = cli_fails(&[
        "train",
        "specs/tracr/hist.interp",
        "--seed",
        "3",
        "--out",
        arg(&out),
        "--steps",
        "2",
        "--batch",
        "8",
    ]);
    assert!(err.contains("not accepted"), "{err}");
    let sidecar = read_json(&out.join("congruity.json"));
    assert_eq!(sidecar["provenance"]["training"]["accepted"], false);
    assert_eq!(sidecar["provenance"]["training"]["steps"], 2);
    let record = read_json(&out.join("train.json"));
    assert!(
        record["circuit_block"]
            .as_str()
            .unwrap()
            .starts_with("circuit tracr_hist_compiled")
    );
}

#[test]
fn bad_training_requests_are_refused_with_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let spec = "specs/circuits/tracr_reverse.interp";
    let cases: [(&[&str], &str); 3] = [
        (
            &["--program", "tracr_reverse", "--circuit", "nope"],
            "has no circuit `nope`",
        ),
        (
            &["--program", "tracr_reverse", "--min-iia", "1.5"],
            "--min-iia must be in [0, 1]",
        ),
        // A circuit of another interpretation is refused.
        (
            &[
                "--program",
                "reverse_wrong",
                "--circuit",
                "tracr_reverse_layout",
            ],
            "is for `tracr_reverse`",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["train", spec, "--seed", "0", "--out", arg(&out)];
        args.extend_from_slice(extra);
        let out = congruity(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(!out.exists(), "nothing is written on a refused request");
}

#[test]
fn a_trained_pool_holds_accepted_members_with_their_own_draws() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pool");
    let stdout = ok(&[
        "sample",
        "specs/tracr/hist.interp",
        "--family",
        "trained",
        "--count",
        "1",
        "--seed",
        "4",
        "--out",
        arg(&out),
    ]);
    assert!(
        stdout.contains("trained 1 implementation(s) of `tracr_hist`"),
        "{stdout}"
    );
    let manifest = read_json(&out.join("pool.json"));
    assert_eq!(manifest["members"][0], "0000");
    assert_eq!(manifest["about"]["families"][0], "trained");
    let sidecar = read_json(&out.join("0000/congruity.json"));
    let p = &sidecar["provenance"];
    assert_eq!(p["training"]["accepted"], true, "{p}");
    assert_eq!(p["sample"]["index"], 0);
    assert_eq!(p["sample"]["base_seed"], 4);
    // The member runs as any model does.
    let answer = ok(&["run", "--model", arg(&out.join("0000")), "--input", "x y x"]);
    assert_eq!(answer.trim(), "2 1 2");
    // Training does not mix with the function-preserving families.
    let err = cli_fails(&[
        "sample",
        "specs/tracr/hist.interp",
        "--family",
        "trained",
        "--family",
        "rotation",
        "--count",
        "1",
        "--seed",
        "4",
        "--out",
        arg(&tmp.path().join("mixed")),
    ]);
    assert!(err.contains("does not combine"), "{err}");
}
