//! Same seed → same bytes, whatever the rayon thread count; another seed → other draws.

use congruity::equivalence::synthetic::{SyntheticFamily, gaussian_latent};
use congruity::equivalence::{
    ImplementationSource, InputsId, InterventionConfig, PointTestConfig, SelectivityConfig,
    TransferConfig, intervention_test, pipeline, point_test, selectivity_matrix, transfer_matrix,
};

fn pools() -> Vec<SyntheticFamily> {
    let ids = InputsId("det-80".into());
    let f = gaussian_latent(&ids, 80, 3, 1);
    let g = gaussian_latent(&ids, 80, 3, 2);
    let fg = pipeline(&[f.clone(), g.clone()]).unwrap();
    vec![
        SyntheticFamily::new("f", f, 10, 0.5, 5, 11),
        SyntheticFamily::new("g", g.clone(), 10, 0.5, 5, 12),
        SyntheticFamily::new("fg", fg, 10, 0.5, 5, 13),
        SyntheticFamily::new(
            "fg-patched",
            pipeline(&[gaussian_latent(&ids, 80, 3, 9), g]).unwrap(),
            10,
            0.5,
            5,
            13,
        ),
    ]
}

/// Every estimator's full JSON output for one seed.
fn everything(seed: u64) -> String {
    let p = pools();
    let sources: Vec<&dyn ImplementationSource> = p[..3].iter().map(|s| s as _).collect();
    let point = PointTestConfig {
        progress: Default::default(),
        draws: 25,
        seed,
        ..PointTestConfig::default()
    };
    let sel = selectivity_matrix(
        &sources,
        &SelectivityConfig {
            point: point.clone(),
            replicates: 3,
        },
    )
    .unwrap();
    let pt = point_test(&p[0], &p[2], &point).unwrap();
    let iv = intervention_test(
        &p[2],
        &p[3],
        &p[0],
        &InterventionConfig {
            progress: Default::default(),
            draws: 25,
            seed,
            ..InterventionConfig::default()
        },
    )
    .unwrap();
    let tr = transfer_matrix(
        &sources,
        &TransferConfig {
            progress: Default::default(),
            max_pairs: 12,
            seed,
            bootstrap: 100,
            ..TransferConfig::default()
        },
    )
    .unwrap();
    serde_json::to_string(&(sel, pt, iv, tr)).unwrap()
}

fn in_pool(threads: usize, seed: u64) -> String {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| everything(seed))
}

#[test]
fn identical_for_one_and_four_threads() {
    let one = in_pool(1, 7);
    let four = in_pool(4, 7);
    assert_eq!(one, four);
    assert!(one.contains("\"win_rate\""));
}

#[test]
fn seed_changes_the_draws_and_repeats_reproduce_them() {
    assert_eq!(in_pool(2, 7), in_pool(2, 7));
    assert_ne!(in_pool(2, 7), in_pool(2, 8));
}
