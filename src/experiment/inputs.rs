//! The common input set every implementation is run on, and the corrupted inputs the
//! intervention test patches from.
//!
//! Inputs are drawn with [`crate::lang::domain::sample`] from a task's domain, in seeded rounds,
//! keeping those that every compared implementation accepts (a pipeline's later stage can have a
//! narrower domain than its first, e.g. `check_alternating` needs two tokens): round `r` uses
//! `derive_seed(seed, [r])`, and the first `n` accepted inputs, in draw order, are the set. The
//! set's name ([`InputsId`]) carries the task, size, seed and a hash of the token sequences, so
//! representations of different sets can never be compared by mistake.
//!
//! Corrupted inputs are drawn separately (they are never mixed into, or shuffled with, the clean
//! set): input `i`'s corrupted partner has the same length (position-wise patching needs it),
//! tokens drawn uniformly from `derive_seed(seed, [i])`, is accepted by every implementation and
//! differs from input `i` wherever the domain allows.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::equivalence::representation::InputsId;
use crate::equivalence::source::derive_seed;
use crate::experiment::ExperimentError;
use crate::lang::domain::{sample, satisfies_restriction};
use crate::lang::ir::{Task, Value};

/// How many sampling rounds may pass without filling the set before giving up.
const MAX_ROUNDS: u64 = 1000;
/// Draws per corrupted input before giving up.
const MAX_CORRUPT_TRIES: usize = 100_000;

/// A seeded list of inputs from one task's domain.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSet {
    pub id: InputsId,
    pub task: String,
    pub seed: u64,
    pub inputs: Vec<Vec<Value>>,
}

/// One input as text (`0 3 3 7`); the set's name hashes its inputs in this form, one per line.
pub use crate::lang::domain::input_text;

impl InputSet {
    /// `n` inputs of `task`'s domain that `accept` takes (it returns why it rejects, for the
    /// error message when too few are accepted).
    pub fn sample(
        task: &Task,
        n: usize,
        seed: u64,
        accept: impl Fn(&[Value]) -> Result<(), ExperimentError>,
    ) -> Result<Self, ExperimentError> {
        if n == 0 {
            return Err(ExperimentError::NoInputs {
                task: task.name.clone(),
            });
        }
        let mut inputs = Vec::with_capacity(n);
        let mut last_rejection = None;
        for round in 0..MAX_ROUNDS {
            let drawn = sample(task, n, derive_seed(seed, &[round])).map_err(|e| {
                ExperimentError::Domain {
                    task: task.name.clone(),
                    reason: Box::new(e),
                }
            })?;
            for input in drawn {
                match accept(&input) {
                    Ok(()) => inputs.push(input),
                    Err(why) => last_rejection = Some(Box::new(why)),
                }
                if inputs.len() == n {
                    return Ok(Self::new(task, seed, inputs));
                }
            }
        }
        Err(ExperimentError::TooFewAccepted {
            task: task.name.clone(),
            rounds: MAX_ROUNDS,
            n,
            found: inputs.len(),
            last_rejection,
        })
    }

    /// A set from given inputs (named by their hash).
    pub fn new(task: &Task, seed: u64, inputs: Vec<Vec<Value>>) -> Self {
        let mut h = Sha256::new();
        for i in &inputs {
            h.update(input_text(i).as_bytes());
            h.update(b"\n");
        }
        let digest = h.finalize();
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Self {
            id: InputsId(format!(
                "{}:n={}:seed={seed}:sha256={hex}",
                task.name,
                inputs.len()
            )),
            task: task.name.clone(),
            seed,
            inputs,
        }
    }

    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Input lengths and how many inputs have each, for reports.
    pub fn length_histogram(&self) -> Vec<(usize, usize)> {
        let mut m = std::collections::BTreeMap::new();
        for i in &self.inputs {
            *m.entry(i.len()).or_insert(0usize) += 1;
        }
        m.into_iter().collect()
    }

    /// One corrupted partner per input (see the module documentation).
    pub fn corrupted(
        &self,
        task: &Task,
        seed: u64,
        accept: impl Fn(&[Value]) -> Result<(), ExperimentError>,
    ) -> Result<Vec<Vec<Value>>, ExperimentError> {
        self.inputs
            .iter()
            .enumerate()
            .map(|(i, clean)| {
                let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, &[i as u64]));
                let len = clean.len();
                let distinct_possible = task.vocab.len() > 1;
                let mut last = None;
                for _ in 0..MAX_CORRUPT_TRIES {
                    let cand: Vec<Value> = (0..len)
                        .map(|_| task.vocab[rng.random_range(0..task.vocab.len())].clone())
                        .collect();
                    if distinct_possible && cand == *clean {
                        continue;
                    }
                    match satisfies_restriction(task, &cand) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            return Err(ExperimentError::CorruptedRestriction {
                                input: i,
                                values: clean.clone(),
                                reason: Box::new(e),
                            });
                        }
                    }
                    match accept(&cand) {
                        Ok(()) => return Ok(cand),
                        Err(why) => last = Some(Box::new(why)),
                    }
                }
                Err(ExperimentError::NoCorruptedPartner {
                    input: i,
                    values: clean.clone(),
                    tries: MAX_CORRUPT_TRIES,
                    last_rejection: last,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task {
            name: "t".into(),
            vocab: vec![Value::int(0), Value::int(1), Value::int(2)],
            max_len: 5,
            restriction: None,
            source: None,
        }
    }

    #[test]
    fn seeded_filtered_and_named_by_content() {
        let t = task();
        let keep_long = |i: &[Value]| {
            if i.len() >= 2 {
                Ok(())
            } else {
                Err(ExperimentError::NoInputs {
                    task: "short".into(),
                })
            }
        };
        let a = InputSet::sample(&t, 50, 3, keep_long).unwrap();
        let b = InputSet::sample(&t, 50, 3, keep_long).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 50);
        assert!(a.inputs.iter().all(|i| i.len() >= 2));
        let c = InputSet::sample(&t, 50, 4, keep_long).unwrap();
        assert_ne!(a.id, c.id);
        let never = |_: &[Value]| Err(ExperimentError::NoTask);
        assert!(matches!(
            InputSet::sample(&t, 5, 1, never),
            Err(ExperimentError::TooFewAccepted { found: 0, last_rejection: Some(e), .. })
                if matches!(*e, ExperimentError::NoTask)
        ));
    }

    #[test]
    fn corrupted_partners_keep_length_and_differ() {
        let t = task();
        let set = InputSet::sample(&t, 40, 9, |_| Ok(())).unwrap();
        let c1 = set.corrupted(&t, 11, |_| Ok(())).unwrap();
        let c2 = set.corrupted(&t, 11, |_| Ok(())).unwrap();
        assert_eq!(c1, c2);
        for (clean, bad) in set.inputs.iter().zip(&c1) {
            assert_eq!(clean.len(), bad.len());
            assert_ne!(clean, bad);
        }
        // The clean set is untouched: corrupted inputs come from their own stream.
        assert_eq!(set, InputSet::sample(&t, 40, 9, |_| Ok(())).unwrap());
    }
}
