//! Shared helpers: specs, request builders, event waiting, log capture.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use warden_upstream::{
    Era, Handshake, Limits, RestartPolicy, TransportSpec, UpstreamEvent, UpstreamSpec,
};

pub const HANDSHAKE: &str = r#"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"warden-test","version":"0"}}"#;

pub fn handshake() -> Handshake {
    Handshake {
        params: HANDSHAKE.to_owned(),
        session_first: false,
    }
}

pub fn spec(name: &str, transport: TransportSpec) -> UpstreamSpec {
    UpstreamSpec {
        name: name.to_owned(),
        transport,
        connect_timeout: Duration::from_secs(5),
        restart: RestartPolicy {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        },
        limits: Limits::default(),
        era: Era::Auto,
        auth: None,
    }
}

/// A request builder for `method` with small params.
pub fn call(method: &'static str) -> impl FnOnce(u64) -> String {
    move |id| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{"x":1}}}}"#)
}

pub fn events() -> (mpsc::Sender<UpstreamEvent>, mpsc::Receiver<UpstreamEvent>) {
    mpsc::channel(64)
}

/// The next event accepted by `pick`, skipping others; panics after 5 s.
pub async fn next_event(
    rx: &mut mpsc::Receiver<UpstreamEvent>,
    pick: impl Fn(&UpstreamEvent) -> bool,
) -> UpstreamEvent {
    let wait = async {
        loop {
            match rx.recv().await {
                Some(ev) if pick(&ev) => return ev,
                Some(_) => continue,
                None => panic!("event channel closed"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("no matching event within 5 s")
}

/// Captures `tracing` output of the current thread into a buffer.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let me = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || me.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
