//! The official MCP SDK's OAuth client through Warden, against a real
//! authorization server (issue 15, item 4): 401 → protected resource
//! metadata → authorization server metadata → authorization code + PKCE →
//! token → list and call, then the step-up to a wider scope (403
//! `insufficient_scope` → re-authorize → the same request again, on the
//! same session).
//!
//! Needs the peers (`scripts/install-peers.sh`: the Python SDKs and the
//! oidc-provider fixture of `tests/idp`). Missing peers skip the test with a
//! notice, or fail it when `WARDEN_REQUIRE_PEERS=1`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use crate::peers::{free_port, run_driver, Peers};

/// The peers, or `None` (with a notice) when they are not installed,
/// unless `WARDEN_REQUIRE_PEERS=1` makes that a failure.
pub(crate) fn peers_or_skip() -> Option<Peers> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let env_json = root.join(".peers/env.json");
    let idp_ready = std::fs::read_to_string(&env_json)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|env| env["IDP_NODE_MODULES"].as_str().map(PathBuf::from))
        .is_some_and(|modules| modules.join("oidc-provider").exists());
    if idp_ready {
        return Some(Peers::load());
    }
    let msg = format!(
        "the Python SDKs and the authorization server fixture are not installed ({} or its IDP_NODE_MODULES missing): run scripts/install-peers.sh",
        env_json.display()
    );
    if std::env::var("WARDEN_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// tests/idp/server.mjs (oidc-provider) on loopback; killed when dropped
/// (it also exits when its stdin closes).
pub(crate) struct Idp {
    child: Child,
    _stdin: ChildStdin,
    script: PathBuf,
    pub(crate) issuer: String,
}

impl Idp {
    pub(crate) fn start(p: &Peers) -> Idp {
        // ESM resolves packages from the script's directory: run a private
        // copy beside the fixture's node_modules (another test process may
        // be starting its own copy at the same time).
        let dir = PathBuf::from(p.get("IDP_NODE_MODULES"))
            .parent()
            .expect("the fixture directory")
            .to_path_buf();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let script = dir.join(format!("server.oauth-sdk-{}.mjs", std::process::id()));
        std::fs::copy(root.join("tests/idp/server.mjs"), &script).expect("copy server.mjs");
        let mut child = Command::new(p.get("NODE22"))
            .arg(&script)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the authorization server fixture");
        let stdin = child.stdin.take().expect("stdin piped");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the fixture prints its ready line");
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the fixture's ready line is not JSON ({e}): {line:?}"));
        Idp {
            issuer: ready["issuer"].as_str().expect("issuer").to_owned(),
            child,
            _stdin: stdin,
            script,
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.script);
    }
}

/// Warden on a port chosen up front: `identity.public_url` must be the URL
/// clients use (the resource their tokens are for).
fn start_warden(dir: &Path, port: u16, yaml: &str) -> Proc {
    let cfg = dir.join("warden.yaml");
    std::fs::write(&cfg, yaml).expect("write config");
    let proc = spawn(
        Command::new(WARDEN)
            .args(["serve", "--config"])
            .arg(&cfg)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("WARDEN_LOG", "info"),
    );
    wait_for_line(&proc, "warden: listening on ", Duration::from_secs(30))
        .expect("warden did not start");
    proc
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn scope_set(v: &Value) -> Vec<&str> {
    let mut s: Vec<&str> = v.as_str().unwrap_or("").split_whitespace().collect();
    s.sort_unstable();
    s
}

/// Checks one driver run: the whole flow, two authorizations, the step-up
/// on the same session (session era) and the scopes of each token.
fn check_run(v: &Value, label: &str, resource: &str, issuer: &str, session_era: bool) {
    let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
    assert_eq!(v["ok"], true, "{label}: {pretty}");
    let tools = strs(&v["tools"]);
    assert!(
        tools.contains(&"t__echo") && tools.contains(&"t__whoami"),
        "{label}: {tools:?}"
    );

    // 401 → metadata → authorization server metadata → code + PKCE → token.
    let http = v["http"].as_array().expect("http trace");
    let mcp: Vec<&Value> = http.iter().filter(|h| h["url"] == resource).collect();
    let first = mcp.first().expect("an MCP request");
    assert_eq!(first["status"], 401, "{label}: {pretty}");
    assert_eq!(first["authorized"], false, "{label}");
    let challenge = strs(&first["www_authenticate"]).join(" | ");
    assert!(
        challenge.contains(&format!(
            r#"resource_metadata="{resource_metadata}""#,
            resource_metadata =
                resource.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
        )),
        "{label}: {challenge}"
    );
    // Least privilege: the 401 names the actions' scope, not the tool's.
    assert!(
        challenge.contains(r#"scope="mcp.read""#),
        "{label}: {challenge}"
    );
    let fetched = |url: &str| {
        http.iter()
            .any(|h| h["method"] == "GET" && h["url"] == url && h["status"] == 200)
    };
    assert!(
        fetched(&resource.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")),
        "{label}: no protected resource metadata: {pretty}"
    );
    assert!(
        fetched(&format!("{issuer}/.well-known/oauth-authorization-server"))
            || fetched(&format!("{issuer}/.well-known/openid-configuration")),
        "{label}: no authorization server metadata: {pretty}"
    );
    let token_requests: Vec<&Value> = http
        .iter()
        .filter(|h| h["method"] == "POST" && h["url"] == format!("{issuer}/token"))
        .collect();
    assert_eq!(token_requests.len(), 2, "{label}: {pretty}");
    assert!(token_requests.iter().all(|h| h["status"] == 200), "{label}");

    // Two authorizations: the first for the 401's scope, the step-up for
    // the wider one; both for Warden's resource, with PKCE S256, as the
    // pre-registered public client, with a scripted login.
    let auths = v["authorizations"].as_array().expect("authorizations");
    assert_eq!(auths.len(), 2, "{label}: {pretty}");
    for a in auths {
        assert_eq!(a["ok"], true, "{label}: {a}");
        assert_eq!(a["resource"], resource, "{label}: {a}");
        assert_eq!(a["client_id"], "public-app", "{label}: {a}");
        assert_eq!(a["code_challenge_method"], "S256", "{label}: {a}");
        assert_eq!(a["endpoint"], format!("{issuer}/auth"), "{label}: {a}");
        assert_eq!(a["iss"], issuer, "{label}: {a}");
    }
    assert_eq!(auths[0]["login_posted"], true, "{label}");
    assert_eq!(scope_set(&auths[0]["scope"]), ["mcp.read"], "{label}");
    assert_eq!(
        scope_set(&auths[1]["scope"]),
        ["mcp.read", "mcp.write"],
        "{label}"
    );
    let tokens = v["tokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 2, "{label}: {pretty}");
    for (t, want) in tokens
        .iter()
        .zip([vec!["mcp.read"], vec!["mcp.read", "mcp.write"]])
    {
        let claims = &t["claims"];
        assert_eq!(scope_set(&claims["scope"]), want, "{label}: {t}");
        assert_eq!(claims["aud"], resource, "{label}: {t}");
        assert_eq!(claims["iss"], issuer, "{label}: {t}");
        assert_eq!(claims["sub"], "alice", "{label}: {t}");
    }

    // The calls: echo with the first token; whoami refused with 403
    // insufficient_scope naming mcp.write, then served after the step-up.
    let calls = v["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 2, "{label}: {pretty}");
    assert_eq!(calls[0]["name"], "t__echo");
    assert_eq!(calls[0]["ok"], true, "{label}: {}", calls[0]);
    assert_eq!(calls[0]["text"], "through the sdk", "{label}");
    assert_eq!(calls[0]["authorizations_before"], 1, "{label}");
    assert_eq!(calls[0]["authorizations_after"], 1, "{label}");
    assert_eq!(calls[1]["name"], "t__whoami");
    assert_eq!(calls[1]["ok"], true, "{label}: {}", calls[1]);
    assert_eq!(calls[1]["authorizations_before"], 1, "{label}");
    assert_eq!(calls[1]["authorizations_after"], 2, "{label}");

    let refused: Vec<usize> = mcp
        .iter()
        .enumerate()
        .filter(|(_, h)| h["status"] == 403)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(refused.len(), 1, "{label}: {pretty}");
    let forbidden = mcp[refused[0]];
    let step_up = strs(&forbidden["www_authenticate"]).join(" | ");
    assert!(
        step_up.contains(r#"error="insufficient_scope""#) && step_up.contains("mcp.write"),
        "{label}: {step_up}"
    );
    let retry = mcp.get(refused[0] + 1).expect("the refused request again");
    assert_eq!(retry["method"], "POST", "{label}");
    assert_eq!(retry["status"], 200, "{label}: {pretty}");
    assert_eq!(retry["session"], forbidden["session"], "{label}");
    let sessions = strs(&v["sessions"]);
    if session_era {
        // One session from initialize to the end: the step-up did not
        // cost the client its session.
        assert_eq!(sessions.len(), 1, "{label}: {pretty}");
        assert!(forbidden["session"].is_string(), "{label}");
        assert!(
            mcp.iter()
                .skip(2)
                .all(|h| h["session"].as_str() == Some(sessions[0])),
            "{label}: {pretty}"
        );
    } else {
        assert!(sessions.is_empty(), "{label}: {pretty}");
    }
}

/// Issue 15, item 4: `mcp`'s `OAuthClientProvider` against the real
/// authorization server through Warden configured the way a new user
/// would (an issuer, roles, scopes; every other identity key at its
/// default). Before the fix the 401 challenge named every scope the policy
/// uses, so the SDK got the tool's scope at its first authorization and
/// never stepped up (least privilege lost).
#[tokio::test]
async fn the_python_sdk_oauth_flow_works_end_to_end_with_step_up() {
    let Some(p) = peers_or_skip() else { return };
    let idp = Idp::start(&p);
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let resource = format!("{base}/mcp");
    // `allow_private_network`: the fixture listens on loopback, which
    // issuer fetches may not reach by default. The registry section: these
    // tests pin tools on first use (see `with_tofu`).
    let yaml = with_tofu(&format!(
        r#"identity:
  public_url: {base}
  issuers:
    - issuer: {issuer}
      allow_private_network: true
servers:
{server}authorization:
  roles:
    analyst:
      grants:
        - tools: ["t/*"]
  scopes:
    actions:
      discover: [mcp.read]
      call_tool: [mcp.read]
    tools:
      "t/whoami": [mcp.write]
"#,
        issuer = idp.issuer,
        server = example_server("t", "test", ""),
    ))
    .replace("{WARDEN}", WARDEN)
    .replace("{DIR}", &dir.path().display().to_string());
    let _warden = start_warden(dir.path(), port, &yaml);

    // The metadata lists every scope; the step-up scope included.
    let meta: Value = reqwest::get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .await
        .expect("protected resource metadata")
        .json()
        .await
        .expect("metadata JSON");
    assert_eq!(meta["resource"], resource, "{meta}");
    assert_eq!(meta["authorization_servers"][0], idp.issuer, "{meta}");
    assert_eq!(
        scope_set(&Value::from(strs(&meta["scopes_supported"]).join(" "))),
        ["mcp.read", "mcp.write"],
        "{meta}"
    );

    // Both SDK generations implement the step-up (mcp 1.30 re-authorizes
    // with the 403's scope, mcp 2.3 with its union with the earlier one;
    // Warden's 403 names every scope the call needs, so both ask for the
    // same). mcp 2.x also speaks 2026-07-28, which has no sessions.
    for (label, python, protocol, session_era) in [
        ("mcp 2.x, session era", "PY2", "legacy", true),
        ("mcp 1.x", "PY1", "legacy", true),
        ("mcp 2.x, auto", "PY2", "auto", false),
    ] {
        let args: Vec<String> = [
            p.driver("py_oauth_client.py").display().to_string(),
            "--url".into(),
            resource.clone(),
            "--protocol".into(),
            protocol.into(),
            "--list".into(),
            "--call".into(),
            "t__echo".into(),
            "--args".into(),
            r#"{"message":"through the sdk"}"#.into(),
            "--call".into(),
            "t__whoami".into(),
            "--timeout".into(),
            "60".into(),
        ]
        .into();
        let python = p.get(python).to_owned();
        let v = tokio::task::spawn_blocking(move || run_driver(&python, &args))
            .await
            .expect("the driver ran");
        let text = v.to_string();
        assert!(
            !text.contains("eyJ"),
            "{label}: the driver's output holds something like a token"
        );
        check_run(&v, label, &resource, &idp.issuer, session_era);
        if !session_era {
            assert_eq!(v["protocol_version"], "2026-07-28", "{label}: {v}");
        }
    }
}

/// The same contract without the SDK (and without peers): the 401 names
/// the actions' scope only, the metadata every scope, and a call that
/// needs more is a 403 step-up challenge naming what it needs, in the
/// session era and (issue 15, item 4: it was a 200 with a JSON-RPC error,
/// which no OAuth client acts on) in 2026-07-28.
#[tokio::test]
async fn insufficient_scope_is_a_403_step_up_challenge_in_both_eras() {
    let yaml = format!(
        "identity:\n  public_url: http://127.0.0.1:1\n  data_dir: '{{DIR}}/data'\n  dev_issuer: {{enabled: true}}\nservers:\n{}authorization:\n  roles:\n    analyst:\n      grants:\n        - tools: [\"t/*\"]\n  scopes:\n    actions:\n      discover: [mcp.read]\n      call_tool: [mcp.read]\n    tools:\n      \"t/whoami\": [mcp.write]\n",
        example_server("t", "test", "")
    );
    let w = Warden::start(&yaml);
    let http = reqwest::Client::new();

    let r = Client::new(&w.url("/mcp"))
        .builder(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#
                .into(),
        )
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 401);
    for challenge in r.headers().get_all("www-authenticate") {
        let challenge = challenge.to_str().unwrap_or("");
        assert!(challenge.contains(r#"scope="mcp.read""#), "{challenge}");
    }
    let meta: Value = http
        .get(w.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("metadata JSON");
    assert_eq!(
        meta["scopes_supported"],
        serde_json::json!(["mcp.read", "mcp.write"])
    );

    let narrow = w.cli(&[
        "token", "mint", "--sub", "alice", "--roles", "analyst", "--scopes", "mcp.read",
    ]);
    let step_up_challenge = |headers: &reqwest::header::HeaderMap| {
        let all: Vec<String> = headers
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap_or("").to_owned())
            .collect();
        assert!(
            all.first().is_some_and(|b| b.starts_with("Bearer ")
                && b.contains(r#"error="insufficient_scope""#)
                && b.contains(r#"scope="mcp.read mcp.write""#)
                && b.contains("resource_metadata=")),
            "{all:?}"
        );
    };

    // Session era.
    let mut c = Client::with_bearer(&w.url("/mcp"), &narrow);
    c.initialize().await;
    let ok = c
        .call_tool("t__echo", serde_json::json!({"message": "narrow"}))
        .await;
    assert_eq!(text_of(ok.result()), "narrow");
    let r = c.call_tool("t__whoami", serde_json::json!({})).await;
    assert_eq!(r.status, 403, "{}", r.raw);
    assert_eq!(r.error_code(), -32014, "{}", r.raw);
    step_up_challenge(&r.headers);

    // 2026-07-28: no session; the envelope in `_meta`, mirrored headers.
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
    "name": "t__whoami", "arguments": {},
    "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "it", "version": "0"},
    }}})
    .to_string();
    let r = http
        .post(w.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {narrow}"))
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "t__whoami")
        .body(body.clone())
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 403);
    step_up_challenge(r.headers());
    let v: Value = r.json().await.expect("JSON-RPC error");
    assert_eq!(v["id"], 7, "{v}");
    assert_eq!(v["error"]["code"], -32014, "{v}");

    // The stepped-up token is served, the same request again.
    let wide = w.cli(&[
        "token",
        "mint",
        "--sub",
        "alice",
        "--roles",
        "analyst",
        "--scopes",
        "mcp.read,mcp.write",
    ]);
    let r = http
        .post(w.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {wide}"))
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "t__whoami")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.expect("JSON-RPC result");
    assert!(v["result"].is_object(), "{v}");
}
