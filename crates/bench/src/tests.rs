//! The bench against `warden-example-server` started in-process.

use std::net::SocketAddr;

use clap::Parser as _;
use warden_example_server::{run_http, Mode, Options};

use super::*;

async fn start(mode: Mode) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(run_http(mode, Options::default(), listener));
    addr
}

fn plan(extra: &[&str]) -> Plan {
    let mut argv = vec![
        "warden-bench",
        "--duration",
        "300ms",
        "--warmup",
        "50ms",
        "--timeout",
        "5s",
    ];
    argv.extend_from_slice(extra);
    Plan::resolve(&Args::try_parse_from(argv).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_the_echo_server_and_compares_targets() {
    let a = start(Mode::Echo).await;
    let b = start(Mode::Echo).await;
    let (ta, tb) = (
        format!("direct=http://{a}/mcp"),
        format!("other=http://{b}/mcp"),
    );
    let plan = plan(&["--target", &ta, "--target", &tb, "--concurrency", "1,4"]);
    let mut seen = Vec::new();
    let report = run(&plan, |l| seen.push(l.to_owned())).await.unwrap();
    assert_eq!(seen.len(), 4);
    assert_eq!(report.rows.len(), 4);
    let order: Vec<(&str, usize)> = report
        .rows
        .iter()
        .map(|r| (r.target.as_str(), r.concurrency))
        .collect();
    assert_eq!(
        order,
        [("direct", 1), ("other", 1), ("direct", 4), ("other", 4)]
    );
    for row in &report.rows {
        assert!(row.requests > 10, "{row:?}");
        assert_eq!(row.errors, 0, "{row:?}");
        assert!(row.p50_ms.unwrap() <= row.p99_ms.unwrap());
        assert!(row.throughput_ratio.is_some() && row.p50_ratio.is_some());
    }
    assert_eq!(report.rows[0].throughput_ratio, Some(1.0));
    assert!(report.to_table().contains("direct"));
}

#[tokio::test]
async fn reads_sse_responses() {
    // change_tools sends a notification before its reply, so the answer
    // comes back as an event stream.
    let addr = start(Mode::Test).await;
    let t = format!("test=http://{addr}/mcp");
    let plan = plan(&[
        "--target",
        &t,
        "--concurrency",
        "2",
        "--tool",
        "change_tools",
        "--args",
        "{}",
    ]);
    let report = run(&plan, |_| {}).await.unwrap();
    assert!(report.rows[0].requests > 0);
    assert_eq!(report.rows[0].errors, 0, "{:?}", report.rows[0].first_error);
}

#[tokio::test]
async fn a_failing_tool_is_reported_before_measuring() {
    let addr = start(Mode::Demo).await;
    let t = format!("demo=http://{addr}/mcp");
    let failing = plan(&[
        "--target",
        &t,
        "--concurrency",
        "1",
        "--tool",
        "notes_get",
        "--args",
        r#"{"id":"nope"}"#,
    ]);
    let err = run(&failing, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("isError"), "{err}");
    let unknown = plan(&[
        "--target",
        &t,
        "--concurrency",
        "1",
        "--tool",
        "no_such_tool",
    ]);
    let err = run(&unknown, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("-32602"), "{err}");
    // The same tool under another name at this target works.
    let renamed = plan(&[
        "--target",
        &t,
        "--concurrency",
        "1",
        "--tool",
        "no_such_tool",
        "--target-tool",
        "demo=notes_get",
        "--args",
        r#"{"id":"n1"}"#,
    ]);
    let report = run(&renamed, |_| {}).await.unwrap();
    assert_eq!(report.rows[0].errors, 0);
}

#[tokio::test]
async fn errors_during_the_window_are_counted() {
    // The probe deletes the ticket; every later delete is a tool failure.
    let addr = start(Mode::Demo).await;
    let t = format!("demo=http://{addr}/mcp");
    let p = plan(&[
        "--target",
        &t,
        "--concurrency",
        "2",
        "--tool",
        "tickets_delete",
        "--args",
        r#"{"id":"T-101"}"#,
    ]);
    let report = run(&p, |_| {}).await.unwrap();
    let row = &report.rows[0];
    assert_eq!(row.requests, 0);
    assert!(row.errors > 0);
    assert!(row.first_error.as_deref().unwrap().contains("isError"));
    // No baseline throughput to compare with.
    assert_eq!(row.throughput_ratio, None);
}

#[tokio::test]
async fn an_unreachable_target_is_a_setup_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let t = format!("gone=http://{addr}/mcp");
    let err = run(&plan(&["--target", &t, "--concurrency", "1"]), |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("gone"), "{err}");
}
