//! Sampled implementations: each family, on representative programs, gives 20 implementations
//! that load in the runtime and equal the reference evaluator on the whole domain; they really
//! differ from the compiled model and from each other; sampling is seeded and independent of the
//! thread count.

use crate::support::compile as compile_support;

use std::collections::BTreeSet;

use compile_support::{
    RuntimeModel, assert_matches_expected, equal_up_to_permutation, expected_outputs, load_program,
    read_json, root,
};
use congruity::compile::sample::{Family, sample_one, sample_to_dir};
use congruity::compile::{CompileOptions, Compiled, check, compile_program};
use congruity::lang::ir::Program;

/// Multi-layer fused maps, multi-head numerical, product selectors, a numerical output.
const REPRESENTATIVE: [(&str, &str); 5] = [
    ("specs/tracr/reverse.interp", "tracr_reverse"),
    ("specs/tracr/shuffle_dyck2.interp", "tracr_shuffle_dyck2"),
    ("specs/tracr/sort_freq.interp", "tracr_sort_freq"),
    (
        "specs/alternatives/sort_by_counting.interp",
        "sort_by_counting",
    ),
    ("specs/tracr/pair_balance.interp", "tracr_pair_balance"),
];

const COUNT: u64 = 20;

fn compiled(file: &str, name: &str) -> (Program, Compiled) {
    let program = load_program(&root().join(file), name);
    let c = compile_program(&program, &CompileOptions::default()).unwrap();
    (program, c)
}

fn bits(w: &congruity::compile::Weights) -> Vec<u64> {
    let mut v: Vec<u64> = w
        .w_e
        .data
        .iter()
        .chain(&w.w_pos.data)
        .map(|x| x.to_bits())
        .collect();
    for l in &w.layers {
        for h in &l.heads {
            for m in [&h.w_q, &h.w_k, &h.w_v, &h.w_o] {
                v.extend(m.data.iter().map(|x| x.to_bits()));
            }
        }
        v.extend(l.w_in.data.iter().chain(&l.w_out.data).map(|x| x.to_bits()));
    }
    v.extend(w.w_u.data.iter().map(|x| x.to_bits()));
    v
}

fn check_family(family: Family) {
    let tmp = tempfile::tempdir().unwrap();
    for (file, name) in REPRESENTATIVE {
        let (program, c) = compiled(file, name);
        let domain = check::domain(&program.task, 0).unwrap();
        let expected = expected_outputs(&program, &domain);
        let out = tmp.path().join(name);
        sample_to_dir(&c, &[family], 11, COUNT, &out).unwrap();
        let mut distinct = BTreeSet::new();
        let base = bits(&c.weights);
        for i in 0..COUNT {
            let dir = out.join(format!("{i:04}"));
            let model = RuntimeModel::load(&dir);
            let outputs = model.outputs(&c, &domain.inputs);
            assert_matches_expected(
                &format!("{name} [{family} #{i}]"),
                &domain,
                &expected,
                &outputs,
            );
            let s = sample_one(&c, &[family], 11, i).unwrap();
            distinct.insert(bits(&s.weights));
            // The sidecar records the seed and family.
            let sidecar = read_json(&dir.join("congruity.json"));
            assert_eq!(
                sidecar["provenance"]["family"],
                serde_json::json!([family.name()])
            );
            assert_eq!(sidecar["provenance"]["seed"], serde_json::json!(s.seed));
        }
        distinct.remove(&base);
        // Placement and permutations can only produce as many variants as there is slack / are
        // orderings (2 heads have one other order); continuous families differ on every item.
        let units = c.shape().d_mlp;
        match family {
            Family::Placement => assert!(
                !distinct.is_empty(),
                "{name}: placement never moved anything"
            ),
            Family::HeadOrder if c.weights.n_heads == 1 => {}
            Family::HeadOrder => assert!(!distinct.is_empty(), "{name}: head order never changed"),
            Family::MlpPermutation if units < 5 => {
                assert!(!distinct.is_empty(), "{name}: units never moved")
            }
            _ => assert_eq!(
                distinct.len(),
                COUNT as usize,
                "{name}: {family} samples coincide"
            ),
        }
    }
}

#[test]
fn family_rotation() {
    check_family(Family::Rotation);
}
#[test]
fn family_noise_width() {
    check_family(Family::NoiseWidth);
}
#[test]
fn family_placement() {
    check_family(Family::Placement);
}
#[test]
fn family_head_order() {
    check_family(Family::HeadOrder);
}
#[test]
fn family_mlp_permutation() {
    check_family(Family::MlpPermutation);
}
#[test]
fn family_rescale() {
    check_family(Family::Rescale);
}
#[test]
fn family_overprovision() {
    check_family(Family::Overprovision);
}
#[test]
fn family_sharpness() {
    check_family(Family::Sharpness);
}

/// Every interpretation, 20 implementations drawn from all families at once, each checked on up to
/// 1,000 inputs of its domain check set (all of it for small domains; the per-family tests above
/// use the whole set on representative programs).
#[test]
fn every_interpretation_with_all_families() {
    let tmp = tempfile::tempdir().unwrap();
    for (_, program) in compile_support::all_programs() {
        let started = std::time::Instant::now();
        let c = compile_program(&program, &CompileOptions::default()).unwrap();
        let mut domain = check::domain(&program.task, 0).unwrap();
        domain.inputs.truncate(1000);
        let expected = expected_outputs(&program, &domain);
        let out = tmp.path().join(&program.name);
        sample_to_dir(&c, &Family::ALL, 5, COUNT, &out).unwrap();
        for i in 0..COUNT {
            let model = RuntimeModel::load(&out.join(format!("{i:04}")));
            let outputs = model.outputs(&c, &domain.inputs);
            assert_matches_expected(
                &format!("{} [all families #{i}]", program.name),
                &domain,
                &expected,
                &outputs,
            );
        }
        eprintln!("{}: {:.1}s", program.name, started.elapsed().as_secs_f64());
    }
}

#[test]
fn representations_are_not_a_permutation_of_each_other() {
    let (program, c) = compiled("specs/tracr/reverse.interp", "tracr_reverse");
    let domain = check::domain(&program.task, 0).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    c.write(&tmp.path().join("base")).unwrap();
    let base = RuntimeModel::load(&tmp.path().join("base")).representations(&c, &domain.inputs);
    for families in [vec![Family::Rotation], Family::ALL.to_vec()] {
        let out = tmp.path().join(format!("{}", families.len()));
        sample_to_dir(&c, &families, 3, 2, &out).unwrap();
        let a = RuntimeModel::load(&out.join("0000")).representations(&c, &domain.inputs);
        let b = RuntimeModel::load(&out.join("0001")).representations(&c, &domain.inputs);
        assert!(
            !equal_up_to_permutation(&a, &b, 1e-3),
            "{families:?}: two samples are a permutation of each other"
        );
        assert!(
            !equal_up_to_permutation(&a, &base, 1e-3),
            "{families:?}: a sample is a permutation of the compiled model"
        );
    }
    // Sanity check of the test itself: the compiled model is a permutation of itself, and a
    // hidden-unit permutation leaves the residual stream untouched.
    assert!(equal_up_to_permutation(&base, &base, 1e-6));
    let out = tmp.path().join("perm");
    sample_to_dir(&c, &[Family::MlpPermutation], 3, 1, &out).unwrap();
    let p = RuntimeModel::load(&out.join("0000")).representations(&c, &domain.inputs);
    assert!(equal_up_to_permutation(&p, &base, 1e-5));
}

#[test]
fn sampling_is_deterministic_whatever_the_thread_count() {
    let (_, c) = compiled("specs/tracr/sort_freq.interp", "tracr_sort_freq");
    let tmp = tempfile::tempdir().unwrap();
    let run = |threads: usize, dir: &std::path::Path| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| sample_to_dir(&c, &Family::ALL, 42, 6, dir).unwrap());
    };
    run(1, &tmp.path().join("one"));
    run(4, &tmp.path().join("four"));
    for i in 0..6 {
        for f in [
            "model.safetensors",
            "config.json",
            "congruity.json",
            "compile.json",
            "basis.safetensors",
        ] {
            let a = std::fs::read(tmp.path().join("one").join(format!("{i:04}")).join(f)).unwrap();
            let b = std::fs::read(tmp.path().join("four").join(format!("{i:04}")).join(f)).unwrap();
            assert!(
                a == b,
                "sample {i} file {f} differs between 1 and 4 threads"
            );
        }
    }
}
