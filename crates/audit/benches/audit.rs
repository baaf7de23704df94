//! Audit cost on the request path and sustained throughput.
//!
//! - `record/async`: one `AuditLog::record` of a typical call event, timed
//!   alone (chunks of 4096, each followed by an untimed flush so the queue
//!   never fills and nothing spills). Target: ≤ 5 µs p50. A pre-pass also
//!   prints p50/p99 of individually timed calls.
//! - `sustained/jsonl+sqlite`: 20 000 events recorded and flushed to JSONL
//!   and SQLite (events per second).
//! - `record_durable/one_caller`: latency of a durable record (an fsync).
//! - `record_durable/64_callers`: group commit under concurrency.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use warden_audit::{
    AuditLog, AuditSettings, Decision, Event, EventKind, OutputFacts, PrincipalFacts, RiskTier,
    TokenFacts,
};

fn event(i: usize) -> Event {
    Event {
        correlation_id: Some(format!("01J{i:023}")),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        session: Some("sess-7f3a0c".into()),
        client_addr: Some("10.1.2.3:51234".into()),
        principal: Some(PrincipalFacts {
            subject: format!("user-{}", i % 50),
            tenant: Some("acme".into()),
            client_id: Some("cursor".into()),
            agent_id: None,
            roles: vec!["developer".into()],
        }),
        token: Some(TokenFacts {
            kind: Some("jwt".into()),
            issuer: Some("https://idp.example.com".into()),
            audience: vec!["https://warden.example.com/mcp".into()],
            jti_hash: Some(
                "sha256:55c06c9a101ae1206a2ac61f1c4c353b2374b3e8cf0da8fe9056d30dfd01eb2e".into(),
            ),
            key_id: None,
        }),
        server: Some("github".into()),
        tool: Some("list_issues".into()),
        canonical_tool_id: Some("github/list_issues@sha256:9f2c".into()),
        manifest_hash: Some("sha256:9f2c".into()),
        action: Some("tools/call".into()),
        risk_tier: Some(RiskTier::Low),
        decision: Some(Decision::Allow),
        policy_ids: vec!["developers-read".into()],
        scopes: vec!["mcp".into()],
        input_hash: Some(
            "sha256:25033f604de8963bce63e93103c1cf1b4544cc479d20606936515e262efdfeba".into(),
        ),
        output: Some(OutputFacts {
            size: 2048,
            ..OutputFacts::default()
        }),
        latency_us: Some(850),
        upstream_status: Some("ok".into()),
        ..Event::new(EventKind::Call)
    }
}

fn trail(dir: &std::path::Path) -> AuditLog {
    let mut s = AuditSettings::in_dir(dir);
    s.anomaly = Default::default();
    // Room for a whole `sustained` burst: measure the writer, not the spill path.
    s.queue_capacity = 1 << 15;
    AuditLog::start(s).expect("audit starts").0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = trail(dir.path());
    const CHUNK: usize = 4096;

    // Individually timed calls: the request path's p50 and p99.
    let mut samples = Vec::with_capacity(20 * CHUNK);
    for _ in 0..20 {
        let events: Vec<Event> = (0..CHUNK).map(event).collect();
        for e in events {
            let t = Instant::now();
            log.record(e).unwrap();
            samples.push(t.elapsed());
        }
        rt.block_on(log.flush());
    }
    samples.sort();
    eprintln!(
        "record (async), {} calls timed one by one: p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.last().unwrap()
    );

    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(1));
    g.bench_function("async", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(CHUNK);
                let events: Vec<Event> = (0..n).map(event).collect();
                let t = Instant::now();
                for e in events {
                    log.record(e).unwrap();
                }
                total += t.elapsed();
                rt.block_on(log.flush());
                left -= n;
            }
            total
        })
    });
    g.finish();

    let mut g = c.benchmark_group("sustained");
    const N: usize = 20_000;
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("jsonl+sqlite", |b| {
        b.iter_batched(
            || (0..N).map(event).collect::<Vec<_>>(),
            |events| {
                for e in events {
                    log.record(e).unwrap();
                }
                rt.block_on(log.flush());
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("record_durable");
    g.sample_size(20);
    g.bench_function("one_caller", |b| {
        b.iter_batched(
            || event(1),
            |e| rt.block_on(log.record_durable(e)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("64_callers", |b| {
        b.iter_batched(
            || (0..64).map(event).collect::<Vec<_>>(),
            |events| {
                rt.block_on(async {
                    let tasks: Vec<_> = events
                        .into_iter()
                        .map(|e| {
                            let log = log.clone();
                            tokio::spawn(async move { log.record_durable(e).await })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap().unwrap();
                    }
                })
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let m = log.metrics_snapshot();
    eprintln!(
        "spilled during the benchmark: {} of {} recorded",
        m.spilled, m.recorded
    );
    rt.block_on(log.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
