//! The `audit:` section of `warden.yaml`: [`RawAudit`] as written (serde,
//! unknown keys refused), resolved into validated [`AuditSettings`]. Every
//! problem is reported with its path (`audit.sinks.jsonl.rotate_size`), all
//! at once.
//!
//! ```yaml
//! audit:
//!   enabled: true                        # false: `warden serve` keeps no trail at all
//!   sinks:                               # default: jsonl + sqlite under .warden/audit
//!     jsonl: { path: audit/audit.jsonl, rotate_size: 64MiB, rotate_keep: 20 }
//!     sqlite: { path: audit/audit.db, retention: { max_size: 4GiB } }
//!     postgres: { url: env:WARDEN_AUDIT_DATABASE_URL, table: warden_audit, chain: replica-1,
//!                 connect_timeout: 5s, statement_timeout: 5s }
//!     stdout: false
//!   retention: { max_age: 90d, max_size: 10GiB, interval: 1m }   # every sink; a sink's own wins
//!   durability: { low: async, medium: async, high: sync, critical: sync, other: async,
//!                 async_commit: 100ms }
//!   queue_capacity: 8192
//!   batch_max: 512
//!   journal: audit/journal
//!   checkpoint: { signing_key: audit/checkpoint.key, every: 1000, interval: 60s }
//!   arguments: omit                      # omit | redacted
//!   auth_failures: { per_source: 5, window: 1m }
//!   anomaly:
//!     burst: { max_calls: 20, window: 1s }
//!     off_hours: { hours: "08:00-19:00", days: [mon, tue, wed, thu, fri],
//!                  utc_offset: "+01:00", risk_tiers: [high, critical], tools: [] }
//!     token_reuse: { window: 5m }
//! ```
//!
//! Relative paths resolve against the configuration file's directory. The
//! PostgreSQL URL is a secret reference (`env:NAME`, `file:PATH`) that the
//! caller resolves with the configuration's secret source
//! ([`AuditSettings::postgres_url_reference`] →
//! [`AuditSettings::set_postgres_url`]); a literal URL is accepted only
//! without a password.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::event::RiskTier;

/// Path of a problem in the file, and what is wrong.
pub type SettingsErrors = Vec<(String, String)>;

// ----- the file as written --------------------------------------------------

/// The `audit:` section as written. Every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// `false`: `warden serve` and `warden stdio` keep no audit trail at
    /// all (benchmarks of the bare proxy, throwaway setups). Default `true`.
    pub enabled: Option<bool>,
    /// Where records go. Absent: JSONL and SQLite under `.warden/audit`.
    pub sinks: Option<RawSinks>,
    /// `sync` or `async` per risk tier (and `other` for events without one).
    pub durability: Option<RawDurability>,
    /// Events waiting for the writer before `record` spills to the journal
    /// (default 8192).
    pub queue_capacity: Option<u64>,
    /// Most events the writer takes per batch (default 512).
    pub batch_max: Option<u64>,
    /// Journal directory (default `.warden/audit/journal`).
    pub journal: Option<String>,
    pub checkpoint: Option<RawCheckpoint>,
    /// `omit` (default) or `redacted`: whether call arguments are kept in
    /// records (after redaction of sensitive keys and of every secret the
    /// installed detector finds).
    pub arguments: Option<String>,
    /// How much every sink keeps (a sink's own `retention` wins, key by
    /// key), and how often it is applied.
    pub retention: Option<RawRetention>,
    pub auth_failures: Option<RawAuthFailures>,
    pub anomaly: Option<RawAnomaly>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSinks {
    pub jsonl: Option<RawJsonl>,
    pub sqlite: Option<RawSqlite>,
    pub postgres: Option<RawPostgres>,
    /// Every record as a line on standard output (for a log collector).
    pub stdout: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJsonl {
    /// The active file (default `.warden/audit/audit.jsonl`).
    pub path: Option<String>,
    /// Rotate when the active file reaches this size (`64MiB`, bytes as an
    /// integer; default 64 MiB).
    pub rotate_size: Option<RawSize>,
    /// Rotated files kept (default 20; 0 keeps all).
    pub rotate_keep: Option<u64>,
    pub retention: Option<RawSinkRetention>,
}

/// `audit.retention`: the default retention of every sink.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// Records older than this go (`90d`, `12h`; `off`: no age limit).
    pub max_age: Option<RawAge>,
    /// The oldest records go while the sink is larger (`10GiB`; `off`).
    pub max_size: Option<RawSize>,
    /// How often retention runs (default `1m`; JSONL also at each rotation).
    pub interval: Option<String>,
}

/// `audit.sinks.<sink>.retention`: overrides `audit.retention` key by key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSinkRetention {
    pub max_age: Option<RawAge>,
    pub max_size: Option<RawSize>,
}

/// A size: bytes as an integer or text with a unit (`512KiB`, `64MiB`,
/// `1GB`); for a retention limit also `off` (which YAML 1.1 readers may
/// hand over as `false`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    Bytes(u64),
    Text(String),
    Flag(bool),
}

/// A retention age: a duration (`90d`) or `off` (`false`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawAge {
    Text(String),
    Flag(bool),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSqlite {
    /// Database file (default `.warden/audit/audit.db`).
    pub path: Option<String>,
    /// Default `max_size: 4GiB`.
    pub retention: Option<RawSinkRetention>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    /// `env:NAME` or `file:PATH` holding a libpq URL or conninfo; a literal
    /// URL only without a password.
    pub url: Option<String>,
    /// Table (default `warden_audit`); created if missing.
    pub table: Option<String>,
    /// This replica's chain name: every replica keeps its own chain
    /// (default: the host name).
    pub chain: Option<String>,
    /// Connecting (TCP and the PostgreSQL handshake) gives up after this
    /// (default `5s`).
    pub connect_timeout: Option<String>,
    /// Each statement gives up after this, on the server and, should the
    /// network hang, on Warden's side (default `5s`).
    pub statement_timeout: Option<String>,
    pub retention: Option<RawSinkRetention>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDurability {
    pub low: Option<String>,
    pub medium: Option<String>,
    pub high: Option<String>,
    pub critical: Option<String>,
    /// Events without a risk tier (lifecycle, lists).
    pub other: Option<String>,
    /// `async` records are fsync'd in the journal at most this long after
    /// the writer appended them (group commit; default `100ms`).
    pub async_commit: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheckpoint {
    /// Ed25519 PKCS#8 PEM key; generated when missing (default
    /// `.warden/audit/checkpoint.key`, public key at `<path>.pub`).
    pub signing_key: Option<String>,
    /// A checkpoint after this many records (default 1000).
    pub every: Option<u64>,
    /// And at least this often while records arrive (default `60s`).
    pub interval: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthFailures {
    /// Records per source address per window (default 5); the rest are
    /// counted into the next record's `suppressed`.
    pub per_source: Option<u64>,
    pub window: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnomaly {
    pub burst: Option<RawBurst>,
    pub off_hours: Option<RawOffHours>,
    pub token_reuse: Option<RawTokenReuse>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBurst {
    /// Default true.
    pub enabled: Option<bool>,
    /// Alert when one principal makes more calls than this … (default 20)
    pub max_calls: Option<u64>,
    /// … within this window (default `1s`).
    pub window: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOffHours {
    /// Default true when the section is present.
    pub enabled: Option<bool>,
    /// Business hours, `HH:MM-HH:MM` local time (default `08:00-19:00`).
    pub hours: Option<String>,
    /// Business days (default `[mon, tue, wed, thu, fri]`).
    pub days: Option<Vec<String>>,
    /// Local time's offset from UTC, `+HH:MM` / `-HH:MM` (default `+00:00`).
    pub utc_offset: Option<String>,
    /// Sensitive tiers (default `[high, critical]`).
    pub risk_tiers: Option<Vec<String>>,
    /// Sensitive tools by exposed name (`server__tool`) or tool name.
    pub tools: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokenReuse {
    /// Default true.
    pub enabled: Option<bool>,
    /// Alert when one token id is seen from two client addresses within
    /// this window (default `5m`).
    pub window: Option<String>,
}

// ----- validated ------------------------------------------------------------

/// Validated audit settings.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// `audit.enabled`: `false` keeps no trail (the binary starts no writer).
    pub enabled: bool,
    pub jsonl: Option<JsonlSettings>,
    pub sqlite: Option<SqliteSettings>,
    pub postgres: Option<PostgresSettings>,
    pub stdout: bool,
    pub durability: DurabilityPolicy,
    pub queue_capacity: usize,
    pub batch_max: usize,
    pub journal_dir: PathBuf,
    pub checkpoint: CheckpointSettings,
    pub arguments: ArgumentsPolicy,
    pub auth_failures: AuthFailureLimit,
    pub anomaly: AnomalySettings,
    /// How often each sink's retention runs.
    pub retention_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct JsonlSettings {
    pub path: PathBuf,
    pub rotate_bytes: u64,
    /// 0 keeps every rotated file.
    pub rotate_keep: usize,
    pub retention: RetentionSettings,
}

#[derive(Debug, Clone)]
pub struct SqliteSettings {
    pub path: PathBuf,
    pub retention: RetentionSettings,
}

#[derive(Debug, Clone)]
pub struct PostgresSettings {
    pub url: PostgresUrl,
    pub table: String,
    pub chain: String,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
    pub retention: RetentionSettings,
}

impl PostgresSettings {
    /// A sink for `table`/`chain` at `url` with default timeouts and no
    /// retention (tests and tools).
    pub fn new(url: PostgresUrl, table: &str, chain: &str) -> PostgresSettings {
        PostgresSettings {
            url,
            table: table.to_owned(),
            chain: chain.to_owned(),
            connect_timeout: DEFAULT_PG_TIMEOUT,
            statement_timeout: DEFAULT_PG_TIMEOUT,
            retention: RetentionSettings::default(),
        }
    }
}

/// How much of a sink retention keeps. Both limits apply; none means the
/// sink keeps everything. Pruning removes whole prefixes of the chain,
/// cut at a signed checkpoint (JSONL: whole rotated files, each of which
/// starts with one), and is announced by a chained `retention` record
/// first, so `verify` starts from the oldest kept checkpoint and reports
/// the pruned history as pruned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Records older than this go.
    pub max_age: Option<Duration>,
    /// The oldest records go while the sink is larger than this (bytes):
    /// JSONL, the files; SQLite, the pages in use; PostgreSQL, the record
    /// text of this replica's chain (an estimate from recent rows).
    pub max_size: Option<u64>,
}

impl RetentionSettings {
    pub fn is_unlimited(&self) -> bool {
        self.max_age.is_none() && self.max_size.is_none()
    }
}

/// The PostgreSQL connection string, or the reference the caller must
/// resolve. `Debug` never prints a resolved value.
#[derive(Clone, PartialEq, Eq)]
pub enum PostgresUrl {
    /// `env:NAME` / `file:PATH`, not yet resolved.
    Reference(String),
    Resolved(String),
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostgresUrl::Reference(r) => write!(f, "Reference({r:?})"),
            PostgresUrl::Resolved(_) => f.write_str("Resolved([secret])"),
        }
    }
}

/// Whether a record must be durable before the response is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `record_durable`: fsync'd in the journal before it returns.
    Sync,
    /// `record`: a queue push. The writer appends it to the journal when
    /// it takes it from the queue (at most 1 ms of batching, plus whatever
    /// queued before it); from then on it survives the process being
    /// killed. It is fsync'd — survives a power loss — at most
    /// [`DurabilityPolicy::async_commit`] later.
    Async,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurabilityPolicy {
    /// Indexed by tier: low, medium, high, critical.
    pub tiers: [Durability; 4],
    pub other: Durability,
    /// Longest time between the journal append of an `async` record and
    /// its fsync (group commit).
    pub async_commit: Duration,
}

impl DurabilityPolicy {
    pub fn for_tier(&self, tier: Option<RiskTier>) -> Durability {
        match tier {
            Some(t) => self.tiers[t as usize],
            None => self.other,
        }
    }
}

impl Default for DurabilityPolicy {
    fn default() -> Self {
        use Durability::{Async, Sync};
        DurabilityPolicy {
            tiers: [Async, Async, Sync, Sync],
            other: Async,
            async_commit: DEFAULT_ASYNC_COMMIT,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CheckpointSettings {
    pub signing_key: PathBuf,
    pub every_records: u64,
    pub interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgumentsPolicy {
    Omit,
    Redacted,
}

#[derive(Debug, Clone, Copy)]
pub struct AuthFailureLimit {
    pub per_source: u64,
    pub window: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct AnomalySettings {
    pub burst: Option<BurstRule>,
    pub off_hours: Option<OffHoursRule>,
    pub token_reuse: Option<TokenReuseRule>,
}

#[derive(Debug, Clone, Copy)]
pub struct BurstRule {
    pub max_calls: u64,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub struct OffHoursRule {
    /// Minutes after local midnight: [start, end).
    pub start_minute: u32,
    pub end_minute: u32,
    /// Bit i set: day i is a business day (0 = Monday).
    pub days: u8,
    pub utc_offset_minutes: i32,
    pub risk_tiers: Vec<RiskTier>,
    pub tools: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct TokenReuseRule {
    pub window: Duration,
}

impl AuditSettings {
    /// The settings for `dir` with every default: JSONL and SQLite under
    /// `dir`, journal and key there too. For tests and tools.
    pub fn in_dir(dir: &Path) -> AuditSettings {
        let raw = RawAudit {
            journal: Some(dir.join("journal").to_string_lossy().into_owned()),
            sinks: Some(RawSinks {
                jsonl: Some(RawJsonl {
                    path: Some(dir.join("audit.jsonl").to_string_lossy().into_owned()),
                    ..RawJsonl::default()
                }),
                sqlite: Some(RawSqlite {
                    path: Some(dir.join("audit.db").to_string_lossy().into_owned()),
                    ..RawSqlite::default()
                }),
                ..RawSinks::default()
            }),
            checkpoint: Some(RawCheckpoint {
                signing_key: Some(dir.join("checkpoint.key").to_string_lossy().into_owned()),
                ..RawCheckpoint::default()
            }),
            ..RawAudit::default()
        };
        // The defaults are valid by construction (tested).
        match raw.resolve(dir) {
            Ok(s) => s,
            Err(errors) => unreachable_defaults(errors),
        }
    }

    /// The reference to resolve when a PostgreSQL sink is configured with
    /// `env:`/`file:`: `(path in the file, reference)`.
    pub fn postgres_url_reference(&self) -> Option<(&'static str, &str)> {
        match &self.postgres {
            Some(PostgresSettings {
                url: PostgresUrl::Reference(r),
                ..
            }) => Some(("audit.sinks.postgres.url", r.as_str())),
            _ => None,
        }
    }

    /// Supplies the resolved PostgreSQL URL.
    pub fn set_postgres_url(&mut self, url: String) {
        if let Some(pg) = &mut self.postgres {
            pg.url = PostgresUrl::Resolved(url);
        }
    }

    pub fn durability_for(&self, tier: Option<RiskTier>) -> Durability {
        self.durability.for_tier(tier)
    }

    /// The JSONL files of the trail, oldest first (rotated ones, then the
    /// active file), for `verify` and `tail`.
    pub fn jsonl_files(&self) -> Vec<PathBuf> {
        self.jsonl
            .as_ref()
            .map(|j| crate::sink::jsonl::files(&j.path))
            .unwrap_or_default()
    }

    /// The trail of one `warden stdio` process that found this trail held
    /// by another Warden: the same sinks, key and policies, in
    /// `<audit dir>/stdio-<pid>/` (the PostgreSQL sink, if any, is shared:
    /// each writer keeps its own chain there). [`AuditSettings::process_trails`]
    /// finds them again for `warden audit query` and `verify`.
    pub fn for_process(&self, pid: u32) -> AuditSettings {
        self.relocated_to(
            &self
                .process_trails_dir()
                .join(format!("{PROCESS_TRAIL_PREFIX}{pid}")),
        )
    }

    /// Every process trail kept beside this one, oldest directory name
    /// first: what `warden audit query` and `verify` read besides the main
    /// trail, so that every record of a deployment is reachable.
    pub fn process_trails(&self) -> Vec<(String, AuditSettings)> {
        let Ok(entries) = std::fs::read_dir(self.process_trails_dir()) else {
            return Vec::new();
        };
        let mut found: Vec<(String, AuditSettings)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let pid = name.strip_prefix(PROCESS_TRAIL_PREFIX)?;
                pid.parse::<u32>().ok()?;
                Some((name, self.relocated_to(&e.path())))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    fn process_trails_dir(&self) -> PathBuf {
        self.journal_dir
            .parent()
            .unwrap_or(&self.journal_dir)
            .to_path_buf()
    }

    fn relocated_to(&self, base: &Path) -> AuditSettings {
        let mut own = self.clone();
        own.journal_dir = base.join("journal");
        if let Some(j) = own.jsonl.as_mut() {
            j.path = base.join("audit.jsonl");
        }
        if let Some(s) = own.sqlite.as_mut() {
            s.path = base.join("audit.db");
        }
        own
    }
}

/// `stdio-<pid>`: the directory of one `warden stdio` process's own trail.
const PROCESS_TRAIL_PREFIX: &str = "stdio-";

fn unreachable_defaults(errors: SettingsErrors) -> AuditSettings {
    // Only reachable if a default above is invalid, which the tests rule out;
    // fail loudly rather than run without an audit trail.
    panic!("built-in audit defaults are invalid: {errors:?}")
}

impl RawAudit {
    /// Validates and fills defaults. Relative paths resolve against
    /// `base_dir` (the configuration file's directory).
    pub fn resolve(self, base_dir: &Path) -> Result<AuditSettings, SettingsErrors> {
        let mut r = Resolver {
            base_dir,
            errors: Vec::new(),
        };
        let data = base_dir.join(".warden").join("audit");
        let default_path = |name: &str| data.join(name);

        let raw_retention = self.retention.unwrap_or_default();
        let defaults = r.retention_level(
            "audit.retention",
            raw_retention.max_age.as_ref(),
            raw_retention.max_size.as_ref(),
        );
        let retention_interval = r
            .duration(raw_retention.interval, "audit.retention.interval")
            .unwrap_or(DEFAULT_RETENTION_INTERVAL);

        let (jsonl, sqlite, postgres, stdout) = match self.sinks {
            None => (
                Some(RawJsonl::default()),
                Some(RawSqlite::default()),
                None,
                false,
            ),
            Some(sinks) => {
                let stdout = sinks.stdout.unwrap_or(false);
                if sinks.jsonl.is_none()
                    && sinks.sqlite.is_none()
                    && sinks.postgres.is_none()
                    && !stdout
                {
                    r.error(
                        "audit.sinks",
                        "at least one sink is needed (jsonl, sqlite, postgres or stdout)",
                    );
                }
                (sinks.jsonl, sinks.sqlite, sinks.postgres, stdout)
            }
        };
        let jsonl = jsonl.map(|j| {
            let rotate_bytes = j
                .rotate_size
                .and_then(|s| r.size(&s, "audit.sinks.jsonl.rotate_size"))
                .unwrap_or(DEFAULT_ROTATE_BYTES);
            let (retention, size_path) = r.sink_retention(
                "audit.sinks.jsonl.retention",
                j.retention.as_ref(),
                &defaults,
                RetentionSettings::default(),
            );
            if let Some(max) = retention.max_size {
                if max < 2 * rotate_bytes {
                    r.error(
                        &size_path,
                        &format!(
                            "must be at least twice audit.sinks.jsonl.rotate_size ({rotate_bytes} bytes): the active file alone grows to that size"
                        ),
                    );
                }
            }
            JsonlSettings {
                path: r.path(
                    j.path,
                    "audit.sinks.jsonl.path",
                    default_path("audit.jsonl"),
                ),
                rotate_bytes,
                rotate_keep: j
                    .rotate_keep
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                    .unwrap_or(DEFAULT_ROTATE_KEEP),
                retention,
            }
        });
        let sqlite = sqlite.map(|s| SqliteSettings {
            path: r.path(s.path, "audit.sinks.sqlite.path", default_path("audit.db")),
            retention: r
                .sink_retention(
                    "audit.sinks.sqlite.retention",
                    s.retention.as_ref(),
                    &defaults,
                    RetentionSettings {
                        max_age: None,
                        max_size: Some(DEFAULT_SQLITE_MAX_SIZE),
                    },
                )
                .0,
        });
        let postgres = postgres.and_then(|p| r.postgres(p, &defaults));

        let durability = self.durability.map(|d| r.durability(d)).unwrap_or_default();
        let queue_capacity = r.count(
            self.queue_capacity,
            "audit.queue_capacity",
            8192,
            1,
            1 << 24,
        );
        let batch_max = r.count(self.batch_max, "audit.batch_max", 512, 1, 1 << 20);
        let journal_dir = r.path(self.journal, "audit.journal", default_path("journal"));

        let cp = self.checkpoint.unwrap_or_default();
        let checkpoint = CheckpointSettings {
            signing_key: r.path(
                cp.signing_key,
                "audit.checkpoint.signing_key",
                default_path("checkpoint.key"),
            ),
            every_records: r.count(
                cp.every,
                "audit.checkpoint.every",
                1000,
                1,
                u64::MAX as usize,
            ) as u64,
            interval: r
                .duration(cp.interval, "audit.checkpoint.interval")
                .unwrap_or(Duration::from_secs(60)),
        };

        let arguments = match self.arguments.as_deref() {
            None | Some("omit") => ArgumentsPolicy::Omit,
            Some("redacted") => ArgumentsPolicy::Redacted,
            Some(other) => {
                r.error(
                    "audit.arguments",
                    &format!("expected omit or redacted, not {other:?}"),
                );
                ArgumentsPolicy::Omit
            }
        };

        let af = self.auth_failures.unwrap_or_default();
        let auth_failures = AuthFailureLimit {
            per_source: r.count(
                af.per_source,
                "audit.auth_failures.per_source",
                5,
                1,
                1 << 20,
            ) as u64,
            window: r
                .duration(af.window, "audit.auth_failures.window")
                .unwrap_or(Duration::from_secs(60)),
        };

        let anomaly = r.anomaly(self.anomaly.unwrap_or_default());

        if r.errors.is_empty() {
            Ok(AuditSettings {
                enabled: self.enabled.unwrap_or(true),
                jsonl,
                sqlite,
                postgres,
                stdout,
                durability,
                queue_capacity,
                batch_max,
                journal_dir,
                checkpoint,
                arguments,
                auth_failures,
                anomaly,
                retention_interval,
            })
        } else {
            Err(r.errors)
        }
    }
}

const DEFAULT_ROTATE_BYTES: u64 = 64 * 1024 * 1024;
const DEFAULT_ROTATE_KEEP: usize = 20;
const DEFAULT_SQLITE_MAX_SIZE: u64 = 4 * 1024 * 1024 * 1024;
const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_PG_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_ASYNC_COMMIT: Duration = Duration::from_millis(100);
/// The smallest `max_size` worth pruning to.
const MIN_RETENTION_SIZE: u64 = 1024 * 1024;

/// A retention limit as written: absent, `off`, or a value.
enum Limit<T> {
    Unset,
    Off,
    Value(T),
}

/// Retention limits as written at one level (`audit.retention` or a sink's).
struct RetentionLevel {
    max_age: Limit<Duration>,
    max_size: Limit<u64>,
    /// Where `max_size` was written, for a later error about it.
    size_path: String,
}

struct Resolver<'a> {
    base_dir: &'a Path,
    errors: SettingsErrors,
}

impl Resolver<'_> {
    fn error(&mut self, path: &str, message: &str) {
        self.errors.push((path.to_owned(), message.to_owned()));
    }

    fn path(&mut self, value: Option<String>, path: &str, default: PathBuf) -> PathBuf {
        match value {
            None => default,
            Some(v) if v.trim().is_empty() => {
                self.error(path, "must not be empty");
                default
            }
            Some(v) => self.base_dir.join(v),
        }
    }

    fn count(
        &mut self,
        value: Option<u64>,
        path: &str,
        default: usize,
        min: usize,
        max: usize,
    ) -> usize {
        match value {
            None => default,
            Some(n) => match usize::try_from(n) {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    self.error(path, &format!("must be between {min} and {max}"));
                    default
                }
            },
        }
    }

    fn duration(&mut self, value: Option<String>, path: &str) -> Option<Duration> {
        let text = value?;
        match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                self.error(path, "must be longer than zero");
                None
            }
            Err(_) => {
                self.error(
                    path,
                    &format!("expected a duration like 30s or 5m, not {text:?}"),
                );
                None
            }
        }
    }

    fn size(&mut self, value: &RawSize, path: &str) -> Option<u64> {
        let bytes = match value {
            RawSize::Bytes(n) => Some(*n),
            RawSize::Text(t) => parse_size(t),
            RawSize::Flag(_) => None,
        };
        match bytes {
            Some(n) if n >= 4096 => Some(n),
            Some(_) => {
                self.error(path, "must be at least 4KiB");
                None
            }
            None => {
                self.error(
                    path,
                    "expected a size like 64MiB, 500KB or a number of bytes",
                );
                None
            }
        }
    }

    fn durability(&mut self, raw: RawDurability) -> DurabilityPolicy {
        let mut policy = DurabilityPolicy::default();
        let entries = [
            (raw.low, "low", Some(RiskTier::Low)),
            (raw.medium, "medium", Some(RiskTier::Medium)),
            (raw.high, "high", Some(RiskTier::High)),
            (raw.critical, "critical", Some(RiskTier::Critical)),
            (raw.other, "other", None),
        ];
        if let Some(text) = raw.async_commit {
            match humantime::parse_duration(text.trim()) {
                Ok(d) if d >= Duration::from_millis(1) && d <= Duration::from_secs(10) => {
                    policy.async_commit = d
                }
                _ => self.error(
                    "audit.durability.async_commit",
                    &format!("expected a duration from 1ms to 10s, like 100ms, not {text:?}"),
                ),
            }
        }
        for (value, name, tier) in entries {
            let Some(value) = value else { continue };
            let d = match value.as_str() {
                "sync" => Durability::Sync,
                "async" => Durability::Async,
                other => {
                    self.error(
                        &format!("audit.durability.{name}"),
                        &format!("expected sync or async, not {other:?}"),
                    );
                    continue;
                }
            };
            match tier {
                Some(t) => policy.tiers[t as usize] = d,
                None => policy.other = d,
            }
        }
        policy
    }

    /// One level of retention limits, checked.
    fn retention_level(
        &mut self,
        path: &str,
        max_age: Option<&RawAge>,
        max_size: Option<&RawSize>,
    ) -> RetentionLevel {
        let age_path = format!("{path}.max_age");
        let size_path = format!("{path}.max_size");
        let max_age = match max_age {
            None => Limit::Unset,
            Some(RawAge::Flag(false)) => Limit::Off,
            Some(RawAge::Flag(true)) => {
                self.error(&age_path, "expected a duration like 90d, or off");
                Limit::Unset
            }
            Some(RawAge::Text(t)) if matches!(t.trim(), "off" | "none") => Limit::Off,
            Some(RawAge::Text(text)) => match humantime::parse_duration(text.trim()) {
                Ok(d) if d >= Duration::from_secs(1) => Limit::Value(d),
                Ok(_) => {
                    self.error(&age_path, "must be at least 1s");
                    Limit::Unset
                }
                Err(_) => {
                    self.error(
                        &age_path,
                        &format!("expected a duration like 90d or 12h, or off, not {text:?}"),
                    );
                    Limit::Unset
                }
            },
        };
        let max_size = match max_size {
            None => Limit::Unset,
            Some(RawSize::Flag(false)) => Limit::Off,
            Some(RawSize::Text(t)) if matches!(t.trim(), "off" | "none") => Limit::Off,
            Some(raw) => {
                let bytes = match raw {
                    RawSize::Bytes(n) => Some(*n),
                    RawSize::Text(t) => parse_size(t),
                    RawSize::Flag(_) => None,
                };
                match bytes {
                    Some(n) if n >= MIN_RETENTION_SIZE => Limit::Value(n),
                    Some(_) => {
                        self.error(&size_path, "must be at least 1MiB");
                        Limit::Unset
                    }
                    None => {
                        self.error(
                            &size_path,
                            "expected a size like 10GiB, 500MB or a number of bytes, or off",
                        );
                        Limit::Unset
                    }
                }
            }
        };
        RetentionLevel {
            max_age,
            max_size,
            size_path,
        }
    }

    /// A sink's retention: its own keys, else `audit.retention`'s, else
    /// the sink's built-in default. Also returns where `max_size` came from.
    fn sink_retention(
        &mut self,
        path: &str,
        raw: Option<&RawSinkRetention>,
        defaults: &RetentionLevel,
        builtin: RetentionSettings,
    ) -> (RetentionSettings, String) {
        let own = self.retention_level(
            path,
            raw.and_then(|r| r.max_age.as_ref()),
            raw.and_then(|r| r.max_size.as_ref()),
        );
        let max_age = match (&own.max_age, &defaults.max_age) {
            (Limit::Value(d), _) => Some(*d),
            (Limit::Off, _) => None,
            (Limit::Unset, Limit::Value(d)) => Some(*d),
            (Limit::Unset, Limit::Off) => None,
            (Limit::Unset, Limit::Unset) => builtin.max_age,
        };
        let (max_size, size_path) = match (&own.max_size, &defaults.max_size) {
            (Limit::Value(n), _) => (Some(*n), own.size_path.clone()),
            (Limit::Off, _) => (None, own.size_path.clone()),
            (Limit::Unset, Limit::Value(n)) => (Some(*n), defaults.size_path.clone()),
            (Limit::Unset, Limit::Off) => (None, defaults.size_path.clone()),
            (Limit::Unset, Limit::Unset) => (builtin.max_size, own.size_path.clone()),
        };
        (RetentionSettings { max_age, max_size }, size_path)
    }

    /// A timeout of the PostgreSQL sink: 100ms to 10m.
    fn timeout(&mut self, value: Option<String>, path: &str) -> Duration {
        let Some(text) = value else {
            return DEFAULT_PG_TIMEOUT;
        };
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d >= Duration::from_millis(100) && d <= Duration::from_secs(600) => d,
            _ => {
                self.error(
                    path,
                    &format!("expected a duration from 100ms to 10m, like 5s, not {text:?}"),
                );
                DEFAULT_PG_TIMEOUT
            }
        }
    }

    fn postgres(
        &mut self,
        raw: RawPostgres,
        defaults: &RetentionLevel,
    ) -> Option<PostgresSettings> {
        let retention = self
            .sink_retention(
                "audit.sinks.postgres.retention",
                raw.retention.as_ref(),
                defaults,
                RetentionSettings::default(),
            )
            .0;
        let connect_timeout =
            self.timeout(raw.connect_timeout, "audit.sinks.postgres.connect_timeout");
        let statement_timeout = self.timeout(
            raw.statement_timeout,
            "audit.sinks.postgres.statement_timeout",
        );
        let url = match raw.url {
            None => {
                self.error("audit.sinks.postgres.url", "required");
                return None;
            }
            Some(u) if u.starts_with("env:") || u.starts_with("file:") => PostgresUrl::Reference(u),
            Some(u) if postgres_url_has_password(&u) => {
                self.error(
                    "audit.sinks.postgres.url",
                    "secrets must be referenced (env:NAME or file:PATH), not inlined",
                );
                return None;
            }
            Some(u) => PostgresUrl::Resolved(u),
        };
        let table = raw.table.unwrap_or_else(|| "warden_audit".to_owned());
        if !is_identifier(&table) {
            self.error(
                "audit.sinks.postgres.table",
                "must be a lowercase SQL identifier ([a-z_][a-z0-9_]{0,62})",
            );
        }
        let chain = raw.chain.unwrap_or_else(default_chain_name);
        if chain.is_empty() || chain.len() > 128 {
            self.error("audit.sinks.postgres.chain", "must be 1 to 128 characters");
        }
        Some(PostgresSettings {
            url,
            table,
            chain,
            connect_timeout,
            statement_timeout,
            retention,
        })
    }

    fn anomaly(&mut self, raw: RawAnomaly) -> AnomalySettings {
        let burst_raw = raw.burst.unwrap_or_default();
        let burst = burst_raw.enabled.unwrap_or(true).then(|| BurstRule {
            max_calls: self.count(
                burst_raw.max_calls,
                "audit.anomaly.burst.max_calls",
                20,
                1,
                1 << 20,
            ) as u64,
            window: self
                .duration(burst_raw.window, "audit.anomaly.burst.window")
                .unwrap_or(Duration::from_secs(1)),
        });
        let reuse_raw = raw.token_reuse.unwrap_or_default();
        let token_reuse = reuse_raw.enabled.unwrap_or(true).then(|| TokenReuseRule {
            window: self
                .duration(reuse_raw.window, "audit.anomaly.token_reuse.window")
                .unwrap_or(Duration::from_secs(300)),
        });
        let off_hours = raw
            .off_hours
            .filter(|o| o.enabled.unwrap_or(true))
            .map(|o| self.off_hours(o));
        AnomalySettings {
            burst,
            off_hours,
            token_reuse,
        }
    }

    fn off_hours(&mut self, raw: RawOffHours) -> OffHoursRule {
        let p = "audit.anomaly.off_hours";
        let (start_minute, end_minute) = match raw.hours.as_deref().map(parse_hours) {
            None => (8 * 60, 19 * 60),
            Some(Some(h)) => h,
            Some(None) => {
                self.error(
                    &format!("{p}.hours"),
                    "expected HH:MM-HH:MM, e.g. 08:00-19:00",
                );
                (8 * 60, 19 * 60)
            }
        };
        let mut days = 0b0001_1111u8;
        if let Some(list) = raw.days {
            days = 0;
            for (i, d) in list.iter().enumerate() {
                match ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                    .iter()
                    .position(|n| d.eq_ignore_ascii_case(n))
                {
                    Some(bit) => days |= 1 << bit,
                    None => self.error(
                        &format!("{p}.days[{i}]"),
                        "expected mon, tue, wed, thu, fri, sat or sun",
                    ),
                }
            }
        }
        let utc_offset_minutes = match raw.utc_offset.as_deref().map(parse_offset) {
            None => 0,
            Some(Some(m)) => m,
            Some(None) => {
                self.error(&format!("{p}.utc_offset"), "expected +HH:MM or -HH:MM");
                0
            }
        };
        let mut risk_tiers = vec![RiskTier::High, RiskTier::Critical];
        if let Some(list) = raw.risk_tiers {
            risk_tiers.clear();
            for (i, t) in list.iter().enumerate() {
                match RiskTier::parse(t) {
                    Some(t) => risk_tiers.push(t),
                    None => self.error(
                        &format!("{p}.risk_tiers[{i}]"),
                        "expected low, medium, high or critical",
                    ),
                }
            }
        }
        OffHoursRule {
            start_minute,
            end_minute,
            days,
            utc_offset_minutes,
            risk_tiers,
            tools: raw.tools.unwrap_or_default(),
        }
    }
}

/// `64MiB`, `500KB`, `1 GiB`, `4096`.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1000,
        "kib" => 1024,
        "mb" | "m" => 1000 * 1000,
        "mib" => 1024 * 1024,
        "gb" | "g" => 1000 * 1000 * 1000,
        "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn parse_hhmm(t: &str) -> Option<u32> {
    let (h, m) = t.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

fn parse_hours(t: &str) -> Option<(u32, u32)> {
    let (a, b) = t.split_once('-')?;
    let (a, b) = (parse_hhmm(a)?, parse_hhmm(b)?);
    (a != b).then_some((a, b))
}

fn parse_offset(t: &str) -> Option<i32> {
    let t = t.trim();
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return None,
    };
    let m = parse_hhmm(rest)?;
    (m <= 14 * 60).then_some(sign * m as i32)
}

fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && s.len() <= 63
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

fn postgres_url_has_password(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if lower.contains("password=") {
        return true;
    }
    // scheme://user:password@host
    match lower.split_once("://") {
        Some((_, rest)) => {
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            authority
                .rsplit_once('@')
                .is_some_and(|(userinfo, _)| userinfo.contains(':'))
        }
        None => false,
    }
}

fn default_chain_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "warden".to_owned())
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
