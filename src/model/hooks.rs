//! The runtime's view of hook points: which ones a given model has, and selection by glob.
//! The hook-point vocabulary itself lives in [`crate::hooks`].

use std::collections::BTreeSet;

use globset::{GlobBuilder, GlobMatcher};

pub use crate::hooks::{AttnHook, BlockHook, HookAxes, HookPoint, MlpHook, NormHook, UnknownHook};

use super::config::{ModelConfig, Normalization, Positional};
use super::error::ModelError;

impl HookPoint {
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

    /// Selects the hooks of `available` matched by any of the glob `patterns` (see
    /// [`expand_globs`]).
    pub fn from_globs<S: AsRef<str>>(
        patterns: &[S],
        available: &[HookPoint],
    ) -> Result<Self, ModelError> {
        Ok(HookSelection::only(expand_globs(patterns, available)?))
    }
}

/// The hooks of `available` matched by the glob `patterns`, the one hook-selection syntax of
/// every command (`run --hooks`, `compare --hooks`): `*` matches any run of characters, `?` one,
/// `[0-3]` a class, `{a,b}` alternatives; dots are literal, so `blocks.*.attn.hook_z` is every
/// layer's `hook_z` and an exact name selects itself. Order: by pattern, then in `available`'s
/// order, each hook once. A pattern that matches no hook is an error, because it is almost
/// always a typo.
pub fn expand_globs<S: AsRef<str>>(
    patterns: &[S],
    available: &[HookPoint],
) -> Result<Vec<HookPoint>, ModelError> {
    let names: Vec<String> = available.iter().map(|h| h.to_string()).collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
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
                matched = true;
                if seen.insert(*point) {
                    out.push(*point);
                }
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
    Ok(out)
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
    fn block_hooks_are_listed_once_in_forward_order() {
        assert!(BlockHook::ALL.windows(2).all(|w| w[0] < w[1]));
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

    #[test]
    fn globs_expand_in_pattern_order_each_hook_once() {
        let cfg = ModelConfig::simple(2, 8, 2, 16, 5, 4);
        let all = HookPoint::all_for(&cfg);
        let got = expand_globs(
            &["blocks.1.hook_resid_post", "blocks.*.hook_resid_{pre,post}"],
            &all,
        )
        .unwrap();
        let names: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(names[0], "blocks.1.hook_resid_post");
        assert_eq!(names.len(), 4, "{names:?}");
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 4, "each hook once: {names:?}");
        assert!(names.contains(&"blocks.0.hook_resid_pre".to_string()));
    }
}
