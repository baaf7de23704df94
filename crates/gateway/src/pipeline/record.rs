//! Stage 12, Record: whatever happened — served, refused at any stage,
//! failed — the request's facts become its metrics, one log line and one
//! audit record, durable before the response is released for the tiers
//! configured `sync` (a record that cannot be made durable fails the
//! call). A refusal's decision and reason code come from the one mapping
//! in [`Refusal`].

use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn, Instrument};

use super::output::outcome_of;
use super::{Exchange, Handled, Refusal};
use crate::core::Gateway;

pub(crate) async fn run(
    gw: &Arc<Gateway>,
    ex: &Exchange<'_>,
    answered: Result<Option<String>, Refusal>,
) -> Handled {
    let call = &ex.call;
    let method = ex.msg.method();
    let (response, refusal) = match answered {
        Ok(response) => (response, None),
        Err(refusal) => {
            refusal.log(
                &call.corr,
                &ex.session.id,
                ex.target.server(),
                Some(ex.target.subject()),
            );
            let (decision, reason) = (refusal.decision(), refusal.reason_code());
            call.note(|f| {
                if decision.is_some() {
                    f.decision = decision;
                }
                if reason.is_some() {
                    f.reason_code = reason;
                }
            });
            (Some(refusal.response(ex.id, &call.corr)), Some(refusal))
        }
    };
    let outcome = match &refusal {
        Some(_) => "error",
        None => outcome_of(response.as_deref()),
    };
    if let Some((server, item, decision, reason)) = call.metric_labels() {
        let decision = if decision == "allow" && outcome == "error" {
            "error"
        } else {
            decision
        };
        gw.metrics.call(&server, &item, decision);
        if let Some(r) = reason {
            gw.metrics.denial(&r);
        }
    }
    gw.metrics.request(
        method,
        match outcome {
            "ok" => warden_telemetry::Outcome::Ok,
            _ if call.was_refused() => warden_telemetry::Outcome::Denied,
            _ => warden_telemetry::Outcome::Error,
        },
        call.started.elapsed(),
    );
    info!(target: "audit", event = "request", correlation_id = %call.corr, session = %ex.session.id,
          principal = %ex.principal.subject(), method = %method,
          outcome = outcome, latency_us = call.started.elapsed().as_micros() as u64);
    if method == "ping" && refusal.is_none() {
        return Handled { response, refusal };
    }
    let Some(audit) = gw.audit() else {
        return Handled { response, refusal };
    };
    let tier = call.risk_tier();
    // The record carries the arguments' hash even when no stage asked.
    let _ = ex.input_hash();
    let mut event = call.event(&ex.session.id, &ex.principal, method, outcome);
    event.trace_id = warden_telemetry::trace_id_of(&tracing::Span::current());
    let started = Instant::now();
    let recorded = audit
        .record_for_tier(event)
        .instrument(warden_telemetry::stage_span(warden_telemetry::Stage::Audit))
        .await;
    gw.metrics
        .stage(warden_telemetry::Stage::Audit, started.elapsed());
    if let Err(e) = recorded {
        warn!(correlation_id = %call.corr, error = %e, "audit record failed");
        if audit.durability(tier) == warden_audit::Durability::Sync {
            // Fail closed: a call whose record cannot be made durable is
            // not answered as if it were.
            let r = Refusal::AuditUnavailable;
            r.log(&call.corr, &ex.session.id, ex.target.server(), None);
            return Handled {
                response: Some(r.response(ex.id, &call.corr)),
                refusal: Some(r),
            };
        }
    }
    Handled { response, refusal }
}
