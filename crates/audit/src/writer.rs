//! The writer thread: takes batches from the queue (and the spill
//! journal), chains them, appends them to the journal (fsync'd when a
//! caller waits for durability, and at most `async_commit` after any
//! append: group commit), answers the waiters, then writes the JSONL file.
//! Checkpoints, rotation, JSONL retention and the journal's release happen
//! here too.
//!
//! Every other sink (SQLite, PostgreSQL, stdout, extra sinks) has a thread
//! of its own that follows the journal ([`crate::follower`]): this thread
//! never waits on them, so no acknowledgement ever queues behind a slow or
//! hung sink.
//!
//! It is an OS thread, not a task: it fsyncs, which must not occupy an
//! async worker.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::anomaly::AnomalyDetector;
use crate::checkpoint::{side_file_for, CheckpointSigner, SideEntry};
use crate::error::AuditError;
use crate::event::{Event, EventKind, Lifecycle, Timestamp};
use crate::follower::{Follower, StartAt, FOLLOWER_BATCH};
use crate::handoff::{Batch, Handoff, HANDOFF_RECORDS};
use crate::journal::{wal_line, JournalReader, Spill, Wal};
use crate::log::{Ack, Control, Pending, Shared, COALESCE_MAX, COALESCE_WINDOW};
use crate::metrics::{Counters, SinkState};
use crate::record::{Record, GENESIS};
use crate::retention::marker;
use crate::settings::{AuditSettings, RetentionSettings};
use crate::sink::jsonl::{sync_dir, JsonlSink};
use crate::sink::postgres::PostgresSink;
use crate::sink::sqlite::SqliteSink;
use crate::sink::stdout::StdoutSink;
use crate::sink::{AuditSink, Entry};

/// The JSONL file is synced, checkpoint side entries written and the
/// journal released at least this often while records arrive.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// A failed JSONL file is retried after this, doubling up to [`RETRY_MAX`].
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// The writer wakes at least this often when idle.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// One state per sink, in the order the writer builds them.
pub(crate) fn sink_states(
    settings: &AuditSettings,
    extra: &[Box<dyn AuditSink>],
) -> Vec<Arc<SinkState>> {
    let mut out = Vec::new();
    if settings.jsonl.is_some() {
        out.push(("jsonl", true));
    }
    if settings.sqlite.is_some() {
        out.push(("sqlite", true));
    }
    if settings.postgres.is_some() {
        out.push(("postgres", true));
    }
    if settings.stdout {
        out.push(("stdout", false));
    }
    out.extend(extra.iter().map(|s| (s.name(), s.keeps_records())));
    out.into_iter()
        .map(|(name, keeps)| Arc::new(SinkState::new(name, keeps)))
        .collect()
}

/// The JSONL file: written on this thread right after the journal.
struct Primary {
    sink: JsonlSink,
    state: Arc<SinkState>,
    /// Last seq written (`None`: unknown).
    written: Option<u64>,
    /// Last seq known durable in the file.
    synced: u64,
    failed: bool,
    last_retry: Option<Instant>,
    retry_delay: Duration,
    retention: RetentionSettings,
}

struct FollowerHandle {
    state: Arc<SinkState>,
    /// Batches handed over in memory once they are in the journal.
    handoff: Arc<Handoff>,
    thread: Option<JoinHandle<()>>,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    wal: Wal,
    /// For bringing the JSONL file up to date.
    reader: JournalReader,
    primary: Option<Primary>,
    followers: Vec<FollowerHandle>,
    signer: CheckpointSigner,
    side_file: PathBuf,
    detector: AnomalyDetector,
    seq: u64,
    head: [u8; 32],
    /// Seq of the newest record appended to the journal.
    appended: u64,
    batch_max: usize,
    checkpoint_every: u64,
    checkpoint_interval: Duration,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    last_sync: Instant,
    dirty: bool,
    async_commit: Duration,
    retention_interval: Duration,
    next_retention: Instant,
    /// Checkpoints not yet in the side file.
    pending_side: Vec<SideEntry>,
    wal_buf: Vec<u8>,
    /// Chained but not in the journal yet (an append failed): appended
    /// first, before anything newer.
    unjournaled: Vec<Entry>,
    unjournaled_bytes: Vec<u8>,
    /// Held for the writer's life: one writer per journal.
    _lock: File,
}

impl Writer {
    pub fn open(
        settings: AuditSettings,
        shared: Arc<Shared>,
        extra: Vec<Box<dyn AuditSink>>,
    ) -> Result<Writer, AuditError> {
        std::fs::create_dir_all(&settings.journal_dir)
            .map_err(|e| AuditError::io(&settings.journal_dir, e))?;
        let lock_path = settings.journal_dir.join("writer.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| AuditError::io(&lock_path, e))?;
        if lock.try_lock().is_err() {
            return Err(AuditError::Settings(format!(
                "another process writes the audit journal {}",
                settings.journal_dir.display()
            )));
        }
        let signer = CheckpointSigner::load_or_generate(&settings.checkpoint.signing_key)?;
        let (wal, summary) = Wal::open(&settings.journal_dir)?;
        let journal_last = summary.last.as_ref().map_or(0, |r| r.seq);
        let side_file = match &settings.jsonl {
            Some(j) => side_file_for(&j.path),
            None => settings.journal_dir.join("audit.checkpoints"),
        };
        let state_of = |name: &str| {
            shared
                .counters
                .sink(name)
                .cloned()
                .ok_or_else(|| AuditError::Settings(format!("no metrics for the {name} sink")))
        };
        let now = Instant::now();
        let mut writer = Writer {
            reader: JournalReader::new(&settings.journal_dir),
            shared: shared.clone(),
            wal,
            primary: None,
            followers: Vec::new(),
            signer,
            side_file,
            detector: AnomalyDetector::new(&settings.anomaly),
            seq: journal_last,
            head: summary.last.as_ref().map_or(GENESIS, |r| r.hash),
            appended: journal_last,
            batch_max: settings.batch_max,
            checkpoint_every: settings.checkpoint.every_records,
            checkpoint_interval: settings.checkpoint.interval,
            since_checkpoint: 0,
            last_checkpoint: now,
            last_sync: now,
            dirty: false,
            async_commit: settings.durability.async_commit,
            retention_interval: settings.retention_interval,
            next_retention: now + settings.retention_interval.min(Duration::from_secs(5)),
            pending_side: Vec::new(),
            wal_buf: Vec::with_capacity(256 * 1024),
            unjournaled: Vec::new(),
            unjournaled_bytes: Vec::new(),
            _lock: lock,
        };
        // What the journal holds was fsync'd when it was opened.
        shared.journal.publish(journal_last);

        // The chain head: the newest record anyone local holds (a sink can
        // be ahead of a journal that lost an unsynced tail to a power cut).
        let adopt = |w: &mut Writer, last: Option<(u64, [u8; 32])>, name: &str| {
            if let Some((seq, hash)) = last {
                if seq > w.seq {
                    warn!(target: "audit", sink = name, seq, journal = journal_last,
                          "audit sink is ahead of the journal; the chain continues from it");
                    w.seq = seq;
                    w.head = hash;
                }
            }
        };
        if let Some(j) = &settings.jsonl {
            let mut sink = JsonlSink::open(&j.path, j.rotate_bytes, j.rotate_keep)?;
            let last = sink.last()?;
            adopt(&mut writer, last, "jsonl");
            let state = state_of("jsonl")?;
            let written = last.map_or(0, |(s, _)| s);
            state.position.store(written, Ordering::Relaxed);
            state.synced.store(written, Ordering::Relaxed);
            state.known.store(true, Ordering::Relaxed);
            writer.primary = Some(Primary {
                sink,
                state,
                written: Some(written),
                synced: written,
                failed: false,
                last_retry: None,
                retry_delay: RETRY_INTERVAL,
                retention: j.retention,
            });
        }
        let mut followers: Vec<(Box<dyn AuditSink>, StartAt, RetentionSettings)> = Vec::new();
        if let Some(s) = &settings.sqlite {
            let mut sink = SqliteSink::open(&s.path)?;
            let last = sink.last()?;
            adopt(&mut writer, last, "sqlite");
            let at = last.map_or(0, |(s, _)| s);
            followers.push((Box::new(sink), StartAt::After(at), s.retention));
        }
        if let Some(p) = &settings.postgres {
            // Asked on its own thread: a hung server must not delay the start.
            followers.push((
                Box::new(PostgresSink::new(p)?),
                StartAt::AskSink,
                p.retention,
            ));
        }
        if settings.stdout {
            followers.push((
                Box::<StdoutSink>::default(),
                StartAt::AskSink,
                RetentionSettings::default(),
            ));
        }
        for mut sink in extra {
            let start = if sink.keeps_records() {
                let last = sink.last()?;
                adopt(&mut writer, last, sink.name());
                StartAt::After(last.map_or(0, |(s, _)| s))
            } else {
                StartAt::AskSink
            };
            followers.push((sink, start, RetentionSettings::default()));
        }
        if writer.seq > journal_last {
            // The journal lost what a sink holds: continue in a new segment,
            // so the gap lies between segments.
            writer.wal.start_new_segment();
            writer.appended = writer.seq;
            shared.journal.publish(writer.seq);
        }
        let pending_catch_up: u64 = followers
            .iter()
            .map(|(_, start, _)| match start {
                StartAt::After(p) => journal_last.saturating_sub(*p),
                StartAt::AskSink => 0,
            })
            .sum();
        // The sinks' threads first: the journal is released only as far as
        // they hold it, and recovery below releases.
        for (sink, start, retention) in followers {
            let state = state_of(sink.name())?;
            if let StartAt::After(p) = start {
                state.position.store(p, Ordering::Relaxed);
                state.synced.store(p, Ordering::Relaxed);
                state.known.store(true, Ordering::Relaxed);
            }
            let handoff = Arc::new(Handoff::new(HANDOFF_RECORDS));
            let thread = Follower {
                sink,
                handoff: handoff.clone(),
                durable_only: matches!(start, StartAt::AskSink),
                state: state.clone(),
                shared: shared.clone(),
                reader: JournalReader::new(&settings.journal_dir),
                batch_max: settings.batch_max.max(FOLLOWER_BATCH),
                start,
                retention,
                retention_interval: settings.retention_interval,
            }
            .spawn()?;
            writer.followers.push(FollowerHandle {
                state,
                handoff,
                thread: Some(thread),
            });
        }
        writer.recover(&summary.spill_ids, journal_last, pending_catch_up)?;
        Ok(writer)
    }

    /// Brings the JSONL file up to the journal and chains spilled events.
    /// (The other sinks catch up on their own threads.)
    fn recover(
        &mut self,
        spill_ids: &HashSet<String>,
        journal_last: u64,
        pending_catch_up: u64,
    ) -> Result<(), AuditError> {
        let mut replayed = pending_catch_up;
        if let Some(p) = self.primary.as_mut() {
            let mut position = p.written.unwrap_or(0);
            while position < journal_last {
                let records = self.reader.read(position, journal_last, self.batch_max)?;
                let Some(first) = records.first() else { break };
                if first.seq != position + 1 {
                    warn!(target: "audit", sink = "jsonl", from = position + 1, to = first.seq - 1,
                          "audit sink lacks records the journal no longer holds");
                }
                let entries: Vec<Entry> = records.into_iter().map(Entry::bare).collect();
                p.sink.write(&entries)?;
                replayed += entries.len() as u64;
                position = entries.last().map_or(position, |e| e.record.seq);
            }
            p.written = Some(position.max(p.written.unwrap_or(0)));
            p.state.position.store(position, Ordering::Relaxed);
        }
        let mut seen = spill_ids.clone();
        let mut chained = 0u64;
        for path in Spill::existing(self.wal.dir())? {
            let events: Vec<(String, Event)> = Spill::read(&path)?
                .into_iter()
                .filter(|(id, _)| seen.insert(id.clone()))
                .collect();
            chained += events.len() as u64;
            let durable = events.is_empty() || self.process(Vec::new(), events);
            self.sync_point();
            if !durable {
                return Err(AuditError::Journal {
                    path,
                    line: 0,
                    reason: "its events could not be made durable in the journal".into(),
                });
            }
            Spill::remove(&path)?;
        }
        if replayed + chained > 0 {
            Counters::add(&self.shared.counters.recovered, replayed + chained);
            warn!(target: "audit", replayed, chained, "audit journal recovered after an unclean stop");
            let event = Event {
                lifecycle: Some(Box::new(Lifecycle {
                    recovered: Some(replayed + chained),
                    outcome: Some(format!("replayed {replayed}, spilled {chained}")),
                    ..Lifecycle::default()
                })),
                ..Event::new(EventKind::JournalRecovered)
            };
            self.process(vec![Pending { event, ack: None }], Vec::new());
        }
        self.sync_point();
        Ok(())
    }

    /// The main loop. Returns after a shutdown request or when every
    /// handle is gone and the queue is drained.
    pub fn run(mut self) -> Result<(), AuditError> {
        loop {
            let deadline = self.next_deadline();
            let (items, controls, abandoned) = self.take(deadline);
            self.process_taken(items);
            self.housekeeping();
            let mut stop = false;
            let mut shutdown_acks = Vec::new();
            for c in controls {
                self.drain_all();
                match c {
                    Control::Flush(ack) => {
                        self.sync_point();
                        let _ = ack.send(self.shared.journal.durable());
                    }
                    Control::Shutdown(ack) => {
                        self.finish();
                        shutdown_acks.push(ack);
                        stop = true;
                    }
                }
            }
            if abandoned && !stop {
                self.drain_all();
                self.finish();
                stop = true;
            }
            if stop {
                // Under the queue lock, so no control slips in unanswered.
                let late = {
                    let mut q = self.shared.lock();
                    q.closed = true;
                    self.shared.running.store(false, Ordering::Release);
                    std::mem::take(&mut q.controls)
                };
                let durable = self.shared.journal.durable();
                // Release the journal lock and close the sinks before
                // answering: a caller may start a new writer right away.
                drop(self);
                for c in late {
                    match c {
                        Control::Flush(ack) => {
                            let _ = ack.send(durable);
                        }
                        Control::Shutdown(ack) => {
                            let _ = ack.send(());
                        }
                    }
                }
                for ack in shutdown_acks {
                    let _ = ack.send(());
                }
                // Events that raced in after the last drain went to the
                // spill file (the queue is closed): recovered at next start.
                return Ok(());
            }
        }
    }

    /// Queued events and any spill file, processed.
    fn process_taken(&mut self, items: Vec<Pending>) -> bool {
        let spilled = self.take_spill();
        let (spill_path, spilled) = match spilled {
            Some((p, e)) => (Some(p), e),
            None => (None, Vec::new()),
        };
        let nothing = items.is_empty() && spilled.is_empty();
        let durable = nothing || self.process(items, spilled);
        if let Some(p) = spill_path {
            // Its events are fsync'd in the journal now — or, if that
            // failed, the file stays for the next start's recovery (which
            // skips what the journal holds by spill id).
            if durable {
                if let Err(e) = Spill::remove(&p) {
                    warn!(target: "audit", error = %e, "could not remove a drained spill file");
                }
            }
        }
        !nothing
    }

    fn finish(&mut self) {
        if self.since_checkpoint > 0 {
            self.checkpoint();
        }
        self.sync_point();
        self.stop_followers();
        // With the followers' final positions: side entries, release.
        self.sync_point();
    }

    /// Asks every follower to catch up (within its grace period), sync and
    /// end, and waits for them.
    fn stop_followers(&mut self) {
        for f in &self.followers {
            f.state.stop.store(true, Ordering::Release);
        }
        self.shared.journal.wake_all();
        for f in &mut self.followers {
            if let Some(t) = f.thread.take() {
                if t.join().is_err() {
                    warn!(target: "audit", sink = f.state.name, "audit sink thread panicked");
                }
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut d = Instant::now() + IDLE_TICK;
        if self.dirty {
            d = d.min(self.last_sync + SYNC_INTERVAL);
        }
        if self.since_checkpoint > 0 {
            d = d.min(self.last_checkpoint + self.checkpoint_interval);
        }
        if let Some(since) = self.wal.unsynced_since() {
            d = d.min(since + self.async_commit);
        }
        if self.primary.is_some() {
            d = d.min(self.next_retention);
        }
        d
    }

    /// Waits for work until `deadline`; takes at most `batch_max` events.
    fn take(&mut self, deadline: Instant) -> (Vec<Pending>, Vec<Control>, bool) {
        let shared = self.shared.clone();
        let mut q = shared.lock();
        loop {
            if !q.items.is_empty()
                || !q.controls.is_empty()
                || q.abandoned
                || shared.spill.is_pending()
            {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            q.idle = true;
            q = shared
                .wake
                .wait_timeout(q, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
            q.idle = false;
        }
        // Group commit for async events: under load each event would
        // otherwise be its own journal append and file write (and each
        // push a futex wake). Held back at most COALESCE_WINDOW (within the
        // deadline); an event awaiting an ack, a control, a spill or a
        // full batch ends the wait at once.
        let until = deadline.min(Instant::now() + COALESCE_WINDOW);
        loop {
            if q.items.is_empty()
                || q.items.len() >= COALESCE_MAX
                || !q.controls.is_empty()
                || q.abandoned
                || shared.spill.is_pending()
                || q.items.iter().any(|p| p.ack.is_some())
            {
                break;
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            q.coalescing = true;
            q = shared
                .wake
                .wait_timeout(q, until - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
            q.coalescing = false;
        }
        let n = q.items.len().min(self.batch_max);
        let items: Vec<Pending> = q.items.drain(..n).collect();
        let controls = std::mem::take(&mut q.controls);
        shared.depth.store(q.items.len(), Ordering::Relaxed);
        if q.items.is_empty() {
            shared
                .caught_up_at
                .store(shared.now_us(), Ordering::Relaxed);
        }
        (items, controls, q.abandoned)
    }

    fn take_spill(&mut self) -> Option<(PathBuf, Vec<(String, Event)>)> {
        if !self.shared.spill.is_pending() {
            return None;
        }
        let path = self.shared.spill.take()?;
        match Spill::read(&path) {
            Ok(events) => Some((path, events)),
            Err(e) => {
                // Left on disk for the next start's recovery.
                Counters::add(&self.shared.counters.journal_errors, 1);
                warn!(target: "audit", error = %e, "could not read a spill file; it stays for recovery at the next start");
                None
            }
        }
    }

    /// Everything queued or spilled right now, processed.
    fn drain_all(&mut self) {
        loop {
            let (items, controls) = {
                let shared = self.shared.clone();
                let mut q = shared.lock();
                let items: Vec<Pending> = q.items.drain(..).collect();
                shared.depth.store(0, Ordering::Relaxed);
                // Controls arriving meanwhile are answered by this drain too.
                let controls = std::mem::take(&mut q.controls);
                (items, controls)
            };
            let did = self.process_taken(items);
            for c in controls {
                match c {
                    Control::Flush(ack) => {
                        self.sync_point();
                        let _ = ack.send(self.shared.journal.durable());
                    }
                    Control::Shutdown(ack) => {
                        // Answered once the caller's own shutdown completes.
                        let mut q = self.shared.lock();
                        q.controls.push(Control::Shutdown(ack));
                    }
                }
            }
            if !did {
                break;
            }
        }
        self.shared
            .caught_up_at
            .store(self.shared.now_us(), Ordering::Relaxed);
    }

    /// Chains, journals, acknowledges, writes the JSONL file. Returns
    /// whether the batch is fsync'd in the journal (for spilled events,
    /// whose spill file may then go).
    fn process(&mut self, items: Vec<Pending>, spilled: Vec<(String, Event)>) -> bool {
        let mut entries: Vec<Entry> = Vec::with_capacity(items.len() + spilled.len());
        let mut acks: Vec<Ack> = Vec::new();
        self.wal_buf.clear();
        let must_sync = !spilled.is_empty() || items.iter().any(|p| p.ack.is_some());
        for (id, event) in spilled {
            self.chain_event(&event, Some(&id), &mut entries);
        }
        for p in items {
            if let Some(a) = p.ack {
                acks.push(a);
            }
            self.chain_event(&p.event, None, &mut entries);
        }
        let chained = entries.len() as u64;
        let (result, journaled) = self.journal(entries, must_sync);
        for a in acks {
            let _ = a.send(result.clone());
        }
        self.write_jsonl(&journaled);
        Counters::add(&self.shared.counters.written, chained);
        self.shared
            .counters
            .last_seq
            .store(self.seq, Ordering::Relaxed);
        self.dirty = true;
        result.is_ok()
    }

    /// Appends `entries` (after any batch an earlier append failed to
    /// write) to the journal, fsync'd with `sync`. Returns the outcome for
    /// the waiters and the entries now in the journal, which the sinks'
    /// threads are handed too.
    fn journal(&mut self, entries: Vec<Entry>, sync: bool) -> (Result<(), String>, Batch) {
        self.unjournaled_bytes.extend_from_slice(&self.wal_buf);
        self.unjournaled.extend(entries);
        let mut journaled: Batch = Arc::new([]);
        if let Some(first) = self.unjournaled.first().map(|e| e.record.seq) {
            if let Err(e) = self.wal.append(&self.unjournaled_bytes, first) {
                Counters::add(&self.shared.counters.journal_errors, 1);
                warn!(target: "audit", error = %e, "audit journal append failed; retried before anything newer");
                return (Err(e.to_string()), journaled);
            }
            self.unjournaled_bytes.clear();
            journaled = std::mem::take(&mut self.unjournaled).into();
            if let Some(last) = journaled.last() {
                self.appended = last.record.seq;
                for f in &self.followers {
                    f.handoff.offer(&journaled);
                }
                self.shared.journal.publish_appended(self.appended);
            }
        }
        let result = if sync {
            self.commit().map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        (result, journaled)
    }

    /// fsyncs the journal and lets the sinks' threads take what it holds.
    fn commit(&mut self) -> Result<(), AuditError> {
        if !self.unjournaled.is_empty() {
            let (result, journaled) = self.journal(Vec::new(), false);
            self.write_jsonl(&journaled);
            result.map_err(|reason| AuditError::Sink {
                sink: "journal",
                reason,
            })?;
        }
        match self.wal.sync() {
            Ok(()) => {
                self.shared.journal.publish(self.appended);
                Ok(())
            }
            Err(e) => {
                Counters::add(&self.shared.counters.journal_errors, 1);
                warn!(target: "audit", error = %e, "audit journal fsync failed");
                Err(e)
            }
        }
    }

    fn chain_event(&mut self, event: &Event, spill_id: Option<&str>, entries: &mut Vec<Entry>) {
        let alerts = self.detector.observe(event);
        self.chain_one(event, spill_id, entries);
        for alert in alerts {
            let c = &self.shared.counters;
            match alert.anomaly.as_ref().map(|a| a.rule.as_str()) {
                Some("burst") => Counters::add(&c.anomaly_burst, 1),
                Some("off_hours") => Counters::add(&c.anomaly_off_hours, 1),
                Some("token_reuse") => Counters::add(&c.anomaly_token_reuse, 1),
                _ => {}
            }
            self.chain_one(&alert, None, entries);
        }
    }

    fn chain_one(&mut self, event: &Event, spill_id: Option<&str>, entries: &mut Vec<Entry>) {
        self.seq += 1;
        let record = Record::chain(self.seq, self.head, event);
        self.head = record.hash;
        wal_line(&mut self.wal_buf, spill_id, &record);
        entries.push(match self.followers.is_empty() {
            true => Entry::bare(record),
            // What the SQL sinks index, taken from the event here rather
            // than parsed back from the record on the sink's thread.
            false => Entry::chained(record, event),
        });
        self.since_checkpoint += 1;
    }

    fn write_jsonl(&mut self, entries: &[Entry]) {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return;
        };
        let (first, last) = (first.record.seq, last.record.seq);
        let Some(p) = self.primary.as_mut() else {
            return;
        };
        if p.failed || p.written != Some(first - 1) {
            return;
        }
        match p.sink.write(entries) {
            Ok(()) => {
                p.written = Some(last);
                p.state.position.store(last, Ordering::Relaxed);
                if last >= self.seq {
                    p.state
                        .caught_up_at
                        .store(self.shared.now_us(), Ordering::Relaxed);
                }
            }
            Err(e) => Self::primary_failed(p, &e),
        }
    }

    fn primary_failed(p: &mut Primary, e: &AuditError) {
        p.failed = true;
        p.state.failed.store(true, Ordering::Relaxed);
        p.last_retry = Some(Instant::now());
        Counters::add(&p.state.errors, 1);
        warn!(target: "audit", sink = "jsonl", error = %e, "audit sink failed; it will be caught up from the journal");
    }

    fn housekeeping(&mut self) {
        if !self.unjournaled.is_empty() {
            let (_, journaled) = self.journal(Vec::new(), false);
            self.write_jsonl(&journaled);
        }
        if self
            .wal
            .unsynced_since()
            .is_some_and(|t| t.elapsed() >= self.async_commit)
        {
            let _ = self.commit();
        }
        if self
            .primary
            .as_ref()
            .is_some_and(|p| !p.failed && p.sink.wants_rotation())
        {
            self.rotate_jsonl();
        }
        let cp_due = self.since_checkpoint >= self.checkpoint_every
            || (self.since_checkpoint > 0
                && self.last_checkpoint.elapsed() >= self.checkpoint_interval);
        if cp_due {
            self.checkpoint();
        }
        if self.dirty && self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.sync_point();
        } else if !self.pending_side.is_empty() {
            // Waiting for a sink's thread to sync what they name.
            self.write_side_entries();
        }
        if self.primary.as_ref().is_some_and(|p| p.failed) {
            self.retry_primary();
        }
        if Instant::now() >= self.next_retention {
            self.jsonl_retention();
        }
    }

    /// Ends the active file with a checkpoint, starts a new one with
    /// another (each file then starts and ends at a signed checkpoint),
    /// and applies retention.
    fn rotate_jsonl(&mut self) {
        self.checkpoint();
        self.sync_point();
        let Some(p) = self.primary.as_mut() else {
            return;
        };
        if p.failed {
            return;
        }
        match p.sink.rotate() {
            Ok(()) => {
                self.checkpoint();
                self.jsonl_retention();
            }
            Err(e) => {
                warn!(target: "audit", sink = "jsonl", error = %e, "audit file rotation failed");
                Counters::add(&p.state.errors, 1);
            }
        }
    }

    /// Appends a signed checkpoint over the current head, and records it
    /// for the side file.
    fn checkpoint(&mut self) {
        if self.seq == 0 {
            return;
        }
        let cp = self.signer.sign(self.seq, &hex::encode(self.head));
        let event = Event {
            checkpoint: Some(Box::new(cp.clone())),
            ..Event::new(EventKind::Checkpoint)
        };
        self.process(vec![Pending { event, ack: None }], Vec::new());
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        // The side file names it once the local copies hold it durably
        // (a sync point): it must never name a record a crash could take
        // back, nor one `verify` of a copy could not find yet.
        self.pending_side.push(SideEntry {
            at_seq: self.seq,
            at_hash: hex::encode(self.head),
            checkpoint: cp,
        });
        Counters::add(&self.shared.counters.checkpoints, 1);
    }

    /// Appends the checkpoints that the journal, the JSONL file and a
    /// healthy SQLite store hold durably.
    fn write_side_entries(&mut self) {
        if self.pending_side.is_empty() {
            return;
        }
        let mut durable_through = self.shared.journal.durable();
        if let Some(p) = &self.primary {
            durable_through = durable_through.min(p.synced);
        }
        if let Some(sqlite) = self
            .followers
            .iter()
            .find(|f| f.state.name == "sqlite")
            .filter(|f| !f.state.failed.load(Ordering::Relaxed))
        {
            durable_through = durable_through.min(sqlite.state.synced.load(Ordering::Acquire));
        }
        let (ready, later): (Vec<SideEntry>, Vec<SideEntry>) =
            std::mem::take(&mut self.pending_side)
                .into_iter()
                .partition(|e| e.at_seq <= durable_through);
        self.pending_side = later;
        if ready.is_empty() {
            return;
        }
        if let Err(e) = append_side(&self.side_file, &ready) {
            Counters::add(&self.shared.counters.journal_errors, 1);
            warn!(target: "audit", error = %e, "could not append to the checkpoint file");
        }
    }

    /// fsyncs the journal and the JSONL file, writes side entries, and
    /// releases the journal segments every sink that keeps records holds.
    fn sync_point(&mut self) {
        let _ = self.commit();
        if let Some(p) = self.primary.as_mut().filter(|p| !p.failed) {
            match p.sink.sync() {
                Ok(()) => {
                    p.synced = p.written.unwrap_or(0);
                    p.state.synced.store(p.synced, Ordering::Release);
                }
                Err(e) => Self::primary_failed(p, &e),
            }
        }
        self.write_side_entries();
        let mut keep_after = self.shared.journal.durable();
        if let Some(p) = &self.primary {
            let held = if p.failed {
                p.synced.min(p.written.unwrap_or(0))
            } else {
                p.synced
            };
            keep_after = keep_after.min(held);
        }
        for f in self.followers.iter().filter(|f| f.state.keeps) {
            let held = match f.state.known.load(Ordering::Acquire) {
                true => f.state.synced.load(Ordering::Acquire),
                false => 0,
            };
            keep_after = keep_after.min(held);
        }
        if let Err(e) = self.wal.release_through(keep_after) {
            Counters::add(&self.shared.counters.journal_errors, 1);
            warn!(target: "audit", error = %e, "could not release journal segments");
        }
        self.last_sync = Instant::now();
        self.dirty = false;
    }

    /// Prunes the JSONL files as retention says: a chained `retention`
    /// record, durable, then the files and their side-file entries.
    fn jsonl_retention(&mut self) {
        self.next_retention = Instant::now() + self.retention_interval;
        let Some(p) = self.primary.as_mut().filter(|p| !p.failed) else {
            return;
        };
        let cut = match p
            .sink
            .retention_cut(&p.retention, Timestamp::now().unix_nanos())
        {
            Ok(Some(cut)) => cut,
            Ok(None) => return,
            Err(e) => {
                Counters::add(&p.state.errors, 1);
                warn!(target: "audit", sink = "jsonl", error = %e, "audit retention failed");
                return;
            }
        };
        let event = marker("jsonl", &cut);
        self.process(vec![Pending { event, ack: None }], Vec::new());
        self.sync_point();
        let announced = self.unjournaled.is_empty()
            && self.wal.unsynced_since().is_none()
            && self
                .primary
                .as_ref()
                .is_some_and(|p| !p.failed && p.synced >= self.seq);
        if !announced {
            return;
        }
        let Some(p) = self.primary.as_mut() else {
            return;
        };
        match p.sink.prune(&cut) {
            Ok(n) => {
                Counters::add(&p.state.pruned, n);
                if let Err(e) = prune_side(&self.side_file, cut.keep_from) {
                    warn!(target: "audit", error = %e, "could not prune the checkpoint file");
                }
            }
            Err(e) => {
                Counters::add(&p.state.errors, 1);
                warn!(target: "audit", sink = "jsonl", error = %e, "audit retention failed");
            }
        }
    }

    /// Reopens a failed JSONL file and brings it up to the journal.
    fn retry_primary(&mut self) {
        let Some(p) = self.primary.as_mut() else {
            return;
        };
        if p.last_retry.is_some_and(|t| t.elapsed() < p.retry_delay) {
            return;
        }
        p.last_retry = Some(Instant::now());
        let upto = self.appended;
        let reader = &mut self.reader;
        let batch_max = self.batch_max;
        let attempt = (|| -> Result<u64, AuditError> {
            p.sink.reset()?;
            let mut position = p.sink.last()?.map_or(0, |(s, _)| s);
            while position < upto {
                let records = reader.read(position, upto, batch_max)?;
                let Some(first) = records.first() else { break };
                if first.seq != position + 1 {
                    warn!(target: "audit", sink = "jsonl", from = position + 1,
                          "audit sink lacks records the journal no longer holds");
                }
                let entries: Vec<Entry> = records.into_iter().map(Entry::bare).collect();
                p.sink.write(&entries)?;
                position = entries.last().map_or(position, |e| e.record.seq);
            }
            p.sink.sync()?;
            Ok(position)
        })();
        match attempt {
            Ok(position) => {
                p.failed = false;
                p.state.failed.store(false, Ordering::Relaxed);
                p.written = Some(position);
                p.synced = position;
                p.state.position.store(position, Ordering::Relaxed);
                p.state.synced.store(position, Ordering::Release);
                p.retry_delay = RETRY_INTERVAL;
                warn!(target: "audit", sink = "jsonl", "audit sink is back and caught up");
            }
            Err(e) => {
                p.retry_delay = (p.retry_delay * 2).min(RETRY_MAX);
                Counters::add(&p.state.errors, 1);
                warn!(target: "audit", sink = "jsonl", error = %e, retry_in = ?p.retry_delay, "audit sink still failing");
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Normally done by `finish`; after a panic, the followers must not
        // outlive the writer.
        for f in &self.followers {
            f.state.stop.store(true, Ordering::Release);
        }
        self.shared.journal.wake_all();
    }
}

fn append_side(path: &Path, entries: &[SideEntry]) -> Result<(), AuditError> {
    let mut bytes = Vec::new();
    for entry in entries {
        serde_json::to_writer(&mut bytes, entry).map_err(|e| AuditError::Sink {
            sink: "checkpoints",
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| AuditError::io(path, e))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_data())
        .map_err(|e| AuditError::io(path, e))
}

/// Rewrites the side file without the entries of pruned records
/// (atomically: a reader sees the old file or the new one).
fn prune_side(path: &Path, keep_from: u64) -> Result<(), AuditError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(AuditError::io(path, e)),
    };
    let mut kept = Vec::new();
    let mut dropped = false;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| AuditError::io(path, e))?;
        let at_seq = serde_json::from_str::<SideEntry>(&line).map(|e| e.at_seq);
        if matches!(at_seq, Ok(seq) if seq < keep_from) {
            dropped = true;
            continue;
        }
        kept.extend_from_slice(line.as_bytes());
        kept.push(b'\n');
    }
    if !dropped {
        return Ok(());
    }
    let tmp = path.with_extension("checkpoints.tmp");
    {
        let mut f = File::create(&tmp).map_err(|e| AuditError::io(&tmp, e))?;
        f.write_all(&kept)
            .and_then(|()| f.sync_all())
            .map_err(|e| AuditError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| AuditError::io(path, e))?;
    sync_dir(path)
}
