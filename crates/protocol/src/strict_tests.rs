use super::*;

fn check(s: &str) -> Result<(), WireError> {
    validate(s.as_bytes(), &Limits::default())
}

#[test]
fn accepts_ordinary_messages() {
    check(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#).unwrap();
    check(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).unwrap();
    // Same key in different objects is fine.
    check(r#"{"a":{"name":1},"b":{"name":2}}"#).unwrap();
    // Case variants deep inside arguments are data, not protocol.
    check(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"Name":1,"name":2}}}"#).unwrap();
}

#[test]
fn rejects_duplicate_keys_anywhere() {
    assert!(matches!(
        check(r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#),
        Err(WireError::DuplicateKey(k)) if k == "id"
    ));
    assert!(matches!(
        check(r#"{"params":{"arguments":{"deep":{"x":1,"x":2}}}}"#),
        Err(WireError::DuplicateKey(_))
    ));
    // An escaped spelling of the same key is the same key.
    assert!(matches!(
        check(r#"{"method":"a","\u006dethod":"b"}"#),
        Err(WireError::DuplicateKey(_))
    ));
}

#[test]
fn rejects_case_variant_protocol_keys() {
    assert!(matches!(
        check(r#"{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}"#),
        Err(WireError::CaseVariantKey(_, "method"))
    ));
    assert!(matches!(
        check(r#"{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","method":"ping"}"#),
        Err(WireError::CaseVariantKey(_, "method"))
    ));
    assert!(matches!(
        check(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","NAME":"b"}}"#),
        Err(WireError::CaseVariantKey(_, "name"))
    ));
    assert!(matches!(
        check(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":1,"progresstoken":2}}}"#
        ),
        Err(WireError::CaseVariantKey(_, "progressToken"))
    ));
}

#[test]
fn rejects_depth_size_and_trailing_garbage() {
    let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
    assert!(matches!(
        check(&deep),
        Err(WireError::TooDeep { limit: 64 })
    ));
    let limits = Limits {
        max_bytes: 10,
        max_depth: 64,
    };
    assert!(matches!(
        validate(b"{\"a\":\"0123456789\"}", &limits),
        Err(WireError::TooLarge { .. })
    ));
    assert!(matches!(check(r#"{"a":1} x"#), Err(WireError::Parse(_))));
    assert!(matches!(check(r#"{"a":1"#), Err(WireError::Parse(_))));
    assert!(matches!(check("\u{feff}{}"), Err(WireError::Parse(_))));
}

#[test]
fn depth_limit_is_exact() {
    let limits = Limits {
        max_bytes: 1 << 20,
        max_depth: 3,
    };
    validate(br#"{"a":{"b":[1]}}"#, &limits).unwrap();
    assert!(validate(br#"{"a":{"b":[[1]]}}"#, &limits).is_err());
}

proptest::proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let _ = validate(&bytes, &Limits::default());
    }

    #[test]
    fn agrees_with_serde_json_on_valid_json(v in arb_json()) {
        let s = serde_json::to_string(&v).unwrap();
        // serde_json::Value maps never hold duplicate keys, and generated
        // keys are lower-case, so no case variants: it must validate.
        let limits = Limits { max_bytes: 1 << 20, max_depth: 64 };
        let ok = validate(s.as_bytes(), &limits).is_ok();
        proptest::prop_assert!(ok);
    }
}

use proptest::prelude::*;

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z]{0,8}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
