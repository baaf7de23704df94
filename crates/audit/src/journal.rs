//! The local journal: what makes "never lost" true, and what every
//! secondary sink is fed from.
//!
//! Two kinds of file in the journal directory:
//!
//! - `wal-<first seq, 20 digits>.jsonl` — the write-ahead log, in
//!   segments. Every chained record is appended to the newest segment (one
//!   write per batch) *before* any sink sees it; it is fsync'd before a
//!   `record_durable` caller is answered, and at most `async_commit` after
//!   an `async` record was appended (group commit). Secondary sinks
//!   (SQLite, PostgreSQL, stdout) read the segments — only what is
//!   fsync'd — on their own threads ([`JournalReader`]). A segment is
//!   deleted once every sink that keeps records holds all of it durably;
//!   the newest segment always stays, so the chain head survives even
//!   when no sink can say it. Nothing is rewritten in place.
//! - `spill-<gen>.jsonl` — events that found the queue full, appended by
//!   the caller's thread (unchained: seq and hashes are the writer's to
//!   give). The writer swaps to a new generation, chains the old file's
//!   events, fsyncs them into the WAL and only then deletes the file. WAL
//!   lines of spilled events carry the spill id (`S<id>\t<record>`) as long
//!   as their segment exists, so recovery after a crash between those
//!   steps does not chain an event twice.
//!
//! At start the writer reads every segment (continuity checked across
//! them), replays to the JSONL file what it lacks, chains every spilled
//! event not yet in the WAL; secondary sinks catch up on their own.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::error::AuditError;
use crate::event::Event;
use crate::record::{parse_line, to_safe_json, Record};
use crate::sink::jsonl::{repair_torn_tail, sync_dir};

/// The single-file WAL of earlier versions; migrated to a segment at start.
const LEGACY_WAL: &str = "wal.jsonl";
/// A new segment is started at the first append after the newest one
/// reaches this size.
pub(crate) const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

fn segment_name(first_seq: u64) -> String {
    format!("wal-{first_seq:020}.jsonl")
}

/// Segments in `dir`, oldest first: (first seq, path).
pub(crate) fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, AuditError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(AuditError::io(dir, e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(digits) = name
            .strip_prefix("wal-")
            .and_then(|r| r.strip_suffix(".jsonl"))
        else {
            continue;
        };
        if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(seq) = digits.parse::<u64>() {
                out.push((seq, dir.join(name)));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What the journal held at start.
#[derive(Debug, Default)]
pub(crate) struct JournalSummary {
    pub first_seq: Option<u64>,
    /// The newest record: the chain head as the journal knows it.
    pub last: Option<Record>,
    /// Spill ids of WAL lines (events chained from a spill file).
    pub spill_ids: HashSet<String>,
}

pub(crate) struct Wal {
    dir: PathBuf,
    /// Oldest first: (first seq, path).
    segments: Vec<(u64, PathBuf)>,
    /// The newest segment, open for appending.
    file: Option<File>,
    size: u64,
    /// When the oldest append not yet fsync'd was made.
    unsynced_since: Option<Instant>,
}

impl Wal {
    /// Opens the journal: migrates a legacy WAL, cuts a torn last line,
    /// checks the chain across every segment, and fsyncs what it read (a
    /// crash may have left it in the page cache only).
    pub fn open(dir: &Path) -> Result<(Wal, JournalSummary), AuditError> {
        fs::create_dir_all(dir).map_err(|e| AuditError::io(dir, e))?;
        migrate_legacy(dir)?;
        let mut segs = segments(dir)?;
        // A segment created by a crashed append holds nothing: drop it (the
        // next append starts a new one under the right name).
        while let Some((_, newest)) = segs.last() {
            let empty = fs::metadata(newest)
                .map(|m| m.len() == 0)
                .map_err(|e| AuditError::io(newest, e))?;
            if !empty {
                break;
            }
            fs::remove_file(newest).map_err(|e| AuditError::io(newest, e))?;
            sync_dir(newest)?;
            segs.pop();
        }
        let mut file = None;
        let mut size = 0;
        if let Some((_, newest)) = segs.last() {
            let mut f = OpenOptions::new()
                .read(true)
                .append(true)
                .open(newest)
                .map_err(|e| AuditError::io(newest, e))?;
            size = repair_torn_tail(&mut f).map_err(|e| AuditError::io(newest, e))?;
            f.sync_all().map_err(|e| AuditError::io(newest, e))?;
            file = Some(f);
        }
        let summary = summarize(&segs)?;
        Ok((
            Wal {
                dir: dir.to_owned(),
                segments: segs,
                file,
                size,
                unsynced_since: None,
            },
            summary,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one batch whose first record is `first_seq`. On failure the
    /// segment is cut back to where it was, so no partial line stays.
    pub fn append(&mut self, bytes: &[u8], first_seq: u64) -> Result<(), AuditError> {
        if self.file.is_none() || self.size >= SEGMENT_BYTES {
            self.roll(first_seq)?;
        }
        let Some((_, path)) = self.segments.last() else {
            return Err(AuditError::Closed);
        };
        let Some(file) = self.file.as_mut() else {
            return Err(AuditError::Closed);
        };
        if let Err(e) = file.write_all(bytes) {
            let _ = file.set_len(self.size);
            return Err(AuditError::io(path, e));
        }
        self.size += bytes.len() as u64;
        self.unsynced_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Starts a new segment (the current one is made durable first).
    fn roll(&mut self, first_seq: u64) -> Result<(), AuditError> {
        self.sync()?;
        let path = self.dir.join(segment_name(first_seq));
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| AuditError::io(&path, e))?;
        sync_dir(&path)?;
        self.segments.push((first_seq, path));
        self.file = Some(file);
        self.size = 0;
        Ok(())
    }

    /// The next append starts a new segment (the journal lost records a
    /// sink holds: the chain continues past a gap, which then lies between
    /// segments).
    pub fn start_new_segment(&mut self) {
        self.size = SEGMENT_BYTES;
    }

    /// fsyncs what was appended; a no-op when nothing is pending.
    pub fn sync(&mut self) -> Result<(), AuditError> {
        if self.unsynced_since.is_none() {
            return Ok(());
        }
        if let (Some(file), Some((_, path))) = (&self.file, self.segments.last()) {
            file.sync_data().map_err(|e| AuditError::io(path, e))?;
        }
        self.unsynced_since = None;
        Ok(())
    }

    /// When the oldest append not yet fsync'd was made.
    pub fn unsynced_since(&self) -> Option<Instant> {
        self.unsynced_since
    }

    /// Deletes the segments whose every record has `seq <= keep_after`,
    /// the newest segment excepted. Returns how many went.
    pub fn release_through(&mut self, keep_after: u64) -> Result<usize, AuditError> {
        let mut gone = 0;
        while self.segments.len() > 1 {
            let next_first = self.segments[1].0;
            if next_first.saturating_sub(1) > keep_after {
                break;
            }
            let (_, path) = self.segments.remove(0);
            match fs::remove_file(&path) {
                Ok(()) => gone += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(AuditError::io(&path, e)),
            }
        }
        if gone > 0 {
            // (sync_dir syncs the directory a path is in.)
            sync_dir(&self.dir.join(LEGACY_WAL))?;
        }
        Ok(gone)
    }
}

/// One WAL line: the record, prefixed with its spill id for an event that
/// came from a spill file.
pub(crate) fn wal_line(buf: &mut Vec<u8>, spill_id: Option<&str>, record: &Record) {
    if let Some(id) = spill_id {
        buf.push(b'S');
        buf.extend_from_slice(id.as_bytes());
        buf.push(b'\t');
    }
    buf.extend_from_slice(record.line.as_bytes());
    buf.push(b'\n');
}

/// `wal.jsonl` of earlier versions becomes the first segment.
fn migrate_legacy(dir: &Path) -> Result<(), AuditError> {
    let legacy = dir.join(LEGACY_WAL);
    let mut file = match OpenOptions::new().read(true).write(true).open(&legacy) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(AuditError::io(&legacy, e)),
    };
    repair_torn_tail(&mut file).map_err(|e| AuditError::io(&legacy, e))?;
    drop(file);
    let first = {
        let f = File::open(&legacy).map_err(|e| AuditError::io(&legacy, e))?;
        let mut line = String::new();
        BufReader::new(f)
            .read_line(&mut line)
            .map_err(|e| AuditError::io(&legacy, e))?;
        let text = strip_spill_id(line.trim_end_matches('\n')).1;
        parse_line(text).ok().map(|p| p.seq)
    };
    match first {
        Some(seq) => {
            let target = dir.join(segment_name(seq));
            fs::rename(&legacy, &target).map_err(|e| AuditError::io(&target, e))?;
        }
        None => fs::remove_file(&legacy).map_err(|e| AuditError::io(&legacy, e))?,
    }
    sync_dir(&legacy)
}

/// `S<id>\t<record>` → (Some(id), record); a plain line → (None, line).
fn strip_spill_id(line: &str) -> (Option<&str>, &str) {
    match line.strip_prefix('S').and_then(|r| r.split_once('\t')) {
        Some((id, text)) => (Some(id), text),
        None => (None, line),
    }
}

/// Reads every segment once: continuity, spill ids, first and last.
fn summarize(segs: &[(u64, PathBuf)]) -> Result<JournalSummary, AuditError> {
    let mut summary = JournalSummary::default();
    let mut prev: Option<(u64, [u8; 32])> = None;
    for (first, path) in segs {
        let file = File::open(path).map_err(|e| AuditError::io(path, e))?;
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let line_no = i as u64 + 1;
            let corrupt = |reason: String| AuditError::Journal {
                path: path.clone(),
                line: line_no,
                reason,
            };
            let line = line.map_err(|e| corrupt(e.to_string()))?;
            let (spill_id, text) = match line.strip_prefix('S') {
                Some(rest) => match rest.split_once('\t') {
                    Some((id, text)) => (Some(id), text),
                    None => return Err(corrupt("malformed spill id".into())),
                },
                None => (None, line.as_str()),
            };
            let record = Record::parse(text).map_err(|e| corrupt(e.to_string()))?;
            if line_no == 1 && record.seq != *first {
                return Err(corrupt(format!(
                    "the segment is named for seq {first} but starts at seq {}",
                    record.seq
                )));
            }
            if let Some((pseq, phash)) = prev {
                let follows = record.seq == pseq + 1 && record.prev == phash;
                if line_no == 1 && !follows && record.seq > pseq + 1 {
                    // Only between segments: the journal lost an unsynced
                    // tail (power cut) that a sink held; the chain went on
                    // from the sink.
                    tracing::warn!(target: "audit", from = pseq + 1, to = record.seq - 1,
                                   "the audit journal lacks records (held by a sink when it was written)");
                } else if !follows {
                    return Err(corrupt(format!(
                        "record {} does not follow record {pseq}",
                        record.seq
                    )));
                }
            }
            if let Some(id) = spill_id {
                summary.spill_ids.insert(id.to_owned());
            }
            summary.first_seq.get_or_insert(record.seq);
            prev = Some((record.seq, record.hash));
            summary.last = Some(record);
        }
    }
    Ok(summary)
}

// ----- reading ----------------------------------------------------------------

/// Sequential reads of the journal by seq, for a sink catching up. Holds
/// its place between calls, so following the journal costs only the new
/// bytes. Reads only complete lines, and only up to the seq it is given
/// (the fsync'd head), never what a crash could take back.
pub(crate) struct JournalReader {
    dir: PathBuf,
    cursor: Option<Cursor>,
}

struct Cursor {
    segment_first: u64,
    path: PathBuf,
    reader: BufReader<File>,
    /// Bytes of a line not complete yet.
    partial: Vec<u8>,
    /// Seq of the last record consumed (returned or skipped).
    last: u64,
    /// A record read beyond what was asked for.
    peeked: Option<Record>,
}

impl JournalReader {
    pub fn new(dir: &Path) -> JournalReader {
        JournalReader {
            dir: dir.to_owned(),
            cursor: None,
        }
    }

    /// Up to `max` records with `after < seq <= upto`, in order. When the
    /// journal no longer holds `after + 1` (its segment was released), the
    /// first record returned is the oldest it holds beyond `after`.
    pub fn read(&mut self, after: u64, upto: u64, max: usize) -> Result<Vec<Record>, AuditError> {
        let mut out = Vec::new();
        if upto <= after || max == 0 {
            return Ok(out);
        }
        if self.cursor.as_ref().is_none_or(|c| c.last != after) {
            self.seek(after)?;
        }
        while out.len() < max {
            let Some(record) = self.next_record()? else {
                break;
            };
            let Some(cursor) = self.cursor.as_mut() else {
                break;
            };
            if record.seq <= after {
                cursor.last = record.seq;
                continue;
            }
            if record.seq > upto {
                cursor.peeked = Some(record);
                break;
            }
            cursor.last = record.seq;
            out.push(record);
        }
        Ok(out)
    }

    /// Places the cursor at the start of the segment holding `after + 1`.
    fn seek(&mut self, after: u64) -> Result<(), AuditError> {
        self.cursor = None;
        let segs = segments(&self.dir)?;
        let chosen = segs
            .iter()
            .rev()
            .find(|(first, _)| *first <= after + 1)
            .or(segs.first());
        if let Some((first, path)) = chosen {
            self.open_segment(*first, path.clone(), first.saturating_sub(1))?;
        }
        Ok(())
    }

    fn open_segment(&mut self, first: u64, path: PathBuf, last: u64) -> Result<(), AuditError> {
        let file = File::open(&path).map_err(|e| AuditError::io(&path, e))?;
        self.cursor = Some(Cursor {
            segment_first: first,
            path,
            reader: BufReader::with_capacity(256 * 1024, file),
            partial: Vec::new(),
            last,
            peeked: None,
        });
        Ok(())
    }

    /// The next complete line of the journal as a record, crossing into
    /// the next segment at the end of one.
    fn next_record(&mut self) -> Result<Option<Record>, AuditError> {
        let mut checked_for_next = false;
        loop {
            let Some(cursor) = self.cursor.as_mut() else {
                return Ok(None);
            };
            if let Some(p) = cursor.peeked.take() {
                return Ok(Some(p));
            }
            let n = cursor
                .reader
                .read_until(b'\n', &mut cursor.partial)
                .map_err(|e| AuditError::io(&cursor.path, e))?;
            if cursor.partial.last() == Some(&b'\n') {
                let line = std::mem::take(&mut cursor.partial);
                let corrupt = |reason: String| AuditError::Journal {
                    path: cursor.path.clone(),
                    line: 0,
                    reason,
                };
                let text = std::str::from_utf8(&line[..line.len() - 1])
                    .map_err(|_| corrupt("not UTF-8".into()))?;
                let record = Record::parse_trusted(strip_spill_id(text).1)
                    .map_err(|e| corrupt(e.to_string()))?;
                return Ok(Some(record));
            }
            if n > 0 {
                // More may be on its way (a batch being appended).
                continue;
            }
            // End of this segment for now. A newer segment means this one
            // is complete — read it once more, then move on.
            if checked_for_next {
                let segs = segments(&self.dir)?;
                let first = cursor.segment_first;
                let Some((next_first, next_path)) = segs.into_iter().find(|(f, _)| *f > first)
                else {
                    return Ok(None);
                };
                if !cursor.partial.is_empty() {
                    return Err(AuditError::Journal {
                        path: cursor.path.clone(),
                        line: 0,
                        reason: "a segment ends with an incomplete line".into(),
                    });
                }
                let last = cursor.last;
                self.open_segment(next_first, next_path, last)?;
                checked_for_next = false;
                continue;
            }
            let newer_exists = segments(&self.dir)?
                .iter()
                .any(|(f, _)| *f > cursor.segment_first);
            if !newer_exists {
                return Ok(None);
            }
            checked_for_next = true;
        }
    }
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
