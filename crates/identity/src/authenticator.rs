//! [`Authenticator`]: request facts in, [`Principal`] or [`AuthError`] out;
//! plus what the HTTP layer sends back (RFC 9728 metadata, challenges).
//!
//! The order of checks for a token, in one place:
//! 1. credentials parsed from the headers (one credential, known scheme);
//! 2. the verified-token cache, by SHA-256 of the token (entries of an
//!    issuer whose key set lost a key since are verified again);
//! 3. on a miss: JWS parse, `typ`, `iss` → issuer (its `typ` rule; refused
//!    while it is unavailable), `alg` allowlist, key by `kid` (one bounded
//!    refresh on an unknown `kid`), signature, then the claims (`exp`,
//!    `nbf`, `iat` with leeway; `aud` present; `cnf`);
//! 4. per request: expiry again, `aud` ∋ this resource, certificate
//!    binding (RFC 8705 `cnf.x5t#S256`), DPoP binding and proof (replay
//!    check last, in the shared replay cache), required scopes.
//!
//! A refusal carries the reason code and, once the token parsed, what it
//! claimed ([`AuthFailure`]: issuer, `kid`, subject, hash of `jti`) for the
//! log and the audit trail; the client is told only `invalid_token` (or
//! `invalid_dpop_proof`) with a generic description.
//!
//! A request with neither token nor API key may be authenticated by its TLS
//! client certificate (`identity.mtls`); see [`Authenticator::authenticate`]
//! for how a certificate combines with a token.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;

use crate::apikey::{unix_now, ApiKeyIndex, ApiKeySecret, KeyStore, API_KEY_PREFIX};
use crate::cache::{TokenCache, TokenHash, VerifiedToken};
use crate::dev::DevIssuer;
use crate::dpop::{DpopVerifier, NonceIssuer, ProofContext};
use crate::egress::EgressPolicy;
use crate::error::{AuthError, AuthFailure, IdentityError};
use crate::jws::{sha256, CompactJws, JwsError, MAX_TOKEN_BYTES};
use crate::keys::{IssuerKeys, IssuerStatus};
use crate::principal::{AuthMethod, CredentialInfo, Principal, PrincipalData};
use crate::replay::{MemoryReplayCache, RedisReplayCache, ReplayCache};
use crate::settings::{ClaimMapping, DpopMode, IdentitySettings, MtlsSettings, ReplayBackend};

/// Namespace of API-key principals in [`Principal::key`].
pub const API_KEY_NAMESPACE: &str = "api-key";
/// Where RFC 9728 metadata is served; the MCP path is appended
/// (`/.well-known/oauth-protected-resource/mcp`).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
/// How often the API key store file is checked for changes.
const API_KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(2);
const MAX_CLAIM_TEXT: usize = 256;
const MAX_CLAIM_LIST: usize = 256;
/// The `error_description` of every `invalid_token` challenge: which check
/// failed is for the log and the audit trail ([`AuthFailure`]), not for the
/// caller, who could use it to probe forgeries check by check.
const INVALID_TOKEN_DESCRIPTION: &str = "the access token is invalid";
/// The `error_description` of every `invalid_dpop_proof` challenge.
const INVALID_PROOF_DESCRIPTION: &str = "the DPoP proof is invalid";

/// What the HTTP layer knows about a request, as authentication needs it.
///
/// `Debug` never prints credential values.
#[derive(Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    /// The HTTP method, as sent (`POST`).
    pub method: &'a str,
    /// The absolute request URL: Warden's public URL + path (+ query).
    pub url: &'a str,
    /// The `Authorization` header (`Bearer …` / `DPoP …`). If the header
    /// appears more than once, pass the values joined with `, `: refused.
    pub authorization: Option<&'a str>,
    /// The `DPoP` header (likewise).
    pub dpop: Option<&'a str>,
    /// The TLS client certificate (leaf, DER) that the listener verified
    /// with [`crate::TlsSettings::server_config`]:
    /// `tls_stream.get_ref().1.peer_certificates()` → first entry. Never a
    /// certificate from a header or an unverified connection.
    pub client_cert_der: Option<&'a [u8]>,
    /// An `X-API-Key` header. API keys may also come as `Bearer wdn_…`.
    pub api_key: Option<&'a str>,
}

impl std::fmt::Debug for RequestFacts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present = |v: Option<&str>| v.map(|_| "[redacted]");
        f.debug_struct("RequestFacts")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("authorization", &present(self.authorization))
            .field("dpop", &present(self.dpop))
            .field("client_cert", &self.client_cert_der.map(<[u8]>::len))
            .field("api_key", &present(self.api_key))
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

enum Credential<'a> {
    None,
    ApiKey(&'a str),
    Token(Scheme, &'a str),
}

/// The OAuth 2.1 resource server, API keys and client certificates.
///
/// Built once per configuration by [`Authenticator::start`]; shared by all
/// requests (`Arc`). Background tasks (JWKS refresh, API key store reload)
/// stop when it is dropped.
pub struct Authenticator {
    public_url: String,
    audiences: Option<Vec<String>>,
    required_scopes: Vec<String>,
    /// `identity.scopes_supported` and `required_scopes`.
    configured_scopes: Vec<String>,
    /// The configured scopes and the policy's
    /// ([`Authenticator::set_policy_scopes_with_step_up`]): what the metadata
    /// and what 401 challenges advertise.
    advertised_scopes: RwLock<AdvertisedScopes>,
    leeway: Duration,
    allow_anonymous: bool,
    issuers: Vec<Arc<IssuerKeys>>,
    cache: TokenCache,
    dpop: DpopVerifier,
    api_keys: Option<Arc<ApiKeyState>>,
    mtls: Option<MtlsSettings>,
    dev: Option<Arc<DevIssuer>>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the metadata (`all`) and 401 challenges (`challenge`) advertise.
struct AdvertisedScopes {
    all: Arc<[String]>,
    challenge: Arc<[String]>,
}

impl AdvertisedScopes {
    fn configured(scopes: &[String]) -> AdvertisedScopes {
        AdvertisedScopes {
            all: Arc::from(scopes),
            challenge: Arc::from(scopes),
        }
    }
}

/// Appends the scopes of `more` that `list` does not hold yet.
fn push_new(list: &mut Vec<String>, more: &[String]) {
    for scope in more {
        if !list.contains(scope) {
            list.push(scope.clone());
        }
    }
}

struct ApiKeyState {
    path: PathBuf,
    secret: ApiKeySecret,
    index: RwLock<Arc<ApiKeyIndex>>,
    modified: RwLock<Option<SystemTime>>,
}

impl ApiKeyState {
    fn reload(&self) -> Result<(), IdentityError> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let store = KeyStore::load(&self.path)?;
        let index = Arc::new(ApiKeyIndex::new(self.secret.clone(), &store));
        if let Ok(mut slot) = self.index.write() {
            *slot = index;
        }
        if let Ok(mut slot) = self.modified.write() {
            *slot = modified;
        }
        Ok(())
    }

    fn reload_if_changed(&self) {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let known = self.modified.read().ok().and_then(|m| *m);
        if modified != known {
            match self.reload() {
                Ok(()) => tracing::info!(store = %self.path.display(), "API key store reloaded"),
                Err(e) => {
                    tracing::warn!(error = %e, "API key store not reloaded; keeping the previous one")
                }
            }
        }
    }

    fn index(&self) -> Option<Arc<ApiKeyIndex>> {
        self.index.read().ok().map(|i| Arc::clone(&i))
    }
}

impl Drop for Authenticator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Authenticator {
    /// Load every issuer's keys (discovery, JWKS fetch through `egress`),
    /// the development key, the API key store; start the background
    /// refreshers; set up the DPoP replay cache (`identity.dpop.replay_cache`:
    /// memory, or Redis: connected lazily, so a replica starts while Redis
    /// is down and refuses DPoP proofs until it answers).
    ///
    /// Issuers are loaded concurrently, each for at most 10 s. An issuer
    /// whose metadata or keys cannot be fetched does not stop the start: it
    /// is unavailable ([`Authenticator::issuer_status`]), its tokens are
    /// refused (`issuer_unavailable`), and it is retried in the background
    /// (exponential backoff from 1 s, jittered, at most 60 s apart) until
    /// its tokens can be verified, without a restart. Fails only on
    /// configuration errors: a URL the egress policy refuses, an unusable
    /// JWKS file or development key, the API key store.
    pub async fn start(
        settings: IdentitySettings,
        egress: EgressPolicy,
    ) -> Result<Arc<Authenticator>, IdentityError> {
        let redis = match &settings.dpop.replay_cache {
            ReplayBackend::Memory => None,
            ReplayBackend::Redis(redis) => Some(Arc::new(
                RedisReplayCache::new(&redis.url.0, &redis.prefix, redis.timeout).map_err(|e| {
                    IdentityError::Invalid(format!("identity.dpop.replay_cache.redis.url: {}", e.0))
                })?,
            )),
        };
        let Some(redis) = redis else {
            let memory = Arc::new(MemoryReplayCache::new(settings.dpop.replay_cache_entries));
            return Self::start_with_replay_cache(settings, egress, memory).await;
        };
        let reachable = redis.ping().await;
        let auth = Self::start_with_replay_cache(settings, egress, redis).await?;
        if let Err(e) = reachable {
            // Logged now, once; the first failing DPoP request does not log again.
            auth.dpop
                .replay_down
                .store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(
                reason = e.0,
                "DPoP replay cache unavailable at start (Redis); every DPoP proof is refused until it answers"
            );
        }
        Ok(auth)
    }

    /// [`Authenticator::start`] with a replay cache of the caller's (another
    /// backend, tests); `identity.dpop.replay_cache` is then ignored.
    pub async fn start_with_replay_cache(
        settings: IdentitySettings,
        egress: EgressPolicy,
        replay: Arc<dyn ReplayCache>,
    ) -> Result<Arc<Authenticator>, IdentityError> {
        let dev = match &settings.dev_issuer {
            Some(dev) => Some(Arc::new(DevIssuer::from_settings(dev, &settings.data_dir)?)),
            None => None,
        };
        // Concurrently: one slow issuer does not hold up the others' start.
        let starting: Vec<_> = settings
            .issuers
            .iter()
            .map(|issuer| {
                let dev_keys = dev.as_ref().map(|d| d.public_keys());
                tokio::spawn(IssuerKeys::start(issuer.clone(), egress, dev_keys))
            })
            .collect();
        let mut issuers = Vec::with_capacity(starting.len());
        for task in starting {
            let issuer = task
                .await
                .map_err(|_| IdentityError::Invalid("an issuer's start was aborted".into()))??;
            issuers.push(issuer);
        }
        let api_keys = match &settings.api_keys {
            None => None,
            Some(keys) => {
                let secret = match &keys.secret {
                    Some(bytes) => ApiKeySecret::from_bytes(&bytes.0)?,
                    None => ApiKeySecret::load_or_create(&settings.api_key_secret_path())?,
                };
                let path = settings
                    .api_key_store_path()
                    .unwrap_or_else(|| settings.data_dir.join("api-keys.json"));
                let state = ApiKeyState {
                    index: RwLock::new(Arc::new(ApiKeyIndex::new(
                        secret.clone(),
                        &KeyStore::default(),
                    ))),
                    path,
                    secret,
                    modified: RwLock::new(None),
                };
                state.reload()?;
                Some(Arc::new(state))
            }
        };
        let nonce_secret = match &settings.dpop.nonce_secret {
            Some(secret) => secret.0.clone(),
            None => {
                let mut bytes = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut bytes)
                    .map_err(|_| IdentityError::Invalid("no randomness".into()))?;
                bytes
            }
        };
        let dpop = DpopVerifier {
            algorithms: settings.dpop.algorithms.clone(),
            max_age: settings.dpop.max_age,
            future_leeway: settings.dpop.future_leeway,
            nonces: settings
                .dpop
                .nonce
                .then(|| NonceIssuer::new(&nonce_secret, settings.dpop.nonce_lifetime)),
            replay,
            replay_down: std::sync::atomic::AtomicBool::new(false),
        };

        let mut tasks = Vec::new();
        for issuer in &issuers {
            tasks.push(tokio::spawn(Arc::clone(issuer).run_refresher()));
        }
        if let Some(state) = &api_keys {
            let state = Arc::clone(state);
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(API_KEY_RELOAD_INTERVAL).await;
                    state.reload_if_changed();
                }
            }));
        }

        Ok(Arc::new(Authenticator {
            public_url: settings.public_url,
            audiences: settings.audiences,
            required_scopes: settings.required_scopes,
            advertised_scopes: RwLock::new(AdvertisedScopes::configured(
                &settings.scopes_supported,
            )),
            configured_scopes: settings.scopes_supported,
            leeway: settings.leeway,
            allow_anonymous: settings.allow_anonymous,
            issuers,
            cache: TokenCache::new(settings.token_cache_entries),
            dpop,
            api_keys,
            mtls: settings.mtls,
            dev,
            tasks,
        }))
    }

    /// The development issuer, when configured (to mint tokens and serve
    /// its JWKS).
    pub fn dev_issuer(&self) -> Option<&DevIssuer> {
        self.dev.as_deref()
    }

    /// Every issuer's state, in configuration order (the development issuer,
    /// when configured, last): ready, or unavailable since when; the class
    /// of the last fetch error; how many keys. For a readiness endpoint and
    /// metrics. Holds no secret (issuer identifiers and names are public).
    pub fn issuer_status(&self) -> Vec<IssuerStatus> {
        self.issuers.iter().map(|i| i.status()).collect()
    }

    /// Whether every issuer's tokens can be verified now (none is
    /// unavailable): the identity part of readiness.
    pub fn issuers_ready(&self) -> bool {
        self.issuers.iter().all(|i| i.is_ready())
    }

    /// The scopes the authorization policy uses, all of them asked for up
    /// front: [`Authenticator::set_policy_scopes_with_step_up`] with `scopes`
    /// as the initial scopes and no step-up scopes.
    pub fn set_policy_scopes(&self, scopes: &[String]) -> Result<(), IdentityError> {
        self.set_policy_scopes_with_step_up(scopes, &[])
    }

    /// The scopes the authorization policy uses (the gateway computes them
    /// from `authorization.scopes`), after `identity.scopes_supported` and
    /// `identity.required_scopes` (duplicates dropped):
    ///
    /// - `initial`: what every operation of an action needs
    ///   (`authorization.scopes.actions`). Advertised in the RFC 9728
    ///   metadata (`scopes_supported`) and in the `scope` of 401
    ///   challenges, which MCP clients ask the authorization server for.
    /// - `step_up`: what only particular tools, resources or prompts need
    ///   (`authorization.scopes.tools` …); scopes already in `initial` are
    ///   ignored. Advertised in the metadata only: a client asks for them
    ///   when an operation is refused with 403 `insufficient_scope` naming
    ///   them (MCP step-up), so a token carries only what was used (least
    ///   privilege) and a client that never calls such a tool never holds
    ///   its scope.
    ///
    /// Replaces the previous policy scopes: call it at start and after
    /// every reload of the policy; empty lists leave the configured ones
    /// only.
    ///
    /// Refused, keeping the previous lists, when a scope is not an RFC 6749
    /// scope-token (printable ASCII without space, `"` or `\`): it could
    /// not be quoted in a challenge.
    pub fn set_policy_scopes_with_step_up(
        &self,
        initial: &[String],
        step_up: &[String],
    ) -> Result<(), IdentityError> {
        if let Some(bad) = initial
            .iter()
            .chain(step_up)
            .find(|s| !crate::settings::is_scope_token(s))
        {
            let shown: String = bad.chars().take(64).collect();
            return Err(IdentityError::Invalid(format!(
                "not a valid scope: {shown:?} (printable ASCII, no spaces, quotes or backslashes)"
            )));
        }
        let mut challenge = self.configured_scopes.clone();
        push_new(&mut challenge, initial);
        let mut all = challenge.clone();
        push_new(&mut all, step_up);
        let scopes = AdvertisedScopes {
            all: Arc::from(all),
            challenge: Arc::from(challenge),
        };
        match self.advertised_scopes.write() {
            Ok(mut slot) => *slot = scopes,
            Err(poisoned) => *poisoned.into_inner() = scopes,
        }
        Ok(())
    }

    /// The scopes advertised in the metadata now: `identity.scopes_supported`,
    /// `identity.required_scopes` and the policy's, initial and step-up
    /// ([`Authenticator::set_policy_scopes_with_step_up`]).
    pub fn scopes_supported(&self) -> Arc<[String]> {
        match self.advertised_scopes.read() {
            Ok(scopes) => Arc::clone(&scopes.all),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().all),
        }
    }

    /// The `scope` of 401 challenges now: `identity.scopes_supported`,
    /// `identity.required_scopes` and the policy's initial scopes, without
    /// its step-up scopes.
    pub fn challenge_scopes(&self) -> Arc<[String]> {
        match self.advertised_scopes.read() {
            Ok(scopes) => Arc::clone(&scopes.challenge),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().challenge),
        }
    }

    /// Re-read the API key store now (the gateway's SIGHUP); it is also
    /// re-read by itself within two seconds of a change.
    pub fn reload_api_keys(&self) -> Result<(), IdentityError> {
        match &self.api_keys {
            Some(state) => state.reload(),
            None => Ok(()),
        }
    }

    /// Forget every verified token (tests and benchmarks; configuration
    /// changes build a new authenticator instead).
    pub fn clear_token_cache(&self) {
        self.cache.clear();
    }

    /// Authenticate one request.
    ///
    /// With a client certificate (`RequestFacts::client_cert_der`) and
    /// `identity.mtls` configured:
    /// - no token or API key: the certificate's principal;
    /// - a token or API key as well: the token (or key) is the identity,
    ///   the certificate only authenticated the connection; except that a
    ///   token bound to a certificate (RFC 8705 `cnf.x5t#S256`) is refused
    ///   unless this very certificate came with it;
    /// - `identity.mtls.required` and no certificate: refused
    ///   ([`AuthError::ClientCertificateRequired`]) whatever else came.
    ///
    /// The error alone; [`Authenticator::authenticate_detailed`] returns
    /// what the refused token claimed as well, for the audit record.
    pub async fn authenticate(&self, req: &RequestFacts<'_>) -> Result<Principal, AuthError> {
        self.authenticate_detailed(req)
            .await
            .map_err(AuthFailure::into_error)
    }

    /// [`Authenticator::authenticate`], with the facts of a refusal: the
    /// reason code and, when the token parsed, its claimed issuer, `kid`,
    /// subject and a hash of its `jti` ([`AuthFailure`]). Answer the client
    /// with `challenge(&failure.error, mcp_path)`; put the facts in the
    /// audit record and the log, never in the response.
    pub async fn authenticate_detailed(
        &self,
        req: &RequestFacts<'_>,
    ) -> Result<Principal, AuthFailure> {
        let result = self.authenticate_inner(req).await;
        if let Err(f) = &result {
            tracing::debug!(
                reason = f.reason(),
                issuer = f.issuer.as_deref(),
                kid = f.kid.as_deref(),
                subject = f.subject.as_deref(),
                jti_hash = f.jti_hash.as_deref(),
                "authentication refused"
            );
        }
        result
    }

    async fn authenticate_inner(&self, req: &RequestFacts<'_>) -> Result<Principal, AuthFailure> {
        if self.mtls.as_ref().is_some_and(|m| m.required) && req.client_cert_der.is_none() {
            return Err(AuthError::ClientCertificateRequired.into());
        }
        match parse_credentials(req)? {
            Credential::None => match (req.client_cert_der, &self.mtls) {
                (Some(der), Some(_)) => Ok(self.authenticate_certificate(der)?),
                _ if self.allow_anonymous => Ok(Principal::anonymous()),
                _ => Err(AuthError::Missing.into()),
            },
            Credential::ApiKey(key) => Ok(self.api_key(key)?),
            Credential::Token(scheme, token) => self.token(scheme, token, req).await,
        }
    }

    /// The principal of a TLS client certificate (the leaf, DER), which
    /// the listener has already verified against `identity.mtls.client_ca`
    /// with [`crate::TlsSettings::server_config`]. The name comes from the
    /// configured field (`principal_from`), exactly one of it, printable;
    /// the principal's namespace is `mtls:<hash of the issuing CA's
    /// name>`. Refused when `identity.mtls` is not configured.
    pub fn authenticate_certificate(&self, end_entity_der: &[u8]) -> Result<Principal, AuthError> {
        let mtls = self
            .mtls
            .as_ref()
            .ok_or(AuthError::Invalid("mtls_disabled"))?;
        crate::mtls::principal_from_certificate(end_entity_der, mtls)
    }

    /// Authenticate a bare access token for `resource_url` (stdio mode: a
    /// token from the environment, validated like any other; DPoP-bound
    /// tokens cannot be used there).
    pub async fn authenticate_token(
        &self,
        token: &str,
        resource_url: &str,
    ) -> Result<Principal, AuthError> {
        if token.starts_with(API_KEY_PREFIX) {
            return self.api_key(token);
        }
        let req = RequestFacts {
            method: "POST",
            url: resource_url,
            ..RequestFacts::default()
        };
        self.token(Scheme::Bearer, token, &req)
            .await
            .map_err(AuthFailure::into_error)
    }

    fn api_key(&self, key: &str) -> Result<Principal, AuthError> {
        let state = self
            .api_keys
            .as_ref()
            .ok_or(AuthError::Invalid("api_key"))?;
        let index = state.index().ok_or(AuthError::Unavailable)?;
        let stored = index.check(key).ok_or(AuthError::Invalid("api_key"))?;
        let data = PrincipalData {
            subject: stored.principal.clone(),
            tenant: None,
            roles: stored.roles.clone(),
            groups: Vec::new(),
            scopes: Vec::new(),
            client_id: None,
            agent_id: None,
            method: AuthMethod::ApiKey,
        };
        let credential = CredentialInfo {
            issuer: API_KEY_NAMESPACE.to_owned(),
            token_id: Some(stored.id.clone()),
            expires_at: None,
            key_thumbprint: None,
        };
        Ok(Principal::authenticated(
            data,
            API_KEY_NAMESPACE,
            credential,
        ))
    }

    async fn token(
        &self,
        scheme: Scheme,
        token: &str,
        req: &RequestFacts<'_>,
    ) -> Result<Principal, AuthFailure> {
        let hash: TokenHash = sha256(token.as_bytes());
        let now = unix_now();
        let verified = match self.cache.get(&hash) {
            Some(hit) if hit.generation == self.issuers[hit.issuer].generation() => hit,
            _ => {
                let fresh = Arc::new(self.verify_token(token, now).await?);
                self.cache.insert(hash, Arc::clone(&fresh), now);
                fresh
            }
        };
        let refuse = |e: AuthError| verified.facts.failure(e);
        if now > verified.usable_until {
            self.cache.remove(&hash);
            return Err(refuse(AuthError::Expired));
        }
        if !self.audience_accepted(&verified.audiences, req.url) {
            return Err(refuse(AuthError::Invalid("audience")));
        }
        // RFC 8705 §3: a certificate-bound token only over TLS with that
        // certificate.
        if let Some(x5t) = verified.x5t.as_deref() {
            let der = req
                .client_cert_der
                .ok_or_else(|| refuse(AuthError::Invalid("certificate_binding")))?;
            if crate::mtls::certificate_thumbprint(der) != x5t {
                return Err(refuse(AuthError::Invalid("certificate_binding")));
            }
        }
        let mode = self.issuers[verified.issuer].settings.dpop;
        match (scheme, verified.jkt.as_deref()) {
            (Scheme::Bearer, Some(_)) => return Err(refuse(AuthError::DpopRequired)),
            (Scheme::Bearer, None) if mode == DpopMode::Required => {
                return Err(refuse(AuthError::DpopRequired))
            }
            (Scheme::Bearer, None) => {}
            (Scheme::Dpop, None) => return Err(refuse(AuthError::Invalid("token_not_bound"))),
            (Scheme::Dpop, Some(jkt)) => {
                let proof = req
                    .dpop
                    .ok_or_else(|| refuse(AuthError::DpopInvalid("missing")))?;
                self.dpop
                    .verify(&ProofContext {
                        proof,
                        method: req.method,
                        url: req.url,
                        token_hash: &hash,
                        jkt,
                        now,
                        clock: unix_clock(),
                    })
                    .await
                    .map_err(refuse)?;
            }
        }
        let scopes = &verified.principal.data().scopes;
        if self.required_scopes.iter().any(|s| !scopes.contains(s)) {
            return Err(refuse(AuthError::InsufficientScope(
                self.required_scopes.clone(),
            )));
        }
        Ok(verified.principal.clone())
    }

    fn audience_accepted(&self, audiences: &[String], url: &str) -> bool {
        match &self.audiences {
            Some(accepted) => audiences.iter().any(|a| accepted.contains(a)),
            None => {
                let resource = url.split(['?', '#']).next().unwrap_or(url);
                audiences.iter().any(|a| a == resource)
            }
        }
    }

    /// Signature and request-independent claims. Once the token parses,
    /// a refusal carries what it claimed ([`TokenFacts`]).
    async fn verify_token(&self, token: &str, now: u64) -> Result<VerifiedToken, AuthFailure> {
        let jws = CompactJws::parse(token, MAX_TOKEN_BYTES).map_err(|e| match e {
            JwsError::Malformed => AuthError::Invalid("malformed"),
            other => AuthError::Invalid(other.code()),
        })?;
        let issuer = jws
            .claims
            .get("iss")
            .and_then(Value::as_str)
            .and_then(|iss| self.issuers.iter().position(|i| i.settings.issuer == iss));
        let subject_claim =
            issuer.map_or("sub", |i| self.issuers[i].settings.claims.subject.as_str());
        let facts = TokenFacts::new(jws.kid.as_deref(), &jws.claims, subject_claim);
        match self.verify_jws(&jws, issuer, now).await {
            Ok(mut verified) => {
                verified.facts = facts;
                Ok(verified)
            }
            Err(e) => Err(facts.failure(e)),
        }
    }

    async fn verify_jws(
        &self,
        jws: &CompactJws<'_>,
        issuer: Option<usize>,
        now: u64,
    ) -> Result<VerifiedToken, AuthError> {
        // RFC 9068 §2.1 says `at+jwt`; many issuers still write `JWT`.
        let at_jwt = jws.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        let jwt = jws
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("JWT"));
        if !at_jwt && !jwt {
            return Err(AuthError::Invalid("typ"));
        }
        let index = issuer.ok_or(AuthError::Invalid("issuer"))?;
        let issuer = &self.issuers[index];
        if issuer.settings.require_at_jwt_typ && !at_jwt {
            return Err(AuthError::Invalid("typ"));
        }
        if !issuer.is_ready() {
            return Err(AuthError::Invalid("issuer_unavailable"));
        }
        if !issuer.settings.algorithms.contains(&jws.alg) {
            return Err(AuthError::Invalid("algorithm"));
        }
        let generation = issuer.generation();
        let kid = jws.kid.as_deref();
        let mut keys = issuer.candidates(kid, jws.alg);
        if keys.is_empty() && kid.is_some() && issuer.refresh_for_unknown_kid().await {
            keys = issuer.candidates(kid, jws.alg);
        }
        if keys.is_empty() {
            return Err(AuthError::Invalid("unknown_kid"));
        }
        if !keys.iter().any(|k| jws.verify(k)) {
            return Err(AuthError::Invalid("signature"));
        }
        self.check_claims(&jws.claims, index, generation, now)
    }

    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        issuer_index: usize,
        generation: u64,
        now: u64,
    ) -> Result<VerifiedToken, AuthError> {
        let issuer = &self.issuers[issuer_index].settings;
        let leeway = self.leeway.as_secs();
        let time = |name: &'static str| -> Result<Option<u64>, AuthError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_f64()
                    .filter(|t| t.is_finite() && *t >= 0.0)
                    .map(|t| Some(t as u64))
                    .ok_or(AuthError::Invalid(name)),
            }
        };
        let exp = time("exp")?.ok_or(AuthError::Invalid("exp"))?;
        let usable_until = exp.saturating_add(leeway);
        if now > usable_until {
            return Err(AuthError::Expired);
        }
        if time("nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(AuthError::Invalid("nbf"));
        }
        if time("iat")?.is_some_and(|iat| iat > now.saturating_add(leeway)) {
            return Err(AuthError::Invalid("iat"));
        }
        let audiences: Box<[String]> = match claims.get("aud") {
            Some(Value::String(a)) => Box::new([a.clone()]),
            Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_CLAIM_LIST => list
                .iter()
                .map(|a| a.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or(AuthError::Invalid("audience"))?,
            _ => return Err(AuthError::Invalid("audience")),
        };
        let (jkt, x5t) = match claims.get("cnf") {
            None => (None, None),
            Some(Value::Object(cnf)) => {
                let member = |name: &str| match cnf.get(name) {
                    None => Ok(None),
                    Some(Value::String(v)) if !v.is_empty() => Ok(Some(v.clone())),
                    Some(_) => Err(AuthError::Invalid("cnf")),
                };
                let (jkt, x5t) = (member("jkt")?, member("x5t#S256")?);
                if jkt.is_none() && x5t.is_none() {
                    // Bound to something we cannot check: refused.
                    return Err(AuthError::Invalid("cnf"));
                }
                (jkt, x5t)
            }
            Some(_) => return Err(AuthError::Invalid("cnf")),
        };
        if jkt.is_some() && issuer.dpop == DpopMode::Disabled {
            return Err(AuthError::Invalid("dpop_disabled"));
        }
        let data = map_claims(claims, &issuer.claims, jkt.is_some())?;
        let credential = CredentialInfo {
            issuer: issuer.issuer.clone(),
            token_id: claims.get("jti").and_then(Value::as_str).map(str::to_owned),
            expires_at: Some(exp),
            key_thumbprint: jkt.clone(),
        };
        Ok(VerifiedToken {
            principal: Principal::authenticated(data, &issuer.name, credential),
            issuer: issuer_index,
            generation,
            usable_until,
            audiences,
            jkt,
            x5t,
            facts: TokenFacts::default(),
        })
    }

    // ----- what the HTTP layer sends back ------------------------------------

    /// The URL of the RFC 9728 metadata for an MCP path
    /// (`https://w.example.com/.well-known/oauth-protected-resource/mcp`).
    pub fn metadata_url(&self, mcp_path: &str) -> String {
        format!("{}{METADATA_PATH}{mcp_path}", self.public_url)
    }

    /// The resource URL of an MCP path.
    pub fn resource_url(&self, mcp_path: &str) -> String {
        format!("{}{mcp_path}", self.public_url)
    }

    /// The RFC 9728 protected-resource metadata document for `mcp_path`,
    /// to serve at `METADATA_PATH + mcp_path` (and at `METADATA_PATH` for
    /// the default path).
    pub fn resource_metadata(&self, mcp_path: &str) -> Value {
        let mut doc = Map::new();
        doc.insert("resource".into(), self.resource_url(mcp_path).into());
        doc.insert(
            "authorization_servers".into(),
            self.issuers
                .iter()
                .map(|i| Value::String(i.settings.issuer.clone()))
                .collect(),
        );
        doc.insert("bearer_methods_supported".into(), json!(["header"]));
        let scopes = self.scopes_supported();
        if !scopes.is_empty() {
            doc.insert("scopes_supported".into(), json!(&scopes[..]));
        }
        if self.dpop_accepted() {
            doc.insert(
                "dpop_signing_alg_values_supported".into(),
                self.dpop
                    .algorithms
                    .iter()
                    .map(|a| Value::from(a.name()))
                    .collect(),
            );
        }
        let all_require = !self.issuers.is_empty()
            && self
                .issuers
                .iter()
                .all(|i| i.settings.dpop == DpopMode::Required);
        doc.insert(
            "dpop_bound_access_tokens_required".into(),
            all_require.into(),
        );
        doc.insert("resource_name".into(), "Warden".into());
        Value::Object(doc)
    }

    fn dpop_accepted(&self) -> bool {
        self.issuers
            .iter()
            .any(|i| i.settings.dpop != DpopMode::Disabled)
    }

    /// A fresh server nonce to send as `DPoP-Nonce` on successful
    /// responses, when nonces are on.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.dpop.nonces.as_ref().map(|n| n.current(unix_now()))
    }

    /// The HTTP status and headers for a refusal: 401 with `WWW-Authenticate`
    /// challenges (`Bearer`, and `DPoP` where DPoP is accepted) pointing at
    /// the metadata and naming the initial scopes
    /// ([`Authenticator::challenge_scopes`]: not the policy's step-up
    /// scopes) as `scope`, which MCP clients ask the authorization server
    /// for; 403 `insufficient_scope` with the scopes needed, which a client
    /// steps up to; 503 (`Retry-After`) when a dependency is down.
    ///
    /// Descriptions are fixed and generic: every refused token is
    /// `invalid_token`, "the access token is invalid", whichever check
    /// failed (the reason is [`AuthError::code`], for the log and the audit
    /// trail); every refused proof is `invalid_dpop_proof`, "the DPoP proof
    /// is invalid".
    pub fn challenge(&self, err: &AuthError, mcp_path: &str) -> (u16, Vec<(String, String)>) {
        let metadata = self.metadata_url(mcp_path);
        let advertised = self.challenge_scopes().join(" ");
        let (status, error, description, scope): (u16, Option<&str>, &str, String) = match err {
            AuthError::Missing => (401, None, "", advertised),
            AuthError::Malformed => (
                401,
                Some("invalid_request"),
                "malformed credentials",
                advertised,
            ),
            AuthError::Invalid(_) | AuthError::Expired | AuthError::DpopRequired => (
                401,
                Some("invalid_token"),
                INVALID_TOKEN_DESCRIPTION,
                advertised,
            ),
            AuthError::InsufficientScope(scopes) => (
                403,
                Some("insufficient_scope"),
                "insufficient scope",
                scopes.join(" "),
            ),
            AuthError::DpopInvalid(_) => (
                401,
                Some("invalid_dpop_proof"),
                INVALID_PROOF_DESCRIPTION,
                advertised,
            ),
            AuthError::UseDpopNonce(_) => (
                401,
                Some("use_dpop_nonce"),
                "DPoP nonce required",
                advertised,
            ),
            AuthError::Unavailable | AuthError::ReplayCacheUnavailable => {
                return (503, vec![("Retry-After".to_owned(), "1".to_owned())]);
            }
            AuthError::ClientCertificateRequired => (
                401,
                Some("invalid_request"),
                "client certificate required",
                advertised,
            ),
        };
        let dpop_only = matches!(err, AuthError::DpopInvalid(_) | AuthError::UseDpopNonce(_));
        let mut headers = Vec::new();

        let mut bearer = format!("Bearer resource_metadata=\"{metadata}\"");
        if !scope.is_empty() {
            bearer.push_str(&format!(", scope=\"{scope}\""));
        }
        if let (Some(error), false) = (error, dpop_only) {
            bearer.push_str(&format!(
                ", error=\"{error}\", error_description=\"{description}\""
            ));
        }
        headers.push(("WWW-Authenticate".to_owned(), bearer));

        if self.dpop_accepted() {
            let algs: Vec<&str> = self.dpop.algorithms.iter().map(|a| a.name()).collect();
            let mut dpop = format!(
                "DPoP algs=\"{}\", resource_metadata=\"{metadata}\"",
                algs.join(" ")
            );
            if !scope.is_empty() {
                dpop.push_str(&format!(", scope=\"{scope}\""));
            }
            if let Some(error) = error {
                dpop.push_str(&format!(
                    ", error=\"{error}\", error_description=\"{description}\""
                ));
            }
            headers.push(("WWW-Authenticate".to_owned(), dpop));
        }
        if let AuthError::UseDpopNonce(nonce) = err {
            headers.push(("DPoP-Nonce".to_owned(), nonce.clone()));
        }
        (status, headers)
    }
}

fn parse_credentials<'a>(req: &RequestFacts<'a>) -> Result<Credential<'a>, AuthError> {
    match (req.authorization, req.api_key) {
        (Some(_), Some(_)) => Err(AuthError::Malformed),
        (None, Some(key)) => Ok(Credential::ApiKey(key.trim())),
        (None, None) => Ok(Credential::None),
        (Some(header), None) => {
            let (scheme, rest) = header.split_once(' ').ok_or(AuthError::Malformed)?;
            let token = rest.trim_start_matches(' ');
            let scheme = if scheme.eq_ignore_ascii_case("bearer") {
                Scheme::Bearer
            } else if scheme.eq_ignore_ascii_case("dpop") {
                Scheme::Dpop
            } else {
                return Err(AuthError::Malformed);
            };
            // RFC 6750 b64token: one token, no spaces or commas (a repeated
            // header joined with ", " is refused here).
            let b64token = !token.is_empty()
                && token.trim_end_matches('=').bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
                });
            if !b64token {
                return Err(AuthError::Malformed);
            }
            if token.starts_with(API_KEY_PREFIX) {
                return match scheme {
                    Scheme::Bearer => Ok(Credential::ApiKey(token)),
                    Scheme::Dpop => Err(AuthError::Malformed),
                };
            }
            Ok(Credential::Token(scheme, token))
        }
    }
}

/// What a token claimed about itself, kept for [`AuthFailure`]: the `iss`
/// claim, the `kid` header, the claimed subject (truncated, control
/// characters replaced) and a hash of the `jti`. Computed once per
/// verification and cached with the verified token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TokenFacts {
    issuer: Option<String>,
    kid: Option<String>,
    subject: Option<String>,
    jti_hash: Option<String>,
}

impl TokenFacts {
    fn new(kid: Option<&str>, claims: &Map<String, Value>, subject_claim: &str) -> Self {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(fact_text);
        TokenFacts {
            issuer: text(claims.get("iss")),
            kid: kid.map(fact_text),
            subject: text(claim(claims, subject_claim)),
            // The audit trail's format (`warden_audit::TokenFacts::hash_jti`),
            // so a refused token joins the records of its accepted uses.
            jti_hash: claims.get("jti").and_then(Value::as_str).map(|jti| {
                let hex: String = sha256(jti.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!("sha256:{hex}")
            }),
        }
    }

    fn failure(&self, error: AuthError) -> AuthFailure {
        let mut failure = AuthFailure::from(error);
        failure.issuer.clone_from(&self.issuer);
        failure.kid.clone_from(&self.kid);
        failure.subject.clone_from(&self.subject);
        failure.jti_hash.clone_from(&self.jti_hash);
        failure
    }
}

/// Peer text made fit for a log line and an audit record: at most
/// [`AuthFailure::MAX_FACT_CHARS`] characters, control characters replaced.
fn fact_text(text: &str) -> String {
    text.chars()
        .take(AuthFailure::MAX_FACT_CHARS)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Now, in Unix seconds with the fraction: DPoP proof ages are compared
/// with their limit exactly.
fn unix_clock() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A claim by name, or by dotted path into nested objects.
fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

fn claim_text(
    claims: &Map<String, Value>,
    path: Option<&str>,
) -> Result<Option<String>, AuthError> {
    let Some(path) = path else {
        return Ok(None);
    };
    match claim(claims, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= MAX_CLAIM_TEXT && !s.contains(char::is_control) =>
        {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(AuthError::Invalid("claims")),
    }
}

/// A list claim: an array of strings, or one space-separated string.
fn claim_list(claims: &Map<String, Value>, path: Option<&str>) -> Result<Vec<String>, AuthError> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let items: Vec<String> = match claim(claims, path) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or(AuthError::Invalid("claims"))?,
        Some(_) => return Err(AuthError::Invalid("claims")),
    };
    if items.len() > MAX_CLAIM_LIST
        || items
            .iter()
            .any(|i| i.is_empty() || i.len() > MAX_CLAIM_TEXT || i.contains(char::is_control))
    {
        return Err(AuthError::Invalid("claims"));
    }
    Ok(items)
}

fn map_claims(
    claims: &Map<String, Value>,
    mapping: &ClaimMapping,
    bound: bool,
) -> Result<PrincipalData, AuthError> {
    let subject =
        claim_text(claims, Some(&mapping.subject))?.ok_or(AuthError::Invalid("subject"))?;
    let scopes = if claims.contains_key("scope") {
        claim_list(claims, Some("scope"))?
    } else {
        claim_list(claims, Some("scp"))?
    };
    let client_id = match claim_text(claims, mapping.client_id.as_deref())? {
        Some(id) => Some(id),
        None => claim_text(claims, Some("azp"))?,
    };
    Ok(PrincipalData {
        subject,
        tenant: claim_text(claims, mapping.tenant.as_deref())?,
        roles: claim_list(claims, mapping.roles.as_deref())?,
        groups: claim_list(claims, mapping.groups.as_deref())?,
        scopes,
        client_id,
        agent_id: claim_text(claims, mapping.agent_id.as_deref())?,
        method: if bound {
            AuthMethod::Dpop
        } else {
            AuthMethod::Bearer
        },
    })
}

#[cfg(test)]
#[path = "authenticator_tests.rs"]
mod tests;
