//! Users' own OAuth grants at `mode: oauth` servers, self-service on the
//! MCP listener (what `warden credentials login` does on Warden's host):
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | `/credentials/{server}/login` | starts the caller's login: `{"authorization_url": …, "expires_in": 600}` |
//! | GET | `/credentials/callback?state=…&code=…` | the authorization server's redirect: a page naming the Warden user the login was started for, asking to confirm; nothing redeemed yet |
//! | POST | `/credentials/callback` (form: `state`, `code`) | the confirmation: the code redeemed, the grant stored for the caller who started the login |
//! | DELETE | `/credentials/{server}` | forgets the caller's grant |
//!
//! `login` and `DELETE` are authenticated like an MCP request; the
//! callback is a browser's redirect, bound to its login by the `state`
//! (random, single use, 10 minutes), and the code to Warden by PKCE. The
//! redirect URI is `identity.public_url` + `/credentials/callback`: it must
//! be registered with Warden's client at the authorization server.
//!
//! Why a confirmation: whoever completes the authorization connects *their*
//! account at the server, and the grant goes to whoever *started* the
//! login. A started login's URL forwarded to someone else ("please click
//! this") would connect their account to the sender, who would then act
//! at the server as them. Warden's callback cannot tell the two browsers
//! apart (users authenticate to Warden with bearer tokens, not browser
//! sessions), so it names the Warden user the grant will go to and redeems
//! the code only when the person at the browser confirms. The page cannot
//! be framed, and the confirmation is refused from another origin.

use axum::extract::{Form, Path, Query, State};
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
    let Some((principal, server)) = users.waiting_login(&state) else {
        return not_waiting();
    };
    page(
        StatusCode::OK,
        &confirmation_page(&principal, &server, &state, &code),
    )
}

/// The confirmation form's fields.
#[derive(Debug, Deserialize)]
pub(super) struct ConfirmForm {
    state: String,
    code: String,
}

/// The person at the browser confirmed: the code is redeemed and the grant
/// stored for the user who started the login.
pub(super) async fn confirm(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Form(f): Form<ConfirmForm>,
) -> Response {
    let Some(users) = s.gateway.oauth.clone() else {
        return no_store();
    };
    let Some(auth) = s.gateway.authenticator() else {
        return no_store();
    };
    // A browser sends its page's origin with a form POST: only Warden's own
    // page may confirm (another site cannot submit the form for the user).
    let own = origin_of(&auth.resource_url(""));
    if let Some(origin) = headers.get(axum::http::header::ORIGIN) {
        if origin.to_str().ok().map(str::to_owned) != own {
            return http_error(
                StatusCode::FORBIDDEN,
                "Forbidden: the confirmation must come from Warden's own page",
            );
        }
    }
    let (state, code) = (f.state, f.code);
    match users.finish_login(&state, &code).await {
        Ok(server) => page(
            StatusCode::OK,
            &format!(
                "<p>Connected to {}. You can close this window.</p>",
                escape_html(&server)
            ),
        ),
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

fn not_waiting() -> Response {
    http_error(
        StatusCode::BAD_REQUEST,
        "Bad Request: this login could not be completed (expired, used, or refused)",
    )
}

/// The scheme, host and port of `url`, as a browser's `Origin` names them.
fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(u.origin().ascii_serialization())
}

/// A small HTML page that nothing may frame, cache or refer from.
fn page(status: StatusCode, body: &str) -> Response {
    use axum::http::header;
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Warden</title></head><body>\n{body}\n</body></html>\n"
        ),
    )
        .into_response()
}

/// The page that names who the grant will go to and asks to confirm.
fn confirmation_page(principal: &str, server: &str, state: &str, code: &str) -> String {
    format!(
        "<h1>Connect your account at {server} to Warden?</h1>\n\
         <p>Warden will call {server} <strong>as you</strong> on behalf of the Warden user:</p>\n\
         <p><code id=\"principal\">{principal}</code></p>\n\
         <p>Continue only if that is you and you started this login yourself. \
         If someone sent you this link, close this window.</p>\n\
         <form method=\"post\" action=\"{path}\">\n\
         <input type=\"hidden\" name=\"state\" value=\"{state}\">\n\
         <input type=\"hidden\" name=\"code\" value=\"{code}\">\n\
         <button type=\"submit\">Connect</button>\n\
         </form>",
        server = escape_html(server),
        principal = escape_html(principal),
        path = CALLBACK_PATH,
        state = escape_html(state),
        code = escape_html(code),
    )
}

/// Text for HTML element content and quoted attribute values. By hand:
/// five replacements, no crate needed for that.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confirmation_page_escapes_what_it_shows() {
        let page = confirmation_page("https://idp/#<b>\"x'", "s&t", "st\"ate", "c<o>de");
        assert!(page.contains("<code id=\"principal\">https://idp/#&lt;b&gt;&quot;x&#39;</code>"));
        assert!(page.contains("account at s&amp;t to Warden"));
        assert!(page.contains("name=\"state\" value=\"st&quot;ate\""));
        assert!(page.contains("name=\"code\" value=\"c&lt;o&gt;de\""));
        assert!(!page.contains("<b>"));
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://warden.example.org/").as_deref(),
            Some("https://warden.example.org")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
    }
}
