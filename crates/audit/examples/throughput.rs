//! Sustained writer throughput per sink combination:
//! `cargo run --release -p warden-audit --example throughput [events]`.

use std::time::Instant;

use warden_audit::{AuditLog, AuditSettings, Decision, Event, EventKind, PrincipalFacts, RiskTier};

fn event(i: usize) -> Event {
    Event {
        correlation_id: Some(format!("01J{i:023}")),
        session: Some("sess-7f3a0c".into()),
        client_addr: Some("10.1.2.3:51234".into()),
        principal: Some(PrincipalFacts {
            subject: format!("user-{}", i % 50),
            tenant: Some("acme".into()),
            roles: vec!["developer".into()],
            ..PrincipalFacts::default()
        }),
        server: Some("github".into()),
        tool: Some("list_issues".into()),
        action: Some("tools/call".into()),
        risk_tier: Some(RiskTier::Low),
        decision: Some(Decision::Allow),
        input_hash: Some(
            "sha256:25033f604de8963bce63e93103c1cf1b4544cc479d20606936515e262efdfeba".into(),
        ),
        latency_us: Some(850),
        upstream_status: Some("ok".into()),
        ..Event::new(EventKind::Call)
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (label, jsonl, sqlite) in [
        ("jsonl", true, false),
        ("sqlite", false, true),
        ("jsonl+sqlite", true, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = AuditSettings::in_dir(dir.path());
        s.anomaly = Default::default();
        s.queue_capacity = n; // measure the writer, not the spill path
        if !jsonl {
            s.jsonl = None;
        }
        if !sqlite {
            s.sqlite = None;
        }
        let log = AuditLog::start(s).unwrap().0;
        let events: Vec<Event> = (0..n).map(event).collect();
        let t = Instant::now();
        for e in events {
            log.record(e).unwrap();
        }
        let enqueued = t.elapsed();
        rt.block_on(log.flush());
        let total = t.elapsed();
        println!(
            "{label:>13}: {n} events enqueued in {enqueued:?}, written and synced in {total:?}: {:.0} events/s",
            n as f64 / total.as_secs_f64()
        );
        rt.block_on(log.shutdown());
    }
}
