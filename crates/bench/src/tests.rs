//! The bench against `warden-example-server` started in-process (session
//! clients), and against a stub 2026-07-28 server that runs the protocol
//! crate's ladder on every request (modern clients).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use clap::Parser as _;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use warden_example_server::{run_http, Mode, Options};
use warden_protocol::message;
use warden_protocol::modern::{self, RoutingHeaders};

use super::*;

async fn start(mode: Mode) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(run_http(mode, Options::default(), listener));
    addr
}

fn plan(extra: &[&str]) -> Plan {
    let mut argv = vec![
        "warden-bench",
        "--duration",
        "300ms",
        "--warmup",
        "50ms",
        "--timeout",
        "5s",
    ];
    argv.extend_from_slice(extra);
    Plan::resolve(&Args::try_parse_from(argv).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_the_echo_server_and_compares_targets() {
    let a = start(Mode::Echo).await;
    let b = start(Mode::Echo).await;
    let (ta, tb) = (
        format!("direct=http://{a}/mcp"),
        format!("other=http://{b}/mcp"),
    );
    let plan = plan(&["--target", &ta, "--target", &tb, "--concurrency", "1,4"]);
    let mut seen = Vec::new();
    let report = run(&plan, |l| seen.push(l.to_owned())).await.unwrap();
    assert_eq!(seen.len(), 4);
    assert_eq!(report.rows.len(), 4);
    let order: Vec<(&str, usize)> = report
        .rows
        .iter()
        .map(|r| (r.target.as_str(), r.concurrency))
        .collect();
    assert_eq!(
        order,
        [("direct", 1), ("other", 1), ("direct", 4), ("other", 4)]
    );
    for row in &report.rows {
        assert!(row.requests > 10, "{row:?}");
        assert_eq!(row.errors, 0, "{row:?}");
        assert!(row.p50_ms.unwrap() <= row.p99_ms.unwrap());
        assert!(row.throughput_ratio.is_some() && row.p50_ratio.is_some());
    }
    assert_eq!(report.rows[0].throughput_ratio, Some(1.0));
    assert!(report.to_table().contains("direct"));
}

#[tokio::test]
async fn reads_sse_responses() {
    // change_tools sends a notification before its reply, so the answer
    // comes back as an event stream.
    let addr = start(Mode::Test).await;
    let t = format!("test=http://{addr}/mcp");
    let plan = plan(&[
        "--target",
        &t,
        "--concurrency",
        "2",
        "--tool",
        "change_tools",
        "--args",
        "{}",
    ]);
    let report = run(&plan, |_| {}).await.unwrap();
    assert!(report.rows[0].requests > 0);
    assert_eq!(report.rows[0].errors, 0, "{:?}", report.rows[0].first_error);
}

#[tokio::test]
async fn a_failing_tool_is_reported_before_measuring() {
    let addr = start(Mode::Demo).await;
    let t = format!("demo=http://{addr}/mcp");
    let failing = plan(&[
        "--target",
        &t,
        "--concurrency",
        "1",
        "--tool",
        "notes_get",
        "--args",
        r#"{"id":"nope"}"#,
    ]);
    let err = run(&failing, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("isError"), "{err}");
    let unknown = plan(&[
        "--target",
        &t,
        "--concurrency",
        "1",
        "--tool",
        "no_such_tool",
    ]);
    let err = run(&unknown, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("-32602"), "{err}");
    // The same tool under another name at this target works.
    let renamed = plan(&[
        "--target",
        &t,
        "--concurrency",
        "1",
        "--tool",
        "no_such_tool",
        "--target-tool",
        "demo=notes_get",
        "--args",
        r#"{"id":"n1"}"#,
    ]);
    let report = run(&renamed, |_| {}).await.unwrap();
    assert_eq!(report.rows[0].errors, 0);
}

#[tokio::test]
async fn errors_during_the_window_are_counted() {
    // The probe deletes the ticket; every later delete is a tool failure.
    let addr = start(Mode::Demo).await;
    let t = format!("demo=http://{addr}/mcp");
    let p = plan(&[
        "--target",
        &t,
        "--concurrency",
        "2",
        "--tool",
        "tickets_delete",
        "--args",
        r#"{"id":"T-101"}"#,
    ]);
    let report = run(&p, |_| {}).await.unwrap();
    let row = &report.rows[0];
    assert_eq!(row.requests, 0);
    assert!(row.errors > 0);
    assert!(row.first_error.as_deref().unwrap().contains("isError"));
    // No baseline throughput to compare with.
    assert_eq!(row.throughput_ratio, None);
}

#[tokio::test]
async fn an_unreachable_target_is_a_setup_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let t = format!("gone=http://{addr}/mcp");
    let err = run(&plan(&["--target", &t, "--concurrency", "1"]), |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("gone"), "{err}");
}

/// What the stub 2026-07-28 server saw.
#[derive(Default)]
struct Seen {
    calls: AtomicU64,
    /// Requests that were not a well-formed 2026-07-28 `tools/call`.
    refused: AtomicU64,
}

/// A 2026-07-28 server: every request must pass `modern::classify` (the
/// ladder Warden runs) and carry no session id. Tools: `echo` answers JSON,
/// `echo_sse` an event stream with a notification first, `needs_input` an
/// `input_required` result, `über` (a name sent base64 in `Mcp-Name`)
/// JSON; anything else is a JSON-RPC error.
async fn start_modern() -> (SocketAddr, Arc<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let state = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = Arc::clone(&state);
            let service = hyper::service::service_fn(move |req| {
                let seen = Arc::clone(&seen);
                async move { Ok::<_, Infallible>(answer(req, &seen).await) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (addr, seen)
}

async fn answer(req: Request<hyper::body::Incoming>, seen: &Seen) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (version, method, name) = (
        header(modern::HEADER_PROTOCOL_VERSION),
        header(modern::HEADER_METHOD),
        header(modern::HEADER_NAME),
    );
    let has_session = req.headers().contains_key("mcp-session-id");
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let refuse = |status: u16, code: i64| {
        seen.refused.fetch_add(1, Ordering::Relaxed);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":{code},"message":"refused"}}}}"#
        );
        reply(status, "application/json", body)
    };
    let Ok(message::Incoming::Single(msg)) =
        message::parse(&text, &warden_protocol::Limits::default(), false)
    else {
        return refuse(400, -32700);
    };
    let headers = RoutingHeaders {
        protocol_version: version.as_deref(),
        method: method.as_deref(),
        name: name.as_deref(),
    };
    if let Err(r) = modern::classify(&msg, &headers) {
        return refuse(r.http_status(), r.code.code());
    }
    if has_session || msg.method() != "tools/call" {
        return refuse(400, -32600);
    }
    seen.calls.fetch_add(1, Ordering::Relaxed);
    let id = msg.id.as_ref().map_or("null", |id| id.raw());
    let result = |extra: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"hi"}}]{extra}}}}}"#
        )
    };
    match msg.param_str("name").as_deref() {
        Some("echo" | "über") => reply(
            200,
            "application/json",
            result(r#","resultType":"complete""#),
        ),
        Some("echo_sse") => {
            let note = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#;
            let body = format!(
                "event: message\ndata: {note}\n\nevent: message\ndata: {}\n\n",
                result("")
            );
            reply(200, "text/event-stream", body)
        }
        Some("needs_input") => reply(
            200,
            "application/json",
            result(r#","resultType":"input_required""#),
        ),
        _ => reply(
            200,
            "application/json",
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32602,"message":"unknown tool"}}}}"#
            ),
        ),
    }
}

fn reply(status: u16, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_client_sends_self_contained_calls_in_json_and_sse() {
    let (addr, seen) = start_modern().await;
    let url = format!("http://{addr}/mcp");
    let (json, sse, named) = (
        format!("json={url}"),
        format!("sse={url}"),
        format!("named={url}"),
    );
    let p = plan(&[
        "--protocol",
        "modern",
        "--target",
        &json,
        "--target",
        &sse,
        "--target",
        &named,
        "--target-tool",
        "sse=echo_sse",
        "--target-tool",
        "named=über",
        "--target-reference",
        "named=sse",
        "--concurrency",
        "1,3",
    ]);
    let report = run(&p, |_| {}).await.unwrap();
    assert_eq!(report.rows.len(), 6);
    for row in &report.rows {
        assert_eq!(row.client, ClientEra::Modern);
        assert!(row.requests > 10, "{row:?}");
        assert_eq!(row.errors, 0, "{row:?}");
    }
    let named = &report.rows[2];
    assert_eq!(named.reference.as_deref(), Some("sse"));
    assert!(named.throughput_vs_reference.is_some() && named.p50_vs_reference.is_some());
    assert!(report.rows[0].reference.is_none());
    assert!(report.to_table().contains("modern"));
    // Nothing but tools/call was sent, and each passed the ladder.
    assert_eq!(seen.refused.load(Ordering::Relaxed), 0);
    assert!(seen.calls.load(Ordering::Relaxed) > 60);
}

#[tokio::test]
async fn a_modern_client_fails_loudly() {
    let (addr, _) = start_modern().await;
    let t = format!("stub=http://{addr}/mcp");
    let modern = |tool: &str| {
        plan(&[
            "--target",
            &t,
            "--target-protocol",
            "stub=modern",
            "--concurrency",
            "1",
            "--tool",
            tool,
        ])
    };
    let err = run(&modern("missing"), |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("-32602"), "{err}");
    let err = run(&modern("needs_input"), |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("input_required"), "{err}");
    // A session client is refused by the 2026-07-28 server at initialize.
    let session = plan(&["--target", &t, "--concurrency", "1"]);
    let err = run(&session, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("session client"), "{err}");
    // A session-era server refuses a modern client's call with a non-200.
    let addr = start(Mode::Echo).await;
    let t = format!("old=http://{addr}/mcp");
    let old = plan(&["--target", &t, "--protocol", "modern", "--concurrency", "1"]);
    let err = run(&old, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("first tools/call"), "{err}");
}
