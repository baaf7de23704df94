//! Real TLS handshakes on 127.0.0.1 with certificates made here: the
//! listener's `server_config()`, a tokio-rustls client with (or without) a
//! client certificate, and the peer certificate taken from the server side
//! of the connection, as the gateway will, into `authenticate`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::settings::{RawDevIssuer, RawIdentity, RawMtls, RawMtlsRoles};
use crate::test_certs::{Leaf, Names, TestCa};
use crate::{AuthError, Authenticator, EgressPolicy, MintRequest, RequestFacts};

const PUBLIC: &str = "https://warden.example.com";
const MCP: &str = "https://warden.example.com/mcp";

/// Everything a test needs on disk: the client CA, the server's chain and
/// key, in `dir`.
struct Pki {
    dir: tempfile::TempDir,
    clients: TestCa,
    server_ca: TestCa,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let clients = TestCa::new("Warden test client CA");
        let server_ca = TestCa::new("Warden test server CA");
        clients.write(dir.path(), "clients-ca.pem");
        let server = server_ca.server();
        std::fs::write(dir.path().join("server.pem"), &server.cert_pem).expect("write");
        std::fs::write(dir.path().join("server-key.pem"), &server.key_pem).expect("write");
        Pki {
            dir,
            clients,
            server_ca,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn identity(&self, mtls: RawMtls) -> IdentitySettings {
        RawIdentity {
            public_url: Some(PUBLIC.to_owned()),
            data_dir: Some(self.path().display().to_string()),
            dev_issuer: Some(RawDevIssuer::default()),
            mtls: Some(RawMtls {
                client_ca: Some("clients-ca.pem".to_owned()),
                ..mtls
            }),
            ..RawIdentity::default()
        }
        .resolve(self.path())
        .expect("valid identity settings")
    }

    fn tls(&self, identity: &IdentitySettings) -> TlsSettings {
        RawTls {
            cert: Some("server.pem".to_owned()),
            key: Some("server-key.pem".to_owned()),
        }
        .resolve(self.path(), "tls", Some(identity))
        .expect("valid TLS settings")
    }
}

/// What the server side of one connection saw.
struct Accepted {
    peer_certificate: Option<Vec<u8>>,
    alpn: Option<Vec<u8>>,
}

/// One handshake: a listener on 127.0.0.1 accepting once with `config`,
/// a client presenting `client` (or nothing). The server's result is what
/// counts: with TLS 1.3 the client may finish before the server refuses
/// its certificate.
async fn handshake(
    config: Arc<rustls::ServerConfig>,
    server_ca: &TestCa,
    client: Option<&Leaf>,
) -> Result<Accepted, std::io::Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await?;
        // The seam: the verified leaf, from the server side of the stream.
        let (_, connection) = tls.get_ref();
        let accepted = Accepted {
            peer_certificate: connection
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| leaf.as_ref().to_vec()),
            alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
        };
        tls.write_all(b"ok").await?;
        tls.shutdown().await?;
        Ok::<_, std::io::Error>(accepted)
    });

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(server_ca.pem().as_bytes()).expect("CA PEM"))
        .expect("server CA");
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match client {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(leaf.der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
            )
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let client = async {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(())
    };
    let client = tokio::time::timeout(Duration::from_secs(10), client).await;
    let server = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server finished")
        .expect("server task");
    if server.is_ok() {
        assert!(matches!(client, Ok(Ok(()))), "client failed: {client:?}");
    }
    server
}

fn svc_a(ca: &TestCa) -> Leaf {
    ca.client(&Names {
        cn: Some("svc-a"),
        dns: &["SVC-A.internal"],
        uris: &["spiffe://example.org/ns/prod/sa/svc-a"],
        emails: &["svc-a@example.org"],
    })
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn a_verified_client_certificate_becomes_the_principal_in_every_mode() {
    let pki = Pki::new();
    let leaf = svc_a(&pki.clients);
    let cases = [
        ("subject_cn", "svc-a"),
        ("san_dns", "svc-a.internal"),
        ("san_uri", "spiffe://example.org/ns/prod/sa/svc-a"),
        ("san_email", "svc-a@example.org"),
    ];
    for (mode, expected) in cases {
        let identity = pki.identity(RawMtls {
            principal_from: Some(mode.to_owned()),
            roles: Some(RawMtlsRoles::All(strings(&["service"]))),
            tenant: Some("acme".to_owned()),
            ..RawMtls::default()
        });
        let tls = pki.tls(&identity);
        assert!(tls.requests_client_certificates() && !tls.requires_client_certificates());
        let accepted = handshake(
            tls.server_config().expect("config"),
            &pki.server_ca,
            Some(&leaf),
        )
        .await
        .expect("handshake");
        assert_eq!(accepted.alpn.as_deref(), Some(&b"http/1.1"[..]));
        let der = accepted.peer_certificate.expect("client certificate");
        assert_eq!(der, leaf.der);

        let auth = Authenticator::start(identity, EgressPolicy::strict())
            .await
            .expect("start");
        let p = auth.authenticate_certificate(&der).expect(mode);
        assert_eq!(p.subject(), expected, "{mode}");
        assert_eq!(p.data().method, crate::AuthMethod::Mtls);
        assert_eq!(p.data().roles, strings(&["service"]));
        assert_eq!(p.data().tenant.as_deref(), Some("acme"));
        let namespace = p.namespace().expect("namespaced");
        assert!(
            namespace.starts_with("mtls:") && namespace.len() == "mtls:".len() + 16,
            "{namespace}"
        );
        assert_eq!(p.key(), format!("{namespace}:acme/{expected}"));
        assert_eq!(p.credential().map(|c| c.issuer.as_str()), Some(namespace));

        // The same through the one entry point the gateway calls.
        let facts = RequestFacts {
            method: "POST",
            url: MCP,
            client_cert_der: Some(&der),
            ..RequestFacts::default()
        };
        assert_eq!(auth.authenticate(&facts).await, Ok(p));
    }
}

#[tokio::test]
async fn the_same_name_under_another_ca_is_another_principal() {
    let pki = Pki::new();
    let other = TestCa::new("Another client CA");
    let mut both = pki.clients.pem();
    both.push_str(&other.pem());
    std::fs::write(pki.path().join("clients-ca.pem"), both).expect("write");
    let auth = Authenticator::start(pki.identity(RawMtls::default()), EgressPolicy::strict())
        .await
        .expect("start");
    let a = auth
        .authenticate_certificate(&svc_a(&pki.clients).der)
        .expect("a");
    let b = auth
        .authenticate_certificate(&svc_a(&other).der)
        .expect("b");
    assert_eq!((a.subject(), b.subject()), ("svc-a", "svc-a"));
    assert_ne!(a, b);
    assert_ne!(a.key(), b.key());
}

#[tokio::test]
async fn a_certificate_from_another_ca_fails_the_handshake() {
    let pki = Pki::new();
    let identity = pki.identity(RawMtls::default());
    let config = pki.tls(&identity).server_config().expect("config");
    let stranger = svc_a(&TestCa::new("Not our CA"));
    assert!(handshake(config, &pki.server_ca, Some(&stranger))
        .await
        .is_err());
}

#[tokio::test]
async fn required_client_certificates() {
    let pki = Pki::new();
    let identity = pki.identity(RawMtls {
        required: Some(true),
        ..RawMtls::default()
    });
    let tls = pki.tls(&identity);
    assert!(tls.requires_client_certificates());
    let config = tls.server_config().expect("config");
    assert!(
        handshake(Arc::clone(&config), &pki.server_ca, None)
            .await
            .is_err(),
        "no certificate: no handshake"
    );
    let accepted = handshake(config, &pki.server_ca, Some(&svc_a(&pki.clients)))
        .await
        .expect("with a certificate");
    assert!(accepted.peer_certificate.is_some());

    // Behind the listener too: a token alone is not enough.
    let auth = Authenticator::start(identity, EgressPolicy::strict())
        .await
        .expect("start");
    let token = auth
        .dev_issuer()
        .expect("dev")
        .mint("alice", &[], &[], Duration::from_secs(60), MCP)
        .expect("token");
    let header = format!("Bearer {token}");
    let facts = RequestFacts {
        method: "POST",
        url: MCP,
        authorization: Some(&header),
        ..RequestFacts::default()
    };
    assert_eq!(
        auth.authenticate(&facts).await,
        Err(AuthError::ClientCertificateRequired)
    );
    let der = svc_a(&pki.clients).der;
    let with_cert = RequestFacts {
        client_cert_der: Some(&der),
        ..facts
    };
    let p = auth.authenticate(&with_cert).await.expect("token + cert");
    assert_eq!(p.subject(), "alice", "the token is the identity");
    assert_eq!(
        auth.challenge(&AuthError::ClientCertificateRequired, "/mcp")
            .0,
        401
    );
}

#[tokio::test]
async fn optional_client_certificates_leave_tokens_alone() {
    let pki = Pki::new();
    let identity = pki.identity(RawMtls::default());
    let config = pki.tls(&identity).server_config().expect("config");
    let accepted = handshake(config, &pki.server_ca, None)
        .await
        .expect("no certificate is fine");
    assert!(accepted.peer_certificate.is_none());
    let auth = Authenticator::start(identity, EgressPolicy::strict())
        .await
        .expect("start");
    let facts = RequestFacts {
        method: "POST",
        url: MCP,
        ..RequestFacts::default()
    };
    assert_eq!(auth.authenticate(&facts).await, Err(AuthError::Missing));
}

async fn bearer_with_certificate(
    auth: &Authenticator,
    header: &str,
    der: Option<&[u8]>,
) -> Result<crate::Principal, AuthError> {
    let facts = RequestFacts {
        method: "POST",
        url: MCP,
        authorization: Some(header),
        client_cert_der: der,
        ..RequestFacts::default()
    };
    auth.authenticate(&facts).await
}

#[tokio::test]
async fn certificate_bound_tokens_need_their_certificate() {
    let pki = Pki::new();
    let auth = Authenticator::start(pki.identity(RawMtls::default()), EgressPolicy::strict())
        .await
        .expect("start");
    let mine = svc_a(&pki.clients);
    let other = svc_a(&pki.clients);
    let thumbprint = crate::mtls::certificate_thumbprint(&mine.der);
    let token = auth
        .dev_issuer()
        .expect("dev")
        .mint_with(&MintRequest {
            subject: "agent-7",
            ttl: Duration::from_secs(60),
            audience: MCP,
            certificate_thumbprint: Some(&thumbprint),
            ..MintRequest::default()
        })
        .expect("token");
    let header = format!("Bearer {token}");
    assert_eq!(
        bearer_with_certificate(&auth, &header, Some(&mine.der))
            .await
            .expect("bound token with its certificate")
            .subject(),
        "agent-7"
    );
    assert_eq!(
        bearer_with_certificate(&auth, &header, Some(&other.der)).await,
        Err(AuthError::Invalid("certificate_binding"))
    );
    assert_eq!(
        bearer_with_certificate(&auth, &header, None).await,
        Err(AuthError::Invalid("certificate_binding"))
    );
    assert_eq!(
        auth.authenticate_token(&token, MCP).await,
        Err(AuthError::Invalid("certificate_binding")),
        "stdio has no certificate"
    );
}

#[tokio::test]
async fn missing_ambiguous_and_unprintable_names_are_refused() {
    let pki = Pki::new();
    let start = |mode: &str| {
        let identity = pki.identity(RawMtls {
            principal_from: Some(mode.to_owned()),
            ..RawMtls::default()
        });
        Authenticator::start(identity, EgressPolicy::strict())
    };
    let by_dns = start("san_dns").await.expect("start");
    let two_dns = pki.clients.client(&Names {
        cn: Some("svc-b"),
        dns: &["a.internal", "b.internal"],
        ..Names::default()
    });
    assert_eq!(
        by_dns.authenticate_certificate(&two_dns.der),
        Err(AuthError::Invalid("certificate_name_ambiguous"))
    );
    let no_dns = pki.clients.client(&Names {
        cn: Some("svc-b"),
        ..Names::default()
    });
    assert_eq!(
        by_dns.authenticate_certificate(&no_dns.der),
        Err(AuthError::Invalid("certificate_name_missing"))
    );
    let by_email = start("san_email").await.expect("start");
    assert_eq!(
        by_email.authenticate_certificate(&two_dns.der),
        Err(AuthError::Invalid("certificate_name_missing"))
    );
    let by_cn = start("subject_cn").await.expect("start");
    for bad in ["svc\u{7}b", "", " svc-b", "svc\u{202E}b", "svc\nb"] {
        let cert = pki.clients.client(&Names {
            cn: Some(bad),
            ..Names::default()
        });
        assert_eq!(
            by_cn.authenticate_certificate(&cert.der),
            Err(AuthError::Invalid("certificate_name")),
            "{bad:?}"
        );
    }
    let nameless = pki.clients.client(&Names {
        dns: &["x.internal"],
        ..Names::default()
    });
    assert_eq!(
        by_cn.authenticate_certificate(&nameless.der),
        Err(AuthError::Invalid("certificate_name_missing"))
    );
    assert_eq!(
        by_cn.authenticate_certificate(b"not a certificate"),
        Err(AuthError::Invalid("certificate"))
    );
}

#[tokio::test]
async fn roles_by_principal() {
    let pki = Pki::new();
    let mut map = std::collections::BTreeMap::new();
    map.insert("svc-a".to_owned(), strings(&["reader", "writer"]));
    let auth = Authenticator::start(
        pki.identity(RawMtls {
            roles: Some(RawMtlsRoles::ByPrincipal(map)),
            ..RawMtls::default()
        }),
        EgressPolicy::strict(),
    )
    .await
    .expect("start");
    let a = auth
        .authenticate_certificate(&svc_a(&pki.clients).der)
        .expect("a");
    assert_eq!(a.data().roles, strings(&["reader", "writer"]));
    let b = pki.clients.client(&Names {
        cn: Some("svc-b"),
        ..Names::default()
    });
    let b = auth.authenticate_certificate(&b.der).expect("b");
    assert!(
        b.data().roles.is_empty(),
        "unmapped principals get no roles"
    );
}

#[tokio::test]
async fn without_mtls_a_certificate_is_not_an_identity() {
    let pki = Pki::new();
    let identity = RawIdentity {
        public_url: Some(PUBLIC.to_owned()),
        data_dir: Some(pki.path().display().to_string()),
        ..RawIdentity::default()
    }
    .resolve(pki.path())
    .expect("valid");
    let tls = pki.tls(&identity);
    assert!(!tls.requests_client_certificates());
    let auth = Authenticator::start(identity, EgressPolicy::strict())
        .await
        .expect("start");
    let der = svc_a(&pki.clients).der;
    assert_eq!(
        auth.authenticate_certificate(&der),
        Err(AuthError::Invalid("mtls_disabled"))
    );
    let facts = RequestFacts {
        method: "POST",
        url: MCP,
        client_cert_der: Some(&der),
        ..RequestFacts::default()
    };
    assert_eq!(auth.authenticate(&facts).await, Err(AuthError::Missing));
}

#[test]
fn tls_settings_errors_name_the_key_and_never_the_key_material() {
    let pki = Pki::new();
    let identity = pki.identity(RawMtls::default());
    let resolve = |cert: Option<&str>, key: Option<&str>| {
        RawTls {
            cert: cert.map(str::to_owned),
            key: key.map(str::to_owned),
        }
        .resolve(pki.path(), "listen.tls", Some(&identity))
    };
    let problems = resolve(None, None).expect_err("nothing given");
    let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["listen.tls.cert", "listen.tls.key"]);

    let problems = resolve(Some("missing.pem"), Some("server-key.pem")).expect_err("missing");
    assert_eq!(problems[0].0, "listen.tls.cert");
    assert!(problems[0].1.contains("missing.pem"), "{problems:?}");

    // A key that does not belong to the certificate.
    let stray = pki.clients.client(&Names {
        cn: Some("x"),
        ..Names::default()
    });
    std::fs::write(pki.path().join("stray-key.pem"), &stray.key_pem).expect("write");
    let problems = resolve(Some("server.pem"), Some("stray-key.pem")).expect_err("mismatch");
    assert_eq!(problems[0].0, "listen.tls.key", "{problems:?}");
    let text = format!("{problems:?}");
    let body: String = stray
        .key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!text.contains(&body[..20]), "{text}");

    // A certificate where the key should be.
    let problems = resolve(Some("server.pem"), Some("server.pem")).expect_err("not a key");
    assert_eq!(problems[0].0, "listen.tls.key");

    let tls = resolve(Some("server.pem"), Some("server-key.pem")).expect("valid");
    let debug = format!("{tls:?}");
    let key = std::fs::read_to_string(pki.path().join("server-key.pem")).expect("key");
    let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(
        !debug.contains(&body[..20]) && debug.contains("[secret]"),
        "{debug}"
    );
}
