//! The DPoP replay cache: the seam between the proof check and where proof
//! ids are remembered. [`MemoryReplayCache`] serves one replica;
//! [`RedisReplayCache`] is shared by every replica behind a load balancer,
//! so a proof accepted by one is refused as a replay by the others (T07).
//!
//! Both fail closed: when the store cannot answer (full, unreachable, slow)
//! the insert is an error and the proof is refused, never accepted
//! unchecked.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::jws::b64;

/// Remembers DPoP proof ids so a proof is accepted once.
///
/// Keys are SHA-256 digests of (key thumbprint, `jti`), never the proof.
#[async_trait]
pub trait ReplayCache: Send + Sync + 'static {
    /// Record `key` for `ttl`. `Ok(true)` when it was new, `Ok(false)` when
    /// it was already recorded (a replay). An `Err` fails the request closed.
    async fn insert_if_absent(
        &self,
        key: [u8; 32],
        ttl: Duration,
    ) -> Result<bool, ReplayCacheError>;
}

/// The replay cache could not answer (full, or its backend is down or
/// slow). The reason is a fixed code (`full`, `redis_timeout`, …), never
/// backend text: it may be logged but holds no address or secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replay cache unavailable: {0}")]
pub struct ReplayCacheError(pub &'static str);

// ----- memory ---------------------------------------------------------------

/// [`ReplayCache`] in this process's memory, bounded. When it is full of
/// live entries it refuses (fails closed) rather than forgetting a proof
/// that could then be replayed.
pub struct MemoryReplayCache {
    entries: Mutex<HashMap<[u8; 32], Instant>>,
    capacity: usize,
}

impl MemoryReplayCache {
    pub fn new(capacity: usize) -> Self {
        MemoryReplayCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }
}

#[async_trait]
impl ReplayCache for MemoryReplayCache {
    async fn insert_if_absent(
        &self,
        key: [u8; 32],
        ttl: Duration,
    ) -> Result<bool, ReplayCacheError> {
        let now = Instant::now();
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| ReplayCacheError("poisoned"))?;
        if let Some(until) = entries.get(&key) {
            if *until > now {
                return Ok(false);
            }
        }
        if entries.len() >= self.capacity {
            entries.retain(|_, until| *until > now);
            if entries.len() >= self.capacity {
                return Err(ReplayCacheError("full"));
            }
        }
        entries.insert(key, now + ttl);
        Ok(true)
    }
}

// ----- redis ----------------------------------------------------------------

/// [`ReplayCache`] in Redis, shared by replicas: one `SET <prefix><key> 1 NX
/// PX <ttl>` per proof, which is atomic, so of two replicas racing with the
/// same proof exactly one wins.
///
/// The connection is a [`redis::aio::ConnectionManager`]: made lazily (a
/// replica starts while Redis is down; DPoP requests are refused until it
/// is up) and re-made after a connection error. Every command is bounded by
/// `timeout`; past it the proof is refused.
///
/// `Debug` does not print the URL (it may hold a password).
pub struct RedisReplayCache {
    connection: redis::aio::ConnectionManager,
    prefix: String,
    timeout: Duration,
}

impl fmt::Debug for RedisReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayCache")
            .field("url", &"[redacted]")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisReplayCache {
    /// A cache on the Redis at `url` (`redis://[:password@]host:port/db`),
    /// keys under `prefix`. Does not connect yet; must be called inside a
    /// Tokio runtime. The error never contains the URL.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, ReplayCacheError> {
        let client = redis::Client::open(url).map_err(|_| ReplayCacheError("invalid_url"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Few, quick retries: requests wait at most `timeout` anyway,
            // and each request after a failed reconnect starts another one.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let connection = redis::aio::ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|_| ReplayCacheError("redis_client"))?;
        Ok(RedisReplayCache {
            connection,
            prefix: prefix.to_owned(),
            timeout,
        })
    }

    /// `PING`, bounded by the timeout: whether Redis answers now.
    pub async fn ping(&self) -> Result<(), ReplayCacheError> {
        let mut connection = self.connection.clone();
        let cmd = redis::cmd("PING");
        match tokio::time::timeout(
            self.timeout,
            cmd.query_async::<redis::Value>(&mut connection),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(redis_error(&e)),
            Err(_) => Err(ReplayCacheError("redis_timeout")),
        }
    }

    fn key(&self, key: &[u8; 32]) -> String {
        format!("{}{}", self.prefix, b64(key))
    }
}

#[async_trait]
impl ReplayCache for RedisReplayCache {
    async fn insert_if_absent(
        &self,
        key: [u8; 32],
        ttl: Duration,
    ) -> Result<bool, ReplayCacheError> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&key))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis);
        let mut connection = self.connection.clone();
        let reply = tokio::time::timeout(
            self.timeout,
            cmd.query_async::<redis::Value>(&mut connection),
        )
        .await;
        match reply {
            Ok(Ok(redis::Value::Okay)) => Ok(true),
            Ok(Ok(redis::Value::SimpleString(s))) if s == "OK" => Ok(true),
            Ok(Ok(redis::Value::Nil)) => Ok(false),
            Ok(Ok(_)) => Err(ReplayCacheError("redis_reply")),
            Ok(Err(e)) => Err(redis_error(&e)),
            Err(_) => Err(ReplayCacheError("redis_timeout")),
        }
    }
}

/// A fixed code for a Redis error: its text may name the server.
fn redis_error(e: &redis::RedisError) -> ReplayCacheError {
    if e.is_timeout() {
        ReplayCacheError("redis_timeout")
    } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        ReplayCacheError("redis_unreachable")
    } else {
        ReplayCacheError("redis_error")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_refuses_twice_and_fails_closed_when_full() {
        let cache = MemoryReplayCache::new(2);
        let ttl = Duration::from_secs(60);
        assert_eq!(cache.insert_if_absent([1; 32], ttl).await, Ok(true));
        assert_eq!(cache.insert_if_absent([1; 32], ttl).await, Ok(false));
        assert_eq!(cache.insert_if_absent([2; 32], ttl).await, Ok(true));
        assert!(cache.insert_if_absent([3; 32], ttl).await.is_err());
    }

    #[tokio::test]
    async fn memory_forgets_after_the_ttl() {
        let cache = MemoryReplayCache::new(1);
        let ttl = Duration::from_millis(30);
        assert_eq!(cache.insert_if_absent([1; 32], ttl).await, Ok(true));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(cache.insert_if_absent([1; 32], ttl).await, Ok(true));
    }

    #[tokio::test]
    async fn redis_debug_and_errors_never_show_the_url() {
        let url = "redis://:hunter2hunter2@127.0.0.1:1/0";
        let cache =
            RedisReplayCache::new(url, "p:", Duration::from_millis(100)).expect("valid URL");
        let debug = format!("{cache:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        let err = cache
            .insert_if_absent([1; 32], Duration::from_secs(1))
            .await
            .expect_err("nothing listens on port 1");
        assert!(!err.to_string().contains("hunter2"));
        assert!(
            matches!(err.0, "redis_unreachable" | "redis_timeout"),
            "{err}"
        );
        assert_eq!(
            RedisReplayCache::new("http://x", "p:", Duration::from_secs(1)).map(|_| ()),
            Err(ReplayCacheError("invalid_url"))
        );
    }
}
