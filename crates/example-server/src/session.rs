//! The transport-independent core: one [`Server`] per `run_*` call, one
//! [`Session`] per client connection, and the dispatch of each message.
//!
//! A transport turns received text into [`Incoming`] messages and hands each
//! to [`Session::accept`] together with a [`Sink`]. Requests run in tasks of
//! their own (a tool may wait for the client's answer to a question it asked,
//! and that answer arrives as a later message); everything a task sends —
//! notifications, server-to-client requests, and finally its [`Reply`] — goes
//! to the sink in order, and the transport decides how to frame it.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use warden_protocol::ProtocolVersion;

use crate::{demo, test_tools, Mode, Options};

/// How long a tool waits for the client to answer a server-to-client request.
const CLIENT_ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// Locks a mutex, recovering from poisoning: every critical section here
/// leaves the data consistent, so a panic elsewhere must not wedge the server.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// State shared by every session of one server.
pub(crate) struct Server {
    pub(crate) mode: Mode,
    name: String,
    recorder: Option<Mutex<std::fs::File>>,
    initializes: AtomicU64,
    pub(crate) demo: Mutex<demo::Store>,
    /// Test mode: bumped by `change_tools`, shown in `echo`'s description.
    pub(crate) echo_revision: AtomicU64,
    /// Every session, for notifications that concern all of them.
    sessions: Mutex<Vec<Weak<Session>>>,
    /// Tools from `Options::extra_tools`, served as written.
    pub(crate) extra_tools: Vec<Value>,
}

impl Server {
    pub(crate) fn new(mode: Mode, opts: &Options) -> std::io::Result<Server> {
        let recorder = match &opts.record {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
            None => None,
        };
        let extra_tools = match &opts.extra_tools {
            Some(path) => {
                let text = std::fs::read_to_string(path)?;
                match serde_json::from_str::<Value>(&text)? {
                    Value::Array(tools) => tools,
                    _ => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "extra tools: expected a JSON array of tool definitions",
                        ))
                    }
                }
            }
            None => Vec::new(),
        };
        let name = opts.name.clone().unwrap_or_else(|| {
            match mode {
                Mode::Demo => "warden-demo",
                Mode::Echo => "warden-echo",
                Mode::Test => "warden-test-server",
            }
            .to_owned()
        });
        Ok(Server {
            mode,
            name,
            recorder,
            initializes: AtomicU64::new(0),
            demo: Mutex::new(demo::Store::seeded()),
            echo_revision: AtomicU64::new(1),
            sessions: Mutex::new(Vec::new()),
            extra_tools,
        })
    }

    /// The sessions still alive.
    pub(crate) fn live_sessions(&self) -> Vec<Arc<Session>> {
        let mut all = lock(&self.sessions);
        all.retain(|s| s.strong_count() > 0);
        all.iter().filter_map(Weak::upgrade).collect()
    }

    /// Appends one received message to the record file, as one line. JSON
    /// never needs a raw line break outside strings, so replacing them keeps
    /// valid JSON valid.
    pub(crate) fn record(&self, text: &str) {
        let Some(file) = &self.recorder else { return };
        let mut line = text.replace(['\r', '\n'], " ");
        line.push('\n');
        let mut f = lock(file);
        if let Err(e) = f.write_all(line.as_bytes()).and_then(|()| f.flush()) {
            tracing::warn!(error = %e, "could not append to the record file");
        }
    }

    pub(crate) fn initialize_count(&self) -> u64 {
        self.initializes.load(Ordering::Relaxed)
    }
}

/// Which transport a message came in on; a few test tools behave
/// differently per transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Stdio,
    StreamableHttp,
    LegacySse,
}

/// The last thing a request task sends.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A JSON-RPC response (result or error), serialised.
    Response(String),
    /// A line that is not JSON; nothing else follows for this request.
    Garbage(String),
    /// Die mid-call: exit the process (stdio) or drop the connection (HTTP).
    Crash,
}

/// What a request task sends to its transport, in order.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A notification or server-to-client request, serialised.
    Message(String),
    Reply(Reply),
}

/// Where a request's frames go.
#[derive(Clone)]
pub(crate) struct Sink(pub(crate) mpsc::UnboundedSender<Frame>);

impl Sink {
    pub(crate) fn channel() -> (Sink, mpsc::UnboundedReceiver<Frame>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Sink(tx), rx)
    }

    pub(crate) fn message(&self, msg: &Value) {
        // A closed sink means the client went away; nothing left to tell it.
        let _ = self.0.send(Frame::Message(msg.to_string()));
    }

    fn reply(&self, reply: Reply) {
        let _ = self.0.send(Frame::Reply(reply));
    }
}

/// Per-message context supplied by the transport.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) sink: Sink,
    pub(crate) transport: Transport,
    /// HTTP request headers (test mode only, for `echo_headers`).
    pub(crate) headers: Option<Arc<Value>>,
}

/// A request from the client.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) id: Value,
    pub(crate) method: String,
    pub(crate) params: Value,
}

/// One received message, classified.
#[derive(Debug)]
pub(crate) enum Incoming {
    Request(Request),
    Notification {
        method: String,
        params: Value,
    },
    /// The client's answer to one of our requests.
    Response {
        id: Value,
        outcome: Result<Value, Value>,
    },
    /// Not a valid message: the serialised error response to send.
    Invalid(String),
}

impl Incoming {
    pub(crate) fn is_initialize(&self) -> bool {
        matches!(self, Incoming::Request(r) if r.method == "initialize")
    }
}

/// Parses a body (one message or, in 2025-03-26, a batch). The `bool` says
/// whether it was a batch.
pub(crate) fn parse_body(text: &str) -> (Vec<Incoming>, bool) {
    match serde_json::from_str::<Value>(text) {
        Err(_) => (
            vec![Incoming::Invalid(error_response(
                &Value::Null,
                &RpcError::new(-32700, "Parse error"),
            ))],
            false,
        ),
        Ok(Value::Array(items)) if !items.is_empty() => {
            (items.into_iter().map(classify).collect(), true)
        }
        Ok(v) => (vec![classify(v)], false),
    }
}

fn classify(v: Value) -> Incoming {
    let invalid = |id: &Value| {
        Incoming::Invalid(error_response(
            id,
            &RpcError::new(-32600, "Invalid Request"),
        ))
    };
    let Value::Object(mut obj) = v else {
        return invalid(&Value::Null);
    };
    let id = obj.remove("id");
    let valid_id = matches!(&id, Some(Value::String(_)) | Some(Value::Number(_)));
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(id.as_ref().filter(|_| valid_id).unwrap_or(&Value::Null));
    }
    let params = obj.remove("params").unwrap_or(Value::Null);
    if let Some(method) = obj.get("method").and_then(Value::as_str) {
        let method = method.to_owned();
        return match id {
            None => Incoming::Notification { method, params },
            Some(id) if valid_id => Incoming::Request(Request { id, method, params }),
            Some(_) => invalid(&Value::Null),
        };
    }
    match (id, obj.remove("result"), obj.remove("error")) {
        (Some(id), Some(result), None) => Incoming::Response {
            id,
            outcome: Ok(result),
        },
        (Some(id), None, Some(error)) => Incoming::Response {
            id,
            outcome: Err(error),
        },
        (id, _, _) => invalid(id.as_ref().filter(|_| valid_id).unwrap_or(&Value::Null)),
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) data: Option<Value>,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }
    pub(crate) fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(-32602, message)
    }
    pub(crate) fn method_not_found(method: &str) -> RpcError {
        RpcError::new(-32601, format!("Method not found: {method}"))
    }
}

pub(crate) fn error_response(id: &Value, e: &RpcError) -> String {
    let mut error = json!({ "code": e.code, "message": e.message });
    if let Some(data) = &e.data {
        error["data"] = data.clone();
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": error }).to_string()
}

pub(crate) fn result_response(id: &Value, result: &Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "result": result }).to_string()
}

/// What a method handler produced.
pub(crate) enum Outcome {
    Ok(Value),
    Err(RpcError),
    /// A reply that is not a JSON-RPC response (test mode).
    Raw(Reply),
}

impl From<Result<Value, RpcError>> for Outcome {
    fn from(r: Result<Value, RpcError>) -> Outcome {
        match r {
            Ok(v) => Outcome::Ok(v),
            Err(e) => Outcome::Err(e),
        }
    }
}

/// What [`Session::accept`] did with a message.
#[derive(Debug)]
pub(crate) enum Accepted {
    /// A request task was started; its reply will arrive on the sink.
    Spawned(AbortHandle),
    /// An error reply was already sent to the sink.
    Replied,
    /// Nothing will be sent (notification or response).
    Absorbed,
}

/// One client connection.
pub(crate) struct Session {
    pub(crate) server: Arc<Server>,
    protocol: Mutex<Option<ProtocolVersion>>,
    client_capabilities: Mutex<Value>,
    pending: Mutex<HashMap<String, oneshot::Sender<Result<Value, Value>>>>,
    next_request_id: AtomicU64,
    running: Mutex<HashMap<String, AbortHandle>>,
    /// Where messages unrelated to a request go (stdio: stdout; HTTP: the
    /// GET stream, when one is open; legacy: the SSE stream).
    standalone: Mutex<Option<Sink>>,
    pub(crate) subscriptions: Mutex<HashSet<String>>,
    /// The least severe level the client wants `notifications/message` for;
    /// none until it calls `logging/setLevel`.
    log_level: Mutex<Option<usize>>,
}

impl Session {
    pub(crate) fn new(server: Arc<Server>) -> Arc<Session> {
        let session = Arc::new(Session {
            server: Arc::clone(&server),
            protocol: Mutex::new(None),
            client_capabilities: Mutex::new(Value::Null),
            pending: Mutex::new(HashMap::new()),
            next_request_id: AtomicU64::new(1),
            running: Mutex::new(HashMap::new()),
            standalone: Mutex::new(None),
            subscriptions: Mutex::new(HashSet::new()),
            log_level: Mutex::new(None),
        });
        lock(&server.sessions).push(Arc::downgrade(&session));
        session
    }

    #[cfg(test)]
    pub(crate) fn running_count(&self) -> usize {
        lock(&self.running).len()
    }

    /// The negotiated protocol version, once initialized.
    pub(crate) fn protocol(&self) -> Option<ProtocolVersion> {
        *lock(&self.protocol)
    }

    /// Sets the sink for messages unrelated to any request. Returns false if
    /// one is already open.
    pub(crate) fn open_standalone(&self, sink: Sink) -> bool {
        let mut s = lock(&self.standalone);
        if s.as_ref().is_some_and(|s| !s.0.is_closed()) {
            return false;
        }
        *s = Some(sink);
        true
    }

    pub(crate) fn close_standalone(&self) {
        *lock(&self.standalone) = None;
    }

    /// Forgets the standalone sink if it is still `sink` (so that a newer
    /// stream is never dropped by an older one's cleanup).
    pub(crate) fn release_standalone(&self, sink: &Sink) {
        let mut s = lock(&self.standalone);
        if s.as_ref().is_some_and(|s| s.0.same_channel(&sink.0)) {
            *s = None;
        }
    }

    /// Sends a notification on the standalone stream, if there is one.
    pub(crate) fn notify_standalone(&self, method: &str, params: Value) {
        if let Some(s) = lock(&self.standalone).as_ref() {
            s.message(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
        }
    }

    /// Takes one message. Requests are spawned; everything else is handled
    /// at once.
    pub(crate) fn accept(self: &Arc<Self>, msg: Incoming, ctx: &Ctx) -> Accepted {
        match msg {
            Incoming::Request(req) => {
                let key = req.id.to_string();
                let session = Arc::clone(self);
                let ctx = ctx.clone();
                let done_key = key.clone();
                // Holding the table's lock across the spawn means the task's
                // guard cannot remove its entry before it is inserted.
                let mut running = lock(&self.running);
                let task = tokio::spawn(async move {
                    let running = RunningGuard {
                        session: Arc::clone(&session),
                        key: done_key,
                    };
                    let id = req.id.clone();
                    let reply = match session.call(req, &ctx).await {
                        Outcome::Ok(v) => Reply::Response(result_response(&id, &v)),
                        Outcome::Err(e) => Reply::Response(error_response(&id, &e)),
                        Outcome::Raw(r) => r,
                    };
                    // No longer cancellable once the reply is on its way.
                    drop(running);
                    ctx.sink.reply(reply);
                });
                let handle = task.abort_handle();
                running.insert(key, handle.clone());
                Accepted::Spawned(handle)
            }
            Incoming::Notification { method, params } => {
                self.notification(&method, &params);
                Accepted::Absorbed
            }
            Incoming::Response { id, outcome } => {
                match lock(&self.pending).remove(&id.to_string()) {
                    Some(waiter) => {
                        let _ = waiter.send(outcome);
                    }
                    None => tracing::debug!(%id, "response to no pending request"),
                }
                Accepted::Absorbed
            }
            Incoming::Invalid(err) => {
                ctx.sink.reply(Reply::Response(err));
                Accepted::Replied
            }
        }
    }

    fn notification(&self, method: &str, params: &Value) {
        match method {
            "notifications/cancelled" => {
                let Some(id) = params.get("requestId") else {
                    return;
                };
                if let Some(task) = lock(&self.running).remove(&id.to_string()) {
                    task.abort();
                }
            }
            "notifications/initialized" | "notifications/roots/list_changed" => {}
            other => tracing::debug!(method = other, "ignored notification"),
        }
    }

    async fn call(self: &Arc<Self>, req: Request, ctx: &Ctx) -> Outcome {
        let mode = self.server.mode;
        let p = &req.params;
        let params_ok = p.is_null() || p.is_object();
        if !params_ok {
            return Outcome::Err(RpcError::invalid_params("params must be an object"));
        }
        match req.method.as_str() {
            "initialize" => self.initialize(p).into(),
            "ping" => Outcome::Ok(json!({})),
            "tools/list" => Outcome::Ok(json!({ "tools": self.tools() })),
            "tools/call" => {
                let call = ToolCall::new(Arc::clone(self), ctx.clone(), p);
                match call {
                    Ok(call)
                        if self
                            .server
                            .extra_tools
                            .iter()
                            .any(|t| t["name"] == call.name.as_str()) =>
                    {
                        Outcome::Ok(
                            json!({"content": [{"type": "text", "text": format!("called {}", call.name)}]}),
                        )
                    }
                    Ok(call) => match mode {
                        Mode::Demo => demo::call_tool(&call).into(),
                        Mode::Echo => echo_tool(&call).into(),
                        Mode::Test => test_tools::call_tool(&call).await,
                    },
                    Err(e) => Outcome::Err(e),
                }
            }
            method => match mode {
                Mode::Demo => demo::handle(self, method, p).into(),
                Mode::Test => test_tools::handle(self, method, p).into(),
                Mode::Echo => match method {
                    "logging/setLevel" => set_log_level(self, p).into(),
                    _ => Outcome::Err(RpcError::method_not_found(method)),
                },
            },
        }
    }

    fn initialize(&self, p: &Value) -> Result<Value, RpcError> {
        let requested = p
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("protocolVersion is required"))?;
        let version = ProtocolVersion::negotiate(requested);
        *lock(&self.protocol) = Some(version);
        *lock(&self.client_capabilities) = p.get("capabilities").cloned().unwrap_or(json!({}));
        self.server.initializes.fetch_add(1, Ordering::Relaxed);
        let (capabilities, instructions) = match self.server.mode {
            Mode::Demo => (
                json!({
                    "tools": { "listChanged": false },
                    "resources": { "subscribe": true, "listChanged": false },
                    "prompts": { "listChanged": false },
                    "completions": {},
                    "logging": {},
                }),
                Some(demo::INSTRUCTIONS),
            ),
            Mode::Echo => (json!({ "tools": {}, "logging": {} }), None),
            Mode::Test => (
                json!({
                    "tools": { "listChanged": true },
                    "resources": {},
                    "prompts": {},
                    "logging": {},
                }),
                Some("A hostile test server. Do not use outside tests."),
            ),
        };
        let mut result = json!({
            "protocolVersion": version.as_str(),
            "capabilities": capabilities,
            "serverInfo": { "name": self.server.name, "version": env!("CARGO_PKG_VERSION") },
        });
        if let Some(text) = instructions {
            result["instructions"] = json!(text);
        }
        Ok(result)
    }

    pub(crate) fn tools(&self) -> Value {
        let mut tools = match self.server.mode {
            Mode::Demo => demo::tools(),
            Mode::Echo => json!([echo_tool_definition("Echoes the message back.")]),
            Mode::Test => test_tools::tools(&self.server),
        };
        if let Value::Array(list) = &mut tools {
            list.extend(self.server.extra_tools.iter().cloned());
        }
        tools
    }

    /// The client's declared capabilities from `initialize`.
    pub(crate) fn client_capabilities(&self) -> Value {
        lock(&self.client_capabilities).clone()
    }
}

/// Removes a finished (or aborted) request from the running table.
struct RunningGuard {
    session: Arc<Session>,
    key: String,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        lock(&self.session.running).remove(&self.key);
    }
}

/// A `tools/call` in progress: its arguments, and the means to talk to the
/// client while it runs.
pub(crate) struct ToolCall {
    pub(crate) session: Arc<Session>,
    pub(crate) ctx: Ctx,
    pub(crate) name: String,
    pub(crate) arguments: Value,
    pub(crate) progress_token: Option<Value>,
}

impl ToolCall {
    fn new(session: Arc<Session>, ctx: Ctx, params: &Value) -> Result<ToolCall, RpcError> {
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("name is required"))?
            .to_owned();
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => json!({}),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(RpcError::invalid_params("arguments must be an object")),
        };
        let progress_token = params
            .get("_meta")
            .and_then(|m| m.get("progressToken"))
            .filter(|t| t.is_string() || t.is_number())
            .cloned();
        Ok(ToolCall {
            session,
            ctx,
            name,
            arguments,
            progress_token,
        })
    }

    pub(crate) fn str_arg(&self, key: &str) -> Option<&str> {
        self.arguments.get(key).and_then(Value::as_str)
    }

    pub(crate) fn u64_arg(&self, key: &str) -> Option<u64> {
        self.arguments.get(key).and_then(Value::as_u64)
    }

    /// Sends a notification on this request's stream.
    pub(crate) fn notify(&self, method: &str, params: Value) {
        self.ctx
            .sink
            .message(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a log message on this request's stream if the client asked
    /// for messages of this severity with `logging/setLevel`.
    pub(crate) fn log(&self, level: &str, logger: &str, data: Value) {
        let wanted = *lock(&self.session.log_level);
        let severity = LOG_LEVELS.iter().position(|l| *l == level);
        if let (Some(wanted), Some(severity)) = (wanted, severity) {
            if severity >= wanted {
                self.notify(
                    "notifications/message",
                    json!({ "level": level, "logger": logger, "data": data }),
                );
            }
        }
    }

    /// Sends a request to the client on this request's stream and waits for
    /// its answer. `Err` carries the client's error object, or a description
    /// of why there was no answer.
    pub(crate) async fn ask_client(&self, method: &str, params: Value) -> Result<Value, Value> {
        let session = &self.session;
        let id = session.next_request_id.fetch_add(1, Ordering::Relaxed);
        let id = Value::from(id);
        let (tx, rx) = oneshot::channel();
        lock(&session.pending).insert(id.to_string(), tx);
        self.ctx.sink.message(&json!({
            "jsonrpc": "2.0", "id": id, "method": method, "params": params,
        }));
        let answer = tokio::time::timeout(CLIENT_ANSWER_TIMEOUT, rx).await;
        lock(&session.pending).remove(&id.to_string());
        match answer {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(json!({ "message": "no answer" })),
            Err(_) => Err(json!({ "message": "the client did not answer in time" })),
        }
    }
}

/// The text content result of a tool.
pub(crate) fn text_result(text: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }] })
}

/// A tool failure the model should see (`isError: true`).
pub(crate) fn tool_error(text: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }], "isError": true })
}

/// Text content plus `structuredContent` with the same data.
pub(crate) fn structured_result(data: Value) -> Value {
    json!({
        "content": [{ "type": "text", "text": data.to_string() }],
        "structuredContent": data,
    })
}

pub(crate) fn echo_tool_definition(description: &str) -> Value {
    json!({
        "name": "echo",
        "title": "Echo",
        "description": description,
        "inputSchema": {
            "type": "object",
            "properties": { "message": { "type": "string", "description": "The text to echo." } },
            "required": ["message"],
            "additionalProperties": false,
        },
        "annotations": { "readOnlyHint": true, "openWorldHint": false },
    })
}

fn echo_tool(call: &ToolCall) -> Result<Value, RpcError> {
    if call.name != "echo" {
        return Err(RpcError::invalid_params(format!(
            "Unknown tool: {}",
            call.name
        )));
    }
    match call.arguments.get("message") {
        Some(Value::String(m)) if call.arguments.as_object().is_some_and(|o| o.len() == 1) => {
            Ok(text_result(m.as_str()))
        }
        _ => Err(RpcError::invalid_params(
            "echo takes exactly one argument: message (string)",
        )),
    }
}

use warden_protocol::modern::LOG_LEVELS;

pub(crate) fn set_log_level(session: &Session, p: &Value) -> Result<Value, RpcError> {
    let level = p
        .get("level")
        .and_then(Value::as_str)
        .and_then(|l| LOG_LEVELS.iter().position(|known| *known == l))
        .ok_or_else(|| {
            RpcError::invalid_params(format!("level must be one of {}", LOG_LEVELS.join(", ")))
        })?;
    *lock(&session.log_level) = Some(level);
    Ok(json!({}))
}
