//! The `run` and `patch` subcommands, through the built binary: TransformerLens parity,
//! patching parity, tracr decoding, determinism.

use crate::support::runtime as runtime_common;

use candle_core::Device;
use congruity::model::io::read_safetensors;
use runtime_common::{
    arg, array_of, assert_close, case_dirs, case_name, cli_fails, congruity, fixtures,
    input_symbols, ok, read_json, read_token_rows, run_cache_all,
};
use serde_json::{Value, json};

#[test]
fn run_cache_reproduces_transformer_lens() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in case_dirs("transformer_lens") {
        let case = case_name(&dir);
        let out = tmp.path().join(format!("{case}.safetensors"));
        run_cache_all(&dir, &dir.join("tokens.json"), &out);
        let got = read_safetensors(&out, &Device::Cpu).unwrap();
        let want = read_safetensors(&dir.join("expected.safetensors"), &Device::Cpu).unwrap();
        for (name, w) in &want {
            let g = got
                .get(name)
                .unwrap_or_else(|| panic!("{case}: CLI cache lacks {name}"));
            assert_close(&format!("cli {case}/{name}"), g, w);
        }
    }
}

#[test]
fn run_keeps_only_the_requested_hooks_and_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &case_dirs("transformer_lens")[0];
    let tokens = dir.join("tokens.json");
    let a = tmp.path().join("a.safetensors");
    let b = tmp.path().join("b.safetensors");
    for out in [&a, &b] {
        ok(&[
            "run",
            "--model",
            arg(dir),
            "--tokens",
            arg(&tokens),
            "--cache",
            arg(out),
            "--hooks",
            "blocks.*.attn.hook_z",
            "--hooks",
            "hook_embed",
        ]);
    }
    let got = read_safetensors(&a, &Device::Cpu).unwrap();
    let names: Vec<&String> = got.keys().collect();
    assert_eq!(
        names,
        [
            "blocks.0.attn.hook_z",
            "blocks.1.attn.hook_z",
            "hook_embed",
            "logits"
        ]
    );
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "same command, same bytes"
    );
}

#[test]
fn patch_reproduces_transformer_lens_patching() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in case_dirs("transformer_lens") {
        let case = case_name(&dir);
        let source_rows = read_token_rows(&dir.join("tokens.json"), "source_tokens");
        let src = tmp.path().join(format!("{case}.source.json"));
        std::fs::write(&src, json!({ "tokens": source_rows }).to_string()).unwrap();
        let out = tmp.path().join(format!("{case}.patch.safetensors"));
        let base_tokens = dir.join("tokens.json");
        let patch_args = |out| {
            vec![
                "patch",
                "--model",
                arg(&dir),
                "--tokens",
                arg(&base_tokens),
                "--source",
                arg(&src),
                "--hook",
                "blocks.0.attn.hook_z",
                "--head",
                "1",
                "--out",
                out,
            ]
        };
        ok(&patch_args(arg(&out)));
        let got = read_safetensors(&out, &Device::Cpu).unwrap();
        let want = read_safetensors(&dir.join("patching.safetensors"), &Device::Cpu).unwrap();
        for name in ["patched_logits", "source_logits"] {
            assert_close(&format!("cli {case}/{name}"), &got[name], &want[name]);
        }
        let expected = read_safetensors(&dir.join("expected.safetensors"), &Device::Cpu).unwrap();
        assert_close(
            &format!("cli {case}/base_logits"),
            &got["base_logits"],
            &expected["logits"],
        );

        // Patching every position explicitly is the same as patching all of them.
        let all_pos: Vec<String> = (0..source_rows[0].len()).map(|p| p.to_string()).collect();
        let out2 = tmp.path().join(format!("{case}.patch2.safetensors"));
        let mut args = patch_args(arg(&out2));
        args.push("--pos");
        args.extend(all_pos.iter().map(String::as_str));
        ok(&args);
        let got2 = read_safetensors(&out2, &Device::Cpu).unwrap();
        assert_close(
            &format!("cli {case}/patched_logits (--pos all)"),
            &got2["patched_logits"],
            &want["patched_logits"],
        );
    }
}

#[test]
fn run_input_decodes_every_tracr_io_case() {
    for dir in case_dirs("tracr") {
        let case = case_name(&dir);
        let io = read_json(&dir.join("io.json"));
        for (i, c) in io["cases"].as_array().unwrap().iter().enumerate() {
            let input = input_symbols(&c["input"]).join(" ");
            let printed = ok(&["run", "--model", arg(&dir), "--input", &input, "--json"]);
            let got: Value = serde_json::from_str(printed.trim()).unwrap();
            assert_eq!(got, json!({ "output": c["model"] }), "{case}: {input}");
            if i % 10 == 0 {
                let text = ok(&["run", "--model", arg(&dir), "--input", &input]);
                let want = array_of(&c["model"], |v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                assert_eq!(text.trim_end(), want.join(" "), "{case}: {input}");
            }
        }
    }
}

#[test]
fn run_input_can_also_save_a_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rev.safetensors");
    let dir = fixtures().join("tracr/reverse");
    let printed = ok(&[
        "run",
        "--model",
        arg(&dir),
        "--input",
        "a c b",
        "--cache",
        arg(&out),
        "--hooks",
        "blocks.3.hook_attn_out",
    ]);
    assert_eq!(printed.trim(), "b c a");
    let got = read_safetensors(&out, &Device::Cpu).unwrap();
    assert_eq!(got["logits"].dims(), &[1, 4, 3]);
    assert_eq!(got["blocks.3.hook_attn_out"].dims(), &[1, 4, 35]);
}

/// `run --cache` says on stderr what it wrote: each tensor of the file with its shape, and the
/// file's size; without `--hooks` it says that only the logits were written.
#[test]
fn run_cache_reports_what_it_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &case_dirs("transformer_lens")[0];
    let tokens = dir.join("tokens.json");
    for hooks in [vec!["--hooks", "blocks.*.hook_resid_post"], vec![]] {
        let out_file = tmp.path().join("c.safetensors");
        let mut args = vec![
            "run",
            "--model",
            arg(dir),
            "--tokens",
            arg(&tokens),
            "--cache",
            arg(&out_file),
        ];
        args.extend(&hooks);
        let out = congruity(&args);
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let size = std::fs::metadata(&out_file).unwrap().len();
        assert!(
            stderr.contains(&format!("{size} bytes")),
            "states the size {size}: {stderr}"
        );
        let got = read_safetensors(&out_file, &Device::Cpu).unwrap();
        assert!(
            stderr.contains(&format!("{} tensor", got.len())),
            "{stderr}"
        );
        for (name, t) in &got {
            let dims: Vec<String> = t.dims().iter().map(ToString::to_string).collect();
            let line = format!("{name} [{}]", dims.join(", "));
            assert!(stderr.contains(&line), "lists `{line}`: {stderr}");
        }
        let says_only_logits = stderr.contains("only the logits were written");
        assert_eq!(says_only_logits, hooks.is_empty(), "{stderr}");
        assert_eq!(got.len() == 1, hooks.is_empty());
    }
}

/// A compiled pipeline directory runs stage by stage and answers as the evaluator does; `--json`
/// gives every stage's input and output.
#[test]
fn run_executes_a_compiled_pipeline_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = "specs/toy/pipelines.interp";
    for (program, inputs) in [
        ("algo_1", ["3 1 2", "0 10 10 4", "7"]),
        ("algo_2", ["3 1 2", "5 5 5", "0 1"]),
        ("algo_5", ["3 1 2", "4 4 1 0", "9"]),
    ] {
        let dir = tmp.path().join(program);
        ok(&["compile", spec, "--program", program, "--out", arg(&dir)]);
        for input in inputs {
            let want: Value = serde_json::from_str(&ok(&[
                "eval",
                spec,
                "--program",
                program,
                "--input",
                input,
                "--json",
            ]))
            .unwrap();
            let got: Value = serde_json::from_str(&ok(&[
                "run",
                "--model",
                arg(&dir),
                "--input",
                input,
                "--json",
            ]))
            .unwrap();
            assert_eq!(got["output"], want["output"], "{program} on `{input}`");
            let stages = got["stages"].as_array().unwrap();
            let manifest = read_json(&dir.join("pipeline.json"));
            assert_eq!(stages.len(), manifest["stages"].as_array().unwrap().len());
            assert_eq!(stages.last().unwrap()["output"], want["output"]);
            let text = ok(&["run", "--model", arg(&dir), "--input", input]);
            let words: Vec<String> = want["output"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            assert_eq!(text.trim(), words.join(" "), "{program} on `{input}`");
        }
    }
    let dir = tmp.path().join("algo_1");
    let err = cli_fails(&["run", "--model", arg(&dir), "--input", "3 1 99"]);
    assert!(err.contains("stage 1") && err.contains("`99`"), "{err}");
    let err = cli_fails(&[
        "run",
        "--model",
        arg(&dir),
        "--input",
        "3 1",
        "--cache",
        arg(&tmp.path().join("x.safetensors")),
    ]);
    assert!(err.contains("pipeline directory"), "{err}");
}
