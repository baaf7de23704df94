//! One keep-alive HTTP/1.1 connection speaking Streamable HTTP MCP, sending
//! `tools/call` requests one at a time: a session client initializes once
//! and calls within its session; a 2026-07-28 client sends every call
//! self-contained (envelope in `params._meta`, mirrored in headers).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use warden_protocol::modern;
use warden_protocol::sse;
use warden_protocol::version::ProtocolVersion;

use crate::plan::{ClientEra, Plan, Target};

/// Largest response the client reads.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Why one request did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("HTTP status {0}")]
    Status(StatusCode),
    #[error("response body: {0}")]
    Body(String),
    #[error("no JSON-RPC response with the request's id")]
    NoReply,
    #[error("JSON-RPC error: {0}")]
    Rpc(String),
    #[error("the tool returned isError: true")]
    ToolError,
    #[error("the result is not complete (resultType {0:?})")]
    Incomplete(String),
    #[error("a 2026-07-28 call was answered with an Mcp-Session-Id")]
    UnexpectedSession,
}

impl CallError {
    /// Whether the connection is unusable after this error.
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self,
            CallError::Connect(_) | CallError::Http(_) | CallError::Timeout(_)
        )
    }
}

/// The parts of a JSON-RPC response the bench looks at.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    result: Option<ResultFlags>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ResultFlags {
    #[serde(rename = "isError", default)]
    is_error: bool,
    #[serde(rename = "protocolVersion", default)]
    protocol_version: Option<String>,
    /// 2026-07-28: `complete`, or `input_required` when the server needs
    /// the client first (the bench answers nothing, so that is a failure).
    #[serde(rename = "resultType", default)]
    result_type: Option<String>,
}

/// A connection ready to call: an initialized MCP session, or a 2026-07-28
/// client that needs none.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    target: Arc<Target>,
    /// Session era: the id `initialize` returned, sent with every call.
    session: Option<HeaderValue>,
    /// `MCP-Protocol-Version`: the negotiated version, or 2026-07-28.
    protocol: HeaderValue,
    /// 2026-07-28: the `Mcp-Name` of every call (with `Mcp-Method:
    /// tools/call`); `None` for a session client.
    mcp_name: Option<HeaderValue>,
    timeout: Duration,
    /// `{"jsonrpc":"2.0","method":"tools/call","params":…,"id":` — the id
    /// and closing brace are appended per request.
    call_prefix: String,
}

impl Connection {
    /// Connects; a session client then initializes and sends
    /// `notifications/initialized`, a 2026-07-28 client sends nothing.
    pub async fn open(target: Arc<Target>, plan: &Plan) -> Result<Connection, CallError> {
        let sender = connect(&target).await?;
        let name = serde_json::Value::String(target.tool.clone());
        match target.era {
            ClientEra::Session => {
                let call_prefix = format!(
                    r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"name":{name},"arguments":{}}},"id":"#,
                    plan.arguments
                );
                let offered = HeaderValue::from_str(&plan.protocol_version).map_err(|_| {
                    CallError::Body("protocol version is not a header value".into())
                })?;
                let conn = Connection {
                    sender,
                    target,
                    session: None,
                    protocol: offered,
                    mcp_name: None,
                    timeout: plan.timeout,
                    call_prefix,
                };
                conn.initialize(plan).await
            }
            ClientEra::Modern => {
                let version = ProtocolVersion::V2026_07_28.as_str();
                let call_prefix = format!(
                    r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"name":{name},"arguments":{},"_meta":{{"{}":"{version}","{}":{{}}}}}},"id":"#,
                    plan.arguments,
                    modern::META_PROTOCOL_VERSION,
                    modern::META_CLIENT_CAPABILITIES,
                );
                // Always printable ASCII: a name that is not goes base64.
                let mcp_name = HeaderValue::from_str(&modern::encode_header_value(&target.tool))
                    .map_err(|_| CallError::Body("tool name is not a header value".into()))?;
                Ok(Connection {
                    sender,
                    target,
                    session: None,
                    protocol: HeaderValue::from_static(version),
                    mcp_name: Some(mcp_name),
                    timeout: plan.timeout,
                    call_prefix,
                })
            }
        }
    }

    async fn initialize(mut self, plan: &Plan) -> Result<Connection, CallError> {
        let init = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": plan.protocol_version,
                "capabilities": {},
                "clientInfo": { "name": "warden-bench", "version": env!("CARGO_PKG_VERSION") },
            },
        });
        let (session, messages) = self.post(init.to_string(), false).await?;
        let version = reply_to(&messages, "0", |flags| flags.protocol_version.clone())?;
        self.session = session;
        if let Some(v) = version.and_then(|v| HeaderValue::from_str(&v).ok()) {
            self.protocol = v;
        }
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        self.post(initialized.to_owned(), true).await?;
        Ok(self)
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Opens a new TCP connection for the same MCP session.
    pub async fn reconnect(&mut self) -> Result<(), CallError> {
        self.sender = connect(&self.target).await?;
        Ok(())
    }

    /// One `tools/call` with the given id; `Ok` only for a complete result
    /// that is not `isError`.
    pub async fn call(&mut self, id: u64) -> Result<(), CallError> {
        let mut body = String::with_capacity(self.call_prefix.len() + 24);
        body.push_str(&self.call_prefix);
        body.push_str(&id.to_string());
        body.push('}');
        let (session, messages) = self.post(body, false).await?;
        if self.mcp_name.is_some() && session.is_some() {
            // The gateway took the session path: not what is being measured.
            return Err(CallError::UnexpectedSession);
        }
        let (is_error, result_type) = reply_to(&messages, &id.to_string(), |flags| {
            (flags.is_error, flags.result_type.clone())
        })?;
        match result_type {
            Some(t) if t != "complete" => Err(CallError::Incomplete(truncate(&t, 40))),
            _ if is_error => Err(CallError::ToolError),
            _ => Ok(()),
        }
    }

    /// POSTs a body and returns the session header and the JSON-RPC
    /// messages (the whole body for JSON; each event's data for SSE).
    async fn post(
        &mut self,
        body: String,
        notification: bool,
    ) -> Result<(Option<HeaderValue>, Vec<String>), CallError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.post_inner(body, notification))
            .await
            .map_err(|_| CallError::Timeout(timeout))?
    }

    async fn post_inner(
        &mut self,
        body: String,
        notification: bool,
    ) -> Result<(Option<HeaderValue>, Vec<String>), CallError> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(&self.target.path)
            .header(header::HOST, &self.target.authority)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .header(modern::HEADER_PROTOCOL_VERSION, self.protocol.clone());
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s.clone());
        }
        if let Some(name) = &self.mcp_name {
            req = req
                .header(modern::HEADER_METHOD, "tools/call")
                .header(modern::HEADER_NAME, name.clone());
        }
        for (k, v) in &self.target.headers {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CallError::Body(e.to_string()))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let session = resp.headers().get("mcp-session-id").cloned();
        let is_sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| CallError::Body(e.to_string()))?
            .to_bytes();
        if notification {
            return if status.is_success() {
                Ok((session, Vec::new()))
            } else {
                Err(CallError::Status(status))
            };
        }
        if status != StatusCode::OK {
            return Err(CallError::Status(status));
        }
        let messages = if is_sse {
            let mut decoder = sse::Decoder::new(MAX_RESPONSE_BYTES);
            let mut events = decoder
                .feed(&body)
                .map_err(|e| CallError::Body(e.to_string()))?;
            // A stream that ends without a blank line still ends its event.
            events.extend(
                decoder
                    .feed(b"\n\n")
                    .map_err(|e| CallError::Body(e.to_string()))?,
            );
            events.into_iter().map(|e| e.data).collect()
        } else {
            vec![String::from_utf8(body.to_vec())
                .map_err(|_| CallError::Body("not UTF-8".into()))?]
        };
        Ok((session, messages))
    }
}

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>, CallError> {
    let stream = tokio::net::TcpStream::connect(&target.authority)
        .await
        .map_err(CallError::Connect)?;
    stream.set_nodelay(true).map_err(CallError::Connect)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the peer closes.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Finds the response to `id` among `messages` and applies `f` to its
/// result.
fn reply_to<T>(
    messages: &[String],
    id: &str,
    f: impl Fn(&ResultFlags) -> T,
) -> Result<T, CallError> {
    let mut any_json = false;
    for text in messages {
        let Ok(env) = serde_json::from_str::<Envelope<'_>>(text) else {
            continue;
        };
        any_json = true;
        if env.id.map(RawValue::get) != Some(id) {
            continue;
        }
        return match (env.result, env.error) {
            (Some(flags), None) => Ok(f(&flags)),
            (None, Some(e)) => Err(CallError::Rpc(truncate(e.get(), 200))),
            _ => Err(CallError::Body("neither result nor error".into())),
        };
    }
    match messages.first() {
        Some(_) if any_json => Err(CallError::NoReply),
        Some(text) => Err(CallError::Body(format!(
            "not JSON-RPC: {}",
            truncate(text, 80)
        ))),
        None => Err(CallError::NoReply),
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_reply_in_json_and_sse_messages() {
        let m = |texts: &[&str]| texts.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
        let ok = m(&[r#"{"jsonrpc":"2.0","id":5,"result":{"content":[]}}"#]);
        assert!(!reply_to(&ok, "5", |f| f.is_error).unwrap());
        let sse = m(&[
            r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#,
            r#"{"jsonrpc":"2.0","id":5,"result":{"isError":true}}"#,
        ]);
        assert!(reply_to(&sse, "5", |f| f.is_error).unwrap());
        assert!(matches!(
            reply_to(&ok, "6", |_| ()),
            Err(CallError::NoReply)
        ));
        let err = m(&[r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32602,"message":"bad"}}"#]);
        assert!(matches!(
            reply_to(&err, "5", |_| ()),
            Err(CallError::Rpc(_))
        ));
        assert!(matches!(
            reply_to(&m(&["garbage"]), "5", |_| ()),
            Err(CallError::Body(_))
        ));
    }
}
