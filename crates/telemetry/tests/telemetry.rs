//! End to end: spans through the real OTLP/HTTP exporter into a real
//! receiver on loopback; trace context in and out; logs through the
//! subscriber `Telemetry::build` assembles.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::dispatcher;
use tracing_subscriber::fmt::MakeWriter;
use url::Url;
use warden_telemetry::test_support::{OtlpReceiver, ReceivedSpan};
use warden_telemetry::{
    current_traceparent, current_tracestate, request_span, set_parent_from_traceparent, stage_span,
    trace_id_of, HeaderValue, LogFormat, OtlpSettings, Stage, Telemetry, TelemetrySettings,
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

const STAGES: [Stage; 6] = [
    Stage::Authenticate,
    Stage::Route,
    Stage::Policy,
    Stage::InputGuard,
    Stage::Upstream,
    Stage::OutputGuard,
];

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = CaptureWriter;
    fn make_writer(&'a self) -> CaptureWriter {
        CaptureWriter(self.0.clone())
    }
}

fn otlp_settings(receiver: &OtlpReceiver) -> TelemetrySettings {
    let mut otlp = OtlpSettings::new(Url::parse(&receiver.endpoint()).unwrap());
    otlp.service_name = "warden-test".into();
    otlp.headers = vec![(
        "authorization".into(),
        HeaderValue::new("Bearer otlp-header-s3cr3t"),
    )];
    otlp.timeout = Duration::from_secs(5);
    let mut settings = TelemetrySettings::default();
    settings.otlp = Some(otlp);
    settings
}

fn by_name<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "{name}: {spans:#?}");
    found[0]
}

#[test]
fn spans_reach_the_collector_with_the_callers_trace() {
    let receiver = OtlpReceiver::start().unwrap();
    let logs = Capture::default();
    let (dispatch, guard) = Telemetry::build(&otlp_settings(&receiver), logs.clone()).unwrap();

    let (outgoing, tracestate, trace_id) = dispatcher::with_default(&dispatch, || {
        let request = request_span("tools/call");
        assert!(set_parent_from_traceparent(
            &request,
            TRACEPARENT,
            Some("congo=t61rcWkgMzE")
        ));
        request.in_scope(|| {
            for stage in STAGES {
                let s = stage_span(stage);
                let _e = s.enter();
                tracing::info!(token = "stage-secret-value", "stage done");
            }
        });
        request.record("mcp.tool", "github__create_issue");
        (
            current_traceparent(&request),
            current_tracestate(&request),
            trace_id_of(&request),
        )
    });
    guard.flush().unwrap();
    let spans = receiver.wait_for_spans(7, Duration::from_secs(10));
    assert_eq!(spans.len(), 7, "{spans:#?}");
    assert_eq!(receiver.rejected(), 0);

    let request = by_name(&spans, "warden.request");
    assert_eq!(request.trace_id, TRACE_ID);
    assert_eq!(request.parent_span_id, PARENT_ID);
    assert_eq!(request.attributes["mcp.method"], "tools/call");
    assert_eq!(request.attributes["mcp.tool"], "github__create_issue");
    assert_eq!(request.resource["service.name"], "warden-test");
    assert_eq!(request.scope, "warden");
    for stage in STAGES {
        let s = by_name(&spans, stage.span_name());
        assert_eq!(s.trace_id, TRACE_ID, "{}", stage.span_name());
        assert_eq!(s.parent_span_id, request.span_id, "{}", stage.span_name());
        assert_ne!(s.span_id, request.span_id);
        // The event inside the stage became a span event, redacted.
        let (_, attrs) = s
            .events
            .iter()
            .find(|(name, _)| name == "stage done")
            .expect("span event");
        assert_eq!(attrs["token"], "[redacted]");
    }

    // What Warden sends on: the caller's trace, Warden's request span.
    assert_eq!(
        outgoing.as_deref(),
        Some(format!("00-{TRACE_ID}-{}-01", request.span_id).as_str())
    );
    assert_eq!(tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
    assert_eq!(trace_id.as_deref(), Some(TRACE_ID));

    // The configured header arrived; its value is nowhere in the logs.
    let exports = receiver.exports();
    assert!(!exports.is_empty());
    assert!(exports
        .iter()
        .all(|e| e.headers.get("authorization").map(String::as_str)
            == Some("Bearer otlp-header-s3cr3t")));
    assert!(exports.iter().all(
        |e| e.headers.get("content-type").map(String::as_str) == Some("application/x-protobuf")
    ));
    let stats = guard.export_stats();
    assert_eq!(stats.spans_exported(), 7);
    assert_eq!(stats.export_failures(), 0);
    let text = logs.text();
    assert_eq!(text.lines().count(), STAGES.len(), "{text}");
    assert!(!text.contains("stage-secret-value"), "{text}");
    assert!(!text.contains("otlp-header-s3cr3t"), "{text}");
    guard.shutdown().unwrap();
}

#[test]
fn a_malformed_traceparent_starts_a_new_trace() {
    let receiver = OtlpReceiver::start().unwrap();
    let (dispatch, guard) = Telemetry::build(&otlp_settings(&receiver), std::io::sink).unwrap();
    let trace_id = dispatcher::with_default(&dispatch, || {
        let request = request_span("evil/method");
        let bad = TRACEPARENT.to_uppercase();
        assert!(!set_parent_from_traceparent(&request, &bad, None));
        let _e = request.enter();
        trace_id_of(&request)
    });
    guard.flush().unwrap();
    let spans = receiver.wait_for_spans(1, Duration::from_secs(10));
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(spans[0].parent_span_id, "");
    assert_ne!(spans[0].trace_id, TRACE_ID);
    assert_eq!(trace_id.as_deref(), Some(spans[0].trace_id.as_str()));
    // Unknown methods are bounded in span attributes as in metrics.
    assert_eq!(spans[0].attributes["mcp.method"], "other");
}

#[test]
fn a_parent_cannot_be_set_once_the_span_started() {
    let receiver = OtlpReceiver::start().unwrap();
    let (dispatch, _guard) = Telemetry::build(&otlp_settings(&receiver), std::io::sink).unwrap();
    dispatcher::with_default(&dispatch, || {
        let request = request_span("ping");
        let _ = current_traceparent(&request);
        assert!(!set_parent_from_traceparent(&request, TRACEPARENT, None));
    });
}

#[test]
fn without_otlp_the_callers_context_passes_through_unchanged() {
    let (dispatch, guard) = Telemetry::build(&TelemetrySettings::default(), std::io::sink).unwrap();
    dispatcher::with_default(&dispatch, || {
        let request = request_span("tools/call");
        assert!(set_parent_from_traceparent(
            &request,
            TRACEPARENT,
            Some("congo=t61rcWkgMzE")
        ));
        assert_eq!(trace_id_of(&request).as_deref(), Some(TRACE_ID));
        assert_eq!(current_traceparent(&request).as_deref(), Some(TRACEPARENT));
        assert_eq!(
            current_tracestate(&request).as_deref(),
            Some("congo=t61rcWkgMzE")
        );
        // From a stage span below it, as the gateway asks in the Upstream
        // stage (inside the request span). Nothing exports, so the stage
        // span is skipped (none, free) and the request span's context is
        // the one passed on.
        request.in_scope(|| {
            let upstream = stage_span(Stage::Upstream);
            assert!(upstream.is_none(), "no stage spans without an exporter");
            assert_eq!(current_traceparent(&upstream).as_deref(), Some(TRACEPARENT));
            assert_eq!(
                current_tracestate(&upstream).as_deref(),
                Some("congo=t61rcWkgMzE")
            );
            assert_eq!(trace_id_of(&upstream).as_deref(), Some(TRACE_ID));
        });

        // No caller context, no export: nothing to propagate.
        let root = request_span("ping");
        assert_eq!(current_traceparent(&root), None);
        assert_eq!(trace_id_of(&root), None);
        // A bad value is refused here too.
        let other = request_span("ping");
        assert!(!set_parent_from_traceparent(&other, "00-zz", None));
        assert_eq!(current_traceparent(&other), None);
    });
    guard.shutdown().unwrap();
}

#[test]
fn no_context_without_the_subscriber() {
    let span = tracing::Span::none();
    assert!(!set_parent_from_traceparent(&span, TRACEPARENT, None));
    assert_eq!(current_traceparent(&span), None);
    assert_eq!(trace_id_of(&span), None);
}

const FORGED: &str = "x\n{\"level\":\"ERROR\",\"message\":\"forged\"}";

#[test]
fn json_logs_are_redacted_and_cannot_be_forged() {
    let logs = Capture::default();
    let (dispatch, _guard) = Telemetry::build(&TelemetrySettings::default(), logs.clone()).unwrap();
    dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("warden.request", authorization = "Bearer span-secret");
        let _e = span.enter();
        tracing::info!(token = "secret-value", argument = FORGED, "tool called");
        tracing::debug!("below the level");
    });
    let text = logs.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["message"], "tool called");
    assert_eq!(v["token"], "[redacted]");
    assert_eq!(v["argument"], FORGED, "the value survives, escaped");
    assert_eq!(v["spans"][0]["authorization"], "[redacted]");
    assert!(!text.contains("secret-value") && !text.contains("span-secret"));
}

#[test]
fn pretty_logs_are_redacted_and_cannot_be_forged() {
    let logs = Capture::default();
    let mut settings = TelemetrySettings::default();
    settings.logs.format = LogFormat::Pretty;
    settings.logs.level = "debug".into();
    let (dispatch, _guard) = Telemetry::build(&settings, logs.clone()).unwrap();
    dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("warden.request", client_secret = "span-secret", n = 3);
        let _e = span.enter();
        tracing::debug!(token = "secret-value", argument = FORGED, "tool\ncalled");
    });
    let text = logs.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains(" DEBUG "), "{text}");
    assert!(lines[0].contains("tool\\ncalled"), "{text}");
    assert!(lines[0].contains("token=[redacted]"), "{text}");
    assert!(
        lines[0].contains("in warden.request{client_secret=[redacted] n=3}"),
        "{text}"
    );
    assert!(!text.contains("secret-value") && !text.contains("span-secret"));
}

/// An exporter that never returns until released: the collector hangs.
#[derive(Debug)]
struct Stuck {
    entered: Arc<std::sync::atomic::AtomicUsize>,
    release: Arc<(Mutex<bool>, std::sync::Condvar)>,
}

impl opentelemetry_sdk::trace::SpanExporter for Stuck {
    fn export(
        &self,
        _batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> impl std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        self.entered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (lock, cvar) = &*self.release;
        let mut released = lock.lock().unwrap();
        while !*released {
            released = cvar.wait(released).unwrap();
        }
        std::future::ready(Ok(()))
    }
}

#[test]
fn a_hung_collector_never_blocks_the_request_path() {
    let entered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let release = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let exporter = Stuck {
        entered: entered.clone(),
        release: release.clone(),
    };
    let (dispatch, guard) =
        Telemetry::build_with_exporter(&TelemetrySettings::default(), std::io::sink, exporter)
            .unwrap();
    let started = std::time::Instant::now();
    dispatcher::with_default(&dispatch, || {
        // Far more than the queue holds (2048) and than one batch (512),
        // so the exporter is called and hangs while spans keep ending.
        for _ in 0..3_000 {
            let request = request_span("tools/call");
            set_parent_from_traceparent(&request, TRACEPARENT, None);
            request.in_scope(|| {
                let s = stage_span(Stage::Policy);
                let _e = s.enter();
            });
        }
    });
    let elapsed = started.elapsed();
    // Give the exporter thread a moment to be inside `export`, then check
    // the premise: the collector really was hung while requests went on.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while entered.load(std::sync::atomic::Ordering::SeqCst) == 0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(entered.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    {
        let (lock, cvar) = &*release;
        *lock.lock().unwrap() = true;
        cvar.notify_all();
    }
    drop(guard);
}

#[test]
fn an_unreachable_collector_is_counted_not_fatal() {
    // A loopback port with nothing listening.
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut otlp = OtlpSettings::new(Url::parse(&format!("http://127.0.0.1:{port}")).unwrap());
    otlp.timeout = Duration::from_secs(2);
    let mut settings = TelemetrySettings::default();
    settings.otlp = Some(otlp);
    let (dispatch, guard) = Telemetry::build(&settings, std::io::sink).unwrap();
    dispatcher::with_default(&dispatch, || {
        let request = request_span("tools/call");
        let _e = request.enter();
    });
    let flushed = guard.flush();
    let stats = guard.export_stats();
    assert!(flushed.is_err(), "{flushed:?}");
    assert_eq!(stats.export_failures(), 1);
    assert_eq!(stats.spans_exported(), 0);
    let text = warden_telemetry::Metrics::new().render(&stats.metrics());
    assert!(
        text.contains("warden_otlp_export_failures_total 1"),
        "{text}"
    );
}

#[test]
fn a_quiet_log_level_does_not_drop_the_trace_context() {
    let mut settings = TelemetrySettings::default();
    settings.logs.level = "error".into();
    let (dispatch, _guard) = Telemetry::build(&settings, std::io::sink).unwrap();
    dispatcher::with_default(&dispatch, || {
        let request = request_span("tools/call");
        assert!(set_parent_from_traceparent(&request, TRACEPARENT, None));
        assert_eq!(current_traceparent(&request).as_deref(), Some(TRACEPARENT));
    });
}
