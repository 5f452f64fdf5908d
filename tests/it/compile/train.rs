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

/// A task whose interpretation trains in a hundred steps, and a pipeline of it twice.
const PIPELINE_SPEC: &str = "task t {
  vocab {0, 1}
  max_len 3
}

interpretation copy for t {
  output aggregate(select(indices, indices, ==), tokens)
}

pipeline twice = copy |> copy
";

#[test]
fn trained_chains_of_a_pipeline_are_kept_and_resumed_with_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("p.interp");
    std::fs::write(&spec, PIPELINE_SPEC).unwrap();
    let cache = tmp.path().join("cache");
    // `sample --family trained` of the pipeline's three chains into `out`, with `extra` flags.
    let sample_args = |out: &std::path::Path, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "sample",
            arg(&spec),
            "--program",
            "twice",
            "--family",
            "trained",
            "--fixed-architecture",
            "--count",
            "3",
            "--seed",
            "5",
            "--out",
            arg(out),
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let sample = |out: &std::path::Path, cache: Option<&std::path::Path>| {
        let extra = cache.map_or(Vec::new(), |c| vec!["--cache-dir", arg(c)]);
        let args = sample_args(out, &extra);
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let first = tmp.path().join("first");
    let stdout = sample(&first, Some(&cache));
    assert!(
        stdout.contains("trained 3 chain(s) of pipeline `twice` (2 stages)"),
        "{stdout}"
    );
    let manifest = read_json(&first.join("pool.json"));
    assert_eq!(manifest["about"]["pipeline"], "twice");
    assert_eq!(manifest["about"]["families"][0], "trained");
    let mut seeds = Vec::new();
    for chain in ["0000", "0001", "0002"] {
        let p = read_json(&first.join(chain).join("pipeline.json"));
        assert_eq!(p["pipeline"], "twice");
        assert_eq!(p["provenance"]["family"][0], "trained");
        for (k, stage) in ["00-copy", "01-copy"].iter().enumerate() {
            assert_eq!(p["stages"][k]["dir"], *stage);
            let sidecar = read_json(&first.join(chain).join(stage).join("congruity.json"));
            let prov = &sidecar["provenance"];
            assert_eq!(prov["training"]["accepted"], true, "{prov}");
            seeds.push(prov["seed"].as_u64().unwrap());
        }
        // A chain runs as one model: the copy of the copy.
        let answer = ok(&[
            "run",
            "--model",
            arg(&first.join(chain)),
            "--input",
            "1 0 1",
        ]);
        assert_eq!(answer.trim(), "1 0 1", "{chain}");
    }
    seeds.sort();
    seeds.dedup();
    assert_eq!(
        seeds.len(),
        6,
        "every stage of every chain has its own training"
    );

    // The same command again reads every stage back from the cache (nothing is trained), and
    // without the cache it trains the same models: the same bytes all three ways.
    let second = tmp.path().join("second");
    let again = sample(&second, Some(&cache));
    assert!(!again.contains("trained `copy`"), "{again}");
    assert_eq!(again.matches("kept `copy`").count(), 6, "{again}");
    let fresh = tmp.path().join("fresh");
    let trained = sample(&fresh, None);
    assert_eq!(trained.matches("trained `copy`").count(), 6, "{trained}");
    for chain in ["0000", "0001", "0002"] {
        for stage in ["00-copy", "01-copy"] {
            for file in ["model.safetensors", "congruity.json", "train.json"] {
                let read = |root: &std::path::Path| {
                    std::fs::read(root.join(chain).join(stage).join(file)).unwrap()
                };
                assert_eq!(read(&first), read(&second), "{chain}/{stage}/{file}");
                assert_eq!(read(&first), read(&fresh), "{chain}/{stage}/{file}");
            }
        }
    }

    // The chains are a given pool of the pipeline in `compare`, run chain by chain.
    let report = ok(&[
        "compare",
        arg(&spec),
        "--interpretations",
        "twice,copy",
        "--pool",
        &format!("twice={}", first.display()),
        "--samples",
        "3",
        "--seed",
        "1",
        "--inputs",
        "14",
        "--bootstraps",
        "2",
        "--draws",
        "10",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    let p = &v["pools"][0];
    assert_eq!(p["label"], "twice", "{p}");
    assert_eq!(p["kind"], "pipeline", "{p}");
    assert_eq!(p["count"], 3, "{p}");
    assert_eq!(p["dirs"][0], first.display().to_string(), "{p}");
    assert!(p["seed"].is_null(), "{p}");
    // What `compare` says of a given pool it refuses.
    let refused = |pool: &str| {
        cli_fails(&[
            "compare",
            arg(&spec),
            "--interpretations",
            "twice,copy",
            "--pool",
            pool,
            "--samples",
            "3",
            "--seed",
            "1",
        ])
    };
    // Chains are not implementations of one interpretation.
    let err = refused(&format!("copy={}", first.display()));
    assert!(
        err.contains("is a chain of copy |> copy, but `copy` is one interpretation"),
        "{err}"
    );
    // A chain with a stage that was not accepted is not an implementation.
    let flipped = tmp.path().join("flipped");
    for chain in ["0000", "0001", "0002"] {
        for stage in ["00-copy", "01-copy"] {
            let (from, to) = (
                first.join(chain).join(stage),
                flipped.join(chain).join(stage),
            );
            std::fs::create_dir_all(&to).unwrap();
            for f in std::fs::read_dir(&from).unwrap() {
                let f = f.unwrap().path();
                std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
            }
        }
        std::fs::copy(
            first.join(chain).join("pipeline.json"),
            flipped.join(chain).join("pipeline.json"),
        )
        .unwrap();
    }
    std::fs::copy(first.join("pool.json"), flipped.join("pool.json")).unwrap();
    let sidecar = flipped.join("0001/01-copy/congruity.json");
    let text = std::fs::read_to_string(&sidecar).unwrap();
    assert!(text.contains("\"accepted\": true"), "{text}");
    std::fs::write(
        &sidecar,
        text.replace("\"accepted\": true", "\"accepted\": false"),
    )
    .unwrap();
    let err = refused(&format!("twice={}", flipped.display()));
    assert!(
        err.contains("stage 01-copy was trained but not accepted"),
        "{err}"
    );
    // And single models are not chains of a pipeline.
    let single = tmp.path().join("single");
    ok(&[
        "sample",
        arg(&spec),
        "--program",
        "copy",
        "--family",
        "rotation",
        "--count",
        "3",
        "--seed",
        "1",
        "--out",
        arg(&single),
    ]);
    let err = refused(&format!("twice={}", single.display()));
    assert!(
        err.contains("is one model, but `twice` is a pipeline"),
        "{err}"
    );
    // A pipeline names no single circuit.
    let args = sample_args(&tmp.path().join("refused"), &["--circuit", "c"]);
    let err = cli_fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("is a pipeline"), "{err}");
}
