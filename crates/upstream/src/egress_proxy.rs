//! The egress proxy of one sandboxed stdio server.
//!
//! The listening socket lives in the sandbox's network namespace (the
//! launcher made it there and handed it over), so the server reaches it at
//! `127.0.0.1:3128` and nothing else. Each connection carries one request:
//! `CONNECT host:port` (tunnelled, for HTTPS) or a plain-HTTP request with
//! an absolute URI (forwarded in origin form with `Connection: close`, so a
//! second request cannot ride the checked connection). The destination
//! must be on the server's allowlist (`host:port`, hosts compared as the
//! URL standard reads them, so `0x7f.1` is `127.0.0.1`) and pass the egress
//! guard: resolved once, every address checked, the connection made to a
//! checked address only. Redirects are the client's to follow: each new
//! request comes through here and is checked again.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;
use tracing::{info, warn};
use url::Host;
use warden_egress::{parse_host, resolve, AddressClass, EgressPolicy, ResolveError};

use crate::log_safe::log_safe;
use crate::shared::Shared;
use crate::spec::StdioSandbox;
use crate::{UpstreamError, UpstreamEvent};

/// Longest request head read before a decision.
const MAX_HEAD: usize = 16 * 1024;
/// Time to send the head, and to connect onward.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once for one server.
const MAX_CONNECTIONS: usize = 64;

struct Rules {
    shared: Arc<Shared>,
    server: String,
    allow: Vec<(Host<String>, u16)>,
    policy: EgressPolicy,
}

/// Serves `listener` until the returned task is aborted.
pub(crate) fn start(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    sandbox: &StdioSandbox,
) -> Result<AbortHandle, UpstreamError> {
    let server = shared.spec.name.clone();
    let listener = TcpListener::from_std(listener)
        .map_err(|e| UpstreamError::Unavailable(format!("egress proxy: {e}")))?;
    let allow = sandbox
        .egress
        .iter()
        .filter_map(|(host, port)| Some((parse_host(host)?, *port)))
        .collect();
    let rules = Arc::new(Rules {
        shared,
        server,
        allow,
        policy: EgressPolicy::strict().widened(sandbox.egress_allow_private),
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                drop(conn);
                continue;
            };
            let rules = rules.clone();
            tokio::spawn(async move {
                serve(conn, &rules).await;
                drop(permit);
            });
        }
    });
    Ok(task.abort_handle())
}

/// A request the proxy understood.
struct Request {
    connect: bool,
    host: Host<String>,
    port: u16,
    /// Plain HTTP: the head to send onward (origin form).
    head: Vec<u8>,
    /// Bytes read past the head.
    rest: Vec<u8>,
}

async fn serve(mut conn: TcpStream, rules: &Rules) {
    let request = match tokio::time::timeout(HEAD_TIMEOUT, read_request(&mut conn)).await {
        Ok(Ok(r)) => r,
        Ok(Err(why)) => {
            refuse(&mut conn, rules, "-", 400, "bad_request", why).await;
            return;
        }
        Err(_) => return,
    };
    let target = match &request.host {
        Host::Ipv6(ip) => format!("[{ip}]:{}", request.port),
        h => format!("{h}:{}", request.port),
    };
    if !rules
        .allow
        .iter()
        .any(|(h, p)| *h == request.host && *p == request.port)
    {
        refuse(
            &mut conn,
            rules,
            &target,
            403,
            "not_allowlisted",
            "not in this server's egress allowlist",
        )
        .await;
        return;
    }
    let addrs = match resolve(rules.policy, &request.host, request.port).await {
        Ok(a) => a,
        Err(ResolveError::Refused(r)) => {
            let code = match r.class {
                AddressClass::Loopback => "loopback",
                AddressClass::Private => "private",
                AddressClass::LinkLocal => "link_local",
                AddressClass::Reserved | AddressClass::Public => "reserved",
            };
            refuse(&mut conn, rules, &target, 403, code, r.class.reason()).await;
            return;
        }
        Err(ResolveError::Dns(_)) => {
            let why = "the name does not resolve";
            refuse(&mut conn, rules, &target, 502, "unresolved", why).await;
            return;
        }
    };
    let mut onward = None;
    for addr in addrs {
        if let Ok(Ok(s)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            onward = Some(s);
            break;
        }
    }
    let Some(mut onward) = onward else {
        let why = "connection failed";
        refuse(&mut conn, rules, &target, 502, "connect_failed", why).await;
        return;
    };
    info!(target: "egress", server = %rules.server, target = %target, "egress allowed");
    let started = if request.connect {
        conn.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await
            .is_ok()
    } else {
        onward.write_all(&request.head).await.is_ok()
    };
    if !started || (!request.rest.is_empty() && onward.write_all(&request.rest).await.is_err()) {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut conn, &mut onward).await;
}

/// Answers `status` with `reason`, logs, and reports the refusal (the
/// gateway audits it).
async fn refuse(
    conn: &mut TcpStream,
    rules: &Rules,
    target: &str,
    status: u16,
    code: &'static str,
    reason: &str,
) {
    let target = log_safe(target.as_bytes(), 300);
    warn!(
        target: "egress",
        server = %rules.server,
        target = %target,
        reason = %reason,
        "egress refused"
    );
    rules
        .shared
        .emit(UpstreamEvent::EgressRefused {
            server: rules.server.clone(),
            target,
            reason: code,
        })
        .await;
    let text = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        _ => "Bad Gateway",
    };
    let body = format!("Warden egress proxy: {reason}\n");
    let response = format!(
        "HTTP/1.1 {status} {text}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes()).await;
    let _ = conn.shutdown().await;
}

async fn read_request(conn: &mut TcpStream) -> Result<Request, &'static str> {
    let mut buf = Vec::with_capacity(2048);
    let end = loop {
        let mut chunk = [0u8; 2048];
        let n = conn.read(&mut chunk).await.map_err(|_| "read failed")?;
        if n == 0 {
            return Err("connection closed before the request head ended");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err("request head too long");
        }
    };
    let rest = buf.split_off(end);
    let head = std::str::from_utf8(&buf).map_err(|_| "request head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let line = lines.next().ok_or("no request line")?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    if !version.starts_with("HTTP/1.") {
        return Err("unsupported HTTP version");
    }
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = split_authority(target).ok_or("CONNECT needs host:port")?;
        return Ok(Request {
            connect: true,
            host,
            port,
            head: Vec::new(),
            rest,
        });
    }
    let url = url::Url::parse(target).map_err(|_| "a proxy request needs an absolute http URI")?;
    if url.scheme() != "http" {
        return Err("only http is proxied in the clear (use CONNECT for https)");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in URLs are not allowed");
    }
    let host = url.host().ok_or("no host")?.to_owned();
    let port = url.port_or_known_default().ok_or("no port")?;
    let mut path = url.path().to_owned();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let mut out = format!("{method} {path} {version}\r\n");
    for header in lines.filter(|l| !l.is_empty()) {
        let name = header.split(':').next().unwrap_or("").trim();
        if [
            "proxy-connection",
            "proxy-authorization",
            "connection",
            "keep-alive",
        ]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
        {
            continue;
        }
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    Ok(Request {
        connect: false,
        host,
        port,
        head: out.into_bytes(),
        rest,
    })
}

/// `host:port` or `[v6]:port`, the host read as the URL standard does.
fn split_authority(authority: &str) -> Option<(Host<String>, u16)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let port = authority.get(end + 1..)?.strip_prefix(':')?;
        (authority.get(..=end)?, port)
    } else {
        authority.rsplit_once(':')?
    };
    let port: u16 = port.parse().ok().filter(|&p| p > 0)?;
    Some((parse_host(host)?, port))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_are_read_as_url_hosts() {
        let (h, p) = split_authority("0x7f.1:8080").expect("parses");
        assert_eq!(h, Host::<String>::Ipv4(std::net::Ipv4Addr::LOCALHOST));
        assert_eq!(p, 8080);
        let (h, _) = split_authority("2130706433:1").expect("parses");
        assert_eq!(h, Host::<String>::Ipv4(std::net::Ipv4Addr::LOCALHOST));
        let (h, _) = split_authority("[::ffff:127.0.0.1]:1").expect("parses");
        assert!(matches!(h, Host::Ipv6(_)));
        assert!(split_authority("example.com").is_none());
        assert!(split_authority("example.com:0").is_none());
    }
}
