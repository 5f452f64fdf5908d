//! `congruity fmt [--check] PATH...`: rewrite spec files in the canonical layout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::check::{collect_specs, eprint_error};
use crate::lang::{ErrorKind, LangError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not write anything; exit 1 and name the files whose layout would change.
    #[arg(long)]
    pub check: bool,
    /// Spec files, or directories searched recursively for `*.interp` files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let mut failed = false;
    let mut would_change = Vec::new();
    for p in &args.paths {
        let files = match collect_specs(p) {
            Ok(f) => f,
            Err(e) => {
                eprint_error(&e);
                failed = true;
                continue;
            }
        };
        for f in files {
            match format_one(&f, args.check) {
                Ok(true) if args.check => would_change.push(f),
                Ok(true) => println!("formatted {}", f.display()),
                Ok(false) => {}
                Err(e) => {
                    eprint_error(&e);
                    failed = true;
                }
            }
        }
    }
    for f in &would_change {
        println!("would reformat {}", f.display());
    }
    if failed || !would_change.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Formats one file; returns whether its text changes (and, unless `check`, writes it).
fn format_one(path: &Path, check: bool) -> Result<bool, LangError> {
    let text = crate::files::read_text(path, crate::files::MAX_SPEC_BYTES, "a spec file")
        .map_err(|e| LangError::new(ErrorKind::Io, e.to_string()))?;
    let formatted = crate::lang::fmt::format_source(&path.display().to_string(), &text)?;
    if formatted == text {
        return Ok(false);
    }
    if !check {
        write_atomically(path, &formatted)?;
    }
    Ok(true)
}

/// Writes through a temporary file in the same directory and a rename, so a crash or a full disk
/// never leaves a half-written spec behind.
fn write_atomically(path: &Path, text: &str) -> Result<(), LangError> {
    let io = |what: &str, e: std::io::Error| {
        LangError::new(
            ErrorKind::Io,
            format!("cannot {what} `{}`: {e}", path.display()),
        )
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.fmt-tmp", std::process::id()));
    let result = (|| {
        std::fs::write(&tmp, text).map_err(|e| io("write a temporary file next to", e))?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())
                .map_err(|e| io("copy the permissions of", e))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| io("replace", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
