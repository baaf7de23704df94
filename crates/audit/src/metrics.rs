//! Counters the gateway exports (Prometheus lives there, not here).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Live counters, shared by the callers, the writer and the sinks'
/// threads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub recorded: AtomicU64,
    pub recorded_durable: AtomicU64,
    pub spilled: AtomicU64,
    pub written: AtomicU64,
    pub checkpoints: AtomicU64,
    pub journal_errors: AtomicU64,
    pub recovered: AtomicU64,
    pub auth_failures_suppressed: AtomicU64,
    pub anomaly_burst: AtomicU64,
    pub anomaly_off_hours: AtomicU64,
    pub anomaly_token_reuse: AtomicU64,
    pub last_seq: AtomicU64,
    /// `audit.arguments: redacted` without a secret scrubber installed.
    pub arguments_withheld: AtomicU64,
    pub sinks: Vec<Arc<SinkState>>,
}

/// One sink as the metrics (and a flush) see it; also how the writer
/// talks to a sink's thread.
#[derive(Debug)]
pub(crate) struct SinkState {
    pub name: &'static str,
    /// Whether the sink keeps records (stdout does not).
    pub keeps: bool,
    pub errors: AtomicU64,
    /// The newest seq written to the sink, once `known`.
    pub position: AtomicU64,
    pub known: AtomicBool,
    /// The newest seq durable in the sink.
    pub synced: AtomicU64,
    pub failed: AtomicBool,
    /// Microseconds after the epoch when it last held every record durable
    /// in the journal.
    pub caught_up_at: AtomicU64,
    /// Records removed by retention.
    pub pruned: AtomicU64,
    /// A flush wants the sink synced through this seq.
    pub flush_target: AtomicU64,
    /// The writer is stopping: catch up (within a grace period) and end.
    pub stop: AtomicBool,
    pub stopped: AtomicBool,
}

impl SinkState {
    pub fn new(name: &'static str, keeps: bool) -> SinkState {
        SinkState {
            name,
            keeps,
            errors: AtomicU64::new(0),
            position: AtomicU64::new(0),
            known: AtomicBool::new(false),
            synced: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            caught_up_at: AtomicU64::new(0),
            pruned: AtomicU64::new(0),
            flush_target: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        }
    }

    /// Whether a flush through `target` has nothing more to wait for here.
    pub fn settled(&self, target: u64) -> bool {
        self.stopped.load(Ordering::Acquire)
            || self.failed.load(Ordering::Acquire)
            || self.synced.load(Ordering::Acquire) >= target
    }
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sink(&self, name: &str) -> Option<&Arc<SinkState>> {
        self.sinks.iter().find(|s| s.name == name)
    }
}

/// A snapshot of the audit trail's counters, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Events accepted by `record` / `record_durable` (after auth-failure
    /// rate limiting).
    pub recorded: u64,
    pub recorded_durable: u64,
    /// Events that found the queue full and went to the journal.
    pub spilled: u64,
    /// Records chained by the writer (events, alerts, checkpoints).
    pub written: u64,
    pub checkpoints: u64,
    pub journal_errors: u64,
    /// Records replayed or chained from the journal at start.
    pub recovered: u64,
    pub auth_failures_suppressed: u64,
    /// Alerts per rule: `burst`, `off_hours`, `token_reuse`.
    pub anomalies: BTreeMap<&'static str, u64>,
    /// Write errors per sink.
    pub sink_errors: BTreeMap<&'static str, u64>,
    /// Records a sink has not received yet (chained but not in the sink),
    /// per sink. A sink that is down, hung or slow shows here; the
    /// journal keeps those records until it catches up.
    pub sink_lag_records: BTreeMap<&'static str, u64>,
    /// How long each sink has been behind: zero when it holds everything
    /// the journal has made durable, otherwise the time since it last did.
    pub sink_lag: BTreeMap<&'static str, Duration>,
    /// Records removed by retention, per sink.
    pub retention_pruned: BTreeMap<&'static str, u64>,
    pub queue_depth: usize,
    pub lag: Duration,
    /// Seq of the newest record.
    pub last_seq: u64,
    /// Seq of the newest record fsync'd in the journal (what survives a
    /// power loss; `last_seq - journal_durable_seq` records would not).
    pub journal_durable_seq: u64,
    /// `audit.arguments: redacted` calls whose arguments were left out
    /// because no secret scrubber was installed.
    pub arguments_withheld: u64,
}

impl Counters {
    pub fn snapshot(
        &self,
        queue_depth: usize,
        lag: Duration,
        durable: u64,
        now_us: u64,
    ) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let last_seq = get(&self.last_seq);
        let behind = |s: &SinkState| match s.known.load(Ordering::Relaxed) {
            true => last_seq.saturating_sub(get(&s.position)),
            false => last_seq,
        };
        let lag_time = |s: &SinkState| {
            if get(&s.position) >= durable && s.known.load(Ordering::Relaxed) {
                Duration::ZERO
            } else {
                Duration::from_micros(now_us.saturating_sub(get(&s.caught_up_at)))
            }
        };
        MetricsSnapshot {
            recorded: get(&self.recorded),
            recorded_durable: get(&self.recorded_durable),
            spilled: get(&self.spilled),
            written: get(&self.written),
            checkpoints: get(&self.checkpoints),
            journal_errors: get(&self.journal_errors),
            recovered: get(&self.recovered),
            auth_failures_suppressed: get(&self.auth_failures_suppressed),
            anomalies: BTreeMap::from([
                ("burst", get(&self.anomaly_burst)),
                ("off_hours", get(&self.anomaly_off_hours)),
                ("token_reuse", get(&self.anomaly_token_reuse)),
            ]),
            sink_errors: self
                .sinks
                .iter()
                .map(|s| (s.name, get(&s.errors)))
                .collect(),
            sink_lag_records: self.sinks.iter().map(|s| (s.name, behind(s))).collect(),
            sink_lag: self.sinks.iter().map(|s| (s.name, lag_time(s))).collect(),
            retention_pruned: self
                .sinks
                .iter()
                .map(|s| (s.name, get(&s.pruned)))
                .collect(),
            queue_depth,
            lag,
            last_seq,
            journal_durable_seq: durable,
            arguments_withheld: get(&self.arguments_withheld),
        }
    }
}
