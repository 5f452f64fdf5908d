//! Helpers shared by the runtime integration tests: fixture discovery and tensor comparison.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candle_core::Tensor;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
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

/// `tokens.json`'s rows under `key`.
pub fn read_token_rows(path: &Path, key: &str) -> Vec<Vec<u32>> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{} has no `{key}`", path.display()))
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
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
