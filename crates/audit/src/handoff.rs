//! Chained records handed from the writer to a sink's thread in memory.
//!
//! The journal stays what a follower is fed from: the writer offers each
//! batch to a follower only once the batch is complete in the journal, and
//! a follower takes from memory exactly the records it would have read
//! there (same seqs, same bytes, the same head limit). What it saves is
//! reading back and re-parsing what the writer has just written. Bounded:
//! while a follower lags (a slow or failed sink), the writer stops handing
//! it batches — it never waits — and the follower reads the journal, as
//! it always could, until it meets the records in memory again.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use crate::sink::Entry;

/// Records a follower may have waiting in memory: one of its largest
/// transactions ([`crate::follower::FOLLOWER_BATCH`]), a few MiB at most
/// (what a hung sink holds until it answers again).
pub(crate) const HANDOFF_RECORDS: usize = 4096;

/// Consecutive records (seq `first..=last`, no gap), complete in the
/// journal.
pub(crate) type Batch = Arc<[Entry]>;

pub(crate) struct Handoff {
    capacity: usize,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    batches: VecDeque<Batch>,
    records: usize,
}

impl Queue {
    fn pop(&mut self) {
        if let Some(b) = self.batches.pop_front() {
            self.records -= b.len();
        }
    }
}

fn span(batch: &[Entry]) -> Option<(u64, u64)> {
    Some((batch.first()?.record.seq, batch.last()?.record.seq))
}

impl Handoff {
    pub fn new(capacity: usize) -> Handoff {
        Handoff {
            capacity,
            queue: Mutex::default(),
        }
    }

    /// Offers a batch the journal holds; dropped when the follower already
    /// has `capacity` records waiting (it then reads the journal) or when
    /// its seqs are not consecutive.
    pub fn offer(&self, batch: &Batch) {
        let Some((first, last)) = span(batch) else {
            return;
        };
        if last.checked_sub(first).and_then(|d| d.checked_add(1)) != Some(batch.len() as u64) {
            return;
        }
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if q.records + batch.len() > self.capacity {
            return;
        }
        q.records += batch.len();
        q.batches.push_back(batch.clone());
    }

    /// The records after `position` through `upto` (at most `max`), when
    /// memory holds the next one: a batch and the range of it to write.
    /// `None` when it does not (the follower reads the journal). Batches
    /// the follower has passed are dropped.
    pub fn take(&self, position: u64, upto: u64, max: usize) -> Option<(Batch, Range<usize>)> {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let (first, last) = span(q.batches.front()?)?;
            if last <= position {
                q.pop();
                continue;
            }
            let next = position.checked_add(1)?;
            if first > next || upto < next {
                return None;
            }
            let start = usize::try_from(next - first).ok()?;
            let count = usize::try_from(upto.min(last) - position).ok()?.min(max);
            let batch = q.batches.front()?.clone();
            if start + count == batch.len() {
                q.pop();
            }
            return Some((batch, start..start + count));
        }
    }
}

#[cfg(test)]
#[path = "handoff_tests.rs"]
mod tests;
