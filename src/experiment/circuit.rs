//! A circuit's sites in a model: what the spec declares, and how they are found in sampled
//! implementations.
//!
//! A circuit says where each variable of an interpretation lives, as hook points
//! (`length -> blocks.0.attn.hook_z[0], blocks.0.hook_mlp_out`). Interventions patch exactly those
//! sites on a model under test. A sampled implementation of the interpretation may have moved the
//! variable (the placement and head-order families move heads and MLPs); the circuit is followed
//! there only when it is written against the interpretation's *compiled layout* — when every
//! variable's declared sites are the sites where the compiler put it — because only then do the
//! declared sites and the sampler's placement record describe the same computation
//! ([`CircuitMapping::Placement`]). Any other circuit is patched where it is declared, in every
//! implementation ([`CircuitMapping::Declared`]): a wrong circuit then patches the wrong sites and
//! gets the weaker result it deserves, instead of being silently corrected from the sampler's
//! records.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::compile::{Compiled, OpPlacement};
use crate::experiment::ExperimentError;
pub use crate::intervene::iia::spec_name;
use crate::intervene::iia::{circuit_block, declared_site, layout_variables, node_sites};
use crate::lang::ir::Circuit;
use crate::model::{Site, Transformer};

/// How a circuit's sites were found in an implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CircuitMapping {
    /// The circuit is the compiled layout; each sampled implementation's placement record says
    /// where its variables went.
    Placement,
    /// Patched at the sites as declared.
    Declared,
}

impl CircuitMapping {
    pub fn describe(self) -> &'static str {
        match self {
            CircuitMapping::Placement => {
                "the circuit is the interpretation's compiled layout: followed through each implementation's placement record"
            }
            CircuitMapping::Declared => "patched at the sites the circuit declares",
        }
    }
}

/// `circuit` restricted to `variable`'s sites (the whole circuit when `None`).
pub fn restricted_to(
    circuit: &Circuit,
    variable: Option<&str>,
) -> Result<Circuit, ExperimentError> {
    let mut c = circuit.clone();
    if let Some(v) = variable {
        c.sites.retain(|s| s.variable == v);
        if c.sites.is_empty() {
            let known: Vec<&str> = circuit.sites.iter().map(|s| s.variable.as_str()).collect();
            return Err(ExperimentError::Circuit {
                circuit: circuit.name.clone(),
                reason: format!(
                    "has no variable `{v}` (its variables: {})",
                    known.join(", ")
                ),
            });
        }
    }
    Ok(c)
}

/// The circuit's sites as declared, in declaration order, each once.
pub fn declared_sites(circuit: &Circuit) -> Result<Vec<Site>, ExperimentError> {
    let mut out: Vec<Site> = Vec::new();
    for site in &circuit.sites {
        for h in &site.hooks {
            let s = declared_site(h).ok_or_else(|| ExperimentError::Circuit {
                circuit: circuit.name.clone(),
                reason: format!("`{}` is not a hook point", h.hook),
            })?;
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// Every circuit variable's sites under `placement`, in circuit order, each once.
pub fn placed_sites(circuit: &Circuit, c: &Compiled, placement: &[OpPlacement]) -> Vec<Site> {
    let mut out: Vec<Site> = Vec::new();
    for site in &circuit.sites {
        for s in node_sites(c, placement, site.node) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// Whether `circuit` is written against `c`'s compiled layout: for every variable, the declared
/// sites are exactly where the compiler put it.
pub fn mapping_for(circuit: &Circuit, c: &Compiled) -> Result<CircuitMapping, ExperimentError> {
    for site in &circuit.sites {
        let mut declared = BTreeSet::new();
        for h in &site.hooks {
            let s = declared_site(h).ok_or_else(|| ExperimentError::Circuit {
                circuit: circuit.name.clone(),
                reason: format!("`{}` is not a hook point", h.hook),
            })?;
            declared.insert(spec_name(&s));
        }
        let placed: BTreeSet<String> = node_sites(c, &c.placement, site.node)
            .iter()
            .map(spec_name)
            .collect();
        if placed.is_empty() || declared != placed {
            return Ok(CircuitMapping::Declared);
        }
    }
    Ok(CircuitMapping::Placement)
}

/// Checks that every site exists in `model` (`what` names the model in the error).
pub fn check_sites(
    circuit: &str,
    sites: &[Site],
    model: &Transformer,
    what: &str,
) -> Result<(), ExperimentError> {
    for s in sites {
        model
            .check_site(s)
            .map_err(|e| ExperimentError::CircuitSite {
                circuit: circuit.to_owned(),
                model: what.to_owned(),
                problem: Box::new(e),
            })?;
    }
    Ok(())
}

/// Why `circuit`'s declared sites do not all exist in `model` (a layer, head or hook it lacks,
/// with the model's shape), if they do not.
pub fn misfit(circuit: &Circuit, model: &Transformer) -> Option<String> {
    let sites = match declared_sites(circuit) {
        Ok(s) => s,
        Err(e) => return Some(e.to_string()),
    };
    sites
        .iter()
        .find_map(|s| model.check_site(s).err().map(|e| e.to_string()))
}

/// The compiled layout of `program` as a circuit block a spec can hold: every named variable the
/// compiler put in a head or an MLP, with its sites. A circuit written so is followed through
/// each sampled implementation's placement record.
pub fn layout_circuit(name: &str, program: &crate::lang::ir::Program, c: &Compiled) -> String {
    circuit_block(name, &program.name, &layout_variables(program, c))
}
