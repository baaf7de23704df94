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

/// A validated, compiled configuration. The request path reads only this.
pub struct Snapshot {
    pub config: Config,
    /// Input and output guardrails, compiled.
    pub guard: warden_guard::Guard,
    pub namer: Namer,
    pub limits: Limits,
    pub upstream_limits: Limits,
    servers: HashMap<String, Arc<ServerConfig>>,
    routes: HashMap<String, Arc<VirtualRoute>>,
}

impl Snapshot {
    pub fn compile(config: Config) -> Result<Snapshot, warden_guard::GuardError> {
        let guard = warden_guard::Guard::new(&config.guards)?;
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
