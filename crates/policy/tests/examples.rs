//! The shipped examples (`examples/*/`): each directory's
//! `authorization.yaml` and `catalog.yaml` compile, and every case of its
//! `cases.yaml` passes. These are the seeds' scenarios (000, 003), toxic
//! flows, argument constraints and tenancy, evaluated end to end through
//! the public API.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use warden_policy::{run_test_cases, Catalog, PolicyEngine, RawAuthorization};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigExcerpt {
    authorization: RawAuthorization,
}

fn example_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn load(name: &str) -> PolicyEngine {
    let dir = example_dir(name);
    let text = std::fs::read_to_string(dir.join("authorization.yaml")).expect("authorization.yaml");
    let excerpt: ConfigExcerpt = serde_saphyr::from_str(&text).expect("authorization.yaml parses");
    let settings = excerpt
        .authorization
        .resolve(&dir)
        .unwrap_or_else(|e| panic!("{name}: settings do not resolve: {e:#?}"));
    let text = std::fs::read_to_string(dir.join("catalog.yaml")).expect("catalog.yaml");
    let catalog: Catalog = serde_saphyr::from_str(&text).expect("catalog.yaml parses");
    PolicyEngine::compile(&settings, &catalog)
        .unwrap_or_else(|e| panic!("{name}: does not compile: {e}"))
}

fn run(name: &str) {
    let engine = load(name);
    let cases = std::fs::read_to_string(example_dir(name).join("cases.yaml")).expect("cases.yaml");
    let report = run_test_cases(&engine, &cases).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(!report.cases.is_empty(), "{name}: no cases");
    assert!(report.success(), "{name}:\n{report}");
}

#[test]
fn seed000_admin_analyst_support() {
    run("seed000-rbac");
}

#[test]
fn seed003_github_as_yaml() {
    run("seed003-github-yaml");
}

#[test]
fn seed003_github_as_cedar() {
    run("seed003-github-cedar");
}

#[test]
fn toxic_flow() {
    run("toxic-flow");
}

#[test]
fn argument_constraints() {
    run("argument-constraints");
}

#[test]
fn tenancy() {
    run("tenancy");
}

/// Golden: the Cedar that roles and approvals compile into.
#[test]
fn effective_policies_of_seed000() {
    insta::assert_snapshot!(load("seed000-rbac").effective_policies());
}

#[test]
fn effective_policies_of_seed003_yaml() {
    insta::assert_snapshot!(load("seed003-github-yaml").effective_policies());
}

#[test]
fn effective_policies_of_argument_constraints() {
    insta::assert_snapshot!(load("argument-constraints").effective_policies());
}

/// A failing case is reported as a failure, with the explanation.
#[test]
fn a_wrong_expectation_fails_the_report() {
    let engine = load("seed000-rbac");
    let report = run_test_cases(
        &engine,
        "cases:\n  - name: analyst updates\n    principal: { roles: [analyst] }\n    action: call_tool\n    server: crm\n    tool: update_customer\n    expect: allow\n",
    )
    .expect("runs");
    assert_eq!(report.failed(), 1);
    let text = report.to_string();
    assert!(text.contains("FAIL  analyst updates"), "{text}");
    assert!(
        text.contains("expected allow, got deny (default_deny)"),
        "{text}"
    );
    assert!(text.contains("decision: deny"), "{text}");
}

#[test]
fn a_malformed_cases_file_is_an_error_not_a_failure() {
    let engine = load("seed000-rbac");
    assert!(run_test_cases(&engine, "cases: [{ name: x }]").is_err());
    assert!(run_test_cases(
        &engine,
        "cases:\n  - name: x\n    action: fly\n    server: crm\n    expect: allow\n"
    )
    .is_err());
    assert!(run_test_cases(
        &engine,
        "cases:\n  - name: x\n    action: call_tool\n    server: crm\n    tool: a\n    expect: maybe\n"
    )
    .is_err());
}
