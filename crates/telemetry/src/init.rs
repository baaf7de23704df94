//! Installing the subscriber: `EnvFilter` → redacting log layer, and the
//! OpenTelemetry layer feeding a batch span processor.
//!
//! The request path only ever does `try_send` into the batch processor's
//! bounded queue (2048 spans; when full, spans are dropped and counted by
//! the SDK, never waited for). Export — encoding, HTTP, retries — runs on
//! the processor's own thread.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanExporter,
};
use opentelemetry_sdk::Resource;
use tracing::Dispatch;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};
use warden_audit::Redactor;

use crate::error::TelemetryError;
use crate::export::{ExportStats, RedactingExporter};
use crate::pretty::PrettyLayer;
use crate::settings::{LogFormat, OtlpSettings, TelemetrySettings};

/// The instrumentation scope name on exported spans.
const SCOPE: &str = "warden";
/// Spans waiting for export; beyond, new spans are dropped.
const MAX_QUEUE: usize = 2048;
const MAX_BATCH: usize = 512;
const EXPORT_EVERY: Duration = Duration::from_secs(2);

/// Entry points; see the crate documentation for the call sequence.
pub struct Telemetry;

impl Telemetry {
    /// Builds the subscriber and installs it as the process's global
    /// default. Logs go to `writer` (stderr for `warden serve` and
    /// `warden stdio`: stdout is the stdio transport's). Keep the guard
    /// alive for the life of the process; dropping it flushes pending spans.
    pub fn init<W>(
        settings: &TelemetrySettings,
        writer: W,
    ) -> Result<TelemetryGuard, TelemetryError>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        let (dispatch, guard) = Telemetry::build(settings, writer)?;
        tracing::dispatcher::set_global_default(dispatch)
            .map_err(|_| TelemetryError::AlreadyInstalled)?;
        Ok(guard)
    }

    /// The same subscriber without installing it: use it with
    /// `tracing::dispatcher::with_default` (tests) or install it yourself.
    pub fn build<W>(
        settings: &TelemetrySettings,
        writer: W,
    ) -> Result<(Dispatch, TelemetryGuard), TelemetryError>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        let stats = ExportStats::default();
        let processor = match &settings.otlp {
            Some(otlp) => Some(batch(otlp_exporter(otlp)?, stats.clone())),
            None => None,
        };
        assemble(settings, writer, processor, stats)
    }

    /// [`Telemetry::build`] exporting to `exporter` (through the same
    /// redaction and batch processor) instead of OTLP; the sample ratio is
    /// `settings.otlp`'s when present. For tests and benchmarks.
    pub fn build_with_exporter<W, E>(
        settings: &TelemetrySettings,
        writer: W,
        exporter: E,
    ) -> Result<(Dispatch, TelemetryGuard), TelemetryError>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
        E: SpanExporter + 'static,
    {
        let stats = ExportStats::default();
        assemble(
            settings,
            writer,
            Some(batch(exporter, stats.clone())),
            stats,
        )
    }
}

fn assemble<W>(
    settings: &TelemetrySettings,
    writer: W,
    processor: Option<BatchSpanProcessor>,
    stats: ExportStats,
) -> Result<(Dispatch, TelemetryGuard), TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::builder()
        .parse(&settings.logs.level)
        .map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match settings.logs.format {
        LogFormat::Json => Redactor::new().layer(writer).with_filter(filter).boxed(),
        LogFormat::Pretty => PrettyLayer::new(writer).with_filter(filter).boxed(),
    };

    // Without an exporter there is no OpenTelemetry layer at all (it costs
    // microseconds per span even when nothing is sampled): trace context is
    // then carried through unchanged (see `set_parent_from_traceparent`).
    let (otel, provider) = match (processor, &settings.otlp) {
        (Some(processor), otlp) => {
            let service_name = otlp
                .as_ref()
                .map_or("warden", |o| o.service_name.as_str())
                .to_owned();
            let ratio = otlp.as_ref().map_or(1.0, |o| o.sample_ratio);
            let provider = SdkTracerProvider::builder()
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                    ratio,
                ))))
                .with_resource(Resource::builder().with_service_name(service_name).build())
                .with_span_processor(processor)
                .build();
            // Spans are traced at INFO and above whatever `logs.level`
            // says: the log filter must not switch tracing off.
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer(SCOPE))
                .with_tracked_inactivity(false)
                .with_threads(false)
                .with_location(false)
                .with_filter(LevelFilter::INFO);
            (Some(layer), Some(provider))
        }
        (None, _) => (None, None),
    };

    // Without the OpenTelemetry layer, something must still ask for INFO
    // spans, or a quiet `logs.level` would disable the request span and
    // with it the caller's trace context.
    let keep = otel
        .is_none()
        .then(|| KeepSpans.with_filter(LevelFilter::INFO));
    let subscriber = tracing_subscriber::registry()
        .with(logs)
        .with(otel)
        .with(keep);
    Ok((
        Dispatch::new(subscriber),
        TelemetryGuard { provider, stats },
    ))
}

/// Records nothing; its filter keeps INFO spans alive in the registry.
/// Its presence also tells [`crate::stage_span`] that nothing exports.
pub(crate) struct KeepSpans;

impl<S: tracing::Subscriber> Layer<S> for KeepSpans {}

fn batch<E: SpanExporter + 'static>(exporter: E, stats: ExportStats) -> BatchSpanProcessor {
    BatchSpanProcessor::builder(RedactingExporter::with_stats(exporter, stats))
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(MAX_QUEUE)
                .with_max_export_batch_size(MAX_BATCH)
                .with_scheduled_delay(EXPORT_EVERY)
                .build(),
        )
        .build()
}

fn otlp_exporter(otlp: &OtlpSettings) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    let headers = otlp
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect();
    opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(otlp.endpoint.as_str())
        .with_timeout(otlp.timeout)
        .with_headers(headers)
        .build()
        .map_err(|e| {
            // The SDK's message could quote a header; scrub every value.
            let mut msg = e.to_string();
            for (_, v) in &otlp.headers {
                msg = msg.replace(v.expose(), "[redacted]");
            }
            TelemetryError::Exporter(msg)
        })
}

/// Keeps the span pipeline alive. Dropping it (or [`TelemetryGuard::shutdown`])
/// exports what is queued and stops the exporter thread; both block for at
/// most the export timeout, so call them at shutdown, outside async tasks
/// (or in `spawn_blocking`).
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    stats: ExportStats,
}

impl TelemetryGuard {
    /// The export counters (a shared handle: give a clone to the
    /// `/metrics` handler and append `stats.metrics()` to the extras).
    pub fn export_stats(&self) -> ExportStats {
        self.stats.clone()
    }

    /// Exports every span ended so far and waits for the collector's answer.
    pub fn flush(&self) -> Result<(), TelemetryError> {
        match &self.provider {
            Some(p) => p.force_flush().map_err(|e| TelemetryError::Export {
                operation: "flush",
                reason: e.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(mut self) -> Result<(), TelemetryError> {
        match self.provider.take() {
            Some(p) => p.shutdown().map_err(|e| TelemetryError::Export {
                operation: "shutdown",
                reason: e.to_string(),
            }),
            None => Ok(()),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard").finish_non_exhaustive()
    }
}
