//! Streamable HTTP: one POST per message, answered as JSON or as an SSE
//! stream. In the session era, a GET stream for server-initiated messages
//! and the session named by `Mcp-Session-Id`; the stateless 2026-07-28 era
//! (no session, no GET) lives in `modern.rs` and shares the exchange code
//! here.
//!
//! Invariants: an invalid event is logged and dropped, never fatal (the
//! connection is shared by many calls); a 404 to a request carrying our
//! session id re-initializes once and retries that request once; bodies and
//! events are bounded by the spec's limits.

use std::sync::Arc;
use std::time::Duration;

use ::http::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use ::http::{Method, StatusCode};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use url::Url;
use warden_protocol::sse::Decoder;

use crate::client::{Client, ClientError, Target};
use crate::envelope::Envelope;
use crate::handshake::{self, Handshaken, INITIALIZED};
use crate::shared::{Link, Shared};
use crate::supervisor::End;
use crate::{discover, modern, Era, Response, TransportSpec, UpstreamError};

pub(crate) const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
pub(crate) const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
const POST_ACCEPT: &str = "application/json, text/event-stream";
pub(crate) const EVENT_STREAM: &str = "text/event-stream";

/// Headers that name the message a POST carries (2026-07-28).
pub(crate) type Routing = Vec<(HeaderName, HeaderValue)>;

/// Resumptions of one response stream in a row that brought no new event.
const MAX_IDLE_RESUMES: u32 = 3;
/// Cap on a server's `retry:` hint, so a hostile value cannot park a call.
const MAX_RETRY_HINT: Duration = Duration::from_secs(5);
/// GET stream reconnection backoff.
pub(crate) const LISTEN_MIN_DELAY: Duration = Duration::from_secs(1);
pub(crate) const LISTEN_MAX_DELAY: Duration = Duration::from_secs(30);
/// Refusals of the GET stream in a row after which Warden stops asking.
pub(crate) const LISTEN_MAX_REFUSALS: u32 = 5;
/// How long `shutdown` waits for the DELETE.
const DELETE_TIMEOUT: Duration = Duration::from_secs(2);

/// One initialized session (or, for a 2026-07-28 upstream, the settings of
/// its stateless exchanges): immutable once shared by the calls on it.
pub(crate) struct Session {
    pub(crate) server: String,
    client: Client,
    target: Target,
    configured: HeaderMap,
    session_id: Option<HeaderValue>,
    /// Built once per session, so a call clones a map instead of building one.
    post_headers: HeaderMap,
    get_headers: HeaderMap,
    delete_headers: HeaderMap,
    pub(crate) max_bytes: usize,
    expired: mpsc::Sender<()>,
    /// Set for a 2026-07-28 upstream: the envelope each request carries.
    pub(crate) modern: Option<Envelope>,
    /// The connection's credential, asked per request.
    auth: Option<crate::AuthSource>,
}

impl Session {
    fn new(
        shared: &Shared,
        url: Url,
        configured: HeaderMap,
        expired: mpsc::Sender<()>,
    ) -> Result<Session, UpstreamError> {
        let target = Target::new(&url).map_err(UpstreamError::Config)?;
        let mut session = Session {
            server: shared.spec.name.clone(),
            client: client(shared)?,
            target,
            configured,
            session_id: None,
            post_headers: HeaderMap::new(),
            get_headers: HeaderMap::new(),
            delete_headers: HeaderMap::new(),
            max_bytes: shared.spec.limits.max_bytes,
            expired,
            modern: None,
            auth: shared.spec.auth.clone(),
        };
        session.identify(None, None);
        Ok(session)
    }

    /// The stateless settings of a 2026-07-28 upstream: every POST carries
    /// `MCP-Protocol-Version`, none an `Mcp-Session-Id` (not even a
    /// configured one).
    pub(crate) fn modern(
        shared: &Shared,
        url: Url,
        mut configured: HeaderMap,
        expired: mpsc::Sender<()>,
        envelope: Envelope,
    ) -> Result<Session, UpstreamError> {
        configured.remove(SESSION_ID);
        let mut session = Session::new(shared, url, configured, expired)?;
        let version = HeaderValue::from_static(envelope.version());
        session.modern = Some(envelope);
        session.identify(None, Some(version));
        Ok(session)
    }

    pub(crate) fn is_modern(&self) -> bool {
        self.modern.is_some()
    }

    /// Sets the session id and protocol version that every later message
    /// carries. Warden's protocol headers replace configured ones of the
    /// same name.
    fn identify(&mut self, session_id: Option<HeaderValue>, version: Option<HeaderValue>) {
        let mut common = self.configured.clone();
        if let Some(s) = &session_id {
            common.insert(SESSION_ID, s.clone());
        }
        if let Some(v) = &version {
            common.insert(PROTOCOL_VERSION, v.clone());
        }
        let mut post = common.clone();
        post.insert(ACCEPT, HeaderValue::from_static(POST_ACCEPT));
        post.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut get = common.clone();
        get.insert(ACCEPT, HeaderValue::from_static(EVENT_STREAM));
        self.session_id = session_id;
        self.post_headers = post;
        self.get_headers = get;
        self.delete_headers = common;
    }

    async fn post(&self, body: Bytes) -> Result<crate::client::Response, UpstreamError> {
        self.post_with(body, Vec::new(), None).await
    }

    /// A POST with the message's routing headers (2026-07-28) and the
    /// caller's per-request headers (W3C trace context, `Mcp-Param-*`)
    /// besides the session's own. Per-request headers never replace the
    /// session's or the routing headers, and never name a session.
    pub(crate) async fn post_with(
        &self,
        body: Bytes,
        routing: Routing,
        extra: Option<&crate::RequestHeaders>,
    ) -> Result<crate::client::Response, UpstreamError> {
        let mut headers = self.post_headers.clone();
        let call_credentials = extra.map_or(&[][..], |e| e.credentials.as_slice());
        self.authenticate(&mut headers, call_credentials);
        for (k, v) in routing {
            headers.insert(k, v);
        }
        for (k, v) in extra.map_or(&[][..], |e| e.extra.as_slice()) {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                if !headers.contains_key(&k) && k != SESSION_ID {
                    headers.insert(k, v);
                }
            }
        }
        self.client
            .send(Method::POST, &self.target, headers, body)
            .await
            .map_err(unreachable)
    }

    /// Adds the credential: the call's own when it has one, else the
    /// connection's. Either replaces a configured header of its name.
    pub(crate) fn authenticate(&self, headers: &mut HeaderMap, call: &[(String, String)]) {
        let connection;
        let pairs = if !call.is_empty() {
            call
        } else if let Some(auth) = &self.auth {
            connection = match auth.0.headers() {
                Ok(h) => h,
                Err(why) => {
                    warn!(target: "upstream", server = %self.server, error = %why, "no credential for this request");
                    Vec::new()
                }
            };
            &connection
        } else {
            return;
        };
        for (k, v) in pairs {
            if let (Ok(k), Ok(mut v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                v.set_sensitive(true);
                headers.insert(k, v);
            }
        }
    }

    async fn get(
        &self,
        last_event_id: Option<&str>,
    ) -> Result<crate::client::Response, UpstreamError> {
        let mut headers = self.get_headers.clone();
        self.authenticate(&mut headers, &[]);
        if let Some(id) = last_event_id.and_then(|i| HeaderValue::from_str(i).ok()) {
            headers.insert(LAST_EVENT_ID, id);
        }
        self.client
            .send(Method::GET, &self.target, headers, Bytes::new())
            .await
            .map_err(unreachable)
    }

    /// Tells the supervisor the server forgot this session (or, modern, no
    /// longer accepts its version). Later calls on an already replaced
    /// session are no-ops.
    pub(crate) fn expire(&self) {
        let _ = self.expired.try_send(());
    }

    fn is_expiry(&self, status: StatusCode) -> bool {
        status == StatusCode::NOT_FOUND && self.session_id.is_some()
    }

    /// Sends a notification or a response: the server answers 202.
    pub(crate) async fn send(&self, text: String) -> Result<(), UpstreamError> {
        let resp = self.post(Bytes::from(text)).await?;
        let status = resp.status();
        if self.is_expiry(status) {
            self.expire();
            return Err(UpstreamError::Closed("session expired".into()));
        }
        if !status.is_success() {
            return Err(UpstreamError::Http(status.as_u16()));
        }
        Ok(())
    }
}

/// The supervisor's side of a session: its expiry signal and its stream
/// for messages outside requests (the GET stream, or a modern upstream's
/// `subscriptions/listen`).
pub(crate) struct Connection {
    pub session: Arc<Session>,
    expired: mpsc::Receiver<()>,
    listener: Option<JoinHandle<()>>,
}

impl Connection {
    pub(crate) fn new(
        session: Arc<Session>,
        expired: mpsc::Receiver<()>,
        listener: Option<JoinHandle<()>>,
    ) -> Connection {
        Connection {
            session,
            expired,
            listener,
        }
    }

    pub(crate) async fn ended(&mut self) -> End {
        // The sender lives in the session, which this connection holds: the
        // channel cannot close while we wait.
        let _ = self.expired.recv().await;
        if self.session.is_modern() {
            End::VersionRefused
        } else {
            End::SessionExpired
        }
    }

    /// Stops the listener; a graceful close of a session-era connection
    /// DELETEs the session (a modern upstream has none).
    pub(crate) async fn close(&mut self, graceful: bool) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
        if !graceful {
            return;
        }
        let Some(_) = &self.session.session_id else {
            return;
        };
        let mut headers = self.session.delete_headers.clone();
        self.session.authenticate(&mut headers, &[]);
        let req =
            self.session
                .client
                .send(Method::DELETE, &self.session.target, headers, Bytes::new());
        match tokio::time::timeout(DELETE_TIMEOUT, req).await {
            Ok(Ok(resp)) => {
                debug!(target: "upstream", server = %self.session.server, status = resp.status().as_u16(), "session deleted")
            }
            Ok(Err(e)) => {
                debug!(target: "upstream", server = %self.session.server, error = %e, "session DELETE failed")
            }
            Err(_) => {
                debug!(target: "upstream", server = %self.session.server, "session DELETE timed out")
            }
        }
    }
}

/// Parses the configured URL and headers.
pub(crate) fn endpoint(spec: &TransportSpec) -> Result<(Url, HeaderMap), UpstreamError> {
    let (TransportSpec::StreamableHttp { url, headers } | TransportSpec::Sse { url, headers }) =
        spec
    else {
        return Err(UpstreamError::Config("not an HTTP transport".into()));
    };
    let url = Url::parse(url).map_err(|e| UpstreamError::Config(format!("invalid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UpstreamError::Config(
            "URL scheme must be http or https".into(),
        ));
    }
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| UpstreamError::Config(format!("invalid header name {k:?}")))?;
        // The value is not echoed: it is usually a credential.
        let mut value = HeaderValue::from_str(v)
            .map_err(|_| UpstreamError::Config(format!("invalid value for header {k:?}")))?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    Ok((url, map))
}

pub(crate) fn client(shared: &Shared) -> Result<Client, UpstreamError> {
    shared.http.clone().map_err(UpstreamError::Config)
}

/// What a connection attempt of one era came to.
pub(crate) enum Attempt {
    Connected(Connection, Handshaken),
    /// `initialize` was answered `-32022` naming 2026-07-28: probe again.
    Reprobe,
}

/// Connects in the configured era; `Era::Auto` tries the era it
/// remembers first and detects again when that fails for any reason but
/// the network.
pub(crate) async fn connect(
    shared: &Arc<Shared>,
) -> Result<(Connection, Handshaken), UpstreamError> {
    let (url, headers) = endpoint(&shared.spec.transport)?;
    match shared.spec.era {
        Era::Session => match connect_session(shared, url, headers, false).await? {
            Attempt::Connected(c, done) => Ok((c, done)),
            Attempt::Reprobe => Err(UpstreamError::Protocol(
                "initialize refused: the server speaks 2026-07-28 only".into(),
            )),
        },
        Era::Modern => modern::connect(shared, url, headers).await,
        Era::Auto => {
            // The era that worked last; else the session era first when
            // the client may be asked things in the middle of a call (see
            // `Handshake::session_first`), the 2026-07-28 probe otherwise.
            let session_first = match shared.remembered_era() {
                Some(Era::Session) => true,
                Some(Era::Modern) => false,
                _ => shared.handshake.session_first,
            };
            if session_first {
                match connect_session(shared, url.clone(), headers.clone(), true).await {
                    Ok(Attempt::Connected(c, done)) => {
                        shared.remember_era(Some(Era::Session));
                        return Ok((c, done));
                    }
                    Err(e @ UpstreamError::Unavailable(_)) => return Err(e),
                    Ok(Attempt::Reprobe) | Err(_) => {
                        debug!(target: "upstream", server = %shared.name(), "the session era failed; detecting the era again");
                        shared.remember_era(None);
                    }
                }
            }
            modern::detect(shared, url, headers).await
        }
    }
}

/// Opens a session: POST initialize, take the session id, send
/// `notifications/initialized`, open the GET stream. With `may_reprobe`
/// (era detection), an initialize answered with `-32022` naming 2026-07-28
/// asks for another probe instead of failing.
pub(crate) async fn connect_session(
    shared: &Arc<Shared>,
    url: Url,
    headers: HeaderMap,
    may_reprobe: bool,
) -> Result<Attempt, UpstreamError> {
    let (expired_tx, expired) = mpsc::channel(1);
    let mut session = Session::new(shared, url, headers, expired_tx)?;
    let id = shared.next_id();
    let text = handshake::initialize_request(id, &shared.handshake.params)?;
    let resp = session.post(Bytes::from(text)).await?;
    if !resp.status().is_success() {
        let status = resp.status().as_u16();
        if may_reprobe {
            if let Some(r) = error_reply(shared, &session, resp, id).await {
                if discover::names_modern_as_supported(&r.text) {
                    return Ok(Attempt::Reprobe);
                }
            }
        }
        return Err(UpstreamError::Http(status));
    }
    let session_id = resp.headers().get(SESSION_ID).cloned();
    if let Some(sid) = &session_id {
        // The spec allows visible ASCII only; anything else would be echoed
        // back into our own requests.
        if !sid.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b)) {
            return Err(UpstreamError::Protocol(
                "session id is not visible ASCII".into(),
            ));
        }
    }
    session.identify(session_id.clone(), None);
    let response = read_reply(shared, &session, resp, id).await?;
    if may_reprobe && discover::names_modern_as_supported(&response.text) {
        return Ok(Attempt::Reprobe);
    }
    let done = handshake::accept(&response)?;
    session.identify(
        session_id,
        HeaderValue::from_str(&done.protocol_version).ok(),
    );
    let session = Arc::new(session);
    session.send(INITIALIZED.to_owned()).await?;
    let listener = tokio::spawn(listen(shared.clone(), session.clone()));
    Ok(Attempt::Connected(
        Connection::new(session, expired, Some(listener)),
        done,
    ))
}

/// A request's exchange over HTTP: posts the request and reads its reply
/// (a JSON body or an SSE stream, to the end). The caller polls it beside
/// its pending entry, in its own task (`Upstream::call`): no task is
/// spawned per call, and dropping the call drops the exchange, which
/// closes its HTTP response.
pub(crate) type Exchange =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, UpstreamError>> + Send>>;

/// Request `id`'s exchange on `session`.
pub(crate) fn start_exchange(
    shared: &Arc<Shared>,
    session: Arc<Session>,
    id: u64,
    text: String,
) -> Exchange {
    let extra = crate::request_headers();
    if session.is_modern() {
        return modern::start_exchange(shared, session, id, text, extra);
    }
    let shared = shared.clone();
    Box::pin(async move { exchange(&shared, session, id, text, extra.as_deref()).await })
}

async fn exchange(
    shared: &Arc<Shared>,
    mut session: Arc<Session>,
    id: u64,
    text: String,
    extra: Option<&crate::RequestHeaders>,
) -> Result<Response, UpstreamError> {
    let body = Bytes::from(text);
    let mut retried = false;
    loop {
        let resp = session.post_with(body.clone(), Vec::new(), extra).await?;
        if session.is_expiry(resp.status()) {
            session.expire();
            if retried {
                return Err(UpstreamError::Http(404));
            }
            retried = true;
            let old = session.clone();
            let link = shared
                .wait_for_link_where(|l| matches!(l, Link::Http(s) if !Arc::ptr_eq(s, &old)))
                .await?;
            let Link::Http(next) = link else {
                return Err(UpstreamError::Closed("transport changed".into()));
            };
            debug!(target: "upstream", server = %shared.name(), id, "retrying on the new session");
            session = next;
            continue;
        }
        return read_reply(shared, &session, resp, id).await;
    }
}

/// Reads the reply to request `id`: a JSON body or an SSE stream, resumed
/// with `Last-Event-ID` when it ends early and the server gave event ids
/// (session era). A modern server answers a refused request with its
/// JSON-RPC error at an HTTP error status: that error is the reply.
pub(crate) async fn read_reply(
    shared: &Shared,
    session: &Session,
    mut resp: crate::client::Response,
    id: u64,
) -> Result<Response, UpstreamError> {
    let status = resp.status();
    if status == StatusCode::ACCEPTED {
        return Err(UpstreamError::Protocol(
            "request answered with 202 Accepted".into(),
        ));
    }
    if !status.is_success() {
        if session.is_modern() {
            if let Some(r) = error_reply(shared, session, resp, id).await {
                return Ok(r);
            }
        }
        return Err(UpstreamError::Http(status.as_u16()));
    }
    match media_type(&resp).as_deref() {
        Some("application/json") => {
            let body = read_body(&mut resp, session.max_bytes).await?;
            let text = String::from_utf8(body)
                .map_err(|_| UpstreamError::Protocol("reply is not UTF-8".into()))?;
            match shared.route(text, Some(id), Some(id)).await {
                Ok(Some(r)) => Ok(r),
                Ok(None) => Err(UpstreamError::Protocol(
                    "reply did not answer the request".into(),
                )),
                Err(e) => Err(UpstreamError::Protocol(e.to_string())),
            }
        }
        Some(EVENT_STREAM) => read_reply_stream(shared, session, resp, id).await,
        _ => Err(UpstreamError::Protocol(
            "reply is neither JSON nor an event stream".into(),
        )),
    }
}

async fn read_reply_stream(
    shared: &Shared,
    session: &Session,
    mut resp: crate::client::Response,
    id: u64,
) -> Result<Response, UpstreamError> {
    let mut last_id: Option<String> = None;
    let mut idle_resumes = 0;
    loop {
        let mut decoder = Decoder::new(session.max_bytes);
        decoder.last_event_id.clone_from(&last_id);
        let mut retry = None;
        if let Some(r) = read_events(shared, &mut resp, &mut decoder, Some(id), &mut retry).await? {
            return Ok(r);
        }
        if decoder.last_event_id == last_id {
            idle_resumes += 1;
        } else {
            idle_resumes = 0;
        }
        last_id = decoder.last_event_id;
        // 2026-07-28 has no GET: a broken response stream cannot resume.
        let Some(resume_from) = last_id.as_deref().filter(|_| !session.is_modern()) else {
            return Err(UpstreamError::Closed(
                "response stream ended before the response".into(),
            ));
        };
        if idle_resumes > MAX_IDLE_RESUMES {
            return Err(UpstreamError::Closed(
                "response stream keeps ending without the response".into(),
            ));
        }
        if let Some(ms) = retry {
            tokio::time::sleep(Duration::from_millis(ms).min(MAX_RETRY_HINT)).await;
        }
        resp = session.get(Some(resume_from)).await?;
        let status = resp.status();
        if session.is_expiry(status) {
            session.expire();
            return Err(UpstreamError::Closed("session expired".into()));
        }
        if !status.is_success() {
            return Err(UpstreamError::Http(status.as_u16()));
        }
        if media_type(&resp).as_deref() != Some(EVENT_STREAM) {
            return Err(UpstreamError::Protocol(
                "resumed stream is not an event stream".into(),
            ));
        }
    }
}

/// Reads SSE events until the stream ends, routing each message. Returns
/// the response to `ours` once seen (after routing the rest of its chunk).
/// A broken connection is an end, not an error: the caller may resume.
pub(crate) async fn read_events(
    shared: &Shared,
    resp: &mut crate::client::Response,
    decoder: &mut Decoder,
    ours: Option<u64>,
    retry: &mut Option<u64>,
) -> Result<Option<Response>, UpstreamError> {
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(None),
            Err(e) => {
                debug!(target: "upstream", server = %shared.name(), error = %e, "event stream broke");
                return Ok(None);
            }
        };
        let events = decoder
            .feed(&chunk)
            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        let mut found = None;
        for ev in events {
            if ev.retry.is_some() {
                *retry = ev.retry;
            }
            if !matches!(ev.event.as_deref(), None | Some("message")) || ev.data.is_empty() {
                // Other event types are not ours; empty data primes resumption.
                continue;
            }
            // An invalid event is logged by `route` and dropped.
            if let Ok(Some(r)) = shared.route(ev.data, ours, ours).await {
                found = Some(r);
            }
        }
        if found.is_some() {
            return Ok(found);
        }
    }
}

/// The GET stream for server-initiated messages, reconnected with
/// `Last-Event-ID` when it drops, until the session is replaced.
async fn listen(shared: Arc<Shared>, session: Arc<Session>) {
    let mut last_id: Option<String> = None;
    let mut delay = LISTEN_MIN_DELAY;
    let mut refusals = 0;
    loop {
        match session.get(last_id.as_deref()).await {
            Ok(mut resp) => {
                let status = resp.status();
                if status == StatusCode::METHOD_NOT_ALLOWED {
                    debug!(target: "upstream", server = %shared.name(), "server offers no GET stream");
                    return;
                }
                if session.is_expiry(status) {
                    session.expire();
                    return;
                }
                if status.is_success() && media_type(&resp).as_deref() == Some(EVENT_STREAM) {
                    refusals = 0;
                    let mut decoder = Decoder::new(session.max_bytes);
                    decoder.last_event_id.clone_from(&last_id);
                    let mut retry = None;
                    if let Err(e) =
                        read_events(&shared, &mut resp, &mut decoder, None, &mut retry).await
                    {
                        warn!(target: "upstream", server = %shared.name(), error = %e, "GET stream dropped");
                    }
                    if decoder.last_event_id != last_id {
                        delay = LISTEN_MIN_DELAY;
                    }
                    last_id = decoder.last_event_id;
                    if let Some(ms) = retry {
                        delay = Duration::from_millis(ms)
                            .clamp(Duration::from_millis(10), LISTEN_MAX_DELAY);
                    }
                } else {
                    refusals += 1;
                    if refusals >= LISTEN_MAX_REFUSALS {
                        warn!(target: "upstream", server = %shared.name(), status = status.as_u16(), "GET stream refused; not retrying");
                        return;
                    }
                }
            }
            Err(e) => {
                debug!(target: "upstream", server = %shared.name(), error = %e, "GET stream failed");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(LISTEN_MAX_DELAY);
    }
}

/// The JSON-RPC error in the body of an HTTP error answer to request `id`,
/// as its response. The id must be ours, or `null` (a server that could not
/// read the request's id): then ours is spliced in, so the caller gets an
/// answer to its own request. `None` when the body is anything else.
pub(crate) async fn error_reply(
    shared: &Shared,
    session: &Session,
    mut resp: crate::client::Response,
    id: u64,
) -> Option<Response> {
    if media_type(&resp).as_deref() != Some("application/json") {
        return None;
    }
    let body = read_body(&mut resp, session.max_bytes).await.ok()?;
    let text = String::from_utf8(body).ok()?;
    let text = {
        let m = match warden_protocol::message::parse(&text, &shared.spec.limits, false) {
            Ok(warden_protocol::Incoming::Single(m)) => m,
            Ok(_) => return None,
            Err(e) => {
                shared.log_invalid(text.as_bytes(), &e);
                return None;
            }
        };
        if m.kind != warden_protocol::Kind::Error {
            return None;
        }
        match m.id {
            Some(got) if got.as_u64() == Some(id) => None,
            Some(_) => return None,
            None => {
                let whole: &serde_json::value::RawValue = serde_json::from_str(&text).ok()?;
                let null = warden_protocol::message::member(whole, "id")?;
                let mut edits = warden_protocol::EditSet::new();
                edits
                    .replace(&text, null, id.to_string())
                    .then(|| edits.apply(&text))
                    .flatten()
            }
        }
    }
    .unwrap_or(text);
    match shared.route(text, Some(id), Some(id)).await {
        Ok(Some(r)) if r.id == id => Some(r),
        _ => None,
    }
}

/// The media type of a response, lowercased, without parameters.
pub(crate) fn media_type(resp: &crate::client::Response) -> Option<String> {
    let v = resp.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next()?.trim().to_ascii_lowercase())
}

/// Reads a whole body, refusing more than `max` bytes.
pub(crate) async fn read_body(
    resp: &mut crate::client::Response,
    max: usize,
) -> Result<Vec<u8>, UpstreamError> {
    let too_large = || UpstreamError::Protocol(format!("reply larger than {max} bytes"));
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(crate) fn unreachable(e: ClientError) -> UpstreamError {
    UpstreamError::Unavailable(e.to_string())
}
