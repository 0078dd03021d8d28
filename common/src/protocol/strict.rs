//! What the frame parser refuses beyond plain JSON, because AWS would not store it faithfully:
//! a key repeated in one object (ambiguous: JSON parsers disagree on which value wins) and a
//! number DynamoDB cannot hold.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses one JSON text into a [`Value`], refusing an object that repeats a key (after
/// unescaping, so `"seq"` and `"s\u0065q"` are the same key) at any depth. One pass, no extra
/// allocation per value: the object being built answers whether a key was seen. Depth is bounded
/// by `serde_json`'s recursion limit (128), which applies to this visitor as to `Value`.
pub(super) fn parse_unique_keys(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Unique { path: Path::Root }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Where a value sits in the frame, for the error message (`data.k`, `data.list[2].k`).
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => write!(f, "{key}"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Builds a [`Value`] as `serde_json` does, refusing duplicate keys.
struct Unique<'a> {
    path: Path<'a>,
}

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json never hands over a non-finite float; map one to null as `Value` does.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Unique {
            path: Path::Index(&self.path, items.len()),
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "key `{}` appears more than once",
                    Path::Key(&self.path, &key)
                )));
            }
            let value = map.next_value_seed(Unique {
                path: Path::Key(&self.path, &key),
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Smallest decimal exponent of a non-zero number DynamoDB stores: its magnitude must be at
/// least 1E-130.
const DYNAMODB_MIN_EXPONENT: i32 = -130;
/// Largest decimal exponent: the magnitude must be at most 9.9999999999999999999999999999999999999E+125.
const DYNAMODB_MAX_EXPONENT: i32 = 125;
/// Most significant digits DynamoDB keeps in a number.
const DYNAMODB_MAX_DIGITS: usize = 38;

/// Whether DynamoDB can store `v` as a Number attribute, written as the store writes it.
///
/// DynamoDB numbers (Developer Guide, "Supported data types and naming rules" → Number,
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html>):
/// up to 38 digits of precision; positive values from 1E-130 to
/// 9.9999999999999999999999999999999999999E+125, negative values from
/// -9.9999999999999999999999999999999999999E+125 to -1E-130, and 0. Anything else is refused
/// by PutItem (a `ValidationException`), which the client would see as API Gateway's
/// "Internal server error"; tiny values such as 1e-200 are refused here rather than rounded
/// to 0, so what a client sends is what others receive.
///
/// The store writes an `f64` through `serde_dynamo`, which uses `f64`'s `Display`: the shortest
/// decimal that reads back as the same `f64`, at most 17 significant digits, never an exponent
/// (`1e125` is written as `1` and 125 zeros; DynamoDB trims trailing zeros). Its digits and
/// exponent are those of `{:e}`, checked here, so at most 17 digits always fit in 38 and only
/// the exponent can be out of range.
pub(super) fn dynamodb_can_store(v: f64) -> bool {
    if !v.is_finite() {
        return false;
    }
    if v == 0.0 {
        return true;
    }
    // `{:e}` of a finite non-zero f64: `-1.2345e-7`, `1e300`.
    let sci = format!("{:e}", v.abs());
    let Some((mantissa, exponent)) = sci.split_once('e') else {
        return false;
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return false;
    };
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    digits <= DYNAMODB_MAX_DIGITS
        && (DYNAMODB_MIN_EXPONENT..=DYNAMODB_MAX_EXPONENT).contains(&exponent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_refused_and_named_at_any_depth() {
        let cases = [
            (r#"{"seq":1,"seq":2}"#, "key `seq` appears more than once"),
            (
                r#"{"a":1,"data":{"k":1,"j":0,"k":2}}"#,
                "key `data.k` appears more than once",
            ),
            (
                r#"{"data":{"list":[0,{"k":1,"k":1}]}}"#,
                "key `data.list[1].k` appears more than once",
            ),
            // The same key after unescaping.
            (
                r#"{"seq":1,"s\u0065q":2}"#,
                "key `seq` appears more than once",
            ),
        ];
        for (text, want) in cases {
            let err = parse_unique_keys(text).unwrap_err();
            assert!(err.to_string().starts_with(want), "{text}: {err}");
        }
    }

    #[test]
    fn without_repeats_it_builds_what_serde_json_builds() {
        for text in [
            r#"{"action":"position","channel":"a","x":-1.5,"y":2,"z":1e-7,"seq":18446744073709551615,"data":{"a":[1,{"a":null}],"b":true,"s":"\u00e9"}}"#,
            r#"[{"k":1},{"k":2}]"#,
            "-0",
            r#""""#,
            "{}",
        ] {
            let want: Value = serde_json::from_str(text).unwrap();
            assert_eq!(parse_unique_keys(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn deep_nesting_and_trailing_bytes_are_errors_not_panics() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_unique_keys(&deep).is_err());
        let deep_objects = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
        assert!(parse_unique_keys(&deep_objects).is_err());
        assert!(parse_unique_keys(r#"{"a":1} x"#).is_err());
        assert!(parse_unique_keys(r#"{"a":1"#).is_err());
    }

    #[test]
    fn numbers_outside_dynamodbs_range_are_refused() {
        for ok in [
            0.0,
            -0.0,
            1.0,
            -2.5,
            1e-130,
            -1e-130,
            1e125,
            9.999_999_999_999_998e125,
            -1e125,
            f64::EPSILON,
            123_456_789.123_456_78,
        ] {
            assert!(dynamodb_can_store(ok), "{ok:e} should be storable");
        }
        for bad in [
            1e300,
            -1e300,
            1e126,
            -1e126,
            f64::MAX,
            1e-131,
            -1e-131,
            1e-200,
            f64::MIN_POSITIVE,
            5e-324, // the smallest subnormal
            f64::NAN,
            f64::INFINITY,
        ] {
            assert!(!dynamodb_can_store(bad), "{bad:e} should be refused");
        }
    }

    #[test]
    fn the_bounds_are_exact_to_the_neighbouring_f64() {
        // The f64 nearest 1e126 prints as 1e126 (refused); the next one down prints with
        // exponent 125. The f64 nearest 1e-130 prints as 1e-130; the next one down as 9.99…e-131.
        assert!(!dynamodb_can_store(1e126));
        assert!(dynamodb_can_store(1e126_f64.next_down()));
        assert!(dynamodb_can_store(1e-130));
        assert!(!dynamodb_can_store(1e-130_f64.next_down()));
    }

    #[test]
    fn the_stores_number_text_has_the_digits_and_exponent_checked() {
        // serde_dynamo writes `f64::to_string()`; its significant digits are those of `{:e}`.
        for v in [
            1e125,
            9.999_999_999_999_998e125,
            1e-130,
            0.1 + 0.2,
            -123.456,
            std::f64::consts::PI * 1e100,
        ] {
            let display = v.to_string();
            assert!(!display.contains('e'), "{display}");
            let sci = format!("{:e}", v.abs());
            let (mantissa, _) = sci.split_once('e').unwrap();
            let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
            let significant = display
                .trim_start_matches('-')
                .replace('.', "")
                .trim_matches('0')
                .to_owned();
            assert_eq!(significant, digits, "{v:e}");
            assert!(digits.len() <= 17);
        }
    }
}
