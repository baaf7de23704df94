//! The JOSE wire: compact JWS parsing, strict JSON, public JWKs, RFC 7638
//! thumbprints and signature verification.
//!
//! Parse, don't validate: a token becomes a [`CompactJws`] only when it has
//! exactly three base64url segments, a JSON-object header and payload with
//! no duplicate keys at any depth, and a header whose `alg` is one of the
//! asymmetric algorithms we support. Header members that point elsewhere
//! (`jku`, `x5u`, `x5c`) are never read; `jwk` is read only for DPoP proofs,
//! where it is the key the proof is checked against. A `crit` header is
//! refused: we understand no extension.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Largest access token accepted (bytes). Real ones are 1–4 KiB.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Nesting limit of a token's header and claims.
const MAX_JSON_DEPTH: usize = 16;

/// An asymmetric JWS algorithm we verify. `none` and the HMAC family have no
/// variant: they cannot be configured, parsed or accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 9] = [
        SigningAlgorithm::RS256,
        SigningAlgorithm::RS384,
        SigningAlgorithm::RS512,
        SigningAlgorithm::PS256,
        SigningAlgorithm::PS384,
        SigningAlgorithm::PS512,
        SigningAlgorithm::ES256,
        SigningAlgorithm::ES384,
        SigningAlgorithm::EdDSA,
    ];

    /// The JOSE name (`RS256`, `EdDSA`, …). Case-sensitive, as in RFC 7518.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SigningAlgorithm::RS256 => "RS256",
            SigningAlgorithm::RS384 => "RS384",
            SigningAlgorithm::RS512 => "RS512",
            SigningAlgorithm::PS256 => "PS256",
            SigningAlgorithm::PS384 => "PS384",
            SigningAlgorithm::PS512 => "PS512",
            SigningAlgorithm::ES256 => "ES256",
            SigningAlgorithm::ES384 => "ES384",
            SigningAlgorithm::EdDSA => "EdDSA",
        }
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            SigningAlgorithm::RS256 => Algorithm::RS256,
            SigningAlgorithm::RS384 => Algorithm::RS384,
            SigningAlgorithm::RS512 => Algorithm::RS512,
            SigningAlgorithm::PS256 => Algorithm::PS256,
            SigningAlgorithm::PS384 => Algorithm::PS384,
            SigningAlgorithm::PS512 => Algorithm::PS512,
            SigningAlgorithm::ES256 => Algorithm::ES256,
            SigningAlgorithm::ES384 => Algorithm::ES384,
            SigningAlgorithm::EdDSA => Algorithm::EdDSA,
        }
    }

    /// The key type and curve this algorithm needs.
    fn fits(self, key: &KeyMaterial) -> bool {
        match (self, key) {
            (
                SigningAlgorithm::RS256
                | SigningAlgorithm::RS384
                | SigningAlgorithm::RS512
                | SigningAlgorithm::PS256
                | SigningAlgorithm::PS384
                | SigningAlgorithm::PS512,
                KeyMaterial::Rsa { .. },
            ) => true,
            (SigningAlgorithm::ES256, KeyMaterial::Ec { crv, .. }) => crv == "P-256",
            (SigningAlgorithm::ES384, KeyMaterial::Ec { crv, .. }) => crv == "P-384",
            (SigningAlgorithm::EdDSA, KeyMaterial::Okp { .. }) => true,
            _ => false,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a JWS was refused. Codes are reason codes for [`crate::AuthError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwsError {
    /// Not three base64url segments of JSON objects.
    Malformed,
    /// `alg` missing, `none`, HMAC or unknown.
    Algorithm,
    /// A `crit` header: an extension we do not implement.
    Critical,
}

impl JwsError {
    pub(crate) fn code(self) -> &'static str {
        match self {
            JwsError::Malformed => "malformed",
            JwsError::Algorithm => "algorithm",
            JwsError::Critical => "crit",
        }
    }
}

/// A compact JWS split and decoded, signature not yet checked.
pub(crate) struct CompactJws<'a> {
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
    pub signature: &'a str,
    pub alg: SigningAlgorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
    /// The header's `jwk` member (DPoP proofs only read it).
    pub jwk: Option<Value>,
    pub claims: Map<String, Value>,
}

impl<'a> CompactJws<'a> {
    pub(crate) fn parse(token: &'a str, max_bytes: usize) -> Result<Self, JwsError> {
        if token.len() > max_bytes {
            return Err(JwsError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError::Malformed);
        };
        if h.is_empty() || p.is_empty() || s.is_empty() {
            // An empty signature is the "stripped signature" forgery.
            return Err(JwsError::Malformed);
        }
        let mut header = decode_object(h)?;
        let claims = decode_object(p)?;
        if header.contains_key("crit") {
            return Err(JwsError::Critical);
        }
        let alg = match header.get("alg") {
            Some(Value::String(name)) => {
                SigningAlgorithm::from_name(name).ok_or(JwsError::Algorithm)?
            }
            _ => return Err(JwsError::Algorithm),
        };
        let kid = match header.remove("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid),
            Some(_) => return Err(JwsError::Malformed),
        };
        let typ = match header.remove("typ") {
            None => None,
            Some(Value::String(typ)) => Some(typ),
            Some(_) => return Err(JwsError::Malformed),
        };
        let jwk = header.remove("jwk");
        Ok(CompactJws {
            signing_input: &token[..h.len() + 1 + p.len()],
            signature: s,
            alg,
            kid,
            typ,
            jwk,
            claims,
        })
    }

    /// Check the signature with `key`. False for a wrong signature, a key
    /// that does not fit the algorithm, or a signature that does not decode.
    pub(crate) fn verify(&self, key: &PublicJwk) -> bool {
        if !self.alg.fits(&key.material) {
            return false;
        }
        if key.alg.is_some_and(|a| a != self.alg) {
            return false;
        }
        jsonwebtoken::crypto::verify(
            self.signature,
            self.signing_input.as_bytes(),
            &key.decoding,
            self.alg.jwt(),
        )
        .unwrap_or(false)
    }
}

fn decode_object(segment: &str) -> Result<Map<String, Value>, JwsError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwsError::Malformed)?;
    match strict_json(&bytes) {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(JwsError::Malformed),
    }
}

/// Parse JSON, refusing duplicate object keys at every depth (two parsers
/// that pick different duplicates are a classic token-confusion attack) and
/// nesting deeper than [`MAX_JSON_DEPTH`].
pub(crate) fn strict_json(bytes: &[u8]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue {
        depth: MAX_JSON_DEPTH,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(value)
}

struct StrictValue {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self
            .depth
            .checked_sub(1)
            .ok_or_else(|| de::Error::custom("too deep"))?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue { depth })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let depth = self
            .depth
            .checked_sub(1)
            .ok_or_else(|| de::Error::custom("too deep"))?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(StrictValue { depth })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Public key parameters of a JWK (members are base64url text as in the JWK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyMaterial {
    Rsa { n: String, e: String },
    Ec { crv: String, x: String, y: String },
    Okp { x: String },
}

/// A public verification key from a JWKS or a DPoP proof header.
#[derive(Clone)]
pub struct PublicJwk {
    pub(crate) kid: Option<String>,
    /// The JWK's own `alg`, when it names one: the key is then usable with
    /// that algorithm only.
    pub(crate) alg: Option<SigningAlgorithm>,
    pub(crate) material: KeyMaterial,
    pub(crate) decoding: DecodingKey,
}

impl fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicJwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Why a JWK was not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwkError {
    /// Holds private members (`d`, `p`, `k`, …) or is a symmetric key.
    NotPublic,
    /// `use` is not `sig`, or `key_ops` lacks `verify`.
    NotForSignatures,
    /// Unknown `kty`/`crv`, or an `alg` we do not accept.
    Unsupported,
    /// Members missing, not base64url, or of the wrong size (RSA < 2048 bits).
    Invalid,
}

const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const MIN_RSA_MODULUS_BYTES: usize = 256;
const MAX_RSA_MODULUS_BYTES: usize = 1024;

impl PublicJwk {
    /// Parse one JWK object.
    pub(crate) fn from_json(jwk: &Value) -> Result<PublicJwk, JwkError> {
        let Value::Object(obj) = jwk else {
            return Err(JwkError::Invalid);
        };
        if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
            return Err(JwkError::NotPublic);
        }
        let text = |name: &str| -> Result<Option<&str>, JwkError> {
            match obj.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(JwkError::Invalid),
            }
        };
        let required = |name: &str| -> Result<String, JwkError> {
            text(name)?.map(str::to_owned).ok_or(JwkError::Invalid)
        };
        if let Some(usage) = text("use")? {
            if usage != "sig" {
                return Err(JwkError::NotForSignatures);
            }
        }
        if let Some(ops) = obj.get("key_ops") {
            let Value::Array(ops) = ops else {
                return Err(JwkError::Invalid);
            };
            if !ops.iter().any(|op| op.as_str() == Some("verify")) {
                return Err(JwkError::NotForSignatures);
            }
        }
        let alg = match text("alg")? {
            None => None,
            Some(name) => Some(SigningAlgorithm::from_name(name).ok_or(JwkError::Unsupported)?),
        };
        let kid = text("kid")?.map(str::to_owned);
        let kty = text("kty")?.ok_or(JwkError::Invalid)?;
        let (material, decoding) = match kty {
            "RSA" => {
                let n = required("n")?;
                let e = required("e")?;
                let n_bytes = b64_len(&n)?;
                let e_bytes = b64_len(&e)?;
                if !(MIN_RSA_MODULUS_BYTES..=MAX_RSA_MODULUS_BYTES).contains(&n_bytes)
                    || e_bytes == 0
                    || e_bytes > 8
                {
                    return Err(JwkError::Invalid);
                }
                let key =
                    DecodingKey::from_rsa_components(&n, &e).map_err(|_| JwkError::Invalid)?;
                (KeyMaterial::Rsa { n, e }, key)
            }
            "EC" => {
                let crv = required("crv")?;
                let size = match crv.as_str() {
                    "P-256" => 32,
                    "P-384" => 48,
                    _ => return Err(JwkError::Unsupported),
                };
                let x = required("x")?;
                let y = required("y")?;
                if b64_len(&x)? != size || b64_len(&y)? != size {
                    return Err(JwkError::Invalid);
                }
                let key = DecodingKey::from_ec_components(&x, &y).map_err(|_| JwkError::Invalid)?;
                (KeyMaterial::Ec { crv, x, y }, key)
            }
            "OKP" => {
                if text("crv")? != Some("Ed25519") {
                    return Err(JwkError::Unsupported);
                }
                let x = required("x")?;
                if b64_len(&x)? != 32 {
                    return Err(JwkError::Invalid);
                }
                let key = DecodingKey::from_ed_components(&x).map_err(|_| JwkError::Invalid)?;
                (KeyMaterial::Okp { x }, key)
            }
            "oct" => return Err(JwkError::NotPublic),
            _ => return Err(JwkError::Unsupported),
        };
        if let Some(alg) = alg {
            if !alg.fits(&material) {
                return Err(JwkError::Unsupported);
            }
        }
        Ok(PublicJwk {
            kid,
            alg,
            material,
            decoding,
        })
    }

    /// Whether this key can verify `alg` signatures.
    pub(crate) fn fits(&self, alg: SigningAlgorithm) -> bool {
        alg.fits(&self.material) && self.alg.is_none_or(|a| a == alg)
    }

    /// The RFC 7638 JWK SHA-256 thumbprint, base64url.
    pub(crate) fn thumbprint(&self) -> String {
        // Required members only, in lexicographic order, no whitespace. The
        // values are validated base64url, so no JSON escaping is needed.
        let canonical = match &self.material {
            KeyMaterial::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            KeyMaterial::Ec { crv, x, y } => {
                format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            KeyMaterial::Okp { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        };
        b64(&sha256(canonical.as_bytes()))
    }

    /// The key as a JWK JSON object (public members only).
    pub(crate) fn to_json(&self) -> Value {
        let mut obj = Map::new();
        match &self.material {
            KeyMaterial::Rsa { n, e } => {
                obj.insert("kty".into(), "RSA".into());
                obj.insert("n".into(), n.clone().into());
                obj.insert("e".into(), e.clone().into());
            }
            KeyMaterial::Ec { crv, x, y } => {
                obj.insert("kty".into(), "EC".into());
                obj.insert("crv".into(), crv.clone().into());
                obj.insert("x".into(), x.clone().into());
                obj.insert("y".into(), y.clone().into());
            }
            KeyMaterial::Okp { x } => {
                obj.insert("kty".into(), "OKP".into());
                obj.insert("crv".into(), "Ed25519".into());
                obj.insert("x".into(), x.clone().into());
            }
        }
        if let Some(kid) = &self.kid {
            obj.insert("kid".into(), kid.clone().into());
        }
        if let Some(alg) = self.alg {
            obj.insert("alg".into(), alg.name().into());
        }
        obj.insert("use".into(), "sig".into());
        Value::Object(obj)
    }
}

/// Decoded length of a base64url member, refusing anything not canonical
/// base64url without padding.
fn b64_len(text: &str) -> Result<usize, JwkError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map(|b| b.len())
        .map_err(|_| JwkError::Invalid)
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
#[path = "jws_tests.rs"]
mod tests;
