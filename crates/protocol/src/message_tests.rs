use super::*;

fn one(s: &str) -> Result<Message<'_>, WireError> {
    match parse(s, &Limits::default(), false)? {
        Incoming::Single(m) => Ok(m),
        Incoming::Batch(_) => panic!("batch"),
    }
}

#[test]
fn classifies_messages() {
    let m = one(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a"}}"#).unwrap();
    assert_eq!(m.kind, Kind::Request);
    assert_eq!(m.id.unwrap().raw(), "7");
    assert_eq!(m.param_str("name").as_deref(), Some("a"));
    let n = one(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
    assert_eq!(n.kind, Kind::Notification);
    let r = one(r#"{"jsonrpc":"2.0","id":"x","result":{}}"#).unwrap();
    assert_eq!(r.kind, Kind::Result);
    let e = one(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"m"}}"#).unwrap();
    assert_eq!(e.kind, Kind::Error);
    assert!(e.id.is_none());
}

#[test]
fn rejects_bad_envelopes() {
    for bad in [
        r#"[]"#,
        r#""str""#,
        r#"{"id":1,"method":"x"}"#,
        r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#,
        r#"{"jsonrpc":"2.0","id":true,"method":"x"}"#,
        r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"x","result":{}}"#,
        r#"{"jsonrpc":"2.0","id":1}"#,
        r#"{"jsonrpc":"2.0","result":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":""}"#,
        r#"{"jsonrpc":"2.0","id":1e3,"method":"x"}"#,
    ] {
        assert!(one(bad).is_err(), "accepted {bad}");
    }
}

#[test]
fn batches_only_when_allowed() {
    let b = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"n"}]"#;
    assert!(matches!(
        parse(b, &Limits::default(), false),
        Err(WireError::BatchNotAllowed(_))
    ));
    match parse(b, &Limits::default(), true).unwrap() {
        Incoming::Batch(v) => assert_eq!(v.len(), 2),
        _ => panic!(),
    }
    assert!(matches!(
        parse("[]", &Limits::default(), true),
        Err(WireError::EmptyBatch)
    ));
}

#[test]
fn member_helpers_borrow_and_unescape() {
    let v: &RawValue = serde_json::from_str(r#"{"a":"x\ny","b":[1,{"c":2}],"d":"plain"}"#).unwrap();
    assert_eq!(as_str(member(v, "a").unwrap()).as_deref(), Some("x\ny"));
    assert!(matches!(
        as_str(member(v, "d").unwrap()),
        Some(Cow::Borrowed("plain"))
    ));
    assert_eq!(elements(member(v, "b").unwrap()).unwrap().len(), 2);
    let ms = members(v).unwrap();
    assert_eq!(
        ms.iter().map(|(k, _)| k.as_ref()).collect::<Vec<_>>(),
        ["a", "b", "d"]
    );
    assert!(member(v, "zz").is_none());
}
