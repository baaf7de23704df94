use std::path::Path;

use super::*;

fn resolve(yaml: &str) -> Result<AuthzSettings, SettingsErrors> {
    resolve_in(yaml, Path::new("."))
}

fn resolve_in(yaml: &str, dir: &Path) -> Result<AuthzSettings, SettingsErrors> {
    let raw: RawAuthorization = serde_saphyr::from_str(yaml).expect("YAML parses");
    raw.resolve(dir)
}

fn errors(yaml: &str) -> SettingsErrors {
    match resolve(yaml) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e,
    }
}

#[test]
fn empty_is_valid_and_denies_everything() {
    let s = resolve("{}").expect("resolves");
    assert!(s.roles.is_empty() && s.policy_files.is_empty());
    assert_eq!(s.default_risk, RiskTier::Medium);
    assert!(!s.deny_as_unknown());
}

#[test]
fn unknown_keys_are_refused() {
    assert!(serde_saphyr::from_str::<RawAuthorization>("rolez: {}").is_err());
    assert!(serde_saphyr::from_str::<RawAuthorization>(
        "roles: { a: { grants: [{ tool: [x/y] }] } }"
    )
    .is_err());
}

/// Every problem of a bad section at once, each with its path (golden).
#[test]
fn every_error_with_its_path() {
    let e = errors(
        r#"
default_risk: severe
time_zone: Mars/Olympus
arguments:
  repo: str
  to: set<email>
  opts: { depth: float }
roles:
  analyst:
    grants:
      - tools: [github]
      - max_risk: low
      - tools: ["github/*"]
        arguments:
          to: { prefix: "x" }
          repo: { min: 1, max: 0 }
      - tools: ["a/b"]
        arguments:
          n: { one_of: [1, "two"] }
          m: {}
approvals:
  - tools: [a/b]
  - id: "bad id"
  - id: ok
    risk: [huge]
    requires: [signature]
scopes:
  actions: { fly: [x] }
  tools: { "github/*": ["has space"] }
"#,
    );
    let text: Vec<String> = e.iter().map(|(p, m)| format!("{p}: {m}")).collect();
    insta::assert_snapshot!(text.join("\n"));
}

#[test]
fn constraints_declare_their_arguments() {
    let s = resolve(
        r#"
roles:
  dev:
    grants:
      - tools: [fs/read]
        arguments:
          path: { prefix: /w/ }
          n: { max: 3 }
          to: { email_domain: [Acme.COM] }
          tags: { one_of: [a, b] }
"#,
    )
    .expect("resolves");
    assert_eq!(s.arguments.get("path"), Some(&ArgType::String));
    assert_eq!(s.arguments.get("n"), Some(&ArgType::Long));
    assert_eq!(s.arguments.get("to"), Some(&ArgType::Email));
    assert_eq!(s.arguments.get("tags"), Some(&ArgType::String));
    let c = &s.roles[0].grants[0].constraints;
    let to = c.iter().find(|(n, _, _)| n == "to").expect("to");
    assert_eq!(to.2.email_domain, vec!["acme.com".to_owned()]);
}

#[test]
fn declared_types_win_and_are_checked() {
    assert!(resolve(
        "arguments: { path: path }\nroles: { d: { grants: [{ tools: [a/b], arguments: { path: { prefix: /w/ } } }] } }"
    )
    .is_ok());
    let e = errors(
        "arguments: { path: long }\nroles: { d: { grants: [{ tools: [a/b], arguments: { path: { prefix: /w/ } } }] } }",
    );
    assert_eq!(e[0].0, "authorization.roles.d.grants[0].arguments.path");
    assert!(e[0].1.contains("declared as long"), "{e:?}");
}

#[test]
fn argument_constraints_need_tools_or_prompts() {
    let e = errors(
        "roles: { d: { grants: [{ resources: [a/b], arguments: { x: { like: [a*] } } }] } }",
    );
    assert_eq!(e[0].0, "authorization.roles.d.grants[0].arguments");
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

#[test]
fn policy_files_need_ids_and_validate_strictly() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "no-id.cedar",
        "permit (principal, action, resource);\n",
    );
    write(
        dir.path(),
        "typo.cedar",
        "@id(\"typo\")\npermit (principal, action, resource)\nwhen { resource.riskk == \"low\" };\n",
    );
    write(
        dir.path(),
        "reserved.cedar",
        "@id(\"role.x\")\npermit (principal, action, resource);\n",
    );
    write(
        dir.path(),
        "approval-on-permit.cedar",
        "@id(\"p\")\n@requires_approval(\"\")\npermit (principal, action, resource);\n",
    );
    write(
        dir.path(),
        "bad-fact.cedar",
        "@id(\"f\")\n@requires_approval(\"signature\")\nforbid (principal, action, resource);\n",
    );
    write(
        dir.path(),
        "syntax.cedar",
        "@id(\"s\")\npermit (principal, action resource);\n",
    );
    write(
        dir.path(),
        "undeclared-arg.cedar",
        "@id(\"u\")\nforbid (principal, action, resource)\nwhen { context.arguments has repo };\n",
    );
    write(
        dir.path(),
        "undeclared-access.cedar",
        "@id(\"v\")\npermit (principal, action, resource)\nwhen { context.arguments.repo == \"x\" };\n",
    );
    write(
        dir.path(),
        "bidi.cedar",
        "@id(\"w\")\npermit (principal, action, resource)\nwhen { resource.name == \"a\u{202e}b\" };\n",
    );
    let yaml = "policies: [no-id.cedar, typo.cedar, reserved.cedar, approval-on-permit.cedar, bad-fact.cedar, syntax.cedar, undeclared-arg.cedar, undeclared-access.cedar, bidi.cedar, missing.cedar]";
    let e = resolve_in(yaml, dir.path()).unwrap_err();
    let msgs: Vec<String> = e
        .iter()
        .map(|(p, m)| {
            format!(
                "{p}: {}",
                m.replace(&dir.path().display().to_string(), "<dir>")
            )
        })
        .collect();
    insta::assert_snapshot!(msgs.join("\n"));
}

#[test]
fn a_directory_loads_every_cedar_file_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("p")).expect("mkdir");
    write(
        &dir.path().join("p"),
        "b.cedar",
        "@id(\"b\")\npermit (principal, action, resource);\n",
    );
    write(
        &dir.path().join("p"),
        "a.cedar",
        "@id(\"a\")\npermit (principal, action, resource);\n",
    );
    write(&dir.path().join("p"), "notes.txt", "ignored");
    let s = resolve_in("policies: [p/]", dir.path()).expect("resolves");
    let shown: Vec<&str> = s.policy_files.iter().map(|f| f.display.as_str()).collect();
    assert_eq!(shown, ["p/a.cedar", "p/b.cedar"]);
    assert_eq!(s.policy_paths().count(), 2);
}

#[test]
fn duplicate_ids_across_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "a.cedar",
        "@id(\"same\")\npermit (principal, action, resource);\n",
    );
    write(
        dir.path(),
        "b.cedar",
        "@id(\"same\")\nforbid (principal, action, resource);\n",
    );
    let e = resolve_in("policies: [a.cedar, b.cedar]", dir.path()).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(
        e[0].1.contains("\"same\" is already used at a.cedar"),
        "{e:?}"
    );
}

#[test]
fn time_zones_resolve() {
    let s = resolve("time_zone: Europe/Berlin").expect("resolves");
    assert_eq!(s.time_zone_name, "Europe/Berlin");
}

#[test]
fn approvers_are_checked_where_they_are_written() {
    let e = errors(
        "approvals:\n  - { id: a, approvers: [] }\n  - { id: b, approvers: ['no spaces please'] }",
    );
    let paths: Vec<String> = e.iter().map(|(p, m)| format!("{p}: {m}")).collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("authorization.approvals[0].approvers")),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("authorization.approvals[1].approvers")),
        "{paths:?}"
    );
}

#[test]
fn approvers_annotation_in_a_policy_file_is_validated() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "lone.cedar",
        "@id(\"x\")\n@approvers(\"caller\")\nforbid (principal, action, resource);\n",
    );
    write(
        dir.path(),
        "nobody.cedar",
        "@id(\"y\")\n@requires_approval(\"\")\n@approvers(\",\")\nforbid (principal, action, resource);\n",
    );
    let e = resolve_in("policies: [lone.cedar, nobody.cedar]", dir.path()).unwrap_err();
    let msgs: Vec<String> = e.iter().map(|(p, m)| format!("{p}: {m}")).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("@approvers belongs on a @requires_approval policy")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("@approvers names nobody")),
        "{msgs:?}"
    );
}
