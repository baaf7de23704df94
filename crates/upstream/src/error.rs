//! Why a call to an upstream failed.

/// The messages carry operator-facing detail (exit status, the parse error);
/// the gateway maps each variant to a generic JSON-RPC error for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The call's deadline (or the connect timeout) passed.
    #[error("upstream did not answer in time")]
    Timeout,
    /// The connection ended while the call was pending, or before it could be sent.
    #[error("upstream connection closed: {0}")]
    Closed(String),
    /// The upstream is not connected, or could not be reached.
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
    /// The upstream broke the protocol (unparseable message, bad handshake).
    #[error("upstream protocol violation: {0}")]
    Protocol(String),
    /// The upstream answered with an unexpected HTTP status.
    #[error("upstream answered HTTP {0}")]
    Http(u16),
    /// The spec cannot work (invalid URL, header, handshake params); not retried.
    #[error("invalid upstream configuration: {0}")]
    Config(String),
    /// The call was cancelled by `notifications/cancelled` (2026-07-28:
    /// its HTTP exchange was closed).
    #[error("upstream call cancelled")]
    Cancelled,
    /// The request text the gateway built cannot carry the 2026-07-28
    /// envelope: not a JSON-RPC request, `params` or `params._meta` not an
    /// object, an envelope key given twice, or a method or name that cannot
    /// be an HTTP header. Not sent; nothing is retried.
    #[error("request cannot be sent upstream: {0}")]
    InvalidRequest(String),
}
