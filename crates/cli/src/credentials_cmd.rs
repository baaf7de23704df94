//! `warden credentials login|logout`: a user's OAuth grant at a `mode:
//! oauth` server (issue #18). Login discovers the server's authorization
//! server from its 401, prints the authorization URL (code + PKCE), waits
//! for the redirect on a loopback listener, redeems the code and stores
//! the grant sealed in `credentials.grant_store`, under the principal key
//! Warden knows the user by (the error a user without a grant gets names
//! it). The running Warden reads the store: no restart.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warden_config::{CredentialMode, Transport};
use warden_credentials::oauth::{discover, Authorization};
use warden_credentials::{GrantStore, OAuthClient};

/// Which grant: the configuration, the server and the principal.
#[derive(clap::Args)]
pub struct GrantArgs {
    #[arg(long, short, default_value = "warden.yaml")]
    config: PathBuf,
    /// The configured server (`servers.NAME`).
    #[arg(long)]
    server: String,
    /// The principal key the grant is for (as Warden's error names it).
    #[arg(long)]
    principal: String,
}

#[derive(Subcommand)]
pub enum CredentialsCommand {
    /// Connect a principal's account at a `mode: oauth` server: prints the
    /// URL to open, waits for the authorization server's redirect to
    /// 127.0.0.1, stores the grant (encrypted).
    Login {
        #[command(flatten)]
        grant: GrantArgs,
        /// How long to wait for the redirect.
        #[arg(long, default_value = "5m")]
        timeout: humantime::Duration,
    },
    /// Forget a principal's grant at a server.
    Logout {
        #[command(flatten)]
        grant: GrantArgs,
    },
}

pub async fn run(command: CredentialsCommand) -> Result<()> {
    match command {
        CredentialsCommand::Login { grant, timeout } => {
            login(
                &grant.config,
                &grant.server,
                &grant.principal,
                timeout.into(),
            )
            .await
        }
        CredentialsCommand::Logout { grant } => {
            let cfg = crate::load(&grant.config)?;
            let removed = store_of(&cfg)?.remove(&grant.principal, &grant.server)?;
            println!(
                "{}",
                if removed {
                    "grant removed"
                } else {
                    "no grant was stored"
                }
            );
            Ok(())
        }
    }
}

fn store_of(cfg: &warden_config::Config) -> Result<GrantStore> {
    let settings = cfg
        .grant_store
        .as_ref()
        .context("credentials.grant_store is not configured")?;
    Ok(GrantStore::open(&settings.path, settings.key.expose())?)
}

async fn login(
    config: &std::path::Path,
    name: &str,
    principal: &str,
    timeout: std::time::Duration,
) -> Result<()> {
    let cfg = crate::load(config)?;
    let server = cfg
        .servers
        .iter()
        .find(|s| s.name == name)
        .with_context(|| format!("no server {name:?} in {}", config.display()))?;
    let CredentialMode::OAuth {
        client_id,
        client_secret,
        scopes,
        allow_private_network,
    } = &server.credentials.mode
    else {
        bail!("server {name:?} does not use credentials mode oauth");
    };
    let Transport::StreamableHttp { url, .. } = &server.transport else {
        bail!("server {name:?} is not a Streamable HTTP server");
    };
    let store = store_of(&cfg)?;
    let egress = warden_gateway::pipeline::credentials::oauth_egress(*allow_private_network)
        .map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?;
    let discovered = discover(&egress, url).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1 for the redirect")?;
    let redirect = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr()?.port()
    );
    let client = OAuthClient {
        client_id: client_id.clone(),
        client_secret: client_secret.as_ref().map(|s| s.expose().to_owned()),
    };
    let auth = Authorization::start(&discovered, &client, &redirect, scopes)?;
    println!(
        "To connect {principal} to {name} (authorization server {}), open:\n{}",
        discovered.issuer, auth.url
    );
    let (state, code) = tokio::time::timeout(timeout, redirected(&listener))
        .await
        .context("no redirect came back in time")??;
    let grant = auth.redeem(&egress, &state, &code).await?;
    store.put(principal, name, &grant)?;
    println!("connected: {principal} at {name} (scope: {})", grant.scope);
    Ok(())
}

/// The `state` and `code` of the first redirect to `/callback`.
async fn redirected(listener: &tokio::net::TcpListener) -> Result<(String, String)> {
    loop {
        let (mut conn, _) = listener.accept().await?;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            let n = conn.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let target = line.split(' ').nth(1).unwrap_or_default();
        let Ok(parsed) = url::Url::parse(&format!("http://127.0.0.1{target}")) else {
            continue;
        };
        if parsed.path() != "/callback" {
            let _ = conn
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let get = |k: &str| {
            parsed
                .query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        let (body, outcome) = match (get("error"), get("state"), get("code")) {
            (Some(e), _, _) => {
                let code: String = e
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .take(64)
                    .collect();
                (
                    "The authorization was refused. You can close this window.",
                    Err(anyhow::anyhow!("the authorization server refused: {code}")),
                )
            }
            (None, Some(state), Some(code)) => {
                ("Connected. You can close this window.", Ok((state, code)))
            }
            _ => (
                "This is not an authorization response.",
                Err(anyhow::anyhow!("the redirect carried no code")),
            ),
        };
        let _ = conn
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
        return outcome;
    }
}
