//! Peer text made safe to write into Warden's log.
//!
//! An upstream's stderr and its invalid messages are attacker-controlled. A
//! raw line could forge log records (embedded newlines), rewrite a terminal
//! (escape sequences) or hide text from a reader (bidirectional overrides);
//! and it could be arbitrarily long. Each such character is escaped and the
//! text is cut at a bound.

/// `bytes` as UTF-8 (lossily), control and invisible formatting characters
/// escaped, cut to at most `max` bytes of input with a marker.
pub(crate) fn log_safe(bytes: &[u8], max: usize) -> String {
    let cut = bytes.len() > max;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() || is_invisible_format(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                _ => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            }
        } else {
            out.push(c);
        }
    }
    if cut {
        out.push_str(&format!("…[{} bytes]", bytes.len()));
    }
    out
}

/// Zero-width and bidirectional formatting characters.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::log_safe;

    #[test]
    fn escapes_controls_and_bidi() {
        assert_eq!(
            log_safe("a\nb\x1b[31m\u{202e}c".as_bytes(), 100),
            "a\\nb\\u{1b}[31m\\u{202e}c"
        );
    }

    #[test]
    fn truncates_at_the_bound_without_splitting_panics() {
        let s = "é".repeat(10);
        let out = log_safe(s.as_bytes(), 5);
        assert!(out.starts_with("éé"), "{out}");
        assert!(out.ends_with("…[20 bytes]"), "{out}");
        assert_eq!(log_safe(b"\xff\xfeok", 10), "\u{fffd}\u{fffd}ok");
    }
}
