//! Post-match checks: what a regular expression cannot say — checksums,
//! randomness, placeholders. Each returns the byte range to report (and to
//! redact) inside the match, or `None` to reject the match.

use std::ops::Range;

/// A candidate match: the whole haystack, the match and its reported group
/// (the `s` capture group when the pattern has one, else the whole match).
pub(crate) struct Ctx<'h> {
    pub hay: &'h str,
    pub m: Range<usize>,
    pub s: Range<usize>,
}

impl<'h> Ctx<'h> {
    /// The whole match.
    pub fn text(&self) -> &'h str {
        self.hay.get(self.m.clone()).unwrap_or("")
    }
    /// The reported group.
    pub fn group(&self) -> &'h str {
        self.hay.get(self.s.clone()).unwrap_or("")
    }
    /// Up to `n` bytes of the haystack right after the reported group.
    pub fn after(&self, n: usize) -> &'h str {
        let from = self.s.end;
        let mut e = (from + n).min(self.hay.len());
        while e > from && !self.hay.is_char_boundary(e) {
            e -= 1;
        }
        self.hay.get(from..e).unwrap_or("")
    }
    /// Up to `n` bytes of the haystack right before the reported group.
    pub fn before(&self, n: usize) -> &'h str {
        let to = self.s.start;
        let mut s = to.saturating_sub(n);
        while s < to && !self.hay.is_char_boundary(s) {
            s += 1;
        }
        self.hay.get(s..to).unwrap_or("")
    }
    fn accept(&self) -> Option<Range<usize>> {
        Some(self.s.clone())
    }
}

/// Shannon entropy of `s` in bits per byte.
pub(crate) fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    if n == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// A value dominated by one character (`xxxxxxxxxxxxxxxxxxx1`).
fn repeats(v: &str) -> bool {
    let mut counts = [0usize; 256];
    for b in v.bytes() {
        counts[b as usize] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0);
    v.len() >= 8 && max * 2 > v.len()
}

/// Keyboard and alphabet fillers (`abc123`, `klmnopqrstuvwx`, `3456`): a
/// third or more of the value lies in ascending runs of three or more
/// letters or digits. Generated tokens almost never have such runs (each
/// step of a run has a chance of about 1 in 62 in a base-62 token).
pub(crate) fn sequential(v: &str) -> bool {
    let b = v.as_bytes();
    let step = |x: u8, y: u8| {
        y == x.wrapping_add(1) && (x.is_ascii_alphanumeric() && y.is_ascii_alphanumeric())
    };
    let mut in_runs = 0;
    let mut run = 1;
    for i in 1..=b.len() {
        if i < b.len() && step(b[i - 1].to_ascii_lowercase(), b[i].to_ascii_lowercase()) {
            run += 1;
        } else {
            if run >= 3 {
                in_runs += run;
            }
            run = 1;
        }
    }
    b.len() >= 8 && in_runs * 3 >= b.len()
}

/// Values that stand for a secret rather than being one: template and
/// shell references, masks, documentation fillers.
pub(crate) fn is_placeholder(v: &str) -> bool {
    let v = v.trim_matches(|c: char| c == '"' || c == '\'' || c == '`');
    let Some(&first) = v.as_bytes().first() else {
        return true;
    };
    if matches!(first, b'$' | b'%' | b'<' | b'[' | b'#') || v.starts_with("{{") {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    const FILLERS: &[&str] = &[
        "xxxx",
        "****",
        "..",
        "\u{2022}\u{2022}",
        "placeholder",
        "your_",
        "your-",
        "yourkey",
        "yourtoken",
        "yourpassword",
        "changeme",
        "redacted",
        "dummy",
        "${",
        "{{",
        "<",
        "example",
        "insert",
        "replace_me",
        "replaceme",
        "secret_here",
        "token_here",
        "key_here",
    ];
    if FILLERS.iter().any(|f| lower.contains(f)) {
        return true;
    }
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "pass",
        "secret",
        "token",
        "apikey",
        "api_key",
        "key",
        "null",
        "none",
        "nil",
        "true",
        "false",
        "undefined",
        "test",
        "testing",
        "username",
        "user",
        "admin",
        "default",
        "string",
        "value",
        "empty",
        "foobar",
        "foo",
        "bar",
        "abc123",
        "123456",
        "12345678",
        "qwerty",
        "letmein",
    ];
    if WORDS.contains(&lower.as_str()) {
        return true;
    }
    let mut bytes = v.bytes();
    v.len() >= 4 && bytes.all(|b| b == first)
}

/// True for strings that look machine-generated rather than written: long
/// enough, high entropy, several character classes, and changing class
/// often (written identifiers such as `jetbrains.mps.v8_x` or
/// `SalesResults-1.2` change it rarely).
pub(crate) fn looks_generated(v: &str, min_entropy: f64) -> bool {
    if v.len() < 12 || is_placeholder(v) {
        return false;
    }
    if v.contains("://") || v.starts_with('/') || v.starts_with("./") {
        return false;
    }
    let lower = v.bytes().filter(u8::is_ascii_lowercase).count();
    let upper = v.bytes().filter(u8::is_ascii_uppercase).count();
    let digit = v.bytes().filter(u8::is_ascii_digit).count();
    let classes = usize::from(lower > 0) + usize::from(upper > 0) + usize::from(digit > 0);
    if classes < 2 || digit == 0 && v.len() < 24 {
        return false;
    }
    if entropy(v) < min_entropy || repeats(v) || sequential(v) {
        return false;
    }
    let class = |b: u8| match b {
        b'a'..=b'z' => 0,
        b'A'..=b'Z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    };
    let bytes = v.as_bytes();
    let transitions = bytes
        .windows(2)
        .filter(|w| class(w[0]) != class(w[1]))
        .count();
    transitions * 3 >= bytes.len()
}

// ---------------------------------------------------------------------------
// Secrets.

pub(crate) fn accept(c: &Ctx) -> Option<Range<usize>> {
    c.accept()
}

/// Vendor-prefixed tokens: the token must look random (rules out
/// `ghp_xxxx…`, `sgp_5555555dAAAAA…`).
pub(crate) fn random_token(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    (entropy(v) >= 3.0 && !repeats(v) && !sequential(v)).then(|| c.accept())?
}

/// Google API keys: `AIza` + 35 base64url characters, i.e. 29 bytes, so
/// the last character carries two zero bits and is one of 16. Google
/// documents browser and Firebase keys as public identifiers that are
/// meant to be embedded in pages and apps; a key counts as a credential
/// when the text presents it as one (a key, token, secret, auth or Google
/// word within 48 bytes before it), as configuration files, environment
/// variables, URLs (`?key=`) and headers do.
pub(crate) fn google_api_key(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    if !v.ends_with(|ch: char| "AEIMQUYcgkosw048".contains(ch)) {
        return None;
    }
    let before = c.before(48).to_ascii_lowercase();
    const CONTEXT: &[&str] = &[
        "key",
        "token",
        "secret",
        "auth",
        "credential",
        "goog",
        "gcp",
        "firebase",
        "gemini",
        "maps",
    ];
    if !CONTEXT.iter().any(|w| before.contains(w)) {
        return None;
    }
    random_token(c)
}

/// AWS access key ids; AWS documents its example keys with the suffix
/// `EXAMPLE` (`AKIAIOSFODNN7EXAMPLE`).
pub(crate) fn aws_key_id(c: &Ctx) -> Option<Range<usize>> {
    if c.group().ends_with("EXAMPLE") {
        return None;
    }
    random_token(c)
}

/// Base64 bodies: padded to a multiple of four, and random.
pub(crate) fn padded_base64(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    (v.len().is_multiple_of(4) && entropy(v) >= 3.0 && !repeats(v)).then(|| c.accept())?
}

/// Keyword-plus-value assignments (`api_key = "…"`).
pub(crate) fn assigned_secret(c: &Ctx) -> Option<Range<usize>> {
    let name = identifier(c);
    // Public material and per-page anti-forgery nonces are not credentials;
    // ids and names of secrets are not secrets.
    const NOT_SECRET: &[&str] = &[
        "public",
        "pub_",
        "pubkey",
        "csrf",
        "xsrf",
        "nonce",
        "authenticity",
        "_id",
        "-id",
        "keyid",
    ];
    if NOT_SECRET.iter().any(|n| name.contains(n)) {
        return None;
    }
    let v = c.group();
    // Version numbers ("jjwt-jackson-0.11.2") are not secrets.
    let b = v.as_bytes();
    if b.windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b'.' && w[2].is_ascii_digit())
    {
        return None;
    }
    ((16..=512).contains(&v.len()) && looks_generated(v, 3.5)).then(|| c.accept())?
}

/// The whole identifier an assignment's keyword belongs to, lowercased
/// (`csrf-token` for a match that starts at `token`).
fn identifier(c: &Ctx) -> String {
    let before = c.before(128);
    let trimmed = before.trim_end_matches(|ch: char| " \t\"'`:=>".contains(ch));
    let start = trimmed
        .rfind(|ch: char| !(ch.is_ascii_alphanumeric() || "_.-".contains(ch)))
        .map_or(0, |i| i + 1);
    trimmed[start..].to_ascii_lowercase()
}

/// Passwords are chosen by people: shorter and less random than tokens, so
/// the bar is lower; placeholders and references are still refused.
pub(crate) fn assigned_password(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    if is_placeholder(v) || !(6..=128).contains(&v.len()) || entropy(v) < 2.5 {
        return None;
    }
    if v.contains('(') || v.starts_with("process.env") || v.starts_with("os.environ") {
        return None;
    }
    // `password: string` in type declarations, `password = getpass` ...
    if v.bytes()
        .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.')
    {
        return None;
    }
    c.accept()
}

/// A private key block must carry key material, not a stand-in.
pub(crate) fn private_key(c: &Ctx) -> Option<Range<usize>> {
    let body = c
        .text()
        .split("-----")
        .nth(2)
        .unwrap_or("")
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .count();
    (body >= 32).then(|| c.accept())?
}

/// `user:password` after `-u` / `--user`: the password, or the user when the
/// password is empty (API keys passed as the user name, as Stripe and
/// Mailgun document it).
pub(crate) fn user_colon_password(c: &Ctx) -> Option<Range<usize>> {
    let cred = c.group();
    let colon = cred.find(':')?;
    let strip = |s: &str| {
        s.trim_matches(|c: char| c == '"' || c == '\'')
            .trim_matches(|c: char| c == '{' || c == '}')
            .trim()
            .to_owned()
    };
    if is_placeholder(cred) || cred.contains(['<', '>']) {
        return None;
    }
    let user = strip(&cred[..colon]);
    let pass = strip(&cred[colon + 1..]);
    let (value, range) = if !pass.is_empty() {
        (pass, c.s.start + colon + 1..c.s.end)
    } else if !user.is_empty() {
        (user, c.s.start..c.s.start + colon)
    } else {
        return None;
    };
    if is_placeholder(&value) || value.len() < 6 || entropy(&value) < 2.5 {
        return None;
    }
    Some(range)
}

/// The credential in an HTTP `Authorization` header or an API-key header.
pub(crate) fn header_credential(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    const SCHEMES: &[&str] = &[
        "basic",
        "bearer",
        "token",
        "digest",
        "negotiate",
        "api-token",
        "apikey",
        "key",
        "ntlm",
    ];
    if SCHEMES.contains(&v.to_ascii_lowercase().as_str())
        || is_placeholder(v)
        || repeats(v)
        || sequential(v)
    {
        return None;
    }
    (v.len() >= 8 && entropy(v) >= 2.8).then(|| c.accept())?
}

/// The password of `scheme://user:password@host`.
pub(crate) fn url_password(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    (!is_placeholder(v) && (3..=256).contains(&v.len())).then(|| c.accept())?
}

// ---------------------------------------------------------------------------
// Personal data.

/// Payment cards: 12 to 19 digits, an issuer digit 1–6, consistent
/// separators, and the Luhn checksum.
pub(crate) fn card(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    let digits: Vec<u32> = v.chars().filter_map(|ch| ch.to_digit(10)).collect();
    if !(12..=19).contains(&digits.len()) || !(1..=6).contains(&digits[0]) {
        return None;
    }
    let seps: Vec<char> = v.chars().filter(|ch| !ch.is_ascii_digit()).collect();
    if seps.windows(2).any(|w| w[0] != w[1]) || digits.iter().all(|d| *d == digits[0]) {
        return None;
    }
    luhn(&digits).then(|| c.accept())?
}

pub(crate) fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2 == 1, d * 2) {
            (true, x) if x > 9 => x - 9,
            (true, x) => x,
            (false, _) => d,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// US SSN: area not 000, 666 or 9xx; group not 00; serial not 0000.
pub(crate) fn ssn(c: &Ctx) -> Option<Range<usize>> {
    let d: String = c.group().chars().filter(char::is_ascii_digit).collect();
    if d.len() != 9 {
        return None;
    }
    let (area, group, serial) = (&d[0..3], &d[3..5], &d[5..9]);
    if area == "000" || area == "666" || area.starts_with('9') || group == "00" || serial == "0000"
    {
        return None;
    }
    c.accept()
}

/// IBAN: a known country, its registered length, and the ISO 13616 mod-97
/// check. Trailing space-separated groups that break the check are dropped
/// (an IBAN followed by a short word).
pub(crate) fn iban(c: &Ctx) -> Option<Range<usize>> {
    let mut v = c.group();
    loop {
        if iban_valid(v) {
            return Some(c.s.start..c.s.start + v.len());
        }
        v = &v[..v.rfind(' ')?];
    }
}

pub(crate) fn iban_valid(v: &str) -> bool {
    let compact: String = v
        .chars()
        .filter(|ch| *ch != ' ')
        .map(|ch| ch.to_ascii_uppercase())
        .collect();
    let (Some(cc), Some(head), Some(rest)) = (compact.get(..2), compact.get(..4), compact.get(4..))
    else {
        return false;
    };
    if iban_length(cc) != Some(compact.len()) {
        return false;
    }
    let mut rem: u32 = 0;
    for ch in rest.chars().chain(head.chars()) {
        let Some(n) = ch.to_digit(36) else {
            return false;
        };
        rem = if n >= 10 {
            (rem * 100 + n) % 97
        } else {
            (rem * 10 + n) % 97
        };
    }
    rem == 1
}

/// IBAN lengths by country (ISO 13616 registry).
fn iban_length(cc: &str) -> Option<usize> {
    Some(match cc {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "FO" | "GL" | "NL" => 18,
        "MK" | "SI" => 19,
        "AT" | "BA" | "EE" | "KZ" | "LT" | "LU" | "XK" => 20,
        "CH" | "CR" | "HR" | "LI" | "LV" => 21,
        "BG" | "BH" | "DE" | "GB" | "GE" | "IE" | "ME" | "RS" | "VA" => 22,
        "AE" | "GI" | "IL" | "IQ" | "TL" => 23,
        "AD" | "CZ" | "ES" | "MD" | "PK" | "RO" | "SA" | "SE" | "SK" | "TN" | "VG" => 24,
        "LY" | "PT" | "ST" => 25,
        "IS" | "TR" => 26,
        "FR" | "GR" | "IT" | "MC" | "MR" | "SM" => 27,
        "AL" | "AZ" | "BY" | "CY" | "DO" | "GT" | "HU" | "LB" | "PL" | "SV" => 28,
        "BR" | "EG" | "PS" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" => 30,
        "MT" | "SC" => 31,
        "LC" => 32,
        "RU" => 33,
        _ => return None,
    })
}

/// IPv4 with octets ≤ 255 that is not part of a longer dotted number
/// (a version `1.2.3.4.5`) or preceded by `v`.
pub(crate) fn ipv4(c: &Ctx) -> Option<Range<usize>> {
    c.group().parse::<std::net::Ipv4Addr>().ok()?;
    let after = c.after(2).as_bytes();
    if after.len() == 2 && after[0] == b'.' && after[1].is_ascii_digit() {
        return None;
    }
    let before = c.before(1);
    if before.ends_with(['v', 'V', '.']) {
        return None;
    }
    c.accept()
}

/// IPv6 as the standard library parses it, with at least three groups.
pub(crate) fn ipv6(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    v.parse::<std::net::Ipv6Addr>().ok()?;
    (v.split(':').filter(|g| !g.is_empty()).count() >= 3).then(|| c.accept())?
}

/// Phone numbers: 7 to 15 digits (E.164 allows at most 15), not a date, not
/// one repeated digit.
pub(crate) fn phone(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    let main = v.split(['x', 'X', 'e']).next().unwrap_or(v);
    let mut count = 0;
    let mut first = None;
    let mut same = true;
    for d in main.bytes().filter(u8::is_ascii_digit) {
        count += 1;
        same &= *first.get_or_insert(d) == d;
    }
    if !(7..=15).contains(&count) || same {
        return None;
    }
    if looks_like_date(main) {
        return None;
    }
    // Bare numbers glued to a decimal point, a path or a time are not phones.
    let before = c.before(2).as_bytes();
    if before.len() == 2
        && before[0].is_ascii_digit()
        && matches!(before[1], b'.' | b',' | b'/' | b':')
    {
        return None;
    }
    // Two bare digit groups ("370 3911") followed by a word are a house
    // number and a street more often than a phone number, unless the word
    // labels the number.
    let groups = main
        .split(|ch: char| !ch.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .count();
    if groups <= 2 && !v.starts_with(['+', '(', '0']) {
        let after = c.after(24);
        let word = after.strip_prefix(' ').unwrap_or("");
        let word = &word[..word
            .bytes()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(word.len())];
        const LABELS: &[&str] = &[
            "office", "fax", "mobile", "cell", "home", "work", "ext", "phone", "tel", "or", "and",
            "x",
        ];
        if word.len() >= 2 && !LABELS.iter().any(|l| l.eq_ignore_ascii_case(word)) {
            return None;
        }
    }
    c.accept()
}

/// North American numbers written without separators: NXX-NXX-XXXX (area
/// code and exchange never start with 0 or 1, which also rules out Unix
/// timestamps).
pub(crate) fn nanp_compact(c: &Ctx) -> Option<Range<usize>> {
    let d = c.group().as_bytes();
    let d = if d.len() == 11 && d[0] == b'1' {
        &d[1..]
    } else {
        d
    };
    (d.len() == 10 && d[0] >= b'2' && d[3] >= b'2').then(|| c.accept())?
}

/// `2021-04-16`, `16.04.2021`, `04/16/2021`: dates, not phone numbers.
fn looks_like_date(v: &str) -> bool {
    let mut groups = v
        .split(|ch: char| !ch.is_ascii_digit())
        .filter(|g| !g.is_empty());
    let (Some(a), Some(b), Some(c)) = (groups.next(), groups.next(), groups.next()) else {
        return false;
    };
    let n = |s: &str| s.parse::<u32>().unwrap_or(0);
    let ymd = a.len() == 4
        && (1900..=2099).contains(&n(a))
        && (1..=12).contains(&n(b))
        && (1..=31).contains(&n(c));
    let dmy = c.len() == 4
        && (1900..=2099).contains(&n(c))
        && (1..=31).contains(&n(a))
        && (1..=31).contains(&n(b));
    ymd || dmy
}

/// E-mail addresses, except image names like `icon@2x.png`.
pub(crate) fn email(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    let tld = v.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    const FILES: &[&str] = &[
        "png", "jpg", "jpeg", "gif", "svg", "webp", "css", "js", "ico",
    ];
    (!FILES.contains(&tld.as_str())).then(|| c.accept())?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(s: &str) -> Ctx<'_> {
        Ctx {
            hay: s,
            m: 0..s.len(),
            s: 0..s.len(),
        }
    }

    #[test]
    fn luhn_and_cards() {
        assert!(card(&ctx("4111111111111111")).is_some());
        assert!(card(&ctx("4111 1111 1111 1111")).is_some());
        assert!(card(&ctx("4111111111111112")).is_none());
        assert!(card(&ctx("4111-1111 1111-1111")).is_none());
        assert!(card(&ctx("0000000000000000")).is_none());
    }

    #[test]
    fn ibans() {
        assert!(iban_valid("GB82WEST12345698765432"));
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(iban_valid("gb82west12345698765432"));
        assert!(!iban_valid("GB83WEST12345698765432"));
        assert!(iban_valid("DE89370400440532013000"));
        assert!(!iban_valid("ZZ89370400440532013000"));
        let c = ctx("GB82 WEST 1234 5698 7654 32 and");
        assert_eq!(iban(&c), Some(0..27));
    }

    #[test]
    fn ssns() {
        assert!(ssn(&ctx("123-45-6789")).is_some());
        assert!(ssn(&ctx("000-45-6789")).is_none());
        assert!(ssn(&ctx("666-45-6789")).is_none());
        assert!(ssn(&ctx("923-45-6789")).is_none());
        assert!(ssn(&ctx("123-00-6789")).is_none());
        assert!(ssn(&ctx("123-45-0000")).is_none());
    }

    #[test]
    fn ips_and_phones() {
        assert!(ipv4(&ctx("10.0.0.1")).is_some());
        assert!(ipv4(&ctx("300.0.0.1")).is_none());
        let version = Ctx {
            hay: "v1.2.3.4",
            m: 1..8,
            s: 1..8,
        };
        assert!(ipv4(&version).is_none());
        assert!(ipv6(&ctx("2001:db8::1:2")).is_some());
        assert!(ipv6(&ctx("12:30:45")).is_none());
        assert!(phone(&ctx("+1 415 555 2671")).is_some());
        assert!(phone(&ctx("2021-04-16 11")).is_none());
        assert!(phone(&ctx("123")).is_none());
        assert!(nanp_compact(&ctx("4155552671")).is_some());
        assert!(nanp_compact(&ctx("1700000000")).is_none());
    }

    #[test]
    fn placeholders_and_randomness() {
        assert!(is_placeholder("${API_KEY}"));
        assert!(is_placeholder("xxxxxxxxxxxx"));
        assert!(is_placeholder("<your token>"));
        assert!(is_placeholder("password"));
        assert!(!is_placeholder("hQ7vK2pL9xZ4"));
        assert!(looks_generated("hQ7vK2pL9xZ4mN8b", 3.5));
        assert!(!looks_generated("jetbrains.mps.v8_elimination", 3.5));
        assert!(!looks_generated("aaaaaaaaaaaaaaaaaaaa", 3.5));
        assert!(sequential("abc123xyz-456def789ghij"));
        assert!(sequential("Syabcdefghijklmnopqrstuvwxyz1234567"));
        assert!(!sequential("hQ7vK2pL9xZ4mN8b"));
        assert!(!sequential("3fea6af1349166ea"));
    }

    #[test]
    fn google_keys_need_their_shape_and_a_credential_context() {
        let key = format!("AIza{}", "Sy9vKq2LmZx7Rt4Wb8Nc3Hd6Jf1Gp5Ys0Qc");
        let at = |text: &str| {
            let start = text.find("AIza").unwrap();
            google_api_key(&Ctx {
                hay: text,
                m: start..start + 39,
                s: start..start + 39,
            })
        };
        assert!(at(&format!("GOOGLE_API_KEY={key}")).is_some());
        assert!(at(&format!("https://maps.example.com/api?key={key}")).is_some());
        assert!(at(&format!("found {key} in the page")).is_none());
        let odd = format!("AIza{}", "Sy9vKq2LmZx7Rt4Wb8Nc3Hd6Jf1Gp5Ys0Qf");
        assert!(at(&format!("api_key: {odd}")).is_none());
    }
}
