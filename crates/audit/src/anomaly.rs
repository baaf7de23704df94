//! Anomaly rules (seed 004), evaluated on the writer thread over the events
//! as they are chained — never on the request path. Each alert is an
//! [`EventKind::Anomaly`] event chained right after its trigger, and a
//! counter.
//!
//! - `burst`: one principal makes more than `max_calls` calls within
//!   `window` (one alert per principal per window).
//! - `off_hours`: a sensitive call (by risk tier or tool name) outside
//!   business hours (one alert per principal per minute).
//! - `token_reuse`: one token id (`jti_hash`) seen from two client
//!   addresses (ports ignored) within `window`.
//!
//! Memory is bounded: state older than its window is pruned, and each map
//! holds at most [`MAX_KEYS`] keys.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::event::{AnomalyAlert, Event, EventKind, Timestamp};
use crate::settings::{AnomalySettings, BurstRule, OffHoursRule, TokenReuseRule};

/// Most principals (tokens) tracked per rule.
pub const MAX_KEYS: usize = 100_000;

const OFF_HOURS_COOLDOWN: Duration = Duration::from_secs(60);

/// Stateful evaluation of the anomaly rules.
#[derive(Debug, Default)]
pub struct AnomalyDetector {
    burst: Option<BurstRule>,
    off_hours: Option<OffHoursRule>,
    token_reuse: Option<TokenReuseRule>,
    calls: HashMap<String, BurstState>,
    off_hours_last: HashMap<String, Timestamp>,
    tokens: HashMap<String, (String, Timestamp)>,
}

#[derive(Debug, Default)]
struct BurstState {
    times: VecDeque<Timestamp>,
    quiet_until: Option<Timestamp>,
}

impl AnomalyDetector {
    pub fn new(settings: &AnomalySettings) -> AnomalyDetector {
        AnomalyDetector {
            burst: settings.burst,
            off_hours: settings.off_hours.clone(),
            token_reuse: settings.token_reuse,
            ..AnomalyDetector::default()
        }
    }

    /// Alerts raised by `event` (at the event's own time).
    pub fn observe(&mut self, event: &Event) -> Vec<Event> {
        let mut alerts = Vec::new();
        if event.kind != EventKind::Call {
            return alerts;
        }
        let Some(who) = principal_key(event) else {
            return alerts;
        };
        let now = event.time;
        if let Some(rule) = self.burst {
            if let Some(a) = self.burst(rule, &who, now) {
                alerts.push(alert(event, a));
            }
        }
        if let Some(rule) = self.off_hours.clone() {
            if let Some(a) = self.off_hours(&rule, &who, event) {
                alerts.push(alert(event, a));
            }
        }
        if let Some(rule) = self.token_reuse {
            if let Some(a) = self.token_reuse(rule, event) {
                alerts.push(alert(event, a));
            }
        }
        alerts
    }

    fn burst(&mut self, rule: BurstRule, who: &str, now: Timestamp) -> Option<AnomalyAlert> {
        if !self.calls.contains_key(who) && self.calls.len() >= MAX_KEYS {
            self.calls
                .retain(|_, s| s.times.back().is_some_and(|t| now.since(*t) <= rule.window));
            if self.calls.len() >= MAX_KEYS {
                return None;
            }
        }
        let state = self.calls.entry(who.to_owned()).or_default();
        state.times.push_back(now);
        while state
            .times
            .front()
            .is_some_and(|t| now.since(*t) >= rule.window)
        {
            state.times.pop_front();
        }
        let count = state.times.len() as u64;
        if count <= rule.max_calls || state.quiet_until.is_some_and(|q| now < q) {
            return None;
        }
        state.quiet_until = Some(now.saturating_add(rule.window));
        Some(AnomalyAlert {
            rule: "burst".into(),
            observed: Some(count),
            threshold: Some(rule.max_calls),
            window_ms: Some(rule.window.as_millis() as u64),
            ..AnomalyAlert::default()
        })
    }

    fn off_hours(&mut self, rule: &OffHoursRule, who: &str, e: &Event) -> Option<AnomalyAlert> {
        let sensitive = e.risk_tier.is_some_and(|t| rule.risk_tiers.contains(&t))
            || e.tool.as_deref().is_some_and(|tool| {
                rule.tools.iter().any(|name| {
                    name == tool
                        || e.server.as_deref().is_some_and(|s| {
                            name.strip_prefix(s).and_then(|r| r.strip_prefix("__")) == Some(tool)
                        })
                })
            });
        if !sensitive || is_business_time(rule, e.time) {
            return None;
        }
        if let Some(last) = self.off_hours_last.get(who) {
            if e.time.since(*last) < OFF_HOURS_COOLDOWN {
                return None;
            }
        }
        if self.off_hours_last.len() >= MAX_KEYS {
            let now = e.time;
            self.off_hours_last
                .retain(|_, t| now.since(*t) < OFF_HOURS_COOLDOWN);
        }
        if self.off_hours_last.len() < MAX_KEYS {
            self.off_hours_last.insert(who.to_owned(), e.time);
        }
        let (minute, _) = local_minute_and_day(rule, e.time);
        Some(AnomalyAlert {
            rule: "off_hours".into(),
            observed: Some(u64::from(minute / 60)),
            ..AnomalyAlert::default()
        })
    }

    fn token_reuse(&mut self, rule: TokenReuseRule, e: &Event) -> Option<AnomalyAlert> {
        let jti = e.token.as_ref()?.jti_hash.as_ref()?;
        let addr = host_of(e.client_addr.as_deref()?);
        let now = e.time;
        let previous = self.tokens.get(jti).cloned();
        if previous.is_none() && self.tokens.len() >= MAX_KEYS {
            self.tokens.retain(|_, (_, t)| now.since(*t) <= rule.window);
            if self.tokens.len() >= MAX_KEYS {
                return None;
            }
        }
        self.tokens.insert(jti.clone(), (addr.clone(), now));
        let (prev_addr, prev_time) = previous?;
        if prev_addr == addr || now.since(prev_time) > rule.window {
            return None;
        }
        Some(AnomalyAlert {
            rule: "token_reuse".into(),
            observed: Some(2),
            window_ms: Some(rule.window.as_millis() as u64),
            addresses: vec![prev_addr, addr],
            ..AnomalyAlert::default()
        })
    }
}

fn principal_key(e: &Event) -> Option<String> {
    let p = e.principal.as_ref()?;
    Some(match &p.tenant {
        Some(t) => format!("{t}/{}", p.subject),
        None => p.subject.clone(),
    })
}

fn alert(trigger: &Event, a: AnomalyAlert) -> Event {
    Event {
        principal: trigger.principal.clone(),
        session: trigger.session.clone(),
        client_addr: trigger.client_addr.clone(),
        server: trigger.server.clone(),
        tool: trigger.tool.clone(),
        risk_tier: trigger.risk_tier,
        correlation_id: trigger.correlation_id.clone(),
        trace_id: trigger.trace_id.clone(),
        anomaly: Some(Box::new(AnomalyAlert {
            trigger: trigger.correlation_id.clone(),
            ..a
        })),
        ..Event::at(EventKind::Anomaly, trigger.time)
    }
}

fn host_of(addr: &str) -> String {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return sa.ip().to_string();
    }
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return ip.to_string();
    }
    addr.to_owned()
}

/// (minute of the local day, day of week with 0 = Monday).
fn local_minute_and_day(rule: &OffHoursRule, t: Timestamp) -> (u32, u32) {
    let secs = t.unix_nanos().div_euclid(1_000_000_000) + i64::from(rule.utc_offset_minutes) * 60;
    let days = secs.div_euclid(86_400);
    let minute = (secs.rem_euclid(86_400) / 60) as u32;
    // 1970-01-01 was a Thursday (3 with Monday = 0).
    let weekday = (days + 3).rem_euclid(7) as u32;
    (minute, weekday)
}

fn is_business_time(rule: &OffHoursRule, t: Timestamp) -> bool {
    let (minute, day) = local_minute_and_day(rule, t);
    let in_hours = if rule.start_minute < rule.end_minute {
        (rule.start_minute..rule.end_minute).contains(&minute)
    } else {
        minute >= rule.start_minute || minute < rule.end_minute
    };
    in_hours && rule.days & (1 << day) != 0
}

#[cfg(test)]
#[path = "anomaly_tests.rs"]
mod tests;
