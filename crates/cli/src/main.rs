//! `warden`: the MCP security gateway.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use tracing::{error, info, warn};
use warden_gateway::{Gateway, Snapshot};

mod admin;
mod approvals_cmd;
mod credentials_cmd;
mod registry_cmd;

#[derive(Parser)]
#[command(name = "warden", version, about = "Warden: an MCP security gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP clients over HTTP (Streamable HTTP and legacy SSE).
    Serve {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        /// Overrides `listen.addr`.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Serve one MCP client on stdin/stdout (for desktop clients).
    Stdio {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
    },
    /// Validate a configuration file without serving.
    Check {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
    },
    /// Run Warden in front of the bundled example server.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Development tokens signed by the local development issuer.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// API keys for service principals.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The audit trail: verify, query, tail.
    Audit {
        #[command(subcommand)]
        command: admin::AuditCommand,
    },
    /// Limits of a running Warden: what budgets have spent, which breakers
    /// are open (read from its `/limits`, beside the metrics).
    Limits {
        #[command(subcommand)]
        command: LimitsCommand,
    },
    /// Held calls of a running Warden: list, show, approve, deny (its
    /// `/approvals` API, as the principal of $WARDEN_TOKEN or $WARDEN_API_KEY).
    Approvals {
        #[command(subcommand)]
        command: approvals_cmd::ApprovalsCommand,
    },
    /// Users' OAuth grants at `mode: oauth` servers: login, logout.
    Credentials {
        #[command(subcommand)]
        command: credentials_cmd::CredentialsCommand,
    },
    /// Authorization policies: test, show, explain.
    Policy {
        #[command(subcommand)]
        command: admin::PolicyCommand,
    },
    /// The tool registry: pin, diff, approve, list (`warden.lock`).
    Registry {
        #[command(subcommand)]
        command: registry_cmd::RegistryCommand,
    },
    /// Scan MCP client configs (Claude Desktop, Claude Code, Cursor, VS Code,
    /// Windsurf): start the servers they name and report poisoned tools.
    Scan(registry_cmd::ScanArgs),
    /// The bundled example MCP server (used by `demo`, tests and benchmarks).
    #[command(hide = true)]
    ExampleServer {
        #[arg(long, value_enum, default_value = "demo")]
        mode: ExampleMode,
        /// Serve Streamable HTTP on this address instead of stdio.
        #[arg(long)]
        http: Option<SocketAddr>,
        /// Append every received message to this file.
        #[arg(long)]
        record: Option<PathBuf>,
        #[arg(long)]
        name: Option<String>,
        /// A JSON array of extra tool definitions to serve (test corpora).
        #[arg(long)]
        extra_tools: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint an access token for the configured `identity.dev_issuer`.
    Mint {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        #[arg(long)]
        sub: String,
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Lifetime, e.g. `1h`.
        #[arg(long, default_value = "1h")]
        ttl: humantime::Duration,
        /// The MCP path the token is for (its audience).
        #[arg(long, default_value = "/mcp")]
        resource: String,
        /// Bind the token to a DPoP key (its RFC 7638 thumbprint): `cnf.jkt`.
        #[arg(long)]
        dpop_jkt: Option<String>,
        /// The principal's tenant (the `tenant` claim).
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; it is printed once and stored only as a keyed hash.
    Create {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        #[arg(long)]
        principal: String,
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
    },
    /// List keys (ids, principals, roles; never the keys).
    List {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
    },
    /// Revoke a key by id.
    Revoke {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        id: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ExampleMode {
    Demo,
    Echo,
    Test,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warden: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warden: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs (structured JSON on stderr, redacted: stdout belongs to the stdio
/// transport), traces (OTLP when configured) and metrics, from the
/// configuration's `telemetry:` section. `WARDEN_LOG`, when set, overrides
/// `telemetry.logs.level`.
fn start_telemetry(
    settings: &warden_telemetry::TelemetrySettings,
) -> Result<warden_telemetry::TelemetryGuard> {
    let mut settings = settings.clone();
    if let Ok(level) = std::env::var("WARDEN_LOG") {
        if tracing_subscriber::EnvFilter::try_new(&level).is_ok() {
            settings.logs.level = level;
        }
    }
    warden_telemetry::Telemetry::init(&settings, std::io::stderr)
        .context("telemetry: cannot start logging and tracing")
}

async fn run(cli: Cli) -> Result<std::process::ExitCode> {
    // The served configuration's telemetry settings; defaults otherwise.
    let settings = match &cli.command {
        Command::Serve { config, .. } | Command::Stdio { config } => {
            (*load(config)?.telemetry).clone()
        }
        _ => warden_telemetry::TelemetrySettings::default(),
    };
    let telemetry = start_telemetry(&settings)?;
    let verdict = match cli.command {
        Command::Audit { command } => {
            tokio::task::spawn_blocking(move || admin::audit(command)).await??
        }
        Command::Policy { command } => admin::policy(command)?,
        Command::Registry { command } => registry_cmd::registry(command).await?,
        Command::Scan(args) => {
            let code = registry_cmd::scan(args).await;
            let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
            return code;
        }
        other => match run_command(other).await {
            Ok(()) => admin::Verdict::Yes,
            Err(e) => {
                let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
                return Err(e);
            }
        },
    };
    // Exports what is queued (blocks up to the export timeout).
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    Ok(match verdict {
        admin::Verdict::Yes => std::process::ExitCode::SUCCESS,
        admin::Verdict::No => std::process::ExitCode::from(1),
    })
}

async fn run_command(command: Command) -> Result<()> {
    match command {
        Command::Serve { config, listen } => {
            let cfg = load(&config)?;
            let addr = listen.unwrap_or(cfg.listen.addr);
            serve(cfg, addr, Some(config), None).await
        }
        Command::Stdio { config } => {
            let cfg = load(&config)?;
            let auth = start_authenticator(&cfg).await?;
            let principal = stdio_principal(&cfg, auth.as_deref()).await?;
            anyhow::ensure!(
                !cfg.audit.stdout,
                "audit.sinks.stdout cannot be used with `warden stdio`: standard output is the MCP stream"
            );
            let audit = match start_audit(&(*cfg.audit).clone()).await {
                Ok(a) => a,
                Err(e) => {
                    // One desktop client per `warden stdio` process: when
                    // another Warden holds the trail, this process keeps a
                    // trail of its own rather than run without one.
                    let own = cfg.audit.for_process(std::process::id());
                    tracing::warn!(error = %format!("{e:#}"), dir = %own.journal_dir.display(),
                        "audit trail in use by another Warden; this stdio session records to its own");
                    start_audit(&own).await?
                }
            };
            let approvals = approvals_cmd::start(&cfg.approvals, Some(&config)).await?;
            let gw = Gateway::new(Snapshot::compile(cfg)?);
            install_secret_scrubber(&audit, &gw);
            gw.set_audit(Some(audit.clone()));
            gw.set_approvals(Some(approvals));
            warden_gateway::stdio::serve(
                gw.clone(),
                principal,
                tokio::io::stdin(),
                tokio::io::stdout(),
            )
            .await?;
            gw.shutdown().await;
            audit.as_ref().clone().shutdown().await;
            Ok(())
        }
        Command::Check { config } => {
            let cfg = load(&config)?;
            // Everything a start compiles (policy against the configured
            // servers, guards, registry), so that `check` fails where
            // `serve` would: a grant or policy naming no configured server
            // is a typo, and on a `forbid` a silent hole.
            Snapshot::compile(cfg.clone()).map_err(|e| {
                anyhow::anyhow!("{}: invalid configuration:\n{e}", config.display())
            })?;
            println!(
                "{}: ok ({} servers, {} virtual servers)",
                config.display(),
                cfg.servers.len(),
                cfg.virtual_servers.len()
            );
            if let Some(warning) = unpinned_warning(&cfg, &config) {
                eprintln!("warning: {warning}");
            }
            Ok(())
        }
        Command::Demo { listen } => {
            let exe = std::env::current_exe().context("cannot find the warden executable")?;
            let data_dir = std::env::current_dir()?.join(".warden");
            let yaml = demo_config(&exe, listen, &data_dir);
            // On disk too, so that `warden audit query -c .warden/demo.yaml`
            // and `warden policy explain` read what the demo runs.
            std::fs::create_dir_all(&data_dir)?;
            std::fs::write(data_dir.join("demo.yaml"), &yaml)?;
            let cfg = warden_config::parse(&yaml, Path::new("."))
                .map_err(|e| anyhow::anyhow!("embedded demo config is invalid:\n{e}"))?;
            // Authentication is on, as in production: the development
            // issuer signs a token the demo prints.
            let identity = identity_of(&cfg)?;
            let dev = identity
                .dev_issuer()
                .context("the demo config enables the development issuer")?;
            let token = warden_identity::DevIssuer::from_settings(dev, identity.data_dir())?.mint(
                "demo-user",
                &["admin".to_owned()],
                &[],
                std::time::Duration::from_secs(12 * 3600),
                &identity.resource_url("/mcp"),
            )?;
            let banner = demo_banner(listen, &token);
            serve(cfg, listen, None, Some(banner)).await
        }
        Command::Token {
            command:
                TokenCommand::Mint {
                    config,
                    sub,
                    roles,
                    scopes,
                    ttl,
                    resource,
                    dpop_jkt,
                    tenant,
                },
        } => {
            let cfg = load(&config)?;
            let identity = identity_of(&cfg)?;
            let dev = identity
                .dev_issuer()
                .context("identity.dev_issuer is not enabled in this configuration")?;
            let issuer = warden_identity::DevIssuer::from_settings(dev, identity.data_dir())?;
            let audience = identity.resource_url(&resource);
            let token = issuer.mint_with(&warden_identity::MintRequest {
                subject: &sub,
                roles: &roles,
                scopes: &scopes,
                ttl: ttl.into(),
                audience: &audience,
                dpop_jkt: dpop_jkt.as_deref(),
                tenant: tenant.as_deref(),
                ..warden_identity::MintRequest::default()
            })?;
            println!("{token}");
            Ok(())
        }
        Command::Keys { command } => keys(command),
        Command::Approvals { command } => approvals_cmd::run(command).await,
        Command::Credentials { command } => credentials_cmd::run(command).await,
        Command::Limits {
            command: LimitsCommand::Status { config, url, json },
        } => limits_status(&config, url, json).await,
        Command::Audit { .. }
        | Command::Policy { .. }
        | Command::Registry { .. }
        | Command::Scan(_) => Ok(()),
        Command::ExampleServer {
            mode,
            http,
            record,
            name,
            extra_tools,
        } => {
            let mode = match mode {
                ExampleMode::Demo => warden_example_server::Mode::Demo,
                ExampleMode::Echo => warden_example_server::Mode::Echo,
                ExampleMode::Test => warden_example_server::Mode::Test,
            };
            let opts = warden_example_server::Options {
                record,
                name,
                extra_tools,
            };
            match http {
                Some(addr) => {
                    let listener = tokio::net::TcpListener::bind(addr).await?;
                    warden_example_server::run_http(mode, opts, listener).await?;
                }
                None => warden_example_server::run_stdio(mode, opts).await?,
            }
            Ok(())
        }
    }
}

fn identity_of(cfg: &warden_config::Config) -> Result<&warden_identity::IdentitySettings> {
    cfg.identity
        .as_deref()
        .context("this configuration has no `identity:` section")
}

/// Starts the OAuth resource server when `identity:` is configured. JWKS
/// and discovery fetches may reach loopback only when Warden itself listens
/// on loopback (development and tests); otherwise only public addresses.
async fn start_authenticator(
    cfg: &warden_config::Config,
) -> Result<Option<Arc<warden_identity::Authenticator>>> {
    let Some(identity) = cfg.identity.as_deref() else {
        return Ok(None);
    };
    let egress =
        warden_identity::EgressPolicy::strict().with_loopback(cfg.listen.addr.ip().is_loopback());
    let auth = warden_identity::Authenticator::start(identity.clone(), egress)
        .await
        .context("identity: cannot start the authenticator")?;
    Ok(Some(auth))
}

/// The principal of a stdio session: a token from `WARDEN_TOKEN`, validated
/// like any other, when identity is configured; else the configured local user.
async fn stdio_principal(
    cfg: &warden_config::Config,
    auth: Option<&warden_identity::Authenticator>,
) -> Result<warden_identity::Principal> {
    match (auth, std::env::var("WARDEN_TOKEN").ok()) {
        (Some(auth), Some(token)) => {
            let resource = auth.resource_url("/mcp");
            auth.authenticate_token(token.trim(), &resource)
                .await
                .map_err(|e| anyhow::anyhow!("WARDEN_TOKEN was refused: {}", e.code()))
        }
        (Some(_), None) if !cfg.identity.as_deref().is_some_and(|i| i.allow_anonymous()) => {
            anyhow::bail!("identity is configured: set WARDEN_TOKEN to an access token or API key for the local user")
        }
        _ => Ok(warden_identity::Principal::local(&cfg.stdio.principal)),
    }
}

fn keys(command: KeysCommand) -> Result<()> {
    let (config, store_path, identity) = match &command {
        KeysCommand::Create { config, .. }
        | KeysCommand::List { config }
        | KeysCommand::Revoke { config, .. } => {
            let cfg = load(config)?;
            let identity = identity_of(&cfg)?.clone();
            let path = identity
                .api_key_store_path()
                .context("identity.api_keys is not enabled in this configuration")?;
            (config.clone(), path, identity)
        }
    };
    let mut store = warden_identity::KeyStore::load(&store_path)?;
    match command {
        KeysCommand::Create {
            principal, roles, ..
        } => {
            let secret = identity.api_key_secret()?;
            let (key, stored) = warden_identity::create_api_key(&secret, &principal, &roles)?;
            let id = stored.id.clone();
            store.add(stored)?;
            store.save(&store_path)?;
            eprintln!("created key {id} for {principal} (shown once; store it now):");
            println!("{key}");
        }
        KeysCommand::List { .. } => {
            for k in store.keys() {
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}	{}	{}	{}", k.id, k.principal, k.roles.join(","), state);
            }
        }
        KeysCommand::Revoke { id, .. } => {
            anyhow::ensure!(store.revoke(&id), "no key {id} in {}", config.display());
            store.save(&store_path)?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

/// In `strict` mode, a server the lock file does not pin serves nothing:
/// said at `check` and at start, with the command that pins it, rather
/// than a silent empty `tools/list`.
fn unpinned_warning(cfg: &warden_config::Config, config: &Path) -> Option<String> {
    if cfg.registry.mode != warden_registry::Mode::Strict || cfg.servers.is_empty() {
        return None;
    }
    let lock = warden_gateway::snapshot::load_lock(&cfg.registry.lock).ok()?;
    let pinned: Vec<&str> = lock
        .servers()
        .filter(|(_, pin)| pin.is_some())
        .map(|(name, _)| name)
        .collect();
    let missing: Vec<&str> = cfg
        .servers
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| !pinned.contains(n))
        .collect();
    if missing.is_empty() {
        return None;
    }
    Some(format!(
        "registry: strict mode, and {} of {} servers are not pinned in {} ({}): they are not started and none of their tools reach a client; review and pin them with `warden registry pin -c {}`",
        missing.len(),
        cfg.servers.len(),
        cfg.registry.lock.display(),
        missing.join(", "),
        config.display()
    ))
}

pub(crate) fn load(path: &Path) -> Result<warden_config::Config> {
    warden_config::load(path)
        .map_err(|e| anyhow::anyhow!("{}: invalid configuration:\n{e}", path.display()))
}

async fn serve(
    cfg: warden_config::Config,
    addr: SocketAddr,
    config_path: Option<PathBuf>,
    banner: Option<String>,
) -> Result<()> {
    let auth = start_authenticator(&cfg).await?;
    if let (Some(auth), Some(store)) = (
        auth.clone(),
        cfg.identity.as_deref().and_then(|i| i.api_key_store_path()),
    ) {
        spawn_key_store_reload(auth, store);
    }
    if cfg.authorization.is_none() {
        tracing::warn!(
            "no `authorization:` section: every authenticated caller may use every exposed tool"
        );
    }
    if let Some(warning) = unpinned_warning(
        &cfg,
        config_path.as_deref().unwrap_or(Path::new("warden.yaml")),
    ) {
        tracing::warn!("{warning}");
    }
    let tls = match cfg.tls.as_deref() {
        Some(t) => Some(
            t.server_config()
                .context("tls: cannot build the TLS listener")?,
        ),
        None => {
            if cfg.identity.as_deref().is_some_and(|i| i.mtls().is_some()) {
                anyhow::bail!("identity.mtls needs a TLS listener: configure `tls: {{cert, key}}`");
            }
            None
        }
    };
    let limits = edge_limits(&cfg.listen);
    let audit = start_audit(&cfg.audit).await?;
    let approvals = approvals_cmd::start(&cfg.approvals, config_path.as_deref()).await?;
    let gw = Gateway::new(Snapshot::compile(cfg)?);
    gw.set_authenticator(auth);
    install_secret_scrubber(&audit, &gw);
    gw.set_audit(Some(audit.clone()));
    gw.set_approvals(Some(approvals));
    let listener =
        warden_gateway::edge::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let app = warden_gateway::http::router(gw.clone(), bound);
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!(addr = %bound, scheme, "warden listening");
    // Tests and scripts read this line to find the port.
    eprintln!("warden: listening on {scheme}://{bound}/mcp");
    if let Some(b) = banner {
        println!("{b}");
    }
    if let Some(path) = config_path {
        spawn_reload_on_sighup(gw.clone(), path);
    }
    let metrics = gw.snapshot().config.telemetry.metrics.clone();
    if let (true, Some(admin)) = (metrics.enabled, metrics.listen) {
        let listener = warden_gateway::edge::bind(admin)
            .with_context(|| format!("telemetry.metrics.listen: cannot listen on {admin}"))?;
        let bound = listener.local_addr()?;
        eprintln!("warden: metrics on http://{bound}{}", metrics.path);
        if !bound.ip().is_loopback() && metrics.token.is_none() {
            warn!(
                addr = %bound,
                "the metrics listener is reachable from other hosts and needs no credential \
                 (set telemetry.metrics.token)"
            );
        }
        let app = warden_gateway::http::admin_router(gw.clone(), bound);
        let serving = warden_gateway::edge::serve(
            listener,
            None,
            app,
            limits,
            gw.metrics.clone(),
            std::future::pending(),
        );
        tokio::spawn(async move {
            if let Err(e) = serving.await {
                error!(error = %e, "metrics listener failed");
            }
        });
    }
    let shutdown = {
        let gw = gw.clone();
        async move {
            shutdown_signal().await;
            info!("shutting down");
            gw.shutdown().await;
            // Flushes every queued record and signs a final checkpoint.
            audit.as_ref().clone().shutdown().await;
        }
    };
    warden_gateway::edge::serve(listener, tls, app, limits, gw.metrics.clone(), shutdown)
        .await
        .context("server failed")?;
    Ok(())
}

/// The edge limits of `listen:`, with `max_connections` fitted to the
/// open-file limit: raised to its hard limit first (as Go's runtime does),
/// then keeping room for upstream processes and connections, the audit
/// trail and other files. A cap the limit cannot honour would let accepts
/// fail for everyone once descriptors run out, which is what the cap is
/// there to prevent.
fn edge_limits(listen: &warden_config::Listen) -> warden_config::EdgeLimits {
    let mut limits = listen.edge;
    let Some(open_files) = raise_open_file_limit() else {
        return limits;
    };
    let reserve = (open_files / 10).max(256);
    let fits = usize::try_from(open_files.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .max(1);
    if limits.max_connections > fits {
        warn!(
            configured = limits.max_connections,
            used = fits,
            open_file_limit = open_files,
            "listen.max_connections exceeds what the open-file limit allows; \
             raise the limit (ulimit -n, LimitNOFILE=) to serve more connections"
        );
        limits.max_connections = fits;
    }
    limits
}

/// Raises the soft open-file limit to the hard one; the limit now in force.
#[cfg(unix)]
fn raise_open_file_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> Option<u64> {
    None
}

/// Starts the audit writer: recovers the journal left by a crash (before
/// anything is served), then writes in its own thread.
async fn start_audit(
    settings: &warden_audit::AuditSettings,
) -> Result<Arc<warden_audit::AuditLog>> {
    let settings = settings.clone();
    let (audit, worker) =
        tokio::task::spawn_blocking(move || warden_audit::AuditLog::start(settings))
            .await?
            .context("audit: cannot start the audit trail")?;
    tokio::spawn(async move {
        if let Err(e) = worker.wait().await {
            error!(error = %e, "audit writer failed");
        }
    });
    Ok(Arc::new(audit))
}

/// `audit.arguments: redacted` scans every argument string for secrets
/// with the guard's detector (the audit crate has none of its own).
fn install_secret_scrubber(audit: &warden_audit::AuditLog, gw: &Gateway) {
    let guard = gw.snapshot().guard.clone();
    audit.set_secret_scrubber(Arc::new(move |text: &str| {
        guard
            .detect(text)
            .into_iter()
            .filter(|d| d.family == warden_guard::Family::Secret)
            .map(|d| (d.span, d.class))
            .collect::<Vec<_>>()
    }));
}

/// Keys created or revoked with `warden keys` take effect without a
/// restart: the store is re-read when its modification time changes.
fn spawn_key_store_reload(auth: Arc<warden_identity::Authenticator>, store: PathBuf) {
    tokio::spawn(async move {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let mut last = modified(&store);
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = modified(&store);
            if now != last {
                last = now;
                match auth.reload_api_keys() {
                    Ok(()) => info!(target: "audit", event = "api_keys.reloaded"),
                    Err(e) => error!(target: "audit", event = "api_keys.reload_failed", error = %e),
                }
            }
        }
    });
}

/// The configuration file is re-read on SIGHUP and when it changes on disk
/// (its modification time and size, looked at every second: polling works
/// the same on every filesystem, editors' rename-over-save included, for
/// one `stat` a second). A file that does not load, or that changes a
/// section only a restart applies, keeps the running configuration, and
/// says why.
fn spawn_reload_on_sighup(gw: Arc<Gateway>, path: PathBuf) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        let stamp = |p: &std::path::Path| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.modified().ok(), m.len()))
        };
        let mut seen = stamp(&path);
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                signal = hup.recv() => {
                    if signal.is_none() {
                        return;
                    }
                }
                _ = tick.tick() => {
                    let now = stamp(&path);
                    if now == seen || now.is_none() {
                        continue;
                    }
                }
            }
            seen = stamp(&path);
            reload_config(&gw, &path);
        }
    });
}

fn reload_config(gw: &Gateway, path: &std::path::Path) {
    let cfg = match warden_config::load(path) {
        Ok(cfg) => cfg,
        Err(e) => {
            error!(target: "audit", event = "config.reload_failed", path = %path.display(), errors = %e);
            return;
        }
    };
    let snap = match Snapshot::compile(cfg) {
        Ok(snap) => snap,
        Err(e) => {
            error!(target: "audit", event = "config.reload_failed", path = %path.display(), errors = %e);
            return;
        }
    };
    match gw.reload(snap) {
        Ok(()) => info!(target: "audit", event = "config.reloaded", path = %path.display()),
        Err(e) => {
            error!(target: "audit", event = "config.reload_refused", path = %path.display(), error = %e)
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn demo_config(exe: &Path, listen: SocketAddr, data_dir: &Path) -> String {
    let exe = exe.display().to_string().replace('\'', "''");
    let data_dir = data_dir.display().to_string().replace('\'', "''");
    format!(
        r#"
listen:
  addr: "{listen}"
gateway:
  name: warden-demo
  instructions: "Warden demo: a notes and tickets server behind the Warden gateway."
registry:
  mode: tofu
  lock: '{data_dir}/warden.lock'
identity:
  public_url: "http://{listen}"
  data_dir: '{data_dir}'
  dev_issuer:
    enabled: true
audit:
  journal: '{data_dir}/audit/journal'
  checkpoint: {{signing_key: '{data_dir}/audit/checkpoint.key'}}
  sinks:
    jsonl: {{path: '{data_dir}/audit/audit.jsonl'}}
    sqlite: {{path: '{data_dir}/audit/audit.db'}}
approvals:
  path: '{data_dir}/approvals.db'
  wait: 10s
servers:
  notes:
    transport: stdio
    command: '{exe}'
    args: [example-server, --mode, demo, --name, notes]
    isolation: principal
    tools:
      - {{name: notes_search, risk: low}}
      - {{name: notes_get, risk: low}}
      - {{name: tickets_list, risk: low}}
      - {{name: tickets_delete, risk: critical}}
    resources:
      - {{name: "notes://*", data_class: internal}}
authorization:
  roles:
    admin:
      grants:
        - {{tools: ["*"], resources: ["*"], prompts: ["*"]}}
    analyst:
      grants:
        - {{tools: ["*"], resources: ["*"], prompts: ["*"], max_risk: low}}
  approvals:
    - {{id: critical-needs-approval, risk: [critical]}}
virtual_servers:
  readonly:
    servers: [notes]
    tools: ["notes__notes_search", "notes__notes_get", "notes__tickets_list"]
"#
    )
}

fn demo_banner(listen: SocketAddr, token: &str) -> String {
    format!(
        "Warden demo is running in front of the bundled notes & tickets server, with authentication on.

  MCP endpoint (Streamable HTTP): http://{listen}/mcp
  Read-only virtual server:       http://{listen}/mcp/readonly
  Legacy HTTP+SSE endpoint:       http://{listen}/sse
  Protected-resource metadata:    http://{listen}/.well-known/oauth-protected-resource

A development token (12 h, subject demo-user, role admin; mint more with `warden token mint`):

  export WARDEN_TOKEN={token}

Try it (the inspector's CLI needs Node.js 22 or newer):
  npx @modelcontextprotocol/inspector --cli http://{listen}/mcp --transport http --header \"Authorization: Bearer $WARDEN_TOKEN\" --method tools/list
  npx @modelcontextprotocol/inspector --cli http://{listen}/mcp --transport http --header \"Authorization: Bearer $WARDEN_TOKEN\" --method tools/call --tool-name notes__notes_search --tool-arg query=welcome

Without the token Warden answers 401 with a WWW-Authenticate challenge.
A read-only analyst: `warden token mint -c .warden/demo.yaml --sub ann --roles analyst`
tickets_delete is critical: even the admin's call is held for approval, asked in the client
where it supports elicitation, else out of band for 10 s:
  warden approvals list -c .warden/demo.yaml, then warden approvals approve <id> -c .warden/demo.yaml
  (with $WARDEN_TOKEN set), and send the same call again.
Every decision is in the audit trail: `warden audit query -c .warden/demo.yaml`, `warden audit verify -c .warden/demo.yaml`.
Metrics: http://{listen}/metrics. Press Ctrl-C to stop."
    )
}

#[derive(Subcommand)]
enum LimitsCommand {
    /// Budgets spent in the current period and breakers not closed.
    Status {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        /// Warden's base URL (default: the metrics listener, else the
        /// configured `listen` address).
        #[arg(long)]
        url: Option<String>,
        /// The JSON as served.
        #[arg(long)]
        json: bool,
    },
}

/// `warden limits status`: the running Warden's `/limits`.
async fn limits_status(config: &Path, url: Option<String>, json: bool) -> Result<()> {
    let cfg = load(config)?;
    let metrics = &cfg.telemetry.metrics;
    let base = match url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let mut addr = metrics.listen.unwrap_or(cfg.listen.addr);
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
    };
    let mut req = reqwest::Client::new()
        .get(format!("{base}{}", warden_gateway::http::LIMITS_PATH))
        .timeout(std::time::Duration::from_secs(10));
    if let Some(token) = &metrics.token {
        req = req.bearer_auth(token.expose());
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("no Warden answers at {base} (is it running? --url)"))?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .with_context(|| format!("{base}: not the limits status ({status})"))?;
    if json {
        println!("{body}");
        return Ok(());
    }
    println!(
        "{:<20} {:<32} {:>12} {:>12} {:>12}  unit",
        "budget", "key", "limit", "spent", "remaining"
    );
    for b in body["budgets"].as_array().into_iter().flatten() {
        println!(
            "{:<20} {:<32} {:>12} {:>12} {:>12}  {}",
            b["rule"].as_str().unwrap_or(""),
            b["key"].as_str().unwrap_or(""),
            b["limit"],
            b["spent"],
            b["remaining"],
            b["unit"].as_str().unwrap_or("")
        );
    }
    let breakers = body["breakers"].as_array().cloned().unwrap_or_default();
    if breakers.is_empty() {
        println!("breakers: all closed");
    }
    for b in breakers {
        println!(
            "breaker {:<40} {} {}",
            b["scope"].as_str().unwrap_or(""),
            b["state"].as_str().unwrap_or(""),
            b.get("retryAfter")
                .map(|r| format!("(retry in {r}s)"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
