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
//! ```
//!
//! Absent, the section means the defaults a new deployment wants: one
//! per-principal rate rule (3000/min, burst 300), at most 64 calls in
//! flight per principal, loop detection at 120 identical calls a minute,
//! no budgets, no breakers. A list given replaces its default (`rate: []`
//! turns rate limiting off).

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

/// Validated limits.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    pub rate: Vec<RateRule>,
    pub concurrency: Vec<ConcurrencyRule>,
    pub budgets: Vec<BudgetRule>,
    pub loops: Option<LoopSettings>,
    pub breakers: Option<BreakerSettings>,
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
        }
    }
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
