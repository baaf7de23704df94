//! Issuers' verification keys: discovery, JWKS fetch, background refresh
//! and retry, and the bounded, rate-limited refresh on an unknown `kid`.
//!
//! Invariants:
//! - Keys come only from the issuer's configured (or discovered) JWKS, its
//!   JWKS file, or the development key; never from a token header.
//! - The request path reads keys through one `Arc` swap; it fetches only
//!   via [`IssuerKeys::refresh_for_unknown_kid`], at most once per
//!   `min_refresh_interval` per issuer, bounded in time, and never for an
//!   issuer that is unavailable (the background task retries those).
//! - A refresh that drops a key bumps the issuer's generation, so verified
//!   tokens cached under the old key set are verified again.
//! - An issuer whose keys cannot be fetched does not stop Warden: it is
//!   *unavailable* (its tokens refused, `issuer_unavailable`) and retried
//!   in the background with bounded, jittered exponential backoff, and its
//!   tokens are accepted as soon as a fetch succeeds. Only configuration
//!   errors (a URL the egress policy refuses, an unreadable JWKS file) stop
//!   the start.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use url::Url;

use crate::egress::{EgressPolicy, FetchError, GuardedFetcher};
use crate::error::{IdentityError, IssuerErrorClass};
use crate::jws::{strict_json, JwkError, PublicJwk, SigningAlgorithm};
use crate::settings::{IssuerSettings, KeySource};

/// Most keys accepted from one JWKS.
const MAX_KEYS: usize = 64;
/// How long a request may wait for an unknown-`kid` refresh.
const REQUEST_REFRESH_BOUND: Duration = Duration::from_secs(3);
/// Timeout of each background and start-up fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long start waits for an issuer's first load (discovery and JWKS)
/// before going on without it.
const START_BOUND: Duration = Duration::from_secs(10);
/// First retry after a failed fetch; doubled per consecutive failure.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between retries while an issuer has no keys at all.
const RETRY_MAX_UNAVAILABLE: Duration = Duration::from_secs(60);
/// Longest wait between retries while an issuer serves its last keys.
const RETRY_MAX_STALE: Duration = Duration::from_secs(300);

/// One issuer's state, for readiness endpoints and metrics
/// ([`crate::Authenticator::issuer_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuerStatus {
    /// The configured `name` (the namespace of principal keys).
    pub name: String,
    /// The issuer identifier (`iss`).
    pub issuer: String,
    pub state: IssuerState,
    /// Why the last fetch failed; `None` after a success. Set on a ready
    /// issuer, it means its keys are not being refreshed (it still
    /// verifies with the keys it has).
    pub last_error: Option<IssuerErrorClass>,
    /// Fetches failed in a row since the last success.
    pub consecutive_failures: u32,
    /// Keys in the current set.
    pub keys: usize,
    /// When keys were last fetched successfully (`None`: never, or keys
    /// that are not fetched: a JWKS file, the development key).
    pub last_success: Option<SystemTime>,
}

impl IssuerStatus {
    /// Whether this issuer's tokens can be verified.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.state == IssuerState::Ready
    }
}

/// Whether an issuer's tokens can be verified now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssuerState {
    /// Keys are loaded; tokens are verified.
    Ready,
    /// No keys could be fetched yet: its tokens are refused
    /// (`issuer_unavailable`) while the fetch is retried.
    Unavailable {
        /// Since the first failed attempt (at start).
        since: SystemTime,
    },
}

/// Where a fetched issuer's keys come from.
struct Remote {
    fetcher: GuardedFetcher,
    /// The issuer URL when the JWKS is found by discovery.
    discovery: Option<Url>,
    /// The JWKS URL: configured, or discovered (`None` until discovery
    /// succeeds).
    jwks_uri: Mutex<Option<Url>>,
}

#[derive(Debug, Default)]
struct Health {
    /// `None` while the issuer has keys.
    unavailable_since: Option<SystemTime>,
    last_error: Option<IssuerErrorClass>,
    failures: u32,
    last_success: Option<SystemTime>,
}

/// One issuer's current key set.
pub(crate) struct IssuerKeys {
    pub settings: IssuerSettings,
    /// `None` for keys that are not fetched (JWKS file, development key).
    remote: Option<Remote>,
    keys: RwLock<Arc<Vec<PublicJwk>>>,
    /// Whether a key set is loaded (read on every verification).
    ready: AtomicBool,
    /// Bumped whenever a refresh removes a key.
    generation: AtomicU64,
    /// Serialises fetches; holds the time of the last attempt.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    health: Mutex<Health>,
}

impl IssuerKeys {
    /// Resolve where the keys are and try to load them once, for at most
    /// [`START_BOUND`]. A failed first load leaves the issuer unavailable
    /// (logged; [`IssuerKeys::run_refresher`] retries); only configuration
    /// errors fail: a URL the egress policy refuses, an unreadable or
    /// unusable JWKS file, a missing development key.
    pub(crate) async fn start(
        settings: IssuerSettings,
        egress: EgressPolicy,
        dev_keys: Option<Vec<PublicJwk>>,
    ) -> Result<Arc<IssuerKeys>, IdentityError> {
        let policy = crate::egress::for_issuer(egress, settings.allow_private_network);
        let (remote, initial) = match &settings.keys {
            KeySource::Dev => {
                let keys = dev_keys.ok_or_else(|| IdentityError::Issuer {
                    issuer: settings.issuer.clone(),
                    reason: "development key not loaded".to_owned(),
                })?;
                (None, keys)
            }
            KeySource::File(path) => {
                let bytes = crate::settings::read_small_file(path)
                    .map_err(|reason| IdentityError::file(path, reason))?;
                (None, parse_jwks(&bytes, &settings.issuer)?)
            }
            KeySource::JwksUri(uri) => {
                let fetcher = GuardedFetcher::new(policy, FETCH_TIMEOUT)?;
                fetcher.check_url(uri)?;
                let remote = Remote {
                    fetcher,
                    discovery: None,
                    jwks_uri: Mutex::new(Some(uri.clone())),
                };
                (Some(remote), Vec::new())
            }
            KeySource::Discovery(issuer_url) => {
                let fetcher = GuardedFetcher::new(policy, FETCH_TIMEOUT)?;
                for location in discovery_locations(issuer_url) {
                    fetcher.check_url(&location)?;
                }
                let remote = Remote {
                    fetcher,
                    discovery: Some(issuer_url.clone()),
                    jwks_uri: Mutex::new(None),
                };
                (Some(remote), Vec::new())
            }
        };
        let ready = !initial.is_empty();
        let count = initial.len();
        let keys = Arc::new(IssuerKeys {
            settings,
            remote,
            keys: RwLock::new(Arc::new(initial)),
            ready: AtomicBool::new(ready),
            generation: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(None),
            health: Mutex::new(Health::default()),
        });
        if keys.remote.is_none() {
            tracing::info!(issuer = %keys.settings.issuer, keys = count, "issuer keys loaded");
            return Ok(keys);
        }
        let started = SystemTime::now();
        let first = {
            let mut last = keys.refresh.lock().await;
            *last = Some(Instant::now());
            match tokio::time::timeout(START_BOUND, keys.load()).await {
                Ok(result) => result,
                Err(_) => Err(FetchError {
                    class: IssuerErrorClass::Timeout,
                    detail: format!("no keys within {}s", START_BOUND.as_secs()),
                }),
            }
        };
        match first {
            Ok(count) => keys.succeeded(count),
            Err(e) => {
                keys.failed(&e, started);
                tracing::error!(
                    issuer = %keys.settings.issuer,
                    class = e.class.code(),
                    error = %e,
                    "issuer unavailable at start: its tokens are refused until its keys can be fetched (retrying in the background)"
                );
            }
        }
        Ok(keys)
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether a key set is loaded, so this issuer's tokens can be verified.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub(crate) fn current(&self) -> Arc<Vec<PublicJwk>> {
        match self.keys.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// This issuer's state now.
    pub(crate) fn status(&self) -> IssuerStatus {
        let health = self.health();
        IssuerStatus {
            name: self.settings.name.clone(),
            issuer: self.settings.issuer.clone(),
            state: match (self.is_ready(), health.unavailable_since) {
                (false, Some(since)) => IssuerState::Unavailable { since },
                (false, None) => IssuerState::Unavailable {
                    since: SystemTime::now(),
                },
                (true, _) => IssuerState::Ready,
            },
            last_error: health.last_error,
            consecutive_failures: health.failures,
            keys: self.current().len(),
            last_success: health.last_success,
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        match self.health.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Keys that may verify a token with this `kid` and `alg`. Without a
    /// `kid`, every key of the set that fits the algorithm (bounded by
    /// [`MAX_KEYS`]).
    pub(crate) fn candidates(&self, kid: Option<&str>, alg: SigningAlgorithm) -> Vec<PublicJwk> {
        self.current()
            .iter()
            .filter(|k| match kid {
                Some(kid) => k.kid.as_deref() == Some(kid),
                None => true,
            })
            .filter(|k| k.fits(alg))
            .cloned()
            .collect()
    }

    fn install(&self, keys: Vec<PublicJwk>) {
        let old = self.current();
        let dropped = old.iter().any(|o| {
            !keys
                .iter()
                .any(|n| n.kid == o.kid && n.material == o.material)
        });
        let count = keys.len();
        match self.keys.write() {
            Ok(mut guard) => *guard = Arc::new(keys),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
        }
        if dropped {
            self.generation.fetch_add(1, Ordering::AcqRel);
            tracing::info!(issuer = %self.settings.issuer, keys = count, "issuer keys rotated; a key was removed");
        }
        self.ready.store(true, Ordering::Release);
    }

    /// Discover the JWKS URL if it is not known yet, fetch the JWKS and
    /// install it. The caller holds `refresh`. Returns the number of keys.
    async fn load(&self) -> Result<usize, FetchError> {
        let Some(remote) = &self.remote else {
            return Ok(self.current().len());
        };
        let known = match remote.jwks_uri.lock() {
            Ok(uri) => uri.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let uri = match (known, &remote.discovery) {
            (Some(uri), _) => uri,
            (None, Some(issuer_url)) => {
                let uri =
                    discover_jwks_uri(&remote.fetcher, issuer_url, &self.settings.issuer).await?;
                match remote.jwks_uri.lock() {
                    Ok(mut slot) => *slot = Some(uri.clone()),
                    Err(poisoned) => *poisoned.into_inner() = Some(uri.clone()),
                }
                uri
            }
            (None, None) => {
                return Err(FetchError {
                    class: IssuerErrorClass::InvalidDocument,
                    detail: "no JWKS URL".to_owned(),
                })
            }
        };
        let keys = fetch_jwks(&remote.fetcher, &uri, &self.settings.issuer).await?;
        let count = keys.len();
        self.install(keys);
        Ok(count)
    }

    /// Record a successful load; log the first one, and a recovery.
    fn succeeded(&self, count: usize) {
        let (recovered, first) = {
            let mut health = self.health();
            let recovered = health.unavailable_since.take();
            let first = health.last_success.is_none();
            health.last_error = None;
            health.failures = 0;
            health.last_success = Some(SystemTime::now());
            (recovered, first)
        };
        let jwks_uri = self.remote.as_ref().and_then(|r| match r.jwks_uri.lock() {
            Ok(uri) => uri.as_ref().map(Url::to_string),
            Err(_) => None,
        });
        if let Some(since) = recovered {
            let down = since.elapsed().map(|d| d.as_secs()).unwrap_or(0);
            tracing::warn!(
                issuer = %self.settings.issuer,
                keys = count,
                jwks_uri = jwks_uri.as_deref(),
                unavailable_secs = down,
                "issuer available again: its tokens are accepted"
            );
        } else if first {
            tracing::info!(issuer = %self.settings.issuer, keys = count, jwks_uri = jwks_uri.as_deref(), "issuer keys loaded");
        }
    }

    /// Record a failed load that started at `started`.
    fn failed(&self, e: &FetchError, started: SystemTime) {
        let mut health = self.health();
        health.failures = health.failures.saturating_add(1);
        health.last_error = Some(e.class);
        if !self.is_ready() && health.unavailable_since.is_none() {
            health.unavailable_since = Some(started);
        }
    }

    /// One load with its bookkeeping. The caller holds `refresh`.
    async fn attempt(&self) -> Result<(), FetchError> {
        let started = SystemTime::now();
        match self.load().await {
            Ok(count) => {
                self.succeeded(count);
                Ok(())
            }
            Err(e) => {
                self.failed(&e, started);
                Err(e)
            }
        }
    }

    /// Called on the request path when a token names a `kid` we do not
    /// have. Fetches at most once per `min_refresh_interval`; concurrent
    /// callers wait for the one fetch; nobody waits longer than
    /// [`REQUEST_REFRESH_BOUND`]. Never for an unavailable issuer: its
    /// retries are the background task's, not the requests'. Returns
    /// whether the key set may have changed (worth looking again).
    pub(crate) async fn refresh_for_unknown_kid(&self) -> bool {
        if self.remote.is_none() || !self.is_ready() {
            return false;
        }
        let seen = self.generation();
        let attempt = async {
            let mut last = self.refresh.lock().await;
            if last.is_some_and(|t| t.elapsed() < self.settings.min_refresh_interval) {
                // Someone fetched recently (perhaps while we waited): look again.
                return true;
            }
            *last = Some(Instant::now());
            match self.attempt().await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(issuer = %self.settings.issuer, class = e.class.code(), error = %e, "JWKS refresh on unknown kid failed");
                    false
                }
            }
        };
        match tokio::time::timeout(REQUEST_REFRESH_BOUND, attempt).await {
            Ok(changed) => changed || self.generation() != seen,
            Err(_) => false,
        }
    }

    /// The background task: a refresh every `refresh_interval` while all is
    /// well; after a failure, retries with exponential backoff from
    /// [`RETRY_FIRST`], jittered, up to [`RETRY_MAX_UNAVAILABLE`] while the
    /// issuer has no keys and [`RETRY_MAX_STALE`] while it serves its last
    /// ones (never longer than `refresh_interval`).
    pub(crate) async fn run_refresher(self: Arc<Self>) {
        if self.remote.is_none() {
            return;
        }
        loop {
            tokio::time::sleep(self.next_wait()).await;
            let result = {
                let mut last = self.refresh.lock().await;
                *last = Some(Instant::now());
                self.attempt().await
            };
            if let Err(e) = result {
                let retry = self.next_wait();
                if self.is_ready() {
                    tracing::warn!(issuer = %self.settings.issuer, class = e.class.code(), error = %e, retry_secs = retry.as_secs_f32(), "background JWKS refresh failed; keeping the current keys");
                } else {
                    tracing::warn!(issuer = %self.settings.issuer, class = e.class.code(), error = %e, retry_secs = retry.as_secs_f32(), "issuer still unavailable: its tokens are refused");
                }
            }
        }
    }

    /// How long until the next background attempt. Computed once per
    /// attempt: the jitter is drawn here.
    fn next_wait(&self) -> Duration {
        let interval = self.settings.refresh_interval;
        let failures = self.health().failures;
        let ready = self.is_ready();
        if ready && failures == 0 {
            return interval;
        }
        let cap = if ready {
            RETRY_MAX_STALE
        } else {
            RETRY_MAX_UNAVAILABLE
        };
        retry_delay(failures, cap.min(interval))
    }
}

/// The wait before retry number `failures` (1 = after the first failure):
/// [`RETRY_FIRST`] doubled per failure, at most `cap`, then jittered into
/// its upper half so that replicas (and issuers) that failed together do
/// not retry in step.
fn retry_delay(failures: u32, cap: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let full = RETRY_FIRST.saturating_mul(1u32 << exponent).min(cap);
    let mut random = [0u8; 4];
    // Without randomness (never in practice), no jitter: still bounded.
    let fraction = match aws_lc_rs::rand::fill(&mut random) {
        Ok(()) => f64::from(u32::from_be_bytes(random)) / f64::from(u32::MAX),
        Err(_) => 1.0,
    };
    full.mul_f64(0.5 + fraction / 2.0)
}

async fn fetch_jwks(
    fetcher: &GuardedFetcher,
    uri: &Url,
    issuer: &str,
) -> Result<Vec<PublicJwk>, FetchError> {
    match fetcher.get_json(uri).await? {
        Some(bytes) => parse_jwks(&bytes, issuer).map_err(|e| FetchError {
            class: IssuerErrorClass::InvalidDocument,
            detail: format!("{uri}: {e}"),
        }),
        None => Err(FetchError {
            class: IssuerErrorClass::HttpStatus,
            detail: format!("JWKS {uri}: HTTP status 404"),
        }),
    }
}

/// Parse a JWKS document. Keys we cannot use (encryption keys, symmetric
/// keys, unsupported curves, private keys) are skipped with a warning; a
/// set with no usable key is an error.
pub(crate) fn parse_jwks(bytes: &[u8], issuer: &str) -> Result<Vec<PublicJwk>, IdentityError> {
    let bad = |reason: &str| IdentityError::Issuer {
        issuer: issuer.to_owned(),
        reason: format!("JWKS: {reason}"),
    };
    let doc = strict_json(bytes).ok_or_else(|| bad("not a JSON object (or duplicate keys)"))?;
    let Some(Value::Array(list)) = doc.get("keys") else {
        return Err(bad("no \"keys\" array"));
    };
    let mut keys: Vec<PublicJwk> = Vec::new();
    for (i, jwk) in list.iter().enumerate() {
        match PublicJwk::from_json(jwk) {
            Ok(key) => {
                if key.kid.is_some() && keys.iter().any(|k| k.kid == key.kid) {
                    tracing::warn!(issuer, index = i, "JWKS key with a duplicate kid skipped");
                    continue;
                }
                if keys.len() == MAX_KEYS {
                    tracing::warn!(
                        issuer,
                        "JWKS has more than {MAX_KEYS} usable keys; the rest are ignored"
                    );
                    break;
                }
                keys.push(key);
            }
            Err(JwkError::NotForSignatures) => {}
            Err(JwkError::NotPublic) => {
                tracing::warn!(
                    issuer,
                    index = i,
                    "JWKS holds a private or symmetric key; skipped"
                );
            }
            Err(e) => tracing::debug!(issuer, index = i, error = ?e, "JWKS key skipped"),
        }
    }
    if keys.is_empty() {
        return Err(bad("no usable signature key"));
    }
    Ok(keys)
}

/// Where discovery looks, in order: RFC 8414 metadata (path-inserted
/// well-known URI), then OpenID Connect discovery (appended).
fn discovery_locations(issuer_url: &Url) -> [Url; 2] {
    let path = issuer_url.path().trim_end_matches('/');
    let mut rfc8414 = issuer_url.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    let mut oidc = issuer_url.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    [rfc8414, oidc]
}

/// The JWKS URL from the first discovery document found. The document's
/// `issuer` must equal ours exactly.
async fn discover_jwks_uri(
    fetcher: &GuardedFetcher,
    issuer_url: &Url,
    issuer: &str,
) -> Result<Url, FetchError> {
    let bad = |detail: String| FetchError {
        class: IssuerErrorClass::InvalidDocument,
        detail,
    };
    for location in discovery_locations(issuer_url) {
        let Some(bytes) = fetcher.get_json(&location).await? else {
            continue;
        };
        let doc = strict_json(&bytes)
            .ok_or_else(|| bad(format!("{location}: not a JSON object (or duplicate keys)")))?;
        match doc.get("issuer").and_then(Value::as_str) {
            Some(found) if found == issuer => {}
            _ => {
                return Err(bad(format!(
                    "{location}: its \"issuer\" is not exactly the configured issuer"
                )))
            }
        }
        let uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("{location}: no jwks_uri")))?;
        let uri = Url::parse(uri).map_err(|_| bad(format!("{location}: jwks_uri is not a URL")))?;
        fetcher.check_url(&uri).map_err(|e| FetchError {
            class: IssuerErrorClass::EgressRefused,
            detail: format!("{location}: jwks_uri: {e}"),
        })?;
        return Ok(uri);
    }
    Err(FetchError {
        class: IssuerErrorClass::HttpStatus,
        detail: format!(
            "{issuer_url}: no authorization server metadata (RFC 8414) or OpenID configuration found (404)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_bounded_and_jittered() {
        let cap = RETRY_MAX_UNAVAILABLE;
        for failures in 1..=40u32 {
            let full = RETRY_FIRST
                .saturating_mul(1u32 << (failures - 1).min(20))
                .min(cap);
            let wait = retry_delay(failures, cap);
            assert!(
                wait >= full / 2 && wait <= full,
                "retry {failures}: {wait:?} outside [{:?}, {full:?}]",
                full / 2
            );
        }
        assert!(retry_delay(1, cap) <= RETRY_FIRST);
        assert!(retry_delay(u32::MAX, cap) <= cap);
        assert!(retry_delay(3, Duration::from_secs(2)) <= Duration::from_secs(2));
        let draws: std::collections::HashSet<Duration> =
            (0..32).map(|_| retry_delay(8, cap)).collect();
        assert!(draws.len() > 1, "jittered: {draws:?}");
    }
}
