//! The `approvals:` section of `warden.yaml`: where held calls are kept and
//! how long a call waits. Which calls are held, and who may approve them,
//! is policy's (`authorization.approvals`, `@requires_approval`,
//! `@approvers`).
//!
//! ```yaml
//! approvals:
//!   store: sqlite                # sqlite (default) | postgres
//!   path: .warden/approvals.db   # the SQLite file, relative to the configuration file
//!   postgres:
//!     url: env:WARDEN_APPROVALS_PG_URL   # libpq URL or conninfo; env:/file: like every secret
//!     table: warden_approvals
//!   wait: 30s                    # how long a held call waits for a decision (0s: answer at once)
//!   expiry: 15m                  # a request, and an approval not yet used, lapses after this
//!   progress_every: 5s           # "waiting for approval <id>" to a client that sent a progress token
//!   in_band: true                # ask the caller's own client where policy lets the caller approve
//!   targets: [repo, recipient, environment, branch, path, url, command, query, amount]
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The `approvals:` section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprovals {
    pub store: Option<String>,
    pub path: Option<String>,
    pub postgres: Option<RawPostgres>,
    pub wait: Option<String>,
    pub expiry: Option<String>,
    pub progress_every: Option<String>,
    pub in_band: Option<bool>,
    pub targets: Option<Vec<String>>,
}

/// `approvals.postgres`. `Debug` hides the URL (it may hold a password).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    pub url: Option<String>,
    pub table: Option<String>,
}

impl std::fmt::Debug for RawPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawPostgres")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("table", &self.table)
            .finish()
    }
}

/// Where approvals are kept.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSettings {
    /// One SQLite file (the embedded default); several Warden processes on
    /// one machine may share it.
    Sqlite { path: PathBuf },
    /// A PostgreSQL table; Warden processes sharing it release each
    /// other's held calls (`LISTEN`/`NOTIFY`).
    Postgres {
        /// The secret reference as written (resolved by the configuration
        /// crate, see [`ApprovalSettings::postgres_url_reference`]).
        reference: String,
        /// The resolved URL; `None` until resolved.
        url: Option<String>,
        table: String,
    },
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSettings::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
            StoreSettings::Postgres {
                reference, table, ..
            } => f
                .debug_struct("Postgres")
                .field("reference", reference)
                .field("table", table)
                .finish_non_exhaustive(),
        }
    }
}

/// The validated `approvals:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalSettings {
    pub store: StoreSettings,
    pub wait: Duration,
    pub expiry: Duration,
    pub progress_every: Duration,
    pub in_band: bool,
    /// Argument names shown as the call's data or system target.
    pub targets: Vec<String>,
}

/// The argument names shown as a call's target when none are configured.
pub const DEFAULT_TARGETS: &[&str] = &[
    "repo",
    "repository",
    "recipient",
    "to",
    "environment",
    "branch",
    "path",
    "url",
    "command",
    "query",
    "amount",
    "account",
    "database",
    "table",
    "host",
];

impl ApprovalSettings {
    /// The defaults for a configuration file in `base_dir`.
    pub fn defaults_in(base_dir: &Path) -> ApprovalSettings {
        ApprovalSettings {
            store: StoreSettings::Sqlite {
                path: base_dir.join(".warden").join("approvals.db"),
            },
            wait: Duration::from_secs(30),
            expiry: Duration::from_secs(15 * 60),
            progress_every: Duration::from_secs(5),
            in_band: true,
            targets: DEFAULT_TARGETS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// `(path in the file, reference)` of a PostgreSQL URL still to resolve.
    pub fn postgres_url_reference(&self) -> Option<(&'static str, &str)> {
        match &self.store {
            StoreSettings::Postgres {
                reference,
                url: None,
                ..
            } => Some(("approvals.postgres.url", reference)),
            _ => None,
        }
    }

    /// Sets the resolved PostgreSQL URL.
    pub fn set_postgres_url(&mut self, resolved: String) {
        if let StoreSettings::Postgres { url, .. } = &mut self.store {
            *url = Some(resolved);
        }
    }
}

impl RawApprovals {
    /// Validates the section; every problem with its path.
    pub fn resolve(self, base_dir: &Path) -> Result<ApprovalSettings, Vec<(String, String)>> {
        let mut errors: Vec<(String, String)> = Vec::new();
        let mut s = ApprovalSettings::defaults_in(base_dir);
        let mut duration = |path: &str, v: Option<String>, min: Duration, into: &mut Duration| {
            let Some(v) = v else { return };
            match humantime::parse_duration(v.trim()) {
                Ok(d) if d >= min => *into = d,
                Ok(_) => errors.push((
                    path.to_owned(),
                    format!("{v:?} is shorter than {}", humantime::format_duration(min)),
                )),
                Err(e) => errors.push((path.to_owned(), format!("{v:?} is not a duration: {e}"))),
            }
        };
        duration("approvals.wait", self.wait, Duration::ZERO, &mut s.wait);
        duration(
            "approvals.expiry",
            self.expiry,
            Duration::from_secs(1),
            &mut s.expiry,
        );
        duration(
            "approvals.progress_every",
            self.progress_every,
            Duration::from_millis(100),
            &mut s.progress_every,
        );
        if s.wait > s.expiry {
            errors.push((
                "approvals.wait".into(),
                format!(
                    "{} is longer than approvals.expiry ({}): the request would lapse while the call waits",
                    humantime::format_duration(s.wait),
                    humantime::format_duration(s.expiry)
                ),
            ));
        }
        if let Some(b) = self.in_band {
            s.in_band = b;
        }
        if let Some(targets) = self.targets {
            for (i, t) in targets.iter().enumerate() {
                if t.is_empty() || t.len() > 128 {
                    errors.push((
                        format!("approvals.targets[{i}]"),
                        "an argument name of 1 to 128 characters".into(),
                    ));
                }
            }
            s.targets = targets;
        }
        let store = self.store.as_deref().unwrap_or(if self.postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        });
        match store {
            "sqlite" => {
                if self.postgres.is_some() {
                    errors.push((
                        "approvals.postgres".into(),
                        "set only with `store: postgres`".into(),
                    ));
                }
                if let Some(p) = self.path {
                    if p.trim().is_empty() {
                        errors.push(("approvals.path".into(), "an empty path".into()));
                    } else {
                        s.store = StoreSettings::Sqlite {
                            path: base_dir.join(p),
                        };
                    }
                }
            }
            "postgres" => {
                if self.path.is_some() {
                    errors.push((
                        "approvals.path".into(),
                        "the SQLite file: not used with `store: postgres`".into(),
                    ));
                }
                let pg = self.postgres.unwrap_or_default();
                let table = pg.table.unwrap_or_else(|| "warden_approvals".into());
                if table.is_empty()
                    || table.len() > 48
                    || !table
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    || table.as_bytes()[0].is_ascii_digit()
                {
                    errors.push((
                        "approvals.postgres.table".into(),
                        format!("{table:?}: lower-case letters, digits and '_', at most 48"),
                    ));
                }
                match pg.url {
                    Some(reference) if !reference.trim().is_empty() => {
                        s.store = StoreSettings::Postgres {
                            reference,
                            url: None,
                            table,
                        }
                    }
                    _ => errors.push((
                        "approvals.postgres.url".into(),
                        "`store: postgres` needs a URL (e.g. env:WARDEN_APPROVALS_PG_URL)".into(),
                    )),
                }
            }
            other => errors.push((
                "approvals.store".into(),
                format!("{other:?}: sqlite or postgres"),
            )),
        }
        if errors.is_empty() {
            Ok(s)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(yaml: &str) -> Result<ApprovalSettings, Vec<(String, String)>> {
        let raw: RawApprovals = serde_saphyr::from_str(yaml).expect("yaml");
        raw.resolve(Path::new("/etc/warden"))
    }

    #[test]
    fn defaults_keep_approvals_next_to_the_configuration() {
        let s = resolve("{}").expect("valid");
        assert_eq!(
            s.store,
            StoreSettings::Sqlite {
                path: PathBuf::from("/etc/warden/.warden/approvals.db")
            }
        );
        assert_eq!(s.wait, Duration::from_secs(30));
        assert!(s.in_band);
        assert!(s.targets.iter().any(|t| t == "recipient"));
    }

    #[test]
    fn every_problem_is_named_by_its_path() {
        let errs = resolve(
            "store: postgres\npath: x.db\nwait: forever\nexpiry: 0s\npostgres: {table: 'Bad-Name'}\ntargets: ['']\n",
        )
        .unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|(p, _)| p.as_str()).collect();
        for want in [
            "approvals.wait",
            "approvals.expiry",
            "approvals.path",
            "approvals.postgres.table",
            "approvals.postgres.url",
            "approvals.targets[0]",
        ] {
            assert!(paths.contains(&want), "{want} missing from {errs:?}");
        }
        let errs = resolve("store: etcd").unwrap_err();
        assert_eq!(errs[0].0, "approvals.store");
        let errs = resolve("wait: 1h\nexpiry: 10m").unwrap_err();
        assert!(
            errs[0].1.contains("longer than approvals.expiry"),
            "{errs:?}"
        );
    }

    #[test]
    fn the_postgres_url_is_a_reference_to_resolve_and_never_printed() {
        let mut s = resolve("postgres: {url: 'env:PG'}").expect("valid");
        assert_eq!(
            s.postgres_url_reference(),
            Some(("approvals.postgres.url", "env:PG"))
        );
        s.set_postgres_url("postgres://u:hunter2@127.0.0.1/test".into());
        assert!(s.postgres_url_reference().is_none());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
