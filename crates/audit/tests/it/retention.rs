//! Defect 22: audit storage had no retention (the SQLite store grew to
//! 2.68 GB in three minutes of load). Every sink now prunes by age and by
//! size, from a signed checkpoint on, after a chained `retention` record;
//! `verify` starts from the oldest kept checkpoint, reports how much was
//! pruned, and still names a record removed by anyone else.

use std::path::Path;
use std::time::{Duration, Instant};

use warden_audit::{
    verify, verify_sqlite, EventKind, Problem, Record, RetentionSettings, VerifyOptions,
};

use super::*;

fn events_of(path: &Path) -> Vec<warden_audit::Event> {
    jsonl_lines(path)
        .iter()
        .filter_map(|l| Record::parse(l).ok()?.event().ok())
        .collect()
}

async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn jsonl_retention_by_size_and_age_keeps_verify_working() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.sqlite = None;
    s.checkpoint.every_records = 10;
    s.retention_interval = Duration::from_millis(100);
    let j = s.jsonl.as_mut().unwrap();
    j.rotate_bytes = 4096;
    j.rotate_keep = 0;
    j.retention = RetentionSettings {
        max_age: None,
        max_size: Some(20 * 1024),
    };
    let log = start(&s);
    for i in 0..400 {
        log.record(call(i)).unwrap();
        if i % 10 == 0 {
            log.flush().await;
        }
    }
    log.flush().await;
    let files = s.jsonl_files();
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(
        total <= 20 * 1024 + 4096 + 2048,
        "{total} bytes in {files:?}"
    );
    assert!(log.metrics_snapshot().retention_pruned["jsonl"] > 0);

    // Verify on the live trail: from the oldest kept checkpoint, pruned
    // history reported as such.
    let key = public_key(dir.path());
    let report = verify(&files, Some(&key));
    assert!(report.is_ok(), "{report}");
    let first = report.first_seq.unwrap();
    assert!(first > 1 && report.pruned == first - 1, "{report}");
    assert_eq!(report.anchor, Some(first), "starts at a signed checkpoint");
    assert!(report.to_string().contains("pruned"), "{report}");
    let oldest = Record::parse(&jsonl_lines(&files[0])[0]).unwrap();
    assert_eq!(oldest.event().unwrap().kind, EventKind::Checkpoint);
    // The trail says what went, and why.
    let retention: Vec<_> = files
        .iter()
        .flat_map(|f| events_of(f))
        .filter_map(|e| e.retention)
        .collect();
    assert!(
        retention
            .iter()
            .any(|r| r.sink == "jsonl" && r.reason == "max_size" && r.pruned_through == first - 1),
        "{retention:?}"
    );

    // By age: everything older than a second goes at the next rotation.
    let phase_one = log.metrics_snapshot().last_seq;
    log.shutdown().await;

    // Removing more than retention did is still a removal (on a copy of
    // the trail: the oldest kept file goes).
    let copy = tempfile::tempdir().unwrap();
    let side = warden_audit::checkpoint::side_file_for(&files[0]);
    let mut copied = Vec::new();
    for f in s.jsonl_files().iter().chain([&side]) {
        let to = copy.path().join(f.file_name().unwrap());
        std::fs::copy(f, &to).unwrap();
        copied.push(to);
    }
    copied.pop(); // the side file
    std::fs::remove_file(&copied[0]).unwrap();
    let report = verify(&copied[1..], Some(&key));
    assert!(
        matches!(
            report.failure.as_ref().map(|f| &f.problem),
            Some(Problem::Sequence { .. })
        ),
        "{report}"
    );
    let j = s.jsonl.as_mut().unwrap();
    j.retention = RetentionSettings {
        max_age: Some(Duration::from_secs(1)),
        max_size: None,
    };
    let log = start(&s);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for i in 400..460 {
        log.record(call(i)).unwrap();
        if i % 10 == 0 {
            log.flush().await;
        }
    }
    wait_for("age retention", Duration::from_secs(5), || {
        let files = s.jsonl_files();
        let head = files
            .first()
            .and_then(|f| Record::parse(jsonl_lines(f).first()?).ok());
        head.is_some_and(|r| r.seq > phase_one)
    })
    .await;
    log.shutdown().await;
    let files = s.jsonl_files();
    let report = verify(&files, Some(&key));
    assert!(report.is_ok(), "{report}");
    assert!(report.pruned >= phase_one, "{report}");
    let events: Vec<_> = files.iter().flat_map(|f| events_of(f)).collect();
    assert!(events
        .iter()
        .any(|e| e.retention.as_ref().is_some_and(|r| r.reason == "max_age")));
}

#[tokio::test]
async fn sqlite_retention_prunes_from_a_checkpoint_and_verify_sqlite_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.checkpoint.every_records = 20;
    s.retention_interval = Duration::from_millis(100);
    s.sqlite.as_mut().unwrap().retention = RetentionSettings {
        max_age: Some(Duration::from_secs(1)),
        max_size: None,
    };
    let log = start(&s);
    for i in 0..200 {
        log.record(call(i)).unwrap();
    }
    log.flush().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for i in 200..260 {
        log.record(call(i)).unwrap();
    }
    log.flush().await;
    wait_for("SQLite retention", Duration::from_secs(10), || {
        log.metrics_snapshot().retention_pruned["sqlite"] >= 200
    })
    .await;
    log.shutdown().await;

    let db = &s.sqlite.as_ref().unwrap().path;
    let options = VerifyOptions {
        public_key: Some(public_key(dir.path())),
        checkpoints: Some(warden_audit::checkpoint::side_file_for(
            &s.jsonl.as_ref().unwrap().path,
        )),
        ..VerifyOptions::default()
    };
    let report = verify_sqlite(db, &options);
    assert!(report.is_ok(), "{report}");
    let first = report.first_seq.unwrap();
    assert!(first > 200 && report.pruned == first - 1, "{report}");
    assert_eq!(report.anchor, Some(first));
    // The JSONL copy keeps everything (its own retention is off).
    let full = verify(&s.jsonl_files(), Some(&public_key(dir.path())));
    assert!(full.is_ok() && full.first_seq == Some(1), "{full}");
    let marker = events_of(&s.jsonl.as_ref().unwrap().path)
        .into_iter()
        .rev()
        .find_map(|e| e.retention)
        .expect("a retention record");
    assert_eq!(
        (
            marker.sink.as_str(),
            marker.reason.as_str(),
            marker.pruned_through
        ),
        ("sqlite", "max_age", first - 1)
    );

    // Deleting the oldest kept row is a removal, not retention.
    let conn = rusqlite_conn(db);
    conn.execute(
        "DELETE FROM audit_records WHERE seq = ?1",
        [i64::try_from(first).unwrap()],
    )
    .unwrap();
    drop(conn);
    let report = verify_sqlite(db, &options);
    assert!(
        matches!(
            report.failure.as_ref().map(|f| &f.problem),
            Some(Problem::Sequence { .. })
        ),
        "{report}"
    );
}

#[tokio::test]
async fn sqlite_retention_by_size_bounds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.jsonl = None;
    s.checkpoint.every_records = 50;
    s.retention_interval = Duration::from_millis(100);
    let max = 256 * 1024;
    s.sqlite.as_mut().unwrap().retention = RetentionSettings {
        max_age: None,
        max_size: Some(max),
    };
    let log = start(&s);
    for i in 0..3000 {
        log.record(call(i)).unwrap();
        if i % 200 == 0 {
            log.flush().await;
        }
    }
    log.flush().await;
    let db = s.sqlite.as_ref().unwrap().path.clone();
    wait_for("size retention", Duration::from_secs(10), || {
        used_bytes(&db) <= max
    })
    .await;
    log.shutdown().await;
    let report = verify_sqlite(
        &db,
        &VerifyOptions {
            public_key: Some(public_key(dir.path())),
            checkpoints: Some(s.journal_dir.join("audit.checkpoints")),
            ..VerifyOptions::default()
        },
    );
    assert!(report.is_ok(), "{report}");
    assert!(report.pruned > 0 && report.anchor.is_some(), "{report}");
    // Freed pages went back to the file system (incremental auto-vacuum).
    let file = std::fs::metadata(&db).unwrap().len();
    assert!(file <= 2 * max, "{file} bytes on disk");
}

fn rusqlite_conn(db: &Path) -> ::rusqlite::Connection {
    ::rusqlite::Connection::open(db).unwrap()
}

fn used_bytes(db: &Path) -> u64 {
    let c = rusqlite_conn(db);
    let get = |p: &str| -> i64 {
        c.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
            .unwrap()
    };
    ((get("page_count") - get("freelist_count")) * get("page_size")) as u64
}
