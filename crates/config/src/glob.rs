//! Tool-name patterns: `*` matches any run of characters (including none);
//! every other character matches itself. No `?`, no classes, no escapes:
//! exposed tool names only use `[A-Za-z0-9_-]`, so nothing needs escaping.

/// Whether `name` matches `pattern`: the policy crate's matcher, so that a
/// virtual server's tool patterns and authorization's globs agree on every
/// name.
///
/// ```
/// use warden_config::glob_match;
/// assert!(glob_match("notes__*", "notes__search"));
/// assert!(glob_match("*__read_*", "fs__read_file"));
/// assert!(!glob_match("notes__*", "time__now"));
/// assert!(glob_match("exact", "exact"));
/// ```
pub use warden_policy::glob_match;

/// Characters a pattern may contain: those of exposed tool names, plus `*`.
pub(crate) fn is_pattern_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*')
}

/// Whether some name of the form `prefix` + (one or more characters) could
/// match `pattern`. Used to catch patterns in a virtual server that can never
/// select a tool of any of its servers.
pub(crate) fn could_match_with_prefix(pattern: &str, prefix: &str) -> bool {
    let pattern = pattern.as_bytes();
    // The set of pattern positions reachable after consuming `prefix`
    // (an NFA simulation; patterns are short, so a Vec<bool> is fine).
    let mut states = vec![false; pattern.len() + 1];
    states[0] = true;
    close_over_stars(pattern, &mut states);
    for &c in prefix.as_bytes() {
        let mut next = vec![false; pattern.len() + 1];
        for (i, _) in states.iter().enumerate().filter(|(_, on)| **on) {
            match pattern.get(i) {
                Some(b'*') => next[i] = true,
                Some(&pc) if pc == c => next[i + 1] = true,
                _ => {}
            }
        }
        close_over_stars(pattern, &mut next);
        states = next;
    }
    // The rest of the pattern must be able to match a non-empty tool name:
    // any non-empty remainder can (its literals are valid name characters).
    states
        .iter()
        .enumerate()
        .any(|(i, on)| *on && i < pattern.len())
}

/// A `*` may match nothing: a state before a `*` also reaches the state after it.
fn close_over_stars(pattern: &[u8], states: &mut [bool]) {
    for i in 0..pattern.len() {
        if states[i] && pattern[i] == b'*' {
            states[i + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn literal_patterns() {
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("abc", "abcd"));
        assert!(!glob_match("abcd", "abc"));
    }

    #[test]
    fn star_patterns() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*", "a"));
        assert!(glob_match("a*c", "abbbc"));
        assert!(!glob_match("a*c", "abbbd"));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
        assert!(!glob_match("*a*b*", "xxbxxaxx"));
        assert!(glob_match("**", "x"));
        assert!(glob_match("a*b*c", "abcbc"));
        assert!(glob_match("*__*", "git__status"));
    }

    #[test]
    fn question_mark_is_literal() {
        assert!(glob_match("a?c", "a?c"));
        assert!(!glob_match("a?c", "abc"));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let name = "a".repeat(10_000);
        let pattern = format!("{}b", "a*".repeat(50));
        assert!(!glob_match(&pattern, &name));
    }

    #[test]
    fn prefix_compatibility() {
        assert!(could_match_with_prefix("notes__*", "notes__"));
        assert!(could_match_with_prefix("*", "notes__"));
        assert!(could_match_with_prefix("*__read", "fs__"));
        assert!(could_match_with_prefix("notes__search", "notes__"));
        assert!(!could_match_with_prefix("time__*", "notes__"));
        // would need an empty tool name
        assert!(!could_match_with_prefix("notes__", "notes__"));
        assert!(could_match_with_prefix("notes_*", "notes__"));
        assert!(!could_match_with_prefix("notes", "notes__"));
    }

    /// Reference implementation: straightforward recursion.
    fn reference(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|k| reference(rest, &n[k..])),
            Some((c, rest)) => n.first() == Some(c) && reference(rest, &n[1..]),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_reference(pattern in "[ab*]{0,8}", name in "[ab]{0,10}") {
            prop_assert_eq!(
                glob_match(&pattern, &name),
                reference(pattern.as_bytes(), name.as_bytes())
            );
        }

        #[test]
        fn prefix_compatibility_agrees_with_matching(
            pattern in "[ab*]{0,6}", prefix in "[ab]{0,4}", rest in "[ab]{1,4}"
        ) {
            // If some concrete continuation matches, the check must say "could match".
            if glob_match(&pattern, &format!("{prefix}{rest}")) {
                prop_assert!(could_match_with_prefix(&pattern, &prefix));
            }
        }
    }
}
