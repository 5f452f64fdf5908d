//! Near-constant columns (`tests/fixtures/degenerate/`): left out of ridge targets and of CKA /
//! CCA, named in every report, and the fit is scikit-learn's on the informative columns.

use std::path::{Path, PathBuf};
use std::process::Command;

use congruity::similarity::io::read_pair;
use congruity::similarity::{Measure, RidgeR2};
use serde_json::Value;

const TOL: f64 = 1e-8;

fn case() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/degenerate/leaked_constants_200x12")
}

fn reference() -> Value {
    let text = std::fs::read_to_string(case().join("sklearn.json")).expect("sklearn.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn columns(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|c| c.as_u64().expect("index") as usize)
        .collect()
}

#[test]
fn ridge_cka_and_cca_fit_the_informative_columns_and_name_the_removed_ones() {
    let reference = reference();
    let removed = columns(&reference["removed_columns"]);
    assert_eq!(removed, (8..14).collect::<Vec<_>>());
    let informative = &reference["informative_columns"];
    let all = &reference["all_columns"];
    let input = read_pair(&case().join("inputs.safetensors")).expect("fixture loads");
    let split = input.split.as_ref().expect("the fixture carries its split");

    let ridge = RidgeR2::new(vec![0.1, 1.0, 10.0], 0.1, 0).unwrap();
    let r = ridge
        .evaluate_with_split(input.x.as_ref(), input.y.as_ref(), split)
        .unwrap();
    assert_eq!(r.degenerate_targets.removed, removed);
    assert_eq!(r.degenerate_targets.tolerance, 1e-8);
    let want = &informative["ridge-r2(x->y)"];
    assert_eq!(r.chosen_alpha, num(&want["chosen_alpha"]));
    for (got, field) in [
        (r.r2_test_uniform_average, "r2_test_uniform_average"),
        (r.sqrt_r2_clamped, "sqrt_r2_clamped"),
    ] {
        assert!(
            (got - num(&want[field])).abs() <= TOL,
            "{field}: {got} vs {}",
            want[field]
        );
        // ... and not scikit-learn's value on every column, which the constants swamp.
        assert!(
            (got - num(&all["ridge-r2(x->y)"][field])).abs() > 0.1,
            "{field}"
        );
    }

    for name in ["cka:linear", "cca:mean"] {
        let m: Measure = name.parse().unwrap();
        let score = m.compute(input.x.as_ref(), input.y.as_ref()).unwrap();
        assert!(score.x_removed.removed.is_empty(), "{name}");
        assert_eq!(score.y_removed.removed, removed, "{name}");
        let want = num(&informative[name]);
        assert!(
            (score.value() - want).abs() <= TOL,
            "{name}: {} vs {want}",
            score.value()
        );
    }
    // CCA on every column describes the noise: far from the informative value.
    assert!((num(&all["cca:mean"]) - num(&informative["cca:mean"])).abs() > 0.1);
}

#[test]
fn the_cli_report_names_the_removed_columns() {
    let run = |json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_congruity"));
        cmd.arg("similarity").arg(case().join("inputs.safetensors"));
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("binary runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let got: Value = serde_json::from_str(&run(true)).expect("JSON");
    let removed = reference()["removed_columns"].clone();
    assert_eq!(got["degenerate_columns"]["y"], removed);
    assert_eq!(got["degenerate_columns"]["x"], serde_json::json!([]));
    assert_eq!(got["degenerate_columns"]["tolerance"], 1e-8);
    assert_eq!(got["ridge-r2(x->y)"]["degenerate_targets"], removed);
    assert_eq!(
        got["ridge-r2(y->x)"]["degenerate_targets"],
        serde_json::json!([])
    );
    let text = run(false);
    assert!(
        text.contains("y: 6 degenerate column(s) left out of ridge targets, CKA and CCA (variance < 1e-8 × the largest): 8, 9, 10, 11, 12, 13"),
        "{text}"
    );
}

#[test]
fn a_representation_with_no_informative_column_is_an_error() {
    let x = congruity::similarity::io::read_pair(&case().join("inputs.safetensors"))
        .unwrap()
        .x;
    let flat = faer::Mat::from_fn(x.nrows(), 3, |_, c| c as f64 + 0.5);
    for name in ["ridge-r2", "cka:linear", "cca:mean"] {
        let m: Measure = name.parse().unwrap();
        let e = m.compute(x.as_ref(), flat.as_ref()).unwrap_err();
        assert!(e.to_string().contains("zero variance"), "{name}: {e}");
    }
}
