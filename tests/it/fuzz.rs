//! Bounded fuzzing, run by `cargo test`: mutated and generated specs through the parser, checker,
//! evaluator and diagnostic renderer; corrupted model directories through the loader and a
//! forward with every hook cached; random and degenerate matrices through every similarity
//! measure. Every case is seeded (`CONGRUITY_FUZZ_SEED`, default below), so a failure names the
//! seed and case that reproduce it, and the case's input is written to `target/fuzz-failures/`.
//!
//! Sizes: `CONGRUITY_FUZZ_SPECS`, `CONGRUITY_FUZZ_MODELS`, `CONGRUITY_FUZZ_MATRICES` (defaults
//! sized for about a minute in CI). `scripts/fuzz` runs the long campaign. Longer, coverage-guided
//! runs: the `cargo fuzz` targets under `fuzz/`.
//!
//! A panic is caught and counted; an abort (failed allocation) kills the test binary, which fails
//! the test as loudly; a case slower than `CASE_LIMIT` counts as a hang.

use crate::support::runtime as runtime_common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use congruity::lang::{self, eval};
use congruity::model::{self, HookSelection, RunOptions, TokenBatch};
use congruity::similarity::Measure;
use faer::Mat;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

const DEFAULT_SEED: u64 = 20261203;
const CASE_LIMIT: Duration = Duration::from_secs(20);

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    env_count("CONGRUITY_FUZZ_SEED", DEFAULT_SEED as usize) as u64
}

fn case_rng(target: u64, case: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed() ^ (target << 48) ^ (case as u64).wrapping_mul(0x9E37_79B9))
}

/// What one fuzz target saw: cases, failures (with the file that reproduces each), slowest case.
#[derive(Default)]
struct Tally {
    cases: usize,
    errors: usize,
    accepted: usize,
    failures: Vec<String>,
    slowest: Duration,
}

impl Tally {
    fn run(&mut self, label: &str, case: usize, input: &[u8], f: impl FnOnce() -> bool) {
        self.cases += 1;
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(f));
        let took = started.elapsed();
        self.slowest = self.slowest.max(took);
        let failure = match outcome {
            Ok(true) => {
                self.accepted += 1;
                None
            }
            Ok(false) => {
                self.errors += 1;
                None
            }
            Err(_) => Some("panicked"),
        };
        let failure = failure.or((took > CASE_LIMIT).then_some("took longer than the case limit"));
        if let Some(what) = failure {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{label}-{}-{case}", seed()));
            let _ = std::fs::write(&file, input);
            self.failures.push(format!(
                "{label} case {case} (seed {}) {what} after {took:?}; input in {}",
                seed(),
                file.display()
            ));
        }
    }

    fn finish(self, label: &str) {
        eprintln!(
            "fuzz {label}: {} cases ({} refused with an error, {} accepted), {} failures, slowest {:?}, peak RSS {} MiB",
            self.cases,
            self.errors,
            self.accepted,
            self.failures.len(),
            self.slowest,
            peak_rss_mib()
        );
        assert!(
            self.failures.is_empty(),
            "{} of {} {label} cases failed:\n{}",
            self.failures.len(),
            self.cases,
            self.failures.join("\n")
        );
    }
}

/// The process's peak resident set (VmHWM), in MiB.
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

// ---------------------------------------------------------------------------------------------
// Specs
// ---------------------------------------------------------------------------------------------

fn spec_seeds() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "interp") {
                out.push((p.clone(), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 10, "expected the bundled specs as seeds");
    out
}

/// Paths an import may name that a reader must refuse without reading: devices, a FIFO, a
/// directory, a binary file.
struct Hostile {
    _dir: tempfile::TempDir,
    paths: Vec<String>,
}

fn hostile_paths() -> Hostile {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.interp");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    let binary = dir.path().join("binary.interp");
    std::fs::write(&binary, b"task t { vocab {a} \xff\xfe max_len 2 }\n").unwrap();
    let mut paths = vec![
        "/dev/urandom".to_string(),
        "/dev/zero".to_string(),
        "/dev/null".to_string(),
        dir.path().display().to_string(),
        binary.display().to_string(),
    ];
    if made.is_ok_and(|s| s.success()) {
        paths.push(fifo.display().to_string());
    }
    Hostile { _dir: dir, paths }
}

const TOKENS: &[&str] = &[
    "task",
    "interpretation",
    "pipeline",
    "circuit",
    "check",
    "prove",
    "import",
    "for",
    "vocab",
    "max_len",
    "output",
    "map",
    "select",
    "aggregate",
    "selector_width",
    "sequence_map",
    "if",
    "then",
    "else",
    "tokens",
    "indices",
    "length",
    "|x|",
    "|x, y|",
    "==",
    "<",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ",",
    ";",
    "\"",
    "0",
    "1",
    "-1",
    "0.5",
    "99999999999999999999",
    "1e400",
    "true",
    "false",
    "and",
    "or",
    "not",
    "->",
    "blocks.0.attn.hook_z[0]",
    "expect",
    "\n",
    " ",
    "\t",
    "é",
    "\u{0}",
    "#",
    "//",
];

fn mutate_spec(rng: &mut ChaCha8Rng, seeds: &[(PathBuf, String)], hostile: &Hostile) -> String {
    let (_, base) = &seeds[rng.random_range(0..seeds.len())];
    let mut s: Vec<u8> = base.clone().into_bytes();
    let rounds = rng.random_range(1..=4);
    for _ in 0..rounds {
        let at = if s.is_empty() {
            0
        } else {
            rng.random_range(0..=s.len())
        };
        match rng.random_range(0..12) {
            0 if !s.is_empty() => {
                let i = rng.random_range(0..s.len());
                s[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                s.splice(at..at, t.bytes());
            }
            2 if !s.is_empty() => {
                let end = (at + rng.random_range(1..64)).min(s.len());
                s.drain(at.min(end)..end);
            }
            3 => {
                // Splice a piece of another seed.
                let (_, other) = &seeds[rng.random_range(0..seeds.len())];
                let o = other.as_bytes();
                if !o.is_empty() {
                    let a = rng.random_range(0..o.len());
                    let b = (a + rng.random_range(1..200)).min(o.len());
                    s.splice(at..at, o[a..b].iter().copied());
                }
            }
            4 => {
                // A long run: past column 65,535, a huge literal or identifier.
                let n = [1000, 65_600, 100_000][rng.random_range(0..3)];
                let c = [b' ', b'9', b'q', b'('][rng.random_range(0..4)];
                s.splice(at..at, std::iter::repeat_n(c, n));
            }
            5 => {
                // Deep nesting of an expression.
                let n = rng.random_range(100..20_000);
                let (open, close) = [
                    ("map(|x| x, ", ")"),
                    ("if true then ", " else 0"),
                    ("(", ")"),
                    ("not ", ""),
                ][rng.random_range(0..4)];
                let mut piece = open.repeat(n);
                piece.push_str("tokens");
                piece.push_str(&close.repeat(n));
                s.splice(at..at, piece.into_bytes());
            }
            6 => {
                let p = &hostile.paths[rng.random_range(0..hostile.paths.len())];
                let line = format!("import \"{p}\"\n");
                s.splice(0..0, line.into_bytes());
            }
            7 => s.truncate(at),
            8 if !s.is_empty() => {
                // Duplicate a range (repeated items, names).
                let end = (at + rng.random_range(1..300)).min(s.len());
                let piece: Vec<u8> = s[at.min(end)..end].to_vec();
                s.splice(at..at, piece);
            }
            9 => {
                let mut b = [0u8; 8];
                rng.fill_bytes(&mut b);
                s.splice(at..at, b);
            }
            10 => {
                // A number field made extreme (max_len, vocab sizes, thresholds).
                let n = ["0", "-1", "4294967296", "18446744073709551616", "1000000"]
                    [rng.random_range(0..5)];
                s.splice(at..at, n.bytes());
            }
            _ => {
                let i = if s.is_empty() {
                    0
                } else {
                    rng.random_range(0..s.len())
                };
                s.insert(i, b"{}()[]\"|,\n"[rng.random_range(0..10)]);
            }
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

/// Parses, checks and renders; on a spec that checks, evaluates every program and pipeline on a
/// few short inputs. Returns whether the spec was accepted.
fn exercise_spec(path: &Path, text: &str, rng: &mut ChaCha8Rng) -> bool {
    let name = path.display().to_string();
    match lang::check_str(&name, text) {
        Err(report) => {
            let plain = report.render_plain();
            let n = report.errors.len();
            let fancy = format!("{:?}", miette::Report::new(report));
            assert!(!plain.is_empty() && !fancy.is_empty());
            // Snippets and echoes are clipped: no error is the size of a huge line or literal.
            assert!(
                plain.len() <= 8192 * n,
                "{n} errors in {} bytes",
                plain.len()
            );
            false
        }
        Ok(spec) => {
            for program in spec.programs.values().take(4) {
                for input in short_inputs(&program.task, rng) {
                    if let Err(e) = eval::eval_output(program, &input) {
                        let _ = e.to_string();
                    }
                }
            }
            for pipeline in spec.pipelines.values().take(2) {
                let Some(first) = pipeline
                    .stages
                    .first()
                    .and_then(|s| spec.programs.get(&s.program))
                else {
                    continue;
                };
                for input in short_inputs(&first.task, rng) {
                    let _ = eval::eval_pipeline(&spec, pipeline, &input).map_err(|e| e.to_string());
                }
            }
            true
        }
    }
}

/// A few random inputs of at most 6 tokens (the evaluator's cost grows with the square of the
/// length, and a mutated `max_len` may be huge).
fn short_inputs(task: &lang::ir::Task, rng: &mut ChaCha8Rng) -> Vec<Vec<lang::ir::Value>> {
    if task.vocab.is_empty() {
        return Vec::new();
    }
    (0..3)
        .map(|_| {
            let n = rng.random_range(1..=task.max_len.clamp(1, 6));
            (0..n)
                .map(|_| task.vocab[rng.random_range(0..task.vocab.len())].clone())
                .collect::<Vec<_>>()
        })
        .filter(|i| eval::check_input(task, i).is_ok())
        .collect()
}

#[test]
fn mutated_specs_never_panic_hang_or_echo_whole() {
    let n = env_count("CONGRUITY_FUZZ_SPECS", 3000);
    let seeds = spec_seeds();
    let hostile = hostile_paths();
    let mut tally = Tally::default();
    for case in 0..n {
        let mut rng = case_rng(1, case);
        let text = mutate_spec(&mut rng, &seeds, &hostile);
        // Imports resolve beside a real seed, so mutated specs can import the bundled files.
        let (seed_path, _) = &seeds[case % seeds.len()];
        let path = seed_path.with_file_name("fuzz-case.interp");
        tally.run("spec", case, text.as_bytes(), || {
            exercise_spec(&path, &text, &mut rng)
        });
    }
    // The bundled specs themselves are accepted: the mutations start from valid text.
    assert!(tally.accepted > 0, "no mutated spec checked");
    tally.finish("spec");
}

#[test]
fn the_reported_diagnostics_render_at_any_column() {
    let long_line = format!("{}oops\n", " ".repeat(65_600));
    let ident = format!(
        "task t {{ vocab {{a}} max_len 3 }}\ninterpretation i for t {{ output map(|x| x == a, {}) }}\n",
        "q".repeat(100_000)
    );
    let maps = format!(
        "task t {{ vocab {{a}} max_len 3 }}\ninterpretation i for t {{ output {}tokens{} }}\n",
        "map(|x| x, ".repeat(10_000),
        ")".repeat(10_000)
    );
    let ifs = format!(
        "task t {{ vocab {{a}} max_len 3 }}\ninterpretation i for t {{ output map(|x| {}1{}, tokens) }}\n",
        "if x == a then ".repeat(100_000),
        " else 0".repeat(100_000)
    );
    let literal = format!(
        "task t {{ vocab {{a}} max_len 3 }}\ninterpretation i for t {{ output map(|x| {}, tokens) }}\n",
        "9".repeat(1_000_000)
    );
    for (what, text) in [
        ("65,600 spaces", long_line),
        ("a 100k-character name", ident),
        ("10,000 nested maps", maps),
        ("100,000 nested ifs", ifs),
        ("a 1M-digit literal", literal),
    ] {
        let report = lang::check_str("case.interp", &text).expect_err(what);
        let fancy = format!("{:?}", miette::Report::new(report.clone()));
        let plain = report.render_plain();
        assert!(
            plain.len() < 4096 && fancy.len() < 4096,
            "{what}: {} / {} bytes",
            plain.len(),
            fancy.len()
        );
        // The header still states the true location.
        let loc = report.errors[0].location().expect("a located error");
        assert!(
            plain.contains(&loc) || plain.contains("case.interp:"),
            "{what}: {plain}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Model directories
// ---------------------------------------------------------------------------------------------

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap();
        // Only what a loader reads; reference outputs and notes would only slow the copy.
        let keep = p.extension().is_some_and(|x| x == "json")
            || ["model.safetensors", "weights.safetensors"]
                .iter()
                .any(|n| name == *n)
            || (p.extension().is_some_and(|x| x == "safetensors")
                && name.to_string_lossy().starts_with("model-"));
        if p.is_file() && keep {
            std::fs::copy(&p, to.join(name)).unwrap();
        }
    }
}

fn model_seeds(scratch: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for family in ["transformer_lens", "tracr", "hf"] {
        dirs.extend(runtime_common::case_dirs(family));
    }
    // A compiled model with its sidecar.
    let compiled = scratch.join("compiled");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_congruity"))
        .args([
            "compile",
            "specs/tracr/reverse.interp",
            "--program",
            "tracr_reverse",
            "--out",
        ])
        .arg(&compiled)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dirs.push(compiled);
    dirs
}

const EXTREMES: &[&str] = &[
    "10000000000000",
    "1e30",
    "9223372036854775808",
    "18446744073709551616",
    "1e308",
    "-1",
    "0",
    "-7",
    "0.5",
    "\"x\"",
    "null",
    "[]",
    "{}",
    "true",
    "[1, 2]",
];

/// A random leaf or key of a JSON document, changed.
fn mutate_json(v: &mut Value, rng: &mut ChaCha8Rng) {
    match v {
        Value::Object(map) if !map.is_empty() && rng.random_bool(0.85) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let k = &keys[rng.random_range(0..keys.len())];
            match rng.random_range(0..10) {
                0 => {
                    map.remove(k);
                }
                1 => {
                    map.insert(format!("{k}_"), Value::Null);
                }
                _ => mutate_json(map.get_mut(k).unwrap(), rng),
            }
        }
        Value::Array(items) if !items.is_empty() && rng.random_bool(0.85) => {
            match rng.random_range(0..6) {
                0 => {
                    items.pop();
                }
                1 => {
                    let c = items[0].clone();
                    items.push(c);
                }
                _ => {
                    let i = rng.random_range(0..items.len());
                    mutate_json(&mut items[i], rng);
                }
            }
        }
        _ => {
            *v = serde_json::from_str(EXTREMES[rng.random_range(0..EXTREMES.len())]).unwrap();
        }
    }
}

/// Corrupts a safetensors file: its header (shapes, dtypes, offsets, names, length) or its bytes.
fn mutate_safetensors(bytes: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    if bytes.len() < 8 {
        return;
    }
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header_ok = len.checked_add(8).is_some_and(|end| end <= bytes.len());
    match rng.random_range(0..6) {
        0..=2 if header_ok => {
            let Ok(mut header) = serde_json::from_slice::<Value>(&bytes[8..8 + len]) else {
                return;
            };
            mutate_json(&mut header, rng);
            let mut h = serde_json::to_vec(&header).unwrap();
            while h.len() % 8 != 0 {
                h.push(b' ');
            }
            let mut out = (h.len() as u64).to_le_bytes().to_vec();
            out.extend(h);
            out.extend_from_slice(&bytes[8 + len..]);
            *bytes = out;
        }
        3 => {
            let at = rng.random_range(0..bytes.len());
            bytes.truncate(at);
        }
        4 => {
            let fake: u64 =
                [u64::MAX, 1 << 40, (len as u64).wrapping_add(1), 0][rng.random_range(0..4)];
            bytes[..8].copy_from_slice(&fake.to_le_bytes());
        }
        _ => {
            for _ in 0..rng.random_range(1..16) {
                let i = rng.random_range(0..bytes.len());
                bytes[i] = rng.random();
            }
        }
    }
}

fn mutate_model_dir(dir: &Path, rng: &mut ChaCha8Rng) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for _ in 0..rng.random_range(1..=3) {
        let f = &files[rng.random_range(0..files.len())];
        if !f.is_file() {
            continue;
        }
        let is_json = f.extension().is_some_and(|x| x == "json");
        match rng.random_range(0..10) {
            0 => {
                // Replaced by something that is not a regular file.
                let _ = std::fs::remove_file(f);
                match rng.random_range(0..3) {
                    0 => std::fs::create_dir(f).unwrap(),
                    1 => std::os::unix::fs::symlink("/dev/zero", f).unwrap(),
                    _ => {}
                }
            }
            _ if is_json => {
                let text = std::fs::read_to_string(f).unwrap_or_default();
                match serde_json::from_str::<Value>(&text) {
                    Ok(mut v) if rng.random_bool(0.9) => {
                        mutate_json(&mut v, rng);
                        std::fs::write(f, serde_json::to_vec(&v).unwrap()).unwrap();
                    }
                    _ => {
                        let mut b = text.into_bytes();
                        if !b.is_empty() {
                            let at = rng.random_range(0..b.len());
                            b.truncate(at);
                        }
                        std::fs::write(f, b).unwrap();
                    }
                }
            }
            _ => {
                let mut b = std::fs::read(f).unwrap();
                mutate_safetensors(&mut b, rng);
                std::fs::write(f, b).unwrap();
            }
        }
    }
}

/// Loads the directory and, when it loads, runs three tokens with every hook cached.
fn exercise_model(dir: &Path) -> bool {
    match model::load(dir, &candle_core::Device::Cpu) {
        Err(e) => {
            let _ = format!("{:?}", miette::Report::new(e));
            false
        }
        Ok(loaded) => {
            let m = &loaded.transformer;
            let cfg = m.config();
            let len = cfg.n_ctx.min(3);
            let row: Vec<u32> = (0..len).map(|i| (i % cfg.d_vocab) as u32).collect();
            let run = TokenBatch::new(&[row]).and_then(|t| {
                let hooks = m.select_hooks(&["*"]).unwrap_or(HookSelection::None);
                m.forward(&t, &RunOptions::cache(hooks))
            });
            if let Err(e) = run {
                let _ = format!("{:?}", miette::Report::new(e));
            }
            true
        }
    }
}

#[test]
fn corrupted_model_directories_never_panic_abort_or_hang() {
    let n = env_count("CONGRUITY_FUZZ_MODELS", 150);
    let scratch = tempfile::tempdir().unwrap();
    let seeds = model_seeds(scratch.path());
    let mut tally = Tally::default();
    for case in 0..n {
        let mut rng = case_rng(2, case);
        let base = &seeds[case % seeds.len()];
        let dir = scratch.path().join(format!("case-{case}"));
        copy_dir(base, &dir);
        mutate_model_dir(&dir, &mut rng);
        let describe = format!("base {}\n", base.display());
        tally.run("model", case, describe.as_bytes(), || exercise_model(&dir));
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(tally.errors > 0, "no corruption was refused");
    tally.finish("model");
}

// ---------------------------------------------------------------------------------------------
// Similarity
// ---------------------------------------------------------------------------------------------

fn random_matrix(rng: &mut ChaCha8Rng, n: usize) -> Mat<f64> {
    let d = rng.random_range(0..12);
    let scale = [1.0, 1e300, 1e-300, 1e30, 1e-12, 0.0][rng.random_range(0..6)];
    let mut m = Mat::from_fn(n, d, |_, _| (rng.random::<f64>() - 0.5) * scale);
    match rng.random_range(0..8) {
        0 if n > 0 && d > 0 => {
            // Every row the same (a near-constant representation).
            let row: Vec<f64> = (0..d).map(|j| m[(0, j)] + 1.0).collect();
            m = Mat::from_fn(n, d, |_, j| row[j]);
        }
        1 if n > 0 && d > 0 => {
            let bad =
                [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX][rng.random_range(0..4)];
            let (i, j) = (rng.random_range(0..n), rng.random_range(0..d));
            m[(i, j)] = bad;
        }
        2 if d > 1 => {
            // A repeated column (rank deficiency).
            for i in 0..n {
                m[(i, d - 1)] = m[(i, 0)];
            }
        }
        _ => {}
    }
    m
}

#[test]
fn similarity_never_panics_or_returns_a_non_number() {
    let n_cases = env_count("CONGRUITY_FUZZ_MATRICES", 400);
    let measures: Vec<Measure> = Measure::defaults();
    let mut tally = Tally::default();
    for case in 0..n_cases {
        let mut rng = case_rng(3, case);
        let n = rng.random_range(0..40);
        let x = random_matrix(&mut rng, n);
        let ny = if rng.random_bool(0.9) { n } else { n + 1 };
        let y = random_matrix(&mut rng, ny);
        let m = measures[case % measures.len()].clone();
        let describe = format!(
            "{m} x {}x{} y {}x{}",
            x.nrows(),
            x.ncols(),
            y.nrows(),
            y.ncols()
        );
        tally.run("similarity", case, describe.as_bytes(), || {
            match m.compute(x.as_ref(), y.as_ref()) {
                Ok(v) => {
                    assert!(v.value().is_finite(), "{describe}: {}", v.value());
                    true
                }
                Err(e) => {
                    let _ = format!("{:?}", miette::Report::new(e));
                    false
                }
            }
        });
    }
    tally.finish("similarity");
}
