//! TransformerLens hook points as a typed enum, and hook selection by glob.
//!
//! `HookPoint`'s `Display` and `FromStr` use TransformerLens' exact names (`hook_embed`,
//! `blocks.1.attn.hook_z`, `ln_final.hook_normalized`, ...), so caches, CLI flags and specs
//! speak the names researchers already know. The derived order is forward order, which is the
//! order caches are listed in and interventions fire in.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::config::{ModelConfig, Normalization, Positional};
use super::error::ModelError;

/// The hooks of a normalization layer.
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

    /// Every hook point a model with this config has, in forward order.
    ///
    /// This follows TransformerLens, with two additions that cost nothing because only hooks
    /// that are asked for are computed: `attn.hook_result` exists whatever `use_attn_result`
    /// says, and `hook_mlp_in` whatever `use_hook_mlp_in` says.
    pub fn all_for(cfg: &ModelConfig) -> Vec<HookPoint> {
        let mut out = vec![];
        if cfg.use_hook_tokens {
            out.push(HookPoint::Tokens);
        }
        out.push(HookPoint::Embed);
        if cfg.has_pos_embed() {
            out.push(HookPoint::PosEmbed);
        }
        let norm_hooks = |n: Normalization| -> Vec<NormHook> {
            if n == Normalization::None {
                vec![]
            } else {
                vec![NormHook::Scale, NormHook::Normalized]
            }
        };
        for layer in 0..cfg.n_layers {
            let mut b = vec![BlockHook::ResidPre];
            if cfg.use_attn_in {
                b.push(BlockHook::AttnIn);
            }
            if cfg.use_split_qkv_input {
                b.extend([BlockHook::QInput, BlockHook::KInput, BlockHook::VInput]);
            }
            b.extend(
                norm_hooks(cfg.normalization)
                    .into_iter()
                    .map(BlockHook::Ln1),
            );
            b.extend([AttnHook::Q, AttnHook::K, AttnHook::V].map(BlockHook::Attn));
            if matches!(cfg.positional, Positional::Rotary(_)) {
                b.extend([AttnHook::RotQ, AttnHook::RotK].map(BlockHook::Attn));
            }
            b.extend(
                [
                    AttnHook::AttnScores,
                    AttnHook::Pattern,
                    AttnHook::Z,
                    AttnHook::Result,
                ]
                .map(BlockHook::Attn),
            );
            b.push(BlockHook::AttnOut);
            if !cfg.attn_only {
                if !cfg.parallel_attn_mlp {
                    b.push(BlockHook::ResidMid);
                }
                b.push(BlockHook::MlpIn);
                b.extend(
                    norm_hooks(cfg.normalization)
                        .into_iter()
                        .map(BlockHook::Ln2),
                );
                b.push(BlockHook::Mlp(MlpHook::Pre));
                let layer_norm_act = cfg.act_fn.is_some_and(|a| a.has_layer_norm());
                if cfg.gated_mlp && !layer_norm_act {
                    b.push(BlockHook::Mlp(MlpHook::PreLinear));
                }
                if layer_norm_act {
                    b.push(BlockHook::Mlp(MlpHook::Mid));
                    b.extend(
                        norm_hooks(cfg.mlp_ln_normalization())
                            .into_iter()
                            .map(|n| BlockHook::Mlp(MlpHook::Ln(n))),
                    );
                }
                b.push(BlockHook::Mlp(MlpHook::Post));
                b.push(BlockHook::MlpOut);
            }
            b.push(BlockHook::ResidPost);
            out.extend(b.into_iter().map(|hook| HookPoint::Block { layer, hook }));
        }
        out.extend(
            norm_hooks(cfg.final_normalization())
                .into_iter()
                .map(HookPoint::LnFinal),
        );
        out.extend([HookPoint::UnembedIn, HookPoint::UnembedOut]);
        out
    }
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

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookPoint::Tokens => f.write_str("hook_tokens"),
            HookPoint::Embed => f.write_str("hook_embed"),
            HookPoint::PosEmbed => f.write_str("hook_pos_embed"),
            HookPoint::LnFinal(n) => write!(f, "ln_final.{}", norm_name(*n)),
            HookPoint::UnembedIn => f.write_str("unembed.hook_in"),
            HookPoint::UnembedOut => f.write_str("unembed.hook_out"),
            HookPoint::Block { layer, hook } => {
                write!(f, "blocks.{layer}.")?;
                match hook {
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
    }
}

fn parse_norm(s: &str) -> Option<NormHook> {
    match s {
        "hook_scale" => Some(NormHook::Scale),
        "hook_normalized" => Some(NormHook::Normalized),
        _ => None,
    }
}

fn parse_block_hook(rest: &str) -> Option<BlockHook> {
    let simple = match rest {
        "hook_resid_pre" => Some(BlockHook::ResidPre),
        "hook_attn_in" => Some(BlockHook::AttnIn),
        "hook_q_input" => Some(BlockHook::QInput),
        "hook_k_input" => Some(BlockHook::KInput),
        "hook_v_input" => Some(BlockHook::VInput),
        "hook_attn_out" => Some(BlockHook::AttnOut),
        "hook_resid_mid" => Some(BlockHook::ResidMid),
        "hook_mlp_in" => Some(BlockHook::MlpIn),
        "hook_mlp_out" => Some(BlockHook::MlpOut),
        "hook_resid_post" => Some(BlockHook::ResidPost),
        _ => None,
    };
    if simple.is_some() {
        return simple;
    }
    let (module, hook) = rest.split_once('.')?;
    match module {
        "ln1" => parse_norm(hook).map(BlockHook::Ln1),
        "ln2" => parse_norm(hook).map(BlockHook::Ln2),
        "attn" => {
            let a = match hook {
                "hook_q" => AttnHook::Q,
                "hook_k" => AttnHook::K,
                "hook_v" => AttnHook::V,
                "hook_rot_q" => AttnHook::RotQ,
                "hook_rot_k" => AttnHook::RotK,
                "hook_attn_scores" => AttnHook::AttnScores,
                "hook_pattern" => AttnHook::Pattern,
                "hook_z" => AttnHook::Z,
                "hook_result" => AttnHook::Result,
                _ => return None,
            };
            Some(BlockHook::Attn(a))
        }
        "mlp" => {
            let m = match hook {
                "hook_pre" => MlpHook::Pre,
                "hook_pre_linear" => MlpHook::PreLinear,
                "hook_mid" => MlpHook::Mid,
                "hook_post" => MlpHook::Post,
                _ => MlpHook::Ln(parse_norm(hook.strip_prefix("ln.")?)?),
            };
            Some(BlockHook::Mlp(m))
        }
        _ => None,
    }
}

impl FromStr for HookPoint {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = |hint: &str| ModelError::UnknownHook {
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
            return parse_norm(rest)
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
            let hook = parse_block_hook(rest).ok_or_else(|| unknown(""))?;
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

/// Which hooks a run keeps in its cache. Only these are kept, and hooks that are costly to
/// compute (`attn.hook_result`) are only computed when kept or intervened on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HookSelection {
    /// Keep nothing: a plain forward pass.
    #[default]
    None,
    /// Keep every hook of the model.
    All,
    /// Keep exactly these.
    Only(BTreeSet<HookPoint>),
}

impl HookSelection {
    pub fn contains(&self, point: &HookPoint) -> bool {
        match self {
            HookSelection::None => false,
            HookSelection::All => true,
            HookSelection::Only(set) => set.contains(point),
        }
    }

    pub fn only(points: impl IntoIterator<Item = HookPoint>) -> Self {
        HookSelection::Only(points.into_iter().collect())
    }

    /// Selects the hooks of `available` matched by any of the glob `patterns` (`*` matches
    /// any run of characters, `?` one, `[0-3]` a class; dots are literal), e.g.
    /// `blocks.*.attn.hook_z`. A pattern that matches no hook is an error, because it is almost
    /// always a typo.
    pub fn from_globs<S: AsRef<str>>(
        patterns: &[S],
        available: &[HookPoint],
    ) -> Result<Self, ModelError> {
        let names: Vec<String> = available.iter().map(|h| h.to_string()).collect();
        let mut set = BTreeSet::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let matcher: GlobMatcher = GlobBuilder::new(pattern)
                .literal_separator(false)
                .build()
                .map_err(|e| ModelError::HookPattern {
                    pattern: pattern.to_string(),
                    reason: format!("is not a valid glob: {e}"),
                })?
                .compile_matcher();
            let mut matched = false;
            for (point, name) in available.iter().zip(&names) {
                if matcher.is_match(name) {
                    set.insert(*point);
                    matched = true;
                }
            }
            if !matched {
                let reason = match pattern.parse::<HookPoint>() {
                    Ok(_) => "names a hook point this model does not have".to_string(),
                    Err(_) => "matches no hook point of this model".to_string(),
                };
                return Err(ModelError::HookPattern {
                    pattern: pattern.to_string(),
                    reason,
                });
            }
        }
        Ok(HookSelection::Only(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_norm() -> impl Strategy<Value = NormHook> {
        prop_oneof![Just(NormHook::Scale), Just(NormHook::Normalized)]
    }

    fn arb_block_hook() -> impl Strategy<Value = BlockHook> {
        let attn = prop_oneof![
            Just(AttnHook::Q),
            Just(AttnHook::K),
            Just(AttnHook::V),
            Just(AttnHook::RotQ),
            Just(AttnHook::RotK),
            Just(AttnHook::AttnScores),
            Just(AttnHook::Pattern),
            Just(AttnHook::Z),
            Just(AttnHook::Result),
        ];
        let mlp = prop_oneof![
            Just(MlpHook::Pre),
            Just(MlpHook::PreLinear),
            Just(MlpHook::Mid),
            Just(MlpHook::Post),
            arb_norm().prop_map(MlpHook::Ln),
        ];
        prop_oneof![
            Just(BlockHook::ResidPre),
            Just(BlockHook::AttnIn),
            Just(BlockHook::QInput),
            Just(BlockHook::KInput),
            Just(BlockHook::VInput),
            arb_norm().prop_map(BlockHook::Ln1),
            attn.prop_map(BlockHook::Attn),
            Just(BlockHook::AttnOut),
            Just(BlockHook::ResidMid),
            Just(BlockHook::MlpIn),
            arb_norm().prop_map(BlockHook::Ln2),
            mlp.prop_map(BlockHook::Mlp),
            Just(BlockHook::MlpOut),
            Just(BlockHook::ResidPost),
        ]
    }

    fn arb_hook() -> impl Strategy<Value = HookPoint> {
        prop_oneof![
            Just(HookPoint::Tokens),
            Just(HookPoint::Embed),
            Just(HookPoint::PosEmbed),
            (0usize..200, arb_block_hook())
                .prop_map(|(layer, hook)| HookPoint::Block { layer, hook }),
            arb_norm().prop_map(HookPoint::LnFinal),
            Just(HookPoint::UnembedIn),
            Just(HookPoint::UnembedOut),
        ]
    }

    proptest! {
        #[test]
        fn display_from_str_round_trip(h in arb_hook()) {
            let name = h.to_string();
            let back: HookPoint = name.parse().unwrap();
            prop_assert_eq!(back, h);
            prop_assert_eq!(back.to_string(), name);
        }

        #[test]
        fn from_str_never_panics_and_only_accepts_canonical_names(s in "[a-z_.0-9]{0,40}") {
            if let Ok(h) = s.parse::<HookPoint>() {
                prop_assert_eq!(h.to_string(), s);
            }
        }
    }

    #[test]
    fn exact_transformer_lens_names() {
        let cases = [
            ("hook_embed", HookPoint::Embed),
            ("hook_pos_embed", HookPoint::PosEmbed),
            ("blocks.1.attn.hook_z", HookPoint::attn(1, AttnHook::Z)),
            (
                "blocks.0.ln1.hook_scale",
                HookPoint::block(0, BlockHook::Ln1(NormHook::Scale)),
            ),
            ("blocks.10.mlp.hook_post", HookPoint::mlp(10, MlpHook::Post)),
            (
                "blocks.2.mlp.ln.hook_normalized",
                HookPoint::mlp(2, MlpHook::Ln(NormHook::Normalized)),
            ),
            (
                "ln_final.hook_normalized",
                HookPoint::LnFinal(NormHook::Normalized),
            ),
            ("unembed.hook_out", HookPoint::UnembedOut),
        ];
        for (name, hook) in cases {
            assert_eq!(hook.to_string(), name);
            assert_eq!(name.parse::<HookPoint>().unwrap(), hook);
        }
        for bad in [
            "blocks.01.hook_resid_pre",
            "blocks.x.hook_resid_pre",
            "hook_z",
            "blocks.0.attn.hook_zz",
            "",
        ] {
            assert!(bad.parse::<HookPoint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hook_list_of_the_fixture_config_matches_transformer_lens() {
        let cfg = ModelConfig::simple(2, 64, 4, 256, 23, 16);
        let names: Vec<String> = HookPoint::all_for(&cfg)
            .iter()
            .map(|h| h.to_string())
            .collect();
        // Everything run_with_cache returns for this config, plus hook_result and hook_mlp_in.
        assert_eq!(names.len(), 40 + 2 * 2);
        assert_eq!(names[0], "hook_embed");
        assert_eq!(names.last().unwrap(), "unembed.hook_out");
        let mut sorted = HookPoint::all_for(&cfg);
        sorted.sort();
        assert_eq!(
            sorted,
            HookPoint::all_for(&cfg),
            "derived order is forward order"
        );
    }

    #[test]
    fn glob_selection() {
        let cfg = ModelConfig::simple(3, 8, 2, 16, 5, 4);
        let all = HookPoint::all_for(&cfg);
        let sel = HookSelection::from_globs(&["blocks.*.attn.hook_z"], &all).unwrap();
        assert_eq!(
            sel,
            HookSelection::only((0..3).map(|l| HookPoint::attn(l, AttnHook::Z)))
        );
        let sel =
            HookSelection::from_globs(&["blocks.[01].hook_resid_*", "hook_embed"], &all).unwrap();
        match sel {
            HookSelection::Only(s) => assert_eq!(s.len(), 1 + 2 * 3),
            _ => unreachable!(),
        }
        let err = HookSelection::from_globs(&["blocks.*.attn.hook_rot_q"], &all).unwrap_err();
        assert!(err.to_string().contains("hook_rot_q"));
        assert!(HookSelection::from_globs(&["blocks.[.hook"], &all).is_err());
    }
}
