//! Limits through the real binary (#16, T11): rate limits, concurrency
//! caps, cost budgets, circuit breakers and loop detection, each refusal a
//! distinct JSON-RPC error with `data.retryAfter` where waiting helps, and
//! audited with the rule's id. Refused calls never reach the upstream.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;

/// Warden with the test server `t` (and `u`) and `limits`.
fn start(limits: &str, t_extra: &str) -> Warden {
    Warden::start(&format!(
        "servers:\n{}{t_extra}{}limits:\n{limits}",
        example_server("t", "test", ""),
        example_server("u", "test", "")
    ))
}

fn data(r: &Reply) -> &Value {
    &r.response()["error"]["data"]
}

/// The audit records of refused calls (`warden audit query --json`).
async fn limited_records(w: &Warden, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, out, _) = w.cli_status(&["audit", "query", "--json", "--decision", "deny"]);
        let found: Vec<Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| {
                e["reason_code"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("limits."))
            })
            .collect();
        if found.len() >= n || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_call_beyond_the_burst_gets_the_rate_error_with_retry_after() {
    let w = start(
        "  rate: [{id: slow-down, per: [principal, tool], rate: 6/min, burst: 2}]\n",
        "",
    );
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    for i in 0..2 {
        let r = c
            .call_tool("t__echo", json!({"message": format!("m{i}")}))
            .await;
        assert_eq!(text_of(r.result()), format!("m{i}"), "{}", r.raw);
    }
    let r = c.call_tool("t__echo", json!({"message": "m2"})).await;
    assert_eq!(r.error_code(), -32030, "{}", r.raw);
    assert_eq!(data(&r)["rule"], "slow-down");
    assert_eq!(data(&r)["limit"], "rate");
    let wait = data(&r)["retryAfter"].as_f64().expect("retryAfter");
    assert!((1.0..=10.0).contains(&wait), "{wait}");
    // Keyed per tool: another tool has a bucket of its own.
    let r = c.call_tool("t__whoami", json!({})).await;
    assert!(r.response().get("result").is_some(), "{}", r.raw);
    let records = limited_records(&w, 1).await;
    assert!(
        records.iter().any(|e| e["reason_code"] == "limits.rate"
            && e["policy_ids"].to_string().contains("limits:slow-down")),
        "{records:?}"
    );
}

#[tokio::test]
async fn a_flood_from_one_principal_is_cut_by_the_default_rate_rule() {
    let w = Warden::start(&format!("servers:\n{}", example_server("t", "test", "")));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let mut refused = 0;
    for i in 0..420 {
        let r = c
            .call_tool("t__echo", json!({"message": format!("{i}")}))
            .await;
        if r.response()["error"]["code"] == -32030 {
            refused += 1;
        }
    }
    assert!(
        refused > 0,
        "420 calls at once, none refused by the default rule"
    );
}

#[tokio::test]
async fn calls_beyond_the_concurrency_cap_are_refused_until_one_ends() {
    let w = start(
        "  concurrency: [{id: one-at-a-time, per: [principal], max: 1}]\n",
        "",
    );
    let url = w.url("/mcp");
    let mut a = Client::new(&url);
    a.initialize().await;
    let mut b = Client::new(&url);
    b.initialize().await;
    // Two slow calls at once: one holds the only slot, the other is refused.
    let (ra, rb) = tokio::join!(
        a.call_tool("t__slow", json!({"ms": 1500})),
        b.call_tool("t__slow", json!({"ms": 1500})),
    );
    let codes = [&ra, &rb].map(|r| r.response()["error"]["code"].clone());
    let refused = match codes {
        [Value::Null, _] => &rb,
        [_, Value::Null] => &ra,
        _ => panic!("neither was served: {} / {}", ra.raw, rb.raw),
    };
    assert_eq!(
        refused.response()["error"]["code"],
        -32031,
        "{}",
        refused.raw
    );
    assert_eq!(data(refused)["rule"], "one-at-a-time");
    assert!(data(refused).get("retryAfter").is_none());
    // The slot is free again.
    let r = a.call_tool("t__echo", json!({"message": "after"})).await;
    assert_eq!(text_of(r.result()), "after", "{}", r.raw);
}

#[tokio::test]
async fn a_spent_budget_blocks_with_what_remains_and_other_tools_are_free() {
    let w = start(
        "  budgets: [{id: daily-usd, per: [principal], unit: USD, limit: 1.0, period: day}]\n",
        "    tools:\n      - {name: echo, cost: {amount: 0.4, unit: USD}}\n      - {name: slow, cost: {amount: 0.01, unit: USD, per: ms}}\n",
    );
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    for i in 0..2 {
        let r = c
            .call_tool("t__echo", json!({"message": format!("paid {i}")}))
            .await;
        assert!(r.response().get("result").is_some(), "{}", r.raw);
    }
    let r = c
        .call_tool("t__echo", json!({"message": "over budget"}))
        .await;
    assert_eq!(r.error_code(), -32032, "{}", r.raw);
    let d = data(&r);
    assert_eq!(d["rule"], "daily-usd");
    assert_eq!(d["unit"], "USD");
    assert!((d["remaining"].as_f64().unwrap() - 0.2).abs() < 1e-9, "{d}");
    assert!(d["retryAfter"].as_f64().unwrap() <= 86_400.0);
    // Scaled by the argument: 0.01 × 30 ms = 0.3 > 0.2 left; 0.01 × 10 fits.
    let r = c.call_tool("t__slow", json!({"ms": 30})).await;
    assert_eq!(r.error_code(), -32032, "{}", r.raw);
    let r = c.call_tool("t__slow", json!({"ms": 10})).await;
    assert!(r.response().get("result").is_some(), "{}", r.raw);
    // A tool without a declared cost is not counted.
    let r = c.call_tool("t__whoami", json!({})).await;
    assert!(r.response().get("result").is_some(), "{}", r.raw);
    // What remains is visible to the operator.
    let out = w.cli(&["limits", "status", "--json", "--url", &w.base]);
    let status: Value = serde_json::from_str(&out).expect("JSON");
    let b = &status["budgets"][0];
    assert_eq!(b["rule"], "daily-usd", "{status}");
    assert_eq!(b["key"], "anonymous", "{status}");
    assert!(
        (b["remaining"].as_f64().unwrap() - 0.1).abs() < 1e-9,
        "{status}"
    );
    let metrics = reqwest::get(w.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let spent = metrics
        .lines()
        .find(|l| l.starts_with("warden_limits_budget_spent{") && l.contains("daily-usd"))
        .unwrap_or_else(|| panic!("no budget metric:\n{metrics}"));
    assert!(spent.ends_with(" 0.9") || spent.contains(" 0.9"), "{spent}");
    assert!(
        !metrics.contains("anonymous"),
        "metrics never name principals"
    );
    let table = w.cli(&["limits", "status", "--url", &w.base]);
    assert!(
        table.contains("daily-usd") && table.contains("breakers: all closed"),
        "{table}"
    );
}

#[tokio::test]
async fn a_failing_upstream_trips_its_breaker_and_other_upstreams_are_unaffected() {
    let w = start(
        "  breakers: {error_rate: 0.5, min_calls: 3, window: 60s, open_for: 5m}\n",
        "    restart: {initial_backoff: 50ms, max_backoff: 200ms}\n",
    );
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let mut opened = None;
    for _ in 0..10 {
        let r = c.call_tool("t__crash", json!({})).await;
        if r.response()["error"]["code"] == -32033 {
            opened = Some(r);
            break;
        }
        assert_eq!(r.error_code(), -32010, "the upstream's failure: {}", r.raw);
    }
    let r = opened.expect("the breaker never opened");
    assert!(
        data(&r)["retryAfter"].as_f64().unwrap() > 200.0,
        "{}",
        r.raw
    );
    // The server's breaker is open too: its other tools wait…
    let r = c.call_tool("t__echo", json!({"message": "blocked"})).await;
    assert_eq!(r.error_code(), -32033, "{}", r.raw);
    // …and another upstream is served.
    let r = c
        .call_tool("u__echo", json!({"message": "still served"}))
        .await;
    assert_eq!(text_of(r.result()), "still served", "{}", r.raw);
    // The operator sees which breakers are open.
    let status = w.cli(&["limits", "status", "--json", "--url", &w.base]);
    assert!(status.contains(r#""state":"open""#), "{status}");
    assert!(status.contains(r#""scope":"t""#), "{status}");
    // Every transition is audited.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, out, _) = w.cli_status(&["audit", "query", "--json", "--server", "t"]);
        if out.contains("\"kind\":\"breaker\"") && out.contains("breaker closed -> open") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no breaker record:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_loop_of_identical_calls_is_caught() {
    let w = start("  loops: {max_repeats: 3, window: 60s}\n", "");
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    for _ in 0..3 {
        let r = c.call_tool("t__echo", json!({"message": "again"})).await;
        assert_eq!(text_of(r.result()), "again", "{}", r.raw);
    }
    let r = c.call_tool("t__echo", json!({"message": "again"})).await;
    assert_eq!(r.error_code(), -32034, "{}", r.raw);
    assert!(data(&r)["retryAfter"].as_f64().unwrap() >= 1.0);
    let r = c
        .call_tool("t__echo", json!({"message": "something else"}))
        .await;
    assert_eq!(text_of(r.result()), "something else", "{}", r.raw);
}

#[test]
fn limits_configuration_errors_name_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("warden.yaml");
    std::fs::write(
        &cfg,
        "servers:\n  t:\n    command: x\nlimits:\n  rate: [{id: r, rate: lots}]\n",
    )
    .unwrap();
    let out = std::process::Command::new(WARDEN)
        .args(["check", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("limits.rate[0].rate"), "{text}");
}
