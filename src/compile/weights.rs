//! Dense weights in TransformerLens layout (f64 while compiling and sampling, f32 on disk), and a
//! small reference forward pass used to check compiled models without the runtime.
//!
//! The forward pass is the one the runtime implements for compiled models: embeddings, then per
//! layer a bidirectional attention sub-layer (scores not divided: `use_attn_scale = false`) and a
//! ReLU MLP, no normalization, then the unembedding.

use num_traits::Float;

/// A row-major dense matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Mat {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Mat {
    pub fn zeros(rows: usize, cols: usize) -> Mat {
        Mat {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    #[inline]
    pub fn get(&self, r: usize, c: usize) -> f64 {
        self.data[r * self.cols + c]
    }

    #[inline]
    pub fn set(&mut self, r: usize, c: usize, x: f64) {
        self.data[r * self.cols + c] = x;
    }

    #[inline]
    pub fn add(&mut self, r: usize, c: usize, x: f64) {
        self.data[r * self.cols + c] += x;
    }

    pub fn row(&self, r: usize) -> &[f64] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    pub fn row_mut(&mut self, r: usize) -> &mut [f64] {
        &mut self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// `self · other` (faer, sequential: the same bits whatever the thread count).
    pub fn matmul(&self, other: &Mat) -> Mat {
        assert_eq!(self.cols, other.rows, "matmul shape mismatch");
        let a = faer::MatRef::from_row_major_slice(&self.data, self.rows, self.cols);
        let b = faer::MatRef::from_row_major_slice(&other.data, other.rows, other.cols);
        let mut c = faer::Mat::<f64>::zeros(self.rows, other.cols);
        faer::linalg::matmul::matmul(c.as_mut(), faer::Accum::Replace, a, b, 1.0, faer::Par::Seq);
        let mut out = Mat::zeros(self.rows, other.cols);
        for i in 0..self.rows {
            for j in 0..other.cols {
                out.set(i, j, c[(i, j)]);
            }
        }
        out
    }

    pub fn transpose(&self) -> Mat {
        let mut out = Mat::zeros(self.cols, self.rows);
        for i in 0..self.rows {
            for j in 0..self.cols {
                out.set(j, i, self.get(i, j));
            }
        }
        out
    }

    /// Keeps the first `cols` columns, padding with zeros.
    pub fn with_cols(&self, cols: usize) -> Mat {
        let mut out = Mat::zeros(self.rows, cols);
        for i in 0..self.rows {
            for j in 0..self.cols.min(cols) {
                out.set(i, j, self.get(i, j));
            }
        }
        out
    }

    /// Keeps the first `rows` rows, padding with zeros.
    pub fn with_rows(&self, rows: usize) -> Mat {
        let mut out = Mat::zeros(rows, self.cols);
        let n = self.rows.min(rows) * self.cols;
        out.data[..n].copy_from_slice(&self.data[..n]);
        out
    }
}

/// One attention head's parameters (TransformerLens shapes without the head axis).
#[derive(Clone, Debug, PartialEq)]
pub struct Head {
    /// [d_model, d_head]
    pub w_q: Mat,
    pub b_q: Vec<f64>,
    pub w_k: Mat,
    pub b_k: Vec<f64>,
    pub w_v: Mat,
    pub b_v: Vec<f64>,
    /// [d_head, d_model]
    pub w_o: Mat,
}

impl Head {
    pub fn zeros(d_model: usize, d_head: usize) -> Head {
        Head {
            w_q: Mat::zeros(d_model, d_head),
            b_q: vec![0.0; d_head],
            w_k: Mat::zeros(d_model, d_head),
            b_k: vec![0.0; d_head],
            w_v: Mat::zeros(d_model, d_head),
            b_v: vec![0.0; d_head],
            w_o: Mat::zeros(d_head, d_model),
        }
    }

    pub fn is_zero(&self) -> bool {
        self.w_o.data.iter().all(|x| *x == 0.0) && self.w_v.data.iter().all(|x| *x == 0.0)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub heads: Vec<Head>,
    pub b_o: Vec<f64>,
    /// [d_model, d_mlp]
    pub w_in: Mat,
    pub b_in: Vec<f64>,
    /// [d_mlp, d_model]
    pub w_out: Mat,
    pub b_out: Vec<f64>,
}

impl Layer {
    /// The hidden units whose output row is non-zero: the units the MLP really uses.
    pub fn used_units(&self) -> Vec<usize> {
        (0..self.w_out.rows)
            .filter(|u| self.w_out.row(*u).iter().any(|x| *x != 0.0))
            .collect()
    }
}

/// A whole model.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    pub d_model: usize,
    pub n_ctx: usize,
    pub d_head: usize,
    pub n_heads: usize,
    pub d_mlp: usize,
    pub d_vocab: usize,
    pub d_vocab_out: usize,
    /// [d_vocab, d_model]
    pub w_e: Mat,
    /// [n_ctx, d_model]
    pub w_pos: Mat,
    pub layers: Vec<Layer>,
    /// [d_model, d_vocab_out]
    pub w_u: Mat,
    pub b_u: Vec<f64>,
}

/// What a forward pass returns.
#[derive(Clone, Debug)]
pub struct Trace<T> {
    /// `[pos][d_vocab_out]`
    pub logits: Vec<Vec<T>>,
    /// Residual stream after the embeddings and after every sub-layer (`2·n_layers + 1` entries),
    /// each `[pos][d_model]`; empty unless asked for.
    pub residuals: Vec<Vec<Vec<T>>>,
}

impl Weights {
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Runs the model on token ids (BOS first) in precision `T` (f32 mirrors the runtime).
    pub fn forward<T: Float>(&self, tokens: &[usize], keep_residuals: bool) -> Trace<T> {
        let c = |x: f64| T::from(x).unwrap_or_else(T::zero);
        let n = tokens.len();
        let d = self.d_model;
        let mut x: Vec<Vec<T>> = tokens
            .iter()
            .enumerate()
            .map(|(p, &t)| {
                (0..d)
                    .map(|j| c(self.w_e.get(t, j)) + c(self.w_pos.get(p, j)))
                    .collect()
            })
            .collect();
        let mut residuals = Vec::new();
        if keep_residuals {
            residuals.push(x.clone());
        }
        let proj = |x: &[T], w: &Mat, b: &[f64]| -> Vec<T> {
            (0..w.cols)
                .map(|j| {
                    let mut s = c(b[j]);
                    for (i, xi) in x.iter().enumerate() {
                        let wij = w.get(i, j);
                        if wij != 0.0 {
                            s = s + *xi * c(wij);
                        }
                    }
                    s
                })
                .collect()
        };
        for layer in &self.layers {
            let mut attn_out: Vec<Vec<T>> = (0..n).map(|_| self_b(&layer.b_o, c)).collect();
            for head in &layer.heads {
                let q: Vec<Vec<T>> = x.iter().map(|r| proj(r, &head.w_q, &head.b_q)).collect();
                let k: Vec<Vec<T>> = x.iter().map(|r| proj(r, &head.w_k, &head.b_k)).collect();
                let v: Vec<Vec<T>> = x.iter().map(|r| proj(r, &head.w_v, &head.b_v)).collect();
                for i in 0..n {
                    let scores: Vec<T> = (0..n)
                        .map(|j| {
                            q[i].iter()
                                .zip(&k[j])
                                .fold(T::zero(), |s, (a, b)| s + *a * *b)
                        })
                        .collect();
                    let m = scores.iter().copied().fold(T::neg_infinity(), T::max);
                    let e: Vec<T> = scores.iter().map(|s| (*s - m).exp()).collect();
                    let z = e.iter().copied().fold(T::zero(), |a, b| a + b);
                    let mut zv = vec![T::zero(); self.d_head];
                    for j in 0..n {
                        let a = e[j] / z;
                        for (o, vv) in zv.iter_mut().zip(&v[j]) {
                            *o = *o + a * *vv;
                        }
                    }
                    let zero = vec![0.0; d];
                    let out = proj(&zv, &head.w_o, &zero);
                    for (o, y) in attn_out[i].iter_mut().zip(out) {
                        *o = *o + y;
                    }
                }
            }
            for (xr, a) in x.iter_mut().zip(&attn_out) {
                for (xi, ai) in xr.iter_mut().zip(a) {
                    *xi = *xi + *ai;
                }
            }
            if keep_residuals {
                residuals.push(x.clone());
            }
            for xr in x.iter_mut() {
                let h: Vec<T> = proj(xr, &layer.w_in, &layer.b_in)
                    .into_iter()
                    .map(|v| v.max(T::zero()))
                    .collect();
                let out = proj(&h, &layer.w_out, &layer.b_out);
                for (xi, o) in xr.iter_mut().zip(out) {
                    *xi = *xi + o;
                }
            }
            if keep_residuals {
                residuals.push(x.clone());
            }
        }
        let logits = x.iter().map(|r| proj(r, &self.w_u, &self.b_u)).collect();
        Trace { logits, residuals }
    }
}

fn self_b<T: Float>(b: &[f64], c: impl Fn(f64) -> T) -> Vec<T> {
    b.iter().map(|x| c(*x)).collect()
}
