use std::path::Path;
use std::time::SystemTime;

use serde_json::value::RawValue;
use warden_identity::{AuthMethod, Principal, PrincipalData};

use super::*;
use crate::request::{ApprovalState, RequestContext};
use crate::settings::RawAuthorization;

const CATALOG: &str = r#"
servers:
  - name: gh
    tools:
      - { name: search, risk: low }
      - { name: comment, risk: medium }
      - { name: delete_repo, risk: critical }
      - { name: "admin_*", risk: high, data_class: restricted }
    resources:
      - { uri: "gh://secrets/*", data_class: confidential }
  - name: mail
    data_class: internal
    tools:
      - { name: send, risk: high, labels: [external_send] }
  - name: acme
    tenants: [acme]
"#;

/// An engine from an `authorization:` body, the catalog above, and Cedar
/// files written to a temporary directory.
fn engine_with(yaml: &str, files: &[(&str, &str)]) -> PolicyEngine {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let raw: RawAuthorization = serde_saphyr::from_str(yaml).expect("yaml");
    let settings = raw.resolve(dir.path()).expect("resolves");
    let catalog: Catalog = serde_saphyr::from_str(CATALOG).expect("catalog");
    PolicyEngine::compile(&settings, &catalog).expect("compiles")
}

fn engine(yaml: &str) -> PolicyEngine {
    engine_with(yaml, &[])
}

fn principal(roles: &[&str]) -> Principal {
    Principal::new(PrincipalData {
        subject: "alice".into(),
        tenant: None,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        groups: Vec::new(),
        scopes: Vec::new(),
        client_id: None,
        agent_id: None,
        method: AuthMethod::Bearer,
    })
}

fn at(rfc3339: &str) -> SystemTime {
    rfc3339.parse::<jiff::Timestamp>().expect("time").into()
}

fn noon() -> SystemTime {
    at("2026-01-05T12:00:00Z")
}

fn call<'a>(p: &'a Principal, server: &'a str, tool: &'a str) -> Request<'a> {
    Request {
        principal: p,
        action: Action::CallTool,
        server,
        resource: tool,
        arguments: None,
        annotations: None,
        context: RequestContext::at(noon()),
    }
}

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).expect("json")
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

const ADMIN: &str =
    "roles: { admin: { grants: [{ tools: [\"*\"], resources: [\"*\"], prompts: [\"*\"] }] } }";

// ----- default deny, forbid wins -------------------------------------------

/// Would pass only if the engine allowed without a permit.
#[test]
fn default_deny_without_any_policy() {
    let e = engine("{}");
    let p = principal(&["admin"]);
    assert_eq!(
        e.decide(&call(&p, "gh", "search")),
        Decision::Deny {
            policies: vec![],
            reason: ReasonCode::DefaultDeny
        }
    );
    let mut list = call(&p, "gh", "search");
    list.action = Action::Discover(ItemKind::Tool);
    assert!(!e.decide(&list).is_allow());
}

#[test]
fn default_deny_when_no_permit_matches() {
    let e = engine(ADMIN);
    let other = principal(&["guest"]);
    assert_eq!(
        e.decide(&call(&other, "gh", "search")),
        Decision::Deny {
            policies: vec![],
            reason: ReasonCode::DefaultDeny
        }
    );
    let admin = principal(&["admin"]);
    assert_eq!(
        e.decide(&call(&admin, "gh", "search")),
        Decision::Allow {
            policies: ids(&["role.admin.grants[0].tools.any.use"])
        }
    );
}

/// A permit that applies and a forbid that applies: the forbid decides. Would
/// fail if permits were consulted first or alone.
#[test]
fn forbid_wins_over_every_permit() {
    let e = engine_with(
        &format!("{ADMIN}\npolicies: [deny.cedar, allow.cedar]"),
        &[
            (
                "deny.cedar",
                "@id(\"no-deletes\")\n@reason(\"destructive\")\nforbid (principal, action == Warden::Action::\"call_tool\", resource)\nwhen { resource.name like \"delete_*\" };\n",
            ),
            (
                "allow.cedar",
                "@id(\"also-allow\")\npermit (principal in Warden::Role::\"admin\", action, resource);\n",
            ),
        ],
    );
    let p = principal(&["admin"]);
    let mut req = call(&p, "gh", "delete_repo");
    req.context.approval.granted = true;
    assert_eq!(
        e.decide(&req),
        Decision::Deny {
            policies: ids(&["no-deletes"]),
            reason: ReasonCode::Policy("destructive".into())
        }
    );
    // Both permits held; the explanation says so.
    let x = e.explain(&req);
    let satisfied: Vec<&str> = x.satisfied().map(|t| t.id.as_str()).collect();
    assert_eq!(
        satisfied,
        [
            "role.admin.grants[0].tools.any.use",
            "no-deletes",
            "also-allow"
        ]
    );
    // Elsewhere the permits decide.
    assert_eq!(
        e.decide(&call(&p, "gh", "search")),
        Decision::Allow {
            policies: ids(&["role.admin.grants[0].tools.any.use", "also-allow"])
        }
    );
}

/// Cedar skips a policy whose evaluation fails; for a forbid that would
/// fail open. Here the forbid overflows at run time: the call is denied.
#[test]
fn a_forbid_that_errors_counts_as_applying() {
    let e = engine_with(
        &format!("{ADMIN}\narguments: {{ n: long }}\npolicies: [overflow.cedar]"),
        &[(
            "overflow.cedar",
            "@id(\"overflowing\")\nforbid (principal, action, resource)\nwhen { context.arguments has n && context.arguments.n + 9223372036854775807 < 0 };\n",
        )],
    );
    let p = principal(&["admin"]);
    let args = raw(r#"{"n": 5}"#);
    let mut req = call(&p, "gh", "search");
    req.arguments = Some(&args);
    assert_eq!(
        e.decide(&req),
        Decision::Deny {
            policies: ids(&["overflowing"]),
            reason: ReasonCode::PolicyError
        }
    );
    let x = e.explain(&req);
    assert!(x
        .policies
        .iter()
        .any(|t| t.id == "overflowing" && matches!(t.outcome, Outcome::Error(_))));
    let args = raw(r#"{"n": -5}"#);
    req.arguments = Some(&args);
    assert!(e.decide(&req).is_allow());
}

#[test]
fn unknown_servers_are_denied() {
    let e = engine(ADMIN);
    let p = principal(&["admin"]);
    assert_eq!(
        e.decide(&call(&p, "nope", "search")),
        Decision::Deny {
            policies: vec![],
            reason: ReasonCode::UnknownServer
        }
    );
}

// ----- tenancy -------------------------------------------------------------

#[test]
fn tenancy_cannot_be_overridden_by_a_permit() {
    let e = engine_with(
        &format!("{ADMIN}\npolicies: [all.cedar]"),
        &[(
            "all.cedar",
            "@id(\"everything-for-everyone\")\npermit (principal, action, resource);\n",
        )],
    );
    let mut data = principal(&["admin"]).data().clone();
    data.tenant = Some("globex".into());
    let globex = Principal::new(data.clone());
    data.tenant = Some("acme".into());
    let acme = Principal::new(data);
    let mut sample = call(&globex, "acme", "");
    sample.action = Action::Sample;
    assert_eq!(
        e.decide(&sample),
        Decision::Deny {
            policies: ids(&["warden.tenancy"]),
            reason: ReasonCode::CrossTenant
        }
    );
    assert_eq!(
        e.decide(&call(&globex, "acme", "anything")).reason(),
        "cross_tenant"
    );
    assert!(e.decide(&call(&acme, "acme", "anything")).is_allow());
    // Unscoped servers serve every tenant.
    assert!(e.decide(&call(&globex, "gh", "search")).is_allow());
}

// ----- risk tiers ----------------------------------------------------------

#[test]
fn annotations_raise_never_lower() {
    let r = |s: &str| annotation_floor(Some(&raw(s)));
    assert_eq!(annotation_floor(None), RiskTier::Low);
    assert_eq!(r("{}"), RiskTier::Low);
    assert_eq!(r("null"), RiskTier::Low);
    assert_eq!(r(r#"{"readOnlyHint": true}"#), RiskTier::Low);
    assert_eq!(r(r#"{"openWorldHint": true}"#), RiskTier::Medium);
    assert_eq!(r(r#"{"destructiveHint": true}"#), RiskTier::High);
    assert_eq!(r(r#"{"destructiveHint": "yes"}"#), RiskTier::High);
    assert_eq!(r("[]"), RiskTier::High);

    let e = engine("roles: { reader: { grants: [{ tools: [\"*\"], max_risk: low }] } }");
    let p = principal(&["reader"]);
    let mut req = call(&p, "gh", "search");
    assert!(e.decide(&req).is_allow());
    let destructive = raw(r#"{"destructiveHint": true}"#);
    req.annotations = Some(&destructive);
    assert!(!e.decide(&req).is_allow());
    assert_eq!(
        e.risk_tier("gh", ItemKind::Tool, "search", Some(&destructive)),
        Some(RiskTier::High)
    );
    // A critical tool stays critical whatever the upstream claims.
    let harmless =
        raw(r#"{"readOnlyHint": true, "destructiveHint": false, "openWorldHint": false}"#);
    assert_eq!(
        e.risk_tier("gh", ItemKind::Tool, "delete_repo", Some(&harmless)),
        Some(RiskTier::Critical)
    );
    // Unknown tools take the default tier (medium), out of a low grant.
    assert!(!e.decide(&call(&p, "gh", "unlisted")).is_allow());
    assert_eq!(
        e.risk_tier("gh", ItemKind::Tool, "admin_x", None),
        Some(RiskTier::High)
    );
}

/// Entities built for items the catalog does not name exactly are kept
/// for later requests: only at the configured tier, never one raised by a
/// request's annotations.
#[test]
fn entities_kept_for_unlisted_items_carry_no_request_facts() {
    let e = engine("roles: { dev: { grants: [{ tools: [\"*\"], max_risk: medium }] } }");
    let p = principal(&["dev"]);
    let destructive = raw(r#"{"destructiveHint": true}"#);
    // Unlisted (default tier, medium) and glob-matched (`admin_*`, high).
    for _ in 0..2 {
        let mut req = call(&p, "gh", "unlisted");
        assert!(e.decide(&req).is_allow());
        req.annotations = Some(&destructive);
        assert!(!e.decide(&req).is_allow(), "raised to high by the request");
        assert!(!e.decide(&call(&p, "gh", "admin_x")).is_allow());
    }
    let learned = |name: &str| e.servers["gh"].learned(ItemKind::Tool, name).is_some();
    assert!(learned("unlisted") && learned("admin_x"));
}

// ----- approvals -----------------------------------------------------------

#[test]
fn server_requests_can_be_held_for_approval() {
    let e = engine(
        "roles: { admin: { grants: [{ tools: [\"*\"], sampling: [\"*\"], elicitation: [\"*\"] }] } }\n\
         approvals:\n  - { id: sampling-ok, sampling: [gh], approvers: [security] }",
    );
    let p = principal(&["admin"]);
    let mut sample = call(&p, "gh", "");
    sample.action = Action::Sample;
    let Decision::RequiresApproval {
        policies,
        approvers,
        ..
    } = e.decide(&sample)
    else {
        panic!("sampling from gh is held: {:?}", e.decide(&sample));
    };
    assert_eq!(policies, ids(&["approval.sampling-ok.sampling"]));
    assert!(!approvers[0].caller);
    // Another server's sampling, gh's elicitation and gh's tools are not held.
    let mut other = call(&p, "mail", "");
    other.action = Action::Sample;
    assert!(e.decide(&other).is_allow());
    let mut elicit = call(&p, "gh", "");
    elicit.action = Action::Elicit;
    assert!(e.decide(&elicit).is_allow());
    assert!(e.decide(&call(&p, "gh", "delete_repo")).is_allow());
}

#[test]
fn four_eyes_approvers_come_with_the_decision_and_exclude_the_caller() {
    let e = engine(&format!(
        "{ADMIN}\napprovals:\n  - {{ id: prod, risk: [critical], approvers: [security] }}\n  - {{ id: self, tools: [gh/delete_repo] }}"
    ));
    let p = principal(&["admin"]);
    let req = call(&p, "gh", "delete_repo");
    let Decision::RequiresApproval { approvers, .. } = e.decide(&req) else {
        panic!("held expected");
    };
    assert_eq!(approvers.len(), 2, "{approvers:?}");
    let four_eyes = approvers
        .iter()
        .find(|a| !a.caller)
        .expect("a four-eyes rule");
    assert_eq!(four_eyes.roles, vec!["security".to_owned()]);
    let sec = ["security".to_owned()];
    // The caller may not approve their own call, even holding the role.
    assert!(!four_eyes.admits("alice", "alice", &sec));
    assert!(four_eyes.admits("alice", "bob", &sec));
    assert!(!four_eyes.admits("alice", "bob", &["admin".to_owned()]));
    // The default: the caller only.
    let own = approvers.iter().find(|a| a.caller).expect("a caller rule");
    assert!(own.admits("alice", "alice", &[]));
    assert!(!own.admits("alice", "bob", &sec));
}

#[test]
fn critical_tiers_require_approval_when_configured() {
    let e = engine(&format!(
        "{ADMIN}\napprovals: [{{ id: critical, risk: [critical], requires: [reason] }}]"
    ));
    let p = principal(&["admin"]);
    let mut req = call(&p, "gh", "delete_repo");
    assert_eq!(
        e.decide(&req),
        Decision::RequiresApproval {
            policies: ids(&["approval.critical"]),
            reason: ReasonCode::ApprovalRequired,
            requires: vec![ApprovalFact::Reason],
            approvers: vec![Approvers::default()],
        }
    );
    req.context.approval = ApprovalState {
        granted: true,
        approver: Some("bob"),
        change_ticket: None,
        reason: Some("  "),
    };
    assert!(matches!(e.decide(&req), Decision::RequiresApproval { .. }));
    req.context.approval.reason = Some("cleanup");
    assert_eq!(
        e.decide(&req),
        Decision::Allow {
            policies: ids(&["role.admin.grants[0].tools.any.use", "approval.critical"])
        }
    );
    // Only critical tools are held; discovery never is.
    assert!(e.decide(&call(&p, "gh", "comment")).is_allow());
    let mut list = call(&p, "gh", "delete_repo");
    list.action = Action::Discover(ItemKind::Tool);
    assert!(e.decide(&list).is_allow());
    // An approval never turns a deny into an allow.
    let guest = principal(&["guest"]);
    let mut req = call(&guest, "gh", "delete_repo");
    req.context.approval.granted = true;
    assert_eq!(e.decide(&req).reason(), "default_deny");
}

#[test]
fn without_approval_rules_critical_is_just_a_tier() {
    let e = engine(ADMIN);
    let p = principal(&["admin"]);
    assert!(e.decide(&call(&p, "gh", "delete_repo")).is_allow());
}

// ----- context ---------------------------------------------------------------

#[test]
fn time_in_the_configured_zone() {
    let e = engine_with(
        &format!("{ADMIN}\ntime_zone: Europe/Berlin\npolicies: [hours.cedar]"),
        &[(
            "hours.cedar",
            "@id(\"office-hours\")\n@reason(\"outside_office_hours\")\nforbid (principal, action == Warden::Action::\"call_tool\", resource)\nunless { context.time.hour >= 8 && context.time.hour < 18 && context.time.weekday_number <= 5 };\n",
        )],
    );
    let p = principal(&["admin"]);
    let mut req = call(&p, "gh", "search");
    // 07:30 UTC in January is 08:30 in Berlin, a Monday.
    req.context.now = at("2026-01-05T07:30:00Z");
    assert!(e.decide(&req).is_allow());
    req.context.now = at("2026-01-05T06:30:00Z");
    assert_eq!(e.decide(&req).reason(), "outside_office_hours");
    // Saturday noon.
    req.context.now = at("2026-01-10T12:00:00Z");
    assert_eq!(e.decide(&req).reason(), "outside_office_hours");
}

#[test]
fn client_address_and_environment() {
    let e = engine_with(
        &format!("{ADMIN}\npolicies: [net.cedar]"),
        &[(
            "net.cedar",
            "@id(\"internal-only\")\nforbid (principal, action, resource)\nunless { context has client_address && context.client_address.isInRange(ip(\"10.0.0.0/8\")) };\n\
             @id(\"no-prod-comments\")\nforbid (principal, action, resource)\nwhen { resource.name == \"comment\" && context has environment && context.environment == \"prod\" };\n",
        )],
    );
    let p = principal(&["admin"]);
    let mut req = call(&p, "gh", "comment");
    assert_eq!(e.decide(&req).policies(), ["internal-only"]);
    req.context.client_address = Some("10.1.2.3".parse().expect("ip"));
    assert!(e.decide(&req).is_allow());
    req.context.environment = Some("prod");
    assert_eq!(e.decide(&req).policies(), ["no-prod-comments"]);
    req.context.client_address = Some("192.168.1.1".parse().expect("ip"));
    assert_eq!(
        e.decide(&req).policies(),
        ["internal-only", "no-prod-comments"]
    );
}

#[test]
fn a_servers_environment_wins_over_the_deployments() {
    let catalog: Catalog =
        serde_saphyr::from_str("servers: [{ name: prod-gh, environment: prod }, { name: gh }]")
            .expect("catalog");
    let raw: RawAuthorization = serde_saphyr::from_str(
        "roles: { dev: { grants: [{ tools: [\"*\"], environments: [dev] }] } }",
    )
    .expect("yaml");
    let e = PolicyEngine::compile(&raw.resolve(Path::new(".")).expect("ok"), &catalog).expect("ok");
    let p = principal(&["dev"]);
    let mut req = call(&p, "gh", "x");
    req.context.environment = Some("dev");
    assert!(e.decide(&req).is_allow());
    req.server = "prod-gh";
    assert!(!e.decide(&req).is_allow());
}

#[test]
fn principals_agents_and_clients() {
    let e = engine_with(
        &format!("{ADMIN}\npolicies: [kinds.cedar]"),
        &[(
            "kinds.cedar",
            "@id(\"agents-never-comment\")\nforbid (principal is Warden::Agent, action, resource)\nwhen { resource.name == \"comment\" };\n\
             @id(\"one-client\")\nforbid (principal is Warden::Client, action, resource)\nunless { principal has client_id && principal.client_id == \"ci\" };\n\
             @id(\"keys\")\nforbid (principal, action, resource)\nwhen { principal.key == \"evil:alice\" };\n",
        )],
    );
    let mut d = principal(&["admin"]).data().clone();
    assert!(e
        .decide(&call(&Principal::new(d.clone()), "gh", "comment"))
        .is_allow());
    d.agent_id = Some("helper".into());
    let agent = Principal::new(d.clone());
    assert_eq!(
        e.decide(&call(&agent, "gh", "comment")).policies(),
        ["agents-never-comment"]
    );
    d.agent_id = None;
    d.method = AuthMethod::ApiKey;
    assert_eq!(
        e.decide(&call(&Principal::new(d.clone()), "gh", "search"))
            .policies(),
        ["one-client"]
    );
    d.client_id = Some("ci".into());
    assert!(e
        .decide(&call(&Principal::new(d.clone()), "gh", "search"))
        .is_allow());
    // The same subject from another issuer is another principal.
    d.method = AuthMethod::Bearer;
    let cred = warden_identity::CredentialInfo {
        issuer: "https://evil".into(),
        token_id: None,
        expires_at: None,
        key_thumbprint: None,
    };
    let evil = Principal::authenticated(d.clone(), "evil", cred.clone());
    let corp = Principal::authenticated(d, "corp", cred);
    assert_eq!(e.decide(&call(&evil, "gh", "search")).policies(), ["keys"]);
    assert!(e.decide(&call(&corp, "gh", "search")).is_allow());
    let x = e.explain(&call(&corp, "gh", "search"));
    assert_eq!(
        x.facts.as_ref().map(|f| f.principal.as_str()),
        Some("Warden::User::\"corp:alice\"")
    );
}

/// A kept entity store is reused only for structurally equal entities:
/// one subject presenting other roles or claims, alternating on one
/// engine, is decided on its own facts every time. Would fail if stores
/// were kept by uid alone.
#[test]
fn kept_entity_stores_never_carry_another_tokens_facts() {
    let e = engine_with(
        &format!("{ADMIN}\npolicies: [ci.cedar]"),
        &[(
            "ci.cedar",
            "@id(\"ci-only\")\nforbid (principal, action, resource)\nunless { principal has client_id && principal.client_id == \"ci\" };\n",
        )],
    );
    let admin = principal(&["admin"]);
    let mut d = admin.data().clone();
    d.client_id = Some("ci".into());
    let admin_ci = Principal::new(d.clone());
    d.roles = vec!["guest".into()];
    let guest_ci = Principal::new(d);
    for _ in 0..3 {
        assert!(e.decide(&call(&admin_ci, "gh", "search")).is_allow());
        assert_eq!(
            e.decide(&call(&admin, "gh", "search")).policies(),
            ["ci-only"]
        );
        assert_eq!(
            e.decide(&call(&guest_ci, "gh", "search")),
            Decision::Deny {
                policies: vec![],
                reason: ReasonCode::DefaultDeny
            }
        );
    }
}

#[test]
fn groups_grant_roles() {
    let e = engine(
        "roles: { eng: { members: { groups: [engineering] }, grants: [{ tools: [gh/search] }] } }",
    );
    let mut d = principal(&[]).data().clone();
    assert!(!e
        .decide(&call(&Principal::new(d.clone()), "gh", "search"))
        .is_allow());
    d.groups = vec!["engineering".into()];
    assert!(e
        .decide(&call(&Principal::new(d.clone()), "gh", "search"))
        .is_allow());
    assert!(!e
        .decide(&call(&Principal::new(d), "gh", "comment"))
        .is_allow());
    // The role claim itself also counts.
    assert!(e
        .decide(&call(&principal(&["eng"]), "gh", "search"))
        .is_allow());
}

#[test]
fn resources_prompts_sampling_and_elicitation() {
    let e = engine(
        "roles: { r: { grants: [{ resources: [\"gh/gh://docs/*\"], prompts: [gh/summarise], sampling: [gh], elicitation: [\"m*\"] }] } }",
    );
    let p = principal(&["r"]);
    let mut req = call(&p, "gh", "gh://docs/readme");
    req.action = Action::ReadResource;
    assert!(e.decide(&req).is_allow());
    req.action = Action::Subscribe;
    assert!(e.decide(&req).is_allow());
    req.action = Action::Discover(ItemKind::Resource);
    assert!(e.decide(&req).is_allow());
    req.resource = "gh://secrets/key";
    assert!(!e.decide(&req).is_allow());
    req.resource = "summarise";
    req.action = Action::GetPrompt;
    assert!(e.decide(&req).is_allow());
    req.action = Action::CallTool;
    assert!(!e.decide(&req).is_allow());
    req.action = Action::Sample;
    assert!(e.decide(&req).is_allow());
    req.server = "mail";
    assert!(!e.decide(&req).is_allow());
    req.action = Action::Elicit;
    assert!(e.decide(&req).is_allow());
    req.server = "gh";
    assert!(!e.decide(&req).is_allow());
}

// ----- arguments ---------------------------------------------------------------

#[test]
fn argument_constraints_compile_into_the_use_policy_only() {
    let e = engine(
        "roles: { d: { grants: [{ tools: [gh/comment], arguments: { repo: { one_of: [acme/web] }, body: { like: [\"LGTM*\", \"+1\"], optional: true } } }] } }",
    );
    let p = principal(&["d"]);
    let mut req = call(&p, "gh", "comment");
    assert!(!e.decide(&req).is_allow(), "absent repo");
    let ok = raw(r#"{"repo":"acme/web"}"#);
    req.arguments = Some(&ok);
    assert!(e.decide(&req).is_allow());
    let ok = raw(r#"{"repo":"acme/web","body":"LGTM, ship it"}"#);
    req.arguments = Some(&ok);
    assert!(e.decide(&req).is_allow());
    let bad = raw(r#"{"repo":"acme/web","body":"rm -rf"}"#);
    req.arguments = Some(&bad);
    assert!(!e.decide(&req).is_allow());
    let wrong = raw(r#"{"repo":"acme/web","body":7}"#);
    req.arguments = Some(&wrong);
    assert_eq!(e.decide(&req).reason(), "invalid_arguments");
    let x = e.explain(&req);
    assert_eq!(
        x.detail.as_deref(),
        Some("arguments.body: expected a string")
    );
    // Discovery carries no arguments and ignores the constraints.
    req.arguments = None;
    req.action = Action::Discover(ItemKind::Tool);
    assert!(e.decide(&req).is_allow());
}

#[test]
fn undeclared_arguments_are_invisible_and_cannot_be_named() {
    let e = engine("roles: { d: { grants: [{ tools: [\"*\"] }] } }");
    let p = principal(&["d"]);
    let mut req = call(&p, "gh", "search");
    let a = raw(r#"{"anything": [1, {"x": null}], "q": 1.5}"#);
    req.arguments = Some(&a);
    assert!(e.decide(&req).is_allow());
    let s = raw("[1,2]");
    req.arguments = Some(&s);
    assert_eq!(e.decide(&req).reason(), "invalid_arguments");
}

// ----- scopes --------------------------------------------------------------------

#[test]
fn scope_hierarchy() {
    assert!(scope_covers("tools", "tools"));
    assert!(scope_covers("tools", "tools:git"));
    assert!(scope_covers("tools", "tools:git:push"));
    assert!(!scope_covers("tools", "toolsx"));
    assert!(!scope_covers("tools:git", "tools"));
    assert!(!scope_covers("tools:git", "tools:github"));
}

#[test]
fn scopes_per_action_and_per_tool_listing_everything_needed() {
    let e = engine(
        "scopes: { actions: { call_tool: [\"mcp:tools\"], discover: [\"mcp:list\"] }, tools: { \"gh/*\": [\"mcp:gh\"], \"gh/comment\": [\"mcp:gh:write\", \"mcp:gh\"] } }",
    );
    let d = principal(&[]).data().clone();
    let check = |scopes: &[&str], tool: &str, action: Action| {
        let mut d2 = d.clone();
        d2.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        let p = Principal::new(d2);
        let mut req = call(&p, "gh", tool);
        req.action = action;
        e.check_scopes(&req)
    };
    assert_eq!(
        check(&["mcp:tools", "mcp:gh"], "comment", Action::CallTool),
        ScopeCheck::Ok
    );
    assert_eq!(
        check(&["mcp:tools", "mcp:gh:read"], "comment", Action::CallTool),
        ScopeCheck::Missing(ids(&["mcp:tools", "mcp:gh", "mcp:gh:write"]))
    );
    assert_eq!(
        check(&["mcp:tools"], "search", Action::CallTool),
        ScopeCheck::Missing(ids(&["mcp:tools", "mcp:gh"]))
    );
    // Discovery needs only the action's scopes.
    assert_eq!(
        check(&["mcp:list"], "comment", Action::Discover(ItemKind::Tool)),
        ScopeCheck::Ok
    );
    assert_eq!(
        check(&[], "comment", Action::Discover(ItemKind::Tool)),
        ScopeCheck::Missing(ids(&["mcp:list"]))
    );
    // Nothing configured for this action: nothing needed.
    assert_eq!(check(&[], "x", Action::ReadResource), ScopeCheck::Ok);
}

// ----- catalog facts -------------------------------------------------------------

#[test]
fn data_classes_for_session_facts() {
    let e = engine("{}");
    assert_eq!(e.data_class("gh", "admin_users"), Some("restricted"));
    assert_eq!(e.data_class("gh", "gh://secrets/k"), Some("confidential"));
    assert_eq!(e.data_class("gh", "search"), None);
    assert_eq!(e.data_class("mail", "anything"), Some("internal"));
    assert_eq!(e.data_class("nope", "x"), None);
}

#[test]
fn catalog_and_role_errors_at_compile() {
    let compile = |yaml: &str, catalog: &str| {
        let raw: RawAuthorization = serde_saphyr::from_str(yaml).expect("yaml");
        let s = raw.resolve(Path::new(".")).expect("resolves");
        let c: Catalog = serde_saphyr::from_str(catalog).expect("catalog");
        PolicyEngine::compile(&s, &c).map(|_| ())
    };
    assert_eq!(
        compile(
            "roles: { r: { grants: [{ tools: [githbu/x] }] } }",
            "servers: [{ name: github }]"
        ),
        Err(PolicyError::UnknownServer {
            path: "authorization.roles.r.grants[0]".into(),
            server: "githbu".into()
        })
    );
    assert!(compile(
        "roles: { r: { grants: [{ tools: [\"git*/x\"] }] } }",
        "servers: []"
    )
    .is_ok());
    assert!(matches!(
        compile("{}", "servers: [{ name: a }, { name: a }]"),
        Err(PolicyError::Catalog { .. })
    ));
    assert!(matches!(
        compile("{}", "servers: [{ name: a/b }]"),
        Err(PolicyError::Catalog { .. })
    ));
    assert!(matches!(
        compile(
            "{}",
            "servers: [{ name: a, tenants: [x], tools: [{ name: t, tenants: [y] }] }]"
        ),
        Err(PolicyError::Catalog { .. })
    ));
}

#[test]
fn explanations_print() {
    let e = engine(&format!(
        "{ADMIN}\napprovals: [{{ id: critical, risk: [critical], requires: [change_ticket] }}]"
    ));
    let p = principal(&["admin"]);
    let text = e.explain(&call(&p, "gh", "delete_repo")).to_string();
    assert!(
        text.starts_with("decision: requires_approval (approval_required)\n"),
        "{text}"
    );
    assert!(
        text.contains("approval must carry: change_ticket"),
        "{text}"
    );
    assert!(
        text.contains("resource: Warden::Tool::\"gh/delete_repo\""),
        "{text}"
    );
    assert!(text.contains("risk: critical"), "{text}");
    assert!(
        text.contains("[applies] permit role.admin.grants[0].tools.any.use"),
        "{text}"
    );
    assert!(
        text.contains("[applies] forbid approval.critical (approval rule)"),
        "{text}"
    );
    assert!(
        text.contains("[-] forbid warden.tenancy  — built in"),
        "{text}"
    );
    assert!(e.schema_text().contains("type Arguments = {};"));
    assert_eq!(e.policy_count(), 8);
}

// ----- slicing is exact ------------------------------------------------------------

/// The decision as the unsliced policy set, evaluated as written with every
/// parent, implies it (from `explain`'s per-policy outcomes).
fn reference(
    x: &Explanation,
    action: Action,
    approval: &ApprovalState<'_>,
) -> (String, Vec<String>) {
    let held = |t: &&PolicyTrace| matches!(t.outcome, Outcome::Satisfied | Outcome::Error(_));
    let ids = |v: Vec<&PolicyTrace>| v.into_iter().map(|t| t.id.clone()).collect::<Vec<_>>();
    let forbids: Vec<&PolicyTrace> = x
        .policies
        .iter()
        .filter(|t| t.effect == "forbid" && !t.requires_approval)
        .filter(held)
        .collect();
    if !forbids.is_empty() {
        return ("deny".into(), ids(forbids));
    }
    let permits: Vec<&PolicyTrace> = x
        .policies
        .iter()
        .filter(|t| t.effect == "permit" && t.outcome == Outcome::Satisfied)
        .collect();
    if permits.is_empty() {
        return ("deny".into(), vec![]);
    }
    let approvals: Vec<&PolicyTrace> = x
        .policies
        .iter()
        .filter(|t| t.requires_approval)
        .filter(held)
        .collect();
    if matches!(action, Action::Discover(_)) || approvals.is_empty() {
        return ("allow".into(), ids(permits));
    }
    if approval.granted && approval.change_ticket.is_some() && approval.reason.is_some() {
        let mut all = ids(permits);
        all.extend(ids(approvals));
        return ("allow".into(), all);
    }
    ("requires_approval".into(), ids(approvals))
}

#[test]
fn slicing_and_stripping_change_no_decision() {
    let files: &[(&str, &str)] = &[(
        "mixed.cedar",
        r#"
@id("eng-reads") permit (principal in Warden::Group::"eng", action in [Warden::Action::"discover", Warden::Action::"call_tool"], resource is Warden::Tool in Warden::Server::"gh") when { resource.risk_level <= 1 };
@id("alice-anything") permit (principal == Warden::User::"alice", action, resource);
@id("agents-tool") permit (principal is Warden::Agent, action == Warden::Action::"call_tool", resource == Warden::Tool::"mail/send");
@id("in-cond") permit (principal, action == Warden::Action::"read_resource", resource) when { principal in Warden::Role::"auditor" && resource in Warden::Server::"gh" };
@id("no-mail-for-ops") forbid (principal is Warden::User in Warden::Role::"ops", action, resource in Warden::Server::"mail");
@id("tenant-only") forbid (principal in Warden::Tenant::"globex", action == Warden::Action::"call_tool", resource is Warden::Tool) when { resource.name == "comment" };
@id("hold-sends") @requires_approval("change_ticket reason") forbid (principal, action, resource is Warden::Tool in Warden::Server::"mail");
@id("helper-never-samples") forbid (principal is Warden::Agent, action == Warden::Action::"sample", resource) when { principal has agent_id && principal.agent_id == "helper" };
@id("auditors-prompts") permit (principal, action == Warden::Action::"get_prompt", resource) when { principal.roles.contains("auditor") && principal.scopes.isEmpty() && context.time.hour == 12 };
"#,
    )];
    let e = engine_with(
                    "roles: { ops: { members: { groups: [eng] }, grants: [{ tools: [\"gh/*\", \"mail/*\"], max_risk: medium }] }, admin: { grants: [{ tools: [\"*\"], resources: [\"*\"], prompts: [\"*\"], sampling: [\"*\"] }] } }\napprovals: [{ id: crit, risk: [critical], roles: [admin] }]\npolicies: [mixed.cedar]",
        files,
    );
    let role_sets: [&[&str]; 5] = [
        &[],
        &["ops"],
        &["admin"],
        &["auditor", "ops"],
        &["admin", "auditor"],
    ];
    let actions = [
        Action::Discover(ItemKind::Tool),
        Action::Discover(ItemKind::Resource),
        Action::CallTool,
        Action::ReadResource,
        Action::GetPrompt,
        Action::Sample,
    ];
    let targets = [
        ("gh", "search"),
        ("gh", "comment"),
        ("gh", "delete_repo"),
        ("gh", "gh://secrets/x"),
        ("mail", "send"),
        ("mail", "draft"),
        ("acme", "x"),
    ];
    let approvals = [
        ApprovalState::default(),
        ApprovalState {
            granted: true,
            approver: Some("bob"),
            change_ticket: Some("CHG-1"),
            reason: Some("why"),
        },
    ];
    let mut checked = 0;
    for roles in role_sets {
        for (subject, tenant, groups, agent) in [
            ("alice", None, vec![], None),
            ("bob", Some("acme"), vec!["eng".to_owned()], None),
            ("carol", Some("globex"), vec![], Some("helper")),
        ] {
            let mut d = principal(roles).data().clone();
            d.subject = subject.into();
            d.tenant = tenant.map(str::to_owned);
            d.groups = groups.clone();
            d.agent_id = agent.map(str::to_owned);
            let p = Principal::new(d);
            for action in actions {
                for (server, name) in targets {
                    for approval in approvals {
                        let mut req = call(&p, server, name);
                        req.action = action;
                        req.context.approval = approval;
                        let got = e.decide(&req);
                        let x = e.explain(&req);
                        assert_eq!(x.decision, got, "explain and decide disagree");
                        let (kind, ids) = reference(&x, action, &approval);
                        assert_eq!(
                            (got.kind(), got.policies()),
                            (kind.as_str(), ids.as_slice()),
                            "{subject} {roles:?} {action:?} {server}/{name} {approval:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 5 * 3 * 6 * 7 * 2);
}

#[test]
fn every_required_scope_is_listed_once_for_advertising() {
    let e = engine(
        "scopes: { actions: { call_tool: [\"mcp:tools\"], discover: [\"mcp:list\"] }, tools: { \"gh/*\": [\"mcp:gh\"], \"gh/comment\": [\"mcp:gh:write\", \"mcp:gh\"] } }",
    );
    let mut got = e.scopes_used();
    got.sort();
    assert_eq!(
        got,
        ids(&["mcp:gh", "mcp:gh:write", "mcp:list", "mcp:tools"])
    );
    // Only the actions' scopes are asked for up front; the tools' are
    // stepped up to.
    let mut initial = e.action_scopes();
    initial.sort();
    assert_eq!(initial, ids(&["mcp:list", "mcp:tools"]));
}

/// Issue 15, item 16: a Cedar policy naming a server that is not
/// configured (a typo) compiled, and on a `forbid` that is a silent hole.
#[test]
fn a_policy_naming_an_unknown_server_is_refused_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let compile = |text: &str| {
        std::fs::write(dir.path().join("p.cedar"), text).expect("write");
        let raw: RawAuthorization = serde_saphyr::from_str("policies: [p.cedar]").expect("yaml");
        let settings = raw.resolve(dir.path()).expect("resolves");
        let catalog: Catalog = serde_saphyr::from_str(CATALOG).expect("catalog");
        PolicyEngine::compile(&settings, &catalog).map(|_| ())
    };
    let typo = compile(
        r#"@id("no-gh-deletes") forbid (principal, action, resource in Warden::Server::"gti");"#,
    );
    assert!(
        matches!(&typo, Err(PolicyError::UnknownServer { server, .. }) if server == "gti"),
        "{typo:?}"
    );
    let item = compile(
        r#"@id("no-comment") forbid (principal, action, resource == Warden::Tool::"gti/comment");"#,
    );
    assert!(
        matches!(item, Err(PolicyError::UnknownServer { .. })),
        "{item:?}"
    );
    assert!(
        compile(r#"@id("ok") forbid (principal, action, resource in Warden::Server::"gh");"#)
            .is_ok()
    );
}
