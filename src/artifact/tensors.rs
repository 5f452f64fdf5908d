//! safetensors encoding of f32 tensors, shared by every writer of model files (the compiler's
//! model directories, the runtime's caches and patched outputs), and the decoding of stored
//! tensor bytes to f32 that every reader uses.

use safetensors::Dtype;

/// An f32 tensor encoded for safetensors (little-endian bytes).
pub struct F32Tensor {
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl F32Tensor {
    pub fn new(shape: Vec<usize>, values: impl IntoIterator<Item = f32>) -> Self {
        let values = values.into_iter();
        let mut data = Vec::with_capacity(values.size_hint().0 * 4);
        for x in values {
            data.extend_from_slice(&x.to_le_bytes());
        }
        F32Tensor { shape, data }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
}

impl safetensors::View for &F32Tensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// The safetensors file of named f32 tensors, as bytes.
pub fn safetensors_bytes(
    tensors: &[(String, F32Tensor)],
) -> Result<Vec<u8>, safetensors::SafeTensorError> {
    safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None)
}

/// The `N`-byte little-endian words of `data`, each decoded by `f` (a trailing partial word
/// cannot occur: safetensors checks that the byte length matches the shape).
fn words<const N: usize>(data: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
    let (whole, _) = data.as_chunks::<N>();
    whole.iter().map(|w| f(*w)).collect()
}

/// A floating-point tensor's little-endian bytes as f32 (f32, f64, f16, bf16); `None` for other
/// dtypes.
pub fn float_values(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => words(data, f32::from_le_bytes),
        Dtype::F64 => words(data, |w| f64::from_le_bytes(w) as f32),
        Dtype::F16 => words(data, |w| half::f16::from_le_bytes(w).to_f32()),
        Dtype::BF16 => words(data, |w| half::bf16::from_le_bytes(w).to_f32()),
        _ => return None,
    })
}

/// Integer data as f32 (for data files such as token ids or argmax indices; weights must be
/// floating point and do not go through this).
pub fn int_values(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::I64 => words(data, |w| i64::from_le_bytes(w) as f32),
        Dtype::U64 => words(data, |w| u64::from_le_bytes(w) as f32),
        Dtype::I32 => words(data, |w| i32::from_le_bytes(w) as f32),
        Dtype::U32 => words(data, |w| u32::from_le_bytes(w) as f32),
        Dtype::I16 => words(data, |w| i16::from_le_bytes(w) as f32),
        Dtype::U16 => words(data, |w| u16::from_le_bytes(w) as f32),
        Dtype::I8 => data.iter().map(|&b| b as i8 as f32).collect(),
        Dtype::U8 | Dtype::BOOL => data.iter().map(|&b| b as f32).collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_safetensors() {
        let t = F32Tensor::new(vec![2, 3], [1.0, -2.5, 0.0, 3.25, 1e-30, f32::MAX]);
        let bytes = safetensors_bytes(&[("a.b".into(), t)]).unwrap();
        let back = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let v = back.tensor("a.b").unwrap();
        assert_eq!(v.shape(), &[2, 3]);
        assert_eq!(v.dtype(), Dtype::F32);
        let xs: Vec<f32> = v
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(xs, vec![1.0, -2.5, 0.0, 3.25, 1e-30, f32::MAX]);
    }

    #[test]
    fn converts_half_double_and_integers() {
        assert_eq!(
            float_values(Dtype::F64, &2.5f64.to_le_bytes()),
            Some(vec![2.5])
        );
        assert_eq!(
            float_values(Dtype::BF16, &half::bf16::from_f32(-3.0).to_le_bytes()),
            Some(vec![-3.0])
        );
        assert_eq!(float_values(Dtype::I64, &[0; 8]), None);
        assert_eq!(
            int_values(Dtype::I64, &(-7i64).to_le_bytes()),
            Some(vec![-7.0])
        );
        assert_eq!(int_values(Dtype::BOOL, &[1, 0]), Some(vec![1.0, 0.0]));
        assert_eq!(int_values(Dtype::F32, &[0; 4]), None);
    }
}
