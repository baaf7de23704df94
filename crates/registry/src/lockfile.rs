//! `warden.lock`: every approved manifest and server identity, in TOML.
//!
//! ```toml
//! # warden.lock — …
//! version = 1
//!
//! [[server]]
//! name = "fetch"
//! transport = "stdio"
//! command = "uvx"
//! args = ["mcp-server-fetch==2026.10.24"]
//! executable_sha256 = "sha256:…"
//! package = { runner = "uvx", name = "mcp-server-fetch", version = "2026.10.24" }
//! approved_by = "alice"
//! approved_at = "2026-05-01T12:00:00Z"
//!
//! [[item]]
//! server = "fetch"
//! kind = "tool"
//! name = "fetch"
//! hash = "sha256:…"
//! approved_by = "alice"
//! approved_at = "2026-05-01T12:00:00Z"
//! forced_reason = "…"            # only when approved over a scanner block
//! findings = ["…"]               # scanner rules that fired at approval
//! manifest = '''
//! {
//!   "description": "…",
//!   …
//! }'''
//! ```
//!
//! One `[[server]]` per server, one `[[item]]` per item, sorted by server,
//! kind and name, so that a change is a small, reviewable diff. The
//! `manifest` is the canonical JSON re-indented one member per line; its
//! canonical form is what `hash` covers, and [`LockFile::load`] refuses an
//! entry whose manifest does not hash to its `hash` (a hand edit or a
//! tampered file).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::canonical::{canonical_json_str, pretty_canonical, ManifestHash};
use crate::error::RegistryError;
use crate::identity::{PackagePin, ServerIdentity};
use crate::manifest::{ItemKind, Manifest};
use crate::scanner::{ScanContext, ScanFinding, Scanner, Verdict};

/// The lock file format version this crate reads and writes.
pub const LOCK_VERSION: u32 = 1;

/// One approved item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedItem {
    pub server: String,
    pub kind: ItemKind,
    pub name: String,
    pub hash: ManifestHash,
    /// Canonical JSON of the approved manifest.
    pub json: String,
    pub approved_by: String,
    /// RFC 3339, UTC, seconds.
    pub approved_at: String,
    /// Why it was approved although the scanner blocked it.
    pub forced_reason: Option<String>,
    /// Scanner rules that fired when it was approved.
    pub findings: Vec<String>,
}

/// One approved server identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedServer {
    pub identity: ServerIdentity,
    pub approved_by: String,
    pub approved_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ServerEntry {
    pin: Option<PinnedServer>,
    items: BTreeMap<ItemKind, BTreeMap<String, PinnedItem>>,
}

/// The parsed, verified lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockFile {
    servers: BTreeMap<String, ServerEntry>,
}

/// What [`LockFile::approve`] did.
#[derive(Debug, Clone)]
pub struct Approval {
    /// The hash this item was pinned at before, if it was.
    pub previous: Option<ManifestHash>,
    pub verdict: Verdict,
    pub findings: Vec<ScanFinding>,
}

impl LockFile {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and verifies a lock file. A missing file is an error: callers
    /// that accept "no lock yet" check for existence first.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RegistryError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses lock file text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, RegistryError> {
        let raw: RawLock = toml::from_str(text).map_err(|e| RegistryError::LockSyntax {
            path: origin.to_owned(),
            message: e.message().to_owned(),
        })?;
        raw.resolve(origin)
    }

    /// The lock file text (deterministic: equal lock files give equal text).
    pub fn to_toml(&self) -> Result<String, RegistryError> {
        let raw = RawLock::from(self);
        let body = toml::to_string_pretty(&raw).map_err(|e| RegistryError::LockSyntax {
            path: PathBuf::from("warden.lock"),
            message: e.to_string(),
        })?;
        Ok(format!("{HEADER}{body}"))
    }

    /// Writes atomically: a temporary file in the same directory, flushed
    /// to disk, then renamed over `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), RegistryError> {
        let path = path.as_ref();
        let io = |source| RegistryError::Io {
            path: path.to_owned(),
            source,
        };
        let text = self.to_toml()?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".warden.lock.")
            .tempfile_in(dir)
            .map_err(io)?;
        tmp.write_all(text.as_bytes()).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        if let Ok(d) = std::fs::File::open(dir) {
            // Make the rename itself durable; not all platforms allow it.
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Pins a manifest as approved by `approver` now, replacing any earlier
    /// pin of the same item (returned). `reason` records why it was forced.
    pub fn pin(
        &mut self,
        m: &Manifest,
        approver: &str,
        reason: Option<&str>,
    ) -> Option<PinnedItem> {
        self.pin_at(m, approver, reason, &[], SystemTime::now())
    }

    /// [`LockFile::pin`] with the scanner rules that fired and an explicit time.
    pub fn pin_at(
        &mut self,
        m: &Manifest,
        approver: &str,
        reason: Option<&str>,
        findings: &[&str],
        at: SystemTime,
    ) -> Option<PinnedItem> {
        let mut rules: Vec<String> = findings.iter().map(|s| (*s).to_owned()).collect();
        rules.sort();
        rules.dedup();
        let item = PinnedItem {
            server: m.server.clone(),
            kind: m.kind,
            name: m.name.clone(),
            hash: m.hash,
            json: m.json.clone(),
            approved_by: approver.to_owned(),
            approved_at: timestamp(at),
            forced_reason: reason.map(str::to_owned),
            findings: rules,
        };
        self.servers
            .entry(m.server.clone())
            .or_default()
            .items
            .entry(m.kind)
            .or_default()
            .insert(m.name.clone(), item)
    }

    /// Scans and pins: what `warden registry pin` and `approve` do per item.
    /// A manifest the scanner blocks is refused unless `force_reason` is
    /// given, and then pinned with that reason and its findings recorded.
    pub fn approve(
        &mut self,
        scanner: &Scanner,
        m: &Manifest,
        approver: &str,
        force_reason: Option<&str>,
    ) -> Result<Approval, RegistryError> {
        self.approve_in(scanner, m, &ScanContext::new(), approver, force_reason)
    }

    /// [`LockFile::approve`] with more context (the operator's
    /// classifier's verdict on the item).
    pub fn approve_in(
        &mut self,
        scanner: &Scanner,
        m: &Manifest,
        ctx: &ScanContext,
        approver: &str,
        force_reason: Option<&str>,
    ) -> Result<Approval, RegistryError> {
        let (verdict, findings) = scanner.scan_item(m, ctx)?;
        if verdict == Verdict::Block && force_reason.is_none() {
            return Err(RegistryError::ScanBlocked {
                item: m.key(),
                findings,
            });
        }
        let rules: Vec<&str> = findings.iter().map(|f| f.rule).collect();
        let reason = if verdict == Verdict::Block {
            force_reason
        } else {
            None
        };
        let previous = self
            .pin_at(m, approver, reason, &rules, SystemTime::now())
            .map(|p| p.hash);
        Ok(Approval {
            previous,
            verdict,
            findings,
        })
    }

    /// Pins a server's identity, replacing an earlier one (returned).
    pub fn pin_server(
        &mut self,
        server: &str,
        identity: ServerIdentity,
        approver: &str,
    ) -> Option<PinnedServer> {
        self.pin_server_at(server, identity, approver, SystemTime::now())
    }

    pub fn pin_server_at(
        &mut self,
        server: &str,
        identity: ServerIdentity,
        approver: &str,
        at: SystemTime,
    ) -> Option<PinnedServer> {
        self.servers
            .entry(server.to_owned())
            .or_default()
            .pin
            .replace(PinnedServer {
                identity,
                approved_by: approver.to_owned(),
                approved_at: timestamp(at),
            })
    }

    pub fn get(&self, server: &str, kind: ItemKind, name: &str) -> Option<&PinnedItem> {
        self.servers.get(server)?.items.get(&kind)?.get(name)
    }

    pub fn server_identity(&self, server: &str) -> Option<&ServerIdentity> {
        self.server_pin(server).map(|p| &p.identity)
    }

    pub fn server_pin(&self, server: &str) -> Option<&PinnedServer> {
        self.servers.get(server)?.pin.as_ref()
    }

    /// Whether the lock file knows this server at all (an identity or any item).
    pub fn knows_server(&self, server: &str) -> bool {
        self.servers.contains_key(server)
    }

    /// Removes one item's pin.
    pub fn unpin(&mut self, server: &str, kind: ItemKind, name: &str) -> Option<PinnedItem> {
        let entry = self.servers.get_mut(server)?;
        let removed = entry.items.get_mut(&kind)?.remove(name);
        if entry.items.get(&kind).is_some_and(BTreeMap::is_empty) {
            entry.items.remove(&kind);
        }
        removed
    }

    /// Removes a server and all its items.
    pub fn remove_server(&mut self, server: &str) -> bool {
        self.servers.remove(server).is_some()
    }

    /// Every pinned item, sorted by server, kind, name.
    pub fn items(&self) -> impl Iterator<Item = &PinnedItem> {
        self.servers
            .values()
            .flat_map(|s| s.items.values().flat_map(BTreeMap::values))
    }

    /// The pinned items of one server.
    pub fn items_of<'a>(&'a self, server: &str) -> impl Iterator<Item = &'a PinnedItem> + 'a {
        self.servers
            .get(server)
            .into_iter()
            .flat_map(|s| s.items.values().flat_map(BTreeMap::values))
    }

    /// Server names with their identity pins, sorted.
    pub fn servers(&self) -> impl Iterator<Item = (&str, Option<&PinnedServer>)> {
        self.servers
            .iter()
            .map(|(k, v)| (k.as_str(), v.pin.as_ref()))
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }
}

/// RFC 3339 UTC with seconds.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

const HEADER: &str = "\
# warden.lock: approved MCP manifests and server identities.
# Written by `warden registry`; review changes to it like code.
# Each manifest is canonical JSON (RFC 8785) re-indented; `hash` is the
# SHA-256 of its canonical form and is verified on load.

";

// ---- the file shape (parse, then resolve) ----

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    version: u32,
    #[serde(default, rename = "server", skip_serializing_if = "Vec::is_empty")]
    servers: Vec<RawServer>,
    #[serde(default, rename = "item", skip_serializing_if = "Vec::is_empty")]
    items: Vec<RawItem>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: String,
    transport: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    executable_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    package: Option<RawPackage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spki_sha256: Option<String>,
    approved_by: String,
    approved_at: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    runner: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    server: String,
    kind: String,
    name: String,
    hash: String,
    approved_by: String,
    approved_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forced_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    findings: Vec<String>,
    manifest: String,
}

impl From<&LockFile> for RawLock {
    fn from(lock: &LockFile) -> Self {
        let servers = lock
            .servers
            .iter()
            .filter_map(|(name, e)| e.pin.as_ref().map(|p| RawServer::new(name, p)))
            .collect();
        let items = lock
            .items()
            .map(|p| RawItem {
                server: p.server.clone(),
                kind: p.kind.as_str().to_owned(),
                name: p.name.clone(),
                hash: p.hash.to_string(),
                approved_by: p.approved_by.clone(),
                approved_at: p.approved_at.clone(),
                forced_reason: p.forced_reason.clone(),
                findings: p.findings.clone(),
                manifest: pretty_canonical(&p.json),
            })
            .collect();
        RawLock {
            version: LOCK_VERSION,
            servers,
            items,
        }
    }
}

impl RawServer {
    fn new(name: &str, p: &PinnedServer) -> Self {
        let mut raw = RawServer {
            name: name.to_owned(),
            transport: p.identity.transport().to_owned(),
            command: None,
            args: None,
            executable_sha256: None,
            package: None,
            url: None,
            spki_sha256: None,
            approved_by: p.approved_by.clone(),
            approved_at: p.approved_at.clone(),
        };
        match &p.identity {
            ServerIdentity::Stdio {
                command,
                args,
                executable_sha256,
                package,
            } => {
                raw.command = Some(command.clone());
                raw.args = Some(args.clone());
                raw.executable_sha256 = executable_sha256.map(|h| h.to_string());
                raw.package = package.as_ref().map(|p| RawPackage {
                    runner: p.runner.clone(),
                    name: p.package.clone(),
                    version: p.version.clone(),
                });
            }
            ServerIdentity::Http { url, spki_sha256 } => {
                raw.url = Some(url.clone());
                raw.spki_sha256 = spki_sha256.clone();
            }
        }
        raw
    }

    fn resolve(self, origin: &Path) -> Result<(String, PinnedServer), RegistryError> {
        let entry = format!("server {:?}", self.name);
        let bad = |problem: &str| RegistryError::LockEntry {
            path: origin.to_owned(),
            entry: entry.clone(),
            problem: problem.to_owned(),
        };
        let identity = match self.transport.as_str() {
            "stdio" => {
                if self.url.is_some() || self.spki_sha256.is_some() {
                    return Err(bad("a stdio server has no url or spki_sha256"));
                }
                ServerIdentity::Stdio {
                    command: self
                        .command
                        .ok_or_else(|| bad("stdio server without command"))?,
                    args: self.args.unwrap_or_default(),
                    executable_sha256: self
                        .executable_sha256
                        .map(|h| h.parse())
                        .transpose()
                        .map_err(|_| bad("executable_sha256 is not sha256:<64 hex digits>"))?,
                    package: self.package.map(|p| PackagePin {
                        runner: p.runner,
                        package: p.name,
                        version: p.version,
                    }),
                }
            }
            "http" => {
                if self.command.is_some() || self.args.is_some() || self.package.is_some() {
                    return Err(bad("an http server has no command, args or package"));
                }
                ServerIdentity::Http {
                    url: self.url.ok_or_else(|| bad("http server without url"))?,
                    spki_sha256: self.spki_sha256,
                }
            }
            _ => return Err(bad("transport must be \"stdio\" or \"http\"")),
        };
        Ok((
            self.name,
            PinnedServer {
                identity,
                approved_by: self.approved_by,
                approved_at: self.approved_at,
            },
        ))
    }
}

impl RawItem {
    fn resolve(self, origin: &Path) -> Result<PinnedItem, RegistryError> {
        let entry = format!("item {}/{}/{}", self.server, self.kind, self.name);
        let bad = |problem: String| RegistryError::LockEntry {
            path: origin.to_owned(),
            entry: entry.clone(),
            problem,
        };
        let kind: ItemKind = self
            .kind
            .parse()
            .map_err(|_| bad(format!("unknown kind {:?}", self.kind)))?;
        let hash: ManifestHash = self
            .hash
            .parse()
            .map_err(|_| bad("hash is not sha256:<64 hex digits>".to_owned()))?;
        let json = canonical_json_str(&self.manifest)
            .map_err(|e| bad(format!("manifest is not valid JSON: {e}")))?;
        let actual = ManifestHash::of(&json);
        if actual != hash {
            return Err(bad(format!(
                "manifest hashes to {actual}, not the recorded {hash} (edited by hand?)"
            )));
        }
        Ok(PinnedItem {
            server: self.server,
            kind,
            name: self.name,
            hash,
            json,
            approved_by: self.approved_by,
            approved_at: self.approved_at,
            forced_reason: self.forced_reason,
            findings: self.findings,
        })
    }
}

impl RawLock {
    fn resolve(self, origin: &Path) -> Result<LockFile, RegistryError> {
        if self.version != LOCK_VERSION {
            return Err(RegistryError::LockSyntax {
                path: origin.to_owned(),
                message: format!(
                    "version {} is not supported (this Warden reads version {LOCK_VERSION})",
                    self.version
                ),
            });
        }
        let mut lock = LockFile::new();
        for s in self.servers {
            let (name, pin) = s.resolve(origin)?;
            let entry = lock.servers.entry(name.clone()).or_default();
            if entry.pin.replace(pin).is_some() {
                return Err(RegistryError::LockEntry {
                    path: origin.to_owned(),
                    entry: format!("server {name:?}"),
                    problem: "listed twice".to_owned(),
                });
            }
        }
        for raw in self.items {
            let item = raw.resolve(origin)?;
            let key = format!("item {}/{}/{}", item.server, item.kind, item.name);
            let slot = lock
                .servers
                .entry(item.server.clone())
                .or_default()
                .items
                .entry(item.kind)
                .or_default();
            if slot.insert(item.name.clone(), item).is_some() {
                return Err(RegistryError::LockEntry {
                    path: origin.to_owned(),
                    entry: key,
                    problem: "listed twice".to_owned(),
                });
            }
        }
        Ok(lock)
    }
}

#[cfg(test)]
#[path = "lockfile_tests.rs"]
mod tests;
