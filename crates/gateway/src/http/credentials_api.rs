//! Users' own OAuth grants at `mode: oauth` servers, self-service on the
//! MCP listener (what `warden credentials login` does on Warden's host):
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | `/credentials/{server}/login` | starts the caller's login: `{"authorization_url": …, "expires_in": 600}` |
//! | GET | `/credentials/callback?state=…&code=…` | the authorization server's redirect: the code redeemed, the grant stored for the caller who started the login |
//! | DELETE | `/credentials/{server}` | forgets the caller's grant |
//!
//! `login` and `DELETE` are authenticated like an MCP request; the
//! callback is a browser's redirect, bound to its login by the `state`
//! (random, single use, 10 minutes), and the code to Warden by PKCE. The
//! redirect URI is `identity.public_url` + `/credentials/callback`: it must
//! be registered with Warden's client at the authorization server.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;
use warden_config::CredentialMode;
use warden_identity::{AuthMethod, Principal};

use super::{authenticate, check_origin_and_host, http_error, json_response, HttpState};
pub(super) use crate::pipeline::credentials::CALLBACK_PATH;
use crate::pipeline::credentials::LOGIN_EXPIRES;

#[derive(Debug, Deserialize)]
pub(super) struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// The authenticated caller (a grant is per user: never anonymous).
async fn caller(s: &HttpState, method: &str, headers: &HeaderMap) -> Result<Principal, Response> {
    check_origin_and_host(s, headers).map_err(axum::response::IntoResponse::into_response)?;
    let p = authenticate(s, method, "/mcp", headers).await?;
    if p.data().method == AuthMethod::Anonymous {
        return Err(http_error(
            StatusCode::FORBIDDEN,
            "Forbidden: a grant is kept per user: authenticate to Warden (identity:)",
        ));
    }
    Ok(p)
}

/// The `oauth` server named `server`.
fn oauth_server(
    s: &HttpState,
    server: &str,
) -> Option<std::sync::Arc<warden_config::ServerConfig>> {
    s.gateway
        .snapshot()
        .server(server)
        .filter(|c| matches!(c.credentials.mode, CredentialMode::OAuth { .. }))
        .cloned()
}

fn not_oauth() -> Response {
    http_error(
        StatusCode::NOT_FOUND,
        "Not Found: no oauth server by that name",
    )
}

fn no_store() -> Response {
    http_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Service Unavailable: no grant store is open (credentials.grant_store)",
    )
}

pub(super) async fn login(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(server): Path<String>,
) -> Response {
    let p = match caller(&s, "POST", &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(cfg) = oauth_server(&s, &server) else {
        return not_oauth();
    };
    let (Some(users), Some(auth)) = (s.gateway.oauth.clone(), s.gateway.authenticator()) else {
        return no_store();
    };
    let redirect_uri = auth.resource_url(CALLBACK_PATH);
    match users.start_login(&cfg, &p.key(), &redirect_uri).await {
        Ok(url) => json_response(
            StatusCode::OK,
            serde_json::json!({
                "authorization_url": url,
                "expires_in": LOGIN_EXPIRES.as_secs(),
            })
            .to_string(),
        ),
        Err(e) => {
            tracing::warn!(server = %server, error = %e, "credentials API: OAuth discovery failed");
            http_error(
                StatusCode::BAD_GATEWAY,
                "Bad Gateway: the server's OAuth authorization server could not be discovered",
            )
        }
    }
}

pub(super) async fn callback(
    State(s): State<HttpState>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(users) = s.gateway.oauth.clone() else {
        return no_store();
    };
    if q.error.is_some() {
        // The login stays unusable: its state is dropped with the others
        // when it expires.
        return http_error(
            StatusCode::BAD_REQUEST,
            "Bad Request: the authorization server refused the authorization",
        );
    }
    let (Some(state), Some(code)) = (q.state, q.code) else {
        return http_error(StatusCode::BAD_REQUEST, "Bad Request: no state and code");
    };
    match users.finish_login(&state, &code).await {
        Ok(server) => (
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            format!("Connected to {server}. You can close this window.\n"),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "credentials API: a login could not be completed");
            http_error(
                StatusCode::BAD_REQUEST,
                "Bad Request: this login could not be completed (expired, used, or refused)",
            )
        }
    }
}

pub(super) async fn logout(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(server): Path<String>,
) -> Response {
    let p = match caller(&s, "DELETE", &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if oauth_server(&s, &server).is_none() {
        return not_oauth();
    }
    let Some(users) = s.gateway.oauth.clone() else {
        return no_store();
    };
    match users.forget(&p.key(), &server) {
        Ok(removed) => json_response(
            StatusCode::OK,
            serde_json::json!({ "removed": removed }).to_string(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "credentials API: the grant store failed");
            http_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable: the grant store failed",
            )
        }
    }
}
