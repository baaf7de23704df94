//! Stage 11, Output guards: the upstream's result scanned for secrets,
//! PII and injection and redacted, labelled or withheld per class and per
//! tool; size caps; the upstream's own error replaced by a generic one
//! with the correlation id; a 2026-07-28 client's `resultType` and sealed
//! `requestState`; the client's id spliced back. A successful read adds
//! its data class to the session (toxic flows). Progress and log messages
//! pass [`Gateway::guard_notification`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;
use tracing::{info, warn};
use warden_protocol::edit::{json_string, EditSet};
use warden_protocol::message::{as_str, member, members, parse_one, Kind, Message};

use super::{Exchange, Executed, Refusal, Target};
use crate::core::Gateway;
use crate::federation::truncate;
use crate::session::{lock, Channel, Session};

pub(crate) fn run(
    gw: &Arc<Gateway>,
    ex: &Exchange<'_>,
    executed: Executed,
) -> Result<Option<String>, Refusal> {
    match executed {
        Executed::Cancelled => Ok(None),
        Executed::Answer(text) => Ok(Some(text)),
        Executed::Upstream { server, text } => {
            let response = gw.respond(ex, &text, &server).ok_or_else(|| {
                warn!(server = %server, correlation_id = %ex.call.corr, "upstream response could not be re-addressed");
                Refusal::Upstream {
                    server: server.clone(),
                    what: "sent a response Warden could not read".into(),
                }
            })??;
            if let Target::Item { upstream_name, .. } = &ex.target {
                gw.after_read(ex, &server, upstream_name, Some(&response));
            } else if let Target::Resource { uri, .. } = &ex.target {
                if ex.msg.method() == "resources/read" {
                    gw.after_read(ex, &server, uri, Some(&response));
                }
            }
            Ok(Some(response))
        }
    }
}

impl Gateway {
    /// Stages 11–12 for one response: the output guard over a result (redact,
    /// label, truncate, block), a generic error in place of the upstream's
    /// own, and the client's id spliced back. Every other byte is kept.
    fn respond(
        &self,
        ex: &Exchange<'_>,
        response: &str,
        server: &str,
    ) -> Option<Result<String, Refusal>> {
        let (session, client_id, request, call) = (&*ex.session, ex.id, ex.msg, &ex.call);
        let corr = call.corr.as_str();
        let m = parse_one(response).ok()?;
        let upstream_id = m.id?;
        let snap = &ex.snap;
        // What the guard's per-tool settings are keyed by: the exposed name
        // for tools and prompts, the URI for resources.
        let subject = ex.target.subject();
        let mut edits = EditSet::new();
        edits.replace(response, upstream_id.raw_value(), client_id.to_owned());
        if let Some(result) = m.result {
            let started = Instant::now();
            let verdict = warden_telemetry::stage_span(warden_telemetry::Stage::OutputGuard)
                .in_scope(|| {
                    snap.guard
                        .inspect_output(subject, server, request.method(), result)
                });
            self.metrics
                .stage(warden_telemetry::Stage::OutputGuard, started.elapsed());
            let mut findings = BTreeMap::new();
            for f in &verdict.findings {
                self.metrics.guard_finding(
                    f.class,
                    warden_telemetry::Direction::Output,
                    f.count as u64,
                );
                *findings.entry(f.class.to_owned()).or_insert(0) += u64::from(f.count);
            }
            // The record's result class: classes and counts, never values.
            call.note(|facts| {
                facts.output = Some(warden_audit::OutputFacts {
                    classes: findings.keys().cloned().collect(),
                    findings,
                    size: result.get().len() as u64,
                    truncated: verdict.truncated,
                })
            });
            if !verdict.findings.is_empty() || verdict.truncated {
                info!(target: "audit", event = "output.findings", correlation_id = %corr, server = %server,
                      subject = %subject, classes = %classes_of(&verdict.findings), truncated = verdict.truncated,
                      blocked = verdict.blocked.is_some());
            }
            if let Some(reason) = verdict.blocked {
                return Some(Err(Refusal::OutputWithheld {
                    reason: reason.to_string(),
                }));
            }
            // 2026-07-28 clients: `resultType` on every result, and an
            // upstream's `requestState` bound to it and to this principal.
            let modernized = (session.channel == Channel::Modern)
                .then(|| {
                    let base = verdict.rewritten.as_deref().unwrap_or(result.get());
                    self.modernize_result(session, server, request.method(), base)
                })
                .flatten();
            if let Some(new) = modernized.or(verdict.rewritten) {
                edits.replace(response, result, new);
            }
        } else if let Some(error) = m.error {
            // The real error goes to the log only; the client gets the
            // guard's generic form with the correlation id.
            warn!(target: "audit", event = "upstream.error", correlation_id = %corr, server = %server,
                  error = %truncate(error.get(), 2048).escape_debug());
            edits.replace(
                response,
                error,
                snap.guard.sanitize_error_for(subject, server, error, corr),
            );
        }
        edits.apply(response).map(Ok)
    }

    /// A result as a 2026-07-28 client gets it: `resultType` added where a
    /// session-era upstream left it out, an input-required result's
    /// `requestState` sealed to (principal, server). `None`: unchanged.
    fn modernize_result(
        &self,
        session: &Session,
        server: &str,
        method: &str,
        result: &str,
    ) -> Option<String> {
        let raw: &RawValue = serde_json::from_str(result).ok()?;
        let mut edits = EditSet::new();
        match member(raw, "resultType").and_then(as_str).as_deref() {
            None => {
                let mut added = vec![r#""resultType":"complete""#];
                // A read result's caching hints are required in 2026-07-28;
                // a session-era upstream gives none. What Warden returns is
                // guarded for this caller: private, and stale at once.
                if method == "resources/read" {
                    if member(raw, "ttlMs").is_none() {
                        added.push(r#""ttlMs":0"#);
                    }
                    if member(raw, "cacheScope").is_none() {
                        added.push(r#""cacheScope":"private""#);
                    }
                }
                let mut text = added.join(",");
                if !members(raw).is_some_and(|m| m.is_empty()) {
                    text.push(',');
                }
                edits.insert_first_member(result, raw, text);
            }
            Some("input_required") => {
                if let Some(st) = member(raw, "requestState") {
                    let state = as_str(st)?;
                    edits.replace(
                        result,
                        st,
                        json_string(&self.seal_request_state(session, server, &state)),
                    );
                }
            }
            Some(_) => {}
        }
        if edits.is_empty() {
            return None;
        }
        edits.apply(result)
    }

    /// After a successful read: the data class joins the session's history
    /// (toxic-flow rules read it).
    fn after_read(&self, ex: &Exchange<'_>, server: &str, item: &str, response: Option<&str>) {
        let (snap, session) = (&ex.snap, &ex.session);
        let Some(class) = snap
            .policy
            .as_ref()
            .and_then(|e| e.data_class(server, item))
        else {
            return;
        };
        if outcome_of(response) != "ok" {
            return;
        }
        let mut classes = lock(&session.data_classes);
        if !classes.iter().any(|c| c == class) {
            classes.push(class.to_owned());
        }
    }

    /// The output guard over a notification's params (progress and log
    /// messages carry upstream text to the client too). The message as
    /// the client may see it; `None` when the guard blocks it.
    pub(crate) fn guard_notification(
        &self,
        subject: &str,
        server: &str,
        msg: &Message<'_>,
    ) -> Option<String> {
        let Some(params) = msg.params else {
            return Some(msg.text.to_owned());
        };
        let snap = self.snapshot();
        let verdict = snap
            .guard
            .inspect_output(subject, server, msg.method(), params);
        for f in &verdict.findings {
            self.metrics.guard_finding(
                f.class,
                warden_telemetry::Direction::Output,
                f.count as u64,
            );
        }
        if !verdict.findings.is_empty() {
            info!(target: "audit", event = "output.findings", server = %server, method = %msg.method(),
                  subject = %subject, classes = %classes_of(&verdict.findings),
                  blocked = verdict.blocked.is_some());
        }
        if verdict.blocked.is_some() {
            return None;
        }
        match verdict.rewritten {
            Some(new) => {
                let mut edits = EditSet::new();
                edits.replace(msg.text, params, new);
                edits.apply(msg.text)
            }
            None => Some(msg.text.to_owned()),
        }
    }
}

/// Finding classes and counts for the audit log (never values).
pub(crate) fn classes_of(findings: &[warden_guard::Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("{}x{}", f.class, f.count))
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn outcome_of(resp: Option<&str>) -> &'static str {
    match resp.map(parse_one) {
        None => "cancelled",
        Some(Ok(m)) if m.kind == Kind::Result => "ok",
        Some(_) => "error",
    }
}
