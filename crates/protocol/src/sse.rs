//! Server-Sent Events framing (the subset MCP uses): an encoder and an
//! incremental decoder that accepts chunks split anywhere.

/// One event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

/// Encodes an event. Multi-line data becomes several `data:` lines.
pub fn encode(id: Option<&str>, event: Option<&str>, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(ev) = event {
        out.push_str("event: ");
        out.push_str(&strip_newlines(ev));
        out.push('\n');
    }
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(&strip_newlines(id));
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
    out
}

fn strip_newlines(s: &str) -> String {
    s.replace(['\r', '\n'], "")
}

/// Incremental decoder. Feed bytes; take complete events.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    current: Event,
    has_data: bool,
    /// The most recent `id:` seen; SSE carries it to later events.
    pub last_event_id: Option<String>,
    max_event_bytes: usize,
}

/// The decoder refused input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("event larger than {0} bytes")]
    TooLarge(usize),
    #[error("event stream is not UTF-8")]
    NotUtf8,
}

impl Decoder {
    pub fn new(max_event_bytes: usize) -> Self {
        Decoder {
            max_event_bytes,
            ..Default::default()
        }
    }

    /// Feeds a chunk and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, DecodeError> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start..]
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
        {
            let end = start + pos;
            let mut next = end + 1;
            if self.buf[end] == b'\r' {
                // A lone \r at the end of the buffer may be the first half of \r\n.
                if next == self.buf.len() {
                    break;
                }
                if self.buf[next] == b'\n' {
                    next += 1;
                }
            }
            let line =
                std::str::from_utf8(&self.buf[start..end]).map_err(|_| DecodeError::NotUtf8)?;
            if let Some(ev) = self.line(line.to_owned())? {
                events.push(ev);
            }
            start = next;
        }
        self.buf.drain(..start);
        if self.buf.len() + self.current.data.len() > self.max_event_bytes {
            return Err(DecodeError::TooLarge(self.max_event_bytes));
        }
        Ok(events)
    }

    fn line(&mut self, line: String) -> Result<Option<Event>, DecodeError> {
        if line.is_empty() {
            if !self.has_data {
                self.current = Event::default();
                return Ok(None);
            }
            let mut ev = std::mem::take(&mut self.current);
            self.has_data = false;
            if ev.id.is_none() {
                ev.id.clone_from(&self.last_event_id);
            }
            return Ok(Some(ev));
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line.as_str(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
                if self.current.data.len() > self.max_event_bytes {
                    return Err(DecodeError::TooLarge(self.max_event_bytes));
                }
            }
            "event" => self.current.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => {
                self.current.id = Some(value.to_owned());
                self.last_event_id = Some(value.to_owned());
            }
            "retry" => self.current.retry = value.parse().ok(),
            _ => {}
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_splits_anywhere() {
        let a = encode(Some("s1-1"), Some("message"), "{\"a\":1}");
        let b = encode(None, None, "line1\nline2");
        let all = format!(": comment\n\n{a}{b}");
        for split in 0..all.len() {
            let mut d = Decoder::new(1 << 20);
            let mut evs = d.feed(&all.as_bytes()[..split]).unwrap();
            evs.extend(d.feed(&all.as_bytes()[split..]).unwrap());
            assert_eq!(evs.len(), 2, "split at {split}");
            assert_eq!(evs[0].data, "{\"a\":1}");
            assert_eq!(evs[0].id.as_deref(), Some("s1-1"));
            assert_eq!(evs[0].event.as_deref(), Some("message"));
            assert_eq!(evs[1].data, "line1\nline2");
            assert_eq!(evs[1].id.as_deref(), Some("s1-1"));
        }
    }

    #[test]
    fn handles_crlf_and_limits() {
        let mut d = Decoder::new(1 << 20);
        let evs = d.feed(b"data: x\r\n\r\ndata: y\r").unwrap();
        assert_eq!(evs.len(), 1);
        let evs = d.feed(b"\n\r\n").unwrap();
        assert_eq!(evs[0].data, "y");
        let mut d = Decoder::new(8);
        assert!(d.feed(b"data: 0123456789\n").is_err());
    }
}
