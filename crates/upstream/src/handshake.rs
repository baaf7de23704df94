//! The `initialize` exchange every transport runs after connecting.

use serde_json::value::RawValue;
use warden_protocol::message::{self, as_str, member};
use warden_protocol::{Kind, ProtocolVersion};

use crate::log_safe::log_safe;
use crate::{Response, UpstreamError};

/// Sent once the initialize result is accepted.
pub(crate) const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// What a successful handshake yields.
#[derive(Debug)]
pub(crate) struct Handshaken {
    /// The initialize result, or the DiscoverResult of a modern upstream.
    pub result: String,
    pub protocol_version: String,
    /// Whether the upstream speaks the stateless 2026-07-28 protocol.
    pub modern: bool,
}

/// The initialize request with our id spliced in. The params come from the
/// gateway; a params text that is not a JSON object is a configuration error.
pub(crate) fn initialize_request(id: u64, params: &str) -> Result<String, UpstreamError> {
    let raw: &RawValue = serde_json::from_str(params)
        .map_err(|_| UpstreamError::Config("initialize params are not valid JSON".into()))?;
    if !raw.get().starts_with('{') {
        return Err(UpstreamError::Config(
            "initialize params must be a JSON object".into(),
        ));
    }
    Ok(warden_protocol::error::request(
        Some(&id.to_string()),
        "initialize",
        Some(raw),
    ))
}

/// Checks the initialize response: a result carrying a protocol version
/// Warden speaks.
pub(crate) fn accept(response: &Response) -> Result<Handshaken, UpstreamError> {
    let m = message::parse_one(&response.text)
        .map_err(|e| UpstreamError::Protocol(format!("initialize response: {e}")))?;
    if m.kind == Kind::Error {
        let detail = m.error.map(|e| e.get()).unwrap_or("");
        return Err(UpstreamError::Protocol(format!(
            "initialize refused: {}",
            log_safe(detail.as_bytes(), 256)
        )));
    }
    let result = m
        .result
        .filter(|r| r.get().starts_with('{'))
        .ok_or_else(|| UpstreamError::Protocol("initialize result is not an object".into()))?;
    let version = member(result, "protocolVersion")
        .and_then(as_str)
        .ok_or_else(|| {
            UpstreamError::Protocol("initialize result has no protocolVersion string".into())
        })?;
    match ProtocolVersion::parse(&version) {
        Some(v) if v.is_session_era() => Ok(Handshaken {
            result: result.get().to_owned(),
            protocol_version: v.as_str().to_owned(),
            modern: false,
        }),
        _ => Err(UpstreamError::Protocol(format!(
            "unsupported protocol version {}",
            log_safe(version.as_bytes(), 64)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(text: &str) -> Response {
        Response {
            id: 1,
            text: text.to_owned(),
            events_before: 0,
        }
    }

    #[test]
    fn builds_the_request_around_raw_params() {
        let t = initialize_request(7, r#"{"protocolVersion":"2025-06-18","x":[1]}"#).unwrap();
        assert_eq!(
            t,
            r#"{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":"2025-06-18","x":[1]}}"#
        );
        assert!(matches!(
            initialize_request(1, "[1]"),
            Err(UpstreamError::Config(_))
        ));
        assert!(matches!(
            initialize_request(1, "{"),
            Err(UpstreamError::Config(_))
        ));
    }

    #[test]
    fn accepts_known_versions_only() {
        let ok = accept(&response(
            r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-03-26","capabilities":{}}}"#,
        ))
        .unwrap();
        assert_eq!(ok.protocol_version, "2025-03-26");
        assert_eq!(
            ok.result,
            r#"{"protocolVersion":"2025-03-26","capabilities":{}}"#
        );
        for bad in [
            r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"1999-01-01"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":20250326}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":[]}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"no"}}"#,
        ] {
            assert!(
                matches!(accept(&response(bad)), Err(UpstreamError::Protocol(_))),
                "{bad}"
            );
        }
    }
}
