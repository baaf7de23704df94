//! Stage 10, Execute: the request goes to the upstream serving the
//! session's isolation key, with Warden's id (and progress token) spliced
//! in and a deadline; or Warden answers itself (`ping`, `server/discover`,
//! merged lists, `logging/setLevel`). The only stage that does I/O on the
//! request path, with the registry's bounded list fetch.
//!
//! Across eras: a 2026-07-28 retry's `requestState` is opened (it goes back
//! only to the server and principal it was sealed for), a session-era
//! client's input rounds with a 2026-07-28 upstream are bridged here.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::Mac;
use serde_json::value::RawValue;
use sha2::Sha256;
use tokio::sync::Notify;
use tracing::{debug, info, warn, Instrument};
use warden_protocol::edit::{json_string, EditSet};
use warden_protocol::error::result_response;
use warden_protocol::message::{as_str, member, members, parse_one};
use warden_protocol::method::ListKind;
use warden_registry::{ItemDecision, ItemKind};
use warden_upstream::UpstreamError;

use super::{Exchange, Executed, Refusal, Target};
use crate::core::{Gateway, ProgressRoute, B64URL};
use crate::federation::{self, cursor, has_capability, rewrite_page, truncate};
use crate::pool::UpstreamHandle;
use crate::session::{lock, Channel, Inflight, Session};
use crate::stream::Sink;

pub(crate) async fn run(gw: &Arc<Gateway>, ex: &mut Exchange<'_>) -> Result<Executed, Refusal> {
    let edits = std::mem::take(&mut ex.edits);
    let ex = &*ex;
    match &ex.target {
        Target::Unrouted => Err(Refusal::MethodNotFound),
        Target::Local => Ok(Executed::Answer(match ex.msg.method() {
            "server/discover" => {
                result_response(ex.id, &gw.discover(&ex.snap, &ex.session, &ex.route).await)
            }
            _ => result_response(ex.id, "{}"),
        })),
        Target::List { kind, pending } => Ok(Executed::Answer(gw.list(ex, *kind, pending).await)),
        Target::Broadcast { servers } => Ok(Executed::Answer(gw.broadcast(ex, servers).await)),
        Target::Resource { server, uri } if ex.msg.method() != "resources/read" => {
            let on = ex.msg.method() == "resources/subscribe";
            let key = (server.clone(), uri.clone());
            {
                let mut subscribed = lock(&ex.session.subscribed);
                if !on {
                    subscribed.remove(&key);
                } else if subscribed.len() >= MAX_SUBSCRIPTIONS && !subscribed.contains(&key) {
                    return Err(Refusal::InvalidParams(format!(
                        "this session holds {MAX_SUBSCRIPTIONS} resource subscriptions: unsubscribe first"
                    )));
                } else {
                    subscribed.insert(key.clone());
                }
            }
            if let Some(h) = gw.upstream_for(&ex.snap, &ex.session, server) {
                if handle_is_modern(&h).await {
                    gw.hold_subscription(&ex.session, server, h, uri, on);
                    return Ok(Executed::Answer(result_response(ex.id, "{}")));
                }
                // On an upstream shared with other sessions, their
                // subscription to the same URI stays.
                if !on && gw.subscribed_elsewhere(&h, &ex.session, &key) {
                    return Ok(Executed::Answer(result_response(ex.id, "{}")));
                }
            }
            gw.forward(ex, server, edits).await
        }
        Target::Item { server, .. }
        | Target::Resource { server, .. }
        | Target::CompletePrompt { server, .. }
        | Target::CompleteResource { server, .. } => gw.forward(ex, server, edits).await,
    }
}

/// Resource subscriptions one session may hold.
const MAX_SUBSCRIPTIONS: usize = 4096;

impl Gateway {
    /// Whether another session on this upstream holds `key` (server, uri).
    fn subscribed_elsewhere(
        &self,
        h: &UpstreamHandle,
        session: &Session,
        key: &(String, String),
    ) -> bool {
        self.sessions_on(h)
            .iter()
            .filter(|s| s.id != session.id)
            .any(|s| lock(&s.subscribed).contains(key))
    }

    /// Sends the request to the server's upstream with Warden's id and
    /// waits with a deadline. The response is the upstream's, for the
    /// output stage.
    async fn forward(
        self: &Arc<Self>,
        ex: &Exchange<'_>,
        server: &str,
        mut edits: EditSet,
    ) -> Result<Executed, Refusal> {
        let (session, msg, sink, id) = (&ex.session, ex.msg, &ex.sink, ex.id);
        let corr = ex.call.corr.as_str();
        // A 2026-07-28 retry's `requestState` goes back only to the server
        // that issued it, for the principal it was issued to.
        if session.channel == Channel::Modern {
            if let Some(raw) = msg.param("requestState") {
                let opened = as_str(raw)
                    .ok_or("params.requestState must be a string")
                    .and_then(|st| self.open_request_state(session, server, &st));
                let original = opened.map_err(Refusal::RequestStateInvalid)?;
                edits.replace(msg.text, raw, json_string(&original));
            }
        }
        let Some(handle) = self.upstream_for(&ex.snap, session, server) else {
            return Err(Refusal::InvalidParams("unknown server".into()));
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
                    subject: ex.target.subject().to_owned(),
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
                headers.extend(ex.upstream_headers.iter().cloned());
                let request = warden_upstream::with_call_headers(
                    warden_upstream::RequestHeaders {
                        extra: headers,
                        credentials: ex.credential_headers.clone(),
                    },
                    request,
                );
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
                            &ex.snap,
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
                            let uid = upstream_id.load(Ordering::Relaxed);
                            lock(&self.by_upstream_id).remove(&(instance, uid));
                            lock(&session.inflight).remove(id);
                            if let Some(k) = progress_key {
                                lock(&self.progress).remove(&k);
                            }
                            return Err(Refusal::InputNotBridged(why));
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
                return Ok(Executed::Cancelled);
            }
            Some(r) => r,
        };
        match result {
            Ok(resp) => Ok(Executed::Upstream {
                server: server.to_owned(),
                text: resp.text,
            }),
            Err(e) => {
                if matches!(e, UpstreamError::Timeout) {
                    let _ = handle
                        .upstream
                        .notify(format!(
                            r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{uid},"reason":"timeout"}}}}"#
                        ))
                        .await;
                }
                let _ = corr;
                Err(Refusal::Upstream {
                    server: server.to_owned(),
                    what: describe(&e, handle.call_timeout),
                })
            }
        }
    }

    /// `logging/setLevel`: every upstream of the session that logs.
    async fn broadcast(self: &Arc<Self>, ex: &Exchange<'_>, servers: &[String]) -> String {
        let (session, msg, id) = (&ex.session, ex.msg, ex.id);
        let params = msg.params.map(|p| p.get()).unwrap_or("{}");
        let method = msg.method().to_owned();
        if method == "logging/setLevel" {
            // 2026-07-28 upstreams read the level from each request's `_meta`.
            *lock(&session.log_level) = msg.param_str("level").map(|l| l.into_owned());
        }
        futures::future::join_all(servers.iter().map(|server| {
            let method = method.clone();
            async move {
                let h = self.upstream_for(&ex.snap, session, server)?;
                let info = h.upstream.ready().await.ok()?;
                let init: &RawValue = serde_json::from_str(&info.result).ok()?;
                if info.modern || !has_capability(init, "logging") {
                    return None;
                }
                // A shared upstream logs at the most verbose level any of
                // its sessions set; each session sees its own.
                let params = match self.shared_log_level(&h) {
                    Some(level) if method == "logging/setLevel" => {
                        format!(r#"{{"level":{}}}"#, json_string(&level))
                    }
                    _ => params.to_owned(),
                };
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

    /// `tools/list`, `prompts/list`, `resources/list`, `resources/templates/list`:
    /// every upstream's page merged, with Warden's own cursor.
    async fn list(
        self: &Arc<Self>,
        ex: &Exchange<'_>,
        kind: ListKind,
        pending: &BTreeMap<String, String>,
    ) -> String {
        let (session, id) = (&ex.session, ex.id);
        let (items, next) = self.list_pages(ex, kind, pending).await;
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
    pub(crate) async fn list_pages(
        self: &Arc<Self>,
        ex: &Exchange<'_>,
        kind: ListKind,
        pending: &BTreeMap<String, String>,
    ) -> (Vec<String>, BTreeMap<String, String>) {
        let (session, route) = (&ex.session, &*ex.route);
        let corr = ex.call.corr.as_str();
        let servers: Vec<(String, Option<String>)> = if pending.is_empty() {
            route.servers.iter().map(|s| (s.clone(), None)).collect()
        } else {
            pending
                .iter()
                .filter(|(s, _)| route.exposes_server(s))
                .map(|(s, c)| (s.clone(), Some(c.clone())))
                .collect()
        };
        let pages =
            futures::future::join_all(servers.into_iter().map(|(server, cursor)| async move {
                let page = self.list_one(ex, &server, kind, cursor.as_deref()).await;
                (server, page)
            }))
            .await;
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
                if !self.may_list(ex, route, kind, &server, &item.key) {
                    continue;
                }
                match kind {
                    ListKind::Tools if !route.exposes_tool(&item.key) => continue,
                    ListKind::Resources => {
                        lock(&session.resource_routes).insert(item.key.clone(), server.clone());
                    }
                    ListKind::ResourceTemplates => {
                        let known = lock(&session.template_routes)
                            .iter()
                            .any(|t| t.template == item.key && t.server == server);
                        if !known {
                            // Compiled outside the lock; the list is
                            // replaced, never changed under a reader.
                            if let Some(compiled) = federation::UriTemplate::parse(&item.key) {
                                let mut t = lock(&session.template_routes);
                                let mut next = Vec::clone(&t);
                                next.push(Arc::new(crate::session::TemplateRoute {
                                    template: item.key.clone(),
                                    compiled,
                                    server: server.clone(),
                                }));
                                *t = Arc::new(next);
                            }
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
        ex: &Exchange<'_>,
        server: &str,
        kind: ListKind,
        cursor: Option<&str>,
    ) -> Result<Option<federation::Page>, String> {
        let (snap, route) = (&*ex.snap, &*ex.route);
        let h = self
            .upstream_for(snap, &ex.session, server)
            .ok_or("unknown server")?;
        let info = h.upstream.ready().await.map_err(|e| e.to_string())?;
        let init: &RawValue =
            serde_json::from_str(&info.result).map_err(|_| "bad initialize result")?;
        if !has_capability(init, kind.capability()) {
            return Ok(None);
        }
        let resp = request_page(&h, kind, cursor)
            .await
            .map_err(|e| e.to_string())?;
        let m = parse_one(&resp.text).map_err(|e| e.to_string())?;
        let result = m.result.ok_or("upstream answered with an error")?;
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
        let decisions = self
            .check_manifests(snap, &manifests, kind.method(), &h.registry_instance)
            .await;
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

    /// A 2026-07-28 upstream answered a session-era client's request with an
    /// input-required result: each input request goes to the client as a
    /// server-to-client request on the request's stream, and the answers
    /// become the retry's `inputResponses` (with the upstream's
    /// `requestState`, untouched). `Ok(None)`: not input-required;
    /// `Ok(Some(members))`: the params members to add to the retry;
    /// `Err(message)`: the call cannot go on.
    async fn bridge_input_required(
        &self,
        snap: &crate::snapshot::Snapshot,
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
            if let Some((_, why)) = super::authorize::s2c_refusal(snap, session, server, &method) {
                return Err(format!("the server asked for {method}: {why}"));
            }
            let params = member(req, "params").map_or("{}", |p| p.get());
            info!(target: "audit", event = "server_request", server = %server, session = %session.id,
                  method = %method, bridged = true);
            let (client_id, rx) = session.ask(sink, &method, params);
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
    pub(crate) fn seal_request_state(
        &self,
        session: &Session,
        server: &str,
        state: &str,
    ) -> String {
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
}

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

pub(crate) fn describe(e: &UpstreamError, timeout: Duration) -> String {
    match e {
        UpstreamError::Timeout => format!("did not answer within {}s", timeout.as_secs_f32()),
        UpstreamError::Closed(_) => "closed the connection before answering".into(),
        _ => "is unavailable".into(),
    }
}

type HmacSha256 = hmac::Hmac<Sha256>;

/// One page of an upstream's list (`cursor`: from its previous page).
pub(crate) async fn request_page(
    h: &UpstreamHandle,
    list: ListKind,
    cursor: Option<&str>,
) -> Result<warden_upstream::Response, UpstreamError> {
    let params = match cursor {
        Some(c) => format!(r#","params":{{"cursor":{}}}"#, json_string(c)),
        None => String::new(),
    };
    let method = list.method();
    h.upstream
        .request(
            |uid| format!(r#"{{"jsonrpc":"2.0","id":{uid},"method":"{method}"{params}}}"#),
            h.call_timeout,
        )
        .await
}
