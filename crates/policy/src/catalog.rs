//! What the gateway knows about its servers at load: the facts a decision is
//! made over besides the principal and the request. Built by the gateway
//! from the `servers:` section of `warden.yaml`; deserialisable so that test
//! fixtures and `warden policy test` can declare one.

use std::fmt;

use serde::Deserialize;

/// A tool's risk tier. Ordered: `Low < Medium < High < Critical`.
///
/// Configured per tool (or per server, or `authorization.default_risk`);
/// upstream annotations may raise it, never lower it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskTier {
    /// Reads without side effects.
    Low,
    /// Reversible writes; reads of the outside world.
    Medium,
    /// Destructive or external actions.
    High,
    /// Irreversible or privileged actions (production, money, credentials).
    Critical,
}

impl RiskTier {
    pub const ALL: [RiskTier; 4] = [
        RiskTier::Low,
        RiskTier::Medium,
        RiskTier::High,
        RiskTier::Critical,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RiskTier::Low => "low",
            RiskTier::Medium => "medium",
            RiskTier::High => "high",
            RiskTier::Critical => "critical",
        }
    }

    /// The tier as `context`/`resource.risk_level`: 0 (low) .. 3 (critical).
    #[must_use]
    pub fn level(self) -> i64 {
        match self {
            RiskTier::Low => 0,
            RiskTier::Medium => 1,
            RiskTier::High => 2,
            RiskTier::Critical => 3,
        }
    }

    /// Parses `low | medium | high | critical`.
    #[must_use]
    pub fn parse(s: &str) -> Option<RiskTier> {
        RiskTier::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for RiskTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every server the gateway routes to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default)]
    pub servers: Vec<ServerFacts>,
}

/// One upstream server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFacts {
    /// The server's name in `servers:` (no `/`).
    pub name: String,
    /// Tenants the server is scoped to; empty = every tenant. A principal
    /// of another tenant (or of none) can neither see nor use anything of it.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// `dev`, `staging`, `prod`…: becomes `context.environment` for every
    /// request to this server (else the deployment's environment).
    #[serde(default)]
    pub environment: Option<String>,
    /// Tier of this server's tools, resources and prompts that no entry
    /// below describes (else `authorization.default_risk`).
    #[serde(default)]
    pub risk: Option<RiskTier>,
    /// Data class of everything of this server no entry below classifies.
    #[serde(default)]
    pub data_class: Option<String>,
    /// Labels of everything of this server (added to each item's labels).
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub tools: Vec<ItemFacts>,
    #[serde(default)]
    pub resources: Vec<ItemFacts>,
    #[serde(default)]
    pub prompts: Vec<ItemFacts>,
}

/// Facts about tools, resources or prompts of one server, by name (tools,
/// prompts) or URI (resources): exact or a `*` glob. Where several entries
/// match, the most specific one (exact, then most literal characters; the
/// first among equals) wins.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemFacts {
    /// `create_issue`, `read_*`, `file:///srv/hr/*`.
    #[serde(alias = "uri")]
    pub name: String,
    #[serde(default)]
    pub risk: Option<RiskTier>,
    /// `public`, `internal`, `confidential`…: read by toxic-flow rules
    /// (`context.session.data_classes`) and by `resource.data_class`.
    #[serde(default)]
    pub data_class: Option<String>,
    /// Free labels for policies, e.g. `external_send` for a tool that sends
    /// data out of the organisation.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Narrows the server's tenants (must intersect them).
    #[serde(default)]
    pub tenants: Vec<String>,
    /// What one call costs, counted by `limits.budgets` (tools only).
    #[serde(default)]
    pub cost: Option<Cost>,
}

/// The cost of one call: `amount` in `unit` (`USD`, `credits`), times the
/// value of the numeric argument `per` when it is given (`max_tokens`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    pub amount: f64,
    pub unit: String,
    #[serde(default)]
    pub per: Option<String>,
}

/// Which list of a server an item comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    Tool,
    Resource,
    Prompt,
}

impl ItemKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Tool => "tool",
            ItemKind::Resource => "resource",
            ItemKind::Prompt => "prompt",
        }
    }
}

impl ServerFacts {
    /// The facts of one item: the exact entry, else the most specific glob
    /// (the first among equals), as the policy engine resolves them.
    pub fn item(&self, kind: ItemKind, name: &str) -> Option<&ItemFacts> {
        let items = self.items(kind);
        if let Some(exact) = items.iter().find(|f| f.name == name) {
            return Some(exact);
        }
        let mut best: Option<&ItemFacts> = None;
        for item in items.iter().filter(|f| f.name.contains('*')) {
            if crate::glob::glob_match(&item.name, name)
                && best.is_none_or(|b| {
                    crate::glob::specificity(&item.name) > crate::glob::specificity(&b.name)
                })
            {
                best = Some(item);
            }
        }
        best
    }

    pub(crate) fn items(&self, kind: ItemKind) -> &[ItemFacts] {
        match kind {
            ItemKind::Tool => &self.tools,
            ItemKind::Resource => &self.resources,
            ItemKind::Prompt => &self.prompts,
        }
    }
}
