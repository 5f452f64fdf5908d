//! Synthetic implementation pools with known structure, for calibrating the estimator (and for
//! tests and benches): an "interpretation" is a latent representation `F` of the inputs (for a
//! pipeline, its stages' latents side by side); implementation `k` is `F A_k + σ E_k` with `A_k`
//! a Gaussian map to `width` features and `E_k` Gaussian noise, both from
//! `derive_seed(seed, [k])`. Two pools that share latent stages share sub-routines.

use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::EquivalenceError;
use super::representation::{InputsId, Representation};
use super::source::{ImplementationSource, derive_seed};
use crate::similarity::linalg;

/// Gaussian latent features `[n, m]` on inputs `inputs`, from `seed`.
pub fn gaussian_latent(inputs: &InputsId, n: usize, m: usize, seed: u64) -> Representation {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = Mat::from_fn(n, m, |_, _| StandardNormal.sample(&mut rng));
    Representation::new(inputs.clone(), data).expect("Gaussian samples are finite")
}

/// Implementations of one latent interpretation by random linear maps plus noise.
#[derive(Debug, Clone)]
pub struct SyntheticFamily {
    label: String,
    latent: Representation,
    width: usize,
    noise: f64,
    count: usize,
    seed: u64,
}

impl SyntheticFamily {
    pub fn new(
        label: impl Into<String>,
        latent: Representation,
        width: usize,
        noise: f64,
        count: usize,
        seed: u64,
    ) -> Self {
        Self {
            label: label.into(),
            latent,
            width,
            noise,
            count,
            seed,
        }
    }
}

impl ImplementationSource for SyntheticFamily {
    fn label(&self) -> &str {
        &self.label
    }

    fn count(&self) -> usize {
        self.count
    }

    fn representation(&self, index: usize) -> Result<Representation, EquivalenceError> {
        if index >= self.count {
            return Err(EquivalenceError::out_of_range(
                &self.label,
                index,
                self.count,
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(self.seed, &[index as u64]));
        let m = self.latent.n_features();
        let scale = 1.0 / (m as f64).sqrt();
        let map = Mat::from_fn(m, self.width, |_, _| {
            let g: f64 = StandardNormal.sample(&mut rng);
            scale * g
        });
        let mut rep = linalg::mul(self.latent.matrix(), map.as_ref());
        for j in 0..rep.ncols() {
            for i in 0..rep.nrows() {
                let e: f64 = StandardNormal.sample(&mut rng);
                rep[(i, j)] += self.noise * e;
            }
        }
        Representation::new(self.latent.inputs().clone(), rep)
    }
}
