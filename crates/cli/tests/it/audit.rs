//! The audit trail through the real binary: a record for every decision,
//! queryable from the CLI, hash-chained so that tampering is named, and
//! not one answered call lost when Warden is killed with SIGKILL.

use serde_json::{json, Value};

use crate::harness::*;

fn yaml(extra: &str) -> String {
    format!(
        "identity:\n  public_url: http://127.0.0.1:1\n  data_dir: '{{DIR}}/data'\n  dev_issuer: {{enabled: true}}\nservers:\n{}authorization:\n  roles:\n    admin:\n      grants:\n        - {{tools: [\"*\"], resources: [\"*\"], prompts: [\"*\"]}}\n    analyst:\n      grants:\n        - {{tools: [t/echo]}}\n{extra}",
        example_server("t", "test", "")
    )
}

async fn client(w: &Warden, sub: &str, role: &str) -> Client {
    let token = w.cli(&["token", "mint", "--sub", sub, "--roles", role]);
    let mut c = Client::with_bearer(&w.url("/mcp"), &token);
    c.initialize().await;
    c
}

/// Every call record (JSON lines of `warden audit query --json`).
fn calls(w: &Warden) -> Vec<Value> {
    let (ok, out, err) = w.cli_status(&["audit", "query", "--json", "--limit", "100000"]);
    assert!(ok, "audit query failed: {err}");
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("query --json prints JSON lines"))
        .filter(|e| e["kind"] == "call")
        .collect()
}

fn wait_for_calls(w: &Warden, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let c = calls(w);
        if c.len() >= n {
            return c;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    calls(w)
}

#[tokio::test]
async fn every_decision_is_recorded_with_who_what_and_why_but_no_secrets() {
    let w = Warden::start(&yaml("audit:\n  arguments: redacted\n"));
    let mut admin = client(&w, "ada", "admin").await;
    let mut analyst = client(&w, "ann", "analyst").await;
    let ok = admin
        .call_tool("t__echo", json!({"message": "hello"}))
        .await;
    assert!(ok.response().get("result").is_some(), "{}", ok.response());
    let denied = analyst.call_tool("t__add", json!({"a": 1, "b": 2})).await;
    assert_eq!(denied.error_code(), -32012);
    let corr = denied.response()["error"]["data"]["correlationId"]
        .as_str()
        .unwrap()
        .to_owned();

    let records = wait_for_calls(&w, 2);
    let echo = records
        .iter()
        .find(|e| e["tool"] == "echo")
        .unwrap_or_else(|| panic!("no echo record in {records:?}"));
    assert_eq!(echo["principal"]["subject"], "ada");
    assert_eq!(echo["principal"]["roles"], json!(["admin"]));
    assert_eq!(echo["server"], "t");
    assert_eq!(echo["action"], "call_tool");
    assert_eq!(echo["decision"], "allow");
    assert_eq!(echo["client_addr"], "127.0.0.1", "the peer address: {echo}");
    assert!(
        echo["output"]["size"].as_u64().is_some_and(|n| n > 0),
        "the result's size and classes are recorded: {echo}"
    );
    assert!(
        echo["input_hash"]
            .as_str()
            .is_some_and(|h| h.starts_with("sha256")),
        "{echo}"
    );
    assert!(echo["latency_us"].as_u64().is_some());
    assert!(
        echo["policy_ids"].as_array().is_some_and(|p| !p.is_empty()),
        "{echo}"
    );
    let text = echo.to_string();
    assert!(
        text.contains("hello"),
        "arguments are kept when configured: {text}"
    );
    assert!(!text.contains("eyJ"), "no token in the record: {text}");

    let add = records
        .iter()
        .find(|e| e["correlation_id"] == corr.as_str())
        .unwrap_or_else(|| panic!("the denied call's correlation id {corr} in {records:?}"));
    assert_eq!(add["decision"], "deny");
    assert_eq!(add["reason_code"], "default_deny");
    assert_eq!(add["principal"]["subject"], "ann");

    // Filters from the CLI.
    let (ok, out, _) = w.cli_status(&["audit", "query", "--decision", "deny", "--json"]);
    assert!(ok);
    assert!(
        out.lines().count() >= 1 && out.lines().all(|l| l.contains("\"deny\"")),
        "{out}"
    );
    let (ok, table, _) = w.cli_status(&["audit", "query", "--principal", "ada"]);
    assert!(ok && table.contains("t/echo"), "{table}");
    let (ok, report, err) = w.cli_status(&["audit", "verify"]);
    assert!(ok, "verify: {report} {err}");
}

#[tokio::test]
async fn a_tool_argument_cannot_forge_a_log_or_audit_line() {
    let w = Warden::start(&yaml(""));
    let mut admin = client(&w, "ada", "admin").await;
    let forged = "x\n{\"level\":\"ERROR\",\"fields\":{\"message\":\"forged\"}}\r\n";
    let r = admin.call_tool("t__echo", json!({"message": forged})).await;
    assert!(r.response().get("result").is_some());
    wait_for_calls(&w, 1);
    let trail = std::fs::read_to_string(w.dir().join(".warden/audit/audit.jsonl")).unwrap();
    for line in trail.lines() {
        let v: Value = serde_json::from_str(line).expect("every trail line is one JSON record");
        assert!(v.get("seq").is_some() || v.get("hash").is_some(), "{line}");
        assert!(
            !line.starts_with("{\"level\""),
            "forged line in the trail: {line}"
        );
    }
}

#[tokio::test]
async fn editing_deleting_or_reordering_a_record_is_named_by_verify() {
    let w = Warden::start(&yaml(""));
    let mut admin = client(&w, "ada", "admin").await;
    for i in 0..5 {
        admin
            .call_tool("t__echo", json!({"message": format!("m{i}")}))
            .await;
    }
    wait_for_calls(&w, 5);
    let (ok, report, err) = w.cli_status(&["audit", "verify"]);
    assert!(ok, "an intact trail verifies: {report} {err}");
    let path = w.dir().join(".warden/audit/audit.jsonl");
    let original = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 5, "{original}");
    let target = 3;
    let edited = lines[target].replacen("\"ada\"", "\"eve\"", 1);
    assert_ne!(edited, lines[target], "the record names ada");
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("edit", {
            let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            l[target] = edited.clone();
            l
        }),
        ("delete", {
            let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            l.remove(target);
            l
        }),
        ("reorder", {
            let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            l.swap(target, target + 1);
            l
        }),
    ];
    for (what, content) in cases {
        std::fs::write(&path, content.join("\n") + "\n").unwrap();
        let (ok, out, err) = w.cli_status(&["audit", "verify"]);
        assert!(!ok, "{what}: verify must fail: {out}");
        let said = format!("{out}{err}");
        assert!(
            said.contains(&format!("audit.jsonl:{}", target + 1)),
            "{what}: the report names the first broken line ({}): {said}",
            target + 1
        );
    }
    std::fs::write(&path, &original).unwrap();
    let (ok, _, _) = w.cli_status(&["audit", "verify"]);
    assert!(ok, "restored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_answered_call() {
    let cfg = yaml(
        "audit:\n  arguments: redacted\n  durability: {low: sync, medium: sync, high: sync, critical: sync, other: sync}\n",
    );
    let w = Warden::start(&cfg);
    let token = w.cli(&["token", "mint", "--sub", "ada", "--roles", "admin"]);
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for worker in 0..8 {
        let url = w.url("/mcp");
        let token = token.clone();
        let answered = answered.clone();
        workers.push(tokio::spawn(async move {
            let mut c = Client::with_bearer(&url, &token);
            c.initialize().await;
            for i in 0.. {
                let marker = format!("w{worker}-{i}");
                let body = json!({"jsonrpc":"2.0","id":i+10,"method":"tools/call",
                    "params":{"name":"t__echo","arguments":{"message": marker}}})
                .to_string();
                let Ok(resp) = c.builder(body).send().await else {
                    return;
                };
                let Ok(text) = resp.text().await else { return };
                if text.contains("\"result\"") && text.contains(&marker) {
                    answered.lock().unwrap().push(marker);
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let dir = w.kill();
    for h in workers {
        let _ = h.await;
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() > 20,
        "load ran: {} calls answered",
        answered.len()
    );

    // Restart on the same directory: the journal is recovered.
    let w = Warden::start_in(dir, &cfg, &[]);
    // Recovered records reach the query store right after the restart.
    let mut lost: Vec<&String> = answered.iter().collect();
    for _ in 0..50 {
        let recorded: std::collections::HashSet<String> = calls(&w)
            .iter()
            .filter_map(|e| e["arguments"]["message"].as_str().map(str::to_owned))
            .collect();
        lost = answered.iter().filter(|m| !recorded.contains(*m)).collect();
        if lost.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        lost.is_empty(),
        "{} of {} answered calls have no audit record, e.g. {:?}",
        lost.len(),
        answered.len(),
        &lost[..lost.len().min(5)]
    );
    let (ok, report, err) = w.cli_status(&["audit", "verify"]);
    assert!(ok, "the trail verifies after the crash: {report} {err}");
}

/// #15.18: a `warden stdio` process started while `warden serve` holds the
/// audit trail keeps a trail of its own; `warden audit query` and `verify`
/// read it too, so every record of the deployment is reachable.
#[tokio::test]
async fn stdio_records_are_queryable_and_verified_beside_a_serving_warden() {
    use std::io::{BufRead, Write};

    let w = Warden::start(&format!("servers:\n{}", example_server("t", "test", "")));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let r = c.call_tool("t__echo", json!({"message": "via http"})).await;
    assert_eq!(text_of(r.result()), "via http", "{}", r.raw);

    let (mut child, mut stdin, mut out) = stdio_warden(&w.config_path());
    for line in [
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"s","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t__echo","arguments":{"message":"via stdio"}}}"#,
    ] {
        writeln!(stdin, "{line}").unwrap();
    }
    stdin.flush().unwrap();
    let mut answers = 0;
    let mut line = String::new();
    while answers < 2 {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "stdio ended early");
        if line.contains("\"id\":") {
            answers += 1;
        }
    }
    assert!(line.contains("via stdio"), "{line}");
    drop(stdin);
    assert!(child.wait().unwrap().success());

    let calls = wait_for_calls(&w, 2);
    let echoes = calls.iter().filter(|e| e["tool"] == "echo").count();
    assert_eq!(echoes, 2, "both transports' calls are queryable: {calls:?}");
    let (ok, out, err) = w.cli_status(&["audit", "verify"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("trail stdio-"),
        "the stdio trail is verified too: {out}"
    );
}

#[tokio::test]
async fn audit_enabled_false_keeps_no_trail_and_calls_still_pass() {
    let w = Warden::start(&yaml("audit: {enabled: false}\n"));
    let mut admin = client(&w, "ada", "admin").await;
    let ok = admin
        .call_tool("t__echo", json!({"message": "hello"}))
        .await;
    assert!(ok.response().get("result").is_some(), "{}", ok.response());
    let denied = client(&w, "ann", "analyst")
        .await
        .call_tool("t__add", json!({"a": 1, "b": 2}))
        .await;
    assert_eq!(denied.error_code(), -32012, "the other controls still run");
    assert!(
        !w.dir().join(".warden/audit").exists(),
        "no trail is started: {:?}",
        std::fs::read_dir(w.dir().join(".warden")).map(|d| d.count())
    );
}

/// Regression: a client that gave up in the middle of a call (closed its
/// connection) took the call's audit record with it: the pipeline ran in
/// the HTTP handler, which the server dropped with the connection, though
/// the upstream had been asked to run the tool. (Seen on the session era;
/// the 2026-07-28 path spawned a task per call then and now runs in the
/// handler too.) Each call must still come to its outcome and its record.
#[tokio::test]
async fn a_call_whose_client_disconnects_mid_call_is_still_recorded() {
    let w = Warden::start(&yaml(""));
    let c = client(&w, "ada", "admin").await;
    let params = json!({"name": "t__slow", "arguments": {"ms": 1500}});
    let session = c.builder(
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}).to_string(),
    );
    let (body, headers) = crate::eras::modern_request(8, "tools/call", params);
    let mut modern = c
        .http
        .post(&c.url)
        .headers(c.extra_headers.clone())
        .body(body);
    for (k, v) in headers {
        modern = modern.header(k, v);
    }
    for (era, request) in [("session", session), ("2026-07-28", modern)] {
        let gave_up = request
            .timeout(std::time::Duration::from_millis(300))
            .send()
            .await;
        assert!(
            gave_up.as_ref().is_err_and(reqwest::Error::is_timeout),
            "{era}: the client gives up before the tool answers: {gave_up:?}"
        );
    }
    let records = wait_for_calls(&w, 2);
    let slow: Vec<_> = records.iter().filter(|e| e["tool"] == "slow").collect();
    assert_eq!(slow.len(), 2, "both abandoned calls recorded: {records:?}");
    for r in slow {
        assert_eq!(r["principal"]["subject"], "ada");
        assert_eq!(r["decision"], "allow");
    }
}
