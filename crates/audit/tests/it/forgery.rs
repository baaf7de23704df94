//! T15: a tool argument holding a newline and a fake JSON record cannot
//! forge an audit record.

use warden_audit::{query, verify, Filter, Record};

use super::*;

#[tokio::test]
async fn a_newline_and_a_fake_record_in_an_argument_stay_inside_their_string() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.arguments = warden_audit::ArgumentsPolicy::Redacted;
    let log = start(&s);
    log.set_secret_scrubber(super::sinks::guard_scrubber());
    log.record(call(0)).unwrap();

    // What an attacker would append: a record line claiming an admin was allowed.
    let fake = Record::chain(
        2,
        [0; 32],
        &Event {
            correlation_id: Some("forged".into()),
            ..call(99)
        },
    );
    let hostile = format!("harmless\n{}\r\n\u{2028}{}\u{1b}[2K", fake.line, fake.line);
    let args_json = serde_json::json!({ "path": hostile }).to_string();
    let args = serde_json::value::RawValue::from_string(args_json).unwrap();
    let mut e = call(1);
    e.input_hash = Some(warden_audit::input_hash(&args));
    e.arguments = log.recorded_arguments(&args);
    e.reason_code = Some(hostile.clone());
    e.tool = Some(hostile.clone());
    log.record(e).unwrap();
    log.record(call(2)).unwrap();
    log.shutdown().await;

    let path = &s.jsonl.as_ref().unwrap().path;
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "three calls and the shutdown checkpoint, one line each"
    );
    for c in ['\r', '\u{2028}', '\u{1b}'] {
        assert!(!text.contains(c), "{c:?} must be escaped");
    }
    for l in &lines {
        let r = Record::parse(l).expect("every line is a genuine record");
        assert_ne!(r.event().unwrap().correlation_id.as_deref(), Some("forged"));
    }
    assert!(verify(&s.jsonl_files(), Some(&public_key(dir.path()))).is_ok());

    // The value itself is intact for investigators.
    let db = &s.sqlite.as_ref().unwrap().path;
    let got = query(
        db,
        &Filter {
            correlation_id: Some("corr-1".into()),
            ..Filter::default()
        },
    )
    .unwrap();
    assert_eq!(got[0].arguments.as_ref().unwrap()["path"], hostile.as_str());
    assert_eq!(got[0].reason_code.as_deref(), Some(hostile.as_str()));
    let forged = query(
        db,
        &Filter {
            correlation_id: Some("forged".into()),
            ..Filter::default()
        },
    )
    .unwrap();
    assert!(forged.is_empty());
}

#[tokio::test]
async fn a_forged_line_appended_to_the_file_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path());
    let log = start(&s);
    for i in 0..3 {
        log.record(call(i)).unwrap();
    }
    log.shutdown().await;
    let path = s.jsonl.as_ref().unwrap().path.clone();
    let lines = jsonl_lines(&path);
    let last = Record::parse(lines.last().unwrap()).unwrap();
    // Even a correctly chained forgery is caught: the log no longer ends
    // with the signed checkpoint the side file names… as long as the
    // checkpoint stands; a forged record after it is unsigned and reported.
    let forged = Record::chain(
        last.seq + 1,
        last.hash,
        &Event {
            correlation_id: Some("forged".into()),
            ..call(99)
        },
    );
    std::fs::write(&path, format!("{}\n{}\n", lines.join("\n"), forged.line)).unwrap();
    let report = verify(&s.jsonl_files(), Some(&public_key(dir.path())));
    assert!(report.is_ok());
    assert_eq!(
        report.unsigned_tail, 1,
        "the appended record is outside every signature: {report}"
    );
}
