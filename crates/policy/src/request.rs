//! [`Request`]: one authorization question, borrowed from the gateway's
//! own state (no copies on the request path).

use std::net::IpAddr;
use std::time::SystemTime;

use serde_json::value::RawValue;
use warden_identity::Principal;

use crate::catalog::ItemKind;
use crate::settings::ApprovalFact;

/// What the principal wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// See a tool, resource (or resource template) or prompt in a list.
    Discover(ItemKind),
    CallTool,
    ReadResource,
    GetPrompt,
    Subscribe,
    /// A server asks the client to sample (server-initiated).
    Sample,
    /// A server asks the client for input (server-initiated).
    Elicit,
}

impl Action {
    pub(crate) fn name(self) -> ActionName {
        match self {
            Action::Discover(_) => ActionName::Discover,
            Action::CallTool => ActionName::CallTool,
            Action::ReadResource => ActionName::ReadResource,
            Action::GetPrompt => ActionName::GetPrompt,
            Action::Subscribe => ActionName::Subscribe,
            Action::Sample => ActionName::Sample,
            Action::Elicit => ActionName::Elicit,
        }
    }

    /// The kind of item the request names; `None` for the server itself.
    #[must_use]
    pub fn item_kind(self) -> Option<ItemKind> {
        match self {
            Action::Discover(k) => Some(k),
            Action::CallTool => Some(ItemKind::Tool),
            Action::ReadResource | Action::Subscribe => Some(ItemKind::Resource),
            Action::GetPrompt => Some(ItemKind::Prompt),
            Action::Sample | Action::Elicit => None,
        }
    }

    /// The Cedar action id (`discover`, `call_tool`…).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.name().as_str()
    }
}

/// The Cedar actions, by name (configuration and test files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ActionName {
    Discover,
    CallTool,
    ReadResource,
    GetPrompt,
    Subscribe,
    Sample,
    Elicit,
}

impl ActionName {
    pub(crate) const ALL: [ActionName; 7] = [
        ActionName::Discover,
        ActionName::CallTool,
        ActionName::ReadResource,
        ActionName::GetPrompt,
        ActionName::Subscribe,
        ActionName::Sample,
        ActionName::Elicit,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ActionName::Discover => "discover",
            ActionName::CallTool => "call_tool",
            ActionName::ReadResource => "read_resource",
            ActionName::GetPrompt => "get_prompt",
            ActionName::Subscribe => "subscribe",
            ActionName::Sample => "sample",
            ActionName::Elicit => "elicit",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<ActionName> {
        ActionName::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One authorization question.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    pub action: Action,
    /// The upstream server's name (as in `servers:`).
    pub server: &'a str,
    /// The tool or prompt name, or the resource URI (template), as the
    /// upstream knows it; ignored for `Sample` and `Elicit`.
    pub resource: &'a str,
    /// The call's `arguments` (tools/call, prompts/get) exactly as received.
    pub arguments: Option<&'a RawValue>,
    /// The upstream's `annotations` of the tool: may raise the tier, never
    /// lower it (`destructiveHint: true` → high, `openWorldHint: true` →
    /// medium; anything malformed → high).
    pub annotations: Option<&'a RawValue>,
    pub context: RequestContext<'a>,
}

/// The circumstances of a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The time of the request (the gateway reads the clock, not the engine);
    /// `context.time` is this instant in the configured zone.
    pub now: SystemTime,
    /// The client's address, when known (`context.client_address`).
    pub client_address: Option<IpAddr>,
    /// The deployment's environment; a server's own `environment` wins.
    pub environment: Option<&'a str>,
    /// What this session has done so far.
    pub session: SessionFacts<'a>,
    /// Whether a human approved this exact call (principal, tool, argument
    /// hash): the approvals stage checks the binding, policy sees the facts.
    pub approval: ApprovalState<'a>,
}

impl RequestContext<'_> {
    /// A context with only the time: no address, no environment, a fresh
    /// session, no approval.
    #[must_use]
    pub fn at(now: SystemTime) -> Self {
        RequestContext {
            now,
            client_address: None,
            environment: None,
            session: SessionFacts::default(),
            approval: ApprovalState::default(),
        }
    }
}

/// Session history that policies may read (toxic flows).
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionFacts<'a> {
    /// Data classes this session has already read
    /// ([`PolicyEngine::data_class`] of every earlier successful read).
    pub data_classes: &'a [String],
}

/// The approval state of this exact call.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApprovalState<'a> {
    pub granted: bool,
    pub approver: Option<&'a str>,
    pub change_ticket: Option<&'a str>,
    pub reason: Option<&'a str>,
}

impl ApprovalState<'_> {
    pub(crate) fn has(&self, fact: ApprovalFact) -> bool {
        let v = match fact {
            ApprovalFact::ChangeTicket => self.change_ticket,
            ApprovalFact::Reason => self.reason,
        };
        v.is_some_and(|s| !s.trim().is_empty())
    }
}
