//! Warden's list cursors (`federation::cursor`): any text decodes without
//! panicking, a decoded cursor re-encodes to one that decodes the same,
//! and any map of upstream cursors survives encode/decode.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use warden_fuzz::fields;
use warden_gateway::federation::cursor;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for candidate in [text.to_string(), format!("w1.{text}")] {
        if let Some(pending) = cursor::decode(&candidate) {
            assert_eq!(
                cursor::decode(&cursor::encode(&pending)).as_ref(),
                Some(&pending)
            );
        }
    }

    let f = fields(data, 8);
    let pending: BTreeMap<String, String> = f
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    let encoded = cursor::encode(&pending);
    assert!(encoded.starts_with("w1."));
    // Decoding refuses payloads over 64 KiB (beyond any real page).
    if encoded.len() <= 64 * 1024 {
        assert_eq!(cursor::decode(&encoded), Some(pending), "round trip");
    }
});
