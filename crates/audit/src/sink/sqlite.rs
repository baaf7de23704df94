//! The embedded query store: one SQLite table, the exact record line plus
//! indexed columns. WAL mode, so `warden audit query` reads while Warden
//! writes.
//!
//! rusqlite rather than sqlx: the writer is a dedicated blocking thread
//! (fsync-bound work stays off the async workers), so a synchronous driver
//! fits without a runtime inside the thread; `bundled` compiles SQLite in,
//! so no system library is needed; and the CLI's `query` is synchronous.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{AuditSink, Entry, RetentionCut};
use crate::error::AuditError;
use crate::settings::RetentionSettings;

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
CREATE INDEX IF NOT EXISTS audit_records_checkpoints ON audit_records (seq) WHERE kind = 'checkpoint';
";

/// Rows deleted per transaction when pruning: the sink keeps writing
/// between chunks.
const PRUNE_CHUNK: i64 = 20_000;

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
        // Pages freed by retention go back to the file system (a database
        // created before this setting reuses them instead).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
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

    fn retention_cut(
        &mut self,
        retention: &RetentionSettings,
        now_ns: i64,
    ) -> Result<Option<RetentionCut>, AuditError> {
        let one = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<Option<i64>, AuditError> {
            self.conn
                .query_row(sql, p, |r| r.get::<_, Option<i64>>(0))
                .optional()
                .map(Option::flatten)
                .map_err(err)
        };
        let (Some(oldest), Some(newest)) = (
            one("SELECT seq FROM audit_records ORDER BY seq LIMIT 1", &[])?,
            one(
                "SELECT seq FROM audit_records ORDER BY seq DESC LIMIT 1",
                &[],
            )?,
        ) else {
            return Ok(None);
        };
        let mut keep_from = oldest;
        let mut reason = "";
        if let Some(age) = retention.max_age {
            let cutoff = now_ns.saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX));
            // The newest record older than the cutoff, then the newest
            // checkpoint at or before it: everything before that goes.
            if let Some(old) = one(
                "SELECT seq FROM audit_records WHERE time_ns < ?1 ORDER BY time_ns DESC LIMIT 1",
                &[&cutoff],
            )? {
                if let Some(cp) = one(
                    "SELECT max(seq) FROM audit_records WHERE kind = 'checkpoint' AND seq <= ?1",
                    &[&old],
                )? {
                    if cp > keep_from {
                        keep_from = cp;
                        reason = "max_age";
                    }
                }
            }
        }
        if let Some(max) = retention.max_size {
            let pragma = |name: &str| -> Result<i64, AuditError> {
                self.conn
                    .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                    .map_err(err)
            };
            let used = (pragma("page_count")? - pragma("freelist_count")?) * pragma("page_size")?;
            let max = i64::try_from(max).unwrap_or(i64::MAX);
            if used > max {
                // Down to 90% of the limit, so it does not prune a sliver
                // at every check; rows are about the same size.
                let rows = newest - oldest + 1;
                let excess = used - max / 10 * 9;
                let remove = (rows as i128 * excess as i128 / used as i128) as i64;
                if let Some(cp) = one(
                    "SELECT min(seq) FROM audit_records WHERE kind = 'checkpoint' AND seq >= ?1",
                    &[&(oldest + remove.max(1))],
                )? {
                    if cp > keep_from {
                        keep_from = cp;
                        reason = "max_size";
                    }
                }
            }
        }
        Ok((keep_from > oldest).then(|| RetentionCut {
            oldest: u64::try_from(oldest).unwrap_or(0),
            keep_from: u64::try_from(keep_from).unwrap_or(0),
            reason,
        }))
    }

    fn prune(&mut self, cut: &RetentionCut) -> Result<u64, AuditError> {
        let keep_from = i64::try_from(cut.keep_from).unwrap_or(i64::MAX);
        let mut from = i64::try_from(cut.oldest).unwrap_or(0);
        let mut removed = 0u64;
        while from < keep_from {
            let to = (from + PRUNE_CHUNK).min(keep_from);
            removed += self
                .conn
                .execute(
                    "DELETE FROM audit_records WHERE seq >= ?1 AND seq < ?2",
                    params![from, to],
                )
                .map_err(err)? as u64;
            from = to;
        }
        // Gives freed pages back when the database was created with
        // incremental auto-vacuum (a no-op otherwise): one page per step.
        let mut stmt = self
            .conn
            .prepare("PRAGMA incremental_vacuum")
            .map_err(err)?;
        let mut steps = stmt.query([]).map_err(err)?;
        while steps.next().map_err(err)?.is_some() {}
        Ok(removed)
    }
}
