//! `warden audit tail -f`: new records as they come, across rotation.

use std::time::{Duration, Instant};

use warden_audit::{tail, TailOptions};

use super::*;

#[tokio::test]
async fn tail_follows_new_records_across_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.jsonl.as_mut().unwrap().rotate_bytes = 4096;
    let log = start(&s);
    for i in 0..3 {
        log.record(call(i)).unwrap();
    }
    log.flush().await;
    let active = s.jsonl.as_ref().unwrap().path.clone();
    let t = tail(
        &active,
        TailOptions {
            last: 2,
            follow: true,
            poll: Duration::from_millis(20),
        },
    )
    .unwrap();
    let follower = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seqs = Vec::new();
        for r in t {
            let r = r.expect("valid record");
            let is_last = r.event().unwrap().correlation_id.as_deref() == Some("corr-59");
            seqs.push(r.seq);
            if is_last || Instant::now() > deadline {
                break;
            }
        }
        seqs
    });
    for i in 3..60 {
        log.record(call(i)).unwrap();
        if i % 5 == 0 {
            log.flush().await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    log.flush().await;
    let seqs = follower.join().unwrap();
    log.shutdown().await;
    assert!(s.jsonl_files().len() >= 3, "rotation happened");
    assert_eq!(seqs[0], 2, "starts with the last two records");
    let expected: Vec<u64> = (seqs[0]..seqs[0] + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "every record once, in order, across files");
}

#[tokio::test]
async fn tail_without_follow_ends() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path());
    let log = start(&s);
    for i in 0..5 {
        log.record(call(i)).unwrap();
    }
    log.flush().await;
    let got: Vec<u64> = tail(
        &s.jsonl.as_ref().unwrap().path,
        TailOptions {
            last: 3,
            ..TailOptions::default()
        },
    )
    .unwrap()
    .map(|r| r.unwrap().seq)
    .collect();
    assert_eq!(got, [3, 4, 5]);
    log.shutdown().await;
}
