//! Secret values: how they are referenced in the file, and how they are
//! resolved at load time without ever being echoed back.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A resolved configuration value that may be sensitive (an `env` value of a
/// stdio server, an HTTP header of an upstream).
///
/// `Debug` and `Display` print `[secret]`; the value is only reachable
/// through [`Secret::expose`], so it cannot end up in a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value (for tests and for callers that build a `Config` in code).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself. Call this only where the value is handed to the
    /// upstream (a child's environment, an outgoing header).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

/// How a value is written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretRef<'a> {
    /// `env:NAME`: the value of an environment variable of the Warden process.
    Env(&'a str),
    /// `file:PATH`: the contents of a file, less one trailing newline.
    File(&'a str),
    /// `literal:VALUE`, or any string without a recognised prefix.
    Literal(&'a str),
}

impl<'a> SecretRef<'a> {
    pub(crate) fn parse(text: &'a str) -> Self {
        if let Some(name) = text.strip_prefix("env:") {
            Self::Env(name)
        } else if let Some(path) = text.strip_prefix("file:") {
            Self::File(path)
        } else if let Some(value) = text.strip_prefix("literal:") {
            Self::Literal(value)
        } else {
            Self::Literal(text)
        }
    }
}

/// Why a secret reference could not be resolved. No variant carries the
/// value: only the variable name or the file path the operator wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SecretError {
    #[error("env: needs a variable name (env:NAME)")]
    EnvNameEmpty,
    #[error("{name:?} is not a valid environment variable name")]
    EnvNameInvalid { name: String },
    #[error("environment variable {name} is not set")]
    EnvMissing { name: String },
    #[error("environment variable {name} is not valid UTF-8")]
    EnvNotUnicode { name: String },
    #[error("file: needs a path (file:PATH)")]
    FilePathEmpty,
    #[error("cannot read secret file {path}: {reason}")]
    FileUnreadable { path: String, reason: String },
    #[error("secret file {path} is larger than {limit} bytes")]
    FileTooLarge { path: String, limit: u64 },
    #[error("secret file {path} is not valid UTF-8")]
    FileNotUnicode { path: String },
}

/// Secret files are small (a token, a password); anything larger is a
/// mistake, and reading it unbounded (`file:/dev/zero`) would hang the load.
pub(crate) const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Where secrets come from: the process environment (or a stand-in in tests)
/// and the directory relative file paths are resolved against.
pub(crate) struct SecretSource<'a> {
    pub env: &'a dyn Fn(&str) -> Option<OsString>,
    pub base_dir: &'a Path,
    /// Every `file:` secret read so far: Warden's own files, never
    /// mounted into a sandbox.
    pub files: std::cell::RefCell<Vec<PathBuf>>,
}

impl SecretSource<'_> {
    pub(crate) fn resolve(&self, reference: &SecretRef<'_>) -> Result<Secret, SecretError> {
        match *reference {
            SecretRef::Literal(value) => Ok(Secret::new(value)),
            SecretRef::Env(name) => self.resolve_env(name),
            SecretRef::File(path) => self.resolve_file(path),
        }
    }

    fn resolve_env(&self, name: &str) -> Result<Secret, SecretError> {
        if name.is_empty() {
            return Err(SecretError::EnvNameEmpty);
        }
        if !is_env_name(name) {
            return Err(SecretError::EnvNameInvalid {
                name: name.to_owned(),
            });
        }
        match (self.env)(name) {
            None => Err(SecretError::EnvMissing {
                name: name.to_owned(),
            }),
            Some(value) => {
                value
                    .into_string()
                    .map(Secret)
                    .map_err(|_| SecretError::EnvNotUnicode {
                        name: name.to_owned(),
                    })
            }
        }
    }

    fn resolve_file(&self, path: &str) -> Result<Secret, SecretError> {
        if path.is_empty() {
            return Err(SecretError::FilePathEmpty);
        }
        let full: PathBuf = self.base_dir.join(path);
        let shown = full.display().to_string();
        let unreadable = |e: std::io::Error| SecretError::FileUnreadable {
            path: shown.clone(),
            reason: e.kind().to_string(),
        };
        let file = std::fs::File::open(&full).map_err(unreadable)?;
        self.files.borrow_mut().push(full.clone());
        let mut bytes = Vec::new();
        file.take(MAX_SECRET_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
            return Err(SecretError::FileTooLarge {
                path: shown,
                limit: MAX_SECRET_FILE_BYTES,
            });
        }
        let mut text =
            String::from_utf8(bytes).map_err(|_| SecretError::FileNotUnicode { path: shown })?;
        // Exactly one trailing newline, as `echo token > file` writes.
        if text.ends_with("\r\n") {
            text.truncate(text.len() - 2);
        } else if text.ends_with('\n') {
            text.truncate(text.len() - 1);
        }
        Ok(Secret(text))
    }
}

/// A name `Command::env` and a shell both accept: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Header names whose values are credentials, so that inlining them in the
/// file is refused. Substring match, case-insensitive: a false positive costs
/// the operator one `env:` reference; a false negative leaks a credential
/// into a file that gets committed and shared.
pub(crate) fn header_looks_secret(name: &str) -> bool {
    const MARKERS: &[&str] = &[
        "auth", // Authorization, Proxy-Authorization, X-Auth-*
        "cookie",
        "token",
        "secret",
        "key",
        "password",
        "passwd",
        "credential",
    ];
    let lower = name.to_ascii_lowercase();
    MARKERS.iter().any(|marker| lower.contains(marker))
}
