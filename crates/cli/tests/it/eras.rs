//! Issue #3: the stateless 2026-07-28 protocol and bridging between protocol
//! eras, proven with real peers.
//!
//! - `four_era_combinations`: Python SDK 1.x (session era) and 2.x pinned to
//!   2026-07-28 (modern) clients, each against server-everything (session era)
//!   and `tests/peers/conformance_server.py` (which Warden's era detection
//!   talks 2026-07-28 to), through one Warden; and directly where the
//!   combination exists without Warden.
//! - `conformance_v2_through_warden`: the conformance suite's 2026-07-28
//!   requirements against conformance_server.py directly and through Warden.
//! - `modern_refusals_reach_no_upstream`: header/body mismatches, a missing
//!   `_meta` version, an unsupported version, GET/DELETE and a requestState
//!   replayed at another upstream are refused by Warden, and the upstreams'
//!   request logs show none of them arrived.
//!
//! Needs the peers that `scripts/install-peers.sh` installs (`.peers/`); a
//! missing installation fails the tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::harness::*;
use crate::peers::{everything_http, free_port, run_driver, Peers};

pub(crate) const MODERN: &str = "2026-07-28";
const SESSION: &str = "2025-11-25";

/// `tests/peers/conformance_server.py` under mcp 2.x over Streamable HTTP on a
/// loopback port; with `log`, it appends one JSON line per message it receives
/// (`--request-log`).
fn conformance_http(p: &Peers, log: Option<&Path>) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(p.get("PY2"));
    cmd.arg(p.driver("conformance_server.py"))
        .args(["--port", &port.to_string()]);
    if let Some(log) = log {
        cmd.arg("--request-log").arg(log);
    }
    let proc = spawn(&mut cmd);
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (proc, port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("conformance_server.py did not listen on {port}");
}

/// The lines of a `--request-log` file.
fn request_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

// ------------------------------------------------------- four combinations

#[derive(Clone, Copy, Debug, PartialEq)]
enum ClientEra {
    /// py_client.py under mcp 1.x: `initialize`, sessions.
    Session,
    /// py_client.py under mcp 2.x with `--protocol 2026-07-28`.
    Modern,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Upstream {
    /// server-everything, streamableHttp (session era).
    Everything,
    /// conformance_server.py (speaks both; Warden should pick 2026-07-28).
    Conformance,
}

/// The server names in Warden's configuration.
const EVERYTHING: &str = "everything";
const CONFORMANCE: &str = "modern";

/// One elicitation answer for every form either upstream asks: `name` (both),
/// `username` + `email` (`test_elicitation`), `check` (server-everything).
const ELICITED: &str =
    r#"{"name":"Ada Eras","username":"ada-eras","email":"ada@example.com","check":true}"#;

impl Upstream {
    /// The driver's steps after `--list`: a tool call, a resource read and
    /// elicitation round trips. `prefix` is `""` directly, `"<server>__"`
    /// through Warden.
    fn steps(self, prefix: &str) -> Vec<String> {
        let s = |x: &str| x.to_owned();
        match self {
            Upstream::Everything => vec![
                s("--call"),
                format!("{prefix}echo"),
                s("--args"),
                s(r#"{"message":"eras round trip"}"#),
                s("--read"),
                s("demo://resource/static/document/architecture.md"),
                s("--call"),
                format!("{prefix}trigger-elicitation-request"),
                s("--args"),
                s("{}"),
            ],
            Upstream::Conformance => vec![
                s("--call"),
                format!("{prefix}test_simple_text"),
                s("--read"),
                s("test://static-text"),
                s("--call"),
                format!("{prefix}test_input_required_result_elicitation"),
                s("--call"),
                format!("{prefix}test_elicitation"),
                s("--args"),
                s(r#"{"message":"Who are you?"}"#),
            ],
        }
    }
}

/// Runs py_client.py for one combination against `url`.
fn run_combo(p: &Peers, client: ClientEra, up: Upstream, url: &str, prefix: &str) -> Value {
    let (program, protocol): (&str, &[&str]) = match client {
        ClientEra::Session => ("PY1", &[]),
        ClientEra::Modern => ("PY2", &["--protocol", MODERN]),
    };
    let mut args = vec![p.driver("py_client.py").display().to_string()];
    args.extend(["--url".into(), url.into(), "--timeout".into(), "90".into()]);
    args.extend(protocol.iter().map(|s| s.to_string()));
    args.extend(["--elicit-content".into(), ELICITED.into(), "--list".into()]);
    args.extend(up.steps(prefix));
    run_driver(p.get(program), &args)
}

fn call_text(v: &Value, name: &str, label: &str) -> String {
    let c = v["calls"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("{label}: no call {name} in {v}"));
    assert_eq!(c["ok"], true, "{label}: {name} failed: {c}");
    c["text"].as_str().unwrap_or_default().to_owned()
}

/// The same assertions directly and through Warden: what each step returned.
fn check_combo(v: &Value, client: ClientEra, up: Upstream, prefix: &str, label: &str) {
    assert_eq!(
        v["ok"],
        true,
        "{label}: {}",
        serde_json::to_string_pretty(v).unwrap_or_default()
    );
    let era = match client {
        ClientEra::Session => SESSION,
        ClientEra::Modern => MODERN,
    };
    assert_eq!(v["protocol_version"], era, "{label}: negotiated version");
    let tools: Vec<&str> = v["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{label}: no tool list in {v}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let elicitations: Vec<&str> = v["callbacks"]["elicitation"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["message"].as_str()).collect())
        .unwrap_or_default();
    let read = v["reads"][0].clone();
    assert_eq!(read["ok"], true, "{label}: read failed: {read}");
    let read = read["text"].as_str().unwrap_or_default().to_owned();
    match up {
        Upstream::Everything => {
            for t in ["echo", "trigger-elicitation-request"] {
                let t = format!("{prefix}{t}");
                assert!(tools.contains(&t.as_str()), "{label}: {t} not in {tools:?}");
            }
            assert_eq!(
                call_text(v, &format!("{prefix}echo"), label),
                "Echo: eras round trip",
                "{label}"
            );
            assert!(
                read.starts_with("# Everything Server – Architecture"),
                "{label}: {read}"
            );
            let text = call_text(v, &format!("{prefix}trigger-elicitation-request"), label);
            // (Not the email: Warden's output guard redacts it by default.)
            for want in [
                "User provided the requested information",
                "- Name: Ada Eras",
                "- Agreed to terms: true",
            ] {
                assert!(text.contains(want), "{label}: {want:?} not in {text}");
            }
            assert_eq!(
                elicitations,
                ["Please provide inputs for the following fields:"],
                "{label}: the client's elicitation callback"
            );
        }
        Upstream::Conformance => {
            for t in [
                "test_simple_text",
                "test_input_required_result_elicitation",
                "test_elicitation",
            ] {
                let t = format!("{prefix}{t}");
                assert!(tools.contains(&t.as_str()), "{label}: {t} not in {tools:?}");
            }
            assert_eq!(
                call_text(v, &format!("{prefix}test_simple_text"), label),
                "This is a simple text response for testing.",
                "{label}"
            );
            assert_eq!(
                read, "This is the content of the static text resource.",
                "{label}"
            );
            assert_eq!(
                call_text(
                    v,
                    &format!("{prefix}test_input_required_result_elicitation"),
                    label
                ),
                "Hello, Ada Eras!",
                "{label}"
            );
            let text = call_text(v, &format!("{prefix}test_elicitation"), label);
            assert!(
                text.starts_with("User response: action=accept, content=")
                    && text.contains(r#""username": "ada-eras""#),
                "{label}: {text}"
            );
            assert_eq!(
                elicitations,
                ["What is your name?", "Who are you?"],
                "{label}: the client's elicitation callback"
            );
        }
    }
}

/// All four client × upstream era combinations through one Warden; the three
/// that exist without Warden also directly, with the same assertions.
///
/// Both upstreams sit in ONE namespaced virtual server (`/mcp/eras`): the
/// issue asks that a virtual server can federate upstreams of different eras,
/// and one client session then reaches both eras at once (every run also
/// checks that both servers' tools are listed).
#[test]
fn four_era_combinations() {
    let p = Peers::load();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("modern.jsonl");
    let (_everything, everything_port) = everything_http(&p, "streamableHttp");
    let (_conformance, conformance_port) = conformance_http(&p, Some(&log));
    let everything_url = format!("http://127.0.0.1:{everything_port}/mcp");
    let conformance_url = format!("http://127.0.0.1:{conformance_port}/mcp");

    // Directly: the combinations that exist without Warden.
    for (client, up, url) in [
        (ClientEra::Session, Upstream::Everything, &everything_url),
        (ClientEra::Session, Upstream::Conformance, &conformance_url),
        (ClientEra::Modern, Upstream::Conformance, &conformance_url),
    ] {
        let label = format!("direct {client:?} client -> {up:?}");
        check_combo(&run_combo(&p, client, up, url, ""), client, up, "", &label);
    }
    let direct_lines = request_log(&log).len();

    let w = Warden::start(&format!(
        "servers:\n  {EVERYTHING}:\n    url: {everything_url}\n  {CONFORMANCE}:\n    url: {conformance_url}\nvirtual_servers:\n  eras:\n    servers: [{EVERYTHING}, {CONFORMANCE}]\n"
    ));
    let url = w.url("/mcp/eras");
    let mut seen_by_upstream = Vec::new();
    for client in [ClientEra::Session, ClientEra::Modern] {
        let before = request_log(&log).len();
        for (up, server) in [
            (Upstream::Everything, EVERYTHING),
            (Upstream::Conformance, CONFORMANCE),
        ] {
            let label = format!("through Warden: {client:?} client -> {up:?}");
            let prefix = format!("{server}__");
            let v = run_combo(&p, client, up, &url, &prefix);
            check_combo(&v, client, up, &prefix, &label);
            let tools = v["tools"].to_string();
            assert!(
                tools.contains("\"everything__echo\"")
                    && tools.contains("\"modern__test_simple_text\""),
                "{label}: the virtual server lists both eras' tools: {tools}"
            );
        }
        seen_by_upstream.push((client, request_log(&log).split_off(before)));
    }
    assert!(direct_lines > 0);

    // `protocol: auto` with conformance_server.py, which speaks both eras
    // (#15.14): the 2026-07-28 client's requests reached it in 2026-07-28
    // (no initialize, the modern version on every call); the session-era
    // client declared sampling, elicitation and roots, so Warden chose the
    // session era, where the server asks those in the middle of a call.
    for (client, through) in &seen_by_upstream {
        let calls = through
            .iter()
            .filter(|l| l["method"] == "tools/call")
            .count();
        assert!(
            calls >= 3,
            "{client:?}: the upstream saw too few calls: {through:?}"
        );
        let initialized = through.iter().any(|l| l["method"] == "initialize");
        match client {
            ClientEra::Modern => {
                assert!(!initialized, "Warden used the session era for a 2026-07-28 client: {through:?}");
                for l in through.iter().filter(|l| l["method"].is_string()) {
                    assert_eq!(l["protocol_version"], MODERN, "Warden's request to the modern upstream: {l}");
                }
            }
            ClientEra::Session => assert!(
                initialized,
                "a session-era client with sampling/elicitation/roots got the 2026-07-28 era: {through:?}"
            ),
        }
    }
}

// ------------------------------------------------------------- conformance

/// Runs `scripts/conformance.sh SUITE URL` and returns its summary.
fn conformance(suite: &str, url: &str, out: &Path) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/conformance.sh");
    let status = Command::new("bash")
        .arg(&script)
        .args([suite, url])
        .arg(out)
        .status()
        .expect("conformance runs");
    assert!(
        status.code().is_some_and(|c| c <= 1),
        "conformance.sh {suite} could not run against {url}"
    );
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// The conformance suite 0.2.0-alpha's 2026-07-28 requirements (`v2`), in one
/// run against conformance_server.py directly and through Warden: every
/// scenario that passes directly passes through Warden.
#[test]
fn conformance_v2_through_warden() {
    let p = Peers::load();
    let (_upstream, port) = conformance_http(&p, None);
    let w = Warden::start(&format!(
        "servers:\n  conf:\n    url: http://127.0.0.1:{port}/mcp\nvirtual_servers:\n  conformance:\n    servers: [conf]\n    namespace: false\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let direct = conformance(
        "v2",
        &format!("http://127.0.0.1:{port}/mcp"),
        &dir.path().join("direct.json"),
    );
    let through = conformance(
        "v2",
        &w.url("/mcp/conformance"),
        &dir.path().join("warden.json"),
    );
    eprintln!(
        "conformance v2 (2026-07-28): direct {} / through Warden {}",
        direct["totals"], through["totals"]
    );
    let scenarios = direct["scenarios"].as_object().expect("scenarios");
    assert!(
        scenarios.len() >= 45,
        "the suite ran too few scenarios: {direct}"
    );
    let passing = scenarios.values().filter(|s| s["status"] == "pass").count();
    assert!(
        passing >= 37,
        "conformance_server.py itself regressed (see conformance/baseline-v2.json): {}",
        direct["totals"]
    );
    let mut regressions = Vec::new();
    for (name, d) in scenarios {
        if d["status"] == "pass" && through["scenarios"][name]["status"] != "pass" {
            // Each failure's id and the start of its message: the suite
            // quotes whole messages, which would bury the point.
            let failures: Vec<String> = through["scenarios"][name]["failures"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|f| {
                            let m = f["message"].as_str().unwrap_or_default();
                            let cut: String = m.chars().take(300).collect();
                            format!("{}: {cut}", f["id"].as_str().unwrap_or("?"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            regressions.push(format!("{name}: {}", failures.join(" | ")));
        }
    }
    assert!(
        regressions.is_empty(),
        "pass directly, fail through Warden:\n{}",
        regressions.join("\n")
    );
}

// ---------------------------------------------------------------- refusals

/// A 2026-07-28 request's `params._meta`.
fn modern_meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    })
}

/// A valid 2026-07-28 request: body (with `params._meta` unless `params`
/// has one) and its headers (`Mcp-Name` for name-bearing methods).
pub(crate) fn modern_request(
    id: u64,
    method: &str,
    mut params: Value,
) -> (String, Vec<(String, String)>) {
    if params.get("_meta").is_none() {
        params["_meta"] = modern_meta(json!({}));
    }
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        (
            "accept".to_owned(),
            "application/json, text/event-stream".to_owned(),
        ),
        ("mcp-protocol-version".to_owned(), MODERN.to_owned()),
        ("mcp-method".to_owned(), method.to_owned()),
    ];
    let name = match method {
        "tools/call" | "prompts/get" => params["name"].as_str(),
        "resources/read" => params["uri"].as_str(),
        _ => None,
    };
    if let Some(name) = name {
        headers.push(("mcp-name".to_owned(), name.to_owned()));
    }
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
    (body, headers)
}

/// Replaces (or adds) a header.
fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    headers.push((name.to_owned(), value.to_owned()));
}

async fn post(c: &mut Client, body: String, headers: &[(String, String)]) -> Reply {
    let mut b = c.http.post(&c.url).body(body);
    for (k, v) in headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let resp = tokio::time::timeout(Duration::from_secs(60), b.send())
        .await
        .expect("POST timed out")
        .expect("POST failed");
    c.read_reply(resp).await
}

/// Asserts HTTP `status` and JSON-RPC error `code`.
fn refused(r: &Reply, status: u16, code: i64, label: &str) {
    assert_eq!(r.status, status, "{label}: {}", r.raw);
    assert_eq!(r.error_code(), code, "{label}: {}", r.raw);
}

/// Asserts that no line of an upstream's request log matches `pred`.
fn unreached(log: &Path, label: &str, pred: impl Fn(&Value) -> bool) {
    let hits: Vec<Value> = request_log(log).into_iter().filter(|l| pred(l)).collect();
    assert!(
        hits.is_empty(),
        "{label}: reached the upstream ({}): {hits:?}",
        log.display()
    );
}

fn named(l: &Value, name: &str) -> bool {
    l["name"] == name
}

/// Requests a 2026-07-28 client must not get past Warden get their error from
/// Warden, and the upstreams (two conformance_server.py, `a` and `b`, which
/// log every message they receive) never see them.
#[tokio::test]
async fn modern_refusals_reach_no_upstream() {
    let p = Peers::load();
    let logs = tempfile::tempdir().unwrap();
    let (log_a, log_b) = (logs.path().join("a.jsonl"), logs.path().join("b.jsonl"));
    let (_a, port_a) = conformance_http(&p, Some(&log_a));
    let (_b, port_b) = conformance_http(&p, Some(&log_b));
    let w = Warden::start(&format!(
        "servers:\n  a:\n    url: http://127.0.0.1:{port_a}/mcp\n  b:\n    url: http://127.0.0.1:{port_b}/mcp\n"
    ));
    let url = w.url("/mcp");
    let mut c = Client::new(&url);
    let both = |label: &str, pred: &dyn Fn(&Value) -> bool| {
        unreached(&log_a, label, pred);
        unreached(&log_b, label, pred);
    };

    // Control: a valid request passes and is logged, so "no line" means
    // "never arrived".
    let (body, h) = modern_request(
        1,
        "tools/call",
        json!({"name": "a__test_simple_text", "arguments": {}}),
    );
    let r = post(&mut c, body, &h).await;
    assert_eq!(r.status, 200, "control: {}", r.raw);
    assert_eq!(
        text_of(r.result()),
        "This is a simple text response for testing.",
        "control: {}",
        r.raw
    );
    assert!(
        request_log(&log_a)
            .iter()
            .any(|l| l["method"] == "tools/call" && named(l, "test_simple_text")),
        "control: upstream a logged no call: {:?}",
        request_log(&log_a)
    );

    // (1) Mcp-Method differs from the body's method.
    let (body, mut h) = modern_request(
        2,
        "tools/call",
        json!({"name": "a__test_image_content", "arguments": {}}),
    );
    set_header(&mut h, "mcp-method", "tools/list");
    refused(
        &post(&mut c, body, &h).await,
        400,
        -32020,
        "Mcp-Method mismatch",
    );
    both("Mcp-Method mismatch", &|l| named(l, "test_image_content"));

    // (2) Mcp-Name differs from params.name.
    let (body, mut h) = modern_request(
        3,
        "tools/call",
        json!({"name": "a__test_audio_content", "arguments": {}}),
    );
    set_header(&mut h, "mcp-name", "a__test_simple_text");
    refused(
        &post(&mut c, body, &h).await,
        400,
        -32020,
        "Mcp-Name mismatch",
    );
    both("Mcp-Name mismatch", &|l| named(l, "test_audio_content"));

    // (3) Mcp-Name in its `=?base64?…?=` form, of the right name: accepted.
    let (body, mut h) = modern_request(
        4,
        "tools/call",
        json!({"name": "a__test_embedded_resource", "arguments": {}}),
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode("a__test_embedded_resource");
    set_header(&mut h, "mcp-name", &format!("=?base64?{encoded}?="));
    let r = post(&mut c, body, &h).await;
    assert_eq!(r.status, 200, "base64 Mcp-Name: {}", r.raw);
    assert_eq!(
        r.result()["content"][0]["resource"]["text"],
        "This is an embedded resource content.",
        "base64 Mcp-Name: {}",
        r.raw
    );

    // (4) `_meta` without the protocol version.
    let (body, h) = modern_request(
        5,
        "tools/call",
        json!({"name": "a__test_multiple_content_types", "arguments": {},
               "_meta": {"io.modelcontextprotocol/clientCapabilities": {}}}),
    );
    refused(
        &post(&mut c, body, &h).await,
        400,
        -32602,
        "no _meta version",
    );
    both("no _meta version", &|l| {
        named(l, "test_multiple_content_types")
    });

    // (5) An unsupported version, in the header and in `_meta`.
    let mut meta = modern_meta(json!({}));
    meta["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let (body, mut h) = modern_request(
        6,
        "tools/call",
        json!({"name": "a__test_error_handling", "arguments": {}, "_meta": meta}),
    );
    set_header(&mut h, "mcp-protocol-version", "2099-01-01");
    let r = post(&mut c, body, &h).await;
    refused(&r, 400, -32022, "unsupported version");
    let data = &r.response()["error"]["data"];
    assert!(
        data["supported"]
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v == MODERN)),
        "unsupported version: data.supported: {}",
        r.raw
    );
    assert_eq!(
        data["requested"], "2099-01-01",
        "unsupported version: data.requested: {}",
        r.raw
    );
    both("unsupported version", &|l| named(l, "test_error_handling"));

    // (6) GET and DELETE with the modern version header.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = c
            .http
            .request(method.clone(), &url)
            .header("mcp-protocol-version", MODERN)
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), 405, "{method} with {MODERN}");
    }
    both("GET/DELETE", &|l| {
        l["http"] == "GET" || l["http"] == "DELETE"
    });

    // (7) A requestState minted by upstream a, replayed at upstream b.
    let caps = json!({"elicitation": {}});
    let (body, h) = modern_request(
        7,
        "tools/call",
        json!({"name": "a__test_input_required_result_request_state", "arguments": {},
               "_meta": modern_meta(caps.clone())}),
    );
    let r = post(&mut c, body, &h).await;
    assert_eq!(r.status, 200, "round 1 at a: {}", r.raw);
    let round1 = r.result().clone();
    assert_eq!(round1["resultType"], "input_required", "round 1: {round1}");
    assert!(
        round1["inputRequests"]["confirm"]["method"] == "elicitation/create",
        "round 1: {round1}"
    );
    let state = round1["requestState"]
        .as_str()
        .unwrap_or_else(|| panic!("round 1 has no requestState: {round1}"))
        .to_owned();
    let answers = json!({"confirm": {"action": "accept", "content": {"ok": true}}});
    let (body, h) = modern_request(
        8,
        "tools/call",
        json!({"name": "b__test_input_required_result_request_state", "arguments": {},
               "inputResponses": answers, "requestState": state,
               "_meta": modern_meta(caps.clone())}),
    );
    refused(
        &post(&mut c, body, &h).await,
        400,
        -32602,
        "a's requestState at b",
    );
    both("a's requestState at b", &|l| l["request_state"] == true);
    // Control: the same state at its own upstream completes (passed through
    // untouched).
    let (body, h) = modern_request(
        9,
        "tools/call",
        json!({"name": "a__test_input_required_result_request_state", "arguments": {},
               "inputResponses": answers, "requestState": state,
               "_meta": modern_meta(caps)}),
    );
    let r = post(&mut c, body, &h).await;
    assert_eq!(r.status, 200, "a's requestState at a: {}", r.raw);
    assert!(
        text_of(r.result()).starts_with("state-ok"),
        "a's requestState at a: {}",
        r.raw
    );

    // Nothing refused arrived late either.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for name in [
        "test_image_content",
        "test_audio_content",
        "test_multiple_content_types",
        "test_error_handling",
    ] {
        both(name, &|l| named(l, name));
    }
    both("GET/DELETE", &|l| {
        l["http"] == "GET" || l["http"] == "DELETE"
    });
    // (a's own log has the control's replay, so only b is checked here.)
    unreached(&log_b, "a's requestState at b", |l| {
        l["request_state"] == true
    });

    // (8) `Mcp-Param-Region` (the tool's `x-mcp-header`) must mirror the
    // argument: Warden checks it against the tool's schema itself.
    let call = json!({"name": "b__test_custom_header", "arguments": {"region": "eu-west"}});
    for (label, value) in [
        ("Mcp-Param mismatch", Some("us-east")),
        ("Mcp-Param missing", None),
        ("Mcp-Param bad base64", Some("=?base64?ZXUtd2VzdA?=")),
    ] {
        let (body, mut h) = modern_request(20, "tools/call", call.clone());
        if let Some(v) = value {
            set_header(&mut h, "mcp-param-region", v);
        }
        refused(&post(&mut c, body, &h).await, 400, -32020, label);
    }
    both("Mcp-Param", &|l| named(l, "test_custom_header"));
    // The same call with the header right (base64 form too) goes through.
    let (body, mut h) = modern_request(21, "tools/call", call.clone());
    set_header(&mut h, "mcp-param-region", "=?base64?ZXUtd2VzdA==?=");
    let r = post(&mut c, body, &h).await;
    assert_eq!(text_of(r.result()), "region: eu-west", "{}", r.raw);
}

/// A session-era client calls an `x-mcp-header` tool of a 2026-07-28
/// upstream: Warden computes `Mcp-Param-Region` from the tool's live schema
/// (plain for printable ASCII, `=?base64?…?=` otherwise), and the upstream,
/// which validates the header against the argument, answers. Its request
/// log shows the header as sent and no `initialize`.
#[tokio::test]
async fn session_client_calls_reach_a_modern_upstream_with_param_headers() {
    let p = Peers::load();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("b.jsonl");
    let (_b, port) = conformance_http(&p, Some(&log));
    let w = Warden::start(&format!(
        "servers:\n  b:\n    url: http://127.0.0.1:{port}/mcp\n    protocol: {MODERN}\n"
    ));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    for (region, header) in [
        ("eu-west", "eu-west"),
        ("zürich", "=?base64?esO8cmljaA==?="),
    ] {
        let r = c
            .call_tool("b__test_custom_header", json!({"region": region}))
            .await;
        assert_eq!(
            text_of(r.result()),
            format!("region: {region}"),
            "{}",
            r.raw
        );
        let sent = request_log(&log)
            .into_iter()
            .rev()
            .find(|l| l["method"] == "tools/call" && named(l, "test_custom_header"))
            .unwrap_or_else(|| panic!("{region}: the upstream logged no call"));
        assert_eq!(sent["mcp_params"]["region"], header, "{region}: {sent}");
        assert_eq!(sent["protocol_version"], MODERN, "{region}: {sent}");
    }
    assert!(
        !request_log(&log)
            .iter()
            .any(|l| l["method"] == "initialize"),
        "a 2026-07-28 upstream was sent initialize: {:?}",
        request_log(&log)
    );
}
