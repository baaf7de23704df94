//! Upstream credentials through the real binary (issue #18): the client's
//! token never goes upstream; a `mint` upstream gets, per call, a token
//! Warden signed for that upstream, caller and call, verifiable against
//! Warden's published keys and useless at any other upstream; static
//! secrets are chosen per tenant and never cross to another tenant.

use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::harness::*;
use crate::peers::free_port;

/// The bundled test server over Streamable HTTP (its `echo_headers` tool
/// answers the headers each request carried): the recording upstream.
fn recording_upstream() -> (Proc, u16) {
    let port = free_port();
    let p = spawn(Command::new(WARDEN).args([
        "example-server",
        "--mode",
        "test",
        "--http",
        &format!("127.0.0.1:{port}"),
    ]));
    wait_port(port);
    (p, port)
}

fn wait_port(port: u16) {
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on {port}");
}

/// A second Warden on `port` serving the bundled test server as `t`,
/// trusting `issuers` (YAML list items): an upstream that verifies tokens
/// for real. Its audit trail is under `.warden/audit/` in the directory.
fn second_warden(port: u16, issuers: &str) -> (Proc, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "identity:\n  public_url: http://127.0.0.1:{port}\n  issuers:\n{issuers}servers:\n{}registry: {{mode: tofu, lock: '{}/warden.lock'}}\n",
        example_server("t", "test", "").replace("{WARDEN}", WARDEN),
        dir.path().display()
    );
    let cfg = dir.path().join("warden.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let w = spawn(
        Command::new(WARDEN)
            .args(["serve", "--config"])
            .arg(&cfg)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("WARDEN_LOG", "info"),
    );
    assert!(
        wait_for_line(&w, "warden: listening on ", Duration::from_secs(30)).is_some(),
        "the second Warden did not start"
    );
    (w, dir)
}

/// The audit events of calls of `tool` in the trail at `path`, once there
/// are `n` (or after a deadline: what there is).
fn call_records(path: &std::path::Path, tool: &str, n: usize) -> Vec<Value> {
    let mut records = Vec::new();
    for _ in 0..100 {
        let trail = std::fs::read_to_string(path).unwrap_or_default();
        records = trail
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|r| r["event"].clone())
            .filter(|e| e["kind"] == "call" && e["tool"] == tool)
            .collect();
        if records.len() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    records
}

/// The JSON answer to `req`.
async fn json_of(req: reqwest::RequestBuilder) -> Value {
    req.send().await.unwrap().json().await.unwrap()
}

fn token_for(w: &Warden, sub: &str, extra: &[&str]) -> String {
    let mut args = vec!["token", "mint", "--sub", sub];
    args.extend_from_slice(extra);
    w.cli(&args)
}

/// The headers an `echo_headers` call reached the upstream with.
async fn seen_headers(c: &mut Client, tool: &str, args: Value) -> Value {
    let r = c.call_tool(tool, args).await;
    let text = text_of(r.result());
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not headers: {text}"))
}

fn bearer_of(headers: &Value) -> String {
    headers["authorization"]
        .as_str()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_else(|| panic!("no bearer token upstream: {headers}"))
        .to_owned()
}

fn segment(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("a compact JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// Checks the token's signature against the key set (Ed25519, Warden's
/// default) and returns its claims.
fn verify(token: &str, jwks: &Value) -> Value {
    let header = segment(token, 0);
    assert_eq!(header["alg"], "EdDSA");
    let kid = header["kid"].as_str().expect("kid");
    let key = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kid"] == kid))
        .unwrap_or_else(|| panic!("kid {kid} not published: {jwks}"));
    let x = URL_SAFE_NO_PAD
        .decode(key["x"].as_str().expect("x"))
        .expect("x");
    let (input, sig) = token.rsplit_once('.').expect("three segments");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("signature");
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, x)
        .verify(input.as_bytes(), &sig)
        .expect("the signature verifies against Warden's published key");
    segment(token, 1)
}

/// Warden's identity, and its output guard logging secrets instead of
/// redacting them: the recording upstream answers with the token it was
/// sent, which the test must read (a client would see it redacted).
const IDENTITY: &str = "identity:\n  public_url: http://127.0.0.1:1\n  data_dir: '{DIR}/data'\n  dev_issuer: {enabled: true}\nguards:\n  output:\n    secrets: {action: log}\n";

#[tokio::test]
async fn a_mint_upstream_gets_a_token_per_call_for_itself_the_caller_and_the_call() {
    let (_up, port) = recording_upstream();
    let upstream_url = format!("http://127.0.0.1:{port}/mcp");
    let yaml = format!(
        "{IDENTITY}servers:\n  web:\n    url: {upstream_url}\n    credentials: {{mode: mint}}\n\
         authorization:\n  roles:\n    user:\n      grants:\n        - tools: [\"*\"]\n  scopes:\n    tools:\n      \"web/echo_*\": [crm.read]\n"
    );
    let w = Warden::start(&yaml);
    let client_token = token_for(&w, "alice", &["--roles", "user", "--scopes", "crm.read"]);
    let mut c = Client::with_bearer(&w.url("/mcp"), &client_token);
    c.initialize().await;

    let jwks: Value = reqwest::get(w.url("/.well-known/upstream-jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut jtis = Vec::new();
    let mut hashes = Vec::new();
    for i in 0..2 {
        let seen = seen_headers(&mut c, "web__echo_headers", json!({})).await;
        assert!(
            !seen.to_string().contains(&client_token),
            "the upstream saw the client's token"
        );
        let token = bearer_of(&seen);
        let claims = verify(&token, &jwks);
        assert_eq!(claims["iss"], "http://127.0.0.1:1", "{claims}");
        assert_eq!(claims["aud"], upstream_url.as_str(), "{claims}");
        assert!(
            claims["sub"].as_str().is_some_and(|s| s.ends_with("alice")),
            "{claims}"
        );
        assert_eq!(claims["act"]["sub"], "http://127.0.0.1:1", "{claims}");
        assert_eq!(claims["scope"], "crm.read", "{claims}");
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert!(exp > iat && exp - iat <= 60, "{claims}");
        assert_eq!(claims["mcp_call"]["method"], "tools/call", "{claims}");
        assert_eq!(claims["mcp_call"]["name"], "echo_headers", "{claims}");
        let hash = claims["mcp_call"]["arguments_hash"].as_str().unwrap_or("");
        assert!(hash.starts_with("sha256:"), "{claims}");
        hashes.push(hash.to_owned());
        let jti = claims["jti"].as_str().unwrap().to_owned();
        assert!(!jtis.contains(&jti), "call {i} reused a token id");
        jtis.push(jti);
    }

    // The audit record names the mode and the token id's hash (and the
    // same argument hash the token is bound to), never the token.
    let trail_path = w.dir().join(".warden/audit/audit.jsonl");
    let records = call_records(&trail_path, "echo_headers", 2);
    let trail = std::fs::read_to_string(&trail_path).unwrap_or_default();
    assert_eq!(records.len(), 2, "{trail}");
    for ((record, jti), hash) in records.iter().zip(&jtis).zip(&hashes) {
        assert_eq!(record["upstream_credential"]["mode"], "mint", "{record}");
        // The token is bound to the arguments the audit record hashed.
        assert_eq!(record["input_hash"], hash.as_str(), "{record}");
        let hashed = record["upstream_credential"]["token_id_hash"]
            .as_str()
            .unwrap_or("");
        assert!(hashed.starts_with("sha256:") && !hashed.contains(jti.as_str()));
        assert!(!trail.contains(jti.as_str()), "a token id in the trail");
    }
    assert!(!trail.contains("eyJ"), "a token in the audit trail");
}

#[tokio::test]
async fn a_minted_token_replayed_at_another_upstream_fails_its_audience_check() {
    // Upstream two is a second Warden that verifies tokens for real
    // against the first Warden's published keys, for its own audience.
    let (_up, port) = recording_upstream();
    let w2_port = free_port();
    let w2_url = format!("http://127.0.0.1:{w2_port}/mcp");
    let yaml = format!(
        "{IDENTITY}servers:\n  web:\n    url: http://127.0.0.1:{port}/mcp\n    credentials: {{mode: mint}}\n  w2:\n    url: {w2_url}\n    credentials: {{mode: mint}}\n"
    );
    let w1 = Warden::start(&yaml);

    let (_w2, _dir2) = second_warden(
        w2_port,
        &format!(
            "    - issuer: http://127.0.0.1:1\n      jwks_uri: {}\n      allow_private_network: true\n",
            w1.url("/.well-known/upstream-jwks.json")
        ),
    );

    let client_token = token_for(&w1, "alice", &[]);
    let mut c = Client::with_bearer(&w1.url("/mcp"), &client_token);
    c.initialize().await;
    // Through the first Warden, the second accepts the tokens minted for it.
    let r = c
        .call_tool("w2__t__echo", json!({"message": "through two wardens"}))
        .await;
    assert_eq!(
        text_of(r.result()),
        "through two wardens",
        "{:?}",
        r.response()
    );

    // A token minted for `web`, replayed at the second Warden: refused.
    let seen = seen_headers(&mut c, "web__echo_headers", json!({})).await;
    let stolen = bearer_of(&seen);
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"replay","version":"1"}}});
    let resp = reqwest::Client::new()
        .post(&w2_url)
        .bearer_auth(&stolen)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        401,
        "a token for another audience was accepted"
    );
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // Signed by the key the second Warden trusts, fresh, from the issuer
    // it trusts (the call above proves all three): only the audience is
    // wrong.
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

#[tokio::test]
async fn a_tenants_static_secret_is_never_sent_on_another_tenants_call() {
    let (_up, port) = recording_upstream();
    let yaml = format!(
        "{IDENTITY}servers:\n  web:\n    url: http://127.0.0.1:{port}/mcp\n    credentials:\n      tenants:\n        acme: {{X-Api-Key: 'file:acme.key'}}\n        globex: {{X-Api-Key: 'file:globex.key'}}\n"
    );
    let w = Warden::start_with_files(
        &yaml,
        &[
            ("acme.key", "acme-secret-1\n"),
            ("globex.key", "globex-secret-2\n"),
        ],
    );
    let mut seen = Vec::new();
    for (sub, tenant) in [("alice", "acme"), ("bob", "globex")] {
        let token = token_for(&w, sub, &["--tenant", tenant]);
        let mut c = Client::with_bearer(&w.url("/mcp"), &token);
        c.initialize().await;
        seen.push(seen_headers(&mut c, "web__echo_headers", json!({})).await);
    }
    assert_eq!(seen[0]["x-api-key"], "acme-secret-1", "{}", seen[0]);
    assert_eq!(seen[1]["x-api-key"], "globex-secret-2", "{}", seen[1]);
    assert!(!seen[1].to_string().contains("acme-secret-1"));
    assert!(!seen[0].to_string().contains("globex-secret-2"));

    // A tenant without an entry is told so; nobody's secret goes upstream.
    let token = token_for(&w, "mallory", &["--tenant", "initech"]);
    let mut c = Client::with_bearer(&w.url("/mcp"), &token);
    c.initialize().await;
    let r = c.call_tool("web__echo_headers", json!({})).await;
    assert_eq!(r.error_code(), -32011, "{:?}", r.response());
    let message = r.response()["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("no credential"), "{message}");
    assert!(!r.response().to_string().contains("secret-"));
}

/// A client-credentials access token of the test IdP for Warden's `/mcp`.
async fn idp_token(issuer: &str, client: &str, secret: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={client}&client_secret={secret}&scope=mcp&resource=http%3A%2F%2F127.0.0.1%3A1%2Fmcp"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {v}"))
        .to_owned()
}

/// Checks an RS256 token against the issuer's published keys.
async fn verify_rs256(token: &str, issuer: &str) -> Value {
    let jwks: Value = reqwest::get(format!("{issuer}/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = segment(token, 0)["kid"].as_str().unwrap_or("").to_owned();
    let key = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kid"] == kid.as_str()))
        .unwrap_or_else(|| panic!("kid {kid} not in {jwks}"));
    let part = |n: &str| URL_SAFE_NO_PAD.decode(key[n].as_str().unwrap()).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    aws_lc_rs::signature::RsaPublicKeyComponents {
        n: part("n"),
        e: part("e"),
    }
    .verify(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        input.as_bytes(),
        &URL_SAFE_NO_PAD.decode(sig).unwrap(),
    )
    .expect("the exchanged token verifies against the IdP's keys");
    segment(token, 1)
}

#[tokio::test]
async fn token_exchange_gives_each_principal_its_own_cached_token_for_the_upstream() {
    let Some(p) = crate::oauth_sdk::peers_or_skip() else {
        return;
    };
    let idp = crate::oauth_sdk::Idp::start(&p);
    let iss = idp.issuer.clone();
    let (_up, port) = recording_upstream();
    let upstream_url = format!("http://127.0.0.1:{port}/mcp");
    let yaml = format!(
        "identity:\n  public_url: http://127.0.0.1:1\n  issuers:\n    - issuer: {iss}\n      allow_private_network: true\nguards:\n  output:\n    secrets: {{action: log}}\nservers:\n  web:\n    url: {upstream_url}\n    credentials:\n      mode: exchange\n      token_endpoint: {iss}/token\n      client_id: warden-exchanger\n      client_secret: 'file:exchanger.secret'\n"
    );
    let w = Warden::start_with_files(
        &yaml,
        &[("exchanger.secret", "exchanger-secret-for-tests-only\n")],
    );
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(w.url("/readyz")).await {
            if r.status() == 200 {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "Warden never had the IdP's keys");

    let mut per_principal = Vec::new();
    for (client, secret) in [
        ("analyst-app", "analyst-secret-for-tests-only"),
        ("admin-app", "admin-secret-for-tests-only"),
    ] {
        let client_token = idp_token(&iss, client, secret).await;
        let mut c = Client::with_bearer(&w.url("/mcp"), &client_token);
        c.initialize().await;
        let mut seen = Vec::new();
        for _ in 0..2 {
            let headers = seen_headers(&mut c, "web__echo_headers", json!({})).await;
            assert!(
                !headers.to_string().contains(&client_token),
                "the upstream saw the client's token"
            );
            seen.push(bearer_of(&headers));
        }
        assert_eq!(
            seen[0], seen[1],
            "{client}: the cached token was not reused"
        );
        let claims = verify_rs256(&seen[0], &iss).await;
        assert_eq!(claims["iss"], iss.as_str(), "{claims}");
        assert_eq!(claims["aud"], upstream_url.as_str(), "{claims}");
        assert_eq!(claims["sub"], client, "{claims}");
        assert_eq!(claims["act"]["sub"], "warden-exchanger", "{claims}");
        per_principal.push(seen[0].clone());
    }
    assert_ne!(
        per_principal[0], per_principal[1],
        "two principals were handed one token"
    );
    // One exchange per principal: the second call of each was cached.
    let stats: Value = json_of(reqwest::Client::new().post(format!("{iss}/admin/stats"))).await;
    assert_eq!(stats["exchanges"], 2, "{stats}");
}

/// Opens an authorization URL of the test IdP as a browser would (its
/// cookies, the scripted login of `login`) and follows the redirects to
/// the callback (the loopback listener of `warden credentials login`, or
/// Warden's own). `proxy`: a URL prefix the browser reaches at another
/// address (Warden's public URL in front of its real listener).
/// `url` (an authorization URL) opened in a browser, the user logged in
/// at the IdP as `login`, and the confirmation Warden's callback asks for
/// given from Warden's own page.
async fn authorize_as(url: &str, login: &str, proxy: Option<(&str, &str)>) {
    let (callback, page) = reach_confirmation(url, login, proxy).await;
    let origin = proxy.map_or_else(|| origin_of(&callback), |(public, _)| origin_of(public));
    let r = confirm_from(&callback, &page, &origin).await;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert!(
        status == 200 && body.contains("Connected to"),
        "the confirmation was refused: HTTP {status}: {body}"
    );
}

fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .unwrap()
        .origin()
        .ascii_serialization()
}

/// Submits the confirmation form of `page` (Warden's callback page at
/// `callback`) as a browser on `origin` would.
async fn confirm_from(callback: &str, page: &str, origin: &str) -> reqwest::Response {
    let field = |name: &str| -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let rest = page
            .split(&marker)
            .nth(1)
            .unwrap_or_else(|| panic!("no {name} in the confirmation page: {page}"));
        rest.split('"').next().unwrap_or_default().to_owned()
    };
    let action = callback.split('?').next().unwrap_or_default().to_owned();
    reqwest::Client::new()
        .post(action)
        .header("origin", origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("state", &field("state"))
                .append_pair("code", &field("code"))
                .finish(),
        )
        .send()
        .await
        .unwrap()
}

/// Follows `url` through the IdP's login as `login` to Warden's callback:
/// its URL and the page it answered.
async fn reach_confirmation(
    url: &str,
    login: &str,
    proxy: Option<(&str, &str)>,
) -> (String, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let mut cookies = std::collections::BTreeMap::<String, String>::new();
    let mut url = url.to_owned();
    for _ in 0..10 {
        let jar = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = if url.contains("/interaction/") {
            http.post(format!("{}/login", url.trim_end_matches('/')))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("login={login}"))
        } else {
            http.get(&url)
        };
        let resp = req.header("cookie", jar).send().await.unwrap();
        for v in resp.headers().get_all("set-cookie") {
            let text = v.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                cookies.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        let Some(location) = resp.headers().get("location").cloned() else {
            let status = resp.status();
            let page = resp.text().await.unwrap_or_default();
            assert!(
                url.contains("/callback") && status == 200,
                "the authorization stopped at {url}: HTTP {status}: {page}"
            );
            return (url, page);
        };
        url = reqwest::Url::parse(&url)
            .unwrap()
            .join(location.to_str().unwrap())
            .unwrap()
            .to_string();
        if let Some((public, real)) = proxy {
            if let Some(rest) = url.strip_prefix(public) {
                url = format!("{real}{rest}");
            }
        }
    }
    panic!("no redirect to the loopback listener");
}

/// `warden credentials login` for `principal`, completed at the IdP as
/// `login`.
async fn connect(w: &Warden, principal: &str, login: &str) {
    let mut cli = spawn(
        Command::new(WARDEN)
            .args(["credentials", "login", "--server", "remote", "--principal"])
            .arg(principal)
            .arg("--config")
            .arg(w.config_path()),
    );
    let stdout = cli.child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let errors: Vec<String> = cli.stderr_lines.try_iter().collect();
                panic!("warden credentials login printed no URL: {errors:?}")
            });
        if line.starts_with("http://") {
            break line;
        }
    };
    // The CLI's own loopback listener takes the redirect (the operator
    // runs the login on Warden's host): no confirmation page there.
    reach_confirmation(&url, login, None).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = cli.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "warden credentials login did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let errors: Vec<String> = cli.stderr_lines.try_iter().collect();
    assert!(status.success(), "login failed: {errors:?}");
}

/// The IdP, an OAuth-protected upstream (a second Warden whose identity is
/// the IdP: its 401 names its protected resource metadata), its directory
/// (its audit trail says who called), and a Warden with a grant store in
/// front of it as server `remote` (`mode: oauth`).
async fn oauth_gateway(
    p: &crate::peers::Peers,
) -> (crate::oauth_sdk::Idp, Proc, tempfile::TempDir, Warden) {
    let idp = crate::oauth_sdk::Idp::start(p);
    let iss = idp.issuer.clone();
    // Access tokens shorter-lived than Warden's renewal margin: each
    // user's first call refreshes on the request path.
    reqwest::Client::new()
        .post(format!("{iss}/admin/token-ttl"))
        .body(r#"{"seconds": 20}"#)
        .send()
        .await
        .unwrap();
    let w2_port = free_port();
    let w2_url = format!("http://127.0.0.1:{w2_port}/mcp");
    let (w2, dir2) = second_warden(
        w2_port,
        &format!("    - issuer: {iss}\n      allow_private_network: true\n"),
    );
    let yaml = format!(
        "{IDENTITY}credentials:\n  grant_store: {{path: grants.json, key: 'file:grants.key'}}\nservers:\n  remote:\n    url: {w2_url}\n    isolation: principal\n    credentials:\n      mode: oauth\n      client_id: warden-oauth\n      scopes: [mcp]\n      allow_private_network: true\n"
    );
    let w = Warden::start_with_files(
        &yaml,
        &[(
            "grants.key",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n",
        )],
    );
    (idp, w2, dir2, w)
}

async fn assert_not_connected(c: &mut Client) {
    let r = c
        .call_tool("remote__t__echo", json!({"message": "as whom?"}))
        .await;
    assert_eq!(r.error_code(), -32011, "{:?}", r.response());
}

/// Defect: the callback redeemed the code of whoever completed the
/// authorization and stored the grant for whoever started the login, without
/// asking. Bob starts a login and sends its URL to Alice; had she opened it
/// and logged in at the IdP, Bob would have called the upstream as Alice.
/// Now the callback names the Warden user the grant goes to and waits for a
/// confirmation from Warden's own page.
#[tokio::test]
async fn a_forwarded_login_link_connects_no_account_without_a_confirmation() {
    let Some(p) = crate::oauth_sdk::peers_or_skip() else {
        return;
    };
    let (_idp, _w2, dir2, w) = oauth_gateway(&p).await;
    let bob = token_for(&w, "bob", &[]);
    let started: Value = json_of(
        reqwest::Client::new()
            .post(w.url("/credentials/remote/login"))
            .bearer_auth(&bob),
    )
    .await;
    let url = started["authorization_url"].as_str().unwrap_or_default();
    // Alice opens the forwarded link and logs in as herself.
    let proxy = ("http://127.0.0.1:1/", w.url("/"));
    let (callback, page) = reach_confirmation(url, "alice", Some((proxy.0, &proxy.1))).await;
    let principal = page
        .split("<code id=\"principal\">")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or_default();
    assert!(
        principal.ends_with("#bob") || principal.ends_with("bob"),
        "{page}"
    );
    assert!(page.contains("If someone sent you this link"), "{page}");

    let mut c = Client::with_bearer(&w.url("/mcp"), &bob);
    c.initialize().await;
    // Reaching the page connected nothing.
    assert_not_connected(&mut c).await;
    // Another site cannot submit the form for her.
    let r = confirm_from(&callback, &page, "https://attacker.example").await;
    assert_eq!(r.status(), 403);
    assert_not_connected(&mut c).await;
    // Had she confirmed from Warden's page, she would have connected her
    // own account, knowingly: the confirmation is what connects.
    let r = confirm_from(&callback, &page, &origin_of(proxy.0)).await;
    assert_eq!(r.status(), 200);
    let r = c
        .call_tool("remote__t__echo", json!({"message": "confirmed"}))
        .await;
    assert_eq!(text_of(r.result()), "confirmed", "{:?}", r.response());
    let subjects: Vec<String> =
        call_records(&dir2.path().join(".warden/audit/audit.jsonl"), "echo", 1)
            .iter()
            .map(|e| e["principal"]["subject"].as_str().unwrap_or("").to_owned())
            .collect();
    assert_eq!(subjects, ["alice"]);
}

#[tokio::test]
async fn per_user_oauth_each_user_reaches_an_oauth_upstream_as_themselves() {
    let Some(p) = crate::oauth_sdk::peers_or_skip() else {
        return;
    };
    let (idp, _w2, dir2, w) = oauth_gateway(&p).await;
    let iss = idp.issuer.clone();
    let http = reqwest::Client::new();

    for user in ["alice", "bob"] {
        let token = token_for(&w, user, &[]);
        let mut c = Client::with_bearer(&w.url("/mcp"), &token);
        c.initialize().await;
        // Not connected yet: told how, nothing reaches the upstream.
        let r = c
            .call_tool("remote__t__echo", json!({"message": "hi"}))
            .await;
        assert_eq!(r.error_code(), -32011, "{:?}", r.response());
        let message = r.response()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(
            message.contains("warden credentials login --server remote --principal '"),
            "{message}"
        );
        let principal = message
            .split("--principal '")
            .nth(1)
            .and_then(|m| m.split('\'').next())
            .unwrap_or_default()
            .to_owned();
        assert!(principal.ends_with(user), "{principal}");

        if user == "alice" {
            // On Warden's host, by the operator's CLI.
            connect(&w, &principal, user).await;
        } else {
            // Self-service: Warden's API, as the user.
            let started: Value = json_of(
                http.post(w.url("/credentials/remote/login"))
                    .bearer_auth(&token),
            )
            .await;
            let url = started["authorization_url"]
                .as_str()
                .unwrap_or_else(|| panic!("no authorization URL: {started}"));
            assert!(
                url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcredentials%2Fcallback"),
                "{url}"
            );
            authorize_as(url, user, Some(("http://127.0.0.1:1/", &w.url("/")))).await;
        }

        for i in 0..2 {
            let said = format!("{user} says {i}");
            let r = c
                .call_tool("remote__t__echo", json!({"message": said}))
                .await;
            assert_eq!(text_of(r.result()), said, "{:?}", r.response());
        }
    }

    // The upstream saw each user's calls as that user.
    let subjects: Vec<String> =
        call_records(&dir2.path().join(".warden/audit/audit.jsonl"), "echo", 4)
            .iter()
            .map(|e| e["principal"]["subject"].as_str().unwrap_or("").to_owned())
            .collect();
    assert_eq!(subjects, ["alice", "alice", "bob", "bob"]);

    // Warden's own record of each call names the mode and a token id's
    // hash, never a token.
    let trail_path = w.dir().join(".warden/audit/audit.jsonl");
    // Six calls: each user's first one refused before any credential.
    let ours = call_records(&trail_path, "t__echo", 6);
    let credentialed: Vec<&Value> = ours
        .iter()
        .filter(|r| r["upstream_credential"].is_object())
        .collect();
    assert_eq!((ours.len(), credentialed.len()), (6, 4), "{ours:?}");
    for record in credentialed {
        assert_eq!(record["upstream_credential"]["mode"], "oauth", "{record}");
        let hashed = record["upstream_credential"]["token_id_hash"]
            .as_str()
            .unwrap_or("");
        assert!(hashed.starts_with("sha256:"), "{record}");
    }
    let trail = std::fs::read_to_string(&trail_path).unwrap_or_default();
    assert!(!trail.contains("eyJ"), "a token in the audit trail");

    // Refreshed on the request path (each user's first call).
    let stats: Value = json_of(http.post(format!("{iss}/admin/stats"))).await;
    assert!(stats["refreshes"].as_u64().unwrap_or(0) >= 2, "{stats}");

    // The store holds two sealed grants and nothing readable.
    let text = std::fs::read_to_string(w.dir().join("grants.json")).unwrap();
    let store: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        store["entries"].as_object().map(|e| e.len()),
        Some(2),
        "{text}"
    );
    let entries = store["entries"].as_object().cloned().unwrap_or_default();
    for (id, sealed) in &entries {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed.as_str().unwrap_or_default())
            .expect("base64url");
        for clear in ["refresh_token", "eyJ", "alice", "remote", "127.0.0.1"] {
            assert!(
                !bytes.windows(clear.len()).any(|w| w == clear.as_bytes()),
                "{clear} readable in the store"
            );
            assert!(!id.contains(clear), "{clear} in an entry id");
        }
    }

    // Carol's client takes URL-mode elicitation: her first call is
    // answered with the authorization URL to open (MCP -32042), and once
    // she connected, her retry goes through as herself.
    let carol = token_for(&w, "carol", &[]);
    let mut c = Client::with_bearer(&w.url("/mcp"), &carol);
    c.initialize_with(json!({"elicitation": {"form": {}, "url": {}}}))
        .await;
    let r = c
        .call_tool("remote__t__echo", json!({"message": "carol"}))
        .await;
    assert_eq!(r.error_code(), -32042, "{:?}", r.response());
    let elicitation = &r.response()["error"]["data"]["elicitations"][0];
    assert_eq!(elicitation["mode"], "url", "{elicitation}");
    assert!(elicitation["elicitationId"]
        .as_str()
        .is_some_and(|i| !i.is_empty()));
    let url = elicitation["url"].as_str().unwrap_or_default().to_owned();
    assert!(url.starts_with(&format!("{iss}/")), "{url}");
    authorize_as(&url, "carol", Some(("http://127.0.0.1:1/", &w.url("/")))).await;
    let r = c
        .call_tool("remote__t__echo", json!({"message": "carol"}))
        .await;
    assert_eq!(text_of(r.result()), "carol", "{:?}", r.response());
    let subjects = call_records(&dir2.path().join(".warden/audit/audit.jsonl"), "echo", 5);
    assert_eq!(subjects[4]["principal"]["subject"], "carol");

    // Bob forgets his grant: his calls are refused again, Alice's go on.
    let bob = token_for(&w, "bob", &[]);
    let forgot: Value = json_of(http.delete(w.url("/credentials/remote")).bearer_auth(&bob)).await;
    assert_eq!(forgot["removed"], true, "{forgot}");
    for (user, token) in [("bob", bob), ("alice", token_for(&w, "alice", &[]))] {
        let mut c = Client::with_bearer(&w.url("/mcp"), &token);
        c.initialize().await;
        let r = c
            .call_tool("remote__t__echo", json!({"message": "again"}))
            .await;
        if user == "bob" {
            assert_eq!(r.error_code(), -32011, "{:?}", r.response());
        } else {
            assert_eq!(text_of(r.result()), "again", "{:?}", r.response());
        }
    }
}
