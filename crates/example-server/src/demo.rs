//! Demo mode: a small notes-and-tickets service with the shape of a real
//! MCP server (strict input schemas, annotations, structured results,
//! resources, a resource template, prompts and completions).

use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};

use crate::schema;
use crate::session::{
    lock, set_log_level, structured_result, text_result, tool_error, RpcError, Session, ToolCall,
};

pub(crate) const INSTRUCTIONS: &str = "This server keeps team notes and support tickets. \
Search notes with notes_search before creating one, to avoid duplicates. \
tickets_delete cannot be undone: prefer tickets_update with status \"closed\".";

const OPEN_TICKETS_URI: &str = "tickets://open";
const STATUSES: [&str; 3] = ["open", "in_progress", "closed"];

#[derive(Debug, Clone)]
struct Note {
    id: String,
    title: String,
    body: String,
    tags: Vec<String>,
}

impl Note {
    fn uri(&self) -> String {
        format!("notes://{}", self.id)
    }
    fn to_json(&self) -> Value {
        json!({
            "id": self.id, "title": self.title, "body": self.body,
            "tags": self.tags, "uri": self.uri(),
        })
    }
    fn markdown(&self) -> String {
        let mut out = format!("# {}\n\n{}\n", self.title, self.body);
        if !self.tags.is_empty() {
            out.push_str(&format!("\nTags: {}\n", self.tags.join(", ")));
        }
        out
    }
    fn matches(&self, query: &str) -> bool {
        let q = query.to_lowercase();
        self.title.to_lowercase().contains(&q)
            || self.body.to_lowercase().contains(&q)
            || self.tags.iter().any(|t| t.to_lowercase() == q)
    }
}

#[derive(Debug, Clone)]
struct Ticket {
    id: String,
    title: String,
    priority: String,
    description: String,
    status: String,
}

impl Ticket {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id, "title": self.title, "priority": self.priority,
            "description": self.description, "status": self.status,
        })
    }
}

/// The in-memory data, shared by every session of one server.
#[derive(Debug)]
pub(crate) struct Store {
    notes: Vec<Note>,
    tickets: Vec<Ticket>,
    next_note: u64,
    next_ticket: u64,
}

impl Store {
    pub(crate) fn seeded() -> Store {
        let note = |id: &str, title: &str, body: &str, tags: &[&str]| Note {
            id: id.to_owned(),
            title: title.to_owned(),
            body: body.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        };
        let ticket =
            |id: &str, title: &str, priority: &str, description: &str, status: &str| Ticket {
                id: id.to_owned(),
                title: title.to_owned(),
                priority: priority.to_owned(),
                description: description.to_owned(),
                status: status.to_owned(),
            };
        Store {
            notes: vec![
                note(
                    "n1",
                    "Welcome: onboarding checklist",
                    "Welcome aboard! Request a laptop, join #eng-announce, read the on-call runbook, and pair with a buddy for your first deploy.",
                    &["onboarding", "process"],
                ),
                note(
                    "n2",
                    "Postmortem: login outage",
                    "SSO callback failed after the IdP rotated its signing key. We now refresh JWKS hourly and alert on validation failures.",
                    &["incident", "postmortem", "sso"],
                ),
                note(
                    "n3",
                    "Q3 roadmap",
                    "Ship audit log export, approvals in the console, and rate limits per tenant.",
                    &["planning"],
                ),
            ],
            tickets: vec![
                ticket(
                    "T-101",
                    "Login returns 500 for SSO users",
                    "high",
                    "Users signing in through SSO see a 500 after the callback. Started after Tuesday's deploy.",
                    "open",
                ),
                ticket(
                    "T-102",
                    "Add dark mode to settings",
                    "low",
                    "Several customers asked for a dark theme in the settings page.",
                    "open",
                ),
                ticket(
                    "T-103",
                    "Rotate database credentials",
                    "medium",
                    "Quarterly rotation of the primary database password.",
                    "in_progress",
                ),
                ticket(
                    "T-104",
                    "Renew TLS certificate for api.example.com",
                    "high",
                    "Certificate expired on the staging API; renewed and automated.",
                    "closed",
                ),
            ],
            next_note: 4,
            next_ticket: 105,
        }
    }

    fn note(&self, id: &str) -> Option<&Note> {
        self.notes.iter().find(|n| n.id == id)
    }

    fn ticket(&self, id: &str) -> Option<&Ticket> {
        self.tickets.iter().find(|t| t.id == id)
    }

    fn open_tickets(&self) -> Vec<Value> {
        self.tickets
            .iter()
            .filter(|t| t.status != "closed")
            .map(Ticket::to_json)
            .collect()
    }
}

fn tool_definitions() -> &'static Value {
    static TOOLS: OnceLock<Value> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let id_prop = |what: &str| json!({ "type": "string", "minLength": 1, "description": format!("The {what} id.") });
        let status = json!({ "type": "string", "enum": STATUSES, "description": "Ticket status." });
        let ticket_schema = json!({
            "type": "object",
            "properties": {
                "id": { "type": "string" }, "title": { "type": "string" },
                "priority": { "type": "string", "enum": ["low", "medium", "high"] },
                "description": { "type": "string" },
                "status": { "type": "string", "enum": STATUSES },
            },
            "required": ["id", "title", "priority", "description", "status"],
        });
        json!([
            {
                "name": "notes_create",
                "title": "Create note",
                "description": "Creates a note with a title, a body and optional tags. Returns the new note.",
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "title": { "type": "string", "minLength": 1, "maxLength": 200, "description": "Short title." },
                        "body": { "type": "string", "maxLength": 20000, "description": "Markdown body." },
                        "tags": { "type": "array", "items": { "type": "string", "minLength": 1, "maxLength": 40 }, "description": "Optional tags." },
                    },
                    "required": ["title", "body"],
                    "additionalProperties": false,
                },
                "annotations": { "title": "Create note", "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false },
            },
            {
                "name": "notes_search",
                "title": "Search notes",
                "description": "Finds notes whose title or body contains the query, or with a tag equal to it.",
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "query": { "type": "string", "minLength": 1, "maxLength": 200, "description": "Text to look for (case-insensitive)." },
                        "limit": { "type": "integer", "minimum": 1, "maximum": 50, "description": "Most results to return (default 10)." },
                    },
                    "required": ["query"],
                    "additionalProperties": false,
                },
                "outputSchema": {
                    "type": "object",
                    "properties": {
                        "results": { "type": "array", "items": { "type": "object", "properties": {
                            "id": { "type": "string" }, "title": { "type": "string" }, "uri": { "type": "string" },
                        }, "required": ["id", "title", "uri"] } },
                        "total": { "type": "integer" },
                    },
                    "required": ["results", "total"],
                },
                "annotations": { "title": "Search notes", "readOnlyHint": true, "openWorldHint": false },
            },
            {
                "name": "notes_get",
                "title": "Get note",
                "description": "Returns one note by id.",
                "inputSchema": {
                    "type": "object",
                    "properties": { "id": id_prop("note") },
                    "required": ["id"],
                    "additionalProperties": false,
                },
                "annotations": { "title": "Get note", "readOnlyHint": true, "openWorldHint": false },
            },
            {
                "name": "tickets_create",
                "title": "Create ticket",
                "description": "Opens a support ticket.",
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "title": { "type": "string", "minLength": 1, "maxLength": 200, "description": "One-line summary." },
                        "priority": { "type": "string", "enum": ["low", "medium", "high"], "description": "How urgent it is." },
                        "description": { "type": "string", "maxLength": 20000, "description": "What happened and what is expected." },
                    },
                    "required": ["title", "priority", "description"],
                    "additionalProperties": false,
                },
                "outputSchema": ticket_schema,
                "annotations": { "title": "Create ticket", "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false },
            },
            {
                "name": "tickets_list",
                "title": "List tickets",
                "description": "Lists tickets, optionally only those with the given status.",
                "inputSchema": {
                    "type": "object",
                    "properties": { "status": status },
                    "additionalProperties": false,
                },
                "outputSchema": {
                    "type": "object",
                    "properties": { "tickets": { "type": "array", "items": ticket_schema } },
                    "required": ["tickets"],
                },
                "annotations": { "title": "List tickets", "readOnlyHint": true, "openWorldHint": false },
            },
            {
                "name": "tickets_update",
                "title": "Update ticket status",
                "description": "Sets the status of a ticket.",
                "inputSchema": {
                    "type": "object",
                    "properties": { "id": id_prop("ticket"), "status": status },
                    "required": ["id", "status"],
                    "additionalProperties": false,
                },
                "outputSchema": ticket_schema,
                "annotations": { "title": "Update ticket status", "readOnlyHint": false, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false },
            },
            {
                "name": "tickets_delete",
                "title": "Delete ticket",
                "description": "Deletes a ticket permanently.",
                "inputSchema": {
                    "type": "object",
                    "properties": { "id": id_prop("ticket") },
                    "required": ["id"],
                    "additionalProperties": false,
                },
                "annotations": { "title": "Delete ticket", "readOnlyHint": false, "destructiveHint": true, "idempotentHint": true, "openWorldHint": false },
            },
        ])
    })
}

pub(crate) fn tools() -> Value {
    tool_definitions().clone()
}

pub(crate) fn call_tool(call: &ToolCall) -> Result<Value, RpcError> {
    let def = tool_definitions()
        .as_array()
        .and_then(|tools| tools.iter().find(|t| t["name"] == call.name.as_str()))
        .ok_or_else(|| RpcError::invalid_params(format!("Unknown tool: {}", call.name)))?;
    schema::check(&call.arguments, &def["inputSchema"]).map_err(|e| {
        RpcError::invalid_params(format!("Invalid arguments for {}: {e}", call.name))
    })?;
    // Arguments are valid from here on; missing optional ones have defaults.
    let arg = |k: &str| call.str_arg(k).unwrap_or_default().to_owned();
    let server = &call.session.server;
    let mut store = lock(&server.demo);
    let result = match call.name.as_str() {
        "notes_create" => {
            let tags = call.arguments.get("tags").and_then(Value::as_array);
            let note = Note {
                id: format!("n{}", store.next_note),
                title: arg("title"),
                body: arg("body"),
                tags: tags
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            };
            store.next_note += 1;
            let out = note.to_json();
            store.notes.push(note);
            structured_result(out)
        }
        "notes_search" => {
            let query = arg("query");
            let limit = call.u64_arg("limit").unwrap_or(10);
            let hits: Vec<&Note> = store.notes.iter().filter(|n| n.matches(&query)).collect();
            let results: Vec<Value> = hits
                .iter()
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .map(|n| json!({ "id": n.id, "title": n.title, "uri": n.uri() }))
                .collect();
            structured_result(json!({ "results": results, "total": hits.len() }))
        }
        "notes_get" => match store.note(&arg("id")) {
            Some(note) => structured_result(note.to_json()),
            None => tool_error(format!("No note with id {:?}.", arg("id"))),
        },
        "tickets_create" => {
            let ticket = Ticket {
                id: format!("T-{}", store.next_ticket),
                title: arg("title"),
                priority: arg("priority"),
                description: arg("description"),
                status: "open".to_owned(),
            };
            store.next_ticket += 1;
            let out = ticket.to_json();
            store.tickets.push(ticket);
            drop(store);
            tickets_changed(
                call,
                format!("ticket {} created", out["id"].as_str().unwrap_or_default()),
            );
            return Ok(structured_result(out));
        }
        "tickets_list" => {
            let status = call.str_arg("status");
            let tickets: Vec<Value> = store
                .tickets
                .iter()
                .filter(|t| status.is_none_or(|s| t.status == s))
                .map(Ticket::to_json)
                .collect();
            structured_result(json!({ "tickets": tickets }))
        }
        "tickets_update" => {
            let id = arg("id");
            match store.tickets.iter_mut().find(|t| t.id == id) {
                Some(t) => {
                    t.status = arg("status");
                    let t_status = t.status.clone();
                    let out = t.to_json();
                    drop(store);
                    tickets_changed(call, format!("ticket {id} set to {}", t_status));
                    return Ok(structured_result(out));
                }
                None => tool_error(format!("No ticket with id {id:?}.")),
            }
        }
        "tickets_delete" => {
            let id = arg("id");
            let before = store.tickets.len();
            store.tickets.retain(|t| t.id != id);
            if store.tickets.len() == before {
                tool_error(format!("No ticket with id {id:?}."))
            } else {
                drop(store);
                tickets_changed(call, format!("ticket {id} deleted"));
                return Ok(text_result(format!("Deleted ticket {id}.")));
            }
        }
        other => return Err(RpcError::invalid_params(format!("Unknown tool: {other}"))),
    };
    Ok(result)
}

/// Logs a change to the tickets (for a client that set a log level) and
/// tells every session subscribed to the open-tickets view.
fn tickets_changed(call: &ToolCall, what: String) {
    call.log("notice", "tickets", json!(what));
    for session in call.session.server.live_sessions() {
        if lock(&session.subscriptions).contains(OPEN_TICKETS_URI) {
            session.notify_standalone(
                "notifications/resources/updated",
                json!({ "uri": OPEN_TICKETS_URI }),
            );
        }
    }
}

/// Methods other than `initialize`, `ping` and the tool methods.
pub(crate) fn handle(session: &Arc<Session>, method: &str, p: &Value) -> Result<Value, RpcError> {
    let store = || lock(&session.server.demo);
    match method {
        "resources/list" => {
            let mut resources: Vec<Value> = store()
                .notes
                .iter()
                .map(|n| {
                    json!({
                        "uri": n.uri(), "name": n.id, "title": n.title,
                        "description": format!("Note: {}", n.title), "mimeType": "text/markdown",
                    })
                })
                .collect();
            resources.push(json!({
                "uri": OPEN_TICKETS_URI, "name": "open-tickets", "title": "Open tickets",
                "description": "Every ticket that is not closed, as JSON.", "mimeType": "application/json",
            }));
            Ok(json!({ "resources": resources }))
        }
        "resources/templates/list" => Ok(json!({
            "resourceTemplates": [{
                "uriTemplate": "notes://{id}", "name": "note", "title": "Note by id",
                "description": "One note, as Markdown.", "mimeType": "text/markdown",
            }],
        })),
        "resources/read" => {
            let uri = uri_param(p)?;
            let store = store();
            if uri == OPEN_TICKETS_URI {
                let text = json!({ "tickets": store.open_tickets() }).to_string();
                return Ok(json!({
                    "contents": [{ "uri": uri, "mimeType": "application/json", "text": text }],
                }));
            }
            match uri.strip_prefix("notes://").and_then(|id| store.note(id)) {
                Some(note) => Ok(json!({
                    "contents": [{ "uri": uri, "mimeType": "text/markdown", "text": note.markdown() }],
                })),
                None => Err(resource_not_found(uri)),
            }
        }
        "resources/subscribe" | "resources/unsubscribe" => {
            let uri = uri_param(p)?;
            let exists = uri == OPEN_TICKETS_URI
                || uri
                    .strip_prefix("notes://")
                    .is_some_and(|id| store().note(id).is_some());
            if !exists {
                return Err(resource_not_found(uri));
            }
            let mut subs = lock(&session.subscriptions);
            if method == "resources/subscribe" {
                subs.insert(uri.to_owned());
            } else {
                subs.remove(uri);
            }
            Ok(json!({}))
        }
        "prompts/list" => Ok(json!({
            "prompts": [
                {
                    "name": "summarize_ticket", "title": "Summarize ticket",
                    "description": "Asks for a short summary of one ticket and a suggested next step.",
                    "arguments": [{ "name": "ticket_id", "description": "The ticket id, e.g. T-101.", "required": true }],
                },
                {
                    "name": "weekly_report", "title": "Weekly report",
                    "description": "Asks for a weekly status report over all open tickets.",
                    "arguments": [],
                },
            ],
        })),
        "prompts/get" => {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let args = p.get("arguments").cloned().unwrap_or(json!({}));
            let store = store();
            let text = match name {
                "summarize_ticket" => {
                    let id = args
                        .get("ticket_id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            RpcError::invalid_params("missing required argument ticket_id")
                        })?;
                    let t = store.ticket(id).ok_or_else(|| {
                        RpcError::invalid_params(format!("No ticket with id {id:?}"))
                    })?;
                    format!(
                        "Summarize ticket {} in two sentences and suggest the next step.\n\nTitle: {}\nPriority: {}\nStatus: {}\n\n{}",
                        t.id, t.title, t.priority, t.status, t.description
                    )
                }
                "weekly_report" => {
                    let open = store.open_tickets();
                    format!(
                        "Write a weekly status report for the team. There are {} open tickets:\n\n{}",
                        open.len(),
                        serde_json::to_string_pretty(&open).unwrap_or_default()
                    )
                }
                other => return Err(RpcError::invalid_params(format!("Unknown prompt: {other}"))),
            };
            Ok(json!({
                "description": format!("Prompt {name}"),
                "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
            }))
        }
        "completion/complete" => {
            let r = p.get("ref").cloned().unwrap_or(Value::Null);
            let arg_name = p.pointer("/argument/name").and_then(Value::as_str);
            let prefix = p
                .pointer("/argument/value")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let store = store();
            let candidates: Vec<&str> = match (r["type"].as_str(), arg_name) {
                (Some("ref/prompt"), Some("ticket_id")) if r["name"] == "summarize_ticket" => {
                    store.tickets.iter().map(|t| t.id.as_str()).collect()
                }
                (Some("ref/resource"), Some("id")) if r["uri"] == "notes://{id}" => {
                    store.notes.iter().map(|n| n.id.as_str()).collect()
                }
                (Some("ref/prompt" | "ref/resource"), _) => Vec::new(),
                _ => {
                    return Err(RpcError::invalid_params(
                        "ref must be a prompt or resource reference",
                    ))
                }
            };
            let values: Vec<&str> = candidates
                .into_iter()
                .filter(|c| c.to_lowercase().starts_with(&prefix.to_lowercase()))
                .take(100)
                .collect();
            Ok(
                json!({ "completion": { "values": values, "total": values.len(), "hasMore": false } }),
            )
        }
        "logging/setLevel" => set_log_level(session, p),
        other => Err(RpcError::method_not_found(other)),
    }
}

fn uri_param(p: &Value) -> Result<&str, RpcError> {
    p.get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("uri is required"))
}

pub(crate) fn resource_not_found(uri: &str) -> RpcError {
    RpcError {
        code: -32002,
        message: "Resource not found".to_owned(),
        data: Some(json!({ "uri": uri })),
    }
}
