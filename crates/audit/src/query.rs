//! Reading the trail: `warden audit query` (SQLite) and `warden audit tail`
//! (JSONL, following rotation).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};

use crate::error::AuditError;
use crate::event::{Decision, Event, EventKind, Timestamp};
use crate::record::Record;

/// What to select. Every field narrows; the default selects everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Principal subject.
    pub principal: Option<String>,
    pub tenant: Option<String>,
    pub server: Option<String>,
    /// Tool name as the upstream names it, or the exposed `server__tool`.
    pub tool: Option<String>,
    pub decision: Option<Decision>,
    pub kind: Option<EventKind>,
    pub correlation_id: Option<String>,
    pub session: Option<String>,
    /// Inclusive.
    pub since: Option<Timestamp>,
    /// Exclusive.
    pub until: Option<Timestamp>,
    /// Most records returned (newest kept when `newest_first`).
    pub limit: Option<usize>,
    pub newest_first: bool,
}

impl Filter {
    /// Parses a decision name (`allow`, `deny`, `hold`) for CLI flags.
    pub fn parse_decision(text: &str) -> Option<Decision> {
        Decision::parse(text)
    }
}

/// A stored record as read back: its place in the chain and whether its
/// hash still matches its content.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub seq: u64,
    pub hash: String,
    pub event: Event,
    /// False if the stored line was modified after it was written.
    pub intact: bool,
}

/// The events matching `filter`, oldest first (newest first with
/// `newest_first`). Opens the database read-only.
pub fn query(sqlite: &Path, filter: &Filter) -> Result<Vec<Event>, AuditError> {
    Ok(query_records(sqlite, filter)?
        .into_iter()
        .map(|r| r.event)
        .collect())
}

/// [`query`] with each record's seq, hash and integrity.
pub fn query_records(sqlite: &Path, filter: &Filter) -> Result<Vec<StoredRecord>, AuditError> {
    let conn = Connection::open_with_flags(
        sqlite,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| AuditError::Query(format!("{}: {e}", sqlite.display())))?;
    let mut sql = String::from("SELECT seq, hash, record FROM audit_records WHERE 1=1");
    let mut args: Vec<SqlValue> = Vec::new();
    let mut eq = |sql: &mut String, column: &str, value: &Option<String>| {
        if let Some(v) = value {
            args.push(SqlValue::Text(v.clone()));
            sql.push_str(&format!(" AND {column} = ?{}", args.len()));
        }
    };
    eq(&mut sql, "subject", &filter.principal);
    eq(&mut sql, "tenant", &filter.tenant);
    eq(&mut sql, "correlation_id", &filter.correlation_id);
    eq(&mut sql, "session", &filter.session);
    eq(
        &mut sql,
        "decision",
        &filter.decision.map(|d| d.as_str().to_owned()),
    );
    eq(
        &mut sql,
        "kind",
        &filter.kind.map(|k| k.as_str().to_owned()),
    );
    // `server__tool` is the exposed name: split it when no server is given.
    let (server, tool) = match (&filter.server, &filter.tool) {
        (None, Some(t)) => match t.split_once("__") {
            Some((s, rest)) => (Some(s.to_owned()), Some(rest.to_owned())),
            None => (None, Some(t.clone())),
        },
        (s, t) => (s.clone(), t.clone()),
    };
    eq(&mut sql, "server", &server);
    eq(&mut sql, "tool", &tool);
    if let Some(since) = filter.since {
        args.push(SqlValue::Integer(since.unix_nanos()));
        sql.push_str(&format!(" AND time_ns >= ?{}", args.len()));
    }
    if let Some(until) = filter.until {
        args.push(SqlValue::Integer(until.unix_nanos()));
        sql.push_str(&format!(" AND time_ns < ?{}", args.len()));
    }
    sql.push_str(if filter.newest_first {
        " ORDER BY seq DESC"
    } else {
        " ORDER BY seq ASC"
    });
    if let Some(limit) = filter.limit {
        sql.push_str(&format!(" LIMIT {}", limit.min(i64::MAX as usize)));
    }
    let q = |e: rusqlite::Error| AuditError::Query(e.to_string());
    let mut stmt = conn.prepare(&sql).map_err(q)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(q)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, hash, line) = row.map_err(q)?;
        let intact = Record::parse(&line).is_ok_and(|r| r.hash_hex() == hash);
        let event_text = crate::record::parse_line(&line)
            .map(|p| p.event)
            .map_err(|e| AuditError::Query(format!("record {seq}: {e}")))?;
        let event: Event = serde_json::from_str(event_text)
            .map_err(|e| AuditError::Query(format!("record {seq}: {e}")))?;
        out.push(StoredRecord {
            seq: u64::try_from(seq).unwrap_or(0),
            hash,
            event,
            intact,
        });
    }
    Ok(out)
}

/// How [`tail`] starts and whether it follows.
#[derive(Debug, Clone, Copy)]
pub struct TailOptions {
    /// Start with the last `last` records of the active file.
    pub last: usize,
    /// Keep waiting for new records (`tail -f`), across rotation.
    pub follow: bool,
    /// How often to look for new data while following.
    pub poll: Duration,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            last: 10,
            follow: false,
            poll: Duration::from_millis(200),
        }
    }
}

/// Reads records from the active JSONL file `active`: the last few, then
/// (with `follow`) every new one as it is written, reopening the file when
/// the writer rotates it. A blocking iterator; each item is a record whose
/// hash was checked, or the error for a line that is not one.
pub fn tail(active: &Path, options: TailOptions) -> Result<Tail, AuditError> {
    let mut file = File::open(active).map_err(|e| AuditError::io(active, e))?;
    let meta = file.metadata().map_err(|e| AuditError::io(active, e))?;
    let start = start_of_last_lines(&mut file, meta.len(), options.last)
        .map_err(|e| AuditError::io(active, e))?;
    file.seek(SeekFrom::Start(start))
        .map_err(|e| AuditError::io(active, e))?;
    Ok(Tail {
        path: active.to_owned(),
        file,
        inode: meta.ino(),
        pending: Vec::new(),
        ready: Vec::new(),
        options,
        line: 0,
    })
}

pub struct Tail {
    path: PathBuf,
    file: File,
    inode: u64,
    pending: Vec<u8>,
    ready: Vec<Vec<u8>>,
    options: TailOptions,
    line: u64,
}

impl Tail {
    /// Reads what is there; returns whether anything new arrived.
    fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 64 * 1024];
        let mut any = false;
        loop {
            let n = self.file.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            any = true;
            self.pending.extend_from_slice(&chunk[..n]);
        }
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            self.ready.push(line);
        }
        Ok(any)
    }

    /// After the old file is read to its end: switch if the path now names
    /// a new file (rotation).
    fn reopen_if_rotated(&mut self) -> std::io::Result<bool> {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return Ok(false);
        };
        if meta.ino() == self.inode {
            return Ok(false);
        }
        self.file = File::open(&self.path)?;
        self.inode = meta.ino();
        self.pending.clear();
        self.line = 0;
        Ok(true)
    }
}

impl Iterator for Tail {
    type Item = Result<Record, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if !self.ready.is_empty() {
                let raw = self.ready.remove(0);
                self.line += 1;
                let text =
                    String::from_utf8_lossy(raw.strip_suffix(b"\n").unwrap_or(&raw)).into_owned();
                return Some(Record::parse(&text).map_err(|e| AuditError::Journal {
                    path: self.path.clone(),
                    line: self.line,
                    reason: e.to_string(),
                }));
            }
            match self.fill() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return Some(Err(AuditError::io(&self.path, e))),
            }
            if !self.options.follow {
                return None;
            }
            match self.reopen_if_rotated() {
                Ok(true) => continue,
                Ok(false) => std::thread::sleep(self.options.poll),
                Err(e) => return Some(Err(AuditError::io(&self.path, e))),
            }
        }
    }
}

/// Offset where the last `n` complete lines begin.
fn start_of_last_lines(file: &mut File, len: u64, n: usize) -> std::io::Result<u64> {
    if n == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut newlines = 0usize;
    let mut chunk = vec![0u8; 64 * 1024];
    // The final newline ends the last line; we need n + 1 newlines back.
    while pos > 0 {
        let start = pos.saturating_sub(chunk.len() as u64);
        let size = (pos - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..size])?;
        for i in (0..size).rev() {
            if chunk[i] == b'\n' {
                newlines += 1;
                if newlines == n + 1 {
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        pos = start;
    }
    Ok(0)
}
