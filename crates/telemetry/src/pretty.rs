//! `logs.format: pretty`: one human-readable line per event,
//! `<time> <LEVEL> <target>: <message> k=v … in span{k=v}:child{…}`, with
//! the audit crate's key policy ([`Redactor::is_sensitive_key`]) and
//! escaping ([`Redactor::escape`]), so a value can neither leak a secret nor
//! start a line of its own.

use std::fmt::{self, Write as _};
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;
use warden_audit::{Redactor, Timestamp, REDACTED};

pub struct PrettyLayer<W> {
    redactor: Redactor,
    writer: W,
}

impl<W> PrettyLayer<W> {
    pub fn new(writer: W) -> PrettyLayer<W> {
        PrettyLayer {
            redactor: Redactor::new(),
            writer,
        }
    }
}

/// A span's fields, already rendered ` k=v` and redacted.
struct SpanText(String);

struct Fields<'a> {
    redactor: &'a Redactor,
    out: &'a mut String,
    message: Option<String>,
}

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: fmt::Arguments<'_>, quote: bool) {
        let name = field.name();
        if name == "message" && self.message.is_none() {
            self.message = Some(Redactor::escape(&value.to_string()));
            return;
        }
        let _ = write!(self.out, " {}=", Redactor::escape(name));
        if self.redactor.is_sensitive_key(name) {
            self.out.push_str(REDACTED);
        } else if quote {
            let _ = write!(self.out, "\"{}\"", Redactor::escape(&value.to_string()));
        } else {
            self.out.push_str(&Redactor::escape(&value.to_string()));
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, format_args!("{value}"), true);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, format_args!("{value}"), false);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, format_args!("{value}"), false);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, format_args!("{value}"), false);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, format_args!("{value}"), false);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, format_args!("{value}"), true);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format_args!("{value:?}"), false);
    }
}

impl<S, W> Layer<S> for PrettyLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut text = String::new();
        let mut fields = Fields {
            redactor: &self.redactor,
            out: &mut text,
            message: None,
        };
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanText(text));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(SpanText(text)) = ext.get_mut::<SpanText>() {
                values.record(&mut Fields {
                    redactor: &self.redactor,
                    out: text,
                    message: None,
                });
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut rest = String::new();
        let mut fields = Fields {
            redactor: &self.redactor,
            out: &mut rest,
            message: None,
        };
        event.record(&mut fields);
        let message = fields.message.take().unwrap_or_default();
        let mut line = format!(
            "{} {:>5} {}: {}{}",
            Timestamp::now(),
            meta.level(),
            Redactor::escape(meta.target()),
            message,
            rest
        );
        if let Some(scope) = ctx.event_scope(event) {
            let mut first = true;
            for span in scope.from_root() {
                line.push_str(if first { " in " } else { ":" });
                first = false;
                line.push_str(span.name());
                if let Some(SpanText(text)) = span.extensions().get::<SpanText>() {
                    if !text.is_empty() {
                        let _ = write!(line, "{{{}}}", text.trim_start());
                    }
                }
            }
        }
        line.push('\n');
        let mut w = self.writer.make_writer_for(meta);
        let _ = w.write_all(line.as_bytes());
    }
}
