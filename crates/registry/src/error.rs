//! The registry's one error type.

use std::path::PathBuf;

use crate::manifest::ItemKind;
use crate::scanner::ScanFinding;

/// Everything that can go wrong in the registry. Messages never carry more
/// peer content than a short, escaped excerpt (see [`crate::text::escape_excerpt`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The JSON is not valid I-JSON (RFC 7493): malformed, a lone surrogate,
    /// or a value that cannot be canonicalised.
    #[error("invalid JSON: {0}")]
    InvalidJson(&'static str),
    /// Nesting deeper than [`crate::canonical::MAX_DEPTH`].
    #[error("JSON nested deeper than {0} levels")]
    TooDeep(usize),
    /// An object repeats a key: its meaning would depend on the parser.
    #[error("duplicate key {0:?} in a JSON object")]
    DuplicateKey(String),
    /// A number outside the IEEE 754 double range (RFC 8785 § 3.2.2.3).
    #[error("number {0} is outside the range of an IEEE 754 double")]
    NumberOutOfRange(String),
    /// An item without the member that names it (`name`, `uri`, `uriTemplate`).
    #[error("{kind} has no string member {member:?}")]
    MissingName {
        kind: ItemKind,
        member: &'static str,
    },
    /// Not of the form `sha256:<64 hex digits>`.
    #[error("invalid hash {0:?}: expected sha256:<64 hex digits>")]
    InvalidHash(String),
    /// Reading or writing a file.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The lock file is not valid TOML of the expected shape.
    #[error("{}: {message}", path.display())]
    LockSyntax { path: PathBuf, message: String },
    /// One entry of the lock file is inconsistent (bad kind, hash mismatch, duplicate).
    #[error("{}: {entry}: {problem}", path.display())]
    LockEntry {
        path: PathBuf,
        entry: String,
        problem: String,
    },
    /// The scanner blocks this item; approving it needs a recorded reason.
    #[error(
        "{item}: refused by the scanner ({}); approve with a reason to force",
        rule_list(findings)
    )]
    ScanBlocked {
        item: String,
        findings: Vec<ScanFinding>,
    },
    /// A scanner configuration names a rule that does not exist.
    #[error("unknown scanner rule {0:?}")]
    UnknownRule(String),
    /// An MCP client configuration file that cannot be read as one.
    #[error("{}: {message}", path.display())]
    ClientConfig { path: PathBuf, message: String },
}

fn rule_list(findings: &[ScanFinding]) -> String {
    let mut rules: Vec<&str> = findings.iter().map(|f| f.rule).collect();
    rules.sort_unstable();
    rules.dedup();
    rules.join(", ")
}
