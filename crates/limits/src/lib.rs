//! Limits on tool calls (threat T11): rate limits (GCRA token buckets,
//! `governor`), concurrency caps, cost budgets per day or month, circuit
//! breakers per upstream and per tool, and loop detection. One [`Limiter`]
//! per configuration; its counters live in memory (`backend: memory`) or
//! in one Redis shared by every Warden process on it (`limits.redis`,
//! [`shared`]): one Lua script per decision, one round trip. Breakers are
//! per process either way.
//!
//! ```text
//! let limiter = Limiter::new(settings);          // from LimitSettings (the `limits:` section)
//! let decided = match limiter.decide(&call) {    // the pipeline's limits stage, after authorization
//!     Decision::Now(result) => result,           // memory: nothing to await
//!     Decision::Shared(future) => future.await,  // Redis: one round trip, bounded by its timeout
//! };
//! match decided {
//!     Ok(admission) => { …forward…; admission.finish(Outcome { ok, latency }) }   // breakers learn
//!     Err(denial) => refuse with denial.kind() / denial.retry_after()             // nothing consumed
//! }
//! ```
//! Dropping an [`Admission`] without `finish` (the call was refused by a
//! later stage, or cancelled) releases its concurrency slots, refunds its
//! budget charge and frees a breaker's probe.
//!
//! Invariants: in memory, no I/O; every map is bounded (idle buckets are
//! pruned, budget periods roll over, breakers exist per configured server
//! and tool seen); a denial consumes no concurrency slot and no budget (in
//! Redis too: the script checks every rule before it counts in any).
#![forbid(unsafe_code)]

mod breaker;
mod settings;
pub mod shared;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

pub use breaker::{BreakerState, Transition};
pub use settings::{
    parse_rate, Backend, BreakerSettings, BudgetRule, ConcurrencyRule, Dimension, FailMode,
    LimitSettings, LoopSettings, Match, Period, RateRule, RawLimits, RawRedis, RedisSettings,
    RedisUrl,
};
pub use shared::BackendCounters;

/// Who calls what: the facts every rule matches and keys on.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallFacts<'a> {
    /// The principal's stable key (issuer namespace, tenant, subject).
    pub principal: &'a str,
    pub tenant: Option<&'a str>,
    pub client: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub server: &'a str,
    /// The upstream's tool (or prompt, resource) name.
    pub tool: &'a str,
    /// The canonical hash of the arguments (loop detection), if any.
    pub args_hash: Option<&'a str>,
    /// What the call costs, in a unit (`servers.<s>.tools[].cost`).
    pub cost: Option<(f64, &'a str)>,
}

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Denial {
    Rate {
        rule: String,
        rate: String,
        retry_after: Duration,
    },
    Concurrency {
        rule: String,
        max: u32,
    },
    Budget {
        rule: String,
        unit: String,
        limit: f64,
        spent: f64,
        cost: f64,
        retry_after: Duration,
    },
    Breaker {
        scope: String,
        retry_after: Duration,
    },
    Loop {
        repeats: u32,
        window: Duration,
        retry_after: Duration,
    },
    /// The shared backend (Redis) did not answer in time, with `fail:
    /// closed`.
    Unavailable {
        retry_after: Duration,
    },
}

/// Amounts in a denial are finite (validated limits, costs filtered as
/// finite), so equality is reflexive.
impl Eq for Denial {}

impl Denial {
    /// `rate`, `concurrency`, `budget`, `breaker`, `loop`, `unavailable`.
    pub fn kind(&self) -> &'static str {
        match self {
            Denial::Rate { .. } => "rate",
            Denial::Concurrency { .. } => "concurrency",
            Denial::Budget { .. } => "budget",
            Denial::Breaker { .. } => "breaker",
            Denial::Loop { .. } => "loop",
            Denial::Unavailable { .. } => "unavailable",
        }
    }

    /// The rule (or breaker scope) that refused.
    pub fn rule(&self) -> &str {
        match self {
            Denial::Rate { rule, .. }
            | Denial::Concurrency { rule, .. }
            | Denial::Budget { rule, .. } => rule,
            Denial::Breaker { scope, .. } => scope,
            Denial::Loop { .. } => "loops",
            Denial::Unavailable { .. } => "backend",
        }
    }

    /// When trying again can succeed; `None` when it depends on other calls
    /// finishing (concurrency).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Denial::Rate { retry_after, .. }
            | Denial::Budget { retry_after, .. }
            | Denial::Breaker { retry_after, .. }
            | Denial::Loop { retry_after, .. }
            | Denial::Unavailable { retry_after } => Some(*retry_after),
            Denial::Concurrency { .. } => None,
        }
    }
}

/// How an admitted call ended, for the breakers.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// False when the upstream failed, timed out or answered with an error.
    pub ok: bool,
    pub latency: Duration,
}

type Buckets = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// The limits of one configuration, with their counters.
pub struct Limiter {
    settings: LimitSettings,
    clock: DefaultClock,
    rate: Vec<Buckets>,
    loops: Option<Buckets>,
    in_flight: Arc<Mutex<HashMap<(usize, String), u32>>>,
    spent: Arc<Mutex<HashMap<(usize, String), f64>>>,
    breakers: Arc<breaker::Breakers>,
    admissions: AtomicU64,
    /// The Redis backend, when configured.
    shared: Option<shared::Shared>,
}

/// A decision: made at once, or waiting on the shared backend.
#[must_use = "a decision holds the call's admission"]
// Unboxed: the memory path allocates nothing for its decision.
#[allow(clippy::large_enum_variant)]
pub enum Decision<'l> {
    /// Decided in this process (the memory backend, a breaker, or no
    /// shared rule applies): no I/O, nothing to await.
    Now(Result<Admission, Denial>),
    /// Decided by Redis: one round trip, bounded by `limits.redis.timeout`
    /// (past it, `fail` decides).
    Shared(Pin<Box<dyn Future<Output = Result<Admission, Denial>> + Send + 'l>>),
}

impl<'l> IntoFuture for Decision<'l> {
    type Output = Result<Admission, Denial>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Admission, Denial>> + Send + 'l>>;

    fn into_future(self) -> Self::IntoFuture {
        match self {
            Decision::Now(result) => Box::pin(std::future::ready(result)),
            Decision::Shared(future) => future,
        }
    }
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// How many admissions between two prunings of idle buckets.
const PRUNE_EVERY: u64 = 4096;
/// Budget counters kept before those of past periods are dropped.
const MAX_BUDGET_KEYS: usize = 100_000;

impl Limiter {
    pub fn new(settings: LimitSettings) -> Limiter {
        let clock = DefaultClock::default();
        let quota = |period: Duration, burst: std::num::NonZeroU32| {
            // `with_period` is `None` only for a zero period, which parsing rules out.
            Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(std::num::NonZeroU32::MIN))
                .allow_burst(burst)
        };
        let rate = settings
            .rate
            .iter()
            .map(|r| RateLimiter::dashmap_with_clock(quota(r.period, r.burst), clock.clone()))
            .collect();
        let loops = settings.loops.as_ref().map(|l| {
            RateLimiter::dashmap_with_clock(
                quota(l.window / l.max_repeats.get(), l.max_repeats),
                clock.clone(),
            )
        });
        let breakers = Arc::new(breaker::Breakers::new(settings.breakers.clone()));
        let shared = match &settings.backend {
            Backend::Memory => None,
            Backend::Redis(redis) => Some(shared::Shared::new(redis.clone())),
        };
        Limiter {
            settings,
            clock,
            rate,
            loops,
            in_flight: Default::default(),
            spent: Default::default(),
            breakers,
            admissions: AtomicU64::new(0),
            shared,
        }
    }

    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// Decides one call: every matching rule must pass. A denial leaves no
    /// concurrency slot taken and no budget charged. With the memory
    /// backend the decision is made now ([`Decision::Now`]); with Redis it
    /// is one script call to await ([`Decision::Shared`]), unless no rule
    /// counted there applies.
    pub fn decide(&self, call: &CallFacts<'_>) -> Decision<'_> {
        let Some(shared) = &self.shared else {
            return Decision::Now(self.admit(call));
        };
        // Breakers first, in this process: an open one refuses before
        // anything is counted.
        let admission = match self.breakers.admit(call.server, call.tool, Instant::now()) {
            Ok(probes) => self.admission(call, probes),
            Err(denial) => return Decision::Now(Err(denial)),
        };
        let plan = shared::Plan::new(&self.settings, shared.prefix(), call, SystemTime::now());
        if plan.is_empty() {
            return Decision::Now(Ok(admission));
        }
        Decision::Shared(Box::pin(shared.decide(&self.settings, plan, admission)))
    }

    /// What the Redis backend counted going wrong (`None` in memory).
    pub fn backend_counters(&self) -> Option<BackendCounters> {
        self.shared.as_ref().map(shared::Shared::counters)
    }

    /// A hold on nothing yet but the breakers' probes.
    fn admission(&self, call: &CallFacts<'_>, probes: Vec<String>) -> Admission {
        Admission {
            in_flight: self.in_flight.clone(),
            spent: self.spent.clone(),
            breakers: self.breakers.clone(),
            slots: Vec::new(),
            charges: Vec::new(),
            probes,
            server: call.server.to_owned(),
            tool: call.tool.to_owned(),
            finished: false,
            shared: None,
        }
    }

    /// The decision in this process's memory (the memory backend's).
    pub(crate) fn admit(&self, call: &CallFacts<'_>) -> Result<Admission, Denial> {
        if self.admissions.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        let now = Instant::now();
        // Breakers first: an open one refuses before anything is counted.
        let probe = self.breakers.admit(call.server, call.tool, now)?;
        let mut admission = self.admission(call, probe);
        if let (Some(loops), Some(settings), Some(hash)) =
            (&self.loops, &self.settings.loops, call.args_hash)
        {
            let key = format!(
                "{}\u{1f}{}\u{1f}{}\u{1f}{hash}",
                call.principal, call.server, call.tool
            );
            if let Err(not_until) = loops.check_key(&key) {
                return Err(Denial::Loop {
                    repeats: settings.max_repeats.get(),
                    window: settings.window,
                    retry_after: not_until.wait_time_from(self.clock.now()),
                });
            }
        }
        for (rule, buckets) in self.settings.rate.iter().zip(&self.rate) {
            if !matches(&rule.matches, call) {
                continue;
            }
            if let Err(not_until) = buckets.check_key(&key(&rule.per, call)) {
                return Err(Denial::Rate {
                    rule: rule.id.clone(),
                    rate: rule.rate_text.clone(),
                    retry_after: not_until.wait_time_from(self.clock.now()),
                });
            }
        }
        {
            let mut in_flight = lock(&self.in_flight);
            for (i, rule) in self.settings.concurrency.iter().enumerate() {
                if !matches(&rule.matches, call) {
                    continue;
                }
                let slot = (i, key(&rule.per, call));
                let n = in_flight.entry(slot.clone()).or_insert(0);
                if *n >= rule.max {
                    drop(in_flight);
                    return Err(Denial::Concurrency {
                        rule: rule.id.clone(),
                        max: rule.max,
                    });
                }
                *n += 1;
                admission.slots.push(slot);
            }
        }
        if let Some((cost, unit)) = call.cost.filter(|(c, _)| *c > 0.0) {
            let wall = SystemTime::now();
            let mut spent = lock(&self.spent);
            if spent.len() > MAX_BUDGET_KEYS {
                spent.retain(|(i, k), _| {
                    self.settings
                        .budgets
                        .get(*i)
                        .is_some_and(|r| k.ends_with(&period_stamp(r.period, wall)))
                });
            }
            let mut charges = Vec::new();
            for (i, rule) in self.settings.budgets.iter().enumerate() {
                if rule.unit != unit || !matches(&rule.matches, call) {
                    continue;
                }
                let k = (
                    i,
                    format!(
                        "{}\u{1f}{}",
                        key(&rule.per, call),
                        period_stamp(rule.period, wall)
                    ),
                );
                let already = spent.get(&k).copied().unwrap_or(0.0);
                if already + cost > rule.limit {
                    drop(spent);
                    return Err(Denial::Budget {
                        rule: rule.id.clone(),
                        unit: rule.unit.clone(),
                        limit: rule.limit,
                        spent: already,
                        cost,
                        retry_after: until_next_period(rule.period, wall),
                    });
                }
                charges.push((k, cost));
            }
            for (k, cost) in &charges {
                *spent.entry(k.clone()).or_insert(0.0) += cost;
            }
            admission.charges = charges;
        }
        Ok(admission)
    }

    /// What each budget has spent in its current period, per key.
    pub fn budget_status(&self) -> Vec<BudgetStatus> {
        let wall = SystemTime::now();
        let spent = lock(&self.spent);
        let mut out: Vec<BudgetStatus> = spent
            .iter()
            .filter_map(|((i, k), spent)| {
                let rule = self.settings.budgets.get(*i)?;
                let stamp = period_stamp(rule.period, wall);
                let who = k.strip_suffix(&stamp)?.strip_suffix('\u{1f}')?;
                Some(BudgetStatus {
                    rule: rule.id.clone(),
                    key: who.replace('\u{1f}', "/"),
                    unit: rule.unit.clone(),
                    limit: rule.limit,
                    spent: *spent,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.rule, &a.key).cmp(&(&b.rule, &b.key)));
        out
    }

    /// Every breaker that is not closed.
    pub fn breakers(&self) -> Vec<(String, BreakerState)> {
        self.breakers.not_closed()
    }

    /// Transitions of breakers since the last call (for audit and metrics).
    pub fn take_transitions(&self) -> Vec<Transition> {
        self.breakers.take_transitions()
    }

    fn prune(&self) {
        for b in &self.rate {
            b.retain_recent();
        }
        if let Some(l) = &self.loops {
            l.retain_recent();
        }
        lock(&self.in_flight).retain(|_, n| *n > 0);
    }
}

/// One budget's spending in its current period.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetStatus {
    pub rule: String,
    /// The values of the rule's `per` dimensions, `/`-joined.
    pub key: String,
    pub unit: String,
    pub limit: f64,
    pub spent: f64,
}

/// An admitted call's hold on its limits.
#[must_use = "dropping an admission releases it as if the call never ran"]
pub struct Admission {
    in_flight: Arc<Mutex<HashMap<(usize, String), u32>>>,
    spent: Arc<Mutex<HashMap<(usize, String), f64>>>,
    breakers: Arc<breaker::Breakers>,
    slots: Vec<(usize, String)>,
    charges: Vec<((usize, String), f64)>,
    probes: Vec<String>,
    server: String,
    tool: String,
    finished: bool,
    /// Its slots and charges in Redis, released through the backend's
    /// queue (never waiting here).
    shared: Option<shared::Hold>,
}

impl Admission {
    /// The call reached the upstream and ended: its outcome teaches the
    /// breakers; its budget charge stands.
    pub fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        self.breakers.record(
            &self.server,
            &self.tool,
            outcome,
            std::mem::take(&mut self.probes),
            Instant::now(),
        );
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(hold) = self.shared.take() {
            hold.release(self.finished);
        }
        {
            let mut in_flight = lock(&self.in_flight);
            for slot in &self.slots {
                if let Some(n) = in_flight.get_mut(slot) {
                    *n = n.saturating_sub(1);
                }
            }
        }
        if !self.finished {
            let mut spent = lock(&self.spent);
            for (k, cost) in &self.charges {
                if let Some(s) = spent.get_mut(k) {
                    *s = (*s - cost).max(0.0);
                }
            }
            for scope in std::mem::take(&mut self.probes) {
                self.breakers.release_probe(&scope);
            }
        }
    }
}

pub(crate) fn matches(m: &Match, call: &CallFacts<'_>) -> bool {
    let one = |pattern: &Option<String>, value: Option<&str>| match (pattern, value) {
        (None, _) => true,
        (Some(p), Some(v)) => warden_policy::glob_match(p, v),
        (Some(p), None) => p == "*",
    };
    one(&m.principal, Some(call.principal))
        && one(&m.tenant, call.tenant)
        && one(&m.client, call.client)
        && one(&m.agent, call.agent)
        && one(&m.server, Some(call.server))
        && one(&m.tool, Some(call.tool))
}

pub(crate) fn key(per: &[Dimension], call: &CallFacts<'_>) -> String {
    let mut k = String::new();
    for (i, d) in per.iter().enumerate() {
        if i > 0 {
            k.push('\u{1f}');
        }
        k.push_str(match d {
            Dimension::Principal => call.principal,
            Dimension::Tenant => call.tenant.unwrap_or("-"),
            Dimension::Client => call.client.unwrap_or("-"),
            Dimension::Agent => call.agent.unwrap_or("-"),
            Dimension::Server => call.server,
            Dimension::Tool => call.tool,
        });
    }
    k
}

/// The UTC day (`d2026-12-07`) or month (`m2026-12`) a budget period is in.
pub(crate) fn period_stamp(period: Period, at: SystemTime) -> String {
    let date = utc_date(at);
    match period {
        Period::Day => format!("d{date}"),
        Period::Month => format!("m{:04}-{:02}", date.year(), date.month()),
    }
}

/// Until the next UTC day or month begins.
pub(crate) fn until_next_period(period: Period, at: SystemTime) -> Duration {
    let date = utc_date(at);
    let next = match period {
        Period::Day => date.tomorrow().ok(),
        Period::Month => date
            .first_of_month()
            .checked_add(jiff::Span::new().months(1))
            .ok(),
    };
    let Some(next) = next.and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok()) else {
        return Duration::from_secs(86_400);
    };
    let now = jiff::Timestamp::try_from(at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    Duration::try_from(next.timestamp().duration_since(now)).unwrap_or(Duration::ZERO)
}

fn utc_date(at: SystemTime) -> jiff::civil::Date {
    jiff::Timestamp::try_from(at)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters stay consistent across a panic (each update is one step).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
