//! [`Principal`]: the authenticated caller every later stage decides for.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// An authenticated caller.
///
/// Cheap to clone (two `Arc`s). Equality and hashing cover the identity
/// ([`PrincipalData`] and the namespace it came from), not the credential
/// ([`Principal::credential`]): a client that refreshes its token is still
/// the same principal.
#[derive(Clone)]
pub struct Principal {
    inner: Arc<PrincipalData>,
    namespace: Option<Arc<str>>,
    credential: Option<Arc<CredentialInfo>>,
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
    /// A JWT access token presented as `Bearer`.
    Bearer,
    /// A DPoP-bound JWT access token with a valid proof.
    Dpop,
    /// A Warden API key.
    ApiKey,
    /// A TLS client certificate.
    Mtls,
}

impl AuthMethod {
    /// Stable lowercase name for logs and audit records.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::Local => "local",
            AuthMethod::Bearer => "bearer",
            AuthMethod::Dpop => "dpop",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Mtls => "mtls",
        }
    }
}

/// What the credential said beyond the identity: which issuer, which token,
/// until when, bound to which key. For audit and for the gateway's session
/// bookkeeping; never part of [`Principal`]'s equality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    /// The token's issuer (`iss`), the API key id, or the certificate's
    /// issuer name.
    pub issuer: String,
    /// `jti` of the token or the API key id, when there is one.
    pub token_id: Option<String>,
    /// `exp` of the token, in seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// `cnf.jkt`: the thumbprint of the key the token is bound to (DPoP).
    pub key_thumbprint: Option<String>,
}

impl Principal {
    pub fn new(data: PrincipalData) -> Self {
        Principal {
            inner: Arc::new(data),
            namespace: None,
            credential: None,
        }
    }

    /// A principal from an authenticated credential. `namespace` keeps
    /// subjects of different origins apart in [`Principal::key`]: the
    /// issuer's name, `api-key` or `mtls`, so that `alice` of one issuer is
    /// never `alice` of another.
    pub fn authenticated(data: PrincipalData, namespace: &str, credential: CredentialInfo) -> Self {
        Principal {
            inner: Arc::new(data),
            namespace: Some(Arc::from(namespace)),
            credential: Some(Arc::new(credential)),
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

    /// Where the subject comes from (issuer name, `api-key`, `mtls`); `None`
    /// for the anonymous and local principals.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The credential this principal was established with, if any.
    pub fn credential(&self) -> Option<&CredentialInfo> {
        self.credential.as_deref()
    }

    /// A stable key for keying per-principal state (sessions, upstreams).
    ///
    /// `tenant/subject`, prefixed by `namespace:` for authenticated
    /// principals; `subject` alone for the anonymous and local principals.
    pub fn key(&self) -> String {
        let base = match &self.inner.tenant {
            Some(t) => format!("{t}/{}", self.inner.subject),
            None => self.inner.subject.clone(),
        };
        match &self.namespace {
            Some(ns) => format!("{ns}:{base}"),
            None => base,
        }
    }
}

impl PartialEq for Principal {
    fn eq(&self, other: &Self) -> bool {
        self.namespace == other.namespace && self.inner == other.inner
    }
}

impl Eq for Principal {}

impl Hash for Principal {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.namespace.hash(state);
        self.inner.hash(state);
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &self.inner.subject)
            .field("tenant", &self.inner.tenant)
            .field("namespace", &self.namespace)
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

    #[test]
    fn keys_distinguish_issuers_and_ignore_the_credential() {
        let data = Principal::local("alice").data().clone();
        let cred = |jti: &str| CredentialInfo {
            issuer: "https://a".into(),
            token_id: Some(jti.into()),
            expires_at: None,
            key_thumbprint: None,
        };
        let a1 = Principal::authenticated(data.clone(), "a", cred("1"));
        let a2 = Principal::authenticated(data.clone(), "a", cred("2"));
        let b = Principal::authenticated(data.clone(), "b", cred("1"));
        assert_eq!(a1, a2);
        assert_eq!(a1.key(), "a:alice");
        assert_ne!(a1, b);
        assert_ne!(a1.key(), b.key());
        assert_ne!(Principal::new(data).key(), a1.key());
    }
}
