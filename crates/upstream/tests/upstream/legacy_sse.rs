//! Legacy HTTP+SSE upstreams against a fake 2024-11-05 server.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use warden_upstream::{TransportSpec, Upstream, UpstreamError, UpstreamEvent, UpstreamState};

use crate::http::serve;
use crate::support::{call, events, handshake, next_event, spec};

const LONG: Duration = Duration::from_secs(30);

type Tx = mpsc::Sender<Result<Bytes, Infallible>>;

#[derive(Default)]
struct Fake {
    streams: Mutex<HashMap<String, Tx>>,
    next: AtomicU64,
    connects: AtomicU64,
}

async fn start() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/sse", get(on_sse))
        .route("/evil-sse", get(on_evil_sse))
        .route("/messages", post(on_message))
        .with_state(fake.clone());
    (serve(app).await, fake)
}

fn event_stream(rx: mpsc::Receiver<Result<Bytes, Infallible>>) -> Response {
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .unwrap()
}

async fn on_sse(State(fake): State<Arc<Fake>>) -> Response {
    let n = fake.next.fetch_add(1, Ordering::SeqCst);
    fake.connects.fetch_add(1, Ordering::SeqCst);
    let sid = format!("c{n}");
    let (tx, rx) = mpsc::channel(16);
    tx.send(Ok(Bytes::from(format!(
        "event: endpoint\ndata: /messages?sessionId={sid}\n\n"
    ))))
    .await
    .unwrap();
    fake.streams.lock().unwrap().insert(sid, tx);
    event_stream(rx)
}

async fn on_evil_sse() -> Response {
    let (tx, rx) = mpsc::channel(1);
    tx.send(Ok(Bytes::from(
        "event: endpoint\ndata: http://evil.example/messages\n\n",
    )))
    .await
    .unwrap();
    // Keep the stream open until the client hangs up.
    tokio::spawn(async move { tx.closed().await });
    event_stream(rx)
}

async fn on_message(
    State(fake): State<Arc<Fake>>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let sid = q.get("sessionId").cloned().unwrap_or_default();
    let Some(tx) = fake.streams.lock().unwrap().get(&sid).cloned() else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::empty())
            .unwrap();
    };
    let msg: Value = serde_json::from_str(&body).unwrap();
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
    let replies = match method {
        "initialize" => vec![format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"protocolVersion":"2024-11-05","capabilities":{{}},"serverInfo":{{"name":"fake-sse","version":"1"}}}}}}"#
        )],
        "echo" => vec![
            r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"echoing"}}"#
                .to_owned(),
            format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"echo":{body}}}}}"#),
        ],
        "hangup" => {
            // Drop the stream: the connection is gone.
            fake.streams.lock().unwrap().remove(&sid);
            Vec::new()
        }
        _ => Vec::new(),
    };
    for reply in replies {
        let _ = tx
            .send(Ok(Bytes::from(format!(
                "event: message\ndata: {reply}\n\n"
            ))))
            .await;
    }
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .body(Body::from("Accepted"))
        .unwrap()
}

fn sse(url: String) -> TransportSpec {
    TransportSpec::Sse {
        url,
        headers: Vec::new(),
    }
}

#[tokio::test]
async fn endpoint_flow_handshake_and_request() {
    let (base, _fake) = start().await;
    let (tx, mut rx) = events();
    let up = Upstream::start(spec("legacy", sse(format!("{base}/sse"))), handshake(), tx);
    let info = up.ready().await.expect("ready");
    assert_eq!(info.protocol_version, "2024-11-05");
    let resp = up.request(call("echo"), LONG).await.expect("echo");
    assert!(
        resp.text.contains(r#""echo":{"jsonrpc":"2.0""#),
        "{}",
        resp.text
    );
    let ev = next_event(&mut rx, |e| matches!(e, UpstreamEvent::Message { .. })).await;
    assert!(
        matches!(&ev, UpstreamEvent::Message { text, related_to: None, .. } if text.contains("echoing")),
        "{ev:?}"
    );
}

#[tokio::test]
async fn cross_origin_endpoint_is_refused() {
    let (base, _fake) = start().await;
    let (tx, _rx) = events();
    let up = Upstream::start(
        spec("evil", sse(format!("{base}/evil-sse"))),
        handshake(),
        tx,
    );
    let err = up.ready().await.expect_err("must refuse");
    assert!(err.to_string().contains("another origin"), "{err}");
    assert_ne!(up.state(), UpstreamState::Ready);
}

#[tokio::test]
async fn stream_drop_fails_pending_and_reconnects() {
    let (base, fake) = start().await;
    let (tx, mut rx) = events();
    let up = Upstream::start(spec("legacy", sse(format!("{base}/sse"))), handshake(), tx);
    up.ready().await.expect("ready");
    let started = Instant::now();
    let err = up
        .request(call("hangup"), LONG)
        .await
        .expect_err("stream gone");
    assert!(matches!(err, UpstreamError::Closed(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    next_event(&mut rx, |e| matches!(e, UpstreamEvent::Down { .. })).await;
    let ev = next_event(&mut rx, |e| matches!(e, UpstreamEvent::Restarted { .. })).await;
    assert!(matches!(ev, UpstreamEvent::Restarted { generation: 2, .. }));
    up.request(call("echo"), LONG)
        .await
        .expect("echo after reconnect");
    assert_eq!(fake.connects.load(Ordering::SeqCst), 2);
}
