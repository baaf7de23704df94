//! The gateway core: sessions, the entry of every client message into the
//! pipeline (`crate::pipeline`, whose module docs list the stages in
//! order), and the routing of upstream messages back to clients.
//!
//! # Invariants
//!
//! - **One snapshot per request.** [`Gateway::handle_call`] pins the
//!   configuration once ([`crate::pipeline::Exchange::snap`]); every stage
//!   of that request reads it, so a reload mid-call never authorizes under
//!   one configuration and guards the output under the next.
//! - **Every refusal is audited.** A stage refuses with a typed
//!   [`crate::pipeline::Refusal`]; the record stage maps it, once, to the
//!   client's answer, the log line and the audit record.
//! - **No stage does I/O except execute** (and the registry's bounded,
//!   cached fetch of the live definitions); background tasks (reaper,
//!   registry keeper, upstream dispatch) do the rest.
//! - **No request data in task-locals**: what the transport knows about a
//!   request ([`Inbound`]) is passed in by signature.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};
use warden_identity::Principal;
use warden_protocol::edit::EditSet;
use warden_protocol::error::{error_response, result_response};
use warden_protocol::message::{as_str, member, parse_one, Kind, Message};
use warden_protocol::{ErrorCode, ProtocolVersion};
use warden_registry::{ItemDecision, ItemKind};
use warden_upstream::UpstreamEvent;

use crate::call::Call;
use crate::federation::{self, truncate};
use crate::pipeline::authorize::S2c;
use crate::pool::{Pool, PoolKey, StartSpec, UpstreamHandle};
use crate::session::{
    lock, owner_key, Channel, ClientCaps, PendingS2c, Session, SessionCaps, Sessions, SessionsFull,
    Slots,
};
use crate::snapshot::{Snapshot, VirtualRoute};
use crate::stream::Sink;
use sha2::{Digest, Sha256};

/// A caller's W3C trace context from the transport (`traceparent` and
/// `tracestate` headers).
#[derive(Debug, Clone, Copy)]
pub struct TraceContext<'a> {
    pub traceparent: &'a str,
    pub tracestate: Option<&'a str>,
}

pub use crate::pipeline::{Handled, Inbound};

/// Where a progress notification from an upstream goes back to.
pub(crate) struct ProgressRoute {
    pub(crate) session: Weak<Session>,
    pub(crate) client_token: String,
    pub(crate) sink: Sink,
    /// What the output guard's per-tool settings are keyed by (the exposed
    /// tool or prompt name, or the URI) and the server: progress messages
    /// are guarded like the result they precede.
    pub(crate) subject: String,
    pub(crate) server: String,
}

/// The session and client id a request sent upstream belongs to.
type RequestOwner = (Weak<Session>, String);

pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    /// The OAuth resource server; `None` when no `identity:` is configured.
    authenticator: arc_swap::ArcSwapOption<warden_identity::Authenticator>,
    /// The audit trail; `None` until the caller installs it (tests of the
    /// core alone run without one).
    audit: arc_swap::ArcSwapOption<warden_audit::AuditLog>,
    /// Prometheus metrics (rendered at `/metrics`).
    pub metrics: warden_telemetry::Metrics,
    pub sessions: Sessions,
    /// Long-lived SSE streams open, per owner
    /// (`gateway.max_streams_per_principal`).
    pub(crate) streams: Slots,
    pub(crate) pool: Pool,
    pub(crate) progress: Mutex<HashMap<String, ProgressRoute>>,
    /// (upstream instance, upstream-side id) → (session, client id).
    pub(crate) by_upstream_id: Mutex<HashMap<(u64, u64), RequestOwner>>,
    counter: AtomicU64,
    /// Registry refusals already reported (`server/kind/name@live-hash`,
    /// `server:reason`), so an item listed again is not a new audit record.
    pub(crate) reported: Mutex<HashSet<String>>,
    /// Probe connections to the servers marked `required` (`/readyz`).
    pub(crate) probes: crate::readiness::Probes,
    /// Per-process secret: binds a 2026-07-28 upstream's `requestState` to
    /// the server and principal it was issued for, and derives the ids of
    /// modern contexts.
    pub(crate) state_key: [u8; 32],
    /// RFC 8693 exchanges and their per-principal cache (`mode: exchange`).
    pub(crate) exchanger: Option<Arc<warden_credentials::Exchanger>>,
    /// Users' own tokens for `mode: oauth` upstreams (`credentials.grant_store`).
    pub(crate) oauth: Option<Arc<crate::pipeline::credentials::OAuthUsers>>,
    /// Held calls' approvals; `None` until installed (the core alone runs
    /// without: held calls are then refused).
    pub(crate) approvals: arc_swap::ArcSwapOption<warden_approvals::Approvals>,
}

/// Why a new configuration was not swapped in.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    #[error("{} changed: these sections take effect only when Warden restarts; the running configuration is kept", .0.join(", "))]
    NeedsRestart(Vec<&'static str>),
}

/// The sections a running Warden cannot change, that differ.
fn restart_only_changes(
    old: &warden_config::Config,
    new: &warden_config::Config,
) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.listen != new.listen {
        changed.push("listen");
    }
    if old.identity != new.identity {
        changed.push("identity");
    }
    if old.audit != new.audit {
        changed.push("audit");
    }
    if old.telemetry != new.telemetry {
        changed.push("telemetry");
    }
    if old.tls != new.tls {
        changed.push("tls");
    }
    if old.approvals.store != new.approvals.store {
        changed.push("approvals.store");
    }
    if old.grant_store != new.grant_store {
        changed.push("credentials.grant_store");
    }
    changed
}

/// Why `initialize` could not open a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("unknown virtual server")]
    UnknownVirtualServer,
    #[error("too many sessions (gateway.max_sessions)")]
    TooManySessions,
    #[error(
        "too many sessions for this principal (gateway.max_sessions_per_principal is {0}): \
         end sessions you no longer use (DELETE), or retry later"
    )]
    TooManyPrincipalSessions(usize),
    #[error("{0}")]
    BadRequest(String),
}

impl Gateway {
    pub fn new(snapshot: Snapshot) -> Arc<Gateway> {
        let oauth = crate::pipeline::credentials::OAuthUsers::from_config(&snapshot.config);
        let gw = Arc::new(Gateway {
            snapshot: ArcSwap::from_pointee(snapshot),
            authenticator: arc_swap::ArcSwapOption::empty(),
            audit: arc_swap::ArcSwapOption::empty(),
            metrics: warden_telemetry::Metrics::new(),
            sessions: Sessions::default(),
            streams: Slots::default(),
            pool: Pool::default(),
            progress: Mutex::new(HashMap::new()),
            state_key: rand::random(),
            by_upstream_id: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(1),
            reported: Mutex::new(HashSet::new()),
            probes: Default::default(),
            exchanger: warden_credentials::Exchanger::new().ok().map(Arc::new),
            oauth,
            approvals: arc_swap::ArcSwapOption::empty(),
        });
        spawn_reaper(Arc::downgrade(&gw));
        crate::pipeline::registry::spawn_registry_keeper(Arc::downgrade(&gw));
        gw.sync_probes();
        gw
    }

    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// Installs the authenticator (started by the caller: it fetches keys).
    pub fn set_authenticator(&self, auth: Option<Arc<warden_identity::Authenticator>>) {
        if let Some(a) = &auth {
            advertise_scopes(a, &self.snapshot());
        }
        self.authenticator.store(auth);
    }

    pub fn authenticator(&self) -> Option<Arc<warden_identity::Authenticator>> {
        self.authenticator.load_full()
    }

    /// Installs the audit trail (started by the caller: it recovers the
    /// journal before serving).
    pub fn set_audit(&self, audit: Option<Arc<warden_audit::AuditLog>>) {
        self.audit.store(audit);
    }

    pub fn audit(&self) -> Option<Arc<warden_audit::AuditLog>> {
        self.audit.load_full()
    }

    /// Records an event that is not a call (lifecycle, authentication):
    /// asynchronously, never blocking the caller.
    pub fn record(&self, event: warden_audit::Event) {
        if let Some(a) = self.audit.load().as_ref() {
            if let Err(e) = a.record(event) {
                warn!(error = %e, "audit record failed");
            }
        }
    }

    /// Swaps in a new configuration; running sessions keep their upstreams.
    /// With unchanged `registry:` settings the running registry is kept
    /// (its drift memory survives) and given the lock file as now on disk.
    /// Every connected session is told its lists may have changed (servers,
    /// exposure, policy and pins all shape them).
    ///
    /// Sections bound when Warden started (`listen`, `identity`, `audit`,
    /// `telemetry`, `tls`) cannot change in a running process: such a
    /// reload is refused whole, naming them, and the running configuration
    /// stays.
    pub fn reload(&self, mut snapshot: Snapshot) -> Result<(), ReloadError> {
        let old = self.snapshot.load();
        let fixed = restart_only_changes(&old.config, &snapshot.config);
        if !fixed.is_empty() {
            return Err(ReloadError::NeedsRestart(fixed));
        }
        if old.config.registry == snapshot.config.registry {
            old.registry.replace_lock(snapshot.registry.lock_snapshot());
            snapshot.registry = old.registry.clone();
        }
        if old.config.limits == snapshot.config.limits {
            snapshot.limiter = old.limiter.clone();
        }
        // Upstreams may hold the published keys: a reload that leaves
        // `credentials:` alone keeps signing with them.
        if old.config.credentials == snapshot.config.credentials {
            snapshot.minter = old.minter.clone();
        }
        if let Some(a) = self.authenticator.load_full() {
            advertise_scopes(&a, &snapshot);
        }
        self.snapshot.store(Arc::new(snapshot));
        self.sync_probes();
        for s in self.sessions.all() {
            tell_lists_changed(&s);
        }
        Ok(())
    }

    pub(crate) fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// A correlation id for one request: joins the client's error, the log
    /// and the audit record. The counter leads, so ids of consecutive
    /// requests sort together: the audit stores' correlation index then
    /// grows at one end instead of taking a random page per record.
    pub fn correlation_id(&self) -> String {
        let r: u32 = rand::random();
        format!("{:06x}{:08x}", self.next() & 0xff_ffff, r)
    }

    // ---------------------------------------------------------------- sessions

    /// Handles `initialize`: opens a session and answers with the union of
    /// the upstreams' capabilities. `client_addr` counts an anonymous
    /// caller's sessions by its address ([`owner_key`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn initialize(
        self: &Arc<Self>,
        principal: Principal,
        client_addr: Option<std::net::SocketAddr>,
        virtual_server: &str,
        channel: Channel,
        msg: &Message<'_>,
        standalone: Sink,
        session_id: String,
    ) -> Result<(Arc<Session>, String), OpenError> {
        let snap = self.snapshot();
        let route = snap
            .route(virtual_server)
            .ok_or(OpenError::UnknownVirtualServer)?
            .clone();
        let requested = msg.param_str("protocolVersion").ok_or_else(|| {
            OpenError::BadRequest("initialize: params.protocolVersion must be a string".into())
        })?;
        let version = ProtocolVersion::negotiate(&requested);
        let caps = ClientCaps::declared(msg.param("capabilities"));
        let session = Session::new(
            session_id,
            principal,
            virtual_server.to_owned(),
            channel,
            version,
            caps,
            caps.upstream_json(),
            standalone,
        );
        session.touch();
        let owner = owner_key(&session.principal, client_addr);
        self.sessions
            .insert(session.clone(), &owner, session_caps(&snap))
            .map_err(|full| self.sessions_full(&snap, full, client_addr))?;

        let (capabilities, instructions, ready) = self.describe(&snap, &session, &route).await;
        let mut result = serde_json::json!({
            "protocolVersion": version.as_str(),
            "capabilities": capabilities,
            "serverInfo": {"name": snap.config.gateway.name, "version": env!("CARGO_PKG_VERSION")},
        });
        if let Some(i) = instructions {
            result["instructions"] = serde_json::Value::String(i);
        }
        let id = msg.id.map(|i| i.raw()).unwrap_or("null");
        info!(target: "audit", event = "session.open", session = %session.id,
              principal = %session.principal.subject(), version = %version,
              virtual_server = %virtual_server, upstreams_ready = ready);
        Ok((session.clone(), result_response(id, &result.to_string())))
    }

    /// What Warden says about itself to a session: the union of its ready
    /// upstreams' capabilities and the composed instructions (stage 4 on
    /// upstream instructions). Starts (or joins) every upstream at once.
    async fn describe(
        self: &Arc<Self>,
        snap: &Snapshot,
        session: &Arc<Session>,
        route: &VirtualRoute,
    ) -> (serde_json::Value, Option<String>, usize) {
        // Start (or join) every upstream of the virtual server at once.
        let inits = futures::future::join_all(route.servers.iter().map(|server| {
            let gw = self.clone();
            let session = session.clone();
            async move {
                let h = gw.upstream_for(snap, &session, server)?;
                match h.upstream.ready().await {
                    Ok(info) => Some((server.clone(), info, h.registry_instance.clone())),
                    Err(e) => {
                        warn!(server = %server, error = %e, "upstream not ready at initialize");
                        None
                    }
                }
            }
        }))
        .await;
        let ready: Vec<_> = inits.into_iter().flatten().collect();
        let raws: Vec<&RawValue> = ready
            .iter()
            .filter_map(|(_, info, _)| serde_json::from_str::<&RawValue>(&info.result).ok())
            .collect();
        let capabilities = federation::union_capabilities(&raws);
        let per_server: Vec<(String, String)> = ready
            .iter()
            .filter_map(|(server, info, instance)| {
                let own = snap.server(server).and_then(|s| s.instructions.clone());
                let text = match own {
                    Some(text) => text,
                    None => {
                        let text = serde_json::from_str::<&RawValue>(&info.result)
                            .ok()
                            .and_then(|r| member(r, "instructions"))
                            .and_then(as_str)
                            .map(|s| s.into_owned())?;
                        // Stage 4: an upstream's instructions reach the model
                        // like a description does; only pinned ones pass.
                        let m = warden_registry::instructions_manifest(server, &text).ok()?;
                        match snap.registry.check_item(&m, instance) {
                            ItemDecision::Allow => text,
                            ItemDecision::Hidden(reason) => {
                                self.report_hidden(&m, &reason, "instructions");
                                return None;
                            }
                        }
                    }
                };
                Some((server.clone(), text))
            })
            .collect();
        let instructions = federation::compose_instructions(
            snap.config.gateway.instructions.as_deref(),
            &per_server,
        );
        (capabilities, instructions, ready.len())
    }

    /// The 2026-07-28 context for a request without a session: one per
    /// (principal, virtual server, declared capabilities), created on first
    /// use and closed by the idle reaper like a session. Its id is derived
    /// with a per-process secret and never leaves Warden.
    pub fn modern_session(
        self: &Arc<Self>,
        principal: Principal,
        client_addr: Option<std::net::SocketAddr>,
        virtual_server: &str,
        capabilities: Option<&RawValue>,
    ) -> Result<Arc<Session>, OpenError> {
        let snap = self.snapshot();
        if snap.route(virtual_server).is_none() {
            return Err(OpenError::UnknownVirtualServer);
        }
        let caps = ClientCaps::declared(capabilities);
        let mut h = Sha256::new();
        h.update(self.state_key);
        for part in [principal.key().as_bytes(), virtual_server.as_bytes()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.update([
            caps.sampling as u8,
            caps.elicitation as u8,
            caps.roots as u8,
        ]);
        let id = format!("m-{}", hex::encode(&h.finalize()[..16]));
        if let Some(s) = self.sessions.get(&id) {
            s.touch();
            return Ok(s);
        }
        let (listeners, _) = tokio::sync::broadcast::channel(LISTEN_BUFFER);
        let standalone = Sink::Broadcast(listeners);
        let fresh = Session::new(
            id,
            principal,
            virtual_server.to_owned(),
            Channel::Modern,
            ProtocolVersion::V2026_07_28,
            caps,
            caps.upstream_json(),
            standalone,
        );
        let owner = owner_key(&fresh.principal, client_addr);
        let (session, created) = self
            .sessions
            .get_or_insert(fresh, &owner, session_caps(&snap))
            .map_err(|full| self.sessions_full(&snap, full, client_addr))?;
        session.touch();
        if created {
            info!(target: "audit", event = "session.open", session = %session.id,
                  principal = %session.principal.subject(), version = %session.version,
                  virtual_server = %virtual_server, modern = true);
        }
        Ok(session)
    }

    /// The refusal of a session over a cap, counted and reported.
    fn sessions_full(
        &self,
        snap: &Snapshot,
        full: SessionsFull,
        client_addr: Option<std::net::SocketAddr>,
    ) -> OpenError {
        let (kind, error) = match full {
            SessionsFull::Total => (
                warden_telemetry::EdgeRefusal::MaxSessions,
                OpenError::TooManySessions,
            ),
            SessionsFull::Owner => (
                warden_telemetry::EdgeRefusal::MaxSessionsPerPrincipal,
                OpenError::TooManyPrincipalSessions(snap.config.gateway.max_sessions_per_principal),
            ),
        };
        crate::edge::report(&self.metrics, kind, client_addr.map(|a| a.ip()));
        error
    }

    /// `server/discover` (2026-07-28): the versions Warden serves, the
    /// union of its upstreams' capabilities, its instructions. Per
    /// principal (lists are filtered by policy), so `cacheScope` is private.
    pub(crate) async fn discover(
        self: &Arc<Self>,
        snap: &Snapshot,
        session: &Arc<Session>,
        route: &VirtualRoute,
    ) -> String {
        let (capabilities, instructions, _) = self.describe(snap, session, route).await;
        let info = serde_json::json!({"name": snap.config.gateway.name, "version": env!("CARGO_PKG_VERSION")});
        let mut result = serde_json::json!({
            "resultType": "complete",
            "supportedVersions": ProtocolVersion::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
            "capabilities": capabilities,
            "serverInfo": info,
            "ttlMs": 0,
            "cacheScope": "private",
            "_meta": {warden_protocol::modern::META_SERVER_INFO: info},
        });
        if let Some(i) = instructions {
            result["instructions"] = serde_json::Value::String(i);
        }
        result.to_string()
    }

    /// Ends a session and releases its upstreams.
    pub async fn close_session(&self, id: &str) -> bool {
        let Some(session) = self.sessions.remove(id) else {
            return false;
        };
        session
            .closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Sink::Stream(s) = session.standalone() {
            s.close();
        }
        for s in lock(&session.streams).iter() {
            s.close();
        }
        for (_, task) in lock(&session.listens).drain() {
            task.abort();
        }
        for h in self.pool.release_session(id) {
            h.upstream.shutdown().await;
        }
        info!(target: "audit", event = "session.close", session = %id);
        true
    }

    /// The upstream serving `server` for this session, started if needed.
    pub(crate) fn upstream_for(
        self: &Arc<Self>,
        snap: &Snapshot,
        session: &Session,
        server: &str,
    ) -> Option<Arc<UpstreamHandle>> {
        let cfg = snap.server(server)?;
        if self.server_refusal(snap, server).is_some() {
            return None;
        }
        let key = PoolKey::new(cfg, &session.id, &session.principal);
        let weak = Arc::downgrade(self);
        // Everything below runs only when the upstream must be started.
        Some(self.pool.acquire(
            &key,
            &session.id,
            || StartSpec {
                server: cfg.clone(),
                handshake: format!(
                    r#"{{"protocolVersion":"{}","capabilities":{},"clientInfo":{{"name":"warden","version":"{}"}}}}"#,
                    ProtocolVersion::LATEST_SESSION.as_str(),
                    upstream_capabilities(&session.client_capabilities_json, &key),
                    env!("CARGO_PKG_VERSION")
                ),
                // #15.14: a session-era client that may be asked things in
                // the middle of a call keeps that working with a dual-era
                // upstream; a 2026-07-28 client asks through
                // input-required results, which that era carries natively.
                session_first: session.channel != Channel::Modern
                    && (session.caps.sampling || session.caps.elicitation || session.caps.roots),
                limits: snap.upstream_limits,
                auth: crate::pipeline::credentials::connection_auth(
                    self,
                    snap,
                    cfg,
                    Some(&session.principal),
                ),
            },
            move |handle, rx| {
                tokio::spawn(dispatch_upstream_events(weak, handle, rx));
            },
        ))
    }

    // ---------------------------------------------------------------- requests

    /// Handles one validated client message in a session. Returns the
    /// response for requests (`None` for notifications, responses, and
    /// requests the client cancelled).
    pub async fn handle(
        self: &Arc<Self>,
        session: &Arc<Session>,
        msg: &Message<'_>,
        sink: &Sink,
        inbound: Inbound<'_>,
    ) -> Option<String> {
        self.handle_call(session, msg, sink, inbound).await.response
    }

    /// [`Gateway::handle`], with what the transport needs beyond the
    /// response (the refusal, for an HTTP status and challenge).
    pub async fn handle_call(
        self: &Arc<Self>,
        session: &Arc<Session>,
        msg: &Message<'_>,
        sink: &Sink,
        inbound: Inbound<'_>,
    ) -> Handled {
        let trace = inbound.trace;
        session.touch();
        match msg.kind {
            Kind::Request => {
                // A span per request; the caller's W3C trace context comes
                // from the transport's headers or from `params._meta`.
                let span = warden_telemetry::request_span(msg.method());
                let meta = msg.param("_meta");
                let from_meta = |k: &str| meta.and_then(|m| member(m, k)).and_then(as_str);
                let meta_tp = from_meta(warden_telemetry::TRACEPARENT);
                let meta_ts = from_meta(warden_telemetry::TRACESTATE);
                match (trace, meta_tp.as_deref()) {
                    (Some(t), _) => {
                        warden_telemetry::set_parent_from_traceparent(
                            &span,
                            t.traceparent,
                            t.tracestate,
                        );
                    }
                    (None, Some(tp)) => {
                        warden_telemetry::set_parent_from_traceparent(
                            &span,
                            tp,
                            meta_ts.as_deref(),
                        );
                    }
                    (None, None) => {}
                }
                let mut ex = self.exchange(session, msg, sink, inbound);
                self.run_pipeline(&mut ex).instrument(span).await
            }
            Kind::Notification => {
                self.handle_notification(session, msg).await;
                Handled::default()
            }
            Kind::Result | Kind::Error => {
                self.handle_client_response(session, msg).await;
                Handled::default()
            }
        }
    }

    /// The exchange for one request: the configuration snapshot pinned
    /// now, for every stage of this request.
    pub(crate) fn exchange<'m>(
        &self,
        session: &Arc<Session>,
        msg: &'m Message<'m>,
        sink: &Sink,
        inbound: Inbound<'_>,
    ) -> crate::pipeline::Exchange<'m> {
        let snap = self.snapshot.load_full();
        let route = snap
            .route_arc(&session.virtual_server)
            .unwrap_or_else(|| Arc::new(VirtualRoute::gone(&session.virtual_server)));
        crate::pipeline::Exchange {
            route,
            snap,
            session: session.clone(),
            principal: inbound
                .principal
                .unwrap_or_else(|| session.principal.clone()),
            msg,
            id: msg.id.map(|i| i.raw()).unwrap_or("null"),
            sink: sink.clone(),
            call: Call::new(self.correlation_id(), inbound.client_addr),
            target: crate::pipeline::Target::Unrouted,
            edits: EditSet::new(),
            definition: None,
            approval: None,
            admission: None,
            upstream_headers: Vec::new(),
            credential_headers: Vec::new(),
            subject_token: inbound.subject_token,
            param_headers: inbound.param_headers,
            hashed_arguments: None,
        }
    }

    // ----------------------------------------------------------- notifications

    async fn handle_notification(self: &Arc<Self>, session: &Arc<Session>, msg: &Message<'_>) {
        match msg.method() {
            // Nothing to do: Warden sends clients no requests of its own
            // before they are initialized.
            "notifications/initialized" => {}
            "notifications/cancelled" => {
                let Some(req) = msg.param("requestId") else {
                    return;
                };
                let entry = lock(&session.inflight).get(req.get()).cloned();
                if let Some(e) = entry {
                    e.cancel.notify_one();
                }
            }
            "notifications/roots/list_changed" => {
                let snap = self.snapshot();
                let Some(route) = snap.route(&session.virtual_server) else {
                    return;
                };
                for server in &route.servers {
                    if let Some(h) = self.upstream_for(&snap, session, server) {
                        let _ = h.upstream.notify(msg.text.to_owned()).await;
                    }
                }
            }
            other => debug!(method = %other, "client notification ignored"),
        }
    }

    /// A client's answer to a server-to-client request: back to the upstream
    /// that asked, with the upstream's id.
    async fn handle_client_response(self: &Arc<Self>, session: &Arc<Session>, msg: &Message<'_>) {
        let Some(id) = msg.id else {
            debug!("client response without id ignored");
            return;
        };
        let Some(pending) = lock(&session.pending_s2c).remove(id.raw()) else {
            debug!("client response to an unknown request ignored");
            return;
        };
        let (upstream, upstream_id, roots) = match pending {
            PendingS2c::Upstream {
                upstream,
                upstream_id,
                roots,
            } => (upstream, upstream_id, roots),
            PendingS2c::Local(tx) => {
                let _ = tx.send(msg.text.to_owned());
                return;
            }
        };
        if roots {
            let snap = self.snapshot();
            let mounting = snap
                .server(&upstream.server)
                .and_then(|s| s.sandbox.as_ref())
                .and_then(|s| s.roots.as_ref().map(|r| (r, &s.protected)));
            if let Some((settings, protected)) = mounting {
                let text = self.mount_roots(
                    session,
                    &upstream,
                    msg,
                    &upstream_id,
                    &settings.allow,
                    protected,
                );
                if let Err(e) = upstream.upstream.respond(text).await {
                    warn!(server = %upstream.server, error = %e, "could not deliver client roots upstream");
                }
                return;
            }
        }
        let mut edits = EditSet::new();
        edits.replace(msg.text, id.raw_value(), upstream_id);
        if let Some(text) = edits.apply(msg.text) {
            if let Err(e) = upstream.upstream.respond(text).await {
                warn!(server = %upstream.server, error = %e, "could not deliver client response upstream");
            }
        }
    }

    /// A client's `roots/list` answer to a server whose sandbox mounts
    /// client roots (#19.4): the roots it may have are admitted, the
    /// process is restarted when they are not what it has mounted, and the
    /// server is told the admitted roots it can see now. Returns the answer
    /// for the upstream (with its own id).
    fn mount_roots(
        &self,
        session: &Session,
        upstream: &Arc<UpstreamHandle>,
        msg: &Message<'_>,
        upstream_id: &str,
        allow: &[std::path::PathBuf],
        protected: &[std::path::PathBuf],
    ) -> String {
        let parsed: Option<serde_json::Value> = serde_json::from_str(msg.text).ok();
        let declared = parsed
            .as_ref()
            .and_then(|v| v.get("result"))
            .and_then(|r| r.get("roots"))
            .and_then(serde_json::Value::as_array);
        let Some(declared) = declared else {
            // An error (or a malformed answer): the server gets an error,
            // never roots Warden did not look at.
            let e = parsed
                .as_ref()
                .and_then(|v| v.get("error"))
                .filter(|e| e.is_object())
                .cloned()
                .unwrap_or_else(|| {
                    serde_json::json!({"code": -32603, "message": "the client's roots/list answer has no roots list"})
                });
            return format!(r#"{{"jsonrpc":"2.0","id":{upstream_id},"error":{e}}}"#);
        };
        let admission = crate::roots::admit(declared, allow, protected);
        let record = |root: String, decision, reason: &str, outcome: Option<&str>| {
            self.record(warden_audit::Event {
                server: Some(upstream.server.clone()),
                session: Some(session.id.clone()),
                principal: Some(crate::call::principal_facts(&session.principal)),
                action: Some(root),
                decision: Some(decision),
                reason_code: Some(reason.to_owned()),
                lifecycle: outcome.map(|o| {
                    Box::new(warden_audit::Lifecycle {
                        outcome: Some(o.to_owned()),
                        ..Default::default()
                    })
                }),
                ..warden_audit::Event::new(warden_audit::EventKind::Roots)
            });
        };
        for r in &admission.refused {
            warn!(target: "audit", event = "roots.refused", server = %upstream.server,
                  session = %session.id, root = %r.root, reason = r.reason);
            record(r.root.clone(), warden_audit::Decision::Deny, r.reason, None);
        }
        let wanted = admission.paths();
        let mounted: std::collections::BTreeSet<std::path::PathBuf> =
            upstream.upstream.mounted_roots().into_iter().collect();
        if wanted != mounted {
            info!(target: "audit", event = "roots.remount", server = %upstream.server,
                  session = %session.id, roots = wanted.len());
            for p in &wanted {
                // Like the refusals, a URI: the root's real path as one.
                let uri = url::Url::from_file_path(p)
                    .map_or_else(|()| p.display().to_string(), String::from);
                record(
                    uri,
                    warden_audit::Decision::Allow,
                    "mounted",
                    Some("remount"),
                );
            }
            if wanted.is_empty() {
                record(
                    String::new(),
                    warden_audit::Decision::Allow,
                    "none",
                    Some("remount"),
                );
            }
            upstream.upstream.remount(wanted.iter().cloned().collect());
        }
        let told: Vec<&serde_json::Value> = admission
            .admitted
            .iter()
            .filter(|r| mounted.contains(&r.path))
            .map(|r| &r.entry)
            .collect();
        let result = serde_json::json!({ "roots": told });
        format!(r#"{{"jsonrpc":"2.0","id":{upstream_id},"result":{result}}}"#)
    }

    // ---------------------------------------------------------------- upstream → client

    /// Routes one message an upstream sent on its own (notification or
    /// server-to-client request) to the right client session.
    async fn on_upstream_message(
        self: &Arc<Self>,
        handle: &Arc<UpstreamHandle>,
        text: &str,
        related_to: Option<u64>,
    ) {
        let Ok(msg) = parse_one(text) else {
            return;
        };
        let sessions = self.sessions_on(handle);
        match msg.kind {
            Kind::Notification => {
                self.route_notification(handle, &msg, related_to, &sessions);
                // Stage 4: re-check the changed list now, so drift is
                // recorded even before a client lists or calls.
                let changed = match msg.method() {
                    "notifications/tools/list_changed" => Some(ItemKind::Tool),
                    "notifications/prompts/list_changed" => Some(ItemKind::Prompt),
                    _ => None,
                };
                if let Some(kind) = changed {
                    let (gw, h) = (self.clone(), handle.clone());
                    tokio::spawn(async move {
                        let snap = gw.snapshot.load_full();
                        if let Err(e) = gw.fetch_definitions(&snap, &h, kind).await {
                            debug!(server = %h.server, error = %e, "re-check after list_changed failed");
                        }
                    });
                }
            }
            Kind::Request => {
                self.route_s2c_request(handle, &msg, related_to, &sessions)
                    .await
            }
            _ => {}
        }
    }

    fn route_notification(
        &self,
        handle: &UpstreamHandle,
        msg: &Message<'_>,
        related_to: Option<u64>,
        sessions: &[Arc<Session>],
    ) {
        match msg.method() {
            "notifications/progress" => {
                let Some(tok) = msg.param("progressToken").and_then(as_str) else {
                    return;
                };
                let g = lock(&self.progress);
                let Some(route) = g.get(tok.as_ref()) else {
                    return;
                };
                if route.session.upgrade().is_none() {
                    return;
                }
                // Stage 8 on the message before it goes anywhere.
                let Some(guarded) = self.guard_notification(&route.subject, &route.server, msg)
                else {
                    return;
                };
                let Ok(guarded_msg) = parse_one(&guarded) else {
                    return;
                };
                let mut edits = EditSet::new();
                if let Some(raw) = guarded_msg.param("progressToken") {
                    edits.replace(&guarded, raw, route.client_token.clone());
                }
                if let Some(text) = edits.apply(&guarded) {
                    route.sink.send(text.into());
                }
            }
            "notifications/cancelled" => {
                // The upstream withdrew one of its own requests to a client.
                let Some(req) = msg.param("requestId") else {
                    return;
                };
                for s in sessions {
                    let found = lock(&s.pending_s2c)
                        .iter()
                        .find(|(_, p)| {
                            matches!(p, PendingS2c::Upstream { upstream, upstream_id, .. }
                                if upstream.instance == handle.instance && upstream_id == req.get())
                        })
                        .map(|(k, _)| k.clone());
                    if let Some(client_id) = found {
                        lock(&s.pending_s2c).remove(&client_id);
                        let mut edits = EditSet::new();
                        edits.replace(msg.text, req, client_id);
                        if let Some(text) = edits.apply(msg.text) {
                            s.standalone().send(text.into());
                        }
                    }
                }
            }
            "notifications/message" => {
                // Log messages usually belong to the request being served:
                // on its stream when one is in flight. Guarded like results.
                let Some(guarded) = self.guard_notification("", &handle.server, msg) else {
                    return;
                };
                let text: Arc<str> = guarded.into();
                let level = msg.param_str("level");
                // Sent while serving one client's request: that client's
                // alone (it may describe the request). Otherwise every
                // session on the upstream, each at the level it set.
                if let Some((s, sink)) =
                    related_to.and_then(|uid| self.related_session(handle, uid))
                {
                    if s.wants_log(level.as_deref()) && self.within_rate(&s, &handle.server) {
                        sink.send(text);
                    }
                    return;
                }
                for s in sessions {
                    if s.wants_log(level.as_deref()) && self.within_rate(s, &handle.server) {
                        s.sink_for_server(&handle.server).send(text.clone());
                    }
                }
            }
            "notifications/resources/updated" => {
                // Only to the sessions that subscribed to this URI here.
                let Some(uri) = msg.param_str("uri") else {
                    return;
                };
                let key = (handle.server.clone(), uri.into_owned());
                let text: Arc<str> = msg.text.into();
                for s in sessions {
                    if lock(&s.subscribed).contains(&key) && self.within_rate(s, &handle.server) {
                        s.standalone().send(text.clone());
                    }
                }
            }
            _ => {
                match msg.method() {
                    "notifications/tools/list_changed" => *lock(&handle.tools) = None,
                    "notifications/prompts/list_changed" => *lock(&handle.prompts) = None,
                    _ => {}
                }
                // list_changed, resources/updated and anything newer: session
                // events, on each session's standalone stream, unchanged.
                let text: Arc<str> = msg.text.into();
                for s in sessions {
                    if self.within_rate(s, &handle.server) {
                        s.standalone().send(text.clone());
                    }
                }
            }
        }
    }

    /// Whether one more unsolicited notification may go to `session` now
    /// (`gateway.notifications_per_second`). Progress and responses never
    /// come here. A drop is counted; a session's first is logged.
    fn within_rate(&self, session: &Session, server: &str) -> bool {
        let rate = self.snapshot().config.gateway.notifications_per_second;
        if session.notifications.admit(rate, std::time::Instant::now()) {
            return true;
        }
        self.metrics.notification_dropped();
        if session.notifications.first_drop() {
            warn!(target: "audit", event = "notifications.dropped", session = %session.id,
                  server = %server, per_second = rate,
                  "an upstream sends this session more notifications than gateway.notifications_per_second: \
                   the excess is dropped (counted in warden_notifications_dropped_total)");
        }
        false
    }

    async fn route_s2c_request(
        self: &Arc<Self>,
        handle: &Arc<UpstreamHandle>,
        msg: &Message<'_>,
        related_to: Option<u64>,
        sessions: &[Arc<Session>],
    ) {
        let Some(upstream_id) = msg.id else {
            return;
        };
        let reply_error =
            |code: ErrorCode, text: &str| error_response(Some(upstream_id.raw()), code, text, None);
        if msg.method() == "ping" {
            let _ = handle
                .upstream
                .respond(result_response(upstream_id.raw(), "{}"))
                .await;
            return;
        }
        // The session: the one whose request carried this message, else the
        // only one on this upstream.
        let related = related_to.and_then(|uid| self.related_session(handle, uid));
        // A request that belongs to no client request goes to the session
        // only when exactly one session is on this upstream: asking another
        // client (its roots, its model, its user) would answer for the
        // wrong one.
        let target = related.or_else(|| match sessions {
            [only] => Some((only.clone(), only.sink_for_server(&handle.server))),
            _ => None,
        });
        let Some((session, sink)) = target else {
            let why = if sessions.is_empty() {
                "no client session is connected"
            } else {
                "this upstream serves several client sessions and none of their requests is in flight: \
                 there is no one client to ask"
            };
            debug!(server = %handle.server, method = %msg.method(), sessions = sessions.len(), "server request refused: {why}");
            let _ = handle
                .upstream
                .respond(reply_error(ErrorCode::InternalError, why))
                .await;
            return;
        };
        let snap = self.snapshot();
        let decision =
            crate::pipeline::authorize::s2c_decision(&snap, &session, &handle.server, msg.method());
        match decision {
            S2c::Allow => {}
            S2c::Refuse(code, why) => {
                let _ = handle.upstream.respond(reply_error(code, why)).await;
                return;
            }
            S2c::Hold(order) => {
                // Held for a human (T26): the upstream waits for its answer
                // while the approval is asked for; nothing reaches the
                // client's model before it is approved.
                let gw = self.clone();
                let handle = handle.clone();
                let text = msg.text.to_owned();
                tokio::spawn(async move {
                    gw.hold_server_request(&snap, &session, &sink, &handle, &text, order)
                        .await;
                });
                return;
            }
        }
        self.forward_s2c(handle, msg, &session, &sink);
    }

    /// Sends an upstream's request to the client, its id swapped for one of
    /// Warden's (the answer goes back to the upstream with its own).
    pub(crate) fn forward_s2c(
        &self,
        handle: &Arc<UpstreamHandle>,
        msg: &Message<'_>,
        session: &Session,
        sink: &Sink,
    ) {
        let Some(upstream_id) = msg.id else {
            return;
        };
        let client_id = session.next_s2c_id();
        let mut edits = EditSet::new();
        edits.replace(msg.text, upstream_id.raw_value(), client_id.clone());
        let Some(text) = edits.apply(msg.text) else {
            return;
        };
        lock(&session.pending_s2c).insert(
            client_id,
            PendingS2c::Upstream {
                upstream: handle.clone(),
                upstream_id: upstream_id.raw().to_owned(),
                roots: msg.method() == "roots/list",
            },
        );
        info!(target: "audit", event = "server_request", server = %handle.server, session = %session.id, method = %msg.method());
        sink.send(text.into());
    }

    /// The session (and the stream) of the client request that upstream
    /// request `uid` serves, while it is in flight.
    fn related_session(&self, handle: &UpstreamHandle, uid: u64) -> Option<(Arc<Session>, Sink)> {
        let (weak, client_id) = lock(&self.by_upstream_id)
            .get(&(handle.instance, uid))
            .cloned()?;
        let s = weak.upgrade()?;
        let sink = lock(&s.inflight).get(&client_id).map(|i| i.sink.clone())?;
        Some((s, sink))
    }

    /// The level to set on an upstream shared by several sessions: the
    /// most verbose any of them asked for (each session's messages are
    /// then filtered to its own level, [`Session::wants_log`]).
    pub(crate) fn shared_log_level(&self, handle: &UpstreamHandle) -> Option<String> {
        self.sessions_on(handle)
            .iter()
            .filter_map(|s| lock(&s.log_level).clone())
            .filter_map(|l| crate::session::log_severity(&l).map(|sev| (sev, l)))
            .min_by_key(|(sev, _)| *sev)
            .map(|(_, l)| l)
    }

    /// Tells every session on an upstream that its lists may have changed.
    fn announce_lists_changed(&self, handle: &UpstreamHandle) {
        for s in self.sessions_on(handle) {
            tell_lists_changed(&s);
        }
    }

    /// The open sessions an upstream instance serves.
    pub(crate) fn sessions_on(&self, handle: &UpstreamHandle) -> Vec<Arc<Session>> {
        self.pool
            .sessions_of(handle.instance)
            .iter()
            .filter_map(|id| self.sessions.get(id))
            .collect()
    }

    /// Stops everything: sessions closed, upstreams shut down.
    pub async fn shutdown(&self) {
        for s in self.sessions.all() {
            self.close_session(&s.id).await;
        }
        for h in self.pool.drain() {
            h.upstream.shutdown().await;
        }
        self.stop_probes().await;
    }

    pub fn upstream_count(&self) -> usize {
        self.pool.len()
    }
}

/// The client capabilities an upstream is started with: the first
/// session's. An upstream every client shares is not told of roots: they
/// belong to one client session, and a process serving unrelated clients
/// would apply one client's roots (say `file:///`) to all of them.
fn upstream_capabilities(client: &str, key: &PoolKey) -> String {
    if !matches!(key, PoolKey::Shared { .. }) {
        return client.to_owned();
    }
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(client) {
        Ok(mut caps) => {
            caps.remove("roots");
            serde_json::Value::Object(caps).to_string()
        }
        Err(_) => "{}".to_owned(),
    }
}

async fn dispatch_upstream_events(
    gw: Weak<Gateway>,
    handle: Arc<UpstreamHandle>,
    mut rx: mpsc::Receiver<UpstreamEvent>,
) {
    while let Some(ev) = rx.recv().await {
        let Some(gw) = gw.upgrade() else {
            return;
        };
        // Counted after routing, whatever the event (see `wait_dispatched`).
        let _counted = DispatchGuard(&handle);
        match ev {
            UpstreamEvent::Message {
                text, related_to, ..
            } => {
                gw.on_upstream_message(&handle, &text, related_to).await;
            }
            UpstreamEvent::Restarted { generation, .. } => {
                info!(target: "audit", event = "upstream.restarted", server = %handle.server, generation);
                gw.metrics
                    .upstream_event(&handle.server, warden_telemetry::UpstreamEvent::Restarted);
                gw.record(warden_audit::Event {
                    server: Some(handle.server.clone()),
                    lifecycle: Some(Box::new(warden_audit::Lifecycle {
                        attempt: Some(generation),
                        ..Default::default()
                    })),
                    ..warden_audit::Event::new(warden_audit::EventKind::ServerRestarted)
                });
                *lock(&handle.tools) = None;
                *lock(&handle.prompts) = None;
                gw.announce_lists_changed(&handle);
            }
            // What a sandboxed server was refused: its egress proxy's
            // refusals, its tripwires, what its sandbox's watcher saw.
            UpstreamEvent::EgressRefused { target, reason, .. } => {
                warn!(target: "audit", event = "egress.refused", server = %handle.server, target = %target, reason = %reason);
                gw.record_refusal(
                    &handle,
                    warden_audit::EventKind::EgressRefused,
                    target,
                    reason,
                );
            }
            UpstreamEvent::Tripwire { path, .. } => {
                gw.record_refusal(&handle, warden_audit::EventKind::Tripwire, path, "tripwire");
            }
            UpstreamEvent::SandboxRefused { what, target, .. } => {
                gw.record_refusal(
                    &handle,
                    warden_audit::EventKind::SandboxRefused,
                    target,
                    what,
                );
            }
            UpstreamEvent::Down { reason, .. } => {
                warn!(target: "audit", event = "upstream.down", server = %handle.server, reason = %reason);
                gw.metrics
                    .upstream_event(&handle.server, warden_telemetry::UpstreamEvent::Down);
                gw.record(warden_audit::Event {
                    server: Some(handle.server.clone()),
                    lifecycle: Some(Box::new(warden_audit::Lifecycle {
                        exit: Some(truncate(&reason.to_string(), 256)),
                        ..Default::default()
                    })),
                    ..warden_audit::Event::new(warden_audit::EventKind::ServerDied)
                });
            }
        }
    }
}

impl Gateway {
    /// Audits something an upstream's sandbox or egress proxy refused.
    fn record_refusal(
        &self,
        handle: &UpstreamHandle,
        kind: warden_audit::EventKind,
        action: String,
        reason: &str,
    ) {
        self.record(warden_audit::Event {
            server: Some(handle.server.clone()),
            action: Some(action),
            decision: Some(warden_audit::Decision::Deny),
            reason_code: Some(reason.to_owned()),
            ..warden_audit::Event::new(kind)
        });
    }
}

/// Marks an event as routed when dropped, on every path out of the match.
struct DispatchGuard<'a>(&'a UpstreamHandle);

impl Drop for DispatchGuard<'_> {
    fn drop(&mut self) {
        self.0.mark_dispatched();
    }
}

/// Reaps idle sessions and idle upstreams every few seconds.
fn spawn_reaper(gw: Weak<Gateway>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let Some(gw) = gw.upgrade() else {
                return;
            };
            let idle = gw.snapshot().config.gateway.session_idle_timeout;
            for s in gw.sessions.all() {
                if s.channel != Channel::Stdio
                    && s.idle_for() > idle
                    && lock(&s.inflight).is_empty()
                {
                    info!(session = %s.id, "idle session closed");
                    gw.close_session(&s.id).await;
                }
            }
            for h in gw.pool.reap_idle() {
                info!(server = %h.server, "idle upstream closed");
                h.upstream.shutdown().await;
            }
        }
    });
}

/// The session caps of a configuration.
fn session_caps(snap: &Snapshot) -> SessionCaps {
    SessionCaps {
        total: snap.config.gateway.max_sessions,
        per_owner: snap.config.gateway.max_sessions_per_principal,
    }
}

/// Messages a slow `subscriptions/listen` reader may fall behind by before
/// it misses some (it is then told the lists changed).
const LISTEN_BUFFER: usize = 256;
pub(crate) static B64URL: base64::engine::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// JSON text as a value (`Null` when absent or not JSON).
pub(crate) fn json_value(raw: Option<&str>) -> serde_json::Value {
    raw.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// The scopes the policy requires, advertised in the protected resource
/// metadata (RFC 9728); 401 challenges name the actions' only (MCP scope
/// selection), so a client asks for those first and steps up to a tool's
/// own scopes when a call is refused with 403 `insufficient_scope`.
fn advertise_scopes(auth: &warden_identity::Authenticator, snap: &Snapshot) {
    let (initial, all) = snap
        .policy
        .as_ref()
        .map(|p| (p.action_scopes(), p.scopes_used()))
        .unwrap_or_default();
    if let Err(e) = auth.set_policy_scopes_with_step_up(&initial, &all) {
        warn!(error = %e, "policy scopes not advertised");
    }
}

/// Tells a session its tools, prompts and resources may have changed.
fn tell_lists_changed(s: &Session) {
    for m in ["tools", "prompts", "resources"] {
        let text = format!(r#"{{"jsonrpc":"2.0","method":"notifications/{m}/list_changed"}}"#);
        s.standalone().send(text.into());
    }
}
