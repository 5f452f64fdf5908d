//! The one codec between language values and the JSON of model artifacts. Exact: integers are
//! JSON numbers, other rationals `"p/q"` strings, symbols strings, booleans booleans, `none` is
//! `null`; [`from_json`] reads back exactly what [`to_json`] writes. A symbol whose text reads as
//! a ratio (the symbol `"1/2"`, not the number) is written tagged, `{"symbol": "1/2"}`, so it
//! does not come back as a number.
//!
//! (Reports for people — `eval --json`, `run --json` — print rationals as decimals with
//! `lang::eval::value_json`; that is a display form, never read back.)

use num_rational::Rational64;
use serde_json::Value as Json;

use crate::lang::ir::Value;

/// The key of a tagged symbol (see the module doc).
pub const SYMBOL_TAG: &str = "symbol";

/// A value as artifact JSON.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::None => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Sym(s) if parse_ratio(s).is_some() => {
            serde_json::json!({ SYMBOL_TAG: s.to_string() })
        }
        Value::Sym(s) => Json::String(s.to_string()),
        Value::Num(r) if r.is_integer() => Json::from(r.to_integer()),
        Value::Num(r) => Json::String(format!("{}/{}", r.numer(), r.denom())),
    }
}

/// Artifact JSON as a value: integers and `p/q` strings as numbers, `null` as `none`, booleans
/// as booleans, other strings as symbols. A JSON float (a hand-written sidecar) becomes the
/// nearest integer within 1e-6, else a rational with denominator 10^6.
pub fn from_json(v: &Json) -> Value {
    match v {
        Json::Null => Value::None,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::int(i),
            None => n.as_f64().map(float_value).unwrap_or(Value::None),
        },
        Json::String(s) => parse_ratio(s).map_or_else(|| Value::sym(s), Value::Num),
        other => tagged_symbol(other).map_or_else(|| Value::sym(&other.to_string()), Value::sym),
    }
}

/// The text of a tagged symbol, `{"symbol": "1/2"}`.
pub fn tagged_symbol(v: &Json) -> Option<&str> {
    match v {
        Json::Object(m) if m.len() == 1 => m.get(SYMBOL_TAG)?.as_str(),
        _ => None,
    }
}

/// `"p/q"` (q ≠ 0) as a rational.
pub fn parse_ratio(s: &str) -> Option<Rational64> {
    let (a, b) = s.split_once('/')?;
    let (a, b) = (a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?);
    (b != 0).then(|| Rational64::new(a, b))
}

/// A float read as a value: the nearest integer when it is within 1e-6 of one, else a rational
/// with denominator 10^6 (such outputs are only compared, never computed with).
pub fn float_value(x: f64) -> Value {
    let r = x.round();
    if (x - r).abs() < 1e-6 && r.abs() < 9e15 {
        Value::int(r as i64)
    } else {
        Value::Num(Rational64::new((x * 1e6).round() as i64, 1_000_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exact_forms() {
        let third = Value::Num(Rational64::new(1, 3));
        assert_eq!(to_json(&third), json!("1/3"));
        assert_eq!(to_json(&Value::int(-4)), json!(-4));
        assert_eq!(to_json(&Value::None), Json::Null);
        assert_eq!(from_json(&json!("1/3")), third);
        assert_eq!(
            from_json(&json!("-2/4")),
            Value::Num(Rational64::new(-1, 2))
        );
        assert_eq!(from_json(&json!("a")), Value::sym("a"));
        assert_eq!(from_json(&json!("1/0")), Value::sym("1/0"));
        assert_eq!(from_json(&json!(2.0000000001)), Value::int(2));
        assert_eq!(from_json(&json!(0.25)), Value::Num(Rational64::new(1, 4)));
        // The symbol "1/2" is not the number 1/2.
        let sym = Value::sym("1/2");
        assert_eq!(to_json(&sym), json!({"symbol": "1/2"}));
        assert_eq!(from_json(&to_json(&sym)), sym);
        assert_eq!(to_json(&Value::sym("1/0")), json!("1/0"));
    }
}
