use super::*;
use crate::model::intervention::Action;

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
}

fn v(x: &Tensor) -> Vec<f32> {
    x.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn softmax_handles_masked_rows() {
    let ninf = f32::NEG_INFINITY;
    let x = t(&[0.0, ninf, ninf, ninf, (2f32).ln(), 0.0], &[2, 3]);
    let y = v(&softmax_last(&x).unwrap());
    assert_eq!(y[..3], [1.0, 0.0, 0.0]);
    assert_eq!(y[3], 0.0, "an all -inf entry gets 0, not NaN");
    assert!((y[4] - 2.0 / 3.0).abs() < 1e-6 && (y[5] - 1.0 / 3.0).abs() < 1e-6);
    let all_masked = t(&[ninf, ninf], &[1, 2]);
    assert_eq!(v(&softmax_last(&all_masked).unwrap()), vec![0.0, 0.0]);
}

#[test]
fn activations_match_their_definitions() {
    let xs = [-3.0f32, -0.5, 0.0, 0.7, 2.5];
    let x = t(&xs, &[5]);
    let erf_gelu = |x: f64| 0.5 * x * (1.0 + libm_erf(x / 2f64.sqrt()));
    let tanh_gelu = |x: f64| {
        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
    };
    let silu = |x: f64| x / (1.0 + (-x).exp());
    for (act, f) in [
        (ActFn::Relu, &(|x: f64| x.max(0.0)) as &dyn Fn(f64) -> f64),
        (ActFn::Gelu, &erf_gelu),
        (ActFn::GeluNew, &tanh_gelu),
        (ActFn::GeluFast, &tanh_gelu),
        (ActFn::Silu, &silu),
    ] {
        let y = v(&activation(act, &x).unwrap());
        for (xi, yi) in xs.iter().zip(&y) {
            let want = f(*xi as f64);
            assert!(
                (*yi as f64 - want).abs() < 1e-5,
                "{act:?}({xi}) = {yi}, want {want}"
            );
        }
    }
    // SoLU: x * softmax(x).
    let y = v(&activation(ActFn::Solu, &t(&[0.0, (3f32).ln()], &[1, 2])).unwrap());
    assert!((y[0] - 0.0).abs() < 1e-6 && (y[1] - 0.75 * 3f32.ln()).abs() < 1e-6);
}

/// erf by its Taylor series (enough terms for |x| ≤ 3), to check candle's erf GELU
/// against an independent computation.
fn libm_erf(x: f64) -> f64 {
    let mut sum = 0.0;
    let mut term = x;
    for n in 0..60 {
        sum += term / (2 * n + 1) as f64;
        term *= -x * x / (n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn rotary_rotates_pairs_by_position_times_frequency() {
    // d_head 4, rotary_dim 4, base 100: frequencies (periods) 1 and 10.
    for adjacent in [false, true] {
        let r = Rotary {
            dim: 4,
            base: 100.0,
            adjacent_pairs: adjacent,
            scaling_factor: 1.0,
        };
        let tables = RotaryTables::new(r, 3, &Device::Cpu).unwrap();
        let x = t(&[1.0, 2.0, 3.0, 4.0].repeat(3), &[1, 3, 1, 4]);
        let y = v(&tables.apply(&x).unwrap());
        for pos in 0..3 {
            let (a0, a1) = (pos as f64 / 1.0, pos as f64 / 10.0);
            // NeoX pairs features (0,2) and (1,3); GPT-J pairs (0,1) and (2,3).
            let (pairs, angles) = if adjacent {
                ([(0, 1), (2, 3)], [a0, a1])
            } else {
                ([(0, 2), (1, 3)], [a0, a1])
            };
            let xs = [1.0, 2.0, 3.0, 4.0];
            let mut want = [0.0f64; 4];
            for ((i, j), a) in pairs.iter().zip(angles) {
                want[*i] = xs[*i] * a.cos() - xs[*j] * a.sin();
                want[*j] = xs[*j] * a.cos() + xs[*i] * a.sin();
            }
            for f in 0..4 {
                let got = y[pos * 4 + f] as f64;
                assert!(
                    (got - want[f]).abs() < 1e-5,
                    "adjacent={adjacent} pos {pos} f {f}: {got} vs {}",
                    want[f]
                );
            }
        }
    }
}

#[test]
fn partial_rotary_passes_the_rest_through() {
    let r = Rotary {
        dim: 2,
        base: 10000.0,
        adjacent_pairs: false,
        scaling_factor: 1.0,
    };
    let tables = RotaryTables::new(r, 2, &Device::Cpu).unwrap();
    let x = t(&[1.0, 0.0, 5.0, 6.0, 1.0, 0.0, 5.0, 6.0], &[1, 2, 1, 4]);
    let y = v(&tables.apply(&x).unwrap());
    assert_eq!(&y[..4], &[1.0, 0.0, 5.0, 6.0]);
    assert!((y[4] - 1f32.cos()).abs() < 1e-6 && (y[5] - 1f32.sin()).abs() < 1e-6);
    assert_eq!(&y[6..], &[5.0, 6.0]);
}

#[test]
fn token_batch_validation() {
    assert!(TokenBatch::new(&[]).is_err());
    assert!(TokenBatch::new(&[vec![]]).is_err());
    let err = TokenBatch::new(&[vec![1, 2], vec![3]])
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 1 has 1"), "{err}");
    assert!(TokenBatch::from_u64_rows(&[vec![1 << 40]]).is_err());
    let tb = TokenBatch::new(&[vec![1, 2], vec![3, 4]]).unwrap();
    assert_eq!(tb.row(1), &[3, 4]);
}

/// The fused CPU attention core and the tensor path agree (z, scores, pattern), causal or not,
/// with grouped-query heads and a soft cap, on random q, k, v.
#[test]
fn fused_attention_core_matches_the_tensor_path() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for (causal, kv, cap) in [
        (true, 4, None),
        (false, 4, None),
        (true, 2, Some(3.0)),
        (false, 1, Some(0.5)),
    ] {
        let (b, p, h, e) = (3, 7, 4, 5);
        let mut cfg = ModelConfig::simple(1, 20, h, 16, 11, 8);
        cfg.attention_dir = if causal {
            AttentionDir::Causal
        } else {
            AttentionDir::Bidirectional
        };
        cfg.attn_scores_soft_cap = cap;
        if kv != h {
            cfg.n_key_value_heads = Some(kv);
        }
        let model = Transformer::random(cfg, 1, &Device::Cpu).unwrap();
        let mut rand = |shape: &[usize]| {
            let n: usize = shape.iter().product();
            t(
                &(0..n)
                    .map(|_| rng.random_range(-2.0f32..2.0))
                    .collect::<Vec<_>>(),
                shape,
            )
        };
        let (q, k, vv) = (
            rand(&[b, p, h, e]),
            rand(&[b, p, kv, e]),
            rand(&[b, p, kv, e]),
        );
        let scale = 2.3f64;
        let spec = attention_cpu::CoreSpec {
            scale: scale as f32,
            causal,
            soft_cap: cap.map(|c| c as f32),
            keep_scores: true,
            keep_pattern: true,
        };
        let core = attention_cpu::attention_core(&q, &k, &vv, &spec)
            .unwrap()
            .unwrap();
        let sel = HookSelection::All;
        let mut run = Run {
            select: &sel,
            interventions: &[],
            cache: ActivationCache::default(),
        };
        let mask = causal.then(|| model.causal_mask(p).unwrap());
        let z = model
            .attention_tensors(q, k, vv, (b, p, h, e), scale, mask.as_ref(), 0, &mut run)
            .unwrap();
        let close = |a: &Tensor, b: &Tensor, what: &str| {
            for (x, y) in v(a).iter().zip(v(b)) {
                let same = (x.is_infinite() && *x == y) || (x - y).abs() < 1e-5;
                assert!(
                    same,
                    "{what} (causal {causal}, kv {kv}, cap {cap:?}): {x} vs {y}"
                );
            }
        };
        close(&core.z, &z, "z");
        let hook = |a| run.cache.get(&HookPoint::attn(0, a)).unwrap().clone();
        close(
            core.scores.as_ref().unwrap(),
            &hook(AttnHook::AttnScores),
            "scores",
        );
        close(
            core.pattern.as_ref().unwrap(),
            &hook(AttnHook::Pattern),
            "pattern",
        );
    }
}

/// `forward_hooks` stops after the last layer its hooks need, with the same values as a full
/// forward, and without logits.
#[test]
fn forward_hooks_stops_at_the_last_layer_needed() {
    let model =
        Transformer::random(ModelConfig::simple(4, 16, 2, 32, 9, 8), 3, &Device::Cpu).unwrap();
    let tokens = TokenBatch::new(&[vec![1, 2, 3, 4], vec![5, 6, 7, 8]]).unwrap();
    let wanted = [
        HookPoint::block(1, BlockHook::ResidPost),
        HookPoint::attn(0, AttnHook::Pattern),
        HookPoint::Embed,
    ];
    let opts = RunOptions::cache(HookSelection::only(wanted));
    assert_eq!(model.last_layer_needed(&opts), Some(1));
    let early = model.forward_hooks(&tokens, &opts).unwrap();
    let full = model.forward(&tokens, &opts).unwrap();
    assert_eq!(early.len(), 3);
    for h in wanted {
        assert_eq!(
            v(early.get(&h).unwrap()),
            v(full.cache.get(&h).unwrap()),
            "{h}"
        );
    }
    // A hook after the blocks needs the whole model.
    let all = RunOptions::cache(HookSelection::only([HookPoint::UnembedIn]));
    assert_eq!(model.last_layer_needed(&all), None);
    assert!(
        model
            .forward_hooks(&tokens, &all)
            .unwrap()
            .get(&HookPoint::UnembedIn)
            .is_some()
    );
    // An absent hook is still an error.
    let absent = RunOptions::cache(HookSelection::only([HookPoint::block(
        9,
        BlockHook::ResidPost,
    )]));
    assert!(model.forward_hooks(&tokens, &absent).is_err());
}

/// The fused CPU stages and the tensor path compute the same forward: patching a hook inside a
/// fused stage with its own clean value sends that stage down the tensor path, and the logits and
/// every later hook must come out as in the clean (fused) run.
#[test]
fn fused_stages_agree_with_the_tensor_path() {
    for act in [ActFn::Relu, ActFn::Gelu, ActFn::GeluNew] {
        for norm in [Normalization::LayerNorm, Normalization::Rms] {
            let mut cfg = ModelConfig::simple(2, 24, 3, 40, 11, 9);
            cfg.act_fn = Some(act);
            cfg.normalization = norm;
            let model = Transformer::random(cfg, 5, &Device::Cpu).unwrap();
            let rows: Vec<Vec<u32>> = (0..6)
                .map(|b| (0..7).map(|p| ((b * 7 + p * 3) % 11) as u32).collect())
                .collect();
            let tokens = TokenBatch::new(&rows).unwrap();
            let clean = model
                .forward(&tokens, &RunOptions::cache(HookSelection::All))
                .unwrap();
            let inside = [
                HookPoint::block(0, BlockHook::Ln1(NormHook::Scale)),
                HookPoint::block(0, BlockHook::Ln1(NormHook::Normalized)),
                HookPoint::block(1, BlockHook::Ln2(NormHook::Scale)),
                HookPoint::mlp(0, MlpHook::Pre),
                HookPoint::mlp(1, MlpHook::Pre),
                HookPoint::LnFinal(NormHook::Normalized),
            ];
            for hook in inside {
                let value = clean.cache.get(&hook).unwrap().clone();
                let patch = [Intervention::new(Site::hook(hook), Action::Replace(value))];
                let opts = RunOptions {
                    cache: HookSelection::All,
                    interventions: &patch,
                };
                let patched = model.forward(&tokens, &opts).unwrap();
                let what = format!("{act:?} {norm:?} {hook}");
                let close = |a: &Tensor, b: &Tensor| {
                    let d = (a - b).unwrap().abs().unwrap().flatten_all().unwrap();
                    d.max(0).unwrap().to_scalar::<f32>().unwrap()
                };
                assert!(
                    close(&patched.logits, &clean.logits) < 1e-5,
                    "{what}: logits"
                );
                for (h, t) in patched.cache.iter() {
                    let want = clean.cache.get(h).unwrap();
                    assert!(close(t, want) < 1e-5, "{what}: {h}");
                }
            }
        }
    }
}
