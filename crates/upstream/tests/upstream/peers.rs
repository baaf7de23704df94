//! Era detection and the 2026-07-28 protocol against real MCP servers: the
//! conformance server on the official Python SDK 2.x (both eras) and
//! server-everything (session era only), each on a free loopback port.
//! Where a test must see what Warden sent, a byte-for-byte TCP relay on
//! loopback sits between Warden and the real server and records it.
//!
//! The peers are those `scripts/install-peers.sh` installs (`.peers/`, or
//! `$WARDEN_PEERS`). Missing peers skip these tests with a notice, unless
//! `WARDEN_REQUIRE_PEERS=1` makes that a failure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use warden_upstream::{
    Era, Handshake, TransportSpec, Upstream, UpstreamError, UpstreamEvent, UpstreamState,
};

use crate::support::{events, next_event, spec};

const LONG: Duration = Duration::from_secs(30);

/// The handshake params Warden would send: session-era version, its own
/// capabilities and client info.
const HANDSHAKE: &str = r#"{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"warden-test","version":"0"}}"#;

fn handshake() -> Handshake {
    Handshake {
        params: HANDSHAKE.to_owned(),
        session_first: false,
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The installed peers, or `None` (with a notice) when they are missing.
fn peers(needed: &[&str]) -> Option<HashMap<String, String>> {
    let dir = std::env::var_os("WARDEN_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".peers"));
    let file = dir.join("env.json");
    let missing = |what: String| {
        let msg = format!("real MCP peers missing ({what}): run scripts/install-peers.sh");
        if std::env::var("WARDEN_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        None
    };
    let Ok(text) = std::fs::read_to_string(&file) else {
        return missing(format!("{} not found", file.display()));
    };
    let env: HashMap<String, String> = serde_json::from_str(&text).expect("env.json is JSON");
    for key in needed {
        match env.get(*key) {
            Some(path) if Path::new(path).exists() => {}
            _ => return missing(format!("{key} in {}", file.display())),
        }
    }
    Some(env)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real server process on a loopback port, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    async fn start(mut cmd: Command, port: u16) -> Server {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the peer");
        for _ in 0..400 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Server { child, port };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the peer did not listen on {port}");
    }

    /// Kills the process and waits for it to be gone.
    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// tests/peers/conformance_server.py on the Python SDK 2.x.
    async fn conformance(p: &HashMap<String, String>) -> Server {
        Server::conformance_on(p, free_port()).await
    }

    async fn conformance_on(p: &HashMap<String, String>, port: u16) -> Server {
        let mut cmd = Command::new(&p["PY2"]);
        cmd.arg(repo_root().join("tests/peers/conformance_server.py"))
            .args(["--port", &port.to_string()]);
        Server::start(cmd, port).await
    }

    /// server-everything in `streamableHttp` mode, kept on loopback.
    async fn everything(p: &HashMap<String, String>) -> Server {
        let port = free_port();
        let mut cmd = Command::new(&p["NODE22"]);
        cmd.args([
            "--require",
            &p["LOOPBACK_ONLY_CJS"],
            &p["SERVER_EVERYTHING"],
            "streamableHttp",
        ])
        .env("PORT", port.to_string());
        Server::start(cmd, port).await
    }

    /// A session-era server on the Python SDK 1.x (FastMCP): it forgets its
    /// sessions when restarted and says so with 404, as the spec asks.
    async fn session_only_on(p: &HashMap<String, String>, port: u16) -> Server {
        const SERVER: &str = r#"
import sys
from mcp.server.fastmcp import FastMCP

mcp = FastMCP("session-only", host="127.0.0.1", port=int(sys.argv[1]))


@mcp.tool()
def hello() -> str:
    return "hello"


mcp.run("streamable-http")
"#;
        let mut cmd = Command::new(&p["PY1"]);
        cmd.args(["-c", SERVER, &port.to_string()]);
        Server::start(cmd, port).await
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }
}

const SESSION_ONLY: &[&str] = &["PY1"];
const CONFORMANCE: &[&str] = &["PY2"];
const EVERYTHING: &[&str] = &["NODE22", "LOOPBACK_ONLY_CJS", "SERVER_EVERYTHING"];

/// A loopback TCP relay in front of a server that records every byte the
/// client sent, and counts the client connections that ended.
struct Relay {
    port: u16,
    sent: Arc<Mutex<Vec<u8>>>,
    closed: Arc<AtomicUsize>,
}

impl Relay {
    async fn start(to: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicUsize::new(0));
        let (rec, ends) = (sent.clone(), closed.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                // Nothing listens (the server is restarting): refuse this one.
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)).await else {
                    continue;
                };
                let (rec, ends) = (rec.clone(), ends.clone());
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let back = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    });
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                rec.lock().unwrap().extend_from_slice(&buf[..n]);
                                if sw.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    ends.fetch_add(1, Ordering::SeqCst);
                    let _ = sw.shutdown().await;
                    back.abort();
                });
            }
        });
        Relay { port, sent, closed }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).into_owned()
    }

    /// Each HTTP request sent so far: its lowercased header block and its body.
    fn requests(&self) -> Vec<(String, String)> {
        let text = self.text();
        let mut out = Vec::new();
        let mut rest = text.as_str();
        while let Some(end) = rest.find("\r\n\r\n") {
            let head = &rest[..end];
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            let body_start = end + 4;
            let body_end = (body_start + length).min(rest.len());
            out.push((
                head.to_ascii_lowercase(),
                rest[body_start..body_end].to_owned(),
            ));
            rest = &rest[body_end..];
        }
        out
    }

    /// The requests whose body names `method`.
    fn posts_of(&self, method: &str) -> Vec<(String, String)> {
        let needle = format!(r#""method":"{method}""#);
        self.requests()
            .into_iter()
            .filter(|(_, body)| body.contains(&needle))
            .collect()
    }

    async fn wait_for(&self, method: &str) -> (String, String) {
        for _ in 0..250 {
            if let Some(r) = self.posts_of(method).into_iter().next() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no {method} request reached the server");
    }
}

fn http_spec(name: &str, url: &str, era: Era) -> warden_upstream::UpstreamSpec {
    let mut s = spec(
        name,
        TransportSpec::StreamableHttp {
            url: url.to_owned(),
            headers: Vec::new(),
        },
    );
    s.connect_timeout = Duration::from_secs(20);
    s.era = era;
    s
}

/// A request as the gateway builds it: its own bytes, Warden's id.
fn gateway(method: &'static str, params: Option<&'static str>) -> impl FnOnce(u64) -> String {
    move |id| match params {
        Some(p) => format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{p}}}"#),
        None => format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}"}}"#),
    }
}

/// `tools/call test_simple_text`, as the gateway would send it.
async fn call_simple_text(up: &warden_upstream::Upstream) -> warden_upstream::Response {
    up.request(
        gateway(
            "tools/call",
            Some(r#"{"name":"test_simple_text","arguments":{}}"#),
        ),
        LONG,
    )
    .await
    .expect("tools/call")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim())
    })
}

#[tokio::test]
async fn auto_detects_a_modern_server_and_calls_tools() {
    let Some(p) = peers(CONFORMANCE) else { return };
    let server = Server::conformance(&p).await;
    let relay = Relay::start(server.port).await;
    let (tx, _rx) = events();
    let up = Upstream::start(http_spec("conf", &relay.url(), Era::Auto), handshake(), tx);
    let info = up.ready().await.expect("ready");
    assert!(info.modern, "{info:?}");
    assert_eq!(info.protocol_version, "2026-07-28");
    assert_eq!(info.generation, 1);
    let result = json(&info.result);
    assert!(result["capabilities"]["tools"].is_object(), "{result}");
    assert!(result["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&Value::from("2026-07-28")));
    assert_eq!(
        json(info.server_info().expect("server info"))["name"],
        "warden-conformance-server"
    );

    // The probe: at 2026-07-28, with the handshake's capabilities and info.
    let (head, body) = relay.wait_for("server/discover").await;
    assert_eq!(header(&head, "mcp-protocol-version"), Some("2026-07-28"));
    assert_eq!(header(&head, "mcp-method"), Some("server/discover"));
    let meta = &json(&body)["params"]["_meta"];
    assert_eq!(
        meta["io.modelcontextprotocol/clientCapabilities"],
        json(r#"{"roots":{"listChanged":true}}"#)
    );
    assert_eq!(
        meta["io.modelcontextprotocol/clientInfo"]["name"],
        "warden-test"
    );
    assert!(
        relay.posts_of("initialize").is_empty(),
        "no handshake in 2026-07-28"
    );

    // Gateway-built requests without any `_meta`: the envelope is spliced in.
    let list = up
        .request(gateway("tools/list", None), LONG)
        .await
        .expect("tools/list");
    let list = json(&list.text);
    let tools = list["result"]["tools"].as_array().expect("tools");
    assert!(
        tools.iter().any(|t| t["name"] == "test_simple_text"),
        "{list}"
    );

    let call = call_simple_text(&up).await;
    let v = json(&call.text);
    assert_eq!(v["id"], call.id);
    assert_eq!(
        v["result"]["content"][0]["text"],
        "This is a simple text response for testing."
    );
    let (head, body) = relay.wait_for("tools/call").await;
    assert_eq!(header(&head, "mcp-protocol-version"), Some("2026-07-28"));
    assert_eq!(header(&head, "mcp-method"), Some("tools/call"));
    assert_eq!(header(&head, "mcp-name"), Some("test_simple_text"));
    assert_eq!(
        body,
        format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{"roots":{{"listChanged":true}}}},"io.modelcontextprotocol/clientInfo":{{"name":"warden-test","version":"0"}}}},"name":"test_simple_text","arguments":{{}}}}}}"#,
            call.id
        )
    );
    assert!(relay.posts_of("notifications/initialized").is_empty());

    // The gateway's per-request headers go along; they cannot replace the
    // routing headers or name a session.
    let traced = warden_upstream::with_request_headers(
        vec![
            (
                "traceparent".into(),
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            ),
            ("Mcp-Method".into(), "tools/list".into()),
            ("Mcp-Session-Id".into(), "forged".into()),
        ],
        up.request(
            gateway(
                "tools/call",
                Some(r#"{"name":"test_error_handling","arguments":{}}"#),
            ),
            LONG,
        ),
    )
    .await
    .expect("traced call");
    assert_eq!(
        json(&traced.text)["result"]["isError"],
        true,
        "{}",
        traced.text
    );
    let (head, _) = relay
        .posts_of("tools/call")
        .into_iter()
        .find(|(_, b)| b.contains("test_error_handling"))
        .expect("the traced call");
    assert_eq!(
        header(&head, "traceparent"),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    assert_eq!(header(&head, "mcp-method"), Some("tools/call"));
    assert_eq!(header(&head, "mcp-session-id"), None);

    // An input_required result is an ordinary result, passed through.
    let ask = up
        .request(
            gateway(
                "tools/call",
                Some(r#"{"name":"test_input_required_result_elicitation","arguments":{}}"#),
            ),
            LONG,
        )
        .await
        .expect("input_required");
    let v = json(&ask.text);
    assert_eq!(v["result"]["resultType"], "input_required", "{}", ask.text);
    assert!(v["result"]["inputRequests"].is_object(), "{}", ask.text);

    // A refused request is the server's JSON-RPC error, not an HTTP failure.
    let bad = up
        .request(gateway("nonexistent/method", Some("{}")), LONG)
        .await
        .expect("an error response");
    assert_eq!(json(&bad.text)["error"]["code"], -32601, "{}", bad.text);
    assert_eq!(up.state(), UpstreamState::Ready);

    // No DELETE: there is no session to end; no session id ever.
    up.shutdown().await;
    assert!(!relay.text().contains("DELETE "));
    assert!(!relay.text().to_ascii_lowercase().contains("mcp-session-id"));
}

#[tokio::test]
async fn a_clients_own_envelope_is_kept_and_the_version_is_ours() {
    let Some(p) = peers(CONFORMANCE) else { return };
    let server = Server::conformance(&p).await;
    let relay = Relay::start(server.port).await;
    let (tx, _rx) = events();
    let up = Upstream::start(http_spec("conf", &relay.url(), Era::Auto), handshake(), tx);
    up.ready().await.expect("ready");
    let params = r#"{"name":"test_simple_text","arguments":{},"_meta":{"io.modelcontextprotocol/clientCapabilities":{"sampling":{},"elicitation":{}},"io.modelcontextprotocol/protocolVersion":"2099-01-01","x-trace":"keep me"}}"#;
    let call = up
        .request(gateway("tools/call", Some(params)), LONG)
        .await
        .expect("tools/call");
    assert_eq!(
        json(&call.text)["result"]["content"][0]["text"],
        "This is a simple text response for testing.",
        "{}",
        call.text
    );
    let (_, body) = relay.wait_for("tools/call").await;
    // The client's capabilities stay; Warden adds only its client info and
    // puts its own version in the version's place.
    assert_eq!(
        body,
        format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"name":"test_simple_text","arguments":{{}},"_meta":{{"io.modelcontextprotocol/clientInfo":{{"name":"warden-test","version":"0"}},"io.modelcontextprotocol/clientCapabilities":{{"sampling":{{}},"elicitation":{{}}}},"io.modelcontextprotocol/protocolVersion":"2026-07-28","x-trace":"keep me"}}}}}}"#,
            call.id
        )
    );
}

#[tokio::test]
async fn progress_is_a_related_event_before_the_response() {
    let Some(p) = peers(CONFORMANCE) else { return };
    let server = Server::conformance(&p).await;
    let (tx, mut rx) = events();
    let up = Upstream::start(http_spec("conf", &server.url(), Era::Auto), handshake(), tx);
    assert!(up.ready().await.expect("ready").modern);
    let resp = up
        .request(
            gateway(
                "tools/call",
                Some(r#"{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":"tok-1"}}"#),
            ),
            LONG,
        )
        .await
        .expect("tools/call");
    assert!(
        resp.text
            .contains("Tool with progress executed successfully"),
        "{}",
        resp.text
    );
    assert!(resp.events_before >= 3, "{}", resp.events_before);
    for expected in [0, 50, 100] {
        let ev = next_event(&mut rx, |e| {
            matches!(e, UpstreamEvent::Message { text, .. } if text.contains("notifications/progress"))
        })
        .await;
        let UpstreamEvent::Message {
            text,
            related_to,
            server,
        } = ev
        else {
            unreachable!()
        };
        assert_eq!(server, "conf");
        assert_eq!(related_to, Some(resp.id));
        let v = json(&text);
        assert_eq!(v["params"]["progressToken"], "tok-1");
        assert_eq!(v["params"]["progress"], expected);
    }
}

#[tokio::test]
async fn session_era_against_the_same_server_initializes() {
    let Some(p) = peers(CONFORMANCE) else { return };
    let server = Server::conformance(&p).await;
    let relay = Relay::start(server.port).await;
    let (tx, _rx) = events();
    let up = Upstream::start(
        http_spec("conf", &relay.url(), Era::Session),
        handshake(),
        tx,
    );
    let info = up.ready().await.expect("ready");
    assert!(!info.modern);
    assert_eq!(info.protocol_version, "2025-06-18");
    assert_eq!(
        json(info.server_info().expect("server info"))["name"],
        "warden-conformance-server"
    );
    let call = call_simple_text(&up).await;
    assert!(
        call.text.contains("This is a simple text response"),
        "{}",
        call.text
    );
    assert!(
        relay.posts_of("server/discover").is_empty(),
        "Session never probes"
    );
    assert_eq!(relay.posts_of("initialize").len(), 1);
    let (_, body) = relay.wait_for("tools/call").await;
    assert!(
        !body.contains("io.modelcontextprotocol/"),
        "no envelope in the session era: {body}"
    );
}

#[tokio::test]
async fn auto_falls_back_to_the_session_era_on_a_session_only_server() {
    let Some(p) = peers(EVERYTHING) else { return };
    let server = Server::everything(&p).await;
    let relay = Relay::start(server.port).await;
    let (tx, _rx) = events();
    let up = Upstream::start(http_spec("every", &relay.url(), Era::Auto), handshake(), tx);
    let info = up.ready().await.expect("ready");
    assert!(!info.modern, "{info:?}");
    assert_eq!(info.protocol_version, "2025-06-18");
    // It was probed first, then initialized.
    let requests = relay.requests();
    let first = requests
        .iter()
        .position(|(_, b)| b.contains("server/discover"));
    let init = requests
        .iter()
        .position(|(_, b)| b.contains(r#""method":"initialize""#));
    assert!(
        matches!((first, init), (Some(a), Some(b)) if a < b),
        "{requests:?}"
    );
    let list = up
        .request(gateway("tools/list", Some("{}")), LONG)
        .await
        .expect("tools/list");
    assert!(json(&list.text)["result"]["tools"]
        .as_array()
        .is_some_and(|t| !t.is_empty()));
    let (head, _) = relay.wait_for("tools/list").await;
    assert!(header(&head, "mcp-session-id").is_some(), "{head}");
}

#[tokio::test]
async fn a_remembered_session_era_is_tried_first_after_a_reconnect() {
    let Some(p) = peers(SESSION_ONLY) else { return };
    let port = free_port();
    let server = Server::session_only_on(&p, port).await;
    let relay = Relay::start(port).await;
    let (tx, mut rx) = events();
    let up = Upstream::start(http_spec("py1", &relay.url(), Era::Auto), handshake(), tx);
    let info = up.ready().await.expect("ready");
    assert!(!info.modern);
    assert_eq!(relay.posts_of("server/discover").len(), 1);
    assert_eq!(relay.posts_of("initialize").len(), 1);
    // The server restarts and forgets the session: the next call meets a
    // 404, Warden reconnects in the era it remembers (no probe) and retries.
    server.stop().await;
    let _server = Server::session_only_on(&p, port).await;
    let call = up
        .request(
            gateway("tools/call", Some(r#"{"name":"hello","arguments":{}}"#)),
            LONG,
        )
        .await
        .expect("retried on the new session");
    assert!(call.text.contains("hello"), "{}", call.text);
    let ev = next_event(&mut rx, |e| matches!(e, UpstreamEvent::Restarted { .. })).await;
    assert!(
        matches!(ev, UpstreamEvent::Restarted { generation: 2, .. }),
        "{ev:?}"
    );
    assert_eq!(relay.posts_of("initialize").len(), 2);
    assert_eq!(
        relay.posts_of("server/discover").len(),
        1,
        "no second probe"
    );
}

#[tokio::test]
async fn modern_era_never_falls_back() {
    let Some(p) = peers(EVERYTHING) else { return };
    let server = Server::everything(&p).await;
    let relay = Relay::start(server.port).await;
    let (tx, _rx) = events();
    let up = Upstream::start(
        http_spec("every", &relay.url(), Era::Modern),
        handshake(),
        tx,
    );
    let err = up.ready().await.expect_err("a session-only server");
    assert!(matches!(err, UpstreamError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("2026-07-28"), "{err}");
    relay.wait_for("server/discover").await;
    assert!(relay.posts_of("initialize").is_empty());
}

#[tokio::test]
async fn cancelled_notification_closes_the_exchange() {
    let Some(p) = peers(CONFORMANCE) else { return };
    let server = Server::conformance(&p).await;
    let relay = Relay::start(server.port).await;
    let (tx, mut rx) = events();
    let up = Arc::new(Upstream::start(
        http_spec("conf", &relay.url(), Era::Auto),
        handshake(),
        tx,
    ));
    up.ready().await.expect("ready");
    // Warden's own listen stream is open (and its acknowledgement swallowed)
    // before the test counts closed connections.
    relay.wait_for("subscriptions/listen").await;
    // A request that never completes: a listen stream of the gateway's own.
    let caller = up.clone();
    let call = tokio::spawn(async move {
        caller
            .request(
                gateway(
                    "subscriptions/listen",
                    Some(r#"{"notifications":{"toolsListChanged":true}}"#),
                ),
                LONG,
            )
            .await
    });
    let ack = next_event(&mut rx, |e| {
        matches!(e, UpstreamEvent::Message { text, .. } if text.contains("subscriptions/acknowledged"))
    })
    .await;
    let UpstreamEvent::Message {
        related_to: Some(id),
        ..
    } = ack
    else {
        panic!("the gateway's listen stream is acknowledged as a related event: {ack:?}");
    };
    let closed_before = relay.closed.load(Ordering::SeqCst);
    up.notify(format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{id},"reason":"cancelled by client"}}}}"#
    ))
    .await
    .expect("notify");
    let outcome = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the call ends at once")
        .unwrap();
    assert_eq!(outcome, Err(UpstreamError::Cancelled));
    // Its HTTP exchange was closed: the relay saw the connection end.
    for _ in 0..250 {
        if relay.closed.load(Ordering::SeqCst) > closed_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        relay.closed.load(Ordering::SeqCst) > closed_before,
        "the response stream stayed open"
    );
    // Nothing is posted for a cancellation in 2026-07-28; other client
    // notifications are dropped too.
    up.notify(r#"{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}"#.into())
        .await
        .expect("dropped quietly");
    assert!(relay.posts_of("notifications/cancelled").is_empty());
    assert!(relay
        .posts_of("notifications/roots/list_changed")
        .is_empty());
    // Answering a server request makes no sense in this era.
    let err = up
        .respond(r#"{"jsonrpc":"2.0","id":"x","result":{}}"#.into())
        .await
        .expect_err("no server requests");
    assert!(matches!(err, UpstreamError::Protocol(_)), "{err:?}");
    // The upstream is unharmed.
    up.request(gateway("tools/list", None), LONG)
        .await
        .expect("tools/list");
}

#[tokio::test]
async fn the_listen_stream_asks_for_the_declared_list_changes() {
    let Some(p) = peers(CONFORMANCE) else { return };
    let server = Server::conformance(&p).await;
    let relay = Relay::start(server.port).await;
    let (tx, mut rx) = events();
    let up = Upstream::start(http_spec("conf", &relay.url(), Era::Auto), handshake(), tx);
    up.ready().await.expect("ready");
    let (head, body) = relay.wait_for("subscriptions/listen").await;
    assert_eq!(header(&head, "mcp-method"), Some("subscriptions/listen"));
    assert!(header(&head, "accept").is_some_and(|a| a.contains("text/event-stream")));
    let params = &json(&body)["params"];
    assert_eq!(
        params["notifications"],
        json(r#"{"toolsListChanged":true,"promptsListChanged":true,"resourcesListChanged":true}"#)
    );
    assert_eq!(
        params["_meta"]["io.modelcontextprotocol/protocolVersion"],
        "2026-07-28"
    );
    // The acknowledgement is swallowed: no event reaches the gateway.
    let got = tokio::time::timeout(Duration::from_millis(700), rx.recv()).await;
    assert!(got.is_err(), "unexpected event {got:?}");
}

#[tokio::test]
async fn the_listen_stream_is_reopened_when_the_server_restarts() {
    let Some(p) = peers(CONFORMANCE) else { return };
    let server = Server::conformance(&p).await;
    let port = server.port;
    let relay = Relay::start(port).await;
    let (tx, _rx) = events();
    let up = Upstream::start(http_spec("conf", &relay.url(), Era::Auto), handshake(), tx);
    up.ready().await.expect("ready");
    relay.wait_for("subscriptions/listen").await;
    server.stop().await;
    let _server = Server::conformance_on(&p, port).await;
    let mut reopened = false;
    for _ in 0..300 {
        if relay.posts_of("subscriptions/listen").len() >= 2 {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened, "the listen stream was not reopened");
    // Stateless: the restart needed no reconnection.
    let info = up.ready().await.expect("ready");
    assert_eq!(info.generation, 1);
    up.request(gateway("tools/list", None), LONG)
        .await
        .expect("tools/list after the restart");
}

#[tokio::test]
async fn modern_on_stdio_is_a_configuration_error() {
    let (tx, _rx) = events();
    let mut s = spec(
        "stdio",
        TransportSpec::Stdio {
            command: "/bin/sh".into(),
            args: vec!["-c".into(), "sleep 5".into()],
            env: Vec::new(),
            inherit_env: Vec::new(),
            cwd: None,
            sandbox: None,
        },
    );
    s.era = Era::Modern;
    let up = Upstream::start(s, handshake(), tx);
    let err = up.ready().await.expect_err("not HTTP");
    assert!(matches!(err, UpstreamError::Config(_)), "{err:?}");
    assert_eq!(up.state(), UpstreamState::Failed);
}
