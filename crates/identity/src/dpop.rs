//! DPoP (RFC 9449): proof-of-possession for access tokens.
//!
//! A proof is checked in the order of RFC 9449 §4.3: one well-formed JWS;
//! `typ` `dpop+jwt`; an allowed asymmetric `alg`; a public-only `jwk` that
//! fits the algorithm; the signature under that key; `htm` equal to the
//! request method; `htu` equal to the request URL (normalised, without query
//! and fragment); `iat` within the window (no older than `max_age`, leeway
//! included, and no more than `future_leeway` ahead); `ath` the hash of the presented
//! token; the server nonce when nonces are on; the key's thumbprint equal to
//! the token's `cnf.jkt`; and last, `jti` never seen before (the replay
//! cache), so that a refused proof does not burn its `jti`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_lc_rs::hmac;
use serde_json::Value;
use url::Url;

use crate::error::AuthError;
use crate::jws::{b64, b64_decode, sha256, CompactJws, PublicJwk, SigningAlgorithm};
use crate::replay::ReplayCache;

/// Largest DPoP proof accepted (bytes); an RSA-4096 proof is about 1.5 KiB.
const MAX_PROOF_BYTES: usize = 8 * 1024;
/// Longest `jti` accepted.
const MAX_JTI_CHARS: usize = 256;

/// What a DPoP check needs from the request and the token.
pub(crate) struct ProofContext<'a> {
    pub proof: &'a str,
    pub method: &'a str,
    pub url: &'a str,
    /// SHA-256 of the access token (for `ath`).
    pub token_hash: &'a [u8; 32],
    /// The token's `cnf.jkt`.
    pub jkt: &'a str,
    /// Now, in whole Unix seconds (nonce periods).
    pub now: u64,
    /// Now, in Unix seconds with the fraction (the proof's age).
    pub clock: f64,
}

/// The DPoP verifier: settings, nonce key and replay cache.
pub(crate) struct DpopVerifier {
    pub algorithms: Vec<SigningAlgorithm>,
    /// Oldest `iat` accepted, clock skew included: a proof is refused once
    /// it is more than this old.
    pub max_age: Duration,
    /// How far ahead of our clock an `iat` may be.
    pub future_leeway: Duration,
    pub nonces: Option<NonceIssuer>,
    pub replay: std::sync::Arc<dyn ReplayCache>,
    /// Whether the replay cache is failing: errors are logged when it
    /// starts failing and when it recovers, not once per request.
    pub replay_down: AtomicBool,
}

impl DpopVerifier {
    pub(crate) async fn verify(&self, cx: &ProofContext<'_>) -> Result<(), AuthError> {
        use AuthError::DpopInvalid;
        // Joined repeated headers (`a, b`) contain a comma; a JWS never does.
        if cx.proof.contains(',') || cx.proof.contains(' ') {
            return Err(DpopInvalid("multiple_proofs"));
        }
        let jws = CompactJws::parse(cx.proof, MAX_PROOF_BYTES).map_err(|e| match e.code() {
            "algorithm" => DpopInvalid("algorithm"),
            _ => DpopInvalid("malformed"),
        })?;
        if !jws
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
        {
            return Err(DpopInvalid("typ"));
        }
        if !self.algorithms.contains(&jws.alg) {
            return Err(DpopInvalid("algorithm"));
        }
        let jwk = jws.jwk.as_ref().ok_or(DpopInvalid("jwk"))?;
        let key = PublicJwk::from_json(jwk).map_err(|_| DpopInvalid("jwk"))?;
        if !key.fits(jws.alg) || !jws.verify(&key) {
            return Err(DpopInvalid("signature"));
        }

        let claims = &jws.claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let jti = text("jti").ok_or(DpopInvalid("jti"))?;
        if jti.is_empty() || jti.chars().count() > MAX_JTI_CHARS {
            return Err(DpopInvalid("jti"));
        }
        if text("htm") != Some(cx.method) {
            return Err(DpopInvalid("htm"));
        }
        let htu = text("htu").ok_or(DpopInvalid("htu"))?;
        if !same_target(htu, cx.url) {
            return Err(DpopInvalid("htu"));
        }
        let iat = claims
            .get("iat")
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite())
            .ok_or(DpopInvalid("iat"))?;
        let age = cx.clock - iat;
        if age > self.max_age.as_secs_f64() || -age > self.future_leeway.as_secs_f64() {
            return Err(DpopInvalid("iat"));
        }
        let ath = text("ath").ok_or(DpopInvalid("ath"))?;
        if b64_decode(ath).as_deref() != Some(cx.token_hash.as_slice()) {
            return Err(DpopInvalid("ath"));
        }
        if let Some(nonces) = &self.nonces {
            if !text("nonce").is_some_and(|n| nonces.is_valid(n, cx.now)) {
                return Err(AuthError::UseDpopNonce(nonces.current(cx.now)));
            }
        }
        let thumbprint = key.thumbprint();
        if thumbprint != cx.jkt {
            return Err(DpopInvalid("binding"));
        }

        // Last: remember the proof. Keyed by key and jti, for as long as
        // its iat can still pass the window: a proof first seen now may be
        // `future_leeway` ahead, and stays acceptable `max_age` after its iat.
        let mut material = Vec::with_capacity(thumbprint.len() + 1 + jti.len());
        material.extend_from_slice(thumbprint.as_bytes());
        material.push(b'.');
        material.extend_from_slice(jti.as_bytes());
        let ttl = self.max_age + self.future_leeway;
        let result = self.replay.insert_if_absent(sha256(&material), ttl).await;
        match &result {
            Ok(_) => {
                if self.replay_down.swap(false, Ordering::Relaxed) {
                    tracing::warn!("DPoP replay cache answering again; DPoP proofs accepted");
                }
            }
            Err(e) => {
                if !self.replay_down.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        reason = e.0,
                        "DPoP replay cache unavailable; every DPoP proof is refused until it answers"
                    );
                }
            }
        }
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(DpopInvalid("replay")),
            Err(_) => Err(AuthError::ReplayCacheUnavailable),
        }
    }
}

/// `htu` and the request URL name the same resource: scheme, host and port
/// compared after RFC 3986 §6.2.2–6.2.3 normalisation (case, default port,
/// dot segments, percent-encoding), path exact after that; query and
/// fragment ignored (RFC 9449 §4.3).
pub(crate) fn same_target(htu: &str, request_url: &str) -> bool {
    let (Ok(a), Ok(b)) = (Url::parse(htu), Url::parse(request_url)) else {
        return false;
    };
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.username().is_empty()
        && a.password().is_none()
        && normalise_percent(a.path()) == normalise_percent(b.path())
}

/// Decode percent-encoded unreserved characters and upper-case the hex of
/// the rest (RFC 3986 §6.2.2.2).
fn normalise_percent(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let value = (h * 16 + l) as u8;
                if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                    out.push(value as char);
                } else {
                    out.push('%');
                    out.push(bytes[i + 1].to_ascii_uppercase() as char);
                    out.push(bytes[i + 2].to_ascii_uppercase() as char);
                }
                i += 3;
                continue;
            }
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// Stateless server nonces: `base64url(period ‖ HMAC(secret, period)[..16])`,
/// valid in their period and the next, so replicas sharing the secret agree.
pub(crate) struct NonceIssuer {
    key: hmac::Key,
    lifetime: u64,
}

impl NonceIssuer {
    pub(crate) fn new(secret: &[u8], lifetime: Duration) -> Self {
        NonceIssuer {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            lifetime: lifetime.as_secs().max(1),
        }
    }

    fn for_period(&self, period: u64) -> String {
        let tag = hmac::sign(&self.key, &period.to_be_bytes());
        let mut raw = [0u8; 24];
        raw[..8].copy_from_slice(&period.to_be_bytes());
        raw[8..].copy_from_slice(&tag.as_ref()[..16]);
        b64(&raw)
    }

    pub(crate) fn current(&self, now: u64) -> String {
        self.for_period(now / self.lifetime)
    }

    pub(crate) fn is_valid(&self, nonce: &str, now: u64) -> bool {
        let Some(raw) = b64_decode(nonce) else {
            return false;
        };
        if raw.len() != 24 {
            return false;
        }
        let mut period = [0u8; 8];
        period.copy_from_slice(&raw[..8]);
        let period = u64::from_be_bytes(period);
        let current = now / self.lifetime;
        if period != current && period + 1 != current {
            return false;
        }
        let tag = hmac::sign(&self.key, &period.to_be_bytes());
        aws_lc_rs::constant_time::verify_slices_are_equal(&tag.as_ref()[..16], &raw[8..]).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_normalisation() {
        assert!(same_target(
            "https://W.example.com:443/mcp",
            "https://w.example.com/mcp?x=1"
        ));
        assert!(same_target(
            "https://w.example.com/a/../mcp",
            "https://w.example.com/mcp"
        ));
        assert!(same_target(
            "https://w.example.com/%6dcp",
            "https://w.example.com/mcp"
        ));
        assert!(same_target(
            "https://w.example.com/a%2fb",
            "https://w.example.com/a%2Fb"
        ));
        assert!(!same_target(
            "https://w.example.com/mcp/",
            "https://w.example.com/mcp"
        ));
        assert!(!same_target(
            "http://w.example.com/mcp",
            "https://w.example.com/mcp"
        ));
        assert!(!same_target(
            "https://w.example.com:8443/mcp",
            "https://w.example.com/mcp"
        ));
        assert!(!same_target(
            "https://other.example.com/mcp",
            "https://w.example.com/mcp"
        ));
        assert!(!same_target("not a url", "https://w.example.com/mcp"));
    }

    #[test]
    fn nonces_expire_after_two_periods() {
        let n = NonceIssuer::new(&[7; 32], Duration::from_secs(100));
        let nonce = n.current(1000);
        assert!(n.is_valid(&nonce, 1000));
        assert!(n.is_valid(&nonce, 1199));
        assert!(!n.is_valid(&nonce, 1200));
        assert!(!n.is_valid(&nonce, 999));
        assert!(!n.is_valid("AAAA", 1000));
        let other = NonceIssuer::new(&[8; 32], Duration::from_secs(100));
        assert!(!other.is_valid(&nonce, 1000));
    }
}
