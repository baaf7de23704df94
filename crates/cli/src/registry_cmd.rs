//! `warden registry pin|diff|approve|list` and `warden scan`: the tool
//! registry's operator commands. They reach upstreams through the same
//! upstream machinery the gateway uses (`warden_gateway::pool::upstream_spec`),
//! never through a client-facing gateway, so strict mode cannot hide from
//! them what they are asked to review.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::value::RawValue;
use warden_config::{Config, ServerConfig};
use warden_protocol::message::{as_str, member, parse_one};
use warden_registry::{
    diff_report, instructions_manifest, manifests_of_list, ItemKind, LockFile, Manifest,
    RegistryError, ScanContext, Scanner, ServerIdentity,
};
use warden_upstream::{Handshake, RestartPolicy, TransportSpec, Upstream, UpstreamSpec};

use crate::admin::Verdict;

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Connect to the configured upstreams, fetch every list (tools,
    /// prompts, resource templates, instructions), scan, and pin the
    /// manifests and server identities in the lock file. Items the scanner
    /// blocks are refused (exit 1) unless `--force --reason TEXT`.
    Pin {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        /// Only this server (repeatable); default every configured server.
        #[arg(long)]
        server: Vec<String>,
        #[command(flatten)]
        approval: ApprovalArgs,
    },
    /// Field-level differences between the live and the pinned manifests
    /// and server identities. Exit 1 when there are any.
    Diff {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        #[arg(long)]
        server: Vec<String>,
    },
    /// Accept the live manifest of one server's drifted or new items (or
    /// one item with `--tool`), and its live identity.
    Approve {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        #[arg(long)]
        server: String,
        /// The tool (or prompt, or resource template) to approve; default all.
        #[arg(long)]
        tool: Option<String>,
        #[command(flatten)]
        approval: ApprovalArgs,
    },
    /// Print the lock file's servers and items.
    List {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
    },
}

#[derive(Args)]
pub struct ApprovalArgs {
    /// Pin items the scanner blocks (needs `--reason`, recorded in the lock).
    #[arg(long, requires = "reason")]
    force: bool,
    #[arg(long)]
    reason: Option<String>,
    /// Who approves (recorded in the lock); default `$USER`.
    #[arg(long)]
    approver: Option<String>,
}

impl ApprovalArgs {
    fn approver(&self) -> String {
        self.approver
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    }

    fn force_reason(&self) -> Option<&str> {
        self.reason.as_deref().filter(|_| self.force)
    }
}

/// `warden scan [FILES…]`.
#[derive(Args)]
pub struct ScanArgs {
    /// Client config files (Claude Desktop, Claude Code, Cursor, VS Code,
    /// Windsurf). Default: every known location under `$HOME` and the
    /// current directory.
    files: Vec<PathBuf>,
    /// Report the config entries only; start no server.
    #[arg(long)]
    no_launch: bool,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
    /// How long to wait for each server to start and answer.
    #[arg(long, default_value = "30s")]
    timeout: humantime::Duration,
    /// Start stdio servers without Warden's sandbox. By default each runs
    /// as a gateway's would under `profile: strict` (no network, only its
    /// own package readable, the scanned config files never): a launcher
    /// that downloads at start (`npx -y`, `uvx`) then fails to start. Only
    /// for servers you trust.
    #[arg(long)]
    unsandboxed: bool,
}

pub async fn registry(command: RegistryCommand) -> Result<Verdict> {
    match command {
        RegistryCommand::Pin {
            config,
            server,
            approval,
        } => pin(&config, &server, &approval).await,
        RegistryCommand::Diff { config, server } => diff(&config, &server).await,
        RegistryCommand::Approve {
            config,
            server,
            tool,
            approval,
        } => approve(&config, &server, tool.as_deref(), &approval).await,
        RegistryCommand::List { config } => {
            let cfg = crate::load(&config)?;
            let lock = load_lock(&cfg.registry.lock)?;
            print!("{}", list_lock(&lock));
            Ok(Verdict::Yes)
        }
    }
}

fn load_lock(path: &Path) -> Result<LockFile> {
    warden_gateway::snapshot::load_lock(path)
        .with_context(|| format!("cannot read the lock file {}", path.display()))
}

/// Writes the lock file (what was approved is kept even when some items
/// were refused); exit 1 when any was.
fn finish(lock: &LockFile, path: &Path, refused: usize) -> Result<Verdict> {
    lock.save(path)
        .with_context(|| format!("cannot write the lock file {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(if refused == 0 {
        Verdict::Yes
    } else {
        Verdict::No
    })
}

fn selected<'a>(cfg: &'a Config, names: &[String]) -> Result<Vec<&'a ServerConfig>> {
    for n in names {
        anyhow::ensure!(
            cfg.server(n).is_some(),
            "no server {n:?} in the configuration"
        );
    }
    Ok(cfg
        .servers
        .iter()
        .filter(|s| names.is_empty() || names.contains(&s.name))
        .collect())
}

async fn pin(config: &Path, servers: &[String], approval: &ApprovalArgs) -> Result<Verdict> {
    let cfg = crate::load(config)?;
    let scanner = Scanner::with_config(&cfg.registry.scanner)?;
    let mut lock = load_lock(&cfg.registry.lock)?;
    let approver = approval.approver();
    let mut refused = 0;
    for server in selected(&cfg, servers)? {
        let live = fetch_server(&cfg, server)
            .await
            .with_context(|| format!("server {:?}", server.name))?;
        lock.pin_server(&server.name, live.identity, &approver);
        // The lock then says exactly what the server offers now.
        let stale: Vec<(ItemKind, String)> = lock
            .items_of(&server.name)
            .filter(|p| {
                !live
                    .manifests
                    .iter()
                    .any(|m| m.kind == p.kind && m.name == p.name)
            })
            .map(|p| (p.kind, p.name.clone()))
            .collect();
        for (kind, name) in stale {
            lock.unpin(&server.name, kind, &name);
            println!(
                "- {}  no longer offered: unpinned",
                key(&server.name, kind, &name)
            );
        }
        let ctx = classify(&cfg, &live.manifests).await?;
        refused += approve_all(
            &mut lock,
            &scanner,
            &ctx,
            &live.manifests,
            &approver,
            approval,
        );
    }
    finish(&lock, &cfg.registry.lock, refused)
}

/// The operator's classifier's verdicts on `manifests`
/// (`registry.scanner.classifier`), asked before they are pinned.
async fn classify(cfg: &Config, manifests: &[Manifest]) -> Result<ScanContext> {
    let Some(settings) = &cfg.registry.classifier else {
        return Ok(ScanContext::new());
    };
    let classifier = warden_classifier::Classifier::new(settings.clone())
        .context("registry.scanner.classifier")?;
    Ok(warden_gateway::pipeline::registry::classify(&classifier, manifests).await)
}

/// Pins each manifest; returns how many the scanner refused.
fn approve_all(
    lock: &mut LockFile,
    scanner: &Scanner,
    ctx: &ScanContext,
    manifests: &[Manifest],
    approver: &str,
    approval: &ApprovalArgs,
) -> usize {
    let mut refused = 0;
    for m in manifests {
        let shown = warden_registry::text::escape_untrusted(&m.key());
        match lock.approve_in(scanner, m, ctx, approver, approval.force_reason()) {
            Ok(a) => {
                let what = match a.previous {
                    None => "pinned",
                    Some(h) if h == m.hash => "unchanged",
                    Some(_) => "re-pinned",
                };
                let forced = if a.verdict == warden_registry::Verdict::Block {
                    "  (forced over a scanner block)"
                } else {
                    ""
                };
                println!("+ {shown}  {what}  {}{forced}", m.hash);
            }
            Err(RegistryError::ScanBlocked { findings, .. }) => {
                refused += 1;
                let mut rules: Vec<&str> = findings.iter().map(|f| f.rule).collect();
                rules.sort_unstable();
                rules.dedup();
                println!(
                    "! {shown}  refused by the scanner ({}); pin with --force --reason TEXT to accept",
                    rules.join(", ")
                );
            }
            Err(e) => {
                refused += 1;
                println!("! {shown}  not pinned: {e}");
            }
        }
    }
    refused
}

async fn diff(config: &Path, servers: &[String]) -> Result<Verdict> {
    let cfg = crate::load(config)?;
    let lock = load_lock(&cfg.registry.lock)?;
    let mut live = Vec::new();
    let mut live_servers = Vec::new();
    let mut identity_changes = 0;
    let mut out = String::new();
    out.push_str("(listed as a client declaring sampling, elicitation and roots)\n");
    for server in selected(&cfg, servers)? {
        let fetched = fetch_server(&cfg, server)
            .await
            .with_context(|| format!("server {:?}", server.name))?;
        match lock.server_identity(&server.name) {
            None => {
                identity_changes += 1;
                out.push_str(&format!("+ server {}  not pinned\n", server.name));
            }
            Some(pinned) => {
                let changes = pinned.changes_to(&fetched.identity);
                if !changes.is_empty() {
                    identity_changes += 1;
                    out.push_str(&format!(
                        "~ server {}  identity changed since approval\n",
                        server.name
                    ));
                    for c in &changes {
                        warden_registry::diff::render_change(&mut out, c);
                    }
                }
            }
        }
        live.extend(fetched.manifests);
        live_servers.push(server.name.clone());
    }
    let report = diff_report(&lock, &live);
    print!("{out}{report}");
    let drifted = live.iter().any(|m| {
        lock.get(&m.server, m.kind, &m.name)
            .is_none_or(|p| p.hash != m.hash)
    });
    let gone = live_servers.iter().any(|server| {
        lock.items_of(server).any(|p| {
            !live
                .iter()
                .any(|m| m.server == p.server && m.kind == p.kind && m.name == p.name)
        })
    });
    let unchanged = identity_changes == 0 && !drifted && !gone;
    Ok(if unchanged { Verdict::Yes } else { Verdict::No })
}

async fn approve(
    config: &Path,
    server: &str,
    tool: Option<&str>,
    approval: &ApprovalArgs,
) -> Result<Verdict> {
    let cfg = crate::load(config)?;
    let scanner = Scanner::with_config(&cfg.registry.scanner)?;
    let mut lock = load_lock(&cfg.registry.lock)?;
    let approver = approval.approver();
    let server_cfg = cfg
        .server(server)
        .with_context(|| format!("no server {server:?} in the configuration"))?;
    let live = fetch_server(&cfg, server_cfg)
        .await
        .with_context(|| format!("server {server:?}"))?;
    let manifests: Vec<Manifest> = live
        .manifests
        .into_iter()
        .filter(|m| tool.is_none_or(|t| m.name == t))
        .collect();
    if let Some(t) = tool {
        anyhow::ensure!(
            !manifests.is_empty(),
            "server {server:?} does not offer {:?} now",
            warden_registry::text::escape_untrusted(t)
        );
    }
    let unchanged_identity = lock
        .server_identity(server)
        .is_some_and(|p| p.changes_to(&live.identity).is_empty());
    if !unchanged_identity {
        lock.pin_server(server, live.identity, &approver);
        println!("+ server {server}  identity pinned");
    }
    let ctx = classify(&cfg, &manifests).await?;
    let refused = approve_all(&mut lock, &scanner, &ctx, &manifests, &approver, approval);
    finish(&lock, &cfg.registry.lock, refused)
}

fn list_lock(lock: &LockFile) -> String {
    let mut out = String::new();
    for (name, pin) in lock.servers() {
        match pin {
            Some(p) => out.push_str(&format!(
                "server {name}  {}  approved by {} at {}\n",
                p.identity.transport(),
                warden_registry::text::escape_untrusted(&p.approved_by),
                p.approved_at
            )),
            None => out.push_str(&format!("server {name}  (identity not pinned)\n")),
        }
    }
    for p in lock.items() {
        let forced = p
            .forced_reason
            .as_deref()
            .map(|r| format!("  forced: {}", warden_registry::text::escape_untrusted(r)))
            .unwrap_or_default();
        out.push_str(&format!(
            "{}  {}  approved by {} at {}{forced}\n",
            key(&p.server, p.kind, &p.name),
            p.hash,
            warden_registry::text::escape_untrusted(&p.approved_by),
            p.approved_at
        ));
    }
    out
}

fn key(server: &str, kind: ItemKind, name: &str) -> String {
    warden_registry::text::escape_untrusted(&format!("{server}/{kind}/{name}"))
}

/// What one server offers now.
struct Live {
    identity: ServerIdentity,
    manifests: Vec<Manifest>,
}

async fn fetch_server(cfg: &Config, server: &ServerConfig) -> Result<Live> {
    let spec = warden_gateway::pool::upstream_spec(&warden_gateway::pool::StartSpec {
        server: Arc::new(server.clone()),
        handshake: handshake_params(),
        session_first: false,
        limits: warden_protocol::Limits {
            max_bytes: cfg.gateway.max_upstream_message_bytes,
            max_depth: cfg.gateway.max_depth,
        },
        // The CLI holds no published signing key: a `mint` upstream that
        // demands a token is pinned by the running Warden (`tofu`).
        auth: None,
    });
    let manifests = fetch(spec, server.call_timeout).await?;
    Ok(Live {
        identity: warden_gateway::snapshot::server_identity(server),
        manifests,
    })
}

/// The client capabilities the registry lists as: every one Warden relays
/// to its clients (sampling, elicitation, roots). Servers offer some tools
/// only to clients that declare them (server-everything's
/// `trigger-sampling-request`, `get-roots-list`…); listed without them,
/// those tools could never be pinned, and in strict mode were lost silently.
pub(crate) const LISTING_CAPABILITIES: &str =
    r#"{"sampling":{},"elicitation":{},"roots":{"listChanged":true}}"#;

fn handshake_params() -> String {
    format!(
        r#"{{"protocolVersion":"{}","capabilities":{LISTING_CAPABILITIES},"clientInfo":{{"name":"warden-registry","version":"{}"}}}}"#,
        warden_protocol::ProtocolVersion::LATEST_SESSION.as_str(),
        env!("CARGO_PKG_VERSION")
    )
}

/// Starts an upstream, fetches every list and the instructions as
/// manifests, and shuts it down.
async fn fetch(spec: UpstreamSpec, timeout: Duration) -> Result<Vec<Manifest>> {
    let name = spec.name.clone();
    let params = handshake_params();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let upstream = Upstream::start(
        spec,
        Handshake {
            params,
            session_first: false,
        },
        tx,
    );
    // Notifications and server requests are not answered here.
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let result = fetch_from(&upstream, &name, timeout).await;
    upstream.shutdown().await;
    result
}

async fn fetch_from(upstream: &Upstream, server: &str, timeout: Duration) -> Result<Vec<Manifest>> {
    let info = upstream
        .ready()
        .await
        .map_err(|e| anyhow::anyhow!("did not start: {e}"))?;
    let init: &RawValue =
        serde_json::from_str(&info.result).context("initialize result is not JSON")?;
    let mut out = Vec::new();
    if let Some(text) = member(init, "instructions").and_then(as_str) {
        out.push(instructions_manifest(server, &text)?);
    }
    let caps = member(init, "capabilities");
    for (kind, capability, method) in [
        (ItemKind::Tool, "tools", "tools/list"),
        (ItemKind::Prompt, "prompts", "prompts/list"),
        (
            ItemKind::ResourceTemplate,
            "resources",
            "resources/templates/list",
        ),
    ] {
        if caps.and_then(|c| member(c, capability)).is_none() {
            continue;
        }
        let mut cursor: Option<String> = None;
        for _ in 0..64 {
            let params = match &cursor {
                Some(c) => format!(
                    r#","params":{{"cursor":{}}}"#,
                    warden_protocol::edit::json_string(c)
                ),
                None => String::new(),
            };
            let resp = upstream
                .request(
                    |uid| format!(r#"{{"jsonrpc":"2.0","id":{uid},"method":"{method}"{params}}}"#),
                    timeout,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{method}: {e}"))?;
            let m = parse_one(&resp.text).map_err(|e| anyhow::anyhow!("{method}: {e}"))?;
            let Some(result) = m.result else {
                // Templates are optional even with the resources capability.
                if kind == ItemKind::ResourceTemplate {
                    break;
                }
                anyhow::bail!("{method}: the server answered with an error");
            };
            for item in manifests_of_list(server, kind, result) {
                match item {
                    Ok(m) => out.push(m),
                    Err((i, e)) => eprintln!("warden: {server}: {method} item {i} skipped: {e}"),
                }
            }
            cursor = member(result, "nextCursor")
                .and_then(as_str)
                .map(|c| c.into_owned());
            if cursor.is_none() {
                break;
            }
        }
    }
    Ok(out)
}

/// The sandbox a scanned stdio server runs in: `profile: strict`. The
/// scanned client configs are not protected paths: a project's `.mcp.json`
/// often sits in the package of the server it names, and protecting it
/// would refuse that mount; the sandbox shows the server nothing of the
/// host's but its package, its command line's paths and the system
/// directories, with tripwires where the host's secrets would be.
fn scan_sandbox() -> Box<warden_upstream::StdioSandbox> {
    Box::new(warden_upstream::StdioSandbox {
        spec: warden_sandbox::SandboxSpec::default(),
        egress: Vec::new(),
        egress_allow_private: false,
        roots_writable: false,
    })
}

/// `warden scan`: exit 0 when nothing was found, 1 for warnings, config
/// findings or servers that could not be scanned, 2 when an item is blocked.
pub async fn scan(args: ScanArgs) -> Result<std::process::ExitCode> {
    use warden_registry::scan::{self, Fetched, ServerLaunch};
    let files: Vec<PathBuf> = if args.files.is_empty() {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let cwd = std::env::current_dir().ok();
        scan::known_config_paths(&home, cwd.as_deref())
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| p.is_file())
            .collect()
    } else {
        args.files.clone()
    };
    anyhow::ensure!(!files.is_empty(), "no MCP client configuration found");
    let scanner = Scanner::new();
    let timeout: Duration = *args.timeout;
    let unsandboxed = args.unsandboxed;
    let mut servers = Vec::new();
    for file in &files {
        let parsed = scan::read_client_config(file)?;
        for w in &parsed.warnings {
            eprintln!(
                "warden: {}: {}",
                file.display(),
                warden_registry::text::escape_untrusted(w)
            );
        }
        for s in parsed.servers {
            let fetched = if args.no_launch {
                Fetched::NotLaunched("--no-launch".to_owned())
            } else if s.disabled {
                Fetched::NotLaunched("disabled in the config".to_owned())
            } else {
                let transport = match &s.launch {
                    ServerLaunch::Stdio {
                        command,
                        args,
                        env,
                        cwd,
                    } => TransportSpec::Stdio {
                        command: command.clone(),
                        args: args.clone(),
                        env: env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                        inherit_env: Vec::new(),
                        cwd: cwd.as_ref().map(PathBuf::from),
                        sandbox: (!unsandboxed).then(scan_sandbox),
                    },
                    ServerLaunch::Remote {
                        url,
                        transport,
                        headers,
                    } => {
                        let headers = headers
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        if transport.as_deref() == Some("sse") {
                            TransportSpec::Sse {
                                url: url.clone(),
                                headers,
                            }
                        } else {
                            TransportSpec::StreamableHttp {
                                url: url.clone(),
                                headers,
                            }
                        }
                    }
                };
                let spec = UpstreamSpec {
                    name: s.name.clone(),
                    transport,
                    era: warden_upstream::Era::Auto,
                    auth: None,
                    connect_timeout: timeout,
                    restart: RestartPolicy {
                        initial_backoff: Duration::from_secs(1),
                        max_backoff: Duration::from_secs(5),
                    },
                    limits: warden_protocol::Limits {
                        max_bytes: 16 << 20,
                        max_depth: 64,
                    },
                };
                let sandboxed = !unsandboxed && matches!(s.launch, ServerLaunch::Stdio { .. });
                match fetch(spec, timeout).await {
                    Ok(items) => Fetched::Items(items),
                    Err(e) if sandboxed => Fetched::Failed(format!(
                        "{e:#} (it ran in Warden's sandbox: no network, nothing of the host's but \
                         its own package; a launcher that downloads at start needs --unsandboxed)"
                    )),
                    Err(e) => Fetched::Failed(format!("{e:#}")),
                }
            };
            servers.push((s, fetched));
        }
    }
    let results = scan::scan_servers(&scanner, servers);
    if args.json {
        let report = scan::ScanReport::new(&results);
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", scan::render_report(&results, false));
    }
    let summary = scan::ScanSummary::of(&results);
    Ok(std::process::ExitCode::from(scan_exit_code(&summary)))
}

/// `warden scan`'s exit code: 0 clean, 1 findings, 2 something blocked, 3
/// a server that could not be scanned (did not start, did not answer) and
/// nothing worse: an operator's script must not read "could not look" as
/// "found a poisoned tool", nor as clean.
fn scan_exit_code(summary: &warden_registry::scan::ScanSummary) -> u8 {
    if summary.blocked > 0 {
        2
    } else if summary.has_findings() {
        1
    } else if summary.failed > 0 {
        3
    } else {
        0
    }
}
