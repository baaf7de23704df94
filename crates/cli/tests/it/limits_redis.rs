//! Limits shared in Redis (`limits.redis`, #16) through the real binary:
//! two `warden serve` processes on one Redis enforce one limit, and each
//! fail mode behaves as configured when Redis stalls or drops (a proxy of
//! the test's own between Warden and the real Redis). Without Redis on
//! 127.0.0.1:6379 these tests print `SKIPPED` and pass, unless
//! `WARDEN_REQUIRE_SERVICES=1`.

use std::time::{Duration, Instant};

use serde_json::json;
use warden_limits::testing::{
    redis_available, unique_prefix, ProxyMode, RedisProxy, REDIS_URL as REDIS,
};

use crate::harness::*;

/// Warden with the test server `t` and `limits` (indented YAML).
fn start(limits: &str) -> Warden {
    Warden::start(&format!(
        "servers:\n{}limits:\n{limits}",
        example_server("t", "test", "")
    ))
}

async fn echo(c: &mut Client, i: usize) -> Reply {
    tokio::time::timeout(
        Duration::from_secs(10),
        c.call_tool("t__echo", json!({"message": format!("m{i}")})),
    )
    .await
    .expect("an answer, not a hang")
}

/// `Some(true)` passed, `Some(false)` rate-limited, `None` limits
/// unavailable (-32035); anything else fails the test.
fn outcome(r: &Reply) -> Option<bool> {
    if r.response().get("result").is_some() {
        return Some(true);
    }
    match r.error_code() {
        -32030 => Some(false),
        -32035 => {
            let data = &r.response()["error"]["data"];
            assert_eq!(data["limit"], "unavailable", "{}", r.raw);
            assert_eq!(data["retryAfter"], 1.0, "{}", r.raw);
            None
        }
        _ => panic!("unexpected answer: {}", r.raw),
    }
}

/// A value of `/metrics` (0 when absent).
async fn metric(w: &Warden, series: &str) -> f64 {
    let body = reqwest::get(w.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_wardens_on_one_redis_admit_no_more_than_one_rate_limit() {
    let test = "two_wardens_on_one_redis_admit_no_more_than_one_rate_limit";
    if !redis_available(test) {
        return;
    }
    let prefix = unique_prefix("two-wardens");
    let limits = format!(
        "  rate: [{{id: shared, per: [server, tool], rate: 5/min, burst: 5}}]\n  \
         redis: {{url: '{REDIS}', prefix: '{prefix}', timeout: 2s}}\n"
    );
    let (a, b) = (start(&limits), start(&limits));
    let mut clients = [Client::new(&a.url("/mcp")), Client::new(&b.url("/mcp"))];
    for c in &mut clients {
        c.initialize().await;
    }
    let started = Instant::now();
    let mut passed = [0u64; 2];
    let mut refused = 0u64;
    for i in 0..20 {
        let r = echo(&mut clients[i % 2], i).await;
        match outcome(&r) {
            Some(true) => passed[i % 2] += 1,
            Some(false) => refused += 1,
            None => panic!("Redis is up: {}", r.raw),
        }
    }
    // 5/min refills one call every 12 s.
    let refill = started.elapsed().as_secs() / 12;
    let total = passed[0] + passed[1];
    assert!(
        total <= 5 + refill,
        "{passed:?} passed: more than one limit of 5 (+{refill} refilled)"
    );
    assert!(
        passed[0] >= 1 && passed[1] >= 1,
        "both Wardens passed calls of the one burst: {passed:?}"
    );
    assert_eq!(total + refused, 20);
}

/// A proxy to the real Redis and a Warden behind it (timeout 200ms,
/// `fail`, one rate rule per tool: 1/min, `burst`) with a client whose
/// first call passed; `None` when the test is skipped.
async fn behind_proxy(test: &str, fail: &str, burst: u32) -> Option<(RedisProxy, Warden, Client)> {
    if !redis_available(test) {
        return None;
    }
    let proxy = RedisProxy::to_redis().await.expect("proxy");
    let w = start(&format!(
        "  rate: [{{id: r, per: [tool], rate: 1/min, burst: {burst}}}]\n  \
         redis: {{url: '{}', prefix: '{}', timeout: 200ms, fail: {fail}}}\n",
        proxy.url(),
        unique_prefix(test)
    ));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    assert_eq!(outcome(&echo(&mut c, 0).await), Some(true), "Redis up");
    Some((proxy, w, c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stalled_or_dropped_refuses_calls_with_fail_closed_then_limits_apply_again() {
    let test = "redis_stalled_or_dropped_refuses_calls_with_fail_closed_then_limits_apply_again";
    let Some((proxy, w, mut c)) = behind_proxy(test, "closed", 3).await else {
        return;
    };

    proxy.set(ProxyMode::Stall);
    assert_eq!(
        outcome(&echo(&mut c, 1).await),
        None,
        "stalled: refused as unavailable"
    );
    proxy.set(ProxyMode::Drop);
    assert_eq!(
        outcome(&echo(&mut c, 2).await),
        None,
        "dropped: refused as unavailable"
    );
    proxy.set(ProxyMode::Forward);

    // Redis decides again (reconnected), and the limit holds: of the
    // burst of 3, one went before the outage (the stalled call may have
    // taken one more once Redis got it).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut passed = 1;
    let mut i = 3;
    loop {
        assert!(Instant::now() < deadline, "limits never applied again");
        match outcome(&echo(&mut c, i).await) {
            Some(true) => passed += 1,
            Some(false) => break,
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
        i += 1;
    }
    assert!(passed <= 3, "{passed} passed a burst of 3");
    let refused = metric(
        &w,
        "warden_limits_backend_unavailable_total{fail=\"closed\"}",
    )
    .await;
    assert!(refused >= 2.0, "counted: {refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stalled_or_dropped_admits_calls_with_fail_open_and_counts_them() {
    let test = "redis_stalled_or_dropped_admits_calls_with_fail_open_and_counts_them";
    let Some((proxy, w, mut c)) = behind_proxy(test, "open", 2).await else {
        return;
    };

    proxy.set(ProxyMode::Drop);
    for i in 1..4 {
        assert_eq!(
            outcome(&echo(&mut c, i).await),
            Some(true),
            "dropped: admitted without limits"
        );
    }
    proxy.set(ProxyMode::Stall);
    assert_eq!(
        outcome(&echo(&mut c, 4).await),
        Some(true),
        "stalled: admitted without limits"
    );
    let admitted = metric(&w, "warden_limits_backend_unavailable_total{fail=\"open\"}").await;
    assert!(admitted >= 4.0, "counted: {admitted}");

    // Back: Redis decides again, and the burst of 2 (one spent before
    // the outage, maybe one by the stalled call) runs out.
    proxy.set(ProxyMode::Forward);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut i = 5;
    while outcome(&echo(&mut c, i).await) != Some(false) {
        assert!(Instant::now() < deadline, "limits never applied again");
        tokio::time::sleep(Duration::from_millis(50)).await;
        i += 1;
    }
}
