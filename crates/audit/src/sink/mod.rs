//! Where chained records go. The [`AuditSink`] trait is the seam: the
//! writer hands every sink the same records, in order, each exactly once
//! (a sink that failed is brought up to date from the journal before it
//! gets new ones).

pub mod jsonl;
pub mod postgres;
pub mod sqlite;
pub mod stdout;

use crate::error::AuditError;
use crate::event::Event;
use crate::record::Record;

/// A chained record and the fields sinks index it by.
#[derive(Debug, Clone)]
pub struct Entry {
    pub record: Record,
    pub index: IndexFields,
}

impl Entry {
    pub(crate) fn new(record: Record, event: &Event) -> Entry {
        Entry {
            record,
            index: IndexFields::of(event),
        }
    }

    /// For records read back from the journal.
    pub(crate) fn from_record(record: Record) -> Entry {
        let index = record
            .event()
            .map(|e| IndexFields::of(&e))
            .unwrap_or_default();
        Entry { record, index }
    }
}

/// Columns of the SQL sinks, taken from the event.
#[derive(Debug, Clone, Default)]
pub struct IndexFields {
    pub time_ns: i64,
    pub kind: String,
    pub subject: Option<String>,
    pub tenant: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub decision: Option<String>,
    pub correlation_id: Option<String>,
    pub session: Option<String>,
}

impl IndexFields {
    fn of(e: &Event) -> IndexFields {
        IndexFields {
            time_ns: e.time.unix_nanos(),
            kind: e.kind.as_str().to_owned(),
            subject: e.principal.as_ref().map(|p| p.subject.clone()),
            tenant: e.principal.as_ref().and_then(|p| p.tenant.clone()),
            server: e.server.clone(),
            tool: e.tool.clone(),
            decision: e.decision.map(|d| d.as_str().to_owned()),
            correlation_id: e.correlation_id.clone(),
            session: e.session.clone(),
        }
    }
}

/// A destination for chained records.
///
/// Called only from the writer thread, so implementations may block
/// (file I/O, a synchronous database client).
pub trait AuditSink: Send {
    /// `jsonl`, `sqlite`, `postgres`, `stdout`, … (metrics and errors).
    fn name(&self) -> &'static str;

    /// The last record this sink holds: `(seq, hash)`. Read once at start
    /// to find the chain head and what to replay from the journal.
    /// `None` for an empty sink.
    fn last(&mut self) -> Result<Option<(u64, [u8; 32])>, AuditError>;

    /// Appends records (consecutive, continuing after the last one).
    fn write(&mut self, entries: &[Entry]) -> Result<(), AuditError>;

    /// Makes everything written durable (fsync, commit, checkpoint).
    fn sync(&mut self) -> Result<(), AuditError>;

    /// Whether this sink keeps records the writer can count on (and so
    /// must be caught up after a failure). Stdout does not.
    fn keeps_records(&self) -> bool {
        true
    }

    /// Whether the sink wants to start a new file; the writer then writes
    /// a checkpoint (ending the current file) and calls [`AuditSink::rotate`].
    fn wants_rotation(&self) -> bool {
        false
    }

    fn rotate(&mut self) -> Result<(), AuditError> {
        Ok(())
    }

    /// Called before retrying a sink that failed (reconnect, reopen).
    fn reset(&mut self) -> Result<(), AuditError> {
        Ok(())
    }
}
