use std::path::Path;

use candle_core::Device;

use super::*;
use crate::compile::{CompileOptions, compile_checked};
use crate::model::{AttnHook, BlockHook, HookPoint, RunOptions, Site, TokenBatch};

fn reverse() -> (Program, Compiled) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/tracr/reverse.interp");
    let spec = crate::lang::load(&path).expect("the bundled spec loads");
    let program = spec.programs["tracr_reverse"].clone();
    let (compiled, _) = compile_checked(&program, &CompileOptions::default(), 0).unwrap();
    (program, compiled)
}

fn z(layer: usize, head: usize) -> Site {
    Site::hook(HookPoint::attn(layer, AttnHook::Z)).with_head(head)
}

fn mlp_out(layer: usize) -> Site {
    Site::hook(HookPoint::Block {
        layer,
        hook: BlockHook::MlpOut,
    })
}

fn tiny() -> TrainOptions {
    TrainOptions {
        seed: 5,
        steps: 3,
        batch: 8,
        eval_every: 3,
        eval_pairs: 8,
        ..TrainOptions::default()
    }
}

fn weight_bytes(t: &Transformer) -> Vec<(String, Vec<f32>)> {
    t.weights()
        .named()
        .into_iter()
        .map(|(n, w)| (n, w.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn the_compiled_layout_is_where_the_compiler_put_each_variable() {
    let (program, compiled) = reverse();
    let corr = Correspondence::compiled_layout(&program, &compiled).unwrap();
    let names: Vec<&str> = corr.variables.iter().map(|v| v.variable.as_str()).collect();
    assert_eq!(names, ["length", "opp_idx", "opp_idx_1", "output"]);
    assert_eq!(corr.variables[0].sites, [z(0, 0), mlp_out(0)]);
    assert_eq!(corr.variables[3].sites, [z(1, 0)]);
    assert_eq!(corr.extent(), (2, 1));
    assert!(
        corr.block_text("tracr_reverse")
            .contains("output -> blocks.1.attn.hook_z[0]")
    );
}

#[test]
fn the_strict_term_resamples_exactly_the_unaligned_components() {
    let (program, compiled) = reverse();
    let corr = Correspondence::compiled_layout(&program, &compiled).unwrap();
    let arch = Architecture {
        n_layers: 3,
        n_heads: 2,
        ..Architecture::default_for(&compiled, &corr)
    };
    let free = corr.unaligned_nodes(&arch.config());
    // Layer 0: head 0 and the MLP are aligned; layer 1: head 0; layer 2: nothing.
    assert_eq!(
        free,
        [z(0, 1), z(1, 1), mlp_out(1), z(2, 0), z(2, 1), mlp_out(2)]
    );
    // A whole-stream site makes everything up to its layer part of the alignment.
    let mut stream = corr.clone();
    stream.variables[0].sites = vec![Site::hook(HookPoint::Block {
        layer: 1,
        hook: BlockHook::ResidPost,
    })];
    assert_eq!(
        stream.unaligned_nodes(&arch.config()),
        [z(2, 0), z(2, 1), mlp_out(2)]
    );
}

#[test]
fn map_params_keeps_the_forward_pass() {
    let (program, compiled) = reverse();
    let corr = Correspondence::compiled_layout(&program, &compiled).unwrap();
    let arch = Architecture::default_for(&compiled, &corr);
    let model = arch.init(3, &Device::Cpu).unwrap();
    let same = Transformer::new(
        model.config().clone(),
        model.weights().map_params(|_, t| Ok(t.clone())).unwrap(),
    )
    .unwrap();
    let tokens = TokenBatch::new(&[vec![0, 1, 2, 3], vec![0, 3, 3, 1]]).unwrap();
    let a = model
        .forward(&tokens, &RunOptions::default())
        .unwrap()
        .logits;
    let b = same
        .forward(&tokens, &RunOptions::default())
        .unwrap()
        .logits;
    let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
    assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
    assert!(
        model
            .weights()
            .map_params(|_, t| t.narrow(0, 0, 1))
            .is_err(),
        "a reshaped parameter is refused"
    );
}

/// The training objective of reverse's compiled layout for a model shaped `cfg`, at `batch`.
fn reverse_objective<'a>(
    program: &'a Program,
    compiled: &Compiled,
    corr: &'a Correspondence,
    cfg: &crate::model::ModelConfig,
    batch: usize,
) -> Objective<'a> {
    let dom = domain(&program.task, 0).unwrap();
    Objective {
        program,
        data: TaskData::new(program, compiled, dom.inputs).unwrap(),
        corr,
        unaligned: corr.unaligned_nodes(cfg),
        batch,
        weights: LossWeights::default(),
        tolerance: 0.01,
    }
}

#[test]
fn every_parameter_gets_a_gradient_through_an_interchange() {
    // The training forward (tensor attention path, patched sites) must reach every weight:
    // a parameter without gradient would silently never train.
    let (program, compiled) = reverse();
    let corr = Correspondence::compiled_layout(&program, &compiled).unwrap();
    let arch = Architecture::default_for(&compiled, &corr);
    let init = arch.init(1, &Device::Cpu).unwrap();
    let params = Params::new(&init).unwrap();
    let model = params.model(&init, Mode::Train).unwrap();
    let objective = reverse_objective(&program, &compiled, &corr, model.config(), 16);
    let loss = objective.step(&model, 1, &mut stream(0, 9)).unwrap();
    assert!(loss.interchange.is_some() && loss.strict.is_some());
    let grads = loss.total.backward().unwrap();
    let names: Vec<String> = init.weights().named().into_iter().map(|(n, _)| n).collect();
    for (name, var) in names.iter().zip(&params.vars) {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no gradient"));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(norm.is_finite(), "{name}: gradient {norm}");
    }
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let (program, compiled) = reverse();
    let corr = Correspondence::compiled_layout(&program, &compiled).unwrap();
    let quiet = Progress::hidden();
    let a = train(&program, &compiled, &corr, &tiny(), &quiet).unwrap();
    let b = train(&program, &compiled, &corr, &tiny(), &quiet).unwrap();
    assert_eq!(a.report.steps, 3);
    assert_eq!(weight_bytes(&a.model), weight_bytes(&b.model));
    assert_eq!(a.report.history, b.report.history);
    let other = TrainOptions { seed: 6, ..tiny() };
    let c = train(&program, &compiled, &corr, &other, &quiet).unwrap();
    assert_ne!(weight_bytes(&a.model), weight_bytes(&c.model));
    // Training moved the weights away from their initial values.
    let init = Architecture::default_for(&compiled, &corr)
        .init(derived_seed(5, STREAM_INIT), &Device::Cpu)
        .unwrap();
    assert_ne!(weight_bytes(&a.model), weight_bytes(&init));
}

#[test]
fn drawn_architectures_hold_the_circuit_and_follow_the_seed() {
    let (program, compiled) = reverse();
    let corr = Correspondence::compiled_layout(&program, &compiled).unwrap();
    let draws: Vec<Architecture> = (0..12)
        .map(|s| Architecture::draw(&compiled, &corr, &mut stream(s, STREAM_ARCHITECTURE)))
        .collect();
    for a in &draws {
        assert!(a.n_layers >= 2 && a.n_heads >= 1);
        let model = a.init(0, &Device::Cpu).unwrap();
        for s in corr.variables.iter().flat_map(|v| &v.sites) {
            model.check_site(s).unwrap();
        }
    }
    assert!(draws.windows(2).any(|w| w[0] != w[1]), "the draws vary");
    assert_eq!(
        draws[3],
        Architecture::draw(&compiled, &corr, &mut stream(3, STREAM_ARCHITECTURE))
    );
}

/// A layer and head of every block site of `corr`, in order.
fn placed(corr: &Correspondence) -> Vec<(String, usize, Option<usize>)> {
    corr.variables
        .iter()
        .flat_map(|v| {
            v.sites.iter().filter_map(move |s| match s.hook {
                HookPoint::Block { layer, .. } => Some((v.variable.clone(), layer, s.head)),
                _ => None,
            })
        })
        .collect()
}

#[test]
fn a_drawn_correspondence_keeps_the_order_of_layers_and_fits_the_architecture() {
    let (program, compiled) = reverse();
    let corr = Correspondence::compiled_layout(&program, &compiled).unwrap();
    // No spare layer or head: nothing can move.
    let tight = Architecture::default_for(&compiled, &corr);
    let same = corr.draw(&tight, &mut stream(1, 0));
    assert_eq!(same.name, "tracr_reverse_compiled_drawn");
    assert_eq!(placed(&same), placed(&corr));
    // One spare layer and one spare head: layers map increasingly, heads stay in range.
    let roomy = Architecture {
        n_layers: tight.n_layers + 1,
        n_heads: tight.n_heads + 1,
        ..tight
    };
    let original = placed(&corr);
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let drawn = corr.draw(&roomy, &mut stream(seed, 7));
        assert_eq!(drawn, corr.draw(&roomy, &mut stream(seed, 7)), "seeded");
        let now = placed(&drawn);
        assert_eq!(now.len(), original.len());
        for (a, b) in original.iter().zip(&now) {
            assert_eq!(a.0, b.0);
            assert!(b.1 < roomy.n_layers && b.2.is_none_or(|h| h < roomy.n_heads));
        }
        for i in 0..original.len() {
            for j in 0..original.len() {
                if original[i].1 < original[j].1 {
                    assert!(now[i].1 < now[j].1, "{original:?} -> {now:?}");
                }
                if original[i].1 == original[j].1 {
                    assert_eq!(now[i].1, now[j].1);
                }
            }
        }
        seen.insert(now);
    }
    // Both the spare layer's place and the head permutation vary with the seed.
    assert!(seen.len() >= 4, "{seen:?}");
    // Training on a drawn correspondence aligns the drawn sites.
    let opts = TrainOptions {
        random_architecture: true,
        random_correspondence: true,
        ..tiny()
    };
    let t = train(&program, &compiled, &corr, &opts, &Progress::hidden()).unwrap();
    assert!(t.correspondence.name.ends_with("_drawn"));
    for s in t.correspondence.variables.iter().flat_map(|v| &v.sites) {
        t.model.check_site(s).unwrap();
    }
}

#[test]
fn a_step_over_several_lengths_averages_their_terms() {
    let (program, compiled) = reverse();
    let corr = Correspondence::compiled_layout(&program, &compiled).unwrap();
    let arch = Architecture::default_for(&compiled, &corr);
    let init = arch.init(1, &Device::Cpu).unwrap();
    // A step over two lengths draws what two one-length steps of half the batch draw, on the
    // same stream, and its terms are their means.
    let objective = |batch| reverse_objective(&program, &compiled, &corr, init.config(), batch);
    let (objective, half) = (objective(16), objective(8));
    let mut rng = stream(0, 9);
    let two = objective.step(&init, 2, &mut rng).unwrap();
    let mut rng = stream(0, 9);
    let a = half.step(&init, 1, &mut rng).unwrap();
    let b = half.step(&init, 1, &mut rng).unwrap();
    let value = |l: &objective::StepLoss| l.total.to_scalar::<f32>().unwrap();
    assert!((value(&two) - (value(&a) + value(&b)) / 2.0).abs() < 1e-5);
    assert!((two.behaviour - (a.behaviour + b.behaviour) / 2.0).abs() < 1e-6);
    let mean = |x: Option<f32>, y: Option<f32>| (x.unwrap() + y.unwrap()) / 2.0;
    assert!((two.interchange.unwrap() - mean(a.interchange, b.interchange)).abs() < 1e-6);
    assert!((two.strict.unwrap() - mean(a.strict, b.strict)).abs() < 1e-6);
}

#[test]
fn clipping_scales_the_gradient_to_the_norm_and_leaves_small_ones_alone() {
    let x = Var::new(&[3f32, 4.0], &Device::Cpu).unwrap();
    let y = Var::new(&[12f32], &Device::Cpu).unwrap();
    let loss = ((x.as_tensor().sum_all().unwrap() + y.as_tensor().sum_all().unwrap()).unwrap()
        * 1.0)
        .unwrap();
    // d loss / d each element = 1: a global norm of sqrt(3).
    let norm = |g: &candle_core::backprop::GradStore| {
        [&x, &y]
            .iter()
            .map(|v| {
                g.get(v.as_tensor())
                    .unwrap()
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            })
            .sum::<f32>()
            .sqrt()
    };
    let vars = [x.clone(), y.clone()];
    let mut g = loss.backward().unwrap();
    clip(&mut g, &vars, 0.5).unwrap();
    assert!((norm(&g) - 0.5).abs() < 1e-6, "{}", norm(&g));
    let mut g = loss.backward().unwrap();
    clip(&mut g, &vars, 10.0).unwrap();
    assert!((norm(&g) - 3f32.sqrt()).abs() < 1e-6);
}

#[test]
fn bad_step_settings_are_refused() {
    let (program, compiled) = reverse();
    let corr = Correspondence::compiled_layout(&program, &compiled).unwrap();
    for opts in [
        TrainOptions {
            lengths_per_step: 0,
            ..tiny()
        },
        TrainOptions {
            lengths_per_step: 9,
            ..tiny()
        },
    ] {
        let err = train(&program, &compiled, &corr, &opts, &Progress::hidden())
            .err()
            .expect("refused");
        assert!(err.to_string().contains("lengths per step"), "{err}");
    }
}

#[test]
fn the_layout_aligns_unnamed_components_with_their_consumer_and_drops_fused_variables() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/toy/check_alternating.interp");
    let spec = crate::lang::load(&path).expect("the bundled spec loads");
    let program = &spec.programs["check_alternating"];
    let (compiled, _) = compile_checked(program, &CompileOptions::default(), 0).unwrap();
    let corr = Correspondence::compiled_layout(program, &compiled).unwrap();
    let names: Vec<&str> = corr.variables.iter().map(|v| v.variable.as_str()).collect();
    // `shifted_even_odd` shares its MLP with `checks`, which also reads the tokens: dropped.
    assert_eq!(names, ["shifted_sequence", "checks", "output"]);
    // The selector width inside `output = map(f, selector_width(...))` is layer 1's head.
    assert_eq!(corr.variables[2].sites, [z(1, 0), mlp_out(1)]);
    // Nothing the compiled model computes with is left for the strict term to resample.
    let arch = Architecture::default_for(&compiled, &corr);
    assert!(corr.unaligned_nodes(&arch.config()).is_empty());
    // Reverse keeps `opp_idx` beside `opp_idx_1 = opp_idx - 1` in the same MLP: an interchange
    // of `opp_idx` sets `opp_idx_1` to its source value either way.
    let (program, compiled) = reverse();
    let corr = Correspondence::compiled_layout(&program, &compiled).unwrap();
    assert_eq!(corr.variables.len(), 4);
}
