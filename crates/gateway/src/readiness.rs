//! Readiness: `/readyz` answers 503 while a server marked `required: true`
//! cannot be reached (or the registry refuses to start it). Each required
//! server has one probe connection of its own, started with the gateway and
//! kept up by the upstream supervisor (its reconnects and backoff), so that
//! readiness says what a client would meet before any client arrives. A
//! probe never carries a client's request or identity.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tracing::info;
use warden_config::ServerConfig;
use warden_protocol::ProtocolVersion;
use warden_upstream::{Handshake, Upstream, UpstreamState};

use crate::core::Gateway;
use crate::pool::{upstream_spec, StartSpec};
use crate::session::lock;

/// The probe connections, by server name.
#[derive(Default)]
pub(crate) struct Probes {
    running: Mutex<HashMap<String, Probe>>,
}

struct Probe {
    config: Arc<ServerConfig>,
    upstream: Arc<Upstream>,
}

impl Gateway {
    /// Starts a probe for every required server that has none (or whose
    /// configuration changed), and stops the probes of servers no longer
    /// required. Called at start and after every reload.
    pub(crate) fn sync_probes(&self) {
        let snap = self.snapshot();
        let mut running = lock(&self.probes.running);
        let mut stopped: Vec<Arc<Upstream>> = Vec::new();
        running.retain(|name, probe| {
            let keep = snap
                .server(name)
                .is_some_and(|s| s.required && **s == *probe.config);
            if !keep {
                stopped.push(probe.upstream.clone());
            }
            keep
        });
        for server in snap.config.servers.iter().filter(|s| s.required) {
            if running.contains_key(&server.name)
                || self.server_refusal(&snap, &server.name).is_some()
            {
                continue;
            }
            let Ok(handle) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let config = Arc::new(server.clone());
            let spec = StartSpec {
                server: config.clone(),
                handshake: format!(
                    r#"{{"protocolVersion":"{}","capabilities":{{}},"clientInfo":{{"name":"warden-readiness","version":"{}"}}}}"#,
                    ProtocolVersion::LATEST_SESSION.as_str(),
                    env!("CARGO_PKG_VERSION")
                ),
                session_first: false,
                limits: snap.upstream_limits,
                auth: crate::pipeline::credentials::connection_auth(self, &snap, server, None),
            };
            let (tx, mut rx) = mpsc::channel(16);
            let _guard = handle.enter();
            let upstream = Upstream::start(
                upstream_spec(&spec),
                Handshake {
                    params: spec.handshake.clone(),
                    session_first: false,
                },
                tx,
            );
            // A probe has no client: what its server sends on its own is
            // read and dropped.
            handle.spawn(async move { while rx.recv().await.is_some() {} });
            info!(server = %server.name, "readiness probe started");
            running.insert(server.name.clone(), Probe { config, upstream });
        }
        drop(running);
        for upstream in stopped {
            tokio::spawn(async move { upstream.shutdown().await });
        }
    }

    /// Why Warden is not ready on account of its required servers: one
    /// line per server, empty when every one is up.
    pub fn unready_servers(&self) -> Vec<String> {
        let snap = self.snapshot();
        let running = lock(&self.probes.running);
        snap.config
            .servers
            .iter()
            .filter(|s| s.required)
            .filter_map(|s| {
                if let Some(reason) = self.server_refusal(&snap, &s.name) {
                    return Some(format!("server {} refused ({})", s.name, reason.code()));
                }
                let state = running.get(&s.name).map(|p| p.upstream.state());
                match state {
                    Some(UpstreamState::Ready) => None,
                    Some(state) => Some(format!(
                        "server {} unavailable ({})",
                        s.name,
                        describe(state)
                    )),
                    None => Some(format!("server {} not started", s.name)),
                }
            })
            .collect()
    }

    /// Stops every probe (at shutdown).
    pub(crate) async fn stop_probes(&self) {
        let all: Vec<Arc<Upstream>> = lock(&self.probes.running)
            .drain()
            .map(|(_, p)| p.upstream)
            .collect();
        for upstream in all {
            upstream.shutdown().await;
        }
    }
}

fn describe(state: UpstreamState) -> &'static str {
    match state {
        UpstreamState::Starting => "starting",
        UpstreamState::Ready => "ready",
        UpstreamState::Restarting => "reconnecting",
        UpstreamState::Failed => "failed",
        UpstreamState::Closed => "closed",
    }
}
