//! Verdicts and counterexamples, for people (text) and machines (JSON with sorted keys).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::lang::domain::token_text;
use crate::lang::ir::Value;

/// The result of one proof.
#[derive(Clone, Debug, Serialize)]
pub struct ProofReport {
    /// The proof's name as the spec gives it.
    pub name: String,
    /// The goal, e.g. `equivalent(by_length, by_sorting)`.
    pub goal: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Why a proved goal holds by construction (a `sufficient` circuit that lists the output or
    /// cuts every path from the tokens to it): the proof then says nothing about how the output
    /// is computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trivially: Option<String>,
    /// One entry per sequence length, shortest first.
    pub lengths: Vec<LengthReport>,
    /// Wall time of the whole proof (not serialized: reports stay byte-stable).
    #[serde(skip)]
    pub elapsed: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    Proved,
    /// A counterexample z3 found and the evaluator confirmed.
    Refuted {
        counterexample: Counterexample,
    },
    Unknown {
        reason: String,
    },
}

impl Verdict {
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Proved => "proved",
            Verdict::Refuted { .. } => "refuted",
            Verdict::Unknown { .. } => "unknown",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum LengthStatus {
    Proved,
    Refuted,
    Unknown { reason: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct LengthReport {
    pub length: usize,
    #[serde(flatten)]
    pub status: LengthStatus,
    #[serde(skip)]
    pub elapsed: Duration,
}

/// A concrete input (two for `sufficient`) on which the goal fails, with what the evaluator
/// computed there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Counterexample {
    pub length: usize,
    #[serde(serialize_with = "ser_inputs")]
    pub inputs: Vec<Vec<Value>>,
    /// Values that should be equal and are not.
    pub differences: Vec<Difference>,
    /// Evaluation failures on the input(s), e.g. an ambiguous categorical aggregate.
    pub errors: Vec<String>,
}

/// `what` at `position`: `left` on one side, `right` on the other (the first and second program,
/// or for `sufficient` the first and second input), as the evaluator prints values. For a
/// selector, `position` is the query row and the sides list the selected key positions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    pub what: String,
    pub position: usize,
    pub left: String,
    pub right: String,
}

fn ser_inputs<S: serde::Serializer>(v: &[Vec<Value>], s: S) -> Result<S::Ok, S::Error> {
    let strs: Vec<Vec<String>> = v
        .iter()
        .map(|x| x.iter().map(token_text).collect())
        .collect();
    strs.serialize(s)
}

/// An input as `congruity eval` reads it: tokens separated by spaces.
pub fn tokens(v: &[Value]) -> String {
    let items: Vec<String> = v.iter().map(token_text).collect();
    items.join(" ")
}

fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

impl ProofReport {
    /// One line with the verdict and time; a refutation adds the input(s) and what differs.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{:<8} {} ({}) {}",
            self.verdict.word(),
            self.name,
            self.goal,
            secs(self.elapsed)
        );
        match &self.verdict {
            Verdict::Proved => {
                if let Some(why) = &self.trivially {
                    let _ = write!(s, "\n    trivially: {why}");
                }
            }
            Verdict::Unknown { reason } => {
                let _ = write!(s, "\n    reason: {reason}");
            }
            Verdict::Refuted { counterexample: c } => {
                for (i, inp) in c.inputs.iter().enumerate() {
                    // As `congruity eval` reads it.
                    let label = if c.inputs.len() == 1 {
                        "input".to_string()
                    } else {
                        format!("input {}", i + 1)
                    };
                    let _ = write!(s, "\n    {label}: {}", tokens(inp));
                }
                for d in &c.differences {
                    let _ = write!(
                        s,
                        "\n    {} at {}: {} vs {}",
                        d.what, d.position, d.left, d.right
                    );
                }
                for e in &c.errors {
                    let _ = write!(s, "\n    error: {e}");
                }
            }
        }
        s
    }

    /// Wall-clock times, kept apart from the stable report: total and per length, in seconds.
    pub fn timings(&self) -> serde_json::Value {
        serde_json::json!({
            "total_s": self.elapsed.as_secs_f64(),
            "lengths_s": self.lengths.iter().map(|l| l.elapsed.as_secs_f64()).collect::<Vec<_>>(),
        })
    }

    /// The per-length table: length, status and time.
    pub fn length_table(&self) -> String {
        let mut s = String::new();
        for l in &self.lengths {
            let status = match &l.status {
                LengthStatus::Proved => "proved".to_string(),
                LengthStatus::Refuted => "refuted".to_string(),
                LengthStatus::Unknown { reason } => format!("unknown ({reason})"),
            };
            let _ = writeln!(
                s,
                "    n={:<3} {:<10} {}",
                l.length,
                status,
                secs(l.elapsed)
            );
        }
        s
    }
}

/// JSON with every object's keys sorted, so that equal reports are equal bytes.
pub fn sorted_json(v: &impl Serialize) -> serde_json::Value {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut entries: Vec<(String, serde_json::Value)> =
                    m.into_iter().map(|(k, v)| (k, sort(v))).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().collect())
            }
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    sort(serde_json::to_value(v).unwrap_or(serde_json::Value::Null))
}
