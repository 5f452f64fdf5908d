//! z3 proof benchmarks: representative goals end to end (encoding, lemmas, sweeping, solving and
//! replay), each over every sequence length of its task.
//!
//! - `equivalent(tracr_sort, sort_by_counting)`: two sorts on tracr's sort task (vocab {1..4},
//!   max_len 5), sweeping proves their rank selectors equal.
//! - `well_formed(sort)` on the toy sort task (vocab {0..10}), lengths 1..=7: the transitivity
//!   lemmas carry the rank argument.
//! - `equivalent(count_less_than, by complement)` on the toy task, lengths 1..=10: counts of
//!   complementary selectors.

use std::path::Path;
use std::time::Duration;

use congruity::lang::ir::{ProofGoal, Spec};
use congruity::lang::{self, check_str};
use congruity::smt::{self, ProveOptions, Verdict};
use criterion::{Criterion, criterion_group, criterion_main};

fn specs() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("specs")
}

fn toy_spec() -> Spec {
    let text = r#"
import "sort.interp"
import "count_less_than.interp"
interpretation count_less_than_by_complement for count_less_than {
  length = selector_width(select(indices, indices, true))
  ge     = selector_width(select(tokens, tokens, >=))
  output   map2(|n, g| n - g, length, ge)
}
"#;
    let name = specs().join("toy/smt_bench.interp");
    check_str(&name.display().to_string(), text).expect("bench spec checks")
}

fn bench(c: &mut Criterion) {
    let tracr =
        lang::load(specs().join("alternatives/sort_by_counting.interp")).expect("spec loads");
    let toy = toy_spec();
    let cases: Vec<(&str, &Spec, ProofGoal, Option<usize>)> = vec![
        (
            "equivalent(tracr_sort, sort_by_counting) n<=5",
            &tracr,
            ProofGoal::Equivalent {
                a: "tracr_sort".into(),
                b: "sort_by_counting".into(),
            },
            None,
        ),
        (
            "well_formed(toy sort) n<=7",
            &toy,
            ProofGoal::WellFormed {
                program: "sort".into(),
            },
            Some(7),
        ),
        (
            "equivalent(toy count_less_than, by_complement) n<=10",
            &toy,
            ProofGoal::Equivalent {
                a: "count_less_than".into(),
                b: "count_less_than_by_complement".into(),
            },
            None,
        ),
    ];
    let mut g = c.benchmark_group("smt");
    g.sample_size(10);
    for (name, spec, goal, max_len) in cases {
        let opts = ProveOptions {
            timeout: Some(Duration::from_secs(300)),
            parallel: false,
            max_len,
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let r = smt::prove(spec, name, &goal, &opts);
                assert_eq!(r.verdict, Verdict::Proved, "{}", r.text());
                r
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
