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
