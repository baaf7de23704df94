//! Stage 7, Input guards: a tool's arguments against its live
//! `inputSchema` (the definition the registry just checked), size and
//! depth limits, forbidden characters, injection detectors; a 2026-07-28
//! client's `Mcp-Param-*` headers against the arguments they mirror.
//! Refused input never reaches an upstream. Arguments that fail the
//! schema come back as an `isError` tool result the model can correct;
//! every other refusal is a JSON-RPC error.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::value::RawValue;
use tracing::info;
use warden_protocol::method::NameKind;

use super::output::classes_of;
use super::{Exchange, Refusal, Target};
use crate::core::{json_value, Gateway};
use crate::session::Channel;

pub(crate) fn run(gw: &Gateway, ex: &mut Exchange<'_>) -> Result<(), Refusal> {
    let Target::Item {
        kind: NameKind::Tool,
        server,
        exposed,
        ..
    } = &ex.target
    else {
        return Ok(());
    };
    let schema = ex.tool().and_then(|d| d.input_schema.as_deref());
    let arguments = ex.msg.param("arguments");
    if ex.session.channel == Channel::Modern {
        check_param_headers(&ex.param_headers, schema, arguments)?;
    }
    let started = Instant::now();
    let verdict =
        warden_telemetry::stage_span(warden_telemetry::Stage::InputGuard).in_scope(|| {
            ex.snap
                .guard
                .check_input(exposed, server, schema, arguments)
        });
    gw.metrics
        .stage(warden_telemetry::Stage::InputGuard, started.elapsed());
    match verdict {
        warden_guard::InputVerdict::Deny {
            path,
            rule,
            message,
            ..
        } => {
            let schema_rules = [
                warden_guard::RuleId::INPUT_SCHEMA,
                warden_guard::RuleId::INPUT_STRICT,
            ];
            let (path, rule_text) = (path, rule.to_string());
            Err(if schema_rules.contains(&rule) {
                Refusal::ArgumentsInvalid {
                    path,
                    rule: rule_text,
                    message,
                }
            } else {
                Refusal::InputRejected {
                    path,
                    rule: rule_text,
                    message,
                }
            })
        }
        warden_guard::InputVerdict::Allow {
            rewritten,
            findings,
        } => {
            if !findings.is_empty() {
                info!(target: "audit", event = "input.findings", correlation_id = %ex.call.corr, server = %server,
                      tool = %exposed, classes = %classes_of(&findings));
            }
            let sent = rewritten.as_deref().or(arguments.map(|a| a.get()));
            let headers = upstream_param_headers(&ex.param_headers, schema, sent);
            if let (Some(new), Some(raw)) = (rewritten, arguments) {
                ex.edits.replace(ex.msg.text, raw, new);
            }
            ex.upstream_headers = headers;
            Ok(())
        }
    }
}

/// A 2026-07-28 client's `Mcp-Param-*` headers against the arguments
/// (-32020 on a mismatch).
fn check_param_headers(
    client: &[(String, String)],
    schema: Option<&RawValue>,
    arguments: Option<&RawValue>,
) -> Result<(), Refusal> {
    let Some(schema) = schema else {
        return Ok(());
    };
    if client.is_empty() && !schema.get().contains("x-mcp-header") {
        return Ok(());
    }
    let args = json_value(arguments.map(|a| a.get()));
    warden_protocol::modern::validate_param_headers(&json_value(Some(schema.get())), &args, client)
        .map_err(|r| Refusal::HeaderMismatch {
            code: r.code,
            message: r.message,
        })
}

/// The `Mcp-Param-*` headers for the upstream request: the ones the tool's
/// schema declares, computed from the arguments as sent, and any others
/// the client sent (forwarded unchanged).
fn upstream_param_headers(
    client: &[(String, String)],
    schema: Option<&RawValue>,
    sent: Option<&str>,
) -> Vec<(String, String)> {
    let declares = schema.is_some_and(|s| s.get().contains("x-mcp-header"));
    let mut out = match (declares, schema) {
        (true, Some(schema)) => warden_protocol::modern::param_headers(
            &json_value(Some(schema.get())),
            &json_value(sent),
        ),
        _ => Vec::new(),
    };
    let declared: HashSet<String> = out.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
    for (k, v) in client {
        if !declared.contains(k) {
            out.push((k.clone(), v.clone()));
        }
    }
    out
}
