use super::*;

fn parse(src: &str) -> File {
    match parse_str("t.interp", src) {
        Ok(f) => f,
        Err(e) => panic!("{}", e.render_plain()),
    }
}

fn parse_err(src: &str) -> LangError {
    match parse_str("t.interp", src) {
        Ok(f) => panic!("expected an error, parsed {f:?}"),
        Err(e) => e,
    }
}

/// `KEYWORDS` (used for hints here and by the property tests) must list exactly the words of
/// the grammar's `keyword` rule.
#[test]
fn keywords_are_the_grammars() {
    let grammar = include_str!("../../../grammar/congruity.pest");
    let start = grammar.find("keyword = @{").expect("a keyword rule");
    let rule = &grammar[start..];
    let rule = &rule[..rule.find('}').expect("the rule ends")];
    let words: Vec<&str> = rule.split('"').skip(1).step_by(2).collect();
    assert_eq!(words, KEYWORDS);
    for w in KEYWORDS {
        assert!(
            SpecParser::parse(Rule::ident, w).is_err(),
            "`{w}` parsed as a name"
        );
    }
}

const REVERSE: &str = r#"
task reverse {
  vocab   {a, b, c}
  max_len 4
}

interpretation by_length for reverse {
  length = selector_width(select(tokens, tokens, true))
  opp    = map2(|n, i| n - i - 1, length, indices)
  flip   = select(indices, opp, ==)
  output   aggregate(flip, tokens)
}
"#;

#[test]
fn parses_the_design_example() {
    let f = parse(REVERSE);
    assert_eq!(f.items.len(), 2);
    let Item::Interpretation(i) = &f.items[1] else {
        panic!()
    };
    assert_eq!(i.name.name, "by_length");
    assert_eq!(i.task.name, "reverse");
    assert_eq!(i.stmts.len(), 4);
    let Stmt::Let { expr, .. } = &i.stmts[1] else {
        panic!()
    };
    let SeqExprKind::Call { func, args } = &expr.kind else {
        panic!()
    };
    assert_eq!(func.name, "map2");
    let Arg::Lambda(l) = &args[0] else { panic!() };
    assert_eq!(l.params.len(), 2);
    // n - i - 1 is left-associative: (n - i) - 1
    let ExprKind::Arith(ArithOp::Sub, lhs, rhs) = &l.body.kind else {
        panic!()
    };
    assert!(matches!(lhs.kind, ExprKind::Arith(ArithOp::Sub, _, _)));
    assert!(matches!(&rhs.kind, ExprKind::Num(n) if n.text == "1"));
    let Stmt::Let { expr, .. } = &i.stmts[2] else {
        panic!()
    };
    let SeqExprKind::Call { args, .. } = &expr.kind else {
        panic!()
    };
    assert!(matches!(args[2], Arg::Cmp(CmpOp::Eq, _)));
}

#[test]
fn words_are_matched_whole() {
    // `order`, `nothing`, `android`, `outputs` start with keywords but are names.
    let f = parse(
        "interpretation i for t {\n  order = tokens\n  nothing = map(|nothing| nothing, order)\n  android = order and nothing\n  outputs = tokens\n  output outputs\n}",
    );
    let Item::Interpretation(i) = &f.items[0] else {
        panic!()
    };
    assert_eq!(i.stmts.len(), 5);
    let Stmt::Let { expr, .. } = &i.stmts[1] else {
        panic!()
    };
    let SeqExprKind::Call { args, .. } = &expr.kind else {
        panic!()
    };
    let Arg::Lambda(l) = &args[0] else { panic!() };
    assert!(matches!(&l.body.kind, ExprKind::Name(n) if n.name == "nothing"));
    let Stmt::Let { expr, .. } = &i.stmts[2] else {
        panic!()
    };
    assert!(matches!(expr.kind, SeqExprKind::And(_, _)));
    assert!(
        matches!(&i.stmts[4], Stmt::Output { expr, .. } if matches!(&expr.kind, SeqExprKind::Var(v) if v.name == "outputs"))
    );
}

#[test]
fn precedence_of_scalar_operators() {
    let f = parse(
        "interpretation i for t { output map(|x| not x + 1 * 2 == 3 and true or false, tokens) }",
    );
    let Item::Interpretation(i) = &f.items[0] else {
        panic!()
    };
    let Stmt::Output { expr, .. } = &i.stmts[0] else {
        panic!()
    };
    let SeqExprKind::Call { args, .. } = &expr.kind else {
        panic!()
    };
    let Arg::Lambda(l) = &args[0] else { panic!() };
    // ((not ((x + (1 * 2)) == 3)) and true) or false
    let ExprKind::Or(a, _) = &l.body.kind else {
        panic!("{:?}", l.body.kind)
    };
    let ExprKind::And(n, _) = &a.kind else {
        panic!()
    };
    let ExprKind::Not(c) = &n.kind else { panic!() };
    let ExprKind::Cmp(CmpOp::Eq, s, _) = &c.kind else {
        panic!()
    };
    let ExprKind::Arith(ArithOp::Add, _, m) = &s.kind else {
        panic!()
    };
    assert!(matches!(m.kind, ExprKind::Arith(ArithOp::Mul, _, _)));
}

#[test]
fn parses_every_item_kind() {
    let f = parse(
        r#"
import "other.interp"
task t { vocab {0..=3, "(", none_ish, -2} max_len 3 where map(|x| x != "(", tokens) }
pipeline p = a |> b via clamp |> c via modulo |> d via table { 11 -> 0, none -> 0, }
circuit c for i {
  length -> blocks.0.attn.hook_z[0], blocks.0.hook_mlp_out
  output -> blocks.3.attn.hook_z[1]
}
check reverse_model {
  model "models/reverse"
  compare a vs b vs c
  samples 20
  seed 7
  expect congruent(a)
  expect iia(c) >= 0.95
}
prove equivalent(a, b)
prove al: aligned(a, b, length = n, opp) timeout 30
"#,
    );
    assert_eq!(f.items.len(), 7);
    let Item::Task(t) = &f.items[1] else { panic!() };
    let TaskField::Vocab { items, .. } = &t.fields[0] else {
        panic!()
    };
    assert!(matches!(
        &items[0],
        VocabItem::Range {
            inclusive: true,
            ..
        }
    ));
    assert!(matches!(&items[1], VocabItem::Token(TokenLit::Str(s)) if s.value == "("));
    assert!(matches!(&items[2], VocabItem::Token(TokenLit::Sym(s)) if s.name == "none_ish"));
    assert!(matches!(&items[3], VocabItem::Token(TokenLit::Int(n)) if n.text == "-2"));
    let Item::Pipeline(p) = &f.items[2] else {
        panic!()
    };
    assert_eq!(p.stages.len(), 4);
    assert!(
        matches!(&p.stages[3].adapter, Some(AdapterDef::Table { rows, .. }) if rows.len() == 2)
    );
    let Item::Circuit(c) = &f.items[3] else {
        panic!()
    };
    assert_eq!(c.entries[1].var.name, "output");
    assert_eq!(c.entries[0].hooks[0].name, "blocks.0.attn.hook_z");
    assert_eq!(
        c.entries[0].hooks[0].head.as_ref().map(|n| n.text.as_str()),
        Some("0")
    );
    let Item::Check(ch) = &f.items[4] else {
        panic!()
    };
    assert_eq!(ch.fields.len(), 6);
    let Item::Prove(pr) = &f.items[6] else {
        panic!()
    };
    assert_eq!(pr.name.as_ref().map(|n| n.name.as_str()), Some("al"));
    assert_eq!(pr.args.len(), 4);
    assert_eq!(pr.timeout.as_ref().map(|n| n.text.as_str()), Some("30"));
}

#[test]
fn string_escapes_and_comments() {
    let src = "# head\ntask t { vocab {\"a\\\"#b\", \"\\\\\"} # tail\n max_len 2 }";
    let f = parse(src);
    let Item::Task(t) = &f.items[0] else { panic!() };
    let TaskField::Vocab { items, .. } = &t.fields[0] else {
        panic!()
    };
    assert!(matches!(&items[0], VocabItem::Token(TokenLit::Str(s)) if s.value == "a\"#b"));
    assert!(matches!(&items[1], VocabItem::Token(TokenLit::Str(s)) if s.value == "\\"));
    let cs = comments(src);
    assert_eq!(
        cs.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(),
        ["# head", "# tail"]
    );
}

#[test]
fn errors_use_language_words() {
    let e = parse_err("interpretation i for t { x = map(|a| a + , tokens) output x }");
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert!(e.message.contains("an expression"), "{}", e.message);
    assert!(!e.message.contains("unary"), "{}", e.message);
    assert_eq!(e.location().as_deref(), Some("t.interp:1:42"));
}

#[test]
fn unterminated_block_points_at_the_brace() {
    let e = parse_err("task t {\n  vocab {a}\n  max_len 3\n");
    assert_eq!(e.kind, ErrorKind::Unterminated);
    assert_eq!(e.location().as_deref(), Some("t.interp:1:8"));
    assert!(e.help.as_deref().is_some_and(|h| h.contains("line 1")));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!(
        "interpretation i for t {{ output map(|x| {}x{}, tokens) }}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let e = parse_err(&deep);
    assert_eq!(e.kind, ErrorKind::TooDeep, "{}", e.render_plain());
    let nots = format!(
        "interpretation i for t {{ output map(|x| {}x, tokens) }}",
        "not ".repeat(5000)
    );
    assert_eq!(parse_err(&nots).kind, ErrorKind::TooDeep);
    let chain = format!(
        "interpretation i for t {{ output map(|x| x{}, tokens) }}",
        " + 1".repeat(5000)
    );
    assert_eq!(parse_err(&chain).kind, ErrorKind::TooDeep);
}
