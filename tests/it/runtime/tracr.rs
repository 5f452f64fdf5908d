//! tracr import: the imported `tests/fixtures/tracr/*` models give the compiled outputs of
//! every `io.json` case and the per-layer activations of `activations.safetensors`; and IIA on
//! them behaves as the programs say.

use crate::support::runtime as runtime_common;

use std::collections::BTreeMap;

use candle_core::Device;
use congruity::intervene::{
    Alignment, InterchangePair, Readout, interchange_intervention_accuracy,
};
use congruity::model::io::read_safetensors;
use congruity::model::{
    AttnHook, BlockHook, HookPoint, HookSelection, LoadedModel, ModelFormat, OutputValue,
    RunOptions, Site, TokenBatch, load,
};
use runtime_common::{
    assert_close, case_dirs, case_name, fixtures, input_symbols, read_json, token_ids,
};
use serde_json::Value;

#[test]
fn every_io_case_reproduces_the_compiled_model_output() {
    for dir in case_dirs("tracr") {
        let case = case_name(&dir);
        let model = load(&dir, &Device::Cpu).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(model.format, ModelFormat::Tracr);
        let io = read_json(&dir.join("io.json"));
        let cases = io["cases"].as_array().unwrap();
        // Batch the cases by length.
        let mut by_len: BTreeMap<usize, Vec<&Value>> = BTreeMap::new();
        for c in cases {
            by_len
                .entry(c["input"].as_array().unwrap().len())
                .or_default()
                .push(c);
        }
        let mut checked = 0;
        for group in by_len.values() {
            let inputs: Vec<Vec<String>> =
                group.iter().map(|c| input_symbols(&c["input"])).collect();
            // The sidecar encoding equals tracr's token_ids (BOS first).
            for (c, input) in group.iter().zip(&inputs) {
                assert_eq!(
                    model.sidecar.as_ref().unwrap().encode(input).unwrap(),
                    token_ids(&c["token_ids"]),
                    "{case}"
                );
            }
            let outputs = model.run_symbols(&inputs).unwrap();
            for (c, got) in group.iter().zip(&outputs) {
                let want: Vec<Value> = c["model"].as_array().unwrap().clone();
                let got: Vec<Value> = got.iter().map(OutputValue::to_json).collect();
                assert_eq!(got, want, "{case}: input {}", c["input"]);
                checked += 1;
            }
        }
        assert_eq!(checked, cases.len());
        eprintln!("{case}: {checked}/{} io.json cases reproduced", cases.len());
    }
}

#[test]
fn per_layer_activations_match_tracr() {
    for dir in case_dirs("tracr") {
        let case = case_name(&dir);
        let model = load(&dir, &Device::Cpu).unwrap().transformer;
        let meta = read_json(&dir.join("meta.json"));
        let acts = read_safetensors(&dir.join("activations.safetensors"), &Device::Cpu).unwrap();
        let n_layers = model.config().n_layers;
        let mut compared = 0;
        for item in meta["activation_inputs"].as_array().unwrap() {
            let k = item["index"].as_u64().unwrap();
            let out = model
                .forward(
                    &TokenBatch::single(token_ids(&item["token_ids"])).unwrap(),
                    &RunOptions::cache(HookSelection::All),
                )
                .unwrap();
            let hook = |h: HookPoint| out.cache.get(&h).unwrap().squeeze(0).unwrap();
            let mut check = |name: String, got: candle_core::Tensor| {
                let want = acts
                    .get(&name)
                    .unwrap_or_else(|| panic!("{case}: no {name}"));
                assert_close(&format!("{case}/{name}"), &got, want);
                compared += 1;
            };
            check(
                format!("{k}.input_embeddings"),
                hook(HookPoint::block(0, BlockHook::ResidPre)),
            );
            for l in 0..n_layers {
                // tracr's name for each TransformerLens hook of layer l.
                for (tracr_name, tl_hook) in [
                    ("attn.logits", HookPoint::attn(l, AttnHook::AttnScores)),
                    ("attn.out", HookPoint::block(l, BlockHook::AttnOut)),
                    ("attn.resid_post", HookPoint::block(l, BlockHook::ResidMid)),
                    ("mlp.out", HookPoint::block(l, BlockHook::MlpOut)),
                    ("mlp.resid_post", HookPoint::block(l, BlockHook::ResidPost)),
                ] {
                    check(format!("{k}.layer_{l}.{tracr_name}"), hook(tl_hook));
                }
            }
            check(format!("{k}.output"), hook(HookPoint::UnembedIn));
            let argmax = out
                .logits
                .squeeze(0)
                .unwrap()
                .argmax(1)
                .unwrap()
                .to_dtype(candle_core::DType::F32)
                .unwrap();
            check(format!("{k}.unembedded"), argmax);
        }
        assert_eq!(
            compared,
            acts.len(),
            "{case}: every tensor of activations.safetensors is checked"
        );
        eprintln!("{case}: {compared} activation tensors match");
    }
}

fn tracr(name: &str) -> LoadedModel {
    load(&fixtures().join("tracr").join(name), &Device::Cpu).unwrap()
}

/// All sequences over `vocab` of length `n`.
fn all_inputs(vocab: &[&str], n: usize) -> Vec<Vec<String>> {
    let mut out = vec![vec![]];
    for _ in 0..n {
        out = out
            .into_iter()
            .flat_map(|prefix: Vec<String>| {
                vocab.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push(v.to_string());
                    p
                })
            })
            .collect();
    }
    out
}

/// Pairs (base, source) over all inputs of length `n`, source = the input `shift` places on.
fn pairs(model: &LoadedModel, vocab: &[&str], n: usize, variable: &str) -> Vec<InterchangePair> {
    let inputs = all_inputs(vocab, n);
    let sc = model.sidecar.as_ref().unwrap();
    (0..inputs.len())
        .map(|i| InterchangePair {
            base: sc.encode(&inputs[i]).unwrap(),
            source: sc.encode(&inputs[(i * 7 + 3) % inputs.len()]).unwrap(),
            variables: vec![variable.to_string()],
        })
        .collect()
}

fn symbols(model: &LoadedModel, ids: &[u32]) -> Vec<String> {
    let toks = &model.sidecar.as_ref().unwrap().input.tokens;
    ids[1..].iter().map(|&i| toks[i as usize].clone()).collect()
}

/// Reverse's high-level model under an interchange of its output: the source reversed.
fn source_reversed(model: &LoadedModel, p: &InterchangePair) -> Vec<OutputValue> {
    let mut s = symbols(model, &p.source);
    s.reverse();
    s.into_iter()
        .map(|x| OutputValue::Symbol(Value::String(x)))
        .collect()
}

#[test]
fn iia_of_the_reverse_program() {
    let m = tracr("reverse");
    let readout = Readout::new(m.sidecar.as_ref());
    let ps = pairs(&m, &["a", "b", "c"], 3, "reverse");
    // High-level model: setting `reverse` to its source value makes the output the source reversed.
    let oracle = |p: &InterchangePair| Ok(source_reversed(&m, p));
    let right = Alignment::new().with(
        "reverse",
        vec![Site::hook(HookPoint::block(3, BlockHook::AttnOut))],
    );
    let report =
        interchange_intervention_accuracy(&m.transformer, &readout, &right, &ps, &oracle).unwrap();
    assert_eq!(report.accuracy, 1.0, "{report:?}");
    assert_eq!(report.pairs.total, 27);

    // A wrong alignment: layer 0's MLP computes `length`, equal within a same-length pair, so
    // patching it changes nothing and the output stays the base reversed.
    let wrong = Alignment::new().with(
        "reverse",
        vec![Site::hook(HookPoint::block(0, BlockHook::MlpOut))],
    );
    let report =
        interchange_intervention_accuracy(&m.transformer, &readout, &wrong, &ps, &oracle).unwrap();
    let same = ps.iter().filter(|p| p.base == p.source).count();
    assert_eq!(
        report.pairs.correct, same,
        "only pairs with base == source agree"
    );
    assert!(report.accuracy < 0.2);
}

#[test]
fn iia_of_a_spec_circuit_patches_its_declared_sites_and_refuses_absent_ones() {
    // tracr's own reverse model (four layers) and the circuit written against its layout.
    let m = tracr("reverse");
    let spec = congruity::lang::load(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("specs/circuits/tracr_reverse.interp"),
    )
    .unwrap();
    let readout = Readout::new(m.sidecar.as_ref());
    let ps = pairs(&m, &["a", "b", "c"], 3, "output");
    let oracle = |p: &InterchangePair| Ok(source_reversed(&m, p));
    let layout = Alignment::from_circuit(&spec.circuits["tracr_reverse_layout"]).unwrap();
    assert_eq!(
        layout.variables["output"],
        [Site::hook(HookPoint::attn(3, AttnHook::Z)).with_head(0)]
    );
    let report =
        interchange_intervention_accuracy(&m.transformer, &readout, &layout, &ps, &oracle).unwrap();
    assert_eq!(report.accuracy, 1.0, "{report:?}");
    // congruity's compiled layout names layer 1 for `output`, where tracr's model computes
    // opp_idx: the interchange does not carry the output.
    let compiled = Alignment::from_circuit(&spec.circuits["tracr_reverse_compiled"]).unwrap();
    let report =
        interchange_intervention_accuracy(&m.transformer, &readout, &compiled, &ps, &oracle)
            .unwrap();
    assert!(report.accuracy < 0.2, "{report:?}");
    // A head the model lacks: an error naming the site and the model's shape.
    let absent = Alignment::new().with(
        "output",
        vec![Site::hook(HookPoint::attn(3, AttnHook::Z)).with_head(7)],
    );
    let e = interchange_intervention_accuracy(&m.transformer, &readout, &absent, &ps, &oracle)
        .unwrap_err()
        .to_string();
    assert!(e.contains("blocks.3.attn.hook_z[head 7]"), "{e}");
    assert!(e.contains("4 layers × 1 head"), "{e}");
    assert!(
        e.contains("head 7 is out of range: the hook has 1 head"),
        "{e}"
    );
}

#[test]
fn iia_of_the_hist_program_at_attention_and_mlp() {
    let m = tracr("hist");
    let readout = Readout::new(m.sidecar.as_ref());
    let ps = pairs(&m, &["x", "y", "z"], 4, "hist");
    let oracle = |p: &InterchangePair| -> Result<Vec<OutputValue>, String> {
        let s = symbols(&m, &p.source);
        Ok(s.iter()
            .map(|t| OutputValue::Symbol(Value::from(s.iter().filter(|u| *u == t).count())))
            .collect())
    };
    for hook in [BlockHook::AttnOut, BlockHook::MlpOut] {
        let a = Alignment::new().with("hist", vec![Site::hook(HookPoint::block(0, hook))]);
        let report =
            interchange_intervention_accuracy(&m.transformer, &readout, &a, &ps, &oracle).unwrap();
        assert_eq!(report.accuracy, 1.0, "{hook:?}: {report:?}");
    }
    // Patching only the value vectors of the head is also sufficient (the pattern depends on the
    // base tokens, so this is *not* an interchange of hist): accuracy must drop.
    let v_only = Alignment::new().with("hist", vec![Site::hook(HookPoint::attn(0, AttnHook::V))]);
    let report =
        interchange_intervention_accuracy(&m.transformer, &readout, &v_only, &ps, &oracle).unwrap();
    assert!(report.accuracy < 1.0, "{report:?}");
}

#[test]
fn iia_input_errors() {
    let m = tracr("hist");
    let readout = Readout::new(m.sidecar.as_ref());
    let a = Alignment::new().with(
        "hist",
        vec![Site::hook(HookPoint::block(0, BlockHook::MlpOut))],
    );
    let oracle = |_: &InterchangePair| -> Result<Vec<OutputValue>, String> { Err("no".into()) };
    let bad_var = vec![InterchangePair {
        base: vec![0, 2],
        source: vec![0, 3],
        variables: vec!["width".into()],
    }];
    let msg = interchange_intervention_accuracy(&m.transformer, &readout, &a, &bad_var, &oracle)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("width") && msg.contains("hist"), "{msg}");
    let bad_len = vec![InterchangePair {
        base: vec![0, 2],
        source: vec![0, 3, 3],
        variables: vec!["hist".into()],
    }];
    assert!(
        interchange_intervention_accuracy(&m.transformer, &readout, &a, &bad_len, &oracle).is_err()
    );
    let ok = vec![InterchangePair {
        base: vec![0, 2],
        source: vec![0, 3],
        variables: vec!["hist".into()],
    }];
    let msg = interchange_intervention_accuracy(&m.transformer, &readout, &a, &ok, &oracle)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("oracle"), "{msg}");
}
