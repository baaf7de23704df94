//! The input stage: limits, forbidden characters, prompt injection in
//! string arguments, then the tool's schema (and strict mode).

use std::borrow::Cow;
use std::ops::Range;

use serde_json::value::RawValue;

use crate::finding::{self, Finding, RuleId};
use crate::guard::{Inner, InputVerdict};
use crate::json::{self, json_string, pointer, Container, Seg, Visitor, WalkError};
use crate::output::label;
use crate::rules::Family;
use crate::scan::Families;
use crate::schema;
use crate::settings::{Action, CharPolicy, SchemaMode, ToolGuards};
use crate::unicode;

struct Denial {
    path: String,
    rule: RuleId,
    message: String,
}

struct InputWalk<'g> {
    inner: &'g Inner,
    t: &'g ToolGuards,
    tool: &'g str,
    findings: Vec<Finding>,
    edits: Vec<(Range<usize>, String)>,
}

impl<'a> Visitor<'a> for InputWalk<'_> {
    type Stop = Denial;

    fn open(&mut self, path: &[Seg<'a>], depth: usize, _: Container) -> Result<(), Denial> {
        if depth > self.t.limits.max_depth {
            return Err(Denial {
                path: pointer(path),
                rule: RuleId::INPUT_DEPTH,
                message: format!(
                    "arguments nest deeper than {} levels",
                    self.t.limits.max_depth
                ),
            });
        }
        Ok(())
    }

    fn array_len(&mut self, path: &[Seg<'a>], len: usize) -> Result<(), Denial> {
        if len > self.t.limits.max_array_items {
            return Err(Denial {
                path: pointer(path),
                rule: RuleId::INPUT_ARRAY_ITEMS,
                message: format!(
                    "array has {len} items; the limit is {}",
                    self.t.limits.max_array_items
                ),
            });
        }
        Ok(())
    }

    fn key(&mut self, path: &[Seg<'a>], key: &str) -> Result<(), Denial> {
        let at = || {
            let mut p = pointer(path);
            p.push('/');
            p.push_str(&pointer(&[Seg::Key(key.into())])[1..]);
            p
        };
        if key.len() > self.t.limits.max_string_bytes {
            return Err(Denial {
                path: at(),
                rule: RuleId::INPUT_STRING_BYTES,
                message: format!(
                    "property name is {} bytes; the limit is {}",
                    key.len(),
                    self.t.limits.max_string_bytes
                ),
            });
        }
        if self.t.forbidden_chars != CharPolicy::Allow {
            if let Some((_, class)) = unicode::forbidden(key).first() {
                return Err(Denial {
                    path: at(),
                    rule: RuleId::INPUT_FORBIDDEN_CHAR,
                    message: format!("property name contains a forbidden character ({class})"),
                });
            }
        }
        Ok(())
    }

    fn string(
        &mut self,
        path: &[Seg<'a>],
        raw: Range<usize>,
        value: Cow<'a, str>,
    ) -> Result<(), Denial> {
        let limit = self.t.limits.max_string_bytes;
        if value.len() > limit {
            return Err(Denial {
                path: pointer(path),
                rule: RuleId::INPUT_STRING_BYTES,
                message: format!("string is {} bytes; the limit is {limit}", value.len()),
            });
        }
        let mut current: Cow<'a, str> = value;
        let mut changed = false;
        let hits = unicode::forbidden(&current);
        if !hits.is_empty() {
            let loc = pointer(path);
            match self.t.forbidden_chars {
                CharPolicy::Reject => {
                    let (offset, class) = hits[0];
                    let index = current[..offset].chars().count();
                    return Err(Denial {
                        path: loc,
                        rule: RuleId::INPUT_FORBIDDEN_CHAR,
                        message: format!(
                            "string contains a forbidden character ({class}) at character {index}"
                        ),
                    });
                }
                CharPolicy::Strip | CharPolicy::Allow => {
                    let action = if self.t.forbidden_chars == CharPolicy::Strip {
                        Action::Redact
                    } else {
                        Action::Log
                    };
                    for (_, class) in &hits {
                        finding::add(
                            &mut self.findings,
                            class,
                            RuleId::INPUT_FORBIDDEN_CHAR,
                            &loc,
                            action,
                            1,
                        );
                    }
                    if action == Action::Redact {
                        current = Cow::Owned(unicode::strip(&current));
                        changed = true;
                    }
                }
            }
        }
        if !self.t.input_injection.all_off() {
            let mut labels: Vec<&'static str> = Vec::new();
            let mut loc: Option<String> = None;
            for d in self.inner.scanner.scan(&current, Families::INPUT) {
                if d.family != Family::Injection {
                    continue;
                }
                let action = self.t.input_injection.action(d.class);
                if action == Action::Off {
                    continue;
                }
                let l = loc.get_or_insert_with(|| pointer(path));
                finding::add(
                    &mut self.findings,
                    d.class,
                    RuleId::INPUT_INJECTION,
                    l,
                    action,
                    1,
                );
                match action {
                    Action::Block => {
                        return Err(Denial {
                            path: l.clone(),
                            rule: RuleId::INPUT_INJECTION,
                            message: format!("string looks like a prompt injection ({})", d.class),
                        })
                    }
                    Action::Label if !labels.contains(&d.class) => labels.push(d.class),
                    _ => {}
                }
            }
            if !labels.is_empty() {
                current = Cow::Owned(label(self.tool, &labels, &current));
                changed = true;
            }
        }
        if changed {
            self.edits.push((raw, json_string(&current)));
        }
        Ok(())
    }
}

fn deny(
    path: impl Into<String>,
    rule: RuleId,
    message: impl Into<String>,
    findings: Vec<Finding>,
) -> InputVerdict {
    InputVerdict::Deny {
        path: path.into(),
        rule,
        message: message.into(),
        findings,
    }
}

pub(crate) fn splice(text: &str, mut edits: Vec<(Range<usize>, String)>) -> Option<String> {
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for (r, rep) in edits {
        if r.start < at {
            return None;
        }
        out.push_str(text.get(at..r.start)?);
        out.push_str(&rep);
        at = r.end;
    }
    out.push_str(text.get(at..)?);
    Some(out)
}

pub(crate) fn check(
    inner: &Inner,
    tool: &str,
    server: &str,
    schema: Option<&RawValue>,
    arguments: Option<&RawValue>,
) -> InputVerdict {
    let t = inner.settings.for_tool(tool, server);
    let text = arguments.map_or("{}", RawValue::get);
    if text.len() > t.limits.max_total_bytes {
        return deny(
            "",
            RuleId::INPUT_TOTAL_BYTES,
            format!(
                "arguments are {} bytes; the limit is {}",
                text.len(),
                t.limits.max_total_bytes
            ),
            Vec::new(),
        );
    }
    if !text.trim_start().starts_with('{') {
        return deny(
            "",
            RuleId::INPUT_NOT_JSON,
            "arguments must be a JSON object",
            Vec::new(),
        );
    }
    let mut walk = InputWalk {
        inner,
        t: &t,
        tool,
        findings: Vec::new(),
        edits: Vec::new(),
    };
    match json::walk(text, &mut walk) {
        Ok(()) => {}
        Err(WalkError::Syntax(_)) => {
            return deny(
                "",
                RuleId::INPUT_NOT_JSON,
                "arguments are not valid JSON",
                walk.findings,
            )
        }
        Err(WalkError::Stopped(d)) => return deny(d.path, d.rule, d.message, walk.findings),
    }
    let findings = walk.findings;
    let rewritten = if walk.edits.is_empty() {
        None
    } else {
        match splice(text, walk.edits) {
            Some(s) => Some(s),
            None => {
                return deny(
                    "",
                    RuleId::INPUT_NOT_JSON,
                    "arguments could not be rewritten",
                    findings,
                )
            }
        }
    };
    if let Some(schema) = schema {
        let compiled = inner.schemas.get(schema.get());
        let validator = match &compiled.validator {
            Ok(v) => v,
            Err(e) => {
                return deny(
                    "",
                    RuleId::INPUT_SCHEMA_UNUSABLE,
                    format!("the tool's input schema is unusable: {e}"),
                    findings,
                )
            }
        };
        let effective = rewritten.as_deref().unwrap_or(text);
        let instance: serde_json::Value = match serde_json::from_str(effective) {
            Ok(v) => v,
            Err(_) => {
                return deny(
                    "",
                    RuleId::INPUT_NOT_JSON,
                    "arguments are not valid JSON",
                    findings,
                )
            }
        };
        if let Some(e) = validator.iter_errors(&instance).next() {
            let path = e.instance_path().to_string();
            let message = format!(
                "argument {} fails the schema's `{}` keyword: {}",
                if path.is_empty() { "(root)" } else { &path },
                e.kind().keyword(),
                e.masked()
            );
            return deny(path, RuleId::INPUT_SCHEMA, message, findings);
        }
        if t.schema_mode == SchemaMode::Strict {
            if let Some(path) = schema::undeclared(&instance, &compiled.schema) {
                return deny(
                    path,
                    RuleId::INPUT_STRICT,
                    "property is not declared by the tool's input schema (strict mode)",
                    findings,
                );
            }
        }
    }
    InputVerdict::Allow {
        rewritten,
        findings,
    }
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
