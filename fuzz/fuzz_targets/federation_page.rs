//! An upstream's list page through federation (`rewrite_page`, then
//! `build_list_result`), and its initialize result through
//! `union_capabilities` / `has_capability`. As in the gateway, only text
//! that passed the strict pass gets here. A rewritten tool or prompt names
//! its exposed name, and the merged list passes the strict pass again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use warden_gateway::federation::{
    build_list_result, has_capability, rewrite_page, union_capabilities, Namer,
};
use warden_protocol::method::ListKind;
use warden_protocol::{strict, Limits};

const KINDS: [ListKind; 4] = [
    ListKind::Tools,
    ListKind::Prompts,
    ListKind::Resources,
    ListKind::ResourceTemplates,
];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if strict::validate(text.as_bytes(), &Limits::default()).is_err() {
        return;
    }
    let Ok(result) = serde_json::from_str::<&RawValue>(text) else {
        return;
    };
    let _ = union_capabilities(&[result, result]);
    let _ = has_capability(result, "resources");

    let kind = KINDS[usize::from(flags % 4)];
    let namer = Namer::new("__");
    let Ok(page) = rewrite_page(kind, "srv", result, |name| namer.expose("srv", name)) else {
        return;
    };
    for item in &page.items {
        let value: serde_json::Value =
            serde_json::from_str(&item.text).expect("a rewritten item is one JSON value");
        if let Some(upstream) = &item.upstream_name {
            assert_eq!(value["name"].as_str(), Some(item.key.as_str()));
            assert_eq!(namer.split(&item.key), Some(("srv", upstream.as_str())));
        }
    }
    let merged = build_list_result(
        kind,
        page.items.iter().map(|i| i.text.as_str()),
        page.next_cursor.as_deref(),
    );
    if let Err(e) = strict::validate(merged.as_bytes(), &Limits::default()) {
        panic!("the merged list fails the strict pass: {e}");
    }
});
