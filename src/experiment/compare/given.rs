//! `congruity compare --representations FILE`: the estimator on representations extracted
//! elsewhere (TransformerLens, nnsight, another run). FILE is a safetensors file whose tensors
//! are named `POOL/INDEX`, each `[n, d]` (f32 or f64) on the same n inputs in the same order;
//! each POOL is one pool of implementations (indices 0, 1, ... without gaps, at least three per
//! pool for the selectivity matrix's diagonal). The selectivity matrix between the pools and the
//! transfer matrix are computed as for sampled implementations, with the same seed streams.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{
    CompareReport, CompareSettings, InputsReport, Notes, PoolInfo, Seeds, experiments, plan,
    progress,
};
use crate::equivalence::point::PointTestConfig;
use crate::equivalence::representation::{InputsId, Representation};
use crate::equivalence::source::{ImplementationSource, RepresentationSet};
use crate::experiment::ExperimentError;

/// The largest representations file read (a generous bound on what fits in memory anyway).
const MAX_BYTES: u64 = 16 << 30;

fn bad(path: &Path, reason: String) -> ExperimentError {
    ExperimentError::ModelDir {
        dir: path.to_path_buf(),
        reason,
    }
}

/// Pools of representations by name, each in index order.
pub type NamedPools = Vec<(String, Vec<Representation>)>;

/// The pools of `path`, and the file's sha256.
pub fn read_pools(path: &Path) -> Result<(NamedPools, String), ExperimentError> {
    let bytes = crate::files::read_bytes(path, MAX_BYTES, "a representations file")
        .map_err(|e| bad(path, e.to_string()))?;
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
    let id = InputsId(format!("{}:sha256={}", path.display(), &sha[..16]));
    let mut pools: BTreeMap<String, BTreeMap<usize, Representation>> = BTreeMap::new();
    let mut rows: Option<(usize, String)> = None;
    for (name, view) in st.tensors() {
        let (pool, index) = name
            .rsplit_once('/')
            .and_then(|(p, i)| Some((p.to_string(), i.parse::<usize>().ok()?)))
            .filter(|(p, _)| !p.is_empty())
            .ok_or_else(|| {
                bad(
                    path,
                    format!("tensor `{name}` is not named POOL/INDEX (e.g. by_length/0)"),
                )
            })?;
        let shape = view.shape();
        if shape.len() != 2 {
            return Err(bad(
                path,
                format!("tensor `{name}` has shape {shape:?}; expected [n, d]"),
            ));
        }
        let values: Vec<f64> = match view.dtype() {
            safetensors::Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            safetensors::Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
                .collect(),
            other => {
                return Err(bad(
                    path,
                    format!("tensor `{name}` is {other:?}; expected F32 or F64"),
                ));
            }
        };
        match &rows {
            None => rows = Some((shape[0], name.clone())),
            Some((n, first)) if *n != shape[0] => {
                return Err(bad(
                    path,
                    format!(
                        "tensor `{name}` has {} rows but `{first}` has {n}: every representation must be on the same inputs",
                        shape[0]
                    ),
                ));
            }
            Some(_) => {}
        }
        let r = Representation::from_rows(id.clone(), shape[0], shape[1], &values)
            .map_err(|e| bad(path, format!("tensor `{name}`: {e}")))?;
        pools.entry(pool).or_default().insert(index, r);
    }
    if pools.is_empty() {
        return Err(bad(path, "holds no tensor".into()));
    }
    let mut out = Vec::new();
    for (pool, items) in pools {
        if let Some((k, _)) = items.iter().enumerate().find(|(k, (i, _))| *k != **i) {
            return Err(bad(
                path,
                format!(
                    "pool `{pool}` has no implementation {k}: indices must run 0, 1, 2, ... without gaps"
                ),
            ));
        }
        out.push((pool, items.into_values().collect()));
    }
    Ok((out, sha))
}

/// The comparison of the pools of a representations file (see the module documentation).
pub fn compare_representations(
    path: &Path,
    s: &CompareSettings,
) -> Result<CompareReport, ExperimentError> {
    let notes = Notes::new(s.progress);
    let (pools, sha) = read_pools(path)?;
    let sets: Vec<RepresentationSet> = pools
        .iter()
        .map(|(name, items)| RepresentationSet::new(name.clone(), items.clone()))
        .collect();
    let refs: Vec<&dyn ImplementationSource> = sets
        .iter()
        .map(|p| p as &dyn ImplementationSource)
        .collect();
    let seeds = Seeds::from_master(s.seed);
    let point = PointTestConfig {
        measure: s.measure.clone(),
        draws: s.draws,
        seed: seeds.selectivity,
        confidence: s.confidence,
        interval: s.interval,
        epsilon: s.epsilon,
        progress: progress(s.progress, "selectivity fits"),
    };
    let selectivity = experiments::selectivity(&refs, &point, s, &notes)?;
    let transfer = experiments::transfer(&refs, seeds.transfer, s, &notes)?;
    notes.say("done");
    let n = pools.first().map_or(0, |(_, items)| items[0].n_inputs());
    let infos = pools
        .iter()
        .map(|(name, items)| {
            let widths: Vec<usize> = items.iter().map(|r| r.n_features()).collect();
            PoolInfo {
                label: name.clone(),
                kind: "representations",
                count: items.len(),
                stages: Vec::new(),
                dirs: Vec::new(),
                seed: None,
                features: [
                    widths.iter().copied().min().unwrap_or(0),
                    widths.iter().copied().max().unwrap_or(0),
                ],
            }
        })
        .collect();
    let mut settings = plan::settings_report(s);
    settings.representation = format!("given ({})", path.display());
    settings.samples = 0;
    Ok(CompareReport {
        format: "congruity-compare/1",
        spec: vec![super::SpecFile {
            path: path.display().to_string(),
            sha256: sha.clone(),
        }],
        settings,
        seeds,
        inputs: InputsReport {
            id: format!("{}:sha256={}", path.display(), &sha[..16]),
            task: String::new(),
            count: n,
            lengths: Vec::new(),
        },
        pools: infos,
        selectivity,
        model_tests: Vec::new(),
        model_verdicts: Vec::new(),
        transfer,
        intervention: Vec::new(),
    })
}
