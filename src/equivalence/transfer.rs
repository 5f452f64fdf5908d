//! The transfer matrix: how well representations of one pool predict those of another (the
//! paper's cross-model comparison), with the spread over pairs and a bootstrap interval for the
//! mean.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::source::{
    DegenerateColumns, ImplRef, ImplementationSource, compute_fits, derive_seed, draw_pair,
};
use super::stats::{Interval, Spread, quantile};
use super::{EquivalenceError, check_confidence, check_positive, square_table};
use crate::progress::Progress;
use crate::similarity::Measure;

/// Settings of a transfer matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferConfig {
    pub measure: Measure,
    /// A cell with at most this many ordered pairs is enumerated; a larger one is sampled with
    /// this many seeded draws.
    pub max_pairs: usize,
    pub seed: u64,
    /// Bootstrap resamples for the interval of the mean (0: no interval).
    pub bootstrap: usize,
    pub confidence: f64,
    /// Progress of the fits on stderr (hidden by default; never part of a result).
    pub progress: Progress,
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            measure: Measure::default(),
            max_pairs: 100,
            seed: 0,
            bootstrap: 1000,
            confidence: 0.95,
            progress: Progress::hidden(),
        }
    }
}

/// Cell `from → to`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferCell {
    pub from: String,
    pub to: String,
    /// Pairs evaluated (0 when the cell is undefined: one implementation compared with itself).
    pub pairs: usize,
    /// Whether every pair was evaluated (else `pairs` seeded draws).
    pub exhaustive: bool,
    /// The measure's values over the pairs (as reported by the measure, not re-oriented).
    pub fit: Option<Spread>,
    /// Percentile-bootstrap interval of the mean.
    pub mean_interval: Option<Interval>,
}

/// Mean fit between every ordered pair of pools.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferMatrix {
    pub labels: Vec<String>,
    pub measure: String,
    pub seed: u64,
    pub confidence: f64,
    /// `cells[i][j]`: fit(pool i → pool j).
    pub cells: Vec<Vec<TransferCell>>,
    pub degenerate: DegenerateColumns,
}

/// The ordered pairs of cell (i, j): all of them when few enough, else seeded draws.
fn cell_pairs(
    ki: usize,
    kj: usize,
    same_pool: bool,
    cfg: &TransferConfig,
    seed: u64,
) -> (Vec<(usize, usize)>, bool) {
    let total = if same_pool {
        ki * ki.saturating_sub(1)
    } else {
        ki * kj
    };
    if total == 0 {
        return (Vec::new(), true);
    }
    if total <= cfg.max_pairs {
        let all = (0..ki)
            .flat_map(|a| (0..kj).map(move |b| (a, b)))
            .filter(|(a, b)| !(same_pool && a == b))
            .collect();
        return (all, true);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let drawn = (0..cfg.max_pairs)
        .map(|_| draw_pair(&mut rng, ki, kj, same_pool))
        .collect();
    (drawn, false)
}

/// The transfer matrix. Cell (i, j) samples from `derive_seed(seed, [i, j])` and bootstraps from
/// `derive_seed(seed, [i, j, 1])`.
pub fn transfer_matrix(
    sources: &[&dyn ImplementationSource],
    cfg: &TransferConfig,
) -> Result<TransferMatrix, EquivalenceError> {
    check_positive("max_pairs", cfg.max_pairs)?;
    check_confidence(cfg.confidence)?;
    let m = sources.len();
    let mut plan = Vec::with_capacity(m * m);
    for i in 0..m {
        for j in 0..m {
            let same = sources[i].label() == sources[j].label();
            let (pairs, exhaustive) = cell_pairs(
                sources[i].count(),
                sources[j].count(),
                same,
                cfg,
                derive_seed(cfg.seed, &[i as u64, j as u64]),
            );
            plan.push((i, j, pairs, exhaustive));
        }
    }
    let refs = |i: usize, j: usize, (a, b): (usize, usize)| {
        (
            ImplRef {
                source: i,
                index: a,
            },
            ImplRef {
                source: j,
                index: b,
            },
        )
    };
    let all_pairs = plan
        .iter()
        .flat_map(|(i, j, pairs, _)| pairs.iter().map(move |p| refs(*i, *j, *p)));
    let fits = compute_fits(sources, &cfg.measure, all_pairs, &cfg.progress)?;

    let mut cells: Vec<Vec<TransferCell>> = (0..m).map(|_| Vec::with_capacity(m)).collect();
    for (i, j, pairs, exhaustive) in &plan {
        let values: Vec<f64> = pairs
            .iter()
            .map(|p| {
                let (a, b) = refs(*i, *j, *p);
                fits.value(a, b)
            })
            .collect();
        let (fit, mean_interval) = if values.is_empty() {
            (None, None)
        } else {
            let interval = (cfg.bootstrap > 0).then(|| {
                bootstrap_mean(
                    &values,
                    cfg.bootstrap,
                    cfg.confidence,
                    derive_seed(cfg.seed, &[*i as u64, *j as u64, 1]),
                )
            });
            (Some(Spread::of(&values)), interval)
        };
        cells[*i].push(TransferCell {
            from: sources[*i].label().to_owned(),
            to: sources[*j].label().to_owned(),
            pairs: values.len(),
            exhaustive: *exhaustive,
            fit,
            mean_interval,
        });
    }
    Ok(TransferMatrix {
        labels: sources.iter().map(|s| s.label().to_owned()).collect(),
        measure: cfg.measure.to_string(),
        seed: cfg.seed,
        confidence: cfg.confidence,
        cells,
        degenerate: fits.degenerate().clone(),
    })
}

fn bootstrap_mean(values: &[f64], resamples: usize, confidence: f64, seed: u64) -> Interval {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = values.len();
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    Interval {
        lower: quantile(&means, tail),
        upper: quantile(&means, 1.0 - tail),
    }
}

impl TransferMatrix {
    /// Rows "from", columns "to": mean fit ± sd over pairs (`—` where undefined).
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "transfer: mean fit(row → column) ± sd over pairs; measure {}; seed {}\n",
            self.measure, self.seed
        );
        out.push_str(&square_table(
            &self.labels,
            "from \\ to",
            13,
            |i, j| match &self.cells[i][j].fit {
                Some(s) => format!("{:.3}±{:.3}", s.mean, s.sd),
                None => "—".to_owned(),
            },
        ));
        out
    }
}
