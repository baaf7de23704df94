//! What leaves the process over OTLP passes the same key policy as the
//! logs: span attributes, span-event attributes and link attributes under a
//! sensitive key (`token`, `secret`, `authorization`, …; see
//! [`warden_audit::Redactor`]) are replaced by `[redacted]`, and text values
//! are escaped. This runs on the batch exporter's thread, never on the
//! request path.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::{KeyValue, StringValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use warden_audit::{Redactor, REDACTED};

use crate::metrics::ExtraMetric;

/// Wraps a span exporter; see the module documentation. Also counts what
/// it exported and what failed ([`ExportStats`]). `Debug` does not show
/// the inner exporter: the OTLP exporter's would print header values.
pub struct RedactingExporter<E> {
    inner: E,
    redactor: Redactor,
    stats: ExportStats,
}

impl<E> RedactingExporter<E> {
    pub fn new(inner: E) -> RedactingExporter<E> {
        RedactingExporter::with_stats(inner, ExportStats::default())
    }

    pub fn with_stats(inner: E, stats: ExportStats) -> RedactingExporter<E> {
        RedactingExporter {
            inner,
            redactor: Redactor::new(),
            stats,
        }
    }
}

impl<E> std::fmt::Debug for RedactingExporter<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactingExporter")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Span export counters, for `/metrics`. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ExportStats {
    inner: Arc<StatsInner>,
}

#[derive(Debug, Default)]
struct StatsInner {
    spans: AtomicU64,
    batches: AtomicU64,
    failures: AtomicU64,
    failing: AtomicBool,
}

impl ExportStats {
    /// Spans the collector accepted.
    pub fn spans_exported(&self) -> u64 {
        self.inner.spans.load(Ordering::Relaxed)
    }

    /// Export requests that failed (collector down, timeout, refused).
    pub fn export_failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// `warden_otlp_spans_exported_total`, `warden_otlp_export_batches_total`,
    /// `warden_otlp_export_failures_total`.
    pub fn metrics(&self) -> Vec<ExtraMetric> {
        let i = &*self.inner;
        vec![
            ExtraMetric::counter(
                "warden_otlp_spans_exported",
                "Spans the OTLP collector accepted",
                i.spans.load(Ordering::Relaxed),
            ),
            ExtraMetric::counter(
                "warden_otlp_export_batches",
                "OTLP export requests sent",
                i.batches.load(Ordering::Relaxed),
            ),
            ExtraMetric::counter(
                "warden_otlp_export_failures",
                "OTLP export requests that failed",
                i.failures.load(Ordering::Relaxed),
            ),
        ]
    }

    fn record(&self, spans: usize, ok: bool) {
        let i = &*self.inner;
        i.batches.fetch_add(1, Ordering::Relaxed);
        if ok {
            i.spans.fetch_add(spans as u64, Ordering::Relaxed);
            if i.failing.swap(false, Ordering::Relaxed) {
                tracing::info!("OTLP span export recovered");
            }
        } else {
            i.failures.fetch_add(1, Ordering::Relaxed);
            // One line per outage, not one per batch.
            if !i.failing.swap(true, Ordering::Relaxed) {
                tracing::warn!(spans, "OTLP span export failed; spans are being dropped");
            }
        }
    }
}

impl<E: SpanExporter> SpanExporter for RedactingExporter<E> {
    fn export(
        &self,
        mut batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        for span in &mut batch {
            redact_span(&self.redactor, span);
        }
        let n = batch.len();
        let export = self.inner.export(batch);
        let stats = self.stats.clone();
        async move {
            let result = export.await;
            stats.record(n, result.is_ok());
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

pub(crate) fn redact_span(redactor: &Redactor, span: &mut SpanData) {
    redact_attributes(redactor, &mut span.attributes);
    for event in span.events.events.iter_mut() {
        redact_attributes(redactor, &mut event.attributes);
    }
    for link in span.links.links.iter_mut() {
        redact_attributes(redactor, &mut link.attributes);
    }
}

fn redact_attributes(redactor: &Redactor, attributes: &mut [KeyValue]) {
    for kv in attributes {
        if redactor.is_sensitive_key(kv.key.as_str()) {
            kv.value = Value::String(StringValue::from(REDACTED));
        } else if let Value::String(s) = &kv.value {
            if let Cow::Owned(escaped) = escape(s.as_str()) {
                kv.value = Value::String(StringValue::from(escaped));
            }
        }
    }
}

/// Escapes only when needed (most values are clean).
fn escape(text: &str) -> Cow<'_, str> {
    let escaped = Redactor::escape(text);
    if escaped == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(escaped)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};

    use super::*;

    #[test]
    fn debug_never_shows_header_values() {
        let inner = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint("http://127.0.0.1:4318/v1/traces")
            .with_headers(HashMap::from([(
                "authorization".to_owned(),
                "Bearer debug-s3cr3t".to_owned(),
            )]))
            .build()
            .unwrap();
        // The premise: the SDK's own Debug does print it.
        assert!(format!("{inner:?}").contains("debug-s3cr3t"));
        let wrapped = RedactingExporter::new(inner);
        assert!(!format!("{wrapped:?}").contains("debug-s3cr3t"));
    }

    #[test]
    fn sensitive_attributes_are_redacted_and_text_escaped() {
        let redactor = Redactor::new();
        let mut attrs = vec![
            KeyValue::new("api_key", "k-123"),
            KeyValue::new("note", "a\nb"),
            KeyValue::new("line", "x\n{\"forged\":1}"),
            KeyValue::new("count", 3),
        ];
        redact_attributes(&redactor, &mut attrs);
        assert_eq!(attrs[0].value.as_str(), REDACTED);
        assert_eq!(attrs[1].value.as_str(), "a\\nb");
        assert!(!attrs[2].value.as_str().contains('\n'));
        assert_eq!(attrs[3].value, Value::I64(3));
    }
}
