use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value};

use super::*;

fn scrape(text: &str) -> Scrape {
    // prometheus-parse reads the 0.0.4 text format; OpenMetrics differs
    // only in `# EOF` and `# UNIT` lines, which it must not choke on.
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    Scrape::parse(lines).expect("exposition parses")
}

fn find<'a>(s: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
}

fn number(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    match find(s, name, labels).map(|x| &x.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!("{name}{labels:?}: {other:?}"),
    }
}

fn histogram_count(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> (f64, Vec<(f64, f64)>) {
    // The count sample, and the buckets (le, cumulative).
    let count = number(s, &format!("{name}_count"), labels);
    let mut buckets: Vec<(f64, f64)> = match find(s, name, labels).map(|x| &x.value) {
        Some(Value::Histogram(h)) => h.iter().map(|b| (b.less_than, b.count)).collect(),
        other => panic!("{name}{labels:?}: {other:?}"),
    };
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    (count, buckets)
}

#[test]
fn counters_and_histograms_move_and_render() {
    let m = Metrics::new();
    let before = scrape(&m.render(&[]));
    assert_eq!(
        number(
            &before,
            "warden_requests_total",
            &[("method", "tools/call"), ("outcome", "ok")]
        ),
        0.0
    );

    let clone = m.clone();
    clone.request("tools/call", Outcome::Ok, Duration::from_micros(70));
    m.request("tools/call", Outcome::Ok, Duration::from_millis(3));
    m.request("tools/call", Outcome::Denied, Duration::from_micros(20));
    m.stage(Stage::Policy, Duration::from_micros(14));
    m.policy_decision(PolicyDecision::Deny);
    m.guard_finding("secret", Direction::Output, 2);
    m.auth_failure("expired");
    m.upstream_event("github", UpstreamEvent::Restarted);
    m.registry_blocked("poisoned_description");
    m.sessions_active().inc();
    m.sessions_active().inc();
    m.sessions_active().dec();
    m.upstreams_active().set(3);

    let text = m.render(&[]);
    assert!(text.ends_with("# EOF\n"), "{text}");
    let s = scrape(&text);
    assert_eq!(
        number(
            &s,
            "warden_requests_total",
            &[("method", "tools/call"), ("outcome", "ok")]
        ),
        2.0
    );
    assert_eq!(
        number(
            &s,
            "warden_requests_total",
            &[("method", "tools/call"), ("outcome", "denied")]
        ),
        1.0
    );
    let (count, buckets) = histogram_count(
        &s,
        "warden_request_duration_seconds",
        &[("method", "tools/call")],
    );
    assert_eq!(count, 3.0);
    // 20 µs ≤ 25 µs; 70 µs ≤ 100 µs; 3 ms ≤ 5 ms.
    let at = |le: f64| buckets.iter().find(|b| b.0 == le).expect("bucket").1;
    assert_eq!(at(0.00001), 0.0);
    assert_eq!(at(0.000025), 1.0);
    assert_eq!(at(0.0001), 2.0);
    assert_eq!(at(0.0025), 2.0);
    assert_eq!(at(0.005), 3.0);
    assert_eq!(at(f64::INFINITY), 3.0);
    assert_eq!(buckets.len(), DURATION_BUCKETS.len() + 1);
    let sum = number(
        &s,
        "warden_request_duration_seconds_sum",
        &[("method", "tools/call")],
    );
    assert!((sum - 0.00309).abs() < 1e-9, "{sum}");

    let (count, _) = histogram_count(&s, "warden_stage_duration_seconds", &[("stage", "policy")]);
    assert_eq!(count, 1.0);
    assert_eq!(
        number(&s, "warden_policy_decisions_total", &[("decision", "deny")]),
        1.0
    );
    assert_eq!(
        number(
            &s,
            "warden_guard_findings_total",
            &[("class", "secret"), ("direction", "output")]
        ),
        2.0
    );
    assert_eq!(
        number(&s, "warden_auth_failures_total", &[("reason", "expired")]),
        1.0
    );
    assert_eq!(
        number(
            &s,
            "warden_upstream_events_total",
            &[("server", "github"), ("event", "restarted")]
        ),
        1.0
    );
    assert_eq!(
        number(
            &s,
            "warden_registry_blocked_total",
            &[("reason", "poisoned_description")]
        ),
        1.0
    );
    assert_eq!(number(&s, "warden_sessions_active", &[]), 1.0);
    assert_eq!(number(&s, "warden_upstreams_active", &[]), 3.0);
}

#[test]
fn edge_refusals_have_a_series_per_kind_from_the_start() {
    let m = Metrics::new();
    let s = scrape(&m.render(&[]));
    for kind in EdgeRefusal::ALL {
        let labels = [("kind", kind.as_str())];
        assert_eq!(number(&s, "warden_edge_refusals_total", &labels), 0.0);
    }
    m.edge_refusal(EdgeRefusal::MaxConnectionsPerIp);
    m.edge_refusal(EdgeRefusal::MaxConnectionsPerIp);
    m.edge_refusal(EdgeRefusal::BodyTimeout);
    m.connections_open().set(7);
    m.notification_dropped();
    let s = scrape(&m.render(&[]));
    let refused = |kind: &str| number(&s, "warden_edge_refusals_total", &[("kind", kind)]);
    assert_eq!(refused("max_connections_per_ip"), 2.0);
    assert_eq!(refused("body_timeout"), 1.0);
    assert_eq!(refused("max_connections"), 0.0);
    assert_eq!(number(&s, "warden_connections_open", &[]), 7.0);
    assert_eq!(number(&s, "warden_notifications_dropped_total", &[]), 1.0);
}

#[test]
fn peer_controlled_labels_are_bounded() {
    let m = Metrics::new();
    for i in 0..1000 {
        m.request(&format!("evil/{i}"), Outcome::Error, Duration::ZERO);
        m.upstream_event(&format!("server-{i}"), UpstreamEvent::Down);
    }
    let s = scrape(&m.render(&[]));
    assert_eq!(
        number(
            &s,
            "warden_requests_total",
            &[("method", "other"), ("outcome", "error")]
        ),
        1000.0
    );
    assert!(s.samples.iter().all(|x| x
        .labels
        .get("method")
        .is_none_or(|m| m == "other" || KNOWN_METHODS.contains(&m))));
    let request_series = s
        .samples
        .iter()
        .filter(|x| x.metric == "warden_requests_total")
        .count();
    assert_eq!(
        request_series,
        (KNOWN_METHODS.len() + 1) * Outcome::ALL.len()
    );

    let servers: Vec<&str> = s
        .samples
        .iter()
        .filter(|x| x.metric == "warden_upstream_events_total")
        .filter_map(|x| x.labels.get("server"))
        .collect();
    assert_eq!(servers.len(), MAX_LABEL_VALUES + 1);
    assert_eq!(
        number(
            &s,
            "warden_upstream_events_total",
            &[("server", "other"), ("event", "down")]
        ),
        (1000 - MAX_LABEL_VALUES) as f64
    );
}

#[test]
fn extra_metrics_from_the_audit_snapshot() {
    let m = Metrics::new();
    let mut snap = warden_audit::MetricsSnapshot::default();
    snap.recorded = 41;
    snap.spilled = 2;
    snap.written = 40;
    snap.queue_depth = 7;
    snap.lag = Duration::from_millis(1500);
    snap.sink_errors.insert("jsonl", 0);
    snap.sink_errors.insert("postgres", 5);
    snap.sink_lag_records.insert("postgres", 12);
    snap.anomalies.insert("burst", 1);
    snap.sink_lag
        .insert("postgres", Duration::from_millis(2500));
    snap.retention_pruned.insert("jsonl", 300);
    snap.journal_durable_seq = 39;
    snap.arguments_withheld = 3;
    let mut extra = audit_metrics(&snap);
    extra.push(
        ExtraMetric::gauge("warden_test_escape", "escaping", 1.0).with_label("value", "a\"b\\c\nd"),
    );
    // Invalid names are skipped, not rendered.
    extra.push(ExtraMetric::gauge("bad name", "x", 1.0));
    let text = m.render(&extra);
    assert!(!text.contains("bad name"));
    assert!(text.ends_with("# EOF\n"));
    let s = scrape(&text);
    assert_eq!(number(&s, "warden_audit_recorded_total", &[]), 41.0);
    assert_eq!(number(&s, "warden_audit_spilled_total", &[]), 2.0);
    assert_eq!(number(&s, "warden_audit_written_total", &[]), 40.0);
    assert_eq!(number(&s, "warden_audit_queue_depth", &[]), 7.0);
    assert_eq!(number(&s, "warden_audit_lag_seconds", &[]), 1.5);
    assert_eq!(
        number(
            &s,
            "warden_audit_sink_errors_total",
            &[("sink", "postgres")]
        ),
        5.0
    );
    assert_eq!(
        number(&s, "warden_audit_sink_errors_total", &[("sink", "jsonl")]),
        0.0
    );
    assert_eq!(
        number(&s, "warden_audit_sink_lag_records", &[("sink", "postgres")]),
        12.0
    );
    assert_eq!(
        number(&s, "warden_audit_anomalies_total", &[("rule", "burst")]),
        1.0
    );
    assert_eq!(
        number(&s, "warden_audit_sink_lag_seconds", &[("sink", "postgres")]),
        2.5
    );
    assert_eq!(
        number(
            &s,
            "warden_audit_retention_pruned_total",
            &[("sink", "jsonl")]
        ),
        300.0
    );
    assert_eq!(number(&s, "warden_audit_journal_durable_seq", &[]), 39.0);
    assert_eq!(
        number(&s, "warden_audit_arguments_withheld_total", &[]),
        3.0
    );
    // One HELP/TYPE per family even with several series.
    assert_eq!(
        text.matches("# TYPE warden_audit_sink_errors counter")
            .count(),
        1
    );
    assert!(
        text.contains(r#"warden_test_escape{value="a\"b\\c\nd"} 1"#),
        "{text}"
    );
}

#[test]
fn histogram_buckets_are_consistent_with_seconds() {
    for (nanos, secs) in BUCKET_NANOS.iter().zip(DURATION_BUCKETS) {
        assert_eq!(*nanos as f64 / 1e9, secs);
    }
    let h = DurationHistogram::default();
    h.observe(Duration::from_secs(3600));
    h.observe(Duration::MAX);
    assert_eq!(h.count(), 2);
}
