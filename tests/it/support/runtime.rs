//! Helpers shared by the runtime integration tests (and, through `compile_support`, the compiler's):
//! fixture discovery, JSON files, the built binary, tensor comparison.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::Tensor;

/// The device the model-parity tests run on: the CPU, or CUDA device 0 when
/// `CONGRUITY_TEST_CUDA` is set (a build with `--features cuda`; `scripts/device-check`).
/// Expected values are always read on the CPU; comparisons copy results back.
pub fn test_device() -> candle_core::Device {
    if std::env::var_os("CONGRUITY_TEST_CUDA").is_some() {
        congruity::model::device(true).expect("CONGRUITY_TEST_CUDA is set: CUDA device 0")
    } else {
        candle_core::Device::Cpu
    }
}

/// The vendored third-party reference data (`tests/fixtures/`, see its README). A missing
/// directory fails loudly instead of letting a test pass over nothing.
pub fn fixtures() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    assert!(
        root.join("README.md").is_file(),
        "the vendored fixtures are missing: expected {} (see tests/fixtures/README.md in the repository)",
        root.display()
    );
    root
}

/// Every case directory under `fixtures/<family>/`, sorted, so new cases are picked up.
pub fn case_dirs(family: &str) -> Vec<PathBuf> {
    let root = fixtures().join(family);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no fixture cases under {}",
        root.display()
    );
    dirs
}

/// A fixture case's name: its directory's.
pub fn case_name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON array's elements, each converted by `f`.
pub fn array_of<T>(v: &serde_json::Value, f: impl FnMut(&serde_json::Value) -> T) -> Vec<T> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not an array"))
        .iter()
        .map(f)
        .collect()
}

/// A JSON array of token ids.
pub fn token_ids(v: &serde_json::Value) -> Vec<u32> {
    array_of(v, |x| x.as_u64().unwrap() as u32)
}

/// A JSON array of input symbols (an io.json `input`).
pub fn input_symbols(v: &serde_json::Value) -> Vec<String> {
    array_of(v, |x| x.as_str().unwrap().to_string())
}

/// `tokens.json`'s rows under `key`.
pub fn read_token_rows(path: &Path, key: &str) -> Vec<Vec<u32>> {
    read_json(path)[key]
        .as_array()
        .unwrap_or_else(|| panic!("{} has no `{key}`", path.display()))
        .iter()
        .map(token_ids)
        .collect()
}

/// Runs the built `congruity` binary in the crate root (so spec paths may be relative).
pub fn congruity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_congruity"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the congruity binary runs")
}

/// Runs the binary, expecting success; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = congruity(args);
    assert!(
        out.status.success(),
        "congruity {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the binary, expecting a clean failure (exit code 1, a message, no panic).
pub fn cli_fails(args: &[&str]) -> String {
    let out = congruity(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "congruity {args:?}: expected exit 1, stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "congruity {args:?} panicked:\n{stderr}"
    );
    // miette wraps long lines; compare on the text with the box drawing removed.
    stderr
        .replace(['│', '×'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `congruity run --model DIR --tokens TOKENS --cache OUT --hooks '*'`, expecting success.
pub fn run_cache_all(dir: &Path, tokens: &Path, out: &Path) {
    ok(&[
        "run",
        "--model",
        arg(dir),
        "--tokens",
        arg(tokens),
        "--cache",
        arg(out),
        "--hooks",
        "*",
    ]);
}

/// A path as a command-line argument.
pub fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Largest errors found when comparing two tensors.
#[derive(Clone, Copy, Debug, Default)]
pub struct Diff {
    pub max_abs: f64,
    /// max |a-b| / |b| over elements with |b| > 1e-3 (where relative error is meaningful).
    pub max_rel: f64,
    pub n: usize,
}

/// Compares `got` against `want` elementwise: `|got - want| <= 1e-5 + 1e-4 |want|` (relative
/// error 1e-4, absolute 1e-5 near zero); matching infinities are equal. Panics with the first
/// offending index otherwise.
pub fn assert_close(what: &str, got: &Tensor, want: &Tensor) -> Diff {
    assert_eq!(got.dims(), want.dims(), "{what}: shape mismatch");
    let g: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
    let w: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
    let mut d = Diff {
        n: g.len(),
        ..Diff::default()
    };
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        if b.is_infinite() || a.is_infinite() {
            assert_eq!(a, b, "{what}[{i}]: {a} vs expected {b}");
            continue;
        }
        assert!(a.is_finite(), "{what}[{i}] is {a}");
        let err = (a as f64 - b as f64).abs();
        assert!(
            err <= 1e-5 + 1e-4 * (b as f64).abs(),
            "{what}[{i}]: {a} vs expected {b} (abs err {err:e})"
        );
        d.max_abs = d.max_abs.max(err);
        if (b as f64).abs() > 1e-3 {
            d.max_rel = d.max_rel.max(err / (b as f64).abs());
        }
    }
    d
}
