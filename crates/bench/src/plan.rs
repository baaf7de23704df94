//! Command-line arguments, then the validated [`Plan`] they resolve to.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Uri};

/// The raw command line.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "warden-bench",
    version,
    about = "Drives Streamable HTTP MCP endpoints with tools/call at fixed concurrency and \
             compares them with the first target."
)]
pub struct Args {
    /// A target as NAME=URL (an http:// Streamable HTTP endpoint). Repeat
    /// it; the first target is the baseline for the ratios.
    #[arg(long = "target", value_name = "NAME=URL", required = true)]
    pub targets: Vec<String>,
    /// Concurrency levels (connections, each with one request in flight).
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    pub concurrency: Vec<usize>,
    /// How long each (target, concurrency) pair is measured.
    #[arg(long, default_value = "10s")]
    pub duration: humantime::Duration,
    /// Load applied before measuring, not counted.
    #[arg(long, default_value = "2s")]
    pub warmup: humantime::Duration,
    /// Make exactly this many calls per (target, concurrency) pair, shared
    /// among the workers, instead of a timed window (no warm-up): for
    /// profilers that count instructions per call.
    #[arg(long, value_name = "N")]
    pub calls: Option<u64>,
    /// The tool to call.
    #[arg(long, default_value = "echo")]
    pub tool: String,
    /// The tool's name at one target, as "TARGET=TOOL" (a gateway may
    /// namespace it, e.g. "warden=up__echo"). Repeat it.
    #[arg(long = "target-tool", value_name = "TARGET=TOOL")]
    pub target_tools: Vec<String>,
    /// The tool's arguments, a JSON object.
    #[arg(long, default_value = r#"{"message":"hello"}"#)]
    pub args: String,
    /// A header sent to every target, as "Name: value". Repeat it.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// A header sent to one target, as "TARGET=Name: value". Repeat it.
    #[arg(long = "target-header", value_name = "TARGET=NAME: VALUE")]
    pub target_headers: Vec<String>,
    /// A request not answered in this time counts as an error.
    #[arg(long, default_value = "30s")]
    pub timeout: humantime::Duration,
    /// How the client speaks to every target: `session` (initialize once
    /// per connection, then calls within that session) or `modern`
    /// (2026-07-28: every call self-contained, no initialize, no session).
    #[arg(long, value_enum, default_value_t = ClientEra::Session)]
    pub protocol: ClientEra,
    /// How the client speaks to one target, as "TARGET=session|modern".
    /// Repeat it.
    #[arg(long = "target-protocol", value_name = "TARGET=ERA")]
    pub target_protocols: Vec<String>,
    /// The protocol version a session client offers at initialize.
    #[arg(long, default_value = "2025-11-25")]
    pub protocol_version: String,
    /// A second reference for one target, as "TARGET=OTHER": the report also
    /// gives TARGET's throughput and p50 as ratios of OTHER's at the same
    /// concurrency (e.g. a modern client against a session client of the
    /// same gateway). Repeat it.
    #[arg(long = "target-reference", value_name = "TARGET=OTHER")]
    pub target_references: Vec<String>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Worker threads of the load generator (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Why the command line does not make a plan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    #[error("--target {0:?}: expected NAME=URL")]
    TargetSyntax(String),
    #[error("--target {name}: {reason}")]
    TargetUrl { name: String, reason: String },
    #[error("target name {0:?} is used twice")]
    DuplicateTarget(String),
    #[error("--concurrency: levels must be at least 1")]
    ZeroConcurrency,
    #[error("--duration must be longer than zero")]
    ZeroDuration,
    #[error("--calls must be at least 1")]
    ZeroCalls,
    #[error("--args must be a JSON object: {0}")]
    Arguments(String),
    #[error("header {0:?}: expected \"Name: value\" with a valid name and value")]
    Header(String),
    #[error("{0:?}: no target with that name")]
    UnknownTarget(String),
    #[error("--target-tool {0:?}: expected TARGET=TOOL")]
    TargetTool(String),
    #[error("--target-protocol {0:?}: expected TARGET=session or TARGET=modern")]
    TargetProtocol(String),
    #[error("--target-reference {0:?}: expected TARGET=OTHER, two different targets")]
    TargetReference(String),
}

/// How the client speaks MCP to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientEra {
    /// Session era: `initialize` and `notifications/initialized` once per
    /// connection, then calls carrying `Mcp-Session-Id`.
    Session,
    /// 2026-07-28: each call carries its own envelope in `params._meta` and
    /// the `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers; no
    /// initialize, no session, nothing discovered first.
    Modern,
}

impl ClientEra {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientEra::Session => "session",
            ClientEra::Modern => "modern",
        }
    }
}

/// One endpoint to drive.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub url: String,
    /// `host:port`, for connecting and for the `Host` header.
    pub authority: String,
    /// Path and query of the endpoint.
    pub path: String,
    /// The name of the tool to call there.
    pub tool: String,
    pub era: ClientEra,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Another target this one is also compared with.
    pub reference: Option<String>,
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    pub targets: Vec<Arc<Target>>,
    pub concurrency: Vec<usize>,
    pub duration: Duration,
    pub warmup: Duration,
    /// A fixed number of calls instead of the timed window (`--calls`).
    pub calls: Option<u64>,
    pub tool: String,
    /// The arguments object, serialised once.
    pub arguments: String,
    pub timeout: Duration,
    pub protocol_version: String,
}

impl Plan {
    pub fn resolve(args: &Args) -> Result<Plan, PlanError> {
        let common = args
            .headers
            .iter()
            .map(|h| header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let mut targets: Vec<Target> = Vec::new();
        for spec in &args.targets {
            let (name, url) = spec
                .split_once('=')
                .filter(|(n, u)| !n.is_empty() && !u.is_empty())
                .ok_or_else(|| PlanError::TargetSyntax(spec.clone()))?;
            if targets.iter().any(|t| t.name == name) {
                return Err(PlanError::DuplicateTarget(name.to_owned()));
            }
            let (authority, path) = endpoint(url).map_err(|reason| PlanError::TargetUrl {
                name: name.to_owned(),
                reason,
            })?;
            targets.push(Target {
                name: name.to_owned(),
                url: url.to_owned(),
                authority,
                path,
                tool: args.tool.clone(),
                era: args.protocol,
                headers: common.clone(),
                reference: None,
            });
        }
        for spec in &args.target_tools {
            let (name, tool) = spec
                .split_once('=')
                .filter(|(_, t)| !t.is_empty())
                .ok_or_else(|| PlanError::TargetTool(spec.clone()))?;
            target_mut(&mut targets, name)?.tool = tool.to_owned();
        }
        for spec in &args.target_protocols {
            let bad = || PlanError::TargetProtocol(spec.clone());
            let (name, era) = spec.split_once('=').ok_or_else(bad)?;
            let era = <ClientEra as clap::ValueEnum>::from_str(era, false).map_err(|_| bad())?;
            target_mut(&mut targets, name)?.era = era;
        }
        for spec in &args.target_references {
            let (name, other) = spec
                .split_once('=')
                .filter(|(n, o)| n != o)
                .ok_or_else(|| PlanError::TargetReference(spec.clone()))?;
            if !targets.iter().any(|t| t.name == other) {
                return Err(PlanError::UnknownTarget(other.to_owned()));
            }
            target_mut(&mut targets, name)?.reference = Some(other.to_owned());
        }
        for spec in &args.target_headers {
            let (name, h) = spec
                .split_once('=')
                .ok_or_else(|| PlanError::Header(spec.clone()))?;
            let h = header(h)?;
            target_mut(&mut targets, name)?.headers.push(h);
        }
        if args.concurrency.contains(&0) || args.concurrency.is_empty() {
            return Err(PlanError::ZeroConcurrency);
        }
        if args.calls == Some(0) {
            return Err(PlanError::ZeroCalls);
        }
        let duration: Duration = args.duration.into();
        if duration.is_zero() {
            return Err(PlanError::ZeroDuration);
        }
        let arguments: serde_json::Value =
            serde_json::from_str(&args.args).map_err(|e| PlanError::Arguments(e.to_string()))?;
        if !arguments.is_object() {
            return Err(PlanError::Arguments("not an object".to_owned()));
        }
        Ok(Plan {
            targets: targets.into_iter().map(Arc::new).collect(),
            concurrency: args.concurrency.clone(),
            duration,
            warmup: if args.calls.is_some() {
                Duration::ZERO
            } else {
                args.warmup.into()
            },
            calls: args.calls,
            tool: args.tool.clone(),
            arguments: arguments.to_string(),
            timeout: args.timeout.into(),
            protocol_version: args.protocol_version.clone(),
        })
    }
}

fn target_mut<'t>(targets: &'t mut [Target], name: &str) -> Result<&'t mut Target, PlanError> {
    targets
        .iter_mut()
        .find(|t| t.name == name)
        .ok_or_else(|| PlanError::UnknownTarget(name.to_owned()))
}

/// Splits an `http://host:port/path` URL into authority and path.
fn endpoint(url: &str) -> Result<(String, String), String> {
    let uri: Uri = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(format!("scheme {other} is not supported (use http://)")),
        None => return Err("the URL needs a scheme (http://)".to_owned()),
    }
    let host = uri.host().ok_or("the URL has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    Ok((format!("{host}:{port}"), path))
}

fn header(spec: &str) -> Result<(HeaderName, HeaderValue), PlanError> {
    let bad = || PlanError::Header(spec.to_owned());
    let (name, value) = spec.split_once(':').ok_or_else(bad)?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(argv: &[&str]) -> Result<Plan, PlanError> {
        let mut full = vec!["warden-bench"];
        full.extend_from_slice(argv);
        Plan::resolve(&Args::try_parse_from(full).unwrap())
    }

    #[test]
    fn resolves_targets_levels_and_headers() {
        let plan = parse(&[
            "--target",
            "up=http://127.0.0.1:9000/mcp",
            "--target",
            "warden=http://localhost/mcp?x=1",
            "--concurrency",
            "1,8,32",
            "--duration",
            "1500ms",
            "--header",
            "X-Run: 7",
            "--target-header",
            "warden=Authorization: Bearer abc",
            "--target-tool",
            "warden=up__echo",
        ])
        .unwrap();
        assert_eq!(plan.targets[0].tool, "echo");
        assert_eq!(plan.targets[1].tool, "up__echo");
        assert_eq!(plan.targets[0].authority, "127.0.0.1:9000");
        assert_eq!(plan.targets[1].authority, "localhost:80");
        assert_eq!(plan.targets[1].path, "/mcp?x=1");
        assert_eq!(plan.targets[0].headers.len(), 1);
        assert_eq!(plan.targets[1].headers.len(), 2);
        assert_eq!(plan.concurrency, [1, 8, 32]);
        assert_eq!(plan.duration, Duration::from_millis(1500));
        assert_eq!(plan.arguments, r#"{"message":"hello"}"#);
        assert!(plan.targets.iter().all(|t| t.era == ClientEra::Session));
        assert!(plan.targets.iter().all(|t| t.reference.is_none()));
    }

    #[test]
    fn resolves_client_eras_and_references() {
        let plan = parse(&[
            "--target",
            "up=http://127.0.0.1:9000/mcp",
            "--target",
            "gw=http://127.0.0.1:9001/mcp",
            "--target",
            "gw-modern=http://127.0.0.1:9001/mcp",
            "--target-protocol",
            "gw-modern=modern",
            "--target-reference",
            "gw-modern=gw",
        ])
        .unwrap();
        let eras: Vec<ClientEra> = plan.targets.iter().map(|t| t.era).collect();
        assert_eq!(
            eras,
            [ClientEra::Session, ClientEra::Session, ClientEra::Modern]
        );
        assert_eq!(plan.targets[2].reference.as_deref(), Some("gw"));
        let all = parse(&["--target", "a=http://x/", "--protocol", "modern"]).unwrap();
        assert_eq!(all.targets[0].era, ClientEra::Modern);
    }

    #[test]
    fn refuses_bad_input() {
        let t = "--target";
        assert!(matches!(
            parse(&[t, "nourl"]),
            Err(PlanError::TargetSyntax(_))
        ));
        assert!(matches!(
            parse(&[t, "a=https://x/mcp"]),
            Err(PlanError::TargetUrl { .. })
        ));
        assert!(matches!(
            parse(&[t, "a=http://x/", t, "a=http://y/"]),
            Err(PlanError::DuplicateTarget(_))
        ));
        assert!(matches!(
            parse(&[t, "a=http://x/", "--concurrency", "0"]),
            Err(PlanError::ZeroConcurrency)
        ));
        assert!(matches!(
            parse(&[t, "a=http://x/", "--args", "[1]"]),
            Err(PlanError::Arguments(_))
        ));
        assert!(matches!(
            parse(&[t, "a=http://x/", "--header", "no colon"]),
            Err(PlanError::Header(_))
        ));
        assert!(matches!(
            parse(&[t, "a=http://x/", "--target-header", "b=X: y"]),
            Err(PlanError::UnknownTarget(_))
        ));
        assert!(matches!(
            parse(&[t, "a=http://x/", "--target-tool", "b=echo"]),
            Err(PlanError::UnknownTarget(_))
        ));
        assert!(matches!(
            parse(&[t, "a=http://x/", "--target-tool", "a"]),
            Err(PlanError::TargetTool(_))
        ));
        assert!(matches!(
            parse(&[t, "a=http://x/", "--target-protocol", "a=2026-07-28"]),
            Err(PlanError::TargetProtocol(_))
        ));
        assert!(matches!(
            parse(&[t, "a=http://x/", "--target-protocol", "b=modern"]),
            Err(PlanError::UnknownTarget(_))
        ));
        assert!(matches!(
            parse(&[t, "a=http://x/", "--target-reference", "a=a"]),
            Err(PlanError::TargetReference(_))
        ));
        assert!(matches!(
            parse(&[t, "a=http://x/", "--target-reference", "a=b"]),
            Err(PlanError::UnknownTarget(_))
        ));
    }
}
