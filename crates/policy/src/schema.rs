//! The Cedar schema: the text shipped with the crate
//! (`schema/warden.cedarschema`) plus `Warden::Arguments`, generated from
//! the declared arguments. Every policy — built in, compiled from roles, or
//! read from a file — is validated against it in strict mode at load.

use std::collections::BTreeMap;

use cedar_policy::{PolicySet, Schema, ValidationMode, Validator};

use crate::args::{record_type, ArgType};

/// The schema as shipped.
pub const WARDEN_SCHEMA: &str = include_str!("../schema/warden.cedarschema");

/// The full schema text for these argument declarations: the shipped text
/// with `type Arguments = {…};` added at the end of the `Warden` namespace.
pub(crate) fn text(arguments: &BTreeMap<String, ArgType>) -> String {
    let generated = format!(
        "\n  // Generated from authorization.arguments (and role constraints).\n  type Arguments = {};\n",
        record_type(arguments)
    );
    // The shipped text ends with the namespace's closing brace.
    let end = WARDEN_SCHEMA.rfind('}').unwrap_or(WARDEN_SCHEMA.len());
    let mut out = String::with_capacity(WARDEN_SCHEMA.len() + generated.len() + 4);
    out.push_str(&WARDEN_SCHEMA[..end]);
    out.push_str(&generated);
    out.push_str(&WARDEN_SCHEMA[end..]);
    out
}

pub(crate) fn build(arguments: &BTreeMap<String, ArgType>) -> Result<Schema, String> {
    let src = text(arguments);
    Schema::from_cedarschema_str(&src)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| format!("the argument declarations do not form a valid Cedar schema: {e}"))
}

/// One validation problem: the policy, the message, and where in the
/// policy's source text (byte offset), when known.
#[derive(Debug, Clone)]
pub(crate) struct Issue {
    pub policy: String,
    pub message: String,
    pub offset: Option<usize>,
}

/// Strict validation of `set` against `schema`, plus the warnings that
/// hide a bug: an impossible policy (a forbid that can never apply fails
/// open; typically a typo such as `context.arguments has repoo`), an action
/// applied to a resource type it never has, and bidirectional-control
/// characters (Trojan Source). One issue per policy and place.
pub(crate) fn validate(schema: &Schema, set: &PolicySet) -> Vec<Issue> {
    use cedar_policy::ValidationWarning as W;
    use miette::Diagnostic;
    let validator = Validator::new(schema.clone());
    let result = validator.validate(set, ValidationMode::Strict);
    let errors = result.validation_errors().map(|e| Issue {
        policy: e.policy_id().to_string(),
        message: e.to_string(),
        offset: e.labels().and_then(|mut l| l.next()).map(|l| l.offset()),
    });
    let warnings = result
        .validation_warnings()
        .filter(|w| {
            matches!(
                w,
                W::ImpossiblePolicy(_)
                    | W::InvalidActionApplication(_)
                    | W::BidiCharsInString(_)
                    | W::BidiCharsInIdentifier(_)
            )
        })
        .map(|w| Issue {
            policy: w.policy_id().to_string(),
            message: w.to_string(),
            offset: w.labels().and_then(|mut l| l.next()).map(|l| l.offset()),
        });
    // The validator's order depends on hashing; sort for stable messages.
    let mut all: Vec<Issue> = errors.chain(warnings).collect();
    all.sort_by(|a, b| (&a.policy, a.offset, &a.message).cmp(&(&b.policy, b.offset, &b.message)));
    let mut out: Vec<Issue> = Vec::new();
    for issue in all {
        if !out
            .iter()
            .any(|o| o.policy == issue.policy && o.offset == issue.offset)
        {
            out.push(issue);
        }
    }
    out
}
