//! Token exchange (RFC 8693): the caller's access token (the subject
//! token) is exchanged at its issuer's token endpoint, Warden
//! authenticating as a confidential client (the actor), for a token whose
//! audience is the upstream and whose scope is the call's. The result is
//! cached per (principal, upstream, audience, scope) until shortly before
//! it expires, and never handed to another principal: the principal is
//! part of every key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

use crate::error::CredentialError;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// A cached token is exchanged again this long before it expires (or at
/// half its life, if that is sooner).
const RENEW_BEFORE: Duration = Duration::from_secs(30);
/// Most tokens kept; beyond, expired ones go first, then everything.
const MAX_CACHED: usize = 10_000;
/// Largest token endpoint answer read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The caller's access token, as presented to Warden. `Debug` never
/// prints it.
#[derive(Clone)]
pub struct SubjectToken(pub Arc<str>);

impl SubjectToken {
    /// The token's `jti`, read without verifying: to check that this is
    /// the token the caller was authenticated by.
    #[must_use]
    pub fn token_id(&self) -> Option<String> {
        jwt_id(&self.0)
    }
}

impl std::fmt::Debug for SubjectToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubjectToken(<redacted>)")
    }
}

/// Where and as whom Warden exchanges (one upstream's settings).
#[derive(Clone)]
pub struct ExchangeClient {
    pub token_endpoint: String,
    pub client_id: String,
    pub client_secret: String,
}

/// One exchange to make (or to find in the cache).
pub struct ExchangeRequest<'a> {
    /// The principal's key: part of the cache key.
    pub principal: &'a str,
    /// The configured server name: part of the cache key.
    pub server: &'a str,
    pub subject_token: &'a SubjectToken,
    pub audience: &'a str,
    pub scopes: &'a [String],
    pub client: &'a ExchangeClient,
}

/// A token for the upstream. `Debug` never prints it.
#[derive(Clone)]
pub struct Obtained {
    pub token: Arc<str>,
    /// The token's `jti` when it is a JWT that names one, else a digest
    /// of the token: what the audit record hashes.
    pub token_id: Arc<str>,
    pub expires_at: Instant,
    /// Served from the cache (no request to the token endpoint).
    pub cached: bool,
}

impl std::fmt::Debug for Obtained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Obtained")
            .field("cached", &self.cached)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    principal: String,
    server: String,
    audience: String,
    scope: String,
}

struct Cached {
    obtained: Obtained,
    renew_at: Instant,
}

/// The exchange client and its cache.
pub struct Exchanger {
    http: reqwest::Client,
    cache: Mutex<HashMap<Key, Cached>>,
}

impl std::fmt::Debug for Exchanger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchanger").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: Option<String>,
    expires_in: Option<u64>,
}

impl Exchanger {
    pub fn new() -> Result<Exchanger, CredentialError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| CredentialError::Exchange("no HTTP client".into()))?;
        Ok(Exchanger {
            http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Cached>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A still-valid token of `principal` for `server`, if one is cached
    /// (a connection's own requests use it).
    #[must_use]
    pub fn latest(&self, principal: &str, server: &str) -> Option<Arc<str>> {
        let now = Instant::now();
        self.cache()
            .iter()
            .filter(|(k, c)| {
                k.principal == principal && k.server == server && c.obtained.expires_at > now
            })
            .max_by_key(|(_, c)| c.obtained.expires_at)
            .map(|(_, c)| c.obtained.token.clone())
    }

    /// The upstream token for `req`: cached, or exchanged now.
    pub async fn token(&self, req: &ExchangeRequest<'_>) -> Result<Obtained, CredentialError> {
        let key = Key {
            principal: req.principal.to_owned(),
            server: req.server.to_owned(),
            audience: req.audience.to_owned(),
            scope: req.scopes.join(" "),
        };
        if let Some(c) = self.cache().get(&key) {
            if Instant::now() < c.renew_at {
                let mut hit = c.obtained.clone();
                hit.cached = true;
                return Ok(hit);
            }
        }
        let obtained = self.exchange(req, &key.scope).await?;
        let life = obtained
            .expires_at
            .saturating_duration_since(Instant::now());
        let renew_at = obtained.expires_at - RENEW_BEFORE.min(life / 2);
        let mut cache = self.cache();
        if cache.len() >= MAX_CACHED {
            let now = Instant::now();
            cache.retain(|_, c| c.obtained.expires_at > now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(
            key,
            Cached {
                obtained: obtained.clone(),
                renew_at,
            },
        );
        Ok(obtained)
    }

    async fn exchange(
        &self,
        req: &ExchangeRequest<'_>,
        scope: &str,
    ) -> Result<Obtained, CredentialError> {
        let mut form = vec![
            ("grant_type", GRANT_TYPE),
            ("subject_token", &*req.subject_token.0),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
            ("resource", req.audience),
            ("audience", req.audience),
            ("client_id", &req.client.client_id),
            ("client_secret", &req.client.client_secret),
        ];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&form)
            .finish();
        let started = Instant::now();
        let resp = self
            .http
            .post(&req.client.token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                CredentialError::Exchange(if e.is_timeout() {
                    "the token endpoint did not answer in time".into()
                } else {
                    "the token endpoint could not be reached".into()
                })
            })?;
        let status = resp.status();
        let body = read_capped(resp).await?;
        if !status.is_success() {
            // The OAuth error code only: never the description, which a
            // server may fill with what it was sent.
            let code = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(|c| oauth_error_code(c).to_owned()))
                .unwrap_or_else(|| "unknown".to_owned());
            return Err(CredentialError::Exchange(format!(
                "the token endpoint refused the exchange (HTTP {}, {code})",
                status.as_u16()
            )));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            CredentialError::Exchange("the token endpoint's answer is not a token response".into())
        })?;
        if parsed
            .token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer") && !t.eq_ignore_ascii_case("n_a"))
        {
            return Err(CredentialError::Exchange(
                "the exchanged token is not a bearer token".into(),
            ));
        }
        if parsed.access_token.is_empty()
            || parsed
                .access_token
                .bytes()
                .any(|b| b.is_ascii_control() || b == b' ')
        {
            return Err(CredentialError::Exchange(
                "the exchanged token is not usable in a header".into(),
            ));
        }
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).min(24 * 3600));
        let token_id = jwt_id(&parsed.access_token).unwrap_or_else(|| {
            let digest = aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                parsed.access_token.as_bytes(),
            );
            URL_SAFE_NO_PAD.encode(digest.as_ref())
        });
        Ok(Obtained {
            token: parsed.access_token.into(),
            token_id: token_id.into(),
            expires_at: started + lifetime,
            cached: false,
        })
    }
}

async fn read_capped(resp: reqwest::Response) -> Result<Vec<u8>, CredentialError> {
    read_capped_as(resp, MAX_RESPONSE_BYTES, "the token endpoint's answer")
        .await
        .map_err(|e| match e {
            CredentialError::OAuth(m) => CredentialError::Exchange(m),
            other => other,
        })
}

/// The body, at most `max` bytes (`what`: for the error).
pub(crate) async fn read_capped_as(
    mut resp: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, CredentialError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| CredentialError::OAuth(format!("{what} broke off")))?
    {
        if body.len() + chunk.len() > max {
            return Err(CredentialError::OAuth(format!("{what} is too large")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// RFC 6749 error codes are `[\x20-\x21\x23-\x5B\x5D-\x7E]+`; anything
/// else is not echoed.
pub(crate) fn oauth_error_code(code: &str) -> &str {
    if !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        code
    } else {
        "unknown"
    }
}

/// The `jti` of a JWT, read without verifying (the upstream verifies).
pub(crate) fn jwt_id(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims["jti"].as_str().map(str::to_owned)
}
