//! `warden audit verify`: walk the JSONL files in order and name the first
//! record that breaks the chain, a checkpoint, or the checkpoint side file.
//!
//! What each tampering looks like here:
//! - an edited record: its hash does not match its content (or the line no
//!   longer has the exact envelope);
//! - a deleted record: the next one's seq skips (`expected seq N`);
//! - reordered records: the first one out of place has the wrong seq;
//! - an edited record with every later hash recomputed: the next signed
//!   checkpoint's signature fails, and the side file's (seq, hash) no
//!   longer matches;
//! - a cut tail: the side file names a checkpoint the log no longer reaches.
//!
//! What is *not* tampering, and is reported as what it is:
//! - history pruned by retention: the trail (or the SQL copy) starts at a
//!   signed checkpoint, and a chained `retention` record of that copy names
//!   the cut. Verification starts from that checkpoint; the report says how
//!   many records went. A start later than any retention record allows is
//!   a removal.
//! - a live trail: files are opened as one consistent set even while
//!   Warden rotates and prunes them, and a last line still being written is
//!   left for the next run.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

use crate::checkpoint::{self, side_file_for, SideEntry, SignatureProblem};
use crate::event::{Checkpoint, RetentionFacts};
use crate::record::{parse_line, Record, GENESIS};

/// What to verify against.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Verification key (SPKI PEM, or the PKCS#8 private key). Without it,
    /// checkpoint signatures are not checked (the report says so).
    pub public_key: Option<PathBuf>,
    /// The checkpoint side file. Default: `<stem>.checkpoints` beside the
    /// last file, if it exists.
    pub checkpoints: Option<PathBuf>,
    /// Accept a first file that starts anywhere (an excerpt). By default
    /// the first file must start where its name says: seq 1 for an active
    /// file, the digits of a rotated file's name (`audit-000000000042.jsonl`)
    /// — so removing the first records of the trail is caught too.
    pub allow_partial: bool,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    pub files: usize,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Checkpoint records seen in the chain.
    pub checkpoints: u64,
    pub signatures_checked: bool,
    /// Records after the last checkpoint (not yet covered by a signature).
    pub unsigned_tail: u64,
    /// The side file used, and how many of its entries were checked.
    pub side_file: Option<PathBuf>,
    pub side_entries_checked: u64,
    /// Records before the first one verified (`first_seq - 1`): pruned by
    /// retention, or (trails older than retention records) rotated away.
    pub pruned: u64,
    /// Seq of the signed checkpoint verification started from, when the
    /// trail starts at one (a pruned trail does).
    pub anchor: Option<u64>,
    /// The first problem found; `None` means the trail verifies.
    pub failure: Option<Failure>,
    /// Facts worth knowing that are not failures.
    pub notes: Vec<String>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// Where the trail breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub file: PathBuf,
    /// 1-based line number in `file`.
    pub line: u64,
    /// The seq the line claims (or, for truncation, the missing checkpoint's).
    pub seq: Option<u64>,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The file could not be read.
    Unreadable(String),
    /// Not a record line (envelope changed, not JSON, not UTF-8).
    Malformed(String),
    /// The hash does not match the record's content: it was edited.
    HashMismatch,
    /// The seq is not the one expected: a record before it was removed,
    /// or records were reordered.
    Sequence { expected: u64 },
    /// `prev` is not the previous record's hash.
    BrokenLink,
    /// A checkpoint does not describe the record before it.
    CheckpointMismatch,
    /// A checkpoint's signature is invalid.
    BadSignature,
    /// A checkpoint was signed by another key.
    OtherKey { key_id: String },
    /// The side file names a checkpoint the log does not reach.
    Truncated {
        checkpoint_seq: u64,
        last_seq: Option<u64>,
    },
    /// The side file names a checkpoint whose record differs in the log.
    SideFileMismatch { checkpoint_seq: u64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable(e) => write!(f, "unreadable: {e}"),
            Problem::Malformed(e) => write!(f, "not a valid record: {e}"),
            Problem::HashMismatch => f.write_str("the record was modified (its hash does not match its content)"),
            Problem::Sequence { expected } => write!(
                f,
                "expected seq {expected}: a record was removed or records were reordered"
            ),
            Problem::BrokenLink => f.write_str("prev does not match the previous record's hash"),
            Problem::CheckpointMismatch => {
                f.write_str("the checkpoint does not describe the record before it")
            }
            Problem::BadSignature => f.write_str("the checkpoint's signature is invalid"),
            Problem::OtherKey { key_id } => {
                write!(f, "the checkpoint was signed by another key ({key_id})")
            }
            Problem::Truncated {
                checkpoint_seq,
                last_seq,
            } => match last_seq {
                Some(last) => write!(
                    f,
                    "truncated: checkpoint at seq {checkpoint_seq} is recorded but the log ends at seq {last}"
                ),
                None => write!(
                    f,
                    "truncated: checkpoint at seq {checkpoint_seq} is recorded but the log is empty"
                ),
            },
            Problem::SideFileMismatch { checkpoint_seq } => write!(
                f,
                "the record at checkpoint seq {checkpoint_seq} differs from the one the checkpoint file names"
            ),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            Some(fail) => writeln!(f, "FAILED at {fail}")?,
            None => writeln!(f, "OK")?,
        }
        let range = match (self.first_seq, self.last_seq) {
            (Some(a), Some(b)) => format!("seq {a}..={b}"),
            _ => "no records".to_owned(),
        };
        writeln!(
            f,
            "{} records ({range}) in {} file(s); {} checkpoint(s), signatures {}",
            self.records,
            self.files,
            self.checkpoints,
            if self.signatures_checked {
                "checked"
            } else {
                "NOT checked (no public key given)"
            }
        )?;
        if let Some(side) = &self.side_file {
            writeln!(
                f,
                "checkpoint file {}: {} entries checked",
                side.display(),
                self.side_entries_checked
            )?;
        }
        if self.pruned > 0 {
            match self.anchor {
                Some(at) => writeln!(
                    f,
                    "{} earlier record(s) pruned; verification starts at the signed checkpoint at seq {at}",
                    self.pruned
                )?,
                None => writeln!(f, "{} earlier record(s) not in the trail", self.pruned)?,
            }
        }
        if self.unsigned_tail > 0 {
            writeln!(
                f,
                "{} record(s) after the last checkpoint",
                self.unsigned_tail
            )?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

/// Verifies the JSONL files `paths` (rotated files first, the active file
/// last — [`crate::AuditSettings::jsonl_files`] lists them), with the side
/// file found beside the last one.
///
/// Safe while Warden writes: when `paths` is such a listing, files rotated
/// or pruned since it was made are accounted for, and every file is
/// opened as one consistent set before reading.
pub fn verify(paths: &[PathBuf], public_key: Option<&Path>) -> VerifyReport {
    verify_with(
        paths,
        &VerifyOptions {
            public_key: public_key.map(Path::to_owned),
            ..VerifyOptions::default()
        },
    )
}

#[derive(Deserialize)]
struct KindOnly {
    kind: String,
    #[serde(default)]
    checkpoint: Option<Box<Checkpoint>>,
    #[serde(default)]
    retention: Option<Box<RetentionFacts>>,
}

/// [`verify`] with explicit options.
pub fn verify_with(paths: &[PathBuf], options: &VerifyOptions) -> VerifyReport {
    let side = options.checkpoints.clone().or_else(|| {
        paths
            .last()
            .map(|p| side_file_for(p))
            .filter(|p| p.exists())
    });
    let end = paths.last().cloned().unwrap_or_default();
    let mut walker = match Walker::new(options, side, end, "jsonl") {
        Ok(w) => w,
        Err(report) => return *report,
    };
    let files = match open_trail(paths) {
        Ok(files) => files,
        Err((path, e)) => return walker.fail(&path, 0, None, Problem::Unreadable(e.to_string())),
    };
    walker.report.files = files.len();
    let count = files.len();
    for (i, (path, file)) in files.into_iter().enumerate() {
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        let expected_first = rotated_first_seq(&path).unwrap_or(1);
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    return walker.fail(
                        &path,
                        line_no + 1,
                        None,
                        Problem::Unreadable(e.to_string()),
                    )
                }
            }
            line_no += 1;
            let Some(body) = buf.strip_suffix(b"\n") else {
                if i + 1 == count {
                    // The active file's last line is being written (or was
                    // cut by a crash, and is cut off at the next start):
                    // nothing anyone acknowledged.
                    walker.report.notes.push(format!(
                        "{}:{line_no}: the last line is incomplete (being written, or cut by a crash); not verified",
                        path.display()
                    ));
                    break;
                }
                return walker.fail(
                    &path,
                    line_no,
                    None,
                    Problem::Malformed("the last line is incomplete".into()),
                );
            };
            if let Err(f) = walker.line(&path, line_no, body, expected_first) {
                walker.report.failure = Some(f);
                return walker.report;
            }
        }
    }
    walker.finish()
}

/// How often [`open_trail`] lists and opens again when the trail changed
/// under it.
const SNAPSHOT_ATTEMPTS: usize = 50;

/// The files to read, opened. When `paths` is a listing of one trail
/// (rotated files of the active file, then the active file), the trail is
/// listed again and opened as one consistent set: listed, opened, listed
/// once more, and retried until nothing changed in between. Open files
/// keep their content through a rename (rotation) or an unlink
/// (retention). Rotated files newer than the listing are included; files
/// older than its oldest are not (an excerpt stays an excerpt).
fn open_trail(paths: &[PathBuf]) -> Result<Vec<(PathBuf, File)>, (PathBuf, std::io::Error)> {
    let open_all = |list: &[PathBuf]| -> Result<Vec<(PathBuf, File)>, (PathBuf, std::io::Error)> {
        list.iter()
            .map(|p| {
                File::open(p)
                    .map(|f| (p.clone(), f))
                    .map_err(|e| (p.clone(), e))
            })
            .collect()
    };
    let Some((active, rotated)) = paths.split_last() else {
        return Ok(Vec::new());
    };
    let same_trail = rotated_first_seq(active).is_none()
        && rotated.iter().all(|p| {
            rotated_first_seq(p).is_some()
                && p.parent() == active.parent()
                && side_file_for(p) == side_file_for(active)
        });
    if !same_trail {
        return open_all(paths);
    }
    let oldest = rotated.iter().filter_map(|p| rotated_first_seq(p)).min();
    let listing = || -> Vec<PathBuf> {
        crate::sink::jsonl::files(active)
            .into_iter()
            .filter(|p| match (rotated_first_seq(p), oldest) {
                (Some(seq), Some(oldest)) => seq >= oldest,
                _ => true,
            })
            .collect()
    };
    let identity = |p: &Path| fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let mut last_error = None;
    for _ in 0..SNAPSHOT_ATTEMPTS {
        let before = listing();
        let opened = match open_all(&before) {
            Ok(o) => o,
            Err(e) => {
                // Renamed or removed between listing and opening: again.
                last_error = Some(e);
                continue;
            }
        };
        let opened_ids: Vec<Option<(u64, u64)>> = opened
            .iter()
            .map(|(_, f)| f.metadata().ok().map(|m| (m.dev(), m.ino())))
            .collect();
        let after = listing();
        let after_ids: Vec<Option<(u64, u64)>> = after.iter().map(|p| identity(p)).collect();
        if after == before && after_ids == opened_ids {
            return Ok(opened);
        }
        std::thread::yield_now();
    }
    match last_error {
        Some(e) => Err(e),
        // Still changing after every attempt: read what the caller listed.
        None => open_all(paths),
    }
}

/// Verifies the copy in the SQLite store: every row's line, in seq order,
/// as one chain (`line` in a failure is the row's seq). The side file is
/// `options.checkpoints` (give the JSONL one, or `<journal>/audit.checkpoints`
/// for a trail without JSONL).
pub fn verify_sqlite(db: &Path, options: &VerifyOptions) -> VerifyReport {
    let mut walker = match Walker::new(
        options,
        options.checkpoints.clone(),
        db.to_owned(),
        "sqlite",
    ) {
        Ok(w) => w,
        Err(report) => return *report,
    };
    walker.report.files = 1;
    let conn = match rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(c) => c,
        Err(e) => return walker.fail(db, 0, None, Problem::Unreadable(e.to_string())),
    };
    let mut stmt = match conn.prepare("SELECT seq, record FROM audit_records ORDER BY seq") {
        Ok(s) => s,
        Err(e) => return walker.fail(db, 0, None, Problem::Unreadable(e.to_string())),
    };
    let rows = match stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))) {
        Ok(rows) => rows,
        Err(e) => return walker.fail(db, 0, None, Problem::Unreadable(e.to_string())),
    };
    for row in rows {
        let (seq, line) = match row {
            Ok(r) => r,
            Err(e) => return walker.fail(db, 0, None, Problem::Unreadable(e.to_string())),
        };
        let row_seq = u64::try_from(seq).unwrap_or(0);
        if let Err(f) = walker.line(db, row_seq, line.as_bytes(), 1) {
            walker.report.failure = Some(f);
            return walker.report;
        }
        // The indexed seq must be the record's own.
        if walker.report.last_seq != Some(row_seq) {
            return walker.fail(db, row_seq, Some(row_seq), Problem::HashMismatch);
        }
    }
    walker.finish()
}

/// The verification state over a stream of lines from any source.
struct Walker<'a> {
    options: &'a VerifyOptions,
    report: VerifyReport,
    key: Option<VerifyingKey>,
    side: BTreeMap<u64, (u64, SideEntry)>,
    prev: Option<(u64, [u8; 32])>,
    /// Where the last record stands (a cut tail is reported just after it).
    last_pos: (PathBuf, u64),
    /// The copy verified (`jsonl`, `sqlite`): whose retention records count.
    sink: &'static str,
    /// Where the first record stands.
    first_pos: (PathBuf, u64),
    /// A start later than expected, at a signed checkpoint: pruned history
    /// if a retention record of this copy covers it, else this failure.
    unexplained_start: Option<Failure>,
    /// The furthest cut a retention record of this copy announced.
    pruned_through: Option<u64>,
}

impl<'a> Walker<'a> {
    fn new(
        options: &'a VerifyOptions,
        side_path: Option<PathBuf>,
        end: PathBuf,
        sink: &'static str,
    ) -> Result<Walker<'a>, Box<VerifyReport>> {
        let mut report = VerifyReport::default();
        let mut fail = |file: &Path, line: u64, seq: Option<u64>, problem: Problem| {
            report.failure = Some(Failure {
                file: file.to_owned(),
                line,
                seq,
                problem,
            });
            Box::new(std::mem::take(&mut report))
        };
        let key = match &options.public_key {
            Some(p) => match checkpoint::load_public_key(p) {
                Ok(k) => Some(k),
                Err(e) => return Err(fail(p, 0, None, Problem::Unreadable(e.to_string()))),
            },
            None => None,
        };
        // The side file, loaded first so its entries are checked while streaming.
        let mut side = BTreeMap::new();
        if let Some(sp) = &side_path {
            let entries = read_side(sp).map_err(|problem| fail(sp, 0, None, problem))?;
            for (line, e) in entries {
                if let Some(k) = &key {
                    if let Err(p) = checkpoint::check(k, &e.checkpoint) {
                        return Err(fail(sp, line, Some(e.at_seq), signature_problem(p)));
                    }
                }
                side.insert(e.at_seq, (line, e));
            }
        }
        report.signatures_checked = key.is_some();
        report.side_file = side_path;
        Ok(Walker {
            options,
            report,
            key,
            side,
            prev: None,
            last_pos: (end.clone(), 0),
            sink,
            first_pos: (end, 0),
            unexplained_start: None,
            pruned_through: None,
        })
    }

    fn fail(mut self, file: &Path, line: u64, seq: Option<u64>, problem: Problem) -> VerifyReport {
        self.report.failure = Some(Failure {
            file: file.to_owned(),
            line,
            seq,
            problem,
        });
        self.report
    }

    /// Checks one record line; `expected_first` is the seq the very first
    /// record must have (unless `allow_partial`).
    fn line(
        &mut self,
        source: &Path,
        line_no: u64,
        body: &[u8],
        expected_first: u64,
    ) -> Result<(), Failure> {
        let fail = |seq: Option<u64>, problem: Problem| Failure {
            file: source.to_owned(),
            line: line_no,
            seq,
            problem,
        };
        let text = std::str::from_utf8(body)
            .map_err(|_| fail(None, Problem::Malformed("not UTF-8".into())))?;
        let claimed = parse_line(text).ok().map(|p| p.seq);
        let record = match Record::parse(text) {
            Ok(r) => r,
            Err(crate::record::LineError::HashMismatch { seq }) => {
                return Err(fail(Some(seq), Problem::HashMismatch))
            }
            Err(e) => return Err(fail(claimed, Problem::Malformed(e.to_string()))),
        };
        let seq = record.seq;
        let kind = serde_json::from_str::<KindOnly>(record.event_text());
        match self.prev {
            Some((pseq, phash)) => {
                if seq != pseq + 1 {
                    return Err(fail(Some(seq), Problem::Sequence { expected: pseq + 1 }));
                }
                if record.prev != phash {
                    return Err(fail(Some(seq), Problem::BrokenLink));
                }
            }
            None => {
                if seq == 1 && record.prev != GENESIS {
                    return Err(fail(Some(seq), Problem::BrokenLink));
                }
                // A checkpoint over the record before it: where a pruned
                // trail starts (its signature is checked below).
                let anchored = matches!(&kind, Ok(k) if k.kind == "checkpoint"
                && k.checkpoint.as_ref().is_some_and(|cp| {
                    cp.through_seq + 1 == seq && cp.through_hash == hex::encode(record.prev)
                }));
                if seq != expected_first && !self.options.allow_partial {
                    let removed = fail(
                        Some(seq),
                        Problem::Sequence {
                            expected: expected_first,
                        },
                    );
                    if !anchored {
                        return Err(removed);
                    }
                    self.unexplained_start = Some(removed);
                }
                if seq != 1 {
                    self.report.pruned = seq - 1;
                    if anchored {
                        self.report.anchor = Some(seq);
                    }
                }
                self.report.first_seq = Some(seq);
                self.first_pos = (source.to_owned(), line_no);
            }
        }
        // The event: checkpoints are checked against the record before.
        match kind {
            Ok(k) if k.kind == "checkpoint" => {
                let Some(cp) = k.checkpoint else {
                    return Err(fail(Some(seq), Problem::CheckpointMismatch));
                };
                let describes_prev =
                    cp.through_seq + 1 == seq && cp.through_hash == hex::encode(record.prev);
                if !describes_prev {
                    return Err(fail(Some(seq), Problem::CheckpointMismatch));
                }
                if let Some(k) = &self.key {
                    checkpoint::check(k, &cp).map_err(|p| fail(Some(seq), signature_problem(p)))?;
                }
                self.report.checkpoints += 1;
                self.report.unsigned_tail = 0;
            }
            Ok(k) => {
                if let Some(r) = k.retention.filter(|r| r.sink == self.sink) {
                    self.pruned_through = self.pruned_through.max(Some(r.pruned_through));
                }
                self.report.unsigned_tail += 1;
            }
            Err(e) => return Err(fail(Some(seq), Problem::Malformed(format!("event: {e}")))),
        }
        if let Some((_, entry)) = self.side.get(&seq) {
            if entry.at_hash != record.hash_hex() {
                return Err(fail(
                    Some(seq),
                    Problem::SideFileMismatch {
                        checkpoint_seq: seq,
                    },
                ));
            }
            self.report.side_entries_checked += 1;
        }
        self.report.records += 1;
        self.report.last_seq = Some(seq);
        self.prev = Some((seq, record.hash));
        self.last_pos = (source.to_owned(), line_no);
        Ok(())
    }

    /// A start retention does not explain; checkpoints the side file names
    /// beyond the end (the tail was cut).
    fn finish(mut self) -> VerifyReport {
        if let Some(first) = self.report.first_seq.filter(|s| *s > 1) {
            let explained = self.pruned_through.is_some_and(|p| first <= p + 1);
            if let Some(removed) = self.unexplained_start.take() {
                if !explained {
                    self.report.failure = Some(removed);
                    return self.report;
                }
            }
            match self.pruned_through {
                Some(p) if first > p + 1 => {
                    // Retention said it kept from p + 1; the trail starts later.
                    let (file, line) = std::mem::take(&mut self.first_pos);
                    self.report.failure = Some(Failure {
                        file,
                        line,
                        seq: Some(first),
                        problem: Problem::Sequence { expected: p + 1 },
                    });
                    return self.report;
                }
                Some(_) => {}
                None => self.report.notes.push(format!(
                    "the trail starts at seq {first}: earlier records are not in the files given (rotated away?)"
                )),
            }
        }
        let from = self.report.last_seq.map_or(0, |s| s + 1);
        if let Some((&checkpoint_seq, _)) = self.side.range(from..).next() {
            let (file, line) = std::mem::take(&mut self.last_pos);
            self.report.failure = Some(Failure {
                file,
                line: line + 1,
                seq: Some(checkpoint_seq),
                problem: Problem::Truncated {
                    checkpoint_seq,
                    last_seq: self.report.last_seq,
                },
            });
        }
        self.report
    }
}

/// The first seq a rotated file's name promises (`<stem>-<digits>.<ext>`).
fn rotated_first_seq(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_str()?;
    let (_, digits) = stem.rsplit_once('-')?;
    if digits.len() < 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn signature_problem(p: SignatureProblem) -> Problem {
    match p {
        SignatureProblem::OtherKey { key_id } => Problem::OtherKey { key_id },
        SignatureProblem::Invalid => Problem::BadSignature,
    }
}

fn read_side(path: &Path) -> Result<Vec<(u64, SideEntry)>, Problem> {
    let bytes = fs::read(path).map_err(|e| Problem::Unreadable(e.to_string()))?;
    // A last line without its newline is an entry being appended.
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => &bytes[..=i],
        None => &[][..],
    };
    let text = std::str::from_utf8(complete)
        .map_err(|_| Problem::Malformed("checkpoint file: not UTF-8".into()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let entry: SideEntry = serde_json::from_str(line)
            .map_err(|e| Problem::Malformed(format!("checkpoint file line {}: {e}", i + 1)))?;
        out.push((i as u64 + 1, entry));
    }
    Ok(out)
}
