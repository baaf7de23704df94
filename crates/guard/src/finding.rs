//! What the guard reports: rule ids and findings. A finding names a class, a
//! rule, a count and a location — never the matched value, so that findings
//! can go to the audit trail and logs without becoming a leak themselves.

use std::fmt;

use crate::settings::Action;

/// The rule that produced a finding or a denial, e.g. `input.schema`,
/// `input.limit.depth`, `output.secret`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RuleId(&'static str);

impl RuleId {
    pub const INPUT_SCHEMA: RuleId = RuleId("input.schema");
    pub const INPUT_SCHEMA_UNUSABLE: RuleId = RuleId("input.schema.unusable");
    pub const INPUT_STRICT: RuleId = RuleId("input.strict");
    pub const INPUT_NOT_JSON: RuleId = RuleId("input.not_json");
    pub const INPUT_STRING_BYTES: RuleId = RuleId("input.limit.string_bytes");
    pub const INPUT_ARRAY_ITEMS: RuleId = RuleId("input.limit.array_items");
    pub const INPUT_DEPTH: RuleId = RuleId("input.limit.depth");
    pub const INPUT_TOTAL_BYTES: RuleId = RuleId("input.limit.total_bytes");
    pub const INPUT_FORBIDDEN_CHAR: RuleId = RuleId("input.forbidden_char");
    pub const INPUT_INJECTION: RuleId = RuleId("input.injection");
    pub const OUTPUT_SECRET: RuleId = RuleId("output.secret");
    pub const OUTPUT_PII: RuleId = RuleId("output.pii");
    pub const OUTPUT_INJECTION: RuleId = RuleId("output.injection");
    pub const OUTPUT_SIZE_CAP: RuleId = RuleId("output.size_cap");
    pub const OUTPUT_NOT_JSON: RuleId = RuleId("output.not_json");
    pub const OUTPUT_UPSTREAM_ERROR: RuleId = RuleId("output.upstream_error");

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// One kind of thing found at one place, and how often.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// What was found: a detector class (`aws_access_key`, `email`,
    /// `injection.role_marker`, `bidi_control`, `size_cap`).
    pub class: &'static str,
    pub rule: RuleId,
    pub count: u32,
    /// JSON pointer into the arguments (input) or the result (output).
    pub location: String,
    /// What the guard did about it.
    pub action: Action,
}

/// Adds `count` occurrences of `class` at `location`, merging with an
/// existing entry for the same class, rule and location.
pub(crate) fn add(
    findings: &mut Vec<Finding>,
    class: &'static str,
    rule: RuleId,
    location: &str,
    action: Action,
    count: u32,
) {
    if let Some(f) = findings
        .iter_mut()
        .find(|f| f.class == class && f.rule == rule && f.location == location)
    {
        f.count = f.count.saturating_add(count);
        if action > f.action {
            f.action = action;
        }
        return;
    }
    findings.push(Finding {
        class,
        rule,
        count,
        location: location.to_owned(),
        action,
    });
}
