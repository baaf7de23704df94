//! Stage 9, Credentials: the client's token never goes upstream; the
//! upstream gets the credential its `credentials:` names, chosen for this
//! caller and this call, attached last before execute:
//!
//! - `static`: the configured `headers` (on the connection), plus the
//!   headers of the caller's principal or tenant when the server scopes
//!   them; a caller that matches no entry is refused, never given another
//!   tenant's secret.
//! - `mint`: a JWT Warden signs for this call ([`warden_credentials::Minter`]):
//!   `aud` the upstream, `sub` the caller, `scope` what the policy requires
//!   of this call, `mcp_call` the method, item and argument hash.
//! - `exchange`: the caller's own bearer token exchanged (RFC 8693) for one
//!   whose audience is the upstream ([`warden_credentials::Exchanger`]),
//!   cached per principal, upstream and scope; the one awaited I/O of this
//!   stage (a cache miss).
//! - `oauth`: the caller's own access token for the upstream, refreshed
//!   from the grant they gave (`warden credentials login`) and cached per
//!   principal and server ([`warden_credentials::UserTokens`]); a caller
//!   without a grant is told how to connect. The registry stage asks for
//!   it first ([`oauth_ready`]): the upstream's own list needs it.
//!
//! The connection's own requests (`initialize`, lists, the GET stream)
//! carry [`connection_auth`]'s credential: the same choice made for the
//! principal the connection belongs to (Warden itself for a shared one).
//! The audit record gets the mode and a hash of the token id, never a
//! token.

use std::sync::Arc;
use std::time::Duration;

use warden_config::{CredentialMode, Isolation, ServerConfig};
use warden_credentials::{
    CallBinding, CredentialError, Egress, Grant, GrantStore, Minter, OAuthClient, Obtained,
    UserTokens,
};
use warden_identity::{AuthMethod, Principal};
use warden_upstream::{AuthSource, UpstreamAuth};

use super::{Exchange, Refusal, Target};
use crate::core::Gateway;
use crate::snapshot::Snapshot;

/// What the audit record and the metrics learn of an upstream credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFacts {
    /// `static` or `mint`.
    pub mode: &'static str,
    /// `sha256:<hex>` of the minted token's `jti`.
    pub token_id_hash: Option<String>,
}

pub(crate) async fn run(gw: &Gateway, ex: &mut Exchange<'_>) -> Result<(), Refusal> {
    let Some(server) = ex.target.server().map(str::to_owned) else {
        if matches!(ex.target, Target::List { .. } | Target::Broadcast { .. }) {
            // The connections a list reaches carry each user's own token:
            // have it before they ask (a user without a grant: that
            // server's part of the list fails, its calls say how to
            // connect).
            for name in &ex.route.servers {
                if let Some(cfg) = ex.snap.server(name) {
                    if matches!(cfg.credentials.mode, CredentialMode::OAuth { .. }) {
                        let _ = user_token(gw, cfg, &ex.principal, false).await;
                    }
                }
            }
        }
        return Ok(());
    };
    let server = server.as_str();
    let Some(cfg) = ex.snap.server(server).cloned() else {
        return Ok(());
    };
    if let CredentialMode::OAuth { .. } = &cfg.credentials.mode {
        let elicit = takes_url_elicitation(&ex.session);
        let obtained = user_token(gw, &cfg, &ex.principal, elicit).await?;
        attach_token(ex, "oauth", &obtained.token, &obtained.token_id);
        gw.metrics.upstream_credential(server, "oauth");
        return Ok(());
    }
    let mode = cfg.credentials.mode.as_str();
    match &cfg.credentials.mode {
        CredentialMode::Static => {
            if cfg.credentials.is_scoped() {
                ex.credential_headers = scoped_headers(&cfg, &ex.principal)?;
            }
            ex.call.note(|f| {
                f.upstream_credential = Some(CredentialFacts {
                    mode,
                    token_id_hash: None,
                })
            });
        }
        CredentialMode::Mint { audience } => {
            let Some(minter) = ex.snap.minter.clone() else {
                return Err(Refusal::NoUpstreamCredential {
                    server: server.to_owned(),
                    how: "Warden has no signing key (credentials:)".into(),
                });
            };
            let (method, name) = match &ex.target {
                Target::Item { upstream_name, .. }
                | Target::CompletePrompt { upstream_name, .. } => {
                    (ex.msg.method(), upstream_name.as_str())
                }
                Target::Resource { uri, .. } | Target::CompleteResource { uri, .. } => {
                    (ex.msg.method(), uri.as_str())
                }
                _ => (ex.msg.method(), ""),
            };
            let scopes = required_scopes(&ex.snap, &ex.principal, &ex.target, method);
            let hash = ex.input_hash();
            let grant = principal_grant(
                Some(&ex.principal),
                audience,
                &scopes,
                Some(CallBinding {
                    method,
                    name,
                    arguments_hash: hash.as_deref(),
                }),
            );
            let minted = minter.mint(&grant.grant()).map_err(|e| {
                tracing::warn!(server = %server, error = %e, "could not mint an upstream token");
                Refusal::NoUpstreamCredential {
                    server: server.to_owned(),
                    how: "Warden could not sign a token for it".into(),
                }
            })?;
            attach_token(ex, mode, &minted.token, &minted.jti);
        }
        CredentialMode::OAuth { .. } => {}
        CredentialMode::Exchange {
            audience,
            token_endpoint,
            client_id,
            client_secret,
        } => {
            let refuse = |how: &str| Refusal::NoUpstreamCredential {
                server: server.to_owned(),
                how: how.to_owned(),
            };
            // Only the access token the caller was authenticated by is
            // exchanged: never an API key sent as a bearer, never another
            // token than the one whose principal was authorized.
            let authenticated_by_it = |t: &warden_credentials::SubjectToken| {
                ex.principal.data().method == AuthMethod::Bearer
                    && t.token_id() == ex.principal.credential().and_then(|c| c.token_id.clone())
            };
            let Some(subject_token) = ex.subject_token.clone().filter(authenticated_by_it) else {
                return Err(refuse(
                    "it takes your own access token in exchange: call Warden over HTTP \
                     with a Bearer access token",
                ));
            };
            let Some(exchanger) = gw.exchanger.clone() else {
                return Err(refuse("Warden has no HTTP client for token exchange"));
            };
            let method = ex.msg.method();
            let scopes = required_scopes(&ex.snap, &ex.principal, &ex.target, method);
            let client = warden_credentials::ExchangeClient {
                token_endpoint: token_endpoint.clone(),
                client_id: client_id.clone(),
                client_secret: client_secret.expose().to_owned(),
            };
            let principal = ex.principal.key();
            let obtained = exchanger
                .token(&warden_credentials::ExchangeRequest {
                    principal: &principal,
                    server,
                    subject_token: &subject_token,
                    audience,
                    scopes: &scopes,
                    client: &client,
                })
                .await
                .map_err(|e| {
                    tracing::warn!(server = %server, error = %e, "token exchange failed");
                    refuse("the token exchange at its authorization server failed")
                })?;
            attach_token(ex, mode, &obtained.token, &obtained.token_id);
        }
    }
    gw.metrics.upstream_credential(server, mode);
    Ok(())
}

/// The credential of an upstream connection's own requests, for the
/// principal it is started for (`None`: a readiness probe, no client). A
/// shared connection belongs to no principal: its token names Warden.
pub(crate) fn connection_auth(
    gw: &Gateway,
    snap: &Snapshot,
    cfg: &ServerConfig,
    principal: Option<&Principal>,
) -> Option<AuthSource> {
    let owner = match cfg.isolation {
        Isolation::Shared => None,
        Isolation::Session | Isolation::Principal => principal,
    };
    match &cfg.credentials.mode {
        CredentialMode::Static if cfg.credentials.is_scoped() => {
            // No entry for this principal: the connection carries none,
            // and every call of it is refused by `run`.
            let headers = owner
                .and_then(|p| scoped_headers(cfg, p).ok())
                .unwrap_or_default();
            Some(AuthSource(Arc::new(Fixed(headers))))
        }
        CredentialMode::Static => None,
        // The connection's own requests carry the owner's latest exchanged
        // token, once a call of it obtained one (none before: the subject
        // token belongs to a request, not to the connection).
        CredentialMode::Exchange { .. } => Some(AuthSource(Arc::new(LatestExchanged {
            exchanger: gw.exchanger.clone()?,
            principal: owner?.key(),
            server: cfg.name.clone(),
        }))),
        CredentialMode::OAuth { .. } => Some(AuthSource(Arc::new(LatestUserToken {
            users: gw.oauth.clone()?,
            principal: owner?.key(),
            server: cfg.name.clone(),
        }))),
        CredentialMode::Mint { audience } => {
            let minter = snap.minter.clone()?;
            let owner = owner.filter(|p| p.data().method != AuthMethod::Anonymous);
            Some(AuthSource(Arc::new(MintPerRequest {
                minter,
                grant: principal_grant(owner, audience, &[], None),
            })))
        }
    }
}

/// The headers of the caller's principal entry, else its tenant's.
fn scoped_headers(
    cfg: &ServerConfig,
    principal: &Principal,
) -> Result<Vec<(String, String)>, Refusal> {
    let key = principal.key();
    let tenant = principal.data().tenant.as_deref();
    let entry = cfg
        .credentials
        .principals
        .iter()
        .find(|(who, _)| *who == key)
        .or_else(|| tenant.and_then(|t| cfg.credentials.tenants.iter().find(|(who, _)| who == t)));
    match entry {
        Some((_, headers)) => Ok(headers
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_owned()))
            .collect()),
        None => Err(Refusal::NoUpstreamCredential {
            server: cfg.name.clone(),
            how: "no credential is configured for your tenant or principal \
                  (servers.<name>.credentials.tenants / principals)"
                .into(),
        }),
    }
}

/// The scopes the policy requires of this call (the token's `scope`).
fn required_scopes(
    snap: &Snapshot,
    principal: &Principal,
    target: &Target,
    method: &str,
) -> Vec<String> {
    use warden_policy::{Action, ItemKind};
    let Some(engine) = snap.policy.as_ref() else {
        return Vec::new();
    };
    let (action, server, item) = match target {
        Target::Item {
            server,
            upstream_name,
            ..
        } if method == "prompts/get" => (Action::GetPrompt, server, upstream_name),
        Target::Item {
            server,
            upstream_name,
            ..
        } => (Action::CallTool, server, upstream_name),
        Target::Resource { server, uri } if method == "resources/read" => {
            (Action::ReadResource, server, uri)
        }
        Target::Resource { server, uri } => (Action::Subscribe, server, uri),
        Target::CompletePrompt {
            server,
            upstream_name,
            ..
        } => (Action::Discover(ItemKind::Prompt), server, upstream_name),
        Target::CompleteResource { server, uri } => {
            (Action::Discover(ItemKind::Resource), server, uri)
        }
        _ => return Vec::new(),
    };
    engine.required_scopes(&super::authorize::request(principal, action, server, item))
}

/// The call's bearer token, and for the record its mode and id's hash.
fn attach_token(ex: &mut Exchange<'_>, mode: &'static str, token: &str, token_id: &str) {
    ex.credential_headers = vec![bearer(token)];
    let token_id_hash = warden_audit::TokenFacts::hash_jti(token_id);
    ex.call.note(|f| {
        f.upstream_credential = Some(CredentialFacts {
            mode,
            token_id_hash: Some(token_id_hash),
        })
    });
}

fn bearer(token: &str) -> (String, String) {
    ("authorization".to_owned(), format!("Bearer {token}"))
}

/// The owned parts of a [`Grant`], kept by a connection.
#[derive(Clone)]
struct OwnedGrant {
    subject: Option<String>,
    tenant: Option<String>,
    client_id: Option<String>,
    agent_id: Option<String>,
    audience: String,
    scopes: Vec<String>,
    call: Option<(String, String, Option<String>)>,
}

impl OwnedGrant {
    fn grant(&self) -> Grant<'_> {
        Grant {
            subject: self.subject.as_deref(),
            tenant: self.tenant.as_deref(),
            client_id: self.client_id.as_deref(),
            agent_id: self.agent_id.as_deref(),
            audience: &self.audience,
            scopes: &self.scopes,
            call: self.call.as_ref().map(|(m, n, h)| CallBinding {
                method: m,
                name: n,
                arguments_hash: h.as_deref(),
            }),
        }
    }
}

fn principal_grant(
    principal: Option<&Principal>,
    audience: &str,
    scopes: &[String],
    call: Option<CallBinding<'_>>,
) -> OwnedGrant {
    let data = principal.map(Principal::data);
    OwnedGrant {
        subject: principal.map(Principal::key),
        tenant: data.and_then(|d| d.tenant.clone()),
        client_id: data.and_then(|d| d.client_id.clone()),
        agent_id: data.and_then(|d| d.agent_id.clone()),
        audience: audience.to_owned(),
        scopes: scopes.to_vec(),
        call: call.map(|c| {
            (
                c.method.to_owned(),
                c.name.to_owned(),
                c.arguments_hash.map(str::to_owned),
            )
        }),
    }
}

/// Headers chosen once, for a connection of one principal.
struct Fixed(Vec<(String, String)>);

impl UpstreamAuth for Fixed {
    fn headers(&self) -> Result<Vec<(String, String)>, String> {
        Ok(self.0.clone())
    }
}

/// The owner's latest exchanged token for this upstream, if still valid.
struct LatestExchanged {
    exchanger: Arc<warden_credentials::Exchanger>,
    principal: String,
    server: String,
}

impl UpstreamAuth for LatestExchanged {
    fn headers(&self) -> Result<Vec<(String, String)>, String> {
        Ok(self
            .exchanger
            .latest(&self.principal, &self.server)
            .map(|t| vec![bearer(&t)])
            .unwrap_or_default())
    }
}

/// A fresh token for each request of a connection.
struct MintPerRequest {
    minter: Arc<Minter>,
    grant: OwnedGrant,
}

impl UpstreamAuth for MintPerRequest {
    fn headers(&self) -> Result<Vec<(String, String)>, String> {
        let minted = self
            .minter
            .mint(&self.grant.grant())
            .map_err(|e| e.to_string())?;
        Ok(vec![bearer(&minted.token)])
    }
}

/// Users' OAuth tokens (`mode: oauth`), and the egress-guarded clients
/// that refresh them.
pub struct OAuthUsers {
    tokens: UserTokens,
    strict: Option<Egress>,
    private: Option<Egress>,
    /// Logins started through the API, by `state`.
    pending: std::sync::Mutex<std::collections::HashMap<String, PendingLogin>>,
}

/// A login started through the API (`POST /credentials/{server}/login`),
/// waiting for its redirect.
struct PendingLogin {
    principal: String,
    server: String,
    authorization: warden_credentials::oauth::Authorization,
    egress: Egress,
    started: std::time::Instant,
}

/// Where the authorization server sends a browser back to Warden (on
/// `identity.public_url`).
pub(crate) const CALLBACK_PATH: &str = "/credentials/callback";

/// How long a started login waits for its redirect.
pub(crate) const LOGIN_EXPIRES: Duration = Duration::from_secs(600);
/// Most logins waiting at once (beyond, the oldest are dropped).
const MAX_PENDING: usize = 1024;

impl OAuthUsers {
    /// From `credentials.grant_store` (`None`: not configured, or the store
    /// cannot be opened: logged, and `mode: oauth` calls are refused).
    #[must_use]
    pub fn from_config(config: &warden_config::Config) -> Option<Arc<OAuthUsers>> {
        let settings = config.grant_store.as_ref()?;
        let store = GrantStore::open(&settings.path, settings.key.expose())
            .map_err(|e| tracing::error!(error = %e, "the OAuth grant store cannot be opened"))
            .ok()?;
        Some(Arc::new(OAuthUsers {
            tokens: UserTokens::new(store),
            strict: oauth_egress(false).ok(),
            private: oauth_egress(true).ok(),
            pending: std::sync::Mutex::new(std::collections::HashMap::new()),
        }))
    }

    fn egress(&self, allow_private_network: bool) -> Option<&Egress> {
        if allow_private_network {
            self.private.as_ref()
        } else {
            self.strict.as_ref()
        }
    }

    fn pending(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, PendingLogin>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts `principal`'s login at `cfg` (an `oauth` server): discovery,
    /// then the authorization URL to open; the redirect comes back to
    /// `redirect_uri` ([`OAuthUsers::finish_login`]).
    pub(crate) async fn start_login(
        &self,
        cfg: &ServerConfig,
        principal: &str,
        redirect_uri: &str,
    ) -> Result<String, CredentialError> {
        let (
            CredentialMode::OAuth {
                client_id,
                client_secret,
                scopes,
                allow_private_network,
            },
            warden_config::Transport::StreamableHttp { url, .. },
        ) = (&cfg.credentials.mode, &cfg.transport)
        else {
            return Err(CredentialError::Invalid("not an oauth server"));
        };
        let egress = self
            .egress(*allow_private_network)
            .ok_or(CredentialError::Invalid("no HTTP client"))?
            .clone();
        let discovered = warden_credentials::oauth::discover(&egress, url).await?;
        let client = OAuthClient {
            client_id: client_id.clone(),
            client_secret: client_secret.as_ref().map(|s| s.expose().to_owned()),
        };
        let authorization = warden_credentials::oauth::Authorization::start(
            &discovered,
            &client,
            redirect_uri,
            scopes,
        )?;
        let url = authorization.url.clone();
        let mut pending = self.pending();
        pending.retain(|_, p| p.started.elapsed() < LOGIN_EXPIRES);
        if pending.len() >= MAX_PENDING {
            if let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| k.clone())
            {
                pending.remove(&oldest);
            }
        }
        pending.insert(
            authorization.state.clone(),
            PendingLogin {
                principal: principal.to_owned(),
                server: cfg.name.clone(),
                authorization,
                egress,
                started: std::time::Instant::now(),
            },
        );
        Ok(url)
    }

    /// Who started the login waiting for `state`, and at which server,
    /// without using it up: what the confirmation page names.
    pub(crate) fn waiting_login(&self, state: &str) -> Option<(String, String)> {
        self.pending()
            .get(state)
            .filter(|p| p.started.elapsed() < LOGIN_EXPIRES)
            .map(|p| (p.principal.clone(), p.server.clone()))
    }

    /// Completes the login whose `state` the redirect carries: the code
    /// redeemed, the grant stored for the principal that started it.
    /// Returns the server's name.
    pub(crate) async fn finish_login(
        &self,
        state: &str,
        code: &str,
    ) -> Result<String, CredentialError> {
        let login = self
            .pending()
            .remove(state)
            .filter(|p| p.started.elapsed() < LOGIN_EXPIRES)
            .ok_or(CredentialError::Invalid(
                "no login is waiting for this redirect (expired or already used)",
            ))?;
        let grant = login
            .authorization
            .redeem(&login.egress, state, code)
            .await?;
        self.tokens
            .connect(&login.principal, &login.server, &grant)?;
        Ok(login.server)
    }

    /// Forgets `principal`'s grant at `server`.
    pub(crate) fn forget(&self, principal: &str, server: &str) -> Result<bool, CredentialError> {
        self.tokens.forget(principal, server)
    }
}

/// The HTTP client and URL check of OAuth discovery and token requests:
/// the identity crate's egress guard (T10), since every URL after the
/// upstream's own comes from the upstream or its metadata.
pub fn oauth_egress(allow_private_network: bool) -> Result<Egress, String> {
    let mut policy = warden_identity::EgressPolicy::strict();
    if allow_private_network {
        policy = policy.with_loopback(true).with_private_networks(true);
    }
    let client = warden_identity::EgressClient::new(policy, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    Ok(Egress {
        http: client.http(),
        check: Arc::new(move |u| client.check(u)),
    })
}

/// Before the registry stage fetches an `oauth` upstream's live list for
/// this caller: the caller's token, so the connection carries it (or the
/// refusal that tells them how to connect).
pub(crate) async fn oauth_ready(
    gw: &Gateway,
    ex: &Exchange<'_>,
    server: &str,
) -> Result<(), Refusal> {
    match ex.snap.server(server) {
        Some(cfg) if matches!(cfg.credentials.mode, CredentialMode::OAuth { .. }) => {
            user_token(gw, cfg, &ex.principal, takes_url_elicitation(&ex.session))
                .await
                .map(drop)
        }
        _ => Ok(()),
    }
}

/// The caller's own token for an `oauth` upstream.
async fn user_token(
    gw: &Gateway,
    cfg: &ServerConfig,
    principal: &Principal,
    elicit: bool,
) -> Result<Obtained, Refusal> {
    let refuse = |how: String| Refusal::NoUpstreamCredential {
        server: cfg.name.clone(),
        how,
    };
    let CredentialMode::OAuth {
        client_id,
        client_secret,
        allow_private_network,
        ..
    } = &cfg.credentials.mode
    else {
        return Err(refuse("it is not an oauth server".into()));
    };
    if principal.data().method == AuthMethod::Anonymous {
        return Err(refuse(
            "it acts as each user with their own account: authenticate to Warden first".into(),
        ));
    }
    let Some(users) = gw.oauth.as_ref() else {
        return Err(refuse(
            "Warden's grant store is not open (credentials.grant_store)".into(),
        ));
    };
    let Some(egress) = users.egress(*allow_private_network) else {
        return Err(refuse("Warden has no HTTP client for it".into()));
    };
    let key = principal.key();
    let client = OAuthClient {
        client_id: client_id.clone(),
        client_secret: client_secret.as_ref().map(|s| s.expose().to_owned()),
    };
    match users.tokens.token(&key, &cfg.name, &client, egress).await {
        Ok(obtained) => Ok(obtained),
        Err(CredentialError::NoGrant | CredentialError::GrantRevoked) => {
            let how = format!(
                "connect your account to it first, then retry: POST /credentials/{0}/login \
                 on Warden as yourself and open the authorization_url it returns, or on \
                 Warden's host: warden credentials login --server {0} --principal '{key}'",
                cfg.name
            );
            // A client that takes URL-mode elicitation is handed the
            // authorization URL itself (the redirect comes back to Warden).
            if let (true, Some(auth)) = (elicit, gw.authenticator()) {
                match users
                    .start_login(cfg, &key, &auth.resource_url(CALLBACK_PATH))
                    .await
                {
                    Ok(url) => {
                        return Err(Refusal::ConnectRequired {
                            server: cfg.name.clone(),
                            how,
                            elicitation_id: format!("{:032x}", rand::random::<u128>()),
                            url,
                        })
                    }
                    Err(e) => {
                        tracing::warn!(server = %cfg.name, error = %e, "could not start a user's OAuth login");
                    }
                }
            }
            Err(refuse(how))
        }
        Err(other) => {
            tracing::warn!(server = %cfg.name, error = %other, "could not renew a user's upstream token");
            Err(refuse(
                "its authorization server did not renew your token; retry later".into(),
            ))
        }
    }
}

/// Whether the session's client declared URL-mode elicitation
/// (`capabilities.elicitation.url`).
fn takes_url_elicitation(session: &crate::session::Session) -> bool {
    session.caps.elicitation_url
}

/// The owner's cached token for an `oauth` upstream (fetched by the
/// registry or credentials stage before the connection needs it).
struct LatestUserToken {
    users: Arc<OAuthUsers>,
    principal: String,
    server: String,
}

impl UpstreamAuth for LatestUserToken {
    fn headers(&self) -> Result<Vec<(String, String)>, String> {
        Ok(self
            .users
            .tokens
            .latest(&self.principal, &self.server)
            .map(|t| vec![bearer(&t)])
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// An "upstream" on loopback that answers every request with a 401
    /// whose `resource_metadata` is `metadata`; counts the requests.
    async fn challenging_upstream(
        metadata: &'static str,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer resource_metadata=\"{metadata}\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            }
        });
        (url, seen)
    }

    /// T10: discovery URLs come from the upstream; the cloud metadata
    /// address (link-local, in any spelling) is never fetched, even with
    /// `allow_private_network`.
    #[tokio::test]
    async fn discovery_never_follows_an_upstream_to_link_local_addresses() {
        for metadata in [
            "http://169.254.169.254/latest/meta-data",
            "http://0xa9fea9fe/latest/meta-data",
            "http://[::ffff:169.254.169.254]/latest",
        ] {
            let (url, seen) = challenging_upstream(metadata).await;
            let egress = oauth_egress(true).unwrap();
            let err = warden_credentials::oauth::discover(&egress, &url)
                .await
                .expect_err("a link-local metadata URL was fetched");
            assert!(
                err.to_string().contains("protected resource metadata"),
                "{metadata}: {err}"
            );
            assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
        }
    }

    /// Without `allow_private_network`, an upstream on loopback is not even
    /// probed.
    #[tokio::test]
    async fn a_strict_egress_refuses_a_loopback_upstream() {
        let (url, seen) = challenging_upstream("http://127.0.0.1:1/m").await;
        let egress = oauth_egress(false).unwrap();
        assert!(warden_credentials::oauth::discover(&egress, &url)
            .await
            .is_err());
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}
