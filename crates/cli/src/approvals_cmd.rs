//! `warden approvals list|show|approve|deny`: the approvals admin API of a
//! running Warden (`/approvals`), as the principal of a credential taken
//! from the environment (never from the command line, where `ps` shows it).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct Target {
    #[arg(long, short, default_value = "warden.yaml")]
    config: PathBuf,
    /// Warden's base URL (default: the configured `listen` address).
    #[arg(long)]
    url: Option<String>,
    /// The environment variable holding a bearer token (an API key goes in
    /// WARDEN_API_KEY instead).
    #[arg(long, default_value = "WARDEN_TOKEN")]
    token_env: String,
    /// One JSON document as served, instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// Requests you made or may decide, newest first.
    List {
        #[command(flatten)]
        target: Target,
        /// pending (default), approved, denied, consumed, expired or all.
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One request: the call as held (arguments with secrets redacted,
    /// targets, risk, effect, findings), who may approve, what became of it.
    Show {
        #[command(flatten)]
        target: Target,
        id: String,
    },
    /// Approve a pending request (the same call, sent again, then goes on once).
    Approve {
        #[command(flatten)]
        target: Target,
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        change_ticket: Option<String>,
    },
    /// Deny a pending request.
    Deny {
        #[command(flatten)]
        target: Target,
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

struct Api {
    base: String,
    http: reqwest::Client,
    bearer: Option<String>,
    api_key: Option<String>,
    json: bool,
}

impl Api {
    fn new(t: &Target) -> Result<Api> {
        let base = match &t.url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => {
                let cfg = crate::load(&t.config)?;
                let mut addr = cfg.listen.addr;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                let scheme = if cfg.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{addr}")
            }
        };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Ok(Api {
            base,
            http: reqwest::Client::new(),
            bearer: env(&t.token_env),
            api_key: env("WARDEN_API_KEY"),
            json: t.json,
        })
    }

    fn auth(&self, mut r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(t) = &self.bearer {
            r = r.bearer_auth(t.trim());
        }
        if let Some(k) = &self.api_key {
            r = r.header("x-api-key", k.trim());
        }
        r.timeout(std::time::Duration::from_secs(15))
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> Result<serde_json::Value> {
        let resp = self.auth(r).send().await.with_context(|| {
            format!("no Warden answers at {} (is it running? --url)", self.base)
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{}", text.trim());
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not an approvals answer", self.base))
    }
}

fn id_path(id: &str) -> Result<&str> {
    if !warden_approvals::is_id(id) {
        bail!("{id:?} is not an approval id (apr- and 12 letters or digits)");
    }
    Ok(id)
}

fn line(a: &serde_json::Value) -> String {
    let c = &a["call"];
    format!(
        "{:<17} {:<9} {:<24} {:<32} {:<10} {}",
        a["id"].as_str().unwrap_or(""),
        a["status"].as_str().unwrap_or(""),
        c["subject"].as_str().unwrap_or(""),
        format!(
            "{}/{}",
            c["server"].as_str().unwrap_or(""),
            c["item"].as_str().unwrap_or("")
        ),
        c["risk"].as_str().unwrap_or("-"),
        a["expires_at"].as_str().unwrap_or("")
    )
}

fn detail(a: &serde_json::Value) -> String {
    let c = &a["call"];
    let mut out = vec![
        format!(
            "approval   {}  ({})",
            a["id"].as_str().unwrap_or(""),
            a["status"].as_str().unwrap_or("")
        ),
        format!(
            "call       {} {} on {}",
            c["kind"].as_str().unwrap_or(""),
            c["item"].as_str().unwrap_or(""),
            c["server"].as_str().unwrap_or("")
        ),
        format!("caller     {}", c["principal"].as_str().unwrap_or("")),
        format!("arguments  {}", c["arguments"]),
        format!("hash       {}", c["args_hash"].as_str().unwrap_or("")),
    ];
    if let Some(t) = c["targets"].as_object() {
        for (k, v) in t {
            out.push(format!("target     {k} = {}", v.as_str().unwrap_or("")));
        }
    }
    out.push(format!("risk       {}", c["risk"].as_str().unwrap_or("-")));
    out.push(format!(
        "effect     {}",
        match c["read_only"].as_bool() {
            Some(true) => "read-only",
            _ => "changes state",
        }
    ));
    if let Some(e) = c["effect"].as_str() {
        out.push(format!("does       {e}"));
    }
    if let Some(f) = c["findings"].as_array().filter(|f| !f.is_empty()) {
        out.push(format!(
            "findings   {}",
            f.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push(format!(
        "approvers  {}",
        a["approvers_text"].as_str().unwrap_or("")
    ));
    if let Some(r) = c["requires"].as_array().filter(|r| !r.is_empty()) {
        out.push(format!(
            "requires   {}",
            r.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push(format!(
        "expires    {}",
        a["expires_at"].as_str().unwrap_or("")
    ));
    for (k, label) in [
        ("decided_by", "decided by"),
        ("reason", "reason    "),
        ("change_ticket", "ticket    "),
        ("decided_at", "decided at"),
        ("consumed_at", "used at   "),
    ] {
        if let Some(v) = a[k].as_str() {
            out.push(format!("{label} {v}"));
        }
    }
    out.join("\n")
}

pub async fn run(cmd: ApprovalsCommand) -> Result<()> {
    match cmd {
        ApprovalsCommand::List {
            target,
            status,
            limit,
        } => {
            if !status.bytes().all(|b| b.is_ascii_lowercase()) {
                bail!("--status: pending, approved, denied, consumed, expired or all");
            }
            let api = Api::new(&target)?;
            let v = api
                .send(api.http.get(format!(
                    "{}/approvals?status={status}&limit={limit}",
                    api.base
                )))
                .await?;
            if api.json {
                println!("{v}");
                return Ok(());
            }
            let list = v["approvals"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no {status} approvals you may see");
            }
            for a in &list {
                println!("{}", line(a));
            }
        }
        ApprovalsCommand::Show { target, id } => {
            let api = Api::new(&target)?;
            let v = api
                .send(
                    api.http
                        .get(format!("{}/approvals/{}", api.base, id_path(&id)?)),
                )
                .await?;
            if api.json {
                println!("{v}");
            } else {
                println!("{}", detail(&v));
            }
        }
        ApprovalsCommand::Approve {
            target,
            id,
            reason,
            change_ticket,
        } => decide(&target, &id, "approve", reason, change_ticket).await?,
        ApprovalsCommand::Deny { target, id, reason } => {
            decide(&target, &id, "deny", reason, None).await?;
        }
    }
    Ok(())
}

async fn decide(
    target: &Target,
    id: &str,
    verb: &str,
    reason: Option<String>,
    change_ticket: Option<String>,
) -> Result<()> {
    let api = Api::new(target)?;
    let body = serde_json::json!({ "reason": reason, "change_ticket": change_ticket });
    let v = api
        .send(
            api.http
                .post(format!("{}/approvals/{}/{verb}", api.base, id_path(id)?))
                .json(&body),
        )
        .await?;
    if api.json {
        println!("{v}");
    } else {
        println!(
            "{} {}",
            v["id"].as_str().unwrap_or(id),
            v["status"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// Starts the approval store the configuration names (before serving).
pub async fn start(
    settings: &warden_approvals::ApprovalSettings,
    _config_path: Option<&Path>,
) -> Result<std::sync::Arc<warden_approvals::Approvals>> {
    warden_approvals::Approvals::start(settings.clone())
        .await
        .context("approvals: cannot open the approval store")
}
