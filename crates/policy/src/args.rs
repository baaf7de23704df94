//! Tool and prompt arguments as Cedar values.
//!
//! Cedar validates policies against a closed schema, so the arguments a
//! policy may read are *declared* (`authorization.arguments`, plus the
//! arguments that role constraints name): each declared name has a type,
//! and `context.arguments` is the record of those names. Undeclared
//! arguments are invisible to policy; a policy that names one fails strict
//! validation at load, so a typo cannot silently never match.
//!
//! The normalisation rule, from the JSON the client sent to the Cedar value
//! a policy sees (type-directed, streaming over the raw text, no tree built):
//!
//! | declared   | JSON accepted                                  | Cedar value |
//! |------------|------------------------------------------------|-------------|
//! | `string`   | string                                         | `String` |
//! | `long`     | integer in i64; a float with no fraction (`3.0`) | `Long` |
//! | `decimal`  | number with at most 4 fraction digits (shortest form) in Cedar's range | `decimal` |
//! | `bool`     | `true` / `false`                               | `Bool` |
//! | `path`     | string; lexically normalised (`.`/`..`/`//` resolved, trailing `/` dropped, `..` never climbs above `/`) | `String` |
//! | `email`    | string with exactly one `@`, non-empty parts; domain lower-cased | `{ address: String, domain: String }` |
//! | `ipaddr`   | string, an IPv4/IPv6 address or CIDR range      | `ipaddr` |
//! | `set<T>`   | array of T (order and duplicates dropped)      | `Set<T>` |
//! | `set<email>` | array of e-mail strings                      | `{ addresses: Set<String>, domains: Set<String> }` |
//! | `{ k: T }` | object; undeclared keys ignored                | record, every key optional |
//!
//! - `null` for a declared argument or record key means *absent*
//!   (`context.arguments has x` is false), as most tools treat it.
//! - Any other mismatch (a number for a `string`, `1.5` for a `long`, a
//!   float that would need rounding for a `decimal`, a `null` inside an
//!   array, a malformed address, a duplicate key) is an
//!   [`ArgumentError`]; the engine then denies the call
//!   ([`crate::ReasonCode::InvalidArguments`]) rather than let a policy
//!   read a value it was not written for. Floats are never rounded.
//! - Messages name the argument path, never the value (values may be
//!   secrets).

use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Write as _};

use cedar_policy::RestrictedExpression;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The declared type of one argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgType {
    String,
    Long,
    Decimal,
    Bool,
    Path,
    Email,
    IpAddr,
    Set(Box<ArgType>),
    Record(BTreeMap<String, ArgType>),
}

impl ArgType {
    /// Parses a scalar or set type name: `string`, `set<email>`…
    pub(crate) fn parse(s: &str) -> Option<ArgType> {
        let s = s.trim();
        if let Some(inner) = s.strip_prefix("set<").and_then(|r| r.strip_suffix('>')) {
            return match ArgType::parse(inner)? {
                ArgType::Record(_) => None,
                t => Some(ArgType::Set(Box::new(t))),
            };
        }
        Some(match s {
            "string" => ArgType::String,
            "long" => ArgType::Long,
            "decimal" => ArgType::Decimal,
            "bool" => ArgType::Bool,
            "path" => ArgType::Path,
            "email" => ArgType::Email,
            "ipaddr" => ArgType::IpAddr,
            _ => return None,
        })
    }

    /// The type as written in configuration.
    pub(crate) fn name(&self) -> String {
        match self {
            ArgType::String => "string".into(),
            ArgType::Long => "long".into(),
            ArgType::Decimal => "decimal".into(),
            ArgType::Bool => "bool".into(),
            ArgType::Path => "path".into(),
            ArgType::Email => "email".into(),
            ArgType::IpAddr => "ipaddr".into(),
            ArgType::Set(t) => format!("set<{}>", t.name()),
            ArgType::Record(_) => "record".into(),
        }
    }

    /// The Cedar schema type.
    pub(crate) fn cedar_type(&self) -> String {
        match self {
            ArgType::String | ArgType::Path => "String".into(),
            ArgType::Long => "Long".into(),
            ArgType::Decimal => "decimal".into(),
            ArgType::Bool => "Bool".into(),
            ArgType::IpAddr => "ipaddr".into(),
            ArgType::Email => "{ address: String, domain: String }".into(),
            ArgType::Set(t) if **t == ArgType::Email => {
                "{ addresses: Set<String>, domains: Set<String> }".into()
            }
            ArgType::Set(t) => format!("Set<{}>", t.cedar_type()),
            ArgType::Record(fields) => record_type(fields),
        }
    }
}

/// `{ "a"?: T, … }`: every declared key is optional.
pub(crate) fn record_type(fields: &BTreeMap<String, ArgType>) -> String {
    let mut out = String::from("{");
    for (i, (k, t)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            " {}?: {}",
            crate::glob::cedar_string(k),
            t.cedar_type()
        );
    }
    out.push_str(if fields.is_empty() { "}" } else { " }" });
    out
}

/// A value that does not fit its declared type. Names the path, never the
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ArgumentError(pub String);

/// `context.arguments` for one request.
pub(crate) fn normalise(
    declared: &BTreeMap<String, ArgType>,
    arguments: Option<&RawValue>,
) -> Result<RestrictedExpression, ArgumentError> {
    let Some(raw) = arguments else {
        return empty_record();
    };
    if declared.is_empty() {
        // Nothing to read; still refuse text that is not an object or null.
        return match raw.get().trim_start().as_bytes().first() {
            Some(b'{') | Some(b'n') => empty_record(),
            _ => Err(ArgumentError("arguments: expected an object".into())),
        };
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let seed = ValueSeed {
        ty: &Shape::Record(declared),
        path: &Path::Root,
    };
    let value = seed
        .deserialize(&mut de)
        .map_err(|e| ArgumentError(strip_position(&e.to_string())))?;
    match value {
        Some(v) => Ok(v),
        None => empty_record(),
    }
}

fn empty_record() -> Result<RestrictedExpression, ArgumentError> {
    RestrictedExpression::new_record(std::iter::empty())
        .map_err(|e| ArgumentError(format!("arguments: {e}")))
}

/// serde_json appends " at line L column C"; the path is what helps.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// A type as the seeds see it (the top level is a record that borrows the
/// declarations instead of owning a copy).
enum Shape<'a> {
    Record(&'a BTreeMap<String, ArgType>),
    Type(&'a ArgType),
}

/// Where a value sits, rendered only for error messages.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("arguments"),
            Path::Key(p, k) => write!(f, "{p}.{k}"),
            Path::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

struct ValueSeed<'a> {
    ty: &'a Shape<'a>,
    path: &'a Path<'a>,
}

impl ValueSeed<'_> {
    fn expected(&self) -> String {
        match self.ty {
            Shape::Record(_) => "an object".into(),
            Shape::Type(t) => match t {
                ArgType::String | ArgType::Path => "a string".into(),
                ArgType::Long => "an integer".into(),
                ArgType::Decimal => "a number with at most 4 decimal places".into(),
                ArgType::Bool => "a boolean".into(),
                ArgType::Email => "an e-mail address".into(),
                ArgType::IpAddr => "an IP address or range".into(),
                ArgType::Set(_) => "an array".into(),
                ArgType::Record(_) => "an object".into(),
            },
        }
    }

    fn mismatch<E: de::Error>(&self) -> E {
        E::custom(format_args!("{}: expected {}", self.path, self.expected()))
    }

    fn invalid<E: de::Error>(&self, why: &str) -> E {
        E::custom(format_args!("{}: {why}", self.path))
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    /// `None` for JSON `null`: the argument is absent.
    type Value = Option<RestrictedExpression>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Option<RestrictedExpression>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expected())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        match self.ty {
            Shape::Type(ArgType::Bool) => Ok(Some(RestrictedExpression::new_bool(v))),
            _ => Err(self.mismatch()),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        match self.ty {
            Shape::Type(ArgType::Long) => Ok(Some(RestrictedExpression::new_long(v))),
            Shape::Type(ArgType::Decimal) => decimal_from_text(&v.to_string())
                .map(|d| Some(RestrictedExpression::new_decimal(d)))
                .ok_or_else(|| self.mismatch()),
            _ => Err(self.mismatch()),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(self.mismatch()),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        match self.ty {
            Shape::Type(ArgType::Long) => {
                // 2^63 is exactly representable; everything in [-2^63, 2^63)
                // with no fraction converts without loss.
                const LIMIT: f64 = 9_223_372_036_854_775_808.0;
                if v.is_finite() && v.fract() == 0.0 && (-LIMIT..LIMIT).contains(&v) {
                    #[allow(clippy::cast_possible_truncation)]
                    Ok(Some(RestrictedExpression::new_long(v as i64)))
                } else {
                    Err(self.mismatch())
                }
            }
            Shape::Type(ArgType::Decimal) if v.is_finite() => {
                // Rust prints the shortest text that reads back as `v`,
                // never in exponent form.
                decimal_from_text(&format!("{v}"))
                    .map(|d| Some(RestrictedExpression::new_decimal(d)))
                    .ok_or_else(|| self.mismatch())
            }
            _ => Err(self.mismatch()),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let Shape::Type(ty) = self.ty else {
            return Err(self.mismatch());
        };
        match ty {
            ArgType::String => Ok(Some(RestrictedExpression::new_string(v.to_owned()))),
            ArgType::Path => match normalise_path(v) {
                Some(p) => Ok(Some(RestrictedExpression::new_string(p))),
                None => Err(self.invalid("not a usable path (empty or containing NUL)")),
            },
            ArgType::Email => match split_email(v) {
                Some((address, domain)) => email_record(address, domain)
                    .map(Some)
                    .map_err(|e| self.invalid(&e)),
                None => Err(self.mismatch()),
            },
            ArgType::IpAddr => {
                if is_ip_or_cidr(v) {
                    Ok(Some(RestrictedExpression::new_ip(v)))
                } else {
                    Err(self.mismatch())
                }
            }
            _ => Err(self.mismatch()),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let Shape::Type(ArgType::Set(elem)) = self.ty else {
            return Err(self.mismatch());
        };
        if **elem == ArgType::Email {
            let mut addresses = Vec::new();
            let mut domains = Vec::new();
            let mut i = 0usize;
            while let Some(s) = seq.next_element::<EmailText>()? {
                let path = Path::Index(self.path, i);
                match s.0.as_deref().and_then(split_email) {
                    Some((a, d)) => {
                        addresses.push(RestrictedExpression::new_string(a));
                        domains.push(RestrictedExpression::new_string(d));
                    }
                    None => {
                        return Err(de::Error::custom(format_args!(
                            "{path}: expected an e-mail address"
                        )));
                    }
                }
                i += 1;
            }
            let record = RestrictedExpression::new_record([
                (
                    "addresses".to_owned(),
                    RestrictedExpression::new_set(addresses),
                ),
                ("domains".to_owned(), RestrictedExpression::new_set(domains)),
            ])
            .map_err(|e| self.invalid(&e.to_string()))?;
            return Ok(Some(record));
        }
        let shape = Shape::Type(elem);
        let mut items = Vec::new();
        let mut i = 0usize;
        loop {
            let path = Path::Index(self.path, i);
            let seed = ValueSeed {
                ty: &shape,
                path: &path,
            };
            match seq.next_element_seed(seed)? {
                None => break,
                Some(Some(v)) => items.push(v),
                Some(None) => {
                    return Err(de::Error::custom(format_args!(
                        "{path}: null is not allowed in an array"
                    )));
                }
            }
            i += 1;
        }
        Ok(Some(RestrictedExpression::new_set(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let fields = match self.ty {
            Shape::Record(f) => *f,
            Shape::Type(ArgType::Record(f)) => f,
            _ => return Err(self.mismatch()),
        };
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out: Vec<(String, RestrictedExpression)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let Some((name, ty)) = fields.get_key_value(key.as_str()) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let path = Path::Key(self.path, name);
            if !seen.insert(name.as_str()) {
                return Err(de::Error::custom(format_args!("{path}: duplicate key")));
            }
            let shape = Shape::Type(ty);
            let seed = ValueSeed {
                ty: &shape,
                path: &path,
            };
            if let Some(v) = map.next_value_seed(seed)? {
                out.push((name.clone(), v));
            }
        }
        RestrictedExpression::new_record(out)
            .map(Some)
            .map_err(|e| self.invalid(&e.to_string()))
    }
}

/// An array element of a `set<email>`: a string, else `None`.
struct EmailText(Option<String>);

impl<'de> de::Deserialize<'de> for EmailText {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EmailText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an e-mail address")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EmailText, E> {
                Ok(EmailText(Some(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<EmailText, E> {
                Ok(EmailText(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<EmailText, E> {
                Ok(EmailText(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<EmailText, E> {
                Ok(EmailText(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<EmailText, E> {
                Ok(EmailText(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<EmailText, E> {
                Ok(EmailText(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EmailText, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(EmailText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EmailText, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(EmailText(None))
            }
        }
        d.deserialize_any(V)
    }
}

fn email_record(address: String, domain: String) -> Result<RestrictedExpression, String> {
    RestrictedExpression::new_record([
        (
            "address".to_owned(),
            RestrictedExpression::new_string(address),
        ),
        (
            "domain".to_owned(),
            RestrictedExpression::new_string(domain),
        ),
    ])
    .map_err(|e| e.to_string())
}

/// `local@domain` → (`local@domain-lowercased`, `domain-lowercased`).
///
/// Exactly one `@`: quoted local parts that contain `@` are refused rather
/// than parsed, so `a@acme.com@evil.example` can never pass for acme.com.
pub(crate) fn split_email(s: &str) -> Option<(String, String)> {
    let (local, domain) = s.split_once('@')?;
    let valid_domain = !domain.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    let valid_local =
        !local.is_empty() && !local.chars().any(|c| c.is_whitespace() || c.is_control());
    if !(valid_domain && valid_local) {
        return None;
    }
    let domain = domain.to_lowercase();
    Some((format!("{local}@{domain}"), domain))
}

/// Lexical normalisation: `.` and empty segments dropped, `..` pops (never
/// above the root of an absolute path), trailing `/` dropped. A relative
/// path stays relative, keeping leading `..`. `None` for "" or NUL.
pub(crate) fn normalise_path(p: &str) -> Option<String> {
    if p.is_empty() || p.contains('\0') {
        return None;
    }
    let absolute = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if absolute => {}
                _ => parts.push(".."),
            },
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    Some(match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    })
}

/// Cedar's `decimal`: at most 4 fraction digits, within i64 / 10^4.
fn decimal_from_text(text: &str) -> Option<String> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if frac.len() > 4 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = int.strip_prefix('-').unwrap_or(int);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i128 = int.parse().ok()?;
    let mut scaled = whole.checked_mul(10_000)?;
    let frac_val: i128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<4}").parse().ok()?
    };
    scaled = if int.starts_with('-') {
        scaled.checked_sub(frac_val)?
    } else {
        scaled.checked_add(frac_val)?
    };
    if i64::try_from(scaled).is_err() {
        return None;
    }
    let frac = if frac.is_empty() { "0" } else { frac };
    Some(format!("{int}.{frac}"))
}

/// What Cedar's `ip()` accepts: an address, optionally `/prefix` within the
/// family's width.
fn is_ip_or_cidr(s: &str) -> bool {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    match prefix {
        None => true,
        Some(p) => {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u8>().is_ok_and(|n| n <= max)
        }
    }
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
