//! The 2026-07-28 header codec and ladder (`warden_protocol::modern`):
//! `=?base64?…?=` values decoded and round-tripped, `classify` over a parsed
//! request and its routing headers, and `Mcp-Param-*` declarations, emission
//! and validation over a schema and arguments. Headers Warden emits for a
//! call must pass Warden's own validation of that call.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use warden_fuzz::fields;
use warden_protocol::message::{parse, Incoming};
use warden_protocol::modern::{
    classify, decode_header_value, encode_header_value, param_declarations, param_headers,
    validate_param_headers, RoutingHeaders,
};
use warden_protocol::Limits;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let f = fields(rest, 8);

    // The header value codec.
    let _ = decode_header_value(&f[0]);
    assert_eq!(
        decode_header_value(&encode_header_value(&f[0])).as_deref(),
        Some(f[0].as_str()),
        "encode then decode is not the identity"
    );

    // The ladder: a request and its routing headers (each present or not).
    if let Ok(Incoming::Single(msg)) = parse(&f[1], &Limits::default(), false) {
        let header = |bit: u8, i: usize| (flags & bit != 0).then_some(f[i].as_str());
        let headers = RoutingHeaders {
            protocol_version: header(1, 2),
            method: header(2, 3),
            name: header(4, 4),
        };
        if let Err(r) = classify(&msg, &headers) {
            let _ = r.http_status();
        }
    }

    // Mcp-Param-*: the schema's declarations, the headers for the
    // arguments, and a header list from the input (`name: value` lines).
    let (Ok(schema), Ok(args)) = (
        serde_json::from_str::<Value>(&f[5]),
        serde_json::from_str::<Value>(&f[6]),
    ) else {
        return;
    };
    let headers: Vec<(String, String)> = f[7]
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.to_owned()))
        .collect();
    let _ = validate_param_headers(&schema, &args, &headers);
    let Some(declarations) = param_declarations(&schema) else {
        return;
    };
    let emitted: Vec<(String, String)> = param_headers(&schema, &args)
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    // Arguments a schema validator would refuse (a fraction where an
    // integer is declared) are not the header codec's to agree on.
    let integral = declarations.iter().all(|(path, _, ty)| {
        let value = path.iter().try_fold(&args, |node, k| node.get(k));
        ty != "integer" || value.is_none_or(|v| !v.is_number() || v.is_i64() || v.is_u64())
    });
    if integral {
        assert!(
            validate_param_headers(&schema, &args, &emitted).is_ok(),
            "Warden refuses the Mcp-Param-* headers it emits"
        );
    }
});
