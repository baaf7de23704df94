//! The crate's one error type.

/// Why telemetry could not start or stop cleanly. Messages never carry
/// OTLP header values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// `logs.level` did not parse as an `EnvFilter` directive (settings
    /// built without [`crate::RawTelemetry::resolve`]).
    #[error("telemetry.logs.level: {0}")]
    Filter(String),
    /// The OTLP exporter could not be built.
    #[error("telemetry.otlp: the exporter could not be built: {0}")]
    Exporter(String),
    /// A global subscriber was installed before [`crate::Telemetry::init`].
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
    /// Flushing or shutting down the span pipeline failed (the collector
    /// was unreachable, or the export timed out).
    #[error("telemetry: {operation} failed: {reason}")]
    Export {
        operation: &'static str,
        reason: String,
    },
}
