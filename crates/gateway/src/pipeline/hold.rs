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
use warden_approvals::{
    Approval, ApprovalError, Approvals, ApproverRule, Binding, Held, HeldCall, Status,
};
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

/// The least time a session-era client gets to answer an in-band question.
const IN_BAND_AT_LEAST: Duration = Duration::from_secs(60);

/// The longest an argument value is shown as a target.
const TARGET_CHARS: usize = 200;

/// What the hold stage decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Go {
    /// Not held, or approved: the call goes on.
    On,
    /// The client cancelled the held call: nothing is forwarded or answered.
    Cancelled,
}

pub(crate) async fn run(gw: &Arc<Gateway>, ex: &mut Exchange<'_>) -> Result<Go, Refusal> {
    let Some(order) = ex.approval.take() else {
        return Ok(Go::On);
    };
    let Some((binding, call)) = held_call(ex, &order) else {
        return Err(order.required(None));
    };
    // While it is held, the call is in flight: a `notifications/cancelled`
    // for it ends the wait (the approval request stays for an approver).
    let cancel = Arc::new(tokio::sync::Notify::new());
    let _in_flight = HeldInFlight::enter(ex, cancel.clone());
    let ask = Ask {
        gw,
        snap: &ex.snap,
        session: &ex.session,
        sink: &ex.sink,
        principal: &ex.principal,
        progress: progress_token(ex),
        corr: &ex.call.corr,
    };
    let obtained = tokio::select! {
        r = obtain(&ask, &order, &binding, call) => Some(r),
        () = cancel.notified() => None,
    };
    let Some(obtained) = obtained else {
        info!(target: "audit", event = "approval.wait_cancelled", correlation_id = %ex.call.corr);
        ex.call
            .note(|f| f.reason_code = Some("approval_cancelled".into()));
        return Ok(Go::Cancelled);
    };
    match obtained {
        Ok(used) => {
            ex.call.note(|f| {
                f.approval = Some(facts(&used, "approved"));
                f.reason_code = Some("approval_granted".into());
                f.decision = Some(warden_audit::Decision::Allow);
            });
            Ok(Go::On)
        }
        Err((refusal, approval)) => {
            ex.call.note(|f| f.approval = approval);
            Err(refusal)
        }
    }
}

/// The held call's entry among the session's in-flight requests (what a
/// client's `notifications/cancelled` finds), removed when the hold ends.
struct HeldInFlight {
    session: Arc<crate::session::Session>,
    id: String,
    cancel: Arc<tokio::sync::Notify>,
}

impl HeldInFlight {
    fn enter(ex: &Exchange<'_>, cancel: Arc<tokio::sync::Notify>) -> HeldInFlight {
        crate::session::lock(&ex.session.inflight).insert(
            ex.id.to_owned(),
            crate::session::Inflight {
                server: ex.target.server().unwrap_or_default().to_owned(),
                upstream: None,
                sink: ex.sink.clone(),
                started: std::time::Instant::now(),
                cancel: cancel.clone(),
            },
        );
        HeldInFlight {
            session: ex.session.clone(),
            id: ex.id.to_owned(),
            cancel,
        }
    }
}

impl Drop for HeldInFlight {
    fn drop(&mut self) {
        let mut g = crate::session::lock(&self.session.inflight);
        // Only its own entry: the execute stage puts the call's next one.
        if g.get(&self.id)
            .is_some_and(|i| Arc::ptr_eq(&i.cancel, &self.cancel))
        {
            g.remove(&self.id);
        }
    }
}

impl Order {
    /// The refusal of a call held without a decision (`held`: the
    /// request it waits for, when there is one).
    fn required(&self, held: Option<Box<HeldNote>>) -> Refusal {
        Refusal::ApprovalRequired {
            reason: self.reason.clone(),
            requires: self.requires.clone(),
            held,
        }
    }
}

/// Who asks for an approval, and where the questions and progress go.
pub(crate) struct Ask<'a> {
    pub gw: &'a Arc<Gateway>,
    pub snap: &'a crate::snapshot::Snapshot,
    pub session: &'a crate::session::Session,
    pub sink: &'a crate::stream::Sink,
    pub principal: &'a warden_identity::Principal,
    /// The client's progress token, if it sent one.
    pub progress: Option<Value>,
    pub corr: &'a str,
}

/// An approval of the held call, consumed; or the refusal (and the
/// approval facts for the audit record).
pub(crate) async fn obtain(
    ask: &Ask<'_>,
    order: &Order,
    binding: &Binding,
    call: HeldCall,
) -> Result<Approval, (Refusal, Option<warden_audit::ApprovalFacts>)> {
    let gw = ask.gw;
    let Some(service) = gw.approvals() else {
        return Err((order.required(None), None));
    };
    let settings = ask.snap.config.approvals.clone();
    let failed = |e: ApprovalError| store_failed(ask, order, &e);
    let held = service
        .hold(binding, call, settings.expiry)
        .await
        .map_err(failed)?;
    let approval = match held {
        Held::Granted(a) => return consume(ask, order, &service, a).await,
        Held::Pending { approval, new } => {
            if new {
                gw.record_approval(&approval, "pending", None);
                gw.metrics.approval("requested", None);
                info!(target: "audit", event = "approval.requested", approval = %approval.id,
                      correlation_id = %ask.corr, server = %approval.call.server, item = %approval.call.item);
            }
            approval
        }
    };
    let pending = Some(warden_audit::ApprovalFacts {
        id: Some(approval.id.clone()),
        status: "pending".into(),
        ..Default::default()
    });

    if settings.in_band && approval.call.caller_may_approve() && ask.session.caps.elicitation {
        match ask_in_band(ask, &service, &approval).await {
            InBand::Approved(a) => return consume(ask, order, &service, a).await,
            InBand::Denied(a) => return Err(refused(&a, "denied")),
            InBand::NoDecision => {}
        }
    }

    // Out of band: wait for an approver, with progress.
    let wait = settings
        .wait
        .min(Duration::from_millis(remaining_ms(approval.expires_at)));
    let last = if wait.is_zero() {
        Some(approval.clone())
    } else {
        let mut n = 0u64;
        let id = approval.id.clone();
        let deadline = tokio::time::Instant::now() + wait;
        service
            .wait(&approval.id, deadline, settings.progress_every, || {
                if let Some(t) = &ask.progress {
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
                    ask.sink.send(msg.to_string().into());
                }
            })
            .await
            .map_err(failed)?
    };
    match last {
        Some(a) if a.status == Status::Approved => consume(ask, order, &service, a).await,
        Some(a) if a.status == Status::Denied => Err(refused(&a, "denied")),
        Some(a) if a.status == Status::Expired || a.lapsed(warden_approvals::now_ms()) => {
            Err(refused(&a, "expired"))
        }
        Some(a) => Err((order.required(Some(Box::new(note(&a)))), pending)),
        None => Err((order.required(None), pending)),
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

fn refused(a: &Approval, status: &'static str) -> (Refusal, Option<warden_audit::ApprovalFacts>) {
    (
        Refusal::ApprovalRefused {
            id: a.id.clone(),
            status,
            why: a.reason.clone(),
        },
        Some(facts(a, status)),
    )
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
            .decision_wait()
            .and_then(|d| u64::try_from(d.as_millis()).ok()),
    }
}

/// Uses the approval once; refused when another call used it first or
/// it lapsed in between.
async fn consume(
    ask: &Ask<'_>,
    order: &Order,
    service: &Approvals,
    a: Approval,
) -> Result<Approval, (Refusal, Option<warden_audit::ApprovalFacts>)> {
    match service.consume(&a.id).await {
        Ok(Some(used)) => {
            ask.gw.record_approval(&used, "consumed", Some(ask.corr));
            ask.gw.metrics.approval("consumed", None);
            info!(target: "audit", event = "approval.consumed", approval = %used.id,
                  correlation_id = %ask.corr);
            Ok(used)
        }
        Ok(None) => Err((
            Refusal::ApprovalRefused {
                id: a.id.clone(),
                status: "expired",
                why: Some("the approval was used by another call or lapsed".into()),
            },
            Some(facts(&a, "expired")),
        )),
        Err(e) => Err(store_failed(ask, order, &e)),
    }
}

/// Fail closed: nothing is forwarded without a working store.
fn store_failed(
    ask: &Ask<'_>,
    order: &Order,
    e: &ApprovalError,
) -> (Refusal, Option<warden_audit::ApprovalFacts>) {
    warn!(target: "audit", event = "approval.store_failed", correlation_id = %ask.corr, error = %e);
    (order.required(None), None)
}

/// What the caller's client answered.
enum InBand {
    Approved(Approval),
    Denied(Approval),
    /// No usable answer: wait out of band.
    NoDecision,
}

/// Asks the caller's own client.
async fn ask_in_band(ask: &Ask<'_>, service: &Approvals, a: &Approval) -> InBand {
    let params = elicitation_params(a);
    let (client_id, rx) = ask.session.ask(ask.sink, "elicitation/create", &params);
    info!(target: "audit", event = "approval.asked_in_band", approval = %a.id, correlation_id = %ask.corr);
    // How long the form may stay unanswered: a 2026-07-28 client comes
    // back with its retry whenever its user answers (the parked call
    // bounds it); a session-era client answers on this call's stream or
    // its GET stream — one that has neither never sees the question, so
    // it is not waited for longer than `approvals.wait` (at least a
    // minute); then the call waits out of band.
    let mut patience = Duration::from_millis(remaining_ms(a.expires_at));
    if ask.session.channel != crate::session::Channel::Modern {
        patience = patience.min(ask.snap.config.approvals.wait.max(IN_BAND_AT_LEAST));
    }
    let answer = tokio::time::timeout(patience, rx).await;
    let Ok(Ok(text)) = answer else {
        crate::session::lock(&ask.session.pending_s2c).remove(&client_id);
        return InBand::NoDecision;
    };
    let Some(reply) = Reply::read(&text) else {
        return InBand::NoDecision;
    };
    let roles = ask.principal.data().roles.clone();
    let key = ask.principal.key();
    let verdict = warden_approvals::Verdict {
        approve: reply.approve,
        by: &key,
        roles: &roles,
        reason: reply.reason.as_deref(),
        change_ticket: reply.change_ticket.as_deref(),
        in_band: true,
    };
    match service.decide(&a.id, &verdict).await {
        Ok(decided) => {
            ask.gw.approval_decided(&decided);
            if decided.status == Status::Approved {
                InBand::Approved(decided)
            } else {
                InBand::Denied(decided)
            }
        }
        // An approval missing what policy requires, or decided elsewhere
        // meanwhile: the out-of-band path reads what the store says.
        Err(e) => {
            info!(target: "audit", event = "approval.in_band_refused", approval = %a.id, error = %e);
            InBand::NoDecision
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
    let (binding, mut call) = describe(
        &ex.snap,
        order,
        &ex.principal,
        What {
            server,
            kind,
            item,
            arguments: ex.msg.param("arguments"),
            args_hash: ex.input_hash().unwrap_or_default(),
            corr: ex.call.corr.clone(),
        },
    );
    call.targets = ex
        .snap
        .config
        .approvals
        .targets
        .iter()
        .filter_map(|k| {
            let v = call.arguments.get(k)?;
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
    call.effect = def
        .and_then(|d| member(d, "description"))
        .and_then(as_str)
        .map(|s| crate::federation::truncate(&s, 1000));
    call.read_only = def
        .and_then(|d| member(d, "annotations"))
        .and_then(|a| member(a, "readOnlyHint"))
        .and_then(|v| serde_json::from_str::<bool>(v.get()).ok());
    call.risk = ex.call.risk_tier().map(|t| t.as_str().to_owned());
    Some((binding, call))
}

/// What is held: the item, its arguments as sent, their canonical hash.
struct What<'a> {
    server: String,
    kind: &'static str,
    item: String,
    arguments: Option<&'a serde_json::value::RawValue>,
    args_hash: String,
    corr: String,
}

/// The binding and the held thing as every approver sees it: the caller,
/// the item, the arguments shown with the guards' findings, the rules and
/// who may approve. Risk, read-only, targets and effect are the caller's
/// to add where it knows them.
fn describe(
    snap: &crate::snapshot::Snapshot,
    order: &Order,
    principal: &warden_identity::Principal,
    w: What<'_>,
) -> (Binding, HeldCall) {
    let (shown, findings) = shown_arguments(snap, w.arguments);
    let data = principal.data();
    let binding = Binding {
        principal: principal.key(),
        server: w.server.clone(),
        kind: w.kind.to_owned(),
        item: w.item.clone(),
        args_hash: w.args_hash.clone(),
    };
    let call = HeldCall {
        principal: principal.key(),
        subject: data.subject.clone(),
        tenant: data.tenant.clone(),
        client_id: data.client_id.clone(),
        agent_id: data.agent_id.clone(),
        server: w.server,
        kind: w.kind.to_owned(),
        item: w.item,
        arguments: shown,
        args_hash: w.args_hash,
        risk: None,
        read_only: None,
        targets: Default::default(),
        effect: None,
        findings,
        rules: order.rules.clone(),
        requires: order.requires.clone(),
        approvers: order.approvers.iter().map(ApproverRule::from).collect(),
        correlation_id: w.corr,
    };
    (binding, call)
}

/// The arguments as an approver sees them (sensitive key names and the
/// guards' secrets redacted) and the guards' sensitive-data findings.
fn shown_arguments(
    snap: &crate::snapshot::Snapshot,
    raw: Option<&serde_json::value::RawValue>,
) -> (Value, Vec<String>) {
    let mut shown: Value = raw
        .and_then(|a| serde_json::from_str(a.get()).ok())
        .unwrap_or(Value::Null);
    let guard = snap.guard.clone();
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
    (shown, findings.into_iter().collect())
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
    /// A server-to-client request (`sampling/createMessage`,
    /// `elicitation/create`) that policy holds for approval (T26): asked
    /// or waited for like a held call, bound to the request's exact
    /// params; approved, it goes to the client, otherwise the upstream gets
    /// the refusal and the client never sees the request.
    pub(crate) async fn hold_server_request(
        self: &Arc<Self>,
        snap: &crate::snapshot::Snapshot,
        session: &Arc<crate::session::Session>,
        sink: &crate::stream::Sink,
        handle: &Arc<crate::pool::UpstreamHandle>,
        text: &str,
        order: Order,
    ) {
        let Ok(msg) = parse_one(text) else { return };
        let Some(upstream_id) = msg.id else { return };
        let corr = self.correlation_id();
        let method = msg.method();
        let kind = if method == "sampling/createMessage" {
            "sampling"
        } else {
            "elicitation"
        };
        let principal = session.principal.clone();
        let (binding, mut call) = describe(
            snap,
            &order,
            &principal,
            What {
                server: handle.server.clone(),
                kind,
                item: method.to_owned(),
                arguments: msg.params,
                args_hash: msg.params.map(warden_audit::input_hash).unwrap_or_default(),
                corr: corr.clone(),
            },
        );
        call.effect = Some(if kind == "sampling" {
            "the server asks the client's model to write a message".to_owned()
        } else {
            "the server asks the user for input".to_owned()
        });
        let ask = Ask {
            gw: self,
            snap,
            session,
            sink,
            principal: &principal,
            progress: None,
            corr: &corr,
        };
        info!(target: "audit", event = "server_request.held", server = %handle.server,
              session = %session.id, method = %method, correlation_id = %corr);
        match obtain(&ask, &order, &binding, call).await {
            Ok(_) => self.forward_s2c(handle, &msg, session, sink),
            Err((refusal, _)) => {
                let answer = refusal.response(upstream_id.raw(), &corr);
                if let Err(e) = handle.upstream.respond(answer).await {
                    warn!(server = %handle.server, error = %e, "could not refuse a held server request");
                }
            }
        }
    }

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
        self.metrics.approval(status, a.decision_wait());
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
