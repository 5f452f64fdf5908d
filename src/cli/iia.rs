//! `congruity iia --model DIR SPEC --circuit C [--pairs N] [--seed S] [--json]`: the
//! interchange-intervention accuracy of a spec's circuit on a model, as `expect iia(C)` computes
//! it in a check: for each variable of the circuit, N seeded (base, source) pairs of equal length
//! from the task's domain; the variable's sites are patched from the source and the decoded output
//! must equal the interpretation's output with that variable set to its source value.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::equivalence::Proportion;
use crate::harness::interchange_accuracy;
use crate::lang;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The spec file that defines the circuit (and its interpretation)
    pub spec: PathBuf,
    /// Model directory (compiled, tracr, or TransformerLens with a congruity.json)
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The circuit of the spec
    #[arg(long, value_name = "C")]
    pub circuit: String,
    /// Interchange pairs per circuit variable
    #[arg(long, value_name = "N", default_value_t = 400)]
    pub pairs: usize,
    /// Seed of the pairs (and of the domain's sample when it is too large to enumerate)
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> ExitCode {
    let spec = match lang::load(&args.spec) {
        Ok(s) => s,
        Err(report) => {
            super::check::eprint_report(&report);
            return ExitCode::FAILURE;
        }
    };
    let Some(circuit) = spec.circuits.get(&args.circuit) else {
        let names: Vec<&str> = spec.circuits.keys().map(String::as_str).collect();
        eprintln!(
            "error: `{}` has no circuit `{}`; its circuits: {}",
            args.spec.display(),
            args.circuit,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        return ExitCode::FAILURE;
    };
    if args.pairs == 0 {
        eprintln!("error: --pairs must be at least 1");
        return ExitCode::FAILURE;
    }
    let Some(program) = spec.programs.get(&circuit.program) else {
        eprintln!(
            "error: the circuit's interpretation `{}` is not in the spec",
            circuit.program
        );
        return ExitCode::FAILURE;
    };
    let model = match crate::model::load(&args.model, &candle_core::Device::Cpu) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            return ExitCode::FAILURE;
        }
    };
    let out = match interchange_accuracy(&model, program, circuit, args.pairs, args.seed) {
        Ok(o) => o,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::FAILURE;
        }
    };
    let p = Proportion::new(out.correct, out.total);
    let ci = p.clopper_pearson(0.95);
    if args.json {
        let doc = serde_json::json!({
            "circuit": circuit.name,
            "interpretation": program.name,
            "model": args.model.display().to_string(),
            "seed": args.seed,
            "pairs_per_variable": args.pairs,
            "iia": p.rate(),
            "interval": [ci.lower, ci.upper],
            "correct": out.correct,
            "total": out.total,
            "variables": out.variables,
            "first_wrong": out.first_wrong,
            "coverage": out.coverage,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!(
            "iia({}) = {:.3} [{:.3}, {:.3}] on {} interchanges (seed {}; bases and sources from {})",
            circuit.name,
            p.rate(),
            ci.lower,
            ci.upper,
            out.total,
            args.seed,
            out.coverage
        );
        for v in &out.variables {
            let rate = if v.total == 0 {
                0.0
            } else {
                v.correct as f64 / v.total as f64
            };
            print!("  {}: {}/{} = {rate:.3}", v.variable, v.correct, v.total);
            if v.undefined > 0 {
                print!(
                    " ({} pairs with an undefined counterfactual left out)",
                    v.undefined
                );
            }
            println!();
        }
        if let Some(c) = &out.first_wrong {
            println!("  first wrong: {}", c.text());
        }
    }
    ExitCode::SUCCESS
}
