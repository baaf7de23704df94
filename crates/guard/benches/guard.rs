//! Guard throughput and latency.
//!
//! - `scan/clean_mixed`: the full secret + PII + injection scan over
//!   realistic tool output (JSON records, source code, prose) in which
//!   nothing is found — bytes per second on one core.
//! - `output/4k_*`: `inspect_output` on a 4 KiB `tools/call` result, clean
//!   and with one secret to redact.
//! - `input/typical`: `check_input` with a cached schema.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::value::RawValue;
use warden_guard::{Guard, GuardSettings};

const PROSE: &str = "The deployment finished without errors. Each service reported healthy \
within the expected window, and the queue drained before the next batch arrived. \
We reviewed the latency histogram for the last week: the median stayed flat while the tail \
improved after the cache change. Nobody needs to act on this report; it is kept for the record. ";

const CODE: &str = r#"fn merge(left: &[u32], right: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        if left[i] <= right[j] { out.push(left[i]); i += 1; } else { out.push(right[j]); j += 1; }
    }
    out.extend_from_slice(&left[i..]);
    out.extend_from_slice(&right[j..]);
    out
}
def summarize(rows):
    total = sum(r["amount"] for r in rows)
    return {"count": len(rows), "total": round(total, 2)}
"#;

fn json_record(i: usize) -> String {
    format!(
        r#"{{"id": {i}, "name": "widget-{i}", "status": "active", "price": {}.{:02}, "tags": ["blue", "large"], "owner": "team-{}", "updated": "2024-03-{:02}T10:00:00Z", "count": {}}}"#,
        i % 997,
        i % 100,
        i % 17,
        1 + i % 28,
        i * 7 % 1000
    )
}

fn mixed(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 1024);
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(PROSE);
        s.push('\n');
        s.push_str(CODE);
        for _ in 0..8 {
            s.push_str(&json_record(i));
            s.push('\n');
            i += 1;
        }
    }
    s
}

fn benches(c: &mut Criterion) {
    let guard = Guard::new(&GuardSettings::default()).expect("guard");
    let text = mixed(1 << 20);
    let found = guard.detect(&text);
    assert!(
        found.is_empty(),
        "bench text must be clean: {:?}",
        &found[..found.len().min(5)]
    );

    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("clean_mixed_1MiB", |b| b.iter(|| guard.detect(&text)));
    g.finish();

    let body = mixed(3900);
    let body = &body[..body.char_indices().nth(3900).map_or(body.len(), |(i, _)| i)];
    let clean = serde_json::json!({"content": [{"type": "text", "text": body}], "isError": false})
        .to_string();
    let clean = RawValue::from_string(clean).expect("json");
    let secret = format!("{} aws key AKIA{}", &body[..3800], "Z7QRS2BVX4MN6PLK");
    let dirty =
        serde_json::json!({"content": [{"type": "text", "text": secret}], "isError": false})
            .to_string();
    let dirty = RawValue::from_string(dirty).expect("json");
    let mut g = c.benchmark_group("output");
    g.throughput(Throughput::Bytes(clean.get().len() as u64));
    g.bench_function("4k_clean", |b| {
        b.iter(|| guard.inspect_output("srv__tool", "srv", "tools/call", &clean))
    });
    g.bench_function("4k_one_secret", |b| {
        b.iter(|| guard.inspect_output("srv__tool", "srv", "tools/call", &dirty))
    });
    g.finish();

    let schema = RawValue::from_string(
        r#"{"type":"object","properties":{"path":{"type":"string"},"limit":{"type":"integer","minimum":1},"recursive":{"type":"boolean"}},"required":["path"]}"#.into(),
    )
    .expect("json");
    let args = RawValue::from_string(
        r#"{"path":"/srv/data/reports/2024","limit":50,"recursive":true}"#.into(),
    )
    .expect("json");
    c.bench_function("input/typical", |b| {
        b.iter(|| guard.check_input("fs__list", "fs", Some(&schema), Some(&args)))
    });
}

criterion_group!(guard_benches, benches);
criterion_main!(guard_benches);
