//! Client-facing transports: Streamable HTTP rules, legacy SSE, stdio.

use std::io::{BufRead, Write};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use warden_protocol::sse;

use crate::harness::*;

fn config() -> String {
    format!("servers:\n{}", example_server("t", "test", ""))
}

#[tokio::test]
async fn session_rules() {
    let w = Warden::start(&config());
    let url = w.url("/mcp");
    let mut c = Client::new(&url);
    // No session header on a non-initialize request.
    let r = c.request("tools/list", json!({})).await;
    assert_eq!(r.status, 400, "{}", r.raw);
    // Unknown session.
    c.session = Some("00000000000000000000000000000000".into());
    assert_eq!(c.request("tools/list", json!({})).await.status, 404);
    c.session = None;
    c.initialize().await;
    let id = c.session.clone().unwrap();
    assert!(
        id.len() >= 32 && id.chars().all(|ch| ch.is_ascii_hexdigit()),
        "{id}"
    );
    // initialize inside a session is refused.
    let r = c.request("initialize", json!({"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}})).await;
    assert_eq!(r.status, 400);
    // Unsupported protocol version header.
    c.version = "1999-01-01".into();
    assert_eq!(c.request("tools/list", json!({})).await.status, 400);
    c.version = "2025-06-18".into();
    // DELETE ends the session; it is then unknown.
    let d = c
        .http
        .delete(&url)
        .header("mcp-session-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(d.status().as_u16(), 200);
    assert_eq!(c.request("tools/list", json!({})).await.status, 404);
}

#[tokio::test]
async fn origin_host_content_type_and_accept_are_checked() {
    let w = Warden::start(&config());
    let url = w.url("/mcp");
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}).to_string();
    let http = reqwest::Client::new();
    let post = |origin: Option<&str>, host: Option<&str>, ct: &str, accept: &str| {
        let mut b = http
            .post(&url)
            .header("content-type", ct)
            .header("accept", accept)
            .body(init.clone());
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        if let Some(h) = host {
            b = b.header("host", h);
        }
        b.send()
    };
    let json_sse = "application/json, text/event-stream";
    assert_eq!(
        post(
            Some("https://evil.example"),
            None,
            "application/json",
            json_sse
        )
        .await
        .unwrap()
        .status()
        .as_u16(),
        403
    );
    assert_eq!(
        post(None, Some("evil.example"), "application/json", json_sse)
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        post(None, None, "text/plain", json_sse)
            .await
            .unwrap()
            .status()
            .as_u16(),
        415
    );
    assert_eq!(
        post(None, None, "application/json", "text/html")
            .await
            .unwrap()
            .status()
            .as_u16(),
        406
    );
    assert_eq!(
        post(
            Some("http://localhost:6274"),
            None,
            "application/json",
            json_sse
        )
        .await
        .unwrap()
        .status()
        .as_u16(),
        200
    );
    assert_eq!(
        post(None, None, "application/json", json_sse)
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

/// Reads SSE events from a response until `n` messages arrived.
async fn read_events(resp: reqwest::Response, n: usize) -> Vec<(Option<String>, Value)> {
    let mut dec = sse::Decoder::new(1 << 20);
    let mut s = resp.bytes_stream();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(20), s.next())
            .await
            .expect("stream stalled");
        let Some(Ok(chunk)) = chunk else { break };
        for ev in dec.feed(&chunk).unwrap() {
            if let Ok(v) = serde_json::from_str(&ev.data) {
                out.push((ev.id, v));
            }
        }
    }
    out
}

#[tokio::test]
async fn get_stream_delivers_notifications_and_resumes_after_last_event_id() {
    let w = Warden::start(&config());
    let url = w.url("/mcp");
    let mut c = Client::new(&url);
    c.initialize().await;
    let sid = c.session.clone().unwrap();
    let http = c.http.clone();
    let get = || {
        http.get(&url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &sid)
    };
    // Two list_changed notifications arrive on the standalone stream.
    let r = c.call_tool("t__change_tools", json!({})).await;
    assert!(r.result().is_object());
    let r = c.call_tool("t__change_tools", json!({})).await;
    assert!(r.result().is_object());
    let first = get().send().await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let evs = read_events(first, 2).await;
    assert!(
        evs.iter()
            .all(|(_, v)| v["method"] == "notifications/tools/list_changed"),
        "{evs:?}"
    );
    let first_id = evs[0].0.clone().expect("event ids");
    // Resume after the first event: the second is replayed.
    let resumed = get()
        .header("last-event-id", &first_id)
        .send()
        .await
        .unwrap();
    let again = read_events(resumed, 1).await;
    assert_eq!(again[0].0, evs[1].0);
    // GET without the SSE Accept is refused; GET without a session too.
    let r = c
        .http
        .get(&url)
        .header("mcp-session-id", &sid)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 406);
    let r = c
        .http
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn legacy_sse_transport() {
    let w = Warden::start(&config());
    let http = reqwest::Client::new();
    let resp = http
        .get(w.url("/sse"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut dec = sse::Decoder::new(1 << 20);
    let mut stream = resp.bytes_stream();
    let mut events = Vec::new();
    let mut next_event = async || -> sse::Event {
        loop {
            if !events.is_empty() {
                return events.remove(0);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), stream.next())
                .await
                .expect("stalled");
            let chunk = chunk.expect("stream ended").expect("stream error");
            events.extend(dec.feed(&chunk).unwrap());
        }
    };
    let endpoint = next_event().await;
    assert_eq!(endpoint.event.as_deref(), Some("endpoint"));
    let post_url = w.url(&endpoint.data);
    let post = |body: Value| {
        http.post(&post_url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let r = post(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"legacy","version":"1"}}})).await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let init: Value = serde_json::from_str(&next_event().await.data).unwrap();
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    post(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
        .await
        .unwrap();
    post(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t__echo","arguments":{"message":"legacy ok"}}})).await.unwrap();
    let reply: Value = serde_json::from_str(&next_event().await.data).unwrap();
    assert_eq!(reply["id"], 2);
    assert_eq!(text_of(&reply["result"]), "legacy ok");
    let r = http
        .post(w.url("/messages?sessionId=nope"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[test]
fn stdio_transport() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("warden.yaml");
    std::fs::write(
        &cfg,
        with_tofu(&config())
            .replace("{WARDEN}", WARDEN)
            .replace("{DIR}", &dir.path().display().to_string()),
    )
    .unwrap();
    let (mut child, mut stdin, mut out) = stdio_warden(&cfg);
    let mut send = |v: &str| {
        stdin.write_all(v.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    };
    let mut recv = || -> Value {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    };
    send(
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"s","version":"1"}}}"#,
    );
    assert_eq!(recv()["result"]["protocolVersion"], "2025-06-18");
    send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    send(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t__echo","arguments":{"message":"via stdio"}}}"#,
    );
    assert_eq!(text_of(&recv()["result"]), "via stdio");
    send(r#"{"jsonrpc":"2.0","id":2,"id":3,"method":"tools/list"}"#);
    assert_eq!(recv()["error"]["code"], -32600);
    send("not json");
    assert_eq!(recv()["error"]["code"], -32700);
    drop(stdin);
    child.wait().unwrap();
}

/// Issue 15, item 15: after the configuration file changes (a server
/// added), connected sessions are told their lists changed, and the new
/// server's tools are listed; a change to a section only a restart applies
/// is refused whole, and the running configuration keeps serving.
#[tokio::test]
async fn a_reload_tells_sessions_their_lists_changed() {
    let w = Warden::start(&config());
    let url = w.url("/mcp");
    let mut c = Client::new(&url);
    c.initialize().await;
    let sid = c.session.clone().unwrap();
    let before = c.request("tools/list", json!({})).await;
    assert!(!before.raw.contains("u__echo"), "{}", before.raw);
    let yaml = std::fs::read_to_string(w.config_path()).unwrap();
    let added = yaml.replacen(
        "servers:\n",
        &format!(
            "servers:\n{}",
            example_server("u", "test", "").replace("{WARDEN}", WARDEN)
        ),
        1,
    );
    std::fs::write(w.config_path(), added).unwrap();
    let stream = c
        .http
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    let evs = tokio::time::timeout(Duration::from_secs(20), read_events(stream, 1))
        .await
        .expect("no list_changed after the file changed");
    assert_eq!(
        evs[0].1["method"], "notifications/tools/list_changed",
        "{evs:?}"
    );
    let after = c.request("tools/list", json!({})).await;
    assert!(after.raw.contains("u__echo"), "{}", after.raw);

    // `listen` applies only at start: refused, the servers stay.
    let yaml = std::fs::read_to_string(w.config_path()).unwrap();
    std::fs::write(
        w.config_path(),
        format!("{yaml}\nlisten:\n  allowed_origins: [\"http://example.test\"]\n"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let still = c.request("tools/list", json!({})).await;
    assert!(still.raw.contains("u__echo"), "{}", still.raw);
}
