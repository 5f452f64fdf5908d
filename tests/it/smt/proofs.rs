//! Refutations are real and proofs are what they claim: the wrong reverse is refuted with an input
//! the evaluator confirms, two sorts are proved equivalent on their common domain, ill-formed
//! programs are caught with the offending input, and a timeout is `unknown`, never `proved`.

use std::time::Duration;

use congruity::lang::eval::{EvalError, eval_output, eval_program};
use congruity::lang::ir::{ProofGoal, Spec};
use congruity::lang::{self, check_str};
use congruity::smt::{self, Counterexample, LengthStatus, ProofReport, ProveOptions, Verdict};

use crate::support::smt as smt_support;

use smt_support::specs_dir;

fn load(rel: &str) -> Spec {
    lang::load(specs_dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e:?}"))
}

/// Checks `text` as if it were a file in `specs/<dir>/` (so its imports resolve there).
fn inline(dir: &str, text: &str) -> Spec {
    let name = specs_dir().join(dir).join("smt_inline.interp");
    check_str(&name.display().to_string(), text).unwrap_or_else(|e| panic!("{e:?}"))
}

fn opts() -> ProveOptions {
    ProveOptions {
        timeout: Some(Duration::from_secs(120)),
        parallel: true,
        max_len: None,
    }
}

/// tracr's make_sort used past its max_seq_len (5) on sequences of up to 6 tokens.
const SORT_BEYOND_MAX_SEQ_LEN: &str = r#"
task longer {
  vocab   {1..=4}
  max_len 6
}
interpretation sort_max_seq_len_5 for longer {
  keys       = map2(|x, i| x + 1 * i / 5, tokens, indices)
  smaller    = select(keys, keys, <)
  target_pos = selector_width(smaller)
  sel_new    = select(target_pos, indices, ==)
  output       aggregate(sel_new, tokens)
}
"#;

/// tracr's make_sort_unique without its uniqueness restriction.
const UNRESTRICTED_SORT_UNIQUE: &str = r#"
task any_tokens {
  vocab   {1..=5}
  max_len 5
}
interpretation unrestricted_sort_unique for any_tokens {
  smaller    = select(tokens, tokens, <)
  target_pos = selector_width(smaller)
  sel_new    = select(target_pos, indices, ==)
  output       aggregate(sel_new, tokens)
}
"#;

fn well_formed(program: &str) -> ProofGoal {
    ProofGoal::WellFormed {
        program: program.into(),
    }
}

/// The counterexample of a refutation (the report's text when it is not one).
fn refuted(r: &ProofReport) -> &Counterexample {
    match &r.verdict {
        Verdict::Refuted { counterexample } => counterexample,
        _ => panic!("expected a refutation: {}", r.text()),
    }
}

fn equivalent(a: &str, b: &str) -> ProofGoal {
    ProofGoal::Equivalent {
        a: a.into(),
        b: b.into(),
    }
}

#[test]
fn wrong_reverse_is_refuted_with_an_input_the_evaluator_confirms() {
    let spec = load("alternatives/reverse_wrong.interp");
    let report = smt::prove(
        &spec,
        "rev",
        &equivalent("tracr_reverse", "reverse_wrong"),
        &opts(),
    );
    let c = refuted(&report);
    assert_eq!(c.inputs.len(), 1);
    let input = &c.inputs[0];
    // Replay independently of the prover: the two outputs differ on this input.
    let good = eval_output(&spec.programs["tracr_reverse"], input).unwrap();
    let bad = eval_output(&spec.programs["reverse_wrong"], input).unwrap();
    assert_ne!(good, bad);
    assert!(!c.differences.is_empty());
    for d in &c.differences {
        assert_eq!(d.what, "output");
        assert_ne!(good[d.position], bad[d.position]);
        assert_eq!(d.left, lang::eval::value_text(&good[d.position]));
        assert_eq!(d.right, lang::eval::value_text(&bad[d.position]));
    }
    // Refuted at every length: position 0 always reads past the end.
    assert!(
        report
            .lengths
            .iter()
            .all(|l| l.status == LengthStatus::Refuted),
        "{}",
        report.length_table()
    );
    // The shortest counterexample is reported.
    assert_eq!(c.length, 1);
    assert!(report.text().contains("input: "), "{}", report.text());
}

#[test]
fn sorts_are_equivalent() {
    let spec = load("alternatives/sort_by_counting.interp");
    for goal in [
        equivalent("tracr_sort", "sort_by_counting"),
        ProofGoal::Aligned {
            a: "tracr_sort".into(),
            b: "sort_by_counting".into(),
            pairs: vec![("target_pos".into(), "target_pos".into())],
        },
    ] {
        let r = smt::prove(&spec, "sort", &goal, &opts());
        assert_eq!(r.verdict, Verdict::Proved, "{}", r.text());
        assert_eq!(r.lengths.len(), 5);
    }
    let spec = load("alternatives/sort_by_histogram.interp");
    let r = smt::prove(
        &spec,
        "sort",
        &equivalent("tracr_sort", "sort_by_histogram"),
        &opts(),
    );
    assert_eq!(r.verdict, Verdict::Proved, "{}", r.text());
}

#[test]
fn sort_unique_and_sort_agree_on_their_common_domain() {
    // tracr_sort_unique runs on distinct tokens from {1..5}; tracr_sort on any tokens from {1..4}:
    // their common domain is distinct tokens from {1..4}, where both sort.
    let spec = load("proofs/tracr_wellformed.interp");
    let r = smt::prove(
        &spec,
        "common",
        &equivalent("tracr_sort_unique", "tracr_sort"),
        &opts(),
    );
    assert_eq!(r.verdict, Verdict::Proved, "{}", r.text());
    assert_eq!(r.lengths.len(), 5);
    // Off the common domain they differ: sort_unique is ill-formed on repeated tokens.
    let wf = smt::prove(&spec, "wf", &well_formed("tracr_sort"), &opts());
    assert_eq!(wf.verdict, Verdict::Proved, "{}", wf.text());
}

/// tracr's make_sort_unique without its uniqueness restriction: tracr compiles it and silently
/// averages the colliding positions; the proof names an input and the evaluator confirms the
/// ambiguous aggregate.
#[test]
fn sort_unique_on_repeated_tokens_is_ill_formed() {
    let spec = inline("tracr", UNRESTRICTED_SORT_UNIQUE);
    let r = smt::prove(
        &spec,
        "wf",
        &well_formed("unrestricted_sort_unique"),
        &opts(),
    );
    let c = refuted(&r);
    assert_eq!(
        c.length,
        2,
        "two equal tokens are the shortest case: {}",
        r.text()
    );
    assert_eq!(c.inputs[0][0], c.inputs[0][1]);
    let err = eval_program(&spec.programs["unrestricted_sort_unique"], &c.inputs[0]).unwrap_err();
    assert!(matches!(err, EvalError::AmbiguousAggregate { .. }), "{err}");
    assert!(
        c.errors[0].contains("ambiguous categorical aggregate"),
        "{:?}",
        c.errors
    );
}

/// tracr's make_sort keeps keys unique with `x + min_key * i / max_seq_len`; used on sequences
/// longer than `max_seq_len` the offsets reach 1 and keys collide. With max_seq_len 5 and inputs
/// of 6 tokens, `2 + 0` and `1 + 5/5` collide: refuted at length 6, proved below.
#[test]
fn tracr_sort_beyond_its_max_seq_len_is_ill_formed() {
    let spec = inline("tracr", SORT_BEYOND_MAX_SEQ_LEN);
    let r = smt::prove(&spec, "wf", &well_formed("sort_max_seq_len_5"), &opts());
    let c = refuted(&r);
    assert_eq!(c.length, 6, "{}", r.text());
    for l in &r.lengths[..5] {
        assert_eq!(l.status, LengthStatus::Proved, "{}", r.length_table());
    }
    assert!(eval_program(&spec.programs["sort_max_seq_len_5"], &c.inputs[0]).is_err());
}

#[test]
fn a_timeout_is_unknown_never_proved() {
    let spec = inline(
        "toy",
        r#"
import "sort.interp"
interpretation sort_by_counting for sort {
  smaller    = select(tokens, tokens, <)
  equal      = select(tokens, tokens, ==)
  earlier    = select(indices, indices, <)
  target_pos = selector_width(smaller or (equal and earlier))
  output       aggregate(select(target_pos, indices, ==), tokens)
}
"#,
    );
    let o = ProveOptions {
        timeout: Some(Duration::from_millis(1)),
        parallel: true,
        max_len: None,
    };
    let r = smt::prove(&spec, "eq", &equivalent("sort", "sort_by_counting"), &o);
    let Verdict::Unknown { reason } = &r.verdict else {
        panic!("{}", r.text())
    };
    assert!(reason.contains("length 10"), "{reason}");
    assert!(r.lengths.iter().any(|l| matches!(&l.status, LengthStatus::Unknown { reason } if reason.contains("timeout") || reason.contains("canceled"))), "{}", r.length_table());
}

#[test]
fn goals_naming_nothing_are_unknown_with_the_reason() {
    let spec = load("tracr/reverse.interp");
    let r = smt::prove(&spec, "x", &equivalent("tracr_reverse", "nope"), &opts());
    let Verdict::Unknown { reason } = &r.verdict else {
        panic!("{}", r.text())
    };
    assert!(reason.contains("`nope`"), "{reason}");
}

/// Pipelines are proved by composing their stages: the paper's algo_6 (count_less_than, then
/// at_least_two_equal) is well-formed on its whole domain.
#[test]
fn pipelines_compose() {
    let spec = load("toy/pipelines.interp");
    let o = ProveOptions {
        timeout: Some(Duration::from_secs(120)),
        parallel: true,
        max_len: Some(6),
    };
    let r = smt::prove(&spec, "p", &well_formed("algo_6"), &o);
    assert_eq!(r.verdict, Verdict::Proved, "{}", r.text());
}

/// Every tracr library program, on its task's domain: well-formed (no categorical aggregate ever
/// selects two positions), hence nothing tracr would garble; both verdicts agree with
/// enumeration.
#[test]
fn tracr_library_programs_are_well_formed_and_never_garbled() {
    let spec = load("proofs/tracr_wellformed.interp");
    assert_eq!(spec.programs.len(), 13);
    for (name, p) in &spec.programs {
        let wf = smt::prove(&spec, name, &well_formed(name), &opts());
        assert_eq!(wf.verdict, Verdict::Proved, "{}", wf.text());
        let g = smt::prove_no_garbling(&spec, name, &opts());
        assert_eq!(g.verdict, Verdict::Proved, "{}", g.text());
        let inputs = smt_support::domain_inputs(&p.task, 200_000).expect("small domain");
        assert!(inputs.iter().all(|x| eval_program(p, x).is_ok()), "{name}");
        assert!(inputs.iter().all(|x| !smt_support::garbles(p, x)), "{name}");
    }
}

/// Where tracr goes silently wrong. make_sort past its max_seq_len: two different tokens get the
/// same key and one head averages them (refuted, values shown). make_sort_unique on repeated
/// tokens: ill-formed (two positions selected), yet never garbled, because the positions it
/// confuses hold equal tokens; what tracr gets wrong there is the empty row, not an average.
#[test]
fn garbling_is_found_and_told_apart_from_harmless_ambiguity() {
    let spec = inline(
        "tracr",
        &format!("{SORT_BEYOND_MAX_SEQ_LEN}{UNRESTRICTED_SORT_UNIQUE}"),
    );
    let g = smt::prove_no_garbling(&spec, "sort_max_seq_len_5", &opts());
    let c = refuted(&g);
    assert_eq!(c.length, 6, "{}", g.text());
    assert!(
        c.errors[0].contains("categorical aggregate `output` at query position"),
        "{:?}",
        c.errors
    );
    let p = &spec.programs["sort_max_seq_len_5"];
    assert!(smt_support::garbles(p, &c.inputs[0]));

    let name = "unrestricted_sort_unique";
    let wf = smt::prove(&spec, name, &well_formed(name), &opts());
    assert!(
        matches!(wf.verdict, Verdict::Refuted { .. }),
        "{}",
        wf.text()
    );
    let g = smt::prove_no_garbling(&spec, name, &opts());
    assert_eq!(g.verdict, Verdict::Proved, "{}", g.text());
    let p = &spec.programs[name];
    let inputs = smt_support::domain_inputs(&p.task, 200_000).unwrap();
    assert!(inputs.iter().all(|x| !smt_support::garbles(p, x)));
}
