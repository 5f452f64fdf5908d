//! All requested measures on one pair `x`, `y`, as JSON keyed like the reference fixtures'
//! `expected.json` and as text for people.

use serde_json::{Map, Value, json};

use super::SimilarityError;
use super::io::PairInput;
use super::measure::Measure;
use super::ridge::{RidgeR2, RidgeR2Result};
use super::screen::{DEGENERATE_VARIANCE_RATIO, degenerate_columns};

/// Where ridge's held-out rows came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitSource {
    /// `train_idx` / `test_idx` stored beside the data.
    File,
    /// Drawn from the measure's recorded seed.
    Seeded,
}

/// One line of a report.
#[derive(Debug, Clone)]
pub enum ReportEntry {
    Scalar {
        measure: Measure,
        value: f64,
    },
    Ridge {
        /// Key prefix: `ridge-r2` when the report has one ridge measure, else the full name.
        key: String,
        measure: RidgeR2,
        split: SplitSource,
        x_to_y: Box<RidgeR2Result>,
        y_to_x: Box<RidgeR2Result>,
    },
}

/// Every requested measure on one pair.
#[derive(Debug, Clone)]
pub struct SimilarityReport {
    pub n: usize,
    pub dx: usize,
    pub dy: usize,
    /// Degenerate columns of `x` and of `y` (see [`super::screen`]): left out of ridge targets
    /// and of both sides of CKA and CCA.
    pub degenerate_x: Vec<usize>,
    pub degenerate_y: Vec<usize>,
    pub entries: Vec<ReportEntry>,
}

/// Computes `measures` (duplicates dropped, order kept) on `input`. Ridge runs in both
/// directions on the file's split when it has one, else on the measure's seeded split.
pub fn compare_pair(
    input: &PairInput,
    measures: &[Measure],
) -> Result<SimilarityReport, SimilarityError> {
    let mut unique: Vec<&Measure> = Vec::new();
    for m in measures {
        if !unique.contains(&m) {
            unique.push(m);
        }
    }
    let ridge_count = unique
        .iter()
        .filter(|m| matches!(m, Measure::RidgeR2(_)))
        .count();
    let (x, y) = (input.x.as_ref(), input.y.as_ref());
    let mut entries = Vec::with_capacity(unique.len());
    for m in unique {
        match m {
            Measure::RidgeR2(r) => {
                let split = input.split.as_ref();
                let run = |a, b| match split {
                    Some(s) => r.evaluate_with_split(a, b, s),
                    None => r.evaluate(a, b),
                };
                // The directions are independent fits: one per core.
                let (x_to_y, y_to_x) = rayon::join(|| run(x, y), || run(y, x));
                entries.push(ReportEntry::Ridge {
                    key: if ridge_count == 1 {
                        "ridge-r2".to_owned()
                    } else {
                        m.to_string()
                    },
                    measure: r.clone(),
                    split: if split.is_some() {
                        SplitSource::File
                    } else {
                        SplitSource::Seeded
                    },
                    x_to_y: Box::new(x_to_y?),
                    y_to_x: Box::new(y_to_x?),
                });
            }
            other => {
                entries.push(ReportEntry::Scalar {
                    measure: other.clone(),
                    value: other.compute(x, y)?.value(),
                });
            }
        }
    }
    Ok(SimilarityReport {
        n: input.x.nrows(),
        dx: input.x.ncols(),
        dy: input.y.ncols(),
        degenerate_x: degenerate_columns(x, DEGENERATE_VARIANCE_RATIO),
        degenerate_y: degenerate_columns(y, DEGENERATE_VARIANCE_RATIO),
        entries,
    })
}

fn ridge_json(measure: &RidgeR2, split: &SplitSource, r: &RidgeR2Result) -> Value {
    json!({
        "measure": Measure::RidgeR2(measure.clone()).to_string(),
        "alphas": r.alphas,
        "chosen_alpha": r.chosen_alpha,
        "cv": "efficient leave-one-out, mean squared error over all targets",
        "fit_intercept": true,
        "loo_mse": r.loo_mse,
        "gcv_mode": r.gcv_mode,
        "split": match split {
            SplitSource::File => "train_idx/test_idx from the input file".to_owned(),
            SplitSource::Seeded => format!(
                "seeded: test={} seed={}", measure.test_fraction(), measure.seed()
            ),
        },
        "n_train": r.n_train,
        "n_test": r.n_test,
        "r2_test_uniform_average": r.r2_test_uniform_average,
        "sqrt_r2_clamped": r.sqrt_r2_clamped,
        "degenerate_targets": r.degenerate_targets.removed,
    })
}

impl SimilarityReport {
    /// `{"n", "dx", "dy", "cka:linear": v, ..., "ridge-r2(x->y)": {...}, "ridge-r2(y->x)": {...}}`.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("n".into(), json!(self.n));
        obj.insert("dx".into(), json!(self.dx));
        obj.insert("dy".into(), json!(self.dy));
        obj.insert(
            "degenerate_columns".into(),
            json!({
                "rule": "variance below tolerance × the largest column variance; left out of ridge targets, CKA and CCA",
                "tolerance": DEGENERATE_VARIANCE_RATIO,
                "x": self.degenerate_x,
                "y": self.degenerate_y,
            }),
        );
        for e in &self.entries {
            match e {
                ReportEntry::Scalar { measure, value } => {
                    obj.insert(measure.to_string(), json!(value));
                }
                ReportEntry::Ridge {
                    key,
                    measure,
                    split,
                    x_to_y,
                    y_to_x,
                } => {
                    obj.insert(format!("{key}(x->y)"), ridge_json(measure, split, x_to_y));
                    obj.insert(format!("{key}(y->x)"), ridge_json(measure, split, y_to_x));
                }
            }
        }
        Value::Object(obj)
    }

    /// One measure a line; values printed in full (shortest round-trip form).
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} inputs; x: {} features, y: {} features\n",
            self.n, self.dx, self.dy
        );
        for (side, cols) in [("x", &self.degenerate_x), ("y", &self.degenerate_y)] {
            if !cols.is_empty() {
                let list: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
                out.push_str(&format!(
                    "{side}: {} degenerate column(s) left out of ridge targets, CKA and CCA \
                     (variance < {DEGENERATE_VARIANCE_RATIO:e} × the largest): {}\n",
                    cols.len(),
                    list.join(", ")
                ));
            }
        }
        for e in &self.entries {
            match e {
                ReportEntry::Scalar { measure, value } => {
                    let kind = match measure.orientation() {
                        super::Orientation::Similarity => "similarity",
                        super::Orientation::Distance => "distance",
                    };
                    out.push_str(&format!("{:<22} {value}  ({kind})\n", measure.to_string()));
                }
                ReportEntry::Ridge {
                    measure,
                    split,
                    x_to_y,
                    y_to_x,
                    ..
                } => {
                    let split_text = match split {
                        SplitSource::File => "train_idx/test_idx from the file".to_owned(),
                        SplitSource::Seeded => "drawn from the measure's seed".to_owned(),
                    };
                    out.push_str(&format!(
                        "{}  ({} train / {} held-out rows, {split_text})\n",
                        Measure::RidgeR2(measure.clone()),
                        x_to_y.n_train,
                        x_to_y.n_test
                    ));
                    for (dir, r) in [("x->y", &**x_to_y), ("y->x", &**y_to_x)] {
                        out.push_str(&format!(
                            "  {dir}  sqrt(max(R²,0)) = {}  R² = {}  alpha = {}\n",
                            r.sqrt_r2_clamped, r.r2_test_uniform_average, r.chosen_alpha
                        ));
                    }
                }
            }
        }
        out
    }
}
