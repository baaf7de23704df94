//! The pipeline's stages alone and together, against a fixed snapshot and a
//! fake upstream (a short Python MCP server over stdio). The end-to-end
//! suites (`crates/cli/tests/it`) drive the real binary against real peers.

use std::sync::Arc;
use std::time::Duration;

use warden_identity::{Principal, PrincipalData};
use warden_protocol::message::parse_one;

use super::*;
use crate::session::{lock, Channel, ClientCaps};

/// A stdio MCP server: `echo`, `slow` (answers after 1.5 s) and `leak`
/// (answers with an AWS-style key), a prompt with completions, logging.
const FAKE_UPSTREAM: &str = r#"
import json, sys, time
KEY = "AKIA" + "Q3EGRZ5TWK7PLMNB"
TOOLS = [
  {"name": "echo", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
  {"name": "slow", "inputSchema": {"type": "object"}},
  {"name": "leak", "inputSchema": {"type": "object"}},
]
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m or "method" not in m:
        continue
    meth, p, r = m["method"], m.get("params") or {}, None
    if meth == "initialize":
        r = {"protocolVersion": p.get("protocolVersion"), "serverInfo": {"name": "fake", "version": "1"},
             "capabilities": {"tools": {}, "prompts": {}, "completions": {}, "logging": {}}}
    elif meth == "tools/list":
        r = {"tools": TOOLS}
    elif meth == "prompts/list":
        r = {"prompts": [{"name": "greet", "arguments": [{"name": "who"}]}]}
    elif meth == "completion/complete":
        r = {"completion": {"values": ["world"]}}
    elif meth == "logging/setLevel":
        r = {}
    elif meth == "tools/call":
        n = p.get("name")
        if n == "slow":
            time.sleep(1.5)
        text = KEY if n in ("slow", "leak") else (p.get("arguments") or {}).get("text", "")
        r = {"content": [{"type": "text", "text": "key " + text}]}
    if r is None:
        out = {"jsonrpc": "2.0", "id": m["id"], "error": {"code": -32601, "message": "no"}}
    else:
        out = {"jsonrpc": "2.0", "id": m["id"], "result": r}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
"#;

pub(crate) struct Fixture {
    pub gw: Arc<Gateway>,
    pub session: Arc<Session>,
    pub dir: tempfile::TempDir,
}

/// A configuration with one fake upstream `f` (tofu registry in a temp
/// dir), plus `extra` YAML sections.
pub(crate) fn config(dir: &std::path::Path, extra: &str) -> String {
    // Not in the configuration's directory itself: the sandbox never mounts
    // that (it holds Warden's own files), and mounts the script's directory.
    let script = dir.join("upstream/fake.py");
    std::fs::create_dir_all(dir.join("upstream")).unwrap();
    std::fs::write(&script, FAKE_UPSTREAM).unwrap();
    format!(
        "servers:\n  f:\n    command: python3\n    args: ['{}']\nregistry:\n  mode: tofu\n  lock: '{}'\n{extra}",
        script.display(),
        dir.join("warden.lock").display()
    )
}

pub(crate) fn snapshot(yaml: &str, dir: &std::path::Path) -> Snapshot {
    let cfg = warden_config::parse(yaml, dir).unwrap_or_else(|e| panic!("{e:?}"));
    Snapshot::compile(cfg).unwrap_or_else(|e| panic!("{e:?}"))
}

pub(crate) fn principal(scopes: &[&str], roles: &[&str]) -> Principal {
    Principal::new(PrincipalData {
        subject: "ada".into(),
        tenant: None,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        groups: Vec::new(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        client_id: None,
        agent_id: None,
        method: warden_identity::AuthMethod::Bearer,
    })
}

impl Fixture {
    /// A gateway over `yaml` (servers as given, no fake upstream) with one
    /// session of an anonymous caller.
    pub(crate) fn new(yaml: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let gw = Gateway::new(snapshot(yaml, dir.path()));
        let session = open(&gw, Principal::anonymous(), Channel::StreamableHttp);
        Fixture { gw, session, dir }
    }

    /// A gateway over the fake upstream and `extra`, with a session of
    /// `principal` on `channel`.
    pub(crate) fn with_fake(extra: &str, principal: Principal, channel: Channel) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let gw = Gateway::new(snapshot(&config(dir.path(), extra), dir.path()));
        let session = open(&gw, principal, channel);
        Fixture { gw, session, dir }
    }

    /// Stage 3 alone.
    pub(crate) async fn route(&self, text: &str) -> Result<Target, Refusal> {
        let msg = parse_one(text).unwrap();
        let mut ex = self.exchange(&msg);
        route::run(&self.gw, &mut ex).await?;
        Ok(ex.target)
    }

    pub(crate) fn exchange<'m>(&self, msg: &'m Message<'m>) -> Exchange<'m> {
        self.gw.exchange(
            &self.session,
            msg,
            &self.session.standalone(),
            Inbound::default(),
        )
    }

    /// Every stage; the facts the audit record would get, and the answer.
    pub(crate) async fn run(&self, text: &str) -> (crate::call::Facts, Handled) {
        let msg = parse_one(text).unwrap();
        let mut ex = self.exchange(&msg);
        let handled = self.gw.run_pipeline(&mut ex).await;
        (ex.call.take_facts(), handled)
    }
}

fn open(gw: &Arc<Gateway>, principal: Principal, channel: Channel) -> Arc<Session> {
    let caps = ClientCaps::declared(None);
    let session = Session::new(
        "s-test".into(),
        principal,
        String::new(),
        channel,
        warden_protocol::ProtocolVersion::LATEST_SESSION,
        caps,
        caps.upstream_json(),
        Sink::Broadcast(tokio::sync::broadcast::channel(16).0),
    );
    let caps = crate::session::SessionCaps {
        total: 16,
        per_owner: 16,
    };
    gw.sessions
        .insert(session.clone(), "test", caps)
        .expect("room for the session");
    session
}

fn request(method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":7,"method":"{method}","params":{params}}}"#)
}

fn error_code(h: &Handled) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(h.response.as_deref()?).ok()?;
    v["error"]["code"].as_i64()
}

const ROLES: &str = "authorization:\n  roles:\n    reader:\n      grants:\n        - tools: [\"f/echo\"]\n  scopes:\n    actions:\n      discover: [\"mcp:list\"]\n      call_tool: [\"mcp:call\"]\n";

#[test]
fn the_stages_are_in_the_designed_order() {
    let mut sorted = STAGES;
    sorted.sort();
    assert_eq!(sorted, STAGES);
    assert_eq!(STAGES.first(), Some(&Stage::Route));
    assert_eq!(STAGES.last(), Some(&Stage::Record));
    // Nothing skips routing or recording.
    for (method, skipped, why) in SKIPS {
        assert!(!skipped.contains(&Stage::Route), "{method}");
        assert!(!skipped.contains(&Stage::Record), "{method}");
        assert!(!why.is_empty(), "{method}");
    }
}

#[tokio::test]
async fn correlation_ids_of_later_requests_sort_after_earlier_ones() {
    // The audit stores index the correlation id: ids that sort in request
    // order keep that index growing at one end.
    let fx = Fixture::new("servers:\n  gh:\n    command: 'true'\n");
    let ids: Vec<String> = (0..300).map(|_| fx.gw.correlation_id()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(ids
        .iter()
        .all(|id| id.len() == 14 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    // Still unguessable beyond the counter: the random part differs.
    assert_ne!(ids[0][6..], ids[1][6..]);
}

#[tokio::test]
async fn completion_is_authorized_and_audited() {
    // Before the pipeline, completion/complete passed only a discovery
    // check: no scope check, no pin check, no audit facts.
    let fx = Fixture::with_fake(
        ROLES,
        principal(&["mcp:call"], &["reader"]),
        Channel::StreamableHttp,
    );
    let text = request(
        "completion/complete",
        r#"{"ref":{"type":"ref/prompt","name":"f__greet"},"argument":{"name":"who","value":"w"}}"#,
    );
    let (facts, handled) = fx.run(&text).await;
    assert_eq!(error_code(&handled), Some(-32014), "{:?}", handled.response);
    assert_eq!(facts.action, Some("complete"));
    assert_eq!(facts.server.as_deref(), Some("f"));
    assert_eq!(facts.item.as_deref(), Some("greet"));
    assert_eq!(facts.decision, Some(warden_audit::Decision::Deny));
    assert_eq!(facts.reason_code.as_deref(), Some("insufficient_scope"));

    // With the scope, the role (which grants no prompt) still may not.
    let fx = Fixture::with_fake(
        ROLES,
        principal(&["mcp:list"], &["reader"]),
        Channel::StreamableHttp,
    );
    let (facts, handled) = fx.run(&text).await;
    assert_eq!(error_code(&handled), Some(-32602), "{:?}", handled.response);
    assert_eq!(facts.decision, Some(warden_audit::Decision::Deny));

    // Without a policy it is served, pinned and recorded.
    let fx = Fixture::with_fake("", Principal::anonymous(), Channel::StreamableHttp);
    let (facts, handled) = fx.run(&text).await;
    assert!(
        handled.response.as_deref().unwrap().contains("world"),
        "{:?}",
        handled.response
    );
    assert_eq!(facts.action, Some("complete"));
    assert!(
        facts.manifest_hash.is_some(),
        "the prompt's pin was not checked"
    );
}

#[tokio::test]
async fn set_level_is_authorized_and_audited() {
    let text = request("logging/setLevel", r#"{"level":"debug"}"#);
    let fx = Fixture::with_fake(ROLES, principal(&[], &["reader"]), Channel::StreamableHttp);
    let (facts, handled) = fx.run(&text).await;
    assert_eq!(error_code(&handled), Some(-32014), "{:?}", handled.response);
    assert_eq!(facts.action, Some("set_log_level"));
    assert_eq!(facts.decision, Some(warden_audit::Decision::Deny));
    assert!(
        lock(&fx.session.log_level).is_none(),
        "a refused level was kept"
    );

    let fx = Fixture::with_fake(
        ROLES,
        principal(&["mcp:list"], &["reader"]),
        Channel::StreamableHttp,
    );
    let (facts, handled) = fx.run(&text).await;
    assert_eq!(error_code(&handled), None, "{:?}", handled.response);
    assert_eq!(facts.action, Some("set_log_level"));
    assert_eq!(lock(&fx.session.log_level).as_deref(), Some("debug"));
}

#[tokio::test]
async fn discovery_scopes_are_enforced_on_every_list() {
    // `scopes.actions.discover` was validated at load and never enforced:
    // a token without it listed every tool it may call.
    for channel in [Channel::StreamableHttp, Channel::Modern] {
        for method in [
            "tools/list",
            "prompts/list",
            "resources/list",
            "resources/templates/list",
        ] {
            let fx = Fixture::with_fake(ROLES, principal(&["mcp:call"], &["reader"]), channel);
            let (facts, handled) = fx.run(&request(method, "{}")).await;
            assert_eq!(error_code(&handled), Some(-32014), "{method} {channel:?}");
            assert_eq!(
                handled.insufficient_scope(),
                Some(&["mcp:list".to_owned()][..])
            );
            assert_eq!(facts.reason_code.as_deref(), Some("insufficient_scope"));
            assert_eq!(
                fx.gw.upstream_count(),
                0,
                "an upstream was asked for {method}"
            );
        }
        let fx = Fixture::with_fake(ROLES, principal(&["mcp:list"], &["reader"]), channel);
        let (_, handled) = fx.run(&request("tools/list", "{}")).await;
        let body = handled.response.unwrap();
        assert!(body.contains("f__echo"), "{body}");
        assert!(
            !body.contains("f__leak"),
            "a tool the role may not see: {body}"
        );
    }
}

#[tokio::test]
async fn a_reload_mid_call_does_not_mix_configurations() {
    // The output guard of the snapshot the call entered with (secrets
    // redacted) judges its result, not the one a reload swaps in while
    // the upstream works (output guards off).
    let fx = Fixture::with_fake("", Principal::anonymous(), Channel::StreamableHttp);
    let (_, warm) = fx.run(&request("tools/list", "{}")).await;
    assert!(warm.response.unwrap().contains("f__slow"));
    let call = request("tools/call", r#"{"name":"f__slow","arguments":{}}"#);
    let gw = fx.gw.clone();
    let next = snapshot(
        &config(
            fx.dir.path(),
            "guards:\n  output:\n    secrets:\n      action: log\n",
        ),
        fx.dir.path(),
    );
    let reload = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        gw.reload(next).unwrap();
    });
    let (_, handled) = fx.run(&call).await;
    reload.await.unwrap();
    let body = handled.response.unwrap();
    assert!(
        !body.contains("Q3EGRZ5TWK7"),
        "guarded under the new snapshot: {body}"
    );
    // The new configuration does apply to the next call.
    let (_, after) = fx
        .run(&request(
            "tools/call",
            r#"{"name":"f__leak","arguments":{}}"#,
        ))
        .await;
    assert!(after.response.unwrap().contains("Q3EGRZ5TWK7"));
}

#[tokio::test]
async fn schema_failures_are_tool_results_and_reach_no_upstream() {
    let fx = Fixture::with_fake("", Principal::anonymous(), Channel::StreamableHttp);
    let (facts, handled) = fx
        .run(&request(
            "tools/call",
            r#"{"name":"f__echo","arguments":{"text":42}}"#,
        ))
        .await;
    let v: serde_json::Value = serde_json::from_str(handled.response.as_deref().unwrap()).unwrap();
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert_eq!(facts.decision, Some(warden_audit::Decision::Deny));
    assert!(matches!(
        handled.refusal,
        Some(Refusal::ArgumentsInvalid { .. })
    ));
}

#[tokio::test]
async fn a_refusal_at_any_stage_is_noted_for_the_record() {
    let fx = Fixture::with_fake(
        ROLES,
        principal(&["mcp:call", "mcp:list"], &["reader"]),
        Channel::StreamableHttp,
    );
    let (facts, handled) = fx
        .run(&request(
            "tools/call",
            r#"{"name":"f__leak","arguments":{}}"#,
        ))
        .await;
    assert_eq!(error_code(&handled), Some(-32012), "{:?}", handled.response);
    assert_eq!(facts.decision, Some(warden_audit::Decision::Deny));
    assert!(facts.reason_code.is_some());
    assert!(!facts.policy_ids.is_empty() || facts.reason_code.as_deref() == Some("default_deny"));
}

#[tokio::test]
async fn the_limits_stage_refuses_with_a_typed_refusal_and_audits_the_rule() {
    let limits = "limits:\n  rate: [{id: two, per: [principal], rate: 1/min, burst: 2}]\n  concurrency: []\n  loops: {enabled: false}\n";
    let fx = Fixture::with_fake(limits, Principal::anonymous(), Channel::StreamableHttp);
    let call = request(
        "tools/call",
        r#"{"name":"f__echo","arguments":{"text":"a"}}"#,
    );
    let (_, ok) = fx.run(&call).await;
    assert_eq!(error_code(&ok), None, "{:?}", ok.response);
    // Refused by the input guard (schema), after the limits stage: it
    // spent the second token.
    let bad = request("tools/call", r#"{"name":"f__echo","arguments":{}}"#);
    let (_, refused_later) = fx.run(&bad).await;
    assert!(
        refused_later.refusal.is_some(),
        "{:?}",
        refused_later.response
    );
    let (facts, limited) = fx.run(&call).await;
    assert_eq!(error_code(&limited), Some(-32030), "{:?}", limited.response);
    assert!(matches!(
        limited.refusal,
        Some(Refusal::Limited(warden_limits::Denial::Rate { .. }))
    ));
    assert_eq!(facts.reason_code.as_deref(), Some("limits.rate"));
    assert_eq!(facts.decision, Some(warden_audit::Decision::Deny));
    assert!(
        facts.policy_ids.iter().any(|p| p == "limits:two"),
        "{:?}",
        facts.policy_ids
    );
    // Lists are not limited by the per-call rules.
    let (_, list) = fx.run(&request("tools/list", "{}")).await;
    assert_eq!(error_code(&list), None, "{:?}", list.response);
}

/// Stage 9 alone, for a `tools/call` routed to server `h`'s `lookup`.
async fn credentials_for(
    yaml: &str,
    who: Principal,
) -> (
    Result<(), Refusal>,
    Vec<(String, String)>,
    crate::call::Facts,
) {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::new(snapshot(yaml, dir.path()));
    let session = open(&gw, who, Channel::StreamableHttp);
    let text = request("tools/call", r#"{"name":"h__lookup","arguments":{"q":1}}"#);
    let msg = parse_one(&text).unwrap();
    let mut ex = gw.exchange(&session, &msg, &session.standalone(), Inbound::default());
    ex.target = Target::Item {
        kind: warden_protocol::method::NameKind::Tool,
        server: "h".into(),
        upstream_name: "lookup".into(),
        exposed: "h__lookup".into(),
    };
    ex.call.note(|f| f.input_hash = Some("sha256:feed".into()));
    let r = credentials::run(&gw, &mut ex).await;
    (r, ex.credential_headers.clone(), ex.call.take_facts())
}

fn tenant_principal(subject: &str, tenant: &str) -> Principal {
    Principal::new(PrincipalData {
        subject: subject.into(),
        tenant: Some(tenant.into()),
        roles: Vec::new(),
        groups: Vec::new(),
        scopes: Vec::new(),
        client_id: Some("cursor".into()),
        agent_id: None,
        method: warden_identity::AuthMethod::Bearer,
    })
}

#[tokio::test]
async fn the_credentials_stage_mints_a_token_bound_to_the_call() {
    let yaml = "credentials: {issuer: 'https://warden.test'}\nservers:\n  h:\n    url: http://127.0.0.1:9/mcp\n    credentials: {mode: mint}\n";
    let (r, headers, facts) = credentials_for(yaml, tenant_principal("ada", "acme")).await;
    assert!(r.is_ok(), "{r:?}");
    let [(name, value)] = headers.as_slice() else {
        panic!("{headers:?}")
    };
    assert_eq!(name, "authorization");
    let token = value.strip_prefix("Bearer ").expect("a bearer token");
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "http://127.0.0.1:9/mcp");
    assert_eq!(claims["sub"], "acme/ada");
    assert_eq!(claims["act"]["client_id"], "cursor");
    assert_eq!(claims["mcp_call"]["name"], "lookup");
    assert_eq!(claims["mcp_call"]["arguments_hash"], "sha256:feed");
    let cred = facts.upstream_credential.expect("noted for the record");
    assert_eq!(cred.mode, "mint");
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(
        cred.token_id_hash.as_deref(),
        Some(warden_audit::TokenFacts::hash_jti(jti).as_str())
    );
}

#[tokio::test]
async fn the_credentials_stage_never_hands_one_tenants_secret_to_another() {
    let yaml = "servers:\n  h:\n    url: http://127.0.0.1:9/mcp\n    credentials:\n      tenants:\n        acme: {X-Tenant-Id: 'literal:acme-key'}\n      principals:\n        'globex/bob': {X-Tenant-Id: 'literal:bob-key'}\n";
    let (r, headers, _) = credentials_for(yaml, tenant_principal("ada", "acme")).await;
    assert!(r.is_ok());
    assert_eq!(
        headers,
        vec![("X-Tenant-Id".to_owned(), "acme-key".to_owned())]
    );
    let (_, headers, _) = credentials_for(yaml, tenant_principal("bob", "globex")).await;
    assert_eq!(
        headers,
        vec![("X-Tenant-Id".to_owned(), "bob-key".to_owned())]
    );
    let (r, headers, _) = credentials_for(yaml, tenant_principal("eve", "globex")).await;
    assert!(
        matches!(r, Err(Refusal::NoUpstreamCredential { .. })),
        "{r:?}"
    );
    assert!(headers.is_empty());
}
