//! Issuers' verification keys: discovery, JWKS fetch, background refresh,
//! and the bounded, rate-limited refresh on an unknown `kid`.
//!
//! Invariants:
//! - Keys come only from the issuer's configured (or discovered) JWKS, its
//!   JWKS file, or the development key; never from a token header.
//! - The request path reads keys through one `Arc` swap; it fetches only
//!   via [`IssuerKeys::refresh_for_unknown_kid`], at most once per
//!   `min_refresh_interval` per issuer, bounded in time.
//! - A refresh that drops a key bumps the issuer's generation, so verified
//!   tokens cached under the old key set are verified again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use url::Url;

use crate::egress::{EgressPolicy, GuardedFetcher};
use crate::error::IdentityError;
use crate::jws::{strict_json, JwkError, PublicJwk, SigningAlgorithm};
use crate::settings::{IssuerSettings, KeySource};

/// Most keys accepted from one JWKS.
const MAX_KEYS: usize = 64;
/// How long a request may wait for an unknown-`kid` refresh.
const REQUEST_REFRESH_BOUND: Duration = Duration::from_secs(3);
/// Timeout of background and start-up fetches.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One issuer's current key set.
pub(crate) struct IssuerKeys {
    pub settings: IssuerSettings,
    jwks_uri: Option<Url>,
    fetcher: Option<GuardedFetcher>,
    keys: RwLock<Arc<Vec<PublicJwk>>>,
    /// Bumped whenever a refresh removes a key.
    generation: AtomicU64,
    /// Serialises fetches; holds the time of the last attempt.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    last_success: Mutex<Option<Instant>>,
}

impl IssuerKeys {
    /// Resolve where the keys are (discovery if configured) and load them
    /// once. Fails when the first load fails: better to refuse to start
    /// than to start refusing every token.
    pub(crate) async fn start(
        settings: IssuerSettings,
        egress: EgressPolicy,
        dev_keys: Option<Vec<PublicJwk>>,
    ) -> Result<Arc<IssuerKeys>, IdentityError> {
        let policy = egress.for_issuer(settings.allow_private_network);
        let (fetcher, jwks_uri, initial) = match &settings.keys {
            KeySource::Dev => {
                let keys = dev_keys.ok_or_else(|| IdentityError::Issuer {
                    issuer: settings.issuer.clone(),
                    reason: "development key not loaded".to_owned(),
                })?;
                (None, None, keys)
            }
            KeySource::File(path) => {
                let bytes = crate::settings::read_small_file(path)
                    .map_err(|reason| IdentityError::file(path, reason))?;
                let keys = parse_jwks(&bytes, &settings.issuer)?;
                (None, None, keys)
            }
            KeySource::JwksUri(uri) => {
                let fetcher = GuardedFetcher::new(policy, FETCH_TIMEOUT)?;
                fetcher.check_url(uri)?;
                let keys = fetch_jwks(&fetcher, uri, &settings.issuer).await?;
                (Some(fetcher), Some(uri.clone()), keys)
            }
            KeySource::Discovery(issuer_url) => {
                let fetcher = GuardedFetcher::new(policy, FETCH_TIMEOUT)?;
                let uri = discover_jwks_uri(&fetcher, issuer_url, &settings.issuer).await?;
                let keys = fetch_jwks(&fetcher, &uri, &settings.issuer).await?;
                (Some(fetcher), Some(uri), keys)
            }
        };
        tracing::info!(
            issuer = %settings.issuer,
            keys = initial.len(),
            jwks_uri = jwks_uri.as_ref().map(Url::as_str),
            "issuer keys loaded"
        );
        let fetched = jwks_uri.is_some().then(Instant::now);
        Ok(Arc::new(IssuerKeys {
            settings,
            jwks_uri,
            fetcher,
            keys: RwLock::new(Arc::new(initial)),
            generation: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(fetched),
            last_success: Mutex::new(fetched),
        }))
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn current(&self) -> Arc<Vec<PublicJwk>> {
        match self.keys.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
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
        if let Ok(mut last) = self.last_success.lock() {
            *last = Some(Instant::now());
        }
    }

    async fn fetch(&self) -> Result<(), IdentityError> {
        let (Some(fetcher), Some(uri)) = (&self.fetcher, &self.jwks_uri) else {
            return Ok(());
        };
        let keys = fetch_jwks(fetcher, uri, &self.settings.issuer).await?;
        self.install(keys);
        Ok(())
    }

    /// Called on the request path when a token names a `kid` we do not
    /// have. Fetches at most once per `min_refresh_interval`; concurrent
    /// callers wait for the one fetch; nobody waits longer than
    /// [`REQUEST_REFRESH_BOUND`]. Returns whether the key set may have
    /// changed (worth looking again).
    pub(crate) async fn refresh_for_unknown_kid(&self) -> bool {
        if self.fetcher.is_none() {
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
            match self.fetch().await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(issuer = %self.settings.issuer, error = %e, "JWKS refresh on unknown kid failed");
                    false
                }
            }
        };
        match tokio::time::timeout(REQUEST_REFRESH_BOUND, attempt).await {
            Ok(changed) => changed || self.generation() != seen,
            Err(_) => false,
        }
    }

    /// The background refresher: every `refresh_interval`, or sooner after a
    /// failure (backing off from 5 s).
    pub(crate) async fn run_refresher(self: Arc<Self>) {
        if self.fetcher.is_none() {
            return;
        }
        let interval = self.settings.refresh_interval;
        let mut wait = interval;
        let mut backoff = Duration::from_secs(5);
        loop {
            tokio::time::sleep(wait).await;
            let result = {
                let mut last = self.refresh.lock().await;
                *last = Some(Instant::now());
                self.fetch().await
            };
            match result {
                Ok(()) => {
                    wait = interval;
                    backoff = Duration::from_secs(5);
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.settings.issuer, error = %e, "background JWKS refresh failed; keeping the current keys");
                    wait = backoff.min(interval);
                    backoff = (backoff * 2).min(Duration::from_secs(300));
                }
            }
        }
    }
}

async fn fetch_jwks(
    fetcher: &GuardedFetcher,
    uri: &Url,
    issuer: &str,
) -> Result<Vec<PublicJwk>, IdentityError> {
    match fetcher.get_json(uri).await? {
        Some(bytes) => parse_jwks(&bytes, issuer),
        None => Err(IdentityError::Issuer {
            issuer: issuer.to_owned(),
            reason: format!("JWKS {uri}: HTTP status 404"),
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

/// RFC 8414 metadata (path-inserted well-known URI), then OpenID Connect
/// discovery (appended). The document's `issuer` must equal ours exactly.
async fn discover_jwks_uri(
    fetcher: &GuardedFetcher,
    issuer_url: &Url,
    issuer: &str,
) -> Result<Url, IdentityError> {
    let bad = |reason: String| IdentityError::Issuer {
        issuer: issuer.to_owned(),
        reason,
    };
    let path = issuer_url.path().trim_end_matches('/');
    let mut rfc8414 = issuer_url.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    let mut oidc = issuer_url.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    for location in [rfc8414, oidc] {
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
        fetcher.check_url(&uri)?;
        return Ok(uri);
    }
    Err(bad(
        "no authorization server metadata (RFC 8414) or OpenID configuration found".to_owned(),
    ))
}
