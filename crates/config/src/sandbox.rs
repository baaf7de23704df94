//! `sandbox:` — how a stdio server is confined (the sandbox crate's input,
//! translated by the gateway), at the top level as the default of every
//! stdio server and per server, field by field over that default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{FieldPath, Problems};
use crate::units::{parse_count, parse_duration, parse_size};

/// A stdio server's sandbox, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    pub profile: SandboxProfile,
    /// Extra paths mounted read-only.
    pub read: Vec<PathBuf>,
    /// Paths mounted writable (created when missing: a directory if written
    /// with a trailing `/`, else an empty file).
    pub write: Vec<PathBuf>,
    /// `network` profile: the `host:port` pairs the egress proxy lets it reach.
    pub egress: Vec<EgressTarget>,
    /// Let the listed egress hosts be loopback or private addresses
    /// (link-local and cloud metadata never). Default false.
    pub allow_private_network: bool,
    pub limits: SandboxLimits,
    /// Size of the private `/tmp` and `HOME` (each). Default 64 MiB.
    pub tmp_size: u64,
    /// Without user namespaces: `refuse` to start (default) or `landlock`.
    pub fallback_landlock: bool,
    /// Warden's own files (configuration directory, data directory, keys,
    /// audit trail, lock file): never mounted into a sandbox.
    pub protected: Vec<PathBuf>,
    /// `roots:`: the directories a client declares as roots, where they lie
    /// under `allow`, are mounted into the server's sandbox (and are the
    /// only roots the server is told of). `None`: no client root is
    /// mounted; the client's answer reaches the server as it is (the
    /// sandbox still shows it only what else is mounted).
    pub roots: Option<SandboxRoots>,
}

/// `sandbox.roots`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRoots {
    /// `mount: write`: writable; `read` (the default): read-only.
    pub writable: bool,
    /// The directories under which a client's roots may be mounted
    /// (absolute, lexically clean; at least one).
    pub allow: Vec<PathBuf>,
}

/// `sandbox.profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxProfile {
    /// Namespaces, no network (the default for stdio servers).
    Strict,
    /// As strict, plus the egress proxy and its allowlist.
    Network,
    /// No sandbox: the process runs as Warden's user, with Warden's view
    /// of the filesystem and network.
    None,
}

/// One allowed egress destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressTarget {
    /// A host name (lower-cased) or an IP literal (without brackets).
    pub host: String,
    pub port: u16,
}

/// `sandbox.limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxLimits {
    /// CPU time over the process's life. Default 10m.
    pub cpu: Duration,
    /// Private writable memory. Default 4 GiB.
    pub memory: u64,
    /// Processes and threads. Default 256.
    pub processes: u64,
    /// Open files. Default 1024.
    pub open_files: u64,
    /// Largest file written. Default 1 GiB.
    pub file_size: u64,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            cpu: Duration::from_secs(600),
            memory: 4 << 30,
            processes: 256,
            open_files: 1024,
            file_size: 1 << 30,
        }
    }
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSandbox {
    pub profile: Option<String>,
    pub read: Option<Vec<String>>,
    pub write: Option<Vec<String>>,
    pub egress: Option<Vec<String>>,
    pub allow_private_network: Option<bool>,
    pub limits: Option<RawSandboxLimits>,
    pub tmp_size: Option<String>,
    pub fallback: Option<String>,
    pub roots: Option<RawSandboxRoots>,
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSandboxRoots {
    pub mount: Option<String>,
    pub allow: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSandboxLimits {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub processes: Option<String>,
    pub open_files: Option<String>,
    pub file_size: Option<String>,
}

/// The sandbox of one stdio server: its own `sandbox:` over the top-level
/// one. `None` for profile `none`.
pub(crate) fn resolve(
    own: Option<&RawSandbox>,
    default: Option<&RawSandbox>,
    base_dir: &Path,
    path: &FieldPath,
    problems: &mut Problems,
) -> Option<Sandbox> {
    let empty = RawSandbox::default();
    let own_raw = own.unwrap_or(&empty);
    let dflt = default.unwrap_or(&empty);
    // Errors point at the server's own key when it set one, else at the
    // top-level section.
    let at = |field: &str, own_set: bool| {
        if own_set {
            path.field(field)
        } else {
            FieldPath::root().field("sandbox").field(field)
        }
    };
    let pick = |o: &Option<String>, d: &Option<String>| o.clone().or_else(|| d.clone());

    let profile_text = pick(&own_raw.profile, &dflt.profile);
    let profile = match profile_text.as_deref().map(str::trim) {
        None | Some("strict") => SandboxProfile::Strict,
        Some("network") => SandboxProfile::Network,
        Some("none") => SandboxProfile::None,
        Some(other) => {
            problems.push(
                &at("profile", own_raw.profile.is_some()),
                format!("unknown profile {other:?} (expected strict, network or none)"),
            );
            SandboxProfile::Strict
        }
    };

    let paths =
        |list: Option<&Vec<String>>, field: &str, own_set: bool, problems: &mut Problems| {
            let mut out = Vec::new();
            for (i, p) in list.into_iter().flatten().enumerate() {
                if p.is_empty() || p.contains('\0') {
                    problems.push(
                        &at(field, own_set).index(i),
                        "must be a non-empty path without NUL characters",
                    );
                    continue;
                }
                let mut joined = crate::resolve::join_clean(base_dir, Path::new(p));
                if p.ends_with('/') {
                    // Keep the trailing slash: it asks for a directory.
                    joined.push("");
                }
                out.push(joined);
            }
            out
        };
    let read = paths(
        own_raw.read.as_ref().or(dflt.read.as_ref()),
        "read",
        own_raw.read.is_some(),
        problems,
    );
    let write = paths(
        own_raw.write.as_ref().or(dflt.write.as_ref()),
        "write",
        own_raw.write.is_some(),
        problems,
    );

    let mut egress = Vec::new();
    let egress_set = own_raw.egress.is_some();
    for (i, text) in own_raw
        .egress
        .as_ref()
        .or(dflt.egress.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        match parse_target(text) {
            Some(t) => egress.push(t),
            None => problems.push(
                &at("egress", egress_set).index(i),
                format!(
                    "{text:?} is not host:port (a host name or IP address, and a port 1-65535; \
                     IPv6 as [::1]:443)"
                ),
            ),
        }
    }
    if !egress.is_empty() && profile != SandboxProfile::Network {
        problems.push(
            &at("egress", egress_set),
            "egress is allowed only with profile: network",
        );
    }

    let fallback_set = own_raw.fallback.is_some();
    let fallback_landlock = match pick(&own_raw.fallback, &dflt.fallback)
        .as_deref()
        .map(str::trim)
    {
        None | Some("refuse") => false,
        Some("landlock") => true,
        Some(other) => {
            problems.push(
                &at("fallback", fallback_set),
                format!("unknown fallback {other:?} (expected refuse or landlock)"),
            );
            false
        }
    };

    let tmp_size = match pick(&own_raw.tmp_size, &dflt.tmp_size) {
        None => 64 << 20,
        Some(text) => match parse_size(&text) {
            Ok(n) if n >= 1 << 20 => n as u64,
            Ok(_) => {
                problems.push(
                    &at("tmp_size", own_raw.tmp_size.is_some()),
                    "must be at least 1MiB",
                );
                64 << 20
            }
            Err(e) => {
                problems.push(&at("tmp_size", own_raw.tmp_size.is_some()), e.to_string());
                64 << 20
            }
        },
    };

    let roots = resolve_roots(
        own_raw.roots.as_ref().or(dflt.roots.as_ref()),
        &at("roots", own_raw.roots.is_some()),
        base_dir,
        problems,
    );

    if roots.is_some() && profile == SandboxProfile::None {
        problems.push(
            &at("roots", own_raw.roots.is_some()),
            "roots are mounted into a sandbox: not with profile: none",
        );
    }

    let limits = resolve_limits(
        own_raw.limits.as_ref(),
        dflt.limits.as_ref(),
        path,
        problems,
    );

    (profile != SandboxProfile::None).then_some(Sandbox {
        profile,
        read,
        write,
        egress,
        allow_private_network: own_raw
            .allow_private_network
            .or(dflt.allow_private_network)
            .unwrap_or(false),
        limits,
        tmp_size,
        fallback_landlock,
        protected: Vec::new(),
        roots,
    })
}

fn resolve_roots(
    raw: Option<&RawSandboxRoots>,
    at: &FieldPath,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<SandboxRoots> {
    let raw = raw?;
    let writable = match raw.mount.as_deref().map(str::trim) {
        None | Some("read") => false,
        Some("write") => true,
        Some(other) => {
            problems.push(
                &at.field("mount"),
                format!("unknown mount {other:?} (expected read or write)"),
            );
            false
        }
    };
    let mut allow = Vec::new();
    for (i, p) in raw.allow.iter().flatten().enumerate() {
        if p.trim().is_empty() || p.contains('\0') {
            problems.push(
                &at.field("allow").index(i),
                "must be a non-empty path without NUL characters",
            );
            continue;
        }
        let joined = crate::resolve::join_clean(base_dir, Path::new(p.trim()));
        if joined.parent().is_none() {
            problems.push(
                &at.field("allow").index(i),
                "must not be / (name the directories clients may open)",
            );
            continue;
        }
        allow.push(joined);
    }
    if raw.allow.as_ref().is_none_or(Vec::is_empty) {
        problems.push(
            &at.field("allow"),
            "name at least one directory under which client roots may be mounted",
        );
    }
    Some(SandboxRoots { writable, allow })
}

fn resolve_limits(
    own: Option<&RawSandboxLimits>,
    dflt: Option<&RawSandboxLimits>,
    path: &FieldPath,
    problems: &mut Problems,
) -> SandboxLimits {
    let empty = RawSandboxLimits::default();
    let o = own.unwrap_or(&empty);
    let d = dflt.unwrap_or(&empty);
    let mut limits = SandboxLimits::default();
    let at = |field: &str, own_set: bool| {
        if own_set {
            path.field("limits").field(field)
        } else {
            FieldPath::root()
                .field("sandbox")
                .field("limits")
                .field(field)
        }
    };
    if let Some(text) = o.cpu.clone().or_else(|| d.cpu.clone()) {
        match parse_duration(&text) {
            Ok(v) if v >= Duration::from_secs(1) => limits.cpu = v,
            Ok(_) => problems.push(&at("cpu", o.cpu.is_some()), "must be at least 1s"),
            Err(e) => problems.push(&at("cpu", o.cpu.is_some()), e.to_string()),
        }
    }
    for (field, own_v, dflt_v, slot, min) in [
        (
            "memory",
            &o.memory,
            &d.memory,
            &mut limits.memory,
            16u64 << 20,
        ),
        (
            "file_size",
            &o.file_size,
            &d.file_size,
            &mut limits.file_size,
            1,
        ),
    ] {
        if let Some(text) = own_v.clone().or_else(|| dflt_v.clone()) {
            match parse_size(&text) {
                Ok(v) if v as u64 >= min => *slot = v as u64,
                Ok(_) => problems.push(
                    &at(field, own_v.is_some()),
                    format!("must be at least {min} bytes"),
                ),
                Err(e) => problems.push(&at(field, own_v.is_some()), e.to_string()),
            }
        }
    }
    for (field, own_v, dflt_v, slot, min) in [
        (
            "processes",
            &o.processes,
            &d.processes,
            &mut limits.processes,
            4u64,
        ),
        (
            "open_files",
            &o.open_files,
            &d.open_files,
            &mut limits.open_files,
            16,
        ),
    ] {
        if let Some(text) = own_v.clone().or_else(|| dflt_v.clone()) {
            match parse_count(&text) {
                Ok(v) if v as u64 >= min => *slot = v as u64,
                Ok(_) => problems.push(
                    &at(field, own_v.is_some()),
                    format!("must be at least {min}"),
                ),
                Err(e) => problems.push(&at(field, own_v.is_some()), e.to_string()),
            }
        }
    }
    limits
}

/// `host:port`, `[v6]:port`.
fn parse_target(text: &str) -> Option<EgressTarget> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        (h.to_owned(), p)
    } else {
        let (h, p) = text.rsplit_once(':')?;
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return None;
        }
        (h.to_ascii_lowercase(), p)
    };
    let port: u16 = port.parse().ok().filter(|&p| p > 0)?;
    Some(EgressTarget { host, port })
}

/// The paths of Warden's own state a sandbox must never see.
pub(crate) fn protected_paths(
    base_dir: &Path,
    identity: Option<&warden_identity::IdentitySettings>,
    audit: &warden_audit::AuditSettings,
    lock: &Path,
) -> Vec<PathBuf> {
    let mut out = vec![base_dir.to_path_buf(), lock.to_path_buf()];
    if let Some(id) = identity {
        out.push(id.data_dir().to_path_buf());
        out.extend(id.api_key_store_path());
    }
    out.push(audit.journal_dir.clone());
    out.push(audit.checkpoint.signing_key.clone());
    if let Some(j) = &audit.jsonl {
        out.push(j.path.clone());
    }
    if let Some(s) = &audit.sqlite {
        out.push(s.path.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("API.example.com:443"),
            Some(EgressTarget {
                host: "api.example.com".into(),
                port: 443
            })
        );
        assert_eq!(
            parse_target("[::1]:8080").map(|t| t.host),
            Some("::1".into())
        );
        assert!(parse_target("example.com").is_none());
        assert!(parse_target("example.com:0").is_none());
        assert!(parse_target("a/b:1").is_none());
    }
}
