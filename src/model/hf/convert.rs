//! HuggingFace tensors to TransformerLens' names and shapes, per architecture, as
//! TransformerLens' own weight converters map them.

use candle_core::Tensor;
use serde_json::Value;

use super::checkpoint::{Checkpoint, Reader};
use super::config::Cfg;
use crate::artifact::tl::{self, BlockNorm, BlockParam};
use crate::model::config::{ModelConfig, Normalization, Positional, Rotary};
use crate::model::error::{ComputeContext, ModelError};
use crate::model::io::HostTensor;

/// The query, key and value weights and biases, in the order fused checkpoints store them.
const QKV: [(BlockParam, BlockParam); 3] = [
    (BlockParam::WQ, BlockParam::BQ),
    (BlockParam::WK, BlockParam::BK),
    (BlockParam::WV, BlockParam::BV),
];

type Named = Vec<(String, HostTensor)>;

fn host(t: &Tensor) -> Result<HostTensor, ModelError> {
    let shape = t.dims().to_vec();
    let data = t
        .flatten_all()
        .and_then(|f| f.to_vec1::<f32>())
        .ctx("converting a HuggingFace weight")?;
    Ok(HostTensor { shape, data })
}

fn push(out: &mut Named, name: String, t: &Tensor) -> Result<(), ModelError> {
    out.push((name, host(t)?));
    Ok(())
}

fn zeros(shape: &[usize]) -> HostTensor {
    HostTensor {
        shape: shape.to_vec(),
        data: vec![0.0; shape.iter().product()],
    }
}

/// `[n*e, d]` (nn.Linear, output rows grouped by head) → `[n, d, e]`.
fn linear_heads(w: &Tensor, n: usize, e: usize, d: usize) -> candle_core::Result<Tensor> {
    w.reshape((n, e, d))?.transpose(1, 2)?.contiguous()
}

/// `[d, n*e]` (nn.Linear `o_proj`, input columns grouped by head) → `[n, e, d]`.
fn linear_out_heads(w: &Tensor, n: usize, e: usize, d: usize) -> candle_core::Result<Tensor> {
    w.t()?.contiguous()?.reshape((n, e, d))
}

/// `unembed.W_U` [d, vocab] from the head `name` ([vocab, d]; transformers saves it even when
/// tied, or drops it, in which case `tied` is the input embedding), and a zero `unembed.b_U`.
fn unembed(
    r: &mut Reader<'_>,
    out: &mut Named,
    name: &str,
    tied: Option<Tensor>,
    vocab: usize,
    d: usize,
) -> Result<(), ModelError> {
    let head = match (r.ck.tensors.contains_key(name), tied) {
        (true, _) => r.take_full(name, &[vocab, d])?,
        (false, Some(embedding)) => embedding,
        (false, None) => {
            return Err(ModelError::MissingTensor {
                path: r.ck.origin.clone(),
                name: name.to_string(),
                hint: " (tie_word_embeddings is false)".into(),
            });
        }
    };
    let w_u = head.t().ctx(&format!("transposing `{name}`"))?;
    push(out, tl::UNEMBED_W_U.into(), &w_u)?;
    out.push((tl::UNEMBED_B_U.into(), zeros(&[vocab])));
    Ok(())
}

/// `input_layernorm` → `ln1` and `post_attention_layernorm` → `ln2` (GPT-NeoX and Llama).
fn block_norms(
    r: &mut Reader<'_>,
    out: &mut Named,
    hf: &str,
    layer: usize,
    d: usize,
    bias: bool,
) -> Result<(), ModelError> {
    norm_weights(
        r,
        out,
        &format!("{hf}.input_layernorm"),
        &tl::block_norm(layer, BlockNorm::Ln1),
        d,
        bias,
    )?;
    norm_weights(
        r,
        out,
        &format!("{hf}.post_attention_layernorm"),
        &tl::block_norm(layer, BlockNorm::Ln2),
        d,
        bias,
    )
}

fn norm_weights(
    r: &mut Reader<'_>,
    out: &mut Named,
    hf: &str,
    prefix: &str,
    d: usize,
    bias: bool,
) -> Result<(), ModelError> {
    let w = r.take(&format!("{hf}.weight"), &[d])?;
    push(out, tl::norm_weight(prefix), &w)?;
    if bias {
        let b = r.take(&format!("{hf}.bias"), &[d])?;
        push(out, tl::norm_bias(prefix), &b)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GPT-2

pub(super) fn gpt2(c: &Cfg<'_>, ck: &Checkpoint) -> Result<(ModelConfig, Named), ModelError> {
    let n_layers = c.usize("n_layer")?;
    let d = c.usize("n_embd")?;
    let h = c.usize("n_head")?;
    if d % h != 0 {
        return Err(c.bad("n_head", format!("{h} does not divide n_embd {d}")));
    }
    let e = d / h;
    let m = c.opt_usize("n_inner")?.unwrap_or(4 * d);
    let vocab = c.usize("vocab_size")?;
    let n_ctx = c.usize("n_positions")?;
    c.refuse_unless(
        "add_cross_attention",
        &[Value::Bool(false)],
        "cross attention is not implemented",
    )?;
    let mut cfg = ModelConfig::simple(n_layers, d, h, m, vocab, n_ctx);
    cfg.act_fn = Some(c.act("activation_function", "gelu_new")?);
    cfg.eps = c.f64_or("layer_norm_epsilon", 1e-5)?;
    cfg.use_attn_scale = c.bool_or("scale_attn_weights", true)?;
    cfg.scale_attn_by_inverse_layer_idx = c.bool_or("scale_attn_by_inverse_layer_idx", false)?;
    let tied = c.bool_or("tie_word_embeddings", true)?;

    let mut r = Reader::new(ck, &["transformer.", ""], "wte.weight");
    let mut out = Named::new();
    let wte = r.take("wte.weight", &[vocab, d])?;
    push(&mut out, tl::EMBED_W_E.into(), &wte)?;
    let wpe = r.take("wpe.weight", &[n_ctx, d])?;
    push(&mut out, tl::POS_EMBED_W_POS.into(), &wpe)?;
    let ctx = |what: &str| format!("rearranging GPT-2 {what}");
    for l in 0..n_layers {
        let p = format!("h.{l}");
        norm_weights(
            &mut r,
            &mut out,
            &format!("{p}.ln_1"),
            &tl::block_norm(l, BlockNorm::Ln1),
            d,
            true,
        )?;
        norm_weights(
            &mut r,
            &mut out,
            &format!("{p}.ln_2"),
            &tl::block_norm(l, BlockNorm::Ln2),
            d,
            true,
        )?;
        // Conv1D: [in, out]; the out columns are [q | k | v], head-major inside each.
        let w = r.take(&format!("{p}.attn.c_attn.weight"), &[d, 3 * d])?;
        let b = r.take(&format!("{p}.attn.c_attn.bias"), &[3 * d])?;
        for (k, &(wp, bp)) in QKV.iter().enumerate() {
            let wk = w
                .narrow(1, k * d, d)
                .and_then(|x| x.reshape((d, h, e)))
                .and_then(|x| x.transpose(0, 1))
                .and_then(|x| x.contiguous())
                .ctx(&ctx("c_attn"))?;
            push(&mut out, tl::block(l, wp), &wk)?;
            let bk = b
                .narrow(0, k * d, d)
                .and_then(|x| x.reshape((h, e)))
                .ctx(&ctx("c_attn"))?;
            push(&mut out, tl::block(l, bp), &bk)?;
        }
        let wo = r.take(&format!("{p}.attn.c_proj.weight"), &[d, d])?;
        let wo = wo.reshape((h, e, d)).ctx(&ctx("c_proj"))?;
        push(&mut out, tl::block(l, BlockParam::WO), &wo)?;
        let bo = r.take(&format!("{p}.attn.c_proj.bias"), &[d])?;
        push(&mut out, tl::block(l, BlockParam::BO), &bo)?;
        let w_in = r.take(&format!("{p}.mlp.c_fc.weight"), &[d, m])?;
        push(&mut out, tl::block(l, BlockParam::WIn), &w_in)?;
        let b_in = r.take(&format!("{p}.mlp.c_fc.bias"), &[m])?;
        push(&mut out, tl::block(l, BlockParam::BIn), &b_in)?;
        let w_out = r.take(&format!("{p}.mlp.c_proj.weight"), &[m, d])?;
        push(&mut out, tl::block(l, BlockParam::WOut), &w_out)?;
        let b_out = r.take(&format!("{p}.mlp.c_proj.bias"), &[d])?;
        push(&mut out, tl::block(l, BlockParam::BOut), &b_out)?;
    }
    norm_weights(&mut r, &mut out, "ln_f", tl::LN_FINAL, d, true)?;
    // The head: `lm_head.weight` [vocab, d] when untied (or saved anyway), else the embedding.
    unembed(
        &mut r,
        &mut out,
        "lm_head.weight",
        tied.then_some(wte),
        vocab,
        d,
    )?;
    r.finish(&["attn.bias", "attn.masked_bias"])?;
    Ok((cfg, out))
}

// ---------------------------------------------------------------------------------------------
// GPT-NeoX (Pythia)

/// One function (~135 lines): the checkpoint's tensors in checkpoint order, each renamed and
/// reshaped where it is read, so the map can be checked against the HF modelling code line by
/// line.
pub(super) fn neox(c: &Cfg<'_>, ck: &Checkpoint) -> Result<(ModelConfig, Named), ModelError> {
    let n_layers = c.usize("num_hidden_layers")?;
    let d = c.usize("hidden_size")?;
    let h = c.usize("num_attention_heads")?;
    if d % h != 0 {
        return Err(c.bad(
            "num_attention_heads",
            format!("{h} does not divide hidden_size {d}"),
        ));
    }
    let e = d / h;
    let m = c.usize("intermediate_size")?;
    let vocab = c.usize("vocab_size")?;
    let n_ctx = c.usize("max_position_embeddings")?;
    c.refuse_rope_scaling()?;
    c.refuse_unless(
        "use_qk_norm",
        &[Value::Bool(false)],
        "q/k normalisation is not implemented",
    )?;
    let pct = match c
        .get("rope_parameters")
        .and_then(|p| p.get("partial_rotary_factor"))
    {
        Some(v) if !v.is_null() => v.as_f64().ok_or_else(|| {
            c.bad(
                "rope_parameters.partial_rotary_factor",
                format!("`{v}` is not a number"),
            )
        })?,
        _ => c.f64_or("rotary_pct", 1.0)?,
    };
    if !(pct > 0.0 && pct <= 1.0) {
        return Err(c.bad("rotary_pct", format!("{pct} is not in (0, 1]")));
    }
    let rotary_dim = (e as f64 * pct) as usize;
    let base = c.rope("rope_theta", &["rotary_emb_base", "rope_theta"], 10_000.0)?;
    let bias = c.bool_or("attention_bias", true)?;
    let mut cfg = ModelConfig::simple(n_layers, d, h, m, vocab, n_ctx);
    cfg.act_fn = Some(c.act("hidden_act", "gelu")?);
    cfg.eps = c.f64_or("layer_norm_eps", 1e-5)?;
    cfg.parallel_attn_mlp = c.bool_or("use_parallel_residual", true)?;
    cfg.positional = Positional::Rotary(Rotary {
        dim: rotary_dim,
        base,
        adjacent_pairs: false,
        scaling_factor: 1.0,
    });
    let tied = c.bool_or("tie_word_embeddings", false)?;

    let mut r = Reader::new(ck, &["gpt_neox.", ""], "embed_in.weight");
    let mut out = Named::new();
    let w_e = r.take("embed_in.weight", &[vocab, d])?;
    push(&mut out, tl::EMBED_W_E.into(), &w_e)?;
    let ctx = |what: &str| format!("rearranging GPT-NeoX {what}");
    for l in 0..n_layers {
        let p = format!("layers.{l}");
        block_norms(&mut r, &mut out, &p, l, d, true)?;
        // query_key_value [3d, d]: output rows laid out (head, q|k|v, d_head).
        let w = r.take(
            &format!("{p}.attention.query_key_value.weight"),
            &[3 * d, d],
        )?;
        let w = w.reshape((h, 3, e, d)).ctx(&ctx("query_key_value"))?;
        let b = if bias {
            Some(
                r.take(&format!("{p}.attention.query_key_value.bias"), &[3 * d])?
                    .reshape((h, 3, e))
                    .ctx(&ctx("query_key_value"))?,
            )
        } else {
            None
        };
        for (k, &(wp, bp)) in QKV.iter().enumerate() {
            let wk = w
                .narrow(1, k, 1)
                .and_then(|x| x.squeeze(1))
                .and_then(|x| x.transpose(1, 2))
                .and_then(|x| x.contiguous())
                .ctx(&ctx("query_key_value"))?;
            push(&mut out, tl::block(l, wp), &wk)?;
            match &b {
                Some(b) => {
                    let bk = b
                        .narrow(1, k, 1)
                        .and_then(|x| x.squeeze(1))
                        .ctx(&ctx("bias"))?;
                    push(&mut out, tl::block(l, bp), &bk)?;
                }
                None => out.push((tl::block(l, bp), zeros(&[h, e]))),
            }
        }
        let wo = r.take(&format!("{p}.attention.dense.weight"), &[d, d])?;
        push(
            &mut out,
            tl::block(l, BlockParam::WO),
            &linear_out_heads(&wo, h, e, d).ctx(&ctx("dense"))?,
        )?;
        if bias {
            let bo = r.take(&format!("{p}.attention.dense.bias"), &[d])?;
            push(&mut out, tl::block(l, BlockParam::BO), &bo)?;
        } else {
            out.push((tl::block(l, BlockParam::BO), zeros(&[d])));
        }
        let w_in = r.take(&format!("{p}.mlp.dense_h_to_4h.weight"), &[m, d])?;
        push(
            &mut out,
            tl::block(l, BlockParam::WIn),
            &w_in.t().ctx(&ctx("dense_h_to_4h"))?,
        )?;
        let b_in = r.take(&format!("{p}.mlp.dense_h_to_4h.bias"), &[m])?;
        push(&mut out, tl::block(l, BlockParam::BIn), &b_in)?;
        let w_out = r.take(&format!("{p}.mlp.dense_4h_to_h.weight"), &[d, m])?;
        push(
            &mut out,
            tl::block(l, BlockParam::WOut),
            &w_out.t().ctx(&ctx("dense_4h_to_h"))?,
        )?;
        let b_out = r.take(&format!("{p}.mlp.dense_4h_to_h.bias"), &[d])?;
        push(&mut out, tl::block(l, BlockParam::BOut), &b_out)?;
    }
    norm_weights(&mut r, &mut out, "final_layer_norm", tl::LN_FINAL, d, true)?;
    unembed(
        &mut r,
        &mut out,
        "embed_out.weight",
        tied.then_some(w_e),
        vocab,
        d,
    )?;
    r.finish(&[
        "attention.bias",
        "attention.masked_bias",
        "rotary_emb.inv_freq",
    ])?;
    Ok((cfg, out))
}

// ---------------------------------------------------------------------------------------------
// Llama

/// One function (~125 lines), for the reason given at [`neox`].
pub(super) fn llama(c: &Cfg<'_>, ck: &Checkpoint) -> Result<(ModelConfig, Named), ModelError> {
    let n_layers = c.usize("num_hidden_layers")?;
    let d = c.usize("hidden_size")?;
    let h = c.usize("num_attention_heads")?;
    let kv = c.opt_usize("num_key_value_heads")?.unwrap_or(h);
    if h % kv != 0 {
        return Err(c.bad(
            "num_key_value_heads",
            format!("{kv} does not divide num_attention_heads {h}"),
        ));
    }
    let e = match c.opt_usize("head_dim")? {
        Some(e) => e,
        None if d % h == 0 => d / h,
        None => {
            return Err(c.bad(
                "num_attention_heads",
                format!("{h} does not divide hidden_size {d}"),
            ));
        }
    };
    let m = c.usize("intermediate_size")?;
    let vocab = c.usize("vocab_size")?;
    let n_ctx = c.usize("max_position_embeddings")?;
    c.refuse_rope_scaling()?;
    c.refuse_unless(
        "pretraining_tp",
        &[Value::from(1)],
        "tensor-parallel slicing is not implemented",
    )?;
    c.refuse_unless(
        "sliding_window",
        &[],
        "sliding-window attention is not implemented",
    )?;
    let attn_bias = c.bool_or("attention_bias", false)?;
    let mlp_bias = c.bool_or("mlp_bias", false)?;
    let base = c.rope("rope_theta", &["rope_theta"], 10_000.0)?;
    let mut cfg = ModelConfig::simple(n_layers, d, h, m, vocab, n_ctx);
    cfg.n_key_value_heads = (kv != h).then_some(kv);
    cfg.d_head = e;
    cfg.attn_scale = (e as f64).sqrt();
    cfg.act_fn = Some(c.act("hidden_act", "silu")?);
    cfg.eps = c.f64_or("rms_norm_eps", 1e-6)?;
    cfg.normalization = Normalization::Rms;
    cfg.final_rms = true;
    cfg.gated_mlp = true;
    cfg.positional = Positional::Rotary(Rotary {
        dim: e,
        base,
        adjacent_pairs: false,
        scaling_factor: 1.0,
    });
    let tied = c.bool_or("tie_word_embeddings", false)?;

    let mut r = Reader::new(ck, &["model.", ""], "embed_tokens.weight");
    let mut out = Named::new();
    let w_e = r.take("embed_tokens.weight", &[vocab, d])?;
    push(&mut out, tl::EMBED_W_E.into(), &w_e)?;
    let ctx = |what: &str| format!("rearranging Llama {what}");
    // Grouped-query key/value weights have their own TransformerLens names (`_W_K`, ...).
    let grouped = cfg.n_key_value_heads.is_some();
    for l in 0..n_layers {
        let p = format!("layers.{l}");
        block_norms(&mut r, &mut out, &p, l, d, false)?;
        for (proj, (wp, bp), heads) in [
            ("q_proj", QKV[0], h),
            ("k_proj", QKV[1], kv),
            ("v_proj", QKV[2], kv),
        ] {
            let w = r.take(&format!("{p}.self_attn.{proj}.weight"), &[heads * e, d])?;
            let w = linear_heads(&w, heads, e, d).ctx(&ctx(proj))?;
            push(&mut out, tl::block_param(l, wp, grouped), &w)?;
            if attn_bias {
                let b = r.take(&format!("{p}.self_attn.{proj}.bias"), &[heads * e])?;
                let b = b.reshape((heads, e)).ctx(&ctx(proj))?;
                push(&mut out, tl::block_param(l, bp, grouped), &b)?;
            } else {
                out.push((tl::block_param(l, bp, grouped), zeros(&[heads, e])));
            }
        }
        let wo = r.take(&format!("{p}.self_attn.o_proj.weight"), &[d, h * e])?;
        push(
            &mut out,
            tl::block(l, BlockParam::WO),
            &linear_out_heads(&wo, h, e, d).ctx(&ctx("o_proj"))?,
        )?;
        if attn_bias {
            let bo = r.take(&format!("{p}.self_attn.o_proj.bias"), &[d])?;
            push(&mut out, tl::block(l, BlockParam::BO), &bo)?;
        } else {
            out.push((tl::block(l, BlockParam::BO), zeros(&[d])));
        }
        for (proj, name, shape) in [
            ("gate_proj", BlockParam::WGate, [m, d]),
            ("up_proj", BlockParam::WIn, [m, d]),
            ("down_proj", BlockParam::WOut, [d, m]),
        ] {
            let w = r.take(&format!("{p}.mlp.{proj}.weight"), &shape)?;
            push(&mut out, tl::block(l, name), &w.t().ctx(&ctx(proj))?)?;
        }
        for (proj, name, len) in [
            ("up_proj", BlockParam::BIn, m),
            ("down_proj", BlockParam::BOut, d),
        ] {
            if mlp_bias {
                let b = r.take(&format!("{p}.mlp.{proj}.bias"), &[len])?;
                push(&mut out, tl::block(l, name), &b)?;
            } else {
                out.push((tl::block(l, name), zeros(&[len])));
            }
        }
    }
    norm_weights(&mut r, &mut out, "norm", tl::LN_FINAL, d, false)?;
    unembed(
        &mut r,
        &mut out,
        "lm_head.weight",
        tied.then_some(w_e),
        vocab,
        d,
    )?;
    r.finish(&["rotary_emb.inv_freq"])?;
    Ok((cfg, out))
}
