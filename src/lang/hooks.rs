//! Checking circuit hook names against the TransformerLens hook-point vocabulary of
//! [`crate::hooks`], with the hints a spec author needs when a name is wrong.
//!
//! `[h]` (one head) is accepted on hooks whose tensor has a head axis: `attn.hook_q/k/v/z/result`,
//! `hook_rot_q/k`, `hook_pattern/attn_scores`, and the per-head inputs `hook_attn_in`,
//! `hook_q/k/v_input`.

use crate::hooks::HookPoint;
use crate::lang::diag::did_you_mean;

/// Why a hook name is not a TransformerLens hook point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookProblem {
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

/// Parses and checks a hook name; `has_head` says whether `[h]` was written after it.
pub fn validate(name: &str, has_head: bool) -> Result<HookPoint, HookProblem> {
    let point: HookPoint = name.parse().map_err(|_| unknown(name))?;
    if has_head && point.axes().head.is_none() {
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

/// The names of one layer's block hooks without the `blocks.{l}.` prefix, and the global ones.
fn vocabulary() -> (Vec<String>, Vec<String>) {
    let mut block = vec![];
    let mut global = vec![];
    for point in HookPoint::every(1) {
        let text = point.to_string();
        match text.strip_prefix("blocks.0.") {
            Some(rest) => block.push(rest.to_string()),
            None => global.push(text),
        }
    }
    (block, global)
}

fn unknown(name: &str) -> HookProblem {
    let (block, global) = vocabulary();
    let problem = |help: String| HookProblem {
        message: format!("`{name}` is not a TransformerLens hook point"),
        label: "unknown hook".to_string(),
        help: Some(help),
    };
    let Some(rest) = name.strip_prefix("blocks.") else {
        return problem(
            match did_you_mean(name, global.iter().map(String::as_str)) {
                Some(g) => format!("did you mean `{g}`?"),
                None if block.iter().any(|b| b == name) => {
                    format!("block hooks need their layer: `blocks.0.{name}`")
                }
                None => format!(
                    "hook points are {}, or `blocks.{{l}}.<hook>` such as `blocks.0.attn.hook_z`",
                    global.join(", ")
                ),
            },
        );
    };
    let (layer_text, hook) = rest.split_once('.').unwrap_or((rest, ""));
    let canonical_layer = !layer_text.is_empty()
        && layer_text.bytes().all(|b| b.is_ascii_digit())
        && (layer_text == "0" || !layer_text.starts_with('0'));
    if !canonical_layer {
        return HookProblem {
            message: format!("`{name}` needs a layer number after `blocks.`"),
            label: "expected a layer number".to_string(),
            help: Some("write the layer as a plain number: `blocks.0.hook_resid_pre`".to_string()),
        };
    }
    let layer = layer_text;
    problem(match hook {
        "" => format!("name a hook inside the block, e.g. `blocks.{layer}.hook_resid_post`"),
        "attn" => format!(
            "name the attention hook: `blocks.{layer}.hook_attn_out` (the layer's attention output) or \
             `blocks.{layer}.attn.hook_z[h]` (one head)"
        ),
        "mlp" => format!(
            "name the MLP hook: `blocks.{layer}.hook_mlp_out` (its output) or `blocks.{layer}.mlp.hook_post` (its \
             hidden activations)"
        ),
        _ => match did_you_mean(hook, block.iter().map(String::as_str)) {
            Some(g) => format!("did you mean `blocks.{layer}.{g}`?"),
            None => format!("hooks inside a block: {}, ...", block[..10].join(", ")),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_transformer_lens_hook() {
        for point in HookPoint::every(12) {
            let name = point.to_string();
            assert_eq!(validate(&name, false), Ok(point), "{name}");
            match validate(&name, true) {
                Ok(p) => assert!(p == point && point.axes().head.is_some(), "{name}[0]"),
                Err(e) => assert!(
                    point.axes().head.is_none() && e.message.contains("no head dimension"),
                    "{name}[0]: {e:?}"
                ),
            }
        }
        let out = validate("unembed.hook_out", false).unwrap();
        assert_eq!(out.to_string(), "unembed.hook_out");
        let z = validate("blocks.3.attn.hook_z", true).unwrap();
        assert_eq!(z.to_string(), "blocks.3.attn.hook_z");
        assert!(z.axes().head.is_some());
        assert_eq!(z.layer(), Some(3));
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
        assert!(validate("hook_embed", true).is_err());
        assert!(validate("blocks.0.hook_resid_post", true).is_err());
    }
}
