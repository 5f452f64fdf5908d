//! Our hypotheses under `cargo test`: every check and proof of `specs/` must hold, and the report
//! of the model check is a snapshot, so a change of the science shows up in review.

use std::path::PathBuf;

use congruity::Spec;
use congruity::harness::{TestOptions, run_check, test};

/// Compiled models are cached in cargo's scratch directory for tests.
fn options() -> TestOptions {
    TestOptions {
        cache_dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("congruity"),
        ..TestOptions::default()
    }
}

#[test]
fn every_hypothesis_holds() {
    let report = test(&["specs"], &options()).expect("the specs and their models are valid");
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
    assert_eq!(report.summary.checks, 1);
    assert_eq!(report.summary.proofs, 1);
}

#[test]
fn the_model_check_is_a_snapshot() {
    let spec = Spec::load("specs/majority.interp").expect("the spec checks");
    let report = run_check(&spec, "compiled_model", &options()).expect("the check runs");
    assert!(report.passed(), "{}", report.snapshot());
    insta::assert_snapshot!(report.snapshot());
}
