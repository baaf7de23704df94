//! The approvals admin API on the MCP listener (what `warden approvals`
//! calls):
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/approvals?status=pending&limit=50` | the requests the caller made or may decide, newest first |
//! | GET | `/approvals/{id}` | one request |
//! | POST | `/approvals/{id}/approve` | `{"reason": "…", "change_ticket": "…"}` |
//! | POST | `/approvals/{id}/deny` | `{"reason": "…"}` |
//!
//! Authenticated like an MCP request (bearer token, DPoP, API key, client
//! certificate, for the resource `/mcp`); who may decide is the policy's
//! (the held call carries its approvers: the caller, or a role other than
//! the caller's). Without `identity:` every caller is the anonymous
//! principal: the API then answers only requests without an `Origin`
//! (no web page can approve), and a four-eyes approval can never be given.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use warden_approvals::{Approval, Approvals, DecideError, Status, Verdict};
use warden_identity::Principal;

use super::{authenticate, check_origin_and_host, http_error, json_response, read_body, HttpState};

/// The largest decision body read.
const BODY_LIMIT: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    reason: Option<String>,
    change_ticket: Option<String>,
}

/// The caller and the approval store, or the response that refuses the
/// request: every handler starts here.
async fn open(
    s: &HttpState,
    method: &str,
    headers: &HeaderMap,
) -> Result<(Principal, Arc<Approvals>), Response> {
    check_origin_and_host(s, headers).map_err(axum::response::IntoResponse::into_response)?;
    if s.gateway.authenticator().is_none() && headers.contains_key(axum::http::header::ORIGIN) {
        return Err(http_error(
            StatusCode::FORBIDDEN,
            "Forbidden: without identity: configured, the approvals API answers no web page",
        ));
    }
    let p = authenticate(s, method, "/mcp", headers).await?;
    let svc = s.gateway.approvals().ok_or_else(|| {
        http_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: no approval store is running",
        )
    })?;
    Ok((p, svc))
}

/// Approval `id` if `p` may see it. One answer for a malformed id, an
/// absent one and one that is not the caller's: ids are not probed.
async fn visible(p: &Principal, svc: &Approvals, id: &str) -> Result<Approval, Response> {
    let not_found = || http_error(StatusCode::NOT_FOUND, "Not Found: no such approval");
    if !warden_approvals::is_id(id) {
        return Err(not_found());
    }
    match svc.get(id).await {
        Ok(Some(a)) if may_see(p, &a) => Ok(a),
        Ok(_) => Err(not_found()),
        Err(e) => Err(store_error(&e)),
    }
}

/// Whether `p` may see `a`: its caller, or someone who may decide it.
fn may_see(p: &Principal, a: &Approval) -> bool {
    let key = p.key();
    key == a.call.principal || a.call.admits(&key, &p.data().roles)
}

fn view(a: &Approval) -> serde_json::Value {
    let mut v = serde_json::to_value(a).unwrap_or(serde_json::Value::Null);
    v["created_at"] = crate::pipeline::hold::rfc3339(a.created_at).into();
    v["expires_at"] = crate::pipeline::hold::rfc3339(a.expires_at).into();
    if let Some(d) = a.decided_at {
        v["decided_at"] = crate::pipeline::hold::rfc3339(d).into();
    }
    if let Some(d) = a.consumed_at {
        v["consumed_at"] = crate::pipeline::hold::rfc3339(d).into();
    }
    v["approvers_text"] = a.call.approvers_text().into();
    v
}

fn store_error(e: &warden_approvals::ApprovalError) -> Response {
    tracing::warn!(error = %e, "approvals API: the store failed");
    http_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Service Unavailable: the approval store failed",
    )
}

pub(super) async fn list(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let (p, svc) = match open(&s, "GET", &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let status =
        match q.status.as_deref() {
            None | Some("all") => None,
            Some(x) => match Status::parse(x) {
                Some(st) => Some(st),
                None => return http_error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: status is pending, approved, denied, consumed, expired or all",
                ),
            },
        };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    // Read more than asked: what the caller may not see is left out.
    match svc.list(status, limit.saturating_mul(4)).await {
        Ok(all) => {
            let shown: Vec<serde_json::Value> = all
                .iter()
                .filter(|a| may_see(&p, a))
                .take(limit as usize)
                .map(view)
                .collect();
            json_response(
                StatusCode::OK,
                serde_json::json!({ "approvals": shown }).to_string(),
            )
        }
        Err(e) => store_error(&e),
    }
}

pub(super) async fn show(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (p, svc) = match open(&s, "GET", &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match visible(&p, &svc, &id).await {
        Ok(a) => json_response(StatusCode::OK, view(&a).to_string()),
        Err(r) => r,
    }
}

pub(super) async fn approve(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    decide(s, headers, id, body, true).await
}

pub(super) async fn deny(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    decide(s, headers, id, body, false).await
}

async fn decide(
    s: HttpState,
    headers: HeaderMap,
    id: String,
    body: Body,
    approve: bool,
) -> Response {
    let (p, svc) = match open(&s, "POST", &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = visible(&p, &svc, &id).await {
        return r;
    }
    let text = match read_body(body, BODY_LIMIT).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let d: DecisionBody = if text.trim().is_empty() {
        DecisionBody::default()
    } else {
        match serde_json::from_str(&text) {
            Ok(d) => d,
            Err(e) => {
                return http_error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "Bad Request: the body is {{\"reason\": …, \"change_ticket\": …}}: {e}"
                    ),
                )
            }
        }
    };
    let key = p.key();
    let roles = p.data().roles.clone();
    let verdict = Verdict {
        approve,
        by: &key,
        roles: &roles,
        reason: d.reason.as_deref(),
        change_ticket: d.change_ticket.as_deref(),
        in_band: false,
    };
    match svc.decide(&id, &verdict).await {
        Ok(a) => {
            s.gateway.approval_decided(&a);
            json_response(StatusCode::OK, view(&a).to_string())
        }
        Err(e) => {
            let status = match &e {
                DecideError::NotFound(_) => StatusCode::NOT_FOUND,
                DecideError::NotPending { .. } | DecideError::Expired(_) => StatusCode::CONFLICT,
                DecideError::NotAllowed(_) => StatusCode::FORBIDDEN,
                DecideError::Missing(_) => StatusCode::UNPROCESSABLE_ENTITY,
                DecideError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            if matches!(e, DecideError::NotAllowed(_)) {
                tracing::warn!(target: "audit", event = "approval.decision_refused", approval = %id,
                               by = %key, reason = %e);
            }
            let reason = status.canonical_reason().unwrap_or("Error");
            http_error(status, &format!("{reason}: {e}"))
        }
    }
}
