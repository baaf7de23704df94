//! W3C Trace Context (`traceparent`, `tracestate`): parsed strictly from a
//! peer, set as a `tracing` span's remote parent, and rendered again for
//! upstream HTTP requests and MCP `_meta`.
//!
//! A malformed header is ignored (the request starts a new trace); no input
//! panics (`proptest` in `context_tests.rs`).

use std::fmt::{self, Write as _};
use std::str::FromStr;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use tracing::Span;
use tracing_opentelemetry::{OpenTelemetrySpanExt, SetParentError};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Registry;

/// The HTTP header and MCP `_meta` key of the parent.
pub const TRACEPARENT: &str = "traceparent";
/// The HTTP header and MCP `_meta` key of vendor state.
pub const TRACESTATE: &str = "tracestate";

/// `tracestate` longer than this is dropped (W3C: at least 512 must be
/// propagated; more may be truncated).
const MAX_TRACESTATE: usize = 512;
const MAX_TRACESTATE_MEMBERS: usize = 32;

/// A parsed `traceparent`, version `00`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    /// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, exactly:
    /// lowercase hex, neither id all zeros. Anything else is `None`.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let b = value.as_bytes();
        // Surrounding optional whitespace is allowed by RFC 9110 field syntax.
        let b = trim_ows(b);
        if b.len() != 55 || &b[0..3] != b"00-" || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut parent_id = [0u8; 8];
        let mut flags = [0u8; 1];
        decode_hex(&b[3..35], &mut trace_id)?;
        decode_hex(&b[36..52], &mut parent_id)?;
        decode_hex(&b[53..55], &mut flags)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            parent_id,
            flags: flags[0],
        })
    }

    pub fn is_sampled(&self) -> bool {
        self.flags & 0x01 != 0
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    fn span_context(&self, state: TraceState) -> SpanContext {
        SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.parent_id),
            // Only the flag version 00 defines for sure.
            TraceFlags::new(self.flags & 0x01),
            true,
            state,
        )
    }
}

/// The header value.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.parent_id),
            self.flags
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

/// A `tracestate` value if it is well formed (W3C list-member syntax, at
/// most 32 members and 512 bytes); otherwise `None` — the parent is still
/// used, without vendor state.
pub fn parse_tracestate(value: &str) -> Option<TraceState> {
    let value = std::str::from_utf8(trim_ows(value.as_bytes())).ok()?;
    if value.is_empty() || value.len() > MAX_TRACESTATE {
        return None;
    }
    let members: Vec<&str> = value
        .split(',')
        .map(|m| m.trim_matches([' ', '\t']))
        .filter(|m| !m.is_empty())
        .collect();
    if members.is_empty() || members.len() > MAX_TRACESTATE_MEMBERS {
        return None;
    }
    // A key may appear once (W3C).
    let mut keys: Vec<&str> = members
        .iter()
        .map(|m| m.split_once('=').map_or(*m, |(k, _)| k))
        .collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    // TraceState validates each key and value (and refuses duplicates).
    TraceState::from_str(&members.join(",")).ok()
}

/// Makes the `traceparent` (and `tracestate`) a peer sent the remote
/// parent of `span`. Returns whether it was applied: `false` for a
/// malformed `traceparent`, a span already started (call this right after
/// creating the span, before entering it or asking for its context), or a
/// span no subscriber records.
///
/// Without span export (no OpenTelemetry layer) the context is kept on the
/// span as received, and [`current_traceparent`] passes it on unchanged:
/// Warden is then a transparent intermediary, as W3C Trace Context asks of
/// one that does not trace.
pub fn set_parent_from_traceparent(
    span: &Span,
    traceparent: &str,
    tracestate: Option<&str>,
) -> bool {
    let Some(parent) = TraceParent::parse(traceparent) else {
        return false;
    };
    let state = tracestate.and_then(parse_tracestate);
    let cx = Context::new()
        .with_remote_span_context(parent.span_context(state.clone().unwrap_or_default()));
    match span.set_parent(cx) {
        Ok(()) => true,
        Err(SetParentError::LayerNotFound) => store_remote(
            span,
            RemoteParent {
                parent,
                state: state.map(|s| s.header()),
            },
        ),
        Err(_) => false,
    }
}

/// The caller's context on a span of a subscriber without the
/// OpenTelemetry layer.
#[derive(Clone)]
struct RemoteParent {
    parent: TraceParent,
    /// The validated `tracestate` header.
    state: Option<String>,
}

fn store_remote(span: &Span, remote: RemoteParent) -> bool {
    span.with_subscriber(|(id, dispatch)| {
        let Some(registry) = dispatch.downcast_ref::<Registry>() else {
            return false;
        };
        let Some(data) = registry.span(id) else {
            return false;
        };
        data.extensions_mut().replace(remote);
        true
    })
    .unwrap_or(false)
}

/// The nearest caller's context stored on `span` or an ancestor.
fn remote_of(span: &Span) -> Option<RemoteParent> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let data = registry.span(id)?;
        data.scope()
            .find_map(|s| s.extensions().get::<RemoteParent>().cloned())
    })
    .flatten()
}

/// The `traceparent` to send on, for an upstream request (HTTP header) or
/// an MCP message (`params._meta.traceparent`): naming `span` as the parent
/// when spans are exported; the caller's own value, unchanged, when they
/// are not. `None` when there is no context (no export and no caller
/// context, or a span nothing records).
pub fn current_traceparent(span: &Span) -> Option<String> {
    let span = &*or_current(span);
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return remote_of(span).map(|r| r.parent.to_string());
    }
    let mut out = String::with_capacity(55);
    let _ = write!(
        out,
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    );
    Some(out)
}

/// The `tracestate` to send with [`current_traceparent`], when there is any.
pub fn current_tracestate(span: &Span) -> Option<String> {
    let span = &*or_current(span);
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return remote_of(span).and_then(|r| r.state);
    }
    let header = sc.trace_state().header();
    (!header.is_empty()).then_some(header)
}

/// The span's trace id as 32 lowercase hex digits (the audit record's
/// `trace_id`).
pub fn trace_id_of(span: &Span) -> Option<String> {
    let span = &*or_current(span);
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return remote_of(span).map(|r| r.parent.trace_id_hex());
    }
    Some(sc.trace_id().to_string())
}

fn trim_ows(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// Lowercase hex only (W3C forbids uppercase in version 00).
fn decode_hex(text: &[u8], out: &mut [u8]) -> Option<()> {
    if text.len() != out.len() * 2 {
        return None;
    }
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(())
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `span`, or the current span for a span that is none: a stage span
/// skipped because nothing exports (see [`crate::stage_span`]) has the
/// request span's context.
fn or_current(span: &Span) -> std::borrow::Cow<'_, Span> {
    if span.is_none() {
        std::borrow::Cow::Owned(Span::current())
    } else {
        std::borrow::Cow::Borrowed(span)
    }
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
