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
