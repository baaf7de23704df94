//! Bearer credentials through `Authenticator::authenticate`, the identity
//! crate's public entry point: raw `Authorization` / `DPoP` / `X-API-Key`
//! values (scheme parsing, compact JWS splitting, base64url, the strict
//! JOSE JSON, API keys), and tokens whose header and claims come from the
//! input but carry a valid signature of the development issuer, so that
//! `alg`/`kid`/`typ` handling and every claim check run on arbitrary JSON.
//!
//! Input: a mode byte, then fields separated by 0xFF. In signed mode the
//! claims may say `$NOW` (the current time) and `$ISS` / `$AUD` (the
//! issuer and the accepted audience), so seeds stay valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_fuzz::fields;
use warden_fuzz::identity::{harness, now, substitute, MCP_URL, PUBLIC_URL};
use warden_identity::RequestFacts;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let h = harness();
    let f = fields(rest, 4);
    let present = |s: &str| (!s.is_empty()).then_some(s.to_owned());
    let (authorization, dpop, api_key) = if mode & 1 == 0 {
        (present(&f[0]), present(&f[1]), present(&f[2]))
    } else {
        let time = now().to_string();
        let claims = substitute(
            &f[1],
            &[("$NOW", &time), ("$ISS", PUBLIC_URL), ("$AUD", MCP_URL)],
        );
        let token = h.issuer_token(&f[0], &claims);
        let _ = h.authenticate_token(&token);
        let scheme = if mode & 2 == 0 { "Bearer" } else { "DPoP" };
        (Some(format!("{scheme} {token}")), present(&f[2]), None)
    };
    let method = if f[3].is_empty() { "POST" } else { &f[3] };
    let facts = RequestFacts {
        method,
        url: MCP_URL,
        authorization: authorization.as_deref(),
        dpop: dpop.as_deref(),
        api_key: api_key.as_deref(),
        ..RequestFacts::default()
    };
    let _ = h.authenticate(mode & 4 != 0, &facts);
});
