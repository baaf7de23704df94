//! The gateway core: sessions, the request pipeline, and the routing of
//! upstream messages back to clients.
//!
//! # The pipeline
//!
//! Every client message passes these stages, in this order, in
//! [`Gateway::handle_request`] and the functions it calls:
//!
//! 1. **Transport** — the transport (HTTP, legacy SSE, stdio) reads the bytes
//!    and runs the strict parse (`warden_protocol::message::parse`) before
//!    calling in; nothing here ever sees an unvalidated message.
//! 2. **Authenticate** — the transport resolves the caller to a `Principal`
//!    and checks that the session belongs to it.
//! 3. **Route** — `route_by_name` / `route_by_uri`: namespaced name → (server,
//!    upstream name), checked against the virtual server's exposure.
//! 4. **Execute** — `forward`: the upstream for the session's isolation key,
//!    the request with Warden's id (and progress token) spliced in, a deadline.
//! 5. **Respond** — the upstream's response with the client's id spliced back;
//!    every other byte as the upstream sent it.
//! 6. **Record** — one structured `audit` event per decision.
//!
//! Registry, authorization, limits, guards, approvals and credentials are
//! stages that slot in between Route and Execute (and after Execute for
//! output guards); each is its own crate and issue.
//!
//! Stage 4, **Registry** (`warden_registry`): every list an upstream returns
//! (tools, prompts, resource templates, and its `initialize` instructions)
//! is hashed and checked; only pinned, unchanged items reach a client.
//! Before every `tools/call` and `prompts/get` the live definition (cached
//! per upstream for at most `registry.revalidate_after`, dropped on
//! `list_changed` and on restart) is hashed again and checked: a changed or
//! unpinned item is refused (-32015) before any upstream sees the call. A
//! server whose pinned identity (command line, executable hash, URL)
//! changed is never started.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::Engine as _;
use hmac::Mac;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, Notify};
use tracing::{debug, error, info, warn, Instrument};
use warden_identity::Principal;
use warden_protocol::edit::{json_string, EditSet};
use warden_protocol::error::{error_response, result_response};
use warden_protocol::message::{as_str, member, members, parse_one, Kind, Message};
use warden_protocol::method::{self, ListKind, NameKind, Route};
use warden_protocol::{ErrorCode, ProtocolVersion};
use warden_registry::{ItemDecision, ItemKind, Manifest, Reason};
use warden_upstream::{UpstreamError, UpstreamEvent};

use crate::call::Call;
use crate::federation::{self, cursor, has_capability, rewrite_page, truncate};
use crate::pool::{Definition, Definitions, Pool, PoolKey, StartSpec, UpstreamHandle};
use crate::session::{lock, Channel, ClientCaps, Inflight, PendingS2c, Session, Sessions};
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

/// What handling one client message produced.
#[derive(Debug, Default)]
pub struct Handled {
    /// The response (`None` for notifications, responses, and requests the
    /// client cancelled).
    pub response: Option<String>,
    /// Set when authorization refused for lack of scopes: every scope the
    /// operation needs, for a 403 `insufficient_scope` challenge.
    pub insufficient_scope: Option<Vec<String>>,
}

impl Handled {
    fn respond(response: String) -> Handled {
        Handled {
            response: Some(response),
            insufficient_scope: None,
        }
    }
}

/// Where a progress notification from an upstream goes back to.
struct ProgressRoute {
    session: Weak<Session>,
    client_token: String,
    sink: Sink,
    /// What the output guard's per-tool settings are keyed by (the exposed
    /// tool or prompt name, or the URI) and the server: progress messages
    /// are guarded like the result they precede.
    subject: String,
    server: String,
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
    pool: Pool,
    progress: Mutex<HashMap<String, ProgressRoute>>,
    /// (upstream instance, upstream-side id) → (session, client id).
    by_upstream_id: Mutex<HashMap<(u64, u64), RequestOwner>>,
    counter: AtomicU64,
    /// Registry refusals already reported (`server/kind/name@live-hash`,
    /// `server:reason`), so an item listed again is not a new audit record.
    reported: Mutex<HashSet<String>>,
    /// Per-process secret: binds a 2026-07-28 upstream's `requestState` to
    /// the server and principal it was issued for, and derives the ids of
    /// modern contexts.
    state_key: [u8; 32],
}

/// Why `initialize` could not open a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("unknown virtual server")]
    UnknownVirtualServer,
    #[error("too many sessions")]
    TooManySessions,
    #[error("{0}")]
    BadRequest(String),
}

impl Gateway {
    pub fn new(snapshot: Snapshot) -> Arc<Gateway> {
        let gw = Arc::new(Gateway {
            snapshot: ArcSwap::from_pointee(snapshot),
            authenticator: arc_swap::ArcSwapOption::empty(),
            audit: arc_swap::ArcSwapOption::empty(),
            metrics: warden_telemetry::Metrics::new(),
            sessions: Sessions::default(),
            pool: Pool::default(),
            progress: Mutex::new(HashMap::new()),
            state_key: rand::random(),
            by_upstream_id: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(1),
            reported: Mutex::new(HashSet::new()),
        });
        spawn_reaper(Arc::downgrade(&gw));
        spawn_registry_keeper(Arc::downgrade(&gw));
        gw
    }

    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// Installs the authenticator (started by the caller: it fetches keys).
    pub fn set_authenticator(&self, auth: Option<Arc<warden_identity::Authenticator>>) {
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
    pub fn reload(&self, mut snapshot: Snapshot) {
        let old = self.snapshot.load();
        if old.config.registry == snapshot.config.registry {
            old.registry.replace_lock(snapshot.registry.lock_snapshot());
            snapshot.registry = old.registry.clone();
        }
        self.snapshot.store(Arc::new(snapshot));
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// A correlation id for one request: joins the client's error, the log
    /// and the audit record.
    pub fn correlation_id(&self) -> String {
        let r: u32 = rand::random();
        format!("{:08x}{:06x}", r, self.next() & 0xff_ffff)
    }

    // ---------------------------------------------------------------- sessions

    /// Handles `initialize`: opens a session and answers with the union of
    /// the upstreams' capabilities.
    pub async fn initialize(
        self: &Arc<Self>,
        principal: Principal,
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
        if !self
            .sessions
            .insert(session.clone(), snap.config.gateway.max_sessions)
        {
            return Err(OpenError::TooManySessions);
        }

        let (capabilities, instructions, ready) = self.describe(&session, &route).await;
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
        session: &Arc<Session>,
        route: &VirtualRoute,
    ) -> (serde_json::Value, Option<String>, usize) {
        let snap = self.snapshot();
        // Start (or join) every upstream of the virtual server at once.
        let inits = futures::future::join_all(route.servers.iter().map(|server| {
            let gw = self.clone();
            let session = session.clone();
            async move {
                let h = gw.upstream_for(&session, server)?;
                match h.upstream.ready().await {
                    Ok(info) => Some((server.clone(), info)),
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
            .filter_map(|(_, info)| serde_json::from_str::<&RawValue>(&info.result).ok())
            .collect();
        let capabilities = federation::union_capabilities(&raws);
        let per_server: Vec<(String, String)> = ready
            .iter()
            .filter_map(|(server, info)| {
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
                        match snap.registry.check_item(&m) {
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
        let (session, created) = self
            .sessions
            .get_or_insert(fresh, snap.config.gateway.max_sessions)
            .ok_or(OpenError::TooManySessions)?;
        session.touch();
        if created {
            info!(target: "audit", event = "session.open", session = %session.id,
                  principal = %session.principal.subject(), version = %session.version,
                  virtual_server = %virtual_server, modern = true);
        }
        Ok(session)
    }

    /// `server/discover` (2026-07-28): the versions Warden serves, the
    /// union of its upstreams' capabilities, its instructions. Per
    /// principal (lists are filtered by policy), so `cacheScope` is private.
    async fn discover(self: &Arc<Self>, session: &Arc<Session>, route: &VirtualRoute) -> String {
        let (capabilities, instructions, _) = self.describe(session, route).await;
        let snap = self.snapshot();
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
    fn upstream_for(
        self: &Arc<Self>,
        session: &Session,
        server: &str,
    ) -> Option<Arc<UpstreamHandle>> {
        let snap = self.snapshot();
        let cfg = snap.server(server)?;
        if self.server_refusal(&snap, server).is_some() {
            return None;
        }
        let key = PoolKey::new(cfg, &session.id, &session.principal.key());
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
                    session.client_capabilities_json,
                    env!("CARGO_PKG_VERSION")
                ),
                limits: snap.upstream_limits,
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
    ) -> Option<String> {
        self.handle_call(session, msg, sink, None).await.response
    }

    /// [`Gateway::handle`], with what the transport needs beyond the
    /// response (an HTTP status for an `insufficient_scope` refusal).
    pub async fn handle_call(
        self: &Arc<Self>,
        session: &Arc<Session>,
        msg: &Message<'_>,
        sink: &Sink,
        trace: Option<TraceContext<'_>>,
    ) -> Handled {
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
                self.handle_request(session, msg, sink)
                    .instrument(span)
                    .await
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

    async fn handle_request(
        self: &Arc<Self>,
        session: &Arc<Session>,
        msg: &Message<'_>,
        sink: &Sink,
    ) -> Handled {
        let id = msg.id.map(|i| i.raw()).unwrap_or("null");
        let call = Call::new(self.correlation_id());
        let snap = self.snapshot();
        let Some(route) = snap.route_arc(&session.virtual_server) else {
            return Handled::respond(error_response(
                Some(id),
                ErrorCode::InternalError,
                "virtual server no longer configured",
                None,
            ));
        };
        let method = msg.method();
        let response = match method::route(method) {
            Route::Local => match method {
                "ping" if session.channel != Channel::Modern => Some(result_response(id, "{}")),
                "server/discover" if session.channel == Channel::Modern => {
                    Some(result_response(id, &self.discover(session, &route).await))
                }
                "initialize" if session.channel != Channel::Modern => Some(error_response(
                    Some(id),
                    ErrorCode::InvalidRequest,
                    "session already initialized",
                    None,
                )),
                _ => Some(error_response(
                    Some(id),
                    ErrorCode::MethodNotFound,
                    "method not found",
                    None,
                )),
            },
            Route::List(kind) => Some(self.list(session, &route, msg, kind, &call).await),
            Route::ByName(kind) => {
                self.call_by_name(session, &route, msg, kind, sink, &call)
                    .await
            }
            Route::ByUri => self.call_by_uri(session, &route, msg, sink, &call).await,
            Route::ByRef => self.complete(session, &route, msg, sink, &call).await,
            Route::Broadcast => Some(self.broadcast(session, &route, msg, &call).await),
            _ => Some(error_response(
                Some(id),
                ErrorCode::MethodNotFound,
                "method not found",
                None,
            )),
        };
        let outcome = outcome_of(response.as_deref());
        if let Some((server, item, decision, reason)) = call.metric_labels() {
            let decision = if decision == "allow" && outcome == "error" {
                "error"
            } else {
                decision
            };
            self.metrics.call(&server, &item, decision);
            if let Some(r) = reason {
                self.metrics.denial(&r);
            }
        }
        self.metrics.request(
            method,
            match outcome {
                "ok" => warden_telemetry::Outcome::Ok,
                _ if call.was_refused() => warden_telemetry::Outcome::Denied,
                _ => warden_telemetry::Outcome::Error,
            },
            call.started.elapsed(),
        );
        info!(target: "audit", event = "request", correlation_id = %call.corr, session = %session.id,
              principal = %session.principal.subject(), method = %method,
              outcome = outcome, latency_us = call.started.elapsed().as_micros() as u64);
        let insufficient_scope = call.required_scopes();
        // Stage 12, Record: durable before the response is released for the
        // tiers configured `sync` (high and critical by default).
        if method != "ping" {
            if let Some(audit) = self.audit.load_full() {
                let tier = call.risk_tier();
                let mut event = call.event(&session.id, &session.principal, method, outcome);
                event.trace_id = warden_telemetry::trace_id_of(&tracing::Span::current());
                let started = Instant::now();
                let recorded = audit
                    .record_for_tier(event)
                    .instrument(warden_telemetry::stage_span(warden_telemetry::Stage::Audit))
                    .await;
                self.metrics
                    .stage(warden_telemetry::Stage::Audit, started.elapsed());
                if let Err(e) = recorded {
                    warn!(correlation_id = %call.corr, error = %e, "audit record failed");
                    if audit.durability(tier) == warden_audit::Durability::Sync {
                        // Fail closed: a call whose record cannot be made
                        // durable is not answered as if it were.
                        return Handled::respond(error_response(
                            Some(id),
                            ErrorCode::InternalError,
                            "the audit trail is unavailable",
                            Some(&serde_json::json!({"correlationId": call.corr})),
                        ));
                    }
                }
            }
        }
        Handled {
            response,
            insufficient_scope,
        }
    }

    /// Stage 3, Route: `tools/call` and `prompts/get` by namespaced name.
    async fn call_by_name(
        self: &Arc<Self>,
        session: &Arc<Session>,
        route: &VirtualRoute,
        msg: &Message<'_>,
        kind: NameKind,
        sink: &Sink,
        call: &Call,
    ) -> Option<String> {
        let corr = call.corr.as_str();
        let id = msg.id.map(|i| i.raw()).unwrap_or("null");
        let Some(name_raw) = msg.param("name") else {
            return Some(invalid_params(id, "params.name is required"));
        };
        let Some(exposed) = as_str(name_raw) else {
            return Some(invalid_params(id, "params.name must be a string"));
        };
        let snap = self.snapshot();
        let routed = route
            .resolve(&snap.namer, &exposed)
            .filter(|_| kind != NameKind::Tool || route.exposes_tool(&exposed));
        let Some((server, upstream_name)) = routed else {
            let what = if kind == NameKind::Tool {
                "tool"
            } else {
                "prompt"
            };
            return Some(invalid_params(
                id,
                &format!("unknown {what}: {}", truncate(&exposed, 128)),
            ));
        };
        let mut edits = EditSet::new();
        edits.replace(msg.text, name_raw, json_string(upstream_name));
        let action = if kind == NameKind::Tool {
            warden_policy::Action::CallTool
        } else {
            warden_policy::Action::GetPrompt
        };
        let arguments = msg.param("arguments");
        call.note(|f| {
            f.action = Some(action.as_str());
            f.server = Some(server.to_owned());
            f.item = Some(upstream_name.to_owned());
        });
        if let Some(args) = arguments {
            let hash = warden_audit::input_hash(args);
            let recorded = self.audit().and_then(|a| a.recorded_arguments(args));
            call.note(|f| {
                f.input_hash = Some(hash);
                f.arguments = recorded;
            });
        }
        // Stage 4, Registry: the server must be approved, and the live
        // definition (also the annotations authorization reads and the
        // schema the input guard checks), hashed again, the pinned one.
        if let Some(refusal) = self.refuse_server(id, server, call) {
            return Some(refusal);
        }
        let item_kind = if kind == NameKind::Tool {
            ItemKind::Tool
        } else {
            ItemKind::Prompt
        };
        let def = match self
            .item_definition(session, server, item_kind, upstream_name)
            .await
        {
            Ok(def) => def,
            Err(why) => {
                warn!(server = %server, correlation_id = %corr, error = %why, "live definition unavailable");
                return Some(upstream_error(id, server, corr, "is unavailable"));
            }
        };
        if let Some(def) = &def {
            if let Some(refusal) =
                self.check_pinned(session, call, id, server, item_kind, def, action, &exposed)
            {
                return Some(refusal);
            }
        }
        let def = def.map(|d| d.def);
        let offered = def.is_some();
        let tool = def.filter(|_| kind == NameKind::Tool);
        let tool_json = tool
            .as_deref()
            .and_then(|t| serde_json::from_str::<&RawValue>(t).ok());
        // A 2026-07-28 client's `Mcp-Param-*` headers must mirror the
        // arguments the tool's schema declares them for.
        if kind == NameKind::Tool && session.channel == Channel::Modern {
            if let Some(refusal) = check_param_headers(call, id, tool_json, arguments) {
                return Some(refusal);
            }
        }
        // Stage 5, Authorize.
        let annotations = tool_json.and_then(|t| member(t, "annotations"));
        let refusal =
            warden_telemetry::stage_span(warden_telemetry::Stage::Policy).in_scope(|| {
                self.authorize(
                    session,
                    call,
                    id,
                    action,
                    server,
                    upstream_name,
                    &exposed,
                    arguments,
                    annotations,
                )
            });
        if let Some(refusal) = refusal {
            return Some(refusal);
        }
        if !offered {
            // Stage 4, after authorization has had its say: an item the
            // upstream does not offer now has no manifest to check.
            call.note(|f| {
                f.decision = Some(warden_audit::Decision::Deny);
                f.reason_code = Some("registry.not_offered".into());
            });
            return Some(unknown_item(id, action, &exposed));
        }
        if kind == NameKind::Tool {
            // Stage 7, Inspect input: the arguments against the tool's live
            // schema, limits, forbidden characters, injection detectors.
            let schema = tool_json.and_then(|t| member(t, "inputSchema"));
            let started = Instant::now();
            let verdict = warden_telemetry::stage_span(warden_telemetry::Stage::InputGuard)
                .in_scope(|| snap.guard.check_input(&exposed, server, schema, arguments));
            self.metrics
                .stage(warden_telemetry::Stage::InputGuard, started.elapsed());
            match verdict {
                warden_guard::InputVerdict::Deny {
                    path,
                    rule,
                    message,
                    findings,
                } => {
                    warn!(target: "audit", event = "input.denied", correlation_id = %corr, session = %session.id,
                          server = %server, tool = %exposed, rule = %rule, path = %path, findings = findings.len());
                    call.note(|f| {
                        f.decision = Some(warden_audit::Decision::Deny);
                        f.reason_code = Some(format!("input_{rule}"));
                    });
                    return Some(error_response(
                        Some(id),
                        ErrorCode::InvalidParams,
                        &message,
                        Some(
                            &serde_json::json!({"path": path, "rule": rule.to_string(), "correlationId": corr}),
                        ),
                    ));
                }
                warden_guard::InputVerdict::Allow {
                    rewritten,
                    findings,
                } => {
                    if !findings.is_empty() {
                        info!(target: "audit", event = "input.findings", correlation_id = %corr, server = %server,
                              tool = %exposed, classes = %classes_of(&findings));
                    }
                    let sent = rewritten.as_deref().or(arguments.map(|a| a.get()));
                    *lock(&call.upstream_headers) = upstream_param_headers(tool_json, sent);
                    if let (Some(new), Some(raw)) = (rewritten, arguments) {
                        edits.replace(msg.text, raw, new);
                    }
                }
            }
        }
        let response = self.forward(session, server, msg, edits, sink, call).await;
        self.after_read(session, server, upstream_name, response.as_deref());
        response
    }

    /// A result as a 2026-07-28 client gets it: `resultType` added where a
    /// session-era upstream left it out, an input-required result's
    /// `requestState` sealed to (principal, server). `None`: unchanged.
    fn modernize_result(&self, session: &Session, server: &str, result: &str) -> Option<String> {
        let raw: &RawValue = serde_json::from_str(result).ok()?;
        let mut edits = EditSet::new();
        match member(raw, "resultType").and_then(as_str).as_deref() {
            None => {
                let empty = members(raw).is_some_and(|m| m.is_empty());
                let text = if empty {
                    r#""resultType":"complete""#
                } else {
                    r#""resultType":"complete","#
                };
                edits.insert_first_member(result, raw, text.to_owned());
            }
            Some("input_required") => {
                if let Some(st) = member(raw, "requestState") {
                    let state = as_str(st)?;
                    edits.replace(
                        result,
                        st,
                        json_string(&self.seal_request_state(session, server, &state)),
                    );
                }
            }
            Some(_) => {}
        }
        if edits.is_empty() {
            return None;
        }
        edits.apply(result)
    }

    fn request_state_mac(&self, session: &Session, server: &str, state: &str) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.state_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for part in [
            session.principal.key().as_bytes(),
            server.as_bytes(),
            state.as_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// `w1.<server, base64url>.<mac>.<the upstream's state>`: the upstream
    /// gets its own bytes back untouched; the client cannot replay them to
    /// another server or as another principal.
    fn seal_request_state(&self, session: &Session, server: &str, state: &str) -> String {
        let tag = self
            .request_state_mac(session, server, state)
            .finalize()
            .into_bytes();
        format!(
            "w1.{}.{}.{state}",
            B64URL.encode(server),
            B64URL.encode(&tag[..16])
        )
    }

    fn open_request_state(
        &self,
        session: &Session,
        server: &str,
        sealed: &str,
    ) -> Result<String, &'static str> {
        const FORGED: &str = "params.requestState was not issued by this server for this caller";
        let mut parts = sealed.splitn(4, '.');
        let (Some("w1"), Some(by), Some(tag), Some(state)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(FORGED);
        };
        let by = B64URL.decode(by).map_err(|_| FORGED)?;
        let tag = B64URL.decode(tag).map_err(|_| FORGED)?;
        if by != server.as_bytes() {
            return Err("params.requestState was issued by another server");
        }
        self.request_state_mac(session, server, state)
            .verify_truncated_left(&tag)
            .map_err(|_| FORGED)?;
        Ok(state.to_owned())
    }

    /// Stage 5, Authorize: required scopes, then the policy engine. `None`
    /// when the request may go on; else the error response. Every outcome
    /// is noted on the call for its audit record.
    #[allow(clippy::too_many_arguments)]
    fn authorize(
        &self,
        session: &Session,
        call: &Call,
        id: &str,
        action: warden_policy::Action,
        server: &str,
        item: &str,
        shown: &str,
        arguments: Option<&RawValue>,
        annotations: Option<&RawValue>,
    ) -> Option<String> {
        let snap = self.snapshot();
        let engine = snap.policy.as_ref()?;
        let classes = lock(&session.data_classes).clone();
        let req = warden_policy::Request {
            principal: &session.principal,
            action,
            server,
            resource: item,
            arguments,
            annotations,
            context: warden_policy::RequestContext {
                session: warden_policy::SessionFacts {
                    data_classes: &classes,
                },
                client_address: call.client_addr.map(|a| a.ip()),
                ..warden_policy::RequestContext::at(std::time::SystemTime::now())
            },
        };
        let tier = action
            .item_kind()
            .and_then(|k| engine.risk_tier(server, k, item, annotations));
        call.note(|f| f.risk_tier = tier);
        if let warden_policy::ScopeCheck::Missing(scopes) = engine.check_scopes(&req) {
            call.note(|f| {
                f.decision = Some(warden_audit::Decision::Deny);
                f.reason_code = Some("insufficient_scope".into());
                f.required_scopes = Some(scopes.clone());
            });
            return Some(error_response(
                Some(id),
                ErrorCode::InsufficientScope,
                "insufficient scope",
                Some(&serde_json::json!({"scopes": scopes, "correlationId": call.corr})),
            ));
        }
        let started = Instant::now();
        let decision = engine.decide(&req);
        self.metrics
            .stage(warden_telemetry::Stage::Policy, started.elapsed());
        self.metrics.policy_decision(match decision {
            warden_policy::Decision::Allow { .. } => warden_telemetry::PolicyDecision::Allow,
            warden_policy::Decision::Deny { .. } => warden_telemetry::PolicyDecision::Deny,
            warden_policy::Decision::RequiresApproval { .. } => {
                warden_telemetry::PolicyDecision::ApprovalRequired
            }
        });
        call.note(|f| {
            f.decision = Some(match decision {
                warden_policy::Decision::Allow { .. } => warden_audit::Decision::Allow,
                warden_policy::Decision::Deny { .. } => warden_audit::Decision::Deny,
                warden_policy::Decision::RequiresApproval { .. } => warden_audit::Decision::Hold,
            });
            f.policy_ids = decision.policies().to_vec();
            f.reason_code = Some(decision.reason().to_owned());
        });
        match decision {
            warden_policy::Decision::Allow { .. } => None,
            warden_policy::Decision::Deny { reason, .. } => {
                info!(target: "audit", event = "call.denied", correlation_id = %call.corr, session = %session.id,
                      server = %server, item = %truncate(item, 256).escape_debug(), reason = %reason);
                if engine_hides_denials(&snap) {
                    return Some(unknown_item(id, action, shown));
                }
                Some(error_response(
                    Some(id),
                    ErrorCode::PolicyDenied,
                    "denied by policy",
                    Some(
                        &serde_json::json!({"reason": reason.as_str(), "correlationId": call.corr}),
                    ),
                ))
            }
            warden_policy::Decision::RequiresApproval {
                reason, requires, ..
            } => {
                info!(target: "audit", event = "call.held", correlation_id = %call.corr, session = %session.id,
                      server = %server, item = %truncate(item, 256).escape_debug(), reason = %reason);
                let requires: Vec<&str> = requires.iter().map(|r| r.as_str()).collect();
                Some(error_response(
                    Some(id),
                    ErrorCode::ApprovalRequired,
                    "approval required",
                    Some(&serde_json::json!({
                        "reason": reason.as_str(),
                        "requires": requires,
                        "correlationId": call.corr,
                    })),
                ))
            }
        }
    }

    /// Whether the caller may see an item in a list (stage 5 for lists).
    fn may_discover(
        &self,
        snap: &Snapshot,
        session: &Session,
        kind: warden_policy::ItemKind,
        server: &str,
        item: &str,
    ) -> bool {
        let Some(engine) = snap.policy.as_ref() else {
            return true;
        };
        let req = warden_policy::Request {
            principal: &session.principal,
            action: warden_policy::Action::Discover(kind),
            server,
            resource: item,
            arguments: None,
            annotations: None,
            context: warden_policy::RequestContext::at(std::time::SystemTime::now()),
        };
        engine.decide(&req).is_allow()
    }

    /// Whether a list item (by its exposed key) is shown to the caller.
    fn may_list(
        &self,
        snap: &Snapshot,
        session: &Session,
        route: &VirtualRoute,
        kind: ListKind,
        server: &str,
        key: &str,
    ) -> bool {
        if snap.policy.is_none() {
            return true;
        }
        let item_kind = match kind {
            ListKind::Tools => warden_policy::ItemKind::Tool,
            ListKind::Prompts => warden_policy::ItemKind::Prompt,
            _ => warden_policy::ItemKind::Resource,
        };
        let name = match kind {
            ListKind::Tools | ListKind::Prompts => match route.resolve(&snap.namer, key) {
                Some((_, n)) => n,
                None => return false,
            },
            _ => key,
        };
        self.may_discover(snap, session, item_kind, server, name)
    }

    /// After a successful read: the data class joins the session's history
    /// (toxic-flow rules read it).
    fn after_read(&self, session: &Session, server: &str, item: &str, response: Option<&str>) {
        let snap = self.snapshot();
        let Some(class) = snap
            .policy
            .as_ref()
            .and_then(|e| e.data_class(server, item))
        else {
            return;
        };
        if outcome_of(response) != "ok" {
            return;
        }
        let mut classes = lock(&session.data_classes);
        if !classes.iter().any(|c| c == class) {
            classes.push(class.to_owned());
        }
    }

    /// The upstream's live definition of one tool or prompt (its whole
    /// JSON): from the per-upstream cache when younger than
    /// `registry.revalidate_after`, else every page of the list fetched
    /// again. `Ok(None)`: the upstream does not offer it.
    async fn item_definition(
        self: &Arc<Self>,
        session: &Arc<Session>,
        server: &str,
        kind: ItemKind,
        name: &str,
    ) -> Result<Option<Definition>, String> {
        let h = self
            .upstream_for(session, server)
            .ok_or_else(|| "not started".to_owned())?;
        let max_age = self.snapshot().config.registry.revalidate_after;
        let cached = lock(definitions_slot(&h, kind)).clone();
        if let Some(d) = cached.filter(|d| d.fetched.elapsed() < max_age) {
            return Ok(d.items.get(name).cloned());
        }
        let fresh = self.fetch_definitions(&h, kind).await?;
        Ok(fresh.items.get(name).cloned())
    }

    /// Fetches every page of an upstream's tools or prompts, checks each
    /// item against the registry (drift is remembered and reported even if
    /// no client lists), and caches the definitions.
    async fn fetch_definitions(
        &self,
        h: &UpstreamHandle,
        kind: ItemKind,
    ) -> Result<Arc<Definitions>, String> {
        let list = if kind == ItemKind::Prompt {
            ListKind::Prompts
        } else {
            ListKind::Tools
        };
        let fetched = Instant::now();
        let info = h
            .upstream
            .ready()
            .await
            .map_err(|e| describe(&e, h.call_timeout))?;
        let mut items = HashMap::new();
        let mut manifests = Vec::new();
        let offered = serde_json::from_str::<&RawValue>(&info.result)
            .is_ok_and(|init| has_capability(init, list.capability()));
        let mut cursor: Option<String> = None;
        // Bounded: a server paging forever cannot hold a call.
        for _ in 0..64 {
            if !offered {
                break;
            }
            let params = match &cursor {
                Some(c) => format!(r#","params":{{"cursor":{}}}"#, json_string(c)),
                None => String::new(),
            };
            let method = list.method();
            let resp = h
                .upstream
                .request(
                    |uid| format!(r#"{{"jsonrpc":"2.0","id":{uid},"method":"{method}"{params}}}"#),
                    h.call_timeout,
                )
                .await
                .map_err(|e| describe(&e, h.call_timeout))?;
            let m = parse_one(&resp.text).map_err(|e| e.to_string())?;
            let result = m
                .result
                .ok_or_else(|| format!("answered {method} with an error"))?;
            for t in member(result, list.items_key())
                .and_then(warden_protocol::message::elements)
                .unwrap_or_default()
            {
                if let Ok(m) = warden_registry::manifest(&h.server, kind, t) {
                    items.insert(
                        m.name.clone(),
                        Definition {
                            def: Arc::<str>::from(t.get()),
                            hash_hex: Arc::<str>::from(m.hash.to_string()),
                            manifest: Arc::new(m.clone()),
                        },
                    );
                    manifests.push(m);
                }
            }
            cursor = member(result, "nextCursor")
                .and_then(as_str)
                .map(|c| c.into_owned());
            if cursor.is_none() {
                break;
            }
        }
        self.check_manifests(&manifests, list.method());
        let defs = Arc::new(Definitions { items, fetched });
        *lock(definitions_slot(h, kind)) = Some(defs.clone());
        Ok(defs)
    }

    /// Stage 4 over one upstream list: the decision per manifest (in
    /// order), hidden items logged, drift reported.
    fn check_manifests(&self, manifests: &[Manifest], list: &str) -> Vec<ItemDecision> {
        let snap = self.snapshot();
        let decisions = warden_registry::check_list(&snap.registry, manifests);
        for (m, d) in manifests.iter().zip(&decisions) {
            if let ItemDecision::Hidden(reason) = d {
                self.report_hidden(m, reason, list);
            }
        }
        decisions
    }

    /// Logs a hidden item; a drift (or scanner block) once per live hash
    /// also becomes an audit record with the pinned and live hashes and the
    /// field-level diff.
    fn report_hidden(&self, m: &Manifest, reason: &Reason, list: &str) {
        let item = warden_registry::text::escape_untrusted(&truncate(&m.name, 256));
        match reason {
            Reason::Unpinned | Reason::UnknownServer => {
                debug!(server = %m.server, kind = %m.kind, item = %item, reason = reason.code(), "item hidden");
            }
            Reason::Blocked(findings) => {
                if !self.first_report(m.id()) {
                    return;
                }
                let rules: Vec<&str> = findings.iter().map(|f| f.rule).collect();
                warn!(target: "audit", event = "item.hidden", reason = reason.code(), server = %m.server,
                      kind = %m.kind, item = %item, live_hash = %m.hash, rules = %rules.join(","));
            }
            Reason::Drifted { pinned, live, diff } => {
                if !self.first_report(format!("{}/{}/{}@{live}", m.server, m.kind, m.name)) {
                    return;
                }
                let mut report = String::new();
                for c in diff {
                    warden_registry::diff::render_change(&mut report, c);
                }
                let paths: Vec<String> = diff
                    .iter()
                    .map(|c| warden_registry::text::escape_untrusted(&truncate(&c.path, 128)))
                    .collect();
                warn!(target: "audit", event = "registry.drift", server = %m.server, kind = %m.kind,
                      item = %item, pinned_hash = %pinned, live_hash = %live, diff = %report);
                self.record(warden_audit::Event {
                    server: Some(m.server.clone()),
                    tool: Some(truncate(&m.name, 1024)),
                    manifest_hash: Some(pinned.to_string()),
                    decision: Some(warden_audit::Decision::Deny),
                    reason_code: Some(reason.code().to_owned()),
                    lifecycle: Some(Box::new(warden_audit::Lifecycle {
                        list: Some(list.to_owned()),
                        pinned_hash: Some(pinned.to_string()),
                        live_hash: Some(live.to_string()),
                        outcome: Some("hidden".to_owned()),
                        error: (!paths.is_empty())
                            .then(|| format!("changed: {}", paths.join(", "))),
                        ..Default::default()
                    })),
                    ..warden_audit::Event::new(warden_audit::EventKind::Drift)
                });
            }
            _ => {
                warn!(server = %m.server, kind = %m.kind, item = %item, reason = reason.code(), "item hidden");
            }
        }
    }

    /// Whether a registry refusal is reported for the first time. Bounded:
    /// when full the memory is cleared (a refusal may be reported again).
    fn first_report(&self, key: String) -> bool {
        let mut reported = lock(&self.reported);
        if reported.len() >= 16 * 1024 {
            reported.clear();
        }
        reported.insert(key)
    }

    /// Stage 4 before a call: the live manifest must be pinned, unchanged
    /// and never seen drifted. `None` when the call may go on.
    #[allow(clippy::too_many_arguments)]
    fn check_pinned(
        &self,
        session: &Session,
        call: &Call,
        id: &str,
        server: &str,
        kind: ItemKind,
        def: &Definition,
        action: warden_policy::Action,
        shown: &str,
    ) -> Option<String> {
        let snap = self.snapshot();
        // The manifest was computed from exactly `def.def` when the list
        // was fetched; recomputed only if it was made for another server
        // or kind (never expected).
        let recomputed;
        let manifest = if def.manifest.server == server && def.manifest.kind == kind {
            Some(&*def.manifest)
        } else {
            recomputed = serde_json::from_str::<&RawValue>(&def.def)
                .ok()
                .and_then(|raw| warden_registry::manifest(server, kind, raw).ok());
            recomputed.as_ref()
        };
        let decision = match manifest {
            None => ItemDecision::Hidden(Reason::Unpinned),
            Some(m) => match snap.registry.check_item(m) {
                ItemDecision::Allow => snap.registry.check_call(server, kind, &m.name),
                hidden => hidden,
            },
        };
        if let Some(m) = manifest {
            let hex = if std::ptr::eq(m, &*def.manifest) {
                def.hash_hex.to_string()
            } else {
                m.hash.to_string()
            };
            call.note(|f| f.manifest_hash = Some(hex));
        }
        let ItemDecision::Hidden(reason) = decision else {
            return None;
        };
        if let Some(m) = manifest {
            self.report_hidden(m, &reason, kind.as_str());
        }
        warn!(target: "audit", event = "call.refused", reason = reason.code(), correlation_id = %call.corr,
              session = %session.id, server = %server, item = %truncate(shown, 256).escape_debug());
        self.metrics.registry_blocked(reason.code());
        call.note(|f| {
            f.decision = Some(warden_audit::Decision::Deny);
            f.reason_code = Some(reason.code().to_owned());
        });
        if matches!(reason, Reason::Blocked(_)) {
            // A poisoned item is not admitted to exist.
            return Some(unknown_item(id, action, shown));
        }
        Some(error_response(
            Some(id),
            ErrorCode::ToolNotApproved,
            &reason.to_string(),
            Some(&serde_json::json!({"correlationId": call.corr})),
        ))
    }

    /// Why a server may not start (its pinned identity differs, or strict
    /// mode and it is not approved); reported once.
    fn server_refusal(&self, snap: &Snapshot, server: &str) -> Option<Reason> {
        let identity = snap.identities.get(server)?;
        let reason = snap.registry.check_server(server, identity).err()?;
        if self.first_report(format!("{server}:{}", reason.code())) {
            let changed: Vec<String> = match &reason {
                Reason::ServerChanged(c) => c
                    .iter()
                    .map(|c| warden_registry::text::escape_untrusted(&c.path))
                    .collect(),
                _ => Vec::new(),
            };
            warn!(target: "audit", event = "server.refused", server = %server, reason = reason.code(),
                  changed = %changed.join(","));
            self.record(warden_audit::Event {
                server: Some(server.to_owned()),
                decision: Some(warden_audit::Decision::Deny),
                reason_code: Some(reason.code().to_owned()),
                lifecycle: Some(Box::new(warden_audit::Lifecycle {
                    transport: Some(identity.transport().to_owned()),
                    outcome: Some("not_started".to_owned()),
                    error: (!changed.is_empty())
                        .then(|| format!("changed: {}", changed.join(", "))),
                    ..Default::default()
                })),
                ..warden_audit::Event::new(warden_audit::EventKind::Drift)
            });
        }
        Some(reason)
    }

    /// The error for a call to a server that may not start.
    fn refuse_server(&self, id: &str, server: &str, call: &Call) -> Option<String> {
        let snap = self.snapshot();
        let reason = self.server_refusal(&snap, server)?;
        call.note(|f| {
            f.decision = Some(warden_audit::Decision::Deny);
            f.reason_code = Some(reason.code().to_owned());
        });
        let what = match reason {
            Reason::ServerChanged(_) => "server identity changed since approval",
            _ => "server not approved",
        };
        Some(error_response(
            Some(id),
            ErrorCode::ToolNotApproved,
            &format!("upstream server '{server}': {what}"),
            Some(&serde_json::json!({"correlationId": call.corr})),
        ))
    }

    /// `resources/read`, `resources/subscribe`, `resources/unsubscribe`.
    async fn call_by_uri(
        self: &Arc<Self>,
        session: &Arc<Session>,
        route: &VirtualRoute,
        msg: &Message<'_>,
        sink: &Sink,
        call: &Call,
    ) -> Option<String> {
        let id = msg.id.map(|i| i.raw()).unwrap_or("null");
        let Some(uri) = msg.param_str("uri") else {
            return Some(invalid_params(id, "params.uri must be a string"));
        };
        let Some(server) = self.route_by_uri(session, route, &uri, call).await else {
            return Some(error_response(
                Some(id),
                ErrorCode::ResourceNotFound,
                "resource not found",
                Some(&serde_json::json!({"uri": truncate(&uri, 512)})),
            ));
        };
        let action = if msg.method() == "resources/read" {
            warden_policy::Action::ReadResource
        } else {
            warden_policy::Action::Subscribe
        };
        // Policy decides both directions as `subscribe`; the record says which.
        let recorded = if msg.method() == "resources/unsubscribe" {
            "unsubscribe"
        } else {
            action.as_str()
        };
        call.note(|f| {
            f.action = Some(recorded);
            f.server = Some(server.clone());
            f.item = Some(truncate(&uri, 1024));
        });
        if let Some(refusal) =
            self.authorize(session, call, id, action, &server, &uri, &uri, None, None)
        {
            return Some(refusal);
        }
        if action == warden_policy::Action::Subscribe {
            if let Some(h) = self.upstream_for(session, &server) {
                if handle_is_modern(&h).await {
                    let on = msg.method() == "resources/subscribe";
                    self.hold_subscription(session, &server, h, &uri, on);
                    return Some(result_response(id, "{}"));
                }
            }
        }
        let response = self
            .forward(session, &server, msg, EditSet::new(), sink, call)
            .await;
        if action == warden_policy::Action::ReadResource {
            self.after_read(session, &server, &uri, response.as_deref());
        }
        response
    }

    /// `resources/subscribe` (`on`) or `unsubscribe` for a 2026-07-28
    /// upstream, which has neither: a `subscriptions/listen` stream for the
    /// URI, held (and reopened when it ends) until the client unsubscribes
    /// or its session closes. Its `resources/updated` notifications reach
    /// the session's stream like a session-era upstream's.
    fn hold_subscription(
        &self,
        session: &Arc<Session>,
        server: &str,
        handle: Arc<UpstreamHandle>,
        uri: &str,
        on: bool,
    ) {
        let key = (server.to_owned(), uri.to_owned());
        if !on {
            if let Some(task) = lock(&session.listens).remove(&key) {
                task.abort();
            }
            return;
        }
        if lock(&session.listens).contains_key(&key) {
            return;
        }
        let params =
            serde_json::json!({"notifications": {"resourceSubscriptions": [uri]}}).to_string();
        let weak = Arc::downgrade(session);
        let task = tokio::spawn(async move {
            loop {
                let uid = Arc::new(AtomicU64::new(0));
                let seen = uid.clone();
                let listen = handle.upstream.request(
                    |id| {
                        seen.store(id, Ordering::Relaxed);
                        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"subscriptions/listen","params":{params}}}"#)
                    },
                    Duration::from_secs(24 * 3600),
                );
                // Closing the stream is how 2026-07-28 cancels: on abort,
                // the guard below tells the upstream connection so.
                let guard = ListenGuard {
                    handle: handle.clone(),
                    uid,
                };
                let ended = listen.await;
                drop(guard);
                debug!(server = %handle.server, ended = ?ended.map(|_| ()), "subscription stream ended");
                if weak
                    .upgrade()
                    .is_none_or(|s| s.closed.load(Ordering::Relaxed))
                {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        lock(&session.listens).insert(key, task.abort_handle());
    }

    /// Which server a resource URI belongs to: a URI seen in a list, then a
    /// template, then — if still unknown — after listing every server once.
    async fn route_by_uri(
        self: &Arc<Self>,
        session: &Arc<Session>,
        route: &VirtualRoute,
        uri: &str,
        call: &Call,
    ) -> Option<String> {
        for attempt in 0..2 {
            if let Some(s) = lock(&session.resource_routes).get(uri) {
                return Some(s.clone());
            }
            if let Some((_, s)) = lock(&session.template_routes)
                .iter()
                .find(|(t, _)| federation::template_matches(t, uri))
            {
                return Some(s.clone());
            }
            if route.servers.len() == 1 {
                return route.servers.first().cloned();
            }
            if attempt == 0 {
                // Learn routes from the first pages of both lists.
                for kind in [ListKind::Resources, ListKind::ResourceTemplates] {
                    let _ = self
                        .list_pages(session, route, kind, &BTreeMap::new(), call)
                        .await;
                }
            }
        }
        None
    }

    /// `completion/complete`: routed by `params.ref`.
    async fn complete(
        self: &Arc<Self>,
        session: &Arc<Session>,
        route: &VirtualRoute,
        msg: &Message<'_>,
        sink: &Sink,
        call: &Call,
    ) -> Option<String> {
        let id = msg.id.map(|i| i.raw()).unwrap_or("null");
        let Some(r) = msg.param("ref") else {
            return Some(invalid_params(id, "params.ref is required"));
        };
        match member(r, "type").and_then(as_str).as_deref() {
            Some("ref/prompt") => {
                let Some(name_raw) = member(r, "name") else {
                    return Some(invalid_params(id, "params.ref.name is required"));
                };
                let name = as_str(name_raw).unwrap_or_default();
                let snap = self.snapshot();
                let Some((server, upstream_name)) =
                    route.resolve(&snap.namer, &name).filter(|(s, n)| {
                        self.may_discover(&snap, session, warden_policy::ItemKind::Prompt, s, n)
                    })
                else {
                    return Some(invalid_params(id, "unknown prompt"));
                };
                let mut edits = EditSet::new();
                edits.replace(msg.text, name_raw, json_string(upstream_name));
                self.forward(session, server, msg, edits, sink, call).await
            }
            Some("ref/resource") => {
                let uri = member(r, "uri").and_then(as_str).unwrap_or_default();
                let routed = self.route_by_uri(session, route, &uri, call).await;
                let snap = self.snapshot();
                match routed.filter(|s| {
                    self.may_discover(&snap, session, warden_policy::ItemKind::Resource, s, &uri)
                }) {
                    Some(server) => {
                        self.forward(session, &server, msg, EditSet::new(), sink, call)
                            .await
                    }
                    None => Some(invalid_params(id, "unknown resource")),
                }
            }
            _ => Some(invalid_params(
                id,
                "params.ref.type must be ref/prompt or ref/resource",
            )),
        }
    }

    /// `logging/setLevel`: every upstream of the session that logs.
    async fn broadcast(
        self: &Arc<Self>,
        session: &Arc<Session>,
        route: &VirtualRoute,
        msg: &Message<'_>,
        _call: &Call,
    ) -> String {
        let id = msg.id.map(|i| i.raw()).unwrap_or("null");
        let params = msg.params.map(|p| p.get()).unwrap_or("{}");
        let method = msg.method().to_owned();
        if method == "logging/setLevel" {
            // 2026-07-28 upstreams read the level from each request's `_meta`.
            *lock(&session.log_level) = msg.param_str("level").map(|l| l.into_owned());
        }
        futures::future::join_all(route.servers.iter().map(|server| {
            let gw = self.clone();
            let session = session.clone();
            let method = method.clone();
            async move {
                let h = gw.upstream_for(&session, server)?;
                let info = h.upstream.ready().await.ok()?;
                let init: &RawValue = serde_json::from_str(&info.result).ok()?;
                if info.modern || !has_capability(init, "logging") {
                    return None;
                }
                let m = json_string(&method);
                h.upstream
                    .request(
                        |uid| {
                            format!(
                                r#"{{"jsonrpc":"2.0","id":{uid},"method":{m},"params":{params}}}"#
                            )
                        },
                        h.call_timeout,
                    )
                    .await
                    .ok()
            }
        }))
        .await;
        result_response(id, "{}")
    }

    /// Stage 4–5, Execute and Respond: sends the request to the server's
    /// upstream with Warden's id, waits with a deadline, and splices the
    /// client's id back into the response.
    async fn forward(
        self: &Arc<Self>,
        session: &Arc<Session>,
        server: &str,
        msg: &Message<'_>,
        mut edits: EditSet,
        sink: &Sink,
        call: &Call,
    ) -> Option<String> {
        let corr = call.corr.as_str();
        let id = msg.id.map(|i| i.raw()).unwrap_or("null");
        if let Some(refusal) = self.refuse_server(id, server, call) {
            return Some(refusal);
        }
        // A 2026-07-28 retry's `requestState` goes back only to the server
        // that issued it, for the principal it was issued to.
        if session.channel == Channel::Modern {
            if let Some(raw) = msg.param("requestState") {
                let opened = as_str(raw)
                    .ok_or("params.requestState must be a string")
                    .and_then(|st| self.open_request_state(session, server, &st));
                match opened {
                    Ok(original) => {
                        edits.replace(msg.text, raw, json_string(&original));
                    }
                    Err(why) => {
                        call.note(|f| {
                            f.decision = Some(warden_audit::Decision::Deny);
                            f.reason_code = Some("request_state.invalid".into());
                        });
                        warn!(target: "audit", event = "request_state.refused", correlation_id = %corr,
                              session = %session.id, server = %server, reason = why);
                        return Some(invalid_params(id, why));
                    }
                }
            }
        }
        let Some(handle) = self.upstream_for(session, server) else {
            return Some(invalid_params(id, "unknown server"));
        };
        // Progress tokens are remapped so two clients' tokens never collide
        // on a shared upstream.
        let mut progress_key = None;
        let meta = msg.param("_meta");
        let progress = meta.and_then(|m| member(m, "progressToken"));
        // Across eras, `_meta` changes: a 2026-07-28 client's envelope is not
        // for a session-era upstream; a session-era client's log level goes
        // to a 2026-07-28 upstream in each request.
        let upstream_modern = handle_is_modern(&handle).await;
        let strip = session.channel == Channel::Modern && !upstream_modern;
        let log_level = (session.channel != Channel::Modern && upstream_modern).then(|| {
            lock(&session.log_level)
                .clone()
                .unwrap_or_else(|| "debug".to_owned())
        });
        let ours = progress.map(|_| format!("warden-p{}", self.next()));
        let rewritten_meta = (strip || log_level.is_some())
            .then(|| cross_era_meta(meta, strip, log_level.as_deref(), ours.as_deref()))
            .flatten();
        match (rewritten_meta, meta, msg.params) {
            (Some(new), Some(old), _) => {
                edits.replace(msg.text, old, new);
            }
            (Some(new), None, Some(params)) => {
                edits.insert_first_member(msg.text, params, format!(r#""_meta":{new},"#));
            }
            _ => {
                if let (Some(tok), Some(ours)) = (progress, &ours) {
                    edits.replace(msg.text, tok, json_string(ours));
                }
            }
        }
        if let (Some(tok), Some(ours)) = (progress, ours) {
            lock(&self.progress).insert(
                ours.clone(),
                ProgressRoute {
                    session: Arc::downgrade(session),
                    client_token: tok.get().to_owned(),
                    sink: sink.clone(),
                    subject: msg
                        .param_str("name")
                        .or_else(|| msg.param_str("uri"))
                        .map(|s| s.into_owned())
                        .unwrap_or_default(),
                    server: server.to_owned(),
                },
            );
            progress_key = Some(ours);
        }
        let cancel = Arc::new(Notify::new());
        lock(&session.inflight).insert(
            id.to_owned(),
            Inflight {
                server: server.to_owned(),
                upstream: None,
                sink: sink.clone(),
                started: Instant::now(),
                cancel: cancel.clone(),
            },
        );
        let id_raw = msg.id.map(|i| i.raw_value());
        let text = msg.text;
        let instance = handle.instance;
        let upstream_id = AtomicU64::new(0);
        let weak_session = Arc::downgrade(session);
        // Members added to `params` for a retry (2026-07-28 input rounds).
        let mut retry_members: Option<String> = None;
        let mut round = 0;
        let result = loop {
            let mut edits = edits.clone();
            if let (Some(extra), Some(params)) = (&retry_members, msg.params) {
                edits.insert_first_member(text, params, extra.clone());
            }
            let result = {
                let request = handle.upstream.request(
                    |uid| {
                        upstream_id.store(uid, Ordering::Relaxed);
                        lock(&self.by_upstream_id)
                            .insert((instance, uid), (weak_session.clone(), id.to_owned()));
                        if let Some(entry) = lock(&session.inflight).get_mut(id) {
                            entry.upstream = Some((instance, uid));
                        }
                        if let Some(raw) = id_raw {
                            edits.replace(text, raw, uid.to_string());
                        }
                        edits.apply(text).unwrap_or_default()
                    },
                    handle.call_timeout,
                );
                let span = warden_telemetry::stage_span(warden_telemetry::Stage::Upstream);
                // W3C trace context to HTTP upstreams: Warden's upstream span
                // (or the caller's context passed through), and the
                // `Mcp-Param-*` headers of a tool call.
                let mut headers = Vec::new();
                if let Some(tp) = warden_telemetry::current_traceparent(&span) {
                    headers.push((warden_telemetry::TRACEPARENT.to_owned(), tp));
                    if let Some(ts) = warden_telemetry::current_tracestate(&span) {
                        headers.push((warden_telemetry::TRACESTATE.to_owned(), ts));
                    }
                }
                headers.extend(lock(&call.upstream_headers).iter().cloned());
                let request = warden_upstream::with_request_headers(headers, request);
                let started = Instant::now();
                let r = tokio::select! {
                    r = request.instrument(span) => Some(r),
                    _ = cancel.notified() => None,
                };
                self.metrics
                    .stage(warden_telemetry::Stage::Upstream, started.elapsed());
                r
            };
            // Everything the upstream sent before its response (progress,
            // server-to-client requests) is routed while the routes still exist.
            if let Some(Ok(resp)) = &result {
                handle.wait_dispatched(resp.events_before).await;
            }
            // A 2026-07-28 upstream asking a session-era client for input:
            // asked as server-to-client requests, answered in a retry.
            if let (Some(Ok(resp)), false) = (&result, session.channel == Channel::Modern) {
                if upstream_modern
                    && round < MAX_INPUT_ROUNDS
                    && resp.text.contains("\"input_required\"")
                {
                    match self
                        .bridge_input_required(
                            session,
                            server,
                            sink,
                            &resp.text,
                            handle.call_timeout,
                        )
                        .await
                    {
                        Ok(None) => {}
                        Ok(Some(extra)) => {
                            lock(&self.by_upstream_id)
                                .remove(&(instance, upstream_id.load(Ordering::Relaxed)));
                            retry_members = Some(extra);
                            round += 1;
                            continue;
                        }
                        Err(why) => {
                            warn!(server = %server, correlation_id = %corr, reason = %why, "input request not bridged");
                            let uid = upstream_id.load(Ordering::Relaxed);
                            lock(&self.by_upstream_id).remove(&(instance, uid));
                            lock(&session.inflight).remove(id);
                            if let Some(k) = progress_key {
                                lock(&self.progress).remove(&k);
                            }
                            return Some(error_response(
                                Some(id),
                                ErrorCode::MissingCapability,
                                &why,
                                Some(&serde_json::json!({"correlationId": corr})),
                            ));
                        }
                    }
                }
            }
            break result;
        };
        let uid = upstream_id.load(Ordering::Relaxed);
        lock(&self.by_upstream_id).remove(&(instance, uid));
        lock(&session.inflight).remove(id);
        if let Some(k) = progress_key {
            lock(&self.progress).remove(&k);
        }
        let result = match result {
            None => {
                // The client cancelled: tell the upstream, answer nothing.
                let _ = handle
                    .upstream
                    .notify(format!(
                        r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{uid},"reason":"cancelled by client"}}}}"#
                    ))
                    .await;
                return None;
            }
            Some(r) => r,
        };
        match result {
            Ok(resp) => Some(self.respond(session, &resp.text, id, server, msg, call).unwrap_or_else(|| {
                warn!(server = %server, correlation_id = %corr, "upstream response could not be re-addressed");
                upstream_error(id, server, corr, "sent a response Warden could not read")
            })),
            Err(e) => {
                if matches!(e, UpstreamError::Timeout) {
                    let _ = handle
                        .upstream
                        .notify(format!(
                            r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{uid},"reason":"timeout"}}}}"#
                        ))
                        .await;
                }
                warn!(server = %server, correlation_id = %corr, error = %e, "upstream call failed");
                Some(upstream_error(
                    id,
                    server,
                    corr,
                    &describe(&e, handle.call_timeout),
                ))
            }
        }
    }

    /// Stages 11–12 for one response: the output guard over a result (redact,
    /// label, truncate, block), a generic error in place of the upstream's
    /// own, and the client's id spliced back. Every other byte is kept.
    fn respond(
        &self,
        session: &Session,
        response: &str,
        client_id: &str,
        server: &str,
        request: &Message<'_>,
        call: &Call,
    ) -> Option<String> {
        let corr = call.corr.as_str();
        let m = parse_one(response).ok()?;
        let upstream_id = m.id?;
        let snap = self.snapshot();
        // What the guard's per-tool settings are keyed by: the exposed name
        // for tools and prompts, the URI for resources.
        let subject = request
            .param_str("name")
            .or_else(|| request.param_str("uri"))
            .unwrap_or_default();
        let mut edits = EditSet::new();
        edits.replace(response, upstream_id.raw_value(), client_id.to_owned());
        if let Some(result) = m.result {
            let started = Instant::now();
            let verdict = warden_telemetry::stage_span(warden_telemetry::Stage::OutputGuard)
                .in_scope(|| {
                    snap.guard
                        .inspect_output(&subject, server, request.method(), result)
                });
            self.metrics
                .stage(warden_telemetry::Stage::OutputGuard, started.elapsed());
            let mut findings = BTreeMap::new();
            for f in &verdict.findings {
                self.metrics.guard_finding(
                    f.class,
                    warden_telemetry::Direction::Output,
                    f.count as u64,
                );
                *findings.entry(f.class.to_owned()).or_insert(0) += u64::from(f.count);
            }
            // The record's result class: classes and counts, never values.
            call.note(|facts| {
                facts.output = Some(warden_audit::OutputFacts {
                    classes: findings.keys().cloned().collect(),
                    findings,
                    size: result.get().len() as u64,
                    truncated: verdict.truncated,
                })
            });
            if !verdict.findings.is_empty() || verdict.truncated {
                info!(target: "audit", event = "output.findings", correlation_id = %corr, server = %server,
                      subject = %subject, classes = %classes_of(&verdict.findings), truncated = verdict.truncated,
                      blocked = verdict.blocked.is_some());
            }
            if let Some(reason) = verdict.blocked {
                return Some(error_response(
                    Some(client_id),
                    ErrorCode::Refused,
                    &format!("result withheld by an output guard ({reason})"),
                    Some(&serde_json::json!({"correlationId": corr})),
                ));
            }
            // 2026-07-28 clients: `resultType` on every result, and an
            // upstream's `requestState` bound to it and to this principal.
            let modernized = (session.channel == Channel::Modern)
                .then(|| {
                    let base = verdict.rewritten.as_deref().unwrap_or(result.get());
                    self.modernize_result(session, server, base)
                })
                .flatten();
            if let Some(new) = modernized.or(verdict.rewritten) {
                edits.replace(response, result, new);
            }
        } else if let Some(error) = m.error {
            // The real error goes to the log only; the client gets the
            // guard's generic form with the correlation id.
            warn!(target: "audit", event = "upstream.error", correlation_id = %corr, server = %server,
                  error = %truncate(error.get(), 2048).escape_debug());
            edits.replace(
                response,
                error,
                snap.guard.sanitize_error_for(&subject, server, error, corr),
            );
        }
        edits.apply(response)
    }

    /// `tools/list`, `prompts/list`, `resources/list`, `resources/templates/list`:
    /// every upstream's page merged, with Warden's own cursor.
    async fn list(
        self: &Arc<Self>,
        session: &Arc<Session>,
        route: &VirtualRoute,
        msg: &Message<'_>,
        kind: ListKind,
        call: &Call,
    ) -> String {
        let id = msg.id.map(|i| i.raw()).unwrap_or("null");
        let pending = match msg.param_str("cursor") {
            None => BTreeMap::new(),
            Some(c) => match cursor::decode(&c) {
                Some(p) if !p.is_empty() => p,
                _ => return invalid_params(id, "invalid cursor"),
            },
        };
        let (items, next) = self.list_pages(session, route, kind, &pending, call).await;
        let next_cursor = (!next.is_empty()).then(|| cursor::encode(&next));
        let mut result = federation::build_list_result(
            kind,
            items.iter().map(|s| s.as_str()),
            next_cursor.as_deref(),
        );
        if session.channel == Channel::Modern && result.starts_with('{') {
            // 2026-07-28 caching hints: a merged list is filtered for this
            // caller, so it is private and immediately stale.
            result.insert_str(
                1,
                r#""resultType":"complete","ttlMs":0,"cacheScope":"private","#,
            );
        }
        result_response(id, &result)
    }

    /// Fetches one page from each upstream (all of them, or those named in
    /// `pending` with their cursors). Returns the items and the cursors of
    /// upstreams with more.
    async fn list_pages(
        self: &Arc<Self>,
        session: &Arc<Session>,
        route: &VirtualRoute,
        kind: ListKind,
        pending: &BTreeMap<String, String>,
        call: &Call,
    ) -> (Vec<String>, BTreeMap<String, String>) {
        let corr = call.corr.as_str();
        let servers: Vec<(String, Option<String>)> = if pending.is_empty() {
            route.servers.iter().map(|s| (s.clone(), None)).collect()
        } else {
            pending
                .iter()
                .filter(|(s, _)| route.exposes_server(s))
                .map(|(s, c)| (s.clone(), Some(c.clone())))
                .collect()
        };
        let pages = futures::future::join_all(servers.into_iter().map(|(server, cursor)| {
            let gw = self.clone();
            let session = session.clone();
            async move {
                let page = gw
                    .list_one(&session, &server, kind, cursor.as_deref())
                    .await;
                (server, page)
            }
        }))
        .await;
        let snap = self.snapshot();
        let mut items = Vec::new();
        let mut next = BTreeMap::new();
        for (server, page) in pages {
            let page = match page {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(reason) => {
                    warn!(server = %server, correlation_id = %corr, reason = %reason, list = kind.method(), "list from upstream failed; omitted");
                    continue;
                }
            };
            for r in &page.refused {
                warn!(server = %server, list = kind.method(), reason = %r, "item hidden");
            }
            if let Some(c) = page.next_cursor {
                next.insert(server.clone(), c);
            }
            for item in page.items {
                if !self.may_list(&snap, session, route, kind, &server, &item.key) {
                    continue;
                }
                match kind {
                    ListKind::Tools if !route.exposes_tool(&item.key) => continue,
                    ListKind::Resources => {
                        lock(&session.resource_routes).insert(item.key.clone(), server.clone());
                    }
                    ListKind::ResourceTemplates => {
                        let mut t = lock(&session.template_routes);
                        if !t.iter().any(|(k, s)| *k == item.key && *s == server) {
                            t.push((item.key.clone(), server.clone()));
                        }
                    }
                    _ => {}
                }
                items.push(item.text);
            }
        }
        (items, next)
    }

    /// One upstream's page; `Ok(None)` when it lacks the capability.
    async fn list_one(
        self: &Arc<Self>,
        session: &Arc<Session>,
        server: &str,
        kind: ListKind,
        cursor: Option<&str>,
    ) -> Result<Option<federation::Page>, String> {
        let h = self.upstream_for(session, server).ok_or("unknown server")?;
        let info = h.upstream.ready().await.map_err(|e| e.to_string())?;
        let init: &RawValue =
            serde_json::from_str(&info.result).map_err(|_| "bad initialize result")?;
        if !has_capability(init, kind.capability()) {
            return Ok(None);
        }
        let params = match cursor {
            Some(c) => format!(r#","params":{{"cursor":{}}}"#, json_string(c)),
            None => String::new(),
        };
        let method = kind.method();
        let resp = h
            .upstream
            .request(
                |uid| format!(r#"{{"jsonrpc":"2.0","id":{uid},"method":"{method}"{params}}}"#),
                h.call_timeout,
            )
            .await
            .map_err(|e| e.to_string())?;
        let m = parse_one(&resp.text).map_err(|e| e.to_string())?;
        let result = m.result.ok_or("upstream answered with an error")?;
        let snap = self.snapshot();
        let route = snap
            .route(&session.virtual_server)
            .ok_or("virtual server no longer configured")?;
        let mut page = rewrite_page(kind, server, result, |name| {
            route.expose(&snap.namer, server, name)
        })
        .map_err(|e| e.to_string())?;
        // Stage 4: only items the registry allows, by upstream name (tools,
        // prompts) or URI template. A name listed twice with different
        // manifests is hidden if either is.
        let item_kind = match kind {
            ListKind::Tools => ItemKind::Tool,
            ListKind::Prompts => ItemKind::Prompt,
            ListKind::ResourceTemplates => ItemKind::ResourceTemplate,
            _ => return Ok(Some(page)),
        };
        let mut manifests = Vec::new();
        for r in warden_registry::manifests_of_list(server, item_kind, result) {
            match r {
                Ok(m) => manifests.push(m),
                Err((i, e)) => page.refused.push(format!("item {i}: {e}")),
            }
        }
        let decisions = self.check_manifests(&manifests, kind.method());
        let mut allowed = HashSet::new();
        let mut hidden = HashSet::new();
        for (m, d) in manifests.iter().zip(decisions) {
            if d == ItemDecision::Allow {
                allowed.insert(m.name.as_str());
            } else {
                hidden.insert(m.name.as_str());
            }
        }
        page.items.retain(|item| {
            let name = item.upstream_name.as_deref().unwrap_or(&item.key);
            allowed.contains(name) && !hidden.contains(name)
        });
        Ok(Some(page))
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
                    if let Some(h) = self.upstream_for(session, server) {
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
        let (upstream, upstream_id) = match pending {
            PendingS2c::Upstream {
                upstream,
                upstream_id,
            } => (upstream, upstream_id),
            PendingS2c::Local(tx) => {
                let _ = tx.send(msg.text.to_owned());
                return;
            }
        };
        let mut edits = EditSet::new();
        edits.replace(msg.text, id.raw_value(), upstream_id);
        if let Some(text) = edits.apply(msg.text) {
            if let Err(e) = upstream.upstream.respond(text).await {
                warn!(server = %upstream.server, error = %e, "could not deliver client response upstream");
            }
        }
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
        let sessions: Vec<Arc<Session>> = self
            .pool
            .sessions_of(handle.instance)
            .iter()
            .filter_map(|id| self.sessions.get(id))
            .collect();
        match msg.kind {
            Kind::Notification => {
                self.route_notification(handle, &msg, &sessions);
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
                        if let Err(e) = gw.fetch_definitions(&h, kind).await {
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
                            matches!(p, PendingS2c::Upstream { upstream, upstream_id }
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
                for s in sessions {
                    s.sink_for_server(&handle.server).send(text.clone());
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
                    s.standalone().send(text.clone());
                }
            }
        }
    }

    /// The output guard over a notification's params (progress and log
    /// messages carry upstream text to the client too). The message as
    /// the client may see it; `None` when the guard blocks it.
    fn guard_notification(&self, subject: &str, server: &str, msg: &Message<'_>) -> Option<String> {
        let Some(params) = msg.params else {
            return Some(msg.text.to_owned());
        };
        let snap = self.snapshot();
        let verdict = snap
            .guard
            .inspect_output(subject, server, msg.method(), params);
        for f in &verdict.findings {
            self.metrics.guard_finding(
                f.class,
                warden_telemetry::Direction::Output,
                f.count as u64,
            );
        }
        if !verdict.findings.is_empty() {
            info!(target: "audit", event = "output.findings", server = %server, method = %msg.method(),
                  subject = %subject, classes = %classes_of(&verdict.findings),
                  blocked = verdict.blocked.is_some());
        }
        if verdict.blocked.is_some() {
            return None;
        }
        match verdict.rewritten {
            Some(new) => {
                let mut edits = EditSet::new();
                edits.replace(msg.text, params, new);
                edits.apply(msg.text)
            }
            None => Some(msg.text.to_owned()),
        }
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
        // only one, else the one most recently active on this upstream.
        let related = related_to.and_then(|uid| {
            let (weak, client_id) = lock(&self.by_upstream_id)
                .get(&(handle.instance, uid))
                .cloned()?;
            let s = weak.upgrade()?;
            let sink = lock(&s.inflight).get(&client_id).map(|i| i.sink.clone())?;
            Some((s, sink))
        });
        let target = related.or_else(|| {
            let s = sessions.iter().min_by_key(|s| s.idle_for())?.clone();
            let sink = s.sink_for_server(&handle.server);
            Some((s, sink))
        });
        let Some((session, sink)) = target else {
            let _ = handle
                .upstream
                .respond(reply_error(
                    ErrorCode::InternalError,
                    "no client session is connected",
                ))
                .await;
            return;
        };
        if let Some((code, why)) = self.s2c_refusal(&session, &handle.server, msg.method()) {
            let _ = handle.upstream.respond(reply_error(code, why)).await;
            return;
        }
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
            },
        );
        info!(target: "audit", event = "server_request", server = %handle.server, session = %session.id, method = %msg.method());
        sink.send(text.into());
    }

    /// Whether a server may put this request (sampling, elicitation, roots)
    /// to this session's client: the client declared the capability, and
    /// stage 5 allows this server to ask this principal. `None`: it may.
    fn s2c_refusal(
        &self,
        session: &Session,
        server: &str,
        method: &str,
    ) -> Option<(ErrorCode, &'static str)> {
        let supported = match method {
            "sampling/createMessage" => session.caps.sampling,
            "elicitation/create" => session.caps.elicitation,
            "roots/list" => session.caps.roots,
            _ => false,
        };
        if !supported {
            return Some((
                ErrorCode::MethodNotFound,
                "the client does not support this request",
            ));
        }
        let action = match method {
            "sampling/createMessage" => warden_policy::Action::Sample,
            "elicitation/create" => warden_policy::Action::Elicit,
            _ => return None,
        };
        let snap = self.snapshot();
        let engine = snap.policy.as_ref()?;
        let req = warden_policy::Request {
            principal: &session.principal,
            action,
            server,
            resource: "",
            arguments: None,
            annotations: None,
            context: warden_policy::RequestContext::at(std::time::SystemTime::now()),
        };
        let decision = engine.decide(&req);
        if decision.is_allow() {
            return None;
        }
        info!(target: "audit", event = "server_request.denied", server = %server,
              session = %session.id, method = %method, reason = %decision.reason());
        Some((ErrorCode::PolicyDenied, "denied by policy"))
    }

    /// A 2026-07-28 upstream answered a session-era client's request with an
    /// input-required result: each input request goes to the client as a
    /// server-to-client request on the request's stream, and the answers
    /// become the retry's `inputResponses` (with the upstream's
    /// `requestState`, untouched). `Ok(None)`: not input-required;
    /// `Ok(Some(members))`: the params members to add to the retry;
    /// `Err(message)`: the call cannot go on.
    async fn bridge_input_required(
        &self,
        session: &Session,
        server: &str,
        sink: &Sink,
        response: &str,
        timeout: Duration,
    ) -> Result<Option<String>, String> {
        let Ok(m) = parse_one(response) else {
            return Ok(None);
        };
        let Some(result) = m.result else {
            return Ok(None);
        };
        if member(result, "resultType").and_then(as_str).as_deref() != Some("input_required") {
            return Ok(None);
        }
        let asked = member(result, "inputRequests")
            .and_then(members)
            .unwrap_or_default();
        let mut waiting = Vec::new();
        for (key, req) in &asked {
            let method = member(req, "method").and_then(as_str).unwrap_or_default();
            if !matches!(
                method.as_ref(),
                "sampling/createMessage" | "elicitation/create" | "roots/list"
            ) {
                return Err(format!(
                    "the server asked for input of an unknown kind ({})",
                    truncate(&method, 64)
                ));
            }
            if let Some((_, why)) = self.s2c_refusal(session, server, &method) {
                return Err(format!("the server asked for {method}: {why}"));
            }
            let client_id = session.next_s2c_id();
            let (tx, rx) = tokio::sync::oneshot::channel();
            lock(&session.pending_s2c).insert(client_id.clone(), PendingS2c::Local(tx));
            let params = member(req, "params").map_or("{}", |p| p.get());
            let text = format!(
                r#"{{"jsonrpc":"2.0","id":{client_id},"method":{},"params":{params}}}"#,
                json_string(&method)
            );
            info!(target: "audit", event = "server_request", server = %server, session = %session.id,
                  method = %method, bridged = true);
            sink.send(text.into());
            waiting.push((key.to_string(), client_id, rx));
        }
        let mut answers = serde_json::Map::new();
        for (key, client_id, rx) in waiting {
            let answer = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(a)) => a,
                _ => {
                    lock(&session.pending_s2c).remove(&client_id);
                    return Err("the client did not answer the server's input request".into());
                }
            };
            let Ok(reply) = parse_one(&answer) else {
                return Err("the client's answer could not be read".into());
            };
            match reply.result {
                Some(r) => {
                    let v: serde_json::Value = serde_json::from_str(r.get())
                        .map_err(|_| "the client's answer could not be read".to_owned())?;
                    answers.insert(key, v);
                }
                None => return Err("the client refused the server's input request".into()),
            }
        }
        let mut extra = format!(
            r#""inputResponses":{},"#,
            serde_json::Value::Object(answers)
        );
        if let Some(state) = member(result, "requestState") {
            extra.push_str(&format!(r#""requestState":{},"#, state.get()));
        }
        Ok(Some(extra))
    }

    /// Tells every session on an upstream that its lists may have changed.
    fn announce_lists_changed(&self, handle: &UpstreamHandle) {
        for id in self.pool.sessions_of(handle.instance) {
            if let Some(s) = self.sessions.get(&id) {
                for m in ["tools", "prompts", "resources"] {
                    let text =
                        format!(r#"{{"jsonrpc":"2.0","method":"notifications/{m}/list_changed"}}"#);
                    s.standalone().send(text.into());
                }
            }
        }
    }

    /// Stops everything: sessions closed, upstreams shut down.
    pub async fn shutdown(&self) {
        for s in self.sessions.all() {
            self.close_session(&s.id).await;
        }
        for h in self.pool.drain() {
            h.upstream.shutdown().await;
        }
    }

    pub fn upstream_count(&self) -> usize {
        self.pool.len()
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

/// The cache of an upstream's tools or prompts.
fn definitions_slot(h: &UpstreamHandle, kind: ItemKind) -> &Mutex<Option<Arc<Definitions>>> {
    if kind == ItemKind::Prompt {
        &h.prompts
    } else {
        &h.tools
    }
}

/// Keeps the lock file and the registry in step, off the request path:
/// a lock file changed on disk (`warden registry pin|approve`) is loaded
/// and installed; tofu pins are then written (atomically). A file that
/// does not load keeps the running registry.
fn spawn_registry_keeper(gw: Weak<Gateway>) {
    tokio::spawn(async move {
        let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut seen: Option<(std::path::PathBuf, Option<std::time::SystemTime>)> = None;
        loop {
            tick.tick().await;
            let Some(gw) = gw.upgrade() else {
                return;
            };
            let (path, registry) = {
                let snap = gw.snapshot();
                (snap.config.registry.lock.clone(), snap.registry.clone())
            };
            drop(gw);
            let now = (path.clone(), modified(&path));
            if seen.as_ref().is_some_and(|s| *s != now) && now.1.is_some() {
                let p = path.clone();
                match tokio::task::spawn_blocking(move || crate::snapshot::load_lock(&p)).await {
                    Ok(Ok(lock)) => {
                        registry.replace_lock(lock);
                        info!(target: "audit", event = "registry.lock_reloaded", path = %path.display());
                    }
                    Ok(Err(e)) => {
                        error!(target: "audit", event = "registry.lock_reload_failed", error = %e);
                    }
                    Err(_) => {}
                }
            }
            seen = Some(now);
            if let Some(lock) = registry.take_unsaved() {
                let p = path.clone();
                match tokio::task::spawn_blocking(move || lock.save(&p)).await {
                    Ok(Ok(())) => {
                        info!(target: "audit", event = "registry.lock_saved", path = %path.display());
                    }
                    Ok(Err(e)) => {
                        error!(target: "audit", event = "registry.lock_save_failed", error = %e);
                    }
                    Err(_) => {}
                }
                seen = Some((path.clone(), modified(&path)));
            }
        }
    });
}

fn engine_hides_denials(snap: &Snapshot) -> bool {
    snap.config
        .authorization
        .as_ref()
        .is_some_and(|a| a.deny_as_unknown())
}

/// The answer for something that does not exist, for deployments that must
/// not reveal what a denied caller cannot see.
fn unknown_item(id: &str, action: warden_policy::Action, shown: &str) -> String {
    match action {
        warden_policy::Action::ReadResource | warden_policy::Action::Subscribe => error_response(
            Some(id),
            ErrorCode::ResourceNotFound,
            "resource not found",
            Some(&serde_json::json!({"uri": truncate(shown, 512)})),
        ),
        warden_policy::Action::GetPrompt => {
            invalid_params(id, &format!("unknown prompt: {}", truncate(shown, 128)))
        }
        _ => invalid_params(id, &format!("unknown tool: {}", truncate(shown, 128))),
    }
}

fn invalid_params(id: &str, why: &str) -> String {
    error_response(Some(id), ErrorCode::InvalidParams, why, None)
}

fn upstream_error(id: &str, server: &str, corr: &str, what: &str) -> String {
    error_response(
        Some(id),
        ErrorCode::UpstreamUnavailable,
        &format!("upstream server '{server}' {what}"),
        Some(&serde_json::json!({"correlationId": corr})),
    )
}

fn describe(e: &UpstreamError, timeout: Duration) -> String {
    match e {
        UpstreamError::Timeout => format!("did not answer within {}s", timeout.as_secs_f32()),
        UpstreamError::Closed(_) => "closed the connection before answering".into(),
        _ => "is unavailable".into(),
    }
}

fn outcome_of(resp: Option<&str>) -> &'static str {
    match resp.map(parse_one) {
        None => "cancelled",
        Some(Ok(m)) if m.kind == Kind::Result => "ok",
        Some(_) => "error",
    }
}

/// Finding classes and counts for the audit log (never values).
fn classes_of(findings: &[warden_guard::Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("{}x{}", f.class, f.count))
        .collect::<Vec<_>>()
        .join(",")
}

type HmacSha256 = hmac::Hmac<Sha256>;

/// `_meta` for an upstream of the other era: a 2026-07-28 client's envelope
/// keys dropped (`strip`), a session-era client's log level added, the
/// progress token replaced by Warden's. `None` when `_meta` is not an object.
fn cross_era_meta(
    meta: Option<&RawValue>,
    strip: bool,
    log_level: Option<&str>,
    progress: Option<&str>,
) -> Option<String> {
    use warden_protocol::modern::{
        META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_LOG_LEVEL, META_PROTOCOL_VERSION,
    };
    let mut m: serde_json::Map<String, serde_json::Value> = match meta {
        Some(raw) => serde_json::from_str(raw.get()).ok()?,
        None => serde_json::Map::new(),
    };
    if strip {
        for k in [
            META_PROTOCOL_VERSION,
            META_CLIENT_CAPABILITIES,
            META_CLIENT_INFO,
            META_LOG_LEVEL,
        ] {
            m.remove(k);
        }
    }
    if let Some(level) = log_level {
        m.entry(META_LOG_LEVEL)
            .or_insert_with(|| serde_json::Value::String(level.to_owned()));
    }
    if let (Some(p), true) = (progress, m.contains_key("progressToken")) {
        m.insert(
            "progressToken".into(),
            serde_json::Value::String(p.to_owned()),
        );
    }
    Some(serde_json::Value::Object(m).to_string())
}

/// Cancels a held `subscriptions/listen` on a 2026-07-28 upstream when its
/// task ends or is aborted (the connection closes that request's stream).
struct ListenGuard {
    handle: Arc<UpstreamHandle>,
    uid: Arc<AtomicU64>,
}

impl Drop for ListenGuard {
    fn drop(&mut self) {
        let uid = self.uid.load(Ordering::Relaxed);
        let h = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = h
                    .upstream
                    .notify(format!(
                        r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{uid}}}}}"#
                    ))
                    .await;
            });
        }
    }
}

/// Input rounds Warden bridges for one session-era call to a 2026-07-28 upstream.
const MAX_INPUT_ROUNDS: usize = 8;

/// Whether an upstream speaks 2026-07-28 (known once it is ready).
async fn handle_is_modern(h: &UpstreamHandle) -> bool {
    h.upstream.ready().await.is_ok_and(|i| i.modern)
}

/// Messages a slow `subscriptions/listen` reader may fall behind by before
/// it misses some (it is then told the lists changed).
const LISTEN_BUFFER: usize = 256;
static B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// JSON text as a value (`Null` when absent or not JSON).
pub(crate) fn json_value(raw: Option<&str>) -> serde_json::Value {
    raw.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn input_schema(tool: Option<&RawValue>) -> Option<&RawValue> {
    tool.and_then(|t| member(t, "inputSchema"))
}

/// A 2026-07-28 client's `Mcp-Param-*` headers against the arguments
/// (-32020 on a mismatch). `None`: they agree.
fn check_param_headers(
    call: &Call,
    id: &str,
    tool: Option<&RawValue>,
    arguments: Option<&RawValue>,
) -> Option<String> {
    let client = crate::call::param_headers();
    let schema = input_schema(tool)?;
    if client.is_empty() && !schema.get().contains("x-mcp-header") {
        return None;
    }
    let args = json_value(arguments.map(|a| a.get()));
    let verdict = warden_protocol::modern::validate_param_headers(
        &json_value(Some(schema.get())),
        &args,
        &client,
    );
    let r = verdict.err()?;
    call.note(|f| {
        f.decision = Some(warden_audit::Decision::Deny);
        f.reason_code = Some("header_mismatch".into());
    });
    Some(error_response(
        Some(id),
        r.code,
        &r.message,
        Some(&serde_json::json!({"correlationId": call.corr})),
    ))
}

/// The `Mcp-Param-*` headers for the upstream request: the ones the tool's
/// schema declares, computed from the arguments as sent, and any others
/// the client sent (forwarded unchanged).
fn upstream_param_headers(tool: Option<&RawValue>, sent: Option<&str>) -> Vec<(String, String)> {
    let client = crate::call::param_headers();
    let schema = input_schema(tool);
    let declares = schema.is_some_and(|s| s.get().contains("x-mcp-header"));
    let mut out = match (declares, schema) {
        (true, Some(schema)) => warden_protocol::modern::param_headers(
            &json_value(Some(schema.get())),
            &json_value(sent),
        ),
        _ => Vec::new(),
    };
    let declared: HashSet<String> = out.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
    for (k, v) in client.iter() {
        if !declared.contains(k) {
            out.push((k.clone(), v.clone()));
        }
    }
    out
}
