//! JSON Lines files with rotation. The chain continues across files: the
//! first record of a new file links to the last record of the previous
//! one, and every file but the active one ends with a signed checkpoint.
//!
//! Active file `<dir>/<stem>.<ext>`; rotated files
//! `<dir>/<stem>-<first seq, 12 digits>.<ext>`. Each rotated file ends with
//! a signed checkpoint, and each file the writer starts begins with one,
//! so retention can remove whole files from the oldest on
//! ([`AuditSink::retention_cut`]: beyond `rotate_keep` files, older than
//! `max_age`, or while the files exceed `max_size`) and the trail still
//! starts at a signed checkpoint.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{AuditSink, Entry, RetentionCut};
use crate::error::AuditError;
use crate::event::Timestamp;
use crate::record::{parse_line, Record};
use crate::settings::RetentionSettings;

pub struct JsonlSink {
    path: PathBuf,
    file: File,
    size: u64,
    /// Seq of the first record in the active file (for the rotated name).
    first_seq: Option<u64>,
    rotate_bytes: u64,
    rotate_keep: usize,
    buf: Vec<u8>,
}

impl JsonlSink {
    /// Opens (creating) the active file; a torn last line — a write cut by
    /// a crash, never acknowledged — is cut off.
    pub fn open(
        path: &Path,
        rotate_bytes: u64,
        rotate_keep: usize,
    ) -> Result<JsonlSink, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| AuditError::io(dir, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| AuditError::io(path, e))?;
        let size = repair_torn_tail(&mut file).map_err(|e| AuditError::io(path, e))?;
        let first_seq = first_line(path)?.and_then(|l| parse_line(&l).ok().map(|p| p.seq));
        Ok(JsonlSink {
            path: path.to_owned(),
            file,
            size,
            first_seq,
            rotate_bytes,
            rotate_keep,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    fn rotated_name(&self, first_seq: u64) -> PathBuf {
        let (stem, ext) = stem_ext(&self.path);
        self.path
            .with_file_name(format!("{stem}-{first_seq:012}{ext}"))
    }

    /// The active file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The time of the newest record of `path` (its last line), else its
/// modification time.
fn newest_time_ns(path: &Path) -> Result<Option<i64>, AuditError> {
    #[derive(serde::Deserialize)]
    struct TimeOnly {
        time: Timestamp,
    }
    if let Some(line) = last_line(path)? {
        if let Ok(p) = parse_line(&line) {
            if let Ok(t) = serde_json::from_str::<TimeOnly>(p.event) {
                return Ok(Some(t.time.unix_nanos()));
            }
        }
    }
    let modified = fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| AuditError::io(path, e))?;
    Ok(modified
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok()))
}

impl AuditSink for JsonlSink {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn last(&mut self) -> Result<Option<(u64, [u8; 32])>, AuditError> {
        let mut candidates = vec![self.path.clone()];
        candidates.extend(rotated_files(&self.path).into_iter().rev().map(|(_, p)| p));
        for path in candidates {
            if let Some(line) = last_line(&path)? {
                let record = Record::parse(&line).map_err(|e| AuditError::Sink {
                    sink: "jsonl",
                    reason: format!(
                        "the last record of {} is not valid ({e}); run `warden audit verify` and move the file aside",
                        path.display()
                    ),
                })?;
                return Ok(Some((record.seq, record.hash)));
            }
        }
        Ok(None)
    }

    fn write(&mut self, entries: &[Entry]) -> Result<(), AuditError> {
        self.buf.clear();
        for e in entries {
            self.buf.extend_from_slice(e.record.line.as_bytes());
            self.buf.push(b'\n');
        }
        self.file
            .write_all(&self.buf)
            .map_err(|e| AuditError::io(&self.path, e))?;
        self.size += self.buf.len() as u64;
        if self.first_seq.is_none() {
            self.first_seq = entries.first().map(|e| e.record.seq);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), AuditError> {
        self.file
            .sync_data()
            .map_err(|e| AuditError::io(&self.path, e))
    }

    fn wants_rotation(&self) -> bool {
        self.size >= self.rotate_bytes
    }

    fn rotate(&mut self) -> Result<(), AuditError> {
        let Some(first) = self.first_seq else {
            return Ok(());
        };
        self.sync()?;
        let target = self.rotated_name(first);
        fs::rename(&self.path, &target).map_err(|e| AuditError::io(&target, e))?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| AuditError::io(&self.path, e))?;
        sync_dir(&self.path)?;
        self.file = file;
        self.size = 0;
        self.first_seq = None;
        Ok(())
    }

    fn reset(&mut self) -> Result<(), AuditError> {
        let fresh = JsonlSink::open(&self.path, self.rotate_bytes, self.rotate_keep)?;
        *self = fresh;
        Ok(())
    }

    /// Whole rotated files, oldest first: beyond `rotate_keep`, then those
    /// whose newest record is older than `max_age`, then while the files
    /// (the active one included) exceed `max_size`. The active file stays.
    fn retention_cut(
        &mut self,
        retention: &RetentionSettings,
        now_ns: i64,
    ) -> Result<Option<RetentionCut>, AuditError> {
        let rotated = rotated_files(&self.path);
        let Some(&(oldest, _)) = rotated.first() else {
            return Ok(None);
        };
        let mut drop = 0;
        let mut reason = "";
        if self.rotate_keep > 0 && rotated.len() > self.rotate_keep {
            drop = rotated.len() - self.rotate_keep;
            reason = "rotate_keep";
        }
        if let Some(age) = retention.max_age {
            let cutoff = now_ns.saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX));
            while let Some((_, path)) = rotated.get(drop) {
                match newest_time_ns(path)? {
                    Some(t) if t < cutoff => {
                        drop += 1;
                        reason = "max_age";
                    }
                    _ => break,
                }
            }
        }
        if let Some(max) = retention.max_size {
            let mut sizes = Vec::with_capacity(rotated.len());
            for (_, p) in &rotated {
                sizes.push(fs::metadata(p).map_err(|e| AuditError::io(p, e))?.len());
            }
            let mut total: u64 = sizes[drop..].iter().sum::<u64>() + self.size;
            while total > max && drop < rotated.len() {
                total -= sizes[drop];
                drop += 1;
                reason = "max_size";
            }
        }
        if drop == 0 {
            return Ok(None);
        }
        let keep_from = match rotated.get(drop) {
            Some(&(first, _)) => first,
            // Every rotated file goes: the trail continues in the active file.
            None => match self.first_seq {
                Some(first) => first,
                None => {
                    let (_, newest) = &rotated[rotated.len() - 1];
                    match last_line(newest)?.and_then(|l| parse_line(&l).ok().map(|p| p.seq)) {
                        Some(seq) => seq + 1,
                        None => return Ok(None),
                    }
                }
            },
        };
        Ok(Some(RetentionCut {
            oldest,
            keep_from,
            reason,
        }))
    }

    fn prune(&mut self, cut: &RetentionCut) -> Result<u64, AuditError> {
        let mut removed = false;
        for (first, old) in rotated_files(&self.path) {
            if first >= cut.keep_from {
                break;
            }
            fs::remove_file(&old).map_err(|e| AuditError::io(&old, e))?;
            removed = true;
        }
        if removed {
            sync_dir(&self.path)?;
        }
        Ok(cut.records())
    }
}

/// The files of a trail whose active file is `active`, oldest first.
///
/// A rotation renames the active file and then creates the next one: a
/// listing taken between the two would end at a rotated file, and the
/// records (a retention record among them) written to the new active file
/// would be missing from it, so that the trail would look cut. Rotated files
/// without an active file are listed again until the active file is back
/// (it is, microseconds later, while Warden runs; a trail Warden no longer
/// writes is listed as it is after a few milliseconds).
pub fn files(active: &Path) -> Vec<PathBuf> {
    for attempt in 0..MID_ROTATION_ATTEMPTS {
        let mut out: Vec<PathBuf> = rotated_files(active).into_iter().map(|(_, p)| p).collect();
        if active.exists() {
            out.push(active.to_owned());
            return out;
        }
        if out.is_empty() || attempt + 1 == MID_ROTATION_ATTEMPTS {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    Vec::new()
}

/// How often [`files`] lists a trail found without its active file.
const MID_ROTATION_ATTEMPTS: usize = 50;

/// Rotated files with their first seq, in seq order.
fn rotated_files(active: &Path) -> Vec<(u64, PathBuf)> {
    let (stem, ext) = stem_ext(active);
    let dir = match active.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let prefix = format!("{stem}-");
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(&dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(middle) = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(ext.as_str()))
        else {
            continue;
        };
        if middle.len() >= 12 && middle.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(seq) = middle.parse::<u64>() {
                out.push((seq, dir.join(name)));
            }
        }
    }
    out.sort();
    out
}

fn stem_ext(path: &Path) -> (String, String) {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "audit".into());
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (stem, ext)
}

pub(crate) fn sync_dir(path: &Path) -> Result<(), AuditError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io(dir, e))
}

/// Cuts a partial last line (no trailing newline); returns the new size.
pub(crate) fn repair_torn_tail(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut pos = len;
    let mut chunk = vec![0u8; 8192];
    loop {
        let start = pos.saturating_sub(chunk.len() as u64);
        let n = (pos - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            let keep = start + i as u64 + 1;
            if keep != len {
                file.set_len(keep)?;
                file.sync_all()?;
            }
            return Ok(keep);
        }
        if start == 0 {
            file.set_len(0)?;
            file.sync_all()?;
            return Ok(0);
        }
        pos = start;
    }
}

/// The last complete line of a file, if any.
pub(crate) fn last_line(path: &Path) -> Result<Option<String>, AuditError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::io(path, e)),
    };
    let io = |e| AuditError::io(path, e);
    let len = file.metadata().map_err(io)?.len();
    let mut want: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(want);
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut tail = Vec::with_capacity((len - start) as usize);
        file.read_to_end(&mut tail).map_err(io)?;
        // Only complete lines count.
        let Some(end) = tail.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                return Ok(None);
            }
            want = want.saturating_mul(4);
            continue;
        };
        let body = &tail[..end];
        match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => return Ok(Some(String::from_utf8_lossy(&body[i + 1..]).into_owned())),
            None if start == 0 => return Ok(Some(String::from_utf8_lossy(body).into_owned())),
            None => want = want.saturating_mul(4),
        }
    }
}

fn first_line(path: &Path) -> Result<Option<String>, AuditError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::io(path, e)),
    };
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(file);
    use std::io::BufRead;
    match reader.read_line(&mut line) {
        Ok(0) => Ok(None),
        Ok(_) if line.ends_with('\n') => Ok(Some(line.trim_end_matches('\n').to_owned())),
        Ok(_) => Ok(None),
        // Not UTF-8: not ours; rotation falls back to the next record's seq.
        Err(_) => Ok(None),
    }
}
