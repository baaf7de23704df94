//! MCP methods, and how the gateway routes each.

/// How a client-sent method is handled by a federating gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// Answered by Warden itself (`initialize`, `ping`, …).
    Local,
    /// A list merged across upstreams (`tools/list`, …).
    List(ListKind),
    /// Routed to one upstream by a namespaced name in `params.name`.
    ByName(NameKind),
    /// Routed to one upstream by `params.uri`.
    ByUri,
    /// Routed by `params.ref` (`completion/complete`).
    ByRef,
    /// Sent to every upstream (`logging/setLevel`).
    Broadcast,
    /// Not a method Warden knows: refused with -32601.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl ListKind {
    /// The member of the result holding the items.
    pub fn items_key(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::ResourceTemplates => "resourceTemplates",
        }
    }
    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::ResourceTemplates => "resources/templates/list",
        }
    }
    /// The capability an upstream must declare for this list.
    pub fn capability(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources | ListKind::ResourceTemplates => "resources",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Tool,
    Prompt,
}

/// Routes a client-sent request method.
pub fn route(method: &str) -> Route {
    match method {
        "initialize" | "ping" | "server/discover" => Route::Local,
        "tools/list" => Route::List(ListKind::Tools),
        "prompts/list" => Route::List(ListKind::Prompts),
        "resources/list" => Route::List(ListKind::Resources),
        "resources/templates/list" => Route::List(ListKind::ResourceTemplates),
        "tools/call" => Route::ByName(NameKind::Tool),
        "prompts/get" => Route::ByName(NameKind::Prompt),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Route::ByUri,
        "completion/complete" => Route::ByRef,
        "logging/setLevel" => Route::Broadcast,
        _ => Route::Unknown,
    }
}

/// Requests a server may send to a client.
pub fn is_server_to_client_request(method: &str) -> bool {
    matches!(
        method,
        "sampling/createMessage" | "elicitation/create" | "roots/list" | "ping"
    )
}
