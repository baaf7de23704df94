//! HTTPS and mTLS client certificates as identity, through the real binary
//! and a real TLS client (curl).

use std::path::Path;
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use serde_json::{json, Value};

use crate::harness::*;

struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    /// (certificate PEM, key PEM)
    fn leaf(&self, cn: &str, server: bool) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, DnValue::Utf8String(cn.to_owned()));
        if server {
            params
                .subject_alt_names
                .push(SanType::DnsName("localhost".try_into().unwrap()));
        }
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// POSTs `body` with curl; `client` = (cert, key) files. Returns (curl
/// exit code, HTTP status, headers+body).
fn curl(
    base: &str,
    ca: &str,
    client: Option<(&str, &str)>,
    body: &str,
    session: Option<&str>,
) -> (i32, u16, String) {
    let port = base.rsplit(':').next().unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "--max-time", "20", "--cacert", ca])
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["-H", "content-type: application/json"])
        .args(["-H", "accept: application/json, text/event-stream"])
        .args(["-H", "mcp-protocol-version: 2025-06-18"]);
    if let Some(s) = session {
        cmd.args(["-H", &format!("mcp-session-id: {s}")]);
    }
    if let Some((cert, key)) = client {
        cmd.args(["--cert", cert, "--key", key]);
    }
    cmd.args(["--data", body, &format!("https://localhost:{port}/mcp")]);
    let out = cmd.output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (out.status.code().unwrap_or(-1), status, text)
}

#[test]
fn client_certificates_from_the_configured_ca_are_principals() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Warden Test Client CA");
    let server_ca = Ca::new("Warden Test Server CA");
    let other = Ca::new("Someone Else");
    let (srv_cert, srv_key) = server_ca.leaf("localhost", true);
    let (cli_cert, cli_key) = ca.leaf("build-robot", false);
    let (bad_cert, bad_key) = other.leaf("build-robot", false);
    let d = dir.path();
    let server_ca_file = write(d, "server-ca.pem", &server_ca.0.pem());
    write(d, "client-ca.pem", &ca.0.pem());
    write(d, "server.pem", &srv_cert);
    write(d, "server.key", &srv_key);
    let cli = (
        write(d, "robot.pem", &cli_cert),
        write(d, "robot.key", &cli_key),
    );
    let bad = (
        write(d, "bad.pem", &bad_cert),
        write(d, "bad.key", &bad_key),
    );

    let yaml = format!(
        "tls:\n  cert: server.pem\n  key: server.key\nidentity:\n  public_url: https://localhost:1\n  data_dir: '{{DIR}}/data'\n  dev_issuer: {{enabled: true}}\n  mtls:\n    client_ca: client-ca.pem\n    principal_from: subject_cn\n    roles: [robot]\nservers:\n{}authorization:\n  roles:\n    robot:\n      grants:\n        - {{tools: [t/echo]}}\n",
        example_server("t", "test", "")
    );
    let w = Warden::start_in(dir, &yaml, &[]);
    assert!(w.base.starts_with("https://"), "{}", w.base);
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}).to_string();

    // The right certificate: a session, and calls as `build-robot`.
    let (code, status, text) = curl(
        &w.base,
        &server_ca_file,
        Some((&cli.0, &cli.1)),
        &init,
        None,
    );
    assert_eq!((code, status), (0, 200), "{text}");
    let session = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("mcp-session-id:")
                .map(|v| v.trim().to_owned())
        })
        .expect("a session id");
    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t__echo","arguments":{"message":"over mtls"}}}).to_string();
    let (_, status, text) = curl(
        &w.base,
        &server_ca_file,
        Some((&cli.0, &cli.1)),
        &call,
        Some(&session),
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("over mtls"), "{text}");
    // The role came with the certificate: add is not granted.
    let add = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t__add","arguments":{"a":1,"b":2}}}).to_string();
    let (_, _, text) = curl(
        &w.base,
        &server_ca_file,
        Some((&cli.0, &cli.1)),
        &add,
        Some(&session),
    );
    assert!(text.contains("-32012"), "{text}");

    // No certificate: no credentials at all → 401 with a challenge.
    let (code, status, text) = curl(&w.base, &server_ca_file, None, &init, None);
    assert_eq!((code, status), (0, 401), "{text}");
    // A certificate from another CA fails the handshake.
    let (code, status, _) = curl(
        &w.base,
        &server_ca_file,
        Some((&bad.0, &bad.1)),
        &init,
        None,
    );
    assert!(
        code != 0 && status == 0,
        "handshake must fail: curl {code}, HTTP {status}"
    );
    // Another principal's session id with no certificate is refused.
    let (_, status, _) = curl(&w.base, &server_ca_file, None, &call, Some(&session));
    assert_eq!(status, 401);

    // The audit trail names the certificate's principal.
    let mut seen = Value::Null;
    for _ in 0..50 {
        let (ok, out, _) =
            w.cli_status(&["audit", "query", "--principal", "build-robot", "--json"]);
        if ok && out.contains("echo") {
            seen =
                serde_json::from_str(out.lines().next().unwrap_or("null")).unwrap_or(Value::Null);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(seen["principal"]["subject"], "build-robot", "{seen}");
    assert_eq!(seen["token"]["kind"], "mtls", "{seen}");
}

/// #16.8: a TLS listener is held to the same edge limits as plain HTTP: a
/// connection that never finishes its handshake is cut at
/// `listen.header_timeout`, one past `max_connections_per_ip` is closed at
/// once, and other addresses are served meanwhile.
#[test]
fn tls_connections_are_held_to_the_same_edge_limits() {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let server_ca = Ca::new("Warden Test Server CA");
    let (srv_cert, srv_key) = server_ca.leaf("localhost", true);
    let d = dir.path();
    let ca_file = write(d, "server-ca.pem", &server_ca.0.pem());
    write(d, "server.pem", &srv_cert);
    write(d, "server.key", &srv_key);
    let yaml = format!(
        "tls:\n  cert: server.pem\n  key: server.key\nlisten:\n  max_connections_per_ip: 3\n  header_timeout: 1s\nservers:\n{}",
        example_server("t", "test", "")
    );
    let w = Warden::start_in(dir, &yaml, &[]);
    let port: u16 = w.base.rsplit(':').next().unwrap().parse().unwrap();
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // Three connections that never say a word hold 127.0.0.1's places...
    let mut silent: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(to).expect("connect"))
        .collect();
    // ...so a fourth is closed at once, without a handshake.
    let mut fourth = std::net::TcpStream::connect(to).expect("connect");
    fourth
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(matches!(fourth.read(&mut buf), Ok(0) | Err(_)));
    // Another address completes its handshake and is served.
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}).to_string();
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .args(["--interface", "127.0.0.2", "--cacert", &ca_file])
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["-H", "content-type: application/json"])
        .args(["-H", "accept: application/json, text/event-stream"])
        .args(["--data", &init, &format!("https://localhost:{port}/mcp")])
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    // The silent ones are cut at the header timeout.
    let deadline = Instant::now() + Duration::from_secs(30);
    for s in &mut silent {
        s.set_read_timeout(Some(deadline.saturating_duration_since(Instant::now())))
            .unwrap();
        assert!(
            matches!(s.read(&mut buf), Ok(0) | Err(_)),
            "a stalled handshake was kept"
        );
        assert!(Instant::now() < deadline, "a stalled handshake was kept");
    }
    // Their places are free again.
    let (code, status, text) = curl(&w.base, &ca_file, None, &init, None);
    assert_eq!((code, status), (0, 200), "{text}");
}
