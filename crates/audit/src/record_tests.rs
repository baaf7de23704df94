use super::*;
use crate::event::{Event, EventKind};

fn event_with_tool(tool: &str) -> Event {
    Event {
        tool: Some(tool.to_owned()),
        ..Event::at(
            EventKind::Call,
            crate::Timestamp::from_unix_nanos(1_700_000_000_000_000_000),
        )
    }
}

#[test]
fn a_chained_record_parses_back_exactly() {
    let r = Record::chain(1, GENESIS, &event_with_tool("read"));
    let back = Record::parse(&r.line).unwrap();
    assert_eq!(back.seq, 1);
    assert_eq!(back.hash, r.hash);
    assert_eq!(back.prev, GENESIS);
    assert_eq!(back.event().unwrap().tool.as_deref(), Some("read"));
}

#[test]
fn any_single_byte_change_is_detected() {
    let r = Record::chain(7, [9; 32], &event_with_tool("write_file"));
    let bytes = r.line.as_bytes();
    for i in 0..bytes.len() {
        let mut changed = bytes.to_vec();
        changed[i] = if changed[i] == b'x' { b'y' } else { b'x' };
        let Ok(text) = String::from_utf8(changed) else {
            continue;
        };
        assert!(
            Record::parse(&text).is_err(),
            "change at byte {i} went unnoticed: {text}"
        );
    }
}

#[test]
fn envelope_variants_are_refused() {
    let r = Record::chain(3, GENESIS, &event_with_tool("t"));
    for bad in [
        r.line.replacen("{\"seq\":3", "{\"seq\":03", 1),
        r.line.replacen("{\"seq\":3", "{ \"seq\":3", 1),
        format!("{} ", r.line),
        r.line.replacen(",\"prev\"", ", \"prev\"", 1),
    ] {
        assert!(Record::parse(&bad).is_err(), "{bad}");
    }
}

#[test]
fn safe_formatter_escapes_line_breakers_and_controls() {
    let text = "a\nb\u{2028}c\u{85}d\u{202e}e\u{1b}[31mf\u{e0041}g\u{7f}";
    let json = to_safe_json(&serde_json::json!({ "v": text }));
    assert!(!json.contains('\n'));
    for c in [
        '\u{2028}',
        '\u{85}',
        '\u{202e}',
        '\u{1b}',
        '\u{e0041}',
        '\u{7f}',
    ] {
        assert!(!json.contains(c), "{c:?} not escaped in {json}");
    }
    let back: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(back["v"], text);
}

#[test]
fn timestamps_parse_and_print_rfc3339() {
    let t = crate::Timestamp::parse("2026-03-01T12:00:00.5Z").unwrap();
    assert_eq!(t.to_string(), "2026-03-01T12:00:00.500000000Z");
    assert_eq!(
        crate::Timestamp::parse("2026-03-01").unwrap().to_string(),
        "2026-03-01T00:00:00.000000000Z"
    );
    assert!(crate::Timestamp::parse("yesterday").is_none());
    let back: crate::Timestamp = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(back, t);
}
