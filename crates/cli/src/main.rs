//! `warden`: the MCP security gateway.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use tracing::{error, info};
use warden_gateway::{Gateway, Snapshot};

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
    init_logging();
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
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warden: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Structured JSON logs on stderr (stdout belongs to the stdio transport).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { config, listen } => {
            let cfg = load(&config)?;
            let addr = listen.unwrap_or(cfg.listen.addr);
            serve(cfg, addr, Some(config), None).await
        }
        Command::Stdio { config } => {
            let cfg = load(&config)?;
            let principal = warden_identity::Principal::local(&cfg.stdio.principal);
            let gw = Gateway::new(Snapshot::compile(cfg));
            warden_gateway::stdio::serve(
                gw.clone(),
                principal,
                tokio::io::stdin(),
                tokio::io::stdout(),
            )
            .await?;
            gw.shutdown().await;
            Ok(())
        }
        Command::Check { config } => {
            let cfg = load(&config)?;
            println!(
                "{}: ok ({} servers, {} virtual servers)",
                config.display(),
                cfg.servers.len(),
                cfg.virtual_servers.len()
            );
            Ok(())
        }
        Command::Demo { listen } => {
            let exe = std::env::current_exe().context("cannot find the warden executable")?;
            let yaml = demo_config(&exe, listen);
            let cfg = warden_config::parse(&yaml, Path::new("."))
                .map_err(|e| anyhow::anyhow!("embedded demo config is invalid:\n{e}"))?;
            let banner = demo_banner(listen);
            serve(cfg, listen, None, Some(banner)).await
        }
        Command::ExampleServer {
            mode,
            http,
            record,
            name,
        } => {
            let mode = match mode {
                ExampleMode::Demo => warden_example_server::Mode::Demo,
                ExampleMode::Echo => warden_example_server::Mode::Echo,
                ExampleMode::Test => warden_example_server::Mode::Test,
            };
            let opts = warden_example_server::Options { record, name };
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

fn load(path: &Path) -> Result<warden_config::Config> {
    warden_config::load(path)
        .map_err(|e| anyhow::anyhow!("{}: invalid configuration:\n{e}", path.display()))
}

async fn serve(
    cfg: warden_config::Config,
    addr: SocketAddr,
    config_path: Option<PathBuf>,
    banner: Option<String>,
) -> Result<()> {
    let gw = Gateway::new(Snapshot::compile(cfg));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let app = warden_gateway::http::router(gw.clone(), bound);
    info!(addr = %bound, "warden listening");
    // Tests and scripts read this line to find the port.
    eprintln!("warden: listening on http://{bound}/mcp");
    if let Some(b) = banner {
        println!("{b}");
    }
    if let Some(path) = config_path {
        spawn_reload_on_sighup(gw.clone(), path);
    }
    let shutdown = {
        let gw = gw.clone();
        async move {
            shutdown_signal().await;
            info!("shutting down");
            gw.shutdown().await;
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("server failed")?;
    Ok(())
}

/// SIGHUP re-reads the configuration; a bad file keeps the running one.
fn spawn_reload_on_sighup(gw: Arc<Gateway>, path: PathBuf) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match warden_config::load(&path) {
                Ok(cfg) => {
                    gw.reload(Snapshot::compile(cfg));
                    info!(target: "audit", event = "config.reloaded", path = %path.display());
                }
                Err(e) => {
                    error!(target: "audit", event = "config.reload_failed", path = %path.display(), errors = %e)
                }
            }
        }
    });
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

fn demo_config(exe: &Path, listen: SocketAddr) -> String {
    let exe = exe.display().to_string().replace('\'', "''");
    format!(
        r#"
listen:
  addr: "{listen}"
gateway:
  name: warden-demo
  instructions: "Warden demo: a notes and tickets server behind the Warden gateway."
servers:
  notes:
    transport: stdio
    command: '{exe}'
    args: [example-server, --mode, demo, --name, notes]
    isolation: principal
virtual_servers:
  readonly:
    servers: [notes]
    tools: ["notes__notes_search", "notes__notes_get", "notes__tickets_list"]
"#
    )
}

fn demo_banner(listen: SocketAddr) -> String {
    format!(
            "Warden demo is running in front of the bundled notes & tickets server.\n\n  MCP endpoint (Streamable HTTP): http://{listen}/mcp\n  Read-only virtual server:       http://{listen}/mcp/readonly\n  Legacy HTTP+SSE endpoint:       http://{listen}/sse\n\nTry it:\n  npx @modelcontextprotocol/inspector --cli http://{listen}/mcp --transport http --method tools/list\n  npx @modelcontextprotocol/inspector --cli http://{listen}/mcp --transport http --method tools/call --tool-name notes__notes_search --tool-arg query=welcome\n\nPress Ctrl-C to stop."
    )
}
