//! Warden's connections to real MCP servers: stdio child processes,
//! Streamable HTTP (session era and the stateless 2026-07-28 protocol) and
//! legacy HTTP+SSE (2024-11-05).
//!
//! The gateway speaks to every upstream through [`Upstream`]: it starts one
//! with [`Upstream::start`], sends requests whose ids this crate allocates
//! (the gateway splices them into its own bytes), and receives everything
//! that is not an answer to one of its requests as an [`UpstreamEvent`].
//!
//! A supervisor task per upstream connects, settles the protocol era, and
//! reconnects with exponential backoff when the process dies or the stream
//! breaks; pending calls fail at once when their connection ends, never at
//! their timeout. Every inbound message is strictly parsed
//! (`warden-protocol`) before anything looks at it.
//!
//! Protocol eras ([`Era`]). Stdio and legacy SSE upstreams speak the
//! session era: `initialize`, then requests in that session. A Streamable
//! HTTP upstream is by default probed with `server/discover` at 2026-07-28
//! and, on a valid `DiscoverResult` naming that version, spoken to in the
//! stateless era; anything else falls back to `initialize` as the reference
//! client does. The verdict is remembered per upstream and re-detected only
//! when it stops working. In the stateless era:
//! - every request gets the envelope spliced into `params._meta`
//!   (`io.modelcontextprotocol/protocolVersion` set to the upstream's,
//!   client capabilities and info added where the gateway did not put
//!   them), and `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` headers;
//!   no session id, no `initialize`, no DELETE;
//! - [`Upstream::notify`] with `notifications/cancelled` closes the named
//!   request's HTTP exchange (the era's cancellation) and drops every other
//!   client notification; [`Upstream::respond`] is an error (the server
//!   sends no requests: `input_required` results are ordinary results);
//! - list changes arrive on one `subscriptions/listen` stream opened for
//!   the changes the server declares, delivered like a GET stream's.
//!
//! Invariants:
//! - no lock is held across an `.await`; the link and the pending calls sit
//!   under one lock, so no call can stay pending on a dead connection;
//! - nothing a peer sends is unwrapped; peer text reaches the log only
//!   escaped and truncated;
//! - a stdio child sees a scrubbed environment;
//! - only Warden's own envelope keys and ids are rewritten in the bytes the
//!   gateway built; every other byte goes upstream as it was;
//! - a network failure is never taken for an era verdict.
#![forbid(unsafe_code)]

mod client;
mod discover;
mod egress_proxy;
mod envelope;
mod error;
mod handshake;
mod http;
mod legacy_sse;
mod lines;
mod log_safe;
mod modern;
mod shared;
mod spec;
mod stdio;
mod supervisor;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

pub use error::UpstreamError;
pub use spec::{
    AuthSource, Era, Handshake, RestartPolicy, StdioSandbox, TransportSpec, UpstreamAuth,
    UpstreamSpec,
};
pub use warden_protocol::Limits;

use shared::{Link, PendingGuard, Shared};

/// One JSON-RPC response from the upstream, exactly as it sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The upstream-side id of the request it answers.
    pub id: u64,
    /// The whole message text (a result or an error), strictly parsed already.
    pub text: String,
    /// How many events this upstream had emitted when the response arrived:
    /// every notification the server sent before its response (progress,
    /// logging) is among them, so a consumer that has processed this many
    /// events can forward the response without overtaking them.
    pub events_before: u64,
}

/// What the upstream said about itself when Warden connected: its answer
/// to `initialize` (session era) or to `server/discover` (2026-07-28).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitInfo {
    /// The raw `result` JSON object, as the server sent it: an
    /// `InitializeResult` (`protocolVersion`, `capabilities`, `serverInfo`,
    /// `instructions`), or for a modern upstream a `DiscoverResult`
    /// (`supportedVersions`, `capabilities`, `instructions`, and the server
    /// info in `_meta["io.modelcontextprotocol/serverInfo"]`). Both carry
    /// `capabilities` and `instructions` at the top; see
    /// [`InitInfo::server_info`].
    pub result: String,
    /// The version every request to this upstream speaks: negotiated by
    /// `initialize`, or "2026-07-28" for a modern upstream.
    pub protocol_version: String,
    /// 1 for the first connection, incremented on each re-initialization
    /// (for a modern upstream: each re-detection).
    pub generation: u64,
    /// Whether the upstream speaks the stateless 2026-07-28 protocol: no
    /// session, no server-to-client requests, each request carrying its own
    /// envelope (which this crate splices in).
    pub modern: bool,
}

impl InitInfo {
    /// The server's `Implementation` object (raw JSON): `serverInfo` of an
    /// initialize result, else `_meta["io.modelcontextprotocol/serverInfo"]`
    /// of a DiscoverResult (where it is optional and display-only). `None`
    /// when absent or not an object.
    pub fn server_info(&self) -> Option<&str> {
        use warden_protocol::message::member;
        let result: &serde_json::value::RawValue = serde_json::from_str(&self.result).ok()?;
        let info = member(result, "serverInfo").or_else(|| {
            member(result, "_meta").and_then(|m| member(m, envelope::SERVER_INFO_KEY))
        })?;
        info.get().starts_with('{').then(|| info.get())
    }
}

/// Inbound traffic that is not an answer to one of Warden's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamEvent {
    /// A notification or a server-to-client request, exactly as sent.
    Message {
        server: String,
        text: String,
        /// The upstream-side id of Warden's request whose HTTP response
        /// stream carried it (`None` for stdio, legacy SSE and the GET stream).
        related_to: Option<u64>,
    },
    /// Re-initialized after a crash or an expired session: lists may have changed.
    Restarted { server: String, generation: u64 },
    /// The connection died; its pending calls have already failed.
    Down { server: String, reason: String },
    /// A sandboxed server's egress proxy refused a destination.
    EgressRefused {
        server: String,
        /// `host:port` as asked for (escaped, bounded).
        target: String,
        /// A short code: `not_allowlisted`, `loopback`, `private`,
        /// `link_local`, `reserved`, `unresolved`, `connect_failed`,
        /// `bad_request`.
        reason: &'static str,
    },
    /// A sandboxed server opened one of its sandbox's tripwires (a decoy
    /// where a host secret or one of Warden's files would be).
    Tripwire {
        server: String,
        /// The path as the server named it (escaped, bounded).
        path: String,
    },
    /// The sandbox refused a sandboxed server something (seen by its
    /// watcher: the refusal itself is the sandbox's).
    SandboxRefused {
        server: String,
        /// `write` (a read-only or hidden path), `connect` (a direct network
        /// connect), `process_limit` (forks refused).
        what: &'static str,
        /// The path, `address:port`, or the count of refused forks
        /// (escaped, bounded).
        target: String,
    },
}

/// Where the upstream is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamState {
    /// Connecting for the first time.
    Starting,
    /// Initialized: calls go through.
    Ready,
    /// Lost its connection or failed to connect; reconnecting after backoff.
    Restarting,
    /// Cannot work as configured (bad URL, header or handshake params); not retried.
    Failed,
    /// Shut down.
    Closed,
}

/// A connection to one upstream MCP server, kept alive by a supervisor task.
/// Cheap to share as `Arc<Upstream>`; dropping the last handle shuts it down.
pub struct Upstream {
    shared: Arc<Shared>,
}

impl Upstream {
    /// Starts connecting in the background and returns at once. Every
    /// inbound message that is not a response to one of our requests is
    /// sent on `events`.
    ///
    /// Must be called within a Tokio runtime. The receiver of `events`
    /// should not await this upstream's calls while it holds back further
    /// events: delivery applies backpressure to the connection's reader.
    pub fn start(
        spec: UpstreamSpec,
        handshake: Handshake,
        events: mpsc::Sender<UpstreamEvent>,
    ) -> Arc<Upstream> {
        let http = match &spec.transport {
            TransportSpec::Stdio { .. } => Err("not an HTTP transport".to_owned()),
            TransportSpec::StreamableHttp { url, .. } | TransportSpec::Sse { url, .. } => {
                upstream_egress(url).and_then(|()| {
                    // The egress guard: every address a name resolves to is
                    // checked, and the connection made to a checked one.
                    // Redirects are never followed (see `client`).
                    client::Client::new(spec.connect_timeout, UPSTREAM_EGRESS, Vec::new())
                        .map_err(|e| format!("HTTP client: {e}"))
                })
            }
        };
        let shared = Arc::new(Shared::new(spec, handshake, http, events));
        tokio::spawn(supervisor::supervise(shared.clone()));
        Arc::new(Upstream { shared })
    }

    /// Waits until the upstream is initialized. Fails when the connection
    /// attempt under way fails, when the upstream is failed or closed, or
    /// when the connect timeout passes.
    pub async fn ready(&self) -> Result<Arc<InitInfo>, UpstreamError> {
        let wait = self.shared.wait_for_info();
        tokio::time::timeout(self.shared.spec.connect_timeout, wait)
            .await
            .unwrap_or(Err(UpstreamError::Timeout))
    }

    /// Sends a request. `build` receives the upstream-side id allocated for
    /// it (unique for the life of this upstream) and returns the whole
    /// message text. Resolves with the upstream's response (a result or an
    /// error). While the upstream is restarting the call waits for it,
    /// within `timeout`.
    ///
    /// For a modern (2026-07-28) upstream the text gets the per-request
    /// envelope spliced into `params._meta` (see the crate docs); a text
    /// that cannot carry it fails with `InvalidRequest`, unsent.
    ///
    /// Fails at once with `Closed` if the connection ends while the call is
    /// pending, with `Timeout` after `timeout`. Dropping the future removes
    /// the pending entry (and, over HTTP, closes the exchange); sending
    /// `notifications/cancelled` is the caller's business.
    pub async fn request(
        &self,
        build: impl FnOnce(u64) -> String,
        timeout: Duration,
    ) -> Result<Response, UpstreamError> {
        let deadline = Instant::now() + timeout;
        tokio::time::timeout_at(deadline, self.call(build))
            .await
            .unwrap_or(Err(UpstreamError::Timeout))
    }

    async fn call(&self, build: impl FnOnce(u64) -> String) -> Result<Response, UpstreamError> {
        let shared = &self.shared;
        shared.wait_for_link().await?;
        let id = shared.next_id();
        let mut text = build(id);
        let (link, mut rx) = loop {
            if let Some(registered) = shared.register_on_link(id) {
                break registered;
            }
            // The connection went away between the wait and the send.
            shared.wait_for_link().await?;
        };
        let guard = PendingGuard {
            shared: shared.clone(),
            id,
        };
        let exchange = match link {
            Link::Stdio(writer) => {
                writer.send(std::mem::take(&mut text)).await?;
                None
            }
            Link::Http(session) => Some(http::start_exchange(
                shared,
                session,
                id,
                std::mem::take(&mut text),
            )),
            Link::Sse(session) => {
                session.send(std::mem::take(&mut text)).await?;
                None
            }
        };
        let abandoned = |_| Err(UpstreamError::Closed("call abandoned".into()));
        let outcome = match exchange {
            // The exchange's own outcome, unless the entry is resolved
            // first (a reply routed from another stream, a cancellation,
            // the connection's end): the exchange is then dropped
            // unfinished.
            Some(exchange) => tokio::select! {
                biased;
                r = &mut rx => r.unwrap_or_else(abandoned),
                outcome = exchange => outcome,
            },
            None => rx.await.unwrap_or_else(abandoned),
        };
        drop(guard);
        outcome
    }

    /// Sends a notification to the server. Fails when not connected.
    ///
    /// A modern (2026-07-28) upstream receives no notifications: there,
    /// `notifications/cancelled` naming one of Warden's pending requests
    /// closes that request's HTTP exchange (how that era cancels) and fails
    /// the call with [`UpstreamError::Cancelled`]; every other notification
    /// is dropped (logged at debug).
    pub async fn notify(&self, text: String) -> Result<(), UpstreamError> {
        let link = self.link()?;
        if link.is_modern() {
            self.cancel_modern(&text);
            return Ok(());
        }
        self.send(link, text).await
    }

    /// Sends a response to a server-to-client request. Fails when not
    /// connected: an answer to a request of a dead connection has nowhere to
    /// go. A modern upstream never sends requests: answering one is a
    /// [`UpstreamError::Protocol`] error.
    pub async fn respond(&self, text: String) -> Result<(), UpstreamError> {
        let link = self.link()?;
        if link.is_modern() {
            return Err(UpstreamError::Protocol(
                "a 2026-07-28 server sends no requests to answer".into(),
            ));
        }
        self.send(link, text).await
    }

    fn link(&self) -> Result<Link, UpstreamError> {
        self.shared
            .current_link()
            .ok_or_else(|| UpstreamError::Unavailable("not connected".into()))
    }

    /// `notifications/cancelled` to a modern upstream: resolve the pending
    /// call with `Cancelled`; its caller then stops waiting and drops the
    /// exchange it was polling, which closes the HTTP response stream.
    fn cancel_modern(&self, text: &str) {
        let m = match warden_protocol::message::parse_one(text) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(target: "upstream", server = %self.name(), error = %e, "dropped an unreadable notification");
                return;
            }
        };
        if m.method() != "notifications/cancelled" {
            tracing::debug!(
                target: "upstream",
                server = %self.name(),
                method = %log_safe::log_safe(m.method().as_bytes(), 128),
                "dropped a notification: 2026-07-28 has no client notifications"
            );
            return;
        }
        let id = m
            .param("requestId")
            .and_then(|r| r.get().parse::<u64>().ok());
        let cancelled = id.is_some_and(|id| self.shared.resolve(id, Err(UpstreamError::Cancelled)));
        tracing::debug!(target: "upstream", server = %self.name(), ?id, cancelled, "cancellation");
    }

    async fn send(&self, link: Link, text: String) -> Result<(), UpstreamError> {
        let send = async {
            match link {
                Link::Stdio(writer) => writer.send(text).await,
                Link::Http(session) => session.send(text).await,
                Link::Sse(session) => session.send(text).await,
            }
        };
        tokio::time::timeout(self.shared.send_timeout(), send)
            .await
            .unwrap_or(Err(UpstreamError::Timeout))
    }

    /// Shuts the upstream down and waits until it is closed. Stdio: stdin
    /// closed, SIGTERM after 2 s, SIGKILL after 5 s. Session-era HTTP: the
    /// session is DELETEd (a 2026-07-28 upstream has none). Pending calls
    /// fail with `Closed`.
    pub async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        let mut finished = self.shared.finished.subscribe();
        let _ = finished.wait_for(|f| *f).await.map(|_| ());
    }

    pub fn state(&self) -> UpstreamState {
        self.shared.status.borrow().state
    }

    /// Restarts a sandboxed stdio server with `roots` (directories, at
    /// their own paths) as its client roots, in place of those it has: new
    /// calls wait for the new process, calls pending on the old one may
    /// finish first (for at most [`REMOUNT_DRAIN`]), and the server's
    /// event stream then reports a restart. Other transports: nothing.
    pub fn remount(&self, roots: Vec<std::path::PathBuf>) {
        if !matches!(
            &self.shared.spec.transport,
            TransportSpec::Stdio {
                sandbox: Some(_),
                ..
            }
        ) {
            return;
        }
        self.shared.set_mounts(roots);
        self.shared.remount.notify_one();
    }

    /// The client roots the sandbox mounts (or will, once a requested
    /// remount is done).
    pub fn mounted_roots(&self) -> Vec<std::path::PathBuf> {
        self.shared.mounts()
    }

    pub fn name(&self) -> &str {
        self.shared.name()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shared.stop.send_replace(true);
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name())
            .field("state", &self.state())
            .finish()
    }
}

tokio::task_local! {
    static REQUEST_HEADERS: std::sync::Arc<RequestHeaders>;
}

/// What one request adds to an HTTP upstream's headers.
#[derive(Default)]
pub struct RequestHeaders {
    /// Trace context, `Mcp-Param-*`: never replace a configured header.
    pub extra: Vec<(String, String)>,
    /// The call's own credential (the gateway's credentials stage): it
    /// replaces the connection's ([`UpstreamAuth`]) of the same name.
    pub credentials: Vec<(String, String)>,
}

/// Header values are credentials here: `Debug` names them only.
impl std::fmt::Debug for RequestHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |h: &[(String, String)]| h.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        f.debug_struct("RequestHeaders")
            .field("extra", &names(&self.extra))
            .field("credentials", &names(&self.credentials))
            .finish()
    }
}

/// How long a remount lets the calls pending on the old process finish.
pub const REMOUNT_DRAIN: Duration = Duration::from_secs(10);

/// Runs `f` with extra HTTP headers on the requests it sends to Streamable
/// HTTP upstreams (the gateway's W3C `traceparent`/`tracestate`). Headers
/// the upstream's own configuration sets are never replaced; stdio and SSE
/// upstreams ignore them.
pub async fn with_request_headers<F: std::future::Future>(
    headers: Vec<(String, String)>,
    f: F,
) -> F::Output {
    with_call_headers(
        RequestHeaders {
            extra: headers,
            credentials: Vec::new(),
        },
        f,
    )
    .await
}

/// [`with_request_headers`] with the call's own credential headers too.
pub async fn with_call_headers<F: std::future::Future>(headers: RequestHeaders, f: F) -> F::Output {
    REQUEST_HEADERS.scope(headers.into(), f).await
}

pub(crate) fn request_headers() -> Option<std::sync::Arc<RequestHeaders>> {
    REQUEST_HEADERS.try_with(Clone::clone).ok()
}

/// What an HTTP upstream may be: the operator names it, so loopback and
/// private networks are allowed; link-local (cloud metadata) and reserved
/// addresses never are, whatever the name resolves to.
const UPSTREAM_EGRESS: warden_egress::EgressPolicy = warden_egress::EgressPolicy::UPSTREAM;

/// Refuses an upstream URL whose host is a literal address the guard
/// refuses (names are checked at each resolution).
fn upstream_egress(url: &str) -> Result<(), String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(()); // reported when the connection is made
    };
    let Some(host) = parsed.host() else {
        return Ok(());
    };
    if let Some(ip) = warden_egress::host_ip(&host.to_owned()) {
        UPSTREAM_EGRESS.check(ip).map_err(|e| e.to_string())?;
    }
    Ok(())
}
