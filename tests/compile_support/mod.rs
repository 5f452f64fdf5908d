//! Shared helpers of the compiler's integration tests: loading every spec, running compiled model
//! directories through the runtime (`model`), and comparing with the reference evaluator.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use congruity::compile::check::Domain;
use congruity::compile::{IoSpec, same_value};
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

/// A compiled model directory loaded into the runtime (config + TransformerLens tensors; the
/// output is decoded with the compiler's own `IoSpec`).
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
    pub fn logits(&self, io: &IoSpec, inputs: &[Vec<Value>]) -> Vec<Vec<Vec<f32>>> {
        let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, x) in inputs.iter().enumerate() {
            by_len.entry(x.len()).or_default().push(i);
        }
        let mut out: Vec<Vec<Vec<f32>>> = vec![Vec::new(); inputs.len()];
        for idx in by_len.values() {
            for chunk in idx.chunks(4096) {
                let rows: Vec<Vec<u32>> = chunk
                    .iter()
                    .map(|i| {
                        io.encode(&inputs[*i])
                            .expect("in vocab")
                            .into_iter()
                            .map(|t| t as u32)
                            .collect()
                    })
                    .collect();
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

    pub fn outputs(&self, io: &IoSpec, inputs: &[Vec<Value>]) -> Vec<Vec<Value>> {
        self.logits(io, inputs)
            .into_iter()
            .map(|l| l[1..].iter().map(|row| io.decode(row)).collect())
            .collect()
    }
}

/// Compares model outputs with the evaluator on every input the evaluator accepts; returns the
/// number of inputs compared and panics with the first mismatch.
pub fn assert_matches_evaluator(
    what: &str,
    program: &Program,
    domain: &Domain,
    outputs: &[Vec<Value>],
) -> usize {
    let mut compared = 0;
    for (input, got) in domain.inputs.iter().zip(outputs) {
        let Ok(want) = lang::eval::eval_output(program, input) else {
            continue;
        };
        let ok = got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| same_value(g, w));
        assert!(
            ok,
            "{what}: input [{}]: model {:?}, evaluator {:?}",
            congruity::compile::check::input_text(input),
            got,
            want
        );
        compared += 1;
    }
    compared
}
