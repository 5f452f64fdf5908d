use super::*;
use crate::lang::parse::parse_str;

pub(crate) fn check_src(src: &str) -> Result<Spec, Report> {
    let ast = parse_str("t.interp", src).map_err(Report::single)?;
    let file = ParsedFile {
        source: SourceFile::new("t.interp", src),
        path: Arc::new(PathBuf::from("t.interp")),
        ast,
    };
    check_files(&[file])
}

fn ok(src: &str) -> Spec {
    match check_src(src) {
        Ok(s) => s,
        Err(r) => panic!("{}", r.render_plain()),
    }
}

fn errs(src: &str) -> Vec<LangError> {
    match check_src(src) {
        Ok(_) => panic!("expected errors"),
        Err(r) => r.errors,
    }
}

fn kinds(src: &str) -> Vec<ErrorKind> {
    errs(src).into_iter().map(|e| e.kind).collect()
}

const TASK: &str = "task reverse { vocab {a, b, c} max_len 4 }\n";

fn seq_values(p: &Program, name: &str) -> ValueSet {
    let id = p.variable(name).expect("variable");
    match &p.graph.node(id).ty {
        NodeType::Seq { values, .. } => values.clone(),
        NodeType::Selector => panic!("selector"),
    }
}

fn ints(r: std::ops::RangeInclusive<i64>) -> ValueSet {
    r.map(Value::int).collect()
}

#[test]
fn proofs_may_name_pipelines_except_where_variables_are_named() {
    let base = "task s { vocab {0..=2} max_len 3 }
task u { vocab {0..=2} max_len 3 }
interpretation id for s { output map(|x| x, tokens) }
interpretation inc for s { output map(|x| x + 1, tokens) }
interpretation other for u { output map(|x| x, tokens) }
pipeline p = inc |> id via clamp
";
    let spec = ok(&format!(
        "{base}prove well_formed(p)\nprove equivalent(p, id)\nprove implements(id, p)\n"
    ));
    let goals: Vec<&ProofGoal> = spec.proofs.iter().map(|p| &p.goal).collect();
    assert_eq!(
        goals,
        [
            &ProofGoal::WellFormed {
                program: "p".into()
            },
            &ProofGoal::Equivalent {
                a: "p".into(),
                b: "id".into()
            },
            &ProofGoal::Implements {
                program: "id".into(),
                reference: "p".into()
            },
        ]
    );
    // A pipeline's domain is its first stage's: `p` is for task `s`, not `u`.
    let e = errs(&format!("{base}prove equivalent(p, other)\n"));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].message
            .contains("`p` is for task `s` and `other` for task `u`"),
        "{}",
        e[0].message
    );
    // `aligned` names variables, which only an interpretation has.
    let e = errs(&format!("{base}prove aligned(p, id, y = y)\n"));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].help
            .as_deref()
            .unwrap_or("")
            .contains("`p` is a pipeline"),
        "{:?}",
        e[0]
    );
}

#[test]
fn reverse_value_sets_follow_tracr() {
    let spec = ok(&format!(
        "{TASK}interpretation by_length for reverse {{
  length = selector_width(select(tokens, tokens, true))
  opp    = map2(|n, i| n - i - 1, length, indices)
  flip   = select(indices, opp, ==)
  output   aggregate(flip, tokens)
}}"
    ));
    let p = &spec.programs["by_length"];
    assert_eq!(seq_values(p, "length"), ints(0..=4));
    assert_eq!(seq_values(p, "opp"), ints(-4..=3));
    let mut out: ValueSet = ["a", "b", "c"].iter().map(|s| Value::sym(s)).collect();
    out.insert(Value::None);
    assert_eq!(seq_values(p, "output"), out);
    // Topological order: every operand before its user.
    for (i, n) in p.graph.nodes.iter().enumerate() {
        assert!(n.op.operands().iter().all(|o| o.0 < i));
    }
}

#[test]
fn provably_nonempty_selectors_drop_none() {
    let spec = ok(&format!(
        "{TASK}interpretation i for reverse {{
  a = aggregate(select(tokens, tokens, ==), tokens)
  b = aggregate(select(indices, indices, <=), tokens)
  c = aggregate(select(indices, indices, <), tokens)
  output aggregate(select(tokens, indices, |k, q| true) or select(tokens, tokens, false), tokens)
}}"
    ));
    let p = &spec.programs["i"];
    assert!(!seq_values(p, "a").contains(&Value::None));
    assert!(!seq_values(p, "b").contains(&Value::None));
    assert!(seq_values(p, "c").contains(&Value::None));
    assert!(!seq_values(p, "output").contains(&Value::None));
}

#[test]
fn numerical_mean_value_set() {
    let spec = ok("task f { vocab {w, x} max_len 3 }
interpretation frac for f {
  bools = numerical map(|t| if t == x then 1 else 0, tokens)
  output numerical aggregate(select(indices, indices, <=), bools)
}");
    let p = &spec.programs["frac"];
    let want: ValueSet = [(0, 1), (1, 1), (1, 2), (1, 3), (2, 3)]
        .iter()
        .map(|(n, d)| Value::Num(Rational64::new(*n, *d)))
        .collect();
    assert_eq!(seq_values(p, "output"), want);
}

#[test]
fn out_of_order_definitions_and_aliases() {
    let spec = ok(&format!(
        "{TASK}interpretation i for reverse {{
  output y
  y = x
  x = map(|t| t == a, tokens)
}}"
    ));
    let p = &spec.programs["i"];
    assert!(p.graph.by_name("x").is_some());
    assert_eq!(p.graph.by_name("y"), Some(p.output));
}

#[test]
fn cycles_are_reported_once_with_the_path() {
    let es = errs(&format!(
        "{TASK}interpretation i for reverse {{
  a = map(|x| x, b)
  b = map(|x| x, c)
  c = map(|x| x, a)
  d = map(|x| x, d)
  output a
}}"
    ));
    let cycles: Vec<&LangError> = es.iter().filter(|e| e.kind == ErrorKind::Cycle).collect();
    assert_eq!(cycles.len(), 2, "{es:#?}");
    assert!(
        cycles[0].labels[0]
            .text
            .as_deref()
            .unwrap()
            .contains("a -> b -> c -> a")
    );
}

#[test]
fn several_errors_in_one_pass() {
    let ks = kinds(&format!(
        "{TASK}interpretation i for reverse {{
  a = map(|x| x + 1, tokens)
  b = mapp(|x| x, tokens)
  c = select(tokens, tokens)
  output nope
}}"
    ));
    assert_eq!(
        ks,
        vec![
            ErrorKind::Type,
            ErrorKind::UnknownPrimitive,
            ErrorKind::Arity,
            ErrorKind::UnknownName
        ]
    );
}

#[test]
fn encodings_are_checked() {
    let ks = kinds(&format!(
        "{TASK}interpretation i for reverse {{
  n = numerical map(|t| if t == a then 1 else 0, tokens)
  c = aggregate(select(indices, indices, ==), n)
  d = numerical aggregate(select(indices, indices, ==), tokens)
  e = numerical map(|t| t == a, tokens)
  output tokens
}}"
    ));
    assert_eq!(
        ks,
        vec![
            ErrorKind::Encoding,
            ErrorKind::Encoding,
            ErrorKind::Encoding
        ]
    );
}

#[test]
fn lambda_type_errors_point_at_the_operator() {
    let es = errs(&format!(
        "{TASK}interpretation i for reverse {{ output map(|t| if t == a then 1 else t * 2, tokens) }}"
    ));
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].kind, ErrorKind::Type);
    assert!(
        es[0].labels[0].text.as_deref().unwrap().contains("t = b"),
        "{:?}",
        es[0].labels
    );
    let src = &es[0].file.as_ref().unwrap().text;
    let sp = es[0].labels[0].span;
    assert_eq!(&src[sp.start..sp.end], "t * 2");
}

#[test]
fn select_kinds_must_match() {
    let es = errs(&format!(
        "{TASK}interpretation i for reverse {{ output selector_width(select(tokens, indices, ==)) }}"
    ));
    assert_eq!(es[0].kind, ErrorKind::Type);
}

#[test]
fn task_problems() {
    for (src, want) in [
        ("task t { vocab {} max_len 3 }", ErrorKind::Vocab),
        ("task t { vocab {a, b, a} max_len 3 }", ErrorKind::Vocab),
        ("task t { vocab {a} max_len 0 }", ErrorKind::MaxLen),
        ("task t { vocab {a} max_len 100000 }", ErrorKind::MaxLen),
        ("task t { vocab {a} }", ErrorKind::TaskField),
        ("task t { vocab {3..1} max_len 2 }", ErrorKind::Vocab),
    ] {
        assert_eq!(kinds(src), vec![want], "{src}");
    }
    let spec = ok("task t { vocab {0..3, 5} max_len 2 }");
    assert_eq!(
        spec.tasks["t"].vocab,
        vec![Value::int(0), Value::int(1), Value::int(2), Value::int(5)]
    );
}

#[test]
fn restriction_must_be_boolean() {
    ok(
        "task s { vocab {1..=3} max_len 3 where map(|c| c == 1, selector_width(select(tokens, tokens, ==))) }",
    );
    assert_eq!(
        kinds("task s { vocab {1..=3} max_len 3 where tokens }"),
        vec![ErrorKind::Type]
    );
}

#[test]
fn pipelines_need_fitting_values() {
    let base = "task a { vocab {0..=3} max_len 3 }
task b { vocab {0..=3} max_len 3 }
interpretation inc for a { output map(|x| x + 1, tokens) }
interpretation id for b { output map(|x| x, tokens) }
";
    let es = errs(&format!("{base}pipeline p = inc |> id"));
    assert_eq!(es[0].kind, ErrorKind::Pipeline);
    assert!(es[0].message.contains("{4}"), "{}", es[0].message);
    let spec = ok(&format!(
        "{base}pipeline p = inc |> id via clamp\npipeline q = inc |> id via modulo\npipeline r = inc |> id via table {{ 4 -> 0 }}"
    ));
    assert_eq!(
        spec.pipelines["p"].stages[1].adapter,
        Some(Adapter::Clamp { lo: 0, hi: 3 })
    );
    assert_eq!(
        spec.pipelines["q"].stages[1].adapter,
        Some(Adapter::Modulo { lo: 0, n: 4 })
    );
    assert_eq!(
        kinds(&format!(
            "{base}pipeline p = inc |> id via table {{ 4 -> 9 }}"
        )),
        vec![ErrorKind::Pipeline]
    );
}

#[test]
fn circuits_checks_and_proofs() {
    let base = format!(
        "{TASK}interpretation i for reverse {{
  length = selector_width(select(tokens, tokens, true))
  output aggregate(select(indices, map2(|n, i| n - i - 1, length, indices), ==), tokens)
}}
interpretation j for reverse {{
  len = selector_width(select(tokens, tokens, true))
  output aggregate(select(indices, map2(|n, i| n - i - 1, len, indices), ==), tokens)
}}
"
    );
    let spec = ok(&format!(
        "{base}circuit c for i {{
  length -> blocks.0.attn.hook_z[0], blocks.0.hook_mlp_out
  output -> blocks.3.attn.hook_pattern[1]
}}
check m {{ model \"models/x\" compare i vs j samples 3 seed 7 epsilon 1e-3 expect congruent(i) expect iia(c) >= 0.95 }}
check n {{ model \"models/x\" compare i vs j epsilon 0.25 expect congruent(i) }}
check t {{ compare i vs j samples 4 family trained expect indistinguishable(i, j) }}
check u {{ compare i vs j samples 4 family compiled expect indistinguishable(i, j) }}
prove equivalent(i, j)
prove al: aligned(i, j, length = len) timeout 2.5
prove sufficient(c)"
    ));
    assert_eq!(
        spec.circuits["c"].sites[0].node,
        spec.programs["i"].graph.by_name("length").unwrap()
    );
    assert_eq!(spec.proofs[0].name, "equivalent_i_j");
    assert_eq!(spec.proofs[1].timeout_secs, Some(2.5));
    assert_eq!(spec.checks["m"].expectations.len(), 2);
    assert_eq!(spec.checks["m"].epsilon, Some(1e-3));
    assert_eq!(spec.checks["n"].epsilon, Some(0.25));
    assert_eq!(spec.checks["m"].family, ImplementationFamily::Compiled);
    assert_eq!(spec.checks["t"].family, ImplementationFamily::Trained);
    assert_eq!(spec.checks["t"].samples, Some(4));
    assert_eq!(spec.checks["u"].family, ImplementationFamily::Compiled);
    for (tail, want) in [
        ("check m { epsilon 1e999 }", ErrorKind::Check),
        ("check m { epsilon 1 epsilon 2 }", ErrorKind::Check),
        ("check m { samples 4 family tuned }", ErrorKind::Check),
        (
            "check m { samples 4 family trained samples 5 }",
            ErrorKind::Check,
        ),
        (
            "circuit c for i { length -> blocks.0.mlp }",
            ErrorKind::Hook,
        ),
        (
            "circuit c for i { length -> blocks.0.hook_mlp_out[0] }",
            ErrorKind::Hook,
        ),
        (
            "circuit c for i { nope -> hook_embed }",
            ErrorKind::UnknownName,
        ),
        ("prove equivalent(i)", ErrorKind::Arity),
        (
            "prove equivalent(i, j)\nprove equivalent(i, j)",
            ErrorKind::Duplicate,
        ),
        ("check m { expect iia(i) }", ErrorKind::UnknownName),
    ] {
        assert_eq!(kinds(&format!("{base}{tail}")), vec![want], "{tail}");
    }
}

#[test]
fn check_models_expectations_and_bounds() {
    let base = format!(
        "{TASK}interpretation i for reverse {{
  length = selector_width(select(tokens, tokens, true))
  output aggregate(select(indices, map2(|n, i| n - i - 1, length, indices), ==), tokens)
}}
interpretation j for reverse {{
  output aggregate(select(indices, indices, ==), tokens)
}}
circuit c for i {{
  output -> blocks.1.attn.hook_z[0]
}}
"
    );
    let spec = ok(&format!(
        "{base}check m {{
  model compiled(i, seed 3)
  expect implements(i)
  expect accuracy(i) >= 0.9
  expect iia(c) ~= 0.93 +- 0.02
  expect iia(c) ≈ 0.5 ± 0.5
  expect similarity(cka:linear, i) >= 0.5
  expect similarity(svcca:var=0.99, j) < 2
  expect congruent(i)
  expect indistinguishable(i, j)
  expect faithful(c) >= 0.99
  expect faithful(c, mean) >= 0.9
  expect minimal(c, zero) >= 0.01
}}
check n {{ model compiled(j) expect implements(j) }}
check d {{ expect distinguishable(i, j) }}"
    ));
    let m = &spec.checks["m"];
    assert_eq!(
        m.model,
        Some(ModelRef::Compiled {
            program: "i".into(),
            seed: Some(3)
        })
    );
    assert_eq!(
        spec.checks["n"].model,
        Some(ModelRef::Compiled {
            program: "j".into(),
            seed: None
        })
    );
    let texts: Vec<&str> = m.expectations.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "implements(i)",
            "accuracy(i) >= 0.9",
            "iia(c) ~= 0.93 +- 0.02",
            "iia(c) ~= 0.5 +- 0.5",
            "similarity(cka:linear, i) >= 0.5",
            "similarity(svcca:var=0.99, j) < 2",
            "congruent(i)",
            "indistinguishable(i, j)",
            "faithful(c) >= 0.99",
            "faithful(c, mean) >= 0.9",
            "minimal(c, zero) >= 0.01",
        ]
    );
    // `faithful` without an ablation is resample ablation.
    assert!(matches!(
        &m.expectations[8].goal,
        Expectation::Faithful { ablation, .. } if ablation == "resample"
    ));
    assert_eq!(
        m.expectations[2].goal,
        Expectation::Iia {
            circuit: "c".into(),
            bound: Bound::Approx {
                value: 0.93,
                tolerance: 0.02
            }
        }
    );
    assert!(m.expectations[2].source.is_some());
    let Expectation::Accuracy { bound, .. } = &m.expectations[1].goal else {
        panic!("{:?}", m.expectations[1]);
    };
    assert!(bound.holds(0.9) && !bound.holds(0.89));
    for (tail, want) in [
        // A figure needs a bound in range, never `==`.
        (
            "check m { model \"x\" expect accuracy(i) }",
            ErrorKind::Check,
        ),
        (
            "check m { model \"x\" expect accuracy(i) >= 1.5 }",
            ErrorKind::Check,
        ),
        (
            "check m { model \"x\" expect iia(c) == 0.9 }",
            ErrorKind::Check,
        ),
        (
            "check m { model \"x\" expect implements(i) >= 0.9 }",
            ErrorKind::Check,
        ),
        // Model expectations need a model; congruent needs an alternative.
        ("check m { expect implements(i) }", ErrorKind::Check),
        (
            "check m { model \"x\" expect congruent(i) }",
            ErrorKind::Check,
        ),
        (
            "check m { model compiled(nope) expect implements(i) }",
            ErrorKind::UnknownName,
        ),
        ("check m { expect distinguishable(i, i) }", ErrorKind::Check),
        (
            "check m { model \"x\" samples 2 expect implements(i) }",
            ErrorKind::Check,
        ),
        ("check m { model \"x\" }", ErrorKind::Check),
        (
            "check m { model \"x\" expect similarity(i) >= 0.5 }",
            ErrorKind::Arity,
        ),
        (
            "check m { model \"x\" expect iia(nope) >= 0.5 }",
            ErrorKind::UnknownName,
        ),
        (
            "check m { model \"x\" expect accuracy(c) >= 0.5 }",
            ErrorKind::UnknownName,
        ),
        (
            "check m { model \"x\" expect faithful(c, half) >= 0.5 }",
            ErrorKind::Check,
        ),
        (
            "check m { model \"x\" expect faithful(c, mean, zero) >= 0.5 }",
            ErrorKind::Arity,
        ),
        (
            "check m { model \"x\" expect faithful(c) }",
            ErrorKind::Check,
        ),
        (
            "check m { model \"x\" expect minimal(i) >= 0.1 }",
            ErrorKind::UnknownName,
        ),
    ] {
        assert_eq!(kinds(&format!("{base}{tail}")), vec![want], "{tail}");
    }
}

#[test]
fn missing_and_multiple_outputs() {
    assert_eq!(
        kinds(&format!(
            "{TASK}interpretation i for reverse {{ x = tokens }}"
        )),
        vec![ErrorKind::MissingOutput]
    );
    assert_eq!(
        kinds(&format!(
            "{TASK}interpretation i for reverse {{ output tokens\n output indices }}"
        )),
        vec![ErrorKind::MultipleOutputs]
    );
}

#[test]
fn number_literals_are_exact() {
    assert_eq!(parse_number("0.25"), Ok(Rational64::new(1, 4)));
    assert_eq!(parse_number("-3"), Ok(Rational64::from_integer(-3)));
    assert!(parse_number("99999999999999999999").is_err());
    assert!(parse_number("0.00000000000000000001").is_err());
}

#[test]
fn signatures_count_arguments() {
    assert_eq!(sig_arity_count("map2(|x, y| ..., s1, s2)"), 3);
    assert_eq!(sig_arity_count("full(value)"), 1);
    assert_eq!(sig_arity_count("select(keys, queries, predicate)"), 3);
    assert_eq!(sig_arity("full(value)"), "1 argument");
    assert_eq!(
        sig_arity("aligned(interpretation, interpretation, x = y, ...)"),
        "3 or more arguments"
    );
}
