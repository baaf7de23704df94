//! A newline-delimited reader that never holds more than a bound in memory.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// One line read by [`LineReader`], without its `\n` (or `\r\n`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    Complete(Vec<u8>),
    /// The line was longer than the bound; only its first `max` bytes are kept.
    TooLong(Vec<u8>),
}

pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    max: usize,
    /// Return a too-long line as soon as the bound is passed, instead of
    /// discarding the rest of it up to its newline.
    stop_at_limit: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R, max: usize, stop_at_limit: bool) -> Self {
        LineReader {
            inner: BufReader::with_capacity(64 * 1024, inner),
            max,
            stop_at_limit,
        }
    }

    /// The next line; `None` at end of input. A final line without a
    /// newline is returned as a line.
    pub(crate) async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut line = Vec::new();
        let mut too_long = false;
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                if line.is_empty() && !too_long {
                    return Ok(None);
                }
                return Ok(Some(finish(line, too_long)));
            }
            let (chunk, used, done) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if !too_long {
                let room = self.max - line.len();
                if chunk.len() > room {
                    line.extend_from_slice(&chunk[..room]);
                    too_long = true;
                } else {
                    line.extend_from_slice(chunk);
                }
            }
            self.inner.consume(used);
            if done || (too_long && self.stop_at_limit) {
                return Ok(Some(finish(line, too_long)));
            }
        }
    }
}

fn finish(mut line: Vec<u8>, too_long: bool) -> Line {
    if too_long {
        return Line::TooLong(line);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Line::Complete(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], max: usize, stop: bool) -> Vec<Line> {
        let mut r = LineReader::new(input, max, stop);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().await.unwrap() {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn splits_and_bounds_lines() {
        let got = all(b"ab\r\n\n0123456789\nxyz", 4, false).await;
        assert_eq!(
            got,
            vec![
                Line::Complete(b"ab".to_vec()),
                Line::Complete(Vec::new()),
                Line::TooLong(b"0123".to_vec()),
                Line::Complete(b"xyz".to_vec()),
            ]
        );
        // Exactly at the bound is fine.
        assert_eq!(
            all(b"abcd\n", 4, true).await,
            vec![Line::Complete(b"abcd".to_vec())]
        );
    }

    #[tokio::test]
    async fn stops_at_the_limit_when_asked() {
        let mut r = LineReader::new(&b"0123456789\nok\n"[..], 4, true);
        assert_eq!(
            r.next_line().await.unwrap(),
            Some(Line::TooLong(b"0123".to_vec()))
        );
    }
}
