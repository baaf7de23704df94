//! Why a credential could not be produced. No variant carries a token or a
//! secret.

/// A credential for an upstream could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    #[error("signing key: {0}")]
    Key(String),
    #[error("could not sign the token")]
    Signing,
    #[error("{0}")]
    Invalid(&'static str),
    /// Token exchange failed (what happened, never what was sent).
    #[error("token exchange: {0}")]
    Exchange(String),
    /// The encrypted grant store (a path and what failed; never content).
    #[error("grant store: {0}")]
    Store(String),
    /// Per-user OAuth (discovery, authorization, refresh): what failed.
    #[error("oauth: {0}")]
    OAuth(String),
    /// The user has no grant for this server: they must connect first.
    #[error("no grant: the user has not connected this server")]
    NoGrant,
    /// The authorization server refused the stored grant (revoked or
    /// expired): the user must connect again.
    #[error("the stored grant was refused: the user must connect again")]
    GrantRevoked,
}
