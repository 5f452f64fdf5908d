//! The bundled suite holds; its JSON report is the same bytes whatever the thread count and
//! whether it ran whole or in shards; the JUnit file parses and passes a JUnit schema; the text
//! report of the bundled circuit checks and the JUnit file of the false hypotheses are
//! snapshots; compiled models are cached and reused.

use std::path::Path;
use std::process::Command;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{redact, root, stderr, stdout, test};

#[test]
fn bundled_suite_holds_and_its_report_is_byte_stable_across_jobs_and_shards() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let p = |name: &str| out.path().join(name).display().to_string();
    let one = test(
        &[
            "specs/",
            "--jobs",
            "1",
            "--quiet",
            "--report",
            &p("one.json"),
            "--junit",
            &p("one.xml"),
        ],
        cache.path(),
    );
    assert_eq!(
        one.status.code(),
        Some(0),
        "{}{}",
        stdout(&one),
        stderr(&one)
    );
    // --quiet prints what did not pass (nothing) and the counts.
    let text = stdout(&one);
    assert!(text.starts_with("test result: "), "{text}");
    assert!(text.contains(" 0 failed, 0 unknown, 0 errors"), "{text}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p("one.json")).unwrap()).unwrap();
    assert_eq!(report["format"], "congruity-test/1");
    let units = report["units"].as_array().unwrap();
    let checks = units.iter().filter(|u| u["kind"] == "check").count();
    let proofs = units.iter().filter(|u| u["kind"] == "prove").count();
    assert!(
        checks >= 6 && proofs >= 20,
        "{checks} checks, {proofs} proofs"
    );
    // Every check names its model's files with their hashes, and its seed.
    for u in units
        .iter()
        .filter(|u| u["kind"] == "check" && !u["model"].is_null())
    {
        let files = u["model"]["files"].as_array().unwrap();
        assert!(
            files
                .iter()
                .any(|f| f["path"] == "config.json" || f["path"] == "meta.json"),
            "{u}"
        );
        assert!(
            files
                .iter()
                .all(|f| f["sha256"].as_str().unwrap().len() == 64)
        );
        assert!(u["seed"].is_u64());
    }
    // Every spec file is listed with its hash.
    let specs = report["specs"].as_array().unwrap();
    assert!(
        specs
            .iter()
            .any(|s| s["path"] == "specs/circuits/tracr_reverse.interp")
    );

    let two = test(
        &[
            "specs/",
            "--jobs",
            "2",
            "--quiet",
            "--report",
            &p("two.json"),
        ],
        cache.path(),
    );
    assert_eq!(two.status.code(), Some(0), "{}", stderr(&two));
    let read = |name: &str| std::fs::read_to_string(p(name)).unwrap();
    assert!(
        read("one.json") == read("two.json"),
        "--jobs 1 and --jobs 2 write the same JSON"
    );

    for k in 1..=2 {
        let s = test(
            &[
                "specs/",
                "--shard",
                &format!("{k}/2"),
                "--quiet",
                "--report",
                &p(&format!("s{k}.json")),
            ],
            cache.path(),
        );
        assert_eq!(s.status.code(), Some(0), "{}", stderr(&s));
    }
    let merged = Command::new(env!("CARGO_BIN_EXE_congruity"))
        .args([
            "report",
            "merge",
            &p("s2.json"),
            &p("s1.json"),
            "--out",
            &p("all.json"),
        ])
        .args(["--junit", &p("all.xml")])
        .output()
        .unwrap();
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    assert!(
        read("all.json") == read("one.json"),
        "two shards merged are the unsharded report"
    );
    assert!(
        read("all.xml") == read("one.xml"),
        "and give the same JUnit file"
    );
    // A shard alone is not the whole run.
    assert!(read("s1.json") != read("one.json"));
    let missing = Command::new(env!("CARGO_BIN_EXE_congruity"))
        .args(["report", "merge", &p("s1.json"), "--out", &p("bad.json")])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("shard 2/2 is missing"),
        "{}",
        stderr(&missing)
    );
    assert!(!Path::new(&p("bad.json")).exists());
}

/// Counts the elements of a JUnit file with a real XML parser.
fn junit_counts(xml: &str) -> (usize, usize, usize) {
    let mut reader = Reader::from_str(xml);
    let (mut cases, mut failures, mut errors) = (0, 0, 0);
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                "testcase" => cases += 1,
                "failure" => failures += 1,
                "error" => errors += 1,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    (cases, failures, errors)
}

#[test]
fn junit_of_false_hypotheses_parses_passes_the_schema_and_is_a_snapshot() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let xml_path = out.path().join("false.xml");
    let json_path = out.path().join("false.json");
    let run = test(
        &[
            "tests/specs/false",
            "--junit",
            xml_path.to_str().unwrap(),
            "--report",
            json_path.to_str().unwrap(),
        ],
        cache.path(),
    );
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    let expectations = report["summary"]["expectations"].as_u64().unwrap() as usize;
    let failed = report["summary"]["failed"].as_u64().unwrap() as usize;
    assert_eq!(junit_counts(&xml), (expectations, failed, 0));

    let schema = root().join("tests/fixtures/junit/junit.xsd");
    let lint = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&schema)
        .arg(&xml_path)
        .output()
        .expect("xmllint runs (scripts/setup installs libxml2-utils)");
    assert!(
        lint.status.success(),
        "the JUnit file fails the schema: {}",
        String::from_utf8_lossy(&lint.stderr)
    );
    insta::assert_snapshot!("junit_false_hypotheses", redact(&xml));

    // The schema is not vacuous: a test case with two outcomes, or without a name, fails it.
    let bad = out.path().join("bad.xml");
    std::fs::write(
        &bad,
        "<testsuites><testsuite name=\"s\" tests=\"1\"><testcase><failure/><error/></testcase></testsuite></testsuites>",
    )
    .unwrap();
    let lint = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&schema)
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!lint.status.success());
}

#[test]
fn text_report_of_the_bundled_circuit_checks_is_a_snapshot() {
    let cache = tempfile::tempdir().unwrap();
    let run = test(&["specs/circuits", "--jobs", "2"], cache.path());
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let text = stdout(&run);
    // Without a terminal there is no colour and no progress.
    assert!(!text.contains('\x1b'));
    assert!(stderr(&run).is_empty(), "{}", stderr(&run));
    insta::assert_snapshot!("text_circuit_checks", text);
}

#[test]
fn compiled_models_are_cached_by_content_and_reused() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("c.interp");
    let write = |body: &str| {
        std::fs::write(
            &spec,
            format!(
                "task t {{\n  vocab {{a, b}}\n  max_len 3\n}}\ninterpretation i for t {{\n  output {body}\n}}\ncheck c {{\n  model compiled(i)\n  expect implements(i)\n}}\n"
            ),
        )
        .unwrap()
    };
    write("map(|x| x, tokens)");
    let first = test(&[spec.to_str().unwrap()], cache.path());
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    let compiled = cache.path().join("compiled");
    let dirs = |p: &Path| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let before = dirs(&compiled);
    assert_eq!(before.len(), 1);
    let stamp = std::fs::metadata(before[0].join("model.safetensors"))
        .unwrap()
        .modified()
        .unwrap();
    // Unchanged: served from the cache (the files are not rewritten).
    let again = test(&[spec.to_str().unwrap()], cache.path());
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(dirs(&compiled), before);
    let after = std::fs::metadata(before[0].join("model.safetensors"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(stamp, after);
    // A changed interpretation is compiled anew, never served stale.
    write("aggregate(select(indices, indices, ==), tokens)");
    let changed = test(&[spec.to_str().unwrap()], cache.path());
    assert_eq!(changed.status.code(), Some(0), "{}", stdout(&changed));
    assert_eq!(dirs(&compiled).len(), 2);
}

#[test]
fn sampled_representations_are_cached_and_change_no_figure() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let p = |name: &str| out.path().join(name).display().to_string();
    let run = |report: &str| {
        let o = test(
            &[
                "specs/circuits/tracr_reverse.interp",
                "--filter",
                "reverse_by_length_vs_sorting",
                "--quiet",
                "--report",
                &p(report),
            ],
            cache.path(),
        );
        assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
        std::fs::read_to_string(p(report)).unwrap()
    };
    let cold = run("cold.json");
    let sampled = cache.path().join("sampled");
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for pool in std::fs::read_dir(&sampled).unwrap() {
        for f in std::fs::read_dir(pool.unwrap().path()).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    files.sort();
    // Two interpretations, 10 implementations each.
    assert_eq!(files.len(), 20, "{files:?}");
    let warm = run("warm.json");
    assert!(
        cold == warm,
        "a cached representation gives the same report"
    );
    // A damaged entry is recomputed, not trusted.
    std::fs::write(&files[3], b"not a tensor").unwrap();
    let repaired = run("repaired.json");
    assert!(repaired == cold);
    assert!(std::fs::read(&files[3]).unwrap().len() > 100);
}

#[test]
fn plots_are_written_for_each_check_that_runs_the_estimator() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let plots = out.path().join("figures");
    let run = test(
        &[
            "specs/circuits/tracr_reverse.interp",
            "--filter",
            "reverse_by_length_vs_sorting",
            "--quiet",
            "--plots",
            plots.to_str().unwrap(),
        ],
        cache.path(),
    );
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let stem = "specs_circuits_tracr_reverse.reverse_by_length_vs_sorting";
    for kind in ["selectivity", "transfer", "win-rates"] {
        let f = plots.join(format!("{stem}.{kind}.svg"));
        let svg = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        // A well-formed SVG document naming both interpretations.
        let mut reader = Reader::from_str(&svg);
        let mut root_tag = None;
        loop {
            match reader.read_event().expect("well-formed SVG") {
                Event::Start(e) if root_tag.is_none() => {
                    root_tag = Some(e.name().as_ref().to_owned())
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(root_tag.as_deref(), Some("svg"), "{kind}");
        assert!(
            svg.contains("tracr_reverse") && svg.contains("reverse_by_sorting"),
            "{kind}"
        );
    }
    assert_eq!(std::fs::read_dir(&plots).unwrap().count(), 3);
}
