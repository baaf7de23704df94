//! Certificates made at test time (rcgen, aws-lc-rs): CAs, client and
//! server certificates, written as PEM files where settings need paths.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

pub(crate) struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key.
pub(crate) struct Leaf {
    pub der: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
    pub key_der: Vec<u8>,
}

/// What a leaf says about its holder.
#[derive(Default)]
pub(crate) struct Names<'a> {
    pub cn: Option<&'a str>,
    pub dns: &'a [&'a str],
    pub uris: &'a [&'a str],
    pub emails: &'a [&'a str],
}

impl TestCa {
    pub(crate) fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Write the CA certificate to `dir/file`.
    pub(crate) fn write(&self, dir: &Path, file: &str) {
        std::fs::write(dir.join(file), self.pem()).expect("write CA");
    }

    /// A client certificate (EKU clientAuth).
    pub(crate) fn client(&self, names: &Names<'_>) -> Leaf {
        self.leaf(names, ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A server certificate for `localhost` (EKU serverAuth).
    pub(crate) fn server(&self) -> Leaf {
        self.leaf(
            &Names {
                cn: Some("localhost"),
                dns: &["localhost"],
                ..Names::default()
            },
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn leaf(&self, names: &Names<'_>, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        // rcgen's default subject has a CN of its own.
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = names.cn {
            params
                .distinguished_name
                .push(DnType::CommonName, DnValue::Utf8String(cn.to_owned()));
        }
        for dns in names.dns {
            let v = (*dns).try_into().expect("IA5 DNS name");
            params.subject_alt_names.push(SanType::DnsName(v));
        }
        for uri in names.uris {
            let v = (*uri).try_into().expect("IA5 URI");
            params.subject_alt_names.push(SanType::URI(v));
        }
        for email in names.emails {
            let v = (*email).try_into().expect("IA5 e-mail");
            params.subject_alt_names.push(SanType::Rfc822Name(v));
        }
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        Leaf {
            der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }
}
