//! Bundled hypotheses hold; deliberately false ones fail, saying which expectation, by how much
//! and on which input.

use super::{stdout, test};

#[test]
fn false_hypotheses_exit_1_naming_the_expectation_the_figure_and_the_input() {
    let cache = tempfile::tempdir().unwrap();
    // (file, expectation, what the failure line must say)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "wrong_circuit",
            "iia(output_in_the_mlp) >= 0.95",
            &[
                "iia = 0.",
                "< 0.95",
                "first wrong \"",
                " with output from \"",
                "want \"",
            ],
        ),
        (
            "iia_too_high",
            "iia(half_right) >= 0.9",
            &["iia = 0.5", "< 0.9", " with length from \""],
        ),
        (
            "wrong_interpretation",
            "implements(reverse_wrong)",
            &[
                "120 of 120 inputs differ",
                "counterexample: \"a\" -> \"a\", want \"none\"",
            ],
        ),
        (
            "wrong_interpretation",
            "accuracy(reverse_wrong) >= 0.99",
            &[
                "accuracy = 0.000 < 0.99",
                "first wrong input \"a\" -> \"a\", want \"none\"",
            ],
        ),
        (
            "wrong_interpretation",
            "congruent(reverse_wrong)",
            &[
                "rejects the model",
                "closer to reverse_wrong than to tracr_reverse: 0.000",
            ],
        ),
        (
            "distinguishable_claimed",
            "distinguishable(tracr_reverse, reverse_by_sorting)",
            &["not told apart: both gaps within ε"],
        ),
    ];
    let mut runs = std::collections::BTreeMap::new();
    for (file, expectation, says) in cases {
        let out = runs
            .entry(*file)
            .or_insert_with(|| test(&[&format!("tests/specs/false/{file}.interp")], cache.path()));
        let text = stdout(out);
        assert_eq!(out.status.code(), Some(1), "{file}: {text}");
        let at = text
            .find(&format!("FAIL    {expectation}"))
            .unwrap_or_else(|| panic!("{file}: no FAIL line for {expectation} in\n{text}"));
        // The failure line and the lines under it, up to the next verdict.
        let block: String = text[at..]
            .lines()
            .enumerate()
            .take_while(|(k, l)| *k == 0 || l.starts_with("             "))
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        for s in *says {
            assert!(block.contains(s), "{file}: `{s}` missing from\n{block}");
        }
    }
}

#[test]
fn an_interval_that_straddles_the_bound_is_unknown_never_a_pass() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // half_right's IIA is about 0.52 on 800 interchanges: its 95% interval spans 0.5.
    let spec = dir.path().join("straddle.interp");
    std::fs::write(
        &spec,
        format!(
            "import \"{}\"\n\
             circuit half_right for tracr_reverse {{\n  length -> blocks.1.attn.hook_z[0]\n  output -> blocks.1.attn.hook_z[0]\n}}\n\
             check straddle {{\n  model compiled(tracr_reverse)\n  seed 13\n  expect iia(half_right) >= 0.5\n  expect iia(half_right) ~= 0.5 +- 0.1\n}}\n",
            super::root().join("specs/tracr/reverse.interp").display()
        ),
    )
    .unwrap();
    let out = test(&[spec.to_str().unwrap()], cache.path());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("UNKNOWN iia(half_right) >= 0.5"), "{text}");
    assert!(text.contains("straddles >= 0.5"), "{text}");
    // The tolerance form is a numeric snapshot: it reads the point value.
    assert!(
        text.contains("PASS    iia(half_right) ~= 0.5 +- 0.1"),
        "{text}"
    );
}
