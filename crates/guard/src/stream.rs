//! Redaction of streamed text: a secret split across two chunks is still
//! caught, because text is released only once no match can still be
//! growing across its end.

use std::sync::Arc;

use crate::finding::{self, Finding, RuleId};
use crate::guard::Inner;
use crate::rules::Family;
use crate::scan::Families;
use crate::settings::{Action, ToolGuards};

/// Always held back: room for a keyword and its value.
const MIN_HOLD: usize = 256;
/// Never held back more than this; past it text is released (and the
/// truncated-key rule still redacts the start of a key block).
const MAX_HOLD: usize = 16 << 10;

/// Streaming redactor for one stream of one tool.
pub struct StreamRedactor {
    inner: Arc<Inner>,
    t: ToolGuards,
    buffer: String,
    findings: Vec<Finding>,
    blocked: bool,
}

impl StreamRedactor {
    pub(crate) fn new(inner: Arc<Inner>, tool: &str, server: &str) -> StreamRedactor {
        let t = inner.settings.for_tool(tool, server);
        StreamRedactor {
            inner,
            t,
            buffer: String::new(),
            findings: Vec::new(),
            blocked: false,
        }
    }

    /// Feeds a chunk; returns the text that is safe to send now (possibly
    /// empty), redacted.
    pub fn push(&mut self, chunk: &str) -> String {
        self.buffer.push_str(chunk);
        let cut = self.safe_end();
        self.release(cut)
    }

    /// Ends the stream: returns the rest, redacted.
    pub fn finish(&mut self) -> String {
        let end = self.buffer.len();
        self.release(end)
    }

    /// Findings so far (classes and counts, location `/stream`).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// True once a class whose action is `block` went by: already-sent text
    /// cannot be recalled, so the caller should end the stream.
    pub fn blocked(&self) -> bool {
        self.blocked
    }

    /// Where released text may end: before the trailing run of
    /// non-whitespace (a token may still be growing), at least `MIN_HOLD`
    /// bytes before the end, before any unterminated private-key block.
    fn safe_end(&self) -> usize {
        let b = &self.buffer;
        let len = b.len();
        let run_start = b.rfind(|c: char| c.is_whitespace()).map_or(0, |i| i + 1);
        let mut cut = run_start.min(len.saturating_sub(MIN_HOLD));
        if let Some(begin) = b.rfind("-----BEGIN") {
            if !b[begin..].contains("-----END") {
                cut = cut.min(begin);
            }
        }
        cut = cut.max(len.saturating_sub(MAX_HOLD));
        while cut > 0 && !b.is_char_boundary(cut) {
            cut -= 1;
        }
        cut
    }

    fn release(&mut self, mut cut: usize) -> String {
        let detections = self
            .inner
            .scanner
            .scan(&self.buffer, Families::stream(&self.t));
        // A match that crosses the cut may still grow: keep it whole.
        for d in &detections {
            if d.span.start < cut && d.span.end > cut && cut < self.buffer.len() {
                cut = d.span.start;
            }
        }
        let mut out = String::with_capacity(cut);
        let mut at = 0;
        for d in detections.iter().filter(|d| d.span.end <= cut) {
            let actions = match d.family {
                Family::Secret => &self.t.secrets,
                _ => &self.t.pii,
            };
            let action = actions.action(d.class);
            if action == Action::Off {
                continue;
            }
            let rule = if d.family == Family::Secret {
                RuleId::OUTPUT_SECRET
            } else {
                RuleId::OUTPUT_PII
            };
            finding::add(&mut self.findings, d.class, rule, "/stream", action, 1);
            if action == Action::Block {
                self.blocked = true;
            }
            // A label cannot wrap text that has partly gone out: redact.
            if matches!(action, Action::Redact | Action::Block | Action::Label)
                && d.span.start >= at
            {
                out.push_str(&self.buffer[at..d.span.start]);
                out.push_str("[REDACTED:");
                out.push_str(d.class);
                out.push(']');
                at = d.span.end;
            }
        }
        out.push_str(&self.buffer[at..cut]);
        self.buffer.drain(..cut);
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::{Guard, GuardSettings};

    #[test]
    fn secret_split_across_chunks_is_redacted() {
        let g = Guard::new(&GuardSettings::default()).unwrap();
        let mut r = g.stream_redactor("srv__tool", "srv");
        let token = format!("ghp_{}", "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5");
        let (a, b) = token.split_at(10);
        let mut out = r.push(&format!("here is the token {a}"));
        out.push_str(&r.push(&format!("{b} and more text\n")));
        out.push_str(&r.finish());
        assert!(!out.contains(a) || !out.contains(b), "{out}");
        assert!(out.contains("[REDACTED:github_token]"), "{out}");
        assert!(out.starts_with("here is the token "));
        assert!(out.ends_with(" and more text\n"));
        assert_eq!(r.findings()[0].class, "github_token");
    }

    #[test]
    fn plain_text_flows_through_unchanged() {
        let g = Guard::new(&GuardSettings::default()).unwrap();
        let mut r = g.stream_redactor("srv__tool", "srv");
        let text = "lorem ipsum dolor sit amet ".repeat(100);
        let mut out = String::new();
        for chunk in text.as_bytes().chunks(37) {
            out.push_str(&r.push(std::str::from_utf8(chunk).unwrap()));
        }
        assert!(out.len() > text.len() - 300);
        out.push_str(&r.finish());
        assert_eq!(out, text);
    }
}
