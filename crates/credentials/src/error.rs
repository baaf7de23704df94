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
}
