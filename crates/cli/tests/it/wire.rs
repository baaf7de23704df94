//! Hostile input: every malformed class gets its error and never reaches
//! the upstream (a recording upstream proves it).

use serde_json::json;

use crate::harness::*;

fn config(rec: &std::path::Path) -> String {
    format!(
        "gateway:\n  max_body_bytes: 65536\nservers:\n{}",
        example_server("rec", "test", &record_arg(rec))
    )
}

#[tokio::test]
async fn malformed_messages_are_refused_before_any_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let w = Warden::start(&config(&rec));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;

    // (name, body, expected HTTP status, expected JSON-RPC code)
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"rec__echo","arguments":{{"message":"HOSTILE-deep","x":{}1{}}}}}}}"#,
        "[".repeat(80),
        "]".repeat(80)
    );
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{{"name":"rec__echo","arguments":{{"message":"HOSTILE-big {}"}}}}}}"#,
        "x".repeat(70_000)
    );
    let cases: Vec<(&str, String, u16, i64)> = vec![
        ("invalid json", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo","arguments":{"message":"HOSTILE-json"}"#.into(), 400, -32700),
        ("trailing garbage", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo","arguments":{"message":"HOSTILE-trail"}}} {}"#.into(), 400, -32700),
        ("not an object", r#""HOSTILE-string""#.into(), 400, -32600),
        ("missing jsonrpc", r#"{"id":2,"method":"tools/call","params":{"name":"rec__echo","arguments":{"message":"HOSTILE-nojsonrpc"}}}"#.into(), 400, -32600),
        ("duplicate key", r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rec__echo","name":"rec__crash","arguments":{"message":"HOSTILE-dup"}}}"#.into(), 400, -32600),
        ("case-variant key", r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","Method":"tools/list","params":{"name":"rec__echo","arguments":{"message":"HOSTILE-case"}}}"#.into(), 400, -32600),
        ("float id", r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"rec__echo","arguments":{"message":"HOSTILE-floatid"}}}"#.into(), 400, -32600),
        ("object id", r#"{"jsonrpc":"2.0","id":{"a":1},"method":"tools/call","params":{"name":"rec__echo","arguments":{"message":"HOSTILE-objid"}}}"#.into(), 400, -32600),
        ("batch not negotiated", r#"[{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"rec__echo","arguments":{"message":"HOSTILE-batch"}}}]"#.into(), 400, -32600),
        ("too deep", deep, 400, -32600),
        ("too large", big, 413, -32600),
        ("params not object", r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":"HOSTILE-params"}"#.into(), 400, -32600),
    ];
    for (name, body, status, code) in cases {
        let r = c.post_raw(body).await;
        assert_eq!(r.status, status, "{name}: {}", r.raw);
        assert_eq!(r.error_code(), code, "{name}: {}", r.raw);
        assert!(r.response()["id"].is_null(), "{name}");
    }

    // The gateway is still up, and the recorder works: a valid call arrives.
    let ok = c
        .call_tool("rec__echo", json!({"message": "VALID-marker"}))
        .await;
    assert_eq!(text_of(ok.result()), "VALID-marker");
    let log = recorded(&rec);
    assert!(log.contains("VALID-marker"), "recorder saw nothing: {log}");
    assert!(
        !log.contains("HOSTILE"),
        "a refused message reached the upstream:\n{log}"
    );
}

#[tokio::test]
async fn forwarded_requests_keep_unknown_fields_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let w = Warden::start(&config(&rec));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    // Unknown members at the envelope and params levels, odd spacing and
    // escapes: all reach the upstream as sent. (Inside `arguments` the
    // tool's schema rules: undeclared properties are refused in strict mode.)
    let body = r#"{"jsonrpc":"2.0","id":"abc-1","method":"tools/call","params":{"name":"rec__echo","arguments":{ "message" : "keep \u00e9 \"q\"" },"x-future-field":{"z":1,"a":[true,null,1.50]}},"x-top":7}"#;
    let r = c.post_raw(body.into()).await;
    assert_eq!(r.response()["id"], "abc-1");
    let log = recorded(&rec);
    let line = log
        .lines()
        .find(|l| l.contains("keep"))
        .expect("call recorded");
    // Only the id and the namespaced name were changed.
    assert!(line.contains(r#""arguments":{ "message" : "keep \u00e9 \"q\"" },"x-future-field":{"z":1,"a":[true,null,1.50]}},"x-top":7}"#), "{line}");
    assert!(line.contains(r#""name":"echo""#), "{line}");
    assert!(!line.contains("abc-1"), "client id leaked upstream: {line}");
}

#[tokio::test]
async fn batches_work_when_negotiated_2025_03_26() {
    let w = Warden::start(&format!("servers:\n{}", example_server("t", "test", "")));
    let mut c = Client::new(&w.url("/mcp"));
    c.version = "2025-03-26".into();
    c.initialize().await;
    let r = c
        .post_raw(
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t__echo","arguments":{"message":"one"}}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t__echo","arguments":{"message":"two"}}},{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"x","progress":1}}]"#.into(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.messages.len(), 2, "{}", r.raw);
    for m in &r.messages {
        let want = if m["id"] == 1 { "one" } else { "two" };
        assert_eq!(text_of(&m["result"]), want);
    }
}
