//! Client-facing HTTP: Streamable HTTP on `/mcp` and `/mcp/<virtual-server>`,
//! and the legacy HTTP+SSE transport (2024-11-05) on `/sse` + `/messages`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use futures::StreamExt;
use tokio::sync::mpsc;
use tracing::{debug, warn};
use warden_identity::Principal;
use warden_protocol::error::error_response;
use warden_protocol::message::{self, parse_one, Incoming, Kind};
use warden_protocol::{sse, ErrorCode, ProtocolVersion, WireError};

use crate::core::Inbound;
use crate::core::{Gateway, OpenError};
use crate::session::{lock, new_session_id, owner_key, Channel, Session, Slot};
use crate::stream::{parse_event_id, EventStream, Item, Sink};

mod approvals_api;
mod credentials_api;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const LAST_EVENT_ID: &str = "last-event-id";
const KEEPALIVE: Duration = Duration::from_secs(20);

/// Shared state of the HTTP server.
#[derive(Clone)]
pub struct HttpState {
    pub gateway: Arc<Gateway>,
    pub bound: SocketAddr,
    legacy: Arc<Mutex<HashMap<String, LegacyConn>>>,
    /// 2026-07-28 calls parked while their client answers input requests.
    parked: crate::modern_http::ParkedCalls,
}

struct LegacyConn {
    tx: mpsc::UnboundedSender<Arc<str>>,
    virtual_server: String,
    principal: Principal,
}

/// The router for every client-facing HTTP endpoint.
pub fn router(gateway: Arc<Gateway>, bound: SocketAddr) -> Router {
    let legacy_sse = gateway.snapshot().config.listen.legacy_sse;
    let state = HttpState {
        gateway,
        bound,
        legacy: Arc::new(Mutex::new(HashMap::new())),
        parked: Default::default(),
    };
    let mut r = Router::new()
        .route(
            "/mcp",
            post(post_default).get(get_default).delete(delete_default),
        )
        .route("/mcp/{vs}", post(post_vs).get(get_vs).delete(delete_vs))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata_default),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(metadata_default),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp/{vs}",
            get(metadata_vs),
        )
        .route("/.well-known/jwks.json", get(dev_jwks))
        .route(warden_credentials::JWKS_PATH, get(upstream_jwks))
        .route("/approvals", get(approvals_api::list))
        .route("/approvals/{id}", get(approvals_api::show))
        .route("/approvals/{id}/approve", post(approvals_api::approve))
        .route("/approvals/{id}/deny", post(approvals_api::deny))
        .route(
            credentials_api::CALLBACK_PATH,
            get(credentials_api::callback).post(credentials_api::confirm),
        )
        .route("/credentials/{server}/login", post(credentials_api::login))
        .route("/credentials/{server}", delete(credentials_api::logout));
    let telemetry = state.gateway.snapshot().config.telemetry.clone();
    if telemetry.metrics.on_mcp_listener(bound) {
        r = r
            .route(&telemetry.metrics.path, get(metrics))
            .route(LIMITS_PATH, get(limits_status));
    } else if telemetry.metrics.enabled && telemetry.metrics.listen.is_none() {
        tracing::warn!(
            addr = %bound,
            "metrics are not served on a listener other hosts can reach without a credential: \
             set telemetry.metrics.listen (an admin listener, e.g. 127.0.0.1:9464) \
             or telemetry.metrics.token"
        );
    }
    if legacy_sse {
        r = r
            .route("/sse", get(legacy_get_default))
            .route("/messages", post(legacy_post_default))
            .route("/mcp/{vs}/sse", get(legacy_get_vs))
            .route("/mcp/{vs}/messages", post(legacy_post_vs));
    }
    // The body limit is enforced by reading with a cap in `read_body`, so
    // that an oversized body gets a JSON-RPC error rather than a bare 413.
    r.layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(with_client_addr))
        .with_state(state)
}

/// Makes the peer address (axum's `ConnectInfo`, or the TLS accept loop's)
/// the current request's [`crate::call::CLIENT_ADDR`]: the audit record's
/// `client_addr`, policy's `context.client_address`, and the source that
/// authentication failures are rate-limited by.
async fn with_client_addr(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let addr = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(crate::call::client_addr);
    // Only a `Bearer` token can be a subject token: a DPoP-bound one is
    // useless without its key, which Warden does not hold.
    let subject = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| warden_credentials::SubjectToken(token.trim().into()))
        });
    let run = crate::call::SUBJECT_TOKEN.scope(subject, next.run(req));
    crate::call::CLIENT_ADDR.scope(addr, run).await
}

/// The admin listener's router: only the metrics (`telemetry.metrics.listen`).
pub fn admin_router(gateway: Arc<Gateway>, bound: SocketAddr) -> Router {
    let path = gateway.snapshot().config.telemetry.metrics.path.clone();
    let state = HttpState {
        gateway,
        bound,
        legacy: Arc::new(Mutex::new(HashMap::new())),
        parked: Default::default(),
    };
    Router::new()
        .route(&path, get(metrics))
        .route(LIMITS_PATH, get(limits_status))
        .with_state(state)
}

/// Prometheus scrape: request, stage, policy, guard, auth and upstream
/// metrics, and the audit trail's own (queue, lag, sink errors). Counts and
/// durations only: no names of principals, no arguments.
async fn metrics(State(s): State<HttpState>, headers: HeaderMap) -> Response {
    let gw = &s.gateway;
    if let Some(refused) = scrape_refused(&gw.snapshot(), &headers) {
        return refused;
    }
    gw.metrics
        .sessions_active()
        .set(i64::try_from(gw.sessions.len()).unwrap_or(i64::MAX));
    gw.metrics
        .upstreams_active()
        .set(i64::try_from(gw.upstream_count()).unwrap_or(i64::MAX));
    let mut extra = gw
        .audit()
        .map(|a| warden_telemetry::audit_metrics(&a.metrics_snapshot()))
        .unwrap_or_default();
    extra.extend(limits_metrics(&gw.snapshot().limiter));
    if let Some(c) = gw.snapshot().limiter.backend_counters() {
        use warden_telemetry::ExtraMetric;
        const UNAVAILABLE: &str =
            "Limited calls Redis did not decide in time, by what `fail` did with them";
        extra.extend([
            ExtraMetric::counter("warden_limits_backend_unavailable", UNAVAILABLE, c.refused)
                .with_label("fail", "closed"),
            ExtraMetric::counter(
                "warden_limits_backend_unavailable",
                UNAVAILABLE,
                c.admitted_unlimited,
            )
            .with_label("fail", "open"),
            ExtraMetric::counter(
                "warden_limits_backend_releases_lost",
                "Concurrency slots and refunds that never reached Redis (slots expire with slot_ttl)",
                c.releases_lost,
            ),
        ]);
    }
    let body = gw.metrics.render(&extra);
    (
        [(header::CONTENT_TYPE, warden_telemetry::CONTENT_TYPE)],
        body,
    )
        .into_response()
}

/// The limits' state as metrics, without naming principals: per budget
/// rule, what its keys spent this period and how many are exhausted; how
/// many breakers are open.
fn limits_metrics(limiter: &warden_limits::Limiter) -> Vec<warden_telemetry::ExtraMetric> {
    use warden_telemetry::ExtraMetric;
    let mut per_rule: std::collections::BTreeMap<(String, String), (f64, u64)> = Default::default();
    for rule in &limiter.settings().budgets {
        per_rule.insert((rule.id.clone(), rule.unit.clone()), (0.0, 0));
    }
    for b in limiter.budget_status() {
        let e = per_rule.entry((b.rule, b.unit)).or_default();
        e.0 += b.spent;
        e.1 += u64::from(b.spent >= b.limit);
    }
    let mut out = Vec::new();
    for ((rule, unit), (spent, exhausted)) in per_rule {
        out.push(
            ExtraMetric::gauge(
                "warden_limits_budget_spent",
                "What a budget rule's keys spent in the current period, summed",
                spent,
            )
            .with_label("rule", rule.clone())
            .with_label("unit", unit),
        );
        out.push(
            ExtraMetric::gauge(
                "warden_limits_budget_exhausted_keys",
                "Keys (principals, tenants…) whose budget is spent for this period",
                exhausted as f64,
            )
            .with_label("rule", rule),
        );
    }
    let open = limiter
        .breakers()
        .iter()
        .filter(|(_, s)| s.name() == "open")
        .count();
    out.push(ExtraMetric::gauge(
        "warden_limits_breakers_open",
        "Circuit breakers (per upstream and per tool) now open",
        open as f64,
    ));
    out
}

/// Where the limits' live state is served, beside the metrics and under
/// the same access rules (`warden limits status` reads it).
pub const LIMITS_PATH: &str = "/limits";

/// The limits' live state as JSON: what each budget has spent in its
/// current period (per principal, tenant… as the rule keys it) and every
/// breaker that is not closed. Unlike `/metrics` it names principals: it
/// is for operators, behind the same loopback/admin-listener/token rules.
async fn limits_status(State(s): State<HttpState>, headers: HeaderMap) -> Response {
    let snap = s.gateway.snapshot();
    if let Some(refused) = scrape_refused(&snap, &headers) {
        return refused;
    }
    let now = std::time::Instant::now();
    let budgets: Vec<serde_json::Value> = snap
        .limiter
        .budget_status()
        .into_iter()
        .map(|b| {
            serde_json::json!({
                "rule": b.rule, "key": b.key, "unit": b.unit, "limit": b.limit,
                "spent": b.spent, "remaining": (b.limit - b.spent).max(0.0),
            })
        })
        .collect();
    let breakers: Vec<serde_json::Value> = snap
        .limiter
        .breakers()
        .into_iter()
        .map(|(scope, state)| {
            let mut v = serde_json::json!({ "scope": scope, "state": state.name() });
            if let warden_limits::BreakerState::Open { until } = state {
                v["retryAfter"] = until.saturating_duration_since(now).as_secs().into();
            }
            v
        })
        .collect();
    axum::Json(serde_json::json!({ "budgets": budgets, "breakers": breakers })).into_response()
}

/// The 401 for an operator endpoint (`/metrics`, `/limits`) asked
/// without the configured `telemetry.metrics.token`; `None` when it may be
/// served.
fn scrape_refused(snap: &crate::Snapshot, headers: &HeaderMap) -> Option<Response> {
    let token = snap.config.telemetry.metrics.token.as_ref()?;
    if presents_token(headers, token.expose()) {
        return None;
    }
    Some(
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"warden-metrics\"")],
            "this endpoint needs Authorization: Bearer <telemetry.metrics.token>\n",
        )
            .into_response(),
    )
}

/// Whether `headers` carry `Authorization: Bearer <token>`. The digests
/// are compared, not the strings, so the time taken tells nothing about
/// how much of the token a guess got right.
fn presents_token(headers: &HeaderMap, token: &str) -> bool {
    use sha2::{Digest, Sha256};
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    Sha256::digest(given.trim().as_bytes()) == Sha256::digest(token.as_bytes())
}

tokio::task_local! {
    /// The verified client certificate (DER) of the TLS connection a
    /// request arrived on; set by [`crate::edge::serve`] around each
    /// connection.
    pub(crate) static CLIENT_CERT: Option<Arc<[u8]>>;
}

// Thin handlers: one pair per path shape.
async fn post_default(State(s): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    post_mcp(s, String::new(), headers, body).await
}
async fn post_vs(
    State(s): State<HttpState>,
    Path(vs): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    post_mcp(s, vs, headers, body).await
}
async fn get_default(State(s): State<HttpState>, headers: HeaderMap) -> Response {
    get_mcp(s, String::new(), headers).await
}
async fn get_vs(
    State(s): State<HttpState>,
    Path(vs): Path<String>,
    headers: HeaderMap,
) -> Response {
    get_mcp(s, vs, headers).await
}
async fn delete_default(State(s): State<HttpState>, headers: HeaderMap) -> Response {
    delete_mcp(s, String::new(), headers).await
}
async fn delete_vs(
    State(s): State<HttpState>,
    Path(vs): Path<String>,
    headers: HeaderMap,
) -> Response {
    delete_mcp(s, vs, headers).await
}
async fn legacy_get_default(State(s): State<HttpState>, headers: HeaderMap) -> Response {
    legacy_get(s, String::new(), headers).await
}
async fn legacy_get_vs(
    State(s): State<HttpState>,
    Path(vs): Path<String>,
    headers: HeaderMap,
) -> Response {
    legacy_get(s, vs, headers).await
}
async fn legacy_post_default(
    State(s): State<HttpState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    legacy_post(s, q, headers, body).await
}
async fn legacy_post_vs(
    State(s): State<HttpState>,
    Path(_vs): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    legacy_post(s, q, headers, body).await
}

/// A refusal by a transport check: status and reason, rendered as text.
pub struct Refusal {
    status: StatusCode,
    reason: &'static str,
}

impl Refusal {
    const fn new(status: StatusCode, reason: &'static str) -> Self {
        Refusal { status, reason }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        http_error(self.status, self.reason)
    }
}

/// A plain-text HTTP error with its reason.
fn http_error(status: StatusCode, reason: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
        .into_response()
}

/// A refusal by a cap: `status` (`429` for a per-principal cap, `503` for
/// a global one) with `Retry-After`; the reason as a JSON-RPC error when
/// the request has an id, else as text.
pub(crate) fn over_cap(status: StatusCode, id: Option<&str>, reason: &str) -> Response {
    let mut r = match id {
        Some(id) => json_response(
            status,
            error_response(Some(id), ErrorCode::Refused, reason, None),
        ),
        None => http_error(status, reason),
    };
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(crate::edge::CAP_RETRY_AFTER_SECS),
    );
    r
}

/// A refusal by a per-principal cap, answered by [`OverCap::answer`].
pub(crate) struct OverCap {
    reason: String,
}

impl OverCap {
    /// `429` with `Retry-After` (see [`over_cap`]).
    pub(crate) fn answer(&self, id: Option<&str>) -> Response {
        over_cap(StatusCode::TOO_MANY_REQUESTS, id, &self.reason)
    }
}

/// A slot for one more long-lived stream of this caller
/// (`gateway.max_streams_per_principal`).
pub(crate) fn stream_slot(gw: &Gateway, principal: &Principal) -> Result<Slot, OverCap> {
    let max = gw.snapshot().config.gateway.max_streams_per_principal;
    let client = crate::call::client_addr();
    gw.streams
        .take(&owner_key(principal, client), max)
        .ok_or_else(|| {
            crate::edge::report(
                &gw.metrics,
                warden_telemetry::EdgeRefusal::MaxStreamsPerPrincipal,
                client.map(|a| a.ip()),
            );
            OverCap {
                reason: format!(
                    "Too Many Requests: this principal has {max} streams open \
                     (gateway.max_streams_per_principal): close one, or retry later"
                ),
            }
        })
}

/// `response`, whose body holds `held` (a [`Slot`]) until it ends.
pub(crate) fn holding<G: Send + Unpin + 'static>(response: Response, held: G) -> Response {
    response.map(|body| Body::new(crate::edge::Holding { body, _held: held }))
}

/// A JSON-RPC error as an HTTP response.
fn rpc_error(status: StatusCode, code: ErrorCode, reason: &str) -> Response {
    json_response(status, error_response(None, code, reason, None))
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn wire_error(e: &WireError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    rpc_error(status, e.code(), &e.to_string())
}

/// Transport stage checks shared by every endpoint: DNS-rebinding (`Host`)
/// and cross-origin (`Origin`) protection.
fn check_origin_and_host(s: &HttpState, headers: &HeaderMap) -> Result<(), Refusal> {
    let snap = s.gateway.snapshot();
    let listen = &snap.config.listen;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let loopback = s.bound.ip().is_loopback();
    match (&listen.allowed_hosts, host) {
        (Some(allowed), Some(h)) => {
            let bare = strip_port(h);
            if !allowed
                .iter()
                .any(|a| a.eq_ignore_ascii_case(h) || a.eq_ignore_ascii_case(bare))
            {
                return Err(Refusal::new(
                    StatusCode::FORBIDDEN,
                    "Forbidden: Host header not allowed",
                ));
            }
        }
        (None, Some(h)) if loopback && !is_loopback_host(strip_port(h)) => {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "Forbidden: Host header not allowed (DNS rebinding protection)",
            ));
        }
        (_, None) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "Bad Request: Host header required",
            ))
        }
        _ => {}
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "Forbidden: invalid Origin",
            ));
        };
        let allowed = listen.allowed_origins.iter().any(|o| o == origin)
            || origin_host(origin).is_some_and(|h| {
                (loopback && is_loopback_host(h))
                    || host.is_some_and(|hh| strip_port(hh).eq_ignore_ascii_case(h) && !loopback)
            });
        if !allowed {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "Forbidden: Origin not allowed",
            ));
        }
    }
    Ok(())
}

fn strip_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => h,
    }
}

fn is_loopback_host(h: &str) -> bool {
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn origin_host(origin: &str) -> Option<&str> {
    let rest = origin.split_once("://")?.1;
    Some(strip_port(rest.split('/').next()?))
}

/// Stage 2, Authenticate. Every request resolves to a principal: through
/// the OAuth resource server when `identity:` is configured, else the one
/// anonymous principal. `mcp_path` is the MCP resource the request is for
/// (`/mcp` or `/mcp/<virtual-server>`): tokens must be issued for it.
async fn authenticate(
    s: &HttpState,
    method: &str,
    mcp_path: &str,
    headers: &HeaderMap,
) -> Result<Principal, Response> {
    let Some(auth) = s.gateway.authenticator() else {
        return Ok(Principal::anonymous());
    };
    let joined = |name: header::HeaderName| -> Option<String> {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    let authorization = joined(header::AUTHORIZATION);
    let dpop = joined(header::HeaderName::from_static("dpop"));
    let api_key = joined(header::HeaderName::from_static("x-api-key"));
    let client_cert = CLIENT_CERT.try_with(Clone::clone).ok().flatten();
    let url = auth.resource_url(mcp_path);
    let facts = warden_identity::RequestFacts {
        method,
        url: &url,
        authorization: authorization.as_deref(),
        dpop: dpop.as_deref(),
        client_cert_der: client_cert.as_deref(),
        api_key: api_key.as_deref(),
    };
    match auth.authenticate_detailed(&facts).await {
        Ok(p) => Ok(p),
        Err(f) => {
            let reason = f.reason();
            warn!(target: "audit", event = "auth.failed", reason = reason, path = %mcp_path,
                  issuer = f.issuer.as_deref().unwrap_or(""), kid = f.kid.as_deref().unwrap_or(""));
            s.gateway.metrics.auth_failure(reason);
            // What the token claimed, when it parsed: never the token.
            let token =
                (f.issuer.is_some() || f.jti_hash.is_some() || f.kid.is_some()).then(|| {
                    warden_audit::TokenFacts {
                        kind: Some("jwt".into()),
                        issuer: f.issuer.clone(),
                        jti_hash: f.jti_hash.clone(),
                        key_id: f.kid.clone(),
                        ..Default::default()
                    }
                });
            s.gateway.record(warden_audit::Event {
                client_addr: crate::call::client_addr().map(|a| a.ip().to_string()),
                reason_code: Some(reason.to_owned()),
                principal: f
                    .subject
                    .clone()
                    .map(|subject| warden_audit::PrincipalFacts {
                        subject,
                        ..Default::default()
                    }),
                token,
                ..warden_audit::Event::new(warden_audit::EventKind::AuthFailure)
            });
            let (status, challenge) = auth.challenge(&f.error, mcp_path);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED);
            let mut r = http_error(status, status.canonical_reason().unwrap_or("Unauthorized"));
            for (k, v) in challenge {
                if let (Ok(k), Ok(v)) = (
                    header::HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    r.headers_mut().append(k, v);
                }
            }
            Err(r)
        }
    }
}

/// The MCP resource path of a virtual server.
fn mcp_path(vs: &str) -> String {
    if vs.is_empty() {
        "/mcp".to_owned()
    } else {
        format!("/mcp/{vs}")
    }
}

async fn metadata_default(State(s): State<HttpState>) -> Response {
    metadata(&s, "")
}

async fn metadata_vs(State(s): State<HttpState>, Path(vs): Path<String>) -> Response {
    metadata(&s, &vs)
}

/// RFC 9728 protected-resource metadata.
fn metadata(s: &HttpState, vs: &str) -> Response {
    match s.gateway.authenticator() {
        Some(auth) if s.gateway.snapshot().route(vs).is_some() => json_response(
            StatusCode::OK,
            auth.resource_metadata(&mcp_path(vs)).to_string(),
        ),
        _ => http_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// The development issuer's JWKS, when it is enabled.
async fn dev_jwks(State(s): State<HttpState>) -> Response {
    match s
        .gateway
        .authenticator()
        .as_ref()
        .and_then(|a| a.dev_issuer().map(|d| d.jwks()))
    {
        Some(jwks) => json_response(StatusCode::OK, jwks.to_string()),
        None => http_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// The keys of the tokens Warden mints for upstreams (`credentials:`).
/// Cacheable for a minute: a verifier that meets a new key's `kid`
/// fetches again.
async fn upstream_jwks(State(s): State<HttpState>) -> Response {
    match s.gateway.snapshot().minter.as_ref().map(|m| m.jwks()) {
        Some(jwks) => {
            let mut r = json_response(StatusCode::OK, jwks.to_string());
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            r
        }
        None => http_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// Reads a body up to the configured limit. A body that arrives too
/// slowly (`listen.body_timeout`, `listen.body_min_rate`) is cut: `408`,
/// a JSON-RPC error, and the connection closed.
async fn read_body(body: Body, limit: usize) -> Result<String, Response> {
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) if crate::edge::is_too_slow(&e) => {
            let mut r = rpc_error(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::InvalidRequest,
                "request timeout: the body arrived too slowly \
                 (listen.body_timeout, listen.body_min_rate)",
            );
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Err(r);
        }
        Err(_) => {
            return Err(wire_error(&WireError::TooLarge {
                size: limit + 1,
                limit,
            }))
        }
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        rpc_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::ParseError,
            "parse error: body is not UTF-8",
        )
    })
}

pub(crate) fn accepts(headers: &HeaderMap, what: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|p| {
                let p = p.split(';').next().unwrap_or("").trim();
                p == what || p == "*/*"
            })
        })
}

fn is_json_content(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// The session named by the request, checked against the caller.
fn session_of(
    s: &HttpState,
    headers: &HeaderMap,
    virtual_server: &str,
    principal: &Principal,
) -> Result<Arc<Session>, Refusal> {
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "Bad Request: Mcp-Session-Id header is required",
        ));
    };
    match s.gateway.sessions.get(id) {
        Some(sess)
            if sess.channel == Channel::StreamableHttp
                && sess.virtual_server == virtual_server
                && sess.principal.key() == principal.key() =>
        {
            Ok(sess)
        }
        Some(sess) if sess.principal.key() != principal.key() => {
            warn!(target: "audit", event = "session.hijack_refused", session_principal = %sess.principal.subject(), caller = %principal.subject());
            Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "Not Found: unknown or ended session",
            ))
        }
        _ => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "Not Found: unknown or ended session",
        )),
    }
}

/// The checks a POST passes before its body is read: Origin and Host, the
/// virtual server, the credential, the media types.
async fn admit_post(s: &HttpState, vs: &str, headers: &HeaderMap) -> Result<Principal, Response> {
    check_origin_and_host(s, headers).map_err(IntoResponse::into_response)?;
    if s.gateway.snapshot().route(vs).is_none() {
        return Err(http_error(
            StatusCode::NOT_FOUND,
            "Not Found: unknown virtual server",
        ));
    }
    let principal = authenticate(s, "POST", &mcp_path(vs), headers).await?;
    if !is_json_content(headers) {
        return Err(http_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: Content-Type must be application/json",
        ));
    }
    if !accepts(headers, "application/json") && !accepts(headers, "text/event-stream") {
        return Err(http_error(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Accept must include application/json and text/event-stream",
        ));
    }
    Ok(principal)
}

/// An answer given before the request's body was read (a 401, a 415…).
/// The body is drained first, bounded in size and time, so that a
/// keep-alive client's next request on the connection finds it in a clean
/// state; a body that cannot be drained closes the connection, saying so
/// (`Connection: close`) instead of dropping it under the client.
async fn answer_unread(body: Body, limit: usize, mut response: Response) -> Response {
    let drained = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        axum::body::to_bytes(body, limit),
    )
    .await;
    if !matches!(drained, Ok(Ok(_))) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// `MCP-Protocol-Version` must name a version Warden speaks (400 otherwise,
/// as the spec says). It need not equal the negotiated one: the spec only
/// refuses invalid or unsupported versions, and clients in the field send
/// older ones on later requests.
fn check_version_header(headers: &HeaderMap, session: &Session) -> Result<(), Refusal> {
    match headers.get(VERSION_HEADER).map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(v)) => match ProtocolVersion::parse(v) {
            Some(pv) if pv.is_session_era() == session.version.is_session_era() => Ok(()),
            Some(_) => Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "Bad Request: MCP-Protocol-Version belongs to another protocol era than this session",
            )),
            None => Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "Bad Request: unsupported MCP-Protocol-Version",
            )),
        },
        Some(Err(_)) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "Bad Request: invalid MCP-Protocol-Version",
        )),
    }
}

async fn post_mcp(s: HttpState, vs: String, headers: HeaderMap, body: Body) -> Response {
    let limits = s.gateway.snapshot().limits;
    let principal = match admit_post(&s, &vs, &headers).await {
        Ok(p) => p,
        Err(r) => return answer_unread(body, limits.max_bytes, r).await,
    };
    let text = match read_body(body, limits.max_bytes).await {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    if let Err(e) = warden_protocol::strict::validate(text.as_bytes(), &limits) {
        return wire_error(&e);
    }
    let has_session = headers.contains_key(SESSION_HEADER);
    // 2026-07-28: a self-contained request (the era is in the
    // MCP-Protocol-Version header or in params._meta). A session-era
    // request with its session id is not parsed twice.
    let maybe_modern = !has_session || crate::modern_http::is_modern_header(&headers);
    // The branches below are boxed: each holds a whole pipeline's future,
    // and this future is moved into a box by every layer of the router
    // (a copy of its full size per layer and request) while it holds
    // them inline.
    if maybe_modern {
        let modern = Box::pin(crate::modern_http::post_if_modern(
            s.gateway.clone(),
            s.parked.clone(),
            &vs,
            &principal,
            &headers,
            &text,
        ))
        .await;
        if let Some(response) = modern {
            return response;
        }
    }
    // Batches: only a session negotiated at 2025-03-26 may send them.
    let allow_batch = has_session
        && s.gateway
            .sessions
            .get(
                headers
                    .get(SESSION_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            )
            .is_some_and(|sess| sess.version.allows_batches());
    let incoming = match message::parse_validated(&text, allow_batch) {
        Ok(i) => i,
        Err(e) => return wire_error(&e),
    };
    match incoming {
        Incoming::Single(m) if m.kind == Kind::Request && m.method() == "initialize" => {
            if has_session {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidRequest,
                    "initialize must not carry an Mcp-Session-Id",
                );
            }
            let session_id = new_session_id();
            // The standalone stream exists from the start so that messages
            // sent before the client opens its GET stream are kept.
            let replay = s.gateway.snapshot().config.gateway.replay_buffer_events;
            let standalone = Sink::Stream(EventStream::new(format!("{session_id}g"), replay));
            let initialized = Box::pin(s.gateway.initialize(
                principal,
                crate::call::client_addr(),
                &vs,
                Channel::StreamableHttp,
                &m,
                standalone,
                session_id,
            ))
            .await;
            match initialized {
                Ok((session, body)) => {
                    let mut r = json_response(StatusCode::OK, body);
                    if let Ok(v) = HeaderValue::from_str(&session.id) {
                        r.headers_mut().insert(SESSION_HEADER, v);
                    }
                    r
                }
                Err(e @ OpenError::TooManySessions) => over_cap(
                    StatusCode::SERVICE_UNAVAILABLE,
                    m.id.map(|i| i.raw()),
                    &format!("Service Unavailable: {e}"),
                ),
                Err(e @ OpenError::TooManyPrincipalSessions(_)) => over_cap(
                    StatusCode::TOO_MANY_REQUESTS,
                    m.id.map(|i| i.raw()),
                    &format!("Too Many Requests: {e}"),
                ),
                Err(OpenError::UnknownVirtualServer) => {
                    http_error(StatusCode::NOT_FOUND, "Not Found: unknown virtual server")
                }
                Err(e) => json_response(
                    StatusCode::BAD_REQUEST,
                    error_response(
                        m.id.map(|i| i.raw()),
                        ErrorCode::InvalidParams,
                        &e.to_string(),
                        None,
                    ),
                ),
            }
        }
        incoming => {
            if !has_session {
                return http_error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: Mcp-Session-Id header is required (send initialize first)",
                );
            }
            let session = match session_of(&s, &headers, &vs, &principal) {
                Ok(sess) => sess,
                Err(r) => return r.into_response(),
            };
            if let Err(r) = check_version_header(&headers, &session) {
                return r.into_response();
            }
            let accept_sse = accepts(&headers, "text/event-stream");
            match incoming {
                Incoming::Single(m) => {
                    if m.kind != Kind::Request {
                        let standalone = session.standalone();
                        Box::pin(
                            s.gateway
                                .handle(&session, &m, &standalone, inbound(&principal)),
                        )
                        .await;
                        return StatusCode::ACCEPTED.into_response();
                    }
                    drop(m);
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let trace = header(warden_telemetry::TRACEPARENT)
                        .map(|tp| (tp, header(warden_telemetry::TRACESTATE)));
                    Box::pin(serve_request(
                        s.gateway.clone(),
                        session,
                        principal,
                        text,
                        accept_sse,
                        trace,
                    ))
                    .await
                }
                Incoming::Batch(msgs) => {
                    let sink = session.standalone();
                    let responses = futures::future::join_all(
                        msgs.iter()
                            .map(|m| s.gateway.handle(&session, m, &sink, inbound(&principal))),
                    )
                    .await;
                    let responses: Vec<String> = responses.into_iter().flatten().collect();
                    if responses.is_empty() {
                        StatusCode::ACCEPTED.into_response()
                    } else {
                        json_response(StatusCode::OK, format!("[{}]", responses.join(",")))
                    }
                }
            }
        }
    }
}

/// Serves one request: answered as JSON when the response is the first
/// thing to come back, switched to an SSE stream when the upstream sends
/// related messages (progress, sampling, elicitation) first.
async fn serve_request(
    gw: Arc<Gateway>,
    session: Arc<Session>,
    principal: Principal,
    text: String,
    accept_sse: bool,
    trace: Option<(String, Option<String>)>,
) -> Response {
    let (tx, mut related) = mpsc::unbounded_channel::<Arc<str>>();
    let sink = Sink::Direct(tx);
    let scopes_needed: Arc<Mutex<Option<Vec<String>>>> = Arc::default();
    // Read here: the work may finish on another task (an SSE pump).
    let client_addr = crate::call::client_addr();
    let subject_token = crate::call::subject_token();
    let work = {
        let gw = gw.clone();
        let session = session.clone();
        let scope_refusal = scopes_needed.clone();
        async move {
            let msg = parse_one(&text).ok()?;
            let trace = trace.as_ref().map(|(tp, ts)| crate::core::TraceContext {
                traceparent: tp,
                tracestate: ts.as_deref(),
            });
            let inbound = Inbound {
                trace,
                client_addr,
                principal: Some(principal),
                subject_token,
                ..Inbound::default()
            };
            let handled = gw.handle_call(&session, &msg, &sink, inbound).await;
            if let Some(scopes) = handled.insufficient_scope() {
                *lock(&scope_refusal) = Some(scopes.to_vec());
            }
            handled.response
        }
    };
    // Finished in a task of its own if this handler is dropped first.
    let mut work = crate::call::Finishing::new(work);
    // Related messages are polled first: everything the upstream sent
    // before its response is queued before the response completes `work`
    // (see `UpstreamHandle::wait_dispatched`), so nothing is overtaken.
    let first = loop {
        tokio::select! {
            biased;
            Some(m) = related.recv() => {
                if accept_sse {
                    break m;
                }
                session.standalone().send(m);
            }
            resp = &mut work => {
                let mut queued = Vec::new();
                while let Ok(m) = related.try_recv() {
                    queued.push(m);
                }
                if queued.is_empty() || !accept_sse {
                    for m in queued {
                        session.standalone().send(m);
                    }
                    let refusal = lock(&scopes_needed).take();
                    return match (resp, refusal) {
                        (Some(body), Some(scopes)) => insufficient_scope(&gw, &session, body, scopes),
                        (Some(body), None) => json_response(StatusCode::OK, body),
                        (None, _) => StatusCode::ACCEPTED.into_response(),
                    };
                }
                return finished_as_sse(&gw, &session, queued, resp);
            }
        }
    };
    let replay = gw.snapshot().config.gateway.replay_buffer_events;
    let stream = EventStream::new(new_session_id(), replay);
    session.keep_stream(stream.clone());
    let Ok((_, Some(live))) = stream.attach(None) else {
        return http_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    stream.push(first);
    let pump = stream.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                Some(m) = related.recv() => { pump.push(m); }
                resp = &mut work => {
                    while let Ok(m) = related.try_recv() {
                        pump.push(m);
                    }
                    if let Some(body) = resp {
                        pump.push(body.into());
                    }
                    pump.close();
                    return;
                }
            }
        }
    });
    sse_response(stream, Vec::new(), live, None)
}

/// 403 with `WWW-Authenticate: Bearer error="insufficient_scope",
/// scope="…"` (step-up), the JSON-RPC error as the body.
fn insufficient_scope(
    gw: &Gateway,
    session: &Session,
    body: String,
    scopes: Vec<String>,
) -> Response {
    let r = json_response(StatusCode::FORBIDDEN, body);
    with_scope_challenge(gw, &session.virtual_server, r, scopes)
}

/// `r` (the JSON-RPC error of a refusal for missing scopes) as the MCP
/// step-up challenge: 403 with `WWW-Authenticate: Bearer
/// error="insufficient_scope", scope="…"` naming what the operation needs,
/// in either protocol era.
pub(crate) fn with_scope_challenge(
    gw: &Gateway,
    virtual_server: &str,
    mut r: Response,
    scopes: Vec<String>,
) -> Response {
    *r.status_mut() = StatusCode::FORBIDDEN;
    if let Some(auth) = gw.authenticator() {
        let err = warden_identity::AuthError::InsufficientScope(scopes);
        let (_, challenge) = auth.challenge(&err, &mcp_path(virtual_server));
        for (k, v) in challenge {
            if let (Ok(k), Ok(v)) = (
                header::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                r.headers_mut().append(k, v);
            }
        }
    }
    r
}

/// A request whose response and related messages are all in hand, sent as
/// one SSE stream (kept for resumption like any other).
fn finished_as_sse(
    gw: &Gateway,
    session: &Session,
    related: Vec<Arc<str>>,
    resp: Option<String>,
) -> Response {
    let replay = gw.snapshot().config.gateway.replay_buffer_events;
    let stream = EventStream::new(new_session_id(), replay);
    session.keep_stream(stream.clone());
    let Ok((_, Some(live))) = stream.attach(None) else {
        return http_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    for m in related {
        stream.push(m);
    }
    if let Some(body) = resp {
        stream.push(body.into());
    }
    stream.close();
    sse_response(stream, Vec::new(), live, None)
}

/// An SSE response from a replay plus a live receiver. `preamble` is sent
/// first (legacy `endpoint` event).
fn sse_response(
    stream: Arc<EventStream>,
    replay: Vec<Item>,
    live: mpsc::Receiver<Item>,
    preamble: Option<String>,
) -> Response {
    let ids = stream.clone();
    let replayed = futures::stream::iter(replay);
    let live = tokio_stream::wrappers::ReceiverStream::new(live);
    let events = replayed.chain(live).map(move |item| {
        let id = ids.event_id(item.seq);
        Ok::<_, Infallible>(Bytes::from(sse::encode(
            Some(&id),
            Some("message"),
            &item.text,
        )))
    });
    let pre = futures::stream::iter(preamble.map(|p| Ok::<_, Infallible>(Bytes::from(p))));
    let body = Body::from_stream(with_keepalive(pre.chain(events)));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Interleaves SSE comments so idle streams survive proxies; ends when the
/// message stream ends.
pub(crate) fn with_keepalive<S>(
    inner: S,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send
where
    S: futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
{
    let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval_at(
        tokio::time::Instant::now() + KEEPALIVE,
        KEEPALIVE,
    ))
    .map(|_| Some(Ok(Bytes::from_static(b": keepalive\n\n"))));
    // `None` marks the end of the messages; the ticker never ends.
    let inner = inner.map(Some).chain(futures::stream::iter([None]));
    futures::stream::select(inner, ticks)
        .take_while(|x| futures::future::ready(x.is_some()))
        .filter_map(futures::future::ready)
}

async fn get_mcp(s: HttpState, vs: String, headers: HeaderMap) -> Response {
    if let Err(r) = check_origin_and_host(&s, &headers) {
        return r.into_response();
    }
    if crate::modern_http::is_modern_header(&headers) {
        return crate::modern_http::method_not_allowed();
    }
    let principal = match authenticate(&s, "GET", &mcp_path(&vs), &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !accepts(&headers, "text/event-stream") {
        return http_error(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Accept must include text/event-stream",
        );
    }
    let session = match session_of(&s, &headers, &vs, &principal) {
        Ok(sess) => sess,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = check_version_header(&headers, &session) {
        return r.into_response();
    }
    match stream_slot(&s.gateway, &principal) {
        Ok(slot) => holding(open_stream(&session, &headers), slot),
        Err(over) => over.answer(None),
    }
}

/// The session's standalone stream, or the stream `Last-Event-ID` names.
fn open_stream(session: &Session, headers: &HeaderMap) -> Response {
    // Resumption: the stream named by Last-Event-ID, after that event.
    if let Some(last) = headers.get(LAST_EVENT_ID).and_then(|v| v.to_str().ok()) {
        if let Some((stream_id, seq)) = parse_event_id(last) {
            let stream = match session.standalone() {
                Sink::Stream(st) if st.id == stream_id => Some(st),
                _ => session.find_stream(stream_id),
            };
            if let Some(st) = stream {
                return match st.attach(Some(seq)) {
                    Ok((replay, Some(live))) => sse_response(st, replay, live, None),
                    Ok((replay, None)) => {
                        let (_tx, rx) = mpsc::channel(1);
                        sse_response(st, replay, rx, None)
                    }
                    Err(()) => http_error(
                        StatusCode::NOT_FOUND,
                        "Not Found: events after Last-Event-ID are no longer buffered",
                    ),
                };
            }
        }
        debug!("Last-Event-ID names no stream of this session; opening a new stream");
    }
    let Sink::Stream(st) = session.standalone() else {
        return http_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    };
    // Everything still buffered that this client has not seen is replayed
    // to the first reader; a second GET replaces the first.
    match st.attach(Some(0)) {
        Ok((replay, Some(live))) => sse_response(st, replay, live, None),
        _ => http_error(StatusCode::NOT_FOUND, "Not Found: session ended"),
    }
}

async fn delete_mcp(s: HttpState, vs: String, headers: HeaderMap) -> Response {
    if let Err(r) = check_origin_and_host(&s, &headers) {
        return r.into_response();
    }
    if crate::modern_http::is_modern_header(&headers) {
        return crate::modern_http::method_not_allowed();
    }
    let principal = match authenticate(&s, "DELETE", &mcp_path(&vs), &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let session = match session_of(&s, &headers, &vs, &principal) {
        Ok(sess) => sess,
        Err(r) => return r.into_response(),
    };
    s.gateway.close_session(&session.id).await;
    StatusCode::OK.into_response()
}

// ------------------------------------------------------------- legacy HTTP+SSE

async fn legacy_get(s: HttpState, vs: String, headers: HeaderMap) -> Response {
    if let Err(r) = check_origin_and_host(&s, &headers) {
        return r.into_response();
    }
    if s.gateway.snapshot().route(&vs).is_none() {
        return http_error(StatusCode::NOT_FOUND, "Not Found: unknown virtual server");
    }
    // Legacy endpoints authenticate for the MCP resource they serve.
    let principal = match authenticate(&s, "GET", &mcp_path(&vs), &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let slot = match stream_slot(&s.gateway, &principal) {
        Ok(slot) => slot,
        Err(over) => return over.answer(None),
    };
    let id = new_session_id();
    let (tx, rx) = mpsc::unbounded_channel::<Arc<str>>();
    lock(&s.legacy).insert(
        id.clone(),
        LegacyConn {
            tx,
            virtual_server: vs.clone(),
            principal,
        },
    );
    let endpoint = if vs.is_empty() {
        format!("/messages?sessionId={id}")
    } else {
        format!("/mcp/{vs}/messages?sessionId={id}")
    };
    let preamble = sse::encode(None, Some("endpoint"), &endpoint);
    // When the client goes away the stream is dropped; the guard ends the session.
    let guard = LegacyGuard {
        id: id.clone(),
        state: s.clone(),
        _slot: slot,
    };
    let events = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(move |text| {
        let _keep = &guard;
        Ok::<_, Infallible>(Bytes::from(sse::encode(None, Some("message"), &text)))
    });
    let pre = futures::stream::iter([Ok::<_, Infallible>(Bytes::from(preamble))]);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(with_keepalive(pre.chain(events))))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

struct LegacyGuard {
    id: String,
    state: HttpState,
    /// The stream counts against its principal until it ends.
    _slot: Slot,
}

impl Drop for LegacyGuard {
    fn drop(&mut self) {
        lock(&self.state.legacy).remove(&self.id);
        let gw = self.state.gateway.clone();
        let id = self.id.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                gw.close_session(&id).await;
            });
        }
    }
}

/// The checks a legacy POST passes before its body is read: Origin and
/// Host, the session, the credential (of the session's principal).
async fn admit_legacy_post(
    s: &HttpState,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(String, String, Principal, mpsc::UnboundedSender<Arc<str>>), Response> {
    check_origin_and_host(s, headers).map_err(IntoResponse::into_response)?;
    let Some(id) = q.get("sessionId") else {
        return Err(http_error(
            StatusCode::BAD_REQUEST,
            "Bad Request: sessionId query parameter is required",
        ));
    };
    let unknown = || http_error(StatusCode::NOT_FOUND, "Not Found: unknown session");
    let Some(vs) = lock(&s.legacy).get(id).map(|c| c.virtual_server.clone()) else {
        return Err(unknown());
    };
    let principal = authenticate(s, "POST", &mcp_path(&vs), headers).await?;
    let tx = match lock(&s.legacy).get(id) {
        Some(c) if c.principal.key() == principal.key() => c.tx.clone(),
        Some(_) => {
            warn!(target: "audit", event = "session.hijack_refused", transport = "legacy_sse", caller = %principal.subject());
            return Err(unknown());
        }
        None => return Err(unknown()),
    };
    Ok((id.clone(), vs, principal, tx))
}

async fn legacy_post(
    s: HttpState,
    q: HashMap<String, String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limits = s.gateway.snapshot().limits;
    let (id, vs, principal, tx) = match admit_legacy_post(&s, &q, &headers).await {
        Ok(admitted) => admitted,
        Err(r) => return answer_unread(body, limits.max_bytes, r).await,
    };
    let id = id.as_str();
    let text = match read_body(body, limits.max_bytes).await {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    let sink = Sink::Direct(tx.clone());
    let m = match message::parse(&text, &limits, false) {
        Ok(Incoming::Single(m)) => m,
        Ok(Incoming::Batch(_)) => {
            return http_error(
                StatusCode::BAD_REQUEST,
                "Bad Request: batches are not supported here",
            )
        }
        Err(e) => {
            // The transport answers on the stream too, for clients that only read it.
            let err = error_response(None, e.code(), &e.to_string(), None);
            sink.send(err.into());
            return wire_error(&e);
        }
    };
    if m.kind == Kind::Request && m.method() == "initialize" {
        if s.gateway.sessions.get(id).is_some() {
            sink.send(
                error_response(
                    m.id.map(|i| i.raw()),
                    ErrorCode::InvalidRequest,
                    "session already initialized",
                    None,
                )
                .into(),
            );
            return StatusCode::ACCEPTED.into_response();
        }
        match s
            .gateway
            .initialize(
                principal,
                crate::call::client_addr(),
                &vs,
                Channel::LegacySse,
                &m,
                sink.clone(),
                id.to_owned(),
            )
            .await
        {
            Ok((_, body)) => {
                sink.send(body.into());
            }
            Err(e) => {
                sink.send(
                    error_response(
                        m.id.map(|i| i.raw()),
                        ErrorCode::InvalidRequest,
                        &e.to_string(),
                        None,
                    )
                    .into(),
                );
            }
        }
        return StatusCode::ACCEPTED.into_response();
    }
    let Some(session) = s.gateway.sessions.get(id) else {
        if m.kind == Kind::Request {
            sink.send(
                error_response(
                    m.id.map(|i| i.raw()),
                    ErrorCode::InvalidRequest,
                    "send initialize first",
                    None,
                )
                .into(),
            );
        }
        return StatusCode::ACCEPTED.into_response();
    };
    if m.kind != Kind::Request {
        s.gateway
            .handle(&session, &m, &sink, inbound(&principal))
            .await;
        return StatusCode::ACCEPTED.into_response();
    }
    // Requests run concurrently; the answer goes to the SSE stream.
    drop(m);
    let gw = s.gateway.clone();
    let inbound = inbound(&principal);
    tokio::spawn(async move {
        let Ok(m) = parse_one(&text) else {
            return;
        };
        if let Some(resp) = gw.handle(&session, &m, &sink, inbound).await {
            sink.send(resp.into());
        }
    });
    StatusCode::ACCEPTED.into_response()
}

/// What the HTTP transport knows about the request being served beyond
/// its message: the peer address of its connection, and the principal of
/// the credential it carries (whose rights decide it).
fn inbound(principal: &Principal) -> Inbound<'static> {
    Inbound {
        client_addr: crate::call::client_addr(),
        principal: Some(principal.clone()),
        subject_token: crate::call::subject_token(),
        ..Inbound::default()
    }
}

/// Readiness: 200 once every configured issuer's keys are in hand and
/// every server marked `required` answers its probe; 503 naming the
/// issuers (their tokens get 401 meanwhile) and servers that do not.
/// Liveness stays `/healthz`.
async fn readyz(State(s): State<HttpState>) -> Response {
    let mut waiting: Vec<String> = s
        .gateway
        .authenticator()
        .map(|auth| auth.issuer_status())
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_ready())
        .map(|i| {
            let class = i.last_error.map_or("pending", |e| e.code());
            format!("issuer {} unavailable ({class})", i.name)
        })
        .collect();
    waiting.extend(s.gateway.unready_servers());
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", waiting.join("; ")),
        )
            .into_response()
    }
}
