//! Authorization for Warden: roles, scopes and Cedar policies per tool and
//! per argument. Default deny; a `forbid` wins over every `permit`; every
//! decision names the policies that made it and a reason code.
//!
//! One engine: roles and approval rules written in plain configuration are
//! compiled into Cedar policies and evaluated together with the operator's
//! `.cedar` files, against a schema shipped with this crate
//! ([`schema::WARDEN_SCHEMA`]) and validated strictly at load. Compiled once;
//! evaluation does no I/O, reads no clock and takes no lock.
//!
//! # The seam with the gateway
//!
//! ```text
//! // load (and on every reload; keep the old engine when this fails)
//! let settings = raw_authorization.resolve(config_dir)?;     // Err(Vec<(path, message)>)
//! let catalog  = Catalog { servers: … };                    // from `servers:` (risk, data class, tenants)
//! let engine   = PolicyEngine::compile(&settings, &catalog)?;   // Err(PolicyError)
//! // watch settings.policy_paths() for hot reload
//!
//! // per request, after authentication and routing
//! let req = Request { principal, action, server, resource, arguments, annotations,
//!                     context: RequestContext { now: SystemTime::now(), client_address,
//!                                               environment, session, approval } };
//! if let ScopeCheck::Missing(all) = engine.check_scopes(&req) { 403 insufficient_scope, scope="all…" }
//! match engine.decide(&req) {
//!     Decision::Allow { policies } => …,                               // audit the ids
//!     Decision::Deny { policies, reason } => …,                        // "denied by policy" (or unknown tool
//!                                                                      //  when settings.deny_as_unknown())
//!     Decision::RequiresApproval { policies, reason, requires, approvers } => …,  // held / "approval required"
//! }
//! // lists: keep an item iff decide(Action::Discover(kind)) is Allow
//! // after a successful read: session.data_classes.push(engine.data_class(server, name))
//! // `warden policy explain`: RequestSpec{…}.with_request(|r| engine.explain(r)), engine.effective_policies()
//! // `warden policy test`:    run_test_cases(&engine, &yaml)?  → TestReport (Display; success())
//! ```
//!
//! The configuration reference and the rationale are in `README.md`.

#![forbid(unsafe_code)]

mod args;
mod catalog;
mod compile;
mod decision;
mod engine;
mod error;
mod explain;
mod glob;
mod request;
pub mod schema;
mod settings;
mod slice;
mod testing;
mod usage;

pub use args::{ArgType, ArgumentError};
pub use catalog::{Catalog, Cost, ItemFacts, ItemKind, RiskTier, ServerFacts};
pub use decision::{Decision, ReasonCode, ScopeCheck};
pub use engine::{PolicyEngine, PolicyOrigin};
pub use error::PolicyError;
pub use explain::{Explanation, Outcome, PolicyTrace, RequestFacts};
pub use glob::glob_match;
pub use request::{Action, ApprovalState, Request, RequestContext, SessionFacts};
pub use settings::{
    ApprovalFact, Approvers, AuthzSettings, RawApproval, RawArgType, RawAuthorization,
    RawConstraint, RawGrant, RawLiteral, RawMembers, RawRole, RawScopes, SettingsErrors,
};
pub use testing::{
    run_test_cases, ApprovalSpec, CaseResult, ContextSpec, PrincipalSpec, RequestSpec,
    TestFileError, TestReport, DEFAULT_TEST_TIME,
};
