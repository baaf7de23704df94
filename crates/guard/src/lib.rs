//! Guardrails for Warden: everything that crosses the gateway is untrusted.
//!
//! - **Input** ([`Guard::check_input`]): a `tools/call`'s arguments against
//!   the tool's (pinned) input schema — `jsonschema`, dialect from
//!   `$schema` (2020-12 by default), remote `$ref` never fetched, compiled
//!   once per schema hash; strict mode refuses properties a schema does not
//!   declare; size, depth and count limits; forbidden characters (bidi
//!   controls, Unicode tags, zero-width, C0 controls) rejected or stripped;
//!   prompt-injection detectors over string arguments. Every denial names
//!   the argument's JSON pointer and a [`RuleId`].
//! - **Output** ([`Guard::inspect_output`]): every text-bearing field of a
//!   result (text content, `structuredContent`, embedded resources,
//!   resource contents, prompt messages) scanned for secrets, personal
//!   data and injection; per class and per tool: redact
//!   (`[REDACTED:aws_access_key]`), label (delimited, with a notice), block
//!   or log; results cut to a size cap with a marker; upstream errors made
//!   generic ([`Guard::sanitize_error`]); streamed text redacted across
//!   chunk boundaries ([`Guard::stream_redactor`]).
//! - **Findings** ([`Finding`]) carry classes, rules, counts and JSON
//!   pointers — never matched values — so they can go to the audit trail.
//!
//! Everything is compiled when the [`Guard`] is built (one multi-pattern
//! automaton per lane behind the [`matcher::Matcher`] seam, schema
//! validators on first sight of a schema hash or via
//! [`Guard::precompile`]). The request path does no I/O.
//!
//! Names and street addresses are not detected: that needs a language
//! model, not patterns, and Warden does not pretend otherwise.
#![forbid(unsafe_code)]

mod error;
mod finding;
mod guard;
mod input;
mod json;
pub mod learned;
pub mod matcher;
mod output;
pub mod rules;
mod scan;
mod schema;
mod settings;
mod stream;
mod unicode;

pub use error::GuardError;
pub use finding::{Finding, RuleId};
pub use guard::{Detected, Guard, InputVerdict, OutputVerdict};
pub use rules::Family;
pub use settings::{
    Action, CharPolicy, ClassActions, ErrorMode, GuardSettings, Limits, RawClassActions, RawGuards,
    RawInput, RawLimits, RawOutput, RawServerGuards, RawToolGuards, Scalar, SchemaMode,
    SettingsErrors, ToolGuards, ToolOverride, ToolPatch,
};
pub use stream::StreamRedactor;
