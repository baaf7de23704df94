//! A real OTLP/HTTP receiver for tests: an HTTP server on `127.0.0.1:0`
//! that accepts `POST /v1/traces` with protobuf bodies, decodes each
//! `ExportTraceServiceRequest` and keeps the spans. It runs on its own
//! thread and runtime, so blocking calls in the test (a flush) cannot
//! starve it. Enabled by the `test-util` feature for the gateway's
//! end-to-end tests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;
use tokio::sync::oneshot;

/// One span as the receiver decoded it. Ids are lowercase hex; a root
/// span's `parent_span_id` is empty.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    /// Span events: (name, attributes).
    pub events: Vec<(String, BTreeMap<String, String>)>,
    /// The resource's attributes (`service.name`, …).
    pub resource: BTreeMap<String, String>,
    pub scope: String,
}

/// One export request: its headers (lowercase names) and span count.
#[derive(Debug, Clone)]
pub struct ReceivedExport {
    pub headers: BTreeMap<String, String>,
    pub spans: usize,
}

#[derive(Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    exports: Vec<ReceivedExport>,
    rejected: usize,
}

type Shared = Arc<(Mutex<Received>, Condvar)>;

/// See the module documentation. Dropping it stops the server.
pub struct OtlpReceiver {
    addr: SocketAddr,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl OtlpReceiver {
    /// Starts the server on `127.0.0.1:<free port>`.
    pub fn start() -> std::io::Result<OtlpReceiver> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared: Shared = Arc::default();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let state = shared.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("otlp-receiver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let app = Router::new()
                        .route("/v1/traces", post(traces))
                        .with_state(state);
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stop_rx.await;
                        })
                        .await;
                });
            })?;
        Ok(OtlpReceiver {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The base URL (`http://127.0.0.1:<port>`), as `telemetry.otlp.endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.lock().spans.clone()
    }

    /// Every export request received so far.
    pub fn exports(&self) -> Vec<ReceivedExport> {
        self.lock().exports.clone()
    }

    /// Requests whose body did not decode.
    pub fn rejected(&self) -> usize {
        self.lock().rejected
    }

    /// Waits until at least `n` spans arrived, or `timeout`; returns what
    /// arrived either way.
    pub fn wait_for_spans(&self, n: usize, timeout: Duration) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.shared;
        let mut g = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while g.spans.len() < n {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            g = cvar
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        g.spans.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.shared.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn traces(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(r) => r,
        Err(_) => {
            shared
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .rejected += 1;
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    let mut spans = Vec::new();
    for rs in request.resource_spans {
        let resource = rs
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            let scope = ss.scope.map(|s| s.name).unwrap_or_default();
            for s in ss.spans {
                spans.push(ReceivedSpan {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    name: s.name,
                    attributes: attributes(&s.attributes),
                    events: s
                        .events
                        .iter()
                        .map(|e| (e.name.clone(), attributes(&e.attributes)))
                        .collect(),
                    resource: resource.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    {
        let (lock, cvar) = &*shared;
        let mut g = lock.lock().unwrap_or_else(PoisonError::into_inner);
        g.exports.push(ReceivedExport {
            headers,
            spans: spans.len(),
        });
        g.spans.extend(spans);
        cvar.notify_all();
    }
    let body = ExportTraceServiceResponse::default().encode_to_vec();
    ([(header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect()
}

fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
