//! Tool input schemas: compiled once per schema text (the same bytes the
//! registry pins), with the `$schema` dialect
//! honoured (2020-12 when absent), remote `$ref` never fetched, and
//! `pattern` run by a backtracking-limited engine. Strict mode is a second
//! walk over the arguments beside the validator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex_automata::meta::Regex;
use serde_json::Value;

/// Compiled schemas kept at most; past this the cache starts over (schemas
/// are pinned per tool, so the working set is the number of tools).
const CACHE_CAP: usize = 4096;

pub(crate) struct CompiledSchema {
    pub validator: Result<jsonschema::Validator, String>,
    pub schema: Value,
}

/// Keyed by the schema's text itself: the std map's hasher is keyed per
/// process (no chosen-collision flooding) and equal texts are compared in
/// full, so no digest is computed on the call path (a SHA-256 of the text
/// per call was 10.8 k instructions of a bare call's 258 k).
#[derive(Default)]
pub(crate) struct SchemaCache {
    map: Mutex<HashMap<Box<str>, Arc<CompiledSchema>>>,
}

impl SchemaCache {
    pub fn get(&self, text: &str) -> Arc<CompiledSchema> {
        if let Ok(map) = self.map.lock() {
            if let Some(c) = map.get(text) {
                return c.clone();
            }
        }
        let compiled = Arc::new(compile(text));
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= CACHE_CAP {
                map.clear();
            }
            map.insert(text.into(), compiled.clone());
        }
        compiled
    }
}

fn compile(text: &str) -> CompiledSchema {
    let schema: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => {
            return CompiledSchema {
                validator: Err("the schema is not JSON".into()),
                schema: Value::Null,
            }
        }
    };
    let validator = jsonschema::options()
        .offline()
        .with_pattern_options(jsonschema::PatternOptions::fancy_regex().backtrack_limit(10_000))
        .build(&schema)
        .map_err(|e| format!("the schema does not compile ({})", e.masked()));
    CompiledSchema { validator, schema }
}

/// What an object schema declares, gathered across `allOf`, `anyOf`,
/// `oneOf`, `if`/`then`/`else`, `dependentSchemas` and local `$ref`s.
#[derive(Default)]
struct Declared<'s> {
    /// Any of `properties`, `patternProperties`, `additionalProperties`,
    /// `unevaluatedProperties`: without them the object is free-form.
    speaks_of_properties: bool,
    extra_allowed: bool,
    properties: Vec<(&'s str, &'s Value)>,
    patterns: Vec<&'s str>,
    additional: Vec<&'s Value>,
}

fn gather<'s>(schema: &'s Value, root: &'s Value, out: &mut Declared<'s>, budget: &mut usize) {
    if *budget == 0 {
        // A cycle of `$ref`s: be permissive rather than loop.
        out.extra_allowed = true;
        return;
    }
    *budget -= 1;
    let Value::Object(o) = schema else {
        if schema == &Value::Bool(true) {
            // `true` accepts anything, including any property.
            out.speaks_of_properties = true;
            out.extra_allowed = true;
        }
        return;
    };
    if let Some(Value::Object(props)) = o.get("properties") {
        out.speaks_of_properties = true;
        for (k, v) in props {
            out.properties.push((k.as_str(), v));
        }
    }
    if let Some(Value::Object(pp)) = o.get("patternProperties") {
        out.speaks_of_properties = true;
        out.patterns.extend(pp.keys().map(String::as_str));
        out.additional.extend(pp.values());
    }
    for key in ["additionalProperties", "unevaluatedProperties"] {
        match o.get(key) {
            None | Some(Value::Bool(false)) => {}
            Some(v) => {
                out.speaks_of_properties = true;
                out.extra_allowed = true;
                out.additional.push(v);
            }
        }
        if o.get(key) == Some(&Value::Bool(false)) {
            out.speaks_of_properties = true;
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(subs)) = o.get(key) {
            for s in subs {
                gather(s, root, out, budget);
            }
        }
    }
    for key in ["if", "then", "else"] {
        if let Some(s) = o.get(key) {
            gather(s, root, out, budget);
        }
    }
    if let Some(Value::Object(deps)) = o.get("dependentSchemas") {
        for s in deps.values() {
            gather(s, root, out, budget);
        }
    }
    if let Some(target) = local_ref(o.get("$ref"), root) {
        gather(target, root, out, budget);
    }
}

fn local_ref<'s>(r: Option<&Value>, root: &'s Value) -> Option<&'s Value> {
    let r = r?.as_str()?;
    let pointer = r.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(root);
    }
    root.pointer(pointer)
}

fn item_schemas<'s>(
    schema: &'s Value,
    root: &'s Value,
    index: usize,
    out: &mut Vec<&'s Value>,
    budget: &mut usize,
) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    let Value::Object(o) = schema else { return };
    match (o.get("prefixItems"), o.get("items")) {
        (Some(Value::Array(prefix)), items) => match prefix.get(index) {
            Some(s) => out.push(s),
            None => out.extend(items),
        },
        (None, Some(Value::Array(tuple))) => match tuple.get(index) {
            Some(s) => out.push(s),
            None => out.extend(o.get("additionalItems")),
        },
        (None, Some(items)) => out.push(items),
        _ => {}
    }
    for key in ["allOf", "anyOf", "oneOf", "then", "else"] {
        match o.get(key) {
            Some(Value::Array(subs)) => {
                for s in subs {
                    item_schemas(s, root, index, out, budget);
                }
            }
            Some(s @ Value::Object(_)) => item_schemas(s, root, index, out, budget),
            _ => {}
        }
    }
    if let Some(target) = local_ref(o.get("$ref"), root) {
        item_schemas(target, root, index, out, budget);
    }
}

/// The first property an object schema does not declare, as a JSON pointer
/// (strict mode). Properties are allowed when declared by any branch of a
/// composition; `additionalProperties` / `unevaluatedProperties` other than
/// `false`, or an object schema that declares no properties at all, allow
/// any.
pub(crate) fn undeclared(instance: &Value, schema: &Value) -> Option<String> {
    let mut path = Vec::new();
    walk_strict(instance, &[schema], schema, &mut path, 0)
}

fn walk_strict(
    instance: &Value,
    schemas: &[&Value],
    root: &Value,
    path: &mut Vec<String>,
    depth: usize,
) -> Option<String> {
    if schemas.is_empty() || depth > 64 {
        return None;
    }
    match instance {
        Value::Object(map) => {
            let mut d = Declared::default();
            let mut budget = 256;
            for s in schemas {
                gather(s, root, &mut d, &mut budget);
            }
            let free_form = !d.speaks_of_properties;
            let patterns: Vec<Regex> = d
                .patterns
                .iter()
                .filter_map(|p| Regex::new(p).ok())
                .collect();
            let bad_patterns = patterns.len() != d.patterns.len();
            for (k, v) in map {
                let mut subs: Vec<&Value> = d
                    .properties
                    .iter()
                    .filter(|(name, _)| *name == k)
                    .map(|(_, s)| *s)
                    .collect();
                let by_pattern = patterns.iter().any(|re| re.is_match(k.as_str()));
                if subs.is_empty() && !by_pattern && !d.extra_allowed && !free_form && !bad_patterns
                {
                    path.push(k.clone());
                    return Some(crate::json::pointer(
                        &path
                            .iter()
                            .map(|s| crate::json::Seg::Key(s.as_str().into()))
                            .collect::<Vec<_>>(),
                    ));
                }
                if subs.is_empty() {
                    subs.extend(d.additional.iter().filter(|s| s.is_object()));
                }
                path.push(k.clone());
                let r = walk_strict(v, &subs, root, path, depth + 1);
                path.pop();
                if r.is_some() {
                    return r;
                }
            }
            None
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let mut subs = Vec::new();
                let mut budget = 256;
                for s in schemas {
                    item_schemas(s, root, i, &mut subs, &mut budget);
                }
                path.push(i.to_string());
                let r = walk_strict(v, &subs, root, path, depth + 1);
                path.pop();
                if r.is_some() {
                    return r;
                }
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(schema: Value, args: Value) -> Option<String> {
        undeclared(&args, &schema)
    }

    #[test]
    fn strict_mode() {
        let s = json!({"type":"object","properties":{"a":{"type":"string"}}});
        assert_eq!(check(s.clone(), json!({"a":"x"})), None);
        assert_eq!(check(s, json!({"a":"x","b":1})), Some("/b".into()));
        let open = json!({"type":"object","properties":{"a":{}},"additionalProperties":true});
        assert_eq!(check(open, json!({"b":1})), None);
        let free = json!({"type":"object"});
        assert_eq!(check(free, json!({"b":1})), None);
        let nested =
            json!({"type":"object","properties":{"o":{"type":"object","properties":{"x":{}}}}});
        assert_eq!(check(nested, json!({"o":{"y":1}})), Some("/o/y".into()));
        let composed = json!({"allOf":[{"properties":{"a":{}}},{"properties":{"b":{}}}]});
        assert_eq!(check(composed.clone(), json!({"a":1,"b":2})), None);
        assert_eq!(check(composed, json!({"a":1,"c":2})), Some("/c".into()));
        let reffed =
            json!({"$defs":{"P":{"properties":{"z":{}}}},"properties":{"p":{"$ref":"#/$defs/P"}}});
        assert_eq!(check(reffed, json!({"p":{"q":1}})), Some("/p/q".into()));
        let arr = json!({"properties":{"l":{"type":"array","items":{"properties":{"k":{}}}}}});
        assert_eq!(
            check(arr, json!({"l":[{"k":1},{"j":2}]})),
            Some("/l/1/j".into())
        );
        let pat = json!({"properties":{},"patternProperties":{"^x_":{}}});
        assert_eq!(check(pat.clone(), json!({"x_1":1})), None);
        assert_eq!(check(pat, json!({"y":1})), Some("/y".into()));
        let cyclic = json!({"$ref":"#"});
        assert_eq!(check(cyclic, json!({"a":{"b":1}})), None);
    }

    #[test]
    fn cache_compiles_once_and_refuses_remote_refs() {
        let c = SchemaCache::default();
        let a = c.get(r#"{"type":"object"}"#);
        let b = c.get(r#"{"type":"object"}"#);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(c
            .get(r#"{"$ref":"https://example.com/s.json"}"#)
            .validator
            .is_err());
        assert!(c.get("not json").validator.is_err());
        let d7 = c.get(r#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}"#);
        assert_eq!(
            d7.validator.as_ref().map(|v| v.draft()).ok(),
            Some(jsonschema::Draft::Draft7)
        );
    }
}
