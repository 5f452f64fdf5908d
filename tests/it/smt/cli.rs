//! `congruity prove` through the binary: verdict lines, exit codes (0 proved, 1 refuted,
//! 2 unknown, 3 unusable input) and the byte-stable JSON report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn congruity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_congruity"))
        .current_dir(root())
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("run congruity")
}

/// Two goals on the wrong reverse: both refuted.
const REVERSE_WRONG: &str = "import \"SPECS/alternatives/reverse_wrong.interp\"\nprove wrong: equivalent(tracr_reverse, reverse_wrong)\nprove well_formed(reverse_wrong)\n";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A spec file in a fresh temporary directory (removed on drop); `SPECS/` in its text stands for
/// the absolute path of the project's `specs/`, so it can import the real specs without living
/// among them.
struct TempSpec(PathBuf);

impl TempSpec {
    fn new(tag: &str, text: &str) -> TempSpec {
        let dir =
            std::env::temp_dir().join(format!("congruity-smt-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("spec.interp");
        let specs = root().join("specs");
        std::fs::write(
            &file,
            text.replace("SPECS/", &format!("{}/", specs.display())),
        )
        .unwrap();
        TempSpec(file)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempSpec {
    fn drop(&mut self) {
        if let Some(d) = self.0.parent() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

#[test]
fn all_proved_exits_0() {
    let o = congruity(&["prove", "specs/alternatives/sort_by_counting.interp"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("proved   equivalent_tracr_sort_sort_by_counting (equivalent(tracr_sort, sort_by_counting))"), "{out}");
    assert!(out.ends_with("3 proved, 0 refuted, 0 unknown\n"), "{out}");
}

#[test]
fn refuted_exits_1_and_prints_the_counterexample() {
    let spec = TempSpec::new("refuted", REVERSE_WRONG);
    let o = congruity(&["prove", &spec.path(), "--lengths"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("refuted  wrong (equivalent(tracr_reverse, reverse_wrong)) "),
        "{out}"
    );
    // The input as `congruity eval` reads it, and what differs there.
    assert!(out.contains("\n    input: "), "{out}");
    assert!(out.contains("\n    output at 0: "), "{out}");
    assert!(out.contains("\n    n=1   refuted"), "{out}");
    assert!(out.contains("proved   well_formed_reverse_wrong"), "{out}");
    assert!(out.ends_with("1 proved, 1 refuted, 0 unknown\n"), "{out}");
    // The printed input replays through `congruity eval` with the same outputs.
    let input = out
        .lines()
        .find_map(|l| l.strip_prefix("    input: "))
        .unwrap();
    let good = congruity(&[
        "eval",
        &spec.path(),
        "--program",
        "tracr_reverse",
        "--input",
        input,
    ]);
    let bad = congruity(&[
        "eval",
        &spec.path(),
        "--program",
        "reverse_wrong",
        "--input",
        input,
    ]);
    assert!(
        good.status.success() && bad.status.success(),
        "{}{}",
        stderr(&good),
        stderr(&bad)
    );
    assert_ne!(stdout(&good), stdout(&bad));
}

#[test]
fn unknown_exits_2_and_refuted_wins_over_unknown() {
    let hard = "import \"SPECS/toy/sort.interp\"\n\
        interpretation sort_by_counting for sort {\n\
          smaller    = select(tokens, tokens, <)\n\
          equal      = select(tokens, tokens, ==)\n\
          earlier    = select(indices, indices, <)\n\
          target_pos = selector_width(smaller or (equal and earlier))\n\
          output       aggregate(select(target_pos, indices, ==), tokens)\n\
        }\n\
        prove hard: equivalent(sort, sort_by_counting) timeout 0.001\n";
    let spec = TempSpec::new("unknown", hard);
    let o = congruity(&["prove", &spec.path()]);
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("unknown  hard "), "{}", stdout(&o));
    assert!(stdout(&o).contains("reason: length"), "{}", stdout(&o));
    let both = format!(
        "{hard}interpretation off_by_one for sort {{\n  output map(|t| t + 1, tokens)\n}}\nprove wrong: equivalent(sort, off_by_one)\n"
    );
    let spec = TempSpec::new("both", &both);
    let o = congruity(&["prove", &spec.path()]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    // --check runs one proof only.
    let o = congruity(&["prove", &spec.path(), "--check", "wrong"]);
    assert_eq!(code(&o), 1);
    assert_eq!(
        stdout(&o)
            .lines()
            .filter(|l| l.starts_with("refuted") || l.starts_with("unknown"))
            .count(),
        1,
        "{}",
        stdout(&o)
    );
}

#[test]
fn bad_input_exits_3() {
    let o = congruity(&[
        "prove",
        "specs/alternatives/sort_by_counting.interp",
        "--check",
        "nope",
    ]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("no proof named `nope`"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("equivalent_tracr_sort_sort_by_counting"),
        "{}",
        stderr(&o)
    );
    let o = congruity(&["prove", "specs/does_not_exist.interp"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("does_not_exist.interp"),
        "{}",
        stderr(&o)
    );
    let o = congruity(&[
        "prove",
        "specs/alternatives/sort_by_counting.interp",
        "--timeout",
        "0",
    ]);
    assert_eq!(code(&o), 3);
}

#[test]
fn json_is_stable_and_sorted() {
    let spec = TempSpec::new("json", REVERSE_WRONG);
    let o = congruity(&["prove", &spec.path(), "--json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let again = congruity(&["prove", &spec.path(), "--json", "--sequential"]);
    assert_eq!(
        stdout(&o),
        stdout(&again),
        "same spec, same bytes, whatever the parallelism"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v.get("timings").is_none());
    let with_t = congruity(&["prove", &spec.path(), "--json", "--timings"]);
    let t: serde_json::Value = serde_json::from_str(&stdout(&with_t)).unwrap();
    assert!(t["timings"]["wrong"]["total_s"].is_number());
    // The file path is the temp dir's; normalise it for the snapshot.
    let text = stdout(&o).replace(&spec.path(), "SPEC");
    insta::assert_snapshot!("prove_json_reverse_wrong", text);
    assert!(Path::new(&spec.path()).exists());
}

/// A `sufficient` circuit that cuts every path from the tokens to the output is proved, and the
/// report says the proof holds by construction (text and JSON).
#[test]
fn a_sufficiency_true_by_construction_says_so() {
    let o = congruity(&["prove", "specs/circuits/tracr_count_less_freq.interp"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("proved   sufficient_hist_only (sufficient(hist_only))")
            && out.contains(
                "\n    trivially: every path from `tokens` to the output passes through `hist`"
            ),
        "{out}"
    );
    let o = congruity(&[
        "prove",
        "specs/circuits/tracr_count_less_freq.interp",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let why = json["proofs"][0]["trivially"].as_str().unwrap_or_default();
    assert!(why.contains("`hist`"), "{json}");
}
