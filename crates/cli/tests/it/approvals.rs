//! Human approval (stage 8, hold) through the real binary, in front of the
//! bundled notes & tickets server, which records every request it gets:
//! in band with the real Python SDK (session era and 2026-07-28), out of
//! band with `warden approvals`, four eyes, binding to the exact
//! arguments, single use, expiry, and two Warden processes sharing one
//! PostgreSQL store. The upstream's record proves that no held or denied
//! call reached it.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::*;
use crate::peers::{run_driver, Peers};

/// `{APPROVALS}` is the test's `approvals:` section.
const YAML: &str = r#"identity:
  public_url: http://127.0.0.1:1
  data_dir: '{DATA}'
  dev_issuer: {enabled: true}
servers:
  notes:
    command: '{WARDEN}'
    args: [example-server, --mode, demo, --name, notes, --record, '{DIR}/upstream.jsonl']
    sandbox: {write: ['{DIR}/upstream.jsonl']}
    tools:
      - {name: tickets_update, risk: medium}
      - {name: tickets_delete, risk: critical}
      - {name: tickets_list, risk: low}
authorization:
  arguments: {status: string, id: string}
  roles:
    dev:
      grants: [{tools: ["*"]}]
    security:
      grants: [{tools: [notes/tickets_list]}]
  approvals:
    - id: update-by-caller
      tools: [notes/tickets_update]
    - id: delete-four-eyes
      tools: [notes/tickets_delete]
      approvers: [security]
      requires: [change_ticket]
approvals:
{APPROVALS}
  targets: [id, status]
"#;

fn config(approvals: &str, data: Option<&Path>) -> String {
    let data = data.map_or_else(|| "{DIR}/data".to_owned(), |d| d.display().to_string());
    YAML.replace("{APPROVALS}", approvals)
        .replace("{DATA}", &data)
}

fn upstream_calls(dir: &Path, tool: &str) -> usize {
    let text = std::fs::read_to_string(dir.join("upstream.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["method"] == "tools/call" && m["params"]["name"] == tool)
        .count()
}

fn token(w: &Warden, sub: &str, roles: &str) -> String {
    w.cli(&["token", "mint", "--sub", sub, "--roles", roles])
}

/// `warden approvals ARGS --url <w>` as the holder of `token`.
fn approvals_cli(w: &Warden, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(WARDEN)
        .arg("approvals")
        .args(args)
        .arg("--url")
        .arg(&w.base)
        .env("WARDEN_TOKEN", token)
        .output()
        .expect("warden runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Python SDK driver against `w`, as `token`'s holder.
fn py(w: &Warden, token: &str, protocol: Option<&str>, extra: &[&str]) -> Value {
    let p = Peers::load();
    let mut args = vec![
        p.driver("py_client.py").display().to_string(),
        "--url".into(),
        w.url("/mcp"),
        "--header".into(),
        format!("Authorization=Bearer {token}"),
        "--timeout".into(),
        "60".into(),
    ];
    if let Some(v) = protocol {
        args.push("--protocol".into());
        args.push(v.into());
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    run_driver(p.get("PY2"), &args)
}

fn first_call(v: &Value) -> &Value {
    &v["calls"][0]
}

async fn sdk_in_band(protocol: Option<&str>) {
    let w = Warden::start(&config("  wait: 0s\n  in_band: true", None));
    let alice = token(&w, "alice", "dev");
    // Approved in the client: the call reaches the upstream, once.
    let v = py(
        &w,
        &alice,
        protocol,
        &[
            "--call",
            "notes__tickets_update",
            "--args",
            r#"{"id":"T-101","status":"closed"}"#,
            "--elicit-content",
            r#"{"decision":"approve","reason":"done"}"#,
        ],
    );
    assert_eq!(first_call(&v)["ok"], true, "approved in band: {v}");
    let asked = &v["callbacks"]["elicitation"];
    assert_eq!(asked.as_array().map(Vec::len), Some(1), "asked once: {v}");
    let message = asked[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("tickets_update") && message.contains("T-101") && message.contains("apr-"),
        "the form shows the exact call and its approval: {message}"
    );
    assert_eq!(upstream_calls(w.dir(), "tickets_update"), 1);

    // Denied in the client: refused, and the upstream never saw it.
    let v = py(
        &w,
        &alice,
        protocol,
        &[
            "--call",
            "notes__tickets_update",
            "--args",
            r#"{"id":"T-102","status":"closed"}"#,
            "--elicit-content",
            r#"{"decision":"deny","reason":"wrong ticket"}"#,
        ],
    );
    let call = first_call(&v);
    assert_eq!(call["ok"], false, "denied in band: {v}");
    assert_eq!(call["error"]["code"], -32012, "{v}");
    assert!(
        call["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("denied"),
        "{v}"
    );
    assert_eq!(
        upstream_calls(w.dir(), "tickets_update"),
        1,
        "the denied call never went upstream"
    );

    // A four-eyes approval never goes in band: the client is not asked.
    let v = py(
        &w,
        &alice,
        protocol,
        &[
            "--call",
            "notes__tickets_delete",
            "--args",
            r#"{"id":"T-100"}"#,
            "--elicit-content",
            r#"{"decision":"approve","change_ticket":"CHG-1"}"#,
        ],
    );
    assert_eq!(
        v["callbacks"]["elicitation"].as_array().map(Vec::len),
        Some(0),
        "the caller's client is never asked a four-eyes approval: {v}"
    );
    let call = first_call(&v);
    assert_eq!(call["error"]["code"], -32013, "{v}");
    assert_eq!(upstream_calls(w.dir(), "tickets_delete"), 0);
}

#[tokio::test]
async fn python_sdk_session_era_approves_and_denies_in_band() {
    sdk_in_band(Some("2025-11-25")).await;
}

#[tokio::test]
async fn python_sdk_2026_07_28_approves_and_denies_through_input_required() {
    sdk_in_band(Some("2026-07-28")).await;
}

async fn client(w: &Warden, token: &str) -> Client {
    let mut c = Client::with_bearer(&w.url("/mcp"), token);
    // This client has no one to ask: out of band only.
    c.answers.retain(|(m, _)| m != "elicitation/create");
    c.answers
        .push(("elicitation/create".into(), json!({"action": "cancel"})));
    c.initialize().await;
    c
}

fn held_id(r: &Reply) -> String {
    assert_eq!(r.error_code(), -32013, "held: {}", r.response());
    let data = &r.response()["error"]["data"];
    let id = data["approval"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        id.starts_with("apr-"),
        "the error names the approval: {data}"
    );
    id
}

#[tokio::test]
async fn out_of_band_four_eyes_single_use_and_bound_to_the_arguments() {
    let w = Warden::start(&config("  wait: 0s\n  in_band: false", None));
    let alice = token(&w, "alice", "dev");
    let bob = token(&w, "bob", "security");
    let mut c = client(&w, &alice).await;

    let args = json!({"id": "T-200"});
    let id = held_id(&c.call_tool("notes__tickets_delete", args.clone()).await);
    // A retry while pending is the same request.
    assert_eq!(
        held_id(&c.call_tool("notes__tickets_delete", args.clone()).await),
        id
    );
    assert_eq!(upstream_calls(w.dir(), "tickets_delete"), 0);

    // The caller sees it, with the call as held.
    let (ok, out, err) = approvals_cli(&w, &alice, &["show", &id]);
    assert!(ok, "{err}");
    assert!(
        out.contains("T-200") && out.contains("tickets_delete") && out.contains("security"),
        "{out}"
    );
    let (ok, out, _) = approvals_cli(&w, &bob, &["list"]);
    assert!(ok && out.contains(&id), "the approver lists it: {out}");

    // Four eyes: the caller's own approval is refused.
    let (ok, _, err) = approvals_cli(&w, &alice, &["approve", &id, "--change-ticket", "CHG-7"]);
    assert!(!ok && err.contains("four eyes"), "{err}");
    // The policy requires a change ticket.
    let (ok, _, err) = approvals_cli(&w, &bob, &["approve", &id, "--reason", "ok"]);
    assert!(!ok && err.contains("change ticket"), "{err}");
    let (ok, out, err) = approvals_cli(&w, &bob, &["approve", &id, "--change-ticket", "CHG-7"]);
    assert!(ok && out.contains("approved"), "{out}{err}");

    // A changed argument is another call: held again, not let through.
    let other = held_id(
        &c.call_tool("notes__tickets_delete", json!({"id": "T-201"}))
            .await,
    );
    assert_ne!(other, id);
    assert_eq!(upstream_calls(w.dir(), "tickets_delete"), 0);

    // The same call goes through, once.
    let r = c.call_tool("notes__tickets_delete", args.clone()).await;
    assert!(
        r.response().get("result").is_some(),
        "approved: {}",
        r.response()
    );
    assert_eq!(upstream_calls(w.dir(), "tickets_delete"), 1);
    // Used: the next identical call is held anew.
    let again = held_id(&c.call_tool("notes__tickets_delete", args.clone()).await);
    assert_ne!(again, id, "a consumed approval is not reused");
    assert_eq!(upstream_calls(w.dir(), "tickets_delete"), 1);
    let (ok, _, err) = approvals_cli(&w, &bob, &["approve", &id, "--change-ticket", "CHG-8"]);
    assert!(!ok && err.contains("consumed"), "{err}");

    // Denied out of band: the retry is refused.
    let (ok, _, err) = approvals_cli(&w, &bob, &["deny", &again, "--reason", "no"]);
    assert!(ok, "{err}");
    let r = c.call_tool("notes__tickets_delete", args.clone()).await;
    // A denied request is final; the retry opens a new one.
    assert_eq!(r.error_code(), -32013, "{}", r.response());
    assert_eq!(upstream_calls(w.dir(), "tickets_delete"), 1);

    // Counted: rates by outcome, and how long decisions took.
    let metrics = reqwest::get(w.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |status: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("warden_approvals_total{{status=\"{status}\"}}")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {status} count in:\n{metrics}"))
    };
    assert_eq!(count("consumed"), 1.0);
    assert_eq!(count("approved"), 1.0);
    assert_eq!(count("denied"), 1.0);
    assert!(count("requested") >= 4.0);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("warden_approval_wait_seconds_count") && l.ends_with(" 2")),
        "two decisions timed:\n{metrics}"
    );

    // Every step is in the audit trail.
    let trail = w.cli(&["audit", "query", "--json", "--limit", "500"]);
    for status in ["pending", "approved", "consumed", "denied"] {
        assert!(
            trail.lines().any(|l| l.contains("\"kind\":\"approval\"")
                && l.contains(&format!("\"status\":\"{status}\""))),
            "an approval record {status}: {trail}"
        );
    }
}

#[tokio::test]
async fn a_held_call_waits_with_progress_and_goes_on_when_approved() {
    let w = Warden::start(&config(
        "  wait: 60s\n  progress_every: 200ms\n  in_band: false",
        None,
    ));
    let alice = token(&w, "alice", "dev");
    let bob = token(&w, "bob", "security");
    let mut c = client(&w, &alice).await;
    let call = tokio::spawn(async move {
        let r = c
            .request(
                "tools/call",
                json!({"name": "notes__tickets_delete", "arguments": {"id": "T-300"}, "_meta": {"progressToken": "p1"}}),
            )
            .await;
        (r.messages.clone(), r.response().clone())
    });
    // Find the pending request as the approver sees it, then approve it.
    let id = pending_for(&w, &bob, "tool").await;
    // Wait until at least one progress notification could have gone out.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        upstream_calls(w.dir(), "tickets_delete"),
        0,
        "held, not forwarded"
    );
    let (ok, _, err) = approvals_cli(&w, &bob, &["approve", &id, "--change-ticket", "CHG-9"]);
    assert!(ok, "{err}");
    let (messages, response) = call.await.unwrap();
    assert!(response.get("result").is_some(), "{response}");
    assert!(
        messages
            .iter()
            .any(|m| m["method"] == "notifications/progress"
                && m["params"]["message"]
                    .as_str()
                    .is_some_and(|s| s.contains(&id))),
        "progress while waiting: {messages:?}"
    );
    assert_eq!(upstream_calls(w.dir(), "tickets_delete"), 1);
}

#[tokio::test]
async fn an_undecided_request_expires_and_is_refused() {
    let w = Warden::start(&config("  wait: 0s\n  expiry: 1s\n  in_band: false", None));
    let alice = token(&w, "alice", "dev");
    let bob = token(&w, "bob", "security");
    let mut c = client(&w, &alice).await;
    let id = held_id(
        &c.call_tool("notes__tickets_delete", json!({"id": "T-400"}))
            .await,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "never expired");
        let (ok, out, _) = approvals_cli(&w, &bob, &["show", &id, "--json"]);
        if ok && out.contains("\"status\":\"expired\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, _, err) = approvals_cli(&w, &bob, &["approve", &id, "--change-ticket", "CHG-1"]);
    assert!(
        !ok && err.contains("expired"),
        "an expired request cannot be approved: {err}"
    );
    assert_eq!(upstream_calls(w.dir(), "tickets_delete"), 0);
}

const PG_URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=5";

fn postgres_up() -> bool {
    match std::net::TcpStream::connect_timeout(
        &"127.0.0.1:5432".parse().expect("addr"),
        Duration::from_secs(2),
    ) {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("WARDEN_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("PostgreSQL at 127.0.0.1:5432 is required (WARDEN_REQUIRE_SERVICES=1) but unreachable: {e}");
            }
            eprintln!("\n*** SKIPPED: PostgreSQL at 127.0.0.1:5432 unreachable ({e}) ***\n");
            false
        }
    }
}

#[tokio::test]
async fn approved_on_one_warden_released_on_another_through_postgres() {
    if !postgres_up() {
        return;
    }
    let table = format!("warden_approvals_it_{}", std::process::id());
    let section = format!(
        "  store: postgres\n  postgres: {{url: '{PG_URL}', table: {table}}}\n  wait: 60s\n  in_band: false"
    );
    // One dev issuer for both processes: they share its key directory.
    let shared = tempfile::tempdir().unwrap();
    let a = Warden::start(&config(&section, Some(shared.path())));
    let b = Warden::start(&config(&section, Some(shared.path())));
    let alice = token(&a, "alice", "dev");
    let bob = token(&a, "bob", "security");
    let mut c = client(&a, &alice).await;
    let call = tokio::spawn(async move {
        let r = c
            .call_tool("notes__tickets_delete", json!({"id": "T-500"}))
            .await;
        r.response().clone()
    });
    // B lists what A holds.
    let id = pending_for(&b, &bob, "tool").await;
    // Decided on B; the call held on A goes on.
    let (ok, _, err) = approvals_cli(&b, &bob, &["approve", &id, "--change-ticket", "CHG-5"]);
    assert!(ok, "{err}");
    let response = call.await.unwrap();
    assert!(
        response.get("result").is_some(),
        "released on A: {response}"
    );
    assert_eq!(upstream_calls(a.dir(), "tickets_delete"), 1);
    assert_eq!(upstream_calls(b.dir(), "tickets_delete"), 0);
}

/// The bundled test server's `sample` tool asks the client to sample;
/// policy holds its sampling requests for a security approver (T26).
const SAMPLING_YAML: &str = r#"identity:
  public_url: http://127.0.0.1:1
  data_dir: '{DIR}/data'
  dev_issuer: {enabled: true}
servers:
  t:
    command: '{WARDEN}'
    args: [example-server, --mode, test, --name, t, --record, '{DIR}/upstream.jsonl']
    sandbox: {write: ['{DIR}/upstream.jsonl']}
authorization:
  roles:
    dev:
      grants: [{tools: ["*"], sampling: ["*"]}]
    security:
      grants: [{tools: [t/echo]}]
  approvals:
    - {id: sampling-needs-security, sampling: [t], approvers: [security]}
approvals:
  wait: 60s
  in_band: false
"#;

/// Waits for the one pending approval `bob` may decide.
async fn pending_for(w: &Warden, bob: &str, kind: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no pending {kind} approval appeared: {last}\n{}",
            std::fs::read_to_string(w.dir().join("upstream.jsonl")).unwrap_or_default()
        );
        let (ok, out, err) = approvals_cli(w, bob, &["list", "--json"]);
        last = format!("{out}{err}");
        if ok {
            let v: Value = serde_json::from_str(&out).unwrap_or_default();
            if let Some(id) = v["approvals"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["call"]["kind"] == kind)
                .and_then(|a| a["id"].as_str())
            {
                return id.to_owned();
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn t26_a_servers_sampling_request_waits_for_approval_and_a_denied_one_never_reaches_the_client(
) {
    let w = Warden::start(SAMPLING_YAML);
    let alice = token(&w, "alice", "dev");
    let bob = token(&w, "bob", "security");

    // Denied: the upstream gets the refusal, the client is never asked.
    // One client session throughout: with several sessions on one stdio
    // upstream, a server request that names no client request has no one
    // client to go to.
    let mut c = client(&w, &alice).await;
    let call = tokio::spawn(async move {
        let r = c
            .call_tool(
                "t__sample",
                json!({"prompt": "write a haiku about tickets"}),
            )
            .await;
        (c, r.messages.clone(), r.response().clone())
    });
    let id = pending_for(&w, &bob, "sampling").await;
    let (ok, out, err) = approvals_cli(&w, &bob, &["show", &id]);
    assert!(
        ok && out.contains("write a haiku about tickets"),
        "the approver sees what is asked: {out}{err}"
    );
    let (ok, _, err) = approvals_cli(&w, &bob, &["deny", &id, "--reason", "no"]);
    assert!(ok, "{err}");
    let (mut c, messages, response) = call.await.unwrap();
    assert!(
        !messages
            .iter()
            .any(|m| m["method"] == "sampling/createMessage"),
        "the client never saw the denied request: {messages:?}"
    );
    assert_eq!(response["result"]["isError"], true, "{response}");
    assert!(
        text_of(&response["result"]).contains("sampling failed"),
        "{response}"
    );

    // Approved: the request reaches the client, its answer the upstream.
    let call = tokio::spawn(async move {
        let r = c
            .call_tool("t__sample", json!({"prompt": "summarise the notes"}))
            .await;
        (r.messages.clone(), r.response().clone())
    });
    let id = pending_for(&w, &bob, "sampling").await;
    let (ok, _, err) = approvals_cli(&w, &bob, &["approve", &id]);
    assert!(ok, "{err}");
    let (messages, response) = call.await.unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m["method"] == "sampling/createMessage"),
        "approved: the client was asked: {messages:?}"
    );
    assert!(
        text_of(&response["result"]).contains("sampled by test client"),
        "{response}"
    );
}

#[tokio::test]
async fn a_client_cancels_its_held_call_and_nothing_is_forwarded() {
    let w = Warden::start(&config("  wait: 60s\n  in_band: false", None));
    let alice = token(&w, "alice", "dev");
    let bob = token(&w, "bob", "security");
    let mut c = client(&w, &alice).await;
    // A second handle on the same session, to cancel with.
    let mut canceller = Client::with_bearer(&w.url("/mcp"), &alice);
    canceller.session = c.session.clone();
    canceller.version = c.version.clone();
    let call = tokio::spawn(async move {
        let r = c
            .post_raw(
                json!({"jsonrpc": "2.0", "id": 77, "method": "tools/call",
                       "params": {"name": "notes__tickets_delete", "arguments": {"id": "T-600"}}})
                .to_string(),
            )
            .await;
        (r.status, r.messages.clone())
    });
    let id = pending_for(&w, &bob, "tool").await;
    let n = canceller
        .post_raw(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": 77, "reason": "user gave up"}})
            .to_string(),
        )
        .await;
    assert_eq!(n.status, 202);
    let (status, messages) = call.await.unwrap();
    assert!(
        !messages
            .iter()
            .any(|m| m.get("result").is_some() || m.get("error").is_some()),
        "a cancelled call is not answered (status {status}): {messages:?}"
    );
    // Nothing went upstream; the request is still there for an approver.
    assert_eq!(upstream_calls(w.dir(), "tickets_delete"), 0);
    let (ok, out, err) = approvals_cli(&w, &bob, &["show", &id, "--json"]);
    assert!(ok && out.contains("\"status\":\"pending\""), "{out}{err}");
}
