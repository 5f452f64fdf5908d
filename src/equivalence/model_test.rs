//! Point tests of a model (or a pool of models) against interpretations.
//!
//! - [`closer_test`]: `m` from the model pool M, `b` from G1's implementations, `c` from G2's; a
//!   win is `fit(m↔b) > fit(m↔c)`, where `fit(m↔b) = (fit(m→b) + fit(b→m)) / 2`. A lower bound
//!   above 1/2 (and a mean gap above ε) says M and G1's implementations predict each other better
//!   than M and G2's: M is *distinguishable from G2*, on G1's side. Both directions, because one
//!   alone is blind to one kind of rival: a model whose representation holds more than G2's
//!   predicts G2's implementations perfectly (`fit(m→c) = 1`), and a model that holds less is
//!   predicted perfectly by them.
//! - [`membership_test`]: `a ≠ b` from G1, `m` from M; a win is `fit(a→b) > fit(m→b)`: G1's own
//!   implementations predict each other better than M predicts them. A lower bound above 1/2 says
//!   M is *not* one of G1's implementations; a win rate near 1/2 is what a member gives (not
//!   significant is not a proof of membership).
//!
//! A model is called congruent with G1 against the alternatives G2, ... when every closer test
//! (G1 vs G2) is distinguishable and the membership test in G1 is not.
//!
//! Draws are made first, sequentially from the seed, and fits are gathered in a fixed order, as in
//! the rest of the module, so the outcome does not depend on the thread count.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::EquivalenceError;
use super::point::{Outcome, PointTestConfig, Tally, WinSummary};
use super::source::{
    DegenerateColumns, ImplRef, ImplementationSource, compute_fits, draw_pair, pick_other,
};

/// Which comparison a [`ModelTestResult`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelTestKind {
    /// win = fit(m↔b) > fit(m↔c) (both directions averaged), b ∈ G1 (`own`), c ∈ G2 (`other`).
    Closer,
    /// win = fit(a→b) > fit(m→b), a ≠ b ∈ G1 (`own`).
    Membership,
}

/// One draw: `own_fit` is the left side of the win condition, `other_fit` the right side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelDraw {
    pub model: usize,
    /// `b` (closer) or `a` (membership).
    pub first: usize,
    /// `c` (closer) or `b` (membership).
    pub second: usize,
    pub own_fit: f64,
    pub other_fit: f64,
    pub outcome: Outcome,
}

/// Result of a closer or membership test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelTestResult {
    pub kind: ModelTestKind,
    pub model: String,
    pub own: String,
    /// G2 for the closer test; `None` for membership.
    pub other: Option<String>,
    pub measure: String,
    pub seed: u64,
    pub summary: WinSummary,
    /// Mean of `own_fit` and of `other_fit` over the draws.
    pub mean_own_fit: f64,
    pub mean_other_fit: f64,
    pub records: Vec<ModelDraw>,
    pub degenerate: DegenerateColumns,
}

/// One draw's indices: the model, then the implementations on the two sides of the win condition.
#[derive(Debug, Clone, Copy)]
struct Draw {
    model: usize,
    first: usize,
    second: usize,
}

/// A side of a draw's win condition: one ordered pair, or two whose fits are averaged.
#[derive(Clone, Copy)]
enum Side {
    One(ImplRef, ImplRef),
    /// `(fit(a→b) + fit(b→a)) / 2`.
    Both(ImplRef, ImplRef),
}

impl Side {
    fn pairs(self) -> Vec<(ImplRef, ImplRef)> {
        match self {
            Side::One(a, b) => vec![(a, b)],
            Side::Both(a, b) => vec![(a, b), (b, a)],
        }
    }

    fn value(self, fits: &super::source::FitTable, oriented: bool) -> f64 {
        let f = |a, b| {
            if oriented {
                fits.oriented(a, b)
            } else {
                fits.value(a, b)
            }
        };
        match self {
            Side::One(a, b) => f(a, b),
            Side::Both(a, b) => (f(a, b) + f(b, a)) / 2.0,
        }
    }
}

/// The two sides of a draw: the win condition's left, then its right.
type Sides = [Side; 2];

/// Every draw of a test, tallied, with the columns the measure left out.
struct Recorded {
    records: Vec<ModelDraw>,
    tally: Tally,
    degenerate: DegenerateColumns,
}

/// Computes every draw's fits (`sides` names them) and records the outcomes.
fn record_draws(
    sources: &[&dyn ImplementationSource],
    cfg: &PointTestConfig,
    draws: &[Draw],
    sides: impl Fn(Draw) -> Sides,
) -> Result<Recorded, EquivalenceError> {
    let fits = compute_fits(
        sources,
        &cfg.measure,
        draws
            .iter()
            .flat_map(|&d| sides(d).into_iter().flat_map(Side::pairs)),
        &cfg.progress,
    )?;
    let mut tally = Tally::default();
    let records = draws
        .iter()
        .map(|&d| {
            let [own, other] = sides(d);
            ModelDraw {
                model: d.model,
                first: d.first,
                second: d.second,
                own_fit: own.value(&fits, false),
                other_fit: other.value(&fits, false),
                outcome: tally.record(own.value(&fits, true), other.value(&fits, true)),
            }
        })
        .collect();
    Ok(Recorded {
        records,
        tally,
        degenerate: fits.degenerate().clone(),
    })
}

/// Implementation `index` of source `source` (short: every draw names four of them).
fn r(source: usize, index: usize) -> ImplRef {
    ImplRef { source, index }
}

/// The closer test of model pool `model` between `own` (G1) and `other` (G2).
pub fn closer_test(
    model: &dyn ImplementationSource,
    own: &dyn ImplementationSource,
    other: &dyn ImplementationSource,
    cfg: &PointTestConfig,
) -> Result<ModelTestResult, EquivalenceError> {
    cfg.validate()?;
    if model.count() == 0 {
        return Err(EquivalenceError::too_few(model, 1, "to draw the model"));
    }
    let same = own.label() == other.label();
    if own.count() < 1 + usize::from(same) {
        return Err(EquivalenceError::too_few(
            own,
            1 + usize::from(same),
            "to draw b (and c ≠ b)",
        ));
    }
    if other.count() == 0 {
        return Err(EquivalenceError::too_few(other, 1, "to draw c"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let draws: Vec<Draw> = (0..cfg.draws)
        .map(|_| {
            let m = rng.random_range(0..model.count());
            let (b, c) = draw_pair(&mut rng, own.count(), other.count(), same);
            Draw {
                model: m,
                first: b,
                second: c,
            }
        })
        .collect();
    // Sources: 0 the model, 1 G1, 2 G2; win = fit(m↔b) > fit(m↔c), both directions averaged.
    let recorded = record_draws(&[model, own, other], cfg, &draws, |d| {
        [
            Side::Both(r(0, d.model), r(1, d.first)),
            Side::Both(r(0, d.model), r(2, d.second)),
        ]
    })?;
    Ok(finish(
        ModelTestKind::Closer,
        model,
        own,
        Some(other.label().to_owned()),
        cfg,
        recorded,
    ))
}

/// The membership test of model pool `model` in `own` (G1).
pub fn membership_test(
    model: &dyn ImplementationSource,
    own: &dyn ImplementationSource,
    cfg: &PointTestConfig,
) -> Result<ModelTestResult, EquivalenceError> {
    cfg.validate()?;
    if model.count() == 0 {
        return Err(EquivalenceError::too_few(model, 1, "to draw the model"));
    }
    if own.count() < 2 {
        return Err(EquivalenceError::too_few(
            own,
            2,
            "to draw two distinct implementations a, b",
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let draws: Vec<Draw> = (0..cfg.draws)
        .map(|_| {
            let m = rng.random_range(0..model.count());
            let a = rng.random_range(0..own.count());
            let b = pick_other(&mut rng, own.count(), a);
            Draw {
                model: m,
                first: a,
                second: b,
            }
        })
        .collect();
    // Sources: 0 the model, 1 G1; win = fit(a→b) > fit(m→b).
    let recorded = record_draws(&[model, own], cfg, &draws, |d| {
        [
            Side::One(r(1, d.first), r(1, d.second)),
            Side::One(r(0, d.model), r(1, d.second)),
        ]
    })?;
    Ok(finish(
        ModelTestKind::Membership,
        model,
        own,
        None,
        cfg,
        recorded,
    ))
}

fn finish(
    kind: ModelTestKind,
    model: &dyn ImplementationSource,
    own: &dyn ImplementationSource,
    other: Option<String>,
    cfg: &PointTestConfig,
    recorded: Recorded,
) -> ModelTestResult {
    let Recorded {
        records,
        tally,
        degenerate,
    } = recorded;
    let n = records.len() as f64;
    ModelTestResult {
        kind,
        model: model.label().to_owned(),
        own: own.label().to_owned(),
        other,
        measure: cfg.measure.to_string(),
        seed: cfg.seed,
        summary: tally.summary(cfg),
        mean_own_fit: records.iter().map(|r| r.own_fit).sum::<f64>() / n,
        mean_other_fit: records.iter().map(|r| r.other_fit).sum::<f64>() / n,
        records,
        degenerate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::equivalence::point::Verdict;
    use crate::equivalence::representation::InputsId;
    use crate::equivalence::synthetic::{SyntheticFamily, gaussian_latent};

    fn pools() -> (SyntheticFamily, SyntheticFamily, SyntheticFamily) {
        let ids = InputsId("synthetic".into());
        let g1 = gaussian_latent(&ids, 120, 4, 1);
        let g2 = gaussian_latent(&ids, 120, 4, 2);
        let f1 = SyntheticFamily::new("g1", g1.clone(), 8, 0.05, 6, 10);
        let f2 = SyntheticFamily::new("g2", g2, 8, 0.05, 6, 20);
        // A "model": another member of G1's family, drawn from a different seed.
        let m = SyntheticFamily::new("model", g1, 8, 0.05, 2, 30);
        (f1, f2, m)
    }

    #[test]
    fn a_member_is_closer_to_its_family_and_not_distinguished_from_it() {
        let (f1, f2, m) = pools();
        let cfg = PointTestConfig {
            progress: Default::default(),
            draws: 60,
            seed: 5,
            ..PointTestConfig::default()
        };
        let closer = closer_test(&m, &f1, &f2, &cfg).unwrap();
        assert_eq!(closer.summary.verdict, Verdict::Distinguishable);
        assert!(closer.mean_own_fit > closer.mean_other_fit);
        let reverse = closer_test(&m, &f2, &f1, &cfg).unwrap();
        assert!(
            reverse.summary.win_rate < 0.1,
            "{}",
            reverse.summary.win_rate
        );
        let member = membership_test(&m, &f1, &cfg).unwrap();
        assert_eq!(member.summary.verdict, Verdict::NotDistinguished);
        // Not a member of G2: G2's implementations predict each other far better.
        let outsider = membership_test(&m, &f2, &cfg).unwrap();
        assert_eq!(outsider.summary.verdict, Verdict::Distinguishable);
        assert_eq!(closer, closer_test(&m, &f1, &f2, &cfg).unwrap());
    }
}
