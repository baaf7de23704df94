use std::ffi::OsString;
use std::time::Duration;

use super::*;

fn parse(yaml: &str) -> RawTelemetry {
    serde_saphyr::from_str(yaml).expect("yaml")
}

fn env(name: &str) -> Option<OsString> {
    match name {
        "OTLP_AUTH" => Some("Bearer s3cr3t-header".into()),
        _ => None,
    }
}

fn resolve(yaml: &str) -> Result<TelemetrySettings, Vec<(String, String)>> {
    parse(yaml).resolve_with_env(&env)
}

#[test]
fn defaults_when_the_section_is_empty() {
    let s = RawTelemetry::default().resolve_with_env(&env).unwrap();
    assert_eq!(s.logs, LogSettings::default());
    assert_eq!(s.logs.format, LogFormat::Json);
    assert_eq!(s.logs.level, "info");
    assert!(s.otlp.is_none());
    assert!(s.metrics.enabled);
    assert_eq!(s.metrics.path, "/metrics");
}

#[test]
fn full_section_resolves() {
    let s = resolve(
        r#"
logs: { format: pretty, level: "warn,warden_gateway=debug" }
otlp:
  endpoint: http://127.0.0.1:4318
  headers: { authorization: env:OTLP_AUTH, x-scope-orgid: tenant-1 }
  service_name: warden-eu
  sample_ratio: 0.25
  timeout: 3s
metrics: { enabled: false, path: /internal/metrics }
"#,
    )
    .unwrap();
    assert_eq!(s.logs.format, LogFormat::Pretty);
    let o = s.otlp.unwrap();
    assert_eq!(o.endpoint.as_str(), "http://127.0.0.1:4318/v1/traces");
    assert_eq!(o.service_name, "warden-eu");
    assert_eq!(o.sample_ratio, 0.25);
    assert_eq!(o.timeout, Duration::from_secs(3));
    assert_eq!(o.headers.len(), 2);
    assert_eq!(o.headers[0].0, "authorization");
    assert_eq!(o.headers[0].1.expose(), "Bearer s3cr3t-header");
    assert!(!s.metrics.enabled);
    assert_eq!(s.metrics.path, "/internal/metrics");
}

#[test]
fn traces_path_is_appended_once() {
    for (given, want) in [
        ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
        ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"),
        (
            "https://collector.test/otlp/v1/traces",
            "https://collector.test/otlp/v1/traces",
        ),
        (
            "https://collector.test/otlp/",
            "https://collector.test/otlp/v1/traces",
        ),
    ] {
        let s = resolve(&format!("otlp: {{ endpoint: \"{given}\" }}")).unwrap();
        assert_eq!(s.otlp.unwrap().endpoint.as_str(), want, "{given}");
    }
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let errors = resolve(
        r#"
logs: { format: xml, level: "info,[[[" }
otlp:
  endpoint: ftp://collector.test
  headers: { "bad header": x, authorization: env:MISSING }
  service_name: ""
  sample_ratio: 1.5
  timeout: soon
metrics: { path: metrics }
"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "telemetry.logs.format",
            "telemetry.logs.level",
            "telemetry.otlp.endpoint",
            "telemetry.otlp.headers.authorization",
            "telemetry.otlp.headers.bad header",
            "telemetry.otlp.service_name",
            "telemetry.otlp.sample_ratio",
            "telemetry.otlp.timeout",
            "telemetry.metrics.path",
        ],
        "{errors:?}"
    );
    assert!(errors[3].1.contains("MISSING"), "{errors:?}");
}

#[test]
fn endpoint_is_required_and_refuses_credentials() {
    let e = resolve("otlp: { service_name: w }").unwrap_err();
    assert_eq!(e[0].0, "telemetry.otlp.endpoint");
    let e = resolve("otlp: { endpoint: \"https://user:pw@collector.test\" }").unwrap_err();
    assert!(e[0].1.contains("credentials"), "{e:?}");
    assert!(!format!("{e:?}").contains("pw@"), "{e:?}");
}

#[test]
fn unknown_keys_are_refused() {
    let r: Result<RawTelemetry, _> = serde_saphyr::from_str("otlp: { endpiont: x }");
    assert!(r.is_err());
    let r: Result<RawTelemetry, _> = serde_saphyr::from_str("traces: {}");
    assert!(r.is_err());
}

#[test]
fn header_values_never_printed() {
    let raw = parse(
        "otlp: { endpoint: \"http://127.0.0.1:4318\", headers: { authorization: inline-s3cr3t, x-bad: \"a\\nb-s3cr3t\" } }",
    );
    assert!(!format!("{raw:?}").contains("s3cr3t"));
    let errors = raw.clone().resolve_with_env(&env).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(!format!("{errors:?}").contains("s3cr3t"));

    let ok = resolve(
        "otlp: { endpoint: \"http://127.0.0.1:4318\", headers: { authorization: env:OTLP_AUTH } }",
    )
    .unwrap();
    let debug = format!("{ok:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
}

#[test]
fn metrics_need_a_loopback_listener_or_a_token() {
    let loopback: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let open: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let plain = resolve("metrics: {}").unwrap().metrics;
    assert!(plain.on_mcp_listener(loopback));
    assert!(!plain.on_mcp_listener(open), "no credential, reachable");
    let with_token = resolve("metrics: {token: env:OTLP_AUTH}").unwrap().metrics;
    assert!(with_token.on_mcp_listener(open));
    assert_eq!(
        with_token.token.as_ref().map(HeaderValue::expose),
        Some("Bearer s3cr3t-header")
    );
    assert!(!format!("{with_token:?}").contains("s3cr3t"));
    let own = resolve("metrics: {listen: '127.0.0.1:9464'}")
        .unwrap()
        .metrics;
    assert!(
        !own.on_mcp_listener(loopback),
        "they have a listener of their own"
    );
    let inline = resolve("metrics: {token: hunter2-metrics}").unwrap_err();
    assert_eq!(inline[0].0, "telemetry.metrics.token");
    assert!(!inline[0].1.contains("hunter2"));
    let unset = resolve("metrics: {token: env:NOT_SET}").unwrap_err();
    assert_eq!(unset[0].0, "telemetry.metrics.token");
}
