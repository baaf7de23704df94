//! Counters the gateway exports (Prometheus lives there, not here).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Live counters, shared by the callers and the writer.
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
    /// Per sink: (name, errors, records behind).
    pub sinks: Vec<(&'static str, AtomicU64, AtomicU64)>,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sink(&self, name: &str) -> Option<&(&'static str, AtomicU64, AtomicU64)> {
        self.sinks.iter().find(|(n, _, _)| *n == name)
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
    /// Records a failed sink has not received yet, per sink.
    pub sink_lag_records: BTreeMap<&'static str, u64>,
    pub queue_depth: usize,
    pub lag: Duration,
    /// Seq of the newest record.
    pub last_seq: u64,
    /// `audit.arguments: redacted` calls whose arguments were left out
    /// because no secret scrubber was installed.
    pub arguments_withheld: u64,
}

impl Counters {
    pub fn snapshot(&self, queue_depth: usize, lag: Duration) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
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
            sink_errors: self.sinks.iter().map(|(n, e, _)| (*n, get(e))).collect(),
            sink_lag_records: self.sinks.iter().map(|(n, _, l)| (*n, get(l))).collect(),
            queue_depth,
            lag,
            last_seq: get(&self.last_seq),
            arguments_withheld: get(&self.arguments_withheld),
        }
    }
}
