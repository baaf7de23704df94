//! The DPoP replay cache shared in Redis (T07 across replicas), against the
//! real Redis on 127.0.0.1:6379. Without it these tests print `SKIPPED` and
//! pass, unless `WARDEN_REQUIRE_SERVICES=1`; the fail-closed tests need no
//! Redis at all (they point at a closed or silent loopback port).

mod support;

use std::io::Write;
use std::net::TcpListener as StdListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{b64, now, random, DpopKey};
use warden_identity::{
    AuthError, Authenticator, EgressPolicy, MintRequest, RawDevIssuer, RawDpop, RawIdentity,
    RawRedis, RawReplayCache, RedisReplayCache, ReplayCache, RequestFacts,
};

const PUBLIC: &str = "https://warden.example.com";
const MCP: &str = "https://warden.example.com/mcp";
const REDIS: &str = "redis://127.0.0.1:6379/0";

/// Whether the real Redis answers; panics instead of skipping when
/// `WARDEN_REQUIRE_SERVICES=1`.
fn redis_available(test: &str) -> bool {
    let up = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:6379".parse().expect("address"),
        Duration::from_millis(500),
    )
    .is_ok();
    if !up {
        if std::env::var("WARDEN_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{test}: Redis on 127.0.0.1:6379 is required (WARDEN_REQUIRE_SERVICES=1) but unreachable");
        }
        eprintln!("SKIPPED {test}: no Redis on 127.0.0.1:6379 (set WARDEN_REQUIRE_SERVICES=1 to fail instead)");
    }
    up
}

/// A prefix of our own per test and run: parallel tests never collide.
fn unique_prefix(test: &str) -> String {
    format!(
        "warden-test:{test}:{}:{}:",
        std::process::id(),
        b64(&random::<6>())
    )
}

fn settings(dir: &Path, url: &str, prefix: &str, max_age: &str) -> RawIdentity {
    RawIdentity {
        public_url: Some(PUBLIC.to_owned()),
        data_dir: Some(dir.display().to_string()),
        dev_issuer: Some(RawDevIssuer::default()),
        leeway: Some("0s".to_owned()),
        dpop: Some(RawDpop {
            max_age: Some(max_age.to_owned()),
            future_leeway: Some("0s".to_owned()),
            replay_cache: Some(RawReplayCache::Redis(RawRedis {
                url: Some(url.to_owned()),
                prefix: Some(prefix.to_owned()),
                timeout: Some("300ms".to_owned()),
            })),
            ..RawDpop::default()
        }),
        ..RawIdentity::default()
    }
}

async fn start(raw: RawIdentity, dir: &Path) -> Arc<Authenticator> {
    let settings = raw.resolve(dir).expect("valid settings");
    Authenticator::start(settings, EgressPolicy::strict())
        .await
        .expect("starts (Redis is connected lazily)")
}

fn bound_token(auth: &Authenticator, key: &DpopKey) -> String {
    auth.dev_issuer()
        .expect("dev issuer")
        .mint_with(&MintRequest {
            subject: "alice",
            ttl: Duration::from_secs(300),
            audience: MCP,
            dpop_jkt: Some(&key.thumbprint),
            ..MintRequest::default()
        })
        .expect("token")
}

async fn present(
    auth: &Authenticator,
    token: &str,
    proof: &str,
) -> Result<warden_identity::Principal, AuthError> {
    let header = format!("DPoP {token}");
    let facts = RequestFacts {
        method: "POST",
        url: MCP,
        authorization: Some(&header),
        dpop: Some(proof),
        ..RequestFacts::default()
    };
    auth.authenticate(&facts).await
}

async fn redis_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis")
}

#[tokio::test]
async fn a_proof_accepted_by_one_replica_is_a_replay_at_another() {
    if !redis_available("a_proof_accepted_by_one_replica_is_a_replay_at_another") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = unique_prefix("replicas");
    let replica_a = start(settings(dir.path(), REDIS, &prefix, "60s"), dir.path()).await;
    // Same data directory: the same development key, as replicas sharing
    // an issuer would.
    let replica_b = start(settings(dir.path(), REDIS, &prefix, "60s"), dir.path()).await;
    let key = DpopKey::generate();
    let token = bound_token(&replica_a, &key);
    let proof = key.proof("POST", MCP, Some(&token), now(), None);

    let p = present(&replica_a, &token, &proof)
        .await
        .expect("first use accepted");
    assert_eq!(p.subject(), "alice");
    assert_eq!(
        present(&replica_b, &token, &proof).await,
        Err(AuthError::DpopInvalid("replay")),
        "the other replica refuses the same proof"
    );
    assert_eq!(
        present(&replica_a, &token, &proof).await,
        Err(AuthError::DpopInvalid("replay"))
    );
    let fresh = key.proof("POST", MCP, Some(&token), now(), None);
    present(&replica_b, &token, &fresh)
        .await
        .expect("a fresh proof is fine at either replica");

    // What is stored: hashed keys under our prefix, never the proof, each
    // expiring with the acceptance window (60s max_age + 0s future_leeway).
    let mut redis = redis_connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut redis)
        .await
        .expect("KEYS");
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in &keys {
        assert!(!k.contains(&proof) && !k.contains(&fresh));
        assert_eq!(
            k.len(),
            prefix.len() + 43,
            "prefix + base64url(SHA-256): {k}"
        );
        let ttl: i64 = redis::cmd("PTTL")
            .arg(k)
            .query_async(&mut redis)
            .await
            .expect("PTTL");
        assert!((1..=60_000).contains(&ttl), "{ttl}");
    }
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .expect("clean up");
}

#[tokio::test]
async fn entries_expire_with_the_window() {
    if !redis_available("entries_expire_with_the_window") {
        return;
    }
    let prefix = unique_prefix("expiry");
    let cache =
        RedisReplayCache::new(REDIS, &prefix, Duration::from_millis(500)).expect("valid URL");
    cache.ping().await.expect("Redis answers");
    let ttl = Duration::from_millis(300);
    assert_eq!(cache.insert_if_absent([7; 32], ttl).await, Ok(true));
    assert_eq!(cache.insert_if_absent([7; 32], ttl).await, Ok(false));
    assert_eq!(cache.insert_if_absent([8; 32], ttl).await, Ok(true));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        cache.insert_if_absent([7; 32], ttl).await,
        Ok(true),
        "forgotten after its window"
    );

    // Through the authenticator: a 1 s window; the replay is refused as a
    // replay while the proof is fresh, and as stale (`iat`) after, so
    // forgetting it then is safe.
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = unique_prefix("window");
    let auth = start(settings(dir.path(), REDIS, &prefix, "1s"), dir.path()).await;
    let key = DpopKey::generate();
    let token = bound_token(&auth, &key);
    let proof = key.proof("POST", MCP, Some(&token), now(), None);
    present(&auth, &token, &proof).await.expect("accepted");
    assert_eq!(
        present(&auth, &token, &proof).await,
        Err(AuthError::DpopInvalid("replay"))
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut redis = redis_connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut redis)
        .await
        .expect("KEYS");
    assert!(keys.is_empty(), "expired from Redis: {keys:?}");
    assert_eq!(
        present(&auth, &token, &proof).await,
        Err(AuthError::DpopInvalid("iat"))
    );
}

/// Log lines, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

fn closed_port() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test]
async fn redis_down_refuses_dpop_with_its_own_code_and_logs_once() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("redis://:hunter2hunter2@127.0.0.1:{}/0", closed_port());
    let raw = settings(dir.path(), "env:WARDEN_TEST_REDIS_URL", "p:", "60s");
    let settings = raw
        .resolve_with_env(dir.path(), &|name| {
            (name == "WARDEN_TEST_REDIS_URL").then(|| url.clone().into())
        })
        .expect("valid");
    let auth = Authenticator::start(settings, EgressPolicy::strict())
        .await
        .expect("starts while Redis is down");
    let key = DpopKey::generate();
    let token = bound_token(&auth, &key);
    for _ in 0..3 {
        let proof = key.proof("POST", MCP, Some(&token), now(), None);
        assert_eq!(
            present(&auth, &token, &proof).await,
            Err(AuthError::ReplayCacheUnavailable),
            "fail closed"
        );
    }
    let err = AuthError::ReplayCacheUnavailable;
    assert_eq!(err.code(), "replay_cache_unavailable");
    let (status, headers) = auth.challenge(&err, "/mcp");
    assert_eq!(status, 503);
    assert_eq!(headers, vec![("Retry-After".to_owned(), "1".to_owned())]);

    // Tokens without DPoP do not need the cache.
    let plain = auth
        .dev_issuer()
        .expect("dev")
        .mint("bob", &[], &[], Duration::from_secs(60), MCP)
        .expect("token");
    let header = format!("Bearer {plain}");
    let facts = RequestFacts {
        method: "POST",
        url: MCP,
        authorization: Some(&header),
        ..RequestFacts::default()
    };
    assert_eq!(
        auth.authenticate(&facts).await.expect("bearer").subject(),
        "bob"
    );

    let text = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf-8");
    let outages = text
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("replay cache unavailable"))
        .count();
    assert_eq!(
        outages, 1,
        "one log line per outage, not per request:\n{text}"
    );
    assert!(
        !text.contains("hunter2"),
        "the URL's password leaked:\n{text}"
    );
    assert!(!text.contains(&token[..40]), "a token leaked:\n{text}");
}

#[tokio::test]
async fn a_silent_redis_times_out_and_refuses() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("redis://127.0.0.1:{port}/0");
    let auth = start(settings(dir.path(), &url, "p:", "60s"), dir.path()).await;
    let key = DpopKey::generate();
    let token = bound_token(&auth, &key);
    let proof = key.proof("POST", MCP, Some(&token), now(), None);
    let started = std::time::Instant::now();
    assert_eq!(
        present(&auth, &token, &proof).await,
        Err(AuthError::ReplayCacheUnavailable)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the timeout: {:?}",
        started.elapsed()
    );
    held.abort();
}

/// A loopback TCP proxy to the real Redis that can be cut and restored, to
/// stand for an outage without touching the shared Redis.
async fn redis_proxy(port: u16) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the proxy");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        // Dropped (and so every connection cut) when the task is aborted.
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            connections.spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect("127.0.0.1:6379").await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn the_cache_reconnects_after_an_outage_and_logs_its_start_and_end() {
    if !redis_available("the_cache_reconnects_after_an_outage_and_logs_its_start_and_end") {
        return;
    }
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (port, proxy) = redis_proxy(0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = unique_prefix("reconnect");
    let url = format!("redis://127.0.0.1:{port}/0");
    let auth = start(settings(dir.path(), &url, &prefix, "60s"), dir.path()).await;
    let key = DpopKey::generate();
    let token = bound_token(&auth, &key);
    let first = key.proof("POST", MCP, Some(&token), now(), None);
    present(&auth, &token, &first).await.expect("accepted");

    proxy.abort();
    let _ = proxy.await;
    for _ in 0..3 {
        let proof = key.proof("POST", MCP, Some(&token), now(), None);
        assert_eq!(
            present(&auth, &token, &proof).await,
            Err(AuthError::ReplayCacheUnavailable),
            "Redis cut off: refused"
        );
    }

    let (_, proxy) = redis_proxy(port).await;
    let mut recovered = false;
    for _ in 0..40 {
        let proof = key.proof("POST", MCP, Some(&token), now(), None);
        match present(&auth, &token, &proof).await {
            Ok(_) => {
                recovered = true;
                break;
            }
            Err(AuthError::ReplayCacheUnavailable) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(recovered, "reconnected once Redis was reachable again");
    assert_eq!(
        present(&auth, &token, &first).await,
        Err(AuthError::DpopInvalid("replay")),
        "what was remembered before the outage still counts"
    );
    proxy.abort();

    let text = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf-8");
    let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("DPoP replay cache unavailable"), 1, "{text}");
    assert_eq!(count("DPoP replay cache answering again"), 1, "{text}");
}
