//! The HTTP edge: Warden's own accept loop for its listeners (plain HTTP
//! and TLS alike), and the limits that hold before a request has a
//! principal (`listen:` in the configuration):
//!
//! - open connections in total and per client address (an IPv6 client
//!   counts by its /64): one beyond a cap is closed at once, after a
//!   best-effort `503`/`429` over plain HTTP;
//! - a request's head must arrive within `header_timeout` of the
//!   connection's start or of the request's first byte (slowloris);
//! - a keep-alive connection with no request in progress is closed after
//!   `idle_timeout`, and so is one whose client accepts no response bytes
//!   for that long;
//! - a request body may pause at most `body_timeout`, and must then average
//!   `body_min_rate` ([`TimedBody`]); the handler answers `408`.
//!
//! Why a loop of our own: `axum::serve` sleeps a second after every failed
//! accept (out of file descriptors, say) and sets no header timeout, so a
//! thousand idle or trickling connections stopped Warden serving anyone
//! (#16). Here a connection costs its socket and a small task, a refused
//! one not even that, and every connection has a deadline in each state.
//!
//! Every refusal is counted in `warden_edge_refusals_total{kind}` and
//! logged at most once per [`REPORT_EVERY`] per kind ([`report`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tracing::{debug, warn};
use warden_telemetry::{EdgeRefusal, Metrics};

use crate::session::lock;

/// How often each kind of refusal is logged, at most.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);
/// How long shutdown waits for open connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// What a client refused a connection is told to wait before retrying,
/// in seconds.
pub(crate) const RETRY_AFTER_SECS: u64 = 1;
/// The same for a per-principal cap (a session or stream must end first).
pub(crate) const CAP_RETRY_AFTER_SECS: u64 = 5;

/// The limits of one listener (`listen:`; the caller fits
/// `max_connections` to the process's open-file limit).
pub use warden_config::EdgeLimits;

// ------------------------------------------------------------------ serving

/// Connections the kernel may hold for Warden to accept (capped by the
/// system's `somaxconn`). A burst of connections is queued rather than
/// dropped: a dropped SYN costs the client a one-second retransmission.
const ACCEPT_BACKLOG: u32 = 4096;

/// A listener on `addr` with a deep accept queue ([`ACCEPT_BACKLOG`]).
pub fn bind(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open
/// connections finish (at most [`DRAIN_TIMEOUT`]). With `tls`, each
/// connection is a TLS connection (handshake within `header_timeout`) whose
/// verified client certificate reaches authentication. Each request
/// carries its peer address (`ConnectInfo`, and
/// [`crate::call::CLIENT_ADDR`] around the connection).
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: EdgeLimits,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let table = Arc::new(Connections::new(limits, metrics.clone()));
    // Dropped at shutdown: each connection then shuts down gracefully.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    // Every connection holds a receiver; `closed()` resolves when all are gone.
    let (open_tx, open_rx) = tokio::sync::watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: the caps keep
                    // Warden below the limit, so this is rare; back off
                    // briefly rather than spin, and keep accepting.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let admitted = match table.admit(peer.ip()) {
            Ok(a) => a,
            Err(kind) => {
                if acceptor.is_none() {
                    refuse_plain(&tcp, kind);
                }
                report(&metrics, kind, Some(peer.ip()));
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let conn = Conn {
            app: app.clone(),
            limits,
            metrics: metrics.clone(),
            peer,
            stop: stop_rx.clone(),
        };
        let acceptor = acceptor.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            let _open = open;
            match acceptor {
                None => conn.serve(tcp, None).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await;
                    match handshake {
                        Ok(Ok(tls)) => {
                            let cert: Option<Arc<[u8]>> = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .map(|c| Arc::from(c.as_ref()));
                            conn.serve(tls, cert).await;
                        }
                        Ok(Err(e)) => debug!(peer = %peer, error = %e, "TLS handshake failed"),
                        Err(_) => {
                            report(&conn.metrics, EdgeRefusal::HeaderTimeout, Some(peer.ip()));
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(open_rx);
    if tokio::time::timeout(DRAIN_TIMEOUT, open_tx.closed())
        .await
        .is_err()
    {
        warn!(
            open = open_tx.receiver_count(),
            "connections still open after the shutdown drain; closing them"
        );
    }
    Ok(())
}

/// Accept errors that concern one connection only (it was reset before
/// it was accepted): the next accept may succeed at once.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One admitted connection.
struct Conn {
    app: Router,
    limits: EdgeLimits,
    metrics: Metrics,
    peer: SocketAddr,
    stop: tokio::sync::watch::Receiver<()>,
}

impl Conn {
    async fn serve<I>(mut self, io: I, client_cert: Option<Arc<[u8]>>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let watch = Arc::new(ConnWatch::default());
        let io = EdgeIo::new(
            io,
            watch.clone(),
            self.limits,
            self.metrics.clone(),
            self.peer,
        );
        let service = EdgeService {
            inner: hyper_util::service::TowerToHyperService::new(self.app.clone()),
            watch,
            peer: self.peer,
            limits: self.limits,
            metrics: self.metrics.clone(),
        };
        // The edge's own deadlines replace hyper's header timeout (which
        // would also cut a keep-alive connection idle for that long).
        let conn = hyper::server::conn::http1::Builder::new()
            .header_read_timeout(None)
            .serve_connection(hyper_util::rt::TokioIo::new(io), service)
            .with_upgrades();
        let conn = crate::call::CLIENT_ADDR.scope(Some(self.peer), async move {
            tokio::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    r = conn.as_mut() => return r,
                    _ = self.stop.changed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        });
        if let Err(e) = crate::http::CLIENT_CERT.scope(client_cert, conn).await {
            debug!(peer = %self.peer, error = %e, "connection ended with an error");
        }
    }
}

/// The service of one connection: the router, with the peer address in
/// each request, the body under [`TimedBody`], and the request counted as
/// in progress until its response body is done (the connection is not
/// idle meanwhile).
struct EdgeService {
    inner: hyper_util::service::TowerToHyperService<Router>,
    watch: Arc<ConnWatch>,
    peer: SocketAddr,
    limits: EdgeLimits,
    metrics: Metrics,
}

type BoxResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<http::Request<Incoming>> for EdgeService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxResponseFuture;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        let busy = Busy::start(&self.watch);
        let (limits, metrics, peer) = (self.limits, self.metrics.clone(), self.peer);
        let mut req = req.map(|b| Body::new(TimedBody::new(b, limits, metrics, peer.ip())));
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        let response = hyper::service::Service::call(&self.inner, req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Body::new(Holding { body, _held: busy })))
        })
    }
}

/// Whether a connection has a request in progress, shared by its service
/// (which starts and ends requests) and its I/O (which applies the idle
/// and header deadlines only between requests).
#[derive(Default)]
struct ConnWatch {
    busy: AtomicUsize,
    /// Requests finished so far: a change means the connection went idle.
    done: AtomicU64,
    /// The connection's last pending read. hyper does not read again after
    /// a response unless the socket wakes it, so the end of a request wakes
    /// it instead: the read then arms the idle deadline.
    reader: futures::task::AtomicWaker,
}

/// A request in progress; ends when dropped.
struct Busy(Arc<ConnWatch>);

impl Busy {
    fn start(watch: &Arc<ConnWatch>) -> Busy {
        watch.busy.fetch_add(1, Ordering::AcqRel);
        Busy(watch.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.done.fetch_add(1, Ordering::AcqRel);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
        self.0.reader.wake();
    }
}

/// A response body holding something until the body is done or dropped:
/// its request's [`Busy`], a stream's per-principal slot.
pub(crate) struct Holding<G> {
    pub(crate) body: Body,
    /// Dropped with the body.
    pub(crate) _held: G,
}

impl<G: Unpin> HttpBody for Holding<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

// ------------------------------------------------------------ connection I/O

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head: `header_timeout`.
    Head,
    /// Between requests, no byte of the next one yet: `idle_timeout`.
    Idle,
    /// A request is in progress: its body and response have their own
    /// limits ([`TimedBody`], the write stall below).
    Busy,
}

/// A connection's socket (or TLS stream) with the edge's deadlines: the
/// read side between requests ([`Phase`]), and the write side whenever
/// the client accepts no bytes for `idle_timeout`.
struct EdgeIo<T> {
    io: T,
    watch: Arc<ConnWatch>,
    phase: Phase,
    seen_done: u64,
    read_deadline: Pin<Box<Sleep>>,
    write_stall: Option<Pin<Box<Sleep>>>,
    limits: EdgeLimits,
    metrics: Metrics,
    peer: SocketAddr,
}

impl<T> EdgeIo<T> {
    fn new(
        io: T,
        watch: Arc<ConnWatch>,
        limits: EdgeLimits,
        metrics: Metrics,
        peer: SocketAddr,
    ) -> Self {
        EdgeIo {
            io,
            watch,
            // A new connection owes its first request's head at once.
            phase: Phase::Head,
            seen_done: 0,
            read_deadline: Box::pin(tokio::time::sleep(limits.header_timeout)),
            write_stall: None,
            limits,
            metrics,
            peer,
        }
    }

    /// Moves between phases on what the service and the socket say.
    fn update_phase(&mut self) {
        if self.watch.busy.load(Ordering::Acquire) > 0 {
            self.phase = Phase::Busy;
            return;
        }
        let done = self.watch.done.load(Ordering::Acquire);
        if self.phase == Phase::Busy || done != self.seen_done {
            self.seen_done = done;
            self.phase = Phase::Idle;
            let deadline = Instant::now() + self.limits.idle_timeout;
            self.read_deadline.as_mut().reset(deadline);
        }
    }

    /// Polls the write-stall deadline after the socket said Pending.
    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let idle = self.limits.idle_timeout;
        let stall = self
            .write_stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        if stall.as_mut().poll(cx).is_ready() {
            report(
                &self.metrics,
                EdgeRefusal::WriteTimeout,
                Some(self.peer.ip()),
            );
            return true;
        }
        false
    }

    fn write_poll<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(r) => {
                self.write_stall = None;
                Poll::Ready(r)
            }
            Poll::Pending if self.stalled(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client accepted no response bytes within listen.idle_timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for EdgeIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.update_phase();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.phase == Phase::Idle && buf.filled().len() > before {
                    // The next request has begun: its head is now due.
                    this.phase = Phase::Head;
                    let deadline = Instant::now() + this.limits.header_timeout;
                    this.read_deadline.as_mut().reset(deadline);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                this.watch.reader.register(cx.waker());
                if this.phase == Phase::Busy || this.read_deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if this.phase == Phase::Idle {
                    // An idle keep-alive connection ends like a clean close.
                    debug!(peer = %this.peer, "idle connection closed");
                    return Poll::Ready(Ok(()));
                }
                report(
                    &this.metrics,
                    EdgeRefusal::HeaderTimeout,
                    Some(this.peer.ip()),
                );
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request head did not arrive within listen.header_timeout",
                )))
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EdgeIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.write_poll(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.write_poll(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.write_poll(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        this.write_poll(cx, polled)
    }
}

// ------------------------------------------------------------- request body

/// A request body that must keep arriving: it may pause at most
/// `body_timeout`, and after that grace it must have averaged
/// `body_min_rate` (`received ≥ rate × (elapsed − body_timeout)`). The
/// clock starts when the handler first reads. A body that falls behind
/// fails with [`BodyTooSlow`] (the handler answers `408`).
pub(crate) struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    min_rate: u64,
    started: Option<Instant>,
    last_data: Instant,
    received: u64,
    /// Made the first time the body is not ready (a body that arrived
    /// whole, the common case, never needs a timer).
    deadline: Option<Pin<Box<Sleep>>>,
    metrics: Metrics,
    peer: IpAddr,
}

/// A request body that arrived too slowly (see [`TimedBody`]).
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub(crate) struct BodyTooSlow;

impl TimedBody {
    fn new(inner: Incoming, limits: EdgeLimits, metrics: Metrics, peer: IpAddr) -> TimedBody {
        TimedBody {
            inner,
            timeout: limits.body_timeout,
            min_rate: u64::try_from(limits.body_min_rate)
                .unwrap_or(u64::MAX)
                .max(1),
            started: None,
            last_data: Instant::now(),
            received: 0,
            deadline: None,
            metrics,
            peer,
        }
    }

    /// When the body is next due: the end of the longest allowed pause, or
    /// the time by which the bytes so far satisfy the minimum rate,
    /// whichever comes first.
    fn due(&self, started: Instant) -> Instant {
        let pause = self.last_data + self.timeout;
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        let rate = started + self.timeout + earned;
        pause.min(rate)
    }

    fn too_slow(&self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        report(&self.metrics, EdgeRefusal::BodyTimeout, Some(self.peer));
        Poll::Ready(Some(Err(Box::new(BodyTooSlow))))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let now = Instant::now();
        let started = *this.started.get_or_insert_with(|| {
            this.last_data = now;
            now
        });
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    this.last_data = now;
                }
                if now > this.due(started) {
                    return this.too_slow();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let due = this.due(started);
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                if deadline.deadline() != due {
                    deadline.as_mut().reset(due);
                }
                if deadline.as_mut().poll(cx).is_ready() {
                    return this.too_slow();
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether reading a body failed because it arrived too slowly.
pub(crate) fn is_too_slow(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if e.is::<BodyTooSlow>() {
            return true;
        }
        cause = e.source();
    }
    false
}

// -------------------------------------------------------------- connections

/// Open connections, in total and per client address.
struct Connections {
    limits: EdgeLimits,
    metrics: Metrics,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// An admitted connection; its slot is freed when dropped.
struct Admitted {
    table: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    fn new(limits: EdgeLimits, metrics: Metrics) -> Connections {
        Connections {
            limits,
            metrics,
            open: Mutex::new(Open::default()),
        }
    }

    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admitted, EdgeRefusal> {
        let ip = address_key(peer);
        let mut open = lock(&self.open);
        if open.total >= self.limits.max_connections {
            return Err(EdgeRefusal::MaxConnections);
        }
        let mine = open.per_ip.entry(ip).or_insert(0);
        if *mine >= self.limits.max_connections_per_ip {
            return Err(EdgeRefusal::MaxConnectionsPerIp);
        }
        *mine += 1;
        open.total += 1;
        self.metrics
            .connections_open()
            .set(i64::try_from(open.total).unwrap_or(i64::MAX));
        Ok(Admitted {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = lock(&self.table.open);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
        self.table
            .metrics
            .connections_open()
            .set(i64::try_from(open.total).unwrap_or(i64::MAX));
    }
}

/// The address a client is counted by: IPv4 as it is; IPv6 by its /64
/// (one host commonly holds a whole /64); an IPv4-mapped IPv6 address as
/// the IPv4 address.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Tells a refused plain-HTTP client why, without waiting for anything:
/// whatever it already sent is read (so that the close is not a reset
/// that swallows the answer), the answer is written if the socket takes
/// it at once, and the connection is closed.
fn refuse_plain(tcp: &TcpStream, kind: EdgeRefusal) {
    let (status, why) = match kind {
        EdgeRefusal::MaxConnectionsPerIp => (
            "429 Too Many Requests",
            "Too Many Requests: too many open connections from this address (listen.max_connections_per_ip)\n",
        ),
        _ => (
            "503 Service Unavailable",
            "Service Unavailable: too many open connections (listen.max_connections)\n",
        ),
    };
    let mut scratch = [0u8; 4096];
    let _ = tcp.try_read(&mut scratch);
    let response = format!(
        "HTTP/1.1 {status}\r\nretry-after: {RETRY_AFTER_SECS}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{why}",
        why.len()
    );
    let _ = tcp.try_write(response.as_bytes());
}

// ---------------------------------------------------------------- reporting

/// Counts a refusal, and logs it unless one of its kind was logged less
/// than [`REPORT_EVERY`] ago (the next line says how many were not).
pub(crate) fn report(metrics: &Metrics, kind: EdgeRefusal, client: Option<IpAddr>) {
    metrics.edge_refusal(kind);
    static LOGGED: OnceLock<Mutex<HashMap<EdgeRefusal, (Instant, u64)>>> = OnceLock::new();
    let suppressed = {
        let mut logged = lock(LOGGED.get_or_init(Default::default));
        let now = Instant::now();
        match logged.get_mut(&kind) {
            Some((at, skipped)) if now.duration_since(*at) < REPORT_EVERY => {
                *skipped += 1;
                return;
            }
            Some((at, skipped)) => {
                *at = now;
                std::mem::take(skipped)
            }
            None => {
                logged.insert(kind, (now, 0));
                0
            }
        }
    };
    let client = client.map(address_key).map(|ip| ip.to_string());
    warn!(target: "audit", event = "edge.refused", kind = kind.as_str(),
          client = client.as_deref().unwrap_or(""), suppressed,
          "refused: {} (each kind is logged at most every {}s; suppressed counts the others)",
          describe(kind), REPORT_EVERY.as_secs());
}

fn describe(kind: EdgeRefusal) -> &'static str {
    match kind {
        EdgeRefusal::MaxConnections => "listen.max_connections reached",
        EdgeRefusal::MaxConnectionsPerIp => "listen.max_connections_per_ip reached",
        EdgeRefusal::HeaderTimeout => "request head not received within listen.header_timeout",
        EdgeRefusal::WriteTimeout => "client read nothing within listen.idle_timeout",
        EdgeRefusal::BodyTimeout => {
            "request body slower than listen.body_min_rate or paused over listen.body_timeout"
        }
        EdgeRefusal::MaxSessions => "gateway.max_sessions reached",
        EdgeRefusal::MaxSessionsPerPrincipal => "gateway.max_sessions_per_principal reached",
        EdgeRefusal::MaxStreamsPerPrincipal => "gateway.max_streams_per_principal reached",
        EdgeRefusal::MaxParkedPerPrincipal => "gateway.max_parked_per_principal reached",
        _ => "an edge limit",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize) -> EdgeLimits {
        EdgeLimits {
            max_connections: total,
            max_connections_per_ip: per_ip,
            ..EdgeLimits::default()
        }
    }

    fn io_limits(ms: u64) -> EdgeLimits {
        EdgeLimits {
            header_timeout: Duration::from_millis(ms),
            idle_timeout: Duration::from_millis(ms),
            ..EdgeLimits::default()
        }
    }

    fn edge_io(
        limits: EdgeLimits,
    ) -> (
        EdgeIo<tokio::io::DuplexStream>,
        tokio::io::DuplexStream,
        Arc<ConnWatch>,
    ) {
        let (server, client) = tokio::io::duplex(64);
        let watch = Arc::new(ConnWatch::default());
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let io = EdgeIo::new(server, watch.clone(), limits, Metrics::new(), peer);
        (io, client, watch)
    }

    /// A bound on a test that would otherwise hang; not a timing claim.
    const HANG: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn a_head_that_keeps_trickling_is_cut_at_the_header_timeout() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut io, mut client, _) = edge_io(io_limits(200));
        let trickle = tokio::spawn(async move {
            for b in b"POST /mcp HTTP/1.1\r\nHost: x\r\n".iter().cycle() {
                if client.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let mut buf = [0u8; 64];
        let cut = tokio::time::timeout(HANG, async {
            loop {
                match io.read(&mut buf).await {
                    Ok(n) => assert!(n > 0, "a head in progress never reads as closed"),
                    Err(e) => return e,
                }
            }
        })
        .await
        .expect("the head was never cut");
        assert_eq!(cut.kind(), io::ErrorKind::TimedOut);
        trickle.abort();
    }

    #[tokio::test]
    async fn between_requests_an_idle_connection_reads_as_closed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut io, mut client, watch) = edge_io(io_limits(100));
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(io.read(&mut buf).await.unwrap() > 0);
        // A request runs longer than any deadline, then ends.
        let request = Busy::start(&watch);
        let busy = tokio::time::timeout(Duration::from_millis(300), io.read(&mut buf)).await;
        assert!(
            busy.is_err(),
            "a connection with a request in progress was cut"
        );
        drop(request);
        let n = tokio::time::timeout(HANG, io.read(&mut buf))
            .await
            .expect("the idle connection was kept")
            .expect("an idle close is not an error");
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn a_client_that_reads_no_response_is_cut() {
        use tokio::io::AsyncWriteExt;
        let (mut io, _client, _) = edge_io(io_limits(100));
        let stalled = tokio::time::timeout(HANG, io.write_all(&[b'x'; 4096]))
            .await
            .expect("the stalled write was never cut");
        assert_eq!(
            stalled.expect_err("nobody read").kind(),
            io::ErrorKind::TimedOut
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn connections_beyond_a_cap_are_refused_and_slots_come_back() {
        let table = Arc::new(Connections::new(limits(3, 2), Metrics::new()));
        let one: IpAddr = "127.0.0.1".parse().unwrap();
        let two: IpAddr = "127.0.0.2".parse().unwrap();
        let a = table.admit(one).unwrap();
        let _b = table.admit(one).unwrap();
        assert_eq!(
            table.admit(one).err(),
            Some(EdgeRefusal::MaxConnectionsPerIp)
        );
        let _c = table.admit(two).unwrap();
        assert_eq!(table.admit(two).err(), Some(EdgeRefusal::MaxConnections));
        drop(a);
        let _d = table.admit(one).expect("a freed slot is reusable");
        assert_eq!(lock(&table.open).per_ip.len(), 2);
    }
}
