//! HuggingFace checkpoints (`tests/fixtures/hf/*`, made by transformers): every case loads with
//! TransformerLens hook semantics and reproduces transformers' logits, hidden states and attention
//! patterns, through the library and through `congruity run`; sharded and f16 / bf16 copies of a
//! case load too; broken checkpoints are refused by name.

use crate::support::runtime as runtime_common;

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use congruity::model::io::{read_safetensors, write_safetensors};
use congruity::model::{self, HookSelection, RunOptions, TokenBatch};
use runtime_common::{
    arg, assert_close, case_dirs, case_name, cli_fails, ok, read_json, read_token_rows,
    run_cache_all,
};
use safetensors::{Dtype, tensor::TensorView};

/// transformers' outputs under the TransformerLens hook that holds the same values.
fn hook_for(name: &str, n_layers: usize) -> Option<String> {
    if name == "logits" {
        return Some("logits".into());
    }
    if name == "last_block_output" {
        return Some(format!("blocks.{}.hook_resid_post", n_layers - 1));
    }
    if let Some(i) = name.strip_prefix("hidden_states.") {
        let i: usize = i.parse().ok()?;
        return Some(if i < n_layers {
            format!("blocks.{i}.hook_resid_pre")
        } else {
            // transformers' last hidden state is the final norm's output *with* its gain and
            // bias; TransformerLens' hook_normalized is before them (see `final_norm_output`).
            "ln_final.hook_normalized".into()
        });
    }
    if let Some(l) = name.strip_prefix("attentions.") {
        return Some(format!("blocks.{l}.attn.hook_pattern"));
    }
    None
}

/// `ln_final.hook_normalized · w + b` (the gain and bias of the final norm, when it has them):
/// what transformers reports as the last hidden state.
fn final_norm_output(t: &model::Transformer, normalized: &Tensor) -> Tensor {
    let named = t.weights().named();
    let find = |n: &str| {
        named
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, t)| (*t).clone())
    };
    let mut x = normalized.clone();
    if let Some(w) = find("ln_final.w") {
        x = x.broadcast_mul(&w).unwrap();
    }
    if let Some(b) = find("ln_final.b") {
        x = x.broadcast_add(&b).unwrap();
    }
    x
}

/// Runs `dir` on its case's tokens with every hook and checks each expected tensor.
fn check_parity(case: &str, dir: &Path, expected: &Path) -> usize {
    let loaded = model::load(dir, &Device::Cpu).unwrap_or_else(|e| panic!("{case}: {e}"));
    let m = &loaded.transformer;
    let tokens = TokenBatch::from_json_file(&dir.join("tokens.json"))
        .or_else(|_| TokenBatch::from_json_file(&expected.with_file_name("tokens.json")))
        .unwrap();
    let out = m
        .forward(&tokens, &RunOptions::cache(HookSelection::All))
        .unwrap();
    let want = read_safetensors(expected, &Device::Cpu).unwrap();
    let n_layers = m.config().n_layers;
    let mut checked = 0;
    for (name, w) in &want {
        let hook = hook_for(name, n_layers)
            .unwrap_or_else(|| panic!("{case}: no mapping for expected tensor `{name}`"));
        let got = if hook == "logits" {
            out.logits.clone()
        } else {
            out.cache
                .get_by_name(&hook)
                .unwrap()
                .unwrap_or_else(|| panic!("{case}: no {hook}"))
                .clone()
        };
        let got = if hook == "ln_final.hook_normalized" {
            final_norm_output(m, &got)
        } else {
            got
        };
        let d = assert_close(&format!("{case}/{name} ({hook})"), &got, w);
        eprintln!(
            "{case}/{name}: max abs {:.2e}, max rel {:.2e}",
            d.max_abs, d.max_rel
        );
        checked += 1;
    }
    checked
}

#[test]
fn every_hf_case_matches_transformers_through_the_library() {
    for dir in case_dirs("hf") {
        let case = case_name(&dir);
        let n = check_parity(&case, &dir, &dir.join("expected.safetensors"));
        assert!(n >= 3, "{case}: only {n} tensors compared");
    }
}

#[test]
fn every_hf_case_matches_transformers_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in case_dirs("hf") {
        let case = case_name(&dir);
        let out = tmp.path().join(format!("{case}.safetensors"));
        run_cache_all(&dir, &dir.join("tokens.json"), &out);
        let got = read_safetensors(&out, &Device::Cpu).unwrap();
        let want = read_safetensors(&dir.join("expected.safetensors"), &Device::Cpu).unwrap();
        let config = read_json(&dir.join("config.json"));
        let n_layers = ["n_layer", "num_hidden_layers"]
            .iter()
            .find_map(|k| config[*k].as_u64())
            .unwrap() as usize;
        for (name, w) in &want {
            let hook = hook_for(name, n_layers).unwrap();
            let g = got
                .get(&hook)
                .unwrap_or_else(|| panic!("{case}: the CLI cache lacks {hook}"));
            if hook == "ln_final.hook_normalized" {
                let m = model::load(&dir, &Device::Cpu).unwrap();
                assert_close(
                    &format!("cli {case}/{name}"),
                    &final_norm_output(&m.transformer, g),
                    w,
                );
            } else {
                assert_close(&format!("cli {case}/{name}"), g, w);
            }
        }
    }
}

fn write_raw(path: &Path, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, dt, s, b)| (n.clone(), TensorView::new(*dt, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

fn copy_dir_without_weights(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_file() && name.ends_with(".json") {
            std::fs::copy(&p, to.join(&name)).unwrap();
        }
    }
}

/// A copy of case `dir` (config, tokens and weights) as `parent/name`, and its vocabulary size.
fn full_copy(dir: &Path, parent: &Path, name: &str) -> (std::path::PathBuf, usize) {
    let d = parent.join(name);
    copy_dir_without_weights(dir, &d);
    std::fs::copy(dir.join("model.safetensors"), d.join("model.safetensors")).unwrap();
    let vocab = read_json(&dir.join("config.json"))["vocab_size"]
        .as_u64()
        .unwrap() as usize;
    (d, vocab)
}

fn weights(dir: &Path) -> BTreeMap<String, Tensor> {
    read_safetensors(&dir.join("model.safetensors"), &Device::Cpu).unwrap()
}

fn logits(dir: &Path, tokens: &Path) -> Tensor {
    let m = model::load(dir, &Device::Cpu).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let t = TokenBatch::from_json_file(tokens).unwrap();
    m.transformer
        .forward(&t, &RunOptions::default())
        .unwrap()
        .logits
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// Sharded with an index, and stored as f16 and bf16: each loads; the sharded copy gives the
/// same logits exactly, the half-precision copies within their precision.
#[test]
fn sharded_and_half_precision_copies_load() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in case_dirs("hf") {
        let case = case_name(&dir);
        let tokens = dir.join("tokens.json");
        let reference = logits(&dir, &tokens);
        let scale: f32 = reference
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        let w = weights(&dir);

        // Two shards, alternating tensors, and the index transformers writes.
        let sharded = tmp.path().join(format!("{case}_sharded"));
        copy_dir_without_weights(&dir, &sharded);
        let mut map = serde_json::Map::new();
        let mut shards: [BTreeMap<String, Tensor>; 2] = [BTreeMap::new(), BTreeMap::new()];
        for (k, (name, t)) in w.iter().enumerate() {
            let file = format!("model-0000{}-of-00002.safetensors", k % 2 + 1);
            map.insert(name.clone(), file.into());
            shards[k % 2].insert(name.clone(), t.clone());
        }
        for (k, s) in shards.iter().enumerate() {
            write_safetensors(
                &sharded.join(format!("model-0000{}-of-00002.safetensors", k + 1)),
                s.iter().map(|(n, t)| (n.clone(), t)),
            )
            .unwrap();
        }
        let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
        std::fs::write(
            sharded.join("model.safetensors.index.json"),
            index.to_string(),
        )
        .unwrap();
        assert_eq!(
            max_abs_diff(&logits(&sharded, &tokens), &reference),
            0.0,
            "{case}: sharded"
        );

        // f16 and bf16.
        for (dtype, tol) in [(Dtype::F16, 2e-2f32), (Dtype::BF16, 1e-1f32)] {
            let half_dir = tmp.path().join(format!("{case}_{dtype:?}"));
            copy_dir_without_weights(&dir, &half_dir);
            let raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = w
                .iter()
                .map(|(n, t)| {
                    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
                    let bytes: Vec<u8> = match dtype {
                        Dtype::F16 => v
                            .iter()
                            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                            .collect(),
                        _ => v
                            .iter()
                            .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                            .collect(),
                    };
                    (n.clone(), dtype, t.dims().to_vec(), bytes)
                })
                .collect();
            write_raw(&half_dir.join("model.safetensors"), &raw);
            let diff = max_abs_diff(&logits(&half_dir, &tokens), &reference);
            assert!(
                diff <= tol * scale.max(1.0),
                "{case} {dtype:?}: max |Δlogit| {diff} vs scale {scale}"
            );
            eprintln!("{case} {dtype:?}: max |Δlogit| {diff:.3e} (logit scale {scale:.2})");
        }
    }
}

#[test]
fn broken_hf_checkpoints_are_refused_by_name() {
    for dir in case_dirs("hf") {
        broken_copies_of(&dir);
    }
}

fn broken_copies_of(dir: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    copy_dir_without_weights(dir, &base);
    std::fs::copy(
        dir.join("model.safetensors"),
        base.join("model.safetensors"),
    )
    .unwrap();
    let config = read_json(&dir.join("config.json"));
    let tokens = dir.join("tokens.json");
    let run = |d: &Path| {
        cli_fails(&[
            "run",
            "--model",
            arg(d),
            "--tokens",
            arg(&tokens),
            "--cache",
            arg(&d.join("out.safetensors")),
        ])
    };

    let case = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let d = tmp.path().join(name);
        copy_dir_without_weights(&base, &d);
        std::fs::copy(base.join("model.safetensors"), d.join("model.safetensors")).unwrap();
        let mut c = config.clone();
        edit(&mut c);
        std::fs::write(d.join("config.json"), c.to_string()).unwrap();
        d
    };
    let e = run(&case("unknown_type", &|c| {
        c["model_type"] = "mamba".into();
        c["architectures"] = serde_json::json!(["MambaForCausalLM"]);
    }));
    assert!(e.contains("model_type") && e.contains("mamba"), "{e}");
    if config.get("rope_parameters").is_some() {
        // A context length whose rotary tables would not fit: refused before allocating.
        let e = run(&case("huge_context", &|c| {
            c["max_position_embeddings"] = 1_000_000_000_000u64.into();
        }));
        assert!(e.contains("GiB") && e.contains("available"), "{e}");
        let e = run(&case("rope_scaling", &|c| {
            c["rope_scaling"] = serde_json::json!({"type": "linear", "factor": 2.0});
        }));
        assert!(e.contains("rope_scaling"), "{e}");
        let e = run(&case("rope_type", &|c| {
            c["rope_parameters"]["rope_type"] = "yarn".into();
        }));
        assert!(e.contains("rope_type") && e.contains("yarn"), "{e}");
    }
    let e = run(&case("wrong_width", &|c| {
        for k in ["n_embd", "hidden_size", "intermediate_size"] {
            if let Some(v) = c.get(k).and_then(|v| v.as_u64()) {
                c[k] = (v + 8).into();
            }
        }
    }));
    assert!(e.contains("expected") || e.contains("shape"), "{e}");

    // A missing shard, and an index naming a tensor the shard lacks.
    let sharded = tmp.path().join("sharded");
    copy_dir_without_weights(&base, &sharded);
    let w = weights(&base);
    write_safetensors(
        &sharded.join("model-00001-of-00001.safetensors"),
        w.iter().map(|(n, t)| (n.clone(), t)),
    )
    .unwrap();
    let mut map: serde_json::Map<String, serde_json::Value> = w
        .keys()
        .map(|n| (n.clone(), "model-00001-of-00001.safetensors".into()))
        .collect();
    map.insert(
        "ghost.weight".into(),
        "model-00001-of-00001.safetensors".into(),
    );
    let index = sharded.join("model.safetensors.index.json");
    std::fs::write(&index, serde_json::json!({"weight_map": map}).to_string()).unwrap();
    let e = run(&sharded);
    assert!(e.contains("ghost.weight"), "{e}");
    map.remove("ghost.weight");
    let first = w.keys().next().unwrap().clone();
    map.insert(first, "model-00002-of-00002.safetensors".into());
    std::fs::write(&index, serde_json::json!({"weight_map": map}).to_string()).unwrap();
    let e = run(&sharded);
    assert!(
        e.contains("00002.safetensors") && e.contains("missing"),
        "{e}"
    );
    let _ = read_token_rows;
}

/// `patch` works on a HuggingFace directory as on any other: patching a head with the base run's
/// own activations changes nothing, with another run's it changes the logits.
#[test]
fn patch_works_on_a_hf_directory() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in case_dirs("hf") {
        let case = case_name(&dir);
        let tokens = dir.join("tokens.json");
        let rows = read_token_rows(&tokens, "tokens");
        let rotated: Vec<Vec<u32>> = rows
            .iter()
            .map(|r| r.iter().rev().copied().collect())
            .collect();
        let source = tmp.path().join(format!("{case}_source.json"));
        std::fs::write(
            &source,
            serde_json::json!({ "tokens": rotated }).to_string(),
        )
        .unwrap();
        for (src, changes) in [(&tokens, false), (&source, true)] {
            let out = tmp.path().join(format!("{case}_{changes}.safetensors"));
            ok(&[
                "patch",
                "--model",
                arg(&dir),
                "--tokens",
                arg(&tokens),
                "--source",
                arg(src),
                "--hook",
                "blocks.1.attn.hook_z",
                "--head",
                "1",
                "--out",
                arg(&out),
            ]);
            let got = read_safetensors(&out, &Device::Cpu).unwrap();
            let diff = max_abs_diff(&got["patched_logits"], &got["base_logits"]);
            assert_eq!(
                diff > 1e-4,
                changes,
                "{case}: patch from {} changed logits by {diff}",
                src.display()
            );
        }
    }
}

/// `compare --models` runs a HuggingFace directory once a `congruity.json` says how the task's
/// symbols map to its token ids.
#[test]
fn compare_models_accepts_a_hf_directory_with_a_sidecar() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &case_dirs("hf")[0];
    let (d, vocab) = full_copy(dir, tmp.path(), "hf_with_sidecar");
    let mut tokens: Vec<String> = (0..vocab).map(|i| format!("t{i}")).collect();
    for (i, s) in ["BOS", "a", "b", "c"].iter().enumerate() {
        tokens[i] = s.to_string();
    }
    let sidecar = serde_json::json!({
        "format": "congruity-model/1",
        "input": {"bos": "BOS", "tokens": tokens},
        "output": {"encoding": "categorical", "decoding": tokens},
    });
    std::fs::write(d.join("congruity.json"), sidecar.to_string()).unwrap();
    let report = ok(&[
        "compare",
        "specs/tracr/reverse.interp",
        "--models",
        arg(&d),
        arg(&d),
        "--task",
        "reverse",
        "--samples",
        "3",
        "--seed",
        "1",
        "--inputs",
        "30",
        "--draws",
        "10",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(v["pools"][0]["label"], "hf_with_sidecar", "{v}");
    // The same model twice: two pools; the fit between them is a model's held-out ridge fit to
    // itself (below 1 only through ridge shrinkage on 30 inputs).
    let fit = &v["transfer"]["cells"][0][1]["fit"];
    assert!(fit["mean"].as_f64().unwrap() > 0.9, "{v}");
}

/// `run --text` encodes with the directory's `tokenizer.json` (HuggingFace's format, read by the
/// `tokenizers` crate) and runs exactly the ids `--tokens` would; without a tokenizer it says so.
#[test]
fn run_text_encodes_with_the_checkpoint_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &case_dirs("hf")[0];
    let (d, vocab) = full_copy(dir, tmp.path(), "with_tokenizer");
    let words: serde_json::Map<String, serde_json::Value> =
        (0..vocab).map(|i| (format!("w{i}"), i.into())).collect();
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "vocab": words, "unk_token": "w0"},
    });
    std::fs::write(d.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let row = read_token_rows(&dir.join("tokens.json"), "tokens").remove(0);
    let text: Vec<String> = row.iter().map(|i| format!("w{i}")).collect();
    let text = text.join(" ");
    let by_text = tmp.path().join("text.safetensors");
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "run",
        "--model",
        arg(&d),
        "--text",
        &text,
        "--json",
        "--cache",
        arg(&by_text),
    ]))
    .unwrap();
    assert_eq!(json["tokens"], serde_json::json!(row));
    let ids = tmp.path().join("ids.json");
    std::fs::write(&ids, serde_json::json!({ "tokens": [row] }).to_string()).unwrap();
    let by_ids = tmp.path().join("ids.safetensors");
    ok(&[
        "run",
        "--model",
        arg(&d),
        "--tokens",
        arg(&ids),
        "--cache",
        arg(&by_ids),
    ]);
    let a = read_safetensors(&by_text, &Device::Cpu).unwrap();
    let b = read_safetensors(&by_ids, &Device::Cpu).unwrap();
    assert_eq!(max_abs_diff(&a["logits"], &b["logits"]), 0.0);
    // The next token is the argmax of the last position's logits.
    let last: Vec<f32> = b["logits"]
        .get(0)
        .unwrap()
        .get(row.len() - 1)
        .unwrap()
        .to_vec1()
        .unwrap();
    let argmax = (0..last.len())
        .max_by(|&i, &j| last[i].total_cmp(&last[j]))
        .unwrap();
    assert_eq!(json["next_token"]["id"], argmax);
    assert_eq!(json["next_token"]["text"], format!("w{argmax}"));

    let e = cli_fails(&["run", "--model", arg(dir), "--text", "w1 w2"]);
    assert!(e.contains("tokenizer.json") && e.contains("missing"), "{e}");
}

/// `inspect` reports the architecture, the stored parameter count (what the checkpoint's files
/// hold, tied weights once) and the hook points; a parallel-residual model has no resid_mid.
#[test]
fn inspect_describes_every_hf_case() {
    for dir in case_dirs("hf") {
        let case = case_name(&dir);
        let v: serde_json::Value =
            serde_json::from_str(&ok(&["inspect", "--model", arg(&dir), "--json"])).unwrap();
        let stored: usize = weights(&dir).values().map(|t| t.elem_count()).sum();
        assert_eq!(v["parameters"], stored, "{case}");
        let config = read_json(&dir.join("config.json"));
        let arch = config["architectures"][0].as_str().unwrap();
        assert_eq!(v["format"], format!("HuggingFace {arch}"), "{case}");
        let hooks: Vec<&str> = v["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        for h in [
            "hook_embed",
            "blocks.0.hook_resid_pre",
            "blocks.1.attn.hook_pattern",
            "ln_final.hook_normalized",
        ] {
            assert!(hooks.contains(&h), "{case}: no {h}");
        }
        let parallel = config["use_parallel_residual"].as_bool().unwrap_or(false);
        assert_eq!(
            hooks.contains(&"blocks.0.hook_resid_mid"),
            !parallel,
            "{case}"
        );
        if parallel {
            let e = cli_fails(&[
                "run",
                "--model",
                arg(&dir),
                "--tokens",
                arg(&dir.join("tokens.json")),
                "--cache",
                "/tmp/never-written.safetensors",
                "--hooks",
                "blocks.0.hook_resid_mid",
            ]);
            assert!(
                e.contains("parallel_attn_mlp models have no resid_mid"),
                "{e}"
            );
        }
        let text = ok(&["inspect", "--model", arg(&dir)]);
        assert!(text.contains(&format!("{stored} parameters")), "{text}");
    }
}

/// Grouped-query attention is kept as TransformerLens keeps it: `hook_k` / `hook_v` hold the
/// key/value heads, patching selects one of them, and the model saved in TransformerLens layout
/// (`n_key_value_heads`, `_W_K` ...) loads back to the same logits.
#[test]
fn grouped_query_attention_hooks_hold_the_key_value_heads() {
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for dir in case_dirs("hf") {
        let config = read_json(&dir.join("config.json"));
        let (Some(h), Some(kv)) = (
            config["num_attention_heads"].as_u64(),
            config["num_key_value_heads"].as_u64(),
        ) else {
            continue;
        };
        if kv == h {
            continue;
        }
        seen += 1;
        let case = case_name(&dir);
        let m = model::load(&dir, &Device::Cpu).unwrap();
        let t = TokenBatch::from_json_file(&dir.join("tokens.json")).unwrap();
        let out = m
            .transformer
            .forward(&t, &RunOptions::cache(HookSelection::All))
            .unwrap();
        for hook in [
            "blocks.0.attn.hook_k",
            "blocks.1.attn.hook_v",
            "blocks.0.attn.hook_rot_k",
        ] {
            let a = out.cache.get_by_name(hook).unwrap().unwrap();
            assert_eq!(a.dims()[2], kv as usize, "{case}: {hook} {:?}", a.dims());
        }
        let q = out
            .cache
            .get_by_name("blocks.0.attn.hook_q")
            .unwrap()
            .unwrap();
        assert_eq!(q.dims()[2], h as usize);
        let tokens = dir.join("tokens.json");
        let patched = tmp.path().join(format!("{case}_patched.safetensors"));
        let source = tmp.path().join(format!("{case}_source.json"));
        let rows = read_token_rows(&tokens, "tokens");
        let rev: Vec<Vec<u32>> = rows
            .iter()
            .map(|r| r.iter().rev().copied().collect())
            .collect();
        std::fs::write(&source, serde_json::json!({ "tokens": rev }).to_string()).unwrap();
        let patch_head = |head: u64| -> Vec<String> {
            [
                "patch",
                "--model",
                arg(&dir),
                "--tokens",
                arg(&tokens),
                "--source",
                arg(&source),
                "--hook",
                "blocks.1.attn.hook_v",
                "--head",
                &head.to_string(),
                "--out",
                arg(&patched),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        };
        let ok_args = patch_head(kv - 1);
        ok(&ok_args.iter().map(String::as_str).collect::<Vec<_>>());
        let bad_args = patch_head(kv);
        let e = cli_fails(&bad_args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(e.contains(&format!("the activation has {kv} heads")), "{e}");

        // TransformerLens layout round trip.
        let tl = tmp.path().join(format!("{case}_tl"));
        model::save(&tl, &m.transformer, None).unwrap();
        let saved = read_json(&tl.join("config.json"));
        assert_eq!(saved["n_key_value_heads"], kv);
        let names = read_safetensors(&tl.join("model.safetensors"), &Device::Cpu).unwrap();
        assert!(
            names.contains_key("blocks.0.attn._W_K") && !names.contains_key("blocks.0.attn.W_K")
        );
        let again = model::load(&tl, &Device::Cpu).unwrap();
        let l2 = again
            .transformer
            .forward(&t, &RunOptions::default())
            .unwrap()
            .logits;
        // Same options on both sides (a full cache sums heads in another order).
        let l1 = m
            .transformer
            .forward(&t, &RunOptions::default())
            .unwrap()
            .logits;
        assert_eq!(max_abs_diff(&l2, &l1), 0.0, "{case}: TL round trip");
    }
    assert!(seen >= 1, "no grouped-query case among the fixtures");
}

/// The older spellings transformers has used load to the same model: bare GPT-2 tensor names
/// (no `transformer.` prefix) with the causal-mask buffers old checkpoints carry, `torch_dtype`,
/// and GPT-NeoX's top-level `rotary_pct` / `rotary_emb_base` instead of `rope_parameters`.
#[test]
fn older_spellings_load_to_the_same_model() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in case_dirs("hf") {
        let case = case_name(&dir);
        let mut config = read_json(&dir.join("config.json"));
        let tokens = dir.join("tokens.json");
        let reference = logits(&dir, &tokens);
        let w = weights(&dir);
        let d = tmp.path().join(format!("{case}_old"));
        copy_dir_without_weights(&dir, &d);
        let mut renamed: BTreeMap<String, Tensor> = BTreeMap::new();
        match config["model_type"].as_str().unwrap() {
            "gpt2" => {
                for (n, t) in &w {
                    renamed.insert(n.trim_start_matches("transformer.").to_string(), t.clone());
                }
                let n = config["n_positions"].as_u64().unwrap() as usize;
                let mask =
                    Tensor::ones((1, 1, n, n), candle_core::DType::F32, &Device::Cpu).unwrap();
                let layers = config["n_layer"].as_u64().unwrap();
                for l in 0..layers {
                    renamed.insert(format!("h.{l}.attn.bias"), mask.clone());
                    renamed.insert(
                        format!("h.{l}.attn.masked_bias"),
                        Tensor::new(-1e4f32, &Device::Cpu).unwrap(),
                    );
                }
            }
            "gpt_neox" => {
                renamed = w.clone();
                let rope = config["rope_parameters"].take();
                config["rotary_pct"] = rope["partial_rotary_factor"].clone();
                config["rotary_emb_base"] = rope["rope_theta"].clone();
            }
            _ => continue,
        }
        if let Some(dt) = config.get("dtype").cloned() {
            config["torch_dtype"] = dt;
            config.as_object_mut().unwrap().remove("dtype");
        }
        std::fs::write(d.join("config.json"), config.to_string()).unwrap();
        write_safetensors(
            &d.join("model.safetensors"),
            renamed.iter().map(|(n, t)| (n.clone(), t)),
        )
        .unwrap();
        assert_eq!(
            max_abs_diff(&logits(&d, &tokens), &reference),
            0.0,
            "{case}: older spellings"
        );
    }
}
