//! Wire errors and the JSON-RPC error objects built from them.

use serde_json::value::RawValue;

/// JSON-RPC and MCP error codes that Warden emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    InternalError,
    /// MCP: resource not found.
    ResourceNotFound,
    /// 2026-07-28: a header that mirrors the body disagrees with it.
    HeaderMismatch,
    /// 2026-07-28: the protocol version is not supported (-32022, with
    /// `data.supported`).
    UnsupportedProtocolVersion,
    /// 2026-07-28: the request needs a client capability the client did not
    /// declare (-32021, with `data.requiredCapabilities`).
    MissingCapability,
    /// Warden: the upstream did not answer in time or failed.
    UpstreamUnavailable,
    /// Warden: the request was refused by a gateway stage.
    Refused,
    /// Warden: authorization denied the request (stage 5).
    PolicyDenied,
    /// Warden: the request needs a human approval first.
    ApprovalRequired,
    /// Warden: the credential lacks a scope the operation needs (over HTTP
    /// also a 403 with `error="insufficient_scope"`).
    InsufficientScope,
    /// Warden: the tool's manifest is not approved or changed since approval.
    ToolNotApproved,
    /// Warden: a rate limit (`limits.rate`) is exhausted; `data.retryAfter`.
    RateLimited,
    /// Warden: too many calls in flight (`limits.concurrency`).
    ConcurrencyLimited,
    /// Warden: a cost budget (`limits.budgets`) is spent for this period.
    BudgetExhausted,
    /// Warden: the upstream or tool's circuit breaker is open; `data.retryAfter`.
    BreakerOpen,
    /// Warden: the same call repeated too often (`limits.loops`).
    LoopDetected,
    /// Warden: the shared limits backend (`limits.redis`) did not answer
    /// and `fail: closed`; `data.retryAfter`.
    LimitsUnavailable,
}

impl ErrorCode {
    pub fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::InternalError => -32603,
            ErrorCode::ResourceNotFound => -32002,
            ErrorCode::HeaderMismatch => -32020,
            ErrorCode::MissingCapability => -32021,
            ErrorCode::UnsupportedProtocolVersion => -32022,
            ErrorCode::UpstreamUnavailable => -32010,
            ErrorCode::Refused => -32011,
            ErrorCode::PolicyDenied => -32012,
            ErrorCode::ApprovalRequired => -32013,
            ErrorCode::InsufficientScope => -32014,
            ErrorCode::ToolNotApproved => -32015,
            ErrorCode::RateLimited => -32030,
            ErrorCode::ConcurrencyLimited => -32031,
            ErrorCode::BudgetExhausted => -32032,
            ErrorCode::BreakerOpen => -32033,
            ErrorCode::LoopDetected => -32034,
            ErrorCode::LimitsUnavailable => -32035,
        }
    }
}

/// Why a message was refused at the wire. Each variant maps to one JSON-RPC
/// code and one HTTP status; the message never echoes peer content beyond a
/// short, escaped key name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("parse error: {0}")]
    Parse(String),
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("nesting deeper than the limit of {limit}")]
    TooDeep { limit: usize },
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
    #[error("key {0:?} is a case variant of the protocol key {1:?}")]
    CaseVariantKey(String, &'static str),
    #[error("invalid request: {0}")]
    InvalidEnvelope(&'static str),
    #[error("batches are not allowed in protocol version {0}")]
    BatchNotAllowed(String),
    #[error("empty batch")]
    EmptyBatch,
}

impl WireError {
    pub fn code(&self) -> ErrorCode {
        match self {
            WireError::Parse(_) => ErrorCode::ParseError,
            _ => ErrorCode::InvalidRequest,
        }
    }

    /// HTTP status for a transport that refuses the whole body.
    pub fn http_status(&self) -> u16 {
        match self {
            WireError::TooLarge { .. } => 413,
            _ => 400,
        }
    }
}

/// Builds a JSON-RPC error response. `id` is the raw JSON text of the
/// request id (`None` → `null`). `message` is escaped by serde_json.
pub fn error_response(
    id: Option<&str>,
    code: ErrorCode,
    message: &str,
    data: Option<&serde_json::Value>,
) -> String {
    error_response_code(id, code.code(), message, data)
}

/// As [`error_response`] with a numeric code (for codes passed through).
pub fn error_response_code(
    id: Option<&str>,
    code: i64,
    message: &str,
    data: Option<&serde_json::Value>,
) -> String {
    let id = id.unwrap_or("null");
    let message = serde_json::Value::String(message.to_owned());
    match data {
        Some(d) => format!(
            r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message},"data":{d}}}}}"#
        ),
        None => {
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message}}}}}"#
            )
        }
    }
}

/// Builds a JSON-RPC success response around an already-serialised result.
pub fn result_response(id: &str, result: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)
}

/// Builds a JSON-RPC request or notification around serialised params.
pub fn request(id: Option<&str>, method: &str, params: Option<&RawValue>) -> String {
    let method = serde_json::Value::String(method.to_owned());
    let mut out = String::with_capacity(64 + params.map_or(0, |p| p.get().len()));
    out.push_str(r#"{"jsonrpc":"2.0","#);
    if let Some(id) = id {
        out.push_str(r#""id":"#);
        out.push_str(id);
        out.push(',');
    }
    out.push_str(r#""method":"#);
    out.push_str(&method.to_string());
    if let Some(p) = params {
        out.push_str(r#","params":"#);
        out.push_str(p.get());
    }
    out.push('}');
    out
}
