//! `warden scan`: reads the MCP server lists of desktop clients' configs,
//! scans what those servers offer, and reports.
//!
//! This module parses configs and scans and renders results; it never
//! launches anything. Launching a stdio server is code execution: the CLI
//! asks for consent, starts it through the upstream crate (sandboxed where
//! available), fetches `tools/list`, `prompts/list`, `resources/list`,
//! `resources/templates/list` and the `initialize` instructions, turns them
//! into [`Manifest`]s ([`crate::manifests_of_list`],
//! [`crate::instructions_manifest`]) and hands them to [`scan_servers`].
//!
//! Formats read (comments and trailing commas allowed everywhere):
//!
//! | client | file | servers under |
//! |---|---|---|
//! | Claude Desktop | `claude_desktop_config.json` | `mcpServers` |
//! | Claude Code | `~/.claude.json`, project `.mcp.json` | `mcpServers`, `projects.<path>.mcpServers` |
//! | Cursor | `~/.cursor/mcp.json`, `.cursor/mcp.json` | `mcpServers` |
//! | VS Code | `.vscode/mcp.json`, user `mcp.json` / `settings.json` | `servers`, `mcp.servers` |
//! | Windsurf | `~/.codeium/windsurf/mcp_config.json` | `mcpServers` (`serverUrl` for remote) |

mod jsonc;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use report::{render_report, ItemReport, ScanReport, ScanSummary, ServerReport};

use crate::canonical::ManifestHash;
use crate::error::RegistryError;
use crate::identity::package_pin;
use crate::manifest::{ItemKind, Manifest};
use crate::scanner::{rules, External, ScanContext, ScanFinding, Scanner, Verdict};

/// Which client a config file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ClientKind {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    VsCode,
    Windsurf,
    /// Any other file with an `mcpServers` or `servers` map.
    Generic,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::ClaudeDesktop => "claude-desktop",
            ClientKind::ClaudeCode => "claude-code",
            ClientKind::Cursor => "cursor",
            ClientKind::VsCode => "vscode",
            ClientKind::Windsurf => "windsurf",
            ClientKind::Generic => "generic",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ClientKind::ClaudeDesktop => "Claude Desktop",
            ClientKind::ClaudeCode => "Claude Code",
            ClientKind::Cursor => "Cursor",
            ClientKind::VsCode => "VS Code",
            ClientKind::Windsurf => "Windsurf",
            ClientKind::Generic => "MCP config",
        }
    }
}

impl fmt::Display for ClientKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One server entry of a client config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedServer {
    pub client: ClientKind,
    /// The config file it came from.
    pub source: PathBuf,
    /// For project-scoped entries (Claude Code `projects`), the project path.
    pub scope: Option<String>,
    pub name: String,
    pub launch: ServerLaunch,
    /// Marked disabled in the config (Cursor, Windsurf, Claude Code).
    pub disabled: bool,
}

/// How the client starts or reaches the server. Env and header values may
/// hold secrets: reports print their names only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLaunch {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<String>,
    },
    Remote {
        url: String,
        /// `http`, `sse`, or what the config said.
        transport: Option<String>,
        headers: BTreeMap<String, String>,
    },
}

/// A parsed config: its servers, and entries that could not be understood.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    pub servers: Vec<ScannedServer>,
    pub warnings: Vec<String>,
}

/// Reads and parses one client config file.
pub fn read_client_config(path: &Path) -> Result<ClientConfig, RegistryError> {
    let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_client_config(path, &text)
}

/// Parses a client config; the path decides the client kind (and is
/// reported), the content decides where the servers are.
pub fn parse_client_config(path: &Path, text: &str) -> Result<ClientConfig, RegistryError> {
    let err = |message: String| RegistryError::ClientConfig {
        path: path.to_owned(),
        message,
    };
    let root: Value = serde_json::from_str(&jsonc::strip(text)).map_err(|e| {
        err(format!(
            "not JSON: line {}, column {}",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(root) = root else {
        return Err(err("the top level is not an object".into()));
    };
    let client = client_kind(path, &root);
    let mut config = ClientConfig::default();
    let mut found = false;
    let mut take =
        |map: Option<&Value>, scope: Option<&str>, at: &str, config: &mut ClientConfig| {
            if let Some(map) = map {
                found = true;
                read_servers(map, client, path, scope, at, config);
            }
        };
    take(root.get("mcpServers"), None, "mcpServers", &mut config);
    take(root.get("servers"), None, "servers", &mut config);
    take(
        root.get("mcp").and_then(|m| m.get("servers")),
        None,
        "mcp.servers",
        &mut config,
    );
    if let Some(Value::Object(projects)) = root.get("projects") {
        for (project, entry) in projects {
            take(
                entry.get("mcpServers"),
                Some(project),
                &format!("projects.{project}.mcpServers"),
                &mut config,
            );
        }
    }
    if !found {
        return Err(err(
            "no MCP servers: expected `mcpServers`, `servers`, `mcp.servers` or `projects.*.mcpServers`".into(),
        ));
    }
    // Stable order whatever the JSON map type: user scope first, then by name.
    config
        .servers
        .sort_by(|a, b| (&a.scope, &a.name).cmp(&(&b.scope, &b.name)));
    Ok(config)
}

fn client_kind(path: &Path, root: &Map<String, Value>) -> ClientKind {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let full = path.to_string_lossy().to_lowercase();
    match (name, parent) {
        ("claude_desktop_config.json", _) => ClientKind::ClaudeDesktop,
        (".claude.json" | ".mcp.json", _) => ClientKind::ClaudeCode,
        (_, ".cursor") => ClientKind::Cursor,
        (_, ".vscode") => ClientKind::VsCode,
        ("mcp_config.json", _) => ClientKind::Windsurf,
        _ if full.contains("windsurf") || full.contains(".codeium") => ClientKind::Windsurf,
        _ if full.contains("cursor") => ClientKind::Cursor,
        _ if full.contains("code/user")
            || root.contains_key("servers")
            || root.contains_key("mcp") =>
        {
            ClientKind::VsCode
        }
        _ if root.contains_key("projects") => ClientKind::ClaudeCode,
        _ => ClientKind::Generic,
    }
}

fn read_servers(
    map: &Value,
    client: ClientKind,
    path: &Path,
    scope: Option<&str>,
    at: &str,
    config: &mut ClientConfig,
) {
    let Value::Object(map) = map else {
        config.warnings.push(format!("{at}: not an object"));
        return;
    };
    for (name, entry) in map {
        match read_server(entry) {
            Ok((launch, disabled)) => config.servers.push(ScannedServer {
                client,
                source: path.to_owned(),
                scope: scope.map(str::to_owned),
                name: name.clone(),
                launch,
                disabled,
            }),
            Err(problem) => config.warnings.push(format!("{at}.{name}: {problem}")),
        }
    }
}

fn read_server(entry: &Value) -> Result<(ServerLaunch, bool), &'static str> {
    let Value::Object(e) = entry else {
        return Err("not an object");
    };
    let string = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_owned);
    let strings = |k: &str| -> BTreeMap<String, String> {
        e.get(k)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let disabled = e.get("disabled").and_then(Value::as_bool).unwrap_or(false)
        || e.get("enabled").and_then(Value::as_bool) == Some(false);
    let transport = string("type").or_else(|| string("transport"));
    let url = string("url")
        .or_else(|| string("serverUrl"))
        .or_else(|| string("httpUrl"));
    if let Some(command) = string("command") {
        let args = match e.get("args") {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or("args must be strings"))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("args must be an array"),
        };
        return Ok((
            ServerLaunch::Stdio {
                command,
                args,
                env: strings("env"),
                cwd: string("cwd"),
            },
            disabled,
        ));
    }
    if let Some(url) = url {
        return Ok((
            ServerLaunch::Remote {
                url,
                transport,
                headers: strings("headers"),
            },
            disabled,
        ));
    }
    Err("neither `command` nor `url`")
}

/// Where each client keeps its config, under a home directory and an
/// optional project directory (macOS, Linux and Windows locations). The
/// caller keeps those that exist.
pub fn known_config_paths(home: &Path, project: Option<&Path>) -> Vec<(ClientKind, PathBuf)> {
    let mut out = vec![
        (
            ClientKind::ClaudeDesktop,
            home.join("Library/Application Support/Claude/claude_desktop_config.json"),
        ),
        (
            ClientKind::ClaudeDesktop,
            home.join(".config/Claude/claude_desktop_config.json"),
        ),
        (
            ClientKind::ClaudeDesktop,
            home.join("AppData/Roaming/Claude/claude_desktop_config.json"),
        ),
        (ClientKind::ClaudeCode, home.join(".claude.json")),
        (ClientKind::Cursor, home.join(".cursor/mcp.json")),
        (
            ClientKind::VsCode,
            home.join("Library/Application Support/Code/User/mcp.json"),
        ),
        (
            ClientKind::VsCode,
            home.join("Library/Application Support/Code/User/settings.json"),
        ),
        (ClientKind::VsCode, home.join(".config/Code/User/mcp.json")),
        (
            ClientKind::VsCode,
            home.join(".config/Code/User/settings.json"),
        ),
        (
            ClientKind::VsCode,
            home.join("AppData/Roaming/Code/User/mcp.json"),
        ),
        (
            ClientKind::VsCode,
            home.join("AppData/Roaming/Code/User/settings.json"),
        ),
        (
            ClientKind::Windsurf,
            home.join(".codeium/windsurf/mcp_config.json"),
        ),
    ];
    if let Some(p) = project {
        out.push((ClientKind::ClaudeCode, p.join(".mcp.json")));
        out.push((ClientKind::Cursor, p.join(".cursor/mcp.json")));
        out.push((ClientKind::VsCode, p.join(".vscode/mcp.json")));
    }
    out
}

/// What the CLI fetched from one server.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// Its tools, prompts, resources, templates and instructions as manifests.
    Items(Vec<Manifest>),
    /// Not started (no consent, disabled, `--no-launch`).
    NotLaunched(String),
    /// Start or listing failed.
    Failed(String),
}

/// One scanned item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemScan {
    pub kind: ItemKind,
    pub name: String,
    pub hash: ManifestHash,
    pub verdict: Verdict,
    /// Why the verdict ([`Scanner::why`]); empty for `ok`.
    pub why: String,
    pub findings: Vec<ScanFinding>,
}

/// What happened to one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOutcome {
    Scanned(Vec<ItemScan>),
    NotLaunched(String),
    Failed(String),
}

/// The scan of one configured server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerScan {
    pub server: ScannedServer,
    /// Findings about the config entry itself (unpinned package, plain http).
    pub config_findings: Vec<ScanFinding>,
    pub config_verdict: Verdict,
    pub outcome: ServerOutcome,
}

impl ServerScan {
    /// The worst verdict over the config entry and every item.
    pub fn verdict(&self) -> Verdict {
        let items = match &self.outcome {
            ServerOutcome::Scanned(items) => items.iter().map(|i| i.verdict).max(),
            _ => None,
        };
        items
            .into_iter()
            .chain(std::iter::once(self.config_verdict))
            .max()
            .unwrap_or(Verdict::Ok)
    }
}

/// Scans every server's items (each with its own server's names as context
/// and every other server's tools as foreign names, so cross-server
/// references are found), flags tool names offered by several servers, and
/// checks each config entry.
pub fn scan_servers(scanner: &Scanner, servers: Vec<(ScannedServer, Fetched)>) -> Vec<ServerScan> {
    scan_servers_with(scanner, servers, &|_, _| None)
}

/// [`scan_servers`] with the operator's classifier's verdict on each item
/// (`external(server, item)`, asked beforehand by the caller).
pub fn scan_servers_with(
    scanner: &Scanner,
    servers: Vec<(ScannedServer, Fetched)>,
    external: &dyn Fn(&ScannedServer, &Manifest) -> Option<External>,
) -> Vec<ServerScan> {
    let names_of = |f: &Fetched| -> Vec<String> {
        match f {
            Fetched::Items(items) => items
                .iter()
                .filter(|m| matches!(m.kind, ItemKind::Tool | ItemKind::Prompt))
                .map(|m| m.name.clone())
                .collect(),
            _ => Vec::new(),
        }
    };
    let all: Vec<(String, Vec<String>)> = servers
        .iter()
        .map(|(s, f)| (server_label(s), names_of(f)))
        .collect();
    let mut offered_by: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (label, names) in &all {
        for n in names {
            offered_by.entry(n).or_default().insert(label);
        }
    }
    servers
        .iter()
        .enumerate()
        .map(|(i, (server, fetched))| {
            let config_findings = config_findings(scanner, server);
            let outcome = match fetched {
                Fetched::NotLaunched(why) => ServerOutcome::NotLaunched(why.clone()),
                Fetched::Failed(why) => ServerOutcome::Failed(why.clone()),
                Fetched::Items(items) => {
                    let mut ctx = ScanContext::new().own_names(all[i].1.iter().map(String::as_str));
                    for m in items {
                        if let Some(verdict) = external(server, m) {
                            ctx = ctx.external(m.kind, &m.name, verdict);
                        }
                    }
                    for (j, (label, names)) in all.iter().enumerate() {
                        if j != i && label != &all[i].0 {
                            ctx = ctx.foreign_names(label, names.iter().map(String::as_str));
                        }
                    }
                    let mut scans: Vec<ItemScan> = items
                        .iter()
                        .map(|m| scan_item(scanner, m, &ctx, &offered_by, &all[i].0))
                        .collect();
                    scans.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
                    ServerOutcome::Scanned(scans)
                }
            };
            ServerScan {
                server: server.clone(),
                config_verdict: scanner.verdict(&config_findings),
                config_findings,
                outcome,
            }
        })
        .collect()
}

fn server_label(s: &ScannedServer) -> String {
    match &s.scope {
        Some(scope) => format!("{}@{}", s.name, scope),
        None => s.name.clone(),
    }
}

fn scan_item(
    scanner: &Scanner,
    m: &Manifest,
    ctx: &ScanContext,
    offered_by: &BTreeMap<&str, BTreeSet<&str>>,
    label: &str,
) -> ItemScan {
    let mut findings = scanner
        .scan_item(m, ctx)
        .map(|(_, f)| f)
        .unwrap_or_default();
    if m.kind == ItemKind::Tool {
        if let Some(servers) = offered_by.get(m.name.as_str()) {
            let others: Vec<&str> = servers.iter().copied().filter(|s| *s != label).collect();
            if !others.is_empty() {
                let excerpt = format!(
                    "{:?} is also offered by {}",
                    crate::text::escape_excerpt(&m.name, 60),
                    crate::text::escape_excerpt(&others.join(", "), 120)
                );
                findings.extend(scanner.finding(rules::NAME_COLLISION, "/name", excerpt));
            }
        }
    }
    ItemScan {
        kind: m.kind,
        name: m.name.clone(),
        hash: m.hash,
        verdict: scanner.verdict(&findings),
        why: scanner.why(&findings),
        findings,
    }
}

/// Findings about a config entry: package launches without a version,
/// remote servers over plain http.
pub fn config_findings(scanner: &Scanner, server: &ScannedServer) -> Vec<ScanFinding> {
    let mut out = Vec::new();
    match &server.launch {
        ServerLaunch::Stdio { command, args, .. } => {
            if let Some(p) = package_pin(command, args) {
                if p.version.is_none() {
                    let excerpt = format!(
                        "{} {} (no version: whatever is latest at launch runs)",
                        p.runner, p.package
                    );
                    out.extend(scanner.finding(
                        rules::UNPINNED_PACKAGE,
                        "/args",
                        crate::text::escape_excerpt(&excerpt, 160),
                    ));
                }
            }
        }
        ServerLaunch::Remote { url, .. } => {
            if let Some(rest) = url.strip_prefix("http://") {
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
                let bare = if host.starts_with('[') {
                    host.split(']')
                        .next()
                        .map(|h| h.trim_start_matches('['))
                        .unwrap_or(host)
                } else {
                    host.split(':').next().unwrap_or(host)
                };
                let local = bare == "localhost" || bare == "::1" || bare.starts_with("127.");
                if !local {
                    out.extend(scanner.finding(
                        rules::INSECURE_URL,
                        "/url",
                        crate::text::escape_excerpt(&report::redact_url(url), 120),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
