//! W3C Trace Context from a peer (`traceparent`, `tracestate` headers and
//! `_meta` keys): `TraceParent::parse`, which must read back what it
//! renders, and `parse_tracestate`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_fuzz::fields;
use warden_telemetry::{parse_tracestate, TraceParent};

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 2);
    if let Some(parent) = TraceParent::parse(&f[0]) {
        assert_eq!(TraceParent::parse(&parent.to_string()), Some(parent));
        let _ = (parent.is_sampled(), parent.trace_id_hex());
    }
    let _ = parse_tracestate(&f[1]);
});
