//! `run_http` on 127.0.0.1:0, driven by a plain hyper client.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use warden_protocol::sse;

use crate::{run_http, Mode, Options};

async fn start(mode: Mode) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(run_http(mode, Options::default(), listener));
    addr
}

/// Sends one request on a fresh connection.
async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response<Incoming> {
    try_send(addr, method, path, headers, body).await.unwrap()
}

async fn try_send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> hyper::Result<Response<Incoming>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("accept"))
    {
        req = req.header("accept", "application/json, text/event-stream");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    sender.send_request(req).await
}

async fn text(resp: Response<Incoming>) -> String {
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// Reads SSE events from a streaming body, one at a time.
struct Events {
    body: Incoming,
    decoder: sse::Decoder,
    ready: std::collections::VecDeque<sse::Event>,
}

impl Events {
    fn new(resp: Response<Incoming>) -> Events {
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Events {
            body: resp.into_body(),
            decoder: sse::Decoder::new(1 << 20),
            ready: Default::default(),
        }
    }

    async fn next(&mut self) -> Option<sse::Event> {
        loop {
            if let Some(ev) = self.ready.pop_front() {
                return Some(ev);
            }
            let frame = tokio::time::timeout(Duration::from_secs(5), self.body.frame())
                .await
                .expect("no event within 5 s")?
                .ok()?;
            if let Ok(data) = frame.into_data() {
                self.ready.extend(self.decoder.feed(&data).unwrap());
            }
        }
    }

    async fn next_json(&mut self) -> Value {
        let ev = self.next().await.expect("stream ended");
        serde_json::from_str(&ev.data).unwrap()
    }
}

fn call(id: u64, tool: &str, args: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": tool, "arguments": args } })
    .to_string()
}

/// Initializes a Streamable HTTP session and returns its id.
async fn initialize(addr: SocketAddr) -> String {
    let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": { "sampling": {} },
        "clientInfo": { "name": "t", "version": "0" } } });
    let resp = send(addr, Method::POST, "/mcp", &[], &init.to_string()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let sid = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = serde_json::from_str(&text(resp).await).unwrap();
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18");
    let resp = send(
        addr,
        Method::POST,
        "/mcp",
        &[
            ("mcp-session-id", &sid),
            ("mcp-protocol-version", "2025-06-18"),
        ],
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    sid
}

#[tokio::test]
async fn streamable_http_sessions_json_and_sse() {
    let addr = start(Mode::Test).await;
    let sid = initialize(addr).await;
    let h = [("mcp-session-id", sid.as_str())];

    // A plain call answers with JSON.
    let resp = send(
        addr,
        Method::POST,
        "/mcp",
        &h,
        &call(1, "echo", json!({ "message": "hi" })),
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_str(&text(resp).await).unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "hi");

    // Progress turns the answer into an SSE stream that ends after the reply.
    let body = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "progress", "arguments": { "steps": 2 }, "_meta": { "progressToken": 9 } } });
    let resp = send(addr, Method::POST, "/mcp", &h, &body.to_string()).await;
    let mut events = Events::new(resp);
    assert_eq!(events.next_json().await["params"]["progress"], 1);
    assert_eq!(events.next_json().await["params"]["progress"], 2);
    assert_eq!(events.next_json().await["id"], 2);
    assert!(events.next().await.is_none());

    // A server-to-client request travels on the POST's stream; the answer
    // comes back in a POST of its own.
    let resp = send(
        addr,
        Method::POST,
        "/mcp",
        &h,
        &call(3, "sample", json!({ "prompt": "p" })),
    )
    .await;
    let mut events = Events::new(resp);
    let ask = events.next_json().await;
    assert_eq!(ask["method"], "sampling/createMessage");
    let answer = json!({ "jsonrpc": "2.0", "id": ask["id"], "result": {
        "role": "assistant", "content": { "type": "text", "text": "from client" }, "model": "m" } });
    let resp = send(addr, Method::POST, "/mcp", &h, &answer.to_string()).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let reply = events.next_json().await;
    assert_eq!(reply["result"]["content"][0]["text"], "from client");

    // The headers the server saw.
    let resp = send(
        addr,
        Method::POST,
        "/mcp",
        &[("mcp-session-id", &sid), ("x-probe", "seen")],
        &call(4, "echo_headers", json!({})),
    )
    .await;
    let body: Value = serde_json::from_str(&text(resp).await).unwrap();
    let seen: Value =
        serde_json::from_str(body["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(seen["x-probe"], "seen");

    // Garbage is a body that is not JSON.
    let resp = send(
        addr,
        Method::POST,
        "/mcp",
        &h,
        &call(5, "garbage", json!({})),
    )
    .await;
    assert!(serde_json::from_str::<Value>(&text(resp).await).is_err());

    // Crash drops the connection mid-response.
    let crashed = match try_send(addr, Method::POST, "/mcp", &h, &call(6, "crash", json!({}))).await
    {
        Ok(resp) => resp.into_body().collect().await.is_err(),
        Err(e) => e.is_incomplete_message(),
    };
    assert!(crashed);

    // Session errors.
    let resp = send(
        addr,
        Method::POST,
        "/mcp",
        &[],
        &call(7, "echo", json!({ "message": "x" })),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = send(
        addr,
        Method::POST,
        "/mcp",
        &[("mcp-session-id", "nope")],
        &call(8, "echo", json!({ "message": "x" })),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = send(
        addr,
        Method::POST,
        "/mcp",
        &[
            ("mcp-session-id", &sid),
            ("mcp-protocol-version", "1999-01-01"),
        ],
        &call(9, "echo", json!({ "message": "x" })),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = send(addr, Method::POST, "/mcp", &h, "{nope").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // The standalone GET stream: one per session.
    let get = send(addr, Method::GET, "/mcp", &h, "").await;
    assert_eq!(get.headers()["content-type"], "text/event-stream");
    let second = send(addr, Method::GET, "/mcp", &h, "").await;
    assert_eq!(second.status(), StatusCode::CONFLICT);
    let json_only = send(
        addr,
        Method::GET,
        "/mcp",
        &[("mcp-session-id", &sid), ("accept", "application/json")],
        "",
    )
    .await;
    assert_eq!(json_only.status(), StatusCode::NOT_ACCEPTABLE);
    drop(get);

    let resp = send(addr, Method::DELETE, "/mcp", &h, "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = send(
        addr,
        Method::POST,
        "/mcp",
        &h,
        &call(10, "echo", json!({ "message": "x" })),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn whoami_counts_initializations_across_sessions() {
    let addr = start(Mode::Test).await;
    initialize(addr).await;
    let sid = initialize(addr).await;
    let resp = send(
        addr,
        Method::POST,
        "/mcp",
        &[("mcp-session-id", &sid)],
        &call(1, "whoami", json!({})),
    )
    .await;
    let body: Value = serde_json::from_str(&text(resp).await).unwrap();
    assert_eq!(body["result"]["structuredContent"]["initializeCount"], 2);
}

#[tokio::test]
async fn legacy_http_sse() {
    let addr = start(Mode::Demo).await;
    let resp = send(addr, Method::GET, "/sse", &[], "").await;
    let mut events = Events::new(resp);
    let endpoint = events.next().await.unwrap();
    assert_eq!(endpoint.event.as_deref(), Some("endpoint"));
    assert!(endpoint.data.starts_with("/messages?sessionId="));

    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": { "name": "t", "version": "0" } } });
    let resp = send(addr, Method::POST, &endpoint.data, &[], &init.to_string()).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let ev = events.next().await.unwrap();
    assert_eq!(ev.event.as_deref(), Some("message"));
    let reply: Value = serde_json::from_str(&ev.data).unwrap();
    assert_eq!(reply["result"]["protocolVersion"], "2024-11-05");

    let resp = send(
        addr,
        Method::POST,
        &endpoint.data,
        &[],
        &call(2, "notes_get", json!({ "id": "n1" })),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let reply = events.next_json().await;
    assert_eq!(
        reply["result"]["structuredContent"]["title"],
        "Welcome: onboarding checklist"
    );

    let resp = send(
        addr,
        Method::POST,
        "/messages?sessionId=unknown",
        &[],
        &call(3, "x", json!({})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
