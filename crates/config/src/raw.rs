//! The file as written: serde structs that mirror the YAML shape one to one.
//!
//! Every struct denies unknown fields, and every field is optional so that a
//! missing key means "use the default". Leaf values that need interpretation
//! (durations, sizes, addresses, names) stay strings here: resolving them in
//! [`crate::resolve`] lets one run report every bad value with its path,
//! instead of stopping at the first one as serde would.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use crate::error::ConfigError;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub listen: Option<RawListen>,
    pub gateway: Option<RawGateway>,
    pub servers: Option<OrderedMap<Option<RawServer>>>,
    pub virtual_servers: Option<OrderedMap<Option<RawVirtualServer>>>,
    pub stdio: Option<RawStdio>,
    pub identity: Option<warden_identity::RawIdentity>,
    pub guards: Option<warden_guard::RawGuards>,
    pub authorization: Option<warden_policy::RawAuthorization>,
    pub audit: Option<warden_audit::RawAudit>,
    pub telemetry: Option<warden_telemetry::RawTelemetry>,
    pub limits: Option<warden_limits::RawLimits>,
    pub approvals: Option<warden_approvals::RawApprovals>,
    pub tls: Option<warden_identity::RawTls>,
    pub registry: Option<RawRegistry>,
    pub sandbox: Option<crate::sandbox::RawSandbox>,
    pub credentials: Option<warden_credentials::RawIssuer>,
}

/// `registry:` — the tool registry (pinned manifests, `warden.lock`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegistry {
    pub lock: Option<String>,
    pub mode: Option<String>,
    pub revalidate_after: Option<String>,
    pub scanner: Option<RawScanner>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScanner {
    pub warn_at: Option<String>,
    pub block_at: Option<String>,
    pub block_on_distinct_rules: Option<String>,
    pub disabled_rules: Option<Vec<String>>,
    pub classifier: Option<RawClassifier>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClassifier {
    pub url: Option<String>,
    pub timeout: Option<String>,
    pub threshold: Option<String>,
    pub labels: Option<Vec<String>>,
    pub on_error: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListen {
    pub addr: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub legacy_sse: Option<bool>,
    pub max_connections: Option<String>,
    pub max_connections_per_ip: Option<String>,
    pub header_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub body_min_rate: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGateway {
    pub name: Option<String>,
    pub separator: Option<String>,
    pub max_body_bytes: Option<String>,
    pub max_depth: Option<String>,
    pub max_upstream_message_bytes: Option<String>,
    pub session_idle_timeout: Option<String>,
    pub replay_buffer_events: Option<String>,
    pub max_sessions: Option<String>,
    pub max_sessions_per_principal: Option<String>,
    pub max_streams_per_principal: Option<String>,
    pub max_parked_per_principal: Option<String>,
    pub notifications_per_second: Option<String>,
    pub instructions: Option<String>,
}

/// One upstream server. Stdio and HTTP fields live side by side here; which
/// of them are allowed depends on the transport, checked when resolving.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub transport: Option<String>,
    // stdio
    pub command: Option<String>,
    pub args: Option<Vec<String>>,
    pub env: Option<OrderedMap<String>>,
    pub inherit_env: Option<Vec<String>>,
    pub cwd: Option<String>,
    // http / sse
    pub url: Option<String>,
    pub headers: Option<OrderedMap<String>>,
    // any transport
    pub isolation: Option<String>,
    pub protocol: Option<String>,
    pub connect_timeout: Option<String>,
    pub call_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub restart: Option<RawRestart>,
    pub instructions: Option<String>,
    pub required: Option<bool>,
    pub sandbox: Option<crate::sandbox::RawSandbox>,
    pub credentials: Option<RawServerCredentials>,
    // authorization facts (the policy crate's catalog)
    pub tenants: Option<Vec<String>>,
    pub environment: Option<String>,
    pub risk: Option<warden_policy::RiskTier>,
    pub data_class: Option<String>,
    pub labels: Option<Vec<String>>,
    pub tools: Option<Vec<warden_policy::ItemFacts>>,
    pub resources: Option<Vec<warden_policy::ItemFacts>>,
    pub prompts: Option<Vec<warden_policy::ItemFacts>>,
}

/// `servers.NAME.credentials`: what Warden presents to the upstream.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServerCredentials {
    pub mode: Option<String>,
    pub audience: Option<String>,
    pub token_endpoint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub allow_private_network: Option<bool>,
    pub tenants: Option<OrderedMap<OrderedMap<String>>>,
    pub principals: Option<OrderedMap<OrderedMap<String>>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRestart {
    pub initial_backoff: Option<String>,
    pub max_backoff: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVirtualServer {
    pub servers: Option<Vec<String>>,
    pub tools: Option<Vec<String>>,
    pub namespace: Option<bool>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStdio {
    pub principal: Option<String>,
}

/// A YAML mapping with string keys, kept in file order.
///
/// Duplicate keys are an error (serde-saphyr rejects them too; this is the
/// second line of defence should its policy ever change).
#[derive(Debug)]
pub(crate) struct OrderedMap<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedMapVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedMapVisitor<V> {
            type Value = OrderedMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
                    }
                    let value = map.next_value::<V>()?;
                    entries.push((key, value));
                }
                Ok(OrderedMap(entries))
            }
        }

        deserializer.deserialize_map(OrderedMapVisitor(PhantomData))
    }
}

/// Deepest nesting the parser accepts; the schema itself is five levels deep.
const MAX_YAML_DEPTH: usize = 32;

/// Parse the document into [`RawConfig`]. An empty document (or one holding
/// only comments or `null`) is the default configuration.
///
/// Errors carry the path of the value that failed (tracked with
/// `serde_path_to_error`) and serde-saphyr's line and column.
pub(crate) fn parse_document(text: &str) -> Result<RawConfig, ConfigError> {
    let mut options = serde_saphyr::Options::default();
    // `yes`/`no`/`on`/`off` as booleans surprise people; only `true`/`false`.
    options.strict_booleans = true;
    // No application tags mean anything here; reject them rather than ignore.
    options.reject_unsupported_tags = true;
    // Snippets would quote the offending line, which may hold a secret.
    options.with_snippet = false;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    if let Some(budget) = options.budget.as_mut() {
        budget.max_depth = MAX_YAML_DEPTH;
    }

    let mut failed_at: Option<String> = None;
    let result: Result<Option<RawConfig>, serde_saphyr::Error> =
        serde_saphyr::with_deserializer_from_str_with_options(text, options, |deserializer| {
            serde_path_to_error::deserialize(deserializer).map_err(|error| {
                failed_at = Some(error.path().to_string());
                error.into_inner()
            })
        });

    match result {
        Ok(raw) => Ok(raw.unwrap_or_default()),
        Err(error) => Err(syntax_error(failed_at.as_deref(), &error)),
    }
}

fn syntax_error(path: Option<&str>, error: &serde_saphyr::Error) -> ConfigError {
    let mut path = path.unwrap_or("").to_owned();
    // serde_path_to_error renders the document root as "." and a map key it
    // could not capture (a duplicate, a non-string key) as "?".
    if path == "." {
        path.clear();
    }
    while let Some(parent) = path.strip_suffix(".?") {
        path = parent.to_owned();
    }
    if path == "?" {
        path.clear();
    }
    let message = error.render_with_formatter(&OperatorMessages);
    ConfigError::new(path, message)
}

/// serde-saphyr's user-facing messages, reworded where they speak in
/// parser terms ("string scalar", "mapping start") rather than the
/// operator's. The renderer appends the line and column.
struct OperatorMessages;

impl serde_saphyr::MessageFormatter for OperatorMessages {
    fn format_message<'a>(&self, error: &'a serde_saphyr::Error) -> Cow<'a, str> {
        use serde_saphyr::Error;
        match error {
            Error::DuplicateMappingKey { key: Some(key), .. } => {
                Cow::Owned(format!("duplicate key {key:?}"))
            }
            Error::DuplicateMappingKey { key: None, .. } => Cow::Borrowed("duplicate key"),
            Error::Unexpected {
                expected: "string scalar" | "scalar",
                ..
            } => Cow::Borrowed("expected a single value, not a list or a mapping"),
            Error::Unexpected {
                expected: "mapping start",
                ..
            } => Cow::Borrowed("expected a mapping (key: value pairs)"),
            Error::Unexpected {
                expected: "sequence start",
                ..
            } => Cow::Borrowed("expected a list"),
            other => serde_saphyr::UserMessageFormatter.format_message(other),
        }
    }
}
