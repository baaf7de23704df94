use std::ffi::OsString;
use std::path::Path;

use super::*;

fn parse(yaml: &str) -> Result<IdentitySettings, Vec<(String, String)>> {
    let raw: RawIdentity = serde_saphyr::from_str(yaml).expect("YAML shape");
    raw.resolve_with_env(Path::new("/etc/warden"), &|name| match name {
        "LONG" => Some(OsString::from("x".repeat(40))),
        "SHORT" => Some(OsString::from("short")),
        _ => None,
    })
}

fn errors(yaml: &str) -> Vec<String> {
    match parse(yaml) {
        Ok(_) => Vec::new(),
        Err(list) => list.into_iter().map(|(p, m)| format!("{p}: {m}")).collect(),
    }
}

#[test]
fn a_full_section_resolves() {
    let settings = parse(
        r#"
public_url: https://warden.example.com/
audiences: [https://warden.example.com/mcp, api://warden]
required_scopes: [mcp]
scopes_supported: [mcp, mcp.admin]
leeway: 10s
token_cache_entries: 5000
issuers:
  - issuer: https://idp.example.com/realms/corp
    name: corp
    algorithms: [RS256, ES256]
    dpop: required
    refresh_interval: 1m
    min_refresh_interval: 5s
    claims: { roles: realm_access.roles, tenant: tid, agent_id: act.sub }
  - issuer: https://other.example.com
    jwks_uri: https://other.example.com/jwks
dpop: { max_age: 30s, nonce: true, nonce_secret: env:LONG }
api_keys: { secret: env:LONG }
dev_issuer: { algorithm: ES256 }
"#,
    )
    .expect("valid");
    assert_eq!(settings.public_url(), "https://warden.example.com");
    assert_eq!(
        settings.resource_url("/mcp"),
        "https://warden.example.com/mcp"
    );
    assert_eq!(
        settings.issuers.len(),
        3,
        "two issuers and the development issuer"
    );
    let corp = &settings.issuers[0];
    assert_eq!(corp.name, "corp");
    assert_eq!(corp.dpop, DpopMode::Required);
    assert_eq!(
        corp.algorithms,
        vec![SigningAlgorithm::RS256, SigningAlgorithm::ES256]
    );
    assert!(matches!(corp.keys, KeySource::Discovery(_)));
    assert_eq!(corp.claims.roles.as_deref(), Some("realm_access.roles"));
    assert!(matches!(settings.issuers[1].keys, KeySource::JwksUri(_)));
    assert_eq!(settings.issuers[1].name, "https://other.example.com");
    assert_eq!(settings.issuers[2].issuer, "https://warden.example.com");
    assert_eq!(settings.leeway, Duration::from_secs(10));
    assert_eq!(settings.token_cache_entries, 5000);
    assert!(settings.dpop.nonce);
    assert_eq!(settings.data_dir(), Path::new("/etc/warden/.warden"));
    assert_eq!(
        settings.api_key_store_path().as_deref(),
        Some(Path::new("/etc/warden/.warden/api-keys.json"))
    );
    assert!(
        !format!("{settings:?}").contains("xxxxxxxx"),
        "secrets stay out of Debug"
    );
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let found = errors(
        r#"
issuers:
  - issuer: https://idp.example.com
    algorithms: [none, HS256, RS256, RS256, XX1]
    dpop: sometimes
    refresh_interval: soon
    jwks_uri: ftp://idp.example.com/keys
  - name: nameless
dpop: { nonce_secret: inline-secret-value }
api_keys: { secret: env:SHORT }
required_scopes: ["has space"]
leeway: 10m
"#,
    );
    let expected = [
        "identity.public_url: required",
        "identity.issuers[0].jwks_uri: must be an https URL",
        "identity.issuers[1].issuer: required",
        "identity.dpop.nonce_secret: secrets must be referenced",
        "identity.api_keys.secret: secret is shorter than 32 bytes",
        "identity.required_scopes[0]: not a valid scope",
        "identity.leeway: at most 5m",
    ];
    for e in expected {
        assert!(
            found.iter().any(|f| f.starts_with(e)),
            "missing {e:?} in {found:#?}"
        );
    }
    assert!(
        !found.iter().any(|f| f.contains("inline-secret-value")),
        "{found:#?}"
    );
}

#[test]
fn algorithms_and_modes_are_checked() {
    let found = errors(
        r#"
public_url: https://w.example.com
issuers:
  - issuer: https://idp.example.com
    jwks_uri: https://idp.example.com/keys
    algorithms: [none, HS256, RS256, RS256, XX1]
    dpop: sometimes
    refresh_interval: soon
"#,
    );
    let expected = [
        "identity.issuers[0].algorithms[0]: \"none\" is never accepted",
        "identity.issuers[0].algorithms[1]: \"HS256\" is never accepted",
        "identity.issuers[0].algorithms[3]: duplicate algorithm",
        "identity.issuers[0].algorithms[4]: unknown algorithm",
        "identity.issuers[0].dpop: unknown mode",
        "identity.issuers[0].refresh_interval: invalid duration",
    ];
    for e in expected {
        assert!(
            found.iter().any(|f| f.starts_with(e)),
            "missing {e:?} in {found:#?}"
        );
    }
}

#[test]
fn unknown_keys_are_refused_by_the_shape() {
    let result: Result<RawIdentity, _> = serde_saphyr::from_str("public_url: x\nissuer: y\n");
    assert!(result.is_err());
    let result: Result<RawIdentity, _> =
        serde_saphyr::from_str("issuers:\n  - issuer: y\n    jku: https://evil\n");
    assert!(result.is_err());
}

#[test]
fn duplicate_issuers_and_names_are_refused() {
    let found = errors(
        r#"
public_url: https://w.example.com
issuers:
  - { issuer: https://a.example.com, name: a, jwks_uri: https://a.example.com/k }
  - { issuer: https://a.example.com, name: a, jwks_uri: https://a.example.com/k }
"#,
    );
    assert!(
        found
            .iter()
            .any(|f| f == "identity.issuers[1].issuer: duplicate issuer"),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("identity.issuers[1].name: duplicate name")),
        "{found:#?}"
    );
}

#[test]
fn the_replay_cache_is_memory_or_redis() {
    let settings = parse("public_url: https://w.example.com\n").expect("valid");
    assert!(matches!(settings.dpop.replay_cache, ReplayBackend::Memory));
    let settings = parse(
        "public_url: https://w.example.com\ndpop: { replay_cache: memory, replay_cache_entries: 10 }\n",
    )
    .expect("valid");
    assert!(matches!(settings.dpop.replay_cache, ReplayBackend::Memory));
    let settings = parse(
        r#"
public_url: https://w.example.com
dpop:
  replay_cache:
    redis: { url: "redis://127.0.0.1:6379/0", prefix: "w1:dpop:", timeout: 50ms }
"#,
    )
    .expect("valid");
    let ReplayBackend::Redis(redis) = &settings.dpop.replay_cache else {
        panic!("redis expected");
    };
    assert_eq!(redis.url.0, "redis://127.0.0.1:6379/0");
    assert_eq!(redis.prefix, "w1:dpop:");
    assert_eq!(redis.timeout, Duration::from_millis(50));
    let defaults = parse(
        "public_url: https://w.example.com\ndpop: { replay_cache: { redis: { url: 'redis://r:6379' } } }\n",
    )
    .expect("valid");
    let ReplayBackend::Redis(redis) = &defaults.dpop.replay_cache else {
        panic!("redis expected");
    };
    assert_eq!(
        (redis.prefix.as_str(), redis.timeout),
        ("warden:dpop:", Duration::from_millis(200))
    );
}

#[test]
fn redis_passwords_only_by_reference_and_never_echoed() {
    let yaml = |url: &str| {
        format!(
            "public_url: https://w.example.com\ndpop: {{ replay_cache: {{ redis: {{ url: '{url}' }} }} }}\n"
        )
    };
    let found = errors(&yaml("redis://:hunter2hunter2@10.0.0.5:6379/0"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("identity.dpop.replay_cache.redis.url: this URL holds a password"),
        "{found:#?}"
    );
    assert!(!found[0].contains("hunter2"));

    let with_env = |url: &'static str| {
        let raw: RawIdentity = serde_saphyr::from_str(&yaml("env:REDIS_URL")).expect("shape");
        raw.resolve_with_env(Path::new("/etc/warden"), &move |name| {
            (name == "REDIS_URL").then(|| OsString::from(url))
        })
    };
    let settings = with_env("redis://:hunter2hunter2@10.0.0.5:6379/0").expect("by reference");
    assert!(!format!("{settings:?}").contains("hunter2"));
    let raw: RawIdentity =
        serde_saphyr::from_str(&yaml("redis://:hunter2hunter2@h/0")).expect("shape");
    assert!(
        !format!("{raw:?}").contains("hunter2"),
        "raw Debug hides it too"
    );

    for (url, message) in [
        ("rediss://h:6379", "rediss:// (TLS) is not supported"),
        ("http://h:6379", "scheme must be redis://"),
        ("not a url", "not a valid URL"),
        ("env:NOPE", "environment variable NOPE is not set"),
    ] {
        let found = errors(&yaml(url));
        assert!(
            found.iter().any(|f| f.starts_with(&format!(
                "identity.dpop.replay_cache.redis.url: {message}"
            ))),
            "{url}: {found:#?}"
        );
    }
    let found = errors(
        "public_url: https://w.example.com\ndpop: { replay_cache: { redis: { prefix: 'has space', timeout: 1h } } }\n",
    );
    for e in [
        "identity.dpop.replay_cache.redis.url: required",
        "identity.dpop.replay_cache.redis.prefix: must be",
        "identity.dpop.replay_cache.redis.timeout: at most 10s",
    ] {
        assert!(
            found.iter().any(|f| f.starts_with(e)),
            "missing {e:?} in {found:#?}"
        );
    }
    let shape: Result<RawIdentity, _> =
        serde_saphyr::from_str("dpop: { replay_cache: { memcached: {} } }\n");
    assert!(shape.is_err());
}

#[test]
fn mtls_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::test_certs::TestCa::new("clients").write(dir.path(), "ca.pem");
    std::fs::write(dir.path().join("junk.pem"), "not pem").expect("write");
    let parse_in = |yaml: &str| {
        let raw: RawIdentity = serde_saphyr::from_str(yaml).expect("YAML shape");
        raw.resolve_with_env(dir.path(), &|_| None)
    };
    let settings = parse_in(
        "public_url: https://w.example.com\nmtls: { client_ca: ca.pem, principal_from: san_uri, roles: { svc-a: [reader] }, tenant: acme, required: true }\n",
    )
    .expect("valid");
    let mtls = settings.mtls().expect("mtls");
    assert!(mtls.required());
    assert_eq!(mtls.principal_from, CertField::SanUri);
    assert_eq!(mtls.client_ca.len(), 1);
    assert_eq!(mtls.client_ca_path(), dir.path().join("ca.pem"));
    assert!(matches!(&mtls.roles, MtlsRoles::ByPrincipal(m) if m["svc-a"] == ["reader"]));
    let settings = parse_in(
        "public_url: https://w.example.com\nmtls: { client_ca: ca.pem, roles: [service] }\n",
    )
    .expect("valid");
    let mtls = settings.mtls().expect("mtls");
    assert!(!mtls.required());
    assert_eq!(mtls.principal_from, CertField::SubjectCn);
    assert_eq!(mtls.roles, MtlsRoles::All(vec!["service".to_owned()]));

    let found = match parse_in(
        "public_url: https://w.example.com\nmtls: { principal_from: cn, roles: [' x'], tenant: '' }\n",
    ) {
        Ok(_) => panic!("invalid"),
        Err(list) => list.into_iter().map(|(p, m)| format!("{p}: {m}")).collect::<Vec<_>>(),
    };
    for e in [
        "identity.mtls.client_ca: required",
        "identity.mtls.principal_from: unknown field \"cn\"",
        "identity.mtls.roles[0]: must be",
        "identity.mtls.tenant: must be",
    ] {
        assert!(
            found.iter().any(|f| f.starts_with(e)),
            "missing {e:?} in {found:#?}"
        );
    }
    let found = parse_in(
        "public_url: https://w.example.com\nmtls: { client_ca: ca.pem, principal_from: san_dns, roles: { Svc.Internal: [x] } }\n",
    )
    .expect_err("upper-case DNS name");
    assert!(found[0].1.contains("lower-cased"), "{found:?}");
    for (file, message) in [("junk.pem", "no CERTIFICATE"), ("nope.pem", "cannot read")] {
        let found = parse_in(&format!(
            "public_url: https://w.example.com\nmtls: {{ client_ca: {file} }}\n"
        ))
        .expect_err("bad CA file");
        assert_eq!(found[0].0, "identity.mtls.client_ca");
        assert!(found[0].1.contains(message), "{found:?}");
    }
}

#[test]
fn issuer_names_cannot_take_the_reserved_namespaces() {
    for name in ["api-key", "mtls", "mtls:0123456789abcdef"] {
        let found = errors(&format!(
            "public_url: https://w.example.com\nissuers:\n  - {{ issuer: https://a.example.com, name: '{name}', jwks_uri: https://a.example.com/k }}\n"
        ));
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("identity.issuers[0].name: ") && f.contains("reserved")),
            "{name}: {found:#?}"
        );
    }
}

#[test]
fn dpop_window_resolves_with_its_paths() {
    let settings = parse(
        r#"
public_url: https://warden.example.com
dpop: { max_age: 45s, future_leeway: 2s }
"#,
    )
    .expect("valid");
    assert_eq!(settings.dpop.max_age, Duration::from_secs(45));
    assert_eq!(settings.dpop.future_leeway, Duration::from_secs(2));

    let defaults = parse("public_url: https://warden.example.com\n").expect("valid");
    assert_eq!(
        defaults.dpop.max_age,
        Duration::from_secs(60),
        "leeway included"
    );
    assert_eq!(defaults.dpop.future_leeway, Duration::from_secs(5));

    for (yaml, expected) in [
        (
            "dpop: { max_age: 0s }",
            "identity.dpop.max_age: must be greater than zero",
        ),
        (
            "dpop: { max_age: 11m }",
            "identity.dpop.max_age: at most 10m",
        ),
        (
            "dpop: { max_age: soon }",
            "identity.dpop.max_age: invalid duration",
        ),
        (
            "dpop: { future_leeway: 2m }",
            "identity.dpop.future_leeway: at most 1m",
        ),
        (
            "dpop: { future_leeway: later }",
            "identity.dpop.future_leeway: invalid duration",
        ),
    ] {
        let found = errors(&format!("public_url: https://warden.example.com\n{yaml}\n"));
        assert!(
            found.iter().any(|f| f.starts_with(expected)),
            "missing {expected:?} in {found:#?}"
        );
    }
}

#[test]
fn require_at_jwt_typ_is_per_issuer_and_off_by_default() {
    let settings = parse(
        r#"
public_url: https://warden.example.com
issuers:
  - issuer: https://idp.example.com
    require_at_jwt_typ: true
  - issuer: https://other.example.com
"#,
    )
    .expect("valid");
    assert!(settings.issuers[0].require_at_jwt_typ);
    assert!(!settings.issuers[1].require_at_jwt_typ, "default: JWT too");
}
