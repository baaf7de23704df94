//! The Redis backend (`limits.redis`) against the real Redis on
//! 127.0.0.1:6379: the admission script's rules, two limiters sharing one
//! limit, and the fail modes behind a proxy that stalls and drops. Without
//! Redis these tests print `SKIPPED` and pass, unless
//! `WARDEN_REQUIRE_SERVICES=1`; the tests of secrets need no Redis.

mod redis {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use warden_limits::testing::{
        redis_available, unique_prefix, ProxyMode, RedisProxy, REDIS_URL as REDIS,
    };
    use warden_limits::{CallFacts, Denial, LimitSettings, Limiter, Outcome, RawLimits};

    fn settings(rules: &str, redis: &str) -> LimitSettings {
        let yaml = format!("{rules}\nredis: {{{redis}}}\n");
        let raw: RawLimits = serde_saphyr::from_str(&yaml).expect("yaml");
        raw.resolve().unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// A limiter on the real Redis under `prefix`, with a generous timeout
    /// (a loaded machine must not fail these).
    fn limiter(rules: &str, prefix: &str) -> Limiter {
        Limiter::new(settings(
            rules,
            &format!("url: '{REDIS}', prefix: '{prefix}', timeout: 2s"),
        ))
    }

    fn call<'a>(principal: &'a str, tool: &'a str) -> CallFacts<'a> {
        CallFacts {
            principal,
            server: "s",
            tool,
            ..Default::default()
        }
    }

    const DONE: Outcome = Outcome {
        ok: true,
        latency: Duration::ZERO,
    };

    async fn connection() -> ::redis::aio::MultiplexedConnection {
        ::redis::Client::open(REDIS)
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to Redis")
    }

    async fn keys(prefix: &str) -> Vec<String> {
        let mut c = connection().await;
        let mut keys: Vec<String> = ::redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(&mut c)
            .await
            .expect("KEYS");
        keys.sort();
        keys
    }

    async fn get(key: &str) -> Option<String> {
        ask("GET", key).await
    }

    /// `COMMAND key` (GET, ZCARD, PTTL) on a connection of the test's own.
    async fn ask<T: ::redis::FromRedisValue>(command: &str, key: &str) -> T {
        let mut c = connection().await;
        ::redis::cmd(command)
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{command} {key}: {e}"))
    }

    async fn forget(prefix: &str) {
        let keys = keys(prefix).await;
        if !keys.is_empty() {
            let mut c = connection().await;
            let _: () = ::redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut c)
                .await
                .expect("DEL");
        }
    }

    /// Polls `check` until it holds or 10 s pass.
    async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check().await {
            assert!(Instant::now() < deadline, "never happened: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn the_burst_plus_one_call_is_refused_with_a_retry_after_and_keys_expire() {
        let test = "the_burst_plus_one_call_is_refused_with_a_retry_after_and_keys_expire";
        if !redis_available(test) {
            return;
        }
        let prefix = unique_prefix("burst");
        let l = limiter(
            "rate: [{id: r, rate: 60/min, burst: 3}]\nconcurrency: []\nloops: {enabled: false}",
            &prefix,
        );
        for _ in 0..3 {
            l.decide(&call("ann", "t"))
                .await
                .expect("within the burst")
                .finish(DONE);
        }
        let d = l
            .decide(&call("ann", "t"))
            .await
            .err()
            .expect("the fourth call is refused");
        assert_eq!(d.kind(), "rate");
        assert_eq!(d.rule(), "r");
        let wait = d.retry_after().expect("a rate refusal says when");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            l.decide(&call("bob", "t")).await.is_ok(),
            "another principal has a bucket of its own"
        );

        // Namespaced under the prefix, one key per bucket, each expiring
        // once its arrival time is past (at most burst × 1 s here).
        let stored = keys(&prefix).await;
        assert_eq!(
            stored,
            vec![
                format!("{prefix}:rate:r:ann"),
                format!("{prefix}:rate:r:bob")
            ]
        );
        for k in &stored {
            let ttl: i64 = ask("PTTL", k).await;
            assert!((1..=3_100).contains(&ttl), "{k}: {ttl}");
        }
        forget(&prefix).await;
    }

    #[tokio::test]
    async fn concurrency_slots_are_capped_and_released_when_calls_end() {
        let test = "concurrency_slots_are_capped_and_released_when_calls_end";
        if !redis_available(test) {
            return;
        }
        let prefix = unique_prefix("slots");
        let l = limiter(
            "rate: []\nconcurrency: [{id: c, per: [principal], max: 2}]\nloops: {enabled: false}",
            &prefix,
        );
        let a = l.decide(&call("ann", "t")).await.expect("slot 1");
        let b = l.decide(&call("ann", "t")).await.expect("slot 2");
        let d = l.decide(&call("ann", "t")).await.err().expect("no slot 3");
        assert_eq!(
            d,
            Denial::Concurrency {
                rule: "c".into(),
                max: 2
            }
        );
        // The slot set holds the two calls in flight, with a lease.
        let key = format!("{prefix}:conc:c:ann");
        assert_eq!(
            ask::<i64>("ZCARD", &key).await,
            2,
            "a refusal takes no slot"
        );
        let ttl: i64 = ask("PTTL", &key).await;
        assert!((1..=600_002).contains(&ttl), "slot_ttl 10m: {ttl}");

        a.finish(DONE);
        // Released in the background: a slot comes free soon.
        let mut third = None;
        eventually("a finished call frees its slot", async || {
            third = l.decide(&call("ann", "t")).await.ok();
            third.is_some()
        })
        .await;
        drop((b, third));
        eventually("dropped calls free theirs", async || {
            ask::<i64>("ZCARD", &key).await == 0
        })
        .await;
        forget(&prefix).await;
    }

    #[tokio::test]
    async fn a_denial_by_one_budget_charges_no_other_rule() {
        let test = "a_denial_by_one_budget_charges_no_other_rule";
        if !redis_available(test) {
            return;
        }
        let prefix = unique_prefix("budgets");
        let l = limiter(
            "rate: [{id: r, per: [principal], rate: 1/min, burst: 10}]\n\
             concurrency: [{id: c, per: [principal], max: 5}]\n\
             loops: {enabled: false}\n\
             budgets:\n  \
               - {id: mine, per: [principal], unit: USD, limit: 5, period: day}\n  \
               - {id: team, per: [tenant], unit: USD, limit: 1, period: month}",
            &prefix,
        );
        let costly = CallFacts {
            tenant: Some("acme"),
            cost: Some((0.6, "USD")),
            ..call("ann", "t")
        };
        l.decide(&costly).await.expect("0.6 of 1").finish(DONE);
        let stored = keys(&prefix).await;
        let mine = stored
            .iter()
            .find(|k| k.contains(":budget:mine:ann:d"))
            .expect("the day budget's counter")
            .clone();
        let team = stored
            .iter()
            .find(|k| k.contains(":budget:team:acme:m"))
            .expect("the month budget's counter")
            .clone();
        let rate = format!("{prefix}:rate:r:ann");
        let tat = get(&rate).await;

        let d = l
            .decide(&costly)
            .await
            .err()
            .expect("0.6 + 0.6 > 1 for the team");
        let Denial::Budget {
            rule,
            spent,
            limit,
            cost,
            retry_after,
            ..
        } = &d
        else {
            panic!("{d:?}")
        };
        assert_eq!(rule, "team");
        assert!((spent - 0.6).abs() < 1e-9 && *limit == 1.0 && *cost == 0.6);
        assert!(*retry_after <= Duration::from_secs(31 * 86_400));
        // All or nothing: the other budget, the bucket and the slots are
        // as they were.
        assert_eq!(get(&mine).await.as_deref(), Some("0.6"));
        assert_eq!(get(&team).await.as_deref(), Some("0.6"));
        assert_eq!(get(&rate).await, tat, "no token taken");
        let slots: i64 = ask("ZCARD", &format!("{prefix}:conc:c:ann")).await;
        assert_eq!(slots, 0);
        forget(&prefix).await;
    }

    #[tokio::test]
    async fn a_budget_charge_is_refunded_when_the_call_never_ran() {
        let test = "a_budget_charge_is_refunded_when_the_call_never_ran";
        if !redis_available(test) {
            return;
        }
        let prefix = unique_prefix("refund");
        let l = limiter(
            "rate: []\nconcurrency: []\nloops: {enabled: false}\n\
             budgets: [{id: b, per: [principal], unit: USD, limit: 1, period: day}]",
            &prefix,
        );
        let costly = CallFacts {
            cost: Some((0.4, "USD")),
            ..call("ann", "t")
        };
        l.decide(&costly).await.expect("0.4").finish(DONE);
        let held = l.decide(&costly).await.expect("0.8");
        assert!(l.decide(&costly).await.is_err(), "1.2 > 1");
        let key = keys(&prefix).await.pop().expect("the counter");
        assert_eq!(get(&key).await.as_deref(), Some("0.8"));
        drop(held);
        eventually("the dropped call's charge is refunded", async || {
            get(&key).await.as_deref() == Some("0.4")
        })
        .await;
        let ttl: i64 = ask("PTTL", &key).await;
        assert!(
            ttl > 86_400_000 && ttl <= 2 * 86_400_000,
            "expires a day after its period: {ttl}"
        );
        l.decide(&costly).await.expect("fits again").finish(DONE);
        forget(&prefix).await;
    }

    #[tokio::test]
    async fn a_loop_of_identical_calls_is_caught_and_other_arguments_pass() {
        let test = "a_loop_of_identical_calls_is_caught_and_other_arguments_pass";
        if !redis_available(test) {
            return;
        }
        let prefix = unique_prefix("loops");
        let l = limiter(
            "rate: []\nconcurrency: []\nloops: {max_repeats: 3, window: 60s}",
            &prefix,
        );
        let same = CallFacts {
            args_hash: Some("h1"),
            ..call("ann", "t")
        };
        for _ in 0..3 {
            l.decide(&same)
                .await
                .expect("within the repeats")
                .finish(DONE);
        }
        let d = l
            .decide(&same)
            .await
            .err()
            .expect("the fourth identical call");
        assert_eq!(d.kind(), "loop");
        let wait = d.retry_after().expect("when");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        let other = CallFacts {
            args_hash: Some("h2"),
            ..call("ann", "t")
        };
        assert!(l.decide(&other).await.is_ok());
        // Calls without an argument hash ask Redis nothing at all.
        assert!(matches!(
            l.decide(&call("ann", "t")),
            warden_limits::Decision::Now(Ok(_))
        ));
        forget(&prefix).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_limiters_on_one_redis_never_exceed_burst_plus_rate_times_elapsed() {
        let test = "two_limiters_on_one_redis_never_exceed_burst_plus_rate_times_elapsed";
        if !redis_available(test) {
            return;
        }
        let prefix = unique_prefix("shared-rate");
        let rules = "rate: [{id: r, per: [tool], rate: 20/s, burst: 5}]\nconcurrency: []\nloops: {enabled: false}";
        let period = Duration::from_millis(50);
        let replicas = [
            Arc::new(limiter(rules, &prefix)),
            Arc::new(limiter(rules, &prefix)),
        ];
        let admitted = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let l = replicas[i % 2].clone();
            let admitted = admitted.clone();
            tasks.spawn(async move {
                let mut mine = 0usize;
                while started.elapsed() < Duration::from_millis(600) {
                    if let Ok(a) = l.decide(&call("anyone", "t")).await {
                        a.finish(DONE);
                        admitted.fetch_add(1, Ordering::Relaxed);
                        mine += 1;
                    }
                }
                mine
            });
        }
        let mut per_task = Vec::new();
        while let Some(n) = tasks.join_next().await {
            per_task.push(n.expect("task"));
        }
        let elapsed = started.elapsed();
        let admitted = admitted.load(Ordering::Relaxed) as u128;
        let bound = 5 + elapsed.as_nanos() / period.as_nanos();
        assert!(
            admitted <= bound,
            "{admitted} admitted > burst 5 + {elapsed:?} / 50ms = {bound}"
        );
        assert!(admitted >= 5, "at least the burst passes: {per_task:?}");
        forget(&prefix).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_limiters_on_one_redis_never_overspend_a_budget_nor_exceed_a_cap() {
        let test = "two_limiters_on_one_redis_never_overspend_a_budget_nor_exceed_a_cap";
        if !redis_available(test) {
            return;
        }
        let prefix = unique_prefix("shared-budget");
        let rules =
            "rate: []\nconcurrency: [{id: c, per: [principal], max: 3}]\nloops: {enabled: false}\n\
                     budgets: [{id: b, per: [principal], unit: c, limit: 40, period: month}]";
        let replicas = [
            Arc::new(limiter(rules, &prefix)),
            Arc::new(limiter(rules, &prefix)),
        ];
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let spent = Arc::new(Mutex::new(0.0f64));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..12u32 {
            let l = replicas[i as usize % 2].clone();
            let (in_flight, most, spent) = (in_flight.clone(), most.clone(), spent.clone());
            tasks.spawn(async move {
                // Until the budget refuses a call of the most a call costs.
                for j in 0..200u32 {
                    let cost = f64::from(1 + (i * 7 + j * 3) % 4);
                    let facts = CallFacts {
                        cost: Some((cost, "c")),
                        ..call("ann", "t")
                    };
                    match l.decide(&facts).await {
                        Ok(a) => {
                            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            *spent.lock().expect("spent") += cost;
                            a.finish(DONE);
                        }
                        Err(Denial::Budget { cost: 4.0, .. }) => break,
                        Err(_) => {}
                    }
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("task");
        }
        let spent = *spent.lock().expect("spent");
        assert!(spent <= 40.0, "spent {spent} of 40");
        assert!(spent > 36.0, "a call of 4 was refused: {spent} spent");
        let most = most.load(Ordering::SeqCst);
        assert!((1..=3).contains(&most), "{most} calls in flight at once");
        let key = keys(&prefix)
            .await
            .into_iter()
            .find(|k| k.contains(":budget:"))
            .expect("the counter");
        let stored: f64 = get(&key)
            .await
            .and_then(|v| v.parse().ok())
            .expect("a number");
        assert!(
            (stored - spent).abs() < 1e-9,
            "Redis counted {stored}, the calls spent {spent}"
        );
        forget(&prefix).await;
    }

    /// A proxy to the real Redis and a limiter behind it (timeout 200ms,
    /// `fail`, one rate rule: burst 3, 1/min) that has decided once;
    /// `None` when the test is skipped.
    async fn behind_proxy(test: &str, fail: &str) -> Option<(RedisProxy, String, Limiter)> {
        if !redis_available(test) {
            return None;
        }
        let proxy = RedisProxy::to_redis().await.expect("proxy");
        let prefix = unique_prefix(test);
        let l = Limiter::new(settings(
            "rate: [{id: r, per: [principal], rate: 1/min, burst: 3}]\nconcurrency: [{id: c, max: 50}]\nloops: {enabled: false}",
            &format!(
                "url: '{}', prefix: '{prefix}', timeout: 200ms, fail: {fail}",
                proxy.url()
            ),
        ));
        decide_soon(&l, &call("ann", "t")).await.expect("Redis up");
        Some((proxy, prefix, l))
    }

    /// Log lines, captured.
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("logs").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Logs of this thread, captured until the guard drops.
    fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn logged(logs: &Logs) -> String {
        String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf-8")
    }

    /// Decides within 5 s (never hangs on a silent Redis).
    async fn decide_soon(l: &Limiter, facts: &CallFacts<'_>) -> Result<(), Denial> {
        tokio::time::timeout(Duration::from_secs(5), l.decide(facts))
            .await
            .expect("a decision within about the timeout, not a hang")
            .map(|a| a.finish(DONE))
    }

    /// After an outage: waits until Redis decides again, then shows the
    /// rate limit applies (at most the burst of 3 admitted in all).
    async fn limits_apply_again(l: &Limiter, admitted_before: usize) {
        let mut admitted = admitted_before;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            assert!(Instant::now() < deadline, "limits never applied again");
            match decide_soon(l, &call("ann", "t")).await {
                Ok(()) => admitted += 1,
                Err(Denial::Rate { .. }) => break,
                Err(Denial::Unavailable { .. }) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        assert!(admitted <= 3, "{admitted} admitted by a burst of 3");
    }

    #[tokio::test]
    async fn one_decision_is_one_round_trip_whatever_the_rules() {
        let test = "one_decision_is_one_round_trip_whatever_the_rules";
        if !redis_available(test) {
            return;
        }
        let proxy = RedisProxy::to_redis().await.expect("proxy");
        let prefix = unique_prefix(test);
        let l = Limiter::new(settings(
            "rate:\n  - {id: a, per: [principal], rate: 100/s, burst: 100}\n  - {id: b, per: [tool], rate: 100/s, burst: 100}\n\
             concurrency: []\nloops: {max_repeats: 100, window: 1s}\n\
             budgets: [{id: m, per: [principal], unit: USD, limit: 100, period: day}]",
            &format!("url: '{}', prefix: '{prefix}', timeout: 2s", proxy.url()),
        ));
        let facts = CallFacts {
            args_hash: Some("h"),
            cost: Some((0.5, "USD")),
            ..call("ann", "t")
        };
        // The first decision connects and loads the script.
        l.decide(&facts).await.expect("admitted").finish(DONE);
        let before = proxy.requests();
        for _ in 0..10 {
            l.decide(&facts).await.expect("admitted").finish(DONE);
        }
        assert_eq!(
            proxy.requests() - before,
            10,
            "four rules (two rates, loops, a budget): one request each"
        );
        assert_eq!(
            get(&keys(&prefix).await[0]).await.as_deref(),
            Some("5.5"),
            "charged 11 × 0.5"
        );
        forget(&prefix).await;
    }

    #[tokio::test]
    async fn fail_closed_refuses_while_redis_stalls_or_drops_and_limits_apply_again() {
        let test = "fail_closed_refuses_while_redis_stalls_or_drops_and_limits_apply_again";
        let Some((proxy, prefix, l)) = behind_proxy(test, "closed").await else {
            return;
        };

        proxy.set(ProxyMode::Stall);
        let d = decide_soon(&l, &call("ann", "t"))
            .await
            .expect_err("stalled");
        assert_eq!(d.kind(), "unavailable");
        assert_eq!(d.retry_after(), Some(Duration::from_secs(1)));
        proxy.set(ProxyMode::Forward);
        // The stalled call may have been counted once Redis got it: that
        // only leaves fewer of the burst.
        limits_apply_again(&l, 1).await;

        forget(&prefix).await;
        proxy.set(ProxyMode::Drop);
        let d = decide_soon(&l, &call("ann", "t"))
            .await
            .expect_err("dropped");
        assert_eq!(d.kind(), "unavailable");
        proxy.set(ProxyMode::Forward);
        limits_apply_again(&l, 0).await;

        let counted = l.backend_counters().expect("a Redis backend");
        assert!(counted.refused >= 2, "{counted:?}");
        assert_eq!(counted.admitted_unlimited, 0);
        forget(&prefix).await;
    }

    #[tokio::test]
    async fn fail_open_admits_while_redis_stalls_or_drops_and_limits_apply_again() {
        let test = "fail_open_admits_while_redis_stalls_or_drops_and_limits_apply_again";
        let Some((proxy, prefix, l)) = behind_proxy(test, "open").await else {
            return;
        };

        proxy.set(ProxyMode::Drop);
        for _ in 0..5 {
            decide_soon(&l, &call("ann", "t"))
                .await
                .expect("admitted unlimited while Redis is gone");
        }
        proxy.set(ProxyMode::Stall);
        decide_soon(&l, &call("ann", "t"))
            .await
            .expect("admitted unlimited while Redis stalls");
        let counted = l.backend_counters().expect("a Redis backend");
        assert!(counted.admitted_unlimited >= 6, "{counted:?}");
        assert_eq!(counted.refused, 0);

        proxy.set(ProxyMode::Forward);
        forget(&prefix).await;
        limits_apply_again(&l, 0).await;
        forget(&prefix).await;
    }

    #[tokio::test]
    async fn an_outage_is_logged_once_without_the_redis_password_and_its_end_once() {
        let test = "an_outage_is_logged_once_without_the_redis_password_and_its_end_once";
        let (logs, _guard) = capture_logs();
        let Some((proxy, prefix, l)) = behind_proxy(test, "closed").await else {
            return;
        };
        proxy.set(ProxyMode::Drop);
        for _ in 0..4 {
            let d = decide_soon(&l, &call("ann", "t")).await.expect_err("down");
            assert!(!format!("{d:?}").contains("127.0.0.1"), "{d:?}");
        }
        proxy.set(ProxyMode::Forward);
        eventually("Redis decides again", async || {
            !matches!(
                decide_soon(&l, &call("bob", "t")).await,
                Err(Denial::Unavailable { .. })
            )
        })
        .await;

        let text = logged(&logs);
        let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
        assert_eq!(count("limits backend (Redis) unavailable"), 1, "{text}");
        assert_eq!(count("limits backend (Redis) answering again"), 1, "{text}");
        forget(&prefix).await;
    }

    #[tokio::test]
    async fn a_redis_url_password_never_shows_in_settings_errors_or_logs() {
        let (logs, _guard) = capture_logs();

        // Inline, a password is refused, and the message does not echo it.
        let raw: RawLimits =
            serde_saphyr::from_str("redis: {url: 'redis://:hunter2hunter2@127.0.0.1:6379/0'}\n")
                .expect("yaml");
        let problems = raw.resolve().expect_err("inline password");
        assert_eq!(problems[0].0, "limits.redis.url");
        assert!(!format!("{problems:?}").contains("hunter2"), "{problems:?}");

        // By reference it is accepted, and never printed.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let raw: RawLimits = serde_saphyr::from_str(
            "rate: [{id: r, rate: 1/s}]\nredis: {url: 'env:WARDEN_TEST_LIMITS_REDIS', timeout: 300ms}\n",
        )
        .expect("yaml");
        assert!(!format!("{raw:?}").contains("WARDEN_TEST"), "{raw:?}");
        let mut s = raw.resolve().expect("valid");
        assert_eq!(
            s.redis_url_reference(),
            Some(("limits.redis.url", "env:WARDEN_TEST_LIMITS_REDIS"))
        );
        s.set_redis_url(format!("redis://:hunter2hunter2@127.0.0.1:{closed}/0"))
            .expect("a usable URL");
        assert!(!format!("{s:?}").contains("hunter2"), "{s:?}");
        let l = Limiter::new(s);
        assert!(!format!("{l:?}").contains("hunter2"));
        let d = l
            .decide(&call("ann", "t"))
            .await
            .err()
            .expect("nothing listens: fail closed");
        assert_eq!(d.kind(), "unavailable");
        let text = logged(&logs);
        assert!(
            text.contains("limits backend (Redis) unavailable"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }
}
