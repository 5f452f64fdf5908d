//! TransformerLens hook points as a typed enum whose text form round-trips TransformerLens' names.
//!
//! `HookPoint`'s `Display` and `FromStr` use TransformerLens' exact names (`hook_embed`,
//! `blocks.1.attn.hook_z`, `ln_final.hook_normalized`, ...), so caches, CLI flags and specs
//! speak the names researchers already know. The derived order is forward order, which is the
//! order caches are listed in and interventions fire in.
//!
//! This module is shared vocabulary, not a stage: the spec checker (`lang`) validates circuit
//! hook names with it and the runtime (`model`) runs them, so the two can never disagree.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A name that is not a TransformerLens hook point; `hint` (possibly empty) says what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a TransformerLens hook point{hint}")]
pub struct UnknownHook {
    pub name: String,
    pub hint: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NormHook {
    /// `hook_scale`: `sqrt(mean(x²) + eps)` (after centering for LN), shape `[batch, pos, 1]`.
    Scale,
    /// `hook_normalized`: `x / scale`, before the affine part.
    Normalized,
}

/// The hooks inside `blocks.{l}.attn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttnHook {
    /// `[batch, pos, head, d_head]`
    Q,
    K,
    V,
    /// Rotated queries/keys (rotary models only), `[batch, pos, head, d_head]`.
    RotQ,
    RotK,
    /// `[batch, head, query_pos, key_pos]`, scaled, masked entries = -inf.
    AttnScores,
    /// `[batch, head, query_pos, key_pos]`
    Pattern,
    /// `[batch, pos, head, d_head]`
    Z,
    /// Per-head output `[batch, pos, head, d_model]` (computed only when asked for).
    Result,
}

/// The hooks inside `blocks.{l}.mlp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MlpHook {
    /// `hook_pre`: `x @ W_in + b_in` (`x @ W_gate` for gated MLPs), `[batch, pos, d_mlp]`.
    Pre,
    /// `hook_pre_linear`: `x @ W_in` (gated MLPs only).
    PreLinear,
    /// `hook_mid`: the activation before the MLP LayerNorm (`solu_ln` only).
    Mid,
    /// `mlp.ln.*` (`solu_ln` only).
    Ln(NormHook),
    /// `hook_post`: the hidden activation fed to `W_out`.
    Post,
}

/// The hooks of `blocks.{l}`, in forward order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlockHook {
    ResidPre,
    /// `hook_attn_in` (`use_attn_in` only), `[batch, pos, head, d_model]`.
    AttnIn,
    /// `hook_q_input` / `hook_k_input` / `hook_v_input` (`use_split_qkv_input` only).
    QInput,
    KInput,
    VInput,
    Ln1(NormHook),
    Attn(AttnHook),
    AttnOut,
    /// Absent in attn-only and parallel-attn-mlp models.
    ResidMid,
    /// `hook_mlp_in`: the MLP's input before `ln2` (a copy of `resid_mid`).
    MlpIn,
    Ln2(NormHook),
    Mlp(MlpHook),
    MlpOut,
    ResidPost,
}

/// A TransformerLens hook point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookPoint {
    /// `hook_tokens` (`use_hook_tokens` only): the token ids `[batch, pos]`, as f32 in caches.
    Tokens,
    /// `hook_embed`
    Embed,
    /// `hook_pos_embed` (standard and shortformer positions only)
    PosEmbed,
    /// `blocks.{layer}.…`
    Block { layer: usize, hook: BlockHook },
    /// `ln_final.hook_scale` / `ln_final.hook_normalized`
    LnFinal(NormHook),
    /// `unembed.hook_in`
    UnembedIn,
    /// `unembed.hook_out`
    UnembedOut,
}

/// Where the head and position axes of a hook's tensor are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HookAxes {
    /// Axis indexed by `Site::head`, if the tensor has one.
    pub head: Option<usize>,
    /// Axis indexed by `Site::positions` (the query position for scores and patterns).
    pub pos: usize,
}

impl HookPoint {
    pub fn block(layer: usize, hook: BlockHook) -> Self {
        HookPoint::Block { layer, hook }
    }

    pub fn attn(layer: usize, hook: AttnHook) -> Self {
        HookPoint::Block {
            layer,
            hook: BlockHook::Attn(hook),
        }
    }

    pub fn mlp(layer: usize, hook: MlpHook) -> Self {
        HookPoint::Block {
            layer,
            hook: BlockHook::Mlp(hook),
        }
    }

    /// The layer of a block hook.
    pub fn layer(&self) -> Option<usize> {
        match self {
            HookPoint::Block { layer, .. } => Some(*layer),
            _ => None,
        }
    }

    /// Head and position axes of this hook's activation tensor.
    pub fn axes(&self) -> HookAxes {
        use AttnHook as A;
        use BlockHook as B;
        match self {
            HookPoint::Block { hook, .. } => match hook {
                B::Attn(A::AttnScores | A::Pattern) => HookAxes {
                    head: Some(1),
                    pos: 2,
                },
                B::Attn(_) | B::AttnIn | B::QInput | B::KInput | B::VInput => HookAxes {
                    head: Some(2),
                    pos: 1,
                },
                _ => HookAxes { head: None, pos: 1 },
            },
            _ => HookAxes { head: None, pos: 1 },
        }
    }

    /// Every hook point a model of `n_layers` layers could have, whatever its config: the
    /// vocabulary that spec files and command lines are checked against.
    pub fn every(n_layers: usize) -> Vec<HookPoint> {
        let mut out = vec![HookPoint::Tokens, HookPoint::Embed, HookPoint::PosEmbed];
        for layer in 0..n_layers {
            out.extend(BlockHook::ALL.map(|hook| HookPoint::Block { layer, hook }));
        }
        out.extend(NormHook::ALL.map(HookPoint::LnFinal));
        out.extend([HookPoint::UnembedIn, HookPoint::UnembedOut]);
        out
    }
}

impl NormHook {
    pub const ALL: [NormHook; 2] = [NormHook::Scale, NormHook::Normalized];
}

impl BlockHook {
    /// Every hook a block can have, in forward order.
    pub const ALL: [BlockHook; 29] = {
        use AttnHook as A;
        use BlockHook as B;
        use NormHook as N;
        [
            B::ResidPre,
            B::AttnIn,
            B::QInput,
            B::KInput,
            B::VInput,
            B::Ln1(N::Scale),
            B::Ln1(N::Normalized),
            B::Attn(A::Q),
            B::Attn(A::K),
            B::Attn(A::V),
            B::Attn(A::RotQ),
            B::Attn(A::RotK),
            B::Attn(A::AttnScores),
            B::Attn(A::Pattern),
            B::Attn(A::Z),
            B::Attn(A::Result),
            B::AttnOut,
            B::ResidMid,
            B::MlpIn,
            B::Ln2(N::Scale),
            B::Ln2(N::Normalized),
            B::Mlp(MlpHook::Pre),
            B::Mlp(MlpHook::PreLinear),
            B::Mlp(MlpHook::Mid),
            B::Mlp(MlpHook::Ln(N::Scale)),
            B::Mlp(MlpHook::Ln(N::Normalized)),
            B::Mlp(MlpHook::Post),
            B::MlpOut,
            B::ResidPost,
        ]
    };
}

fn norm_name(n: NormHook) -> &'static str {
    match n {
        NormHook::Scale => "hook_scale",
        NormHook::Normalized => "hook_normalized",
    }
}

fn attn_name(a: AttnHook) -> &'static str {
    match a {
        AttnHook::Q => "hook_q",
        AttnHook::K => "hook_k",
        AttnHook::V => "hook_v",
        AttnHook::RotQ => "hook_rot_q",
        AttnHook::RotK => "hook_rot_k",
        AttnHook::AttnScores => "hook_attn_scores",
        AttnHook::Pattern => "hook_pattern",
        AttnHook::Z => "hook_z",
        AttnHook::Result => "hook_result",
    }
}

/// The name inside `blocks.{l}.`; parsing inverts it, so each name is written only here.
impl fmt::Display for BlockHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockHook::ResidPre => f.write_str("hook_resid_pre"),
            BlockHook::AttnIn => f.write_str("hook_attn_in"),
            BlockHook::QInput => f.write_str("hook_q_input"),
            BlockHook::KInput => f.write_str("hook_k_input"),
            BlockHook::VInput => f.write_str("hook_v_input"),
            BlockHook::Ln1(n) => write!(f, "ln1.{}", norm_name(*n)),
            BlockHook::Attn(a) => write!(f, "attn.{}", attn_name(*a)),
            BlockHook::AttnOut => f.write_str("hook_attn_out"),
            BlockHook::ResidMid => f.write_str("hook_resid_mid"),
            BlockHook::MlpIn => f.write_str("hook_mlp_in"),
            BlockHook::Ln2(n) => write!(f, "ln2.{}", norm_name(*n)),
            BlockHook::Mlp(m) => match m {
                MlpHook::Pre => f.write_str("mlp.hook_pre"),
                MlpHook::PreLinear => f.write_str("mlp.hook_pre_linear"),
                MlpHook::Mid => f.write_str("mlp.hook_mid"),
                MlpHook::Ln(n) => write!(f, "mlp.ln.{}", norm_name(*n)),
                MlpHook::Post => f.write_str("mlp.hook_post"),
            },
            BlockHook::MlpOut => f.write_str("hook_mlp_out"),
            BlockHook::ResidPost => f.write_str("hook_resid_post"),
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookPoint::Tokens => f.write_str("hook_tokens"),
            HookPoint::Embed => f.write_str("hook_embed"),
            HookPoint::PosEmbed => f.write_str("hook_pos_embed"),
            HookPoint::LnFinal(n) => write!(f, "ln_final.{}", norm_name(*n)),
            HookPoint::UnembedIn => f.write_str("unembed.hook_in"),
            HookPoint::UnembedOut => f.write_str("unembed.hook_out"),
            HookPoint::Block { layer, hook } => write!(f, "blocks.{layer}.{hook}"),
        }
    }
}

impl FromStr for HookPoint {
    type Err = UnknownHook;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = |hint: &str| UnknownHook {
            name: s.to_string(),
            hint: hint.to_string(),
        };
        match s {
            "hook_tokens" => return Ok(HookPoint::Tokens),
            "hook_embed" => return Ok(HookPoint::Embed),
            "hook_pos_embed" => return Ok(HookPoint::PosEmbed),
            "unembed.hook_in" => return Ok(HookPoint::UnembedIn),
            "unembed.hook_out" => return Ok(HookPoint::UnembedOut),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix("ln_final.") {
            return NormHook::ALL
                .into_iter()
                .find(|n| norm_name(*n) == rest)
                .map(HookPoint::LnFinal)
                .ok_or_else(|| unknown(" (ln_final has hook_scale and hook_normalized)"));
        }
        if let Some(rest) = s.strip_prefix("blocks.") {
            let (layer, rest) = rest
                .split_once('.')
                .ok_or_else(|| unknown(" (expected blocks.<layer>.<hook>)"))?;
            // Only canonical decimal layers, so that Display(FromStr(s)) == s.
            let canonical = !layer.is_empty()
                && layer.bytes().all(|b| b.is_ascii_digit())
                && (layer == "0" || !layer.starts_with('0'));
            let layer: usize = layer
                .parse()
                .ok()
                .filter(|_| canonical)
                .ok_or_else(|| unknown(" (the layer must be a decimal number)"))?;
            let hook = BlockHook::ALL
                .into_iter()
                .find(|h| h.to_string() == rest)
                .ok_or_else(|| unknown(""))?;
            return Ok(HookPoint::Block { layer, hook });
        }
        Err(unknown(""))
    }
}

impl Serialize for HookPoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HookPoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
