//! Representations of one implementation on a common input set, and how to build them from
//! per-layer activations.
//!
//! Rows are inputs, columns features. Every representation names its input set
//! ([`InputsId`]); anything that combines or compares representations row by row checks that the
//! names and row counts agree. This is the guard against the reference code's defect of chaining
//! stages whose rows (or implementation paths) were indexed differently.

use super::EquivalenceError;
use faer::{Mat, MatRef};
use serde::Serialize;

/// Names the ordered list of inputs a representation's rows stand for (for instance a hash of the
/// token sequences). Two representations can be compared only on the same inputs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct InputsId(pub String);

impl std::fmt::Display for InputsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An implementation's representation: `n` inputs × features, f64, all finite.
#[derive(Debug, Clone, PartialEq)]
pub struct Representation {
    inputs: InputsId,
    data: Mat<f64>,
}

impl Representation {
    /// Checks that `data` has at least one row and one column and only finite values.
    pub fn new(inputs: InputsId, data: Mat<f64>) -> Result<Self, EquivalenceError> {
        if data.nrows() == 0 || data.ncols() == 0 {
            return Err(EquivalenceError::Empty {
                what: format!("representation on `{inputs}`"),
                reason: format!("shape [{}, {}]", data.nrows(), data.ncols()),
            });
        }
        for j in 0..data.ncols() {
            for i in 0..data.nrows() {
                let v = data[(i, j)];
                if !v.is_finite() {
                    return Err(EquivalenceError::NonFinite {
                        what: format!("representation on `{inputs}`"),
                        location: format!("[{i}, {j}]"),
                        value: v,
                    });
                }
            }
        }
        Ok(Self { inputs, data })
    }

    /// From row-major values `[n, d]`.
    pub fn from_rows(
        inputs: InputsId,
        n: usize,
        d: usize,
        values: &[f64],
    ) -> Result<Self, EquivalenceError> {
        if values.len() != n * d {
            return Err(EquivalenceError::DataLength {
                shape: [n, d, 1],
                expected: n * d,
                got: values.len(),
            });
        }
        Self::new(inputs, Mat::from_fn(n, d, |i, j| values[i * d + j]))
    }

    pub fn inputs(&self) -> &InputsId {
        &self.inputs
    }

    pub fn n_inputs(&self) -> usize {
        self.data.nrows()
    }

    pub fn n_features(&self) -> usize {
        self.data.ncols()
    }

    pub fn matrix(&self) -> MatRef<'_, f64> {
        self.data.as_ref()
    }

    /// Concatenates features of representations of the same inputs, in order: how pipelines join
    /// their stages and how layers accumulate.
    pub fn concat_features(parts: &[Representation]) -> Result<Self, EquivalenceError> {
        let first = parts.first().ok_or_else(|| EquivalenceError::Empty {
            what: "list of representations to concatenate".into(),
            reason: "no parts".into(),
        })?;
        for (part, r) in parts.iter().enumerate().skip(1) {
            if r.inputs != first.inputs || r.n_inputs() != first.n_inputs() {
                return Err(EquivalenceError::NotRowAligned {
                    part,
                    expected: first.inputs.clone(),
                    expected_rows: first.n_inputs(),
                    got: r.inputs.clone(),
                    got_rows: r.n_inputs(),
                });
            }
        }
        let n = first.n_inputs();
        let total: usize = parts.iter().map(|p| p.n_features()).sum();
        let mut data = Mat::<f64>::zeros(n, total);
        let mut offset = 0;
        for p in parts {
            data.as_mut()
                .subcols_mut(offset, p.n_features())
                .copy_from(p.matrix());
            offset += p.n_features();
        }
        Ok(Self {
            inputs: first.inputs.clone(),
            data,
        })
    }
}

/// One layer's activations `[batch, pos, d]`, row-major, f64.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationArray {
    shape: [usize; 3],
    data: Vec<f64>,
}

impl ActivationArray {
    pub fn new(shape: [usize; 3], data: Vec<f64>) -> Result<Self, EquivalenceError> {
        let expected = shape.iter().product();
        if data.len() != expected {
            return Err(EquivalenceError::DataLength {
                shape,
                expected,
                got: data.len(),
            });
        }
        if shape.contains(&0) {
            return Err(EquivalenceError::Empty {
                what: "activation array".into(),
                reason: format!("shape {shape:?}"),
            });
        }
        if let Some(k) = data.iter().position(|v| !v.is_finite()) {
            let (b, rest) = (k / (shape[1] * shape[2]), k % (shape[1] * shape[2]));
            return Err(EquivalenceError::NonFinite {
                what: "activation array".into(),
                location: format!("[{b}, {}, {}]", rest / shape[2], rest % shape[2]),
                value: data[k],
            });
        }
        Ok(Self { shape, data })
    }

    /// From f32 activations (the runtime's dtype), widened to f64.
    pub fn from_f32(shape: [usize; 3], data: &[f32]) -> Result<Self, EquivalenceError> {
        Self::new(shape, data.iter().map(|v| f64::from(*v)).collect())
    }

    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    fn vector(&self, b: usize, p: usize) -> &[f64] {
        let d = self.shape[2];
        let start = (b * self.shape[1] + p) * d;
        &self.data[start..start + d]
    }
}

/// How positions are reduced to one vector per input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// Mean over all positions.
    Mean,
    /// The last position.
    Last,
    /// The vectors at these positions, concatenated in this order.
    Positions(Vec<usize>),
    /// One position per input (e.g. the last real token of a padded batch).
    PerInput(Vec<usize>),
    /// Mean over the first `len[b]` positions of input `b` (padded batches).
    MeanOfFirst(Vec<usize>),
}

impl std::fmt::Display for Pooling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[usize]| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Pooling::Mean => f.write_str("mean"),
            Pooling::Last => f.write_str("last"),
            Pooling::Positions(p) => write!(f, "positions={}", list(p)),
            Pooling::PerInput(_) => f.write_str("per-input position"),
            Pooling::MeanOfFirst(_) => f.write_str("mean over each input's length"),
        }
    }
}

/// Optional normalisation of each position's vector before pooling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Normalisation {
    #[default]
    None,
    /// LayerNorm without learned scale or shift: `(v − mean(v)) / sqrt(var(v) + eps)`.
    LayerNorm { eps: f64 },
}

fn normalise(v: &[f64], norm: Normalisation) -> Vec<f64> {
    match norm {
        Normalisation::None => v.to_vec(),
        Normalisation::LayerNorm { eps } => {
            let d = v.len() as f64;
            let mean = v.iter().sum::<f64>() / d;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / d;
            let scale = 1.0 / (var + eps).sqrt();
            v.iter().map(|x| (x - mean) * scale).collect()
        }
    }
}

/// Pools one layer to `[batch, d']` (d' = d, or d × positions for [`Pooling::Positions`]).
pub fn pool(
    act: &ActivationArray,
    pooling: &Pooling,
    norm: Normalisation,
) -> Result<Mat<f64>, EquivalenceError> {
    let [batch, pos, d] = act.shape;
    let bad = |reason: String| EquivalenceError::Pooling {
        pooling: pooling.to_string(),
        reason,
    };
    let check_pos = |p: usize| {
        if p < pos {
            Ok(p)
        } else {
            Err(bad(format!(
                "position {p} is out of range for {pos} positions"
            )))
        }
    };
    let per_input_len = |v: &Vec<usize>| {
        if v.len() == batch {
            Ok(())
        } else {
            Err(bad(format!(
                "{} entries given for a batch of {batch}",
                v.len()
            )))
        }
    };
    let mean_of = |b: usize, len: usize| {
        let mut acc = vec![0.0; d];
        for p in 0..len {
            for (a, x) in acc.iter_mut().zip(normalise(act.vector(b, p), norm)) {
                *a += x;
            }
        }
        acc.iter().map(|a| a / len as f64).collect::<Vec<f64>>()
    };
    let rows: Vec<Vec<f64>> = match pooling {
        Pooling::Mean => (0..batch).map(|b| mean_of(b, pos)).collect(),
        Pooling::Last => (0..batch)
            .map(|b| normalise(act.vector(b, pos - 1), norm))
            .collect(),
        Pooling::Positions(ps) => {
            if ps.is_empty() {
                return Err(bad("no positions given".into()));
            }
            let ps: Vec<usize> = ps.iter().map(|&p| check_pos(p)).collect::<Result<_, _>>()?;
            (0..batch)
                .map(|b| {
                    ps.iter()
                        .flat_map(|&p| normalise(act.vector(b, p), norm))
                        .collect()
                })
                .collect()
        }
        Pooling::PerInput(ps) => {
            per_input_len(ps)?;
            (0..batch)
                .map(|b| Ok(normalise(act.vector(b, check_pos(ps[b])?), norm)))
                .collect::<Result<_, EquivalenceError>>()?
        }
        Pooling::MeanOfFirst(lens) => {
            per_input_len(lens)?;
            (0..batch)
                .map(|b| {
                    let len = lens[b];
                    if len == 0 || len > pos {
                        Err(bad(format!(
                            "input {b} has length {len}; expected 1..={pos}"
                        )))
                    } else {
                        Ok(mean_of(b, len))
                    }
                })
                .collect::<Result<_, EquivalenceError>>()?
        }
    };
    let width = rows[0].len();
    Ok(Mat::from_fn(batch, width, |i, j| rows[i][j]))
}

/// The accumulated residual stream: each layer's residual pooled, then concatenated over layers
/// in order, one row per input.
pub fn accumulated_residual(
    inputs: InputsId,
    layers: &[ActivationArray],
    pooling: &Pooling,
    norm: Normalisation,
) -> Result<Representation, EquivalenceError> {
    let first = layers.first().ok_or_else(|| EquivalenceError::Empty {
        what: "list of layers".into(),
        reason: "no layers given".into(),
    })?;
    let [batch, pos, _] = first.shape;
    let mut parts = Vec::with_capacity(layers.len());
    for (layer, act) in layers.iter().enumerate() {
        let [b, p, _] = act.shape;
        if (b, p) != (batch, pos) {
            return Err(EquivalenceError::LayerShape {
                layer,
                expected: [batch, pos],
                got: act.shape,
            });
        }
        parts.push(Representation::new(
            inputs.clone(),
            pool(act, pooling, norm)?,
        )?);
    }
    Representation::concat_features(&parts)
}

/// A pipeline's representation: its stages' representations side by side, row-aligned on the
/// same inputs.
pub fn pipeline(stages: &[Representation]) -> Result<Representation, EquivalenceError> {
    Representation::concat_features(stages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> InputsId {
        InputsId("test-inputs".into())
    }

    fn layer(shift: f64) -> ActivationArray {
        // [batch 2, pos 3, d 2]; value encodes (b, p, k).
        let data = (0..12).map(|i| shift + i as f64).collect::<Vec<_>>();
        ActivationArray::new([2, 3, 2], data).unwrap()
    }

    #[test]
    fn mean_last_and_positions() {
        let a = layer(0.0);
        let m = pool(&a, &Pooling::Mean, Normalisation::None).unwrap();
        // input 0 positions: [0,1],[2,3],[4,5] → mean [2,3]
        assert_eq!((m[(0, 0)], m[(0, 1)], m[(1, 0)]), (2.0, 3.0, 8.0));
        let l = pool(&a, &Pooling::Last, Normalisation::None).unwrap();
        assert_eq!((l[(0, 0)], l[(1, 1)]), (4.0, 11.0));
        let p = pool(&a, &Pooling::Positions(vec![2, 0]), Normalisation::None).unwrap();
        assert_eq!(p.ncols(), 4);
        assert_eq!((p[(0, 0)], p[(0, 2)], p[(1, 3)]), (4.0, 0.0, 7.0));
        let q = pool(&a, &Pooling::PerInput(vec![0, 1]), Normalisation::None).unwrap();
        assert_eq!((q[(0, 0)], q[(1, 0)]), (0.0, 8.0));
        let f = pool(&a, &Pooling::MeanOfFirst(vec![1, 2]), Normalisation::None).unwrap();
        assert_eq!((f[(0, 0)], f[(1, 0)]), (0.0, 7.0));
    }

    #[test]
    fn layer_norm_centres_and_scales_each_vector() {
        let a = layer(0.0);
        let l = pool(&a, &Pooling::Last, Normalisation::LayerNorm { eps: 0.0 }).unwrap();
        assert!((l[(0, 0)] + 1.0).abs() < 1e-12 && (l[(0, 1)] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn accumulated_residual_concatenates_layers_in_order() {
        let r = accumulated_residual(
            ids(),
            &[layer(0.0), layer(100.0)],
            &Pooling::Last,
            Normalisation::None,
        )
        .unwrap();
        assert_eq!((r.n_inputs(), r.n_features()), (2, 4));
        assert_eq!(r.matrix()[(0, 2)], 104.0);
    }

    #[test]
    fn misaligned_inputs_and_bad_pooling_are_errors() {
        let a = Representation::from_rows(ids(), 2, 1, &[1.0, 2.0]).unwrap();
        let b = Representation::from_rows(InputsId("other".into()), 2, 1, &[1.0, 2.0]).unwrap();
        assert!(matches!(
            pipeline(&[a.clone(), b]),
            Err(EquivalenceError::NotRowAligned { part: 1, .. })
        ));
        let c = Representation::from_rows(ids(), 3, 1, &[1.0, 2.0, 3.0]).unwrap();
        assert!(pipeline(&[a, c]).is_err());
        for bad in [
            Pooling::Positions(vec![3]),
            Pooling::PerInput(vec![0]),
            Pooling::MeanOfFirst(vec![0, 1]),
        ] {
            assert!(
                pool(&layer(0.0), &bad, Normalisation::None).is_err(),
                "{bad:?}"
            );
        }
        let bigger = ActivationArray::new([2, 4, 2], vec![0.0; 16]).unwrap();
        assert!(matches!(
            accumulated_residual(
                ids(),
                &[layer(0.0), bigger],
                &Pooling::Mean,
                Normalisation::None
            ),
            Err(EquivalenceError::LayerShape { layer: 1, .. })
        ));
        assert!(ActivationArray::new([1, 1, 2], vec![0.0, f64::NAN]).is_err());
        assert!(ActivationArray::new([1, 1, 2], vec![0.0]).is_err());
    }
}
