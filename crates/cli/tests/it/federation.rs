//! Federation: many upstreams behind one endpoint.

use serde_json::{json, Value};

use crate::harness::*;

fn config() -> String {
    format!(
        "gateway:\n  instructions: Gateway notes.\nservers:\n{}{}virtual_servers:\n  ro:\n    servers: [t]\n    tools: [\"t__echo\"]\n",
        example_server("demo", "demo", ""),
        example_server("t", "test", "")
    )
}

#[tokio::test]
async fn tools_are_namespaced_and_routed_to_their_server() {
    let w = Warden::start(&config());
    let mut c = Client::new(&w.url("/mcp"));
    let init = c.initialize().await;
    assert_eq!(init["serverInfo"]["name"], "warden");
    assert!(init["capabilities"]["tools"].is_object());
    assert!(init["capabilities"]["prompts"].is_object());
    assert!(init["capabilities"]["resources"].is_object());
    let instructions = init["instructions"].as_str().unwrap_or_default();
    assert!(instructions.contains("Gateway notes."), "{instructions}");
    assert!(instructions.contains("`demo`"), "{instructions}");

    let names = c.tool_names().await;
    assert!(
        names.contains(&"demo__notes_search".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"t__echo".to_string()), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("demo__") || n.starts_with("t__")),
        "{names:?}"
    );

    let r = c.call_tool("t__echo", json!({"message": "hi"})).await;
    assert_eq!(text_of(r.result()), "hi");
    let r = c
        .call_tool("demo__notes_search", json!({"query": "a"}))
        .await;
    assert!(r.result()["content"].is_array(), "{}", r.raw);
    // A tool of one server is not reachable under another server's prefix.
    let r = c.call_tool("demo__echo", json!({"message": "x"})).await;
    assert!(
        r.response().get("error").is_some() || r.result()["isError"] == true,
        "{}",
        r.raw
    );
    let r = c.call_tool("nosuch__echo", json!({})).await;
    assert_eq!(r.error_code(), -32602);
    let r = c.call_tool("echo", json!({})).await;
    assert_eq!(r.error_code(), -32602);
}

#[tokio::test]
async fn prompts_and_resources_route_back() {
    let w = Warden::start(&config());
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let prompts = c.request("prompts/list", json!({})).await;
    let names: Vec<&str> = prompts.result()["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"t__test_prompt") && names.contains(&"demo__weekly_report"),
        "{names:?}"
    );
    let p = c
        .request(
            "prompts/get",
            json!({"name": "t__test_prompt", "arguments": {}}),
        )
        .await;
    assert!(p.result()["messages"].is_array(), "{}", p.raw);

    let res = c.request("resources/list", json!({})).await;
    let uris: Vec<String> = res.result()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["uri"].as_str().map(str::to_owned))
        .collect();
    assert!(uris.iter().any(|u| u == "test://resource"), "{uris:?}");
    let note = uris
        .iter()
        .find(|u| u.starts_with("notes://"))
        .expect("a note resource")
        .clone();
    for uri in ["test://resource".to_string(), note] {
        let r = c.request("resources/read", json!({"uri": uri})).await;
        assert_eq!(r.result()["contents"][0]["uri"], uri.as_str(), "{}", r.raw);
    }
    let r = c
        .request("resources/read", json!({"uri": "nowhere://x"}))
        .await;
    assert_eq!(r.error_code(), -32002);
    let t = c.request("resources/templates/list", json!({})).await;
    assert!(t.result()["resourceTemplates"].is_array());
}

#[tokio::test]
async fn server_to_client_requests_reach_the_client_and_answers_return() {
    let w = Warden::start(&config());
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let r = c.call_tool("t__sample", json!({"prompt": "hello"})).await;
    let req = r
        .messages
        .iter()
        .find(|m| m["method"] == "sampling/createMessage")
        .expect("sampling request seen");
    assert!(req["id"].is_string() || req["id"].is_number());
    assert!(
        text_of(r.result()).contains("sampled by test client"),
        "{}",
        r.raw
    );

    let r = c.call_tool("t__elicit", json!({"message": "ok?"})).await;
    assert!(r
        .messages
        .iter()
        .any(|m| m["method"] == "elicitation/create"));
    assert!(text_of(r.result()).contains("accept"), "{}", r.raw);

    let r = c.call_tool("t__roots", json!({})).await;
    assert!(text_of(r.result()).contains("file:///tmp"), "{}", r.raw);
}

#[tokio::test]
async fn progress_is_routed_with_the_clients_own_token() {
    let w = Warden::start(&config());
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let r = c
        .request("tools/call", json!({"name": "t__progress", "arguments": {"steps": 3}, "_meta": {"progressToken": "client-tok"}}))
        .await;
    let progress: Vec<&Value> = r
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{}", r.raw);
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "client-tok"),
        "{}",
        r.raw
    );
    assert!(r.result().is_object());
}

#[tokio::test]
async fn virtual_servers_expose_only_their_subset() {
    let w = Warden::start(&config());
    let mut c = Client::new(&w.url("/mcp/ro"));
    c.initialize().await;
    assert_eq!(c.tool_names().await, vec!["t__echo".to_string()]);
    let r = c
        .call_tool("demo__notes_search", json!({"query": "a"}))
        .await;
    assert_eq!(r.error_code(), -32602);
    let r = c.call_tool("t__crash", json!({})).await;
    assert_eq!(r.error_code(), -32602);
    let r = c.call_tool("t__echo", json!({"message": "sub"})).await;
    assert_eq!(text_of(r.result()), "sub");
    // Sessions are bound to their endpoint.
    let mut other = Client::new(&w.url("/mcp"));
    other.session = c.session.clone();
    let r = other.request("tools/list", json!({})).await;
    assert_eq!(r.status, 404);
    let unknown = Client::new(&w.url("/mcp/nope"))
        .request("initialize", json!({}))
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn request_ids_of_different_clients_never_collide_upstream() {
    let w = Warden::start(&config());
    let mut a = Client::new(&w.url("/mcp"));
    let mut b = Client::new(&w.url("/mcp"));
    a.initialize().await;
    b.initialize().await;
    // Both clients use id 2 at the same time on the same (shared) process.
    let (ra, rb) = tokio::join!(
        a.call_tool("t__slow", json!({"ms": 300})),
        b.call_tool("t__echo", json!({"message": "from b"}))
    );
    assert_eq!(ra.response()["id"], rb.response()["id"]);
    assert!(ra.result().is_object(), "{}", ra.raw);
    assert_eq!(text_of(rb.result()), "from b");
}

#[tokio::test]
async fn invalid_cursor_is_refused() {
    let w = Warden::start(&config());
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let r = c.request("tools/list", json!({"cursor": "not-ours"})).await;
    assert_eq!(r.error_code(), -32602);
}

#[tokio::test]
async fn isolation_modes_decide_who_shares_an_upstream() {
    let yaml = format!(
        "servers:\n{}    isolation: session\n{}    isolation: shared\n",
        example_server("per_session", "test", ""),
        example_server("shared", "test", "")
    );
    let w = Warden::start(&yaml);
    let mut a = Client::new(&w.url("/mcp"));
    let mut b = Client::new(&w.url("/mcp"));
    a.initialize().await;
    b.initialize().await;
    // Strict: a whoami text that is not JSON with a numeric instance fails
    // the test instead of making the (in)equalities below hold vacuously.
    // (Not the pid: every sandboxed server is PID 1 of its namespace.)
    let pid = |v: &Value| -> String {
        let t = text_of(v);
        serde_json::from_str::<Value>(&t)
            .ok()
            .and_then(|j| j["instance"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("whoami gave no pid: {t}"))
    };
    let a_sess = pid(a.call_tool("per_session__whoami", json!({})).await.result());
    let b_sess = pid(b.call_tool("per_session__whoami", json!({})).await.result());
    assert_ne!(a_sess, b_sess, "session isolation shared a process");
    let a_shared = pid(a.call_tool("shared__whoami", json!({})).await.result());
    let b_shared = pid(b.call_tool("shared__whoami", json!({})).await.result());
    assert_eq!(a_shared, b_shared, "shared isolation started two processes");
    // The session's own upstream ends with the session: a new session gets a new one.
    let d = a
        .http
        .delete(&a.url)
        .header("mcp-session-id", a.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(d.status().as_u16(), 200);
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let c_sess = pid(c.call_tool("per_session__whoami", json!({})).await.result());
    assert_ne!(c_sess, a_sess);
}

#[tokio::test]
async fn cancellation_reaches_the_upstream_with_its_own_id() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let w = Warden::start(&format!(
        "servers:\n{}",
        example_server("t", "test", &record_arg(&rec))
    ));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let hanging = c.builder(json!({"jsonrpc":"2.0","id":"h-1","method":"tools/call","params":{"name":"t__hang","arguments":{}}}).to_string());
    let call = tokio::spawn(async move { hanging.send().await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = c
        .post_raw(json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"h-1","reason":"user"}}).to_string())
        .await;
    assert_eq!(r.status, 202);
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), call)
        .await
        .expect("cancelled call still hanging")
        .unwrap()
        .unwrap();
    assert_eq!(status, 202);
    // The cancellation is queued to the upstream before the 202; wait until
    // the upstream has read (and recorded) it.
    let mut log = recorded(&rec);
    for _ in 0..100 {
        if log.contains("notifications/cancelled") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        log = recorded(&rec);
    }
    let hang_line = log
        .lines()
        .find(|l| l.contains("\"hang\""))
        .expect("hang recorded");
    let upstream_id: Value = serde_json::from_str::<Value>(hang_line).unwrap()["id"].clone();
    let cancel = log
        .lines()
        .find(|l| l.contains("notifications/cancelled"))
        .expect("cancellation forwarded");
    let cancel: Value = serde_json::from_str(cancel).unwrap();
    assert_eq!(cancel["params"]["requestId"], upstream_id);
    assert!(!log.contains("h-1"), "the client's id leaked upstream");
}

#[tokio::test]
async fn completion_subscription_and_logging_are_routed() {
    let w = Warden::start(&config());
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let r = c
        .request(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "demo__summarize_ticket"}, "argument": {"name": "ticket_id", "value": "T-1"}}),
        )
        .await;
    let values = r.result()["completion"]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        values
            .iter()
            .any(|v| v.as_str().is_some_and(|s| s.starts_with("T-1"))),
        "{}",
        r.raw
    );
    let r = c
        .request("logging/setLevel", json!({"level": "debug"}))
        .await;
    assert!(r.result().is_object());
    let r = c
        .request("resources/subscribe", json!({"uri": "tickets://open"}))
        .await;
    assert!(r.result().is_object(), "{}", r.raw);
    // A ticket change is announced to the subscriber on its standalone stream.
    let r = c
        .call_tool(
            "demo__tickets_update",
            json!({"id": "T-101", "status": "closed"}),
        )
        .await;
    assert!(r.result().is_object(), "{}", r.raw);
    let get = c
        .http
        .get(&c.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    let mut dec = warden_protocol::sse::Decoder::new(1 << 20);
    let mut s = futures::StreamExt::boxed(get.bytes_stream());
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|m: &Value| m["method"] == "notifications/resources/updated")
    {
        let chunk = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            futures::StreamExt::next(&mut s),
        )
        .await
        .unwrap_or_else(|_| panic!("no resources/updated; saw {seen:?}"));
        let Some(Ok(chunk)) = chunk else {
            panic!("stream ended; saw {seen:?}")
        };
        for ev in dec.feed(&chunk).unwrap() {
            seen.push(serde_json::from_str(&ev.data).unwrap());
        }
    }
    let updated = seen
        .iter()
        .find(|m| m["method"] == "notifications/resources/updated")
        .unwrap();
    assert_eq!(updated["params"]["uri"], "tickets://open");
}
