//! The chained record: one line of the trail.
//!
//! ```text
//! {"seq":7,"prev":"<64 hex>","hash":"<64 hex>","event":{…}}
//! ```
//!
//! `hash = SHA-256("warden-audit/1" 0x00 seq 0x00 prev 0x00 event-bytes)`,
//! where `seq` is the decimal text, `prev` the 64 hex digits of the
//! previous record's hash (64 zeros before the first record) and
//! `event-bytes` the exact bytes of the `event` member. The envelope is
//! fixed byte for byte, so *any* change to a line — a digit, a space, an
//! escape spelled differently — breaks either the envelope parse or the
//! hash. Every sink stores the same line, so any copy verifies.
//!
//! Event text is written by [`SafeFormatter`]: besides the JSON escapes of
//! C0 controls, it escapes DEL, C1 controls, the Unicode line and paragraph
//! separators, bidi controls, zero-width characters and tag characters, so
//! a record is one line in every viewer and cannot rewrite a terminal.

use std::io;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::event::Event;

/// The `prev` of the first record.
pub const GENESIS: [u8; 32] = [0; 32];

const DOMAIN: &[u8] = b"warden-audit/1";

/// A record as the writer made it or a reader parsed it.
#[derive(Debug, Clone)]
pub struct Record {
    pub seq: u64,
    pub prev: [u8; 32],
    pub hash: [u8; 32],
    /// The exact line, without the newline.
    pub line: String,
}

impl Record {
    /// Chains `event` after (`seq - 1`, `prev`).
    pub fn chain(seq: u64, prev: [u8; 32], event: &Event) -> Record {
        let event_bytes = to_safe_json(event);
        Record::chain_bytes(seq, prev, &event_bytes)
    }

    pub(crate) fn chain_bytes(seq: u64, prev: [u8; 32], event_bytes: &str) -> Record {
        let prev_hex = hex::encode(prev);
        let hash = record_hash(seq, &prev_hex, event_bytes.as_bytes());
        let hash_hex = hex::encode(hash);
        let mut line = String::with_capacity(event_bytes.len() + 180);
        line.push_str("{\"seq\":");
        line.push_str(&seq.to_string());
        line.push_str(",\"prev\":\"");
        line.push_str(&prev_hex);
        line.push_str("\",\"hash\":\"");
        line.push_str(&hash_hex);
        line.push_str("\",\"event\":");
        line.push_str(event_bytes);
        line.push('}');
        Record {
            seq,
            prev,
            hash,
            line,
        }
    }

    /// The hash as written in the line (64 lowercase hex digits).
    pub fn hash_hex(&self) -> &str {
        match parse_line(&self.line) {
            Ok(p) => p.hash_hex,
            Err(_) => "",
        }
    }

    /// The exact bytes of the `event` member.
    pub fn event_text(&self) -> &str {
        // The envelope is ours; `parse` only accepts what `chain` writes.
        match parse_line(&self.line) {
            Ok(p) => p.event,
            Err(_) => "",
        }
    }

    /// The event, deserialized.
    pub fn event(&self) -> Result<Event, serde_json::Error> {
        serde_json::from_str(self.event_text())
    }

    /// Parses and checks one line: envelope byte-exact, hash correct.
    /// The link to the previous record is the caller's to check.
    pub fn parse(line: &str) -> Result<Record, LineError> {
        let p = parse_line(line)?;
        let expected = record_hash(p.seq, p.prev_hex, p.event.as_bytes());
        if hex::encode(expected) != p.hash_hex {
            return Err(LineError::HashMismatch { seq: p.seq });
        }
        let mut prev = [0u8; 32];
        let mut hash = [0u8; 32];
        hex::decode_to_slice(p.prev_hex, &mut prev).map_err(|_| LineError::Malformed("prev"))?;
        hex::decode_to_slice(p.hash_hex, &mut hash).map_err(|_| LineError::Malformed("hash"))?;
        Ok(Record {
            seq: p.seq,
            prev,
            hash,
            line: line.to_owned(),
        })
    }
}

impl Record {
    /// Parses one of our own lines (the journal's) without recomputing
    /// the hash: the envelope is checked, the content trusted.
    pub(crate) fn parse_trusted(line: &str) -> Result<Record, LineError> {
        let p = parse_line(line)?;
        let mut prev = [0u8; 32];
        let mut hash = [0u8; 32];
        hex::decode_to_slice(p.prev_hex, &mut prev).map_err(|_| LineError::Malformed("prev"))?;
        hex::decode_to_slice(p.hash_hex, &mut hash).map_err(|_| LineError::Malformed("hash"))?;
        Ok(Record {
            seq: p.seq,
            prev,
            hash,
            line: line.to_owned(),
        })
    }
}

/// Why a line is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not a record line ({0})")]
    Malformed(&'static str),
    #[error("record {seq}: hash does not match its content")]
    HashMismatch { seq: u64 },
}

pub(crate) struct ParsedLine<'a> {
    pub seq: u64,
    pub prev_hex: &'a str,
    pub hash_hex: &'a str,
    pub event: &'a str,
}

/// The strict envelope parse: exactly what [`Record::chain_bytes`] writes.
pub(crate) fn parse_line(line: &str) -> Result<ParsedLine<'_>, LineError> {
    let rest = line
        .strip_prefix("{\"seq\":")
        .ok_or(LineError::Malformed("envelope"))?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (seq_text, rest) = rest.split_at(digits);
    if seq_text.is_empty()
        || seq_text.len() > 20
        || (seq_text.len() > 1 && seq_text.starts_with('0'))
    {
        return Err(LineError::Malformed("seq"));
    }
    let seq: u64 = seq_text.parse().map_err(|_| LineError::Malformed("seq"))?;
    let rest = rest
        .strip_prefix(",\"prev\":\"")
        .ok_or(LineError::Malformed("envelope"))?;
    let (prev_hex, rest) = take_hex64(rest).ok_or(LineError::Malformed("prev"))?;
    let rest = rest
        .strip_prefix("\",\"hash\":\"")
        .ok_or(LineError::Malformed("envelope"))?;
    let (hash_hex, rest) = take_hex64(rest).ok_or(LineError::Malformed("hash"))?;
    let rest = rest
        .strip_prefix("\",\"event\":")
        .ok_or(LineError::Malformed("envelope"))?;
    let event = rest
        .strip_suffix('}')
        .ok_or(LineError::Malformed("envelope"))?;
    if !event.starts_with('{') || !event.ends_with('}') {
        return Err(LineError::Malformed("event"));
    }
    Ok(ParsedLine {
        seq,
        prev_hex,
        hash_hex,
        event,
    })
}

fn take_hex64(s: &str) -> Option<(&str, &str)> {
    let hex = s.get(..64)?;
    hex.bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        .then(|| (hex, &s[64..]))
}

fn record_hash(seq: u64, prev_hex: &str, event: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update([0]);
    h.update(seq.to_string().as_bytes());
    h.update([0]);
    h.update(prev_hex.as_bytes());
    h.update([0]);
    h.update(event);
    h.finalize().into()
}

/// `value` as compact JSON written by [`SafeFormatter`].
pub fn to_safe_json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::with_capacity(512);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, SafeFormatter);
    // Our types serialize infallibly into memory: string keys, finite
    // numbers. Should that ever break, the record says so instead of
    // vanishing.
    if value.serialize(&mut ser).is_err() {
        return "{\"serialization_error\":true}".to_owned();
    }
    // serde_json only emits UTF-8; SafeFormatter only adds ASCII.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Compact JSON that also escapes characters able to break a line or
/// fool a reader: DEL, C1 controls, U+2028/2029, bidi controls, zero-width
/// characters, BOM, Unicode tags. JSON parsers read them back unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct SafeFormatter;

pub(crate) fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{7f}'..='\u{9f}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}'
        | '\u{feff}'
        | '\u{e0000}'..='\u{e007f}')
}

pub(crate) fn write_escaped_fragment<W: ?Sized + io::Write>(
    writer: &mut W,
    fragment: &str,
) -> io::Result<()> {
    // Almost every fragment is plain ASCII: nothing to look at.
    if fragment.bytes().all(|b| b < 0x7f) {
        return writer.write_all(fragment.as_bytes());
    }
    let mut start = 0;
    for (i, c) in fragment.char_indices() {
        if needs_escape(c) {
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{:04x}", unit)?;
            }
            start = i + c.len_utf8();
        }
    }
    writer.write_all(&fragment.as_bytes()[start..])
}

impl serde_json::ser::Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_escaped_fragment(writer, fragment)
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
