//! A full queue spills to the journal: nothing is dropped, whatever the
//! pressure.

use std::collections::HashSet;
use std::sync::Arc;

use warden_audit::verify;

use super::*;

#[tokio::test]
async fn a_queue_of_one_under_four_threads_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.queue_capacity = 1;
    s.batch_max = 1;
    let log = Arc::new(start(&s));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for n in 0..2500 {
                    log.record(call(t * 10_000 + n)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let m = log.metrics_snapshot();
    assert!(
        m.spilled > 0,
        "the test must exercise the spill path: {m:?}"
    );
    Arc::try_unwrap(log).ok().unwrap().shutdown().await;

    let ids = recorded_ids(&s);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 10_000);
    assert_eq!(unique.len(), 10_000);
    assert!(verify(&s.jsonl_files(), Some(&public_key(dir.path()))).is_ok());
    eprintln!("spill test: {} of 10000 events spilled", m.spilled);
}

#[tokio::test]
async fn durable_records_on_a_full_queue_are_fsynced_spills() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.queue_capacity = 1;
    let log = start(&s);
    let mut tasks = Vec::new();
    for i in 0..300 {
        let log = log.clone();
        tasks.push(tokio::spawn(
            async move { log.record_durable(call(i)).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    log.shutdown().await;
    assert_eq!(recorded_ids(&s).len(), 300);
}

#[tokio::test]
async fn events_after_shutdown_are_kept_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path());
    let log = start(&s);
    let late = log.clone();
    log.record(call(1)).unwrap();
    log.shutdown().await;
    late.record(call(2)).unwrap();
    late.record_durable(call(3)).await.unwrap();
    drop(late);
    let log = start(&s);
    assert!(log.metrics_snapshot().recovered >= 2);
    log.shutdown().await;
    let ids = recorded_ids(&s);
    assert_eq!(ids, vec!["corr-1", "corr-2", "corr-3"]);
    assert!(verify(&s.jsonl_files(), Some(&public_key(dir.path()))).is_ok());
}
