//! The writer and its sinks: a failing sink is caught up from the journal;
//! auth failures are rate-limited per source; anomalies are chained;
//! metrics move.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use warden_audit::sink::Entry;
use warden_audit::{AuditError, AuditLog, AuditSink, Event, EventKind, Lifecycle};

use super::*;

/// Fails its first `fail` writes, keeps what it accepts.
struct Flaky {
    fail: Arc<AtomicUsize>,
    seqs: Arc<Mutex<Vec<u64>>>,
}

impl AuditSink for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }
    fn last(&mut self) -> Result<Option<(u64, [u8; 32])>, AuditError> {
        let seqs = self.seqs.lock().unwrap();
        Ok(seqs.last().map(|s| (*s, [0; 32])))
    }
    fn write(&mut self, entries: &[Entry]) -> Result<(), AuditError> {
        if self.fail.load(Ordering::SeqCst) > 0 {
            self.fail.fetch_sub(1, Ordering::SeqCst);
            return Err(AuditError::Sink {
                sink: "flaky",
                reason: "down".into(),
            });
        }
        self.seqs
            .lock()
            .unwrap()
            .extend(entries.iter().map(|e| e.record.seq));
        Ok(())
    }
    fn sync(&mut self) -> Result<(), AuditError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_sink_is_caught_up_from_the_journal_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path());
    let seqs = Arc::new(Mutex::new(Vec::new()));
    let fail = Arc::new(AtomicUsize::new(1));
    let sink = Flaky {
        fail: fail.clone(),
        seqs: seqs.clone(),
    };
    let (log, _worker) = AuditLog::start_with_sinks(s.clone(), vec![Box::new(sink)]).unwrap();
    for i in 0..50 {
        log.record(call(i)).unwrap();
    }
    log.flush().await;
    let m = log.metrics_snapshot();
    assert_eq!(m.sink_errors.get("flaky"), Some(&1));
    assert!(m.sink_lag_records["flaky"] > 0, "{m:?}");
    // The retry happens within a few seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while seqs.lock().unwrap().len() < 50 && std::time::Instant::now() < deadline {
        log.record(call(1000)).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    log.shutdown().await;
    let got = seqs.lock().unwrap().clone();
    let expected: Vec<u64> = (1..=got.len() as u64).collect();
    assert_eq!(got, expected, "every record once, in order");
    assert!(got.len() >= 50);
}

fn auth_failure(addr: &str) -> Event {
    Event {
        client_addr: Some(addr.into()),
        reason_code: Some("invalid_token".into()),
        ..Event::new(EventKind::AuthFailure)
    }
}

#[tokio::test]
async fn auth_failures_are_rate_limited_per_source_and_the_rest_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.auth_failures.per_source = 3;
    s.auth_failures.window = Duration::from_millis(400);
    let log = start(&s);
    for _ in 0..20 {
        log.record(auth_failure("203.0.113.9:4000")).unwrap();
    }
    log.record(auth_failure("198.51.100.1:1")).unwrap();
    tokio::time::sleep(Duration::from_millis(450)).await;
    log.record(auth_failure("203.0.113.9:4001")).unwrap();
    assert_eq!(log.metrics_snapshot().auth_failures_suppressed, 17);
    log.shutdown().await;
    let events: Vec<Event> = s
        .jsonl_files()
        .iter()
        .flat_map(|p| jsonl_lines(p))
        .filter_map(|l| warden_audit::Record::parse(&l).ok()?.event().ok())
        .filter(|e| e.kind == EventKind::AuthFailure)
        .collect();
    assert_eq!(events.len(), 3 + 1 + 1);
    let last = events.last().unwrap();
    assert_eq!(
        last.lifecycle,
        Some(Box::new(Lifecycle {
            suppressed: Some(17),
            ..Lifecycle::default()
        }))
    );
}

#[tokio::test]
async fn anomaly_alerts_are_chained_after_their_trigger_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AuditSettings::in_dir(dir.path()); // default rules: burst 20/1s
    s.anomaly.token_reuse = None;
    let log = start(&s);
    for i in 0..25 {
        let mut e = call(i);
        e.principal.as_mut().unwrap().subject = "runaway-agent".into();
        log.record(e).unwrap();
    }
    log.flush().await;
    assert_eq!(log.metrics_snapshot().anomalies["burst"], 1);
    log.shutdown().await;
    let events: Vec<Event> = jsonl_lines(&s.jsonl.as_ref().unwrap().path)
        .iter()
        .filter_map(|l| warden_audit::Record::parse(l).ok()?.event().ok())
        .collect();
    let i = events
        .iter()
        .position(|e| e.kind == EventKind::Anomaly)
        .unwrap();
    assert_eq!(
        events[i - 1].correlation_id.as_deref(),
        Some("corr-20"),
        "the 21st call triggers"
    );
    assert_eq!(events[i].anomaly.as_ref().unwrap().rule, "burst");
}

#[tokio::test]
async fn metrics_count_and_the_queue_drains() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path());
    let log = start(&s);
    for i in 0..100 {
        log.record(call(i)).unwrap();
    }
    log.record_durable(call(100)).await.unwrap();
    log.flush().await;
    let m = log.metrics_snapshot();
    assert_eq!((m.recorded, m.recorded_durable), (101, 1));
    assert_eq!(m.written, 101);
    assert_eq!(m.last_seq, 101);
    assert_eq!(m.queue_depth, 0);
    assert_eq!(m.lag, Duration::ZERO);
    assert_eq!(m.sink_errors.values().sum::<u64>(), 0);
    log.shutdown().await;
}

#[tokio::test]
async fn redacted_arguments_only_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    let args = serde_json::value::RawValue::from_string(
        r#"{"path":"/etc/hosts","api_token":"ghp_secret"}"#.into(),
    )
    .unwrap();
    let log = start(&s);
    log.set_secret_scrubber(guard_scrubber());
    assert_eq!(log.recorded_arguments(&args), None);
    log.shutdown().await;
    s.arguments = warden_audit::ArgumentsPolicy::Redacted;
    let log = start(&s);
    log.set_secret_scrubber(guard_scrubber());
    let v = log.recorded_arguments(&args).unwrap();
    assert_eq!(v["path"], "/etc/hosts");
    assert_eq!(v["api_token"], warden_audit::REDACTED);
    log.shutdown().await;
}

/// The project's secret detector (the guard crate's), as the binary
/// installs it.
pub fn guard_scrubber() -> Arc<dyn warden_audit::SecretScrubber> {
    let settings = warden_guard::RawGuards::default().resolve().unwrap();
    let guard = warden_guard::Guard::new(&settings).unwrap();
    Arc::new(move |text: &str| {
        guard
            .detect(text)
            .into_iter()
            .filter(|d| d.family == warden_guard::Family::Secret)
            .map(|d| (d.span, d.class))
            .collect::<Vec<_>>()
    })
}

/// Defect 23: `audit.arguments: redacted` stored an `AKIA…` key found in
/// an ordinary `message` argument in clear; only secret-named keys were
/// redacted. Every argument string now passes the secret detector before
/// it is stored — and without a detector, arguments are not stored.
#[tokio::test]
async fn redacted_arguments_scrub_secrets_in_ordinary_fields() {
    const AWS_KEY: &str = "AKIAZ7VRSQ4TLHXK2MNB";
    const GITHUB: &str = "ghp_R8x2Kq9vLm3Np7Wt5Yz1Bc4Df6Gh0Jk2Ls8M";
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.arguments = warden_audit::ArgumentsPolicy::Redacted;
    let raw = format!(
        r#"{{"message":"deploy with {AWS_KEY} today","notes":["see {GITHUB}"],"path":"/etc/hosts","password":"hunter2"}}"#
    );
    let args = serde_json::value::RawValue::from_string(raw).unwrap();

    // No detector installed: nothing unscanned is stored.
    let log = start(&s);
    assert_eq!(log.recorded_arguments(&args), None);
    assert_eq!(log.metrics_snapshot().arguments_withheld, 1);
    log.shutdown().await;

    let log = start(&s);
    assert!(log.set_secret_scrubber(guard_scrubber()));
    let v = log.recorded_arguments(&args).unwrap();
    assert_eq!(v["message"], "deploy with [redacted:aws_access_key] today");
    assert_eq!(v["notes"][0], "see [redacted:github_token]");
    assert_eq!(v["path"], "/etc/hosts");
    assert_eq!(v["password"], warden_audit::REDACTED);
    let mut e = call(1);
    e.arguments = Some(v);
    log.record_durable(e).await.unwrap();
    log.shutdown().await;
    let text = std::fs::read_to_string(&s.jsonl.as_ref().unwrap().path).unwrap();
    assert!(text.contains("[redacted:aws_access_key]"), "{text}");
    for secret in [AWS_KEY, GITHUB, "hunter2"] {
        assert!(!text.contains(secret), "{secret} stored in clear: {text}");
    }
}
