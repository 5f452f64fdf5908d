//! `congruity patch`: activation patching of one hook (optionally one head, some positions)
//! from a source run into a base run, or a sweep over every site of a hook family.
//!
//! ```text
//! congruity patch --model DIR --tokens BASE.json --source SRC.json --hook NAME [--head H]
//!                 [--pos P...] --out OUT.safetensors
//! congruity patch --model DIR --tokens BASE.json --source SRC.json --sweep KIND --hook FAMILY
//!                 --metric METRIC --out OUT.safetensors [--svg FILE]
//! ```
//!
//! OUT holds `patched_logits`, `source_logits` and `base_logits` (the unpatched base run); for a
//! sweep, `sweep` (shape by kind, axes named in the file's metadata), `base_metric` and
//! `source_metric`.

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

    /// Source token ids, same shape as the base: row i patches row i. With --ablate mean, the
    /// reference batch; with --ablate resample, the other inputs row i takes its value from.
    #[arg(long, value_name = "SRC.json", required_unless_present = "ablate")]
    pub source: Option<PathBuf>,

    /// Ablate the site instead of patching it: zero; mean (its mean over --source, else over
    /// the base batch, per position and head); resample (row i takes row i of --source, else the
    /// value of another row of the base batch, drawn with --seed)
    #[arg(long, value_name = "KIND", conflicts_with = "sweep")]
    pub ablate: Option<crate::intervene::Ablation>,

    /// Seed of --ablate resample within the base batch
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,

    /// Hook to patch, by TransformerLens name (e.g. blocks.0.attn.hook_z); with --sweep, the
    /// family without its layer (attn.hook_z, hook_resid_pre, hook_attn_out, hook_mlp_out, ...)
    #[arg(long, value_name = "NAME")]
    pub hook: String,

    /// Patch every site of the hook family in turn: heads [n_layers, n_heads], positions
    /// [n_layers, seq], heads-by-position [n_layers, seq, n_heads] or layers [n_layers]
    #[arg(long, value_name = "KIND")]
    pub sweep: Option<crate::intervene::SweepKind>,

    /// With --sweep: logit-diff:A,B (mean over the batch of the last position's logit A minus
    /// logit B), prob:A, kl (to the source run) or accuracy (decoded answers equal the source
    /// run's; models with a vocabulary)
    #[arg(long, value_name = "METRIC", requires = "sweep")]
    pub metric: Option<crate::intervene::Metric>,

    /// With --sweep: also draw the result as an SVG heatmap
    #[arg(long, value_name = "FILE", requires = "sweep")]
    pub svg: Option<PathBuf>,

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
    if let Some(kind) = args.sweep {
        return execute_sweep(args, kind);
    }
    if let Some(ablation) = args.ablate {
        return execute_ablation(args, ablation);
    }
    let hook: HookPoint = args.hook.parse().map_err(model::ModelError::from)?;
    let source_path = source_file(args)?;
    crate::files::check_output_file(
        &args.out,
        &[args.model.as_path(), args.tokens.as_path(), source_path],
    )
    .map_err(model::ModelError::from)?;
    let device = model::device(args.cuda)?;
    let loaded = model::load(&args.model, &device)?;
    let base = TokenBatch::from_json_file(&args.tokens)?;
    let source = TokenBatch::from_json_file(source_path)?;
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

/// `--sweep`: every site of the family, one at a time.
fn execute_sweep(args: &Args, kind: crate::intervene::SweepKind) -> Result<(), InterveneError> {
    let bad = |reason: String| InterveneError::from(model::ModelError::Tokens(reason));
    let metric = args.metric.clone().ok_or_else(|| {
        bad("--sweep needs --metric (logit-diff:A,B, prob:A, kl or accuracy)".into())
    })?;
    if args.head.is_some() || !args.pos.is_empty() {
        return Err(bad(
            "--head and --pos choose one site; --sweep visits them all".into(),
        ));
    }
    let family = intervene::parse_family(&args.hook)?;
    let source_path = source_file(args)?;
    let inputs = [args.model.as_path(), args.tokens.as_path(), source_path];
    crate::files::check_output_file(&args.out, &inputs).map_err(model::ModelError::from)?;
    if let Some(svg) = &args.svg {
        crate::files::check_output_file(svg, &inputs).map_err(model::ModelError::from)?;
    }
    let device = model::device(args.cuda)?;
    let loaded = model::load(&args.model, &device)?;
    let base = TokenBatch::from_json_file(&args.tokens)?;
    let source = TokenBatch::from_json_file(source_path)?;
    let r = intervene::sweep(
        &loaded.transformer,
        loaded.sidecar.as_ref(),
        &base,
        &source,
        family,
        kind,
        &metric,
    )?;
    let bytes = sweep_safetensors(&r).map_err(|e| model::ModelError::Write {
        path: args.out.clone(),
        reason: e,
    })?;
    crate::files::write_file(&args.out, &bytes).map_err(model::ModelError::from)?;
    if let Some(svg) = &args.svg {
        let text =
            crate::experiment::plot::sweep_svg(&r).map_err(|e| model::ModelError::Write {
                path: svg.clone(),
                reason: e.to_string(),
            })?;
        crate::files::write_file(svg, text.as_bytes()).map_err(model::ModelError::from)?;
    }
    eprintln!(
        "wrote {}: sweep {:?} over ({}), {} of {}; base {:.6}, source {:.6}; {} forward passes",
        args.out.display(),
        r.shape,
        kind.axes().join(", "),
        r.metric,
        r.hook,
        r.base_metric,
        r.source_metric,
        r.forwards
    );
    Ok(())
}

/// `sweep`, `base_metric`, `source_metric` as f32 tensors; the axes, hook, metric and kind in the
/// file's metadata.
fn sweep_safetensors(r: &crate::intervene::SweepResult) -> Result<Vec<u8>, String> {
    use crate::artifact::F32Tensor;
    let tensors = [
        (
            "sweep".to_string(),
            F32Tensor::new(r.shape.clone(), r.values.iter().map(|v| *v as f32)),
        ),
        (
            "base_metric".to_string(),
            F32Tensor::new(vec![1], vec![r.base_metric as f32]),
        ),
        (
            "source_metric".to_string(),
            F32Tensor::new(vec![1], vec![r.source_metric as f32]),
        ),
    ];
    let meta: std::collections::HashMap<String, String> = [
        ("sweep_axes".to_string(), r.kind.axes().join(",")),
        ("sweep".to_string(), r.kind.name().to_string()),
        ("hook".to_string(), r.hook.clone()),
        ("metric".to_string(), r.metric.clone()),
    ]
    .into_iter()
    .collect();
    safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))
        .map_err(|e| e.to_string())
}

fn source_file(args: &Args) -> Result<&std::path::Path, InterveneError> {
    args.source.as_deref().ok_or_else(|| {
        model::ModelError::Tokens(
            "--source is needed to patch (give --ablate to ablate instead)".into(),
        )
        .into()
    })
}

/// `--ablate`: the site (one hook, optionally one head and some positions) ablated in the base
/// run; OUT holds `ablated_logits` and `base_logits`.
fn execute_ablation(
    args: &Args,
    ablation: crate::intervene::Ablation,
) -> Result<(), InterveneError> {
    use crate::intervene::Ablation;
    use crate::model::{Action, Intervention, RunOptions};
    let hook: HookPoint = args.hook.parse().map_err(model::ModelError::from)?;
    let mut inputs = vec![args.model.as_path(), args.tokens.as_path()];
    inputs.extend(args.source.as_deref());
    crate::files::check_output_file(&args.out, &inputs).map_err(model::ModelError::from)?;
    let device = model::device(args.cuda)?;
    let loaded = model::load(&args.model, &device)?;
    let t = &loaded.transformer;
    let base = TokenBatch::from_json_file(&args.tokens)?;
    let reference = match &args.source {
        Some(p) => Some(TokenBatch::from_json_file(p)?),
        None => None,
    };
    let mut site = Site::hook(hook);
    site.head = args.head;
    if !args.pos.is_empty() {
        site.positions = Some(args.pos.clone());
    }
    t.check_site(&site)?;
    let iv = match (ablation, &reference) {
        (Ablation::Zero, _) => intervene::zero_ablation(site),
        (Ablation::Mean, r) => intervene::mean_ablation(t, site, r.as_ref().unwrap_or(&base))?,
        (Ablation::Resample, Some(r)) => {
            let (ivs, _) = intervene::patch_from_source(t, r, std::slice::from_ref(&site))?;
            ivs.into_iter()
                .next()
                .ok_or_else(|| model::ModelError::AbsentHook {
                    hook: site.hook.to_string(),
                    reason: "not produced by the resample run".into(),
                })?
        }
        (Ablation::Resample, None) => Intervention::new(site, Action::Resample { seed: args.seed }),
    };
    let ablated = t
        .forward(&base, &RunOptions::intervene(std::slice::from_ref(&iv)))?
        .logits;
    let plain = t.forward(&base, &RunOptions::default())?.logits;
    write_safetensors(
        &args.out,
        [
            ("ablated_logits".to_string(), &ablated),
            ("base_logits".to_string(), &plain),
        ],
    )?;
    eprintln!(
        "wrote {} (ablated_logits, base_logits): {} ablation of {}",
        args.out.display(),
        ablation.name(),
        iv.site
    );
    Ok(())
}
