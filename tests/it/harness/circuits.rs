//! Circuits against compiled models, over the whole `specs/circuits/` directory: every circuit
//! that fits the compiled model of its interpretation and names its output is faithful under
//! resample (and zero) ablation, and dropping any variable that has sites of its own scores
//! clearly lower. The drop is measured under zero ablation: resample and mean ablation draw from
//! inputs of the same length (activations are per position), so a component that computes the
//! length looks inert to them — a true property of those ablations, not of the circuit.
//! Minimality names a planted redundant site.

use std::collections::BTreeSet;

use congruity::compile::check::domain;
use congruity::experiment::chain::encode;
use congruity::experiment::circuit::{declared_sites, misfit};
use congruity::intervene::{Ablation, Component, FaithfulnessRun, kept_by};
use congruity::{CompileOptions, Device, compile_checked, load_model};

use super::{root, stderr, stdout, test};

#[test]
fn every_compiled_circuit_is_faithful_and_each_variable_matters() {
    let files = congruity::lang::collect_specs(&root().join("specs/circuits")).unwrap();
    let mut tested = 0;
    let mut variables_dropped = 0;
    for f in &files {
        let spec = congruity::Spec::load(f).unwrap();
        // Only the file's own circuits (imports bring their files' circuits too).
        for c in spec
            .circuits
            .values()
            .filter(|c| c.source.as_ref().is_some_and(|s| s.file.as_ref() == f))
        {
            let program = &spec.programs[&c.program];
            let (compiled, _) = compile_checked(program, &CompileOptions::default(), 0).unwrap();
            let dir = tempfile::tempdir().unwrap();
            compiled.write(dir.path()).unwrap();
            let m = load_model(dir.path(), &Device::Cpu).unwrap();
            if misfit(c, &m.transformer).is_some() {
                // Written against tracr's own layout (more layers than congruity compiles).
                continue;
            }
            if !c.sites.iter().any(|s| s.variable == "output") {
                // A circuit for a sufficiency proof (`hist_only`): it names what determines the
                // output, not the components that compute it.
                continue;
            }
            let sc = m.sidecar.as_ref().unwrap();
            let dom = domain(&program.task, 0).unwrap();
            let rows: Vec<Vec<u32>> = dom.inputs.iter().map(|x| encode(sc, x).unwrap()).collect();
            let rounds = 2000usize.div_ceil(rows.len()).clamp(1, 64);
            let run = FaithfulnessRun::new(&m.transformer, sc, &rows, 17, rounds).unwrap();
            let kept_of = |vars: &dyn Fn(&str) -> bool| -> BTreeSet<Component> {
                c.sites
                    .iter()
                    .filter(|s| vars(&s.variable))
                    .flat_map(|s| {
                        s.hooks.iter().flat_map(|h| {
                            let site = congruity::intervene::iia::declared_site(h).unwrap();
                            kept_by(&site, &m.transformer)
                        })
                    })
                    .collect()
            };
            let all = kept_of(&|_| true);
            assert!(!declared_sites(c).unwrap().is_empty());
            let full = run.score(&all, Ablation::Resample).unwrap();
            assert!(
                full.score() >= 0.99,
                "{}: faithful {} < 0.99 ({} of {}), ablated {:?}",
                c.name,
                full.score(),
                full.agree,
                full.total,
                full.ablated
            );
            let zero = run.score(&all, Ablation::Zero).unwrap();
            assert!(
                zero.score() >= 0.99,
                "{}: zero-ablation faithful {}",
                c.name,
                zero.score()
            );
            for v in c.sites.iter().map(|s| s.variable.as_str()) {
                let without = kept_of(&|x| x != v);
                if without == all {
                    // Its sites are shared with other variables: nothing to drop.
                    continue;
                }
                let f = run.score(&without, Ablation::Zero).unwrap();
                assert!(
                    f.score() < zero.score() - 0.05,
                    "{} without {v}: faithful {} is not clearly below {}",
                    c.name,
                    f.score(),
                    zero.score()
                );
                variables_dropped += 1;
            }
            tested += 1;
        }
    }
    assert!(
        tested >= 9,
        "only {tested} circuits fit their compiled models"
    );
    assert!(
        variables_dropped >= 15,
        "only {variables_dropped} variables dropped"
    );
}

#[test]
fn minimality_names_a_planted_redundant_site_and_faithful_reports_z3_beside_it() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("planted.interp");
    // Layer 1's MLP of compiled reverse computes nothing: a site the model never uses.
    std::fs::write(
        &spec,
        format!(
            "import \"{}\"\n\
             circuit planted for tracr_reverse {{\n  length -> blocks.0.attn.hook_z[0], blocks.0.hook_mlp_out\n  output -> blocks.1.attn.hook_z[0], blocks.1.hook_mlp_out\n}}\n\
             check planted {{\n  model compiled(tracr_reverse)\n  seed 3\n  expect faithful(planted) >= 0.99\n  expect faithful(planted, zero) >= 0.99\n  expect faithful(planted, mean) >= 0.99\n  expect minimal(planted, zero) >= 0.01\n}}\n",
            root().join("specs/tracr/reverse.interp").display()
        ),
    )
    .unwrap();
    let out = test(&[spec.to_str().unwrap()], cache.path());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("PASS    faithful(planted) >= 0.99"), "{text}");
    assert!(
        text.contains("PASS    faithful(planted, zero) >= 0.99"),
        "{text}"
    );
    assert!(
        text.contains("FAIL    minimal(planted, zero) >= 0.01"),
        "{text}"
    );
    // Only the planted site: every other one carries something.
    assert!(
        text.contains("; redundant: blocks.1.hook_mlp_out\n"),
        "{text}"
    );
    assert!(
        text.contains("without blocks.1.hook_mlp_out: faithful drops by 0.000 (redundant"),
        "{text}"
    );
    // The real sites matter.
    assert!(
        text.contains("without blocks.1.attn.hook_z[0]: faithful drops by 1.000"),
        "{text}"
    );
    let report = dir.path().join("r.json");
    let out = test(
        &[
            spec.to_str().unwrap(),
            "--filter",
            "planted",
            "--quiet",
            "--report",
            report.to_str().unwrap(),
        ],
        cache.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let details = r["units"][0]["expectations"][0]["details"].to_string();
    assert!(
        details.contains("z3: sufficient(planted) is proved"),
        "{details}"
    );
}
