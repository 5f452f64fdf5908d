//! The model loader (and a forward with every hook cached) on a fixture directory with one file
//! replaced by the input: the first byte picks the fixture and the file.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use congruity::model::{self, HookSelection, RunOptions, TokenBatch};
use libfuzzer_sys::fuzz_target;

/// (fixture case, file the input replaces).
const TARGETS: &[(&str, &str)] = &[
    ("transformer_lens/ln_relu_2l", "config.json"),
    ("transformer_lens/ln_relu_2l", "model.safetensors"),
    ("tracr/reverse", "meta.json"),
    ("tracr/reverse", "weights.safetensors"),
    ("tracr/reverse", "residual_labels.json"),
    ("hf/neox_tiny", "config.json"),
    ("hf/llama_gqa_tiny", "config.json"),
    ("hf/llama_gqa_tiny", "model.safetensors"),
];

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("congruity-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(case)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (case, file) = TARGETS[pick as usize % TARGETS.len()];
    let dir = scratch().join("case");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(fixture(case)).unwrap().flatten() {
        let p = e.path();
        if p.is_file() {
            std::fs::copy(&p, dir.join(e.file_name())).unwrap();
        }
    }
    std::fs::write(dir.join(file), rest).unwrap();
    let Ok(loaded) = model::load(&dir, &candle_core::Device::Cpu) else {
        return;
    };
    let m = &loaded.transformer;
    let cfg = m.config();
    let row: Vec<u32> = (0..cfg.n_ctx.min(3)).map(|i| (i % cfg.d_vocab) as u32).collect();
    if let Ok(t) = TokenBatch::new(&[row]) {
        let hooks = m.select_hooks(&["*"]).unwrap_or(HookSelection::None);
        let _ = m.forward(&t, &RunOptions::cache(hooks));
    }
});
