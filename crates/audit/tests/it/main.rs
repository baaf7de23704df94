//! Integration tests of the audit trail (one binary).

mod crash;
mod forgery;
mod golden;
mod live;
mod postgres;
mod proxy;
mod retention;
mod sinks;
mod spill;
mod sqlite;
mod tail;
mod tamper;

use std::path::{Path, PathBuf};

use warden_audit::{
    AuditLog, AuditSettings, Decision, Event, EventKind, PrincipalFacts, RiskTier, TokenFacts,
};

/// Settings for a trail in `dir`: JSONL + SQLite, no anomaly rules (so
/// record counts are exact).
pub fn settings(dir: &Path) -> AuditSettings {
    let mut s = AuditSettings::in_dir(dir);
    s.anomaly = Default::default();
    s
}

pub fn call(i: usize) -> Event {
    Event {
        correlation_id: Some(format!("corr-{i}")),
        session: Some("sess-1".into()),
        client_addr: Some("127.0.0.1:50000".into()),
        principal: Some(PrincipalFacts {
            subject: format!("user-{}", i % 3),
            tenant: Some("acme".into()),
            roles: vec!["dev".into()],
            ..PrincipalFacts::default()
        }),
        token: Some(TokenFacts {
            kind: Some("jwt".into()),
            issuer: Some("https://idp.example".into()),
            jti_hash: Some(TokenFacts::hash_jti(&format!("jti-{i}"))),
            ..TokenFacts::default()
        }),
        server: Some("fs".into()),
        tool: Some(
            if i.is_multiple_of(2) {
                "read_file"
            } else {
                "write_file"
            }
            .into(),
        ),
        action: Some("tools/call".into()),
        risk_tier: Some(RiskTier::Low),
        decision: Some(if i.is_multiple_of(5) {
            Decision::Deny
        } else {
            Decision::Allow
        }),
        latency_us: Some(100 + i as u64),
        ..Event::new(EventKind::Call)
    }
}

pub fn jsonl_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn public_key(dir: &Path) -> PathBuf {
    dir.join("checkpoint.key.pub")
}

/// Correlation ids of every call record in the JSONL files, in order.
pub fn recorded_ids(settings: &AuditSettings) -> Vec<String> {
    settings
        .jsonl_files()
        .iter()
        .flat_map(|p| jsonl_lines(p))
        .filter_map(|l| warden_audit::Record::parse(&l).ok())
        .filter_map(|r| r.event().ok())
        .filter(|e| e.kind == EventKind::Call)
        .filter_map(|e| e.correlation_id)
        .collect()
}

pub fn start(settings: &AuditSettings) -> AuditLog {
    AuditLog::start(settings.clone()).expect("audit starts").0
}
