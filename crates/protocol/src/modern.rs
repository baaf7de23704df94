//! The 2026-07-28 ("modern", stateless) era: the per-request envelope in
//! `params._meta`, the HTTP headers that mirror the body, and the rules a
//! server applies before it dispatches (the "validation ladder").
//!
//! Pure functions over validated views: no I/O. The transport collects the
//! headers, this module decides; the gateway uses the same header codec to
//! emit `Mcp-Name` / `Mcp-Param-*` towards modern upstreams, so both
//! directions read one source of truth.

use base64::Engine as _;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::ErrorCode;
use crate::message::{as_str, member, Message};
use crate::version::ProtocolVersion;

pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

pub const HEADER_PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const HEADER_METHOD: &str = "mcp-method";
pub const HEADER_NAME: &str = "mcp-name";
pub const HEADER_PARAM_PREFIX: &str = "mcp-param-";

/// The modern versions Warden serves.
pub fn supported_versions() -> Vec<&'static str> {
    ProtocolVersion::ALL
        .iter()
        .filter(|v| !v.is_session_era())
        .map(|v| v.as_str())
        .collect()
}

/// The params member mirrored by `Mcp-Name` for a method, if any.
pub fn name_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Client methods that exist in the session era but not in 2026-07-28.
pub fn removed_in_modern(method: &str) -> bool {
    matches!(
        method,
        "initialize"
            | "ping"
            | "logging/setLevel"
            | "resources/subscribe"
            | "resources/unsubscribe"
            | "tasks/get"
            | "tasks/list"
            | "tasks/result"
            | "tasks/cancel"
    )
}

/// MCP's log levels (RFC 5424), least severe first.
pub const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// The severity rank of a log level (`debug` lowest).
pub fn log_level_rank(level: &str) -> Option<u8> {
    LOG_LEVELS.iter().position(|l| *l == level).map(|p| p as u8)
}

/// A request refused before dispatch: a JSON-RPC code, its message, and the
/// error `data` where the spec defines one.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
    pub data: Option<Value>,
}

impl Rejection {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The HTTP status the 2026-07-28 transport gives this error.
    pub fn http_status(&self) -> u16 {
        http_status_for(self.code.code())
    }
}

/// The HTTP status for a JSON-RPC error code on the 2026-07-28 wire
/// (parse, invalid request/params and the three envelope errors are 400,
/// method not found 404, everything else 200).
pub fn http_status_for(code: i64) -> u16 {
    match code {
        -32700 | -32600 | -32602 | -32020 | -32021 | -32022 => 400,
        -32601 => 404,
        _ => 200,
    }
}

/// The envelope of a valid modern request.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub version: ProtocolVersion,
    pub client_capabilities: &'a RawValue,
    pub client_info: Option<&'a RawValue>,
}

/// The request's headers as the ladder needs them: each routing header's
/// value (OWS trimmed), `None` when absent.
#[derive(Debug, Clone, Default)]
pub struct RoutingHeaders<'h> {
    pub protocol_version: Option<&'h str>,
    pub method: Option<&'h str>,
    pub name: Option<&'h str>,
}

/// Runs the ladder over a request: the envelope pair in `params._meta`
/// (else -32602), the headers against the body (else -32020), the version
/// served (else -32022 with `data.supported`). First failure wins, in the
/// spec's order.
pub fn classify<'a>(
    msg: &Message<'a>,
    headers: &RoutingHeaders<'_>,
) -> Result<Envelope<'a>, Rejection> {
    let meta = msg
        .param("_meta")
        .filter(|m| m.get().starts_with('{'))
        .ok_or_else(|| {
            Rejection::new(
                ErrorCode::InvalidParams,
                format!(
                    "params._meta must be an object carrying {META_PROTOCOL_VERSION:?} and {META_CLIENT_CAPABILITIES:?}"
                ),
            )
        })?;
    let version = member(meta, META_PROTOCOL_VERSION);
    let caps = member(meta, META_CLIENT_CAPABILITIES);
    let missing: Vec<&str> = [
        (META_PROTOCOL_VERSION, version.is_none()),
        (META_CLIENT_CAPABILITIES, caps.is_none()),
    ]
    .iter()
    .filter(|(_, m)| *m)
    .map(|(k, _)| *k)
    .collect();
    let (Some(version), Some(caps)) = (version, caps) else {
        return Err(Rejection::new(
            ErrorCode::InvalidParams,
            format!(
                "params._meta is missing the required key(s): {}",
                missing.join(", ")
            ),
        ));
    };
    let version_str = as_str(version);
    match (headers.protocol_version, version_str.as_deref()) {
        (Some(h), Some(v)) if h == v => {}
        (None, _) => {
            return Err(Rejection::new(
                ErrorCode::HeaderMismatch,
                "missing MCP-Protocol-Version header",
            ))
        }
        _ => {
            return Err(Rejection::new(
                ErrorCode::HeaderMismatch,
                "MCP-Protocol-Version header does not match params._meta's protocol version",
            ))
        }
    }
    if headers.method != Some(msg.method()) {
        return Err(Rejection::new(
            ErrorCode::HeaderMismatch,
            "Mcp-Method header does not match the request's method",
        ));
    }
    if let Some(key) = name_param(msg.method()) {
        if let Some(body) = msg.param(key) {
            let body = as_str(body);
            let header = headers.name.and_then(decode_header_value);
            if body.is_none() || header.as_deref() != body.as_deref() {
                return Err(Rejection::new(
                    ErrorCode::HeaderMismatch,
                    format!("Mcp-Name header does not match params.{key}"),
                ));
            }
        }
    }
    let Some(v) = version_str else {
        return Err(Rejection::new(
            ErrorCode::InvalidParams,
            "the protocol version in params._meta must be a string",
        ));
    };
    match ProtocolVersion::parse(&v) {
        Some(pv) if !pv.is_session_era() => Ok(Envelope {
            version: pv,
            client_capabilities: caps,
            client_info: member(meta, META_CLIENT_INFO),
        }),
        _ => Err(unsupported_version(&v)),
    }
}

/// -32022 naming the versions served.
pub fn unsupported_version(requested: &str) -> Rejection {
    Rejection {
        code: ErrorCode::UnsupportedProtocolVersion,
        message: "Unsupported protocol version".into(),
        data: Some(serde_json::json!({
            "supported": supported_versions(),
            "requested": requested,
        })),
    }
}

static B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A header value as sent: printable ASCII without edge whitespace passes
/// verbatim; anything else is wrapped as `=?base64?…?=` (UTF-8).
pub fn encode_header_value(value: &str) -> String {
    let plain = value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && value.trim() == value
        && !is_sentinel(value);
    if plain {
        value.to_owned()
    } else {
        format!("=?base64?{}?=", B64.encode(value.as_bytes()))
    }
}

fn is_sentinel(v: &str) -> bool {
    v.starts_with("=?base64?") && v.ends_with("?=") && v.len() >= 11
}

/// The inverse of [`encode_header_value`], OWS trimmed first (RFC 9110
/// §5.5). A malformed sentinel (bad or non-canonical base64, bad UTF-8) is
/// `None`, so it never matches a body value by accident.
pub fn decode_header_value(value: &str) -> Option<String> {
    let value = value.trim_matches([' ', '\t']);
    if !is_sentinel(value) {
        return Some(value.to_owned());
    }
    let payload = &value["=?base64?".len()..value.len() - 2];
    let bytes = B64.decode(payload).ok()?;
    if B64.encode(&bytes) != payload {
        return None;
    }
    String::from_utf8(bytes).ok()
}

/// The `Mcp-Param-*` declarations of a tool's `inputSchema`: for each
/// property reachable from the root through `properties` alone that
/// carries `x-mcp-header`, its path and header token. `None` when an
/// annotation is invalid (then, as the spec says, no header is emitted or
/// validated for that tool).
pub fn param_declarations(schema: &Value) -> Option<Vec<(Vec<String>, String, String)>> {
    let mut out: Vec<(Vec<String>, String, String)> = Vec::new();
    let mut stack: Vec<(Option<Vec<String>>, &Value)> = vec![(Some(Vec::new()), schema)];
    while let Some((path, node)) = stack.pop() {
        let Some(obj) = node.as_object() else {
            continue;
        };
        if let Some(token) = obj.get("x-mcp-header") {
            let path = path.clone().filter(|p| !p.is_empty())?;
            let token = token.as_str().filter(|t| is_token(t))?;
            let ty = obj.get("type").and_then(Value::as_str)?;
            if !matches!(ty, "string" | "integer" | "boolean") {
                return None;
            }
            if out.iter().any(|(_, t, _)| t.eq_ignore_ascii_case(token)) {
                return None;
            }
            out.push((path, token.to_owned(), ty.to_owned()));
        }
        for (kw, val) in obj {
            match kw.as_str() {
                "properties" => {
                    if let Some(props) = val.as_object() {
                        for (name, sub) in props {
                            let p = path.as_ref().map(|p| {
                                let mut p = p.clone();
                                p.push(name.clone());
                                p
                            });
                            stack.push((p, sub));
                        }
                    }
                }
                "items"
                | "contains"
                | "unevaluatedItems"
                | "additionalProperties"
                | "propertyNames"
                | "unevaluatedProperties"
                | "not"
                | "if"
                | "then"
                | "else"
                | "contentSchema" => stack.push((None, val)),
                "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                    if let Some(a) = val.as_array() {
                        stack.extend(a.iter().map(|s| (None, s)));
                    }
                }
                "patternProperties" | "dependentSchemas" | "$defs" | "definitions" => {
                    if let Some(m) = val.as_object() {
                        stack.extend(m.values().map(|s| (None, s)));
                    }
                }
                _ => {}
            }
        }
    }
    Some(out)
}

fn is_token(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn value_at<'v>(args: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut node = args;
    for k in path {
        node = node.as_object()?.get(k)?;
    }
    (!node.is_null()).then_some(node)
}

fn render(v: &Value) -> Option<String> {
    match v {
        Value::Bool(b) => Some(b.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The `Mcp-Param-*` headers a `tools/call` with these arguments carries
/// (what Warden sends a modern upstream).
pub fn param_headers(schema: &Value, args: &Value) -> Vec<(String, String)> {
    let Some(decls) = param_declarations(schema) else {
        return Vec::new();
    };
    decls
        .iter()
        .filter_map(|(path, token, _)| {
            let v = render(value_at(args, path)?)?;
            Some((format!("Mcp-Param-{token}"), encode_header_value(&v)))
        })
        .collect()
}

/// Checks a `tools/call`'s `Mcp-Param-*` headers (lower-cased names) against
/// its arguments: each declared header and its argument present together
/// and equal after decoding (integers compare numerically), no duplicates.
/// Headers the schema does not declare are not checked (and forwarded).
pub fn validate_param_headers(
    schema: &Value,
    args: &Value,
    headers: &[(String, String)],
) -> Result<(), Rejection> {
    let Some(decls) = param_declarations(schema) else {
        return Ok(());
    };
    for (path, token, ty) in decls {
        let name = format!("{HEADER_PARAM_PREFIX}{}", token.to_ascii_lowercase());
        let mut found = headers.iter().filter(|(k, _)| *k == name);
        let raw = found.next().map(|(_, v)| v.as_str());
        let shown = format!("Mcp-Param-{token}");
        let arg = path.join(".");
        if raw.is_some() && found.next().is_some() {
            return Err(Rejection::new(
                ErrorCode::HeaderMismatch,
                format!("{shown} header appears more than once"),
            ));
        }
        let value = value_at(args, &path);
        let rendered = value.and_then(render);
        match (raw, value, rendered) {
            (None, None, _) | (None, Some(_), None) => {}
            (Some(_), None, _) => {
                return Err(Rejection::new(
                    ErrorCode::HeaderMismatch,
                    format!("{shown} header is present but argument {arg:?} is absent"),
                ))
            }
            (None, Some(_), Some(_)) => {
                return Err(Rejection::new(
                    ErrorCode::HeaderMismatch,
                    format!("{shown} header is missing but argument {arg:?} is present"),
                ))
            }
            (Some(_), Some(_), None) => {
                return Err(Rejection::new(
                    ErrorCode::HeaderMismatch,
                    format!("{shown} header does not match argument {arg:?}"),
                ))
            }
            (Some(raw), Some(v), Some(rendered)) => {
                let Some(decoded) = decode_header_value(raw) else {
                    return Err(Rejection::new(
                        ErrorCode::HeaderMismatch,
                        format!("{shown} header carries a malformed base64 value"),
                    ));
                };
                let same = if ty == "integer" && v.is_number() {
                    integer_equal(&decoded, v)
                } else {
                    decoded == rendered
                };
                if !same {
                    return Err(Rejection::new(
                        ErrorCode::HeaderMismatch,
                        format!("{shown} header does not match argument {arg:?}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `42` matches `42.0`; exact on the digits, no float round trip.
fn integer_equal(header: &str, v: &Value) -> bool {
    let (whole, frac) = header.split_once('.').unwrap_or((header, ""));
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b == b'0')
    {
        return false;
    }
    let body = match v.as_i64().map(|i| i.to_string()).or_else(|| {
        v.as_u64().map(|u| u.to_string()).or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| format!("{}", f as i64))
        })
    }) {
        Some(b) => b,
        None => return false,
    };
    let canon = |s: &str| {
        let (neg, d) = s.strip_prefix('-').map_or((false, s), |d| (true, d));
        let d = d.trim_start_matches('0');
        let d = if d.is_empty() { "0" } else { d };
        (neg && d != "0", d.to_owned())
    };
    canon(whole) == canon(&body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse_one;

    fn hdr<'a>(v: Option<&'a str>, m: Option<&'a str>, n: Option<&'a str>) -> RoutingHeaders<'a> {
        RoutingHeaders {
            protocol_version: v,
            method: m,
            name: n,
        }
    }

    const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a b","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

    #[test]
    fn the_ladder_in_order() {
        let m = parse_one(CALL).unwrap();
        let v = Some("2026-07-28");
        let ok = classify(&m, &hdr(v, Some("tools/call"), Some("a b"))).unwrap();
        assert_eq!(ok.version, ProtocolVersion::V2026_07_28);
        let b64 = encode_header_value(" a b");
        assert!(b64.starts_with("=?base64?"));
        // Whitespace around the value is OWS; the encoded form decodes.
        assert!(classify(&m, &hdr(v, Some("tools/call"), Some("  a b  "))).is_ok());
        let enc = format!("=?base64?{}?=", B64.encode("a b"));
        assert!(classify(&m, &hdr(v, Some("tools/call"), Some(&enc))).is_ok());
        for (h, code) in [
            (hdr(v, Some("tools/list"), Some("a b")), -32020),
            (hdr(v, None, Some("a b")), -32020),
            (hdr(v, Some("tools/call"), None), -32020),
            (hdr(v, Some("tools/call"), Some("other")), -32020),
            (hdr(v, Some("TOOLS/CALL"), Some("a b")), -32020),
            (hdr(None, Some("tools/call"), Some("a b")), -32020),
            (
                hdr(Some("2025-11-25"), Some("tools/call"), Some("a b")),
                -32020,
            ),
            (hdr(v, Some("tools/call"), Some("=?base64?!!?=")), -32020),
        ] {
            assert_eq!(classify(&m, &h).unwrap_err().code.code(), code, "{h:?}");
        }
        let no_meta =
            parse_one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#).unwrap();
        let r = classify(&no_meta, &hdr(v, Some("tools/list"), None)).unwrap_err();
        assert_eq!((r.code.code(), r.http_status()), (-32602, 400));
        let half = parse_one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#).unwrap();
        let r = classify(&half, &hdr(v, Some("tools/list"), None)).unwrap_err();
        assert!(r.message.contains("clientCapabilities"), "{}", r.message);
        let future = parse_one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}"#).unwrap();
        let r = classify(&future, &hdr(Some("2099-01-01"), Some("tools/list"), None)).unwrap_err();
        assert_eq!(r.code.code(), -32022);
        assert_eq!(r.data.unwrap()["supported"][0], "2026-07-28");
        let old = parse_one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25","io.modelcontextprotocol/clientCapabilities":{}}}}"#).unwrap();
        let r = classify(&old, &hdr(Some("2025-11-25"), Some("tools/list"), None)).unwrap_err();
        assert_eq!(r.code.code(), -32022);
    }

    #[test]
    fn header_codec_round_trips() {
        for v in ["plain", " edge", "naïve", "tab\there", "=?base64?x?=", ""] {
            assert_eq!(
                decode_header_value(&encode_header_value(v)).as_deref(),
                Some(v)
            );
        }
        assert_eq!(encode_header_value("plain"), "plain");
        // Non-canonical base64 (trailing bits set) is refused.
        assert_eq!(decode_header_value("=?base64?YR==?="), None);
        assert_eq!(decode_header_value("=?base64?/w==?="), None, "not UTF-8");
    }

    #[test]
    fn param_headers_validate_and_emit() {
        let schema = serde_json::json!({"type":"object","properties":{
            "region":{"type":"string","x-mcp-header":"Region"},
            "n":{"type":"integer","x-mcp-header":"N"},
            "deep":{"type":"object","properties":{"flag":{"type":"boolean","x-mcp-header":"Flag"}}},
            "free":{"type":"string"}}});
        let args = serde_json::json!({"region":"eu west","n":42,"deep":{"flag":true}});
        let emitted = param_headers(&schema, &args);
        let lower: Vec<(String, String)> = emitted
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        assert_eq!(lower.len(), 3);
        assert!(validate_param_headers(&schema, &args, &lower).is_ok());
        let mut numeric = lower.clone();
        for (k, v) in numeric.iter_mut() {
            if k == "mcp-param-n" {
                *v = "42.0".into();
            }
        }
        assert!(validate_param_headers(&schema, &args, &numeric).is_ok());
        let mut wrong = lower.clone();
        wrong[0].1 = "x".into();
        assert_eq!(
            validate_param_headers(&schema, &args, &wrong)
                .unwrap_err()
                .code
                .code(),
            -32020
        );
        let missing: Vec<_> = lower[1..].to_vec();
        assert!(validate_param_headers(&schema, &args, &missing).is_err());
        let mut dup = lower.clone();
        dup.push(lower[0].clone());
        assert!(validate_param_headers(&schema, &args, &dup).is_err());
        let extra = serde_json::json!({"region":"eu west","n":42,"deep":{"flag":true}});
        let mut unknown = lower.clone();
        unknown.push(("mcp-param-other".into(), "x".into()));
        assert!(validate_param_headers(&schema, &extra, &unknown).is_ok());
        // A header for an absent argument is refused.
        let fewer = serde_json::json!({"n":42,"deep":{"flag":true}});
        assert!(validate_param_headers(&schema, &fewer, &lower).is_err());
        // An invalid declaration (on a number) disables the whole map.
        let bad = serde_json::json!({"properties":{"x":{"type":"number","x-mcp-header":"X"}}});
        assert!(param_declarations(&bad).is_none());
        assert!(param_headers(&bad, &serde_json::json!({"x":1})).is_empty());
    }
}
