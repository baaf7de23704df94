//! T22: editing, deleting or reordering one record — anywhere, across
//! rotated files — makes verify fail and name it; truncation is caught by
//! the signed checkpoints.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use warden_audit::{verify, Problem, Record, VerifyReport};

use super::*;

/// 60 calls in small rotated files; returns (dir guard, files, key).
async fn rotated_trail() -> (tempfile::TempDir, Vec<PathBuf>, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.jsonl.as_mut().unwrap().rotate_bytes = 6000;
    s.checkpoint.every_records = 25;
    let log = start(&s);
    for i in 0..60 {
        log.record(call(i)).unwrap();
        if i % 7 == 0 {
            log.flush().await; // several batches, so rotation happens mid-trail
        }
    }
    log.shutdown().await;
    let files = s.jsonl_files();
    (dir, files, public_key(s.journal_dir.parent().unwrap()))
}

fn rewrite(path: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let mut lines = jsonl_lines(path);
    f(&mut lines);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(path, text).unwrap();
}

fn seq_at(path: &Path, line: usize) -> u64 {
    Record::parse(&jsonl_lines(path)[line - 1]).unwrap().seq
}

fn assert_fails_at(report: &VerifyReport, file: &Path, line: u64, seq: u64) -> Problem {
    let f = report
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("verify passed:\n{report}"));
    assert_eq!(
        (f.file.as_path(), f.line, f.seq),
        (file, line, Some(seq)),
        "{report}"
    );
    f.problem.clone()
}

#[tokio::test]
async fn an_intact_rotated_trail_verifies_with_signed_checkpoints() {
    let (_dir, files, key) = rotated_trail().await;
    assert!(files.len() >= 3, "expected rotation, got {files:?}");
    let report = verify(&files, Some(&key));
    assert!(report.is_ok(), "{report}");
    assert!(report.signatures_checked);
    let non_empty = files.iter().filter(|f| !jsonl_lines(f).is_empty()).count() as u64;
    assert!(
        report.checkpoints >= non_empty,
        "every file ends with a checkpoint: {report}"
    );
    assert_eq!(report.first_seq, Some(1));
    assert_eq!(report.unsigned_tail, 0, "shutdown signs the tail");
    // Every checkpoint reached the side file, the shutdown one included.
    assert_eq!(report.side_entries_checked, report.checkpoints, "{report}");
    // Each rotated file ends with a checkpoint record.
    for f in &files {
        let Some(last) = jsonl_lines(f).pop() else {
            continue;
        };
        assert!(
            last.contains("\"kind\":\"checkpoint\""),
            "{f:?} ends with {last}"
        );
    }
}

#[tokio::test]
async fn editing_one_byte_names_the_record() {
    let (_dir, files, key) = rotated_trail().await;
    let target = &files[1];
    let seq = seq_at(target, 3);
    rewrite(target, |lines| {
        lines[2] =
            lines[2]
                .replacen("read_file", "reaD_file", 1)
                .replacen("write_file", "wrIte_file", 1);
    });
    let report = verify(&files, Some(&key));
    assert_eq!(
        assert_fails_at(&report, target, 3, seq),
        Problem::HashMismatch
    );
    assert!(report.to_string().contains("modified"), "{report}");
}

#[tokio::test]
async fn deleting_one_record_names_the_gap() {
    let (_dir, files, key) = rotated_trail().await;
    let target = &files[1];
    let next = seq_at(target, 4);
    rewrite(target, |lines| {
        lines.remove(2);
    });
    let report = verify(&files, Some(&key));
    assert_eq!(
        assert_fails_at(&report, target, 3, next),
        Problem::Sequence { expected: next - 1 }
    );
}

#[tokio::test]
async fn deleting_the_first_record_of_a_rotated_file_is_caught_across_files() {
    let (_dir, files, key) = rotated_trail().await;
    let target = &files[2];
    let second = seq_at(target, 2);
    rewrite(target, |lines| {
        lines.remove(0);
    });
    let report = verify(&files, Some(&key));
    assert_eq!(
        assert_fails_at(&report, target, 1, second),
        Problem::Sequence {
            expected: second - 1
        }
    );
}

#[tokio::test]
async fn reordering_two_records_names_the_first_out_of_place() {
    let (_dir, files, key) = rotated_trail().await;
    let target = &files[0];
    let fourth = seq_at(target, 4);
    rewrite(target, |lines| lines.swap(2, 3));
    let report = verify(&files, Some(&key));
    assert_eq!(
        assert_fails_at(&report, target, 3, fourth),
        Problem::Sequence {
            expected: fourth - 1
        }
    );
}

#[tokio::test]
async fn a_rewritten_chain_fails_at_the_next_signed_checkpoint() {
    let (_dir, files, key) = rotated_trail().await;
    // The attacker edits record 5 and recomputes every hash after it — but
    // cannot re-sign the checkpoints.
    let mut prev = warden_audit::record::GENESIS;
    let mut first_checkpoint_after_edit = None;
    for f in &files {
        rewrite(f, |lines| {
            for (i, line) in lines.iter_mut().enumerate() {
                let r = Record::parse(line).unwrap();
                let mut e = r.event().unwrap();
                if r.seq == 5 {
                    e.tool = Some("covered_up".into());
                }
                if let Some(cp) = &mut e.checkpoint {
                    cp.through_hash = hex_of(&prev);
                    if r.seq > 5 && first_checkpoint_after_edit.is_none() {
                        first_checkpoint_after_edit = Some((f.clone(), i as u64 + 1, r.seq));
                    }
                }
                let new = Record::chain(r.seq, prev, &e);
                prev = new.hash;
                *line = new.line;
            }
        });
    }
    // Without the side file, only the signature gives it away.
    let side = warden_audit::checkpoint::side_file_for(files.last().unwrap());
    fs::remove_file(&side).unwrap();
    let (file, line, seq) = first_checkpoint_after_edit.unwrap();
    let report = verify(&files, Some(&key));
    assert_eq!(
        assert_fails_at(&report, &file, line, seq),
        Problem::BadSignature
    );
    // Without the key, the rewrite is internally consistent: say so.
    let unkeyed = verify(&files, None);
    assert!(unkeyed.is_ok() && !unkeyed.signatures_checked, "{unkeyed}");
    assert!(unkeyed.to_string().contains("NOT checked"));
}

fn hex_of(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn truncation_is_detected_through_the_checkpoint_file() {
    let (_dir, files, key) = rotated_trail().await;
    let last_non_empty = |files: &[PathBuf]| -> PathBuf {
        files
            .iter()
            .rev()
            .find(|f| !jsonl_lines(f).is_empty())
            .unwrap()
            .clone()
    };
    let before = last_non_empty(&files);
    let last_seq = seq_at(&before, jsonl_lines(&before).len());
    // Cut the trail's last two records, wherever rotation put them: the
    // active file may hold only one (rotation follows the batches' timing).
    let mut to_cut = 2;
    for file in files.iter().rev() {
        let held = jsonl_lines(file).len();
        let cut = held.min(to_cut);
        rewrite(file, |lines| lines.truncate(held - cut));
        to_cut -= cut;
        if to_cut == 0 {
            break;
        }
    }
    let active = &last_non_empty(&files);
    let report = verify(&files, Some(&key));
    let f = report
        .failure
        .as_ref()
        .expect("truncation must be detected");
    assert_eq!(
        f.problem,
        Problem::Truncated {
            checkpoint_seq: last_seq,
            last_seq: Some(last_seq - 2)
        },
        "{report}"
    );
    assert_eq!(f.file, *active);
    // Removing a whole rotated file (the middle of the trail) is a gap.
    fs::remove_file(&files[1]).unwrap();
    let remaining: Vec<PathBuf> = files.iter().filter(|p| p.exists()).cloned().collect();
    let report = verify(&remaining, Some(&key));
    assert!(matches!(
        report.failure.as_ref().map(|f| &f.problem),
        Some(Problem::Sequence { .. })
    ));
}

#[tokio::test]
async fn a_signature_from_another_key_is_named() {
    let (dir, files, _key) = rotated_trail().await;
    let other = dir.path().join("other.key");
    let other_pub = warden_audit::checkpoint::generate_signing_key(&other).unwrap();
    let report = verify(&files, Some(&other_pub));
    assert!(matches!(
        report.failure.as_ref().map(|f| &f.problem),
        Some(Problem::OtherKey { .. })
    ));
}

/// Builds `n` chained records as lines.
fn chain_lines(n: usize) -> Vec<String> {
    let mut prev = warden_audit::record::GENESIS;
    (1..=n)
        .map(|seq| {
            let r = Record::chain(seq as u64, prev, &call(seq));
            prev = r.hash;
            r.line
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Tamper {
    Flip { line: usize, byte: usize },
    Delete { line: usize },
    Swap { line: usize },
}

fn tamper_strategy(n: usize) -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (0..n, any::<usize>()).prop_map(|(line, byte)| Tamper::Flip { line, byte }),
        (0..n - 1).prop_map(|line| Tamper::Delete { line }),
        (0..n - 1).prop_map(|line| Tamper::Swap { line }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any single tampering of a chain is detected at the line it touches
    /// (or, for a deletion, at the line that now stands there).
    #[test]
    fn every_single_tampering_is_caught_at_its_line(t in tamper_strategy(12)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut lines = chain_lines(12);
        let expected_line = match &t {
            Tamper::Flip { line, byte } => {
                let bytes = lines[*line].as_bytes().to_vec();
                let i = byte % bytes.len();
                let mut changed = bytes.clone();
                changed[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
                lines[*line] = String::from_utf8(changed).unwrap();
                line + 1
            }
            Tamper::Delete { line } => { lines.remove(*line); line + 1 }
            Tamper::Swap { line } => { lines.swap(*line, line + 1); line + 1 }
        };
        fs::write(&path, lines.join("\n") + "\n").unwrap();
        let report = verify(&[path], None);
        let f = report.failure.clone();
        prop_assert!(f.is_some(), "undetected {:?}", t);
        prop_assert_eq!(f.unwrap().line, expected_line as u64);
    }
}
