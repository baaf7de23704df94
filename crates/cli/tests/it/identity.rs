//! Identity through the real binary: authentication on every request,
//! sessions bound to principals, no token passthrough.

use std::process::Command;

use serde_json::{json, Value};

use crate::harness::*;

/// Warden with the development issuer, API keys, a test upstream over HTTP
/// (it echoes the headers it receives) and one over stdio.
fn start(extra_identity: &str) -> (Warden, Proc) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upstream = spawn(Command::new(WARDEN).args([
        "example-server",
        "--mode",
        "test",
        "--http",
        &format!("127.0.0.1:{port}"),
    ]));
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let yaml = format!(
        "identity:\n  public_url: http://127.0.0.1:1\n  data_dir: '{{DIR}}/data'\n  dev_issuer: {{enabled: true}}\n  api_keys: {{enabled: true}}\n{extra_identity}servers:\n  web:\n    url: http://127.0.0.1:{port}/mcp\n{}virtual_servers:\n  ro:\n    servers: [t]\n",
        example_server("t", "test", "")
    );
    (Warden::start(&yaml), upstream)
}

fn mint(w: &Warden, sub: &str, extra: &[&str]) -> String {
    let mut args = vec!["token", "mint", "--sub", sub];
    args.extend_from_slice(extra);
    w.cli(&args)
}

fn init_body() -> String {
    json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}).to_string()
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401_with_a_challenge() {
    let (w, _up) = start("  leeway: 0s\n");
    let c = Client::new(&w.url("/mcp"));
    // Missing, malformed, garbage, a token for another resource, expired.
    let other_resource = mint(&w, "alice", &["--resource", "/mcp/ro"]);
    let short = mint(&w, "alice", &["--ttl", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("malformed", Some("Bearer".into())),
        ("not a jwt", Some("Bearer not.a.jwt".into())),
        ("basic", Some("Basic YWxpY2U6cHc=".into())),
        ("other audience", Some(format!("Bearer {other_resource}"))),
        ("expired", Some(format!("Bearer {short}"))),
    ];
    for (name, auth) in cases {
        let mut b = c.builder(init_body());
        if let Some(a) = &auth {
            b = b.header("authorization", a);
        }
        let r = b.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{name}");
        let challenge = r
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
            .join(" | ");
        assert!(
            challenge.contains("resource_metadata="),
            "{name}: {challenge}"
        );
        let body = r.text().await.unwrap();
        if let Some(a) = &auth {
            assert!(
                !body.contains(a.trim_start_matches("Bearer ")) || a.len() < 12,
                "{name}: token echoed"
            );
        }
    }
    // The metadata the challenge points to.
    let meta: Value = reqwest::get(w.url("/.well-known/oauth-protected-resource/mcp"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["resource"], "http://127.0.0.1:1/mcp");
    // And a valid token works.
    let good = mint(&w, "alice", &[]);
    let mut ok = Client::with_bearer(&w.url("/mcp"), &good);
    ok.initialize().await;
    let r = ok
        .call_tool("t__echo", json!({"message": "authenticated"}))
        .await;
    assert_eq!(text_of(r.result()), "authenticated");
}

#[tokio::test]
async fn sessions_and_streams_belong_to_their_principal() {
    let (w, _up) = start("");
    let alice = mint(&w, "alice", &[]);
    let bob = mint(&w, "bob", &[]);
    let mut a = Client::with_bearer(&w.url("/mcp"), &alice);
    a.initialize().await;
    let mut b = Client::with_bearer(&w.url("/mcp"), &bob);
    b.session = a.session.clone();
    let r = b.call_tool("t__echo", json!({"message": "hijack"})).await;
    assert_eq!(r.status, 404, "bob used alice's session: {}", r.raw);
    // Resuming alice's stream as bob is refused too.
    let get = b
        .http
        .get(&b.url)
        .headers(b.extra_headers.clone())
        .header("accept", "text/event-stream")
        .header("mcp-session-id", a.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 404);
    let del = b
        .http
        .delete(&b.url)
        .headers(b.extra_headers.clone())
        .header("mcp-session-id", a.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 404);
    // Alice's session still works, and each principal has its own stdio
    // process (principal isolation).
    let pid = |r: &Reply| {
        serde_json::from_str::<Value>(&text_of(r.result()))
            .map(|v| v["instance"].clone())
            .unwrap_or(Value::Null)
    };
    let pa = pid(&a.call_tool("t__whoami", json!({})).await);
    let mut b2 = Client::with_bearer(&w.url("/mcp"), &bob);
    b2.initialize().await;
    let pb = pid(&b2.call_tool("t__whoami", json!({})).await);
    assert!(pa.is_string() && pb.is_string());
    assert_ne!(pa, pb, "two principals shared one stdio upstream");
}

#[tokio::test]
async fn the_clients_token_never_reaches_an_upstream() {
    let (w, _up) = start("");
    let token = mint(&w, "alice", &[]);
    let mut c = Client::with_bearer(&w.url("/mcp"), &token);
    c.initialize().await;
    let r = c.call_tool("web__echo_headers", json!({})).await;
    let seen = text_of(r.result());
    assert!(
        seen.contains("mcp-session-id") || seen.contains("content-type"),
        "no headers echoed: {seen}"
    );
    assert!(
        !seen.contains(&token),
        "the upstream saw the client's token"
    );
    assert!(
        !seen.to_ascii_lowercase().contains("authorization"),
        "{seen}"
    );
}

#[tokio::test]
async fn insufficient_scope_is_403_naming_the_scope() {
    let (w, _up) = start("  required_scopes: [mcp]\n");
    let without = mint(&w, "alice", &[]);
    let r = Client::with_bearer(&w.url("/mcp"), &without)
        .builder(init_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("mcp"),
        "{challenge}"
    );
    let with = mint(&w, "alice", &["--scopes", "mcp"]);
    let mut c = Client::with_bearer(&w.url("/mcp"), &with);
    c.initialize().await;
}

#[tokio::test]
async fn api_keys_authenticate_service_principals_until_revoked() {
    let (w, _up) = start("");
    let key = w.cli(&[
        "keys",
        "create",
        "--principal",
        "ci-bot",
        "--roles",
        "reader",
    ]);
    assert!(key.starts_with("wdn_"), "{key}");
    let mut c = Client::new(&w.url("/mcp"));
    c.extra_headers.insert("x-api-key", key.parse().unwrap());
    // A running Warden picks the new key up within a second or so.
    let mut accepted = false;
    for _ in 0..40 {
        if c.builder(init_body())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
            == 200
        {
            accepted = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(accepted, "a new API key was never accepted");
    c.initialize().await;
    let listed = w.cli(&["keys", "list"]);
    assert!(
        listed.contains("ci-bot") && !listed.contains(&key),
        "{listed}"
    );
    let id = listed.split_whitespace().next().unwrap().to_owned();
    w.cli(&["keys", "revoke", &id]);
    // The store is re-read; a revoked key is refused (allow for the reload).
    let mut refused = false;
    for _ in 0..40 {
        let r = c.builder(init_body()).send().await.unwrap();
        if r.status().as_u16() == 401 {
            refused = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(refused, "a revoked key still authenticates");
}

#[test]
fn python_sdk_with_a_bearer_token_through_warden() {
    let p = crate::peers::Peers::load();
    let (w, _up) = start("");
    let token = mint(&w, "alice", &[]);
    let out = Command::new(p.get("PY2"))
        .arg(p.driver("py_client.py"))
        .args([
            "--url",
            &w.url("/mcp"),
            "--header",
            &format!("Authorization=Bearer {token}"),
            "--list",
        ])
        .args([
            "--call",
            "t__echo",
            "--args",
            r#"{"message":"sdk with token"}"#,
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["calls"][0]["text"]
        .as_str()
        .unwrap_or("")
        .contains("sdk with token"));
    // Without the token the SDK gets no session.
    let out = Command::new(p.get("PY2"))
        .arg(p.driver("py_client.py"))
        .args(["--url", &w.url("/mcp"), "--list", "--timeout", "20"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_ne!(v["ok"], true, "unauthenticated SDK client got through: {v}");
}

#[test]
fn stdio_takes_its_principal_from_a_validated_token() {
    let (w, _up) = start("");
    let token = mint(&w, "alice", &[]);
    let run = |env_token: Option<&str>| {
        let mut cmd = Command::new(WARDEN);
        cmd.args(["stdio", "--config"]).arg(w.config_path());
        if let Some(t) = env_token {
            cmd.env("WARDEN_TOKEN", t);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let _ = writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"s","version":"1"}}}}}}"#
        );
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let ok = run(Some(&token));
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("protocolVersion"),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = run(Some("Bearer-garbage"));
    assert!(!bad.status.success());
    assert!(
        !String::from_utf8_lossy(&bad.stderr).contains("Bearer-garbage"),
        "token echoed in the error"
    );
    let none = run(None);
    assert!(!none.status.success());
}

/// A DPoP client key (P-256) that signs RFC 9449 proofs.
struct DpopKey {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
    jwk: Value,
    thumbprint: String,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

impl DpopKey {
    fn generate() -> DpopKey {
        use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
        let thumbprint = b64(&sha256(
            format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#).as_bytes(),
        ));
        DpopKey {
            pair,
            jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            thumbprint,
        }
    }

    fn proof(&self, method: &str, url: &str, token: &str) -> String {
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).unwrap();
        let iat = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let claims = json!({"jti": b64(&jti), "htm": method, "htu": url, "iat": iat, "ath": b64(&sha256(token.as_bytes()))});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

/// A base64url thumbprint starts with `-` once in 64 keys; `warden token
/// mint` read it as an unknown option and the DPoP test failed at random.
#[tokio::test]
async fn token_mint_takes_a_dpop_thumbprint_that_starts_with_a_hyphen() {
    let (w, _up) = start("");
    let thumbprint = "-Uy4Ct3sJ0eqfbcsnd6iyAKlyGyyfzbFE6p3IPeMVKk";
    let token = mint(&w, "alice", &["--dpop-jkt", thumbprint]);
    let claims = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims)
            .expect("base64url"),
    )
    .expect("JSON claims");
    assert_eq!(claims["cnf"]["jkt"], thumbprint);
}

#[tokio::test]
async fn dpop_bound_tokens_need_a_fresh_proof_for_this_url() {
    let (w, _up) = start("");
    let key = DpopKey::generate();
    let token = mint(&w, "alice", &["--dpop-jkt", &key.thumbprint]);
    // Warden's public resource URL (identity.public_url + path) is what proofs name.
    let htu = "http://127.0.0.1:1/mcp";
    let http = reqwest::Client::new();
    let post = |auth: String, proof: Option<String>| {
        let mut b = http
            .post(w.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", auth)
            .body(init_body());
        if let Some(p) = proof {
            b = b.header("dpop", p);
        }
        b.send()
    };
    let proof = key.proof("POST", htu, &token);
    assert_eq!(
        post(format!("DPoP {token}"), Some(proof.clone()))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    // The same proof again: replay.
    assert_eq!(
        post(format!("DPoP {token}"), Some(proof))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    // A bound token presented as a bearer token, or without a proof.
    assert_eq!(
        post(format!("Bearer {token}"), None)
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        post(format!("DPoP {token}"), None)
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    // A proof for another URL or method.
    let other = key.proof("POST", "http://127.0.0.1:1/mcp/ro", &token);
    assert_eq!(
        post(format!("DPoP {token}"), Some(other))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let get = key.proof("GET", htu, &token);
    assert_eq!(
        post(format!("DPoP {token}"), Some(get))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    // A proof by another key.
    let thief = DpopKey::generate();
    let stolen = thief.proof("POST", htu, &token);
    assert_eq!(
        post(format!("DPoP {token}"), Some(stolen))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
}

/// Issue 15, item 1: a session keeps the identity of the token that opened
/// it, never its rights. Each request is decided (and recorded) with the
/// principal of the credential it carries: a narrower token on the same
/// session is refused, a wider one (scope step-up) is served, and a demoted
/// role loses what it lost.
#[tokio::test]
async fn a_session_keeps_the_identity_not_the_rights_of_the_token_that_opened_it() {
    let (w, _up) = start(
        "authorization:\n  roles:\n    admin:\n      grants:\n        - tools: [\"*\"]\n    analyst:\n      grants:\n        - tools: [\"t/echo\"]\n  scopes:\n    actions:\n      discover: [\"mcp:tools:list\"]\n      call_tool: [\"mcp:tools:call\"]\n",
    );
    let wide = mint(
        &w,
        "alice",
        &[
            "--roles",
            "admin",
            "--scopes",
            "mcp:tools:list,mcp:tools:call",
        ],
    );
    let mut c = Client::with_bearer(&w.url("/mcp"), &wide);
    c.initialize().await;
    let ok = c.call_tool("t__echo", json!({"message": "hi"})).await;
    assert!(ok.response()["result"].is_object(), "{}", ok.raw);

    // The same session with a token of the same user that may only list.
    let narrow = mint(
        &w,
        "alice",
        &["--roles", "admin", "--scopes", "mcp:tools:list"],
    );
    c.extra_headers
        .insert("authorization", format!("Bearer {narrow}").parse().unwrap());
    let r = c.call_tool("t__echo", json!({"message": "hi"})).await;
    assert_eq!(r.status, 403, "{}", r.raw);
    assert_eq!(r.error_code(), -32014, "{}", r.raw);
    let list = c.request("tools/list", json!({})).await;
    assert!(list.raw.contains("t__echo"), "{}", list.raw);

    // Step-up: a wider token on the same session is served at once.
    c.extra_headers
        .insert("authorization", format!("Bearer {wide}").parse().unwrap());
    let r = c.call_tool("t__echo", json!({"message": "again"})).await;
    assert!(r.response()["result"].is_object(), "{}", r.raw);

    // Demoted to analyst: the admin-only tools vanish from lists and calls.
    let demoted = mint(
        &w,
        "alice",
        &[
            "--roles",
            "analyst",
            "--scopes",
            "mcp:tools:list,mcp:tools:call",
        ],
    );
    c.extra_headers.insert(
        "authorization",
        format!("Bearer {demoted}").parse().unwrap(),
    );
    let list = c.request("tools/list", json!({})).await;
    assert!(list.raw.contains("t__echo"), "{}", list.raw);
    assert!(!list.raw.contains("t__crash"), "{}", list.raw);
    let r = c.call_tool("t__crash", json!({})).await;
    assert!(r.response()["error"].is_object(), "{}", r.raw);

    // Another user's token still cannot use the session at all.
    let bob = mint(
        &w,
        "bob",
        &[
            "--roles",
            "admin",
            "--scopes",
            "mcp:tools:list,mcp:tools:call",
        ],
    );
    c.extra_headers
        .insert("authorization", format!("Bearer {bob}").parse().unwrap());
    let r = c.call_tool("t__echo", json!({"message": "hi"})).await;
    assert_eq!(r.status, 404, "{}", r.raw);
}

/// Issue 15, item 5: one unreachable issuer does not stop Warden; the
/// others' tokens are served, and readiness says which issuer is missing.
#[tokio::test]
async fn one_unreachable_issuer_leaves_warden_serving_and_not_ready() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (w, _up) = start(&format!(
        "  issuers:\n    - issuer: http://127.0.0.1:{closed}/down\n"
    ));
    let http = reqwest::Client::new();
    let ready = http.get(w.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let text = ready.text().await.unwrap();
    assert!(text.contains("unavailable"), "{text}");
    let live = http.get(w.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status().as_u16(), 200);
    // The development issuer's tokens are served meanwhile.
    let token = mint(&w, "alice", &[]);
    let mut c = Client::with_bearer(&w.url("/mcp"), &token);
    c.initialize().await;
}

/// Issue 15, item 2: a 401 answered before the body was read left the
/// keep-alive connection broken for the client's next request (the SDK's
/// 401 → metadata GET failed with "Server disconnected" a few times in 200).
/// A raw connection, so no client library's retry hides it: the POST's 401
/// and then a GET on the same socket must both be answered, or the 401 must
/// say `Connection: close`.
#[tokio::test]
async fn a_401_leaves_the_keep_alive_connection_usable() {
    use std::io::{Read, Write};
    let (w, _up) = start("");
    let addr = w.base.trim_start_matches("http://").to_owned();
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"{}","version":"1"}}}}}}"#,
        "x".repeat(256 * 1024)
    );
    let outcome = tokio::task::spawn_blocking(move || {
        let mut broken = Vec::new();
        for i in 0..20 {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let post = format!(
                "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let get = format!(
                "GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: {addr}\r\n\r\n"
            );
            let _ = s.write_all(post.as_bytes());
            let first = read_response(&mut s);
            assert!(first.starts_with("HTTP/1.1 401"), "{i}: {first:.200}");
            if first.to_ascii_lowercase().contains("connection: close") {
                continue;
            }
            let sent = s.write_all(get.as_bytes());
            let second = read_response(&mut s);
            if sent.is_err() || !second.starts_with("HTTP/1.1 200") {
                broken.push(format!("{i}: {:?} {second:.120}", sent.err()));
            }
        }
        broken
    })
    .await
    .unwrap();
    assert!(outcome.is_empty(), "{outcome:?}");

    fn read_response(s: &mut std::net::TcpStream) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return text;
                }
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&buf).to_string(),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
