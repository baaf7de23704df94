//! Outbound message streams to a client: an SSE stream with a bounded replay
//! buffer (for `Last-Event-ID` resumption), or a direct channel (stdio,
//! legacy SSE).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

/// One outbound message and its sequence number in its stream.
#[derive(Debug, Clone)]
pub struct Item {
    pub seq: u64,
    pub text: Arc<str>,
}

/// Where messages for a client go.
#[derive(Clone, Debug)]
pub enum Sink {
    /// A resumable SSE stream.
    Stream(Arc<EventStream>),
    /// A channel read by one writer (stdio's stdout, a legacy SSE stream).
    Direct(mpsc::UnboundedSender<Arc<str>>),
    /// Every open `subscriptions/listen` stream of a 2026-07-28 context
    /// (none open: the message has no reader, as the spec intends).
    Broadcast(tokio::sync::broadcast::Sender<Arc<str>>),
}

impl Sink {
    /// Queues a message. Returns false when nobody can ever read it.
    pub fn send(&self, text: Arc<str>) -> bool {
        match self {
            Sink::Stream(s) => s.push(text),
            Sink::Direct(tx) => tx.send(text).is_ok(),
            Sink::Broadcast(tx) => tx.send(text).is_ok(),
        }
    }
}

/// A server-to-client SSE stream. Events are numbered; the last `capacity`
/// stay buffered so a client that lost the connection can resume.
#[derive(Debug)]
pub struct EventStream {
    pub id: String,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    next_seq: u64,
    buf: VecDeque<Item>,
    capacity: usize,
    live: Option<mpsc::Sender<Item>>,
    closed: bool,
}

/// Bound of the live channel; a reader slower than this is detached and
/// must resume from the buffer.
const LIVE_BOUND: usize = 1024;

impl EventStream {
    pub fn new(id: String, capacity: usize) -> Arc<Self> {
        Arc::new(EventStream {
            id,
            inner: Mutex::new(Inner {
                next_seq: 1,
                buf: VecDeque::new(),
                capacity: capacity.max(1),
                live: None,
                closed: false,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-push; the
        // buffer is still consistent (each push is one VecDeque operation).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a message; false when the stream is closed.
    pub fn push(&self, text: Arc<str>) -> bool {
        let mut g = self.lock();
        if g.closed {
            return false;
        }
        let item = Item {
            seq: g.next_seq,
            text,
        };
        g.next_seq += 1;
        if g.buf.len() == g.capacity {
            g.buf.pop_front();
        }
        g.buf.push_back(item.clone());
        if let Some(live) = &g.live {
            if live.try_send(item).is_err() {
                g.live = None;
            }
        }
        true
    }

    /// Ends the stream: readers finish after what is buffered.
    pub fn close(&self) {
        let mut g = self.lock();
        g.closed = true;
        g.live = None;
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Attaches a reader. Returns the buffered items after `after` (all
    /// buffered items for `None`) and a receiver for what comes next (`None`
    /// when the stream is closed). Replaces any previous reader. Returns
    /// `Err(())` when events after `after` were already evicted.
    #[allow(clippy::result_unit_err)]
    pub fn attach(
        &self,
        after: Option<u64>,
    ) -> Result<(Vec<Item>, Option<mpsc::Receiver<Item>>), ()> {
        let mut g = self.lock();
        let replay: Vec<Item> = match after {
            Some(seq) => {
                let oldest = g.buf.front().map_or(g.next_seq, |i| i.seq);
                if seq + 1 < oldest {
                    return Err(());
                }
                g.buf.iter().filter(|i| i.seq > seq).cloned().collect()
            }
            None => Vec::new(),
        };
        if g.closed {
            return Ok((replay, None));
        }
        let (tx, rx) = mpsc::channel(LIVE_BOUND);
        g.live = Some(tx);
        Ok((replay, Some(rx)))
    }

    /// The SSE event id of an item.
    pub fn event_id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.id)
    }
}

/// Splits a `Last-Event-ID` into stream id and sequence number.
pub fn parse_event_id(id: &str) -> Option<(&str, u64)> {
    let (stream, seq) = id.rsplit_once('-')?;
    Some((stream, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replays_after_last_event_id_and_streams_live() {
        let s = EventStream::new("abc".into(), 3);
        for i in 0..5 {
            s.push(format!("m{i}").into());
        }
        // Buffer holds seq 3,4,5; resuming after 2 works, after 1 does not.
        assert!(s.attach(Some(1)).is_err());
        let (replay, rx) = s.attach(Some(3)).unwrap();
        assert_eq!(replay.iter().map(|i| i.seq).collect::<Vec<_>>(), [4, 5]);
        let mut rx = rx.unwrap();
        s.push("live".into());
        assert_eq!(&*rx.recv().await.unwrap().text, "live");
        s.close();
        assert!(rx.recv().await.is_none());
        assert!(!s.push("after close".into()));
        assert_eq!(parse_event_id("abc-12"), Some(("abc", 12)));
        assert_eq!(parse_event_id(&s.event_id(7)), Some(("abc", 7)));
    }
}
