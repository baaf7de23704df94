//! The `warden scan` report: a table for people, JSON for machines.
//!
//! Everything printed that came from a config file or a server (names,
//! excerpts, paths) is escaped: a hostile tool name cannot drive the
//! terminal. Env and header values, URL query values and secret-looking
//! arguments are never printed.

use std::fmt::Write as _;

use super::{ServerLaunch, ServerOutcome, ServerScan};
use crate::scanner::{ScanFinding, Verdict};
use crate::text::{escape_json_text, escape_untrusted, truncate_chars};

/// Counts over a whole scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScanSummary {
    pub servers: usize,
    pub scanned: usize,
    pub not_launched: usize,
    pub failed: usize,
    pub items: usize,
    pub blocked: usize,
    pub warned: usize,
    pub ok: usize,
    /// Config entries with findings of their own.
    pub config_findings: usize,
}

impl ScanSummary {
    pub fn of(results: &[ServerScan]) -> Self {
        let mut s = ScanSummary {
            servers: results.len(),
            ..Default::default()
        };
        for r in results {
            if !r.config_findings.is_empty() {
                s.config_findings += 1;
            }
            match &r.outcome {
                ServerOutcome::Scanned(items) => {
                    s.scanned += 1;
                    for i in items {
                        s.items += 1;
                        match i.verdict {
                            Verdict::Block => s.blocked += 1,
                            Verdict::Warn => s.warned += 1,
                            Verdict::Ok => s.ok += 1,
                        }
                    }
                }
                ServerOutcome::NotLaunched(_) => s.not_launched += 1,
                ServerOutcome::Failed(_) => s.failed += 1,
            }
        }
        s
    }

    /// Whether `warden scan` should exit non-zero.
    pub fn has_findings(&self) -> bool {
        self.blocked > 0 || self.warned > 0 || self.config_findings > 0
    }
}

/// The machine-readable report (`warden scan --json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScanReport {
    pub version: u32,
    pub summary: ScanSummary,
    pub servers: Vec<ServerReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServerReport {
    pub name: String,
    pub client: &'static str,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub transport: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Names only: values may be secrets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Names only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    pub disabled: bool,
    /// `scanned`, `not_launched` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub verdict: Verdict,
    pub findings: Vec<ScanFinding>,
    pub items: Vec<ItemReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ItemReport {
    pub kind: &'static str,
    pub name: String,
    pub hash: String,
    pub verdict: Verdict,
    /// Why the verdict: which findings blocked, or which instruction met
    /// which target (absent for `ok`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why: String,
    pub findings: Vec<ScanFinding>,
}

impl ScanReport {
    pub fn new(results: &[ServerScan]) -> Self {
        let servers = results
            .iter()
            .map(|r| {
                let (transport, command, args, env, url, headers) = match &r.server.launch {
                    ServerLaunch::Stdio {
                        command, args, env, ..
                    } => (
                        "stdio",
                        Some(command.clone()),
                        Some(redact_args(args)),
                        env.keys().cloned().collect(),
                        None,
                        Vec::new(),
                    ),
                    ServerLaunch::Remote { url, headers, .. } => (
                        "http",
                        None,
                        None,
                        Vec::new(),
                        Some(redact_url(url)),
                        headers.keys().cloned().collect(),
                    ),
                };
                let (status, detail, items) = match &r.outcome {
                    ServerOutcome::Scanned(items) => (
                        "scanned",
                        None,
                        items
                            .iter()
                            .map(|i| ItemReport {
                                kind: i.kind.as_str(),
                                name: i.name.clone(),
                                hash: i.hash.to_string(),
                                verdict: i.verdict,
                                why: i.why.clone(),
                                findings: i.findings.clone(),
                            })
                            .collect(),
                    ),
                    ServerOutcome::NotLaunched(why) => {
                        ("not_launched", Some(why.clone()), Vec::new())
                    }
                    ServerOutcome::Failed(why) => ("failed", Some(why.clone()), Vec::new()),
                };
                ServerReport {
                    name: r.server.name.clone(),
                    client: r.server.client.as_str(),
                    source: r.server.source.display().to_string(),
                    scope: r.server.scope.clone(),
                    transport,
                    command,
                    args,
                    env,
                    url,
                    headers,
                    disabled: r.server.disabled,
                    status,
                    detail,
                    verdict: r.verdict(),
                    findings: r.config_findings.clone(),
                    items,
                }
            })
            .collect();
        ScanReport {
            version: 1,
            summary: ScanSummary::of(results),
            servers,
        }
    }
}

struct Paint(bool);

impl Paint {
    fn verdict(&self, v: Verdict) -> String {
        let (code, text) = match v {
            Verdict::Block => ("1;31", "BLOCK"),
            Verdict::Warn => ("33", "WARN"),
            Verdict::Ok => ("32", "ok"),
        };
        self.wrap(code, text, 7)
    }

    fn wrap(&self, code: &str, text: &str, width: usize) -> String {
        let padded = format!("{text:<width$}");
        if self.0 {
            format!("\x1b[{code}m{padded}\x1b[0m")
        } else {
            padded
        }
    }

    fn dim(&self, text: &str) -> String {
        if self.0 {
            format!("\x1b[2m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// The report for a terminal: a summary line, one table per config file
/// (one row per item), then every finding with its location and excerpt.
/// `color` adds ANSI colours (pass whether stdout is a terminal).
pub fn render_report(results: &[ServerScan], color: bool) -> String {
    let paint = Paint(color);
    let s = ScanSummary::of(results);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "warden scan: {} servers ({} scanned, {} not launched, {} failed), {} items: {} blocked, {} warned, {} ok",
        s.servers, s.scanned, s.not_launched, s.failed, s.items, s.blocked, s.warned, s.ok
    );

    let mut sources: Vec<(&std::path::Path, &'static str)> = Vec::new();
    for r in results {
        let key = (r.server.source.as_path(), r.server.client.label());
        if !sources.contains(&key) {
            sources.push(key);
        }
    }
    for (source, label) in sources {
        let _ = writeln!(
            out,
            "\n{} ({label})",
            escape_untrusted(&source.display().to_string())
        );
        let mut rows: Vec<[String; 4]> = Vec::new();
        let mut verdicts: Vec<Option<Verdict>> = Vec::new();
        for r in results.iter().filter(|r| r.server.source == source) {
            let server = cell(&super::server_label(&r.server), 32);
            if !r.config_findings.is_empty() {
                rows.push([
                    server.clone(),
                    "config".into(),
                    launch_summary(&r.server.launch),
                    rules_of(&r.config_findings),
                ]);
                verdicts.push(Some(r.config_verdict));
            }
            match &r.outcome {
                ServerOutcome::Scanned(items) if items.is_empty() => {
                    rows.push([server, "-".into(), "(offers nothing)".into(), String::new()]);
                    verdicts.push(Some(Verdict::Ok));
                }
                ServerOutcome::Scanned(items) => {
                    for i in items {
                        rows.push([
                            server.clone(),
                            i.kind.as_str().into(),
                            cell(&i.name, 48),
                            rules_of(&i.findings),
                        ]);
                        verdicts.push(Some(i.verdict));
                    }
                }
                ServerOutcome::NotLaunched(why) => {
                    rows.push([
                        server,
                        "-".into(),
                        format!("not launched: {}", cell(why, 60)),
                        String::new(),
                    ]);
                    verdicts.push(None);
                }
                ServerOutcome::Failed(why) => {
                    rows.push([
                        server,
                        "-".into(),
                        format!("failed: {}", cell(why, 60)),
                        String::new(),
                    ]);
                    verdicts.push(None);
                }
            }
        }
        let w0 = rows
            .iter()
            .map(|r| r[0].chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let w1 = rows
            .iter()
            .map(|r| r[1].chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        let w2 = rows
            .iter()
            .map(|r| r[2].chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        let _ = writeln!(
            out,
            "  {:<w0$}  {:<w1$}  {:<w2$}  {:<7}  FINDINGS",
            "SERVER", "KIND", "NAME", "VERDICT"
        );
        for (row, v) in rows.iter().zip(&verdicts) {
            let verdict = match v {
                Some(v) => paint.verdict(*v),
                None => paint.wrap("35", "-", 7),
            };
            let line = format!(
                "  {:<w0$}  {:<w1$}  {:<w2$}  {verdict}  {}",
                row[0], row[1], row[2], row[3]
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }

    let mut any = false;
    for r in results {
        let label = super::server_label(&r.server);
        let mut groups: Vec<(String, Verdict, &str, &[ScanFinding])> = Vec::new();
        if !r.config_findings.is_empty() {
            groups.push((
                format!("{label} (config entry)"),
                r.config_verdict,
                "",
                &r.config_findings,
            ));
        }
        if let ServerOutcome::Scanned(items) = &r.outcome {
            for i in items.iter().filter(|i| !i.findings.is_empty()) {
                groups.push((
                    format!(
                        "{label}/{}/{}  {}",
                        i.kind,
                        i.name,
                        paint.dim(&i.hash.to_string())
                    ),
                    i.verdict,
                    &i.why,
                    &i.findings,
                ));
            }
        }
        for (title, verdict, why, findings) in groups {
            if !any {
                let _ = writeln!(out, "\nFindings");
                any = true;
            }
            let _ = writeln!(
                out,
                "\n  {}  {}",
                paint.verdict(verdict).trim_end(),
                escape_untrusted(&title)
            );
            if !why.is_empty() {
                let _ = writeln!(out, "    {}", escape_untrusted(why));
            }
            for f in findings {
                let location = if f.location.is_empty() {
                    "(whole)"
                } else {
                    f.location.as_str()
                };
                let _ = writeln!(
                    out,
                    "    {:<6}  {}  at {}",
                    f.severity.as_str(),
                    f.rule,
                    escape_untrusted(&truncate_chars(location, 80))
                );
                // Excerpts are escaped when made; escape again only what a
                // terminal would act on, in case a finding came from elsewhere.
                let _ = writeln!(out, "            {}", escape_json_text(&f.excerpt));
            }
        }
    }
    out
}

fn cell(s: &str, max: usize) -> String {
    truncate_chars(&escape_untrusted(s), max)
}

fn rules_of(findings: &[ScanFinding]) -> String {
    let mut rules: Vec<&str> = findings.iter().map(|f| f.rule).collect();
    rules.sort_unstable();
    rules.dedup();
    rules.join(", ")
}

fn launch_summary(launch: &ServerLaunch) -> String {
    match launch {
        ServerLaunch::Stdio { command, args, .. } => {
            let line = std::iter::once(command.clone())
                .chain(redact_args(args))
                .collect::<Vec<_>>()
                .join(" ");
            cell(&line, 48)
        }
        ServerLaunch::Remote { url, .. } => cell(&redact_url(url), 48),
    }
}

/// A URL with its query values and userinfo replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '#']).unwrap_or(rest.len());
            match rest[..authority_end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority_end..]),
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    match query {
        None => base,
        Some(q) => {
            let q: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) => format!("{k}=***"),
                    None => kv.to_owned(),
                })
                .collect();
            format!("{base}?{}", q.join("&"))
        }
    }
}

fn secret_word(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "auth",
        "credential",
        "bearer",
    ]
    .iter()
    .any(|w| s.contains(w))
}

/// Arguments with secret-looking values replaced: `--api-key X`,
/// `--token=X`, `Authorization: Bearer X`.
pub(crate) fn redact_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for a in args {
        if hide_next {
            out.push("***".to_owned());
            hide_next = false;
            continue;
        }
        if a.starts_with('-') {
            if let Some((k, _)) = a.split_once('=') {
                if secret_word(k) {
                    out.push(format!("{k}=***"));
                    continue;
                }
            } else if secret_word(a) {
                hide_next = true;
            }
        } else if let Some((k, _)) = a.split_once(':') {
            if secret_word(k) && !a.contains("://") {
                out.push(format!("{k}: ***"));
                continue;
            }
        }
        out.push(a.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_query_values_and_userinfo() {
        assert_eq!(
            redact_url("https://x.dev/mcp?api_key=abc&v=2"),
            "https://x.dev/mcp?api_key=***&v=***"
        );
        assert_eq!(
            redact_url("https://user:pw@x.dev/mcp"),
            "https://***@x.dev/mcp"
        );
        assert_eq!(redact_url("https://x.dev/a@b"), "https://x.dev/a@b");
        assert_eq!(
            redact_url("http://localhost:3000/mcp"),
            "http://localhost:3000/mcp"
        );
    }

    #[test]
    fn secret_arguments_are_hidden() {
        let args: Vec<String> = [
            "--api-key",
            "sk-123",
            "--token=abc",
            "--port",
            "80",
            "Authorization: Bearer x",
            "https://a:b",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            redact_args(&args),
            [
                "--api-key",
                "***",
                "--token=***",
                "--port",
                "80",
                "Authorization: ***",
                "https://a:b"
            ]
        );
    }
}
