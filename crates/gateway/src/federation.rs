//! Federation: many upstreams behind one virtual server. Pure functions over
//! message text — namespacing, list merging, cursors, capability union.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::value::RawValue;
use warden_protocol::edit::{json_string, EditSet};
use warden_protocol::message::{as_str, elements, member, members};
use warden_protocol::method::ListKind;

/// Exposed names: `server` + separator + upstream name.
#[derive(Debug, Clone)]
pub struct Namer {
    separator: String,
}

/// What every exposed tool or prompt name must satisfy.
pub fn is_valid_exposed_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Namer {
    pub fn new(separator: &str) -> Self {
        Namer {
            separator: separator.to_owned(),
        }
    }

    /// The exposed name, or `None` when it cannot satisfy the name rule or
    /// would not lead back to `server` and `name` through [`Namer::split`]
    /// (an empty upstream name: `server__` would be listed, never callable).
    pub fn expose(&self, server: &str, name: &str) -> Option<String> {
        let exposed = format!("{server}{}{name}", self.separator);
        (is_valid_exposed_name(&exposed) && self.split(&exposed) == Some((server, name)))
            .then_some(exposed)
    }

    /// Splits an exposed name at the first separator. Server names never
    /// contain the separator (a config rule), so the split is unambiguous.
    pub fn split<'a>(&self, exposed: &'a str) -> Option<(&'a str, &'a str)> {
        let at = exposed.find(&self.separator)?;
        let (server, rest) = exposed.split_at(at);
        let name = &rest[self.separator.len()..];
        (!server.is_empty() && !name.is_empty()).then_some((server, name))
    }
}

/// One item of a merged list, already rewritten for the client.
#[derive(Debug, Clone)]
pub struct ListItem {
    pub server: String,
    /// The name the client sees (tools, prompts) or the URI / template.
    pub key: String,
    /// The upstream's own name for it (tools, prompts).
    pub upstream_name: Option<String>,
    /// The item's JSON text, every field the upstream sent kept.
    pub text: String,
}

/// Why an upstream's list page was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("list result is not an object with an array of {0}")]
    Shape(&'static str),
}

/// A page of one upstream's list, rewritten.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<ListItem>,
    /// Items refused (invalid names), with the reason, for the log.
    pub refused: Vec<String>,
    pub next_cursor: Option<String>,
}

/// Rewrites one upstream page (`result` of a list response).
pub fn rewrite_page(
    kind: ListKind,
    server: &str,
    result: &RawValue,
    expose: impl Fn(&str) -> Option<String>,
) -> Result<Page, ListError> {
    let key = kind.items_key();
    let arr = member(result, key).ok_or(ListError::Shape(key))?;
    let items = elements(arr).ok_or(ListError::Shape(key))?;
    let mut page = Page {
        next_cursor: member(result, "nextCursor")
            .and_then(as_str)
            .map(|c| c.into_owned()),
        ..Page::default()
    };
    for item in items {
        let text = item.get();
        match kind {
            ListKind::Tools | ListKind::Prompts => {
                let Some(name_raw) = member(item, "name") else {
                    page.refused.push("item without a name".into());
                    continue;
                };
                let Some(name) = as_str(name_raw) else {
                    page.refused.push("item name is not a string".into());
                    continue;
                };
                let Some(exposed) = expose(&name) else {
                    page.refused.push(format!(
                        "{:?}: exposed name would not satisfy ^[a-zA-Z0-9_-]{{1,64}}$ or lead back to it",
                        truncate(&name, 80)
                    ));
                    continue;
                };
                let mut edits = EditSet::new();
                edits.replace(text, name_raw, json_string(&exposed));
                let Some(rewritten) = edits.apply(text) else {
                    page.refused.push("internal: edit failed".into());
                    continue;
                };
                page.items.push(ListItem {
                    server: server.to_owned(),
                    key: exposed,
                    upstream_name: Some(name.into_owned()),
                    text: rewritten,
                });
            }
            ListKind::Resources | ListKind::ResourceTemplates => {
                let field = if kind == ListKind::Resources {
                    "uri"
                } else {
                    "uriTemplate"
                };
                let Some(uri) = member(item, field).and_then(as_str) else {
                    page.refused.push(format!("item without a string {field}"));
                    continue;
                };
                page.items.push(ListItem {
                    server: server.to_owned(),
                    key: uri.into_owned(),
                    upstream_name: None,
                    text: text.to_owned(),
                });
            }
        }
    }
    Ok(page)
}

/// At most `n` characters of `s` (for log lines and error texts).
pub(crate) fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Builds a list result from merged items.
pub fn build_list_result<'a>(
    kind: ListKind,
    items: impl Iterator<Item = &'a str>,
    next_cursor: Option<&str>,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"");
    out.push_str(kind.items_key());
    out.push_str("\":[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
    if let Some(c) = next_cursor {
        out.push_str(",\"nextCursor\":");
        out.push_str(&json_string(c));
    }
    out.push('}');
    out
}

/// Warden's own pagination cursors: opaque to clients, they carry the
/// cursor of each upstream that has more pages.
pub mod cursor {
    use super::*;

    const PREFIX: &str = "w1.";

    pub fn encode(pending: &BTreeMap<String, String>) -> String {
        let json = serde_json::to_vec(pending).unwrap_or_default();
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    }

    /// Decodes a cursor; `None` when it is not one Warden issued.
    pub fn decode(cursor: &str) -> Option<BTreeMap<String, String>> {
        let b64 = cursor.strip_prefix(PREFIX)?;
        if b64.len() > 64 * 1024 {
            return None;
        }
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// The capabilities Warden announces: the union of the upstreams'.
/// `list_changed` is always offered because Warden itself emits it when an
/// upstream restarts or its lists change.
pub fn union_capabilities(upstream_results: &[&RawValue]) -> serde_json::Value {
    let mut tools = false;
    let mut prompts = false;
    let mut resources = false;
    let mut subscribe = false;
    let mut logging = false;
    let mut completions = false;
    for r in upstream_results {
        let Some(caps) = member(r, "capabilities") else {
            continue;
        };
        for (k, v) in members(caps).unwrap_or_default() {
            match k.as_ref() {
                "tools" => tools = true,
                "prompts" => prompts = true,
                "resources" => {
                    resources = true;
                    if member(v, "subscribe").map(|b| b.get()) == Some("true") {
                        subscribe = true;
                    }
                }
                "logging" => logging = true,
                "completions" => completions = true,
                _ => {}
            }
        }
    }
    let mut caps = serde_json::Map::new();
    if tools {
        caps.insert("tools".into(), serde_json::json!({"listChanged": true}));
    }
    if prompts {
        caps.insert("prompts".into(), serde_json::json!({"listChanged": true}));
    }
    if resources {
        caps.insert(
            "resources".into(),
            serde_json::json!({"listChanged": true, "subscribe": subscribe}),
        );
    }
    if logging {
        caps.insert("logging".into(), serde_json::json!({}));
    }
    if completions {
        caps.insert("completions".into(), serde_json::json!({}));
    }
    serde_json::Value::Object(caps)
}

/// Whether an upstream's initialize result declares a capability.
pub fn has_capability(init_result: &RawValue, capability: &str) -> bool {
    member(init_result, "capabilities")
        .and_then(|c| member(c, capability))
        .is_some()
}

/// Instructions composed per server, each under its own heading.
pub fn compose_instructions(own: Option<&str>, per_server: &[(String, String)]) -> Option<String> {
    let mut out = String::new();
    if let Some(own) = own {
        out.push_str(own.trim());
    }
    for (server, text) in per_server {
        if text.trim().is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(&format!(
            "## Server `{server}` (its tools are named `{server}__*`)\n{}",
            text.trim()
        ));
    }
    (!out.is_empty()).then_some(out)
}

/// Longest URI [`UriTemplate::matches`] looks at; longer ones never match.
pub const MAX_TEMPLATE_URI_BYTES: usize = 8192;
/// Longest template [`UriTemplate::parse`] accepts.
pub const MAX_TEMPLATE_BYTES: usize = 1024;

/// An RFC 6570 URI template compiled for matching concrete URIs, level 1
/// only: `{var}` matches one or more bytes other than `/`; an expression
/// with an operator (`{+var}`, `{#var}`, `{/var}`, `{.var}`, `{;var}`,
/// `{?var}`, `{&var}`) one or more of any byte; every other byte matches
/// itself; from an unterminated `{` on, the template is literal. Enough to
/// route reads.
///
/// Compiled into a byte-level finite automaton (`regex`, no backtracking):
/// a match costs time linear in the URI's length whatever the template, so
/// a peer cannot stall routing with a URI that almost matches.
#[derive(Debug, Clone)]
pub struct UriTemplate {
    automaton: regex::bytes::Regex,
}

impl UriTemplate {
    /// Compiles `template`; `None` when it is longer than
    /// [`MAX_TEMPLATE_BYTES`].
    pub fn parse(template: &str) -> Option<UriTemplate> {
        if template.len() > MAX_TEMPLATE_BYTES {
            return None;
        }
        // Byte semantics (`-u`), `.` matching every byte (`s`), anchored at
        // both ends; literal bytes are written as `\xNN`, so no template
        // byte is ever read as regex syntax.
        let mut pattern = String::with_capacity(template.len() * 4 + 16);
        pattern.push_str(r"(?s-u)\A");
        let mut rest = template.as_bytes();
        while let Some((&first, after)) = rest.split_first() {
            if first != b'{' {
                push_literal(&mut pattern, first);
                rest = after;
                continue;
            }
            let Some(close) = after.iter().position(|b| *b == b'}') else {
                rest.iter().for_each(|b| push_literal(&mut pattern, *b));
                break;
            };
            let any = matches!(
                after.first(),
                Some(b'+' | b'#' | b'/' | b'.' | b';' | b'?' | b'&')
            );
            pattern.push_str(if any { ".+" } else { "[^/]+" });
            rest = &after[close + 1..];
        }
        pattern.push_str(r"\z");
        // A template within the cap always compiles (a few thousand NFA
        // states at most); a refusal would mean a template that matches
        // nothing, which is what `None` tells the caller.
        let automaton = regex::bytes::RegexBuilder::new(&pattern)
            .unicode(false)
            .build()
            .ok()?;
        Some(UriTemplate { automaton })
    }

    /// Whether `uri` is an instance of this template. URIs longer than
    /// [`MAX_TEMPLATE_URI_BYTES`] never match.
    pub fn matches(&self, uri: &str) -> bool {
        uri.len() <= MAX_TEMPLATE_URI_BYTES && self.automaton.is_match(uri.as_bytes())
    }
}

fn push_literal(pattern: &mut String, byte: u8) {
    use std::fmt::Write as _;
    let _ = write!(pattern, "\\x{byte:02X}");
}

/// Whether `uri` matches `template` ([`UriTemplate`]'s rules). Compiles the
/// template on every call: keep a [`UriTemplate`] where one is matched
/// repeatedly.
pub fn template_matches(template: &str, uri: &str) -> bool {
    uri.len() <= MAX_TEMPLATE_URI_BYTES
        && UriTemplate::parse(template).is_some_and(|t| t.matches(uri))
}

#[cfg(test)]
#[path = "federation_tests.rs"]
mod tests;
