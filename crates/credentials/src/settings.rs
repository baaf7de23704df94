//! `credentials:`: Warden as the issuer of the tokens it mints for
//! upstreams. Parsed (serde) into [`RawIssuer`], then resolved into
//! [`IssuerSettings`]; every problem names its path in the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The longest a minted token may live: a request-scoped token is used
/// once, right away.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(60);
/// Default lifetime of a minted token.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);
/// Default lifetime of a generated signing key.
pub const DEFAULT_ROTATE_EVERY: Duration = Duration::from_secs(3600);
/// The path of the published key set on Warden's listener.
pub const JWKS_PATH: &str = "/.well-known/upstream-jwks.json";

/// `credentials:` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    /// `iss` of minted tokens. Default: `identity.public_url`.
    pub issuer: Option<String>,
    /// `EdDSA` (default) or `ES256`.
    pub algorithm: Option<String>,
    /// Lifetime of a minted token (default and at most `60s`).
    pub token_ttl: Option<String>,
    /// A generated key signs for this long, then a new one takes over; the
    /// old one stays published until its last token expired (default `1h`).
    pub rotate_every: Option<String>,
    /// A PKCS#8 key file to sign with instead of generated keys (replicas
    /// behind one load balancer share it; rotate it by replacing the file
    /// and reloading). Relative to the configuration file.
    pub signing_key: Option<String>,
    /// Where users' OAuth grants for `mode: oauth` servers are kept
    /// (resolved by the configuration: its key is a secret reference).
    pub grant_store: Option<RawGrantStore>,
}

/// `credentials.grant_store`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrantStore {
    /// The store file, relative to the configuration file.
    pub path: String,
    /// The sealing key, `env:NAME` or `file:PATH`: 32 bytes, base64.
    pub key: String,
}

/// The key type Warden signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Ed25519 (`EdDSA`), the default.
    EdDsa,
    /// P-256 (`ES256`).
    Es256,
}

impl Algorithm {
    /// The JOSE name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Es256 => "ES256",
        }
    }
}

/// Validated `credentials:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSettings {
    pub issuer: String,
    pub algorithm: Algorithm,
    pub token_ttl: Duration,
    pub rotate_every: Duration,
    pub signing_key: Option<PathBuf>,
}

impl IssuerSettings {
    /// The settings of an absent `credentials:` section.
    #[must_use]
    pub fn defaults(issuer: &str) -> Self {
        IssuerSettings {
            issuer: issuer.trim_end_matches('/').to_owned(),
            algorithm: Algorithm::EdDsa,
            token_ttl: DEFAULT_TOKEN_TTL,
            rotate_every: DEFAULT_ROTATE_EVERY,
            signing_key: None,
        }
    }
}

impl RawIssuer {
    /// Resolves against the configuration's directory. `default_issuer`:
    /// Warden's public URL, when identity names one. Errors are
    /// `(path, message)` pairs.
    pub fn resolve(
        &self,
        base_dir: &Path,
        default_issuer: Option<&str>,
    ) -> Result<IssuerSettings, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut push = |field: &str, message: String| {
            problems.push((format!("credentials.{field}"), message));
        };
        let issuer = match (self.issuer.as_deref(), default_issuer) {
            (Some(i), _) => i.trim().to_owned(),
            (None, Some(d)) => d.to_owned(),
            (None, None) => {
                push(
                    "issuer",
                    "is required without identity.public_url: the `iss` of the tokens Warden \
                     mints (its public base URL, e.g. https://warden.example.com)"
                        .to_owned(),
                );
                String::new()
            }
        };
        if !(issuer.is_empty() || issuer.starts_with("https://") || issuer.starts_with("http://")) {
            push("issuer", "must be an http(s) URL".to_owned());
        }
        let algorithm = match self.algorithm.as_deref().map(str::trim) {
            None | Some("EdDSA") => Algorithm::EdDsa,
            Some("ES256") => Algorithm::Es256,
            Some(other) => {
                push(
                    "algorithm",
                    format!("unknown algorithm {other:?} (expected EdDSA or ES256)"),
                );
                Algorithm::EdDsa
            }
        };
        let mut duration = |field: &str, text: Option<&str>, default: Duration| match text {
            None => default,
            Some(t) => match humantime::parse_duration(t.trim()) {
                Ok(d) if !d.is_zero() => d,
                Ok(_) => {
                    push(field, "must be more than zero".to_owned());
                    default
                }
                Err(e) => {
                    push(field, format!("invalid duration {t:?}: {e}"));
                    default
                }
            },
        };
        let token_ttl = duration("token_ttl", self.token_ttl.as_deref(), DEFAULT_TOKEN_TTL);
        let rotate_every = duration(
            "rotate_every",
            self.rotate_every.as_deref(),
            DEFAULT_ROTATE_EVERY,
        );
        if token_ttl > MAX_TOKEN_TTL {
            push(
                "token_ttl",
                "must be at most 60s: a minted token serves one call".to_owned(),
            );
        }
        if rotate_every < token_ttl {
            push(
                "rotate_every",
                "must be at least token_ttl (a key signs for longer than its tokens live)"
                    .to_owned(),
            );
        }
        let signing_key = self.signing_key.as_deref().map(|p| base_dir.join(p.trim()));
        if problems.is_empty() {
            Ok(IssuerSettings {
                issuer: issuer.trim_end_matches('/').to_owned(),
                algorithm,
                token_ttl,
                rotate_every,
                signing_key,
            })
        } else {
            Err(problems)
        }
    }
}
