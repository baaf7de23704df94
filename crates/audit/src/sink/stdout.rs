//! Every record as a line on standard output, for a log collector. Not for
//! `warden stdio`, where standard output is the MCP stream.

use std::io::Write;

use super::{AuditSink, Entry};
use crate::error::AuditError;

#[derive(Debug, Default)]
pub struct StdoutSink {
    buf: Vec<u8>,
}

impl AuditSink for StdoutSink {
    fn name(&self) -> &'static str {
        "stdout"
    }

    fn last(&mut self) -> Result<Option<(u64, [u8; 32])>, AuditError> {
        Ok(None)
    }

    fn write(&mut self, entries: &[Entry]) -> Result<(), AuditError> {
        self.buf.clear();
        for e in entries {
            self.buf.extend_from_slice(e.record.line.as_bytes());
            self.buf.push(b'\n');
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&self.buf)
            .and_then(|()| out.flush())
            .map_err(|e| AuditError::Sink {
                sink: "stdout",
                reason: e.to_string(),
            })
    }

    fn sync(&mut self) -> Result<(), AuditError> {
        Ok(())
    }

    fn keeps_records(&self) -> bool {
        false
    }
}
