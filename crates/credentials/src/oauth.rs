//! Per-user OAuth to remote servers (`mode: oauth`): Warden is the OAuth
//! client of an upstream that requires OAuth.
//!
//! - [`discover`]: the upstream's `401` names its protected resource
//!   metadata (RFC 9728, `WWW-Authenticate: Bearer resource_metadata=…`;
//!   else the well-known location), which names the authorization server,
//!   whose metadata (RFC 8414, else OpenID discovery) names the endpoints.
//! - [`Authorization`]: authorization code + PKCE (S256) with a `state`
//!   and the upstream as the `resource` (RFC 8707); [`Authorization::redeem`]
//!   turns the code into a [`UserGrant`] (a refresh token is required).
//! - [`UserTokens`]: on the request path, the user's access token for the
//!   upstream from a per-(principal, server) cache, refreshed from the
//!   stored grant shortly before it expires (a rotated refresh token is
//!   stored at once). A user's token is only ever found under that user.
//!
//! Every URL the upstream or its metadata names is fetched through the
//! caller's [`Egress`] (the identity crate's egress guard): discovery is
//! SSRF surface (T10).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use url::Url;

use crate::error::CredentialError;
use crate::exchange::{jwt_id, oauth_error_code, read_capped_as, Obtained};
use crate::store::{GrantStore, UserGrant};

/// A cached access token is refreshed this long before it expires (or at
/// half its life, if that is sooner).
const RENEW_BEFORE: Duration = Duration::from_secs(30);
/// Largest metadata document or token response read.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// The URL check of the egress guard (`Err`: why the URL is refused).
pub type UrlCheck = Arc<dyn Fn(&Url) -> Result<(), String> + Send + Sync>;

/// How Warden reaches URLs an upstream chose: an HTTP client whose
/// resolver refuses forbidden addresses (no redirects, no proxy), and the
/// check every URL passes first.
#[derive(Clone)]
pub struct Egress {
    pub http: reqwest::Client,
    pub check: UrlCheck,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Egress")
    }
}

/// Warden as a client of the upstream's authorization server. `Debug`
/// never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub client_id: String,
    /// `None`: a public client (PKCE only).
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What discovery learnt of an upstream and its authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The protected resource (the upstream), the tokens' audience.
    pub resource: String,
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// The resource's `scopes_supported` (what to ask for by default).
    pub scopes_supported: Vec<String>,
}

fn failed(what: impl Into<String>) -> CredentialError {
    CredentialError::OAuth(what.into())
}

fn parse_url(text: &str, what: &str) -> Result<Url, CredentialError> {
    Url::parse(text).map_err(|_| failed(format!("{what} is not a URL")))
}

async fn get_json<T: for<'de> Deserialize<'de>>(
    egress: &Egress,
    url: &Url,
    what: &str,
) -> Result<Option<T>, CredentialError> {
    (egress.check)(url).map_err(|e| failed(format!("{what}: {e}")))?;
    let resp = egress
        .http
        .get(url.clone())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|_| failed(format!("{what} ({url}) could not be fetched")))?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(failed(format!("{what} ({url}): HTTP {}", status.as_u16())));
    }
    let body = read_capped_as(resp, MAX_DOCUMENT_BYTES, what).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|_| failed(format!("{what} ({url}) is not valid metadata")))
}

/// The `resource_metadata` parameter of a `WWW-Authenticate` challenge.
#[must_use]
pub fn resource_metadata_of(challenge: &str) -> Option<String> {
    let lower = challenge.to_ascii_lowercase();
    let at = lower.find("resource_metadata=")? + "resource_metadata=".len();
    let rest = &challenge[at..];
    let value = if let Some(quoted) = rest.strip_prefix('"') {
        &quoted[..quoted.find('"')?]
    } else {
        rest.split([',', ' ']).next()?
    };
    (!value.is_empty()).then(|| value.to_owned())
}

/// Well-known location of `url`'s metadata: `{origin}/.well-known/{name}{path}`.
fn well_known(url: &Url, name: &str) -> Result<Url, CredentialError> {
    let path = url.path().trim_end_matches('/');
    let mut out = url.clone();
    out.set_query(None);
    out.set_fragment(None);
    out.set_path(&format!("/.well-known/{name}{path}"));
    Ok(out)
}

#[derive(Deserialize)]
struct ResourceMetadata {
    resource: String,
    #[serde(default)]
    authorization_servers: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
}

#[derive(Deserialize)]
struct ServerMetadata {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

/// Discovers how to get a token for the upstream at `upstream_url`: its
/// challenge, its protected resource metadata, its authorization server's
/// metadata.
pub async fn discover(egress: &Egress, upstream_url: &str) -> Result<Discovered, CredentialError> {
    let upstream = parse_url(upstream_url, "the upstream URL")?;
    (egress.check)(&upstream).map_err(|e| failed(format!("the upstream: {e}")))?;
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"warden","version":"0"}}}"#;
    let resp = egress
        .http
        .post(upstream.clone())
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(init)
        .send()
        .await
        .map_err(|_| failed(format!("the upstream ({upstream}) could not be reached")))?;
    if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Err(failed(format!(
            "the upstream answered HTTP {} without a token: it does not ask for OAuth",
            resp.status().as_u16()
        )));
    }
    let challenge = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(resource_metadata_of);
    let metadata_url = match challenge {
        Some(u) => parse_url(&u, "the challenge's resource_metadata")?,
        None => well_known(&upstream, "oauth-protected-resource")?,
    };
    let prm: ResourceMetadata = get_json(egress, &metadata_url, "protected resource metadata")
        .await?
        .ok_or_else(|| failed(format!("no protected resource metadata at {metadata_url}")))?;
    // RFC 9728 §3.3: the metadata must be about the resource we asked.
    if prm.resource.trim_end_matches('/') != upstream_url.trim_end_matches('/') {
        return Err(failed(format!(
            "the protected resource metadata describes {:?}, not the upstream",
            prm.resource
        )));
    }
    let issuer = prm
        .authorization_servers
        .first()
        .ok_or_else(|| failed("the protected resource metadata names no authorization server"))?
        .clone();
    let issuer_url = parse_url(&issuer, "the authorization server")?;
    let mut meta: Option<ServerMetadata> = None;
    for candidate in [
        well_known(&issuer_url, "oauth-authorization-server")?,
        parse_url(
            &format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
            "the authorization server",
        )?,
    ] {
        meta = get_json(egress, &candidate, "authorization server metadata").await?;
        if meta.is_some() {
            break;
        }
    }
    let meta =
        meta.ok_or_else(|| failed(format!("no metadata for the authorization server {issuer}")))?;
    if meta.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(failed(
            "the authorization server metadata names another issuer",
        ));
    }
    if meta
        .code_challenge_methods_supported
        .as_ref()
        .is_some_and(|m| !m.iter().any(|x| x == "S256"))
    {
        return Err(failed(
            "the authorization server does not support PKCE S256",
        ));
    }
    let endpoint = |e: Option<String>, what: &str| -> Result<String, CredentialError> {
        let e = e.ok_or_else(|| failed(format!("the authorization server has no {what}")))?;
        parse_url(&e, what)?;
        Ok(e)
    };
    Ok(Discovered {
        resource: prm.resource,
        issuer: meta.issuer,
        authorization_endpoint: endpoint(meta.authorization_endpoint, "authorization_endpoint")?,
        token_endpoint: endpoint(meta.token_endpoint, "token_endpoint")?,
        scopes_supported: prm.scopes_supported,
    })
}

fn random_b64(n: usize) -> Result<String, CredentialError> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| failed("no randomness"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// One authorization in progress: the URL the user opens, and what
/// redeeming its code needs. `Debug` never prints the verifier.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub redirect_uri: String,
    verifier: String,
    discovered: Discovered,
    client: OAuthClient,
    scope: String,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: Option<String>,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Authorization {
    /// Starts an authorization code flow with PKCE (S256) for `scopes`
    /// (empty: the resource's `scopes_supported`).
    pub fn start(
        discovered: &Discovered,
        client: &OAuthClient,
        redirect_uri: &str,
        scopes: &[String],
    ) -> Result<Authorization, CredentialError> {
        let verifier = random_b64(32)?;
        let state = random_b64(16)?;
        let challenge = URL_SAFE_NO_PAD.encode(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref(),
        );
        let scope = if scopes.is_empty() {
            discovered.scopes_supported.join(" ")
        } else {
            scopes.join(" ")
        };
        let mut url = parse_url(&discovered.authorization_endpoint, "authorization_endpoint")?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &client.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("resource", &discovered.resource);
            if !scope.is_empty() {
                q.append_pair("scope", &scope);
            }
        }
        Ok(Authorization {
            url: url.into(),
            state,
            redirect_uri: redirect_uri.to_owned(),
            verifier,
            discovered: discovered.clone(),
            client: client.clone(),
            scope,
        })
    }

    /// Redeems the code the redirect brought (with its `state`, checked
    /// here) for the user's grant.
    pub async fn redeem(
        &self,
        egress: &Egress,
        state: &str,
        code: &str,
    ) -> Result<UserGrant, CredentialError> {
        if state != self.state {
            return Err(failed("the redirect's state is not this authorization's"));
        }
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", &self.verifier),
            ("resource", &self.discovered.resource),
        ];
        form.push(("client_id", &self.client.client_id));
        if let Some(secret) = &self.client.client_secret {
            form.push(("client_secret", secret));
        }
        let t = token_request(egress, &self.discovered.token_endpoint, &form).await?;
        let refresh_token = t
            .refresh_token
            .filter(|r| !r.is_empty())
            .ok_or_else(|| failed("the authorization server issued no refresh token"))?;
        Ok(UserGrant {
            refresh_token,
            expires_at: now_unix() + t.expires_in.unwrap_or(60).min(24 * 3600),
            access_token: Some(t.access_token),
            scope: t.scope.unwrap_or_else(|| self.scope.clone()),
            token_endpoint: self.discovered.token_endpoint.clone(),
            client_id: self.client.client_id.clone(),
            resource: self.discovered.resource.clone(),
        })
    }
}

async fn token_request(
    egress: &Egress,
    endpoint: &str,
    form: &[(&str, &str)],
) -> Result<TokenResponse, CredentialError> {
    let url = parse_url(endpoint, "token_endpoint")?;
    (egress.check)(&url).map_err(|e| failed(format!("the token endpoint: {e}")))?;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let resp = egress
        .http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|_| failed("the token endpoint could not be reached"))?;
    let status = resp.status();
    let body = read_capped_as(resp, MAX_DOCUMENT_BYTES, "the token endpoint's answer").await?;
    if !status.is_success() {
        let code = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(|c| oauth_error_code(c).to_owned()))
            .unwrap_or_else(|| "unknown".to_owned());
        return Err(if code == "invalid_grant" {
            CredentialError::GrantRevoked
        } else {
            failed(format!(
                "the token endpoint refused (HTTP {}, {code})",
                status.as_u16()
            ))
        });
    }
    let t: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| failed("the token endpoint's answer is not a token response"))?;
    if t.token_type
        .as_deref()
        .is_some_and(|k| !k.eq_ignore_ascii_case("bearer"))
    {
        return Err(failed("the token is not a bearer token"));
    }
    if t.access_token.is_empty()
        || t.access_token
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ')
    {
        return Err(failed("the token is not usable in a header"));
    }
    Ok(t)
}

fn token_id(token: &str) -> String {
    jwt_id(token).unwrap_or_else(|| {
        URL_SAFE_NO_PAD.encode(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref(),
        )
    })
}

struct Cached {
    obtained: Obtained,
    renew_at: Instant,
}

/// A lock per (principal, server) refreshing.
type Turns = HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>;

/// Users' access tokens for OAuth upstreams: cached per (principal,
/// server), refreshed from the [`GrantStore`].
pub struct UserTokens {
    store: GrantStore,
    cache: Mutex<HashMap<(String, String), Cached>>,
    /// One refresh at a time per (principal, server): a rotated refresh
    /// token is used once; other users wait for nobody.
    refreshing: Mutex<Turns>,
}

impl std::fmt::Debug for UserTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTokens").finish_non_exhaustive()
    }
}

impl UserTokens {
    #[must_use]
    pub fn new(store: GrantStore) -> UserTokens {
        UserTokens {
            store,
            cache: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Cached>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fresh(&self, principal: &str, server: &str) -> Option<Obtained> {
        let key = (principal.to_owned(), server.to_owned());
        self.cache()
            .get(&key)
            .filter(|c| Instant::now() < c.renew_at)
            .map(|c| {
                let mut hit = c.obtained.clone();
                hit.cached = true;
                hit
            })
    }

    /// Stores a user's new grant (a completed login); their cached token,
    /// if any, is dropped.
    pub fn connect(
        &self,
        principal: &str,
        server: &str,
        grant: &UserGrant,
    ) -> Result<(), CredentialError> {
        self.store.put(principal, server, grant)?;
        self.cache()
            .remove(&(principal.to_owned(), server.to_owned()));
        Ok(())
    }

    /// Forgets a user's grant and cached token. `Ok(false)`: none stored.
    pub fn forget(&self, principal: &str, server: &str) -> Result<bool, CredentialError> {
        self.cache()
            .remove(&(principal.to_owned(), server.to_owned()));
        self.store.remove(principal, server)
    }

    /// The user's still-valid cached token (a connection's own requests).
    #[must_use]
    pub fn latest(&self, principal: &str, server: &str) -> Option<Arc<str>> {
        let key = (principal.to_owned(), server.to_owned());
        self.cache()
            .get(&key)
            .filter(|c| Instant::now() < c.obtained.expires_at)
            .map(|c| c.obtained.token.clone())
    }

    /// The access token of `principal` for `server`: cached, else the
    /// stored one while it is fresh, else refreshed now.
    /// [`CredentialError::NoGrant`]: the user has not connected yet.
    pub async fn token(
        &self,
        principal: &str,
        server: &str,
        client: &OAuthClient,
        egress: &Egress,
    ) -> Result<Obtained, CredentialError> {
        if let Some(hit) = self.fresh(principal, server) {
            return Ok(hit);
        }
        let turn = {
            let mut locks = self
                .refreshing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if locks.len() > 1024 {
                // Nobody holds or waits for these: drop them.
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks
                .entry((principal.to_owned(), server.to_owned()))
                .or_default()
                .clone()
        };
        let _one = turn.lock().await;
        if let Some(hit) = self.fresh(principal, server) {
            return Ok(hit);
        }
        let mut grant = self
            .store
            .get(principal, server)?
            .ok_or(CredentialError::NoGrant)?;
        let now = now_unix();
        let stored_fresh = grant
            .access_token
            .as_ref()
            .filter(|_| grant.expires_at > now + RENEW_BEFORE.as_secs());
        if stored_fresh.is_none() {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", grant.refresh_token.as_str()),
                ("client_id", client.client_id.as_str()),
            ];
            if let Some(secret) = &client.client_secret {
                form.push(("client_secret", secret));
            }
            if !grant.resource.is_empty() {
                form.push(("resource", &grant.resource));
            }
            let t = token_request(egress, &grant.token_endpoint, &form).await?;
            grant.access_token = Some(t.access_token);
            grant.expires_at = now_unix() + t.expires_in.unwrap_or(60).min(24 * 3600);
            if let Some(r) = t.refresh_token.filter(|r| !r.is_empty()) {
                grant.refresh_token = r;
            }
            if let Some(s) = t.scope {
                grant.scope = s;
            }
            self.store.put(principal, server, &grant)?;
        }
        let token = grant.access_token.clone().unwrap_or_default();
        let life = Duration::from_secs(grant.expires_at.saturating_sub(now_unix()));
        let expires_at = Instant::now() + life;
        let obtained = Obtained {
            token_id: token_id(&token).into(),
            token: token.into(),
            expires_at,
            cached: false,
        };
        let renew_at = expires_at - RENEW_BEFORE.min(life / 2);
        self.cache().insert(
            (principal.to_owned(), server.to_owned()),
            Cached {
                obtained: obtained.clone(),
                renew_at,
            },
        );
        Ok(obtained)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_names_the_resource_metadata() {
        assert_eq!(
            resource_metadata_of(
                r#"Bearer error="invalid_token", resource_metadata="http://a.example/.well-known/oauth-protected-resource/mcp""#
            )
            .as_deref(),
            Some("http://a.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(
            resource_metadata_of("Bearer resource_metadata=https://r.example/m, scope=x")
                .as_deref(),
            Some("https://r.example/m")
        );
        assert_eq!(resource_metadata_of("Bearer realm=x"), None);
        assert_eq!(
            resource_metadata_of("Bearer resource_metadata=\"unterminated"),
            None
        );
    }

    #[test]
    fn well_known_locations_insert_the_path() {
        let u = Url::parse("http://h.example:8/mcp?x=1").unwrap();
        assert_eq!(
            well_known(&u, "oauth-protected-resource").unwrap().as_str(),
            "http://h.example:8/.well-known/oauth-protected-resource/mcp"
        );
        let root = Url::parse("https://as.example").unwrap();
        assert_eq!(
            well_known(&root, "oauth-authorization-server")
                .unwrap()
                .as_str(),
            "https://as.example/.well-known/oauth-authorization-server"
        );
    }

    #[test]
    fn an_authorization_url_carries_pkce_state_and_the_resource() {
        let d = Discovered {
            resource: "https://up.example/mcp".into(),
            issuer: "https://as.example".into(),
            authorization_endpoint: "https://as.example/auth".into(),
            token_endpoint: "https://as.example/token".into(),
            scopes_supported: vec!["mcp".into()],
        };
        let client = OAuthClient {
            client_id: "warden".into(),
            client_secret: Some("s3cret".into()),
        };
        let a = Authorization::start(&d, &client, "http://127.0.0.1:9/callback", &[]).unwrap();
        let url = Url::parse(&a.url).unwrap();
        let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["resource"], "https://up.example/mcp");
        assert_eq!(q["scope"], "mcp");
        assert_eq!(q["state"], a.state);
        let challenge = URL_SAFE_NO_PAD.encode(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, a.verifier.as_bytes()).as_ref(),
        );
        assert_eq!(q["code_challenge"], challenge);
        assert!(!a.url.contains("s3cret") && !format!("{a:?}").contains(&a.verifier));
        assert!(!format!("{client:?}").contains("s3cret"));
        let other = Authorization::start(&d, &client, "http://127.0.0.1:9/callback", &[]).unwrap();
        assert_ne!(other.state, a.state);
        assert_ne!(other.verifier, a.verifier);
    }
}
