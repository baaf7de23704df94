//! Cost per request of the telemetry the gateway adds:
//! - a `warden.request` span with a remote parent and 6 stage child spans,
//!   through the OpenTelemetry layer and the batch processor, exporting to
//!   an exporter that discards (so the figure is the request path's, not a
//!   collector's); beside it the same spans with no subscriber, and with
//!   the subscriber but no exporter (propagation only);
//! - a counter + histogram update (`Metrics::request`) and a stage
//!   histogram update.

use std::future::Future;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tracing::Dispatch;
use warden_telemetry::{
    current_traceparent, request_span, set_parent_from_traceparent, stage_span, Metrics, Outcome,
    Stage, Telemetry, TelemetrySettings,
};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const STAGES: [Stage; 6] = [
    Stage::Authenticate,
    Stage::Route,
    Stage::Policy,
    Stage::InputGuard,
    Stage::Upstream,
    Stage::OutputGuard,
];

#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        drop(black_box(batch));
        std::future::ready(Ok(()))
    }
}

fn one_request() -> Option<String> {
    request(Some(TRACEPARENT))
}

fn request(traceparent: Option<&str>) -> Option<String> {
    let request = request_span("tools/call");
    if let Some(tp) = traceparent {
        set_parent_from_traceparent(&request, tp, None);
    }
    request.in_scope(|| {
        for stage in STAGES {
            let s = stage_span(stage);
            let _e = s.enter();
            black_box(&s);
        }
    });
    // What the gateway sends upstream.
    current_traceparent(&request)
}

fn spans(c: &mut Criterion) {
    let mut settings = TelemetrySettings::default();
    settings.logs.level = "warn".into();
    let mut g = c.benchmark_group("request_with_6_stage_spans");
    g.measurement_time(Duration::from_secs(4));

    let (dispatch, guard) =
        Telemetry::build_with_exporter(&settings, std::io::sink, Discard).expect("build");
    g.bench_function("otel_exporting", |b| {
        tracing::dispatcher::with_default(&dispatch, || b.iter(one_request))
    });
    drop(guard);

    let (dispatch, guard) = Telemetry::build(&settings, std::io::sink).expect("build");
    g.bench_function("propagation_only", |b| {
        tracing::dispatcher::with_default(&dispatch, || b.iter(one_request))
    });
    g.bench_function("propagation_only_new_trace", |b| {
        tracing::dispatcher::with_default(&dispatch, || b.iter(|| request(None)))
    });
    drop(guard);

    let none = Dispatch::none();
    g.bench_function("no_subscriber", |b| {
        tracing::dispatcher::with_default(&none, || b.iter(one_request))
    });
    g.finish();
}

fn metrics(c: &mut Criterion) {
    let m = Metrics::new();
    let mut g = c.benchmark_group("metrics");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("request_counter_and_histogram", |b| {
        b.iter(|| {
            m.request(
                black_box("tools/call"),
                Outcome::Ok,
                black_box(Duration::from_micros(420)),
            )
        })
    });
    g.bench_function("stage_histogram", |b| {
        b.iter(|| m.stage(Stage::Policy, black_box(Duration::from_micros(14))))
    });
    g.bench_function("render", |b| b.iter(|| black_box(m.render(&[]))));
    g.finish();
}

criterion_group!(benches, spans, metrics);
criterion_main!(benches);
