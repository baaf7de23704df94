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

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

use crate::checkpoint::{self, side_file_for, SideEntry, SignatureProblem};
use crate::event::Checkpoint;
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
}

pub fn verify_with(paths: &[PathBuf], options: &VerifyOptions) -> VerifyReport {
    let mut report = VerifyReport {
        files: paths.len(),
        ..VerifyReport::default()
    };
    let key: Option<VerifyingKey> = match &options.public_key {
        Some(p) => match checkpoint::load_public_key(p) {
            Ok(k) => Some(k),
            Err(e) => {
                report.failure = Some(Failure {
                    file: p.clone(),
                    line: 0,
                    seq: None,
                    problem: Problem::Unreadable(e.to_string()),
                });
                return report;
            }
        },
        None => None,
    };
    report.signatures_checked = key.is_some();

    // The side file, loaded first so its entries are checked while streaming.
    let side_path = options.checkpoints.clone().or_else(|| {
        paths
            .last()
            .map(|p| side_file_for(p))
            .filter(|p| p.exists())
    });
    let mut side: BTreeMap<u64, (u64, SideEntry)> = BTreeMap::new();
    if let Some(sp) = &side_path {
        match read_side(sp) {
            Ok(entries) => {
                for (line, e) in entries {
                    if let Some(k) = &key {
                        if let Err(p) = checkpoint::check(k, &e.checkpoint) {
                            report.failure = Some(Failure {
                                file: sp.clone(),
                                line,
                                seq: Some(e.at_seq),
                                problem: signature_problem(p),
                            });
                            return report;
                        }
                    }
                    side.insert(e.at_seq, (line, e));
                }
            }
            Err(problem) => {
                report.failure = Some(Failure {
                    file: sp.clone(),
                    line: 0,
                    seq: None,
                    problem,
                });
                return report;
            }
        }
        report.side_file = Some(sp.clone());
    }

    let mut prev: Option<(u64, [u8; 32])> = None;
    // Where the last record stands (a cut tail is reported just after it).
    let mut last_pos: (PathBuf, u64) = (paths.last().cloned().unwrap_or_default(), 0);
    for path in paths {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                report.failure = Some(Failure {
                    file: path.clone(),
                    line: 0,
                    seq: None,
                    problem: Problem::Unreadable(e.to_string()),
                });
                return report;
            }
        };
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    report.failure = Some(Failure {
                        file: path.clone(),
                        line: line_no + 1,
                        seq: None,
                        problem: Problem::Unreadable(e.to_string()),
                    });
                    return report;
                }
            }
            line_no += 1;
            let fail = |seq: Option<u64>, problem: Problem| Failure {
                file: path.clone(),
                line: line_no,
                seq,
                problem,
            };
            let Some(body) = buf.strip_suffix(b"\n") else {
                report.failure = Some(fail(
                    None,
                    Problem::Malformed("the last line is incomplete".into()),
                ));
                return report;
            };
            let Ok(text) = std::str::from_utf8(body) else {
                report.failure = Some(fail(None, Problem::Malformed("not UTF-8".into())));
                return report;
            };
            let claimed = parse_line(text).ok().map(|p| p.seq);
            let record = match Record::parse(text) {
                Ok(r) => r,
                Err(crate::record::LineError::HashMismatch { seq }) => {
                    report.failure = Some(fail(Some(seq), Problem::HashMismatch));
                    return report;
                }
                Err(e) => {
                    report.failure = Some(fail(claimed, Problem::Malformed(e.to_string())));
                    return report;
                }
            };
            let seq = record.seq;
            match prev {
                Some((pseq, phash)) => {
                    if seq != pseq + 1 {
                        report.failure =
                            Some(fail(Some(seq), Problem::Sequence { expected: pseq + 1 }));
                        return report;
                    }
                    if record.prev != phash {
                        report.failure = Some(fail(Some(seq), Problem::BrokenLink));
                        return report;
                    }
                }
                None => {
                    if seq == 1 && record.prev != GENESIS {
                        report.failure = Some(fail(Some(seq), Problem::BrokenLink));
                        return report;
                    }
                    let expected = rotated_first_seq(path).unwrap_or(1);
                    if seq != expected && !options.allow_partial {
                        report.failure = Some(fail(Some(seq), Problem::Sequence { expected }));
                        return report;
                    }
                    if seq != 1 {
                        report.notes.push(format!(
                            "the trail starts at seq {seq}: earlier records are not in the files given (rotated away?)"
                        ));
                    }
                    report.first_seq = Some(seq);
                }
            }
            // The event: checkpoints are checked against the record before.
            match serde_json::from_str::<KindOnly>(record.event_text()) {
                Ok(k) if k.kind == "checkpoint" => {
                    let Some(cp) = k.checkpoint else {
                        report.failure = Some(fail(Some(seq), Problem::CheckpointMismatch));
                        return report;
                    };
                    let describes_prev =
                        cp.through_seq + 1 == seq && cp.through_hash == hex::encode(record.prev);
                    if !describes_prev {
                        report.failure = Some(fail(Some(seq), Problem::CheckpointMismatch));
                        return report;
                    }
                    if let Some(k) = &key {
                        if let Err(p) = checkpoint::check(k, &cp) {
                            report.failure = Some(fail(Some(seq), signature_problem(p)));
                            return report;
                        }
                    }
                    report.checkpoints += 1;
                    report.unsigned_tail = 0;
                }
                Ok(_) => report.unsigned_tail += 1,
                Err(e) => {
                    report.failure =
                        Some(fail(Some(seq), Problem::Malformed(format!("event: {e}"))));
                    return report;
                }
            }
            if let Some((_, entry)) = side.get(&seq) {
                if entry.at_hash != record.hash_hex() {
                    report.failure = Some(fail(
                        Some(seq),
                        Problem::SideFileMismatch {
                            checkpoint_seq: seq,
                        },
                    ));
                    return report;
                }
                report.side_entries_checked += 1;
            }
            report.records += 1;
            report.last_seq = Some(seq);
            prev = Some((seq, record.hash));
            last_pos = (path.clone(), line_no);
        }
    }

    // Checkpoints the side file names beyond the end: the tail was cut.
    if let Some((&checkpoint_seq, _)) = side.range(report.last_seq.map_or(0, |s| s + 1)..).next() {
        report.failure = Some(Failure {
            file: last_pos.0,
            line: last_pos.1 + 1,
            seq: Some(checkpoint_seq),
            problem: Problem::Truncated {
                checkpoint_seq,
                last_seq: report.last_seq,
            },
        });
    }
    report
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
    let file = File::open(path).map_err(|e| Problem::Unreadable(e.to_string()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Problem::Unreadable(e.to_string()))?;
        if line.is_empty() {
            continue;
        }
        let entry: SideEntry = serde_json::from_str(&line)
            .map_err(|e| Problem::Malformed(format!("checkpoint file line {}: {e}", i + 1)))?;
        out.push((i as u64 + 1, entry));
    }
    Ok(out)
}
