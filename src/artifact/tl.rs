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
        }
    }
}

/// The full name of a block parameter (`blocks.3.attn.W_Q`).
pub fn block(layer: usize, p: BlockParam) -> String {
    block_name(layer, p.suffix())
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
    }
}
