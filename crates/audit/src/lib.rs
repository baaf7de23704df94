//! Warden's audit trail: every decision recorded, hash-chained, never
//! lost, queryable.
//!
//! - [`Event`] — the versioned schema ([`SCHEMA_VERSION`]); field reference
//!   in `docs/audit-schema.md` beside this crate's `Cargo.toml`.
//! - [`AuditLog`] — the request path's handle. [`AuditLog::record`] is a
//!   bounded queue push (a full queue spills to the journal: never drops,
//!   never waits on the writer); [`AuditLog::record_durable`] returns once
//!   the record is fsync'd (group commit). A dedicated writer thread chains,
//!   journals (fsync'd at most `async_commit` after any append), writes the
//!   JSONL file, signs checkpoints, rotates, and recovers what a crash left
//!   at the next start.
//! - Sinks behind [`AuditSink`]: JSONL with rotation (the chain continues
//!   across files), SQLite (queries), PostgreSQL (clusters), stdout. Every
//!   sink but JSONL runs on a thread of its own, fed from the journal
//!   (`follower.rs`): none can hold an acknowledgement. Retention by age and
//!   size for each, announced by a chained `retention` record.
//! - [`SecretScrubber`]: the secret detector `audit.arguments: redacted`
//!   runs over argument strings, installed by the binary.
//! - Tamper evidence: each record carries the previous record's hash and
//!   its own ([`Record`]); Ed25519-signed checkpoints ([`checkpoint`]) make
//!   truncation and wholesale rewriting detectable; [`verify`] names the
//!   first broken record (file, line, seq).
//! - Reading: [`query`] (SQLite), [`tail`] (JSONL, follows rotation).
//! - Log hygiene: [`Redactor`] and its `tracing` layer.
//! - [`AnomalyDetector`]: burst, off-hours and token-reuse alerts, chained
//!   as events.
//! - [`input_hash`]: SHA-256 of the RFC 8785 canonical arguments.
//!
//! Invariants:
//! - An event accepted by `record`/`record_durable` is chained exactly once
//!   (queue → WAL, or spill → WAL, deduplicated by spill id on recovery).
//! - No sink sees a record before the WAL holds it (PostgreSQL and stdout:
//!   before it is fsync'd there); a record acknowledged by
//!   `record_durable` survives SIGKILL and power loss.
//! - No acknowledgement waits for a sink other than the journal.
//! - Records are single lines whatever the event holds: JSON escaping plus
//!   [`record::SafeFormatter`] (C1, DEL, U+2028/9, bidi, zero-width, tags).
//! - Nothing here holds a lock across an `.await`; the request path never
//!   does I/O unless the queue is full.
#![forbid(unsafe_code)]

mod anomaly;
pub mod checkpoint;
mod error;
mod event;
mod follower;
mod handoff;
mod hash;
mod journal;
mod log;
mod metrics;
mod query;
pub mod record;
mod redact;
mod retention;
mod scrub;
mod settings;
pub mod sink;
mod verify;
mod writer;

pub use anomaly::AnomalyDetector;
pub use error::AuditError;
pub use event::{
    AnomalyAlert, ApprovalFacts, Checkpoint, Decision, Event, EventKind, Lifecycle, OutputFacts,
    PrincipalFacts, RetentionFacts, RiskTier, Timestamp, TokenFacts, UpstreamCredentialFacts,
    SCHEMA_VERSION,
};
pub use hash::{canonical, input_hash};
pub use log::{AuditLog, AuditWorker};
pub use metrics::MetricsSnapshot;
pub use query::{query, query_records, tail, Filter, StoredRecord, Tail, TailOptions};
pub use record::Record;
pub use redact::{RedactingJsonLayer, Redactor, REDACTED};
pub use scrub::{scrub_value, secret_placeholder, SecretScrubber};
pub use settings::{
    AnomalySettings, ArgumentsPolicy, AuditSettings, AuthFailureLimit, BurstRule,
    CheckpointSettings, Durability, DurabilityPolicy, JsonlSettings, OffHoursRule,
    PostgresSettings, PostgresUrl, RawAge, RawAnomaly, RawAudit, RawAuthFailures, RawBurst,
    RawCheckpoint, RawDurability, RawJsonl, RawOffHours, RawPostgres, RawRetention,
    RawSinkRetention, RawSinks, RawSize, RawSqlite, RawTokenReuse, RetentionSettings,
    SettingsErrors, SqliteSettings, TokenReuseRule,
};
pub use sink::{AuditSink, RetentionCut};
pub use verify::{
    verify, verify_sqlite, verify_with, Failure, Problem, VerifyOptions, VerifyReport,
};
