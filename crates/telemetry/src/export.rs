//! What leaves the process over OTLP passes the same key policy as the
//! logs: span attributes, span-event attributes and link attributes under a
//! sensitive key (`token`, `secret`, `authorization`, …; see
//! [`warden_audit::Redactor`]) are replaced by `[redacted]`, and text values
//! are escaped. This runs on the batch exporter's thread, never on the
//! request path.

use std::borrow::Cow;
use std::time::Duration;

use opentelemetry::{KeyValue, StringValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use warden_audit::{Redactor, REDACTED};

/// Wraps a span exporter; see the module documentation.
#[derive(Debug)]
pub struct RedactingExporter<E> {
    inner: E,
    redactor: Redactor,
}

impl<E> RedactingExporter<E> {
    pub fn new(inner: E) -> RedactingExporter<E> {
        RedactingExporter {
            inner,
            redactor: Redactor::new(),
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
        self.inner.export(batch)
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
