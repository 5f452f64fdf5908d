//! `congruity compare` through the binary: byte-identical JSON whatever the thread count, the SVG
//! heatmaps, and clear errors on bad arguments.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_congruity"))
}

fn spec(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("specs")
        .join(rel)
}

fn run(args: &[&str], threads: &str) -> Output {
    bin()
        .arg("compare")
        .args(args)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("the binary runs")
}

fn small(file: &Path) -> Vec<String> {
    [
        file.to_str().unwrap(),
        "--samples",
        "3",
        "--seed",
        "11",
        "--inputs",
        "30",
        "--bootstraps",
        "2",
        "--draws",
        "15",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn json_is_byte_identical_across_thread_counts_and_svgs_are_written() {
    let tmp = tempfile::tempdir().unwrap();
    let file = spec("alternatives/reverse_by_sorting.interp");
    let mut args = small(&file);
    args.push("--json".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let one = run(&refs, "1");
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let two = run(&refs, "2");
    assert_eq!(one.stdout, two.stdout);
    let v: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(v["format"], "congruity-compare/1");
    assert_eq!(v["selectivity"]["labels"].as_array().unwrap().len(), 2);
    assert_eq!(v["seeds"]["master"], 11);
    // JSON mode shows no progress.
    assert!(
        one.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );

    let svg = tmp.path().join("sel.svg");
    let tsvg = tmp.path().join("transfer.svg");
    let mut args = small(&file);
    args.extend([
        "--svg".to_string(),
        svg.display().to_string(),
        "--transfer-svg".to_string(),
        tsvg.display().to_string(),
        "--quiet".to_string(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&refs, "2");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("selectivity: win rate"), "{text}");
    assert!(text.contains("transfer: mean fit"), "{text}");
    let first = std::fs::read(&svg).unwrap();
    assert!(first.starts_with(b"<svg"));
    assert!(std::fs::read(&tsvg).unwrap().starts_with(b"<svg"));
    let again = run(&refs, "1");
    assert!(again.status.success());
    assert_eq!(
        first,
        std::fs::read(&svg).unwrap(),
        "the SVG bytes depend only on the command"
    );
}

fn fails_with(args: &[&str], needle: &str) {
    let out = run(args, "1");
    assert!(!out.status.success(), "expected a failure for {args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(needle),
        "stderr for {args:?} lacks `{needle}`:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_arguments_are_clear_errors() {
    let file = spec("alternatives/reverse_by_sorting.interp");
    let f = file.to_str().unwrap();
    let base = ["--samples", "3", "--seed", "1", "--inputs", "30", "--quiet"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        let mut v = vec![f];
        v.extend(base);
        v.extend(extra);
        v
    };
    fails_with(
        &with(&["--interpretations", "tracr_reverse,nope"]),
        "`nope` is neither an interpretation nor a pipeline",
    );
    fails_with(&with(&["--pooling", "median"]), "--pooling");
    fails_with(&with(&["--families", "rotate"]), "unknown family `rotate`");
    fails_with(&with(&["--measure", "ridge"]), "bad measure name");
    fails_with(&with(&["--bos", "maybe"]), "--bos");
    fails_with(
        &with(&["--models", "/nonexistent/model"]),
        "no such directory",
    );
    fails_with(&with(&["--circuit", "nope"]), "--circuit `nope`");
    fails_with(
        &with(&["--hooks", "blocks.9.hook_resid_post"]),
        "has 3 layers",
    );
    fails_with(&with(&["--pooling", "positions=7"]), "positions");
    fails_with(&[f, "--samples", "0", "--seed", "1"], "--samples");
    fails_with(
        &[
            f,
            "--samples",
            "2",
            "--seed",
            "1",
            "--inputs",
            "10",
            "--quiet",
        ],
        "--samples 2 is too few",
    );
    let missing = run(
        &["/nonexistent.interp", "--samples", "3", "--seed", "1"],
        "1",
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nonexistent.interp"));
}

fn json_of(args: &[&str]) -> serde_json::Value {
    let out = run(args, "2");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `--pool NAME=DIR`: NAME's implementations are read from a pool directory instead of sampled
/// (here a compiled pool; `sample --family trained` writes the same layout): in the selectivity
/// matrix and the intervention test (at the circuit's sites as declared), reported with its
/// directory; bad pools are refused with reasons.
#[test]
fn a_given_pool_takes_the_place_of_the_sampled_one() {
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path().join("by_length");
    let sampled = bin()
        .args([
            "sample",
            spec("circuits/tracr_reverse.interp").to_str().unwrap(),
        ])
        .args(["--program", "tracr_reverse", "--count", "3", "--seed", "5"])
        .args(["--family", "rotation", "--out", pool.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        sampled.status.success(),
        "{}",
        String::from_utf8_lossy(&sampled.stderr)
    );
    let file = spec("circuits/tracr_reverse.interp");
    let given = format!("tracr_reverse={}", pool.display());
    let mut args = small(&file);
    args.extend(
        [
            "--interpretations",
            "tracr_reverse,reverse_by_sorting",
            "--circuit",
            "tracr_reverse_compiled",
            "--pool",
            &given,
            "--json",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = json_of(&refs);
    let p = &v["pools"][0];
    assert_eq!(p["label"], "tracr_reverse");
    assert_eq!(p["kind"], "interpretation");
    assert_eq!(p["count"], 3);
    assert!(p["seed"].is_null(), "{p}");
    assert_eq!(p["dirs"][0], pool.display().to_string());
    assert_eq!(v["pools"][1]["label"], "reverse_by_sorting");
    assert!(v["pools"][1]["seed"].is_u64());
    assert_eq!(
        v["selectivity"]["labels"].as_array().unwrap().len(),
        2,
        "{}",
        v["selectivity"]
    );
    // The given members are patched where the circuit says, one choice for the pool.
    let iv = v["intervention"].as_array().unwrap();
    assert!(!iv.is_empty());
    for r in iv {
        assert_eq!(r["mapping"], "declared", "{r}");
        assert_eq!(r["patched_sites"].as_array().unwrap().len(), 3);
    }

    // The same models as a model pool have the same representations (same widths).
    let mut as_models = small(&file);
    as_models.extend(
        [
            "--interpretations",
            "reverse_by_sorting",
            "--models",
            pool.to_str().unwrap(),
            "--json",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = as_models.iter().map(String::as_str).collect();
    let m = json_of(&refs);
    assert_eq!(m["pools"][1]["features"], p["features"]);

    let f = file.to_str().unwrap();
    let base = [
        f,
        "--samples",
        "3",
        "--seed",
        "1",
        "--inputs",
        "20",
        "--quiet",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let fails = |a: Vec<String>, needle: &str| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        fails_with(&refs, needle)
    };
    fails(
        with(&["--interpretations", "reverse_by_sorting", "--pool", &given]),
        "a pool is given for `tracr_reverse`, which is not compared",
    );
    fails(with(&["--pool", "tracr_reverse"]), "is not NAME=DIR");
    fails(
        with(&[
            "--pool",
            &format!("tracr_reverse={}", tmp.path().join("none").display()),
        ]),
        "no such directory",
    );
    // A trained member that was not accepted is no implementation.
    let sidecar = pool.join("0001").join("congruity.json");
    let mut sc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sidecar).unwrap()).unwrap();
    sc["provenance"]["training"] = serde_json::json!({"accepted": false, "accuracy": 0.5, "iia": 0.4, "min_accuracy": 0.99, "min_iia": 0.95});
    std::fs::write(&sidecar, serde_json::to_vec(&sc).unwrap()).unwrap();
    fails(
        with(&[
            "--interpretations",
            "tracr_reverse,reverse_by_sorting",
            "--pool",
            &given,
        ]),
        "was trained but not",
    );
}

/// `--variable V`: only the sites of one variable of the circuit are patched (the paper's
/// intervened implementations), and the report says which.
#[test]
fn one_variable_of_a_circuit_is_patched_alone() {
    let file = spec("circuits/tracr_reverse.interp");
    let mut args = small(&file);
    args.extend(
        [
            "--interpretations",
            "tracr_reverse,reverse_by_sorting",
            "--circuit",
            "tracr_reverse_compiled",
            "--variable",
            "output",
            "--json",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = json_of(&refs);
    let iv = v["intervention"].as_array().unwrap();
    assert!(!iv.is_empty());
    for r in iv {
        assert_eq!(r["variable"], "output");
        for sites in r["patched_sites"].as_array().unwrap() {
            // The output head only (wherever placement moved it).
            let sites = sites.as_array().unwrap();
            assert_eq!(sites.len(), 1, "{r}");
            assert!(sites[0].as_str().unwrap().contains("attn.hook_z"), "{r}");
        }
    }
    let f = file.to_str().unwrap();
    fails_with(
        &[
            f,
            "--samples",
            "3",
            "--seed",
            "1",
            "--inputs",
            "20",
            "--quiet",
            "--circuit",
            "tracr_reverse_compiled",
            "--variable",
            "nope",
        ],
        "has no variable `nope`",
    );
}
