//! Canonical JSON (RFC 8785, JCS) and the manifest hash.
//!
//! Output formatting is `serde_jcs` (0.2): it sorts members by UTF-16 code
//! units, escapes minimally and prints numbers as ECMAScript does (`ryu-js`);
//! it passes the RFC's examples (see the tests). We do not hand it
//! `serde_json::Value`s parsed by serde_json, for two reasons that make the
//! input side ours:
//!
//! * serde_json keeps the last of duplicate keys silently; a manifest whose
//!   meaning depends on the parser must be refused, not hashed;
//! * without its `float_roundtrip` feature (which we do not force on the
//!   whole workspace) serde_json parses decimals by multiplying by powers of
//!   ten, which can be one ulp off; RFC 8785 requires the nearest double.
//!   We parse every number's own text with `str::parse::<f64>` (correctly
//!   rounded) and hand serde_jcs an `f64`.
//!
//! `json-canon` was rejected: it panics on `-9223372036854775808` (an
//! `i64::abs` overflow reachable from peer input) and refuses integers above
//! 2^53 instead of rounding them as JCS requires.

use std::fmt;
use std::str::FromStr;

use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use warden_protocol::message::{as_str, elements, members};

use crate::error::RegistryError;
use crate::text::{escape_excerpt, hex};

/// Deepest nesting accepted in a manifest. Real schemas stay far below.
pub const MAX_DEPTH: usize = 64;

/// The RFC 8785 canonical form of a JSON value.
///
/// Refuses duplicate keys, lone surrogates, numbers outside the double
/// range and nesting deeper than [`MAX_DEPTH`].
pub fn canonical_json(v: &RawValue) -> Result<String, RegistryError> {
    let value = exact_value(v, 0)?;
    serde_jcs::to_string(&value).map_err(|_| RegistryError::InvalidJson("not serialisable"))
}

/// Canonical form of JSON text (convenience over [`canonical_json`]).
pub fn canonical_json_str(text: &str) -> Result<String, RegistryError> {
    let raw: &RawValue =
        serde_json::from_str(text).map_err(|_| RegistryError::InvalidJson("malformed JSON"))?;
    canonical_json(raw)
}

/// Parses raw JSON into a `Value` whose numbers are the nearest doubles of
/// their text, refusing what RFC 8785 cannot canonicalise.
pub(crate) fn exact_value(v: &RawValue, depth: usize) -> Result<Value, RegistryError> {
    if depth > MAX_DEPTH {
        return Err(RegistryError::TooDeep(MAX_DEPTH));
    }
    let text = v.get().trim_matches(|c: char| c.is_ascii_whitespace());
    match text.as_bytes().first() {
        Some(b'{') => {
            let entries = members(v).ok_or(RegistryError::InvalidJson("malformed object"))?;
            let mut map = Map::new();
            for (key, child) in entries {
                let child = exact_value(child, depth + 1)?;
                if map.contains_key(key.as_ref()) {
                    return Err(RegistryError::DuplicateKey(escape_excerpt(&key, 64)));
                }
                map.insert(key.into_owned(), child);
            }
            Ok(Value::Object(map))
        }
        Some(b'[') => {
            let items = elements(v).ok_or(RegistryError::InvalidJson("malformed array"))?;
            items
                .into_iter()
                .map(|item| exact_value(item, depth + 1))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        Some(b'"') => {
            as_str(v)
                .map(|s| Value::String(s.into_owned()))
                .ok_or(RegistryError::InvalidJson(
                    "malformed string or lone surrogate",
                ))
        }
        Some(b't') if text == "true" => Ok(Value::Bool(true)),
        Some(b'f') if text == "false" => Ok(Value::Bool(false)),
        Some(b'n') if text == "null" => Ok(Value::Null),
        Some(b'-' | b'0'..=b'9') => exact_number(text).map(Value::Number),
        _ => Err(RegistryError::InvalidJson("not a JSON value")),
    }
}

/// The nearest double to a JSON number's text (already validated as a JSON
/// number by serde_json when the `RawValue` was made).
fn exact_number(text: &str) -> Result<Number, RegistryError> {
    let valid = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if !valid {
        return Err(RegistryError::InvalidJson("malformed number"));
    }
    let f: f64 = text
        .parse()
        .map_err(|_| RegistryError::InvalidJson("malformed number"))?;
    Number::from_f64(f).ok_or_else(|| RegistryError::NumberOutOfRange(escape_excerpt(text, 32)))
}

/// SHA-256 of a manifest's canonical JSON. Displays as `sha256:<hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ManifestHash([u8; 32]);

impl ManifestHash {
    /// The hash of canonical JSON text (or any bytes).
    pub fn of(canonical: &str) -> Self {
        Self(Sha256::digest(canonical.as_bytes()).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 12 hex digits, for tables.
    pub fn short(&self) -> String {
        hex(&self.0[..6])
    }
}

impl fmt::Display for ManifestHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex(&self.0))
    }
}

impl fmt::Debug for ManifestHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ManifestHash {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RegistryError::InvalidHash(escape_excerpt(s, 80));
        let digits = s.strip_prefix("sha256:").ok_or_else(bad)?;
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.as_bytes().chunks_exact(2).enumerate() {
            let hi = hex_digit(pair[0]).ok_or_else(bad)?;
            let lo = hex_digit(pair[1]).ok_or_else(bad)?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Self(out))
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl serde::Serialize for ManifestHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ManifestHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Re-indents canonical JSON for people (two spaces, one member per line),
/// keeping every token exactly as canonicalisation wrote it, so that
/// `canonical_json(pretty(c)) == c`. Used for the lock file.
pub fn pretty_canonical(canonical: &str) -> String {
    let mut out = String::with_capacity(canonical.len() + canonical.len() / 4);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = canonical.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    if let Some(cl) = chars.next() {
                        out.push(cl);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[path = "canonical_tests.rs"]
mod tests;
