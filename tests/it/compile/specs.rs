//! Every interpretation in `specs/` compiles, and the compiled model, run by the runtime, equals
//! the reference evaluator on every input of the bounded domain (≤ 200,000 inputs) or on 10,000
//! seeded samples (larger domains).

use crate::support::compile as compile_support;

use compile_support::{RuntimeModel, all_programs, assert_matches_evaluator};
use congruity::compile::{CompileOptions, check, compile_checked};

#[test]
fn every_interpretation_compiles_and_matches_the_evaluator() {
    let programs = all_programs();
    assert!(
        programs.len() >= 20,
        "found only {} interpretations",
        programs.len()
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for (file, program) in &programs {
        let what = format!("{}::{}", file.display(), program.name);
        let (compiled, report) = match compile_checked(program, &CompileOptions::default(), 0) {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!(
                    "{what} does not compile: {:?}",
                    miette::Report::new(e)
                ));
                continue;
            }
        };
        let dir = tmp.path().join(&program.name);
        compiled.write(&dir).unwrap();
        let model = RuntimeModel::load(&dir);
        let domain = check::domain(&program.task, 0).unwrap();
        let outputs = model.outputs(&compiled, &domain.inputs);
        let n = assert_matches_evaluator(&what, program, &domain, &outputs);
        assert!(n > 0, "{what}: no input compared");
        let s = compiled.shape();
        lines.push(format!(
            "{:<40} layers {} d_model {:>3} d_mlp {:>3} heads {} | {} ({} compared, {} same-value ambiguities)",
            program.name,
            s.n_layers,
            s.d_model,
            s.d_mlp,
            s.n_heads,
            domain.describe(),
            n,
            report.same_value_ambiguities
        ));
    }
    eprintln!("{}", lines.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
