//! Which model sites a trained implementation must compute each variable at: a spec's `circuit`
//! block, or the compiled layout when none is named.

use serde::Serialize;

use super::TrainError;
use crate::compile::Compiled;
use crate::intervene::iia::{declared_site, node_sites};
use crate::lang::ir::{Circuit, CircuitSite, HookRef, NodeId, Program};
use crate::model::{AttnHook, BlockHook, HookPoint, ModelConfig, Site};

/// One variable and the sites that carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlignedVariable {
    /// The interpretation's name for it (`output` for the output).
    pub variable: String,
    #[serde(skip)]
    pub node: NodeId,
    #[serde(serialize_with = "site_names")]
    pub sites: Vec<Site>,
}

fn site_names<S: serde::Serializer>(sites: &[Site], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(sites.iter().map(site_text))
}

/// A site as a circuit block writes it: `blocks.1.attn.hook_z[0]`.
pub fn site_text(s: &Site) -> String {
    match s.head {
        Some(h) => format!("{}[{h}]", s.hook),
        None => s.hook.to_string(),
    }
}

/// Variables → sites, in circuit order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Correspondence {
    /// The circuit's name (`<program>_compiled` for the compiled layout).
    pub name: String,
    pub variables: Vec<AlignedVariable>,
}

impl Correspondence {
    /// A spec's circuit, as declared.
    pub fn from_circuit(circuit: &Circuit) -> Result<Self, TrainError> {
        let mut variables = Vec::new();
        for cs in &circuit.sites {
            let sites = cs
                .hooks
                .iter()
                .map(|h| {
                    declared_site(h).ok_or_else(|| TrainError::Circuit {
                        circuit: circuit.name.clone(),
                        reason: format!("`{}` is not a hook point", h.hook),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            variables.push(AlignedVariable {
                variable: cs.variable.clone(),
                node: cs.node,
                sites,
            });
        }
        if variables.is_empty() {
            return Err(TrainError::Circuit {
                circuit: circuit.name.clone(),
                reason: "it aligns no variable".into(),
            });
        }
        Ok(Correspondence {
            name: circuit.name.clone(),
            variables,
        })
    }

    /// Where the compiler put each named variable (and the output): its heads' `hook_z[h]` and
    /// its MLPs' `hook_mlp_out`, as `congruity compile --layout` prints them.
    pub fn compiled_layout(program: &Program, compiled: &Compiled) -> Result<Self, TrainError> {
        let mut variables = Vec::new();
        for (i, node) in program.graph.nodes.iter().enumerate() {
            let id = NodeId(i);
            let variable = if id == program.output {
                "output".to_owned()
            } else {
                match &node.name {
                    Some(n) => n.clone(),
                    None => continue,
                }
            };
            let sites = node_sites(compiled, &compiled.placement, id);
            if !sites.is_empty() {
                variables.push(AlignedVariable {
                    variable,
                    node: id,
                    sites,
                });
            }
        }
        if variables.is_empty() {
            return Err(TrainError::Circuit {
                circuit: format!("{}_compiled", program.name),
                reason: "the compiler put no variable in a head or an MLP".into(),
            });
        }
        Ok(Correspondence {
            name: format!("{}_compiled", program.name),
            variables,
        })
    }

    /// The spec form of this correspondence, for the harness's IIA measurement.
    pub fn to_circuit(&self, program: &str) -> Circuit {
        Circuit {
            name: self.name.clone(),
            program: program.to_owned(),
            sites: self
                .variables
                .iter()
                .map(|v| CircuitSite {
                    variable: v.variable.clone(),
                    node: v.node,
                    hooks: v
                        .sites
                        .iter()
                        .map(|s| HookRef {
                            hook: s.hook.to_string(),
                            head: s.head,
                        })
                        .collect(),
                })
                .collect(),
            source: None,
        }
    }

    /// The circuit block text of this correspondence.
    pub fn block_text(&self, program: &str) -> String {
        let lines: Vec<String> = self
            .variables
            .iter()
            .map(|v| {
                let sites: Vec<String> = v.sites.iter().map(site_text).collect();
                format!("  {} -> {}", v.variable, sites.join(", "))
            })
            .collect();
        format!(
            "circuit {} for {program} {{\n{}\n}}\n",
            self.name,
            lines.join("\n")
        )
    }

    /// The depth and head count the sites need (`blocks.3…[1]` needs 4 layers and 2 heads).
    pub fn extent(&self) -> (usize, usize) {
        let mut layers = 0;
        let mut heads = 0;
        for s in self.variables.iter().flat_map(|v| &v.sites) {
            if let HookPoint::Block { layer, .. } = s.hook {
                layers = layers.max(layer + 1);
            }
            if let Some(h) = s.head {
                heads = heads.max(h + 1);
            }
        }
        (layers, heads)
    }

    /// The model's components no variable is aligned with, as the sites a strict
    /// interchange resamples: each head's `hook_z[h]` and each MLP's `hook_mlp_out`. A head or MLP
    /// counts as aligned when any aligned site reads inside it (its q/k/v/z/result/pattern, its
    /// `hook_mlp_out` or `mlp.*`), or when a whole-stream site (`hook_resid_post`, ...) of a
    /// later layer could carry it — then nothing before that site is free to change.
    pub fn unaligned_nodes(&self, cfg: &ModelConfig) -> Vec<Site> {
        let sites: Vec<&Site> = self.variables.iter().flat_map(|v| &v.sites).collect();
        // A whole-stream site makes every component up to its layer part of the alignment.
        let stream_layer = sites
            .iter()
            .filter_map(|s| match s.hook {
                HookPoint::Block {
                    layer,
                    hook: BlockHook::ResidPre,
                } => Some(layer as isize - 1),
                HookPoint::Block {
                    layer,
                    hook: BlockHook::ResidMid | BlockHook::ResidPost,
                } => Some(layer as isize),
                HookPoint::LnFinal(_) | HookPoint::UnembedIn | HookPoint::UnembedOut => {
                    Some(cfg.n_layers as isize)
                }
                _ => None,
            })
            .max()
            .unwrap_or(-1);
        let head_aligned = |layer: usize, head: usize| {
            sites.iter().any(|s| match s.hook {
                HookPoint::Block {
                    layer: l,
                    hook: BlockHook::Attn(_) | BlockHook::AttnOut,
                } => l == layer && s.head.is_none_or(|h| h == head),
                _ => false,
            })
        };
        let mlp_aligned = |layer: usize| {
            sites.iter().any(|s| match s.hook {
                HookPoint::Block {
                    layer: l,
                    hook: BlockHook::MlpOut | BlockHook::Mlp(_),
                } => l == layer,
                _ => false,
            })
        };
        let mut out = Vec::new();
        for layer in 0..cfg.n_layers {
            if (layer as isize) <= stream_layer {
                continue;
            }
            for head in 0..cfg.n_heads {
                if !head_aligned(layer, head) {
                    out.push(Site::hook(HookPoint::attn(layer, AttnHook::Z)).with_head(head));
                }
            }
            if !cfg.attn_only && !mlp_aligned(layer) {
                out.push(Site::hook(HookPoint::Block {
                    layer,
                    hook: BlockHook::MlpOut,
                }));
            }
        }
        out
    }
}
