use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use governor::{Quota, RateLimiter};
use proptest::prelude::*;

use super::*;

fn settings(yaml: &str) -> LimitSettings {
    let raw: RawLimits = serde_saphyr::from_str(yaml).expect("yaml");
    raw.resolve().unwrap_or_else(|e| panic!("{e:?}"))
}

fn call<'a>(principal: &'a str, tool: &'a str) -> CallFacts<'a> {
    CallFacts {
        principal,
        server: "s",
        tool,
        ..Default::default()
    }
}

#[test]
fn defaults_are_a_per_principal_rate_concurrency_and_loop_detection() {
    let s = LimitSettings::default();
    assert_eq!(s.rate.len(), 1);
    assert_eq!(s.rate[0].id, "per-principal");
    assert_eq!(s.rate[0].per, vec![Dimension::Principal]);
    assert_eq!(s.rate[0].burst.get(), 300);
    assert_eq!(s.concurrency[0].max, 64);
    assert!(s.loops.is_some());
    assert!(s.breakers.is_none());
    assert!(s.budgets.is_empty());
    let off = settings("rate: []\nconcurrency: []\nloops: {enabled: false}\n");
    assert_eq!(off, LimitSettings::none());
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let raw: RawLimits = serde_saphyr::from_str(
        "rate:\n  - {rate: 10/fortnight, burst: 0, per: [principal, colour]}\n  - {id: a, rate: 0/min}\nconcurrency:\n  - {id: c}\nbudgets:\n  - {id: b, unit: 'US$', limit: -1, period: week}\nbreakers: {error_rate: 2, p99: soon}\n",
    )
    .unwrap();
    let problems = raw.resolve().unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
    for want in [
        "limits.rate[0].id",
        "limits.rate[0].per[1]",
        "limits.rate[0].rate",
        "limits.rate[0].burst",
        "limits.rate[1].rate",
        "limits.concurrency[0].max",
        "limits.budgets[0].unit",
        "limits.budgets[0].limit",
        "limits.budgets[0].period",
        "limits.breakers.error_rate",
        "limits.breakers.p99",
    ] {
        assert!(paths.contains(&want), "{want} missing from {problems:?}");
    }
    let unknown: Result<RawLimits, _> = serde_saphyr::from_str("rates: []\n");
    assert!(unknown.is_err());
}

#[test]
fn rates_parse() {
    assert_eq!(parse_rate("100/min"), Some(Duration::from_millis(600)));
    assert_eq!(parse_rate("10/s"), Some(Duration::from_millis(100)));
    assert_eq!(parse_rate("24/day"), Some(Duration::from_secs(3600)));
    for bad in ["", "0/min", "-1/s", "5", "5/week", "x/min"] {
        assert_eq!(parse_rate(bad), None, "{bad}");
    }
}

#[test]
fn the_burst_plus_one_call_is_refused_with_a_retry_after() {
    let l = Limiter::new(settings(
        "rate: [{id: r, rate: 60/min, burst: 3}]\nconcurrency: []\nloops: {enabled: false}\n",
    ));
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(l.admit(&call("ann", "t")).expect("within the burst"));
    }
    let Err(d) = l.admit(&call("ann", "t")) else {
        panic!("the fourth call passed")
    };
    assert_eq!(d.kind(), "rate");
    assert_eq!(d.rule(), "r");
    let wait = d.retry_after().unwrap();
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    // Another principal has buckets of their own.
    assert!(l.admit(&call("bob", "t")).is_ok());
}

#[test]
fn rules_match_by_glob_and_key_by_their_dimensions() {
    let l = Limiter::new(settings(
        "rate: [{id: writes, match: {tool: 'create_*'}, per: [principal, tool], rate: 1/min, burst: 1}]\nconcurrency: []\nloops: {enabled: false}\n",
    ));
    assert!(l.admit(&call("ann", "create_issue")).is_ok());
    assert!(l.admit(&call("ann", "create_issue")).is_err());
    assert!(
        l.admit(&call("ann", "create_branch")).is_ok(),
        "keyed by tool too"
    );
    for _ in 0..10 {
        assert!(l.admit(&call("ann", "read_issue")).is_ok(), "not matched");
    }
}

#[test]
fn concurrency_slots_are_released_when_a_call_ends() {
    let l = Limiter::new(settings(
        "rate: []\nconcurrency: [{id: c, per: [principal], max: 2}]\nloops: {enabled: false}\n",
    ));
    let a = l.admit(&call("ann", "t")).unwrap();
    let b = l.admit(&call("ann", "t")).unwrap();
    let d = l.admit(&call("ann", "t")).err().unwrap();
    assert_eq!(
        d,
        Denial::Concurrency {
            rule: "c".into(),
            max: 2
        }
    );
    assert_eq!(d.retry_after(), None);
    a.finish(Outcome {
        ok: true,
        latency: Duration::from_millis(1),
    });
    let c = l.admit(&call("ann", "t")).expect("a slot was freed");
    drop((b, c));
    assert!(l.admit(&call("ann", "t")).is_ok());
}

#[test]
fn a_loop_of_identical_calls_is_caught_and_other_arguments_pass() {
    let l = Limiter::new(settings(
        "rate: []\nconcurrency: []\nloops: {max_repeats: 3, window: 60s}\n",
    ));
    let same = CallFacts {
        args_hash: Some("h1"),
        ..call("ann", "t")
    };
    for _ in 0..3 {
        assert!(l.admit(&same).is_ok());
    }
    let d = l.admit(&same).err().expect("the fourth identical call");
    assert_eq!(d.kind(), "loop");
    assert!(d.retry_after().unwrap() > Duration::ZERO);
    let other = CallFacts {
        args_hash: Some("h2"),
        ..call("ann", "t")
    };
    assert!(l.admit(&other).is_ok());
}

#[test]
fn a_budget_is_cut_when_spent_and_refunded_when_the_call_never_ran() {
    let l = Limiter::new(settings(
        "rate: []\nconcurrency: []\nloops: {enabled: false}\nbudgets: [{id: b, per: [principal], unit: USD, limit: 1.0, period: day}]\n",
    ));
    let costly = CallFacts {
        cost: Some((0.4, "USD")),
        ..call("ann", "t")
    };
    for _ in 0..2 {
        l.admit(&costly).unwrap().finish(Outcome {
            ok: true,
            latency: Duration::ZERO,
        });
    }
    let d = l.admit(&costly).err().expect("0.8 + 0.4 > 1.0");
    let Denial::Budget {
        spent,
        limit,
        retry_after,
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert!((spent - 0.8).abs() < 1e-9 && *limit == 1.0);
    assert!(*retry_after <= Duration::from_secs(86_400));
    // A cheaper call still fits; one refused later (dropped) is refunded.
    let cheap = CallFacts {
        cost: Some((0.2, "USD")),
        ..call("ann", "t")
    };
    drop(l.admit(&cheap).unwrap());
    l.admit(&cheap).unwrap().finish(Outcome {
        ok: true,
        latency: Duration::ZERO,
    });
    let status = l.budget_status();
    assert_eq!(status.len(), 1);
    assert!((status[0].spent - 1.0).abs() < 1e-9, "{status:?}");
    assert_eq!(status[0].key, "ann");
    // Another unit is not this budget's.
    let credits = CallFacts {
        cost: Some((100.0, "credits")),
        ..call("ann", "t")
    };
    assert!(l.admit(&credits).is_ok());
}

#[test]
fn a_failing_tool_trips_its_breaker_and_a_good_probe_closes_it() {
    let l = Limiter::new(settings(
        "rate: []\nconcurrency: []\nloops: {enabled: false}\nbreakers: {error_rate: 0.5, min_calls: 4, window: 60s, open_for: 50ms}\n",
    ));
    let fail = Outcome {
        ok: false,
        latency: Duration::from_millis(1),
    };
    let good = Outcome {
        ok: true,
        latency: Duration::from_millis(1),
    };
    for _ in 0..4 {
        l.admit(&call("ann", "flaky")).unwrap().finish(fail);
    }
    let d = l.admit(&call("ann", "flaky")).err().expect("open");
    assert_eq!(d.kind(), "breaker");
    let t = l.take_transitions();
    assert!(
        t.iter().any(|t| t.scope == "s/flaky" && t.to == "open"),
        "{t:?}"
    );
    std::thread::sleep(Duration::from_millis(60));
    let probe = l
        .admit(&call("ann", "flaky"))
        .expect("a probe after open_for");
    assert!(
        l.admit(&call("bob", "flaky")).is_err(),
        "one probe at a time"
    );
    probe.finish(good);
    assert!(l.admit(&call("ann", "flaky")).is_ok(), "closed again");
    let t = l.take_transitions();
    assert!(t.iter().any(|t| t.to == "closed"), "{t:?}");
}

#[test]
fn slow_calls_trip_the_breaker_by_p99() {
    let l = Limiter::new(settings(
        "rate: []\nconcurrency: []\nloops: {enabled: false}\nbreakers: {p99: 100ms, min_calls: 5, open_for: 5m}\n",
    ));
    for _ in 0..5 {
        l.admit(&call("ann", "slow")).unwrap().finish(Outcome {
            ok: true,
            latency: Duration::from_millis(300),
        });
    }
    let d = l
        .admit(&call("ann", "slow"))
        .err()
        .expect("open by latency");
    assert!(d.retry_after().unwrap() > Duration::from_secs(200));
    assert!(l
        .breakers()
        .iter()
        .any(|(s, st)| s == "s/slow" && st.name() == "open"));
}

#[test]
fn periods_are_utc_days_and_months() {
    let at = |secs: u64| std::time::UNIX_EPOCH + Duration::from_secs(secs);
    // 2000-02-29T23:59:00Z
    let leap = at(951_868_740);
    assert_eq!(period_stamp(Period::Day, leap), "d2000-02-29");
    assert_eq!(period_stamp(Period::Month, leap), "m2000-02");
    assert_eq!(
        until_next_period(Period::Day, leap),
        Duration::from_secs(60)
    );
    assert_eq!(
        until_next_period(Period::Month, leap),
        Duration::from_secs(60)
    );
    assert_eq!(
        until_next_period(Period::Month, at(0)),
        Duration::from_secs(31 * 86_400)
    );
}

proptest! {
    /// Over any arrivals, a bucket admits at most burst + elapsed / period
    /// calls (the rule as configured, on governor's GCRA).
    #[test]
    fn admitted_calls_never_exceed_burst_plus_rate_times_elapsed(
        per_minute in 1u32..600,
        burst in 1u32..50,
        gaps in proptest::collection::vec(0u64..2_000, 1..300),
    ) {
        let period = parse_rate(&format!("{per_minute}/min")).unwrap();
        let quota = Quota::with_period(period).unwrap().allow_burst(NonZeroU32::new(burst).unwrap());
        let clock = FakeRelativeClock::default();
        let bucket = RateLimiter::dashmap_with_clock(quota, clock.clone());
        let mut elapsed = Duration::ZERO;
        let mut admitted = 0u64;
        for gap in gaps {
            clock.advance(Duration::from_millis(gap));
            elapsed += Duration::from_millis(gap);
            if bucket.check_key(&"k".to_owned()).is_ok() {
                admitted += 1;
            }
            let bound = u64::from(burst) + (elapsed.as_nanos() / period.as_nanos()) as u64;
            prop_assert!(admitted <= bound, "{admitted} admitted > {bound} after {elapsed:?}");
        }
    }

    /// Concurrent calls never overspend a budget.
    #[test]
    fn a_budget_is_never_overspent_by_concurrent_calls(
        costs in proptest::collection::vec(1u32..50, 1..64),
        limit in 1u32..500,
    ) {
        let l = Arc::new(Limiter::new(settings(&format!(
            "rate: []\nconcurrency: []\nloops: {{enabled: false}}\nbudgets: [{{id: b, per: [principal], unit: c, limit: {limit}, period: month}}]\n"
        ))));
        let threads: Vec<_> = costs
            .chunks(8)
            .map(|chunk| {
                let l = l.clone();
                let chunk = chunk.to_vec();
                std::thread::spawn(move || {
                    for cost in chunk {
                        let facts = CallFacts { cost: Some((f64::from(cost), "c")), ..call("ann", "t") };
                        if let Ok(a) = l.admit(&facts) {
                            a.finish(Outcome { ok: true, latency: Duration::ZERO });
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let spent: f64 = l.budget_status().iter().map(|s| s.spent).sum();
        prop_assert!(spent <= f64::from(limit) + 1e-9, "spent {spent} of {limit}");
    }
}

#[test]
fn the_backend_is_memory_unless_redis_is_configured() {
    assert_eq!(LimitSettings::default().backend, Backend::Memory);
    assert_eq!(settings("backend: memory\n").backend, Backend::Memory);
    let s = settings("redis: {url: 'redis://127.0.0.1:6379/2'}\n");
    let Backend::Redis(r) = &s.backend else {
        panic!("{s:?}")
    };
    assert_eq!(r.prefix, "warden");
    assert_eq!(r.timeout, Duration::from_millis(50));
    assert_eq!(r.fail, FailMode::Closed);
    assert_eq!(r.slot_ttl, Duration::from_secs(600));
    assert_eq!(r.url, RedisUrl::Resolved("redis://127.0.0.1:6379/2".into()));
    assert_eq!(s.redis_url_reference(), None);
    let s = settings(
        "backend: redis\nredis: {url: 'file:redis.url', prefix: 'prod:eu', timeout: 20ms, fail: open, slot_ttl: 1h}\n",
    );
    let Backend::Redis(r) = &s.backend else {
        panic!("{s:?}")
    };
    assert_eq!(r.fail, FailMode::Open);
    assert_eq!(r.prefix, "prod:eu");
    assert_eq!(
        s.redis_url_reference(),
        Some(("limits.redis.url", "file:redis.url"))
    );
}

#[test]
fn every_redis_problem_is_reported_with_its_path() {
    let problems = |yaml: &str| -> Vec<(String, String)> {
        let raw: RawLimits = serde_saphyr::from_str(yaml).expect("yaml");
        raw.resolve().expect_err(yaml)
    };
    let paths =
        |yaml: &str| -> Vec<String> { problems(yaml).into_iter().map(|(p, _)| p).collect() };
    assert_eq!(paths("backend: redis\n"), ["limits.redis.url"]);
    assert_eq!(paths("backend: disk\n"), ["limits.backend"]);
    assert_eq!(
        paths("backend: memory\nredis: {url: 'redis://h/0'}\n"),
        ["limits.backend"]
    );
    assert_eq!(
        paths(
            "redis: {url: 'redis://h/0', prefix: 'a b', timeout: 10s, fail: maybe, slot_ttl: 0s}\n"
        ),
        [
            "limits.redis.prefix",
            "limits.redis.timeout",
            "limits.redis.fail",
            "limits.redis.slot_ttl"
        ]
    );
    for url in ["http://h/0", "rediss://h/0", "redis://", "not a url"] {
        assert_eq!(
            paths(&format!("redis: {{url: '{url}'}}\n")),
            ["limits.redis.url"],
            "{url}"
        );
    }
    let inline = problems("redis: {url: 'redis://:s3cr3t-pw@h:6379/0'}\n");
    assert!(inline[0].1.contains("by reference"), "{inline:?}");
    assert!(!format!("{inline:?}").contains("s3cr3t"));
    // A resolved reference is checked too, without echoing it.
    let mut s = settings("redis: {url: 'env:X'}\n");
    let e = s.set_redis_url("https://user:s3cr3t@h".into()).unwrap_err();
    assert!(!e.contains("s3cr3t"), "{e}");
    s.set_redis_url("redis://:s3cr3t@h:6379/0".into())
        .expect("a password by reference is fine");
    assert!(!format!("{s:?}").contains("s3cr3t"));
}
