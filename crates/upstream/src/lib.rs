//! Warden's connections to real MCP servers: stdio child processes,
//! Streamable HTTP (session era) and legacy HTTP+SSE (2024-11-05).
//!
//! The gateway speaks to every upstream through [`Upstream`]: it starts one
//! with [`Upstream::start`], sends requests whose ids this crate allocates
//! (the gateway splices them into its own bytes), and receives everything
//! that is not an answer to one of its requests as an [`UpstreamEvent`].
//!
//! A supervisor task per upstream connects, runs the `initialize`
//! handshake, and reconnects with exponential backoff when the process dies
//! or the stream breaks; pending calls fail at once when their connection
//! ends, never at their timeout. Every inbound message is strictly parsed
//! (`warden-protocol`) before anything looks at it.
//!
//! Invariants:
//! - no lock is held across an `.await`; the link and the pending calls sit
//!   under one lock, so no call can stay pending on a dead connection;
//! - nothing a peer sends is unwrapped; peer text reaches the log only
//!   escaped and truncated;
//! - a stdio child sees a scrubbed environment.
#![forbid(unsafe_code)]

mod error;
mod handshake;
mod http;
mod legacy_sse;
mod lines;
mod log_safe;
mod shared;
mod spec;
mod stdio;
mod supervisor;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

pub use error::UpstreamError;
pub use spec::{Handshake, RestartPolicy, TransportSpec, UpstreamSpec};
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

/// What the upstream answered to `initialize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitInfo {
    /// The raw `result` JSON object.
    pub result: String,
    pub protocol_version: String,
    /// 1 for the first connection, incremented on each re-initialization.
    pub generation: u64,
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
        let http = match spec.transport {
            TransportSpec::Stdio { .. } => Err("not an HTTP transport".to_owned()),
            TransportSpec::StreamableHttp { .. } | TransportSpec::Sse { .. } => {
                reqwest::Client::builder()
                    .connect_timeout(spec.connect_timeout)
                    // Redirects would carry the configured credentials to
                    // wherever a server points; an upstream's URL is exact.
                    .redirect(reqwest::redirect::Policy::none())
                    .tcp_nodelay(true)
                    .build()
                    .map_err(|e| format!("HTTP client: {}", http::describe(&e)))
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
    /// Fails at once with `Closed` if the connection ends while the call is
    /// pending, with `Timeout` after `timeout`. Dropping the future removes
    /// the pending entry; sending `notifications/cancelled` is the caller's
    /// business.
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
        let (link, rx) = loop {
            if let Some(registered) = shared.register_on_link(id) {
                break registered;
            }
            // The connection went away between the wait and the send.
            shared.wait_for_link().await?;
        };
        let mut guard = PendingGuard {
            shared: shared.clone(),
            id,
            task: None,
        };
        match link {
            Link::Stdio(writer) => writer.send(std::mem::take(&mut text)).await?,
            Link::Http(session) => {
                http::start_exchange(shared, session, &mut guard, std::mem::take(&mut text))
            }
            Link::Sse(session) => session.send(std::mem::take(&mut text)).await?,
        }
        let outcome = rx
            .await
            .unwrap_or_else(|_| Err(UpstreamError::Closed("call abandoned".into())));
        drop(guard);
        outcome
    }

    /// Sends a notification to the server. Fails when not connected.
    pub async fn notify(&self, text: String) -> Result<(), UpstreamError> {
        self.send(text).await
    }

    /// Sends a response to a server-to-client request. Fails when not
    /// connected: an answer to a request of a dead connection has nowhere to go.
    pub async fn respond(&self, text: String) -> Result<(), UpstreamError> {
        self.send(text).await
    }

    async fn send(&self, text: String) -> Result<(), UpstreamError> {
        let link = self
            .shared
            .current_link()
            .ok_or_else(|| UpstreamError::Unavailable("not connected".into()))?;
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
    /// closed, SIGTERM after 2 s, SIGKILL after 5 s. HTTP: the session is
    /// DELETEd. Pending calls fail with `Closed`.
    pub async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        let mut finished = self.shared.finished.subscribe();
        let _ = finished.wait_for(|f| *f).await.map(|_| ());
    }

    pub fn state(&self) -> UpstreamState {
        self.shared.status.borrow().state
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
    static REQUEST_HEADERS: std::sync::Arc<[(String, String)]>;
}

/// Runs `f` with extra HTTP headers on the requests it sends to Streamable
/// HTTP upstreams (the gateway's W3C `traceparent`/`tracestate`). Headers
/// the upstream's own configuration sets are never replaced; stdio and SSE
/// upstreams ignore them.
pub async fn with_request_headers<F: std::future::Future>(
    headers: Vec<(String, String)>,
    f: F,
) -> F::Output {
    REQUEST_HEADERS.scope(headers.into(), f).await
}

pub(crate) fn request_headers() -> Option<std::sync::Arc<[(String, String)]>> {
    REQUEST_HEADERS.try_with(Clone::clone).ok()
}
