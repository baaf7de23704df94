use super::*;

fn parse(yaml: &str) -> Result<AuditSettings, SettingsErrors> {
    let raw: RawAudit = serde_saphyr::from_str(yaml).expect("yaml");
    raw.resolve(Path::new("/etc/warden"))
}

#[test]
fn defaults_are_valid_and_embedded() {
    let s = RawAudit::default()
        .resolve(Path::new("/etc/warden"))
        .unwrap();
    assert_eq!(
        s.jsonl.as_ref().unwrap().path,
        Path::new("/etc/warden/.warden/audit/audit.jsonl")
    );
    assert_eq!(
        s.sqlite.as_ref().unwrap().path,
        Path::new("/etc/warden/.warden/audit/audit.db")
    );
    assert!(s.postgres.is_none() && !s.stdout);
    assert!(s.enabled, "a trail is kept unless configured off");
    assert_eq!(s.durability_for(Some(RiskTier::Critical)), Durability::Sync);
    assert_eq!(s.durability_for(Some(RiskTier::High)), Durability::Sync);
    assert_eq!(s.durability_for(Some(RiskTier::Low)), Durability::Async);
    assert_eq!(s.durability_for(None), Durability::Async);
    assert!(
        s.anomaly.burst.is_some()
            && s.anomaly.token_reuse.is_some()
            && s.anomaly.off_hours.is_none()
    );
    let dir = Path::new("/tmp/x");
    assert_eq!(AuditSettings::in_dir(dir).journal_dir, dir.join("journal"));
}

#[test]
fn enabled_false_turns_the_trail_off_and_still_checks_the_rest() {
    assert!(!parse("enabled: false").unwrap().enabled);
    assert!(parse("enabled: true").unwrap().enabled);
    let errors = parse("enabled: false\nqueue_capacity: 0").unwrap_err();
    assert!(
        errors.iter().any(|(p, _)| p == "audit.queue_capacity"),
        "{errors:?}"
    );
}

#[test]
fn full_section_resolves() {
    let s = parse(
        r#"
sinks:
  jsonl: { path: audit/a.jsonl, rotate_size: 1MiB, rotate_keep: 3 }
  sqlite: { path: audit/a.db }
  postgres: { url: env:PG_URL, table: audit_x, chain: r1 }
  stdout: true
durability: { low: sync, critical: async }
queue_capacity: 16
checkpoint: { every: 10, interval: 5s }
arguments: redacted
anomaly:
  burst: { max_calls: 3, window: 2s }
  off_hours: { hours: "09:00-17:00", days: [mon, fri], utc_offset: "-05:00", tools: [db__drop] }
  token_reuse: { enabled: false }
"#,
    )
    .unwrap();
    let j = s.jsonl.as_ref().unwrap();
    assert_eq!((j.rotate_bytes, j.rotate_keep), (1024 * 1024, 3));
    assert_eq!(j.path, Path::new("/etc/warden/audit/a.jsonl"));
    assert_eq!(
        s.postgres_url_reference(),
        Some(("audit.sinks.postgres.url", "env:PG_URL"))
    );
    assert_eq!(s.durability_for(Some(RiskTier::Low)), Durability::Sync);
    assert_eq!(
        s.durability_for(Some(RiskTier::Critical)),
        Durability::Async
    );
    assert_eq!(s.queue_capacity, 16);
    assert_eq!(s.arguments, ArgumentsPolicy::Redacted);
    let oh = s.anomaly.off_hours.as_ref().unwrap();
    assert_eq!(
        (
            oh.start_minute,
            oh.end_minute,
            oh.days,
            oh.utc_offset_minutes
        ),
        (540, 1020, 0b1_0001, -300)
    );
    assert!(s.anomaly.token_reuse.is_none());
    let mut s = s;
    s.set_postgres_url("postgres://127.0.0.1/test".into());
    assert!(s.postgres_url_reference().is_none());
    assert!(
        !format!("{s:?}").contains("127.0.0.1/test"),
        "the resolved URL must not be printed"
    );
}

#[test]
fn every_error_is_named_by_path() {
    let errors = parse(
        r#"
sinks:
  jsonl: { rotate_size: 12 parsecs }
  postgres: { url: "postgres://u:hunter2@db/x", table: "Drop Table" }
durability: { high: maybe }
queue_capacity: 0
checkpoint: { interval: soon }
arguments: all
anomaly:
  off_hours: { hours: "25:00-26:00", days: [someday], utc_offset: "5" }
"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    for expected in [
        "audit.sinks.jsonl.rotate_size",
        "audit.sinks.postgres.url",
        "audit.durability.high",
        "audit.queue_capacity",
        "audit.checkpoint.interval",
        "audit.arguments",
        "audit.anomaly.off_hours.hours",
        "audit.anomaly.off_hours.days[0]",
        "audit.anomaly.off_hours.utc_offset",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {errors:?}"
        );
    }
    assert!(!format!("{errors:?}").contains("hunter2"));
}

#[test]
fn unknown_keys_are_refused() {
    let r: Result<RawAudit, _> = serde_saphyr::from_str("sinks: { jsonl: { pth: x } }");
    assert!(r.is_err());
}

#[test]
fn no_sink_at_all_is_an_error() {
    let errors = parse("sinks: { stdout: false }").unwrap_err();
    assert_eq!(errors[0].0, "audit.sinks");
}

#[test]
fn sizes() {
    assert_eq!(parse_size("64MiB"), Some(64 << 20));
    assert_eq!(parse_size("500KB"), Some(500_000));
    assert_eq!(parse_size("1 GiB"), Some(1 << 30));
    assert_eq!(parse_size("4096"), Some(4096));
    assert_eq!(parse_size("lots"), None);
}

/// Defect 22: retention is configured in the audit section, for every
/// sink, a sink's own keys winning; bad values are named by path.
#[test]
fn retention_resolves_per_sink_and_bad_values_are_named_by_path() {
    let s = parse(
        r#"
retention: { max_age: 30d, max_size: 10GiB, interval: 30s }
sinks:
  jsonl: { rotate_size: 1MiB, retention: { max_size: 100MiB } }
  sqlite: { retention: { max_age: off } }
  postgres: { url: env:PG, connect_timeout: 2s, statement_timeout: 750ms, retention: { max_size: off } }
durability: { async_commit: 20ms }
"#,
    )
    .unwrap();
    let day = Duration::from_secs(86_400);
    let j = s.jsonl.as_ref().unwrap();
    assert_eq!(j.retention.max_age, Some(30 * day));
    assert_eq!(j.retention.max_size, Some(100 << 20));
    let q = s.sqlite.as_ref().unwrap();
    assert_eq!(
        (q.retention.max_age, q.retention.max_size),
        (None, Some(10 << 30))
    );
    let p = s.postgres.as_ref().unwrap();
    assert_eq!(
        (p.retention.max_age, p.retention.max_size),
        (Some(30 * day), None)
    );
    assert_eq!(p.connect_timeout, Duration::from_secs(2));
    assert_eq!(p.statement_timeout, Duration::from_millis(750));
    assert_eq!(s.retention_interval, Duration::from_secs(30));
    assert_eq!(s.durability.async_commit, Duration::from_millis(20));

    // Defaults: only the SQLite store is bounded (4 GiB); JSONL by rotate_keep.
    let d = RawAudit::default().resolve(Path::new("/w")).unwrap();
    assert!(d.jsonl.as_ref().unwrap().retention.is_unlimited());
    assert_eq!(d.jsonl.as_ref().unwrap().rotate_keep, 20);
    assert_eq!(d.sqlite.as_ref().unwrap().retention.max_size, Some(4 << 30));
    assert_eq!(d.retention_interval, Duration::from_secs(60));
    assert_eq!(d.durability.async_commit, Duration::from_millis(100));

    // `interval` exists only at the top: a sink's is an unknown key.
    let r: Result<RawAudit, _> =
        serde_saphyr::from_str("sinks: { sqlite: { retention: { interval: 1m } } }");
    assert!(r.is_err());
    let errors = parse(
        r#"
retention: { max_age: forever, max_size: 10KiB, interval: 0s }
sinks:
  jsonl: { rotate_size: 64MiB, retention: { max_size: 100MiB } }
  sqlite: { retention: { max_age: 0s, max_size: lots } }
  postgres: { url: env:PG, connect_timeout: 0s, statement_timeout: an hour }
durability: { async_commit: 1h }
"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    for expected in [
        "audit.retention.max_age",
        "audit.retention.max_size",
        "audit.retention.interval",
        "audit.sinks.jsonl.retention.max_size",
        "audit.sinks.sqlite.retention.max_age",
        "audit.sinks.sqlite.retention.max_size",
        "audit.sinks.postgres.connect_timeout",
        "audit.sinks.postgres.statement_timeout",
        "audit.durability.async_commit",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {errors:?}"
        );
    }
    let jsonl = errors
        .iter()
        .find(|(p, _)| p == "audit.sinks.jsonl.retention.max_size")
        .unwrap();
    assert!(jsonl.1.contains("twice"), "{jsonl:?}");
}
