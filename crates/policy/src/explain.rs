//! [`Explanation`]: what `warden policy explain` prints.

use std::fmt;

use crate::catalog::RiskTier;
use crate::decision::Decision;
use crate::engine::PolicyOrigin;

/// A decision with the facts it was made over and every policy's outcome.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub decision: Decision,
    /// Why the request was refused before policies ran (bad arguments,
    /// unknown server), when it was.
    pub detail: Option<String>,
    /// The request as Cedar saw it; `None` when refused before that.
    pub facts: Option<RequestFacts>,
    /// Every policy in force, in compiled order, with its outcome. Empty
    /// when the request never reached Cedar.
    pub policies: Vec<PolicyTrace>,
}

/// The resolved request.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    /// `Warden::User::"…"`.
    pub principal: String,
    pub action: &'static str,
    pub resource: String,
    pub risk: RiskTier,
    pub data_class: Option<String>,
    pub tenants: Vec<String>,
    pub environment: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PolicyTrace {
    pub id: String,
    /// `permit` or `forbid`.
    pub effect: &'static str,
    pub origin: PolicyOrigin,
    /// An approval rule: when it applies, an allowed call is held.
    pub requires_approval: bool,
    pub outcome: Outcome,
    /// The policy's Cedar text.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Scope and conditions hold for this request.
    Satisfied,
    NotSatisfied,
    /// Evaluation failed (a permit then does not apply; a forbid counts as
    /// applying).
    Error(String),
}

impl Explanation {
    /// The policies whose conditions held.
    pub fn satisfied(&self) -> impl Iterator<Item = &PolicyTrace> {
        self.policies
            .iter()
            .filter(|p| p.outcome == Outcome::Satisfied)
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.decision;
        write!(f, "decision: {}", d.kind())?;
        if !d.is_allow() {
            write!(f, " ({})", d.reason())?;
        }
        writeln!(f)?;
        if let Decision::RequiresApproval { requires, .. } = d {
            if !requires.is_empty() {
                let r: Vec<&str> = requires.iter().map(|f| f.as_str()).collect();
                writeln!(f, "approval must carry: {}", r.join(", "))?;
            }
        }
        if !d.policies().is_empty() {
            writeln!(f, "decided by: {}", d.policies().join(", "))?;
        }
        if let Some(detail) = &self.detail {
            writeln!(f, "detail: {detail}")?;
        }
        if let Some(x) = &self.facts {
            writeln!(f, "principal: {}", x.principal)?;
            writeln!(f, "action: {}", x.action)?;
            writeln!(f, "resource: {}", x.resource)?;
            write!(f, "risk: {}", x.risk)?;
            if let Some(c) = &x.data_class {
                write!(f, ", data class: {c}")?;
            }
            if !x.tenants.is_empty() {
                write!(f, ", tenants: {}", x.tenants.join(", "))?;
            }
            if let Some(e) = &x.environment {
                write!(f, ", environment: {e}")?;
            }
            writeln!(f)?;
        }
        if !self.policies.is_empty() {
            writeln!(f, "policies:")?;
            for p in &self.policies {
                let mark = match &p.outcome {
                    Outcome::Satisfied => "applies",
                    Outcome::NotSatisfied => "-",
                    Outcome::Error(_) => "error",
                };
                let approval = if p.requires_approval {
                    " (approval rule)"
                } else {
                    ""
                };
                writeln!(
                    f,
                    "  [{mark}] {} {}{approval}  — {}",
                    p.effect, p.id, p.origin
                )?;
                if let Outcome::Error(e) = &p.outcome {
                    writeln!(f, "      {e}")?;
                }
            }
        }
        Ok(())
    }
}
