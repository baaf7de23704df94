//! Borrowed views of JSON-RPC messages over the original text.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::WireError;
use crate::strict::{self, Limits};

/// A request id: the raw JSON text (a string or an integer).
#[derive(Debug, Clone, Copy)]
pub struct Id<'a>(&'a RawValue);

impl PartialEq for Id<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}
impl Eq for Id<'_> {}

impl<'a> Id<'a> {
    /// The id exactly as the peer wrote it.
    pub fn raw(&self) -> &'a str {
        self.0.get()
    }
    pub fn raw_value(&self) -> &'a RawValue {
        self.0
    }
    /// The id as an unsigned integer, when it is one.
    pub fn as_u64(&self) -> Option<u64> {
        self.0.get().parse().ok()
    }
}

/// What a message is, decided by which envelope members it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Result,
    Error,
}

/// One JSON-RPC message, borrowed from the text it was parsed from.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The whole message text, exactly as received.
    pub text: &'a str,
    pub kind: Kind,
    pub id: Option<Id<'a>>,
    pub method: Option<Cow<'a, str>>,
    pub params: Option<&'a RawValue>,
    pub result: Option<&'a RawValue>,
    pub error: Option<&'a RawValue>,
}

/// A body: one message or a batch of them.
#[derive(Debug)]
pub enum Incoming<'a> {
    Single(Message<'a>),
    Batch(Vec<Message<'a>>),
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// Distinguishes `"id": null` (present) from an absent id.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// Parses a body: runs the strict pass, then the envelope of each message.
/// `allow_batch` comes from the negotiated protocol version.
pub fn parse<'a>(
    text: &'a str,
    limits: &Limits,
    allow_batch: bool,
) -> Result<Incoming<'a>, WireError> {
    strict::validate(text.as_bytes(), limits)?;
    parse_validated(text, allow_batch)
}

/// Parses the envelope of text that already passed [`strict::validate`].
pub fn parse_validated(text: &str, allow_batch: bool) -> Result<Incoming<'_>, WireError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        if !allow_batch {
            return Err(WireError::BatchNotAllowed(String::new()));
        }
        let items: Vec<&RawValue> = serde_json::from_str(text)
            .map_err(|_| WireError::InvalidEnvelope("batch must be an array"))?;
        if items.is_empty() {
            return Err(WireError::EmptyBatch);
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(parse_one(item.get())?);
        }
        return Ok(Incoming::Batch(out));
    }
    parse_one(text).map(Incoming::Single)
}

/// Parses one message envelope (text already validated by the strict pass).
pub fn parse_one(text: &str) -> Result<Message<'_>, WireError> {
    if !text.trim_start().starts_with('{') {
        return Err(WireError::InvalidEnvelope("message must be a JSON object"));
    }
    let env: Envelope<'_> = serde_json::from_str(text)
        .map_err(|_| WireError::InvalidEnvelope("malformed envelope member"))?;
    if env.jsonrpc.as_deref() != Some("2.0") {
        return Err(WireError::InvalidEnvelope("jsonrpc must be \"2.0\""));
    }
    let id = match env.id {
        None => None,
        Some(raw) => check_id(raw, env.error.is_some())?,
    };
    let kind = match (&env.method, env.result, env.error) {
        (Some(_), None, None) => {
            if env.id.is_some() {
                if id.is_none() {
                    return Err(WireError::InvalidEnvelope("request id must not be null"));
                }
                Kind::Request
            } else {
                Kind::Notification
            }
        }
        (None, Some(_), None) => {
            if id.is_none() {
                return Err(WireError::InvalidEnvelope("response must carry an id"));
            }
            Kind::Result
        }
        (None, None, Some(_)) => {
            if env.id.is_none() {
                return Err(WireError::InvalidEnvelope(
                    "error response must carry an id",
                ));
            }
            Kind::Error
        }
        _ => {
            return Err(WireError::InvalidEnvelope(
                "message must have exactly one of method, result or error",
            ))
        }
    };
    if let Some(p) = env.params {
        let first = p.get().as_bytes().first().copied();
        if !matches!(first, Some(b'{') | Some(b'[')) {
            return Err(WireError::InvalidEnvelope(
                "params must be an object or array",
            ));
        }
    }
    if let Some(m) = env.method.as_deref() {
        if m.is_empty() {
            return Err(WireError::InvalidEnvelope("method must not be empty"));
        }
    }
    if let Some(e) = env.error {
        if !e.get().starts_with('{') {
            return Err(WireError::InvalidEnvelope("error must be an object"));
        }
    }
    Ok(Message {
        text,
        kind,
        id,
        method: env.method,
        params: env.params,
        result: env.result,
        error: env.error,
    })
}

/// An id must be a string or an integer; `null` only on error responses.
fn check_id(raw: &RawValue, is_error: bool) -> Result<Option<Id<'_>>, WireError> {
    let s = raw.get();
    match s.as_bytes().first() {
        Some(b'"') => Ok(Some(Id(raw))),
        Some(b'-' | b'0'..=b'9') => {
            if s.contains(['.', 'e', 'E']) || s.parse::<i64>().is_err() && s.parse::<u64>().is_err()
            {
                Err(WireError::InvalidEnvelope(
                    "id must be a string or an integer",
                ))
            } else {
                Ok(Some(Id(raw)))
            }
        }
        Some(b'n') if is_error => Ok(None),
        _ => Err(WireError::InvalidEnvelope(
            "id must be a string or an integer",
        )),
    }
}

impl<'a> Message<'a> {
    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }

    /// A member of `params` (which must be an object), borrowed.
    pub fn param(&self, key: &str) -> Option<&'a RawValue> {
        self.params.and_then(|p| member(p, key))
    }

    /// A string member of `params`.
    pub fn param_str(&self, key: &str) -> Option<Cow<'a, str>> {
        self.param(key).and_then(as_str)
    }
}

/// A member of a JSON object, borrowed from its raw text. `None` when the
/// value is not an object or has no such key.
pub fn member<'a>(obj: &'a RawValue, key: &str) -> Option<&'a RawValue> {
    // One pass that keeps only the member asked for: no list of every
    // member is built (the stages ask for one member at a time, several
    // times per request). The whole object is still read, so an object
    // that does not parse has no members, as with [`members`].
    struct Find<'k>(&'k str);
    impl<'de> serde::de::Visitor<'de> for Find<'_> {
        type Value = Option<&'de RawValue>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                if found.is_none() && k == self.0 {
                    found = Some(m.next_value::<&'de RawValue>()?);
                } else {
                    m.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    use serde::Deserializer;
    if !obj.get().starts_with('{') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(obj.get());
    de.deserialize_map(Find(key)).ok().flatten()
}

/// The members of a JSON object in document order, borrowed.
pub fn members(obj: &RawValue) -> Option<Vec<(Cow<'_, str>, &RawValue)>> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<(Cow<'de, str>, &'de RawValue)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = m.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                out.push((k, v));
            }
            Ok(out)
        }
    }
    use serde::Deserializer;
    let mut de = serde_json::Deserializer::from_str(obj.get());
    de.deserialize_map(V).ok()
}

/// A JSON string value, unescaped (borrowed when it has no escapes).
pub fn as_str(v: &RawValue) -> Option<Cow<'_, str>> {
    if !v.get().starts_with('"') {
        return None;
    }
    if let Ok(s) = serde_json::from_str::<&str>(v.get()) {
        return Some(Cow::Borrowed(s));
    }
    serde_json::from_str::<String>(v.get()).ok().map(Cow::Owned)
}

/// The elements of a JSON array, borrowed.
pub fn elements(v: &RawValue) -> Option<Vec<&RawValue>> {
    if !v.get().starts_with('[') {
        return None;
    }
    serde_json::from_str(v.get()).ok()
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
