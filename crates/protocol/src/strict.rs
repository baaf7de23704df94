//! The strict pass: one walk over the whole document that refuses what a
//! lenient parser would silently accept.
//!
//! serde_json keeps the *last* of two duplicate keys while other parsers keep
//! the first, so a message with `"name"` twice could be checked by Warden
//! under one value and executed upstream under the other. The same goes for
//! case variants of protocol keys (`"Method"` beside `"method"`) in peers that
//! match keys case-insensitively. Both are refused here, before any stage
//! sees the message, together with excessive nesting.
//!
//! This is hand-written over serde's visitor API because no maintained crate
//! offers a duplicate-rejecting, depth-limited validating walk that borrows
//! from the input.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::WireError;

/// Wire limits, compiled from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message body, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted nesting of arrays and objects (the top level is 1).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 4 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// Keys whose case variants are refused in the envelope, in `params`, and
/// in `params._meta`.
const PROTOCOL_KEYS: &[&str] = &[
    "jsonrpc",
    "id",
    "method",
    "params",
    "result",
    "error",
    "name",
    "arguments",
    "uri",
    "cursor",
    "_meta",
    "progressToken",
    "protocolVersion",
    "capabilities",
    "requestId",
    "code",
    "message",
];

/// Validates `bytes` against the limits: size, well-formed JSON (one value,
/// nothing after it), depth, duplicate keys, case-variant protocol keys.
pub fn validate(bytes: &[u8], limits: &Limits) -> Result<(), WireError> {
    if bytes.len() > limits.max_bytes {
        return Err(WireError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // Our own depth limit is enforced below; serde_json's recursion guard
    // (128) stays on as a backstop for limits configured above it.
    let found = RefCell::new(None);
    let seed = Walk {
        depth: 1,
        limits,
        context: Context::Envelope,
        found: &found,
    };
    if let Err(e) = seed.deserialize(&mut de) {
        // Our own refusals abort the walk through serde's error channel;
        // the reason itself is kept aside.
        return Err(found
            .into_inner()
            .unwrap_or_else(|| WireError::Parse(short_serde_error(&e))));
    }
    de.end()
        .map_err(|e| WireError::Parse(short_serde_error(&e)))?;
    Ok(())
}

/// A serde_json error without echoing input: category plus position.
fn short_serde_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "invalid JSON value",
        serde_json::error::Category::Io => "read error",
    };
    if e.to_string().contains("recursion limit") {
        return "nesting too deep".to_owned();
    }
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// Where in the message an object sits, for the case-variant rule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Envelope,
    Params,
    Meta,
    Other,
}

struct Walk<'l> {
    depth: usize,
    limits: &'l Limits,
    context: Context,
    found: &'l RefCell<Option<WireError>>,
}

impl Walk<'_> {
    fn refuse<E: de::Error>(&self, e: WireError) -> Result<(), E> {
        *self.found.borrow_mut() = Some(e);
        Err(E::custom("refused"))
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth > self.limits.max_depth {
            return self.refuse(WireError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        // A batch's elements are envelopes; any other array's are not.
        let child_context = if self.context == Context::Envelope && self.depth == 1 {
            Context::Envelope
        } else {
            Context::Other
        };
        loop {
            let child = Walk {
                depth: self.depth + 1,
                limits: self.limits,
                context: child_context,
                found: self.found,
            };
            if seq.next_element_seed(child)?.is_none() {
                return Ok(());
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth > self.limits.max_depth {
            return self.refuse(WireError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        let mut keys: Vec<std::borrow::Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key::<KeyCapture<'de>>()? {
            let key = key.0;
            if keys.contains(&key) {
                return self.refuse(WireError::DuplicateKey(truncate_key(&key)));
            }
            if self.context != Context::Other {
                if let Some(canon) = PROTOCOL_KEYS
                    .iter()
                    .find(|p| p.eq_ignore_ascii_case(&key) && **p != key)
                {
                    if keys.iter().any(|k| k == canon) {
                        return self.refuse(WireError::CaseVariantKey(truncate_key(&key), canon));
                    }
                }
                if let Some(canon) = PROTOCOL_KEYS.iter().find(|p| **p == key) {
                    if let Some(variant) = keys
                        .iter()
                        .find(|k| k.eq_ignore_ascii_case(canon) && **k != *canon)
                    {
                        return self
                            .refuse(WireError::CaseVariantKey(truncate_key(variant), canon));
                    }
                }
            }
            let child_context = match (self.context, key.as_ref()) {
                (Context::Envelope, "params" | "result" | "error") => Context::Params,
                (Context::Params, "_meta") => Context::Meta,
                _ => Context::Other,
            };
            let child = Walk {
                depth: self.depth + 1,
                limits: self.limits,
                context: child_context,
                found: self.found,
            };
            map.next_value_seed(child)?;
            keys.push(key);
        }
        Ok(())
    }
}

fn truncate_key(k: &str) -> String {
    k.chars().take(64).collect()
}

/// A key, borrowed from the input when it has no escapes.
struct KeyCapture<'de>(std::borrow::Cow<'de, str>);

impl<'de> de::Deserialize<'de> for KeyCapture<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyCapture<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(KeyCapture(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KeyCapture(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
#[path = "strict_tests.rs"]
mod tests;
