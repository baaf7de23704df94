//! The record format, golden: a full call event through the writer, with
//! the volatile fields (time, hashes) redacted.

use warden_audit::{
    ApprovalFacts, Decision, Event, EventKind, OutputFacts, PrincipalFacts, Record, RiskTier,
    TokenFacts,
};

use super::*;

#[tokio::test]
async fn call_record_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path());
    let log = start(&s);
    let args =
        serde_json::value::RawValue::from_string(r#"{"repo":"acme/api","force":true}"#.into())
            .unwrap();
    log.record(Event {
        correlation_id: Some("01J0000000000000000000000".into()),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        session: Some("sess-7f3a".into()),
        client_addr: Some("192.0.2.10:51234".into()),
        principal: Some(PrincipalFacts {
            subject: "alice@example.com".into(),
            tenant: Some("acme".into()),
            client_id: Some("cursor".into()),
            agent_id: Some("release-bot".into()),
            roles: vec!["developer".into(), "oncall".into()],
        }),
        token: Some(TokenFacts {
            kind: Some("jwt".into()),
            issuer: Some("https://idp.example.com".into()),
            audience: vec!["https://warden.example.com/mcp".into()],
            jti_hash: Some(TokenFacts::hash_jti("7d1c2a")),
            key_id: None,
        }),
        server: Some("github".into()),
        tool: Some("delete_branch".into()),
        canonical_tool_id: Some("github/delete_branch@sha256:9f2c".into()),
        manifest_hash: Some("sha256:9f2c".into()),
        action: Some("tools/call".into()),
        risk_tier: Some(RiskTier::Critical),
        decision: Some(Decision::Hold),
        policy_ids: vec!["critical-needs-approval".into()],
        reason_code: Some("approval_granted".into()),
        scopes: vec!["mcp".into(), "repo:write".into()],
        approval: Some(ApprovalFacts {
            id: Some("apr-42".into()),
            status: "approved".into(),
            approver: Some("bob@example.com".into()),
            ..Default::default()
        }),
        input_hash: Some(warden_audit::input_hash(&args)),
        output: Some(OutputFacts {
            classes: vec!["secret".into()],
            findings: [("aws_access_key".to_owned(), 1)].into(),
            size: 2048,
            truncated: false,
        }),
        latency_us: Some(5120),
        upstream_status: Some("ok".into()),
        ..Event::new(EventKind::Call)
    })
    .unwrap();
    log.shutdown().await;
    let line = jsonl_lines(&s.jsonl.as_ref().unwrap().path).remove(0);
    let record = Record::parse(&line).unwrap();
    assert_eq!(record.prev, warden_audit::record::GENESIS);
    // Field order as written (an Event, not a sorted map), volatile fields redacted.
    let event = record.event().unwrap();
    let time = event.time.to_string();
    let pretty = format!(
        "seq: {}\nprev: [genesis]\nhash: [hash]\nevent: {}",
        record.seq,
        serde_json::to_string_pretty(&event)
            .unwrap()
            .replace(&time, "[time]")
    );
    insta::assert_snapshot!(pretty);
}
