//! Prometheus metrics (`prometheus-client`), rendered as OpenMetrics text:
//! serve [`Metrics::render`] with [`CONTENT_TYPE`].
//!
//! Hot path: every label combination of the per-request families
//! (`requests_total`, `request_duration_seconds`, `stage_duration_seconds`,
//! `policy_decisions_total`) is created at construction, so an update is an
//! array index and atomic adds — no lock, no allocation. Histograms are
//! [`DurationHistogram`]s (atomic buckets, sum in nanoseconds).
//!
//! Cardinality: no label value comes from a peer unchecked.
//! - `method`: only the MCP methods in [`KNOWN_METHODS`]; anything else a
//!   client sends is counted as `other`.
//! - `outcome`, `stage`, `decision`, `direction`, `event`: closed enums.
//! - `class` (guard findings), `reason` (auth failures, registry blocks):
//!   `&'static str` codes from Warden's own crates (`Finding::class`,
//!   `IdentityError::code`, …), bounded at compile time; still capped at
//!   [`MAX_LABEL_VALUES`] per family.
//! - `server`: configured server names, capped at [`MAX_LABEL_VALUES`]
//!   distinct values (the rest are `other`).
//!
//! The rare-event families (findings, auth failures, upstream events,
//! registry blocks) go through `prometheus-client`'s `Family`, which takes
//! an uncontended read lock to find a label set.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Distinct values a string-labelled family accepts before `other`.
pub const MAX_LABEL_VALUES: usize = 64;

/// The label value for anything outside a bounded set.
pub const OTHER: &str = "other";

/// MCP methods counted under their own name (client requests and
/// notifications of every protocol era).
pub const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "server/discover",
    "subscriptions/listen",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tasks/cancel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

/// Bucket upper bounds in seconds: 10 µs to 30 s.
pub const DURATION_BUCKETS: [f64; 20] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            #[allow(dead_code)]
            fn index(self) -> usize {
                self as usize
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_enum!(
    /// How a request ended, for `warden_requests_total`.
    Outcome {
        Ok => "ok",
        Error => "error",
        Unauthenticated => "unauthenticated",
        Denied => "denied",
        Blocked => "blocked",
        UpstreamError => "upstream_error",
        Timeout => "timeout",
    }
);

label_enum!(
    /// Pipeline stages; [`Stage::span_name`] is the span to open for each.
    Stage {
        Transport => "transport",
        Authenticate => "authenticate",
        Route => "route",
        Registry => "registry",
        Policy => "policy",
        InputGuard => "input_guard",
        Approval => "approval",
        Upstream => "upstream",
        OutputGuard => "output_guard",
        Audit => "audit",
    }
);

impl Stage {
    /// `warden.<stage>`.
    pub fn span_name(self) -> &'static str {
        match self {
            Stage::Transport => "warden.transport",
            Stage::Authenticate => "warden.authenticate",
            Stage::Route => "warden.route",
            Stage::Registry => "warden.registry",
            Stage::Policy => "warden.policy",
            Stage::InputGuard => "warden.input_guard",
            Stage::Approval => "warden.approval",
            Stage::Upstream => "warden.upstream",
            Stage::OutputGuard => "warden.output_guard",
            Stage::Audit => "warden.audit",
        }
    }
}

label_enum!(
    /// A policy decision.
    PolicyDecision {
        Allow => "allow",
        Deny => "deny",
        ApprovalRequired => "approval_required",
    }
);

label_enum!(
    Direction {
        Input => "input",
        Output => "output",
    }
);

label_enum!(
    /// Why the HTTP edge refused a connection or a request (the limits
    /// under `listen:` and the per-principal caps under `gateway:`), for
    /// `warden_edge_refusals_total`.
    EdgeRefusal {
        MaxConnections => "max_connections",
        MaxConnectionsPerIp => "max_connections_per_ip",
        HeaderTimeout => "header_timeout",
        WriteTimeout => "write_timeout",
        BodyTimeout => "body_timeout",
        MaxSessions => "max_sessions",
        MaxSessionsPerPrincipal => "max_sessions_per_principal",
        MaxStreamsPerPrincipal => "max_streams_per_principal",
        MaxParkedPerPrincipal => "max_parked_per_principal",
    }
);

label_enum!(
    UpstreamEvent {
        Started => "started",
        Restarted => "restarted",
        Down => "down",
        BreakerOpen => "breaker_open",
        BreakerHalfOpen => "breaker_half_open",
        BreakerClosed => "breaker_closed",
    }
);

/// The index of `method` in [`KNOWN_METHODS`], or the `other` slot.
fn method_index(method: &str) -> usize {
    KNOWN_METHODS
        .iter()
        .position(|m| *m == method)
        .unwrap_or(KNOWN_METHODS.len())
}

/// `method` if it is in [`KNOWN_METHODS`], else `other`: the bounded form
/// of a client-sent method name, for labels and span attributes.
pub fn method_name(method: &str) -> &'static str {
    method_label(method_index(method))
}

fn method_label(index: usize) -> &'static str {
    KNOWN_METHODS.get(index).copied().unwrap_or(OTHER)
}

// ----- label sets -----------------------------------------------------------

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodOutcome {
    method: &'static str,
    outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: Stage,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EdgeLabel {
    kind: EdgeRefusal,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabel {
    decision: PolicyDecision,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    class: &'static str,
    direction: Direction,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    server: String,
    tool: String,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApprovalLabel {
    status: &'static str,
}

/// What happened to an approval request (`warden_approvals_total`).
pub const APPROVAL_STATUSES: [&str; 5] = ["requested", "approved", "denied", "consumed", "expired"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DenialLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerEvent {
    server: String,
    event: UpstreamEvent,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerMode {
    server: String,
    mode: &'static str,
}

// ----- the histogram --------------------------------------------------------

/// A lock-free histogram of durations over [`DURATION_BUCKETS`].
#[derive(Clone, Debug, Default)]
pub struct DurationHistogram {
    inner: Arc<HistogramInner>,
}

#[derive(Debug, Default)]
struct HistogramInner {
    /// Per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// Bucket bounds in nanoseconds, for the comparison on the hot path.
const BUCKET_NANOS: [u64; DURATION_BUCKETS.len()] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
];

impl DurationHistogram {
    pub fn observe(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BUCKET_NANOS.partition_point(|&b| b < nanos);
        let inner = &*self.inner;
        inner.buckets[i].fetch_add(1, Ordering::Relaxed);
        inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        inner.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }
}

impl TypedMetric for DurationHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let inner = &*self.inner;
        let mut buckets = [(0.0, 0u64); DURATION_BUCKETS.len() + 1];
        let mut total = 0;
        for (i, slot) in buckets.iter_mut().enumerate() {
            let n = inner.buckets[i].load(Ordering::Relaxed);
            total += n;
            *slot = (DURATION_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), n);
        }
        // The count is the buckets' sum, so a scrape racing an update never
        // shows a count that disagrees with `+Inf`.
        let sum = inner.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<Vec<(String, String)>>(
            sum,
            total,
            &buckets,
            None::<&HashMap<usize, Exemplar<Vec<(String, String)>, f64>>>,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

// ----- the metrics ----------------------------------------------------------

/// The gateway's metrics. Cheap to clone (one `Arc`); every clone updates
/// the same series.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<MetricsInner>,
}

struct MetricsInner {
    registry: Registry,
    /// `[method][outcome]`.
    requests: Vec<Vec<Counter>>,
    /// `[method]`.
    request_duration: Vec<DurationHistogram>,
    stage_duration: Vec<DurationHistogram>,
    decisions: Vec<Counter>,
    findings: Family<FindingLabels, Counter>,
    auth_failures: Family<ReasonLabel, Counter>,
    upstream_events: Family<ServerEvent, Counter>,
    upstream_credentials: Family<ServerMode, Counter>,
    registry_blocked: Family<ReasonLabel, Counter>,
    calls: Family<CallLabels, Counter>,
    denials: Family<DenialLabel, Counter>,
    sessions_active: Gauge,
    upstreams_active: Gauge,
    /// `[kind]`.
    edge_refusals: Vec<Counter>,
    connections_open: Gauge,
    notifications_dropped: Counter,
    /// `[status]` of [`APPROVAL_STATUSES`].
    approvals: Vec<Counter>,
    approval_wait: DurationHistogram,
    bounded: Mutex<BoundedValues>,
}

/// String label values seen per family, for the cap.
#[derive(Default)]
struct BoundedValues {
    findings: HashSet<&'static str>,
    auth: HashSet<&'static str>,
    registry: HashSet<&'static str>,
    servers: HashSet<String>,
    /// (server, tool) pairs of `warden_calls_total`.
    calls: HashSet<(String, String)>,
    reasons: HashSet<String>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();

        let requests_family = Family::<MethodOutcome, Counter>::default();
        let requests = (0..=KNOWN_METHODS.len())
            .map(|m| {
                Outcome::ALL
                    .iter()
                    .map(|&outcome| {
                        requests_family
                            .get_or_create(&MethodOutcome {
                                method: method_label(m),
                                outcome,
                            })
                            .clone()
                    })
                    .collect()
            })
            .collect();
        registry.register(
            "warden_requests",
            "Client requests and notifications by MCP method and outcome",
            requests_family,
        );

        let duration_family = Family::<MethodLabel, DurationHistogram>::default();
        let request_duration = (0..=KNOWN_METHODS.len())
            .map(|m| {
                duration_family
                    .get_or_create(&MethodLabel {
                        method: method_label(m),
                    })
                    .clone()
            })
            .collect();
        registry.register_with_unit(
            "warden_request_duration",
            "Time from a request's arrival to its response, by MCP method",
            Unit::Seconds,
            duration_family,
        );

        let stage_family = Family::<StageLabel, DurationHistogram>::default();
        let stage_duration = Stage::ALL
            .iter()
            .map(|&stage| stage_family.get_or_create(&StageLabel { stage }).clone())
            .collect();
        registry.register_with_unit(
            "warden_stage_duration",
            "Time spent in each pipeline stage",
            Unit::Seconds,
            stage_family,
        );

        let decision_family = Family::<DecisionLabel, Counter>::default();
        let decisions = PolicyDecision::ALL
            .iter()
            .map(|&decision| {
                decision_family
                    .get_or_create(&DecisionLabel { decision })
                    .clone()
            })
            .collect();
        registry.register(
            "warden_policy_decisions",
            "Policy decisions",
            decision_family,
        );

        let findings = Family::<FindingLabels, Counter>::default();
        registry.register(
            "warden_guard_findings",
            "Guard findings by class and direction",
            findings.clone(),
        );
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "warden_auth_failures",
            "Failed authentications by reason code",
            auth_failures.clone(),
        );
        let upstream_events = Family::<ServerEvent, Counter>::default();
        registry.register(
            "warden_upstream_events",
            "Upstream connection lifecycle events",
            upstream_events.clone(),
        );
        let upstream_credentials = Family::<ServerMode, Counter>::default();
        registry.register(
            "warden_upstream_credentials",
            "Credentials attached to upstream calls, by server and mode (static, mint)",
            upstream_credentials.clone(),
        );
        let registry_blocked = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "warden_registry_blocked",
            "Tools and prompts blocked by the registry scanner, by reason",
            registry_blocked.clone(),
        );
        let sessions_active = Gauge::default();
        registry.register(
            "warden_sessions_active",
            "Open client sessions",
            sessions_active.clone(),
        );
        let upstreams_active = Gauge::default();
        registry.register(
            "warden_upstreams_active",
            "Connected upstream servers",
            upstreams_active.clone(),
        );
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "warden_calls",
            "Tool, prompt and resource requests by server, item and decision",
            calls.clone(),
        );
        let denials = Family::<DenialLabel, Counter>::default();
        registry.register(
            "warden_denials",
            "Refused requests by reason code",
            denials.clone(),
        );
        let edge_family = Family::<EdgeLabel, Counter>::default();
        let edge_refusals = EdgeRefusal::ALL
            .iter()
            .map(|&kind| edge_family.get_or_create(&EdgeLabel { kind }).clone())
            .collect();
        registry.register(
            "warden_edge_refusals",
            "Connections and requests refused at the HTTP edge, by the limit that refused them",
            edge_family,
        );
        let connections_open = Gauge::default();
        registry.register(
            "warden_connections_open",
            "Open client connections on the MCP listener",
            connections_open.clone(),
        );
        let notifications_dropped = Counter::default();
        registry.register(
            "warden_notifications_dropped",
            "Unsolicited notifications not relayed to a session over gateway.notifications_per_second",
            notifications_dropped.clone(),
        );

        let approvals_family = Family::<ApprovalLabel, Counter>::default();
        let approvals = APPROVAL_STATUSES
            .iter()
            .map(|&status| {
                approvals_family
                    .get_or_create(&ApprovalLabel { status })
                    .clone()
            })
            .collect();
        registry.register(
            "warden_approvals",
            "Approval requests by what became of them (requested, approved, denied, consumed, expired)",
            approvals_family,
        );
        let approval_wait = DurationHistogram::default();
        registry.register_with_unit(
            "warden_approval_wait",
            "Time from an approval request to its decision",
            Unit::Seconds,
            approval_wait.clone(),
        );

        Metrics {
            inner: Arc::new(MetricsInner {
                registry,
                requests,
                request_duration,
                stage_duration,
                decisions,
                findings,
                auth_failures,
                upstream_events,
                upstream_credentials,
                registry_blocked,
                calls,
                denials,
                sessions_active,
                upstreams_active,
                edge_refusals,
                connections_open,
                notifications_dropped,
                approvals,
                approval_wait,
                bounded: Mutex::new(BoundedValues::default()),
            }),
        }
    }

    /// One finished request: `warden_requests_total` and
    /// `warden_request_duration_seconds`. `method` is what the client sent;
    /// unknown methods count as `other`.
    pub fn request(&self, method: &str, outcome: Outcome, elapsed: Duration) {
        let m = method_index(method);
        self.inner.requests[m][outcome.index()].inc();
        self.inner.request_duration[m].observe(elapsed);
    }

    pub fn stage(&self, stage: Stage, elapsed: Duration) {
        self.inner.stage_duration[stage.index()].observe(elapsed);
    }

    pub fn policy_decision(&self, decision: PolicyDecision) {
        self.inner.decisions[decision.index()].inc();
    }

    /// `class` is a guard class code (`secret`, `pii`, `injection`, …).
    pub fn guard_finding(&self, class: &'static str, direction: Direction, count: u64) {
        let class = self.bounded(class, |b| &mut b.findings);
        self.inner
            .findings
            .get_or_create(&FindingLabels { class, direction })
            .inc_by(count);
    }

    /// `reason` is the identity crate's error code (`expired`, `missing`, …).
    pub fn auth_failure(&self, reason: &'static str) {
        let reason = self.bounded(reason, |b| &mut b.auth);
        self.inner
            .auth_failures
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// `server` is the configured server name.
    pub fn upstream_event(&self, server: &str, event: UpstreamEvent) {
        let server = self.bounded_server(server);
        self.inner
            .upstream_events
            .get_or_create(&ServerEvent { server, event })
            .inc();
    }

    /// A credential attached to a call to `server` (a configured name) in
    /// `mode` (`static`, `mint`).
    pub fn upstream_credential(&self, server: &str, mode: &'static str) {
        let server = self.bounded_server(server);
        self.inner
            .upstream_credentials
            .get_or_create(&ServerMode { server, mode })
            .inc();
    }

    fn bounded_server(&self, server: &str) -> String {
        let mut b = self.lock_bounded();
        if b.servers.contains(server) {
            server.to_owned()
        } else if b.servers.len() < MAX_LABEL_VALUES {
            b.servers.insert(server.to_owned());
            server.to_owned()
        } else {
            OTHER.to_owned()
        }
    }

    pub fn registry_blocked(&self, reason: &'static str) {
        let reason = self.bounded(reason, |b| &mut b.registry);
        self.inner
            .registry_blocked
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// One request for an item: `server` is the configured server, `item`
    /// the upstream's tool or prompt name (or a resource URI), `decision`
    /// `allow`, `deny`, `hold` or `error`. At most [`MAX_LABEL_VALUES`]
    /// (server, item) pairs get series of their own; the rest are `other`.
    pub fn call(&self, server: &str, item: &str, decision: &'static str) {
        let (server, tool) = {
            let mut b = self.lock_bounded();
            let key = (server.to_owned(), item.to_owned());
            if b.calls.contains(&key) || b.calls.len() < MAX_LABEL_VALUES {
                b.calls.insert(key.clone());
                key
            } else {
                (OTHER.to_owned(), OTHER.to_owned())
            }
        };
        self.inner
            .calls
            .get_or_create(&CallLabels {
                server,
                tool,
                decision,
            })
            .inc();
    }

    /// A refused request, by reason code (bounded like [`Metrics::call`]).
    pub fn denial(&self, reason: &str) {
        let reason = {
            let mut b = self.lock_bounded();
            if b.reasons.contains(reason) || b.reasons.len() < MAX_LABEL_VALUES {
                b.reasons.insert(reason.to_owned());
                reason.to_owned()
            } else {
                OTHER.to_owned()
            }
        };
        self.inner
            .denials
            .get_or_create(&DenialLabel { reason })
            .inc();
    }

    /// An approval request changed state (`status` one of
    /// [`APPROVAL_STATUSES`]; anything else is ignored). A decision also
    /// observes how long it took.
    pub fn approval(&self, status: &str, waited: Option<Duration>) {
        if let Some(i) = APPROVAL_STATUSES.iter().position(|s| *s == status) {
            self.inner.approvals[i].inc();
        }
        if let Some(d) = waited {
            self.inner.approval_wait.observe(d);
        }
    }

    /// A connection or request refused at the HTTP edge.
    pub fn edge_refusal(&self, kind: EdgeRefusal) {
        self.inner.edge_refusals[kind.index()].inc();
    }

    /// Open client connections (set by the accept loop).
    pub fn connections_open(&self) -> &Gauge {
        &self.inner.connections_open
    }

    /// One notification not relayed: over its session's rate.
    pub fn notification_dropped(&self) {
        self.inner.notifications_dropped.inc();
    }

    pub fn sessions_active(&self) -> &Gauge {
        &self.inner.sessions_active
    }

    pub fn upstreams_active(&self) -> &Gauge {
        &self.inner.upstreams_active
    }

    /// The OpenMetrics text exposition (serve with [`CONTENT_TYPE`]):
    /// Warden's families, then `extra` (values read at scrape time), then
    /// `# EOF`.
    pub fn render(&self, extra: &[ExtraMetric]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail; an encoder error would be a bug
        // in a metric, and the scrape still gets everything before it.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.inner.registry);
        render_extra(&mut out, extra);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }

    fn lock_bounded(&self) -> std::sync::MutexGuard<'_, BoundedValues> {
        self.inner
            .bounded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn bounded(
        &self,
        value: &'static str,
        set: impl FnOnce(&mut BoundedValues) -> &mut HashSet<&'static str>,
    ) -> &'static str {
        let mut b = self.lock_bounded();
        let seen = set(&mut b);
        if seen.contains(value) {
            value
        } else if seen.len() < MAX_LABEL_VALUES {
            seen.insert(value);
            value
        } else {
            OTHER
        }
    }
}

// ----- metrics read at scrape time ------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraKind {
    Counter,
    Gauge,
}

/// A value the caller reads at scrape time (the audit log's counters, …).
/// Entries with the same name are one family: give them adjacently, with
/// the same kind and help. Names must match `[a-zA-Z_:][a-zA-Z0-9_:]*`
/// (others are skipped); a counter's name is written without `_total`,
/// which the exposition adds.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraMetric {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: ExtraKind,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl ExtraMetric {
    pub fn counter(name: &'static str, help: &'static str, value: u64) -> ExtraMetric {
        ExtraMetric {
            name,
            help,
            kind: ExtraKind::Counter,
            labels: Vec::new(),
            value: value as f64,
        }
    }

    pub fn gauge(name: &'static str, help: &'static str, value: f64) -> ExtraMetric {
        ExtraMetric {
            name,
            help,
            kind: ExtraKind::Gauge,
            labels: Vec::new(),
            value,
        }
    }

    pub fn with_label(mut self, name: &'static str, value: impl Into<String>) -> ExtraMetric {
        self.labels.push((name, value.into()));
        self
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn render_extra(out: &mut String, extra: &[ExtraMetric]) {
    let mut current: Option<&str> = None;
    for m in extra {
        if !is_metric_name(m.name) || !m.labels.iter().all(|(n, _)| is_label_name(n)) {
            continue;
        }
        if current != Some(m.name) {
            let kind = match m.kind {
                ExtraKind::Counter => "counter",
                ExtraKind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {} {}", m.name, escape_help(m.help));
            let _ = writeln!(out, "# TYPE {} {kind}", m.name);
            current = Some(m.name);
        }
        out.push_str(m.name);
        if m.kind == ExtraKind::Counter {
            out.push_str("_total");
        }
        if !m.labels.is_empty() {
            out.push('{');
            for (i, (name, value)) in m.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{name}=\"{}\"", escape_label(value));
            }
            out.push('}');
        }
        let _ = writeln!(out, " {}", format_value(m.value));
    }
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The audit trail's counters as extra metrics (`warden_audit_*`).
pub fn audit_metrics(s: &warden_audit::MetricsSnapshot) -> Vec<ExtraMetric> {
    let mut v = vec![
        ExtraMetric::counter("warden_audit_recorded", "Audit events accepted", s.recorded),
        ExtraMetric::counter(
            "warden_audit_recorded_durable",
            "Audit events recorded durably (fsync before the response)",
            s.recorded_durable,
        ),
        ExtraMetric::counter(
            "warden_audit_spilled",
            "Audit events that found the queue full and went to the journal",
            s.spilled,
        ),
        ExtraMetric::counter(
            "warden_audit_written",
            "Audit records chained by the writer",
            s.written,
        ),
        ExtraMetric::counter(
            "warden_audit_checkpoints",
            "Signed audit checkpoints written",
            s.checkpoints,
        ),
        ExtraMetric::counter(
            "warden_audit_journal_errors",
            "Audit journal write errors",
            s.journal_errors,
        ),
        ExtraMetric::counter(
            "warden_audit_recovered",
            "Audit records recovered from the journal at start",
            s.recovered,
        ),
        ExtraMetric::counter(
            "warden_audit_auth_failures_suppressed",
            "Auth-failure events counted but not recorded (per-source limit)",
            s.auth_failures_suppressed,
        ),
    ];
    let by_name = |m: &BTreeMap<&'static str, u64>| {
        m.iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect::<Vec<_>>()
    };
    for (rule, n) in by_name(&s.anomalies) {
        v.push(
            ExtraMetric::counter("warden_audit_anomalies", "Anomaly alerts by rule", n)
                .with_label("rule", rule),
        );
    }
    for (sink, n) in by_name(&s.sink_errors) {
        v.push(
            ExtraMetric::counter("warden_audit_sink_errors", "Write errors per audit sink", n)
                .with_label("sink", sink),
        );
    }
    for (sink, n) in by_name(&s.sink_lag_records) {
        v.push(
            ExtraMetric::gauge(
                "warden_audit_sink_lag_records",
                "Records a failed audit sink has not received yet",
                n as f64,
            )
            .with_label("sink", sink),
        );
    }
    v.push(ExtraMetric::gauge(
        "warden_audit_queue_depth",
        "Audit events waiting for the writer",
        s.queue_depth as f64,
    ));
    v.push(ExtraMetric::gauge(
        "warden_audit_lag_seconds",
        "How long the audit writer has been behind",
        s.lag.as_secs_f64(),
    ));
    for (sink, lag) in &s.sink_lag {
        v.push(
            ExtraMetric::gauge(
                "warden_audit_sink_lag_seconds",
                "How long an audit sink has been behind the journal (0: caught up)",
                lag.as_secs_f64(),
            )
            .with_label("sink", (*sink).to_owned()),
        );
    }
    for (sink, n) in by_name(&s.retention_pruned) {
        v.push(
            ExtraMetric::counter(
                "warden_audit_retention_pruned",
                "Audit records removed by retention, per sink",
                n,
            )
            .with_label("sink", sink),
        );
    }
    v.push(ExtraMetric::gauge(
        "warden_audit_last_seq",
        "Sequence number of the newest audit record",
        s.last_seq as f64,
    ));
    v.push(ExtraMetric::gauge(
        "warden_audit_journal_durable_seq",
        "Sequence number of the newest audit record fsync'd in the journal",
        s.journal_durable_seq as f64,
    ));
    v.push(ExtraMetric::counter(
        "warden_audit_arguments_withheld",
        "Calls whose arguments were left out of the audit record (no secret scrubber installed)",
        s.arguments_withheld,
    ));
    v
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
