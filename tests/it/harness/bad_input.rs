//! Bad input is an error with exit 2, its file, line and column, and no report written.

use std::path::Path;

use super::{root, stderr, stdout, test};

fn reverse_import() -> String {
    format!(
        "import \"{}\"\n",
        root().join("specs/tracr/reverse.interp").display()
    )
}

/// A diagnostic as one line: miette's frame drawn out and its wrapping undone.
fn flat(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if "│╭╰─·┬┴×".contains(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs `congruity test` on a spec with `body`, asking for JSON and JUnit reports; asserts exit 2,
/// no report, and that stderr says each of `says`.
fn refused(body: &str, extra: &[&str], says: &[&str]) -> String {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.interp");
    std::fs::write(&spec, body).unwrap();
    let report = dir.path().join("r.json");
    let junit = dir.path().join("r.xml");
    let mut args = vec![
        spec.to_str().unwrap().to_string(),
        "--report".into(),
        report.to_str().unwrap().into(),
        "--junit".into(),
        junit.to_str().unwrap().into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = test(&refs, cache.path());
    let err = flat(&stderr(&out));
    assert_eq!(out.status.code(), Some(2), "{err}{}", stdout(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(!report.exists() && !junit.exists(), "no partial report");
    for s in says {
        assert!(err.contains(s), "`{s}` missing from\n{err}");
    }
    err
}

#[test]
fn a_missing_model_directory_is_named_at_its_line() {
    let err = refused(
        &format!(
            "{}check c {{\n  model \"no/such/model\"\n  expect implements(tracr_reverse)\n}}\n",
            reverse_import()
        ),
        &[],
        &[
            "the model directory",
            "no/such/model",
            "does not exist",
            "bad.interp:3:3",
        ],
    );
    assert!(err.contains("nothing was run"), "{err}");
}

#[test]
fn a_spec_with_errors_prints_its_diagnostics_as_check_does() {
    refused(
        &format!(
            "{}check c {{\n  model compiled(tracr_reverse)\n  expect implements(tracr_reverse\n}}\n",
            reverse_import()
        ),
        &[],
        &["bad.interp:4:", "expected", "`)`"],
    );
    refused(
        &format!(
            "{}check c {{\n  model compiled(tracr_reverse)\n  expect implements(tracr_revers)\n}}\n",
            reverse_import()
        ),
        &[],
        &["unknown interpretation `tracr_revers`", "tracr_reverse"],
    );
}

#[test]
fn a_hook_the_model_lacks_is_named_with_the_models_shape() {
    refused(
        &format!(
            "{}circuit deep for tracr_reverse {{\n  output -> blocks.5.attn.hook_z[0]\n}}\ncheck c {{\n  model compiled(tracr_reverse)\n  expect iia(deep) >= 0.9\n}}\n",
            reverse_import()
        ),
        &[],
        &[
            "circuit `deep` does not fit the model",
            "blocks.5",
            "2 layers",
            "bad.interp:7:3",
        ],
    );
}

#[test]
fn an_expectation_naming_an_unknown_circuit_is_an_error() {
    refused(
        &format!(
            "{}check c {{\n  model compiled(tracr_reverse)\n  expect iia(nowhere) >= 0.9\n}}\n",
            reverse_import()
        ),
        &[],
        &["unknown circuit `nowhere`", "bad.interp:4:14"],
    );
}

#[test]
fn an_unknown_measure_is_an_error_at_its_expectation() {
    refused(
        &format!(
            "{}check c {{\n  model compiled(tracr_reverse)\n  expect similarity(cka:quadratic, tracr_reverse) >= 0.9\n}}\n",
            reverse_import()
        ),
        &[],
        &["cka:quadratic", "bad.interp:4:3"],
    );
}

#[test]
fn an_unwritable_or_input_report_path_is_refused_before_anything_runs() {
    let cache = tempfile::tempdir().unwrap();
    let spec = root().join("specs/circuits/tracr_hist.interp");
    let spec = spec.to_str().unwrap();
    // A directory that cannot be made: its parent is a regular file.
    let blocked = tempfile::NamedTempFile::new().unwrap();
    let under_a_file = blocked.path().join("sub/r.json");
    let out = test(
        &[spec, "--report", under_a_file.to_str().unwrap()],
        cache.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        flat(&stderr(&out)).contains("cannot be made"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
    // The spec itself: an input is never overwritten.
    let before = std::fs::read(spec).unwrap();
    let out = test(&[spec, "--junit", spec], cache.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(flat(&stderr(&out)).contains("input"), "{}", stderr(&out));
    assert_eq!(std::fs::read(spec).unwrap(), before);
    // A directory where the file should go.
    let dir = tempfile::tempdir().unwrap();
    let out = test(
        &[spec, "--report", dir.path().to_str().unwrap()],
        cache.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        flat(&stderr(&out)).contains("directory"),
        "{}",
        stderr(&out)
    );
    // Nothing was compiled: the run stopped before it started.
    assert!(!Path::new(&cache.path().join("compiled")).exists());
}

#[test]
fn a_filter_that_matches_nothing_is_an_error_not_an_empty_pass() {
    let cache = tempfile::tempdir().unwrap();
    let out = test(
        &["specs/circuits", "--filter", "no_such_check"],
        cache.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        flat(&stderr(&out)).contains("matches --filter `no_such_check`"),
        "{}",
        stderr(&out)
    );
    // A glob selects by name too.
    let out = test(
        &["specs/circuits", "--filter", "tracr_hist_*", "--quiet"],
        cache.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("(2 expectations in 1 check and 0 proofs)"),
        "{}",
        stdout(&out)
    );
}
