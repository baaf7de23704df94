//! DPoP proofs through `Authenticator::authenticate` with a valid
//! DPoP-bound access token: raw `DPoP` header values, and proofs whose
//! header and claims come from the input but are signed by the client key
//! the token is bound to, so that the `typ`/`alg`/`jwk` checks, `htm`,
//! `htu` (URL normalisation, against a request URL the input may also
//! choose), `iat`, `ath`, nonces and the replay cache run on arbitrary JSON.
//!
//! Input: a mode byte, then fields separated by 0xFF. In signed mode the
//! proof may say `$JWK` (the client's public key), `$NOW`, `$ATH` (the
//! token's hash), `$JTI` (fresh each run) and `$JKT`, so seeds stay valid.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use warden_fuzz::fields;
use warden_fuzz::identity::{b64, harness, now, sign, substitute, MCP_URL};
use warden_identity::RequestFacts;

static JTI: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let h = harness();
    let f = fields(rest, 4);
    let proof = if mode & 1 == 0 {
        f[0].clone()
    } else {
        let time = now().to_string();
        let jti = format!("fuzz-{}", JTI.fetch_add(1, Ordering::Relaxed));
        let ath = b64(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            h.bound_token.as_bytes(),
        )
        .as_ref());
        let values: [(&str, &str); 5] = [
            ("$JWK", h.proof_jwk.as_str()),
            ("$NOW", &time),
            ("$ATH", &ath),
            ("$JTI", &jti),
            ("$JKT", &h.proof_jkt),
        ];
        sign(
            &h.proof_key,
            &substitute(&f[0], &values),
            &substitute(&f[1], &values),
        )
    };
    let authorization = format!("DPoP {}", h.bound_token);
    let method = if f[2].is_empty() { "POST" } else { &f[2] };
    let url = if f[3].is_empty() { MCP_URL } else { &f[3] };
    let facts = RequestFacts {
        method,
        url,
        authorization: Some(&authorization),
        dpop: Some(&proof),
        ..RequestFacts::default()
    };
    let _ = h.authenticate(mode & 2 != 0, &facts);
});
