//! What an approval is: the held call as an approver sees it
//! ([`HeldCall`]), the binding to exactly that call ([`Binding`]), and the
//! record with its life cycle ([`Approval`], [`Status`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What binds an approval to one call: the caller, the server, the item
/// and the canonical hash of the arguments. Any change to one of them is
/// another call, and needs its own approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub principal: String,
    pub server: String,
    pub kind: String,
    pub item: String,
    /// `sha256:<hex>` of the RFC 8785 canonical arguments (`""`: none).
    pub args_hash: String,
}

impl Binding {
    /// The stored key: SHA-256 over the length-prefixed parts (no
    /// separator a name could contain can make two bindings collide).
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            &self.principal,
            &self.server,
            &self.kind,
            &self.item,
            &self.args_hash,
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// Who may approve, for one approval policy (a stored copy of
/// [`warden_policy::Approvers`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproverRule {
    pub caller: bool,
    pub roles: Vec<String>,
}

impl From<&warden_policy::Approvers> for ApproverRule {
    fn from(a: &warden_policy::Approvers) -> ApproverRule {
        ApproverRule {
            caller: a.caller,
            roles: a.roles.clone(),
        }
    }
}

impl ApproverRule {
    fn policy(&self) -> warden_policy::Approvers {
        warden_policy::Approvers {
            caller: self.caller,
            roles: self.roles.clone(),
        }
    }
}

/// The held call as an approver sees it: enough to decide on the exact
/// operation ("Allow tool use?" is not enough), nothing secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldCall {
    /// The caller's principal key (subject, and tenant where there is one).
    pub principal: String,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub server: String,
    /// `tool`, `prompt` or `resource`.
    pub kind: String,
    pub item: String,
    /// The arguments with secrets redacted (`null`: none).
    pub arguments: serde_json::Value,
    pub args_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<String>,
    /// From the tool's annotations (`readOnlyHint`) or configuration;
    /// `None`: not stated (treat as state-changing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// The data or system the call acts on: configured argument names
    /// (`approvals.targets`) and their values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, String>,
    /// What the call is expected to do: the pinned description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// The guards' sensitive-data findings in the arguments (classes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// The approval policies that hold the call.
    pub rules: Vec<String>,
    /// Facts the approval must carry: `change_ticket`, `reason`.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Who may approve: every rule must admit the approver.
    pub approvers: Vec<ApproverRule>,
    pub correlation_id: String,
}

impl HeldCall {
    /// Whether the caller may approve this call themself (every rule
    /// admits the caller): only then may it be asked in band.
    pub fn caller_may_approve(&self) -> bool {
        self.approvers.iter().all(|a| a.caller)
    }

    /// Whether `approver` (with `roles`) may decide: every rule admits them.
    pub fn admits(&self, approver: &str, roles: &[String]) -> bool {
        self.approvers
            .iter()
            .all(|a| a.policy().admits(&self.principal, approver, roles))
    }

    /// Who may approve, for messages: `the caller`, `a security (not the
    /// caller)`.
    pub fn approvers_text(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for a in &self.approvers {
            let mut who: Vec<String> = Vec::new();
            if a.caller {
                who.push("the caller".into());
            }
            if !a.roles.is_empty() {
                who.push(format!(
                    "a principal with role {} other than the caller",
                    a.roles.join(" or ")
                ));
            }
            parts.push(who.join(" or "));
        }
        parts.dedup();
        parts.join("; and ")
    }
}

/// Where an approval is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for a decision.
    Pending,
    /// Approved, not yet used: the next identical call consumes it.
    Approved,
    Denied,
    /// Approved and used once: spent.
    Consumed,
    /// No decision, or no use, before the expiry.
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Consumed => "consumed",
            Status::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "approved" => Status::Approved,
            "denied" => Status::Denied,
            "consumed" => Status::Consumed,
            "expired" => Status::Expired,
            _ => return None,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One approval request and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Short, unguessable: `apr-` and 12 base32 characters.
    pub id: String,
    pub status: Status,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub expires_at: i64,
    pub call: HeldCall,
    /// [`Binding::key`] of the call.
    #[serde(skip)]
    pub binding: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_ticket: Option<String>,
    /// Decided in the caller's own client (elicitation), not out of band.
    #[serde(default)]
    pub in_band: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed_at: Option<i64>,
}

impl Approval {
    /// How long the decision took from the request (`None`: undecided).
    pub fn decision_wait(&self) -> Option<std::time::Duration> {
        let d = self.decided_at?.checked_sub(self.created_at)?;
        Some(std::time::Duration::from_millis(u64::try_from(d).ok()?))
    }

    /// Whether it is past its expiry at `now` (ms).
    pub fn lapsed(&self, now: i64) -> bool {
        now >= self.expires_at
    }
}

/// A new approval id.
pub(crate) fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let bytes: [u8; 12] = rand::random();
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("apr-{tail}")
}

/// Whether `s` has the shape of an approval id (checked before any lookup).
pub fn is_id(s: &str) -> bool {
    s.len() == 16
        && s.starts_with("apr-")
        && s[4..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(args: &str) -> Binding {
        Binding {
            principal: "alice".into(),
            server: "gh".into(),
            kind: "tool".into(),
            item: "delete_repo".into(),
            args_hash: args.into(),
        }
    }

    #[test]
    fn a_changed_argument_is_another_binding() {
        assert_eq!(binding("sha256:aa").key(), binding("sha256:aa").key());
        assert_ne!(binding("sha256:aa").key(), binding("sha256:ab").key());
        let mut moved = binding("sha256:aa");
        moved.server = "g".into();
        moved.kind = "htool".into();
        assert_ne!(moved.key(), binding("sha256:aa").key());
    }

    #[test]
    fn ids_are_short_unguessable_and_checkable() {
        let a = new_id();
        assert!(is_id(&a), "{a}");
        assert_ne!(a, new_id());
        assert!(!is_id("apr-../../etc"));
        assert!(!is_id("apr-ABCDEFGHJKLM"));
    }
}
