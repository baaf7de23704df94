//! Identity: who is calling. Every request is resolved to a [`Principal`]
//! before any other stage runs; sessions and upstream isolation are keyed by
//! it.
//!
//! Warden is an OAuth 2.1 resource server (RFC 9068 JWT access tokens,
//! RFC 8707 audiences, RFC 9728 metadata, RFC 9449 DPoP), and also accepts
//! API keys for service principals and TLS client certificates.
//!
//! # The seam with the gateway
//!
//! ```text
//! warden.yaml `identity:` ──serde──► RawIdentity ──resolve(base_dir)──► IdentitySettings
//! IdentitySettings + EgressPolicy ──Authenticator::start──► Arc<Authenticator>
//! `tls:` ──serde──► RawTls ──resolve(base_dir, "tls", Some(&identity))──► TlsSettings
//! TlsSettings ──server_config()──► Arc<rustls::ServerConfig> (the listener's acceptor)
//! policy's scopes ──set_policy_scopes_with_step_up(initial, step_up)──► metadata: both; 401 `scope`: initial
//! per request: RequestFacts (+ the verified client certificate)
//!              ──authenticate_detailed──► Principal | AuthFailure (AuthError + what the token claimed)
//!              AuthError ──challenge(err, mcp_path)──► (401|403|503, WWW-Authenticate…, DPoP-Nonce)
//! GET /.well-known/oauth-protected-resource{mcp_path} ──resource_metadata(mcp_path)──► JSON
//! readiness: issuers_ready(), issuer_status() ──► [IssuerStatus]
//! ```
//!
//! # Invariants
//!
//! - Keys come only from configured or discovered JWKS (fetched through the
//!   [`EgressPolicy`]), a configured JWKS file, or the development key;
//!   never from a token (`jku`, `x5u`, `x5c`, `jwk` are ignored).
//! - `none` and HMAC algorithms cannot be configured or accepted.
//! - No fetch happens on the request path except the bounded, rate-limited
//!   refresh when a token names an unknown `kid`.
//! - An issuer that cannot be reached does not stop the start: its tokens
//!   are refused until its keys can be fetched (retried in the background).
//! - A token, API key or proof never appears in an error, a `Debug` output
//!   or a log line; errors sent to clients carry fixed texts and reason
//!   codes only.
//! - A DPoP-bound token is never accepted without its proof.
//! - No `unwrap` on anything a peer sends; `unsafe` is forbidden.
#![forbid(unsafe_code)]

mod apikey;
mod authenticator;
mod cache;
mod dev;
mod dpop;
mod egress;
mod error;
mod jws;
mod keys;
mod mtls;
mod principal;
mod replay;
mod settings;
#[cfg(test)]
mod test_certs;
mod tls;

pub use apikey::{create_api_key, ApiKeySecret, KeyStore, StoredKey, API_KEY_PREFIX};
pub use authenticator::{Authenticator, RequestFacts, API_KEY_NAMESPACE, METADATA_PATH};
pub use dev::{DevAlgorithm, DevIssuer, MintRequest};
pub use egress::EgressPolicy;
pub use error::{AuthError, AuthFailure, IdentityError, IssuerErrorClass};
pub use jws::SigningAlgorithm;
pub use keys::{IssuerState, IssuerStatus};
pub use mtls::MTLS_NAMESPACE;
pub use principal::{AuthMethod, CredentialInfo, Principal, PrincipalData};
pub use replay::{MemoryReplayCache, RedisReplayCache, ReplayCache, ReplayCacheError};
pub use settings::{
    ApiKeySettings, CertField, DevIssuerSettings, DpopMode, IdentitySettings, IssuerSettings,
    MtlsSettings, RawApiKeys, RawClaims, RawDevIssuer, RawDpop, RawIdentity, RawIssuer, RawMtls,
    RawMtlsRoles, RawRedis, RawReplayCache,
};
pub use tls::{RawTls, TlsSettings};

/// An HTTP client behind the egress guard (T10) for URLs a peer chose (an
/// upstream's OAuth metadata and token endpoints): the guarded resolver, no
/// redirects, no proxy, bounded time. [`EgressClient::check`] each URL
/// before use: IP literals never reach the resolver.
#[derive(Clone)]
pub struct EgressClient(egress::GuardedFetcher);

impl EgressClient {
    pub fn new(policy: EgressPolicy, timeout: std::time::Duration) -> Result<Self, IdentityError> {
        egress::GuardedFetcher::new(policy, timeout).map(EgressClient)
    }

    #[must_use]
    pub fn http(&self) -> reqwest::Client {
        self.0.client.clone()
    }

    pub fn check(&self, url: &url::Url) -> Result<(), String> {
        self.0.check_url(url).map_err(|e| e.to_string())
    }
}

impl IdentitySettings {
    /// The API key secret these settings name: the configured one, or the
    /// one generated once in the data directory. For `warden keys create`.
    pub fn api_key_secret(&self) -> Result<ApiKeySecret, IdentityError> {
        match self.api_keys.as_ref().and_then(|k| k.secret.as_ref()) {
            Some(bytes) => ApiKeySecret::from_bytes(&bytes.0),
            None => ApiKeySecret::load_or_create(&self.api_key_secret_path()),
        }
    }
}
