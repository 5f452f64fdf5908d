//! The sampler: many different implementations of one compiled interpretation, each computing
//! exactly the same function.
//!
//! Families (each seeded, each exactly function-preserving in real arithmetic; float32 error stays
//! far inside the compiled margins, which the tests check on the whole domain):
//!
//! * `rotation` — a Haar-random orthogonal `Q` (QR of a Gaussian matrix, faer): every residual
//!   write is multiplied by `Q`, every read by `Qᵀ`. The labelled basis is kept in
//!   `basis.safetensors` (`features` row `f` = direction of label `f`).
//! * `noise-width` — extra residual directions no head, MLP or unembedding reads, written by both
//!   embeddings as seeded Gaussian mixtures of what each embedding already writes (`W_E G`,
//!   `W_pos G`). The extra width carries no information about the input that the compiled
//!   residual lacks: independent noise per token and per position would add features (each
//!   position's token, the length as a nonlinear code) that no variable of the interpretation
//!   holds, so no implementation without the family could predict them.
//! * `placement` — every operation moved to a random sub-layer within its dependency slack, with
//!   0 or 1 extra layer for more slack.
//! * `head-order` — heads permuted within each layer.
//! * `mlp-permutation` — hidden units permuted within each layer.
//! * `rescale` — hidden unit `j` scaled: `W_in[:, j]·c`, `W_out[j, :]/c`, `c ∈ [1/2, 2]` (ReLU is
//!   positively homogeneous).
//! * `overprovision` — some hidden units duplicated, their output weight split `α`, `1 − α`.
//! * `sharpness` — each head's `W_Q` scaled by `s ∈ [1/2, 2]`, inside the exactness margin the
//!   compiler's coldness was chosen for.
//!
//! Item `i` uses seed `item_seed(S, i)` and each family its own stream derived from it, so results
//! do not depend on the thread count or on which other families are drawn.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use faer::dyn_stack::{MemBuffer, MemStack};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde_json::json;

use super::assemble::{OpPlacement, assemble};
use super::error::CompileError;
use super::schedule::{Schedule, alap, asap, is_valid, topo_order};
use super::weights::{Head, Mat, Weights};
use super::write::{ModelFiles, write_model_dir};
use super::{Compiled, Provenance, SampleOrigin, Shape};
use crate::progress::Progress;

/// A function-preserving family of transformations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Placement,
    Overprovision,
    Rescale,
    MlpPermutation,
    HeadOrder,
    Sharpness,
    NoiseWidth,
    Rotation,
}

impl Family {
    /// Every family, in the order they are applied.
    pub const ALL: [Family; 8] = [
        Family::Placement,
        Family::Overprovision,
        Family::Rescale,
        Family::MlpPermutation,
        Family::HeadOrder,
        Family::Sharpness,
        Family::NoiseWidth,
        Family::Rotation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Placement => "placement",
            Family::Overprovision => "overprovision",
            Family::Rescale => "rescale",
            Family::MlpPermutation => "mlp-permutation",
            Family::HeadOrder => "head-order",
            Family::Sharpness => "sharpness",
            Family::NoiseWidth => "noise-width",
            Family::Rotation => "rotation",
        }
    }

    fn stream(self) -> u64 {
        Family::ALL.iter().position(|f| *f == self).unwrap_or(0) as u64 + 1
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> Result<Family, String> {
        Family::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown family `{s}`; expected one of: {}",
                    Family::ALL
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// The sharpness factors that keep the compiled model exact (see `default_coldness`).
pub const SHARPNESS_RANGE: (f64, f64) = (0.5, 2.0);

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of item `index` of a run with seed `base`.
pub fn item_seed(base: u64, index: u64) -> u64 {
    splitmix(splitmix(base) ^ splitmix(index.wrapping_add(0x5851_F42D_4C95_7F2D)))
}

fn family_rng(seed: u64, f: Family) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix(seed ^ splitmix(f.stream())))
}

/// One sampled implementation.
#[derive(Clone, Debug)]
pub struct Sample {
    pub index: u64,
    pub seed: u64,
    pub families: Vec<Family>,
    pub weights: Weights,
    pub residual_labels: Vec<String>,
    /// Where each op ended up (layer, head slot, hidden units).
    pub placement: Vec<OpPlacement>,
    /// `features` row `f` = the residual direction of compiled label `f` (rotated samples).
    pub basis: Option<Mat>,
    pub provenance: Provenance,
    /// What each family drew.
    pub draws: serde_json::Value,
}

/// Who owns each head slot / hidden unit of each layer (the op index), tracked through the
/// permutations so the report can say where each variable went.
#[derive(Clone, Debug)]
struct Owners {
    heads: Vec<Vec<Option<usize>>>,
    units: Vec<Vec<Option<usize>>>,
}

impl Owners {
    fn from_placement(w: &Weights, placement: &[OpPlacement]) -> Owners {
        let mut heads = vec![vec![None; w.n_heads]; w.n_layers()];
        let mut units = vec![vec![None; w.d_mlp]; w.n_layers()];
        for (i, p) in placement.iter().enumerate() {
            if let Some(h) = p.head {
                heads[p.layer][h] = Some(i);
            }
            for u in p.units.iter().flatten() {
                units[p.layer][*u] = Some(i);
            }
        }
        Owners { heads, units }
    }

    fn placement(&self, n_ops: usize) -> Vec<OpPlacement> {
        let mut out = vec![OpPlacement::UNPLACED; n_ops];
        for (l, hs) in self.heads.iter().enumerate() {
            for (h, o) in hs.iter().enumerate() {
                if let Some(i) = o {
                    out[*i] = OpPlacement {
                        layer: l,
                        sublayer: "attn",
                        head: Some(h),
                        units: None,
                    };
                }
            }
        }
        for (l, us) in self.units.iter().enumerate() {
            for (u, o) in us.iter().enumerate() {
                if let Some(i) = o {
                    let p = &mut out[*i];
                    p.layer = l;
                    p.sublayer = "mlp";
                    p.units.get_or_insert_with(Vec::new).push(u);
                }
            }
        }
        out
    }
}

/// A Haar-random orthogonal matrix: QR of a Gaussian matrix with R's diagonal made positive.
/// Computed sequentially so the result does not depend on the machine's thread count.
pub fn haar_orthogonal(d: usize, rng: &mut ChaCha8Rng) -> Mat {
    use faer::linalg::householder;
    use faer::linalg::qr::no_pivoting::factor as qrf;
    let draws: Vec<f64> = (0..d * d).map(|_| StandardNormal.sample(rng)).collect();
    let mut a = faer::Mat::<f64>::from_fn(d, d, |i, j| draws[i * d + j]);
    let bs = qrf::recommended_block_size::<f64>(d, d);
    let mut coeff = faer::Mat::<f64>::zeros(bs, d);
    let par = faer::Par::Seq;
    qrf::qr_in_place(
        a.as_mut(),
        coeff.as_mut(),
        par,
        MemStack::new(&mut MemBuffer::new(qrf::qr_in_place_scratch::<f64>(
            d,
            d,
            bs,
            par,
            Default::default(),
        ))),
        Default::default(),
    );
    let signs: Vec<f64> = (0..d)
        .map(|i| if a[(i, i)] < 0.0 { -1.0 } else { 1.0 })
        .collect();
    // The Householder basis is the strictly lower part with a unit diagonal.
    let basis = faer::Mat::<f64>::from_fn(d, d, |i, j| match i.cmp(&j) {
        std::cmp::Ordering::Greater => a[(i, j)],
        std::cmp::Ordering::Equal => 1.0,
        std::cmp::Ordering::Less => 0.0,
    });
    let mut q = faer::Mat::<f64>::identity(d, d);
    householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
        basis.as_ref(),
        coeff.as_ref(),
        faer::Conj::No,
        q.as_mut(),
        par,
        MemStack::new(&mut MemBuffer::new(
            householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(
                d, bs, d,
            ),
        )),
    );
    let mut out = Mat::zeros(d, d);
    for i in 0..d {
        for j in 0..d {
            out.set(i, j, q[(i, j)] * signs[j]);
        }
    }
    out
}

/// Calls `read` on every matrix that reads the residual stream (rows = d_model) and `write` on
/// every one that writes it (cols = d_model), with bias vectors as 1-row matrices.
fn for_residual(w: &mut Weights, read: &dyn Fn(&Mat) -> Mat, write: &dyn Fn(&Mat) -> Mat) {
    let row = |v: &Vec<f64>| Mat {
        rows: 1,
        cols: v.len(),
        data: v.clone(),
    };
    w.w_e = write(&w.w_e);
    w.w_pos = write(&w.w_pos);
    for layer in w.layers.iter_mut() {
        for h in layer.heads.iter_mut() {
            h.w_q = read(&h.w_q);
            h.w_k = read(&h.w_k);
            h.w_v = read(&h.w_v);
            h.w_o = write(&h.w_o);
        }
        layer.b_o = write(&row(&layer.b_o)).data;
        layer.w_in = read(&layer.w_in);
        layer.w_out = write(&layer.w_out);
        layer.b_out = write(&row(&layer.b_out)).data;
    }
    w.w_u = read(&w.w_u);
}

fn rotate(w: &mut Weights, q: &Mat) {
    let qt = q.transpose();
    for_residual(w, &|m| qt.matmul(m), &|m| m.matmul(q));
}

fn add_noise_width(w: &mut Weights, extra: usize, rng: &mut ChaCha8Rng) {
    let d = w.d_model;
    let d2 = d + extra;
    let grow_rows = |m: &Mat| m.transpose().with_cols(d2).transpose();
    let grow_cols = |m: &Mat| m.with_cols(d2);
    for_residual(w, &grow_rows, &grow_cols);
    w.d_model = d2;
    // One mixing matrix G (d × extra) for both embeddings: the new directions are a fixed linear
    // map of the residual the embeddings write.
    let mut g = Mat::zeros(d, extra);
    for r in 0..d {
        for c in 0..extra {
            g.set(r, c, StandardNormal.sample(rng));
        }
    }
    for m in [&mut w.w_e, &mut w.w_pos] {
        for r in 0..m.rows {
            for c in 0..extra {
                let x: f64 = (0..d).map(|k| m.get(r, k) * g.get(k, c)).sum();
                m.set(r, d + c, x);
            }
        }
    }
}

fn overprovision(w: &mut Weights, owners: &mut Owners, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut added = Vec::new();
    for (l, layer) in w.layers.iter_mut().enumerate() {
        let used = layer.used_units();
        if used.is_empty() {
            added.push(0);
            continue;
        }
        let m = rng.random_range(1..=used.len().div_ceil(2));
        let picks: Vec<usize> = used.choose_multiple(rng, m).copied().collect();
        let old = layer.w_in.cols;
        let mut w_in = layer.w_in.with_cols(old + m);
        let mut w_out = layer.w_out.with_rows(old + m);
        layer.b_in.resize(old + m, 0.0);
        for (k, &u) in picks.iter().enumerate() {
            let alpha: f64 = rng.random_range(0.2..0.8);
            let new = old + k;
            for r in 0..w_in.rows {
                w_in.set(r, new, w_in.get(r, u));
            }
            layer.b_in[new] = layer.b_in[u];
            for c in 0..w_out.cols {
                let x = w_out.get(u, c);
                w_out.set(u, c, alpha * x);
                w_out.set(new, c, (1.0 - alpha) * x);
            }
            let owner = owners.units[l][u];
            owners.units[l].push(owner);
        }
        layer.w_in = w_in;
        layer.w_out = w_out;
        added.push(m);
    }
    // Pad every layer to the widest.
    let d_mlp = w.layers.iter().map(|l| l.w_in.cols).max().unwrap_or(1);
    for (l, layer) in w.layers.iter_mut().enumerate() {
        layer.w_in = layer.w_in.with_cols(d_mlp);
        layer.w_out = layer.w_out.with_rows(d_mlp);
        layer.b_in.resize(d_mlp, 0.0);
        owners.units[l].resize(d_mlp, None);
    }
    w.d_mlp = d_mlp;
    added
}

fn permute_units(w: &mut Weights, owners: &mut Owners, rng: &mut ChaCha8Rng) {
    for (l, layer) in w.layers.iter_mut().enumerate() {
        let n = layer.w_in.cols;
        let mut perm: Vec<usize> = (0..n).collect();
        perm.shuffle(rng);
        // New unit j is old unit perm[j].
        let mut w_in = Mat::zeros(layer.w_in.rows, n);
        let mut w_out = Mat::zeros(n, layer.w_out.cols);
        let mut b_in = vec![0.0; n];
        let mut own = vec![None; n];
        for (j, &o) in perm.iter().enumerate() {
            for r in 0..w_in.rows {
                w_in.set(r, j, layer.w_in.get(r, o));
            }
            w_out.row_mut(j).copy_from_slice(layer.w_out.row(o));
            b_in[j] = layer.b_in[o];
            own[j] = owners.units[l][o];
        }
        layer.w_in = w_in;
        layer.w_out = w_out;
        layer.b_in = b_in;
        owners.units[l] = own;
    }
}

fn rescale(w: &mut Weights, rng: &mut ChaCha8Rng) {
    for layer in w.layers.iter_mut() {
        for u in layer.used_units() {
            let c: f64 = (rng.random_range(-1.0..1.0) * std::f64::consts::LN_2).exp();
            for r in 0..layer.w_in.rows {
                let x = layer.w_in.get(r, u);
                layer.w_in.set(r, u, x * c);
            }
            layer.b_in[u] *= c;
            for x in layer.w_out.row_mut(u) {
                *x /= c;
            }
        }
    }
}

fn permute_heads(w: &mut Weights, owners: &mut Owners, rng: &mut ChaCha8Rng) {
    for (l, layer) in w.layers.iter_mut().enumerate() {
        let mut perm: Vec<usize> = (0..layer.heads.len()).collect();
        perm.shuffle(rng);
        let heads: Vec<Head> = perm.iter().map(|o| layer.heads[*o].clone()).collect();
        owners.heads[l] = perm.iter().map(|o| owners.heads[l][*o]).collect();
        layer.heads = heads;
    }
}

fn sharpen(w: &mut Weights, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    w.layers
        .iter_mut()
        .map(|layer| {
            layer
                .heads
                .iter_mut()
                .map(|h| {
                    let s: f64 = rng.random_range(SHARPNESS_RANGE.0..=SHARPNESS_RANGE.1);
                    h.w_q.data.iter_mut().for_each(|x| *x *= s);
                    h.b_q.iter_mut().for_each(|x| *x *= s);
                    s
                })
                .collect()
        })
        .collect()
}

/// A random valid placement within the dependency slack, with `extra` more layers.
fn random_schedule(c: &Compiled, extra: usize, rng: &mut ChaCha8Rng) -> Schedule {
    let plan = &c.plan;
    let n_layers = c.schedule.n_layers + extra;
    let lo = asap(plan);
    let hi = alap(plan, n_layers);
    let mut time = lo.clone();
    for i in topo_order(plan) {
        let attention = plan.ops[i].block.is_attention();
        let after = plan.ops[i]
            .deps
            .iter()
            .map(|d| time[*d])
            .max()
            .unwrap_or(-1)
            .max(lo[i] - 1);
        let choices: Vec<i64> = ((after + 1)..=hi[i])
            .filter(|t| t.rem_euclid(2) == if attention { 0 } else { 1 })
            .collect();
        time[i] = choices.choose(rng).copied().unwrap_or(lo[i]);
    }
    Schedule {
        n_layers,
        time,
        asap: lo,
        alap: hi,
    }
}

/// Draws implementation `index` of `c` with the given families.
pub fn sample_one(
    c: &Compiled,
    families: &[Family],
    base_seed: u64,
    index: u64,
) -> Result<Sample, CompileError> {
    let mut families: Vec<Family> = families.to_vec();
    families.sort();
    families.dedup();
    let seed = item_seed(base_seed, index);
    let mut draws = serde_json::Map::new();
    let has = |f: Family| families.contains(&f);

    let (mut w, placement) = if has(Family::Placement) {
        let mut rng = family_rng(seed, Family::Placement);
        let extra = rng.random_range(0..=1usize);
        let sched = random_schedule(c, extra, &mut rng);
        if !is_valid(&c.plan, &sched.time, sched.n_layers) {
            return Err(CompileError::internal(
                &c.plan.program,
                "the sampled placement breaks a dependency",
            ));
        }
        draws.insert(
            "placement".into(),
            json!({"extra_layers": extra, "sublayers": sched.time}),
        );
        assemble(&c.plan, &c.layout, &sched, c.coldness)?
    } else {
        (c.weights.clone(), c.placement.clone())
    };
    let mut owners = Owners::from_placement(&w, &placement);
    let mut labels = c.residual_labels.clone();
    let mut basis = None;
    for f in &families {
        let mut rng = family_rng(seed, *f);
        match f {
            Family::Placement => {}
            Family::Overprovision => {
                let added = overprovision(&mut w, &mut owners, &mut rng);
                draws.insert(
                    "overprovision".into(),
                    json!({"duplicated_units_per_layer": added}),
                );
            }
            Family::Rescale => {
                rescale(&mut w, &mut rng);
                draws.insert("rescale".into(), json!({"range": [0.5, 2.0]}));
            }
            Family::MlpPermutation => {
                permute_units(&mut w, &mut owners, &mut rng);
                draws.insert("mlp-permutation".into(), json!(true));
            }
            Family::HeadOrder => {
                permute_heads(&mut w, &mut owners, &mut rng);
                draws.insert("head-order".into(), json!(true));
            }
            Family::Sharpness => {
                let s = sharpen(&mut w, &mut rng);
                draws.insert("sharpness".into(), json!({"factors": s}));
            }
            Family::NoiseWidth => {
                let extra = rng.random_range(1..=(w.d_model / 4).max(2));
                let start = w.d_model;
                add_noise_width(&mut w, extra, &mut rng);
                labels.extend((0..extra).map(|k| format!("noise:{k}")));
                draws.insert(
                    "noise-width".into(),
                    json!({"extra_dims": extra, "first": start}),
                );
            }
            Family::Rotation => {
                let q = haar_orthogonal(w.d_model, &mut rng);
                rotate(&mut w, &q);
                labels = (0..w.d_model).map(|k| format!("rot:{k}")).collect();
                basis = Some(q);
                draws.insert("rotation".into(), json!({"d_model": w.d_model}));
            }
        }
    }
    let placement = owners.placement(c.plan.ops.len());
    let mut provenance = c.provenance.clone();
    provenance.seed = Some(seed);
    provenance.family = families.iter().map(|f| f.name().to_string()).collect();
    provenance.sample = Some(SampleOrigin { base_seed, index });
    Ok(Sample {
        index,
        seed,
        families,
        weights: w,
        residual_labels: labels,
        placement,
        basis,
        provenance,
        draws: serde_json::Value::Object(draws),
    })
}

/// Draws implementations `0..count` in parallel (results independent of the thread count).
pub fn sample_many(
    c: &Compiled,
    families: &[Family],
    base_seed: u64,
    count: u64,
) -> Result<Vec<Sample>, CompileError> {
    (0..count)
        .into_par_iter()
        .map(|i| sample_one(c, families, base_seed, i))
        .collect()
}

impl Sample {
    pub fn shape(&self) -> Shape {
        Shape::of(&self.weights)
    }

    /// Writes the implementation as a model directory (atomically).
    pub fn write(&self, c: &Compiled, dir: &Path) -> Result<(), CompileError> {
        let mut report = super::report::report_with(c, &self.placement, &self.shape());
        if let Some(obj) = report.as_object_mut() {
            obj.insert(
                "families".into(),
                json!(self.families.iter().map(|f| f.name()).collect::<Vec<_>>()),
            );
            obj.insert("draws".into(), self.draws.clone());
            if self.basis.is_some() {
                obj.insert(
                    "residual_basis".into(),
                    json!({
                        "rotated": true,
                        "features": "basis.safetensors: `features` row f is the residual direction of feature_labels[f]",
                        "feature_labels": c.residual_labels.iter().cloned().chain(
                            (c.residual_labels.len()..self.weights.d_model).map(|k| format!("noise:{}", k - c.residual_labels.len()))
                        ).collect::<Vec<_>>(),
                    }),
                );
            }
        }
        write_model_dir(
            &ModelFiles {
                weights: &self.weights,
                residual_labels: &self.residual_labels,
                input: &c.input,
                output: &c.output,
                provenance: &self.provenance,
                report,
                basis: self
                    .basis
                    .iter()
                    .map(|q| ("features".to_string(), q.clone()))
                    .collect(),
            },
            dir,
        )
    }
}

/// The manifest of a sample pool, written last: a pool directory without it is incomplete.
pub const POOL_FILE: &str = "pool.json";
pub const POOL_FORMAT: &str = "congruity-pool/1";

/// The name of pool member `index`.
pub fn member_name(index: u64) -> String {
    format!("{index:04}")
}

/// Writes a whole pool: `count` members, each written by `write_member(index, dir)`, into a
/// temporary sibling of `out`, then `pool.json`, then one rename. An interrupted run leaves
/// either no pool or the previous one under `out`, never a short one.
pub fn write_pool(
    out: &Path,
    count: u64,
    about: serde_json::Value,
    write_member: &(dyn Fn(u64, &Path) -> Result<(), CompileError> + Sync),
) -> Result<(), CompileError> {
    super::write::replace_dir_atomically(out, |tmp| {
        (0..count)
            .into_par_iter()
            .try_for_each(|i| write_member(i, &tmp.join(member_name(i))))?;
        let manifest = json!({
            "format": POOL_FORMAT,
            "count": count,
            "members": (0..count).map(member_name).collect::<Vec<_>>(),
            "about": about,
        });
        std::fs::write(tmp.join(POOL_FILE), super::write::json_bytes(&manifest))
            .map_err(|e| CompileError::write(out.join(POOL_FILE), e))
    })
}

/// Why a directory is not a complete pool.
#[derive(Debug, thiserror::Error)]
pub enum PoolManifestError {
    #[error("has no {POOL_FILE}: it is not a complete pool written by `congruity sample`")]
    Missing,
    #[error("{POOL_FILE} cannot be read: {0}")]
    Unreadable(String),
    #[error("{POOL_FILE} is not a pool manifest: {0}")]
    Invalid(String),
    #[error("{POOL_FILE} lists member `{0}`, which is missing: the pool is incomplete")]
    MissingMember(String),
}

/// The member directories a pool's manifest lists, in order, each checked to exist.
pub fn read_pool(dir: &Path) -> Result<Vec<std::path::PathBuf>, PoolManifestError> {
    let path = dir.join(POOL_FILE);
    if !path.exists() {
        return Err(PoolManifestError::Missing);
    }
    let text = crate::files::read_text(&path, crate::files::MAX_JSON_BYTES, "a pool manifest")
        .map_err(|e| PoolManifestError::Unreadable(e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| PoolManifestError::Invalid(e.to_string()))?;
    if v.get("format").and_then(|f| f.as_str()) != Some(POOL_FORMAT) {
        return Err(PoolManifestError::Invalid(format!(
            "`format` is not \"{POOL_FORMAT}\""
        )));
    }
    let members = v
        .get("members")
        .and_then(|m| m.as_array())
        .ok_or_else(|| PoolManifestError::Invalid("no `members` list".into()))?;
    if v.get("count").and_then(|c| c.as_u64()) != Some(members.len() as u64) {
        return Err(PoolManifestError::Invalid(
            "`count` does not match the `members` list".into(),
        ));
    }
    members
        .iter()
        .map(|m| {
            let name = m
                .as_str()
                .filter(|n| !n.is_empty() && !n.contains(['/', '\\']) && *n != "..")
                .ok_or_else(|| PoolManifestError::Invalid(format!("member {m} is not a name")))?;
            let p = dir.join(name);
            if p.is_dir() {
                Ok(p)
            } else {
                Err(PoolManifestError::MissingMember(name.to_string()))
            }
        })
        .collect()
}

/// Draws `count` implementations and writes them as a pool to `out/0000`, `out/0001`, ... with
/// `out/pool.json` (see [`write_pool`]).
pub fn sample_to_dir(
    c: &Compiled,
    families: &[Family],
    base_seed: u64,
    count: u64,
    out: &Path,
) -> Result<Vec<Shape>, CompileError> {
    sample_to_dir_with_progress(c, families, base_seed, count, out, &Progress::hidden())
}

/// [`sample_to_dir`], counting written implementations on `progress`.
pub fn sample_to_dir_with_progress(
    c: &Compiled,
    families: &[Family],
    base_seed: u64,
    count: u64,
    out: &Path,
    progress: &Progress,
) -> Result<Vec<Shape>, CompileError> {
    let pb = progress.bar(count, "implementations");
    let shapes = std::sync::Mutex::new(vec![None; count as usize]);
    let about = json!({
        "program": c.provenance.program,
        "families": families.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "base_seed": base_seed,
    });
    let written = write_pool(out, count, about, &|i, dir| {
        let s = sample_one(c, families, base_seed, i)?;
        s.write(c, dir)?;
        if let Ok(mut v) = shapes.lock() {
            v[i as usize] = Some(s.shape());
        }
        pb.inc(1);
        Ok(())
    });
    pb.finish_and_clear();
    written?;
    let shapes = shapes.into_inner().unwrap_or_default();
    Ok(shapes.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haar_matrices_are_orthogonal_and_seeded() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let q = haar_orthogonal(7, &mut rng);
        let qtq = q.transpose().matmul(&q);
        for i in 0..7 {
            for j in 0..7 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((qtq.get(i, j) - want).abs() < 1e-12);
            }
        }
        let mut rng2 = ChaCha8Rng::seed_from_u64(3);
        assert_eq!(haar_orthogonal(7, &mut rng2), q);
    }

    #[test]
    fn family_names_round_trip() {
        for f in Family::ALL {
            assert_eq!(f.name().parse::<Family>().unwrap(), f);
        }
        assert!("rotate".parse::<Family>().is_err());
    }

    #[test]
    fn item_seeds_differ() {
        let s: std::collections::BTreeSet<u64> = (0..1000).map(|i| item_seed(7, i)).collect();
        assert_eq!(s.len(), 1000);
    }
}
