//! `congruity similarity` through the binary: input formats, text output, and clear errors for bad
//! input (never a panic, always a non-zero exit naming the file, tensor and problem).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use safetensors::{Dtype, tensor::TensorView};
use serde_json::Value;

enum Data {
    F64(Vec<f64>),
    F32(Vec<f32>),
    I64(Vec<i64>),
    I32(Vec<i32>),
}

fn bytes(d: &Data) -> (Dtype, Vec<u8>) {
    match d {
        Data::F64(v) => (Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Data::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Data::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Data::I32(v) => (Dtype::I32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    }
}

fn write(dir: &Path, name: &str, tensors: &[(&str, Vec<usize>, Data)]) -> PathBuf {
    let encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, d)| {
            let (dt, b) = bytes(d);
            (n.to_string(), dt, s.clone(), b)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = encoded
        .iter()
        .map(|(n, dt, s, b)| (n.clone(), TensorView::new(*dt, s.clone(), b).expect("view")))
        .collect();
    let path = dir.join(name);
    std::fs::write(
        &path,
        safetensors::serialize(views, None).expect("serialise"),
    )
    .expect("write");
    path
}

/// Deterministic, non-degenerate data: y is a noisy linear image of x.
fn pair(n: usize, dx: usize, dy: usize) -> (Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..n * dx)
        .map(|k| ((k as f64 * 0.7391).sin() * 1000.0).fract())
        .collect();
    let y: Vec<f64> = (0..n)
        .flat_map(|i| {
            let x = &x;
            (0..dy).map(move |j| {
                let lin: f64 = (0..dx)
                    .map(|k| x[i * dx + k] * ((j + 2 * k) % 5) as f64)
                    .sum();
                lin + 0.1 * (((i * dy + j) as f64 * 1.37).cos() * 500.0).fract()
            })
        })
        .collect();
    (x, y)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_congruity"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// miette wraps long messages and draws a margin; compare on the words alone.
fn words(s: &str) -> String {
    s.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn fails_with(o: &Output, fragments: &[&str]) {
    assert!(!o.status.success(), "expected failure, got success");
    assert_ne!(o.status.code(), Some(101), "panicked:\n{}", stderr(o));
    let e = stderr(o);
    for f in fragments {
        assert!(words(&e).contains(&words(f)), "stderr lacks `{f}`:\n{e}");
    }
}

#[test]
fn f32_input_without_split_uses_the_seeded_split() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = pair(50, 4, 3);
    let to32 = |v: &[f64]| v.iter().map(|a| *a as f32).collect::<Vec<_>>();
    let p = write(
        dir.path(),
        "p.safetensors",
        &[
            ("x", vec![50, 4], Data::F32(to32(&x))),
            ("y", vec![50, 3], Data::F32(to32(&y))),
        ],
    );
    let p = p.to_str().unwrap();
    let a = run(&["similarity", p, "--json", "--measure", "ridge-r2:seed=3"]);
    assert!(a.status.success(), "{}", stderr(&a));
    let v: Value = serde_json::from_slice(&a.stdout).unwrap();
    let r = &v["ridge-r2(x->y)"];
    assert_eq!(r["n_test"], 5);
    assert_eq!(r["n_train"], 45);
    assert_eq!(r["split"], "seeded: test=0.1 seed=3");
    assert!(r["sqrt_r2_clamped"].as_f64().unwrap() > 0.9, "{r}");
    // Same command, same bytes; another seed, another split.
    let b = run(&["similarity", p, "--json", "--measure", "ridge-r2:seed=3"]);
    assert_eq!(a.stdout, b.stdout);
    let c = run(&["similarity", p, "--json", "--measure", "ridge-r2:seed=4"]);
    assert_ne!(a.stdout, c.stdout);
}

#[test]
fn text_output_names_every_measure() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/similarity/uniform_30x25/inputs.safetensors");
    let o = run(&["similarity", fixture.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.starts_with("30 inputs; x: 25 features, y: 25 features\n"),
        "{text}"
    );
    for m in [
        "cka:linear",
        "cka:debiased",
        "procrustes:angular",
        "procrustes:euclidean",
        "cca:mean",
        "svcca:var=0.99",
        "ridge-r2:alphas=0.1,1,10;test=0.1;seed=0  (27 train / 3 held-out rows, train_idx/test_idx from the file)",
        "x->y  sqrt(max(R²,0)) = 0  R² = -1.15633721891",
        "alpha = 10",
    ] {
        assert!(text.contains(m), "missing `{m}` in\n{text}");
    }
}

#[test]
fn bad_measure_name_lists_valid_forms() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/similarity/uniform_30x25/inputs.safetensors");
    let o = run(&[
        "similarity",
        fixture.to_str().unwrap(),
        "--measure",
        "cka:rbf",
    ]);
    fails_with(
        &o,
        &[
            "cka:rbf",
            "unknown CKA estimator",
            "procrustes:euclidean",
            "svcca",
        ],
    );
}

#[test]
fn missing_file_and_garbage_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.safetensors");
    fails_with(
        &run(&["similarity", missing.to_str().unwrap()]),
        &["nope.safetensors"],
    );
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a safetensors file").unwrap();
    fails_with(
        &run(&["similarity", junk.to_str().unwrap()]),
        &["junk.safetensors", "not a valid safetensors file"],
    );
}

#[test]
fn bad_tensors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = pair(20, 3, 2);
    let d = dir.path();
    type Case<'a> = (&'a str, Vec<(&'a str, Vec<usize>, Data)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "no_y.safetensors",
            vec![("x", vec![20, 3], Data::F64(x.clone()))],
            vec!["`y` is missing", "present: x"],
        ),
        (
            "rows.safetensors",
            vec![
                ("x", vec![20, 3], Data::F64(x.clone())),
                ("y", vec![10, 4], Data::F64(y[..40].to_vec())),
            ],
            vec!["`y`", "10 rows", "`x` has 20"],
        ),
        (
            "rank3.safetensors",
            vec![
                ("x", vec![20, 3, 1], Data::F64(x.clone())),
                ("y", vec![20, 2], Data::F64(y.clone())),
            ],
            vec!["`x`", "[20, 3, 1]", "2 dimensions"],
        ),
        (
            "int.safetensors",
            vec![
                ("x", vec![20, 3], Data::I64(vec![1; 60])),
                ("y", vec![20, 2], Data::F64(y.clone())),
            ],
            vec!["`x`", "I64", "F64 or F32"],
        ),
        (
            "nan.safetensors",
            vec![
                (
                    "x",
                    vec![20, 3],
                    Data::F64({
                        let mut v = x.clone();
                        v[7] = f64::NAN;
                        v
                    }),
                ),
                ("y", vec![20, 2], Data::F64(y.clone())),
            ],
            vec!["`x`", "NaN", "[2, 1]"],
        ),
        (
            "half_split.safetensors",
            vec![
                ("x", vec![20, 3], Data::F64(x.clone())),
                ("y", vec![20, 2], Data::F64(y.clone())),
                ("train_idx", vec![3], Data::I64(vec![0, 1, 2])),
            ],
            vec!["test_idx", "come together"],
        ),
        (
            "overlap.safetensors",
            vec![
                ("x", vec![20, 3], Data::F64(x.clone())),
                ("y", vec![20, 2], Data::F64(y.clone())),
                ("train_idx", vec![4], Data::I32(vec![0, 1, 2, 3])),
                ("test_idx", vec![2], Data::I32(vec![3, 4])),
            ],
            vec!["row 3 is in both train and test"],
        ),
        (
            "negative.safetensors",
            vec![
                ("x", vec![20, 3], Data::F64(x.clone())),
                ("y", vec![20, 2], Data::F64(y.clone())),
                ("train_idx", vec![4], Data::I64(vec![0, 1, 2, -3])),
                ("test_idx", vec![2], Data::I64(vec![5, 4])),
            ],
            vec!["`train_idx`", "-3"],
        ),
    ];
    for (name, tensors, fragments) in cases {
        let p = write(d, name, &tensors);
        let o = run(&["similarity", p.to_str().unwrap(), "--json"]);
        let mut want = vec![name];
        want.extend(fragments);
        fails_with(&o, &want);
    }
}

#[test]
fn degenerate_data_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (_, y) = pair(20, 3, 2);
    let p = write(
        dir.path(),
        "const.safetensors",
        &[
            ("x", vec![20, 3], Data::F64(vec![0.5; 60])),
            ("y", vec![20, 2], Data::F64(y)),
        ],
    );
    let o = run(&["similarity", p.to_str().unwrap(), "--measure", "cka:linear"]);
    fails_with(&o, &["cka:linear", "x has zero variance"]);
    // Too few rows for a held-out split of 10%.
    let (x, y) = pair(8, 2, 2);
    let p = write(
        dir.path(),
        "tiny.safetensors",
        &[
            ("x", vec![8, 2], Data::F64(x)),
            ("y", vec![8, 2], Data::F64(y)),
        ],
    );
    let o = run(&["similarity", p.to_str().unwrap(), "--measure", "ridge-r2"]);
    fails_with(&o, &["held-out", "8 rows"]);
}

/// The measure entries of a JSON report (the two-file form adds `x_source` / `y_source`).
fn measures_only(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("x_source");
        o.remove("y_source");
    }
    v
}

/// Two files, one array each, in any of safetensors, .npy and .npz, give exactly what the
/// one-file form gives on the same x and y; arrays of three dimensions are read one row per
/// (batch, position).
#[test]
fn two_files_in_any_format_equal_the_one_file_form() {
    use candle_core::{Device, Tensor};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (n, dx, dy) = (40, 4, 3);
    let (x, y) = pair(n, dx, dy);
    let one = write(
        d,
        "xy.safetensors",
        &[
            ("x", vec![n, dx], Data::F64(x.clone())),
            ("y", vec![n, dy], Data::F64(y.clone())),
        ],
    );
    let want = run(&["similarity", one.to_str().unwrap(), "--json"]);
    assert!(want.status.success(), "{}", stderr(&want));
    let want: Value = serde_json::from_slice(&want.stdout).unwrap();

    let xs = write(
        d,
        "x.safetensors",
        &[("acts", vec![n, dx], Data::F64(x.clone()))],
    );
    // Several arrays in one file: the key chooses.
    let ys = write(
        d,
        "y.safetensors",
        &[
            ("other", vec![n, 2], Data::F64(vec![0.5; n * 2])),
            ("acts", vec![n, dy], Data::F64(y.clone())),
        ],
    );
    let ty = Tensor::from_vec(y.clone(), (n, dy), &Device::Cpu).unwrap();
    let tx3 = Tensor::from_vec(x.clone(), (8, 5, dx), &Device::Cpu).unwrap();
    let ynpy = d.join("y.npy");
    ty.write_npy(&ynpy).unwrap();
    let x3npy = d.join("x3.npy");
    tx3.write_npy(&x3npy).unwrap();
    let ynpz = d.join("y.npz");
    Tensor::write_npz(&[("acts", &ty), ("junk", &tx3)], &ynpz).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let forms: Vec<Vec<String>> = vec![
        vec![s(&xs), s(&ys), "--y-key".into(), "acts".into()],
        vec![s(&xs), s(&ynpy)],
        vec![s(&x3npy), s(&ynpy)],
        vec![s(&xs), s(&ynpz), "--y-key".into(), "acts".into()],
    ];
    for form in &forms {
        let mut args = vec!["similarity"];
        args.extend(form.iter().map(String::as_str));
        args.push("--json");
        let got = run(&args);
        assert!(got.status.success(), "{form:?}: {}", stderr(&got));
        let got: Value = serde_json::from_slice(&got.stdout).unwrap();
        assert_eq!(measures_only(&got), want, "{form:?}");
        assert!(got["x_source"].as_str().unwrap().contains('['), "{got}");
    }
    // Text names both sources with their shapes.
    let text = run(&[
        "similarity",
        &s(&x3npy),
        &s(&ynpy),
        "--measure",
        "cka:linear",
    ]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.starts_with(&format!(
            "x: {} [8, 5, 4]\ny: {} [40, 3]\n",
            s(&x3npy),
            s(&ynpy)
        )),
        "{text}"
    );

    // Errors name the file and what was expected.
    fails_with(
        &run(&["similarity", &s(&xs), &s(&ys)]),
        &["y.safetensors", "holds 2 arrays (acts, other)", "--y-key"],
    );
    fails_with(
        &run(&["similarity", &s(&xs), &s(&ys), "--y-key", "nope"]),
        &["`nope` is missing", "present: acts, other"],
    );
    fails_with(
        &run(&["similarity", &s(&xs), &s(&ynpy), "--y-key", "acts"]),
        &["y.npy", "one unnamed array"],
    );
    let short = write(
        d,
        "short.safetensors",
        &[("a", vec![n - 1, dy], Data::F64(y[..(n - 1) * dy].to_vec()))],
    );
    fails_with(
        &run(&["similarity", &s(&xs), &s(&short)]),
        &["short.safetensors", "39 rows", "40"],
    );
    let txt = d.join("x.txt");
    std::fs::write(&txt, "1 2 3").unwrap();
    fails_with(
        &run(&["similarity", &s(&txt), &s(&ynpy)]),
        &["x.txt", ".npy"],
    );
    fails_with(&run(&["similarity", &s(&one), "--x-key", "x"]), &["Y"]);
}

/// Two files, one holding several arrays and no key given: the error lists the arrays and says
/// which flag names one.
#[test]
fn a_file_of_several_arrays_needs_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = pair(20, 3, 2);
    let two = write(
        dir.path(),
        "two.safetensors",
        &[
            ("a", vec![20, 3], Data::F64(x.clone())),
            ("b", vec![20, 3], Data::F64(x)),
        ],
    );
    let one = write(
        dir.path(),
        "one.safetensors",
        &[("y", vec![20, 2], Data::F64(y))],
    );
    let s = |p: &Path| p.to_str().unwrap().to_string();
    fails_with(
        &run(&["similarity", &s(&two), &s(&one)]),
        &[
            "holds 2 arrays (a, b); say which to read",
            "name it with --x-key / --y-key",
        ],
    );
}
