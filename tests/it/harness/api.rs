//! The harness as a library, as a research repository's `cargo test` uses it.

use congruity::Spec;
use congruity::harness::{HarnessError, Status, TestOptions, UnitKind, run_check, test};

use super::root;

fn opts(cache: &std::path::Path) -> TestOptions {
    TestOptions {
        cache_dir: cache.to_path_buf(),
        ..TestOptions::default()
    }
}

#[test]
fn run_check_gives_typed_verdicts_and_a_stable_snapshot() {
    let cache = tempfile::tempdir().unwrap();
    let spec = Spec::load(root().join("specs/circuits/tracr_reverse.interp")).unwrap();
    let names: Vec<&str> = spec.checks.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "reverse_by_length_vs_sorting",
            "tracr_model_layout",
            "tracr_reverse_model"
        ]
    );
    let report = run_check(&spec, "tracr_reverse_model", &opts(cache.path())).unwrap();
    assert!(report.passed(), "{}", report.snapshot());
    assert_eq!(report.kind, UnitKind::Check);
    assert_eq!(report.seed, Some(7));
    let iia = report
        .expectations
        .iter()
        .find(|e| e.expectation.starts_with("iia("))
        .unwrap();
    assert_eq!(iia.status, Status::Pass);
    let fig = iia.figure.as_ref().unwrap();
    assert_eq!(fig.name, "iia");
    assert!(fig.value >= 0.95);
    let [lo, hi] = fig.interval.unwrap();
    assert!(lo <= fig.value && fig.value <= hi);
    assert_eq!(
        report.model.as_ref().unwrap().name,
        "compiled(tracr_reverse)"
    );
    // The snapshot keeps verdicts and rounded figures, not paths or hashes.
    let snap = report.snapshot();
    assert!(!snap.contains(&cache.path().display().to_string()));
    insta::assert_snapshot!("api_tracr_reverse_model", snap);
    // Rounded to the stated digits.
    assert!(
        report.snapshot_with(1).contains("iia = 1.0 ["),
        "{}",
        report.snapshot_with(1)
    );
}

#[test]
fn run_check_refuses_an_unknown_check_and_test_runs_a_directory() {
    let cache = tempfile::tempdir().unwrap();
    let spec = Spec::load(root().join("specs/circuits/tracr_hist.interp")).unwrap();
    let err = run_check(&spec, "nope", &opts(cache.path())).unwrap_err();
    assert!(matches!(err, HarnessError::UnknownCheck { .. }));
    assert!(err.to_string().contains("compiled_hist_model"), "{err}");

    let suite = test(
        &[root().join("specs/circuits/tracr_hist.interp")],
        &opts(cache.path()),
    )
    .unwrap();
    assert_eq!(suite.exit_code(), 0, "{}", suite.to_text());
    assert_eq!(suite.summary.checks, 2);
    assert_eq!(suite.summary.failed, 0);
}
