//! The local journal: what makes "never lost" true.
//!
//! Two kinds of file in the journal directory:
//!
//! - `wal.jsonl` — the writer's write-ahead log. Every chained record is
//!   appended here (one write per batch) *before* any sink sees it, and
//!   fsync'd before a `record_durable` caller is answered. It is compacted
//!   at sync points (after every sink has made its copy durable) down to
//!   the records some sink still lacks plus the last record, which anchors
//!   the chain head even when no sink can say it.
//! - `spill-<gen>.jsonl` — events that found the queue full, appended by
//!   the caller's thread (unchained: seq and hashes are the writer's to
//!   give). The writer swaps to a new generation, chains the old file's
//!   events, fsyncs them into the WAL and only then deletes the file. WAL
//!   lines of spilled events carry the spill id until the next compaction,
//!   so recovery after a crash between those steps does not chain an event
//!   twice.
//!
//! At start the writer replays WAL records a sink lacks, chains every
//! spilled event not yet in the WAL, and compacts.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::AuditError;
use crate::event::Event;
use crate::record::{parse_line, to_safe_json, Record};
use crate::sink::jsonl::{repair_torn_tail, sync_dir};

const WAL: &str = "wal.jsonl";

/// One WAL line.
#[derive(Debug, Clone)]
pub(crate) struct WalEntry {
    pub spill_id: Option<String>,
    pub record: Record,
}

pub(crate) struct Wal {
    path: PathBuf,
    file: File,
    /// Bytes appended since the last compaction.
    pub grown: u64,
}

impl Wal {
    /// Opens the WAL, cutting a torn last line, and returns what it holds.
    pub fn open(dir: &Path) -> Result<(Wal, Vec<WalEntry>), AuditError> {
        fs::create_dir_all(dir).map_err(|e| AuditError::io(dir, e))?;
        let path = dir.join(WAL);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| AuditError::io(&path, e))?;
        repair_torn_tail(&mut file).map_err(|e| AuditError::io(&path, e))?;
        let entries = read_wal(&path)?;
        Ok((
            Wal {
                path,
                file,
                grown: 0,
            },
            entries,
        ))
    }

    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    pub fn append(&mut self, bytes: &[u8], sync: bool) -> Result<(), AuditError> {
        self.file
            .write_all(bytes)
            .map_err(|e| AuditError::io(&self.path, e))?;
        self.grown += bytes.len() as u64;
        if sync {
            self.file
                .sync_data()
                .map_err(|e| AuditError::io(&self.path, e))?;
        }
        Ok(())
    }

    /// Records with `seq > after`, for a sink catching up.
    pub fn records_after(&self, after: u64) -> Result<Vec<Record>, AuditError> {
        Ok(read_wal(&self.path)?
            .into_iter()
            .map(|e| e.record)
            .filter(|r| r.seq > after)
            .collect())
    }

    /// Rewrites the WAL to the records with `seq > keep_after` plus the
    /// last record, without spill ids. Atomic: temp file, fsync, rename.
    pub fn compact(&mut self, keep_after: u64) -> Result<(), AuditError> {
        let text = fs::read_to_string(&self.path).map_err(|e| AuditError::io(&self.path, e))?;
        // Our own lines, verified when the WAL was opened: the seq is enough.
        let lines: Vec<(u64, &str)> = text
            .lines()
            .filter_map(|l| {
                let record = l.split_once('\t').map_or(l, |(_, r)| r);
                parse_line(record).ok().map(|p| (p.seq, record))
            })
            .collect();
        let last_seq = lines.last().map(|(seq, _)| *seq);
        let mut out = Vec::new();
        for (seq, line) in &lines {
            if *seq > keep_after || Some(*seq) == last_seq {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
        self.replace_with(&out)
    }

    /// Rewrites the WAL to one line: the newest record (every sink has the rest).
    pub fn reset_to(&mut self, last_line: &str) -> Result<(), AuditError> {
        let mut out = Vec::with_capacity(last_line.len() + 1);
        out.extend_from_slice(last_line.as_bytes());
        out.push(b'\n');
        self.replace_with(&out)
    }

    fn replace_with(&mut self, out: &[u8]) -> Result<(), AuditError> {
        let tmp = self.path.with_extension("jsonl.tmp");
        let io = |p: &Path| {
            let p = p.to_owned();
            move |e| AuditError::io(p, e)
        };
        {
            let mut f = File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(out).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        sync_dir(&self.path)?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        self.grown = 0;
        Ok(())
    }
}

pub(crate) fn wal_line(buf: &mut Vec<u8>, spill_id: Option<&str>, record: &Record) {
    if let Some(id) = spill_id {
        buf.push(b'S');
        buf.extend_from_slice(id.as_bytes());
        buf.push(b'\t');
    }
    buf.extend_from_slice(record.line.as_bytes());
    buf.push(b'\n');
}

fn read_wal(path: &Path) -> Result<Vec<WalEntry>, AuditError> {
    let file = File::open(path).map_err(|e| AuditError::io(path, e))?;
    let mut out: Vec<WalEntry> = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line_no = i as u64 + 1;
        let corrupt = |reason: String| AuditError::Journal {
            path: path.to_owned(),
            line: line_no,
            reason,
        };
        let line = line.map_err(|e| corrupt(e.to_string()))?;
        let (spill_id, text) = match line.strip_prefix('S') {
            Some(rest) => match rest.split_once('\t') {
                Some((id, text)) => (Some(id.to_owned()), text),
                None => return Err(corrupt("malformed spill id".into())),
            },
            None => (None, line.as_str()),
        };
        let record = Record::parse(text).map_err(|e| corrupt(e.to_string()))?;
        if let Some(prev) = out.last() {
            if record.seq != prev.record.seq + 1 || record.prev != prev.record.hash {
                return Err(corrupt(format!(
                    "record {} does not follow record {}",
                    record.seq, prev.record.seq
                )));
            }
        }
        out.push(WalEntry { spill_id, record });
    }
    Ok(out)
}

/// Spill ids present in WAL entries.
pub(crate) fn spill_ids(entries: &[WalEntry]) -> HashSet<String> {
    entries.iter().filter_map(|e| e.spill_id.clone()).collect()
}

// ----- spill ------------------------------------------------------------------

pub(crate) struct Spill {
    dir: PathBuf,
    state: Mutex<SpillState>,
    pending: AtomicBool,
}

struct SpillState {
    generation: u64,
    next: u64,
    file: Option<File>,
}

impl Spill {
    pub fn new(dir: &Path) -> Spill {
        // Generations start from the clock so ids never repeat across runs.
        let generation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        Spill {
            dir: dir.to_owned(),
            state: Mutex::new(SpillState {
                generation,
                next: 0,
                file: None,
            }),
            pending: AtomicBool::new(false),
        }
    }

    fn path_of(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("spill-{generation:020}.jsonl"))
    }

    /// Appends one event; with `durable`, returns after it is fsync'd.
    pub fn append(&self, event: &Event, durable: bool) -> Result<(), AuditError> {
        let json = to_safe_json(event);
        let synced_file = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let path = self.path_of(st.generation);
            let created = st.file.is_none();
            if created {
                let f = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&path)
                    .map_err(|e| AuditError::io(&path, e))?;
                st.file = Some(f);
            }
            let id = format!("{}:{}", st.generation, st.next);
            st.next += 1;
            let mut line = Vec::with_capacity(json.len() + id.len() + 2);
            line.extend_from_slice(id.as_bytes());
            line.push(b'\t');
            line.extend_from_slice(json.as_bytes());
            line.push(b'\n');
            let file = st.file.as_mut().ok_or(AuditError::Closed)?;
            if let Err(e) = file.write_all(&line) {
                // A partial line may be left: continue in a fresh file so it
                // stays the (ignored) last line of this one.
                st.file = None;
                st.generation += 1;
                st.next = 0;
                return Err(AuditError::io(&path, e));
            }
            self.pending.store(true, Ordering::Release);
            if created && durable {
                sync_dir(&path)?;
            }
            match durable {
                true => Some((
                    file.try_clone().map_err(|e| AuditError::io(&path, e))?,
                    path,
                )),
                false => None,
            }
        };
        // fsync outside the lock: other spillers do not wait for our disk.
        if let Some((file, path)) = synced_file {
            file.sync_data().map_err(|e| AuditError::io(&path, e))?;
        }
        Ok(())
    }

    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Starts a new generation and returns the finished file, if any.
    pub fn take(&self) -> Option<PathBuf> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.pending.store(false, Ordering::Release);
        st.file.take()?;
        let done = self.path_of(st.generation);
        st.generation += 1;
        st.next = 0;
        Some(done)
    }

    /// Spill files left in `dir`, oldest first.
    pub fn existing(dir: &Path) -> Result<Vec<PathBuf>, AuditError> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(AuditError::io(dir, e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with("spill-") && name.ends_with(".jsonl") {
                out.push(dir.join(name));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The events of a spill file; a torn last line (a spill cut by a
    /// crash, never acknowledged) is ignored.
    pub fn read(path: &Path) -> Result<Vec<(String, Event)>, AuditError> {
        let bytes = fs::read(path).map_err(|e| AuditError::io(path, e))?;
        let complete = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(i) => &bytes[..=i],
            None => &[][..],
        };
        let mut out = Vec::new();
        for (i, line) in complete.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let corrupt = |reason: &str| AuditError::Journal {
                path: path.to_owned(),
                line: i as u64 + 1,
                reason: reason.to_owned(),
            };
            let text = std::str::from_utf8(line).map_err(|_| corrupt("not UTF-8"))?;
            let (id, json) = text
                .split_once('\t')
                .ok_or_else(|| corrupt("no spill id"))?;
            let event: Event = serde_json::from_str(json).map_err(|e| corrupt(&e.to_string()))?;
            out.push((id.to_owned(), event));
        }
        Ok(out)
    }

    pub fn remove(path: &Path) -> Result<(), AuditError> {
        match fs::remove_file(path) {
            Ok(()) => sync_dir(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(AuditError::io(path, e)),
        }
    }
}
