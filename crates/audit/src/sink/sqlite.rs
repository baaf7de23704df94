//! The embedded query store: one SQLite table, the exact record line plus
//! indexed columns. WAL mode, so `warden audit query` reads while Warden
//! writes.
//!
//! rusqlite rather than sqlx: the writer is a dedicated blocking thread
//! (fsync-bound work stays off the async workers), so a synchronous driver
//! fits without a runtime inside the thread; `bundled` compiles SQLite in,
//! so no system library is needed; and the CLI's `query` is synchronous.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags};

use super::{AuditSink, Entry};
use crate::error::AuditError;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_records (
    seq            INTEGER PRIMARY KEY,
    time_ns        INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    subject        TEXT,
    tenant         TEXT,
    server         TEXT,
    tool           TEXT,
    decision       TEXT,
    correlation_id TEXT,
    session        TEXT,
    hash           TEXT NOT NULL,
    record         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (time_ns);
CREATE INDEX IF NOT EXISTS audit_records_subject ON audit_records (subject, time_ns);
CREATE INDEX IF NOT EXISTS audit_records_tool ON audit_records (tool, time_ns);
CREATE INDEX IF NOT EXISTS audit_records_decision ON audit_records (decision, time_ns);
CREATE INDEX IF NOT EXISTS audit_records_correlation ON audit_records (correlation_id);
";

pub struct SqliteSink {
    path: PathBuf,
    conn: Connection,
}

fn err(e: rusqlite::Error) -> AuditError {
    AuditError::Sink {
        sink: "sqlite",
        reason: e.to_string(),
    }
}

impl SqliteSink {
    pub fn open(path: &Path) -> Result<SqliteSink, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| AuditError::io(dir, e))?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        conn.pragma_update(None, "user_version", 1).map_err(err)?;
        Ok(SqliteSink {
            path: path.to_owned(),
            conn,
        })
    }
}

impl AuditSink for SqliteSink {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn last(&mut self) -> Result<Option<(u64, [u8; 32])>, AuditError> {
        let row: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(err(e)),
            })?;
        let Some((seq, hash_hex)) = row else {
            return Ok(None);
        };
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&hash_hex, &mut hash).map_err(|_| AuditError::Sink {
            sink: "sqlite",
            reason: format!(
                "record {seq} in {} has a malformed hash",
                self.path.display()
            ),
        })?;
        Ok(Some((u64::try_from(seq).unwrap_or(0), hash)))
    }

    fn write(&mut self, entries: &[Entry]) -> Result<(), AuditError> {
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO audit_records (seq, time_ns, kind, subject, tenant, server, tool,
                       decision, correlation_id, session, hash, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(err)?;
            for e in entries {
                let i = &e.index;
                stmt.execute(params![
                    i64::try_from(e.record.seq).unwrap_or(i64::MAX),
                    i.time_ns,
                    i.kind,
                    i.subject,
                    i.tenant,
                    i.server,
                    i.tool,
                    i.decision,
                    i.correlation_id,
                    i.session,
                    e.record.hash_hex(),
                    e.record.line,
                ])
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    fn sync(&mut self) -> Result<(), AuditError> {
        // In WAL mode with synchronous=NORMAL a commit is durable once the
        // WAL is synced; a checkpoint syncs it and the database.
        self.conn
            .query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))
            .map_err(err)
    }

    fn reset(&mut self) -> Result<(), AuditError> {
        *self = SqliteSink::open(&self.path)?;
        Ok(())
    }
}
