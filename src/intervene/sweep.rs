//! Activation-patching sweeps, as TransformerLens' `get_act_patch_*` family computes them: the
//! base run gets one site at a time from the source run — every head, every position, every
//! head at every position, or every whole layer of one hook family — and a metric of the patched
//! logits is recorded per site.
//!
//! The source run is computed once, caching the family's hook at every layer, and each patched
//! run reuses that cache (the naive way re-runs the source for every site: twice the forwards).

use std::collections::BTreeSet;

use candle_core::Tensor;
use serde::Serialize;

use super::InterveneError;
use crate::model::{
    Action, BlockHook, HookPoint, HookSelection, Intervention, ModelError, RunOptions, Sidecar,
    Site, TokenBatch, Transformer,
};

/// Which sites a sweep patches, one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SweepKind {
    /// Each head of each layer, at every position: `[n_layers, n_heads]`.
    Heads,
    /// Each position of each layer, all heads: `[n_layers, seq]`.
    Positions,
    /// Each head at each position: `[n_layers, seq, n_heads]`.
    HeadsByPosition,
    /// Each layer's whole activation: `[n_layers]`.
    Layers,
}

impl SweepKind {
    pub const ALL: [SweepKind; 4] = [
        SweepKind::Heads,
        SweepKind::Positions,
        SweepKind::HeadsByPosition,
        SweepKind::Layers,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SweepKind::Heads => "heads",
            SweepKind::Positions => "positions",
            SweepKind::HeadsByPosition => "heads-by-position",
            SweepKind::Layers => "layers",
        }
    }

    /// The names of the result's axes.
    pub fn axes(self) -> &'static [&'static str] {
        match self {
            SweepKind::Heads => &["layer", "head"],
            SweepKind::Positions => &["layer", "position"],
            SweepKind::HeadsByPosition => &["layer", "position", "head"],
            SweepKind::Layers => &["layer"],
        }
    }
}

impl std::str::FromStr for SweepKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SweepKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a sweep (heads, positions, heads-by-position, layers)")
            })
    }
}

/// What is measured on each patched run (at the last position where a metric reads one).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Metric {
    /// Mean over the batch of `logits[b, -1, a] - logits[b, -1, b]`.
    LogitDiff { a: usize, b: usize },
    /// Mean over the batch of the probability of token `a` at the last position.
    Prob { a: usize },
    /// Mean over the batch of KL(source ‖ patched) of the last position's distributions.
    Kl,
    /// The fraction of rows whose decoded answer (every answer position, through the model's
    /// sidecar) equals the source run's.
    Accuracy,
}

impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let id = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{t}` in `{s}` is not a token id"))
        };
        if let Some(rest) = s.strip_prefix("logit-diff:") {
            let (a, b) = rest
                .split_once(',')
                .ok_or_else(|| format!("`{s}`: write logit-diff:A,B with two token ids"))?;
            return Ok(Metric::LogitDiff {
                a: id(a)?,
                b: id(b)?,
            });
        }
        if let Some(rest) = s.strip_prefix("prob:") {
            return Ok(Metric::Prob { a: id(rest)? });
        }
        match s {
            "kl" => Ok(Metric::Kl),
            "accuracy" => Ok(Metric::Accuracy),
            _ => Err(format!(
                "`{s}` is not a metric (logit-diff:A,B, prob:A, kl, accuracy)"
            )),
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Metric::LogitDiff { a, b } => write!(f, "logit-diff:{a},{b}"),
            Metric::Prob { a } => write!(f, "prob:{a}"),
            Metric::Kl => f.write_str("kl"),
            Metric::Accuracy => f.write_str("accuracy"),
        }
    }
}

/// A sweep's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepResult {
    pub kind: SweepKind,
    /// The hook family, e.g. `attn.hook_z`.
    pub hook: String,
    pub metric: String,
    /// The result's shape (see [`SweepKind`]).
    pub shape: Vec<usize>,
    /// Row-major values, one per site.
    pub values: Vec<f64>,
    /// The metric of the unpatched base run and of the source run.
    pub base_metric: f64,
    pub source_metric: f64,
    /// Forward passes run (1 source + 1 base + one per site).
    pub forwards: usize,
}

fn ctx(what: &'static str) -> impl Fn(candle_core::Error) -> ModelError {
    move |e| ModelError::Decode(format!("{what}: {e}"))
}

/// The last position's logits, `[batch, vocab]`, as f64 rows.
fn last_rows(logits: &Tensor) -> Result<Vec<Vec<f64>>, ModelError> {
    let seq = logits.dim(1).map_err(ctx("reading the logits"))?;
    let last = logits
        .narrow(1, seq - 1, 1)
        .and_then(|t| t.squeeze(1))
        .and_then(|t| t.to_dtype(candle_core::DType::F64))
        .and_then(|t| t.to_vec2::<f64>())
        .map_err(ctx("reading the last position's logits"))?;
    Ok(last)
}

fn log_softmax(row: &[f64]) -> Vec<f64> {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
    row.iter().map(|x| x - lse).collect()
}

/// How a metric is read from a run's logits.
struct Meter<'a> {
    metric: &'a Metric,
    /// The source run's last-position log-probabilities (for `kl`).
    source_logp: Vec<Vec<f64>>,
    /// The source run's decoded answers (for `accuracy`).
    source_answers: Vec<Vec<crate::model::OutputValue>>,
    sidecar: Option<&'a Sidecar>,
}

impl Meter<'_> {
    fn measure(&self, logits: &Tensor) -> Result<f64, InterveneError> {
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
        Ok(match self.metric {
            Metric::LogitDiff { a, b } => {
                mean(last_rows(logits)?.iter().map(|r| r[*a] - r[*b]).collect())
            }
            Metric::Prob { a } => mean(
                last_rows(logits)?
                    .iter()
                    .map(|r| log_softmax(r)[*a].exp())
                    .collect(),
            ),
            Metric::Kl => mean(
                last_rows(logits)?
                    .iter()
                    .zip(&self.source_logp)
                    .map(|(r, s)| {
                        let q = log_softmax(r);
                        s.iter().zip(&q).map(|(ls, lq)| ls.exp() * (ls - lq)).sum()
                    })
                    .collect(),
            ),
            Metric::Accuracy => {
                let sc = self.sidecar.ok_or_else(|| {
                    ModelError::Decode(
                        "the accuracy metric decodes answers, and this model has no congruity.json"
                            .into(),
                    )
                })?;
                let got = sc.decode(logits)?;
                let same = got
                    .iter()
                    .zip(&self.source_answers)
                    .filter(|(g, s)| {
                        g.len() == s.len() && g.iter().zip(*s).all(|(x, y)| x.matches(y, 1e-3))
                    })
                    .count();
                same as f64 / got.len().max(1) as f64
            }
        })
    }
}

/// Checks that the metric's token ids exist in the model's output.
fn check_metric(metric: &Metric, vocab: usize) -> Result<(), InterveneError> {
    let ids: Vec<usize> = match metric {
        Metric::LogitDiff { a, b } => vec![*a, *b],
        Metric::Prob { a } => vec![*a],
        _ => vec![],
    };
    if let Some(bad) = ids.into_iter().find(|i| *i >= vocab) {
        return Err(ModelError::Tokens(format!(
            "metric `{metric}` names token {bad}, but the model's output has {vocab} tokens"
        ))
        .into());
    }
    Ok(())
}

/// Runs a sweep: `base` gets each site of `family` (a block hook such as `attn.hook_z`) from the
/// `source` run, one at a time (see the module documentation).
pub fn sweep(
    model: &Transformer,
    sidecar: Option<&Sidecar>,
    base: &TokenBatch,
    source: &TokenBatch,
    family: BlockHook,
    kind: SweepKind,
    metric: &Metric,
) -> Result<SweepResult, InterveneError> {
    super::check_pair(base, source)?;
    let cfg = model.config();
    check_metric(metric, cfg.d_vocab_out)?;
    let (n_layers, n_heads, seq) = (cfg.n_layers, cfg.n_heads, base.len());
    let hooks: Vec<HookPoint> = (0..n_layers).map(|l| HookPoint::block(l, family)).collect();
    let has_head = hooks[0].axes().head.is_some();
    if matches!(kind, SweepKind::Heads | SweepKind::HeadsByPosition) && !has_head {
        return Err(ModelError::AbsentHook {
            hook: hooks[0].to_string(),
            reason: format!(
                "a `{}` sweep patches single heads, and this hook has no head axis",
                kind.name()
            ),
        }
        .into());
    }
    for h in &hooks {
        model.check_site(&Site::hook(*h))?;
    }
    // The source run once, every layer's activation of the family kept.
    let wanted: BTreeSet<HookPoint> = hooks.iter().copied().collect();
    let src = model.forward(source, &RunOptions::cache(HookSelection::Only(wanted)))?;
    let base_logits = model.forward(base, &RunOptions::default())?.logits;
    let source_rows = last_rows(&src.logits)?;
    let meter = Meter {
        metric,
        source_logp: source_rows.iter().map(|r| log_softmax(r)).collect(),
        source_answers: match (metric, sidecar) {
            (Metric::Accuracy, Some(sc)) => sc.decode(&src.logits)?,
            _ => Vec::new(),
        },
        sidecar,
    };
    let sites: Vec<Site> = (0..n_layers)
        .flat_map(|l| {
            let h = hooks[l];
            let s: Vec<Site> = match kind {
                SweepKind::Heads => (0..n_heads).map(|k| Site::hook(h).with_head(k)).collect(),
                SweepKind::Positions => (0..seq)
                    .map(|p| Site::hook(h).with_positions(vec![p]))
                    .collect(),
                SweepKind::HeadsByPosition => (0..seq)
                    .flat_map(|p| {
                        (0..n_heads)
                            .map(move |k| Site::hook(h).with_head(k).with_positions(vec![p]))
                    })
                    .collect(),
                SweepKind::Layers => vec![Site::hook(h)],
            };
            s
        })
        .collect();
    let mut values = Vec::with_capacity(sites.len());
    for site in sites {
        let act = src
            .cache
            .get(&site.hook)
            .cloned()
            .ok_or_else(|| ModelError::AbsentHook {
                hook: site.hook.to_string(),
                reason: "not produced by the source run".into(),
            })?;
        let iv = [Intervention::new(site, Action::Replace(act))];
        let logits = model.forward(base, &RunOptions::intervene(&iv))?.logits;
        values.push(meter.measure(&logits)?);
    }
    let shape = match kind {
        SweepKind::Heads => vec![n_layers, n_heads],
        SweepKind::Positions => vec![n_layers, seq],
        SweepKind::HeadsByPosition => vec![n_layers, seq, n_heads],
        SweepKind::Layers => vec![n_layers],
    };
    let forwards = 2 + values.len();
    Ok(SweepResult {
        kind,
        hook: family.to_string(),
        metric: metric.to_string(),
        shape,
        values,
        base_metric: meter.measure(&base_logits)?,
        source_metric: meter.measure(&src.logits)?,
        forwards,
    })
}

/// A hook family named without its layer (`attn.hook_z`, `hook_resid_pre`).
pub fn parse_family(name: &str) -> Result<BlockHook, ModelError> {
    match format!("blocks.0.{name}").parse::<HookPoint>() {
        Ok(HookPoint::Block { hook, .. }) => Ok(hook),
        _ => Err(ModelError::AbsentHook {
            hook: name.to_string(),
            reason: "is not a block hook family; name it without its layer, e.g. attn.hook_z, hook_resid_pre, hook_mlp_out".into(),
        }),
    }
}
