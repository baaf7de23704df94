//! OpenTelemetry spans and Prometheus metrics through the real binary.

use std::time::Duration;

use serde_json::json;
use warden_telemetry::test_support::OtlpReceiver;

use crate::harness::*;

#[tokio::test]
async fn a_test_otlp_receiver_sees_the_request_span_under_the_callers_trace() {
    let receiver = OtlpReceiver::start().expect("receiver");
    let yaml = format!(
        "telemetry:\n  otlp:\n    endpoint: '{}'\n    service_name: warden-it\nservers:\n{}",
        receiver.endpoint(),
        example_server("t", "test", "")
    );
    let w = Warden::start(&yaml);
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    c.extra_headers.insert(
        "traceparent",
        format!("00-{trace_id}-{parent}-01").parse().unwrap(),
    );
    let r = c.call_tool("t__echo", json!({"message": "traced"})).await;
    assert!(r.response().get("result").is_some(), "{}", r.response());

    let spans = receiver.wait_for_spans(3, Duration::from_secs(20));
    let request = spans
        .iter()
        .find(|s| s.name == "warden.request" && s.trace_id == trace_id)
        .unwrap_or_else(|| panic!("no request span in the caller's trace: {spans:#?}"));
    assert_eq!(
        request.parent_span_id, parent,
        "the caller's span is the parent"
    );
    assert_eq!(
        request.resource.get("service.name").map(String::as_str),
        Some("warden-it")
    );
    let children: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_span_id == request.span_id)
        .map(|s| s.name.as_str())
        .collect();
    for stage in [
        "warden.input_guard",
        "warden.upstream",
        "warden.output_guard",
    ] {
        assert!(
            children.contains(&stage),
            "{stage} under the request span: {children:?}"
        );
    }
    // The audit record carries the same trace id.
    let mut found = false;
    for _ in 0..50 {
        let (ok, out, _) = w.cli_status(&["audit", "query", "--json"]);
        if ok && out.contains(trace_id) {
            found = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(found, "the audit record names the trace");
}

fn scrape(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("/metrics parses as Prometheus text")
}

fn value(s: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_parse_and_move_when_calls_happen() {
    let w = Warden::start(&format!("servers:\n{}", example_server("t", "test", "")));
    let http = reqwest::Client::new();
    let get = || async {
        let r = http.get(w.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            ct.contains("text/plain") || ct.contains("openmetrics"),
            "{ct}"
        );
        scrape(&r.text().await.unwrap())
    };
    let before = get().await;
    let calls_before = value(
        &before,
        "warden_requests_total",
        Some(("method", "tools/call")),
    );
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    for i in 0..3 {
        c.call_tool("t__echo", json!({"message": format!("m{i}")}))
            .await;
    }
    let after = get().await;
    let calls_after = value(
        &after,
        "warden_requests_total",
        Some(("method", "tools/call")),
    );
    assert_eq!(calls_after - calls_before, 3.0, "three calls counted");
    assert!(value(&after, "warden_sessions_active", None) >= 1.0);
    let echo_calls: f64 = after
        .samples
        .iter()
        .filter(|s| {
            s.metric == "warden_calls_total"
                && s.labels.get("server") == Some("t")
                && s.labels.get("tool") == Some("echo")
                && s.labels.get("decision") == Some("allow")
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(echo_calls, 3.0, "calls by server, tool and decision");
    let durations = after
        .samples
        .iter()
        .filter(|s| s.metric.starts_with("warden_stage_duration_seconds"))
        .count();
    assert!(durations > 0, "latency histograms per stage");
    assert!(
        after
            .samples
            .iter()
            .any(|s| s.metric.starts_with("warden_audit")),
        "the audit trail's metrics are exported"
    );
}

#[tokio::test]
async fn the_trace_context_reaches_http_upstreams() {
    let port = crate::peers::free_port();
    let _upstream = spawn(std::process::Command::new(WARDEN).args([
        "example-server",
        "--mode",
        "test",
        "--http",
        &format!("127.0.0.1:{port}"),
    ]));
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let w = Warden::start(&format!(
        "servers:\n  web:\n    url: http://127.0.0.1:{port}/mcp\n"
    ));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    c.extra_headers.insert(
        "traceparent",
        format!("00-{trace_id}-b7ad6b7169203331-01")
            .parse()
            .unwrap(),
    );
    let r = c.call_tool("web__echo_headers", json!({})).await;
    let text = text_of(r.result());
    assert!(
        text.contains(trace_id),
        "the upstream sees the caller's trace id: {text}"
    );
    assert!(!text.contains("authorization"), "{text}");
}

#[tokio::test]
async fn metrics_can_have_an_admin_listener_of_their_own() {
    let admin = crate::peers::free_port();
    let w = Warden::start(&format!(
        "telemetry:\n  metrics: {{listen: '127.0.0.1:{admin}'}}\nservers:\n{}",
        example_server("t", "test", "")
    ));
    let http = reqwest::Client::new();
    let on_mcp = http.get(w.url("/metrics")).send().await.unwrap();
    assert_ne!(on_mcp.status(), 200, "not on the MCP listener");
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{admin}/metrics"))
            .send()
            .await
        {
            let text = r.text().await.unwrap();
            scrape(&text);
            ok = text.contains("warden_requests");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the admin listener serves the metrics");
}

/// `warden serve` on every interface (the test only connects over
/// loopback): the process, the port.
fn serve_on_every_interface(
    dir: &std::path::Path,
    yaml: &str,
    env: &[(&str, &str)],
) -> (Proc, u16) {
    let cfg = dir.join("warden.yaml");
    std::fs::write(&cfg, with_tofu(yaml).replace("{WARDEN}", WARDEN)).unwrap();
    let mut cmd = std::process::Command::new(WARDEN);
    cmd.args(["serve", "--config"])
        .arg(&cfg)
        .args(["--listen", "0.0.0.0:0"])
        .env("WARDEN_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let proc = spawn(&mut cmd);
    let line = wait_for_line(&proc, "warden: listening on ", Duration::from_secs(30))
        .expect("warden did not start");
    let port = line
        .trim()
        .trim_end_matches("/mcp")
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    (proc, port)
}

/// #15.26: counts of calls, refusals and upstream failures are not for
/// anyone who can reach the MCP listener.
#[tokio::test]
async fn metrics_are_not_served_without_a_credential_on_a_listener_others_can_reach() {
    let http = reqwest::Client::new();
    let servers = format!("servers:\n{}", example_server("t", "test", ""));

    let dir = tempfile::tempdir().unwrap();
    let (_open, port) = serve_on_every_interface(dir.path(), &servers, &[]);
    let r = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "no credential, reachable: not served");
    let health = http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("telemetry:\n  metrics: {{token: 'env:SCRAPE_TOKEN'}}\n{servers}");
    let (_guarded, port) =
        serve_on_every_interface(dir.path(), &yaml, &[("SCRAPE_TOKEN", "scrape-me-7f3a")]);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let none = http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let body = none.text().await.unwrap();
    assert!(!body.contains("scrape-me"), "{body}");
    let wrong = http
        .get(&url)
        .bearer_auth("scrape-me-7f3b")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = http
        .get(&url)
        .bearer_auth("scrape-me-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    scrape(&right.text().await.unwrap());
}

/// #15.19: `/readyz` fails while a server marked `required` cannot be
/// reached, names it, and recovers when it comes up; `/healthz` stays 200.
#[tokio::test]
async fn readiness_fails_while_a_required_server_is_down() {
    let port = crate::peers::free_port();
    let w = Warden::start(&format!(
        "servers:\n  remote:\n    url: http://127.0.0.1:{port}/mcp\n    required: true\n    restart: {{initial_backoff: 100ms, max_backoff: 300ms}}\n{}    required: true\n",
        example_server("t", "test", "")
    ));
    let http = reqwest::Client::new();
    let readyz = async || {
        let r = http.get(w.url("/readyz")).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (status, body) = readyz().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("server remote"), "{body}");
    let health = http.get(w.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let _up = spawn(std::process::Command::new(WARDEN).args([
        "example-server",
        "--mode",
        "test",
        "--http",
        &format!("127.0.0.1:{port}"),
    ]));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = readyz().await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still not ready with the server up: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
