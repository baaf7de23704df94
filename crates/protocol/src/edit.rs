//! Byte-preserving edits: replace exactly the fields Warden owns and leave
//! every other byte of a message as the peer wrote it.

use std::ops::Range;

use serde_json::value::RawValue;

/// One replacement of a byte range of the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub replacement: String,
}

/// Edits against one original text, applied together.
#[derive(Debug, Default, Clone)]
pub struct EditSet {
    edits: Vec<Edit>,
}

/// Where `part` (a slice borrowed from `whole`) sits in `whole`.
///
/// Returns `None` when `part` does not point into `whole`; callers treat that
/// as an internal error rather than guessing.
pub fn span_of(whole: &str, part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

impl EditSet {
    pub fn new() -> Self {
        EditSet { edits: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// Replaces the raw value `part` (borrowed from `whole`) with `replacement`.
    /// Returns false when `part` is not inside `whole`.
    pub fn replace(&mut self, whole: &str, part: &RawValue, replacement: String) -> bool {
        match span_of(whole, part.get()) {
            Some(range) => {
                self.edits.push(Edit { range, replacement });
                true
            }
            None => false,
        }
    }

    /// Replaces a raw value with a JSON string.
    pub fn replace_with_str(&mut self, whole: &str, part: &RawValue, value: &str) -> bool {
        self.replace(whole, part, json_string(value))
    }

    /// Inserts `text` right after the opening `{` of the object `obj`.
    pub fn insert_first_member(&mut self, whole: &str, obj: &RawValue, text: String) -> bool {
        match span_of(whole, obj.get()) {
            Some(range) if obj.get().starts_with('{') => {
                let at = range.start + 1;
                self.edits.push(Edit {
                    range: at..at,
                    replacement: text,
                });
                true
            }
            _ => false,
        }
    }

    /// Applies the edits to `whole`. Overlapping edits are a caller bug and
    /// are refused (`None`).
    pub fn apply(mut self, whole: &str) -> Option<String> {
        self.edits.sort_by_key(|e| (e.range.start, e.range.end));
        let extra: usize = self.edits.iter().map(|e| e.replacement.len()).sum();
        let mut out = String::with_capacity(whole.len() + extra);
        let mut at = 0;
        for e in &self.edits {
            if e.range.start < at || e.range.end > whole.len() {
                return None;
            }
            out.push_str(whole.get(at..e.range.start)?);
            out.push_str(&e.replacement);
            at = e.range.end;
        }
        out.push_str(whole.get(at..)?);
        Some(out)
    }
}

/// A string as a JSON string literal.
pub fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{member, parse_one};

    #[test]
    fn replaces_only_owned_fields_and_keeps_the_rest() {
        let text = r#"{ "jsonrpc":"2.0", "id": "abc" ,"method":"tools/call","params":{"name":"srv__echo","x-unknown":{"k":[1,2]},"arguments":{"name":"inner"}}}"#;
        let m = parse_one(text).unwrap();
        let mut edits = EditSet::new();
        assert!(edits.replace(text, m.id.unwrap().raw_value(), "17".into()));
        assert!(edits.replace_with_str(text, m.param("name").unwrap(), "echo"));
        let out = edits.apply(text).unwrap();
        assert_eq!(
            out,
            r#"{ "jsonrpc":"2.0", "id": 17 ,"method":"tools/call","params":{"name":"echo","x-unknown":{"k":[1,2]},"arguments":{"name":"inner"}}}"#
        );
    }

    #[test]
    fn refuses_foreign_slices_and_overlaps() {
        let text = r#"{"a":1}"#;
        let other: &RawValue = serde_json::from_str("1").unwrap();
        let mut e = EditSet::new();
        assert!(!e.replace(text, other, "2".into()));
        let v: &RawValue = serde_json::from_str(text).unwrap();
        let a = member(v, "a").unwrap();
        let mut e = EditSet::new();
        e.replace(text, a, "2".into());
        e.replace(text, v, "{}".into());
        assert!(e.apply(text).is_none());
    }

    #[test]
    fn inserts_members() {
        let text = r#"{"b":2}"#;
        let v: &RawValue = serde_json::from_str(text).unwrap();
        let mut e = EditSet::new();
        e.insert_first_member(text, v, r#""a":1,"#.into());
        assert_eq!(e.apply(text).unwrap(), r#"{"a":1,"b":2}"#);
    }
}
