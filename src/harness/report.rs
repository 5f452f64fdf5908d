//! What a test run found, as data: verdicts with their figures, per expectation, per check, per
//! suite. Everything here is a pure function of the specs, models and seeds (no timings, no
//! absolute paths the run did not name), so the same inputs give the same JSON bytes.

use serde::{Deserialize, Serialize};

/// The format tag of a suite report.
pub const FORMAT: &str = "congruity-test/1";

/// One expectation's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The hypothesis holds.
    Pass,
    /// The hypothesis is false.
    Fail,
    /// The evidence does not decide it (a proof timed out, an interval straddles the bound): never
    /// a pass.
    Unknown,
    /// It could not be tested (the model cannot be decoded, the estimator failed).
    Error,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Unknown => "UNKNOWN",
            Status::Error => "ERROR",
        }
    }
}

/// The number behind a verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// What it measures: `iia`, `accuracy`, `win rate`, `cka:linear`, ...
    pub name: String,
    pub value: f64,
    /// Its confidence interval where the figure is estimated from draws.
    pub interval: Option<[f64; 2]>,
    /// The interval's confidence level.
    pub confidence: Option<f64>,
    /// How many draws, inputs or interchanges it counts.
    pub n: Option<usize>,
}

/// An input that shows a failure: what the model said and what the interpretation says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The input as text (`a c b`).
    pub input: String,
    /// For an interchange: the source input whose values were patched in.
    pub source: Option<String>,
    /// For an interchange: the variable set from the source.
    pub variable: Option<String>,
    pub got: String,
    pub want: String,
}

impl Counterexample {
    /// `"a c b" -> "b c a", want "b a c"` (with the interchange's source and variable).
    pub fn text(&self) -> String {
        let mut s = format!("\"{}\"", self.input);
        match (&self.source, &self.variable) {
            (Some(src), Some(var)) => s.push_str(&format!(" with {var} from \"{src}\"")),
            (Some(src), None) => s.push_str(&format!(" and \"{src}\"")),
            _ => {}
        }
        s.push_str(&format!(" -> \"{}\", want \"{}\"", self.got, self.want));
        s
    }
}

/// The verdict of one `expect` (or one `prove`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// As written (`iia(c) >= 0.95`), or the proof goal (`equivalent(a, b)`).
    pub expectation: String,
    pub status: Status,
    /// One line with the figure and the bound: `iia = 0.983 >= 0.95`.
    pub summary: String,
    pub figure: Option<Figure>,
    /// Further lines: each compared direction, each variable, coverage.
    pub details: Vec<String>,
    pub counterexample: Option<Counterexample>,
    /// The seed that reproduces the figure.
    pub seed: Option<u64>,
}

/// A file and its content hash.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileHash {
    pub path: String,
    pub sha256: String,
}

/// The model a check tested.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// As the check names it: `"../models/reverse"` or `compiled(tracr_reverse, seed 0)`.
    pub name: String,
    /// The directory read (for a compiled model, its place in the cache).
    pub dir: String,
    /// Every file of the directory, relative to it, with its sha256.
    pub files: Vec<FileHash>,
}

/// The settings of a check's statistical expectations, as used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckSettings {
    /// Implementations sampled per compared interpretation.
    pub samples: usize,
    /// `trained` when the check's implementations are trained (`samples N family trained`);
    /// absent for compiled ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Common inputs of the comparison and of `similarity`.
    pub inputs: usize,
    pub bootstraps: usize,
    pub draws: usize,
    /// `data` or the check's `epsilon`.
    pub epsilon: String,
    /// Interchange pairs per circuit variable for `iia`.
    pub iia_pairs: usize,
    pub confidence: f64,
}

/// Whether a unit is a `check` block or a `prove` block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    Check,
    Prove,
}

/// The report of one `check` (or one `prove`) block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Position in the whole run's list of units (before filtering and sharding): the order of
    /// the report, and what merging shards sorts by.
    pub index: usize,
    /// The spec file, as the run named it.
    pub spec: String,
    pub kind: UnitKind,
    pub name: String,
    pub model: Option<ModelInfo>,
    /// The check's seed (its `seed`, or the run's `--seed`, which overrides every seed).
    pub seed: Option<u64>,
    pub settings: Option<CheckSettings>,
    pub expectations: Vec<ExpectationResult>,
}

impl CheckReport {
    /// `check tracr_reverse_model` / `prove equivalent_a_b`.
    pub fn title(&self) -> String {
        match self.kind {
            UnitKind::Check => format!("check {}", self.name),
            UnitKind::Prove => format!("prove {}", self.name),
        }
    }

    /// The worst status of the unit's expectations (`Pass` when it has none).
    pub fn status(&self) -> Status {
        worst(self.expectations.iter().map(|e| e.status))
    }

    /// Whether every expectation holds.
    pub fn passed(&self) -> bool {
        self.status() == Status::Pass
    }

    /// A stable text form for snapshot tests (`insta::assert_snapshot!(report.snapshot())`):
    /// verdicts, expectations and figures rounded to [`SNAPSHOT_DIGITS`] decimals, seeds; no
    /// hashes, cache paths or timings, so that only a change of the science changes it.
    pub fn snapshot(&self) -> String {
        self.snapshot_with(SNAPSHOT_DIGITS)
    }

    /// [`snapshot`](Self::snapshot) with figures rounded to `digits` decimals.
    pub fn snapshot_with(&self, digits: usize) -> String {
        super::text::snapshot(self, digits)
    }
}

/// Figures in [`CheckReport::snapshot`] are rounded to this many decimals.
pub const SNAPSHOT_DIGITS: usize = 2;

/// The worst of some statuses: fail > error > unknown > pass.
pub fn worst(statuses: impl Iterator<Item = Status>) -> Status {
    statuses
        .max_by_key(|s| match s {
            Status::Pass => 0,
            Status::Unknown => 1,
            Status::Error => 2,
            Status::Fail => 3,
        })
        .unwrap_or(Status::Pass)
}

/// Which part of a sharded run a report holds: shard `index` of `count` (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `K/N` with `1 <= K <= N`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not K/N (e.g. 1/4)"))?;
        let parse = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{x}` in `{s}` is not a whole number"))
        };
        let (index, count) = (parse(k)?, parse(n)?);
        if count == 0 || index == 0 || index > count {
            return Err(format!(
                "`{s}`: K must be from 1 to N and N at least 1 (shards are numbered 1..=N)"
            ));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether the unit at `index` of the whole run belongs to this shard (round robin: shards
    /// differ by at most one unit).
    pub fn holds(&self, index: usize) -> bool {
        index % self.count == self.index - 1
    }
}

/// Counts over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub checks: usize,
    pub proofs: usize,
    pub expectations: usize,
    pub passed: usize,
    pub failed: usize,
    pub unknown: usize,
    pub errors: usize,
}

/// The report of a whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuiteReport {
    pub format: String,
    /// `congruity 0.1.0`.
    pub tool: String,
    /// `--seed`, when it overrode every seed.
    pub seed: Option<u64>,
    pub filter: Option<String>,
    pub shard: Option<Shard>,
    /// Every spec file the run found, with its sha256 (all of them, also those a filter or a
    /// shard left without units, so shards list the same specs).
    pub specs: Vec<FileHash>,
    pub units: Vec<CheckReport>,
    pub summary: Summary,
}

impl SuiteReport {
    /// A report from its parts; the summary is counted from the units.
    pub fn assemble(
        seed: Option<u64>,
        filter: Option<String>,
        shard: Option<Shard>,
        specs: Vec<FileHash>,
        mut units: Vec<CheckReport>,
    ) -> SuiteReport {
        units.sort_by_key(|u| u.index);
        let mut s = Summary::default();
        for u in &units {
            match u.kind {
                UnitKind::Check => s.checks += 1,
                UnitKind::Prove => s.proofs += 1,
            }
            for e in &u.expectations {
                s.expectations += 1;
                match e.status {
                    Status::Pass => s.passed += 1,
                    Status::Fail => s.failed += 1,
                    Status::Unknown => s.unknown += 1,
                    Status::Error => s.errors += 1,
                }
            }
        }
        SuiteReport {
            format: FORMAT.to_string(),
            tool: tool_version(),
            seed,
            filter,
            shard,
            specs,
            units,
            summary: s,
        }
    }

    /// 0 when everything holds, 1 when a hypothesis is false, 2 when one could not be decided or
    /// could not run (and none is false).
    pub fn exit_code(&self) -> u8 {
        if self.summary.failed > 0 {
            1
        } else if self.summary.unknown > 0 || self.summary.errors > 0 {
            2
        } else {
            0
        }
    }

    /// The JSON form: the same run gives the same bytes.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the report: {e}\"}}"));
        s.push('\n');
        s
    }

    /// The text form for people (no colour).
    pub fn to_text(&self) -> String {
        super::text::suite(self, false)
    }

    /// The text form, with the verdicts in colour when `colour` (for a terminal).
    pub fn to_text_with(&self, colour: bool) -> String {
        super::text::suite(self, colour)
    }
}

/// The tool and its version, as every report names it.
pub fn tool_version() -> String {
    format!("congruity {}", env!("CARGO_PKG_VERSION"))
}

/// Why shard reports cannot be merged.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum MergeError {
    #[error("{path}: not a congruity test report: {reason}")]
    #[diagnostic(code(congruity::report::read))]
    Read { path: String, reason: String },
    #[error(
        "{path}: {what} differs from {first}'s ({theirs} vs {ours}); shards of one run agree on it"
    )]
    #[diagnostic(code(congruity::report::mismatch))]
    Mismatch {
        path: String,
        first: String,
        what: &'static str,
        ours: String,
        theirs: String,
    },
    #[error(
        "{path} is not a shard (it has no `shard`); merge takes the reports of `--shard K/N` runs"
    )]
    #[diagnostic(code(congruity::report::not_a_shard))]
    NotAShard { path: String },
    #[error("shard {index}/{count} is {problem}")]
    #[diagnostic(
        code(congruity::report::shards),
        help("merge takes exactly one report of each shard 1..=N of one run")
    )]
    Shards {
        index: usize,
        count: usize,
        problem: &'static str,
    },
    #[error("no reports to merge")]
    #[diagnostic(code(congruity::report::empty))]
    Empty,
}

/// Combines the reports of shards `1/N ... N/N` of one run into the report the unsharded run
/// writes, byte for byte.
pub fn merge(reports: &[(String, SuiteReport)]) -> Result<SuiteReport, MergeError> {
    let Some((first_path, first)) = reports.first() else {
        return Err(MergeError::Empty);
    };
    let Some(first_shard) = first.shard else {
        return Err(MergeError::NotAShard {
            path: first_path.clone(),
        });
    };
    let count = first_shard.count;
    let mut seen = vec![false; count];
    let mut units = Vec::new();
    for (path, r) in reports {
        let mismatch = |what: &'static str, ours: String, theirs: String| MergeError::Mismatch {
            path: path.clone(),
            first: first_path.clone(),
            what,
            ours,
            theirs,
        };
        if r.format != first.format {
            return Err(mismatch(
                "the format",
                first.format.clone(),
                r.format.clone(),
            ));
        }
        if r.tool != first.tool {
            return Err(mismatch(
                "the tool version",
                first.tool.clone(),
                r.tool.clone(),
            ));
        }
        if r.seed != first.seed {
            return Err(mismatch(
                "the seed",
                format!("{:?}", first.seed),
                format!("{:?}", r.seed),
            ));
        }
        if r.filter != first.filter {
            return Err(mismatch(
                "the filter",
                format!("{:?}", first.filter),
                format!("{:?}", r.filter),
            ));
        }
        if r.specs != first.specs {
            return Err(mismatch(
                "the list of specs and their hashes",
                format!("{} files", first.specs.len()),
                format!("{} files", r.specs.len()),
            ));
        }
        let Some(shard) = r.shard else {
            return Err(MergeError::NotAShard { path: path.clone() });
        };
        if shard.count != count {
            return Err(mismatch(
                "the number of shards",
                count.to_string(),
                shard.count.to_string(),
            ));
        }
        if shard.index == 0 || shard.index > count || seen[shard.index - 1] {
            return Err(MergeError::Shards {
                index: shard.index,
                count,
                problem: "given twice",
            });
        }
        seen[shard.index - 1] = true;
        units.extend(r.units.iter().cloned());
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(MergeError::Shards {
            index: missing + 1,
            count,
            problem: "missing",
        });
    }
    Ok(SuiteReport::assemble(
        first.seed,
        first.filter.clone(),
        None,
        first.specs.clone(),
        units,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(index: usize, status: Status) -> CheckReport {
        CheckReport {
            index,
            spec: "a.interp".into(),
            kind: UnitKind::Check,
            name: format!("c{index}"),
            model: None,
            seed: Some(0),
            settings: None,
            expectations: vec![ExpectationResult {
                expectation: "implements(x)".into(),
                status,
                summary: String::new(),
                figure: None,
                details: vec![],
                counterexample: None,
                seed: None,
            }],
        }
    }

    #[test]
    fn shards_split_round_robin_and_parse_one_based() {
        let s: Shard = "2/3".parse().unwrap();
        assert_eq!(s, Shard { index: 2, count: 3 });
        let held: Vec<usize> = (0..7).filter(|i| s.holds(*i)).collect();
        assert_eq!(held, [1, 4]);
        for bad in ["0/3", "4/3", "1/0", "x/2", "3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        // Every unit in exactly one shard.
        for i in 0..20 {
            let owners = (1..=3)
                .filter(|k| {
                    Shard {
                        index: *k,
                        count: 3,
                    }
                    .holds(i)
                })
                .count();
            assert_eq!(owners, 1);
        }
    }

    #[test]
    fn exit_codes_rank_failure_over_unknown() {
        let r = |s: Vec<Status>| {
            let units = s.into_iter().enumerate().map(|(i, s)| unit(i, s)).collect();
            SuiteReport::assemble(None, None, None, vec![], units).exit_code()
        };
        assert_eq!(r(vec![Status::Pass, Status::Pass]), 0);
        assert_eq!(r(vec![Status::Pass, Status::Unknown]), 2);
        assert_eq!(r(vec![Status::Error, Status::Pass]), 2);
        assert_eq!(r(vec![Status::Unknown, Status::Fail]), 1);
        assert_eq!(r(vec![]), 0);
    }

    #[test]
    fn merge_restores_the_unsharded_report_and_refuses_gaps() {
        let units: Vec<CheckReport> = (0..5).map(|i| unit(i, Status::Pass)).collect();
        let whole = SuiteReport::assemble(Some(3), None, None, vec![], units.clone());
        let shard = |k: usize| {
            let sh = Shard { index: k, count: 2 };
            let mine = units
                .iter()
                .filter(|u| sh.holds(u.index))
                .cloned()
                .collect();
            (
                format!("s{k}.json"),
                SuiteReport::assemble(Some(3), None, Some(sh), vec![], mine),
            )
        };
        // Order of the arguments does not matter.
        let merged = merge(&[shard(2), shard(1)]).unwrap();
        assert_eq!(merged.to_json(), whole.to_json());
        assert!(matches!(
            merge(&[shard(1)]),
            Err(MergeError::Shards { index: 2, .. })
        ));
        assert!(matches!(
            merge(&[shard(1), shard(1)]),
            Err(MergeError::Shards { index: 1, .. })
        ));
        let other_seed = {
            let (p, mut r) = shard(2);
            r.seed = Some(4);
            (p, r)
        };
        assert!(matches!(
            merge(&[shard(1), other_seed]),
            Err(MergeError::Mismatch {
                what: "the seed",
                ..
            })
        ));
        assert!(matches!(
            merge(&[("w.json".into(), whole)]),
            Err(MergeError::NotAShard { .. })
        ));
    }
}
