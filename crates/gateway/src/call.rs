//! One client request on its way through the pipeline: the correlation id
//! and the facts each stage learns, which become the request's audit record
//! (stage 12).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Instant;

use warden_audit::{Decision, Event, EventKind, OutputFacts, PrincipalFacts, RiskTier, TokenFacts};
use warden_identity::Principal;

use crate::session::lock;

tokio::task_local! {
    /// The network peer of a connection, set by the HTTP listener around
    /// each connection. Read only by the transports, which hand it to the
    /// pipeline in [`crate::pipeline::Inbound`].
    pub static CLIENT_ADDR: Option<std::net::SocketAddr>;
}

tokio::task_local! {
    /// The bearer access token of the current HTTP request, set by the
    /// listener's middleware. Read only by the transports, which hand it
    /// to the pipeline in [`crate::pipeline::Inbound`] for token exchange
    /// (`credentials: {mode: exchange}`); never logged, never forwarded.
    pub static SUBJECT_TOKEN: Option<warden_credentials::SubjectToken>;
}

/// The bearer token the current request carries (see [`SUBJECT_TOKEN`]).
pub fn subject_token() -> Option<warden_credentials::SubjectToken> {
    SUBJECT_TOKEN.try_with(Clone::clone).ok().flatten()
}

/// The peer address of the current request, where the transport knows it.
pub fn client_addr() -> Option<std::net::SocketAddr> {
    CLIENT_ADDR.try_with(|a| *a).ok().flatten()
}

/// A request's pipeline, polled by the transport's handler that serves
/// it (no task per call). When the handler is dropped before the pipeline
/// ends (an HTTP client closed its connection mid-call, and the server
/// dropped the handler), the rest of the pipeline runs in a task of its
/// own: the call still comes to its outcome and its audit record.
pub(crate) struct Finishing<T: Send + 'static> {
    work: Option<Pin<Box<dyn Future<Output = T> + Send>>>,
}

impl<T: Send + 'static> Finishing<T> {
    pub(crate) fn new(work: impl Future<Output = T> + Send + 'static) -> Self {
        Finishing {
            work: Some(Box::pin(work)),
        }
    }
}

impl<T: Send + 'static> Future for Finishing<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // Polled again after its end (nothing here does): never ready.
        let Some(work) = self.work.as_mut() else {
            return Poll::Pending;
        };
        let out = std::task::ready!(work.as_mut().poll(cx));
        self.work = None;
        Poll::Ready(out)
    }
}

impl<T: Send + 'static> Drop for Finishing<T> {
    fn drop(&mut self) {
        if let Some(work) = self.work.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = work.await;
                });
            }
        }
    }
}

/// The request being served.
pub struct Call {
    /// Joins the client's error, the log and the audit record.
    pub corr: String,
    pub started: Instant,
    /// The client's address (read when the request starts).
    pub client_addr: Option<std::net::SocketAddr>,
    facts: Mutex<Facts>,
}

/// What the stages learned. Never holds argument values or result text:
/// only hashes, names, classes and counts.
#[derive(Debug, Default)]
pub struct Facts {
    pub action: Option<&'static str>,
    pub server: Option<String>,
    /// The upstream's tool or prompt name, or the resource URI.
    pub item: Option<String>,
    pub manifest_hash: Option<String>,
    pub risk_tier: Option<warden_policy::RiskTier>,
    pub decision: Option<Decision>,
    pub policy_ids: Vec<String>,
    pub reason_code: Option<String>,
    /// Set when the credential lacks scopes: every scope the operation
    /// needs (the HTTP transport answers 403 `insufficient_scope`).
    pub required_scopes: Option<Vec<String>>,
    pub input_hash: Option<String>,
    /// Arguments as recorded by the audit settings (redacted), if any.
    pub arguments: Option<serde_json::Value>,
    pub output: Option<OutputFacts>,
    /// The credential the credentials stage attached (mode, token id hash).
    pub upstream_credential: Option<crate::pipeline::credentials::CredentialFacts>,
    /// The approval that let a held call go on, or that it waits for.
    pub approval: Option<warden_audit::ApprovalFacts>,
}

impl Call {
    pub fn new(corr: String, client_addr: Option<std::net::SocketAddr>) -> Call {
        Call {
            corr,
            started: Instant::now(),
            client_addr,
            facts: Mutex::new(Facts::default()),
        }
    }

    /// The facts so far, leaving none behind.
    pub fn take_facts(&self) -> Facts {
        std::mem::take(&mut *lock(&self.facts))
    }

    /// Updates the facts (never held across an await).
    pub fn note(&self, f: impl FnOnce(&mut Facts)) {
        f(&mut lock(&self.facts));
    }

    /// The arguments' canonical hash, when the route computed it.
    pub fn input_hash(&self) -> Option<String> {
        lock(&self.facts).input_hash.clone()
    }

    pub fn required_scopes(&self) -> Option<Vec<String>> {
        lock(&self.facts).required_scopes.clone()
    }

    /// Whether a stage refused the request (policy, registry, guards).
    pub fn was_refused(&self) -> bool {
        matches!(
            lock(&self.facts).decision,
            Some(Decision::Deny | Decision::Hold)
        )
    }

    /// (server, item, decision, reason) for the per-call metrics.
    pub fn metric_labels(&self) -> Option<(String, String, &'static str, Option<String>)> {
        let f = lock(&self.facts);
        let server = f.server.clone()?;
        let item = f.item.clone()?;
        let decision = match f.decision {
            Some(Decision::Allow) | None => "allow",
            Some(Decision::Deny) => "deny",
            Some(Decision::Hold) => "hold",
        };
        let reason = match f.decision {
            Some(Decision::Deny | Decision::Hold) => f.reason_code.clone(),
            _ => None,
        };
        Some((server, item, decision, reason))
    }

    pub fn risk_tier(&self) -> Option<RiskTier> {
        lock(&self.facts).risk_tier.map(audit_tier)
    }

    /// The audit record of this request.
    pub fn event(
        &self,
        session: &str,
        principal: &Principal,
        method: &str,
        outcome: &str,
    ) -> Event {
        let f = std::mem::take(&mut *lock(&self.facts));
        let canonical_tool_id = match (&f.server, &f.item, &f.manifest_hash) {
            (Some(s), Some(i), Some(h)) => Some(format!("{s}/{i}@{h}")),
            _ => None,
        };
        Event {
            correlation_id: Some(self.corr.clone()),
            session: Some(session.to_owned()),
            client_addr: self.client_addr.map(|a| a.ip().to_string()),
            principal: Some(principal_facts(principal)),
            token: token_facts(principal),
            upstream_credential: f.upstream_credential.map(|c| {
                warden_audit::UpstreamCredentialFacts {
                    mode: c.mode.to_owned(),
                    token_id_hash: c.token_id_hash,
                }
            }),
            server: f.server,
            tool: f.item,
            canonical_tool_id,
            manifest_hash: f.manifest_hash,
            action: Some(f.action.unwrap_or(method).to_owned()),
            risk_tier: f.risk_tier.map(audit_tier),
            decision: f.decision,
            policy_ids: f.policy_ids,
            reason_code: f.reason_code,
            scopes: principal.data().scopes.clone(),
            input_hash: f.input_hash,
            arguments: f.arguments,
            output: f.output,
            approval: f.approval,
            latency_us: Some(self.started.elapsed().as_micros() as u64),
            upstream_status: Some(outcome.to_owned()),
            ..Event::new(EventKind::Call)
        }
    }
}

pub fn audit_tier(t: warden_policy::RiskTier) -> RiskTier {
    match t {
        warden_policy::RiskTier::Low => RiskTier::Low,
        warden_policy::RiskTier::Medium => RiskTier::Medium,
        warden_policy::RiskTier::High => RiskTier::High,
        warden_policy::RiskTier::Critical => RiskTier::Critical,
    }
}

pub fn principal_facts(p: &Principal) -> PrincipalFacts {
    let d = p.data();
    PrincipalFacts {
        subject: d.subject.clone(),
        tenant: d.tenant.clone(),
        client_id: d.client_id.clone(),
        agent_id: d.agent_id.clone(),
        roles: d.roles.clone(),
    }
}

/// Facts about the credential: its kind, issuer and a hash of its id —
/// never the token.
pub fn token_facts(p: &Principal) -> Option<TokenFacts> {
    let c = p.credential();
    Some(TokenFacts {
        kind: Some(p.data().method.as_str().to_owned()),
        issuer: c.map(|c| c.issuer.clone()),
        audience: Vec::new(),
        jti_hash: c
            .and_then(|c| c.token_id.as_deref())
            .map(TokenFacts::hash_jti),
        key_id: None,
    })
}
