//! Log hygiene (threat T15): values under sensitive keys are redacted, and
//! text is escaped so no value can start a new line or forge a record.
//!
//! - [`Redactor::redact_value`] for JSON (call arguments kept in records).
//! - [`Redactor::layer`]: a `tracing-subscriber` layer writing Warden's own
//!   logs as JSON lines, one per event, with span fields, redacted and
//!   escaped (C0/C1 controls, DEL, line separators, bidi controls).
//!
//! A key is sensitive when its lowercase form contains `token`, `secret`,
//! `password`, `passwd`, `authorization`, `cookie`, `credential`,
//! `private` or `key` — deliberately broad (`keyword` is
//! redacted too): a redacted harmless value costs less than a leaked
//! secret. [`Redactor::with_keys`] adds names.

use std::fmt::{self, Write as _};
use std::io::Write;
use std::sync::Arc;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Event as TracingEvent, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::event::Timestamp;
use crate::record::{needs_escape, to_safe_json};

/// What replaces a sensitive value.
pub const REDACTED: &str = "[redacted]";

const SENSITIVE: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "cookie",
    "credential",
    "private",
    "key",
];

/// Decides which keys are sensitive and redacts their values.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    extra: Arc<Vec<String>>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Also treats keys containing any of `names` (case-insensitive) as
    /// sensitive.
    pub fn with_keys<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Redactor {
        Redactor {
            extra: Arc::new(
                names
                    .into_iter()
                    .map(|s| s.into().to_ascii_lowercase())
                    .collect(),
            ),
        }
    }

    pub fn is_sensitive_key(&self, key: &str) -> bool {
        let k = key.to_ascii_lowercase();
        SENSITIVE.iter().any(|s| k.contains(s)) || self.extra.iter().any(|s| k.contains(s.as_str()))
    }

    /// Replaces, recursively, every value under a sensitive key (whole
    /// subtrees included) with `"[redacted]"`.
    pub fn redact_value(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if self.is_sensitive_key(k) {
                        *v = Value::String(REDACTED.to_owned());
                    } else {
                        self.redact_value(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_value(v)),
            _ => {}
        }
    }

    /// `text` with control, line-breaking and bidi characters escaped as
    /// `\n`, `\u001b`, `\u2028`, …: safe to put on one line of a log.
    pub fn escape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || needs_escape(c) => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        let _ = write!(out, "\\u{u:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out
    }

    /// A layer writing each `tracing` event as one redacted JSON line:
    /// `{"time","level","target","message",<fields>,"spans":[{"name",<fields>}]}`.
    pub fn layer<W>(&self, writer: W) -> RedactingJsonLayer<W>
    where
        W: for<'w> MakeWriter<'w> + 'static,
    {
        RedactingJsonLayer {
            redactor: self.clone(),
            writer,
        }
    }
}

/// See [`Redactor::layer`].
pub struct RedactingJsonLayer<W> {
    redactor: Redactor,
    writer: W,
}

/// Span fields, redacted when recorded.
struct SpanFields(Map<String, Value>);

struct FieldVisitor<'a> {
    redactor: &'a Redactor,
    map: &'a mut Map<String, Value>,
}

impl FieldVisitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        let value = if self.redactor.is_sensitive_key(name) {
            Value::String(REDACTED.to_owned())
        } else {
            value
        };
        self.map.insert(name.to_owned(), value);
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

impl<S, W> Layer<S> for RedactingJsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut map = Map::new();
        attrs.record(&mut FieldVisitor {
            redactor: &self.redactor,
            map: &mut map,
        });
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(map));
        }
    }

    fn on_record(&self, id: &Id, values: &SpanRecord<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<SpanFields>() {
                values.record(&mut FieldVisitor {
                    redactor: &self.redactor,
                    map: &mut fields.0,
                });
            }
        }
    }

    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Map::new();
        event.record(&mut FieldVisitor {
            redactor: &self.redactor,
            map: &mut fields,
        });
        let mut obj = Map::new();
        obj.insert("time".into(), Value::String(Timestamp::now().to_string()));
        obj.insert(
            "level".into(),
            Value::String(meta.level().as_str().to_owned()),
        );
        obj.insert("target".into(), Value::String(meta.target().to_owned()));
        if let Some(message) = fields.remove("message") {
            obj.insert("message".into(), message);
        }
        for (k, v) in fields {
            // Fields never overwrite the envelope.
            if !obj.contains_key(&k) {
                obj.insert(k, v);
            }
        }
        if let Some(scope) = ctx.event_scope(event) {
            let spans: Vec<Value> = scope
                .from_root()
                .map(|span| {
                    let mut s = Map::new();
                    s.insert("name".into(), Value::String(span.name().to_owned()));
                    if let Some(f) = span.extensions().get::<SpanFields>() {
                        for (k, v) in &f.0 {
                            s.insert(k.clone(), v.clone());
                        }
                    }
                    Value::Object(s)
                })
                .collect();
            if !spans.is_empty() {
                obj.insert("spans".into(), Value::Array(spans));
            }
        }
        let mut line = to_safe_json(&Value::Object(obj)).into_bytes();
        line.push(b'\n');
        let mut w = self.writer.make_writer_for(meta);
        let _ = w.write_all(&line);
    }
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;
