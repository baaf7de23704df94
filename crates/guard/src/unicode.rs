//! Characters that hide or reorder text: bidi controls (Trojan Source),
//! Unicode tag characters (invisible ASCII, U+E0000–E007F), zero-width
//! characters, and C0 controls other than tab, CR and LF.

/// The class of a forbidden character, or `None` for an ordinary one.
/// A zero-width joiner between two non-ASCII characters (emoji sequences
/// such as 👩‍💻) is ordinary.
pub(crate) fn class_of(c: char, prev: Option<char>, next: Option<char>) -> Option<&'static str> {
    match c {
        '\t' | '\n' | '\r' => None,
        '\u{0}'..='\u{1f}' => Some("control_char"),
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}' => {
            Some("bidi_control")
        }
        '\u{e0000}'..='\u{e007f}' => Some("unicode_tag"),
        '\u{200d}'
            if prev.is_some_and(|p| !p.is_ascii()) && next.is_some_and(|n| !n.is_ascii()) =>
        {
            None
        }
        '\u{200b}'
        | '\u{200c}'
        | '\u{200d}'
        | '\u{2060}'..='\u{2064}'
        | '\u{feff}'
        | '\u{180e}' => Some("zero_width"),
        _ => None,
    }
}

/// Fast check: plain printable ASCII (plus tab and newlines) has nothing
/// forbidden.
fn plain(s: &str) -> bool {
    s.is_ascii()
        && !s
            .bytes()
            .any(|b| b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r')
}

/// Fast check: ASCII text carries nothing but, at most, C0 controls —
/// no invisible or reordering characters.
pub(crate) fn hidden_possible(s: &str) -> bool {
    !s.is_ascii()
}

/// Each forbidden character: its byte offset and class.
pub(crate) fn forbidden(s: &str) -> Vec<(usize, &'static str)> {
    if plain(s) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut prev = None;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let next = it.peek().map(|(_, n)| *n);
        if let Some(class) = class_of(c, prev, next) {
            out.push((i, class));
        }
        prev = Some(c);
    }
    out
}

/// `s` without its forbidden characters.
pub(crate) fn strip(s: &str) -> String {
    let hits = forbidden(s);
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for (i, _) in hits {
        out.push_str(&s[at..i]);
        at = i + s[i..].chars().next().map_or(1, char::len_utf8);
    }
    out.push_str(&s[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(forbidden("plain text\twith tabs\n").is_empty());
        assert_eq!(forbidden("a\u{202e}b"), vec![(1, "bidi_control")]);
        assert_eq!(forbidden("a\u{e0041}"), vec![(1, "unicode_tag")]);
        assert_eq!(forbidden("a\u{200b}b"), vec![(1, "zero_width")]);
        assert_eq!(forbidden("a\u{7}b"), vec![(1, "control_char")]);
        assert!(forbidden("👩\u{200d}💻").is_empty());
        assert_eq!(forbidden("a\u{200d}b"), vec![(1, "zero_width")]);
        assert_eq!(forbidden("é ü"), vec![]);
    }

    #[test]
    fn stripping() {
        assert_eq!(strip("i\u{200b}gn\u{e0041}ore\u{202e}"), "ignore");
        assert_eq!(strip("plain"), "plain");
    }
}
