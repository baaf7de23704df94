//! Stage 5, Authorize: the credential's scopes, then the policy engine
//! (Cedar) over principal, action, resource and context. Default deny,
//! `forbid` wins; every outcome is noted for the audit record. Lists
//! check the discover scopes here and each item's discovery when the
//! pages arrive ([`Gateway::may_list`]); server-to-client requests are
//! judged by [`s2c_refusal`]. No I/O: the engine is in the snapshot and
//! the clock is read once here.

use std::time::Instant;

use serde_json::value::RawValue;
use tracing::info;
use warden_identity::Principal;
use warden_protocol::method::{ListKind, NameKind};
use warden_protocol::ErrorCode;

use super::{Exchange, Refusal, Target};
use crate::core::Gateway;
use crate::session::{lock, Session};
use crate::snapshot::{Snapshot, VirtualRoute};

/// An approval the policy requires: the hold stage's order.
type Approval = super::hold::Order;

pub(crate) fn run(gw: &Gateway, ex: &mut Exchange<'_>) -> Result<(), Refusal> {
    let _span = warden_telemetry::stage_span(warden_telemetry::Stage::Policy).entered();
    ex.approval = judge(gw, ex)?;
    Ok(())
}

fn judge(gw: &Gateway, ex: &Exchange<'_>) -> Result<Option<Approval>, Refusal> {
    match &ex.target {
        Target::Unrouted | Target::Local => Ok(None),
        Target::List { kind, .. } => check_scopes(
            ex,
            warden_policy::Action::Discover(item_kind_of(*kind)),
            "",
            "",
        )
        .map(|()| None),
        Target::Broadcast { .. } => {
            // A session control: whoever may discover may choose how much
            // the upstreams log to them.
            check_scopes(
                ex,
                warden_policy::Action::Discover(warden_policy::ItemKind::Tool),
                "",
                "",
            )
            .map(|()| None)
        }
        Target::Item {
            kind,
            server,
            upstream_name,
            exposed,
        } => {
            let (action, what) = match kind {
                NameKind::Tool => (warden_policy::Action::CallTool, "tool"),
                _ => (warden_policy::Action::GetPrompt, "prompt"),
            };
            let annotations = ex.tool().and_then(|d| d.annotations.as_deref());
            let arguments = ex.msg.param("arguments");
            let approval = decide(
                gw,
                ex,
                action,
                server,
                upstream_name,
                arguments,
                annotations,
            )
            .map_err(|r| hide_if_configured(&ex.snap, r, what, exposed))?;
            if ex.definition.is_none() {
                // The registry's verdict on an item the upstream does not
                // offer now, given after policy so that a denied caller
                // cannot probe which items exist.
                return Err(Refusal::UnknownItem {
                    what,
                    shown: exposed.clone(),
                    reason_code: Some("registry.not_offered".into()),
                });
            }
            Ok(approval)
        }
        Target::Resource { server, uri } => {
            let action = if ex.msg.method() == "resources/read" {
                warden_policy::Action::ReadResource
            } else {
                warden_policy::Action::Subscribe
            };
            decide(gw, ex, action, server, uri, None, None)
                .map_err(|r| hide_if_configured(&ex.snap, r, "resource", uri))
        }
        Target::CompletePrompt {
            server,
            upstream_name,
            ..
        } => {
            // Completion suggests values for an item's arguments: whoever
            // may see the item may ask, nobody else learns it exists.
            let action = warden_policy::Action::Discover(warden_policy::ItemKind::Prompt);
            check_scopes(ex, action, server, upstream_name)?;
            let reason = if !may_discover(&ex.snap, &ex.principal, action, server, upstream_name) {
                Some("default_deny")
            } else if ex.definition.is_none() {
                Some("registry.not_offered")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(Refusal::UnknownItem {
                    what: "prompt",
                    shown: upstream_name.clone(),
                    reason_code: Some(reason.into()),
                });
            }
            note_allowed(ex);
            Ok(None)
        }
        Target::CompleteResource { server, uri } => {
            let action = warden_policy::Action::Discover(warden_policy::ItemKind::Resource);
            check_scopes(ex, action, server, uri)?;
            if !may_discover(&ex.snap, &ex.principal, action, server, uri) {
                return Err(Refusal::InvalidParams("unknown resource".into()));
            }
            note_allowed(ex);
            Ok(None)
        }
    }
}

fn note_allowed(ex: &Exchange<'_>) {
    if ex.snap.policy.is_some() {
        ex.call
            .note(|f| f.decision = Some(warden_audit::Decision::Allow));
    }
}

/// With `deny_as_unknown`, a denial looks like an item that does not exist.
fn hide_if_configured(snap: &Snapshot, r: Refusal, what: &'static str, shown: &str) -> Refusal {
    match r {
        Refusal::PolicyDenied { reason } if engine_hides_denials(snap) => {
            if what == "resource" {
                Refusal::ResourceNotFound {
                    uri: shown.to_owned(),
                }
            } else {
                Refusal::UnknownItem {
                    what,
                    shown: shown.to_owned(),
                    reason_code: Some(reason),
                }
            }
        }
        other => other,
    }
}

fn item_kind_of(kind: ListKind) -> warden_policy::ItemKind {
    match kind {
        ListKind::Tools => warden_policy::ItemKind::Tool,
        ListKind::Prompts => warden_policy::ItemKind::Prompt,
        _ => warden_policy::ItemKind::Resource,
    }
}

pub(crate) fn request<'a>(
    principal: &'a Principal,
    action: warden_policy::Action,
    server: &'a str,
    resource: &'a str,
) -> warden_policy::Request<'a> {
    warden_policy::Request {
        principal,
        action,
        server,
        resource,
        arguments: None,
        annotations: None,
        context: warden_policy::RequestContext::at(std::time::SystemTime::now()),
    }
}

/// The scopes the action needs on this item (none without a policy).
fn check_scopes(
    ex: &Exchange<'_>,
    action: warden_policy::Action,
    server: &str,
    item: &str,
) -> Result<(), Refusal> {
    let Some(engine) = ex.snap.policy.as_ref() else {
        return Ok(());
    };
    match engine.check_scopes(&request(&ex.principal, action, server, item)) {
        warden_policy::ScopeCheck::Missing(scopes) => {
            ex.call.note(|f| f.required_scopes = Some(scopes.clone()));
            Err(Refusal::InsufficientScope { scopes })
        }
        _ => Ok(()),
    }
}

/// Scopes, then the policy engine, for one item.
fn decide(
    gw: &Gateway,
    ex: &Exchange<'_>,
    action: warden_policy::Action,
    server: &str,
    item: &str,
    arguments: Option<&RawValue>,
    annotations: Option<&RawValue>,
) -> Result<Option<Approval>, Refusal> {
    let Some(engine) = ex.snap.policy.as_ref() else {
        return Ok(None);
    };
    let classes = lock(&ex.session.data_classes).clone();
    let req = warden_policy::Request {
        principal: &ex.principal,
        action,
        server,
        resource: item,
        arguments,
        annotations,
        context: warden_policy::RequestContext {
            session: warden_policy::SessionFacts {
                data_classes: &classes,
            },
            client_address: ex.call.client_addr.map(|a| a.ip()),
            ..warden_policy::RequestContext::at(std::time::SystemTime::now())
        },
    };
    let tier = action
        .item_kind()
        .and_then(|k| engine.risk_tier(server, k, item, annotations));
    ex.call.note(|f| f.risk_tier = tier);
    if let warden_policy::ScopeCheck::Missing(scopes) = engine.check_scopes(&req) {
        ex.call.note(|f| f.required_scopes = Some(scopes.clone()));
        return Err(Refusal::InsufficientScope { scopes });
    }
    let started = Instant::now();
    let decision = engine.decide(&req);
    gw.metrics
        .stage(warden_telemetry::Stage::Policy, started.elapsed());
    gw.metrics.policy_decision(match decision {
        warden_policy::Decision::Allow { .. } => warden_telemetry::PolicyDecision::Allow,
        warden_policy::Decision::Deny { .. } => warden_telemetry::PolicyDecision::Deny,
        warden_policy::Decision::RequiresApproval { .. } => {
            warden_telemetry::PolicyDecision::ApprovalRequired
        }
    });
    ex.call.note(|f| {
        f.decision = Some(match decision {
            warden_policy::Decision::Allow { .. } => warden_audit::Decision::Allow,
            warden_policy::Decision::Deny { .. } => warden_audit::Decision::Deny,
            warden_policy::Decision::RequiresApproval { .. } => warden_audit::Decision::Hold,
        });
        f.policy_ids = decision.policies().to_vec();
        f.reason_code = Some(decision.reason().to_owned());
    });
    match decision {
        warden_policy::Decision::Allow { .. } => Ok(None),
        warden_policy::Decision::Deny { reason, .. } => Err(Refusal::PolicyDenied {
            reason: reason.as_str().to_owned(),
        }),
        warden_policy::Decision::RequiresApproval {
            reason,
            requires,
            approvers,
            policies,
        } => {
            // Stage 8 (hold) decides what happens to it.
            Ok(Some(super::hold::Order {
                reason: reason.as_str().to_owned(),
                requires: requires.iter().map(|r| r.as_str().to_owned()).collect(),
                approvers,
                rules: policies,
            }))
        }
    }
}

/// Whether the caller may see an item in a list.
fn may_discover(
    snap: &Snapshot,
    principal: &Principal,
    action: warden_policy::Action,
    server: &str,
    item: &str,
) -> bool {
    let Some(engine) = snap.policy.as_ref() else {
        return true;
    };
    engine
        .decide(&request(principal, action, server, item))
        .is_allow()
}

impl Gateway {
    /// Whether a list item (by its exposed key) is shown to the caller.
    pub(crate) fn may_list(
        &self,
        ex: &Exchange<'_>,
        route: &VirtualRoute,
        kind: ListKind,
        server: &str,
        key: &str,
    ) -> bool {
        let snap = &ex.snap;
        if snap.policy.is_none() {
            return true;
        }
        let name = match kind {
            ListKind::Tools | ListKind::Prompts => match route.resolve(&snap.namer, key) {
                Some((_, n)) => n,
                None => return false,
            },
            _ => key,
        };
        may_discover(
            snap,
            &ex.principal,
            warden_policy::Action::Discover(item_kind_of(kind)),
            server,
            name,
        )
    }
}

/// Whether a server may put this request (sampling, elicitation, roots)
/// to this session's client: the client declared the capability, and
/// policy allows this server to ask this principal. `None`: it may.
pub(crate) fn s2c_refusal(
    snap: &Snapshot,
    session: &Session,
    server: &str,
    method: &str,
) -> Option<(ErrorCode, &'static str)> {
    match s2c_decision(snap, session, server, method) {
        S2c::Allow => None,
        S2c::Refuse(code, why) => Some((code, why)),
        // Where no call can wait (an input request bridged into a call's
        // retry), a held server request is refused.
        S2c::Hold(_) => Some((
            ErrorCode::ApprovalRequired,
            "this server request needs an approval",
        )),
    }
}

/// What becomes of a server-to-client request.
pub(crate) enum S2c {
    Allow,
    Refuse(ErrorCode, &'static str),
    /// Policy holds it for a human approval (T26).
    Hold(super::hold::Order),
}

/// Judges a server-to-client request: the client must support it, and
/// the caller's policy must allow it (or hold it for approval).
pub(crate) fn s2c_decision(snap: &Snapshot, session: &Session, server: &str, method: &str) -> S2c {
    let supported = match method {
        "sampling/createMessage" => session.caps.sampling,
        "elicitation/create" => session.caps.elicitation,
        "roots/list" => session.caps.roots,
        _ => false,
    };
    if !supported {
        return S2c::Refuse(
            ErrorCode::MethodNotFound,
            "the client does not support this request",
        );
    }
    let action = match method {
        "sampling/createMessage" => warden_policy::Action::Sample,
        "elicitation/create" => warden_policy::Action::Elicit,
        _ => return S2c::Allow,
    };
    let Some(engine) = snap.policy.as_ref() else {
        return S2c::Allow;
    };
    let decision = engine.decide(&request(&session.principal, action, server, ""));
    match decision {
        warden_policy::Decision::Allow { .. } => S2c::Allow,
        warden_policy::Decision::RequiresApproval {
            reason,
            requires,
            approvers,
            policies,
        } => S2c::Hold(super::hold::Order {
            reason: reason.as_str().to_owned(),
            requires: requires.iter().map(|r| r.as_str().to_owned()).collect(),
            approvers,
            rules: policies,
        }),
        warden_policy::Decision::Deny { .. } => {
            info!(target: "audit", event = "server_request.denied", server = %server,
                  session = %session.id, method = %method, reason = %decision.reason());
            S2c::Refuse(ErrorCode::PolicyDenied, "denied by policy")
        }
    }
}

fn engine_hides_denials(snap: &Snapshot) -> bool {
    snap.config
        .authorization
        .as_ref()
        .is_some_and(|a| a.deny_as_unknown())
}
