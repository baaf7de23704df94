//! Secrets inside call arguments (`audit.arguments: redacted`).
//!
//! Redacting values under sensitive keys ([`crate::Redactor`]) misses a
//! secret in an ordinary field — an `AKIA…` key inside a `message`. Every
//! string (and key) of the arguments therefore goes through a secret
//! detector before it is stored. The detector is the guard crate's; this
//! crate does not carry a second one. The binary installs it
//! ([`crate::AuditLog::set_secret_scrubber`]) — a seam rather than a
//! dependency, because the audit crate sits under telemetry and every
//! crate that logs, and should not pull the guard's automata and schema
//! validator into all of them; and because the gateway already holds a
//! compiled guard, whose detector is then the one used. Without an
//! installed scrubber, `redacted` arguments are left out of records
//! (counted in `arguments_withheld`): never stored unscanned.

use std::ops::Range;

use serde_json::{Map, Value};

/// Finds secrets in text. Implemented for closures, so the binary can
/// install `move |text| guard.detect(text)…`.
pub trait SecretScrubber: Send + Sync {
    /// Byte ranges of `text` holding a secret, each with its class
    /// (`aws_access_key`, `github_token`, …). In any order; may overlap.
    fn find_secrets(&self, text: &str) -> Vec<(Range<usize>, &'static str)>;
}

impl<F> SecretScrubber for F
where
    F: Fn(&str) -> Vec<(Range<usize>, &'static str)> + Send + Sync,
{
    fn find_secrets(&self, text: &str) -> Vec<(Range<usize>, &'static str)> {
        self(text)
    }
}

/// What replaces a secret of `class`.
pub fn secret_placeholder(class: &str) -> String {
    format!("[redacted:{class}]")
}

/// Replaces every secret in every string and key of `value`.
pub fn scrub_value(scrubber: &dyn SecretScrubber, value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Some(clean) = scrub_text(scrubber, s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| scrub_value(scrubber, v)),
        Value::Object(map) => {
            let old = std::mem::take(map);
            let mut out = Map::with_capacity(old.len());
            for (key, mut v) in old {
                scrub_value(scrubber, &mut v);
                let mut key = scrub_text(scrubber, &key).unwrap_or(key);
                // Two keys that differ only in their secrets: keep both.
                let mut n = 2;
                while out.contains_key(&key) {
                    key = format!("{key}#{n}");
                    n += 1;
                }
                out.insert(key, v);
            }
            *map = out;
        }
        _ => {}
    }
}

/// `text` with its secrets replaced, or `None` when it has none.
fn scrub_text(scrubber: &dyn SecretScrubber, text: &str) -> Option<String> {
    let mut found = scrubber.find_secrets(text);
    if found.is_empty() {
        return None;
    }
    // A range the detector got wrong (out of bounds, mid-character): the
    // whole string goes rather than a part of a secret stays.
    if found.iter().any(|(r, _)| {
        r.start > r.end || !text.is_char_boundary(r.start) || !text.is_char_boundary(r.end)
    }) {
        let class = found.first().map_or("secret", |(_, c)| *c);
        return Some(secret_placeholder(class));
    }
    found.sort_by_key(|(r, _)| (r.start, std::cmp::Reverse(r.end)));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (range, class) in found {
        if range.end <= at {
            continue; // inside a secret already replaced
        }
        if range.start >= at {
            out.push_str(&text[at..range.start]);
            out.push_str(&secret_placeholder(class));
        }
        // An overlap extends the replaced part.
        at = range.end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn akia(text: &str) -> Vec<(Range<usize>, &'static str)> {
        text.match_indices("AKIAIOSFODNN7EXAMPLE")
            .map(|(i, m)| (i..i + m.len(), "aws_access_key"))
            .collect()
    }

    #[test]
    fn secrets_in_values_keys_and_nested_arrays_are_replaced() {
        let mut v = serde_json::json!({
            "message": "use AKIAIOSFODNN7EXAMPLE please",
            "AKIAIOSFODNN7EXAMPLE": [1, {"deep": ["x AKIAIOSFODNN7EXAMPLE"]}],
            "n": 3
        });
        scrub_value(&akia, &mut v);
        let text = v.to_string();
        assert!(!text.contains("AKIA"), "{text}");
        assert_eq!(v["message"], "use [redacted:aws_access_key] please");
        assert_eq!(v["n"], 3);
        assert_eq!(
            v["[redacted:aws_access_key]"][1]["deep"][0],
            "x [redacted:aws_access_key]"
        );
    }

    #[test]
    fn overlapping_and_bad_ranges_never_leave_a_part_of_a_secret() {
        let overlapping = |_: &str| vec![(2..6, "a"), (4..9, "b"), (5..6, "c")];
        assert_eq!(
            scrub_text(&overlapping, "0123456789").as_deref(),
            Some("01[redacted:a]9")
        );
        let bad = |_: &str| vec![(1..2, "x")];
        assert_eq!(scrub_text(&bad, "é").as_deref(), Some("[redacted:x]"));
        let out_of_bounds = |_: &str| vec![(0..99, "x")];
        assert_eq!(
            scrub_text(&out_of_bounds, "abc").as_deref(),
            Some("[redacted:x]")
        );
    }
}
