//! The error types of this crate: [`AuthError`] (a request was not
//! authenticated; safe to show the client), [`AuthFailure`] (the same, with
//! what the refused token said about itself, for the log and the audit
//! trail), [`IdentityError`] (starting, key stores, the development issuer;
//! shown to the operator) and [`IssuerErrorClass`] (why an issuer's keys
//! could not be fetched).

/// Why a request was not authenticated.
///
/// Every variant is safe to send to the client: reason codes are static
/// strings chosen here, never text from a peer, a library or the token. The
/// token itself never appears in an `AuthError`, its `Display` or its
/// `Debug`. [`crate::Authenticator::challenge`] turns one into the HTTP
/// status and `WWW-Authenticate` headers; [`AuthError::code`] is the audit
/// reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credentials at all.
    #[error("authentication required")]
    Missing,
    /// An `Authorization` (or API key, or `DPoP`) header that does not parse:
    /// unknown scheme, empty token, forbidden characters, two credentials.
    #[error("malformed credentials")]
    Malformed,
    /// The token or key was refused; the code says which check failed
    /// (`signature`, `audience`, `issuer`, `unknown_kid`, `algorithm`, …).
    #[error("invalid token ({0})")]
    Invalid(&'static str),
    /// The token's `exp` (plus leeway) has passed.
    #[error("token expired")]
    Expired,
    /// Authenticated, but the token lacks these scopes (HTTP 403, step-up).
    #[error("insufficient scope")]
    InsufficientScope(Vec<String>),
    /// The token must be presented with a DPoP proof: it is DPoP-bound, or
    /// its issuer requires DPoP, and it came as `Bearer`.
    #[error("DPoP required")]
    DpopRequired,
    /// The DPoP proof was refused; the code says which check failed
    /// (`missing`, `htu`, `htm`, `iat`, `ath`, `replay`, `binding`, …).
    #[error("invalid DPoP proof ({0})")]
    DpopInvalid(&'static str),
    /// The proof must carry this server nonce (sent back in `DPoP-Nonce`).
    #[error("DPoP nonce required")]
    UseDpopNonce(String),
    /// A dependency of authentication (the API key index) is unusable:
    /// refused, fail closed (HTTP 503).
    #[error("authentication temporarily unavailable")]
    Unavailable,
    /// The DPoP replay cache (Redis, or a full memory cache) did not answer:
    /// the proof cannot be checked for replay, so it is refused (fail
    /// closed). HTTP 503 with `Retry-After`, not 401: the client's token
    /// and key are fine, and a 401 would send it to re-authorise for
    /// nothing; it should retry the request later with a fresh proof.
    #[error("authentication temporarily unavailable")]
    ReplayCacheUnavailable,
    /// A client certificate is required (`identity.mtls.required`) and the
    /// request came without one.
    #[error("client certificate required")]
    ClientCertificateRequired,
}

impl AuthError {
    /// A short, stable reason code for audit records, metrics and logs
    /// (`signature`, `unknown_kid`, `audience`, `issuer_unavailable`, …).
    /// Not for the client: [`crate::Authenticator::challenge`] says only
    /// `invalid_token` and a generic description.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed => "malformed",
            AuthError::Invalid(code) => code,
            AuthError::Expired => "expired",
            AuthError::InsufficientScope(_) => "insufficient_scope",
            AuthError::DpopRequired => "dpop_required",
            AuthError::DpopInvalid(code) => code,
            AuthError::UseDpopNonce(_) => "use_dpop_nonce",
            AuthError::Unavailable => "unavailable",
            AuthError::ReplayCacheUnavailable => "replay_cache_unavailable",
            AuthError::ClientCertificateRequired => "client_certificate_required",
        }
    }
}

/// A refused credential, and what the token said about itself when it
/// parsed far enough (a compact JWS whose header and claims decode): the
/// facts an audit record of the refusal needs to be useful. For the log and
/// the audit trail only; the client gets [`crate::Authenticator::challenge`].
///
/// The facts are *claims*: a refused token may be forged, so they say what
/// the caller presented, not who it is. They never hold the token, its
/// signature or any secret: text is cut to [`AuthFailure::MAX_FACT_CHARS`]
/// characters with control characters replaced, and the `jti` is only
/// present as a hash. `None` where the token did not get that far (not a
/// JWS, an API key, no credential) or lacks the claim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
#[non_exhaustive]
pub struct AuthFailure {
    /// Why: the error to answer with ([`crate::Authenticator::challenge`]);
    /// its [`AuthError::code`] is the reason code ([`AuthFailure::reason`]).
    pub error: AuthError,
    /// The `iss` claim, as presented (truncated).
    pub issuer: Option<String>,
    /// The `kid` header parameter (truncated).
    pub kid: Option<String>,
    /// The claimed subject (truncated): the claim the issuer's `claims.subject`
    /// names (`sub` by default, and for unknown issuers).
    pub subject: Option<String>,
    /// SHA-256 of the `jti` claim, lower-case hex of its first 16 bytes
    /// (32 characters): lets records of the same token be matched without
    /// storing its identifier.
    pub jti_hash: Option<String>,
}

impl AuthFailure {
    /// Longest `issuer`, `kid` or `subject` kept, in characters.
    pub const MAX_FACT_CHARS: usize = 128;

    /// The audit reason code ([`AuthError::code`]).
    #[must_use]
    pub fn reason(&self) -> &'static str {
        self.error.code()
    }

    /// The error alone, for [`crate::Authenticator::challenge`].
    #[must_use]
    pub fn into_error(self) -> AuthError {
        self.error
    }
}

impl From<AuthError> for AuthFailure {
    fn from(error: AuthError) -> Self {
        AuthFailure {
            error,
            issuer: None,
            kid: None,
            subject: None,
            jti_hash: None,
        }
    }
}

/// Why the last attempt to fetch an issuer's metadata or keys failed. A
/// fixed class for readiness endpoints and metric labels; the details (URL,
/// cause) are logged, never exposed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IssuerErrorClass {
    /// No connection: refused, reset, unreachable, or the name did not
    /// resolve.
    Connect,
    /// No complete answer within the fetch timeout.
    Timeout,
    /// The egress policy refused the address (a discovered `jwks_uri`, or a
    /// name resolving to a forbidden range).
    EgressRefused,
    /// An HTTP status other than success (404 for the JWKS, or for both
    /// discovery locations).
    HttpStatus,
    /// A document that cannot be used: not JSON, too large, an `issuer`
    /// that is not exactly ours, no `jwks_uri`, no usable signature key.
    InvalidDocument,
}

impl IssuerErrorClass {
    /// A short, stable code (`connect`, `timeout`, `egress_refused`,
    /// `http_status`, `invalid_document`) for metrics and readiness output.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            IssuerErrorClass::Connect => "connect",
            IssuerErrorClass::Timeout => "timeout",
            IssuerErrorClass::EgressRefused => "egress_refused",
            IssuerErrorClass::HttpStatus => "http_status",
            IssuerErrorClass::InvalidDocument => "invalid_document",
        }
    }
}

impl std::fmt::Display for IssuerErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Errors outside the request path: starting the [`crate::Authenticator`]
/// (fetching keys), reading or writing key stores and the development
/// issuer's key. Meant for the operator; they never hold a secret or a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A JWKS or discovery document could not be fetched or used.
    #[error("issuer {issuer}: {reason}")]
    Issuer { issuer: String, reason: String },
    /// The egress policy refused a URL (private, link-local, loopback…).
    #[error("egress refused for {url}: {reason}")]
    Egress { url: String, reason: &'static str },
    /// A file of ours (key store, secret, development key) could not be used.
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    /// An argument was out of range (a principal name, a role).
    #[error("{0}")]
    Invalid(String),
    /// TLS listener material (certificate chain, key, client CAs) could not
    /// be used. `path` is the configuration key (`tls.key`); `reason`
    /// never holds key material.
    #[error("{path}: {reason}")]
    Tls { path: String, reason: String },
    /// Signing failed (development issuer).
    #[error("signing failed: {0}")]
    Signing(&'static str),
}

impl IdentityError {
    pub(crate) fn file(path: &std::path::Path, reason: impl std::fmt::Display) -> Self {
        IdentityError::File {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}
