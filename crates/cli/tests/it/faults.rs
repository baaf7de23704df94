//! Upstream faults: the client gets an error, Warden stays up, the server
//! restarts.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

fn config() -> String {
    format!(
        "servers:\n{}    call_timeout: 3s\n    restart: {{initial_backoff: 50ms, max_backoff: 1s}}\n",
        example_server("t", "test", "")
    )
}

/// Bounds a whole call so a hang fails the test instead of stalling CI.
async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("call did not finish in time")
}

#[tokio::test]
async fn crash_mid_call_fails_at_once_and_restarts() {
    let w = Warden::start(&config().replace("call_timeout: 3s", "call_timeout: 60s"));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    // The call timeout is 60 s: an answer within 20 s proves the pending
    // call failed when the process died, not when the deadline passed.
    let r = within(20, c.call_tool("t__crash", json!({}))).await;
    assert_eq!(r.error_code(), -32010, "{}", r.raw);
    assert!(r.response()["error"]["data"]["correlationId"].is_string());
    let mut ok = None;
    for _ in 0..50 {
        let r = within(
            20,
            c.call_tool("t__echo", json!({"message": "after crash"})),
        )
        .await;
        if r.response().get("result").is_some() {
            ok = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        text_of(ok.expect("server never came back").result()),
        "after crash"
    );
}

#[tokio::test]
async fn hang_past_timeout_gets_an_error_and_gateway_stays_up() {
    let w = Warden::start(&config());
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let r = within(30, c.call_tool("t__hang", json!({}))).await;
    assert_eq!(r.error_code(), -32010);
    let msg = r.response()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(msg.contains("did not answer"), "{msg}");
    let r = within(20, c.call_tool("t__echo", json!({"message": "still here"}))).await;
    assert_eq!(text_of(r.result()), "still here");
}

#[tokio::test]
async fn garbage_on_stdout_restarts_the_server() {
    let w = Warden::start(&config().replace("call_timeout: 3s", "call_timeout: 60s"));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let before = text_of(c.call_tool("t__whoami", json!({})).await.result());
    let r = within(20, c.call_tool("t__garbage", json!({}))).await;
    assert_eq!(r.error_code(), -32010, "{}", r.raw);
    let mut after = None;
    for _ in 0..50 {
        let r = within(20, c.call_tool("t__whoami", json!({}))).await;
        if r.response().get("result").is_some() {
            after = Some(text_of(r.result()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = after.expect("server never came back");
    assert_ne!(before, after, "same process after garbage: {before}");
}
