//! Authorization (stage 5) through the real binary, in front of the bundled
//! notes & tickets server: roles, argument rules, approvals, scopes, toxic
//! flows, tenancy and filtered lists. Every refusal must reach no upstream.

use serde_json::{json, Value};

use crate::harness::*;

const POLICY_YAML: &str = r#"identity:
  public_url: http://127.0.0.1:1
  data_dir: '{DIR}/data'
  dev_issuer: {enabled: true}
servers:
  notes:
    command: '{WARDEN}'
    args: [example-server, --mode, demo, --name, notes, --record, '{DIR}/upstream.jsonl']
    sandbox: {write: ['{DIR}/upstream.jsonl']}
    environment: prod
    tools:
      - {name: notes_search, risk: low}
      - {name: notes_get, risk: low}
      - {name: tickets_list, risk: low}
      - {name: notes_create, risk: medium, labels: [external_send]}
      - {name: tickets_create, risk: medium}
      - {name: tickets_update, risk: medium}
      # tickets_delete is not described: its annotations (destructiveHint)
      # raise it above the default tier.
    resources:
      - {name: "notes://*", data_class: confidential}
  acme:
    command: '{WARDEN}'
    args: [example-server, --mode, demo, --name, acme]
    tenants: [acme]
    risk: low
authorization:
  arguments: {status: string, id: string}
  roles:
    admin:
      grants:
        - {tools: ["*"], resources: ["*"], prompts: ["*"]}
    analyst:
      grants:
        - {tools: ["*"], resources: ["*"], prompts: ["*"], max_risk: low}
    support:
      grants:
        - tools: [notes/tickets_list]
        - tools: [notes/tickets_update]
          arguments: {status: {one_of: [in_progress, closed]}, id: {like: ["T-1*"]}}
    engineering:
      grants:
        - tools: [notes/notes_search, notes/notes_get, notes/tickets_list, notes/tickets_delete]
          environments: [dev, staging, prod]
  approvals:
    - id: prod-tickets-delete
      roles: [engineering]
      tools: [notes/tickets_delete]
      environments: [prod]
      requires: [change_ticket, reason]
  policies: [toxic.cedar]
  scopes:
    tools: {"notes/tickets_create": ["tickets:write"]}
approvals:
  wait: 0s
  in_band: false
"#;

const TOXIC_CEDAR: &str = r#"@id("toxic-flow.confidential-then-external")
@reason("toxic_flow")
forbid (
  principal,
  action == Warden::Action::"call_tool",
  resource
) when {
  context.session.data_classes.contains("confidential") &&
  resource.labels.contains("external_send")
};
"#;

fn start() -> Warden {
    Warden::start_with_files(POLICY_YAML, &[("toxic.cedar", TOXIC_CEDAR)])
}

async fn client(w: &Warden, sub: &str, extra: &[&str]) -> Client {
    let mut args = vec!["token", "mint", "--sub", sub];
    args.extend_from_slice(extra);
    let token = w.cli(&args);
    let mut c = Client::with_bearer(&w.url("/mcp"), &token);
    c.initialize().await;
    c
}

fn upstream_calls(w: &Warden, tool: &str) -> usize {
    let text = std::fs::read_to_string(w.dir().join("upstream.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["method"] == "tools/call" && m["params"]["name"] == tool)
        .count()
}

fn assert_denied(r: &Reply, code: i64, what: &str) -> Value {
    assert_eq!(r.error_code(), code, "{what}: {}", r.response());
    let data = r.response()["error"]["data"].clone();
    assert!(
        data["correlationId"].as_str().is_some_and(|c| c.len() >= 8),
        "{what}: a correlation id: {data}"
    );
    data
}

#[tokio::test]
async fn seed000_admin_has_everything_analyst_reads_support_is_limited() {
    let w = start();
    let mut admin = client(
        &w,
        "ada",
        &["--roles", "admin", "--scopes", "tickets:write"],
    )
    .await;
    let mut analyst = client(&w, "ann", &["--roles", "analyst"]).await;
    let mut support = client(&w, "sam", &["--roles", "support"]).await;

    let mut all = admin.tool_names().await;
    all.sort();
    assert_eq!(
        all,
        [
            "notes__notes_create",
            "notes__notes_get",
            "notes__notes_search",
            "notes__tickets_create",
            "notes__tickets_delete",
            "notes__tickets_list",
            "notes__tickets_update"
        ],
        "admin sees every tool of its tenant-free servers, none of acme's"
    );
    let mut ro = analyst.tool_names().await;
    ro.sort();
    assert_eq!(
        ro,
        [
            "notes__notes_get",
            "notes__notes_search",
            "notes__tickets_list"
        ],
        "analyst: only low-risk tools are listed"
    );
    let mut sup = support.tool_names().await;
    sup.sort();
    assert_eq!(sup, ["notes__tickets_list", "notes__tickets_update"]);

    // Calls: the admin may write; the analyst may not, and the upstream
    // never sees the refused call.
    let r = admin
        .call_tool("notes__notes_create", json!({"title": "t", "body": "b"}))
        .await;
    assert!(r.result()["isError"] != true, "{}", r.response());
    let before = upstream_calls(&w, "notes_create");
    let r = analyst
        .call_tool("notes__notes_create", json!({"title": "t", "body": "b"}))
        .await;
    let data = assert_denied(&r, -32012, "analyst writes");
    assert_eq!(data["reason"], "default_deny");
    assert_eq!(upstream_calls(&w, "notes_create"), before);
    let r = analyst.call_tool("notes__tickets_list", json!({})).await;
    assert!(r.response().get("result").is_some(), "{}", r.response());

    // Support: tickets_update only with the allowed statuses and ids.
    let ok = support
        .call_tool(
            "notes__tickets_update",
            json!({"id": "T-102", "status": "closed"}),
        )
        .await;
    assert!(ok.response().get("result").is_some(), "{}", ok.response());
    for (args, why) in [
        (
            json!({"id": "T-102", "status": "open"}),
            "status outside one_of",
        ),
        (json!({"id": "X-9", "status": "closed"}), "id outside like"),
        (
            json!({"id": "T-102", "status": 3}),
            "status of the wrong type",
        ),
    ] {
        let r = support.call_tool("notes__tickets_update", args).await;
        assert_denied(&r, -32012, why);
    }
    let r = support
        .call_tool("notes__tickets_delete", json!({"id": "T-101"}))
        .await;
    assert_denied(&r, -32012, "support deletes");
}

#[tokio::test]
async fn seed003_engineering_reads_and_prod_delete_needs_an_approval() {
    let w = start();
    let mut eng = client(&w, "eve", &["--roles", "engineering"]).await;
    let r = eng
        .call_tool("notes__notes_search", json!({"query": "welcome"}))
        .await;
    assert!(r.response().get("result").is_some(), "{}", r.response());
    let r = eng
        .call_tool("notes__tickets_delete", json!({"id": "T-102"}))
        .await;
    let data = assert_denied(&r, -32013, "prod delete");
    assert_eq!(data["reason"], "approval_required");
    assert_eq!(data["requires"], json!(["change_ticket", "reason"]));
    assert_eq!(upstream_calls(&w, "tickets_delete"), 0);
}

#[tokio::test]
async fn a_missing_scope_is_a_403_step_up_challenge_naming_every_scope() {
    let w = start();
    let mut admin = client(&w, "ada", &["--roles", "admin"]).await;
    let body = json!({"jsonrpc":"2.0","id":7,"method":"tools/call",
        "params":{"name":"notes__tickets_create","arguments":{"title":"x","priority":"low","description":"d"}}})
    .to_string();
    let r = admin.post_raw(body).await;
    assert_eq!(r.status, 403, "{}", r.raw);
    let challenge = r
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert!(challenge.contains("tickets:write"), "{challenge}");
    assert_eq!(r.error_code(), -32014);
    assert_eq!(upstream_calls(&w, "tickets_create"), 0);
    let mut stepped_up = client(
        &w,
        "ada",
        &["--roles", "admin", "--scopes", "tickets:write"],
    )
    .await;
    let r = stepped_up
        .call_tool(
            "notes__tickets_create",
            json!({"title": "x", "priority": "low", "description": "d"}),
        )
        .await;
    assert!(r.response().get("result").is_some(), "{}", r.response());
}

#[tokio::test]
async fn after_reading_confidential_data_a_session_cannot_send_it_out() {
    let w = start();
    let mut admin = client(&w, "ada", &["--roles", "admin"]).await;
    // Before any confidential read, sending is allowed.
    let r = admin
        .call_tool("notes__notes_create", json!({"title": "a", "body": "b"}))
        .await;
    assert!(r.response().get("result").is_some(), "{}", r.response());
    let read = admin
        .request("resources/read", json!({"uri": "notes://n2"}))
        .await;
    assert!(
        read.response().get("result").is_some(),
        "{}",
        read.response()
    );
    let before = upstream_calls(&w, "notes_create");
    let r = admin
        .call_tool(
            "notes__notes_create",
            json!({"title": "leak", "body": "SSO postmortem"}),
        )
        .await;
    let data = assert_denied(&r, -32012, "send after confidential read");
    assert_eq!(data["reason"], "toxic_flow");
    assert_eq!(upstream_calls(&w, "notes_create"), before);
    // Another session of the same principal starts clean.
    let mut fresh = client(&w, "ada", &["--roles", "admin"]).await;
    let r = fresh
        .call_tool("notes__notes_create", json!({"title": "ok", "body": "b"}))
        .await;
    assert!(r.response().get("result").is_some(), "{}", r.response());
}

#[tokio::test]
async fn tenants_see_and_call_only_their_own_servers() {
    let w = start();
    let mut acme = client(&w, "al", &["--roles", "admin", "--tenant", "acme"]).await;
    let mut globex = client(&w, "gus", &["--roles", "admin", "--tenant", "globex"]).await;
    let acme_tools = acme.tool_names().await;
    assert!(
        acme_tools.iter().any(|t| t == "acme__notes_search"),
        "{acme_tools:?}"
    );
    let globex_tools = globex.tool_names().await;
    assert!(
        !globex_tools.iter().any(|t| t.starts_with("acme__")),
        "{globex_tools:?}"
    );
    assert!(globex_tools.iter().any(|t| t == "notes__notes_search"));
    let r = globex
        .call_tool("acme__notes_search", json!({"query": "welcome"}))
        .await;
    let data = assert_denied(&r, -32012, "cross-tenant call");
    assert_eq!(data["reason"], "cross_tenant");
    let r = globex
        .request("resources/read", json!({"uri": "notes://n1"}))
        .await;
    // notes:// belongs to both servers' lists; what globex reads comes from
    // the shared server, never acme's.
    assert!(r.response().get("result").is_some(), "{}", r.response());
}

#[tokio::test]
async fn annotations_raise_a_tier_and_never_lower_it() {
    let w = start();
    // tickets_delete has no configured tier; its destructiveHint makes it
    // high, above the analyst's max_risk: low, so it is neither listed nor
    // callable even though the analyst's grant names every tool.
    let mut analyst = client(&w, "ann", &["--roles", "analyst"]).await;
    assert!(!analyst
        .tool_names()
        .await
        .iter()
        .any(|t| t == "notes__tickets_delete"));
    let r = analyst
        .call_tool("notes__tickets_delete", json!({"id": "T-102"}))
        .await;
    assert_denied(&r, -32012, "analyst deletes");
    // tickets_list is configured low and annotated readOnly: still low.
    let r = analyst.call_tool("notes__tickets_list", json!({})).await;
    assert!(r.response().get("result").is_some(), "{}", r.response());
}

#[test]
fn policy_cli_explains_tests_and_shows() {
    let w = start();
    let out = w.cli(&[
        "policy",
        "explain",
        "{principal: {subject: ann, roles: [analyst]}, action: call_tool, server: notes, name: notes_search, arguments: {query: x}}",
    ]);
    assert!(out.contains("allow"), "{out}");
    let shown = w.cli(&["policy", "show"]);
    assert!(
        shown.contains("toxic-flow.confidential-then-external"),
        "{shown}"
    );
    assert!(shown.contains("prod-tickets-delete"), "{shown}");
    std::fs::write(
        w.dir().join("cases.yaml"),
        "cases:\n  - name: analyst cannot create\n    principal: {subject: ann, roles: [analyst]}\n    action: call_tool\n    server: notes\n    tool: notes_create\n    expect: deny\n  - name: analyst searches\n    principal: {subject: ann, roles: [analyst]}\n    action: call_tool\n    server: notes\n    tool: notes_search\n    expect: allow\n",
    )
    .unwrap();
    let cases = w.dir().join("cases.yaml");
    let report = w.cli(&["policy", "test", cases.to_str().unwrap()]);
    assert!(report.contains("2 passed, 0 failed"), "{report}");
}

/// Seed 000 through the official Python SDK (2.x): the analyst's SDK sees
/// only the read-only tools, and a write is refused with the policy's error.
#[test]
fn seed000_through_the_python_sdk() {
    let p = crate::peers::Peers::load();
    let w = start();
    let token = w.cli(&["token", "mint", "--sub", "ann", "--roles", "analyst"]);
    let out = std::process::Command::new(p.get("PY2"))
        .arg(p.driver("py_client.py"))
        .args([
            "--url",
            &w.url("/mcp"),
            "--header",
            &format!("Authorization=Bearer {token}"),
            "--list",
            "--call",
            "notes__notes_search",
            "--args",
            r#"{"query":"welcome"}"#,
            "--call",
            "notes__notes_create",
            "--args",
            r#"{"title":"t","body":"b"}"#,
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let mut tools: Vec<String> = v["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    tools.sort();
    assert_eq!(
        tools,
        [
            "notes__notes_get",
            "notes__notes_search",
            "notes__tickets_list"
        ],
        "{v}"
    );
    assert!(
        v["calls"][0]["text"]
            .as_str()
            .unwrap_or("")
            .contains("Welcome"),
        "the read works: {v}"
    );
    let errors = v["errors"].to_string();
    assert!(
        errors.contains("denied by policy") || errors.contains("-32012"),
        "the write is refused by policy: {v}"
    );
    assert_eq!(upstream_calls(&w, "notes_create"), 0);
}

/// Issue 15, item 16: a grant naming no configured server (`gti/*` for
/// `git`) passed `warden check`.
#[test]
fn check_refuses_a_grant_or_policy_naming_an_unknown_server() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("warden.yaml");
    let run = |yaml: &str| {
        std::fs::write(&cfg, yaml).unwrap();
        std::process::Command::new(WARDEN)
            .args(["check", "-c"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let base = "servers:\n  git:\n    command: 'true'\nregistry: {mode: tofu}\n";
    let typo = run(&format!(
        "{base}authorization:\n  roles:\n    dev:\n      grants:\n        - tools: [\"gti/*\"]\n"
    ));
    assert!(!typo.status.success());
    let err = String::from_utf8_lossy(&typo.stderr);
    assert!(
        err.contains("\"gti\"") && err.contains("not configured"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("p.cedar"),
        r#"@id("no-push") forbid (principal, action, resource in Warden::Server::"gti");"#,
    )
    .unwrap();
    let policy = run(&format!("{base}authorization:\n  policies: [p.cedar]\n"));
    assert!(!policy.status.success());
    let err = String::from_utf8_lossy(&policy.stderr);
    assert!(err.contains("\"gti\""), "{err}");
    let ok = run(&format!(
        "{base}authorization:\n  roles:\n    dev:\n      grants:\n        - tools: [\"git/*\"]\n"
    ));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}
