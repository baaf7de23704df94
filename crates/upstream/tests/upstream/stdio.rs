//! stdio upstreams against a fake MCP server written in POSIX `sh`.
//!
//! The script matches on the exact bytes the tests send (the request
//! builders are the tests' own), so it needs no JSON parser.

use std::time::{Duration, Instant};

use warden_upstream::{
    Limits, TransportSpec, Upstream, UpstreamError, UpstreamEvent, UpstreamSpec, UpstreamState,
};

use crate::support::{call, events, handshake, next_event, spec, LogCapture};

/// The fake server. Each method exercises one behaviour.
const FAKE_SERVER: &str = r#"
slow=""
while IFS= read -r line; do
  id=${line#*\"id\":}
  id=${id%%,*}
  case "$line" in
    *'"method":"initialize"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"fake","version":"1"}}}\n' "$id" ;;
    *'"method":"notifications/initialized"'*) : ;;
    *'"method":"echo"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"echo":%s}}\n' "$id" "$line" ;;
    *'"method":"slow"'*) slow=$id ;;
    *'"method":"fast"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"which":"fast"}}\n' "$id"
      printf '{"jsonrpc":"2.0","id":%s,"result":{"which":"slow"}}\n' "$slow" ;;
    *'"method":"ask"'*)
      printf '{"jsonrpc":"2.0","id":"q1","method":"roots/list"}\n'
      IFS= read -r answer
      printf '{"jsonrpc":"2.0","id":%s,"result":{"answer":%s}}\n' "$id" "$answer" ;;
    *'"method":"notify"'*)
      printf '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"hi"}}\n'
      printf '{"jsonrpc":"2.0","id":%s,"result":{}}\n' "$id" ;;
    *'"method":"unknown_id"'*)
      printf '{"jsonrpc":"2.0","id":987654321,"result":{}}\n'
      printf '{"jsonrpc":"2.0","id":"text-id","result":{}}\n'
      printf '{"jsonrpc":"2.0","id":%s,"result":{"ok":true}}\n' "$id" ;;
    *'"method":"crash"'*) exit 3 ;;
    *'"method":"garbage"'*) printf 'this is not json\n' ;;
    *'"method":"duplicate_key"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{},"result":{"evil":1}}\n' "$id" ;;
    *'"method":"big"'*) printf '{"jsonrpc":"2.0","id":%s,"result":"%05000d"}\n' "$id" 0 ;;
    *'"method":"hang"'*) : ;;
    *'"method":"stderr"'*)
      printf 'first line\n\033[31mred\342\200\256 text\n' >&2
      printf '{"jsonrpc":"2.0","id":%s,"result":{}}\n' "$id" ;;
    *'"method":"env"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"secret":"%s","inherited":"%s","given":"%s","path":"%s","cwd":"%s"}}\n' \
        "$id" "${WARDEN_TEST_SECRET:-}" "${WARDEN_TEST_INHERITED:-}" "${GIVEN:-}" "${PATH:+set}" "$(pwd)" ;;
  esac
done
"#;

fn stdio(script: &str) -> TransportSpec {
    TransportSpec::Stdio {
        command: "sh".into(),
        args: vec!["-c".into(), script.into()],
        env: Vec::new(),
        inherit_env: Vec::new(),
        cwd: None,
        sandbox: None,
    }
}

fn fake(name: &str) -> UpstreamSpec {
    spec(name, stdio(FAKE_SERVER))
}

const LONG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn handshake_then_request_and_response() {
    let (tx, _rx) = events();
    let up = Upstream::start(fake("fake"), handshake(), tx);
    let info = up.ready().await.expect("ready");
    assert_eq!(info.generation, 1);
    assert_eq!(info.protocol_version, "2025-06-18");
    assert!(info.result.contains(r#""serverInfo":{"name":"fake""#));
    assert_eq!(up.state(), UpstreamState::Ready);
    assert_eq!(up.name(), "fake");

    let resp = up.request(call("echo"), LONG).await.expect("echo");
    // The server echoes the exact line it received, id included.
    let sent = call("echo")(resp.id);
    assert_eq!(
        resp.text,
        format!(
            r#"{{"jsonrpc":"2.0","id":{},"result":{{"echo":{sent}}}}}"#,
            resp.id
        )
    );
    up.shutdown().await;
    assert_eq!(up.state(), UpstreamState::Closed);
}

#[tokio::test]
async fn newlines_in_outgoing_json_never_split_a_message() {
    let (tx, _rx) = events();
    let up = Upstream::start(fake("newlines"), handshake(), tx);
    let resp = up
        .request(
            |id| {
                format!("{{\n  \"jsonrpc\": \"2.0\",\r\n  \"id\":{id},\n  \"method\":\"echo\"\n}}")
            },
            LONG,
        )
        .await
        .expect("echo");
    assert!(resp.text.contains(r#""method":"echo""#), "{}", resp.text);
}

#[tokio::test]
async fn concurrent_requests_resolve_out_of_order() {
    let (tx, _rx) = events();
    let up = Upstream::start(fake("ooo"), handshake(), tx);
    up.ready().await.expect("ready");
    let slow = up.request(call("slow"), LONG);
    let fast = async {
        // Let the slow request be written first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        up.request(call("fast"), LONG).await
    };
    let (slow, fast) = tokio::join!(slow, fast);
    let (slow, fast) = (slow.expect("slow"), fast.expect("fast"));
    assert!(slow.text.contains(r#""which":"slow""#), "{}", slow.text);
    assert!(fast.text.contains(r#""which":"fast""#), "{}", fast.text);
    assert_ne!(slow.id, fast.id);

    // Many at once: each answer reaches its own caller.
    let calls = (0..40).map(|_| up.request(call("echo"), LONG));
    for resp in futures::future::join_all(calls).await {
        let resp = resp.expect("echo");
        assert!(resp
            .text
            .contains(&format!(r#""echo":{{"jsonrpc":"2.0","id":{},"#, resp.id)));
    }
}

#[tokio::test]
async fn server_request_becomes_an_event_and_respond_answers_it() {
    let (tx, mut rx) = events();
    let up = Upstream::start(fake("asker"), handshake(), tx);
    up.ready().await.expect("ready");
    let ask = tokio::spawn({
        let up = up.clone();
        async move { up.request(call("ask"), LONG).await }
    });
    let ev = next_event(&mut rx, |e| matches!(e, UpstreamEvent::Message { .. })).await;
    assert_eq!(
        ev,
        UpstreamEvent::Message {
            server: "asker".into(),
            text: r#"{"jsonrpc":"2.0","id":"q1","method":"roots/list"}"#.into(),
            related_to: None,
        }
    );
    up.respond(r#"{"jsonrpc":"2.0","id":"q1","result":{"roots":[]}}"#.into())
        .await
        .expect("respond");
    let resp = ask.await.unwrap().expect("ask");
    assert!(
        resp.text
            .contains(r#""answer":{"jsonrpc":"2.0","id":"q1","result":{"roots":[]}}"#),
        "{}",
        resp.text
    );

    up.request(call("notify"), LONG).await.expect("notify");
    let ev = next_event(&mut rx, |e| matches!(e, UpstreamEvent::Message { .. })).await;
    let UpstreamEvent::Message { text, .. } = ev else {
        unreachable!()
    };
    assert!(text.contains("notifications/message"), "{text}");
}

#[tokio::test]
async fn responses_to_unknown_ids_are_dropped() {
    let (tx, _rx) = events();
    let up = Upstream::start(fake("unknown"), handshake(), tx);
    let resp = up.request(call("unknown_id"), LONG).await.expect("call");
    assert!(resp.text.contains(r#""ok":true"#));
    assert_eq!(up.ready().await.unwrap().generation, 1, "no restart");
}

/// Runs `method`, which kills or corrupts the server, and checks the call
/// fails at once, the server is restarted, and the next call works.
async fn fails_at_once_and_restarts(method: &'static str, spec: UpstreamSpec) -> UpstreamError {
    let name = spec.name.clone();
    let (tx, mut rx) = events();
    let up = Upstream::start(spec, handshake(), tx);
    up.ready().await.expect("ready");
    let started = Instant::now();
    let err = up
        .request(call(method), LONG)
        .await
        .expect_err("the call must fail");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failed after {:?}, not at once",
        started.elapsed()
    );
    assert!(matches!(err, UpstreamError::Closed(_)), "{err:?}");
    // A call made while restarting waits for the new process.
    let resp = up
        .request(call("echo"), LONG)
        .await
        .expect("echo after restart");
    assert!(resp.text.contains(r#""method":"echo""#));
    let down = next_event(&mut rx, |e| matches!(e, UpstreamEvent::Down { .. })).await;
    assert!(matches!(down, UpstreamEvent::Down { server, .. } if server == name));
    let restarted = next_event(&mut rx, |e| matches!(e, UpstreamEvent::Restarted { .. })).await;
    assert_eq!(
        restarted,
        UpstreamEvent::Restarted {
            server: name,
            generation: 2
        }
    );
    assert_eq!(up.ready().await.unwrap().generation, 2);
    err
}

#[tokio::test]
async fn crash_mid_call_fails_pending_at_once_and_restarts() {
    let err = fails_at_once_and_restarts("crash", fake("crasher")).await;
    assert!(err.to_string().contains("status 3"), "{err}");
}

#[tokio::test]
async fn garbage_on_stdout_restarts_the_process() {
    let err = fails_at_once_and_restarts("garbage", fake("garbage")).await;
    assert!(err.to_string().contains("protocol violation"), "{err}");
}

#[tokio::test]
async fn duplicate_keys_on_stdout_restart_the_process() {
    let err = fails_at_once_and_restarts("duplicate_key", fake("dupkey")).await;
    assert!(err.to_string().contains("duplicate key"), "{err}");
}

#[tokio::test]
async fn oversized_line_restarts_the_process() {
    let mut s = fake("big");
    s.limits = Limits {
        max_bytes: 4096,
        ..Limits::default()
    };
    let err = fails_at_once_and_restarts("big", s).await;
    assert!(err.to_string().contains("longer than 4096"), "{err}");
}

#[tokio::test]
async fn hang_times_out_and_the_server_stays_up() {
    let (tx, _rx) = events();
    let up = Upstream::start(fake("hang"), handshake(), tx);
    up.ready().await.expect("ready");
    let started = Instant::now();
    let err = up
        .request(call("hang"), Duration::from_millis(300))
        .await
        .expect_err("must time out");
    assert_eq!(err, UpstreamError::Timeout);
    assert!(started.elapsed() >= Duration::from_millis(300));
    up.request(call("echo"), LONG).await.expect("still serving");
    assert_eq!(up.ready().await.unwrap().generation, 1);
}

#[tokio::test]
async fn dropped_call_leaves_the_connection_usable() {
    let (tx, _rx) = events();
    let up = Upstream::start(fake("dropper"), handshake(), tx);
    up.ready().await.expect("ready");
    let abandoned =
        tokio::time::timeout(Duration::from_millis(100), up.request(call("hang"), LONG)).await;
    assert!(abandoned.is_err());
    up.request(call("echo"), LONG).await.expect("echo");
}

/// The child test runs in a process whose own environment holds the
/// secret; see `environment_is_scrubbed_child`.
#[test]
fn environment_is_scrubbed() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "stdio::environment_is_scrubbed_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WARDEN_TEST_SECRET", "hunter2")
        .env("WARDEN_TEST_INHERITED", "passed-through")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("scrub-check-ran"),
        "child did not run:\n{stdout}"
    );
}

#[tokio::test]
async fn environment_is_scrubbed_child() {
    if std::env::var_os("WARDEN_TEST_SECRET").is_none() {
        return; // run only from `environment_is_scrubbed`
    }
    println!("scrub-check-ran");
    let (tx, _rx) = events();
    let mut s = fake("env");
    s.transport = TransportSpec::Stdio {
        command: "sh".into(),
        args: vec!["-c".into(), FAKE_SERVER.into()],
        env: vec![("GIVEN".into(), "from-spec".into())],
        inherit_env: vec!["WARDEN_TEST_INHERITED".into()],
        cwd: Some("/".into()),
        sandbox: None,
    };
    let up = Upstream::start(s, handshake(), tx);
    let resp = up.request(call("env"), LONG).await.expect("env");
    assert!(
        resp.text.contains(
            r#""secret":"","inherited":"passed-through","given":"from-spec","path":"set","cwd":"/""#
        ),
        "{}",
        resp.text
    );
}

#[tokio::test(flavor = "current_thread")]
async fn stderr_is_logged_escaped_under_the_server_name() {
    let logs = LogCapture::default();
    let _guard = logs.install();
    let (tx, _rx) = events();
    let up = Upstream::start(fake("noisy"), handshake(), tx);
    up.request(call("stderr"), LONG).await.expect("call");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !logs.text().contains("text") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = logs.text();
    assert!(text.contains("first line"), "{text}");
    assert!(
        text.contains(r"\u{1b}[31mred\u{202e} text"),
        "escape and bidi override must be escaped: {text}"
    );
    assert!(!text.contains('\u{1b}'));
    assert!(text.contains("server=noisy"), "{text}");
    assert!(text.contains("upstream"), "{text}");
}

#[tokio::test]
async fn shutdown_fails_pending_calls_and_closes() {
    let (tx, _rx) = events();
    let up = Upstream::start(fake("closer"), handshake(), tx);
    up.ready().await.expect("ready");
    let pending = tokio::spawn({
        let up = up.clone();
        async move { up.request(call("hang"), LONG).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    up.shutdown().await;
    let err = pending.await.unwrap().expect_err("pending call must fail");
    assert!(matches!(err, UpstreamError::Closed(_)), "{err:?}");
    assert_eq!(up.state(), UpstreamState::Closed);
    let err = up.request(call("echo"), LONG).await.expect_err("closed");
    assert!(matches!(err, UpstreamError::Closed(_)), "{err:?}");
}

#[tokio::test]
async fn shutdown_terminates_a_server_that_ignores_stdin() {
    // Ignores EOF on stdin; exits on SIGTERM.
    let script = format!("trap 'exit 0' TERM\n{FAKE_SERVER}\nwhile :; do sleep 0.05; done");
    let (tx, _rx) = events();
    let up = Upstream::start(spec("stubborn", stdio(&script)), handshake(), tx);
    up.ready().await.expect("ready");
    let started = Instant::now();
    up.shutdown().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(4500),
        "SIGTERM comes after 2 s: took {took:?}"
    );
}

#[tokio::test]
async fn spawn_failure_is_reported_and_retried() {
    let (tx, _rx) = events();
    let mut s = fake("missing");
    s.transport = TransportSpec::Stdio {
        command: "/nonexistent/warden-test-binary".into(),
        args: Vec::new(),
        env: Vec::new(),
        inherit_env: Vec::new(),
        cwd: None,
        sandbox: None,
    };
    let up = Upstream::start(s, handshake(), tx);
    let err = up.ready().await.expect_err("cannot start");
    assert!(
        matches!(&err, UpstreamError::Unavailable(m) if m.contains("cannot start")),
        "{err:?}"
    );
    assert_ne!(up.state(), UpstreamState::Ready);
    assert_ne!(
        up.state(),
        UpstreamState::Failed,
        "a spawn failure is retried"
    );
}

#[tokio::test]
async fn invalid_handshake_params_fail_permanently() {
    let (tx, _rx) = events();
    let mut hs = handshake();
    hs.params = "[]".into();
    let up = Upstream::start(fake("badparams"), hs, tx);
    let err = up.ready().await.expect_err("bad params");
    assert!(matches!(err, UpstreamError::Config(_)), "{err:?}");
    assert_eq!(up.state(), UpstreamState::Failed);
}

#[tokio::test]
async fn unsupported_protocol_version_fails_the_handshake() {
    let script = r#"read -r line; id=${line#*\"id\":}; id=${id%%,*}
printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"1999-01-01"}}\n' "$id"; sleep 5"#;
    let (tx, _rx) = events();
    let up = Upstream::start(spec("oldie", stdio(script)), handshake(), tx);
    let err = up.ready().await.expect_err("unsupported version");
    assert!(
        err.to_string().contains("unsupported protocol version"),
        "{err}"
    );
}
