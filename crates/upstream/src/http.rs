//! Streamable HTTP (session era): one POST per message, answered as JSON or
//! as an SSE stream; a GET stream for server-initiated messages; the session
//! named by `Mcp-Session-Id`.
//!
//! Invariants: an invalid event is logged and dropped, never fatal (the
//! connection is shared by many calls); a 404 to a request carrying our
//! session id re-initializes once and retries that request once; bodies and
//! events are bounded by the spec's limits.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use warden_protocol::sse::Decoder;

use crate::handshake::{self, Handshaken, INITIALIZED};
use crate::shared::{Link, PendingGuard, Shared};
use crate::supervisor::End;
use crate::{Response, TransportSpec, UpstreamError};

pub(crate) const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
const POST_ACCEPT: &str = "application/json, text/event-stream";
const EVENT_STREAM: &str = "text/event-stream";

/// Resumptions of one response stream in a row that brought no new event.
const MAX_IDLE_RESUMES: u32 = 3;
/// Cap on a server's `retry:` hint, so a hostile value cannot park a call.
const MAX_RETRY_HINT: Duration = Duration::from_secs(5);
/// GET stream reconnection backoff.
const LISTEN_MIN_DELAY: Duration = Duration::from_secs(1);
const LISTEN_MAX_DELAY: Duration = Duration::from_secs(30);
/// Refusals of the GET stream in a row after which Warden stops asking.
const LISTEN_MAX_REFUSALS: u32 = 5;
/// How long `shutdown` waits for the DELETE.
const DELETE_TIMEOUT: Duration = Duration::from_secs(2);

/// One initialized session: immutable once shared by the calls on it.
pub(crate) struct Session {
    server: String,
    client: reqwest::Client,
    url: Url,
    configured: HeaderMap,
    session_id: Option<HeaderValue>,
    /// Built once per session, so a call clones a map instead of building one.
    post_headers: HeaderMap,
    get_headers: HeaderMap,
    delete_headers: HeaderMap,
    max_bytes: usize,
    expired: mpsc::Sender<()>,
}

impl Session {
    fn new(
        shared: &Shared,
        url: Url,
        configured: HeaderMap,
        expired: mpsc::Sender<()>,
    ) -> Result<Session, UpstreamError> {
        let mut session = Session {
            server: shared.spec.name.clone(),
            client: client(shared)?,
            url,
            configured,
            session_id: None,
            post_headers: HeaderMap::new(),
            get_headers: HeaderMap::new(),
            delete_headers: HeaderMap::new(),
            max_bytes: shared.spec.limits.max_bytes,
            expired,
        };
        session.identify(None, None);
        Ok(session)
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

    async fn post(&self, body: Bytes) -> Result<reqwest::Response, UpstreamError> {
        self.post_with(body, None).await
    }

    /// A POST with per-request headers (W3C trace context) besides the
    /// session's own; names and values were validated by the caller and
    /// never replace the session's headers.
    async fn post_with(
        &self,
        body: Bytes,
        extra: Option<&[(String, String)]>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut headers = self.post_headers.clone();
        for (k, v) in extra.unwrap_or_default() {
            if let (Ok(k), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                if !headers.contains_key(&k) {
                    headers.insert(k, v);
                }
            }
        }
        self.client
            .post(self.url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(unreachable)
    }

    async fn get(&self, last_event_id: Option<&str>) -> Result<reqwest::Response, UpstreamError> {
        let mut headers = self.get_headers.clone();
        if let Some(id) = last_event_id.and_then(|i| HeaderValue::from_str(i).ok()) {
            headers.insert(LAST_EVENT_ID, id);
        }
        self.client
            .get(self.url.clone())
            .headers(headers)
            .send()
            .await
            .map_err(unreachable)
    }

    /// Tells the supervisor the server forgot this session. Later calls on
    /// an already replaced session are no-ops.
    fn expire(&self) {
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

/// The supervisor's side of a session: its expiry signal and GET stream.
pub(crate) struct Connection {
    pub session: Arc<Session>,
    expired: mpsc::Receiver<()>,
    listener: JoinHandle<()>,
}

impl Connection {
    pub(crate) async fn ended(&mut self) -> End {
        // The sender lives in the session, which this connection holds: the
        // channel cannot close while we wait.
        let _ = self.expired.recv().await;
        End::SessionExpired
    }

    pub(crate) async fn close(&mut self, graceful: bool) {
        self.listener.abort();
        if !graceful {
            return;
        }
        let Some(_) = &self.session.session_id else {
            return;
        };
        let req = self
            .session
            .client
            .delete(self.session.url.clone())
            .headers(self.session.delete_headers.clone());
        match tokio::time::timeout(DELETE_TIMEOUT, req.send()).await {
            Ok(Ok(resp)) => {
                debug!(target: "upstream", server = %self.session.server, status = resp.status().as_u16(), "session deleted")
            }
            Ok(Err(e)) => {
                debug!(target: "upstream", server = %self.session.server, error = %describe(&e), "session DELETE failed")
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

pub(crate) fn client(shared: &Shared) -> Result<reqwest::Client, UpstreamError> {
    shared.http.clone().map_err(UpstreamError::Config)
}

/// Opens a session: POST initialize, take the session id, send
/// `notifications/initialized`, open the GET stream.
pub(crate) async fn connect(
    shared: &Arc<Shared>,
) -> Result<(Connection, Handshaken), UpstreamError> {
    let (url, headers) = endpoint(&shared.spec.transport)?;
    let (expired_tx, expired) = mpsc::channel(1);
    let mut session = Session::new(shared, url, headers, expired_tx)?;
    let id = shared.next_id();
    let text = handshake::initialize_request(id, &shared.handshake.params)?;
    let resp = session.post(Bytes::from(text)).await?;
    if !resp.status().is_success() {
        return Err(UpstreamError::Http(resp.status().as_u16()));
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
    let done = handshake::accept(&response)?;
    session.identify(
        session_id,
        HeaderValue::from_str(&done.protocol_version).ok(),
    );
    let session = Arc::new(session);
    session.send(INITIALIZED.to_owned()).await?;
    let listener = tokio::spawn(listen(shared.clone(), session.clone()));
    Ok((
        Connection {
            session,
            expired,
            listener,
        },
        done,
    ))
}

/// Starts a request's exchange in its own task (so its response stream is
/// read to the end even while the caller only awaits the pending entry);
/// the guard aborts it when the caller gives up.
pub(crate) fn start_exchange(
    shared: &Arc<Shared>,
    session: Arc<Session>,
    guard: &mut PendingGuard,
    text: String,
) {
    let id = guard.id;
    let task_shared = shared.clone();
    // Captured here, in the caller's task: the exchange runs in its own.
    let extra = crate::request_headers();
    let task = tokio::spawn(async move {
        let outcome = exchange(&task_shared, session, id, text, extra.as_deref()).await;
        task_shared.resolve(id, outcome);
    });
    guard.task = Some(task.abort_handle());
}

async fn exchange(
    shared: &Arc<Shared>,
    mut session: Arc<Session>,
    id: u64,
    text: String,
    extra: Option<&[(String, String)]>,
) -> Result<Response, UpstreamError> {
    let body = Bytes::from(text);
    let mut retried = false;
    loop {
        let resp = session.post_with(body.clone(), extra).await?;
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
/// with `Last-Event-ID` when it ends early and the server gave event ids.
async fn read_reply(
    shared: &Shared,
    session: &Session,
    mut resp: reqwest::Response,
    id: u64,
) -> Result<Response, UpstreamError> {
    let status = resp.status();
    if status == StatusCode::ACCEPTED {
        return Err(UpstreamError::Protocol(
            "request answered with 202 Accepted".into(),
        ));
    }
    if !status.is_success() {
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
    mut resp: reqwest::Response,
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
        let Some(resume_from) = last_id.as_deref() else {
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
    resp: &mut reqwest::Response,
    decoder: &mut Decoder,
    ours: Option<u64>,
    retry: &mut Option<u64>,
) -> Result<Option<Response>, UpstreamError> {
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(None),
            Err(e) => {
                debug!(target: "upstream", server = %shared.name(), error = %describe(&e), "event stream broke");
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

/// The media type of a response, lowercased, without parameters.
pub(crate) fn media_type(resp: &reqwest::Response) -> Option<String> {
    let v = resp.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next()?.trim().to_ascii_lowercase())
}

/// Reads a whole body, refusing more than `max` bytes.
pub(crate) async fn read_body(
    resp: &mut reqwest::Response,
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

pub(crate) fn unreachable(e: reqwest::Error) -> UpstreamError {
    UpstreamError::Unavailable(describe(&e))
}

/// A reqwest error with its causes, without the URL (which may carry a
/// token in its query).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else if e.is_body() || e.is_decode() {
        "reading the body failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
