//! The attention core on the CPU in one pass: scores, mask, soft cap, softmax and the weighted sum
//! of values, per (batch element, head), in parallel over the batch.
//!
//! candle computes the same thing as batched matrix products, which for the short sequences and
//! small heads of interpretability models (a few tokens, 16-dimensional heads) means thousands of
//! tiny GEMM calls plus a copy per transpose; this loop reads q, k and v where they lie
//! (`[batch, pos, head, d_head]`) and writes z in the same layout. The arithmetic is the same as
//! the tensor path's, in the same order per element (dot products summed left to right, the
//! softmax's maximum subtracted first), so results agree to float rounding; the TransformerLens
//! parity tests cover both paths.

use candle_core::{Device, Storage, Tensor};
use rayon::prelude::*;

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

/// `a · b` with eight running sums (so the compiler can keep them in one vector register), then
/// added up: the order of additions differs from a GEMM's, within float rounding.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    acc.iter().sum::<f32>() + tail
}

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
    let mut slices: Vec<&[f32]> = Vec::with_capacity(3);
    for (storage, layout) in &guards {
        let Storage::Cpu(cpu) = &**storage else {
            return Ok(None);
        };
        let Ok(data) = cpu.as_slice::<f32>() else {
            return Ok(None);
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            return Ok(None);
        };
        slices.push(&data[start..end]);
    }
    let (qd, kd, vd) = (slices[0], slices[1], slices[2]);
    let group = h / kv;
    let per_b_z = p * h * e;
    let per_b_s = h * p * p;
    let mut z = vec![0f32; b * per_b_z];
    let mut scores = if spec.keep_scores {
        vec![0f32; b * per_b_s]
    } else {
        Vec::new()
    };
    let mut pattern = if spec.keep_pattern {
        vec![0f32; b * per_b_s]
    } else {
        Vec::new()
    };
    let scale = spec.scale;
    // Each batch element is independent: its z, scores and pattern slices are written by one
    // task, so the result does not depend on the thread count.
    let work = |bi: usize, zb: &mut [f32], sb: Option<&mut [f32]>, pb: Option<&mut [f32]>| {
        let qb = &qd[bi * p * h * e..(bi + 1) * p * h * e];
        let kb = &kd[bi * p * kv * e..(bi + 1) * p * kv * e];
        let vb = &vd[bi * p * kv * e..(bi + 1) * p * kv * e];
        let mut row = vec![0f32; p];
        let (mut sb, mut pb) = (sb, pb);
        for hi in 0..h {
            let ki = hi / group;
            for qi in 0..p {
                let qv = &qb[(qi * h + hi) * e..(qi * h + hi + 1) * e];
                let mut max = f32::NEG_INFINITY;
                for (kj, r) in row.iter_mut().enumerate() {
                    if spec.causal && kj > qi {
                        *r = f32::NEG_INFINITY;
                        continue;
                    }
                    let kvec = &kb[(kj * kv + ki) * e..(kj * kv + ki + 1) * e];
                    let mut s = dot(qv, kvec) / scale;
                    if let Some(cap) = spec.soft_cap {
                        s = (s / cap).tanh() * cap;
                    }
                    *r = s;
                    max = max.max(s);
                }
                if let Some(sb) = sb.as_deref_mut() {
                    sb[(hi * p + qi) * p..(hi * p + qi + 1) * p].copy_from_slice(&row);
                }
                // Softmax; a row with no finite score gives zeros (as the tensor path does).
                let max = max.max(f32::MIN);
                let mut sum = 0f32;
                for r in row.iter_mut() {
                    *r = (*r - max).exp();
                    sum += *r;
                }
                let sum = if sum == 0.0 { 1.0 } else { sum };
                for r in row.iter_mut() {
                    *r /= sum;
                }
                if let Some(pb) = pb.as_deref_mut() {
                    pb[(hi * p + qi) * p..(hi * p + qi + 1) * p].copy_from_slice(&row);
                }
                let out = &mut zb[(qi * h + hi) * e..(qi * h + hi + 1) * e];
                for (kj, &w) in row.iter().enumerate() {
                    if w == 0.0 {
                        continue;
                    }
                    let vvec = &vb[(kj * kv + ki) * e..(kj * kv + ki + 1) * e];
                    for (o, x) in out.iter_mut().zip(vvec) {
                        *o += w * x;
                    }
                }
            }
        }
    };
    match (spec.keep_scores, spec.keep_pattern) {
        (false, false) => z
            .par_chunks_mut(per_b_z)
            .enumerate()
            .for_each(|(bi, zb)| work(bi, zb, None, None)),
        (true, false) => z
            .par_chunks_mut(per_b_z)
            .zip(scores.par_chunks_mut(per_b_s))
            .enumerate()
            .for_each(|(bi, (zb, sb))| work(bi, zb, Some(sb), None)),
        (false, true) => z
            .par_chunks_mut(per_b_z)
            .zip(pattern.par_chunks_mut(per_b_s))
            .enumerate()
            .for_each(|(bi, (zb, pb))| work(bi, zb, None, Some(pb))),
        (true, true) => z
            .par_chunks_mut(per_b_z)
            .zip(scores.par_chunks_mut(per_b_s))
            .zip(pattern.par_chunks_mut(per_b_s))
            .enumerate()
            .for_each(|(bi, ((zb, sb), pb))| work(bi, zb, Some(sb), Some(pb))),
    }
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
