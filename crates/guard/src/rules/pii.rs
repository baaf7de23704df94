//! Personal data with a defined shape: e-mail addresses, phone numbers, US
//! social security numbers, payment cards (Luhn), IBANs (mod 97), IP
//! addresses. Checksums and ranges are checked after the match.

use super::checks::{card, email, iban, ipv4, ipv6, nanp_compact, phone, ssn};
use super::{Family, Lane, Rule};

const fn numeric(class: &'static str, pattern: &'static str, check: super::Check) -> Rule {
    Rule {
        class,
        family: Family::Pii,
        lane: Lane::Numeric,
        pattern,
        keywords: &[],
        reach: 0,
        lead: 0,
        word_start: false,
        check,
    }
}

/// Phone separators: space, dot, hyphen.
macro_rules! sep {
    () => {
        r"[ .-]"
    };
}

pub(super) static RULES: &[Rule] = &[
    Rule {
        class: "email",
        family: Family::Pii,
        lane: Lane::Email,
        pattern: r"(?i)(?:[a-z0-9][a-z0-9._%+-]{0,63}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})(?-u:\b)",
        keywords: &["@"],
        reach: 340,
        // The local part: at most 64 bytes before the `@`.
        lead: 64,
        word_start: false,
        check: email,
    },
    // Numbers, in priority order: a match that fails its check is retried
    // with the rules after it at the same position.
    // IBANs in capitals, as written, or all in lower case. Not in mixed
    // case: a case-insensitive class takes 52 of base64's 64 characters, so
    // in a base64 blob a candidate started at nearly every word start and
    // lived for dozens of characters, and the overlapping candidates made
    // the automaton build a new state at nearly every byte (a 1 MiB blob
    // cost seconds).
    numeric(
        "iban",
        r"(?-u:\b{start-half})(?:[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?)(?-u:\b)",
        iban,
    ),
    numeric(
        "iban",
        r"(?-u:\b{start-half})(?:[a-z]{2}[0-9]{2}(?: ?[a-z0-9]{4}){2,7}(?: ?[a-z0-9]{1,3})?)(?-u:\b)",
        iban,
    ),
    numeric(
        "payment_card",
        r"(?-u:\b{start-half})(?:[1-6][0-9]{11,18}|[1-6][0-9]{3}(?:[ -][0-9]{4}){2,3}(?:[ -][0-9]{1,3})?|3[47][0-9]{2}[ -][0-9]{6}[ -][0-9]{5})(?-u:\b)",
        card,
    ),
    numeric(
        "us_ssn",
        r"(?-u:\b{start-half})(?:[0-9]{3}-[0-9]{2}-[0-9]{4})(?-u:\b)",
        ssn,
    ),
    numeric(
        "ip_address",
        r"(?-u:\b{start-half})(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3})(?-u:\b)",
        ipv4,
    ),
    numeric(
        "ip_address",
        r"(?i)(?-u:\b{start-half})(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,5})?|::(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{1,4})(?-u:\b{end-half})",
        ipv6,
    ),
    // E.164 and international notation: "+41 (0)96 471 07 95", "+1-604-696-5272x565".
    numeric(
        "phone",
        concat!(
            r"(?-u:\b{start-half})(?:\+[1-9][0-9]{0,2}(?:",
            sep!(),
            r"?\(0?[0-9]{1,4}\))?(?:",
            sep!(),
            r"?[0-9]{1,4}){2,6}(?:\s?(?:x|ext\.?)\s?[0-9]{1,6})?)(?-u:\b)"
        ),
        phone,
    ),
    // North American: "(415) 555-2671", "415.555.2671", "1-415-555-2671 x12".
    numeric(
        "phone",
        concat!(
            r"(?-u:\b{start-half})(?:(?:1",
            sep!(),
            r"?)?(?:\([0-9]{3}\) ?|[0-9]{3}",
            sep!(),
            r")[0-9]{3}",
            sep!(),
            r"[0-9]{4}(?:\s?(?:x|ext\.?)\s?[0-9]{1,6})?)(?-u:\b)"
        ),
        phone,
    ),
    // National notation with a trunk or international prefix 0 / 00:
    // "07700 900 461", "0490 75 40 81", "03.93.92.16.85", "(08) 8747 6301".
    numeric(
        "phone",
        concat!(
            r"(?-u:\b{start-half})(?:(?:0[0-9]{1,4}|\(0[0-9]{1,4}\))(?:",
            sep!(),
            r"[0-9]{2,8}(?:",
            sep!(),
            r"[0-9]{2,4}){0,3}|",
            sep!(),
            r"?[0-9]{2,4}(?:",
            sep!(),
            r"[0-9]{2,4}){1,3}))(?-u:\b)"
        ),
        phone,
    ),
    // Grouped local numbers: "699 956 915", "(37) 788-063", "60-56-85-91".
    // Two groups must already hold the 7 digits a phone number needs, so
    // that decimals ("10.10") and dates ("2024-03") are not candidates.
    numeric(
        "phone",
        concat!(
            r"(?-u:\b{start-half})(?:",
            r"(?:[1-9][0-9]{1,3}",
            sep!(),
            r"|\([1-9][0-9]{1,3}\) ?)[0-9]{2,6}(?:",
            sep!(),
            r"[0-9]{2,4}){1,3}",
            r"|(?:[1-9][0-9]{3}",
            sep!(),
            r"|\([1-9][0-9]{3}\) ?)[0-9]{3,6}",
            r"|(?:[1-9][0-9]{2}",
            sep!(),
            r"|\([1-9][0-9]{2}\) ?)[0-9]{4,6}",
            r"|(?:[1-9][0-9]",
            sep!(),
            r"|\([1-9][0-9]\) ?)[0-9]{5,6}",
            r")(?:\s?x[0-9]{1,6})?(?-u:\b)"
        ),
        phone,
    ),
    // Ten digits without separators, North American shape.
    numeric(
        "phone",
        r"(?-u:\b{start-half})(?:1?[2-9][0-9]{2}[2-9][0-9]{6})(?-u:\b)",
        nanp_compact,
    ),
];
