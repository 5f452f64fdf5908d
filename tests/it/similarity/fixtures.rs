//! Every value in `tests/fixtures/similarity/*/expected.json` (numpy / scikit-learn reference)
//! reproduced to 1e-8, through the library and through the `congruity similarity` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use congruity::similarity::io::read_pair;
use congruity::similarity::{Measure, MeasureValue, RidgeR2};
use serde_json::Value;

const TOL: f64 = 1e-8;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/similarity");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no fixture cases under {}",
        root.display()
    );
    dirs
}

fn expected(case: &Path) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(case.join("expected.json")).expect("expected.json");
    match serde_json::from_str(&text).expect("valid JSON") {
        Value::Object(m) => m,
        other => panic!(
            "{}: expected.json is not an object: {other}",
            case.display()
        ),
    }
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

fn close(case: &Path, key: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOL,
        "{}: {key}: got {got:.17}, expected {want:.17} (diff {:e})",
        case.display(),
        (got - want).abs()
    );
}

/// The ridge measure a fixture entry describes (its alphas when stated, the defaults otherwise).
fn ridge_for(exp: &serde_json::Map<String, Value>) -> RidgeR2 {
    let alphas = exp
        .get("ridge-r2(x->y)")
        .and_then(|v| v.get("alphas"))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| num(v, "alpha")).collect())
        .unwrap_or_else(|| vec![0.1, 1.0, 10.0]);
    RidgeR2::new(alphas, 0.1, 0).expect("fixture alphas are valid")
}

/// Checks one computed report (library or CLI) against the fixture; returns how many numbers
/// were compared.
fn check_against(case: &Path, exp: &serde_json::Map<String, Value>, got: &Value) -> usize {
    let mut compared = 0;
    for (key, want) in exp {
        let have = got
            .get(key)
            .unwrap_or_else(|| panic!("{}: no value for `{key}`", case.display()));
        match key.as_str() {
            "n" | "dx" | "dy" => assert_eq!(have, want, "{}: {key}", case.display()),
            k if k.starts_with("ridge-r2(") => {
                let want = want.as_object().expect("ridge entry is an object");
                for field in ["chosen_alpha", "r2_test_uniform_average", "sqrt_r2_clamped"] {
                    let w = num(&want[field], field);
                    let h = num(&have[field], field);
                    if field == "chosen_alpha" {
                        assert_eq!(h, w, "{}: {key}: chosen alpha", case.display());
                    } else {
                        close(case, &format!("{key}.{field}"), h, w);
                    }
                    compared += 1;
                }
            }
            k => {
                k.parse::<Measure>().unwrap_or_else(|e| {
                    panic!(
                        "{}: fixture key `{k}` is not a known measure: {e}",
                        case.display()
                    )
                });
                close(case, k, num(have, k), num(want, k));
                compared += 1;
            }
        }
    }
    compared
}

/// The library's answer for every key of the fixture, as a JSON object shaped like it.
fn library_report(case: &Path, exp: &serde_json::Map<String, Value>) -> Value {
    let input = read_pair(&case.join("inputs.safetensors")).expect("fixture loads");
    let split = input
        .split
        .as_ref()
        .expect("fixtures carry train_idx/test_idx");
    let mut out = serde_json::Map::new();
    out.insert("n".into(), input.x.nrows().into());
    out.insert("dx".into(), input.x.ncols().into());
    out.insert("dy".into(), input.y.ncols().into());
    for key in exp.keys() {
        if key.starts_with("ridge-r2(") {
            let ridge = ridge_for(exp);
            let (a, b) = if key == "ridge-r2(x->y)" {
                (&input.x, &input.y)
            } else {
                (&input.y, &input.x)
            };
            let r = ridge
                .evaluate_with_split(a.as_ref(), b.as_ref(), split)
                .expect("ridge runs");
            out.insert(key.clone(), serde_json::to_value(&r).expect("serialises"));
        } else if let Ok(m) = key.parse::<Measure>() {
            let v = match m
                .compute(input.x.as_ref(), input.y.as_ref())
                .expect("measure runs")
                .value
            {
                MeasureValue::Scalar(v) => v,
                MeasureValue::Ridge(r) => r.sqrt_r2_clamped,
            };
            out.insert(key.clone(), v.into());
        }
    }
    Value::Object(out)
}

#[test]
fn library_reproduces_every_fixture_value() {
    let mut compared = 0;
    for case in cases() {
        let exp = expected(&case);
        compared += check_against(&case, &exp, &library_report(&case, &exp));
    }
    assert!(compared >= 2 * 12, "only {compared} values compared");
}

#[test]
fn cli_json_reproduces_every_fixture_value() {
    let mut compared = 0;
    for case in cases() {
        let exp = expected(&case);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_congruity"));
        cmd.arg("similarity")
            .arg(case.join("inputs.safetensors"))
            .arg("--json");
        // Ask for exactly the fixture's measures, named as the fixture names them.
        for key in exp.keys() {
            if key.parse::<Measure>().is_ok() {
                cmd.args(["--measure", key]);
            }
        }
        let ridge = Measure::RidgeR2(ridge_for(&exp)).to_string();
        cmd.args(["--measure", &ridge]);
        let out = cmd.output().expect("binary runs");
        assert!(
            out.status.success(),
            "{}: exit {:?}\n{}",
            case.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
        compared += check_against(&case, &exp, &got);
        // Nothing beyond what was asked: the fixture's keys plus ridge's extra fields, and the
        // degenerate-column screening, which finds nothing in these fixtures.
        let screening = &got["degenerate_columns"];
        assert_eq!(screening["x"], serde_json::json!([]), "{}", case.display());
        assert_eq!(screening["y"], serde_json::json!([]), "{}", case.display());
        let extra: Vec<&String> = got
            .as_object()
            .expect("object")
            .keys()
            .filter(|k| !exp.contains_key(*k) && *k != "degenerate_columns")
            .collect();
        assert!(
            extra.is_empty(),
            "{}: unexpected keys {extra:?}",
            case.display()
        );
    }
    assert!(compared >= 2 * 12, "only {compared} values compared");
}

#[test]
fn cli_default_measures_cover_the_fixture_keys() {
    for case in cases() {
        let exp = expected(&case);
        let out = Command::new(env!("CARGO_BIN_EXE_congruity"))
            .arg("similarity")
            .arg(case.join("inputs.safetensors"))
            .arg("--json")
            .output()
            .expect("binary runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
        check_against(&case, &exp, &got);
    }
}
