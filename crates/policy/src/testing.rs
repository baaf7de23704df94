//! `warden policy test cases.yaml`: declared requests run against the
//! policy set, for operators' own CI; and [`RequestSpec`], the owned,
//! deserialisable request that `warden policy explain` builds from flags.
//!
//! ```yaml
//! defaults:                      # merged into every case (optional)
//!   principal: { tenant: acme }
//!   context: { environment: prod }
//! cases:
//!   - name: analyst may search
//!     principal: { subject: ann, roles: [analyst] }
//!     action: call_tool          # discover (with kind: tool|resource|prompt), call_tool,
//!                                # read_resource, get_prompt, subscribe, sample, elicit
//!     server: github
//!     tool: repo.search          # or resource: <uri>, prompt: <name>; none for sample/elicit
//!     arguments: { repo: acme/web }
//!     expect: allow              # allow | deny | requires_approval
//!     reason: default_deny       # optional: the reason code
//!     policies: [role.analyst.grants[0].tools.any.use]   # optional: exactly the deciding ids
//!     scopes: ok                 # optional: ok | missing (check_scopes)
//! ```
//!
//! Principal keys: `subject` (default `tester`), `tenant`, `roles`,
//! `groups`, `scopes`, `client_id`, `agent_id`, `method` (`bearer`
//! default, `dpop`, `api_key`, `mtls`, `local`, `anonymous`), `issuer`
//! (the namespace of an authenticated principal). Context keys: `time`
//! (RFC 3339; default `2026-01-05T12:00:00Z`, a Monday), `client_address`,
//! `environment`, `session_data_classes`, `approval` (`granted`,
//! `approver`, `change_ticket`, `reason`). `annotations` as the upstream
//! sends them.

use std::fmt;
use std::net::IpAddr;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::value::RawValue;
use warden_identity::{AuthMethod, CredentialInfo, Principal, PrincipalData};

use crate::catalog::ItemKind;
use crate::decision::{Decision, ScopeCheck};
use crate::engine::PolicyEngine;
use crate::request::{Action, ApprovalState, Request, RequestContext, SessionFacts};

/// The instant cases run at unless they say otherwise.
pub const DEFAULT_TEST_TIME: &str = "2026-01-05T12:00:00Z";

/// A request, owned and deserialisable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default)]
    pub principal: PrincipalSpec,
    pub action: String,
    /// For `discover`: `tool` (default), `resource`, `prompt`.
    #[serde(default)]
    pub kind: Option<String>,
    pub server: String,
    /// Tool or prompt name, resource URI; empty for sample/elicit.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub arguments: Option<serde_json::Value>,
    #[serde(default)]
    pub annotations: Option<serde_json::Value>,
    #[serde(default)]
    pub context: ContextSpec,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrincipalSpec {
    pub subject: Option<String>,
    pub tenant: Option<String>,
    pub roles: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub client_id: Option<String>,
    pub agent_id: Option<String>,
    pub method: Option<String>,
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContextSpec {
    pub time: Option<String>,
    pub client_address: Option<String>,
    pub environment: Option<String>,
    pub session_data_classes: Option<Vec<String>>,
    pub approval: Option<ApprovalSpec>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSpec {
    #[serde(default)]
    pub granted: bool,
    pub approver: Option<String>,
    pub change_ticket: Option<String>,
    pub reason: Option<String>,
}

impl PrincipalSpec {
    /// `self` with unset keys taken from `d`.
    fn or(self, d: &PrincipalSpec) -> PrincipalSpec {
        PrincipalSpec {
            subject: self.subject.or_else(|| d.subject.clone()),
            tenant: self.tenant.or_else(|| d.tenant.clone()),
            roles: self.roles.or_else(|| d.roles.clone()),
            groups: self.groups.or_else(|| d.groups.clone()),
            scopes: self.scopes.or_else(|| d.scopes.clone()),
            client_id: self.client_id.or_else(|| d.client_id.clone()),
            agent_id: self.agent_id.or_else(|| d.agent_id.clone()),
            method: self.method.or_else(|| d.method.clone()),
            issuer: self.issuer.or_else(|| d.issuer.clone()),
        }
    }

    /// The principal this spec describes.
    pub fn principal(&self) -> Result<Principal, String> {
        let method = match self.method.as_deref().unwrap_or("bearer") {
            "bearer" => AuthMethod::Bearer,
            "dpop" => AuthMethod::Dpop,
            "api_key" => AuthMethod::ApiKey,
            "mtls" => AuthMethod::Mtls,
            "local" => AuthMethod::Local,
            "anonymous" => AuthMethod::Anonymous,
            other => return Err(format!("principal.method: unknown method {other:?}")),
        };
        let data = PrincipalData {
            subject: self.subject.clone().unwrap_or_else(|| "tester".into()),
            tenant: self.tenant.clone(),
            roles: self.roles.clone().unwrap_or_default(),
            groups: self.groups.clone().unwrap_or_default(),
            scopes: self.scopes.clone().unwrap_or_default(),
            client_id: self.client_id.clone(),
            agent_id: self.agent_id.clone(),
            method,
        };
        Ok(match &self.issuer {
            Some(ns) => Principal::authenticated(
                data,
                ns,
                CredentialInfo {
                    issuer: ns.clone(),
                    token_id: None,
                    expires_at: None,
                    key_thumbprint: None,
                },
            ),
            None => Principal::new(data),
        })
    }
}

impl ContextSpec {
    fn or(self, d: &ContextSpec) -> ContextSpec {
        ContextSpec {
            time: self.time.or_else(|| d.time.clone()),
            client_address: self.client_address.or_else(|| d.client_address.clone()),
            environment: self.environment.or_else(|| d.environment.clone()),
            session_data_classes: self
                .session_data_classes
                .or_else(|| d.session_data_classes.clone()),
            approval: self.approval.or_else(|| d.approval.clone()),
        }
    }
}

impl RequestSpec {
    /// Builds the [`Request`] this spec describes and hands it to `f`.
    pub fn with_request<R>(&self, f: impl FnOnce(&Request<'_>) -> R) -> Result<R, String> {
        let principal = self.principal.principal()?;
        let action = self.action()?;
        let arguments = self
            .arguments
            .as_ref()
            .map(|v| RawValue::from_string(v.to_string()))
            .transpose()
            .map_err(|e| format!("arguments: {e}"))?;
        let annotations = self
            .annotations
            .as_ref()
            .map(|v| RawValue::from_string(v.to_string()))
            .transpose()
            .map_err(|e| format!("annotations: {e}"))?;
        let c = &self.context;
        let time = c.time.as_deref().unwrap_or(DEFAULT_TEST_TIME);
        let now: SystemTime = time
            .parse::<jiff::Timestamp>()
            .map_err(|e| format!("context.time: {e}"))?
            .into();
        let client_address = c
            .client_address
            .as_deref()
            .map(str::parse::<IpAddr>)
            .transpose()
            .map_err(|e| format!("context.client_address: {e}"))?;
        let classes = c.session_data_classes.clone().unwrap_or_default();
        let approval = c.approval.clone().unwrap_or_default();
        let req = Request {
            principal: &principal,
            action,
            server: &self.server,
            resource: &self.name,
            arguments: arguments.as_deref(),
            annotations: annotations.as_deref(),
            context: RequestContext {
                now,
                client_address,
                environment: c.environment.as_deref(),
                session: SessionFacts {
                    data_classes: &classes,
                },
                approval: ApprovalState {
                    granted: approval.granted,
                    approver: approval.approver.as_deref(),
                    change_ticket: approval.change_ticket.as_deref(),
                    reason: approval.reason.as_deref(),
                },
            },
        };
        Ok(f(&req))
    }

    fn action(&self) -> Result<Action, String> {
        let kind = match self.kind.as_deref() {
            None | Some("tool") => ItemKind::Tool,
            Some("resource") => ItemKind::Resource,
            Some("prompt") => ItemKind::Prompt,
            Some(k) => return Err(format!("kind: unknown kind {k:?} (tool, resource, prompt)")),
        };
        if self.kind.is_some() && self.action != "discover" {
            return Err("kind: only for action discover".into());
        }
        Ok(match self.action.as_str() {
            "discover" => Action::Discover(kind),
            "call_tool" => Action::CallTool,
            "read_resource" => Action::ReadResource,
            "get_prompt" => Action::GetPrompt,
            "subscribe" => Action::Subscribe,
            "sample" => Action::Sample,
            "elicit" => Action::Elicit,
            other => {
                return Err(format!(
                    "action: unknown action {other:?} (discover, call_tool, read_resource, \
                     get_prompt, subscribe, sample, elicit)"
                ))
            }
        })
    }
}

// ----- cases files ----------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    #[serde(default)]
    defaults: Defaults,
    cases: Vec<Case>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    #[serde(default)]
    principal: PrincipalSpec,
    #[serde(default)]
    context: ContextSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    principal: PrincipalSpec,
    action: String,
    #[serde(default)]
    kind: Option<String>,
    server: String,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    arguments: Option<serde_json::Value>,
    #[serde(default)]
    annotations: Option<serde_json::Value>,
    #[serde(default)]
    context: ContextSpec,
    expect: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    policies: Option<Vec<String>>,
    #[serde(default)]
    scopes: Option<String>,
}

/// A cases file that cannot be run (as opposed to a case that fails).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TestFileError {
    #[error("cases file: {0}")]
    Syntax(String),
    #[error("case {index} ({name}): {message}")]
    Case {
        index: usize,
        name: String,
        message: String,
    },
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    /// What was expected, e.g. `deny (default_deny)`.
    pub expected: String,
    pub decision: Decision,
    pub scopes: ScopeCheck,
    /// What differed, when the case failed.
    pub failures: Vec<String>,
    /// The explanation of a failed case.
    pub explanation: Option<String>,
}

/// Every case's outcome.
#[derive(Debug, Clone, Default)]
pub struct TestReport {
    pub cases: Vec<CaseResult>,
}

impl TestReport {
    #[must_use]
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }

    #[must_use]
    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    /// Every case passed.
    #[must_use]
    pub fn success(&self) -> bool {
        self.failed() == 0
    }
}

impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.cases {
            if c.passed {
                writeln!(f, "ok    {}", c.name)?;
            } else {
                writeln!(f, "FAIL  {}", c.name)?;
                for why in &c.failures {
                    writeln!(f, "      {why}")?;
                }
                if let Some(e) = &c.explanation {
                    for line in e.lines() {
                        writeln!(f, "      | {line}")?;
                    }
                }
            }
        }
        writeln!(
            f,
            "{} passed, {} failed, {} cases",
            self.passed(),
            self.failed(),
            self.cases.len()
        )
    }
}

/// Runs every case of `cases_yaml` against `engine`.
pub fn run_test_cases(
    engine: &PolicyEngine,
    cases_yaml: &str,
) -> Result<TestReport, TestFileError> {
    let file: CasesFile =
        serde_saphyr::from_str(cases_yaml).map_err(|e| TestFileError::Syntax(e.to_string()))?;
    let mut report = TestReport::default();
    for (index, case) in file.cases.into_iter().enumerate() {
        let fail = |message: String| TestFileError::Case {
            index,
            name: case.name.clone(),
            message,
        };
        let named: Vec<&String> = [&case.tool, &case.resource, &case.prompt]
            .into_iter()
            .flatten()
            .collect();
        let name = match named.as_slice() {
            [] => String::new(),
            [one] => (*one).clone(),
            _ => return Err(fail("give one of tool, resource, prompt".into())),
        };
        let spec = RequestSpec {
            principal: case.principal.clone().or(&file.defaults.principal),
            action: case.action.clone(),
            kind: case.kind.clone(),
            server: case.server.clone(),
            name,
            arguments: case.arguments.clone(),
            annotations: case.annotations.clone(),
            context: case.context.clone().or(&file.defaults.context),
        };
        if !matches!(case.expect.as_str(), "allow" | "deny" | "requires_approval") {
            return Err(fail(format!(
                "expect: {:?} is not allow, deny or requires_approval",
                case.expect
            )));
        }
        if let Some(s) = &case.scopes {
            if s != "ok" && s != "missing" {
                return Err(fail(format!("scopes: {s:?} is not ok or missing")));
            }
        }
        let (decision, scopes) = spec
            .with_request(|req| (engine.decide(req), engine.check_scopes(req)))
            .map_err(fail)?;
        let mut failures = Vec::new();
        if decision.kind() != case.expect {
            failures.push(format!(
                "expected {}, got {} ({})",
                case.expect,
                decision.kind(),
                decision.reason()
            ));
        }
        if let Some(reason) = &case.reason {
            if decision.reason() != reason {
                failures.push(format!(
                    "expected reason {reason}, got {}",
                    decision.reason()
                ));
            }
        }
        if let Some(ids) = &case.policies {
            if decision.policies() != ids.as_slice() {
                failures.push(format!(
                    "expected policies [{}], got [{}]",
                    ids.join(", "),
                    decision.policies().join(", ")
                ));
            }
        }
        if let Some(s) = &case.scopes {
            let got = match &scopes {
                ScopeCheck::Ok => "ok",
                ScopeCheck::Missing(_) => "missing",
            };
            if got != s {
                failures.push(format!("expected scopes {s}, got {scopes:?}"));
            }
        }
        let mut expected = case.expect.clone();
        if let Some(r) = &case.reason {
            expected.push_str(&format!(" ({r})"));
        }
        let explanation = if failures.is_empty() {
            None
        } else {
            spec.with_request(|req| engine.explain(req).to_string())
                .ok()
        };
        report.cases.push(CaseResult {
            name: case.name,
            passed: failures.is_empty(),
            expected,
            decision,
            scopes,
            failures,
            explanation,
        });
    }
    Ok(report)
}
