use serde_json::json;

use super::*;

fn segment(value: &str) -> String {
    b64(value.as_bytes())
}

fn token(header: &str, payload: &str, sig: &str) -> String {
    format!("{}.{}.{sig}", segment(header), segment(payload))
}

#[test]
fn refuses_shapes_that_are_not_one_compact_jws() {
    let good_header = r#"{"alg":"ES256","typ":"at+jwt"}"#;
    let cases = [
        String::new(),
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        token(good_header, "{}", ""),             // stripped signature
        format!("{}..sig", segment(good_header)), // empty payload
        token(good_header, "[]", "sig"),          // not an object
        token(good_header, r#"{"a":1,"a":2}"#, "sig"), // duplicate claim
        token(r#"{"alg":"ES256","alg":"none"}"#, "{}", "sig"), // duplicate header
        format!("{}=.{}.sig", segment(good_header), segment("{}")), // padding
        "x".repeat(MAX_TOKEN_BYTES + 1),
    ];
    for case in &cases {
        assert!(
            matches!(
                CompactJws::parse(case, MAX_TOKEN_BYTES),
                Err(JwsError::Malformed)
            ),
            "{case:.60}"
        );
    }
}

#[test]
fn refuses_none_hmac_unknown_and_critical() {
    for alg in ["none", "None", "HS256", "HS512", "es256", "RS1", ""] {
        let header = format!(r#"{{"alg":"{alg}"}}"#);
        assert_eq!(
            CompactJws::parse(&token(&header, "{}", "sig"), MAX_TOKEN_BYTES).err(),
            Some(JwsError::Algorithm),
            "{alg}"
        );
    }
    let crit = token(r#"{"alg":"ES256","crit":["exp"],"exp":1}"#, "{}", "sig");
    assert_eq!(
        CompactJws::parse(&crit, MAX_TOKEN_BYTES).err(),
        Some(JwsError::Critical)
    );
}

#[test]
fn deep_nesting_is_refused() {
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    assert!(strict_json(deep.as_bytes()).is_none());
    assert!(strict_json(br#"{"a":{"b":{"c":[1,2,{"d":null}]}}}"#).is_some());
}

#[test]
fn jwk_parsing_refuses_private_symmetric_and_weak_keys() {
    let ec = json!({"kty":"EC","crv":"P-256","x":b64(&[1;32]),"y":b64(&[2;32])});
    assert!(PublicJwk::from_json(&ec).is_ok());
    let mut private = ec.clone();
    private["d"] = json!(b64(&[3; 32]));
    assert_eq!(
        PublicJwk::from_json(&private).err(),
        Some(JwkError::NotPublic)
    );
    let oct = json!({"kty":"oct","k":b64(b"secret")});
    assert_eq!(PublicJwk::from_json(&oct).err(), Some(JwkError::NotPublic));
    let weak_rsa = json!({"kty":"RSA","n":b64(&[0xff;128]),"e":"AQAB"});
    assert_eq!(
        PublicJwk::from_json(&weak_rsa).err(),
        Some(JwkError::Invalid)
    );
    let enc = json!({"kty":"RSA","use":"enc","n":b64(&[0xff;256]),"e":"AQAB"});
    assert_eq!(
        PublicJwk::from_json(&enc).err(),
        Some(JwkError::NotForSignatures)
    );
    let mismatched =
        json!({"kty":"EC","crv":"P-256","alg":"ES384","x":b64(&[1;32]),"y":b64(&[2;32])});
    assert_eq!(
        PublicJwk::from_json(&mismatched).err(),
        Some(JwkError::Unsupported)
    );
    let short = json!({"kty":"EC","crv":"P-256","x":b64(&[1;31]),"y":b64(&[2;32])});
    assert_eq!(PublicJwk::from_json(&short).err(), Some(JwkError::Invalid));
}

#[test]
fn thumbprint_matches_rfc_7638_example() {
    // RFC 7638 §3.1.
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    let key = PublicJwk::from_json(&jwk).expect("RFC key parses");
    assert_eq!(
        key.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn hs256_with_the_public_key_as_secret_never_verifies() {
    // The classic confusion: sign HS256 with the RSA key's bytes. Our
    // parser has no HS256; and a key never fits an algorithm of another
    // family.
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    assert_eq!(
        CompactJws::parse(&token(header, "{}", "c2ln"), MAX_TOKEN_BYTES).err(),
        Some(JwsError::Algorithm)
    );
    let ec =
        PublicJwk::from_json(&json!({"kty":"EC","crv":"P-256","x":b64(&[1;32]),"y":b64(&[2;32])}))
            .expect("parses");
    assert!(!ec.fits(SigningAlgorithm::RS256));
    assert!(!ec.fits(SigningAlgorithm::ES384));
    assert!(ec.fits(SigningAlgorithm::ES256));
}

proptest::proptest! {
    /// No input makes the parser panic: random text, and random JSON-ish
    /// headers and payloads in valid base64url.
    #[test]
    fn parsing_never_panics(text in ".{0,300}", header in ".{0,120}", payload in ".{0,200}", sig in "[A-Za-z0-9_-]{0,90}") {
        let _ = CompactJws::parse(&text, MAX_TOKEN_BYTES);
        let token = format!("{}.{}.{sig}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let _ = CompactJws::parse(&token, MAX_TOKEN_BYTES);
        let _ = strict_json(payload.as_bytes());
    }

    #[test]
    fn jwk_parsing_never_panics(kty in "(RSA|EC|OKP|oct|x)", crv in ".{0,8}", x in "[A-Za-z0-9_-]{0,90}", y in "[A-Za-z0-9_-]{0,90}", n in "[A-Za-z0-9_-]{0,400}") {
        let jwk = json!({"kty": kty, "crv": crv, "x": x, "y": y, "n": n, "e": "AQAB"});
        if let Ok(key) = PublicJwk::from_json(&jwk) {
            let _ = key.thumbprint();
        }
    }
}
