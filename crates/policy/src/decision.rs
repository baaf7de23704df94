//! [`Decision`], [`ReasonCode`], [`ScopeCheck`]: what the engine answers.

use std::fmt;

use crate::settings::{ApprovalFact, Approvers};

/// The outcome. Every variant names the policies that decided it (empty
/// for a default deny and for refusals before evaluation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        policies: Vec<String>,
    },
    Deny {
        policies: Vec<String>,
        reason: ReasonCode,
    },
    /// Allowed once a human approves; the approval must carry `requires`
    /// and its approver must satisfy every one of `approvers` (one per
    /// approval policy that applies).
    RequiresApproval {
        policies: Vec<String>,
        reason: ReasonCode,
        requires: Vec<ApprovalFact>,
        approvers: Vec<Approvers>,
    },
}

impl Decision {
    #[must_use]
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    #[must_use]
    pub fn policies(&self) -> &[String] {
        match self {
            Decision::Allow { policies }
            | Decision::Deny { policies, .. }
            | Decision::RequiresApproval { policies, .. } => policies,
        }
    }

    /// `allow`, `deny`, `requires_approval`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::Deny { .. } => "deny",
            Decision::RequiresApproval { .. } => "requires_approval",
        }
    }

    /// The reason code for audit; `allowed` for an allow.
    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow { .. } => "allowed",
            Decision::Deny { reason, .. } | Decision::RequiresApproval { reason, .. } => {
                reason.as_str()
            }
        }
    }
}

/// Why a request was not simply allowed. Stable strings for audit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReasonCode {
    /// No permit applied (`default_deny`).
    DefaultDeny,
    /// A forbid without a `@reason` applied (`forbidden`).
    Forbidden,
    /// The tenancy rule (`cross_tenant`).
    CrossTenant,
    /// A forbid's `@reason("…")`, e.g. `toxic_flow`.
    Policy(String),
    /// An approval rule applies and no (complete) approval is present
    /// (`approval_required`).
    ApprovalRequired,
    /// An argument a policy may read does not fit its declared type
    /// (`invalid_arguments`).
    InvalidArguments,
    /// The server is not in the catalog (`unknown_server`).
    UnknownServer,
    /// A forbid could not be evaluated; counted as applying
    /// (`policy_error`).
    PolicyError,
    /// The request could not be put to Cedar (`invalid_request`).
    InvalidRequest,
}

impl ReasonCode {
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            ReasonCode::DefaultDeny => "default_deny",
            ReasonCode::Forbidden => "forbidden",
            ReasonCode::CrossTenant => "cross_tenant",
            ReasonCode::Policy(s) => s,
            ReasonCode::ApprovalRequired => "approval_required",
            ReasonCode::InvalidArguments => "invalid_arguments",
            ReasonCode::UnknownServer => "unknown_server",
            ReasonCode::PolicyError => "policy_error",
            ReasonCode::InvalidRequest => "invalid_request",
        }
    }

    pub(crate) fn from_annotation(s: &str) -> ReasonCode {
        match s {
            "default_deny" => ReasonCode::DefaultDeny,
            "forbidden" => ReasonCode::Forbidden,
            "cross_tenant" => ReasonCode::CrossTenant,
            "approval_required" => ReasonCode::ApprovalRequired,
            other => ReasonCode::Policy(other.to_owned()),
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the principal's scopes cover what the operation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeCheck {
    Ok,
    /// Every scope the operation needs (for `insufficient_scope`'s
    /// `scope=`), not only the missing ones.
    Missing(Vec<String>),
}
