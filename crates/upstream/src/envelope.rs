//! The 2026-07-28 per-request envelope, spliced into the bytes the gateway
//! built.
//!
//! In the stateless era there is no handshake: every request says which
//! protocol version it speaks and what the client can do, in
//! `params._meta`. Warden owns exactly those keys. It sets the protocol
//! version to the upstream's (replacing any value), adds the client
//! capabilities and client info from its handshake params only where the
//! gateway did not put them (a modern client's own capabilities pass
//! through), and creates `params` or `_meta` when absent. Every other byte
//! reaches the upstream as the gateway wrote it.
//!
//! The HTTP routing headers (`Mcp-Method`, `Mcp-Name`) are read from the
//! same parse, so the body and the headers cannot disagree.

use serde_json::value::RawValue;
use warden_protocol::edit::json_string;
use warden_protocol::message::{self, member, members};
use warden_protocol::{EditSet, Kind, ProtocolVersion};

use crate::UpstreamError;

/// The only modern version Warden speaks.
pub(crate) const MODERN: ProtocolVersion = ProtocolVersion::V2026_07_28;

pub(crate) const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
pub(crate) const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
pub(crate) const CLIENT_INFO_KEY: &str = "io.modelcontextprotocol/clientInfo";
pub(crate) const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";

/// What every 2026-07-28 request of one upstream says about Warden: taken
/// once from the handshake params, as raw JSON text.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    version: &'static str,
    /// The handshake's `capabilities` object (`{}` when it has none: the
    /// key is required).
    capabilities: String,
    /// The handshake's `clientInfo` object (optional in the envelope).
    client_info: Option<String>,
}

/// A request ready for a 2026-07-28 upstream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Spliced {
    pub text: String,
    /// The `Mcp-Method` header value.
    pub method: String,
    /// The `Mcp-Name` header value (already encoded), for the methods that
    /// name something.
    pub name: Option<String>,
}

impl Envelope {
    /// Reads `capabilities` and `clientInfo` from the handshake params.
    pub(crate) fn from_handshake(params: &str) -> Result<Envelope, UpstreamError> {
        let config = |m: &str| UpstreamError::Config(format!("handshake params: {m}"));
        let raw: &RawValue = serde_json::from_str(params).map_err(|_| config("not valid JSON"))?;
        if !raw.get().starts_with('{') {
            return Err(config("not a JSON object"));
        }
        let object = |key: &str| -> Result<Option<String>, UpstreamError> {
            match member(raw, key) {
                None => Ok(None),
                Some(v) if v.get().starts_with('{') => Ok(Some(v.get().to_owned())),
                Some(_) => Err(config(&format!("{key} is not an object"))),
            }
        };
        Ok(Envelope {
            version: MODERN.as_str(),
            capabilities: object("capabilities")?.unwrap_or_else(|| "{}".to_owned()),
            client_info: object("clientInfo")?,
        })
    }

    pub(crate) fn version(&self) -> &'static str {
        self.version
    }

    /// The whole `_meta` object, for the requests Warden builds itself
    /// (`server/discover`, `subscriptions/listen`).
    pub(crate) fn meta(&self) -> String {
        format!("{{{}}}", self.members(true, true, true))
    }

    /// The envelope members asked for, comma-separated, without braces.
    fn members(&self, version: bool, capabilities: bool, info: bool) -> String {
        let mut parts = Vec::with_capacity(3);
        if version {
            parts.push(format!(
                "{}:{}",
                json_string(PROTOCOL_VERSION_KEY),
                json_string(self.version)
            ));
        }
        if capabilities {
            parts.push(format!(
                "{}:{}",
                json_string(CLIENT_CAPABILITIES_KEY),
                self.capabilities
            ));
        }
        if let (true, Some(ci)) = (info, &self.client_info) {
            parts.push(format!("{}:{}", json_string(CLIENT_INFO_KEY), ci));
        }
        parts.join(",")
    }

    /// Splices the envelope into a request the gateway built.
    pub(crate) fn splice(&self, text: &str) -> Result<Spliced, UpstreamError> {
        let invalid = |m: &str| UpstreamError::InvalidRequest(m.to_owned());
        let m = message::parse_one(text).map_err(|e| invalid(&e.to_string()))?;
        if m.kind != Kind::Request {
            return Err(invalid("not a request"));
        }
        let method = m.method().to_owned();
        let name = name_key(&method)
            .and_then(|k| m.param_str(k))
            .map(|n| encode_header_value(&n));
        let mut edits = EditSet::new();
        let placed = match m.params {
            None => {
                let whole: &RawValue =
                    serde_json::from_str(text).map_err(|_| invalid("not a JSON object"))?;
                edits.insert_first_member(
                    text,
                    whole,
                    format!(r#""params":{{"_meta":{}}},"#, self.meta()),
                )
            }
            Some(params) => {
                let fields = members(params)
                    .filter(|_| params.get().starts_with('{'))
                    .ok_or_else(|| invalid("params is not an object"))?;
                let mut metas = fields.iter().filter(|(k, _)| k == "_meta");
                match (metas.next(), metas.next()) {
                    (None, _) => {
                        let comma = if fields.is_empty() { "" } else { "," };
                        edits.insert_first_member(
                            text,
                            params,
                            format!(r#""_meta":{}{comma}"#, self.meta()),
                        )
                    }
                    (Some((_, meta)), None) => self.splice_meta(text, meta, &mut edits)?,
                    (Some(_), Some(_)) => return Err(invalid("params has _meta twice")),
                }
            }
        };
        let spliced = edits
            .apply(text)
            .filter(|_| placed)
            .ok_or_else(|| invalid("the envelope could not be spliced"))?;
        Ok(Spliced {
            text: spliced,
            method,
            name,
        })
    }

    /// Sets the version in an existing `_meta` and adds what is missing.
    /// Returns whether every edit found its place.
    fn splice_meta(
        &self,
        text: &str,
        meta: &RawValue,
        edits: &mut EditSet,
    ) -> Result<bool, UpstreamError> {
        let invalid = |m: &str| UpstreamError::InvalidRequest(m.to_owned());
        let fields = members(meta)
            .filter(|_| meta.get().starts_with('{'))
            .ok_or_else(|| invalid("params._meta is not an object"))?;
        let once = |key: &str| -> Result<Option<&RawValue>, UpstreamError> {
            let mut found = fields.iter().filter(|(k, _)| k == key).map(|(_, v)| *v);
            match (found.next(), found.next()) {
                (v, None) => Ok(v),
                (_, Some(_)) => Err(invalid("params._meta has an envelope key twice")),
            }
        };
        let version = once(PROTOCOL_VERSION_KEY)?;
        let has_capabilities = once(CLIENT_CAPABILITIES_KEY)?.is_some();
        let has_info = once(CLIENT_INFO_KEY)?.is_some();
        let mut placed = true;
        if let Some(v) = version {
            placed &= edits.replace_with_str(text, v, self.version);
        }
        let added = self.members(version.is_none(), !has_capabilities, !has_info);
        if !added.is_empty() {
            let comma = if fields.is_empty() { "" } else { "," };
            placed &= edits.insert_first_member(text, meta, format!("{added}{comma}"));
        }
        Ok(placed)
    }
}

/// The `params` key whose value the `Mcp-Name` header mirrors.
fn name_key(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// A value as an HTTP header value that the receiver can decode to the
/// exact string: plain visible ASCII without edge spaces passes verbatim;
/// anything else (and anything that already looks like the sentinel) is
/// wrapped as `=?base64?<standard base64 of the UTF-8>?=`.
pub(crate) fn encode_header_value(value: &str) -> String {
    let visible = value.bytes().all(|b| (0x20..=0x7e).contains(&b));
    let edge_space = value.starts_with(' ') || value.ends_with(' ');
    if visible && !edge_space && !looks_like_sentinel(value) {
        return value.to_owned();
    }
    format!("=?base64?{}?=", base64(value.as_bytes()))
}

fn looks_like_sentinel(value: &str) -> bool {
    value
        .strip_prefix("=?base64?")
        .is_some_and(|rest| rest.ends_with("?="))
}

/// Standard base64 with padding (RFC 4648 §4). Eight lines instead of a
/// dependency edge: the crate needs the encoder for one header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
