//! warden-identity against a real authorization server (oidc-provider,
//! tests/idp/server.mjs): real tokens accepted, key rotation, and every
//! attack of threats T07, T08, T09 and T24 refused with the right error.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::{b64, now, DpopKey, Idp, MCP, WARDEN};
use warden_identity::{
    AuthError, AuthMethod, Authenticator, EgressPolicy, IssuerErrorClass, IssuerState, RawIdentity,
    RawIssuer, RequestFacts,
};

fn raw_settings(idp: &Idp, data_dir: &std::path::Path) -> RawIdentity {
    RawIdentity {
        public_url: Some(WARDEN.to_owned()),
        data_dir: Some(data_dir.display().to_string()),
        issuers: Some(vec![
            // Issuer A by discovery (RFC 8414 metadata, then OIDC).
            RawIssuer {
                issuer: Some(idp.issuer.clone()),
                name: Some("a".to_owned()),
                min_refresh_interval: Some("1s".to_owned()),
                ..RawIssuer::default()
            },
            // Issuer B by explicit JWKS URI; its key has A's kid.
            RawIssuer {
                issuer: Some(idp.issuer2.clone()),
                name: Some("b".to_owned()),
                jwks_uri: Some(format!("{}/jwks", idp.issuer2)),
                ..RawIssuer::default()
            },
        ]),
        ..RawIdentity::default()
    }
}

async fn authenticator(idp: &Idp, raw: RawIdentity) -> Arc<Authenticator> {
    let settings = raw
        .resolve(std::path::Path::new("/"))
        .expect("settings resolve");
    Authenticator::start(settings, EgressPolicy::strict().with_loopback(true))
        .await
        .unwrap_or_else(|e| panic!("authenticator starts against {}: {e}", idp.issuer))
}

fn bearer(header: &str) -> RequestFacts<'_> {
    RequestFacts {
        method: "POST",
        url: MCP,
        authorization: Some(header),
        ..RequestFacts::default()
    }
}

async fn check(auth: &Authenticator, token: &str) -> Result<warden_identity::Principal, AuthError> {
    let header = format!("Bearer {token}");
    auth.authenticate(&bearer(&header)).await
}

#[tokio::test]
async fn real_tokens_are_accepted_with_their_roles() {
    let Some(idp) = Idp::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = authenticator(&idp, raw_settings(&idp, dir.path())).await;

    // Client credentials, two clients with different roles.
    let analyst = idp
        .client_credentials("analyst-app", MCP, "mcp mcp.read", None)
        .await;
    let admin = idp
        .client_credentials("admin-app", MCP, "mcp mcp.write", None)
        .await;
    let p = check(&auth, &analyst)
        .await
        .expect("analyst token accepted");
    assert_eq!(p.subject(), "analyst-app");
    assert_eq!(p.data().roles, vec!["analyst"]);
    assert_eq!(p.data().scopes, vec!["mcp", "mcp.read"]);
    assert_eq!(p.data().client_id.as_deref(), Some("analyst-app"));
    assert_eq!(p.data().method, AuthMethod::Bearer);
    assert_eq!(p.key(), "a:analyst-app");
    assert_eq!(
        p.credential().map(|c| c.issuer.as_str()),
        Some(idp.issuer.as_str())
    );
    let q = check(&auth, &admin).await.expect("admin token accepted");
    assert_eq!(q.data().roles, vec!["admin"]);
    assert_ne!(p, q);
    // Again: served from the cache, same principal.
    assert_eq!(check(&auth, &analyst).await.expect("cached"), p);

    // Authorization code + PKCE S256, public client, scripted login.
    let alice = idp.authorization_code("alice", MCP).await;
    let p = check(&auth, &alice)
        .await
        .expect("authorization-code token accepted");
    assert_eq!(p.subject(), "alice");
    assert_eq!(p.data().roles, vec!["analyst", "writer"]);
    assert_eq!(p.data().client_id.as_deref(), Some("public-app"));

    // Issuer B's own tokens (same kid as A's key) are accepted as B's.
    let claims =
        json!({"iss": idp.issuer2, "sub": "bob", "aud": MCP, "iat": now(), "exp": now() + 60});
    let from_b = idp.sign(true, json!({}), claims).await;
    let p = check(&auth, &from_b)
        .await
        .expect("issuer B token accepted");
    assert_eq!(p.key(), "b:bob");

    // RFC 9728 metadata names both issuers.
    let doc = auth.resource_metadata("/mcp");
    assert_eq!(doc["resource"], MCP);
    assert_eq!(
        doc["authorization_servers"],
        json!([idp.issuer, idp.issuer2])
    );
}

#[tokio::test]
async fn forged_and_misdirected_tokens_are_refused() {
    let Some(idp) = Idp::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = authenticator(&idp, raw_settings(&idp, dir.path())).await;
    let t = now();
    let base = idp.claims(MCP);
    let with = |patch: serde_json::Value| {
        let mut c = base.clone();
        for (k, v) in patch.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };

    // Sanity: the fixture's signing endpoint makes acceptable tokens.
    let good = idp.sign(false, json!({}), base.clone()).await;
    check(&auth, &good)
        .await
        .expect("a well-formed token is accepted");

    // T24 / expiry and time.
    let expired = idp
        .sign(
            false,
            json!({}),
            with(json!({"exp": t - 120, "iat": t - 400})),
        )
        .await;
    assert_eq!(check(&auth, &expired).await, Err(AuthError::Expired));
    let within_leeway = idp
        .sign(false, json!({}), with(json!({"exp": t - 10})))
        .await;
    assert!(check(&auth, &within_leeway).await.is_ok(), "30 s leeway");
    let future_nbf = idp
        .sign(false, json!({}), with(json!({"nbf": t + 600})))
        .await;
    assert_eq!(
        check(&auth, &future_nbf).await,
        Err(AuthError::Invalid("nbf"))
    );
    let future_iat = idp
        .sign(false, json!({}), with(json!({"iat": t + 600})))
        .await;
    assert_eq!(
        check(&auth, &future_iat).await,
        Err(AuthError::Invalid("iat"))
    );
    let no_exp = {
        let mut c = base.clone();
        c.as_object_mut().expect("object").remove("exp");
        idp.sign(false, json!({}), c).await
    };
    assert_eq!(check(&auth, &no_exp).await, Err(AuthError::Invalid("exp")));

    // T08: audience — real tokens from the real flow.
    let other = idp
        .client_credentials("analyst-app", "https://other.example.com/mcp", "mcp", None)
        .await;
    assert_eq!(
        check(&auth, &other).await,
        Err(AuthError::Invalid("audience"))
    );
    let slash = idp
        .client_credentials("analyst-app", &format!("{MCP}/"), "mcp", None)
        .await;
    assert_eq!(
        check(&auth, &slash).await,
        Err(AuthError::Invalid("audience"))
    );
    // The right token at another MCP path (another resource) is refused too.
    let right = idp
        .client_credentials("analyst-app", MCP, "mcp", None)
        .await;
    let header = format!("Bearer {right}");
    let elsewhere = RequestFacts {
        url: "http://127.0.0.1:9/mcp/other",
        ..bearer(&header)
    };
    assert_eq!(
        auth.authenticate(&elsewhere).await,
        Err(AuthError::Invalid("audience"))
    );
    let with_query = RequestFacts {
        url: "http://127.0.0.1:9/mcp?x=1",
        ..bearer(&header)
    };
    assert!(auth.authenticate(&with_query).await.is_ok());

    // Issuer.
    let wrong_iss = idp
        .sign(
            false,
            json!({}),
            with(json!({"iss": "https://evil.example.com"})),
        )
        .await;
    assert_eq!(
        check(&auth, &wrong_iss).await,
        Err(AuthError::Invalid("issuer"))
    );
    // T09: a second issuer (B) signs a token claiming to be A, with A's kid.
    let kid_clash = idp.sign(true, json!({"kid": idp.kid}), base.clone()).await;
    assert_eq!(
        check(&auth, &kid_clash).await,
        Err(AuthError::Invalid("signature"))
    );

    // T09: alg none, with and without a signature.
    let none_header = b64(json!({"alg": "none", "typ": "at+jwt", "kid": idp.kid})
        .to_string()
        .as_bytes());
    let payload = b64(base.to_string().as_bytes());
    assert_eq!(
        check(&auth, &format!("{none_header}.{payload}.")).await,
        Err(AuthError::Invalid("malformed"))
    );
    assert_eq!(
        check(&auth, &format!("{none_header}.{payload}.c2ln")).await,
        Err(AuthError::Invalid("algorithm"))
    );

    // T09: HS256 with the RSA public key (PEM and DER) as the HMAC secret.
    let (pem, kid) = idp.public_pem().await;
    let der = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>(),
    )
    .expect("PEM body");
    for secret in [pem.as_bytes(), der.as_slice()] {
        let header = b64(json!({"alg": "HS256", "typ": "at+jwt", "kid": kid})
            .to_string()
            .as_bytes());
        let input = format!("{header}.{payload}");
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        let sig = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        let forged = format!("{input}.{}", b64(sig.as_ref()));
        assert_eq!(
            check(&auth, &forged).await,
            Err(AuthError::Invalid("algorithm"))
        );
    }

    // T09: unknown kid (refresh is tried, bounded; still unknown).
    let unknown = idp
        .sign(false, json!({"kid": "no-such-key"}), base.clone())
        .await;
    assert_eq!(
        check(&auth, &unknown).await,
        Err(AuthError::Invalid("unknown_kid"))
    );

    // T09: jku / x5u / jwk pointing elsewhere are ignored: signed by B's key
    // (served at B's JWKS), claiming to be A, header names B's JWKS.
    let jku = idp
        .sign(
            true,
            json!({"kid": "b-key", "jku": format!("{}/jwks", idp.issuer2), "x5u": format!("{}/jwks", idp.issuer2)}),
            base.clone(),
        )
        .await;
    assert_eq!(
        check(&auth, &jku).await,
        Err(AuthError::Invalid("unknown_kid"))
    );
    let attacker = DpopKey::generate();
    let embedded = attacker.sign(
        json!({"alg": "ES256", "typ": "at+jwt", "kid": idp.kid, "jwk": attacker.jwk}),
        &base,
    );
    assert_eq!(
        check(&auth, &embedded).await,
        Err(AuthError::Invalid("unknown_kid"))
    );

    // Stripped signature; tampered payload; wrong typ.
    let mut parts: Vec<&str> = good.split('.').collect();
    parts[2] = "";
    assert_eq!(
        check(&auth, &parts.join(".")).await,
        Err(AuthError::Invalid("malformed"))
    );
    let tampered_payload = b64(with(json!({"sub": "admin"})).to_string().as_bytes());
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!("{}.{tampered_payload}.{}", parts[0], parts[2]);
    assert_eq!(
        check(&auth, &tampered).await,
        Err(AuthError::Invalid("signature"))
    );
    let id_token_typ = idp
        .sign(false, json!({"typ": "dpop+jwt"}), base.clone())
        .await;
    assert_eq!(
        check(&auth, &id_token_typ).await,
        Err(AuthError::Invalid("typ"))
    );

    // T24: missing and malformed credentials.
    let none = RequestFacts {
        method: "POST",
        url: MCP,
        ..RequestFacts::default()
    };
    assert_eq!(auth.authenticate(&none).await, Err(AuthError::Missing));
    for header in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Bearer a b",
        &format!("Bearer {good}, Bearer {good}"),
    ] {
        assert_eq!(
            auth.authenticate(&bearer(header)).await,
            Err(AuthError::Malformed),
            "{header}"
        );
    }
}

#[tokio::test]
async fn dpop_bound_tokens_need_a_fresh_proof_for_this_request() {
    let Some(idp) = Idp::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = authenticator(&idp, raw_settings(&idp, dir.path())).await;
    let key = DpopKey::generate();
    let token = idp
        .client_credentials("analyst-app", MCP, "mcp", Some(&key))
        .await;
    let header = format!("DPoP {token}");
    let facts = |proof: &str| -> (String, String) { (header.clone(), proof.to_owned()) };
    let run =
        |(authorization, proof): (String, String), method: &'static str, url: &'static str| {
            let auth = Arc::clone(&auth);
            async move {
                auth.authenticate(&RequestFacts {
                    method,
                    url,
                    authorization: Some(&authorization),
                    dpop: Some(&proof),
                    ..RequestFacts::default()
                })
                .await
            }
        };

    // A fresh proof for this request: accepted, principal marked DPoP.
    let proof = key.proof("POST", MCP, Some(&token), now(), None);
    let p = run(facts(&proof), "POST", MCP)
        .await
        .expect("valid DPoP accepted");
    assert_eq!(p.data().method, AuthMethod::Dpop);
    assert_eq!(
        p.credential().and_then(|c| c.key_thumbprint.as_deref()),
        Some(key.thumbprint.as_str())
    );

    // T07: the same proof again.
    assert_eq!(
        run(facts(&proof), "POST", MCP).await,
        Err(AuthError::DpopInvalid("replay"))
    );
    // For another URL, another method.
    let other_url = key.proof(
        "POST",
        "http://127.0.0.1:9/admin",
        Some(&token),
        now(),
        None,
    );
    assert_eq!(
        run(facts(&other_url), "POST", MCP).await,
        Err(AuthError::DpopInvalid("htu"))
    );
    let other_method = key.proof("GET", MCP, Some(&token), now(), None);
    assert_eq!(
        run(facts(&other_method), "POST", MCP).await,
        Err(AuthError::DpopInvalid("htm"))
    );
    // Stale and future-dated.
    let stale = key.proof("POST", MCP, Some(&token), now() - 300, None);
    assert_eq!(
        run(facts(&stale), "POST", MCP).await,
        Err(AuthError::DpopInvalid("iat"))
    );
    let future = key.proof("POST", MCP, Some(&token), now() + 300, None);
    assert_eq!(
        run(facts(&future), "POST", MCP).await,
        Err(AuthError::DpopInvalid("iat"))
    );
    // No ath, or the ath of another token.
    let no_ath = key.proof("POST", MCP, None, now(), None);
    assert_eq!(
        run(facts(&no_ath), "POST", MCP).await,
        Err(AuthError::DpopInvalid("ath"))
    );
    let wrong_ath = key.proof("POST", MCP, Some("another-token"), now(), None);
    assert_eq!(
        run(facts(&wrong_ath), "POST", MCP).await,
        Err(AuthError::DpopInvalid("ath"))
    );
    // Missing proof.
    let missing = RequestFacts {
        method: "POST",
        url: MCP,
        authorization: Some(&header),
        ..RequestFacts::default()
    };
    assert_eq!(
        auth.authenticate(&missing).await,
        Err(AuthError::DpopInvalid("missing"))
    );
    // The bound token presented as Bearer, with or without a proof.
    let as_bearer = format!("Bearer {token}");
    let proof = key.proof("POST", MCP, Some(&token), now(), None);
    assert_eq!(
        run((as_bearer.clone(), proof), "POST", MCP).await,
        Err(AuthError::DpopRequired)
    );
    // A proof by another key: the token is bound to `key`.
    let thief = DpopKey::generate();
    let stolen = thief.proof("POST", MCP, Some(&token), now(), None);
    assert_eq!(
        run(facts(&stolen), "POST", MCP).await,
        Err(AuthError::DpopInvalid("binding"))
    );
    // A proof with a private key in its jwk, an HMAC alg, a wrong typ.
    let mut private_jwk = key.jwk.clone();
    private_jwk["d"] = json!(b64(&[1; 32]));
    let claims = json!({"jti": "x1", "htm": "POST", "htu": MCP, "iat": now(), "ath": b64(&support::sha256(token.as_bytes()))});
    let bad = key.sign(
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private_jwk}),
        &claims,
    );
    assert_eq!(
        run(facts(&bad), "POST", MCP).await,
        Err(AuthError::DpopInvalid("jwk"))
    );
    let bad = key.sign(
        json!({"typ": "jwt", "alg": "ES256", "jwk": key.jwk}),
        &claims,
    );
    assert_eq!(
        run(facts(&bad), "POST", MCP).await,
        Err(AuthError::DpopInvalid("typ"))
    );
    let bad = key.sign(
        json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.jwk}),
        &claims,
    );
    assert_eq!(
        run(facts(&bad), "POST", MCP).await,
        Err(AuthError::DpopInvalid("algorithm"))
    );
    // A token bound to another key entirely.
    let other_token = idp
        .client_credentials("analyst-app", MCP, "mcp", Some(&thief))
        .await;
    let other_header = format!("DPoP {other_token}");
    let mine = key.proof("POST", MCP, Some(&other_token), now(), None);
    assert_eq!(
        run((other_header, mine), "POST", MCP).await,
        Err(AuthError::DpopInvalid("binding"))
    );
    // An unbound token with the DPoP scheme.
    let plain = idp
        .client_credentials("analyst-app", MCP, "mcp", None)
        .await;
    let plain_proof = key.proof("POST", MCP, Some(&plain), now(), None);
    assert_eq!(
        run((format!("DPoP {plain}"), plain_proof), "POST", MCP).await,
        Err(AuthError::Invalid("token_not_bound"))
    );

    // DPoP required by the issuer: an unbound Bearer token is refused.
    let mut raw = raw_settings(&idp, dir.path());
    if let Some(issuers) = raw.issuers.as_mut() {
        issuers[0].dpop = Some("required".to_owned());
    }
    let strict = authenticator(&idp, raw).await;
    assert_eq!(check(&strict, &plain).await, Err(AuthError::DpopRequired));
    let proof = key.proof("POST", MCP, Some(&token), now(), None);
    assert!(strict
        .authenticate(&RequestFacts {
            method: "POST",
            url: MCP,
            authorization: Some(&header),
            dpop: Some(&proof),
            ..RequestFacts::default()
        })
        .await
        .is_ok());
}

#[tokio::test]
async fn dpop_server_nonces() {
    let Some(idp) = Idp::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut raw = raw_settings(&idp, dir.path());
    raw.dpop = Some(warden_identity::RawDpop {
        nonce: Some(true),
        ..Default::default()
    });
    let auth = authenticator(&idp, raw).await;
    let key = DpopKey::generate();
    let token = idp
        .client_credentials("analyst-app", MCP, "mcp", Some(&key))
        .await;
    let header = format!("DPoP {token}");
    let proof = key.proof("POST", MCP, Some(&token), now(), None);
    let facts = RequestFacts {
        method: "POST",
        url: MCP,
        authorization: Some(&header),
        dpop: Some(&proof),
        ..RequestFacts::default()
    };
    let Err(AuthError::UseDpopNonce(nonce)) = auth.authenticate(&facts).await else {
        panic!("a proof without a nonce must be asked for one");
    };
    let (status, headers) = auth.challenge(&AuthError::UseDpopNonce(nonce.clone()), "/mcp");
    assert_eq!(status, 401);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "DPoP-Nonce" && *v == nonce));
    assert!(headers.iter().any(|(k, v)| k == "WWW-Authenticate"
        && v.starts_with("DPoP ")
        && v.contains("error=\"use_dpop_nonce\"")));
    let proof = key.proof("POST", MCP, Some(&token), now(), Some(&nonce));
    let facts = RequestFacts {
        dpop: Some(&proof),
        ..facts
    };
    assert!(auth.authenticate(&facts).await.is_ok());
    let forged = key.proof(
        "POST",
        MCP,
        Some(&token),
        now(),
        Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    );
    let facts = RequestFacts {
        dpop: Some(&forged),
        ..facts
    };
    assert!(matches!(
        auth.authenticate(&facts).await,
        Err(AuthError::UseDpopNonce(_))
    ));
}

#[tokio::test]
async fn key_rotation_accepts_new_keys_and_refuses_dropped_ones() {
    let Some(idp) = Idp::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = authenticator(&idp, raw_settings(&idp, dir.path())).await;
    let before = idp
        .client_credentials("analyst-app", MCP, "mcp", None)
        .await;
    check(&auth, &before)
        .await
        .expect("token under the first key");

    // Rotate, keeping the old key: both accepted (after the unknown-kid
    // refresh, which is rate-limited to once a second here).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let kid2 = idp.rotate(true).await;
    let during = idp
        .client_credentials("analyst-app", MCP, "mcp", None)
        .await;
    assert!(during.split('.').next().is_some());
    check(&auth, &during)
        .await
        .expect("token under the new key");
    check(&auth, &before)
        .await
        .expect("old key still published");

    // Rotate again, dropping every older key: the newest is accepted, and
    // tokens signed with dropped keys are refused, cached or not.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let kid3 = idp.rotate(false).await;
    assert_ne!(kid2, kid3);
    let after = idp
        .client_credentials("analyst-app", MCP, "mcp", None)
        .await;
    check(&auth, &after)
        .await
        .expect("token under the newest key");
    assert_eq!(
        check(&auth, &before).await,
        Err(AuthError::Invalid("unknown_kid"))
    );
    assert_eq!(
        check(&auth, &during).await,
        Err(AuthError::Invalid("unknown_kid"))
    );
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_the_jwks_at_most_once() {
    let Some(idp) = Idp::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = authenticator(&idp, raw_settings(&idp, dir.path())).await; // 1 s rate limit
    let mut tokens = Vec::new();
    for i in 0..50 {
        tokens.push(
            idp.sign(
                false,
                json!({"kid": format!("unknown-{i}")}),
                idp.claims(MCP),
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = idp.jwks_requests().await;
    let started = std::time::Instant::now();
    // Concurrently: the waiters share the one fetch.
    let mut set = tokio::task::JoinSet::new();
    for token in tokens {
        let auth = Arc::clone(&auth);
        set.spawn(async move { check(&auth, &token).await });
    }
    let results = set.join_all().await;
    let elapsed = started.elapsed().as_secs();
    assert!(results
        .iter()
        .all(|r| *r == Err(AuthError::Invalid("unknown_kid"))));
    let fetched = idp.jwks_requests().await - before;
    assert!(fetched >= 1, "an unknown kid triggers a refresh");
    assert!(
        fetched <= 1 + elapsed,
        "{fetched} JWKS fetches in {elapsed} s for 50 unknown kids (at most one per second)"
    );
}

#[tokio::test]
async fn background_refresh_picks_up_rotation_without_requests() {
    let Some(idp) = Idp::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut raw = raw_settings(&idp, dir.path());
    if let Some(issuers) = raw.issuers.as_mut() {
        issuers[0].refresh_interval = Some("1s".to_owned());
        issuers[0].min_refresh_interval = Some("1h".to_owned());
    }
    let auth = authenticator(&idp, raw).await;
    let before = idp
        .client_credentials("analyst-app", MCP, "mcp", None)
        .await;
    check(&auth, &before).await.expect("accepted");
    idp.rotate(false).await;
    let after = idp
        .client_credentials("analyst-app", MCP, "mcp", None)
        .await;
    // No unknown-kid refresh is allowed (1 h); only the background refresh
    // can bring the new key.
    let mut accepted = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if check(&auth, &after).await.is_ok() {
            accepted = true;
            break;
        }
    }
    assert!(accepted, "background refresh installed the new key");
    assert!(
        check(&auth, &before).await.is_err(),
        "the dropped key's cached token is refused"
    );
}

#[tokio::test]
async fn egress_policy_governs_fetches() {
    // Loopback is refused unless allowed (no fixture needed: nothing is
    // contacted).
    let raw = RawIdentity {
        public_url: Some(WARDEN.to_owned()),
        issuers: Some(vec![RawIssuer {
            issuer: Some("http://127.0.0.1:1".to_owned()),
            jwks_uri: Some("http://127.0.0.1:1/jwks".to_owned()),
            ..RawIssuer::default()
        }]),
        ..RawIdentity::default()
    };
    let settings = raw
        .clone()
        .resolve(std::path::Path::new("/"))
        .expect("resolves");
    let err = Authenticator::start(settings, EgressPolicy::strict())
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, warden_identity::IdentityError::Egress { .. }),
        "{err}"
    );
    // Cloud metadata is refused even for an issuer allowed private networks.
    let mut raw = raw;
    if let Some(issuers) = raw.issuers.as_mut() {
        issuers[0].issuer = Some("https://169.254.169.254".to_owned());
        issuers[0].jwks_uri = Some("https://169.254.169.254/latest/meta-data".to_owned());
        issuers[0].allow_private_network = Some(true);
    }
    let settings = raw.resolve(std::path::Path::new("/")).expect("resolves");
    let err = Authenticator::start(settings, EgressPolicy::strict().with_loopback(true))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, warden_identity::IdentityError::Egress { .. }),
        "{err}"
    );
}

/// The `scope` parameter of a challenge header.
fn scope_param(challenge: &str) -> Option<&str> {
    challenge
        .split("scope=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
}

/// Defect 3: no `scope` in the 401 and no `scopes_supported` in the
/// metadata, so the MCP Python SDK asked the authorization server for every
/// scope it advertised and was refused. With the policy's scopes advertised,
/// a client that asks for the challenge's scope gets a token Warden accepts.
#[tokio::test]
async fn no_scopes_were_advertised_so_clients_asked_for_every_scope() {
    let Some(idp) = Idp::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = authenticator(&idp, raw_settings(&idp, dir.path())).await;

    // What the SDK fell back to: every scope the authorization server knows.
    let everything = idp.openid_configuration().await["scopes_supported"]
        .as_array()
        .expect("scopes_supported")
        .iter()
        .filter_map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let (status, body) = idp
        .try_client_credentials("analyst-app", MCP, &everything)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_scope", "{body}");

    // The gateway passes the scopes its policy uses.
    auth.set_policy_scopes(&["mcp".to_owned(), "mcp.read".to_owned()])
        .expect("valid scopes");
    assert_eq!(
        auth.resource_metadata("/mcp")["scopes_supported"],
        json!(["mcp", "mcp.read"])
    );
    let (status, headers) = auth.challenge(&AuthError::Missing, "/mcp");
    assert_eq!(status, 401);
    let scope = scope_param(&headers[0].1).expect("a scope in the challenge");
    assert_eq!(scope, "mcp mcp.read");

    // A client following the MCP scope selection asks for exactly that.
    let (status, body) = idp.try_client_credentials("analyst-app", MCP, scope).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("access_token");
    let p = check(&auth, token).await.expect("accepted");
    assert_eq!(p.data().scopes, vec!["mcp", "mcp.read"]);
}

/// Defect 5: with several issuers configured, one that was down at start
/// made `Authenticator::start` fail, and Warden exit. Now it starts, serves
/// the other issuers, refuses the missing one's tokens (`invalid_token`,
/// `issuer_unavailable`), reports it, and accepts its tokens once it
/// answers, without a restart.
#[tokio::test]
async fn one_unreachable_issuer_stopped_startup() {
    let Some(idp) = Idp::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // A loopback port nobody listens on: the third issuer is down.
    let port = support::closed_port();
    let late = format!("http://127.0.0.1:{port}");
    let mut raw = raw_settings(&idp, dir.path());
    if let Some(issuers) = raw.issuers.as_mut() {
        issuers.push(RawIssuer {
            issuer: Some(late.clone()),
            name: Some("late".to_owned()),
            ..RawIssuer::default()
        });
    }
    let started = std::time::Instant::now();
    let auth = authenticator(&idp, raw).await;
    assert!(started.elapsed() < Duration::from_secs(10), "no long wait");

    let status = auth.issuer_status();
    assert_eq!(status.len(), 3);
    assert!(status[0].is_ready() && status[1].is_ready(), "{status:?}");
    assert_eq!(status[2].name, "late");
    assert_eq!(status[2].issuer, late);
    assert!(
        matches!(status[2].state, IssuerState::Unavailable { .. }),
        "{status:?}"
    );
    assert_eq!(status[2].last_error, Some(IssuerErrorClass::Connect));
    assert!(status[2].consecutive_failures >= 1);
    assert_eq!(status[2].keys, 0);
    assert!(!auth.issuers_ready());

    // The other issuers' tokens verify.
    let good = idp
        .client_credentials("analyst-app", MCP, "mcp", None)
        .await;
    check(&auth, &good).await.expect("issuer A still served");

    // The missing issuer's tokens are refused, and say why in the log only.
    let key = DpopKey::generate(); // the late issuer's signing key (P-256)
    let claims = json!({
        "iss": late, "sub": "carol", "aud": MCP, "iat": now(), "exp": now() + 300,
        "jti": b64(&support::random::<12>()),
    });
    let token = key.sign(
        json!({"alg": "ES256", "typ": "at+jwt", "kid": "late-1"}),
        &claims,
    );
    let header = format!("Bearer {token}");
    let refused = auth
        .authenticate_detailed(&bearer(&header))
        .await
        .expect_err("refused while unavailable");
    assert_eq!(refused.error, AuthError::Invalid("issuer_unavailable"));
    assert_eq!(refused.issuer.as_deref(), Some(late.as_str()));
    let (code, headers) = auth.challenge(&refused.error, "/mcp");
    assert_eq!(code, 401);
    assert!(
        headers[0].1.contains(r#"error="invalid_token""#),
        "{headers:?}"
    );

    // It comes up: discovery and JWKS on the same port.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the port is free again");
    let mut jwk = key.jwk.clone();
    jwk["kid"] = json!("late-1");
    jwk["alg"] = json!("ES256");
    jwk["use"] = json!("sig");
    let server = support::serve_documents(
        listener,
        vec![
            (
                "/.well-known/oauth-authorization-server".to_owned(),
                json!({"issuer": late, "jwks_uri": format!("{late}/jwks")}).to_string(),
            ),
            ("/jwks".to_owned(), json!({"keys": [jwk]}).to_string()),
        ],
    );
    let mut accepted = None;
    for _ in 0..150 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(p) = check(&auth, &token).await {
            accepted = Some(p);
            break;
        }
    }
    let p = accepted.expect("accepted once the issuer answers, within 30 s");
    assert_eq!(p.key(), "late:carol");
    let status = auth.issuer_status();
    assert!(status[2].is_ready(), "{status:?}");
    assert_eq!(status[2].last_error, None);
    assert_eq!(status[2].consecutive_failures, 0);
    assert_eq!(status[2].keys, 1);
    assert!(status[2].last_success.is_some());
    assert!(auth.issuers_ready());
    check(&auth, &good).await.expect("issuer A still served");
    server.abort();
}

/// Defect 7: DPoP proofs were accepted up to `max_age` + `leeway` (90 s)
/// old, where the documentation says 60 s. Now `iat` is no older than
/// `dpop.max_age` (leeway included) and no more than `dpop.future_leeway`
/// (5 s) ahead.
#[tokio::test]
async fn dpop_proofs_were_accepted_up_to_90s_old() {
    let Some(idp) = Idp::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = authenticator(&idp, raw_settings(&idp, dir.path())).await;
    let key = DpopKey::generate();
    let token = idp
        .client_credentials("analyst-app", MCP, "mcp", Some(&key))
        .await;
    let header = format!("DPoP {token}");
    let present = |auth: Arc<Authenticator>, iat: i64| {
        let proof = key.proof("POST", MCP, Some(&token), iat, None);
        let header = header.clone();
        async move {
            auth.authenticate(&RequestFacts {
                method: "POST",
                url: MCP,
                authorization: Some(&header),
                dpop: Some(&proof),
                ..RequestFacts::default()
            })
            .await
        }
    };
    let stale = Err(AuthError::DpopInvalid("iat"));
    assert_eq!(
        present(Arc::clone(&auth), now() - 75).await,
        stale,
        "75 s old"
    );
    assert_eq!(
        present(Arc::clone(&auth), now() - 61).await,
        stale,
        "61 s old"
    );
    assert!(
        present(Arc::clone(&auth), now() - 55).await.is_ok(),
        "55 s old"
    );
    assert_eq!(
        present(Arc::clone(&auth), now() + 20).await,
        stale,
        "20 s ahead"
    );
    assert_eq!(
        present(Arc::clone(&auth), now() + 7).await,
        stale,
        "7 s ahead"
    );
    assert!(
        present(Arc::clone(&auth), now() + 3).await.is_ok(),
        "3 s ahead"
    );
    assert!(present(Arc::clone(&auth), now()).await.is_ok());

    // Both ends are configurable.
    let mut raw = raw_settings(&idp, dir.path());
    raw.dpop = Some(warden_identity::RawDpop {
        max_age: Some("2m".to_owned()),
        future_leeway: Some("30s".to_owned()),
        ..Default::default()
    });
    let wide = authenticator(&idp, raw).await;
    assert!(present(Arc::clone(&wide), now() - 100).await.is_ok());
    assert!(present(Arc::clone(&wide), now() + 20).await.is_ok());
    assert_eq!(present(Arc::clone(&wide), now() - 125).await, stale);
}

/// Defect 8: `typ: JWT` was accepted where RFC 9068 says `at+jwt`. Both stay
/// accepted by default (issuers differ); `require_at_jwt_typ: true` makes an
/// issuer's `JWT`-typed tokens refused.
#[tokio::test]
async fn typ_jwt_was_accepted_where_at_jwt_is_required() {
    let Some(idp) = Idp::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let claims = idp.claims(MCP);
    let typed = |typ: &'static str| {
        let claims = claims.clone();
        let idp = &idp;
        async move { idp.sign(false, json!({"typ": typ}), claims).await }
    };
    let jwt = typed("JWT").await;
    let at_jwt = typed("at+jwt").await;
    let media_type = typed("application/at+jwt").await;

    let lenient = authenticator(&idp, raw_settings(&idp, dir.path())).await;
    for token in [&jwt, &at_jwt, &media_type] {
        check(&lenient, token).await.expect("accepted by default");
    }

    let mut raw = raw_settings(&idp, dir.path());
    if let Some(issuers) = raw.issuers.as_mut() {
        issuers[0].require_at_jwt_typ = Some(true);
    }
    let strict = authenticator(&idp, raw).await;
    assert_eq!(check(&strict, &jwt).await, Err(AuthError::Invalid("typ")));
    check(&strict, &at_jwt).await.expect("at+jwt accepted");
    check(&strict, &media_type)
        .await
        .expect("application/at+jwt accepted");
    // Issuer B does not require it.
    let from_b = idp
        .sign(
            true,
            json!({"typ": "JWT"}),
            json!({"iss": idp.issuer2, "sub": "bob", "aud": MCP, "iat": now(), "exp": now() + 60}),
        )
        .await;
    check(&strict, &from_b)
        .await
        .expect("another issuer's JWT accepted");
}
