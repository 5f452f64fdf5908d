//! The runtime over the whole supported config space, against (a) a naive f64 implementation of
//! TransformerLens' forward pass written from its semantics with plain loops, on seeded random
//! models, and (b) small models whose outputs are computed by hand.

// Index loops mirror the formulas they implement.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use congruity::model::config::{
    ActFn, AttentionDir, ModelConfig, Normalization, Positional, Rotary,
};
use congruity::model::io::{HostTensor, NamedTensors};
use congruity::model::{HookPoint, HookSelection, RunOptions, TokenBatch, Transformer, Weights};

// ---------------------------------------------------------------- reference implementation

/// A dense f64 array with a shape.
#[derive(Clone, Debug)]
struct Arr {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Arr {
    fn zeros(shape: &[usize]) -> Self {
        Arr {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }
    fn idx(&self, ix: &[usize]) -> usize {
        ix.iter()
            .zip(&self.shape)
            .fold(0, |acc, (i, n)| acc * n + i)
    }
    fn at(&self, ix: &[usize]) -> f64 {
        self.data[self.idx(ix)]
    }
    fn set(&mut self, ix: &[usize], v: f64) {
        let i = self.idx(ix);
        self.data[i] = v;
    }
}

struct Params(BTreeMap<String, Arr>);

impl Params {
    fn of(w: &Weights) -> Self {
        Params(
            w.named()
                .into_iter()
                .map(|(n, t)| {
                    let data: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
                    (
                        n,
                        Arr {
                            shape: t.dims().to_vec(),
                            data: data.into_iter().map(f64::from).collect(),
                        },
                    )
                })
                .collect(),
        )
    }
    fn get(&self, n: &str) -> &Arr {
        self.0
            .get(n)
            .unwrap_or_else(|| panic!("reference: no parameter {n}"))
    }
    fn opt(&self, n: &str) -> Option<&Arr> {
        self.0.get(n)
    }
}

fn erf(x: f64) -> f64 {
    if x.abs() > 6.0 {
        return x.signum();
    }
    let mut sum = 0.0;
    let mut term = x;
    for n in 0..200 {
        sum += term / (2 * n + 1) as f64;
        term *= -x * x / (n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

fn act(a: ActFn, row: &[f64]) -> Vec<f64> {
    let tanh_gelu = |x: f64| {
        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
    };
    match a {
        ActFn::Relu => row.iter().map(|x| x.max(0.0)).collect(),
        ActFn::Gelu => row
            .iter()
            .map(|x| 0.5 * x * (1.0 + erf(x / 2f64.sqrt())))
            .collect(),
        ActFn::GeluNew | ActFn::GeluFast | ActFn::GeluPytorchTanh => {
            row.iter().map(|&x| tanh_gelu(x)).collect()
        }
        ActFn::Silu => row.iter().map(|x| x / (1.0 + (-x).exp())).collect(),
        ActFn::Solu | ActFn::SoluLn => {
            let m = row.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = row.iter().map(|x| (x - m).exp()).collect();
            let s: f64 = e.iter().sum();
            row.iter().zip(&e).map(|(x, ei)| x * ei / s).collect()
        }
    }
}

type Hooks = BTreeMap<String, Arr>;

/// Writes one row (the last axis) of a hook at a leading index.
fn put(hooks: &mut Hooks, name: &str, shape: &[usize], lead: &[usize], row: &[f64]) {
    let a = hooks
        .entry(name.to_string())
        .or_insert_with(|| Arr::zeros(shape));
    for (i, v) in row.iter().enumerate() {
        let mut ix = lead.to_vec();
        ix.push(i);
        a.set(&ix, *v);
    }
}

/// TL normalization of one row: returns (scale, normalized, output).
fn norm_row(
    kind: Normalization,
    x: &[f64],
    w: Option<&Arr>,
    b: Option<&Arr>,
    eps: f64,
) -> (f64, Vec<f64>, Vec<f64>) {
    let n = x.len() as f64;
    let centered: Vec<f64> = match kind {
        Normalization::LayerNorm | Normalization::LayerNormPre => {
            let m = x.iter().sum::<f64>() / n;
            x.iter().map(|v| v - m).collect()
        }
        _ => x.to_vec(),
    };
    let scale = (centered.iter().map(|v| v * v).sum::<f64>() / n + eps).sqrt();
    let normalized: Vec<f64> = centered.iter().map(|v| v / scale).collect();
    let out = normalized
        .iter()
        .enumerate()
        .map(|(i, v)| v * w.map_or(1.0, |w| w.data[i]) + b.map_or(0.0, |b| b.data[i]))
        .collect();
    (scale, normalized, out)
}

/// Applies a norm to `x` (rows = everything but the last axis) and records its hooks.
fn norm(
    hooks: &mut Hooks,
    prefix: &str,
    kind: Normalization,
    p: &Params,
    x: &Arr,
    eps: f64,
) -> Arr {
    if kind == Normalization::None {
        return x.clone();
    }
    let d = *x.shape.last().unwrap();
    let rows = x.data.len() / d;
    let lead_shape = &x.shape[..x.shape.len() - 1];
    let mut scale_shape = lead_shape.to_vec();
    scale_shape.push(1);
    let mut out = Arr::zeros(&x.shape);
    let (w, b) = (p.opt(&format!("{prefix}.w")), p.opt(&format!("{prefix}.b")));
    for r in 0..rows {
        let row = &x.data[r * d..(r + 1) * d];
        let (s, n, o) = norm_row(kind, row, w, b, eps);
        let sa = hooks
            .entry(format!("{prefix}.hook_scale"))
            .or_insert_with(|| Arr::zeros(&scale_shape));
        sa.data[r] = s;
        let na = hooks
            .entry(format!("{prefix}.hook_normalized"))
            .or_insert_with(|| Arr::zeros(&x.shape));
        na.data[r * d..(r + 1) * d].copy_from_slice(&n);
        out.data[r * d..(r + 1) * d].copy_from_slice(&o);
    }
    out
}

fn rotate(r: &Rotary, x: &mut [f64], pos: usize) {
    let half = r.dim / 2;
    for i in 0..half {
        let period = r.base.powf(i as f64 / half as f64) * r.scaling_factor;
        let a = pos as f64 / period;
        let (ia, ib) = if r.adjacent_pairs {
            (2 * i, 2 * i + 1)
        } else {
            (i, i + half)
        };
        let (xa, xb) = (x[ia], x[ib]);
        x[ia] = xa * a.cos() - xb * a.sin();
        x[ib] = xb * a.cos() + xa * a.sin();
    }
}

/// The whole forward pass for a batch; returns every hook plus `logits`.
fn reference_forward(cfg: &ModelConfig, p: &Params, tokens: &[Vec<u32>]) -> Hooks {
    let (b, n, d, h, e) = (
        tokens.len(),
        tokens[0].len(),
        cfg.d_model,
        cfg.n_heads,
        cfg.d_head,
    );
    let mut hooks = Hooks::new();
    let w_e = p.get("embed.W_E");
    let mut embed = Arr::zeros(&[b, n, d]);
    let mut pos = Arr::zeros(&[b, n, d]);
    for bi in 0..b {
        for t in 0..n {
            for k in 0..d {
                embed.set(&[bi, t, k], w_e.at(&[tokens[bi][t] as usize, k]));
                if let Some(wp) = p.opt("pos_embed.W_pos") {
                    pos.set(&[bi, t, k], wp.at(&[t, k]));
                }
            }
        }
    }
    hooks.insert("hook_embed".into(), embed.clone());
    let mut resid = embed.clone();
    let mut shortformer = None;
    match cfg.positional {
        Positional::Standard => {
            hooks.insert("hook_pos_embed".into(), pos.clone());
            for (r, q) in resid.data.iter_mut().zip(&pos.data) {
                *r += q;
            }
        }
        Positional::Shortformer => {
            hooks.insert("hook_pos_embed".into(), pos.clone());
            shortformer = Some(pos.clone());
        }
        Positional::Rotary(_) => {}
    }

    for l in 0..cfg.n_layers {
        let bp = format!("blocks.{l}");
        hooks.insert(format!("{bp}.hook_resid_pre"), resid.clone());
        let per_head = |x: &Arr| {
            let mut o = Arr::zeros(&[b, n, h, d]);
            for bi in 0..b {
                for t in 0..n {
                    for hh in 0..h {
                        for k in 0..d {
                            o.set(&[bi, t, hh, k], x.at(&[bi, t, k]));
                        }
                    }
                }
            }
            o
        };
        if cfg.use_attn_in {
            hooks.insert(format!("{bp}.hook_attn_in"), per_head(&resid));
        }
        let (xq, xk, xv) = if cfg.use_split_qkv_input {
            for n_ in ["q", "k", "v"] {
                hooks.insert(format!("{bp}.hook_{n_}_input"), per_head(&resid));
            }
            (per_head(&resid), per_head(&resid), per_head(&resid))
        } else if cfg.use_attn_in {
            (per_head(&resid), per_head(&resid), per_head(&resid))
        } else {
            (resid.clone(), resid.clone(), resid.clone())
        };
        let ln1 = format!("{bp}.ln1");
        let mut qn = norm(&mut hooks, &ln1, cfg.normalization, p, &xq, cfg.eps);
        let mut kn = norm(&mut hooks, &ln1, cfg.normalization, p, &xk, cfg.eps);
        let vn = norm(&mut hooks, &ln1, cfg.normalization, p, &xv, cfg.eps);
        if let Some(sf) = &shortformer {
            for arr in [&mut qn, &mut kn] {
                let per = arr.shape.len() == 4;
                for bi in 0..b {
                    for t in 0..n {
                        for k in 0..d {
                            if per {
                                for hh in 0..h {
                                    let v = arr.at(&[bi, t, hh, k]) + sf.at(&[bi, t, k]);
                                    arr.set(&[bi, t, hh, k], v);
                                }
                            } else {
                                let v = arr.at(&[bi, t, k]) + sf.at(&[bi, t, k]);
                                arr.set(&[bi, t, k], v);
                            }
                        }
                    }
                }
            }
        }
        let proj = |x: &Arr, wn: &str, bn: &str| {
            let (w, bias) = (
                p.get(&format!("{bp}.attn.{wn}")),
                p.get(&format!("{bp}.attn.{bn}")),
            );
            let mut o = Arr::zeros(&[b, n, h, e]);
            for bi in 0..b {
                for t in 0..n {
                    for hh in 0..h {
                        for ee in 0..e {
                            let mut s = bias.at(&[hh, ee]);
                            for k in 0..d {
                                let xin = if x.shape.len() == 4 {
                                    x.at(&[bi, t, hh, k])
                                } else {
                                    x.at(&[bi, t, k])
                                };
                                s += xin * w.at(&[hh, k, ee]);
                            }
                            o.set(&[bi, t, hh, ee], s);
                        }
                    }
                }
            }
            o
        };
        let mut q = proj(&qn, "W_Q", "b_Q");
        let mut k = proj(&kn, "W_K", "b_K");
        let v = proj(&vn, "W_V", "b_V");
        hooks.insert(format!("{bp}.attn.hook_q"), q.clone());
        hooks.insert(format!("{bp}.attn.hook_k"), k.clone());
        hooks.insert(format!("{bp}.attn.hook_v"), v.clone());
        if let Positional::Rotary(r) = &cfg.positional {
            for arr in [&mut q, &mut k] {
                for bi in 0..b {
                    for t in 0..n {
                        for hh in 0..h {
                            let start = arr.idx(&[bi, t, hh, 0]);
                            rotate(r, &mut arr.data[start..start + e], t);
                        }
                    }
                }
            }
            hooks.insert(format!("{bp}.attn.hook_rot_q"), q.clone());
            hooks.insert(format!("{bp}.attn.hook_rot_k"), k.clone());
        }
        let scale = if cfg.use_attn_scale {
            cfg.attn_scale
        } else {
            1.0
        } * if cfg.scale_attn_by_inverse_layer_idx {
            (l + 1) as f64
        } else {
            1.0
        };
        let mut scores = Arr::zeros(&[b, h, n, n]);
        let mut pattern = Arr::zeros(&[b, h, n, n]);
        let mut z = Arr::zeros(&[b, n, h, e]);
        for bi in 0..b {
            for hh in 0..h {
                for i in 0..n {
                    let mut row = vec![0.0; n];
                    for (j, rj) in row.iter_mut().enumerate() {
                        let mut s = 0.0;
                        for ee in 0..e {
                            s += q.at(&[bi, i, hh, ee]) * k.at(&[bi, j, hh, ee]);
                        }
                        s /= scale;
                        if let Some(cap) = cfg.attn_scores_soft_cap {
                            s = cap * (s / cap).tanh();
                        }
                        if cfg.attention_dir == AttentionDir::Causal && j > i {
                            s = f64::NEG_INFINITY;
                        }
                        *rj = s;
                        scores.set(&[bi, hh, i, j], s);
                    }
                    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let ex: Vec<f64> = row.iter().map(|s| (s - m).exp()).collect();
                    let tot: f64 = ex.iter().sum();
                    for j in 0..n {
                        pattern.set(&[bi, hh, i, j], ex[j] / tot);
                    }
                    for ee in 0..e {
                        let mut s = 0.0;
                        for j in 0..n {
                            s += ex[j] / tot * v.at(&[bi, j, hh, ee]);
                        }
                        z.set(&[bi, i, hh, ee], s);
                    }
                }
            }
        }
        hooks.insert(format!("{bp}.attn.hook_attn_scores"), scores);
        hooks.insert(format!("{bp}.attn.hook_pattern"), pattern);
        hooks.insert(format!("{bp}.attn.hook_z"), z.clone());
        let (w_o, b_o) = (
            p.get(&format!("{bp}.attn.W_O")),
            p.get(&format!("{bp}.attn.b_O")),
        );
        let mut result = Arr::zeros(&[b, n, h, d]);
        let mut attn_out = Arr::zeros(&[b, n, d]);
        for bi in 0..b {
            for t in 0..n {
                for k2 in 0..d {
                    let mut tot = b_o.at(&[k2]);
                    for hh in 0..h {
                        let mut s = 0.0;
                        for ee in 0..e {
                            s += z.at(&[bi, t, hh, ee]) * w_o.at(&[hh, ee, k2]);
                        }
                        result.set(&[bi, t, hh, k2], s);
                        tot += s;
                    }
                    attn_out.set(&[bi, t, k2], tot);
                }
            }
        }
        hooks.insert(format!("{bp}.attn.hook_result"), result);
        hooks.insert(format!("{bp}.hook_attn_out"), attn_out.clone());

        let add = |a: &Arr, c: &Arr| Arr {
            shape: a.shape.clone(),
            data: a.data.iter().zip(&c.data).map(|(x, y)| x + y).collect(),
        };
        if cfg.attn_only {
            resid = add(&resid, &attn_out);
        } else {
            let mlp_base = if cfg.parallel_attn_mlp {
                resid.clone()
            } else {
                let mid = add(&resid, &attn_out);
                hooks.insert(format!("{bp}.hook_resid_mid"), mid.clone());
                mid
            };
            hooks.insert(format!("{bp}.hook_mlp_in"), mlp_base.clone());
            let x = norm(
                &mut hooks,
                &format!("{bp}.ln2"),
                cfg.normalization,
                p,
                &mlp_base,
                cfg.eps,
            );
            let m = cfg.d_mlp.unwrap();
            let a = cfg.act_fn.unwrap();
            let (w_in, b_in) = (
                p.get(&format!("{bp}.mlp.W_in")),
                p.get(&format!("{bp}.mlp.b_in")),
            );
            let w_gate = p.opt(&format!("{bp}.mlp.W_gate"));
            let mut post = Arr::zeros(&[b, n, m]);
            for bi in 0..b {
                for t in 0..n {
                    let lin = |w: &Arr, bias: Option<&Arr>| -> Vec<f64> {
                        (0..m)
                            .map(|j| {
                                (0..d)
                                    .map(|k2| x.at(&[bi, t, k2]) * w.at(&[k2, j]))
                                    .sum::<f64>()
                                    + bias.map_or(0.0, |bb| bb.at(&[j]))
                            })
                            .collect()
                    };
                    let pre = match w_gate {
                        Some(g) => lin(g, None),
                        None => lin(w_in, Some(b_in)),
                    };
                    put(
                        &mut hooks,
                        &format!("{bp}.mlp.hook_pre"),
                        &[b, n, m],
                        &[bi, t],
                        &pre,
                    );
                    let row = if a.has_layer_norm() {
                        let mid = act(a, &pre);
                        put(
                            &mut hooks,
                            &format!("{bp}.mlp.hook_mid"),
                            &[b, n, m],
                            &[bi, t],
                            &mid,
                        );
                        let mid_arr = Arr {
                            shape: vec![1, m],
                            data: mid,
                        };
                        let mut inner = Hooks::new();
                        let kind = if cfg.normalization == Normalization::LayerNorm {
                            Normalization::LayerNorm
                        } else {
                            Normalization::LayerNormPre
                        };
                        let o = norm(
                            &mut inner,
                            &format!("{bp}.mlp.ln"),
                            kind,
                            p,
                            &mid_arr,
                            cfg.eps,
                        );
                        for (name, arr) in inner {
                            let shape = if name.ends_with("scale") {
                                vec![b, n, 1]
                            } else {
                                vec![b, n, m]
                            };
                            put(&mut hooks, &name, &shape, &[bi, t], &arr.data);
                        }
                        o.data
                    } else if w_gate.is_some() {
                        let pl = lin(w_in, None);
                        put(
                            &mut hooks,
                            &format!("{bp}.mlp.hook_pre_linear"),
                            &[b, n, m],
                            &[bi, t],
                            &pl,
                        );
                        act(a, &pre)
                            .iter()
                            .zip(&pl)
                            .enumerate()
                            .map(|(j, (x1, y))| x1 * y + b_in.at(&[j]))
                            .collect()
                    } else {
                        act(a, &pre)
                    };
                    for (j, val) in row.iter().enumerate() {
                        post.set(&[bi, t, j], *val);
                    }
                }
            }
            hooks.insert(format!("{bp}.mlp.hook_post"), post.clone());
            let (w_out, b_out) = (
                p.get(&format!("{bp}.mlp.W_out")),
                p.get(&format!("{bp}.mlp.b_out")),
            );
            let mut mlp_out = Arr::zeros(&[b, n, d]);
            for bi in 0..b {
                for t in 0..n {
                    for k2 in 0..d {
                        let s: f64 = (0..m)
                            .map(|j| post.at(&[bi, t, j]) * w_out.at(&[j, k2]))
                            .sum();
                        mlp_out.set(&[bi, t, k2], s + b_out.at(&[k2]));
                    }
                }
            }
            hooks.insert(format!("{bp}.hook_mlp_out"), mlp_out.clone());
            resid = if cfg.parallel_attn_mlp {
                add(&add(&resid, &attn_out), &mlp_out)
            } else {
                add(&mlp_base, &mlp_out)
            };
        }
        hooks.insert(format!("{bp}.hook_resid_post"), resid.clone());
    }
    let final_kind = cfg.final_normalization();
    let x = norm(&mut hooks, "ln_final", final_kind, p, &resid, cfg.eps);
    hooks.insert("unembed.hook_in".into(), x.clone());
    let (w_u, b_u) = (p.get("unembed.W_U"), p.get("unembed.b_U"));
    let vo = cfg.d_vocab_out;
    let mut logits = Arr::zeros(&[b, n, vo]);
    for bi in 0..b {
        for t in 0..n {
            for o in 0..vo {
                let s: f64 = (0..d)
                    .map(|k2| x.at(&[bi, t, k2]) * w_u.at(&[k2, o]))
                    .sum::<f64>()
                    + b_u.at(&[o]);
                logits.set(&[bi, t, o], s);
            }
        }
    }
    hooks.insert("unembed.hook_out".into(), logits.clone());
    if let Some(cap) = cfg.output_logits_soft_cap {
        logits
            .data
            .iter_mut()
            .for_each(|x| *x = cap * (*x / cap).tanh());
    }
    hooks.insert("logits".into(), logits);
    hooks
}

// ---------------------------------------------------------------- comparison

fn compare(what: &str, got: &Tensor, want: &Arr) {
    assert_eq!(got.dims(), want.shape.as_slice(), "{what}: shape");
    let g: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
    for (i, (&a, &b)) in g.iter().zip(&want.data).enumerate() {
        if b.is_infinite() {
            assert_eq!(a as f64, b, "{what}[{i}]");
            continue;
        }
        let err = (a as f64 - b).abs();
        assert!(
            err <= 1e-4 + 2e-4 * b.abs(),
            "{what}[{i}]: runtime {a}, reference {b}, err {err:e}"
        );
    }
}

fn base() -> ModelConfig {
    let mut c = ModelConfig::simple(2, 12, 3, 20, 11, 9);
    c.d_head = 5; // n_heads * d_head != d_model
    c.attn_scale = 5f64.sqrt();
    c
}

fn rotary(dim: usize, adjacent: bool, base: f64, scaling: f64) -> Positional {
    Positional::Rotary(Rotary {
        dim,
        base,
        adjacent_pairs: adjacent,
        scaling_factor: scaling,
    })
}

/// Named configs, each switching on some features, together covering the supported space.
fn configs() -> Vec<(&'static str, ModelConfig)> {
    let mut out = vec![("ln_relu_standard_causal", base())];
    let mut c = base();
    c.normalization = Normalization::LayerNormPre;
    c.act_fn = Some(ActFn::Gelu);
    c.positional = Positional::Shortformer;
    c.attention_dir = AttentionDir::Bidirectional;
    out.push(("lnpre_gelu_shortformer_bidirectional", c));
    let mut c = base();
    c.normalization = Normalization::Rms;
    c.act_fn = Some(ActFn::GeluNew);
    c.positional = rotary(4, false, 10000.0, 1.0);
    c.d_vocab_out = 7;
    out.push(("rms_gelu_new_rotary_neox_vocab_out", c));
    let mut c = base();
    c.normalization = Normalization::RmsPre;
    c.act_fn = Some(ActFn::Silu);
    c.d_head = 6;
    c.attn_scale = 6f64.sqrt();
    c.positional = rotary(4, true, 1000.0, 2.0);
    out.push(("rmspre_silu_partial_rotary_gptj_scaled", c));
    let mut c = base();
    c.normalization = Normalization::None;
    c.attn_only = true;
    c.d_mlp = None;
    c.act_fn = None;
    c.n_layers = 3;
    out.push(("no_norm_attn_only", c));
    let mut c = base();
    c.act_fn = Some(ActFn::SoluLn);
    c.parallel_attn_mlp = true;
    out.push(("ln_solu_ln_parallel", c));
    let mut c = base();
    c.normalization = Normalization::LayerNormPre;
    c.act_fn = Some(ActFn::SoluLn);
    out.push(("lnpre_solu_ln", c));
    let mut c = base();
    c.normalization = Normalization::Rms;
    c.act_fn = Some(ActFn::Silu);
    c.gated_mlp = true;
    c.positional = rotary(4, false, 10000.0, 1.0);
    out.push(("rms_gated_silu_rotary", c));
    let mut c = base();
    c.act_fn = Some(ActFn::GeluFast);
    c.final_rms = true;
    c.use_attn_result = true;
    c.use_hook_mlp_in = true;
    out.push(("ln_final_rms_gelu_fast_attn_result", c));
    let mut c = base();
    c.use_split_qkv_input = true;
    c.use_attn_in = true;
    c.positional = Positional::Shortformer;
    out.push(("split_qkv_attn_in_shortformer", c));
    let mut c = base();
    c.act_fn = Some(ActFn::GeluPytorchTanh);
    c.use_attn_scale = false;
    c.attn_scale = 1.0;
    c.scale_attn_by_inverse_layer_idx = true;
    c.attn_scores_soft_cap = Some(2.0);
    c.output_logits_soft_cap = Some(3.0);
    out.push(("soft_caps_inverse_layer_scale", c));
    let mut c = base();
    c.act_fn = Some(ActFn::Solu);
    c.normalization = Normalization::RmsPre;
    c.positional = Positional::Shortformer;
    c.attention_dir = AttentionDir::Bidirectional;
    out.push(("solu_rmspre_shortformer", c));
    out
}

#[test]
fn runtime_matches_the_reference_over_the_config_space() {
    let tokens: Vec<Vec<u32>> = vec![vec![3, 1, 4, 1, 5, 9, 2], vec![6, 5, 3, 5, 8, 9, 7]];
    for (seed, (name, cfg)) in configs().into_iter().enumerate() {
        // The config survives a round trip through config.json, so it is a loadable TL config.
        let reparsed = ModelConfig::from_json(&cfg.to_tl_json(), Path::new("config.json")).unwrap();
        assert_eq!(reparsed, cfg, "{name}");
        let model = Transformer::random(cfg.clone(), seed as u64, &Device::Cpu).unwrap();
        let out = model
            .forward(
                &TokenBatch::new(&tokens).unwrap(),
                &RunOptions::cache(HookSelection::All),
            )
            .unwrap();
        let reference = reference_forward(&cfg, &Params::of(model.weights()), &tokens);
        // Every hook of the model is produced by the reference, and vice versa.
        let ours: Vec<String> = out.cache.hooks().map(HookPoint::to_string).collect();
        let theirs: Vec<&String> = reference.keys().filter(|k| *k != "logits").collect();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{name}: ours {ours:?}\nreference {theirs:?}"
        );
        for (hook, t) in out.cache.iter() {
            let key = hook.to_string();
            let want = reference
                .get(&key)
                .unwrap_or_else(|| panic!("{name}: reference lacks {key}"));
            compare(&format!("{name}/{key}"), t, want);
        }
        compare(&format!("{name}/logits"), &out.logits, &reference["logits"]);
    }
}

// ---------------------------------------------------------------- hand computations

fn hand_model(cfg: ModelConfig, tensors: Vec<(&str, Vec<usize>, Vec<f32>)>) -> Transformer {
    let src = NamedTensors::from_host(
        Path::new("<hand>"),
        tensors
            .into_iter()
            .map(|(n, shape, data)| (n.to_string(), HostTensor { shape, data })),
    );
    let w = Weights::from_named(&cfg, &src, &Device::Cpu).unwrap();
    Transformer::new(cfg, w).unwrap()
}

/// One attention-only layer, d_model 2, one head of size 1, no normalization: the query/key
/// weights are zero, so attention is uniform over the visible positions, and the value reads
/// feature 0, which the output writes doubled into feature 0.
fn uniform_attention_model(dir: AttentionDir) -> Transformer {
    let mut cfg = ModelConfig::simple(1, 2, 1, 1, 2, 4);
    cfg.d_head = 1;
    cfg.attn_scale = 1.0;
    cfg.normalization = Normalization::None;
    cfg.attn_only = true;
    cfg.d_mlp = None;
    cfg.act_fn = None;
    cfg.attention_dir = dir;
    hand_model(
        cfg,
        vec![
            ("embed.W_E", vec![2, 2], vec![1., 0., 0., 1.]),
            ("pos_embed.W_pos", vec![4, 2], vec![0.; 8]),
            ("blocks.0.attn.W_Q", vec![1, 2, 1], vec![0., 0.]),
            ("blocks.0.attn.W_K", vec![1, 2, 1], vec![0., 0.]),
            ("blocks.0.attn.W_V", vec![1, 2, 1], vec![1., 0.]),
            ("blocks.0.attn.W_O", vec![1, 1, 2], vec![2., 0.]),
            ("blocks.0.attn.b_Q", vec![1, 1], vec![0.]),
            ("blocks.0.attn.b_K", vec![1, 1], vec![0.]),
            ("blocks.0.attn.b_V", vec![1, 1], vec![0.]),
            ("blocks.0.attn.b_O", vec![2], vec![0., 0.]),
            ("unembed.W_U", vec![2, 2], vec![1., 0., 0., 1.]),
            ("unembed.b_U", vec![2], vec![0., 0.]),
        ],
    )
}

#[test]
fn hand_computed_causal_and_bidirectional_attention() {
    let tokens = TokenBatch::single(vec![0, 1]).unwrap();
    // Causal: position 0 sees only token 0 (value 1), position 1 averages 1 and 0.
    let causal = uniform_attention_model(AttentionDir::Causal);
    let out = causal.forward(&tokens, &RunOptions::default()).unwrap();
    assert_eq!(
        out.logits.to_vec3::<f32>().unwrap(),
        vec![vec![vec![3., 0.], vec![1., 1.]]]
    );
    // Bidirectional: both positions average 1 and 0.
    let bi = uniform_attention_model(AttentionDir::Bidirectional);
    let out = bi.forward(&tokens, &RunOptions::default()).unwrap();
    assert_eq!(
        out.logits.to_vec3::<f32>().unwrap(),
        vec![vec![vec![2., 0.], vec![1., 1.]]]
    );
    // The masked score is -inf in the cache, as in TransformerLens.
    let out = causal
        .forward(
            &tokens,
            &RunOptions::cache(
                causal
                    .select_hooks(&["blocks.0.attn.hook_attn_scores"])
                    .unwrap(),
            ),
        )
        .unwrap();
    let scores = out
        .cache
        .get_by_name("blocks.0.attn.hook_attn_scores")
        .unwrap()
        .unwrap();
    assert_eq!(
        scores.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        vec![0., f32::NEG_INFINITY, 0., 0.]
    );
}

#[test]
fn hand_computed_layer_norm_hooks() {
    // ln_final on resid = embed of token 0 = [1, 2, 3, 4] (no layers): centered
    // [-1.5, -0.5, 0.5, 1.5], scale sqrt(1.25 + eps), then * w + b.
    let mut cfg = ModelConfig::simple(0, 4, 1, 4, 1, 2);
    cfg.eps = 0.0;
    cfg.positional = rotary(4, false, 10000.0, 1.0); // no W_pos, so resid = embed
    let m = hand_model(
        cfg,
        vec![
            ("embed.W_E", vec![1, 4], vec![1., 2., 3., 4.]),
            ("ln_final.w", vec![4], vec![2., 2., 2., 2.]),
            ("ln_final.b", vec![4], vec![1., 0., 0., 0.]),
            ("unembed.W_U", vec![4, 1], vec![1., 0., 0., 0.]),
            ("unembed.b_U", vec![1], vec![0.]),
        ],
    );
    let out = m
        .forward(
            &TokenBatch::single(vec![0]).unwrap(),
            &RunOptions::cache(HookSelection::All),
        )
        .unwrap();
    let s = 1.25f32.sqrt();
    let scale = out
        .cache
        .get_by_name("ln_final.hook_scale")
        .unwrap()
        .unwrap();
    assert_eq!(scale.dims(), &[1, 1, 1]);
    assert!((scale.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0] - s).abs() < 1e-6);
    let normalized = out
        .cache
        .get_by_name("ln_final.hook_normalized")
        .unwrap()
        .unwrap();
    let n = normalized.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for (got, want) in n.iter().zip([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]) {
        assert!((got - want).abs() < 1e-6);
    }
    // logits = 2 * (-1.5 / s) + 1
    let logit = out.logits.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
    assert!((logit - (2.0 * -1.5 / s + 1.0)).abs() < 1e-6);
}

#[test]
fn shortformer_positions_reach_queries_and_keys_but_not_the_residual() {
    let mut cfg = base();
    cfg.positional = Positional::Shortformer;
    let m = Transformer::random(cfg, 42, &Device::Cpu).unwrap();
    let out = m
        .forward(
            &TokenBatch::single(vec![1, 2, 3]).unwrap(),
            &RunOptions::cache(
                m.select_hooks(&["hook_embed", "blocks.0.hook_resid_pre"])
                    .unwrap(),
            ),
        )
        .unwrap();
    let embed = out.cache.get_by_name("hook_embed").unwrap().unwrap();
    let resid = out
        .cache
        .get_by_name("blocks.0.hook_resid_pre")
        .unwrap()
        .unwrap();
    assert_eq!(
        embed.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        resid.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
}

#[test]
fn only_requested_hooks_are_cached() {
    let m = Transformer::random(base(), 1, &Device::Cpu).unwrap();
    let tokens = TokenBatch::single(vec![1, 2, 3]).unwrap();
    let sel = m.select_hooks(&["blocks.*.attn.hook_z"]).unwrap();
    let out = m.forward(&tokens, &RunOptions::cache(sel)).unwrap();
    let names: Vec<String> = out.cache.hooks().map(HookPoint::to_string).collect();
    assert_eq!(names, vec!["blocks.0.attn.hook_z", "blocks.1.attn.hook_z"]);
    let plain = m.forward(&tokens, &RunOptions::default()).unwrap();
    assert!(plain.cache.is_empty());
    assert_eq!(
        plain
            .logits
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        out.logits.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
}
