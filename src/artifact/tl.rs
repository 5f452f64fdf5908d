//! TransformerLens parameter names, spelled once. A model directory's `model.safetensors` uses
//! these names and shapes (`HookedTransformer.state_dict()` with the per-head layout).

/// `[d_vocab, d_model]`
pub const EMBED_W_E: &str = "embed.W_E";
/// `[n_ctx, d_model]`
pub const POS_EMBED_W_POS: &str = "pos_embed.W_pos";
/// `[d_model, d_vocab_out]`
pub const UNEMBED_W_U: &str = "unembed.W_U";
/// `[d_vocab_out]`
pub const UNEMBED_B_U: &str = "unembed.b_U";
/// The final normalisation's prefix (its parameters are [`norm_weight`] / [`norm_bias`]).
pub const LN_FINAL: &str = "ln_final";

/// A parameter of one block, with its name inside the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockParam {
    /// `[n_heads, d_model, d_head]`
    WQ,
    WK,
    WV,
    /// `[n_heads, d_head, d_model]`
    WO,
    /// `[n_heads, d_head]`
    BQ,
    BK,
    BV,
    /// `[d_model]`
    BO,
    /// `[d_model, d_mlp]`
    WIn,
    /// `[d_mlp]`
    BIn,
    /// `[d_mlp, d_model]`
    WOut,
    /// `[d_model]`
    BOut,
    /// `[d_model, d_mlp]`, gated MLPs only
    WGate,
}

/// A normalisation inside a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockNorm {
    /// Before attention.
    Ln1,
    /// Before the MLP.
    Ln2,
    /// Inside the MLP (`solu_ln`).
    MlpLn,
}

impl BlockNorm {
    /// The prefix inside the block.
    pub fn suffix(self) -> &'static str {
        match self {
            BlockNorm::Ln1 => "ln1",
            BlockNorm::Ln2 => "ln2",
            BlockNorm::MlpLn => "mlp.ln",
        }
    }
}

impl BlockParam {
    /// The attention and MLP parameters of a block without layer norm, in the order writers
    /// store them.
    pub const ATTN_MLP: [BlockParam; 12] = [
        BlockParam::WQ,
        BlockParam::WK,
        BlockParam::WV,
        BlockParam::WO,
        BlockParam::BQ,
        BlockParam::BK,
        BlockParam::BV,
        BlockParam::BO,
        BlockParam::WIn,
        BlockParam::BIn,
        BlockParam::WOut,
        BlockParam::BOut,
    ];

    /// The name inside the block (`attn.W_Q`).
    pub fn suffix(self) -> &'static str {
        match self {
            BlockParam::WQ => "attn.W_Q",
            BlockParam::WK => "attn.W_K",
            BlockParam::WV => "attn.W_V",
            BlockParam::WO => "attn.W_O",
            BlockParam::BQ => "attn.b_Q",
            BlockParam::BK => "attn.b_K",
            BlockParam::BV => "attn.b_V",
            BlockParam::BO => "attn.b_O",
            BlockParam::WIn => "mlp.W_in",
            BlockParam::BIn => "mlp.b_in",
            BlockParam::WOut => "mlp.W_out",
            BlockParam::BOut => "mlp.b_out",
            BlockParam::WGate => "mlp.W_gate",
        }
    }

    /// The name inside the block when keys and values are grouped (fewer key/value heads than
    /// query heads): TransformerLens then stores them with a leading underscore (`attn._W_K`).
    pub fn grouped_suffix(self) -> &'static str {
        match self {
            BlockParam::WK => "attn._W_K",
            BlockParam::WV => "attn._W_V",
            BlockParam::BK => "attn._b_K",
            BlockParam::BV => "attn._b_V",
            other => other.suffix(),
        }
    }
}

/// The full name of a block parameter (`blocks.3.attn.W_Q`).
pub fn block(layer: usize, p: BlockParam) -> String {
    block_name(layer, p.suffix())
}

/// The full name of a block parameter, spelled as grouped key/value parameters when `grouped`
/// ([`BlockParam::grouped_suffix`]).
pub fn block_param(layer: usize, p: BlockParam, grouped: bool) -> String {
    block_name(
        layer,
        if grouped {
            p.grouped_suffix()
        } else {
            p.suffix()
        },
    )
}

/// The prefix of a normalisation of block `layer` (`blocks.0.ln1`).
pub fn block_norm(layer: usize, n: BlockNorm) -> String {
    block_name(layer, n.suffix())
}

/// The scale of the normalisation at `prefix` (`blocks.0.ln1.w`).
pub fn norm_weight(prefix: &str) -> String {
    format!("{prefix}.w")
}

/// The bias of the normalisation at `prefix` (`ln_final.b`).
pub fn norm_bias(prefix: &str) -> String {
    format!("{prefix}.b")
}

/// The full name of any parameter of block `layer` (`blocks.0.ln1.w`).
pub fn block_name(layer: usize, suffix: &str) -> String {
    format!("blocks.{layer}.{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_transformer_lens_state_dict_keys() {
        assert_eq!(block(3, BlockParam::WQ), "blocks.3.attn.W_Q");
        assert_eq!(block(0, BlockParam::BOut), "blocks.0.mlp.b_out");
        let names: std::collections::HashSet<_> =
            BlockParam::ATTN_MLP.iter().map(|p| p.suffix()).collect();
        assert_eq!(names.len(), 12);
        assert_eq!(block_param(1, BlockParam::BV, true), "blocks.1.attn._b_V");
        assert_eq!(block_param(1, BlockParam::WQ, true), "blocks.1.attn.W_Q");
        assert_eq!(
            norm_bias(&block_norm(2, BlockNorm::MlpLn)),
            "blocks.2.mlp.ln.b"
        );
        assert_eq!(norm_weight(LN_FINAL), "ln_final.w");
    }
}
