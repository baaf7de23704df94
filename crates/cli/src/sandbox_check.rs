//! What each stdio server's sandbox lets it read, write and reach, checked
//! before anything starts: `warden check` prints it, and `serve`/`stdio`
//! refuse to start when a sandbox cannot be had (a kernel without user
//! namespaces and no `fallback: landlock`, or mounts that would expose
//! Warden's own files).

use anyhow::{bail, Result};
use warden_config::{Config, Transport};
use warden_sandbox::{Isolation, Network, Plan, SandboxError};

/// One line (or a few) per stdio server. Fatal problems are errors; a
/// command not found yet is only noted (it fails when started, as before).
pub(crate) fn describe(cfg: &Config) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut fatal = Vec::new();
    for server in &cfg.servers {
        let Transport::Stdio {
            command,
            args,
            env,
            cwd,
            ..
        } = &server.transport
        else {
            continue;
        };
        let Some(sandbox) = warden_gateway::sandbox::stdio_sandbox(server.sandbox.as_ref()) else {
            lines.push(format!(
                "  {}: not sandboxed (profile none): Warden's user, files and network",
                server.name
            ));
            continue;
        };
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| std::ffi::OsString::from(v.expose()))
            .or_else(|| std::env::var_os("PATH"));
        match Plan::summarize(
            &sandbox.spec,
            command,
            args,
            cwd.as_deref(),
            path.as_deref(),
        ) {
            Ok(s) => {
                let mode = match s.isolation {
                    Isolation::Namespaces => "namespaces",
                    Isolation::LandlockOnly => "Landlock only",
                };
                let own: Vec<String> = s
                    .read
                    .iter()
                    .filter(|p| {
                        !p.starts_with("/usr")
                            && !p.starts_with("/etc")
                            && !p.starts_with("/bin")
                            && !p.starts_with("/sbin")
                            && !p.starts_with("/lib")
                            && !p.starts_with("/lib64")
                            && !p.starts_with("/lib32")
                            && !p.starts_with("/libx32")
                    })
                    .map(|p| p.display().to_string())
                    .collect();
                let write: Vec<String> = s.write.iter().map(|p| p.display().to_string()).collect();
                let reach = match s.network {
                    Network::None => "nothing".to_owned(),
                    Network::Proxy => format!(
                        "the egress proxy to {}",
                        if sandbox.egress.is_empty() {
                            "nowhere".to_owned()
                        } else {
                            sandbox
                                .egress
                                .iter()
                                .map(|(h, p)| format!("{h}:{p}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                };
                let roots = server
                    .sandbox
                    .as_ref()
                    .and_then(|s| s.roots.as_ref())
                    .map(|r| {
                        format!(
                            "; the client's roots under {} ({})",
                            r.allow
                                .iter()
                                .map(|p| p.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                            if r.writable { "writable" } else { "read-only" }
                        )
                    })
                    .unwrap_or_default();
                lines.push(format!(
                    "  {} ({mode}): reads the system directories{}{}; writes {}{roots}; reaches {reach}",
                    server.name,
                    if own.is_empty() { "" } else { ", " },
                    own.join(", "),
                    if write.is_empty() {
                        "only its private /tmp and HOME".to_owned()
                    } else {
                        write.join(", ")
                    },
                ));
            }
            Err(SandboxError::CommandNotFound(c)) => lines.push(format!(
                "  {}: command {c:?} not found (it cannot start)",
                server.name
            )),
            Err(e) => fatal.push(format!("server {:?}: {e}", server.name)),
        }
    }
    if !fatal.is_empty() {
        bail!("sandbox: {}", fatal.join("; "));
    }
    Ok(lines)
}
