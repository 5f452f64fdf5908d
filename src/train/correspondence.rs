//! Which model sites a trained implementation must compute each variable at: a spec's `circuit`
//! block, or the compiled layout when none is named.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::TrainError;
use super::architecture::Architecture;
use crate::compile::Compiled;
use crate::intervene::InterveneError;
pub use crate::intervene::iia::AlignedVariable;
use crate::intervene::iia::{Alignment, circuit_block, layout_variables, node_sites};
use crate::lang::ir::{Circuit, CircuitSite, HookRef, NodeId, Op, Program};
use crate::model::{AttnHook, BlockHook, HookPoint, ModelConfig, Site};

/// Adds the sites of every unnamed node to the one variable its value flows into (the nearest
/// named nodes that read it, directly or through other unnamed nodes), when there is exactly
/// one such variable among `variables`.
fn fold_unnamed_nodes(program: &Program, compiled: &Compiled, variables: &mut [AlignedVariable]) {
    let nodes = &program.graph.nodes;
    let named = |id: usize| id == program.output.0 || nodes[id].name.is_some();
    // Readers of each node.
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (id, n) in nodes.iter().enumerate() {
        for NodeId(operand) in n.op.operands() {
            readers[operand].push(id);
        }
    }
    for id in (0..nodes.len()).filter(|&id| !named(id)) {
        let sites = node_sites(compiled, &compiled.placement, NodeId(id));
        if sites.is_empty() {
            continue;
        }
        let mut consumers = std::collections::BTreeSet::new();
        let mut stack = readers[id].clone();
        let mut seen = std::collections::BTreeSet::new();
        while let Some(r) = stack.pop() {
            if !seen.insert(r) {
                continue;
            }
            if named(r) {
                consumers.insert(r);
            } else {
                stack.extend(readers[r].iter().copied());
            }
        }
        let mut targets = variables
            .iter_mut()
            .filter(|v| consumers.contains(&v.node.0));
        if let (Some(v), None, 1) = (targets.next(), targets.next(), consumers.len()) {
            for site in sites {
                if !v.sites.contains(&site) {
                    v.sites.push(site);
                }
            }
            v.sites.sort_by_key(site_order);
        }
    }
}

/// Removes every variable whose sites are exactly those of a later variable that reads it and
/// also reads the input by another path: an interchange of the earlier one then patches the
/// later one with its value on the source, where the interpretation recomputes it from the
/// earlier one's source value and the base's own input. (A later variable computed from the
/// earlier one alone, `opp_idx_1 = opp_idx - 1`, takes the same value both ways: both stay.)
fn drop_fused_variables(program: &Program, variables: &mut Vec<AlignedVariable>) {
    let nodes = &program.graph.nodes;
    // Whether `later` reaches the tokens or the indices without passing through `earlier`,
    // and reads `earlier` at all.
    let conflicts = |later: NodeId, earlier: NodeId| {
        let (mut reads, mut other_path) = (false, false);
        let mut stack = nodes[later.0].op.operands();
        let mut seen = std::collections::BTreeSet::new();
        while let Some(n) = stack.pop() {
            if n == earlier {
                reads = true;
                continue;
            }
            if !seen.insert(n) {
                continue;
            }
            match nodes[n.0].op {
                Op::Tokens | Op::Indices => other_path = true,
                ref op => stack.extend(op.operands()),
            }
        }
        reads && other_path
    };
    let same_sites = |a: &AlignedVariable, b: &AlignedVariable| {
        a.sites.len() == b.sites.len() && a.sites.iter().all(|s| b.sites.contains(s))
    };
    let fused: Vec<bool> = variables
        .iter()
        .map(|v| {
            variables
                .iter()
                .any(|w| w.node != v.node && same_sites(v, w) && conflicts(w.node, v.node))
        })
        .collect();
    let mut keep = fused.iter().map(|f| !f);
    variables.retain(|_| keep.next().unwrap_or(true));
}

/// Sites in layer order, a layer's heads before its MLP.
fn site_order(s: &Site) -> (usize, usize, usize) {
    match s.hook {
        HookPoint::Block { layer, hook } => {
            let mlp = matches!(
                hook,
                BlockHook::MlpIn | BlockHook::Ln2(_) | BlockHook::Mlp(_) | BlockHook::MlpOut
            );
            (layer, usize::from(mlp), s.head.unwrap_or(0))
        }
        _ => (usize::MAX, 0, 0),
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
        let mut declared = Alignment::from_circuit(circuit).map_err(|e| match e {
            InterveneError::Circuit { circuit, reason } => TrainError::Circuit { circuit, reason },
            other => TrainError::Setup(other.to_string()),
        })?;
        let variables: Vec<AlignedVariable> = circuit
            .sites
            .iter()
            .map(|cs| AlignedVariable {
                variable: cs.variable.clone(),
                node: cs.node,
                sites: declared.variables.remove(&cs.variable).unwrap_or_default(),
            })
            .collect();
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
    ///
    /// A variable the compiler fused into the component that computes a later variable from it
    /// and from the input (`checks = map2(f, shifted_even_odd, even_odd)` and `shifted_even_odd`
    /// in one MLP) is left out: patching that component sets both at once, so no model — the
    /// compiled one included — can answer an interchange of the earlier variable alone.
    ///
    /// A component the compiler placed for an unnamed node (the `selector_width` inside
    /// `output = map(f, selector_width(s))`, say) belongs to the variable that consumes it:
    /// left out, the strict term would resample a component the variable's value is computed
    /// with, and require the output to survive it — which no model can do.
    pub fn compiled_layout(program: &Program, compiled: &Compiled) -> Result<Self, TrainError> {
        let name = format!("{}_compiled", program.name);
        let mut variables = layout_variables(program, compiled);
        fold_unnamed_nodes(program, compiled, &mut variables);
        drop_fused_variables(program, &mut variables);
        if variables.is_empty() {
            return Err(TrainError::Circuit {
                circuit: name,
                reason: "the compiler put no variable in a head or an MLP".into(),
            });
        }
        Ok(Correspondence { name, variables })
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
        circuit_block(&self.name, program, &self.variables)
    }

    /// A random correspondence of the same variables in `arch` (the paper's "random
    /// correspondence"): the layers the sites use are mapped into `arch`'s layers by a random
    /// increasing map (so every variable is still computed after the ones it reads, and a
    /// layer's attention still before its MLP), and each layer's head indices by a random
    /// permutation of `arch`'s heads. Sites outside the blocks (embeddings, unembedding) stay.
    /// With as many layers and heads as the sites need and one head, nothing moves. Named
    /// `<name>_drawn`.
    pub fn draw(&self, arch: &Architecture, rng: &mut ChaCha8Rng) -> Correspondence {
        let (used, _) = self.extent();
        let spare = arch.n_layers.saturating_sub(used);
        // An increasing map 0..used -> 0..n_layers: `spare` free layers put among the used ones.
        let mut slots: Vec<bool> = vec![true; used];
        for _ in 0..spare {
            let at = rng.random_range(0..=slots.len());
            slots.insert(at, false);
        }
        let layer_of: Vec<usize> = slots
            .iter()
            .enumerate()
            .filter(|(_, used)| **used)
            .map(|(i, _)| i)
            .collect();
        let heads: Vec<Vec<usize>> = (0..arch.n_layers)
            .map(|_| {
                let mut p: Vec<usize> = (0..arch.n_heads).collect();
                p.shuffle(rng);
                p
            })
            .collect();
        let moved = |s: &Site| -> Site {
            let mut out = s.clone();
            if let HookPoint::Block { layer, hook } = s.hook {
                let l = layer_of[layer];
                out.hook = HookPoint::Block { layer: l, hook };
                out.head = s.head.map(|h| heads[l][h]);
            }
            out
        };
        Correspondence {
            name: format!("{}_drawn", self.name),
            variables: self
                .variables
                .iter()
                .map(|v| AlignedVariable {
                    variable: v.variable.clone(),
                    node: v.node,
                    sites: v.sites.iter().map(moved).collect(),
                })
                .collect(),
        }
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
