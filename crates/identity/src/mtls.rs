//! TLS client certificates as identity.
//!
//! The TLS listener (rustls with the [`crate::TlsSettings::server_config`]
//! verifier) checks the chain against `identity.mtls.client_ca`; we get the
//! leaf's DER and never see an unverified certificate. Here: parse it,
//! check its validity period again (cheap, and a second line if the
//! listener is misconfigured), and take the principal name from the one
//! configured field. A field that is missing, repeated (two CNs, two DNS
//! SANs: which one is the caller?), empty, or holds control or invisible
//! formatting characters is refused rather than guessed.
//!
//! Principals are namespaced by the issuing CA: `mtls:<16 hex of
//! SHA-256(issuer DN)>`, so `mtls:1f…:svc-a` never equals a token subject
//! (issuer names `mtls…` and `api-key` are refused at load) nor the same
//! CN under another CA.

use crate::error::AuthError;
use crate::principal::Principal;
#[cfg(feature = "mtls")]
use crate::principal::{AuthMethod, CredentialInfo, PrincipalData};
use crate::settings::MtlsSettings;
#[cfg(feature = "mtls")]
use crate::settings::{CertField, MtlsRoles};

/// Prefix of certificate principals' namespace in [`Principal::key`]
/// (`mtls:<CA hash>`).
pub const MTLS_NAMESPACE: &str = "mtls";

/// Longest principal name taken from a certificate.
const MAX_NAME_BYTES: usize = 256;

/// A name (principal, tenant, role) we accept: non-empty, bounded, no
/// surrounding spaces, no control or invisible formatting characters.
pub(crate) fn acceptable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.trim() == name
        && !name.chars().any(|c| c.is_control() || invisible(c))
}

/// Zero-width and bidirectional formatting characters: they make two
/// different names look the same.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}')
}

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
    let one = |mut names: Vec<Option<String>>| -> Result<String, AuthError> {
        match (names.pop(), names.is_empty()) {
            (Some(Some(name)), true) => Ok(name),
            (None, _) => Err(AuthError::Invalid("certificate_name_missing")),
            (Some(_), false) => Err(AuthError::Invalid("certificate_name_ambiguous")),
            (Some(None), true) => Err(AuthError::Invalid("certificate_name")),
        }
    };
    let san = |pick: fn(&GeneralName<'_>) -> Option<Option<String>>| {
        let ext = cert
            .subject_alternative_name()
            .map_err(|_| AuthError::Invalid("certificate"))?;
        let names = ext.map_or(&[][..], |e| &e.value.general_names[..]);
        one(names.iter().filter_map(pick).collect())
    };
    let name = match settings.principal_from {
        CertField::SubjectCn => one(cert
            .subject()
            .iter_common_name()
            .map(|cn| cn.as_str().ok().map(str::to_owned))
            .collect())?,
        CertField::SanDns => san(|n| match n {
            // DNS names are case-insensitive: one principal, one spelling.
            GeneralName::DNSName(v) => Some(Some(v.to_ascii_lowercase())),
            _ => None,
        })?,
        CertField::SanUri => san(|n| match n {
            GeneralName::URI(v) => Some(Some((*v).to_owned())),
            _ => None,
        })?,
        CertField::SanEmail => san(|n| match n {
            GeneralName::RFC822Name(v) => Some(Some((*v).to_owned())),
            _ => None,
        })?,
    };
    if !acceptable_name(&name) {
        return Err(AuthError::Invalid("certificate_name"));
    }
    let roles = match &settings.roles {
        MtlsRoles::All(roles) => roles.clone(),
        MtlsRoles::ByPrincipal(map) => map.get(&name).cloned().unwrap_or_default(),
    };
    let ca_hash = crate::jws::sha256(cert.issuer().as_raw());
    let namespace = format!("{MTLS_NAMESPACE}:{}", hex16(&ca_hash));
    let data = PrincipalData {
        subject: name,
        tenant: settings.tenant.clone(),
        roles,
        groups: Vec::new(),
        scopes: Vec::new(),
        client_id: None,
        agent_id: None,
        method: AuthMethod::Mtls,
    };
    let credential = CredentialInfo {
        issuer: namespace.clone(),
        token_id: Some(cert.raw_serial_as_string()),
        expires_at: u64::try_from(cert.validity().not_after.timestamp()).ok(),
        key_thumbprint: None,
    };
    Ok(Principal::authenticated(data, &namespace, credential))
}

#[cfg(not(feature = "mtls"))]
pub(crate) fn principal_from_certificate(
    _der: &[u8],
    _settings: &MtlsSettings,
) -> Result<Principal, AuthError> {
    Err(AuthError::Invalid("certificate"))
}

/// RFC 8705 `x5t#S256`: base64url(SHA-256(DER)) of a certificate.
pub(crate) fn certificate_thumbprint(der: &[u8]) -> String {
    crate::jws::b64(&crate::jws::sha256(der))
}

#[cfg(feature = "mtls")]
fn hex16(bytes: &[u8; 32]) -> String {
    bytes[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(all(test, feature = "mtls"))]
mod tests {
    use super::*;
    use crate::settings::{CertField, MtlsRoles};
    use crate::test_certs::{Names, TestCa};

    fn settings(principal_from: CertField) -> MtlsSettings {
        MtlsSettings {
            client_ca: Vec::new(),
            client_ca_path: std::path::PathBuf::new(),
            principal_from,
            roles: MtlsRoles::All(Vec::new()),
            tenant: None,
            required: false,
        }
    }

    #[test]
    fn names_we_accept() {
        for good in ["svc-a", "spiffe://corp/ns/prod/sa/x", "ünïcode", "a b"] {
            assert!(acceptable_name(good), "{good:?}");
        }
        for bad in [
            "",
            " a",
            "a ",
            "a\u{0}b",
            "a\u{7f}",
            "a\u{85}b",
            "a\u{200B}b",
            "a\u{202E}b",
            "\u{FEFF}a",
        ] {
            assert!(!acceptable_name(bad), "{bad:?}");
        }
        assert!(!acceptable_name(&"x".repeat(MAX_NAME_BYTES + 1)));
    }

    #[test]
    fn hostile_bytes_never_panic_and_never_authenticate() {
        let ca = TestCa::new("ca");
        let real = ca
            .client(&Names {
                cn: Some("svc"),
                ..Names::default()
            })
            .der;
        let s = settings(CertField::SubjectCn);
        assert!(principal_from_certificate(&real, &s).is_ok());
        let mut trailing = real.clone();
        trailing.push(0);
        assert_eq!(
            principal_from_certificate(&trailing, &s),
            Err(AuthError::Invalid("certificate"))
        );
        proptest::proptest!(|(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
                               flip in 0usize..4096, bit in 0u8..8)| {
            proptest::prop_assert!(principal_from_certificate(&bytes, &s).is_err());
            // One flipped bit in a real certificate: parsed or refused, no panic.
            let mut mangled = real.clone();
            let i = flip % mangled.len();
            mangled[i] ^= 1 << bit;
            let _ = principal_from_certificate(&mangled, &s);
        });
    }
}
