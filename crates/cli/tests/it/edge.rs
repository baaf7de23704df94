//! The HTTP edge (#16 item 8) through the real binary: the attacks that
//! took Warden down without logging in, each as a test in which a
//! legitimate client keeps being served. All traffic stays on loopback;
//! distinct client addresses are distinct loopback addresses (127.0.0.2).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::harness::*;

const OTHER_HOST: &str = "127.0.0.2";

fn upstream() -> String {
    format!("servers:\n{}", example_server("t", "test", ""))
}

fn addr_of(w: &Warden) -> SocketAddr {
    w.base
        .trim_start_matches("http://")
        .parse()
        .expect("base is http://IP:PORT")
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from.parse().expect("ip"), 0))?;
    socket.connect(to).await
}

/// An MCP client whose connections come from the loopback address `from`.
fn client_from(url: &str, from: &str) -> Client {
    let mut c = Client::new(url);
    c.http = reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().expect("ip"))
        .build()
        .expect("client");
    c
}

/// Initializes and calls a tool, as any client would; panics on failure.
async fn serve_one_call(c: &mut Client) {
    c.initialize().await;
    let r = c
        .call_tool("t__echo", json!({"message": "still served"}))
        .await;
    assert_eq!(text_of(r.result()), "still served", "{}", r.raw);
}

/// The `/metrics` text, fetched from `from`.
async fn metrics(w: &Warden, from: &str) -> String {
    let c = client_from(&w.url("/metrics"), from);
    c.http
        .get(w.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The value of the sample `name` (with its labels as written, e.g.
/// `{kind="max_connections"}`) in a scrape; 0 when absent.
fn sample(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Reads until the server closes the connection (or the deadline): what
/// it sent, and whether it closed.
async fn read_until_closed(s: &mut TcpStream, deadline: Instant) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return (String::from_utf8_lossy(&got).into_owned(), false);
        };
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// Raises this process's open-file limit to its hard limit; the limit.
fn raise_open_files() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

#[tokio::test]
async fn slowloris_connections_do_not_stop_a_legitimate_client() {
    // The scale: 1,000 connections (fewer only where this test
    // process may not open that many files).
    let n = 1000.min(
        usize::try_from(raise_open_files())
            .unwrap_or(0)
            .saturating_sub(200),
    );
    assert!(n >= 100, "too few file descriptors for this test");
    let w = Warden::start(&format!(
        "listen:\n  max_connections_per_ip: 5000\n  header_timeout: 5s\n{}",
        upstream()
    ));
    let to = addr_of(&w);
    // Half trickle a request head a byte at a time, half send nothing.
    let mut attackers = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(to).await.expect("connect");
        if i % 2 == 0 {
            s.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await
                .expect("first bytes");
        }
        attackers.push(s);
    }
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            for s in attackers.iter_mut().step_by(2) {
                let _ = s.write_all(b"X").await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        attackers
    });
    // Every attacking connection is open at the server...
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let t = Instant::now();
        let open = sample(&metrics(&w, "127.0.0.1").await, "warden_connections_open");
        seen.push((open, t.elapsed()));
        if open as usize > n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {open} of {n} open: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...and a legitimate client is served all the same.
    let started = Instant::now();
    let mut c = Client::new(&w.url("/mcp"));
    tokio::time::timeout(Duration::from_secs(20), serve_one_call(&mut c))
        .await
        .expect("the legitimate client was not served");
    eprintln!(
        "served with {n} slowloris connections open: initialize + tools/call in {:?}",
        started.elapsed()
    );
    // The trickling heads are cut at `header_timeout`, however steadily
    // they trickle; the silent connections too.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let scrape = metrics(&w, "127.0.0.1").await;
        let cut = sample(
            &scrape,
            "warden_edge_refusals_total{kind=\"header_timeout\"}",
        );
        if cut as usize >= n {
            break;
        }
        assert!(Instant::now() < deadline, "only {cut} of {n} heads cut");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    trickle.abort();
}

/// The report: 1,100 idle connections exhausted the process's
/// file descriptors (1,024) and Warden stopped accepting anyone. With the
/// defaults, one address holds at most 256 connections, the total stays
/// below the descriptor limit, and everyone else is served.
#[tokio::test]
async fn idle_connections_past_the_open_file_limit_do_not_stop_warden() {
    assert!(
        raise_open_files() > 1300,
        "too few file descriptors for this test"
    );
    let w = Warden::start_with_open_files(&upstream(), 1024);
    let to = addr_of(&w);
    let mut idle = Vec::new();
    for _ in 0..1100 {
        idle.push(connect_from("127.0.0.1", to).await.expect("connect"));
    }
    let mut other = client_from(&w.url("/mcp"), OTHER_HOST);
    tokio::time::timeout(Duration::from_secs(20), serve_one_call(&mut other))
        .await
        .expect("another address was not served");
    let scrape = metrics(&w, OTHER_HOST).await;
    assert_eq!(
        sample(
            &scrape,
            "warden_edge_refusals_total{kind=\"max_connections_per_ip\"}"
        ),
        1100.0 - 256.0,
        "{scrape}"
    );
    assert!(sample(&scrape, "warden_connections_open") <= 256.0 + 2.0);
}

#[tokio::test]
async fn an_idle_connection_flood_from_one_address_does_not_lock_out_others() {
    let cap = 50;
    let w = Warden::start(&format!(
        "listen:\n  max_connections_per_ip: {cap}\n{}",
        upstream()
    ));
    let to = addr_of(&w);
    let mut held = Vec::new();
    for _ in 0..cap {
        held.push(connect_from("127.0.0.1", to).await.expect("connect"));
    }
    // Every connection past the cap is refused at once, saying why.
    let deadline = Instant::now() + Duration::from_secs(30);
    for _ in 0..3 * cap {
        let mut extra = connect_from("127.0.0.1", to).await.expect("connect");
        let (said, closed) = read_until_closed(&mut extra, deadline).await;
        assert!(closed, "a connection over the cap was kept open");
        assert!(
            said.starts_with("HTTP/1.1 429") && said.contains("retry-after: 1"),
            "{said}"
        );
        assert!(said.contains("listen.max_connections_per_ip"), "{said}");
    }
    // Another address is served while this one is at its cap.
    let mut other = client_from(&w.url("/mcp"), OTHER_HOST);
    serve_one_call(&mut other).await;
    let scrape = metrics(&w, OTHER_HOST).await;
    assert_eq!(
        sample(
            &scrape,
            "warden_edge_refusals_total{kind=\"max_connections_per_ip\"}"
        ),
        f64::from(3 * cap),
        "{scrape}"
    );
    // Once the flood ends, its address is served again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut again = Client::new(&w.url("/mcp"));
    loop {
        let probe = reqwest::get(w.url("/healthz")).await;
        if probe.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "127.0.0.1 is still refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    serve_one_call(&mut again).await;
}

fn init_params() -> Value {
    json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "it", "version": "0"}})
}

#[tokio::test]
async fn one_principal_cannot_fill_the_session_table_for_everyone() {
    let w = Warden::start(&format!(
        "identity:\n  public_url: http://127.0.0.1:1\n  data_dir: '{{DIR}}/data'\n  dev_issuer: {{enabled: true}}\n\
         gateway:\n  max_sessions_per_principal: 3\n  max_streams_per_principal: 2\n{}",
        upstream()
    ));
    let alice = w.cli(&["token", "mint", "--sub", "alice"]);
    let bob = w.cli(&["token", "mint", "--sub", "bob"]);
    let url = w.url("/mcp");
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let mut c = Client::with_bearer(&url, &alice);
        c.initialize().await;
        sessions.push(c);
    }
    // Beyond her cap: 429, Retry-After, a JSON-RPC error naming the cap.
    for _ in 0..5 {
        let mut c = Client::with_bearer(&url, &alice);
        let r = c.request("initialize", init_params()).await;
        assert_eq!(r.status, 429, "{}", r.raw);
        assert_eq!(
            r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("5")
        );
        let message = r.response()["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains("gateway.max_sessions_per_principal"),
            "{message}"
        );
        assert!(r.headers.get("mcp-session-id").is_none());
    }
    // Another principal opens sessions and is served.
    let mut b = Client::with_bearer(&url, &bob);
    serve_one_call(&mut b).await;
    // Her sessions still work; ending one frees a place.
    let r = sessions[0]
        .call_tool("t__echo", json!({"message": "mine"}))
        .await;
    assert_eq!(text_of(r.result()), "mine");
    let ended = sessions[0].session.take().expect("session id");
    let del = sessions[0]
        .http
        .delete(&url)
        .headers(sessions[0].extra_headers.clone())
        .header("mcp-session-id", ended)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(del.status().as_u16(), 200);
    let mut c = Client::with_bearer(&url, &alice);
    serve_one_call(&mut c).await;

    // Streams: two GET streams, then 429 naming the stream cap.
    let get = |c: &Client| {
        c.http
            .get(&url)
            .headers(c.extra_headers.clone())
            .header("accept", "text/event-stream")
            .header("mcp-session-id", c.session.clone().unwrap_or_default())
            .send()
    };
    let first = get(&sessions[1]).await.expect("GET");
    assert_eq!(first.status().as_u16(), 200);
    let second = get(&sessions[2]).await.expect("GET");
    assert_eq!(second.status().as_u16(), 200);
    let third = get(&c).await.expect("GET");
    assert_eq!(third.status().as_u16(), 429);
    assert!(third.headers().contains_key("retry-after"));
    let why = third.text().await.unwrap_or_default();
    assert!(why.contains("gateway.max_streams_per_principal"), "{why}");
    // Bob's streams are his own.
    assert_eq!(get(&b).await.expect("GET").status().as_u16(), 200);
    // A closed stream gives its place back.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(30);
    let _held = loop {
        let again = get(&c).await.expect("GET");
        if again.status().as_u16() == 200 {
            break again;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream's place stayed taken"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // A legacy SSE connection is a stream too.
    let legacy = c
        .http
        .get(w.url("/sse"))
        .headers(c.extra_headers.clone())
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(legacy.status().as_u16(), 429);
    let scrape = metrics(&w, "127.0.0.1").await;
    assert_eq!(
        sample(
            &scrape,
            "warden_edge_refusals_total{kind=\"max_sessions_per_principal\"}"
        ),
        5.0,
        "{scrape}"
    );
}

#[tokio::test]
async fn anonymous_callers_are_capped_per_address() {
    let w = Warden::start(&format!(
        "gateway:\n  max_sessions_per_principal: 2\n{}",
        upstream()
    ));
    let url = w.url("/mcp");
    for _ in 0..2 {
        Client::new(&url).initialize().await;
    }
    let r = Client::new(&url).request("initialize", init_params()).await;
    assert_eq!(r.status, 429, "{}", r.raw);
    // Another address is another anonymous caller.
    let mut other = client_from(&url, OTHER_HOST);
    serve_one_call(&mut other).await;
}

/// Sends a request head announcing a body of `len` bytes.
async fn post_head(s: &mut TcpStream, to: SocketAddr, len: usize) {
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {to}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\ncontent-length: {len}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("head");
}

#[tokio::test]
async fn a_trickled_request_body_is_cut_with_408_not_held_forever() {
    let w = Warden::start(&format!(
        "listen:\n  body_timeout: 1s\n  body_min_rate: 1KiB/s\n{}",
        upstream()
    ));
    let to = addr_of(&w);
    let body =
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params": init_params()}).to_string();
    // A byte every 100 ms: never a pause of a second, but far below 1 KiB/s.
    let mut trickle = TcpStream::connect(to).await.expect("connect");
    post_head(&mut trickle, to, body.len()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    'outer: for b in body.bytes() {
        if trickle.write_all(&[b]).await.is_err() {
            break;
        }
        let pause = tokio::time::sleep(Duration::from_millis(100));
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => break,
                r = trickle.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break 'outer,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                },
            }
        }
        assert!(Instant::now() < deadline, "the trickle was never cut");
    }
    let (rest, closed) = read_until_closed(&mut trickle, deadline).await;
    let answer = String::from_utf8_lossy(&answer).into_owned() + &rest;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("listen.body_min_rate"), "{answer}");
    assert!(closed, "the connection stayed open after the 408");

    // A body that stops altogether is cut after `body_timeout`.
    let mut stalled = TcpStream::connect(to).await.expect("connect");
    post_head(&mut stalled, to, body.len()).await;
    stalled
        .write_all(&body.as_bytes()[..10])
        .await
        .expect("some");
    let (answer, closed) =
        read_until_closed(&mut stalled, Instant::now() + Duration::from_secs(30)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(closed);

    // A body sent at once is served as always.
    let mut c = Client::new(&w.url("/mcp"));
    serve_one_call(&mut c).await;
    let scrape = metrics(&w, "127.0.0.1").await;
    assert_eq!(
        sample(&scrape, "warden_edge_refusals_total{kind=\"body_timeout\"}"),
        2.0,
        "{scrape}"
    );
}

#[tokio::test]
async fn a_notification_flood_is_capped_per_second_but_progress_is_not() {
    let rate = 20;
    let flood = 5000;
    let w = Warden::start(&format!(
        "gateway:\n  notifications_per_second: {rate}\n{}",
        upstream()
    ));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let started = Instant::now();
    let r = c.call_tool("t__log_flood", json!({"count": flood})).await;
    let elapsed = started.elapsed();
    assert_eq!(
        text_of(r.result()),
        format!("sent {flood} log notifications"),
        "the response is never dropped"
    );
    let logs = r
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .count();
    // One second's worth at once, then `rate` per second.
    let allowed = rate + (elapsed.as_secs_f64() * rate as f64).ceil() as usize + 1;
    assert!(
        logs >= 1 && logs <= allowed,
        "{logs} of {flood} log notifications relayed in {elapsed:?} (at most {allowed})"
    );
    eprintln!("{logs} of {flood} log notifications relayed in {elapsed:?}");

    // Progress for the client's own request is never dropped.
    let steps = 300;
    let r = c
        .request(
            "tools/call",
            json!({"name": "t__progress", "arguments": {"steps": steps}, "_meta": {"progressToken": "p1"}}),
        )
        .await;
    assert_eq!(text_of(r.result()), format!("done {steps} steps"));
    let progress = r
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .count();
    assert_eq!(progress, steps);
    let scrape = metrics(&w, "127.0.0.1").await;
    assert!(
        sample(&scrape, "warden_notifications_dropped_total") >= (flood - allowed) as f64,
        "{scrape}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_but_an_open_stream_is_not() {
    let w = Warden::start(&format!("listen:\n  idle_timeout: 1s\n{}", upstream()));
    let to = addr_of(&w);
    // A keep-alive connection served once, then idle: closed.
    let mut s = TcpStream::connect(to).await.expect("connect");
    s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {to}\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\nok") {
        let n = tokio::time::timeout_at(deadline.into(), s.read(&mut buf))
            .await
            .expect("no answer")
            .expect("read");
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    let (_, closed) = read_until_closed(&mut s, deadline).await;
    assert!(closed, "an idle keep-alive connection was kept");

    // A session's GET stream outlives the idle timeout: it is not idle.
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let mut stream = c
        .http
        .get(w.url("/mcp"))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap_or_default())
        .send()
        .await
        .expect("GET");
    assert_eq!(stream.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = c.call_tool("t__change_tools", json!({})).await;
    assert!(r.response().get("result").is_some(), "{}", r.raw);
    let mut seen = String::new();
    while !seen.contains("notifications/tools/list_changed") {
        let chunk = tokio::time::timeout_at(deadline.into(), stream.chunk())
            .await
            .expect("nothing on the stream");
        let chunk = chunk.expect("stream read").expect("the stream was closed");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}
