//! `samples N family trained`: a check's implementations are trained (SIIT on the compiled
//! layout), accepted, kept in the cache by content, reused on the next run with the same bytes
//! of report; a pipeline's implementations are chains of trained stage models.

use std::path::{Path, PathBuf};

use super::{stderr, stdout, test};

/// Two interpretations of one small task that train in a few hundred steps: token plus index by
/// an MLP, and the tokens copied by a head.
const SPEC: &str = "task t {
  vocab {0, 1}
  max_len 3
}

interpretation by_mlp for t {
  output map2(|x, i| x + i, tokens, indices)
}

interpretation by_head for t {
  output aggregate(select(indices, indices, ==), tokens)
}

check trained {
  compare by_mlp vs by_head
  samples 3 family trained
  seed    4
  expect  distinguishable(by_mlp, by_head)
}
";

fn members(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let trained = cache.join("trained");
    for pool in std::fs::read_dir(&trained).unwrap() {
        for m in std::fs::read_dir(pool.unwrap().path()).unwrap() {
            out.push(m.unwrap().path());
        }
    }
    out.sort();
    out
}

/// Runs `congruity test SPEC [extra] --quiet --report DIR/OUT` with `cache`, and checks that
/// it reached a verdict either way, never an error: status 0 (pass) or 1 (fail).
fn run_to_verdict(spec: &Path, extra: &[&str], cache: &Path, report: &Path) {
    let mut args = vec![spec.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--quiet", "--report", report.to_str().unwrap()]);
    let o = test(&args, cache);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(!stdout(&o).contains("ERROR"), "{}", stdout(&o));
}

/// A model file's modification time (a model trained again is written again).
fn stamp(model: &Path) -> std::time::SystemTime {
    std::fs::metadata(model).unwrap().modified().unwrap()
}

fn sidecar(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("congruity.json")).unwrap()).unwrap()
}

#[test]
fn a_check_trains_its_implementations_once_and_reads_them_back() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("trained.interp");
    std::fs::write(&spec, SPEC).unwrap();
    let report = |name: &str| dir.path().join(name);
    let run = |out: &str| run_to_verdict(&spec, &[], cache.path(), &report(out));
    run("one.json");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report("one.json")).unwrap()).unwrap();
    let unit = &json["units"][0];
    assert_eq!(unit["settings"]["family"], "trained", "{unit}");
    assert_eq!(unit["settings"]["samples"], 3);

    // Two pools of three members, each trained, measured and accepted.
    let kept = members(cache.path());
    assert_eq!(kept.len(), 6, "{kept:?}");
    let mut seeds = Vec::new();
    for m in &kept {
        let sidecar = sidecar(m);
        let t = &sidecar["provenance"]["training"];
        assert_eq!(t["accepted"], true, "{}: {t}", m.display());
        assert!(t["accuracy"].as_f64().unwrap() >= 0.99, "{t}");
        assert!(t["iia"].as_f64().unwrap() >= 0.95, "{t}");
        assert_eq!(sidecar["provenance"]["sample"]["base_seed"], 4);
        seeds.push(sidecar["provenance"]["seed"].as_u64().unwrap());
    }
    seeds.sort();
    seeds.dedup();
    assert_eq!(seeds.len(), 3, "each member of a pool has its own seed");

    // The second run trains nothing: the members are not rewritten, the report is the same.
    let stamps = || -> Vec<_> {
        kept.iter()
            .map(|m| stamp(&m.join("model.safetensors")))
            .collect()
    };
    let before = stamps();
    run("two.json");
    assert_eq!(members(cache.path()), kept);
    assert_eq!(stamps(), before);
    assert_eq!(
        std::fs::read(report("one.json")).unwrap(),
        std::fs::read(report("two.json")).unwrap()
    );
}

#[test]
fn a_pipeline_check_trains_chains_of_stage_models_once() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("p.interp");
    let pipe = "pipeline twice = by_head |> by_head\n\ncheck p {\n  compare twice vs by_head\n  samples 3 family trained\n  seed    4\n  expect  indistinguishable(twice, by_head)\n}\n";
    let text = SPEC.replace("check trained", "check unused") + pipe;
    std::fs::write(&spec, text).unwrap();
    let report = |name: &str| dir.path().join(name);
    let run = |out: &str| run_to_verdict(&spec, &["--filter", "*::p"], cache.path(), &report(out));
    run("one.json");
    // Three chains of the pipeline, each with two accepted stage models of their own, beside
    // the interpretation's three members; the chains hold copies of kept stage models.
    let trained = cache.path().join("trained");
    let mut chains = Vec::new();
    for pool in std::fs::read_dir(&trained).unwrap() {
        for m in std::fs::read_dir(pool.unwrap().path()).unwrap() {
            let m = m.unwrap().path();
            if m.join("pipeline.json").is_file() {
                chains.push(m);
            }
        }
    }
    chains.sort();
    assert_eq!(chains.len(), 3, "{chains:?}");
    let mut seeds = Vec::new();
    for c in &chains {
        for stage in ["00-by_head", "01-by_head"] {
            let sidecar = sidecar(&c.join(stage));
            let t = &sidecar["provenance"]["training"];
            assert_eq!(t["accepted"], true, "{}: {t}", c.display());
            seeds.push(sidecar["provenance"]["seed"].as_u64().unwrap());
        }
    }
    seeds.sort();
    seeds.dedup();
    assert_eq!(
        seeds.len(),
        6,
        "every stage of every chain has its own training"
    );
    // The second run trains nothing and reports the same bytes.
    let stamps = || -> Vec<_> {
        chains
            .iter()
            .map(|c| stamp(&c.join("00-by_head/model.safetensors")))
            .collect()
    };
    let before = stamps();
    run("two.json");
    assert_eq!(stamps(), before);
    assert_eq!(
        std::fs::read(report("one.json")).unwrap(),
        std::fs::read(report("two.json")).unwrap()
    );
}
