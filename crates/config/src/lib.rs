//! Warden's configuration: one YAML file, parsed strictly, then resolved into
//! validated, typed settings.
//!
//! Loading happens in two steps, as in ripgrep's `lowargs` → `hiargs`:
//!
//! 1. **Parse** (module `raw`): serde-saphyr deserializes the text into `RawConfig`,
//!    structs that mirror the YAML one to one. Unknown keys, duplicate keys,
//!    YAML syntax errors and wrong shapes (a list where a map belongs) stop
//!    here, with the path of the offending value and its line and column.
//! 2. **Resolve** (module `resolve`): every value is interpreted and checked:
//!    addresses, durations, sizes, names, URLs, cross references between
//!    sections, and secret references (`env:NAME`, `file:PATH`), which are
//!    read at this point. All problems are collected, so one run of
//!    `warden check` lists everything that is wrong.
//!
//! Nothing in a [`Config`] needs checking again downstream.
//!
//! Invariants:
//! - No error message contains the value of a secret: not a resolved
//!   `env:`/`file:` value, not an inlined header value, not a URL (which may
//!   hold credentials).
//! - No input makes the parser panic (property-tested).
//! - Exposed tool names built as `server + separator + tool` always fit
//!   `^[a-zA-Z0-9_-]{1,64}$` and split back into (server, tool) uniquely.
//!
//! The operator reference is `docs/configuration.md`.
//!
//! ```
//! let config = warden_config::parse(
//!     "servers:\n  time:\n    command: uvx\n    args: [mcp-server-time]\n",
//!     std::path::Path::new("/etc/warden"),
//! )
//! .unwrap();
//! assert_eq!(config.servers[0].name, "time");
//! assert_eq!(config.listen.addr.to_string(), "127.0.0.1:8080");
//! ```

#![forbid(unsafe_code)]

pub mod defaults;
mod error;
mod glob;
mod model;
mod raw;
mod resolve;
mod sandbox;
mod secret;
mod units;

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use glob::glob_match;
pub use model::{
    Config, CredentialMode, EdgeLimits, Era, Gateway, GrantStoreSettings, Isolation, Listen,
    RegistrySettings, RestartPolicy, Section, ServerConfig, StdioSettings, Transport,
    UpstreamCredentials, VirtualServer,
};
pub use sandbox::{EgressTarget, Sandbox, SandboxLimits, SandboxProfile, SandboxRoots};
pub use secret::Secret;

/// Largest configuration file accepted. Far above any real file; it only
/// stops `load("/dev/zero")` from eating memory.
pub const MAX_CONFIG_FILE_BYTES: u64 = 16 << 20;

/// Read, parse and validate the configuration file at `path`.
///
/// Relative paths in the file (`cwd`, `file:` secrets) resolve against the
/// file's own directory, made absolute, so they do not depend on the
/// directory Warden was started from.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = read_config_file(path)?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let base_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    parse(&text, &base_dir)
}

/// Parse and validate configuration text. Relative paths resolve against
/// `base_dir`; `env:` references read the process environment.
pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
    parse_with_env(text, base_dir, &|name| std::env::var_os(name))
}

/// [`parse`] with an explicit environment: `env` is asked for the value of
/// each `env:NAME` reference and for `USER` (the default stdio principal).
/// Lets tests and tools resolve a file without touching the process
/// environment.
pub fn parse_with_env(
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Config, ConfigErrors> {
    let raw = raw::parse_document(text)?;
    resolve::resolve(raw, &resolve::Context { base_dir, env })
}

fn read_config_file(path: &Path) -> Result<String, ConfigErrors> {
    let shown = path.display();
    let unreadable = |e: std::io::Error| ConfigError::new("", format!("cannot read {shown}: {e}"));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(ConfigError::new(
            "",
            format!("{shown} is larger than {MAX_CONFIG_FILE_BYTES} bytes"),
        )
        .into());
    }
    String::from_utf8(bytes).map_err(|e| {
        ConfigError::new(
            "",
            format!(
                "{shown} is not valid UTF-8 (first invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
        .into()
    })
}
