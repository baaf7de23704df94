//! Client sessions: who the client is, what it negotiated, and the state
//! that routes messages between it and its upstreams.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use warden_identity::Principal;
use warden_protocol::ProtocolVersion;

use crate::pool::UpstreamHandle;
use crate::stream::{EventStream, Sink};

/// The capabilities a client declared that Warden bridges to upstreams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCaps {
    pub sampling: bool,
    pub elicitation: bool,
    /// `elicitation.url` (2025-11-25): the client can send its user to a
    /// URL (an `oauth` server's authorization URL).
    pub elicitation_url: bool,
    pub roots: bool,
}

impl ClientCaps {
    /// What a client declared (`initialize`'s `capabilities`, or a 2026-07-28
    /// request's `clientCapabilities`).
    pub fn declared(caps: Option<&serde_json::value::RawValue>) -> ClientCaps {
        let has = |k: &str| {
            caps.and_then(|c| warden_protocol::message::member(c, k))
                .is_some()
        };
        ClientCaps {
            sampling: has("sampling"),
            elicitation: has("elicitation"),
            elicitation_url: caps
                .and_then(|c| warden_protocol::message::member(c, "elicitation"))
                .and_then(|e| warden_protocol::message::member(e, "url"))
                .is_some(),
            roots: has("roots"),
        }
    }

    /// The capabilities Warden declares to upstreams on this client's behalf.
    pub fn upstream_json(self) -> String {
        let mut m = serde_json::Map::new();
        if self.sampling {
            m.insert("sampling".into(), serde_json::json!({}));
        }
        if self.elicitation {
            m.insert("elicitation".into(), serde_json::json!({}));
        }
        if self.roots {
            m.insert("roots".into(), serde_json::json!({"listChanged": true}));
        }
        serde_json::Value::Object(m).to_string()
    }
}

/// How the client is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    StreamableHttp,
    LegacySse,
    Stdio,
    /// 2026-07-28 clients over HTTP: no session on the wire. Warden keeps
    /// one context per (principal, virtual server, declared capabilities)
    /// that holds what a session holds for the session era (upstreams,
    /// routes, data classes); it is never addressable by an `Mcp-Session-Id`.
    Modern,
}

/// A request of this client that is being served upstream.
#[derive(Debug, Clone)]
pub struct Inflight {
    pub server: String,
    pub upstream: Option<(u64, u64)>, // (instance, upstream-side id)
    pub sink: Sink,
    pub started: Instant,
    /// Signalled when the client cancels the request.
    pub cancel: Arc<tokio::sync::Notify>,
}

/// A server-to-client request waiting for this client's answer.
#[derive(Debug)]
pub enum PendingS2c {
    /// An upstream asked; the answer goes back to it.
    Upstream {
        upstream: Arc<UpstreamHandle>,
        /// The upstream's id, raw JSON text.
        upstream_id: String,
        /// The request was `roots/list` (its answer may become mounts).
        roots: bool,
    },
    /// Warden asked on an upstream's behalf (a 2026-07-28 upstream's input
    /// request bridged to a session-era client); the answer (the whole
    /// response message) is handed to the waiting call.
    Local(tokio::sync::oneshot::Sender<String>),
}

pub struct Session {
    pub id: String,
    pub principal: Principal,
    /// The virtual server this session was opened on ("" = all servers).
    pub virtual_server: String,
    pub channel: Channel,
    pub version: ProtocolVersion,
    pub caps: ClientCaps,
    /// The client's `initialize` params (capabilities, clientInfo), kept to
    /// hand the same capabilities to upstreams started later.
    pub client_capabilities_json: String,
    pub closed: AtomicBool,
    last_seen: AtomicU64,
    created: Instant,
    /// The standalone stream (GET stream, legacy SSE stream, stdout).
    pub standalone: RwLock<Sink>,
    pub inflight: Mutex<HashMap<String, Inflight>>,
    pub pending_s2c: Mutex<HashMap<String, PendingS2c>>,
    /// POST response streams kept for resumption, newest last.
    pub streams: Mutex<VecDeque<Arc<EventStream>>>,
    /// Resource URIs and templates learned from lists → server.
    pub resource_routes: Mutex<HashMap<String, String>>,
    /// Templates compiled once when listed, shared copy-on-write so that
    /// routing matches outside the lock.
    pub template_routes: Mutex<Arc<Vec<Arc<TemplateRoute>>>>,
    /// Data classes this session has read (toxic-flow rules).
    pub data_classes: Mutex<Vec<String>>,
    /// The level set by `logging/setLevel`, sent to 2026-07-28 upstreams in
    /// each request's `_meta` (they have no such method).
    pub log_level: Mutex<Option<String>>,
    /// `resources/subscribe` on 2026-07-28 upstreams, held as
    /// `subscriptions/listen` streams: (server, uri) → the stream's task.
    pub listens: Mutex<HashMap<(String, String), tokio::task::AbortHandle>>,
    /// 2026-07-28 contexts: how many open `subscriptions/listen` streams
    /// hold each resource subscription.
    pub listen_refs: Mutex<HashMap<String, usize>>,
    /// Resources this session subscribed to: (server, uri). An upstream
    /// shared by several sessions sends `notifications/resources/updated`
    /// only to the sessions that asked for that URI.
    pub subscribed: Mutex<std::collections::HashSet<(String, String)>>,
    /// What is left of this session's notification rate.
    pub notifications: NotificationBudget,
    s2c_counter: AtomicU64,
}

/// A resource template learned from a server's list, compiled.
#[derive(Debug)]
pub struct TemplateRoute {
    pub template: String,
    pub compiled: crate::federation::UriTemplate,
    pub server: String,
}

/// How many finished POST streams a session keeps for resumption.
const KEPT_STREAMS: usize = 16;

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        principal: Principal,
        virtual_server: String,
        channel: Channel,
        version: ProtocolVersion,
        caps: ClientCaps,
        client_capabilities_json: String,
        standalone: Sink,
    ) -> Arc<Self> {
        let created = Instant::now();
        Arc::new(Session {
            id,
            principal,
            virtual_server,
            channel,
            version,
            caps,
            client_capabilities_json,
            closed: AtomicBool::new(false),
            last_seen: AtomicU64::new(0),
            created,
            standalone: RwLock::new(standalone),
            inflight: Mutex::new(HashMap::new()),
            pending_s2c: Mutex::new(HashMap::new()),
            streams: Mutex::new(VecDeque::new()),
            resource_routes: Mutex::new(HashMap::new()),
            template_routes: Mutex::new(Arc::new(Vec::new())),
            data_classes: Mutex::new(Vec::new()),
            log_level: Mutex::new(None),
            listens: Mutex::new(HashMap::new()),
            listen_refs: Mutex::new(HashMap::new()),
            subscribed: Mutex::new(Default::default()),
            notifications: NotificationBudget::default(),
            s2c_counter: AtomicU64::new(0),
        })
    }

    pub fn touch(&self) {
        let ms = self.created.elapsed().as_millis() as u64;
        self.last_seen.store(ms, Ordering::Relaxed);
    }

    pub fn idle_for(&self) -> std::time::Duration {
        let last = std::time::Duration::from_millis(self.last_seen.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(last)
    }

    pub fn standalone(&self) -> Sink {
        lock_read(&self.standalone).clone()
    }

    pub fn set_standalone(&self, sink: Sink) {
        *self.standalone.write().unwrap_or_else(|p| p.into_inner()) = sink;
    }

    /// A fresh id for a server-to-client request, unique in this session.
    /// Sends a server-to-client request of Warden's own on `sink`: its id
    /// (raw JSON), and where the client's answer (the whole response
    /// message) arrives. Dropping the receiver abandons the question.
    pub fn ask(
        &self,
        sink: &Sink,
        method: &str,
        params: &str,
    ) -> (String, tokio::sync::oneshot::Receiver<String>) {
        let client_id = self.next_s2c_id();
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.pending_s2c).insert(client_id.clone(), PendingS2c::Local(tx));
        let text = format!(
            r#"{{"jsonrpc":"2.0","id":{client_id},"method":{},"params":{params}}}"#,
            warden_protocol::edit::json_string(method)
        );
        sink.send(text.into());
        (client_id, rx)
    }

    pub fn next_s2c_id(&self) -> String {
        let n = self.s2c_counter.fetch_add(1, Ordering::Relaxed) + 1;
        format!("\"warden-{n}\"")
    }

    pub fn keep_stream(&self, s: Arc<EventStream>) {
        let mut g = lock(&self.streams);
        if g.len() == KEPT_STREAMS {
            g.pop_front();
        }
        g.push_back(s);
    }

    pub fn find_stream(&self, id: &str) -> Option<Arc<EventStream>> {
        lock(&self.streams).iter().find(|s| s.id == id).cloned()
    }

    /// The sink for a server-to-client message from `server` that is not
    /// tied to a known request: the most recent request to that server still
    /// in flight, else the standalone stream.
    pub fn sink_for_server(&self, server: &str) -> Sink {
        let g = lock(&self.inflight);
        g.values()
            .filter(|i| i.server == server)
            .max_by_key(|i| i.started)
            .map(|i| i.sink.clone())
            .unwrap_or_else(|| self.standalone())
    }
}

/// Locks a mutex, recovering from poisoning: every critical section here is
/// a single map operation, so the data is consistent even after a panic.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock_read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

/// A new session id: 128 random bits from the OS-seeded CSPRNG, hex.
pub fn new_session_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// All live sessions, counted per owner ([`owner_key`]).
#[derive(Default)]
pub struct Sessions {
    map: RwLock<HashMap<String, Entry>>,
    owners: Slots,
}

struct Entry {
    session: Arc<Session>,
    /// The owner's count of sessions holds this one until it is removed.
    _slot: Slot,
}

/// How many sessions may exist: in all, and per owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCaps {
    pub total: usize,
    pub per_owner: usize,
}

/// Why a session was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionsFull {
    /// `gateway.max_sessions`.
    Total,
    /// `gateway.max_sessions_per_principal`.
    Owner,
}

impl Sessions {
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        lock_read(&self.map).get(id).map(|e| e.session.clone())
    }

    /// The session with `s`'s id if one exists, else `s` inserted for
    /// `owner` (unless a cap is reached). True when inserted.
    pub fn get_or_insert(
        &self,
        s: Arc<Session>,
        owner: &str,
        caps: SessionCaps,
    ) -> Result<(Arc<Session>, bool), SessionsFull> {
        let mut g = self.map.write().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = g.get(&s.id) {
            return Ok((existing.session.clone(), false));
        }
        Self::add(&mut g, &self.owners, s.clone(), owner, caps)?;
        Ok((s, true))
    }

    /// Inserts `s` for `owner` unless a cap is reached.
    pub fn insert(
        &self,
        s: Arc<Session>,
        owner: &str,
        caps: SessionCaps,
    ) -> Result<(), SessionsFull> {
        let mut g = self.map.write().unwrap_or_else(|p| p.into_inner());
        Self::add(&mut g, &self.owners, s, owner, caps)
    }

    fn add(
        map: &mut HashMap<String, Entry>,
        owners: &Slots,
        session: Arc<Session>,
        owner: &str,
        caps: SessionCaps,
    ) -> Result<(), SessionsFull> {
        if map.len() >= caps.total {
            return Err(SessionsFull::Total);
        }
        let slot = owners
            .take(owner, caps.per_owner)
            .ok_or(SessionsFull::Owner)?;
        map.insert(
            session.id.clone(),
            Entry {
                session,
                _slot: slot,
            },
        );
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let entry = self
            .map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)?;
        Some(entry.session)
    }

    pub fn all(&self) -> Vec<Arc<Session>> {
        lock_read(&self.map)
            .values()
            .map(|e| e.session.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        lock_read(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whose per-principal caps (sessions, streams, parked calls) a caller
/// counts against: its principal; for the anonymous principal, whom every
/// unauthenticated caller shares, its client address (IPv6: the /64).
pub fn owner_key(principal: &Principal, client: Option<std::net::SocketAddr>) -> String {
    match (principal.data().method, client) {
        (warden_identity::AuthMethod::Anonymous, Some(addr)) => {
            format!("anonymous@{}", crate::edge::address_key(addr.ip()))
        }
        _ => principal.key(),
    }
}

/// How many things (streams, parked calls, sessions) each owner holds,
/// for a per-owner cap. A [`Slot`] is one of them, given back when dropped.
#[derive(Default, Clone)]
pub struct Slots(Arc<Mutex<HashMap<String, usize>>>);

/// One counted thing of one owner; dropping it frees the slot.
pub struct Slot {
    slots: Slots,
    owner: String,
}

impl Slots {
    /// A slot for `owner`, unless it holds `max` already.
    pub fn take(&self, owner: &str, max: usize) -> Option<Slot> {
        let mut g = lock(&self.0);
        let held = g.entry(owner.to_owned()).or_insert(0);
        if *held >= max {
            if *held == 0 {
                g.remove(owner);
            }
            return None;
        }
        *held += 1;
        Some(Slot {
            slots: self.clone(),
            owner: owner.to_owned(),
        })
    }

    /// How many slots `owner` holds.
    pub fn held(&self, owner: &str) -> usize {
        lock(&self.0).get(owner).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut g = lock(&self.slots.0);
        if let Some(held) = g.get_mut(&self.owner) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                g.remove(&self.owner);
            }
        }
    }
}

/// The unsolicited notifications (log messages, list changes, resource
/// updates) a session may still be sent: a token bucket refilled at
/// `gateway.notifications_per_second` and holding one second's worth.
#[derive(Debug, Default)]
pub struct NotificationBudget {
    bucket: Mutex<Option<(f64, Instant)>>,
    warned: AtomicBool,
}

impl NotificationBudget {
    /// Whether one more notification may be relayed at `now`, spending it.
    pub fn admit(&self, per_second: usize, now: Instant) -> bool {
        let rate = per_second.max(1) as f64;
        let mut g = lock(&self.bucket);
        let (tokens, last) = g.get_or_insert((rate, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * rate;
        *tokens = (*tokens + refill).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// True the first time only: a session's drops are logged once.
    pub fn first_drop(&self) -> bool {
        !self.warned.swap(true, Ordering::Relaxed)
    }
}

/// The severity of an MCP log level (RFC 5424 order, `debug` lowest);
/// `None` for a level MCP does not name.
pub use warden_protocol::modern::log_level_rank as log_severity;

impl Session {
    /// Whether a log message at `level` is for this session: at or above
    /// the level it set with `logging/setLevel` (everything when it set
    /// none, or when the message's level is not one MCP names).
    pub fn wants_log(&self, level: Option<&str>) -> bool {
        let floor = lock(&self.log_level).as_deref().and_then(log_severity);
        match (floor, level.and_then(log_severity)) {
            (Some(floor), Some(level)) => level >= floor,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, principal: Principal) -> Arc<Session> {
        Session::new(
            id.into(),
            principal,
            String::new(),
            Channel::StreamableHttp,
            ProtocolVersion::LATEST_SESSION,
            ClientCaps::declared(None),
            "{}".into(),
            Sink::Broadcast(tokio::sync::broadcast::channel(1).0),
        )
    }

    #[test]
    fn one_owner_cannot_fill_the_session_table() {
        let table = Sessions::default();
        let caps = SessionCaps {
            total: 5,
            per_owner: 2,
        };
        let anon = Principal::anonymous();
        table
            .insert(session("a1", anon.clone()), "alice", caps)
            .unwrap();
        table
            .insert(session("a2", anon.clone()), "alice", caps)
            .unwrap();
        assert_eq!(
            table.insert(session("a3", anon.clone()), "alice", caps),
            Err(SessionsFull::Owner)
        );
        assert!(table.get("a3").is_none());
        table
            .insert(session("b1", anon.clone()), "bob", caps)
            .unwrap();
        table
            .insert(session("b2", anon.clone()), "bob", caps)
            .unwrap();
        table
            .insert(session("c1", anon.clone()), "carol", caps)
            .unwrap();
        assert_eq!(
            table.insert(session("c2", anon.clone()), "carol", caps),
            Err(SessionsFull::Total)
        );
        // A closed session gives its owner's slot back.
        assert!(table.remove("a1").is_some());
        assert_eq!(table.owners.held("alice"), 1);
        table
            .insert(session("a4", anon.clone()), "alice", caps)
            .unwrap();
        // An existing id is found, not counted again.
        let (found, created) = table
            .get_or_insert(session("a4", anon), "alice", caps)
            .unwrap();
        assert!(!created);
        assert_eq!(found.id, "a4");
        assert_eq!(table.owners.held("alice"), 2);
    }

    #[test]
    fn anonymous_callers_are_counted_by_address() {
        let anon = Principal::anonymous();
        let v4: std::net::SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let v6a: std::net::SocketAddr = "[2001:db8::1]:1".parse().unwrap();
        let v6b: std::net::SocketAddr = "[2001:db8::2]:2".parse().unwrap();
        assert_eq!(owner_key(&anon, Some(v4)), "anonymous@192.0.2.1");
        assert_eq!(owner_key(&anon, Some(v6a)), owner_key(&anon, Some(v6b)));
        assert_eq!(owner_key(&anon, None), "anonymous");
        let local = Principal::local("alice");
        assert_eq!(owner_key(&local, Some(v4)), "alice");
    }

    #[test]
    fn notification_budget_holds_one_second_and_refills() {
        let budget = NotificationBudget::default();
        let t0 = Instant::now();
        let sent = (0..50).filter(|_| budget.admit(10, t0)).count();
        assert_eq!(sent, 10, "a burst gets one second's worth");
        let later = t0 + std::time::Duration::from_millis(500);
        let sent = (0..50).filter(|_| budget.admit(10, later)).count();
        assert_eq!(sent, 5, "half a second refills half");
        let much_later = t0 + std::time::Duration::from_secs(60);
        let sent = (0..50).filter(|_| budget.admit(10, much_later)).count();
        assert_eq!(sent, 10, "the bucket never holds more than a second");
        assert!(budget.first_drop());
        assert!(!budget.first_drop());
    }

    #[test]
    fn severities_follow_rfc_5424() {
        assert_eq!(log_severity("debug"), Some(0));
        assert_eq!(log_severity("emergency"), Some(7));
        assert!(log_severity("warning") > log_severity("notice"));
        assert_eq!(log_severity("verbose"), None);
    }

    #[test]
    fn a_session_sees_log_messages_at_or_above_its_own_level() {
        let s = session("s", Principal::anonymous());
        assert!(s.wants_log(Some("debug")), "no level set: everything");
        *lock(&s.log_level) = Some("warning".into());
        assert!(!s.wants_log(Some("debug")));
        assert!(!s.wants_log(Some("info")));
        assert!(s.wants_log(Some("warning")));
        assert!(s.wants_log(Some("critical")));
        assert!(
            s.wants_log(Some("made-up")),
            "unknown levels are not hidden"
        );
        assert!(s.wants_log(None));
    }
}
