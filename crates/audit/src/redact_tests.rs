use super::*;
use std::sync::Mutex;

#[test]
fn values_under_sensitive_keys_are_redacted_recursively() {
    let mut v = serde_json::json!({
        "path": "/tmp/x",
        "Authorization": "Bearer abc",
        "nested": { "api_key": "k", "client_secret": {"a": 1}, "list": [{"password": "p"}] },
        "token_count": 3
    });
    Redactor::new().redact_value(&mut v);
    assert_eq!(v["path"], "/tmp/x");
    assert_eq!(v["Authorization"], REDACTED);
    assert_eq!(v["nested"]["api_key"], REDACTED);
    assert_eq!(v["nested"]["client_secret"], REDACTED);
    assert_eq!(v["nested"]["list"][0]["password"], REDACTED);
    assert_eq!(v["token_count"], REDACTED, "broad on purpose");
    assert!(Redactor::with_keys(["ssn"]).is_sensitive_key("user_SSN"));
}

#[test]
fn escape_keeps_text_on_one_line() {
    let e = Redactor::escape("a\nb\r\u{1b}[2J\u{2028}\u{202e}");
    assert_eq!(e, "a\\nb\\r\\u001b[2J\\u2028\\u202e");
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

#[test]
fn the_tracing_layer_redacts_and_cannot_be_forged() {
    use tracing_subscriber::layer::SubscriberExt;
    let buf = Buf::default();
    let subscriber = tracing_subscriber::registry().with(Redactor::new().layer(buf.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", session_token = "s3cr3t", server = "fs");
        let _g = span.enter();
        let forged = "x\"}\n{\"level\":\"INFO\",\"message\":\"admin login ok\"}";
        tracing::info!(
            authorization = "Bearer t0k3n",
            argument = forged,
            "tool called"
        );
    });
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(!out.contains("t0k3n") && !out.contains("s3cr3t"), "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!(v["message"], "tool called");
    assert_eq!(v["authorization"], REDACTED);
    assert_eq!(v["spans"][0]["session_token"], REDACTED);
    assert_eq!(v["spans"][0]["server"], "fs");
    assert!(v["argument"].as_str().unwrap().contains("admin login ok"));
}
