//! Small text helpers shared by the scanner, the diff and the reports.

use std::fmt::Write as _;

/// Escapes everything a terminal or a log could interpret: C0/C1 controls,
/// DEL, and invisible or direction-changing format characters. Printable
/// text, including non-ASCII letters, is kept.
pub fn escape_untrusted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// For text that is already JSON (whose escapes must stay readable): only
/// characters a terminal would act on or not show are escaped, as `\u{…}`
/// (which is not JSON syntax, so it cannot be mistaken for the original).
pub fn escape_json_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if needs_escape(c) {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// [`escape_untrusted`], cut to at most `max` characters (an ellipsis marks the cut).
pub fn escape_excerpt(s: &str, max: usize) -> String {
    let escaped = escape_untrusted(s);
    truncate_chars(&escaped, max)
}

/// Cuts to at most `max` characters, ending in `…` when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Characters that are invisible, reorder text, or drive a terminal.
pub fn needs_escape(c: char) -> bool {
    let u = c as u32;
    c.is_control()
        || matches!(u,
            0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
            | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
            | 0xFEFF | 0xFFA0 | 0xFFF9..=0xFFFB | 0xE0000..=0xE0FFF)
}

/// One reference token of a JSON pointer (RFC 6901: `~` → `~0`, `/` → `~1`).
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_invisibles() {
        assert_eq!(
            escape_untrusted("a\u{1b}[31mb\u{200b}c\u{e0041}"),
            "a\\u{001b}[31mb\\u{200b}c\\u{e0041}"
        );
        assert_eq!(escape_untrusted("über\n"), "über\\n");
    }

    #[test]
    fn json_text_keeps_its_escapes() {
        assert_eq!(escape_json_text(r#""a\nb\u0007""#), r#""a\nb\u0007""#);
        assert_eq!(escape_json_text("\"x\u{202e}y\""), "\"x\\u{202e}y\"");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_chars("ééééé", 3), "éé…");
        assert_eq!(truncate_chars("abc", 3), "abc");
    }

    #[test]
    fn pointer_tokens_escape_tilde_then_slash() {
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
    }
}
