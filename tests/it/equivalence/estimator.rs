//! The point test, selectivity matrix, intervention test and transfer matrix on synthetic pools
//! whose structure is known: an interpretation is a latent representation of the inputs and its
//! implementations are random linear maps of it plus noise (see `equivalence::synthetic`).

use congruity::equivalence::synthetic::{SyntheticFamily, gaussian_latent};
use congruity::equivalence::{
    ImplementationSource, InputsId, InterventionConfig, PointTestConfig, Representation,
    RepresentationSet, SelectivityConfig, TransferConfig, Verdict, intervention_test, pipeline,
    point_test, selectivity_matrix, transfer_matrix,
};
use congruity::similarity::Measure;

const N: usize = 120;

fn inputs() -> InputsId {
    InputsId("synthetic-120".into())
}

fn latent(seed: u64, m: usize) -> Representation {
    gaussian_latent(&inputs(), N, m, seed)
}

fn family(label: &str, latent: Representation, seed: u64) -> SyntheticFamily {
    SyntheticFamily::new(label, latent, 12, 0.3, 6, seed)
}

#[test]
fn different_interpretations_are_distinguishable_and_the_same_is_not() {
    let f = latent(1, 4);
    let g = latent(2, 4);
    let g1 = family("f", f.clone(), 10);
    let g1_again = family("f-resampled", f, 11);
    let g2 = family("g", g, 12);
    let cfg = PointTestConfig {
        progress: Default::default(),
        draws: 60,
        seed: 5,
        ..PointTestConfig::default()
    };
    let apart = point_test(&g1, &g2, &cfg).unwrap();
    assert_eq!(
        apart.summary.verdict,
        Verdict::Distinguishable,
        "{:?}",
        apart.summary
    );
    assert!(apart.summary.win_rate > 0.9);
    assert!(apart.summary.clopper_pearson.lower > 0.5);
    assert_eq!(apart.records.len(), 60);
    for r in &apart.records {
        assert_ne!(r.a, r.b);
    }

    let same = point_test(&g1, &g1_again, &cfg).unwrap();
    assert_eq!(
        same.summary.verdict,
        Verdict::NotDistinguished,
        "{:?}",
        same.summary
    );
    assert!(same.summary.clopper_pearson.lower < 0.5);
    assert!(same.summary.win_rate > 0.2 && same.summary.win_rate < 0.8);
}

#[test]
fn selectivity_matrix_reflects_shared_subroutines() {
    let f = latent(1, 4);
    let g = latent(2, 4);
    let h = latent(3, 4);
    let fg = pipeline(&[f.clone(), g.clone()]).unwrap();
    let pools = [
        family("f", f, 20),
        family("g", g, 21),
        family("f|>g", fg, 22),
        family("h", h, 23),
    ];
    let sources: Vec<&dyn ImplementationSource> = pools.iter().map(|p| p as _).collect();
    let cfg = SelectivityConfig {
        point: PointTestConfig {
            progress: Default::default(),
            draws: 30,
            seed: 8,
            ..PointTestConfig::default()
        },
        replicates: 3,
    };
    let m = selectivity_matrix(&sources, &cfg).unwrap();
    assert_eq!(m.labels, ["f", "g", "f|>g", "h"]);
    for i in 0..4 {
        let diag = &m.cells[i][i];
        assert_eq!(
            diag.pooled.verdict,
            Verdict::NotDistinguished,
            "diagonal {i}: {diag:?}"
        );
        assert_eq!(diag.replicates.len(), 3);
        assert_eq!(diag.pooled.draws, 90);
        assert!(diag.win_rate.sd >= 0.0);
    }
    // Unrelated interpretations are told apart both ways.
    for (i, j) in [(0, 1), (1, 0), (0, 3), (3, 0), (1, 3), (2, 3)] {
        assert_eq!(
            m.cells[i][j].pooled.verdict,
            Verdict::Distinguishable,
            "({i},{j})"
        );
    }
    // The pipeline f|>g shares f with f (and g with g): its implementations are harder to tell
    // from f's or g's than from the unrelated h's.
    assert!(m.cells[2][0].win_rate.mean < m.cells[2][3].win_rate.mean);
    assert!(m.cells[2][1].win_rate.mean < m.cells[2][3].win_rate.mean);
    let text = m.to_text();
    println!("{text}");
    assert!(text.contains("f|>g") && text.contains('*'), "{text}");
}

#[test]
fn intervention_test_detects_reliance_on_the_patched_mechanism() {
    let f = latent(1, 4);
    let g = latent(2, 4);
    let f_corrupted = latent(9, 4);
    let clean = family("fg", pipeline(&[f.clone(), g.clone()]).unwrap(), 30);
    // Same seed, same maps and noise: the same implementations with f patched from corrupted inputs.
    let patched = family("fg patched f", pipeline(&[f_corrupted, g]).unwrap(), 30);
    let uses_f = family("f", f, 31);
    let unrelated = family("h", latent(3, 4), 32);
    let cfg = InterventionConfig {
        progress: Default::default(),
        draws: 40,
        seed: 3,
        ..InterventionConfig::default()
    };
    let relies = intervention_test(&clean, &patched, &uses_f, &cfg).unwrap();
    assert!(relies.win_rate > 0.9, "{relies:?}");
    assert!(relies.significant);
    assert!(relies.test.p_exact < 1e-6 && relies.test.p_z < 1e-6);

    let indifferent = intervention_test(&clean, &patched, &unrelated, &cfg).unwrap();
    assert!(!indifferent.significant, "{indifferent:?}");
    assert_eq!(
        indifferent.wins
            + indifferent.ties
            + indifferent
                .records
                .iter()
                .filter(|r| r.outcome == congruity::equivalence::Outcome::Loss)
                .count(),
        40
    );

    // Mismatched clean / patched pools are refused.
    let short = SyntheticFamily::new("short", latent(4, 4), 12, 0.3, 5, 1);
    assert!(intervention_test(&clean, &short, &uses_f, &cfg).is_err());
}

#[test]
fn transfer_matrix_enumerates_small_cells_and_samples_large_ones() {
    let f = latent(1, 4);
    let pools = [
        family("A", f.clone(), 40),
        family("B", f, 41),
        family("C", latent(5, 4), 42),
    ];
    let sources: Vec<&dyn ImplementationSource> = pools.iter().map(|p| p as _).collect();
    let cfg = TransferConfig {
        progress: Default::default(),
        max_pairs: 30,
        seed: 2,
        bootstrap: 200,
        ..TransferConfig::default()
    };
    let t = transfer_matrix(&sources, &cfg).unwrap();
    // 6 × 5 = 30 ordered pairs within a pool: enumerated; 36 across pools: sampled.
    assert!(t.cells[0][0].exhaustive && t.cells[0][0].pairs == 30);
    assert!(!t.cells[0][1].exhaustive && t.cells[0][1].pairs == 30);
    let same = t.cells[0][1].fit.unwrap().mean;
    let other = t.cells[0][2].fit.unwrap().mean;
    assert!(same > 0.8 && other < 0.3, "{same} {other}");
    let ci = t.cells[0][1].mean_interval.unwrap();
    assert!(ci.lower <= same && same <= ci.upper);
    assert!(t.to_text().contains("transfer"));

    // A single model per pool: its diagonal is undefined, not an error.
    let one = RepresentationSet::new("solo", vec![latent(6, 3)]);
    let t = transfer_matrix(&[&one, &pools[2]], &cfg).unwrap();
    assert_eq!(t.cells[0][0].pairs, 0);
    assert!(t.cells[0][0].fit.is_none());
    assert_eq!(t.cells[0][1].pairs, 6);
}

#[test]
fn any_measure_can_be_the_fit_and_distances_are_oriented() {
    let f = latent(1, 4);
    let g = latent(2, 4);
    let g1 = family("f", f, 50);
    let g2 = family("g", g, 51);
    for name in ["cka:linear", "procrustes:angular", "cca:mean"] {
        let cfg = PointTestConfig {
            progress: Default::default(),
            measure: name.parse::<Measure>().unwrap(),
            draws: 30,
            seed: 1,
            ..PointTestConfig::default()
        };
        let r = point_test(&g1, &g2, &cfg).unwrap();
        assert_eq!(
            r.summary.verdict,
            Verdict::Distinguishable,
            "{name}: {:?}",
            r.summary
        );
        assert_eq!(r.measure, name);
    }
}

#[test]
fn bad_pools_are_clear_errors() {
    let two = SyntheticFamily::new("two", latent(1, 4), 12, 0.3, 2, 1);
    let e = point_test(&two, &two, &PointTestConfig::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("needed to draw a, b, c all distinct"),
        "{e}"
    );
    let other_inputs = RepresentationSet::new(
        "elsewhere",
        vec![gaussian_latent(&InputsId("other".into()), N, 4, 1)],
    );
    let e = point_test(&two, &other_inputs, &PointTestConfig::default()).unwrap_err();
    assert!(e.to_string().contains("not on the same inputs"), "{e}");
    let cfg = PointTestConfig {
        progress: Default::default(),
        draws: 0,
        ..PointTestConfig::default()
    };
    assert!(point_test(&two, &other_inputs, &cfg).is_err());
}
