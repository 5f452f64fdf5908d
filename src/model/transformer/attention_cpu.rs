//! The attention core on the CPU in one pass: scores, mask, soft cap, softmax and the weighted sum
//! of values, per (batch element, head), in parallel over the batch.
//!
//! candle computes the same thing as batched matrix products, which for the short sequences and
//! small heads of interpretability models (a few tokens, 16-dimensional heads) means thousands of
//! tiny GEMM calls plus a copy per transpose; this loop reads q, k and v where they lie
//! (`[batch, pos, head, d_head]`) and writes z in the same layout. Scores are accumulated over
//! the head dimension in order, the softmax's maximum is subtracted first, and masked keys are
//! skipped rather than computed and zeroed: results agree with the tensor path to float rounding
//! (the TransformerLens parity tests cover both paths) and do not depend on the thread count.

use std::mem::MaybeUninit;

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::fused_cpu::{Slots, f32_slice, task_chunks};

/// What the core needs besides q, k and v.
pub(super) struct CoreSpec {
    /// Scores are `q·k / scale`.
    pub scale: f32,
    pub causal: bool,
    pub soft_cap: Option<f32>,
    /// Also return the scores `[batch, head, query, key]` and the pattern.
    pub keep_scores: bool,
    pub keep_pattern: bool,
}

/// z `[b, p, h, e]` and, when asked, scores and pattern `[b, h, p, p]`.
pub(super) struct Core {
    pub z: Tensor,
    pub scores: Option<Tensor>,
    pub pattern: Option<Tensor>,
}

/// Keys scored at once: one 256-bit vector of f32.
const LANES: usize = 8;

/// Runs the core when q `[b,p,h,e]`, k and v `[b,p,kv,e]` (kv divides h: query head j reads
/// key/value head j / (h / kv)) are contiguous f32 on the CPU; `None` otherwise (the caller
/// takes the tensor path).
pub(super) fn attention_core(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    spec: &CoreSpec,
) -> candle_core::Result<Option<Core>> {
    if !matches!(q.device(), Device::Cpu) {
        return Ok(None);
    }
    let (b, p, h, e) = q.dims4()?;
    let kv = k.dim(2)?;
    if kv == 0 || h % kv != 0 || k.dims4()? != (b, p, kv, e) || v.dims4()? != (b, p, kv, e) {
        return Ok(None);
    }
    // Read the three tensors in place (their storage stays locked for reading meanwhile).
    let guards = [q, k, v].map(|t| t.storage_and_layout());
    let (Some(qd), Some(kd), Some(vd)) = (
        f32_slice(&guards[0]),
        f32_slice(&guards[1]),
        f32_slice(&guards[2]),
    ) else {
        return Ok(None);
    };
    let per_b_z = p * h * e;
    let per_b_s = h * p * p;
    let mut z = Slots::new(b * per_b_z);
    let mut scores = Slots::new(if spec.keep_scores { b * per_b_s } else { 0 });
    let mut pattern = Slots::new(if spec.keep_pattern { b * per_b_s } else { 0 });
    let head = Heads {
        qd,
        kd,
        vd,
        dims: (p, h, kv, e),
        spec,
    };
    // Each batch element is independent: its z, scores and pattern slices are written by one
    // task, so the result does not depend on the thread count. Scores and pattern not kept are
    // empty blocks.
    z.slots()
        .par_chunks_mut(per_b_z)
        .zip(task_chunks(scores.slots(), per_b_s, b))
        .zip(task_chunks(pattern.slots(), per_b_s, b))
        .enumerate()
        .for_each(|(bi, ((zb, sb), pb))| head.batch_element(bi, zb, sb, pb));
    drop(guards);
    // SAFETY: one task per batch element wrote all of its z (every query and head) and, when
    // kept, all of its scores and pattern rows.
    #[allow(unsafe_code)]
    let (z, scores, pattern) =
        unsafe { (z.assume_init(), scores.assume_init(), pattern.assume_init()) };
    let dev = Device::Cpu;
    Ok(Some(Core {
        z: Tensor::from_vec(z, (b, p, h, e), &dev)?,
        scores: if spec.keep_scores {
            Some(Tensor::from_vec(scores, (b, h, p, p), &dev)?)
        } else {
            None
        },
        pattern: if spec.keep_pattern {
            Some(Tensor::from_vec(pattern, (b, h, p, p), &dev)?)
        } else {
            None
        },
    }))
}

type Out<'a> = &'a mut [MaybeUninit<f32>];

/// One attention core's inputs, read in place: q `[b,p,h,e]`, k and v `[b,p,kv,e]`.
struct Heads<'a> {
    qd: &'a [f32],
    kd: &'a [f32],
    vd: &'a [f32],
    /// (positions, query heads, key/value heads, head dimension).
    dims: (usize, usize, usize, usize),
    spec: &'a CoreSpec,
}

impl Heads<'_> {
    /// Writes every element of batch element `bi`'s z and, when given, its scores and pattern.
    /// Writes every element of batch element `bi`'s z and of its scores and pattern blocks
    /// (empty when not kept).
    fn batch_element(&self, bi: usize, zb: Out<'_>, sb: Out<'_>, pb: Out<'_>) {
        let (p, h, kv, e) = self.dims;
        let (qd, kd, vd, spec) = (self.qd, self.kd, self.vd, self.spec);
        let (group, scale) = (h / kv, spec.scale);
        let qb = &qd[bi * p * h * e..(bi + 1) * p * h * e];
        let kb = &kd[bi * p * kv * e..(bi + 1) * p * kv * e];
        let vb = &vd[bi * p * kv * e..(bi + 1) * p * kv * e];
        // One key head transposed and zero-padded to whole blocks of eight keys (`[e, pp]`), and
        // one head's scores (`[p, pp]`) and z (`[p, e]`): the products run with the queries in
        // the inner loop, so each query's sums are independent chains the CPU overlaps, and each
        // step is one 8-lane multiply-add over eight keys (scores) or head features (z).
        let pp = p.div_ceil(LANES) * LANES;
        let mut kt = vec![0f32; e * pp];
        let mut sbuf = vec![0f32; p * pp];
        let mut zbuf = vec![0f32; p * e];
        let mut loaded = usize::MAX;
        // Keys after a query are masked: only its first `keys(qi)` scores are computed.
        let keys = |qi: usize| if spec.causal { qi + 1 } else { p };
        for hi in 0..h {
            let ki = hi / group;
            if ki != loaded {
                for kj in 0..p {
                    let kvec = &kb[(kj * kv + ki) * e..(kj * kv + ki + 1) * e];
                    for (j, &x) in kvec.iter().enumerate() {
                        kt[j * pp + kj] = x;
                    }
                }
                loaded = ki;
            }
            sbuf.fill(0.0);
            for j in 0..e {
                let krow = &kt[j * pp..(j + 1) * pp];
                for qi in 0..p {
                    let qj = qb[(qi * h + hi) * e + j];
                    let width = keys(qi).div_ceil(LANES) * LANES;
                    let srow = &mut sbuf[qi * pp..qi * pp + width];
                    for (s, &k) in srow.iter_mut().zip(&krow[..width]) {
                        *s += qj * k;
                    }
                }
            }
            // Scaled (and capped) as a whole: one vectorised pass over the head's scores; the
            // padding and masked entries are overwritten below.
            for s in sbuf.iter_mut() {
                *s /= scale;
            }
            if let Some(cap) = spec.soft_cap {
                for s in sbuf.iter_mut() {
                    *s = (*s / cap).tanh() * cap;
                }
            }
            for qi in 0..p {
                let n = keys(qi);
                let row = &mut sbuf[qi * pp..(qi + 1) * pp];
                let max = row[..n].iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
                row[n..].fill(f32::NEG_INFINITY);
                if !sb.is_empty() {
                    write(&mut sb[(hi * p + qi) * p..(hi * p + qi + 1) * p], &row[..p]);
                }
                // Softmax; a row with no finite score gives zeros (as the tensor path does), and
                // a masked key's weight is exactly zero.
                let max = max.max(f32::MIN);
                let mut sum = 0f32;
                for r in row[..n].iter_mut() {
                    *r = if *r == f32::NEG_INFINITY {
                        0.0
                    } else {
                        (*r - max).exp()
                    };
                    sum += *r;
                }
                row[n..].fill(0.0);
                let sum = if sum == 0.0 { 1.0 } else { sum };
                for r in row[..n].iter_mut() {
                    *r /= sum;
                }
                if !pb.is_empty() {
                    write(&mut pb[(hi * p + qi) * p..(hi * p + qi + 1) * p], &row[..p]);
                }
            }
            zbuf.fill(0.0);
            for kj in 0..p {
                let vvec = &vb[(kj * kv + ki) * e..(kj * kv + ki + 1) * e];
                let first = if spec.causal { kj } else { 0 };
                for qi in first..p {
                    let w = sbuf[qi * pp + kj];
                    if w == 0.0 {
                        continue;
                    }
                    for (o, x) in zbuf[qi * e..(qi + 1) * e].iter_mut().zip(vvec) {
                        *o += w * x;
                    }
                }
            }
            for qi in 0..p {
                write(
                    &mut zb[(qi * h + hi) * e..(qi * h + hi + 1) * e],
                    &zbuf[qi * e..(qi + 1) * e],
                );
            }
        }
    }
}

fn write(slots: &mut [MaybeUninit<f32>], values: &[f32]) {
    for (s, &v) in slots.iter_mut().zip(values) {
        s.write(v);
    }
}
