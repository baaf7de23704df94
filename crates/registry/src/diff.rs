//! Field-level differences between a pinned and a live manifest, and the
//! human-readable report behind `warden registry diff`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::canonical::exact_value;
use crate::lockfile::LockFile;
use crate::manifest::Manifest;
use crate::text::{escape_json_text, escape_untrusted, pointer_token};

/// One changed field. `pinned: None` means the field was added upstream,
/// `live: None` that it was removed. Values are compact canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldChange {
    /// JSON pointer (RFC 6901) of the field; `""` is the whole item.
    pub path: String,
    pub pinned: Option<String>,
    pub live: Option<String>,
}

/// The fields that differ between two JSON texts, in document order
/// (object members sorted, array elements by index).
///
/// Text that does not parse is compared as a whole.
pub fn diff(pinned_json: &str, live_json: &str) -> Vec<FieldChange> {
    let parse = |s: &str| -> Option<Value> {
        let raw: &RawValue = serde_json::from_str(s).ok()?;
        exact_value(raw, 0).ok()
    };
    let mut out = Vec::new();
    match (parse(pinned_json), parse(live_json)) {
        (Some(p), Some(l)) => walk(&p, &l, &mut String::new(), &mut out),
        _ if pinned_json == live_json => {}
        _ => out.push(FieldChange {
            path: String::new(),
            pinned: Some(pinned_json.to_owned()),
            live: Some(live_json.to_owned()),
        }),
    }
    out
}

fn walk(p: &Value, l: &Value, path: &mut String, out: &mut Vec<FieldChange>) {
    match (p, l) {
        (Value::Object(pm), Value::Object(lm)) => {
            let keys: BTreeSet<&String> = pm.keys().chain(lm.keys()).collect();
            for key in keys {
                let len = path.len();
                path.push('/');
                path.push_str(&pointer_token(key));
                match (pm.get(key), lm.get(key)) {
                    (Some(a), Some(b)) => walk(a, b, path, out),
                    (a, b) => out.push(FieldChange {
                        path: path.clone(),
                        pinned: a.map(compact),
                        live: b.map(compact),
                    }),
                }
                path.truncate(len);
            }
        }
        (Value::Array(pa), Value::Array(la)) => {
            for i in 0..pa.len().max(la.len()) {
                let len = path.len();
                let _ = write!(path, "/{i}");
                match (pa.get(i), la.get(i)) {
                    (Some(a), Some(b)) => walk(a, b, path, out),
                    (a, b) => out.push(FieldChange {
                        path: path.clone(),
                        pinned: a.map(compact),
                        live: b.map(compact),
                    }),
                }
                path.truncate(len);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(FieldChange {
            path: path.clone(),
            pinned: Some(compact(a)),
            live: Some(compact(b)),
        }),
    }
}

fn compact(v: &Value) -> String {
    serde_jcs::to_string(v).unwrap_or_else(|_| v.to_string())
}

/// Longest strings shown whole in a report; longer ones show the changed
/// middle with this much context on each side.
const CONTEXT: usize = 40;
const WHOLE: usize = 160;

/// The human-readable drift report: for every live manifest, whether it is
/// pinned, unchanged, changed (with each changed field), and which pinned
/// items of the same servers are no longer offered. Deterministic order.
pub fn diff_report(lock: &LockFile, live: &[Manifest]) -> String {
    let mut live_sorted: Vec<&Manifest> = live.iter().collect();
    live_sorted.sort_by(|a, b| (&a.server, a.kind, &a.name).cmp(&(&b.server, b.kind, &b.name)));
    let mut out = String::new();
    let (mut changed, mut new, mut same) = (0, 0, 0);
    for m in &live_sorted {
        let key = escape_untrusted(&m.key());
        match lock.get(&m.server, m.kind, &m.name) {
            None => {
                new += 1;
                let _ = writeln!(out, "+ {key}  not pinned  live {}", m.hash);
            }
            Some(p) if p.hash == m.hash => same += 1,
            Some(p) => {
                changed += 1;
                let _ = writeln!(out, "~ {key}  changed since approval");
                let _ = writeln!(
                    out,
                    "    pinned {}  by {} at {}",
                    p.hash,
                    escape_untrusted(&p.approved_by),
                    p.approved_at
                );
                let _ = writeln!(out, "    live   {}", m.hash);
                for c in diff(&p.json, &m.json) {
                    render_change(&mut out, &c);
                }
            }
        }
    }
    let servers: BTreeSet<&str> = live.iter().map(|m| m.server.as_str()).collect();
    let mut removed = 0;
    for server in servers {
        for p in lock.items_of(server) {
            let offered = live
                .iter()
                .any(|m| m.server == p.server && m.kind == p.kind && m.name == p.name);
            if !offered {
                removed += 1;
                let key = escape_untrusted(&format!("{}/{}/{}", p.server, p.kind, p.name));
                let _ = writeln!(out, "- {key}  pinned but no longer offered  {}", p.hash);
            }
        }
    }
    let _ = writeln!(
        out,
        "{changed} changed, {new} not pinned, {removed} no longer offered, {same} unchanged"
    );
    out
}

/// One change as report lines: `  /path` then `- pinned` / `+ live`.
pub fn render_change(out: &mut String, c: &FieldChange) {
    let path = if c.path.is_empty() {
        "(whole item)"
    } else {
        &c.path
    };
    let _ = writeln!(out, "    {}", escape_untrusted(path));
    let (p, l) = elide_common(c.pinned.as_deref(), c.live.as_deref());
    match p {
        Some(p) => {
            let _ = writeln!(out, "      - {}", escape_json_text(&p));
        }
        None => {
            let _ = writeln!(out, "      - (absent)");
        }
    }
    match l {
        Some(l) => {
            let _ = writeln!(out, "      + {}", escape_json_text(&l));
        }
        None => {
            let _ = writeln!(out, "      + (absent)");
        }
    }
}

/// For two long values, keeps the differing middle and `CONTEXT` characters
/// around it, replacing the common rest with `…`.
fn elide_common(a: Option<&str>, b: Option<&str>) -> (Option<String>, Option<String>) {
    let (Some(a), Some(b)) = (a, b) else {
        return (a.map(shorten), b.map(shorten));
    };
    if a.chars().count() <= WHOLE && b.chars().count() <= WHOLE {
        return (Some(a.to_owned()), Some(b.to_owned()));
    }
    let ac: Vec<char> = a.chars().collect();
    let bc: Vec<char> = b.chars().collect();
    let prefix = ac.iter().zip(&bc).take_while(|(x, y)| x == y).count();
    let max_suffix = ac.len().min(bc.len()) - prefix;
    let suffix = ac
        .iter()
        .rev()
        .zip(bc.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    let cut = |v: &[char]| -> String {
        let start = prefix.saturating_sub(CONTEXT);
        let end = (v.len() - suffix + CONTEXT).min(v.len());
        let mut s = String::new();
        if start > 0 {
            s.push('…');
        }
        s.extend(&v[start..end]);
        if end < v.len() {
            s.push('…');
        }
        s
    };
    (Some(cut(&ac)), Some(cut(&bc)))
}

fn shorten(s: &str) -> String {
    crate::text::truncate_chars(s, WHOLE * 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_documents_have_no_changes() {
        assert!(diff(r#"{"a":[1,{"b":2}]}"#, r#"{ "a" : [1.0, {"b": 2}] }"#).is_empty());
    }

    #[test]
    fn changes_added_and_removed_fields_are_pointed_at() {
        let c = diff(
            r#"{"description":"Adds.","inputSchema":{"properties":{"a/b":{"type":"number"}}},"x":[1,2]}"#,
            r#"{"description":"Adds. <IMPORTANT>","inputSchema":{"properties":{"a/b":{"type":"string"}}},"x":[1],"y":true}"#,
        );
        assert_eq!(
            c,
            vec![
                FieldChange {
                    path: "/description".into(),
                    pinned: Some(r#""Adds.""#.into()),
                    live: Some(r#""Adds. <IMPORTANT>""#.into())
                },
                FieldChange {
                    path: "/inputSchema/properties/a~1b/type".into(),
                    pinned: Some(r#""number""#.into()),
                    live: Some(r#""string""#.into())
                },
                FieldChange {
                    path: "/x/1".into(),
                    pinned: Some("2".into()),
                    live: None
                },
                FieldChange {
                    path: "/y".into(),
                    pinned: None,
                    live: Some("true".into())
                },
            ]
        );
    }

    #[test]
    fn type_changes_and_unparsable_input() {
        assert_eq!(diff(r#"{"a":1}"#, r#"{"a":"1"}"#)[0].path, "/a");
        let c = diff("{", "}");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].path, "");
        assert!(diff("nope", "nope").is_empty());
    }

    #[test]
    fn report_values_cannot_drive_a_terminal() {
        let mut out = String::new();
        let c = FieldChange {
            path: "/d\u{1b}".into(),
            pinned: Some(r#""a\n""#.into()),
            live: Some("\"a\u{1b}[2J\u{202e}\"".into()),
        };
        render_change(&mut out, &c);
        assert!(!out.contains(['\u{1b}', '\u{202e}']), "{out}");
        assert!(
            out.contains(r#"- "a\n""#),
            "JSON escapes stay readable: {out}"
        );
    }

    #[test]
    fn long_strings_show_the_changed_middle() {
        let a = format!("{}MIDDLE{}", "a".repeat(300), "z".repeat(300));
        let b = format!("{}CHANGED{}", "a".repeat(300), "z".repeat(300));
        let (p, l) = elide_common(Some(&a), Some(&b));
        let (p, l) = (p.unwrap(), l.unwrap());
        assert!(p.starts_with('…') && p.ends_with('…') && p.contains("MIDDLE"));
        assert!(l.contains("CHANGED"));
        assert!(p.chars().count() < 100);
    }
}
