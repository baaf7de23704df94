//! The audit event: what one record says. Versioned by
//! [`SCHEMA_VERSION`]; the field reference is `docs/audit-schema.md` in this
//! crate.
//!
//! Every optional field is left out of the record when empty, so a record
//! is as short as what happened. Adding an optional field is compatible
//! (readers ignore unknown fields); renaming or removing one, or changing a
//! meaning, bumps [`SCHEMA_VERSION`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The version of the event schema this crate writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One audit event: a decision on a request, or a lifecycle fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// [`SCHEMA_VERSION`] when the event was written.
    pub schema_version: u32,
    /// When it happened (RFC 3339, UTC, nanoseconds).
    pub time: Timestamp,
    pub kind: EventKind,
    /// Warden's id for the request; what a client sees in a generic error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// W3C trace id (32 hex digits) of the request's span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// MCP session id (when the protocol era has sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The client's network address (`ip:port` or `ip`; `stdio` for stdio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<PrincipalFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenFacts>,
    /// The credential Warden attached to the upstream call (never the
    /// client's, never a token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_credential: Option<UpstreamCredentialFacts>,
    /// Upstream server name as configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The tool (prompt, resource URI) as the upstream names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// server + tool + manifest hash, as the registry spells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_tool_id: Option<String>,
    /// `sha256:<hex>` of the pinned manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_hash: Option<String>,
    /// The MCP method or policy action (`tools/call`, `resources/read`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_tier: Option<RiskTier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Ids of the policies that decided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_ids: Vec<String>,
    /// Stable reason code of a denial or failure (`insufficient_scope`,
    /// `tool_drifted`, `rate_limited`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// Scopes the token carried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalFacts>,
    /// `sha256:<hex>` of the RFC 8785 canonical arguments ([`crate::input_hash`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_hash: Option<String>,
    /// The arguments, only where configured, after redaction
    /// ([`crate::Redactor::redact_value`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputFacts>,
    /// Time from the request's arrival to the response, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// `ok`, `error:<json-rpc code>`, `http:<status>`, `timeout`, `unavailable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<String>,
    /// Facts of lifecycle kinds (server, lists, drift, reloads, auth failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Box<Lifecycle>>,
    /// Set on [`EventKind::Anomaly`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<Box<AnomalyAlert>>,
    /// Set on [`EventKind::Checkpoint`] (written by the audit writer only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Box<Checkpoint>>,
    /// Set on [`EventKind::Retention`] (written by the audit writer only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Box<RetentionFacts>>,
}

impl Event {
    /// An event of `kind` happening now, every other field empty. Fill the
    /// rest with struct update syntax: `Event { tool: Some(..), ..Event::new(kind) }`.
    pub fn new(kind: EventKind) -> Event {
        Event::at(kind, Timestamp::now())
    }

    /// An event of `kind` at `time`.
    pub fn at(kind: EventKind, time: Timestamp) -> Event {
        Event {
            schema_version: SCHEMA_VERSION,
            time,
            kind,
            correlation_id: None,
            trace_id: None,
            session: None,
            client_addr: None,
            principal: None,
            token: None,
            server: None,
            tool: None,
            canonical_tool_id: None,
            manifest_hash: None,
            action: None,
            risk_tier: None,
            decision: None,
            policy_ids: Vec::new(),
            reason_code: None,
            scopes: Vec::new(),
            approval: None,
            input_hash: None,
            arguments: None,
            output: None,
            latency_us: None,
            upstream_status: None,
            lifecycle: None,
            anomaly: None,
            checkpoint: None,
            retention: None,
            upstream_credential: None,
        }
    }

    /// The subject of the principal, if any.
    pub fn subject(&self) -> Option<&str> {
        self.principal.as_ref().map(|p| p.subject.as_str())
    }
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A decision on a client request (`tools/call`, `resources/read`,
    /// `prompts/get`, a list) or on a server-initiated request.
    Call,
    SessionOpened,
    SessionClosed,
    /// A principal presented another principal's session id.
    SessionHijackRefused,
    ServerStarted,
    ServerDied,
    ServerRestarted,
    /// An upstream said its tools, prompts or resources changed.
    ListChanged,
    /// A live manifest differs from the pinned one.
    Drift,
    ConfigReload,
    PolicyReload,
    /// Authentication failed (rate-limited per source; see
    /// [`Lifecycle::suppressed`]).
    AuthFailure,
    /// An anomaly rule fired ([`Event::anomaly`]).
    Anomaly,
    /// A signed checkpoint of the chain ([`Event::checkpoint`]).
    Checkpoint,
    /// The writer recovered records from the journal at start.
    JournalRecovered,
    /// Retention is about to remove the oldest records of one sink
    /// ([`Event::retention`]); chained and journalled before they go, so
    /// `verify` tells pruned history from removed records.
    Retention,
    /// A circuit breaker of an upstream or tool changed state
    /// (`lifecycle.outcome`: `breaker closed -> open`; `lifecycle.error`: why).
    Breaker,
    /// A sandboxed server's egress proxy refused a destination (`action`:
    /// `host:port`; `reason_code`: why).
    EgressRefused,
    /// An approval request changed state ([`Event::approval`]: requested
    /// `pending`, `approved`, `denied`, `consumed`, `expired`).
    Approval,
    /// A client root declared to a sandboxed server (`action`: the root):
    /// refused (`decision: deny`, `reason_code`: why), or mounted
    /// (`decision: allow`, `lifecycle.outcome: remount`).
    Roots,
    /// A sandboxed server opened a tripwire: a decoy where one of the
    /// host's secrets or Warden's own files would be (`action`: the path).
    Tripwire,
    /// The sandbox refused a sandboxed server a write, a direct network
    /// connect or forks past its process limit (`reason_code`: `write`,
    /// `connect`, `process_limit`; `action`: the path, the address, the
    /// count).
    SandboxRefused,
}

impl EventKind {
    /// The name used in records and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Call => "call",
            EventKind::SessionOpened => "session_opened",
            EventKind::SessionClosed => "session_closed",
            EventKind::SessionHijackRefused => "session_hijack_refused",
            EventKind::ServerStarted => "server_started",
            EventKind::ServerDied => "server_died",
            EventKind::ServerRestarted => "server_restarted",
            EventKind::ListChanged => "list_changed",
            EventKind::Drift => "drift",
            EventKind::ConfigReload => "config_reload",
            EventKind::PolicyReload => "policy_reload",
            EventKind::AuthFailure => "auth_failure",
            EventKind::Anomaly => "anomaly",
            EventKind::Checkpoint => "checkpoint",
            EventKind::JournalRecovered => "journal_recovered",
            EventKind::Retention => "retention",
            EventKind::Breaker => "breaker",
            EventKind::EgressRefused => "egress_refused",
            EventKind::Approval => "approval",
            EventKind::Roots => "roots",
            EventKind::Tripwire => "tripwire",
            EventKind::SandboxRefused => "sandbox_refused",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tool's risk tier; decides the durability of its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskTier {
    Low,
    Medium,
    High,
    Critical,
}

impl RiskTier {
    pub const ALL: [RiskTier; 4] = [
        RiskTier::Low,
        RiskTier::Medium,
        RiskTier::High,
        RiskTier::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskTier::Low => "low",
            RiskTier::Medium => "medium",
            RiskTier::High => "high",
            RiskTier::Critical => "critical",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<RiskTier> {
        RiskTier::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The outcome of authorization for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
    /// Held for a human approval ([`Event::approval`] says what happened).
    Hold,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Hold => "hold",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Decision> {
        [Decision::Allow, Decision::Deny, Decision::Hold]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// Who called.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalFacts {
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// Facts about the credential — never the credential itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenFacts {
    /// `jwt`, `api_key`, `mtls`, `local`, `anonymous`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
    /// [`TokenFacts::hash_jti`] of the token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti_hash: Option<String>,
    /// The signing key's id (`kid`) a refused token named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

impl TokenFacts {
    /// `sha256:<hex>` of a token id: enough to correlate uses of one token,
    /// useless for replaying it.
    pub fn hash_jti(jti: &str) -> String {
        crate::hash::sha256_prefixed(jti.as_bytes())
    }
}

/// Which credential an upstream call carried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamCredentialFacts {
    /// `static` or `mint`.
    pub mode: String,
    /// [`TokenFacts::hash_jti`] of a minted token's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id_hash: Option<String>,
}

/// A human approval attached to a held call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `pending`, `approved`, `denied`, `consumed`, `expired`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    /// The approver's reason (approved or denied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_ticket: Option<String>,
    /// Decided in the caller's own client (elicitation), not out of band.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_band: bool,
    /// How long the decision took from the request, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// What came back: classes and counts, never values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFacts {
    /// Data classes found (`secret`, `pii`, `injection`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// Findings per rule or class, counted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub findings: BTreeMap<String, u64>,
    /// Bytes of the result as sent to the client.
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
}

/// Facts of lifecycle events; which are set depends on the kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// `stdio`, `http`, `sse` (server events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Exit status or reason a server died.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<String>,
    /// Restart attempt (server_restarted) or generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u64>,
    /// `tools`, `prompts`, `resources` (list_changed, drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// Drift: the pinned and the live manifest hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_hash: Option<String>,
    /// Reloads: hash of the configuration or policy set now in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// `ok`, `rejected`, `restarted`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// A reason safe to keep (never a secret or a peer's raw text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Auth failures from the same source not recorded individually since
    /// the previous record for that source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
    /// Journal recovery: records replayed into sinks, spilled events chained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<u64>,
}

/// An anomaly rule fired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyAlert {
    /// `burst`, `off_hours`, `token_reuse`.
    pub rule: String,
    /// What was observed (calls in the window, the hour, addresses seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Correlation id of the event that triggered the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

/// A signed statement "the chain reached `through_seq` with `through_hash`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub through_seq: u64,
    pub through_hash: String,
    /// First 16 hex digits of SHA-256 of the Ed25519 public key.
    pub key_id: String,
    /// Ed25519 signature (hex) of [`crate::checkpoint::signed_message`].
    pub signature: String,
}

/// What a retention record says: which sink loses which records, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionFacts {
    /// `jsonl`, `sqlite`, `postgres`.
    pub sink: String,
    /// Every record of that sink with `seq <= pruned_through` goes; the
    /// sink then starts at a signed checkpoint (`pruned_through + 1`).
    pub pruned_through: u64,
    /// Records removed by this pruning.
    pub records: u64,
    /// `max_age`, `max_size` or `rotate_keep`.
    pub reason: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A point in time with nanosecond precision, written as RFC 3339 UTC
/// (`2026-03-01T12:00:00.123456789Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(t: SystemTime) -> Timestamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Err(_) => Timestamp(0),
        }
    }

    pub fn from_unix_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos.max(0))
    }

    pub fn unix_nanos(self) -> i64 {
        self.0
    }

    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(u64::try_from(self.0).unwrap_or(0))
    }

    /// RFC 3339 (`2026-03-01T12:00:00Z`, fractions optional; `2026-03-01`
    /// for midnight UTC) into a timestamp.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let text = text.trim();
        let parsed = if text.len() == 10 {
            humantime::parse_rfc3339_weak(&format!("{text}T00:00:00Z"))
        } else {
            humantime::parse_rfc3339_weak(text)
        };
        parsed.ok().map(Timestamp::from_system_time)
    }

    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// Time since `earlier` (zero if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            humantime::format_rfc3339_nanos(self.to_system_time())
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 UTC time"))
    }
}
