//! The point test and the selectivity matrix.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::source::{
    DegenerateColumns, FitTable, ImplRef, ImplementationSource, compute_fits, derive_seed,
    pick_other,
};
use super::stats::{Interval, IntervalMethod, Proportion, Spread};
use super::{EquivalenceError, check_confidence, check_positive, square_table};
use crate::progress::Progress;
use crate::similarity::Measure;

/// One comparison's result. Ties are not wins (the paper's strict `>`); they are counted apart
/// because clamped fits (`sqrt(max(R², 0)) = 0` on both sides) tie often.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Win,
    Tie,
    Loss,
}

pub(crate) fn outcome(own: f64, other: f64) -> Outcome {
    if own > other {
        Outcome::Win
    } else if own == other {
        Outcome::Tie
    } else {
        Outcome::Loss
    }
}

/// What a win-rate interval says about two pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The interval's lower bound exceeds 1/2: G1's implementations resemble each other more than
    /// they resemble G2's.
    Distinguishable,
    /// Not distinguished at this sample size (which is not a proof of equivalence).
    NotDistinguished,
}

/// The effect size a verdict needs beside significance: the paper's equivalence is approximate,
/// so a win rate that is significant on fit gaps smaller than ε is no difference (with exact
/// implementations any consistent gap of 3e-5 wins every draw).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Epsilon {
    /// From the data: the range (largest minus smallest) of the within-pool fits of the draws
    /// (the win condition's left side: `fit(a→b)`, a, b from one pool), and at least
    /// [`MIN_EPSILON`]. A mean gap that stays inside the spread of the fits between
    /// implementations of one pool is not an effect: a model whose fits fall short of the
    /// members' by less than the members' own fits differ is one of them as far as the data can
    /// say. (The standard deviation is too tight: the plain compiled model, which no sampler
    /// family varies, falls short of its sampled pool by about two of them.)
    #[default]
    FromData,
    /// Set by the user (`--epsilon`, `epsilon` in a check), at least 0.
    Fixed(f64),
}

/// The smallest ε the data rule gives. Below it a fit moves with the features' scale alone:
/// ridge penalises every direction alike, so function-preserving rescalings of an
/// implementation change its fits by 1e-6 … 1e-5 (the plain compiled model of
/// `length_by_mean_index` falls short of its rescaled samples by 9.6e-6), and the exact
/// implementations of two interpretations that compute different functions differ by 1e-3 and
/// more (tracr_reverse against reverse_wrong: 5.9e-3).
pub const MIN_EPSILON: f64 = 1e-4;

impl Epsilon {
    /// A user's tolerance: finite and at least 0.
    pub fn fixed(value: f64) -> Result<Epsilon, EquivalenceError> {
        if value.is_finite() && value >= 0.0 {
            Ok(Epsilon::Fixed(value))
        } else {
            Err(EquivalenceError::Config {
                field: "epsilon",
                reason: format!("must be a finite number >= 0, got {value}"),
            })
        }
    }

    /// ε for draws whose within-pool fits are `within`.
    fn resolve(self, within: &[f64]) -> (f64, EpsilonRule) {
        match self {
            Epsilon::Fixed(e) => (e, EpsilonRule::Set),
            Epsilon::FromData => {
                let spread = Spread::of(within);
                let range = spread.max - spread.min;
                (
                    if range.is_finite() {
                        range.max(MIN_EPSILON)
                    } else {
                        MIN_EPSILON
                    },
                    EpsilonRule::Data,
                )
            }
        }
    }
}

impl std::fmt::Display for Epsilon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Epsilon::FromData => f.write_str("data"),
            Epsilon::Fixed(e) => write!(f, "{e}"),
        }
    }
}

/// How a verdict's ε was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EpsilonRule {
    /// The range of the within-pool fits (at least [`MIN_EPSILON`]).
    Data,
    /// Given by the user.
    Set,
}

/// The size of what a win rate counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Effect {
    /// Mean over the draws of the win condition's left fit minus its right fit (oriented: larger
    /// is more similar).
    pub mean_gap: f64,
    /// The tolerance the mean gap must exceed.
    pub epsilon: f64,
    pub epsilon_rule: EpsilonRule,
}

impl Effect {
    pub fn above_epsilon(&self) -> bool {
        self.mean_gap > self.epsilon
    }
}

/// Settings of a point test (also the per-replicate settings of a selectivity matrix).
#[derive(Debug, Clone, PartialEq)]
pub struct PointTestConfig {
    /// The fit; larger-is-more-similar orientation is applied for distances.
    pub measure: Measure,
    /// Number of (a, b, c) draws.
    pub draws: usize,
    pub seed: u64,
    /// Confidence level of the intervals, e.g. 0.95.
    pub confidence: f64,
    /// Which interval decides the verdict (both are reported).
    pub interval: IntervalMethod,
    /// The effect size a distinguishable verdict needs besides the interval.
    pub epsilon: Epsilon,
    /// Progress of the fits on stderr (hidden by default; never part of a result).
    pub progress: Progress,
}

impl Default for PointTestConfig {
    fn default() -> Self {
        Self {
            measure: Measure::default(),
            draws: 100,
            seed: 0,
            confidence: 0.95,
            interval: IntervalMethod::ClopperPearson,
            epsilon: Epsilon::FromData,
            progress: Progress::hidden(),
        }
    }
}

impl PointTestConfig {
    pub(crate) fn validate(&self) -> Result<(), EquivalenceError> {
        check_positive("draws", self.draws)?;
        if let Epsilon::Fixed(e) = self.epsilon {
            Epsilon::fixed(e)?;
        }
        check_confidence(self.confidence)
    }
}

/// Win count with both intervals, the effect size and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WinSummary {
    pub draws: usize,
    pub wins: usize,
    pub ties: usize,
    pub win_rate: f64,
    pub wilson: Interval,
    pub clopper_pearson: Interval,
    /// The deciding interval's lower bound exceeds 1/2.
    pub significant: bool,
    pub effect: Effect,
    /// Distinguishable when significant and the mean gap exceeds ε.
    pub verdict: Verdict,
}

impl WinSummary {
    pub(crate) fn new(
        wins: usize,
        ties: usize,
        draws: usize,
        confidence: f64,
        method: IntervalMethod,
        effect: Effect,
    ) -> Self {
        let p = Proportion::new(wins, draws);
        let wilson = p.wilson(confidence);
        let clopper_pearson = p.clopper_pearson(confidence);
        let decisive = match method {
            IntervalMethod::Wilson => wilson,
            IntervalMethod::ClopperPearson => clopper_pearson,
        };
        let significant = decisive.lower > 0.5;
        Self {
            draws,
            wins,
            ties,
            win_rate: p.rate(),
            wilson,
            clopper_pearson,
            significant,
            effect,
            verdict: if significant && effect.above_epsilon() {
                Verdict::Distinguishable
            } else {
                Verdict::NotDistinguished
            },
        }
    }

    /// `significant` / `gap ≤ ε` in words, for reports.
    pub fn why(&self) -> String {
        let gap = format!(
            "gap {:.3e} {} ε {:.3e}",
            self.effect.mean_gap,
            if self.effect.above_epsilon() {
                ">"
            } else {
                "≤"
            },
            self.effect.epsilon
        );
        if self.significant {
            gap
        } else {
            format!("not significant; {gap}")
        }
    }
}

/// Wins, ties and the fits of a run of draws.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Tally {
    pub wins: usize,
    pub ties: usize,
    pub draws: usize,
    /// The win condition's left fit of each draw (oriented): within-pool fits, for ε.
    within: Vec<f64>,
    /// Left fit minus right fit of each draw (oriented).
    gaps: Vec<f64>,
}

impl Tally {
    /// Records one draw from its two oriented fits (`own` the win condition's left side).
    pub(crate) fn record(&mut self, own: f64, other: f64) -> Outcome {
        let o = outcome(own, other);
        self.wins += usize::from(o == Outcome::Win);
        self.ties += usize::from(o == Outcome::Tie);
        self.draws += 1;
        self.within.push(own);
        self.gaps.push(own - other);
        o
    }

    /// Adds another run's draws.
    pub(crate) fn absorb(&mut self, other: &Tally) {
        self.wins += other.wins;
        self.ties += other.ties;
        self.draws += other.draws;
        self.within.extend_from_slice(&other.within);
        self.gaps.extend_from_slice(&other.gaps);
    }

    pub(crate) fn gaps(&self) -> &[f64] {
        &self.gaps
    }

    pub(crate) fn effect(&self, epsilon: Epsilon) -> Effect {
        let (epsilon, epsilon_rule) = epsilon.resolve(&self.within);
        Effect {
            mean_gap: self.gaps.iter().sum::<f64>() / self.gaps.len().max(1) as f64,
            epsilon,
            epsilon_rule,
        }
    }

    pub(crate) fn summary(&self, cfg: &PointTestConfig) -> WinSummary {
        WinSummary::new(
            self.wins,
            self.ties,
            self.draws,
            cfg.confidence,
            cfg.interval,
            self.effect(cfg.epsilon),
        )
    }
}

/// One draw of the point test, with both fits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointDraw {
    pub a: usize,
    pub b: usize,
    pub c: usize,
    pub fit_ab: f64,
    pub fit_ac: f64,
    pub outcome: Outcome,
}

/// A point test of G1 against G2.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointTestResult {
    pub g1: String,
    pub g2: String,
    pub measure: String,
    pub seed: u64,
    pub confidence: f64,
    pub interval: IntervalMethod,
    pub summary: WinSummary,
    pub records: Vec<PointDraw>,
    pub degenerate: DegenerateColumns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Triple {
    a: usize,
    b: usize,
    c: usize,
}

fn require(
    src: &dyn ImplementationSource,
    needed: usize,
    why: &str,
) -> Result<(), EquivalenceError> {
    if src.count() < needed {
        return Err(EquivalenceError::too_few(src, needed, why));
    }
    Ok(())
}

/// `a != b` uniform from G1; `c` uniform from G2, and distinct from both when G2 is G1's pool.
fn draw_triples(k1: usize, k2: usize, same_pool: bool, draws: usize, seed: u64) -> Vec<Triple> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..draws)
        .map(|_| {
            let a = rng.random_range(0..k1);
            let b = pick_other(&mut rng, k1, a);
            let c = if same_pool {
                let (lo, hi) = (a.min(b), a.max(b));
                let mut c = rng.random_range(0..k1 - 2);
                if c >= lo {
                    c += 1;
                }
                if c >= hi {
                    c += 1;
                }
                c
            } else {
                rng.random_range(0..k2)
            };
            Triple { a, b, c }
        })
        .collect()
}

fn check_pools(
    g1: &dyn ImplementationSource,
    g2: &dyn ImplementationSource,
) -> Result<bool, EquivalenceError> {
    let same = g1.label() == g2.label();
    if same {
        require(g1, 3, "to draw a, b, c all distinct from one pool")?;
    } else {
        require(g1, 2, "to draw two distinct implementations a, b")?;
        require(g2, 1, "to draw c")?;
    }
    Ok(same)
}

fn triple_refs(t: Triple, g1: usize, g2: usize) -> (ImplRef, ImplRef, ImplRef) {
    (
        ImplRef {
            source: g1,
            index: t.a,
        },
        ImplRef {
            source: g1,
            index: t.b,
        },
        ImplRef {
            source: g2,
            index: t.c,
        },
    )
}

fn tally(fits: &FitTable, triples: &[Triple], g1: usize, g2: usize) -> (Tally, Vec<PointDraw>) {
    let mut tally = Tally::default();
    let records: Vec<PointDraw> = triples
        .iter()
        .map(|t| {
            let (a, b, c) = triple_refs(*t, g1, g2);
            PointDraw {
                a: t.a,
                b: t.b,
                c: t.c,
                fit_ab: fits.value(a, b),
                fit_ac: fits.value(a, c),
                outcome: tally.record(fits.oriented(a, b), fits.oriented(a, c)),
            }
        })
        .collect();
    (tally, records)
}

/// The point test: `cfg.draws` draws of `a, b` from G1 and `c` from G2, seeded by `cfg.seed`.
pub fn point_test(
    g1: &dyn ImplementationSource,
    g2: &dyn ImplementationSource,
    cfg: &PointTestConfig,
) -> Result<PointTestResult, EquivalenceError> {
    cfg.validate()?;
    let same = check_pools(g1, g2)?;
    let triples = draw_triples(g1.count(), g2.count(), same, cfg.draws, cfg.seed);
    let sources: [&dyn ImplementationSource; 2] = [g1, g2];
    let pairs = triples.iter().flat_map(|t| {
        let (a, b, c) = triple_refs(*t, 0, 1);
        [(a, b), (a, c)]
    });
    let fits = compute_fits(&sources, &cfg.measure, pairs, &cfg.progress)?;
    let (tally, records) = tally(&fits, &triples, 0, 1);
    Ok(PointTestResult {
        g1: g1.label().to_owned(),
        g2: g2.label().to_owned(),
        measure: cfg.measure.to_string(),
        seed: cfg.seed,
        confidence: cfg.confidence,
        interval: cfg.interval,
        summary: tally.summary(cfg),
        records,
        degenerate: fits.degenerate().clone(),
    })
}

/// Settings of a selectivity matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectivityConfig {
    /// Per-replicate point-test settings; `point.seed` is the matrix's seed.
    pub point: PointTestConfig,
    /// Independent replicates (bootstraps) of every cell, each with its own derived seed.
    pub replicates: usize,
}

impl Default for SelectivityConfig {
    fn default() -> Self {
        Self {
            point: PointTestConfig::default(),
            replicates: 10,
        }
    }
}

/// Cell (G1, G2) of the selectivity matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelectivityCell {
    pub g1: String,
    pub g2: String,
    /// Each replicate's point test (`draws` draws).
    pub replicates: Vec<WinSummary>,
    /// Mean and spread of the replicate win rates.
    pub win_rate: Spread,
    /// All replicates' draws taken together; its verdict is the cell's verdict.
    pub pooled: WinSummary,
    /// How many replicates alone were distinguishable.
    pub distinguishable_replicates: usize,
    /// `fit(a→b) − fit(a→c)` (oriented: larger is more similar) over all draws: the effect the
    /// win rate counts. A verdict resting on gaps of 1e-6 says nothing a reader should act on.
    pub gap: Spread,
}

/// Point tests over every ordered pair of pools.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelectivityMatrix {
    pub labels: Vec<String>,
    pub measure: String,
    pub seed: u64,
    pub draws_per_replicate: usize,
    pub replicates: usize,
    pub confidence: f64,
    pub interval: IntervalMethod,
    /// How each cell's ε was set (`data`, or the value given).
    pub epsilon: String,
    /// `cells[i][j]`: G1 = pool i, G2 = pool j.
    pub cells: Vec<Vec<SelectivityCell>>,
    pub degenerate: DegenerateColumns,
}

/// The selectivity matrix: for pools `i` (G1) and `j` (G2), replicate `r` draws its triples from
/// `derive_seed(seed, [i, j, r])`. Every pool needs at least 3 implementations (the diagonal
/// draws a, b, c all distinct from one pool).
pub fn selectivity_matrix(
    sources: &[&dyn ImplementationSource],
    cfg: &SelectivityConfig,
) -> Result<SelectivityMatrix, EquivalenceError> {
    cfg.point.validate()?;
    check_positive("replicates", cfg.replicates)?;
    if sources.is_empty() {
        return Err(EquivalenceError::Config {
            field: "sources",
            reason: "no implementation pools given".into(),
        });
    }
    for s in sources {
        require(
            *s,
            3,
            "for the selectivity matrix (its diagonal draws a, b, c all distinct)",
        )?;
    }
    let m = sources.len();
    // All draws first, sequentially from derived seeds.
    let mut plan: Vec<(usize, usize, Vec<Vec<Triple>>)> = Vec::with_capacity(m * m);
    for i in 0..m {
        for j in 0..m {
            let same = sources[i].label() == sources[j].label();
            let reps = (0..cfg.replicates)
                .map(|r| {
                    draw_triples(
                        sources[i].count(),
                        sources[j].count(),
                        same,
                        cfg.point.draws,
                        derive_seed(cfg.point.seed, &[i as u64, j as u64, r as u64]),
                    )
                })
                .collect();
            plan.push((i, j, reps));
        }
    }
    let pairs = plan.iter().flat_map(|(i, j, reps)| {
        reps.iter().flatten().flat_map(move |t| {
            let (a, b, c) = triple_refs(*t, *i, *j);
            [(a, b), (a, c)]
        })
    });
    let fits = compute_fits(sources, &cfg.point.measure, pairs, &cfg.point.progress)?;

    let mut cells: Vec<Vec<SelectivityCell>> = (0..m).map(|_| Vec::with_capacity(m)).collect();
    for (i, j, reps) in &plan {
        let mut pooled = Tally::default();
        let summaries: Vec<WinSummary> = reps
            .iter()
            .map(|triples| {
                let (t, _) = tally(&fits, triples, *i, *j);
                pooled.absorb(&t);
                t.summary(&cfg.point)
            })
            .collect();
        let rates: Vec<f64> = summaries.iter().map(|s| s.win_rate).collect();
        cells[*i].push(SelectivityCell {
            g1: sources[*i].label().to_owned(),
            g2: sources[*j].label().to_owned(),
            win_rate: Spread::of(&rates),
            pooled: pooled.summary(&cfg.point),
            distinguishable_replicates: summaries
                .iter()
                .filter(|s| s.verdict == Verdict::Distinguishable)
                .count(),
            replicates: summaries,
            gap: Spread::of(pooled.gaps()),
        });
    }
    Ok(SelectivityMatrix {
        labels: sources.iter().map(|s| s.label().to_owned()).collect(),
        measure: cfg.point.measure.to_string(),
        seed: cfg.point.seed,
        draws_per_replicate: cfg.point.draws,
        replicates: cfg.replicates,
        confidence: cfg.confidence(),
        interval: cfg.point.interval,
        epsilon: cfg.point.epsilon.to_string(),
        cells,
        degenerate: fits.degenerate().clone(),
    })
}

impl SelectivityConfig {
    fn confidence(&self) -> f64 {
        self.point.confidence
    }
}

impl SelectivityMatrix {
    /// A table for people: rows are G1, columns G2, entries the mean replicate win rate ± its
    /// standard deviation, `*` where the pooled verdict is distinguishable.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "selectivity: win rate of fit(a→b) > fit(a→c), a,b ∈ G1 (row), c ∈ G2 (column)\n\
             measure {}; {} replicates × {} draws; seed {}; * = distinguishable ({} {}% lower bound > 0.5 and mean gap > ε, pooled)\n",
            self.measure,
            self.replicates,
            self.draws_per_replicate,
            self.seed,
            match self.interval {
                IntervalMethod::Wilson => "Wilson",
                IntervalMethod::ClopperPearson => "Clopper–Pearson",
            },
            self.confidence * 100.0
        );
        out.push_str(&square_table(&self.labels, "G1 \\ G2", 14, |i, j| {
            let cell = &self.cells[i][j];
            let mark = if cell.pooled.verdict == Verdict::Distinguishable {
                "*"
            } else {
                " "
            };
            format!("{:.3}±{:.3}{mark}", cell.win_rate.mean, cell.win_rate.sd)
        }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_respect_distinctness() {
        for same in [false, true] {
            let t = draw_triples(4, 3, same, 500, 9);
            assert_eq!(t.len(), 500);
            for x in &t {
                assert_ne!(x.a, x.b);
                assert!(x.a < 4 && x.b < 4);
                if same {
                    assert!(x.c != x.a && x.c != x.b && x.c < 4);
                } else {
                    assert!(x.c < 3);
                }
            }
            // Every allowed value shows up.
            assert!((0..4).all(|v| t.iter().any(|x| x.a == v)));
        }
        assert_eq!(
            draw_triples(5, 5, false, 20, 1),
            draw_triples(5, 5, false, 20, 1)
        );
        assert_ne!(
            draw_triples(5, 5, false, 20, 1),
            draw_triples(5, 5, false, 20, 2)
        );
    }

    fn effect(mean_gap: f64, epsilon: f64) -> Effect {
        Effect {
            mean_gap,
            epsilon,
            epsilon_rule: EpsilonRule::Set,
        }
    }

    #[test]
    fn verdict_follows_the_chosen_lower_bound() {
        // 15/20: Wilson lower 0.531 > 0.5, Clopper–Pearson lower 0.509 > 0.5.
        let s = WinSummary::new(
            15,
            0,
            20,
            0.95,
            IntervalMethod::ClopperPearson,
            effect(0.1, 0.01),
        );
        assert_eq!(s.verdict, Verdict::Distinguishable);
        // 14/20: Wilson lower 0.481, CP lower 0.457.
        let s = WinSummary::new(14, 0, 20, 0.95, IntervalMethod::Wilson, effect(0.1, 0.01));
        assert_eq!(s.verdict, Verdict::NotDistinguished);
    }

    #[test]
    fn a_significant_win_rate_on_gaps_below_epsilon_is_not_a_difference() {
        let s = WinSummary::new(
            20,
            0,
            20,
            0.95,
            IntervalMethod::ClopperPearson,
            effect(3e-5, 3e-4),
        );
        assert!(s.significant);
        assert_eq!(s.verdict, Verdict::NotDistinguished);
        assert!(s.why().contains("≤ ε"), "{}", s.why());
    }

    #[test]
    fn epsilon_from_data_is_the_spread_of_the_within_fits() {
        let mut t = Tally::default();
        // Within fits 0.9, 0.95, 1.0 (range 0.1); gaps 0.1 each.
        for own in [0.9, 0.95, 1.0] {
            t.record(own, own - 0.1);
        }
        let e = t.effect(Epsilon::FromData);
        assert!((e.epsilon - 0.1).abs() < 1e-12, "{}", e.epsilon);
        assert!((e.mean_gap - 0.1).abs() < 1e-12);
        assert!(!e.above_epsilon(), "a gap equal to the spread is no effect");
        assert_eq!(e.epsilon_rule, EpsilonRule::Data);
        // Identical fits: the floor.
        let mut flat = Tally::default();
        for _ in 0..5 {
            flat.record(1.0, 0.5);
        }
        assert_eq!(flat.effect(Epsilon::FromData).epsilon, MIN_EPSILON);
        assert_eq!(flat.effect(Epsilon::Fixed(0.7)).epsilon, 0.7);
        assert!(Epsilon::fixed(-1.0).is_err() && Epsilon::fixed(f64::NAN).is_err());
    }
}
