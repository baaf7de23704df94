//! The limits stage's cost per call: `decide` then `finish`, with three
//! matching rules (a rate rule, a concurrency cap and a budget) that never
//! refuse, in memory and in Redis (one round trip, to the real Redis on
//! 127.0.0.1:6379; skipped without it).
//!
//! Target (issue 16): ≤ 2 µs per call in memory.
//!
//! `cargo bench -p warden-limits --bench limits`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use warden_limits::testing::{redis_available, unique_prefix, REDIS_URL};
use warden_limits::{CallFacts, Decision, Limiter, Outcome, RawLimits};

/// Three rules every call matches and none refuses.
const RULES: &str = "rate: [{id: r, per: [principal], rate: 1000000000/s, burst: 1000000}]\n\
    concurrency: [{id: c, per: [principal], max: 100000}]\n\
    budgets: [{id: b, per: [tenant], unit: USD, limit: 1000000000000, period: month}]\n\
    loops: {enabled: false}\n";

fn limiter(extra: &str) -> Limiter {
    let raw: RawLimits = serde_saphyr::from_str(&format!("{RULES}{extra}")).expect("yaml");
    Limiter::new(raw.resolve().expect("valid"))
}

const FACTS: CallFacts<'static> = CallFacts {
    principal: "iss|acme|alice",
    tenant: Some("acme"),
    client: Some("client-1"),
    agent: None,
    server: "github",
    tool: "create_issue",
    args_hash: Some("3b5d5c3712955042212316173ccf37be"),
    cost: Some((0.001, "USD")),
};

const DONE: Outcome = Outcome {
    ok: true,
    latency: Duration::from_millis(3),
};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("limits");

    let memory = limiter("");
    g.bench_function("memory: decide + finish, 3 rules", |b| {
        b.iter(|| match memory.decide(black_box(&FACTS)) {
            Decision::Now(Ok(admission)) => admission.finish(DONE),
            Decision::Now(Err(denial)) => panic!("{denial:?}"),
            Decision::Shared(_) => panic!("the memory backend awaits nothing"),
        })
    });

    if redis_available("limits bench: redis") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let prefix = unique_prefix("bench");
        let redis = limiter(&format!(
            "redis: {{url: '{REDIS_URL}', prefix: '{prefix}', timeout: 1s}}\n"
        ));
        g.bench_function("redis: decide + finish, 3 rules, one round trip", |b| {
            b.iter(|| {
                runtime.block_on(async {
                    match redis.decide(black_box(&FACTS)).await {
                        Ok(admission) => admission.finish(DONE),
                        Err(denial) => panic!("{denial:?}"),
                    }
                })
            })
        });
        let lost = redis.backend_counters().map(|c| c.releases_lost);
        assert_eq!(lost, Some(0), "every slot was released");
        drop(redis);
        runtime.block_on(forget(&prefix));
    }
    g.finish();
}

/// Deletes the bench's keys (the budget's would live a month).
async fn forget(prefix: &str) {
    let Ok(client) = redis::Client::open(REDIS_URL) else {
        return;
    };
    let Ok(mut c) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut c).await;
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
