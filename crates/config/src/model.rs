//! The validated configuration: what the rest of Warden sees.
//!
//! Every value here has been checked; nothing downstream re-validates it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::defaults;
use crate::secret::Secret;

/// A complete, validated Warden configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: Listen,
    pub gateway: Gateway,
    /// Upstream servers, in file order.
    pub servers: Vec<ServerConfig>,
    /// Virtual servers, in file order.
    pub virtual_servers: Vec<VirtualServer>,
    pub stdio: StdioSettings,
    /// `identity:`, resolved by the identity crate. `None`: no
    /// authentication (every HTTP caller is the anonymous principal).
    pub identity: Option<Section<warden_identity::IdentitySettings>>,
    /// `guards:`, resolved by the guard crate; its defaults when absent
    /// (guardrails are on unless configured off).
    pub guards: Section<warden_guard::GuardSettings>,
    /// `authorization:`, resolved by the policy crate. `None`: no
    /// authorization stage (every authenticated caller may use everything
    /// the virtual server exposes); Warden warns at start.
    pub authorization: Option<Section<warden_policy::AuthzSettings>>,
    /// `audit:`, resolved by the audit crate; its defaults when absent (a
    /// JSONL trail and a SQLite store under `.warden/audit/` next to the
    /// configuration file).
    pub audit: Section<warden_audit::AuditSettings>,
    /// `telemetry:` (logs, OTLP traces, Prometheus metrics), resolved by the
    /// telemetry crate; its defaults when absent.
    pub telemetry: Section<warden_telemetry::TelemetrySettings>,
    /// `limits:` (rate limits, concurrency, budgets, breakers, loops),
    /// resolved by the limits crate; its defaults when absent.
    pub limits: Section<warden_limits::LimitSettings>,
    /// `approvals:` (where held calls are kept, how long a call waits),
    /// resolved by the approvals crate; its defaults when absent (a SQLite
    /// file under `.warden/` next to the configuration file).
    pub approvals: Section<warden_approvals::ApprovalSettings>,
    /// `tls:`: serve HTTPS (and accept client certificates when
    /// `identity.mtls` is set). `None`: plain HTTP.
    pub tls: Option<Section<warden_identity::TlsSettings>>,
    /// `registry:`: which tools may reach a client (stage 4).
    pub registry: RegistrySettings,
    /// `credentials:`: Warden as the issuer of the tokens it mints for
    /// upstreams. `None`: no issuer URL is known (no `credentials.issuer`,
    /// no `identity.public_url`); then no server may use `mode: mint`.
    pub credentials: Option<Section<warden_credentials::IssuerSettings>>,
    /// `credentials.grant_store`: where users' OAuth grants (`mode:
    /// oauth`) are kept, sealed with this key. `None`: no server may use
    /// `mode: oauth`.
    pub grant_store: Option<GrantStoreSettings>,
}

/// `credentials.grant_store`: the encrypted store of users' OAuth grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantStoreSettings {
    pub path: PathBuf,
    /// 32 bytes, base64 (`openssl rand -base64 32`).
    pub key: Secret,
}

/// The tool registry's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// The lock file. Default: `warden.lock` next to the configuration file.
    pub lock: PathBuf,
    /// `strict` (default): only pinned, unchanged items reach a client.
    /// `tofu`: items are pinned when first seen (unless the scanner blocks them).
    pub mode: warden_registry::Mode,
    /// How old the cached live definition of a tool or prompt may be when a
    /// call is checked against its pin; older, it is fetched again. This
    /// bounds how long a change the upstream does not announce goes unseen.
    /// Default 1 s; `0s` fetches before every call.
    pub revalidate_after: Duration,
    /// Thresholds and disabled rules of the manifest scanner.
    pub scanner: warden_registry::ScannerConfig,
    /// The operator's external classifier, asked about every item's
    /// descriptions before it is first pinned.
    pub classifier: Option<warden_classifier::ClassifierSettings>,
}

impl RegistrySettings {
    /// The defaults for a configuration file in `base_dir`.
    pub fn in_dir(base_dir: &std::path::Path) -> Self {
        Self {
            lock: base_dir.join("warden.lock"),
            mode: warden_registry::Mode::Strict,
            revalidate_after: Duration::from_secs(1),
            scanner: warden_registry::ScannerConfig::default(),
            classifier: None,
        }
    }
}

/// A section resolved by the crate that owns it (identity, guards, …),
/// shared read-only. Equality is by content as its `Debug` shows it (secret
/// values are redacted there, so two configs differing only in a secret
/// compare equal — enough for what equality is used for: tests and reload
/// no-op detection).
#[derive(Clone)]
pub struct Section<T>(pub std::sync::Arc<T>);

impl<T> std::ops::Deref for Section<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Section<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: std::fmt::Debug> PartialEq for Section<T> {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
            || format!("{:?}", self.0) == format!("{:?}", other.0)
    }
}

impl<T: std::fmt::Debug> Eq for Section<T> {}

impl Default for Config {
    /// The configuration of an empty file: defaults everywhere, no servers.
    fn default() -> Self {
        Self {
            listen: Listen::default(),
            gateway: Gateway::default(),
            servers: Vec::new(),
            virtual_servers: Vec::new(),
            stdio: StdioSettings::default(),
            identity: None,
            guards: Section(std::sync::Arc::new(warden_guard::GuardSettings::default())),
            authorization: None,
            // The defaults of an empty `audit:` in the current directory.
            audit: Section(std::sync::Arc::new(
                warden_audit::RawAudit::default()
                    .resolve(std::path::Path::new("."))
                    .unwrap_or_else(|_| {
                        warden_audit::AuditSettings::in_dir(std::path::Path::new(".warden/audit"))
                    }),
            )),
            telemetry: Section(std::sync::Arc::new(
                warden_telemetry::TelemetrySettings::default(),
            )),
            limits: Section(std::sync::Arc::new(warden_limits::LimitSettings::default())),
            approvals: Section(std::sync::Arc::new(
                warden_approvals::ApprovalSettings::defaults_in(std::path::Path::new(".")),
            )),
            tls: None,
            registry: RegistrySettings::in_dir(std::path::Path::new(".")),
            credentials: None,
            grant_store: None,
        }
    }
}

impl Config {
    /// The server with this name, if configured.
    #[must_use]
    pub fn server(&self, name: &str) -> Option<&ServerConfig> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// The virtual server with this name, if configured.
    #[must_use]
    pub fn virtual_server(&self, name: &str) -> Option<&VirtualServer> {
        self.virtual_servers.iter().find(|v| v.name == name)
    }
}

/// Where and how the HTTP front end listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Default `127.0.0.1:8080`.
    pub addr: SocketAddr,
    /// Exact browser origins allowed to call the gateway, normalised as
    /// `scheme://host[:port]` (lower case, default port omitted), e.g.
    /// `http://localhost:6274`. Requests without `Origin` are allowed.
    /// Empty (the default): only requests without `Origin` or with a
    /// same-host origin; the gateway decides what same-host means.
    pub allowed_origins: Vec<String>,
    /// `Host` header allowlist, each `host` or `host:port`, lower case.
    /// `None`: the gateway's default.
    pub allowed_hosts: Option<Vec<String>>,
    /// Serve the 2024-11-05 HTTP+SSE endpoints too. Default `true`.
    pub legacy_sse: bool,
    /// The limits every client connection is held to.
    pub edge: EdgeLimits,
}

/// What one client connection may cost (`listen:`): how many may be open,
/// and how long each may take in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeLimits {
    /// Most open client connections; beyond it new ones are closed at
    /// once. Default 10000 (lowered at start to fit the open-file limit).
    pub max_connections: usize,
    /// Most open connections from one client address (IPv6: one /64).
    /// Default 256.
    pub max_connections_per_ip: usize,
    /// A request's head (request line and headers) must arrive within this
    /// of its first byte, or of the connection's start. Default 10 s.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in progress is closed after
    /// this; so is one whose client accepts no response bytes for this
    /// long. Default 120 s.
    pub idle_timeout: Duration,
    /// A request body that sends nothing for this long is cut; also the
    /// grace period before [`EdgeLimits::body_min_rate`] applies.
    /// Default 20 s.
    pub body_timeout: Duration,
    /// Bytes per second a request body must average (after
    /// `body_timeout`). Default 1 KiB/s.
    pub body_min_rate: usize,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            max_connections: defaults::MAX_CONNECTIONS,
            max_connections_per_ip: defaults::MAX_CONNECTIONS_PER_IP,
            header_timeout: defaults::HEADER_TIMEOUT,
            idle_timeout: defaults::LISTEN_IDLE_TIMEOUT,
            body_timeout: defaults::BODY_TIMEOUT,
            body_min_rate: defaults::BODY_MIN_RATE,
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            addr: defaults::LISTEN_ADDR,
            allowed_origins: Vec::new(),
            allowed_hosts: None,
            legacy_sse: true,
            edge: EdgeLimits::default(),
        }
    }
}

/// Gateway-wide behaviour and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// `serverInfo.name` reported to clients. Default `warden`.
    pub name: String,
    /// Between server name and tool name in exposed names (`git__status`).
    /// Default `__`; non-empty, only `[A-Za-z0-9_-]`.
    pub separator: String,
    /// Largest accepted request body. Default 4 MiB.
    pub max_body_bytes: usize,
    /// Deepest JSON nesting accepted. Default 64, range 2..=128.
    pub max_depth: usize,
    /// Largest message accepted from an upstream. Default 16 MiB.
    pub max_upstream_message_bytes: usize,
    /// Sessions idle this long are closed. Default 30 minutes.
    pub session_idle_timeout: Duration,
    /// Events kept per stream for `Last-Event-ID` resumption. Default 256.
    pub replay_buffer_events: usize,
    /// Most concurrent sessions. Default 10000.
    pub max_sessions: usize,
    /// Most concurrent sessions of one principal (an anonymous caller is
    /// counted by its address). Default 100.
    pub max_sessions_per_principal: usize,
    /// Most open long-lived SSE streams of one principal (session GET
    /// streams, legacy `/sse` connections, `subscriptions/listen`).
    /// Default 100.
    pub max_streams_per_principal: usize,
    /// Most 2026-07-28 calls of one principal parked while its client
    /// answers input requests. Default 100.
    pub max_parked_per_principal: usize,
    /// Unsolicited notifications (log messages, list changes, resource
    /// updates) relayed to one session per second; the excess is dropped.
    /// Progress and responses are never dropped. Default 100.
    pub notifications_per_second: usize,
    /// `instructions` returned from `initialize`, if any.
    pub instructions: Option<String>,
}

impl Default for Gateway {
    fn default() -> Self {
        Self {
            name: defaults::GATEWAY_NAME.to_owned(),
            separator: defaults::SEPARATOR.to_owned(),
            max_body_bytes: defaults::MAX_BODY_BYTES,
            max_depth: defaults::MAX_DEPTH,
            max_upstream_message_bytes: defaults::MAX_UPSTREAM_MESSAGE_BYTES,
            session_idle_timeout: defaults::SESSION_IDLE_TIMEOUT,
            replay_buffer_events: defaults::REPLAY_BUFFER_EVENTS,
            max_sessions: defaults::MAX_SESSIONS,
            max_sessions_per_principal: defaults::MAX_SESSIONS_PER_PRINCIPAL,
            max_streams_per_principal: defaults::MAX_STREAMS_PER_PRINCIPAL,
            max_parked_per_principal: defaults::MAX_PARKED_PER_PRINCIPAL,
            notifications_per_second: defaults::NOTIFICATIONS_PER_SECOND,
            instructions: None,
        }
    }
}

/// One upstream MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The key under `servers:`; prefixes its exposed tool names.
    pub name: String,
    pub transport: Transport,
    /// Default: [`Isolation::Principal`] for stdio, [`Isolation::Session`]
    /// for HTTP and SSE.
    pub isolation: Isolation,
    /// Which protocol era to speak to it. Default [`Era::Auto`] (Streamable
    /// HTTP: probe `server/discover`, fall back to `initialize`; stdio and
    /// legacy SSE: the session era).
    pub era: Era,
    /// Default 30 s.
    pub connect_timeout: Duration,
    /// Default 120 s.
    pub call_timeout: Duration,
    /// Upstreams idle this long are shut down. Default 10 minutes.
    pub idle_timeout: Duration,
    pub restart: RestartPolicy,
    /// Replaces the upstream's own `instructions`, if set.
    pub instructions: Option<String>,
    /// Warden is not ready (`/readyz` 503) while this server cannot be
    /// reached: a probe connection of its own is kept up. Default false.
    pub required: bool,
    /// What authorization knows about this server: tenants, environment,
    /// risk tiers, data classes and labels of its tools, resources and
    /// prompts (`name` is the server's).
    pub facts: Section<warden_policy::ServerFacts>,
    /// A stdio server's sandbox (`sandbox:`; profile `strict` unless set).
    /// `None`: an HTTP or SSE server, or profile `none`.
    pub sandbox: Option<crate::Sandbox>,
    /// What Warden presents to the upstream (`credentials:`); the client's
    /// own token never goes upstream.
    pub credentials: UpstreamCredentials,
}

/// `servers.NAME.credentials`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamCredentials {
    pub mode: CredentialMode,
    /// Headers added for callers of one tenant, by tenant (Streamable
    /// HTTP). A server with any `tenants` or `principals` entry refuses a
    /// caller that matches none.
    pub tenants: Vec<(String, Vec<(String, Secret)>)>,
    /// The same by principal key (`issuer-name:subject`); a principal's
    /// entry wins over its tenant's.
    pub principals: Vec<(String, Vec<(String, Secret)>)>,
}

impl UpstreamCredentials {
    /// Whether the headers depend on the caller.
    #[must_use]
    pub fn is_scoped(&self) -> bool {
        !self.tenants.is_empty() || !self.principals.is_empty()
    }
}

/// How Warden authenticates to an upstream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CredentialMode {
    /// `static` (the default): the configured `headers` (and the caller's
    /// tenant's or principal's), nothing minted.
    #[default]
    Static,
    /// `mint`: a token Warden signs per call, for this audience (default:
    /// the server's URL).
    Mint { audience: String },
    /// `exchange`: the caller's token exchanged (RFC 8693) at
    /// `token_endpoint`, Warden authenticating as `client_id`, for a token
    /// of this audience.
    Exchange {
        audience: String,
        token_endpoint: String,
        client_id: String,
        client_secret: Secret,
    },
    /// `oauth`: Warden is the OAuth client of the upstream (discovered
    /// from its 401), with each user's own token from the grant they gave
    /// (`warden credentials login`).
    OAuth {
        client_id: String,
        client_secret: Option<Secret>,
        /// Asked at login; empty: the resource's `scopes_supported`.
        scopes: Vec<String>,
        /// Discovery and token requests may reach private and loopback
        /// addresses (T10: off by default).
        allow_private_network: bool,
    },
}

impl CredentialMode {
    /// The YAML spelling, for audit records and metrics.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            CredentialMode::Static => "static",
            CredentialMode::Mint { .. } => "mint",
            CredentialMode::Exchange { .. } => "exchange",
            CredentialMode::OAuth { .. } => "oauth",
        }
    }
}

/// How Warden reaches an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A child process speaking MCP over stdin/stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        /// Set in the child's environment, in file order.
        env: Vec<(String, Secret)>,
        /// Names of Warden's own environment variables passed through.
        inherit_env: Vec<String>,
        /// Working directory, resolved against the config file's directory.
        cwd: Option<PathBuf>,
    },
    /// Streamable HTTP (2025-03-26 and later).
    StreamableHttp {
        url: String,
        headers: Vec<(String, Secret)>,
    },
    /// HTTP+SSE (2024-11-05).
    Sse {
        url: String,
        headers: Vec<(String, Secret)>,
    },
}

impl Transport {
    /// The YAML spelling of this transport (`stdio`, `http`, `sse`).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stdio { .. } => "stdio",
            Self::StreamableHttp { .. } => "http",
            Self::Sse { .. } => "sse",
        }
    }
}

/// The protocol era Warden speaks to an upstream (`protocol:` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Era {
    /// Detect (`auto`).
    Auto,
    /// `initialize` and sessions (`session`).
    Session,
    /// Stateless 2026-07-28 (`2026-07-28`); Streamable HTTP only.
    Modern,
}

/// Which callers share one upstream connection (or process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// One upstream per client session.
    Session,
    /// One upstream per principal, shared by that principal's sessions.
    Principal,
    /// One upstream for everyone.
    Shared,
}

impl Isolation {
    /// The YAML spelling (`session`, `principal`, `shared`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Principal => "principal",
            Self::Shared => "shared",
        }
    }
}

/// Backoff between restarts (stdio) or reconnects (HTTP) of an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Default 200 ms.
    pub initial_backoff: Duration,
    /// Default 30 s; never below `initial_backoff`.
    pub max_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: defaults::INITIAL_BACKOFF,
            max_backoff: defaults::MAX_BACKOFF,
        }
    }
}

/// A named subset of servers (and optionally tools), served as one MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServer {
    pub name: String,
    /// Names of configured servers; non-empty, each exists, no repeats.
    pub servers: Vec<String>,
    /// Patterns over exposed names (`notes__*`); `*` is the only wildcard
    /// (see [`crate::glob_match`]). `None`: every tool of `servers`.
    pub tools: Option<Vec<String>>,
    /// Whether names are exposed as `server__name` (the default). `false` is
    /// allowed only for a virtual server of exactly one server: its names
    /// are exposed unchanged (a transparent endpoint for one upstream).
    pub namespace: bool,
}

impl VirtualServer {
    /// Whether an exposed tool name is selected by `tools`.
    #[must_use]
    pub fn allows_tool(&self, exposed_name: &str) -> bool {
        match &self.tools {
            None => true,
            Some(patterns) => patterns
                .iter()
                .any(|p| crate::glob::glob_match(p, exposed_name)),
        }
    }
}

/// Settings of `warden stdio`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdioSettings {
    /// The principal that local stdio sessions act as. Default: `$USER`,
    /// or `local` when that is unset or unusable.
    pub principal: String,
}

impl Default for StdioSettings {
    fn default() -> Self {
        Self {
            principal: defaults::stdio_principal(&|name| std::env::var_os(name)),
        }
    }
}
