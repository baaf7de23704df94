//! The development issuer: a signing key generated once and kept in the
//! data directory, so `warden demo` and local setups run with
//! authentication on, exactly the way production does (same verification
//! path, same checks), and `warden token mint` prints a usable token.
//!
//! The authenticator trusts this key directly (no fetch); the gateway also
//! serves [`DevIssuer::jwks`] so other tools can verify the tokens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

use crate::apikey::{unix_now, write_private_file_once};
use crate::error::IdentityError;
use crate::jws::{b64, PublicJwk, SigningAlgorithm};
use crate::settings::{read_small_file, DevIssuerSettings};

/// The development issuer's key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevAlgorithm {
    /// Ed25519 (`EdDSA`), the default.
    EdDsa,
    /// P-256 (`ES256`).
    Es256,
}

impl DevAlgorithm {
    pub(crate) fn signing_algorithm(self) -> SigningAlgorithm {
        match self {
            DevAlgorithm::EdDsa => SigningAlgorithm::EdDSA,
            DevAlgorithm::Es256 => SigningAlgorithm::ES256,
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            DevAlgorithm::EdDsa => "dev-issuer-ed25519.p8",
            DevAlgorithm::Es256 => "dev-issuer-p256.p8",
        }
    }
}

/// A local token issuer for development.
pub struct DevIssuer {
    issuer: String,
    algorithm: DevAlgorithm,
    encoding: EncodingKey,
    public: PublicJwk,
    kid: String,
    key_path: PathBuf,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// What a minted token says.
#[derive(Debug, Clone, Default)]
pub struct MintRequest<'a> {
    pub subject: &'a str,
    pub roles: &'a [String],
    pub scopes: &'a [String],
    pub ttl: Duration,
    /// The resource URL (`https://warden.example.com/mcp`).
    pub audience: &'a str,
    /// Bind the token to this DPoP key thumbprint (`cnf.jkt`).
    pub dpop_jkt: Option<&'a str>,
    /// Bind the token to this client certificate thumbprint
    /// (`cnf.x5t#S256`, RFC 8705).
    pub certificate_thumbprint: Option<&'a str>,
    pub tenant: Option<&'a str>,
}

impl DevIssuer {
    /// The issuer of `settings`, with its key in `data_dir`.
    pub fn from_settings(
        settings: &DevIssuerSettings,
        data_dir: &Path,
    ) -> Result<DevIssuer, IdentityError> {
        Self::load_or_create(data_dir, &settings.issuer, settings.algorithm)
    }

    /// Load the key from `data_dir`, or generate and save it (PKCS#8, mode
    /// 0600) the first time.
    pub fn load_or_create(
        data_dir: &Path,
        issuer: &str,
        algorithm: DevAlgorithm,
    ) -> Result<DevIssuer, IdentityError> {
        let key_path = data_dir.join(algorithm.file_name());
        let pkcs8 = match read_small_file(&key_path) {
            Ok(bytes) => bytes,
            Err(_) if !key_path.exists() => {
                let generated = generate(algorithm)?;
                match write_private_file_once(&key_path, &generated) {
                    Ok(()) => generated,
                    Err(_) if key_path.exists() => {
                        read_small_file(&key_path).map_err(|r| IdentityError::file(&key_path, r))?
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(reason) => return Err(IdentityError::file(&key_path, reason)),
        };
        let bad = |_| IdentityError::file(&key_path, "not a valid PKCS#8 key of this type");
        let (encoding, jwk) = match algorithm {
            DevAlgorithm::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(bad)?;
                let x = b64(pair.public_key().as_ref());
                (
                    EncodingKey::from_ed_der(&pkcs8),
                    json!({"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "use": "sig"}),
                )
            }
            DevAlgorithm::Es256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                    .map_err(bad)?;
                let point = pair.public_key().as_ref();
                if point.len() != 65 {
                    return Err(IdentityError::file(
                        &key_path,
                        "unexpected P-256 public key",
                    ));
                }
                (
                    EncodingKey::from_ec_der(&pkcs8),
                    json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]), "alg": "ES256", "use": "sig"}),
                )
            }
        };
        let unnamed = PublicJwk::from_json(&jwk)
            .map_err(|_| IdentityError::file(&key_path, "public key not usable"))?;
        let kid = unnamed.thumbprint();
        let mut jwk = jwk;
        jwk["kid"] = Value::String(kid.clone());
        let public = PublicJwk::from_json(&jwk)
            .map_err(|_| IdentityError::file(&key_path, "public key not usable"))?;
        Ok(DevIssuer {
            issuer: issuer.to_owned(),
            algorithm,
            encoding,
            public,
            kid,
            key_path,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// The public key set (`{"keys": [...]}`) to serve.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public.to_json()] })
    }

    pub(crate) fn public_keys(&self) -> Vec<PublicJwk> {
        vec![self.public.clone()]
    }

    /// A signed access token (RFC 9068: `typ` `at+jwt`).
    pub fn mint(
        &self,
        sub: &str,
        roles: &[String],
        scopes: &[String],
        ttl: Duration,
        audience: &str,
    ) -> Result<String, IdentityError> {
        self.mint_with(&MintRequest {
            subject: sub,
            roles,
            scopes,
            ttl,
            audience,
            ..MintRequest::default()
        })
    }

    /// [`DevIssuer::mint`] with every option.
    pub fn mint_with(&self, request: &MintRequest<'_>) -> Result<String, IdentityError> {
        if request.subject.is_empty() || request.audience.is_empty() {
            return Err(IdentityError::Invalid(
                "subject and audience are required".into(),
            ));
        }
        let now = unix_now();
        let mut jti = [0u8; 16];
        SystemRandom::new()
            .fill(&mut jti)
            .map_err(|_| IdentityError::Signing("no randomness"))?;
        let mut claims = json!({
            "iss": self.issuer,
            "sub": request.subject,
            "aud": request.audience,
            "iat": now,
            "nbf": now,
            "exp": now + request.ttl.as_secs().max(1),
            "jti": b64(&jti),
            "client_id": "warden-dev",
            "roles": request.roles,
            "scope": request.scopes.join(" "),
        });
        if let Some(jkt) = request.dpop_jkt {
            claims["cnf"] = json!({ "jkt": jkt });
        }
        if let Some(x5t) = request.certificate_thumbprint {
            claims["cnf"]["x5t#S256"] = Value::String(x5t.to_owned());
        }
        if let Some(tenant) = request.tenant {
            claims["tenant"] = Value::String(tenant.to_owned());
        }
        let mut header = Header::new(self.algorithm.signing_algorithm().jwt());
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|_| IdentityError::Signing("could not sign"))
    }
}

fn generate(algorithm: DevAlgorithm) -> Result<Vec<u8>, IdentityError> {
    let rng = SystemRandom::new();
    let doc = match algorithm {
        DevAlgorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng),
        DevAlgorithm::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng),
    }
    .map_err(|_| IdentityError::Signing("key generation failed"))?;
    Ok(doc.as_ref().to_vec())
}
