use super::*;

fn fixture_config() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/transformer_lens/ln_relu_2l/config.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn parse(v: &Value) -> Result<ModelConfig, ModelError> {
    ModelConfig::from_json(v, Path::new("config.json"))
}

#[test]
fn parses_the_transformer_lens_fixture() {
    let c = parse(&fixture_config()).unwrap();
    assert_eq!(c.n_layers, 2);
    assert_eq!(c.d_model, 64);
    assert_eq!(c.n_heads, 4);
    assert_eq!(c.d_head, 16);
    assert_eq!(c.d_mlp, Some(256));
    assert_eq!(c.d_vocab_out, 23);
    assert_eq!(c.act_fn, Some(ActFn::Relu));
    assert_eq!(c.normalization, Normalization::LayerNorm);
    assert_eq!(c.positional, Positional::Standard);
    assert_eq!(c.attention_dir, AttentionDir::Causal);
    assert_eq!(c.attn_scale, 4.0);
}

#[test]
fn refuses_unknown_activation_naming_field_and_value() {
    let mut v = fixture_config();
    v["act_fn"] = json!("xielu");
    let msg = parse(&v).unwrap_err().to_string();
    assert!(msg.contains("act_fn") && msg.contains("xielu"), "{msg}");
}

#[test]
fn refuses_unimplemented_features() {
    for (field, value) in [
        ("positional_embedding_type", json!("alibi")),
        ("normalization_type", json!("LayerNorm")),
        ("attention_dir", json!("sideways")),
        ("n_key_value_heads", json!(3)),
        ("use_local_attn", json!(true)),
        ("original_architecture", json!("Olmo2ForCausalLM")),
        ("dtype", json!("torch.int8")),
    ] {
        let mut v = fixture_config();
        v[field] = value.clone();
        let msg = parse(&v).unwrap_err().to_string();
        assert!(msg.contains(field), "{field}: {msg}");
        assert!(msg.contains(&value.to_string()), "{field}: {msg}");
    }
}

#[test]
fn ignores_irrelevant_and_unknown_fields() {
    let mut v = fixture_config();
    v["seed"] = json!(99);
    v["some_future_field"] = json!({"x": 1});
    v["tokenizer_name"] = json!("gpt2");
    assert_eq!(parse(&v).unwrap(), parse(&fixture_config()).unwrap());
}

#[test]
fn defaults_follow_hooked_transformer_config() {
    let v = json!({"n_layers": 1, "d_model": 8, "d_head": 4, "d_vocab": 5, "n_ctx": 6,
                       "d_mlp": 16, "act_fn": "gelu", "positional_embedding_type": "rotary",
                       "attn_scale": -1.0, "d_vocab_out": -1});
    let c = parse(&v).unwrap();
    assert_eq!(c.n_heads, 2);
    assert_eq!(c.d_vocab_out, 5);
    assert_eq!(c.normalization, Normalization::LayerNorm);
    assert_eq!(c.attn_scale, 2.0);
    match c.positional {
        Positional::Rotary(r) => {
            assert_eq!(r.dim, 4);
            assert!(!r.adjacent_pairs);
            assert_eq!(r.base, 10000.0);
        }
        p => panic!("expected rotary, got {p:?}"),
    }
    assert_eq!(c.layer_attn_scale(0), 2.0);
}

#[test]
fn round_trips_through_tl_json() {
    let c = parse(&fixture_config()).unwrap();
    assert_eq!(parse(&c.to_tl_json()).unwrap(), c);
    let mut r = c.clone();
    r.positional = Positional::Rotary(Rotary {
        dim: 8,
        base: 500.0,
        adjacent_pairs: true,
        scaling_factor: 2.0,
    });
    r.normalization = Normalization::None;
    r.attn_only = true;
    r.d_mlp = None;
    r.act_fn = None;
    assert_eq!(parse(&r.to_tl_json()).unwrap(), r);
}

#[test]
fn missing_required_field_is_named() {
    let mut v = fixture_config();
    v.as_object_mut().unwrap().remove("d_model");
    let msg = parse(&v).unwrap_err().to_string();
    assert!(msg.contains("d_model"), "{msg}");
}
