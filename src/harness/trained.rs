//! Trained implementations, measured and accepted as `congruity test` measures a model:
//! accuracy on the domain (the whole of it, or 10,000 seeded inputs) and IIA of the circuit it
//! was trained on. `congruity train`, `congruity sample --family trained` and the `samples N
//! family trained` field of a check all go through here, so a model is accepted by one rule.
//!
//! A check's trained pool is kept under the harness's cache directory, one model directory per
//! implementation ([`trained_pool`]): training is the expensive part of such a check, and a
//! kept member is keyed by everything it depends on, so a changed interpretation or setting is
//! never served a stale model.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::json;

use crate::artifact::{CONFIG_FILE, MODEL_FILE, SIDECAR_FILE, Sidecar};
use crate::compile::pipeline::{
    CompiledPipeline, PIPELINE_FILE, chain_stage_seed, compile_pipeline, stage_dir,
};
use crate::compile::sample::{POOL_FILE, POOL_FORMAT, member_name};
use crate::compile::{CompileOptions, Provenance, compile_checked};
use crate::harness::behaviour::{Iia, behaviour, iia};
use crate::lang::ir::{Program, Spec};
use crate::model::{LoadedModel, ModelFormat};
use crate::progress::Progress;
use crate::train::{Correspondence, TrainOptions, Trained, sample_seed, train};

/// The training record written beside the model.
pub const TRAIN_REPORT_FILE: &str = "train.json";

/// The files [`write_member`] writes: a member is complete when all are there.
const MEMBER_FILES: [&str; 4] = [MODEL_FILE, CONFIG_FILE, SIDECAR_FILE, TRAIN_REPORT_FILE];

/// Interchange pairs per variable of the acceptance measurement (`congruity iia`'s default).
const ACCEPT_PAIRS: usize = 400;

/// Draws per implementation of a pool before it is refused: a seed whose training does not
/// reach the thresholds is replaced by the next attempt's.
pub const ATTEMPTS: u64 = 3;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TrainedError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Train(Box<crate::train::TrainError>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Compile(#[from] crate::compile::CompileError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    File(#[from] crate::files::FileError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error("{0}")]
    #[diagnostic(code(congruity::train::request))]
    Request(String),
    #[error("measuring the trained model: {0}")]
    #[diagnostic(code(congruity::train::measure))]
    Measure(String),
    #[error(
        "implementation {index} of `{program}`: no accepted model in {ATTEMPTS} draws ({}); train longer",
        tried.join("; ")
    )]
    #[diagnostic(code(congruity::train::not_accepted))]
    NotAccepted {
        program: String,
        index: u64,
        tried: Vec<String>,
    },
}

/// `program` compiled with `seed` (its encodings are the trained model's), and what to train
/// it on: the circuit named by `--circuit` (checked to belong to `program`), or the compiled
/// layout.
pub fn prepare(
    spec: &Spec,
    file: &Path,
    program: &Program,
    seed: u64,
    circuit: Option<&str>,
) -> Result<(crate::compile::Compiled, Correspondence), TrainedError> {
    let (compiled, _) = compile_checked(program, &CompileOptions::default(), seed)?;
    let Some(c) = circuit else {
        let corr = Correspondence::compiled_layout(program, &compiled)?;
        return Ok((compiled, corr));
    };
    let circuit = spec.circuits.get(c).ok_or_else(|| {
        let names: Vec<&str> = spec.circuits.keys().map(String::as_str).collect();
        TrainedError::Request(format!(
            "`{}` has no circuit `{c}`; its circuits: {}",
            file.display(),
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        ))
    })?;
    if circuit.program != program.name {
        return Err(TrainedError::Request(format!(
            "circuit `{c}` is for `{}`, not `{}`",
            circuit.program, program.name
        )));
    }
    Ok((compiled, Correspondence::from_circuit(circuit)?))
}

/// What one trained model is trained to implement.
pub struct Job<'a> {
    /// The spec file the interpretation comes from (named, with its hash, in the sidecar).
    pub file: &'a Path,
    pub program: &'a Program,
    pub compiled: &'a crate::compile::Compiled,
    pub corr: &'a Correspondence,
}

/// A trained, measured model with its sidecar and training record, ready to write.
pub struct Member {
    pub trained: Trained,
    pub measured: Measured,
    pub accepted: bool,
    pub sidecar: Sidecar,
    pub record: serde_json::Value,
}

/// Trains with `opts`, then measures the model as `congruity test` would (`dir` only names it
/// in messages). `sample` is the pool provenance (`{"base_seed", "index", "attempt"}`), if any.
pub fn train_member(
    job: &Job<'_>,
    opts: &TrainOptions,
    dir: &Path,
    progress: &Progress,
    sample: Option<serde_json::Value>,
) -> Result<Member, TrainedError> {
    let (program, compiled, corr) = (job.program, job.compiled, job.corr);
    let trained = train(program, compiled, corr, opts, progress)?;
    let sidecar = Sidecar::new(compiled.input.clone(), compiled.output.clone());
    let loaded = LoadedModel {
        transformer: trained.model.clone(),
        sidecar: Some(sidecar.clone()),
        format: ModelFormat::TransformerLens,
        dir: dir.to_path_buf(),
    };
    let measured = measure(&loaded, program, &trained, opts.seed)?;
    let accepted = measured.accuracy >= opts.min_accuracy && measured.iia >= opts.min_iia;
    let mut prov = serde_json::to_value(Provenance::of_spec(
        job.file,
        &program.name,
        Some(opts.seed),
    )?)
    .unwrap_or_default();
    if let Some(p) = prov.as_object_mut() {
        p.insert("family".into(), json!(["trained"]));
        if let Some(s) = sample {
            p.insert("sample".into(), s);
        }
        p.insert(
            "training".into(),
            json!({
                "method": "siit",
                "circuit": trained.correspondence.name,
                "architecture": trained.architecture,
                "steps": trained.report.steps,
                "accuracy": measured.accuracy,
                "accuracy_inputs": measured.inputs,
                "iia": measured.iia,
                "iia_pairs": measured.pairs,
                "min_accuracy": opts.min_accuracy,
                "min_iia": opts.min_iia,
                "accepted": accepted,
            }),
        );
    }
    let sidecar = Sidecar {
        provenance: prov,
        ..sidecar
    };
    let record = json!({
        "options": opts,
        "correspondence": trained.correspondence,
        "circuit_block": trained.correspondence.block_text(&program.name),
        "architecture": trained.architecture,
        "report": trained.report,
        "measured": {
            "accuracy": measured.accuracy,
            "coverage": measured.coverage,
            "iia": measured.iia,
            "per_variable": measured.per_variable,
        },
    });
    Ok(Member {
        trained,
        measured,
        accepted,
        sidecar,
        record,
    })
}

/// The acceptance figures, measured as `congruity test` measures `accuracy` and `iia`.
pub struct Measured {
    pub accuracy: f64,
    pub inputs: usize,
    pub coverage: String,
    pub iia: f64,
    pub pairs: usize,
    pub per_variable: Vec<(String, f64)>,
}

fn measure(
    loaded: &LoadedModel,
    program: &Program,
    trained: &Trained,
    seed: u64,
) -> Result<Measured, TrainedError> {
    let b = behaviour(loaded, program, seed).map_err(TrainedError::Measure)?;
    let circuit = trained.correspondence.to_circuit(&program.name);
    let interchange: Iia =
        iia(loaded, program, &circuit, ACCEPT_PAIRS, seed).map_err(TrainedError::Measure)?;
    let rate = |c: usize, t: usize| if t == 0 { 0.0 } else { c as f64 / t as f64 };
    Ok(Measured {
        accuracy: rate(b.correct, b.total),
        inputs: b.total,
        coverage: b.domain.describe(),
        iia: rate(interchange.correct, interchange.total),
        pairs: interchange.total,
        per_variable: interchange
            .variables
            .iter()
            .map(|v| (v.variable.clone(), rate(v.correct, v.total)))
            .collect(),
    })
}

/// Writes a member's files into `dir` (weights, config, sidecar, training record); callers put
/// `dir` in place atomically.
pub fn write_member(dir: &Path, m: &Member) -> Result<(), TrainedError> {
    let t = &m.trained.model;
    std::fs::create_dir_all(dir).map_err(|e| {
        TrainedError::Model(crate::model::ModelError::Write {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })
    })?;
    m.sidecar.validate(t.config(), &dir.join(SIDECAR_FILE))?;
    crate::model::io::write_safetensors(&dir.join(MODEL_FILE), t.weights().named())?;
    crate::model::io::write_json(&dir.join(CONFIG_FILE), &t.config().to_tl_json())?;
    crate::model::io::write_json(&dir.join(SIDECAR_FILE), &m.sidecar)?;
    crate::model::io::write_json(&dir.join(TRAIN_REPORT_FILE), &m.record)?;
    Ok(())
}

/// Implementation `index` of a pool: trained with `sample_seed(base_seed, index, attempt)` for
/// attempt 0, 1, 2 until one is accepted (`opts.seed` is replaced). `rejected` hears of each
/// draw that was not (its seed, architecture and figures).
pub fn train_accepted(
    job: &Job<'_>,
    opts: &TrainOptions,
    base_seed: u64,
    index: u64,
    dir: &Path,
    progress: &Progress,
    rejected: &dyn Fn(u64, &str),
) -> Result<Member, TrainedError> {
    let mut tried = Vec::new();
    for attempt in 0..ATTEMPTS {
        let opts = TrainOptions {
            seed: sample_seed(base_seed, index, attempt),
            ..opts.clone()
        };
        let about = json!({"base_seed": base_seed, "index": index, "attempt": attempt});
        let m = train_member(job, &opts, dir, progress, Some(about))?;
        if m.accepted {
            return Ok(m);
        }
        let why = format!(
            "seed {} ({}): accuracy {:.4}, iia {:.4}",
            opts.seed,
            m.trained.architecture.describe(),
            m.measured.accuracy,
            m.measured.iia
        );
        rejected(attempt, &why);
        tried.push(why);
    }
    Err(TrainedError::NotAccepted {
        program: job.program.name.clone(),
        index,
        tried,
    })
}

/// One training at a time in this process: trainings run their own parallel kernels, and two
/// at once on the same cores each run several times slower than one after the other.
static TRAINING: Mutex<()> = Mutex::new(());

/// The options a check trains its implementations with: the defaults, at the default
/// architecture (a check names no architecture; `congruity sample --family trained` draws them).
fn check_options() -> TrainOptions {
    TrainOptions::default()
}

/// A check's pool of `count` trained implementations of `name`, an interpretation or a
/// pipeline of `spec`, trained from `seed` or read back from `cache_dir/trained/`. Returns the
/// member directories: member `i` is the one `congruity sample --family trained
/// --fixed-architecture --seed SEED` writes as item `i` (a model, or a chain of stage models).
pub fn trained_pool(
    cache_dir: &Path,
    file: &Path,
    spec: &Spec,
    name: &str,
    seed: u64,
    count: usize,
    progress: &Progress,
) -> Result<Vec<PathBuf>, TrainedError> {
    let pool = CheckPool {
        cache_dir,
        file,
        spec,
        seed,
        count,
        progress,
    };
    match spec.programs.get(name) {
        Some(program) => pool.of_interpretation(program),
        None => pool.of_pipeline(name),
    }
}

/// What a check asks of a trained pool, whichever its target.
struct CheckPool<'a> {
    cache_dir: &'a Path,
    file: &'a Path,
    spec: &'a Spec,
    seed: u64,
    count: usize,
    progress: &'a Progress,
}

impl CheckPool<'_> {
    /// The pool of an interpretation, on its compiled layout.
    fn of_interpretation(&self, program: &Program) -> Result<Vec<PathBuf>, TrainedError> {
        let opts = check_options();
        let (compiled, corr) = prepare(self.spec, self.file, program, self.seed, None)?;
        let job = Job {
            file: self.file,
            program,
            compiled: &compiled,
            corr: &corr,
        };
        let kept = Kept::new(self.cache_dir, &job, &opts, self.seed);
        (0..self.count as u64)
            .map(|i| kept.member(&job, &opts, i, self.progress, &|_, _| {}))
            .collect()
    }

    /// The pool of a pipeline (see [`PipelineJobs`]): each stage model trained or read back as
    /// an interpretation's member is, each chain kept in
    /// `cache_dir/trained/<pipeline>-<key>/NNNN` (the key names every stage's kept pool).
    fn of_pipeline(&self, name: &str) -> Result<Vec<PathBuf>, TrainedError> {
        use sha2::{Digest, Sha256};
        let opts = check_options();
        let jobs = PipelineJobs::new(self.spec, self.file, name, self.seed)?;
        let kept: Vec<Kept> = (0..jobs.stages())
            .map(|k| {
                let (job, stage_seed, _) = jobs.stage(k);
                Kept::new(self.cache_dir, &job, &opts, stage_seed)
            })
            .collect();
        let mut h = Sha256::new();
        h.update(format!("congruity-trained-chains/1\npipeline {name}\n"));
        for (k, st) in jobs.pipeline.stages.iter().enumerate() {
            h.update(format!(
                "stage {} {:?}\n",
                kept[k].root.display(),
                st.adapter
            ));
        }
        let key = super::models::hex(&h.finalize());
        let root = self
            .cache_dir
            .join("trained")
            .join(format!("{name}-{}", &key[..20]));
        (0..self.count as u64)
            .map(|i| {
                let dir = root.join(member_name(i));
                if !dir.join(PIPELINE_FILE).is_file() {
                    let from: Vec<PathBuf> = (0..jobs.stages())
                        .map(|k| {
                            let (job, _, _) = jobs.stage(k);
                            kept[k].member(&job, &opts, i, self.progress, &|_, _| {})
                        })
                        .collect::<Result<_, _>>()?;
                    crate::files::replace_dir(&dir, |tmp| {
                        jobs.write_chain(i, tmp, &|k, d| copy_member(&from[k], d))
                    })?;
                }
                Ok(dir)
            })
            .collect()
    }
}

/// Where accepted members of one pool are kept between runs: `cache_dir/trained/<program>-<key>/
/// NNNN`. The key is everything a member depends on: the tool version, the interpretation as
/// content, its encodings, the correspondence, the pool seed, the training options and the
/// thread count (training is reproducible for a seed and thread count). A member is written
/// whole or not at all, so an interrupted run resumes with the members it had finished.
pub struct Kept {
    root: PathBuf,
    base_seed: u64,
}

impl Kept {
    pub fn new(cache_dir: &Path, job: &Job<'_>, opts: &TrainOptions, base_seed: u64) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let json = |v: serde_json::Result<String>| v.unwrap_or_default();
        h.update(format!(
            "congruity-trained/2\ncongruity {}\nprogram {} {}\nencodings {} {}\ncorrespondence {}\nseed {base_seed}\noptions {}\nthreads {}\n",
            env!("CARGO_PKG_VERSION"),
            job.program.name,
            job.program.fingerprint(),
            json(serde_json::to_string(&job.compiled.input)),
            json(serde_json::to_string(&job.compiled.output)),
            json(serde_json::to_string(job.corr)),
            json(serde_json::to_string(&TrainOptions {
                seed: 0,
                ..opts.clone()
            })),
            rayon::current_num_threads(),
        ));
        let key = super::models::hex(&h.finalize());
        Kept {
            root: cache_dir
                .join("trained")
                .join(format!("{}-{}", job.program.name, &key[..20])),
            base_seed,
        }
    }

    /// Member `index` of the pool ([`train_accepted`] with the pool seed), trained now or read
    /// back; its directory.
    pub fn member(
        &self,
        job: &Job<'_>,
        opts: &TrainOptions,
        index: u64,
        progress: &Progress,
        rejected: &dyn Fn(u64, &str),
    ) -> Result<PathBuf, TrainedError> {
        let dir = self.root.join(member_name(index));
        let done = |d: &Path| MEMBER_FILES.iter().all(|f| d.join(f).is_file());
        if done(&dir) {
            return Ok(dir);
        }
        let _one = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
        // Another check of this run may have trained it while this one waited.
        if !done(&dir) {
            let m = train_accepted(job, opts, self.base_seed, index, &dir, progress, rejected)?;
            crate::files::replace_dir(&dir, |tmp| write_member(tmp, &m))?;
        }
        Ok(dir)
    }
}

/// The stages of a pipeline as trainings: stage `k` is trained on its compiled layout from
/// [`chain_stage_seed`]`(base_seed, k)`, so stages (and pipelines sampled with other seeds) never
/// share a training. Chain `i` holds trained implementation `i` of every stage.
pub struct PipelineJobs<'a> {
    file: &'a Path,
    pipeline: CompiledPipeline,
    stages: Vec<(&'a Program, Correspondence, u64)>,
    base_seed: u64,
}

impl<'a> PipelineJobs<'a> {
    pub fn new(
        spec: &'a Spec,
        file: &'a Path,
        name: &str,
        base_seed: u64,
    ) -> Result<Self, TrainedError> {
        let pipeline = compile_pipeline(spec, name, &CompileOptions::default(), base_seed)?;
        let mut stages = Vec::new();
        for (k, st) in pipeline.stages.iter().enumerate() {
            let program = spec.programs.get(&st.program).ok_or_else(|| {
                TrainedError::Request(format!(
                    "stage `{}` of `{name}` is not an interpretation of the spec",
                    st.program
                ))
            })?;
            let corr = Correspondence::compiled_layout(program, &st.compiled)?;
            stages.push((program, corr, chain_stage_seed(base_seed, k)));
        }
        Ok(PipelineJobs {
            file,
            pipeline,
            stages,
            base_seed,
        })
    }

    pub fn stages(&self) -> usize {
        self.stages.len()
    }

    /// Stage `k`'s training, its pool seed, and its directory name inside a chain.
    pub fn stage(&self, k: usize) -> (Job<'_>, u64, String) {
        let (program, corr, seed) = &self.stages[k];
        let job = Job {
            file: self.file,
            program,
            compiled: &self.pipeline.stages[k].compiled,
            corr,
        };
        (job, *seed, stage_dir(k, &program.name))
    }

    /// Writes chain `index` into the new directory `dest`: `put(k, stage_dest)` writes stage
    /// `k`'s model, then the chain's `pipeline.json`.
    pub fn write_chain(
        &self,
        index: u64,
        dest: &Path,
        put: &dyn Fn(usize, &Path) -> Result<(), TrainedError>,
    ) -> Result<(), TrainedError> {
        for k in 0..self.stages.len() {
            put(k, &dest.join(self.stage(k).2))?;
        }
        let provenance = json!({
            "pipeline": self.pipeline.name,
            "family": ["trained"],
            "sample": {"base_seed": self.base_seed, "index": index},
            "stage_seeds": self.stages.iter().map(|s| s.2).collect::<Vec<_>>(),
        });
        crate::model::io::write_json(
            &dest.join(PIPELINE_FILE),
            &self.pipeline.manifest(&provenance),
        )?;
        Ok(())
    }

    /// The pool manifest of `count` trained chains.
    pub fn pool_manifest(&self, count: u64, fixed: bool) -> serde_json::Value {
        let mut m = pool_manifest(
            &self.pipeline.name,
            "the compiled layout of every stage",
            self.base_seed,
            count,
            fixed,
        );
        m["about"]["pipeline"] = json!(self.pipeline.name);
        if let Some(about) = m["about"].as_object_mut() {
            about.remove("interpretation");
        }
        m
    }
}

/// Copies a kept member's files into `dest` (a new directory).
pub fn copy_member(from: &Path, dest: &Path) -> Result<(), TrainedError> {
    let fail = |path: &Path, e: std::io::Error| {
        TrainedError::Model(crate::model::ModelError::Write {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    };
    std::fs::create_dir_all(dest).map_err(|e| fail(dest, e))?;
    for f in MEMBER_FILES {
        std::fs::copy(from.join(f), dest.join(f)).map_err(|e| fail(&dest.join(f), e))?;
    }
    Ok(())
}

/// The manifest of a pool of trained implementations (`pool.json`).
pub fn pool_manifest(
    program: &str,
    circuit: &str,
    base_seed: u64,
    count: u64,
    fixed: bool,
) -> serde_json::Value {
    json!({
        "format": POOL_FORMAT,
        "count": count,
        "members": (0..count).map(member_name).collect::<Vec<_>>(),
        "about": {
            "interpretation": program,
            "families": ["trained"],
            "circuit": circuit,
            "base_seed": base_seed,
            "architecture": if fixed { "fixed" } else { "drawn" },
            "correspondence": if fixed { "fixed" } else { "drawn" },
        },
    })
}

impl From<crate::train::TrainError> for TrainedError {
    fn from(e: crate::train::TrainError) -> Self {
        TrainedError::Train(Box::new(e))
    }
}

/// Where a pool manifest goes in a pool directory.
pub fn pool_file(dir: &Path) -> PathBuf {
    dir.join(POOL_FILE)
}
