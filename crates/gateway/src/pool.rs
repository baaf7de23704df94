//! Upstream connections, created lazily per isolation key, shared by the
//! sessions that need them, closed when the last one leaves or when idle.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use tokio::sync::mpsc;
use warden_config::{Isolation, ServerConfig, Transport};
use warden_identity::{AuthMethod, Principal};
use warden_upstream::{
    Handshake, RestartPolicy, TransportSpec, Upstream, UpstreamEvent, UpstreamSpec,
};

use warden_protocol::message::member;

use crate::session::lock;

/// Which clients share one upstream connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PoolKey {
    Session { server: String, session: String },
    Principal { server: String, principal: String },
    Shared { server: String },
}

impl PoolKey {
    pub fn new(server: &ServerConfig, session: &str, principal: &Principal) -> Self {
        let s = server.name.clone();
        match server.isolation {
            // Without authentication every client is `anonymous`: one
            // principal in name only. Unrelated clients never share a
            // process (and with it roots, log level and subscriptions)
            // unless the configuration says `isolation: shared`.
            Isolation::Session => PoolKey::Session {
                server: s,
                session: session.to_owned(),
            },
            Isolation::Principal if principal.data().method == AuthMethod::Anonymous => {
                PoolKey::Session {
                    server: s,
                    session: session.to_owned(),
                }
            }
            Isolation::Principal => PoolKey::Principal {
                server: s,
                principal: principal.key(),
            },
            Isolation::Shared => PoolKey::Shared { server: s },
        }
    }

    /// The registry's name for the instance this key starts: drift seen on
    /// one instance blocks that instance, not the others of its server.
    pub fn registry_instance(&self) -> Arc<str> {
        match self {
            PoolKey::Session { session, .. } => format!("session:{session}").into(),
            PoolKey::Principal { principal, .. } => format!("principal:{principal}").into(),
            PoolKey::Shared { .. } => warden_registry::SHARED_INSTANCE.into(),
        }
    }
}

/// An upstream's tools (or prompts) by upstream name, each as its whole
/// JSON text with its manifest, and when the list was fetched.
#[derive(Debug)]
pub struct Definitions {
    pub items: HashMap<String, Definition>,
    pub fetched: Instant,
}

/// One cached definition: the item's JSON text as the upstream served it
/// and its manifest (canonical JSON and hash), computed once from that
/// same text when the list was fetched, so a call does not canonicalise
/// and hash the definition again.
#[derive(Debug, Clone)]
pub struct Definition {
    pub def: Arc<str>,
    /// The same text as JSON, and the members the stages read on every
    /// call (`inputSchema`, `annotations`), found once when the list was
    /// fetched rather than parsed again per call.
    pub json: Arc<RawValue>,
    pub input_schema: Option<Arc<RawValue>>,
    pub annotations: Option<Arc<RawValue>>,
    /// The registry instance of the upstream that served it.
    pub instance: Arc<str>,
    pub manifest: Arc<warden_registry::Manifest>,
    /// `manifest.hash` as text, for the audit record.
    pub hash_hex: Arc<str>,
}

impl Definition {
    /// The definition `item` (one element of a list result) as served by
    /// the upstream of registry instance `instance`, with its manifest.
    pub fn new(item: &RawValue, instance: Arc<str>, manifest: warden_registry::Manifest) -> Self {
        let owned = |v: &RawValue| Arc::<RawValue>::from(v.to_owned());
        Definition {
            def: Arc::<str>::from(item.get()),
            json: owned(item),
            input_schema: member(item, "inputSchema").map(owned),
            annotations: member(item, "annotations").map(owned),
            instance,
            hash_hex: Arc::<str>::from(manifest.hash.to_string()),
            manifest: Arc::new(manifest),
        }
    }
}

/// One live upstream connection.
#[derive(Debug)]
pub struct UpstreamHandle {
    pub instance: u64,
    pub server: String,
    pub key: PoolKey,
    /// [`PoolKey::registry_instance`], computed once.
    pub registry_instance: Arc<str>,
    pub upstream: Arc<Upstream>,
    pub call_timeout: Duration,
    /// The upstream's tool definitions (upstream name → tool JSON), dropped
    /// when the upstream announces a change or restarts, and fetched again
    /// when older than `registry.revalidate_after`: calls are checked
    /// against the pin and the schema of what the upstream serves now.
    pub tools: std::sync::Mutex<Option<Arc<Definitions>>>,
    /// The same for prompts.
    pub prompts: std::sync::Mutex<Option<Arc<Definitions>>>,
    /// Events of this upstream the gateway has finished routing.
    pub dispatched: AtomicU64,
    pub dispatched_changed: tokio::sync::Notify,
}

impl UpstreamHandle {
    /// Records that one more event was routed.
    pub fn mark_dispatched(&self) {
        self.dispatched.fetch_add(1, Ordering::Release);
        self.dispatched_changed.notify_waiters();
    }

    /// Waits until the first `n` events of this upstream were routed, so a
    /// response never overtakes the notifications sent before it. Bounded:
    /// a stuck dispatcher delays a response, never holds it.
    pub async fn wait_dispatched(&self, n: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let changed = self.dispatched_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.dispatched.load(Ordering::Acquire) >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return;
            }
        }
    }
}

struct Entry {
    handle: Arc<UpstreamHandle>,
    sessions: HashSet<String>,
    last_used: Instant,
    idle_timeout: Duration,
}

/// The upstream connections of this process.
pub struct Pool {
    entries: Mutex<HashMap<PoolKey, Entry>>,
    next_instance: AtomicU64,
}

/// What the pool needs to start an upstream.
pub struct StartSpec {
    pub server: Arc<ServerConfig>,
    pub handshake: String,
    /// [`Handshake::session_first`].
    pub session_first: bool,
    pub limits: warden_protocol::Limits,
    /// The connection's own credential (credentials stage).
    pub auth: Option<warden_upstream::AuthSource>,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            entries: Mutex::new(HashMap::new()),
            next_instance: AtomicU64::new(1),
        }
    }
}

impl Pool {
    /// The upstream for `key`, started if needed, with `session` recorded
    /// as a user. New upstreams' events go to `on_start`'s receiver.
    pub fn acquire(
        &self,
        key: &PoolKey,
        session: &str,
        spec: impl FnOnce() -> StartSpec,
        on_start: impl FnOnce(Arc<UpstreamHandle>, mpsc::Receiver<UpstreamEvent>),
    ) -> Arc<UpstreamHandle> {
        let mut started = None;
        let handle = {
            let mut g = lock(&self.entries);
            let entry = g.entry(key.clone()).or_insert_with(|| {
                let spec = spec();
                let (tx, rx) = mpsc::channel(1024);
                let upstream = Upstream::start(
                    upstream_spec(&spec),
                    Handshake {
                        params: spec.handshake,
                        session_first: spec.session_first,
                    },
                    tx,
                );
                let handle = Arc::new(UpstreamHandle {
                    instance: self.next_instance.fetch_add(1, Ordering::Relaxed),
                    server: spec.server.name.clone(),
                    key: key.clone(),
                    registry_instance: key.registry_instance(),
                    upstream,
                    call_timeout: spec.server.call_timeout,
                    tools: std::sync::Mutex::new(None),
                    prompts: std::sync::Mutex::new(None),
                    dispatched: AtomicU64::new(0),
                    dispatched_changed: tokio::sync::Notify::new(),
                });
                started = Some((handle.clone(), rx));
                Entry {
                    handle,
                    sessions: HashSet::new(),
                    last_used: Instant::now(),
                    idle_timeout: spec.server.idle_timeout,
                }
            });
            entry.last_used = Instant::now();
            if !entry.sessions.contains(session) {
                entry.sessions.insert(session.to_owned());
            }
            entry.handle.clone()
        };
        if let Some((h, rx)) = started {
            on_start(h, rx);
        }
        handle
    }

    /// Sessions attached to an upstream instance.
    pub fn sessions_of(&self, instance: u64) -> Vec<String> {
        lock(&self.entries)
            .values()
            .find(|e| e.handle.instance == instance)
            .map(|e| e.sessions.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Detaches a session; upstreams left without sessions are closed.
    pub fn release_session(&self, session: &str) -> Vec<Arc<UpstreamHandle>> {
        let mut closed = Vec::new();
        let mut g = lock(&self.entries);
        g.retain(|_, e| {
            if e.sessions.remove(session) && e.sessions.is_empty() {
                closed.push(e.handle.clone());
                false
            } else {
                true
            }
        });
        closed
    }

    /// Removes upstreams idle for longer than their idle timeout.
    pub fn reap_idle(&self) -> Vec<Arc<UpstreamHandle>> {
        let mut reaped = Vec::new();
        let now = Instant::now();
        lock(&self.entries).retain(|_, e| {
            if now.duration_since(e.last_used) > e.idle_timeout {
                reaped.push(e.handle.clone());
                false
            } else {
                true
            }
        });
        reaped
    }

    /// Removes everything (shutdown).
    pub fn drain(&self) -> Vec<Arc<UpstreamHandle>> {
        lock(&self.entries).drain().map(|(_, e)| e.handle).collect()
    }

    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The upstream crate's spec for a configured server (also used by
/// `warden registry` to reach servers without a gateway).
/// The configured era as the upstream crate knows it.
pub fn upstream_era(era: warden_config::Era) -> warden_upstream::Era {
    match era {
        warden_config::Era::Auto => warden_upstream::Era::Auto,
        warden_config::Era::Session => warden_upstream::Era::Session,
        warden_config::Era::Modern => warden_upstream::Era::Modern,
    }
}

pub fn upstream_spec(spec: &StartSpec) -> UpstreamSpec {
    let s = &spec.server;
    let transport = match &s.transport {
        Transport::Stdio {
            command,
            args,
            env,
            inherit_env,
            cwd,
        } => TransportSpec::Stdio {
            command: command.clone(),
            args: args.clone(),
            env: env
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned()))
                .collect(),
            inherit_env: inherit_env.clone(),
            cwd: cwd.clone(),
            sandbox: crate::sandbox::stdio_sandbox(s.sandbox.as_ref()),
        },
        Transport::StreamableHttp { url, headers } => TransportSpec::StreamableHttp {
            url: url.clone(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned()))
                .collect(),
        },
        Transport::Sse { url, headers } => TransportSpec::Sse {
            url: url.clone(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned()))
                .collect(),
        },
    };
    UpstreamSpec {
        name: s.name.clone(),
        transport,
        era: upstream_era(s.era),
        connect_timeout: s.connect_timeout,
        restart: RestartPolicy {
            initial_backoff: s.restart.initial_backoff,
            max_backoff: s.restart.max_backoff,
        },
        limits: spec.limits,
        auth: spec.auth.clone(),
    }
}
