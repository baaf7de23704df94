//! Legacy HTTP+SSE (protocol 2024-11-05): a GET event stream that first
//! names a POST endpoint, then carries every response and server message.
//!
//! Invariants: the endpoint must be same-origin with the configured URL (a
//! server cannot redirect Warden's credentials elsewhere); an invalid event
//! is logged and dropped; the stream ending ends the connection (pending
//! calls fail, the supervisor reconnects).

use std::sync::Arc;

use ::http::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use ::http::{Method, StatusCode};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;
use url::Url;
use warden_protocol::sse::{Decoder, Event};

use crate::client::{Client, Target};
use crate::handshake::{self, Handshaken, INITIALIZED};
use crate::http::{client, endpoint, media_type, unreachable};
use crate::shared::{PendingGuard, Shared};
use crate::supervisor::End;
use crate::UpstreamError;

const EVENT_STREAM: &str = "text/event-stream";

/// The POST side of a connection.
pub(crate) struct Session {
    client: Client,
    endpoint: Target,
    headers: HeaderMap,
    ended: mpsc::Sender<String>,
}

impl Session {
    /// POSTs one message; the answer arrives on the event stream.
    pub(crate) async fn send(&self, text: String) -> Result<(), UpstreamError> {
        let resp = self
            .client
            .send(
                Method::POST,
                &self.endpoint,
                self.headers.clone(),
                Bytes::from(text),
            )
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            // The server no longer knows this connection's endpoint.
            let _ = self
                .ended
                .try_send("the message endpoint is gone (404)".into());
        }
        if !status.is_success() {
            return Err(UpstreamError::Http(status.as_u16()));
        }
        Ok(())
    }
}

pub(crate) struct Connection {
    pub session: Arc<Session>,
    ended: mpsc::Receiver<String>,
    reader: JoinHandle<()>,
}

impl Connection {
    pub(crate) async fn ended(&mut self) -> End {
        match self.ended.recv().await {
            Some(reason) => End::Crashed(reason),
            None => End::Crashed("event stream closed".into()),
        }
    }

    /// Dropping the event stream ends the connection on the server.
    pub(crate) async fn close(&mut self) {
        self.reader.abort();
    }
}

pub(crate) async fn connect(
    shared: &Arc<Shared>,
) -> Result<(Connection, Handshaken), UpstreamError> {
    let (url, headers) = endpoint(&shared.spec.transport)?;
    let client = client(shared)?;
    let max = shared.spec.limits.max_bytes;
    let mut get_headers = headers.clone();
    get_headers.insert(ACCEPT, HeaderValue::from_static(EVENT_STREAM));
    let target = Target::new(&url).map_err(UpstreamError::Config)?;
    let mut resp = client
        .send(Method::GET, &target, get_headers, Bytes::new())
        .await
        .map_err(unreachable)?;
    if !resp.status().is_success() {
        return Err(UpstreamError::Http(resp.status().as_u16()));
    }
    if media_type(&resp).as_deref() != Some(EVENT_STREAM) {
        return Err(UpstreamError::Protocol("not an event stream".into()));
    }
    let mut decoder = Decoder::new(max);
    let (endpoint_data, rest) = loop {
        let chunk = resp.chunk().await.map_err(unreachable)?.ok_or_else(|| {
            UpstreamError::Closed("event stream ended before the endpoint event".into())
        })?;
        let mut events = decoder
            .feed(&chunk)
            .map_err(|e| UpstreamError::Protocol(e.to_string()))?
            .into_iter();
        if let Some(ev) = events
            .by_ref()
            .find(|e| e.event.as_deref() == Some("endpoint"))
        {
            break (ev.data, events.collect::<Vec<_>>());
        }
    };
    let post_to = resolve_endpoint(&url, &endpoint_data)?;
    debug!(target: "upstream", server = %shared.name(), endpoint = %post_to.path(), "legacy SSE endpoint");

    let (ended_tx, ended) = mpsc::channel(2);
    let mut post_headers = headers;
    post_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let session = Arc::new(Session {
        client,
        endpoint: Target::new(&post_to).map_err(UpstreamError::Config)?,
        headers: post_headers,
        ended: ended_tx.clone(),
    });
    let reader = tokio::spawn(read_stream(shared.clone(), resp, decoder, rest, ended_tx));
    let mut conn = Connection {
        session,
        ended,
        reader,
    };
    match handshake(shared, &mut conn).await {
        Ok(done) => Ok((conn, done)),
        Err(e) => {
            conn.close().await;
            Err(e)
        }
    }
}

async fn handshake(
    shared: &Arc<Shared>,
    conn: &mut Connection,
) -> Result<Handshaken, UpstreamError> {
    let id = shared.next_id();
    let text = handshake::initialize_request(id, &shared.handshake.params)?;
    let rx = shared.register(id);
    let _guard = PendingGuard {
        shared: shared.clone(),
        id,
    };
    conn.session.send(text).await?;
    let response = tokio::select! {
        r = rx => r.map_err(|_| UpstreamError::Closed("handshake abandoned".into()))??,
        end = conn.ended() => return Err(UpstreamError::Closed(end.reason())),
    };
    let done = handshake::accept(&response)?;
    conn.session.send(INITIALIZED.to_owned()).await?;
    Ok(done)
}

/// Resolves the endpoint event's URI against the stream's URL and refuses
/// one on another origin.
fn resolve_endpoint(base: &Url, data: &str) -> Result<Url, UpstreamError> {
    let target = base
        .join(data.trim())
        .map_err(|_| UpstreamError::Protocol("endpoint event is not a URI".into()))?;
    if target.origin() != base.origin() {
        return Err(UpstreamError::Protocol(
            "endpoint event names another origin".into(),
        ));
    }
    Ok(target)
}

async fn read_stream(
    shared: Arc<Shared>,
    mut resp: crate::client::Response,
    mut decoder: Decoder,
    first: Vec<Event>,
    ended: mpsc::Sender<String>,
) {
    route_events(&shared, first).await;
    let reason = loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break "event stream closed".to_owned(),
            Err(e) => break format!("event stream broke: {}", e),
        };
        match decoder.feed(&chunk) {
            Ok(events) => route_events(&shared, events).await,
            Err(e) => break format!("event stream refused: {e}"),
        }
    };
    let _ = ended.send(reason).await;
}

async fn route_events(shared: &Shared, events: Vec<Event>) {
    for ev in events {
        match ev.event.as_deref() {
            None | Some("message") if !ev.data.is_empty() => {
                // An invalid event is logged by `route` and dropped.
                let _ = shared.route(ev.data, None, None).await;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_must_stay_on_the_origin() {
        let base = Url::parse("http://127.0.0.1:8080/sse?x=1").unwrap();
        assert_eq!(
            resolve_endpoint(&base, "/messages?session=abc")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/messages?session=abc"
        );
        assert_eq!(
            resolve_endpoint(&base, "messages").unwrap().as_str(),
            "http://127.0.0.1:8080/messages"
        );
        for bad in [
            "http://evil.example/messages",
            "//evil.example/messages",
            "https://127.0.0.1:8080/messages",
            "http://127.0.0.1:8081/messages",
        ] {
            assert!(resolve_endpoint(&base, bad).is_err(), "{bad}");
        }
    }
}
