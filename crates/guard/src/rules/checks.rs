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
    // Ascending (`abcdef`, `3456`) or descending (`zyxwvu`) runs.
    let in_runs = |delta: u8| {
        let step = |x: u8, y: u8| {
            y == x.wrapping_add(delta) && x.is_ascii_alphanumeric() && y.is_ascii_alphanumeric()
        };
        let mut total = 0;
        let mut run = 1;
        for i in 1..=b.len() {
            if i < b.len() && step(b[i - 1].to_ascii_lowercase(), b[i].to_ascii_lowercase()) {
                run += 1;
            } else {
                if run >= 3 {
                    total += run;
                }
                run = 1;
            }
        }
        total
    };
    b.len() >= 8 && in_runs(1).max(in_runs(u8::MAX)) * 3 >= b.len()
}

/// Values that stand for a secret rather than being one: template and
/// shell references, masks, documentation fillers.
pub(crate) fn is_placeholder(v: &str) -> bool {
    let v = v.trim_matches(|c: char| c == '"' || c == '\'' || c == '`');
    let Some(&first) = v.as_bytes().first() else {
        return true;
    };
    // `#` opens a comment, a Ruby interpolation (`#{x}`), a mask
    // (`######`) or a CSS selector (`#add-password`); a value with digits
    // that merely starts with it (`#gets0m3`) is one.
    if matches!(first, b'$' | b'%' | b'<' | b'[')
        || (first == b'#'
            && (v.starts_with("#{") || v.len() < 4 || !v.bytes().any(|b| b.is_ascii_digit())))
        || v.starts_with("{{")
        || v.starts_with("&lt;")
    {
        return true;
    }
    if matches!(first, b'!' | b'@' | b'&' | b'*')
        && v.len() <= 24
        && !v[1..].contains(first as char)
        && v[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        // YAML tags and anchors (`!Ref DbPassword`, `*default`), Razor and
        // Objective-C sigils before identifiers.
        return true;
    }
    let lower = v.to_ascii_lowercase();
    if template_reference(&lower) {
        return true;
    }
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
        "example",
        // The example UUID of documentation and RFC 4122 tutorials.
        "123e4567-e89b-12d3",
        "123e4567e89b12d3",
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

/// `arn:aws:…`, `urn:…`, `mailto:…`: an identifier with a scheme.
fn scheme_prefixed(lower: &str) -> bool {
    lower.find(':').is_some_and(|i| {
        (2..=10).contains(&i) && lower[..i].bytes().all(|b| b.is_ascii_lowercase())
    })
}

/// Written identifiers (`ConnectionString_B2B`, `PdfEncryptionKeySize`):
/// two or more capitalised words (a capital and four or more lowercase
/// letters). Generated base-62 tokens rarely have two (about 1 in 80 at
/// 20 characters); lowercase base-36 tokens are not affected.
fn wordy(v: &str) -> bool {
    let b = v.as_bytes();
    let mut words = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_uppercase() {
            let run = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_lowercase())
                .count();
            if run >= 4 {
                words += 1;
            }
            i += run + 1;
        } else {
            i += 1;
        }
    }
    words >= 2
}

/// A reference to a value rather than the value: `${NAME}`, `{{ name }}`,
/// `<name>`, `%(name)s`, `$(name)` anywhere in it (an interpolated secret
/// is not in the text). Brackets that do not form a reference (`m{{h}o)p`)
/// are just characters of the value.
fn template_reference(v: &str) -> bool {
    let b = v.as_bytes();
    let ident = |s: &[u8]| {
        !s.is_empty()
            && s.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"_.-: |'\"".contains(c))
    };
    let closed = |from: usize, open: &[u8], close: &[u8]| -> bool {
        let body = &b[from + open.len()..];
        body.windows(close.len())
            .position(|w| w == close)
            .is_some_and(|end| ident(&body[..end]))
    };
    (0..b.len()).any(|i| {
        let at = &b[i..];
        (at.starts_with(b"${") && closed(i, b"${", b"}"))
            || (at.starts_with(b"$(") && closed(i, b"$(", b")"))
            || (at.starts_with(b"{{") && closed(i, b"{{", b"}}"))
            || (at.starts_with(b"%(") && closed(i, b"%(", b")"))
            || (at.starts_with(b"<") && closed(i, b"<", b">"))
    })
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
    if entropy(v) < min_entropy || repeats(v) || sequential(v) || wordy(v) {
        return false;
    }
    let class = |b: u8| match b {
        b'a'..=b'z' => 0,
        b'A'..=b'Z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    };
    // Lowercase base-32 and base-36 tokens (Azure DevOps PATs) change class
    // only at their few digits.
    if upper == 0 && v.len() >= 32 && entropy(v) >= 4.0 && !wordy(v) {
        return true;
    }
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

/// Vendor-prefixed tokens: a documented prefix at the documented length
/// is strong evidence, so the rest need only not be a mask or a run of one
/// character (rules out `ghp_xxxx…`, `sgp_5555555dAAAAA…`); a hand-typed
/// `1234567890abcdef…` after a real prefix is taken for what it stands for.
pub(crate) fn random_token(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    (entropy(v) >= 3.0 && !repeats(v) && !long_run(v, 7)).then(|| c.accept())?
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
    if !quoted(c) && (v.contains('(') || v.contains("->") || v.contains("::")) {
        return None;
    }
    // Version numbers ("jjwt-jackson-0.11.2") are not secrets.
    let b = v.as_bytes();
    if b.windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b'.' && w[2].is_ascii_digit())
    {
        return None;
    }
    // Time- and name-based UUIDs are ids (unless the name says whose
    // token it is); what is named an id is one.
    if (uuid_version(v).is_some_and(derived_uuid) && !provider_uuid(c, v))
        || name_words(c).iter().any(|w| {
            // Ids and pagination cursors name values that are not secrets.
            [
                "id",
                "ids",
                "page",
                "cursor",
                "next",
                "continuation",
                "pagination",
                "sync",
            ]
            .contains(&w.as_str())
        })
        || mismatched_quotes(c)
    {
        return None;
    }
    if (16..=512).contains(&v.len()) && looks_generated(v, 3.5) {
        return c.accept();
    }
    // A name that says "credential" (`stripe_secret`, `adobeKey`,
    // `SENTRY_TOKEN`): any token-shaped literal is the credential, generated
    // or not (documentation-style values such as `1234567890abcdef…` are
    // what people paste there too).
    if credential_name(c) && (token_value(v, name_words(c).len() <= 1) || provider_uuid(c, v)) {
        return c.accept();
    }
    // Secrets (`jwt_secret`, `client_secret`, `creds.Secret`) are often
    // chosen by people, like passwords: a quoted literal counts.
    (quoted(c)
        && name.ends_with("secret")
        && !v.contains(char::is_whitespace)
        && v.len() >= 8
        && password_value(v, true))
    .then(|| c.accept())?
}

/// A credential keyword followed by its value with any separator
/// (`provider SECRET key VALUE`, `provider-TOKEN-VALUE`, `API key:` and the
/// value on the next line): the name must say "credential" and the value
/// must be token-shaped.
pub(crate) fn keyword_token(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    let end = c.after(1);
    if !(end.is_empty()
        || end.starts_with(|ch: char| ch.is_whitespace() || "\"'`,;)}]<&#".contains(ch)))
    {
        return None;
    }
    if v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes()
            .zip(v.bytes().skip(2))
            .zip(v.bytes().skip(1))
            .any(|((a, b), dot)| a.is_ascii_digit() && dot == b'.' && b.is_ascii_digit())
    {
        return None;
    }
    if mismatched_quotes(c) || own_format(c) {
        return None;
    }
    // Glued to the keyword by a hyphen, underscore or dot, the value may
    // be the rest of a slug (`unauthorized-access-service-10`): only a
    // long one counts.
    if c.before(1).starts_with(['-', '_', '.']) && v.len() < 16 {
        return None;
    }
    (credential_name(c) && (token_value(v, name_words(c).len() <= 1) || provider_uuid(c, v)))
        .then(|| c.accept())?
}

/// A UUID of a time- or name-based version where a credential named for
/// its provider goes (`snyk_token = …`, `postmarkServerToken: …`):
/// providers issue UUID-shaped tokens, and people write them by hand.
/// Elsewhere such a UUID is an id, and after a name made only of
/// credential words (`key`, `_authToken`, `api_key`) it may be one.
fn provider_uuid(c: &Ctx, v: &str) -> bool {
    if !uuid_version(v).is_some_and(derived_uuid) || is_placeholder(v) || long_run(v, 5) {
        return false;
    }
    const GENERIC: &[&str] = &[
        "api",
        "app",
        "auth",
        "client",
        "server",
        "service",
        "user",
        "bot",
        "my",
        "the",
        "your",
        "default",
        "master",
        "admin",
        "root",
        "prod",
        "dev",
        "test",
        "env",
        "x",
        "bearer",
        "access",
        "private",
        "secret",
        "secrets",
        "token",
        "tokens",
        "key",
        "keys",
        "apikey",
        "credential",
        "credentials",
        "creds",
        "pat",
        "authkey",
        "accesskey",
        "secretkey",
        "privatekey",
        "tkn",
    ];
    let words = name_words(c);
    credential_words(&words) && words.iter().any(|w| !GENERIC.contains(&w.as_str()))
}

/// A quoted literal after a credential-named identifier: secrets chosen by
/// people look like passwords (symbols, no spaces) rather than tokens.
pub(crate) fn quoted_secret(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    if !quoted(c) || own_format(c) || !credential_name(c) {
        return None;
    }
    chosen_value(v).then(|| c.accept())?
}

/// A literal whose quotes the credential rules' patterns do not take: one
/// that holds another kind of quote (`'`123QWERasdf'`, `"7`D'}/vY…"`),
/// one written with escaped quotes inside another literal (`$password =
/// \"goodspec\";` in generated code or a JSON string), or one after a
/// name that ends in `pw` (`cloudant_pw = "…"`). The reported group is
/// the whole literal, quotes included; the literal's inside is judged as
/// the password or secret rules judge a plain one.
pub(crate) fn requoted(c: &Ctx) -> Option<Range<usize>> {
    let raw = c.group();
    let escaped = raw.starts_with('\\');
    let q = raw.trim_start_matches('\\').chars().next()?;
    let open = c.s.start + usize::from(escaped) + q.len_utf8();
    let mut close = c.s.end.checked_sub(q.len_utf8())?;
    if escaped {
        // `\"x\"`: the closing quote is escaped too.
        if !c.hay.get(..close)?.ends_with('\\') {
            return None;
        }
        close -= 1;
    }
    let inner = c.hay.get(open..close)?;
    if inner.is_empty() {
        return None;
    }
    let nested = inner.contains(|ch: char| "\"'`".contains(ch) && ch != q);
    let words = name_words(c);
    let pw_name = words.last().is_some_and(|w| w == "pw");
    if !(escaped || nested || pw_name) {
        return None;
    }
    let lit = Ctx {
        hay: c.hay,
        m: c.m.clone(),
        s: open..close,
    };
    if pw_name || password_words(&words) {
        return quoted_password(&lit);
    }
    if !credential_name(&lit) || own_format(&lit) {
        return None;
    }
    chosen_secret(inner).then_some(open..close)
}

/// A value a person chose for a secret: digits or symbols, not a phrase,
/// a written name, a derived UUID, a version, an identifier or a dotted
/// name (`access_token`, `config.apiKey`), and a password by
/// [`password_value`].
fn chosen_value(v: &str) -> bool {
    let symbol = v.bytes().any(|b| !b.is_ascii_alphanumeric());
    let digit = v.bytes().any(|b| b.is_ascii_digit());
    if !(symbol || digit) || phrase(v) || wordy(v) || uuid_version(v).is_some_and(derived_uuid) {
        return false;
    }
    let b = v.as_bytes();
    if b.windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b'.' && w[2].is_ascii_digit())
    {
        return false;
    }
    if v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        && b[0].is_ascii_alphabetic()
        && (v.contains('_') || v.contains('.'))
    {
        return false;
    }
    password_value(v, true)
}

/// A value opened by one quote and closed by another (`"x';`): a fragment
/// of code, not a literal.
fn mismatched_quotes(c: &Ctx) -> bool {
    let (open, close) = (c.before(1), c.after(1));
    let q = |s: &str| s == "\"" || s == "'" || s == "`";
    q(open) && q(close) && open != close
}

/// Whether the token the value belongs to (`bedrock-api-key-…` for a value
/// after `key-`) starts with the prefix of a format that has its own rule.
fn own_format(c: &Ctx) -> bool {
    let before = c.before(32);
    let head = after_last(before, |ch| ch.is_whitespace() || "\"'`=:(,<>".contains(ch));
    let token = format!("{head}{}", c.group()).to_ascii_lowercase();
    OWN_FORMAT.iter().any(|p| token.starts_with(p))
}

/// The part of `s` after the last character that satisfies `stop`.
fn after_last(s: &str, stop: impl Fn(char) -> bool) -> &str {
    s.char_indices()
        .rev()
        .find(|(_, ch)| stop(*ch))
        .map_or(s, |(i, ch)| &s[i + ch.len_utf8()..])
}

/// The words of the identifier (or the run of keywords) before the value,
/// lowercased: split at `_`, `-`, `.`, spaces and lower-to-upper case
/// changes (`validKeyChars` → valid, key, chars). Digits are dropped.
fn name_words(c: &Ctx) -> Vec<String> {
    let before = c.before(96);
    let junk = |ch: char| " \t\r\n\"'`:=>!@]-_.[\\".contains(ch) || ch.is_ascii_digit();
    let mut trimmed = before.trim_end_matches(junk);
    // A string prefix before the quote (Python's `b"…"`, `r'…'`).
    if before.ends_with(['"', '\'']) {
        let prefix = trimmed.len()
            - trimmed
                .trim_end_matches(['b', 'r', 'u', 'B', 'R', 'U'])
                .len();
        let head = &trimmed[..trimmed.len() - prefix];
        if (1..=2).contains(&prefix) && head.ends_with([' ', '=', ':', '(', ',']) {
            trimmed = head.trim_end_matches(junk);
        }
    }
    // The name: the run of identifier characters and single spaces before
    // the value (`provider SECRET key`), at most four words.
    let raw = after_last(trimmed, |ch| {
        !(ch.is_ascii_alphanumeric() || "_.- \t".contains(ch))
    });
    let mut words = split_words(raw);
    let keep = words.len().saturating_sub(4);
    words.split_off(keep)
}

/// The words of a name, lowercased: split at anything but a letter and at
/// lower-to-upper case changes (`validKeyChars` → valid, key, chars).
fn split_words(raw: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for ch in raw.chars() {
        if !ch.is_ascii_alphabetic() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if ch.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = ch.is_ascii_lowercase();
        cur.push(ch.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Whether the name before a value says that a credential goes there: it
/// carries a credential word, and it is not the name of something about a
/// credential (its file, length, id, name, URL, where it is stored) or of
/// a key that is not a credential (a cache, sort or primary key, a page
/// token, a character set).
pub(crate) fn credential_name(c: &Ctx) -> bool {
    credential_words(&name_words(c))
}

/// [`credential_name`] for the words of a name.
fn credential_words(words: &[String]) -> bool {
    const CREDENTIAL: &[&str] = &[
        "key",
        "keys",
        "apikey",
        "secret",
        "secrets",
        "token",
        "tokens",
        "tkn",
        "credential",
        "credentials",
        "creds",
        "password",
        "passwd",
        "pwd",
        "pass",
        "passphrase",
        "auth",
        "authkey",
        "accesskey",
        "secretkey",
        "privatekey",
        "pat",
        "salt",
        "pepper",
        "access",
        "private",
    ];
    // Keys that are not credentials, and what is not a credential
    // wherever it is named (public material, ids, page cursors).
    const NOT_ANYWHERE: &[&str] = &[
        "public",
        "pub",
        "pubkey",
        "csrf",
        "xsrf",
        "nonce",
        "authenticity",
        "id",
        "ids",
        "keyid",
        "chars",
        "charset",
        "alphabet",
        "vault",
        "store",
        "manager",
        "cache",
        "sort",
        "partition",
        "primary",
        "foreign",
        "schema",
        "sequence",
        "index",
        "lookup",
        "idempotency",
        "dedup",
        "row",
        "unique",
        "page",
        "cursor",
        "next",
        "continuation",
        "pagination",
        "sync",
        "keyboard",
        "keyframe",
        "hot",
        "shortcut",
        "translation",
        "locale",
        "message",
        "map",
        "dict",
        "fingerprint",
        "checksum",
        "hash",
        "reset",
        "confirm",
        "forgot",
        "min",
        "max",
        "enabled",
        "required",
        "valid",
    ];
    // Words that, after the credential word, name something about it (its
    // file, length, name, URL, type, where it lives).
    const ABOUT: &[&str] = &[
        "file",
        "path",
        "url",
        "uri",
        "endpoint",
        "host",
        "name",
        "names",
        "type",
        "size",
        "length",
        "len",
        "count",
        "str",
        "format",
        "version",
        "prefix",
        "field",
        "column",
        "label",
        "hint",
        "placeholder",
        "policy",
        "ttl",
        "timeout",
        "mode",
        "ref",
        "arn",
        "region",
        "bucket",
        "provider",
        "expiry",
        "expires",
        "expiration",
        "rotation",
        "header",
        "param",
        "var",
        "regex",
        "pattern",
        "location",
        "dir",
    ];
    // A provider's name glued to the word counts (`uclassifykey`).
    let credential = |w: &str| {
        CREDENTIAL.contains(&w)
            || (w.len() > 6
                && ["key", "token", "secret", "access", "private"]
                    .iter()
                    .any(|k| w.ends_with(k)))
    };
    let Some(last) = words.iter().rposition(|w| credential(w)) else {
        return false;
    };
    !words.iter().any(|w| NOT_ANYWHERE.contains(&w.as_str()))
        && !words[last + 1..]
            .iter()
            .any(|w| ABOUT.contains(&w.as_str()))
}

/// Prefixes of formats that have a rule of their own: when that rule
/// refused the value (a truncated or masked token), the generic rules do
/// not take it either.
const OWN_FORMAT: &[&str] = &[
    "xox",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "glptt-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "sk-ant-",
    "sk-proj-",
    "xapp-",
    "akia",
    "asia",
    "aiza",
    "hf_",
    "npm_",
    "pypi-",
    "sg.",
    "dop_v1_",
    "shpat_",
    "hvs.",
    "hvb.",
    "hvr.",
    "ops_",
    "glc_",
    "glsa_",
    "pplx-",
    "gsk_",
    "dckr_",
    "nrak-",
    "phc_",
    "eyj",
    "ya29.",
    "1//0",
    "sk.eyj",
    "gocspx-",
    "dapi",
    "bedrock-api-key-",
    "absk",
    "glimt-",
    "glagent-",
    "gloas-",
    "glsoat-",
    "glrt-",
    "gldt-",
    "glft-",
    "glcbt-",
    "glffct-",
    "glrtr-",
];

/// A token-shaped value where a credential goes: 10 to 512 characters of
/// token alphabet, letters and digits (or a long run of one of them), not
/// a placeholder, a mask, a run of one character, a reference, a word, a
/// written name (`my-secret-name`, `ConnectionStringName`), a constant
/// name, a host name, a file name, or a UUID that is not random (time-
/// and name-based UUIDs are ids; see [`provider_uuid`]). `bare`: the
/// name is a single word (`key: …`), which also names ordinary keys, so
/// the value must be long.
pub(crate) fn token_value(v: &str, bare: bool) -> bool {
    let n = v.len();
    if !(10..=512).contains(&n) || (bare && n < 16) {
        return false;
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+/=.~-".contains(&b))
    {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    if is_placeholder(v) || repeats(v) || long_run(v, 5) || entropy(v) < 2.5 {
        return false;
    }
    if OWN_FORMAT.iter().any(|p| lower.starts_with(p)) {
        return false;
    }
    let digits = v.bytes().filter(u8::is_ascii_digit).count();
    let letters = v.bytes().filter(u8::is_ascii_alphabetic).count();
    let mixed = digits >= 2 && letters >= 2;
    // Letters only: mixed case or an alphabet run; one case alone is more
    // often words run together (`hopenobodyfindsthisone`).
    let cased =
        v.bytes().any(|b| b.is_ascii_uppercase()) && v.bytes().any(|b| b.is_ascii_lowercase());
    if !(mixed || (digits == n && n >= 16) || (letters >= 20 && (cased || sequential(v)))) {
        return false;
    }
    // Written names (`ConnectionStringName`); a generated token with
    // digits may hold two capitalised "words" by chance.
    if (wordy(v) && digits < 3) || phrase(v) {
        return false;
    }
    // Host and file names: dotted runs of letters.
    if v.contains('.') {
        let parts: Vec<&str> = v.split('.').collect();
        if parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-'))
        {
            return false;
        }
        const FILES: &[&str] = &[
            "pem", "key", "crt", "cer", "p12", "pfx", "jks", "json", "yaml", "yml", "txt", "env",
            "pub", "der", "keystore",
        ];
        if parts
            .last()
            .is_some_and(|e| FILES.contains(&e.to_ascii_lowercase().as_str()))
        {
            return false;
        }
    }
    !uuid_version(v).is_some_and(derived_uuid)
}

/// UUIDs of the time- and name-based versions (1, 2, 3, 5, 6, 7): ids
/// derived from a clock, a MAC address or a name, not secrets. Version 4
/// is random; a version digit outside the standard is hand-typed.
fn derived_uuid(version: u8) -> bool {
    matches!(version, b'1' | b'2' | b'3' | b'5' | b'6' | b'7')
}

/// The version digit of a UUID (`8-4-4-4-12` hex), if `v` is one.
fn uuid_version(v: &str) -> Option<u8> {
    let b = v.as_bytes();
    let shape = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    shape.then(|| b[14])
}

/// A run of `n` or more of one character (`aaaaa`, `00000`): masks and
/// fillers; a generated token has one with a chance of about one in a
/// million per position.
fn long_run(v: &str, n: usize) -> bool {
    let b = v.as_bytes();
    let mut run = 1;
    for i in 1..b.len() {
        if b[i] == b[i - 1] {
            run += 1;
            if run >= n {
                return true;
            }
        } else {
            run = 1;
        }
    }
    false
}

/// Words joined by `_`, `-` or `.` (`my-secret-name`, `NEXUS_GPT4_API_KEY`,
/// `checking_Length-Is-checking`): three or more parts, at least three of
/// them words of two or more letters and three quarters of them words.
fn phrase(v: &str) -> bool {
    let parts: Vec<&str> = v.split(['_', '-', '.']).filter(|p| !p.is_empty()).collect();
    let words = parts
        .iter()
        .filter(|p| p.len() >= 2 && p.bytes().all(|b| b.is_ascii_alphabetic()))
        .count();
    parts.len() >= 3 && words >= 3 && words * 4 >= parts.len() * 3
}

/// The whole identifier an assignment's keyword belongs to, lowercased
/// (`csrf-token` for a match that starts at `token`).
fn identifier(c: &Ctx) -> String {
    let before = c.before(128);
    let trimmed = before.trim_end_matches(|ch: char| " \t\r\n\"'`:=>!@]\\".contains(ch));
    let start = trimmed
        .rfind(|ch: char| !(ch.is_ascii_alphanumeric() || "_.-".contains(ch)))
        .map_or(0, |i| i + 1);
    trimmed[start..].to_ascii_lowercase()
}

/// Passwords are chosen by people: shorter and less random than tokens, so
/// the bar is lower; placeholders and references are still refused. A
/// quoted value is a literal; an unquoted one in code is more often an
/// expression (`password = getpass()`, `password = form.password`,
/// `pwd = newPassword`), which is refused.
pub(crate) fn assigned_password(c: &Ctx) -> Option<Range<usize>> {
    let v = trim_value(c)?;
    let range = c.s.start..c.s.start + v.len();
    if password_value(v, quoted(c)) {
        return Some(range);
    }
    // A `NAME=value` line of an `.env`, `.ini` or `.properties` file: the
    // value is a literal even unquoted (`Password=thisismypassword`), but
    // still not a reference, a call or a dotted path.
    (config_line(c)
        && !v.contains(['(', '['])
        && !(v.contains('.')
            && v.split('.')
                .all(|p| p.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')))
        && password_value(v, true))
    .then_some(range)
}

/// Whether the match is a `NAME=value` line of an `.env`, `.ini` or
/// `.properties` file or a shell assignment, where an unquoted value is a
/// literal: `=` glued to the name, and before the name only blanks, a
/// shell or Dockerfile word (`export`, `set`, `ENV`, `ARG`), a YAML list
/// dash (`- MYSQL_PASSWORD=x` in a Compose file) or an option that takes
/// an assignment (`docker run -e`, `--build-arg`, `--from-literal=`,
/// `helm --set`). Code writes `f(password=pw)`: not a line.
fn config_line(c: &Ctx) -> bool {
    let glued = c.hay.get(..c.s.start).is_some_and(|h| {
        let b = h.as_bytes();
        b.len() >= 2
            && b[b.len() - 1] == b'='
            && (b[b.len() - 2].is_ascii_alphanumeric() || b[b.len() - 2] == b'_')
    });
    if !glued {
        return false;
    }
    let head = c.hay.get(..c.m.start).unwrap_or("");
    let line = head.rsplit('\n').next().unwrap_or(head);
    const OPTIONS: &[&str] = &[
        " -e ",
        " --env ",
        " --env=",
        " --build-arg ",
        " --build-arg=",
        " --from-literal=",
        " --set ",
        " --set-string ",
        " --set=",
    ];
    if OPTIONS.iter().any(|o| line.ends_with(o)) {
        return true;
    }
    let mut rest = line.trim_start();
    for word in ["export ", "set ", "SET ", "ENV ", "ARG ", "- "] {
        rest = rest.strip_prefix(word).unwrap_or(rest);
    }
    rest.trim().is_empty()
}

/// Whether the reported group is the inside of a quoted literal.
fn quoted(c: &Ctx) -> bool {
    let q = c.before(1);
    !q.is_empty() && "\"'`".contains(q) && c.after(1) == q
}

/// The reported group without the punctuation that ends a sentence or an
/// expression after an unquoted value (`password is hunter2.`, `f(pw=x)`).
fn trim_value<'h>(c: &Ctx<'h>) -> Option<&'h str> {
    let v = c.group();
    if quoted(c) {
        return Some(v);
    }
    let mut t = v.trim_end_matches(['.', ',', ';', '!', '?', ':']);
    for (open, close) in [('(', ')'), ('[', ']'), ('{', '}'), ('<', '>')] {
        if t.ends_with(close) && t.matches(close).count() > t.matches(open).count() {
            t = &t[..t.len() - 1];
        }
    }
    (!t.is_empty()).then_some(t)
}

/// The judgement of a password value (`quoted`: written as a literal).
pub(crate) fn password_value(v: &str, quoted: bool) -> bool {
    if is_placeholder(v) || !(4..=128).contains(&v.len()) || entropy(v) < 1.5 {
        return false;
    }
    if v.starts_with("process.env") || v.starts_with("os.environ") || v.starts_with("env(") {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    // Fake-value markers the value itself carries.
    if ["fake", "sample"].iter().any(|w| lower.contains(w)) {
        return false;
    }
    let has = |f: fn(&u8) -> bool| v.as_bytes().iter().any(f);
    // Paths, URLs, URNs and ARNs; values that start with the punctuation
    // that ends a literal (`,rememberMe…` after `"Password:"`); mostly
    // punctuation (`.$p[`, a fragment of code).
    let alnum = v.bytes().filter(u8::is_ascii_alphanumeric).count();
    if v.starts_with(['/', ',', ';', ')', ']', '}', ':'])
        || v.starts_with("./")
        || v.contains("://")
        || scheme_prefixed(&lower)
        || (v.contains('/')
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"/_-#.:".contains(&b)))
        || alnum * 2 < v.len()
    {
        return false;
    }
    if !has(u8::is_ascii_alphanumeric) || repeats(v) || long_run(v, 5) {
        return false;
    }
    // `password: string`, `password = getpass`: type names and the words
    // of declarations are not values.
    const TYPES: &[&str] = &[
        "string",
        "str",
        "text",
        "int",
        "integer",
        "bool",
        "boolean",
        "number",
        "any",
        "object",
        "bytes",
        "char",
        "varchar",
        "optional",
        "required",
        "hidden",
        "masked",
        "sensitive",
        "getpass",
        "input",
        "prompt",
        "self",
        "this",
        "env",
        "nullable",
        "secretstr",
        "securestring",
        "unknown",
        "never",
        "void",
    ];
    if TYPES.contains(&lower.as_str()) {
        return false;
    }
    // Short values need more than one class of characters.
    let classes = usize::from(has(u8::is_ascii_lowercase))
        + usize::from(has(u8::is_ascii_uppercase))
        + usize::from(has(u8::is_ascii_digit))
        + usize::from(has(|b| b.is_ascii_punctuation()));
    if v.len() < 6 && classes < 2 && !quoted {
        return false;
    }
    if quoted {
        return true;
    }
    // Unquoted: calls, indexing, member access and identifiers named like
    // the secret are expressions, not values.
    if v.contains(['(', '[']) || v.contains("->") || v.contains("::") {
        return false;
    }
    let identifier = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        && v.as_bytes()[0].is_ascii_alphabetic();
    if identifier {
        let dotted = v.contains('.') && v.split('.').all(|p| !p.is_empty());
        const NAMED: &[&str] = &["pass", "pwd", "secret", "key", "token", "cred", "auth"];
        // A digit inside the value (`b0bPass`), not only a trailing count
        // (`newPassword2`), is not how variables are named.
        let inner_digit = v
            .trim_end_matches(|ch: char| ch.is_ascii_digit())
            .bytes()
            .any(|b| b.is_ascii_digit());
        if dotted || (!inner_digit && NAMED.iter().any(|n| lower.contains(n))) {
            return false;
        }
    }
    true
}

/// A quoted literal in a password position (`IDENTIFIED BY 'x'`,
/// `<password>x</password>`, `password: "x"`).
pub(crate) fn quoted_password(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    if v.contains(char::is_whitespace) && !passphrase(v) {
        return None;
    }
    if !password_value(v, true) {
        return None;
    }
    const NOT_PASSWORD: &[&str] = &[
        "label",
        "prompt",
        "message",
        "hint",
        "placeholder",
        "field",
        "policy",
        "length",
        "url",
        "path",
        "file",
        "type",
        "regex",
        "pattern",
        "format",
        "error",
        "strength",
        "reset",
        "confirm",
        "input",
        "title",
        "text",
        "name",
        "user",
        "hash",
        "salt",
        "rule",
        "mode",
        "expir",
        "chars",
        "min",
        "max",
    ];
    let name = identifier(c);
    let word = name
        .rsplit_once("password")
        .or_else(|| name.rsplit_once("passwd"))
        .or_else(|| name.rsplit_once("pwd"))
        .map_or("", |(_, rest)| rest);
    if NOT_PASSWORD.iter().any(|n| word.contains(n)) {
        return None;
    }
    c.accept()
}

/// A quoted password of a few words (`'open sesame'`), not a message
/// about passwords (`"Enter your password"`, `"Invalid password."`).
fn passphrase(v: &str) -> bool {
    let words: Vec<&str> = v.split_whitespace().collect();
    if !(2..=5).contains(&words.len()) || v.len() > 64 || v.ends_with(['.', '!', '?', ':']) {
        return false;
    }
    // Words, not code (`" + getPassword() + "`).
    if words.iter().any(|w| {
        !w.bytes().any(|b| b.is_ascii_alphanumeric())
            || w.contains(['(', ')', '{', '}', '=', '$', '<', '>'])
    }) {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    if ["pass", "secret", "key"].iter().any(|k| lower.contains(k)) {
        return false;
    }
    const MESSAGE: &[&str] = &[
        "password",
        "passwords",
        "passwd",
        "passphrase",
        "secret",
        "key",
        "token",
        "your",
        "you",
        "enter",
        "please",
        "invalid",
        "incorrect",
        "wrong",
        "required",
        "must",
        "should",
        "match",
        "forgot",
        "reset",
        "change",
        "show",
        "hide",
        "confirm",
        "new",
        "old",
        "current",
        "characters",
        "chars",
        "field",
        "user",
        "username",
        "login",
        "sign",
        "log",
        "here",
        "not",
        "is",
        "are",
        "be",
        "was",
        "been",
        "do",
        "does",
        "did",
        "can",
        "cannot",
        "will",
        "at",
        "least",
        "minimum",
        "maximum",
        "min",
        "max",
        "length",
        "strength",
        "weak",
        "strong",
        "error",
        "failed",
        "success",
        "expired",
        "account",
        "email",
        "click",
        "type",
        "goes",
        "missing",
        "empty",
        "set",
        "save",
        "update",
        "this",
        "that",
        "for",
        "to",
        "of",
        "in",
        "on",
        "a",
        "an",
    ];
    !words.iter().any(|w| {
        let w = w
            .trim_matches(|ch: char| !ch.is_ascii_alphanumeric())
            .to_ascii_lowercase();
        MESSAGE.contains(&w.as_str())
    })
}

/// Unquoted values after a password word in running text: they must
/// carry a digit or a symbol ("the password is hunter2", not "the
/// password is Required").
pub(crate) fn prose_password(c: &Ctx) -> Option<Range<usize>> {
    // The value on the line of its keyword.
    let between = c.hay.get(c.m.start..c.s.start).unwrap_or("");
    if between.contains('\n') {
        return None;
    }
    let v = trim_value(c)?;
    // After a verb ("the password is Passw0rd99") the value is a value,
    // even when it reads like a name.
    if !between.contains([':', '='])
        && v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes().any(|b| b.is_ascii_alphabetic())
    {
        return password_value(v, true).then(|| c.s.start..c.s.start + v.len());
    }
    if !quoted(c)
        && !v
            .bytes()
            .any(|b| b.is_ascii_digit() || b.is_ascii_punctuation())
    {
        return None;
    }
    password_value(v, quoted(c)).then(|| c.s.start..c.s.start + v.len())
}

/// A password right after its keyword with only a space between (`the
/// password Summer2024!`, `IDENTIFIED BY kX93mQz`): letters and digits
/// both, so that words (`password reset`) and numbers (`password 2`) are
/// not taken, nor hash names (`password SHA256`).
pub(crate) fn bare_password(c: &Ctx) -> Option<Range<usize>> {
    let v = trim_value(c)?;
    let has = |f: fn(&u8) -> bool| v.as_bytes().iter().any(f);
    if !(has(u8::is_ascii_alphabetic) && has(u8::is_ascii_digit)) || v.len() < 6 {
        return None;
    }
    let lower = v.to_ascii_lowercase();
    const NOT: &[&str] = &[
        "sha", "md5", "md4", "pbkdf2", "argon2", "bcrypt", "scrypt", "crc32", "base64", "utf8",
        "utf-8", "ntlm", "aes", "rsa", "http", "v1", "v2", "v3",
    ];
    if NOT.iter().any(|n| lower.starts_with(n)) || v.contains(['(', ')', '[', ']', '{', '}']) {
        return None;
    }
    password_value(v, true).then(|| c.s.start..c.s.start + v.len())
}

/// A password given on a command line: anything but a reference, a
/// placeholder or another option.
pub(crate) fn cli_password(c: &Ctx) -> Option<Range<usize>> {
    let v = trim_value(c)?;
    if v.starts_with('-') || v.contains("://") || v.starts_with('/') || v.starts_with('~') {
        return None;
    }
    if is_placeholder(v) || !(4..=256).contains(&v.len()) || entropy(v) < 1.5 {
        return None;
    }
    // `--password-file`, `--pass stdin`, `-pass env:VAR`, `fd:3`, `file:…`.
    let lower = v.to_ascii_lowercase();
    if ["stdin", "env:", "fd:", "file:", "prompt"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return None;
    }
    Some(c.s.start..c.s.start + v.len())
}

/// Password words in a name: the name of a password slot.
fn password_words(words: &[String]) -> bool {
    words.iter().any(|w| {
        matches!(
            w.as_str(),
            "password" | "passwd" | "pwd" | "pass" | "passphrase" | "passcode" | "psk" | "pw"
        ) || w.ends_with("password")
            || w.ends_with("passwd")
    })
}

/// The value of a pair whose name is written apart from it: a Kubernetes
/// or ECS `env` entry (`name: DB_PASSWORD` / `value: …`), an XML property
/// (`<property name="connection.password">…`), `define('DB_PASSWORD',
/// '…')`, `setProperty("db.password", "…")`, `getenv("API_KEY",
/// "…")`. The name is the first word of the match that carries a
/// credential word.
pub(crate) fn paired_value(c: &Ctx) -> Option<Range<usize>> {
    let head = c.hay.get(c.m.start..c.s.start).unwrap_or("");
    // The attribute or key that introduces the name is not the name.
    const FRAME: &[&str] = &["key", "name", "value", "property", "entry"];
    let words = head
        .split(|ch: char| !(ch.is_ascii_alphanumeric() || "_.-".contains(ch)))
        .filter(|t| !FRAME.iter().any(|f| t.eq_ignore_ascii_case(f)))
        .map(split_words)
        .find(|w| credential_words(w))?;
    // The value runs to its delimiter (a quote, `<`, the end of a YAML
    // line): a final `!` or `.` is part of it.
    let v = c.group().trim_end_matches(';');
    if v.is_empty() {
        return None;
    }
    let range = c.s.start..c.s.start + v.len();
    if own_format(c) {
        return None;
    }
    if password_words(&words) {
        const NOT: &[&str] = &[
            "label",
            "prompt",
            "message",
            "hint",
            "placeholder",
            "policy",
            "length",
            "hash",
            "salt",
            "reset",
            "confirm",
            "min",
            "max",
            "regex",
            "pattern",
            "rule",
        ];
        if words.iter().any(|w| NOT.contains(&w.as_str())) {
            return None;
        }
        if v.contains(char::is_whitespace) && !passphrase(v) {
            return None;
        }
        return password_value(v, true).then_some(range);
    }
    chosen_secret(v).then_some(range)
}

/// A secret value written where a credential-named slot takes it: a
/// token, or a value chosen by a person (eight or more characters with
/// digits or symbols, not a phrase, a name, a dotted or snake-case
/// identifier, a version or a derived UUID).
fn chosen_secret(v: &str) -> bool {
    token_value(v, false) || (v.len() >= 8 && !v.contains(char::is_whitespace) && chosen_value(v))
}

/// [`paired_value`] for a quoted name and a quoted value given as two
/// arguments: lists of names (`("username", "password", "email")`)
/// take that shape too, so the value must carry a digit or a symbol and
/// not be an identifier.
pub(crate) fn paired_literal(c: &Ctx) -> Option<Range<usize>> {
    // The name is a call's first argument (`define(`, `getenv(`), not an
    // element of a list (`("keywords", "tokens", "symbol2label")`).
    let head = c.hay.get(..c.m.start).unwrap_or("").trim_end();
    if !head.ends_with('(') && !build_config_field(head) {
        return None;
    }
    let v = c.group();
    if !v
        .bytes()
        .any(|b| b.is_ascii_digit() || !b.is_ascii_alphanumeric())
    {
        return None;
    }
    if v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && !v.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    paired_value(c)
}

/// Whether `head` ends with an Android `buildConfigField` call's first
/// argument, its type (`buildConfigField("String", ` or
/// `buildConfigField 'String', `): the name and the value follow.
fn build_config_field(head: &str) -> bool {
    let Some(rest) = head.strip_suffix(',') else {
        return false;
    };
    let rest = rest.trim_end();
    let Some(q) = rest.chars().last().filter(|q| *q == '"' || *q == '\'') else {
        return false;
    };
    let inner = &rest[..rest.len() - 1];
    let Some(open) = inner.rfind(q) else {
        return false;
    };
    let call = inner[..open].trim_end().trim_end_matches('(').trim_end();
    // Compared as bytes: the text before may end in any character.
    call.as_bytes()
        .get(call.len().saturating_sub(16)..)
        .is_some_and(|tail| tail.eq_ignore_ascii_case(b"buildconfigfield"))
        && inner[open + 1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

/// A literal passed to a setter or builder named for a password or a
/// secret (`ds.setPassword("…")`, `.password("…")`, `withApiKey("…")`,
/// SQL's `PASSWORD('…')`). Getters and look-ups take the name of a
/// secret, not its value (`getPassword("db")`, `requireSecret("x")`).
pub(crate) fn setter_value(c: &Ctx) -> Option<Range<usize>> {
    let head = c.hay.get(c.m.start..c.s.start).unwrap_or("");
    let name = head.split('(').next().unwrap_or("");
    let name = after_last(name, |ch| ch == '.');
    let lower = name.to_ascii_lowercase();
    const LOOKUP: &[&str] = &[
        "get", "read", "load", "find", "lookup", "fetch", "require", "has", "is", "check",
        "verify", "validate", "env", "config", "secret", "resolve", "prompt", "ask", "input",
        "retrieve", "decrypt", "new", "reset", "forgot", "change", "update", "hide", "show",
        "toggle", "field", "label", "type", "clear", "remove", "delete",
    ];
    if LOOKUP
        .iter()
        .any(|p| lower.starts_with(p) && lower != "password")
    {
        return None;
    }
    let words = split_words(name);
    let v = c.group();
    if password_words(&words) {
        if v.contains(char::is_whitespace) && !passphrase(v) {
            return None;
        }
        // Names of settings passed to a generic accessor.
        let named = v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && v.bytes().any(|b| b"_.-".contains(&b))
            && !v.bytes().any(|b| b.is_ascii_digit());
        return (!named && password_value(v, true)).then(|| c.accept())?;
    }
    chosen_secret(v).then(|| c.accept())?
}

/// A salt or pepper literal: shorter than a token, but written by a
/// person or a generator, with digits, symbols or mixed case; not a word,
/// a name or an identifier.
pub(crate) fn quoted_salt(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    let words = name_words(c);
    let at = words.iter().rposition(|w| w == "salt" || w == "pepper")?;
    // What is about a salt (its length, rounds, encoding), not one; a
    // password hash's salt (`hash_salt`) is one.
    const ABOUT: &[&str] = &[
        "length", "len", "size", "rounds", "bytes", "bits", "id", "name", "type", "format",
        "encoding", "column", "field", "file", "path",
    ];
    if !quoted(c) || own_format(c) || words[at..].iter().any(|w| ABOUT.contains(&w.as_str())) {
        return None;
    }
    let has = |f: fn(&u8) -> bool| v.as_bytes().iter().any(f);
    let mixed = has(u8::is_ascii_lowercase) && has(u8::is_ascii_uppercase);
    if !(has(u8::is_ascii_digit) || mixed || has(|b| !b.is_ascii_alphanumeric())) {
        return None;
    }
    if phrase(v) || wordy(v) || !has(u8::is_ascii_alphabetic) && v.len() < 8 {
        return None;
    }
    if v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        && (v.contains('_') || v.contains('.'))
    {
        return None;
    }
    password_value(v, true).then(|| c.accept())?
}

/// An OTP enrolment seed: base32 (`A–Z`, `2–7`), 16 or more characters,
/// possibly in groups of four as authenticator apps show it.
pub(crate) fn otp_seed(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    let compact: String = v
        .chars()
        .filter(|ch| !matches!(ch, ' ' | '-'))
        .map(|ch| ch.to_ascii_uppercase())
        .collect();
    if compact.len() < 16
        || !compact
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        || is_placeholder(&compact)
        || repeats(&compact)
        || long_run(&compact, 4)
        || sequential(&compact)
        || entropy(&compact) < 3.0
    {
        return None;
    }
    // All letters and no digit: a word in capitals, unless long.
    if !compact.bytes().any(|b| b.is_ascii_digit()) && compact.len() < 24 {
        return None;
    }
    c.accept()
}

/// A password after a user name and a slash in running text
/// (`credentials: admin / Adm1n2024`): digits or symbols with letters,
/// not a path or a version.
pub(crate) fn slash_password(c: &Ctx) -> Option<Range<usize>> {
    let v = trim_value(c)?;
    let has = |f: fn(&u8) -> bool| v.as_bytes().iter().any(f);
    if !has(u8::is_ascii_alphabetic)
        || !(has(u8::is_ascii_digit) || has(u8::is_ascii_punctuation))
        || v.len() < 5
        || v.contains(['/', '\\', '(', ')', '{', '}', '<', '>'])
    {
        return None;
    }
    let b = v.as_bytes();
    if b.windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b'.' && w[2].is_ascii_digit())
        || c.after(1).starts_with('/')
    {
        return None;
    }
    password_value(v, true).then(|| c.s.start..c.s.start + v.len())
}

/// GitHub and npm tokens end in a CRC-32 of the 30 random characters
/// before it, in base 62 (six digits, zero-padded). A token whose
/// checksum holds is accepted outright; one whose checksum fails is
/// still accepted when it looks random, because documentation and test
/// fixtures carry made-up tokens that stand for real ones.
pub(crate) fn crc32_token(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    let body = v.rsplit('_').next().unwrap_or("");
    if body.len() == 36 && base62_crc32_ok(body) {
        return c.accept();
    }
    random_token(c)
}

fn base62_crc32_ok(body: &str) -> bool {
    let (data, sum) = body.split_at(30);
    let mut n = crc32(data.as_bytes());
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 62) as usize];
        n /= 62;
    }
    n == 0 && out == sum.as_bytes()
}

/// CRC-32 (IEEE 802.3, reflected), bitwise: checksums are short.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Grafana API keys of the first kind decode to `{"k":…,"n":…,"id":…}`
/// (other base64 JSON that starts with a `k` member is not one).
pub(crate) fn grafana_key(c: &Ctx) -> Option<Range<usize>> {
    let decoded = base64_decode(c.group());
    let text = String::from_utf8_lossy(&decoded);
    (text.contains("\"n\":") && text.contains("\"id\":")).then(|| c.accept())?
}

/// JSON Web Tokens: the header must decode to a JOSE header (`alg` or
/// `typ`); an unsigned token (`header.payload.`) is a bearer token too.
pub(crate) fn jwt(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    let header = v.split('.').next().unwrap_or("");
    let text = String::from_utf8_lossy(&base64_decode(header)).into_owned();
    if !(text.contains("\"alg\"") || text.contains("\"typ\"")) {
        return None;
    }
    random_token(c)
}

/// Base64 of a PEM block: it must decode to a private key's armour.
pub(crate) fn pem_base64(c: &Ctx) -> Option<Range<usize>> {
    let decoded = base64_decode(c.group());
    let text = String::from_utf8_lossy(&decoded);
    (text.contains("PRIVATE KEY") && text.len() >= 64).then(|| c.accept())?
}

/// Lenient base64 (standard or URL alphabet, padding optional): the bytes
/// of every complete group.
pub(crate) fn base64_decode(v: &str) -> Vec<u8> {
    let val = |b: u8| -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(v.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for b in v.bytes() {
        let Some(x) = val(b) else { break };
        acc = (acc << 6) | x;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
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
        "ssws",
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
    (!slot_placeholder(v) && (3..=256).contains(&v.len())).then(|| c.accept())?
}

/// A connection string's password: as [`url_password`], but not an
/// expression of code (`password = req.body.password;`,
/// `pwd = getPwd();`).
pub(crate) fn connection_password(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    let dotted = v.contains('.')
        && v.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        && v.as_bytes()[0].is_ascii_alphabetic();
    if dotted || v.contains(['(', '[']) || v.contains("->") || v.contains("::") {
        return None;
    }
    url_password(c)
}

/// Base64 of `user:password` where basic credentials are stored: it
/// must decode to printable text with a colon between two non-empty
/// parts.
pub(crate) fn basic_pair(c: &Ctx) -> Option<Range<usize>> {
    let v = c.group();
    let decoded = base64_decode(v);
    let text = std::str::from_utf8(&decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    let printable = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    (printable(user) && printable(pass) && pass.len() >= 3 && !is_placeholder(pass))
        .then(|| c.accept())?
}

/// Placeholders where the slot itself says "password" (a URL's or a
/// connection string's): weak but real passwords (`secret`, `admin`,
/// `root`) are credentials there, not stand-ins.
fn slot_placeholder(v: &str) -> bool {
    const WEAK: &[&str] = &[
        "secret", "admin", "root", "test", "qwerty", "letmein", "default",
    ];
    is_placeholder(v) && !WEAK.contains(&v.to_ascii_lowercase().as_str())
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
    fn token_values_uuids_phrases_and_runs() {
        // Hand-typed and generated values are tokens where a credential
        // goes; masks, runs, words and names are not.
        assert!(token_value("1234567890abcdef1234567890abcdef", false));
        assert!(token_value("abcd1234abcd1234ABCD1234", false));
        assert!(token_value("B1CD2EF3GHIJ4567KLMN8OPQR9ST0UVW", false));
        assert!(!token_value("abcd1234", false));
        assert!(!token_value("a8f3k2m9x7q4", true));
        assert!(!token_value("xxxxxxxxxxxxxxxxxxxx", false));
        assert!(!token_value("aaaaaa1111112222223", false));
        assert!(!token_value("hopenobodyfindsthisone", false));
        assert!(!token_value("NEXUS-GPT4-API-KEY", false));
        assert!(!token_value("auth.example.com", false));
        assert!(!token_value("s_rsa1024_priv.pem", false));
        // UUIDs: random (4) and hand-typed versions are tokens; time- and
        // name-based ones are ids.
        assert_eq!(
            uuid_version("5f0c6a4e-2b7d-4c9e-8a1f-3d2b6c9e0f14"),
            Some(b'4')
        );
        assert!(token_value("5f0c6a4e-2b7d-4c9e-8a1f-3d2b6c9e0f14", false));
        assert!(!token_value("743b294a-cd03-11ec-9d64-0242ac120002", false));
        assert!(phrase("my-secret-name"));
        assert!(!phrase("x7Kq-2mPz-9vLw"));
        assert!(long_run("ab00000cd", 5) && !long_run("ab0000cd", 5));
        // Descending alphabet runs are fillers too.
        assert!(sequential("ZYXWVUTSRQPONMLKJIHG"));
        assert!(is_placeholder("#add-password") && !is_placeholder("#gets0m3"));
    }

    #[test]
    fn github_and_npm_checksums_are_verified() {
        // The CRC-32 of the 30 random characters in base 62: a token whose
        // checksum holds is accepted even where the randomness check alone
        // refuses it (one repeated letter); a made-up one must look random.
        let body = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut n = crc32(body.as_bytes());
        let mut sum = [b'0'; 6];
        for slot in sum.iter_mut().rev() {
            *slot = DIGITS[(n % 62) as usize];
            n /= 62;
        }
        let sum = std::str::from_utf8(&sum).unwrap();
        for prefix in ["ghp_", "npm_"] {
            let good = format!("{prefix}{body}{sum}");
            assert!(crc32_token(&ctx(&good)).is_some(), "{good}");
            let bad = format!("{prefix}{body}00000a");
            assert!(crc32_token(&ctx(&bad)).is_none(), "{bad}");
        }
        // The reference value of the IEEE CRC-32.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
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
