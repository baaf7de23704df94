//! The `telemetry:` section of `warden.yaml`: [`RawTelemetry`] as written
//! (serde, unknown keys refused), resolved into validated
//! [`TelemetrySettings`]. Every problem is collected with its path
//! (`telemetry.otlp.endpoint`), so one `warden check` lists them all.
//!
//! ```yaml
//! telemetry:
//!   logs: { format: json, level: "info,warden_gateway=debug" }
//!   otlp:
//!     endpoint: http://127.0.0.1:4318        # /v1/traces is appended
//!     headers: { authorization: env:OTLP_AUTH }
//!     service_name: warden
//!     sample_ratio: 0.25
//!     timeout: 10s
//!   metrics: { enabled: true, path: /metrics }
//! ```
//!
//! OTLP header values may be secrets: they are read from `env:NAME` (or
//! written inline for harmless ones), and never appear in `Debug` output,
//! in errors or in logs.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use url::Url;

// ----- the file as written --------------------------------------------------

/// The `telemetry:` section as written. Every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    pub logs: Option<RawLogs>,
    /// Traces exported over OTLP/HTTP (protobuf). Absent: no export.
    pub otlp: Option<RawOtlp>,
    pub metrics: Option<RawMetrics>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogs {
    /// `json` (default) or `pretty` (one human-readable line per event).
    pub format: Option<String>,
    /// An `EnvFilter` directive (default `info`).
    pub level: Option<String>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOtlp {
    /// The collector's OTLP/HTTP base URL (`http://127.0.0.1:4318`), or the
    /// full traces URL ending in `/v1/traces`. Required.
    pub endpoint: Option<String>,
    /// Headers sent with every export; a value `env:NAME` is read from the
    /// environment at load.
    pub headers: Option<BTreeMap<String, String>>,
    /// `service.name` of the resource (default `warden`).
    pub service_name: Option<String>,
    /// Fraction of new traces sampled, 0.0–1.0 (default 1.0). A request
    /// with a `traceparent` follows its caller's sampled flag.
    pub sample_ratio: Option<f64>,
    /// One export's deadline, humantime (default `10s`).
    pub timeout: Option<String>,
}

/// Header values are not printed: they may be inlined credentials.
impl fmt::Debug for RawOtlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawOtlp")
            .field("endpoint", &self.endpoint)
            .field(
                "headers",
                &self.headers.as_ref().map(|h| h.keys().collect::<Vec<_>>()),
            )
            .field("service_name", &self.service_name)
            .field("sample_ratio", &self.sample_ratio)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Serve Prometheus metrics (default true).
    pub enabled: Option<bool>,
    /// Where (default `/metrics`).
    pub path: Option<String>,
    /// An admin listener (`127.0.0.1:9464`) that serves only the metrics;
    /// absent: the metrics are served on the MCP listener, and only when
    /// that listener is bound to a loopback address or `token` is set.
    pub listen: Option<String>,
    /// `env:NAME`: a bearer token every scrape must present
    /// (`Authorization: Bearer …`), on whichever listener serves them.
    pub token: Option<String>,
}

// ----- the validated form ---------------------------------------------------

/// Validated telemetry settings.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TelemetrySettings {
    pub logs: LogSettings,
    /// `None`: spans are not exported, and a caller's trace context passes
    /// through unchanged (audit records keep the caller's trace id).
    pub otlp: Option<OtlpSettings>,
    pub metrics: MetricsSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line (the audit crate's redacting layer).
    #[default]
    Json,
    /// One human-readable line per event, redacted and escaped the same way.
    Pretty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A valid `EnvFilter` directive.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> LogSettings {
        LogSettings {
            format: LogFormat::Json,
            level: DEFAULT_LEVEL.to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// The traces URL (`…/v1/traces`).
    pub endpoint: Url,
    pub headers: Vec<(String, HeaderValue)>,
    pub service_name: String,
    pub sample_ratio: f64,
    pub timeout: Duration,
}

impl OtlpSettings {
    /// Settings for `endpoint` with every other key at its default (tests,
    /// and callers that build settings in code).
    pub fn new(endpoint: Url) -> OtlpSettings {
        OtlpSettings {
            endpoint: traces_url(endpoint),
            headers: Vec::new(),
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            sample_ratio: 1.0,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// An OTLP header value: `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderValue(String);

impl HeaderValue {
    pub fn new(value: impl Into<String>) -> HeaderValue {
        HeaderValue(value.into())
    }

    /// The value, for the exporter. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    pub enabled: bool,
    /// Starts with `/`.
    pub path: String,
    /// The admin listener, if the metrics have one of their own.
    pub listen: Option<std::net::SocketAddr>,
    /// The bearer token a scrape must present, if any. `Debug` redacts it.
    pub token: Option<HeaderValue>,
}

impl MetricsSettings {
    /// Whether the MCP listener, bound at `bound`, serves the metrics: not
    /// when they have a listener of their own, and on a listener other
    /// clients can reach only behind a credential. Unauthenticated counts of
    /// calls, refusals and upstream failures tell an attacker what Warden
    /// guards and when it struggles.
    pub fn on_mcp_listener(&self, bound: std::net::SocketAddr) -> bool {
        self.enabled && self.listen.is_none() && (bound.ip().is_loopback() || self.token.is_some())
    }
}

impl Default for MetricsSettings {
    fn default() -> MetricsSettings {
        MetricsSettings {
            enabled: true,
            path: DEFAULT_METRICS_PATH.to_owned(),
            listen: None,
            token: None,
        }
    }
}

const DEFAULT_LEVEL: &str = "info";
const DEFAULT_SERVICE_NAME: &str = "warden";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_METRICS_PATH: &str = "/metrics";
const TRACES_PATH: &str = "/v1/traces";

// ----- resolving ------------------------------------------------------------

impl RawTelemetry {
    /// Validates every key; `env:` header values read the process
    /// environment. Errors are `(path, message)` pairs, all of them.
    pub fn resolve(self) -> Result<TelemetrySettings, Vec<(String, String)>> {
        self.resolve_with_env(&|name| std::env::var_os(name))
    }

    /// [`RawTelemetry::resolve`] with an explicit environment (tests).
    pub fn resolve_with_env(
        self,
        env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<TelemetrySettings, Vec<(String, String)>> {
        let mut r = Resolver {
            problems: Vec::new(),
            env,
        };
        let logs = r.logs(self.logs.unwrap_or_default());
        let otlp = self.otlp.and_then(|o| r.otlp(o));
        let metrics = r.metrics(self.metrics.unwrap_or_default());
        if r.problems.is_empty() {
            Ok(TelemetrySettings {
                logs,
                otlp,
                metrics,
            })
        } else {
            Err(r.problems)
        }
    }
}

struct Resolver<'a> {
    problems: Vec<(String, String)>,
    env: &'a dyn Fn(&str) -> Option<std::ffi::OsString>,
}

impl Resolver<'_> {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push((path.into(), message.into()));
    }

    fn logs(&mut self, raw: RawLogs) -> LogSettings {
        let format = match raw.format.as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                self.push(
                    "telemetry.logs.format",
                    format!("{:?} is not one of json, pretty", truncate(other)),
                );
                LogFormat::Json
            }
        };
        let level = raw.level.unwrap_or_else(|| DEFAULT_LEVEL.to_owned());
        if let Err(e) = EnvFilter::builder().parse(&level) {
            self.push(
                "telemetry.logs.level",
                format!("not a valid filter directive: {e}"),
            );
        }
        LogSettings { format, level }
    }

    fn otlp(&mut self, raw: RawOtlp) -> Option<OtlpSettings> {
        let before = self.problems.len();
        let endpoint = match raw.endpoint.as_deref() {
            None => {
                self.push(
                    "telemetry.otlp.endpoint",
                    "required when telemetry.otlp is present",
                );
                None
            }
            Some(text) => self.endpoint(text),
        };
        let mut headers = Vec::new();
        for (name, value) in raw.headers.unwrap_or_default() {
            let path = format!("telemetry.otlp.headers.{}", truncate(&name));
            if !is_header_name(&name) {
                self.push(path, "not a valid HTTP header name");
                continue;
            }
            if let Some(v) = self.header_value(&value, &path) {
                headers.push((name.to_ascii_lowercase(), v));
            }
        }
        let service_name = raw
            .service_name
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
        if service_name.trim().is_empty() {
            self.push("telemetry.otlp.service_name", "must not be empty");
        }
        let sample_ratio = raw.sample_ratio.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&sample_ratio) {
            self.push(
                "telemetry.otlp.sample_ratio",
                "must be a number from 0.0 to 1.0",
            );
        }
        let timeout = match raw.timeout.as_deref() {
            None => DEFAULT_TIMEOUT,
            Some(text) => match humantime::parse_duration(text) {
                Ok(d) if !d.is_zero() => d,
                Ok(_) => {
                    self.push("telemetry.otlp.timeout", "must be longer than zero");
                    DEFAULT_TIMEOUT
                }
                Err(e) => {
                    self.push(
                        "telemetry.otlp.timeout",
                        format!("not a duration (`10s`, `500ms`): {e}"),
                    );
                    DEFAULT_TIMEOUT
                }
            },
        };
        if self.problems.len() != before {
            return None;
        }
        Some(OtlpSettings {
            endpoint: endpoint?,
            headers,
            service_name,
            sample_ratio,
            timeout,
        })
    }

    fn endpoint(&mut self, text: &str) -> Option<Url> {
        const PATH: &str = "telemetry.otlp.endpoint";
        let url = match Url::parse(text) {
            Ok(u) => u,
            Err(e) => {
                self.push(PATH, format!("not a URL: {e}"));
                return None;
            }
        };
        if !matches!(url.scheme(), "http" | "https") {
            self.push(PATH, "must be an http:// or https:// URL");
            return None;
        }
        if url.host_str().is_none_or(str::is_empty) {
            self.push(PATH, "must name a host");
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Credentials belong in `headers`, which are never printed.
            self.push(
                PATH,
                "must not carry credentials; put them in telemetry.otlp.headers",
            );
            return None;
        }
        if url.fragment().is_some() {
            self.push(PATH, "must not have a fragment");
            return None;
        }
        Some(traces_url(url))
    }

    fn header_value(&mut self, text: &str, path: &str) -> Option<HeaderValue> {
        let value = if let Some(name) = text.strip_prefix("env:") {
            match (self.env)(name) {
                Some(v) => match v.into_string() {
                    Ok(s) => s,
                    Err(_) => {
                        self.push(
                            path,
                            format!("environment variable {name} is not valid UTF-8"),
                        );
                        return None;
                    }
                },
                None => {
                    self.push(path, format!("environment variable {name} is not set"));
                    return None;
                }
            }
        } else {
            text.to_owned()
        };
        // Never echo the value: it may be a credential.
        if value.is_empty() {
            self.push(path, "the value is empty");
            return None;
        }
        if !value
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            self.push(
                path,
                "the value holds control or non-ASCII characters (not printed)",
            );
            return None;
        }
        Some(HeaderValue(value))
    }

    fn metrics(&mut self, raw: RawMetrics) -> MetricsSettings {
        let path = raw.path.unwrap_or_else(|| DEFAULT_METRICS_PATH.to_owned());
        let valid = path.starts_with('/')
            && path.len() > 1
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b));
        if !valid {
            self.push(
                "telemetry.metrics.path",
                "must be an absolute path such as /metrics ([A-Za-z0-9/._~-])",
            );
        }
        let listen = raw.listen.and_then(|text| match text.trim().parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.push(
                    "telemetry.metrics.listen",
                    "must be an address with a port, such as 127.0.0.1:9464",
                );
                None
            }
        });
        const TOKEN: &str = "telemetry.metrics.token";
        let token = raw.token.and_then(|text| {
            if text.starts_with("env:") {
                self.header_value(&text, TOKEN)
            } else {
                // Never echo it: it was meant to be a secret.
                self.push(
                    TOKEN,
                    "must be env:NAME (a credential is not written in the file)",
                );
                None
            }
        });
        MetricsSettings {
            enabled: raw.enabled.unwrap_or(true),
            path,
            listen,
            token,
        }
    }
}

/// `…/v1/traces`, appended to a base URL that does not end in it.
fn traces_url(mut url: Url) -> Url {
    let path = url.path().trim_end_matches('/');
    if !path.ends_with(TRACES_PATH) {
        let joined = format!("{path}{TRACES_PATH}");
        url.set_path(&joined);
    }
    url
}

/// RFC 9110 `token`.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
