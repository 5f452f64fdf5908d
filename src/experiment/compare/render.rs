//! The comparison report for people (aligned text) and for machines (JSON, same seed → same
//! bytes).

use std::fmt::Write;

use super::CompareReport;
use crate::equivalence::point::Verdict;
use crate::equivalence::square_table;
use crate::equivalence::stats::IntervalMethod;
use crate::equivalence::transfer::TransferMatrix;

fn interval_name(m: IntervalMethod) -> &'static str {
    match m {
        IntervalMethod::Wilson => "Wilson",
        IntervalMethod::ClopperPearson => "Clopper–Pearson",
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Distinguishable => "distinguishable",
        Verdict::NotDistinguished => "not distinguished",
    }
}

impl CompareReport {
    /// The decisive interval of a win summary.
    fn decisive(
        &self,
        s: &crate::equivalence::point::WinSummary,
    ) -> crate::equivalence::stats::Interval {
        match self.settings.interval {
            IntervalMethod::Wilson => s.wilson,
            IntervalMethod::ClopperPearson => s.clopper_pearson,
        }
    }

    /// The report for people. Same report, same text.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        self.write_header(&mut o);
        let _ = writeln!(o);
        self.write_pools(&mut o);
        self.write_degenerate(&mut o);
        self.write_selectivity(&mut o);
        self.write_model_tests(&mut o);
        let _ = writeln!(o);
        o.push_str(&transfer_text(&self.transfer));
        self.write_intervention(&mut o);
        o
    }

    /// The confidence in percent and the interval method's name, as the text says them.
    fn confidence_words(&self) -> (f64, &'static str) {
        (
            self.settings.confidence * 100.0,
            interval_name(self.settings.interval),
        )
    }

    /// The width of the pool-label column.
    fn label_width(&self) -> usize {
        self.pools
            .iter()
            .map(|p| p.label.len())
            .max()
            .unwrap_or(5)
            .max(5)
    }

    fn write_header(&self, o: &mut String) {
        let (pct, iv) = self.confidence_words();
        let _ = writeln!(
            o,
            "congruity compare: interpretive equivalence by sampled implementations"
        );
        let given = self.pools.iter().all(|p| p.kind == "representations");
        if given {
            if let Some(file) = self.spec.last() {
                let _ = writeln!(
                    o,
                    "representations {} (sha256 {}): {} inputs per representation; seed {}",
                    file.path,
                    &file.sha256[..16],
                    self.inputs.count,
                    self.seeds.master
                );
            }
            let _ = writeln!(o, "measure         {}", self.settings.measure);
        } else {
            if let Some(root) = self.spec.last() {
                let _ = writeln!(
                    o,
                    "spec            {} (sha256 {}; {} imported file(s))",
                    root.path,
                    &root.sha256[..16],
                    self.spec.len() - 1
                );
            }
            let lengths = self
                .inputs
                .lengths
                .iter()
                .map(|(l, c)| format!("{l}:{c}"))
                .collect::<Vec<_>>()
                .join(" ");
            let _ = writeln!(
                o,
                "inputs          {} from task `{}` (length:count {lengths}); id {}",
                self.inputs.count, self.inputs.task, self.inputs.id
            );
            let _ = writeln!(o, "representation  {}", self.settings.representation);
            let _ = writeln!(o, "measure         {}", self.settings.measure);
            // Interpretations whose implementations were given (`--pool`), not sampled.
            let given: Vec<&str> = self
                .pools
                .iter()
                .filter(|p| p.kind != "models" && !p.dirs.is_empty())
                .map(|p| p.label.as_str())
                .collect();
            let sampled = self
                .pools
                .iter()
                .filter(|p| p.kind != "models" && p.dirs.is_empty())
                .count();
            if sampled > 0 {
                let _ = writeln!(
                    o,
                    "sampling        K = {} per interpretation; families {}; seed {}",
                    self.settings.samples,
                    if self.settings.families.is_empty() {
                        "none (every implementation is the compiled model)".to_string()
                    } else {
                        self.settings.families.join(", ")
                    },
                    self.seeds.master
                );
            }
            if !given.is_empty() {
                let _ = writeln!(
                    o,
                    "given           implementations of {} read from their pool directories (not sampled); seed {}",
                    given.join(", "),
                    self.seeds.master
                );
            }
        }
        let _ = writeln!(
            o,
            "tests           {} bootstraps × {} draws per selectivity cell; {} draws per model / intervention test; {pct}% {iv} intervals",
            self.settings.bootstraps, self.settings.draws, self.settings.draws
        );
        let _ = writeln!(
            o,
            "effect size     a verdict also needs its mean fit gap above ε; ε = {}",
            if self.settings.epsilon == "data" {
                "the range (max − min) of each test's within-pool fits (at least 1e-4)".to_owned()
            } else {
                self.settings.epsilon.clone()
            }
        );
    }

    /// Every implementation whose representation had degenerate columns left out, over all
    /// tests (once each).
    fn write_degenerate(&self, o: &mut String) {
        let mut all = std::collections::BTreeMap::new();
        let mut tolerance = None;
        let lists = self
            .selectivity
            .iter()
            .map(|s| &s.degenerate)
            .chain(self.model_tests.iter().map(|t| &t.degenerate))
            .chain(std::iter::once(&self.transfer.degenerate))
            .chain(self.intervention.iter().map(|r| &r.result.degenerate));
        for d in lists {
            tolerance = Some(d.tolerance);
            for r in &d.removed {
                all.insert(r.implementation.clone(), r.columns.len());
            }
        }
        if let (Some(tol), false) = (tolerance, all.is_empty()) {
            let list: Vec<String> = all.iter().map(|(k, n)| format!("{k} ({n})")).collect();
            let _ = writeln!(
                o,
                "degenerate columns left out of the fits (variance < {tol:e} × the largest column's): {}",
                list.join(", ")
            );
        }
    }

    fn write_pools(&self, o: &mut String) {
        let w = self.label_width();
        let _ = writeln!(o, "pools");
        for p in &self.pools {
            let what = if p.kind == "models" {
                p.dirs.join(", ")
            } else if !p.dirs.is_empty() {
                format!("{} (given: {})", p.stages.join(" |> "), p.dirs.join(", "))
            } else {
                p.stages.join(" |> ")
            };
            let _ = writeln!(
                o,
                "  {:w$}  {:14}  {:>3} impl.  features {}..{}  {what}",
                p.label, p.kind, p.count, p.features[0], p.features[1]
            );
        }
    }

    fn write_selectivity(&self, o: &mut String) {
        let (pct, iv) = self.confidence_words();
        let w = self.label_width();
        if let Some(sel) = &self.selectivity {
            let _ = writeln!(o);
            o.push_str(&sel.to_text());
            let m = sel.labels.len();
            if m > 1 {
                let _ = writeln!(o);
                let _ = writeln!(
                    o,
                    "pairs (all bootstraps pooled; win rate [{pct}% {iv}] in each direction; mean gap = mean of fit(a→b) − fit(a→c), against ε)"
                );
                for i in 0..m {
                    for j in (i + 1)..m {
                        let (a, b) = (&sel.cells[i][j].pooled, &sel.cells[j][i].pooled);
                        let (ia, ib) = (self.decisive(a), self.decisive(b));
                        let both = a.verdict == Verdict::Distinguishable
                            && b.verdict == Verdict::Distinguishable;
                        let any = a.verdict == Verdict::Distinguishable
                            || b.verdict == Verdict::Distinguishable;
                        let word = if both {
                            "distinguishable (both directions)"
                        } else if any {
                            "distinguishable (one direction)"
                        } else {
                            "not distinguished"
                        };
                        let _ = writeln!(
                            o,
                            "  {:w$} vs {:w$}  {:.3} [{:.3}, {:.3}] / {:.3} [{:.3}, {:.3}]  mean gap {:.1e} / {:.1e} (ε {:.1e} / {:.1e})  {word}",
                            sel.labels[i],
                            sel.labels[j],
                            a.win_rate,
                            ia.lower,
                            ia.upper,
                            b.win_rate,
                            ib.lower,
                            ib.upper,
                            sel.cells[i][j].gap.mean,
                            sel.cells[j][i].gap.mean,
                            a.effect.epsilon,
                            b.effect.epsilon,
                        );
                    }
                }
            }
        }
    }

    fn write_model_tests(&self, o: &mut String) {
        let (pct, iv) = self.confidence_words();
        if !self.model_tests.is_empty() {
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "models against interpretations ({} draws each; win rate [{pct}% {iv}])",
                self.settings.draws
            );
            for t in &self.model_tests {
                let i = self.decisive(&t.summary);
                let line = match &t.other {
                    Some(other) => format!(
                        "  {} closer to {} than to {}: fit(m↔b) > fit(m↔c) in {:.3} [{:.3}, {:.3}] (1 − mean fit {:.2e} vs {:.2e}; {}): {}",
                        t.model,
                        t.own,
                        other,
                        t.summary.win_rate,
                        i.lower,
                        i.upper,
                        1.0 - t.mean_own_fit,
                        1.0 - t.mean_other_fit,
                        t.summary.why(),
                        verdict_word(t.summary.verdict)
                    ),
                    None => format!(
                        "  {} member of {}: fit(a→b) > fit(m→b) in {:.3} [{:.3}, {:.3}] (1 − mean fit {:.2e} vs {:.2e}; {}): {}",
                        t.model,
                        t.own,
                        t.summary.win_rate,
                        i.lower,
                        i.upper,
                        1.0 - t.mean_own_fit,
                        1.0 - t.mean_other_fit,
                        t.summary.why(),
                        match t.summary.verdict {
                            Verdict::Distinguishable =>
                                "rejected (distinguishable from the members)",
                            Verdict::NotDistinguished => "not rejected",
                        }
                    ),
                };
                let _ = writeln!(o, "{line}");
            }
            for v in &self.model_verdicts {
                let _ = writeln!(
                    o,
                    "  verdict: {} {} with {}{}",
                    v.model,
                    if v.congruent {
                        "congruent"
                    } else {
                        "NOT congruent"
                    },
                    v.interpretation,
                    if v.distinguishable_from.is_empty() {
                        " (distinguishable from no alternative)".to_string()
                    } else {
                        format!(
                            " (distinguishable from {})",
                            v.distinguishable_from.join(", ")
                        )
                    }
                );
            }
        }
    }

    fn write_intervention(&self, o: &mut String) {
        for r in &self.intervention {
            let x = &r.result;
            let i = match self.settings.interval {
                IntervalMethod::Wilson => x.wilson,
                IntervalMethod::ClopperPearson => x.clopper_pearson,
            };
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "intervention: circuit `{}`{} patched in {} (sites of implementation 0: {}; {})",
                r.circuit,
                r.variable
                    .as_ref()
                    .map(|v| format!(", variable `{v}`,"))
                    .unwrap_or_default(),
                x.clean,
                r.patched_sites
                    .first()
                    .map(|h| h.join(" "))
                    .unwrap_or_default(),
                r.mapping.describe()
            );
            let _ = writeln!(
                o,
                "  targets {}: fit(r→t) > fit(r_patched→t) in {:.3} [{:.3}, {:.3}] (mean gap {:.1e}), {} ties; one-sided p = {:.3e} (exact), {:.3e} (z = {:.2}): {}",
                x.targets,
                x.win_rate,
                i.lower,
                i.upper,
                x.mean_gap,
                x.ties,
                x.test.p_exact,
                x.test.p_z,
                x.test.z,
                if x.significant {
                    "relies on what was patched"
                } else {
                    "no evidence it relies on what was patched"
                }
            );
        }
    }

    /// The report as JSON: stable key order, same seed → same bytes.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the report: {e}\"}}"));
        s.push('\n');
        s
    }
}

/// The transfer matrix with five decimals (fits of exact implementations sit close to 1, where
/// three decimals hide the differences the tests act on).
pub fn transfer_text(t: &TransferMatrix) -> String {
    let cell = |i: usize, j: usize, text: &dyn Fn(f64, f64) -> String| match &t.cells[i][j].fit {
        Some(s) => text(s.mean, s.sd),
        None => "—".into(),
    };
    let mut o = format!(
        "transfer: mean fit(row → column) ± sd over implementation pairs; measure {}\n",
        t.measure
    );
    o.push_str(&square_table(&t.labels, "from \\ to", 15, |i, j| {
        cell(i, j, &|mean, sd| format!("{mean:.5}±{sd:.5}"))
    }));
    let near_one = t
        .cells
        .iter()
        .flatten()
        .any(|c| c.fit.is_some_and(|f| f.mean > 0.999));
    if near_one {
        o.push_str("1 − mean fit (the same cells, where fits crowd 1):\n");
        o.push_str(&square_table(&t.labels, "from \\ to", 15, |i, j| {
            cell(i, j, &|mean, _| format!("{:.2e}", 1.0 - mean))
        }));
    }
    o
}
