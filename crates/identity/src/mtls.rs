//! TLS client certificates as identity.
//!
//! The TLS listener (the gateway's, rustls) verifies the chain against the
//! configured client CAs and hands us the leaf's DER; we never see an
//! unverified certificate. Here: parse it, check its validity period again
//! (cheap, and a second line if the listener is misconfigured), and take
//! the subject from the first configured field present (SAN e-mail, SAN
//! DNS, SAN URI, subject CN).

use crate::error::AuthError;
use crate::principal::Principal;
#[cfg(feature = "mtls")]
use crate::principal::{AuthMethod, CredentialInfo, PrincipalData};
#[cfg(feature = "mtls")]
use crate::settings::CertField;
use crate::settings::MtlsSettings;

/// Namespace of certificate principals in [`Principal::key`].
pub const MTLS_NAMESPACE: &str = "mtls";

#[cfg(feature = "mtls")]
pub(crate) fn principal_from_certificate(
    der: &[u8],
    settings: &MtlsSettings,
) -> Result<Principal, AuthError> {
    use x509_parser::extensions::GeneralName;

    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| AuthError::Invalid("certificate"))?;
    if !rest.is_empty() {
        return Err(AuthError::Invalid("certificate"));
    }
    if !cert.validity().is_valid() {
        return Err(AuthError::Invalid("certificate_expired"));
    }
    let san = cert
        .subject_alternative_name()
        .map_err(|_| AuthError::Invalid("certificate"))?;
    let names: &[GeneralName<'_>] = san.as_ref().map_or(&[], |s| &s.value.general_names);
    let mut subject: Option<String> = None;
    for field in &settings.subject_from {
        subject = match field {
            CertField::SanEmail => names.iter().find_map(|n| match n {
                GeneralName::RFC822Name(v) => Some((*v).to_owned()),
                _ => None,
            }),
            CertField::SanDns => names.iter().find_map(|n| match n {
                GeneralName::DNSName(v) => Some((*v).to_owned()),
                _ => None,
            }),
            CertField::SanUri => names.iter().find_map(|n| match n {
                GeneralName::URI(v) => Some((*v).to_owned()),
                _ => None,
            }),
            CertField::CommonName => cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_owned),
        };
        if subject.is_some() {
            break;
        }
    }
    let subject = subject
        .filter(|s| !s.is_empty() && s.len() <= 256 && !s.contains(char::is_control))
        .ok_or(AuthError::Invalid("certificate_subject"))?;
    let data = PrincipalData {
        subject,
        tenant: None,
        roles: settings.roles.clone(),
        groups: Vec::new(),
        scopes: Vec::new(),
        client_id: None,
        agent_id: None,
        method: AuthMethod::Mtls,
    };
    let credential = CredentialInfo {
        issuer: cert.issuer().to_string(),
        token_id: Some(cert.raw_serial_as_string()),
        expires_at: u64::try_from(cert.validity().not_after.timestamp()).ok(),
        key_thumbprint: None,
    };
    Ok(Principal::authenticated(data, MTLS_NAMESPACE, credential))
}

#[cfg(not(feature = "mtls"))]
pub(crate) fn principal_from_certificate(
    _der: &[u8],
    _settings: &MtlsSettings,
) -> Result<Principal, AuthError> {
    Err(AuthError::Invalid("certificate"))
}
