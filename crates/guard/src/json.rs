//! A small walk over JSON text that reports every string with its exact
//! byte range and its path, so that changes can be spliced into the
//! original text without re-serialising anything else.
//!
//! Its input has usually passed the gateway's strict parse already; it is
//! still total (errors, never panics) and bounded in recursion.

use std::borrow::Cow;
use std::ops::Range;

/// Nesting beyond this is refused regardless of configuration, to bound
/// recursion.
pub(crate) const HARD_MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg<'a> {
    Key(Cow<'a, str>),
    Index(usize),
}

/// JSON pointer (RFC 6901) of a path.
pub(crate) fn pointer(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for s in path {
        out.push('/');
        match s {
            Seg::Key(k) => {
                for c in k.chars() {
                    match c {
                        '~' => out.push_str("~0"),
                        '/' => out.push_str("~1"),
                        c => out.push(c),
                    }
                }
            }
            Seg::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    Object,
    Array,
}

/// What the walk reports. Returning `Err` stops it.
pub(crate) trait Visitor<'a> {
    type Stop;
    /// A string value, with the range of its literal (quotes included).
    fn string(
        &mut self,
        path: &[Seg<'a>],
        raw: Range<usize>,
        value: Cow<'a, str>,
    ) -> Result<(), Self::Stop>;
    /// An object key (its path is the object's).
    fn key(&mut self, _path: &[Seg<'a>], _key: &str) -> Result<(), Self::Stop> {
        Ok(())
    }
    /// An object or array opens at `depth` (the top level is 1).
    fn open(
        &mut self,
        _path: &[Seg<'a>],
        _depth: usize,
        _kind: Container,
    ) -> Result<(), Self::Stop> {
        Ok(())
    }
    /// An array closes with `len` items.
    fn array_len(&mut self, _path: &[Seg<'a>], _len: usize) -> Result<(), Self::Stop> {
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WalkError<S> {
    /// Not JSON, or nested deeper than [`HARD_MAX_DEPTH`].
    Syntax(usize),
    Stopped(S),
}

pub(crate) fn walk<'a, V: Visitor<'a>>(text: &'a str, v: &mut V) -> Result<(), WalkError<V::Stop>> {
    let mut w = Walker {
        text,
        b: text.as_bytes(),
        at: 0,
        path: Vec::new(),
    };
    w.ws();
    w.value(v, 1)?;
    w.ws();
    if w.at != w.b.len() {
        return Err(WalkError::Syntax(w.at));
    }
    Ok(())
}

struct Walker<'a> {
    text: &'a str,
    b: &'a [u8],
    at: usize,
    path: Vec<Seg<'a>>,
}

impl<'a> Walker<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.at) {
            self.at += 1;
        }
    }

    fn err<S>(&self) -> WalkError<S> {
        WalkError::Syntax(self.at)
    }

    fn value<V: Visitor<'a>>(&mut self, v: &mut V, depth: usize) -> Result<(), WalkError<V::Stop>> {
        match self.b.get(self.at) {
            Some(b'{') => self.object(v, depth),
            Some(b'[') => self.array(v, depth),
            Some(b'"') => {
                let (raw, value) = self.string()?;
                v.string(&self.path, raw, value).map_err(WalkError::Stopped)
            }
            Some(b'-' | b'0'..=b'9') => {
                while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.b.get(self.at)
                {
                    self.at += 1;
                }
                Ok(())
            }
            Some(_) => {
                for lit in ["true", "false", "null"] {
                    if self.b[self.at..].starts_with(lit.as_bytes()) {
                        self.at += lit.len();
                        return Ok(());
                    }
                }
                Err(self.err())
            }
            None => Err(self.err()),
        }
    }

    fn object<V: Visitor<'a>>(
        &mut self,
        v: &mut V,
        depth: usize,
    ) -> Result<(), WalkError<V::Stop>> {
        if depth > HARD_MAX_DEPTH {
            return Err(self.err());
        }
        v.open(&self.path, depth, Container::Object)
            .map_err(WalkError::Stopped)?;
        self.at += 1;
        self.ws();
        if self.b.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.b.get(self.at) != Some(&b'"') {
                return Err(self.err());
            }
            let (_, key) = self.string()?;
            v.key(&self.path, &key).map_err(WalkError::Stopped)?;
            self.ws();
            if self.b.get(self.at) != Some(&b':') {
                return Err(self.err());
            }
            self.at += 1;
            self.ws();
            self.path.push(Seg::Key(key));
            let r = self.value(v, depth + 1);
            self.path.pop();
            r?;
            self.ws();
            match self.b.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn array<V: Visitor<'a>>(&mut self, v: &mut V, depth: usize) -> Result<(), WalkError<V::Stop>> {
        if depth > HARD_MAX_DEPTH {
            return Err(self.err());
        }
        v.open(&self.path, depth, Container::Array)
            .map_err(WalkError::Stopped)?;
        self.at += 1;
        self.ws();
        let mut n = 0;
        if self.b.get(self.at) == Some(&b']') {
            self.at += 1;
            return v.array_len(&self.path, 0).map_err(WalkError::Stopped);
        }
        loop {
            self.ws();
            self.path.push(Seg::Index(n));
            let r = self.value(v, depth + 1);
            self.path.pop();
            r?;
            n += 1;
            self.ws();
            match self.b.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return v.array_len(&self.path, n).map_err(WalkError::Stopped);
                }
                _ => return Err(self.err()),
            }
        }
    }

    /// A string literal at `self.at`: its range and its decoded value.
    fn string<S>(&mut self) -> Result<(Range<usize>, Cow<'a, str>), WalkError<S>> {
        let start = self.at;
        let body = start + 1;
        let rest = self.b.get(body..).unwrap_or(&[]);
        let Some(i) = memchr::memchr2(b'"', b'\\', rest) else {
            self.at = self.b.len();
            return Err(self.err());
        };
        if rest[i] == b'"' {
            self.at = body + i + 1;
            let value = self.text.get(body..body + i).ok_or_else(|| self.err())?;
            return Ok((start..self.at, Cow::Borrowed(value)));
        }
        // Escapes: decode in one pass, copying the runs between escapes
        // whole.
        let mut out: Vec<u8> = Vec::with_capacity(rest.len().min(4 * i + 64));
        self.at = body;
        loop {
            self.at = copy_run(self.b, self.at, &mut out);
            match self.b.get(self.at) {
                Some(b'"') => break,
                Some(b'\\') => {
                    self.at = unescape_one(self.b, self.at + 1, &mut out)
                        .ok_or(WalkError::Syntax(start))?;
                }
                _ => return Err(WalkError::Syntax(start)),
            }
        }
        self.at += 1;
        let value = String::from_utf8(out).map_err(|_| WalkError::Syntax(start))?;
        Ok((start..self.at, Cow::Owned(value)))
    }
}

/// `s` as a JSON string literal, escaped exactly as serde_json escapes
/// (`\"`, `\\`, `\b \f \n \r \t`, other C0 controls as `\u00xx`), in one
/// pass that copies unescaped runs whole.
pub(crate) fn json_string(s: &str) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(s.len() + 2 + s.len() / 8);
    out.push(b'"');
    let b = s.as_bytes();
    let mut at = 0;
    loop {
        at = copy_run(b, at, &mut out);
        let Some(&c) = b.get(at) else {
            break;
        };
        at += 1;
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 0xf)]);
            }
        }
    }
    out.push(b'"');
    // Only ASCII was added around whole characters of `s`.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Bytes that end a run of literal string content.
static STOPS: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Copies the literal string content at `b[at..]` onto `out` up to the
/// next quote, backslash or control character (or the end), and returns
/// where it stopped. Eight bytes at a time: JSON-in-JSON results have an
/// escape every few bytes, and a call per run (`memchr`, `memcpy`) cost
/// more than the bytes. Handwritten because no crate decodes a JSON string
/// in place of a walker that must keep every literal's raw range.
#[inline(always)]
fn copy_run(b: &[u8], mut at: usize, out: &mut Vec<u8>) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    // The lowest flagged byte of each test is exact (borrows only carry
    // upwards), and only the lowest is used.
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    while let Some(chunk) = b.get(at..at + 8) {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let w = u64::from_le_bytes(bytes);
        let stops = zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
        let len = out.len();
        out.extend_from_slice(&bytes);
        if stops != 0 {
            let n = (stops.trailing_zeros() / 8) as usize;
            out.truncate(len + n);
            return at + n;
        }
        at += 8;
    }
    while let Some(&c) = b.get(at) {
        if STOPS[usize::from(c)] {
            break;
        }
        out.push(c);
        at += 1;
    }
    at
}

/// The one-letter escapes (`\\n` → newline), 0 for the others.
static SIMPLE: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'/' as usize] = b'/';
    t[b'b' as usize] = 0x08;
    t[b'f' as usize] = 0x0c;
    t[b'n' as usize] = b'\n';
    t[b'r' as usize] = b'\r';
    t[b't' as usize] = b'\t';
    t
};

/// Decodes the escape whose letter is at `b[at]` (RFC 8259; lone
/// surrogates are refused, as serde_json refuses them) onto `out`, and
/// returns the position after it.
#[inline(always)]
fn unescape_one(b: &[u8], at: usize, out: &mut Vec<u8>) -> Option<usize> {
    let letter = *b.get(at)?;
    let c = SIMPLE[usize::from(letter)];
    if c != 0 {
        out.push(c);
        return Some(at + 1);
    }
    if letter != b'u' {
        return None;
    }
    unescape_unicode(b, at, out)
}

/// A `\uXXXX` escape (a surrogate pair as one), out of the hot loop.
#[inline(never)]
fn unescape_unicode(b: &[u8], at: usize, out: &mut Vec<u8>) -> Option<usize> {
    let hi = hex4(b.get(at + 1..)?)?;
    let (c, next) = match hi {
        0xd800..=0xdbff => {
            let tail = b.get(at + 5..)?;
            let lo = tail.strip_prefix(b"\\u").and_then(hex4)?;
            if !(0xdc00..=0xdfff).contains(&lo) {
                return None;
            }
            (
                char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))?,
                at + 11,
            )
        }
        0xdc00..=0xdfff => return None,
        _ => (char::from_u32(hi)?, at + 5),
    };
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    Some(next)
}

fn hex4(s: &[u8]) -> Option<u32> {
    let h = s.get(..4)?;
    h.iter()
        .try_fold(0u32, |acc, d| Some(acc * 16 + char::from(*d).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Strings(Vec<(String, Range<usize>, String)>);
    impl<'a> Visitor<'a> for Strings {
        type Stop = ();
        fn string(
            &mut self,
            path: &[Seg<'a>],
            raw: Range<usize>,
            value: Cow<'a, str>,
        ) -> Result<(), ()> {
            self.0.push((pointer(path), raw, value.into_owned()));
            Ok(())
        }
    }

    #[test]
    fn strings_with_paths_and_ranges() {
        let text = r#"{"a": ["x", {"b/c": "y\n"}], "n": -1.5e3, "t": true}"#;
        let mut s = Strings(Vec::new());
        walk(text, &mut s).unwrap();
        assert_eq!(s.0[0].0, "/a/0");
        assert_eq!(&text[s.0[0].1.clone()], "\"x\"");
        assert_eq!(s.0[1].0, "/a/1/b~1c");
        assert_eq!(s.0[1].2, "y\n");
    }

    #[test]
    fn unescape_agrees_with_serde_json() {
        for lit in [
            r#""plain""#,
            r#""a\"b\\c\/d\b\f\n\r\t""#,
            r#""\u00e9\u4e2d\ud83d\ude00 end""#,
            r#""caf\u00E9 \u0000""#,
            "\"d\u{e9}j\u{e0} \\n\"",
        ] {
            let want: String = serde_json::from_str(lit).unwrap();
            let mut s = Strings(Vec::new());
            walk(lit, &mut s).unwrap();
            assert_eq!(s.0[0].2, want, "{lit}");
        }
        for bad in [
            r#""\ud800""#,
            r#""\udc00x""#,
            r#""\ud800\u0041""#,
            r#""\x""#,
            r#""\u12""#,
            "\"a\nb\\n\"",
            r#""\"#,
        ] {
            assert!(serde_json::from_str::<String>(bad).is_err(), "{bad}");
            assert!(walk(bad, &mut Strings(Vec::new())).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_string_agrees_with_serde_json() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é中😀\u{2028}\u{7f}\"\\ end");
        for s in ["", "plain", "a\"b\\c\nd", all.as_str()] {
            assert_eq!(
                json_string(s),
                serde_json::Value::String(s.into()).to_string()
            );
        }
    }

    proptest::proptest! {
        /// Runs of every length, with quotes, backslashes, controls and
        /// multi-byte characters at every offset of the eight-byte copy.
        #[test]
        fn strings_round_trip_as_serde_json_writes_and_reads_them(
            s in "(?s)[a-z\"\\\\\n\t\u{1}\u{1f}é中😀 ]{0,80}"
        ) {
            let lit = json_string(&s);
            proptest::prop_assert_eq!(&lit, &serde_json::Value::String(s.clone()).to_string());
            let mut got = Strings(Vec::new());
            walk(&lit, &mut got).unwrap();
            proptest::prop_assert_eq!(&got.0[0].2, &s);
        }
    }

    #[test]
    fn malformed_is_an_error() {
        for bad in ["", "{", "[1,]x", "{\"a\" 1}", "\"abc", "tru", "[1] 2"] {
            assert!(walk(bad, &mut Strings(Vec::new())).is_err(), "{bad}");
        }
        let deep = "[".repeat(HARD_MAX_DEPTH + 5);
        assert!(walk(&deep, &mut Strings(Vec::new())).is_err());
    }
}
