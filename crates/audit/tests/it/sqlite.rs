//! `warden audit query`: principal, tool, decision, time range.

use warden_audit::{query, query_records, Decision, EventKind, Filter, Timestamp};

use super::*;

#[tokio::test]
async fn queries_by_principal_tool_decision_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path());
    let log = start(&s);
    let base = 1_767_787_200_000_000_000i64; // 2026-01-07T12:00:00Z
    for i in 0..30 {
        let mut e = call(i);
        e.time = Timestamp::from_unix_nanos(base + i as i64 * 60_000_000_000); // a minute apart
        log.record(e).unwrap();
    }
    log.shutdown().await;
    let db = s.sqlite.as_ref().unwrap().path.clone();

    let all = query(
        &db,
        &Filter {
            kind: Some(EventKind::Call),
            ..Filter::default()
        },
    )
    .unwrap();
    assert_eq!(all.len(), 30);

    let alice = query(
        &db,
        &Filter {
            principal: Some("user-1".into()),
            ..Filter::default()
        },
    )
    .unwrap();
    assert_eq!(alice.len(), 10);
    assert!(alice.iter().all(|e| e.subject() == Some("user-1")));

    let writes = query(
        &db,
        &Filter {
            tool: Some("fs__write_file".into()),
            ..Filter::default()
        },
    )
    .unwrap();
    assert_eq!(writes.len(), 15);
    let writes2 = query(
        &db,
        &Filter {
            tool: Some("write_file".into()),
            ..Filter::default()
        },
    )
    .unwrap();
    assert_eq!(writes, writes2);

    let denied = query(
        &db,
        &Filter {
            decision: Some(Decision::Deny),
            ..Filter::default()
        },
    )
    .unwrap();
    assert_eq!(denied.len(), 6);

    let window = query(
        &db,
        &Filter {
            since: Timestamp::parse("2026-01-07T12:10:00Z"),
            until: Timestamp::parse("2026-01-07T12:20:00Z"),
            ..Filter::default()
        },
    )
    .unwrap();
    assert_eq!(window.len(), 10);
    assert_eq!(window[0].correlation_id.as_deref(), Some("corr-10"));

    let newest = query(
        &db,
        &Filter {
            limit: Some(2),
            newest_first: true,
            kind: Some(EventKind::Call),
            ..Filter::default()
        },
    )
    .unwrap();
    assert_eq!(
        newest
            .iter()
            .map(|e| e.correlation_id.clone().unwrap())
            .collect::<Vec<_>>(),
        ["corr-29", "corr-28"]
    );

    let combined = query(
        &db,
        &Filter {
            principal: Some("user-0".into()),
            decision: Some(Decision::Deny),
            ..Filter::default()
        },
    )
    .unwrap();
    assert_eq!(combined.len(), 2); // i = 0, 15

    // Records read back are checked: a modified row is flagged.
    let records = query_records(&db, &Filter::default()).unwrap();
    assert!(records.iter().all(|r| r.intact));
    let options = warden_audit::VerifyOptions {
        public_key: Some(public_key(dir.path())),
        checkpoints: Some(warden_audit::checkpoint::side_file_for(
            &s.jsonl.as_ref().unwrap().path,
        )),
        ..Default::default()
    };
    let report = warden_audit::verify_sqlite(&db, &options);
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, 31, "30 calls and the shutdown checkpoint");
    assert_eq!(report.side_entries_checked, 1);
    tamper_row(&db);
    let seq4 = query_records(
        &db,
        &Filter {
            correlation_id: Some("corr-4".into()),
            ..Filter::default()
        },
    )
    .unwrap()[0]
        .seq;
    let report = warden_audit::verify_sqlite(&db, &options);
    let f = report.failure.expect("the edited row is named");
    assert_eq!(
        (f.line, f.seq, f.problem),
        (seq4, Some(seq4), warden_audit::Problem::HashMismatch)
    );
    let records = query_records(
        &db,
        &Filter {
            correlation_id: Some("corr-4".into()),
            ..Filter::default()
        },
    )
    .unwrap();
    assert!(!records[0].intact, "a tampered row must not read as intact");
}

/// Edits one row behind the writer's back.
fn tamper_row(db: &std::path::Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let n = conn
        .execute(
            "UPDATE audit_records SET record = replace(record, 'read_file', 'rm_rf') WHERE correlation_id = 'corr-4'",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn query_on_a_missing_database_is_an_error_not_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nope.db");
    assert!(query(&db, &Filter::default()).is_err());
    assert!(!db.exists());
}
