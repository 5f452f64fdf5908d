//! Interval estimates and one-sided tests for win counts.
//!
//! The reference code's Wald interval misbehaves at small n and near 0 or 1; here every win rate
//! carries both the Wilson score interval and the exact Clopper–Pearson interval, and one-sided
//! tests report the exact binomial p-value beside the normal-approximation z-test. Special
//! functions (regularised incomplete beta and its inverse, erfc) come from `statrs`.

use serde::Serialize;
use statrs::function::beta::{beta_reg, inv_beta_reg};
use statrs::function::erf::{erfc, erfc_inv};

/// A two-sided confidence interval for a proportion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

/// Which interval decides a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum IntervalMethod {
    Wilson,
    /// Exact (conservative); the default.
    #[default]
    ClopperPearson,
}

/// The standard normal quantile `Φ⁻¹(p)`.
pub fn normal_quantile(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

/// The standard normal upper tail `1 − Φ(z)`, accurate far into the tail.
pub fn normal_upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// `successes` out of `trials`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Proportion {
    pub successes: usize,
    pub trials: usize,
}

impl Proportion {
    pub fn new(successes: usize, trials: usize) -> Self {
        debug_assert!(successes <= trials);
        Self { successes, trials }
    }

    /// `successes / trials`; NaN when there are no trials.
    pub fn rate(&self) -> f64 {
        self.successes as f64 / self.trials as f64
    }

    /// Wilson score interval at `confidence` (e.g. 0.95). `[0, 1]` when there are no trials.
    pub fn wilson(&self, confidence: f64) -> Interval {
        if self.trials == 0 {
            return Interval {
                lower: 0.0,
                upper: 1.0,
            };
        }
        let n = self.trials as f64;
        let p = self.rate();
        let z = normal_quantile(0.5 + confidence / 2.0);
        let z2 = z * z;
        let denom = 1.0 + z2 / n;
        let centre = (p + z2 / (2.0 * n)) / denom;
        let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
        // At 0 or n successes the bound is exactly 0 or 1; rounding would leave ±1e-17.
        Interval {
            lower: if self.successes == 0 {
                0.0
            } else {
                (centre - half).max(0.0)
            },
            upper: if self.successes == self.trials {
                1.0
            } else {
                (centre + half).min(1.0)
            },
        }
    }

    /// Exact Clopper–Pearson interval at `confidence`: beta quantiles
    /// `B(α/2; k, n−k+1)` and `B(1−α/2; k+1, n−k)`, with 0 and 1 at the edges.
    pub fn clopper_pearson(&self, confidence: f64) -> Interval {
        let (k, n) = (self.successes as f64, self.trials as f64);
        if self.trials == 0 {
            return Interval {
                lower: 0.0,
                upper: 1.0,
            };
        }
        let alpha = 1.0 - confidence;
        let lower = if self.successes == 0 {
            0.0
        } else {
            inv_beta_reg(k, n - k + 1.0, alpha / 2.0)
        };
        let upper = if self.successes == self.trials {
            1.0
        } else {
            inv_beta_reg(k + 1.0, n - k, 1.0 - alpha / 2.0)
        };
        Interval { lower, upper }
    }

    pub fn interval(&self, method: IntervalMethod, confidence: f64) -> Interval {
        match method {
            IntervalMethod::Wilson => self.wilson(confidence),
            IntervalMethod::ClopperPearson => self.clopper_pearson(confidence),
        }
    }
}

/// A one-sided test of `H0: P(win) = 1/2` against `H1: P(win) > 1/2`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OneSidedTest {
    /// Exact: `P(X >= wins)` for `X ~ Binomial(n, 1/2)`.
    pub p_exact: f64,
    /// `(wins − n/2) / sqrt(n/4)`.
    pub z: f64,
    /// `1 − Φ(z)`.
    pub p_z: f64,
}

/// The one-sided test for a win count. With no trials both p-values are 1.
pub fn one_sided_above_half(p: Proportion) -> OneSidedTest {
    if p.trials == 0 {
        return OneSidedTest {
            p_exact: 1.0,
            z: 0.0,
            p_z: 1.0,
        };
    }
    let (k, n) = (p.successes as f64, p.trials as f64);
    // P(X >= k) = I_{1/2}(k, n − k + 1) for k >= 1.
    let p_exact = if p.successes == 0 {
        1.0
    } else {
        beta_reg(k, n - k + 1.0, 0.5)
    };
    let z = (k - n / 2.0) / (n / 4.0).sqrt();
    OneSidedTest {
        p_exact,
        z,
        p_z: normal_upper_tail(z),
    }
}

/// Mean and spread of replicate values (bootstraps).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub count: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for a single value.
    pub sd: f64,
    pub min: f64,
    pub max: f64,
    /// 2.5% and 97.5% quantiles (linear interpolation, numpy's default).
    pub q025: f64,
    pub q975: f64,
}

impl Spread {
    /// Summary of `values` (NaN fields when empty).
    pub fn of(values: &[f64]) -> Self {
        let count = values.len();
        if count == 0 {
            return Self {
                count,
                mean: f64::NAN,
                sd: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
                q025: f64::NAN,
                q975: f64::NAN,
            };
        }
        let mean = values.iter().sum::<f64>() / count as f64;
        let sd = if count > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1) as f64).sqrt()
        } else {
            0.0
        };
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            count,
            mean,
            sd,
            min: sorted[0],
            max: sorted[count - 1],
            q025: quantile(&sorted, 0.025),
            q975: quantile(&sorted, 0.975),
        }
    }
}

/// Linear-interpolation quantile (numpy's default) of values sorted ascending; `q` in [0, 1].
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (n, k, CP lower, CP upper, exact one-sided p, z-test p), from scipy 1.17:
    /// `beta.ppf(0.025, k, n-k+1)`, `beta.ppf(0.975, k+1, n-k)`, `binom.sf(k-1, n, .5)`,
    /// `norm.sf((k - n/2) / sqrt(n/4))`.
    const SCIPY: [(usize, usize, f64, f64, f64, f64); 7] = [
        (
            20,
            15,
            0.5089541282920425,
            0.9134285308985653,
            0.020694732666015625,
            0.012673659338734126,
        ),
        (
            100,
            62,
            0.5174606942491935,
            0.7152325238585204,
            0.01048936783892586,
            0.008197535924596131,
        ),
        (10, 0, 0.0, 0.3084971078187607, 1.0, 0.9992172988709987),
        (
            10,
            10,
            0.6915028921812392,
            1.0,
            0.0009765625,
            0.000782701129001274,
        ),
        (
            1000,
            523,
            0.49151401031586894,
            0.5543502196835383,
            0.07734685323997867,
            0.07288340590655616,
        ),
        (
            7,
            1,
            0.0036102968619005833,
            0.5787231970431952,
            0.9921875,
            0.9706091393223206,
        ),
        (
            50,
            25,
            0.3552729971299086,
            0.6447270028700913,
            0.5561375863296085,
            0.5,
        ),
    ];

    fn rel(a: f64, b: f64) -> f64 {
        if a == b {
            0.0
        } else {
            (a - b).abs() / b.abs().max(1e-300)
        }
    }

    #[test]
    fn clopper_pearson_and_p_values_match_scipy() {
        for (n, k, lo, hi, p, pz) in SCIPY {
            let prop = Proportion::new(k, n);
            let cp = prop.clopper_pearson(0.95);
            assert!(
                rel(cp.lower, lo) < 1e-9,
                "n={n} k={k} lower {} vs {lo}",
                cp.lower
            );
            assert!(
                rel(cp.upper, hi) < 1e-9,
                "n={n} k={k} upper {} vs {hi}",
                cp.upper
            );
            let t = one_sided_above_half(prop);
            assert!(
                rel(t.p_exact, p) < 1e-9,
                "n={n} k={k} p {} vs {p}",
                t.p_exact
            );
            assert!(rel(t.p_z, pz) < 1e-9, "n={n} k={k} pz {} vs {pz}", t.p_z);
        }
    }

    #[test]
    fn wilson_matches_the_closed_form() {
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-13);
        // Wilson's interval for 15/20 (0.5313, 0.8881 in the textbook tables), evaluated in Python.
        let w = Proportion::new(15, 20).wilson(0.95);
        assert!((w.lower - 0.531299122381256).abs() < 1e-12, "{w:?}");
        assert!((w.upper - 0.8881382985923343).abs() < 1e-12, "{w:?}");
        let w = Proportion::new(0, 10).wilson(0.95);
        assert_eq!(w.lower, 0.0);
        assert!(w.upper > 0.25 && w.upper < 0.3);
    }

    #[test]
    fn spread_quantiles_interpolate() {
        let s = Spread::of(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(s.mean, 3.0);
        assert!((s.sd - 2.5f64.sqrt()).abs() < 1e-15);
        assert!((s.q025 - 1.1).abs() < 1e-12);
        assert!((s.q975 - 4.9).abs() < 1e-12);
        assert_eq!(Spread::of(&[2.0]).sd, 0.0);
    }
}
