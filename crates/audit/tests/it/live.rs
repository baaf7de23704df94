//! Reading the trail while Warden writes it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use warden_audit::verify;

use super::*;

/// Defect 24: `audit verify` on a live trail reported "a record was
/// removed" once, racing a JSONL rotation. A writer appends and rotates
/// (and prunes old files) as fast as it can while verify runs again and
/// again, exactly as the CLI calls it: never a failure.
#[test]
fn verify_on_a_live_trail_never_reports_a_removed_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.sqlite = None;
    let j = s.jsonl.as_mut().unwrap();
    j.rotate_bytes = 4096;
    j.rotate_keep = 4;
    s.checkpoint.every_records = 7;
    let log = start(&s);
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (log, stop, written) = (log.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                log.record(call(i)).unwrap();
                i += 1;
                written.store(i as u64, Ordering::Relaxed);
                if i % 4 == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        })
    };
    let key = public_key(dir.path());
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut runs = 0;
    let mut failure = None;
    while Instant::now() < deadline {
        let report = verify(&s.jsonl_files(), Some(&key));
        runs += 1;
        if !report.is_ok() {
            failure = Some(report.to_string());
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let rotated = s.jsonl_files().len();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(log.shutdown());
    if let Some(f) = failure {
        panic!("verify failed on a live trail (run {runs}):\n{f}");
    }
    assert!(
        written.load(Ordering::Relaxed) > 1000 && rotated > 1 && runs > 20,
        "the race ran: {} records, {rotated} files, {runs} verifications",
        written.load(Ordering::Relaxed)
    );
    let report = verify(&s.jsonl_files(), Some(&key));
    assert!(report.is_ok(), "{report}");
}
