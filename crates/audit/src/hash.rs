//! Hashes: the input hash of a call's arguments (SHA-256 of their RFC 8785
//! canonical form) and small helpers.
//!
//! Canonicalisation matches the registry's manifest hashing: numbers are
//! parsed from their own text (nearest double, as RFC 8785 requires — not
//! serde_json's fast path, which can be one ulp off), duplicate keys and
//! lone surrogates are refused, and `serde_jcs` prints. Input that cannot
//! be canonicalised still gets a stable hash, of its raw bytes, marked
//! `sha256-raw:` so nobody mistakes it for a canonical one.

use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use warden_protocol::message::{as_str, elements, members};

/// Nesting deeper than this is not canonicalised (hashed raw instead).
const MAX_DEPTH: usize = 64;

/// `sha256:<hex>` of the RFC 8785 canonical JSON of `arguments`; for input
/// that has no canonical form (duplicate keys, lone surrogates, numbers out
/// of the double range, nesting deeper than 64), `sha256-raw:<hex>` of the
/// bytes as received.
pub fn input_hash(arguments: &RawValue) -> String {
    match canonical(arguments) {
        Some(text) => sha256_prefixed(text.as_bytes()),
        None => format!(
            "sha256-raw:{}",
            hex::encode(Sha256::digest(arguments.get()))
        ),
    }
}

/// The RFC 8785 canonical form, if there is one.
pub fn canonical(v: &RawValue) -> Option<String> {
    let value = exact_value(v, 0)?;
    serde_jcs::to_string(&value).ok()
}

pub(crate) fn sha256_prefixed(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn exact_value(v: &RawValue, depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let text = v.get().trim_matches(|c: char| c.is_ascii_whitespace());
    match text.as_bytes().first() {
        Some(b'{') => {
            let mut map = Map::new();
            for (key, child) in members(v)? {
                let child = exact_value(child, depth + 1)?;
                if map.insert(key.into_owned(), child).is_some() {
                    return None;
                }
            }
            Some(Value::Object(map))
        }
        Some(b'[') => elements(v)?
            .into_iter()
            .map(|item| exact_value(item, depth + 1))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        Some(b'"') => as_str(v).map(|s| Value::String(s.into_owned())),
        Some(b't') if text == "true" => Some(Value::Bool(true)),
        Some(b'f') if text == "false" => Some(Value::Bool(false)),
        Some(b'n') if text == "null" => Some(Value::Null),
        Some(b'-' | b'0'..=b'9') => {
            let valid = text
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
            if !valid {
                return None;
            }
            let f: f64 = text.parse().ok()?;
            Number::from_f64(f).map(Value::Number)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn key_order_and_whitespace_do_not_change_the_hash() {
        let a = input_hash(&raw(r#"{"b":1,"a":[true,null,"x"]}"#));
        let b = input_hash(&raw("{ \"a\" : [ true , null , \"x\" ] ,\n \"b\" : 1.0 }"));
        assert_eq!(a, b);
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64, "{a}");
    }

    #[test]
    fn rfc8785_number_forms() {
        assert_eq!(
            canonical(&raw("[1E2, 0.1, -0, 1e-7]")).unwrap(),
            "[100,0.1,0,1e-7]"
        );
    }

    #[test]
    fn duplicate_keys_are_hashed_raw_not_canonically() {
        let h = input_hash(&raw(r#"{"a":1,"a":2}"#));
        assert!(h.starts_with("sha256-raw:"), "{h}");
    }

    #[test]
    fn different_values_differ() {
        assert_ne!(
            input_hash(&raw(r#"{"a":1}"#)),
            input_hash(&raw(r#"{"a":2}"#))
        );
    }
}
