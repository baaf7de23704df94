//! Errors of [`crate::PolicyEngine::compile`]. Settings problems are found
//! earlier, by [`crate::RawAuthorization::resolve`], as `(path, message)`
//! pairs.

/// Why a policy set could not be compiled. The running set (if any) stays in
/// force; the message is safe to log and show to operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The catalog is inconsistent (`path` is within the catalog, e.g.
    /// `servers[2].tools[0]`).
    #[error("{path}: {message}")]
    Catalog { path: String, message: String },
    /// A role grant, approval rule or scope names a server that is not
    /// configured.
    #[error("{path}: server {server:?} is not configured")]
    UnknownServer { path: String, server: String },
    /// The schema (shipped text plus generated arguments) did not build.
    #[error("schema: {0}")]
    Schema(String),
    /// A generated policy did not parse: a bug in Warden, reported rather
    /// than ignored.
    #[error("generated policy {policy:?}: {message}")]
    Generated { policy: String, message: String },
    /// Two policies share an id.
    #[error("policy id {policy:?} is used twice")]
    DuplicateId { policy: String },
    /// An annotation Warden reads is misused.
    #[error("policy {policy:?}: {message}")]
    Annotation { policy: String, message: String },
    /// A policy fails strict validation against the schema.
    #[error("policy {policy:?} does not validate: {message}")]
    Validation { policy: String, message: String },
}
