//! The forward pass: TransformerLens' `HookedTransformer.forward`, with hooks that are cached
//! only when asked for and that interventions can replace.

use candle_core::{D, DType, Device, Tensor};

use super::cache::ActivationCache;
use super::config::{ActFn, AttentionDir, ModelConfig, Normalization, Positional, Rotary};
use super::error::{ComputeContext, ModelError};
use super::hooks::{AttnHook, BlockHook, HookPoint, HookSelection, MlpHook, NormHook};
use super::intervention::{Intervention, Site};
use super::io::read_json;
use super::weights::{AttnWeights, MlpWeights, NormWeights, Weights};

mod attention_cpu;
mod fused_cpu;
mod inputs;

pub use inputs::{RunOptions, RunOutput, TokenBatch};

/// Rotary sin/cos tables `[n_ctx, rotary_dim]`, computed the way TransformerLens does (f32).
#[derive(Clone, Debug)]
struct RotaryTables {
    rotary: Rotary,
    sin: Tensor,
    cos: Tensor,
}

impl RotaryTables {
    fn new(r: Rotary, n_ctx: usize, device: &Device) -> Result<Self, ModelError> {
        let half = r.dim / 2;
        // TL: freq = base ** (dim / (rotary_dim / 2)), scaled by rotary_scaling_factor, repeated
        // "(2 d)" for halves or "(d 2)" for adjacent pairs; angle = pos / freq. All in f32.
        let base = r.base as f32;
        let freqs: Vec<f32> = (0..half)
            .map(|i| base.powf(i as f32 / half as f32) * r.scaling_factor as f32)
            .collect();
        let per_col: Vec<f32> = if r.adjacent_pairs {
            freqs.iter().flat_map(|&f| [f, f]).collect()
        } else {
            freqs.iter().chain(freqs.iter()).copied().collect()
        };
        let mut sin = Vec::with_capacity(n_ctx * r.dim);
        let mut cos = Vec::with_capacity(n_ctx * r.dim);
        for p in 0..n_ctx {
            for &f in &per_col {
                let angle = p as f32 / f;
                sin.push(angle.sin());
                cos.push(angle.cos());
            }
        }
        let ctx = "building rotary tables";
        Ok(RotaryTables {
            rotary: r,
            sin: Tensor::from_vec(sin, (n_ctx, r.dim), device).ctx(ctx)?,
            cos: Tensor::from_vec(cos, (n_ctx, r.dim), device).ctx(ctx)?,
        })
    }

    /// Rotates the first `rotary_dim` features of `x` `[batch, pos, head, d_head]`.
    fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, p, h, e) = x.dims4()?;
        let rd = self.rotary.dim;
        let x_rot = x.narrow(3, 0, rd)?;
        let flip = if self.rotary.adjacent_pairs {
            // [x0, x1] -> [-x1, x0] for each adjacent pair.
            let pairs = x_rot.reshape((b, p, h, rd / 2, 2))?;
            let first = pairs.narrow(4, 0, 1)?;
            let second = pairs.narrow(4, 1, 1)?;
            Tensor::cat(&[&second.neg()?, &first], 4)?.reshape((b, p, h, rd))?
        } else {
            let n = rd / 2;
            Tensor::cat(
                &[&x_rot.narrow(3, n, n)?.neg()?, &x_rot.narrow(3, 0, n)?],
                3,
            )?
        };
        let cos = self.cos.narrow(0, 0, p)?.reshape((1, p, 1, rd))?;
        let sin = self.sin.narrow(0, 0, p)?.reshape((1, p, 1, rd))?;
        let rotated = x_rot.broadcast_mul(&cos)?.add(&flip.broadcast_mul(&sin)?)?;
        if rd == e {
            Ok(rotated)
        } else {
            Tensor::cat(&[&rotated, &x.narrow(3, rd, e - rd)?], 3)
        }
    }
}

/// A TransformerLens-layout transformer on a candle device, computing in f32.
#[derive(Clone, Debug)]
pub struct Transformer {
    config: ModelConfig,
    weights: Weights,
    device: Device,
    rotary: Option<RotaryTables>,
    /// In forward order, which is also the derived order: lookups binary-search it.
    hooks: Vec<HookPoint>,
}

/// Per-run state: which hooks to keep, which to change, and what was kept.
struct Run<'a> {
    select: &'a HookSelection,
    interventions: &'a [Intervention],
    cache: ActivationCache,
}

impl Run<'_> {
    /// Whether a hook must be materialized (kept or changed).
    fn wants(&self, point: &HookPoint) -> bool {
        self.select.contains(point) || self.intervenes(point)
    }

    fn intervenes(&self, point: &HookPoint) -> bool {
        self.interventions.iter().any(|i| i.site.hook == *point)
    }

    /// Passes a value through a hook point: interventions first, then the cache.
    fn hook(&mut self, point: HookPoint, value: Tensor) -> Result<Tensor, ModelError> {
        let mut value = value;
        for iv in self.interventions.iter().filter(|i| i.site.hook == point) {
            value = iv.apply(&value)?;
        }
        if self.select.contains(&point) {
            self.cache.insert(point, value.clone());
        }
        Ok(value)
    }
}

/// `x @ w + b` over the last axis of `x`, any leading shape.
fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let dims = x.dims();
    let (k, n) = w.dims2()?;
    let lead: usize = dims[..dims.len() - 1].iter().product();
    let x = x.contiguous()?;
    if let Some(y) = fused_cpu::linear(&x, w, b)? {
        return Ok(y);
    }
    let y = x.reshape((lead, k))?.matmul(w)?;
    let y = match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    let mut out_shape = dims[..dims.len() - 1].to_vec();
    out_shape.push(n);
    y.reshape(out_shape)
}

/// `a + c` (same shape): the fused CPU pass where it applies, else candle's.
fn add(a: &Tensor, c: &Tensor) -> candle_core::Result<Tensor> {
    match fused_cpu::add(a, c)? {
        Some(t) => Ok(t),
        None => a + c,
    }
}

/// Softmax over the last axis. Rows that are entirely -inf give zeros, as TransformerLens
/// replaces the NaNs such rows produce with zeros.
fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.clamp(f32::MIN, f32::MAX)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    let s = (&s + s.eq(0f32)?.to_dtype(DType::F32)?)?;
    e.broadcast_div(&s)
}

/// Per-head linear map: `[b,p,d]` (shared input) or `[b,p,h,d]` (per-head input) to `[b,p,h,e]`.
fn project(x: &Tensor, w_flat: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let (h, _, e) = w.dims3()?;
    if x.rank() == 3 {
        let (bs, p, _) = x.dims3()?;
        linear(x, w_flat, Some(&b.flatten_all()?))?.reshape((bs, p, h, e))
    } else {
        let (bs, p, _, d) = x.dims4()?;
        let y = x
            .permute((2, 0, 1, 3))?
            .contiguous()?
            .reshape((h, bs * p, d))?
            .matmul(w)?;
        y.reshape((h, bs, p, e))?
            .permute((1, 2, 0, 3))?
            .contiguous()?
            .broadcast_add(b)
    }
}

/// Which normalization layer a call belongs to, to name its hooks.
#[derive(Clone, Copy)]
enum NormSite {
    Ln1(usize),
    Ln2(usize),
    MlpLn(usize),
    Final,
}

impl NormSite {
    fn hook(self, n: NormHook) -> HookPoint {
        match self {
            NormSite::Ln1(l) => HookPoint::block(l, BlockHook::Ln1(n)),
            NormSite::Ln2(l) => HookPoint::block(l, BlockHook::Ln2(n)),
            NormSite::MlpLn(l) => HookPoint::mlp(l, MlpHook::Ln(n)),
            NormSite::Final => HookPoint::LnFinal(n),
        }
    }
}

impl Transformer {
    /// Assembles a model from a config and matching weights.
    pub fn new(config: ModelConfig, weights: Weights) -> Result<Self, ModelError> {
        let device = weights.device().clone();
        let rotary = match config.positional {
            Positional::Rotary(r) => Some(RotaryTables::new(r, config.n_ctx, &device)?),
            _ => None,
        };
        let hooks = HookPoint::all_for(&config);
        debug_assert!(hooks.windows(2).all(|w| w[0] < w[1]), "hooks out of order");
        Ok(Transformer {
            config,
            weights,
            device,
            rotary,
            hooks,
        })
    }

    /// A seeded random model (tests, benches).
    pub fn random(config: ModelConfig, seed: u64, device: &Device) -> Result<Self, ModelError> {
        let weights = Weights::random(&config, seed, device)?;
        Self::new(config, weights)
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every hook point of this model, in forward order.
    pub fn hook_points(&self) -> &[HookPoint] {
        &self.hooks
    }

    pub fn has_hook(&self, hook: &HookPoint) -> bool {
        self.hooks.binary_search(hook).is_ok()
    }

    /// Hooks selected by glob patterns (`blocks.*.attn.hook_z`); see `HookSelection::from_globs`.
    pub fn select_hooks<S: AsRef<str>>(&self, patterns: &[S]) -> Result<HookSelection, ModelError> {
        Ok(HookSelection::only(self.expand_hooks(patterns)?))
    }

    /// The hook points the glob `patterns` select, in their order (see
    /// [`super::hooks::expand_globs`]); an exact name of a hook this model lacks is an error
    /// saying why it lacks it (e.g. parallel blocks have no `hook_resid_mid`).
    pub fn expand_hooks<S: AsRef<str>>(
        &self,
        patterns: &[S],
    ) -> Result<Vec<HookPoint>, ModelError> {
        for p in patterns {
            if let Ok(h) = p.as_ref().parse::<HookPoint>()
                && !self.has_hook(&h)
            {
                return Err(self.absent(&h));
            }
        }
        super::hooks::expand_globs(patterns, &self.hooks)
    }

    /// The model's shape in words, for errors: `2 layers × 1 head, d_model 34, d_mlp 20`.
    pub fn shape_text(&self) -> String {
        let c = &self.config;
        let mut text = format!(
            "{} layer{} × {} head{}, d_model {}",
            c.n_layers,
            if c.n_layers == 1 { "" } else { "s" },
            c.n_heads,
            if c.n_heads == 1 { "" } else { "s" },
            c.d_model
        );
        match c.d_mlp {
            Some(d) if !c.attn_only => text.push_str(&format!(", d_mlp {d}")),
            _ => text.push_str(", attention only"),
        }
        text
    }

    /// Checks that `site` names something this model has: its hook point, and its head below
    /// the hook's head count. The error names the site and the model's shape.
    pub fn check_site(&self, site: &Site) -> Result<(), ModelError> {
        let absent = |reason: String| ModelError::AbsentSite {
            site: site.to_string(),
            shape: self.shape_text(),
            reason,
        };
        if !self.has_hook(&site.hook) {
            return Err(match self.absent(&site.hook) {
                ModelError::AbsentHook { reason, .. } => absent(reason),
                other => other,
            });
        }
        if let Some(h) = site.head {
            let heads = match &site.hook {
                HookPoint::Block {
                    hook: BlockHook::Attn(AttnHook::K | AttnHook::V),
                    ..
                } => self.config.n_kv_heads(),
                _ => self.config.n_heads,
            };
            if site.hook.axes().head.is_none() {
                return Err(absent("the hook has no head axis".into()));
            }
            if h >= heads {
                return Err(absent(format!(
                    "head {h} is out of range: the hook has {heads} head{}",
                    if heads == 1 { "" } else { "s" }
                )));
            }
        }
        Ok(())
    }

    fn absent(&self, hook: &HookPoint) -> ModelError {
        let c = &self.config;
        let reason = match hook {
            HookPoint::Block { layer, .. } if *layer >= c.n_layers => {
                format!("the model has {} layers", c.n_layers)
            }
            HookPoint::PosEmbed => "the model has no positional embedding (rotary)".into(),
            HookPoint::Tokens => "use_hook_tokens is false".into(),
            HookPoint::LnFinal(_) => "the model has no final normalization".into(),
            HookPoint::Block { hook, .. } => match hook {
                BlockHook::Ln1(_) | BlockHook::Ln2(_) => {
                    "the model has no normalization layers".into()
                }
                BlockHook::Attn(AttnHook::RotQ | AttnHook::RotK) => {
                    "the model has no rotary embedding".into()
                }
                BlockHook::AttnIn => "use_attn_in is false".into(),
                BlockHook::QInput | BlockHook::KInput | BlockHook::VInput => {
                    "use_split_qkv_input is false".into()
                }
                BlockHook::ResidMid if c.parallel_attn_mlp => {
                    "parallel_attn_mlp models have no resid_mid".into()
                }
                BlockHook::Mlp(MlpHook::PreLinear) => "only gated MLPs have hook_pre_linear".into(),
                BlockHook::Mlp(MlpHook::Mid | MlpHook::Ln(_)) => {
                    "only solu_ln MLPs have hook_mid and mlp.ln".into()
                }
                _ if c.attn_only => "the model is attention-only".into(),
                _ => "not present for this config".into(),
            },
            _ => "not present for this config".into(),
        };
        ModelError::AbsentHook {
            hook: hook.to_string(),
            reason,
        }
    }

    /// Checks token ids and length against the model.
    pub fn check_tokens(&self, tokens: &TokenBatch) -> Result<(), ModelError> {
        if tokens.len() > self.config.n_ctx {
            return Err(ModelError::SequenceTooLong {
                len: tokens.len(),
                n_ctx: self.config.n_ctx,
            });
        }
        for (i, &id) in tokens.ids().iter().enumerate() {
            if id as usize >= self.config.d_vocab {
                return Err(ModelError::TokenOutOfRange {
                    batch: i / tokens.len(),
                    pos: i % tokens.len(),
                    id: id as u64,
                    d_vocab: self.config.d_vocab,
                });
            }
        }
        Ok(())
    }

    /// Runs the model on a batch. Only hooks in `opts.cache` are kept; `opts.interventions`
    /// replace hook values and everything downstream is recomputed.
    pub fn forward(
        &self,
        tokens: &TokenBatch,
        opts: &RunOptions<'_>,
    ) -> Result<RunOutput, ModelError> {
        self.validate(tokens, opts)?;
        let mut run = Run {
            select: &opts.cache,
            interventions: opts.interventions,
            cache: ActivationCache::default(),
        };
        let logits = self.forward_inner(tokens, &mut run)?;
        Ok(RunOutput {
            logits,
            cache: run.cache,
        })
    }

    /// Tokens in range, and every cached or intervened hook one this model has.
    fn validate(&self, tokens: &TokenBatch, opts: &RunOptions<'_>) -> Result<(), ModelError> {
        self.check_tokens(tokens)?;
        if let HookSelection::Only(set) = &opts.cache
            && let Some(h) = set.iter().find(|h| !self.has_hook(h))
        {
            return Err(self.absent(h));
        }
        if let Some(iv) = opts
            .interventions
            .iter()
            .find(|i| !self.has_hook(&i.site.hook))
        {
            return Err(self.absent(&iv.site.hook));
        }
        Ok(())
    }

    /// Runs the model only as far as `opts` needs: the cache of the selected hooks, without
    /// logits. When every selected hook and intervention sits in the embeddings or in blocks
    /// before the last, the later blocks are not computed (TransformerLens' `stop_at_layer`);
    /// otherwise this is [`forward`](Self::forward) without the logits.
    pub fn forward_hooks(
        &self,
        tokens: &TokenBatch,
        opts: &RunOptions<'_>,
    ) -> Result<ActivationCache, ModelError> {
        let stop = self.last_layer_needed(opts);
        if stop.is_none_or(|l| l + 1 >= self.config.n_layers) {
            return Ok(self.forward(tokens, opts)?.cache);
        }
        self.validate(tokens, opts)?;
        let mut run = Run {
            select: &opts.cache,
            interventions: opts.interventions,
            cache: ActivationCache::default(),
        };
        self.forward_layers(tokens, &mut run, stop)?;
        Ok(run.cache)
    }

    /// The last block any selected hook or intervention is in (`Some(0)`... ), or `None` when one
    /// needs the whole model (a hook after the blocks, or every hook).
    fn last_layer_needed(&self, opts: &RunOptions<'_>) -> Option<usize> {
        let HookSelection::Only(set) = &opts.cache else {
            return None;
        };
        let mut last = 0usize;
        for h in set
            .iter()
            .chain(opts.interventions.iter().map(|i| &i.site.hook))
        {
            match h {
                HookPoint::Block { layer, .. } => last = last.max(*layer),
                HookPoint::Tokens | HookPoint::Embed | HookPoint::PosEmbed => {}
                _ => return None,
            }
        }
        Some(last)
    }

    fn forward_inner(&self, tokens: &TokenBatch, run: &mut Run<'_>) -> Result<Tensor, ModelError> {
        let resid = self.forward_layers(tokens, run, None)?;
        let resid = self.norm(NormSite::Final, &self.weights.ln_final, &resid, run)?;
        let resid = run.hook(HookPoint::UnembedIn, resid)?;
        let logits =
            linear(&resid, &self.weights.w_u, Some(&self.weights.b_u)).ctx("unembedding")?;
        let logits = run.hook(HookPoint::UnembedOut, logits)?;
        match self.config.output_logits_soft_cap {
            Some(cap) => soft_cap(&logits, cap).ctx("capping logits"),
            None => Ok(logits),
        }
    }

    /// Embeddings and blocks `0..=stop` (every block when `stop` is `None`): the residual stream.
    fn forward_layers(
        &self,
        tokens: &TokenBatch,
        run: &mut Run<'_>,
        stop: Option<usize>,
    ) -> Result<Tensor, ModelError> {
        let (b, p, d) = (tokens.batch(), tokens.len(), self.config.d_model);
        let ids = Tensor::from_slice(tokens.ids(), b * p, &self.device).ctx("uploading tokens")?;
        let ids = if self.config.use_hook_tokens && run.wants(&HookPoint::Tokens) {
            self.hook_tokens(ids, b, p, run)?
        } else {
            ids
        };
        let embed = self
            .weights
            .w_e
            .index_select(&ids, 0)
            .and_then(|e| e.reshape((b, p, d)))
            .ctx("embedding tokens")?;
        let embed = run.hook(HookPoint::Embed, embed)?;

        let pos_embed = match &self.weights.w_pos {
            Some(w_pos) if self.config.has_pos_embed() => {
                let pe = w_pos
                    .narrow(0, 0, p)
                    .and_then(|t| t.unsqueeze(0))
                    .and_then(|t| t.broadcast_as((b, p, d)))
                    .and_then(|t| t.contiguous())
                    .ctx("positional embedding")?;
                Some(run.hook(HookPoint::PosEmbed, pe)?)
            }
            _ => None,
        };
        let (mut resid, shortformer) = match (self.config.positional, pos_embed) {
            (Positional::Standard, Some(pe)) => (add(&embed, &pe).ctx("adding positions")?, None),
            (Positional::Shortformer, Some(pe)) => (embed, Some(pe)),
            _ => (embed, None),
        };

        let mask = match self.config.attention_dir {
            AttentionDir::Causal => Some(self.causal_mask(p)?),
            AttentionDir::Bidirectional => None,
        };
        let last = stop.map_or(self.config.n_layers, |l| (l + 1).min(self.config.n_layers));
        for layer in 0..last {
            resid = self.block(layer, resid, shortformer.as_ref(), mask.as_ref(), run)?;
        }
        Ok(resid)
    }

    /// `hook_tokens`: the ids as f32 `[batch, pos]`. Interventions may change them (patching
    /// tokens from a source run); the result must still be valid token ids.
    fn hook_tokens(
        &self,
        ids: Tensor,
        b: usize,
        p: usize,
        run: &mut Run<'_>,
    ) -> Result<Tensor, ModelError> {
        let ctx = "hook_tokens";
        let as_f32 = ids
            .to_dtype(DType::F32)
            .and_then(|t| t.reshape((b, p)))
            .ctx(ctx)?;
        let hooked = run.hook(HookPoint::Tokens, as_f32)?;
        let values: Vec<f32> = hooked.flatten_all().and_then(|t| t.to_vec1()).ctx(ctx)?;
        let mut out = Vec::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            if v.fract() != 0.0 || v < 0.0 || v as usize >= self.config.d_vocab {
                return Err(ModelError::Intervention {
                    hook: HookPoint::Tokens.to_string(),
                    reason: format!(
                        "batch {}, position {} became {v}, which is not a token id below d_vocab = {}",
                        i / p,
                        i % p,
                        self.config.d_vocab
                    ),
                });
            }
            out.push(v as u32);
        }
        Tensor::from_vec(out, b * p, &self.device).ctx(ctx)
    }

    /// `[p, p]` u8, 1 where key ≤ query.
    fn causal_mask(&self, p: usize) -> Result<Tensor, ModelError> {
        let v: Vec<u8> = (0..p)
            .flat_map(|q| (0..p).map(move |k| u8::from(k <= q)))
            .collect();
        Tensor::from_vec(v, (p, p), &self.device).ctx("building the causal mask")
    }

    fn block(
        &self,
        layer: usize,
        resid: Tensor,
        shortformer: Option<&Tensor>,
        mask: Option<&Tensor>,
        run: &mut Run<'_>,
    ) -> Result<Tensor, ModelError> {
        let cfg = &self.config;
        let w = &self.weights.blocks[layer];
        let hp = |hook| HookPoint::block(layer, hook);
        let ctx = |what: &str| format!("computing {what} of block {layer}");
        let resid_pre = run.hook(hp(BlockHook::ResidPre), resid)?;

        let per_head = |x: &Tensor| -> Result<Tensor, ModelError> {
            let (b, p, d) = x.dims3().ctx("repeating along heads")?;
            x.unsqueeze(2)
                .and_then(|t| t.broadcast_as((b, p, cfg.n_heads, d)))
                .and_then(|t| t.contiguous())
                .ctx("repeating along heads")
        };
        // TransformerLens feeds ln1 three times (query, key, value input). With a shared
        // input the three results are identical, so it is computed once.
        let attn_in = if cfg.use_attn_in {
            Some(run.hook(hp(BlockHook::AttnIn), per_head(&resid_pre)?)?)
        } else {
            None
        };
        let add_pos = |x: Tensor| -> Result<Tensor, ModelError> {
            match shortformer {
                None => Ok(x),
                Some(pe) if x.rank() == 3 => (&x + pe).ctx("adding shortformer positions"),
                Some(pe) => pe
                    .unsqueeze(2)
                    .and_then(|pe| x.broadcast_add(&pe))
                    .ctx("adding shortformer positions"),
            }
        };
        let (q_in, k_in, v_in) = if cfg.use_split_qkv_input {
            let q = run.hook(hp(BlockHook::QInput), per_head(&resid_pre)?)?;
            let k = run.hook(hp(BlockHook::KInput), per_head(&resid_pre)?)?;
            let v = run.hook(hp(BlockHook::VInput), per_head(&resid_pre)?)?;
            let qn = self.norm(NormSite::Ln1(layer), &w.ln1, &q, run)?;
            let kn = self.norm(NormSite::Ln1(layer), &w.ln1, &k, run)?;
            let vn = self.norm(NormSite::Ln1(layer), &w.ln1, &v, run)?;
            (add_pos(qn)?, add_pos(kn)?, vn)
        } else {
            let x = attn_in.as_ref().unwrap_or(&resid_pre);
            let n = self.norm(NormSite::Ln1(layer), &w.ln1, x, run)?;
            (add_pos(n.clone())?, add_pos(n.clone())?, n)
        };

        let attn_out = self.attention(layer, &w.attn, &q_in, &k_in, &v_in, mask, run)?;
        let attn_out = run.hook(hp(BlockHook::AttnOut), attn_out)?;

        let (Some(mlp), Some(ln2)) = (&w.mlp, &w.ln2) else {
            let resid_post = add(&resid_pre, &attn_out).ctx(&ctx("resid_post"))?;
            return run.hook(hp(BlockHook::ResidPost), resid_post);
        };
        if cfg.parallel_attn_mlp {
            let mlp_in = run.hook(hp(BlockHook::MlpIn), resid_pre.clone())?;
            let normed = self.norm(NormSite::Ln2(layer), ln2, &mlp_in, run)?;
            let mlp_out = self.mlp(layer, mlp, &normed, run)?;
            let mlp_out = run.hook(hp(BlockHook::MlpOut), mlp_out)?;
            let resid_post = (&resid_pre + &attn_out)
                .and_then(|t| t + &mlp_out)
                .ctx(&ctx("resid_post"))?;
            return run.hook(hp(BlockHook::ResidPost), resid_post);
        }
        let resid_mid = add(&resid_pre, &attn_out).ctx(&ctx("resid_mid"))?;
        let resid_mid = run.hook(hp(BlockHook::ResidMid), resid_mid)?;
        let mlp_in = run.hook(hp(BlockHook::MlpIn), resid_mid.clone())?;
        let normed = self.norm(NormSite::Ln2(layer), ln2, &mlp_in, run)?;
        let mlp_out = self.mlp(layer, mlp, &normed, run)?;
        let mlp_out = run.hook(hp(BlockHook::MlpOut), mlp_out)?;
        let resid_post = add(&resid_mid, &mlp_out).ctx(&ctx("resid_post"))?;
        run.hook(hp(BlockHook::ResidPost), resid_post)
    }

    /// A normalization layer with its `hook_scale` and `hook_normalized`; identity (no hooks)
    /// when the model has no normalization.
    fn norm(
        &self,
        site: NormSite,
        w: &NormWeights,
        x: &Tensor,
        run: &mut Run<'_>,
    ) -> Result<Tensor, ModelError> {
        let ctx = "computing a normalization";
        let centre = match w.kind {
            Normalization::None => return Ok(x.clone()),
            Normalization::LayerNorm | Normalization::LayerNormPre => true,
            Normalization::Rms | Normalization::RmsPre => false,
        };
        let (scale_hook, normalized_hook) =
            (site.hook(NormHook::Scale), site.hook(NormHook::Normalized));
        // One fused pass unless a hook in the middle of it is changed.
        if !run.intervenes(&scale_hook) && !run.intervenes(&normalized_hook) {
            let spec = fused_cpu::NormSpec {
                centre,
                eps: self.config.eps,
                keep_scale: run.select.contains(&scale_hook),
                keep_normalized: run.select.contains(&normalized_hook),
            };
            if let Some(normed) = fused_cpu::norm(x, w.w.as_ref(), w.b.as_ref(), spec).ctx(ctx)? {
                if let Some(scale) = normed.scale {
                    run.hook(scale_hook, scale)?;
                }
                if let Some(normalized) = normed.normalized {
                    run.hook(normalized_hook, normalized)?;
                }
                return Ok(normed.out);
            }
        }
        let centered = if centre {
            x.mean_keepdim(D::Minus1)
                .and_then(|m| x.broadcast_sub(&m))
                .ctx(ctx)?
        } else {
            x.clone()
        };
        let scale = centered
            .sqr()
            .and_then(|s| s.mean_keepdim(D::Minus1))
            .and_then(|s| s + self.config.eps)
            .and_then(|s| s.sqrt())
            .ctx(ctx)?;
        let scale = run.hook(scale_hook, scale)?;
        let normalized = centered.broadcast_div(&scale).ctx(ctx)?;
        let normalized = run.hook(normalized_hook, normalized)?;
        let out = match &w.w {
            Some(g) => normalized.broadcast_mul(g).ctx(ctx)?,
            None => normalized,
        };
        match &w.b {
            Some(b) => out.broadcast_add(b).ctx(ctx),
            None => Ok(out),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        layer: usize,
        w: &AttnWeights,
        q_in: &Tensor,
        k_in: &Tensor,
        v_in: &Tensor,
        mask: Option<&Tensor>,
        run: &mut Run<'_>,
    ) -> Result<Tensor, ModelError> {
        let ah = |a| HookPoint::attn(layer, a);
        let ctx = format!("computing attention of block {layer}");
        let ctx = ctx.as_str();
        let q = project(q_in, &w.w_q_flat, &w.w_q, &w.b_q).ctx(ctx)?;
        let q = run.hook(ah(AttnHook::Q), q)?;
        let k = project(k_in, &w.w_k_flat, &w.w_k, &w.b_k).ctx(ctx)?;
        let k = run.hook(ah(AttnHook::K), k)?;
        let v = project(v_in, &w.w_v_flat, &w.w_v, &w.b_v).ctx(ctx)?;
        let v = run.hook(ah(AttnHook::V), v)?;
        let (q, k) = match &self.rotary {
            Some(rot) => {
                let q = run.hook(ah(AttnHook::RotQ), rot.apply(&q).ctx(ctx)?)?;
                let k = run.hook(ah(AttnHook::RotK), rot.apply(&k).ctx(ctx)?)?;
                (q, k)
            }
            None => (q, k),
        };
        let (b, p, h, e) = q.dims4().ctx(ctx)?;
        let scale = self.config.layer_attn_scale(layer);
        let (scores_hook, pattern_hook) = (ah(AttnHook::AttnScores), ah(AttnHook::Pattern));
        // The fused CPU core, unless scores or pattern are intervened on (the tensor path then
        // recomputes from the intervened values) or gradients flow (training: the core is not
        // differentiable, the tensor path is).
        let differentiable = q.track_op() || k.track_op() || v.track_op();
        let core =
            if differentiable || run.intervenes(&scores_hook) || run.intervenes(&pattern_hook) {
                None
            } else {
                let spec = attention_cpu::CoreSpec {
                    scale: scale as f32,
                    causal: mask.is_some(),
                    soft_cap: self.config.attn_scores_soft_cap.map(|c| c as f32),
                    keep_scores: run.wants(&scores_hook),
                    keep_pattern: run.wants(&pattern_hook),
                };
                attention_cpu::attention_core(&q, &k, &v, &spec).ctx(ctx)?
            };
        let z = match core {
            Some(core) => {
                if let Some(s) = core.scores {
                    run.hook(scores_hook, s)?;
                }
                if let Some(pt) = core.pattern {
                    run.hook(pattern_hook, pt)?;
                }
                core.z
            }
            None => self.attention_tensors(q, k, v, (b, p, h, e), scale, mask, layer, run)?,
        };
        let z = run.hook(ah(AttnHook::Z), z)?;
        self.attention_out(layer, w, z, (b, p, h, e), run)
    }

    /// The attention core as tensor operations (any device; interventions on scores or
    /// pattern).
    #[allow(clippy::too_many_arguments)]
    fn attention_tensors(
        &self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        (b, p, h, e): (usize, usize, usize, usize),
        scale: f64,
        mask: Option<&Tensor>,
        layer: usize,
        run: &mut Run<'_>,
    ) -> Result<Tensor, ModelError> {
        let ah = |a| HookPoint::attn(layer, a);
        let ctx = format!("computing attention of block {layer}");
        let ctx = ctx.as_str();
        // Grouped-query attention: query head j reads key/value head j / (h / kv), as
        // transformers' repeat_kv; the hooks above hold the kv heads themselves.
        let kv = k.dim(2).ctx(ctx)?;
        let (k, v) = if kv == h {
            (k, v)
        } else {
            let repeat = |x: &Tensor| {
                x.unsqueeze(3)
                    .and_then(|x| x.broadcast_as((b, p, kv, h / kv, e)))
                    .and_then(|x| x.contiguous())
                    .and_then(|x| x.reshape((b, p, h, e)))
            };
            (repeat(&k).ctx(ctx)?, repeat(&v).ctx(ctx)?)
        };
        let qt = q.transpose(1, 2).and_then(|t| t.contiguous()).ctx(ctx)?; // [b,h,q,e]
        let kt = k
            .permute((0, 2, 3, 1))
            .and_then(|t| t.contiguous())
            .ctx(ctx)?; // [b,h,e,k]
        let mut scores = qt.matmul(&kt).and_then(|s| s / scale).ctx(ctx)?;
        if let Some(cap) = self.config.attn_scores_soft_cap {
            scores = soft_cap(&scores, cap).ctx(ctx)?;
        }
        if let Some(mask) = mask {
            let neg = Tensor::new(f32::NEG_INFINITY, &self.device)
                .and_then(|t| t.broadcast_as((b, h, p, p)))
                .ctx(ctx)?;
            scores = mask
                .broadcast_as((b, h, p, p))
                .and_then(|m| m.where_cond(&scores, &neg))
                .ctx(ctx)?;
        }
        let scores = run.hook(ah(AttnHook::AttnScores), scores)?;
        let pattern = softmax_last(&scores).ctx(ctx)?;
        let pattern = run.hook(ah(AttnHook::Pattern), pattern)?;
        let vt = v.transpose(1, 2).and_then(|t| t.contiguous()).ctx(ctx)?; // [b,h,k,e]
        let z = pattern
            .contiguous()
            .and_then(|pt| pt.matmul(&vt))
            .and_then(|z| z.transpose(1, 2))
            .and_then(|z| z.contiguous())
            .ctx(ctx)?; // [b,q,h,e]
        Ok(z)
    }

    /// Heads' outputs to the residual stream (through `hook_result` when it is wanted).
    fn attention_out(
        &self,
        layer: usize,
        w: &AttnWeights,
        z: Tensor,
        (b, p, h, e): (usize, usize, usize, usize),
        run: &mut Run<'_>,
    ) -> Result<Tensor, ModelError> {
        let ah = |a| HookPoint::attn(layer, a);
        let ctx = format!("computing attention of block {layer}");
        let ctx = ctx.as_str();
        let result_hook = ah(AttnHook::Result);
        let out_of = |z: &Tensor| {
            z.reshape((b, p, h * e))
                .and_then(|z| linear(&z, &w.w_o_flat, Some(&w.b_o)))
                .ctx(ctx)
        };
        if self.config.use_attn_result || run.wants(&result_hook) {
            let d = self.config.d_model;
            let result = z
                .permute((2, 0, 1, 3))
                .and_then(|t| t.contiguous())
                .and_then(|t| t.reshape((h, b * p, e)))
                .and_then(|t| t.matmul(&w.w_o))
                .and_then(|t| t.reshape((h, b, p, d)))
                .and_then(|t| t.permute((1, 2, 0, 3)))
                .and_then(|t| t.contiguous())
                .ctx(ctx)?; // [b,p,h,d]
            if run.intervenes(&result_hook) {
                // The output is what the (intervened) per-head results add up to.
                let result = run.hook(result_hook, result)?;
                result.sum(2).and_then(|t| t.broadcast_add(&w.b_o)).ctx(ctx)
            } else {
                // Only cached: the output is the same sum, computed as one matmul of z, which is
                // much faster than a reduction over the head axis.
                run.hook(result_hook, result)?;
                out_of(&z)
            }
        } else {
            out_of(&z)
        }
    }

    fn mlp(
        &self,
        layer: usize,
        w: &MlpWeights,
        x: &Tensor,
        run: &mut Run<'_>,
    ) -> Result<Tensor, ModelError> {
        let mh = |m| HookPoint::mlp(layer, m);
        let ctx = format!("computing the MLP of block {layer}");
        let ctx = ctx.as_str();
        let act = self.config.act_fn.unwrap_or(ActFn::Relu);
        let post = match &w.w_gate {
            Some(w_gate) => {
                let pre = linear(x, w_gate, None).ctx(ctx)?;
                let pre = run.hook(mh(MlpHook::Pre), pre)?;
                if act.has_layer_norm() {
                    self.mlp_ln(layer, w, activation(act, &pre).ctx(ctx)?, run)?
                } else {
                    let pre_linear = linear(x, &w.w_in, None).ctx(ctx)?;
                    let pre_linear = run.hook(mh(MlpHook::PreLinear), pre_linear)?;
                    let post = activation(act, &pre)
                        .and_then(|a| a * pre_linear)
                        .and_then(|a| a.broadcast_add(&w.b_in))
                        .ctx(ctx)?;
                    run.hook(mh(MlpHook::Post), post)?
                }
            }
            None => {
                let (pre_hook, post_hook) = (mh(MlpHook::Pre), mh(MlpHook::Post));
                let y = linear(x, &w.w_in, None).ctx(ctx)?;
                // Bias and activation in one pass, unless `hook_pre` is changed between them.
                if !act.has_layer_norm() && !run.intervenes(&pre_hook) {
                    let keep_pre = run.select.contains(&pre_hook);
                    if let Some((pre, post)) =
                        fused_cpu::bias_activation(&y, &w.b_in, act, keep_pre).ctx(ctx)?
                    {
                        if let Some(pre) = pre {
                            run.hook(pre_hook, pre)?;
                        }
                        let post = run.hook(post_hook, post)?;
                        return linear(&post, &w.w_out, Some(&w.b_out)).ctx(ctx);
                    }
                }
                let pre = y.broadcast_add(&w.b_in).ctx(ctx)?;
                let pre = run.hook(pre_hook, pre)?;
                if act.has_layer_norm() {
                    self.mlp_ln(layer, w, activation(act, &pre).ctx(ctx)?, run)?
                } else {
                    run.hook(mh(MlpHook::Post), activation(act, &pre).ctx(ctx)?)?
                }
            }
        };
        linear(&post, &w.w_out, Some(&w.b_out)).ctx(ctx)
    }

    /// `hook_mid` then `mlp.ln` then `hook_post`, for `solu_ln`.
    fn mlp_ln(
        &self,
        layer: usize,
        w: &MlpWeights,
        mid: Tensor,
        run: &mut Run<'_>,
    ) -> Result<Tensor, ModelError> {
        let mid = run.hook(HookPoint::mlp(layer, MlpHook::Mid), mid)?;
        let ln = w.ln.as_ref().ok_or_else(|| ModelError::Compute {
            context: format!("block {layer}: solu_ln MLP without mlp.ln weights"),
            source: candle_core::Error::Msg("missing mlp.ln".into()),
        })?;
        let post = self.norm(NormSite::MlpLn(layer), ln, &mid, run)?;
        run.hook(HookPoint::mlp(layer, MlpHook::Post), post)
    }
}

fn soft_cap(x: &Tensor, cap: f64) -> candle_core::Result<Tensor> {
    (x / cap)?.tanh()? * cap
}

/// The MLP activation functions, as TransformerLens defines them.
fn activation(act: ActFn, x: &Tensor) -> candle_core::Result<Tensor> {
    match act {
        ActFn::Relu => x.relu(),
        ActFn::Gelu => x.gelu_erf(),
        // candle's `gelu` is the tanh approximation 0.5x(1+tanh(√(2/π)(x+0.044715x³))), which
        // is what gelu_new, gelu_fast and gelu_pytorch_tanh all compute.
        ActFn::GeluNew | ActFn::GeluFast | ActFn::GeluPytorchTanh => x.gelu(),
        ActFn::Silu => x.silu(),
        ActFn::Solu | ActFn::SoluLn => x.mul(&softmax_last(x)?),
    }
}

#[cfg(test)]
mod tests;
