//! Guard throughput and latency.
//!
//! - `scan/*`: the full secret + PII + injection scan ([`Guard::detect`])
//!   over realistic tool output — 1 MiB of mixed JSON records, code and
//!   prose, 64 KiB of code, 1 MiB of prose, 1 MiB of technical
//!   documentation full of words that gate the injection rules — with
//!   nothing to find
//!   (`clean_*`) and with a finding every ~2 KiB (`findings_*`); bytes per
//!   second on one core.
//! - `output/4k_*`: `inspect_output` on a 4 KiB `tools/call` result: a
//!   JSON document, clean and with one secret to redact, and mixed text.
//! - `output/4k_*_model`: the same with `guards.output.model: on` (the
//!   learned injection model over every text field), and `model/4k_prose`:
//!   the model alone on 4 KiB of text.
//! - `input/typical`: `check_input` with a cached schema.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::value::RawValue;
use warden_guard::{Guard, GuardSettings};

#[path = "support/texts.rs"]
mod texts;

fn benches(c: &mut Criterion) {
    let guard = Guard::new(&GuardSettings::default()).expect("guard");

    let clean = [
        ("clean_mixed_1MiB", texts::mixed(1 << 20)),
        ("clean_code_64KiB", texts::code(64 << 10)),
        ("clean_prose_1MiB", texts::prose(1 << 20)),
        ("clean_docs_1MiB", texts::docs(1 << 20)),
    ];
    let mut g = c.benchmark_group("scan");
    for (name, text) in &clean {
        let found = guard.detect(text);
        assert!(
            found.is_empty(),
            "{name} must be clean: {:?}",
            &found[..found.len().min(5)]
        );
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(*name, |b| b.iter(|| guard.detect(text)));
    }
    for (name, text) in [
        (
            "findings_mixed_1MiB",
            texts::with_findings(&clean[0].1, 2048),
        ),
        (
            "findings_code_64KiB",
            texts::with_findings(&clean[1].1, 2048),
        ),
    ] {
        assert!(guard.detect(&text).len() >= text.len() / 4096, "{name}");
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| b.iter(|| guard.detect(&text)));
    }
    g.finish();

    let json_clean = RawValue::from_string(texts::result_4k(false)).expect("json");
    let json_secret = RawValue::from_string(texts::result_4k(true)).expect("json");
    let mixed = RawValue::from_string(texts::result_4k_mixed()).expect("json");
    let mut g = c.benchmark_group("output");
    g.throughput(Throughput::Bytes(json_clean.get().len() as u64));
    for (name, result) in [
        ("4k_json_clean", &json_clean),
        ("4k_json_one_secret", &json_secret),
        ("4k_mixed_clean", &mixed),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| guard.inspect_output("srv__tool", "srv", "tools/call", result))
        });
    }
    let mut settings = GuardSettings::default();
    settings.defaults.output_model = true;
    let with_model = Guard::new(&settings).expect("guard");
    for (name, result) in [
        ("4k_json_clean_model", &json_clean),
        ("4k_mixed_clean_model", &mixed),
    ] {
        assert!(
            with_model
                .inspect_output("srv__tool", "srv", "tools/call", result)
                .findings
                .is_empty(),
            "{name} must be clean"
        );
        g.bench_function(name, |b| {
            b.iter(|| with_model.inspect_output("srv__tool", "srv", "tools/call", result))
        });
    }
    g.finish();
    let prose = texts::prose(4 << 10);
    let model = warden_guard::learned::LinearModel::injection();
    c.benchmark_group("model")
        .throughput(Throughput::Bytes(prose.len() as u64))
        .bench_function("4k_prose", |b| b.iter(|| model.best_window(&prose)));
    assert!(guard
        .inspect_output("srv__tool", "srv", "tools/call", &json_clean)
        .rewritten
        .is_none());
    assert!(guard
        .inspect_output("srv__tool", "srv", "tools/call", &json_secret)
        .rewritten
        .is_some());

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
