//! The Redis backend (`limits.redis`): the counters of rate rules, loop
//! detection, concurrency caps and budgets in one Redis, shared by every
//! Warden process configured with it, so that two replicas enforce one
//! limit.
//!
//! One decision is one Lua script call ([`ADMIT`], by `EVALSHA`, loaded on
//! first use and again after Redis forgets it): one round trip, atomic,
//! covering every matching rule. The script checks every rule first and
//! counts in none unless all pass, so a denial changes no counter. Time is
//! Redis's (`TIME`), the same for every Warden.
//!
//! | counter | key | what is stored |
//! |---|---|---|
//! | rate rule | `<prefix>:rate:<rule>:<key>` | GCRA theoretical arrival time (µs), expiring when it is past |
//! | loops | `<prefix>:loop:<principal>␟<server>␟<tool>␟<args hash>` | the same GCRA |
//! | concurrency | `<prefix>:conc:<rule>:<key>` | a sorted set of the calls in flight, each scored by when its lease (`slot_ttl`) ends |
//! | budget | `<prefix>:budget:<rule>:<key>:<period>` | the amount spent, expiring a day after its period |
//!
//! Releases (a call's slots when it ends, its charge when it never ran)
//! never wait on Redis: the [`Admission`]'s drop queues them (bounded) for
//! a background task that sends them pipelined ([`RELEASE`]). A release that
//! is lost (queue full, Redis down) is counted: its slots expire with their
//! lease, its charge stands (budgets over-count, never overspend).
//!
//! When Redis does not answer within `timeout` (slow, unreachable, an
//! unexpected reply), `fail` decides: `closed` refuses
//! ([`Denial::Unavailable`]), `open` admits without limits. Either way the
//! outage is logged once when it starts, at most once a minute while it
//! lasts, and once when it ends, and counted ([`BackendCounters`]). Errors
//! and logs carry a fixed reason code, never the URL (it may hold a
//! password) nor Redis's text. The connection is a
//! [`redis::aio::ConnectionManager`], made on first use and re-made after
//! an error.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind, Value};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::{
    key, lock, matches, period_stamp, until_next_period, Admission, CallFacts, Denial, FailMode,
    LimitSettings, RedisSettings, RedisUrl,
};

/// One admission. KEYS: the GCRA keys (loops, then rate rules), the
/// concurrency sets, the budget counters. ARGV: their counts (3), the
/// admission's id, the slot lease (µs); then per GCRA key its interval (µs)
/// and burst, per set its max, per budget the cost, the limit and the
/// counter's time to live (ms). Returns `{0}` admitted, `{1, i, wait µs}`
/// refused by GCRA key i, `{2, j}` by set j, `{3, m, spent}` by budget m.
pub const ADMIT: &str = r#"
local g, c, b = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local member, lease = ARGV[4], tonumber(ARGV[5])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local a = 6
local tats = {}
for i = 1, g do
  local interval, burst = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if not tat then return redis.error_reply('warden: not a rate counter') end
  if tat < now then tat = now end
  local wait = tat - (burst - 1) * interval - now
  if wait > 0 then return {1, i, math.ceil(wait)} end
  tats[i] = tat + interval
end
local live = '(' .. string.format('%.0f', now)
for j = 1, c do
  local max = tonumber(ARGV[a])
  a = a + 1
  if redis.call('ZCOUNT', KEYS[g + j], live, '+inf') >= max then return {2, j} end
end
local costs, ttls = {}, {}
for m = 1, b do
  local cost, limit = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  costs[m], ttls[m] = ARGV[a], ARGV[a + 2]
  a = a + 3
  local spent = tonumber(redis.call('GET', KEYS[g + c + m]) or '0')
  if not spent then return redis.error_reply('warden: not a budget counter') end
  if spent + cost > limit then return {3, m, tostring(spent)} end
end
for i = 1, g do
  redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
end
for j = 1, c do
  local k = KEYS[g + j]
  redis.call('ZREMRANGEBYSCORE', k, '-inf', string.format('%.0f', now))
  redis.call('ZADD', k, string.format('%.0f', now + lease), member)
  redis.call('PEXPIRE', k, math.ceil(lease / 1000) + 1)
end
for m = 1, b do
  local k = KEYS[g + c + m]
  redis.call('INCRBYFLOAT', k, costs[m])
  redis.call('PEXPIRE', k, ttls[m])
end
return {0}
"#;

/// One release. KEYS: the concurrency sets, then the budget counters to
/// refund. ARGV: the admission's id, the number of sets, then each refund.
/// A counter already expired (its period is over) is left alone.
pub const RELEASE: &str = r#"
local c = tonumber(ARGV[2])
for j = 1, c do redis.call('ZREM', KEYS[j], ARGV[1]) end
for m = c + 1, #KEYS do
  local k = KEYS[m]
  if redis.call('EXISTS', k) == 1 then
    local left = tonumber(redis.call('INCRBYFLOAT', k, '-' .. ARGV[m - c + 2]))
    if left and left < 0 then redis.call('SET', k, '0', 'KEEPTTL') end
  end
end
return 0
"#;

/// Releases waiting for the background task; beyond it they are lost
/// (counted).
const RELEASE_QUEUE: usize = 4096;
/// Releases sent in one pipeline.
const RELEASE_BATCH: usize = 128;
/// What a refusal for an unavailable backend tells the client to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// At most one "still unavailable" line this often.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// A budget counter outlives its period by this (refunds still find it).
const BUDGET_GRACE: Duration = Duration::from_secs(86_400);

/// What the Redis backend counted going wrong, since this limiter was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendCounters {
    /// Calls refused because Redis did not answer (`fail: closed`).
    pub refused: u64,
    /// Calls admitted without limits because Redis did not answer
    /// (`fail: open`).
    pub admitted_unlimited: u64,
    /// Releases (slots, refunds) that never reached Redis.
    pub releases_lost: u64,
}

#[derive(Default)]
struct Counters {
    refused: AtomicU64,
    admitted: AtomicU64,
    releases_lost: AtomicU64,
}

/// The backend of one [`crate::Limiter`].
pub(crate) struct Shared {
    settings: RedisSettings,
    /// Made on first use, inside the runtime (the manager and the release
    /// task need one).
    conn: OnceLock<Result<Conn, &'static str>>,
    admit: Arc<Lua>,
    release: Arc<Lua>,
    counters: Arc<Counters>,
    health: Health,
    /// Makes this process's admission ids unique among Wardens.
    nonce: u64,
    next: AtomicU64,
}

struct Conn {
    manager: ConnectionManager,
    releases: mpsc::Sender<Release>,
}

impl Shared {
    pub(crate) fn new(settings: RedisSettings) -> Shared {
        let nonce = RandomState::new().hash_one((std::process::id(), SystemTime::now()));
        Shared {
            settings,
            conn: OnceLock::new(),
            admit: Arc::new(Lua::new(ADMIT)),
            release: Arc::new(Lua::new(RELEASE)),
            counters: Arc::default(),
            health: Health::default(),
            nonce,
            next: AtomicU64::new(0),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.settings.prefix
    }

    pub(crate) fn counters(&self) -> BackendCounters {
        BackendCounters {
            refused: self.counters.refused.load(Ordering::Relaxed),
            admitted_unlimited: self.counters.admitted.load(Ordering::Relaxed),
            releases_lost: self.counters.releases_lost.load(Ordering::Relaxed),
        }
    }

    fn connection(&self) -> Result<&Conn, &'static str> {
        self.conn
            .get_or_init(|| self.connect())
            .as_ref()
            .map_err(|code| *code)
    }

    fn connect(&self) -> Result<Conn, &'static str> {
        let RedisUrl::Resolved(url) = &self.settings.url else {
            return Err("redis_url_unresolved");
        };
        let client = redis::Client::open(url.as_str()).map_err(|_| "redis_client")?;
        let timeout = self.settings.timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Few, quick retries: a decision waits at most `timeout`, and
            // each one after a failed reconnect starts another.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let manager =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|_| "redis_client")?;
        let (releases, queue) = mpsc::channel(RELEASE_QUEUE);
        tokio::spawn(release_task(
            manager.clone(),
            queue,
            self.release.clone(),
            self.counters.clone(),
            timeout.max(Duration::from_secs(1)),
        ));
        Ok(Conn { manager, releases })
    }

    /// One script call for every rule of `plan`; `admission` holds the
    /// breakers' probes until then.
    pub(crate) async fn decide(
        &self,
        settings: &LimitSettings,
        plan: Plan,
        mut admission: Admission,
    ) -> Result<Admission, Denial> {
        let conn = match self.connection() {
            Ok(conn) => conn,
            Err(code) => return self.unavailable(code, admission),
        };
        let member = format!(
            "{:016x}.{:x}",
            self.nonce,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let Plan {
            keys,
            args: rule_args,
            gcra,
            slots,
            charges,
        } = plan;
        let mut args = Vec::with_capacity(5 + rule_args.len());
        args.extend([
            gcra.len().to_string(),
            slots.len().to_string(),
            charges.len().to_string(),
            member.clone(),
            micros(self.settings.slot_ttl),
        ]);
        args.extend(rule_args);
        let mut manager = conn.manager.clone();
        let reply = tokio::time::timeout(
            self.settings.timeout,
            self.admit.eval(&mut manager, &keys, &args),
        )
        .await;
        let first_slot = gcra.len();
        let slot_keys = || keys[first_slot..first_slot + slots.len()].to_vec();
        let value = match reply {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => return self.unavailable(error_code(&e), admission),
            Err(_) => {
                // The script may still run once Redis answers: free the
                // slots it would take (the release follows it on the same
                // connection). Its budget charge, if any, stands.
                if !slots.is_empty() {
                    let release = Release {
                        member,
                        slots: slot_keys(),
                        refunds: Vec::new(),
                    };
                    if conn.releases.try_send(release).is_err() {
                        self.counters.releases_lost.fetch_add(1, Ordering::Relaxed);
                    }
                }
                return self.unavailable("redis_timeout", admission);
            }
        };
        let denial = match verdict(&value) {
            Some(Verdict::Admitted) => {
                self.health.answered();
                let first_charge = first_slot + slots.len();
                admission.shared = Some(Hold {
                    releases: conn.releases.clone(),
                    counters: self.counters.clone(),
                    member,
                    slots: slot_keys(),
                    refunds: keys[first_charge..]
                        .iter()
                        .cloned()
                        .zip(charges.iter().map(|c| c.cost))
                        .collect(),
                });
                return Ok(admission);
            }
            Some(Verdict::Gcra(i, wait)) => {
                let retry_after = Duration::from_micros(wait);
                match i.checked_sub(1).and_then(|i| gcra.get(i)) {
                    Some(Gcra::Loop) => settings.loops.as_ref().map(|l| Denial::Loop {
                        repeats: l.max_repeats.get(),
                        window: l.window,
                        retry_after,
                    }),
                    Some(Gcra::Rate(r)) => settings.rate.get(*r).map(|rule| Denial::Rate {
                        rule: rule.id.clone(),
                        rate: rule.rate_text.clone(),
                        retry_after,
                    }),
                    None => None,
                }
            }
            Some(Verdict::Slots(j)) => j
                .checked_sub(1)
                .and_then(|j| slots.get(j))
                .and_then(|r| settings.concurrency.get(*r))
                .map(|rule| Denial::Concurrency {
                    rule: rule.id.clone(),
                    max: rule.max,
                }),
            Some(Verdict::Budget(m, spent)) => m
                .checked_sub(1)
                .and_then(|m| charges.get(m))
                .and_then(|c| Some((c, settings.budgets.get(c.rule)?)))
                .map(|(charge, rule)| Denial::Budget {
                    rule: rule.id.clone(),
                    unit: rule.unit.clone(),
                    limit: rule.limit,
                    spent,
                    cost: charge.cost,
                    retry_after: charge.retry_after,
                }),
            None => None,
        };
        match denial {
            Some(denial) => {
                self.health.answered();
                Err(denial)
            }
            None => self.unavailable("redis_reply", admission),
        }
    }

    /// Redis did not answer usefully: `fail` decides.
    fn unavailable(&self, code: &'static str, admission: Admission) -> Result<Admission, Denial> {
        self.health.failed(code, self.settings.fail);
        match self.settings.fail {
            FailMode::Closed => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                drop(admission);
                Err(Denial::Unavailable {
                    retry_after: RETRY_AFTER,
                })
            }
            FailMode::Open => {
                self.counters.admitted.fetch_add(1, Ordering::Relaxed);
                Ok(admission)
            }
        }
    }
}

/// What one decision asks of Redis: the keys of every matching rule and
/// their arguments, in the script's order.
pub(crate) struct Plan {
    keys: Vec<String>,
    args: Vec<String>,
    gcra: Vec<Gcra>,
    /// The concurrency rule of each set.
    slots: Vec<usize>,
    charges: Vec<Charge>,
}

enum Gcra {
    Loop,
    Rate(usize),
}

struct Charge {
    rule: usize,
    cost: f64,
    retry_after: Duration,
}

impl Plan {
    pub(crate) fn new(
        settings: &LimitSettings,
        prefix: &str,
        call: &CallFacts<'_>,
        wall: SystemTime,
    ) -> Plan {
        let mut plan = Plan {
            keys: Vec::new(),
            args: Vec::new(),
            gcra: Vec::new(),
            slots: Vec::new(),
            charges: Vec::new(),
        };
        if let (Some(loops), Some(hash)) = (&settings.loops, call.args_hash) {
            plan.keys.push(format!(
                "{prefix}:loop:{}\u{1f}{}\u{1f}{}\u{1f}{hash}",
                call.principal, call.server, call.tool
            ));
            plan.args
                .push(micros(loops.window / loops.max_repeats.get()));
            plan.args.push(loops.max_repeats.to_string());
            plan.gcra.push(Gcra::Loop);
        }
        for (i, rule) in settings.rate.iter().enumerate() {
            if matches(&rule.matches, call) {
                plan.keys.push(format!(
                    "{prefix}:rate:{}:{}",
                    rule.id,
                    key(&rule.per, call)
                ));
                plan.args.push(micros(rule.period));
                plan.args.push(rule.burst.to_string());
                plan.gcra.push(Gcra::Rate(i));
            }
        }
        for (i, rule) in settings.concurrency.iter().enumerate() {
            if matches(&rule.matches, call) {
                plan.keys.push(format!(
                    "{prefix}:conc:{}:{}",
                    rule.id,
                    key(&rule.per, call)
                ));
                plan.args.push(rule.max.to_string());
                plan.slots.push(i);
            }
        }
        if let Some((cost, unit)) = call.cost.filter(|(c, _)| *c > 0.0 && c.is_finite()) {
            for (i, rule) in settings.budgets.iter().enumerate() {
                if rule.unit != unit || !matches(&rule.matches, call) {
                    continue;
                }
                let retry_after = until_next_period(rule.period, wall);
                plan.keys.push(format!(
                    "{prefix}:budget:{}:{}:{}",
                    rule.id,
                    key(&rule.per, call),
                    period_stamp(rule.period, wall)
                ));
                plan.args.push(cost.to_string());
                plan.args.push(rule.limit.to_string());
                plan.args.push(millis(retry_after + BUDGET_GRACE));
                plan.charges.push(Charge {
                    rule: i,
                    cost,
                    retry_after,
                });
            }
        }
        plan
    }

    /// No rule counted in Redis applies.
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

enum Verdict {
    Admitted,
    /// 1-based GCRA key, µs to wait.
    Gcra(usize, u64),
    Slots(usize),
    Budget(usize, f64),
}

/// The admission script's reply; `None` for anything else.
fn verdict(value: &Value) -> Option<Verdict> {
    let Value::Array(items) = value else {
        return None;
    };
    let int = |i: usize| match items.get(i) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    };
    let index = |i: usize| int(i).and_then(|n| usize::try_from(n).ok());
    Some(match int(0)? {
        0 => Verdict::Admitted,
        1 => Verdict::Gcra(index(1)?, u64::try_from(int(2)?).ok()?),
        2 => Verdict::Slots(index(1)?),
        3 => {
            let spent = match items.get(2)? {
                Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok()?,
                Value::Int(n) => *n as f64,
                _ => return None,
            };
            Verdict::Budget(index(1)?, spent)
        }
        _ => return None,
    })
}

/// An admitted call's slots and charges in Redis.
pub(crate) struct Hold {
    releases: mpsc::Sender<Release>,
    counters: Arc<Counters>,
    member: String,
    slots: Vec<String>,
    refunds: Vec<(String, f64)>,
}

impl Hold {
    /// Frees the slots, and refunds the charges of a call that never ran
    /// (`finished` false): queued, never waiting.
    pub(crate) fn release(self, finished: bool) {
        let refunds = if finished { Vec::new() } else { self.refunds };
        if self.slots.is_empty() && refunds.is_empty() {
            return;
        }
        let release = Release {
            member: self.member,
            slots: self.slots,
            refunds,
        };
        if self.releases.try_send(release).is_err() {
            self.counters.releases_lost.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Release {
    member: String,
    slots: Vec<String>,
    refunds: Vec<(String, f64)>,
}

impl Release {
    fn command(&self, sha: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(sha)
            .arg(self.slots.len() + self.refunds.len())
            .arg(&self.slots);
        for (k, _) in &self.refunds {
            cmd.arg(k);
        }
        cmd.arg(&self.member).arg(self.slots.len());
        for (_, cost) in &self.refunds {
            cmd.arg(cost.to_string());
        }
        cmd
    }
}

/// Sends queued releases, pipelined, until every sender is gone (the
/// limiter replaced and its last admission released).
async fn release_task(
    mut manager: ConnectionManager,
    mut queue: mpsc::Receiver<Release>,
    script: Arc<Lua>,
    counters: Arc<Counters>,
    timeout: Duration,
) {
    let mut batch = Vec::with_capacity(RELEASE_BATCH);
    while queue.recv_many(&mut batch, RELEASE_BATCH).await > 0 {
        let sent = tokio::time::timeout(timeout, script.eval_each(&mut manager, &batch)).await;
        let lost = match sent {
            Ok(Ok(failed)) => failed,
            _ => batch.len(),
        };
        if lost > 0 {
            counters
                .releases_lost
                .fetch_add(lost as u64, Ordering::Relaxed);
        }
        batch.clear();
    }
}

/// A Lua script run by `EVALSHA`; its SHA-1 is learnt from `SCRIPT LOAD`
/// on first use and again when Redis answers `NOSCRIPT` (a restart, a
/// `SCRIPT FLUSH`).
pub(crate) struct Lua {
    code: &'static str,
    sha: RwLock<Option<Arc<str>>>,
}

impl Lua {
    fn new(code: &'static str) -> Lua {
        Lua {
            code,
            sha: RwLock::new(None),
        }
    }

    async fn sha(&self, conn: &mut ConnectionManager) -> RedisResult<Arc<str>> {
        let known = self.sha.read().map(|s| s.clone()).unwrap_or_default();
        match known {
            Some(sha) => Ok(sha),
            None => self.load(conn).await,
        }
    }

    async fn load(&self, conn: &mut ConnectionManager) -> RedisResult<Arc<str>> {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(self.code)
            .query_async(conn)
            .await?;
        let sha: Arc<str> = sha.into();
        if let Ok(mut known) = self.sha.write() {
            *known = Some(sha.clone());
        }
        Ok(sha)
    }

    async fn eval(
        &self,
        conn: &mut ConnectionManager,
        keys: &[String],
        args: &[String],
    ) -> RedisResult<Value> {
        let command = |sha: &str| {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(sha).arg(keys.len()).arg(keys).arg(args);
            cmd
        };
        let sha = self.sha(conn).await?;
        match command(&sha).query_async(conn).await {
            Err(e) if is_noscript(&e) => {
                let sha = self.load(conn).await?;
                command(&sha).query_async(conn).await
            }
            other => other,
        }
    }

    /// Runs the release script for each of `batch` in one pipeline;
    /// returns how many failed.
    async fn eval_each(
        &self,
        conn: &mut ConnectionManager,
        batch: &[Release],
    ) -> RedisResult<usize> {
        let pipeline = |sha: &str, which: &mut dyn Iterator<Item = &Release>| {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for release in which {
                pipe.add_command(release.command(sha));
            }
            pipe
        };
        let sha = self.sha(conn).await?;
        let results: Vec<RedisResult<Value>> =
            pipeline(&sha, &mut batch.iter()).query_async(conn).await?;
        let again: Vec<&Release> = batch
            .iter()
            .zip(&results)
            .filter(|(_, r)| matches!(r, Err(e) if is_noscript(e)))
            .map(|(release, _)| release)
            .collect();
        let mut failed = results.iter().filter(|r| r.is_err()).count() - again.len();
        if !again.is_empty() {
            let sha = self.load(conn).await?;
            let retried: Vec<RedisResult<Value>> = pipeline(&sha, &mut again.into_iter())
                .query_async(conn)
                .await?;
            failed += retried.iter().filter(|r| r.is_err()).count();
        }
        Ok(failed)
    }
}

fn is_noscript(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}

/// A fixed code for a Redis error: its text may name the server.
fn error_code(e: &RedisError) -> &'static str {
    if e.is_timeout() {
        "redis_timeout"
    } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        "redis_unreachable"
    } else {
        "redis_error"
    }
}

fn micros(d: Duration) -> String {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
        .to_string()
}

fn millis(d: Duration) -> String {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
        .to_string()
}

/// Whether Redis is answering, for logging an outage once when it starts,
/// at most once a minute while it lasts, and once when it ends.
#[derive(Default)]
struct Health {
    down: AtomicBool,
    /// When the last line was written, and the calls affected since.
    noted: Mutex<Option<(Instant, u64)>>,
}

impl Health {
    fn failed(&self, code: &'static str, fail: FailMode) {
        let mut noted = lock(&self.noted);
        let now = Instant::now();
        if !self.down.swap(true, Ordering::Relaxed) {
            *noted = Some((now, 0));
            match fail {
                FailMode::Closed => error!(
                    event = "limits.backend_unavailable", reason = code, fail = fail.name(),
                    "limits backend (Redis) unavailable: limited calls are refused until it answers"
                ),
                FailMode::Open => error!(
                    event = "limits.backend_unavailable", reason = code, fail = fail.name(),
                    "limits backend (Redis) unavailable: limited calls are admitted without limits until it answers"
                ),
            }
            return;
        }
        match &mut *noted {
            Some((at, calls)) if now.duration_since(*at) < LOG_EVERY => *calls += 1,
            other => {
                let calls = other.map_or(0, |(_, n)| n) + 1;
                warn!(
                    event = "limits.backend_unavailable",
                    reason = code,
                    fail = fail.name(),
                    calls,
                    "limits backend (Redis) still unavailable"
                );
                *other = Some((now, 0));
            }
        }
    }

    fn answered(&self) {
        if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::Relaxed) {
            info!(
                event = "limits.backend_available",
                "limits backend (Redis) answering again"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_other_than_the_scripts_are_not_verdicts() {
        let int = Value::Int;
        let array = Value::Array;
        assert!(matches!(
            verdict(&array(vec![int(0)])),
            Some(Verdict::Admitted)
        ));
        assert!(matches!(
            verdict(&array(vec![int(1), int(2), int(1500)])),
            Some(Verdict::Gcra(2, 1500))
        ));
        assert!(matches!(
            verdict(&array(vec![int(3), int(1), Value::BulkString(b"0.8".to_vec())])),
            Some(Verdict::Budget(1, s)) if (s - 0.8).abs() < 1e-12
        ));
        for bad in [
            Value::Nil,
            int(0),
            array(vec![]),
            array(vec![int(7)]),
            array(vec![int(1), int(-1), int(5)]),
            array(vec![int(1), int(1)]),
            array(vec![int(3), int(1), Value::BulkString(b"lots".to_vec())]),
            array(vec![Value::BulkString(b"0".to_vec())]),
        ] {
            assert!(verdict(&bad).is_none(), "{bad:?}");
        }
    }
}

/// Needs the real Redis on 127.0.0.1:6379 (skipped without it, unless
/// `WARDEN_REQUIRE_SERVICES=1`).
#[cfg(test)]
mod redis_tests {
    use super::*;

    #[tokio::test]
    async fn a_script_redis_has_forgotten_is_loaded_again() {
        let up = std::net::TcpStream::connect_timeout(
            &"127.0.0.1:6379".parse().expect("address"),
            Duration::from_millis(500),
        )
        .is_ok();
        if !up {
            assert_ne!(
                std::env::var("WARDEN_REQUIRE_SERVICES").as_deref(),
                Ok("1"),
                "Redis on 127.0.0.1:6379 is required (WARDEN_REQUIRE_SERVICES=1) but unreachable"
            );
            eprintln!("SKIPPED: no Redis on 127.0.0.1:6379 (set WARDEN_REQUIRE_SERVICES=1 to fail instead)");
            return;
        }
        let client = redis::Client::open("redis://127.0.0.1:6379/0").expect("url");
        let mut conn = ConnectionManager::new(client).await.expect("connect");
        let lua = Lua::new("return tonumber(ARGV[1]) + 1");
        // As if Redis restarted since the script was loaded.
        *lua.sha.write().expect("sha") = Some("0".repeat(40).into());
        let answer = lua
            .eval(&mut conn, &[], &["41".to_owned()])
            .await
            .expect("loaded again and run");
        assert_eq!(answer, Value::Int(42));
        let known = lua.sha.read().expect("sha").clone().expect("learnt");
        assert_eq!(known.len(), 40);
        assert_ne!(&*known, "0".repeat(40));
    }
}
