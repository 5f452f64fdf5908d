//! `congruity run`: run a model on token ids and save activations, or on input symbols and
//! print the decoded answer.
//!
//! ```text
//! congruity run --model DIR --tokens FILE --cache OUT.safetensors [--hooks GLOB]...
//! congruity run --model DIR --input "a b c" [--json] [--cache OUT.safetensors [--hooks GLOB]...]
//! congruity run --model PIPELINE_DIR --input "a b c" [--json]
//! congruity run --model HF_DIR --text "some text" [--json] [--cache OUT.safetensors [--hooks GLOB]...]
//! ```
//!
//! `--cache` says on stderr what it wrote: every tensor with its shape, and the file's size.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ArgGroup;

use crate::experiment::ExperimentError;
use crate::experiment::chain::{is_pipeline_dir, load_pipeline_dir, run_chain, token_value};
use crate::experiment::extract::RepresentationSpec;
use crate::lang::domain::token_text;
use crate::lang::eval::value_json;
use crate::lang::ir::Value;
use crate::model::text::TextTokenizer;
use crate::model::{
    self, HookSelection, LoadedModel, ModelError, OutputValue, RunOptions, TokenBatch,
};

#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("inputs").required(true).args(["tokens", "input", "text"])))]
pub struct Args {
    /// Model directory: TransformerLens (model.safetensors + config.json [+ congruity.json]),
    /// tracr (weights.safetensors + residual_labels.json + meta.json), or a compiled pipeline
    /// (pipeline.json + one model directory per stage; with --input only).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,

    /// Token ids to run: JSON `{"tokens": [[id, ...], ...]}`, rows of equal length.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,

    /// Input symbols separated by spaces, for models with a vocabulary (compiled or tracr);
    /// BOS is prepended when the model uses one.
    #[arg(long, value_name = "SYMBOLS")]
    pub input: Option<String>,

    /// Text, for a checkpoint with a HuggingFace tokenizer.json: encoded as transformers would
    /// (special tokens included); prints the most likely next token.
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,

    /// Write `logits` and every requested hook (TransformerLens names) to this safetensors file.
    #[arg(long, value_name = "OUT.safetensors")]
    pub cache: Option<PathBuf>,

    /// Hooks to keep, by glob (e.g. 'blocks.*.attn.hook_z', '*' for all); repeatable.
    #[arg(long = "hooks", value_name = "GLOB")]
    pub hooks: Vec<String>,

    /// Time N forward passes on --tokens with the selected hooks cached in memory (nothing is
    /// written); prints the seconds of each as JSON. What an in-process comparison with
    /// TransformerLens' run_with_cache measures (the model is loaded once, as there).
    #[arg(long, value_name = "N", requires = "tokens", conflicts_with_all = ["cache", "input", "text"])]
    pub repeat: Option<usize>,

    /// With --cache: write only the hooks, no logits; when they all sit before the last layer,
    /// the forward stops after the last layer they need (TransformerLens' stop_at_layer)
    #[arg(long, requires = "hooks", conflicts_with_all = ["input", "text"])]
    pub no_logits: bool,

    /// Print `{"output": [...]}` instead of space-separated values (with --input); for a
    /// pipeline, also every stage's input and output under `stages`; with --text, the token ids
    /// and the next token.
    #[arg(long)]
    pub json: bool,

    /// Compute on CUDA device 0 (needs a build with `--features cuda`).
    #[arg(long)]
    pub cuda: bool,
}

pub fn run(args: Args) -> ExitCode {
    super::exit_code(execute(&args))
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
enum RunError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Chain(Box<ExperimentError>),
    #[error("{} is a pipeline directory: {what}", dir.display())]
    #[diagnostic(
        code(congruity::run::pipeline),
        help(
            "run it with --input \"...\"; to cache activations, run one stage's directory (listed in its pipeline.json)"
        )
    )]
    PipelineOption { dir: PathBuf, what: &'static str },
}

impl From<ExperimentError> for RunError {
    fn from(e: ExperimentError) -> Self {
        RunError::Chain(Box::new(e))
    }
}

fn execute(args: &Args) -> Result<(), RunError> {
    if is_pipeline_dir(&args.model) {
        return run_pipeline(args);
    }
    Ok(run_model(args)?)
}

/// A compiled pipeline, stage by stage: stage `k` reads stage `k - 1`'s decoded answer after its
/// adapter, as `eval` evaluates the pipeline.
fn run_pipeline(args: &Args) -> Result<(), RunError> {
    let refuse = |what| RunError::PipelineOption {
        dir: args.model.clone(),
        what,
    };
    if args.cuda {
        return Err(refuse(
            "pipelines run on the CPU (--cuda runs single models)",
        ));
    }
    if args.cache.is_some() || args.tokens.is_some() {
        return Err(refuse("--tokens and --cache take one model's directory"));
    }
    let Some(input) = &args.input else {
        return Err(refuse("give --input"));
    };
    let pipeline = load_pipeline_dir(&args.model)?;
    // Stage 1 reads the words as its vocabulary spells them (its sidecar encodes by text).
    let values: Vec<Value> = input.split_whitespace().map(token_value).collect();
    let run = run_chain(
        &pipeline.stages,
        std::slice::from_ref(&values),
        &RepresentationSpec::default(),
        None,
        None,
    )?;
    let stage_output = |k: usize| -> &[Value] { &run.outputs[k][0] };
    let last = stage_output(pipeline.stages.len() - 1);
    if args.json {
        let mut reads: Vec<Value> = values.clone();
        let mut stages = Vec::with_capacity(pipeline.stages.len());
        for (k, (stage, dir)) in pipeline.stages.iter().zip(&pipeline.stage_dirs).enumerate() {
            if k > 0 {
                reads = stage_output(k - 1)
                    .iter()
                    .map(|v| {
                        stage
                            .adapter
                            .as_ref()
                            .map_or_else(|| v.clone(), |a| a.apply(v))
                    })
                    .collect();
            }
            stages.push(serde_json::json!({
                "stage": k + 1,
                "program": stage.program,
                "dir": dir.display().to_string(),
                "input": reads.iter().map(value_json).collect::<Vec<_>>(),
                "output": stage_output(k).iter().map(value_json).collect::<Vec<_>>(),
            }));
        }
        println!(
            "{}",
            serde_json::json!({
                "pipeline": pipeline.name,
                "output": last.iter().map(value_json).collect::<Vec<_>>(),
                "stages": stages,
            })
        );
    } else {
        let words: Vec<String> = last.iter().map(token_text).collect();
        println!("{}", words.join(" "));
    }
    Ok(())
}

fn run_model(args: &Args) -> Result<(), ModelError> {
    if args.cache.is_none() && args.repeat.is_none() {
        for (given, flag) in [
            (args.tokens.is_some(), "--tokens"),
            (!args.hooks.is_empty(), "--hooks"),
        ] {
            if given {
                return Err(ModelError::Tokens(format!(
                    "{flag} needs --cache OUT.safetensors (write the activations) or --repeat N (time N forward passes)"
                )));
            }
        }
    }
    if let Some(cache) = &args.cache {
        let mut inputs = vec![args.model.as_path()];
        inputs.extend(args.tokens.as_deref());
        crate::files::check_output_file(cache, &inputs)?;
    }
    let device = model::device(args.cuda)?;
    let loaded: LoadedModel = model::load(&args.model, &device)?;
    let m = &loaded.transformer;
    let tokenizer = match &args.text {
        Some(_) => Some(TextTokenizer::from_dir(&args.model)?),
        None => None,
    };
    let (tokens, text_ids) = match (&args.tokens, &args.input, &args.text, &tokenizer) {
        (Some(path), _, _, _) => (TokenBatch::from_json_file(path)?, None),
        (None, Some(input), _, _) => {
            let ids = loaded.encode_input(input)?;
            (TokenBatch::single(ids)?, None)
        }
        (None, None, Some(text), Some(tk)) => {
            let ids = tk.encode(text)?;
            (TokenBatch::single(ids.clone())?, Some(ids))
        }
        _ => {
            return Err(ModelError::Tokens(
                "give --tokens FILE, --input SYMBOLS or --text TEXT".into(),
            ));
        }
    };
    let selection = if args.hooks.is_empty() {
        HookSelection::None
    } else {
        m.select_hooks(&args.hooks)?
    };
    if let Some(n) = args.repeat {
        let opts = RunOptions::cache(selection);
        let mut secs = Vec::with_capacity(n);
        let mut kept = 0;
        for _ in 0..n.max(1) {
            let start = std::time::Instant::now();
            let out = if args.no_logits {
                m.forward_hooks(&tokens, &opts)?
            } else {
                m.forward(&tokens, &opts)?.cache
            };
            secs.push(start.elapsed().as_secs_f64());
            kept = out.len();
        }
        println!(
            "{}",
            serde_json::json!({"forward_seconds": secs, "hooks_cached": kept, "logits": !args.no_logits})
        );
        return Ok(());
    }
    if args.no_logits {
        let cache = m.forward_hooks(&tokens, &RunOptions::cache(selection))?;
        if let Some(path) = &args.cache {
            let written = cache.save(path, &[])?;
            eprintln!("wrote {}: {written}", path.display());
        }
        return Ok(());
    }
    let out = m.forward(&tokens, &RunOptions::cache(selection))?;
    if let Some(path) = &args.cache {
        let written = out.cache.save(path, &[("logits", &out.logits)])?;
        eprintln!("wrote {}: {written}", path.display());
        if args.hooks.is_empty() {
            eprintln!(
                "note: only the logits were written, because no --hooks was given (e.g. --hooks '*' \
                 for every hook point, --hooks 'blocks.*.hook_resid_post')"
            );
        }
    }
    if let (Some(ids), Some(tk)) = (&text_ids, &tokenizer) {
        let last = out
            .logits
            .get(0)
            .and_then(|row| row.get(ids.len() - 1))
            .and_then(|l| l.to_dtype(candle_core::DType::F32))
            .and_then(|l| l.to_vec1::<f32>())
            .map_err(|source| ModelError::Compute {
                context: "reading the last position's logits".into(),
                source,
            })?;
        let (next, logit) =
            last.iter()
                .enumerate()
                .fold((0usize, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                });
        let next_text = tk.decode_one(next as u32)?;
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "tokens": ids,
                    "next_token": {"id": next, "text": next_text, "logit": logit},
                })
            );
        } else {
            println!(
                "{} tokens {:?}; next token {next} {next_text:?} (logit {logit:.4})",
                ids.len(),
                ids
            );
        }
    } else if args.json && args.input.is_none() {
        return Err(ModelError::Tokens(
            "--json prints a decoded answer: give --input or --text".into(),
        ));
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
