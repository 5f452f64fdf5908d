//! Model weights under TransformerLens names and shapes, checked against the config.

use std::collections::BTreeSet;

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::config::{ModelConfig, Normalization, Positional};
use super::error::{ComputeContext, ModelError};
use super::io::{HostTensor, NamedTensors};
use crate::artifact::tl::{self, BlockNorm, BlockParam};

/// Parameters of one normalization layer (`w`, `b` present as the type requires).
#[derive(Clone, Debug)]
pub struct NormWeights {
    pub kind: Normalization,
    pub w: Option<Tensor>,
    pub b: Option<Tensor>,
}

/// `blocks.{l}.attn.*`, plus the flattened matrices the forward pass multiplies with.
#[derive(Clone, Debug)]
pub struct AttnWeights {
    /// `[n_heads, d_model, d_head]` (`w_k`, `w_v`: `[n_kv_heads, ...]`)
    pub w_q: Tensor,
    pub w_k: Tensor,
    pub w_v: Tensor,
    /// `[n_heads, d_head, d_model]`
    pub w_o: Tensor,
    /// `[n_heads, d_head]` (`b_k`, `b_v`: `[n_kv_heads, d_head]`)
    pub b_q: Tensor,
    pub b_k: Tensor,
    pub b_v: Tensor,
    /// `[d_model]`
    pub b_o: Tensor,
    /// `[d_model, n_heads * d_head]`, head-major columns.
    pub(crate) w_q_flat: Tensor,
    pub(crate) w_k_flat: Tensor,
    pub(crate) w_v_flat: Tensor,
    /// `[n_heads * d_head, d_model]`
    pub(crate) w_o_flat: Tensor,
    /// Key/value weights are saved as TransformerLens' grouped-query names (`_W_K`, ...).
    pub(crate) grouped_names: bool,
}

/// `blocks.{l}.mlp.*`
#[derive(Clone, Debug)]
pub struct MlpWeights {
    /// `[d_model, d_mlp]`
    pub w_in: Tensor,
    pub b_in: Tensor,
    /// `[d_model, d_mlp]`, gated MLPs only.
    pub w_gate: Option<Tensor>,
    /// `[d_mlp, d_model]`
    pub w_out: Tensor,
    pub b_out: Tensor,
    /// `mlp.ln` of `solu_ln` MLPs.
    pub ln: Option<NormWeights>,
}

#[derive(Clone, Debug)]
pub struct BlockWeights {
    pub ln1: NormWeights,
    pub attn: AttnWeights,
    /// `None` for attn-only models.
    pub ln2: Option<NormWeights>,
    pub mlp: Option<MlpWeights>,
}

/// Every parameter of a TransformerLens `HookedTransformer`.
#[derive(Clone, Debug)]
pub struct Weights {
    /// `embed.W_E` `[d_vocab, d_model]`
    pub w_e: Tensor,
    /// `pos_embed.W_pos` `[n_ctx, d_model]` (standard and shortformer only)
    pub w_pos: Option<Tensor>,
    pub blocks: Vec<BlockWeights>,
    pub ln_final: NormWeights,
    /// `unembed.W_U` `[d_model, d_vocab_out]`
    pub w_u: Tensor,
    /// `unembed.b_U` `[d_vocab_out]`
    pub b_u: Tensor,
}

/// Buffers TransformerLens keeps in `state_dict()` that carry no parameters.
fn is_known_buffer(name: &str) -> bool {
    [
        "attn.mask",
        "attn.IGNORE",
        "attn.rotary_sin",
        "attn.rotary_cos",
    ]
    .iter()
    .any(|suffix| name.ends_with(suffix))
}

/// Takes tensors out of a `NamedTensors` by TL name, recording which were used.
struct Taker<'a> {
    src: &'a NamedTensors,
    device: &'a Device,
    used: BTreeSet<String>,
}

impl Taker<'_> {
    fn take(&mut self, name: &str, shape: &[usize], why: &str) -> Result<Tensor, ModelError> {
        let t = self.src.get(name, Some(shape), why)?;
        self.used.insert(name.to_string());
        t.to_device(self.device)
    }

    fn norm(
        &mut self,
        prefix: &str,
        kind: Normalization,
        len: usize,
        why: &str,
    ) -> Result<NormWeights, ModelError> {
        let (w, b) = match kind {
            Normalization::LayerNorm => (true, true),
            Normalization::Rms => (true, false),
            _ => (false, false),
        };
        let w = w
            .then(|| self.take(&tl::norm_weight(prefix), &[len], why))
            .transpose()?;
        let b = b
            .then(|| self.take(&tl::norm_bias(prefix), &[len], why))
            .transpose()?;
        Ok(NormWeights { kind, w, b })
    }
}

fn flat_in(w: &Tensor, d_model: usize, width: usize) -> candle_core::Result<Tensor> {
    // [h, d, e] -> [d, h, e] -> [d, h*e]: column block h is head h.
    w.permute((1, 0, 2))?
        .contiguous()?
        .reshape((d_model, width))
}

impl AttnWeights {
    /// Builds the flattened matrices from the TL-shaped ones. The arguments are
    /// TransformerLens' eight attention parameters, in its order.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        w_q: Tensor,
        w_k: Tensor,
        w_v: Tensor,
        w_o: Tensor,
        b_q: Tensor,
        b_k: Tensor,
        b_v: Tensor,
        b_o: Tensor,
    ) -> Result<Self, ModelError> {
        let (h, d, e) = w_q.dims3().ctx("reading W_Q's shape")?;
        let width = h * e;
        let kv_width = w_k.dims3().ctx("reading W_K's shape")?.0 * e;
        Ok(AttnWeights {
            grouped_names: false,
            w_q_flat: flat_in(&w_q, d, width).ctx("flattening W_Q")?,
            w_k_flat: flat_in(&w_k, d, kv_width).ctx("flattening W_K")?,
            w_v_flat: flat_in(&w_v, d, kv_width).ctx("flattening W_V")?,
            w_o_flat: w_o.reshape((width, d)).ctx("flattening W_O")?,
            w_q,
            w_k,
            w_v,
            w_o,
            b_q,
            b_k,
            b_v,
            b_o,
        })
    }
}

impl Weights {
    /// Reads every parameter the config needs from `src`, checking names and shapes, and
    /// refuses parameters the config does not use (they mean config and checkpoint disagree).
    /// One function (~125 lines): the parameters in `named_parameters()` order, so it reads as
    /// the checkpoint does.
    pub fn from_named(
        cfg: &ModelConfig,
        src: &NamedTensors,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let mut t = Taker {
            src,
            device,
            used: BTreeSet::new(),
        };
        let (d, h, e) = (cfg.d_model, cfg.n_heads, cfg.d_head);
        let kv = cfg.n_kv_heads();
        let grouped = cfg.n_key_value_heads.is_some();
        let w_e = t.take(tl::EMBED_W_E, &[cfg.d_vocab, d], "")?;
        let w_pos = if cfg.has_pos_embed() {
            Some(t.take(
                tl::POS_EMBED_W_POS,
                &[cfg.n_ctx, d],
                " (positional_embedding_type is standard or shortformer)",
            )?)
        } else {
            None
        };
        // Not sized by the config: a block missing from `src` ends the loop with an error first.
        let mut blocks = Vec::new();
        for l in 0..cfg.n_layers {
            let ln1 = t.norm(
                &tl::block_norm(l, BlockNorm::Ln1),
                cfg.normalization,
                d,
                " (normalization_type needs it)",
            )?;
            let mut attn = AttnWeights::new(
                t.take(&tl::block(l, BlockParam::WQ), &[h, d, e], "")?,
                t.take(
                    &tl::block_param(l, BlockParam::WK, grouped),
                    &[kv, d, e],
                    "",
                )?,
                t.take(
                    &tl::block_param(l, BlockParam::WV, grouped),
                    &[kv, d, e],
                    "",
                )?,
                t.take(&tl::block(l, BlockParam::WO), &[h, e, d], "")?,
                t.take(&tl::block(l, BlockParam::BQ), &[h, e], "")?,
                t.take(&tl::block_param(l, BlockParam::BK, grouped), &[kv, e], "")?,
                t.take(&tl::block_param(l, BlockParam::BV, grouped), &[kv, e], "")?,
                t.take(&tl::block(l, BlockParam::BO), &[d], "")?,
            )?;
            attn.grouped_names = cfg.n_key_value_heads.is_some();
            let (ln2, mlp) = if cfg.attn_only {
                (None, None)
            } else {
                let m = cfg.d_mlp.unwrap_or(0);
                let ln2 = t.norm(
                    &tl::block_norm(l, BlockNorm::Ln2),
                    cfg.normalization,
                    d,
                    " (normalization_type needs it)",
                )?;
                let w_gate = if cfg.gated_mlp {
                    Some(t.take(
                        &tl::block(l, BlockParam::WGate),
                        &[d, m],
                        " (gated_mlp is true)",
                    )?)
                } else {
                    None
                };
                let ln = if cfg.act_fn.is_some_and(|a| a.has_layer_norm()) {
                    Some(t.norm(
                        &tl::block_norm(l, BlockNorm::MlpLn),
                        cfg.mlp_ln_normalization(),
                        m,
                        " (act_fn solu_ln needs it)",
                    )?)
                } else {
                    None
                };
                let mlp = MlpWeights {
                    w_in: t.take(&tl::block(l, BlockParam::WIn), &[d, m], "")?,
                    b_in: t.take(&tl::block(l, BlockParam::BIn), &[m], "")?,
                    w_gate,
                    w_out: t.take(&tl::block(l, BlockParam::WOut), &[m, d], "")?,
                    b_out: t.take(&tl::block(l, BlockParam::BOut), &[d], "")?,
                    ln,
                };
                (Some(ln2), Some(mlp))
            };
            blocks.push(BlockWeights {
                ln1,
                attn,
                ln2,
                mlp,
            });
        }
        let ln_final = t.norm(
            tl::LN_FINAL,
            cfg.final_normalization(),
            d,
            " (normalization_type needs it)",
        )?;
        let w_u = t.take(tl::UNEMBED_W_U, &[d, cfg.d_vocab_out], "")?;
        let b_u = t.take(tl::UNEMBED_B_U, &[cfg.d_vocab_out], "")?;

        for name in src.names() {
            if !t.used.contains(name) && !is_known_buffer(name) {
                return Err(ModelError::UnexpectedTensor {
                    path: src.path.clone(),
                    name: name.to_string(),
                    reason: unexpected_reason(cfg, name),
                });
            }
        }
        Ok(Weights {
            w_e,
            w_pos,
            blocks,
            ln_final,
            w_u,
            b_u,
        })
    }

    /// Every parameter under its TransformerLens name, in `named_parameters()` order.
    pub fn named(&self) -> Vec<(String, &Tensor)> {
        let mut out: Vec<(String, &Tensor)> = vec![(tl::EMBED_W_E.into(), &self.w_e)];
        if let Some(p) = &self.w_pos {
            out.push((tl::POS_EMBED_W_POS.into(), p));
        }
        fn push_norm<'a>(out: &mut Vec<(String, &'a Tensor)>, prefix: &str, n: &'a NormWeights) {
            if let Some(w) = &n.w {
                out.push((tl::norm_weight(prefix), w));
            }
            if let Some(b) = &n.b {
                out.push((tl::norm_bias(prefix), b));
            }
        }
        for (l, b) in self.blocks.iter().enumerate() {
            push_norm(&mut out, &tl::block_norm(l, BlockNorm::Ln1), &b.ln1);
            if let Some(ln2) = &b.ln2 {
                push_norm(&mut out, &tl::block_norm(l, BlockNorm::Ln2), ln2);
            }
            let a = &b.attn;
            for (p, t) in [
                (BlockParam::WQ, &a.w_q),
                (BlockParam::WK, &a.w_k),
                (BlockParam::WV, &a.w_v),
                (BlockParam::WO, &a.w_o),
                (BlockParam::BQ, &a.b_q),
                (BlockParam::BK, &a.b_k),
                (BlockParam::BV, &a.b_v),
                (BlockParam::BO, &a.b_o),
            ] {
                out.push((tl::block_param(l, p, a.grouped_names), t));
            }
            if let Some(m) = &b.mlp {
                out.push((tl::block(l, BlockParam::WIn), &m.w_in));
                out.push((tl::block(l, BlockParam::BIn), &m.b_in));
                if let Some(g) = &m.w_gate {
                    out.push((tl::block(l, BlockParam::WGate), g));
                }
                out.push((tl::block(l, BlockParam::WOut), &m.w_out));
                out.push((tl::block(l, BlockParam::BOut), &m.b_out));
                if let Some(ln) = &m.ln {
                    push_norm(&mut out, &tl::block_norm(l, BlockNorm::MlpLn), ln);
                }
            }
        }
        push_norm(&mut out, tl::LN_FINAL, &self.ln_final);
        out.push((tl::UNEMBED_W_U.into(), &self.w_u));
        out.push((tl::UNEMBED_B_U.into(), &self.b_u));
        out
    }

    /// The same model with every parameter replaced by `f(name, parameter)` (TransformerLens
    /// names, [`named`](Self::named) order), the flattened attention matrices rebuilt from the
    /// results. Training uses it to run the forward pass on its variables, so gradients reach
    /// them through the flattening too.
    pub fn map_params(
        &self,
        mut f: impl FnMut(&str, &Tensor) -> candle_core::Result<Tensor>,
    ) -> Result<Weights, ModelError> {
        let named = self.named();
        let mut mapped: std::collections::HashMap<String, Tensor> =
            std::collections::HashMap::with_capacity(named.len());
        for (name, t) in named {
            let new = f(&name, t).ctx("mapping a parameter")?;
            if new.dims() != t.dims() {
                return Err(ModelError::Compute {
                    context: format!("mapping parameter {name}"),
                    source: candle_core::Error::Msg(format!(
                        "the new value has shape {:?}, the parameter {:?}",
                        new.dims(),
                        t.dims()
                    )),
                });
            }
            mapped.insert(name, new);
        }
        let mut take = |name: String| -> Tensor {
            // Every name comes from `named()` above, so it is present.
            mapped
                .remove(&name)
                .unwrap_or_else(|| unreachable!("{name} was mapped"))
        };
        fn norm(
            take: &mut dyn FnMut(String) -> Tensor,
            prefix: &str,
            n: &NormWeights,
        ) -> NormWeights {
            NormWeights {
                kind: n.kind,
                w: n.w.as_ref().map(|_| take(tl::norm_weight(prefix))),
                b: n.b.as_ref().map(|_| take(tl::norm_bias(prefix))),
            }
        }
        let w_e = take(tl::EMBED_W_E.into());
        let w_pos = self
            .w_pos
            .as_ref()
            .map(|_| take(tl::POS_EMBED_W_POS.into()));
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (l, b) in self.blocks.iter().enumerate() {
            let ln1 = norm(&mut take, &tl::block_norm(l, BlockNorm::Ln1), &b.ln1);
            let ln2 = b
                .ln2
                .as_ref()
                .map(|n| norm(&mut take, &tl::block_norm(l, BlockNorm::Ln2), n));
            let g = b.attn.grouped_names;
            let mut p = |param| take(tl::block_param(l, param, g));
            let mut attn = AttnWeights::new(
                p(BlockParam::WQ),
                p(BlockParam::WK),
                p(BlockParam::WV),
                p(BlockParam::WO),
                p(BlockParam::BQ),
                p(BlockParam::BK),
                p(BlockParam::BV),
                p(BlockParam::BO),
            )?;
            attn.grouped_names = g;
            let mlp = b.mlp.as_ref().map(|m| MlpWeights {
                w_in: take(tl::block(l, BlockParam::WIn)),
                b_in: take(tl::block(l, BlockParam::BIn)),
                w_gate: m
                    .w_gate
                    .as_ref()
                    .map(|_| take(tl::block(l, BlockParam::WGate))),
                w_out: take(tl::block(l, BlockParam::WOut)),
                b_out: take(tl::block(l, BlockParam::BOut)),
                ln: m
                    .ln
                    .as_ref()
                    .map(|n| norm(&mut take, &tl::block_norm(l, BlockNorm::MlpLn), n)),
            });
            blocks.push(BlockWeights {
                ln1,
                attn,
                ln2,
                mlp,
            });
        }
        let ln_final = norm(&mut take, tl::LN_FINAL, &self.ln_final);
        Ok(Weights {
            w_e,
            w_pos,
            blocks,
            ln_final,
            w_u: take(tl::UNEMBED_W_U.into()),
            b_u: take(tl::UNEMBED_B_U.into()),
        })
    }

    /// Seeded random weights for tests and benches: Gaussian matrices scaled by
    /// 1/sqrt(fan_in), small Gaussian biases, norm gains near 1. The same config and seed give
    /// the same weights on every machine.
    pub fn random(cfg: &ModelConfig, seed: u64, device: &Device) -> Result<Self, ModelError> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut host: Vec<(String, HostTensor)> = Vec::new();
        let mut gauss = |name: String, shape: Vec<usize>, mean: f32, std: f32| {
            let n: usize = shape.iter().product();
            let normal = Normal::new(mean, std)
                .unwrap_or_else(|_| Normal::new(0.0, 1.0).expect("unit normal"));
            let data = (0..n).map(|_| normal.sample(&mut rng)).collect();
            host.push((name, HostTensor { shape, data }));
        };
        let (d, h, e, v) = (cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_vocab);
        let kv = cfg.n_kv_heads();
        let grouped = cfg.n_key_value_heads.is_some();
        let sd = |fan_in: usize| 1.0 / (fan_in as f32).sqrt();
        let norm = |gauss: &mut dyn FnMut(String, Vec<usize>, f32, f32),
                    prefix: &str,
                    kind: Normalization,
                    len: usize| {
            if matches!(kind, Normalization::LayerNorm | Normalization::Rms) {
                gauss(tl::norm_weight(prefix), vec![len], 1.0, 0.1);
            }
            if kind == Normalization::LayerNorm {
                gauss(tl::norm_bias(prefix), vec![len], 0.0, 0.1);
            }
        };
        gauss(tl::EMBED_W_E.into(), vec![v, d], 0.0, 1.0);
        if cfg.has_pos_embed() {
            gauss(tl::POS_EMBED_W_POS.into(), vec![cfg.n_ctx, d], 0.0, 0.5);
        }
        for l in 0..cfg.n_layers {
            norm(
                &mut gauss,
                &tl::block_norm(l, BlockNorm::Ln1),
                cfg.normalization,
                d,
            );
            let name = |p: BlockParam| tl::block_param(l, p, grouped);
            gauss(name(BlockParam::WQ), vec![h, d, e], 0.0, sd(d));
            for p in [BlockParam::WK, BlockParam::WV] {
                gauss(name(p), vec![kv, d, e], 0.0, sd(d));
            }
            gauss(name(BlockParam::WO), vec![h, e, d], 0.0, sd(h * e));
            gauss(name(BlockParam::BQ), vec![h, e], 0.0, 0.1);
            for p in [BlockParam::BK, BlockParam::BV] {
                gauss(name(p), vec![kv, e], 0.0, 0.1);
            }
            gauss(name(BlockParam::BO), vec![d], 0.0, 0.1);
            if !cfg.attn_only {
                let m = cfg.d_mlp.unwrap_or(0);
                norm(
                    &mut gauss,
                    &tl::block_norm(l, BlockNorm::Ln2),
                    cfg.normalization,
                    d,
                );
                gauss(tl::block(l, BlockParam::WIn), vec![d, m], 0.0, sd(d));
                gauss(tl::block(l, BlockParam::BIn), vec![m], 0.0, 0.1);
                if cfg.gated_mlp {
                    gauss(tl::block(l, BlockParam::WGate), vec![d, m], 0.0, sd(d));
                }
                gauss(tl::block(l, BlockParam::WOut), vec![m, d], 0.0, sd(m));
                gauss(tl::block(l, BlockParam::BOut), vec![d], 0.0, 0.1);
                if cfg.act_fn.is_some_and(|a| a.has_layer_norm()) {
                    norm(
                        &mut gauss,
                        &tl::block_norm(l, BlockNorm::MlpLn),
                        cfg.mlp_ln_normalization(),
                        m,
                    );
                }
            }
        }
        norm(&mut gauss, tl::LN_FINAL, cfg.final_normalization(), d);
        gauss(tl::UNEMBED_W_U.into(), vec![d, cfg.d_vocab_out], 0.0, sd(d));
        gauss(tl::UNEMBED_B_U.into(), vec![cfg.d_vocab_out], 0.0, 0.1);
        let src = NamedTensors::from_host(std::path::Path::new("<random>"), host);
        Weights::from_named(cfg, &src, device)
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.w_e.device()
    }

    /// Checks every tensor is f32 (the forward pass assumes it).
    pub fn dtype(&self) -> DType {
        self.w_e.dtype()
    }
}

fn unexpected_reason(cfg: &ModelConfig, name: &str) -> String {
    if name.ends_with("W_gate") {
        "gated_mlp is false in config.json".into()
    } else if name.starts_with("pos_embed") {
        match cfg.positional {
            Positional::Rotary(_) => {
                "positional_embedding_type is rotary, which has no W_pos".into()
            }
            _ => "not a parameter of this config".into(),
        }
    } else if name.contains(".ln") || name.starts_with(tl::LN_FINAL) {
        format!(
            "normalization_type is {} in config.json",
            cfg.normalization.tl_name().unwrap_or("null")
        )
    } else if name.contains(".mlp.") || name.contains(".ln2.") {
        if cfg.attn_only {
            "attn_only is true in config.json".into()
        } else {
            "not a parameter of this config".into()
        }
    } else if let Some(rest) = name.strip_prefix("blocks.") {
        let layer = rest.split('.').next().unwrap_or("");
        format!(
            "config.json has n_layers = {}, so there is no block {layer}",
            cfg.n_layers
        )
    } else {
        "not a TransformerLens parameter of this config".into()
    }
}
