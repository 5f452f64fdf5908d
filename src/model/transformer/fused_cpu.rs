//! The forward's elementwise stages on the CPU, each in one parallel pass.
//!
//! candle's CPU backend runs every elementwise operation as its own single-threaded pass with
//! its own output allocation: a layer norm is nine passes (mean, subtract, square, mean, add,
//! square root, divide, scale, shift), a biased activation three. At interpretability sizes
//! (short sequences, d_model 64) those passes, not the matrix products, are most of a forward.
//! Here each stage reads its input once and writes what the hooks need, rows split over rayon in
//! fixed blocks; every row is computed by one task with the tensor path's operations (only the
//! norms' sums run in eight lanes), so results do not depend on the thread count and agree with
//! the tensor path to float rounding (the activations to the bit).
//!
//! Outputs are written once, never zeroed first: each is allocated uninitialised and every
//! element is written by exactly one task ([`Slots`]), and a linear layer's output starts as its
//! bias rows, into which the GEMM accumulates ([`linear`]). Those are this module's `unsafe`
//! blocks, each with its SAFETY argument.
//!
//! Every function returns `None` when it does not apply (another device or dtype, a
//! non-contiguous layout, a tensor that carries gradients): the caller then takes the tensor
//! path, which training and the other devices use.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::ops::Deref;

use candle_core::op::{Gelu, GeluErf, Silu, UnaryOpT};
use candle_core::{Device, Layout, Storage, Tensor};
use rayon::prelude::*;

use super::super::config::ActFn;

/// Rows per parallel task: large enough to amortise scheduling, fixed so the partition never
/// depends on the thread count.
const ROWS_PER_TASK: usize = 256;

/// The tensor's elements when it is a contiguous f32 tensor on the CPU (whether it may be read
/// outside autograd is [`eligible`]'s question).
pub(super) fn f32_slice<'a>(
    guard: &'a (impl Deref<Target = Storage>, &Layout),
) -> Option<&'a [f32]> {
    let (storage, layout) = guard;
    let Storage::Cpu(cpu) = &**storage else {
        return None;
    };
    let data = cpu.as_slice::<f32>().ok()?;
    let (start, end) = layout.contiguous_offsets()?;
    Some(&data[start..end])
}

/// `Some(None)` without a tensor, `Some(Some(elements))` for a readable one (see [`f32_slice`]),
/// `None` when the tensor is there but cannot be read in place.
fn optional_slice<'a>(
    guard: &'a Option<(impl Deref<Target = Storage>, &Layout)>,
) -> Option<Option<&'a [f32]>> {
    match guard {
        Some(g) => f32_slice(g).map(Some),
        None => Some(None),
    }
}

/// An output of `len` f32 being written: its slots are handed out in disjoint blocks, and
/// [`Slots::assume_init`] turns it into the vector once every slot has been written.
pub(super) struct Slots {
    v: Vec<f32>,
    len: usize,
}

impl Slots {
    pub(super) fn new(len: usize) -> Self {
        Slots {
            v: Vec::with_capacity(len),
            len,
        }
    }

    pub(super) fn slots(&mut self) -> &mut [MaybeUninit<f32>] {
        &mut self.v.spare_capacity_mut()[..self.len]
    }

    /// # Safety
    /// Every one of the `len` slots must have been written.
    pub(super) unsafe fn assume_init(mut self) -> Vec<f32> {
        // SAFETY: the capacity is at least `len` (`new`), and the caller wrote every slot.
        unsafe { self.v.set_len(self.len) };
        self.v
    }
}

/// Whether the fused passes may read `t`: on the CPU and not part of an autograd graph.
fn eligible(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && !t.track_op()
}

/// How a normalization layer centres and scales its input.
#[derive(Clone, Copy, Debug)]
pub(super) struct NormSpec {
    /// LayerNorm subtracts the mean first; RMS norm does not.
    pub centre: bool,
    pub eps: f64,
    pub keep_scale: bool,
    /// Write `hook_normalized` even when the layer's output is another tensor.
    pub keep_normalized: bool,
}

/// What a normalization pass produces: `hook_scale` and `hook_normalized` (when kept) and the
/// layer's output (the normalized tensor itself when the layer has no weight and bias).
pub(super) struct Normed {
    pub scale: Option<Tensor>,
    pub normalized: Option<Tensor>,
    pub out: Tensor,
}

/// A layer norm or RMS norm over the last axis of `x`, with optional weight `w` and bias `b`
/// (each `[d]`), computed as the tensor path does: `scale = sqrt(mean(c²) + eps)`,
/// `normalized = c / scale`, `out = normalized · w + b`.
pub(super) fn norm(
    x: &Tensor,
    w: Option<&Tensor>,
    b: Option<&Tensor>,
    spec: NormSpec,
) -> candle_core::Result<Option<Normed>> {
    if !eligible(x) || w.is_some_and(|t| !eligible(t)) || b.is_some_and(|t| !eligible(t)) {
        return Ok(None);
    }
    let dims = x.dims().to_vec();
    let Some(&d) = dims.last() else {
        return Ok(None);
    };
    if d == 0 || w.is_some_and(|t| t.dims() != [d]) || b.is_some_and(|t| t.dims() != [d]) {
        return Ok(None);
    }
    let guards = (
        x.storage_and_layout(),
        w.map(|t| t.storage_and_layout()),
        b.map(|t| t.storage_and_layout()),
    );
    let Some(xs) = f32_slice(&guards.0) else {
        return Ok(None);
    };
    let (Some(ws), Some(bs)) = (optional_slice(&guards.1), optional_slice(&guards.2)) else {
        return Ok(None);
    };
    let rows = xs.len() / d;
    let affine = ws.is_some() || bs.is_some();
    let keep_normalized = spec.keep_normalized || !affine;
    let mut scale = Slots::new(rows);
    let mut normalized = Slots::new(if keep_normalized { rows * d } else { 0 });
    let mut out = Slots::new(if affine { rows * d } else { 0 });
    // candle's `mean` is a sum times 1/d and `+ eps` an affine map, both in f32.
    let inv_d = (1.0 / d as f64) as f32;
    let eps = spec.eps as f32;
    let centre = spec.centre;
    // One task: rows `start..start + sc.len()`, written whole to `sc`, `nz` and `o` (the latter
    // two empty when not asked for).
    let task = |start: usize,
                sc: &mut [MaybeUninit<f32>],
                nz: &mut [MaybeUninit<f32>],
                o: &mut [MaybeUninit<f32>]| {
        let mut c = vec![0f32; d];
        for (r, s_out) in sc.iter_mut().enumerate() {
            let row = &xs[(start + r) * d..(start + r + 1) * d];
            let mean = if centre {
                sum8(row, |v| v) * inv_d
            } else {
                0.0
            };
            for (c, &v) in c.iter_mut().zip(row) {
                *c = v - mean;
            }
            let ms = sum8(&c, |c| c * c) * inv_d;
            let s = (ms + eps).sqrt();
            s_out.write(s);
            for c in c.iter_mut() {
                *c /= s;
            }
            if !nz.is_empty() {
                for (n, &c) in nz[r * d..(r + 1) * d].iter_mut().zip(&c) {
                    n.write(c);
                }
            }
            if o.is_empty() {
                continue;
            }
            let orow = &mut o[r * d..(r + 1) * d];
            match (ws, bs) {
                (Some(w), Some(b)) => {
                    for ((o, &n), (&w, &b)) in orow.iter_mut().zip(&c).zip(w.iter().zip(b)) {
                        o.write(n * w + b);
                    }
                }
                (Some(w), None) => {
                    for ((o, &n), &w) in orow.iter_mut().zip(&c).zip(w) {
                        o.write(n * w);
                    }
                }
                (None, Some(b)) => {
                    for ((o, &n), &b) in orow.iter_mut().zip(&c).zip(b) {
                        o.write(n + b);
                    }
                }
                (None, None) => {}
            }
        }
    };
    let block = ROWS_PER_TASK * d;
    let tasks = rows.div_ceil(ROWS_PER_TASK);
    let (nz_chunks, out_chunks) = (
        task_chunks(normalized.slots(), block, tasks),
        task_chunks(out.slots(), block, tasks),
    );
    scale
        .slots()
        .par_chunks_mut(ROWS_PER_TASK)
        .zip(nz_chunks)
        .zip(out_chunks)
        .enumerate()
        .for_each(|(i, ((sc, nz), o))| task(i * ROWS_PER_TASK, sc, nz, o));
    drop(guards);
    // SAFETY: the tasks cover all rows, and each wrote its rows' scale and, where asked for,
    // their normalized values and outputs, every element of each.
    let (scale, normalized, out) = unsafe {
        (
            scale.assume_init(),
            normalized.assume_init(),
            out.assume_init(),
        )
    };
    let dev = Device::Cpu;
    let mut scale_dims = dims.clone();
    *scale_dims.last_mut().expect("rank ≥ 1") = 1;
    let normalized = if keep_normalized {
        Some(Tensor::from_vec(normalized, dims.as_slice(), &dev)?)
    } else {
        None
    };
    let out = match (&normalized, affine) {
        (Some(n), false) => n.clone(),
        _ => Tensor::from_vec(out, dims.as_slice(), &dev)?,
    };
    Ok(Some(Normed {
        scale: if spec.keep_scale {
            Some(Tensor::from_vec(scale, scale_dims.as_slice(), &dev)?)
        } else {
            None
        },
        normalized,
        out,
    }))
}

/// `Σ f(x)` in eight running lanes (vectorised; a sequential f32 sum is latency-bound), added
/// up at the end: the order differs from candle's reduction, within float rounding.
#[inline]
fn sum8(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for i in 0..8 {
            acc[i] += f(c[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `v` in blocks of `block` elements, one per task; an empty `v` (an output not asked for) as
/// `tasks` empty blocks.
pub(super) fn task_chunks<T>(v: &mut [T], block: usize, tasks: usize) -> Vec<&mut [T]> {
    if v.is_empty() {
        (0..tasks).map(|_| &mut [][..]).collect()
    } else {
        v.chunks_mut(block).collect()
    }
}

/// `pre = y + b` (b `[n]` over the last axis of `y`) and `post = act(pre)` in one pass, with
/// candle's own scalar kernels for the activation (so `post` is the tensor path's to the bit);
/// `pre` is returned only when `keep_pre`. `None` for activations that are not elementwise
/// (SoLU's softmax).
pub(super) fn bias_activation(
    y: &Tensor,
    b: &Tensor,
    act: ActFn,
    keep_pre: bool,
) -> candle_core::Result<Option<(Option<Tensor>, Tensor)>> {
    // A generic pass per function, so each is inlined into its loop.
    match act {
        ActFn::Relu => bias_map(y, b, keep_pre, |v: f32| v.max(0.0)),
        ActFn::Gelu => bias_map(y, b, keep_pre, GeluErf::f32),
        ActFn::GeluNew | ActFn::GeluFast | ActFn::GeluPytorchTanh => {
            bias_map(y, b, keep_pre, Gelu::f32)
        }
        ActFn::Silu => bias_map(y, b, keep_pre, Silu::f32),
        ActFn::Solu | ActFn::SoluLn => Ok(None),
    }
}

fn bias_map<F: Fn(f32) -> f32 + Sync>(
    y: &Tensor,
    b: &Tensor,
    keep_pre: bool,
    f: F,
) -> candle_core::Result<Option<(Option<Tensor>, Tensor)>> {
    if !eligible(y) || !eligible(b) {
        return Ok(None);
    }
    let dims = y.dims().to_vec();
    let Some(&n) = dims.last() else {
        return Ok(None);
    };
    if n == 0 || b.dims() != [n] {
        return Ok(None);
    }
    let (gy, gb) = (y.storage_and_layout(), b.storage_and_layout());
    let (Some(ys), Some(bs)) = (f32_slice(&gy), f32_slice(&gb)) else {
        return Ok(None);
    };
    let block = ROWS_PER_TASK * n;
    let mut post = Slots::new(ys.len());
    let mut pre = Slots::new(if keep_pre { ys.len() } else { 0 });
    let tasks = ys.len().div_ceil(block);
    post.slots()
        .par_chunks_mut(block)
        .zip(task_chunks(pre.slots(), block, tasks))
        .zip(ys.par_chunks(block))
        .for_each(|((po, pr), y)| {
            for (r, (po, y)) in po.chunks_exact_mut(n).zip(y.chunks_exact(n)).enumerate() {
                for (po, (y, b)) in po.iter_mut().zip(y.iter().zip(bs)) {
                    po.write(f(y + b));
                }
                if !pr.is_empty() {
                    for (pr, (y, b)) in pr[r * n..(r + 1) * n].iter_mut().zip(y.iter().zip(bs)) {
                        pr.write(y + b);
                    }
                }
            }
        });
    drop((gy, gb));
    // SAFETY: `y` has whole rows of `n`, so the blocks and their rows cover every element of
    // `post` (and `pre` when kept), each written above.
    let (pre, post) = unsafe { (pre.assume_init(), post.assume_init()) };
    let dev = Device::Cpu;
    let pre = if keep_pre {
        Some(Tensor::from_vec(pre, dims.as_slice(), &dev)?)
    } else {
        None
    };
    Ok(Some((pre, Tensor::from_vec(post, dims.as_slice(), &dev)?)))
}

/// `x @ w + b` over the last axis of `x` (any leading shape; `w` `[k, n]` in any strides, `b`
/// `[n]`) as one call of the GEMM candle's CPU matmul uses, with the output first set to the
/// bias rows and the product accumulated into it: the bias takes no pass of its own and nothing
/// is zeroed. Without a bias the GEMM writes the output directly.
pub(super) fn linear(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> candle_core::Result<Option<Tensor>> {
    if !eligible(x) || !eligible(w) || b.is_some_and(|b| !eligible(b)) || w.rank() != 2 {
        return Ok(None);
    }
    let dims = x.dims().to_vec();
    let (k, n) = w.dims2()?;
    if dims.last() != Some(&k) || k == 0 || n == 0 || b.is_some_and(|b| b.dims() != [n]) {
        return Ok(None);
    }
    let m = x.elem_count() / k;
    let (gx, gw) = (x.storage_and_layout(), w.storage_and_layout());
    let Some(xs) = f32_slice(&gx) else {
        return Ok(None);
    };
    // The weight may be a strided view (a transpose); the GEMM reads it through its strides,
    // all within its storage (checked here).
    let (wstore, wl) = &gw;
    let Storage::Cpu(wcpu) = &**wstore else {
        return Ok(None);
    };
    let Ok(wdata) = wcpu.as_slice::<f32>() else {
        return Ok(None);
    };
    let (w_rs, w_cs) = (wl.stride()[0], wl.stride()[1]);
    let wdata = &wdata[wl.start_offset()..];
    if (k - 1) * w_rs + (n - 1) * w_cs >= wdata.len() {
        return Ok(None);
    }
    let gb = b.map(|b| b.storage_and_layout());
    let Some(bs) = optional_slice(&gb) else {
        return Ok(None);
    };
    let mut out = Slots::new(m * n);
    if let Some(bs) = bs {
        out.slots().par_chunks_mut(ROWS_PER_TASK * n).for_each(|o| {
            for row in o.chunks_exact_mut(n) {
                for (o, &b) in row.iter_mut().zip(bs) {
                    o.write(b);
                }
            }
        });
    }
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let dst = out.slots().as_mut_ptr().cast::<f32>();
    // SAFETY: `dst` has room for m × n elements, row-major (row stride n, column stride 1), all
    // written by the GEMM (and read first only when `read_dst`, after the bias rows above wrote
    // every one); `xs` holds m × k elements row-major; the weight's last element read,
    // (k−1)·rs + (n−1)·cs, is inside `wdata` (checked above). The three do not overlap (the
    // output is freshly allocated). With `read_dst` the GEMM computes dst = 1·dst + 1·x·w,
    // otherwise dst = x·w.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            bs.is_some(),
            xs.as_ptr(),
            1,
            k as isize,
            wdata.as_ptr(),
            w_cs as isize,
            w_rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
    drop((gx, gw, gb));
    // SAFETY: the GEMM wrote all m × n elements.
    let out = unsafe { out.assume_init() };
    let mut out_dims = dims;
    *out_dims.last_mut().expect("rank ≥ 1") = n;
    Ok(Some(Tensor::from_vec(
        out,
        out_dims.as_slice(),
        &Device::Cpu,
    )?))
}

/// `a + c` for two tensors of one shape, in one parallel pass.
pub(super) fn add(a: &Tensor, c: &Tensor) -> candle_core::Result<Option<Tensor>> {
    if !eligible(a) || !eligible(c) || a.dims() != c.dims() {
        return Ok(None);
    }
    let (ga, gc) = (a.storage_and_layout(), c.storage_and_layout());
    let (Some(xs), Some(ys)) = (f32_slice(&ga), f32_slice(&gc)) else {
        return Ok(None);
    };
    const BLOCK: usize = 1 << 14;
    let mut out = Slots::new(xs.len());
    out.slots()
        .par_chunks_mut(BLOCK)
        .zip(xs.par_chunks(BLOCK).zip(ys.par_chunks(BLOCK)))
        .for_each(|(o, (x, y))| {
            for (o, (x, y)) in o.iter_mut().zip(x.iter().zip(y)) {
                o.write(x + y);
            }
        });
    drop((ga, gc));
    // SAFETY: the blocks cover every element, each written above.
    let out = unsafe { out.assume_init() };
    Ok(Some(Tensor::from_vec(out, a.dims(), &Device::Cpu)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::D;

    fn random(shape: &[usize], seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-3.0f32..3.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn the_fused_norm_matches_the_tensor_operations() {
        // 700 rows: more than two tasks, the last one partial.
        let x = random(&[7, 100, 24], 1);
        let (w, b) = (random(&[24], 2), random(&[24], 3));
        for centre in [true, false] {
            for (w, b) in [(Some(&w), Some(&b)), (Some(&w), None), (None, None)] {
                let spec = NormSpec {
                    centre,
                    eps: 1e-5,
                    keep_scale: true,
                    keep_normalized: true,
                };
                let got = norm(&x, w, b, spec).unwrap().expect("applies");
                let lean = NormSpec {
                    keep_scale: false,
                    keep_normalized: false,
                    ..spec
                };
                let only_out = norm(&x, w, b, lean).unwrap().expect("applies");
                assert!(only_out.scale.is_none());
                assert_eq!(max_diff(&only_out.out, &got.out), 0.0);
                let c = if centre {
                    x.broadcast_sub(&x.mean_keepdim(D::Minus1).unwrap())
                        .unwrap()
                } else {
                    x.clone()
                };
                let s = ((c.sqr().unwrap().mean_keepdim(D::Minus1).unwrap() + 1e-5).unwrap())
                    .sqrt()
                    .unwrap();
                let n = c.broadcast_div(&s).unwrap();
                let mut o = n.clone();
                if let Some(w) = w {
                    o = o.broadcast_mul(w).unwrap();
                }
                if let Some(b) = b {
                    o = o.broadcast_add(b).unwrap();
                }
                assert!(max_diff(got.scale.as_ref().unwrap(), &s) < 1e-5);
                assert!(max_diff(got.normalized.as_ref().unwrap(), &n) < 1e-5);
                assert!(max_diff(&got.out, &o) < 1e-5);
            }
        }
    }

    #[test]
    fn the_fused_activation_is_the_tensor_paths_to_the_bit() {
        let y = random(&[3, 300, 40], 4);
        let b = random(&[40], 5);
        let pre = y.broadcast_add(&b).unwrap();
        for (act, want) in [
            (ActFn::Relu, pre.relu().unwrap()),
            (ActFn::Gelu, pre.gelu_erf().unwrap()),
            (ActFn::GeluNew, pre.gelu().unwrap()),
            (ActFn::Silu, pre.silu().unwrap()),
        ] {
            let (kept, post) = bias_activation(&y, &b, act, true)
                .unwrap()
                .expect("applies");
            assert_eq!(max_diff(kept.as_ref().unwrap(), &pre), 0.0);
            assert_eq!(max_diff(&post, &want), 0.0, "{act:?}");
            let (none, post) = bias_activation(&y, &b, act, false).unwrap().unwrap();
            assert!(none.is_none());
            assert_eq!(max_diff(&post, &want), 0.0);
        }
        assert!(
            bias_activation(&y, &b, ActFn::Solu, true)
                .unwrap()
                .is_none()
        );
        let y2 = random(&[3, 300, 40], 8);
        assert_eq!(
            max_diff(&add(&y, &y2).unwrap().unwrap(), &(&y + &y2).unwrap()),
            0.0
        );
        assert!(add(&y, &b).unwrap().is_none());
    }

    #[test]
    fn the_direct_gemm_matches_candles_matmul_with_and_without_bias() {
        // 700 rows: more than two bias-filling tasks, the last one partial.
        let x = random(&[7, 100, 24], 11);
        let w = random(&[24, 40], 12);
        let b = random(&[40], 13);
        let want = x
            .reshape((700, 24))
            .unwrap()
            .matmul(&w)
            .unwrap()
            .reshape((7, 100, 40))
            .unwrap();
        let got = linear(&x, &w, None).unwrap().expect("applies");
        assert!(max_diff(&got, &want) < 1e-5);
        let got = linear(&x, &w, Some(&b)).unwrap().expect("applies");
        assert!(max_diff(&got, &want.broadcast_add(&b).unwrap()) < 1e-5);
        // A transposed weight is read through its strides.
        let wt = random(&[40, 24], 14);
        let got = linear(&x, &wt.t().unwrap(), Some(&b))
            .unwrap()
            .expect("applies");
        let want = x
            .reshape((700, 24))
            .unwrap()
            .matmul(&wt.t().unwrap())
            .unwrap()
            .broadcast_add(&b)
            .unwrap()
            .reshape((7, 100, 40))
            .unwrap();
        assert!(max_diff(&got, &want) < 1e-5);
        // Shapes that do not line up take the tensor path (which reports the error).
        assert!(linear(&x, &random(&[23, 40], 15), None).unwrap().is_none());
    }

    #[test]
    fn tensors_in_an_autograd_graph_take_the_tensor_path() {
        let v = candle_core::Var::from_tensor(&random(&[4, 8], 6)).unwrap();
        assert!(add(v.as_tensor(), &random(&[4, 8], 8)).unwrap().is_none());
        let w = random(&[8, 3], 9);
        assert!(
            linear(v.as_tensor(), &w, Some(&random(&[3], 10)))
                .unwrap()
                .is_none()
        );
        let spec = NormSpec {
            centre: true,
            eps: 1e-5,
            keep_scale: false,
            keep_normalized: false,
        };
        assert!(norm(v.as_tensor(), None, None, spec).unwrap().is_none());
    }
}
