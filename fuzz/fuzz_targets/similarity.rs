//! Every default similarity measure on matrices read from the input: two shape bytes per
//! operand, then f64 values (little-endian); a result must be a finite number or an error.
#![no_main]

use congruity::similarity::Measure;
use faer::Mat;
use libfuzzer_sys::fuzz_target;

fn matrix(n: usize, d: usize, words: &mut impl Iterator<Item = f64>) -> Mat<f64> {
    Mat::from_fn(n, d, |_, _| words.next().unwrap_or(0.0))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (shape, values) = data.split_at(4);
    let mut words = values
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()));
    let n = shape[0] as usize % 48;
    let x = matrix(n, shape[1] as usize % 16, &mut words);
    let ny = if shape[3] % 8 == 0 { n + 1 } else { n };
    let y = matrix(ny, shape[2] as usize % 16, &mut words);
    for m in Measure::defaults() {
        if let Ok(v) = m.compute(x.as_ref(), y.as_ref()) {
            assert!(v.value().is_finite(), "{m}: {}", v.value());
        }
    }
});
