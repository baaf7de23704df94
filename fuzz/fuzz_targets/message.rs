//! Message parsing: `message::parse` (the strict pass, then the envelope),
//! and `parse_one` / `parse_validated` on text that never passed the strict
//! pass. Every view of a parsed message is read, and an id spliced by
//! `EditSet` must leave a message that passes the strict pass again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_protocol::edit::EditSet;
use warden_protocol::message::{self, as_str, elements, member, members, Incoming, Message};
use warden_protocol::{method, modern, strict, Limits, ProtocolVersion};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let allow_batch = flags & 1 == 1;
    match message::parse(text, &Limits::default(), allow_batch) {
        Ok(Incoming::Single(m)) => exercise(&m, true),
        Ok(Incoming::Batch(ms)) => ms.iter().for_each(|m| exercise(m, true)),
        Err(e) => {
            let _ = (e.code(), e.http_status(), e.to_string());
        }
    }
    if let Ok(m) = message::parse_one(text) {
        exercise(&m, false);
    }
    let _ = message::parse_validated(text, allow_batch);
});

fn exercise(m: &Message<'_>, validated: bool) {
    let name = m.method();
    let _ = (
        method::route(name),
        method::is_server_to_client_request(name),
    );
    let _ = (modern::name_param(name), modern::removed_in_modern(name));
    let _ = ProtocolVersion::parse(name);
    for key in [
        "name",
        "uri",
        "cursor",
        "arguments",
        "_meta",
        "progressToken",
    ] {
        let _ = (m.param(key), m.param_str(key));
    }
    for raw in [m.params, m.result, m.error].into_iter().flatten() {
        let _ = (
            members(raw),
            elements(raw),
            as_str(raw),
            member(raw, "_meta"),
        );
    }
    let Some(id) = m.id else {
        return;
    };
    let _ = (id.raw(), id.as_u64());
    let mut edits = EditSet::new();
    if !edits.replace(m.text, id.raw_value(), "\"w-7\"".to_owned()) {
        return;
    }
    let spliced = edits.apply(m.text);
    if validated {
        let spliced = spliced.expect("an id splice applies");
        assert!(
            strict::validate(spliced.as_bytes(), &Limits::default()).is_ok(),
            "splicing the id broke the message"
        );
    }
}
