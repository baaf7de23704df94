//! Where chained records go. The [`AuditSink`] trait is the seam: the
//! writer hands every sink the same records, in order, each exactly once
//! (a sink that failed is brought up to date from the journal before it
//! gets new ones).

pub mod jsonl;
pub mod postgres;
pub mod sqlite;
pub mod stdout;

use serde::Deserialize;

use crate::error::AuditError;
use crate::event::{Event, Timestamp};
use crate::record::Record;
use crate::settings::RetentionSettings;

/// A chained record and the fields sinks index it by.
#[derive(Debug, Clone)]
pub struct Entry {
    pub record: Record,
    pub index: IndexFields,
}

impl Entry {
    /// A record for a sink that indexes nothing (the JSONL file).
    pub(crate) fn bare(record: Record) -> Entry {
        Entry {
            record,
            index: IndexFields::default(),
        }
    }

    /// A record the writer has just chained from `event`: the indexed
    /// fields are taken from the event itself (what
    /// [`Entry::from_record`] would read back from the record's text).
    pub(crate) fn chained(record: Record, event: &Event) -> Entry {
        Entry {
            record,
            index: IndexFields::of(event),
        }
    }

    /// For records read back from the journal: only the indexed fields
    /// are read from the event text.
    pub(crate) fn from_record(record: Record) -> Entry {
        let index = serde_json::from_str::<IndexedEvent<'_>>(record.event_text())
            .map(IndexFields::from)
            .unwrap_or_default();
        Entry { record, index }
    }
}

/// The event fields the SQL sinks index, borrowed where possible.
#[derive(Deserialize)]
struct IndexedEvent<'a> {
    time: Timestamp,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    principal: Option<IndexedPrincipal>,
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    decision: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    session: Option<String>,
}

#[derive(Deserialize)]
struct IndexedPrincipal {
    subject: String,
    #[serde(default)]
    tenant: Option<String>,
}

impl From<IndexedEvent<'_>> for IndexFields {
    fn from(e: IndexedEvent<'_>) -> IndexFields {
        let (subject, tenant) = match e.principal {
            Some(p) => (Some(p.subject), p.tenant),
            None => (None, None),
        };
        IndexFields {
            time_ns: e.time.unix_nanos(),
            kind: e.kind.into_owned(),
            subject,
            tenant,
            server: e.server,
            tool: e.tool,
            decision: e.decision,
            correlation_id: e.correlation_id,
            session: e.session,
        }
    }
}

impl IndexFields {
    fn of(e: &Event) -> IndexFields {
        let principal = e.principal.as_ref();
        IndexFields {
            time_ns: e.time.unix_nanos(),
            kind: e.kind.as_str().to_owned(),
            subject: principal.map(|p| p.subject.clone()),
            tenant: principal.and_then(|p| p.tenant.clone()),
            server: e.server.clone(),
            tool: e.tool.clone(),
            decision: e.decision.map(|d| d.as_str().to_owned()),
            correlation_id: e.correlation_id.clone(),
            session: e.session.clone(),
        }
    }
}

/// Where retention cuts a sink: every record with `seq < keep_from` goes.
/// `keep_from` is a checkpoint record's seq (JSONL: the first record of a
/// rotated file, which is one), so the pruned sink starts at a signed
/// checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionCut {
    /// The oldest record the sink holds now.
    pub oldest: u64,
    pub keep_from: u64,
    /// `max_age`, `max_size` or `rotate_keep`.
    pub reason: &'static str,
}

impl RetentionCut {
    /// Records the cut removes.
    pub fn records(&self) -> u64 {
        self.keep_from.saturating_sub(self.oldest)
    }
}

/// Columns of the SQL sinks, taken from the event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// A destination for chained records.
///
/// Called from one thread only — the writer's for the JSONL file, a
/// thread of its own for every other sink — so implementations may block
/// (file I/O, a synchronous database client); a sink that may hang must
/// bound its own calls (the PostgreSQL sink does).
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

    /// Where `retention` would cut this sink now (`now_ns`: Unix
    /// nanoseconds), or `None` when it keeps everything it holds.
    fn retention_cut(
        &mut self,
        retention: &RetentionSettings,
        now_ns: i64,
    ) -> Result<Option<RetentionCut>, AuditError> {
        let _ = (retention, now_ns);
        Ok(None)
    }

    /// Removes the records before `cut.keep_from`; returns how many went.
    /// Called only once the `retention` record announcing it is durable.
    fn prune(&mut self, cut: &RetentionCut) -> Result<u64, AuditError> {
        let _ = cut;
        Ok(0)
    }
}
