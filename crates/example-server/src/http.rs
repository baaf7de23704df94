//! Streamable HTTP (`POST`/`GET`/`DELETE /mcp`) and legacy HTTP+SSE
//! (`GET /sse`, `POST /messages?sessionId=…`).
//!
//! A `POST /mcp` answers with plain JSON when its requests reply without
//! sending anything first; as soon as a request task sends a notification or
//! a server-to-client request, the answer becomes an SSE stream carrying
//! those messages and then the replies, and it ends after the last reply.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures::stream::{self, Stream, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use warden_protocol::{sse, ProtocolVersion};

use crate::session::{
    error_response, lock, parse_body, Accepted, Ctx, Frame, Incoming, Reply, RpcError, Server,
    Session, Sink, Transport,
};
use crate::Mode;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// Large on purpose: size limits are the gateway's job, and tests must see
/// that the gateway, not this server, refused a body.
const MAX_BODY_BYTES: usize = 64 << 20;

struct Http {
    server: Arc<Server>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    legacy: Mutex<HashMap<String, LegacySession>>,
}

#[derive(Clone)]
struct LegacySession {
    session: Arc<Session>,
    sink: Sink,
}

pub(crate) async fn serve(
    server: Arc<Server>,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    let state = Arc::new(Http {
        server,
        sessions: Mutex::new(HashMap::new()),
        legacy: Mutex::new(HashMap::new()),
    });
    let app = Router::new()
        .route("/mcp", post(mcp_post).get(mcp_get).delete(mcp_delete))
        .route("/sse", get(sse_get))
        .route("/messages", post(messages_post))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    axum::serve(listener, app).await
}

fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Aborts the request tasks of a `POST` whose client went away.
struct AbortOnDrop(Vec<AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

fn rpc_error_response(status: StatusCode, code: i64, message: &str) -> Response {
    json_body(
        status,
        error_response(&Value::Null, &RpcError::new(code, message)),
    )
}

fn json_body(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn sse_body(body: Body) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn event(data: &str) -> Bytes {
    Bytes::from(sse::encode(None, Some("message"), data))
}

/// The request headers as a JSON object (for `echo_headers`).
fn headers_json(headers: &HeaderMap) -> Value {
    let mut out = serde_json::Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match out.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                out.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    Value::Object(out)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Http {
    fn ctx(&self, sink: Sink, transport: Transport, headers: &HeaderMap) -> Ctx {
        let headers = (self.server.mode == Mode::Test).then(|| Arc::new(headers_json(headers)));
        Ctx {
            sink,
            transport,
            headers,
        }
    }

    /// The session named by the request's `Mcp-Session-Id`.
    fn session(&self, headers: &HeaderMap) -> Result<Arc<Session>, NoSession> {
        let id = header_str(headers, SESSION_HEADER).ok_or(NoSession::Missing)?;
        lock(&self.sessions)
            .get(id)
            .cloned()
            .ok_or(NoSession::Unknown)
    }
}

/// Why a request has no session.
#[derive(Debug, Clone, Copy)]
enum NoSession {
    Missing,
    Unknown,
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        match self {
            NoSession::Missing => rpc_error_response(
                StatusCode::BAD_REQUEST,
                -32600,
                "Bad Request: Mcp-Session-Id header is required",
            ),
            NoSession::Unknown => {
                rpc_error_response(StatusCode::NOT_FOUND, -32001, "Session not found")
            }
        }
    }
}

async fn mcp_post(State(http): State<Arc<Http>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return rpc_error_response(StatusCode::BAD_REQUEST, -32700, "Parse error: not UTF-8");
    };
    http.server.record(text);
    if let Some(v) = headers.get(VERSION_HEADER) {
        let supported = v
            .to_str()
            .ok()
            .and_then(ProtocolVersion::parse)
            .is_some_and(ProtocolVersion::is_session_era);
        if !supported {
            return rpc_error_response(
                StatusCode::BAD_REQUEST,
                -32600,
                "Bad Request: unsupported MCP-Protocol-Version",
            );
        }
    }
    let (messages, batch) = parse_body(text);
    if let (false, [Incoming::Invalid(err)]) = (batch, messages.as_slice()) {
        return json_body(StatusCode::BAD_REQUEST, err.clone());
    }
    let (session, new_id) = if messages.iter().any(Incoming::is_initialize) {
        let id = new_session_id();
        let session = Session::new(Arc::clone(&http.server));
        lock(&http.sessions).insert(id.clone(), Arc::clone(&session));
        (session, Some(id))
    } else {
        match http.session(&headers) {
            Ok(s) => (s, None),
            Err(e) => return e.into_response(),
        }
    };

    let (sink, frames) = Sink::channel();
    let ctx = http.ctx(sink, Transport::StreamableHttp, &headers);
    let mut expected = 0;
    let mut tasks = Vec::new();
    for msg in messages {
        match session.accept(msg, &ctx) {
            Accepted::Spawned(task) => {
                expected += 1;
                tasks.push(task);
            }
            Accepted::Replied => expected += 1,
            Accepted::Absorbed => {}
        }
    }
    // Only the request tasks may keep the channel open.
    drop(ctx);
    if expected == 0 {
        return StatusCode::ACCEPTED.into_response();
    }
    let mut resp = respond(frames, expected, batch, AbortOnDrop(tasks)).await;
    if let Some(id) = new_id {
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert(SESSION_HEADER, v);
        }
    }
    resp
}

/// Waits for the replies of one `POST`: plain JSON if they all come before
/// any other message, else an SSE stream.
async fn respond(
    mut frames: mpsc::UnboundedReceiver<Frame>,
    expected: usize,
    batch: bool,
    tasks: AbortOnDrop,
) -> Response {
    let mut replies: Vec<String> = Vec::with_capacity(expected);
    loop {
        match frames.recv().await {
            // Every task ended without a reply: they were cancelled.
            None if replies.is_empty() => return StatusCode::ACCEPTED.into_response(),
            None => return json_body(StatusCode::OK, join_replies(replies, batch)),
            Some(Frame::Reply(Reply::Response(s))) => {
                replies.push(s);
                if replies.len() == expected {
                    return json_body(StatusCode::OK, join_replies(replies, batch));
                }
            }
            Some(Frame::Reply(Reply::Garbage(s))) => return json_body(StatusCode::OK, s),
            Some(Frame::Reply(Reply::Crash)) => return crash_response(),
            Some(Frame::Message(first)) => {
                let remaining = expected - replies.len();
                let head: Vec<Result<Bytes, std::io::Error>> = replies
                    .iter()
                    .chain(std::iter::once(&first))
                    .map(|m| Ok(event(m)))
                    .collect();
                let tail = request_stream(frames, remaining, tasks);
                return sse_body(Body::from_stream(stream::iter(head).chain(tail)));
            }
        }
    }
}

fn join_replies(replies: Vec<String>, batch: bool) -> String {
    if batch {
        format!("[{}]", replies.join(","))
    } else {
        replies.concat()
    }
}

/// A response whose body fails at once: the connection is dropped, which is
/// what a client sees when the server process dies mid-call.
fn crash_response() -> Response {
    let body = stream::once(async {
        Err::<Bytes, _>(std::io::Error::other("crash tool: dropping the connection"))
    });
    sse_body(Body::from_stream(body))
}

/// The rest of a `POST`'s SSE stream: frames until `remaining` replies.
fn request_stream(
    frames: mpsc::UnboundedReceiver<Frame>,
    remaining: usize,
    tasks: AbortOnDrop,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    stream::unfold(Some((frames, remaining, tasks)), |state| async move {
        let (mut frames, mut remaining, tasks) = state?;
        if remaining == 0 {
            return None;
        }
        match frames.recv().await? {
            Frame::Message(m) => Some((Ok(event(&m)), Some((frames, remaining, tasks)))),
            Frame::Reply(Reply::Response(s) | Reply::Garbage(s)) => {
                remaining -= 1;
                Some((Ok(event(&s)), Some((frames, remaining, tasks))))
            }
            Frame::Reply(Reply::Crash) => Some((
                Err(std::io::Error::other("crash tool: dropping the connection")),
                None,
            )),
        }
    })
}

/// Frames of a long-lived stream (GET `/mcp`, legacy `/sse`) as SSE events,
/// holding `guard` until the client goes away.
fn long_stream<G: Send + 'static>(
    frames: mpsc::UnboundedReceiver<Frame>,
    guard: G,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    stream::unfold(Some((frames, guard)), |state| async move {
        let (mut frames, guard) = state?;
        match frames.recv().await? {
            Frame::Message(m) | Frame::Reply(Reply::Response(m) | Reply::Garbage(m)) => {
                Some((Ok(event(&m)), Some((frames, guard))))
            }
            Frame::Reply(Reply::Crash) => Some((
                Err(std::io::Error::other("crash tool: dropping the connection")),
                None,
            )),
        }
    })
}

/// Releases a session's standalone stream when its GET ends.
struct StandaloneGuard(Arc<Session>, Sink);

impl Drop for StandaloneGuard {
    fn drop(&mut self) {
        self.0.release_standalone(&self.1);
    }
}

async fn mcp_get(State(http): State<Arc<Http>>, headers: HeaderMap) -> Response {
    let session = match http.session(&headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    // Lenient: no Accept at all is taken as "anything".
    let mut accept = headers.get_all(header::ACCEPT).iter().peekable();
    let accepts_sse = accept.peek().is_none()
        || accept.any(|v| {
            v.to_str()
                .is_ok_and(|v| v.contains("text/event-stream") || v.contains("*/*"))
        });
    if !accepts_sse {
        return rpc_error_response(
            StatusCode::NOT_ACCEPTABLE,
            -32600,
            "Not Acceptable: GET /mcp serves text/event-stream",
        );
    }
    let (sink, frames) = Sink::channel();
    if !session.open_standalone(sink.clone()) {
        return rpc_error_response(
            StatusCode::CONFLICT,
            -32600,
            "Conflict: a stream is already open for this session",
        );
    }
    let guard = StandaloneGuard(session, sink);
    sse_body(Body::from_stream(long_stream(frames, guard)))
}

async fn mcp_delete(State(http): State<Arc<Http>>, headers: HeaderMap) -> Response {
    let Some(id) = header_str(&headers, SESSION_HEADER) else {
        return NoSession::Missing.into_response();
    };
    match lock(&http.sessions).remove(id) {
        Some(session) => {
            session.close_standalone();
            StatusCode::OK.into_response()
        }
        None => NoSession::Unknown.into_response(),
    }
}

/// Forgets a legacy session when its SSE stream ends.
struct LegacyGuard {
    http: Arc<Http>,
    id: String,
}

impl Drop for LegacyGuard {
    fn drop(&mut self) {
        lock(&self.http.legacy).remove(&self.id);
    }
}

async fn sse_get(State(http): State<Arc<Http>>) -> Response {
    let id = new_session_id();
    let session = Session::new(Arc::clone(&http.server));
    let (sink, frames) = Sink::channel();
    session.open_standalone(sink.clone());
    lock(&http.legacy).insert(id.clone(), LegacySession { session, sink });
    let endpoint = sse::encode(None, Some("endpoint"), &format!("/messages?sessionId={id}"));
    let guard = LegacyGuard {
        http: Arc::clone(&http),
        id,
    };
    let head = stream::once(async move { Ok(Bytes::from(endpoint)) });
    sse_body(Body::from_stream(head.chain(long_stream(frames, guard))))
}

async fn messages_post(
    State(http): State<Arc<Http>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let entry = query
        .get("sessionId")
        .and_then(|id| lock(&http.legacy).get(id).cloned());
    let Some(entry) = entry else {
        return rpc_error_response(StatusCode::NOT_FOUND, -32001, "Session not found");
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return rpc_error_response(StatusCode::BAD_REQUEST, -32700, "Parse error: not UTF-8");
    };
    http.server.record(text);
    let (messages, _batch) = parse_body(text);
    let ctx = http.ctx(entry.sink.clone(), Transport::LegacySse, &headers);
    for msg in messages {
        entry.session.accept(msg, &ctx);
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
