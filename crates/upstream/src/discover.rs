//! Era detection: what a `server/discover` answer says about the server.
//!
//! The policy is the reference client's (`mcp/client/_probe.py`): only
//! positive evidence adopts the modern era — a valid `DiscoverResult` whose
//! `supportedVersions` names 2026-07-28. Everything else a server can
//! answer falls back to `initialize`, except `-32022` (unsupported protocol
//! version): naming 2026-07-28 it asks for one more probe; naming only
//! modern versions Warden does not speak, it is a real incompatibility.
//! Network failures are not answers and never reach this module.

use serde_json::value::RawValue;
use warden_protocol::message::{self, as_str, elements, member};
use warden_protocol::{Kind, ProtocolVersion};

use crate::envelope::MODERN;
use crate::log_safe::log_safe;

/// JSON-RPC error code of an unsupported protocol version (2026-07-28).
pub(crate) const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// What a probe's answer means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A DiscoverResult naming 2026-07-28: the result object's text.
    Modern(String),
    /// No positive modern evidence: run `initialize`. Why, for the log.
    Fallback(String),
    /// `-32022` naming 2026-07-28 on a first probe: probe once more.
    Reprobe,
    /// `-32022` naming only modern versions Warden does not speak.
    Incompatible(String),
}

/// `server/discover` with the envelope `_meta`.
pub(crate) fn request(id: u64, meta: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"server/discover","params":{{"_meta":{meta}}}}}"#
    )
}

/// Judges the response to a probe (already strictly parsed once). `first`:
/// whether this was the first probe of this connection attempt.
pub(crate) fn judge(text: &str, first: bool) -> Verdict {
    let Ok(m) = message::parse_one(text) else {
        return Verdict::Fallback("unreadable answer".into());
    };
    if m.kind == Kind::Error {
        let Some(error) = m.error else {
            return Verdict::Fallback("unreadable error".into());
        };
        return judge_error(error, first);
    }
    let Some(result) = m.result.filter(|r| r.get().starts_with('{')) else {
        return Verdict::Fallback("the result is not an object".into());
    };
    let versions = match discover_result_versions(result) {
        Ok(v) => v,
        Err(why) => return Verdict::Fallback(format!("not a DiscoverResult: {why}")),
    };
    if versions.iter().any(|v| v == MODERN.as_str()) {
        Verdict::Modern(result.get().to_owned())
    } else {
        Verdict::Fallback("supportedVersions does not name 2026-07-28".into())
    }
}

/// An initialize answer of `-32022` naming 2026-07-28 is modern evidence
/// too: the caller probes once more.
pub(crate) fn names_modern_as_supported(text: &str) -> bool {
    let Ok(m) = message::parse_one(text) else {
        return false;
    };
    match (m.kind, m.error) {
        (Kind::Error, Some(e)) => {
            error_code(e) == Some(UNSUPPORTED_PROTOCOL_VERSION)
                && supported(e).is_some_and(|s| s.iter().any(|v| v == MODERN.as_str()))
        }
        _ => false,
    }
}

/// Whether a response is the `-32022` error: the server no longer accepts
/// the version Warden adopted.
pub(crate) fn is_unsupported_version(text: &str) -> bool {
    message::parse_one(text).is_ok_and(|m| {
        m.kind == Kind::Error && m.error.and_then(error_code) == Some(UNSUPPORTED_PROTOCOL_VERSION)
    })
}

fn judge_error(error: &RawValue, first: bool) -> Verdict {
    if error_code(error) != Some(UNSUPPORTED_PROTOCOL_VERSION) {
        return Verdict::Fallback(format!(
            "server/discover refused: {}",
            log_safe(error.get().as_bytes(), 200)
        ));
    }
    let supported = supported(error);
    let mutual = supported
        .as_ref()
        .is_some_and(|s| s.iter().any(|v| v == MODERN.as_str()));
    if mutual && first {
        return Verdict::Reprobe;
    }
    match supported {
        Some(s) if !s.iter().any(|v| is_handshake_version(v)) => Verdict::Incompatible(format!(
            "the server supports only {}",
            log_safe(s.join(", ").as_bytes(), 200)
        )),
        _ => Verdict::Fallback("the server does not support 2026-07-28".into()),
    }
}

fn error_code(error: &RawValue) -> Option<i64> {
    member(error, "code")?.get().parse().ok()
}

/// `error.data.supported` of a `-32022`: a list of strings, else `None`
/// (not actionable), as `UnsupportedProtocolVersionErrorData` validates it.
fn supported(error: &RawValue) -> Option<Vec<String>> {
    let data = member(error, "data")?;
    member(data, "requested").and_then(as_str)?;
    elements(member(data, "supported")?)?
        .into_iter()
        .map(|v| as_str(v).map(|s| s.into_owned()))
        .collect()
}

fn is_handshake_version(v: &str) -> bool {
    ProtocolVersion::parse(v).is_some_and(|v| v.is_session_era())
}

/// Checks the members a `DiscoverResult` requires; its `supportedVersions`.
fn discover_result_versions(result: &RawValue) -> Result<Vec<String>, &'static str> {
    let versions = member(result, "supportedVersions")
        .and_then(elements)
        .ok_or("supportedVersions is not an array")?
        .into_iter()
        .map(|v| as_str(v).map(|s| s.into_owned()))
        .collect::<Option<Vec<String>>>()
        .ok_or("supportedVersions holds a non-string")?;
    let capabilities = member(result, "capabilities").ok_or("no capabilities")?;
    if !capabilities.get().starts_with('{') {
        return Err("capabilities is not an object");
    }
    for key in ["tools", "prompts", "resources"] {
        if let Some(c) = member(capabilities, key) {
            if !c.get().starts_with('{') {
                return Err("a capability is not an object");
            }
            if member(c, "listChanged").is_some_and(|l| !matches!(l.get(), "true" | "false")) {
                return Err("listChanged is not a boolean");
            }
        }
    }
    if let Some(i) = member(result, "instructions") {
        if i.get() != "null" && as_str(i).is_none() {
            return Err("instructions is not a string");
        }
    }
    Ok(versions)
}

/// The `subscriptions/listen` filter for the list changes a DiscoverResult
/// declares (`capabilities.<kind>.listChanged: true`); `None` when it
/// declares none.
pub(crate) fn listen_filter(result: &str) -> Option<String> {
    let result: &RawValue = serde_json::from_str(result).ok()?;
    let capabilities = member(result, "capabilities")?;
    let wanted: Vec<String> = [
        ("tools", "toolsListChanged"),
        ("prompts", "promptsListChanged"),
        ("resources", "resourcesListChanged"),
    ]
    .into_iter()
    .filter(|(kind, _)| {
        member(capabilities, kind)
            .and_then(|c| member(c, "listChanged"))
            .is_some_and(|l| l.get() == "true")
    })
    .map(|(_, field)| format!(r#""{field}":true"#))
    .collect();
    (!wanted.is_empty()).then(|| format!("{{{}}}", wanted.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(r: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":1,"result":{r}}}"#)
    }

    fn error(e: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":1,"error":{e}}}"#)
    }

    #[test]
    fn a_discover_result_naming_the_modern_version_is_adopted() {
        let r = r#"{"supportedVersions":["2026-07-28"],"capabilities":{"tools":{"listChanged":true}},"instructions":"hi","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"s","version":"1"}}}"#;
        assert_eq!(judge(&result(r), true), Verdict::Modern(r.to_owned()));
    }

    #[test]
    fn anything_else_falls_back() {
        for text in [
            result(r#"{"supportedVersions":["2025-11-25"],"capabilities":{}}"#),
            result(r#"{"supportedVersions":"2026-07-28","capabilities":{}}"#),
            result(r#"{"supportedVersions":["2026-07-28",1],"capabilities":{}}"#),
            result(r#"{"supportedVersions":["2026-07-28"]}"#),
            result(r#"{"supportedVersions":["2026-07-28"],"capabilities":[]}"#),
            result(r#"{"supportedVersions":["2026-07-28"],"capabilities":{"tools":1}}"#),
            result(r#"{"supportedVersions":["2026-07-28"],"capabilities":{},"instructions":5}"#),
            result("[]"),
            error(r#"{"code":-32601,"message":"Method not found"}"#),
            error(r#"{"code":-32000,"message":"Bad Request: Server not initialized"}"#),
            // -32022 without a usable list, or naming a handshake version.
            error(r#"{"code":-32022,"message":"x"}"#),
            error(
                r#"{"code":-32022,"message":"x","data":{"supported":["2025-06-18","2027-01-01"],"requested":"2026-07-28"}}"#,
            ),
            "garbage".to_owned(),
        ] {
            assert!(matches!(judge(&text, true), Verdict::Fallback(_)), "{text}");
        }
    }

    #[test]
    fn unsupported_version_errors() {
        let naming_modern = error(
            r#"{"code":-32022,"message":"x","data":{"supported":["2026-07-28"],"requested":"2026-07-28"}}"#,
        );
        assert_eq!(judge(&naming_modern, true), Verdict::Reprobe);
        // Second time round the same answer is an incompatibility.
        assert!(matches!(
            judge(&naming_modern, false),
            Verdict::Incompatible(_)
        ));
        let disjoint = error(
            r#"{"code":-32022,"message":"x","data":{"supported":["2027-01-01"],"requested":"2026-07-28"}}"#,
        );
        assert!(matches!(judge(&disjoint, true), Verdict::Incompatible(_)));
        assert!(names_modern_as_supported(&naming_modern));
        assert!(!names_modern_as_supported(&disjoint));
        assert!(is_unsupported_version(&disjoint));
        assert!(!is_unsupported_version(&error(
            r#"{"code":-32601,"message":"x"}"#
        )));
        assert!(!is_unsupported_version(&result("{}")));
    }

    #[test]
    fn listen_filters() {
        assert_eq!(
            listen_filter(
                r#"{"capabilities":{"tools":{"listChanged":true},"prompts":{"listChanged":false},"resources":{"listChanged":true,"subscribe":true}}}"#
            )
            .as_deref(),
            Some(r#"{"toolsListChanged":true,"resourcesListChanged":true}"#)
        );
        assert_eq!(listen_filter(r#"{"capabilities":{"tools":{}}}"#), None);
        assert_eq!(listen_filter("[]"), None);
    }

    #[test]
    fn the_probe_carries_the_envelope() {
        let text = request(4, r#"{"k":1}"#);
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","id":4,"method":"server/discover","params":{"_meta":{"k":1}}}"#
        );
    }
}
