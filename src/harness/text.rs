//! The text forms of reports: the run's report for people (aligned columns, colour on a
//! terminal) and the stable snapshot of one check.

use super::report::{CheckReport, ExpectationResult, Figure, Status, SuiteReport, UnitKind};

/// Expectation texts are padded to the widest one, up to this many characters.
const MAX_PAD: usize = 56;

fn paint(s: &str, status: Status, colour: bool) -> String {
    if !colour {
        return s.to_string();
    }
    let code = match status {
        Status::Pass => "32",
        Status::Fail => "31;1",
        Status::Unknown => "33",
        Status::Error => "35",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// The whole run: each spec, each unit, one line per expectation with its verdict and figure,
/// the lines that explain a non-pass, and the closing counts.
pub fn suite(r: &SuiteReport, colour: bool) -> String {
    let mut out = String::new();
    let pad = r
        .units
        .iter()
        .flat_map(|u| u.expectations.iter())
        .map(|e| e.expectation.chars().count())
        .max()
        .unwrap_or(0)
        .min(MAX_PAD);
    let mut last_spec: Option<&str> = None;
    for u in &r.units {
        if last_spec != Some(u.spec.as_str()) {
            if last_spec.is_some() {
                out.push('\n');
            }
            out.push_str(&u.spec);
            out.push('\n');
            last_spec = Some(&u.spec);
        }
        out.push_str(&format!("  {}{}\n", u.title(), unit_note(u)));
        for e in &u.expectations {
            out.push_str(&expectation_line(e, pad, colour));
        }
    }
    if !r.units.is_empty() {
        out.push('\n');
    }
    out.push_str(&closing_line(r));
    out
}

/// `(model compiled(x), seed 7)` after a check's title.
fn unit_note(u: &CheckReport) -> String {
    let mut parts = Vec::new();
    if let Some(m) = &u.model {
        parts.push(format!("model {}", m.name));
    }
    if u.kind == UnitKind::Check
        && let Some(s) = u.seed
    {
        parts.push(format!("seed {s}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn expectation_line(e: &ExpectationResult, pad: usize, colour: bool) -> String {
    let word = paint(&format!("{:<7}", e.status.word()), e.status, colour);
    let mut s = format!(
        "    {word} {:<pad$}  {}\n",
        e.expectation,
        e.summary,
        pad = pad
    );
    if e.status != Status::Pass {
        if let Some(c) = &e.counterexample
            && !e.summary.contains(&c.text())
        {
            s.push_str(&format!("             counterexample: {}\n", c.text()));
        }
        for d in &e.details {
            s.push_str(&format!("             {d}\n"));
        }
    }
    s
}

/// `test result: 12 passed, 1 failed, 0 unknown, 0 errors (13 expectations in 2 checks and 5 proofs)`.
pub fn closing_line(r: &SuiteReport) -> String {
    let s = &r.summary;
    let mut line = format!(
        "test result: {} passed, {} failed, {} unknown, {} errors ({} expectations in {} {} and {} {})",
        s.passed,
        s.failed,
        s.unknown,
        s.errors,
        s.expectations,
        s.checks,
        if s.checks == 1 { "check" } else { "checks" },
        s.proofs,
        if s.proofs == 1 { "proof" } else { "proofs" },
    );
    if let Some(sh) = r.shard {
        line.push_str(&format!(", shard {}/{}", sh.index, sh.count));
    }
    if let Some(seed) = r.seed {
        line.push_str(&format!(", --seed {seed}"));
    }
    line.push('\n');
    line
}

/// `x` rounded to `digits` decimals, `-0` shown as `0`.
fn rounded(x: f64, digits: usize) -> String {
    let s = format!("{x:.digits$}");
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

fn figure_text(f: &Figure, digits: usize) -> String {
    let mut s = format!("{} = {}", f.name, rounded(f.value, digits));
    if let Some([lo, hi]) = f.interval {
        s.push_str(&format!(
            " [{}, {}]",
            rounded(lo, digits),
            rounded(hi, digits)
        ));
    }
    if let Some(n) = f.n {
        s.push_str(&format!(" (n = {n})"));
    }
    s
}

/// The stable form of one check's report (see [`CheckReport::snapshot`]).
pub fn snapshot(u: &CheckReport, digits: usize) -> String {
    // The file name only: where a repository is checked out is no part of its science.
    let file = std::path::Path::new(&u.spec)
        .file_name()
        .map_or(u.spec.clone(), |f| f.to_string_lossy().into_owned());
    let mut out = format!("{} in {file}\n", u.title());
    if let Some(m) = &u.model {
        out.push_str(&format!("model {}\n", m.name));
    }
    if let Some(s) = u.seed {
        out.push_str(&format!("seed {s}\n"));
    }
    for e in &u.expectations {
        out.push_str(&format!("{} {}", e.status.word(), e.expectation));
        if let Some(f) = &e.figure {
            out.push_str(&format!(": {}", figure_text(f, digits)));
        }
        out.push('\n');
        if let Some(c) = &e.counterexample {
            out.push_str(&format!("  counterexample: {}\n", c.text()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_hides_changes_below_the_stated_digits() {
        assert_eq!(rounded(0.98349, 2), "0.98");
        assert_eq!(rounded(0.9801, 2), "0.98");
        assert_eq!(rounded(-0.0001, 2), "0.00");
        assert_eq!(rounded(1.0, 3), "1.000");
    }

    #[test]
    fn colour_only_when_asked() {
        assert_eq!(paint("PASS", Status::Pass, false), "PASS");
        assert!(paint("FAIL", Status::Fail, true).starts_with("\x1b[31"));
    }
}
