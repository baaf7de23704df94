//! `*` globs, as in Cedar's `like`: `*` matches any run of characters
//! (including none), every other character matches itself. The Rust matcher
//! (catalog facts, scope requirements) and the Cedar text generated from a
//! glob (role grants) therefore agree on every name.

/// Whether `name` matches `pattern`.
///
/// Greedy with backtracking to the last `*` only: `O(pattern × name)` at
/// worst, no recursion.
#[must_use]
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern = pattern.as_bytes();
    let name = name.as_bytes();
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    p = star_p + 1;
                    n = star_n + 1;
                    star = Some((star_p, star_n + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// How specific a pattern is: exact names first, then more literal
/// characters. The most specific matching pattern wins in the catalog.
pub(crate) fn specificity(pattern: &str) -> (bool, usize) {
    let literal = pattern.chars().filter(|c| *c != '*').count();
    (!pattern.contains('*'), literal)
}

/// A Cedar string literal (with quotes) for `s`.
pub(crate) fn cedar_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    push_escaped(&mut out, s, false);
    out.push('"');
    out
}

/// A Cedar `like` pattern literal (with quotes) for the glob `pattern`: `*`
/// stays a wildcard, everything else is literal.
pub(crate) fn cedar_like(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 2);
    out.push('"');
    push_escaped(&mut out, pattern, true);
    out.push('"');
    out
}

/// A Cedar `like` pattern matching every string that starts with `prefix`
/// (a `*` in `prefix` is literal).
pub(crate) fn cedar_prefix_like(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 3);
    out.push('"');
    for c in prefix.chars() {
        if c == '*' {
            out.push_str("\\*");
        } else {
            push_escaped(&mut out, c.encode_utf8(&mut [0; 4]), false);
        }
    }
    out.push_str("*\"");
    out
}

fn push_escaped(out: &mut String, s: &str, star_is_wildcard: bool) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '*' if star_is_wildcard => out.push('*'),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("read_*", "read_file"));
        assert!(glob_match("*_file", "read_file"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(!glob_match("a*b*c", "acb"));
        assert!(!glob_match("read_*", "write_file"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("", "x"));
    }

    #[test]
    fn specificity_orders_exact_first() {
        assert!(specificity("repo.search") > specificity("repo.*"));
        assert!(specificity("repo.*") > specificity("*"));
    }

    #[test]
    fn cedar_literals_escape() {
        assert_eq!(cedar_string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(cedar_string("a\nb"), r#""a\u{a}b""#);
        assert_eq!(cedar_like("acme/*"), r#""acme/*""#);
        assert_eq!(cedar_prefix_like("/work*/"), r#""/work\*/*""#);
    }
}
