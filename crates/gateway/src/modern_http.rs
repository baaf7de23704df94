//! The 2026-07-28 (stateless) era on Streamable HTTP: one self-contained
//! POST per request, no `Mcp-Session-Id`.
//!
//! In order, for each POST the transport classifies as modern:
//! 1. the validation ladder (`warden_protocol::modern::classify`): the
//!    envelope in `params._meta`, the mirrored headers, the version;
//! 2. methods the era removed → -32601 / 404;
//! 3. the principal's modern context (a hidden session: upstreams,
//!    routes, data classes) for its declared capabilities;
//! 4. the client's id swapped for a Warden-unique one (two requests of one
//!    context may carry the same id), restored on the way out;
//! 5. the pipeline (`Gateway::handle_call`), with the `Mcp-Param-*` headers
//!    in a task-local;
//! 6. bridging: a session-era upstream's server-to-client request
//!    (`elicitation/create`, `sampling/createMessage`, `roots/list`)
//!    becomes an input-required result; the call stays parked upstream
//!    until the client's retry brings `inputResponses` and Warden's
//!    `requestState`, whose answers go to the upstream as responses;
//! 7. the answer: JSON with the status the spec's table gives the error
//!    code, or SSE once a notification (progress, log) precedes it.
//!    Closing the response cancels the request upstream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use warden_identity::Principal;
use warden_protocol::edit::{json_string, EditSet};
use warden_protocol::error::error_response;
use warden_protocol::message::{as_str, member, parse_one, Incoming, Kind, Message};
use warden_protocol::modern::{self, Rejection, RoutingHeaders};
use warden_protocol::{sse, ErrorCode, ProtocolVersion};

use crate::core::{Gateway, OpenError};
use crate::session::{lock, Session, Slot, Slots};
use crate::stream::Sink;

/// How long a parked call waits for the client's retry.
const PARKED_FOR: Duration = Duration::from_secs(300);
/// Parked calls per process, at most.
const MAX_PARKED: usize = 10_000;

/// The work of one request: the pipeline's response (`None`: cancelled).
type Work = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// A call parked upstream while its client answers input requests.
pub(crate) struct Parked {
    log_floor: Option<u8>,
    owner: String,
    /// Counts against the owner's `gateway.max_parked_per_principal`
    /// (taken when parked).
    slot: Option<Slot>,
    principal: String,
    virtual_server: String,
    session: Arc<Session>,
    internal_id: String,
    method: String,
    name: Option<String>,
    arguments: Option<String>,
    /// Keys of the input requests still unanswered → their s2c ids.
    asked: Vec<(String, Arc<str>)>,
    work: Work,
    related: mpsc::UnboundedReceiver<Arc<str>>,
    parked_at: Instant,
}

/// Parked calls by the token in Warden's `requestState`, and how many
/// each owner has parked.
#[derive(Default, Clone)]
pub(crate) struct ParkedCalls {
    calls: Arc<Mutex<HashMap<String, Parked>>>,
    owners: Slots,
}

/// Why a call was not parked.
enum ParkRefusal {
    /// [`MAX_PARKED`] calls are parked.
    Full,
    /// Its owner has `gateway.max_parked_per_principal` parked.
    OwnerFull(usize),
}

impl ParkedCalls {
    /// Parks a call, unless [`MAX_PARKED`] are, or its owner has `max`
    /// parked; a call not parked is cancelled upstream.
    fn park(&self, mut p: Parked, max: usize) -> Result<String, ParkRefusal> {
        let mut g = lock(&self.calls);
        let expired: Vec<String> = g
            .iter()
            .filter(|(_, p)| p.parked_at.elapsed() > PARKED_FOR)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            if let Some(p) = g.remove(&k) {
                cancel_inflight(&p.session, &p.internal_id);
            }
        }
        let slot = if g.len() >= MAX_PARKED {
            Err(ParkRefusal::Full)
        } else {
            self.owners
                .take(&p.owner, max)
                .ok_or(ParkRefusal::OwnerFull(max))
        };
        match slot {
            Ok(slot) => {
                p.slot = Some(slot);
                let bytes: [u8; 16] = rand::random();
                let token = format!("wc1.{}", hex::encode(bytes));
                g.insert(token.clone(), p);
                Ok(token)
            }
            Err(refused) => {
                cancel_inflight(&p.session, &p.internal_id);
                Err(refused)
            }
        }
    }

    fn take(&self, token: &str) -> Option<Parked> {
        lock(&self.calls).remove(token)
    }
}

fn cancel_inflight(session: &Session, internal_id: &str) {
    if let Some(i) = lock(&session.inflight).get(internal_id) {
        i.cancel.notify_one();
    }
}

/// Whether a POST speaks 2026-07-28: no session, not a session-era
/// `initialize`, and a version header that is not a session-era one (or
/// none, with the modern envelope in the body).
pub(crate) fn is_modern_post(headers: &HeaderMap, incoming: &Incoming<'_>) -> bool {
    let version = headers
        .get(modern::HEADER_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if headers.contains_key("mcp-session-id") {
        // A 2026-07-28 client's stray session id is ignored; anything else
        // with a session id is a session-era request.
        return version
            .and_then(ProtocolVersion::parse)
            .is_some_and(|v| !v.is_session_era());
    }
    let m = match incoming {
        Incoming::Single(m) => m,
        Incoming::Batch(_) => return version.is_some_and(|v| !session_era(v)),
    };
    if m.method() == "initialize" && version.is_none_or(session_era) {
        return false;
    }
    let enveloped = m
        .param("_meta")
        .and_then(|meta| member(meta, modern::META_PROTOCOL_VERSION))
        .is_some();
    enveloped || version.is_some_and(|v| !session_era(v))
}

/// Whether a GET or DELETE comes from a 2026-07-28 client (405 for it).
pub(crate) fn is_modern_header(headers: &HeaderMap) -> bool {
    headers
        .get(modern::HEADER_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| ProtocolVersion::parse(v.trim()))
        .is_some_and(|v| !v.is_session_era())
}

fn session_era(v: &str) -> bool {
    ProtocolVersion::parse(v).is_some_and(|p| p.is_session_era())
}

pub(crate) fn method_not_allowed() -> Response {
    let mut r = (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Method Not Allowed: a 2026-07-28 client only POSTs\n",
    )
        .into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

fn json(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn reject(id: Option<&str>, r: &Rejection) -> Response {
    json(
        r.http_status(),
        error_response(id, r.code, &r.message, r.data.as_ref()),
    )
}

/// The status the spec's table gives a JSON-RPC response.
fn status_of(body: &str) -> u16 {
    if !body.contains("\"error\"") {
        return 200;
    }
    parse_one(body)
        .ok()
        .and_then(|m| m.error)
        .and_then(|e| member(e, "code"))
        .and_then(|c| c.get().parse::<i64>().ok())
        .map_or(200, modern::http_status_for)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_matches([' ', '\t']))
}

/// Serves a POST if it is a 2026-07-28 request (the body already strictly
/// validated); `None` sends it down the session-era path (which also
/// reports a body that does not parse).
pub(crate) async fn post_if_modern(
    gw: Arc<Gateway>,
    parked: ParkedCalls,
    vs: &str,
    principal: &Principal,
    headers: &HeaderMap,
    text: &str,
) -> Option<Response> {
    let incoming = message::parse_validated(text, true).ok()?;
    if !is_modern_post(headers, &incoming) {
        return None;
    }
    Some(post(gw, parked, vs, principal.clone(), headers, text, incoming).await)
}

async fn post(
    gw: Arc<Gateway>,
    parked: ParkedCalls,
    vs: &str,
    principal: Principal,
    headers: &HeaderMap,
    text: &str,
    incoming: Incoming<'_>,
) -> Response {
    let m = match incoming {
        Incoming::Single(m) => m,
        Incoming::Batch(_) => {
            return json(
                400,
                error_response(
                    None,
                    ErrorCode::InvalidRequest,
                    "a 2026-07-28 body is one JSON-RPC request or notification",
                    None,
                ),
            )
        }
    };
    let id = m.id.map(|i| i.raw());
    for name in [
        modern::HEADER_PROTOCOL_VERSION,
        modern::HEADER_METHOD,
        modern::HEADER_NAME,
    ] {
        if headers.get_all(name).iter().count() > 1 {
            return json(
                400,
                error_response(
                    id,
                    ErrorCode::HeaderMismatch,
                    &format!("{name} header appears more than once"),
                    None,
                ),
            );
        }
    }
    match m.kind {
        Kind::Request => {}
        Kind::Notification => {
            // No client notification exists on this wire (a client cancels
            // by closing the response); acknowledged and dropped.
            let v = header(headers, modern::HEADER_PROTOCOL_VERSION).unwrap_or("");
            if ProtocolVersion::parse(v).is_none_or(|p| p.is_session_era()) {
                return reject(None, &modern::unsupported_version(v));
            }
            debug!(method = %m.method(), "2026-07-28 client notification dropped");
            return StatusCode::ACCEPTED.into_response();
        }
        Kind::Result | Kind::Error => {
            return json(
                400,
                error_response(
                    None,
                    ErrorCode::InvalidRequest,
                    "a 2026-07-28 client sends no responses (answers travel in inputResponses)",
                    None,
                ),
            )
        }
    }
    let routing = RoutingHeaders {
        protocol_version: header(headers, modern::HEADER_PROTOCOL_VERSION),
        method: header(headers, modern::HEADER_METHOD),
        name: headers
            .get(modern::HEADER_NAME)
            .and_then(|v| v.to_str().ok()),
    };
    let envelope = match modern::classify(&m, &routing) {
        Ok(e) => e,
        Err(r) => {
            gw.metrics.request(
                m.method(),
                warden_telemetry::Outcome::Denied,
                Duration::ZERO,
            );
            return reject(id, &r);
        }
    };
    let method = m.method();
    if modern::removed_in_modern(method) {
        return json(
            404,
            error_response(
                id,
                ErrorCode::MethodNotFound,
                &format!("method not found: {method} is not part of protocol version 2026-07-28"),
                None,
            ),
        );
    }
    let accept_sse = crate::http::accepts(headers, "text/event-stream");
    if method == "subscriptions/listen" && !accept_sse {
        return (
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: subscriptions/listen answers with text/event-stream\n",
        )
            .into_response();
    }
    // The context is bound to the principal's identity; the rights are
    // this request's credential's (passed in `Inbound`).
    let caller = principal.clone();
    let client_addr = crate::call::client_addr();
    let context = gw.modern_session(
        principal,
        client_addr,
        vs,
        Some(envelope.client_capabilities),
    );
    let session = match context {
        Ok(s) => s,
        Err(e @ OpenError::TooManySessions) => {
            return crate::http::over_cap(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(id.unwrap_or("null")),
                &format!("Service Unavailable: {e}"),
            )
        }
        Err(e @ OpenError::TooManyPrincipalSessions(_)) => {
            return crate::http::over_cap(
                StatusCode::TOO_MANY_REQUESTS,
                Some(id.unwrap_or("null")),
                &format!("Too Many Requests: {e}"),
            )
        }
        Err(e) => {
            return (StatusCode::NOT_FOUND, format!("Not Found: {e}\n")).into_response();
        }
    };
    if method == "subscriptions/listen" {
        return match crate::http::stream_slot(&gw, &caller) {
            Ok(slot) => crate::http::holding(listen(&gw, &session, &m).await, slot),
            Err(over) => over.answer(Some(id.unwrap_or("null"))),
        };
    }
    let param_headers: Arc<[(String, String)]> = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with(modern::HEADER_PARAM_PREFIX))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let trace = header(headers, warden_telemetry::TRACEPARENT).map(|tp| {
        (
            tp.to_owned(),
            header(headers, warden_telemetry::TRACESTATE).map(str::to_owned),
        )
    });
    let client_id = id.unwrap_or("null").to_owned();

    // A retry of a call Warden parked (its own `requestState`).
    if let Some(state) = m.param_str("requestState") {
        if state.starts_with("wc1.") {
            return resume(&gw, &parked, &session, &m, &state, client_id, accept_sse).await;
        }
    }

    // The client's id → a Warden-unique one for the pipeline.
    let internal_id = format!("\"wm-{}\"", gw.correlation_id());
    let mut edits = EditSet::new();
    if let Some(raw) = m.id {
        edits.replace(text, raw.raw_value(), internal_id.clone());
    }
    let Some(rewritten) = edits.apply(text) else {
        return json(
            500,
            error_response(id, ErrorCode::InternalError, "internal error", None),
        );
    };
    let (tx, related) = mpsc::unbounded_channel::<Arc<str>>();
    let sink = Sink::Direct(tx);
    let scopes_needed: Arc<Mutex<Option<Vec<String>>>> = Arc::default();
    let work: Work = {
        let gw = gw.clone();
        let session = session.clone();
        let client_addr = crate::call::client_addr();
        let subject_token = crate::call::subject_token();
        let scope_refusal = scopes_needed.clone();
        Box::pin(async move {
            let msg = parse_one(&rewritten).ok()?;
            let trace = trace.as_ref().map(|(tp, ts)| crate::core::TraceContext {
                traceparent: tp,
                tracestate: ts.as_deref(),
            });
            let inbound = crate::core::Inbound {
                trace,
                client_addr,
                param_headers,
                principal: Some(caller),
                subject_token,
            };
            let handled = gw.handle_call(&session, &msg, &sink, inbound).await;
            if let Some(scopes) = handled.insufficient_scope() {
                *lock(&scope_refusal) = Some(scopes.to_vec());
            }
            handled.response
        })
    };
    let log_floor = m
        .param("_meta")
        .and_then(|meta| member(meta, modern::META_LOG_LEVEL))
        .and_then(as_str)
        .and_then(|l| modern::log_level_rank(&l));
    let request = Request {
        log_floor,
        owner: crate::session::owner_key(&session.principal, client_addr),
        max_parked: gw.snapshot().config.gateway.max_parked_per_principal,
        metrics: gw.metrics.clone(),
        principal: session.principal.key(),
        virtual_server: session.virtual_server.clone(),
        session: session.clone(),
        internal_id,
        client_id,
        method: method.to_owned(),
        name: m.param_str("name").map(|n| n.into_owned()),
        arguments: m.param("arguments").map(|a| a.get().to_owned()),
    };
    let response = answer(parked, request, work, related, accept_sse).await;
    // Missing scopes: the step-up challenge (403), as in the session era.
    let is_json = response.headers().get(header::CONTENT_TYPE)
        == Some(&HeaderValue::from_static("application/json"));
    let refused = lock(&scopes_needed).take();
    match refused {
        Some(scopes) if is_json => crate::http::with_scope_challenge(&gw, vs, response, scopes),
        _ => response,
    }
}

fn value_of(raw: Option<&RawValue>) -> serde_json::Value {
    crate::core::json_value(raw.map(RawValue::get))
}

/// What identifies one modern request on its way through.
struct Request {
    /// Log messages below this level (or all, when the request set no
    /// `logLevel`) are not the client's.
    log_floor: Option<u8>,
    /// Whose parked calls this one counts against ([`crate::session::owner_key`]).
    owner: String,
    /// `gateway.max_parked_per_principal` when the request arrived.
    max_parked: usize,
    metrics: warden_telemetry::Metrics,
    principal: String,
    virtual_server: String,
    session: Arc<Session>,
    internal_id: String,
    client_id: String,
    method: String,
    name: Option<String>,
    /// The arguments as sent (compared, as JSON values, on a retry).
    arguments: Option<String>,
}

/// How a request's work ended.
enum Outcome {
    Done(Option<String>),
    /// The upstream asked the client something: the request is parked.
    Asked {
        requests: Vec<Arc<str>>,
        work: Work,
        related: mpsc::UnboundedReceiver<Arc<str>>,
    },
}

/// Where a request's notifications go: log messages only at or above the
/// level the request asked for (none without `logLevel`, as 2026-07-28 says).
struct Notes {
    tx: mpsc::UnboundedSender<Arc<str>>,
    log_floor: Option<u8>,
}

impl Notes {
    /// Sorts one related message, parsed once: a server-to-client request
    /// is handed back (the caller turns it into an input request); a
    /// notification goes to the client if it wants it (log messages only
    /// at or above the request's level).
    fn sort(&self, text: Arc<str>) -> Option<Arc<str>> {
        let wanted = match parse_one(&text) {
            Ok(m) if m.kind == Kind::Request => return Some(text),
            Ok(m) if m.method() == "notifications/message" => {
                let level = m
                    .param_str("level")
                    .and_then(|l| modern::log_level_rank(&l));
                matches!((self.log_floor, level), (Some(f), Some(l)) if l >= f)
            }
            _ => true,
        };
        if wanted {
            let _ = self.tx.send(text);
        }
        None
    }
}

/// Runs the work, passing notifications to `notes`, until it answers or
/// the upstream asks the client something.
async fn drive(
    mut work: Work,
    mut related: mpsc::UnboundedReceiver<Arc<str>>,
    notes: mpsc::UnboundedSender<Arc<str>>,
    log_floor: Option<u8>,
) -> Outcome {
    let notes = Notes {
        tx: notes,
        log_floor,
    };
    loop {
        tokio::select! {
            biased;
            Some(m) = related.recv() => {
                if let Some(first) = notes.sort(m) {
                    let mut requests = vec![first];
                    while let Ok(more) = related.try_recv() {
                        requests.extend(notes.sort(more));
                    }
                    return Outcome::Asked { requests, work, related };
                }
            }
            resp = &mut work => {
                // A request after the answer has no call left to ask for.
                while let Ok(m) = related.try_recv() {
                    let _ = notes.sort(m);
                }
                return Outcome::Done(resp);
            }
        }
    }
}

/// Turns an outcome into the body the client gets (its own id restored).
fn finish(parked: &ParkedCalls, req: Request, outcome: Outcome) -> Option<String> {
    match outcome {
        Outcome::Done(None) => None,
        Outcome::Done(Some(body)) => Some(restore_id(&body, &req.client_id)),
        Outcome::Asked {
            requests,
            work,
            related,
        } => {
            let mut input = serde_json::Map::new();
            let mut asked = Vec::new();
            for r in &requests {
                let Ok(m) = parse_one(r) else { continue };
                let Some(key) = m.id.and_then(|i| as_str(i.raw_value())) else {
                    continue;
                };
                let mut entry = serde_json::json!({"method": m.method()});
                if let Some(p) = m.params {
                    entry["params"] = value_of(Some(p));
                }
                input.insert(key.to_string(), entry);
                asked.push((key.into_owned(), r.clone()));
            }
            info!(target: "audit", event = "input_required.bridged", session = %req.session.id,
                  method = %req.method, requests = asked.len());
            let parking = Parked {
                log_floor: req.log_floor,
                owner: req.owner,
                slot: None,
                principal: req.principal,
                virtual_server: req.virtual_server,
                session: req.session,
                internal_id: req.internal_id,
                method: req.method,
                name: req.name,
                arguments: req.arguments,
                asked,
                work,
                related,
                parked_at: Instant::now(),
            };
            let token = match parked.park(parking, req.max_parked) {
                Ok(token) => token,
                Err(ParkRefusal::Full) => {
                    return Some(error_response(
                        Some(&req.client_id),
                        ErrorCode::UpstreamUnavailable,
                        "too many calls are waiting for input",
                        None,
                    ))
                }
                Err(ParkRefusal::OwnerFull(max)) => {
                    crate::edge::report(
                        &req.metrics,
                        warden_telemetry::EdgeRefusal::MaxParkedPerPrincipal,
                        None,
                    );
                    return Some(error_response(
                        Some(&req.client_id),
                        ErrorCode::Refused,
                        &format!(
                            "too many calls of this principal are waiting for input \
                             (gateway.max_parked_per_principal is {max}): answer or abandon \
                             those first; this call was cancelled"
                        ),
                        None,
                    ));
                }
            };
            let result = serde_json::json!({
                "resultType": "input_required",
                "inputRequests": input,
                "requestState": token,
            });
            Some(warden_protocol::error::result_response(
                &req.client_id,
                &result.to_string(),
            ))
        }
    }
}

fn restore_id(body: &str, client_id: &str) -> String {
    let Ok(m) = parse_one(body) else {
        return body.to_owned();
    };
    let mut edits = EditSet::new();
    if let Some(id) = m.id {
        edits.replace(body, id.raw_value(), client_id.to_owned());
    }
    edits.apply(body).unwrap_or_else(|| body.to_owned())
}

/// Cancels the request upstream when the client goes away first.
struct CancelOnDrop {
    session: Arc<Session>,
    internal_id: String,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            cancel_inflight(&self.session, &self.internal_id);
        }
    }
}

/// Drives the work and answers: JSON when the answer comes first, SSE
/// once a notification precedes it.
async fn answer(
    parked: ParkedCalls,
    req: Request,
    work: Work,
    related: mpsc::UnboundedReceiver<Arc<str>>,
    accept_sse: bool,
) -> Response {
    let (ntx, mut notes) = mpsc::unbounded_channel::<Arc<str>>();
    let mut guard = CancelOnDrop {
        session: req.session.clone(),
        internal_id: req.internal_id.clone(),
        armed: true,
    };
    let p = parked.clone();
    let floor = req.log_floor;
    // Polled here, in the connection's task, while the answer is JSON (no
    // task per request); moved into the SSE pump's task once the answer
    // becomes a stream; finished in a task of its own if this handler is
    // dropped first (the client went away: `guard` cancels upstream, and
    // the call still comes to its outcome and its record).
    let mut task = crate::call::Finishing::new(async move {
        let outcome = drive(work, related, ntx, floor).await;
        finish(&p, req, outcome)
    });
    tokio::select! {
        biased;
        Some(first) = notes.recv(), if accept_sse => {
            // Committed to SSE: the notifications as they come, then the answer.
            let (tx, rx) = mpsc::unbounded_channel::<Result<Bytes, Infallible>>();
            let event = |text: &str| Ok(Bytes::from(sse::encode(None, Some("message"), text)));
            let _ = tx.send(event(&first));
            tokio::spawn(async move {
                // The whole guard moves here (not just its flag): it cancels
                // when this pump ends before the answer.
                let mut guard = guard;
                loop {
                    tokio::select! {
                        biased;
                        _ = tx.closed() => return, // the client left: `guard` cancels
                        Some(n) = notes.recv() => {
                            if tx.send(event(&n)).is_err() {
                                return;
                            }
                        }
                        done = &mut task => {
                            while let Ok(n) = notes.try_recv() {
                                let _ = tx.send(event(&n));
                            }
                            if let Some(body) = done {
                                let _ = tx.send(event(&body));
                            }
                            guard.armed = false;
                            return;
                        }
                    }
                }
            });
            let body = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/event-stream")
                .header(header::CACHE_CONTROL, "no-cache")
                .body(Body::from_stream(body))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        done = &mut task => {
            guard.armed = false;
            match done {
                Some(body) => json(status_of(&body), body),
                None => StatusCode::ACCEPTED.into_response(),
            }
        }
    }
}

/// A retry carrying Warden's `requestState`: the answers go to the
/// upstream, and the parked call goes on.
async fn resume(
    gw: &Arc<Gateway>,
    parked: &ParkedCalls,
    session: &Arc<Session>,
    m: &Message<'_>,
    token: &str,
    client_id: String,
    accept_sse: bool,
) -> Response {
    let refuse = |why: &str| {
        warn!(target: "audit", event = "request_state.refused", session = %session.id, reason = why);
        json(
            400,
            error_response(Some(&client_id), ErrorCode::InvalidParams, why, None),
        )
    };
    let Some(mut p) = parked.take(token) else {
        return refuse("params.requestState is unknown or expired");
    };
    // No longer parked: its slot is free for what comes next.
    drop(p.slot.take());
    let same_call = p.principal == session.principal.key()
        && p.virtual_server == session.virtual_server
        && p.method == m.method()
        && p.name.as_deref() == m.param_str("name").as_deref()
        && crate::core::json_value(p.arguments.as_deref()) == value_of(m.param("arguments"));
    if !same_call {
        // Not the caller's or not the same call: the parked call is
        // cancelled rather than left for a guesser.
        cancel_inflight(&p.session, &p.internal_id);
        return refuse("params.requestState was not issued for this call and caller");
    }
    let responses = m.param("inputResponses");
    let mut still = Vec::new();
    for (key, original) in p.asked {
        let answer = responses.and_then(|r| member(r, &key));
        let Some(answer) = answer else {
            still.push((key, original));
            continue;
        };
        let text = format!(
            r#"{{"jsonrpc":"2.0","id":{},"result":{}}}"#,
            json_string(&key),
            answer.get()
        );
        match parse_one(&text) {
            Ok(reply) if reply.kind == Kind::Result => {
                gw.handle(
                    &p.session,
                    &reply,
                    &Sink::Broadcast(dead_end()),
                    Default::default(),
                )
                .await;
            }
            _ => {
                cancel_inflight(&p.session, &p.internal_id);
                return refuse("params.inputResponses holds an answer that is not a JSON object");
            }
        }
    }
    let req = Request {
        log_floor: p.log_floor,
        owner: p.owner,
        max_parked: gw.snapshot().config.gateway.max_parked_per_principal,
        metrics: gw.metrics.clone(),
        principal: p.principal,
        virtual_server: p.virtual_server,
        session: p.session,
        internal_id: p.internal_id,
        client_id,
        method: p.method,
        name: p.name,
        arguments: p.arguments,
    };
    if !still.is_empty() {
        // Asked again for what is still missing.
        let requests = still.into_iter().map(|(_, r)| r).collect();
        let body = finish(
            parked,
            req,
            Outcome::Asked {
                requests,
                work: p.work,
                related: p.related,
            },
        );
        return body.map_or_else(
            || StatusCode::ACCEPTED.into_response(),
            |b| json(status_of(&b), b),
        );
    }
    answer(parked.clone(), req, p.work, p.related, accept_sse).await
}

/// A listen stream's resource subscriptions, released when it closes.
struct Subscriptions {
    gw: Arc<Gateway>,
    session: Arc<Session>,
    uris: Vec<String>,
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        if self.uris.is_empty() {
            return;
        }
        let (gw, session, uris) = (
            self.gw.clone(),
            self.session.clone(),
            std::mem::take(&mut self.uris),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for uri in uris {
                    subscribe(&gw, &session, &uri, false).await;
                }
            });
        }
    }
}

/// `resources/subscribe` (or `unsubscribe`) for a listen stream, through
/// the pipeline; counted per context so that two streams on one URI share
/// the upstream subscription. True when it is held.
async fn subscribe(gw: &Arc<Gateway>, session: &Arc<Session>, uri: &str, on: bool) -> bool {
    {
        let mut refs = lock(&session.listen_refs);
        let n = refs.entry(uri.to_owned()).or_insert(0);
        if on {
            *n += 1;
            if *n > 1 {
                return true;
            }
        } else {
            *n = n.saturating_sub(1);
            if *n > 0 {
                return true;
            }
            refs.remove(uri);
        }
    }
    let method = if on {
        "resources/subscribe"
    } else {
        "resources/unsubscribe"
    };
    let text = serde_json::json!({
        "jsonrpc": "2.0",
        "id": format!("wl-{}", gw.correlation_id()),
        "method": method,
        "params": {"uri": uri},
    })
    .to_string();
    let Ok(msg) = parse_one(&text) else {
        return false;
    };
    let reply = gw
        .handle(
            session,
            &msg,
            &Sink::Broadcast(dead_end()),
            Default::default(),
        )
        .await;
    let held = reply
        .as_deref()
        .and_then(|r| parse_one(r).ok())
        .is_some_and(|r| r.kind == Kind::Result);
    if on && !held {
        lock(&session.listen_refs).remove(uri);
    }
    held
}

fn dead_end() -> tokio::sync::broadcast::Sender<Arc<str>> {
    tokio::sync::broadcast::channel(1).0
}

/// `subscriptions/listen`: an SSE stream that acknowledges what Warden
/// honours, then carries the context's list-changed and resource-updated
/// notifications that match the filter. Ends when the client closes it.
async fn listen(gw: &Arc<Gateway>, session: &Arc<Session>, m: &Message<'_>) -> Response {
    let filter = m.param("notifications");
    let flag = |k: &str| {
        filter
            .and_then(|f| member(f, k))
            .is_some_and(|v| v.get() == "true")
    };
    let tools = flag("toolsListChanged");
    let prompts = flag("promptsListChanged");
    let resources = flag("resourcesListChanged");
    let uris: Vec<String> = filter
        .and_then(|f| member(f, "resourceSubscriptions"))
        .and_then(warden_protocol::message::elements)
        .map(|e| {
            e.into_iter()
                .filter_map(as_str)
                .map(|s| s.into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut honoured = serde_json::Map::new();
    for (k, on) in [
        ("toolsListChanged", tools),
        ("promptsListChanged", prompts),
        ("resourcesListChanged", resources),
    ] {
        if on {
            honoured.insert(k.into(), serde_json::Value::Bool(true));
        }
    }
    // Resource subscriptions go upstream through the pipeline (stage 5
    // decides `subscribe`); what is refused is left out of the
    // acknowledgement, as the spec says for what a server will not honour.
    let mut held = Vec::new();
    for uri in &uris {
        if subscribe(gw, session, uri, true).await {
            held.push(uri.clone());
        }
    }
    let uris = held;
    let subscriptions = Subscriptions {
        gw: gw.clone(),
        session: session.clone(),
        uris: uris.clone(),
    };
    if !uris.is_empty() {
        honoured.insert("resourceSubscriptions".into(), serde_json::json!(uris));
    }
    let subscription_id = m.id.map(|i| i.raw().to_owned()).unwrap_or_default();
    let stamp_id = value_of(m.id.map(|i| i.raw_value()));
    let ack = serde_json::json!({
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {
            "notifications": honoured,
            "_meta": {modern::META_SUBSCRIPTION_ID: stamp_id.clone()},
        },
    })
    .to_string();
    let Sink::Broadcast(tx) = session.standalone() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let wanted = move |text: &str| -> bool {
        let Ok(n) = parse_one(text) else { return false };
        match n.method() {
            "notifications/tools/list_changed" => tools,
            "notifications/prompts/list_changed" => prompts,
            "notifications/resources/list_changed" => resources,
            "notifications/resources/updated" => n
                .param_str("uri")
                .is_some_and(|u| uris.iter().any(|w| *w == u)),
            _ => false,
        }
    };
    let lagged = [
        (tools, "notifications/tools/list_changed"),
        (prompts, "notifications/prompts/list_changed"),
        (resources, "notifications/resources/list_changed"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, m)| stamped(&format!(r#"{{"jsonrpc":"2.0","method":"{m}"}}"#), &stamp_id))
    .collect::<Vec<_>>();
    debug!(session = %session.id, subscription = %subscription_id, "subscriptions/listen opened");
    let live = tokio_stream::wrappers::BroadcastStream::new(tx.subscribe()).flat_map(move |item| {
        // Held by the stream: dropped (and the subscriptions released)
        // when the client closes it.
        let _held = &subscriptions;
        let out: Vec<String> = match item {
            Ok(text) if wanted(&text) => vec![stamped(&text, &stamp_id)],
            Ok(_) => Vec::new(),
            // Fell behind: whatever was missed, the lists may have changed.
            Err(_) => lagged.clone(),
        };
        futures::stream::iter(out)
    });
    let events = futures::stream::iter([ack])
        .chain(live)
        .map(|t| Ok::<_, Infallible>(Bytes::from(sse::encode(None, Some("message"), &t))));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(crate::http::with_keepalive(events)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `notification` with `params._meta` naming the listen stream it is
/// delivered on: clients route a stream's frames by that id (the
/// acknowledgement carries it too), and drop frames without it.
fn stamped(notification: &str, subscription_id: &serde_json::Value) -> String {
    let Ok(serde_json::Value::Object(mut n)) = serde_json::from_str(notification) else {
        // Warden's own notifications are objects; anything else goes as it is.
        return notification.to_owned();
    };
    let params = n
        .entry("params")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if let serde_json::Value::Object(params) = params {
        let meta = params
            .entry("_meta")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let serde_json::Value::Object(meta) = meta {
            meta.insert(
                modern::META_SUBSCRIPTION_ID.to_owned(),
                subscription_id.clone(),
            );
        }
    }
    serde_json::Value::Object(n).to_string()
}

use warden_protocol::message;
