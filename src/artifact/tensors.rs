//! safetensors encoding of f32 tensors, shared by every writer of model files (the compiler's
//! model directories, the runtime's caches and patched outputs).

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
}
