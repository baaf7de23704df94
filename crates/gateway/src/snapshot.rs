//! The running configuration, compiled once and swapped atomically.

use std::collections::HashMap;
use std::sync::Arc;

use warden_config::{Config, ServerConfig};
use warden_protocol::Limits;

use crate::federation::Namer;

/// The servers and tools one MCP endpoint exposes.
#[derive(Debug, Clone)]
pub struct VirtualRoute {
    pub name: String,
    pub servers: Vec<String>,
    /// Glob patterns over exposed tool names; `None` = every tool.
    pub tools: Option<Vec<String>>,
    /// `server__name` (true) or names unchanged (one server only).
    pub namespace: bool,
}

impl VirtualRoute {
    pub fn exposes_server(&self, server: &str) -> bool {
        self.servers.iter().any(|s| s == server)
    }

    /// The name a client sees for an upstream's tool or prompt.
    pub fn expose(&self, namer: &Namer, server: &str, name: &str) -> Option<String> {
        if self.namespace {
            namer.expose(server, name)
        } else {
            crate::federation::is_valid_exposed_name(name).then(|| name.to_owned())
        }
    }

    /// The server and upstream name behind an exposed name, if this
    /// virtual server exposes that server.
    pub fn resolve<'a>(&'a self, namer: &Namer, exposed: &'a str) -> Option<(&'a str, &'a str)> {
        let (server, name) = if self.namespace {
            namer.split(exposed)?
        } else {
            (self.servers.first()?.as_str(), exposed)
        };
        self.exposes_server(server).then_some((server, name))
    }

    pub fn exposes_tool(&self, exposed: &str) -> bool {
        match &self.tools {
            None => true,
            Some(patterns) => patterns
                .iter()
                .any(|p| warden_config::glob_match(p, exposed)),
        }
    }
}

/// Threat T02 at run time: every tool and prompt an upstream lists, and
/// every tool before it is called, is scanned; a `Block` verdict hides it.
#[derive(Default)]
pub struct ManifestScanner {
    scanner: warden_registry::Scanner,
    verdicts: std::sync::Mutex<HashMap<[u8; 32], Arc<ScanOutcome>>>,
}

/// What the scanner decided about one item.
#[derive(Debug)]
pub struct ScanOutcome {
    pub blocked: bool,
    /// Rule ids that fired (for the audit log; never item text).
    pub rules: Vec<&'static str>,
}

/// Bound of the verdict cache; cleared when full (items are re-scanned).
const MAX_CACHED_VERDICTS: usize = 16 * 1024;

impl ManifestScanner {
    pub fn scan(&self, item_json: &str) -> Arc<ScanOutcome> {
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::digest(item_json.as_bytes()).into();
        if let Some(v) = crate::session::lock(&self.verdicts).get(&key) {
            return v.clone();
        }
        let outcome = Arc::new(
            match serde_json::from_str::<&serde_json::value::RawValue>(item_json) {
                Ok(item) => {
                    let (verdict, findings) = self.scanner.scan_manifest(item);
                    ScanOutcome {
                        blocked: verdict == warden_registry::Verdict::Block,
                        rules: findings.iter().map(|f| f.rule).collect(),
                    }
                }
                // Not JSON: nothing a client should be shown.
                Err(_) => ScanOutcome {
                    blocked: true,
                    rules: vec!["manifest.not_json"],
                },
            },
        );
        let mut g = crate::session::lock(&self.verdicts);
        if g.len() >= MAX_CACHED_VERDICTS {
            g.clear();
        }
        g.insert(key, outcome.clone());
        outcome
    }
}

/// Why a configuration could not be compiled (it was valid YAML and
/// passed `warden_config`, but a stage refused it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    #[error("guards: {0}")]
    Guard(#[from] warden_guard::GuardError),
    #[error("authorization: {0}")]
    Policy(#[from] warden_policy::PolicyError),
}

/// A validated, compiled configuration. The request path reads only this.
pub struct Snapshot {
    pub config: Config,
    /// Input and output guardrails, compiled.
    pub guard: warden_guard::Guard,
    /// The manifest poisoning scanner, with verdicts cached by the SHA-256
    /// of the exact item text (a changed byte is a new item).
    pub scanner: ManifestScanner,
    pub namer: Namer,
    /// Stage 5, compiled: `None` when no `authorization:` is configured.
    pub policy: Option<warden_policy::PolicyEngine>,
    pub limits: Limits,
    pub upstream_limits: Limits,
    servers: HashMap<String, Arc<ServerConfig>>,
    routes: HashMap<String, Arc<VirtualRoute>>,
}

impl Snapshot {
    pub fn compile(config: Config) -> Result<Snapshot, CompileError> {
        let guard = warden_guard::Guard::new(&config.guards)?;
        let policy = match &config.authorization {
            None => None,
            Some(settings) => {
                let catalog = warden_policy::Catalog {
                    servers: config.servers.iter().map(|s| (*s.facts).clone()).collect(),
                };
                Some(warden_policy::PolicyEngine::compile(settings, &catalog)?)
            }
        };
        let servers: HashMap<String, Arc<ServerConfig>> = config
            .servers
            .iter()
            .map(|s| (s.name.clone(), Arc::new(s.clone())))
            .collect();
        let mut routes = HashMap::new();
        routes.insert(
            String::new(),
            Arc::new(VirtualRoute {
                name: String::new(),
                servers: config.servers.iter().map(|s| s.name.clone()).collect(),
                tools: None,
                namespace: true,
            }),
        );
        for vs in &config.virtual_servers {
            routes.insert(
                vs.name.clone(),
                Arc::new(VirtualRoute {
                    name: vs.name.clone(),
                    servers: vs.servers.clone(),
                    tools: vs.tools.clone(),
                    namespace: vs.namespace,
                }),
            );
        }
        let limits = Limits {
            max_bytes: config.gateway.max_body_bytes,
            max_depth: config.gateway.max_depth,
        };
        let upstream_limits = Limits {
            max_bytes: config.gateway.max_upstream_message_bytes,
            max_depth: config.gateway.max_depth,
        };
        Ok(Snapshot {
            guard,
            policy,
            scanner: ManifestScanner::default(),
            namer: Namer::new(&config.gateway.separator),
            limits,
            upstream_limits,
            servers,
            routes,
            config,
        })
    }

    pub fn server(&self, name: &str) -> Option<&Arc<ServerConfig>> {
        self.servers.get(name)
    }

    /// The route of a virtual server; `""` is the endpoint with every server.
    pub fn route(&self, virtual_server: &str) -> Option<&VirtualRoute> {
        self.routes.get(virtual_server).map(|r| &**r)
    }

    /// The route, shared (kept across awaits without holding the snapshot).
    pub fn route_arc(&self, virtual_server: &str) -> Option<Arc<VirtualRoute>> {
        self.routes.get(virtual_server).cloned()
    }
}
