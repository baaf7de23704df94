//! The state one upstream's handle, supervisor and transport tasks share:
//! the live link, the pending calls, the status, and the routing of every
//! inbound message.
//!
//! Invariant: the link and the pending map sit under one lock, so a call is
//! either registered while its link is installed (and then failed by the
//! drain that uninstalls it) or sees no link and waits for the next one.
//! No call can be left pending on a dead connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};
use warden_protocol::message::{self, Incoming, Message};
use warden_protocol::{Kind, WireError};

use crate::log_safe::log_safe;
use crate::{
    Era, Handshake, InitInfo, Response, UpstreamError, UpstreamEvent, UpstreamSpec, UpstreamState,
};

/// How much of an invalid peer message is written to the log.
pub(crate) const LOGGED_MESSAGE_BYTES: usize = 512;

pub(crate) type Waiter = oneshot::Sender<Result<Response, UpstreamError>>;

/// Where outbound messages go while a connection is up.
#[derive(Clone)]
pub(crate) enum Link {
    Stdio(crate::stdio::Writer),
    Http(Arc<crate::http::Session>),
    Sse(Arc<crate::legacy_sse::Session>),
}

impl Link {
    /// Whether the link speaks the stateless 2026-07-28 protocol.
    pub(crate) fn is_modern(&self) -> bool {
        matches!(self, Link::Http(s) if s.is_modern())
    }
}

/// What `ready()` and waiting callers observe.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub state: UpstreamState,
    /// Failed connection attempts so far; a waiter that sees it grow knows
    /// the attempt it was waiting for failed.
    pub failures: u64,
    pub last_error: Option<UpstreamError>,
}

struct Calls {
    link: Option<Link>,
    /// Set exactly while `link` is.
    info: Option<Arc<InitInfo>>,
    pending: HashMap<u64, Waiter>,
}

pub(crate) struct Shared {
    pub spec: UpstreamSpec,
    pub handshake: Handshake,
    /// The pooled HTTP client of an HTTP transport, or why there is none.
    pub http: Result<crate::client::Client, String>,
    events: mpsc::Sender<UpstreamEvent>,
    /// How many events were handed to `events` so far; each response
    /// carries the count at its arrival so the gateway can deliver the
    /// notifications that preceded it (progress) before it.
    emitted: AtomicU64,
    calls: Mutex<Calls>,
    next_id: AtomicU64,
    /// Whether the negotiated protocol version allows JSON-RPC batches.
    batches: AtomicBool,
    /// Whether the installed connection speaks 2026-07-28, where a server
    /// sends no requests.
    modern: AtomicBool,
    /// The era detection settled on for an `Era::Auto` upstream, tried
    /// first on the next connection (0: none yet; see [`Self::remembered_era`]).
    era: AtomicU8,
    pub status: watch::Sender<Status>,
    /// Set once to ask the supervisor to shut down.
    pub stop: watch::Sender<bool>,
    /// Set by the supervisor when it has closed everything and returned.
    pub finished: watch::Sender<bool>,
    /// The client roots a sandboxed stdio server is started with (mounted
    /// at their own paths); replaced by [`crate::Upstream::remount`].
    mounts: Mutex<Vec<std::path::PathBuf>>,
    /// Asks the supervisor to restart the process with the current mounts.
    pub remount: tokio::sync::Notify,
}

impl Shared {
    pub(crate) fn new(
        spec: UpstreamSpec,
        handshake: Handshake,
        http: Result<crate::client::Client, String>,
        events: mpsc::Sender<UpstreamEvent>,
    ) -> Shared {
        let (status, _) = watch::channel(Status {
            state: UpstreamState::Starting,
            failures: 0,
            last_error: None,
        });
        let (stop, _) = watch::channel(false);
        let (finished, _) = watch::channel(false);
        Shared {
            spec,
            handshake,
            http,
            events,
            emitted: AtomicU64::new(0),
            calls: Mutex::new(Calls {
                link: None,
                info: None,
                pending: HashMap::new(),
            }),
            next_id: AtomicU64::new(1),
            batches: AtomicBool::new(false),
            modern: AtomicBool::new(false),
            era: AtomicU8::new(0),
            status,
            stop,
            finished,
            mounts: Mutex::new(Vec::new()),
            remount: tokio::sync::Notify::new(),
        }
    }

    /// The client roots the next process is started with.
    pub(crate) fn mounts(&self) -> Vec<std::path::PathBuf> {
        self.mounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_mounts(&self, roots: Vec<std::path::PathBuf>) {
        *self.mounts.lock().unwrap_or_else(|p| p.into_inner()) = roots;
    }

    /// Whether calls are still pending (on the old process, while a
    /// remount drains it).
    pub(crate) fn has_pending(&self) -> bool {
        !self.calls().pending.is_empty()
    }

    /// Removes the link so new calls wait for the next one, keeping the
    /// pending calls of the current process (a remount's drain).
    pub(crate) fn hold_new_calls(&self) {
        let mut calls = self.calls();
        calls.link = None;
        calls.info = None;
    }

    pub(crate) fn name(&self) -> &str {
        &self.spec.name
    }

    /// A fresh upstream-side request id. Never reused for the life of the
    /// upstream, so a late response from an earlier connection cannot be
    /// taken for the answer to a newer call.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn calls(&self) -> MutexGuard<'_, Calls> {
        // A panic while holding this lock leaves the map consistent (every
        // operation on it is a single insert/remove/drain), so poisoning is
        // not a reason to stop serving.
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The era an `Era::Auto` upstream last connected with.
    pub(crate) fn remembered_era(&self) -> Option<Era> {
        match self.era.load(Ordering::Relaxed) {
            1 => Some(Era::Session),
            2 => Some(Era::Modern),
            _ => None,
        }
    }

    pub(crate) fn remember_era(&self, era: Option<Era>) {
        let v = match era {
            Some(Era::Session) => 1,
            Some(Era::Modern) => 2,
            Some(Era::Auto) | None => 0,
        };
        self.era.store(v, Ordering::Relaxed);
    }

    pub(crate) fn current_link(&self) -> Option<Link> {
        self.calls().link.clone()
    }

    /// Registers a call on the installed link; `None` when there is none.
    pub(crate) fn register_on_link(
        &self,
        id: u64,
    ) -> Option<(Link, oneshot::Receiver<Result<Response, UpstreamError>>)> {
        let mut calls = self.calls();
        let link = calls.link.clone()?;
        let (tx, rx) = oneshot::channel();
        calls.pending.insert(id, tx);
        Some((link, rx))
    }

    /// Registers a call regardless of the link (the handshake, which runs
    /// before its link is installed).
    pub(crate) fn register(&self, id: u64) -> oneshot::Receiver<Result<Response, UpstreamError>> {
        let (tx, rx) = oneshot::channel();
        self.calls().pending.insert(id, tx);
        rx
    }

    pub(crate) fn forget(&self, id: u64) {
        self.calls().pending.remove(&id);
    }

    /// Completes a pending call. Returns false when no call waits for `id`.
    pub(crate) fn resolve(&self, id: u64, outcome: Result<Response, UpstreamError>) -> bool {
        let waiter = self.calls().pending.remove(&id);
        match waiter {
            Some(tx) => {
                // The caller may have given up in the meantime; that is fine.
                let _ = tx.send(outcome);
                true
            }
            None => false,
        }
    }

    pub(crate) fn install(&self, link: Link, info: Arc<InitInfo>) {
        let batches = warden_protocol::ProtocolVersion::parse(&info.protocol_version)
            .is_some_and(|v| v.allows_batches());
        self.batches.store(batches, Ordering::Relaxed);
        self.modern.store(info.modern, Ordering::Relaxed);
        {
            let mut calls = self.calls();
            calls.link = Some(link);
            calls.info = Some(info);
        }
        // Waiters wake on this, after the link is in place.
        self.status.send_modify(|s| s.state = UpstreamState::Ready);
    }

    /// Removes the link. With `fail`, every pending call fails at once with
    /// that error; without, pending calls stay (an HTTP call whose session
    /// expired retries on the next session by itself).
    pub(crate) fn uninstall(&self, fail: Option<UpstreamError>, next: UpstreamState) {
        let drained: Vec<Waiter> = {
            let mut calls = self.calls();
            calls.link = None;
            calls.info = None;
            if fail.is_some() {
                calls.pending.drain().map(|(_, tx)| tx).collect()
            } else {
                Vec::new()
            }
        };
        if let Some(err) = fail {
            for tx in drained {
                let _ = tx.send(Err(err.clone()));
            }
        }
        self.status.send_modify(|s| s.state = next);
    }

    pub(crate) fn set_state(&self, state: UpstreamState) {
        self.status.send_modify(|s| s.state = state);
    }

    pub(crate) fn attempt_failed(&self, err: UpstreamError) {
        self.status.send_modify(|s| {
            s.failures += 1;
            s.last_error = Some(err);
        });
    }

    pub(crate) async fn emit(&self, event: UpstreamEvent) {
        // A gateway that dropped its receiver is shutting down.
        if self.events.send(event).await.is_ok() {
            self.emitted.fetch_add(1, Ordering::Release);
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Waits until a link is installed. Fails when a connection attempt
    /// fails while waiting, or the upstream is failed or closed.
    pub(crate) async fn wait_for_link(&self) -> Result<Link, UpstreamError> {
        self.wait_for(|c| c.link.clone()).await
    }

    /// As [`Self::wait_for_link`], for a link accepted by `accept`.
    pub(crate) async fn wait_for_link_where(
        &self,
        accept: impl Fn(&Link) -> bool,
    ) -> Result<Link, UpstreamError> {
        self.wait_for(|c| c.link.clone().filter(|l| accept(l)))
            .await
    }

    /// Waits for the upstream to be initialized; what it answered.
    pub(crate) async fn wait_for_info(&self) -> Result<Arc<InitInfo>, UpstreamError> {
        self.wait_for(|c| c.info.clone()).await
    }

    async fn wait_for<T>(&self, pick: impl Fn(&Calls) -> Option<T>) -> Result<T, UpstreamError> {
        let mut status = self.status.subscribe();
        let failures_at_start = status.borrow_and_update().failures;
        loop {
            if let Some(found) = pick(&self.calls()) {
                return Ok(found);
            }
            {
                let s = status.borrow_and_update();
                match s.state {
                    UpstreamState::Closed => {
                        return Err(UpstreamError::Closed("upstream shut down".into()))
                    }
                    UpstreamState::Failed => return Err(unavailable(&s)),
                    _ if s.failures > failures_at_start => return Err(unavailable(&s)),
                    _ => {}
                }
            }
            if status.changed().await.is_err() {
                return Err(UpstreamError::Closed("upstream shut down".into()));
            }
        }
    }

    /// Routes one inbound body (a message or, where the negotiated version
    /// allows, a batch). The response to `ours`, when given and present, is
    /// returned instead of routed; every other response completes its
    /// pending call; requests and notifications become events. A body that
    /// fails the strict parse is logged and its error returned.
    ///
    /// Takes the text by value: a single message (the common case) moves
    /// into its response or event without a copy.
    pub(crate) async fn route(
        &self,
        text: String,
        related_to: Option<u64>,
        ours: Option<u64>,
    ) -> Result<Option<Response>, WireError> {
        let batches = self.batches.load(Ordering::Relaxed);
        let routes: Vec<(Route, Option<String>)> =
            match message::parse(&text, &self.spec.limits, batches) {
                Ok(Incoming::Single(m)) => vec![(Route::of(&m), None)],
                Ok(Incoming::Batch(all)) => all
                    .iter()
                    .map(|m| (Route::of(m), Some(m.text.to_owned())))
                    .collect(),
                Err(e) => {
                    self.log_invalid(text.as_bytes(), &e);
                    return Err(e);
                }
            };
        let mut whole = Some(text);
        let mut found = None;
        for (route, part) in routes {
            let Some(text) = part.or_else(|| whole.take()) else {
                continue;
            };
            if let Some(r) = self.deliver(route, text, related_to, ours).await {
                found = Some(r);
            }
        }
        Ok(found)
    }

    async fn deliver(
        &self,
        route: Route,
        text: String,
        related_to: Option<u64>,
        ours: Option<u64>,
    ) -> Option<Response> {
        match route {
            Route::Response(None) => {
                warn!(
                    target: "upstream",
                    server = %self.name(),
                    message = %log_safe(text.as_bytes(), LOGGED_MESSAGE_BYTES),
                    "dropped a response whose id Warden never sent"
                );
                None
            }
            Route::Response(Some(id)) => {
                let response = Response {
                    id,
                    text,
                    events_before: self.emitted.load(Ordering::Acquire),
                };
                if Some(id) == ours {
                    return Some(response);
                }
                if !self.resolve(id, Ok(response)) {
                    debug!(
                        target: "upstream",
                        server = %self.name(),
                        id,
                        "dropped a response to no pending call (unknown, timed out or cancelled)"
                    );
                }
                None
            }
            Route::Request if self.modern.load(Ordering::Relaxed) => {
                warn!(
                    target: "upstream",
                    server = %self.name(),
                    message = %log_safe(text.as_bytes(), LOGGED_MESSAGE_BYTES),
                    "dropped a request from a 2026-07-28 server (that era has none)"
                );
                None
            }
            Route::Request | Route::Notification => {
                self.emit(UpstreamEvent::Message {
                    server: self.spec.name.clone(),
                    text,
                    related_to,
                })
                .await;
                None
            }
        }
    }

    /// Logs an inbound message that failed the strict parse.
    pub(crate) fn log_invalid(&self, text: &[u8], err: &dyn std::fmt::Display) {
        warn!(
            target: "upstream",
            server = %self.name(),
            error = %err,
            message = %log_safe(text, LOGGED_MESSAGE_BYTES),
            "invalid message from upstream"
        );
    }

    /// A bound for sends that have no deadline of their own (notifications,
    /// responses, the handshake's follow-up).
    pub(crate) fn send_timeout(&self) -> Duration {
        self.spec.connect_timeout
    }
}

/// Where an inbound message goes, decided while its text is borrowed.
enum Route {
    /// A response; the id when it is one Warden could have sent (an integer).
    Response(Option<u64>),
    /// A request from the server.
    Request,
    /// A notification from the server.
    Notification,
}

impl Route {
    fn of(m: &Message<'_>) -> Route {
        match m.kind {
            Kind::Result | Kind::Error => Route::Response(m.id.and_then(|id| id.as_u64())),
            Kind::Request => Route::Request,
            Kind::Notification => Route::Notification,
        }
    }
}

fn unavailable(s: &Status) -> UpstreamError {
    match &s.last_error {
        Some(UpstreamError::Config(m)) => UpstreamError::Config(m.clone()),
        Some(e) => UpstreamError::Unavailable(e.to_string()),
        None => UpstreamError::Unavailable("not connected".into()),
    }
}

/// Removes a call's pending entry when the caller gives up: on timeout, on
/// error, or when its future is dropped (which also drops an HTTP
/// exchange polled beside it, closing its response).
pub(crate) struct PendingGuard {
    pub shared: Arc<Shared>,
    pub id: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.shared.forget(self.id);
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
