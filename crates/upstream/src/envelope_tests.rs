use super::*;

const V: &str = "io.modelcontextprotocol/protocolVersion";
const C: &str = "io.modelcontextprotocol/clientCapabilities";
const I: &str = "io.modelcontextprotocol/clientInfo";

fn envelope() -> Envelope {
    Envelope::from_handshake(
        r#"{"protocolVersion":"2025-11-25","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"warden","version":"1"}}"#,
    )
    .unwrap()
}

fn full_meta() -> String {
    format!(
        r#"{{"{V}":"2026-07-28","{C}":{{"roots":{{"listChanged":true}}}},"{I}":{{"name":"warden","version":"1"}}}}"#
    )
}

#[test]
fn params_absent_are_created() {
    let s = envelope()
        .splice(r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#)
        .unwrap();
    assert_eq!(
        s.text,
        format!(
            r#"{{"params":{{"_meta":{}}},"jsonrpc":"2.0","id":3,"method":"tools/list"}}"#,
            full_meta()
        )
    );
    assert_eq!(s.method, "tools/list");
    assert_eq!(s.name, None);
    serde_json::from_str::<serde_json::Value>(&s.text).unwrap();
}

#[test]
fn params_without_meta_get_one_and_keep_every_other_byte() {
    let text = r#"{ "jsonrpc" : "2.0", "id":7 ,"method":"tools/call","params": { "name":"test_simple_text" , "arguments":{"b":1,"a":[1.50,"\u00e9"]}, "x-unknown":null } }"#;
    let s = envelope().splice(text).unwrap();
    let at = text.find("{ \"name\"").unwrap() + 1;
    let expected = format!(r#"{}"_meta":{},{}"#, &text[..at], full_meta(), &text[at..]);
    assert_eq!(s.text, expected);
    assert_eq!(s.method, "tools/call");
    assert_eq!(s.name.as_deref(), Some("test_simple_text"));
}

#[test]
fn empty_params_get_meta_without_a_stray_comma() {
    let s = envelope()
        .splice(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{ }}"#)
        .unwrap();
    assert_eq!(
        s.text,
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"_meta":{} }}}}"#,
            full_meta()
        )
    );
}

#[test]
fn meta_with_other_keys_keeps_them() {
    let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":"p-1","x":{"y":2}},"name":"t"}}"#;
    let s = envelope().splice(text).unwrap();
    assert_eq!(
        s.text,
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"_meta":{{"{V}":"2026-07-28","{C}":{{"roots":{{"listChanged":true}}}},"{I}":{{"name":"warden","version":"1"}},"progressToken":"p-1","x":{{"y":2}}}},"name":"t"}}}}"#
        )
    );
}

#[test]
fn empty_meta_is_filled() {
    let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{}}}"#;
    let s = envelope().splice(text).unwrap();
    assert_eq!(
        s.text,
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{}}}}}"#,
            full_meta()
        )
    );
}

#[test]
fn an_existing_protocol_version_is_replaced_in_place() {
    let text = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{{"a":1,"{V}" : "2099-01-01","{C}":{{}},"{I}":{{"name":"client"}}}}}}}}"#
    );
    let s = envelope().splice(&text).unwrap();
    assert_eq!(s.text, text.replace("\"2099-01-01\"", "\"2026-07-28\""));
}

#[test]
fn a_non_string_protocol_version_is_replaced_too() {
    let text = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{{"{V}":{{"x":[1]}},"{C}":{{}}}}}}}}"#
    );
    let s = envelope().splice(&text).unwrap();
    assert_eq!(
        s.text,
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{{"{I}":{{"name":"warden","version":"1"}},"{V}":"2026-07-28","{C}":{{}}}}}}}}"#
        )
    );
}

#[test]
fn the_clients_capabilities_and_info_are_kept() {
    let text = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"t","_meta":{{"{C}":{{"sampling":{{}}}},"{I}":{{"name":"their-client","version":"9"}}}}}}}}"#
    );
    let s = envelope().splice(&text).unwrap();
    assert_eq!(
        s.text,
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"t","_meta":{{"{V}":"2026-07-28","{C}":{{"sampling":{{}}}},"{I}":{{"name":"their-client","version":"9"}}}}}}}}"#
        )
    );
}

#[test]
fn capabilities_kept_and_info_added() {
    let text = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{{"name":"p","_meta":{{"{C}":{{}}}}}}}}"#
    );
    let s = envelope().splice(&text).unwrap();
    assert_eq!(
        s.text,
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{{"name":"p","_meta":{{"{V}":"2026-07-28","{I}":{{"name":"warden","version":"1"}},"{C}":{{}}}}}}}}"#
        )
    );
    assert_eq!(s.name.as_deref(), Some("p"));
}

#[test]
fn escaped_keys_are_recognised() {
    // `\/` is a legal escape of `/`: the key is the envelope key.
    let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol\/protocolVersion":"x"}}}"#;
    let s = envelope().splice(text).unwrap();
    assert!(s
        .text
        .contains(r#""io.modelcontextprotocol\/protocolVersion":"2026-07-28""#));
    assert_eq!(s.text.matches("protocolVersion").count(), 1, "{}", s.text);
}

#[test]
fn handshake_without_capabilities_or_info() {
    let e = Envelope::from_handshake(r#"{"protocolVersion":"2025-11-25"}"#).unwrap();
    assert_eq!(e.meta(), format!(r#"{{"{V}":"2026-07-28","{C}":{{}}}}"#));
    for bad in ["[]", "{", r#"{"capabilities":1}"#, r#"{"clientInfo":"x"}"#] {
        assert!(
            matches!(Envelope::from_handshake(bad), Err(UpstreamError::Config(_))),
            "{bad}"
        );
    }
}

#[test]
fn refuses_what_cannot_carry_the_envelope() {
    for bad in [
        r#"{"jsonrpc":"2.0","method":"notifications/x"}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":[1]}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"_meta":null}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"_meta":{},"_meta":{}}}"#.to_owned(),
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{{"_meta":{{"{C}":{{}},"{C}":{{}}}}}}}}"#
        ),
        "not json".to_owned(),
    ] {
        assert!(
            matches!(
                envelope().splice(&bad),
                Err(UpstreamError::InvalidRequest(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn name_headers() {
    let e = envelope();
    let name = |m: &str, p: &str| {
        e.splice(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{m}","params":{p}}}"#
        ))
        .unwrap()
        .name
    };
    assert_eq!(
        name("resources/read", r#"{"uri":"test://a b"}"#).as_deref(),
        Some("test://a b")
    );
    assert_eq!(name("tools/call", r#"{"name":7}"#), None);
    assert_eq!(name("tools/list", r#"{"name":"x"}"#), None);
    assert_eq!(
        name("tools/call", r#"{"name":"caf\u00e9"}"#).as_deref(),
        Some("=?base64?Y2Fmw6k=?=")
    );
}

#[test]
fn header_values_are_encoded_like_the_reference() {
    // Expected values from mcp.shared.inbound.encode_header_value.
    for (value, encoded) in [
        ("get_weather", "get_weather"),
        ("a b", "a b"),
        (" lead", "=?base64?IGxlYWQ=?="),
        ("trail ", "=?base64?dHJhaWwg?="),
        ("tab\t", "=?base64?dGFiCQ==?="),
        ("日本", "=?base64?5pel5pys?="),
        ("=?base64?abc?=", "=?base64?PT9iYXNlNjQ/YWJjPz0=?="),
        ("=?base64?=", "=?base64?="),
        ("", ""),
    ] {
        assert_eq!(encode_header_value(value), encoded, "{value:?}");
    }
}

#[test]
fn base64_vectors() {
    // RFC 4648 §10.
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
    assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
}
