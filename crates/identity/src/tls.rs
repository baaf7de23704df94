//! The TLS listener's settings: Warden's certificate chain and key, and
//! (from `identity.mtls`) the CAs that client certificates must chain to.
//! Here so that the gateway only accepts connections with the
//! [`rustls::ServerConfig`] built by [`TlsSettings::server_config`] and
//! hands the verified leaf to [`crate::Authenticator::authenticate`].
//!
//! ```yaml
//! tls:
//!   cert: certs/warden.pem        # chain, leaf first
//!   key: certs/warden-key.pem     # PKCS#8, PKCS#1 or SEC1
//! identity:
//!   mtls: { client_ca: certs/clients-ca.pem, required: true }
//! ```
//!
//! rustls with the aws-lc-rs provider, safe default protocol versions
//! (TLS 1.2 and 1.3), ALPN `http/1.1`. Client certificates are verified by
//! [`WebPkiClientVerifier`] against the client CAs only (never the system
//! roots); optional unless `identity.mtls.required`. Errors name the
//! configuration key and the file, never key material.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;

use crate::error::IdentityError;
use crate::settings::{read_small_file, IdentitySettings};

/// The `tls:` section of the listener as written: paths relative to the
/// configuration file's directory.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain, leaf first.
    pub cert: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<String>,
}

/// Validated TLS listener settings: the chain and key loaded and checked
/// to fit, plus client certificate verification when `identity.mtls` is
/// configured. `Debug` never prints the key.
#[derive(Clone)]
pub struct TlsSettings {
    path: String,
    cert_file: PathBuf,
    key_file: PathBuf,
    cert_chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    client_auth: Option<ClientAuth>,
}

#[derive(Clone)]
struct ClientAuth {
    roots: Vec<CertificateDer<'static>>,
    required: bool,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("cert", &self.cert_file)
            .field("chain_len", &self.cert_chain.len())
            .field("key", &"[secret]")
            .field(
                "client_auth",
                &self.client_auth.as_ref().map(
                    |c| {
                        if c.required {
                            "required"
                        } else {
                            "optional"
                        }
                    },
                ),
            )
            .finish()
    }
}

impl RawTls {
    /// Load and check the chain and key; take client certificate
    /// verification from `identity.mtls` when present. `path` is where the
    /// section sits in the file (`tls`, `listen.tls`): problems are
    /// `(path.key, message)` pairs. The result has been turned into a
    /// [`ServerConfig`] once, so a key that does not fit its certificate is
    /// found here, at load.
    pub fn resolve(
        self,
        base_dir: &Path,
        path: &str,
        identity: Option<&IdentitySettings>,
    ) -> Result<TlsSettings, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut file = |key: &str, value: Option<String>| -> Option<PathBuf> {
            match value.as_deref() {
                None | Some("") => {
                    problems.push((format!("{path}.{key}"), "required: a PEM file".to_owned()));
                    None
                }
                Some(f) => Some(base_dir.join(f)),
            }
        };
        let cert_file = file("cert", self.cert);
        let key_file = file("key", self.key);
        let cert_chain = cert_file.as_deref().and_then(|f| {
            load_chain(f)
                .map_err(|reason| problems.push((format!("{path}.cert"), reason)))
                .ok()
        });
        let key = key_file.as_deref().and_then(|f| {
            load_key(f)
                .map_err(|reason| problems.push((format!("{path}.key"), reason)))
                .ok()
        });
        let (Some(cert_file), Some(key_file), Some(cert_chain), Some(key)) =
            (cert_file, key_file, cert_chain, key)
        else {
            return Err(problems);
        };
        let settings = TlsSettings {
            path: path.to_owned(),
            cert_file,
            key_file,
            cert_chain,
            key: Arc::new(key),
            client_auth: identity.and_then(|i| i.mtls()).map(|m| ClientAuth {
                roots: m.client_ca.clone(),
                required: m.required,
            }),
        };
        match settings.server_config() {
            Ok(_) => Ok(settings),
            Err(IdentityError::Tls { path, reason }) => Err(vec![(path, reason)]),
            Err(other) => Err(vec![(path.to_owned(), other.to_string())]),
        }
    }
}

impl TlsSettings {
    /// The private key's file (never mounted into a sandbox).
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// Whether connections are asked for a client certificate.
    pub fn requests_client_certificates(&self) -> bool {
        self.client_auth.is_some()
    }

    /// Whether the handshake fails without a client certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_auth.as_ref().is_some_and(|c| c.required)
    }

    /// The rustls server configuration for the listener: aws-lc-rs, TLS 1.2
    /// and 1.3, ALPN `http/1.1`, client certificates verified against the
    /// client CAs (optional or required per `identity.mtls.required`).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, IdentityError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls_error = |key: &str, reason: String| IdentityError::Tls {
            path: format!("{}.{key}", self.path),
            reason,
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("cert", format!("TLS versions: {e}")))?;
        let builder = match &self.client_auth {
            None => builder.with_no_client_auth(),
            Some(auth) => {
                let roots = root_store(&auth.roots).map_err(|reason| IdentityError::Tls {
                    path: "identity.mtls.client_ca".to_owned(),
                    reason,
                })?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if auth.required {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                let verifier = verifier.build().map_err(|e| IdentityError::Tls {
                    path: "identity.mtls.client_ca".to_owned(),
                    reason: format!("client certificate verifier: {e}"),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(self.cert_chain.clone(), self.key.clone_key())
            .map_err(|e| {
                tls_error(
                    "key",
                    format!("certificate and key cannot be used together: {e}"),
                )
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The client CA file: at least one PEM `CERTIFICATE`, each usable as a
/// trust anchor.
pub(crate) fn load_client_cas(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let cas = load_chain(file)?;
    root_store(&cas)?;
    Ok(cas)
}

fn root_store(cas: &[CertificateDer<'static>]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for (i, ca) in cas.iter().enumerate() {
        roots
            .add(ca.clone())
            .map_err(|e| format!("certificate #{} is not a usable CA: {e}", i + 1))?;
    }
    Ok(roots)
}

fn load_chain(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_small_file(file)
        .map_err(|reason| format!("cannot read {}: {reason}", file.display()))?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("{}: not valid PEM", file.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no CERTIFICATE in the file", file.display()));
    }
    Ok(chain)
}

fn load_key(file: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read_small_file(file)
        .map_err(|reason| format!("cannot read {}: {reason}", file.display()))?;
    // The parser's error is about the PEM framing; it holds no key bytes,
    // but a fixed text is simpler to trust.
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        format!(
            "{}: no usable private key (PEM PKCS#8, PKCS#1 or SEC1)",
            file.display()
        )
    })
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
