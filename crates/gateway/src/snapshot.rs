//! The running configuration, compiled once and swapped atomically.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use warden_config::{Config, ServerConfig, Transport};
use warden_protocol::Limits;
use warden_registry::{LockFile, Registry, RegistryError, Scanner, ServerIdentity};

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
    /// The route of a virtual server a reload removed: exposes nothing.
    pub fn gone(name: &str) -> VirtualRoute {
        VirtualRoute {
            name: name.to_owned(),
            servers: Vec::new(),
            tools: Some(Vec::new()),
            namespace: true,
        }
    }

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

/// The identity the registry pins for a configured server (threat T21):
/// the command line, the resolved executable's SHA-256 and any `npx`/`uvx`
/// package pin; or the URL. Reads and hashes the executable: call at start,
/// reload or pin time, never on the request path.
pub fn server_identity(server: &ServerConfig) -> ServerIdentity {
    match &server.transport {
        Transport::Stdio {
            command, args, env, ..
        } => {
            // The PATH the child gets: its own `env` entry, else Warden's.
            let path = env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.expose().to_owned())
                .or_else(|| std::env::var("PATH").ok());
            warden_registry::stdio_identity(command, args, path.as_deref())
        }
        Transport::StreamableHttp { url, .. } | Transport::Sse { url, .. } => {
            warden_registry::http_identity(url, None)
        }
    }
}

/// Loads the lock file; a missing one is an empty lock (strict mode then
/// exposes nothing until `warden registry pin`).
pub fn load_lock(path: &Path) -> Result<LockFile, RegistryError> {
    if path.exists() {
        LockFile::load(path)
    } else {
        Ok(LockFile::new())
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
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("credentials: {0}")]
    Credentials(#[from] warden_credentials::CredentialError),
    #[error("registry.scanner.classifier: {0}")]
    Classifier(#[from] warden_classifier::ClassifierError),
}

/// A validated, compiled configuration. The request path reads only this.
pub struct Snapshot {
    pub config: Config,
    /// Input and output guardrails, compiled.
    pub guard: warden_guard::Guard,
    /// Stage 4: the pinned manifests and server identities, the mode and
    /// the poisoning scanner. Carried over by [`crate::Gateway::reload`]
    /// when the registry settings are unchanged (drift memory survives).
    pub registry: Arc<Registry>,
    /// The operator's classifier, asked about items before they are first
    /// pinned (`registry.scanner.classifier`).
    pub classifier: Option<warden_classifier::Classifier>,
    /// Each configured server's live identity, computed once at compile.
    pub identities: HashMap<String, ServerIdentity>,
    pub namer: Namer,
    /// Stage 5, compiled: `None` when no `authorization:` is configured.
    pub policy: Option<warden_policy::PolicyEngine>,
    pub limits: Limits,
    pub upstream_limits: Limits,
    /// Stage 6's counters (`limits:`). Kept across a reload that leaves
    /// the section unchanged, so a reload resets no bucket or budget.
    pub limiter: Arc<warden_limits::Limiter>,
    /// Warden's signing keys for minted upstream tokens (`credentials:`).
    /// Kept across a reload that leaves the section unchanged: upstreams
    /// may have cached the published keys.
    pub minter: Option<Arc<warden_credentials::Minter>>,
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
        let scanner = Scanner::with_config(&config.registry.scanner)?;
        let lock = load_lock(&config.registry.lock)?;
        let registry = Arc::new(Registry::new(lock, config.registry.mode, scanner));
        let classifier = match &config.registry.classifier {
            Some(settings) => Some(warden_classifier::Classifier::new(settings.clone())?),
            None => None,
        };
        let identities = config
            .servers
            .iter()
            .map(|s| (s.name.clone(), server_identity(s)))
            .collect();
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
        let minter = match &config.credentials {
            Some(settings) => Some(Arc::new(warden_credentials::Minter::new(
                (**settings).clone(),
            )?)),
            None => None,
        };
        Ok(Snapshot {
            minter,
            guard,
            policy,
            registry,
            classifier,
            identities,
            namer: Namer::new(&config.gateway.separator),
            limits,
            upstream_limits,
            limiter: Arc::new(warden_limits::Limiter::new((*config.limits).clone())),
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
