//! The shape of a trained implementation and its seeded initial weights.
//!
//! A trained model is a plain TransformerLens model (pre-LayerNorm, relu MLPs, learned positions,
//! √d_head attention scale) whose attention direction, context and vocabularies are the compiled
//! model's, so one sidecar serves both. Its depth and head count must hold every site of the
//! correspondence; [`Architecture::draw`] samples the rest (the paper's "random architecture").

use candle_core::Device;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::Serialize;

use super::TrainError;
use super::correspondence::Correspondence;
use crate::artifact::tl::{self, BlockNorm, BlockParam};
use crate::compile::Compiled;
use crate::model::config::{AttentionDir, Normalization};
use crate::model::io::{HostTensor, NamedTensors};
use crate::model::{ModelConfig, Transformer, Weights};

/// The sizes of a trained model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Architecture {
    pub n_layers: usize,
    pub n_heads: usize,
    pub d_model: usize,
    pub d_head: usize,
    pub d_mlp: usize,
    pub n_ctx: usize,
    pub d_vocab: usize,
    pub d_vocab_out: usize,
    pub bidirectional: bool,
}

/// Residual width of the default architecture (the toy size of the paper's trained models).
pub const DEFAULT_D_MODEL: usize = 64;
const DEFAULT_D_HEAD: usize = 16;
const DEFAULT_D_MLP: usize = 128;

impl Architecture {
    /// The smallest depth and head count that hold `corr`'s sites and the compiled model's
    /// schedule, at the default widths.
    pub fn default_for(compiled: &Compiled, corr: &Correspondence) -> Self {
        let shape = compiled.shape();
        let (layers, heads) = corr.extent();
        Architecture {
            n_layers: shape.n_layers.max(layers).max(1),
            n_heads: shape.n_heads.max(heads).max(1),
            d_model: DEFAULT_D_MODEL,
            d_head: DEFAULT_D_HEAD,
            d_mlp: DEFAULT_D_MLP,
            n_ctx: compiled.weights.n_ctx,
            d_vocab: compiled.weights.d_vocab,
            d_vocab_out: compiled.weights.d_vocab_out,
            bidirectional: true,
        }
    }

    /// A random architecture around [`default_for`](Self::default_for): up to one more layer and
    /// one more head than the sites need, and widths drawn from small sets, all from `rng`.
    pub fn draw(compiled: &Compiled, corr: &Correspondence, rng: &mut ChaCha8Rng) -> Self {
        let base = Self::default_for(compiled, corr);
        let pick = |rng: &mut ChaCha8Rng, from: &[usize]| from[rng.random_range(0..from.len())];
        Architecture {
            n_layers: base.n_layers + rng.random_range(0..=1),
            n_heads: base.n_heads + rng.random_range(0..=1),
            d_model: pick(rng, &[48, 64, 96]),
            d_head: pick(rng, &[8, 16]),
            d_mlp: pick(rng, &[64, 128, 256]),
            ..base
        }
    }

    /// The TransformerLens config of this shape.
    pub fn config(&self) -> ModelConfig {
        let mut c = ModelConfig::simple(
            self.n_layers,
            self.d_model,
            self.n_heads,
            self.d_mlp,
            self.d_vocab,
            self.n_ctx,
        );
        c.d_head = self.d_head;
        c.attn_scale = (self.d_head as f64).sqrt();
        c.d_vocab_out = self.d_vocab_out;
        c.normalization = Normalization::LayerNorm;
        c.attention_dir = if self.bidirectional {
            AttentionDir::Bidirectional
        } else {
            AttentionDir::Causal
        };
        c
    }

    /// `2 layers × 1 head, d_model 64, d_head 16, d_mlp 128`.
    pub fn describe(&self) -> String {
        format!(
            "{} layer{} × {} head{}, d_model {}, d_head {}, d_mlp {}",
            self.n_layers,
            if self.n_layers == 1 { "" } else { "s" },
            self.n_heads,
            if self.n_heads == 1 { "" } else { "s" },
            self.d_model,
            self.d_head,
            self.d_mlp
        )
    }

    /// Seeded initial weights: Gaussian matrices with TransformerLens' default standard
    /// deviation `0.8 / √d_model`, zero biases, unit LayerNorm gains and zero shifts.
    pub fn init(&self, seed: u64, device: &Device) -> Result<Transformer, TrainError> {
        let cfg = self.config();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let std = 0.8 / (self.d_model as f32).sqrt();
        let normal = Normal::new(0.0f32, std).map_err(|e| TrainError::Setup(e.to_string()))?;
        let mut host: Vec<(String, HostTensor)> = Vec::new();
        let mut put = |name: String, shape: Vec<usize>, fill: Fill| {
            let n: usize = shape.iter().product();
            let data = match fill {
                Fill::Gauss => (0..n).map(|_| normal.sample(&mut rng)).collect(),
                Fill::Const(c) => vec![c; n],
            };
            host.push((name, HostTensor { shape, data }));
        };
        let (d, h, e, m) = (self.d_model, self.n_heads, self.d_head, self.d_mlp);
        let ln = |put: &mut dyn FnMut(String, Vec<usize>, Fill), prefix: &str| {
            put(tl::norm_weight(prefix), vec![d], Fill::Const(1.0));
            put(tl::norm_bias(prefix), vec![d], Fill::Const(0.0));
        };
        put(tl::EMBED_W_E.into(), vec![self.d_vocab, d], Fill::Gauss);
        put(tl::POS_EMBED_W_POS.into(), vec![self.n_ctx, d], Fill::Gauss);
        for l in 0..self.n_layers {
            ln(&mut put, &tl::block_norm(l, BlockNorm::Ln1));
            let name = |p| tl::block_param(l, p, false);
            for p in [BlockParam::WQ, BlockParam::WK, BlockParam::WV] {
                put(name(p), vec![h, d, e], Fill::Gauss);
            }
            put(name(BlockParam::WO), vec![h, e, d], Fill::Gauss);
            for p in [BlockParam::BQ, BlockParam::BK, BlockParam::BV] {
                put(name(p), vec![h, e], Fill::Const(0.0));
            }
            put(name(BlockParam::BO), vec![d], Fill::Const(0.0));
            ln(&mut put, &tl::block_norm(l, BlockNorm::Ln2));
            put(tl::block(l, BlockParam::WIn), vec![d, m], Fill::Gauss);
            put(tl::block(l, BlockParam::BIn), vec![m], Fill::Const(0.0));
            put(tl::block(l, BlockParam::WOut), vec![m, d], Fill::Gauss);
            put(tl::block(l, BlockParam::BOut), vec![d], Fill::Const(0.0));
        }
        ln(&mut put, tl::LN_FINAL);
        put(
            tl::UNEMBED_W_U.into(),
            vec![d, self.d_vocab_out],
            Fill::Gauss,
        );
        put(
            tl::UNEMBED_B_U.into(),
            vec![self.d_vocab_out],
            Fill::Const(0.0),
        );
        let src = NamedTensors::from_host(std::path::Path::new("<init>"), host);
        let weights = Weights::from_named(&cfg, &src, device)?;
        Ok(Transformer::new(cfg, weights)?)
    }
}

#[derive(Clone, Copy)]
enum Fill {
    Gauss,
    Const(f32),
}
