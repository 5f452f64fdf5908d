//! The model artifact end to end: what the compiler writes is what the runtime and the chain read
//! back, exactly — including values the JSON codec has to tag.

use congruity::experiment::chain::{StageModel, run_chain};
use congruity::experiment::extract::RepresentationSpec;
use congruity::{CompileOptions, Value, compile_checked, eval_program};

/// A vocabulary symbol spelled like a ratio (`"1/2"`) is a symbol everywhere: in the compiler's
/// reference forward, in the written sidecar, in the runtime's answers and in a chain's outputs
/// (where a number 1/2 would be a different value).
#[test]
fn a_symbol_spelled_like_a_ratio_stays_a_symbol() {
    let spec = congruity::check_str(
        "halves.interp",
        r#"task halves {
             vocab   {"1/2", "3", a}
             max_len 3
           }
           interpretation flip for halves {
             all    = select(tokens, tokens, true)
             length = selector_width(all)
             opp    = map2(|n, i| n - i - 1, length, indices)
             flip   = select(indices, opp, ==)
             output   aggregate(flip, tokens)
           }"#,
    )
    .unwrap_or_else(|r| panic!("{}", r.render_plain()));
    let program = &spec.programs["flip"];
    let (compiled, _) = compile_checked(program, &CompileOptions::default(), 0).unwrap();
    let half = Value::sym("1/2");
    let input = vec![half.clone(), Value::sym("3"), Value::sym("a")];
    let want = eval_program(program, &input).unwrap().output().to_vec();
    assert_eq!(want[2], half);
    assert_eq!(compiled.run::<f64>(&input).unwrap(), want);

    let dir = tempfile::tempdir().unwrap();
    compiled.write(dir.path()).unwrap();
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("congruity.json")).unwrap())
            .unwrap();
    let decoding = sidecar["output"]["decoding"].as_array().unwrap();
    assert!(
        decoding.contains(&serde_json::json!({"symbol": "1/2"})),
        "{decoding:?}"
    );
    assert!(decoding.contains(&serde_json::json!("3")), "{decoding:?}");

    let model = congruity::load_model(dir.path(), &congruity::Device::Cpu).unwrap();
    let answers = model.run_symbols(&[vec!["1/2", "3", "a"]]).unwrap();
    let printed: Vec<String> = answers[0].iter().map(|v| v.to_string()).collect();
    assert_eq!(printed, ["a", "3", "1/2"]);

    let stage = StageModel {
        program: "flip".into(),
        transformer: model.transformer,
        sidecar: model.sidecar.unwrap(),
        adapter: None,
        vocab: None,
    };
    let run = run_chain(
        &[stage],
        std::slice::from_ref(&input),
        &RepresentationSpec::default(),
        Some(&[vec![want.clone()]]),
        None,
    )
    .unwrap();
    assert_eq!(run.outputs[0][0], want);
}
