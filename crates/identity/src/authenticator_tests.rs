//! The authenticator without a network: the development issuer's key, API
//! keys, challenges, metadata, and the promise that credentials never leak.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::settings::{RawApiKeys, RawDevIssuer, RawIdentity};

const PUBLIC: &str = "https://warden.example.com";
const MCP: &str = "https://warden.example.com/mcp";

fn raw(dir: &Path) -> RawIdentity {
    RawIdentity {
        public_url: Some(PUBLIC.to_owned()),
        data_dir: Some(dir.display().to_string()),
        dev_issuer: Some(RawDevIssuer::default()),
        api_keys: Some(RawApiKeys::default()),
        ..RawIdentity::default()
    }
}

async fn start(raw: RawIdentity) -> Arc<Authenticator> {
    let settings = raw.resolve(Path::new("/")).expect("valid settings");
    Authenticator::start(settings, EgressPolicy::strict())
        .await
        .expect("starts without network")
}

fn facts(authorization: &str) -> RequestFacts<'_> {
    RequestFacts {
        method: "POST",
        url: MCP,
        authorization: Some(authorization),
        ..RequestFacts::default()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn development_tokens_are_verified_like_any_other() {
    for algorithm in ["EdDSA", "ES256"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut raw = raw(dir.path());
        raw.dev_issuer = Some(RawDevIssuer {
            algorithm: Some(algorithm.to_owned()),
            ..RawDevIssuer::default()
        });
        let auth = start(raw).await;
        let dev = auth.dev_issuer().expect("configured");
        let token = dev
            .mint_with(&crate::MintRequest {
                subject: "alice",
                roles: &strings(&["analyst"]),
                scopes: &strings(&["mcp", "tools.read"]),
                ttl: Duration::from_secs(60),
                audience: MCP,
                tenant: Some("acme"),
                ..crate::MintRequest::default()
            })
            .expect("minted");
        let header = format!("Bearer {token}");
        let p = auth.authenticate(&facts(&header)).await.expect("accepted");
        assert_eq!(p.subject(), "alice");
        assert_eq!(p.key(), "dev:acme/alice");
        assert_eq!(p.data().roles, strings(&["analyst"]));
        assert_eq!(p.data().scopes, strings(&["mcp", "tools.read"]));
        assert_eq!(p.data().client_id.as_deref(), Some("warden-dev"));
        // The key persists: a second issuer from the same directory verifies.
        let again = DevIssuer::load_or_create(
            dir.path(),
            dev.issuer(),
            if algorithm == "ES256" {
                crate::DevAlgorithm::Es256
            } else {
                crate::DevAlgorithm::EdDsa
            },
        )
        .expect("reloaded");
        assert_eq!(again.jwks(), dev.jwks());
        let jwks = dev.jwks();
        assert!(jwks["keys"][0].get("d").is_none(), "JWKS is public only");
        // Another audience is refused.
        let other = dev
            .mint(
                "alice",
                &[],
                &[],
                Duration::from_secs(60),
                "https://other.example.com/mcp",
            )
            .expect("minted");
        let header = format!("Bearer {other}");
        assert_eq!(
            auth.authenticate(&facts(&header)).await,
            Err(AuthError::Invalid("audience"))
        );
    }
}

#[tokio::test]
async fn required_scopes_give_403_with_the_scopes_to_step_up_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut raw = raw(dir.path());
    raw.required_scopes = Some(strings(&["mcp"]));
    let auth = start(raw).await;
    let dev = auth.dev_issuer().expect("dev");
    let token = dev
        .mint(
            "bob",
            &[],
            &strings(&["other"]),
            Duration::from_secs(60),
            MCP,
        )
        .expect("minted");
    let header = format!("Bearer {token}");
    let err = auth
        .authenticate(&facts(&header))
        .await
        .expect_err("refused");
    assert_eq!(err, AuthError::InsufficientScope(strings(&["mcp"])));
    let (status, headers) = auth.challenge(&err, "/mcp");
    assert_eq!(status, 403);
    let bearer = &headers[0].1;
    assert!(bearer.contains(r#"error="insufficient_scope""#), "{bearer}");
    assert!(bearer.contains(r#"scope="mcp""#), "{bearer}");
    let ok = dev
        .mint("bob", &[], &strings(&["mcp"]), Duration::from_secs(60), MCP)
        .expect("minted");
    let header = format!("Bearer {ok}");
    assert!(auth.authenticate(&facts(&header)).await.is_ok());
}

#[tokio::test]
async fn challenges_and_metadata_follow_rfc_6750_9449_9728() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut raw = raw(dir.path());
    raw.scopes_supported = Some(strings(&["mcp"]));
    let auth = start(raw).await;
    let (status, headers) = auth.challenge(&AuthError::Missing, "/mcp");
    assert_eq!(status, 401);
    assert_eq!(
        headers[0],
        (
            "WWW-Authenticate".to_owned(),
            format!(
                r#"Bearer resource_metadata="{PUBLIC}/.well-known/oauth-protected-resource/mcp", scope="mcp""#
            )
        )
    );
    assert!(
        headers[1]
            .1
            .starts_with(r#"DPoP algs="ES256 ES384 EdDSA RS256 PS256""#),
        "{headers:?}"
    );
    let (status, headers) = auth.challenge(&AuthError::Expired, "/mcp");
    assert_eq!(status, 401);
    assert!(headers[0]
        .1
        .contains(r#"error="invalid_token", error_description="the access token is invalid""#));
    let (_, headers) = auth.challenge(&AuthError::DpopInvalid("replay"), "/mcp");
    assert!(
        !headers[0].1.contains("error="),
        "proof errors go in the DPoP challenge"
    );
    assert!(headers[1].1.contains(r#"error="invalid_dpop_proof""#));
    let (status, headers) = auth.challenge(&AuthError::Unavailable, "/mcp");
    assert_eq!((status, headers[0].0.as_str()), (503, "Retry-After"));
    let (status, headers) = auth.challenge(&AuthError::ReplayCacheUnavailable, "/mcp");
    assert_eq!((status, headers[0].0.as_str()), (503, "Retry-After"));
    assert_eq!(
        AuthError::ReplayCacheUnavailable.code(),
        "replay_cache_unavailable"
    );

    let doc = auth.resource_metadata("/mcp");
    assert_eq!(doc["resource"], MCP);
    assert_eq!(doc["authorization_servers"], serde_json::json!([PUBLIC]));
    assert_eq!(doc["scopes_supported"], serde_json::json!(["mcp"]));
    assert_eq!(
        doc["bearer_methods_supported"],
        serde_json::json!(["header"])
    );
    assert_eq!(doc["dpop_bound_access_tokens_required"], false);
    assert_eq!(
        auth.metadata_url("/mcp/dev"),
        format!("{PUBLIC}/.well-known/oauth-protected-resource/mcp/dev")
    );
}

#[tokio::test]
async fn api_keys_map_to_principals_and_revocation_takes_effect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = raw(dir.path()).resolve(Path::new("/")).expect("valid");
    let secret = settings.api_key_secret().expect("secret");
    let store_path = settings.api_key_store_path().expect("store");
    let (key, stored) =
        crate::create_api_key(&secret, "ci-bot", &strings(&["deployer"])).expect("key");
    let mut store = KeyStore::load(&store_path).expect("empty store");
    store.add(stored.clone()).expect("added");
    store.save(&store_path).expect("saved");

    let auth = Authenticator::start(settings, EgressPolicy::strict())
        .await
        .expect("starts");
    let by_header = RequestFacts {
        method: "POST",
        url: MCP,
        api_key: Some(&key),
        ..RequestFacts::default()
    };
    let p = auth.authenticate(&by_header).await.expect("accepted");
    assert_eq!(p.subject(), "ci-bot");
    assert_eq!(p.data().roles, strings(&["deployer"]));
    assert_eq!(p.data().method, AuthMethod::ApiKey);
    assert_eq!(p.key(), "api-key:ci-bot");
    let bearer = format!("Bearer {key}");
    assert_eq!(
        auth.authenticate(&facts(&bearer)).await.expect("as bearer"),
        p
    );
    let both = RequestFacts {
        api_key: Some(&key),
        ..facts(&bearer)
    };
    assert_eq!(auth.authenticate(&both).await, Err(AuthError::Malformed));
    let dpop = format!("DPoP {key}");
    assert_eq!(
        auth.authenticate(&facts(&dpop)).await,
        Err(AuthError::Malformed)
    );
    let unknown = RequestFacts {
        api_key: Some("wdn_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ..by_header
    };
    assert_eq!(
        auth.authenticate(&unknown).await,
        Err(AuthError::Invalid("api_key"))
    );

    store.revoke(&stored.id);
    store.save(&store_path).expect("saved");
    auth.reload_api_keys().expect("reloaded");
    assert_eq!(
        auth.authenticate(&by_header).await,
        Err(AuthError::Invalid("api_key"))
    );
}

#[tokio::test]
async fn anonymous_only_when_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let none = RequestFacts {
        method: "POST",
        url: MCP,
        ..RequestFacts::default()
    };
    let auth = start(raw(dir.path())).await;
    assert_eq!(auth.authenticate(&none).await, Err(AuthError::Missing));
    let mut open = raw(dir.path());
    open.allow_anonymous = Some(true);
    let auth = start(open).await;
    assert_eq!(auth.authenticate(&none).await, Ok(Principal::anonymous()));
    // A bad credential is still refused: anonymous is for no credential.
    assert_eq!(
        auth.authenticate(&facts("Bearer x.y.z")).await,
        Err(AuthError::Invalid("malformed"))
    );
}

#[tokio::test]
async fn expired_cached_tokens_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut raw = raw(dir.path());
    raw.leeway = Some("0s".to_owned());
    let auth = start(raw).await;
    let dev = auth.dev_issuer().expect("dev");
    let token = dev
        .mint("carol", &[], &[], Duration::from_secs(1), MCP)
        .expect("minted");
    let header = format!("Bearer {token}");
    assert!(auth.authenticate(&facts(&header)).await.is_ok());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        auth.authenticate(&facts(&header)).await,
        Err(AuthError::Expired)
    );
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut inner) = self.0.lock() {
            inner.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn tokens_never_appear_in_errors_debug_output_or_logs() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // tracing caches a callsite's interest when it is first hit and, with a
    // single (thread-local) subscriber, asks the hitting thread's default:
    // a log callsite first hit by another test's thread is cached as
    // disabled. Hit them here, then recompute every cached interest with
    // this thread's subscriber, and start from an empty buffer.
    let warm_up = tempfile::tempdir().expect("tempdir");
    let _ = start(raw(warm_up.path()))
        .await
        .authenticate(&facts("Bearer x.y.z"))
        .await;
    tracing::callsite::rebuild_interest_cache();
    if let Ok(mut buffer) = captured.0.lock() {
        buffer.clear();
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let auth = start(raw(dir.path())).await;
    let dev = auth.dev_issuer().expect("dev");
    let good = dev
        .mint("dave", &[], &[], Duration::from_secs(60), MCP)
        .expect("minted");
    let wrong_aud = dev
        .mint("dave", &[], &[], Duration::from_secs(60), "https://x/mcp")
        .expect("minted");
    let mut tampered = good.clone();
    tampered.push('A');
    let secret_key = "wdn_0123456789abcdef_SECRETSECRETSECRETSECRETSECRETSECRETSECRET1";
    let mut seen = Vec::new();
    for token in [&good, &wrong_aud, &tampered] {
        let header = format!("Bearer {token}");
        let request = facts(&header);
        seen.push(format!("{request:?}"));
        seen.push(format!("{:?}", auth.authenticate_detailed(&request).await));
        let result = auth.authenticate(&request).await;
        seen.push(format!("{result:?}"));
        if let Err(e) = &result {
            seen.push(e.to_string());
            let (_, headers) = auth.challenge(e, "/mcp");
            seen.push(format!("{headers:?}"));
        }
        let dpop_header = format!("DPoP {token}");
        let with_proof = RequestFacts {
            dpop: Some(token),
            ..facts(&dpop_header)
        };
        seen.push(format!("{with_proof:?}"));
        seen.push(format!("{:?}", auth.authenticate(&with_proof).await));
    }
    let key_request = RequestFacts {
        api_key: Some(secret_key),
        ..RequestFacts::default()
    };
    seen.push(format!("{key_request:?}"));
    seen.push(format!("{:?}", auth.authenticate(&key_request).await));

    let logs =
        String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("utf-8 logs");
    assert!(
        logs.contains("authentication refused"),
        "refusals are logged (without the token): {logs}"
    );
    let everything = format!("{}\n{logs}", seen.join("\n"));
    for token in [&good, &wrong_aud, &tampered] {
        for part in token.split('.') {
            assert!(
                !everything.contains(part),
                "a token segment leaked:\n{everything}"
            );
        }
    }
    assert!(
        !everything.contains("SECRETSECRET"),
        "an API key leaked:\n{everything}"
    );
}

#[tokio::test]
async fn the_authenticate_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = start(raw(dir.path())).await;
    let facts = facts("Bearer x.y.z");
    let future = auth.authenticate(&facts);
    assert_send(&future);
    assert!(future.await.is_err());
}

#[test]
fn hostile_headers_never_panic_and_never_authenticate() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = runtime.block_on(start(raw(dir.path())));
    proptest::proptest!(|(authorization in "(Bearer |DPoP |bearer  |Basic )?.{0,200}", dpop in proptest::option::of(".{0,200}"), key in proptest::option::of("(wdn_)?.{0,80}"))| {
        let facts = RequestFacts {
            method: "POST",
            url: MCP,
            authorization: Some(&authorization),
            dpop: dpop.as_deref(),
            api_key: key.as_deref(),
            ..RequestFacts::default()
        };
        proptest::prop_assert!(runtime.block_on(auth.authenticate(&facts)).is_err());
    });
}

/// Defect 3: nothing told clients which scopes to ask for (no `scope` in the
/// 401 challenge, no `scopes_supported` in the metadata), so the MCP Python
/// SDK asked the authorization server for every scope it knew and was
/// refused (`invalid_scope`). The policy's scopes, passed by the gateway,
/// are now advertised in both, after the configured ones.
#[tokio::test]
async fn no_scopes_were_advertised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bare = start(raw(dir.path())).await;
    assert!(bare.scopes_supported().is_empty());
    assert!(bare
        .resource_metadata("/mcp")
        .get("scopes_supported")
        .is_none());

    let mut raw = raw(dir.path());
    raw.required_scopes = Some(strings(&["mcp"]));
    let auth = start(raw).await;
    assert_eq!(&auth.scopes_supported()[..], strings(&["mcp"]));
    auth.set_policy_scopes(&strings(&["mcp:tools", "mcp", "mcp:workflow:run"]))
        .expect("valid scopes");
    let all = strings(&["mcp", "mcp:tools", "mcp:workflow:run"]);
    assert_eq!(&auth.scopes_supported()[..], all);
    assert_eq!(
        auth.resource_metadata("/mcp")["scopes_supported"],
        serde_json::json!(all)
    );
    for err in [
        AuthError::Missing,
        AuthError::Expired,
        AuthError::Invalid("signature"),
        AuthError::DpopRequired,
        AuthError::DpopInvalid("iat"),
    ] {
        let (status, headers) = auth.challenge(&err, "/mcp");
        assert_eq!(status, 401);
        assert_eq!(headers.len(), 2, "Bearer and DPoP challenges: {headers:?}");
        for (name, value) in &headers {
            assert_eq!(name, "WWW-Authenticate");
            assert!(
                value.contains(r#"scope="mcp mcp:tools mcp:workflow:run""#),
                "{err:?}: {value}"
            );
        }
    }
    // Step-up (403) names what the operation needs, not the whole list.
    let step_up = AuthError::InsufficientScope(strings(&["mcp:workflow:run"]));
    let (status, headers) = auth.challenge(&step_up, "/mcp");
    assert_eq!(status, 403);
    assert!(
        headers[0].1.contains(r#"scope="mcp:workflow:run""#),
        "{headers:?}"
    );
    // A policy reload replaces the policy's scopes; the configured ones stay.
    auth.set_policy_scopes(&strings(&["mcp:prompts"]))
        .expect("valid scope");
    assert_eq!(
        &auth.scopes_supported()[..],
        strings(&["mcp", "mcp:prompts"])
    );
    // A scope that cannot be quoted in a challenge is refused; the list stays.
    for bad in ["two words", "a\"b", "back\\slash", ""] {
        let err = auth
            .set_policy_scopes(&strings(&["mcp:ok", bad]))
            .expect_err("refused");
        assert!(err.to_string().contains("not a valid scope"), "{err}");
    }
    assert_eq!(
        &auth.scopes_supported()[..],
        strings(&["mcp", "mcp:prompts"])
    );
}

/// Issue 15, item 4: every scope the policy used was in the 401 challenge,
/// so an MCP client (which asks for exactly the challenge's scope) got
/// every tool's scope at its first authorization: no least privilege, and
/// the step-up (403 `insufficient_scope` → re-authorize) never happened.
/// The policy's step-up scopes are now in the metadata only; the challenge
/// names the configured and the actions' scopes.
#[tokio::test]
async fn the_401_challenge_named_every_tools_scope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut raw = raw(dir.path());
    raw.required_scopes = Some(strings(&["mcp"]));
    let auth = start(raw).await;
    auth.set_policy_scopes_with_step_up(
        &strings(&["mcp:tools", "mcp"]),
        &strings(&["mcp:tools", "mcp:workflow:run", "mcp:admin"]),
    )
    .expect("valid scopes");
    let all = strings(&["mcp", "mcp:tools", "mcp:workflow:run", "mcp:admin"]);
    assert_eq!(&auth.scopes_supported()[..], all);
    assert_eq!(
        auth.resource_metadata("/mcp")["scopes_supported"],
        serde_json::json!(all)
    );
    assert_eq!(&auth.challenge_scopes()[..], strings(&["mcp", "mcp:tools"]));
    for err in [AuthError::Missing, AuthError::Expired] {
        let (status, headers) = auth.challenge(&err, "/mcp");
        assert_eq!(status, 401);
        for (_, value) in &headers {
            assert!(value.contains(r#"scope="mcp mcp:tools""#), "{value}");
        }
    }
    // The 403 names what the operation needs, step-up scopes included.
    let (status, headers) = auth.challenge(
        &AuthError::InsufficientScope(strings(&["mcp:tools", "mcp:workflow:run"])),
        "/mcp",
    );
    assert_eq!(status, 403);
    assert!(
        headers[0]
            .1
            .contains(r#"scope="mcp:tools mcp:workflow:run", error="insufficient_scope""#),
        "{headers:?}"
    );
    // A bad step-up scope is refused like a bad initial one; nothing changes.
    auth.set_policy_scopes_with_step_up(&strings(&["mcp:x"]), &strings(&["a b"]))
        .expect_err("refused");
    assert_eq!(&auth.scopes_supported()[..], all);
    // Without a policy, only the configured scopes are advertised.
    auth.set_policy_scopes_with_step_up(&[], &[])
        .expect("empty is fine");
    assert_eq!(&auth.scopes_supported()[..], strings(&["mcp"]));
    assert_eq!(&auth.challenge_scopes()[..], strings(&["mcp"]));
}

/// The `error_description` of a challenge header, when it has one.
fn description(challenge: &str) -> Option<&str> {
    challenge
        .split("error_description=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
}

/// Defect 9: a 401's `error_description` named the check that failed
/// (`invalid token (signature)`, `(unknown_kid)`, `(audience)`,
/// `(issuer)`), telling a forger which part to fix next. The client now gets
/// `invalid_token` and one generic text; the reason stays in
/// `AuthError::code` (and the [`AuthFailure`] facts) for the log and the
/// audit trail.
#[tokio::test]
async fn error_description_named_the_failing_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = start(raw(dir.path())).await;
    let dev = auth.dev_issuer().expect("dev");
    let misdirected = dev
        .mint(
            "erin",
            &[],
            &[],
            Duration::from_secs(60),
            "https://other.example.com/mcp",
        )
        .expect("minted");
    let header = format!("Bearer {misdirected}");
    let refused = auth
        .authenticate_detailed(&facts(&header))
        .await
        .expect_err("refused");
    assert_eq!(refused.reason(), "audience", "the precise reason is kept");

    let mut errors = vec![refused.error, AuthError::Expired, AuthError::DpopRequired];
    for code in [
        "signature",
        "unknown_kid",
        "audience",
        "issuer",
        "issuer_unavailable",
        "typ",
        "algorithm",
        "malformed",
        "exp",
        "nbf",
        "cnf",
        "claims",
        "subject",
        "token_not_bound",
        "certificate_binding",
        "api_key",
    ] {
        errors.push(AuthError::Invalid(code));
    }
    for err in &errors {
        let (status, headers) = auth.challenge(err, "/mcp");
        assert_eq!(status, 401);
        for (_, value) in &headers {
            assert!(value.contains(r#"error="invalid_token""#), "{value}");
            assert_eq!(
                description(value),
                Some("the access token is invalid"),
                "{err:?}: {value}"
            );
            assert!(!value.contains(&format!("({})", err.code())), "{value}");
        }
    }
    for code in [
        "htu", "htm", "iat", "ath", "replay", "binding", "jwk", "typ",
    ] {
        let (status, headers) = auth.challenge(&AuthError::DpopInvalid(code), "/mcp");
        assert_eq!(status, 401);
        let dpop = &headers[1].1;
        assert!(dpop.contains(r#"error="invalid_dpop_proof""#), "{dpop}");
        assert_eq!(description(dpop), Some("the DPoP proof is invalid"));
        assert!(!dpop.contains(&format!("({code})")), "{dpop}");
    }
}

/// A compact JWS's header and claims, decoded (test tokens only).
fn decoded(token: &str) -> (Value, Value) {
    let part = |i: usize| -> Value {
        let segment = token.split('.').nth(i).expect("segment");
        let bytes = crate::jws::b64_decode(segment).expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    (part(0), part(1))
}

fn jti_hash_of(claims: &Value) -> String {
    let jti = claims["jti"].as_str().expect("jti");
    let hex: String = sha256(jti.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

async fn refusal(auth: &Authenticator, token: &str) -> AuthFailure {
    let header = format!("Bearer {token}");
    auth.authenticate_detailed(&facts(&header))
        .await
        .expect_err("refused")
}

/// Defect 6: the audit record of a refused credential held only the
/// client's address and a reason code. The refusal now carries what the
/// token claimed (issuer, `kid`, subject, a hash of the `jti`), cut to
/// size, and never the token or its signature.
#[tokio::test]
async fn auth_failures_carry_token_facts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut raw = raw(dir.path());
    raw.leeway = Some("0s".to_owned());
    let auth = start(raw).await;
    let dev = auth.dev_issuer().expect("dev");
    let mint = |subject: &str, ttl: u64, audience: &str| {
        dev.mint(subject, &[], &[], Duration::from_secs(ttl), audience)
            .expect("minted")
    };
    let mut refused: Vec<(String, AuthFailure)> = Vec::new();

    // A wrong audience: the signature verified, the resource is another.
    let misdirected = mint("frank", 60, "https://other.example.com/mcp");
    let (header, claims) = decoded(&misdirected);
    let kid = header["kid"].as_str().expect("kid").to_owned();
    let f = refusal(&auth, &misdirected).await;
    assert_eq!(f.error, AuthError::Invalid("audience"));
    assert_eq!(f.reason(), "audience");
    assert_eq!(f.issuer.as_deref(), Some(dev.issuer()));
    assert_eq!(f.kid.as_deref(), Some(kid.as_str()));
    assert_eq!(f.subject.as_deref(), Some("frank"));
    assert_eq!(f.jti_hash, Some(jti_hash_of(&claims)));
    assert_eq!(f.jti_hash.as_deref().map(str::len), Some(7 + 64));
    // Again, from the verified-token cache: the same facts.
    assert_eq!(refusal(&auth, &misdirected).await, f);
    refused.push((misdirected, f));

    // A bad signature: one token's header and claims, another's signature.
    let a = mint("frank", 60, MCP);
    let b = mint("grace", 60, MCP);
    let a_parts: Vec<&str> = a.split('.').collect();
    let b_parts: Vec<&str> = b.split('.').collect();
    let forged = format!("{}.{}.{}", a_parts[0], a_parts[1], b_parts[2]);
    let f = refusal(&auth, &forged).await;
    assert_eq!(f.error, AuthError::Invalid("signature"));
    assert_eq!(f.issuer.as_deref(), Some(dev.issuer()));
    assert_eq!(f.kid.as_deref(), Some(kid.as_str()));
    assert_eq!(f.subject.as_deref(), Some("frank"));
    assert_eq!(f.jti_hash, Some(jti_hash_of(&decoded(&a).1)));
    refused.push((forged, f));

    // An unknown kid.
    let unknown_header = crate::jws::b64(br#"{"alg":"EdDSA","typ":"at+jwt","kid":"no-such-key"}"#);
    let unknown = format!("{unknown_header}.{}.{}", a_parts[1], a_parts[2]);
    let f = refusal(&auth, &unknown).await;
    assert_eq!(f.error, AuthError::Invalid("unknown_kid"));
    assert_eq!(f.kid.as_deref(), Some("no-such-key"));
    assert_eq!(f.subject.as_deref(), Some("frank"));
    assert_eq!(f.issuer.as_deref(), Some(dev.issuer()));
    refused.push((unknown, f));

    // Hostile text from an unknown issuer: cut to size, control characters
    // replaced; `sub` is the subject claim of an issuer we do not know.
    let long_kid = format!("k\n{}", "x".repeat(500));
    let hostile_header = crate::jws::b64(
        serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": long_kid})
            .to_string()
            .as_bytes(),
    );
    let hostile_claims = crate::jws::b64(
        serde_json::json!({
            "iss": format!("https://evil.example.com/{}", "i".repeat(300)),
            "sub": format!("root\u{1b}[2J{}", "s".repeat(300)),
            "aud": MCP, "exp": unix_now() + 60, "jti": "j-1",
        })
        .to_string()
        .as_bytes(),
    );
    let hostile = format!("{hostile_header}.{hostile_claims}.{}", a_parts[2]);
    let f = refusal(&auth, &hostile).await;
    assert_eq!(f.error, AuthError::Invalid("issuer"));
    for text in [&f.issuer, &f.kid, &f.subject] {
        let text = text.as_deref().expect("present");
        assert_eq!(text.chars().count(), AuthFailure::MAX_FACT_CHARS, "{text}");
        assert!(!text.contains(char::is_control), "{text:?}");
    }
    assert!(f
        .issuer
        .as_deref()
        .is_some_and(|i| i.starts_with("https://evil.example.com/")));
    assert!(f
        .subject
        .as_deref()
        .is_some_and(|s| s.starts_with("root\u{fffd}[2J")));
    assert_eq!(
        f.jti_hash,
        Some(jti_hash_of(&serde_json::json!({"jti": "j-1"})))
    );
    refused.push((hostile, f));

    // Not a JWS, or no credential: a reason, no facts.
    let f = refusal(&auth, "x.y.z").await;
    assert_eq!(f, AuthFailure::from(AuthError::Invalid("malformed")));
    let none = RequestFacts {
        method: "POST",
        url: MCP,
        ..RequestFacts::default()
    };
    assert_eq!(
        auth.authenticate_detailed(&none).await,
        Err(AuthFailure::from(AuthError::Missing))
    );

    // Expired (last: it waits for the token to expire).
    let short = mint("heidi", 1, MCP);
    assert!(refusal_or_ok(&auth, &short).await.is_ok());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let f = refusal(&auth, &short).await;
    assert_eq!(f.error, AuthError::Expired);
    assert_eq!(f.subject.as_deref(), Some("heidi"));
    assert_eq!(f.kid.as_deref(), Some(kid.as_str()));
    assert_eq!(f.jti_hash, Some(jti_hash_of(&decoded(&short).1)));
    refused.push((short, f));

    // Never the token, its signature, or the raw jti.
    for (token, failure) in &refused {
        let shown = format!("{failure:?} {failure}");
        for part in token.split('.') {
            assert!(!shown.contains(part), "a token segment in {shown}");
        }
        let jti = decoded(token).1["jti"].as_str().map(str::to_owned);
        if let Some(jti) = jti {
            assert!(!shown.contains(&jti), "the raw jti in {shown}");
        }
    }
}

async fn refusal_or_ok(auth: &Authenticator, token: &str) -> Result<Principal, AuthFailure> {
    let header = format!("Bearer {token}");
    auth.authenticate_detailed(&facts(&header)).await
}
