//! `compare --representations`: the estimator on representations made elsewhere. Its selectivity
//! matrix equals, draw for draw, a direct implementation of the reference estimator — each draw's
//! two fits computed afresh with the measure on the raw matrices, no fit shared or cached — and
//! the CLI reports the same.

use std::collections::HashMap;
use std::path::Path;

use congruity::equivalence::point::{Outcome, PointTestConfig, point_test};
use congruity::equivalence::source::{ImplementationSource, RepresentationSet, derive_seed};
use congruity::experiment::compare::{CompareSettings, compare_representations, read_pools};
use congruity::similarity::Measure;
use rand::{Rng, SeedableRng};

/// Three pools of four implementations: each pool a random rotation of its own latent features
/// plus small noise, so the pools differ in one latent column.
fn write_pools(path: &Path) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let (n, d) = (120, 9);
    let base: Vec<f64> = (0..n * 4).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut tensors: Vec<(String, Vec<u8>)> = Vec::new();
    for (p, pool) in ["alpha", "beta", "gamma"].iter().enumerate() {
        let own: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        for i in 0..4 {
            let mix: Vec<f64> = (0..5 * d).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut bytes = Vec::with_capacity(n * d * 8);
            for r in 0..n {
                let mut lat: Vec<f64> = base[r * 4..r * 4 + 4].to_vec();
                lat[p % 4] = own[r];
                lat.push(rng.random_range(-0.01..0.01));
                for c in 0..d {
                    let v: f64 = (0..5).map(|k| lat[k] * mix[k * d + c]).sum();
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
            }
            tensors.push((format!("{pool}/{i}"), bytes));
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(name, b)| {
            (
                name.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![n, d], b)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn the_main_loop_equals_the_reference_estimator_draw_for_draw() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reps.safetensors");
    write_pools(&file);
    let s = CompareSettings {
        seed: 9,
        bootstraps: 3,
        draws: 25,
        ..CompareSettings::default()
    };
    let report = compare_representations(&file, &s).unwrap();
    let sel = report.selectivity.as_ref().unwrap();
    assert_eq!(sel.labels, ["alpha", "beta", "gamma"]);

    let (pools, _) = read_pools(&file).unwrap();
    let sets: Vec<RepresentationSet> = pools
        .iter()
        .map(|(n, items)| RepresentationSet::new(n.clone(), items.clone()))
        .collect();
    let measure = Measure::default();
    // The reference: every fit computed directly, on the raw matrices of the draw.
    let mut direct = HashMap::new();
    let mut fit = |p: usize, a: usize, q: usize, b: usize| -> f64 {
        *direct.entry((p, a, q, b)).or_insert_with(|| {
            let x = sets[p].representation(a).unwrap();
            let y = sets[q].representation(b).unwrap();
            measure.compute(x.matrix(), y.matrix()).unwrap().value()
        })
    };
    for i in 0..3 {
        for j in 0..3 {
            let cell = &sel.cells[i][j];
            for r in 0..s.bootstraps {
                let cfg = PointTestConfig {
                    measure: measure.clone(),
                    draws: s.draws,
                    seed: derive_seed(report.seeds.selectivity, &[i as u64, j as u64, r as u64]),
                    ..PointTestConfig::default()
                };
                let point = point_test(&sets[i], &sets[j], &cfg).unwrap();
                let mut wins = 0;
                for d in &point.records {
                    let ab = fit(i, d.a, i, d.b);
                    let ac = fit(i, d.a, j, d.c);
                    assert!((ab - d.fit_ab).abs() < 1e-12 && (ac - d.fit_ac).abs() < 1e-12);
                    if ab > ac {
                        wins += 1;
                        assert_eq!(d.outcome, Outcome::Win);
                    }
                }
                assert_eq!(wins, cell.replicates[r].wins, "cell {i},{j} replicate {r}");
            }
        }
    }
    // Different pools are told apart; a pool against itself is not.
    assert!(sel.cells[0][1].pooled.significant);
    assert!(!sel.cells[0][0].pooled.significant);
}

#[test]
fn the_cli_reads_representations_and_refuses_malformed_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reps.safetensors");
    write_pools(&file);
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_congruity"))
            .arg("compare")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "--representations",
        file.to_str().unwrap(),
        "--seed",
        "9",
        "--bootstraps",
        "3",
        "--draws",
        "25",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lib = compare_representations(
        &file,
        &CompareSettings {
            seed: 9,
            bootstraps: 3,
            draws: 25,
            ..CompareSettings::default()
        },
    )
    .unwrap();
    assert_eq!(
        v["selectivity"]["cells"][0][1]["pooled"]["wins"],
        lib.selectivity.unwrap().cells[0][1].pooled.wins
    );
    assert_eq!(v["pools"][0]["kind"], "representations");
    // A tensor not named POOL/INDEX is refused by name.
    let bad = dir.path().join("bad.safetensors");
    let bytes = 0f64.to_le_bytes().repeat(4);
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![2, 2], &bytes).unwrap();
    std::fs::write(
        &bad,
        safetensors::serialize([("weights", view)], None).unwrap(),
    )
    .unwrap();
    let out = run(&["--representations", bad.to_str().unwrap(), "--seed", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("POOL/INDEX"));
}
