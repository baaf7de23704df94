//! Default values, in one place (the operator reference in
//! `docs/configuration.md` quotes these).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// `listen.addr`: loopback only, so a fresh install is not reachable from
/// the network until someone decides it should be.
pub const LISTEN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// `gateway.name`.
pub const GATEWAY_NAME: &str = "warden";
/// `gateway.separator`.
pub const SEPARATOR: &str = "__";
/// `gateway.max_body_bytes`: 4 MiB.
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// `gateway.max_depth`.
pub const MAX_DEPTH: usize = 64;
/// Allowed range of `gateway.max_depth`.
pub const MAX_DEPTH_RANGE: std::ops::RangeInclusive<usize> = 2..=128;
/// `gateway.max_upstream_message_bytes`: 16 MiB.
pub const MAX_UPSTREAM_MESSAGE_BYTES: usize = 16 << 20;
/// `gateway.session_idle_timeout`: 30 minutes.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// `gateway.replay_buffer_events`.
pub const REPLAY_BUFFER_EVENTS: usize = 256;
/// `gateway.max_sessions`.
pub const MAX_SESSIONS: usize = 10_000;
/// `gateway.max_sessions_per_principal`: well under `max_sessions`, so
/// that one caller cannot fill the table for everyone else.
pub const MAX_SESSIONS_PER_PRINCIPAL: usize = 100;
/// `gateway.max_streams_per_principal`.
pub const MAX_STREAMS_PER_PRINCIPAL: usize = 100;
/// `gateway.max_parked_per_principal`.
pub const MAX_PARKED_PER_PRINCIPAL: usize = 100;
/// `gateway.notifications_per_second`.
pub const NOTIFICATIONS_PER_SECOND: usize = 100;
/// `listen.max_connections` (lowered at start to what the process's
/// open-file limit allows).
pub const MAX_CONNECTIONS: usize = 10_000;
/// `listen.max_connections_per_ip`.
pub const MAX_CONNECTIONS_PER_IP: usize = 256;
/// `listen.header_timeout`: a request's head must arrive within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// `listen.idle_timeout`: longer than the idle timeout of common client
/// connection pools (reqwest: 90 s), so that a client rarely reuses a
/// connection the server is closing.
pub const LISTEN_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// `listen.body_timeout`.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(20);
/// `listen.body_min_rate`, bytes per second: 1 KiB/s.
pub const BODY_MIN_RATE: usize = 1 << 10;
/// `servers.*.connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// `servers.*.call_timeout`.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// `servers.*.idle_timeout`: 10 minutes.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// `servers.*.restart.initial_backoff`.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// `servers.*.restart.max_backoff`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// `stdio.principal` when `$USER` is unset or unusable.
pub const STDIO_PRINCIPAL: &str = "local";
/// Longest exposed tool name MCP clients accept (`^[a-zA-Z0-9_-]{1,64}$`).
pub const MAX_EXPOSED_NAME_LEN: usize = 64;

/// `stdio.principal` when the file does not set it: `$USER` if it is a
/// usable principal, else [`STDIO_PRINCIPAL`].
pub(crate) fn stdio_principal(env: &dyn Fn(&str) -> Option<OsString>) -> String {
    env("USER")
        .and_then(|v| v.into_string().ok())
        .filter(|user| crate::resolve::principal_problem(user).is_none())
        .unwrap_or_else(|| STDIO_PRINCIPAL.to_owned())
}
