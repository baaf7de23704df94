//! Outbound fetches of metadata and keys (discovery, JWKS), through an
//! egress guard.
//!
//! Threat T10 (SSRF) applies to every URL an operator or a discovery
//! document gives us. The guard:
//! - refuses schemes other than `https` (plain `http` only to loopback when
//!   loopback is allowed: local development and tests);
//! - classifies every address a name resolves to, and IP literals in any
//!   encoding the URL parser accepts (`0x7f.1`, `2130706433`, IPv4-mapped
//!   IPv6), and refuses the forbidden ones; the connection goes to the
//!   checked addresses only (our resolver is the one reqwest connects with),
//!   so a DNS answer that changes between check and connect cannot slip in;
//! - follows no redirects and ignores proxy environment variables;
//! - bounds time and response size.
//!
//! Link-local addresses (`169.254.0.0/16`, cloud metadata; `fe80::/10`) are
//! never allowed, whatever the configuration: no identity provider lives
//! there, and they are the classic SSRF target.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

use crate::error::{IdentityError, IssuerErrorClass};

/// Which kinds of addresses Warden's own outbound fetches may reach.
///
/// Built by the gateway from its configuration; the default is strict:
/// public addresses only. Each issuer may additionally be allowed private
/// networks (`allow_private_network: true` in its configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allow_loopback: bool,
    allow_private: bool,
}

impl EgressPolicy {
    /// Public addresses only.
    #[must_use]
    pub fn strict() -> Self {
        EgressPolicy::default()
    }

    /// Also allow loopback (`127.0.0.0/8`, `::1`): development and tests.
    #[must_use]
    pub fn with_loopback(mut self, allow: bool) -> Self {
        self.allow_loopback = allow;
        self
    }

    /// Also allow private ranges (RFC 1918, CGNAT, unique-local IPv6) for
    /// every issuer.
    #[must_use]
    pub fn with_private_networks(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    pub fn allows_loopback(&self) -> bool {
        self.allow_loopback
    }

    /// The policy for one issuer: the global one widened by the issuer's
    /// `allow_private_network`, which allows private ranges and loopback.
    pub(crate) fn for_issuer(self, allow_private_network: bool) -> Self {
        EgressPolicy {
            allow_loopback: self.allow_loopback || allow_private_network,
            allow_private: self.allow_private || allow_private_network,
        }
    }

    fn allows(self, class: AddressClass) -> bool {
        match class {
            AddressClass::Public => true,
            AddressClass::Private => self.allow_private,
            AddressClass::Loopback => self.allow_loopback,
            AddressClass::LinkLocal | AddressClass::Reserved => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressClass {
    Public,
    Private,
    Loopback,
    LinkLocal,
    /// Unspecified, multicast, broadcast, documentation, benchmarking and
    /// reserved ranges: never a server.
    Reserved,
}

impl AddressClass {
    fn reason(self) -> &'static str {
        match self {
            AddressClass::Public => "public address",
            AddressClass::Private => "private network address not allowed for this issuer",
            AddressClass::Loopback => "loopback address not allowed",
            AddressClass::LinkLocal => "link-local address (never allowed)",
            AddressClass::Reserved => "reserved address (never allowed)",
        }
    }
}

pub(crate) fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        AddressClass::Private
    } else if a == 0
        || a >= 224
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let seg = ip.segments();
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_unspecified() || ip.is_multicast() {
        AddressClass::Reserved
    } else if seg[0] & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if seg[0] & 0xfe00 == 0xfc00 || seg[0] & 0xffc0 == 0xfec0 {
        AddressClass::Private
    } else if seg[0] == 0x0064 && seg[1] == 0xff9b {
        // NAT64: the embedded IPv4 address is where the packet goes.
        classify_v4(Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        ))
    } else if seg[0] == 0x2002 {
        // 6to4: likewise.
        classify_v4(Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        ))
    } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        AddressClass::Reserved
    } else if seg[0] == 0 {
        // ::/96 compatible addresses and the rest of ::/8.
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// Largest metadata or JWKS document accepted.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// An HTTP client for one issuer's documents, bound to one egress policy.
#[derive(Clone)]
pub(crate) struct GuardedFetcher {
    pub(crate) client: reqwest::Client,
    policy: EgressPolicy,
}

impl GuardedFetcher {
    pub(crate) fn new(policy: EgressPolicy, timeout: Duration) -> Result<Self, IdentityError> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| IdentityError::Invalid(format!("HTTP client: {e}")))?;
        Ok(GuardedFetcher { client, policy })
    }

    /// Check a URL against the policy before any connection is made.
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), IdentityError> {
        check_url(self.policy, url)
    }

    /// GET a JSON document. `Ok(None)` for 404 (discovery falls through to
    /// the next well-known location).
    pub(crate) async fn get_json(&self, url: &Url) -> Result<Option<Vec<u8>>, FetchError> {
        self.check_url(url).map_err(|e| FetchError {
            class: IssuerErrorClass::EgressRefused,
            detail: e.to_string(),
        })?;
        let failed = |class: IssuerErrorClass, reason: String| FetchError {
            class,
            detail: format!("{url}: {reason}"),
        };
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| failed(classify_reqwest(&e), describe_reqwest(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(failed(
                IssuerErrorClass::HttpStatus,
                format!("HTTP status {}", status.as_u16()),
            ));
        }
        let too_large = || {
            failed(
                IssuerErrorClass::InvalidDocument,
                format!("larger than {MAX_DOCUMENT_BYTES} bytes"),
            )
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed(classify_reqwest(&e), describe_reqwest(&e)))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }
}

/// Why fetching an issuer's document failed: a class for status and
/// metrics, and a detail for the operator's log (the URL and the cause;
/// never a secret, since URLs with credentials are refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchError {
    pub class: IssuerErrorClass,
    pub detail: String,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

fn classify_reqwest(e: &reqwest::Error) -> IssuerErrorClass {
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if inner.is::<ResolverRefused>() {
            return IssuerErrorClass::EgressRefused;
        }
        source = inner.source();
    }
    if e.is_timeout() {
        IssuerErrorClass::Timeout
    } else {
        IssuerErrorClass::Connect
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    // The error chain names the refused address when our resolver refused
    // it; the URL is already in the message's context.
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

pub(crate) fn check_url(policy: EgressPolicy, url: &Url) -> Result<(), IdentityError> {
    let refuse = |reason: &'static str| IdentityError::Egress {
        url: url.to_string(),
        reason,
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("credentials in URLs are not allowed"));
    }
    let host = url.host().ok_or_else(|| refuse("no host"))?;
    let loopback_host = match &host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback_host && policy.allow_loopback => {}
        "http" => return Err(refuse("plain http is allowed only to loopback")),
        _ => return Err(refuse("scheme must be https")),
    }
    let literal = match host {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    };
    if let Some(ip) = literal {
        let class = classify(ip);
        if !policy.allows(class) {
            return Err(refuse(class.reason()));
        }
    }
    Ok(())
}

/// Our resolver refused every address of a name (told apart from DNS
/// failures in [`FetchError`]'s class).
#[derive(Debug)]
struct ResolverRefused(String);

impl std::fmt::Display for ResolverRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ResolverRefused {}

/// reqwest's resolver for guarded clients: resolves with the system
/// resolver, keeps only allowed addresses, fails when none is left.
struct GuardedResolver {
    policy: EgressPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let mut refused: Option<AddressClass> = None;
            let allowed: Vec<SocketAddr> = resolved
                .filter(|addr| {
                    let class = classify(addr.ip());
                    let ok = policy.allows(class);
                    if !ok {
                        refused = Some(class);
                    }
                    ok
                })
                .collect();
            if allowed.is_empty() {
                let reason = refused.map_or("no address", AddressClass::reason);
                return Err(ResolverRefused(format!(
                    "egress refused: {host} resolves to a {reason}"
                ))
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: EgressPolicy, url: &str) -> bool {
        let url = Url::parse(url).expect("test URL parses");
        check_url(policy, &url).is_err()
    }

    #[test]
    fn encoded_and_private_literals_are_refused() {
        let strict = EgressPolicy::strict();
        for url in [
            "https://127.0.0.1/jwks",
            "https://0x7f.1/jwks",
            "https://2130706433/jwks",
            "https://[::ffff:127.0.0.1]/jwks",
            "https://169.254.169.254/latest",
            "https://[fe80::1]/",
            "https://10.0.0.1/",
            "https://192.168.1.1/",
            "https://172.16.0.1/",
            "https://100.64.0.1/",
            "https://[fd00::1]/",
            "https://0.0.0.0/",
            "https://[::]/",
            "https://[64:ff9b::7f00:1]/",
            "https://[2002:7f00:1::]/",
            "https://224.0.0.1/",
            "https://user:pw@idp.example.com/",
            "http://idp.example.com/",
            "ftp://idp.example.com/",
        ] {
            assert!(refused(strict, url), "{url} should be refused");
        }
        assert!(!refused(strict, "https://idp.example.com/jwks"));
        assert!(!refused(strict, "https://8.8.8.8/"));
    }

    #[test]
    fn loopback_and_private_need_permission_link_local_never() {
        let loopback = EgressPolicy::strict().with_loopback(true);
        assert!(!refused(loopback, "http://127.0.0.1:8080/jwks"));
        assert!(!refused(loopback, "http://localhost:8080/jwks"));
        assert!(refused(loopback, "https://10.0.0.1/"));
        let private = EgressPolicy::strict().for_issuer(true);
        assert!(!refused(private, "https://10.0.0.1/"));
        assert!(!refused(private, "https://[fd00::1]/"));
        assert!(refused(private, "https://169.254.169.254/"));
        assert!(refused(private, "https://[fe80::1]/"));
        assert!(
            refused(private, "http://10.0.0.1/"),
            "http only to loopback"
        );
    }
}
