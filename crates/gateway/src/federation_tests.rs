use super::*;

fn raw(s: &str) -> &RawValue {
    serde_json::from_str(s).unwrap()
}

#[test]
fn namer_exposes_and_splits() {
    let n = Namer::new("__");
    assert_eq!(n.expose("git", "log").as_deref(), Some("git__log"));
    assert_eq!(n.split("git__log_all"), Some(("git", "log_all")));
    assert_eq!(n.split("git__a__b"), Some(("git", "a__b")));
    assert_eq!(n.split("nosep"), None);
    assert_eq!(n.split("__x"), None);
    assert!(n.expose("git", "has space").is_none());
    assert!(n.expose("git", &"x".repeat(60)).is_none());
    assert!(n.expose("git", "dotted.name").is_none());
}

/// Regression (found by the `federation_page` fuzz target): an upstream
/// tool named `""` was listed as `git__`, a name `split` does not resolve,
/// so clients saw a tool no call could reach. It is refused instead.
#[test]
fn empty_upstream_name_was_listed_but_not_callable() {
    let n = Namer::new("__");
    assert_eq!(n.expose("git", ""), None);
    let result = raw(r#"{"tools":[{"name":""},{"name":"log"}]}"#);
    let page = rewrite_page(ListKind::Tools, "git", result, |name| n.expose("git", name))
        .expect("a tools page");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.refused.len(), 1);
    for item in &page.items {
        let upstream = item.upstream_name.as_deref();
        assert_eq!(n.split(&item.key).map(|(_, name)| name), upstream);
    }
}

#[test]
fn rewrites_only_names_and_keeps_unknown_fields() {
    let r = raw(
        r#"{"tools":[{"name":"echo","description":"d","inputSchema":{"type":"object"},"x-vendor":{"k":1}},{"name":"bad name"}],"nextCursor":"c2"}"#,
    );
    let page = rewrite_page(ListKind::Tools, "srv", r, |n| {
        Namer::new("__").expose("srv", n)
    })
    .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(
        page.items[0].text,
        r#"{"name":"srv__echo","description":"d","inputSchema":{"type":"object"},"x-vendor":{"k":1}}"#
    );
    assert_eq!(page.items[0].upstream_name.as_deref(), Some("echo"));
    assert_eq!(page.refused.len(), 1);
    assert_eq!(page.next_cursor.as_deref(), Some("c2"));
    let out = build_list_result(
        ListKind::Tools,
        page.items.iter().map(|i| i.text.as_str()),
        Some("w"),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tools"][0]["name"], "srv__echo");
    assert_eq!(v["nextCursor"], "w");
}

#[test]
fn resources_keep_uris() {
    let r = raw(r#"{"resources":[{"uri":"notes://1","name":"n"}]}"#);
    let page = rewrite_page(ListKind::Resources, "notes", r, |n| {
        Namer::new("__").expose("notes", n)
    })
    .unwrap();
    assert_eq!(page.items[0].key, "notes://1");
    assert_eq!(page.items[0].text, r#"{"uri":"notes://1","name":"n"}"#);
    assert!(
        rewrite_page(ListKind::Resources, "n", raw(r#"{"tools":[]}"#), |n| Some(
            n.to_owned()
        ))
        .is_err()
    );
}

#[test]
fn cursors_round_trip_and_reject_foreign() {
    let mut m = BTreeMap::new();
    m.insert("a".to_string(), "c1".to_string());
    let c = cursor::encode(&m);
    assert_eq!(cursor::decode(&c), Some(m));
    assert_eq!(cursor::decode("garbage"), None);
    assert_eq!(cursor::decode("w1.!!!"), None);
}

#[test]
fn capability_union() {
    let a = raw(r#"{"capabilities":{"tools":{},"logging":{}}}"#);
    let b = raw(r#"{"capabilities":{"resources":{"subscribe":true},"prompts":{}}}"#);
    let caps = union_capabilities(&[a, b]);
    assert_eq!(caps["tools"]["listChanged"], true);
    assert_eq!(caps["resources"]["subscribe"], true);
    assert!(caps.get("completions").is_none());
    assert!(has_capability(a, "logging"));
    assert!(!has_capability(a, "prompts"));
}

#[test]
fn templates() {
    assert!(template_matches("notes://{id}", "notes://42"));
    assert!(!template_matches("notes://{id}", "notes://a/b"));
    assert!(template_matches("file://{+path}", "file:///etc/x"));
    assert!(!template_matches("notes://{id}", "tickets://1"));
    assert!(!template_matches("notes://{id}", "notes://"));
}

#[test]
fn template_operators_braces_and_caps() {
    // Every operator matches across `/`; a plain expression (even `{}`) does not.
    for op in ["+", "#", "/", ".", ";", "?", "&"] {
        let t = format!("x:{{{op}v}}!");
        assert!(template_matches(&t, "x:a/b!"), "{t}");
        assert!(!template_matches(&t, "x:!"), "{t}: one byte at least");
    }
    assert!(template_matches("x:{}!", "x:ab!"));
    assert!(!template_matches("x:{}!", "x:a/b!"));
    assert!(!template_matches("x:{=v}!", "x:a/b!"), "not an operator");
    // The operator is the byte after the first `{`, up to the first `}`.
    assert!(template_matches("x:{a{+b}!", "x:q!"));
    assert!(!template_matches("x:{a{+b}!", "x:q/r!"));
    // An unterminated `{` makes the rest literal; a stray `}` is literal.
    assert!(template_matches("a{b", "a{b"));
    assert!(!template_matches("a{b", "axb"));
    assert!(template_matches("{x}/c{d", "q/c{d"));
    assert!(template_matches("a}b{v}", "a}bq"));
    // Regex syntax in the template is literal.
    assert!(template_matches(r"a.b*(c)\$^[d]|e{x}", r"a.b*(c)\$^[d]|ez"));
    assert!(!template_matches("a.b", "axb"));
    assert!(!template_matches("a*", "aaa"));
    // Bytes, not characters: two expressions split one two-byte character.
    assert!(template_matches("{a}{b}", "é"));
    assert!(template_matches("é{x}ü", "éßü"));
    assert!(template_matches("", ""));
    assert!(!template_matches("", "a"));
    // Caps: URIs over 8 KiB and templates over 1 KiB never match.
    let long = format!("u:{}", "a".repeat(MAX_TEMPLATE_URI_BYTES - 2));
    assert!(template_matches("u:{x}", &long));
    assert!(!template_matches("u:{x}", &format!("{long}a")));
    let wide = format!("{}{{x}}", "t".repeat(MAX_TEMPLATE_BYTES - 3));
    assert!(UriTemplate::parse(&wide).is_some());
    assert!(UriTemplate::parse(&format!("t{wide}")).is_none());
    assert!(!template_matches(&format!("t{wide}"), "tt"));
    // A compiled template matches like the wrapper, as often as asked.
    let t = UriTemplate::parse("notes://{id}").expect("within the cap");
    assert!(t.matches("notes://42") && !t.matches("notes://4/2"));
}

/// The backtracking matcher `template_matches` used to be; its time is
/// polynomial in the URI's length with the degree the number of
/// expressions. The reference for the linear one.
fn backtracking_template_matches(template: &str, uri: &str) -> bool {
    fn go(t: &[u8], u: &[u8]) -> bool {
        match t.first() {
            None => u.is_empty(),
            Some(b'{') => {
                let Some(close) = t.iter().position(|b| *b == b'}') else {
                    return t == u;
                };
                let expr = &t[1..close];
                let any = matches!(
                    expr.first(),
                    Some(b'+' | b'#' | b'/' | b'.' | b';' | b'?' | b'&')
                );
                let rest = &t[close + 1..];
                (1..=u.len()).any(|n| {
                    let (var, tail) = u.split_at(n);
                    (any || !var.contains(&b'/')) && go(rest, tail)
                })
            }
            Some(c) => u.first() == Some(c) && go(&t[1..], &u[1..]),
        }
    }
    uri.len() <= 8192 && template.len() <= 1024 && go(template.as_bytes(), uri.as_bytes())
}

const TEMPLATE_PIECES: &[&str] = &[
    "a", "b", "/", ".", "é", "*", "\\", "(", "{", "}", "{x}", "{}", "{+x}", "{#x}", "{/x}", "{.x}",
    "{;x}", "{?x}", "{&x}", "{=x}", "{a{x}",
];

fn template_and_uri() -> impl proptest::strategy::Strategy<Value = (String, String)> {
    use proptest::prelude::*;
    let pieces = proptest::collection::vec(proptest::sample::select(TEMPLATE_PIECES), 0..7);
    let fills = proptest::collection::vec("[ab/.é{}]{1,3}", 7);
    let random_uri = r"[ab/.é*(){}\\]{0,10}";
    (pieces, fills, random_uri, any::<bool>()).prop_map(|(pieces, fills, random, instance)| {
        let template = pieces.concat();
        if !instance {
            return (template, random);
        }
        // An instance: each complete expression replaced by a fill.
        let uri = pieces
            .iter()
            .zip(&fills)
            .map(|(p, f)| {
                if p.len() > 1 && p.starts_with('{') && p.ends_with('}') {
                    f.as_str()
                } else {
                    p
                }
            })
            .collect();
        (template, uri)
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

    #[test]
    fn template_matching_agrees_with_the_backtracking_reference(
        (template, uri) in template_and_uri()
    ) {
        proptest::prop_assert_eq!(
            template_matches(&template, &uri),
            backtracking_template_matches(&template, &uri),
            "template {:?} uri {:?}", template, uri
        );
    }
}

/// Regression: the backtracking matcher took time polynomial in the URI's
/// length, of the degree of the number of expressions, so any client could
/// stall routing with one `resources/read`. Each URI here is 8 KiB and
/// fails only at its last bytes: the old matcher took 231 s on the first
/// one in a release build (far longer in a test build), and the others
/// have more expressions. This test timed out (300 s) on the old code.
#[test]
fn template_matching_is_linear_in_uri_length() {
    let cases = [
        ("file://{+dir}/{+name}.{+ext}/x", "/."),
        ("file://{+a}/{+b}/{+c}/{+d}/x", "/"),
        ("notes://{a}.{b}.{c}.{d}.{e}!", "."),
    ];
    for (template, unit) in cases {
        let compiled = UriTemplate::parse(template).expect("within the cap");
        let scheme = &template[..template.find("//").expect("a scheme") + 2];
        let body = unit.repeat((MAX_TEMPLATE_URI_BYTES - scheme.len() - 2) / unit.len());
        let almost = format!("{scheme}{body}/y");
        assert!(almost.len() <= MAX_TEMPLATE_URI_BYTES);
        assert!(!compiled.matches(&almost), "{template}");
        assert!(!template_matches(template, &almost), "{template}");
    }
    // And the linear matcher still finds a match at that size.
    let hit = format!("file://{}/n.e/x", "d/.".repeat(2700));
    assert!(hit.len() <= MAX_TEMPLATE_URI_BYTES);
    assert!(template_matches("file://{+dir}/{+name}.{+ext}/x", &hit));
}
