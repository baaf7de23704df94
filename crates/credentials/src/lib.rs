//! Upstream credentials: what Warden presents to an upstream instead of
//! the client's token, which never leaves Warden.
//!
//! - [`Minter`]: request-scoped JWTs Warden signs per call (`aud` the
//!   upstream, `sub` the caller, `act` Warden and the client, `scope` what
//!   the call needs, `mcp_call` the call itself, `exp` ≤ 60 s), with its
//!   rotating keys published as a JWKS ([`JWKS_PATH`]).
//! - [`Exchanger`]: RFC 8693 token exchange of the caller's token for one
//!   whose audience is the upstream, cached per principal, upstream and
//!   scope until shortly before it expires.
//! - [`GrantStore`]: per-user OAuth grants (refresh tokens) encrypted at
//!   rest.
//! - [`oauth`]: per-user OAuth to remote servers (`mode: oauth`):
//!   discovery from the upstream's 401, authorization code + PKCE, and
//!   [`UserTokens`], each user's access token refreshed from their grant.
//!
//! The gateway's credentials stage (stage 9) decides which credential a
//! call gets; this crate knows nothing of sessions or HTTP servers.
//!
//! Invariants: a token or secret never appears in an error, a `Debug`
//! output or a log line; a minted token names exactly one audience.
#![forbid(unsafe_code)]

mod error;
mod exchange;
mod mint;
pub mod oauth;
mod settings;
mod store;

pub use error::CredentialError;
pub use exchange::{ExchangeClient, ExchangeRequest, Exchanger, Obtained, SubjectToken};
pub use mint::{CallBinding, Grant, Minted, Minter};
pub use oauth::{Egress, OAuthClient, UserTokens};
pub use settings::{
    Algorithm, IssuerSettings, RawGrantStore, RawIssuer, DEFAULT_ROTATE_EVERY, DEFAULT_TOKEN_TTL,
    JWKS_PATH, MAX_TOKEN_TTL,
};
pub use store::{GrantStore, UserGrant};
