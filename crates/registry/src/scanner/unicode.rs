//! Character-level detectors (invisible and format Unicode, controls, ANSI
//! escapes, hidden whitespace) and the normalisation text rules run on.

use super::rules::*;
use super::RawFinding;

/// Runs every character-level detector over `text`. Returns the decoded
/// tag-character text when there is any (it is scanned as text too).
pub(super) fn scan_chars(text: &str, out: &mut Vec<RawFinding>) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let has_rtl = chars.iter().any(|&c| is_rtl_letter(c));
    let mut tags = String::new();
    let mut first = Firsts::default();
    let mut prev: Option<char> = None;
    let mut vs_run = 0usize;
    for (i, &c) in chars.iter().enumerate() {
        let u = c as u32;
        if is_variation_selector(c) {
            vs_run += 1;
            if u >= 0xE0100 || vs_run >= 2 {
                first.variation.get_or_insert(i);
            }
        } else {
            vs_run = 0;
        }
        match u {
            0xE0000..=0xE007F => {
                first.tag.get_or_insert(i);
                if (0xE0020..=0xE007E).contains(&u) {
                    tags.push(char::from_u32(u - 0xE0000).unwrap_or('?'));
                }
            }
            0x1B => {
                first.ansi.get_or_insert(i);
            }
            0x202A..=0x202E | 0x2066..=0x2069 => {
                first.bidi.get_or_insert(i);
            }
            0x200E | 0x200F | 0x061C if !has_rtl => {
                first.bidi_mark.get_or_insert(i);
            }
            0x200D if prev.is_some_and(is_emoji_like) => {}
            0x200B..=0x200D
            | 0x2060..=0x2064
            | 0xFEFF
            | 0x180E
            | 0x034F
            | 0x115F
            | 0x1160
            | 0x3164
            | 0xFFA0
            | 0x00AD
            | 0x17B4
            | 0x17B5
            | 0x206A..=0x206F
            | 0xFFF9..=0xFFFB
            | 0x2800 => {
                // U+2800 (braille blank) renders as nothing in most fonts.
                first.invisible.get_or_insert(i);
            }
            0xE000..=0xF8FF | 0xF0000..=0x10FFFF => {
                first.private_use.get_or_insert(i);
            }
            _ if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {
                first.control.get_or_insert(i);
            }
            _ => {}
        }
        prev = Some(c);
    }
    let excerpt_at = |i: usize| excerpt_chars(&chars, i);
    if first.tag.is_some() {
        let decoded = crate::text::escape_excerpt(&tags, 80);
        out.push(RawFinding::new(
            UNICODE_TAG,
            format!("hidden tag text: {decoded:?}"),
        ));
    }
    for (idx, rule) in [
        (first.invisible, UNICODE_INVISIBLE),
        (first.bidi, UNICODE_BIDI),
        (first.bidi_mark, UNICODE_BIDI_MARK),
        (first.control, UNICODE_CONTROL),
        (first.variation, UNICODE_VARIATION),
        (first.private_use, UNICODE_PRIVATE_USE),
        (first.ansi, ANSI_ESCAPE),
    ] {
        if let Some(i) = idx {
            out.push(RawFinding::new(rule, excerpt_at(i)));
        }
    }
    hidden_whitespace(&chars, out);
    mixed_script(&chars, out);
    (!tags.is_empty()).then_some(tags)
}

#[derive(Default)]
struct Firsts {
    tag: Option<usize>,
    invisible: Option<usize>,
    bidi: Option<usize>,
    bidi_mark: Option<usize>,
    control: Option<usize>,
    variation: Option<usize>,
    private_use: Option<usize>,
    ansi: Option<usize>,
}

fn excerpt_chars(chars: &[char], i: usize) -> String {
    let start = i.saturating_sub(24);
    let end = (i + 24).min(chars.len());
    let s: String = chars[start..end].iter().collect();
    crate::text::escape_excerpt(&s, 120)
}

fn is_variation_selector(c: char) -> bool {
    matches!(c as u32, 0xFE00..=0xFE0F | 0xE0100..=0xE01EF)
}

fn is_emoji_like(c: char) -> bool {
    matches!(c as u32, 0x2190..=0x2BFF | 0x1F000..=0x1FAFF | 0xFE0F)
}

fn is_rtl_letter(c: char) -> bool {
    matches!(c as u32, 0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFC)
}

fn is_space(c: char) -> bool {
    c.is_whitespace() || matches!(c as u32, 0x2800 | 0x3164 | 0x115F | 0x1160 | 0xFFA0)
}

/// Runs of whitespace long enough to push what follows out of view:
/// 60+ spaces on one line or 10+ line breaks, with text after them
/// (a table cell padded up to its `|` border is not hiding anything).
fn hidden_whitespace(chars: &[char], out: &mut Vec<RawFinding>) {
    const HORIZONTAL: usize = 60;
    const LINES: usize = 10;
    let mut i = 0;
    while i < chars.len() {
        if !is_space(chars[i]) {
            i += 1;
            continue;
        }
        let (mut widest, mut line, mut breaks) = (0usize, 0usize, 0usize);
        while i < chars.len() && is_space(chars[i]) {
            if chars[i] == '\n' {
                breaks += 1;
                line = 0;
            } else if chars[i] != '\r' {
                line += 1;
                widest = widest.max(line);
            }
            i += 1;
        }
        let hides_text = i < chars.len() && chars[i] != '|';
        if hides_text && (widest >= HORIZONTAL || breaks >= LINES) {
            let after: String = chars[i..].iter().take(60).collect();
            let what = format!(
                "{} spaces / {} line breaks, then: {}",
                widest,
                breaks,
                crate::text::escape_excerpt(&after, 60)
            );
            out.push(RawFinding::new(HIDDEN_WHITESPACE, what));
            return;
        }
    }
}

/// Words that mix Latin letters with Cyrillic or Greek look-alikes.
fn mixed_script(chars: &[char], out: &mut Vec<RawFinding>) {
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_alphabetic() {
            i += 1;
            continue;
        }
        let start = i;
        let (mut latin, mut foreign) = (false, false);
        while i < chars.len() && chars[i].is_alphabetic() {
            let c = chars[i];
            if c.is_ascii_alphabetic() {
                latin = true;
            } else if is_cyrillic(c) || is_greek_lookalike(c) {
                foreign = true;
            }
            i += 1;
        }
        if latin && foreign && i - start >= 3 {
            let word: String = chars[start..i].iter().collect();
            out.push(RawFinding::new(
                UNICODE_MIXED_SCRIPT,
                crate::text::escape_excerpt(&word, 60),
            ));
            return;
        }
    }
}

fn is_cyrillic(c: char) -> bool {
    matches!(c as u32, 0x0400..=0x04FF)
}

fn is_greek_lookalike(c: char) -> bool {
    matches!(
        c,
        'Α' | 'Β'
            | 'Ε'
            | 'Ζ'
            | 'Η'
            | 'Ι'
            | 'Κ'
            | 'Μ'
            | 'Ν'
            | 'Ο'
            | 'Ρ'
            | 'Τ'
            | 'Υ'
            | 'Χ'
            | 'ο'
            | 'ν'
            | 'ρ'
            | 'α'
            | 'ι'
            | 'κ'
            | 'τ'
            | 'υ'
    )
}

/// The text the text rules see: invisible characters removed, full-width
/// forms and Cyrillic/Greek look-alikes folded to ASCII, typographic quotes
/// made plain, whitespace and controls collapsed to single spaces.
pub(super) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        let u = c as u32;
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() || c.is_control() || u == 0x2800 {
            if !space && !out.is_empty() {
                out.push(' ');
            }
            space = true;
            continue;
        }
        space = false;
        let folded = match u {
            0xFF01..=0xFF5E => char::from_u32(u - 0xFEE0).unwrap_or(c),
            0x2018 | 0x2019 | 0x201B | 0x2032 | 0x02BC => '\'',
            0x201C | 0x201D | 0x201F | 0x2033 => '"',
            _ => fold_lookalike(c),
        };
        out.push(folded);
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF9..=0xFFFB | 0xE0000..=0xE0FFF)
}

fn fold_lookalike(c: char) -> char {
    match c {
        'а' | 'α' => 'a',
        'А' | 'Α' => 'A',
        'В' | 'Β' => 'B',
        'с' => 'c',
        'С' => 'C',
        'е' | 'ε' => 'e',
        'Е' | 'Ε' => 'E',
        'Н' | 'Η' => 'H',
        'і' | 'ι' => 'i',
        'І' | 'Ι' => 'I',
        'ј' => 'j',
        'К' | 'Κ' => 'K',
        'κ' => 'k',
        'М' | 'Μ' => 'M',
        'Ν' => 'N',
        'ν' => 'v',
        'о' | 'ο' => 'o',
        'О' | 'Ο' => 'O',
        'р' | 'ρ' => 'p',
        'Р' | 'Ρ' => 'P',
        'ѕ' => 's',
        'Ѕ' => 'S',
        'Т' | 'Τ' => 'T',
        'τ' => 't',
        'у' => 'y',
        'υ' => 'u',
        'Х' | 'Χ' => 'X',
        'х' => 'x',
        'Υ' => 'Y',
        'Ζ' => 'Z',
        'ԁ' => 'd',
        'ɡ' => 'g',
        c => c,
    }
}
