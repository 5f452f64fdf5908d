//! The harness: `congruity test` on the bundled specs and on deliberately false hypotheses, its
//! reports (byte-stable JSON, shards, JUnit against a schema, text snapshots), its refusals of
//! bad input, its cache, and the library API.

mod api;
mod bad_input;
mod circuits;
mod iia_cli;
mod reports;
mod trained;
mod verdicts;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `congruity test ARGS` from the repository root, with a cache of its own.
pub fn test(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_congruity"))
        .current_dir(root())
        .arg("test")
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .output()
        .expect("the binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Hashes and the tool version replaced, so snapshots follow the verdicts, not the bytes of the
/// files or the release.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(|c: char| c.is_ascii_hexdigit()) {
        let run = rest[i..]
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(rest.len() - i);
        out.push_str(&rest[..i]);
        if run == 64 {
            out.push_str("[sha256]");
        } else {
            out.push_str(&rest[i..i + run]);
        }
        rest = &rest[i + run..];
    }
    out.push_str(rest);
    out.replace(
        &format!("congruity {}", env!("CARGO_PKG_VERSION")),
        "congruity [version]",
    )
}
