//! The pipeline: every client request Warden serves passes these stages, in
//! this order, with one [`Exchange`] that carries the configuration
//! snapshot pinned when the request entered (every stage reads that one),
//! the caller, the parsed message, the facts for the audit record and the
//! edits to splice. Numbers are `../shared/design/warden.md`'s; stages 1–2
//! (transport, authenticate) are the transports' (`http.rs`,
//! `modern_http.rs`, `stdio.rs`), which hand in only strictly parsed
//! messages and a resolved principal.
//!
//! | # | stage | file | what it decides |
//! |---|-------|------|-----------------|
//! | 3 | route | `route.rs` | name or URI → server and item; cursor; exposure |
//! | 4 | registry | `registry.rs` | server identity approved; live manifest = pinned |
//! | 5 | authorize | `authorize.rs` | scopes, then the policy engine |
//! | 6 | limits | `limits.rs` | rate limits, concurrency, budgets, breakers, loops |
//! | 7 | input guards | `input.rs` | arguments against the live schema; limits; injection |
//! | 8 | hold | `hold.rs` | calls policy marks for approval: bound to the exact call, asked in band or waited for |
//! | 9 | credentials | `credentials.rs` | the upstream's credential: static, per tenant, minted per call, or exchanged |
//! | 10 | execute | `execute.rs` | the upstream call (or Warden's own answer) |
//! | 11 | output guards | `output.rs` | redaction, labels, size caps, data classes |
//! | 12 | record | `record.rs` | metrics, the log line, the audit record |
//!
//! A refusal at any stage ([`Refusal`]) skips to record: the client gets
//! the refusal's one mapped answer and the audit record its decision and
//! reason. Server-to-client requests (sampling, elicitation, roots) pass
//! [`authorize::s2c_refusal`] before they reach a client.
//!
//! Which stages a method skips, and why, is [`SKIPS`]; every other method
//! passes every stage.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::value::RawValue;
use warden_identity::Principal;
use warden_protocol::edit::EditSet;
use warden_protocol::message::Message;
use warden_protocol::method::{ListKind, NameKind};

use crate::call::Call;
use crate::core::Gateway;
use crate::pool::Definition;
use crate::session::Session;
use crate::snapshot::{Snapshot, VirtualRoute};
use crate::stream::Sink;

pub mod authorize;
pub mod credentials;
pub mod execute;
pub mod hold;
pub mod input;
pub mod limits;
pub mod output;
pub mod record;
pub mod refusal;
pub mod registry;
pub mod route;

pub use refusal::Refusal;

/// A stage of the pipeline, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Route,
    Registry,
    Authorize,
    Limits,
    InputGuards,
    Hold,
    Credentials,
    Execute,
    OutputGuards,
    Record,
}

/// The stages, in the order every request passes them.
pub const STAGES: [Stage; 10] = [
    Stage::Route,
    Stage::Registry,
    Stage::Authorize,
    Stage::Limits,
    Stage::InputGuards,
    Stage::Hold,
    Stage::Credentials,
    Stage::Execute,
    Stage::OutputGuards,
    Stage::Record,
];

/// The methods that skip a stage, and why. Everything not listed here
/// passes every stage.
pub const SKIPS: &[(&str, &[Stage], &str)] = &[
    (
        "ping, server/discover, initialize (again)",
        &[
            Stage::Registry,
            Stage::Authorize,
            Stage::Limits,
            Stage::InputGuards,
            Stage::Hold,
            Stage::Credentials,
            Stage::OutputGuards,
        ],
        "answered by Warden itself: no upstream is asked and nothing of an \
         item is revealed (discover's capabilities are the union of what the \
         virtual server may start; every list stays filtered)",
    ),
    (
        "tools/list, prompts/list, resources/list, resources/templates/list",
        &[Stage::InputGuards, Stage::Hold, Stage::OutputGuards],
        "the discover scopes are checked before any upstream is asked; the \
         registry and the policy then judge each item of each page (only \
         pinned, unchanged items the caller may discover are listed); items \
         are definitions, scanned at pin time, not results",
    ),
    (
        "resources/read, resources/subscribe, resources/unsubscribe, completion/complete",
        &[Stage::InputGuards],
        "no arguments with a schema: the URI or reference is the item, judged \
         by route, registry and policy",
    ),
    (
        "prompts/get",
        &[Stage::InputGuards],
        "prompts declare arguments without a JSON schema to check",
    ),
    (
        "logging/setLevel",
        &[Stage::InputGuards, Stage::Hold, Stage::OutputGuards],
        "a session control, not an item: authorized by the discover scopes, \
         sent to every approved upstream of the virtual server that logs; \
         the log messages it causes pass the output guard as notifications",
    ),
];

/// What the route stage resolved a request to.
#[derive(Debug, Clone)]
pub enum Target {
    /// Not routed yet.
    Unrouted,
    /// Answered by Warden itself (`ping`, `server/discover`, a repeated
    /// `initialize`).
    Local,
    /// A list: every upstream's page merged. `pending`: the upstreams (and
    /// their cursors) a Warden cursor names; empty for the first page.
    List {
        kind: ListKind,
        pending: std::collections::BTreeMap<String, String>,
    },
    /// `tools/call` or `prompts/get`.
    Item {
        kind: NameKind,
        server: String,
        upstream_name: String,
        exposed: String,
    },
    /// `resources/read`, `resources/subscribe`, `resources/unsubscribe`.
    Resource { server: String, uri: String },
    /// `completion/complete` for a prompt's argument.
    CompletePrompt {
        server: String,
        upstream_name: String,
        exposed: String,
    },
    /// `completion/complete` for a resource template's argument.
    CompleteResource { server: String, uri: String },
    /// `logging/setLevel`: every server of the virtual server.
    Broadcast { servers: Vec<String> },
}

impl Target {
    /// The server a routed request goes to, if one.
    pub fn server(&self) -> Option<&str> {
        match self {
            Target::Item { server, .. }
            | Target::Resource { server, .. }
            | Target::CompletePrompt { server, .. }
            | Target::CompleteResource { server, .. } => Some(server),
            _ => None,
        }
    }

    /// The exposed name or URI the output guard's per-tool settings and
    /// the log lines use.
    pub fn subject(&self) -> &str {
        match self {
            Target::Item { exposed, .. } | Target::CompletePrompt { exposed, .. } => exposed,
            Target::Resource { uri, .. } | Target::CompleteResource { uri, .. } => uri,
            _ => "",
        }
    }
}

/// What the transport knows about one request beyond the message.
#[derive(Debug, Clone, Default)]
pub struct Inbound<'a> {
    /// The caller's W3C trace context (headers).
    pub trace: Option<crate::core::TraceContext<'a>>,
    /// The network peer (`None`: stdio).
    pub client_addr: Option<SocketAddr>,
    /// A 2026-07-28 request's `Mcp-Param-*` headers (names lower-cased).
    pub param_headers: Arc<[(String, String)]>,
    /// The principal of the credential this request carries. A session is
    /// bound to its principal's identity (checked by the transport), but
    /// its rights are the current token's: `None` only where the transport
    /// has no per-request credential (stdio, Warden's own follow-ups), and
    /// then the session's principal decides.
    pub principal: Option<Principal>,
    /// The bearer token of that credential, for token exchange only.
    pub subject_token: Option<warden_credentials::SubjectToken>,
}

/// One request on its way through the pipeline.
pub struct Exchange<'m> {
    /// The configuration in force when the request entered: every stage
    /// reads this one, so a reload mid-call never mixes two.
    pub snap: Arc<Snapshot>,
    pub route: Arc<VirtualRoute>,
    pub session: Arc<Session>,
    /// The caller.
    pub principal: Principal,
    pub msg: &'m Message<'m>,
    /// The client's request id, as raw JSON.
    pub id: &'m str,
    /// Where related messages (progress, server-to-client requests) go.
    pub sink: Sink,
    /// The facts of the audit record and the correlation id.
    pub call: Call,
    pub target: Target,
    /// The splices to apply to the client's message before it goes
    /// upstream (names, rewritten arguments).
    pub edits: EditSet,
    /// The live definition of the tool or prompt (registry stage).
    pub definition: Option<Definition>,
    /// An approval the policy requires (authorize stage; hold decides).
    pub approval: Option<hold::Order>,
    /// The call's hold on its limits (limits stage): released when the
    /// exchange ends, told the outcome if the upstream was called.
    pub admission: Option<warden_limits::Admission>,
    /// Extra HTTP headers for the upstream request (`Mcp-Param-*`).
    pub upstream_headers: Vec<(String, String)>,
    /// The call's own upstream credential (credentials stage): replaces
    /// the connection's.
    pub credential_headers: Vec<(String, String)>,
    /// The caller's bearer token (`Inbound::subject_token`): exchanged in
    /// the credentials stage, never forwarded.
    pub subject_token: Option<warden_credentials::SubjectToken>,
    /// The client's `Mcp-Param-*` headers (2026-07-28).
    pub param_headers: Arc<[(String, String)]>,
    /// The arguments whose canonical hash the record carries (route
    /// stage); hashed on first use ([`Exchange::input_hash`]).
    pub hashed_arguments: Option<&'m RawValue>,
}

impl<'m> Exchange<'m> {
    /// The tool's live definition, if the route is a tool.
    pub fn tool(&self) -> Option<&Definition> {
        match &self.target {
            Target::Item {
                kind: NameKind::Tool,
                ..
            } => self.definition.as_ref(),
            _ => None,
        }
    }

    /// The tool's live definition as JSON, if the route is a tool.
    pub fn tool_json(&self) -> Option<&RawValue> {
        self.tool().map(|d| &*d.json)
    }

    /// The canonical hash of the call's arguments (limits' loop
    /// detection, approvals, minted tokens, the audit record), computed
    /// once, when a stage first needs it.
    pub fn input_hash(&self) -> Option<String> {
        if let Some(hash) = self.call.input_hash() {
            return Some(hash);
        }
        let hash = warden_audit::input_hash(self.hashed_arguments?);
        self.call.note(|f| f.input_hash = Some(hash.clone()));
        Some(hash)
    }
}

/// What the execute stage produced.
#[derive(Debug)]
pub enum Executed {
    /// An upstream's raw response (Warden's id in it): the output stage
    /// guards it and gives the client its id back.
    Upstream { server: String, text: String },
    /// The final answer (Warden's own, or a merged list).
    Answer(String),
    /// The client cancelled: nothing to answer.
    Cancelled,
}

impl Gateway {
    /// Runs one client request through every stage (see the module docs).
    pub(crate) async fn run_pipeline(self: &Arc<Self>, ex: &mut Exchange<'_>) -> Handled {
        let answered = self.stages(ex).await;
        limits::settle(self, ex, &answered);
        record::run(self, ex, answered).await
    }

    /// Stages 3–11; a refusal at any of them ends the request.
    async fn stages(self: &Arc<Self>, ex: &mut Exchange<'_>) -> Result<Option<String>, Refusal> {
        route::run(self, ex).await?;
        registry::run(self, ex).await?;
        authorize::run(self, ex)?;
        limits::run(self, ex).await?;
        input::run(self, ex)?;
        if hold::run(self, ex).await? == hold::Go::Cancelled {
            // The client gave up on its held call: no answer (as a call
            // cancelled upstream gets none).
            return Ok(None);
        }
        credentials::run(self, ex).await?;
        let executed = execute::run(self, ex).await?;
        output::run(self, ex, executed)
    }
}

/// What handling one client message produced.
#[derive(Debug, Default)]
pub struct Handled {
    /// The response (`None` for notifications, responses, and requests the
    /// client cancelled).
    pub response: Option<String>,
    /// The refusal that ended the request, if one did (the HTTP transport
    /// answers 403 with a challenge for missing scopes).
    pub refusal: Option<Refusal>,
}

impl Handled {
    /// Every scope the operation needs, when it was refused for lack of
    /// scopes (a 403 `insufficient_scope` step-up challenge).
    pub fn insufficient_scope(&self) -> Option<&[String]> {
        self.refusal.as_ref().and_then(Refusal::required_scopes)
    }
}

#[cfg(test)]
mod tests;
