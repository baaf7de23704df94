//! Test mode: a hostile, recording upstream for Warden's integration tests.
//! Each tool provokes one behaviour a gateway must survive or contain.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::demo::resource_not_found;
use crate::schema;
use crate::session::{
    echo_tool_definition, set_log_level, structured_result, text_result, tool_error, Outcome,
    Reply, RpcError, Server, Session, ToolCall, Transport,
};

/// The line `garbage` writes instead of a response.
pub(crate) const GARBAGE: &str = "this is not JSON-RPC <<<garbage>>>";
/// What `leak_error` puts in its error message: a path a gateway must not
/// pass on to its client.
pub(crate) const LEAKED_TRACE: &str = "at /srv/app/internal.py line 42";

const MAX_BIG_BYTES: u64 = 256 << 20;
const MAX_SLOW_MS: u64 = 600_000;
const MAX_FLOOD: u64 = 1_000_000;

fn tool(name: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "name": name,
        "description": description,
        "inputSchema": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        },
    })
}

pub(crate) fn tools(server: &Server) -> Value {
    let revision = server.echo_revision.load(Ordering::Relaxed);
    let echo_description = if revision == 1 {
        "Echoes the message back.".to_owned()
    } else {
        format!("Echoes the message back. (revision {revision})")
    };
    let int = |desc: &str, max: u64| json!({ "type": "integer", "minimum": 0, "maximum": max, "description": desc });
    let string = |desc: &str| json!({ "type": "string", "description": desc });
    json!([
        echo_tool_definition(&echo_description),
        tool(
            "crash",
            "Exits the server process in the middle of the call (HTTP: drops the connection).",
            json!({}),
            &[]
        ),
        tool("hang", "Never answers.", json!({}), &[]),
        tool(
            "garbage",
            "Writes a line that is not JSON instead of an answer.",
            json!({}),
            &[]
        ),
        tool(
            "stderr",
            "Writes each line of text to stderr, then answers.",
            json!({ "text": string("Lines to write.") }),
            &["text"]
        ),
        tool(
            "slow",
            "Answers after the given number of milliseconds.",
            json!({ "ms": int("Delay in milliseconds.", MAX_SLOW_MS) }),
            &["ms"]
        ),
        tool(
            "sample",
            "Asks the client to sample a completion for the prompt and returns its text.",
            json!({ "prompt": string("The prompt.") }),
            &["prompt"]
        ),
        tool(
            "elicit",
            "Asks the user a question through the client and returns the action and content.",
            json!({ "message": string("The question.") }),
            &["message"]
        ),
        tool(
            "roots",
            "Asks the client for its roots and returns them.",
            json!({}),
            &[]
        ),
        tool(
            "progress",
            "Sends one progress notification per step, then answers.",
            json!({
                "steps": int("Number of steps.", 10_000),
                "delay_ms": int("Pause between steps.", 10_000),
            }),
            &["steps"]
        ),
        tool(
            "big",
            "Returns a text of exactly the given size in bytes.",
            json!({ "bytes": int("Size of the text.", MAX_BIG_BYTES) }),
            &["bytes"]
        ),
        tool(
            "echo_headers",
            "Returns the HTTP request headers the server received, as JSON.",
            json!({}),
            &[]
        ),
        tool(
            "change_tools",
            "Changes the description of echo and announces that the tool list changed.",
            json!({}),
            &[]
        ),
        tool(
            "change_tools_silently",
            "Changes the description of echo without announcing it (a silent rug pull).",
            json!({}),
            &[]
        ),
        tool(
            "whoami",
            "Returns the process id and how many initialize requests this server has seen.",
            json!({}),
            &[]
        ),
        tool(
            "leak_error",
            "Fails with a JSON-RPC error that carries an internal stack trace.",
            json!({}),
            &[]
        ),
        tool(
            "log_flood",
            "Sends the given number of log notifications (notifications/message) as fast as it can, then answers.",
            json!({ "count": int("Number of log notifications.", MAX_FLOOD) }),
            &["count"]
        ),
    ])
}

pub(crate) async fn call_tool(call: &ToolCall) -> Outcome {
    let server = &call.session.server;
    let defs = tools(server);
    let Some(def) = defs
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == call.name.as_str()))
    else {
        return Outcome::Err(RpcError::invalid_params(format!(
            "Unknown tool: {}",
            call.name
        )));
    };
    if let Err(e) = schema::check(&call.arguments, &def["inputSchema"]) {
        return Outcome::Err(RpcError::invalid_params(format!(
            "Invalid arguments for {}: {e}",
            call.name
        )));
    }
    let arg = |k: &str| call.str_arg(k).unwrap_or_default();
    let num = |k: &str| call.u64_arg(k).unwrap_or_default();
    let result = match call.name.as_str() {
        "echo" => text_result(arg("message")),
        "crash" => return Outcome::Raw(Reply::Crash),
        "hang" => std::future::pending().await,
        "garbage" => return Outcome::Raw(Reply::Garbage(GARBAGE.to_owned())),
        "stderr" => {
            let text = arg("text");
            let mut n = 0;
            for line in text.lines() {
                eprintln!("{line}");
                n += 1;
            }
            text_result(format!("wrote {n} lines to stderr"))
        }
        "slow" => {
            let ms = num("ms");
            tokio::time::sleep(Duration::from_millis(ms)).await;
            text_result(format!("slept {ms} ms"))
        }
        "sample" => {
            let params = json!({
                "messages": [{ "role": "user", "content": { "type": "text", "text": arg("prompt") } }],
                "maxTokens": 256,
            });
            match call.ask_client("sampling/createMessage", params).await {
                Ok(answer) => text_result(sampled_text(&answer)),
                Err(e) => tool_error(format!("sampling failed: {}", error_text(&e))),
            }
        }
        "elicit" => {
            let params = json!({
                "message": arg("message"),
                "requestedSchema": {
                    "type": "object",
                    "properties": { "answer": { "type": "string", "title": "Answer" } },
                    "required": ["answer"],
                },
            });
            match call.ask_client("elicitation/create", params).await {
                Ok(answer) => structured_result(json!({
                    "action": answer.get("action").cloned().unwrap_or(Value::Null),
                    "content": answer.get("content").cloned().unwrap_or(Value::Null),
                })),
                Err(e) => tool_error(format!("elicitation failed: {}", error_text(&e))),
            }
        }
        "roots" => match call.ask_client("roots/list", json!({})).await {
            Ok(answer) => structured_result(json!({
                "roots": answer.get("roots").cloned().unwrap_or(json!([])),
            })),
            Err(e) => tool_error(format!("roots/list failed: {}", error_text(&e))),
        },
        "progress" => {
            let steps = num("steps");
            let delay = Duration::from_millis(num("delay_ms"));
            for step in 1..=steps {
                if let Some(token) = &call.progress_token {
                    call.notify(
                        "notifications/progress",
                        json!({
                            "progressToken": token, "progress": step, "total": steps,
                            "message": format!("step {step} of {steps}"),
                        }),
                    );
                }
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            }
            text_result(format!("done {steps} steps"))
        }
        "big" => {
            let n = usize::try_from(num("bytes")).unwrap_or(0);
            text_result("x".repeat(n))
        }
        "echo_headers" => match (&call.ctx.headers, call.ctx.transport) {
            (Some(headers), Transport::StreamableHttp | Transport::LegacySse) => {
                text_result(headers.to_string())
            }
            _ => tool_error("echo_headers needs an HTTP transport"),
        },
        "change_tools" => {
            let revision = server.echo_revision.fetch_add(1, Ordering::Relaxed) + 1;
            call.notify("notifications/tools/list_changed", json!({}));
            text_result(format!("echo is now at revision {revision}"))
        }
        "change_tools_silently" => {
            let revision = server.echo_revision.fetch_add(1, Ordering::Relaxed) + 1;
            text_result(format!("echo is now at revision {revision}"))
        }
        "whoami" => structured_result(json!({
            "pid": std::process::id(),
            // Tells processes apart where pids cannot: a sandboxed server
            // is PID 1 of its own namespace.
            "instance": process_instance(),
            "initializeCount": server.initialize_count(),
            "protocolVersion": call.session.protocol().map(|v| v.as_str()),
            "clientCapabilities": call.session.client_capabilities(),
        })),
        "leak_error" => {
            return Outcome::Err(RpcError {
                code: -32603,
                message: format!(
                    "Internal error: KeyError: 'tenant_id' {LEAKED_TRACE} in handle_request"
                ),
                data: Some(json!({
                    "traceback": format!(
                        "Traceback (most recent call last):\n  File \"/srv/app/internal.py\", line 42, in handle_request\n    tenant = ctx['tenant_id']\nKeyError: 'tenant_id' ({LEAKED_TRACE})"
                    ),
                })),
            })
        }
        "log_flood" => {
            let count = num("count");
            for n in 1..=count {
                call.notify(
                    "notifications/message",
                    json!({ "level": "info", "logger": "flood", "data": format!("log line {n}") }),
                );
            }
            text_result(format!("sent {count} log notifications"))
        }
        other => return Outcome::Err(RpcError::invalid_params(format!("Unknown tool: {other}"))),
    };
    Outcome::Ok(result)
}

/// The text of a `sampling/createMessage` result; `content` is one block or,
/// since 2025-11-25, possibly an array of blocks.
fn sampled_text(answer: &Value) -> String {
    match answer.get("content") {
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        Some(block) => block
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        None => String::new(),
    }
}

fn error_text(e: &Value) -> String {
    e.get("message")
        .and_then(Value::as_str)
        .map_or_else(|| e.to_string(), str::to_owned)
}

pub(crate) fn handle(session: &Arc<Session>, method: &str, p: &Value) -> Result<Value, RpcError> {
    match method {
        "resources/list" => Ok(json!({
            "resources": [{ "uri": "test://resource", "name": "test-resource", "mimeType": "text/plain" }],
        })),
        "resources/templates/list" => Ok(json!({ "resourceTemplates": [] })),
        "resources/read" => {
            let uri = p.get("uri").and_then(Value::as_str).unwrap_or_default();
            if uri == "test://resource" {
                Ok(json!({
                    "contents": [{ "uri": uri, "mimeType": "text/plain", "text": "test resource contents" }],
                }))
            } else {
                Err(resource_not_found(uri))
            }
        }
        "prompts/list" => Ok(json!({
            "prompts": [{
                "name": "test_prompt",
                "description": "A prompt for tests.",
                "arguments": [{ "name": "topic", "description": "Optional topic.", "required": false }],
            }],
        })),
        "prompts/get" => {
            if p.get("name").and_then(Value::as_str) != Some("test_prompt") {
                return Err(RpcError::invalid_params("Unknown prompt"));
            }
            let topic = p
                .pointer("/arguments/topic")
                .and_then(Value::as_str)
                .unwrap_or("nothing in particular");
            Ok(json!({
                "messages": [{ "role": "user", "content": { "type": "text", "text": format!("Talk about {topic}.") } }],
            }))
        }
        "logging/setLevel" => set_log_level(session, p),
        other => Err(RpcError::method_not_found(other)),
    }
}

/// A random name drawn once per process (`i-` and hex digits: no
/// detector of the gateway takes it for a number worth redacting).
fn process_instance() -> &'static str {
    use std::hash::BuildHasher;
    static INSTANCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INSTANCE.get_or_init(|| {
        let n = std::collections::hash_map::RandomState::new().hash_one(0u8);
        format!("i-{n:016x}")
    })
}
