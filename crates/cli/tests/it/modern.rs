//! 2026-07-28 (stateless) clients through Warden, in front of a session-era
//! upstream (the bundled test server): discovery, lists, calls, the ladder's
//! refusals, input requests bridged both ways, `subscriptions/listen`.
//! Every refused request is checked absent from the upstream's record.

use std::path::Path;

use serde_json::{json, Value};

use crate::harness::*;

const V: &str = "2026-07-28";

fn config(record: &Path) -> String {
    format!(
        "servers:\n{}",
        example_server("t", "test", &record_arg(record))
    )
}

/// A raw 2026-07-28 request: the envelope in `_meta`, the mirrored headers.
struct Modern {
    http: reqwest::Client,
    url: String,
    caps: Value,
}

impl Modern {
    fn new(url: &str) -> Modern {
        Modern {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            caps: json!({"elicitation": {}, "sampling": {}, "roots": {}}),
        }
    }

    fn body(&self, id: u64, method: &str, mut params: Value) -> String {
        params["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!(V);
        params["_meta"]["io.modelcontextprotocol/clientCapabilities"] = self.caps.clone();
        params["_meta"]["io.modelcontextprotocol/clientInfo"] =
            json!({"name": "it", "version": "0"});
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
    }

    fn headers(method: &str, params: &Value) -> Vec<(String, String)> {
        let mut h = vec![
            ("mcp-protocol-version".to_owned(), V.to_owned()),
            ("mcp-method".to_owned(), method.to_owned()),
        ];
        let name = match method {
            "tools/call" | "prompts/get" => params["name"].as_str(),
            "resources/read" => params["uri"].as_str(),
            _ => None,
        };
        if let Some(n) = name {
            h.push(("mcp-name".to_owned(), n.to_owned()));
        }
        h
    }

    async fn send(&self, body: String, headers: &[(String, String)]) -> Reply {
        let mut b = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        for (k, v) in headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let resp = b.send().await.expect("POST");
        Client::new(&self.url).read_reply(resp).await
    }

    /// Opens a `subscriptions/listen` stream (200 asserted): its body.
    async fn listen(
        &self,
        id: u64,
        params: Value,
    ) -> std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<Vec<u8>>> + Send>> {
        let mut b = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(self.body(id, "subscriptions/listen", params.clone()));
        for (k, v) in Self::headers("subscriptions/listen", &params) {
            b = b.header(k, v);
        }
        let resp = b.send().await.expect("listen POST");
        assert_eq!(resp.status().as_u16(), 200);
        use futures::StreamExt;
        Box::pin(resp.bytes_stream().map(|c| c.map(|b| b.to_vec())))
    }

    async fn request(&self, id: u64, method: &str, params: Value) -> Reply {
        let headers = Self::headers(method, &params);
        self.send(self.body(id, method, params), &headers).await
    }
}

#[tokio::test]
async fn a_modern_client_discovers_lists_calls_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("t.jsonl");
    let w = Warden::start(&config(&record));
    let c = Modern::new(&w.url("/mcp"));

    let d = c.request(1, "server/discover", json!({})).await;
    assert_eq!(d.status, 200, "{}", d.raw);
    assert!(d.headers.get("mcp-session-id").is_none());
    let r = d.result();
    assert!(r["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!(V)));
    assert!(r["capabilities"]["tools"].is_object(), "{r}");
    assert_eq!(r["resultType"], "complete");
    assert_eq!(r["cacheScope"], "private");
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "warden"
    );

    let l = c.request(2, "tools/list", json!({})).await;
    assert_eq!(l.status, 200, "{}", l.raw);
    let tools: Vec<&str> = l.result()["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(tools.contains(&"t__echo"), "{tools:?}");

    let call = c
        .request(
            3,
            "tools/call",
            json!({"name": "t__echo", "arguments": {"message": "hi"}}),
        )
        .await;
    assert_eq!(text_of(call.result()), "hi");
    // Session-era upstream results gain the 2026-07-28 `resultType`.
    assert_eq!(call.result()["resultType"], "complete", "{}", call.raw);
    assert_eq!(call.response()["id"], 3);

    let read = c
        .request(4, "resources/read", json!({"uri": "test://resource"}))
        .await;
    assert_eq!(read.status, 200, "{}", read.raw);
    assert!(read.result()["contents"].is_array(), "{}", read.raw);

    // Progress notifications precede the answer on an SSE response.
    let p = c
        .request(
            5,
            "tools/call",
            json!({"name": "t__progress", "arguments": {"steps": 3, "delay_ms": 20},
                   "_meta": {"progressToken": "tok-1"}}),
        )
        .await;
    let progress: Vec<&Value> = p
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{}", p.raw);
    assert_eq!(progress[0]["params"]["progressToken"], "tok-1");
    assert_eq!(text_of(p.result()), "done 3 steps");
}

/// Issue 15, item 12: a 2026-07-28 `resources/read` result from a
/// session-era upstream had no `ttlMs`/`cacheScope` (Inspector 2.12 and the
/// conformance `caching` scenario failed on it).
#[tokio::test]
async fn modern_resource_reads_from_a_session_era_upstream_carry_cache_hints() {
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(&config(&dir.path().join("t.jsonl")));
    let c = Modern::new(&w.url("/mcp"));
    let read = c
        .request(1, "resources/read", json!({"uri": "test://resource"}))
        .await;
    assert_eq!(read.status, 200, "{}", read.raw);
    let r = read.result();
    assert_eq!(r["resultType"], "complete", "{r}");
    assert!(r["ttlMs"].is_u64(), "{r}");
    assert_eq!(r["cacheScope"], "private", "{r}");
    assert!(r["contents"].is_array(), "{r}");
}

#[tokio::test]
async fn an_upstreams_question_becomes_an_input_required_result() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("t.jsonl");
    let w = Warden::start(&config(&record));
    let c = Modern::new(&w.url("/mcp"));
    let params = json!({"name": "t__elicit", "arguments": {"message": "ok?"}});
    let first = c.request(1, "tools/call", params.clone()).await;
    assert_eq!(first.status, 200, "{}", first.raw);
    let r = first.result();
    assert_eq!(r["resultType"], "input_required", "{r}");
    let requests = r["inputRequests"].as_object().expect("inputRequests");
    assert_eq!(requests.len(), 1, "{r}");
    let (key, asked) = requests.iter().next().unwrap();
    assert_eq!(asked["method"], "elicitation/create");
    assert_eq!(asked["params"]["message"], "ok?");
    let state = r["requestState"].as_str().expect("requestState").to_owned();

    // A retry that changes the arguments is not the parked call.
    let mut forged = params.clone();
    forged["arguments"]["message"] = json!("something else");
    forged["requestState"] = json!(state);
    forged["inputResponses"] = json!({key: {"action": "accept", "content": {"answer": "no"}}});
    let bad = c.request(2, "tools/call", forged).await;
    assert_eq!((bad.status, bad.error_code()), (400, -32602), "{}", bad.raw);
    // ... and the parked call is gone with it.
    let mut again = params.clone();
    again["requestState"] = json!(state);
    again["inputResponses"] = json!({key: {"action": "accept", "content": {"answer": "yes"}}});
    let gone = c.request(3, "tools/call", again.clone()).await;
    assert_eq!(gone.error_code(), -32602, "{}", gone.raw);

    // The round trip, for real.
    let first = c.request(4, "tools/call", params.clone()).await;
    let r = first.result();
    let key = r["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let mut retry = params.clone();
    retry["requestState"] = r["requestState"].clone();
    retry["inputResponses"] = json!({key: {"action": "accept", "content": {"answer": "yes"}}});
    let done = c.request(5, "tools/call", retry).await;
    assert_eq!(done.status, 200, "{}", done.raw);
    assert_eq!(done.response()["id"], 5);
    let result = done.result();
    assert_eq!(result["structuredContent"]["action"], "accept", "{result}");
    assert_eq!(result["structuredContent"]["content"]["answer"], "yes");

    // Sampling likewise.
    let s = json!({"name": "t__sample", "arguments": {"prompt": "hello"}});
    let first = c.request(6, "tools/call", s.clone()).await;
    let r = first.result();
    let (key, asked) = r["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert_eq!(asked["method"], "sampling/createMessage");
    let mut retry = s.clone();
    retry["requestState"] = r["requestState"].clone();
    retry["inputResponses"] = json!({key.clone(): {"role": "assistant", "model": "m",
        "content": {"type": "text", "text": "sampled by a modern client"}}});
    let done = c.request(7, "tools/call", retry).await;
    assert!(
        text_of(done.result()).contains("sampled by a modern client"),
        "{}",
        done.raw
    );

    // A client that did not declare elicitation is not asked.
    let mut plain = Modern::new(&w.url("/mcp"));
    plain.caps = json!({});
    let r = plain.request(8, "tools/call", params).await;
    assert_eq!(r.result()["isError"], true, "{}", r.raw);
}

#[tokio::test]
async fn the_ladder_refuses_before_any_upstream_sees_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("t.jsonl");
    let w = Warden::start(&config(&record));
    let c = Modern::new(&w.url("/mcp"));
    let call = json!({"name": "t__echo", "arguments": {"message": "refused-marker"}});
    let body = c.body(1, "tools/call", call.clone());
    let good = Modern::headers("tools/call", &call);
    let with = |k: &str, v: Option<&str>| {
        let mut h: Vec<(String, String)> = good.iter().filter(|(n, _)| n != k).cloned().collect();
        if let Some(v) = v {
            h.push((k.to_owned(), v.to_owned()));
        }
        h
    };
    for (headers, code, what) in [
        (
            with("mcp-method", Some("tools/list")),
            -32020,
            "method mismatch",
        ),
        (with("mcp-method", None), -32020, "method missing"),
        (with("mcp-name", Some("t__other")), -32020, "name mismatch"),
        (with("mcp-name", None), -32020, "name missing"),
        (
            with("mcp-protocol-version", Some("2025-11-25")),
            -32020,
            "version header differs",
        ),
    ] {
        let r = c.send(body.clone(), &headers).await;
        assert_eq!((r.status, r.error_code()), (400, code), "{what}: {}", r.raw);
    }
    // Duplicated routing headers.
    let mut dup = good.clone();
    dup.push(("mcp-method".into(), "tools/call".into()));
    let r = c.send(body.clone(), &dup).await;
    assert_eq!((r.status, r.error_code()), (400, -32020), "{}", r.raw);

    // No envelope; an unsupported version.
    let bare = json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":call}).to_string();
    let r = c.send(bare, &good).await;
    assert_eq!((r.status, r.error_code()), (400, -32602), "{}", r.raw);
    let future = body.replace(V, "2099-01-01");
    let r = c
        .send(future, &with("mcp-protocol-version", Some("2099-01-01")))
        .await;
    assert_eq!((r.status, r.error_code()), (400, -32022), "{}", r.raw);
    assert!(r.response()["error"]["data"]["supported"]
        .as_array()
        .unwrap()
        .contains(&json!(V)));

    // A requestState Warden never issued.
    let mut forged = call.clone();
    forged["requestState"] = json!("w1.dA.AAAAAAAAAAAAAAAAAAAAAA.anything");
    let r = c.request(10, "tools/call", forged).await;
    assert_eq!((r.status, r.error_code()), (400, -32602), "{}", r.raw);

    // Removed methods; GET and DELETE.
    for m in [
        "ping",
        "initialize",
        "logging/setLevel",
        "resources/subscribe",
    ] {
        let r = c.request(11, m, json!({"uri": "test://resource"})).await;
        assert_eq!((r.status, r.error_code()), (404, -32601), "{m}: {}", r.raw);
    }
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = reqwest::Client::new()
            .request(method.clone(), w.url("/mcp"))
            .header("mcp-protocol-version", V)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405, "{method}");
        assert_eq!(r.headers()["allow"], "POST");
    }
    // A notification is acknowledged and dropped.
    let n = json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}});
    let r = c
        .send(n.to_string(), &[("mcp-protocol-version".into(), V.into())])
        .await;
    assert_eq!(r.status, 202);

    // A well-formed call goes through, so the record is live...
    let ok = c.send(body, &good).await;
    assert_eq!(text_of(ok.result()), "refused-marker");
    // ... and holds exactly that one call.
    let seen = recorded(&record);
    assert_eq!(seen.matches("refused-marker").count(), 1, "{seen}");
    assert!(!seen.contains("logging/setLevel"), "{seen}");
}

#[tokio::test]
async fn a_session_era_client_still_works_alongside() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("t.jsonl");
    let w = Warden::start(&config(&record));
    let mut old = Client::new(&w.url("/mcp"));
    old.initialize().await;
    let r = old.call_tool("t__echo", json!({"message": "old"})).await;
    assert_eq!(text_of(r.result()), "old");
    assert!(r.result().get("resultType").is_none(), "{}", r.raw);
    // A modern client beside it gets the 2026-07-28 form ...
    let c = Modern::new(&w.url("/mcp"));
    let r = c
        .request(
            1,
            "tools/call",
            json!({"name": "t__echo", "arguments": {"message": "new"}}),
        )
        .await;
    assert_eq!(text_of(r.result()), "new");
    assert_eq!(r.result()["resultType"], "complete", "{}", r.raw);
    // ... and the session-era client still gets its own.
    let r = old
        .call_tool("t__echo", json!({"message": "old again"}))
        .await;
    assert_eq!(text_of(r.result()), "old again");
    assert!(r.result().get("resultType").is_none(), "{}", r.raw);
}

#[tokio::test]
async fn listen_streams_list_changes() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("t.jsonl");
    let w = Warden::start(&config(&record));
    let c = Modern::new(&w.url("/mcp"));
    // The context's upstream is started by a first request.
    let l = c.request(1, "tools/list", json!({})).await;
    assert_eq!(l.status, 200);
    let params = json!({"notifications": {"toolsListChanged": true, "promptsListChanged": false}});
    let mut stream = c.listen(2, params).await;
    let mut dec = warden_protocol::sse::Decoder::new(1 << 20);
    let ack = next_event(&mut stream, &mut dec).await;
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true})
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        2
    );
    let r = c
        .request(
            3,
            "tools/call",
            json!({"name": "t__change_tools", "arguments": {}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let changed = next_event(&mut stream, &mut dec).await;
    assert_eq!(
        changed["method"], "notifications/tools/list_changed",
        "{changed}"
    );
    assert_eq!(
        changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 2,
        "every frame of the stream names it: {changed}"
    );
}

async fn next_event<S, B, E>(stream: &mut S, dec: &mut warden_protocol::sse::Decoder) -> Value
where
    S: futures::Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Debug,
{
    use futures::StreamExt;
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), stream.next())
            .await
            .expect("listen stream stalled")
            .expect("listen stream ended")
            .expect("listen stream failed");
        if let Some(ev) = dec
            .feed(chunk.as_ref())
            .expect("bad SSE")
            .into_iter()
            .next()
        {
            return serde_json::from_str::<Value>(&ev.data).expect("JSON event");
        }
    }
}

#[tokio::test]
async fn listen_holds_resource_subscriptions_upstream() {
    let w = Warden::start(&format!("servers:\n{}", example_server("demo", "demo", "")));
    let c = Modern::new(&w.url("/mcp"));
    let l = c.request(1, "resources/list", json!({})).await;
    assert_eq!(l.status, 200, "{}", l.raw);
    let params =
        json!({"notifications": {"resourceSubscriptions": ["tickets://open", "nowhere://x"]}});
    let mut stream = c.listen(2, params).await;
    let mut dec = warden_protocol::sse::Decoder::new(1 << 20);
    let ack = next_event(&mut stream, &mut dec).await;
    // The URI no server has is not honoured.
    assert_eq!(
        ack["params"]["notifications"],
        json!({"resourceSubscriptions": ["tickets://open"]}),
        "{ack}"
    );
    let r = c
        .request(
            3,
            "tools/call",
            json!({"name": "demo__tickets_update", "arguments": {"id": "T-102", "status": "closed"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let updated = next_event(&mut stream, &mut dec).await;
    assert_eq!(
        updated["method"], "notifications/resources/updated",
        "{updated}"
    );
    assert_eq!(updated["params"]["uri"], "tickets://open");
    assert_eq!(
        updated["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 2,
        "{updated}"
    );

    // Closing the stream releases the upstream subscription (a request
    // through the pipeline like any other: counted in /metrics).
    drop(stream);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = reqwest::get(w.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let unsubscribed = metrics
            .lines()
            .any(|l| l.contains("method=\"resources/unsubscribe\"") && !l.starts_with('#'));
        if unsubscribed {
            // ... and the audit record says so.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let trail = std::fs::read_to_string(w.dir().join(".warden/audit/audit.jsonl"))
                    .unwrap_or_default();
                if trail.contains("\"action\":\"unsubscribe\"") {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "{trail}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no unsubscribe after the listen stream closed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn closing_the_response_cancels_the_call_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("t.jsonl");
    let w = Warden::start(&config(&record));
    let c = Modern::new(&w.url("/mcp"));
    let params = json!({"name": "t__hang", "arguments": {}});
    let headers = Modern::headers("tools/call", &params);
    let mut b = c
        .http
        .post(&c.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .timeout(std::time::Duration::from_millis(500))
        .body(c.body(7, "tools/call", params));
    for (k, v) in headers {
        b = b.header(k, v);
    }
    // The client gives up: the connection closes without an answer.
    assert!(b.send().await.is_err());
    let mut log = recorded(&record);
    for _ in 0..100 {
        if log.contains("notifications/cancelled") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        log = recorded(&record);
    }
    let hang: Value = serde_json::from_str(
        log.lines()
            .find(|l| l.contains("\"hang\""))
            .expect("hang recorded"),
    )
    .unwrap();
    let cancel: Value = serde_json::from_str(
        log.lines()
            .find(|l| l.contains("notifications/cancelled"))
            .unwrap_or_else(|| panic!("no cancellation reached the upstream: {log}")),
    )
    .unwrap();
    assert_eq!(cancel["params"]["requestId"], hang["id"]);
}

#[tokio::test]
async fn a_stray_session_id_or_last_event_id_is_ignored_for_a_modern_request() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("t.jsonl");
    let w = Warden::start(&config(&record));
    let c = Modern::new(&w.url("/mcp"));
    let params = json!({"name": "t__echo", "arguments": {"message": "stray"}});
    let mut headers = Modern::headers("tools/call", &params);
    headers.push(("mcp-session-id".into(), "not-a-session".into()));
    headers.push(("last-event-id".into(), "x:1".into()));
    let r = c.send(c.body(1, "tools/call", params), &headers).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(text_of(r.result()), "stray");
    let get = reqwest::Client::new()
        .get(w.url("/mcp"))
        .header("mcp-protocol-version", V)
        .header("mcp-session-id", "not-a-session")
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
}

/// #15.13: the official Python SDK 2.x routes a listen stream's frames by
/// the subscription id in their `_meta`; a resource update without it is
/// dropped, and `Client.listen()` yields nothing.
#[tokio::test]
async fn resource_updates_on_a_listen_stream_carry_the_subscription_id() {
    let p = crate::peers::Peers::load();
    let w = Warden::start(&format!("servers:\n{}", example_server("demo", "demo", "")));
    let url = w.url("/mcp");
    let args: Vec<String> = [
        p.driver("py_client.py").display().to_string(),
        "--url".into(),
        url,
        "--protocol".into(),
        V.into(),
        "--timeout".into(),
        "60".into(),
        "--request-timeout".into(),
        "15".into(),
        "--listen-resource".into(),
        "tickets://open".into(),
        "--call".into(),
        "demo__tickets_update".into(),
        "--args".into(),
        r#"{"id":"T-102","status":"closed"}"#.into(),
    ]
    .into();
    let v = tokio::task::spawn_blocking({
        let py = p.get("PY2").to_owned();
        move || crate::peers::run_driver(&py, &args)
    })
    .await
    .unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        v["listen_honored"]["resourceSubscriptions"],
        json!(["tickets://open"]),
        "{v}"
    );
    let events = v["listen_events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{v}");
    assert!(events[0].to_string().contains("tickets://open"), "{v}");
}

/// #16.8: one principal cannot park calls without end (each holds an
/// upstream call open): past `gateway.max_parked_per_principal` the call
/// is refused naming the cap; an answered call frees its place.
#[tokio::test]
async fn one_principal_cannot_park_calls_without_end() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("t.jsonl");
    let w = Warden::start(&format!(
        "gateway:\n  max_parked_per_principal: 2\n{}",
        config(&record)
    ));
    let c = Modern::new(&w.url("/mcp"));
    let params = json!({"name": "t__elicit", "arguments": {"message": "ok?"}});
    let mut parked = Vec::new();
    for id in 1..=2 {
        let r = c.request(id, "tools/call", params.clone()).await;
        assert_eq!(r.result()["resultType"], "input_required", "{}", r.raw);
        parked.push(r.result().clone());
    }
    let over = c.request(3, "tools/call", params.clone()).await;
    assert_eq!(over.error_code(), -32011, "{}", over.raw);
    let message = over.response()["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("gateway.max_parked_per_principal"),
        "{message}"
    );
    // Answering a parked call frees its place.
    let first = &parked[0];
    let key = first["inputRequests"]
        .as_object()
        .and_then(|r| r.keys().next())
        .expect("an input request")
        .clone();
    let mut retry = params.clone();
    retry["requestState"] = first["requestState"].clone();
    retry["inputResponses"] = json!({key: {"action": "accept", "content": {"answer": "yes"}}});
    let done = c.request(4, "tools/call", retry).await;
    assert_eq!(done.result()["structuredContent"]["action"], "accept");
    let again = c.request(5, "tools/call", params).await;
    assert_eq!(
        again.result()["resultType"],
        "input_required",
        "{}",
        again.raw
    );
}
