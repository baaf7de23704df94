//! Streamable HTTP upstreams against a fake server (axum on 127.0.0.1:0).

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use warden_upstream::{TransportSpec, Upstream, UpstreamError, UpstreamEvent, UpstreamState};

use crate::support::{call, events, handshake, next_event, spec};

const LONG: Duration = Duration::from_secs(30);

/// What one POST carried.
#[derive(Debug, Clone)]
pub struct Seen {
    pub session: Option<String>,
    pub protocol_version: Option<String>,
    pub auth: Option<String>,
    pub accept: Option<String>,
    pub body: String,
}

#[derive(Default)]
pub struct Fake {
    /// Whether GET opens a standalone stream (else 405).
    get_stream: bool,
    sessions: Mutex<HashSet<String>>,
    next_session: AtomicU64,
    pub inits: AtomicU64,
    pub posts: Mutex<Vec<Seen>>,
    pub deletes: Mutex<Vec<String>>,
    pub last_event_ids: Mutex<Vec<String>>,
    /// The id of a request whose response waits for a resumption GET.
    resume: Mutex<Option<Value>>,
    /// Pushes events into the open standalone GET stream.
    get_tx: Mutex<Option<mpsc::Sender<Result<Bytes, Infallible>>>>,
    /// Set once the reply stream of a `hang` request could no longer be
    /// written: the client closed it.
    pub hang_closed: tokio::sync::Notify,
}

impl Fake {
    pub fn expire_sessions(&self) {
        self.sessions.lock().unwrap().clear();
    }

    pub fn posts_with(&self, needle: &str) -> Vec<Seen> {
        let posts = self.posts.lock().unwrap();
        posts
            .iter()
            .filter(|p| p.body.contains(needle))
            .cloned()
            .collect()
    }

    async fn push(&self, event: String) {
        let tx = self.get_tx.lock().unwrap().clone();
        let tx = tx.expect("no GET stream open");
        tx.send(Ok(Bytes::from(event))).await.unwrap();
    }

    async fn wait_for_get_stream(&self) {
        for _ in 0..250 {
            if self.get_tx.lock().unwrap().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no GET stream opened");
    }
}

pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

async fn start(get_stream: bool) -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake {
        get_stream,
        ..Fake::default()
    });
    let app = Router::new()
        .route("/mcp", post(on_post).get(on_get).delete(on_delete))
        .with_state(fake.clone());
    (format!("{}/mcp", serve(app).await), fake)
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn json(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

fn status(status: StatusCode) -> Response {
    Response::builder()
        .status(status)
        .body(Body::empty())
        .unwrap()
}

fn sse(chunks: Vec<String>) -> Response {
    let stream = futures::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, Infallible>(Bytes::from(c))),
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn result(id: &Value, result: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)
}

async fn on_post(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: String) -> Response {
    let msg: Value = serde_json::from_str(&body).unwrap();
    let session = header(&headers, "mcp-session-id");
    fake.posts.lock().unwrap().push(Seen {
        session: session.clone(),
        protocol_version: header(&headers, "mcp-protocol-version"),
        auth: header(&headers, "authorization"),
        accept: header(&headers, "accept"),
        body: body.clone(),
    });
    let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    if method == "initialize" {
        let n = fake.next_session.fetch_add(1, Ordering::SeqCst);
        let sid = format!("session-{n}");
        fake.sessions.lock().unwrap().insert(sid.clone());
        fake.inits.fetch_add(1, Ordering::SeqCst);
        let mut resp = json(
            StatusCode::OK,
            result(
                &id,
                r#"{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"fake-http","version":"1"}}"#,
            ),
        );
        resp.headers_mut()
            .insert("mcp-session-id", sid.parse().unwrap());
        return resp;
    }
    if !session.is_some_and(|s| fake.sessions.lock().unwrap().contains(&s)) {
        return status(StatusCode::NOT_FOUND);
    }
    if msg.get("method").is_none() || id.is_null() {
        // A notification or a response.
        return status(StatusCode::ACCEPTED);
    }
    match method {
        "echo" => json(StatusCode::OK, result(&id, &format!(r#"{{"echo":{body}}}"#))),
        "stream" => sse(vec![
            ": a comment\n\n".into(),
            format!(
                "data: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{{\"progressToken\":{id},\"progress\":1}}}}\n\n"
            ),
            // Invalid: dropped and logged, not fatal.
            "data: {\"jsonrpc\":\"2.0\",\"method\":\"x\",\"method\":\"y\"}\n\n".into(),
            "event: message\ndata: ".to_owned() + &result(&id, r#"{"streamed":true}"#) + "\n\n",
        ]),
        "resume" => {
            *fake.resume.lock().unwrap() = Some(id.clone());
            sse(vec![
                // A priming event: an id and empty data.
                "id: r0\ndata:\n\n".into(),
                "id: r1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"data\":\"before resume\"}}\n\n".into(),
            ])
        }
        "cut" => sse(vec![
            "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n".into(),
        ]),
        // A reply stream that never answers: a comment every 20 ms until
        // a write fails because the client closed it.
        "hang" => {
            let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(1);
            let fake = fake.clone();
            tokio::spawn(async move {
                while tx.send(Ok(Bytes::from_static(b": waiting\n\n"))).await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                fake.hang_closed.notify_one();
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(ReceiverStream::new(rx)))
                .unwrap()
        }
        "status500" => status(StatusCode::INTERNAL_SERVER_ERROR),
        _ => json(
            StatusCode::OK,
            format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"no"}}}}"#),
        ),
    }
}

async fn on_get(State(fake): State<Arc<Fake>>, headers: HeaderMap) -> Response {
    let session = header(&headers, "mcp-session-id");
    if !session.is_some_and(|s| fake.sessions.lock().unwrap().contains(&s)) {
        return status(StatusCode::NOT_FOUND);
    }
    if let Some(last) = header(&headers, "last-event-id") {
        fake.last_event_ids.lock().unwrap().push(last);
        if let Some(id) = fake.resume.lock().unwrap().take() {
            return sse(vec![format!(
                "id: r2\ndata: {}\n\n",
                result(&id, r#"{"resumed":true}"#)
            )]);
        }
    }
    if !fake.get_stream {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let (tx, rx) = mpsc::channel(16);
    *fake.get_tx.lock().unwrap() = Some(tx);
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .unwrap()
}

async fn on_delete(State(fake): State<Arc<Fake>>, headers: HeaderMap) -> Response {
    if let Some(s) = header(&headers, "mcp-session-id") {
        fake.sessions.lock().unwrap().remove(&s);
        fake.deletes.lock().unwrap().push(s);
    }
    status(StatusCode::OK)
}

fn http(url: &str) -> TransportSpec {
    TransportSpec::StreamableHttp {
        url: url.to_owned(),
        headers: vec![
            ("Authorization".into(), "Bearer upstream-token".into()),
            // Warden's own protocol headers win over configured ones.
            ("Accept".into(), "text/html".into()),
        ],
    }
}

#[tokio::test]
async fn handshake_then_json_request() {
    let (url, fake) = start(false).await;
    let (tx, _rx) = events();
    let up = Upstream::start(spec("web", http(&url)), handshake(), tx);
    let info = up.ready().await.expect("ready");
    assert_eq!(info.protocol_version, "2025-06-18");
    assert_eq!(info.generation, 1);
    assert!(info.result.contains("fake-http"));

    let resp = up.request(call("echo"), LONG).await.expect("echo");
    assert!(
        resp.text.contains(r#""echo":{"jsonrpc":"2.0""#),
        "{}",
        resp.text
    );

    let init = &fake.posts_with("\"initialize\"")[0];
    assert_eq!(init.session, None);
    assert_eq!(init.protocol_version, None);
    assert_eq!(init.auth.as_deref(), Some("Bearer upstream-token"));
    for later in [
        fake.posts_with("notifications/initialized"),
        fake.posts_with("\"echo\""),
    ] {
        assert_eq!(later[0].session.as_deref(), Some("session-0"));
        assert_eq!(later[0].protocol_version.as_deref(), Some("2025-06-18"));
        assert_eq!(later[0].auth.as_deref(), Some("Bearer upstream-token"));
        assert_eq!(
            later[0].accept.as_deref(),
            Some("application/json, text/event-stream")
        );
    }
}

/// The caller's task drives an HTTP call's exchange: a call given up (its
/// timeout, or its future dropped) must close the reply stream it was
/// reading, not leave it open in the background.
#[tokio::test]
async fn a_call_given_up_closes_its_reply_stream() {
    let (url, fake) = start(false).await;
    let (tx, _rx) = events();
    let up = Upstream::start(spec("web", http(&url)), handshake(), tx);
    up.ready().await.expect("ready");
    let closed = fake.hang_closed.notified();
    let outcome = up.request(call("hang"), Duration::from_millis(300)).await;
    assert!(
        matches!(outcome, Err(UpstreamError::Timeout)),
        "{outcome:?}"
    );
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the reply stream of the abandoned call was closed");
    // The connection still serves the next call.
    up.request(call("echo"), LONG).await.expect("echo");
}

#[tokio::test]
async fn concurrent_http_requests() {
    let (url, _fake) = start(false).await;
    let (tx, _rx) = events();
    let up = Upstream::start(spec("web", http(&url)), handshake(), tx);
    let calls = (0..20).map(|_| up.request(call("echo"), LONG));
    for resp in futures::future::join_all(calls).await {
        let resp = resp.expect("echo");
        assert!(resp
            .text
            .contains(&format!(r#""echo":{{"jsonrpc":"2.0","id":{},"#, resp.id)));
    }
}

#[tokio::test]
async fn sse_reply_with_an_interleaved_notification() {
    let (url, _fake) = start(false).await;
    let (tx, mut rx) = events();
    let up = Upstream::start(spec("web", http(&url)), handshake(), tx);
    let resp = up.request(call("stream"), LONG).await.expect("stream");
    assert_eq!(
        resp.text,
        format!(
            r#"{{"jsonrpc":"2.0","id":{},"result":{{"streamed":true}}}}"#,
            resp.id
        )
    );
    let ev = next_event(&mut rx, |e| matches!(e, UpstreamEvent::Message { .. })).await;
    assert_eq!(
        ev,
        UpstreamEvent::Message {
            server: "web".into(),
            text: format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":{},"progress":1}}}}"#,
                resp.id
            ),
            related_to: Some(resp.id),
        }
    );
    // The invalid event was dropped, not delivered.
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn reply_stream_resumes_with_last_event_id() {
    let (url, fake) = start(false).await;
    let (tx, mut rx) = events();
    let up = Upstream::start(spec("web", http(&url)), handshake(), tx);
    let resp = up.request(call("resume"), LONG).await.expect("resume");
    assert!(resp.text.contains(r#""resumed":true"#), "{}", resp.text);
    assert_eq!(*fake.last_event_ids.lock().unwrap(), vec!["r1".to_owned()]);
    let ev = next_event(&mut rx, |e| matches!(e, UpstreamEvent::Message { .. })).await;
    assert!(matches!(ev, UpstreamEvent::Message { related_to, .. } if related_to == Some(resp.id)));
}

#[tokio::test]
async fn reply_stream_ending_without_response_fails_closed() {
    let (url, _fake) = start(false).await;
    let (tx, _rx) = events();
    let up = Upstream::start(spec("web", http(&url)), handshake(), tx);
    let err = up
        .request(call("cut"), LONG)
        .await
        .expect_err("no response");
    assert!(matches!(err, UpstreamError::Closed(_)), "{err:?}");
    let err = up.request(call("status500"), LONG).await.expect_err("500");
    assert_eq!(err, UpstreamError::Http(500));
    up.request(call("echo"), LONG).await.expect("still fine");
}

#[tokio::test]
async fn expired_session_reinitializes_and_retries_once() {
    let (url, fake) = start(false).await;
    let (tx, mut rx) = events();
    let up = Upstream::start(spec("web", http(&url)), handshake(), tx);
    up.ready().await.expect("ready");
    fake.expire_sessions();
    let resp = up.request(call("echo"), LONG).await.expect("retried echo");
    assert!(resp.text.contains("echo"));
    assert_eq!(fake.inits.load(Ordering::SeqCst), 2);
    let echoes = fake.posts_with("\"echo\"");
    assert_eq!(echoes.len(), 2, "one 404, one retry");
    assert_eq!(echoes[0].session.as_deref(), Some("session-0"));
    assert_eq!(echoes[1].session.as_deref(), Some("session-1"));
    assert_eq!(echoes[0].body, echoes[1].body, "the same bytes are retried");
    let ev = next_event(&mut rx, |e| matches!(e, UpstreamEvent::Restarted { .. })).await;
    assert_eq!(
        ev,
        UpstreamEvent::Restarted {
            server: "web".into(),
            generation: 2
        }
    );
    assert_eq!(up.ready().await.unwrap().generation, 2);
}

#[tokio::test]
async fn get_stream_carries_server_requests_and_respond_posts_the_answer() {
    let (url, fake) = start(true).await;
    let (tx, mut rx) = events();
    let up = Upstream::start(spec("web", http(&url)), handshake(), tx);
    up.ready().await.expect("ready");
    fake.wait_for_get_stream().await;
    let ask = r#"{"jsonrpc":"2.0","id":"q7","method":"sampling/createMessage","params":{}}"#;
    fake.push(format!("data: {ask}\n\n")).await;
    let ev = next_event(&mut rx, |e| matches!(e, UpstreamEvent::Message { .. })).await;
    assert_eq!(
        ev,
        UpstreamEvent::Message {
            server: "web".into(),
            text: ask.into(),
            related_to: None,
        }
    );
    let answer = r#"{"jsonrpc":"2.0","id":"q7","result":{"content":{"type":"text","text":"hi"}}}"#;
    up.respond(answer.into()).await.expect("respond");
    let posted = fake.posts_with(r#""id":"q7""#);
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].body, answer);
    assert_eq!(posted[0].session.as_deref(), Some("session-0"));

    up.notify(r#"{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}"#.into())
        .await
        .expect("notify");
    assert_eq!(fake.posts_with("roots/list_changed").len(), 1);
}

#[tokio::test]
async fn shutdown_deletes_the_session() {
    let (url, fake) = start(false).await;
    let (tx, _rx) = events();
    let up = Upstream::start(spec("web", http(&url)), handshake(), tx);
    up.ready().await.expect("ready");
    up.shutdown().await;
    assert_eq!(up.state(), UpstreamState::Closed);
    assert_eq!(*fake.deletes.lock().unwrap(), vec!["session-0".to_owned()]);
}

#[tokio::test]
async fn unreachable_server_fails_ready() {
    // A port nothing listens on: bind, note it, close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    drop(listener);
    let (tx, _rx) = events();
    let up = Upstream::start(spec("gone", http(&url)), handshake(), tx);
    let err = up.ready().await.expect_err("nothing listens");
    assert!(matches!(err, UpstreamError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn invalid_url_fails_permanently() {
    let (tx, _rx) = events();
    let up = Upstream::start(spec("bad", http("ftp://example.invalid/")), handshake(), tx);
    let err = up.ready().await.expect_err("bad url");
    assert!(matches!(err, UpstreamError::Config(_)), "{err:?}");
    assert_eq!(up.state(), UpstreamState::Failed);
}

#[tokio::test]
async fn get_stream_reconnects_with_last_event_id() {
    let (url, fake) = start(true).await;
    let (tx, mut rx) = events();
    let up = Upstream::start(spec("web", http(&url)), handshake(), tx);
    up.ready().await.expect("ready");
    fake.wait_for_get_stream().await;
    let note = r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#;
    fake.push(format!("id: g1\nretry: 50\ndata: {note}\n\n"))
        .await;
    next_event(
        &mut rx,
        |e| matches!(e, UpstreamEvent::Message { text, .. } if text == note),
    )
    .await;
    // The server drops the stream; Warden comes back with the last id.
    fake.get_tx.lock().unwrap().take();
    for _ in 0..250 {
        if !fake.last_event_ids.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(*fake.last_event_ids.lock().unwrap(), vec!["g1".to_owned()]);
    fake.wait_for_get_stream().await;
    fake.push(format!("id: g2\ndata: {note}\n\n")).await;
    next_event(
        &mut rx,
        |e| matches!(e, UpstreamEvent::Message { text, .. } if text == note),
    )
    .await;
}

#[tokio::test]
async fn concurrent_404s_reinitialize_once() {
    let (url, fake) = start(false).await;
    let (tx, _rx) = events();
    let up = Upstream::start(spec("web", http(&url)), handshake(), tx);
    up.ready().await.expect("ready");
    fake.expire_sessions();
    let calls = (0..8).map(|_| up.request(call("echo"), LONG));
    for resp in futures::future::join_all(calls).await {
        resp.expect("retried echo");
    }
    assert_eq!(fake.inits.load(Ordering::SeqCst), 2);
    assert_eq!(up.ready().await.unwrap().generation, 2);
}
