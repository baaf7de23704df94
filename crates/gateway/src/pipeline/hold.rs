//! Stage 8, Hold: a call the policy marks as needing a human approval
//! (an `authorization.approvals` rule or a Cedar `@requires_approval`
//! policy) is not forwarded until a human approves exactly that call.
//!
//! 1. The approval is bound to the call ([`Binding`]: caller, server,
//!    item, canonical argument hash). An approved, unused approval of the
//!    same binding is consumed, once, and the call goes on.
//! 2. Otherwise a request is created (or a retry finds its pending one),
//!    showing the approver the call: arguments with secrets redacted, the
//!    target arguments, risk, read-only or not, the pinned description,
//!    the guards' findings, who may approve, what the approval must carry.
//! 3. In band, where policy lets the caller approve and their client
//!    declared `elicitation`: Warden asks with `elicitation/create` (a
//!    session-era client gets the request on the call's stream; a
//!    2026-07-28 client an input-required result, and its retry resumes
//!    the call). Approvals policy reserves for someone else never go in
//!    band: the client's own model must not be able to approve them.
//! 4. Out of band: the call waits up to `approvals.wait` for a decision
//!    through the admin API or `warden approvals approve` (on this
//!    process or any other sharing the store), sending progress while it
//!    waits; then it goes on, is refused, or ends with an error naming
//!    the approval, so that the same call sent again after the approval
//!    goes through.
//!
//! No approval store (the core run without one): refused with
//! `-32013 approval required`, as before approvals existed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tracing::{info, warn};
use warden_approvals::{Approval, Approvals, ApproverRule, Binding, Held, HeldCall, Status};
use warden_protocol::message::{as_str, member, parse_one};

use super::refusal::HeldNote;
use super::{Exchange, Refusal, Target};
use crate::core::Gateway;

/// What the authorize stage hands to this one: the policy's demand.
#[derive(Debug, Clone)]
pub struct Order {
    /// The reason code (`approval_required`).
    pub reason: String,
    /// Facts the approval must carry (`change_ticket`, `reason`).
    pub requires: Vec<String>,
    /// Who may approve, one per approval policy that applies.
    pub approvers: Vec<warden_policy::Approvers>,
    /// The approval policies that hold the call.
    pub rules: Vec<String>,
}

/// The longest an argument value is shown as a target.
const TARGET_CHARS: usize = 200;

pub(crate) async fn run(gw: &Arc<Gateway>, ex: &mut Exchange<'_>) -> Result<(), Refusal> {
    let Some(order) = ex.approval.take() else {
        return Ok(());
    };
    let required = |held: Option<Box<HeldNote>>| Refusal::ApprovalRequired {
        reason: order.reason.clone(),
        requires: order.requires.clone(),
        held,
    };
    let Some(service) = gw.approvals() else {
        return Err(required(None));
    };
    let Some((binding, call)) = held_call(ex, &order) else {
        return Err(required(None));
    };
    let settings = ex.snap.config.approvals.clone();
    let held = match service.hold(&binding, call, settings.expiry).await {
        Ok(h) => h,
        Err(e) => {
            // Fail closed: nothing is forwarded without a working store.
            warn!(target: "audit", event = "approval.store_failed", correlation_id = %ex.call.corr, error = %e);
            return Err(required(None));
        }
    };
    let approval = match held {
        Held::Granted(a) => return consume(gw, ex, &service, a).await,
        Held::Pending { approval, new } => {
            if new {
                gw.record_approval(&approval, "pending", None);
                gw.metrics.approval("requested", None);
                info!(target: "audit", event = "approval.requested", approval = %approval.id,
                      correlation_id = %ex.call.corr, server = %approval.call.server, item = %approval.call.item);
            }
            approval
        }
    };
    ex.call.note(|f| {
        f.approval = Some(warden_audit::ApprovalFacts {
            id: Some(approval.id.clone()),
            status: "pending".into(),
            ..Default::default()
        });
    });

    let deadline_ms = approval.expires_at;
    if settings.in_band && approval.call.caller_may_approve() && ex.session.caps.elicitation {
        if let Some(a) = ask_in_band(gw, ex, &service, &approval).await? {
            return consume(gw, ex, &service, a).await;
        }
    }

    // Out of band: wait for an approver, with progress.
    let wait = settings
        .wait
        .min(Duration::from_millis(remaining_ms(deadline_ms)));
    let last = if wait.is_zero() {
        Some(approval.clone())
    } else {
        let token = progress_token(ex);
        let mut n = 0u64;
        let sink = ex.sink.clone();
        let id = approval.id.clone();
        let deadline = tokio::time::Instant::now() + wait;
        let result = service
            .wait(&approval.id, deadline, settings.progress_every, || {
                if let Some(t) = &token {
                    n += 1;
                    let msg = serde_json::json!({
                        "jsonrpc": "2.0",
                        "method": "notifications/progress",
                        "params": {
                            "progressToken": t,
                            "progress": n,
                            "message": format!("waiting for approval {id}"),
                        }
                    });
                    sink.send(msg.to_string().into());
                }
            })
            .await;
        match result {
            Ok(a) => a,
            Err(e) => {
                warn!(target: "audit", event = "approval.store_failed", correlation_id = %ex.call.corr, error = %e);
                return Err(required(None));
            }
        }
    };
    match last {
        Some(a) if a.status == Status::Approved => consume(gw, ex, &service, a).await,
        Some(a) if a.status == Status::Denied => Err(refused(ex, &a, "denied")),
        Some(a) if a.status == Status::Expired || a.lapsed(warden_approvals::now_ms()) => {
            Err(refused(ex, &a, "expired"))
        }
        Some(a) => Err(required(Some(Box::new(note(&a))))),
        None => Err(required(None)),
    }
}

fn remaining_ms(deadline_ms: i64) -> u64 {
    u64::try_from(deadline_ms.saturating_sub(warden_approvals::now_ms())).unwrap_or(0)
}

/// The note the client gets while its call waits.
fn note(a: &Approval) -> HeldNote {
    HeldNote {
        id: a.id.clone(),
        expires_at: rfc3339(a.expires_at),
        approvers: a.call.approvers_text(),
    }
}

pub(crate) fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn refused(ex: &Exchange<'_>, a: &Approval, status: &'static str) -> Refusal {
    ex.call.note(|f| {
        f.approval = Some(facts(a, status));
    });
    Refusal::ApprovalRefused {
        id: a.id.clone(),
        status,
        why: a.reason.clone(),
    }
}

fn facts(a: &Approval, status: &str) -> warden_audit::ApprovalFacts {
    warden_audit::ApprovalFacts {
        id: Some(a.id.clone()),
        status: status.to_owned(),
        approver: a.decided_by.clone(),
        reason: a.reason.clone(),
        change_ticket: a.change_ticket.clone(),
        in_band: a.in_band,
        wait_ms: a
            .decided_at
            .and_then(|d| u64::try_from(d.saturating_sub(a.created_at)).ok()),
    }
}

/// Uses the approval once and lets the call go on; refused when another
/// call used it first or it lapsed in between.
async fn consume(
    gw: &Arc<Gateway>,
    ex: &mut Exchange<'_>,
    service: &Approvals,
    a: Approval,
) -> Result<(), Refusal> {
    match service.consume(&a.id).await {
        Ok(Some(used)) => {
            gw.record_approval(&used, "consumed", Some(&ex.call.corr));
            gw.metrics.approval("consumed", None);
            info!(target: "audit", event = "approval.consumed", approval = %used.id,
                  correlation_id = %ex.call.corr);
            ex.call.note(|f| {
                f.approval = Some(facts(&used, "approved"));
                f.reason_code = Some("approval_granted".into());
                f.decision = Some(warden_audit::Decision::Allow);
            });
            Ok(())
        }
        Ok(None) => Err(Refusal::ApprovalRefused {
            id: a.id,
            status: "expired",
            why: Some("the approval was used by another call or lapsed".into()),
        }),
        Err(e) => {
            warn!(target: "audit", event = "approval.store_failed", correlation_id = %ex.call.corr, error = %e);
            Err(Refusal::ApprovalRequired {
                reason: "approval_required".into(),
                requires: Vec::new(),
                held: None,
            })
        }
    }
}

/// Asks the caller's own client. `Ok(Some)`: approved (to consume);
/// `Ok(None)`: no usable answer (wait out of band); `Err`: denied.
async fn ask_in_band(
    gw: &Arc<Gateway>,
    ex: &Exchange<'_>,
    service: &Approvals,
    a: &Approval,
) -> Result<Option<Approval>, Refusal> {
    let params = elicitation_params(a);
    let (client_id, rx) = ex.session.ask(&ex.sink, "elicitation/create", &params);
    info!(target: "audit", event = "approval.asked_in_band", approval = %a.id, correlation_id = %ex.call.corr);
    let answer = tokio::time::timeout(Duration::from_millis(remaining_ms(a.expires_at)), rx).await;
    let Ok(Ok(text)) = answer else {
        crate::session::lock(&ex.session.pending_s2c).remove(&client_id);
        return Ok(None);
    };
    let Some(reply) = Reply::read(&text) else {
        return Ok(None);
    };
    let roles = ex.principal.data().roles.clone();
    let key = ex.principal.key();
    let verdict = warden_approvals::Verdict {
        approve: reply.approve,
        by: &key,
        roles: &roles,
        reason: reply.reason.as_deref(),
        change_ticket: reply.change_ticket.as_deref(),
        in_band: true,
    };
    match service.decide(&a.id, &verdict).await {
        Ok(decided) if decided.status == Status::Approved => {
            gw.approval_decided(&decided);
            Ok(Some(decided))
        }
        Ok(decided) => {
            gw.approval_decided(&decided);
            Err(refused(ex, &decided, "denied"))
        }
        // An approval missing what policy requires, or decided elsewhere
        // meanwhile: the out-of-band path reads what the store says.
        Err(e) => {
            info!(target: "audit", event = "approval.in_band_refused", approval = %a.id, error = %e);
            Ok(None)
        }
    }
}

/// The client's answer to the approval form.
struct Reply {
    approve: bool,
    reason: Option<String>,
    change_ticket: Option<String>,
}

impl Reply {
    /// A decision: `accept` with `decision` approve or deny, or `decline`
    /// (deny). `None` — no decision — for `cancel` (the user dismissed the
    /// form), an error response, or a form without a decision: the call
    /// then waits out of band.
    fn read(text: &str) -> Option<Reply> {
        let m = parse_one(text).ok()?;
        let result = m.result?;
        let action = member(result, "action").and_then(as_str)?;
        let content = member(result, "content");
        let field = |k: &str| {
            content
                .and_then(|c| member(c, k))
                .and_then(as_str)
                .map(|s| s.into_owned())
        };
        let approve = match (action.as_ref(), field("decision").as_deref()) {
            ("accept", Some("approve")) => true,
            ("accept", Some("deny")) | ("decline", _) => false,
            _ => return None,
        };
        Some(Reply {
            approve,
            reason: field("reason"),
            change_ticket: field("change_ticket"),
        })
    }
}

/// The `elicitation/create` params: a message that shows the call, and a
/// form asking approve/deny plus what policy requires.
fn elicitation_params(a: &Approval) -> String {
    let c = &a.call;
    let mut lines = vec![format!(
        "Approval {} — {} {} on server {}",
        a.id, c.kind, c.item, c.server
    )];
    if let Some(e) = &c.effect {
        lines.push(format!(
            "What it does: {}",
            crate::federation::truncate(e, 300)
        ));
    }
    lines.push(format!(
        "Arguments: {}",
        crate::federation::truncate(&c.arguments.to_string(), 1000)
    ));
    for (k, v) in &c.targets {
        lines.push(format!("Target {k}: {v}"));
    }
    if let Some(r) = &c.risk {
        lines.push(format!("Risk: {r}"));
    }
    lines.push(match c.read_only {
        Some(true) => "Read-only".into(),
        _ => "Changes state".into(),
    });
    if !c.findings.is_empty() {
        lines.push(format!(
            "Sensitive data in the arguments: {}",
            c.findings.join(", ")
        ));
    }
    lines.push(format!("Expires: {}", rfc3339(a.expires_at)));
    let mut properties = serde_json::json!({
        "decision": {
            "type": "string",
            "title": "Decision",
            "description": "approve this exact call, or deny it",
            "enum": ["approve", "deny"],
        },
        "reason": {"type": "string", "title": "Reason"},
    });
    let mut required = vec!["decision"];
    if c.requires.iter().any(|r| r == "change_ticket") {
        properties["change_ticket"] =
            serde_json::json!({"type": "string", "title": "Change ticket"});
        required.push("change_ticket");
    }
    if c.requires.iter().any(|r| r == "reason") {
        required.push("reason");
    }
    serde_json::json!({
        "mode": "form",
        "message": lines.join("\n"),
        "requestedSchema": {
            "type": "object",
            "properties": properties,
            "required": required,
        }
    })
    .to_string()
}

fn progress_token(ex: &Exchange<'_>) -> Option<Value> {
    let meta = ex.msg.param("_meta")?;
    let t = member(meta, "progressToken")?;
    serde_json::from_str(t.get()).ok()
}

/// The binding and the held call as approvers see it; `None` for a
/// target that is not an item (never held).
fn held_call(ex: &Exchange<'_>, order: &Order) -> Option<(Binding, HeldCall)> {
    let (server, kind, item) = match &ex.target {
        Target::Item {
            kind,
            server,
            upstream_name,
            ..
        } => (
            server.clone(),
            if *kind == warden_protocol::method::NameKind::Tool {
                "tool"
            } else {
                "prompt"
            },
            upstream_name.clone(),
        ),
        Target::Resource { server, uri } => (server.clone(), "resource", uri.clone()),
        _ => return None,
    };
    let args_hash = ex.call.input_hash().unwrap_or_default();
    let raw_args = ex.msg.param("arguments");
    let mut shown: Value = raw_args
        .and_then(|a| serde_json::from_str(a.get()).ok())
        .unwrap_or(Value::Null);
    // Sensitive-data findings, then the secrets out.
    let guard = ex.snap.guard.clone();
    let mut findings = BTreeSet::new();
    strings(&shown, &mut |s| {
        for d in guard.detect(s) {
            if matches!(
                d.family,
                warden_guard::Family::Secret | warden_guard::Family::Pii
            ) {
                findings.insert(d.class.to_owned());
            }
        }
    });
    warden_audit::Redactor::new().redact_value(&mut shown);
    warden_audit::scrub_value(
        &move |text: &str| {
            guard
                .detect(text)
                .into_iter()
                .filter(|d| d.family == warden_guard::Family::Secret)
                .map(|d| (d.span, d.class))
                .collect::<Vec<_>>()
        },
        &mut shown,
    );
    let targets = ex
        .snap
        .config
        .approvals
        .targets
        .iter()
        .filter_map(|k| {
            let v = shown.get(k)?;
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => return None,
                other => other.to_string(),
            };
            Some((k.clone(), crate::federation::truncate(&text, TARGET_CHARS)))
        })
        .collect();
    let def = ex.tool_json().or_else(|| {
        ex.definition
            .as_ref()
            .and_then(|d| serde_json::from_str(&d.def).ok())
    });
    let effect = def
        .and_then(|d| member(d, "description"))
        .and_then(as_str)
        .map(|s| crate::federation::truncate(&s, 1000));
    let read_only = def
        .and_then(|d| member(d, "annotations"))
        .and_then(|a| member(a, "readOnlyHint"))
        .and_then(|v| serde_json::from_str::<bool>(v.get()).ok());
    let data = ex.principal.data();
    let principal = ex.principal.key();
    let binding = Binding {
        principal: principal.clone(),
        server: server.clone(),
        kind: kind.to_owned(),
        item: item.clone(),
        args_hash: args_hash.clone(),
    };
    let call = HeldCall {
        principal,
        subject: data.subject.clone(),
        tenant: data.tenant.clone(),
        client_id: data.client_id.clone(),
        agent_id: data.agent_id.clone(),
        server,
        kind: kind.to_owned(),
        item,
        arguments: shown,
        args_hash,
        risk: ex.call.risk_tier().map(|t| t.as_str().to_owned()),
        read_only,
        targets,
        effect,
        findings: findings.into_iter().collect(),
        rules: order.rules.clone(),
        requires: order.requires.clone(),
        approvers: order.approvers.iter().map(ApproverRule::from).collect(),
        correlation_id: ex.call.corr.clone(),
    };
    Some((binding, call))
}

/// Every string (keys too) in `v`.
fn strings(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, f)),
        Value::Object(m) => {
            for (k, x) in m {
                f(k);
                strings(x, f);
            }
        }
        _ => {}
    }
}

impl Gateway {
    /// The approval service, once installed ([`Gateway::set_approvals`]).
    pub fn approvals(&self) -> Option<Arc<Approvals>> {
        self.approvals.load_full()
    }

    /// Installs the approval service (started by the caller) and sweeps
    /// lapsed approvals every few seconds (each one audited once, by
    /// whichever process marks it).
    pub fn set_approvals(self: &Arc<Self>, approvals: Option<Arc<Approvals>>) {
        self.approvals.store(approvals.clone());
        let Some(service) = approvals else { return };
        let gw = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                let Some(gw) = gw.upgrade() else { return };
                match service.sweep().await {
                    Ok(gone) => {
                        for a in gone {
                            gw.metrics.approval("expired", None);
                            gw.record_approval(&a, "expired", None);
                        }
                    }
                    Err(e) => warn!(error = %e, "approvals: sweeping lapsed approvals failed"),
                }
            }
        });
    }

    /// Audits and counts a decision (in band here; out of band by the
    /// admin API).
    pub fn approval_decided(&self, a: &Approval) {
        let status = a.status.as_str();
        let waited = a
            .decided_at
            .and_then(|d| u64::try_from(d.saturating_sub(a.created_at)).ok())
            .map(Duration::from_millis);
        self.metrics.approval(status, waited);
        self.record_approval(a, status, None);
        info!(target: "audit", event = "approval.decided", approval = %a.id, status = %status,
              in_band = a.in_band);
    }

    /// One `approval` audit record: the held call's facts, the approval's.
    pub fn record_approval(&self, a: &Approval, status: &str, corr: Option<&str>) {
        let c = &a.call;
        self.record(warden_audit::Event {
            correlation_id: Some(corr.unwrap_or(&c.correlation_id).to_owned()),
            principal: Some(warden_audit::PrincipalFacts {
                subject: c.subject.clone(),
                tenant: c.tenant.clone(),
                client_id: c.client_id.clone(),
                agent_id: c.agent_id.clone(),
                roles: Vec::new(),
            }),
            server: Some(c.server.clone()),
            tool: Some(c.item.clone()),
            action: Some(
                match c.kind.as_str() {
                    "tool" => "call_tool",
                    "prompt" => "get_prompt",
                    _ => "read_resource",
                }
                .into(),
            ),
            risk_tier: c.risk.as_deref().and_then(|r| {
                warden_audit::RiskTier::ALL
                    .into_iter()
                    .find(|t| t.as_str() == r)
            }),
            policy_ids: c.rules.clone(),
            input_hash: (!c.args_hash.is_empty()).then(|| c.args_hash.clone()),
            approval: Some(facts(a, status)),
            ..warden_audit::Event::new(warden_audit::EventKind::Approval)
        });
    }
}
