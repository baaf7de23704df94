//! Warden's HTTP/1.1 client for upstream servers (Streamable HTTP, the
//! 2026-07-28 transport, legacy HTTP+SSE).
//!
//! Written on hyper's connection API rather than taken whole from reqwest:
//! a pooled client (reqwest, hyper-util's client) drives each connection
//! in a task of its own, so every call crosses tasks twice (the request to
//! the connection's task, the response back) and parses its URL again.
//! Here a connection is owned by the exchange that uses it and polled in
//! the caller's task: the request is written and the reply read by the
//! task that waits for it. An idle connection waits in the pool, unpolled,
//! and is checked before it is used again.
//!
//! What it keeps of the reqwest client it replaces:
//! - every name is resolved once through the egress guard and the
//!   connection made to a checked address (no DNS rebinding between check
//!   and connect); literal addresses are checked too;
//! - the connect timeout covers TCP and TLS;
//! - redirects are never followed (a 3xx is an answer: a redirect would
//!   carry the configured credentials wherever a server points);
//! - `TCP_NODELAY`; TLS by rustls with the platform's roots.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use ::http::header::HOST;
use ::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;
use url::{Host, Url};
use warden_egress::EgressPolicy;

/// How long an idle connection is kept for reuse.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per client (one client per upstream).
const MAX_IDLE: usize = 32;

/// Why a request got no response, or its body broke. The URL is never
/// part of the text (its query may carry a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientError {
    /// The egress guard refused every address, or the name did not resolve.
    Egress(String),
    Connect(String),
    Timeout,
    Request(String),
    Body(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Egress(e) => write!(f, "cannot connect: {e}"),
            ClientError::Connect(e) => write!(f, "cannot connect: {e}"),
            ClientError::Timeout => f.write_str("timed out"),
            ClientError::Request(e) => write!(f, "request failed: {e}"),
            ClientError::Body(e) => write!(f, "reading the body failed: {e}"),
        }
    }
}

/// An error with its causes.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Where requests go: a URL parsed once into what each request needs.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    origin: Origin,
    host_header: HeaderValue,
    /// Origin-form (`/path?query`): what an HTTP/1.1 request line carries.
    path: Uri,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    tls: bool,
    host: Host<String>,
    port: u16,
}

impl Target {
    pub(crate) fn new(url: &Url) -> Result<Target, String> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err("URL scheme must be http or https".into()),
        };
        let host = url.host().ok_or("URL has no host")?.to_owned();
        let port = url
            .port_or_known_default()
            .ok_or("URL has no port and no default port")?;
        let host_text = url.host_str().ok_or("URL has no host")?;
        let host_header = match url.port() {
            Some(p) => HeaderValue::from_str(&format!("{host_text}:{p}")),
            None => HeaderValue::from_str(host_text),
        }
        .map_err(|_| "URL host is not a valid Host header")?;
        let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let path = if path.is_empty() { "/" } else { path };
        let path = Uri::try_from(path).map_err(|_| "URL path is not a valid request target")?;
        Ok(Target {
            origin: Origin { tls, host, port },
            host_header,
            path,
        })
    }
}

/// A pooled HTTP/1.1 client for one upstream. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    connect_timeout: Duration,
    policy: EgressPolicy,
    tls: tokio_rustls::TlsConnector,
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    origin: Origin,
    conn: Conn,
    since: Instant,
}

type Io = TokioIo<Either<TcpStream, TlsStream<TcpStream>>>;
type Driver = Pin<Box<http1::Connection<Io, Full<Bytes>>>>;

/// One connection: the handle requests are sent through and the future
/// that does its I/O, polled by whoever waits on it.
struct Conn {
    send: http1::SendRequest<Full<Bytes>>,
    /// `None` once the connection has closed: dropping the driver then
    /// answers every request it still held (with the request itself when
    /// none of it was written).
    driver: Option<Driver>,
}

impl Conn {
    /// Drives the connection once; true when it has closed.
    fn drive(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        if let Some(driver) = &mut self.driver {
            if driver.as_mut().poll(cx).is_ready() {
                self.driver = None;
            }
        }
        self.driver.is_none()
    }

    fn is_closed(&self) -> bool {
        self.driver.is_none() || self.send.is_closed()
    }

    /// Waits until a request may be sent, driving the connection.
    async fn ready(&mut self) -> Result<(), ClientError> {
        poll_fn(|cx| {
            if self.drive(cx) {
                return Poll::Ready(Err(ClientError::Request("connection closed".into())));
            }
            self.send
                .poll_ready(cx)
                .map_err(|e| ClientError::Request(chain(&e)))
        })
        .await
    }

    /// Sends `req` and waits for the response's head, driving the
    /// connection. A request the connection refused before writing any
    /// of it comes back with the error.
    async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<hyper::Response<Incoming>, (ClientError, Option<Request<Full<Bytes>>>)> {
        let mut sent = std::pin::pin!(self.send.try_send_request(req));
        let outcome = poll_fn(|cx| {
            if let Poll::Ready(r) = sent.as_mut().poll(cx) {
                return Poll::Ready(Some(r));
            }
            if self.drive(cx) {
                // The connection ended and its driver is dropped, which
                // answers every request it held: the send future is ready.
                return match sent.as_mut().poll(cx) {
                    Poll::Ready(r) => Poll::Ready(Some(r)),
                    Poll::Pending => Poll::Ready(None),
                };
            }
            Poll::Pending
        })
        .await;
        match outcome {
            Some(Ok(resp)) => Ok(resp),
            Some(Err(mut e)) => {
                let req = e.take_message();
                Err((ClientError::Request(chain(e.error())), req))
            }
            None => Err((ClientError::Request("connection closed".into()), None)),
        }
    }
}

impl Client {
    /// A client whose TLS connections trust the platform's roots and
    /// `extra_roots`.
    pub(crate) fn new(
        connect_timeout: Duration,
        policy: EgressPolicy,
        extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    ) -> Result<Client, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
                .map_err(|e| format!("TLS roots: {e}"))?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Client {
            inner: Arc::new(Inner {
                connect_timeout,
                policy,
                tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Sends one request and returns the response with its body unread.
    /// A reused connection that turns out closed before the request was
    /// written is replaced; a request that may have reached the server is
    /// never sent twice.
    pub(crate) async fn send(
        &self,
        method: Method,
        target: &Target,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, ClientError> {
        headers.insert(HOST, target.host_header.clone());
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = target.path.clone();
        *req.headers_mut() = headers;
        loop {
            let (mut conn, reused) = match self.checkout(&target.origin) {
                Some(c) => (c, true),
                None => (self.connect(&target.origin).await?, false),
            };
            if let Err(e) = conn.ready().await {
                if reused {
                    continue;
                }
                return Err(e);
            }
            match conn.send(req).await {
                Ok(resp) => {
                    return Ok(Response::new(
                        resp,
                        conn,
                        self.inner.clone(),
                        target.origin.clone(),
                    ))
                }
                Err((_, Some(back))) if reused => req = back,
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// The most recently used idle connection to `origin`, if any is left
    /// that has not been idle too long.
    fn checkout(&self, origin: &Origin) -> Option<Conn> {
        let mut idle = self.inner.idle();
        let at = idle.iter().rposition(|i| &i.origin == origin)?;
        Some(idle.remove(at).conn)
    }

    async fn connect(&self, origin: &Origin) -> Result<Conn, ClientError> {
        let addrs = warden_egress::resolve(self.inner.policy, &origin.host, origin.port)
            .await
            .map_err(|e| ClientError::Egress(e.to_string()))?;
        let work = async {
            let tcp = connect_any(&addrs).await?;
            // Requests are written whole; waiting for more to coalesce
            // only delays them.
            tcp.set_nodelay(true)
                .map_err(|e| ClientError::Connect(e.to_string()))?;
            let io = if origin.tls {
                let name = match &origin.host {
                    Host::Domain(d) => rustls::pki_types::ServerName::try_from(d.clone())
                        .map_err(|e| ClientError::Connect(format!("TLS server name: {e}")))?,
                    Host::Ipv4(ip) => rustls::pki_types::ServerName::IpAddress((*ip).into()),
                    Host::Ipv6(ip) => rustls::pki_types::ServerName::IpAddress((*ip).into()),
                };
                let tls = self
                    .inner
                    .tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| ClientError::Connect(format!("TLS: {}", chain(&e))))?;
                Either::Right(tls)
            } else {
                Either::Left(tcp)
            };
            let (send, driver) = http1::Builder::new()
                .handshake(TokioIo::new(io))
                .await
                .map_err(|e| ClientError::Connect(chain(&e)))?;
            Ok(Conn {
                send,
                driver: Some(Box::pin(driver)),
            })
        };
        tokio::time::timeout(self.inner.connect_timeout, work)
            .await
            .map_err(|_| ClientError::Timeout)?
    }
}

/// Connects to the first address that answers, in the resolver's order.
async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, ClientError> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(ClientError::Connect(
        last.map_or_else(|| "no address".to_owned(), |e| e.to_string()),
    ))
}

impl Inner {
    /// The idle connections, those idle too long dropped. They are kept in
    /// the order they were put back, so those are a prefix.
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let expired = idle.partition_point(|i| i.since.elapsed() >= IDLE_TIMEOUT);
        idle.drain(..expired);
        idle
    }

    fn checkin(&self, origin: Origin, conn: Conn) {
        let mut idle = self.idle();
        if idle.len() >= MAX_IDLE {
            idle.remove(0);
        }
        idle.push(Idle {
            origin,
            conn,
            since: Instant::now(),
        });
    }
}

/// A response whose body is read by [`Response::chunk`]. Reading it drives
/// its connection; once the body has ended the connection goes back to the
/// pool. Dropped before its end, it closes the connection (HTTP/1.1 has no
/// other way to abandon a response).
pub(crate) struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Incoming,
    /// The connection until the body's end (then back to the pool) or its
    /// error (then closed): `None` once the body is over.
    conn: Option<Conn>,
    pool: Arc<Inner>,
    origin: Origin,
}

impl Response {
    fn new(resp: hyper::Response<Incoming>, conn: Conn, pool: Arc<Inner>, origin: Origin) -> Self {
        let (parts, body) = resp.into_parts();
        let mut r = Response {
            status: parts.status,
            headers: parts.headers,
            body,
            conn: Some(conn),
            pool,
            origin,
        };
        if r.body.is_end_stream() {
            r.end();
        }
        r
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body's length when the server declared it.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.body.size_hint().exact()
    }

    /// The next piece of the body; `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// One step of [`Response::chunk`]: drives the connection while the
    /// body has nothing ready.
    fn poll_chunk(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Result<Option<Bytes>, ClientError>> {
        loop {
            let Some(conn) = &mut self.conn else {
                return Poll::Ready(Ok(None));
            };
            let frame = match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(f) => f,
                Poll::Pending => {
                    let closed = conn.drive(cx);
                    // Driving may have read the body's next frame: take it
                    // now rather than on the wake-up it caused.
                    match Pin::new(&mut self.body).poll_frame(cx) {
                        Poll::Ready(f) => f,
                        Poll::Pending if !closed => return Poll::Pending,
                        // The connection ended: hyper always gives the body
                        // its end or its error first.
                        Poll::Pending => {
                            self.conn = None;
                            return Poll::Ready(Err(ClientError::Body(
                                "connection closed before the body ended".into(),
                            )));
                        }
                    }
                }
            };
            match frame {
                None => {
                    self.end();
                    return Poll::Ready(Ok(None));
                }
                Some(Err(e)) => {
                    self.conn = None;
                    return Poll::Ready(Err(ClientError::Body(chain(&e))));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Poll::Ready(Ok(Some(data)));
                        }
                    }
                }
            }
        }
    }

    /// The body has ended: the connection may serve another request.
    fn end(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !conn.is_closed() {
                self.pool.checkin(self.origin.clone(), conn);
            }
        }
    }
}

/// Bytes of a body left unread that are taken (and discarded) when the
/// response is dropped, to keep its connection.
const DRAIN_ON_DROP: usize = 64 * 1024;

impl Drop for Response {
    /// A caller may be done before the body's end: an SSE reply has given
    /// the response it waited for. When the rest of the body (its end, at
    /// most [`DRAIN_ON_DROP`] bytes) is already here, it is taken without
    /// waiting, so the connection serves the next request instead of being
    /// closed (a new connection per call would cost a TCP handshake each).
    /// Otherwise the connection closes, which abandons the response.
    fn drop(&mut self) {
        if self.conn.is_none() {
            return;
        }
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut left = DRAIN_ON_DROP;
        while let Poll::Ready(Ok(Some(data))) = self.poll_chunk(&mut cx) {
            if data.len() > left {
                return;
            }
            left -= data.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn client() -> Client {
        Client::new(Duration::from_secs(5), EgressPolicy::UPSTREAM, Vec::new()).unwrap()
    }

    fn target(url: &str) -> Target {
        Target::new(&Url::parse(url).unwrap()).unwrap()
    }

    /// Reads one request head (and its body, by Content-Length); `None`
    /// when the peer closed the connection.
    async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<String> {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).await.ok()? == 0 {
                return None;
            }
            buf.push(byte[0]);
        }
        let head = String::from_utf8(buf).ok()?;
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |n| n.trim().parse().unwrap_or(0));
        let mut body = vec![0; len];
        s.read_exact(&mut body).await.ok()?;
        Some(head + &String::from_utf8_lossy(&body))
    }

    /// A server that answers every request on a connection with `reply`
    /// (after `close_after` requests it closes the connection), and counts
    /// connections; the requests it read go to `seen`.
    async fn serve<S>(
        mut s: S,
        reply: &'static str,
        close_after: usize,
        seen: Arc<Mutex<Vec<String>>>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        for _ in 0..close_after {
            let Some(req) = read_request(&mut s).await else {
                return;
            };
            seen.lock().unwrap().push(req);
            if s.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
        let _ = s.shutdown().await;
    }

    const OK: &str =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

    async fn plain_server(
        reply: &'static str,
        close_after: usize,
    ) -> (u16, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (a, s) = (accepted.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(sock, reply, close_after, s.clone()));
            }
        });
        (port, accepted, seen)
    }

    /// A POST of `{}` to `t`.
    async fn post(c: &Client, t: &Target, headers: HeaderMap) -> Response {
        c.send(Method::POST, t, headers, Bytes::from_static(b"{}"))
            .await
            .expect("POST")
    }

    /// The error a GET to `url` fails with.
    async fn get_error(url: &str) -> ClientError {
        client()
            .send(Method::GET, &target(url), HeaderMap::new(), Bytes::new())
            .await
            .err()
            .expect("the request fails")
    }

    async fn body(mut r: Response) -> String {
        let mut out = Vec::new();
        while let Some(c) = r.chunk().await.unwrap() {
            out.extend_from_slice(&c);
        }
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn requests_to_one_origin_reuse_one_connection() {
        let (port, accepted, seen) = plain_server(OK, usize::MAX).await;
        let c = client();
        let t = target(&format!("http://127.0.0.1:{port}/mcp?x=1"));
        for i in 0..3 {
            let r = c
                .send(
                    Method::POST,
                    &t,
                    HeaderMap::new(),
                    Bytes::from(format!("body{i}")),
                )
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.content_length(), Some(2));
            assert_eq!(body(r).await, "{}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        // Origin-form request line, a Host header, the body.
        assert!(
            seen[2].starts_with("POST /mcp?x=1 HTTP/1.1\r\n"),
            "{}",
            seen[2]
        );
        assert!(
            seen[2].contains(&format!("host: 127.0.0.1:{port}\r\n")),
            "{}",
            seen[2]
        );
        assert!(seen[2].ends_with("body2"), "{}", seen[2]);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced() {
        // The server answers one request per connection and closes it
        // when the test says, after the client has put it back in its
        // pool: the pooled connection is dead when it is next used.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (close_tx, mut close_rx) = tokio::sync::mpsc::channel::<()>(1);
        let (closed_tx, mut closed_rx) = tokio::sync::mpsc::channel::<()>(1);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                if read_request(&mut sock).await.is_none() {
                    continue;
                }
                sock.write_all(OK.as_bytes()).await.unwrap();
                close_rx.recv().await;
                sock.shutdown().await.unwrap();
                drop(sock);
                closed_tx.send(()).await.unwrap();
            }
        });
        let c = client();
        let t = target(&format!("http://127.0.0.1:{port}/"));
        for _ in 0..3 {
            let r = c
                .send(Method::GET, &t, HeaderMap::new(), Bytes::new())
                .await
                .unwrap();
            assert_eq!(body(r).await, "{}");
            assert_eq!(c.inner.idle.lock().unwrap().len(), 1, "pooled");
            close_tx.send(()).await.unwrap();
            closed_rx.recv().await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_body_left_unread_closes_its_connection() {
        const PARTIAL: &str =
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n";
        let (port, accepted, _) = plain_server(PARTIAL, usize::MAX).await;
        let c = client();
        let t = target(&format!("http://127.0.0.1:{port}/"));
        let mut r = c
            .send(Method::GET, &t, HeaderMap::new(), Bytes::new())
            .await
            .unwrap();
        assert_eq!(r.chunk().await.unwrap().as_deref(), Some(&b"hello"[..]));
        drop(r);
        // The next request cannot use the abandoned connection.
        let r = c
            .send(Method::GET, &t, HeaderMap::new(), Bytes::new())
            .await
            .unwrap();
        drop(r);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_reply_stream_dropped_after_its_event_keeps_a_connection_whose_body_ended() {
        // An SSE reply: the event the caller waits for, then the body's
        // end, in one write. The caller stops reading at the event.
        const SSE: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n11\r\ndata: {\"id\": 1}\n\n\r\n0\r\n\r\n";
        let (port, accepted, seen) = plain_server(SSE, usize::MAX).await;
        let c = client();
        let t = target(&format!("http://127.0.0.1:{port}/"));
        for _ in 0..3 {
            let mut r = post(&c, &t, HeaderMap::new()).await;
            let first = r.chunk().await.unwrap().unwrap();
            assert_eq!(&first[..], b"data: {\"id\": 1}\n\n");
            // Give the end of the body time to arrive, as it does in a
            // server's next packet.
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(r);
        }
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for all three"
        );
    }

    #[tokio::test]
    async fn a_redirect_is_an_answer_not_followed() {
        const MOVED: &str =
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.2:1/steal\r\ncontent-length: 0\r\n\r\n";
        let (port, _, seen) = plain_server(MOVED, usize::MAX).await;
        let c = client();
        let t = target(&format!("http://127.0.0.1:{port}/"));
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer t"));
        let r = post(&c, &t, headers).await;
        assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_address_the_egress_guard_refuses_is_never_connected() {
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "http://0xa9.254.169.254/",
        ] {
            let err = get_error(url).await;
            assert!(
                matches!(&err, ClientError::Egress(e) if e.contains("link-local")),
                "{url}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error_naming_no_url() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = get_error(&format!("http://127.0.0.1:{port}/mcp?token=secret")).await;
        assert!(matches!(err, ClientError::Connect(_)), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    /// A TLS server with a certificate for `localhost` from a CA of its own.
    async fn tls_server() -> (u16, rustls::pki_types::CertificateDer<'static>) {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
            KeyPair,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf.signed_by(&leaf_key, &ca).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(sock).await {
                        serve(tls, OK, usize::MAX, Arc::default()).await;
                    }
                });
            }
        });
        (port, ca.der().clone())
    }

    #[tokio::test]
    async fn https_to_a_server_whose_certificate_chains_to_a_trusted_root() {
        let (port, root) = tls_server().await;
        let c = Client::new(Duration::from_secs(5), EgressPolicy::UPSTREAM, vec![root]).unwrap();
        let t = target(&format!("https://localhost:{port}/mcp"));
        for _ in 0..2 {
            assert_eq!(body(post(&c, &t, HeaderMap::new()).await).await, "{}");
        }
    }

    #[tokio::test]
    async fn https_to_a_certificate_no_trusted_root_signed_is_refused() {
        let (port, _) = tls_server().await;
        let err = get_error(&format!("https://localhost:{port}/mcp")).await;
        assert!(
            matches!(&err, ClientError::Connect(e) if e.contains("TLS") && e.contains("certificate")),
            "{err}"
        );
    }

    #[test]
    fn targets_carry_origin_form_and_the_host_header() {
        let t = target("http://example.com/a/b?c=d#frag");
        assert_eq!(t.path, "/a/b?c=d");
        assert_eq!(t.host_header, "example.com");
        assert_eq!(t.origin.port, 80);
        let t = target("https://[::1]:8443");
        assert_eq!(t.path, "/");
        assert_eq!(t.host_header, "[::1]:8443");
        assert!(t.origin.tls);
        assert!(Target::new(&Url::parse("ftp://example.com/").unwrap()).is_err());
    }
}
