//! Secondary sinks (SQLite, PostgreSQL, stdout, extra sinks) each run on
//! a thread of their own and follow the journal, never the writer's pace:
//! a sink that hangs (a partitioned PostgreSQL) or crawls holds no
//! acknowledgement and no other sink. It falls behind, its lag shows in
//! the metrics, and it catches up, in order, from the journal once it
//! answers again. While it keeps up, the writer hands it each batch in
//! memory once the batch is in the journal ([`crate::handoff`]), so it
//! does not read back what was just written.
//!
//! What a follower takes: a sink the writer reads at start (SQLite, an
//! extra sink that keeps records) takes every record complete in the
//! journal — should a power cut take the journal's unsynced tail, the
//! writer continues the chain from that sink. A sink asked on its own
//! thread (PostgreSQL, stdout) takes only what is fsync'd, so it is never
//! ahead of a journal that lost its tail.
//!
//! Each follower also applies its sink's retention: it asks the writer to
//! chain a `retention` record naming the cut, waits until that record is
//! durable in the journal and in its own sink, and only then deletes — so
//! a copy that starts later than it used to always says why.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::error::AuditError;
use crate::event::Timestamp;
use crate::handoff::Handoff;
use crate::journal::JournalReader;
use crate::log::{Pending, Shared};
use crate::metrics::{Counters, SinkState};
use crate::retention::marker;
use crate::settings::RetentionSettings;
use crate::sink::{AuditSink, Entry, RetentionCut};

/// A follower syncs its sink at least this often while it writes.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// A failed sink is retried after this, doubling up to [`RETRY_MAX`]. On
/// its own thread a retry costs nobody else anything, so it is frequent.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How long a stopping follower may still spend catching up; the journal
/// keeps the rest for the next start.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a follower waits for its retention record to be journalled.
const MARKER_WAIT: Duration = Duration::from_secs(10);
/// Records per sink write when a follower is behind: larger transactions
/// cost SQLite far fewer pages per record (measured: 4 096-record
/// transactions sustain about twice the rate of 512-record ones).
pub(crate) const FOLLOWER_BATCH: usize = 4096;

struct StoppedOnExit {
    state: Arc<SinkState>,
    shared: Arc<Shared>,
}

impl Drop for StoppedOnExit {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::Release);
        self.shared.progress.notify_waiters();
    }
}

/// Where a follower starts.
pub(crate) enum StartAt {
    /// After this seq (the writer asked the sink at start).
    After(u64),
    /// Ask the sink on the follower's thread (a remote sink: asking may
    /// take a timeout, which must not delay the start).
    AskSink,
}

pub(crate) struct Follower {
    pub sink: Box<dyn AuditSink>,
    /// What the writer hands over in memory; the journal otherwise.
    pub handoff: Arc<Handoff>,
    /// Take only fsync'd records (see the module documentation).
    pub durable_only: bool,
    pub state: Arc<SinkState>,
    pub shared: Arc<Shared>,
    pub reader: JournalReader,
    pub batch_max: usize,
    pub start: StartAt,
    pub retention: RetentionSettings,
    pub retention_interval: Duration,
}

struct Run {
    position: Option<u64>,
    dirty: bool,
    last_sync: Instant,
    retry_at: Option<Instant>,
    retry_delay: Duration,
    next_retention: Instant,
    stop_deadline: Option<Instant>,
    /// A cut announced in the journal, applied once the sink holds the
    /// announcement (at most this seq).
    pending_prune: Option<(RetentionCut, u64)>,
}

impl Follower {
    pub fn spawn(self) -> Result<std::thread::JoinHandle<()>, AuditError> {
        let name = format!("warden-audit-{}", self.state.name);
        std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || self.run())
            .map_err(|e| AuditError::io(name, e))
    }

    fn run(mut self) {
        let now = Instant::now();
        let mut run = Run {
            position: match self.start {
                StartAt::After(p) => Some(p),
                StartAt::AskSink => None,
            },
            dirty: false,
            last_sync: now,
            retry_at: None,
            retry_delay: RETRY_FIRST,
            next_retention: now + self.retention_interval.min(Duration::from_secs(5)),
            stop_deadline: None,
            pending_prune: None,
        };
        if let Some(p) = run.position {
            self.publish_position(p);
            self.state.synced.store(p, Ordering::Relaxed);
        }
        // Marks the sink stopped however the thread ends (a flush waiting
        // for it must not wait for ever).
        let _stopped = StoppedOnExit {
            state: self.state.clone(),
            shared: self.shared.clone(),
        };
        loop {
            let generation = self.shared.journal.generation();
            let stopping = self.state.stop.load(Ordering::Acquire);
            if stopping && run.stop_deadline.is_none() {
                run.stop_deadline = Some(Instant::now() + STOP_GRACE);
            }
            let out_of_time = run.stop_deadline.is_some_and(|d| Instant::now() >= d);
            if run.position.is_none() || self.state.failed.load(Ordering::Relaxed) {
                if stopping {
                    break;
                }
                if let Some(t) = run.retry_at.filter(|t| Instant::now() < *t) {
                    // Any journal progress or a stop request wakes it; it
                    // re-checks.
                    self.shared.journal.wait_past(u64::MAX, true, generation, t);
                    continue;
                }
                self.connect(&mut run);
                continue;
            }
            let Some(position) = run.position else {
                continue;
            };
            let durable = self.shared.journal.head(self.durable_only);
            if position < durable && !out_of_time {
                if let Err(e) = self.step(&mut run, position, durable) {
                    self.fail(&mut run, &e);
                }
                continue;
            }
            if position >= durable {
                self.state
                    .caught_up_at
                    .store(self.shared.now_us(), Ordering::Relaxed);
            }
            let flush_wanted = self.state.flush_target.load(Ordering::Acquire)
                > self.state.synced.load(Ordering::Relaxed);
            if run.dirty && (flush_wanted || stopping || run.last_sync.elapsed() >= SYNC_INTERVAL) {
                if let Err(e) = self.sync(&mut run) {
                    self.fail(&mut run, &e);
                    continue;
                }
            }
            if stopping {
                break;
            }
            let announced = run
                .pending_prune
                .as_ref()
                .is_some_and(|(_, m)| self.state.synced.load(Ordering::Acquire) >= *m);
            if announced {
                if let Some((cut, _)) = run.pending_prune.take() {
                    match self.sink.prune(&cut) {
                        Ok(n) => Counters::add(&self.state.pruned, n),
                        Err(e) => self.fail(&mut run, &e),
                    }
                }
                continue;
            }
            if run.pending_prune.is_none() && Instant::now() >= run.next_retention {
                run.next_retention = Instant::now() + self.retention_interval;
                match self.announce_retention() {
                    Ok(p) => run.pending_prune = p,
                    Err(e) => {
                        Counters::add(&self.state.errors, 1);
                        warn!(target: "audit", sink = self.state.name, error = %e, "audit retention failed; it runs again later");
                    }
                }
                continue;
            }
            let mut wake = run.next_retention;
            if run.dirty {
                wake = wake.min(run.last_sync + SYNC_INTERVAL);
            }
            self.shared
                .journal
                .wait_past(durable, self.durable_only, generation, wake);
        }
        if run.dirty && !self.state.failed.load(Ordering::Relaxed) {
            if let Err(e) = self.sync(&mut run) {
                self.fail(&mut run, &e);
            }
        }
    }

    /// Reconnects (or connects a first time) and learns where the sink is.
    fn connect(&mut self, run: &mut Run) {
        let attempt = (|| -> Result<u64, AuditError> {
            if run.retry_at.is_some() {
                self.sink.reset()?;
            }
            let last = self.sink.last()?.map_or(0, |(s, _)| s);
            Ok(match (self.state.keeps, run.position) {
                (true, _) => last,
                // A sink that keeps nothing resumes where it was (or, the
                // first time, with what comes next).
                (false, Some(p)) => p,
                (false, None) => self.shared.journal.head(self.durable_only),
            })
        })();
        match attempt {
            Ok(position) => {
                let head = self.shared.journal.head(self.durable_only);
                if self.state.keeps && position > head {
                    // Only a copy written by something else can be ahead of
                    // the journal that feeds it: refuse to fork the chain.
                    let e = AuditError::Sink {
                        sink: self.state.name,
                        reason: format!(
                            "the sink holds seq {position} but the journal ends at seq {head}: another writer uses this chain"
                        ),
                    };
                    self.fail(run, &e);
                    return;
                }
                let was_failed = self.state.failed.swap(false, Ordering::Relaxed);
                run.position = Some(position);
                run.retry_delay = RETRY_FIRST;
                run.retry_at = None;
                self.state.synced.store(position, Ordering::Relaxed);
                self.publish_position(position);
                if was_failed {
                    warn!(target: "audit", sink = self.state.name, from = position + 1,
                          "audit sink answers again; catching up from the journal");
                }
                self.shared.progress.notify_waiters();
            }
            Err(e) => self.fail(run, &e),
        }
    }

    /// Writes the next batch: handed over in memory when the writer could,
    /// read from the journal otherwise.
    fn step(&mut self, run: &mut Run, position: u64, durable: u64) -> Result<(), AuditError> {
        if let Some((batch, range)) = self.handoff.take(position, durable, self.batch_max) {
            let entries = &batch[range];
            self.sink.write(entries)?;
            if let Some(last) = entries.last() {
                run.position = Some(last.record.seq);
                run.dirty = true;
                self.publish_position(last.record.seq);
            }
            return Ok(());
        }
        let records = match self.reader.read(position, durable, self.batch_max) {
            Ok(r) => r,
            Err(e) => {
                // The journal, not the sink: count it, try again shortly.
                Counters::add(&self.shared.counters.journal_errors, 1);
                warn!(target: "audit", sink = self.state.name, error = %e, "could not read the audit journal");
                let generation = self.shared.journal.generation();
                self.shared.journal.wait_past(
                    durable,
                    self.durable_only,
                    generation,
                    Instant::now() + RETRY_FIRST,
                );
                return Ok(());
            }
        };
        let Some(first) = records.first() else {
            // Released from the journal (only a sink that keeps nothing
            // can be behind what the journal holds): skip ahead.
            warn!(target: "audit", sink = self.state.name, from = position + 1, to = durable,
                  "audit sink lacks records the journal no longer holds");
            run.position = Some(durable);
            self.publish_position(durable);
            return Ok(());
        };
        if first.seq != position + 1 {
            warn!(target: "audit", sink = self.state.name, from = position + 1, to = first.seq - 1,
                  "audit sink lacks records the journal no longer holds");
        }
        let entries: Vec<Entry> = records.into_iter().map(Entry::from_record).collect();
        self.sink.write(&entries)?;
        if let Some(last) = entries.last() {
            run.position = Some(last.record.seq);
            run.dirty = true;
            self.publish_position(last.record.seq);
        }
        Ok(())
    }

    fn sync(&mut self, run: &mut Run) -> Result<(), AuditError> {
        self.sink.sync()?;
        run.dirty = false;
        run.last_sync = Instant::now();
        if let Some(p) = run.position {
            self.state.synced.store(p, Ordering::Release);
        }
        self.shared.progress.notify_waiters();
        Ok(())
    }

    fn fail(&mut self, run: &mut Run, e: &AuditError) {
        let first = !self.state.failed.swap(true, Ordering::Relaxed);
        Counters::add(&self.state.errors, 1);
        run.retry_at = Some(Instant::now() + run.retry_delay);
        if first {
            warn!(target: "audit", sink = self.state.name, error = %e,
                  "audit sink failed; the journal keeps its records until it catches up");
        } else {
            warn!(target: "audit", sink = self.state.name, error = %e, retry_in = ?run.retry_delay,
                  "audit sink still failing");
        }
        run.retry_delay = (run.retry_delay * 2).min(RETRY_MAX);
        // Where the sink stands is asked again on reconnection.
        run.dirty = false;
        self.shared.progress.notify_waiters();
    }

    fn publish_position(&self, p: u64) {
        self.state.position.store(p, Ordering::Relaxed);
        self.state.known.store(true, Ordering::Relaxed);
    }

    /// Where retention cuts the sink now, announced by a `retention`
    /// record durable in the journal; with the seq the sink must reach
    /// (then holding the announcement) before the cut is made.
    fn announce_retention(&mut self) -> Result<Option<(RetentionCut, u64)>, AuditError> {
        if self.retention.is_unlimited() || !self.state.keeps {
            return Ok(None);
        }
        let Some(cut) = self
            .sink
            .retention_cut(&self.retention, Timestamp::now().unix_nanos())?
        else {
            return Ok(None);
        };
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let pending = Pending {
            event: marker(self.state.name, &cut),
            ack: Some(tx),
        };
        if self.shared.push(pending).is_some() {
            // The queue is full or closed: next time.
            return Ok(None);
        }
        let deadline = Instant::now() + MARKER_WAIT;
        let acked = loop {
            match rx.try_recv() {
                Ok(result) => break result.is_ok(),
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => break false,
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                    if Instant::now() >= deadline || self.state.stop.load(Ordering::Acquire) {
                        break false;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        };
        // Durable now, so at or before the journal's durable head.
        Ok(acked.then(|| (cut, self.shared.journal.durable())))
    }
}
