//! `specs/tracr/{reverse,hist}.interp` reproduce tracr's own RASP evaluation on every case of the
//! fixtures made by tracr (`tests/fixtures/tracr/*/io.json`), through the library and through
//! `congruity eval`.

use std::path::{Path, PathBuf};
use std::process::Command;

use congruity::lang::eval::{eval_output, value_json};
use congruity::lang::ir::Value;
use num_rational::Rational64;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Case {
    input: Vec<String>,
    rasp: serde_json::Value,
}

fn cases(name: &str) -> Vec<Case> {
    let path = root()
        .join("tests/fixtures/tracr")
        .join(name)
        .join("io.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("io.json is JSON");
    let cases = json["cases"]
        .as_array()
        .expect("io.json has a `cases` array");
    cases
        .iter()
        .map(|c| Case {
            input: c["input"]
                .as_array()
                .expect("input array")
                .iter()
                .map(|t| t.as_str().expect("string token").to_string())
                .collect(),
            rasp: c["rasp"].clone(),
        })
        .collect()
}

/// tracr's JSON value as a language value: strings are symbols, integers numbers, null is none.
fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::None,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::String(s) => Value::sym(s),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::int(i),
            None => {
                let f = n.as_f64().expect("number");
                Value::Num(Rational64::approximate_float(f).expect("representable"))
            }
        },
        other => panic!("unexpected RASP value {other}"),
    }
}

fn check_fixture(name: &str, expected_cases: usize) {
    let spec_path = root().join("specs/tracr").join(format!("{name}.interp"));
    let spec = congruity::lang::load(&spec_path).unwrap_or_else(|r| panic!("{}", r.render_plain()));
    assert_eq!(spec.programs.len(), 1);
    let program = spec.programs.values().next().unwrap();
    let cases = cases(name);
    assert_eq!(cases.len(), expected_cases, "fixture case count");
    for case in &cases {
        let input: Vec<Value> = case.input.iter().map(|t| Value::sym(t)).collect();
        let got = eval_output(program, &input).unwrap_or_else(|e| panic!("{:?}: {e}", case.input));
        let want: Vec<Value> = case
            .rasp
            .as_array()
            .expect("rasp array")
            .iter()
            .map(to_value)
            .collect();
        assert_eq!(got, want, "input {:?}", case.input);
    }
}

#[test]
fn reverse_matches_every_rasp_output() {
    check_fixture("reverse", 120);
}

#[test]
fn hist_matches_every_rasp_output() {
    check_fixture("hist", 140);
}

fn cli_eval(spec: &Path, input: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_congruity"))
        .arg("eval")
        .arg(spec)
        .args(["--input", input, "--json"])
        .output()
        .expect("run congruity");
    assert!(
        out.status.success(),
        "congruity eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints JSON")
}

#[test]
fn congruity_eval_reproduces_every_case() {
    for name in ["reverse", "hist"] {
        let spec = root().join("specs/tracr").join(format!("{name}.interp"));
        for case in cases(name) {
            let got = cli_eval(&spec, &case.input.join(" "));
            assert_eq!(
                got,
                serde_json::json!({ "output": case.rasp }),
                "{name} {:?}",
                case.input
            );
            // The JSON printer and the library agree value by value.
            let want: Vec<serde_json::Value> = case
                .rasp
                .as_array()
                .unwrap()
                .iter()
                .map(|v| value_json(&to_value(v)))
                .collect();
            assert_eq!(got["output"], serde_json::Value::Array(want));
        }
    }
}
