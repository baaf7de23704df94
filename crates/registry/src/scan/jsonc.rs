//! JSON with comments and trailing commas (VS Code's `settings.json` and
//! `mcp.json`), turned into plain JSON of the same length-ish, without ever
//! touching string contents.

/// Removes `//` and `/* */` comments and trailing commas before `}` / `]`,
/// outside strings. Never fails: what is not JSON stays for the JSON parser
/// to reject.
pub fn strip(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            out.push(b);
            if b == b'\\' {
                if let Some(&next) = bytes.get(i + 1) {
                    out.push(next);
                    i += 1;
                }
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match (b, bytes.get(i + 1)) {
            (b'"', _) => {
                in_string = true;
                out.push(b);
                i += 1;
            }
            (b'/', Some(b'/')) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            (b'/', Some(b'*')) => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(bytes.len());
                out.push(b' ');
            }
            (b'}' | b']', _) => {
                // Drop a trailing comma (and the whitespace after it).
                let mut j = out.len();
                while j > 0 && out[j - 1].is_ascii_whitespace() {
                    j -= 1;
                }
                if j > 0 && out[j - 1] == b',' {
                    out.remove(j - 1);
                }
                out.push(b);
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were removed and multi-byte sequences copied whole.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::strip;

    #[test]
    fn removes_comments_and_trailing_commas_outside_strings() {
        let src = "{\n // a comment\n \"a\": \"http://x/*y*/\", /* block */\n \"b\": [1, 2,],\n}";
        let v: serde_json::Value = serde_json::from_str(&strip(src)).unwrap();
        assert_eq!(v["a"], "http://x/*y*/");
        assert_eq!(v["b"], serde_json::json!([1, 2]));
    }

    #[test]
    fn escaped_quotes_do_not_end_strings() {
        let src = r#"{"a": "say \"// not a comment\"", }"#;
        let v: serde_json::Value = serde_json::from_str(&strip(src)).unwrap();
        assert_eq!(v["a"], "say \"// not a comment\"");
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for s in ["/*", "\"abc", "{,", "//", "\"\\", "é/", "{\"é\":1,}"] {
            let _ = strip(s);
        }
    }
}
