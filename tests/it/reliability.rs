//! Regression tests for the fault-injection findings of issue 13, through the built binary: each
//! input that once panicked, aborted, hung, returned NaN or destroyed an input now gets a clear
//! error (a non-zero exit that is not a panic or abort, in bounded time and output) and leaves
//! every input byte for byte as it was.

use crate::support::runtime as runtime_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runtime_common::{arg, fixtures, ok};

/// Exit code, stdout and stderr of `congruity ARGS` run in `cwd`, killed after `limit`.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_in(cwd: &Path, args: &[&str], limit: Duration) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_congruity"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("congruity {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs and expects a clean refusal: a non-zero exit code (not a panic's 101 and not a signal),
/// no panic message, an error shorter than `max_bytes`. Returns stderr with the boxes removed.
fn refused_in(cwd: &Path, args: &[&str], max_bytes: usize) -> String {
    let r = run_in(cwd, args, Duration::from_secs(60));
    assert!(
        matches!(r.code, Some(c) if c != 0 && c != 101),
        "congruity {args:?}: expected a clean error, got exit {:?}\nstdout: {}\nstderr: {}",
        r.code,
        r.stdout,
        &r.stderr[..r.stderr.len().min(2000)]
    );
    assert!(
        !r.stderr.contains("panicked"),
        "{args:?} panicked: {}",
        r.stderr
    );
    assert!(
        r.stderr.len() <= max_bytes,
        "congruity {args:?}: a {}-byte error",
        r.stderr.len()
    );
    r.stderr
        .replace(['│', '×', '╰', '─', '▶'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn refused(args: &[&str]) -> String {
    refused_in(Path::new(env!("CARGO_MANIFEST_DIR")), args, 16 * 1024)
}

/// Every file under `dir` (or `dir` itself) with its bytes, to show nothing changed.
fn snapshot(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    if path.is_file() {
        return vec![(path.to_path_buf(), std::fs::read(path).unwrap())];
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

const SPEC: &str = "specs/tracr/reverse.interp";

// 1. Diagnostics past column 65,535 -----------------------------------------------------------

#[test]
fn diagnostics_at_any_column_in_check_eval_and_prove() {
    let dir = tempfile::tempdir().unwrap();
    let head = "task t { vocab {a} max_len 3 }\ninterpretation i for t { output ";
    let cases = [
        ("spaces", format!("{}oops\n", " ".repeat(65_600))),
        (
            "identifier",
            format!("{head}map(|x| x == a, {}) }}\n", "q".repeat(100_000)),
        ),
        (
            "maps",
            format!(
                "{head}{}tokens{} }}\n",
                "map(|x| x, ".repeat(10_000),
                ")".repeat(10_000)
            ),
        ),
        (
            "ifs",
            format!(
                "{head}map(|x| {}1{}, tokens) }}\n",
                "if x == a then ".repeat(100_000),
                " else 0".repeat(100_000)
            ),
        ),
        (
            "literal",
            format!("{head}map(|x| {}, tokens) }}\n", "9".repeat(1_000_000)),
        ),
    ];
    for (name, text) in cases {
        let file = dir.path().join(format!("{name}.interp"));
        std::fs::write(&file, &text).unwrap();
        for cmd in [
            vec!["check", arg(&file)],
            vec!["eval", arg(&file), "--input", "a"],
            vec!["prove", arg(&file)],
        ] {
            let err = refused_in(dir.path(), &cmd, 4096);
            assert!(
                err.contains(&format!("{name}.interp:")),
                "{name} {cmd:?}: {err}"
            );
        }
    }
    // The header states the true column; the echo of the literal is clipped with its length.
    let err = refused(&["check", arg(&dir.path().join("spaces.interp"))]);
    assert!(err.contains("spaces.interp:1:65601"), "{err}");
    let err = refused(&["check", arg(&dir.path().join("literal.interp"))]);
    assert!(err.contains("(1000002 characters)"), "{err}");
}

// 2. Huge size fields -------------------------------------------------------------------------

fn with_json_field(src: &Path, file: &str, path: &[&str], value: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(src, tmp.path());
    let p = tmp.path().join(file);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let mut slot = &mut v;
    for key in path {
        slot = &mut slot[*key];
    }
    *slot = serde_json::from_str(value).unwrap();
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    tmp
}

#[test]
fn huge_size_fields_are_refused_before_anything_is_allocated() {
    let tl = fixtures().join("transformer_lens/ln_relu_2l");
    for value in [
        "10000000000000",
        "1e30",
        "9223372036854775808",
        "18446744073709551616",
        "1e308",
    ] {
        let m = with_json_field(&tl, "config.json", &["n_layers"], value);
        let err = refused(&["run", "--model", arg(m.path()), "--input", "1 2 3"]);
        assert!(err.contains("n_layers"), "n_layers = {value}: {err}");
    }
    let tracr = fixtures().join("tracr/reverse");
    for field in ["input_vocab_size", "output_width"] {
        let m = with_json_field(&tracr, "meta.json", &["model", field], "1000000000000");
        let err = refused(&["run", "--model", arg(m.path()), "--input", "a b c"]);
        assert!(err.contains(&format!("model.{field}")), "{field}: {err}");
    }
}

// 3. Outputs never overwrite inputs -----------------------------------------------------------

#[test]
fn outputs_that_would_replace_an_input_are_refused_and_the_input_survives() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let m = w.join("M");
    copy_dir(&fixtures().join("transformer_lens/ln_relu_2l"), &m);
    let spec = w.join("reverse.interp");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEC), &spec).unwrap();
    let specdir = w.join("specdir");
    std::fs::create_dir(&specdir).unwrap();
    std::fs::copy(&spec, specdir.join("reverse.interp")).unwrap();
    let regular = w.join("regular");
    std::fs::write(&regular, b"not a model").unwrap();
    let before = snapshot(w);
    let tokens = m.join("tokens.json");
    let p = |q: &Path| q.to_str().unwrap().to_string();
    let cases: Vec<Vec<String>> = vec![
        vec![
            "run".into(),
            "--model".into(),
            p(&m),
            "--tokens".into(),
            p(&tokens),
            "--cache".into(),
            p(&m.join("model.safetensors")),
        ],
        vec![
            "run".into(),
            "--model".into(),
            p(&m),
            "--tokens".into(),
            p(&tokens),
            "--cache".into(),
            p(&m.join("config.json")),
        ],
        vec![
            "run".into(),
            "--model".into(),
            p(&m),
            "--tokens".into(),
            p(&tokens),
            "--cache".into(),
            p(&tokens),
        ],
        vec![
            "patch".into(),
            "--model".into(),
            p(&m),
            "--tokens".into(),
            p(&tokens),
            "--source".into(),
            p(&tokens),
            "--hook".into(),
            "blocks.0.hook_resid_pre".into(),
            "--out".into(),
            p(&tokens),
        ],
        vec![
            "compare".into(),
            p(&spec),
            "--interpretations".into(),
            "tracr_reverse".into(),
            "--samples".into(),
            "2".into(),
            "--seed".into(),
            "1".into(),
            "--svg".into(),
            p(&spec),
        ],
        vec![
            "compile".into(),
            p(&spec),
            "--program".into(),
            "tracr_reverse".into(),
            "--out".into(),
            p(&spec),
        ],
        vec![
            "compile".into(),
            p(&specdir.join("reverse.interp")),
            "--program".into(),
            "tracr_reverse".into(),
            "--out".into(),
            p(&specdir),
        ],
        vec![
            "compile".into(),
            p(&spec),
            "--program".into(),
            "tracr_reverse".into(),
            "--out".into(),
            p(&regular),
        ],
        vec![
            "compile".into(),
            p(&spec),
            "--program".into(),
            "tracr_reverse".into(),
            "--out".into(),
            p(&m),
        ],
        vec![
            "sample".into(),
            p(&spec),
            "--program".into(),
            "tracr_reverse".into(),
            "--count".into(),
            "2".into(),
            "--seed".into(),
            "1".into(),
            "--out".into(),
            p(&m),
        ],
        vec![
            "compile".into(),
            p(&spec),
            "--program".into(),
            "tracr_reverse".into(),
            "--out".into(),
            p(&w.join(".")),
        ],
    ];
    for case in &cases {
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        let err = refused_in(w, &args, 16 * 1024);
        assert!(err.contains("refusing to"), "{args:?}: {err}");
        assert_eq!(snapshot(w), before, "{args:?} changed an input");
    }
    // What is allowed: a new file beside the weights, and replacing our own output.
    let out = w.join("out");
    for _ in 0..2 {
        ok(&[
            "compile",
            arg(&spec),
            "--program",
            "tracr_reverse",
            "--out",
            arg(&out),
        ]);
    }
    assert!(out.join(".congruity-output").is_file());
    ok(&[
        "run",
        "--model",
        arg(&m),
        "--tokens",
        arg(&tokens),
        "--cache",
        arg(&m.join("cache.safetensors")),
    ]);
}

// 4. Similarity on non-finite and degenerate inputs -------------------------------------------

fn write_npy(path: &Path, rows: usize, cols: usize, f: impl Fn(usize, usize) -> f64) {
    let header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut h = header.into_bytes();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(b' ');
    }
    h.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((h.len() as u16).to_le_bytes());
    bytes.extend(h);
    for r in 0..rows {
        for c in 0..cols {
            bytes.extend(f(r, c).to_le_bytes());
        }
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn similarity_refuses_out_of_range_and_near_constant_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let noise = |r: usize, c: usize| ((r * 7919 + c * 104_729) % 1000) as f64 / 1000.0 - 0.5;
    let y = tmp.path().join("y.npy");
    write_npy(&y, 30, 4, |r, c| noise(r + 3, c + 11));
    type Entry = Box<dyn Fn(usize, usize) -> f64>;
    let cases: [(&str, Entry, &str); 3] = [
        (
            "big",
            Box::new(move |r, c| noise(r, c) * 1e300),
            "largest magnitude",
        ),
        (
            "tiny",
            Box::new(move |r, c| noise(r, c) * 1e-300),
            "largest magnitude",
        ),
        ("same", Box::new(move |_, c| 1.0 + noise(0, c)), "constant"),
    ];
    for (name, f, want) in cases {
        let x = tmp.path().join(format!("{name}.npy"));
        write_npy(&x, 30, 5, f);
        for measure in [
            "cka:linear",
            "cka:debiased",
            "procrustes:angular",
            "ridge-r2",
            "cca:mean",
        ] {
            let err = refused(&["similarity", arg(&x), arg(&y), "--measure", measure]);
            assert!(err.contains(want), "{name} {measure}: {err}");
        }
        // All measures at once, as JSON: still an error, never a null.
        refused(&["similarity", arg(&x), arg(&y), "--json"]);
    }
}

// 5. Imports (and specs) that are not regular files ------------------------------------------

#[test]
fn imports_of_devices_fifos_and_directories_are_refused_without_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo.interp");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for target in ["/dev/urandom", "/dev/zero", arg(&fifo), arg(tmp.path())] {
        let spec = tmp.path().join("s.interp");
        std::fs::write(&spec, format!("import \"{target}\"\n")).unwrap();
        let started = Instant::now();
        let err = refused(&["check", arg(&spec)]);
        assert!(err.contains("not a regular file"), "{target}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{target}: slow"
        );
    }
    // The spec itself.
    let err = refused(&["check", arg(&fifo)]);
    assert!(err.contains("a FIFO"), "{err}");
    // Too large.
    let big = tmp.path().join("big.interp");
    std::fs::write(&big, vec![b' '; 17 << 20]).unwrap();
    let err = refused(&["check", arg(&big)]);
    assert!(err.contains("more than the 16777216 bytes"), "{err}");
}

// Minor findings ------------------------------------------------------------------------------

#[test]
fn a_symlink_loop_is_walked_once() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    std::fs::create_dir(&d).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEC),
        d.join("r.interp"),
    )
    .unwrap();
    std::os::unix::fs::symlink("..", d.join("up")).unwrap();
    std::os::unix::fs::symlink(".", d.join("self")).unwrap();
    let r = run_in(tmp.path(), &["check", "d"], Duration::from_secs(60));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(all.matches("r.interp").count(), 1, "{all}");
}

#[test]
fn non_utf8_specs_name_the_byte_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("bad.interp");
    std::fs::write(&f, b"task t {\n  vocab {a, \xff} max_len 2 }\n").unwrap();
    let err = refused(&["check", arg(&f)]);
    assert!(
        err.contains("invalid byte 0xff at byte offset 21 (line 2, column 13)"),
        "{err}"
    );
}

#[test]
fn a_pool_without_its_manifest_or_a_member_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path().join("pool");
    ok(&[
        "sample",
        SPEC,
        "--program",
        "tracr_reverse",
        "--count",
        "3",
        "--seed",
        "5",
        "--out",
        arg(&pool),
    ]);
    let manifest = pool.join("pool.json");
    assert!(manifest.is_file());
    let compare = |pool: &Path| {
        vec![
            "compare".to_string(),
            SPEC.to_string(),
            "--models".into(),
            arg(pool).to_string(),
            "--task".into(),
            "reverse".into(),
            "--samples".into(),
            "2".into(),
            "--seed".into(),
            "1".into(),
            "--inputs".into(),
            "20".into(),
        ]
    };
    // An interrupted pool as an older `sample` left it: members, no manifest.
    let short = tmp.path().join("short");
    copy_dir(&pool.join("0000"), &short.join("0000"));
    copy_dir(&pool.join("0001"), &short.join("0001"));
    let args = compare(&short);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = refused(&args);
    assert!(err.contains("no pool.json"), "{err}");
    // A manifest that lists a member that is gone.
    std::fs::remove_dir_all(pool.join("0002")).unwrap();
    let args = compare(&pool);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = refused(&args);
    assert!(
        err.contains("lists member `0002`, which is missing"),
        "{err}"
    );
}
