//! Where implementations come from, and the shared engine that fetches their representations and
//! computes every fit a test needs.
//!
//! A test first draws all its index tuples from its seed (sequentially), then asks the engine for
//! the distinct fits those tuples need. The engine fetches each representation once and prepares
//! each source side once (one ridge factorisation per `x` serves all its targets), computing in
//! parallel with rayon. Every fit is a pure function of its two representations, and results are
//! gathered into ordered maps, so the outcome is the same whatever the thread count.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use serde::Serialize;

use super::EquivalenceError;
use super::representation::Representation;
use crate::progress::Progress;
use crate::similarity::{DEGENERATE_VARIANCE_RATIO, Measure, Orientation, Score};

/// A pool of implementations of one interpretation (or of one model family), addressable by
/// index. The compiler's sampler implements this: index `i` is the implementation sampled from
/// the seed derived from `i`, run on the common inputs and pooled.
///
/// Contract: `representation(i)` is deterministic in `i`, and all representations of all sources
/// compared together are on the same inputs (same [`super::InputsId`] and row count).
pub trait ImplementationSource: Sync {
    /// Names the pool in reports. Two sources with the same label are the same pool: tests then
    /// never compare an implementation with itself.
    fn label(&self) -> &str;
    /// Number of implementations available.
    fn count(&self) -> usize;
    /// The representation of implementation `index` (`index < count()`).
    fn representation(&self, index: usize) -> Result<Representation, EquivalenceError>;
}

/// Representations held in memory.
#[derive(Debug, Clone)]
pub struct RepresentationSet {
    label: String,
    items: Vec<Representation>,
}

impl RepresentationSet {
    pub fn new(label: impl Into<String>, items: Vec<Representation>) -> Self {
        Self {
            label: label.into(),
            items,
        }
    }
}

impl ImplementationSource for RepresentationSet {
    fn label(&self) -> &str {
        &self.label
    }

    fn count(&self) -> usize {
        self.items.len()
    }

    fn representation(&self, index: usize) -> Result<Representation, EquivalenceError> {
        self.items
            .get(index)
            .cloned()
            .ok_or_else(|| EquivalenceError::out_of_range(&self.label, index, self.items.len()))
    }
}

/// Implementation `index` of the source at position `source` in a test's source list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ImplRef {
    pub source: usize,
    pub index: usize,
}

/// Raw measure values for ordered pairs `fit(from → to)`.
pub(crate) struct FitTable {
    orientation: Orientation,
    values: BTreeMap<(ImplRef, ImplRef), f64>,
    degenerate: DegenerateColumns,
}

/// The degenerate columns (constant up to rounding) the measure left out of the representations
/// a test used; see [`crate::similarity::screen`]. A representation whose columns are removed is
/// listed once, whichever side of a fit it was on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DegenerateColumns {
    /// Relative variance tolerance: below it times the largest column variance, a column is left
    /// out.
    pub tolerance: f64,
    pub removed: Vec<RemovedColumns>,
}

/// The columns left out of one implementation's representation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemovedColumns {
    /// `pool[index]`.
    pub implementation: String,
    pub columns: Vec<usize>,
}

impl DegenerateColumns {
    /// One line for people, or `None` when nothing was removed.
    pub fn to_text(&self) -> Option<String> {
        if self.removed.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .removed
            .iter()
            .map(|r| format!("{} ({})", r.implementation, r.columns.len()))
            .collect();
        Some(format!(
            "degenerate columns left out (variance < {:e} × the largest): {}",
            self.tolerance,
            parts.join(", ")
        ))
    }
}

impl FitTable {
    /// The measure's value for `from → to` (must have been requested).
    pub(crate) fn value(&self, from: ImplRef, to: ImplRef) -> f64 {
        self.values[&(from, to)]
    }

    pub(crate) fn degenerate(&self) -> &DegenerateColumns {
        &self.degenerate
    }

    /// The value turned so that larger means more similar.
    pub(crate) fn oriented(&self, from: ImplRef, to: ImplRef) -> f64 {
        let v = self.value(from, to);
        match self.orientation {
            Orientation::Similarity => v,
            Orientation::Distance => -v,
        }
    }
}

fn check_index(sources: &[&dyn ImplementationSource], r: ImplRef) -> Result<(), EquivalenceError> {
    let src = sources[r.source];
    if r.index >= src.count() {
        return Err(EquivalenceError::IndexOutOfRange {
            label: src.label().to_owned(),
            index: r.index,
            count: src.count(),
        });
    }
    Ok(())
}

/// One fit, and the columns its measure left out of each side.
type FitEntry = ((ImplRef, ImplRef), Score);

/// Fetches the representations and computes `measure` for every requested ordered pair.
pub(crate) fn compute_fits(
    sources: &[&dyn ImplementationSource],
    measure: &Measure,
    pairs: impl IntoIterator<Item = (ImplRef, ImplRef)>,
    progress: &Progress,
) -> Result<FitTable, EquivalenceError> {
    let mut by_source: BTreeMap<ImplRef, BTreeSet<ImplRef>> = BTreeMap::new();
    for (from, to) in pairs {
        by_source.entry(from).or_default().insert(to);
    }
    let needed: BTreeSet<ImplRef> = by_source
        .iter()
        .flat_map(|(from, tos)| std::iter::once(*from).chain(tos.iter().copied()))
        .collect();
    for r in &needed {
        check_index(sources, *r)?;
    }
    let needed: Vec<ImplRef> = needed.into_iter().collect();
    let fetched: Vec<Result<Representation, EquivalenceError>> = needed
        .par_iter()
        .map(|r| {
            let src = sources[r.source];
            src.representation(r.index)
                .map_err(|e| EquivalenceError::Source {
                    label: src.label().to_owned(),
                    index: r.index,
                    source: Box::new(e),
                })
        })
        .collect();
    let mut reps: BTreeMap<ImplRef, Representation> = BTreeMap::new();
    for (r, rep) in needed.iter().zip(fetched) {
        reps.insert(*r, rep?);
    }
    check_aligned(sources, &reps)?;

    let groups: Vec<(ImplRef, Vec<ImplRef>)> = by_source
        .into_iter()
        .map(|(from, tos)| (from, tos.into_iter().collect()))
        .collect();
    let describe = |r: ImplRef| format!("{}[{}]", sources[r.source].label(), r.index);
    let total: usize = groups.iter().map(|(_, tos)| tos.len()).sum();
    let pb = progress.bar(total as u64, "fits");
    let computed: Vec<Result<Vec<FitEntry>, EquivalenceError>> = groups
        .par_iter()
        .map(|(from, tos)| {
            let prepared =
                measure
                    .prepare(reps[from].matrix())
                    .map_err(|source| EquivalenceError::Fit {
                        from: describe(*from),
                        to: "(any)".into(),
                        source,
                    })?;
            tos.par_iter()
                .map(|to| {
                    prepared
                        .score(reps[to].matrix())
                        .map(|v| ((*from, *to), v))
                        .map_err(|source| EquivalenceError::Fit {
                            from: describe(*from),
                            to: describe(*to),
                            source,
                        })
                        .inspect(|_| pb.inc(1))
                })
                .collect()
        })
        .collect();
    pb.finish_and_clear();
    let mut values = BTreeMap::new();
    let mut removed: BTreeMap<ImplRef, Vec<usize>> = BTreeMap::new();
    for group in computed {
        for ((from, to), score) in group? {
            for (r, screening) in [(from, &score.x_removed), (to, &score.y_removed)] {
                if !screening.is_empty() {
                    removed.insert(r, screening.removed.clone());
                }
            }
            values.insert((from, to), score.value());
        }
    }
    Ok(FitTable {
        orientation: measure.orientation(),
        values,
        degenerate: DegenerateColumns {
            tolerance: DEGENERATE_VARIANCE_RATIO,
            removed: removed
                .into_iter()
                .map(|(r, columns)| RemovedColumns {
                    implementation: describe(r),
                    columns,
                })
                .collect(),
        },
    })
}

/// All representations must stand for the same inputs, row by row.
fn check_aligned(
    sources: &[&dyn ImplementationSource],
    reps: &BTreeMap<ImplRef, Representation>,
) -> Result<(), EquivalenceError> {
    let mut iter = reps.iter();
    let Some((first_ref, first)) = iter.next() else {
        return Ok(());
    };
    for (r, rep) in iter {
        if rep.inputs() != first.inputs() || rep.n_inputs() != first.n_inputs() {
            return Err(EquivalenceError::NotAligned {
                first: format!("{}[{}]", sources[first_ref.source].label(), first_ref.index),
                first_inputs: first.inputs().to_string(),
                first_rows: first.n_inputs(),
                other: format!("{}[{}]", sources[r.source].label(), r.index),
                other_inputs: rep.inputs().to_string(),
                other_rows: rep.n_inputs(),
            });
        }
    }
    Ok(())
}

/// An index uniform over `0..count` without `avoid` (`count ≥ 2`): one draw, shifted past it.
pub(crate) fn pick_other(rng: &mut impl rand::Rng, count: usize, avoid: usize) -> usize {
    let x = rng.random_range(0..count - 1);
    if x >= avoid { x + 1 } else { x }
}

/// An index uniform over `0..first`, then one uniform over `0..second` that differs from it when
/// both are drawn from one pool (`same_pool`; then `first == second`).
pub(crate) fn draw_pair(
    rng: &mut impl rand::Rng,
    first: usize,
    second: usize,
    same_pool: bool,
) -> (usize, usize) {
    let a = rng.random_range(0..first);
    let b = if same_pool {
        pick_other(rng, second, a)
    } else {
        rng.random_range(0..second)
    };
    (a, b)
}

/// A seed for stream `stream` derived from `seed` (SplitMix64 finaliser, chained), so that every
/// cell, replicate and bootstrap has its own reproducible generator independent of scheduling.
pub fn derive_seed(seed: u64, stream: &[u64]) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    stream.iter().fold(mix(seed), |h, &s| {
        mix(h ^ mix(s.wrapping_add(0xD1B5_4A32_D192_ED03)))
    })
}
