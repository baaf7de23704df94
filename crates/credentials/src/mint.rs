//! Request-scoped tokens: Warden signs, per call, a JWT for exactly one
//! upstream (`aud`), one caller (`sub`), one call (`mcp_call`: method,
//! item and argument hash), the scopes that call needs, living at most
//! 60 s. The public keys are published ([`Minter::jwks`]) so an upstream
//! verifies them like any issuer's.
//!
//! Keys are generated in memory and rotated every `rotate_every`; a
//! retired key stays published until every token it signed has expired.
//! Nothing is written to disk: a restart starts a new key (tokens live a
//! minute, so no upstream holds one for long), and replicas that must
//! share a key set name one `signing_key` file.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Map, Value};

use crate::error::CredentialError;
use crate::settings::{Algorithm, IssuerSettings};

/// One signing key and its public half as a JWK.
struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    created: Instant,
}

struct Ring {
    current: Arc<SigningKey>,
    /// Retired keys with the moment they stopped signing.
    retired: Vec<(Arc<SigningKey>, Instant)>,
}

/// Warden's signing keys and the tokens they sign.
pub struct Minter {
    settings: IssuerSettings,
    /// `false` for a configured key: the operator rotates it.
    rotates: bool,
    ring: RwLock<Ring>,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("issuer", &self.settings.issuer)
            .field("algorithm", &self.settings.algorithm)
            .finish_non_exhaustive()
    }
}

/// Who acts, for whom, toward which upstream, for what.
#[derive(Debug, Clone, Default)]
pub struct Grant<'a> {
    /// `sub`: the calling principal (its key, unique across Warden's
    /// issuers). `None`: Warden itself (a connection shared by everyone).
    pub subject: Option<&'a str>,
    pub tenant: Option<&'a str>,
    /// The client and agent the principal's credential names (in `act`).
    pub client_id: Option<&'a str>,
    pub agent_id: Option<&'a str>,
    /// `aud`: the upstream's resource URL.
    pub audience: &'a str,
    /// `scope`: what this call needs.
    pub scopes: &'a [String],
    /// The call this token is for (`None`: the connection's own requests:
    /// `initialize`, lists, the GET stream).
    pub call: Option<CallBinding<'a>>,
}

/// The `mcp_call` claim: the one request a token may be used for.
#[derive(Debug, Clone, Copy)]
pub struct CallBinding<'a> {
    /// `tools/call`, `prompts/get`, `resources/read`, …
    pub method: &'a str,
    /// The tool or prompt name, or the resource URI, as the upstream
    /// names it.
    pub name: &'a str,
    /// `sha256:<hex>` of the RFC 8785 canonical arguments (the audit
    /// record's `input_hash`).
    pub arguments_hash: Option<&'a str>,
}

/// A signed token. `Debug` never prints it.
pub struct Minted {
    pub token: String,
    pub jti: String,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: u64,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("jti", &self.jti)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Minter {
    /// A minter with a fresh key (or the configured one).
    pub fn new(settings: IssuerSettings) -> Result<Minter, CredentialError> {
        let (key, rotates) = match &settings.signing_key {
            Some(path) => {
                let der = std::fs::read(path).map_err(|e| {
                    CredentialError::Key(format!("cannot read {}: {e}", path.display()))
                })?;
                (signing_key(settings.algorithm, &der)?, false)
            }
            None => (generate(settings.algorithm)?, true),
        };
        Ok(Minter {
            settings,
            rotates,
            ring: RwLock::new(Ring {
                current: Arc::new(key),
                retired: Vec::new(),
            }),
        })
    }

    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    #[must_use]
    pub fn settings(&self) -> &IssuerSettings {
        &self.settings
    }

    /// The public keys to publish: the signing one and those retired less
    /// than a token lifetime ago.
    #[must_use]
    pub fn jwks(&self) -> Value {
        let ring = self
            .ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut keys = vec![ring.current.jwk.clone()];
        keys.extend(ring.retired.iter().map(|(k, _)| k.jwk.clone()));
        json!({ "keys": keys })
    }

    /// Signs a token for `grant`.
    pub fn mint(&self, grant: &Grant<'_>) -> Result<Minted, CredentialError> {
        if grant.audience.is_empty() {
            return Err(CredentialError::Invalid("a token needs an audience"));
        }
        let key = self.signing_key()?;
        let now = unix_now();
        let jti = random_id()?;
        let exp = now + self.settings.token_ttl.as_secs().max(1);
        let mut act = Map::new();
        act.insert("sub".into(), Value::String(self.settings.issuer.clone()));
        if let Some(c) = grant.client_id {
            act.insert("client_id".into(), Value::String(c.to_owned()));
        }
        if let Some(a) = grant.agent_id {
            act.insert("agent_id".into(), Value::String(a.to_owned()));
        }
        let mut claims = json!({
            "iss": self.settings.issuer,
            "sub": grant.subject.unwrap_or(&self.settings.issuer),
            "aud": grant.audience,
            "iat": now,
            "nbf": now,
            "exp": exp,
            "jti": jti,
            "client_id": "warden",
            "scope": grant.scopes.join(" "),
            "act": act,
        });
        if let Some(t) = grant.tenant {
            claims["tenant"] = Value::String(t.to_owned());
        }
        if let Some(call) = &grant.call {
            let mut binding = json!({ "method": call.method, "name": call.name });
            if let Some(h) = call.arguments_hash {
                binding["arguments_hash"] = Value::String(h.to_owned());
            }
            claims["mcp_call"] = binding;
        }
        let mut header = Header::new(match key.algorithm {
            Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
        });
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|_| CredentialError::Signing)?;
        Ok(Minted {
            token,
            jti,
            expires_at: exp,
        })
    }

    /// The current key, rotated first when it is due.
    fn signing_key(&self) -> Result<Arc<SigningKey>, CredentialError> {
        {
            let ring = self
                .ring
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !self.rotates || ring.current.created.elapsed() < self.settings.rotate_every {
                return Ok(ring.current.clone());
            }
        }
        let fresh = Arc::new(generate(self.settings.algorithm)?);
        let mut ring = self
            .ring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another call may have rotated while this one generated.
        if ring.current.created.elapsed() >= self.settings.rotate_every {
            let old = std::mem::replace(&mut ring.current, fresh);
            ring.retired.push((old, Instant::now()));
        }
        // A retired key stays published while tokens it signed may live
        // (plus a minute of clock skew at the verifier).
        let keep = self.settings.token_ttl + Duration::from_secs(60);
        ring.retired.retain(|(_, since)| since.elapsed() < keep);
        Ok(ring.current.clone())
    }

    /// Makes the current key due for rotation (tests).
    #[doc(hidden)]
    pub fn force_rotation(&self) -> Result<(), CredentialError> {
        let fresh = Arc::new(generate(self.settings.algorithm)?);
        let mut ring = self
            .ring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = std::mem::replace(&mut ring.current, fresh);
        ring.retired.push((old, Instant::now()));
        Ok(())
    }
}

fn generate(algorithm: Algorithm) -> Result<SigningKey, CredentialError> {
    let rng = SystemRandom::new();
    let doc = match algorithm {
        Algorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng),
        Algorithm::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng),
    }
    .map_err(|_| CredentialError::Key("key generation failed".into()))?;
    signing_key(algorithm, doc.as_ref())
}

/// A PKCS#8 key of `algorithm`, its JWK and RFC 7638 thumbprint as `kid`.
fn signing_key(algorithm: Algorithm, pkcs8: &[u8]) -> Result<SigningKey, CredentialError> {
    let bad = |_| CredentialError::Key(format!("not a PKCS#8 {} key", algorithm.name()));
    let (encoding, mut jwk, thumb_input) = match algorithm {
        Algorithm::EdDsa => {
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(bad)?;
            let x = b64(pair.public_key().as_ref());
            (
                EncodingKey::from_ed_der(pkcs8),
                json!({"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "use": "sig"}),
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
            )
        }
        Algorithm::Es256 => {
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(bad)?;
            let point = pair.public_key().as_ref();
            if point.len() != 65 {
                return Err(CredentialError::Key("unexpected P-256 public key".into()));
            }
            let (x, y) = (b64(&point[1..33]), b64(&point[33..]));
            (
                EncodingKey::from_ec_der(pkcs8),
                json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "alg": "ES256", "use": "sig"}),
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
            )
        }
    };
    let kid =
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, thumb_input.as_bytes()).as_ref());
    jwk["kid"] = Value::String(kid.clone());
    Ok(SigningKey {
        kid,
        algorithm,
        encoding,
        jwk,
        created: Instant::now(),
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random_id() -> Result<String, CredentialError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CredentialError::Signing)?;
    Ok(b64(&bytes))
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(token: &str) -> Value {
        let payload = token.split('.').nth(1).unwrap_or_default();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap_or_default())
            .unwrap_or(Value::Null)
    }

    #[test]
    fn a_minted_token_names_its_audience_caller_call_and_expires_within_a_minute() {
        let m = Minter::new(IssuerSettings::defaults("https://warden.test/")).unwrap();
        let scopes = vec!["crm.read".to_owned()];
        let t = m
            .mint(&Grant {
                subject: Some("corp:alice"),
                tenant: Some("acme"),
                client_id: Some("cursor"),
                agent_id: Some("agent-7"),
                audience: "https://crm.test/mcp",
                scopes: &scopes,
                call: Some(CallBinding {
                    method: "tools/call",
                    name: "lookup",
                    arguments_hash: Some("sha256:ab"),
                }),
            })
            .unwrap();
        let c = claims(&t.token);
        assert_eq!(c["iss"], "https://warden.test");
        assert_eq!(c["aud"], "https://crm.test/mcp");
        assert_eq!(c["sub"], "corp:alice");
        assert_eq!(c["scope"], "crm.read");
        assert_eq!(c["act"]["sub"], "https://warden.test");
        assert_eq!(c["act"]["client_id"], "cursor");
        assert_eq!(c["act"]["agent_id"], "agent-7");
        assert_eq!(c["mcp_call"]["name"], "lookup");
        assert_eq!(c["mcp_call"]["arguments_hash"], "sha256:ab");
        assert_eq!(c["jti"], t.jti.as_str());
        let ttl = c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap();
        assert!(ttl <= 60, "{ttl}");
        assert!(!format!("{t:?}").contains(&t.token));
    }

    #[test]
    fn a_rotated_key_stays_published_beside_the_new_one() {
        for alg in [Algorithm::EdDsa, Algorithm::Es256] {
            let mut s = IssuerSettings::defaults("https://warden.test");
            s.algorithm = alg;
            let m = Minter::new(s).unwrap();
            let first = m.jwks()["keys"][0]["kid"].clone();
            m.force_rotation().unwrap();
            let keys = m.jwks()["keys"].as_array().cloned().unwrap_or_default();
            assert_eq!(keys.len(), 2);
            assert_ne!(keys[0]["kid"], first);
            assert_eq!(keys[1]["kid"], first);
            assert_eq!(keys[0]["alg"], alg.name());
        }
    }
}
