use std::collections::BTreeMap;

use cedar_policy::RestrictedExpression;
use proptest::prelude::*;
use serde_json::value::RawValue;

use super::*;

fn decl(pairs: &[(&str, ArgType)]) -> BTreeMap<String, ArgType> {
    pairs
        .iter()
        .map(|(k, t)| ((*k).to_owned(), t.clone()))
        .collect()
}

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).expect("valid JSON")
}

/// Compared as evaluated values (sets deduplicated, source locations
/// ignored), the way Cedar will see them.
#[derive(Debug, PartialEq)]
struct Value(cedar_policy::Context);

fn value(e: RestrictedExpression) -> Value {
    Value(cedar_policy::Context::from_pairs([("v".to_owned(), e)]).expect("a Cedar value"))
}

fn norm(d: &BTreeMap<String, ArgType>, json: &str) -> Result<Value, ArgumentError> {
    normalise(d, Some(&raw(json))).map(value)
}

fn expr(s: &str) -> Value {
    value(s.parse().expect("restricted expression"))
}

#[test]
fn scalars_by_declared_type() {
    let d = decl(&[
        ("s", ArgType::String),
        ("n", ArgType::Long),
        ("b", ArgType::Bool),
        ("d", ArgType::Decimal),
    ]);
    let got = norm(
        &d,
        r#"{"s":"x","n":3,"b":true,"d":1.25,"other":[1,{"deep":null}]}"#,
    );
    assert_eq!(
        got,
        Ok(expr(
            r#"{ "b": true, "d": decimal("1.25"), "n": 3, "s": "x" }"#
        ))
    );
}

#[test]
fn nulls_are_absent_and_undeclared_keys_are_invisible() {
    let d = decl(&[("s", ArgType::String)]);
    assert_eq!(norm(&d, r#"{"s":null,"x":1}"#), Ok(expr("{}")));
    assert_eq!(norm(&d, "null"), Ok(expr("{}")));
    assert_eq!(normalise(&d, None).map(value), Ok(expr("{}")));
}

#[test]
fn mismatches_name_the_path_not_the_value() {
    let d = decl(&[("repo", ArgType::String)]);
    let e = norm(&d, r#"{"repo":["secret-value"]}"#).unwrap_err();
    assert_eq!(e.0, "arguments.repo: expected a string");
    assert!(!e.0.contains("secret"));
    let e = norm(&d, r#"[1]"#).unwrap_err();
    assert_eq!(e.0, "arguments: expected an object");
}

#[test]
fn longs_accept_integral_floats_only() {
    let d = decl(&[("n", ArgType::Long)]);
    assert_eq!(norm(&d, r#"{"n":10.0}"#), Ok(expr(r#"{ "n": 10 }"#)));
    assert_eq!(norm(&d, r#"{"n":-7}"#), Ok(expr(r#"{ "n": -7 }"#)));
    assert!(norm(&d, r#"{"n":10.5}"#).is_err());
    assert!(norm(&d, r#"{"n":1e300}"#).is_err());
    assert!(norm(&d, r#"{"n":18446744073709551615}"#).is_err());
    assert!(norm(&d, r#"{"n":"10"}"#).is_err());
}

#[test]
fn decimals_are_never_rounded() {
    let d = decl(&[("d", ArgType::Decimal)]);
    assert_eq!(
        norm(&d, r#"{"d":2}"#),
        Ok(expr(r#"{ "d": decimal("2.0") }"#))
    );
    assert_eq!(
        norm(&d, r#"{"d":-0.5}"#),
        Ok(expr(r#"{ "d": decimal("-0.5") }"#))
    );
    assert_eq!(
        norm(&d, r#"{"d":1.5e2}"#),
        Ok(expr(r#"{ "d": decimal("150.0") }"#))
    );
    assert!(norm(&d, r#"{"d":0.12345}"#).is_err());
    assert!(norm(&d, r#"{"d":1e20}"#).is_err());
}

#[test]
fn sets_and_records() {
    let d = decl(&[
        ("tags", ArgType::Set(Box::new(ArgType::String))),
        (
            "opts",
            ArgType::Record(decl(&[("force", ArgType::Bool), ("n", ArgType::Long)])),
        ),
    ]);
    assert_eq!(
        norm(&d, r#"{"tags":["a","b","a"],"opts":{"force":false,"x":1}}"#),
        Ok(expr(
            r#"{ "opts": { "force": false }, "tags": ["a", "b"] }"#
        ))
    );
    let e = norm(&d, r#"{"tags":["a",null]}"#).unwrap_err();
    assert_eq!(e.0, "arguments.tags[1]: null is not allowed in an array");
    let e = norm(&d, r#"{"opts":{"n":"1"}}"#).unwrap_err();
    assert_eq!(e.0, "arguments.opts.n: expected an integer");
}

#[test]
fn duplicate_declared_keys_are_refused() {
    let d = decl(&[("repo", ArgType::String)]);
    let e = norm(&d, r#"{"repo":"acme/web","repo":"evil/x"}"#).unwrap_err();
    assert_eq!(e.0, "arguments.repo: duplicate key");
}

#[test]
fn paths_are_normalised_lexically() {
    assert_eq!(
        normalise_path("/workspace/../etc/passwd").as_deref(),
        Some("/etc/passwd")
    );
    assert_eq!(normalise_path("/a/./b//c/").as_deref(), Some("/a/b/c"));
    assert_eq!(normalise_path("/../../x").as_deref(), Some("/x"));
    assert_eq!(normalise_path("a/../../b").as_deref(), Some("../b"));
    assert_eq!(normalise_path("./").as_deref(), Some("."));
    assert_eq!(normalise_path("/").as_deref(), Some("/"));
    assert_eq!(normalise_path(""), None);
    assert_eq!(normalise_path("/a\0b"), None);
    let d = decl(&[("p", ArgType::Path)]);
    assert_eq!(
        norm(&d, r#"{"p":"/workspace/x/../../etc"}"#),
        Ok(expr(r#"{ "p": "/etc" }"#))
    );
}

#[test]
fn emails() {
    assert_eq!(
        split_email("Ann@ACME.com"),
        Some(("Ann@acme.com".into(), "acme.com".into()))
    );
    for bad in [
        "a@b@c.com",
        "@acme.com",
        "a@",
        "a@.acme.com",
        "a@acme.com.",
        "a b@c.d",
        "a@ac me.com",
        "plain",
    ] {
        assert_eq!(split_email(bad), None, "{bad}");
    }
    let d = decl(&[
        ("to", ArgType::Set(Box::new(ArgType::Email))),
        ("from", ArgType::Email),
    ]);
    assert_eq!(
        norm(&d, r#"{"to":["a@x.com","b@Y.com"],"from":"me@x.com"}"#),
        Ok(expr(
            r#"{ "from": { "address": "me@x.com", "domain": "x.com" },
                 "to": { "addresses": ["a@x.com", "b@y.com"], "domains": ["x.com", "y.com"] } }"#
        ))
    );
    assert_eq!(
        norm(&d, r#"{"to":["a@x.com", 3]}"#).unwrap_err().0,
        "arguments.to[1]: expected an e-mail address"
    );
}

#[test]
fn ip_addresses() {
    let d = decl(&[("ip", ArgType::IpAddr)]);
    assert!(norm(&d, r#"{"ip":"10.1.2.3"}"#).is_ok());
    assert!(norm(&d, r#"{"ip":"10.0.0.0/8"}"#).is_ok());
    assert!(norm(&d, r#"{"ip":"::1"}"#).is_ok());
    for bad in [
        "10.0.0.0/33",
        "010.0.0.1",
        "0x7f.1",
        "2130706433",
        "10.0.0.1/",
        "host",
    ] {
        assert!(norm(&d, &format!(r#"{{"ip":"{bad}"}}"#)).is_err(), "{bad}");
    }
}

#[test]
fn nothing_declared_still_refuses_non_objects() {
    let d = BTreeMap::new();
    assert_eq!(norm(&d, r#"{"a":1}"#), Ok(expr("{}")));
    assert_eq!(norm(&d, "null"), Ok(expr("{}")));
    assert!(norm(&d, "[1]").is_err());
    assert!(norm(&d, "\"x\"").is_err());
}

#[test]
fn type_names() {
    for (name, ty) in [
        ("string", ArgType::String),
        ("set<email>", ArgType::Set(Box::new(ArgType::Email))),
        (
            "set<set<long>>",
            ArgType::Set(Box::new(ArgType::Set(Box::new(ArgType::Long)))),
        ),
    ] {
        assert_eq!(ArgType::parse(name), Some(ty.clone()));
        assert_eq!(ty.name(), name);
    }
    assert_eq!(ArgType::parse("float"), None);
    assert_eq!(ArgType::parse("set<>"), None);
}

// ----- property: normalisation never panics ---------------------------------

fn arb_type() -> impl Strategy<Value = ArgType> {
    let leaf = prop_oneof![
        Just(ArgType::String),
        Just(ArgType::Long),
        Just(ArgType::Decimal),
        Just(ArgType::Bool),
        Just(ArgType::Path),
        Just(ArgType::Email),
        Just(ArgType::IpAddr),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| ArgType::Set(Box::new(t))),
            prop::collection::btree_map("[a-c]{1,2}", inner, 0..4).prop_map(ArgType::Record),
        ]
    })
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<u64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::json!(f)),
        "[a-c@./0-9:]{0,12}".prop_map(serde_json::Value::String),
        any::<String>().prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-c]{1,2}", inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any JSON against any declarations: a value or an error, never a panic;
    /// and what comes out is a value Cedar accepts in a context.
    #[test]
    fn normalisation_never_panics(
        declared in prop::collection::btree_map("[a-c]{1,2}", arb_type(), 0..4),
        json in arb_json(),
    ) {
        let text = json.to_string();
        let raw = RawValue::from_string(text).expect("serialised JSON is valid");
        if let Ok(v) = normalise(&declared, Some(&raw)) {
            let ctx = cedar_policy::Context::from_pairs([("arguments".to_owned(), v)]);
            prop_assert!(ctx.is_ok(), "{:?}", ctx.err());
        }
    }

    /// Arbitrary (possibly invalid) text never panics either.
    #[test]
    fn arbitrary_text_never_panics(
        declared in prop::collection::btree_map("[a-c]{1,2}", arb_type(), 0..4),
        text in "\\PC{0,64}",
    ) {
        if let Ok(raw) = RawValue::from_string(text) {
            let _ = normalise(&declared, Some(&raw));
        }
    }

    #[test]
    fn paths_never_climb_above_root(p in "(/|[a-z.]{1,3}/|\\.\\./){0,12}") {
        if let Some(n) = normalise_path(&format!("/{p}")) {
            prop_assert!(n.starts_with('/'));
            prop_assert!(!n.split('/').any(|s| s == ".." || s == "."));
        }
    }
}
