//! Errors of the guard crate. Request-path outcomes are verdicts, not
//! errors: these are the ways building a [`crate::Guard`] can fail.

/// Why a [`crate::Guard`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The built-in detector patterns did not compile (a bug in this crate,
    /// caught by its tests).
    #[error("detector patterns failed to compile: {0}")]
    Patterns(String),
    /// A schema handed to [`crate::Guard::precompile`] is unusable.
    #[error("input schema is unusable: {0}")]
    Schema(String),
}
