//! Identity: who is calling. Every request is resolved to a [`Principal`]
//! before any other stage runs; sessions and upstream isolation are keyed by
//! it.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

/// An authenticated caller.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    inner: Arc<PrincipalData>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrincipalData {
    /// The subject: a user, a service or the local OS user.
    pub subject: String,
    pub tenant: Option<String>,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub scopes: Vec<String>,
    pub client_id: Option<String>,
    pub agent_id: Option<String>,
    /// How the principal was established.
    pub method: AuthMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// No authentication configured: every caller is the same anonymous principal.
    Anonymous,
    /// The local user of a stdio session, from configuration.
    Local,
}

impl Principal {
    pub fn new(data: PrincipalData) -> Self {
        Principal {
            inner: Arc::new(data),
        }
    }

    /// The single principal of a deployment without authentication.
    pub fn anonymous() -> Self {
        Self::with_subject("anonymous", AuthMethod::Anonymous)
    }

    /// The local user of `warden stdio`.
    pub fn local(subject: &str) -> Self {
        Self::with_subject(subject, AuthMethod::Local)
    }

    fn with_subject(subject: &str, method: AuthMethod) -> Self {
        Principal::new(PrincipalData {
            subject: subject.to_owned(),
            tenant: None,
            roles: Vec::new(),
            groups: Vec::new(),
            scopes: Vec::new(),
            client_id: None,
            agent_id: None,
            method,
        })
    }

    pub fn data(&self) -> &PrincipalData {
        &self.inner
    }

    pub fn subject(&self) -> &str {
        &self.inner.subject
    }

    /// A stable key for keying per-principal state (sessions, upstreams).
    pub fn key(&self) -> String {
        match &self.inner.tenant {
            Some(t) => format!("{t}/{}", self.inner.subject),
            None => self.inner.subject.clone(),
        }
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &self.inner.subject)
            .field("tenant", &self.inner.tenant)
            .field("method", &self.inner.method)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_distinguish_tenants() {
        let mut a = Principal::local("alice").data().clone();
        a.tenant = Some("t1".into());
        let mut b = a.clone();
        b.tenant = Some("t2".into());
        assert_ne!(Principal::new(a).key(), Principal::new(b).key());
        assert_eq!(Principal::anonymous(), Principal::anonymous());
    }
}
