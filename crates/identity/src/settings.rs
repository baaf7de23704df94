//! The `identity:` section of `warden.yaml`: [`RawIdentity`] as written
//! (serde, unknown keys refused), resolved into validated
//! [`IdentitySettings`]. Every problem is collected with its path
//! (`identity.issuers[0].jwks_uri`), so one `warden check` lists them all.
//!
//! ```yaml
//! identity:
//!   public_url: https://warden.example.com     # resource = public_url + MCP path
//!   issuers:
//!     - issuer: https://idp.example.com/realms/corp
//!       jwks_uri: https://idp.example.com/realms/corp/certs   # or omit: discovery
//!       algorithms: [RS256, ES256]
//!       dpop: allowed                                          # disabled | allowed | required
//!       claims: { roles: realm_access.roles, tenant: tid }
//!   required_scopes: [mcp]
//!   api_keys: { secret: env:WARDEN_API_KEY_SECRET }
//! ```
//!
//! The operator reference is the table in this crate's `README.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use serde::Deserialize;
use url::Url;

use crate::jws::SigningAlgorithm;

// ----- the file as written --------------------------------------------------

/// The `identity:` section as written. Every key is optional; durations are
/// humantime strings (`30s`, `5m`), counts are integers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// Warden's public base URL (`https://warden.example.com`). Required.
    pub public_url: Option<String>,
    /// Accepted token audiences (exact strings). Default: the resource URL
    /// of the request (`public_url` + MCP path).
    pub audiences: Option<Vec<String>>,
    /// Scopes every token must carry (403 `insufficient_scope` otherwise).
    pub required_scopes: Option<Vec<String>>,
    /// Scopes advertised in the protected-resource metadata.
    pub scopes_supported: Option<Vec<String>>,
    /// Clock leeway for `exp`, `nbf`, `iat` (default `30s`).
    pub leeway: Option<String>,
    /// Requests without any credential get the anonymous principal instead
    /// of 401 (default false).
    pub allow_anonymous: Option<bool>,
    /// Verified tokens kept in memory (default 10000; 0 disables the cache).
    pub token_cache_entries: Option<String>,
    /// Where the development key, API key store and generated secrets live
    /// (default `.warden` beside the configuration file).
    pub data_dir: Option<String>,
    pub issuers: Option<Vec<RawIssuer>>,
    pub dpop: Option<RawDpop>,
    pub api_keys: Option<RawApiKeys>,
    pub mtls: Option<RawMtls>,
    pub dev_issuer: Option<RawDevIssuer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    /// The issuer identifier: `iss` must equal it exactly.
    pub issuer: Option<String>,
    /// Short name used in principal keys (`corp:alice`). Default: `issuer`.
    pub name: Option<String>,
    /// Where the keys are. Without it (and without `jwks_file`), discovery:
    /// RFC 8414 metadata, then OpenID Connect discovery.
    pub jwks_uri: Option<String>,
    /// A local JWKS file instead of fetching (air-gapped deployments).
    pub jwks_file: Option<String>,
    /// Allowed `alg` values (default `[RS256, PS256, ES256, EdDSA]`).
    pub algorithms: Option<Vec<String>>,
    /// `disabled`, `allowed` (default) or `required`.
    pub dpop: Option<String>,
    /// Allow fetches to private networks and loopback for this issuer.
    pub allow_private_network: Option<bool>,
    /// Background JWKS refresh period (default `5m`).
    pub refresh_interval: Option<String>,
    /// At most one refresh on an unknown `kid` per this period (default `30s`).
    pub min_refresh_interval: Option<String>,
    /// Accept only `typ: at+jwt` (RFC 9068) access tokens from this issuer,
    /// not `typ: JWT` (default false: real issuers differ).
    pub require_at_jwt_typ: Option<bool>,
    pub claims: Option<RawClaims>,
}

/// Which claims give what. Each is a claim name, or a dotted path into
/// nested objects (`realm_access.roles`); a claim whose full name contains
/// dots (`https://example.com/roles`) is found first.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClaims {
    pub subject: Option<String>,
    pub tenant: Option<String>,
    pub roles: Option<String>,
    pub groups: Option<String>,
    pub client_id: Option<String>,
    pub agent_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDpop {
    /// Proof algorithms accepted (default `[ES256, ES384, EdDSA, RS256, PS256]`).
    pub algorithms: Option<Vec<String>>,
    /// How old a proof's `iat` may be, clock skew included (default `60s`,
    /// at most `10m`).
    pub max_age: Option<String>,
    /// How far in the future a proof's `iat` may be (default `5s`, at most
    /// `1m`).
    pub future_leeway: Option<String>,
    /// Require server nonces (`DPoP-Nonce`) (default false).
    pub nonce: Option<bool>,
    /// How long a nonce stays valid (default `5m`).
    pub nonce_lifetime: Option<String>,
    /// Secret for nonces, shared by replicas (`env:`/`file:`); default random
    /// per process.
    pub nonce_secret: Option<String>,
    /// Proofs remembered against replay in memory (default 100000).
    pub replay_cache_entries: Option<String>,
    /// Where proofs are remembered: `memory` (default; one replica) or
    /// `{ redis: { url, prefix, timeout } }` (shared by replicas).
    pub replay_cache: Option<RawReplayCache>,
}

/// `identity.dpop.replay_cache`: `memory` or `{ redis: { … } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawReplayCache {
    Memory,
    Redis(RawRedis),
}

/// `identity.dpop.replay_cache.redis`. `Debug` hides the URL.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// `redis://host:6379/0`; with a password, only by reference:
    /// `env:NAME` or `file:PATH` holding the URL.
    pub url: Option<String>,
    /// Prefix of every key (default `warden:dpop:`).
    pub prefix: Option<String>,
    /// Per-command deadline; past it the proof is refused (default `200ms`).
    pub timeout: Option<String>,
}

impl fmt::Debug for RawRedis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRedis")
            .field("url", &self.url.as_ref().map(|_| "[redacted]"))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKeys {
    /// Default true when the section is present.
    pub enabled: Option<bool>,
    /// The key store (default `api-keys.json` in `data_dir`).
    pub store: Option<String>,
    /// Keyed-hash secret (`env:NAME`/`file:PATH`, at least 32 bytes);
    /// default: generated once into `data_dir/api-keys.secret`.
    pub secret: Option<String>,
}

/// `identity.mtls`: TLS client certificates as identity.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMtls {
    /// PEM file of the CA certificate(s) that issue client certificates,
    /// relative to the configuration file's directory. Required.
    pub client_ca: Option<String>,
    /// The certificate field that names the principal: `subject_cn`
    /// (default), `san_dns`, `san_uri` or `san_email`. It must occur
    /// exactly once.
    pub principal_from: Option<String>,
    /// Roles of certificate principals: a list given to every one, or a
    /// map from principal name to its roles (others get none).
    pub roles: Option<RawMtlsRoles>,
    /// Tenant of every certificate principal.
    pub tenant: Option<String>,
    /// Every request must come with a client certificate (the TLS
    /// handshake fails without one); default false: a bearer token or an
    /// API key alone is enough.
    pub required: Option<bool>,
}

/// `identity.mtls.roles`: `[reader]` or `{ svc-a: [reader], svc-b: [writer] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawMtlsRoles {
    All(Vec<String>),
    ByPrincipal(BTreeMap<String, Vec<String>>),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevIssuer {
    /// Default true when the section is present.
    pub enabled: Option<bool>,
    /// The `iss` of minted tokens (default: `public_url`).
    pub issuer: Option<String>,
    /// `EdDSA` (default) or `ES256`.
    pub algorithm: Option<String>,
}

// ----- validated settings ---------------------------------------------------

/// The resolved `identity:` section. Only [`RawIdentity::resolve`] builds
/// one; everything in it has been checked.
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    pub(crate) public_url: String,
    pub(crate) audiences: Option<Vec<String>>,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) scopes_supported: Vec<String>,
    pub(crate) leeway: Duration,
    pub(crate) allow_anonymous: bool,
    pub(crate) token_cache_entries: usize,
    pub(crate) data_dir: PathBuf,
    pub(crate) issuers: Vec<IssuerSettings>,
    pub(crate) dpop: DpopSettings,
    pub(crate) api_keys: Option<ApiKeySettings>,
    pub(crate) mtls: Option<MtlsSettings>,
    pub(crate) dev_issuer: Option<DevIssuerSettings>,
}

impl IdentitySettings {
    /// Warden's public base URL, without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The resource URL of an MCP path (`/mcp` → `https://warden.example.com/mcp`):
    /// what tokens' `aud` must contain, and what [`crate::RequestFacts::url`]
    /// starts with.
    pub fn resource_url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether requests without any credential get the anonymous principal.
    pub fn allow_anonymous(&self) -> bool {
        self.allow_anonymous
    }

    /// Move the data directory (the gateway's `--data-dir`); paths that
    /// were not configured explicitly follow it.
    #[must_use]
    pub fn with_data_dir(mut self, dir: PathBuf) -> Self {
        self.data_dir = dir;
        self
    }

    pub fn issuers(&self) -> &[IssuerSettings] {
        &self.issuers
    }

    pub fn api_keys(&self) -> Option<&ApiKeySettings> {
        self.api_keys.as_ref()
    }

    pub fn dev_issuer(&self) -> Option<&DevIssuerSettings> {
        self.dev_issuer.as_ref()
    }

    /// The `mtls` section, when client certificates are configured.
    pub fn mtls(&self) -> Option<&MtlsSettings> {
        self.mtls.as_ref()
    }

    /// Path of the API key store.
    pub fn api_key_store_path(&self) -> Option<PathBuf> {
        let keys = self.api_keys.as_ref()?;
        Some(
            keys.store
                .clone()
                .unwrap_or_else(|| self.data_dir.join("api-keys.json")),
        )
    }

    /// Where the generated API key secret lives when none is configured.
    pub(crate) fn api_key_secret_path(&self) -> PathBuf {
        self.data_dir.join("api-keys.secret")
    }
}

#[derive(Debug, Clone)]
pub struct IssuerSettings {
    pub(crate) issuer: String,
    pub(crate) name: String,
    pub(crate) keys: KeySource,
    pub(crate) algorithms: Vec<SigningAlgorithm>,
    pub(crate) dpop: DpopMode,
    pub(crate) allow_private_network: bool,
    pub(crate) refresh_interval: Duration,
    pub(crate) min_refresh_interval: Duration,
    pub(crate) require_at_jwt_typ: bool,
    pub(crate) claims: ClaimMapping,
}

impl IssuerSettings {
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    JwksUri(Url),
    Discovery(Url),
    File(PathBuf),
    /// The development issuer's own key (no fetch).
    Dev,
}

/// Whether an issuer's tokens may, or must, be DPoP-bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopMode {
    /// `Authorization: DPoP` refused; DPoP-bound tokens refused.
    Disabled,
    /// Bearer and DPoP both accepted (a bound token still needs its proof).
    Allowed,
    /// Only DPoP-bound tokens with a proof.
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimMapping {
    pub subject: String,
    pub tenant: Option<String>,
    pub roles: Option<String>,
    pub groups: Option<String>,
    pub client_id: Option<String>,
    pub agent_id: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct DpopSettings {
    pub algorithms: Vec<SigningAlgorithm>,
    pub max_age: Duration,
    pub future_leeway: Duration,
    pub nonce: bool,
    pub nonce_lifetime: Duration,
    pub nonce_secret: Option<SecretBytes>,
    pub replay_cache_entries: usize,
    pub replay_cache: ReplayBackend,
}

#[derive(Debug, Clone)]
pub(crate) enum ReplayBackend {
    Memory,
    Redis(RedisSettings),
}

#[derive(Debug, Clone)]
pub(crate) struct RedisSettings {
    /// The URL, possibly with a password: only handed to the Redis client.
    pub url: SecretText,
    pub prefix: String,
    pub timeout: Duration,
}

/// Text that may hold a secret (a URL with a password); `Debug` prints
/// `[secret]`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretText(pub String);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

#[derive(Debug, Clone)]
pub struct ApiKeySettings {
    pub(crate) store: Option<PathBuf>,
    pub(crate) secret: Option<SecretBytes>,
}

/// The resolved `identity.mtls` section: the client CAs (loaded), which
/// certificate field names the principal, its roles and tenant.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "mtls"), allow(dead_code))]
pub struct MtlsSettings {
    pub(crate) client_ca: Vec<CertificateDer<'static>>,
    pub(crate) client_ca_path: PathBuf,
    pub(crate) principal_from: CertField,
    pub(crate) roles: MtlsRoles,
    pub(crate) tenant: Option<String>,
    pub(crate) required: bool,
}

impl MtlsSettings {
    /// Whether every request must carry a client certificate.
    pub fn required(&self) -> bool {
        self.required
    }

    /// The client CA file, as resolved.
    pub fn client_ca_path(&self) -> &Path {
        &self.client_ca_path
    }
}

/// Which certificate field names an mTLS principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertField {
    SubjectCn,
    SanDns,
    SanUri,
    SanEmail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MtlsRoles {
    All(Vec<String>),
    ByPrincipal(BTreeMap<String, Vec<String>>),
}

#[derive(Debug, Clone)]
pub struct DevIssuerSettings {
    pub(crate) issuer: String,
    pub(crate) algorithm: crate::dev::DevAlgorithm,
}

impl DevIssuerSettings {
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    pub fn algorithm(&self) -> crate::dev::DevAlgorithm {
        self.algorithm
    }
}

/// Secret bytes from `env:`/`file:`; `Debug` prints `[secret]`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretBytes(pub Vec<u8>);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

// ----- resolving --------------------------------------------------------------

const DEFAULT_ALGORITHMS: [SigningAlgorithm; 4] = [
    SigningAlgorithm::RS256,
    SigningAlgorithm::PS256,
    SigningAlgorithm::ES256,
    SigningAlgorithm::EdDSA,
];
const DEFAULT_DPOP_ALGORITHMS: [SigningAlgorithm; 5] = [
    SigningAlgorithm::ES256,
    SigningAlgorithm::ES384,
    SigningAlgorithm::EdDSA,
    SigningAlgorithm::RS256,
    SigningAlgorithm::PS256,
];
const MIN_SECRET_BYTES: usize = 32;

type Problems = Vec<(String, String)>;

impl RawIdentity {
    /// Validate and resolve. Relative paths (`data_dir`, `jwks_file`,
    /// `api_keys.store`, `file:` secrets) resolve against `base_dir`;
    /// `env:` secrets read the process environment. Errors are
    /// `(path, message)` pairs with paths like `identity.issuers[0].jwks_uri`;
    /// no message contains a secret.
    pub fn resolve(self, base_dir: &Path) -> Result<IdentitySettings, Vec<(String, String)>> {
        self.resolve_with_env(base_dir, &|name| std::env::var_os(name))
    }

    /// [`RawIdentity::resolve`] with an explicit environment (tests).
    pub fn resolve_with_env(
        self,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<IdentitySettings, Vec<(String, String)>> {
        let mut r = Resolver {
            problems: Vec::new(),
            base_dir,
            env,
        };
        let settings = r.identity(self);
        if r.problems.is_empty() {
            settings.ok_or_else(|| vec![("identity".to_owned(), "invalid".to_owned())])
        } else {
            Err(r.problems)
        }
    }
}

struct Resolver<'a> {
    problems: Problems,
    base_dir: &'a Path,
    env: &'a dyn Fn(&str) -> Option<std::ffi::OsString>,
}

impl Resolver<'_> {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push((path.into(), message.into()));
    }

    fn identity(&mut self, raw: RawIdentity) -> Option<IdentitySettings> {
        let p = "identity";
        let public_url = match raw.public_url.as_deref() {
            None => {
                self.push(
                    format!("{p}.public_url"),
                    "required: Warden's public base URL (e.g. https://warden.example.com); \
                     tokens' audience is this URL plus the MCP path",
                );
                String::new()
            }
            Some(text) => self.public_url(text, &format!("{p}.public_url")),
        };
        let audiences = raw.audiences.inspect(|list| {
            let path = format!("{p}.audiences");
            if list.is_empty() {
                self.push(&path, "must not be empty (remove the key for the default)");
            }
            for (i, aud) in list.iter().enumerate() {
                if aud.is_empty() || aud.trim() != aud {
                    self.push(
                        format!("{path}[{i}]"),
                        "must be a non-empty string without surrounding spaces",
                    );
                }
            }
        });
        let required_scopes = self.scopes(raw.required_scopes, &format!("{p}.required_scopes"));
        let mut scopes_supported =
            self.scopes(raw.scopes_supported, &format!("{p}.scopes_supported"));
        for scope in &required_scopes {
            if !scopes_supported.contains(scope) {
                scopes_supported.push(scope.clone());
            }
        }
        let leeway = self
            .duration(raw.leeway.as_deref(), &format!("{p}.leeway"), true)
            .unwrap_or(Duration::from_secs(30));
        if leeway > Duration::from_secs(300) {
            self.push(format!("{p}.leeway"), "at most 5m");
        }
        let token_cache_entries = self
            .count(
                raw.token_cache_entries.as_deref(),
                &format!("{p}.token_cache_entries"),
            )
            .unwrap_or(10_000);
        let data_dir = match raw.data_dir.as_deref() {
            Some("") => {
                self.push(format!("{p}.data_dir"), "must not be empty");
                PathBuf::new()
            }
            Some(dir) => self.base_dir.join(dir),
            None => self.base_dir.join(".warden"),
        };

        let mut issuers = Vec::new();
        let mut names = Vec::<String>::new();
        for (i, raw_issuer) in raw.issuers.unwrap_or_default().into_iter().enumerate() {
            let path = format!("{p}.issuers[{i}]");
            if let Some(issuer) = self.issuer(raw_issuer, &path) {
                if issuers
                    .iter()
                    .any(|o: &IssuerSettings| o.issuer == issuer.issuer)
                {
                    self.push(format!("{path}.issuer"), "duplicate issuer");
                }
                if issuer.name == crate::API_KEY_NAMESPACE
                    || issuer.name == crate::MTLS_NAMESPACE
                    || issuer.name.starts_with("mtls:")
                {
                    self.push(
                        format!("{path}.name"),
                        format!(
                            "{:?} is reserved for API keys and client certificates",
                            issuer.name
                        ),
                    );
                }
                if names.contains(&issuer.name) {
                    self.push(
                        format!("{path}.name"),
                        format!("duplicate name {:?}", issuer.name),
                    );
                }
                names.push(issuer.name.clone());
                issuers.push(issuer);
            }
        }

        let dpop = self.dpop(raw.dpop.unwrap_or_default(), &format!("{p}.dpop"));
        let api_keys = raw
            .api_keys
            .and_then(|k| self.api_keys(k, &format!("{p}.api_keys")));
        let mtls = raw.mtls.and_then(|m| self.mtls(m, &format!("{p}.mtls")));
        let dev_issuer = raw
            .dev_issuer
            .and_then(|d| self.dev_issuer(d, &public_url, &format!("{p}.dev_issuer")));
        if let Some(dev) = &dev_issuer {
            if issuers.iter().any(|i| i.issuer == dev.issuer) {
                self.push(
                    format!("{p}.dev_issuer.issuer"),
                    "the same as a configured issuer; give the development issuer its own",
                );
            }
            issuers.push(IssuerSettings {
                issuer: dev.issuer.clone(),
                name: "dev".to_owned(),
                keys: KeySource::Dev,
                algorithms: vec![dev.algorithm.signing_algorithm()],
                dpop: DpopMode::Allowed,
                allow_private_network: false,
                refresh_interval: Duration::from_secs(3600),
                min_refresh_interval: Duration::from_secs(3600),
                require_at_jwt_typ: false,
                claims: ClaimMapping {
                    tenant: Some("tenant".to_owned()),
                    ..ClaimMapping::default()
                },
            });
            if names.iter().any(|n| n == "dev") {
                self.push(
                    format!("{p}.dev_issuer"),
                    "an issuer is already named \"dev\"",
                );
            }
        }

        Some(IdentitySettings {
            public_url,
            audiences,
            required_scopes,
            scopes_supported,
            leeway,
            allow_anonymous: raw.allow_anonymous.unwrap_or(false),
            token_cache_entries,
            data_dir,
            issuers,
            dpop,
            api_keys,
            mtls,
            dev_issuer,
        })
    }

    fn public_url(&mut self, text: &str, path: &str) -> String {
        let Ok(url) = Url::parse(text) else {
            self.push(path, "not a valid absolute URL");
            return String::new();
        };
        if !matches!(url.scheme(), "https" | "http") {
            self.push(path, "scheme must be https (or http for local use)");
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            self.push(path, "must not have a query, fragment or credentials");
        }
        // Keep the operator's spelling (audiences are compared as exact
        // strings) but drop a trailing slash so paths append cleanly.
        text.trim_end_matches('/').to_owned()
    }

    fn scopes(&mut self, raw: Option<Vec<String>>, path: &str) -> Vec<String> {
        let list = raw.unwrap_or_default();
        for (i, scope) in list.iter().enumerate() {
            if !is_scope_token(scope) {
                self.push(
                    format!("{path}[{i}]"),
                    "not a valid scope (printable ASCII, no spaces, quotes or backslashes)",
                );
            }
        }
        list
    }

    fn duration(&mut self, raw: Option<&str>, path: &str, zero_ok: bool) -> Option<Duration> {
        let text = raw?;
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d.is_zero() && !zero_ok => {
                self.push(path, "must be greater than zero");
                None
            }
            Ok(d) => Some(d),
            Err(_) => {
                self.push(
                    path,
                    format!("invalid duration {text:?}: expected e.g. 30s, 5m"),
                );
                None
            }
        }
    }

    fn count(&mut self, raw: Option<&str>, path: &str) -> Option<usize> {
        let text = raw?;
        match text.trim().parse::<usize>() {
            Ok(n) if n <= 100_000_000 => Some(n),
            _ => {
                self.push(
                    path,
                    format!("invalid count {text:?}: expected a non-negative integer"),
                );
                None
            }
        }
    }

    fn issuer(&mut self, raw: RawIssuer, path: &str) -> Option<IssuerSettings> {
        let issuer = match raw.issuer {
            None => {
                self.push(
                    format!("{path}.issuer"),
                    "required: the exact `iss` of the tokens",
                );
                return None;
            }
            Some(i) => i,
        };
        let issuer_url = Url::parse(&issuer).ok();
        match &issuer_url {
            Some(u)
                if matches!(u.scheme(), "https" | "http")
                    && u.query().is_none()
                    && u.fragment().is_none() => {}
            _ => self.push(
                format!("{path}.issuer"),
                "must be an https URL without query or fragment",
            ),
        }
        let name = raw.name.unwrap_or_else(|| issuer.clone());
        if name.is_empty() || name.contains(char::is_control) {
            self.push(format!("{path}.name"), "must be non-empty printable text");
        }
        let keys = match (raw.jwks_uri, raw.jwks_file) {
            (Some(_), Some(_)) => {
                self.push(
                    format!("{path}.jwks_file"),
                    "give jwks_uri or jwks_file, not both",
                );
                return None;
            }
            (Some(uri), None) => match Url::parse(&uri) {
                Ok(u) if matches!(u.scheme(), "https" | "http") => KeySource::JwksUri(u),
                _ => {
                    self.push(format!("{path}.jwks_uri"), "must be an https URL");
                    return None;
                }
            },
            (None, Some(file)) if !file.is_empty() => KeySource::File(self.base_dir.join(file)),
            (None, Some(_)) => {
                self.push(format!("{path}.jwks_file"), "must not be empty");
                return None;
            }
            (None, None) => KeySource::Discovery(issuer_url?),
        };
        let algorithms = self.algorithms(
            raw.algorithms,
            &format!("{path}.algorithms"),
            &DEFAULT_ALGORITHMS,
        );
        let dpop = match raw.dpop.as_deref() {
            None | Some("allowed") => DpopMode::Allowed,
            Some("required") => DpopMode::Required,
            Some("disabled") => DpopMode::Disabled,
            Some(other) => {
                self.push(
                    format!("{path}.dpop"),
                    format!("unknown mode {other:?}: expected disabled, allowed or required"),
                );
                DpopMode::Allowed
            }
        };
        let refresh_interval = self
            .duration(
                raw.refresh_interval.as_deref(),
                &format!("{path}.refresh_interval"),
                false,
            )
            .unwrap_or(Duration::from_secs(300));
        let min_refresh_interval = self
            .duration(
                raw.min_refresh_interval.as_deref(),
                &format!("{path}.min_refresh_interval"),
                false,
            )
            .unwrap_or(Duration::from_secs(30));
        let claims = self.claims(raw.claims.unwrap_or_default(), &format!("{path}.claims"));
        Some(IssuerSettings {
            issuer,
            name,
            keys,
            algorithms,
            dpop,
            allow_private_network: raw.allow_private_network.unwrap_or(false),
            refresh_interval,
            min_refresh_interval,
            require_at_jwt_typ: raw.require_at_jwt_typ.unwrap_or(false),
            claims,
        })
    }

    fn algorithms(
        &mut self,
        raw: Option<Vec<String>>,
        path: &str,
        default: &[SigningAlgorithm],
    ) -> Vec<SigningAlgorithm> {
        let Some(list) = raw else {
            return default.to_vec();
        };
        if list.is_empty() {
            self.push(path, "must not be empty");
        }
        let mut out = Vec::new();
        for (i, name) in list.iter().enumerate() {
            match SigningAlgorithm::from_name(name) {
                Some(alg) if !out.contains(&alg) => out.push(alg),
                Some(_) => self.push(format!("{path}[{i}]"), "duplicate algorithm"),
                None if name.eq_ignore_ascii_case("none") || name.starts_with("HS") => self.push(
                    format!("{path}[{i}]"),
                    format!("{name:?} is never accepted: only asymmetric algorithms (RS*, PS*, ES256, ES384, EdDSA)"),
                ),
                None => self.push(
                    format!("{path}[{i}]"),
                    format!("unknown algorithm {name:?}: expected RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA"),
                ),
            }
        }
        out
    }

    fn claims(&mut self, raw: RawClaims, path: &str) -> ClaimMapping {
        let mut check = |field: &str, value: Option<String>| -> Option<String> {
            let value = value?;
            if value.is_empty() || value.starts_with('.') || value.ends_with('.') {
                self.push(
                    format!("{path}.{field}"),
                    "must be a claim name or a dotted path",
                );
            }
            Some(value)
        };
        let defaults = ClaimMapping::default();
        ClaimMapping {
            subject: check("subject", raw.subject).unwrap_or(defaults.subject),
            tenant: check("tenant", raw.tenant),
            roles: check("roles", raw.roles).or(defaults.roles),
            groups: check("groups", raw.groups).or(defaults.groups),
            client_id: check("client_id", raw.client_id).or(defaults.client_id),
            agent_id: check("agent_id", raw.agent_id),
        }
    }

    fn dpop(&mut self, raw: RawDpop, path: &str) -> DpopSettings {
        let algorithms = self.algorithms(
            raw.algorithms,
            &format!("{path}.algorithms"),
            &DEFAULT_DPOP_ALGORITHMS,
        );
        let max_age = self
            .duration(raw.max_age.as_deref(), &format!("{path}.max_age"), false)
            .unwrap_or(Duration::from_secs(60));
        if max_age > Duration::from_secs(600) {
            self.push(
                format!("{path}.max_age"),
                "at most 10m (proofs are meant to be fresh)",
            );
        }
        let future_leeway = self
            .duration(
                raw.future_leeway.as_deref(),
                &format!("{path}.future_leeway"),
                true,
            )
            .unwrap_or(Duration::from_secs(5));
        if future_leeway > Duration::from_secs(60) {
            self.push(
                format!("{path}.future_leeway"),
                "at most 1m (a proof from the future is a clock problem, or a proof made in advance)",
            );
        }
        let nonce_lifetime = self
            .duration(
                raw.nonce_lifetime.as_deref(),
                &format!("{path}.nonce_lifetime"),
                false,
            )
            .unwrap_or(Duration::from_secs(300));
        let nonce_secret = raw
            .nonce_secret
            .and_then(|s| self.secret(&s, &format!("{path}.nonce_secret")));
        let replay_cache_entries = self
            .count(
                raw.replay_cache_entries.as_deref(),
                &format!("{path}.replay_cache_entries"),
            )
            .unwrap_or(100_000);
        if replay_cache_entries == 0 {
            self.push(
                format!("{path}.replay_cache_entries"),
                "must be greater than zero",
            );
        }
        let replay_cache = match raw.replay_cache {
            None | Some(RawReplayCache::Memory) => ReplayBackend::Memory,
            Some(RawReplayCache::Redis(redis)) => self
                .redis(redis, &format!("{path}.replay_cache.redis"))
                .map_or(ReplayBackend::Memory, ReplayBackend::Redis),
        };
        DpopSettings {
            algorithms,
            max_age,
            future_leeway,
            nonce: raw.nonce.unwrap_or(false),
            nonce_lifetime,
            nonce_secret,
            replay_cache_entries,
            replay_cache,
        }
    }

    fn redis(&mut self, raw: RawRedis, path: &str) -> Option<RedisSettings> {
        let url_path = format!("{path}.url");
        let url = match raw.url.as_deref() {
            None | Some("") => {
                self.push(
                    &url_path,
                    "required: redis://host:6379/0 (or env:NAME / file:PATH holding it)",
                );
                None
            }
            Some(text) => self.redis_url(text, &url_path),
        };
        let prefix = raw.prefix.unwrap_or_else(|| "warden:dpop:".to_owned());
        if prefix.is_empty() || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
            self.push(
                format!("{path}.prefix"),
                "must be 1 to 64 printable ASCII characters without spaces",
            );
        }
        let timeout = self
            .duration(raw.timeout.as_deref(), &format!("{path}.timeout"), false)
            .unwrap_or(Duration::from_millis(200));
        if timeout > Duration::from_secs(10) {
            self.push(
                format!("{path}.timeout"),
                "at most 10s (every DPoP request waits for it)",
            );
        }
        Some(RedisSettings {
            url: url?,
            prefix,
            timeout,
        })
    }

    /// A Redis URL, inline (without a password) or by `env:`/`file:`
    /// reference. Messages never contain the URL.
    fn redis_url(&mut self, text: &str, path: &str) -> Option<SecretText> {
        let (value, referenced) = if let Some(name) = text.strip_prefix("env:") {
            match (self.env)(name).map(|v| v.into_string()) {
                Some(Ok(v)) => (v, true),
                Some(Err(_)) => {
                    self.push(
                        path,
                        format!("environment variable {name} is not valid UTF-8"),
                    );
                    return None;
                }
                None => {
                    self.push(path, format!("environment variable {name} is not set"));
                    return None;
                }
            }
        } else if let Some(file) = text.strip_prefix("file:") {
            let full = self.base_dir.join(file);
            match read_small_file(&full).map(String::from_utf8) {
                Ok(Ok(v)) => (v.trim_end_matches(['\r', '\n']).to_owned(), true),
                Ok(Err(_)) => {
                    self.push(path, format!("{} is not UTF-8", full.display()));
                    return None;
                }
                Err(reason) => {
                    self.push(path, format!("cannot read {}: {reason}", full.display()));
                    return None;
                }
            }
        } else {
            (text.to_owned(), false)
        };
        let Ok(url) = Url::parse(&value) else {
            self.push(path, "not a valid URL (expected redis://host:6379/0)");
            return None;
        };
        match url.scheme() {
            "redis" if url.host_str().is_some_and(|h| !h.is_empty()) => {}
            "redis" => {
                self.push(path, "a redis:// URL needs a host");
                return None;
            }
            "rediss" => {
                self.push(
                    path,
                    "rediss:// (TLS) is not supported by this build; use redis:// on a \
                     private network or a local TLS tunnel",
                );
                return None;
            }
            _ => {
                self.push(path, "scheme must be redis://");
                return None;
            }
        }
        if url.password().is_some() && !referenced {
            self.push(
                path,
                "this URL holds a password: give it by reference (env:NAME or file:PATH), \
                 not inline",
            );
            return None;
        }
        if redis::Client::open(value.as_str()).is_err() {
            self.push(path, "not a usable Redis URL");
            return None;
        }
        Some(SecretText(value))
    }

    fn api_keys(&mut self, raw: RawApiKeys, path: &str) -> Option<ApiKeySettings> {
        let store = match raw.store.as_deref() {
            Some("") => {
                self.push(format!("{path}.store"), "must not be empty");
                None
            }
            Some(file) => Some(self.base_dir.join(file)),
            None => None,
        };
        let secret = raw
            .secret
            .and_then(|s| self.secret(&s, &format!("{path}.secret")));
        raw.enabled
            .unwrap_or(true)
            .then_some(ApiKeySettings { store, secret })
    }

    fn mtls(&mut self, raw: RawMtls, path: &str) -> Option<MtlsSettings> {
        if cfg!(not(feature = "mtls")) {
            self.push(
                path,
                "this build of Warden has no mTLS support (feature `mtls`)",
            );
        }
        let ca_path = format!("{path}.client_ca");
        let client_ca = match raw.client_ca.as_deref() {
            None | Some("") => {
                self.push(
                    &ca_path,
                    "required: PEM file of the CA certificate(s) that issue client certificates",
                );
                None
            }
            Some(file) => {
                let full = self.base_dir.join(file);
                match crate::tls::load_client_cas(&full) {
                    Ok(cas) => Some((cas, full)),
                    Err(reason) => {
                        self.push(&ca_path, reason);
                        None
                    }
                }
            }
        };
        let principal_from = match raw.principal_from.as_deref() {
            None | Some("subject_cn") => CertField::SubjectCn,
            Some("san_dns") => CertField::SanDns,
            Some("san_uri") => CertField::SanUri,
            Some("san_email") => CertField::SanEmail,
            Some(other) => {
                self.push(
                    format!("{path}.principal_from"),
                    format!(
                        "unknown field {other:?}: expected subject_cn, san_dns, san_uri or san_email"
                    ),
                );
                CertField::SubjectCn
            }
        };
        let roles = match raw.roles {
            None => MtlsRoles::All(Vec::new()),
            Some(RawMtlsRoles::All(list)) => {
                self.role_list(&list, &format!("{path}.roles"));
                MtlsRoles::All(list)
            }
            Some(RawMtlsRoles::ByPrincipal(map)) => {
                for (name, list) in &map {
                    if !crate::mtls::acceptable_name(name) {
                        self.push(
                            format!("{path}.roles"),
                            format!("{name:?} is not a principal name a certificate can give"),
                        );
                    } else if principal_from == CertField::SanDns
                        && name.bytes().any(|b| b.is_ascii_uppercase())
                    {
                        self.push(
                            format!("{path}.roles"),
                            format!(
                                "{name:?}: DNS names are compared lower-cased; write it in lower case"
                            ),
                        );
                    }
                    self.role_list(list, &format!("{path}.roles.{name}"));
                }
                MtlsRoles::ByPrincipal(map)
            }
        };
        let tenant = raw.tenant.inspect(|t| {
            if !crate::mtls::acceptable_name(t) {
                self.push(
                    format!("{path}.tenant"),
                    "must be non-empty printable text without surrounding spaces",
                );
            }
        });
        let (client_ca, client_ca_path) = client_ca?;
        Some(MtlsSettings {
            client_ca,
            client_ca_path,
            principal_from,
            roles,
            tenant,
            required: raw.required.unwrap_or(false),
        })
    }

    fn role_list(&mut self, roles: &[String], path: &str) {
        for (i, role) in roles.iter().enumerate() {
            if !crate::mtls::acceptable_name(role) {
                self.push(
                    format!("{path}[{i}]"),
                    "must be non-empty printable text without surrounding spaces",
                );
            }
        }
    }

    fn dev_issuer(
        &mut self,
        raw: RawDevIssuer,
        public_url: &str,
        path: &str,
    ) -> Option<DevIssuerSettings> {
        if !raw.enabled.unwrap_or(true) {
            return None;
        }
        let issuer = raw.issuer.unwrap_or_else(|| public_url.to_owned());
        if Url::parse(&issuer).is_err() {
            self.push(format!("{path}.issuer"), "must be an absolute URL");
        }
        let algorithm = match raw.algorithm.as_deref() {
            None | Some("EdDSA") => crate::dev::DevAlgorithm::EdDsa,
            Some("ES256") => crate::dev::DevAlgorithm::Es256,
            Some(other) => {
                self.push(
                    format!("{path}.algorithm"),
                    format!("unknown algorithm {other:?}: expected EdDSA or ES256"),
                );
                crate::dev::DevAlgorithm::EdDsa
            }
        };
        Some(DevIssuerSettings { issuer, algorithm })
    }

    /// `env:NAME` or `file:PATH`; inlined secrets are refused.
    fn secret(&mut self, text: &str, path: &str) -> Option<SecretBytes> {
        let value = if let Some(name) = text.strip_prefix("env:") {
            match (self.env)(name).map(|v| v.into_string()) {
                Some(Ok(v)) => v.into_bytes(),
                Some(Err(_)) => {
                    self.push(
                        path,
                        format!("environment variable {name} is not valid UTF-8"),
                    );
                    return None;
                }
                None => {
                    self.push(path, format!("environment variable {name} is not set"));
                    return None;
                }
            }
        } else if let Some(file) = text.strip_prefix("file:") {
            let full = self.base_dir.join(file);
            match read_small_file(&full) {
                Ok(mut bytes) => {
                    if bytes.ends_with(b"\n") {
                        bytes.pop();
                    }
                    bytes
                }
                Err(reason) => {
                    self.push(
                        path,
                        format!("cannot read secret file {}: {reason}", full.display()),
                    );
                    return None;
                }
            }
        } else {
            self.push(
                path,
                "secrets must be referenced (env:NAME or file:PATH), not inlined",
            );
            return None;
        };
        if value.len() < MIN_SECRET_BYTES {
            self.push(
                path,
                format!("secret is shorter than {MIN_SECRET_BYTES} bytes"),
            );
            return None;
        }
        Some(SecretBytes(value))
    }
}

/// An RFC 6749 scope-token (printable ASCII without space, `"` or `\`),
/// and so safe inside a quoted challenge.
pub(crate) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

pub(crate) fn read_small_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    const LIMIT: u64 = 1 << 20;
    let file = std::fs::File::open(path).map_err(|e| e.kind().to_string())?;
    let mut bytes = Vec::new();
    file.take(LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.kind().to_string())?;
    if bytes.len() as u64 > LIMIT {
        return Err(format!("larger than {LIMIT} bytes"));
    }
    Ok(bytes)
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping {
            subject: "sub".to_owned(),
            tenant: None,
            roles: Some("roles".to_owned()),
            groups: Some("groups".to_owned()),
            client_id: Some("client_id".to_owned()),
            agent_id: None,
        }
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
