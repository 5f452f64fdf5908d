//! Bad input gets a clear error, not a panic: through the library and through the binary.

use crate::support::runtime as runtime_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use congruity::model::io::{read_safetensors, write_safetensors};
use congruity::model::{ModelError, RunOptions, TokenBatch, load};
use runtime_common::{arg, case_dirs, cli_fails, fixtures, read_json};
use serde_json::{Value, json};

fn fixture() -> PathBuf {
    case_dirs("transformer_lens")[0].clone()
}

/// A copy of the TransformerLens fixture in a temp dir, with `edit` applied to its tensors and
/// `edit_config` to its config.
fn broken_model(
    edit: impl FnOnce(&mut BTreeMap<String, Tensor>),
    edit_config: impl FnOnce(&mut Value),
) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let mut tensors = read_safetensors(&fixture().join("model.safetensors"), &Device::Cpu).unwrap();
    edit(&mut tensors);
    write_safetensors(
        &tmp.path().join("model.safetensors"),
        tensors.iter().map(|(n, t)| (n.clone(), t)),
    )
    .unwrap();
    let mut config = read_json(&fixture().join("config.json"));
    edit_config(&mut config);
    std::fs::write(tmp.path().join("config.json"), config.to_string()).unwrap();
    tmp
}

fn load_err(dir: &Path) -> String {
    match load(dir, &Device::Cpu) {
        Ok(_) => panic!("{} loaded, but it is broken", dir.display()),
        Err(e) => e.to_string(),
    }
}

/// The library's and the binary's message for the same broken model directory.
fn both_errors(dir: &Path) -> [String; 2] {
    [load_err(dir), cli_load(dir)]
}

fn cli_run_tokens(dir: &Path, tokens: &Path) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let msg = cli_fails(&[
        "run",
        "--model",
        arg(dir),
        "--tokens",
        arg(tokens),
        "--cache",
        arg(&out),
    ]);
    assert!(!out.exists(), "no output file after a failure");
    msg
}

fn cli_load(dir: &Path) -> String {
    cli_run_tokens(dir, &fixture().join("tokens.json"))
}

#[test]
fn missing_tensor() {
    let tmp = broken_model(
        |t| {
            t.remove("blocks.1.attn.W_K");
        },
        |_| {},
    );
    for msg in both_errors(tmp.path()) {
        assert!(msg.contains("blocks.1.attn.W_K"), "{msg}");
        assert!(msg.contains("model.safetensors"), "{msg}");
    }
}

#[test]
fn wrong_shape_names_both_shapes() {
    let tmp = broken_model(
        |t| {
            let w = t["blocks.0.attn.W_Q"]
                .narrow(2, 0, 8)
                .unwrap()
                .contiguous()
                .unwrap();
            t.insert("blocks.0.attn.W_Q".into(), w);
        },
        |_| {},
    );
    for msg in both_errors(tmp.path()) {
        assert!(msg.contains("blocks.0.attn.W_Q"), "{msg}");
        assert!(
            msg.contains("[4, 64, 8]") && msg.contains("[4, 64, 16]"),
            "{msg}"
        );
    }
}

#[test]
fn unexpected_tensor_is_refused() {
    let tmp = broken_model(
        |t| {
            let g = t["blocks.0.mlp.W_in"].clone();
            t.insert("blocks.0.mlp.W_gate".into(), g);
        },
        |_| {},
    );
    let msg = load_err(tmp.path());
    assert!(
        msg.contains("blocks.0.mlp.W_gate") && msg.contains("gated_mlp"),
        "{msg}"
    );
}

#[test]
fn unknown_config_values() {
    for (field, value) in [
        ("act_fn", json!("swiglu")),
        ("normalization_type", json!("BatchNorm")),
        ("positional_embedding_type", json!("alibi")),
        ("attention_dir", json!("sideways")),
        ("n_key_value_heads", json!(3)),
        ("use_local_attn", json!(true)),
    ] {
        let tmp = broken_model(|_| {}, |c| c[field] = value.clone());
        for msg in both_errors(tmp.path()) {
            assert!(msg.contains(field), "{field}: {msg}");
            assert!(msg.contains(&value.to_string()), "{field}: {msg}");
        }
    }
    // Grouped-query attention declared but weights saved without it: the missing grouped
    // tensor is named.
    let tmp = broken_model(|_| {}, |c| c["n_key_value_heads"] = json!(2));
    let msg = load_err(tmp.path());
    assert!(msg.contains("blocks.0.attn._W_K"), "{msg}");
    // A config that contradicts the weights: the shape error names both.
    let tmp = broken_model(|_| {}, |c| c["d_mlp"] = json!(128));
    let msg = load_err(tmp.path());
    assert!(
        msg.contains("[64, 128]") && msg.contains("[64, 256]"),
        "{msg}"
    );
}

#[test]
fn token_id_out_of_range() {
    let model = load(&fixture(), &Device::Cpu).unwrap().transformer;
    let tokens = TokenBatch::new(&[vec![1, 2, 3], vec![4, 23, 5]]).unwrap();
    let err = model.forward(&tokens, &RunOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::TokenOutOfRange {
                batch: 1,
                pos: 1,
                id: 23,
                d_vocab: 23
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("23") && msg.contains("d_vocab = 23"), "{msg}");

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tokens.json");
    std::fs::write(&file, r#"{"tokens": [[1, 2, 3], [4, 23, 5]]}"#).unwrap();
    let msg = cli_run_tokens(&fixture(), &file);
    assert!(
        msg.contains("token id 23") && msg.contains("d_vocab = 23"),
        "{msg}"
    );
}

#[test]
fn sequence_longer_than_n_ctx() {
    let model = load(&fixture(), &Device::Cpu).unwrap().transformer;
    let tokens = TokenBatch::single(vec![1; 17]).unwrap();
    let msg = model
        .forward(&tokens, &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("17") && msg.contains("n_ctx = 16"), "{msg}");

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tokens.json");
    std::fs::write(&file, json!({"tokens": [vec![1; 17]]}).to_string()).unwrap();
    let msg = cli_run_tokens(&fixture(), &file);
    assert!(msg.contains("n_ctx = 16"), "{msg}");
    // tracr: BOS + 5 symbols > n_ctx = 5 for `reverse` (max_seq_len 4).
    let msg = cli_fails(&[
        "run",
        "--model",
        arg(&fixtures().join("tracr/reverse")),
        "--input",
        "a b c a b",
    ]);
    assert!(msg.contains("n_ctx = 5"), "{msg}");
}

#[test]
fn truncated_or_corrupt_safetensors() {
    let good = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut huge_header = good.clone();
    huge_header[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    let mut bad_json = good.clone();
    bad_json[8] = b'!';
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated in the data", good[..good.len() / 2].to_vec()),
        (
            "truncated in the header",
            good[..8 + header_len / 2].to_vec(),
        ),
        ("shorter than the length prefix", good[..5].to_vec()),
        ("empty", vec![]),
        ("header length beyond the file", huge_header),
        ("header not JSON", bad_json),
        (
            "random bytes",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
    ];
    for (what, bytes) in cases {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("model.safetensors"), &bytes).unwrap();
        std::fs::copy(
            fixture().join("config.json"),
            tmp.path().join("config.json"),
        )
        .unwrap();
        for msg in both_errors(tmp.path()) {
            assert!(
                msg.contains("model.safetensors") && msg.contains("safetensors file"),
                "{what}: {msg}"
            );
        }
    }
}

#[test]
fn bad_token_files() {
    let tmp = tempfile::tempdir().unwrap();
    for (what, text, needle) in [
        ("ragged", r#"{"tokens": [[1, 2], [3]]}"#, "same length"),
        ("negative", r#"{"tokens": [[1, -2]]}"#, "tokens[0][1]"),
        ("no key", r#"{"ids": [[1]]}"#, "`tokens`"),
        ("empty", r#"{"tokens": []}"#, "empty"),
        ("not json", "tokens: 1 2 3", "not valid JSON"),
    ] {
        let file = tmp.path().join(format!("{what}.json"));
        std::fs::write(&file, text).unwrap();
        let msg = cli_run_tokens(&fixture(), &file);
        assert!(msg.contains(needle), "{what}: {msg}");
    }
}

#[test]
fn bad_model_directories_and_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    // Neither format.
    let msg = cli_load(tmp.path());
    assert!(msg.contains("not a model directory"), "{msg}");
    // tracr layout missing meta.json.
    std::fs::copy(
        fixtures().join("tracr/hist/weights.safetensors"),
        tmp.path().join("weights.safetensors"),
    )
    .unwrap();
    let msg = cli_load(tmp.path());
    assert!(msg.contains("meta.json"), "{msg}");

    let fx = fixture();
    let fx = arg(&fx);
    // --input without a vocabulary.
    let msg = cli_fails(&["run", "--model", fx, "--input", "a b"]);
    assert!(
        msg.contains("no vocabulary") && msg.contains("congruity.json"),
        "{msg}"
    );
    // Unknown symbol.
    let rev = fixtures().join("tracr/reverse");
    let msg = cli_fails(&["run", "--model", arg(&rev), "--input", "a z"]);
    assert!(msg.contains("unknown token `z`"), "{msg}");

    let out = tmp.path().join("p.safetensors");
    let tokens = fixture().join("tokens.json");
    let patch = |hook: &str, extra: &[&str]| {
        let mut args = vec![
            "patch",
            "--model",
            fx,
            "--tokens",
            arg(&tokens),
            "--source",
            arg(&tokens),
            "--hook",
            hook,
            "--out",
            arg(&out),
        ];
        args.extend_from_slice(extra);
        cli_fails(&args)
    };
    let msg = patch("blocks.0.attn.hook_zz", &[]);
    assert!(
        msg.contains("blocks.0.attn.hook_zz") && msg.contains("not a TransformerLens hook point"),
        "{msg}"
    );
    let msg = patch("blocks.7.attn.hook_z", &[]);
    assert!(msg.contains("2 layers"), "{msg}");
    let msg = patch("blocks.0.attn.hook_z", &["--head", "4"]);
    assert!(msg.contains("head 4 is out of range"), "{msg}");
    let msg = patch("blocks.0.hook_resid_pre", &["--head", "0"]);
    assert!(msg.contains("no head axis"), "{msg}");
    let msg = patch("blocks.0.hook_resid_pre", &["--pos", "12"]);
    assert!(msg.contains("position 12 is out of range"), "{msg}");
    assert!(!out.exists());
    // A hook glob that matches nothing.
    let msg = cli_fails(&[
        "run",
        "--model",
        fx,
        "--tokens",
        arg(&tokens),
        "--cache",
        arg(&out),
        "--hooks",
        "blocks.*.attn.hook_rot_q",
    ]);
    assert!(msg.contains("matches no hook point"), "{msg}");
}

#[test]
fn bad_sidecar() {
    let tmp = broken_model(|_| {}, |_| {});
    let write =
        |v: Value| std::fs::write(tmp.path().join("congruity.json"), v.to_string()).unwrap();
    write(
        json!({"format": "congruity-model/9", "input": {"bos": null, "tokens": []}, "output": {"encoding": "numerical"}}),
    );
    let msg = load_err(tmp.path());
    assert!(
        msg.contains("congruity-model/2") && msg.contains("congruity-model/1"),
        "{msg}"
    );
    // The previous format loads, but not numerical values whose exact forms it never wrote.
    write(
        json!({"format": "congruity-model/1", "input": {"bos": null, "tokens": []}, "output": {"encoding": "numerical", "values": [0.5]}}),
    );
    let msg = load_err(tmp.path());
    assert!(
        msg.contains("regenerate") && msg.contains("congruity compile"),
        "{msg}"
    );
    write(
        json!({"format": "congruity-model/2", "input": {"bos": null, "tokens": []}, "output": {"encoding": "numerical", "values": [0.5], "exact": ["1/3"]}}),
    );
    let msg = load_err(tmp.path());
    assert!(msg.contains("`1/3` is not the value beside it"), "{msg}");
    let tokens: Vec<String> = (0..23).map(|i| format!("t{i}")).collect();
    write(
        json!({"format": "congruity-model/1", "input": {"bos": null, "tokens": tokens}, "output": {"encoding": "numerical"}}),
    );
    assert!(load_err(tmp.path()).contains("d_vocab_out = 1"));
    write(
        json!({"format": "congruity-model/1", "input": {"bos": null, "tokens": ["a"]}, "output": {"encoding": "categorical", "decoding": []}}),
    );
    assert!(load_err(tmp.path()).contains("d_vocab = 23"));
    // A valid one: --input works on a TransformerLens checkpoint with a sidecar.
    let decoding: Vec<Value> = (0..23).map(|i| json!(i)).collect();
    write(
        json!({"format": "congruity-model/1", "input": {"bos": "t0", "tokens": tokens}, "output": {"encoding": "categorical", "decoding": decoding}}),
    );
    let model = load(tmp.path(), &Device::Cpu).unwrap();
    let out = model.run_symbols(&[vec!["t5", "t6"]]).unwrap();
    assert_eq!(out[0].len(), 2, "BOS position dropped");
    // Read in the previous format, held in the current one.
    assert_eq!(
        model.sidecar.as_ref().unwrap().format,
        congruity::artifact::SIDECAR_FORMAT
    );
}
