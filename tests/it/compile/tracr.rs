//! The tracr library programs in `specs/tracr/`: compiled outputs equal tracr's RASP outputs on the
//! public fixtures' io.json and on the expected outputs of tracr's own test cases
//! (tracr/compiler/test_cases.py), and the compiled shapes are never larger than tracr's — the
//! shape table of the closing note is printed by `tracr_shape_table` (`-- --nocapture`).

use crate::support::compile as compile_support;

use compile_support::{RuntimeModel, array_of, fixtures, read_json, root};
use congruity::compile::{CompileOptions, Compiled, Shape, check, compile_checked, same_values};
use congruity::lang;
use congruity::lang::ir::{Program, Value};

fn fixture(name: &str) -> std::path::PathBuf {
    fixtures().join("tracr").join(name)
}

fn json_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::None,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::int(i),
            None => panic!("non-integer fixture value {n}"),
        },
        serde_json::Value::String(s) => Value::sym(s),
        other => panic!("unexpected fixture value {other}"),
    }
}

/// The spec file of a tracr program with its task set to `vocab` / `max_len` (the lines of the
/// task block are replaced; everything else, including `where`, is kept).
fn with_setting(file: &str, vocab: Option<&str>, max_len: Option<usize>) -> String {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            match (
                t.starts_with("vocab") && t.contains('{'),
                t.starts_with("max_len"),
            ) {
                (true, _) if vocab.is_some() => format!("  vocab   {}", vocab.unwrap_or_default()),
                (_, true) if max_len.is_some() => {
                    format!("  max_len {}", max_len.unwrap_or_default())
                }
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn program_at(file: &str, name: &str, vocab: Option<&str>, max_len: Option<usize>) -> Program {
    let text = with_setting(file, vocab, max_len);
    let spec = lang::check_str(&root().join(file).display().to_string(), &text)
        .unwrap_or_else(|e| panic!("{file} at {vocab:?}/{max_len:?} does not check: {e:?}"));
    spec.programs[name].clone()
}

fn compile(program: &Program) -> Compiled {
    compile_checked(program, &CompileOptions::default(), 0)
        .unwrap_or_else(|e| panic!("{}: {:?}", program.name, miette::Report::new(e)))
        .0
}

fn run(c: &Compiled, inputs: &[Vec<Value>]) -> Vec<Vec<Value>> {
    let tmp = tempfile::tempdir().unwrap();
    c.write(&tmp.path().join("m")).unwrap();
    RuntimeModel::load(&tmp.path().join("m")).outputs(c, inputs)
}

#[test]
fn fixtures_io_json_matches_tracr_rasp() {
    for (name, file, program) in [
        ("reverse", "specs/tracr/reverse.interp", "tracr_reverse"),
        ("hist", "specs/tracr/hist.interp", "tracr_hist"),
    ] {
        let io = read_json(&fixture(name).join("io.json"));
        let cases = io["cases"].as_array().unwrap();
        let inputs: Vec<Vec<Value>> = cases
            .iter()
            .map(|c| array_of(&c["input"], json_value))
            .collect();
        let p = program_at(file, program, None, None);
        let c = compile(&p);
        let outputs = run(&c, &inputs);
        for ((case, x), got) in cases.iter().zip(&inputs).zip(&outputs) {
            let want = array_of(&case["rasp"], json_value);
            assert!(
                same_values(got, &want),
                "{name} {x:?}: compiled {got:?}, tracr RASP {want:?}"
            );
        }
        eprintln!(
            "{name}: {} io.json cases equal tracr's RASP outputs",
            cases.len()
        );
    }
}

fn ints(xs: &[i64]) -> Vec<Value> {
    xs.iter().map(|x| Value::int(*x)).collect()
}
fn syms(s: &str) -> Vec<Value> {
    s.chars().map(|c| Value::sym(&c.to_string())).collect()
}

#[test]
fn tracr_test_cases_match() {
    type Case = (
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<usize>,
        Vec<(Vec<Value>, Vec<Value>)>,
    );
    let t = Value::Bool(true);
    let f = Value::Bool(false);
    let n = Value::None;
    let cases: Vec<Case> = vec![
        (
            "specs/tracr/reverse.interp",
            "tracr_reverse",
            Some("{a, b, c, d}"),
            Some(5),
            vec![
                (syms("abcd"), syms("dcba")),
                (syms("abc"), syms("cba")),
                (syms("ad"), syms("da")),
                (syms("c"), syms("c")),
            ],
        ),
        (
            "specs/tracr/length.interp",
            "tracr_length",
            None,
            Some(3),
            vec![
                (syms("abc"), ints(&[3, 3, 3])),
                (syms("ad"), ints(&[2, 2])),
                (syms("c"), ints(&[1])),
            ],
        ),
        (
            "specs/tracr/hist.interp",
            "tracr_hist",
            Some("{a, b, c, d}"),
            Some(5),
            vec![(syms("abac"), ints(&[2, 1, 2, 1]))],
        ),
        (
            "specs/tracr/sort_unique.interp",
            "tracr_sort_unique",
            Some("{1..=4}"),
            Some(5),
            vec![(ints(&[2, 4, 3, 1]), ints(&[1, 2, 3, 4]))],
        ),
        (
            "specs/tracr/sort.interp",
            "tracr_sort",
            None,
            None,
            vec![
                (ints(&[2, 4, 3, 1]), ints(&[1, 2, 3, 4])),
                (ints(&[2, 4, 1, 2]), ints(&[1, 2, 2, 4])),
            ],
        ),
        (
            "specs/tracr/sort_freq.interp",
            "tracr_sort_freq",
            None,
            None,
            vec![(ints(&[2, 4, 2, 1]), ints(&[2, 2, 4, 1]))],
        ),
        (
            "specs/tracr/shuffle_dyck2.interp",
            "tracr_shuffle_dyck2",
            None,
            Some(5),
            vec![
                (syms("({)}"), vec![t.clone(); 4]),
                (syms("(){)}"), vec![f.clone(); 5]),
                (syms("{}("), vec![f.clone(); 3]),
            ],
        ),
        (
            "specs/tracr/count_less_freq.interp",
            "tracr_count_less_freq",
            None,
            None,
            vec![
                (syms("aaabbc"), ints(&[3; 6])),
                (syms("aacbbc"), ints(&[6; 6])),
            ],
        ),
        (
            "specs/tracr/count.interp",
            "tracr_count",
            None,
            None,
            vec![
                (syms("aaabbc"), ints(&[3; 6])),
                (syms("cabc"), ints(&[1; 4])),
                (syms("bbc"), ints(&[0; 3])),
            ],
        ),
        (
            "specs/tracr/detect_pattern.interp",
            "tracr_detect_pattern",
            None,
            None,
            vec![(
                syms("abcabc"),
                vec![
                    n.clone(),
                    n.clone(),
                    t.clone(),
                    f.clone(),
                    f.clone(),
                    t.clone(),
                ],
            )],
        ),
        (
            "specs/tracr/pair_balance.interp",
            "tracr_pair_balance",
            Some("{\"(\", \")\", a, b, c}"),
            Some(10),
            vec![(
                syms("a()b(c))"),
                vec![
                    Value::int(0),
                    Value::Num(num_rational::Rational64::new(1, 2)),
                    Value::int(0),
                    Value::int(0),
                    Value::Num(num_rational::Rational64::new(1, 5)),
                    Value::Num(num_rational::Rational64::new(1, 6)),
                    Value::int(0),
                    Value::Num(num_rational::Rational64::new(-1, 8)),
                ],
            )],
        ),
    ];
    for (file, name, vocab, max_len, io) in cases {
        let p = program_at(file, name, vocab, max_len);
        let c = compile(&p);
        let inputs: Vec<Vec<Value>> = io.iter().map(|(x, _)| x.clone()).collect();
        let outputs = run(&c, &inputs);
        for ((x, want), got) in io.iter().zip(&outputs) {
            assert!(
                same_values(got, want),
                "{name} {x:?}: compiled {got:?}, tracr test case {want:?}"
            );
        }
    }
}

/// tracr's layers / d_model / d_mlp (issue 4; the fixtures' from their meta.json) and the
/// settings they were measured at.
struct TracrRow {
    label: &'static str,
    file: &'static str,
    program: &'static str,
    vocab: Option<&'static str>,
    max_len: Option<usize>,
    tracr: (usize, usize, usize),
}

fn fixture_shape(name: &str) -> (usize, usize, usize) {
    let meta = read_json(&fixture(name).join("meta.json"));
    let m = &meta["model"];
    let get = |k: &str| m[k].as_u64().unwrap() as usize;
    (
        get("num_layers"),
        get("residual_width"),
        get("mlp_hidden_size"),
    )
}

#[test]
fn tracr_shape_table() {
    let rows = vec![
        TracrRow {
            label: "reverse (fixture: {a,b,c}, 4)",
            file: "specs/tracr/reverse.interp",
            program: "tracr_reverse",
            vocab: Some("{a, b, c}"),
            max_len: Some(4),
            tracr: fixture_shape("reverse"),
        },
        TracrRow {
            label: "hist (fixture: {x,y,z}, 5)",
            file: "specs/tracr/hist.interp",
            program: "tracr_hist",
            vocab: Some("{x, y, z}"),
            max_len: Some(5),
            tracr: fixture_shape("hist"),
        },
        TracrRow {
            label: "reverse ({a,b,c,d}, 5)",
            file: "specs/tracr/reverse.interp",
            program: "tracr_reverse",
            vocab: Some("{a, b, c, d}"),
            max_len: Some(5),
            tracr: (4, 43, 30),
        },
        TracrRow {
            label: "length ({a,b,c,d}, 5)",
            file: "specs/tracr/length.interp",
            program: "tracr_length",
            vocab: Some("{a, b, c, d}"),
            max_len: Some(5),
            tracr: (1, 19, 12),
        },
        TracrRow {
            label: "sort_unique ({1..5}, 5)",
            file: "specs/tracr/sort_unique.interp",
            program: "tracr_sort_unique",
            vocab: Some("{1..=5}"),
            max_len: Some(5),
            tracr: (2, 25, 12),
        },
        TracrRow {
            label: "sort ({1..5}, 5)",
            file: "specs/tracr/sort.interp",
            program: "tracr_sort",
            vocab: Some("{1..=5}"),
            max_len: Some(5),
            tracr: (3, 50, 25),
        },
        TracrRow {
            label: "sort_freq ({1..4}, 5)",
            file: "specs/tracr/sort_freq.interp",
            program: "tracr_sort_freq",
            vocab: Some("{1..=4}"),
            max_len: Some(5),
            tracr: (5, 66, 30),
        },
        TracrRow {
            label: "frac_prevs (4 tokens, 5)",
            file: "specs/tracr/frac_prevs.interp",
            program: "tracr_frac_prevs",
            vocab: Some("{w, x, y, z}"),
            max_len: Some(5),
            tracr: (2, 14, 1),
        },
        TracrRow {
            label: "pair_balance ({(,),a}, 10)",
            file: "specs/tracr/pair_balance.interp",
            program: "tracr_pair_balance",
            vocab: Some("{\"(\", \")\", a}"),
            max_len: Some(10),
            tracr: (2, 21, 4),
        },
        TracrRow {
            label: "shuffle_dyck2 ({(,),{,}}, 5)",
            file: "specs/tracr/shuffle_dyck2.interp",
            program: "tracr_shuffle_dyck2",
            vocab: None,
            max_len: Some(5),
            tracr: (8, 55, 212),
        },
    ];
    let mut table = vec![
        format!(
            "| {:<30} | {:>16} | {:>16} |",
            "program (vocab, max_len)", "tracr L/d/mlp", "congruity L/d/mlp"
        ),
        format!("|{:-<32}|{:->18}|{:->18}|", "", "", ""),
    ];
    for r in &rows {
        let p = program_at(r.file, r.program, r.vocab, r.max_len);
        let c = compile(&p);
        let s: Shape = c.shape();
        // Exact on the domain through the runtime (sampled beyond 200,000 inputs).
        let domain = check::domain(&p.task, 0).unwrap();
        let outputs = run(&c, &domain.inputs);
        compile_support::assert_matches_evaluator(r.label, &p, &domain, &outputs);
        let (tl, td, tm) = r.tracr;
        table.push(format!(
            "| {:<30} | {:>16} | {:>16} |",
            r.label,
            format!("{tl} / {td} / {tm}"),
            format!("{} / {} / {}", s.n_layers, s.d_model, s.d_mlp)
        ));
        assert!(
            s.n_layers <= tl && s.d_model <= td && s.d_mlp <= tm,
            "{}: {s:?} is larger than tracr's {:?}",
            r.label,
            r.tracr
        );
    }
    eprintln!("{}", table.join("\n"));
    let reverse = compile(&program_at(
        "specs/tracr/reverse.interp",
        "tracr_reverse",
        Some("{a, b, c, d}"),
        Some(5),
    ));
    assert!(
        reverse.shape().n_layers < 4,
        "reverse needs fewer than 4 layers"
    );
}
