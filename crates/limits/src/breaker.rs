//! Circuit breakers, one per upstream server (`github`) and one per tool
//! (`github/create_issue`). Closed, a breaker keeps the outcomes of the
//! last `window`; it opens when, over at least `min_calls`, the share of
//! failures exceeds `error_rate` or the 99th percentile latency exceeds
//! `p99`. Open, it refuses every call for `open_for`; then one call goes
//! through as a probe (half-open): its success closes the breaker, its
//! failure opens it again. Every transition is kept for the audit trail
//! and the metrics ([`Breakers::take_transitions`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{lock, BreakerSettings, Denial, Outcome};

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open {
        until: Instant,
    },
    /// One probe call may pass (`probing`: it is under way).
    HalfOpen {
        probing: bool,
    },
}

impl BreakerState {
    pub fn name(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen { .. } => "half_open",
        }
    }
}

/// A breaker changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// `server` or `server/tool`.
    pub scope: String,
    pub from: &'static str,
    pub to: &'static str,
    /// Why, in words (`error rate 40 % over 20 calls`).
    pub reason: String,
}

struct Breaker {
    state: BreakerState,
    /// (when, failed, latency), oldest first, within the window.
    samples: VecDeque<(Instant, bool, Duration)>,
}

/// Breakers kept at most; beyond it new scopes get none (the server's own
/// breaker still applies).
const MAX_BREAKERS: usize = 10_000;
/// Outcomes kept per breaker within its window.
const MAX_SAMPLES: usize = 2048;
/// How long a call waits to retry while a probe is under way.
const PROBE_WAIT: Duration = Duration::from_secs(1);

pub(crate) struct Breakers {
    settings: Option<BreakerSettings>,
    map: Mutex<HashMap<String, Breaker>>,
    transitions: Mutex<Vec<Transition>>,
}

impl Breakers {
    pub(crate) fn new(settings: Option<BreakerSettings>) -> Breakers {
        Breakers {
            settings,
            map: Mutex::new(HashMap::new()),
            transitions: Mutex::new(Vec::new()),
        }
    }

    fn scopes(server: &str, tool: &str) -> [String; 2] {
        [server.to_owned(), format!("{server}/{tool}")]
    }

    /// Refuses while a breaker of the call is open; an open breaker whose
    /// time is up lets this call through as its probe (returned).
    pub(crate) fn admit(
        &self,
        server: &str,
        tool: &str,
        now: Instant,
    ) -> Result<Vec<String>, Denial> {
        if self.settings.is_none() {
            return Ok(Vec::new());
        }
        let mut map = lock(&self.map);
        if map.is_empty() {
            return Ok(Vec::new());
        }
        // Decide on both scopes before changing either.
        let scopes = Self::scopes(server, tool);
        for scope in &scopes {
            match map.get(scope).map(|b| b.state) {
                Some(BreakerState::Open { until }) if now < until => {
                    return Err(Denial::Breaker {
                        scope: scope.clone(),
                        retry_after: until - now,
                    })
                }
                Some(BreakerState::HalfOpen { probing: true }) => {
                    return Err(Denial::Breaker {
                        scope: scope.clone(),
                        retry_after: PROBE_WAIT,
                    })
                }
                _ => {}
            }
        }
        let mut probes = Vec::new();
        for scope in scopes {
            let Some(b) = map.get_mut(&scope) else {
                continue;
            };
            let from = b.state.name();
            match b.state {
                BreakerState::Open { .. } | BreakerState::HalfOpen { probing: false } => {
                    b.state = BreakerState::HalfOpen { probing: true };
                    if from != "half_open" {
                        self.note(
                            &scope,
                            from,
                            "half_open",
                            "open_for elapsed: one probe call".into(),
                        );
                    }
                    probes.push(scope);
                }
                _ => {}
            }
        }
        Ok(probes)
    }

    /// A probe that never reached the upstream: the next call probes.
    pub(crate) fn release_probe(&self, scope: &str) {
        if let Some(b) = lock(&self.map).get_mut(scope) {
            if b.state == (BreakerState::HalfOpen { probing: true }) {
                b.state = BreakerState::HalfOpen { probing: false };
            }
        }
    }

    pub(crate) fn record(
        &self,
        server: &str,
        tool: &str,
        outcome: Outcome,
        probes: Vec<String>,
        now: Instant,
    ) {
        let Some(s) = &self.settings else { return };
        let mut map = lock(&self.map);
        for scope in Self::scopes(server, tool) {
            if !map.contains_key(&scope) && map.len() >= MAX_BREAKERS {
                continue;
            }
            let b = map.entry(scope.clone()).or_insert_with(|| Breaker {
                state: BreakerState::Closed,
                samples: VecDeque::new(),
            });
            if probes.contains(&scope) {
                if outcome.ok {
                    b.state = BreakerState::Closed;
                    b.samples.clear();
                    self.note(
                        &scope,
                        "half_open",
                        "closed",
                        "the probe call succeeded".into(),
                    );
                } else {
                    b.state = BreakerState::Open {
                        until: now + s.open_for,
                    };
                    self.note(&scope, "half_open", "open", "the probe call failed".into());
                }
                continue;
            }
            if b.state != BreakerState::Closed {
                // Calls admitted before it opened: their outcome is old news.
                continue;
            }
            b.samples.push_back((now, !outcome.ok, outcome.latency));
            while b
                .samples
                .front()
                .is_some_and(|(t, ..)| now.duration_since(*t) > s.window)
                || b.samples.len() > MAX_SAMPLES
            {
                b.samples.pop_front();
            }
            if let Some(reason) = verdict(s, &b.samples) {
                b.state = BreakerState::Open {
                    until: now + s.open_for,
                };
                b.samples.clear();
                self.note(&scope, "closed", "open", reason);
            }
        }
    }

    fn note(&self, scope: &str, from: &'static str, to: &'static str, reason: String) {
        let mut t = lock(&self.transitions);
        // Bounded: an unread backlog keeps the newest.
        if t.len() >= 1024 {
            t.remove(0);
        }
        t.push(Transition {
            scope: scope.to_owned(),
            from,
            to,
            reason,
        });
    }

    pub(crate) fn take_transitions(&self) -> Vec<Transition> {
        std::mem::take(&mut *lock(&self.transitions))
    }

    pub(crate) fn not_closed(&self) -> Vec<(String, BreakerState)> {
        let mut out: Vec<(String, BreakerState)> = lock(&self.map)
            .iter()
            .filter(|(_, b)| b.state != BreakerState::Closed)
            .map(|(k, b)| (k.clone(), b.state))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Why the window's outcomes open the breaker, if they do.
fn verdict(s: &BreakerSettings, samples: &VecDeque<(Instant, bool, Duration)>) -> Option<String> {
    let n = samples.len();
    if n < s.min_calls as usize {
        return None;
    }
    let failed = samples.iter().filter(|(_, f, _)| *f).count();
    let rate = failed as f64 / n as f64;
    if rate > s.error_rate {
        return Some(format!("error rate {:.0} % over {n} calls", rate * 100.0));
    }
    let limit = s.p99?;
    let mut latencies: Vec<Duration> = samples.iter().map(|(_, _, l)| *l).collect();
    latencies.sort_unstable();
    // The nearest-rank 99th percentile.
    let rank = (n * 99).div_ceil(100).max(1) - 1;
    let p99 = latencies[rank.min(n - 1)];
    (p99 > limit).then(|| format!("p99 latency {} ms over {n} calls", p99.as_millis()))
}
