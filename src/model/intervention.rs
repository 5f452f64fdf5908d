//! Interventions as data: where (`Site`) and what (`Action`).
//!
//! These types live in the model stage because the forward pass applies them at each hook, and
//! the model stage may not import the later `intervene` stage; `crate::intervene` re-exports
//! them and adds the helpers that build actions from runs (source caches, reference means) and
//! interchange-intervention accuracy.
//!
//! Semantics follow TransformerLens' `run_with_hooks`: the hook's value is replaced and
//! everything downstream is recomputed from the replaced value. Several interventions compose:
//! at one hook they apply in the order given, across hooks in forward order. A cached hook
//! holds the value after its interventions (what the rest of the network saw).

use candle_core::{DType, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::error::{ComputeContext, ModelError, fmt_shape};
use super::hooks::HookPoint;

/// Which part of which activation to intervene on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub hook: HookPoint,
    /// One attention head (hooks with a head axis only: q/k/v/z/result/scores/pattern and the
    /// per-head inputs); `None` = all heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<usize>,
    /// Some positions (the query position for scores and patterns); `None` = all positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<Vec<usize>>,
}

impl Site {
    /// The whole activation at `hook`.
    pub fn hook(hook: HookPoint) -> Self {
        Site {
            hook,
            head: None,
            positions: None,
        }
    }

    pub fn with_head(mut self, head: usize) -> Self {
        self.head = Some(head);
        self
    }

    pub fn with_positions(mut self, positions: Vec<usize>) -> Self {
        self.positions = Some(positions);
        self
    }
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.hook)?;
        if let Some(h) = self.head {
            write!(f, "[head {h}]")?;
        }
        if let Some(p) = &self.positions {
            write!(f, "[pos {p:?}]")?;
        }
        Ok(())
    }
}

/// What to put at a site.
#[derive(Clone, Debug)]
pub enum Action {
    /// The value the hook took on a source run (interchange / activation patching). The tensor
    /// has exactly the hook's shape; batch element i of the source goes into batch element i.
    Replace(Tensor),
    /// Zero ablation.
    Zero,
    /// Mean ablation: the mean of the hook over a reference batch, i.e. the hook's shape
    /// without the batch axis (per position, per head).
    Mean(Tensor),
    /// Resample ablation: batch element i receives the activation of element j ≠ i of the same
    /// batch, j drawn uniformly from a ChaCha8 stream seeded with `seed` (one draw per element,
    /// in batch order). Needs a batch of at least two inputs.
    Resample { seed: u64 },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Replace(_) => "replace",
            Action::Zero => "zero",
            Action::Mean(_) => "mean",
            Action::Resample { .. } => "resample",
        }
    }
}

/// One intervention.
#[derive(Clone, Debug)]
pub struct Intervention {
    pub site: Site,
    pub action: Action,
}

impl Intervention {
    pub fn new(site: Site, action: Action) -> Self {
        Intervention { site, action }
    }

    fn err(&self, reason: impl Into<String>) -> ModelError {
        ModelError::Intervention {
            hook: self.site.to_string(),
            reason: reason.into(),
        }
    }

    /// The hook value after this intervention.
    pub(crate) fn apply(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let dims = x.dims().to_vec();
        let axes = self.site.hook.axes();
        let device = x.device();
        let ctx = "applying an intervention";

        let new = match &self.action {
            Action::Zero => x.zeros_like().ctx(ctx)?,
            Action::Replace(src) => {
                if src.dims() != dims.as_slice() {
                    return Err(self.err(format!(
                        "the source activation has shape {}, but the hook's activation has shape {}",
                        fmt_shape(src.dims()),
                        fmt_shape(&dims)
                    )));
                }
                src.to_device(device)
                    .and_then(|t| t.to_dtype(DType::F32))
                    .ctx(ctx)?
            }
            Action::Mean(mean) => {
                if mean.dims() != &dims[1..] {
                    return Err(self.err(format!(
                        "the mean activation has shape {}, expected the hook's shape without the batch axis, {}",
                        fmt_shape(mean.dims()),
                        fmt_shape(&dims[1..])
                    )));
                }
                mean.to_device(device)
                    .and_then(|m| m.to_dtype(DType::F32))
                    .and_then(|m| m.unsqueeze(0))
                    .and_then(|m| m.broadcast_as(dims.as_slice()))
                    .and_then(|m| m.contiguous())
                    .ctx(ctx)?
            }
            Action::Resample { seed } => {
                let n = dims[0];
                if n < 2 {
                    return Err(self.err("resample ablation needs a batch of at least two inputs"));
                }
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                let idx: Vec<u32> = (0..n)
                    .map(|i| {
                        // Uniform over the n-1 other elements.
                        let j = rng.random_range(0..n - 1);
                        (if j >= i { j + 1 } else { j }) as u32
                    })
                    .collect();
                let idx = Tensor::from_vec(idx, n, device).ctx(ctx)?;
                x.index_select(&idx, 0).ctx(ctx)?
            }
        };

        // A 0/1 mask over the selected head and positions, broadcast to the full shape; no
        // selection means the whole activation is replaced.
        let rank = dims.len();
        let mut mask: Option<Tensor> = None;
        if let Some(head) = self.site.head {
            let axis = axes
                .head
                .ok_or_else(|| self.err("this hook has no head axis; remove the head selection"))?;
            if head >= dims[axis] {
                return Err(self.err(format!(
                    "head {head} is out of range: the activation has {} heads",
                    dims[axis]
                )));
            }
            let mut v = vec![0u8; dims[axis]];
            v[head] = 1;
            mask = Some(axis_mask(v, axis, rank, device)?);
        }
        if let Some(positions) = &self.site.positions {
            let axis = axes.pos;
            if positions.is_empty() {
                return Err(self.err("the position list is empty"));
            }
            let mut v = vec![0u8; dims[axis]];
            for &p in positions {
                if p >= dims[axis] {
                    return Err(self.err(format!(
                        "position {p} is out of range: the sequence has {} positions",
                        dims[axis]
                    )));
                }
                v[p] = 1;
            }
            let m = axis_mask(v, axis, rank, device)?;
            mask = Some(match mask {
                Some(h) => h.broadcast_mul(&m).ctx(ctx)?,
                None => m,
            });
        }
        let mask = match mask {
            Some(m) => m,
            None => return Ok(new),
        };
        mask.broadcast_as(dims.as_slice())
            .and_then(|m| m.contiguous())
            .and_then(|m| m.where_cond(&new, x))
            .ctx(ctx)
    }
}

/// A u8 vector laid along `axis` of a rank-`rank` tensor (all other axes of size 1).
fn axis_mask(
    v: Vec<u8>,
    axis: usize,
    rank: usize,
    device: &candle_core::Device,
) -> Result<Tensor, ModelError> {
    let mut shape = vec![1usize; rank];
    shape[axis] = v.len();
    Tensor::from_vec(v, shape.as_slice(), device).ctx("building an intervention mask")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hooks::{AttnHook, BlockHook};
    use candle_core::Device;

    fn z_hook() -> HookPoint {
        HookPoint::attn(0, AttnHook::Z)
    }

    fn arange(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::arange(0f32, n as f32, &Device::Cpu)
            .unwrap()
            .reshape(shape)
            .unwrap()
    }

    /// The hook value after `iv`, flattened.
    fn applied(iv: &Intervention, x: &Tensor) -> Vec<f32> {
        iv.apply(x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    }

    #[test]
    fn replace_one_head_at_some_positions() {
        let x = arange(&[2, 3, 2, 1]); // [batch, pos, head, d_head]
        let src = (arange(&[2, 3, 2, 1]) + 100.0).unwrap();
        let iv = Intervention::new(
            Site::hook(z_hook()).with_head(1).with_positions(vec![0, 2]),
            Action::Replace(src),
        );
        let y = applied(&iv, &x);
        // Element (b, p, h): index b*6 + p*2 + h; patched where h == 1 and p in {0, 2}.
        let expected: Vec<f32> = (0..12)
            .map(|i| {
                let (p, h) = ((i / 2) % 3, i % 2);
                if h == 1 && (p == 0 || p == 2) {
                    i as f32 + 100.0
                } else {
                    i as f32
                }
            })
            .collect();
        assert_eq!(y, expected);
    }

    #[test]
    fn scores_use_query_position_and_head_axis_one() {
        let hook = HookPoint::attn(0, AttnHook::AttnScores);
        let x = arange(&[1, 2, 2, 2]); // [batch, head, q, k]
        let iv = Intervention::new(
            Site::hook(hook).with_head(0).with_positions(vec![1]),
            Action::Zero,
        );
        let y = applied(&iv, &x);
        assert_eq!(y, vec![0., 1., 0., 0., 4., 5., 6., 7.]);
    }

    #[test]
    fn mean_broadcasts_over_batch() {
        let hook = HookPoint::block(0, BlockHook::ResidPre);
        let x = arange(&[2, 2, 1]);
        let mean = Tensor::new(&[[7f32], [9.]], &Device::Cpu).unwrap();
        let iv = Intervention::new(Site::hook(hook).with_positions(vec![1]), Action::Mean(mean));
        let y = applied(&iv, &x);
        assert_eq!(y, vec![0., 9., 2., 9.]);
    }

    #[test]
    fn resample_takes_another_batch_element_deterministically() {
        let hook = HookPoint::block(0, BlockHook::ResidPre);
        let x = arange(&[5, 1, 1]);
        let iv = Intervention::new(Site::hook(hook), Action::Resample { seed: 7 });
        let a = applied(&iv, &x);
        let b = applied(&iv, &x);
        assert_eq!(a, b);
        for (i, v) in a.iter().enumerate() {
            assert_ne!(*v, i as f32, "element {i} kept its own value");
        }
        let one = arange(&[1, 1, 1]);
        assert!(iv.apply(&one).is_err());
    }

    #[test]
    fn bad_sites_are_errors_not_panics() {
        let x = arange(&[1, 3, 2, 1]);
        let resid = HookPoint::block(0, BlockHook::ResidPre);
        for (site, needle) in [
            (Site::hook(z_hook()).with_head(2), "head 2"),
            (Site::hook(z_hook()).with_positions(vec![3]), "position 3"),
            (Site::hook(z_hook()).with_positions(vec![]), "empty"),
            (Site::hook(resid).with_head(0), "no head axis"),
        ] {
            let msg = Intervention::new(site, Action::Zero)
                .apply(&x)
                .unwrap_err()
                .to_string();
            assert!(msg.contains(needle), "{msg}");
        }
        let wrong = Intervention::new(Site::hook(z_hook()), Action::Replace(arange(&[1, 3, 2, 2])));
        let msg = wrong.apply(&x).unwrap_err().to_string();
        assert!(
            msg.contains("[1, 3, 2, 2]") && msg.contains("[1, 3, 2, 1]"),
            "{msg}"
        );
    }

    #[test]
    fn site_serde_uses_tl_names() {
        let site = Site::hook(z_hook()).with_head(1);
        let json = serde_json::to_string(&site).unwrap();
        assert_eq!(json, r#"{"hook":"blocks.0.attn.hook_z","head":1}"#);
        assert_eq!(serde_json::from_str::<Site>(&json).unwrap(), site);
    }
}
