//! The strict pass (`warden_protocol::strict::validate`) over any bytes,
//! under the default limits and under a depth limit chosen by the input.
//! What it accepts, serde_json must accept too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_protocol::strict::{validate, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&depth, body)) = data.split_first() else {
        return;
    };
    if validate(body, &Limits::default()).is_ok() {
        assert!(
            serde_json::from_slice::<serde_json::Value>(body).is_ok(),
            "the strict pass accepted what serde_json refuses"
        );
    }
    let limits = Limits {
        max_bytes: 1 << 16,
        max_depth: usize::from(depth % 72),
    };
    if let Err(e) = validate(body, &limits) {
        let _ = (e.code(), e.http_status(), e.to_string());
    }
});
