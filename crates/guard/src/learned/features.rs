//! What the learned models see: a text cut into units (lines and
//! sentences), each unit normalised and turned into hashed features.
//!
//! Normalisation: invisible characters dropped, whitespace and controls
//! collapsed to one space, full-width forms and the common Cyrillic/Greek
//! look-alikes folded to ASCII, typographic quotes made plain, then
//! lowercased. Features of one unit: byte 3-, 4- and 5-grams of the
//! normalised unit padded with a space on each side, word unigrams and
//! word bigrams (a word is a run of ASCII letters and digits or of
//! non-ASCII bytes). Each feature is an FNV-1a hash (word features with a
//! different seed than byte n-grams) cut to the model's `bits`; collisions
//! are accepted (feature hashing).

use std::ops::Range;

/// A unit longer than this is cut at a space (or, failing that, anywhere
/// on a character boundary): one window stays about a few sentences long.
pub(crate) const MAX_UNIT: usize = 320;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const WORD_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const BIGRAM_SEED: u64 = 0xc2b2_ae3d_27d4_eb4f;

#[inline]
fn step(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
}

/// Final mix (a murmur3 finaliser) so that the top bits are well spread.
#[inline]
fn bucket(h: u64, bits: u32) -> u32 {
    let mut x = h;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    // `bits` ≤ 24 (checked when a model is built), so this fits in u32.
    (x >> (64 - bits)) as u32
}

/// The units of `text`: byte ranges cut at line ends and after `.`, `!`,
/// `?` or `;` followed by whitespace, each at most [`MAX_UNIT`] bytes;
/// ranges holding only whitespace are left out.
pub(crate) fn units(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let push = |s: usize, e: usize, out: &mut Vec<Range<usize>>| {
        if b[s..e].iter().any(|c| !c.is_ascii_whitespace()) {
            out.push(s..e);
        }
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let end = if c == b'\n' {
            Some(i + 1)
        } else if matches!(c, b'.' | b'!' | b'?' | b';')
            && b.get(i + 1).is_some_and(u8::is_ascii_whitespace)
        {
            Some(i + 2)
        } else {
            None
        };
        if let Some(e) = end {
            push(start, e.min(b.len()), &mut out);
            start = e.min(b.len());
            i = start;
            continue;
        }
        if i - start >= MAX_UNIT {
            // Cut at the last space of the unit, else at a char boundary.
            let cut = b[start..i]
                .iter()
                .rposition(|c| *c == b' ')
                .map(|p| start + p + 1)
                .filter(|p| *p > start + MAX_UNIT / 2)
                .unwrap_or_else(|| {
                    let mut p = i;
                    while !text.is_char_boundary(p) {
                        p -= 1;
                    }
                    p
                });
            push(start, cut, &mut out);
            start = cut;
        }
        i += 1;
    }
    if start < b.len() {
        push(start, b.len(), &mut out);
    }
    out
}

/// Appends the normalised form of `s` to `out` (see the module docs).
pub(crate) fn normalize_into(s: &str, out: &mut String) {
    let mut space = out.ends_with(' ');
    for c in s.chars() {
        if c.is_ascii() {
            let b = c as u8;
            if b.is_ascii_whitespace() || b < 0x20 || b == 0x7f {
                if !space {
                    out.push(' ');
                    space = true;
                }
                continue;
            }
            space = false;
            out.push(char::from(b.to_ascii_lowercase()));
            continue;
        }
        let u = c as u32;
        if invisible(u) {
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            if !space {
                out.push(' ');
                space = true;
            }
            continue;
        }
        space = false;
        let folded = match u {
            0xFF01..=0xFF5E => char::from_u32(u - 0xFEE0).unwrap_or(c),
            0x2018 | 0x2019 | 0x201B | 0x2032 | 0x02BC => '\'',
            0x201C | 0x201D | 0x201F | 0x2033 => '"',
            _ => lookalike(c),
        };
        for l in folded.to_lowercase() {
            out.push(l);
        }
    }
}

fn invisible(u: u32) -> bool {
    matches!(u,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF9..=0xFFFB | 0xE0000..=0xE0FFF)
}

/// Cyrillic and Greek letters drawn like Latin ones (lowercase targets:
/// the text is lowercased next).
fn lookalike(c: char) -> char {
    match c {
        'а' | 'α' | 'А' | 'Α' => 'a',
        'В' | 'Β' => 'b',
        'с' | 'С' => 'c',
        'е' | 'ε' | 'Е' | 'Ε' => 'e',
        'Н' | 'Η' => 'h',
        'і' | 'ι' | 'І' | 'Ι' => 'i',
        'ј' => 'j',
        'К' | 'Κ' | 'κ' => 'k',
        'М' | 'Μ' => 'm',
        'Ν' => 'n',
        'ν' => 'v',
        'о' | 'ο' | 'О' | 'Ο' => 'o',
        'р' | 'ρ' | 'Р' | 'Ρ' => 'p',
        'ѕ' | 'Ѕ' => 's',
        'Т' | 'Τ' | 'τ' => 't',
        'у' | 'Υ' => 'y',
        'υ' => 'u',
        'Х' | 'Χ' | 'х' => 'x',
        'Ζ' => 'z',
        'ԁ' => 'd',
        'ɡ' => 'g',
        c => c,
    }
}

fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// Calls `f` with the bucket of every feature of one normalised unit;
/// returns how many there were.
#[inline]
pub(crate) fn for_each(norm: &str, bits: u32, mut f: impl FnMut(u32)) -> u32 {
    let b = norm.as_bytes();
    let mut n = 0u32;
    // Byte n-grams over " " + unit + " ".
    let len = b.len() + 2;
    let at = |i: usize| -> u8 {
        if i == 0 || i == len - 1 {
            b' '
        } else {
            b[i - 1]
        }
    };
    if len >= 3 {
        for i in 0..=len - 3 {
            let mut h = step(step(step(FNV_OFFSET, at(i)), at(i + 1)), at(i + 2));
            f(bucket(h, bits));
            n += 1;
            if i + 3 < len {
                h = step(h, at(i + 3));
                f(bucket(h, bits));
                n += 1;
                if i + 4 < len {
                    h = step(h, at(i + 4));
                    f(bucket(h, bits));
                    n += 1;
                }
            }
        }
    }
    // Words and bigrams.
    let mut prev: Option<u64> = None;
    let mut i = 0;
    while i < b.len() {
        if !word_byte(b[i]) {
            i += 1;
            continue;
        }
        let mut h = WORD_SEED;
        while i < b.len() && word_byte(b[i]) {
            h = step(h, b[i]);
            i += 1;
        }
        f(bucket(h, bits));
        n += 1;
        if let Some(p) = prev {
            f(bucket((p ^ BIGRAM_SEED).wrapping_mul(FNV_PRIME) ^ h, bits));
            n += 1;
        }
        prev = Some(h);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_cut_at_lines_and_sentences() {
        let t = "Hello there. How are you?\nFine; thanks\n\n  \nend";
        let u: Vec<&str> = units(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(
            u,
            vec![
                "Hello there. ",
                "How are you?\n",
                "Fine; ",
                "thanks\n",
                "end"
            ]
        );
        let long = "word ".repeat(200);
        assert!(units(&long).iter().all(|r| r.len() <= MAX_UNIT + 1));
        assert_eq!(units(&long).iter().map(|r| r.len()).sum::<usize>(), 1000);
    }

    #[test]
    fn normalisation_folds_case_lookalikes_and_invisibles() {
        let mut s = String::new();
        normalize_into("ІGNORE\u{200b} ＰＲＥＶＩＯＵＳ\t\n “rules”", &mut s);
        assert_eq!(s, "ignore previous \"rules\"");
    }

    #[test]
    fn features_are_stable_and_counted() {
        let mut a = Vec::new();
        let n = for_each("call the tool", 18, |h| a.push(h));
        // 15 padded bytes: 13 + 12 + 11 byte n-grams; 3 words, 2 bigrams.
        assert_eq!(n, 13 + 12 + 11 + 3 + 2);
        assert_eq!(a.len(), n as usize);
        assert!(a.iter().all(|h| *h < 1 << 18));
        let mut b = Vec::new();
        for_each("call the tool", 18, |h| b.push(h));
        assert_eq!(a, b);
    }
}
