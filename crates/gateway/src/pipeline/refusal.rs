//! Every reason Warden refuses or fails a client request, mapped in one
//! place to the JSON-RPC error (or, for a tool's arguments that fail its
//! schema, an `isError` tool result), the HTTP status, the audit decision
//! and reason code, and the log line. Stages return a [`Refusal`]; no stage
//! writes an error string and no later code re-parses a response to learn
//! what happened.

use std::fmt;

use http::StatusCode;
use tracing::{info, warn};
use warden_protocol::error::{error_response, result_response};
use warden_protocol::ErrorCode;

use crate::federation::truncate;

/// The approval request a held call waits for, as the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldNote {
    pub id: String,
    /// RFC 3339.
    pub expires_at: String,
    /// Who may approve, in words.
    pub approvers: String,
}

/// Why a request is not served as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Malformed params (a missing or mistyped member).
    InvalidParams(String),
    /// An item the caller may not know exists, or that does not exist:
    /// `unknown tool: …` (policy with `deny_as_unknown`, a poisoned
    /// manifest, an item the upstream no longer offers).
    UnknownItem {
        what: &'static str,
        shown: String,
        reason_code: Option<String>,
    },
    /// No server serves this URI.
    ResourceNotFound {
        uri: String,
    },
    MethodNotFound,
    /// `initialize` on a session that has one.
    AlreadyInitialized,
    /// The session's virtual server was removed by a reload.
    VirtualServerGone,
    /// The credential lacks scopes (HTTP 403 `insufficient_scope`).
    InsufficientScope {
        scopes: Vec<String>,
    },
    /// The policy engine said no.
    PolicyDenied {
        reason: String,
    },
    /// The policy requires a human approval first, and none was given in
    /// time: `held` names the request an approver can decide (`None`: no
    /// approval store is running, or it could not be reached).
    ApprovalRequired {
        reason: String,
        requires: Vec<String>,
        held: Option<Box<HeldNote>>,
    },
    /// The approval was denied, or lapsed before anyone decided.
    ApprovalRefused {
        id: String,
        /// `denied` or `expired`.
        status: &'static str,
        /// The approver's reason, if they gave one.
        why: Option<String>,
    },
    /// The item's live manifest is not the pinned one (drift, unpinned).
    NotApproved {
        message: String,
        reason_code: String,
    },
    /// The server's pinned identity changed, or it is not approved.
    ServerNotApproved {
        server: String,
        changed: bool,
        reason_code: String,
    },
    /// The arguments fail the tool's schema: a tool result with
    /// `isError: true` so the model can correct itself (MCP 2025-11-25).
    ArgumentsInvalid {
        path: String,
        rule: String,
        message: String,
    },
    /// The input guard refused the arguments (limits, characters,
    /// injection): a JSON-RPC error.
    InputRejected {
        path: String,
        rule: String,
        message: String,
    },
    /// A 2026-07-28 `Mcp-Param-*` header disagrees with the body.
    HeaderMismatch {
        code: ErrorCode,
        message: String,
    },
    /// A forged or misrouted 2026-07-28 `requestState`.
    RequestStateInvalid(&'static str),
    /// The upstream failed, timed out or sent something unreadable.
    Upstream {
        server: String,
        what: String,
    },
    /// An upstream's input request could not be bridged to the client.
    InputNotBridged(String),
    /// The output guard withheld the result.
    OutputWithheld {
        reason: String,
    },
    /// A sync-tier record could not be made durable.
    AuditUnavailable,
    /// A limit (`limits:`) refused the call: rate, concurrency, budget,
    /// breaker or loop.
    Limited(warden_limits::Denial),
    /// No upstream credential for this caller (`how`: what to do about it).
    NoUpstreamCredential {
        server: String,
        how: String,
    },
    /// The caller has no grant at an `oauth` server and their client
    /// takes URL-mode elicitation: MCP's `URLElicitationRequiredError`
    /// (-32042) names the authorization URL to open, then retry.
    ConnectRequired {
        server: String,
        how: String,
        elicitation_id: String,
        url: String,
    },
}

/// MCP 2025-11-25: the request needs the user to complete URL-mode
/// elicitations first (`data.elicitations`).
const URL_ELICITATION_REQUIRED: i64 = -32042;

impl Refusal {
    /// The JSON-RPC error code (for [`Refusal::ArgumentsInvalid`], the code
    /// it would have had: the answer is a tool result).
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::InvalidParams(_)
            | Refusal::UnknownItem { .. }
            | Refusal::ArgumentsInvalid { .. }
            | Refusal::InputRejected { .. }
            | Refusal::RequestStateInvalid(_) => ErrorCode::InvalidParams,
            Refusal::ResourceNotFound { .. } => ErrorCode::ResourceNotFound,
            Refusal::MethodNotFound => ErrorCode::MethodNotFound,
            Refusal::AlreadyInitialized => ErrorCode::InvalidRequest,
            Refusal::VirtualServerGone | Refusal::AuditUnavailable => ErrorCode::InternalError,
            Refusal::InsufficientScope { .. } => ErrorCode::InsufficientScope,
            Refusal::PolicyDenied { .. } => ErrorCode::PolicyDenied,
            Refusal::ApprovalRequired { .. } => ErrorCode::ApprovalRequired,
            Refusal::ApprovalRefused { .. } => ErrorCode::PolicyDenied,
            Refusal::NotApproved { .. } | Refusal::ServerNotApproved { .. } => {
                ErrorCode::ToolNotApproved
            }
            Refusal::HeaderMismatch { code, .. } => *code,
            Refusal::Upstream { .. } => ErrorCode::UpstreamUnavailable,
            Refusal::InputNotBridged(_) => ErrorCode::MissingCapability,
            Refusal::OutputWithheld { .. }
            | Refusal::NoUpstreamCredential { .. }
            | Refusal::ConnectRequired { .. } => ErrorCode::Refused,
            Refusal::Limited(d) => match d {
                warden_limits::Denial::Rate { .. } => ErrorCode::RateLimited,
                warden_limits::Denial::Concurrency { .. } => ErrorCode::ConcurrencyLimited,
                warden_limits::Denial::Budget { .. } => ErrorCode::BudgetExhausted,
                warden_limits::Denial::Breaker { .. } => ErrorCode::BreakerOpen,
                warden_limits::Denial::Loop { .. } => ErrorCode::LoopDetected,
                warden_limits::Denial::Unavailable { .. } => ErrorCode::LimitsUnavailable,
            },
        }
    }

    /// The HTTP status of the answer on Streamable HTTP: 403 for missing
    /// scopes (with a step-up challenge), else 200 with the JSON-RPC error.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Refusal::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::OK,
        }
    }

    /// The audit decision: `Some(Deny)` or `Some(Hold)` for what a control
    /// refused, `None` for malformed requests and failures (the request was
    /// allowed and then could not be served).
    pub fn decision(&self) -> Option<warden_audit::Decision> {
        match self {
            Refusal::UnknownItem { .. }
            | Refusal::InsufficientScope { .. }
            | Refusal::PolicyDenied { .. }
            | Refusal::NotApproved { .. }
            | Refusal::ServerNotApproved { .. }
            | Refusal::ArgumentsInvalid { .. }
            | Refusal::InputRejected { .. }
            | Refusal::HeaderMismatch { .. }
            | Refusal::RequestStateInvalid(_)
            | Refusal::NoUpstreamCredential { .. }
            | Refusal::ConnectRequired { .. } => Some(warden_audit::Decision::Deny),
            // The limits could not be checked: a failure, like the audit's.
            Refusal::Limited(warden_limits::Denial::Unavailable { .. }) => None,
            Refusal::Limited(_) => Some(warden_audit::Decision::Deny),
            Refusal::ApprovalRequired { .. } => Some(warden_audit::Decision::Hold),
            Refusal::ApprovalRefused { .. } => Some(warden_audit::Decision::Deny),
            _ => None,
        }
    }

    /// The audit record's reason code.
    pub fn reason_code(&self) -> Option<String> {
        Some(match self {
            Refusal::UnknownItem { reason_code, .. } => return reason_code.clone(),
            Refusal::InsufficientScope { .. } => "insufficient_scope".into(),
            Refusal::PolicyDenied { reason } | Refusal::ApprovalRequired { reason, .. } => {
                reason.clone()
            }
            Refusal::NotApproved { reason_code, .. }
            | Refusal::ServerNotApproved { reason_code, .. } => reason_code.clone(),
            Refusal::ArgumentsInvalid { rule, .. } | Refusal::InputRejected { rule, .. } => {
                format!("input_{rule}")
            }
            Refusal::ApprovalRefused { status, .. } => format!("approval_{status}"),
            Refusal::HeaderMismatch { .. } => "header_mismatch".into(),
            Refusal::RequestStateInvalid(_) => "request_state.invalid".into(),
            Refusal::OutputWithheld { .. } => "output.blocked".into(),
            Refusal::AuditUnavailable => "audit.unavailable".into(),
            Refusal::NoUpstreamCredential { .. } | Refusal::ConnectRequired { .. } => {
                "credentials.none".into()
            }
            Refusal::Limited(d) => format!("limits.{}", d.kind()),
            _ => return None,
        })
    }

    /// The scopes a 403 challenge names.
    pub fn required_scopes(&self) -> Option<&[String]> {
        match self {
            Refusal::InsufficientScope { scopes } => Some(scopes),
            _ => None,
        }
    }

    /// The answer to the client: a JSON-RPC error with the client's `id`
    /// and the correlation id in `data`, or an `isError` tool result.
    pub fn response(&self, id: &str, corr: &str) -> String {
        let code = self.code();
        let data = |extra: serde_json::Value| {
            let mut d = extra;
            if let Some(o) = d.as_object_mut() {
                o.insert("correlationId".into(), corr.into());
            }
            d
        };
        let with_corr = serde_json::json!({ "correlationId": corr });
        match self {
            Refusal::InvalidParams(why) => error_response(Some(id), code, why, None),
            Refusal::UnknownItem { what, shown, .. } => error_response(
                Some(id),
                code,
                &format!("unknown {what}: {}", truncate(shown, 128)),
                None,
            ),
            Refusal::ResourceNotFound { uri } => error_response(
                Some(id),
                code,
                "resource not found",
                Some(&serde_json::json!({"uri": truncate(uri, 512)})),
            ),
            Refusal::MethodNotFound => error_response(Some(id), code, "method not found", None),
            Refusal::AlreadyInitialized => {
                error_response(Some(id), code, "session already initialized", None)
            }
            Refusal::VirtualServerGone => {
                error_response(Some(id), code, "virtual server no longer configured", None)
            }
            Refusal::InsufficientScope { scopes } => error_response(
                Some(id),
                code,
                "insufficient scope",
                Some(&data(serde_json::json!({ "scopes": scopes }))),
            ),
            Refusal::PolicyDenied { reason } => error_response(
                Some(id),
                code,
                "denied by policy",
                Some(&data(serde_json::json!({ "reason": reason }))),
            ),
            Refusal::ApprovalRequired {
                reason,
                requires,
                held,
            } => {
                let mut d = serde_json::json!({ "reason": reason, "requires": requires });
                let message = match held {
                    Some(h) => {
                        d["approval"] = serde_json::json!({
                            "id": h.id,
                            "status": "pending",
                            "expires_at": h.expires_at,
                            "approvers": h.approvers,
                        });
                        format!(
                            "approval required: waiting for approval {} by {}; once approved, \
                             send the same call again (e.g. `warden approvals approve {}`)",
                            h.id, h.approvers, h.id
                        )
                    }
                    None => "approval required".to_owned(),
                };
                error_response(Some(id), code, &message, Some(&data(d)))
            }
            Refusal::ApprovalRefused {
                id: aid,
                status,
                why,
            } => {
                let mut d = serde_json::json!({
                    "reason": format!("approval_{status}"),
                    "approval": {"id": aid, "status": status},
                });
                if let Some(w) = why {
                    d["approval"]["reason"] = serde_json::Value::String(truncate(w, 500));
                }
                let message = if *status == "denied" {
                    format!("approval {aid} was denied")
                } else {
                    format!("approval {aid} expired before a decision")
                };
                error_response(Some(id), code, &message, Some(&data(d)))
            }
            Refusal::NotApproved { message, .. } => {
                error_response(Some(id), code, message, Some(&with_corr))
            }
            Refusal::ServerNotApproved {
                server, changed, ..
            } => {
                let what = if *changed {
                    "server identity changed since approval"
                } else {
                    "server not approved"
                };
                error_response(
                    Some(id),
                    code,
                    &format!("upstream server '{server}': {what}"),
                    Some(&with_corr),
                )
            }
            Refusal::ArgumentsInvalid {
                path,
                rule,
                message,
            } => {
                let text = format!("Invalid arguments: {message}");
                let result = serde_json::json!({
                    "content": [{"type": "text", "text": text}],
                    "isError": true,
                    "_meta": {"io.warden/refusal": {
                        "rule": rule, "path": path, "correlationId": corr,
                    }},
                });
                result_response(id, &result.to_string())
            }
            Refusal::InputRejected {
                path,
                rule,
                message,
            } => error_response(
                Some(id),
                code,
                message,
                Some(&data(serde_json::json!({ "path": path, "rule": rule }))),
            ),
            Refusal::HeaderMismatch { message, .. } => {
                error_response(Some(id), code, message, Some(&with_corr))
            }
            Refusal::RequestStateInvalid(why) => error_response(Some(id), code, why, None),
            Refusal::Upstream { server, what } => error_response(
                Some(id),
                code,
                &format!("upstream server '{server}' {what}"),
                Some(&with_corr),
            ),
            Refusal::InputNotBridged(why) => error_response(Some(id), code, why, Some(&with_corr)),
            Refusal::OutputWithheld { reason } => error_response(
                Some(id),
                code,
                &format!("result withheld by an output guard ({reason})"),
                Some(&with_corr),
            ),
            Refusal::AuditUnavailable => error_response(
                Some(id),
                code,
                "the audit trail is unavailable",
                Some(&with_corr),
            ),
            Refusal::NoUpstreamCredential { server, how } => error_response(
                Some(id),
                code,
                &format!("no credential for upstream server '{server}': {how}"),
                Some(&with_corr),
            ),
            Refusal::ConnectRequired {
                server,
                how,
                elicitation_id,
                url,
            } => {
                let message = format!("no credential for upstream server '{server}': {how}");
                let mut data = with_corr.clone();
                data["elicitations"] = serde_json::json!([{
                    "mode": "url",
                    "elicitationId": elicitation_id,
                    "url": url,
                    "message": format!("Connect your account at {server}, then retry."),
                }]);
                warden_protocol::error::error_response_code(
                    Some(id),
                    URL_ELICITATION_REQUIRED,
                    &message,
                    Some(&data),
                )
            }
            Refusal::Limited(d) => {
                let mut extra = serde_json::json!({ "limit": d.kind(), "rule": d.rule() });
                if let Some(wait) = d.retry_after() {
                    // Whole seconds, rounded up: a client that waits this
                    // long is not refused by the same rule at once.
                    extra["retryAfter"] = wait.as_secs_f64().ceil().max(1.0).into();
                }
                let message = match d {
                    warden_limits::Denial::Rate { rate, .. } => {
                        format!("rate limit exceeded ({rate})")
                    }
                    warden_limits::Denial::Concurrency { max, .. } => {
                        format!("too many calls in flight (at most {max})")
                    }
                    warden_limits::Denial::Budget {
                        unit,
                        limit,
                        spent,
                        cost,
                        ..
                    } => {
                        extra["unit"] = unit.as_str().into();
                        extra["budget"] = (*limit).into();
                        extra["spent"] = (*spent).into();
                        extra["remaining"] = (limit - spent).max(0.0).into();
                        extra["cost"] = (*cost).into();
                        format!("budget exhausted: {spent} of {limit} {unit} spent, this call costs {cost}")
                    }
                    warden_limits::Denial::Breaker { scope, .. } => {
                        format!("circuit breaker open for {scope}")
                    }
                    warden_limits::Denial::Loop {
                        repeats, window, ..
                    } => format!(
                        "the same call was made more than {repeats} times in {}s",
                        window.as_secs()
                    ),
                    warden_limits::Denial::Unavailable { .. } => {
                        "limits unavailable: the limits backend did not answer in time; \
                         the call was not made"
                            .to_owned()
                    }
                };
                error_response(Some(id), code, &message, Some(&data(extra)))
            }
        }
    }

    /// The log line, once per refusal, never with argument values.
    pub fn log(&self, corr: &str, session: &str, server: Option<&str>, item: Option<&str>) {
        let server = server.unwrap_or("");
        let item = truncate(item.unwrap_or(""), 256);
        let item = item.escape_debug();
        match self {
            Refusal::PolicyDenied { reason } => {
                info!(target: "audit", event = "call.denied", correlation_id = %corr, session = %session,
                      server = %server, item = %item, reason = %reason);
            }
            Refusal::ApprovalRequired { reason, held, .. } => {
                let approval = held.as_ref().map_or("", |h| h.id.as_str());
                info!(target: "audit", event = "call.held", correlation_id = %corr, session = %session,
                      server = %server, item = %item, reason = %reason, approval = %approval);
            }
            Refusal::ApprovalRefused {
                id: aid, status, ..
            } => {
                info!(target: "audit", event = "call.approval_refused", correlation_id = %corr,
                      session = %session, server = %server, item = %item, approval = %aid, status = %status);
            }
            Refusal::NotApproved { reason_code, .. }
            | Refusal::ServerNotApproved { reason_code, .. } => {
                warn!(target: "audit", event = "call.refused", reason = %reason_code, correlation_id = %corr,
                      session = %session, server = %server, item = %item);
            }
            Refusal::ArgumentsInvalid { path, rule, .. }
            | Refusal::InputRejected { path, rule, .. } => {
                warn!(target: "audit", event = "input.denied", correlation_id = %corr, session = %session,
                      server = %server, tool = %item, rule = %rule, path = %path);
            }
            Refusal::RequestStateInvalid(why) => {
                warn!(target: "audit", event = "request_state.refused", correlation_id = %corr,
                      session = %session, server = %server, reason = why);
            }
            Refusal::Upstream { what, .. } => {
                warn!(correlation_id = %corr, server = %server, error = %what, "upstream call failed");
            }
            Refusal::InputNotBridged(why) => {
                warn!(correlation_id = %corr, server = %server, reason = %why, "input request not bridged");
            }
            Refusal::AuditUnavailable => {
                warn!(correlation_id = %corr, "audit record failed; sync tier refused");
            }
            Refusal::Limited(d) => {
                info!(target: "audit", event = "call.limited", limit = d.kind(), rule = %d.rule(),
                      correlation_id = %corr, session = %session, server = %server, item = %item);
            }
            other => {
                info!(target: "audit", event = "request.refused", correlation_id = %corr, session = %session,
                      server = %server, item = %item, refusal = %other);
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Refusal::InvalidParams(_) => "invalid_params",
            Refusal::UnknownItem { .. } => "unknown_item",
            Refusal::ResourceNotFound { .. } => "resource_not_found",
            Refusal::MethodNotFound => "method_not_found",
            Refusal::AlreadyInitialized => "already_initialized",
            Refusal::VirtualServerGone => "virtual_server_gone",
            Refusal::InsufficientScope { .. } => "insufficient_scope",
            Refusal::PolicyDenied { .. } => "policy_denied",
            Refusal::ApprovalRequired { .. } => "approval_required",
            Refusal::ApprovalRefused { .. } => "approval_refused",
            Refusal::NotApproved { .. } => "not_approved",
            Refusal::ServerNotApproved { .. } => "server_not_approved",
            Refusal::ArgumentsInvalid { .. } => "arguments_invalid",
            Refusal::InputRejected { .. } => "input_rejected",
            Refusal::HeaderMismatch { .. } => "header_mismatch",
            Refusal::RequestStateInvalid(_) => "request_state_invalid",
            Refusal::Upstream { .. } => "upstream",
            Refusal::InputNotBridged(_) => "input_not_bridged",
            Refusal::OutputWithheld { .. } => "output_withheld",
            Refusal::AuditUnavailable => "audit_unavailable",
            Refusal::Limited(_) => "limited",
            Refusal::NoUpstreamCredential { .. } | Refusal::ConnectRequired { .. } => {
                "no_upstream_credential"
            }
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn every_error_carries_the_client_id_and_its_code() {
        let cases = [
            Refusal::InvalidParams("params.name is required".into()),
            Refusal::PolicyDenied {
                reason: "policy.forbid".into(),
            },
            Refusal::InsufficientScope {
                scopes: vec!["mcp:tools".into()],
            },
            Refusal::Upstream {
                server: "gh".into(),
                what: "timed out".into(),
            },
            Refusal::AuditUnavailable,
        ];
        for r in cases {
            let v = parsed(&r.response("\"a\"", "c0ffee"));
            assert_eq!(v["id"], "a");
            assert_eq!(v["error"]["code"], r.code().code(), "{r}");
        }
    }

    #[test]
    fn schema_failures_are_tool_results_the_model_can_read() {
        let r = Refusal::ArgumentsInvalid {
            path: "/message".into(),
            rule: "input.schema".into(),
            message: "42 is not of type \"string\"".into(),
        };
        let v = parsed(&r.response("7", "c0ffee"));
        assert_eq!(v["result"]["isError"], true);
        assert!(v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("not of type"));
        assert_eq!(
            v["result"]["_meta"]["io.warden/refusal"]["rule"],
            "input.schema"
        );
        assert_eq!(r.decision(), Some(warden_audit::Decision::Deny));
        assert_eq!(r.reason_code().as_deref(), Some("input_input.schema"));
    }

    #[test]
    fn only_missing_scopes_change_the_http_status() {
        assert_eq!(
            Refusal::InsufficientScope { scopes: vec![] }.http_status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            Refusal::PolicyDenied { reason: "x".into() }.http_status(),
            StatusCode::OK
        );
    }

    #[test]
    fn an_unavailable_limits_backend_has_its_own_code_and_is_a_failure() {
        let r = Refusal::Limited(warden_limits::Denial::Unavailable {
            retry_after: std::time::Duration::from_secs(1),
        });
        let v = parsed(&r.response("9", "c0ffee"));
        assert_eq!(v["error"]["code"], -32035);
        assert_eq!(v["error"]["data"]["limit"], "unavailable");
        assert_eq!(v["error"]["data"]["retryAfter"], 1.0);
        assert_eq!(v["error"]["data"]["correlationId"], "c0ffee");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("limits unavailable")));
        assert_eq!(r.decision(), None, "the limits could not be checked");
        assert_eq!(r.reason_code().as_deref(), Some("limits.unavailable"));
    }

    #[test]
    fn failures_are_not_denials() {
        assert_eq!(
            Refusal::Upstream {
                server: "s".into(),
                what: "x".into()
            }
            .decision(),
            None
        );
        assert_eq!(
            Refusal::ApprovalRequired {
                reason: "r".into(),
                requires: vec![],
                held: None,
            }
            .decision(),
            Some(warden_audit::Decision::Hold)
        );
    }
}
