//! Stage 6, Limits: rate limits, concurrency caps, cost budgets, circuit
//! breakers and loop detection (`limits:`, the `warden-limits` crate),
//! for `tools/call`, `prompts/get` and `resources/read`. It runs after
//! authorization (a refused call spends no budget) and before the input
//! guards and the upstream. The admission it takes is held by the
//! exchange: released when the request ends, and told how the upstream
//! answered ([`settle`]) so that breakers learn and a call refused later
//! is refunded.
//!
//! Counters in memory (no I/O, nothing awaited), or in Redis shared with
//! other Warden processes (`limits.redis`): one round trip, bounded by its
//! timeout, past which `fail` decides (`closed`: refused with -32035).

use std::sync::Arc;

use tracing::warn;
use warden_limits::{CallFacts, Decision, Outcome};
use warden_protocol::message::member;
use warden_protocol::method::NameKind;
use warden_telemetry::UpstreamEvent;

use super::{Exchange, Refusal, Target};
use crate::core::Gateway;

pub(crate) async fn run(_gw: &Gateway, ex: &mut Exchange<'_>) -> Result<(), Refusal> {
    let (server, item, is_tool) = match &ex.target {
        Target::Item {
            kind,
            server,
            upstream_name,
            ..
        } => (
            server.as_str(),
            upstream_name.as_str(),
            *kind == NameKind::Tool,
        ),
        Target::Resource { server, uri } if ex.msg.method() == "resources/read" => {
            (server.as_str(), uri.as_str(), false)
        }
        _ => return Ok(()),
    };
    let limiter = ex.snap.limiter.clone();
    let principal_key = ex.principal.key();
    let data = ex.principal.data();
    // Only loop detection reads the hash.
    let args_hash = if limiter.settings().loops.is_some() {
        ex.input_hash()
    } else {
        None
    };
    let cost = if is_tool {
        cost_of(ex, server, item)
    } else {
        None
    };
    let facts = CallFacts {
        principal: &principal_key,
        tenant: data.tenant.as_deref(),
        client: data.client_id.as_deref(),
        agent: data.agent_id.as_deref(),
        server,
        tool: item,
        args_hash: args_hash.as_deref(),
        cost: cost.as_ref().map(|(amount, unit)| (*amount, unit.as_str())),
    };
    let decided = match limiter.decide(&facts) {
        Decision::Now(decided) => decided,
        Decision::Shared(pending) => pending.await,
    };
    match decided {
        Ok(admission) => {
            ex.admission = Some(admission);
            Ok(())
        }
        Err(denial) => {
            let rule = format!("limits:{}", denial.rule());
            ex.call.note(|f| f.policy_ids.push(rule));
            Err(Refusal::Limited(denial))
        }
    }
}

/// The declared cost of a tool call (`servers.<s>.tools[].cost`), scaled
/// by its `per` argument when the call gives a number there.
fn cost_of(ex: &Exchange<'_>, server: &str, tool: &str) -> Option<(f64, String)> {
    let facts = ex.snap.server(server)?;
    let cost = facts
        .facts
        .item(warden_policy::ItemKind::Tool, tool)?
        .cost
        .as_ref()?;
    let scale = match &cost.per {
        None => 1.0,
        Some(arg) => ex
            .msg
            .param("arguments")
            .and_then(|a| member(a, arg))
            .and_then(|v| v.get().parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .map_or(1.0, |v| v.max(0.0)),
    };
    Some((cost.amount * scale, cost.unit.clone()))
}

/// After the stages: an admitted call that reached its upstream tells the
/// breakers how it went (only the upstream's own failures count against
/// it); one refused before the upstream is dropped, which refunds its
/// budget and frees its slots. Breaker transitions become audit records,
/// log lines and metrics.
pub(crate) fn settle(
    gw: &Arc<Gateway>,
    ex: &mut Exchange<'_>,
    answered: &Result<Option<String>, Refusal>,
) {
    let Some(admission) = ex.admission.take() else {
        return;
    };
    let reached = match answered {
        Ok(_) | Err(Refusal::OutputWithheld { .. }) => Some(true),
        Err(Refusal::Upstream { .. }) => Some(false),
        Err(_) => None,
    };
    match reached {
        Some(ok) => admission.finish(Outcome {
            ok,
            latency: ex.call.started.elapsed(),
        }),
        None => drop(admission),
    }
    for t in ex.snap.limiter.take_transitions() {
        warn!(target: "audit", event = "breaker.transition", scope = %t.scope, from = t.from, to = t.to, reason = %t.reason);
        let (server, tool) = match t.scope.split_once('/') {
            Some((s, tool)) => (s.to_owned(), Some(tool.to_owned())),
            None => (t.scope.clone(), None),
        };
        let event = match t.to {
            "open" => UpstreamEvent::BreakerOpen,
            "half_open" => UpstreamEvent::BreakerHalfOpen,
            _ => UpstreamEvent::BreakerClosed,
        };
        gw.metrics.upstream_event(&server, event);
        gw.record(warden_audit::Event {
            server: Some(server),
            tool,
            reason_code: Some(format!("breaker.{}", t.to)),
            lifecycle: Some(Box::new(warden_audit::Lifecycle {
                outcome: Some(format!("breaker {} -> {}", t.from, t.to)),
                error: Some(t.reason.clone()),
                ..Default::default()
            })),
            ..warden_audit::Event::new(warden_audit::EventKind::Breaker)
        });
    }
}
