//! The README cannot drift from the tool: every command of its `sh` blocks runs as written (in
//! order, from a scratch directory that sees the repository's files, with the built binary on the
//! PATH), every flag of its command table is one the subcommand takes, and the language tour is
//! the text of the file it is captioned with.
//!
//! `scripts/demo` and `scripts/test` (the set-up block) are not run here: CI runs the demo from a
//! copy of the repository (`scripts/check-standalone`) and the tests are this very run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md is readable")
}

/// The fenced blocks of `text` whose info string is `lang` (`""` for bare fences), in order.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(info)) => {
                if info.trim() == lang {
                    current = Some(String::new());
                } else {
                    // A block of another language: skip to its end.
                    current = Some("\u{0}skip".into());
                }
            }
            (Some(body), Some(_)) => {
                if !body.starts_with('\u{0}') {
                    out.push(std::mem::take(body));
                }
                current = None;
            }
            (Some(body), None) => {
                if !body.starts_with('\u{0}') {
                    body.push_str(line);
                    body.push('\n');
                }
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "README.md has an unclosed code fence");
    out
}

/// The commands of an `sh` block: one per line, `\` continuations joined, comments dropped.
fn commands(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        let line = line.trim_end();
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let cmd = pending.trim().to_string();
        pending.clear();
        if !cmd.is_empty() && !cmd.starts_with('#') {
            out.push(cmd);
        }
    }
    out
}

/// A scratch directory holding links to the repository's tracked top-level entries, so that
/// commands read the bundled files and write their outputs (`out/...`) outside the checkout.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    for entry in ["specs", "tests", "docs", "scripts", "grammar", "README.md"] {
        std::os::unix::fs::symlink(root().join(entry), dir.path().join(entry))
            .expect("symlink into the scratch directory");
    }
    dir
}

fn path_with_binary() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_congruity"))
        .parent()
        .expect("the binary has a directory")
        .to_path_buf();
    match std::env::var_os("PATH") {
        Some(p) => format!("{}:{}", bin.display(), p.to_string_lossy()),
        None => bin.display().to_string(),
    }
}

#[test]
fn every_readme_command_runs_as_written() {
    let text = readme();
    let sh = blocks(&text, "sh");
    assert!(
        sh.len() >= 2,
        "README.md should have the set-up block and the first-hour block"
    );
    let dir = scratch();
    let path = path_with_binary();
    let mut ran = 0;
    for cmd in sh.iter().flat_map(|b| commands(b)) {
        if let Some(script) = cmd
            .split_whitespace()
            .next()
            .filter(|w| w.starts_with("scripts/"))
        {
            let file = root().join(script);
            assert!(
                file.is_file(),
                "README names `{script}`, which does not exist"
            );
            continue;
        }
        assert!(
            cmd.starts_with("congruity "),
            "README command `{cmd}` should start with `congruity`"
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail\n{cmd}"))
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "README command failed ({}):\n  {cmd}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    // One command per subcommand at least.
    assert!(ran >= 10, "only {ran} README commands ran");
}

#[test]
fn the_command_table_names_only_flags_the_subcommands_take() {
    let text = readme();
    let mut rows = 0;
    for line in text.lines().filter(|l| l.starts_with("| `congruity ")) {
        let synopsis = line
            .trim_start_matches("| `")
            .split('`')
            .next()
            .expect("a synopsis in backticks");
        let mut words = synopsis.split_whitespace().skip(1).peekable();
        let mut sub = vec![words.next().expect("a subcommand")];
        // A nested subcommand (`report merge`): a bare lowercase word after the first.
        if let Some(next) = words
            .peek()
            .filter(|w| w.chars().all(|c| c.is_ascii_lowercase()))
        {
            sub.push(next);
        }
        let sub_text = sub.join(" ");
        let out = Command::new(env!("CARGO_BIN_EXE_congruity"))
            .args(&sub)
            .arg("--help")
            .output()
            .expect("binary runs");
        assert!(out.status.success(), "`congruity {sub_text} --help` fails");
        let sub = sub_text;
        let help = String::from_utf8_lossy(&out.stdout);
        for flag in synopsis
            .split(|c: char| c.is_whitespace() || "[]|".contains(c))
            .filter(|w| w.starts_with("--"))
        {
            let flag = flag.trim_end_matches("...");
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "README's `{synopsis}` names {flag}, which `congruity {sub}` does not take:\n{help}"
            );
        }
        rows += 1;
    }
    assert!(rows >= 10, "the command table has only {rows} rows");
}

#[test]
fn the_language_tour_is_the_file_it_is_captioned_with() {
    let text = readme();
    let mut checked = 0;
    for block in blocks(&text, "") {
        let mut lines = block.lines();
        let Some(caption) = lines.next().and_then(|l| l.strip_prefix("# ")) else {
            continue;
        };
        if !caption.ends_with(".interp") {
            continue;
        }
        let body: String = lines.map(|l| format!("{l}\n")).collect();
        let file = std::fs::read_to_string(root().join(caption))
            .unwrap_or_else(|e| panic!("the tour is captioned `{caption}`, unreadable: {e}"));
        assert!(
            file.contains(&body),
            "the tour block captioned `{caption}` is not that file's text; copy it again"
        );
        checked += 1;
    }
    assert!(checked >= 1, "README.md has no captioned tour block");
}
