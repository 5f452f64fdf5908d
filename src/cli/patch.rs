//! `congruity patch`: activation patching of one hook (optionally one head, some positions)
//! from a source run into a base run.
//!
//! ```text
//! congruity patch --model DIR --tokens BASE.json --source SRC.json --hook NAME [--head H]
//!                 [--pos P...] --out OUT.safetensors
//! ```
//!
//! OUT holds `patched_logits`, `source_logits` and `base_logits` (the unpatched base run).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::intervene::{self, InterveneError};
use crate::model::{self, HookPoint, Site, TokenBatch, io::write_safetensors};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model directory (TransformerLens or tracr layout).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,

    /// Base token ids: JSON `{"tokens": [[id, ...], ...]}`.
    #[arg(long, value_name = "BASE.json")]
    pub tokens: PathBuf,

    /// Source token ids, same shape as the base: row i patches row i.
    #[arg(long, value_name = "SRC.json")]
    pub source: PathBuf,

    /// Hook to patch, by TransformerLens name (e.g. blocks.0.attn.hook_z).
    #[arg(long, value_name = "NAME")]
    pub hook: String,

    /// Patch only this head (hooks with a head axis).
    #[arg(long, value_name = "H")]
    pub head: Option<usize>,

    /// Patch only these positions (query positions for scores and patterns).
    #[arg(long = "pos", value_name = "P", num_args = 1..)]
    pub pos: Vec<usize>,

    /// Output safetensors file.
    #[arg(long, value_name = "OUT.safetensors")]
    pub out: PathBuf,

    /// Compute on CUDA device 0 (needs a build with `--features cuda`).
    #[arg(long)]
    pub cuda: bool,
}

pub fn run(args: Args) -> ExitCode {
    super::exit_code(execute(&args))
}

fn execute(args: &Args) -> Result<(), InterveneError> {
    let hook: HookPoint = args.hook.parse().map_err(model::ModelError::from)?;
    crate::files::check_output_file(
        &args.out,
        &[
            args.model.as_path(),
            args.tokens.as_path(),
            args.source.as_path(),
        ],
    )
    .map_err(model::ModelError::from)?;
    let device = model::device(args.cuda)?;
    let loaded = model::load(&args.model, &device)?;
    let base = TokenBatch::from_json_file(&args.tokens)?;
    let source = TokenBatch::from_json_file(&args.source)?;
    let mut site = Site::hook(hook);
    site.head = args.head;
    if !args.pos.is_empty() {
        site.positions = Some(args.pos.clone());
    }
    let out = intervene::patch(&loaded.transformer, &base, &source, &[site])?;
    write_safetensors(
        &args.out,
        [
            ("patched_logits".to_string(), &out.patched_logits),
            ("source_logits".to_string(), &out.source_logits),
            ("base_logits".to_string(), &out.base_logits),
        ],
    )?;
    let effect = (&out.patched_logits - &out.base_logits)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .map_err(|source| model::ModelError::Compute {
            context: "measuring the patch effect".into(),
            source,
        })?;
    eprintln!(
        "wrote {} (patched_logits, source_logits, base_logits); max |patched - base| = {effect}",
        args.out.display()
    );
    Ok(())
}
