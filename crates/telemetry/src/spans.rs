//! The spans the gateway opens: one `warden.request` per client message,
//! and one child per pipeline stage, named `warden.<stage>`.
//!
//! `tracing` needs span names at compile time, hence a constructor per
//! stage rather than a formatted name.

use tracing::{info_span, Span};

use crate::metrics::{method_name, Stage};

/// The request span. `method` is what the client sent; the attribute is
/// bounded like the metrics label (`other` for unknown methods). Set its
/// remote parent ([`crate::set_parent_from_traceparent`]) right after
/// creating it, before entering it. Fields left empty here are for the
/// gateway to fill with `span.record(..)`: `mcp.session`, `mcp.server`,
/// `mcp.tool`, `warden.outcome`, `warden.correlation_id`.
pub fn request_span(method: &str) -> Span {
    info_span!(
        "warden.request",
        otel.kind = "server",
        mcp.method = method_name(method),
        mcp.session = tracing::field::Empty,
        mcp.server = tracing::field::Empty,
        mcp.tool = tracing::field::Empty,
        warden.outcome = tracing::field::Empty,
        warden.correlation_id = tracing::field::Empty,
    )
}

/// A child span for `stage`, a child of the current span (enter the
/// request span first, or use `parent:`-style nesting through
/// `request.in_scope(|| stage_span(..))`).
///
/// Stage spans exist to be exported: without an exporter (Warden's
/// subscriber then has its span-keeping layer in place of OpenTelemetry's)
/// this is `Span::none()`, which costs nothing, while the request span
/// stays and carries the caller's trace context (the context functions
/// read the current span for a span that is none). Stage durations are
/// metrics of their own either way.
pub fn stage_span(stage: Stage) -> Span {
    if !exporting() {
        return Span::none();
    }
    match stage {
        Stage::Transport => info_span!("warden.transport"),
        Stage::Authenticate => info_span!("warden.authenticate"),
        Stage::Route => info_span!("warden.route"),
        Stage::Registry => info_span!("warden.registry"),
        Stage::Policy => info_span!("warden.policy"),
        Stage::InputGuard => info_span!("warden.input_guard"),
        Stage::Approval => info_span!("warden.approval"),
        Stage::Upstream => info_span!("warden.upstream", otel.kind = "client"),
        Stage::OutputGuard => info_span!("warden.output_guard"),
        Stage::Audit => info_span!("warden.audit"),
    }
}

/// Whether spans are exported: false under a subscriber built by
/// [`crate::Telemetry`] without an exporter; true under any other
/// subscriber (whose wishes are not known here).
fn exporting() -> bool {
    tracing::dispatcher::get_default(|d| d.downcast_ref::<crate::init::KeepSpans>().is_none())
}
