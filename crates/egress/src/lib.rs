//! The egress guard (threat T10): one set of rules for every outbound
//! connection Warden makes or proxies — issuers' discovery and JWKS
//! fetches, HTTP upstreams, and the egress proxy of sandboxed servers.
//!
//! - An address is classified ([`classify`]): loopback, private (RFC 1918,
//!   CGNAT `100.64.0.0/10`, unique-local `fc00::/7`), link-local (cloud
//!   metadata `169.254.169.254`, `fe80::/10`), reserved, or public.
//!   IPv4-mapped, NAT64 and 6to4 IPv6 addresses are classified by the IPv4
//!   address they carry.
//! - A host is read the way URL parsers read it ([`parse_host`]): `0x7f.1`,
//!   `2130706433` and `017700000001` are all `127.0.0.1`.
//! - Names are resolved once ([`resolve`], [`GuardedResolver`]); every
//!   address is checked and only the allowed ones are returned, and the
//!   connection goes to those (no second resolution: DNS rebinding cannot
//!   slip in between check and connect). Each redirect target is a new
//!   resolution, so it is checked again.
//! - Link-local and reserved addresses are never allowed, whatever the
//!   policy: no service Warden talks to lives there, and they are the
//!   classic SSRF target.

#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Host;

/// Which kinds of addresses an outbound connection may reach. The default
/// is strict: public addresses only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allow_loopback: bool,
    allow_private: bool,
}

impl EgressPolicy {
    /// Everything but link-local and reserved addresses: for destinations
    /// the operator named (HTTP upstreams).
    pub const UPSTREAM: EgressPolicy = EgressPolicy {
        allow_loopback: true,
        allow_private: true,
    };

    /// Public addresses only.
    #[must_use]
    pub fn strict() -> Self {
        EgressPolicy::default()
    }

    /// Also allow loopback (`127.0.0.0/8`, `::1`).
    #[must_use]
    pub fn with_loopback(mut self, allow: bool) -> Self {
        self.allow_loopback = allow;
        self
    }

    /// Also allow private ranges (RFC 1918, CGNAT, unique-local IPv6).
    #[must_use]
    pub fn with_private_networks(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    /// This policy, widened to loopback and private ranges when `allow`
    /// (an operator's `allow_private_network: true`).
    #[must_use]
    pub fn widened(self, allow: bool) -> Self {
        EgressPolicy {
            allow_loopback: self.allow_loopback || allow,
            allow_private: self.allow_private || allow,
        }
    }

    pub fn allows_loopback(&self) -> bool {
        self.allow_loopback
    }

    /// Whether an address of this class may be reached.
    pub fn allows(self, class: AddressClass) -> bool {
        match class {
            AddressClass::Public => true,
            AddressClass::Private => self.allow_private,
            AddressClass::Loopback => self.allow_loopback,
            AddressClass::LinkLocal | AddressClass::Reserved => false,
        }
    }

    /// Checks one address.
    pub fn check(self, ip: IpAddr) -> Result<(), Refused> {
        let class = classify(ip);
        if self.allows(class) {
            Ok(())
        } else {
            Err(Refused {
                target: ip.to_string(),
                class,
            })
        }
    }
}

/// What kind of network an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Private,
    Loopback,
    LinkLocal,
    /// Unspecified, multicast, broadcast, documentation, benchmarking and
    /// reserved ranges: never a server.
    Reserved,
}

impl AddressClass {
    /// Why an address of this class was refused.
    pub fn reason(self) -> &'static str {
        match self {
            AddressClass::Public => "public address",
            AddressClass::Private => "private network address not allowed",
            AddressClass::Loopback => "loopback address not allowed",
            AddressClass::LinkLocal => "link-local address (never allowed)",
            AddressClass::Reserved => "reserved address (never allowed)",
        }
    }
}

/// An address (or every address of a name) the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The host as asked for.
    pub target: String,
    pub class: AddressClass,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "egress refused: {} is a {}",
            self.target,
            self.class.reason()
        )
    }
}

impl std::error::Error for Refused {}

/// Classifies an address.
pub fn classify(ip: IpAddr) -> AddressClass {
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
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        classify_v4(Ipv4Addr::new(a, b, c, d))
    };
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
        embedded(seg[6], seg[7])
    } else if seg[0] == 0x2002 {
        // 6to4: likewise.
        embedded(seg[1], seg[2])
    } else if (seg[0] == 0x2001 && seg[1] == 0x0db8) || seg[0] == 0 {
        // Documentation; ::/96 compatible addresses and the rest of ::/8.
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// Reads a host the way the URL standard does: IPv4 in every encoding
/// (`0x7f.1`, `2130706433`, `017700000001`), IPv6 in brackets, names
/// lower-cased (and IDNA-mapped). `None` for what is not a host.
pub fn parse_host(text: &str) -> Option<Host<String>> {
    Host::parse(text).ok()
}

/// The literal address of a host, if it is one.
pub fn host_ip(host: &Host<String>) -> Option<IpAddr> {
    match host {
        Host::Ipv4(ip) => Some(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(*ip)),
        Host::Domain(_) => None,
    }
}

/// Resolves `host` once and keeps the addresses the policy allows; fails
/// when none is left. Connect to what this returns, never to the name.
pub async fn resolve(
    policy: EgressPolicy,
    host: &Host<String>,
    port: u16,
) -> Result<Vec<SocketAddr>, ResolveError> {
    if let Some(ip) = host_ip(host) {
        policy.check(ip).map_err(ResolveError::Refused)?;
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.to_string();
    let resolved = tokio::net::lookup_host((name.as_str(), port))
        .await
        .map_err(|e| ResolveError::Dns(e.to_string()))?;
    keep_allowed(policy, &name, resolved).map_err(ResolveError::Refused)
}

fn keep_allowed(
    policy: EgressPolicy,
    name: &str,
    addrs: impl Iterator<Item = SocketAddr>,
) -> Result<Vec<SocketAddr>, Refused> {
    let mut refused = None;
    let allowed: Vec<SocketAddr> = addrs
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
        return Err(Refused {
            target: name.to_owned(),
            class: refused.unwrap_or(AddressClass::Reserved),
        });
    }
    Ok(allowed)
}

/// Why [`resolve`] gave no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// Every address is refused by the policy.
    Refused(Refused),
    /// The name did not resolve.
    Dns(String),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::Refused(r) => r.fmt(f),
            ResolveError::Dns(e) => write!(f, "cannot resolve: {e}"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// reqwest's resolver for guarded clients: resolves with the system
/// resolver, keeps only allowed addresses, fails (with [`Refused`] in the
/// error chain) when none is left. reqwest connects to exactly what this
/// returns, and resolves each redirect's host through it again. IP
/// literals never reach a resolver: check them with [`EgressPolicy::check`]
/// before the request.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    policy: EgressPolicy,
}

impl GuardedResolver {
    pub fn new(policy: EgressPolicy) -> Self {
        GuardedResolver { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed = keep_allowed(policy, &host, resolved)?;
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: EgressPolicy, host: &str) -> bool {
        let h = parse_host(host).expect("parses");
        host_ip(&h).is_some_and(|ip| policy.check(ip).is_err())
    }

    #[test]
    fn every_encoding_of_a_denied_address_is_refused() {
        let strict = EgressPolicy::strict();
        for host in [
            "127.0.0.1",
            "0x7f.1",
            "0x7f000001",
            "2130706433",
            "017700000001",
            "0177.0.0.1",
            "127.1",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:7f00:1]",
            "169.254.169.254",
            "0xa9.0xfe.0xa9.0xfe",
            "2852039166",
            "[fe80::1]",
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "100.64.0.1",
            "[fd00::1]",
            "0.0.0.0",
            "0",
            "[::]",
            "[64:ff9b::7f00:1]",
            "[2002:7f00:1::]",
            "224.0.0.1",
        ] {
            assert!(refused(strict, host), "{host} should be refused");
        }
        assert!(!refused(strict, "8.8.8.8"));
        assert!(!refused(strict, "[2606:4700::1111]"));
    }

    #[test]
    fn loopback_and_private_need_permission_link_local_never() {
        let wide = EgressPolicy::strict().widened(true);
        assert!(!refused(wide, "127.0.0.1"));
        assert!(!refused(wide, "0x7f.1"));
        assert!(!refused(wide, "10.0.0.1"));
        assert!(!refused(wide, "[fd00::1]"));
        assert!(refused(wide, "169.254.169.254"));
        assert!(refused(wide, "[fe80::1]"));
        assert!(refused(wide, "[::ffff:169.254.169.254]"));
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_denied_address_is_refused() {
        let host = parse_host("localhost").expect("parses");
        let err = resolve(EgressPolicy::strict(), &host, 80)
            .await
            .expect_err("refused");
        assert!(
            matches!(err, ResolveError::Refused(ref r) if r.class == AddressClass::Loopback),
            "{err}"
        );
        let ok = resolve(EgressPolicy::strict().with_loopback(true), &host, 80)
            .await
            .expect("allowed");
        assert!(ok.iter().all(|a| a.ip().is_loopback()));
    }
}
