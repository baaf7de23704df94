//! Operator commands that read Warden's state without serving:
//! `warden audit verify|query|tail` and `warden policy test|show|explain`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain and signed checkpoints; names the first broken
    /// record (file, line, sequence number). Exit 1 when broken.
    Verify {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        /// Verify the SQLite copy instead of the JSONL files.
        #[arg(long)]
        sqlite: bool,
    },
    /// Query the SQLite store.
    Query {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        /// Subject of the principal.
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        server: Option<String>,
        #[arg(long)]
        tool: Option<String>,
        /// allow | deny | hold
        #[arg(long)]
        decision: Option<String>,
        #[arg(long)]
        correlation_id: Option<String>,
        #[arg(long)]
        session: Option<String>,
        /// RFC 3339 time or date (`2026-03-01`).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON event per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the last records of the active JSONL file; `-f` follows.
    Tail {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        #[arg(long, short = 'n', default_value_t = 10)]
        lines: usize,
        #[arg(long, short)]
        follow: bool,
    },
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Run a file of policy test cases against the configured policies.
    /// Exit 1 when a case fails, 2 when the file cannot run.
    Test {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        cases: PathBuf,
    },
    /// Print the effective Cedar policy set (roles and approvals compiled,
    /// and every policy file), optionally with the schema.
    Show {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        #[arg(long)]
        schema: bool,
    },
    /// Explain the decision for one request, given in YAML or JSON with the
    /// keys of a test case, e.g.
    /// `{principal: {subject: ann, roles: [analyst]}, action: call_tool, server: github, name: issue.read}`.
    /// Exit 0 when allowed, 1 otherwise.
    Explain {
        #[arg(long, short, default_value = "warden.yaml")]
        config: PathBuf,
        request: String,
    },
}

/// Exit status of a command that answers yes or no.
pub enum Verdict {
    Yes,
    No,
}

pub fn audit(command: AuditCommand) -> Result<Verdict> {
    match command {
        AuditCommand::Verify { config, sqlite } => {
            let cfg = crate::load(&config)?;
            let settings: &warden_audit::AuditSettings = &cfg.audit;
            let public_key =
                warden_audit::checkpoint::public_key_path(&settings.checkpoint.signing_key);
            let public_key = public_key.exists().then_some(public_key);
            // The main trail, then each `warden stdio` process's own.
            let trails = settings.process_trails();
            let mut all_ok = true;
            for (name, trail, required) in std::iter::once(("main".to_owned(), settings, true))
                .chain(trails.iter().map(|(n, t)| (n.clone(), t, false)))
            {
                let Some(report) = verify_trail(trail, sqlite, public_key.clone(), required)?
                else {
                    continue;
                };
                if !trails.is_empty() {
                    println!("trail {name}:");
                }
                println!("{report}");
                all_ok &= report.is_ok();
            }
            Ok(if all_ok { Verdict::Yes } else { Verdict::No })
        }
        AuditCommand::Query {
            config,
            principal,
            tenant,
            server,
            tool,
            decision,
            correlation_id,
            session,
            since,
            until,
            limit,
            json,
        } => {
            let cfg = crate::load(&config)?;
            let db = sqlite_path(&cfg.audit)?;
            let time = |what: &str, t: Option<String>| -> Result<Option<warden_audit::Timestamp>> {
                t.map(|t| {
                    warden_audit::Timestamp::parse(&t)
                        .with_context(|| format!("--{what}: not an RFC 3339 time or a date: {t:?}"))
                })
                .transpose()
            };
            let decision = decision
                .map(|d| {
                    warden_audit::Filter::parse_decision(&d).with_context(|| {
                        format!("--decision: expected allow, deny or hold, got {d:?}")
                    })
                })
                .transpose()?;
            let filter = warden_audit::Filter {
                principal,
                tenant,
                server,
                tool,
                decision,
                correlation_id,
                session,
                since: time("since", since)?,
                until: time("until", until)?,
                limit: Some(limit),
                ..Default::default()
            };
            // Every trail of the deployment: the main one and each
            // `warden stdio` process's own, merged in time order.
            let mut events = warden_audit::query(db, &filter)?;
            for (_, trail) in cfg.audit.process_trails() {
                if let Some(db) = trail
                    .sqlite
                    .as_ref()
                    .map(|s| &s.path)
                    .filter(|p| p.exists())
                {
                    events.extend(warden_audit::query(db, &filter)?);
                }
            }
            events.sort_by_key(|e| e.time);
            // Oldest first, like one store's answer.
            events.truncate(limit);
            if json {
                for e in &events {
                    println!("{}", serde_json::to_string(e)?);
                }
            } else {
                print_table(&events);
            }
            Ok(Verdict::Yes)
        }
        AuditCommand::Tail {
            config,
            lines,
            follow,
        } => {
            let cfg = crate::load(&config)?;
            let path = &cfg
                .audit
                .jsonl
                .as_ref()
                .context("audit: no jsonl sink is configured")?
                .path;
            let tail = warden_audit::tail(
                path,
                warden_audit::TailOptions {
                    last: lines,
                    follow,
                    ..Default::default()
                },
            )?;
            for record in tail {
                println!("{}", record?.line);
            }
            Ok(Verdict::Yes)
        }
    }
}

/// Verifies one trail's JSONL files (or its SQLite copy). `required`: the
/// main trail must exist; a process trail with nothing to verify is
/// skipped (`None`).
fn verify_trail(
    settings: &warden_audit::AuditSettings,
    sqlite: bool,
    public_key: Option<PathBuf>,
    required: bool,
) -> Result<Option<warden_audit::VerifyReport>> {
    if sqlite {
        let db = sqlite_path(settings)?;
        if !required && !db.exists() {
            return Ok(None);
        }
        let checkpoints = settings
            .jsonl
            .as_ref()
            .map(|j| warden_audit::checkpoint::side_file_for(&j.path));
        return Ok(Some(warden_audit::verify_sqlite(
            db,
            &warden_audit::VerifyOptions {
                public_key,
                checkpoints,
                ..Default::default()
            },
        )));
    }
    let files = settings.jsonl_files();
    if files.is_empty() {
        anyhow::ensure!(
            !required,
            "audit: no JSONL trail to verify (is the jsonl sink configured and has Warden run?)"
        );
        return Ok(None);
    }
    Ok(Some(warden_audit::verify(&files, public_key.as_deref())))
}

fn sqlite_path(settings: &warden_audit::AuditSettings) -> Result<&Path> {
    Ok(&settings
        .sqlite
        .as_ref()
        .context("audit: no sqlite sink is configured")?
        .path)
}

fn print_table(events: &[warden_audit::Event]) {
    println!(
        "{:<30} {:<10} {:<20} {:<28} {:<8} {:<22} {:>9}",
        "time", "kind", "principal", "server/tool", "decision", "reason", "latency"
    );
    for e in events {
        let target = match (&e.server, &e.tool) {
            (Some(s), Some(t)) => format!("{s}/{t}"),
            (Some(s), None) => s.clone(),
            _ => String::new(),
        };
        println!(
            "{:<30} {:<10} {:<20} {:<28} {:<8} {:<22} {:>9}",
            e.time.to_string(),
            e.kind.as_str(),
            clip(e.subject().unwrap_or("-"), 20),
            clip(&target, 28),
            e.decision.map(|d| d.as_str()).unwrap_or("-"),
            clip(e.reason_code.as_deref().unwrap_or("-"), 22),
            e.latency_us.map(|us| format!("{us}µs")).unwrap_or_default(),
        );
    }
}

fn clip(s: &str, n: usize) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    if s.chars().count() <= n {
        s
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

pub fn policy(command: PolicyCommand) -> Result<Verdict> {
    let config = match &command {
        PolicyCommand::Test { config, .. }
        | PolicyCommand::Show { config, .. }
        | PolicyCommand::Explain { config, .. } => config.clone(),
    };
    let engine = engine(&config)?;
    match command {
        PolicyCommand::Test { cases, .. } => {
            let text = std::fs::read_to_string(&cases)
                .with_context(|| format!("cannot read {}", cases.display()))?;
            let report = warden_policy::run_test_cases(&engine, &text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", cases.display()))?;
            print!("{report}");
            Ok(if report.success() {
                Verdict::Yes
            } else {
                Verdict::No
            })
        }
        PolicyCommand::Show { schema, .. } => {
            if schema {
                println!("{}", engine.schema_text());
            }
            print!("{}", engine.effective_policies());
            Ok(Verdict::Yes)
        }
        PolicyCommand::Explain { request, .. } => {
            let spec: warden_policy::RequestSpec =
                serde_saphyr::from_str(&request).map_err(|e| anyhow::anyhow!("request: {e}"))?;
            let explanation = spec
                .with_request(|req| engine.explain(req))
                .map_err(|e| anyhow::anyhow!("request: {e}"))?;
            print!("{explanation}");
            Ok(if explanation.decision.is_allow() {
                Verdict::Yes
            } else {
                Verdict::No
            })
        }
    }
}

fn engine(config: &Path) -> Result<warden_policy::PolicyEngine> {
    let cfg = crate::load(config)?;
    let settings = cfg
        .authorization
        .as_deref()
        .context("this configuration has no `authorization:` section")?;
    let catalog = warden_policy::Catalog {
        servers: cfg.servers.iter().map(|s| (*s.facts).clone()).collect(),
    };
    warden_policy::PolicyEngine::compile(settings, &catalog)
        .map_err(|e| anyhow::anyhow!("authorization: {e}"))
}
