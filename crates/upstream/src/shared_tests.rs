use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Shared;
use crate::{
    Handshake, Limits, Response, RestartPolicy, TransportSpec, UpstreamError, UpstreamEvent,
    UpstreamSpec,
};

fn shared() -> (Arc<Shared>, mpsc::Receiver<UpstreamEvent>) {
    let spec = UpstreamSpec {
        name: "unit".into(),
        transport: TransportSpec::Stdio {
            command: "true".into(),
            args: Vec::new(),
            env: Vec::new(),
            inherit_env: Vec::new(),
            cwd: None,
            sandbox: None,
        },
        connect_timeout: Duration::from_secs(1),
        restart: RestartPolicy::default(),
        limits: Limits {
            max_bytes: 1024,
            max_depth: 8,
        },
        era: crate::Era::Auto,
        auth: None,
    };
    let (tx, rx) = mpsc::channel(8);
    let handshake = Handshake {
        params: "{}".into(),
        session_first: false,
    };
    (
        Arc::new(Shared::new(spec, handshake, Err(String::new()), tx)),
        rx,
    )
}

#[tokio::test]
async fn responses_complete_their_call_byte_for_byte() {
    let (s, _events) = shared();
    let rx = s.register(7);
    let text = r#"{ "result" : {"b":1,"a":2}, "id":7, "jsonrpc":"2.0", "extra":true }"#;
    assert_eq!(s.route(text.into(), None, None).await, Ok(None));
    assert_eq!(
        rx.await.unwrap(),
        Ok(Response {
            id: 7,
            text: text.into(),
            events_before: 0
        })
    );
}

#[tokio::test]
async fn our_response_is_returned_and_others_are_routed() {
    let (s, mut events) = shared();
    let other = s.register(3);
    let note = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#;
    assert_eq!(s.route(note.into(), Some(5), Some(5)).await, Ok(None));
    assert_eq!(
        events.recv().await,
        Some(UpstreamEvent::Message {
            server: "unit".into(),
            text: note.into(),
            related_to: Some(5),
        })
    );
    let ours = r#"{"jsonrpc":"2.0","id":5,"result":{}}"#;
    let got = s.route(ours.into(), Some(5), Some(5)).await.unwrap();
    assert_eq!(got.map(|r| r.id), Some(5));
    // Another call's response still reaches that call.
    let theirs = r#"{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"x"}}"#;
    assert_eq!(s.route(theirs.into(), Some(5), Some(5)).await, Ok(None));
    assert_eq!(other.await.unwrap().unwrap().text, theirs);
}

#[tokio::test]
async fn unknown_and_foreign_ids_are_dropped() {
    let (s, _events) = shared();
    for text in [
        r#"{"jsonrpc":"2.0","id":99,"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":"5","result":{}}"#,
        r#"{"jsonrpc":"2.0","id":-5,"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}"#,
    ] {
        assert_eq!(s.route(text.into(), None, None).await, Ok(None), "{text}");
    }
}

#[tokio::test]
async fn strict_parse_refuses_what_a_lenient_parser_accepts() {
    let (s, _events) = shared();
    let rx = s.register(1);
    for bad in [
        r#"{"jsonrpc":"2.0","id":1,"result":{},"result":{"evil":1}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{},"Result":{}}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"result":{}}"#,
        r#"{"jsonrpc":"1.0","id":1,"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":[[[[[[[[[[]]]]]]]]]]}"#,
        "not json",
    ] {
        assert!(s.route(bad.into(), None, None).await.is_err(), "{bad}");
    }
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":"{}"}}"#,
        "x".repeat(2000)
    );
    assert!(s.route(big, None, None).await.is_err());
    // Nothing reached the pending call.
    drop(s);
    assert!(rx.await.is_err());
}

#[tokio::test]
async fn batches_only_where_the_version_allows_them() {
    let (s, mut events) = shared();
    let batch = r#"[{"jsonrpc":"2.0","id":1,"result":{"n":1}},{"jsonrpc":"2.0","method":"x"}]"#;
    assert!(s.route(batch.into(), None, None).await.is_err());

    s.batches.store(true, Ordering::Relaxed);
    let rx = s.register(1);
    assert_eq!(s.route(batch.into(), None, None).await, Ok(None));
    assert_eq!(
        rx.await.unwrap().unwrap().text,
        r#"{"jsonrpc":"2.0","id":1,"result":{"n":1}}"#
    );
    assert!(matches!(
        events.recv().await,
        Some(UpstreamEvent::Message { text, .. }) if text == r#"{"jsonrpc":"2.0","method":"x"}"#
    ));
}

#[tokio::test]
async fn uninstall_fails_every_pending_call() {
    let (s, _events) = shared();
    let a = s.register(1);
    let b = s.register(2);
    s.uninstall(
        Some(UpstreamError::Closed("gone".into())),
        crate::UpstreamState::Restarting,
    );
    assert_eq!(a.await.unwrap(), Err(UpstreamError::Closed("gone".into())));
    assert_eq!(b.await.unwrap(), Err(UpstreamError::Closed("gone".into())));
}

#[tokio::test]
async fn a_dropped_call_leaves_no_pending_entry() {
    let (s, _events) = shared();
    let _rx = s.register(4);
    let guard = super::PendingGuard {
        shared: s.clone(),
        id: 4,
    };
    assert_eq!(s.calls().pending.len(), 1);
    drop(guard);
    assert!(s.calls().pending.is_empty());
}
