//! `sample --family intervened`: implementations of tracr_reverse whose output head is patched
//! from a corrupted input of the same length answer the reverse of that corrupted input; they
//! run patched in `compare` and are refused where they would silently run unpatched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use congruity::experiment::chain::{ChainPatch, StageModel, run_chain};
use congruity::experiment::extract::RepresentationSpec;
use congruity::experiment::intervened::Intervention;
use congruity::lang::ir::Value;

fn congruity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_congruity"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn sample(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "sample",
        "specs/circuits/tracr_reverse.interp",
        "--program",
        "tracr_reverse",
        "--family",
        "intervened",
        "--circuit",
        "tracr_reverse_compiled",
        "--count",
        "3",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    congruity(&args)
}

fn members(pool: &Path) -> Vec<PathBuf> {
    (0..3).map(|i| pool.join(format!("{i:04}"))).collect()
}

fn sym(s: &str) -> Vec<Value> {
    s.split_whitespace().map(Value::sym).collect()
}

#[test]
fn an_intervened_output_head_answers_the_reverse_of_its_corrupted_input() {
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path().join("output");
    let o = sample(&pool, &["--variable", "output"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let inputs: Vec<Vec<Value>> = ["a", "b c", "c a b", "a b c a", "b b a c"]
        .iter()
        .map(|s| sym(s))
        .collect();
    let mut corrupted_seen = std::collections::BTreeSet::new();
    for dir in members(&pool) {
        let i = Intervention::read(&dir).unwrap().expect("an intervention");
        assert_eq!(i.variable.as_deref(), Some("output"));
        assert_eq!(i.sites, ["blocks.1.attn.hook_z[0]"]);
        assert_eq!(
            i.corrupted.keys().copied().collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        corrupted_seen.insert(i.corrupted.clone());
        // Patched, the model reads the tokens from the corrupted input of the same length.
        let loaded = congruity::model::load_base(&dir, &congruity::Device::Cpu).unwrap();
        let stage = StageModel {
            program: "tracr_reverse".into(),
            transformer: loaded.transformer,
            sidecar: loaded.sidecar.unwrap(),
            adapter: None,
            vocab: None,
        };
        let corrupted = i.corrupted_for(&inputs).unwrap();
        let run = run_chain(
            std::slice::from_ref(&stage),
            &inputs,
            &RepresentationSpec::default(),
            None,
            Some(&ChainPatch {
                stage: 0,
                sites: i.parsed_sites().unwrap(),
                corrupted: &corrupted,
            }),
        )
        .unwrap();
        for (k, out) in run.outputs[0].iter().enumerate() {
            let mut want = corrupted[k].clone();
            want.reverse();
            assert_eq!(out, &want, "{}: input {:?}", dir.display(), inputs[k]);
        }
    }
    assert!(
        corrupted_seen.len() > 1,
        "each member draws its own corrupted inputs"
    );

    // Run alone it would be its base model: refused, with the reason.
    let run = congruity(&[
        "run",
        "--model",
        members(&pool)[0].to_str().unwrap(),
        "--input",
        "a b c",
    ]);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("intervened implementation"), "{err}");

    // In `compare` it is a pool like any other, run patched.
    let cmp = congruity(&[
        "compare",
        "specs/circuits/tracr_reverse.interp",
        "--interpretations",
        "tracr_reverse",
        "--models",
        pool.to_str().unwrap(),
        "--samples",
        "3",
        "--seed",
        "1",
        "--inputs",
        "30",
        "--bootstraps",
        "2",
        "--draws",
        "10",
        "--json",
    ]);
    assert!(
        cmp.status.success(),
        "{}",
        String::from_utf8_lossy(&cmp.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&cmp.stdout).unwrap();
    assert_eq!(v["pools"][1]["count"], 3);
    assert_eq!(v["pools"][1]["kind"], "models");
}

#[test]
fn intervened_samples_of_a_whole_circuit_choose_heads_per_member_and_bad_requests_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path().join("two");
    let o = sample(&pool, &["--patch-heads", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut choices = std::collections::BTreeSet::new();
    for dir in members(&pool) {
        let i = Intervention::read(&dir).unwrap().unwrap();
        assert_eq!(i.sites.len(), 2);
        assert!(i.variable.is_none());
        choices.insert(i.sites);
    }
    assert!(!choices.is_empty());
    // Intervening on an intervened pool, an unknown variable, no circuit: refused.
    let fails = |o: Output, needle: &str| {
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "lacks `{needle}`: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };
    fails(
        sample(
            &tmp.path().join("again"),
            &["--from", pool.to_str().unwrap()],
        ),
        "intervened already",
    );
    fails(
        sample(&tmp.path().join("nope"), &["--variable", "nope"]),
        "has no variable `nope`",
    );
    fails(
        congruity(&[
            "sample",
            "specs/circuits/tracr_reverse.interp",
            "--program",
            "tracr_reverse",
            "--family",
            "intervened",
            "--count",
            "1",
            "--seed",
            "1",
            "--out",
            tmp.path().join("x").to_str().unwrap(),
        ]),
        "needs --circuit",
    );
    assert!(!tmp.path().join("again").exists() && !tmp.path().join("nope").exists());
}
