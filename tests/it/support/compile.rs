//! Shared helpers of the compiler's integration tests: loading every spec, running compiled model
//! directories through the runtime (`model`), and comparing with the reference evaluator.
#![allow(dead_code)]

// The fixture, JSON and binary helpers of the runtime tests serve these tests too.
#[allow(unused_imports)] // each test file uses a different part
pub use super::runtime::{arg, array_of, cli_fails, congruity, fixtures, ok, read_json};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use congruity::compile::check::Domain;
use congruity::compile::{Compiled, same_values};
use congruity::lang;
use congruity::lang::ir::{Program, Value};
use congruity::model::config::ModelConfig;
use congruity::model::io::NamedTensors;
use congruity::model::{RunOptions, TokenBatch, Transformer};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

pub fn spec_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "interp") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("specs"), &mut out);
    out
}

/// Every interpretation defined in `specs/` (each once, from the file that defines it), with the
/// file it comes from.
pub fn all_programs() -> Vec<(PathBuf, Program)> {
    let mut seen = BTreeMap::new();
    for f in spec_files() {
        // A spec file the checker rejects is the language's or the spec's problem, reported by
        // `congruity check`; its interpretations cannot be compiled.
        let Ok(spec) = lang::load(&f) else {
            eprintln!("skipping {}: it does not check", f.display());
            continue;
        };
        for (name, p) in spec.programs {
            let defined_in = p
                .source
                .as_ref()
                .map(|s| s.file.as_ref().clone())
                .unwrap_or_else(|| f.clone());
            seen.entry((defined_in.clone(), name))
                .or_insert((f.clone(), p));
        }
    }
    seen.into_values().collect()
}

pub fn load_program(file: &Path, name: &str) -> Program {
    let spec = lang::load(file).unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
    spec.programs
        .get(name)
        .unwrap_or_else(|| panic!("no program {name}"))
        .clone()
}

/// The runtime's token ids of one input (BOS first).
fn token_row(io: &Compiled, input: &[Value]) -> Vec<u32> {
    io.encode(input)
        .expect("in vocab")
        .into_iter()
        .map(|t| t as u32)
        .collect()
}

/// A compiled model directory loaded into the runtime (config + TransformerLens tensors; the
/// output is decoded with the compiler's own encodings, [`Compiled::decode`]).
pub struct RuntimeModel {
    pub transformer: Transformer,
}

impl RuntimeModel {
    pub fn load(dir: &Path) -> RuntimeModel {
        let config = ModelConfig::from_file(&dir.join("config.json")).expect("config.json loads");
        let named = NamedTensors::read(&dir.join("model.safetensors")).expect("safetensors reads");
        let weights = congruity::model::Weights::from_named(&config, &named, &Device::Cpu)
            .expect("weights load");
        RuntimeModel {
            transformer: Transformer::new(config, weights).expect("transformer builds"),
        }
    }

    /// Logits `[input][pos][out]` for inputs of any lengths (batched by length).
    pub fn logits(&self, io: &Compiled, inputs: &[Vec<Value>]) -> Vec<Vec<Vec<f32>>> {
        let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, x) in inputs.iter().enumerate() {
            by_len.entry(x.len()).or_default().push(i);
        }
        let mut out: Vec<Vec<Vec<f32>>> = vec![Vec::new(); inputs.len()];
        for idx in by_len.values() {
            for chunk in idx.chunks(4096) {
                let rows: Vec<Vec<u32>> =
                    chunk.iter().map(|i| token_row(io, &inputs[*i])).collect();
                let batch = TokenBatch::new(&rows).expect("batch");
                let run = self
                    .transformer
                    .forward(&batch, &RunOptions::default())
                    .expect("forward");
                let l: Vec<Vec<Vec<f32>>> = run.logits.to_vec3().expect("logits");
                for (i, li) in chunk.iter().zip(l) {
                    out[*i] = li;
                }
            }
        }
        out
    }

    pub fn outputs(&self, io: &Compiled, inputs: &[Vec<Value>]) -> Vec<Vec<Value>> {
        self.logits(io, inputs)
            .into_iter()
            .map(|l| l[1..].iter().map(|row| io.decode(row)).collect())
            .collect()
    }
}

/// The evaluator's output on each input of a domain (`None` where it rejects the input).
pub fn expected_outputs(program: &Program, domain: &Domain) -> Vec<Option<Vec<Value>>> {
    domain
        .inputs
        .iter()
        .map(|x| lang::eval::eval_output(program, x).ok())
        .collect()
}

/// Compares model outputs with precomputed evaluator outputs on every input the evaluator
/// accepts; returns the number compared and panics with the first mismatch.
pub fn assert_matches_expected(
    what: &str,
    domain: &Domain,
    expected: &[Option<Vec<Value>>],
    outputs: &[Vec<Value>],
) -> usize {
    let mut compared = 0;
    for ((input, want), got) in domain.inputs.iter().zip(expected).zip(outputs) {
        let Some(want) = want else { continue };
        assert!(
            same_values(got, want),
            "{what}: input [{}]: model {:?}, evaluator {:?}",
            congruity::compile::check::input_text(input),
            got,
            want
        );
        compared += 1;
    }
    compared
}

/// [`assert_matches_expected`] evaluating the program on the spot.
pub fn assert_matches_evaluator(
    what: &str,
    program: &Program,
    domain: &Domain,
    outputs: &[Vec<Value>],
) -> usize {
    assert_matches_expected(what, domain, &expected_outputs(program, domain), outputs)
}

impl RuntimeModel {
    /// The paper's representation of each input: the residual stream after every layer
    /// (`blocks.{l}.hook_resid_post`), mean-pooled over positions, concatenated over layers.
    pub fn representations(&self, io: &Compiled, inputs: &[Vec<Value>]) -> Vec<Vec<f32>> {
        let n_layers = self.transformer.config().n_layers;
        let names: Vec<String> = (0..n_layers)
            .map(|l| format!("blocks.{l}.hook_resid_post"))
            .collect();
        let select = self.transformer.select_hooks(&names).expect("hooks");
        let mut out = Vec::with_capacity(inputs.len());
        for x in inputs {
            let batch = TokenBatch::new(&[token_row(io, x)]).expect("batch");
            let run = self
                .transformer
                .forward(&batch, &RunOptions::cache(select.clone()))
                .expect("forward");
            let mut rep = Vec::new();
            for name in &names {
                let t = run
                    .cache
                    .get_by_name(name)
                    .expect("hook name")
                    .expect("cached");
                let m: Vec<Vec<f32>> = t.squeeze(0).expect("batch 1").to_vec2().expect("2d");
                let d = m[0].len();
                for j in 0..d {
                    rep.push(m.iter().map(|r| r[j]).sum::<f32>() / m.len() as f32);
                }
            }
            out.push(rep);
        }
        out
    }
}

/// Whether two representation matrices (inputs × features) are equal up to a permutation of
/// the features (within `tol`).
pub fn equal_up_to_permutation(a: &[Vec<f32>], b: &[Vec<f32>], tol: f32) -> bool {
    let (Some(ra), Some(rb)) = (a.first(), b.first()) else {
        return a.len() == b.len();
    };
    if a.len() != b.len() || ra.len() != rb.len() {
        return false;
    }
    let col = |m: &[Vec<f32>], j: usize| -> Vec<f32> { m.iter().map(|r| r[j]).collect() };
    let mut used = vec![false; rb.len()];
    for j in 0..ra.len() {
        let ca = col(a, j);
        let hit = (0..rb.len()).find(|k| {
            !used[*k]
                && col(b, *k)
                    .iter()
                    .zip(&ca)
                    .all(|(x, y)| (x - y).abs() <= tol)
        });
        match hit {
            Some(k) => used[k] = true,
            None => return false,
        }
    }
    true
}
