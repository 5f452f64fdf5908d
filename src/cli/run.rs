//! `congruity run`: run a model on token ids and save activations, or on input symbols and
//! print the decoded answer.
//!
//! ```text
//! congruity run --model DIR --tokens FILE --cache OUT.safetensors [--hooks GLOB]...
//! congruity run --model DIR --input "a b c" [--json] [--cache OUT.safetensors [--hooks GLOB]...]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ArgGroup;

use crate::model::{
    self, HookSelection, LoadedModel, ModelError, OutputValue, RunOptions, TokenBatch,
};

#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("inputs").required(true).args(["tokens", "input"])))]
pub struct Args {
    /// Model directory: TransformerLens (model.safetensors + config.json [+ congruity.json])
    /// or tracr (weights.safetensors + residual_labels.json + meta.json).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,

    /// Token ids to run: JSON `{"tokens": [[id, ...], ...]}`, rows of equal length.
    #[arg(long, value_name = "FILE", requires = "cache")]
    pub tokens: Option<PathBuf>,

    /// Input symbols separated by spaces, for models with a vocabulary (compiled or tracr);
    /// BOS is prepended when the model uses one.
    #[arg(long, value_name = "SYMBOLS")]
    pub input: Option<String>,

    /// Write `logits` and every requested hook (TransformerLens names) to this safetensors file.
    #[arg(long, value_name = "OUT.safetensors")]
    pub cache: Option<PathBuf>,

    /// Hooks to keep, by glob (e.g. 'blocks.*.attn.hook_z', '*' for all); repeatable.
    #[arg(long = "hooks", value_name = "GLOB", requires = "cache")]
    pub hooks: Vec<String>,

    /// Print `{"output": [...]}` instead of space-separated values (with --input).
    #[arg(long, requires = "input")]
    pub json: bool,

    /// Compute on CUDA device 0 (needs a build with `--features cuda`).
    #[arg(long)]
    pub cuda: bool,
}

pub fn run(args: Args) -> ExitCode {
    super::exit_code(execute(&args))
}

fn execute(args: &Args) -> Result<(), ModelError> {
    let device = model::device(args.cuda)?;
    let loaded: LoadedModel = model::load(&args.model, &device)?;
    let m = &loaded.transformer;
    let tokens = match (&args.tokens, &args.input) {
        (Some(path), _) => TokenBatch::from_json_file(path)?,
        (None, Some(input)) => {
            let ids = loaded.encode_input(input)?;
            TokenBatch::single(ids)?
        }
        (None, None) => {
            return Err(ModelError::Tokens(
                "give --tokens FILE or --input SYMBOLS".into(),
            ));
        }
    };
    let selection = if args.hooks.is_empty() {
        HookSelection::None
    } else {
        m.select_hooks(&args.hooks)?
    };
    let out = m.forward(&tokens, &RunOptions::cache(selection))?;
    if let Some(path) = &args.cache {
        out.cache.save(path, &[("logits", &out.logits)])?;
    }
    if args.input.is_some() {
        let decoded = loaded.decode(&out.logits)?;
        let row: &[OutputValue] = decoded.first().map(Vec::as_slice).unwrap_or(&[]);
        if args.json {
            let values: Vec<serde_json::Value> = row.iter().map(OutputValue::to_json).collect();
            println!("{}", serde_json::json!({ "output": values }));
        } else {
            let words: Vec<String> = row.iter().map(ToString::to_string).collect();
            println!("{}", words.join(" "));
        }
    }
    Ok(())
}
