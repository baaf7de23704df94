//! Streamable HTTP in the stateless 2026-07-28 era: era detection, request
//! exchanges with the per-request envelope, and the `subscriptions/listen`
//! stream.
//!
//! There is no session: each request is one self-contained POST carrying
//! `MCP-Protocol-Version`, `Mcp-Method` (and `Mcp-Name` for the methods that
//! name something) and, in `params._meta`, the envelope (`envelope.rs`).
//! Cancelling a request is closing its response stream. The server sends
//! no requests; its notifications arrive on a request's response stream
//! (progress, logging: related events of that request) or on the
//! long-lived `subscriptions/listen` stream (list changes).
//!
//! Invariants: only positive evidence — a valid `DiscoverResult` naming
//! 2026-07-28 — adopts the modern era; a network failure is never taken for
//! an era verdict; no `Mcp-Session-Id` is ever sent.

use std::sync::Arc;
use std::time::Duration;

use ::http::header::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use url::Url;
use warden_protocol::message::{self, Incoming};
use warden_protocol::sse::Decoder;
use warden_protocol::Kind;

use crate::discover::{self, Verdict};
use crate::envelope::{Envelope, Spliced};
use crate::handshake::Handshaken;
use crate::http::{
    self, media_type, read_reply, Attempt, Connection, Routing, Session, EVENT_STREAM,
    LISTEN_MAX_DELAY, LISTEN_MAX_REFUSALS, LISTEN_MIN_DELAY, PROTOCOL_VERSION,
};
use crate::shared::Shared;
use crate::{Era, Response, UpstreamError};

const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

/// The reference client's bound on one probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

const ACKNOWLEDGED: &str = "notifications/subscriptions/acknowledged";

/// `Era::Auto`: probe, adopt the modern era on positive evidence, else fall
/// back to `initialize` (one more probe when the answer asks for it).
/// Remembers what it settled on.
pub(crate) async fn detect(
    shared: &Arc<Shared>,
    url: Url,
    headers: HeaderMap,
) -> Result<(Connection, Handshaken), UpstreamError> {
    let name = shared.name();
    for first in [true, false] {
        let (session, expired) = session(shared, url.clone(), headers.clone())?;
        let why = match probe(shared, &session, Era::Auto, first).await? {
            Verdict::Modern(result) => {
                let connected = adopt(shared, session, expired, result);
                shared.remember_era(Some(Era::Modern));
                return Ok(connected);
            }
            Verdict::Reprobe => {
                debug!(target: "upstream", server = %name, "server/discover answered -32022 naming 2026-07-28; probing again");
                continue;
            }
            Verdict::Incompatible(why) => {
                return Err(UpstreamError::Protocol(format!(
                    "no protocol version in common: {why}"
                )))
            }
            Verdict::Fallback(why) => why,
        };
        debug!(target: "upstream", server = %name, reason = %why, "not a 2026-07-28 server; initializing");
        match http::connect_session(shared, url.clone(), headers.clone(), first).await? {
            Attempt::Connected(c, done) => {
                shared.remember_era(Some(Era::Session));
                return Ok((c, done));
            }
            Attempt::Reprobe => {
                debug!(target: "upstream", server = %name, "initialize answered -32022 naming 2026-07-28; probing again");
            }
        }
    }
    Err(UpstreamError::Protocol(
        "the server refuses both server/discover and initialize at every version offered".into(),
    ))
}

/// `Era::Modern`: the probe must succeed; nothing falls back.
pub(crate) async fn connect(
    shared: &Arc<Shared>,
    url: Url,
    headers: HeaderMap,
) -> Result<(Connection, Handshaken), UpstreamError> {
    for first in [true, false] {
        let (session, expired) = session(shared, url.clone(), headers.clone())?;
        match probe(shared, &session, Era::Modern, first).await? {
            Verdict::Modern(result) => return Ok(adopt(shared, session, expired, result)),
            Verdict::Reprobe => continue,
            Verdict::Incompatible(why) | Verdict::Fallback(why) => {
                return Err(UpstreamError::Protocol(format!(
                    "server/discover at 2026-07-28 not accepted: {why}"
                )))
            }
        }
    }
    Err(UpstreamError::Protocol(
        "server/discover at 2026-07-28 refused twice".into(),
    ))
}

fn session(
    shared: &Shared,
    url: Url,
    headers: HeaderMap,
) -> Result<(Session, mpsc::Receiver<()>), UpstreamError> {
    let envelope = Envelope::from_handshake(&shared.handshake.params)?;
    let (expired_tx, expired) = mpsc::channel(1);
    let session = Session::modern(shared, url, headers, expired_tx, envelope)?;
    Ok((session, expired))
}

/// Installs a modern connection: its DiscoverResult, and a listen stream
/// when it declares list changes.
fn adopt(
    shared: &Arc<Shared>,
    session: Session,
    expired: mpsc::Receiver<()>,
    result: String,
) -> (Connection, Handshaken) {
    let session = Arc::new(session);
    let listener = discover::listen_filter(&result)
        .map(|filter| tokio::spawn(listen(shared.clone(), session.clone(), filter)));
    let version = session
        .modern
        .as_ref()
        .map_or(crate::envelope::MODERN.as_str(), Envelope::version);
    (
        Connection::new(session, expired, listener),
        Handshaken {
            result,
            protocol_version: version.to_owned(),
            modern: true,
        },
    )
}

/// One `server/discover`. Only a failure to reach the server is an error;
/// anything the server answers is a verdict. In `Era::Auto` a probe that
/// times out is a fallback, as in the reference client. `first`: whether
/// a `-32022` naming 2026-07-28 may still ask for another probe.
async fn probe(
    shared: &Shared,
    session: &Session,
    era: Era,
    first: bool,
) -> Result<Verdict, UpstreamError> {
    let bound = PROBE_TIMEOUT.min(shared.spec.connect_timeout / 2);
    match tokio::time::timeout(bound, probe_once(shared, session, first)).await {
        Ok(v) => v,
        Err(_) if era == Era::Auto => Ok(Verdict::Fallback("server/discover timed out".into())),
        Err(_) => Err(UpstreamError::Timeout),
    }
}

async fn probe_once(
    shared: &Shared,
    session: &Session,
    first: bool,
) -> Result<Verdict, UpstreamError> {
    let Some(envelope) = &session.modern else {
        return Err(UpstreamError::Protocol("not a modern session".into()));
    };
    let id = shared.next_id();
    let text = discover::request(id, &envelope.meta());
    let routing = routing(envelope, "server/discover", None)?;
    let resp = session.post_with(Bytes::from(text), routing, None).await?;
    let status = resp.status();
    match read_reply(shared, session, resp, id).await {
        Ok(r) => Ok(discover::judge(&r.text, first)),
        // Reading the body broke: the network, not the server's verdict.
        Err(e @ UpstreamError::Unavailable(_)) => Err(e),
        Err(e) => Ok(Verdict::Fallback(format!("HTTP {}: {e}", status.as_u16()))),
    }
}

/// The routing headers of one request.
fn routing(
    envelope: &Envelope,
    method: &str,
    name: Option<&str>,
) -> Result<Routing, UpstreamError> {
    let value = |v: &str, what: &str| {
        HeaderValue::from_str(v).map_err(|_| {
            UpstreamError::InvalidRequest(format!("the {what} cannot be an HTTP header value"))
        })
    };
    let mut headers = vec![
        (
            PROTOCOL_VERSION,
            HeaderValue::from_static(envelope.version()),
        ),
        (MCP_METHOD, value(method, "method")?),
    ];
    if let Some(n) = name {
        headers.push((MCP_NAME, value(n, "name")?));
    }
    Ok(headers)
}

/// A request's exchange (see [`crate::http::Exchange`]), the envelope
/// spliced in. A request that cannot carry the envelope fails at once,
/// unsent. Dropping the exchange closes the response stream, which is how
/// 2026-07-28 cancels.
pub(crate) fn start_exchange(
    shared: &Arc<Shared>,
    session: Arc<Session>,
    id: u64,
    text: String,
    extra: Option<Arc<crate::RequestHeaders>>,
) -> crate::http::Exchange {
    let prepared = session
        .modern
        .as_ref()
        .ok_or_else(|| UpstreamError::Protocol("not a modern session".into()))
        .and_then(|envelope| {
            let spliced = envelope.splice(&text)?;
            let routing = routing(envelope, &spliced.method, spliced.name.as_deref())?;
            Ok((spliced, routing))
        });
    let shared = shared.clone();
    Box::pin(async move {
        let (Spliced { text, .. }, routing) = prepared?;
        exchange(&shared, &session, id, text, routing, extra.as_deref()).await
    })
}

async fn exchange(
    shared: &Shared,
    session: &Session,
    id: u64,
    text: String,
    routing: Routing,
    extra: Option<&crate::RequestHeaders>,
) -> Result<Response, UpstreamError> {
    let resp = session.post_with(Bytes::from(text), routing, extra).await?;
    let reply = read_reply(shared, session, resp, id).await?;
    if discover::is_unsupported_version(&reply.text) {
        // The server stopped accepting the version Warden adopted: the
        // caller gets the server's answer; the supervisor detects again.
        session.expire();
    }
    Ok(reply)
}

/// The `subscriptions/listen` stream: each notification on it becomes an
/// event unrelated to any request, exactly like a session-era GET stream's.
/// Reopened with backoff whenever it ends, until the connection is closed;
/// given up after repeated refusals.
async fn listen(shared: Arc<Shared>, session: Arc<Session>, filter: String) {
    let name = shared.name().to_owned();
    let mut delay = LISTEN_MIN_DELAY;
    let mut refusals = 0;
    loop {
        let ended = match open_listen(&shared, &session, &filter).await {
            Ok((resp, id)) => read_listen(&shared, &session, resp, id).await,
            Err(ListenError::Refused(status)) => {
                debug!(target: "upstream", server = %name, status, "subscriptions/listen refused");
                Ended::Refused
            }
            Err(ListenError::Failed(e)) => {
                debug!(target: "upstream", server = %name, error = %e, "subscriptions/listen failed");
                Ended::Quietly
            }
        };
        match ended {
            Ended::Acknowledged => {
                refusals = 0;
                delay = LISTEN_MIN_DELAY;
            }
            Ended::Quietly => {}
            Ended::Refused => {
                refusals += 1;
                if refusals >= LISTEN_MAX_REFUSALS {
                    warn!(target: "upstream", server = %name, "subscriptions/listen refused; not retrying");
                    return;
                }
            }
        }
        debug!(target: "upstream", server = %name, "reopening the listen stream");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(LISTEN_MAX_DELAY);
    }
}

enum ListenError {
    /// The server answered, but not with an event stream.
    Refused(u16),
    /// The server could not be reached, or the request not built.
    Failed(UpstreamError),
}

/// How one listen stream ended.
enum Ended {
    /// After the server acknowledged the subscription: a healthy stream.
    Acknowledged,
    /// Before any acknowledgement, without an answer.
    Quietly,
    /// With an error answer, or not opened at all: the server refuses.
    Refused,
}

async fn open_listen(
    shared: &Shared,
    session: &Session,
    filter: &str,
) -> Result<(crate::client::Response, u64), ListenError> {
    let Some(envelope) = &session.modern else {
        return Err(ListenError::Failed(UpstreamError::Protocol(
            "not a modern session".into(),
        )));
    };
    let id = shared.next_id();
    let text = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"subscriptions/listen","params":{{"notifications":{filter},"_meta":{}}}}}"#,
        envelope.meta()
    );
    let routing = routing(envelope, "subscriptions/listen", None).map_err(ListenError::Failed)?;
    let resp = session
        .post_with(Bytes::from(text), routing, None)
        .await
        .map_err(ListenError::Failed)?;
    let status = resp.status();
    if status.is_success() && media_type(&resp).as_deref() == Some(EVENT_STREAM) {
        Ok((resp, id))
    } else {
        Err(ListenError::Refused(status.as_u16()))
    }
}

/// Reads one listen stream to its end.
async fn read_listen(
    shared: &Shared,
    session: &Session,
    mut resp: crate::client::Response,
    id: u64,
) -> Ended {
    let name = shared.name();
    let mut decoder = Decoder::new(session.max_bytes);
    let mut acknowledged = false;
    let quiet = |acknowledged: bool| {
        if acknowledged {
            Ended::Acknowledged
        } else {
            Ended::Quietly
        }
    };
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return quiet(acknowledged),
            Err(e) => {
                debug!(target: "upstream", server = %name, error = %e, "listen stream broke");
                return quiet(acknowledged);
            }
        };
        let events = match decoder.feed(&chunk) {
            Ok(events) => events,
            Err(e) => {
                warn!(target: "upstream", server = %name, error = %e, "listen stream unreadable");
                return quiet(acknowledged);
            }
        };
        for ev in events {
            if !matches!(ev.event.as_deref(), None | Some("message")) || ev.data.is_empty() {
                continue;
            }
            if is_acknowledgement(shared, &ev.data) {
                acknowledged = true;
                debug!(target: "upstream", server = %name, "subscription acknowledged");
                continue;
            }
            // An invalid event is logged by `route` and dropped. A response
            // to the listen request is the server ending the subscription
            // (a result) or refusing it (an error).
            if let Ok(Some(r)) = shared.route(ev.data, None, Some(id)).await {
                if message::parse_one(&r.text).is_ok_and(|m| m.kind == Kind::Error) {
                    return Ended::Refused;
                }
                info!(target: "upstream", server = %name, "the server ended the subscription");
                return quiet(acknowledged);
            }
        }
    }
}

/// Whether an event is `notifications/subscriptions/acknowledged` (parsed
/// strictly; an invalid one is left to `route`, which logs it).
fn is_acknowledgement(shared: &Shared, data: &str) -> bool {
    matches!(
        message::parse(data, &shared.spec.limits, false),
        Ok(Incoming::Single(m)) if m.kind == Kind::Notification && m.method() == ACKNOWLEDGED
    )
}
