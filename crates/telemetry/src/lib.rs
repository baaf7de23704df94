//! Warden's telemetry: OpenTelemetry traces exported over OTLP/HTTP
//! (protobuf), W3C trace-context propagation, redacted structured logs and
//! Prometheus metrics.
//!
//! - [`RawTelemetry`] → [`TelemetrySettings`]: the `telemetry:` section.
//! - [`Telemetry::init`]: the global subscriber — `EnvFilter` → the audit
//!   crate's redacting JSON layer (or a redacted one-line `pretty` layer),
//!   plus, when `otlp` is configured, an OpenTelemetry layer whose spans
//!   leave through a batch processor (bounded queue, own thread: the
//!   request path never waits). [`TelemetryGuard`] flushes on drop.
//! - [`request_span`], [`stage_span`]: `warden.request` and its
//!   `warden.<stage>` children.
//! - [`set_parent_from_traceparent`], [`current_traceparent`],
//!   [`trace_id_of`]: the W3C `traceparent`/`tracestate` in and out.
//! - [`Metrics`]: the gateway's Prometheus families, lock-free on the hot
//!   path, bounded label values; [`Metrics::render`] plus
//!   [`audit_metrics`] for `/metrics`.
//!
//! Invariants:
//! - Nothing a peer sends can panic the trace-context parser or grow a
//!   metric's label set without bound.
//! - Log lines and exported span attributes pass the audit crate's key
//!   policy (`token`, `secret`, `authorization`, … redacted) and escaping
//!   (no value can forge a log line).
//! - OTLP header values never appear in `Debug` output, errors or logs.
//!
//! The seam with the gateway is described in this crate's `README.md`.
#![forbid(unsafe_code)]

mod context;
mod error;
mod export;
mod init;
mod metrics;
mod pretty;
mod settings;
mod spans;
#[cfg(any(test, feature = "test-util"))]
pub mod test_support;

pub use context::{
    current_traceparent, current_tracestate, parse_tracestate, set_parent_from_traceparent,
    trace_id_of, TraceParent, TRACEPARENT, TRACESTATE,
};
pub use error::TelemetryError;
pub use export::{ExportStats, RedactingExporter};
pub use init::{Telemetry, TelemetryGuard};
pub use metrics::{
    audit_metrics, method_name, Direction, DurationHistogram, EdgeRefusal, ExtraKind, ExtraMetric,
    Metrics, Outcome, PolicyDecision, Stage, UpstreamEvent, CONTENT_TYPE, DURATION_BUCKETS,
    KNOWN_METHODS, MAX_LABEL_VALUES, OTHER,
};
pub use settings::{
    HeaderValue, LogFormat, LogSettings, MetricsSettings, OtlpSettings, RawLogs, RawMetrics,
    RawOtlp, RawTelemetry, TelemetrySettings,
};
pub use spans::{request_span, stage_span};
