//! Implementation pools backed by the compiler: sampled implementations of an interpretation or
//! a pipeline ([`SampledSource`]), and arbitrary model directories ([`ModelDirSource`]).
//!
//! Implementation `i` of an interpretation is `compile::sample::sample_one(compiled, families,
//! seed, i)` — the same model `congruity sample --seed S` writes as item `i`. Implementation `i`
//! of a pipeline is a chain holding implementation `i` of every stage, stage `k` sampled with
//! base seed `item_seed(seed, 1_000_000 + k)` so stages never share draws. Models are built in
//! memory ([`super::chain::to_transformer`]), run on the common inputs, checked against the
//! interpretation's reference outputs, and only their representation is kept (computed once per
//! index, on first use, whatever thread asks).
//!
//! The patched twin of a pool ([`SampledSource::patched`]) holds the *same* implementations with
//! `n` circuit heads interchange-patched from the corrupted inputs. The circuit comes from the
//! spec's `circuit` block; its variables are located in each implementation by the sampler's
//! placement record (placement and head-order families move heads), so the patched heads are the
//! ones that compute the circuit's variables in *that* implementation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::chain::{
    ChainPatch, StageModel, is_pipeline_dir, load_pipeline_dir, run_chain, to_transformer,
};
use super::circuit::{CircuitMapping, check_sites, declared_sites, mapping_for, placed_sites};
use super::extract::RepresentationSpec;
use super::inputs::InputSet;
use crate::compile::sample::{
    Family, POOL_FILE, PoolManifestError, Sample, item_seed, read_pool, sample_one,
};
use crate::compile::{CompileOptions, Compiled, OpPlacement, compile_checked};
use crate::equivalence::EquivalenceError;
use crate::equivalence::representation::Representation;
use crate::equivalence::source::{ImplementationSource, derive_seed};
use crate::experiment::ExperimentError;
use crate::lang::eval::{eval_pipeline, eval_program};
use crate::lang::ir::{Adapter, Circuit, Spec, Task, Value};
use crate::model::Site;

/// One compiled stage of a target.
#[derive(Debug, Clone)]
pub struct TargetStage {
    pub program: String,
    pub adapter: Option<Adapter>,
    pub compiled: Arc<Compiled>,
}

/// An interpretation (one stage) or a pipeline, compiled.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub is_pipeline: bool,
    pub task: Arc<Task>,
    pub stages: Vec<TargetStage>,
}

/// Compiles targets, each distinct interpretation once.
#[derive(Default)]
pub struct Compiler {
    compiled: BTreeMap<String, Arc<Compiled>>,
    /// Seed of the compiler's domain check (only used on domains too large to enumerate).
    pub check_seed: u64,
}

impl Compiler {
    pub fn new(check_seed: u64) -> Self {
        Self {
            compiled: BTreeMap::new(),
            check_seed,
        }
    }

    fn program(&mut self, spec: &Spec, name: &str) -> Result<Arc<Compiled>, ExperimentError> {
        if let Some(c) = self.compiled.get(name) {
            return Ok(c.clone());
        }
        let program = spec
            .programs
            .get(name)
            .ok_or_else(|| ExperimentError::UnknownTarget {
                name: name.to_string(),
                known: known(spec),
            })?;
        let (c, _) = compile_checked(program, &CompileOptions::default(), self.check_seed)
            .map_err(|source| ExperimentError::Compile {
                program: name.to_string(),
                source: Box::new(source),
            })?;
        let c = Arc::new(c);
        self.compiled.insert(name.to_string(), c.clone());
        Ok(c)
    }

    /// The pipeline `name` if the spec has one, else the interpretation `name`.
    pub fn target(&mut self, spec: &Spec, name: &str) -> Result<Target, ExperimentError> {
        if let Some(p) = spec.pipelines.get(name) {
            let mut stages = Vec::with_capacity(p.stages.len());
            for s in &p.stages {
                stages.push(TargetStage {
                    program: s.program.clone(),
                    adapter: s.adapter.clone(),
                    compiled: self.program(spec, &s.program)?,
                });
            }
            let task = spec
                .programs
                .get(&p.stages[0].program)
                .map(|p| p.task.clone())
                .ok_or_else(|| ExperimentError::UnknownTarget {
                    name: p.stages[0].program.clone(),
                    known: known(spec),
                })?;
            return Ok(Target {
                name: name.to_string(),
                is_pipeline: true,
                task,
                stages,
            });
        }
        let compiled = self.program(spec, name)?;
        let task = spec.programs[name].task.clone();
        Ok(Target {
            name: name.to_string(),
            is_pipeline: false,
            task,
            stages: vec![TargetStage {
                program: name.to_string(),
                adapter: None,
                compiled,
            }],
        })
    }
}

fn known(spec: &Spec) -> String {
    let mut names: Vec<&str> = spec.pipelines.keys().map(String::as_str).collect();
    names.extend(spec.programs.keys().map(String::as_str));
    names.join(", ")
}

impl Target {
    /// The interpretation's output of every stage on `input`, or why it has none (the input is
    /// outside some stage's domain).
    pub fn reference(
        &self,
        spec: &Spec,
        input: &[Value],
    ) -> Result<Vec<Vec<Value>>, ExperimentError> {
        let refused = |reason| ExperimentError::Reference {
            target: self.name.clone(),
            input: input.to_vec(),
            reason: Box::new(reason),
        };
        if self.is_pipeline {
            let p = &spec.pipelines[&self.name];
            eval_pipeline(spec, p, input)
                .map(|t| t.stage_outputs)
                .map_err(refused)
        } else {
            eval_program(&spec.programs[&self.name], input)
                .map(|t| vec![t.output().to_vec()])
                .map_err(refused)
        }
    }

    /// The stage models of a chain of sampled implementations.
    fn stage_models(&self, samples: &[Sample]) -> Result<Vec<StageModel>, ExperimentError> {
        self.stages
            .iter()
            .zip(samples)
            .map(|(st, s)| {
                let transformer = to_transformer(&s.weights, &format!("congruity-{}", st.program))
                    .map_err(|e| ExperimentError::StageModel {
                        program: st.program.clone(),
                        source: Box::new(e),
                    })?;
                Ok(StageModel {
                    program: st.program.clone(),
                    transformer,
                    sidecar: st.compiled.sidecar(),
                    adapter: st.adapter.clone(),
                    vocab: Some(st.compiled.plan.vocab.clone()),
                })
            })
            .collect()
    }

    /// Implementation `index` of every stage (see the module documentation for the seeds).
    pub fn sample_chain(
        &self,
        families: &[Family],
        seed: u64,
        index: usize,
    ) -> Result<Vec<Sample>, ExperimentError> {
        let single = self.stages.len() == 1;
        self.stages
            .iter()
            .enumerate()
            .map(|(k, st)| {
                let base = if single {
                    seed
                } else {
                    item_seed(seed, 1_000_000 + k as u64)
                };
                sample_one(&st.compiled, families, base, index as u64).map_err(|e| {
                    ExperimentError::Sample {
                        program: st.program.clone(),
                        source: Box::new(e),
                    }
                })
            })
            .collect()
    }
}

/// Which sites of a stage to patch, from a circuit of the stage's interpretation (see
/// [`super::circuit`] for how they are found).
#[derive(Debug, Clone)]
pub struct PatchPlan {
    pub circuit: Circuit,
    /// The stage whose interpretation the circuit is about.
    pub stage: usize,
    /// Placement (the circuit is the compiled layout) or as declared.
    pub mapping: CircuitMapping,
    /// The sites as declared.
    pub declared: Vec<Site>,
    /// Patch this many of the circuit's sites (all when `None` or larger than the circuit).
    pub heads: Option<usize>,
    /// Chooses the sites when fewer than all are patched: implementation `i` uses
    /// `derive_seed(seed, [i])`.
    pub seed: u64,
    pub corrupted: Arc<Vec<Vec<Value>>>,
}

impl PatchPlan {
    /// Checks the circuit against the target, names the stage it patches and decides how its
    /// sites are found in the target's implementations.
    pub fn new(
        target: &Target,
        circuit: &Circuit,
        heads: Option<usize>,
        seed: u64,
        corrupted: Arc<Vec<Vec<Value>>>,
    ) -> Result<Self, ExperimentError> {
        let stage = target
            .stages
            .iter()
            .position(|s| s.program == circuit.program)
            .ok_or_else(|| ExperimentError::Circuit {
                circuit: circuit.name.clone(),
                reason: format!(
                    "is about `{}`, which is not a stage of `{}` (stages: {})",
                    circuit.program,
                    target.name,
                    target
                        .stages
                        .iter()
                        .map(|s| s.program.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        if heads == Some(0) {
            return Err(ExperimentError::Circuit {
                circuit: circuit.name.clone(),
                reason: "patching 0 sites changes nothing; ask for at least 1".into(),
            });
        }
        let declared = declared_sites(circuit)?;
        if declared.is_empty() {
            return Err(ExperimentError::Circuit {
                circuit: circuit.name.clone(),
                reason: "declares no site; there is nothing to patch".into(),
            });
        }
        let c = &target.stages[stage].compiled;
        Ok(Self {
            mapping: mapping_for(circuit, c)?,
            circuit: circuit.clone(),
            stage,
            declared,
            heads,
            seed,
            corrupted,
        })
    }

    /// The sites patched in implementation `index` (whose stage sample has `placement`).
    pub fn sites(&self, c: &Compiled, placement: &[OpPlacement], index: usize) -> Vec<Site> {
        let sites = match self.mapping {
            CircuitMapping::Placement => placed_sites(&self.circuit, c, placement),
            CircuitMapping::Declared => self.declared.clone(),
        };
        choose_sites(sites, self.heads, self.seed, index)
    }
}

/// `n` of `sites` drawn from `derive_seed(seed, [index])` (in their original order), or all of
/// them.
pub fn choose_sites(sites: Vec<Site>, n: Option<usize>, seed: u64, index: usize) -> Vec<Site> {
    match n {
        Some(n) if n < sites.len() => {
            let mut order: Vec<usize> = (0..sites.len()).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, &[index as u64]));
            order.shuffle(&mut rng);
            order.truncate(n);
            order.sort();
            order.into_iter().map(|i| sites[i].clone()).collect()
        }
        _ => sites,
    }
}

/// Each index's representation, computed once on first use, whatever thread asks.
struct Cache {
    slots: Vec<OnceLock<Result<Representation, EquivalenceError>>>,
}

impl Cache {
    fn new(count: usize) -> Self {
        Self {
            slots: (0..count).map(|_| OnceLock::new()).collect(),
        }
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    /// Representation `index` of the source labelled `label`.
    fn get(
        &self,
        label: &str,
        index: usize,
        compute: impl FnOnce() -> Result<Representation, ExperimentError>,
    ) -> Result<Representation, EquivalenceError> {
        let slot = self
            .slots
            .get(index)
            .ok_or_else(|| EquivalenceError::out_of_range(label, index, self.len()))?;
        slot.get_or_init(|| compute().map_err(EquivalenceError::implementation))
            .clone()
    }
}

/// A pool of sampled implementations of one target.
pub struct SampledSource {
    label: String,
    target: Arc<Target>,
    families: Vec<Family>,
    seed: u64,
    inputs: Arc<InputSet>,
    /// `[stage][input][position]`
    reference: Arc<Vec<Vec<Vec<Value>>>>,
    spec: RepresentationSpec,
    patch: Option<PatchPlan>,
    /// One slot per implementation: its length is the pool's size.
    cache: Cache,
    keep: Option<PathBuf>,
    /// Where the representations are kept between runs (see [`SampledSource::cache_in`]).
    disk: Option<PathBuf>,
    /// Implementations read from model directories instead of sampled (see
    /// [`SampledSource::given`]).
    given: Option<Given>,
}

/// Implementations given for an interpretation instead of sampled: a pool directory (as
/// `congruity sample` writes it) and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenPool {
    /// The directory the pool is named by (in reports).
    pub dir: PathBuf,
    pub members: Vec<PathBuf>,
}

impl GivenPool {
    /// The pool in `dir` (see [`pool_members`]).
    pub fn open(dir: &Path) -> Result<Self, ExperimentError> {
        Ok(Self {
            dir: dir.to_path_buf(),
            members: pool_members(dir)?,
        })
    }
}

/// The implementations of a target given as a pool directory (trained ones, say).
struct Given {
    /// The pool directory as named.
    dir: PathBuf,
    models: ModelDirSource,
    /// The sites patched in every member (one choice for the pool), when patched.
    patched_sites: Vec<Site>,
}

impl SampledSource {
    /// `count` implementations of `target` sampled with `families` from `seed`. `reference` is
    /// [`Target::reference`] on every input, transposed to `[stage][input]`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        target: Arc<Target>,
        families: Vec<Family>,
        seed: u64,
        count: usize,
        inputs: Arc<InputSet>,
        reference: Arc<Vec<Vec<Vec<Value>>>>,
        spec: RepresentationSpec,
    ) -> Self {
        Self {
            label: target.name.clone(),
            cache: Cache::new(count),
            target,
            families,
            seed,
            inputs,
            reference,
            spec,
            patch: None,
            keep: None,
            disk: None,
            given: None,
        }
    }

    /// The implementations of `target` held in the pool directory `dir` (as `congruity sample
    /// --family trained` writes it), in place of sampled ones. They are not checked against the
    /// interpretation on the common inputs — a trained implementation is accepted at its accuracy
    /// and IIA thresholds, not exactly — but a member whose training record says it was not
    /// accepted is refused. Patched, every member has the circuit's sites as declared.
    pub fn given(
        target: Arc<Target>,
        pool: &GivenPool,
        inputs: Arc<InputSet>,
        spec: RepresentationSpec,
    ) -> Result<Self, ExperimentError> {
        let models = ModelDirSource::of_members(
            pool.members.clone(),
            target.name.clone(),
            inputs.clone(),
            spec.clone(),
        );
        for d in models.dirs() {
            if let Some(reason) = not_accepted(d).or_else(|| not_of(&target, d)) {
                return Err(ExperimentError::ModelDir {
                    dir: d.clone(),
                    reason,
                });
            }
        }
        Ok(Self {
            label: target.name.clone(),
            cache: Cache::new(models.count()),
            target,
            families: Vec::new(),
            seed: 0,
            inputs,
            reference: Arc::new(Vec::new()),
            spec,
            patch: None,
            keep: None,
            disk: None,
            given: Some(Given {
                dir: pool.dir.clone(),
                models,
                patched_sites: Vec::new(),
            }),
        })
    }

    /// The pool directory the implementations were read from (given pools).
    pub fn given_dir(&self) -> Option<&Path> {
        self.given.as_ref().map(|g| g.dir.as_path())
    }

    /// Keeps each implementation's representation in `dir/<label>-<key>/<index>.safetensors`
    /// and reads it back on later runs instead of sampling and running the implementation again.
    /// The key hashes everything the representation depends on: the tool version, every stage's
    /// interpretation as content ([`Program::fingerprint`](crate::lang::ir::Program::fingerprint))
    /// and adapter, the compiler's options, the sampler's families and seed, the common inputs
    /// (their set's name holds their hash) and the representation's settings — so a changed spec
    /// or setting is never served a stale representation. A representation is cached only after
    /// its implementation was checked against the interpretation on every input. Patched pools
    /// and pools that write their models (`keep_models`) are always computed.
    pub fn cache_in(mut self, dir: &Path, spec: &Spec) -> Self {
        if self.given.is_some() {
            return self;
        }
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(format!(
            "congruity-sampled/1\ncongruity {}\n",
            env!("CARGO_PKG_VERSION")
        ));
        for st in &self.target.stages {
            let fp = spec
                .programs
                .get(&st.program)
                .map(|p| p.fingerprint())
                .unwrap_or_default();
            h.update(format!("stage {} {fp} {:?}\n", st.program, st.adapter));
        }
        let families: Vec<&str> = self.families.iter().map(|f| f.name()).collect();
        h.update(format!(
            "{:?}\nfamilies {}\nseed {}\ninputs {}\nrepresentation {}\n",
            CompileOptions::default(),
            families.join(","),
            self.seed,
            self.inputs.id,
            self.spec.describe()
        ));
        let key: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        self.disk = Some(dir.join(format!("{}-{}", self.label, &key[..20])));
        self
    }

    /// Also writes every sampled implementation to `dir/<label>/<index>` (model directories, or
    /// one directory per stage for pipelines), for inspection with `congruity run`.
    pub fn keep_models(mut self, dir: &Path) -> Self {
        if self.given.is_none() {
            self.keep = Some(dir.join(&self.label));
        }
        self
    }

    /// The same implementations with circuit heads patched; labelled `<label>~patched`.
    pub fn patched(&self, plan: PatchPlan) -> Self {
        let label = format!("{}~patched", self.label);
        let given = self.given.as_ref().map(|g| {
            // A given member has no placement record: the circuit's sites as declared, one
            // choice for the pool (index 0's), as for models under test.
            let sites = choose_sites(plan.declared.clone(), plan.heads, plan.seed, 0);
            Given {
                dir: g.dir.clone(),
                models: g.models.patched(ModelPatch {
                    circuit: plan.circuit.name.clone(),
                    program: plan.circuit.program.clone(),
                    sites: sites.clone(),
                    corrupted: plan.corrupted.clone(),
                }),
                patched_sites: sites,
            }
        });
        Self {
            cache: Cache::new(self.cache.len()),
            label,
            target: self.target.clone(),
            families: self.families.clone(),
            seed: self.seed,
            inputs: self.inputs.clone(),
            reference: self.reference.clone(),
            spec: self.spec.clone(),
            patch: Some(plan),
            keep: None,
            disk: None,
            given,
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The heads patched in implementation `index` (empty for an unpatched pool).
    pub fn patched_sites(&self, index: usize) -> Result<Vec<Site>, ExperimentError> {
        let Some(plan) = &self.patch else {
            return Ok(Vec::new());
        };
        if let Some(g) = &self.given {
            return Ok(g.patched_sites.clone());
        }
        let chain = self.target.sample_chain(&self.families, self.seed, index)?;
        let c = &self.target.stages[plan.stage].compiled;
        Ok(plan.sites(c, &chain[plan.stage].placement, index))
    }

    /// The cache file of implementation `index`, when this pool is cached.
    fn cached_file(&self, index: usize) -> Option<PathBuf> {
        match (&self.disk, &self.patch, &self.keep) {
            (Some(d), None, None) => Some(d.join(format!("{index:04}.safetensors"))),
            _ => None,
        }
    }

    fn compute(&self, index: usize) -> Result<Representation, ExperimentError> {
        let file = self.cached_file(index);
        if let Some(r) = file.as_deref().and_then(|f| read_cached(f, &self.inputs)) {
            return Ok(r);
        }
        let r = self.compute_fresh(index)?;
        if let Some(f) = file {
            // The cache only saves time: a cache that cannot be written leaves the result as it is.
            let _ = write_cached(&f, &r);
        }
        Ok(r)
    }

    fn compute_fresh(&self, index: usize) -> Result<Representation, ExperimentError> {
        if let Some(g) = &self.given {
            return g.models.compute(index);
        }
        let chain = self.target.sample_chain(&self.families, self.seed, index)?;
        if let Some(dir) = &self.keep {
            let item = dir.join(format!("{index:04}"));
            for (k, (st, s)) in self.target.stages.iter().zip(&chain).enumerate() {
                let d = if self.target.stages.len() == 1 {
                    item.clone()
                } else {
                    item.join(format!("{k:02}-{}", st.program))
                };
                s.write(&st.compiled, &d)
                    .map_err(|e| ExperimentError::KeepSample {
                        dir: d.clone(),
                        source: Box::new(e),
                    })?;
            }
        }
        let models = self.target.stage_models(&chain)?;
        let run = match &self.patch {
            None => run_chain(
                &models,
                &self.inputs.inputs,
                &self.spec,
                Some(&self.reference),
                None,
            ),
            Some(plan) => {
                let c = &self.target.stages[plan.stage].compiled;
                let sites = plan.sites(c, &chain[plan.stage].placement, index);
                // Placed sites exist by construction; declared ones must be in this sample.
                check_sites(
                    &plan.circuit.name,
                    &sites,
                    &models[plan.stage].transformer,
                    &format!("{}[{index}]", self.label),
                )?;
                run_chain(
                    &models,
                    &self.inputs.inputs,
                    &self.spec,
                    None,
                    Some(&ChainPatch {
                        stage: plan.stage,
                        sites,
                        corrupted: &plan.corrupted,
                    }),
                )
            }
        }?;
        Ok(Representation::new(self.inputs.id.clone(), run.features)?)
    }
}

/// The `(program, dir)` of every stage a chain's `pipeline.json` lists, when `dir` is a chain
/// whose manifest reads.
fn chain_stages(dir: &Path) -> Option<Vec<(String, String)>> {
    if !is_pipeline_dir(dir) {
        return None;
    }
    let text = std::fs::read_to_string(dir.join(super::chain::PIPELINE_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let stage = |st: &serde_json::Value, key: &str| st[key].as_str().unwrap_or("?").to_owned();
    Some(
        v["stages"]
            .as_array()?
            .iter()
            .map(|st| (stage(st, "program"), stage(st, "dir")))
            .collect(),
    )
}

/// Why the member `dir` of a given pool cannot implement `target`: a single model given for a
/// pipeline, a chain given for an interpretation, or a chain of other stages.
fn not_of(target: &Target, dir: &Path) -> Option<String> {
    let Some(stages) = chain_stages(dir) else {
        return target.is_pipeline.then(|| {
            format!(
                "is one model, but `{}` is a pipeline: its implementations are chains (pipeline.json + one directory per stage)",
                target.name
            )
        });
    };
    let have: Vec<&str> = stages.iter().map(|(p, _)| p.as_str()).collect();
    let want: Vec<&str> = target.stages.iter().map(|s| s.program.as_str()).collect();
    if !target.is_pipeline {
        return Some(format!(
            "is a chain of {}, but `{}` is one interpretation",
            have.join(" |> "),
            target.name
        ));
    }
    (have != want).then(|| {
        format!(
            "is a chain of {}, but `{}` is {}",
            have.join(" |> "),
            target.name,
            want.join(" |> ")
        )
    })
}

/// Why the model in `dir` is not an implementation, when its sidecar's training record says
/// it was not accepted (models without a training record are taken as they are); a chain is
/// accepted only when every stage is.
fn not_accepted(dir: &Path) -> Option<String> {
    if let Some(stages) = chain_stages(dir) {
        return stages.iter().find_map(|(_, sub)| {
            not_accepted(&dir.join(sub)).map(|why| format!("stage {sub} {why}"))
        });
    }
    let text = std::fs::read_to_string(dir.join(crate::artifact::SIDECAR_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let t = v.get("provenance")?.get("training")?;
    (t.get("accepted")? == &serde_json::Value::Bool(false)).then(|| {
        format!(
            "was trained but not accepted as an implementation (accuracy {}, iia {}; thresholds {}, {})",
            t["accuracy"], t["iia"], t["min_accuracy"], t["min_iia"]
        )
    })
}

/// The tensor name of a cached representation.
const CACHED_TENSOR: &str = "representation";

/// A cached representation, when the file exists and holds one of the right number of rows
/// (anything else is recomputed and rewritten).
fn read_cached(file: &Path, inputs: &InputSet) -> Option<Representation> {
    let bytes = std::fs::read(file).ok()?;
    let st = safetensors::SafeTensors::deserialize(&bytes).ok()?;
    let t = st.tensor(CACHED_TENSOR).ok()?;
    if t.dtype() != safetensors::Dtype::F64 || t.shape().len() != 2 || t.shape()[0] != inputs.len()
    {
        return None;
    }
    let values: Vec<f64> = t
        .data()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    Representation::from_rows(inputs.id.clone(), t.shape()[0], t.shape()[1], &values).ok()
}

fn write_cached(file: &Path, r: &Representation) -> Result<(), String> {
    let m = r.matrix();
    let (n, d) = (m.nrows(), m.ncols());
    let mut bytes = Vec::with_capacity(n * d * 8);
    for i in 0..n {
        for j in 0..d {
            bytes.extend_from_slice(&m[(i, j)].to_le_bytes());
        }
    }
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![n, d], &bytes)
        .map_err(|e| e.to_string())?;
    let data = safetensors::serialize([(CACHED_TENSOR, view)], None).map_err(|e| e.to_string())?;
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    crate::files::write_file(file, &data).map_err(|e| e.to_string())
}

impl ImplementationSource for SampledSource {
    fn label(&self) -> &str {
        &self.label
    }

    fn count(&self) -> usize {
        self.cache.len()
    }

    fn representation(&self, index: usize) -> Result<Representation, EquivalenceError> {
        self.cache.get(&self.label, index, || self.compute(index))
    }
}

/// A pool of model directories (each holding `model.safetensors` + `config.json` +
/// `congruity.json`, a tracr export, or a pipeline directory run as one chain), run on the common inputs through their sidecar's
/// encodings. Their outputs are not checked: they need not implement anything.
pub struct ModelDirSource {
    label: String,
    dirs: Vec<PathBuf>,
    inputs: Arc<InputSet>,
    spec: RepresentationSpec,
    patch: Option<ModelPatch>,
    cache: Cache,
}

/// Sites patched in every model of a pool from the corrupted inputs: a circuit's sites exactly as
/// declared (a model under test has no placement record to follow).
#[derive(Debug, Clone)]
pub struct ModelPatch {
    pub circuit: String,
    /// The interpretation the circuit is about: the stage patched in a pipeline directory.
    pub program: String,
    pub sites: Vec<Site>,
    pub corrupted: Arc<Vec<Vec<Value>>>,
}

fn is_model_dir(d: &Path) -> bool {
    is_pipeline_dir(d)
        || ["config.json", "model.safetensors", "weights.safetensors"]
            .iter()
            .any(|f| d.join(f).is_file())
}

/// The model directories of `dir`: itself when it is a model, else the members its pool
/// manifest lists (a directory of models is a pool only once its manifest says it is complete:
/// an interrupted `congruity sample` must not pass for a smaller pool).
pub fn pool_members(dir: &Path) -> Result<Vec<PathBuf>, ExperimentError> {
    let bad = |reason: String| ExperimentError::ModelDir {
        dir: dir.to_path_buf(),
        reason,
    };
    if !dir.is_dir() {
        return Err(bad("no such directory".into()));
    }
    let dirs = if is_model_dir(dir) {
        vec![dir.to_path_buf()]
    } else {
        match read_pool(dir) {
            Ok(members) => members,
            Err(PoolManifestError::Missing) => {
                return Err(bad(format!(
                    "holds no model (config.json + model.safetensors, a tracr export, or pipeline.json) and no {POOL_FILE}: a pool is a directory written whole by `congruity sample`"
                )));
            }
            Err(e) => return Err(bad(e.to_string())),
        }
    };
    if let Some(d) = dirs.iter().find(|d| !is_model_dir(d)) {
        return Err(bad(format!(
            "pool member {} is not a model directory",
            d.display()
        )));
    }
    if dirs.is_empty() {
        return Err(bad("is an empty pool".into()));
    }
    Ok(dirs)
}

impl ModelDirSource {
    /// `dir` is one model, or a directory whose sub-directories are models (as `congruity
    /// sample` writes them), taken in name order.
    pub fn open(
        dir: &Path,
        label: String,
        inputs: Arc<InputSet>,
        spec: RepresentationSpec,
    ) -> Result<Self, ExperimentError> {
        Ok(Self::of_members(pool_members(dir)?, label, inputs, spec))
    }

    /// A pool of the model directories `dirs` (checked to be models by the caller).
    pub fn of_members(
        dirs: Vec<PathBuf>,
        label: String,
        inputs: Arc<InputSet>,
        spec: RepresentationSpec,
    ) -> Self {
        Self {
            cache: Cache::new(dirs.len()),
            label,
            dirs,
            inputs,
            spec,
            patch: None,
        }
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The same models with `patch` applied; labelled `<label>~patched`.
    pub fn patched(&self, patch: ModelPatch) -> Self {
        Self {
            label: format!("{}~patched", self.label),
            dirs: self.dirs.clone(),
            inputs: self.inputs.clone(),
            spec: self.spec.clone(),
            patch: Some(patch),
            cache: Cache::new(self.dirs.len()),
        }
    }

    /// The chain patch of `stages` (one model, or a pipeline directory's stages), after checking
    /// that every site exists in the stage it patches.
    fn chain_patch<'a>(
        &'a self,
        stages: &[StageModel],
        dir: &Path,
    ) -> Result<Option<ChainPatch<'a>>, ExperimentError> {
        let Some(p) = &self.patch else {
            return Ok(None);
        };
        let stage = if stages.len() == 1 {
            0
        } else {
            stages
                .iter()
                .position(|s| s.program == p.program)
                .ok_or_else(|| ExperimentError::Circuit {
                    circuit: p.circuit.clone(),
                    reason: format!(
                        "is about `{}`, which is not a stage of the pipeline in {} (stages: {})",
                        p.program,
                        dir.display(),
                        stages
                            .iter()
                            .map(|s| s.program.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?
        };
        check_sites(
            &p.circuit,
            &p.sites,
            &stages[stage].transformer,
            &dir.display().to_string(),
        )?;
        Ok(Some(ChainPatch {
            stage,
            sites: p.sites.clone(),
            corrupted: &p.corrupted,
        }))
    }

    fn compute(&self, index: usize) -> Result<Representation, ExperimentError> {
        let dir = &self.dirs[index];
        if is_pipeline_dir(dir) {
            let pipeline = load_pipeline_dir(dir)?;
            let patch = self.chain_patch(&pipeline.stages, dir)?;
            let run = run_chain(
                &pipeline.stages,
                &self.inputs.inputs,
                &self.spec,
                None,
                patch.as_ref(),
            )
            .map_err(|e| ExperimentError::InModelDir {
                dir: dir.clone(),
                source: Box::new(e),
            })?;
            return Ok(Representation::new(self.inputs.id.clone(), run.features)?);
        }
        let intervention = super::intervened::Intervention::read(dir)?;
        let loaded = crate::model::load_base(dir, &candle_core::Device::Cpu)?;
        let sidecar = loaded
            .sidecar
            .clone()
            .ok_or_else(|| ExperimentError::NoSidecar { dir: dir.clone() })?;
        let stage = StageModel {
            program: dir.display().to_string(),
            transformer: loaded.transformer,
            sidecar,
            adapter: None,
            vocab: None,
        };
        let stages = [stage];
        let patch = self.chain_patch(&stages, dir)?;
        // An intervened implementation is run with its own patch (and takes no other).
        let corrupted;
        let patch = match (intervention, patch) {
            (None, p) => p,
            (Some(_), Some(_)) => {
                return Err(ExperimentError::ModelDir {
                    dir: dir.clone(),
                    reason: "is an intervened implementation already; the intervention test patches clean models".into(),
                });
            }
            (Some(i), None) => {
                let bad = |reason: String| ExperimentError::ModelDir {
                    dir: dir.clone(),
                    reason,
                };
                let sites = i.parsed_sites().map_err(bad)?;
                check_sites(
                    &i.circuit,
                    &sites,
                    &stages[0].transformer,
                    &dir.display().to_string(),
                )?;
                corrupted = i.corrupted_for(&self.inputs.inputs).map_err(bad)?;
                Some(ChainPatch {
                    stage: 0,
                    sites,
                    corrupted: &corrupted,
                })
            }
        };
        let run = run_chain(
            &stages,
            &self.inputs.inputs,
            &self.spec,
            None,
            patch.as_ref(),
        )?;
        Ok(Representation::new(self.inputs.id.clone(), run.features)?)
    }
}

impl ImplementationSource for ModelDirSource {
    fn label(&self) -> &str {
        &self.label
    }

    fn count(&self) -> usize {
        self.dirs.len()
    }

    fn representation(&self, index: usize) -> Result<Representation, EquivalenceError> {
        self.cache.get(&self.label, index, || self.compute(index))
    }
}
