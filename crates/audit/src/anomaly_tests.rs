use super::*;
use crate::event::{PrincipalFacts, RiskTier, TokenFacts};
use crate::settings::RawAudit;

const T0: i64 = 1_767_787_200_000_000_000; // 2026-01-07T12:00:00Z, a Wednesday

fn call(subject: &str, at_ms: i64) -> Event {
    Event {
        principal: Some(PrincipalFacts {
            subject: subject.into(),
            ..PrincipalFacts::default()
        }),
        tool: Some("read".into()),
        server: Some("fs".into()),
        correlation_id: Some(format!("c{at_ms}")),
        ..Event::at(
            EventKind::Call,
            Timestamp::from_unix_nanos(T0 + at_ms * 1_000_000),
        )
    }
}

fn detector(yaml: &str) -> AnomalyDetector {
    let raw: RawAudit = serde_saphyr::from_str(yaml).unwrap();
    AnomalyDetector::new(&raw.resolve(std::path::Path::new("/")).unwrap().anomaly)
}

#[test]
fn burst_fires_once_per_window_above_the_threshold() {
    let mut d = detector("anomaly: { burst: { max_calls: 3, window: 1s } }");
    let alerts: Vec<Event> = (0..10)
        .flat_map(|i| d.observe(&call("alice", i * 50)))
        .collect();
    assert_eq!(alerts.len(), 1);
    let a = alerts[0].anomaly.as_ref().unwrap();
    assert_eq!(
        (a.rule.as_str(), a.observed, a.threshold),
        ("burst", Some(4), Some(3))
    );
    assert_eq!(alerts[0].kind, EventKind::Anomaly);
    assert_eq!(a.trigger.as_deref(), Some("c150"));
    // Calls spread out never fire; another principal is counted apart.
    let spread: usize = (0..10)
        .map(|i| d.observe(&call("bob", i * 400)).len())
        .sum();
    assert_eq!(spread, 0);
}

#[test]
fn off_hours_fires_for_sensitive_calls_outside_business_hours() {
    let mut d = detector(
        "anomaly: { burst: { enabled: false }, off_hours: { hours: '08:00-19:00', utc_offset: '+01:00', tools: [fs__delete] } }",
    );
    let mut noon = call("alice", 0);
    noon.risk_tier = Some(RiskTier::Critical);
    assert!(
        d.observe(&noon).is_empty(),
        "13:00 local on a Wednesday is business time"
    );
    let mut night = call("alice", 10 * 3_600_000); // 23:00 local
    night.risk_tier = Some(RiskTier::High);
    let a = d.observe(&night);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].anomaly.as_ref().unwrap().observed, Some(23));
    let mut low = call("bob", 10 * 3_600_000);
    low.risk_tier = Some(RiskTier::Low);
    assert!(d.observe(&low).is_empty(), "low tier is not sensitive");
    let mut named = call("carol", 10 * 3_600_000);
    named.tool = Some("delete".into());
    assert_eq!(
        d.observe(&named).len(),
        1,
        "tools listed by exposed name are sensitive"
    );
    let saturday = call("dave", 3 * 86_400_000); // 13:00 local, Saturday
    let mut saturday = saturday;
    saturday.risk_tier = Some(RiskTier::Critical);
    assert_eq!(d.observe(&saturday).len(), 1);
}

#[test]
fn token_reuse_from_two_addresses_within_the_window() {
    let mut d = detector("anomaly: { burst: { enabled: false }, token_reuse: { window: 5m } }");
    let with = |addr: &str, at_ms: i64| Event {
        client_addr: Some(addr.into()),
        token: Some(TokenFacts {
            jti_hash: Some(TokenFacts::hash_jti("jti-1")),
            ..TokenFacts::default()
        }),
        ..call("alice", at_ms)
    };
    assert!(d.observe(&with("10.0.0.1:5000", 0)).is_empty());
    assert!(
        d.observe(&with("10.0.0.1:6000", 1000)).is_empty(),
        "another port is the same client"
    );
    let a = d.observe(&with("192.0.2.7:7000", 2000));
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0].anomaly.as_ref().unwrap().addresses,
        vec!["10.0.0.1", "192.0.2.7"]
    );
    assert!(
        d.observe(&with("10.0.0.1:5000", 2000 + 6 * 60_000))
            .is_empty(),
        "outside the window"
    );
}
