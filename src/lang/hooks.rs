//! TransformerLens hook-point names: which names exist, and which carry a head dimension.
//!
//! The grammar of HookedTransformer's hook points:
//!
//! ```text
//! hook_embed | hook_pos_embed | ln_final.hook_scale | ln_final.hook_normalized
//! blocks.{l}.(hook_resid_pre | hook_resid_mid | hook_resid_post | hook_attn_in | hook_mlp_in
//!            | hook_q_input | hook_k_input | hook_v_input | hook_attn_out | hook_mlp_out
//!            | ln1.hook_scale | ln1.hook_normalized | ln2.hook_scale | ln2.hook_normalized
//!            | attn.hook_q | attn.hook_k | attn.hook_v | attn.hook_z | attn.hook_result
//!            | attn.hook_attn_scores | attn.hook_pattern | attn.hook_rot_q | attn.hook_rot_k
//!            | mlp.hook_pre | mlp.hook_post | mlp.hook_pre_linear)
//! ```
//!
//! `[h]` (one head) is accepted on the per-head attention hooks only: `hook_q/k/v/z/result`
//! ([batch, pos, head, d]) and `hook_pattern/attn_scores` ([batch, head, q, k]).

/// Hook points outside the blocks.
pub const GLOBAL_HOOKS: &[&str] = &[
    "hook_embed",
    "hook_pos_embed",
    "ln_final.hook_scale",
    "ln_final.hook_normalized",
];

/// Hook points inside `blocks.{l}.`.
pub const BLOCK_HOOKS: &[&str] = &[
    "hook_resid_pre",
    "hook_resid_mid",
    "hook_resid_post",
    "hook_attn_in",
    "hook_mlp_in",
    "hook_q_input",
    "hook_k_input",
    "hook_v_input",
    "hook_attn_out",
    "hook_mlp_out",
    "ln1.hook_scale",
    "ln1.hook_normalized",
    "ln2.hook_scale",
    "ln2.hook_normalized",
    "attn.hook_q",
    "attn.hook_k",
    "attn.hook_v",
    "attn.hook_z",
    "attn.hook_result",
    "attn.hook_attn_scores",
    "attn.hook_pattern",
    "attn.hook_rot_q",
    "attn.hook_rot_k",
    "mlp.hook_pre",
    "mlp.hook_post",
    "mlp.hook_pre_linear",
];

/// Block hooks with a head dimension, where `[h]` picks one head.
pub const PER_HEAD_HOOKS: &[&str] = &[
    "attn.hook_q",
    "attn.hook_k",
    "attn.hook_v",
    "attn.hook_z",
    "attn.hook_result",
    "attn.hook_pattern",
    "attn.hook_attn_scores",
];

/// Why a hook name is not a TransformerLens hook point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookProblem {
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

/// A parsed hook point: the layer (for block hooks) and the hook within it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookPoint<'a> {
    pub layer: Option<usize>,
    pub hook: &'a str,
}

/// Splits and checks a hook name; `has_head` says whether `[h]` was written after it.
pub fn validate(name: &str, has_head: bool) -> Result<HookPoint<'_>, HookProblem> {
    let point = parse(name)?;
    if has_head && (point.layer.is_none() || !PER_HEAD_HOOKS.contains(&point.hook)) {
        return Err(HookProblem {
            message: format!("`{name}` has no head dimension, so `[h]` cannot pick a head"),
            label: "not a per-head hook".to_string(),
            help: Some(format!(
                "`[h]` goes on the per-head attention hooks (blocks.{{l}}.attn.hook_q, hook_k, hook_v, hook_z, \
                 hook_result, hook_pattern, hook_attn_scores); drop it to use the whole `{name}`"
            )),
        });
    }
    Ok(point)
}

fn parse(name: &str) -> Result<HookPoint<'_>, HookProblem> {
    if GLOBAL_HOOKS.contains(&name) {
        return Ok(HookPoint {
            layer: None,
            hook: name,
        });
    }
    let unknown = |help: String| HookProblem {
        message: format!("`{name}` is not a TransformerLens hook point"),
        label: "unknown hook".to_string(),
        help: Some(help),
    };
    let Some(rest) = name.strip_prefix("blocks.") else {
        if let Some(suffix) = name.strip_prefix("unembed") {
            let _ = suffix;
            return Err(unknown(
                "TransformerLens has no hook inside the unembedding; hook `ln_final.hook_normalized` or the last \
                 block's `hook_resid_post`"
                    .to_string(),
            ));
        }
        let guess = crate::lang::diag::did_you_mean(name, GLOBAL_HOOKS.iter().copied());
        return Err(unknown(match guess {
            Some(g) => format!("did you mean `{g}`?"),
            None if BLOCK_HOOKS.contains(&name) => {
                format!("block hooks need their layer: `blocks.0.{name}`")
            }
            None => format!(
                "hook points are {}, or `blocks.{{l}}.<hook>` such as `blocks.0.attn.hook_z`",
                GLOBAL_HOOKS.join(", ")
            ),
        }));
    };
    let (layer_text, hook) = rest.split_once('.').unwrap_or((rest, ""));
    let valid_layer = !layer_text.is_empty()
        && layer_text.chars().all(|c| c.is_ascii_digit())
        && (layer_text == "0" || !layer_text.starts_with('0'));
    let Some(layer) = layer_text.parse::<usize>().ok().filter(|_| valid_layer) else {
        return Err(HookProblem {
            message: format!("`{name}` needs a layer number after `blocks.`"),
            label: "expected a layer number".to_string(),
            help: Some("write the layer as a plain number: `blocks.0.hook_resid_pre`".to_string()),
        });
    };
    if BLOCK_HOOKS.contains(&hook) {
        return Ok(HookPoint {
            layer: Some(layer),
            hook,
        });
    }
    let help = match hook {
        "" => format!("name a hook inside the block, e.g. `blocks.{layer}.hook_resid_post`"),
        "attn" => format!(
            "name the attention hook: `blocks.{layer}.hook_attn_out` (the layer's attention output) or \
             `blocks.{layer}.attn.hook_z[h]` (one head)"
        ),
        "mlp" => format!(
            "name the MLP hook: `blocks.{layer}.hook_mlp_out` (its output) or `blocks.{layer}.mlp.hook_post` (its \
             hidden activations)"
        ),
        _ => match crate::lang::diag::did_you_mean(hook, BLOCK_HOOKS.iter().copied()) {
            Some(g) => format!("did you mean `blocks.{layer}.{g}`?"),
            None => format!(
                "hooks inside a block: {}",
                BLOCK_HOOKS
                    .iter()
                    .take(10)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
                    + ", ..."
            ),
        },
    };
    Err(unknown(help))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_transformer_lens_hook() {
        for h in GLOBAL_HOOKS {
            assert!(validate(h, false).is_ok(), "{h}");
        }
        for l in [0, 3, 11] {
            for h in BLOCK_HOOKS {
                let name = format!("blocks.{l}.{h}");
                assert_eq!(
                    validate(&name, false).map(|p| p.layer),
                    Ok(Some(l)),
                    "{name}"
                );
                assert_eq!(
                    validate(&name, true).is_ok(),
                    PER_HEAD_HOOKS.contains(h),
                    "{name}[0]"
                );
            }
        }
    }

    #[test]
    fn rejects_made_up_names_with_a_hint() {
        let p = validate("blocks.0.mlp", false).unwrap_err();
        assert!(p.help.unwrap().contains("hook_mlp_out"));
        let p = validate("blocks.0.attn.hook_zz", false).unwrap_err();
        assert!(p.help.unwrap().contains("blocks.0.attn.hook_z"));
        assert!(validate("blocks.x.hook_resid_pre", false).is_err());
        assert!(validate("blocks.01.hook_resid_pre", false).is_err());
        assert!(
            validate("hook_resid_pre", false)
                .unwrap_err()
                .help
                .unwrap()
                .contains("blocks.0.hook_resid_pre")
        );
        assert!(validate("unembed.hook_out", false).is_err());
        assert!(validate("hook_embed", true).is_err());
        assert!(validate("blocks.0.hook_resid_post", true).is_err());
    }
}
