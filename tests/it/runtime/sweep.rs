//! Patching sweeps against TransformerLens' own `get_act_patch_attn_head_out_all_pos` and
//! `get_act_patch_resid_pre` (every `transformer_lens/*/patching_sweep.safetensors` case; roles in
//! its `notes_sweep.md`: the base run is on `source_tokens`, sites come from `tokens`, the metric
//! is the last position's logit A − logit B with A = tokens[0][-1] mod d_vocab_out, B = A + 1),
//! through the library and the CLI; and the sweep kinds' shapes and invariants.

use std::path::Path;

use candle_core::Device;
use congruity::intervene::{Metric, SweepKind, parse_family, sweep};
use congruity::model::io::read_safetensors;
use congruity::model::{TokenBatch, load};

use crate::support::runtime::{case_dirs, case_name, ok, read_json, read_token_rows};

const TOLERANCE: f32 = 1e-4;

fn values(t: &candle_core::Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// The metric the fixture's notes define, from its own tokens and config.
fn fixture_metric(dir: &Path) -> Metric {
    let rows = read_token_rows(&dir.join("tokens.json"), "tokens");
    let vocab = read_json(&dir.join("config.json"))["d_vocab_out"]
        .as_u64()
        .expect("config.json has d_vocab_out") as usize;
    let a = *rows[0].last().unwrap() as usize % vocab;
    Metric::LogitDiff {
        a,
        b: (a + 1) % vocab,
    }
}

fn close(case: &str, what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{case} {what}: sizes");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= TOLERANCE,
            "{case} {what}[{i}]: {g} vs TransformerLens {w}"
        );
    }
}

fn sweep_cases() -> Vec<std::path::PathBuf> {
    let cases: Vec<_> = case_dirs("transformer_lens")
        .into_iter()
        .filter(|d| d.join("patching_sweep.safetensors").is_file())
        .collect();
    assert!(!cases.is_empty(), "no patching_sweep fixture");
    cases
}

#[test]
fn library_sweeps_match_transformer_lens_patching() {
    for dir in sweep_cases() {
        let case = case_name(&dir);
        let want = read_safetensors(&dir.join("patching_sweep.safetensors"), &Device::Cpu).unwrap();
        let m = load(&dir, &Device::Cpu).unwrap();
        let base =
            TokenBatch::new(&read_token_rows(&dir.join("tokens.json"), "source_tokens")).unwrap();
        let source = TokenBatch::new(&read_token_rows(&dir.join("tokens.json"), "tokens")).unwrap();
        let metric = fixture_metric(&dir);
        for (family, kind, key) in [
            ("attn.hook_z", SweepKind::Heads, "attn_head_out_all_pos"),
            ("hook_resid_pre", SweepKind::Positions, "resid_pre"),
        ] {
            let r = sweep(
                &m.transformer,
                m.sidecar.as_ref(),
                &base,
                &source,
                parse_family(family).unwrap(),
                kind,
                &metric,
            )
            .unwrap();
            let expected = &want[key];
            assert_eq!(r.shape, expected.dims(), "{case} {key}");
            let got: Vec<f32> = r.values.iter().map(|v| *v as f32).collect();
            close(&case, key, &got, &values(expected));
            close(
                &case,
                "base metric",
                &[r.base_metric as f32],
                &values(&want["corrupted_metric"]),
            );
            close(
                &case,
                "source metric",
                &[r.source_metric as f32],
                &values(&want["clean_metric"]),
            );
            // The source run is computed once: one forward per site plus the two plain runs.
            assert_eq!(r.forwards, r.values.len() + 2);
        }
    }
}

#[test]
fn cli_sweeps_match_transformer_lens_patching_and_name_their_axes() {
    for dir in sweep_cases() {
        let case = case_name(&dir);
        let tmp = tempfile::tempdir().unwrap();
        let tokens = read_json(&dir.join("tokens.json"));
        let base = tmp.path().join("base.json");
        let source = tmp.path().join("source.json");
        std::fs::write(
            &base,
            serde_json::json!({"tokens": tokens["source_tokens"]}).to_string(),
        )
        .unwrap();
        std::fs::write(
            &source,
            serde_json::json!({"tokens": tokens["tokens"]}).to_string(),
        )
        .unwrap();
        let want = read_safetensors(&dir.join("patching_sweep.safetensors"), &Device::Cpu).unwrap();
        let metric = fixture_metric(&dir).to_string();
        for (family, kind, key) in [
            ("attn.hook_z", "heads", "attn_head_out_all_pos"),
            ("hook_resid_pre", "positions", "resid_pre"),
        ] {
            let out = tmp.path().join(format!("{key}.safetensors"));
            let svg = tmp.path().join(format!("{key}.svg"));
            ok(&[
                "patch",
                "--model",
                dir.to_str().unwrap(),
                "--tokens",
                base.to_str().unwrap(),
                "--source",
                source.to_str().unwrap(),
                "--sweep",
                kind,
                "--hook",
                family,
                "--metric",
                &metric,
                "--out",
                out.to_str().unwrap(),
                "--svg",
                svg.to_str().unwrap(),
            ]);
            let got = read_safetensors(&out, &Device::Cpu).unwrap();
            close(&case, key, &values(&got["sweep"]), &values(&want[key]));
            close(
                &case,
                "base_metric",
                &values(&got["base_metric"]),
                &values(&want["corrupted_metric"]),
            );
            close(
                &case,
                "source_metric",
                &values(&got["source_metric"]),
                &values(&want["clean_metric"]),
            );
            // The axes are named in the metadata.
            let bytes = std::fs::read(&out).unwrap();
            let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
            let meta = meta.metadata().clone().unwrap();
            let axes = if kind == "heads" {
                "layer,head"
            } else {
                "layer,position"
            };
            assert_eq!(meta["sweep_axes"], axes);
            assert_eq!(meta["hook"], family);
            assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
        }
    }
}

#[test]
fn every_kind_has_its_shape_and_patching_a_whole_residual_gives_the_source() {
    let dir = sweep_cases().remove(0);
    let m = load(&dir, &Device::Cpu).unwrap();
    let base =
        TokenBatch::new(&read_token_rows(&dir.join("tokens.json"), "source_tokens")).unwrap();
    let source = TokenBatch::new(&read_token_rows(&dir.join("tokens.json"), "tokens")).unwrap();
    let cfg = m.transformer.config();
    let (l, h, s) = (cfg.n_layers, cfg.n_heads, base.len());
    let metric = fixture_metric(&dir);
    let run = |family: &str, kind| {
        sweep(
            &m.transformer,
            None,
            &base,
            &source,
            parse_family(family).unwrap(),
            kind,
            &metric,
        )
    };
    assert_eq!(
        run("attn.hook_z", SweepKind::HeadsByPosition)
            .unwrap()
            .shape,
        [l, s, h]
    );
    let layers = run("hook_resid_pre", SweepKind::Layers).unwrap();
    assert_eq!(layers.shape, [l]);
    // The whole residual stream before a layer carries everything: every layer gives the
    // source run's metric.
    for v in &layers.values {
        assert!(
            (v - layers.source_metric).abs() < 1e-4,
            "{v} vs {}",
            layers.source_metric
        );
    }
    // A hook without a head axis cannot be swept by head, and a token outside the vocabulary is
    // refused by the metric.
    assert!(run("hook_resid_pre", SweepKind::Heads).is_err());
    let big = Metric::LogitDiff {
        a: cfg.d_vocab_out,
        b: 0,
    };
    assert!(
        sweep(
            &m.transformer,
            None,
            &base,
            &source,
            parse_family("hook_mlp_out").unwrap(),
            SweepKind::Layers,
            &big
        )
        .is_err()
    );
    assert!(parse_family("blocks.0.hook_resid_pre").is_err());
    for bad in ["logit-diff:1", "prob:x", "entropy"] {
        assert!(bad.parse::<Metric>().is_err(), "{bad}");
    }
}

#[test]
fn cli_ablations_zero_mean_and_resample_one_site() {
    let dir = sweep_cases().remove(0);
    let tmp = tempfile::tempdir().unwrap();
    let tokens = read_json(&dir.join("tokens.json"));
    let base = tmp.path().join("base.json");
    let reference = tmp.path().join("reference.json");
    std::fs::write(
        &base,
        serde_json::json!({"tokens": tokens["tokens"]}).to_string(),
    )
    .unwrap();
    std::fs::write(
        &reference,
        serde_json::json!({"tokens": tokens["source_tokens"]}).to_string(),
    )
    .unwrap();
    let run = |extra: &[&str], name: &str| {
        let out = tmp.path().join(format!("{name}.safetensors"));
        let mut args = vec![
            "patch",
            "--model",
            dir.to_str().unwrap(),
            "--tokens",
            base.to_str().unwrap(),
            "--hook",
            "blocks.0.attn.hook_z",
            "--head",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ok(&args);
        read_safetensors(&out, &Device::Cpu).unwrap()
    };
    let zero = run(&["--ablate", "zero"], "zero");
    let (a, b) = (
        values(&zero["ablated_logits"]),
        values(&zero["base_logits"]),
    );
    assert_eq!(a.len(), b.len());
    assert!(
        a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-4),
        "zero ablation changes the logits"
    );
    let mean = run(
        &["--ablate", "mean", "--source", reference.to_str().unwrap()],
        "mean",
    );
    let resample = run(&["--ablate", "resample", "--seed", "3"], "resample");
    // Resampling from an explicit batch is patching from it.
    let from_source = run(
        &[
            "--ablate",
            "resample",
            "--source",
            reference.to_str().unwrap(),
        ],
        "rs",
    );
    let patched = {
        let out = tmp.path().join("patched.safetensors");
        ok(&[
            "patch",
            "--model",
            dir.to_str().unwrap(),
            "--tokens",
            base.to_str().unwrap(),
            "--source",
            reference.to_str().unwrap(),
            "--hook",
            "blocks.0.attn.hook_z",
            "--head",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]);
        read_safetensors(&out, &Device::Cpu).unwrap()
    };
    close(
        "ablation",
        "resample from --source",
        &values(&from_source["ablated_logits"]),
        &values(&patched["patched_logits"]),
    );
    assert_ne!(
        values(&mean["ablated_logits"]),
        values(&resample["ablated_logits"])
    );
}
