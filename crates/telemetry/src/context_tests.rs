use proptest::prelude::*;

use super::*;

const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn parses_the_w3c_example() {
    let p = TraceParent::parse(GOOD).unwrap();
    assert_eq!(p.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(
        p.parent_id,
        [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
    );
    assert!(p.is_sampled());
    assert_eq!(p.to_string(), GOOD);
    let unsampled = TraceParent::parse(&GOOD.replace("-01", "-00")).unwrap();
    assert!(!unsampled.is_sampled());
    // Optional whitespace around a field value.
    assert_eq!(TraceParent::parse(&format!(" {GOOD}\t")), Some(p));
}

#[test]
fn refuses_malformed_values() {
    let cases = [
        "",
        "00",
        // uppercase hex
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
        // all-zero ids
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        // other versions, including the forbidden ff
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // lengths
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
        // separators and characters
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-+1",
        "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // multibyte text of the right byte length
        "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
    ];
    for c in cases {
        assert_eq!(TraceParent::parse(c), None, "{c:?}");
    }
}

#[test]
fn tracestate_is_validated() {
    let s = parse_tracestate("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7").unwrap();
    assert_eq!(s.get("congo"), Some("t61rcWkgMzE"));
    assert_eq!(s.get("rojo"), Some("00f067aa0ba902b7"));
    assert!(parse_tracestate("").is_none());
    assert!(parse_tracestate("no-equals-sign").is_none());
    assert!(parse_tracestate("Upper=1").is_none());
    assert!(parse_tracestate("a=1,a=2").is_none());
    assert!(parse_tracestate(&format!("a={}", "x".repeat(600))).is_none());
    let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
    assert!(parse_tracestate(&many.join(",")).is_none());
    let ok: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
    assert!(parse_tracestate(&ok.join(",")).is_some());
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in ".{0,80}") {
        let _ = TraceParent::parse(&s);
        let _ = parse_tracestate(&s);
    }

    #[test]
    fn near_valid_text_never_panics(s in "[0-9a-fA-F-]{50,60}") {
        if let Some(p) = TraceParent::parse(&s) {
            // Whatever parses renders back to exactly what was given.
            prop_assert_eq!(p.to_string(), s);
        }
    }

    #[test]
    fn valid_values_round_trip(
        trace in proptest::array::uniform16(any::<u8>()),
        parent in proptest::array::uniform8(any::<u8>()),
        flags in any::<u8>(),
    ) {
        prop_assume!(trace != [0; 16] && parent != [0; 8]);
        let p = TraceParent { trace_id: trace, parent_id: parent, flags };
        prop_assert_eq!(TraceParent::parse(&p.to_string()), Some(p));
    }
}
