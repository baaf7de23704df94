use proptest::prelude::*;
use serde_json::value::RawValue;

use super::*;

fn canon(s: &str) -> Result<String, RegistryError> {
    canonical_json_str(s)
}

#[test]
fn rfc8785_number_examples() {
    // RFC 8785 appendix B (IEEE 754 bit patterns written as their decimal text).
    for (input, want) in [
        ("0", "0"),
        ("-0", "0"),
        ("5e-324", "5e-324"),
        ("-5e-324", "-5e-324"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ("9007199254740992", "9007199254740992"),
        ("9007199254740993", "9007199254740992"),
        ("295147905179352825856", "295147905179352830000"),
        ("9.999999999999997e22", "9.999999999999997e+22"),
        ("1e23", "1e+23"),
        ("0.000001", "0.000001"),
        ("9.999999999999997e-7", "9.999999999999997e-7"),
        ("333333333.3333333", "333333333.3333333"),
        ("1e21", "1e+21"),
        ("1e20", "100000000000000000000"),
        ("-9223372036854775808", "-9223372036854776000"),
        ("18446744073709551615", "18446744073709552000"),
        ("4.50", "4.5"),
        ("2e-3", "0.002"),
        ("0.000000000000000000000000001", "1e-27"),
        ("1E2", "100"),
        ("1.0", "1"),
    ] {
        assert_eq!(canon(input).unwrap(), want, "{input}");
    }
}

#[test]
fn numbers_are_parsed_to_the_nearest_double() {
    // Halfway and near-halfway cases where multiply-by-power-of-ten parsing
    // can be an ulp off; std's parser is correctly rounded.
    for text in [
        "2.00000000000000011102230246251565404236316680908203125",
        "2.00000000000000011102230246251565404236316680908203124",
        "1.00000000000000005",
        "7.038531e-26",
        "2.2250738585072011e-308",
        "123456789012345678901234567890e-10",
    ] {
        let want: f64 = text.parse().unwrap();
        let got: f64 = canon(text).unwrap().parse().unwrap();
        assert_eq!(got.to_bits(), want.to_bits(), "{text}");
    }
}

#[test]
fn rfc8785_sorting_and_escaping_example() {
    let input = r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control\u007f","\u00f6":"Latin Small Letter O With Diaeresis"}"#;
    let want = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\u{7f}\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
    assert_eq!(canon(input).unwrap(), want);
    let input = r#"{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}"#;
    let want = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
    assert_eq!(canon(input).unwrap(), want);
}

#[test]
fn refuses_what_cannot_be_canonicalised() {
    assert!(matches!(canon(r#"{"a":1,"a":2}"#), Err(RegistryError::DuplicateKey(k)) if k == "a"));
    assert!(matches!(
        canon(r#"{"a":{"b":1,"\u0062":2}}"#),
        Err(RegistryError::DuplicateKey(_))
    ));
    assert!(matches!(
        canon("1e400"),
        Err(RegistryError::NumberOutOfRange(_))
    ));
    assert!(matches!(
        canon(r#""\ud800""#),
        Err(RegistryError::InvalidJson(_))
    ));
    assert!(matches!(canon("{"), Err(RegistryError::InvalidJson(_))));
    let deep = format!("{}{}", "[".repeat(80), "]".repeat(80));
    assert!(matches!(canon(&deep), Err(RegistryError::TooDeep(_))));
}

#[test]
fn hash_display_and_parse() {
    let h = ManifestHash::of("{}");
    let s = h.to_string();
    assert_eq!(
        s,
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    assert_eq!(s.parse::<ManifestHash>().unwrap(), h);
    assert_eq!(
        s.to_uppercase()
            .replace("SHA256", "sha256")
            .parse::<ManifestHash>()
            .unwrap(),
        h
    );
    for bad in [
        "",
        "sha256:",
        "md5:00",
        "sha256:zz36fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        &s[..70],
    ] {
        assert!(bad.parse::<ManifestHash>().is_err(), "{bad}");
    }
    assert_eq!(h.short(), "44136fa355b3");
}

#[test]
fn pretty_form_canonicalises_back() {
    let c = canon(r#"{"b":[1,{"x":"a,b:{c}\"q"},[]],"a":{},"c":"\n"}"#).unwrap();
    let pretty = pretty_canonical(&c);
    assert_eq!(pretty, "{\n  \"a\": {},\n  \"b\": [\n    1,\n    {\n      \"x\": \"a,b:{c}\\\"q\"\n    },\n    []\n  ],\n  \"c\": \"\\n\"\n}");
    assert_eq!(canon(&pretty).unwrap(), c);
}

/// Arbitrary JSON values (numbers kept to what round-trips through text).
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i32>().prop_map(|n| serde_json::json!(n)),
        (-1e12f64..1e12).prop_map(|f| serde_json::json!(f)),
        "\\PC{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                "[a-zA-Z0-9_\u{e9}\u{20ac}\u{1f600}]{0,6}",
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Writes a value with members in reverse order and random-ish whitespace.
fn reorder(v: &serde_json::Value, ws: &str) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .rev()
                .map(|(k, v)| {
                    format!(
                        "{ws}{}{ws}:{ws}{}",
                        serde_json::to_string(k).unwrap(),
                        reorder(v, ws)
                    )
                })
                .collect();
            format!("{{{}{ws}}}", parts.join(","))
        }
        serde_json::Value::Array(a) => {
            let parts: Vec<String> = a
                .iter()
                .map(|v| format!("{ws}{}", reorder(v, ws)))
                .collect();
            format!("[{}{ws}]", parts.join(","))
        }
        other => other.to_string(),
    }
}

/// Changes one leaf of a value (the `n`th in document order); `None` when
/// there is no leaf to change.
fn mutate(v: &mut serde_json::Value, n: &mut usize) -> bool {
    match v {
        serde_json::Value::Object(m) => m.values_mut().any(|v| mutate(v, n)),
        serde_json::Value::Array(a) => a.iter_mut().any(|v| mutate(v, n)),
        leaf => {
            if *n > 0 {
                *n -= 1;
                return false;
            }
            *leaf = match leaf.take() {
                serde_json::Value::Null => serde_json::json!(0),
                serde_json::Value::Bool(b) => serde_json::Value::Bool(!b),
                serde_json::Value::Number(x) => serde_json::json!(x.as_f64().unwrap_or(0.0) + 1.0),
                serde_json::Value::String(s) => serde_json::Value::String(format!("{s}x")),
                other => other,
            };
            true
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn key_order_and_whitespace_do_not_change_the_hash(v in json_value(), ws in "[ \t\n\r]{0,3}") {
        let a = canon(&v.to_string()).unwrap();
        let b = canon(&reorder(&v, &ws)).unwrap();
        prop_assert_eq!(&a, &b);
        // Canonical form is a fixed point.
        prop_assert_eq!(canon(&a).unwrap(), a);
    }

    #[test]
    fn any_changed_value_changes_the_hash(v in json_value(), pick in 0usize..32) {
        let before = ManifestHash::of(&canon(&v.to_string()).unwrap());
        let mut changed = v.clone();
        let mut n = pick;
        if mutate(&mut changed, &mut n) {
            let after = ManifestHash::of(&canon(&changed.to_string()).unwrap());
            prop_assert_ne!(before, after, "{} vs {}", v, changed);
        }
    }

    #[test]
    fn no_input_panics(s in "\\PC{0,64}", bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = canon(&s);
        let _ = canon(&String::from_utf8_lossy(&bytes));
        if let Ok(raw) = serde_json::from_str::<&RawValue>(&s) {
            let _ = canonical_json(raw);
        }
    }
}
