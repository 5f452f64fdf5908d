//! The intervention test: does another interpretation G′ rely on the mechanism that patching
//! disrupts in implementations of G?
//!
//! Implementation `k` of G is given twice, clean (`r_k`) and with `n` circuit heads
//! interchange-patched from corrupted inputs (`r̃_k`); the patching itself happens upstream (the
//! runtime and the spec's circuit). For draws `(k, t)` with `t` an implementation of G′, a win is
//! `fit(r_k → t) > fit(r̃_k → t)`: patching lost information that `t` carries. A win rate near
//! 1/2 means G′ does not use what was patched; near 1, it relies on the same mechanism. The
//! one-sided test of `P(win) > 1/2` is reported exactly (binomial) and as the paper's z-test.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::point::{Outcome, Tally};
use super::source::{DegenerateColumns, ImplRef, ImplementationSource, compute_fits, draw_pair};
use super::stats::{Interval, OneSidedTest, Proportion, one_sided_above_half};
use super::{EquivalenceError, check_confidence, check_positive};
use crate::progress::Progress;
use crate::similarity::Measure;

/// Settings of an intervention test.
#[derive(Debug, Clone, PartialEq)]
pub struct InterventionConfig {
    pub measure: Measure,
    /// Number of (k, t) draws.
    pub draws: usize,
    pub seed: u64,
    /// Confidence of the interval; the test is significant when `p_exact < 1 − confidence`.
    pub confidence: f64,
    /// Progress of the fits on stderr (hidden by default; never part of a result).
    pub progress: Progress,
}

impl Default for InterventionConfig {
    fn default() -> Self {
        Self {
            measure: Measure::default(),
            draws: 100,
            seed: 0,
            confidence: 0.95,
            progress: Progress::hidden(),
        }
    }
}

/// One draw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterventionDraw {
    pub implementation: usize,
    pub target: usize,
    pub fit_clean: f64,
    pub fit_patched: f64,
    pub outcome: Outcome,
}

/// Result of an intervention test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterventionResult {
    pub clean: String,
    pub patched: String,
    pub targets: String,
    pub measure: String,
    pub seed: u64,
    pub confidence: f64,
    pub draws: usize,
    pub wins: usize,
    pub ties: usize,
    pub win_rate: f64,
    /// Mean of `fit(r→t) − fit(r_patched→t)` (oriented: larger is more similar): the size of what
    /// the win rate counts.
    pub mean_gap: f64,
    pub wilson: Interval,
    pub clopper_pearson: Interval,
    pub test: OneSidedTest,
    /// `test.p_exact < 1 − confidence`. No ε here: the draws are paired (the same `r`, `t` on
    /// both sides), so the sign test already measures the patch's effect against how fits vary,
    /// and a patch that changes nothing gives ties, never wins.
    pub significant: bool,
    pub records: Vec<InterventionDraw>,
    pub degenerate: DegenerateColumns,
}

/// Runs the intervention test. `clean` and `patched` must list the same implementations in the
/// same order; when `targets` is `clean`'s pool (same label), `t = k` is never drawn.
pub fn intervention_test(
    clean: &dyn ImplementationSource,
    patched: &dyn ImplementationSource,
    targets: &dyn ImplementationSource,
    cfg: &InterventionConfig,
) -> Result<InterventionResult, EquivalenceError> {
    check_positive("draws", cfg.draws)?;
    check_confidence(cfg.confidence)?;
    if clean.count() != patched.count() {
        return Err(EquivalenceError::Config {
            field: "patched",
            reason: format!(
                "`{}` has {} implementations but `{}` has {}; the patched pool must hold the same implementations, in the same order",
                clean.label(),
                clean.count(),
                patched.label(),
                patched.count()
            ),
        });
    }
    let same_pool = targets.label() == clean.label();
    let k_count = clean.count();
    let t_count = targets.count();
    let needed = if same_pool { 2 } else { 1 };
    let why = "for the intervention test";
    if k_count == 0 {
        return Err(EquivalenceError::too_few(clean, needed, why));
    }
    if t_count < needed {
        return Err(EquivalenceError::too_few(targets, needed, why));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let draws: Vec<(usize, usize)> = (0..cfg.draws)
        .map(|_| draw_pair(&mut rng, k_count, t_count, same_pool))
        .collect();
    let refs = |k: usize, t: usize| {
        (
            ImplRef {
                source: 0,
                index: k,
            },
            ImplRef {
                source: 1,
                index: k,
            },
            ImplRef {
                source: 2,
                index: t,
            },
        )
    };
    let sources: [&dyn ImplementationSource; 3] = [clean, patched, targets];
    let pairs = draws.iter().flat_map(|&(k, t)| {
        let (r, rp, tr) = refs(k, t);
        [(r, tr), (rp, tr)]
    });
    let fits = compute_fits(&sources, &cfg.measure, pairs, &cfg.progress)?;
    let mut tally = Tally::default();
    let records: Vec<InterventionDraw> = draws
        .iter()
        .map(|&(k, t)| {
            let (r, rp, tr) = refs(k, t);
            InterventionDraw {
                implementation: k,
                target: t,
                fit_clean: fits.value(r, tr),
                fit_patched: fits.value(rp, tr),
                outcome: tally.record(fits.oriented(r, tr), fits.oriented(rp, tr)),
            }
        })
        .collect();
    let (wins, ties) = (tally.wins, tally.ties);
    let mean_gap = tally.gaps().iter().sum::<f64>() / cfg.draws as f64;
    let p = Proportion::new(wins, cfg.draws);
    let test = one_sided_above_half(p);
    Ok(InterventionResult {
        clean: clean.label().to_owned(),
        patched: patched.label().to_owned(),
        targets: targets.label().to_owned(),
        measure: cfg.measure.to_string(),
        seed: cfg.seed,
        confidence: cfg.confidence,
        draws: cfg.draws,
        wins,
        ties,
        win_rate: p.rate(),
        mean_gap,
        wilson: p.wilson(cfg.confidence),
        clopper_pearson: p.clopper_pearson(cfg.confidence),
        significant: test.p_exact < 1.0 - cfg.confidence,
        test,
        records,
        degenerate: fits.degenerate().clone(),
    })
}
