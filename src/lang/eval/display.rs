//! Values as program output, for people: text and report JSON (never read back; model
//! artifacts use [`crate::artifact::value`]).

use super::*;

/// A value as program output: integers as integers, other rationals as exact decimals when they
/// have a finite expansion (`0.25`) and as fractions otherwise (`1/3`), symbols as their text,
/// booleans as `true`/`false`, and `none`.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Num(r) if !r.is_integer() => {
            decimal(r).unwrap_or_else(|| format!("{}/{}", r.numer(), r.denom()))
        }
        Value::Sym(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// The exact decimal expansion of `r`, when it is finite and fits in 128 bits.
fn decimal(r: &Rational64) -> Option<String> {
    let (n, mut d) = (i128::from(*r.numer()), i128::from(*r.denom()));
    let (mut twos, mut fives) = (0u32, 0u32);
    while d % 2 == 0 {
        d /= 2;
        twos += 1;
    }
    while d % 5 == 0 {
        d /= 5;
        fives += 1;
    }
    if d != 1 {
        return None;
    }
    let digits = twos.max(fives);
    // n / (2^a 5^b) = n * 2^(k-a) * 5^(k-b) / 10^k
    let scale = 2i128
        .checked_pow(digits - twos)?
        .checked_mul(5i128.checked_pow(digits - fives)?)?;
    let scaled = n.checked_mul(scale)?;
    let ten = 10i128.checked_pow(digits)?;
    let (int, frac) = (scaled / ten, (scaled % ten).abs());
    let sign = if scaled < 0 && int == 0 { "-" } else { "" };
    Some(format!(
        "{sign}{int}.{frac:0width$}",
        width = digits as usize
    ))
}

/// A value as JSON: integers as JSON integers, other rationals as the nearest `f64`, symbols as
/// strings, booleans as booleans, `none` as null.
pub fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::None => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Num(r) if r.is_integer() => serde_json::Value::from(r.to_integer()),
        Value::Num(r) => serde_json::Number::from_f64(*r.numer() as f64 / *r.denom() as f64)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Sym(s) => serde_json::Value::String(s.to_string()),
    }
}
