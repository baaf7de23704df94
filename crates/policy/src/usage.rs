//! Which attributes of `principal` and `context` the policies read.
//!
//! Building Cedar values costs: a principal's roles, groups and scopes are
//! sets, `context.time` a record. An attribute no policy reads cannot
//! change a decision, so `decide` leaves it out. The analysis walks each
//! policy's JSON form (Cedar's stable interchange format): an attribute is
//! read through `.` or `has` (`e["a"]` is the same node) on the variable.
//! Any other use of `context` (passing the whole record somewhere) counts
//! as reading every attribute. Other uses of `principal` (`==`, `in`, `is`)
//! compare identity and ancestors, never attributes.
//!
//! `explain` always builds everything, validated against the schema in
//! debug builds; the tests compare its decisions with `decide`'s.

use std::collections::HashSet;

use cedar_policy::Policy;
use serde_json::Value;

#[derive(Debug, Default)]
pub(crate) struct Usage {
    principal: HashSet<String>,
    context: HashSet<String>,
    whole_context: bool,
}

impl Usage {
    pub(crate) fn of<'a>(policies: impl Iterator<Item = &'a Policy>) -> Result<Usage, String> {
        let mut u = Usage::default();
        for p in policies {
            let json = p.to_json().map_err(|e| format!("{}: {e}", p.id()))?;
            u.walk(&json);
        }
        Ok(u)
    }

    pub(crate) fn principal(&self, attr: &str) -> bool {
        self.principal.contains(attr)
    }

    pub(crate) fn context(&self, attr: &str) -> bool {
        self.whole_context || self.context.contains(attr)
    }

    fn walk(&mut self, v: &Value) {
        match v {
            Value::Object(obj) => {
                for (k, inner) in obj {
                    match k.as_str() {
                        "." | "has" => self.attribute(inner),
                        "Var" if is_var(inner, "context") => self.whole_context = true,
                        _ => self.walk(inner),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| self.walk(i)),
            _ => {}
        }
    }

    /// `{ "left": …, "attr": "a" | ["a", "b", …] }`.
    fn attribute(&mut self, inner: &Value) {
        let left = inner.get("left");
        let attr = match inner.get("attr") {
            Some(Value::String(a)) => Some(a.as_str()),
            Some(Value::Array(a)) => a.first().and_then(Value::as_str),
            _ => None,
        };
        let var = left.and_then(|l| l.get("Var"));
        match (var, attr) {
            (Some(v), Some(a)) if is_var(v, "context") => {
                self.context.insert(a.to_owned());
            }
            (Some(v), Some(a)) if is_var(v, "principal") => {
                self.principal.insert(a.to_owned());
            }
            (_, None) if var.is_some_and(|v| is_var(v, "context")) => self.whole_context = true,
            _ => {
                if let Some(l) = left {
                    self.walk(l);
                }
            }
        }
    }
}

fn is_var(v: &Value, name: &str) -> bool {
    v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(src: &str) -> Usage {
        let p: Policy = src.parse().expect("policy");
        Usage::of(std::iter::once(&p)).expect("usage")
    }

    #[test]
    fn reads_through_dot_has_and_index() {
        let u = usage(
            r#"permit (principal, action, resource) when {
                principal has tenant && principal.tenant == "a" &&
                context.time.hour > 8 && context["environment"] == "x" &&
                context has approval.granted && resource.name == principal["subject"]
            };"#,
        );
        for a in ["tenant", "subject"] {
            assert!(u.principal(a), "{a}");
        }
        assert!(!u.principal("roles"));
        for a in ["time", "environment", "approval"] {
            assert!(u.context(a), "{a}");
        }
        assert!(!u.context("session"));
    }

    #[test]
    fn a_whole_context_counts_as_everything() {
        let u = usage(r#"permit (principal, action, resource) when { context == {} };"#);
        assert!(u.context("session") && u.context("time"));
    }

    #[test]
    fn identity_uses_of_principal_read_no_attribute() {
        let u = usage(
            r#"permit (principal in Warden::Role::"a", action, resource) when { principal == resource || principal is Warden::User };"#,
        );
        assert!(!u.principal("roles") && !u.principal("subject"));
        assert!(!u.context("time"));
    }
}
