//! No input panics the guard: arbitrary arguments, results, errors and
//! stream chunks.

use proptest::prelude::*;
use serde_json::value::RawValue;
use warden_guard::{Guard, GuardSettings};

fn guard() -> &'static Guard {
    static G: std::sync::OnceLock<Guard> = std::sync::OnceLock::new();
    G.get_or_init(|| Guard::new(&GuardSettings::default()).expect("guard"))
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        ".{0,40}".prop_map(serde_json::Value::String),
        "[ -~\u{200b}\u{202e}\u{e0041}@0-9.:-]{0,60}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn detect_never_panics(s in ".{0,300}") {
        let _ = guard().detect(&s);
    }

    #[test]
    fn input_never_panics(args in json_value(), schema in json_value()) {
        let a = RawValue::from_string(args.to_string()).unwrap();
        let s = RawValue::from_string(schema.to_string()).unwrap();
        let _ = guard().check_input("s__t", "s", Some(&s), Some(&a));
        let _ = guard().check_input("s__t", "s", None, Some(&a));
    }

    #[test]
    fn output_never_panics(result in json_value(), method in prop::sample::select(vec!["tools/call", "resources/read", "prompts/get", "x/y"])) {
        let r = RawValue::from_string(result.to_string()).unwrap();
        let v = guard().inspect_output("s__t", "s", method, &r);
        if let Some(text) = v.rewritten {
            prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
        }
        let _ = guard().sanitize_error(&r, "cid");
    }

    #[test]
    fn stream_never_panics_and_keeps_clean_text(chunks in prop::collection::vec("[a-z ]{0,50}", 0..20)) {
        let mut r = guard().stream_redactor("s__t", "s");
        let mut out = String::new();
        for c in &chunks {
            out.push_str(&r.push(c));
        }
        out.push_str(&r.finish());
        prop_assert_eq!(out, chunks.concat());
    }
}
