//! Property tests: the formatter round-trips any syntax tree; no input, however broken, panics the
//! parser, the checker or the formatter; the evaluator obeys RASP identities; inferred value sets
//! contain every value a program computes.

use congruity::lang::ast::*;
use congruity::lang::eval::{EvalError, NodeValue, eval_program};
use congruity::lang::ir::{NodeType, Value};
use congruity::lang::parse::KEYWORDS;
use congruity::lang::{check_str, domain, fmt, parse_str};
use num_rational::Rational64;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// Fixed seeds: the same cases every run (a failure prints its case; change the seed to explore).
fn config(cases: u32, seed: u64) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

fn sp() -> Span {
    Span::default()
}

fn ident() -> impl Strategy<Value = Ident> {
    prop_oneof![
        // Names that start with keywords, and contextual words, on purpose.
        prop::sample::select(vec![
            "order", "nothing", "android", "outputs", "iffy", "fortune", "vocab", "where", "table",
            "vs", "timeout", "model", "clamp", "tokens", "x", "_", "a1", "truey", "nonempty",
        ])
        .prop_map(String::from),
        "[a-z_][a-z0-9_]{0,6}",
    ]
    .prop_filter("keywords are not names", |s| {
        !KEYWORDS.contains(&s.as_str())
    })
    .prop_map(|name| Ident { name, span: sp() })
}

fn lit(re: &'static str) -> impl Strategy<Value = NumLit> {
    re.prop_map(|text| NumLit { text, span: sp() })
}

fn number() -> impl Strategy<Value = NumLit> {
    lit("[0-9]{1,3}(\\.[0-9]{1,3})?")
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            'a', '#', '"', '\\', ' ', '(', '}', 'é', '\t', '|', ',',
        ]),
        0..6,
    )
    .prop_map(String::from_iter)
}

fn str_lit() -> impl Strategy<Value = StrLit> {
    text().prop_map(|value| StrLit { value, span: sp() })
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(vec![
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ])
}

fn e(kind: ExprKind) -> Expr {
    Expr { kind, span: sp() }
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        number().prop_map(|n| e(ExprKind::Num(n))),
        any::<bool>().prop_map(|b| e(ExprKind::Bool(b))),
        Just(e(ExprKind::None)),
        text().prop_map(|s| e(ExprKind::Str(s))),
        ident().prop_map(|n| e(ExprKind::Name(n))),
    ];
    leaf.prop_recursive(5, 40, 3, |inner| {
        let b = || inner.clone().prop_map(Box::new);
        prop_oneof![
            (b(), b(), b()).prop_map(|(c, t, x)| e(ExprKind::If(c, t, x))),
            (b(), b()).prop_map(|(l, r)| e(ExprKind::Or(l, r))),
            (b(), b()).prop_map(|(l, r)| e(ExprKind::And(l, r))),
            b().prop_map(|x| e(ExprKind::Not(x))),
            b().prop_map(|x| e(ExprKind::Neg(x))),
            (cmp_op(), b(), b()).prop_map(|(o, l, r)| e(ExprKind::Cmp(o, l, r))),
            (
                prop::sample::select(vec![
                    ArithOp::Add,
                    ArithOp::Sub,
                    ArithOp::Mul,
                    ArithOp::Div,
                    ArithOp::Mod
                ]),
                b(),
                b()
            )
                .prop_map(|(o, l, r)| e(ExprKind::Arith(o, l, r))),
            (ident(), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(func, args)| e(ExprKind::Call { func, args })),
        ]
    })
}

fn lambda() -> impl Strategy<Value = Lambda> {
    (prop::collection::vec(ident(), 0..3), expr()).prop_map(|(params, body)| Lambda {
        params,
        body,
        span: sp(),
    })
}

fn s(kind: SeqExprKind) -> SeqExpr {
    SeqExpr { kind, span: sp() }
}

fn value_lit() -> impl Strategy<Value = ValueLit> {
    prop_oneof![
        any::<bool>().prop_map(|b| ValueLit::Bool(b, sp())),
        Just(ValueLit::None(sp())),
        str_lit().prop_map(ValueLit::Str),
        lit("-?[0-9]{1,3}(\\.[0-9]{1,2})?").prop_map(ValueLit::Num),
    ]
}

fn seq_expr() -> impl Strategy<Value = SeqExpr> {
    let leaf = ident().prop_map(|i| s(SeqExprKind::Var(i)));
    leaf.prop_recursive(4, 24, 3, |inner| {
        let b = || inner.clone().prop_map(Box::new);
        let arg = prop_oneof![
            lambda().prop_map(Arg::Lambda),
            cmp_op().prop_map(|o| Arg::Cmp(o, sp())),
            value_lit().prop_map(Arg::Value),
            inner.clone().prop_map(Arg::Seq),
        ];
        prop_oneof![
            (b(), b()).prop_map(|(l, r)| s(SeqExprKind::Or(l, r))),
            (b(), b()).prop_map(|(l, r)| s(SeqExprKind::And(l, r))),
            b().prop_map(|x| s(SeqExprKind::Not(x))),
            (
                prop::sample::select(vec![EncodingKw::Numerical, EncodingKw::Categorical]),
                b()
            )
                .prop_map(|(k, x)| s(SeqExprKind::Encoded(k, x))),
            (ident(), prop::collection::vec(arg, 0..4))
                .prop_map(|(func, args)| s(SeqExprKind::Call { func, args })),
        ]
    })
}

fn token_lit() -> impl Strategy<Value = TokenLit> {
    prop_oneof![
        lit("-?[0-9]{1,3}").prop_map(TokenLit::Int),
        str_lit().prop_map(TokenLit::Str),
        ident().prop_map(TokenLit::Sym),
        Just(TokenLit::None(sp())),
    ]
}

fn task() -> impl Strategy<Value = Item> {
    let vocab_item = prop_oneof![
        token_lit().prop_map(VocabItem::Token),
        (lit("-?[0-9]{1,3}"), lit("-?[0-9]{1,3}"), any::<bool>()).prop_map(
            |(lo, hi, inclusive)| VocabItem::Range {
                lo,
                hi,
                inclusive,
                span: sp()
            }
        ),
    ];
    let field = prop_oneof![
        prop::collection::vec(vocab_item, 0..4)
            .prop_map(|items| TaskField::Vocab { items, span: sp() }),
        lit("[0-9]{1,3}").prop_map(|value| TaskField::MaxLen { value, span: sp() }),
        seq_expr().prop_map(|expr| TaskField::Where { expr, span: sp() }),
    ];
    (ident(), prop::collection::vec(field, 0..4)).prop_map(|(name, fields)| {
        Item::Task(TaskDef {
            name,
            fields,
            span: sp(),
        })
    })
}

fn interpretation() -> impl Strategy<Value = Item> {
    let stmt = prop_oneof![
        (ident(), seq_expr()).prop_map(|(name, expr)| Stmt::Let {
            name,
            expr,
            span: sp()
        }),
        seq_expr().prop_map(|expr| Stmt::Output { expr, span: sp() }),
    ];
    (ident(), ident(), prop::collection::vec(stmt, 0..5)).prop_map(|(name, task, stmts)| {
        Item::Interpretation(InterpDef {
            name,
            task,
            stmts,
            span: sp(),
        })
    })
}

fn pipeline() -> impl Strategy<Value = Item> {
    let adapter = prop_oneof![
        Just(AdapterDef::Clamp(sp())),
        Just(AdapterDef::Modulo(sp())),
        prop::collection::vec((token_lit(), token_lit()), 0..3)
            .prop_map(|rows| AdapterDef::Table { rows, span: sp() }),
    ];
    let stage = (ident(), prop::option::of(adapter)).prop_map(|(name, adapter)| StageDef {
        name,
        adapter,
        span: sp(),
    });
    (ident(), prop::collection::vec(stage, 2..4)).prop_map(|(name, stages)| {
        Item::Pipeline(PipelineDef {
            name,
            stages,
            span: sp(),
        })
    })
}

fn circuit() -> impl Strategy<Value = Item> {
    let hook = (
        prop::collection::vec("[a-z0-9_]{1,6}", 1..4).prop_map(|v| v.join(".")),
        prop::option::of(lit("[0-9]{1,2}")),
    )
        .prop_map(|(name, head)| HookRefAst {
            name,
            head,
            span: sp(),
        });
    let var = prop_oneof![
        ident(),
        Just(Ident {
            name: "output".to_string(),
            span: sp()
        })
    ];
    let entry = (var, prop::collection::vec(hook, 1..3)).prop_map(|(var, hooks)| CircuitEntry {
        var,
        hooks,
        span: sp(),
    });
    (ident(), ident(), prop::collection::vec(entry, 0..3)).prop_map(|(name, program, entries)| {
        Item::Circuit(CircuitDef {
            name,
            program,
            entries,
            span: sp(),
        })
    })
}

fn check() -> impl Strategy<Value = Item> {
    let field = prop_oneof![
        str_lit().prop_map(|path| CheckField::Model {
            model: ModelAst::Dir(path),
            span: sp()
        }),
        (ident(), prop::option::of(lit("[0-9]{1,4}"))).prop_map(|(program, seed)| {
            CheckField::Model {
                model: ModelAst::Compiled { program, seed },
                span: sp(),
            }
        }),
        prop::collection::vec(ident(), 2..4)
            .prop_map(|names| CheckField::Compare { names, span: sp() }),
        (
            lit("[0-9]{1,4}"),
            prop::option::of(prop_oneof![Just("compiled"), Just("trained")])
        )
            .prop_map(|(value, family)| CheckField::Samples {
                value,
                family: family.map(|name| Ident {
                    name: name.into(),
                    span: sp()
                }),
                span: sp()
            }),
        lit("[0-9]{1,4}").prop_map(|value| CheckField::Seed { value, span: sp() }),
        (
            ident(),
            prop::collection::vec(ident(), 0..3),
            prop::option::of(prop_oneof![
                (cmp_op(), number()).prop_map(|(op, n)| BoundAst::Cmp(op, n)),
                (number(), number())
                    .prop_map(|(value, tolerance)| BoundAst::Approx { value, tolerance }),
            ])
        )
            .prop_map(|(goal, args, bound)| CheckField::Expect {
                goal,
                args,
                bound,
                span: sp()
            }),
    ];
    (ident(), prop::collection::vec(field, 0..4)).prop_map(|(name, fields)| {
        Item::Check(CheckDef {
            name,
            fields,
            span: sp(),
        })
    })
}

fn prove() -> impl Strategy<Value = Item> {
    let arg = prop_oneof![
        ident().prop_map(ProofArg::Name),
        (ident(), ident()).prop_map(|(a, b)| ProofArg::Alias(a, b)),
    ];
    (
        prop::option::of(ident()),
        ident(),
        prop::collection::vec(arg, 0..4),
        prop::option::of(number()),
    )
        .prop_map(|(name, goal, args, timeout)| {
            Item::Prove(ProveDef {
                name,
                goal,
                args,
                timeout,
                span: sp(),
            })
        })
}

fn file() -> impl Strategy<Value = File> {
    let item = prop_oneof![
        str_lit().prop_map(|path| Item::Import(Import { path, span: sp() })),
        task(),
        interpretation(),
        pipeline(),
        circuit(),
        check(),
        prove(),
    ];
    prop::collection::vec(item, 0..5).prop_map(|items| File { items })
}

/// Fragments of the language (and of things that are not), for token soups.
fn soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "task",
        "interpretation",
        "for",
        "output",
        "pipeline",
        "circuit",
        "check",
        "prove",
        "import",
        "vocab",
        "max_len",
        "where",
        "if",
        "then",
        "else",
        "and",
        "or",
        "not",
        "true",
        "false",
        "none",
        "numerical",
        "categorical",
        "via",
        "clamp",
        "modulo",
        "table",
        "model",
        "compare",
        "vs",
        "samples",
        "seed",
        "expect",
        "timeout",
        "map",
        "map2",
        "select",
        "aggregate",
        "selector_width",
        "full",
        "tokens",
        "indices",
        "min",
        "abs",
        "x",
        "y",
        "t",
        "a",
        "b",
        "0",
        "1",
        "2",
        "-1",
        "0.5",
        "99999999999999999999",
        "\"(\"",
        "\"",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "|",
        ",",
        "=",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "+",
        "-",
        "*",
        "/",
        "%",
        "->",
        "|>",
        ":",
        "..",
        "..=",
        ".",
        "#",
        "\n",
        "blocks.0.attn.hook_z",
        "hook_embed",
        "é",
    ]);
    prop::collection::vec(token, 0..60).prop_map(|v| v.join(" "))
}

/// Parses, checks and (when it parses) formats `src`; none of it may panic, and a parsed file must
/// format to text that parses to the same tree.
fn exercise(src: &str) {
    let _ = check_str("soup.interp", src);
    if let Ok(ast) = parse_str("soup.interp", src) {
        let out = fmt::format_source("soup.interp", src).expect("a file that parses also formats");
        let again = parse_str("soup.interp", &out).expect("formatted text parses");
        assert_eq!(again.without_spans(), ast.without_spans());
    }
}

proptest! {
    #![proptest_config(config(512, 0x5eed_0001))]

    #[test]
    fn generated_trees_survive_fmt_then_parse(f in file()) {
        let text = fmt::format_file(&f);
        let parsed = parse_str("gen.interp", &text)
            .map_err(|e| TestCaseError::fail(format!("{}\n{text}", e.render_plain())))?;
        prop_assert_eq!(parsed.without_spans(), f.clone(), "{}", text);
        // Formatting formatted text changes nothing.
        let again = fmt::format_source("gen.interp", &text)
            .map_err(|e| TestCaseError::fail(e.render_plain()))?;
        prop_assert_eq!(again, text);
    }

    #[test]
    fn generated_lambda_bodies_survive_fmt_then_parse(body in expr(), params in prop::collection::vec(ident(), 1..3)) {
        let call = s(SeqExprKind::Call {
            func: Ident { name: "map".into(), span: sp() },
            args: vec![Arg::Lambda(Lambda { params, body, span: sp() }), Arg::Seq(s(SeqExprKind::Var(Ident { name: "tokens".into(), span: sp() })))],
        });
        let f = File { items: vec![Item::Interpretation(InterpDef {
            name: Ident { name: "i".into(), span: sp() },
            task: Ident { name: "t".into(), span: sp() },
            stmts: vec![Stmt::Output { expr: call, span: sp() }],
            span: sp(),
        })] };
        let text = fmt::format_file(&f);
        let parsed = parse_str("gen.interp", &text)
            .map_err(|e| TestCaseError::fail(format!("{}\n{text}", e.render_plain())))?;
        prop_assert_eq!(parsed.without_spans(), f, "{}", text);
    }

    #[test]
    fn generated_sequence_expressions_survive_fmt_then_parse(expr in seq_expr()) {
        let f = File { items: vec![Item::Interpretation(InterpDef {
            name: Ident { name: "i".into(), span: sp() },
            task: Ident { name: "t".into(), span: sp() },
            stmts: vec![Stmt::Output { expr, span: sp() }],
            span: sp(),
        })] };
        let text = fmt::format_file(&f);
        let parsed = parse_str("gen.interp", &text)
            .map_err(|e| TestCaseError::fail(format!("{}\n{text}", e.render_plain())))?;
        prop_assert_eq!(parsed.without_spans(), f, "{}", text);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn token_soups_never_panic(src in soup()) {
        exercise(&src);
    }

    #[test]
    fn near_valid_programs_never_panic(cut in 0usize..600, junk in soup()) {
        // A valid spec with a random tail cut off and junk spliced in.
        let base = include_str!("../../../specs/tracr/reverse.interp");
        let cut = cut.min(base.len());
        let cut = (0..=cut).rev().find(|i| base.is_char_boundary(*i)).unwrap_or(0);
        exercise(&format!("{}{}", &base[..cut], junk));
        exercise(&format!("{} {} {}", &base[..cut], junk, &base[cut..]));
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluator properties

fn task_src(vocab: &str, max_len: usize) -> String {
    format!("task t {{ vocab {{{vocab}}} max_len {max_len} }}\n")
}

fn input(max_len: usize) -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(0i64..5, 1..=max_len)
}

fn ints(v: &[i64]) -> Vec<Value> {
    v.iter().map(|i| Value::int(*i)).collect()
}

proptest! {
    #![proptest_config(config(256, 0x5eed_0002))]

    #[test]
    fn selector_width_of_select_all_is_the_length(x in input(8)) {
        let spec = check_str("p.interp", &format!(
            "{}interpretation len for t {{ output selector_width(select(tokens, tokens, true)) }}",
            task_src("0..5", 8)
        )).unwrap();
        let t = eval_program(&spec.programs["len"], &ints(&x)).unwrap();
        prop_assert_eq!(t.output().to_vec(), vec![Value::int(x.len() as i64); x.len()]);
    }

    #[test]
    fn numerical_aggregate_of_a_constant_is_the_constant(
        x in input(8),
        c in -50i64..50,
        d in 1i64..7,
        cmp in prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">=", "true", "false"]),
    ) {
        let spec = check_str("p.interp", &format!(
            "{}interpretation agg for t {{
  c   = numerical full({})
  sel = select(tokens, indices, {cmp})
  output numerical aggregate(sel, c)
}}",
            task_src("0..5", 8),
            if d == 1 { c.to_string() } else { format!("{}", c as f64 / 2f64.powi(d as i32)) }
        )).unwrap();
        let p = &spec.programs["agg"];
        let t = eval_program(p, &ints(&x)).unwrap();
        let want = if d == 1 { Rational64::from_integer(c) } else { Rational64::new(c, 1 << d) };
        let Some(NodeValue::Selector(m)) = t.var(p, "sel") else { panic!("sel is a selector") };
        for (q, v) in t.output().iter().enumerate() {
            let selected = (0..x.len()).any(|k| m.get(q, k));
            // An empty selection averages to 0.
            let expected = if selected { Value::Num(want) } else { Value::int(0) };
            prop_assert_eq!(v, &expected);
        }
    }

    #[test]
    fn reversing_twice_is_the_identity(x in prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=4)) {
        let src = include_str!("../../../specs/tracr/reverse.interp");
        let spec = check_str("reverse.interp", src).unwrap();
        let p = &spec.programs["tracr_reverse"];
        let input: Vec<Value> = x.iter().map(|s| Value::sym(s)).collect();
        let once = eval_program(p, &input).unwrap().output().to_vec();
        let mut rev = input.clone();
        rev.reverse();
        prop_assert_eq!(&once, &rev);
        let twice = eval_program(p, &once).unwrap().output().to_vec();
        prop_assert_eq!(twice, input);
    }

    #[test]
    fn aggregating_the_diagonal_is_the_identity(x in input(8)) {
        let spec = check_str("p.interp", &format!(
            "{}interpretation id for t {{ output aggregate(select(indices, indices, ==), tokens) }}",
            task_src("0..5", 8)
        )).unwrap();
        let t = eval_program(&spec.programs["id"], &ints(&x)).unwrap();
        prop_assert_eq!(t.output().to_vec(), ints(&x));
    }

    /// Random straight-line programs over a small domain: whenever the checker accepts one, every
    /// value the evaluator computes on every input of the domain lies in the inferred value set.
    #[test]
    fn inferred_value_sets_contain_every_computed_value(stmts in prop::collection::vec((0usize..7, 0usize..16, 0usize..16, 0usize..9), 1..7)) {
        const MAPS: &[&str] = &[
            "|x| x + 1", "|x| x * 2 - 3", "|x| if x > 1 then x else 0", "|x| x % 3", "|x| x / 2",
            "|x| min(x, 2)", "|x| abs(x - 2)", "|x| x == 1", "|x| -x",
        ];
        const MAP2S: &[&str] = &[
            "|x, y| x + y", "|x, y| x - y", "|x, y| max(x, y)", "|x, y| if x < y then x else y * 2",
            "|x, y| x * y", "|x, y| x == y", "|x, y| (x + y) % 4", "|x, y| x", "|x, y| y - 1",
        ];
        const CMPS: &[&str] = &["==", "!=", "<", "<=", ">", ">=", "true", "false", "|k, q| k + 1 == q"];
        let mut seqs = vec!["tokens".to_string(), "indices".to_string()];
        let mut sels: Vec<String> = Vec::new();
        let mut lines = Vec::new();
        for (k, (kind, a, b, f)) in stmts.iter().enumerate() {
            let sa = seqs[a % seqs.len()].clone();
            let sb = seqs[b % seqs.len()].clone();
            let name = format!("v{k}");
            let line = match kind {
                0 => format!("{name} = map({}, {sa})", MAPS[*f]),
                1 => format!("{name} = map2({}, {sa}, {sb})", MAP2S[*f]),
                2 => {
                    sels.push(name.clone());
                    format!("{name} = select({sa}, {sb}, {})", CMPS[*f])
                }
                3 if !sels.is_empty() => format!("{name} = aggregate({}, {sa})", sels[a % sels.len()]),
                4 if !sels.is_empty() => format!("{name} = selector_width({})", sels[b % sels.len()]),
                5 if !sels.is_empty() => {
                    lines.push(format!("n{k} = numerical map({}, {sa})", MAPS[*f]));
                    format!("{name} = numerical aggregate({}, n{k})", sels[a % sels.len()])
                }
                6 if sels.len() >= 2 => {
                    sels.push(name.clone());
                    format!("{name} = {} and not {}", sels[a % sels.len()], sels[b % sels.len()])
                }
                _ => format!("{name} = map(|x| x, {sa})"),
            };
            lines.push(line);
            if !sels.contains(&name) {
                seqs.push(name);
            }
        }
        let src = format!(
            "{}interpretation g for t {{\n  {}\n  output {}\n}}\n",
            task_src("0..=2", 3),
            lines.join("\n  "),
            seqs.last().unwrap()
        );
        let Ok(spec) = check_str("gen.interp", &src) else { return Ok(()) };
        let p = &spec.programs["g"];
        for input in domain::inputs(&p.task) {
            let input = input.unwrap();
            match eval_program(p, &input) {
                Ok(trace) => {
                    for (id, node) in p.graph.nodes.iter().enumerate() {
                        if let (NodeType::Seq { values, .. }, Some(NodeValue::Seq(got))) = (&node.ty, trace.values.get(id)) {
                            for v in got {
                                prop_assert!(values.contains(v), "node {id} computed {v} outside {values:?} on {input:?}\n{src}");
                            }
                        }
                    }
                }
                // Selecting two positions in a categorical aggregate is an evaluation error by
                // design; a comparison that meets `none` is only checked when it happens.
                Err(EvalError::AmbiguousAggregate { .. }) => {}
                Err(e) if e.to_string().contains("none") => {}
                Err(e) => prop_assert!(false, "unexpected evaluation error {e} on {input:?}\n{src}"),
            }
        }
    }
}
