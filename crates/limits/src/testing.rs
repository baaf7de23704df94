//! Test support (feature `test-util`): whether the real Redis is there
//! (tests skip without it, or fail with `WARDEN_REQUIRE_SERVICES=1`), key
//! prefixes of their own for tests, and a loopback TCP proxy to the real
//! Redis that can stall (hold every byte, connections open) and drop
//! (close every connection, and each new one at once), to test the fail
//! modes of the Redis backend without touching the shared Redis.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The real Redis of the tests.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";
const REDIS_ADDR: &str = "127.0.0.1:6379";

/// Whether the real Redis accepts connections. Without it, prints that
/// `test` is skipped, or panics when `WARDEN_REQUIRE_SERVICES=1`.
pub fn redis_available(test: &str) -> bool {
    let up = REDIS_ADDR.parse().is_ok_and(|addr| {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
    });
    if !up {
        if std::env::var("WARDEN_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{test}: Redis on {REDIS_ADDR} is required (WARDEN_REQUIRE_SERVICES=1) but unreachable");
        }
        eprintln!("SKIPPED {test}: no Redis on {REDIS_ADDR} (set WARDEN_REQUIRE_SERVICES=1 to fail instead)");
    }
    up
}

/// A key prefix of `test` and this run (at most 64 characters, as
/// `limits.redis.prefix` wants): parallel tests never collide.
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let test: String = test.chars().take(32).collect();
    format!("warden-test:{test}:{}:{nanos:x}", std::process::id())
}

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    Forward,
    /// Bytes are read and held, not forwarded, until the mode changes.
    Stall,
    /// Every connection is closed; new ones are closed once accepted.
    Drop,
}

/// A proxy on `127.0.0.1:<port>` to `target`; stopped when dropped.
pub struct RedisProxy {
    port: u16,
    mode: watch::Sender<ProxyMode>,
    /// Reads from clients forwarded to Redis (one per request sent alone).
    requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl RedisProxy {
    /// Starts forwarding to the real Redis.
    pub async fn to_redis() -> std::io::Result<RedisProxy> {
        let target = REDIS_ADDR
            .parse()
            .map_err(|_| std::io::Error::other("address"))?;
        RedisProxy::start(target).await
    }

    /// Starts forwarding to `target` (a loopback address).
    pub async fn start(target: SocketAddr) -> std::io::Result<RedisProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (mode, watching) = watch::channel(ProxyMode::Forward);
        let requests = Arc::new(AtomicU64::new(0));
        let counted = requests.clone();
        let task = tokio::spawn(async move {
            // Dropped, with every connection, when the task is aborted.
            let mut connections = JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                if *watching.borrow() == ProxyMode::Drop {
                    drop(inbound);
                    continue;
                }
                connections.spawn(serve(inbound, target, watching.clone(), counted.clone()));
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(RedisProxy {
            port,
            mode,
            requests,
            task,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// How many reads from clients were forwarded to Redis so far: one
    /// per request (or pipeline) a client sent and waited for.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn set(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for RedisProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut inbound: TcpStream,
    target: SocketAddr,
    mode: watch::Receiver<ProxyMode>,
    requests: Arc<AtomicU64>,
) {
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    let (mut from_client, mut to_client) = inbound.split();
    let (mut from_server, mut to_server) = outbound.split();
    let mut dropped = mode.clone();
    tokio::select! {
        () = pump(&mut from_client, &mut to_server, mode.clone(), Some(&requests)) => {}
        () = pump(&mut from_server, &mut to_client, mode, None) => {}
        _ = dropped.wait_for(|m| *m == ProxyMode::Drop) => {}
    }
}

async fn pump(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    mut mode: watch::Receiver<ProxyMode>,
    count: Option<&AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        match mode.wait_for(|m| *m != ProxyMode::Stall).await {
            Ok(m) if *m == ProxyMode::Forward => {}
            _ => return,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if let Some(count) = count {
            count.fetch_add(1, Ordering::SeqCst);
        }
    }
}
