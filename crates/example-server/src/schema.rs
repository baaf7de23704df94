//! Checks tool arguments against the tool's own `inputSchema`, so that the
//! schema a client sees and the validation the server does cannot disagree.
//!
//! Only the subset of JSON Schema the tools here use: `type` (object,
//! string, integer, number, boolean, array), `properties`, `required`,
//! `additionalProperties: false`, `enum`, `minimum`, `maximum`,
//! `minLength`, `maxLength`, `items`.

use serde_json::Value;

/// Returns why `value` does not match `schema`, naming the argument.
pub(crate) fn check(value: &Value, schema: &Value) -> Result<(), String> {
    check_at(value, schema, "arguments")
}

fn check_at(value: &Value, schema: &Value, path: &str) -> Result<(), String> {
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let ok = match ty {
            "object" => value.is_object(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "null" => value.is_null(),
            _ => true,
        };
        if !ok {
            return Err(format!("{path} must be of type {ty}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            return Err(format!("{path} must be one of {}", list.join(", ")));
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if n < min {
                return Err(format!("{path} must be at least {min}"));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if n > max {
                return Err(format!("{path} must be at most {max}"));
            }
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if len < min {
                return Err(format!("{path} must be at least {min} characters"));
            }
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if len > max {
                return Err(format!("{path} must be at most {max} characters"));
            }
        }
    }
    if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check_at(item, schema, &format!("{path}[{i}]"))?;
        }
    }
    if let Some(obj) = value.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for key in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(key) {
                    return Err(format!("missing required argument {key:?}"));
                }
            }
        }
        let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
        for (key, v) in obj {
            match props.and_then(|p| p.get(key)) {
                Some(prop) => check_at(v, prop, key)?,
                None if closed => return Err(format!("unknown argument {key:?}")),
                None => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_the_subset_the_tools_use() {
        let schema = json!({
            "type": "object",
            "properties": {
                "title": { "type": "string", "minLength": 1 },
                "priority": { "type": "string", "enum": ["low", "high"] },
                "limit": { "type": "integer", "minimum": 1, "maximum": 5 },
                "tags": { "type": "array", "items": { "type": "string" } },
            },
            "required": ["title"],
            "additionalProperties": false,
        });
        assert!(check(&json!({ "title": "a" }), &schema).is_ok());
        assert!(check(&json!({ "title": "a", "tags": ["x"], "limit": 5 }), &schema).is_ok());
        let err = |v| check(&v, &schema).unwrap_err();
        assert_eq!(err(json!({})), "missing required argument \"title\"");
        assert_eq!(
            err(json!({ "title": "a", "x": 1 })),
            "unknown argument \"x\""
        );
        assert!(err(json!({ "title": "" })).contains("at least 1"));
        assert!(err(json!({ "title": "a", "priority": "urgent" })).contains("one of"));
        assert!(err(json!({ "title": "a", "limit": 6 })).contains("at most 5"));
        assert!(err(json!({ "title": "a", "limit": 1.5 })).contains("integer"));
        assert!(err(json!({ "title": "a", "tags": [1] })).contains("tags[0]"));
        assert!(err(json!([])).contains("object"));
    }
}
