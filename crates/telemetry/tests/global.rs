//! `Telemetry::init` installs the process-wide subscriber: its own test
//! binary, so no other test shares the global.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use warden_telemetry::{Telemetry, TelemetryError, TelemetrySettings};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

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

#[test]
fn the_installed_subscriber_redacts_and_escapes() {
    let logs = Capture::default();
    let guard = Telemetry::init(&TelemetrySettings::default(), logs.clone()).unwrap();

    // From another thread too: the subscriber is global, not thread-local.
    std::thread::spawn(|| {
        tracing::warn!(
            token = "secret-value",
            note = "ok\n{\"level\":\"ERROR\",\"message\":\"forged\"}\u{2028}more",
            "tool called"
        );
    })
    .join()
    .unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(!text.contains("secret-value"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("{\"level\":\"ERROR\"")),
        "{text}"
    );
    assert!(!text.contains('\u{2028}'), "{text}");
    let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(v["token"], "[redacted]");
    assert_eq!(v["level"], "WARN");

    assert!(matches!(
        Telemetry::init(&TelemetrySettings::default(), std::io::sink),
        Err(TelemetryError::AlreadyInstalled)
    ));
    guard.shutdown().unwrap();
}
