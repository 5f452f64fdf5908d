//! The models checks run on: directories named by the spec, and interpretations the harness
//! compiles itself into a content-addressed cache.
//!
//! A compiled model lives at `CACHE/compiled/<interpretation>-<key>`, where the key hashes the
//! tool version, the interpretation's [fingerprint](crate::lang::ir::Program::fingerprint) (its
//! graph and task, not where they are written), the compile seed and the compiler's options. A
//! changed interpretation or task gets a new key, so a stale model is never served; a directory
//! is put in place whole (the compiler writes it atomically) and reused as long as it is
//! complete. Deleting the cache is always safe.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::report::FileHash;
use crate::compile::{CompileError, CompileOptions, Provenance, compile_checked};
use crate::lang::ir::{ModelRef, Program};

/// Where `congruity test` caches what it builds, unless told otherwise (like cargo's target
/// directory: never stale, safe to delete).
pub const DEFAULT_CACHE_DIR: &str = "target/congruity";

/// `"../models/reverse"` / `compiled(tracr_reverse)` / `compiled(tracr_reverse, seed 3)`.
pub fn model_name(m: &ModelRef) -> String {
    match m {
        ModelRef::Dir(p) => format!("\"{}\"", p.display()),
        ModelRef::Compiled {
            program,
            seed: None,
        } => format!("compiled({program})"),
        ModelRef::Compiled {
            program,
            seed: Some(s),
        } => format!("compiled({program}, seed {s})"),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache directory of `program` compiled with `seed`.
pub fn compiled_dir(cache: &Path, program: &Program, seed: u64) -> PathBuf {
    let mut h = Sha256::new();
    h.update(b"congruity-compiled/1\n");
    h.update(super::report::tool_version().as_bytes());
    h.update(b"\n");
    h.update(program.fingerprint().as_bytes());
    h.update(format!("\nseed {seed}\n{:?}\n", CompileOptions::default()).as_bytes());
    let key = hex(&h.finalize());
    cache
        .join("compiled")
        .join(format!("{}-{}", program.name, &key[..20]))
}

/// Whether a cached directory is complete (the compiler writes it whole, its marker included).
fn complete(dir: &Path) -> bool {
    [
        crate::files::MARKER,
        crate::artifact::MODEL_FILE,
        crate::artifact::CONFIG_FILE,
        crate::artifact::SIDECAR_FILE,
    ]
    .iter()
    .all(|f| dir.join(f).is_file())
}

/// `program` compiled with `seed`, from the cache or compiled now (then cached). Returns the
/// directory and whether it was already there.
pub fn ensure_compiled(
    cache: &Path,
    program: &Program,
    seed: u64,
) -> Result<(PathBuf, bool), CompileError> {
    let dir = compiled_dir(cache, program, seed);
    if complete(&dir) {
        return Ok((dir, true));
    }
    let (mut compiled, _) = compile_checked(program, &CompileOptions::default(), seed)?;
    // The model depends on the interpretation and its task only, not on the file they are
    // written in: the key says which, so the provenance names no file.
    compiled.provenance = Provenance {
        spec: None,
        spec_sha256: None,
        program: program.name.clone(),
        seed: Some(seed),
        family: Vec::new(),
        sample: None,
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| CompileError::write(parent.to_path_buf(), e))?;
    }
    compiled.write(&dir)?;
    Ok((dir, false))
}

/// The sha256 of a file's bytes.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Every regular file under `dir` (relative paths with `/`, sorted) with its sha256; congruity's
/// output marker is left out (it says who wrote the directory, not what the model is).
pub fn dir_hashes(dir: &Path) -> std::io::Result<Vec<FileHash>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let name = entry.file_name();
            let r = rel.join(&name);
            let meta = std::fs::metadata(entry.path())?;
            if meta.is_dir() {
                stack.push(r);
            } else if meta.is_file() && name != crate::files::MARKER {
                let path = r
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push(FileHash {
                    sha256: file_sha256(&entry.path())?,
                    path,
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_follows_the_program_not_its_file() {
        let text = |comment: &str, max_len: usize| {
            format!(
                "{comment}\ntask t {{\n vocab {{a, b}}\n max_len {max_len}\n}}\ninterpretation i for t {{\n output map(|x| x, tokens)\n}}\n"
            )
        };
        let load =
            |t: String| crate::lang::check_str("x.interp", &t).unwrap().programs["i"].clone();
        let cache = Path::new("c");
        let a = compiled_dir(cache, &load(text("", 3)), 0);
        // Comments and layout move the source, not the program.
        assert_eq!(a, compiled_dir(cache, &load(text("# a comment\n\n", 3)), 0));
        // The task is part of what is compiled; so is the seed.
        assert_ne!(a, compiled_dir(cache, &load(text("", 4)), 0));
        assert_ne!(a, compiled_dir(cache, &load(text("", 3)), 1));
    }
}
