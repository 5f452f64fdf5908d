//! `--plots DIR`: the figures of each check that ran the estimator — its selectivity and transfer
//! heatmaps and the histograms of its replicate win rates — as SVG files named after the spec and
//! the check.

use crate::experiment::compare::CompareReport;
use crate::experiment::plot::{selectivity_svg, transfer_svg, win_rate_histogram_svg};

/// `specs/circuits/tracr_reverse.interp` + `m` → `specs_circuits_tracr_reverse.m`.
fn stem(spec: &str, check: &str) -> String {
    let s = spec.strip_suffix(".interp").unwrap_or(spec);
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.{check}", s.trim_matches('_'))
}

/// The files (name, SVG text) of one check's figures.
pub fn figures(
    spec: &str,
    check: &str,
    r: &CompareReport,
) -> Result<Vec<(String, String)>, String> {
    let base = stem(spec, check);
    let notes = vec![format!(
        "congruity test: check {check} in {spec}; seed {}, {} samples, {} inputs, {} bootstraps × {} draws, ε {}",
        r.seeds.master,
        r.settings.samples,
        r.settings.inputs,
        r.settings.bootstraps,
        r.settings.draws,
        r.settings.epsilon
    )];
    let mut out = Vec::new();
    if let Some(m) = &r.selectivity {
        out.push((
            format!("{base}.selectivity.svg"),
            selectivity_svg(m, &format!("selectivity: {check}"), &notes)
                .map_err(|e| e.to_string())?,
        ));
        out.push((
            format!("{base}.win-rates.svg"),
            win_rate_histogram_svg(m, &format!("replicate win rates: {check}"), &notes)
                .map_err(|e| e.to_string())?,
        ));
    }
    out.push((
        format!("{base}.transfer.svg"),
        transfer_svg(&r.transfer, &format!("transfer: {check}"), &notes)
            .map_err(|e| e.to_string())?,
    ));
    Ok(out)
}
