//! The `limits:` section of `warden.yaml`: [`RawLimits`] as written (serde,
//! unknown keys refused), resolved into validated [`LimitSettings`]. Every
//! problem is collected with its path (`limits.rate[0].rate`).
//!
//! ```yaml
//! limits:
//!   rate:                        # GCRA token buckets; every matching rule must pass
//!     - id: per-principal
//!       per: [principal]         # what one bucket counts: principal, tenant, client, agent, server, tool
//!       rate: 100/min            # N/s, N/min, N/h, N/day
//!       burst: 20
//!     - id: github-writes
//!       match: {server: github, tool: "create_*"}
//!       per: [principal, tool]
//!       rate: 10/min
//!   concurrency:                 # calls in flight
//!     - {id: per-principal, per: [principal], max: 16}
//!   budgets:                     # cost per period, from servers.<s>.tools[].cost
//!     - {id: tenant-month, per: [tenant], unit: USD, limit: 500, period: month}
//!   loops: {max_repeats: 120, window: 60s}       # same principal, tool and arguments
//!   breakers: {error_rate: 0.1, p99: 2s, window: 60s, min_calls: 20, open_for: 5m}
//!   backend: redis               # memory (default) | redis: counters shared by every Warden on it
//!   redis:
//!     url: env:WARDEN_LIMITS_REDIS_URL   # or redis://127.0.0.1:6379/0 (no password inline)
//!     prefix: warden             # every key: <prefix>:rate:<rule>:<key>, …
//!     timeout: 50ms              # one decision's deadline
//!     fail: closed               # closed (refuse, -32035) | open (admit, log, count)
//!     slot_ttl: 10m              # a concurrency slot never released (crash) expires after this
//! ```
//!
//! Absent, the section means the defaults a new deployment wants: one
//! per-principal rate rule (3000/min, burst 300), at most 64 calls in
//! flight per principal, loop detection at 120 identical calls a minute,
//! no budgets, no breakers. A list given replaces its default (`rate: []`
//! turns rate limiting off).

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;

/// The `limits:` section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub rate: Option<Vec<RawRate>>,
    pub concurrency: Option<Vec<RawConcurrency>>,
    pub budgets: Option<Vec<RawBudget>>,
    pub loops: Option<RawLoops>,
    pub breakers: Option<RawBreakers>,
    /// `memory` (the default without `redis:`) or `redis`.
    pub backend: Option<String>,
    pub redis: Option<RawRedis>,
}

/// `limits.redis`. `Debug` hides the URL (it may hold a password).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// `redis://host:6379/0`; with a password only by reference:
    /// `env:NAME` or `file:PATH` holding the URL.
    pub url: Option<String>,
    /// Every key starts with `<prefix>:` (default `warden`).
    pub prefix: Option<String>,
    /// One decision's deadline (default `50ms`).
    pub timeout: Option<String>,
    /// `closed` (default) or `open`.
    pub fail: Option<String>,
    /// How long a concurrency slot is held at most when its Warden never
    /// releases it (default `10m`).
    pub slot_ttl: Option<String>,
}

impl fmt::Debug for RawRedis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRedis")
            .field("url", &self.url.as_ref().map(|_| "[redacted]"))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("fail", &self.fail)
            .field("slot_ttl", &self.slot_ttl)
            .finish()
    }
}

/// Which calls a rule applies to: globs (`*` any run of characters); an
/// absent key matches every call.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Match {
    pub principal: Option<String>,
    pub tenant: Option<String>,
    pub client: Option<String>,
    pub agent: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    pub id: Option<String>,
    #[serde(rename = "match")]
    pub matches: Option<Match>,
    pub per: Option<Vec<String>>,
    pub rate: Option<String>,
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConcurrency {
    pub id: Option<String>,
    #[serde(rename = "match")]
    pub matches: Option<Match>,
    pub per: Option<Vec<String>>,
    pub max: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    pub id: Option<String>,
    #[serde(rename = "match")]
    pub matches: Option<Match>,
    pub per: Option<Vec<String>>,
    pub unit: Option<String>,
    pub limit: Option<f64>,
    pub period: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoops {
    pub enabled: Option<bool>,
    pub max_repeats: Option<u32>,
    pub window: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreakers {
    pub enabled: Option<bool>,
    pub error_rate: Option<f64>,
    pub p99: Option<String>,
    pub window: Option<String>,
    pub min_calls: Option<u32>,
    pub open_for: Option<String>,
}

// ----- the validated form ---------------------------------------------------

/// What a rule's buckets are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Principal,
    Tenant,
    Client,
    Agent,
    Server,
    Tool,
}

impl Dimension {
    fn parse(s: &str) -> Option<Dimension> {
        Some(match s {
            "principal" => Dimension::Principal,
            "tenant" => Dimension::Tenant,
            "client" => Dimension::Client,
            "agent" => Dimension::Agent,
            "server" => Dimension::Server,
            "tool" => Dimension::Tool,
            _ => return None,
        })
    }
}

/// A token bucket: `burst` calls at once, refilled at one call per
/// `period`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRule {
    pub id: String,
    pub matches: Match,
    pub per: Vec<Dimension>,
    /// One call is replenished every `period`.
    pub period: Duration,
    pub burst: NonZeroU32,
    /// As written (`100/min`), for messages.
    pub rate_text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyRule {
    pub id: String,
    pub matches: Match,
    pub per: Vec<Dimension>,
    pub max: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BudgetRule {
    pub id: String,
    pub matches: Match,
    pub per: Vec<Dimension>,
    pub unit: String,
    pub limit: f64,
    pub period: Period,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopSettings {
    /// More identical calls than this in `window` are refused.
    pub max_repeats: NonZeroU32,
    pub window: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSettings {
    /// Open when the share of failed calls in the window exceeds this.
    pub error_rate: f64,
    /// Open when the window's 99th percentile latency exceeds this.
    pub p99: Option<Duration>,
    pub window: Duration,
    /// No verdict on fewer calls than this in the window.
    pub min_calls: u32,
    /// How long an open breaker refuses before one probe is let through.
    pub open_for: Duration,
}

/// Where the counters of rate rules, loop detection, concurrency caps and
/// budgets live. Breakers are always per process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Backend {
    /// This process's memory.
    #[default]
    Memory,
    /// One Redis shared by every Warden configured with it.
    Redis(RedisSettings),
}

/// What to do when Redis does not answer within the timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Refuse the call (`-32035`, `data.limit: "unavailable"`).
    Closed,
    /// Admit the call unlimited; log (rate-limited) and count.
    Open,
}

impl FailMode {
    pub fn name(self) -> &'static str {
        match self {
            FailMode::Closed => "closed",
            FailMode::Open => "open",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub url: RedisUrl,
    /// Keys are `<prefix>:<kind>:…`.
    pub prefix: String,
    pub timeout: Duration,
    pub fail: FailMode,
    pub slot_ttl: Duration,
}

/// The Redis URL: an `env:`/`file:` reference until the configuration
/// loader resolves it ([`LimitSettings::redis_url_reference`] →
/// [`LimitSettings::set_redis_url`]). `Debug` never prints a resolved URL.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisUrl {
    Reference(String),
    Resolved(String),
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisUrl::Reference(r) => write!(f, "Reference({r:?})"),
            RedisUrl::Resolved(_) => f.write_str("Resolved([secret])"),
        }
    }
}

/// Validated limits.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    pub rate: Vec<RateRule>,
    pub concurrency: Vec<ConcurrencyRule>,
    pub budgets: Vec<BudgetRule>,
    pub loops: Option<LoopSettings>,
    pub breakers: Option<BreakerSettings>,
    pub backend: Backend,
}

impl Default for LimitSettings {
    fn default() -> LimitSettings {
        RawLimits::default()
            .resolve()
            .unwrap_or_else(|e| panic!("built-in limits defaults are invalid: {e:?}"))
    }
}

impl LimitSettings {
    /// No limit at all (tests, benchmarks of the bare pipeline).
    pub fn none() -> LimitSettings {
        LimitSettings {
            rate: Vec::new(),
            concurrency: Vec::new(),
            budgets: Vec::new(),
            loops: None,
            breakers: None,
            backend: Backend::Memory,
        }
    }

    /// The reference to resolve when `limits.redis.url` is `env:`/`file:`:
    /// `(path in the file, reference)`.
    pub fn redis_url_reference(&self) -> Option<(&'static str, &str)> {
        match &self.backend {
            Backend::Redis(RedisSettings {
                url: RedisUrl::Reference(r),
                ..
            }) => Some(("limits.redis.url", r.as_str())),
            _ => None,
        }
    }

    /// Supplies the resolved Redis URL, checked like an inline one (a
    /// password is fine here). The error never contains the URL.
    pub fn set_redis_url(&mut self, url: String) -> Result<(), String> {
        if let Backend::Redis(redis) = &mut self.backend {
            check_redis_url(&url, true)?;
            redis.url = RedisUrl::Resolved(url);
        }
        Ok(())
    }
}

const DEFAULT_PREFIX: &str = "warden";
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
const MAX_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_SLOT_TTL: Duration = Duration::from_secs(600);

/// A Redis URL Warden can use: `redis://host[:port][/db]` (or
/// `redis+unix://`), a password only when the URL came by reference.
/// Messages never contain the URL.
fn check_redis_url(url: &str, referenced: bool) -> Result<(), String> {
    use redis::IntoConnectionInfo;
    let lower = url.trim_start().to_ascii_lowercase();
    if lower.starts_with("rediss://") {
        return Err(
            "rediss:// (TLS) is not supported by this build; use redis:// on a \
                    private network or a local TLS tunnel"
                .into(),
        );
    }
    if !(lower.starts_with("redis://") || lower.starts_with("redis+unix://")) {
        return Err("not a Redis URL (expected redis://host:6379/0)".into());
    }
    let Ok(info) = url.into_connection_info() else {
        return Err("not a usable Redis URL (expected redis://host:6379/0)".into());
    };
    if !referenced && info.redis_settings().password().is_some() {
        return Err(
            "this URL holds a password: give it by reference (env:NAME or \
                    file:PATH), not inline"
                .into(),
        );
    }
    Ok(())
}

const DEFAULT_RATE: &str = "3000/min";
const DEFAULT_BURST: u32 = 300;
const DEFAULT_CONCURRENCY: u32 = 64;
const DEFAULT_LOOP_REPEATS: u32 = 120;
const DEFAULT_LOOP_WINDOW: Duration = Duration::from_secs(60);

impl RawLimits {
    /// Validates every key and fills the defaults. Errors are
    /// `(path, message)` pairs, all of them.
    pub fn resolve(self) -> Result<LimitSettings, Vec<(String, String)>> {
        let mut r = Resolver::default();
        let rate = match self.rate {
            None => vec![RawRate {
                id: Some("per-principal".into()),
                matches: None,
                per: None,
                rate: Some(DEFAULT_RATE.into()),
                burst: Some(DEFAULT_BURST),
            }],
            Some(v) => v,
        };
        let rate = rate
            .into_iter()
            .enumerate()
            .filter_map(|(i, raw)| r.rate(i, raw))
            .collect::<Vec<_>>();
        let concurrency = match self.concurrency {
            None => vec![RawConcurrency {
                id: Some("per-principal".into()),
                matches: None,
                per: None,
                max: Some(DEFAULT_CONCURRENCY),
            }],
            Some(v) => v,
        };
        let concurrency = concurrency
            .into_iter()
            .enumerate()
            .filter_map(|(i, raw)| r.concurrency(i, raw))
            .collect::<Vec<_>>();
        let budgets = self
            .budgets
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(i, raw)| r.budget(i, raw))
            .collect::<Vec<_>>();
        let loops = r.loops(self.loops.unwrap_or_default());
        let breakers = self.breakers.and_then(|b| r.breakers(b));
        let backend = r.backend(self.backend.as_deref(), self.redis);
        for (list, ids) in [
            (
                "rate",
                rate.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            ),
            (
                "concurrency",
                concurrency.iter().map(|x| x.id.as_str()).collect(),
            ),
            ("budgets", budgets.iter().map(|x| x.id.as_str()).collect()),
        ] {
            for (i, id) in ids.iter().enumerate() {
                if ids[..i].contains(id) {
                    r.push(
                        format!("limits.{list}[{i}].id"),
                        format!("{id:?} is used twice"),
                    );
                }
            }
        }
        if r.problems.is_empty() {
            Ok(LimitSettings {
                rate,
                concurrency,
                budgets,
                loops,
                breakers,
                backend: backend.unwrap_or_default(),
            })
        } else {
            Err(r.problems)
        }
    }
}

#[derive(Default)]
struct Resolver {
    problems: Vec<(String, String)>,
}

impl Resolver {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push((path.into(), message.into()));
    }

    fn id(&mut self, path: &str, id: Option<String>) -> Option<String> {
        match id {
            Some(id)
                if !id.is_empty()
                    && id.len() <= 64
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
            {
                Some(id)
            }
            Some(_) => {
                self.push(format!("{path}.id"), "1 to 64 characters of [A-Za-z0-9._-]");
                None
            }
            None => {
                self.push(
                    format!("{path}.id"),
                    "required: it names the rule in refusals, audit records and metrics",
                );
                None
            }
        }
    }

    fn per(&mut self, path: &str, per: Option<Vec<String>>) -> Vec<Dimension> {
        let per = per.unwrap_or_else(|| vec!["principal".into()]);
        let mut out = Vec::new();
        for (i, p) in per.iter().enumerate() {
            match Dimension::parse(p) {
                Some(d) if !out.contains(&d) => out.push(d),
                Some(_) => self.push(format!("{path}.per[{i}]"), format!("{p:?} is listed twice")),
                None => self.push(
                    format!("{path}.per[{i}]"),
                    format!(
                        "{:?} is not one of principal, tenant, client, agent, server, tool",
                        truncate(p)
                    ),
                ),
            }
        }
        out
    }

    fn duration(&mut self, path: &str, text: &str) -> Option<Duration> {
        match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => Some(d),
            _ => {
                self.push(
                    path,
                    format!(
                        "{:?} is not a positive duration such as 60s or 5m",
                        truncate(text)
                    ),
                );
                None
            }
        }
    }

    fn rate(&mut self, i: usize, raw: RawRate) -> Option<RateRule> {
        let path = format!("limits.rate[{i}]");
        let id = self.id(&path, raw.id);
        let per = self.per(&path, raw.per);
        let rate_text = raw.rate.unwrap_or_default();
        let period = match parse_rate(&rate_text) {
            Some(p) => Some(p),
            None => {
                self.push(
                    format!("{path}.rate"),
                    format!(
                        "{:?} is not a rate such as 100/min (N/s, N/min, N/h, N/day; N ≥ 1)",
                        truncate(&rate_text)
                    ),
                );
                None
            }
        };
        let burst = match raw.burst.map(NonZeroU32::new) {
            None => NonZeroU32::new(1),
            Some(Some(b)) => Some(b),
            Some(None) => {
                self.push(format!("{path}.burst"), "must be at least 1");
                None
            }
        };
        Some(RateRule {
            id: id?,
            matches: raw.matches.unwrap_or_default(),
            per,
            period: period?,
            burst: burst?,
            rate_text,
        })
    }

    fn concurrency(&mut self, i: usize, raw: RawConcurrency) -> Option<ConcurrencyRule> {
        let path = format!("limits.concurrency[{i}]");
        let id = self.id(&path, raw.id);
        let per = self.per(&path, raw.per);
        let max = match raw.max {
            Some(m) if m >= 1 => Some(m),
            _ => {
                self.push(format!("{path}.max"), "required, at least 1");
                None
            }
        };
        Some(ConcurrencyRule {
            id: id?,
            matches: raw.matches.unwrap_or_default(),
            per,
            max: max?,
        })
    }

    fn budget(&mut self, i: usize, raw: RawBudget) -> Option<BudgetRule> {
        let path = format!("limits.budgets[{i}]");
        let id = self.id(&path, raw.id);
        let per = self.per(&path, raw.per);
        let unit = match raw.unit {
            Some(u)
                if !u.is_empty()
                    && u.len() <= 16
                    && u.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                Some(u)
            }
            _ => {
                self.push(
                    format!("{path}.unit"),
                    "required: a name such as USD or credits ([A-Za-z0-9], ≤ 16)",
                );
                None
            }
        };
        let limit = match raw.limit {
            Some(l) if l.is_finite() && l >= 0.0 => Some(l),
            _ => {
                self.push(format!("{path}.limit"), "required: a number ≥ 0");
                None
            }
        };
        let period = match raw.period.as_deref() {
            Some("day") => Some(Period::Day),
            None | Some("month") => Some(Period::Month),
            Some(other) => {
                self.push(
                    format!("{path}.period"),
                    format!("{:?} is not one of day, month", truncate(other)),
                );
                None
            }
        };
        Some(BudgetRule {
            id: id?,
            matches: raw.matches.unwrap_or_default(),
            per,
            unit: unit?,
            limit: limit?,
            period: period?,
        })
    }

    fn loops(&mut self, raw: RawLoops) -> Option<LoopSettings> {
        if raw.enabled == Some(false) {
            return None;
        }
        let max_repeats = match raw.max_repeats.map(NonZeroU32::new) {
            None => NonZeroU32::new(DEFAULT_LOOP_REPEATS),
            Some(Some(n)) => Some(n),
            Some(None) => {
                self.push("limits.loops.max_repeats", "must be at least 1");
                None
            }
        };
        let window = match raw.window {
            None => Some(DEFAULT_LOOP_WINDOW),
            Some(w) => self.duration("limits.loops.window", &w),
        };
        Some(LoopSettings {
            max_repeats: max_repeats?,
            window: window?,
        })
    }

    fn backend(&mut self, name: Option<&str>, redis: Option<RawRedis>) -> Option<Backend> {
        match (name, redis) {
            (None | Some("memory"), None) => Some(Backend::Memory),
            (None | Some("redis"), Some(raw)) => self.redis(raw).map(Backend::Redis),
            (Some("memory"), Some(_)) => {
                self.push(
                    "limits.backend",
                    "memory does not use limits.redis: remove one of them",
                );
                None
            }
            (Some("redis"), None) => {
                self.push(
                    "limits.redis.url",
                    "required with backend: redis (redis://host:6379/0, or env:NAME / \
                     file:PATH holding it)",
                );
                None
            }
            (Some(other), _) => {
                self.push(
                    "limits.backend",
                    format!("{:?} is not one of memory, redis", truncate(other)),
                );
                None
            }
        }
    }

    fn redis(&mut self, raw: RawRedis) -> Option<RedisSettings> {
        let url = match raw.url {
            None => {
                self.push(
                    "limits.redis.url",
                    "required: redis://host:6379/0 (or env:NAME / file:PATH holding it)",
                );
                None
            }
            Some(u) if u.starts_with("env:") || u.starts_with("file:") => {
                Some(RedisUrl::Reference(u))
            }
            Some(u) => match check_redis_url(&u, false) {
                Ok(()) => Some(RedisUrl::Resolved(u)),
                Err(why) => {
                    self.push("limits.redis.url", why);
                    None
                }
            },
        };
        let prefix = raw.prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
        if prefix.is_empty()
            || prefix.len() > 64
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"{}".contains(&b))
        {
            self.push(
                "limits.redis.prefix",
                "1 to 64 printable ASCII characters, no spaces or braces",
            );
        }
        let timeout = match raw.timeout {
            None => Some(DEFAULT_TIMEOUT),
            Some(t) => match self.duration("limits.redis.timeout", &t) {
                Some(d) if d > MAX_TIMEOUT => {
                    self.push(
                        "limits.redis.timeout",
                        "at most 5s: every limited call waits for it",
                    );
                    None
                }
                d => d,
            },
        };
        let fail = match raw.fail.as_deref() {
            None | Some("closed") => Some(FailMode::Closed),
            Some("open") => Some(FailMode::Open),
            Some(other) => {
                self.push(
                    "limits.redis.fail",
                    format!("{:?} is not one of closed, open", truncate(other)),
                );
                None
            }
        };
        let slot_ttl = match raw.slot_ttl {
            None => Some(DEFAULT_SLOT_TTL),
            Some(t) => self.duration("limits.redis.slot_ttl", &t),
        };
        Some(RedisSettings {
            url: url?,
            prefix,
            timeout: timeout?,
            fail: fail?,
            slot_ttl: slot_ttl?,
        })
    }

    fn breakers(&mut self, raw: RawBreakers) -> Option<BreakerSettings> {
        if raw.enabled == Some(false) {
            return None;
        }
        let error_rate = match raw.error_rate {
            None => Some(0.1),
            Some(r) if r > 0.0 && r <= 1.0 => Some(r),
            Some(_) => {
                self.push(
                    "limits.breakers.error_rate",
                    "a share of failed calls, above 0 and at most 1 (0.1 is 10 %)",
                );
                None
            }
        };
        let p99 = match raw.p99 {
            None => Some(None),
            Some(t) => self.duration("limits.breakers.p99", &t).map(Some),
        };
        let window = match raw.window {
            None => Some(Duration::from_secs(60)),
            Some(t) => self.duration("limits.breakers.window", &t),
        };
        let open_for = match raw.open_for {
            None => Some(Duration::from_secs(300)),
            Some(t) => self.duration("limits.breakers.open_for", &t),
        };
        let min_calls = match raw.min_calls {
            None => Some(20),
            Some(n) if n >= 1 => Some(n),
            Some(_) => {
                self.push("limits.breakers.min_calls", "must be at least 1");
                None
            }
        };
        Some(BreakerSettings {
            error_rate: error_rate?,
            p99: p99?,
            window: window?,
            min_calls: min_calls?,
            open_for: open_for?,
        })
    }
}

/// `100/min` → the time one call takes to replenish (0.6 s).
pub fn parse_rate(text: &str) -> Option<Duration> {
    let (n, unit) = text.trim().split_once('/')?;
    let n: u32 = n.trim().parse().ok().filter(|n| *n >= 1)?;
    let unit = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "d" | "day" => Duration::from_secs(86_400),
        _ => return None,
    };
    Some(unit / n).filter(|p| !p.is_zero())
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}
