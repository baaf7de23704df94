//! Issue 7: "works on streamed (SSE) responses: a secret split across two
//! chunks is still caught", end to end through a real upstream.
//!
//! `tests/peers/chunked_sse_server.py` answers `tools/call` with an SSE
//! stream written in several TCP writes (one HTTP chunk each, a flush and a
//! pause between them) so that a fake AWS access key id is cut after `AKIA`
//! and again inside its 16 characters: in one `data:` line, in an event
//! spread over several `data:` lines, after a progress notification, and
//! with CRLF line endings cut between `\r` and `\n`. The client must see
//! `[REDACTED:aws_access_key]` and never the key, whether Warden answers as
//! JSON or as SSE (progress first); the audit trail and Warden's log name
//! the class, never the value. With redaction turned off the same key comes
//! through whole: the chunked stream really reached Warden, and it is the
//! guard that removes the key.
//!
//! Needs the peers' Python (`scripts/install-peers.sh`): without it these
//! tests fail, like every peer test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::*;
use crate::peers::Peers;

/// The exposed tool.
const TOOL: &str = "leaky__leak";
/// Every way the server cuts its stream (see the server's docstring).
const CASES: [&str; 4] = ["split_key", "multiline", "crlf", "progress_first"];
const REDACTED: &str = "[REDACTED:aws_access_key]";

/// A fake AWS access key id in the shape Warden's `aws_access_key` rule
/// detects; built at run time so no scanner flags this file.
fn key() -> String {
    format!("AKIA{}", "QYLPMN5HHHFPZAM2")
}

/// The text the tool returns, with `key` in place of the secret.
fn text(key: &str, case: &str) -> String {
    format!("deploy key {key} \u{2192} rotate now ({case})")
}

/// Neither the key nor either of the pieces the server cuts it into.
fn assert_no_key(what: &str, haystack: &str) {
    let k = key();
    for piece in [&k[..], &k[4..11], &k[11..]] {
        assert!(
            !haystack.contains(piece),
            "{what} holds (part of) the secret {piece:?}:\n{haystack}"
        );
    }
}

/// The chunking server on an ephemeral loopback port.
struct Upstream {
    _proc: Proc,
    port: u16,
}

fn upstream(delay: &str) -> Upstream {
    let p = Peers::load();
    let proc = spawn(
        Command::new(p.get("PY2"))
            .arg(p.driver("chunked_sse_server.py"))
            .args(["--secret", &key(), "--delay", delay]),
    );
    let line = wait_for_line(
        &proc,
        "chunked_sse_server: listening on ",
        Duration::from_secs(30),
    )
    .expect("chunked_sse_server.py did not start");
    let port = line
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Upstream { _proc: proc, port }
}

/// `warden serve` in front of the chunking server, its stderr kept (the
/// harness's `Warden` does not expose it) and logging at debug, so that the
/// log can be searched for the secret too.
struct Gateway {
    proc: Proc,
    dir: tempfile::TempDir,
    base: String,
    log: String,
}

impl Gateway {
    fn start(port: u16, guards: &str) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = with_tofu(&format!(
            "servers:\n  leaky:\n    url: http://127.0.0.1:{port}/mcp\n    protocol: session\n{guards}"
        ))
        .replace("{DIR}", &dir.path().display().to_string());
        let (proc, base) = launch(dir.path(), &yaml, "debug");
        Gateway {
            proc,
            dir,
            base,
            log: String::new(),
        }
    }

    async fn client(&self) -> Client {
        let mut c = Client::new(&format!("{}/mcp", self.base));
        c.initialize().await;
        assert_eq!(c.tool_names().await, vec![TOOL.to_owned()]);
        c
    }

    /// Warden's log so far.
    fn log(&mut self) -> &str {
        for line in self.proc.stderr_lines.try_iter() {
            self.log.push_str(&line);
            self.log.push('\n');
        }
        &self.log
    }

    /// The audit trail's call records of the tool, once there are `n`.
    fn audited_calls(&self, n: usize) -> Vec<Value> {
        let mut found = Vec::new();
        for _ in 0..100 {
            let out = Command::new(WARDEN)
                .args(["audit", "query", "--json", "--limit", "100000", "--config"])
                .arg(self.dir.path().join("warden.yaml"))
                .output()
                .expect("warden audit query runs");
            assert!(
                out.status.success(),
                "audit query: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            assert_no_key("the audit query", &text);
            found = text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("JSON lines"))
                .filter(|e| e["kind"] == "call" && e["tool"] == "leak")
                .collect();
            if found.len() >= n {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(found.len(), n, "call records: {found:?}");
        found
    }

    /// The audit trail, the log and every file Warden wrote name the
    /// class of each of `n` calls, never the key.
    fn assert_recorded_without_the_key(&mut self, n: usize) {
        for rec in self.audited_calls(n) {
            let classes = &rec["output"]["classes"];
            assert!(
                classes
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c == "aws_access_key")),
                "the record names the class: {rec}"
            );
        }
        let mut classes_on_disk = false;
        for file in files_under(self.dir.path()) {
            let bytes = std::fs::read(&file).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert_no_key(&file.display().to_string(), &text);
            classes_on_disk |= text.contains("aws_access_key");
        }
        assert!(classes_on_disk, "no audit file on disk was searched");
        let log = self.log().to_owned();
        assert!(
            log.contains("output.findings") && log.contains("aws_access_key"),
            "the log names the finding's class:\n{log}"
        );
        assert_no_key("Warden's log", &log);
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn content_type(r: &Reply) -> &str {
    r.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// `tools/call leak {case}`, with a progress token when `progress`.
async fn call(c: &mut Client, case: &str, progress: bool) -> Reply {
    let mut params = json!({"name": TOOL, "arguments": {"case": case}});
    if progress {
        params["_meta"] = json!({"progressToken": format!("p-{case}")});
    }
    c.request("tools/call", params).await
}

/// The SSE reply to a call with a progress token: the upstream's progress
/// notification (the client's token restored) before the response.
fn assert_progress_first(case: &str, r: &Reply) {
    assert!(
        content_type(r).starts_with("text/event-stream"),
        "{case}: Warden answers as SSE: {r:?}"
    );
    assert!(r.messages.len() >= 2, "{case}: {}", r.raw);
    let first = &r.messages[0];
    assert_eq!(first["method"], "notifications/progress", "{case}: {first}");
    assert_eq!(
        first["params"]["progressToken"],
        format!("p-{case}"),
        "{case}"
    );
    assert_eq!(
        first["params"]["message"], "scanning the deploy notes",
        "{case}"
    );
    assert!(r.messages.last().is_some_and(|m| m.get("result").is_some()));
}

#[tokio::test]
async fn a_secret_split_across_sse_writes_is_redacted_in_a_json_reply() {
    let up = upstream("0.05");
    let mut w = Gateway::start(up.port, "");
    let mut c = w.client().await;
    for case in CASES {
        // No progress token: `progress_first` sends only its priming event
        // before the result, and Warden answers with one JSON body.
        let r = call(&mut c, case, false).await;
        assert!(
            content_type(&r).starts_with("application/json"),
            "{case}: Warden answers as JSON: {r:?}"
        );
        assert_eq!(text_of(r.result()), text(REDACTED, case), "{case}");
        assert_no_key(case, &r.raw);
    }
    w.assert_recorded_without_the_key(CASES.len());
}

#[tokio::test]
async fn a_secret_split_across_sse_writes_is_redacted_in_an_sse_reply_after_progress() {
    let up = upstream("0.05");
    let mut w = Gateway::start(up.port, "");
    let mut c = w.client().await;
    let case = "progress_first";
    let r = call(&mut c, case, true).await;
    assert_progress_first(case, &r);
    assert_eq!(text_of(r.result()), text(REDACTED, case));
    assert_no_key(case, &r.raw);
    w.assert_recorded_without_the_key(1);
}

/// The control: with secrets only logged, the key the server cut into
/// pieces reaches the client whole, in JSON and in SSE replies. So the
/// stream was reassembled by Warden, and the redaction above is the guard's
/// doing on the reassembled key (the finding is still recorded, still
/// without the value).
#[tokio::test]
async fn with_redaction_off_the_split_secret_comes_through_whole() {
    let up = upstream("0.05");
    let mut w = Gateway::start(up.port, "guards:\n  output:\n    secrets: {action: log}\n");
    let mut c = w.client().await;
    let k = key();
    for case in CASES {
        let r = call(&mut c, case, false).await;
        assert!(content_type(&r).starts_with("application/json"), "{r:?}");
        assert_eq!(text_of(r.result()), text(&k, case), "{case}");
    }
    let r = call(&mut c, "progress_first", true).await;
    assert_progress_first("progress_first", &r);
    assert_eq!(text_of(r.result()), text(&k, "progress_first"));
    w.assert_recorded_without_the_key(CASES.len() + 1);
}

/// The fixture does what the tests above rely on: in every case the key is
/// never contiguous on the wire (an HTTP chunk boundary falls inside it),
/// its pieces arrive in separate reads, and the de-chunked body holds it
/// whole.
#[test]
fn the_upstream_really_cuts_the_secret_across_writes() {
    let up = upstream("0.2");
    let k = key();
    for case in CASES {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "leak", "arguments": {"case": case}, "_meta": {"progressToken": "t"}}})
        .to_string();
        let mut s = TcpStream::connect(("127.0.0.1", up.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            up.port,
            body.len()
        )
        .unwrap();
        // Every read, as it arrived.
        let mut reads: Vec<(Instant, Vec<u8>)> = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match s.read(&mut buf).expect("read") {
                0 => break,
                n => reads.push((Instant::now(), buf[..n].to_vec())),
            }
        }
        let raw: Vec<u8> = reads.iter().flat_map(|(_, b)| b.clone()).collect();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("HTTP head");
        let head = String::from_utf8_lossy(&raw[..split]);
        let chunked = &raw[split + 4..];
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/event-stream"),
            "{head}"
        );
        let wire = String::from_utf8_lossy(chunked);
        assert!(
            !wire.contains(&k),
            "{case}: the key is whole on the wire:\n{wire}"
        );
        let body = String::from_utf8(dechunk(chunked)).expect("UTF-8 body");
        assert!(body.contains(&text(&k, case)), "{case}: {body}");
        // The read that ends with "AKIA" comes before the one with the rest.
        let at = |needle: &str| {
            let mut seen = String::new();
            reads.iter().position(|(_, b)| {
                seen.push_str(&String::from_utf8_lossy(b));
                seen.contains(needle)
            })
        };
        let head_at = at("deploy key AKIA").expect("the key's head");
        let tail_at = at(&k[11..]).expect("the key's tail");
        assert!(head_at < tail_at, "{case}: one read carried the whole key");
        assert!(
            reads[tail_at].0 - reads[head_at].0 >= Duration::from_millis(150),
            "{case}: the key's pieces arrived together"
        );
    }
}

/// The body of a chunked HTTP/1.1 message.
fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = s
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = std::str::from_utf8(&s[..eol]).expect("ASCII chunk size");
        let n = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if n == 0 {
            return out;
        }
        let rest = &s[eol + 2..];
        out.extend_from_slice(&rest[..n]);
        s = rest[n..].strip_prefix(b"\r\n").expect("CRLF after a chunk");
    }
}

/// Issue 7 lists progress messages among the outputs guarded: a key cut
/// across writes inside an upstream's `notifications/progress` message is
/// redacted too, before it reaches the client's SSE reply.
#[tokio::test]
async fn a_secret_split_across_sse_writes_is_redacted_in_a_progress_message() {
    let up = upstream("0.05");
    let w = Gateway::start(up.port, "");
    let mut c = w.client().await;
    let case = "progress_leak";
    let r = call(&mut c, case, true).await;
    assert!(
        content_type(&r).starts_with("text/event-stream"),
        "{case}: Warden answers as SSE: {r:?}"
    );
    let progress = &r.messages[0];
    assert_eq!(progress["method"], "notifications/progress", "{}", r.raw);
    assert_eq!(
        progress["params"]["message"],
        format!("scanning the deploy notes of {REDACTED}"),
        "{}",
        r.raw
    );
    assert_eq!(text_of(r.result()), text(REDACTED, case));
    assert_no_key(case, &r.raw);
}
