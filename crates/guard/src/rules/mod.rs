//! The detector rule set: secrets, personal data and prompt injection.
//!
//! Every rule is a regular expression written from the provider's documented
//! format (or, for PII, the standard that defines the identifier), for the
//! gated lanes a set of literal keywords one of which occurs in every match
//! (the scan looks for these only near them), and a check for what a regular expression cannot express
//! (checksums, randomness, placeholders). Rules are never written for
//! individual strings of a test corpus.
//!
//! Names and street addresses are deliberately absent: telling "Paris
//! Hilton" from "the Paris Hilton" or "12 Main Street" from "12 main
//! reasons" needs a language model (NER), not a pattern. Warden does not
//! pretend to detect them.

mod checks;
mod injection;
mod pii;
mod secrets;

pub(crate) use checks::Ctx;

use std::ops::Range;

/// Which detector family a class belongs to; each has its own actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Secret,
    Pii,
    Injection,
}

/// Rules that run together as one multi-pattern automaton. Within a lane,
/// matches are leftmost-first in rule order, so lanes separate rules that
/// would otherwise shadow each other (a generic `key = …` assignment over
/// the AWS key it contains) and rules scanned everywhere (numbers,
/// injection phrasing) from those gated by keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Lane {
    Secret,
    /// Secrets recognised by what surrounds them (a command line, a
    /// constructor, a hash format) behind rare keywords.
    SecretContext,
    SecretGeneric,
    /// Keyword-plus-value shapes the generic lane does not take (after
    /// it: a generic match wins where both match).
    SecretPaired,
    Email,
    Numeric,
    Injection,
    /// Instructions to the assistant in data, gated by the words that name
    /// the assistant, the user or the reply (rarer than the words the
    /// `Injection` lane's phrasing is made of).
    Addressed,
}

impl Lane {
    /// Injection lanes keep their detections beside other families'.
    pub(crate) fn is_injection(self) -> bool {
        matches!(self, Lane::Injection | Lane::Addressed)
    }
}

pub(crate) type Check = fn(&Ctx) -> Option<Range<usize>>;

pub(crate) struct Rule {
    pub class: &'static str,
    pub family: Family,
    pub lane: Lane,
    /// regex-automata syntax. A group named `s` marks the part to report
    /// and redact; otherwise the whole match.
    pub pattern: &'static str,
    /// Lowercase ASCII literals, one of which occurs in every match. Empty
    /// for ungated rules (scanned over the whole text).
    pub keywords: &'static [&'static str],
    /// The longest a match can be, in bytes.
    pub reach: usize,
    /// The most a match can extend before the start of its keyword (at
    /// most `reach`). A keyword hit opens a window from `lead` bytes before
    /// its start to `reach` bytes after its end.
    pub lead: usize,
    /// Every match starts with one of the keywords, after `(?-u:\b)`
    /// (see [`crate::matcher::PatternSpec::word_start`]).
    pub word_start: bool,
    pub check: Check,
}

/// Every rule, in priority order within each lane.
pub(crate) fn all() -> impl Iterator<Item = &'static Rule> {
    secrets::RULES
        .iter()
        .chain(pii::RULES.iter())
        .chain(injection::RULES.iter())
}

/// The classes of one family, each once, in rule order.
pub fn classes(family: Family) -> impl Iterator<Item = &'static str> {
    let mut seen: Vec<&'static str> = Vec::new();
    for r in all().filter(|r| r.family == family) {
        if !seen.contains(&r.class) {
            seen.push(r.class);
        }
    }
    if family == Family::Injection {
        for c in [injection::HIDDEN_TEXT, injection::LEARNED] {
            if !seen.contains(&c) {
                seen.push(c);
            }
        }
    }
    seen.into_iter()
}

/// The static name of a class of `family`, if there is one.
pub fn class_named(family: Family, name: &str) -> Option<&'static str> {
    classes(family).find(|c| *c == name)
}

pub(crate) use injection::{HIDDEN_TEXT, LEARNED};

/// Standard base64 with padding, for tests that build encoded inputs.
#[cfg(test)]
pub(crate) fn base64_encode_for_tests(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
