//! Files the tool reads and writes, shared by every stage: inputs are read only when they are
//! regular files of bounded size (a FIFO, `/dev/zero` or a 4 GB "spec" is refused by name, not
//! read until memory runs out), and outputs never replace an input, a directory holding an input,
//! or a directory congruity did not write.
//!
//! A directory congruity writes (a compiled model, a sample pool) carries a [`MARKER`] file; only
//! such a directory, or an empty one, may be replaced by a later `--out`.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The file that marks a directory as congruity output, safe to replace with a new output.
pub const MARKER: &str = ".congruity-output";

/// The largest spec file (or import) read: far above any real spec, far below a runaway read.
pub const MAX_SPEC_BYTES: u64 = 16 << 20;

/// The largest JSON file (config, sidecar, token list, manifest) read.
pub const MAX_JSON_BYTES: u64 = 256 << 20;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FileError {
    #[error("cannot read `{}`: it is {kind}, not a regular file", path.display())]
    #[diagnostic(code(congruity::io))]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "cannot read `{}`: it holds {size} bytes, more than the {limit} bytes read for {what}",
        path.display()
    )]
    #[diagnostic(code(congruity::io))]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
        what: &'static str,
    },
    #[error(
        "`{}` is not UTF-8 text: invalid byte 0x{byte:02x} at byte offset {offset} (line {line}, column {column})",
        path.display()
    )]
    #[diagnostic(code(congruity::io))]
    NotUtf8 {
        path: PathBuf,
        byte: u8,
        offset: usize,
        line: usize,
        column: usize,
    },
    #[error("cannot read `{}`: {source}", path.display())]
    #[diagnostic(code(congruity::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to write `{}`: it would overwrite the input `{}`", output.display(), input.display())]
    #[diagnostic(
        code(congruity::output),
        help("write the output to a path that is not one of the command's inputs")
    )]
    OverwritesInput { output: PathBuf, input: PathBuf },
    #[error("refusing to write `{}`: it holds the input `{}`", output.display(), input.display())]
    #[diagnostic(
        code(congruity::output),
        help("an output directory is replaced as a whole; choose one that holds no input")
    )]
    HoldsInput { output: PathBuf, input: PathBuf },
    #[error("refusing to write `{}`: it is an existing file of the input directory `{}`", output.display(), input.display())]
    #[diagnostic(
        code(congruity::output),
        help("write outputs to a new file, outside the model directory or under a new name")
    )]
    InInputDir { output: PathBuf, input: PathBuf },
    #[error("refusing to replace `{}`: {reason}", output.display())]
    #[diagnostic(
        code(congruity::output),
        help("choose a new path, or remove it yourself if it is no longer needed")
    )]
    NotOurs { output: PathBuf, reason: String },
    #[error("cannot write `{}`: {source}", path.display())]
    #[diagnostic(code(congruity::io))]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `path` is, when it is not a regular file.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// The bytes of the regular file `path`, at most `limit` of them (`what` names the kind of file in
/// the error). The type is checked before the file is opened, so a FIFO never blocks.
pub fn read_bytes(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&meta),
        });
    }
    let too_large = |size| FileError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit,
        what,
    };
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .map_err(io)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    // The file may have grown since it was measured.
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The UTF-8 text of the regular file `path`; invalid bytes are reported with their offset.
pub fn read_text(path: &Path, limit: u64, what: &'static str) -> Result<String, FileError> {
    let bytes = read_bytes(path, limit, what)?;
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let before = &bytes[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // Valid UTF-8 up to `offset`: count characters, not bytes.
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        FileError::NotUtf8 {
            path: path.to_path_buf(),
            byte: bytes[offset],
            offset,
            line,
            column,
        }
    })
}

/// `p` made absolute and with `.` / `..` removed, symlinks resolved as far as the path exists (a
/// path that does not exist yet is resolved through its nearest existing ancestor).
pub fn resolve(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    let absolute = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut clean = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    // Resolve the longest existing prefix, keep the rest as written.
    let mut rest = Vec::new();
    let mut head = clean.clone();
    loop {
        if let Ok(c) = std::fs::canonicalize(&head) {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (head.file_name().map(|n| n.to_os_string()), head.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                head = parent.to_path_buf();
            }
            _ => return clean,
        }
    }
}

/// Refuses an output file `out` that is an input file, an existing file inside an input
/// directory (a model directory's weights, config or tokenizer), or an existing directory.
pub fn check_output_file(out: &Path, inputs: &[&Path]) -> Result<(), FileError> {
    let target = resolve(out);
    let exists = std::fs::symlink_metadata(out).is_ok();
    if target.is_dir() {
        return Err(FileError::NotOurs {
            output: out.to_path_buf(),
            reason: "it is a directory, and the output is a file".into(),
        });
    }
    for input in inputs {
        let inp = resolve(input);
        if inp == target {
            return Err(FileError::OverwritesInput {
                output: out.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
        if exists && inp.is_dir() && target.starts_with(&inp) {
            return Err(FileError::InInputDir {
                output: out.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Refuses an output directory `out` that is or holds an input, or that exists and was not
/// written by congruity (no [`MARKER`]) and is not empty.
pub fn check_output_dir(out: &Path, inputs: &[&Path]) -> Result<(), FileError> {
    let target = resolve(out);
    for input in inputs {
        let inp = resolve(input);
        if inp == target {
            return Err(FileError::OverwritesInput {
                output: out.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
        if inp.starts_with(&target) {
            return Err(FileError::HoldsInput {
                output: out.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
    }
    replaceable_dir(out)
}

/// Whether an existing `dir` may be replaced by a new output: absent, empty, or marked as ours.
pub fn replaceable_dir(dir: &Path) -> Result<(), FileError> {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return Ok(());
    };
    let not_ours = |reason: &str| FileError::NotOurs {
        output: dir.to_path_buf(),
        reason: reason.into(),
    };
    if meta.file_type().is_symlink() {
        return Err(not_ours("it is a symbolic link"));
    }
    if !meta.is_dir() {
        return Err(not_ours("it is a file, and the output is a directory"));
    }
    if dir.join(MARKER).is_file() {
        return Ok(());
    }
    let empty = std::fs::read_dir(dir)
        .map(|mut it| it.next().is_none())
        .unwrap_or(false);
    if empty {
        Ok(())
    } else {
        Err(not_ours(&format!(
            "it is a directory congruity did not write (it has no {MARKER} file)"
        )))
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `dir`'s parent (`.` for a bare name) and file name.
fn parent_and_name(dir: &Path) -> Result<(PathBuf, String), FileError> {
    let name = dir
        .file_name()
        .ok_or_else(|| FileError::NotOurs {
            output: dir.to_path_buf(),
            reason: "the output path has no directory name".into(),
        })?
        .to_string_lossy()
        .into_owned();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

/// Removes the temporary siblings `.NAME.tmp-PID-N` / `.NAME.old-PID-N` that a killed run of
/// process PID left behind (never those of a process still running).
fn remove_stale_siblings(parent: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = [".tmp-", ".old-"]
            .iter()
            .find_map(|tag| file.strip_prefix(&format!(".{name}{tag}")))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let p = e.path();
            if p.is_dir() {
                let _ = std::fs::remove_dir_all(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// Swaps two existing paths in one step (Linux `renameat2(RENAME_EXCHANGE)`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Builds a directory with `fill` under a temporary sibling name, marks it as congruity output,
/// and only then puts it at `dir`: by one atomic exchange where `dir` exists (Linux), else by a
/// rename. An existing `dir` is replaced only when it is ours or empty. A run killed at any
/// point leaves `dir` absent, as it was, or complete — never partial — and the next run clears
/// what the killed one left beside it.
pub fn replace_dir<E: From<FileError>>(
    dir: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    replaceable_dir(dir)?;
    let (parent, name) = parent_and_name(dir)?;
    let write_err = |path: &Path, source| FileError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(&parent).map_err(|e| write_err(&parent, e))?;
    remove_stale_siblings(&parent, &name);
    let sibling = |tag: &str| {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        parent.join(format!(".{name}.{tag}-{}-{n}", std::process::id()))
    };
    let tmp = sibling("tmp");
    std::fs::create_dir(&tmp).map_err(|e| write_err(&tmp, e))?;
    let filled = fill(&tmp)
        .and_then(|()| write_marker(&tmp).map_err(|e| E::from(write_err(&tmp.join(MARKER), e))));
    if let Err(e) = filled {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        if exchange(&tmp, dir).is_ok() {
            // `tmp` now holds the previous version.
            let _ = std::fs::remove_dir_all(&tmp);
            return Ok(());
        }
        // No atomic exchange here: the previous version steps aside for the new one.
        let old = sibling("old");
        if let Err(e) = std::fs::rename(dir, &old) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(write_err(dir, e).into());
        }
        if let Err(e) = std::fs::rename(&tmp, dir) {
            let _ = std::fs::rename(&old, dir);
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(write_err(dir, e).into());
        }
        let _ = std::fs::remove_dir_all(old);
        return Ok(());
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(write_err(dir, e).into());
    }
    Ok(())
}

/// Writes `bytes` to a temporary sibling of `path`, then renames it over `path`: a run killed at
/// any point leaves `path` as it was or complete.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let (parent, name) = parent_and_name(path)?;
    remove_stale_siblings(&parent, &name);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = parent.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        FileError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Marks `dir` as congruity output (see [`MARKER`]).
pub fn write_marker(dir: &Path) -> std::io::Result<()> {
    std::fs::write(
        dir.join(MARKER),
        concat!(
            "written by congruity ",
            env!("CARGO_PKG_VERSION"),
            "; a later output naming this directory replaces it\n"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_regular_files_are_refused_before_opening() {
        let e = read_bytes(Path::new("/dev/zero"), 10, "a spec").unwrap_err();
        assert!(
            matches!(
                e,
                FileError::NotRegular {
                    kind: "a character device",
                    ..
                }
            ),
            "{e}"
        );
        let e = read_bytes(Path::new("/"), 10, "a spec").unwrap_err();
        assert!(
            matches!(
                e,
                FileError::NotRegular {
                    kind: "a directory",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn size_limit_and_utf8_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"ab\ncd\xffe").unwrap();
        let e = read_bytes(&p, 3, "a spec").unwrap_err();
        assert!(
            matches!(
                e,
                FileError::TooLarge {
                    size: 7,
                    limit: 3,
                    ..
                }
            ),
            "{e}"
        );
        let e = read_text(&p, 100, "a spec").unwrap_err();
        match e {
            FileError::NotUtf8 {
                byte,
                offset,
                line,
                column,
                ..
            } => assert_eq!((byte, offset, line, column), (0xff, 5, 2, 3)),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn outputs_never_replace_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m");
        std::fs::create_dir(&model).unwrap();
        std::fs::write(model.join("model.safetensors"), b"w").unwrap();
        let spec = dir.path().join("s.interp");
        std::fs::write(&spec, b"s").unwrap();
        // The weights, the spec (also through `..`), a directory.
        let weights = model.join("model.safetensors");
        assert!(check_output_file(&weights, &[&model]).is_err());
        let dotted = model.join("../s.interp");
        assert!(check_output_file(&dotted, &[&spec]).is_err());
        assert!(check_output_file(&model, &[]).is_err());
        // A new file beside the weights is fine.
        assert!(check_output_file(&model.join("cache.safetensors"), &[&model]).is_ok());
        // A directory that holds the spec, or one that is not ours.
        assert!(matches!(
            check_output_dir(dir.path(), &[&spec]),
            Err(FileError::HoldsInput { .. })
        ));
        assert!(matches!(
            check_output_dir(&model, &[]),
            Err(FileError::NotOurs { .. })
        ));
        assert!(check_output_dir(&spec, &[]).is_err());
        write_marker(&model).unwrap();
        assert!(check_output_dir(&model, &[&spec]).is_ok());
        let empty = dir.path().join("e");
        std::fs::create_dir(&empty).unwrap();
        assert!(check_output_dir(&empty, &[]).is_ok());
        assert!(check_output_dir(&dir.path().join("new/deeper"), &[&spec]).is_ok());
    }
}
