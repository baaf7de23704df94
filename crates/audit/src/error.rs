//! Errors of the audit crate. None carries a secret: paths and sink names
//! yes, a PostgreSQL URL or a key never.

use std::path::PathBuf;

/// Why the audit trail could not start, record, or be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A file or directory of the trail could not be used.
    #[error("audit file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The journal holds something that is not ours (corruption other than
    /// a torn last line). Warden refuses to start rather than lose or
    /// rewrite records.
    #[error("audit journal {path}, line {line}: {reason}")]
    Journal {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    /// A sink failed (its name: `jsonl`, `sqlite`, `postgres`, `stdout`).
    #[error("audit sink {sink}: {reason}")]
    Sink { sink: &'static str, reason: String },
    /// The checkpoint signing key or a verification key is unusable.
    #[error("audit key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    /// The settings cannot be used as they are (e.g. the PostgreSQL URL
    /// reference was not resolved by the caller).
    #[error("audit settings: {0}")]
    Settings(String),
    /// A query could not run.
    #[error("audit query: {0}")]
    Query(String),
    /// The writer has stopped (after `shutdown`, or after a fatal error it
    /// reported through `AuditWorker::wait`).
    #[error("the audit writer has stopped")]
    Closed,
}

impl AuditError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.into(),
            source,
        }
    }

    /// A short, stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            AuditError::Io { .. } => "audit_io",
            AuditError::Journal { .. } => "audit_journal_corrupt",
            AuditError::Sink { .. } => "audit_sink",
            AuditError::Key { .. } => "audit_key",
            AuditError::Settings(_) => "audit_settings",
            AuditError::Query(_) => "audit_query",
            AuditError::Closed => "audit_closed",
        }
    }
}
