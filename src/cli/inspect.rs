//! `congruity inspect --model DIR [--json]`: what a researcher checks before writing a circuit —
//! the architecture, sizes, stored dtype, parameter count and every hook point the model offers.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::model::config::{ActFn, Positional};
use crate::model::{self, ModelError, ModelFormat};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model directory (TransformerLens, tracr, HuggingFace or compiled)
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Print one JSON object (every hook point listed) instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> ExitCode {
    super::exit_code(execute(&args))
}

fn execute(args: &Args) -> Result<(), ModelError> {
    let loaded = model::load(&args.model, &candle_core::Device::Cpu)?;
    let facts = Facts::of(args, &loaded)?;
    if args.json {
        println!("{}", facts.json(args, &loaded));
    } else {
        facts.print(args, &loaded);
    }
    Ok(())
}

/// What `inspect` reports beyond the config itself.
struct Facts {
    format: String,
    stored_dtype: String,
    params: u64,
    positional: String,
    hooks: Vec<String>,
}

impl Facts {
    fn of(args: &Args, loaded: &model::LoadedModel) -> Result<Facts, ModelError> {
        let t = &loaded.transformer;
        let c = t.config();
        let format = match loaded.format {
            ModelFormat::TransformerLens => "TransformerLens".to_string(),
            ModelFormat::Tracr => "tracr".to_string(),
            ModelFormat::HuggingFace(a) => format!("HuggingFace {}", a.name()),
        };
        let stored_dtype = match loaded.format {
            ModelFormat::HuggingFace(_) => {
                let v: serde_json::Value =
                    model::io::read_json(&args.model.join("config.json")).unwrap_or_default();
                ["dtype", "torch_dtype"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(|d| d.as_str()))
                    .unwrap_or("unstated")
                    .to_string()
            }
            _ => "float32".to_string(),
        };
        // A checkpoint's own count (tied weights once); the runtime's weights for the other formats.
        let params: u64 = match loaded.format {
            ModelFormat::HuggingFace(_) => model::hf::stored_parameters(&args.model)?,
            _ => t
                .weights()
                .named()
                .iter()
                .map(|(_, w)| w.elem_count() as u64)
                .sum(),
        };
        let positional = match c.positional {
            Positional::Standard => "learned positions".to_string(),
            Positional::Shortformer => "shortformer positions".to_string(),
            Positional::Rotary(r) => format!(
                "rotary ({} of {} dims per head, base {}{})",
                r.dim,
                c.d_head,
                r.base,
                if r.adjacent_pairs {
                    ", adjacent pairs"
                } else {
                    ""
                }
            ),
        };
        let hooks: Vec<String> = t.hook_points().iter().map(ToString::to_string).collect();
        Ok(Facts {
            format,
            stored_dtype,
            params,
            positional,
            hooks,
        })
    }

    fn json(&self, args: &Args, loaded: &model::LoadedModel) -> serde_json::Value {
        let c = loaded.transformer.config();
        serde_json::json!({
            "dir": args.model.display().to_string(),
            "format": self.format,
            "stored_dtype": self.stored_dtype,
            "compute_dtype": "float32",
            "parameters": self.params,
            "n_layers": c.n_layers,
            "d_model": c.d_model,
            "n_heads": c.n_heads,
            "d_head": c.d_head,
            "d_mlp": c.d_mlp,
            "d_vocab": c.d_vocab,
            "d_vocab_out": c.d_vocab_out,
            "n_ctx": c.n_ctx,
            "normalization": c.normalization.tl_name(),
            "act_fn": c.act_fn.map(ActFn::tl_name),
            "positional": self.positional,
            "parallel_attn_mlp": c.parallel_attn_mlp,
            "gated_mlp": c.gated_mlp,
            "n_key_value_heads": c.n_key_value_heads,
            "vocabulary": loaded.sidecar.is_some(),
            "hooks": self.hooks,
        })
    }

    fn print(&self, args: &Args, loaded: &model::LoadedModel) {
        let c = loaded.transformer.config();
        let Facts {
            format,
            stored_dtype,
            params,
            positional,
            hooks,
        } = self;
        println!("{}: {format}", args.model.display());
        println!(
            "  {} layers, d_model {}, {} heads × d_head {}, d_mlp {}, vocab {} → {}, n_ctx {}",
            c.n_layers,
            c.d_model,
            c.n_heads,
            c.d_head,
            c.d_mlp.map_or("—".to_string(), |m| m.to_string()),
            c.d_vocab,
            c.d_vocab_out,
            c.n_ctx
        );
        println!(
            "  norm {}, act {}, {positional}{}{}",
            c.normalization.tl_name().unwrap_or("none"),
            c.act_fn.map_or("—", ActFn::tl_name),
            if c.parallel_attn_mlp {
                ", parallel attention + MLP"
            } else {
                ""
            },
            if c.gated_mlp { ", gated MLP" } else { "" },
        );
        if let Some(kv) = c.n_key_value_heads {
            println!(
                "  grouped-query attention: {kv} key/value heads shared by {} query heads (hook_k / hook_v hold the key/value heads)",
                c.n_heads
            );
        }
        println!("  {params} parameters; stored {stored_dtype}, computed in float32");
        println!(
            "  vocabulary: {}",
            if loaded.sidecar.is_some() {
                "congruity.json (symbols: run --input)"
            } else if args.model.join(model::text::TOKENIZER_FILE).is_file() {
                "tokenizer.json (text: run --text)"
            } else {
                "none (token ids: run --tokens)"
            }
        );
        // Hooks: the ones outside blocks, then layer 0's, which every layer repeats; written as the
        // globs that select them in every layer (`--hooks`).
        let block0: Vec<&String> = hooks
            .iter()
            .filter(|h| h.starts_with("blocks.0."))
            .collect();
        let outside: Vec<&String> = hooks.iter().filter(|h| !h.starts_with("blocks.")).collect();
        println!(
            "  {} hook points ({} outside the blocks, {} in each of the {} blocks; blocks.* is every layer):",
            hooks.len(),
            outside.len(),
            block0.len(),
            c.n_layers
        );
        for h in &outside {
            println!("    {h}");
        }
        for h in &block0 {
            println!("    blocks.*.{}", h.trim_start_matches("blocks.0."));
        }
    }
}
