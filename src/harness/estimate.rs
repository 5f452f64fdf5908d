//! Verdicts from the interpretive-equivalence estimate: `congruent`, `distinguishable` and
//! `indistinguishable`, read off one comparison per check.
//!
//! Each direction of a comparison is one of three things:
//! - **apart**: its win rate is significant *and* its mean fit gap exceeds ε (the estimator's
//!   distinguishable verdict);
//! - **within ε**: its mean fit gap is at most ε, whatever the win rate (a difference too small
//!   to be about mechanism);
//! - **undecided**: the gap exceeds ε but the win rate is not significant (more draws would
//!   decide).
//!
//! `distinguishable(I, J)` passes when a direction is apart and fails when both are within ε;
//! `indistinguishable(I, J)` the reverse; anything else is `unknown`. `congruent(I)` passes when
//! the model is closer to I than to every other compared interpretation (apart) and I's
//! membership test does not reject it; it fails when a closer test is within ε or membership
//! rejects it.

use super::report::{Figure, Status};
use crate::equivalence::point::WinSummary;
use crate::experiment::compare::CompareReport;

/// How one direction of a comparison came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Apart,
    WithinEpsilon,
    Undecided,
}

pub fn direction(w: &WinSummary) -> Direction {
    if w.significant && w.effect.above_epsilon() {
        Direction::Apart
    } else if !w.effect.above_epsilon() {
        Direction::WithinEpsilon
    } else {
        Direction::Undecided
    }
}

/// `0.881 [0.859, 0.900], gap 5.9e-7 vs ε 1.0e-4`.
pub fn describe(w: &WinSummary) -> String {
    format!(
        "{:.3} [{:.3}, {:.3}] over {} draws, mean gap {:.2e} vs ε {:.1e}{}",
        w.win_rate,
        w.clopper_pearson.lower,
        w.clopper_pearson.upper,
        w.draws,
        w.effect.mean_gap,
        w.effect.epsilon,
        match direction(w) {
            Direction::Apart => ": apart",
            Direction::WithinEpsilon => ": within ε",
            Direction::Undecided => ": not significant, gap above ε (undecided)",
        }
    )
}

fn figure(name: &str, w: &WinSummary) -> Figure {
    Figure {
        name: name.to_string(),
        value: w.win_rate,
        interval: Some([w.clopper_pearson.lower, w.clopper_pearson.upper]),
        confidence: Some(0.95),
        n: Some(w.draws),
    }
}

/// A verdict with its figure, one-line summary and details.
pub struct Judged {
    pub status: Status,
    pub figure: Option<Figure>,
    pub summary: String,
    pub details: Vec<String>,
}

fn cell<'a>(r: &'a CompareReport, g1: &str, g2: &str) -> Option<&'a WinSummary> {
    let m = r.selectivity.as_ref()?;
    let i = m.labels.iter().position(|l| l == g1)?;
    let j = m.labels.iter().position(|l| l == g2)?;
    Some(&m.cells[i][j].pooled)
}

/// `distinguishable(a, b)` (`want_apart`) or `indistinguishable(a, b)`.
pub fn pair(r: &CompareReport, a: &str, b: &str, want_apart: bool) -> Judged {
    let (Some(ab), Some(ba)) = (cell(r, a, b), cell(r, b, a)) else {
        return Judged {
            status: Status::Error,
            figure: None,
            summary: format!("the comparison has no selectivity cell for {a} and {b}"),
            details: vec![],
        };
    };
    let (dab, dba) = (direction(ab), direction(ba));
    let apart = dab == Direction::Apart || dba == Direction::Apart;
    let within = dab == Direction::WithinEpsilon && dba == Direction::WithinEpsilon;
    let status = match (want_apart, apart, within) {
        (true, true, _) | (false, false, true) => Status::Pass,
        (true, false, true) | (false, true, _) => Status::Fail,
        _ => Status::Unknown,
    };
    // The figure is the direction that separates most.
    let (w, from, to) = if ab.win_rate >= ba.win_rate {
        (ab, a, b)
    } else {
        (ba, b, a)
    };
    let verdict = if apart {
        "told apart"
    } else if within {
        "not told apart: both gaps within ε"
    } else {
        "undecided: a gap above ε is not significant"
    };
    Judged {
        status,
        figure: Some(figure("win rate", w)),
        summary: format!(
            "win rate {:.3} [{:.3}, {:.3}] ({from} → {to}), gap {:.2e} vs ε {:.1e}: {verdict}",
            w.win_rate,
            w.clopper_pearson.lower,
            w.clopper_pearson.upper,
            w.effect.mean_gap,
            w.effect.epsilon
        ),
        details: vec![
            format!("{a} vs {b} (a, b ∈ {a}; c ∈ {b}): {}", describe(ab)),
            format!("{b} vs {a} (a, b ∈ {b}; c ∈ {a}): {}", describe(ba)),
        ],
    }
}

/// `congruent(own)`: the model's closer tests against every other compared interpretation and
/// its membership test in `own`.
pub fn congruent(r: &CompareReport, own: &str) -> Judged {
    let closer: Vec<_> = r
        .model_tests
        .iter()
        .filter(|t| t.own == own && t.other.is_some())
        .collect();
    let membership = r
        .model_tests
        .iter()
        .find(|t| t.own == own && t.other.is_none());
    let Some(membership) = membership.filter(|_| !closer.is_empty()) else {
        return Judged {
            status: Status::Error,
            figure: None,
            summary: format!("the comparison has no model test against {own}"),
            details: vec![],
        };
    };
    let mut details = Vec::new();
    let mut any_within = false;
    let mut all_apart = true;
    for t in &closer {
        let d = direction(&t.summary);
        any_within |= d == Direction::WithinEpsilon;
        all_apart &= d == Direction::Apart;
        details.push(format!(
            "closer to {own} than to {}: {}",
            t.other.as_deref().unwrap_or("?"),
            describe(&t.summary)
        ));
    }
    let rejected = direction(&membership.summary) == Direction::Apart;
    details.push(format!(
        "membership in {own}: {}{}",
        describe(&membership.summary),
        if rejected {
            " (rejected)"
        } else {
            " (not rejected)"
        }
    ));
    let status = if any_within || rejected {
        Status::Fail
    } else if all_apart {
        Status::Pass
    } else {
        Status::Unknown
    };
    // The figure is the weakest closer test.
    let weakest = closer
        .iter()
        .min_by(|x, y| x.summary.win_rate.total_cmp(&y.summary.win_rate))
        .map(|t| (&t.summary, t.other.clone().unwrap_or_default()));
    let (w, other) = weakest.expect("closer is not empty");
    let why = match status {
        Status::Pass => "closer to it than to every alternative, and a member".to_string(),
        Status::Fail if rejected => {
            format!("its membership test rejects the model as one of {own}'s implementations")
        }
        Status::Fail => "no closer to it than to an alternative, within ε".to_string(),
        _ => "undecided: a closer test's gap above ε is not significant".to_string(),
    };
    Judged {
        status,
        figure: Some(figure("closer win rate", w)),
        summary: format!(
            "closer win rate {:.3} [{:.3}, {:.3}] (vs {other}), gap {:.2e} vs ε {:.1e}: {why}",
            w.win_rate,
            w.clopper_pearson.lower,
            w.clopper_pearson.upper,
            w.effect.mean_gap,
            w.effect.epsilon
        ),
        details,
    }
}
