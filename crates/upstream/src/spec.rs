//! What an upstream is: the settings the gateway resolves from configuration.
//!
//! These types are this crate's own (not `warden-config`'s) so that the
//! arrow stays one-way: the gateway maps validated configuration onto them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use warden_protocol::Limits;

/// One upstream MCP server.
#[derive(Debug, Clone)]
pub struct UpstreamSpec {
    /// The server's name, for logs and events.
    pub name: String,
    pub transport: TransportSpec,
    /// Spawn or connect plus the `initialize` handshake must finish within this.
    pub connect_timeout: Duration,
    pub restart: RestartPolicy,
    /// Every message the upstream sends is strictly parsed under these limits.
    pub limits: Limits,
    /// Which protocol era to speak. Only Streamable HTTP has a choice:
    /// stdio and legacy SSE upstreams always speak the session era, and
    /// [`Era::Modern`] on them is a configuration error.
    pub era: Era,
    /// The credential every request of a Streamable HTTP connection
    /// carries (asked per request: a minted token is short-lived); a
    /// call's own credential replaces it. `None`: configured headers only.
    pub auth: Option<AuthSource>,
}

/// Produces the credential headers of an HTTP upstream's requests
/// (`Authorization`), for the connection's own requests (`initialize`,
/// lists, the GET stream). An error leaves the request without them.
pub trait UpstreamAuth: Send + Sync {
    fn headers(&self) -> Result<Vec<(String, String)>, String>;
}

/// An [`UpstreamAuth`] in a spec; `Debug` shows no value.
#[derive(Clone)]
pub struct AuthSource(pub std::sync::Arc<dyn UpstreamAuth>);

impl fmt::Debug for AuthSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthSource(<redacted>)")
    }
}

/// The protocol era an upstream speaks.
///
/// The session era (2024-11-05 to 2025-11-25) opens with `initialize` and,
/// over HTTP, keeps an `Mcp-Session-Id`. The modern era (2026-07-28) is
/// stateless: every request carries its own envelope in `params._meta`, and
/// `server/discover` tells what the server supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Era {
    /// Detect (Streamable HTTP): probe `server/discover` at 2026-07-28 and
    /// adopt the modern era on a valid answer naming it; on anything else
    /// that is not a network failure, fall back to `initialize`. The
    /// verdict is remembered across reconnects and re-detected only when
    /// the remembered era stops working. Elsewhere: the session era.
    #[default]
    Auto,
    /// `initialize` only; no probe.
    Session,
    /// `server/discover` only; an upstream that does not accept it fails
    /// to connect (and is retried with backoff) instead of falling back.
    Modern,
}

/// How Warden reaches the server.
#[derive(Clone)]
pub enum TransportSpec {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        /// Set in the child's environment (after scrubbing).
        env: Vec<(String, String)>,
        /// Names of Warden's own environment variables passed through.
        inherit_env: Vec<String>,
        cwd: Option<PathBuf>,
        /// `None`: run unconfined (the `none` profile, and tests).
        sandbox: Option<Box<StdioSandbox>>,
    },
    /// Streamable HTTP (protocol 2025-03-26 and later).
    StreamableHttp {
        url: String,
        headers: Vec<(String, String)>,
    },
    /// Legacy HTTP+SSE (protocol 2024-11-05).
    Sse {
        url: String,
        headers: Vec<(String, String)>,
    },
}

/// Environment values and header values are credentials more often than not:
/// `Debug` names them but never prints them.
impl fmt::Debug for TransportSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |pairs: &[(String, String)]| -> Vec<String> {
            pairs
                .iter()
                .map(|(k, _)| format!("{k}=<redacted>"))
                .collect()
        };
        match self {
            TransportSpec::Stdio {
                command,
                args,
                env,
                inherit_env,
                cwd,
                sandbox,
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env", &names(env))
                .field("inherit_env", inherit_env)
                .field("cwd", cwd)
                .field("sandbox", sandbox)
                .finish(),
            TransportSpec::StreamableHttp { url, headers } => f
                .debug_struct("StreamableHttp")
                .field("url", url)
                .field("headers", &names(headers))
                .finish(),
            TransportSpec::Sse { url, headers } => f
                .debug_struct("Sse")
                .field("url", url)
                .field("headers", &names(headers))
                .finish(),
        }
    }
}

/// How a stdio server is confined: the launcher's spec, and where its
/// egress proxy may connect (`Network::Proxy` only).
#[derive(Debug, Clone)]
pub struct StdioSandbox {
    pub spec: warden_sandbox::SandboxSpec,
    /// `host:port` pairs the proxy lets the server reach.
    pub egress: Vec<(String, u16)>,
    /// The listed hosts may be loopback or private addresses (link-local
    /// and metadata addresses never).
    pub egress_allow_private: bool,
    /// The client roots mounted by [`crate::Upstream::remount`] are
    /// writable (else read-only).
    pub roots_writable: bool,
}

/// Exponential backoff between restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// The `initialize` request params Warden sends upstream: the raw JSON object
/// text (`protocolVersion`, `capabilities`, `clientInfo`).
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    pub params: String,
    /// For `protocol: auto` before an era was remembered: try the session
    /// era first. Set for a session-era client that declared sampling,
    /// elicitation or roots: a dual-era server keeps answering those in the
    /// middle of a call there, while on the 2026-07-28 path it can only ask
    /// through input-required results, which not every dual-era server
    /// does. Otherwise the 2026-07-28 probe goes first.
    pub session_first: bool,
}
