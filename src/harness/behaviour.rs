//! What a model does, against what an interpretation says: its decoded outputs on the task's
//! domain (`implements`, `accuracy`) and under interchange interventions on a circuit's sites
//! (`iia`). Both run the model in batches of equal-length inputs and compare decoded values with
//! the exact evaluator's.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::report::Counterexample;
use crate::compile::check::{Domain, domain};
use crate::compile::same_values;
use crate::equivalence::derive_seed;
use crate::experiment::chain;
use crate::intervene::{Alignment, patch_from_source};
use crate::lang::domain::input_text;
use crate::lang::eval::{EvalError, NodeValue, eval_intervened, eval_output, eval_program};
use crate::lang::ir::{Circuit, NodeId, Program, Value};
use crate::model::{LoadedModel, RunOptions, Sidecar, TokenBatch, Transformer};

/// Rows per forward pass.
const BATCH: usize = 1024;

/// The model's run on a domain, judged against an interpretation.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub domain: Domain,
    pub correct: usize,
    pub total: usize,
    /// The first input (in domain order) whose decoded output differs.
    pub first_wrong: Option<Counterexample>,
}

fn sidecar(model: &LoadedModel) -> Result<&Sidecar, String> {
    model.sidecar.as_ref().ok_or_else(|| {
        format!(
            "the model in {} has no congruity.json: its outputs cannot be decoded into the task's values",
            model.dir.display()
        )
    })
}

fn tokens_of(sc: &Sidecar, input: &[Value]) -> Result<Vec<u32>, String> {
    chain::encode(sc, input)
        .map_err(|e| format!("the model cannot read \"{}\": {e}", input_text(input)))
}

/// Runs `model` on `rows` (equal lengths, already encoded) with `options`; the decoded answer of
/// each row.
fn decoded(
    t: &Transformer,
    sc: &Sidecar,
    rows: &[Vec<u32>],
    options: &RunOptions<'_>,
) -> Result<Vec<Vec<Value>>, String> {
    let batch = TokenBatch::new(rows).map_err(|e| e.to_string())?;
    let out = t.forward(&batch, options).map_err(|e| e.to_string())?;
    let logits: Vec<Vec<Vec<f32>>> = out
        .logits
        .to_dtype(candle_core::DType::F32)
        .and_then(|l| l.to_vec3())
        .map_err(|e| format!("cannot read the logits: {e}"))?;
    let prefix = sc.prefix_len();
    logits
        .iter()
        .map(|l| chain::decode(sc, &l[prefix.min(l.len())..]).map_err(|e| e.to_string()))
        .collect()
}

fn by_length(inputs: &[Vec<Value>]) -> BTreeMap<usize, Vec<usize>> {
    let mut g: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, x) in inputs.iter().enumerate() {
        g.entry(x.len()).or_default().push(i);
    }
    g
}

fn values_text(v: &[Value]) -> String {
    input_text(v)
}

/// Runs the model on `program`'s domain (every input up to 200,000 of them, else 10,000 drawn
/// with `seed`) and counts the inputs whose whole decoded output equals the evaluator's.
pub fn behaviour(model: &LoadedModel, program: &Program, seed: u64) -> Result<Behaviour, String> {
    let sc = sidecar(model)?;
    let dom = domain(&program.task, seed).map_err(|e| e.to_string())?;
    let mut want = Vec::with_capacity(dom.inputs.len());
    for input in &dom.inputs {
        want.push(
            eval_output(program, input).map_err(|e| {
                format!("`{}` fails on \"{}\": {e}", program.name, input_text(input))
            })?,
        );
    }
    let mut got: Vec<Option<Vec<Value>>> = vec![None; dom.inputs.len()];
    for members in by_length(&dom.inputs).values() {
        for chunk in members.chunks(BATCH) {
            let rows = chunk
                .iter()
                .map(|&i| tokens_of(sc, &dom.inputs[i]))
                .collect::<Result<Vec<_>, _>>()?;
            let answers = decoded(&model.transformer, sc, &rows, &RunOptions::default())?;
            for (&i, a) in chunk.iter().zip(answers) {
                got[i] = Some(a);
            }
        }
    }
    let mut correct = 0;
    let mut first_wrong = None;
    for (i, g) in got.into_iter().enumerate() {
        let g = g.unwrap_or_default();
        if same_values(&g, &want[i]) {
            correct += 1;
        } else if first_wrong.is_none() {
            first_wrong = Some(Counterexample {
                input: input_text(&dom.inputs[i]),
                source: None,
                variable: None,
                got: values_text(&g),
                want: values_text(&want[i]),
            });
        }
    }
    Ok(Behaviour {
        total: dom.inputs.len(),
        domain: dom,
        correct,
        first_wrong,
    })
}

/// Interchange interventions on one circuit variable.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VariableIia {
    pub variable: String,
    pub correct: usize,
    pub total: usize,
    /// Pairs whose high-level counterfactual is undefined (the evaluator fails on the intervened
    /// values, e.g. a division by zero): left out of the count.
    pub undefined: usize,
}

/// Interchange-intervention accuracy of a circuit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Iia {
    pub variables: Vec<VariableIia>,
    pub correct: usize,
    pub total: usize,
    /// The first pair whose patched output differs from the counterfactual.
    pub first_wrong: Option<Counterexample>,
    /// How the bases were drawn (the domain's description).
    pub coverage: String,
}

/// One interchange: base input, source input, and what the interpretation then outputs.
struct Trial {
    base: usize,
    source: usize,
    want: Vec<Value>,
}

/// The counterfactual of setting `node` on `base` to its value on `source`.
fn counterfactual(
    program: &Program,
    node: NodeId,
    base: &[Value],
    source: &[Value],
) -> Result<Vec<Value>, EvalError> {
    let src = eval_program(program, source)?;
    let value: NodeValue = src
        .node(node)
        .cloned()
        .ok_or_else(|| EvalError::Malformed("the variable has no value".into()))?;
    let overrides = BTreeMap::from([(node, value)]);
    Ok(eval_intervened(program, base, &overrides)?
        .output()
        .to_vec())
}

/// IIA of `circuit` on `model`: for each circuit variable, `pairs` (base, source) pairs of equal
/// length drawn with `seed` (stream `[2, variable index]`) from the domain; the variable's sites
/// are patched with their activations on the source, the rest recomputed, and the decoded
/// output must equal the interpretation's output with that variable set to its source value.
pub fn iia(
    model: &LoadedModel,
    program: &Program,
    circuit: &Circuit,
    pairs: usize,
    seed: u64,
) -> Result<Iia, String> {
    let sc = sidecar(model)?;
    let alignment = Alignment::from_circuit(circuit).map_err(|e| e.to_string())?;
    for sites in alignment.variables.values() {
        for s in sites {
            model.transformer.check_site(s).map_err(|e| e.to_string())?;
        }
    }
    let dom = domain(&program.task, seed).map_err(|e| e.to_string())?;
    let groups = by_length(&dom.inputs);
    let lengths: Vec<&Vec<usize>> = groups.values().collect();
    let encoded = dom
        .inputs
        .iter()
        .map(|x| tokens_of(sc, x))
        .collect::<Result<Vec<_>, _>>()?;

    let mut variables = Vec::new();
    let mut first_wrong = None;
    for (vi, site) in circuit.sites.iter().enumerate() {
        let var = &site.variable;
        let node = program
            .variable(var)
            .ok_or_else(|| format!("`{}` has no variable `{var}`", program.name))?;
        let sites = &alignment.variables[var];
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, &[2, vi as u64]));
        let mut stat = VariableIia {
            variable: var.clone(),
            ..Default::default()
        };
        let mut trials: Vec<Trial> = Vec::with_capacity(pairs);
        for _ in 0..pairs {
            let base = rng.random_range(0..dom.inputs.len());
            let same = lengths
                .iter()
                .find(|g| {
                    g.first()
                        .is_some_and(|&i| dom.inputs[i].len() == dom.inputs[base].len())
                })
                .ok_or("no input of the base's length")?;
            let source = same[rng.random_range(0..same.len())];
            match counterfactual(program, node, &dom.inputs[base], &dom.inputs[source]) {
                Ok(want) => trials.push(Trial { base, source, want }),
                Err(_) => stat.undefined += 1,
            }
        }
        // Batches of equal length, in trial order within a length.
        let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (k, t) in trials.iter().enumerate() {
            by_len.entry(dom.inputs[t.base].len()).or_default().push(k);
        }
        let mut ok = vec![false; trials.len()];
        let mut got_all: Vec<Vec<Value>> = vec![Vec::new(); trials.len()];
        for members in by_len.values() {
            for chunk in members.chunks(BATCH) {
                let base: Vec<Vec<u32>> = chunk
                    .iter()
                    .map(|&k| encoded[trials[k].base].clone())
                    .collect();
                let source: Vec<Vec<u32>> = chunk
                    .iter()
                    .map(|&k| encoded[trials[k].source].clone())
                    .collect();
                let src = TokenBatch::new(&source).map_err(|e| e.to_string())?;
                let (ivs, _) = patch_from_source(&model.transformer, &src, sites)
                    .map_err(|e| e.to_string())?;
                let answers = decoded(&model.transformer, sc, &base, &RunOptions::intervene(&ivs))?;
                for (&k, a) in chunk.iter().zip(answers) {
                    ok[k] = same_values(&a, &trials[k].want);
                    got_all[k] = a;
                }
            }
        }
        stat.total = trials.len();
        stat.correct = ok.iter().filter(|b| **b).count();
        if first_wrong.is_none()
            && let Some(k) = ok.iter().position(|b| !b)
        {
            let t = &trials[k];
            first_wrong = Some(Counterexample {
                input: input_text(&dom.inputs[t.base]),
                source: Some(input_text(&dom.inputs[t.source])),
                variable: Some(var.clone()),
                got: values_text(&got_all[k]),
                want: values_text(&t.want),
            });
        }
        variables.push(stat);
    }
    let correct = variables.iter().map(|v| v.correct).sum();
    let total = variables.iter().map(|v| v.total).sum();
    Ok(Iia {
        variables,
        correct,
        total,
        first_wrong,
        coverage: dom.describe(),
    })
}
